// Black-box tests of `reai --store postgres://...`: the real binary against a
// real PostgreSQL (scripts/pg-test-server), one private cluster per test so
// stopping it disturbs nobody else. Covers durability across a reai restart,
// refusal (503, never an acknowledgement) while PostgreSQL is down, and
// recovery without restarting reai.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "support/private_postgres.h"
#include "support/process.h"
#include "support/test_client.h"
#include "support/token.h"

namespace reai::testing {
namespace {

namespace json = boost::json;

const std::string kSecret = kTestJwtSecret;
const std::string kFixture = "tests/fixtures/crm_small";


std::string event_body(const std::string& id) {
  return R"({"contact_id":"c1","type":"sms_in","event_id":")" + id + R"("})";
}


class PostgresBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(cluster_.fresh()) << "scripts/pg-test-server could not start PostgreSQL";
    ASSERT_FALSE(cluster_.url().empty());
  }
  void start_reai() {
    port_ = free_port();
    server_ = std::make_unique<ReaiProcess>(std::vector<std::string>{
        "serve", "--port", std::to_string(port_), "--store", cluster_.url(), "--model-dir",
        make_temp_dir("reai-pg-models"), "--jwt-secret", kSecret});
    ASSERT_TRUE(server_->wait_for_port(port_)) << server_->log();
  }
  std::string tenant_list() {
    auto list = run_reai({"tenant", "list", "--store", cluster_.url()});
    EXPECT_EQ(list.exit_code, 0) << list.output;
    return list.output;
  }

  PrivatePostgres cluster_{"pg-binary-test-" +
                           std::string(::testing::UnitTest::GetInstance()->current_test_info()->name())};
  std::uint16_t port_ = 0;
  std::unique_ptr<ReaiProcess> server_;
};

TEST_F(PostgresBinaryTest, EventsSurviveRestartAndOutageIsRefusedThenRecovered) {
  const std::string agent = reai_token("t1", server::Role::kAgent, kSecret);
  start_reai();
  {
    HttpClient http("127.0.0.1", port_);
    for (const char* id : {"e1", "e2", "e3"}) {
      auto r = http.post("/api/events", event_body(id), agent);
      ASSERT_EQ(r.status, 200) << r.body;
    }
  }
  ASSERT_EQ(server_->stop(SIGTERM), 0) << server_->log();

  // A new reai process rebuilds the lead from PostgreSQL: the 4th event counts 4.
  start_reai();
  HttpClient http("127.0.0.1", port_);
  auto fourth = http.post("/api/events", event_body("e4"), agent);
  ASSERT_EQ(fourth.status, 200) << fourth.body;
  EXPECT_EQ(json::parse(fourth.body).at("events_count").as_int64(), 4);
  auto replay = http.post("/api/events", event_body("e1"), agent);
  EXPECT_EQ(replay.status, 200) << replay.body;
  EXPECT_NE(tenant_list().find("t1,t1,1,4,"), std::string::npos);

  // PostgreSQL down: refused with 503 and a JSON error, and /readyz says why.
  ASSERT_TRUE(cluster_.stop());
  auto refused = http.post("/api/events", event_body("e5"), agent);
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_TRUE(json::parse(refused.body).as_object().contains("error")) << refused.body;
  auto ready = http.get("/readyz");
  EXPECT_EQ(ready.status, 503) << ready.body;
  auto store = json::parse(ready.body).at("store").as_object();
  EXPECT_EQ(store.at("status").as_string(), "unavailable") << ready.body;
  EXPECT_NE(std::string(store.at("detail").as_string()).find("postgres"), std::string::npos) << ready.body;

  // PostgreSQL back: the same reai process takes the retried event.
  ASSERT_TRUE(cluster_.start());
  EXPECT_EQ(http.get("/readyz").status, 200);
  auto retried = http.post("/api/events", event_body("e5"), agent);
  ASSERT_EQ(retried.status, 200) << retried.body;
  EXPECT_EQ(json::parse(retried.body).at("events_count").as_int64(), 5);
  EXPECT_NE(tenant_list().find("t1,t1,1,5,"), std::string::npos);
  EXPECT_EQ(server_->stop(SIGTERM), 0) << server_->log();
}

TEST_F(PostgresBinaryTest, ImportAndTenantAddTakeTheStoreUrl) {
  const std::vector<std::string> args = {"import", "--store", cluster_.url(), "--contacts",
                                         kFixture + "/contacts.csv", "--events", kFixture + "/events.csv",
                                         "--stages", kFixture + "/opportunity_stages.csv"};
  auto first = run_reai(args);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("imported 600 contacts, 14476 events (0 already present), 162 stage rows"),
            std::string::npos)
      << first.output;
  EXPECT_EQ(first.output.find("postgresql://"), std::string::npos) << "the URL is not echoed: " << first.output;
  auto second = run_reai(args);
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("0 events (14476 already present)"), std::string::npos) << second.output;

  auto add = run_reai({"tenant", "add", "--store", cluster_.url(), "--tenant", "t_new", "--name", "New Realty"});
  ASSERT_EQ(add.exit_code, 0) << add.output;
  std::string list = tenant_list();
  EXPECT_NE(list.find("t_new,New Realty,0,0,"), std::string::npos) << list;
  EXPECT_NE(list.find("t_cyclone,t_cyclone,"), std::string::npos) << list;

  ASSERT_TRUE(cluster_.stop());
  auto down = run_reai({"tenant", "list", "--store", cluster_.url()});
  EXPECT_EQ(down.exit_code, 1) << down.output;
  EXPECT_NE(down.output.find("postgres store: cannot connect"), std::string::npos) << down.output;
}

// Listings and GHL contact exports live in the Store too: a PostgreSQL
// deployment imports them with --store (they used to open SQLite only).
TEST_F(PostgresBinaryTest, ListingsAndGhlContactsImportTakeTheStoreUrl) {
  const std::string models = make_temp_dir("reai-pg-listing-models");
  const std::vector<std::string> listings = {"import", "listings", "--store", cluster_.url(), "--model-dir", models,
                                             "--tenant", "t_list", "--listings", "tests/fixtures/ames_small/ames.csv",
                                             "--price-column", "Sale_Price"};
  auto first = run_reai(listings);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("imported 200 listings for tenant t_list: 200 new"), std::string::npos) << first.output;
  auto again = run_reai(listings);  // the second run reads them back from PostgreSQL
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("0 new, 0 updated, 200 unchanged"), std::string::npos) << again.output;

  const std::string dir = make_temp_dir("reai-pg-ghl-export");
  const std::string csv = dir + "/export.csv";
  std::ofstream(csv) << "Contact Id,Created,Tags\nc1,2026-07-01 09:00:00,Buyer\nc2,2026-07-02 10:00:00,\n";
  auto contacts = run_reai({"import", "ghl-contacts", "--store", cluster_.url(), "--tenant", "t_list", "--csv", csv});
  ASSERT_EQ(contacts.exit_code, 0) << contacts.output;
  EXPECT_NE(contacts.output.find("imported 2 GHL contacts into tenant t_list"), std::string::npos) << contacts.output;
  EXPECT_NE(tenant_list().find("t_list,t_list,2,0,"), std::string::npos);
}

}  // namespace
}  // namespace reai::testing
