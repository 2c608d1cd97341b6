// GoHighLevel webhooks against a real in-process server (HTTP + WebSocket on
// an ephemeral port): signed deliveries change scores and are pushed; replayed,
// stale, unsigned and wrongly signed ones change nothing; failures are kept
// and retried; pending deliveries left by a crash are processed at start.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "bus/bus.h"
#include "core/time.h"
#include "ghl/ghl.h"
#include "scoring/scoring.h"
#include "server/server.h"
#include "store/store.h"
#include "support/fake_ghl.h"
#include "support/ghl_signer.h"
#include "support/test_client.h"
#include "support/text_edit.h"
#include "support/token.h"

namespace reai::server {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using reai::testing::GhlSigner;
using reai::testing::HttpClient;
using reai::testing::HttpResponse;
using reai::testing::WsClient;
using reai::testing::replace_all;
using reai::testing::with_string_field;

constexpr const char* kSecret = reai::testing::kTestJwtSecret;
constexpr const char* kLocation = "LOC8f2k1m9q0a7s6d5f4g";
constexpr const char* kContact = "CONa1b2c3d4e5f6g7h8i9";
const UnixSeconds kNow = *parse_iso8601("2026-07-02T10:00:30Z");

std::string fixture(const std::string& name) {
  std::ifstream in("tests/fixtures/ghl/" + name, std::ios::binary);
  EXPECT_TRUE(in.good()) << name;
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The fixture with its delivery timestamp (and webhookId, when given) set.
std::string delivery(const std::string& name, UnixSeconds at, const std::string& webhook_id = {}) {
  std::string body = with_string_field(fixture(name), "timestamp", format_iso8601(at));
  if (!webhook_id.empty()) body = with_string_field(body, "webhookId", webhook_id);
  return body;
}

json::object as_object(const HttpResponse& r) {
  boost::system::error_code ec;
  json::value v = json::parse(r.body, ec);
  if (ec || !v.is_object()) {
    ADD_FAILURE() << "not a JSON object: " << r.body;
    return {};
  }
  return v.as_object();
}

class GhlServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("reai_ghl_server_test_" + std::to_string(rd()));
    fs::create_directories(dir_ / "models");
    write(dir_ / "ed25519.pem", signer_.ed25519_public_pem());
    write(dir_ / "rsa.pem", signer_.rsa_public_pem());
    store_ = store::make_memory_store();
    bus_ = bus::make_in_process_bus(1024);
    cache_ = bus::make_in_process_cache(clock_);
    registry_ = std::make_unique<scoring::DirectoryModelRegistry>((dir_ / "models").string());
    ASSERT_TRUE(registry_->reload());
    engine_ = std::make_unique<scoring::LeadScoringEngine>(*registry_, cache_.get());
  }

  void TearDown() override {
    if (server_) server_->stop();
    server_.reset();
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  static void write(const fs::path& p, const std::string& text) { std::ofstream(p) << text; }

  // Tenant t1 linked to kLocation, with a field mapping and a workflow secret.
  void link_tenant(const std::string& field_map = R"({"budget":["fBudget01","Budget"],"timeline":"fTimeline01",
      "pre_approval":["fPreApp01","Pre-approved"],"stages":{"3f0c2b9e-5d1a-4c8e-9b7a-0e6d5c4b3a21":"offer"}})") {
    ASSERT_TRUE(store_->upsert_tenant({"t1", "Austin Homes", kNow - 86400, kLocation}));
    ASSERT_TRUE(store_->update_ghl_settings("t1", {.workflow_secret = "wf-shared-secret", .field_map_json = field_map}));
  }

  // `write_back`: GHL's API is this fake, with an OAuth client and a
  // sealing key (else the default base, unreachable, and no key).
  void start(reai::testing::FakeGhl* write_back = nullptr) {
    ServerConfig config;
    config.port = 0;
    config.jwt_secret = kSecret;
    config.threads = 2;
    config.ghl_ed25519_key_file = (dir_ / "ed25519.pem").string();
    config.ghl_rsa_key_file = (dir_ / "rsa.pem").string();
    if (write_back) {
      write(dir_ / "secret.key", std::string(64, 'a'));
      config.ghl_api_base = write_back->base_url();
      config.ghl_secret_key_file = (dir_ / "secret.key").string();
      config.ghl_client_id = "app-id";
      config.ghl_client_secret = "app-secret";
    }
    server_ = std::make_unique<Server>(config, ServerDeps{*store_, *bus_, *cache_, *engine_, *registry_, clock_});
    Status s = server_->start();
    ASSERT_TRUE(s) << s.to_string();
    http_ = std::make_unique<HttpClient>("127.0.0.1", server_->port());
  }

  std::string token(const std::string& tenant, Role role = Role::kAgent) {
    return reai::testing::reai_token(tenant, role, kSecret, kNow);
  }

  HttpResponse post_signed(const std::string& body) {
    return http_->request("POST", "/api/ghl/webhook", body, {}, {{"X-GHL-Signature", signer_.sign_ed25519(body)}});
  }

  // Waits (bounded) until `tenant` has `n` deliveries in `status`.
  std::vector<store::GhlDelivery> wait_for(const std::string& tenant, store::DeliveryStatus status, std::size_t n) {
    for (int i = 0; i < 500; ++i) {
      auto list = store_->list_ghl_deliveries(tenant, status, 100).value();
      if (list.size() >= n) return list;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ADD_FAILURE() << "no " << n << " deliveries in " << store::delivery_status_name(status);
    return {};
  }

  std::size_t deliveries(const std::string& tenant) {
    std::size_t n = 0;
    for (auto s : {store::DeliveryStatus::kPending, store::DeliveryStatus::kDone, store::DeliveryStatus::kFailed,
                   store::DeliveryStatus::kIgnored}) {
      n += store_->list_ghl_deliveries(tenant, s, 1000)->size();
    }
    return n;
  }

  GhlSigner signer_;
  GhlSigner stranger_;
  ManualClock clock_{kNow};
  fs::path dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<bus::Bus> bus_;
  std::unique_ptr<bus::Cache> cache_;
  std::unique_ptr<scoring::DirectoryModelRegistry> registry_;
  std::unique_ptr<scoring::LeadScoringEngine> engine_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<HttpClient> http_;
};

TEST_F(GhlServerTest, SignedDeliveriesUpdateTheLeadAndArePushedOverWebSocket) {
  link_tenant();
  start();
  WsClient ws;
  ASSERT_TRUE(ws.connect("127.0.0.1", server_->port(), "/api/realtime/scoring/t1?token=" + token("t1")));

  auto created = post_signed(delivery("contact_create.json", kNow));
  ASSERT_EQ(created.status, 200) << created.body;
  EXPECT_EQ(as_object(created)["status"].as_string(), "accepted");
  auto pushed = ws.read();
  ASSERT_TRUE(pushed.has_value());
  EXPECT_EQ(json::parse(*pushed).as_object()["lead_id"].as_string(), kContact);
  wait_for("t1", store::DeliveryStatus::kDone, 1);
  Contact c = store_->get_contact("t1", kContact).value();
  EXPECT_EQ(c.budget, 450000.0);
  EXPECT_EQ(c.timeline_months, 3);
  EXPECT_EQ(c.pre_approved, true);
  EXPECT_EQ(c.source, "zillow");
  const auto before = as_object(http_->get(std::string("/api/contacts/") + kContact + "/score", token("t1")));

  // Messages (direction decides), an appointment and a stage change: each
  // becomes the event or stage row POST /api/events would have made.
  for (const char* name : {"inbound_sms.json", "outbound_call.json", "inbound_call_misnamed.json",
                           "appointment_create.json", "opportunity_stage_update.json"}) {
    auto r = http_->request("POST", "/api/ghl/webhook", delivery(name, kNow), {},
                            {{"x-wh-signature", signer_.sign_rsa(delivery(name, kNow))}});  // legacy scheme too
    ASSERT_EQ(r.status, 200) << name << ": " << r.body;
  }
  wait_for("t1", store::DeliveryStatus::kDone, 6);
  EXPECT_EQ(store_->count_events("t1").value(), 4u);
  auto events = store_->events_for_contact("t1", kContact).value();
  ASSERT_EQ(events.size(), 4u);
  // In time order: the message's dateAdded; a booking at its delivery.
  EXPECT_EQ(events[0].type, EventType::kSmsIn);
  EXPECT_EQ(events[1].type, EventType::kAppointmentBooked);
  EXPECT_EQ(events[2].type, EventType::kCallOut);
  EXPECT_EQ(events[3].type, EventType::kCallIn);
  std::vector<OpportunityStage> stages;
  ASSERT_TRUE(store_->for_each_stage("t1", [&](const OpportunityStage& s) {
    stages.push_back(s);
    return true;
  }));
  ASSERT_EQ(stages.size(), 1u);
  EXPECT_EQ(stages[0].stage, Stage::kOffer);

  auto after = as_object(http_->get(std::string("/api/contacts/") + kContact + "/score", token("t1")));
  EXPECT_EQ(before.at("events_count").as_int64(), 0);
  EXPECT_EQ(after.at("events_count").as_int64(), 4);
  EXPECT_NE(json::serialize(after["probability"]), json::serialize(before.at("probability")));
  // Every change was pushed.
  bool saw_update = false;
  while (auto m = ws.read(std::chrono::milliseconds(300))) saw_update = true;
  EXPECT_TRUE(saw_update);
}

// GHL authored a signed delivery, and its JavaScript reads a key named twice
// as the last value: reai reads it so rather than lose the delivery. A body
// reai's own clients send (the admin config) is refused instead.
TEST_F(GhlServerTest, ASignedDeliveryNamingAKeyTwiceKeepsTheLastValueUnlikeAClientsBody) {
  link_tenant();
  start();
  const std::string body = delivery("contact_create.json", kNow);
  ASSERT_EQ(body.rfind(R"({"type":"ContactCreate",)", 0), 0u) << body;
  const std::string twice = R"({"source":"facebook",)" + body.substr(1);  // the fixture's "zillow" comes later
  auto accepted = post_signed(twice);
  ASSERT_EQ(accepted.status, 200) << accepted.body;
  wait_for("t1", store::DeliveryStatus::kDone, 1);
  EXPECT_EQ(store_->get_contact("t1", kContact).value().source, "zillow");

  auto refused = http_->put("/api/admin/ghl/config", R"({"hot_stage":null,"hot_stage":{"pipeline_id":"p","stage_id":"s"}})",
                            token("t1", Role::kAdmin));
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_EQ(as_object(refused).at("error").as_string(), R"(duplicate key "hot_stage")");
}

TEST_F(GhlServerTest, ReplayedStaleUnsignedAndWronglySignedDeliveriesChangeNothing) {
  link_tenant();
  start();
  const std::string sms = delivery("inbound_sms.json", kNow);
  ASSERT_EQ(post_signed(sms).status, 200);
  wait_for("t1", store::DeliveryStatus::kDone, 1);
  ASSERT_EQ(store_->count_events("t1").value(), 1u);
  auto score_now = [&] {
    auto o = as_object(http_->get(std::string("/api/contacts/") + kContact + "/score", token("t1")));
    return json::serialize(o["probability"]) + json::serialize(o["events_count"]) + json::serialize(o["reasons"]);
  };
  const std::string score = score_now();

  auto replay = post_signed(sms);
  EXPECT_EQ(replay.status, 200);
  EXPECT_EQ(as_object(replay)["status"].as_string(), "duplicate");

  const std::string other = delivery("outbound_sms.json", kNow);
  auto stale = post_signed(delivery("outbound_sms.json", kNow - 301));
  EXPECT_EQ(stale.status, 401) << stale.body;
  auto unsigned_ = http_->post("/api/ghl/webhook", other);
  EXPECT_EQ(unsigned_.status, 401);
  auto wrong_key = http_->request("POST", "/api/ghl/webhook", other, {}, {{"X-GHL-Signature", stranger_.sign_ed25519(other)}});
  EXPECT_EQ(wrong_key.status, 401);
  auto wrong_rsa = http_->request("POST", "/api/ghl/webhook", other, {}, {{"x-wh-signature", stranger_.sign_rsa(other)}});
  EXPECT_EQ(wrong_rsa.status, 401);
  std::string tampered = other;
  tampered.replace(tampered.find("outbound"), 8, "inbound!");
  auto tampered_r = http_->request("POST", "/api/ghl/webhook", tampered, {}, {{"X-GHL-Signature", signer_.sign_ed25519(other)}});
  EXPECT_EQ(tampered_r.status, 401);
  // A signed delivery for a location no tenant has.
  std::string elsewhere = other;
  elsewhere.replace(elsewhere.find(kLocation), std::string(kLocation).size(), "LOCunknown");
  auto unknown = post_signed(elsewhere);
  EXPECT_EQ(unknown.status, 404) << unknown.body;
  // Garbage that is signed: refused as bad input, never a crash.
  EXPECT_EQ(post_signed("{not json").status, 400);
  EXPECT_EQ(post_signed(std::string(300 * 1024, ' ')).status, 413);

  // Refusals happen before anything is stored; the duplicate was decided
  // by the store before its answer.
  EXPECT_EQ(store_->count_events("t1").value(), 1u);
  EXPECT_EQ(deliveries("t1"), 1u);
  EXPECT_EQ(deliveries("LOCunknown"), 0u);
  EXPECT_EQ(score_now(), score);
}

TEST_F(GhlServerTest, InstallCreatesTheTenantAndUninstallStopsProcessing) {
  start();
  const std::string body = delivery("install.json", kNow);
  ASSERT_EQ(post_signed(body).status, 200);
  wait_for("LOCnewbrokerage01", store::DeliveryStatus::kDone, 1);
  auto t = store_->get_tenant("LOCnewbrokerage01").value();
  EXPECT_EQ(t.ghl_location_id, "LOCnewbrokerage01");
  EXPECT_TRUE(store_->get_ghl_settings("LOCnewbrokerage01")->active);

  // Messages for the new location now route to it.
  std::string sms = delivery("inbound_sms.json", kNow);
  sms = replace_all(sms, kLocation, "LOCnewbrokerage01");
  ASSERT_EQ(post_signed(sms).status, 200);
  wait_for("LOCnewbrokerage01", store::DeliveryStatus::kDone, 2);
  EXPECT_EQ(store_->count_events("LOCnewbrokerage01").value(), 1u);

  std::string uninstall = replace_all(delivery("uninstall.json", kNow), kLocation, "LOCnewbrokerage01");
  ASSERT_EQ(post_signed(uninstall).status, 200);
  wait_for("LOCnewbrokerage01", store::DeliveryStatus::kDone, 3);
  EXPECT_FALSE(store_->get_ghl_settings("LOCnewbrokerage01")->active);
  std::string call = replace_all(delivery("outbound_call.json", kNow), kLocation, "LOCnewbrokerage01");
  ASSERT_EQ(post_signed(call).status, 200);
  auto ignored = wait_for("LOCnewbrokerage01", store::DeliveryStatus::kIgnored, 1);
  EXPECT_NE(ignored.at(0).error.find("uninstalled"), std::string::npos);
  EXPECT_EQ(store_->count_events("LOCnewbrokerage01").value(), 1u);
}

// A tenant whose id happens to be the installing location's, but which is
// linked to another location, keeps its link: the install is refused.
TEST_F(GhlServerTest, InstallNeverMovesAnExistingTenantsLinkToItsLocation) {
  ASSERT_TRUE(store_->upsert_tenant({"LOCnewbrokerage01", "Existing", kNow, "LOCsomewhereelse"}).is_ok());
  start();
  auto r = post_signed(delivery("install.json", kNow));
  EXPECT_EQ(r.status, 409) << r.body;
  ASSERT_TRUE(as_object(r).contains("error")) << r.body;
  auto t = store_->get_tenant("LOCnewbrokerage01").value();
  EXPECT_EQ(t.ghl_location_id, "LOCsomewhereelse");
  EXPECT_EQ(t.name, "Existing");
  EXPECT_EQ(deliveries("LOCnewbrokerage01"), 0u);
}

// A location id becomes a tenant id (and a directory name) on INSTALL; one
// that is not a valid tenant id is refused before any tenant row is written.
TEST_F(GhlServerTest, InstallOfALocationThatCannotNameATenantIsRefused) {
  start();
  for (const std::string bad : {"../evil", "bad location", ".."}) {
    const std::string body = replace_all(delivery("install.json", kNow), "LOCnewbrokerage01", bad);
    ASSERT_NE(body.find(bad), std::string::npos);
    auto r = post_signed(body);
    EXPECT_EQ(r.status, 400) << bad << ": " << r.body;
    ASSERT_TRUE(as_object(r).contains("error")) << r.body;
    EXPECT_NE(std::string(as_object(r)["error"].as_string()).find("invalid tenant id"), std::string::npos) << r.body;
    EXPECT_EQ(store_->get_tenant(bad).status().code(), StatusCode::kNotFound) << bad;
  }
  auto r = http_->post("/api/ghl/workflow/t!1", R"({"contact_id":"c1"})");
  EXPECT_EQ(r.status, 400) << r.body;
  ASSERT_TRUE(as_object(r).contains("error")) << r.body;
}

TEST_F(GhlServerTest, WorkflowWebhooksNeedTheSharedSecretAndAreDeduplicated) {
  link_tenant();
  start();
  const std::string body = fixture("workflow_inbound_sms.json");
  std::string no_secret = replace_all(body, R"("secret":"wf-shared-secret")", R"("x":"y")");
  EXPECT_EQ(http_->post("/api/ghl/workflow/t1", no_secret).status, 401);
  EXPECT_EQ(http_->request("POST", "/api/ghl/workflow/t1", no_secret, {}, {{"X-Reai-Workflow-Secret", "wrong"}}).status,
            401);
  EXPECT_EQ(http_->post("/api/ghl/workflow/nobody", body).status, 401);
  auto ok = http_->request("POST", "/api/ghl/workflow/t1", no_secret, {}, {{"X-Reai-Workflow-Secret", "wf-shared-secret"}});
  ASSERT_EQ(ok.status, 200) << ok.body;
  auto in_body = http_->post("/api/ghl/workflow/t1", body);  // secret in customData
  ASSERT_EQ(in_body.status, 200) << in_body.body;
  auto again = http_->post("/api/ghl/workflow/t1", body);
  EXPECT_EQ(again.status, 200);
  EXPECT_EQ(as_object(again)["status"].as_string(), "duplicate");
  wait_for("t1", store::DeliveryStatus::kDone, 2);
  EXPECT_EQ(store_->count_events("t1").value(), 2u);  // two distinct bodies, one replay
  Contact c = store_->get_contact("t1", "CONwf0001").value();
  EXPECT_EQ(c.budget, 350000.0);
  EXPECT_EQ(c.pre_approved, false);
  EXPECT_EQ(http_->request("POST", "/api/ghl/workflow/t1", "{bad", {}, {{"X-Reai-Workflow-Secret", "wf-shared-secret"}})
                .status,
            400);
}

TEST_F(GhlServerTest, FailedDeliveriesAreListedForAdminsAndRetried) {
  link_tenant("{broken");  // the tenant's field mapping is unusable: processing fails
  start();
  ASSERT_EQ(post_signed(delivery("inbound_sms.json", kNow)).status, 200);
  auto failed = wait_for("t1", store::DeliveryStatus::kFailed, 1);
  EXPECT_EQ(store_->count_events("t1").value(), 0u);
  // Readiness shows the webhook light degraded, naming the delivery; its
  // error text is the tenant's own, for the tenant's admins only.
  auto webhook = as_object(http_->get("/readyz"))["webhook"].as_object();
  EXPECT_EQ(webhook["status"].as_string(), "degraded");
  const std::string detail(webhook["detail"].as_string());
  EXPECT_NE(detail.find("delivery " + std::to_string(failed.at(0).delivery_id)), std::string::npos) << detail;
  EXPECT_EQ(detail.find("field mapping"), std::string::npos) << detail;
  EXPECT_EQ(detail.find("t1"), std::string::npos) << detail;
  EXPECT_EQ(webhook["failed_since_start"].as_int64(), 1);

  EXPECT_EQ(http_->get("/api/admin/ghl/deliveries?status=failed", token("t1")).status, 403);
  EXPECT_EQ(http_->get("/api/admin/ghl/deliveries?status=failed").status, 401);
  EXPECT_EQ(http_->get("/api/admin/ghl/deliveries?status=bogus", token("t1", Role::kAdmin)).status, 400);
  auto listed = http_->get("/api/admin/ghl/deliveries?status=failed", token("t1", Role::kAdmin));
  ASSERT_EQ(listed.status, 200) << listed.body;
  auto items = as_object(listed)["deliveries"].as_array();
  ASSERT_EQ(items.size(), 1u);
  auto item = items[0].as_object();
  EXPECT_NE(std::string(item["error"].as_string()).find("field mapping"), std::string::npos);
  EXPECT_EQ(item["attempts"].as_int64(), 1);
  EXPECT_EQ(item["webhook_id"].as_string(), "9c1f4e2a-0d6b-4a8e-b7f3-2e5d8c1a9b70");
  // Another tenant's admin sees none of it and cannot retry it.
  auto other = http_->get("/api/admin/ghl/deliveries?status=failed", token("t2", Role::kAdmin));
  EXPECT_TRUE(as_object(other)["deliveries"].as_array().empty());
  const std::string retry = "/api/admin/ghl/deliveries/" + std::to_string(failed[0].delivery_id) + "/retry";
  EXPECT_EQ(http_->post(retry, "", token("t2", Role::kAdmin)).status, 404);
  EXPECT_EQ(http_->post("/api/admin/ghl/deliveries/x1/retry", "", token("t1", Role::kAdmin)).status, 400);

  ASSERT_TRUE(store_->update_ghl_settings("t1", {.field_map_json = ""}));  // the operator fixes the mapping
  auto retried = http_->post(retry, "", token("t1", Role::kAdmin));
  ASSERT_EQ(retried.status, 202) << retried.body;
  auto done = wait_for("t1", store::DeliveryStatus::kDone, 1);
  EXPECT_EQ(done[0].attempts, 2);
  EXPECT_EQ(store_->count_events("t1").value(), 1u);
  EXPECT_EQ(http_->post(retry, "", token("t1", Role::kAdmin)).status, 409);  // done is not retried
}

TEST_F(GhlServerTest, PendingDeliveriesLeftByACrashAreProcessedAtStart) {
  link_tenant();
  // Stored and answered, then the process died before processing it.
  store::GhlDelivery d;
  d.tenant_id = "t1";
  d.location_id = kLocation;
  d.webhook_id = "9c1f4e2a-0d6b-4a8e-b7f3-2e5d8c1a9b70";
  d.kind = "webhook";
  d.received_at = kNow;
  d.body = delivery("inbound_sms.json", kNow);
  ASSERT_TRUE(store_->record_ghl_delivery(d).has_value());
  start();
  wait_for("t1", store::DeliveryStatus::kDone, 1);
  EXPECT_EQ(store_->count_events("t1").value(), 1u);
  EXPECT_EQ(store_->events_for_contact("t1", kContact)->at(0).event_id, "ghl-msg-MSGq1w2e3r4t5y6u7i8o9");
  // GHL redelivering it later is a duplicate.
  EXPECT_EQ(as_object(post_signed(d.body))["status"].as_string(), "duplicate");
}

// A delivery whose message id is stored as another lead's event fails (as
// POST /api/events answers 409), even for a lead that has events: it is not
// done as a "duplicate" of an event the lead never stored.
TEST_F(GhlServerTest, AnEventIdOfAnotherLeadFailsTheDelivery) {
  link_tenant();
  auto event = [](const std::string& id, const std::string& contact) {
    Event e;
    e.tenant_id = "t1";
    e.event_id = id;
    e.contact_id = contact;
    e.ts = kNow - 60;
    e.type = EventType::kSmsIn;
    return e;
  };
  Contact own;
  own.tenant_id = "t1";
  own.contact_id = kContact;
  own.created_at = kNow - 120;
  ASSERT_TRUE(store_->upsert_contact(own));
  ASSERT_TRUE(store_->append_event(event("own-1", kContact)).value());
  ASSERT_TRUE(store_->append_event(event("ghl-msg-MSGq1w2e3r4t5y6u7i8o9", "someone-else")).value());
  start();
  ASSERT_EQ(post_signed(delivery("inbound_sms.json", kNow)).status, 200);
  auto failed = wait_for("t1", store::DeliveryStatus::kFailed, 1);
  EXPECT_NE(failed[0].error.find("'ghl-msg-MSGq1w2e3r4t5y6u7i8o9' is stored for another lead"), std::string::npos)
      << failed[0].error;
  EXPECT_EQ(store_->count_events("t1").value(), 2u);
  EXPECT_EQ(store_->events_for_contact("t1", kContact)->size(), 1u);
}

// A delivery's contact fields and its event are stored together or not at
// all: a workflow delivery whose message's event id is stored for another
// lead fails, naming why, and stores nothing (no contact for a new lead, the
// old fields of a known one).
TEST_F(GhlServerTest, ADeliveryWithAnotherLeadsEventIdStoresNothingOfIt) {
  link_tenant();
  // The workflow event id derives from the body (ghl::map_workflow).
  auto event_id_of = [](const std::string& body) { return "ghl-wf-" + ghl::sha256_hex(body).substr(32); };
  const std::string fresh = fixture("workflow_inbound_sms.json");
  const std::string known = replace_all(replace_all(fresh, "CONwf0001", "CONwf0002"), R"("Budget":"350000")",
                                        R"("Budget":"999000")");
  Contact old;
  old.tenant_id = "t1";
  old.contact_id = "CONwf0002";
  old.created_at = kNow - 600;
  old.budget = 100000;
  ASSERT_TRUE(store_->upsert_contact(old));
  for (const std::string& body : {fresh, known}) {
    Event taken;
    taken.tenant_id = "t1";
    taken.event_id = event_id_of(body);
    taken.contact_id = "someone-else";
    taken.ts = kNow - 60;
    taken.type = EventType::kSmsIn;
    ASSERT_TRUE(store_->append_event(taken).value());
  }
  start();
  ASSERT_EQ(http_->post("/api/ghl/workflow/t1", fresh).status, 200);
  ASSERT_EQ(http_->post("/api/ghl/workflow/t1", known).status, 200);
  auto failed = wait_for("t1", store::DeliveryStatus::kFailed, 2);
  ASSERT_EQ(failed.size(), 2u);
  EXPECT_EQ(failed[0].error, "nothing stored: event_id '" + event_id_of(fresh) +
                                 "' is stored for another lead (event ids are unique within a tenant)");
  EXPECT_EQ(failed[1].error, "nothing stored: event_id '" + event_id_of(known) +
                                 "' is stored for another lead (event ids are unique within a tenant)");
  EXPECT_EQ(failed[0].attempts, 1);
  EXPECT_EQ(store_->get_contact("t1", "CONwf0001").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->get_contact("t1", "CONwf0002")->budget, 100000.0);
  EXPECT_EQ(store_->count_contacts("t1").value(), 1u);
  EXPECT_EQ(store_->count_events("t1").value(), 2u);
  EXPECT_TRUE(store_->events_for_contact("t1", "CONwf0002")->empty());
  // The admin listing says the same.
  auto listed = http_->get("/api/admin/ghl/deliveries?status=failed", token("t1", Role::kAdmin));
  ASSERT_EQ(listed.status, 200) << listed.body;
  auto items = as_object(listed)["deliveries"].as_array();
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].as_object().at("error").as_string(), failed[0].error);
}

// A delivery GHL sends again (same webhookId) is a duplicate; the same
// message in a new delivery (new webhookId) is done and stores nothing new.
TEST_F(GhlServerTest, ARedeliveredMessageStoresNothingTwice) {
  link_tenant();
  start();
  const std::string sms = delivery("inbound_sms.json", kNow, "wh-first");
  auto first = post_signed(sms);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(as_object(first)["status"].as_string(), "accepted");
  wait_for("t1", store::DeliveryStatus::kDone, 1);
  ASSERT_EQ(store_->count_contacts("t1").value(), 1u);
  ASSERT_EQ(store_->count_events("t1").value(), 1u);
  const Contact before = store_->get_contact("t1", kContact).value();

  auto replay = post_signed(sms);
  EXPECT_EQ(replay.status, 200);
  EXPECT_EQ(replay.body, R"({"status":"duplicate"})");
  auto again = post_signed(delivery("inbound_sms.json", kNow, "wh-second"));
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(as_object(again)["status"].as_string(), "accepted");
  auto done = wait_for("t1", store::DeliveryStatus::kDone, 2);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[1].webhook_id, "wh-second");
  EXPECT_EQ(done[1].error, "");
  EXPECT_EQ(deliveries("t1"), 2u);
  EXPECT_EQ(store_->count_contacts("t1").value(), 1u);
  EXPECT_EQ(store_->count_events("t1").value(), 1u);
  EXPECT_EQ(store_->get_contact("t1", kContact)->created_at, before.created_at);
}

// A contact update that moves the budget states it when it is applied, so
// the lead's matches start over from it (StatedCriteria::budget_stated_at);
// one that leaves the budget as it was keeps that time.
TEST_F(GhlServerTest, AContactUpdateThatMovesTheBudgetStatesItThen) {
  link_tenant();
  start();
  ASSERT_EQ(post_signed(delivery("contact_create.json", kNow)).status, 200);
  wait_for("t1", store::DeliveryStatus::kDone, 1);
  // A new contact states its budget when it was added (GHL's dateAdded).
  EXPECT_EQ(store_->get_contact("t1", kContact)->budget_stated_at, *parse_iso8601("2026-07-01T09:00:00Z"));
  clock_.advance(30);
  ASSERT_EQ(post_signed(delivery("contact_update.json", kNow + 30, "wh-moves-budget")).status, 200);
  wait_for("t1", store::DeliveryStatus::kDone, 2);
  Contact c = store_->get_contact("t1", kContact).value();
  EXPECT_EQ(c.budget, 610000.0);
  EXPECT_EQ(c.budget_stated_at, kNow + 30);
  clock_.advance(30);
  ASSERT_EQ(post_signed(delivery("contact_update.json", kNow + 60, "wh-same-budget")).status, 200);
  wait_for("t1", store::DeliveryStatus::kDone, 3);
  EXPECT_EQ(store_->get_contact("t1", kContact)->budget_stated_at, kNow + 30);
}

TEST_F(GhlServerTest, DeliveriesApplyInTheOrderTheyWereStored) {
  link_tenant();
  start();
  for (int budget = 1; budget <= 20; ++budget) {
    std::string body = delivery("contact_update.json", kNow, "wh-budget-" + std::to_string(budget));
    body = replace_all(body, R"("value":610000)", "\"value\":" + std::to_string(budget * 1000));
    ASSERT_EQ(post_signed(body).status, 200);
  }
  wait_for("t1", store::DeliveryStatus::kDone, 20);
  EXPECT_EQ(store_->get_contact("t1", kContact)->budget, 20000.0);
}

TEST_F(GhlServerTest, UnusableKeyFileFailsStart) {
  write(dir_ / "ed25519.pem", "not a key");
  ServerConfig config;
  config.port = 0;
  config.jwt_secret = kSecret;
  config.ghl_ed25519_key_file = (dir_ / "ed25519.pem").string();
  Server server(config, ServerDeps{*store_, *bus_, *cache_, *engine_, *registry_, clock_});
  EXPECT_EQ(server.start().code(), StatusCode::kInvalidArgument);
}

// GET/PUT /api/admin/ghl/config: the tenant comes from the admin token;
// bad input is a 400 with a JSON error and changes nothing.
TEST_F(GhlServerTest, AdminSetsTheHotStageAndBadConfigIsRefused) {
  link_tenant();
  start();
  const std::string admin = token("t1", Role::kAdmin);
  auto got = http_->get("/api/admin/ghl/config", admin);
  ASSERT_EQ(got.status, 200) << got.body;
  EXPECT_EQ(as_object(got).at("tenant_id").as_string(), "t1");
  EXPECT_EQ(as_object(got).at("ghl_location_id").as_string(), kLocation);
  EXPECT_TRUE(as_object(got).at("hot_stage").is_null());  // off by default

  const std::string stage = "0b6e8c1e-7c2a-4f5e-9d1b-3a2c4e5f6a7b";
  auto put = http_->put("/api/admin/ghl/config", R"({"hot_stage":{"pipeline_id":"pipeSales","stage_id":")" + stage + R"("}})",
                        admin);
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(as_object(put).at("hot_stage").as_object().at("stage_id").as_string(), stage);
  auto stored = store_->get_ghl_settings("t1").value();
  EXPECT_EQ(stored.hot_pipeline_id, "pipeSales");
  EXPECT_EQ(stored.hot_stage_id, stage);
  EXPECT_EQ(stored.workflow_secret, "wf-shared-secret");  // the rest of the settings is kept
  EXPECT_EQ(as_object(http_->get("/api/admin/ghl/config", admin)).at("hot_stage").as_object().at("pipeline_id").as_string(),
            "pipeSales");

  for (const std::string& bad : {std::string("{"), std::string("[]"), std::string("{}"), std::string(R"({"hot_stage":"pipeSales:stg"})"),
                                std::string(R"({"hot_stage":{"pipeline_id":"pipeSales"}})"),
                                std::string(R"({"hot_stage":{"pipeline_id":"p","stage_id":"s","position":2}})"),
                                std::string(R"({"hot_stage":null,"extra":1})"),
                                std::string(R"({"hot_stage":{"pipeline_id":"p/1","stage_id":"s"}})"),
                                std::string(R"({"hot_stage":{"pipeline_id":"p","stage_id":7}})"),
                                std::string(R"({"hot_stage":{"pipeline_id":"p","stage_id":")") + std::string(200, 'x') + "\"}}"}) {
    auto r = http_->put("/api/admin/ghl/config", bad, admin);
    EXPECT_EQ(r.status, 400) << bad << " -> " << r.body;
    EXPECT_TRUE(as_object(r).contains("error")) << r.body;
  }
  EXPECT_EQ(store_->get_ghl_settings("t1")->hot_stage_id, stage);

  // Agents may not read or change it; other methods are refused.
  const std::string agent = token("t1");
  EXPECT_EQ(http_->get("/api/admin/ghl/config", agent).status, 403);
  EXPECT_EQ(http_->put("/api/admin/ghl/config", R"({"hot_stage":null})", agent).status, 403);
  EXPECT_EQ(http_->post("/api/admin/ghl/config", R"({"hot_stage":null})", admin).status, 405);
  EXPECT_EQ(http_->get("/api/admin/ghl/config").status, 401);

  // Another tenant's admin sees and changes only its own configuration.
  const std::string other = token("t2", Role::kAdmin);
  EXPECT_TRUE(as_object(http_->get("/api/admin/ghl/config", other)).at("hot_stage").is_null());
  ASSERT_EQ(http_->put("/api/admin/ghl/config", R"({"hot_stage":{"pipeline_id":"p2","stage_id":"s2"}})", other).status, 200);
  EXPECT_EQ(http_->get("/api/admin/ghl/config?tenant_id=t1", other).status, 403);
  EXPECT_EQ(store_->get_ghl_settings("t1")->hot_stage_id, stage);
  EXPECT_EQ(store_->get_ghl_settings("t2")->hot_stage_id, "s2");

  // null turns it off.
  auto off = http_->put("/api/admin/ghl/config", R"({"hot_stage":null})", admin);
  ASSERT_EQ(off.status, 200) << off.body;
  EXPECT_TRUE(as_object(off).at("hot_stage").is_null());
  EXPECT_TRUE(store_->get_ghl_settings("t1")->hot_pipeline_id.empty());
}

// The operator's view of a refused grant: GHL refuses the refresh (the app
// was uninstalled in GHL), and the tenant's GET /api/admin/ghl/config names
// the state with GHL's message, /readyz turns the write-back amber and
// /metrics counts the tenant; the OAuth callback (a new install) clears it
// all and the waiting score goes out.
TEST_F(GhlServerTest, ARefusedGrantIsShownUntilTheAppIsInstalledAgain) {
  link_tenant();
  reai::testing::FakeGhl ghl;
  ghl.add_oauth_code("code-1", kLocation);
  ghl.add_oauth_code("code-2", kLocation);
  start(&ghl);
  const std::string admin = token("t1", Role::kAdmin);
  auto install_state = [&] {
    return std::string(as_object(http_->get("/api/admin/ghl/config", admin)).at("install").as_object().at("state").as_string());
  };
  auto readyz = [&] { return as_object(http_->get("/readyz")).at("ghl_writeback").as_object(); };
  auto metric_line = [&](const std::string& line) {
    return http_->get("/metrics").body.find("\n" + line + "\n") != std::string::npos;
  };
  EXPECT_EQ(install_state(), "linked");
  auto installed = http_->get("/api/ghl/oauth/callback?code=code-1");
  ASSERT_EQ(installed.status, 200) << installed.body;
  EXPECT_EQ(install_state(), "oauth");
  EXPECT_EQ(readyz().at("status").as_string(), "ok");

  ghl.revoke_grants();
  ASSERT_EQ(post_signed(delivery("inbound_sms.json", kNow)).status, 200);
  for (int i = 0; i < 2000 && readyz().at("tenants_needing_reauth").as_int64() != 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto ready = readyz();
  ASSERT_EQ(ready.at("tenants_needing_reauth").as_int64(), 1);
  EXPECT_EQ(ready.at("status").as_string(), "degraded");
  EXPECT_NE(std::string(ready.at("detail").as_string()).find("1 tenant needs GHL re-authorisation"), std::string::npos);
  auto config = as_object(http_->get("/api/admin/ghl/config", admin));
  const auto& install = config.at("install").as_object();
  EXPECT_EQ(install.at("state").as_string(), "needs_reauth");
  EXPECT_TRUE(install.at("since").is_string());
  EXPECT_EQ(install.at("detail").as_string(), "GHL token refresh: 400 Invalid grant: refresh token is invalid");
  EXPECT_TRUE(metric_line("reai_ghl_tenants_needing_reauth 1"));
  EXPECT_TRUE(metric_line("reai_ghl_reauth_marked_total 1"));
  EXPECT_EQ(ghl.put_counts().count(kContact), 0u);

  auto again = http_->get("/api/ghl/oauth/callback?code=code-2");
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(install_state(), "oauth");
  for (int i = 0; i < 2000 && !(ghl.put_counts().count(kContact) && readyz().at("tenants_needing_reauth").as_int64() == 0);
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(ghl.put_counts().count(kContact), 1u);
  EXPECT_EQ(readyz().at("status").as_string(), "ok");
  EXPECT_EQ(ghl.refreshes(), std::vector<std::string>{"rt-1"});
}

// UNINSTALL dates the uninstall (tenant list, config route); INSTALL clears it.
TEST_F(GhlServerTest, UninstallIsDatedAndAnInstallClearsIt) {
  link_tenant();
  start();
  const std::string uninstall = delivery("uninstall.json", kNow);
  ASSERT_EQ(post_signed(uninstall).status, 200);
  wait_for("t1", store::DeliveryStatus::kDone, 1);
  const auto settings = store_->get_ghl_settings("t1").value();
  EXPECT_FALSE(settings.active);
  EXPECT_GT(settings.uninstalled_at, 0);
  auto config = as_object(http_->get("/api/admin/ghl/config", token("t1", Role::kAdmin)));
  EXPECT_EQ(config.at("install").as_object().at("state").as_string(), "uninstalled");
  EXPECT_EQ(config.at("install").as_object().at("since").as_string(), format_iso8601(settings.uninstalled_at));
  const std::string install = replace_all(delivery("install.json", kNow), "LOCnewbrokerage01", kLocation);
  ASSERT_EQ(post_signed(install).status, 200);
  wait_for("t1", store::DeliveryStatus::kDone, 2);
  EXPECT_TRUE(store_->get_ghl_settings("t1")->active);
  EXPECT_EQ(store_->get_ghl_settings("t1")->uninstalled_at, 0);
  config = as_object(http_->get("/api/admin/ghl/config", token("t1", Role::kAdmin)));
  EXPECT_EQ(config.at("install").as_object().at("state").as_string(), "linked");
  EXPECT_TRUE(config.at("install").as_object().at("since").is_null());
}

}  // namespace
}  // namespace reai::server
