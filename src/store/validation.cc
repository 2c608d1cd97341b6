#include "store/validation.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <utility>

namespace reai::store {
namespace {

Status require(const std::string& value, const char* field) {
  if (value.empty()) return invalid_argument(std::string("empty ") + field);
  return Status::ok();
}

}  // namespace

Status validate(const Tenant& tenant) { return require(tenant.tenant_id, "tenant_id"); }

Status check_ghl_location_free(const Tenant& tenant, const Result<Tenant>& holder) {
  if (tenant.ghl_location_id.empty()) return Status::ok();
  if (!holder) return holder.status().code() == StatusCode::kNotFound ? Status::ok() : holder.status();
  if (holder->tenant_id == tenant.tenant_id) return Status::ok();
  return already_exists("GHL location '" + tenant.ghl_location_id + "' is already linked to tenant '" +
                        holder->tenant_id + "'; unlink it there first");
}

Status validate(const Contact& contact) {
  REAI_RETURN_IF_ERROR(require(contact.tenant_id, "tenant_id"));
  if (contact.budget_stated_at < 0) return invalid_argument("contact: negative budget_stated_at");
  return require(contact.contact_id, "contact_id");
}

Status validate(const Event& event) {
  REAI_RETURN_IF_ERROR(require(event.tenant_id, "tenant_id"));
  REAI_RETURN_IF_ERROR(require(event.event_id, "event_id"));
  return require(event.contact_id, "contact_id");
}

Status validate(const OpportunityStage& stage) {
  REAI_RETURN_IF_ERROR(require(stage.tenant_id, "tenant_id"));
  return require(stage.opportunity_id, "opportunity_id");
}

Status validate(const ScoreRecord& record) {
  REAI_RETURN_IF_ERROR(require(record.tenant_id, "tenant_id"));
  if (record.lead_order < 0) return invalid_argument("score: negative lead_order");
  return require(record.contact_id, "contact_id");
}

Status validate_batch(std::span<const Contact> contacts, std::span<const Event> events,
                      std::span<const ScoreRecord> scores) {
  for (const Contact& c : contacts) REAI_RETURN_IF_ERROR(validate(c));
  for (const Event& e : events) REAI_RETURN_IF_ERROR(validate(e));
  for (const ScoreRecord& r : scores) REAI_RETURN_IF_ERROR(validate(r));
  return Status::ok();
}

Status validate(const LeadWrite& write) {
  const Contact& lead = write.contact;
  REAI_RETURN_IF_ERROR(validate(lead));
  auto of_lead = [&](const std::string& tenant_id, const std::string& contact_id) {
    return tenant_id == lead.tenant_id && contact_id == lead.contact_id;
  };
  for (const Event& e : write.events) {
    REAI_RETURN_IF_ERROR(validate(e));
    if (!of_lead(e.tenant_id, e.contact_id)) {
      return invalid_argument("event '" + e.event_id + "' is not of lead '" + lead.contact_id + "'");
    }
  }
  for (const OpportunityStage& o : write.stages) {
    REAI_RETURN_IF_ERROR(validate(o));
    if (!of_lead(o.tenant_id, o.contact_id)) {
      return invalid_argument("opportunity '" + o.opportunity_id + "' is not of lead '" + lead.contact_id + "'");
    }
  }
  return Status::ok();
}

Status event_id_of_another_lead(const Event& event) {
  return already_exists("event_id '" + event.event_id +
                        "' is stored for another lead (event ids are unique within a tenant)");
}

Status validate(const ModelRecord& model) {
  REAI_RETURN_IF_ERROR(require(model.kind, "kind"));
  return require(model.version, "version");
}

Status validate(const GhlDelivery& d) {
  if (d.tenant_id.empty()) return invalid_argument("delivery: empty tenant_id");
  if (d.webhook_id.empty()) return invalid_argument("delivery: empty webhook_id");
  return Status::ok();
}

std::string_view delivery_status_name(DeliveryStatus status) {
  switch (status) {
    case DeliveryStatus::kPending: return "pending";
    case DeliveryStatus::kDone: return "done";
    case DeliveryStatus::kFailed: return "failed";
    case DeliveryStatus::kIgnored: return "ignored";
  }
  return "pending";
}

std::optional<DeliveryStatus> parse_delivery_status(std::string_view name) {
  for (auto s : {DeliveryStatus::kPending, DeliveryStatus::kDone, DeliveryStatus::kFailed, DeliveryStatus::kIgnored}) {
    if (delivery_status_name(s) == name) return s;
  }
  return std::nullopt;
}

Status validate(const GhlToken& t) {
  if (t.tenant_id.empty()) return invalid_argument("ghl token: empty tenant_id");
  if (t.kind.empty()) return invalid_argument("ghl token: empty kind");
  if (t.sealed_access_token.empty()) return invalid_argument("ghl token: empty access token");
  return Status::ok();
}

Status validate_token_refusal(const std::string& tenant_id, UnixSeconds refused_at) {
  if (tenant_id.empty()) return invalid_argument("ghl token refusal: empty tenant_id");
  if (refused_at <= 0) return invalid_argument("ghl token refusal: refused_at must be > 0");
  return Status::ok();
}

Status validate(const GhlContactState& st) {
  if (st.tenant_id.empty()) return invalid_argument("ghl contact state: empty tenant_id");
  if (st.contact_id.empty()) return invalid_argument("ghl contact state: empty contact_id");
  if (st.band != "hot" && st.band != "warm" && st.band != "cold") {
    return invalid_argument("ghl contact state: band must be hot, warm or cold");
  }
  return Status::ok();
}

Status validate(const GhlCustomField& f) {
  if (f.tenant_id.empty()) return invalid_argument("ghl custom field: empty tenant_id");
  if (f.location_id.empty()) return invalid_argument("ghl custom field: empty location_id");
  if (f.field_key.empty()) return invalid_argument("ghl custom field: empty field_key");
  if (f.field_id.empty()) return invalid_argument("ghl custom field: empty field_id");
  return Status::ok();
}

Status validate(const GhlSyncCursor& c) {
  if (c.tenant_id.empty()) return invalid_argument("ghl sync cursor: empty tenant_id");
  if (c.resource.empty()) return invalid_argument("ghl sync cursor: empty resource");
  if (c.fetched < 0) return invalid_argument("ghl sync cursor: negative count");
  return Status::ok();
}

Status validate(const std::string& tenant_id, const GhlSettingsChange& change) {
  if (tenant_id.empty()) return invalid_argument("ghl settings: empty tenant_id");
  if (!change.workflow_secret && !change.field_map_json && !change.active && !change.hot_stage &&
      !change.uninstalled_at) {
    return invalid_argument("ghl settings: the change sets no field");
  }
  if (change.uninstalled_at && *change.uninstalled_at < 0) {
    return invalid_argument("ghl settings: negative uninstalled_at");
  }
  if (change.hot_stage && change.hot_stage->pipeline_id.empty() != change.hot_stage->stage_id.empty()) {
    return invalid_argument("ghl settings: hot stage needs both a pipeline id and a stage id, or neither");
  }
  return Status::ok();
}

Status validate(const GhlUpdate& u) {
  if (u.tenant_id.empty()) return invalid_argument("outbox update: empty tenant_id");
  if (u.contact_id.empty()) return invalid_argument("outbox update: empty contact_id");
  if (u.kind.empty()) return invalid_argument("outbox update: empty kind");
  return Status::ok();
}

Status validate(const ListingRecord& l) {
  if (l.tenant_id.empty()) return invalid_argument("listing: empty tenant_id");
  if (l.listing_id.empty()) return invalid_argument("listing: empty listing_id");
  if (!(l.list_price > 0)) return invalid_argument("listing '" + l.listing_id + "': list price must be > 0");
  if (l.attributes_json.empty()) return invalid_argument("listing '" + l.listing_id + "': empty attributes");
  return Status::ok();
}

std::vector<Contact> bare_contacts_of_orphan_events(std::span<const Contact> contacts,
                                                    std::span<const Event> events) {
  std::set<std::pair<std::string_view, std::string_view>> known;
  for (const Contact& c : contacts) known.emplace(c.tenant_id, c.contact_id);
  std::map<std::pair<std::string_view, std::string_view>, std::size_t> position;
  std::vector<Contact> bare;
  for (const Event& e : events) {
    if (e.contact_id.empty() || known.contains({e.tenant_id, e.contact_id})) continue;
    auto [it, first] = position.try_emplace({e.tenant_id, e.contact_id}, bare.size());
    if (!first) {
      bare[it->second].created_at = std::min(bare[it->second].created_at, e.ts);
      continue;
    }
    Contact& c = bare.emplace_back();
    c.tenant_id = e.tenant_id;
    c.contact_id = e.contact_id;
    c.created_at = e.ts;
  }
  return bare;
}

std::vector<bool> contacts_to_insert(std::span<const Contact> contacts, std::span<const Event> events,
                                     const std::vector<bool>& written) {
  std::vector<bool> keep(contacts.size(), true);
  if (events.empty()) return keep;
  // Per lead named by an event: whether one of its events was written.
  std::map<std::pair<std::string_view, std::string_view>, bool> any_written;
  for (std::size_t k = 0; k < events.size(); ++k) {
    bool& any = any_written[{events[k].tenant_id, events[k].contact_id}];
    any = any || (k < written.size() && written[k]);
  }
  for (std::size_t i = 0; i < contacts.size(); ++i) {
    auto it = any_written.find({contacts[i].tenant_id, contacts[i].contact_id});
    keep[i] = it == any_written.end() || it->second;
  }
  return keep;
}

std::vector<std::string> distinct_tenants(std::span<const ListingRecord> listings) {
  std::vector<std::string> tenants;
  for (const auto& l : listings) {
    if (std::find(tenants.begin(), tenants.end(), l.tenant_id) == tenants.end()) tenants.push_back(l.tenant_id);
  }
  return tenants;
}

std::string_view outbox_status_name(OutboxStatus status) {
  switch (status) {
    case OutboxStatus::kPending: return "pending";
    case OutboxStatus::kSent: return "sent";
    case OutboxStatus::kFailed: return "failed";
  }
  return "pending";
}

std::optional<OutboxStatus> parse_outbox_status(std::string_view name) {
  for (auto s : {OutboxStatus::kPending, OutboxStatus::kSent, OutboxStatus::kFailed}) {
    if (outbox_status_name(s) == name) return s;
  }
  return std::nullopt;
}

}  // namespace reai::store
