// The dashboard's read routes over real HTTP: contact attributes, a
// contact's events, the score distribution, and static caching headers.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "bus/bus.h"
#include "scoring/scoring.h"
#include "server/server.h"
#include "store/store.h"
#include "server/server_test_fixture.h"
#include "support/test_client.h"

namespace reai::server {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using reai::testing::HttpClient;
using reai::testing::HttpResponse;

using fixture::kNow;
using fixture::make_temp_dir;
using fixture::as_object;

class DashboardRoutesTest : public fixture::InProcessServerTest {
 protected:
  void event(const std::string& tok, const std::string& contact, const std::string& type, const std::string& ts) {
    auto r = http_->post("/api/events",
                         R"({"contact_id":")" + contact + R"(","type":")" + type + R"(","ts":")" + ts + R"("})", tok);
    ASSERT_EQ(r.status, 200) << r.body;
  }
};

TEST_F(DashboardRoutesTest, ContactAttributesAndEventsNewestFirst) {
  start();
  const std::string a = token("tenant_a");
  auto put = http_->put("/api/contacts/c1",
                        R"({"source":"referral","lead_type":"buyer","budget":425000,"pre_approved":true,"timeline_months":2})",
                        a);
  ASSERT_EQ(put.status, 200) << put.body;
  event(a, "c1", "page_view", "2023-11-14T10:00:00Z");
  event(a, "c1", "tour_request", "2023-11-14T11:00:00Z");
  event(a, "c1", "sms_in", "2023-11-14T12:00:00Z");

  auto contact = http_->get("/api/contacts/c1", a);
  ASSERT_EQ(contact.status, 200) << contact.body;
  auto c = as_object(contact);
  EXPECT_EQ(c.at("source").as_string(), "referral");
  EXPECT_EQ(c.at("lead_type").as_string(), "buyer");
  EXPECT_EQ(c.at("budget").to_number<double>(), 425000.0);
  EXPECT_EQ(c.at("pre_approved").as_bool(), true);
  EXPECT_EQ(c.at("timeline_months").as_int64(), 2);
  EXPECT_TRUE(c.at("beds_wanted").is_null());
  EXPECT_EQ(c.at("budget_stated_at").as_string(), "2023-11-14T22:13:20Z");  // the PUT's (fixture::kNow)
  // The same budget again keeps its time; another one is stated at its PUT.
  clock_.advance(60);
  ASSERT_EQ(http_->put("/api/contacts/c1", R"({"budget":425000,"timeline_months":3})", a).status, 200);
  EXPECT_EQ(as_object(http_->get("/api/contacts/c1", a)).at("budget_stated_at").as_string(), "2023-11-14T22:13:20Z");
  clock_.advance(60);
  ASSERT_EQ(http_->put("/api/contacts/c1", R"({"budget":450000})", a).status, 200);
  EXPECT_EQ(as_object(http_->get("/api/contacts/c1", a)).at("budget_stated_at").as_string(), "2023-11-14T22:15:20Z");
  ASSERT_EQ(http_->put("/api/contacts/c2", R"({"lead_type":"buyer"})", a).status, 200);
  EXPECT_TRUE(as_object(http_->get("/api/contacts/c2", a)).at("budget_stated_at").is_null());  // never stated
  // A lead created with its past states its budget when it began.
  ASSERT_EQ(http_->put("/api/contacts/c3", R"({"created_at":"2023-11-10T08:00:00Z","budget":300000})", a).status, 200);
  EXPECT_EQ(as_object(http_->get("/api/contacts/c3", a)).at("budget_stated_at").as_string(), "2023-11-10T08:00:00Z");

  auto events = http_->get("/api/contacts/c1/events", a);
  ASSERT_EQ(events.status, 200) << events.body;
  auto e = as_object(events);
  EXPECT_EQ(e.at("total").as_int64(), 3);
  const auto& list = e.at("events").as_array();
  ASSERT_EQ(list.size(), 3u);
  EXPECT_EQ(list[0].as_object().at("type").as_string(), "sms_in");
  EXPECT_EQ(list[0].as_object().at("ts").as_string(), "2023-11-14T12:00:00Z");
  EXPECT_EQ(list[2].as_object().at("type").as_string(), "page_view");

  auto limited = as_object(http_->get("/api/contacts/c1/events?limit=2", a));
  EXPECT_EQ(limited.at("events").as_array().size(), 2u);
  EXPECT_EQ(limited.at("total").as_int64(), 3);
}

TEST_F(DashboardRoutesTest, BadInputOtherTenantsAndMissingTokens) {
  start();
  const std::string a = token("tenant_a");
  const std::string b = token("tenant_b");
  event(a, "secret", "sms_in", "2023-11-14T10:00:00Z");
  for (const char* q : {"?limit=0", "?limit=1001", "?limit=abc", "?limit=", "?limit=-1"}) {
    auto r = http_->get(std::string("/api/contacts/secret/events") + q, a);
    EXPECT_EQ(r.status, 400) << q << " " << r.body;
    EXPECT_NE(r.body.find("limit must be 1..1000"), std::string::npos) << q;
  }
  EXPECT_EQ(http_->get("/api/contacts/secret", b).status, 404);
  auto other = http_->get("/api/contacts/secret/events", b);
  EXPECT_EQ(other.status, 404);
  EXPECT_NE(other.body.find("\"error\""), std::string::npos);
  EXPECT_EQ(http_->get("/api/contacts/nobody/events", a).status, 404);
  EXPECT_EQ(http_->get("/api/contacts/secret/events").status, 401);
  EXPECT_EQ(http_->get("/api/contacts/secret").status, 401);
  EXPECT_EQ(http_->get("/api/leads/distribution").status, 401);
  EXPECT_EQ(http_->post("/api/contacts/secret/events", "{}", a).status, 405);
  EXPECT_EQ(http_->post("/api/leads/distribution", "{}", a).status, 405);
  EXPECT_EQ(http_->get("/api/contacts/secret/events?tenant_id=tenant_a", b).status, 403);
}

TEST_F(DashboardRoutesTest, DistributionCountsEveryLeadOfTheTenantOnly) {
  start();
  const std::string a = token("tenant_a");
  const std::string b = token("tenant_b");
  ASSERT_EQ(http_->put("/api/contacts/r1", R"({"source":"referral"})", a).status, 200);
  ASSERT_EQ(http_->put("/api/contacts/r2", R"({"source":"referral"})", a).status, 200);
  ASSERT_EQ(http_->put("/api/contacts/z1", R"({"source":"zillow"})", a).status, 200);
  event(a, "x1", "page_view", "2023-11-14T10:00:00Z");  // created by its event: no source
  event(b, "b1", "sms_in", "2023-11-14T10:00:00Z");

  auto r = http_->get("/api/leads/distribution", a);
  ASSERT_EQ(r.status, 200) << r.body;
  auto d = as_object(r);
  EXPECT_EQ(d.at("tenant_id").as_string(), "tenant_a");
  EXPECT_EQ(d.at("leads").as_int64(), 4);
  const auto& bands = d.at("bands").as_object();
  EXPECT_EQ(bands.at("hot").as_int64() + bands.at("warm").as_int64() + bands.at("cold").as_int64(), 4);
  std::map<std::string, std::int64_t> by_source;
  for (const auto& s : d.at("sources").as_array()) {
    by_source[std::string(s.as_object().at("source").as_string())] = s.as_object().at("count").as_int64();
  }
  EXPECT_EQ(by_source, (std::map<std::string, std::int64_t>{{"referral", 2}, {"unknown", 1}, {"zillow", 1}}));
  std::int64_t binned = 0;
  const auto& bins = d.at("score_bins").as_array();
  ASSERT_EQ(bins.size(), 10u);
  EXPECT_EQ(bins[9].as_object().at("to").as_int64(), 100);
  for (const auto& bin : bins) {
    const auto& o = bin.as_object();
    binned += o.at("hot").as_int64() + o.at("warm").as_int64() + o.at("cold").as_int64();
  }
  EXPECT_EQ(binned, 4);

  auto other = as_object(http_->get("/api/leads/distribution", b));
  EXPECT_EQ(other.at("leads").as_int64(), 1);
  EXPECT_EQ(http_->get("/api/leads/distribution", token("empty")).status, 200);
}

TEST_F(DashboardRoutesTest, HashedAssetsAreImmutableAndThePageHasAStrictPolicy) {
  const fs::path static_root_ = make_temp_dir("static");
  extra_dirs_.push_back(static_root_);
  fs::create_directories(static_root_ / "assets");
  std::ofstream(static_root_ / "index.html") << "<html>dashboard</html>";
  std::ofstream(static_root_ / "assets" / "index-abc123.js") << "console.log(1)";
  std::ofstream(static_root_ / "favicon.svg") << "<svg/>";
  ServerConfig config;
  config.static_dir = static_root_.string();
  start(config);
  auto index = http_->get("/");
  ASSERT_EQ(index.status, 200);
  EXPECT_EQ(index.header("cache-control"), "no-cache");
  const std::string csp = index.header("content-security-policy");
  EXPECT_NE(csp.find("script-src 'self'"), std::string::npos);
  EXPECT_NE(csp.find("style-src 'self'"), std::string::npos);
  EXPECT_EQ(csp.find("unsafe-inline"), std::string::npos);
  auto js = http_->get("/assets/index-abc123.js");
  ASSERT_EQ(js.status, 200);
  EXPECT_EQ(js.header("cache-control"), "public, max-age=31536000, immutable");
  auto icon = http_->get("/favicon.svg");
  ASSERT_EQ(icon.status, 200);
  EXPECT_EQ(icon.header("cache-control"), "public, max-age=3600");
  EXPECT_EQ(http_->get("/assets/missing.js").status, 404);
}

}  // namespace
}  // namespace reai::server
