// POST /api/realtime/score-trigger when scoring fails after the store
// commit: the answer is 202 with what was stored, never a 5xx (which would
// invite a retry that stores events without ids again), and the data is in
// the store. The failure is forced where it happens in production: with
// shared lead state (Redis leases), scoring a lead this instance does not
// hold reads it back from the store, and that read fails.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>

#include "bus/bus.h"
#include "server/server.h"
#include "server/server_test_fixture.h"
#include "store/store.h"

namespace reai::server {
namespace {

using fixture::as_object;
using fixture::kNow;
using namespace store;  // the Store interface's types, as store.h names them

// Every call goes to `inner`, which it owns.
class ForwardingStore : public store::Store {
 public:
  explicit ForwardingStore(std::unique_ptr<store::Store> inner) : owned_(std::move(inner)), inner_(*owned_) {}

  Status upsert_tenant(const Tenant& tenant) override { return inner_.upsert_tenant(tenant); }
  Result<Tenant> get_tenant(const std::string& tenant_id) override { return inner_.get_tenant(tenant_id); }
  Result<std::vector<Tenant>> list_tenants() override { return inner_.list_tenants(); }
  Status upsert_contact(const Contact& contact) override { return inner_.upsert_contact(contact); }
  Result<Contact> get_contact(const std::string& tenant_id, const std::string& contact_id) override {
    return inner_.get_contact(tenant_id, contact_id);
  }
  Result<bool> append_event(const Event& event) override { return inner_.append_event(event); }
  Result<std::vector<bool>> append_batch(std::span<const Event> events, std::span<const ScoreRecord> scores,
                                         std::span<const Contact> new_contacts,
                                         std::vector<bool>* contacts_created) override {
    return inner_.append_batch(events, scores, new_contacts, contacts_created);
  }
  Result<std::vector<std::string>> stored_event_contacts(std::span<const Event> events) override {
    return inner_.stored_event_contacts(events);
  }
  Result<LeadWritten> write_lead(const LeadWrite& write) override { return inner_.write_lead(write); }
  Result<bool> append_stage(const OpportunityStage& stage) override { return inner_.append_stage(stage); }
  Result<ImportCounts> import_history(const std::vector<Contact>& contacts, const std::vector<Event>& events,
                                      const std::vector<OpportunityStage>& stages) override {
    return inner_.import_history(contacts, events, stages);
  }
  Status for_each_contact(const std::string& tenant_id, const std::function<bool(const Contact&)>& fn) override {
    return inner_.for_each_contact(tenant_id, fn);
  }
  Status for_each_event(const std::string& tenant_id, const std::function<bool(const Event&)>& fn) override {
    return inner_.for_each_event(tenant_id, fn);
  }
  Status for_each_stage(const std::string& tenant_id, const std::function<bool(const OpportunityStage&)>& fn) override {
    return inner_.for_each_stage(tenant_id, fn);
  }
  Status for_each_event_after(const std::string& tenant_id, std::int64_t after,
                              const std::function<bool(std::int64_t position, const Event&)>& fn) override {
    return inner_.for_each_event_after(tenant_id, after, fn);
  }
  Result<std::vector<Event>> events_for_contact(const std::string& tenant_id, const std::string& contact_id) override {
    return inner_.events_for_contact(tenant_id, contact_id);
  }
  Status append_score(const ScoreRecord& record) override { return inner_.append_score(record); }
  Status append_scores(std::span<const ScoreRecord> records) override { return inner_.append_scores(records); }
  Result<std::vector<std::string>> contacts_without_scores(const std::string& tenant_id) override {
    return inner_.contacts_without_scores(tenant_id);
  }
  Result<std::vector<bool>> append_first_scores(std::span<const ScoreRecord> records) override {
    return inner_.append_first_scores(records);
  }
  Result<std::vector<ScoreRecord>> score_history(const std::string& tenant_id, const std::string& contact_id,
                                                 std::size_t limit) override {
    return inner_.score_history(tenant_id, contact_id, limit);
  }
  Status record_model(const ModelRecord& model) override { return inner_.record_model(model); }
  Result<std::vector<ModelRecord>> list_models(const std::string& tenant_id, const std::string& kind) override {
    return inner_.list_models(tenant_id, kind);
  }
  Result<Tenant> find_tenant_by_ghl_location(const std::string& location_id) override {
    return inner_.find_tenant_by_ghl_location(location_id);
  }
  Result<std::optional<std::int64_t>> record_ghl_delivery(const GhlDelivery& delivery) override {
    return inner_.record_ghl_delivery(delivery);
  }
  Result<GhlDelivery> get_ghl_delivery(const std::string& tenant_id, std::int64_t delivery_id) override {
    return inner_.get_ghl_delivery(tenant_id, delivery_id);
  }
  Result<std::vector<GhlDelivery>> list_ghl_deliveries(const std::string& tenant_id, DeliveryStatus status,
                                                       std::size_t limit) override {
    return inner_.list_ghl_deliveries(tenant_id, status, limit);
  }
  Status set_ghl_delivery_status(const std::string& tenant_id, std::int64_t delivery_id, DeliveryStatus status,
                                 const std::string& error, bool count_attempt) override {
    return inner_.set_ghl_delivery_status(tenant_id, delivery_id, status, error, count_attempt);
  }
  Status update_ghl_settings(const std::string& tenant_id, const GhlSettingsChange& change) override {
    return inner_.update_ghl_settings(tenant_id, change);
  }
  Result<GhlSettings> get_ghl_settings(const std::string& tenant_id) override {
    return inner_.get_ghl_settings(tenant_id);
  }
  Result<std::int64_t> enqueue_ghl_update(const GhlUpdate& update) override {
    return inner_.enqueue_ghl_update(update);
  }
  Result<std::vector<std::int64_t>> enqueue_ghl_writeback(std::span<const GhlUpdate> updates,
                                                          std::span<const GhlContactState> states) override {
    return inner_.enqueue_ghl_writeback(updates, states);
  }
  Result<std::vector<GhlContactState>> list_ghl_contact_states(const std::string& tenant_id) override {
    return inner_.list_ghl_contact_states(tenant_id);
  }
  Status put_ghl_custom_field(const GhlCustomField& field) override { return inner_.put_ghl_custom_field(field); }
  Result<GhlCustomField> get_ghl_custom_field(const std::string& tenant_id, const std::string& location_id,
                                              const std::string& field_key) override {
    return inner_.get_ghl_custom_field(tenant_id, location_id, field_key);
  }
  Status put_ghl_sync_cursor(const GhlSyncCursor& cursor) override { return inner_.put_ghl_sync_cursor(cursor); }
  Result<GhlSyncCursor> get_ghl_sync_cursor(const std::string& tenant_id, const std::string& resource) override {
    return inner_.get_ghl_sync_cursor(tenant_id, resource);
  }
  Result<std::vector<GhlUpdate>> due_ghl_updates(const std::string& tenant_id, UnixSeconds now,
                                                 std::size_t limit) override {
    return inner_.due_ghl_updates(tenant_id, now, limit);
  }
  Result<std::vector<GhlUpdate>> list_ghl_updates(const std::string& tenant_id, OutboxStatus status,
                                                  std::size_t limit) override {
    return inner_.list_ghl_updates(tenant_id, status, limit);
  }
  Result<GhlOutboxSummary> ghl_outbox_summary(const std::string& tenant_id) override {
    return inner_.ghl_outbox_summary(tenant_id);
  }
  Status record_ghl_update_attempt(const std::string& tenant_id, std::int64_t update_id, OutboxStatus status,
                                   const std::string& error, UnixSeconds next_attempt_at) override {
    return inner_.record_ghl_update_attempt(tenant_id, update_id, status, error, next_attempt_at);
  }
  Status upsert_listings(std::span<const ListingRecord> listings) override { return inner_.upsert_listings(listings); }
  Result<std::int64_t> listings_version(const std::string& tenant_id) override {
    return inner_.listings_version(tenant_id);
  }
  Result<ListingRecord> get_listing(const std::string& tenant_id, const std::string& listing_id) override {
    return inner_.get_listing(tenant_id, listing_id);
  }
  Status for_each_listing(const std::string& tenant_id, const std::function<bool(const ListingRecord&)>& fn) override {
    return inner_.for_each_listing(tenant_id, fn);
  }
  Status put_ghl_token(const GhlToken& token) override { return inner_.put_ghl_token(token); }
  Result<GhlToken> get_ghl_token(const std::string& tenant_id) override { return inner_.get_ghl_token(tenant_id); }
  Result<bool> mark_ghl_token_refused(const std::string& tenant_id, const std::string& sealed_refresh_token,
                                      UnixSeconds refused_at, const std::string& error) override {
    return inner_.mark_ghl_token_refused(tenant_id, sealed_refresh_token, refused_at, error);
  }
  Result<std::size_t> count_events(const std::string& tenant_id) override { return inner_.count_events(tenant_id); }
  Result<std::size_t> count_contacts(const std::string& tenant_id) override { return inner_.count_contacts(tenant_id); }
  Status health() override { return inner_.health(); }

 private:
  std::unique_ptr<store::Store> owned_;

 protected:
  store::Store& inner_;
};

// After a lead write commits (armed), the lead's reads fail, as a store that
// goes away right after a commit.
class ReadsFailAfterWrite final : public ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  Result<store::LeadWritten> write_lead(const store::LeadWrite& write) override {
    auto written = inner_.write_lead(write);
    if (written && armed) failing = true;
    return written;
  }
  Result<Contact> get_contact(const std::string& tenant_id, const std::string& contact_id) override {
    if (failing) return unavailable("store gone after the commit (test)");
    return inner_.get_contact(tenant_id, contact_id);
  }
  Result<std::vector<Event>> events_for_contact(const std::string& tenant_id, const std::string& contact_id) override {
    if (failing) return unavailable("store gone after the commit (test)");
    return inner_.events_for_contact(tenant_id, contact_id);
  }
  std::atomic<bool> armed{false}, failing{false};
};

// The in-process leases, said to be shared (as Redis leases are): lead state
// is then synchronised through the store.
class SharedLeases final : public bus::Leases {
 public:
  Result<bus::Lease> acquire(std::string_view name, std::chrono::milliseconds hold,
                             std::chrono::milliseconds wait) override {
    return leases_->acquire(name, hold, wait);
  }
  void release(std::string_view name, std::string_view token, const bus::LeaseUpdate& update) override {
    leases_->release(name, token, update);
  }
  Result<std::vector<Result<bus::Lease>>> acquire_each(std::span<const std::string> names,
                                                       std::chrono::milliseconds hold) override {
    return leases_->acquire_each(names, hold);
  }
  void release_each(std::span<const bus::LeaseRelease> releases) override { leases_->release_each(releases); }
  Status mark(const std::vector<bus::LeaseMark>& marks, std::chrono::milliseconds ttl) override {
    return leases_->mark(marks, ttl);
  }
  Result<bus::LeaseState> peek(std::string_view name) override { return leases_->peek(name); }
  Result<std::string> stamped_value(std::string_view name) override { return leases_->stamped_value(name); }
  void drop_stamp(std::string_view name) override { leases_->drop_stamp(name); }
  bool shared() const override { return true; }
  Status health() override { return leases_->health(); }

 private:
  std::unique_ptr<bus::Leases> leases_ = bus::make_in_process_leases();
};

class ScoreTriggerFaultTest : public fixture::InProcessServerTest {
 protected:
  // The server on a store whose reads fail after an armed write, with shared leases.
  void start_on_failing_store() {
    auto failing = std::make_unique<ReadsFailAfterWrite>(std::move(store_));
    store_fails_ = failing.get();
    store_ = std::move(failing);
    ServerConfig config;
    config.port = 0;
    config.jwt_secret = fixture::kSecret;
    config.threads = 2;
    server_ =
        std::make_unique<Server>(config, ServerDeps{*store_, *bus_, *cache_, *engine_, *registry_, clock_, &leases_});
    Status s = server_->start();
    ASSERT_TRUE(s) << s.to_string();
    http_ = std::make_unique<reai::testing::HttpClient>("127.0.0.1", server_->port());
  }

  ReadsFailAfterWrite* store_fails_ = nullptr;
  SharedLeases leases_;
};

// A lead another instance stored (this one does not hold it): the trigger's
// contact fields and events commit, then reading the lead back to score it
// fails. 202, "stored" says what was, and the store holds all of it.
TEST_F(ScoreTriggerFaultTest, ScoringThatFailsAfterTheCommitAnswers202WithWhatWasStored) {
  Contact known;
  known.tenant_id = "tenant-a";
  known.contact_id = "F1";
  known.created_at = kNow - 3600;
  known.source = "zillow";
  ASSERT_TRUE(store_->upsert_contact(known));
  start_on_failing_store();
  store_fails_->armed = true;
  auto r = http_->post("/api/realtime/score-trigger",
                       R"({"lead_id":"F1","lead_data":{"budget":300000,"events":[)"
                       R"({"type":"sms_in","event_id":"f1-a","ts":"2023-11-14T10:00:00Z"},)"
                       R"({"type":"tour_request","event_id":"f1-b","property_id":"p1"}]}})",
                       reai::testing::reai_token("tenant-a", Role::kAgent, fixture::kSecret, kNow));
  ASSERT_EQ(r.status, 202) << r.body;
  auto o = as_object(r);
  EXPECT_EQ(o["lead_id"].as_string(), "F1");
  EXPECT_NE(std::string(o["error"].as_string())
                .find("stored, but the lead was not scored: store gone after the "
                      "commit (test)"),
            std::string::npos)
      << r.body;
  EXPECT_EQ(boost::json::serialize(o["stored"]), R"({"events_written":2,"events_replayed":0,"contact":"updated"})");
  EXPECT_FALSE(o.contains("score")) << r.body;
  // All of it is stored.
  store_fails_->armed = false;
  store_fails_->failing = false;
  auto contact = store_->get_contact("tenant-a", "F1");
  ASSERT_TRUE(contact) << contact.status().to_string();
  EXPECT_EQ(contact->budget, 300000);
  EXPECT_EQ(contact->source, "zillow");
  auto events = store_->events_for_contact("tenant-a", "F1");
  ASSERT_TRUE(events) << events.status().to_string();
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].event_id, "f1-a");
  EXPECT_EQ((*events)[1].event_id, "f1-b");
  // Sent again (a client retrying anyway), with the store back: replays,
  // nothing stored twice, and now a score.
  auto again = http_->post("/api/realtime/score-trigger",
                           R"({"lead_id":"F1","lead_data":{"events":[)"
                           R"({"type":"sms_in","event_id":"f1-a","ts":"2023-11-14T10:00:00Z"},)"
                           R"({"type":"tour_request","event_id":"f1-b","property_id":"p1"}]}})",
                           reai::testing::reai_token("tenant-a", Role::kAgent, fixture::kSecret, kNow));
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(boost::json::serialize(as_object(again)["stored"]),
            R"({"events_written":0,"events_replayed":2,"contact":"unchanged"})");
  EXPECT_EQ(*store_->count_events("tenant-a"), 2u);
}

}  // namespace
}  // namespace reai::server
