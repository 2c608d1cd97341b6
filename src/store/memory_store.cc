// In-memory Store for tests: ordered maps under one mutex, the same
// constraints and ordering rules as the SQLite store.
#include <algorithm>
#include <map>
#include <mutex>
#include <set>
#include <tuple>
#include <unordered_map>
#include <utility>

#include "store/store.h"
#include "store/validation.h"

namespace reai::store {
namespace {

// (ts, insertion number): the order events and stages are read back in.
using TimeKey = std::pair<UnixSeconds, std::uint64_t>;
using StageKey = std::tuple<std::string, UnixSeconds, Stage>;

struct TenantRows {
  std::map<std::string, Contact> contacts;  // by contact_id, as SQLite scans
  std::unordered_map<std::string, std::string> event_contacts;  // event_id -> contact_id
  std::map<TimeKey, Event> events;
  std::set<StageKey> stage_keys;
  std::map<TimeKey, OpportunityStage> stages;
  std::map<std::string, std::vector<ScoreRecord>> scores;  // insertion order
  std::vector<ModelRecord> models;                         // insertion order
  std::map<std::int64_t, GhlDelivery> deliveries;          // by id
  std::map<std::string, std::int64_t> delivery_ids;        // webhook_id -> id
  std::map<std::int64_t, GhlUpdate> outbox;                // by id
  std::map<std::string, ListingRecord> listings;           // by listing_id
  std::map<std::string, GhlContactState> contact_states;   // by contact_id
  std::map<std::pair<std::string, std::string>, GhlCustomField> custom_fields;  // (location, key)
  std::map<std::string, GhlSyncCursor> sync_cursors;       // by resource
  std::int64_t listings_version = 0;                       // bumped per upsert_listings
};

class MemoryStore final : public Store {
 public:
  Status upsert_tenant(const Tenant& tenant) override {
    REAI_RETURN_IF_ERROR(validate(tenant));
    std::lock_guard lock(mu_);
    REAI_RETURN_IF_ERROR(check_ghl_location_free(tenant, find_tenant_by_ghl_location_locked(tenant.ghl_location_id)));
    auto [it, inserted] = tenants_.try_emplace(tenant.tenant_id, tenant);
    if (!inserted) {  // created_at is kept, as in SQLite
      it->second.name = tenant.name;
      it->second.ghl_location_id = tenant.ghl_location_id;
    }
    return Status::ok();
  }

  Result<Tenant> get_tenant(const std::string& tenant_id) override {
    std::lock_guard lock(mu_);
    auto it = tenants_.find(tenant_id);
    if (it == tenants_.end()) return not_found("tenant '" + tenant_id + "' not found");
    return it->second;
  }

  Result<std::vector<Tenant>> list_tenants() override {
    std::lock_guard lock(mu_);
    std::vector<Tenant> out;
    for (const auto& [id, tenant] : tenants_) out.push_back(tenant);
    return out;
  }

  Status upsert_contact(const Contact& contact) override {
    REAI_RETURN_IF_ERROR(validate(contact));
    std::lock_guard lock(mu_);
    put_contact(contact);
    return Status::ok();
  }

  Result<Contact> get_contact(const std::string& tenant_id, const std::string& contact_id) override {
    std::lock_guard lock(mu_);
    if (const TenantRows* rows = find_rows(tenant_id)) {
      auto it = rows->contacts.find(contact_id);
      if (it != rows->contacts.end()) return it->second;
    }
    return not_found("contact '" + contact_id + "' not found");
  }

  Result<bool> append_event(const Event& event) override {
    REAI_RETURN_IF_ERROR(validate(event));
    std::lock_guard lock(mu_);
    return put_event(event);
  }

  Result<std::vector<bool>> append_batch(std::span<const Event> events, std::span<const ScoreRecord> scores,
                                         std::span<const Contact> new_contacts,
                                         std::vector<bool>* contacts_created) override {
    // Validating first is what makes the batch all or nothing.
    REAI_RETURN_IF_ERROR(validate_batch(new_contacts, events, scores));
    std::lock_guard lock(mu_);
    std::vector<bool> written;
    written.reserve(events.size());
    for (const Event& e : events) written.push_back(put_event(e));
    // After the events: a lead whose every event was refused gets no row.
    const std::vector<bool> keep = contacts_to_insert(new_contacts, events, written);
    if (contacts_created) contacts_created->clear();
    for (std::size_t i = 0; i < new_contacts.size(); ++i) {
      const Contact& c = new_contacts[i];
      const bool created = keep[i] && tenant_rows_[c.tenant_id].contacts.try_emplace(c.contact_id, c).second;
      if (contacts_created) contacts_created->push_back(created);
    }
    for (const ScoreRecord& r : scores) tenant_rows_[r.tenant_id].scores[r.contact_id].push_back(r);
    return written;
  }

  Result<std::vector<std::string>> stored_event_contacts(std::span<const Event> events) override {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    out.reserve(events.size());
    for (const Event& e : events) {
      std::string& contact_id = out.emplace_back();
      const TenantRows* rows = find_rows(e.tenant_id);
      if (!rows) continue;
      if (auto it = rows->event_contacts.find(e.event_id); it != rows->event_contacts.end()) contact_id = it->second;
    }
    return out;
  }

  Result<LeadWritten> write_lead(const LeadWrite& write) override {
    // Validated and checked for other leads' ids before the first write:
    // applying then cannot fail, which makes it all or nothing.
    REAI_RETURN_IF_ERROR(validate(write));
    std::lock_guard lock(mu_);
    if (const TenantRows* rows = find_rows(write.contact.tenant_id)) {
      for (const Event& e : write.events) {
        auto it = rows->event_contacts.find(e.event_id);
        if (it != rows->event_contacts.end() && it->second != e.contact_id) return event_id_of_another_lead(e);
      }
    }
    LeadWritten out;
    auto& contacts = tenant_rows_[write.contact.tenant_id].contacts;
    out.contact_created = contacts.try_emplace(write.contact.contact_id, write.contact).second;
    if (write.replace_contact) put_contact(write.contact);
    for (const Event& e : write.events) out.events.push_back(put_event(e));
    for (const OpportunityStage& o : write.stages) out.stages.push_back(put_stage(o));
    return out;
  }

  Result<bool> append_stage(const OpportunityStage& stage) override {
    REAI_RETURN_IF_ERROR(validate(stage));
    std::lock_guard lock(mu_);
    return put_stage(stage);
  }

  Result<ImportCounts> import_history(const std::vector<Contact>& contacts,
                                      const std::vector<Event>& events,
                                      const std::vector<OpportunityStage>& stages) override {
    // Validating everything before the first write is what makes it atomic:
    // applying a valid row cannot fail.
    for (const Contact& c : contacts) REAI_RETURN_IF_ERROR(validate(c));
    for (const Event& e : events) REAI_RETURN_IF_ERROR(validate(e));
    for (const OpportunityStage& o : stages) REAI_RETURN_IF_ERROR(validate(o));
    std::lock_guard lock(mu_);
    ImportCounts counts;
    for (const Contact& c : contacts) {
      put_contact(c);
      ++counts.contacts_written;
    }
    for (const Event& e : events) ++(put_event(e) ? counts.events_written : counts.events_duplicate);
    for (const Contact& c : bare_contacts_of_orphan_events(contacts, events)) {
      if (tenant_rows_[c.tenant_id].contacts.try_emplace(c.contact_id, c).second) ++counts.contacts_added_bare;
    }
    for (const OpportunityStage& o : stages) {
      ++(put_stage(o) ? counts.stages_written : counts.stages_duplicate);
    }
    return counts;
  }

  Status for_each_contact(const std::string& tenant_id,
                          const std::function<bool(const Contact&)>& fn) override {
    std::lock_guard lock(mu_);
    if (const TenantRows* rows = find_rows(tenant_id)) {
      for (const auto& [id, contact] : rows->contacts) {
        if (!fn(contact)) break;
      }
    }
    return Status::ok();
  }

  Status for_each_event(const std::string& tenant_id,
                        const std::function<bool(const Event&)>& fn) override {
    std::lock_guard lock(mu_);
    if (const TenantRows* rows = find_rows(tenant_id)) {
      for (const auto& [key, event] : rows->events) {
        if (!fn(event)) break;
      }
    }
    return Status::ok();
  }

  Status for_each_event_after(const std::string& tenant_id, std::int64_t after,
                              const std::function<bool(std::int64_t, const Event&)>& fn) override {
    std::lock_guard lock(mu_);
    const TenantRows* rows = find_rows(tenant_id);
    if (!rows) return Status::ok();
    // Position = insertion + 1, so 0 reads from the first.
    std::vector<std::pair<std::int64_t, const Event*>> later;
    for (const auto& [key, event] : rows->events) {
      const auto position = static_cast<std::int64_t>(key.second) + 1;
      if (position > after) later.emplace_back(position, &event);
    }
    std::sort(later.begin(), later.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (const auto& [position, event] : later) {
      if (!fn(position, *event)) break;
    }
    return Status::ok();
  }

  Status for_each_stage(const std::string& tenant_id,
                        const std::function<bool(const OpportunityStage&)>& fn) override {
    std::lock_guard lock(mu_);
    if (const TenantRows* rows = find_rows(tenant_id)) {
      for (const auto& [key, stage] : rows->stages) {
        if (!fn(stage)) break;
      }
    }
    return Status::ok();
  }

  Result<std::vector<Event>> events_for_contact(const std::string& tenant_id,
                                                const std::string& contact_id) override {
    std::lock_guard lock(mu_);
    std::vector<Event> out;
    if (const TenantRows* rows = find_rows(tenant_id)) {
      for (const auto& [key, event] : rows->events) {
        if (event.contact_id == contact_id) out.push_back(event);
      }
    }
    return out;
  }

  Status append_score(const ScoreRecord& record) override {
    REAI_RETURN_IF_ERROR(validate(record));
    std::lock_guard lock(mu_);
    tenant_rows_[record.tenant_id].scores[record.contact_id].push_back(record);
    return Status::ok();
  }

  Status append_scores(std::span<const ScoreRecord> records) override {
    for (const ScoreRecord& r : records) REAI_RETURN_IF_ERROR(validate(r));
    std::lock_guard lock(mu_);
    for (const ScoreRecord& r : records) tenant_rows_[r.tenant_id].scores[r.contact_id].push_back(r);
    return Status::ok();
  }

  Result<std::vector<bool>> append_first_scores(std::span<const ScoreRecord> records) override {
    for (const ScoreRecord& r : records) REAI_RETURN_IF_ERROR(validate(r));
    std::lock_guard lock(mu_);
    std::vector<bool> written;
    written.reserve(records.size());
    for (const ScoreRecord& r : records) {
      std::vector<ScoreRecord>& rows = tenant_rows_[r.tenant_id].scores[r.contact_id];
      written.push_back(rows.empty());
      if (rows.empty()) rows.push_back(r);
    }
    return written;
  }

  Result<std::vector<std::string>> contacts_without_scores(const std::string& tenant_id) override {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    const TenantRows* rows = find_rows(tenant_id);
    if (!rows) return out;
    for (const auto& [id, contact] : rows->contacts) {
      auto it = rows->scores.find(id);
      if (it == rows->scores.end() || it->second.empty()) out.push_back(id);
    }
    return out;
  }

  Result<std::vector<ScoreRecord>> score_history(const std::string& tenant_id,
                                                 const std::string& contact_id,
                                                 std::size_t limit) override {
    std::lock_guard lock(mu_);
    std::vector<ScoreRecord> out;
    const TenantRows* rows = find_rows(tenant_id);
    if (!rows) return out;
    auto it = rows->scores.find(contact_id);
    if (it == rows->scores.end()) return out;
    out.assign(it->second.rbegin(), it->second.rend());  // newest insertion first
    std::stable_sort(out.begin(), out.end(), [](const ScoreRecord& a, const ScoreRecord& b) {
      return a.lead_order != b.lead_order ? a.lead_order > b.lead_order : a.ts > b.ts;
    });
    if (out.size() > limit) out.resize(limit);
    return out;
  }

  Status record_model(const ModelRecord& model) override {
    REAI_RETURN_IF_ERROR(validate(model));
    std::lock_guard lock(mu_);
    auto& models = tenant_rows_[model.tenant_id].models;
    auto same = std::find_if(models.begin(), models.end(), [&](const ModelRecord& m) {
      return m.kind == model.kind && m.version == model.version;
    });
    if (same != models.end()) *same = model; else models.push_back(model);
    return Status::ok();
  }

  Result<std::vector<ModelRecord>> list_models(const std::string& tenant_id,
                                               const std::string& kind) override {
    std::lock_guard lock(mu_);
    std::vector<ModelRecord> out;
    const TenantRows* rows = find_rows(tenant_id);
    if (!rows) return out;
    for (auto it = rows->models.rbegin(); it != rows->models.rend(); ++it) {
      if (kind.empty() || it->kind == kind) out.push_back(*it);
    }
    std::stable_sort(out.begin(), out.end(), [](const ModelRecord& a, const ModelRecord& b) {
      return a.created_at > b.created_at;
    });
    return out;
  }

  Result<Tenant> find_tenant_by_ghl_location(const std::string& location_id) override {
    std::lock_guard lock(mu_);
    return find_tenant_by_ghl_location_locked(location_id);
  }

  Result<std::optional<std::int64_t>> record_ghl_delivery(const GhlDelivery& delivery) override {
    REAI_RETURN_IF_ERROR(validate(delivery));
    std::lock_guard lock(mu_);
    TenantRows& rows = tenant_rows_[delivery.tenant_id];
    if (rows.delivery_ids.count(delivery.webhook_id)) return std::optional<std::int64_t>();
    const std::int64_t id = ++last_delivery_id_;
    GhlDelivery stored = delivery;
    stored.delivery_id = id;
    stored.status = DeliveryStatus::kPending;
    stored.error.clear();
    stored.attempts = 0;
    rows.deliveries.emplace(id, std::move(stored));
    rows.delivery_ids.emplace(delivery.webhook_id, id);
    return std::optional<std::int64_t>(id);
  }

  Result<GhlDelivery> get_ghl_delivery(const std::string& tenant_id, std::int64_t delivery_id) override {
    std::lock_guard lock(mu_);
    if (const TenantRows* rows = find_rows(tenant_id)) {
      if (auto it = rows->deliveries.find(delivery_id); it != rows->deliveries.end()) return it->second;
    }
    return not_found("delivery " + std::to_string(delivery_id) + " not found");
  }

  Result<std::vector<GhlDelivery>> list_ghl_deliveries(const std::string& tenant_id, DeliveryStatus status,
                                                       std::size_t limit) override {
    std::lock_guard lock(mu_);
    std::vector<GhlDelivery> out;
    if (const TenantRows* rows = find_rows(tenant_id)) {
      for (const auto& [id, d] : rows->deliveries) {
        if (out.size() >= limit) break;
        if (d.status == status) out.push_back(d);
      }
    }
    return out;
  }

  Status set_ghl_delivery_status(const std::string& tenant_id, std::int64_t delivery_id, DeliveryStatus status,
                                 const std::string& error, bool count_attempt) override {
    std::lock_guard lock(mu_);
    auto rows = tenant_rows_.find(tenant_id);
    if (rows != tenant_rows_.end()) {
      if (auto it = rows->second.deliveries.find(delivery_id); it != rows->second.deliveries.end()) {
        it->second.status = status;
        it->second.error = error;
        if (count_attempt) ++it->second.attempts;
        return Status::ok();
      }
    }
    return not_found("delivery " + std::to_string(delivery_id) + " not found");
  }

  Status update_ghl_settings(const std::string& tenant_id, const GhlSettingsChange& change) override {
    REAI_RETURN_IF_ERROR(validate(tenant_id, change));
    std::lock_guard lock(mu_);
    auto [it, added] = ghl_settings_.try_emplace(tenant_id);
    GhlSettings& g = it->second;
    if (added) g.tenant_id = tenant_id;
    if (change.workflow_secret) g.workflow_secret = *change.workflow_secret;
    if (change.field_map_json) g.field_map_json = *change.field_map_json;
    if (change.active) g.active = *change.active;
    if (change.hot_stage) {
      g.hot_pipeline_id = change.hot_stage->pipeline_id;
      g.hot_stage_id = change.hot_stage->stage_id;
    }
    if (change.uninstalled_at) g.uninstalled_at = *change.uninstalled_at;
    return Status::ok();
  }

  Result<GhlSettings> get_ghl_settings(const std::string& tenant_id) override {
    std::lock_guard lock(mu_);
    auto it = ghl_settings_.find(tenant_id);
    if (it == ghl_settings_.end()) return not_found("no GHL settings for tenant '" + tenant_id + "'");
    return it->second;
  }

  Status put_ghl_token(const GhlToken& token) override {
    REAI_RETURN_IF_ERROR(validate(token));
    std::lock_guard lock(mu_);
    GhlToken& stored = ghl_tokens_[token.tenant_id];
    stored = token;
    stored.refused_at = 0;
    stored.refused_error.clear();
    return Status::ok();
  }

  Result<bool> mark_ghl_token_refused(const std::string& tenant_id, const std::string& sealed_refresh_token,
                                      UnixSeconds refused_at, const std::string& error) override {
    REAI_RETURN_IF_ERROR(validate_token_refusal(tenant_id, refused_at));
    std::lock_guard lock(mu_);
    auto it = ghl_tokens_.find(tenant_id);
    if (it == ghl_tokens_.end() || it->second.sealed_refresh_token != sealed_refresh_token ||
        it->second.refused_at != 0) {
      return false;
    }
    it->second.refused_at = refused_at;
    it->second.refused_error = error;
    return true;
  }

  Result<GhlToken> get_ghl_token(const std::string& tenant_id) override {
    std::lock_guard lock(mu_);
    auto it = ghl_tokens_.find(tenant_id);
    if (it == ghl_tokens_.end()) return not_found("no GHL token for tenant '" + tenant_id + "'");
    return it->second;
  }

  Result<std::int64_t> enqueue_ghl_update(const GhlUpdate& update) override {
    REAI_RETURN_IF_ERROR(validate(update));
    std::lock_guard lock(mu_);
    return insert_update(update);
  }

  Result<std::vector<std::int64_t>> enqueue_ghl_writeback(std::span<const GhlUpdate> updates,
                                                          std::span<const GhlContactState> states) override {
    for (const GhlUpdate& u : updates) REAI_RETURN_IF_ERROR(validate(u));
    for (const GhlContactState& st : states) REAI_RETURN_IF_ERROR(validate(st));
    std::lock_guard lock(mu_);
    std::vector<std::int64_t> ids;
    for (const GhlUpdate& u : updates) ids.push_back(insert_update(u));
    for (const GhlContactState& st : states) tenant_rows_[st.tenant_id].contact_states[st.contact_id] = st;
    return ids;
  }

  Result<GhlOutboxSummary> ghl_outbox_summary(const std::string& tenant_id) override {
    std::lock_guard lock(mu_);
    GhlOutboxSummary out;
    auto it = tenant_rows_.find(tenant_id);
    if (it == tenant_rows_.end()) return out;
    for (const auto& [id, u] : it->second.outbox) {
      if (u.status != OutboxStatus::kPending) continue;
      if (out.pending++ == 0 || u.created_at < out.oldest_pending_at) out.oldest_pending_at = u.created_at;
    }
    return out;
  }

  Result<std::vector<GhlContactState>> list_ghl_contact_states(const std::string& tenant_id) override {
    std::lock_guard lock(mu_);
    std::vector<GhlContactState> out;
    auto it = tenant_rows_.find(tenant_id);
    if (it == tenant_rows_.end()) return out;
    for (const auto& [id, st] : it->second.contact_states) out.push_back(st);
    return out;
  }

  Status put_ghl_custom_field(const GhlCustomField& field) override {
    REAI_RETURN_IF_ERROR(validate(field));
    std::lock_guard lock(mu_);
    tenant_rows_[field.tenant_id].custom_fields[{field.location_id, field.field_key}] = field;
    return Status::ok();
  }

  Result<GhlCustomField> get_ghl_custom_field(const std::string& tenant_id, const std::string& location_id,
                                              const std::string& field_key) override {
    std::lock_guard lock(mu_);
    auto it = tenant_rows_.find(tenant_id);
    if (it != tenant_rows_.end()) {
      auto f = it->second.custom_fields.find({location_id, field_key});
      if (f != it->second.custom_fields.end()) return f->second;
    }
    return not_found("no GHL custom field '" + field_key + "' for location '" + location_id + "'");
  }

  Status put_ghl_sync_cursor(const GhlSyncCursor& cursor) override {
    REAI_RETURN_IF_ERROR(validate(cursor));
    std::lock_guard lock(mu_);
    tenant_rows_[cursor.tenant_id].sync_cursors[cursor.resource] = cursor;
    return Status::ok();
  }

  Result<GhlSyncCursor> get_ghl_sync_cursor(const std::string& tenant_id, const std::string& resource) override {
    std::lock_guard lock(mu_);
    auto it = tenant_rows_.find(tenant_id);
    if (it != tenant_rows_.end()) {
      auto c = it->second.sync_cursors.find(resource);
      if (c != it->second.sync_cursors.end()) return c->second;
    }
    return not_found("no GHL sync cursor for '" + resource + "'");
  }

  // Under mu_.
  std::int64_t insert_update(const GhlUpdate& update) {
    GhlUpdate stored = update;
    stored.update_id = ++last_update_id_;
    stored.status = OutboxStatus::kPending;
    stored.attempts = 0;
    stored.next_attempt_at = update.created_at;
    stored.error.clear();
    tenant_rows_[update.tenant_id].outbox.emplace(stored.update_id, stored);
    return stored.update_id;
  }

  Result<std::vector<GhlUpdate>> due_ghl_updates(const std::string& tenant_id, UnixSeconds now,
                                                 std::size_t limit) override {
    std::lock_guard lock(mu_);
    std::vector<const GhlUpdate*> due;
    if (const TenantRows* rows = find_rows(tenant_id)) {
      for (const auto& [id, u] : rows->outbox)
        if (u.status == OutboxStatus::kPending && u.next_attempt_at <= now) due.push_back(&u);
    }
    // As the SQLite index orders them: by next_attempt_at, then id.
    std::stable_sort(due.begin(), due.end(),
                     [](const GhlUpdate* a, const GhlUpdate* b) { return a->next_attempt_at < b->next_attempt_at; });
    std::vector<GhlUpdate> out;
    for (std::size_t i = 0; i < due.size() && i < limit; ++i) out.push_back(*due[i]);
    return out;
  }

  Result<std::vector<GhlUpdate>> list_ghl_updates(const std::string& tenant_id, OutboxStatus status,
                                                  std::size_t limit) override {
    std::lock_guard lock(mu_);
    std::vector<GhlUpdate> out;
    if (const TenantRows* rows = find_rows(tenant_id)) {
      for (const auto& [id, u] : rows->outbox) {
        if (out.size() >= limit) break;
        if (u.status == status) out.push_back(u);
      }
    }
    return out;
  }

  Status record_ghl_update_attempt(const std::string& tenant_id, std::int64_t update_id, OutboxStatus status,
                                   const std::string& error, UnixSeconds next_attempt_at) override {
    std::lock_guard lock(mu_);
    auto rows = tenant_rows_.find(tenant_id);
    if (rows != tenant_rows_.end()) {
      if (auto it = rows->second.outbox.find(update_id); it != rows->second.outbox.end()) {
        it->second.status = status;
        it->second.error = error;
        it->second.next_attempt_at = next_attempt_at;
        ++it->second.attempts;
        return Status::ok();
      }
    }
    return not_found("outbox update " + std::to_string(update_id) + " not found");
  }

  Status upsert_listings(std::span<const ListingRecord> listings) override {
    for (const auto& l : listings) REAI_RETURN_IF_ERROR(validate(l));
    std::lock_guard lock(mu_);
    for (const auto& l : listings) tenant_rows_[l.tenant_id].listings[l.listing_id] = l;
    for (const std::string& tenant : distinct_tenants(listings)) ++tenant_rows_[tenant].listings_version;
    return Status::ok();
  }

  Result<std::int64_t> listings_version(const std::string& tenant_id) override {
    std::lock_guard lock(mu_);
    const TenantRows* rows = find_rows(tenant_id);
    return rows ? rows->listings_version : 0;
  }

  Result<ListingRecord> get_listing(const std::string& tenant_id, const std::string& listing_id) override {
    std::lock_guard lock(mu_);
    if (const TenantRows* rows = find_rows(tenant_id)) {
      auto it = rows->listings.find(listing_id);
      if (it != rows->listings.end()) return it->second;
    }
    return not_found("listing '" + listing_id + "' not found");
  }

  Status for_each_listing(const std::string& tenant_id,
                          const std::function<bool(const ListingRecord&)>& fn) override {
    std::lock_guard lock(mu_);
    if (const TenantRows* rows = find_rows(tenant_id)) {
      for (const auto& [id, listing] : rows->listings) {
        if (!fn(listing)) break;
      }
    }
    return Status::ok();
  }

  Result<std::size_t> count_events(const std::string& tenant_id) override {
    std::lock_guard lock(mu_);
    const TenantRows* rows = find_rows(tenant_id);
    return rows ? rows->events.size() : 0;
  }

  Result<std::size_t> count_contacts(const std::string& tenant_id) override {
    std::lock_guard lock(mu_);
    const TenantRows* rows = find_rows(tenant_id);
    return rows ? rows->contacts.size() : 0;
  }

  Status health() override { return Status::ok(); }

 private:
  Result<Tenant> find_tenant_by_ghl_location_locked(const std::string& location_id) const {
    if (!location_id.empty()) {
      for (const auto& [id, tenant] : tenants_)
        if (tenant.ghl_location_id == location_id) return tenant;
    }
    return not_found("no tenant linked to GHL location '" + location_id + "'");
  }

  const TenantRows* find_rows(const std::string& tenant_id) const {
    auto it = tenant_rows_.find(tenant_id);
    return it == tenant_rows_.end() ? nullptr : &it->second;
  }

  // As the SQL stores: a budget written unchanged keeps its statement time.
  void put_contact(const Contact& contact) {
    auto [it, created] = tenant_rows_[contact.tenant_id].contacts.try_emplace(contact.contact_id, contact);
    if (created) return;
    const UnixSeconds stated_at = it->second.budget == contact.budget ? it->second.budget_stated_at
                                                                      : contact.budget_stated_at;
    it->second = contact;
    it->second.budget_stated_at = stated_at;
  }

  bool put_event(const Event& event) {
    TenantRows& rows = tenant_rows_[event.tenant_id];
    if (!rows.event_contacts.try_emplace(event.event_id, event.contact_id).second) return false;
    rows.events.emplace(TimeKey{event.ts, next_insertion_++}, event);
    return true;
  }

  bool put_stage(const OpportunityStage& stage) {
    TenantRows& rows = tenant_rows_[stage.tenant_id];
    if (!rows.stage_keys.emplace(stage.opportunity_id, stage.ts, stage.stage).second) return false;
    rows.stages.emplace(TimeKey{stage.ts, next_insertion_++}, stage);
    return true;
  }

  std::mutex mu_;
  std::map<std::string, Tenant> tenants_;
  std::map<std::string, TenantRows> tenant_rows_;
  std::map<std::string, GhlSettings> ghl_settings_;
  std::map<std::string, GhlToken> ghl_tokens_;
  std::int64_t last_delivery_id_ = 0;
  std::int64_t last_update_id_ = 0;
  std::uint64_t next_insertion_ = 0;
};

}  // namespace

std::unique_ptr<Store> make_memory_store() { return std::make_unique<MemoryStore>(); }

}  // namespace reai::store
