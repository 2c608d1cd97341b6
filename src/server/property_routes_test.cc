// Property routes over real HTTP and WebSocket: matches, valuation and
// listings, tenant isolation, bad input, and match_update after behaviour.
#include <gtest/gtest.h>

#include <algorithm>

#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "property/inventory.h"
#include "property/property.h"
#include "server/property_routes.h"
#include "server/server_test_fixture.h"

namespace reai::server {
namespace {

namespace json = boost::json;
using fixture::as_object;
using fixture::error_of;
using reai::testing::HttpResponse;
using reai::testing::WsClient;

// Three neighbourhoods at three price levels; beds and size follow price.
struct SyntheticListing {
  std::string id;
  std::string neighbourhood;
  int beds;
  int area;
  double price;
};

std::vector<SyntheticListing> synthetic_listings() {
  std::vector<SyntheticListing> out;
  const char* names[] = {"Northridge", "OldTown", "Edwards"};
  const double base[] = {320000, 140000, 190000};
  for (int i = 0; i < 60; ++i) {
    const int nb = i % 3;
    const int beds = 2 + (i / 3) % 3;
    const int area = 900 + 35 * i + 200 * beds;
    char id[16];
    std::snprintf(id, sizeof id, "t-%04d", i + 1);
    out.push_back({id, names[nb], beds, area, base[nb] * (0.8 + 0.02 * (i % 17)) + 60.0 * area});
  }
  return out;
}

std::string attributes_of(const SyntheticListing& l) {
  json::object o;
  o["Neighborhood"] = l.neighbourhood;
  o["Bedroom_AbvGr"] = std::to_string(l.beds);
  o["Gr_Liv_Area"] = std::to_string(l.area);
  o["Year_Built"] = std::to_string(1950 + (l.area % 60));
  return json::serialize(o);
}

class PropertyRoutesTest : public fixture::InProcessServerTest {
 protected:
  void start_with_models() {
    ServerConfig config;
    config.model_dir = model_dir_.string();
    start(config);
  }

  // Waits until the tenant's catalog is installed: the matching worker
  // preloads it at start and match routes answer 503 until then. The answer
  // that is not 503 (404 for an unknown lead once loaded).
  HttpResponse wait_for_listings(const std::string& tenant) {
    const std::string t = token(tenant);
    HttpResponse r = http_->get("/api/leads/no-such-lead/matches", t);
    for (int i = 0; i < 400 && r.status == 503; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
      r = http_->get("/api/leads/no-such-lead/matches", t);
    }
    EXPECT_NE(r.status, 503) << "the catalog of " << tenant << " was never installed";
    return r;
  }

  void import_listings(const std::string& tenant) {
    std::vector<store::ListingRecord> rows;
    for (const auto& l : synthetic_listings()) {
      rows.push_back({tenant, l.id, l.price, attributes_of(l), "", fixture::kNow});
    }
    ASSERT_TRUE(store_->upsert_listings(rows));
  }

  void add_buyer(const std::string& tenant, const std::string& id, std::optional<double> budget) {
    Contact c;
    c.tenant_id = tenant;
    c.contact_id = id;
    c.created_at = fixture::kNow - 86400;
    c.lead_type = LeadType::kBuyer;
    c.budget = budget;
    ASSERT_TRUE(store_->upsert_tenant({tenant, tenant, fixture::kNow, ""}));
    ASSERT_TRUE(store_->upsert_contact(c));
  }

  // Trains a small AVM on the synthetic listings into MODEL_DIR/value (or
  // `dir` under MODEL_DIR); with `sale_year` the sales also have a Year_Sold
  // (2006 to 2010); with `left_out` columns the schema leaves out: PID (an
  // identifier) and Year_Sold 2010 (constant: every sale of one year).
  void train_value_model(const std::string& dir = "value", bool sale_year = false, bool left_out = false) {
    std::string csv = std::string(left_out ? "PID," : "") + "Neighborhood,Bedroom_AbvGr,Gr_Liv_Area,Year_Built," +
                      (sale_year || left_out ? "Year_Sold," : "") + "Sale_Price\n";
    int row = 0;
    for (const auto& l : synthetic_listings()) {
      csv += (left_out ? std::to_string(526301100 + 7 * row) + "," : "") + l.neighbourhood + "," +
             std::to_string(l.beds) + "," + std::to_string(l.area) + "," + std::to_string(1950 + (l.area % 60)) + "," +
             (sale_year ? std::to_string(2006 + row % 5) + "," : left_out ? "2010," : "") +
             std::to_string(static_cast<long>(l.price)) + "\n";
      ++row;
    }
    auto table = property::parse_sales_csv(csv, "train.csv");
    ASSERT_TRUE(table) << table.status().to_string();
    property::TrainOptions options;
    options.time_budget_seconds = 0;
    options.nthread = 1;
    auto model = property::ValuationModel::train(*table, "Sale_Price", options);
    ASSERT_TRUE(model) << model.status().to_string();
    ASSERT_TRUE(model->save((model_dir_ / dir).string()));
  }

  std::vector<std::string> match_ids(const HttpResponse& r) {
    std::vector<std::string> ids;
    auto o = as_object(r);
    if (!o.contains("matches")) return ids;
    for (const auto& m : o["matches"].as_array()) ids.emplace_back(m.as_object().at("property_id").as_string());
    return ids;
  }

  // The popularity reason ("saved by N other buyers") of listing `id` among
  // the matches of a match answer's body; "" when it has none or is not matched.
  static std::string popularity_reason(const std::string& body, const std::string& id) {
    boost::system::error_code ec;
    auto v = json::parse(body, ec);
    if (ec || !v.is_object() || !v.as_object().contains("matches")) return {};
    for (const auto& m : v.as_object().at("matches").as_array()) {
      if (m.as_object().at("property_id").as_string() != id) continue;
      for (const auto& r : m.as_object().at("reasons").as_array()) {
        const std::string reason(r.as_string());
        if (reason.rfind("saved by ", 0) == 0) return reason;
      }
    }
    return {};
  }

  // Polls `answer` (a match answer's body) until listing `id` carries the
  // popularity reason `want` (the matching worker runs behind the event
  // answers), at most ~5 s; the reason last seen.
  template <typename Answer>
  static std::string wait_for_reason(Answer answer, const std::string& id, const std::string& want) {
    std::string seen;
    for (int i = 0; i < 250; ++i) {
      seen = popularity_reason(answer(), id);
      if (seen == want) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return seen;
  }

  HttpResponse post_save(const std::string& tenant, const std::string& contact, const std::string& listing,
                         const std::string& event_id) {
    const std::string body = R"({"event_id":")" + event_id + R"(","contact_id":")" + contact +
                             R"(","type":"property_save","property_id":")" + listing + R"("})";
    return http_->post("/api/events", body, token(tenant));
  }

  // The next message of `type`, skipping others (score updates).
  std::optional<json::object> next_of_type(WsClient& ws, const std::string& type) {
    for (int i = 0; i < 50; ++i) {
      auto text = ws.read(std::chrono::seconds(10));
      if (!text) return std::nullopt;
      auto o = json::parse(*text).as_object();
      if (o["type"].as_string() == type) return o;
    }
    return std::nullopt;
  }
};

TEST_F(PropertyRoutesTest, LeadMatchesCarryScoresInterestAndReasons) {
  import_listings("tenant-a");
  add_buyer("tenant-a", "buyer-1", 200000);
  start_with_models();
  wait_for_listings("tenant-a");
  const std::string a = token("tenant-a");
  auto r = http_->get("/api/leads/buyer-1/matches?k=5", a);
  ASSERT_EQ(r.status, 200) << r.body;
  auto o = as_object(r);
  EXPECT_EQ(o["lead_id"].as_string(), "buyer-1");
  EXPECT_EQ(o["ranker"].as_string(), "content");
  EXPECT_EQ(o["listings"].as_int64(), 60);
  const auto& matches = o["matches"].as_array();
  ASSERT_EQ(matches.size(), 5u);
  for (const auto& v : matches) {
    const auto& m = v.as_object();
    const double score = m.at("match_score").as_double();
    const double interest = m.at("predicted_interest").as_double();
    EXPECT_GE(score, 0.0);
    EXPECT_LE(score, 1.0);
    EXPECT_GE(interest, 0.0);
    EXPECT_LE(interest, 1.0);
    EXPECT_TRUE(m.at("reasons").is_array());
    EXPECT_EQ(std::string(m.at("property_id").as_string()).substr(0, 2), "t-");
  }
  // Within budget comes first for a buyer with a stated budget.
  EXPECT_LE(matches[0].as_object().at("list_price").as_double(), 200000 * 1.3);
  const auto& budget = o["budget"].as_object();
  EXPECT_EQ(budget.at("stated").as_double(), 200000);
  EXPECT_EQ(budget.at("effective").as_double(), 200000);
  EXPECT_EQ(budget.at("follows").as_string(), "statement");
  EXPECT_EQ(budget.at("why").as_string(), "as stated");

  EXPECT_EQ(http_->get("/api/leads/buyer-1/matches", a).status, 200);  // k defaults to 10
  EXPECT_EQ(match_ids(http_->get("/api/leads/buyer-1/matches", a)).size(), 10u);
  EXPECT_EQ(match_ids(http_->get("/api/leads/buyer-1/matches?x=1&k=%33", a)).size(), 3u);  // decoded like any query
  for (const char* bad : {"k=0", "k=101", "k=x", "k=", "k=%zz", "k=-1", "k=3x", "k=99999999999999999999999"}) {
    auto b = http_->get(std::string("/api/leads/buyer-1/matches?") + bad, a);
    EXPECT_EQ(b.status, 400) << bad;
    EXPECT_EQ(error_of(b), "k must be 1..100");
  }
  auto unknown = http_->get("/api/leads/nobody/matches", a);
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(error_of(unknown), "lead 'nobody' not found");
  EXPECT_EQ(http_->get("/api/leads/buyer-1/matches").status, 401);
  EXPECT_EQ(http_->get("/api/leads/buyer-1/matches?tenant_id=tenant-b", a).status, 403);
  EXPECT_EQ(http_->request("POST", "/api/leads/buyer-1/matches", "{}", a).status, 405);
}

// A lead's stored area that no listing is in is named in unknown_areas, not
// silently dropped; the lead is still matched (never a 400: the stored data
// is not the request). Whether the buyer's state is kept by the matching
// worker or read from the store.
TEST_F(PropertyRoutesTest, LeadMatchesNameAStoredAreaNoListingIsIn) {
  import_listings("tenant-a");
  add_buyer("tenant-a", "buyer-1", 200000);
  add_buyer("tenant-a", "buyer-2", 200000);
  for (auto [id, area] : {std::pair{"buyer-1", "Atlantis"}, std::pair{"buyer-2", "  oldtown "}}) {
    Contact c = store_->get_contact("tenant-a", id).value();
    c.area_wanted = area;
    ASSERT_TRUE(store_->upsert_contact(c));
  }
  start_with_models();
  wait_for_listings("tenant-a");
  const std::string a = token("tenant-a");
  auto unknown = http_->get("/api/leads/buyer-1/matches?k=3", a);
  ASSERT_EQ(unknown.status, 200) << unknown.body;
  EXPECT_EQ(json::serialize(as_object(unknown)["unknown_areas"]), R"(["Atlantis"])");
  EXPECT_EQ(match_ids(unknown).size(), 3u);
  auto known = http_->get("/api/leads/buyer-2/matches?k=3", a);
  ASSERT_EQ(known.status, 200) << known.body;
  EXPECT_EQ(json::serialize(as_object(known)["unknown_areas"]), "[]");
  // POST with the lead alone ranks with its stored area and says so too;
  // an area in the body takes its place.
  auto posted = http_->post("/api/properties/match", R"({"lead_id":"buyer-1","k":3})", a);
  ASSERT_EQ(posted.status, 200) << posted.body;
  EXPECT_EQ(json::serialize(as_object(posted)["unknown_areas"]), R"(["Atlantis"])");
  auto replaced = http_->post("/api/properties/match", R"({"lead_id":"buyer-1","area":"edwards","k":3})", a);
  ASSERT_EQ(replaced.status, 200) << replaced.body;
  EXPECT_EQ(json::serialize(as_object(replaced)["unknown_areas"]), "[]");
  // A save makes the worker keep the buyer's state; new criteria reach it.
  ASSERT_EQ(http_->post("/api/events", R"({"contact_id":"buyer-1","type":"property_save","property_id":"t-0058"})", a)
                .status,
            200);
  auto areas_after = [&](const char* area, const char* expected) {
    ASSERT_EQ(http_->put("/api/contacts/buyer-1", std::string(R"({"area_wanted":")") + area + R"("})", a).status, 200);
    std::string seen;
    for (int i = 0; i < 200 && seen != expected; ++i) {
      if (i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      auto r = http_->get("/api/leads/buyer-1/matches?k=3", a);
      ASSERT_EQ(r.status, 200) << r.body;
      seen = json::serialize(as_object(r)["unknown_areas"]);
    }
    EXPECT_EQ(seen, expected) << area;
  };
  areas_after("Gotham", R"(["Gotham"])");
  areas_after("Edwards", "[]");
}

// An id with '/', a space and non-ASCII is named in the path percent-encoded
// ("%2F" is a slash of the id, not a separator) and reaches the route whole.
TEST_F(PropertyRoutesTest, ALeadIdWithASlashIsNamedPercentEncoded) {
  import_listings("tenant-a");
  const std::string id = "team/buyer 1 \xc3\xa9";
  add_buyer("tenant-a", id, 200000);
  start_with_models();
  wait_for_listings("tenant-a");
  const std::string a = token("tenant-a");
  auto r = http_->get("/api/leads/team%2Fbuyer%201%20%C3%A9/matches?k=3", a);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(as_object(r)["lead_id"].as_string(), id);
  EXPECT_EQ(match_ids(r).size(), 3u);
  // The raw slash is a separator: no such route.
  EXPECT_EQ(http_->get("/api/leads/team/buyer%201%20%C3%A9/matches", a).status, 404);
  auto bad = http_->get("/api/leads/team%2/matches", a);
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_NE(error_of(bad).find("percent-escape"), std::string::npos) << bad.body;
}

// The catalog never loads on an io thread: a tenant the start-up preload did
// not know (listings without a tenant row) is answered at once with 503
// "listings are loading", its load queued on the matching worker; events and
// scores are unaffected, and once installed its matches are served.
TEST_F(PropertyRoutesTest, FirstMatchRequestIsAnsweredWhileTheCatalogLoads) {
  import_listings("tenant-late");  // no upsert_tenant: not preloaded
  start_with_models();
  const std::string t = token("tenant-late");
  auto first = http_->post("/api/properties/match", R"({"budget":200000,"k":5})", t);
  ASSERT_EQ(first.status, 503) << first.body;
  EXPECT_EQ(error_of(first), "listings are loading");
  EXPECT_EQ(first.header("retry-after"), "1");
  // Scoring answers while the catalog loads.
  auto event = http_->post("/api/events", R"({"contact_id":"buyer-9","type":"property_view","property_id":"t-0001"})", t);
  ASSERT_EQ(event.status, 200) << event.body;
  EXPECT_EQ(http_->get("/api/contacts/buyer-9/score", t).status, 200);

  wait_for_listings("tenant-late");
  auto served = http_->post("/api/properties/match", R"({"budget":200000,"k":5})", t);
  ASSERT_EQ(served.status, 200) << served.body;
  EXPECT_EQ(as_object(served)["listings"].as_int64(), 60);
  EXPECT_EQ(match_ids(served).size(), 5u);
  auto lead = http_->get("/api/leads/buyer-9/matches?k=4", t);
  ASSERT_EQ(lead.status, 200) << lead.body;
  EXPECT_EQ(match_ids(lead).size(), 4u);
}

// A list of names in a reload answer.
std::vector<std::string> names_in(boost::json::object& o, const char* field) {
  std::vector<std::string> out;
  if (!o.contains(field) || !o[field].is_array()) {
    ADD_FAILURE() << field << " is not a list: " << json::serialize(o);
    return out;
  }
  for (const auto& v : o[field].as_array()) out.emplace_back(v.as_string());
  return out;
}

using Names = std::vector<std::string>;

class PropertyReloadTest : public PropertyRoutesTest {
 protected:
  // Two tenants with listings and a buyer each, their catalogs loaded.
  void start_two_tenants() {
    for (const char* t : {"tenant-a", "tenant-b"}) {
      import_listings(t);
      add_buyer(t, "buyer-1", 200000);
    }
    start_with_models();
    wait_for_listings("tenant-a");
    wait_for_listings("tenant-b");
  }

  // A match model file under MODEL_DIR/`dir`: its version is its mtime; one
  // that does not parse leaves the content scorer ranking under that version.
  void write_match_model(const std::string& dir) {
    std::filesystem::create_directories(model_dir_ / dir);
    std::ofstream(model_dir_ / dir / "model.json") << "{}";
  }

  // A retrain: the model file's mtime moves (versions have 1 s resolution).
  std::string retrain(const std::string& dir, std::string_view kind) {
    const auto file = model_dir_ / dir / "model.json";
    std::filesystem::last_write_time(file, std::filesystem::last_write_time(file) + std::chrono::seconds(5));
    return *property::model_dir_version((model_dir_ / dir).string(), kind);
  }

  // The tenant admin's reload answer (200 expected).
  boost::json::object reload(const std::string& tenant) {
    auto r = http_->post("/api/admin/reload", "", token(tenant, Role::kAdmin));
    EXPECT_EQ(r.status, 200) << r.body;
    return as_object(r);
  }

  // The match model a tenant's criteria matches are ranked under.
  std::string match_model_of(const std::string& tenant) {
    auto r = http_->post("/api/properties/match", R"({"budget":200000,"k":3})", token(tenant));
    EXPECT_EQ(r.status, 200) << r.body;
    return std::string(as_object(r)["model"].as_string());
  }

  // Waits (up to 10 s) until the tenant's matches rank under `version`.
  void wait_for_match_model(const std::string& tenant, const std::string& version) {
    for (int i = 0; i < 400 && match_model_of(tenant) != version; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    EXPECT_EQ(match_model_of(tenant), version);
  }
};

// Nothing on disk or in the store moved: the reload swaps nothing, says so,
// and both tenants' catalogs keep serving (never "listings are loading").
TEST_F(PropertyReloadTest, AReloadThatFindsNothingNewSwapsNothing) {
  write_match_model("match");
  start_two_tenants();
  auto o = reload("tenant-a");
  EXPECT_EQ(o["status"].as_string(), "reloaded");
  EXPECT_EQ(o["model_version"].as_string(), "fallback");
  EXPECT_EQ(names_in(o, "reloaded"), Names{});
  EXPECT_EQ(names_in(o, "unchanged"), (Names{"listings", "match"}));
  EXPECT_EQ(o["tenants_refreshed"].as_int64(), 0);
  for (const char* t : {"tenant-a", "tenant-b"}) {
    auto r = http_->get("/api/leads/buyer-1/matches?k=3", token(t));
    ASSERT_EQ(r.status, 200) << t << ": " << r.body;
    EXPECT_EQ(match_ids(r).size(), 3u);
  }
}

// Tenant b ranks with its own match model: a's reload, which finds the
// shared model retrained, rebuilds a's matcher and leaves b alone.
TEST_F(PropertyReloadTest, ATenantsReloadLeavesATenantOnItsOwnModelsAlone) {
  write_match_model("match");
  write_match_model("tenants/tenant-b/match");
  start_two_tenants();
  const std::string own_b = match_model_of("tenant-b");
  ASSERT_EQ(own_b.substr(0, 6), "match@");
  const std::string shared = retrain("match", "match");
  auto o = reload("tenant-a");
  EXPECT_EQ(names_in(o, "reloaded"), Names{"match"});
  EXPECT_EQ(names_in(o, "unchanged"), Names{"listings"});
  EXPECT_EQ(o["tenants_refreshed"].as_int64(), 0);
  wait_for_match_model("tenant-a", shared);
  EXPECT_EQ(match_model_of("tenant-b"), own_b);

  // b's own reload names b's directory, found unchanged.
  auto b = reload("tenant-b");
  EXPECT_EQ(names_in(b, "reloaded"), Names{});
  EXPECT_EQ(names_in(b, "unchanged"), (Names{"listings", "tenants/tenant-b/match"}));
}

// Tenant b falls back to the shared match model and AVM: when either is
// retrained, a's reload refreshes b too (and counts it once).
TEST_F(PropertyReloadTest, AChangedSharedModelRefreshesTheTenantsUsingIt) {
  write_match_model("match");
  train_value_model();
  start_two_tenants();
  const std::string body = R"({"attributes":{"Neighborhood":"Northridge","Bedroom_AbvGr":3,"Gr_Liv_Area":2100,"Year_Built":"1990"}})";
  auto valued = http_->post("/api/properties/value", body, token("tenant-b"));  // b now holds the AVM
  ASSERT_EQ(valued.status, 200) << valued.body;

  const std::string match = retrain("match", "match");
  auto o = reload("tenant-a");
  EXPECT_EQ(names_in(o, "reloaded"), Names{"match"});
  EXPECT_EQ(names_in(o, "unchanged"), (Names{"listings", "value"}));  // a holds no AVM yet
  EXPECT_EQ(o["tenants_refreshed"].as_int64(), 1);
  wait_for_match_model("tenant-b", match);

  const std::string value = retrain("value", "value");
  auto again = reload("tenant-a");
  EXPECT_EQ(names_in(again, "reloaded"), Names{});
  EXPECT_EQ(again["tenants_refreshed"].as_int64(), 1);
  auto revalued = http_->post("/api/properties/value", body, token("tenant-b"));
  ASSERT_EQ(revalued.status, 200) << revalued.body;
  EXPECT_EQ(as_object(revalued)["model"].as_string(), value);

  // Nothing moved since: nobody is refreshed.
  auto still = reload("tenant-a");
  EXPECT_EQ(names_in(still, "reloaded"), Names{});
  EXPECT_EQ(still["tenants_refreshed"].as_int64(), 0);
}

TEST_F(PropertyRoutesTest, TenantWithoutListingsGetsAClear404) {
  add_buyer("tenant-a", "buyer-1", 200000);
  start_with_models();
  wait_for_listings("tenant-a");
  auto r = http_->get("/api/leads/buyer-1/matches?k=5", token("tenant-a"));
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(error_of(r), "no listings imported for this tenant (reai import listings)");
}

TEST_F(PropertyRoutesTest, ListingsAndLeadsAreTenantScoped) {
  import_listings("tenant-a");
  import_listings("tenant-b");
  add_buyer("tenant-a", "buyer-1", 200000);
  ASSERT_TRUE(store_->upsert_listings(std::vector<store::ListingRecord>{
      {"tenant-a", "only-a", 250000, R"({"Neighborhood":"OldTown"})", "", fixture::kNow}}));
  start_with_models();
  wait_for_listings("tenant-a");
  wait_for_listings("tenant-b");
  const std::string a = token("tenant-a"), b = token("tenant-b");
  auto mine = http_->get("/api/listings/only-a", a);
  ASSERT_EQ(mine.status, 200) << mine.body;
  auto o = as_object(mine);
  EXPECT_EQ(o["list_price"].as_double(), 250000);
  EXPECT_EQ(o["attributes"].as_object()["Neighborhood"].as_string(), "OldTown");
  EXPECT_TRUE(o["valuation"].is_null());
  EXPECT_EQ(http_->get("/api/listings/only-a", b).status, 404);
  EXPECT_EQ(http_->get("/api/listings/only-a?tenant_id=tenant-b", a).status, 403);
  EXPECT_EQ(http_->get("/api/listings/only-a").status, 401);
  EXPECT_EQ(http_->get("/api/listings/only-a", "Bearer-less-garbage").status, 401);
  EXPECT_EQ(http_->request("DELETE", "/api/listings/only-a", {}, a).status, 405);
  // Tenant B has listings but not A's lead.
  auto other = http_->get("/api/leads/buyer-1/matches", b);
  EXPECT_EQ(other.status, 404);
  EXPECT_EQ(error_of(other), "lead 'buyer-1' not found");
  // B's matches never name A's own listing.
  add_buyer("tenant-b", "buyer-b", 250000);
  for (const auto& id : match_ids(http_->post("/api/properties/match", R"({"budget":250000,"k":60})", b))) {
    EXPECT_NE(id, "only-a");
  }
}

// Matches carry their listing's stored valuation, and a listing priced well
// under it says so in the same words as its competitiveness.
TEST_F(PropertyRoutesTest, MatchesEmbedTheListingsValuationAndABargainReason) {
  std::vector<store::ListingRecord> rows;
  for (const auto& l : synthetic_listings()) {
    const double value = l.id == "t-0005" ? l.price / 0.9 : l.price;  // t-0005: 10% under its value
    const property::Valuation v{value, value * 0.95, value * 1.05, value * 0.92, value * 1.08};
    rows.push_back({"tenant-a", l.id, l.price, attributes_of(l), property::valuation_json(v, l.price, "value@test"),
                    fixture::kNow});
  }
  // Not valued by the AVM, and cheap for its size against the other OldTown homes.
  rows.push_back({"tenant-a", "not-valued", 120000,
                  R"({"Neighborhood":"OldTown","Bedroom_AbvGr":"3","Gr_Liv_Area":"2400","Year_Built":"1990"})", "",
                  fixture::kNow});
  ASSERT_TRUE(store_->upsert_listings(rows));
  add_buyer("tenant-a", "buyer-1", 200000);
  start_with_models();
  wait_for_listings("tenant-a");
  auto r = http_->get("/api/leads/buyer-1/matches?k=61", token("tenant-a"));
  ASSERT_EQ(r.status, 200) << r.body;
  int seen = 0;
  const auto body = as_object(r);
  // Stored without the model's training context: none is made up.
  EXPECT_TRUE(body.at("valuation_market_as_of").is_null());
  for (const auto& m : body.at("matches").as_array()) {
    const auto& o = m.as_object();
    const std::string id(o.at("property_id").as_string());
    std::vector<std::string> reasons;
    for (const auto& reason : o.at("reasons").as_array()) reasons.emplace_back(reason.as_string());
    const bool bargain = std::find(reasons.begin(), reasons.end(), "priced 10% under its estimated value") != reasons.end();
    const auto says = [&](std::string_view words) {
      return std::any_of(reasons.begin(), reasons.end(),
                         [&](const std::string& r) { return r.find(words) != std::string::npos; });
    };
    if (id == "not-valued") {
      // Without a valuation a reason may not speak of "its estimated value".
      EXPECT_TRUE(o.at("valuation").is_null());
      EXPECT_FALSE(says("estimated value")) << json::serialize(o);
      EXPECT_TRUE(says("under comparable homes")) << json::serialize(o);
      ++seen;
      continue;
    }
    EXPECT_FALSE(says("comparable homes")) << json::serialize(o);
    ASSERT_TRUE(o.at("valuation").is_object()) << json::serialize(o);
    const auto& v = o.at("valuation").as_object();
    const double price = o.at("list_price").as_double();
    const auto& c = v.at("competitiveness").as_object();
    EXPECT_EQ(v.at("model").as_string(), "value@test");
    EXPECT_FALSE(v.contains("outside_training_range") || v.contains("market_as_of")) << json::serialize(o);
    EXPECT_LT(v.at("lower80").as_double(), v.at("value").as_double());
    if (id == "t-0005") {
      EXPECT_NEAR(v.at("value").as_double(), price / 0.9, 1e-6);
      EXPECT_EQ(c.at("label").as_string(), "under-priced");
      EXPECT_EQ(c.at("text").as_string(), "priced 10% under its estimated value");
      EXPECT_TRUE(bargain) << json::serialize(o);
      ++seen;
    } else {
      EXPECT_NEAR(v.at("value").as_double(), price, 0.01);
      EXPECT_EQ(c.at("label").as_string(), "fair");
      EXPECT_FALSE(bargain) << id;
    }
  }
  EXPECT_EQ(seen, 2);
}

TEST_F(PropertyRoutesTest, StoredListingShowsItsValuationAndCompetitiveness) {
  const property::Valuation v{200000, 180000, 220000, 170000, 230000};
  store::ListingRecord rec{"tenant-a", "ames-0012", 170000, R"({"Neighborhood":"OldTown"})",
                           property::valuation_json(v, 170000, "value@1"), fixture::kNow};
  ASSERT_TRUE(store_->upsert_listings(std::span(&rec, 1)));
  start_with_models();
  auto r = http_->get("/api/listings/ames-0012", token("tenant-a"));
  ASSERT_EQ(r.status, 200) << r.body;
  auto val = as_object(r)["valuation"].as_object();
  EXPECT_EQ(val["value"].as_double(), 200000);
  EXPECT_EQ(val["lower80"].as_double(), 180000);
  EXPECT_EQ(val["upper90"].as_double(), 230000);
  auto c = val["competitiveness"].as_object();
  EXPECT_EQ(c["label"].as_string(), "under-priced");
  EXPECT_EQ(c["percent"].as_double(), -15.0);
  EXPECT_EQ(c["text"].as_string(), "priced 15% under its estimated value");
}

TEST_F(PropertyRoutesTest, CriteriaInTheBodyRankListingsAndBadBodiesAre4xx) {
  import_listings("tenant-a");
  add_buyer("tenant-a", "buyer-1", std::nullopt);
  start_with_models();
  wait_for_listings("tenant-a");
  const std::string a = token("tenant-a");
  auto r = http_->post("/api/properties/match", R"({"budget":150000,"area":"OldTown","beds":2,"k":3})", a);
  ASSERT_EQ(r.status, 200) << r.body;
  auto o = as_object(r);
  ASSERT_EQ(o["matches"].as_array().size(), 3u);
  EXPECT_EQ(o["matches"].as_array()[0].as_object()["neighbourhood"].as_string(), "OldTown");
  EXPECT_EQ(json::serialize(o["unknown_areas"]), "[]");
  // Areas compare as the reasons show them: case, spaces and '_' aside.
  auto spelled = http_->post("/api/properties/match", R"({"area":"  oldtown ","k":3})", a);
  ASSERT_EQ(spelled.status, 200) << spelled.body;
  const json::object spelled_o = as_object(spelled);
  for (const auto& m : spelled_o.at("matches").as_array()) {
    EXPECT_EQ(m.as_object().at("neighbourhood").as_string(), "OldTown");
  }
  // Some areas known: matched on those, the others listed.
  auto some = http_->post("/api/properties/match", R"({"area":["Atlantis","edwards","Gotham"],"k":3})", a);
  ASSERT_EQ(some.status, 200) << some.body;
  auto so = as_object(some);
  EXPECT_EQ(json::serialize(so["unknown_areas"]), R"(["Atlantis","Gotham"])");
  for (const auto& m : so["matches"].as_array()) EXPECT_EQ(m.as_object().at("neighbourhood").as_string(), "Edwards");
  // Two known areas: homes in either.
  auto both = http_->post("/api/properties/match", R"({"area":["Edwards","OldTown"],"k":6})", a);
  ASSERT_EQ(both.status, 200) << both.body;
  const json::object both_o = as_object(both);
  for (const auto& m : both_o.at("matches").as_array()) {
    EXPECT_NE(m.as_object().at("neighbourhood").as_string(), "Northridge") << both.body;
  }
  // A lead with no stored criteria, given them in the body.
  auto lead = http_->post("/api/properties/match", R"({"lead_id":"buyer-1","budget":320000})", a);
  ASSERT_EQ(lead.status, 200) << lead.body;
  EXPECT_EQ(as_object(lead)["lead_id"].as_string(), "buyer-1");
  EXPECT_TRUE(as_object(spelled)["budget"].is_null());  // no budget stated

  struct Bad {
    const char* body;
    int status;
    const char* error;
  };
  for (const Bad& bad : {
           Bad{R"({"budget":)", 400, nullptr},
           Bad{R"([1,2])", 400, "body must be a JSON object"},
           Bad{R"({})", 400, "give at least one of budget, beds, area or lead_id"},
           Bad{R"({"budget":"cheap"})", 400, "field 'budget' must be a positive number"},
           Bad{R"({"budget":-5})", 400, "field 'budget' must be a positive number"},
           Bad{R"({"beds":2.5})", 400, "field 'beds' must be an integer 0..20"},
           Bad{R"({"area":7})", 400, "field 'area' must be an area name or a list of 1 to 100 of them"},
           Bad{R"({"area":""})", 400, "field 'area' must be an area name or a list of 1 to 100 of them"},
           Bad{R"({"area":" _ "})", 400, "field 'area' must be an area name or a list of 1 to 100 of them"},
           Bad{R"({"area":[]})", 400, "field 'area' must be an area name or a list of 1 to 100 of them"},
           Bad{R"({"area":["OldTown",1]})", 400, "field 'area' must be an area name or a list of 1 to 100 of them"},
           // Areas the tenant's listings never have are named, never ignored.
           Bad{R"({"area":"Atlantis"})", 400, "unknown area 'Atlantis': the tenant's listings are in Edwards, Northridge, OldTown"},
           Bad{R"({"budget":150000,"area":["Atlantis","Gotham"]})", 400,
               "unknown areas 'Atlantis', 'Gotham': the tenant's listings are in Edwards, Northridge, OldTown"},
           Bad{R"({"lead_id":"buyer-1","area":"Atlantis"})", 400,
               "unknown area 'Atlantis': the tenant's listings are in Edwards, Northridge, OldTown"},
           Bad{R"({"budget":1,"k":0})", 400, "field 'k' must be an integer 1..100"},
           Bad{R"({"budget":1,"colour":"red"})", 400, "field 'colour' is not a known field"},
           Bad{R"({"lead_id":""})", 400, "field 'lead_id' must be a non-empty string"},
           Bad{R"({"lead_id":"ghost"})", 404, "lead 'ghost' not found"},
           Bad{R"({"budget":1,"tenant_id":"tenant-b"})", 403, "tenant_id does not match the token"},
       }) {
    auto b = http_->post("/api/properties/match", bad.body, a);
    EXPECT_EQ(b.status, bad.status) << bad.body;
    if (bad.error) EXPECT_EQ(error_of(b), bad.error) << bad.body;
    else EXPECT_FALSE(error_of(b).empty()) << bad.body;
  }
  EXPECT_EQ(http_->post("/api/properties/match", R"({"budget":1})").status, 401);
  EXPECT_EQ(http_->get("/api/properties/match", a).status, 405);
  const std::string huge = R"({"area":")" + std::string(2 << 20, 'x') + "\"}";
  EXPECT_EQ(http_->post("/api/properties/match", huge, a).status, 413);
}

// A tenant with many areas: an unknown one's 400 says how many there are
// rather than listing them all.
TEST_F(PropertyRoutesTest, UnknownAreaAmongManyIsCountedNotListed) {
  std::vector<store::ListingRecord> rows;
  for (int i = 0; i < 80; ++i) {
    json::object attrs;
    attrs["Neighborhood"] = "Area_" + std::to_string(i % 40);
    attrs["Bedroom_AbvGr"] = std::to_string(2 + i % 3);
    attrs["Gr_Liv_Area"] = std::to_string(1000 + 10 * i);
    rows.push_back({"tenant-m", "m-" + std::to_string(i), 150000.0 + 1000 * i, json::serialize(attrs), "", fixture::kNow});
  }
  ASSERT_TRUE(store_->upsert_listings(rows));
  start_with_models();
  wait_for_listings("tenant-m");
  const std::string t = token("tenant-m");
  auto unknown = http_->post("/api/properties/match", R"({"area":"Atlantis"})", t);
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(error_of(unknown), "unknown area 'Atlantis': the tenant's listings are in 40 areas");
  auto known = http_->post("/api/properties/match", R"({"area":"area 7","k":2})", t);
  ASSERT_EQ(known.status, 200) << known.body;
  const json::object known_o = as_object(known);
  for (const auto& m : known_o.at("matches").as_array()) {
    EXPECT_EQ(m.as_object().at("neighbourhood").as_string(), "Area_7");
  }
}

TEST_F(PropertyRoutesTest, ValueRouteAnswersValueAndIntervals) {
  start_with_models();
  const std::string a = token("tenant-a");
  const std::string body = R"({"attributes":{"Neighborhood":"Northridge","Bedroom_AbvGr":3,"Gr_Liv_Area":2100,"Year_Built":"1990"},"list_price":250000})";
  auto none = http_->post("/api/properties/value", body, a);
  EXPECT_EQ(none.status, 404);
  EXPECT_EQ(error_of(none), "no valuation model trained (reai value train --out MODEL_DIR/value)");

  train_value_model();  // picked up without a restart
  auto r = http_->post("/api/properties/value", body, a);
  ASSERT_EQ(r.status, 200) << r.body;
  auto o = as_object(r);
  const double value = o["value"].as_double();
  EXPECT_GT(value, 100000);
  EXPECT_LT(value, 800000);
  EXPECT_LE(o["lower90"].as_double(), o["lower80"].as_double());
  EXPECT_LE(o["lower80"].as_double(), value);
  EXPECT_GE(o["upper80"].as_double(), value);
  EXPECT_GE(o["upper90"].as_double(), o["upper80"].as_double());
  EXPECT_TRUE(o["competitiveness"].as_object().contains("label"));
  EXPECT_EQ(std::string(o["model"].as_string()).substr(0, 6), "value@");
  auto plain = http_->post("/api/properties/value", R"({"attributes":{"Neighborhood":"OldTown","Gr_Liv_Area":1200,"Bedroom_AbvGr":2,"Year_Built":1960}})", a);
  ASSERT_EQ(plain.status, 200) << plain.body;
  EXPECT_FALSE(as_object(plain).contains("competitiveness"));
  EXPECT_EQ(json::serialize(as_object(plain)["unseen_categories"]), "[]");
  // A neighbourhood no training sale had is valued as missing and named;
  // one differing only in case names the training level.
  for (const auto& [hood, expected] :
       {std::pair{"Atlantis", R"([{"attribute":"Neighborhood","value":"Atlantis","differs_in_case_from":null}])"},
        std::pair{"oldtown", R"([{"attribute":"Neighborhood","value":"oldtown","differs_in_case_from":"OldTown"}])"}}) {
    auto unseen = http_->post("/api/properties/value", std::string(R"({"attributes":{"Neighborhood":")") + hood +
                                  R"(","Gr_Liv_Area":1200,"Bedroom_AbvGr":2,"Year_Built":1960}})", a);
    ASSERT_EQ(unseen.status, 200) << unseen.body;
    EXPECT_EQ(json::serialize(as_object(unseen)["unseen_categories"]), expected);
  }

  struct Bad {
    std::string body;
    int status;
    const char* error;
  };
  for (const Bad& bad : {
           Bad{"{", 400, nullptr},
           Bad{R"({"list_price":1})", 400, "field 'attributes' is required"},
           Bad{R"({"attributes":[1]})", 400, "field 'attributes' must be an object"},
           Bad{R"({"attributes":{"Gr_Liv_Area":{"x":1}}})", 400,
               "attribute 'Gr_Liv_Area' must be a string, number, boolean or null"},
           Bad{R"({"attributes":{"Gr_Liv_Area":1},"list_price":-1})", 400,
               "field 'list_price' must be a price between 1 and 10000000000"},
           Bad{R"({"attributes":{"Gr_Liv_Area":1},"list_price":1e308})", 400,
               "field 'list_price' must be a price between 1 and 10000000000"},
           Bad{R"({"attributes":{"Gr_Liv_Area":1},"list_price":1e-300})", 400,
               "field 'list_price' must be a price between 1 and 10000000000"},
           Bad{R"({"attributes":{"Gr_Liv_Area":1},"colour":1})", 400, "field 'colour' is not a known field"},
           Bad{R"({"attributes":{"Colour":"red"}})", 400, nullptr},  // too little of the schema
           // A misspelt attribute is named, never valued as missing.
           Bad{R"({"attributes":{"Neighborhood":"OldTown","Gr_Liv_Areaa":1200,"Bedroom_AbvGr":2,"Year_Built":1960}})",
               400, "unknown attribute Gr_Liv_Areaa: the valuation model has no such column"},
           // A wrong type is not valued as missing either.
           Bad{R"({"attributes":{"Neighborhood":"OldTown","Gr_Liv_Area":"big","Bedroom_AbvGr":2,"Year_Built":1960}})",
               400, "attribute 'Gr_Liv_Area' must be numeric, not 'big'"},
           Bad{R"({"attributes":{"Neighborhood":"OldTown","Gr_Liv_Area":true,"Bedroom_AbvGr":2,"Year_Built":1960}})",
               400, "attribute 'Gr_Liv_Area' must be numeric, not 'true'"},
           Bad{R"({"attributes":{},"tenant_id":"tenant-b"})", 403, "tenant_id does not match the token"},
       }) {
    auto b = http_->post("/api/properties/value", bad.body, a);
    EXPECT_EQ(b.status, bad.status) << bad.body << " -> " << b.body;
    if (bad.error) EXPECT_EQ(error_of(b), bad.error) << bad.body;
    else EXPECT_FALSE(error_of(b).empty()) << bad.body;
  }
  std::string many = R"({"attributes":{)";
  for (int i = 0; i < 1001; ++i) many += (i ? ",\"c" : "\"c") + std::to_string(i) + "\":1";
  many += "}}";
  EXPECT_EQ(http_->post("/api/properties/value", many, a).status, 413);
  EXPECT_EQ(http_->post("/api/properties/value", body).status, 401);
}

// A client sending the training file's columns is not refused for those the
// model left out (an id; a sale year constant in training): they are
// ignored and named, with the target; the value is as without them. A name
// that was never a training column is still refused, and a model saved
// before the left-out columns were kept refuses them as before.
TEST_F(PropertyRoutesTest, ValueRouteIgnoresTheTrainingFilesLeftOutColumns) {
  train_value_model("value", false, true);
  train_value_model("tenants/tenant-old/value", false, true);
  const std::string old_dir = (model_dir_ / "tenants/tenant-old/value").string();
  std::stringstream text;
  text << std::ifstream(old_dir + "/model.json").rdbuf();
  json::object root = json::parse(text.str()).as_object();
  ASSERT_EQ(json::serialize(root["ignored_columns"]), R"(["PID","Year_Sold"])");
  root.erase("ignored_columns");
  std::ofstream(old_dir + "/model.json", std::ios::trunc) << json::serialize(root);
  start_with_models();
  const std::string a = token("tenant-a");
  const std::string known = R"("Neighborhood":"OldTown","Bedroom_AbvGr":3,"Gr_Liv_Area":2100,"Year_Built":1990)";
  auto plain = http_->post("/api/properties/value", R"({"attributes":{)" + known + "}}", a);
  ASSERT_EQ(plain.status, 200) << plain.body;
  EXPECT_EQ(json::serialize(as_object(plain)["ignored_attributes"]), "[]");
  const std::string all = R"({"attributes":{"PID":"0526301100",)" + known + R"(,"Year_Sold":2026,"Sale_Price":215000}})";
  auto full = http_->post("/api/properties/value", all, a);
  ASSERT_EQ(full.status, 200) << full.body;
  json::object with = as_object(full), without = as_object(plain);
  EXPECT_EQ(json::serialize(with["ignored_attributes"]), R"(["PID","Year_Sold","Sale_Price"])");
  with.erase("ignored_attributes"), without.erase("ignored_attributes");
  EXPECT_EQ(json::serialize(with), json::serialize(without));
  // Not read, so not checked: a negative or text left-out value is no error.
  auto odd = http_->post("/api/properties/value", R"({"attributes":{)" + known + R"(,"Year_Sold":"-1x"}})", a);
  EXPECT_EQ(odd.status, 200) << odd.body;
  auto misspelt = http_->post("/api/properties/value", R"({"attributes":{)" + known + R"(,"Year_Sould":2026}})", a);
  EXPECT_EQ(misspelt.status, 400);
  EXPECT_EQ(error_of(misspelt), "unknown attribute Year_Sould: the valuation model has no such column");

  const std::string old = token("tenant-old");
  auto refused = http_->post("/api/properties/value", all, old);
  EXPECT_EQ(refused.status, 400);
  EXPECT_EQ(error_of(refused), "unknown attribute PID: the valuation model has no such column");
  auto old_target = http_->post("/api/properties/value", R"({"attributes":{)" + known + R"(,"Sale_Price":1}})", old);
  ASSERT_EQ(old_target.status, 200) << old_target.body;
  EXPECT_EQ(json::serialize(as_object(old_target)["ignored_attributes"]), R"(["Sale_Price"])");
}

// The synthetic listings' smallest and largest living area.
std::pair<int, int> training_area_range() {
  int low = 1 << 30, high = 0;
  for (const auto& l : synthetic_listings()) low = std::min(low, l.area), high = std::max(high, l.area);
  return {low, high};
}

// Trees value a home beyond the training range like the nearest one seen:
// the answer names each such attribute; a negative one is a sign error.
TEST_F(PropertyRoutesTest, ValueRouteNamesAttributesOutsideTheTrainingRange) {
  train_value_model();
  train_value_model("tenants/tenant-old/value");
  start_with_models();
  const std::string a = token("tenant-a");
  const auto [low, high] = training_area_range();
  ASSERT_EQ(low, 1300);
  ASSERT_EQ(high, 3565);
  auto with_area = [](const std::string& area) {
    return R"({"attributes":{"Neighborhood":"OldTown","Bedroom_AbvGr":3,"Gr_Liv_Area":)" + area +
           R"(,"Year_Built":1990}})";
  };
  auto inside = http_->post("/api/properties/value", with_area("2100"), a);
  ASSERT_EQ(inside.status, 200) << inside.body;
  EXPECT_EQ(json::serialize(as_object(inside)["outside_training_range"]), "[]");

  auto huge = http_->post("/api/properties/value", with_area("40000"), a);
  ASSERT_EQ(huge.status, 200) << huge.body;
  EXPECT_EQ(json::serialize(as_object(huge)["outside_training_range"]),
            R"([{"attribute":"Gr_Liv_Area","value":40000,"min":1300,"max":3565}])");
  EXPECT_GT(as_object(huge)["value"].as_double(), 0);
  auto absurd = http_->post("/api/properties/value", with_area("1e9"), a);
  ASSERT_EQ(absurd.status, 200) << absurd.body;
  EXPECT_EQ(json::serialize(as_object(absurd)["outside_training_range"]),
            R"([{"attribute":"Gr_Liv_Area","value":1000000000,"min":1300,"max":3565}])");
  auto tiny = http_->post("/api/properties/value", with_area("12.5"), a);
  ASSERT_EQ(tiny.status, 200) << tiny.body;
  EXPECT_NE(tiny.body.find(R"("outside_training_range":[{"attribute":"Gr_Liv_Area","value":12.5,"min":1300,"max":3565}])"),
            std::string::npos)
      << tiny.body;

  auto negative = http_->post("/api/properties/value", with_area("-500"), a);
  EXPECT_EQ(negative.status, 400);
  EXPECT_EQ(error_of(negative),
            "attribute 'Gr_Liv_Area' must not be negative: every training sale had it ≥ 0 (1300 to 3565)");

  // A model saved before ranges were kept (reai-avm-1) still values, and
  // says it cannot tell (null), not that nothing is outside.
  const std::string old_dir = (model_dir_ / "tenants/tenant-old/value").string();
  std::stringstream text;
  text << std::ifstream(old_dir + "/model.json").rdbuf();
  json::object root = json::parse(text.str()).as_object();
  root["format"] = "reai-avm-1";
  for (auto& column : root["columns"].as_array()) column.as_object().erase("min"), column.as_object().erase("max");
  std::ofstream(old_dir + "/model.json") << json::serialize(root);
  auto old = http_->post("/api/properties/value", with_area("40000"), token("tenant-old"));
  ASSERT_EQ(old.status, 200) << old.body;
  EXPECT_TRUE(as_object(old)["outside_training_range"].is_null());
  EXPECT_TRUE(as_object(old)["market_as_of"].is_null());
  EXPECT_TRUE(as_object(inside)["market_as_of"].is_null());  // no sale year in the training sales
  EXPECT_EQ(http_->post("/api/properties/value", with_area("-500"), token("tenant-old")).status, 200);
}

// A valuation is always later than its training sales: a 2026 listing is
// never "outside the training range" for its Year_Sold; the answer says
// instead which market the model reflects (the latest sale year), null for
// a model saved before that was kept.
TEST_F(PropertyRoutesTest, ValueRouteSaysItsMarketAndNeverFlagsTheSaleYear) {
  train_value_model("value", true);
  train_value_model("tenants/tenant-old/value", true);
  start_with_models();
  const std::string a = token("tenant-a");
  auto with = [](const std::string& area, const std::string& year) {
    return R"({"attributes":{"Neighborhood":"OldTown","Bedroom_AbvGr":3,"Gr_Liv_Area":)" + area +
           R"(,"Year_Built":1990,"Year_Sold":)" + year + R"(},"list_price":200000})";
  };
  auto now = http_->post("/api/properties/value", with("2100", "2026"), a);
  ASSERT_EQ(now.status, 200) << now.body;
  EXPECT_EQ(json::serialize(as_object(now)["outside_training_range"]), "[]");
  EXPECT_EQ(as_object(now)["market_as_of"].as_string(), "2010");
  EXPECT_EQ(as_object(now)["competitiveness"].as_object()["label"].is_string(), true);
  auto huge = http_->post("/api/properties/value", with("40000", "2026"), a);
  ASSERT_EQ(huge.status, 200) << huge.body;
  EXPECT_EQ(json::serialize(as_object(huge)["outside_training_range"]),
            R"([{"attribute":"Gr_Liv_Area","value":40000,"min":1300,"max":3565}])");
  EXPECT_EQ(http_->post("/api/properties/value", with("2100", "-2026"), a).status, 400);  // still a sign error

  const std::string old_dir = (model_dir_ / "tenants/tenant-old/value").string();
  std::stringstream text;
  text << std::ifstream(old_dir + "/model.json").rdbuf();
  json::object root = json::parse(text.str()).as_object();
  ASSERT_EQ(root["market_as_of"].as_string(), "2010");
  root.erase("market_as_of");
  std::ofstream(old_dir + "/model.json") << json::serialize(root);
  auto old = http_->post("/api/properties/value", with("2100", "2026"), token("tenant-old"));
  ASSERT_EQ(old.status, 200) << old.body;
  EXPECT_TRUE(as_object(old)["market_as_of"].is_null());
  EXPECT_EQ(json::serialize(as_object(old)["outside_training_range"]), "[]");
  EXPECT_EQ(as_object(old)["value"].as_double(), as_object(now)["value"].as_double());
}

// The importer stores a listing's valuation with the model's context
// (property::valuation_json with the model): GET /api/listings/{id} shows it.
TEST_F(PropertyRoutesTest, StoredListingShowsOutsideTrainingRangeAndMarket) {
  train_value_model("value", true);
  auto model = property::ValuationModel::load((model_dir_ / "value").string());
  ASSERT_TRUE(model) << model.status().to_string();
  auto table = property::parse_sales_csv(
      "Neighborhood,Bedroom_AbvGr,Gr_Liv_Area,Year_Built,Year_Sold,List_Price\n"
      "OldTown,3,40000,1990,2026,250000\n",
      "listings.csv");
  ASSERT_TRUE(table);
  auto values = model->predict(*table);
  ASSERT_TRUE(values);
  store::ListingRecord rec{"tenant-a", "big-1", 250000, R"({"Neighborhood":"OldTown"})",
                           property::valuation_json(values->at(0), 250000, "value@1", *model, *table, 0),
                           fixture::kNow};
  ASSERT_TRUE(store_->upsert_listings(std::span(&rec, 1)));
  start_with_models();
  auto r = http_->get("/api/listings/big-1", token("tenant-a"));
  ASSERT_EQ(r.status, 200) << r.body;
  auto val = as_object(r)["valuation"].as_object();
  EXPECT_EQ(json::serialize(val["outside_training_range"]),
            R"([{"attribute":"Gr_Liv_Area","value":40000,"min":1300,"max":3565}])");
  EXPECT_EQ(val["market_as_of"].as_string(), "2010");
  EXPECT_GT(val["value"].as_double(), 0);
}

// A match's valuation names its listing's attributes outside the training
// range, as GET /api/listings/{id} does; the market the valuations reflect
// is said once per answer, and per valuation only when they differ
// (tenant-b: one listing imported under an AVM of another market).
TEST_F(PropertyRoutesTest, MatchesSayTheValuationsMarketOnceAndEachListingsOutsideRange) {
  train_value_model("value", true);
  auto model = property::ValuationModel::load((model_dir_ / "value").string());
  ASSERT_TRUE(model) << model.status().to_string();
  std::string csv = "Neighborhood,Bedroom_AbvGr,Gr_Liv_Area,Year_Built,Year_Sold\n";
  for (const auto& l : synthetic_listings()) {
    csv += l.neighbourhood + "," + std::to_string(l.beds) + "," + (l.id == "t-0002" ? "40000" : std::to_string(l.area)) +
           "," + std::to_string(1950 + (l.area % 60)) + ",2026\n";
  }
  auto table = property::parse_sales_csv(csv, "listings.csv");
  ASSERT_TRUE(table);
  auto values = model->predict(*table);
  ASSERT_TRUE(values) << values.status().to_string();
  for (const std::string tenant : {"tenant-a", "tenant-b"}) {
    std::vector<store::ListingRecord> rows;
    const auto listings = synthetic_listings();
    for (std::size_t r = 0; r < listings.size(); ++r) {
      const auto& l = listings[r];
      std::string valuation = property::valuation_json(values->at(r), l.price, "value@1", *model, *table, r);
      if (tenant == "tenant-b" && l.id == "t-0003") {
        json::object v = json::parse(valuation).as_object();
        v["market_as_of"] = "2009-12";
        valuation = json::serialize(v);
      }
      rows.push_back({tenant, l.id, l.price, attributes_of(l), valuation, fixture::kNow});
    }
    ASSERT_TRUE(store_->upsert_listings(rows));
    add_buyer(tenant, "buyer-1", 200000);
  }
  start_with_models();
  wait_for_listings("tenant-a");
  wait_for_listings("tenant-b");

  auto r = http_->get("/api/leads/buyer-1/matches?k=60", token("tenant-a"));
  ASSERT_EQ(r.status, 200) << r.body;
  auto body = as_object(r);
  EXPECT_EQ(body.at("valuation_market_as_of").as_string(), "2010");
  ASSERT_EQ(body.at("matches").as_array().size(), 60u);
  for (const auto& m : body.at("matches").as_array()) {
    const auto& v = m.as_object().at("valuation").as_object();
    EXPECT_FALSE(v.contains("market_as_of"));
    const std::string outside = json::serialize(v.at("outside_training_range"));
    if (m.as_object().at("property_id").as_string() == "t-0002") {
      EXPECT_EQ(outside, R"([{"attribute":"Gr_Liv_Area","value":40000,"min":1300,"max":3565}])");
    } else {
      EXPECT_EQ(outside, "[]");
    }
  }
  auto stated = http_->post("/api/properties/match", R"({"budget":250000,"k":3})", token("tenant-a"));
  ASSERT_EQ(stated.status, 200) << stated.body;
  EXPECT_EQ(as_object(stated).at("valuation_market_as_of").as_string(), "2010");

  auto mixed = http_->get("/api/leads/buyer-1/matches?k=60", token("tenant-b"));
  ASSERT_EQ(mixed.status, 200) << mixed.body;
  body = as_object(mixed);
  EXPECT_TRUE(body.at("valuation_market_as_of").is_null());
  for (const auto& m : body.at("matches").as_array()) {
    const auto& v = m.as_object().at("valuation").as_object();
    EXPECT_EQ(v.at("market_as_of").as_string(), m.as_object().at("property_id").as_string() == "t-0003" ? "2009-12" : "2010");
  }
}

TEST_F(PropertyRoutesTest, SavesMoveTheBuyersMatchesAndPushAMatchUpdate) {
  import_listings("tenant-a");
  add_buyer("tenant-a", "buyer-1", 150000);  // budget points at OldTown
  start_with_models();
  wait_for_listings("tenant-a");
  const std::string a = token("tenant-a");
  const auto before = match_ids(http_->get("/api/leads/buyer-1/matches?k=3", a));
  ASSERT_EQ(before.size(), 3u);

  WsClient ws;
  ASSERT_TRUE(ws.connect("127.0.0.1", server_->port(), "/api/realtime/scoring/tenant-a?token=" + a)) << ws.error();
  // Tastes shift: the buyer saves and tours big Northridge homes.
  for (const char* id : {"t-0058", "t-0055", "t-0052", "t-0049"}) {
    for (const char* type : {"property_view", "property_save", "tour_request"}) {
      const std::string body = std::string(R"({"contact_id":"buyer-1","type":")") + type +
                               R"(","property_id":")" + id + "\"}";
      ASSERT_EQ(http_->post("/api/events", body, a).status, 200);
    }
  }
  auto update = next_of_type(ws, "match_update");
  ASSERT_TRUE(update) << "no match_update";
  EXPECT_EQ((*update)["lead_id"].as_string(), "buyer-1");
  EXPECT_EQ((*update)["tenant_id"].as_string(), "tenant-a");
  EXPECT_GT((*update)["seq"].as_int64(), 0);
  EXPECT_FALSE((*update)["matches"].as_array().empty());
  EXPECT_TRUE((*update)["valuation_market_as_of"].is_null());  // no listing is valued

  // The worker runs behind the answers: wait until it has seen every save and
  // tour (the budget names 4 homes saved and toured), so the ranking below is
  // the final one; "saved or toured" means the last tour is still queued. Four
  // homes kept far over the stated 150k: the budget follows them, and says so.
  json::object now;
  for (int i = 0; i < 200; ++i) {
    now = as_object(http_->get("/api/leads/buyer-1/matches?k=3", a));
    if (std::string(now["budget"].as_object()["why"].as_string()).rfind("you saved and toured 4 homes ", 0) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const std::vector<std::string> after = match_ids(http_->get("/api/leads/buyer-1/matches?k=3", a));
  EXPECT_NE(after, before);
  const auto& top = now["matches"].as_array()[0].as_object();
  EXPECT_EQ(top.at("neighbourhood").as_string(), "Northridge");
  for (const auto& id : after) {
    for (const char* saved : {"t-0058", "t-0055", "t-0052", "t-0049"}) EXPECT_NE(id, saved);  // saved: excluded
  }
  const auto& budget = now["budget"].as_object();
  EXPECT_EQ(budget.at("stated").as_double(), 150000);
  EXPECT_GT(budget.at("effective").as_double(), 300000);
  EXPECT_EQ(budget.at("follows").as_string(), "behaviour");
  EXPECT_EQ(std::string(budget.at("why").as_string()).rfind("you saved and toured 4 homes at ", 0), 0u) << budget;
  const std::string first_reason(now["matches"].as_array()[0].as_object().at("reasons").as_array()[0].as_string());
  EXPECT_EQ(first_reason.rfind("over your stated 150k, like the 4 homes you saved and toured at ", 0), 0u)
      << first_reason;
  // The stream says so too: every move of the budget is pushed, so some
  // match_update carries the effective budget the answer above shows.
  const double effective = budget.at("effective").as_double();
  const auto carries = [&](json::object& u) {
    return u["budget"].is_object() && u["budget"].as_object()["effective"].as_double() == effective;
  };
  std::optional<json::object> moved = update;
  while (moved && !carries(*moved)) moved = next_of_type(ws, "match_update");
  ASSERT_TRUE(moved) << "no match_update carried the effective budget " << effective;
  const auto& pushed = (*moved)["budget"].as_object();
  EXPECT_EQ(pushed.at("stated").as_double(), 150000);
  EXPECT_EQ(pushed.at("follows").as_string(), "behaviour");
  EXPECT_EQ(std::string(pushed.at("why").as_string()).rfind("you saved", 0), 0u) << pushed;
  EXPECT_EQ((*moved)["lead_id"].as_string(), "buyer-1");
  EXPECT_TRUE((*moved)["unknown_areas"].as_array().empty());
  // A budget stated now (a match request's) holds the matches to it: the
  // saves came before it.
  auto restated = http_->post("/api/properties/match", R"({"lead_id":"buyer-1","budget":250000,"k":3})", a);
  ASSERT_EQ(restated.status, 200) << restated.body;
  auto ro = as_object(restated);
  EXPECT_EQ(ro["budget"].as_object()["follows"].as_string(), "statement");
  EXPECT_EQ(ro["budget"].as_object()["effective"].as_double(), 250000);
  EXPECT_EQ(ro["budget"].as_object()["why"].as_string(), "as stated");
  ASSERT_EQ(ro["matches"].as_array().size(), 3u);
  for (const auto& m : ro["matches"].as_array()) EXPECT_LE(m.as_object().at("list_price").as_double(), 250000 * 1.05);
}

// A match_update of a buyer who states no budget says so: "budget": null.
TEST_F(PropertyRoutesTest, AMatchUpdateOfABuyerWithoutABudgetSaysNone) {
  import_listings("tenant-a");
  add_buyer("tenant-a", "buyer-1", std::nullopt);
  start_with_models();
  wait_for_listings("tenant-a");
  const std::string a = token("tenant-a");
  WsClient ws;
  ASSERT_TRUE(ws.connect("127.0.0.1", server_->port(), "/api/realtime/scoring/tenant-a?token=" + a)) << ws.error();
  for (const char* id : {"t-0058", "t-0055", "t-0052"}) {
    const std::string body = std::string(R"({"contact_id":"buyer-1","type":"property_save","property_id":")") + id + "\"}";
    ASSERT_EQ(http_->post("/api/events", body, a).status, 200);
  }
  auto update = next_of_type(ws, "match_update");
  ASSERT_TRUE(update) << "no match_update";
  EXPECT_EQ((*update)["lead_id"].as_string(), "buyer-1");
  EXPECT_EQ((*update)["event_type"].as_string(), "property_save");
  EXPECT_TRUE((*update)["budget"].is_null());
}

// A budget restated through PUT /api/contacts/{id} is stated then (the stored
// contact's budget_stated_at): the saves before it no longer move it, on this
// instance, in the stream and on another instance reading the store; saves
// after it move it again; the same budget stored again keeps its time.
TEST_F(PropertyRoutesTest, ABudgetRestatedOnTheContactStartsOver) {
  import_listings("tenant-a");
  add_buyer("tenant-a", "buyer-1", 150000);
  start_with_models();
  wait_for_listings("tenant-a");
  const std::string a = token("tenant-a");
  WsClient ws;
  ASSERT_TRUE(ws.connect("127.0.0.1", server_->port(), "/api/realtime/scoring/tenant-a?token=" + a)) << ws.error();
  const auto save = [&](const char* id) {
    const std::string body = std::string(R"({"contact_id":"buyer-1","type":"property_save","property_id":")") + id + "\"}";
    return http_->post("/api/events", body, a).status;
  };
  // The budget of the answer once `done` says it is the final one (the worker
  // runs behind the answers).
  const auto budget_when = [&](const std::function<bool(const json::object&)>& done) {
    json::object b;
    for (int i = 0; i < 250; ++i) {
      b = as_object(http_->get("/api/leads/buyer-1/matches?k=5", a))["budget"].as_object();
      if (done(b)) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return b;
  };
  const auto why_starts = [](const json::object& b, const std::string& prefix) {
    return std::string(b.at("why").as_string()).rfind(prefix, 0) == 0;
  };

  // The next match_update that says the budget follows behaviour, or
  // "criteria" (a restatement): the worker has taken what came before it.
  const auto next_update = [&](const std::string& event_type) {
    std::optional<json::object> u = next_of_type(ws, "match_update");
    while (u && !(event_type == "criteria" ? (*u)["event_type"].as_string() == "criteria"
                                           : (*u)["budget"].as_object()["follows"].as_string() == "behaviour")) {
      u = next_of_type(ws, "match_update");
    }
    return u;
  };

  // Two Northridge homes far over the stated 150k move it, in the stream
  // and in the answers.
  ASSERT_EQ(save("t-0058"), 200);
  ASSERT_EQ(save("t-0055"), 200);
  std::optional<json::object> update = next_update("behaviour");
  ASSERT_TRUE(update) << "no match_update said the budget follows the saves";
  EXPECT_EQ((*update)["property_id"].as_string(), "t-0055");
  json::object b = (*update)["budget"].as_object();
  EXPECT_EQ(b.at("stated").as_double(), 150000);
  EXPECT_GT(b.at("effective").as_double(), 300000);
  EXPECT_TRUE(why_starts(b, "you saved 2 homes at ")) << b;
  EXPECT_EQ(budget_when([](const json::object&) { return true; }), b);

  // A minute later the buyer says 250k: the saves came before it.
  clock_.advance(60);
  ASSERT_EQ(http_->put("/api/contacts/buyer-1", R"({"budget":250000})", a).status, 200);
  EXPECT_EQ(store_->get_contact("tenant-a", "buyer-1")->budget_stated_at, fixture::kNow + 60);
  b = budget_when([](const json::object& x) { return x.at("stated").as_double() == 250000; });
  EXPECT_EQ(b.at("stated").as_double(), 250000);
  EXPECT_EQ(b.at("effective").as_double(), 250000);
  EXPECT_EQ(b.at("follows").as_string(), "statement");
  EXPECT_EQ(b.at("why").as_string(), "as stated");
  auto restated = as_object(http_->get("/api/leads/buyer-1/matches?k=5", a));
  ASSERT_EQ(restated["matches"].as_array().size(), 5u);
  for (const auto& m : restated["matches"].as_array()) EXPECT_LE(m.as_object().at("list_price").as_double(), 250000 * 1.05);
  // The stream says it: the criteria's match_update carries the new budget.
  update = next_update("criteria");
  ASSERT_TRUE(update) << "no match_update for the restated budget";
  const auto& pushed = (*update)["budget"].as_object();
  EXPECT_EQ(pushed.at("stated").as_double(), 250000);
  EXPECT_EQ(pushed.at("effective").as_double(), 250000);
  EXPECT_EQ(pushed.at("follows").as_string(), "statement");
  EXPECT_EQ(pushed.at("why").as_string(), "as stated");

  // Another instance (or this one after a restart) rebuilds the buyer from
  // the store, which holds when the budget was stated.
  const TokenClaims claims{"tenant-a", Role::kAgent, fixture::kNow + 86400};
  ApiRequest get;
  get.method = Method::kGet;
  const auto other_budget = [&] {
    PropertyRoutes other(*store_, *bus_, clock_, "", std::chrono::milliseconds(20));
    ApiResponse r = other.handle(Route::kLeadMatches, claims, get, "buyer-1", "k=5");
    for (int i = 0; i < 250 && r.status == 503; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      r = other.handle(Route::kLeadMatches, claims, get, "buyer-1", "k=5");
    }
    other.stop();
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body).as_object()["budget"].as_object();
  };
  b = other_budget();
  EXPECT_EQ(b.at("stated").as_double(), 250000);
  EXPECT_EQ(b.at("follows").as_string(), "statement");

  // Saves after the statement, above the new budget, move it again.
  clock_.advance(60);
  ASSERT_EQ(save("t-0052"), 200);
  ASSERT_EQ(save("t-0049"), 200);
  b = budget_when([&](const json::object& x) { return why_starts(x, "you saved 2 homes at "); });
  EXPECT_EQ(b.at("stated").as_double(), 250000);
  EXPECT_EQ(b.at("follows").as_string(), "behaviour");
  EXPECT_GT(b.at("effective").as_double(), 300000);
  EXPECT_NE(std::string(b.at("why").as_string()).find(" since stating 250k"), std::string::npos) << b;

  // The same budget stored again is no new statement: its time stays, and
  // the budget still follows those saves.
  clock_.advance(60);
  ASSERT_EQ(http_->put("/api/contacts/buyer-1", R"({"budget":250000,"timeline_months":2})", a).status, 200);
  EXPECT_EQ(store_->get_contact("tenant-a", "buyer-1")->budget_stated_at, fixture::kNow + 60);
  b = other_budget();
  EXPECT_EQ(b.at("follows").as_string(), "behaviour");
  EXPECT_TRUE(why_starts(b, "you saved 2 homes at ")) << b;
}

// Saves that arrive while serving count in the listing's popularity, which
// the ranker reads at its next ranking: from 3 saves by others a match says
// "saved by 3 other buyers". Each stored event counts once: a replayed
// event_id is answered as a duplicate and not counted again.
TEST_F(PropertyRoutesTest, SavesWhileServingMoveTheListingsPopularityOncePerEvent) {
  import_listings("tenant-a");
  add_buyer("tenant-a", "buyer-1", 150000);
  for (const char* saver : {"saver-1", "saver-2", "saver-3", "saver-4"}) add_buyer("tenant-a", saver, 150000);
  start_with_models();
  wait_for_listings("tenant-a");
  const std::string a = token("tenant-a");
  const auto matches = [&] { return http_->get("/api/leads/buyer-1/matches?k=3", a).body; };
  const auto before = match_ids(http_->get("/api/leads/buyer-1/matches?k=3", a));
  ASSERT_EQ(before.size(), 3u);
  const std::string x = before[0];
  EXPECT_EQ(popularity_reason(matches(), x), "");

  ASSERT_EQ(post_save("tenant-a", "saver-1", x, "pop-1").status, 200);
  ASSERT_EQ(post_save("tenant-a", "saver-2", x, "pop-2").status, 200);
  const auto replay = post_save("tenant-a", "saver-2", x, "pop-2");
  ASSERT_EQ(replay.status, 200);
  EXPECT_NE(replay.body.find("\"duplicate\":true"), std::string::npos) << replay.body;
  ASSERT_EQ(post_save("tenant-a", "saver-3", x, "pop-3").status, 200);
  clock_.advance(60);  // popularity counts saves strictly before the ranking instant
  EXPECT_EQ(wait_for_reason(matches, x, "saved by 3 other buyers"), "saved by 3 other buyers");
  // The content ranker does not read popularity: the order is the buyer's own.
  EXPECT_EQ(match_ids(http_->get("/api/leads/buyer-1/matches?k=3", a)), before);

  ASSERT_EQ(post_save("tenant-a", "saver-1", x, "pop-1").status, 200);  // replayed again
  ASSERT_EQ(post_save("tenant-a", "saver-4", x, "pop-4").status, 200);
  clock_.advance(60);
  EXPECT_EQ(wait_for_reason(matches, x, "saved by 4 other buyers"), "saved by 4 other buyers");
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // anything still queued
  EXPECT_EQ(popularity_reason(matches(), x), "saved by 4 other buyers");
}

// A second instance over the same store (a second PropertyRoutes: the events
// never reach its on_event) counts the behaviour stored meanwhile by the
// first after its next listings check, which a request queues at most once
// per check interval (20 ms here).
TEST_F(PropertyRoutesTest, AnotherInstanceCountsBehaviourStoredMeanwhileAfterItsCheck) {
  import_listings("tenant-a");
  add_buyer("tenant-a", "buyer-1", 150000);
  for (const char* saver : {"saver-1", "saver-2", "saver-3"}) add_buyer("tenant-a", saver, 150000);
  start_with_models();
  wait_for_listings("tenant-a");
  PropertyRoutes other(*store_, *bus_, clock_, "", std::chrono::milliseconds(20));
  const TokenClaims claims{"tenant-a", Role::kAgent, fixture::kNow + 86400};
  ApiRequest get;
  get.method = Method::kGet;
  const auto other_matches = [&] { return other.handle(Route::kLeadMatches, claims, get, "buyer-1", "k=3"); };
  ApiResponse first = other_matches();
  for (int i = 0; i < 200 && first.status == 503; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    first = other_matches();
  }
  ASSERT_EQ(first.status, 200) << first.body;
  const std::string x(json::parse(first.body).as_object().at("matches").as_array()[0].as_object().at("property_id").as_string());
  EXPECT_EQ(popularity_reason(first.body, x), "");

  for (const char* saver : {"saver-1", "saver-2", "saver-3"}) {
    ASSERT_EQ(post_save("tenant-a", saver, x, std::string("b-") + saver).status, 200);
  }
  clock_.advance(60);
  const auto body = [&] { return other_matches().body; };
  EXPECT_EQ(wait_for_reason(body, x, "saved by 3 other buyers"), "saved by 3 other buyers");
  // The first instance counted them as they came; neither counts any twice.
  const auto here = [&] { return http_->get("/api/leads/buyer-1/matches?k=3", token("tenant-a")).body; };
  EXPECT_EQ(wait_for_reason(here, x, "saved by 3 other buyers"), "saved by 3 other buyers");
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // more checks of the other instance
  EXPECT_EQ(popularity_reason(body(), x), "saved by 3 other buyers");
  other.stop();
}

TEST_F(PropertyRoutesTest, OtherTenantsNeverReceiveAMatchUpdate) {
  import_listings("tenant-a");
  add_buyer("tenant-a", "buyer-1", 150000);
  start_with_models();
  wait_for_listings("tenant-a");
  const std::string a = token("tenant-a"), b = token("tenant-b");
  WsClient ws_b;
  ASSERT_TRUE(ws_b.connect("127.0.0.1", server_->port(), "/api/realtime/scoring/tenant-b?token=" + b));
  for (const char* id : {"t-0058", "t-0055", "t-0052"}) {
    const std::string body = std::string(R"({"contact_id":"buyer-1","type":"property_save","property_id":")") + id + "\"}";
    ASSERT_EQ(http_->post("/api/events", body, a).status, 200);
  }
  // B's first message is B's own score update: nothing of A's came before.
  ASSERT_EQ(http_->post("/api/events", R"({"contact_id":"b1","type":"sms_in"})", b).status, 200);
  auto first = json::parse(ws_b.read().value_or("{}")).as_object();
  EXPECT_EQ(first["type"].as_string(), "score_update");
  EXPECT_EQ(first["tenant_id"].as_string(), "tenant-b");
}

}  // namespace
}  // namespace reai::server
