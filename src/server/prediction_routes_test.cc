// The prediction routes over real HTTP: deal closure and agent performance
// from a generated CRM history in the store, market trends from a forecast
// artefact, pricing from a small trained AVM; tenant isolation, bad input on
// every route, and a retrained model served without a restart.
#include <gtest/gtest.h>

#include <algorithm>

#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <random>
#include <mutex>
#include <sstream>
#include <thread>

#include "analytics/deals.h"
#include "analytics/synthetic_deals.h"
#include "core/crm_history.h"
#include "core/files.h"
#include "property/property.h"
#include "server/prediction_routes.h"
#include "server/server_test_fixture.h"

namespace reai::server {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using fixture::as_object;
using fixture::error_of;
using fixture::make_temp_dir;

constexpr UnixSeconds kDay = 86400;
constexpr const char* kTenant = "t_gen";  // the synthetic history's tenant
constexpr UnixSeconds kAsOf = analytics::testing::kHistoryStart + 300 * kDay;

CrmHistory history() { return analytics::testing::synthetic_history(900, 330, 11); }

// Trains a deal model on the history before `cutoff` into `dir`.
void train_deals(const fs::path& dir, UnixSeconds cutoff) {
  analytics::DealTrainOptions o;
  o.cutoff = cutoff;
  o.step_days = 10;
  o.nthread = 1;
  o.label_horizon_days = 60;
  auto m = analytics::DealModel::train(history(), o, nullptr);
  ASSERT_TRUE(m) << m.status().to_string();
  ASSERT_TRUE(m->save(dir.string()));
}

// Two regions x two metrics x three months from an origin of 2013-12.
std::string forecast_csv(double scale) {
  std::ostringstream out;
  out << "series,metric,year,month,h,point,lower80,upper80\n";
  for (const char* region : {"Austin", "San Marcos"}) {
    for (const char* metric : {"median", "sales"}) {
      for (int h = 1; h <= 3; ++h) {
        const double p = (std::string(metric) == "median" ? 250000 : 900) * scale * (1 + 0.01 * h);
        out << "\"" << region << "\"," << metric << ",2014," << h << "," << h << "," << p << "," << p * (1 - 0.03 * h)
            << "," << p * (1 + 0.03 * h) << "\n";
      }
    }
  }
  return out.str();
}

std::string sales_csv(std::size_t rows) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> unit(0, 1);
  std::normal_distribution<double> noise(0, 0.08);
  const char* hoods[] = {"North", "South", "East", "West"};
  std::ostringstream out;
  out << "Neighborhood,Gr_Liv_Area,Year_Built,Full_Bath,Year_Sold,Mo_Sold,Sale_Price\n";
  for (std::size_t i = 0; i < rows; ++i) {
    const int hood = int(unit(rng) * 4);
    const double area = 800 + 1800 * unit(rng);
    const int built = 1950 + int(unit(rng) * 60);
    const int baths = 1 + int(unit(rng) * 3);
    const double price = std::exp(11.8 + 0.7 * std::log(area / 1500) + 0.08 * hood + 0.003 * (built - 1980) +
                                  0.04 * baths + noise(rng));
    // Sold 2006 to 2010; months 1 to 7, so the latest sale is of July 2010.
    out << hoods[hood] << "," << std::round(area) << "," << built << "," << baths << "," << 2006 + i % 5 << ","
        << 1 + i % 7 << "," << std::round(price) << "\n";
  }
  return out.str();
}

// `csv` with two columns the AVM's schema leaves out: PID (an identifier,
// first) and Country (constant, last).
std::string with_left_out_columns(const std::string& csv) {
  std::istringstream in(csv);
  std::ostringstream out;
  std::string line;
  for (int row = 0; std::getline(in, line); ++row) {
    out << (row == 0 ? "PID" : std::to_string(526301100 + 7 * row)) << "," << line << ","
        << (row == 0 ? "Country" : "USA") << "\n";
  }
  return out.str();
}

// Trains an AVM on `csv` into `dir`, with the sales kept for comparables.
void train_avm(const fs::path& dir, const std::string& csv) {
  auto table = property::parse_sales_csv(csv, "sales.csv");
  EXPECT_TRUE(table);
  property::TrainOptions o;
  o.time_budget_seconds = 0;
  o.folds = 3;
  o.nthread = 1;
  auto m = property::ValuationModel::train(*table, "Sale_Price", o);
  EXPECT_TRUE(m) << m.status().to_string();
  EXPECT_TRUE(m->save(dir.string()));
  EXPECT_TRUE(write_text_file((dir / "sales.csv").string(), csv));
}

// Artefacts trained once per test binary and copied into each test's model dir.
struct Trained {
  fs::path deals, deals_later, avm;
  fs::path avm_left_out;  // trained on sales with PID and Country columns
};
const Trained& trained() {
  static Trained* t = [] {
    auto* out = new Trained;
    const fs::path root = make_temp_dir("prediction_artefacts");
    out->deals = root / "deals";
    out->deals_later = root / "deals_later";
    out->avm = root / "avm";
    out->avm_left_out = root / "avm_left_out";
    train_deals(out->deals, kAsOf - 20 * kDay);
    train_deals(out->deals_later, kAsOf);
    train_avm(out->avm, sales_csv(300));
    train_avm(out->avm_left_out, with_left_out_columns(sales_csv(300)));
    return out;
  }();
  return *t;
}

class PredictionRoutesTest : public fixture::InProcessServerTest {
 protected:
  void SetUp() override {
    fixture::InProcessServerTest::SetUp();
    trained();
    const auto h = history();
    ASSERT_TRUE(store_->upsert_tenant({kTenant, "Generated", kAsOf, ""}));
    ASSERT_TRUE(store_->upsert_tenant({"t_other", "Other", kAsOf, ""}));
    ASSERT_TRUE(store_->import_history(h.contacts, h.events, h.stages));
    clock_.set(kAsOf);
  }

  void install(const fs::path& from, const std::string& kind) {
    std::error_code ec;
    fs::remove_all(model_dir_ / kind, ec);
    fs::create_directories(model_dir_ / kind);
    fs::copy(from, model_dir_ / kind, fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  }
  void write_forecast(const fs::path& dir, double scale) {
    fs::create_directories(dir);
    ASSERT_TRUE(write_text_file((dir / "forecast.csv").string(), forecast_csv(scale)));
  }
};

void expect_interval(const json::object& o, const char* lo, const char* point, const char* hi) {
  const double l = o.at(lo).to_number<double>(), p = o.at(point).to_number<double>(), u = o.at(hi).to_number<double>();
  EXPECT_LE(l, p) << json::serialize(o);
  EXPECT_LE(p, u) << json::serialize(o);
}

TEST_F(PredictionRoutesTest, DealClosureRanksOpenDealsWithIntervalsAndModelVersion) {
  install(trained().deals, "deals");
  start();
  const std::string a = token(kTenant);
  auto r = http_->get("/api/predictions/deal-closure", a);
  ASSERT_EQ(r.status, 200) << r.body;
  auto o = as_object(r);
  const std::string version(o.at("model_version").as_string());
  EXPECT_EQ(version.substr(0, 6), "deals-");
  auto& list = o.at("opportunities").as_array();
  ASSERT_GT(list.size(), 10u);
  EXPECT_EQ(o.at("count").to_number<std::size_t>(), list.size());
  double previous = 1;
  for (const auto& v : list) {
    const auto& d = v.as_object();
    const double p = d.at("p_close").to_number<double>();
    EXPECT_GE(p, 0);
    EXPECT_LE(p, previous);  // ranked, most likely first
    previous = p;
    expect_interval(d, "lower80_days", "expected_days_to_close", "upper80_days");
    EXPECT_GE(d.at("lower80_days").to_number<double>(), 0);
    EXPECT_NE(d.at("stage").as_string(), "closed");
    EXPECT_NE(d.at("stage").as_string(), "lost");
    EXPECT_GT(d.at("value").to_number<double>(), 0);
  }
  EXPECT_GT(list.front().as_object().at("p_close").to_number<double>(), list.back().as_object().at("p_close").to_number<double>());

  // One opportunity: the same numbers as in the list.
  const auto& first = list.front().as_object();
  const std::string id(first.at("opportunity_id").as_string());
  auto one = http_->get("/api/predictions/deal-closure/" + id, a);
  ASSERT_EQ(one.status, 200) << one.body;
  auto d = as_object(one);
  EXPECT_EQ(d.at("model_version").as_string(), version);
  EXPECT_EQ(d.at("p_close").to_number<double>(), first.at("p_close").to_number<double>());
  expect_interval(d, "lower80_days", "expected_days_to_close", "upper80_days");

  // Another tenant cannot read it; unknown and closed ones are refused.
  auto other = http_->get("/api/predictions/deal-closure/" + id, token("t_other"));
  EXPECT_EQ(other.status, 404) << other.body;
  // A tenant with no pipeline yet: told so, never "no open deals".
  auto other_list = http_->get("/api/predictions/deal-closure", token("t_other"));
  EXPECT_EQ(other_list.status, 422) << other_list.body;
  EXPECT_EQ(error_of(other_list),
            "no opportunity history: no stage rows (opportunity_stages.csv) to forecast from for tenant t_other "
            "(import opportunity_stages.csv with `reai import --tenant t_other`, or connect GoHighLevel)");
  EXPECT_EQ(o.at("method").as_string(), "model");
  EXPECT_FALSE(o.contains("fallback_reason"));
  EXPECT_EQ(http_->get("/api/predictions/deal-closure/o-nope", a).status, 404);
  std::string closed_id;
  for (const auto& s : history().stages) {
    if (s.stage == Stage::kClosed && s.ts < kAsOf) closed_id = s.opportunity_id;
  }
  ASSERT_FALSE(closed_id.empty());
  auto closed = http_->get("/api/predictions/deal-closure/" + closed_id, a);
  EXPECT_EQ(closed.status, 422) << closed.body;
  EXPECT_NE(error_of(closed).find("closed"), std::string::npos);
  EXPECT_EQ(http_->get("/api/predictions/deal-closure", "").status, 401);
  EXPECT_EQ(http_->get("/api/predictions/deal-closure", "not-a-token").status, 401);
  EXPECT_EQ(http_->post("/api/predictions/deal-closure", "{}", a).status, 405);
}

TEST_F(PredictionRoutesTest, MissingModelsAnswerNotTrained) {
  start();
  const std::string a = token(kTenant);
  for (const char* path : {"/api/predictions/deal-closure", "/api/predictions/deal-closure/o0000001",
                           "/api/predictions/market-trends?horizon=90"}) {
    auto r = http_->get(path, a);
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_NE(error_of(r).find("not trained"), std::string::npos) << r.body;
  }
  auto p = http_->post("/api/predictions/pricing", R"({"Gr_Liv_Area":1500})", a);
  EXPECT_EQ(p.status, 404) << p.body;
  EXPECT_NE(error_of(p).find("not trained"), std::string::npos);
  // A tenant without pipeline history has no agent forecast yet.
  auto agents = http_->get("/api/predictions/agent-performance", token("t_other"));
  EXPECT_EQ(agents.status, 404) << agents.body;
  EXPECT_NE(error_of(agents).find("not trained"), std::string::npos);
  EXPECT_EQ(http_->get("/api/predictions/unknown", a).status, 404);
  EXPECT_EQ(http_->get("/api/predictions/pricing/x", a).status, 404);
}

TEST_F(PredictionRoutesTest, AModelThatDoesNotLoadAnswers503) {
  fs::create_directories(model_dir_ / "deals");
  ASSERT_TRUE(write_text_file((model_dir_ / "deals" / "deal_model.json").string(), "{not json"));
  fs::create_directories(model_dir_ / "markets");
  ASSERT_TRUE(write_text_file((model_dir_ / "markets" / "forecast.csv").string(), "series,metric\nAustin,median\n"));
  start();
  const std::string a = token(kTenant);
  auto deals = http_->get("/api/predictions/deal-closure", a);
  EXPECT_EQ(deals.status, 503) << deals.body;
  EXPECT_EQ(error_of(deals).find(model_dir_.string()), std::string::npos);  // no server path to the caller
  EXPECT_EQ(http_->get("/api/predictions/market-trends", a).status, 503);
  // Fixed on disk: served on the next request.
  install(trained().deals, "deals");
  EXPECT_EQ(http_->get("/api/predictions/deal-closure", a).status, 200);
}

// A model whose metrics call it degenerate (as `reai train deals` saves one
// trained on too few deals) is not presented as a model: the stage prior
// answers, and the answer says why.
TEST_F(PredictionRoutesTest, DegenerateDealModelAnswersWithTheStagePriorAndSaysWhy) {
  install(trained().deals, "deals");
  const fs::path meta_path = model_dir_ / "deals" / "deal_model.json";
  auto meta = json::parse(*read_text_file(meta_path.string())).as_object();
  // A copy: the edit below may rehash `meta` and move what a reference into it points at.
  const json::array prior = meta.at("stage_prior").as_array();
  ASSERT_EQ(prior.size(), 4u);
  meta["metrics"].as_object()["degenerate"] = "only 3 closed deals among 40 training examples";
  ASSERT_TRUE(write_text_file(meta_path.string(), json::serialize(meta)));
  start();
  auto r = http_->get("/api/predictions/deal-closure", token(kTenant));
  ASSERT_EQ(r.status, 200) << r.body;
  auto o = as_object(r);
  EXPECT_EQ(o.at("method").as_string(), "stage_prior");
  EXPECT_EQ(o.at("fallback_reason").as_string(),
            "the deal model is degenerate (only 3 closed deals among 40 training examples): p_close is the closing "
            "rate of the deal's stage in its training history, the days are that stage's");
  const auto& list = o.at("opportunities").as_array();
  ASSERT_GT(list.size(), 10u);
  const char* stages[] = {"signed", "active", "offer", "under_contract"};
  for (const auto& v : list) {
    const auto& d = v.as_object();
    const auto stage = std::find(std::begin(stages), std::end(stages), std::string(d.at("stage").as_string()));
    ASSERT_NE(stage, std::end(stages)) << json::serialize(d);
    const auto& row = prior[static_cast<std::size_t>(stage - std::begin(stages))].as_object();
    EXPECT_NEAR(d.at("p_close").to_number<double>(), row.at("p_close").to_number<double>(), 1e-4);
    EXPECT_NEAR(d.at("expected_days_to_close").to_number<double>(), row.at("days").as_array()[1].to_number<double>(), 0.05);
  }
}

TEST_F(PredictionRoutesTest, RetrainedDealModelIsServedWithoutRestart) {
  install(trained().deals, "deals");
  start();
  const std::string a = token(kTenant);
  auto before = http_->get("/api/predictions/deal-closure", a);
  ASSERT_EQ(before.status, 200) << before.body;
  const std::string v1(as_object(before).at("model_version").as_string());
  install(trained().deals_later, "deals");
  auto after = http_->get("/api/predictions/deal-closure", a);
  ASSERT_EQ(after.status, 200) << after.body;
  const std::string v2(as_object(after).at("model_version").as_string());
  EXPECT_NE(v1, v2);
  auto saved = analytics::DealModel::load(trained().deals_later.string());
  ASSERT_TRUE(saved);
  EXPECT_EQ(v2, saved->version());
  // A tenant's own model wins over the shared one.
  install(trained().deals, "tenants/t_gen/deals");
  auto own = http_->get("/api/predictions/deal-closure", a);
  EXPECT_EQ(as_object(own).at("model_version").as_string(), v1);
}

TEST_F(PredictionRoutesTest, AgentPerformanceForecastsAndCoachesEveryAgent) {
  start();
  const std::string a = token(kTenant);
  auto r = http_->get("/api/predictions/agent-performance", a);
  ASSERT_EQ(r.status, 200) << r.body;
  auto o = as_object(r);
  EXPECT_FALSE(o.at("model_version").as_string().empty());
  const auto& agents = o.at("agents").as_array();
  ASSERT_EQ(agents.size(), 6u);  // the generator's six agents
  for (const auto& v : agents) {
    const auto& ag = v.as_object();
    ASSERT_EQ(ag.at("months").as_array().size(), 3u) << json::serialize(ag);
    for (const auto& m : ag.at("months").as_array()) {
      expect_interval(m.as_object(), "lower80", "expected_closings", "upper80");
      EXPECT_GE(m.as_object().at("lower80").to_number<double>(), 0);
    }
    expect_interval(ag, "lower80", "expected_closings", "upper80");
    EXPECT_FALSE(ag.at("coaching").as_string().empty());
    EXPECT_GE(ag.at("findings").as_array().size(), 1u);
  }
  EXPECT_GT(agents[0].as_object().at("expected_closings_horizon").to_number<double>(), 0);
  const std::string id(agents[0].as_object().at("agent_id").as_string());
  auto one = http_->get("/api/predictions/agent-performance/" + id, a);
  ASSERT_EQ(one.status, 200) << one.body;
  EXPECT_EQ(as_object(one).at("agent_id").as_string(), id);
  EXPECT_EQ(http_->get("/api/predictions/agent-performance/nobody", a).status, 404);
  EXPECT_EQ(http_->get("/api/predictions/agent-performance/" + id, token("t_other")).status, 404);
  EXPECT_EQ(http_->get("/api/predictions/agent-performance", "").status, 401);
}

TEST_F(PredictionRoutesTest, NewPipelineRowRefreshesTheCachedHistory) {
  install(trained().deals, "deals");
  PredictionRoutes routes(*store_, model_dir_.string(), clock_);
  const TokenClaims other{"t_other", Role::kAgent, kAsOf + 3600};
  // The open deals counted, or -1 when the tenant has no pipeline yet (422).
  auto count = [&] {
    auto r = routes.deal_closure(other, "");
    if (r.status == 422) return -1;
    EXPECT_EQ(r.status, 200) << r.body;
    return boost::json::parse(r.body).as_object().at("count").to_number<int>();
  };
  EXPECT_EQ(count(), -1);
  OpportunityStage s;
  s.tenant_id = "t_other";
  s.opportunity_id = "o-new";
  s.contact_id = "c-new";
  s.agent_id = "t_other-ag1";
  s.monetary_value = 300000;
  s.ts = kAsOf - 5 * kDay;
  s.stage = Stage::kSigned;
  Contact c;
  c.tenant_id = "t_other";
  c.contact_id = "c-new";
  c.created_at = kAsOf - 9 * kDay;
  ASSERT_TRUE(store_->upsert_contact(c));
  ASSERT_TRUE(store_->append_stage(s));
  EXPECT_EQ(count(), -1);  // the cached history, within its time to live
  routes.invalidate("t_other");
  EXPECT_EQ(count(), 1);
  auto one = routes.deal_closure(other, "o-new");
  ASSERT_EQ(one.status, 200) << one.body;
  auto o = boost::json::parse(one.body).as_object();
  EXPECT_EQ(o.at("stage").as_string(), "signed");
  EXPECT_EQ(o.at("days_in_stage").to_number<double>(), 5);
  const double p = o.at("p_close").to_number<double>();
  EXPECT_GT(p, 0);
  EXPECT_LT(p, 1);
}

TEST_F(PredictionRoutesTest, MarketTrendsServeTheForecastArtefact) {
  write_forecast(model_dir_ / "markets", 1.0);
  start();
  const std::string a = token(kTenant);
  auto all = http_->get("/api/predictions/market-trends?horizon=90", a);
  ASSERT_EQ(all.status, 200) << all.body;
  auto o = as_object(all);
  const std::string version(o.at("model_version").as_string());
  EXPECT_EQ(version.substr(0, 16), "markets-2013-12-");
  // The forecast's data ends long before the server's clock: the answer says so.
  EXPECT_EQ(o.at("data_through").as_string(), "2013-12");
  EXPECT_EQ(o.at("as_of").as_string(), format_iso8601(kAsOf));
  EXPECT_EQ(o.at("data_age_months").to_number<int>(), 130);  // 2013-12 to 2024-10
  EXPECT_EQ(o.at("metric").as_string(), "median");
  EXPECT_EQ(o.at("horizon_months").to_number<int>(), 3);
  const auto& regions = o.at("regions").as_array();
  ASSERT_EQ(regions.size(), 2u);
  for (const auto& v : regions) {
    expect_interval(v.as_object(), "lower80", "point", "upper80");
    EXPECT_EQ(v.as_object().at("month").as_string(), "2014-03");
  }
  EXPECT_NEAR(regions[0].as_object().at("point").to_number<double>(), 257500, 1e-6);

  auto one = http_->get("/api/predictions/market-trends?region=San+Marcos&metric=sales&horizon=60", a);
  ASSERT_EQ(one.status, 200) << one.body;
  const auto one_body = as_object(one);
  const auto& rows = one_body.at("forecasts").as_array();
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].as_object().at("h").to_number<int>(), 2);
  EXPECT_NEAR(rows[1].as_object().at("point").to_number<double>(), 918, 1e-6);
  auto both = http_->get("/api/predictions/market-trends?region=Austin", a);
  ASSERT_EQ(both.status, 200);
  EXPECT_EQ(as_object(both).at("forecasts").as_array().size(), 6u);

  // 91 and 104 days round to 3 months but still reach past a 90-day forecast.
  for (const char* bad : {"horizon=abc", "horizon=0", "horizon=-5", "horizon=99999", "horizon=", "horizon=120",
                          "horizon=104", "horizon=91", "metric=price", "horizon=%zz"}) {
    auto r = http_->get(std::string("/api/predictions/market-trends?") + bad, a);
    EXPECT_EQ(r.status, 400) << bad << " " << r.body;
    EXPECT_FALSE(error_of(r).empty());
  }
  EXPECT_EQ(http_->get("/api/predictions/market-trends?region=Nowhere", a).status, 404);
  EXPECT_EQ(http_->get("/api/predictions/market-trends", "").status, 401);
  EXPECT_EQ(http_->get("/api/predictions/market-trends?tenant_id=t_other", a).status, 403);

  // A tenant's own forecast wins; a rewritten one is served at once.
  write_forecast(model_dir_ / "tenants" / "t_other" / "markets", 2.0);
  auto own = as_object(http_->get("/api/predictions/market-trends", token("t_other")));
  EXPECT_NE(own.at("model_version").as_string(), version);
  EXPECT_NEAR(own.at("regions").as_array()[0].as_object().at("point").to_number<double>(), 515000, 1e-6);
  write_forecast(model_dir_ / "markets", 1.5);
  auto again = as_object(http_->get("/api/predictions/market-trends", a));
  EXPECT_NE(again.at("model_version").as_string(), version);
  EXPECT_NEAR(again.at("regions").as_array()[0].as_object().at("point").to_number<double>(), 386250, 1e-6);
}

TEST_F(PredictionRoutesTest, PricingRecommendsAPriceWithIntervalComparablesAndMarket) {
  install(trained().avm, "avm");
  write_forecast(model_dir_ / "markets", 1.0);
  start();
  const std::string a = token(kTenant);
  auto r = http_->post("/api/predictions/pricing",
                       R"({"Neighborhood":"East","Gr_Liv_Area":1600,"Year_Built":1995,"Full_Bath":2,"region":"Austin"})", a);
  ASSERT_EQ(r.status, 200) << r.body;
  auto o = as_object(r);
  EXPECT_EQ(std::string(o.at("model_version").as_string()).substr(0, 4), "avm-");
  expect_interval(o, "lower80", "list_price", "upper80");
  const double price = o.at("list_price").to_number<double>();
  EXPECT_GT(price, 80000);
  EXPECT_LT(price, 400000);
  expect_interval(o.at("avm").as_object(), "lower80", "predicted", "upper80");
  EXPECT_EQ(o.at("comparables").as_array().size(), 5u);
  ASSERT_TRUE(o.at("market").is_object());
  const auto& market = o.at("market").as_object();
  EXPECT_EQ(market.at("region").as_string(), "Austin");
  EXPECT_EQ(market.at("data_through").as_string(), "2013-12");
  EXPECT_EQ(market.at("from_month").as_string(), "2014-01");
  EXPECT_EQ(market.at("to_month").as_string(), "2014-03");
  EXPECT_EQ(market.at("data_age_months").to_number<int>(), 130);
  EXPECT_EQ(o.at("as_of").as_string(), format_iso8601(kAsOf));
  // A 2014 forecast applied in 2024 is not "the next months" of today's market.
  const std::string explanation(o.at("explanation").as_string());
  EXPECT_NE(explanation.find("from 2014-01 to 2014-03 (forecast from data through 2013-12, 130 months before now"),
            std::string::npos)
      << explanation;
  EXPECT_EQ(explanation.find("next"), std::string::npos) << explanation;

  auto no_market = http_->post("/api/predictions/pricing", R"({"Neighborhood":"East","Gr_Liv_Area":1600,"Year_Built":1995,"Full_Bath":2})", a);
  ASSERT_EQ(no_market.status, 200) << no_market.body;
  EXPECT_TRUE(as_object(no_market).at("market").is_null());

  const std::string ok_fields = R"("Neighborhood":"East","Gr_Liv_Area":1600,"Year_Built":1995,"Full_Bath":2)";
  struct Bad {
    std::string body;
    int status;
  };
  for (const Bad& bad : std::vector<Bad>{
           {"{", 400},
           {"[1,2]", 400},
           {"\"text\"", 400},
           {"{" + ok_fields + R"(,"Pool_Size":3})", 400},  // unknown field
           {R"({"Neighborhood":"East","Gr_Liv_Area":"x","Year_Built":1995,"Full_Bath":2})", 400},  // wrong type
           {"{" + ok_fields + R"(,"Gr_Liv_Area2":{"a":1}})", 400},
           {"{" + ok_fields + R"(,"region":7})", 400},
           {R"({"Full_Bath":2})", 400},  // too little of the schema
           {"{" + ok_fields + R"(,"region":"Nowhere"})", 404},
           {"{" + ok_fields + R"(,"Neighborhood":")" + std::string(70 * 1024, 'x') + "\"}", 413},
       }) {
    auto res = http_->post("/api/predictions/pricing", bad.body, a);
    EXPECT_EQ(res.status, bad.status) << bad.body.substr(0, 80) << " -> " << res.body;
    EXPECT_FALSE(error_of(res).empty());
  }
  EXPECT_EQ(http_->post("/api/predictions/pricing", "{" + ok_fields + "}", "").status, 401);
  // A body's tenant_id is the token's or 403, as everywhere; it is no listing field.
  EXPECT_EQ(http_->post("/api/predictions/pricing", "{" + ok_fields + R"(,"tenant_id":"other"})", a).status, 403);
  EXPECT_EQ(http_->post("/api/predictions/pricing", "{" + ok_fields + R"(,"tenant_id":7})", a).status, 400);
  auto own = http_->post("/api/predictions/pricing", "{" + ok_fields + R"(,"tenant_id":")" + std::string(kTenant) + "\"}", a);
  EXPECT_EQ(own.status, 200) << own.body;
  EXPECT_EQ(http_->get("/api/predictions/pricing", a).status, 405);
}

// The pricing route answers like POST /api/properties/value for attributes
// beyond the training sales: priced, with them named; negative ones refused.
TEST_F(PredictionRoutesTest, PricingNamesAttributesOutsideTheTrainingRange) {
  install(trained().avm, "avm");
  start();
  const std::string a = token(kTenant);
  auto sales = property::parse_sales_csv(sales_csv(300), "sales.csv");
  ASSERT_TRUE(sales);
  double low = 1e300, high = 0;
  for (const auto& row : sales->rows) low = std::min(low, std::stod(row[1])), high = std::max(high, std::stod(row[1]));
  auto with_area = [](const std::string& area) {
    return R"({"Neighborhood":"East","Gr_Liv_Area":)" + area + R"(,"Year_Built":1995,"Full_Bath":2})";
  };
  auto inside = http_->post("/api/predictions/pricing", with_area("1600"), a);
  ASSERT_EQ(inside.status, 200) << inside.body;
  EXPECT_EQ(json::serialize(as_object(inside).at("outside_training_range")), "[]");
  EXPECT_EQ(as_object(inside).at("market_as_of").as_string(), "2010-07");
  // The explanation says so too: the value is at 2010-07 prices, not "today".
  const std::string said(as_object(inside).at("explanation").as_string());
  EXPECT_NE(said.find("at the prices of its training sales (market as of 2010-07)"), std::string::npos) << said;
  EXPECT_EQ(said.find("today"), std::string::npos) << said;
  // A listing of today is later than every training sale, never outside.
  auto today = http_->post(
      "/api/predictions/pricing",
      R"({"Neighborhood":"East","Gr_Liv_Area":1600,"Year_Built":1995,"Full_Bath":2,"Year_Sold":2026,"Mo_Sold":3})", a);
  ASSERT_EQ(today.status, 200) << today.body;
  EXPECT_EQ(json::serialize(as_object(today).at("outside_training_range")), "[]");

  auto huge = http_->post("/api/predictions/pricing", with_area("40000"), a);
  ASSERT_EQ(huge.status, 200) << huge.body;
  const json::object o = as_object(huge);
  EXPECT_GT(o.at("list_price").to_number<double>(), 0);
  const auto& outside = o.at("outside_training_range").as_array();
  ASSERT_EQ(outside.size(), 1u) << huge.body;
  EXPECT_EQ(outside[0].as_object().at("attribute").as_string(), "Gr_Liv_Area");
  EXPECT_EQ(outside[0].as_object().at("value").to_number<double>(), 40000);
  EXPECT_EQ(outside[0].as_object().at("min").to_number<double>(), low);
  EXPECT_EQ(outside[0].as_object().at("max").to_number<double>(), high);

  auto negative = http_->post("/api/predictions/pricing", with_area("-500"), a);
  EXPECT_EQ(negative.status, 400);
  EXPECT_NE(error_of(negative).find("attribute 'Gr_Liv_Area' must not be negative: every training sale had it ≥ 0"),
            std::string::npos)
      << negative.body;
}

// A listing with the training file's columns the model left out (an id, a
// constant) is priced as without them, and the answer names them with the
// target; a name that was never a training column is still refused. A
// model saved before the left-out columns were kept refuses them as today.
TEST_F(PredictionRoutesTest, PricingIgnoresTheTrainingFilesLeftOutColumns) {
  install(trained().avm_left_out, "avm");
  // t_other's own copy, as saved before the left-out columns were kept.
  install(trained().avm_left_out, "tenants/t_other/avm");
  const fs::path old_model = model_dir_ / "tenants/t_other/avm/model.json";
  std::stringstream text;
  text << std::ifstream(old_model).rdbuf();
  json::object root = json::parse(text.str()).as_object();
  ASSERT_TRUE(root.erase("ignored_columns"));
  std::ofstream(old_model, std::ios::trunc) << json::serialize(root);
  start();
  const std::string a = token(kTenant);
  const std::string fields = R"("Neighborhood":"East","Gr_Liv_Area":1600,"Year_Built":1995,"Full_Bath":2)";
  auto plain = http_->post("/api/predictions/pricing", "{" + fields + "}", a);
  ASSERT_EQ(plain.status, 200) << plain.body;
  EXPECT_EQ(json::serialize(as_object(plain).at("ignored_attributes")), "[]");
  const std::string left_out = "{" + fields + R"(,"PID":526301100,"Country":"USA","Sale_Price":1})";
  auto full = http_->post("/api/predictions/pricing", left_out, a);
  ASSERT_EQ(full.status, 200) << full.body;
  json::object with = as_object(full), without = as_object(plain);
  EXPECT_EQ(json::serialize(with.at("ignored_attributes")), R"(["PID","Country","Sale_Price"])");
  // Same price and the same comparables: an id is no likeness.
  with.erase("ignored_attributes"), without.erase("ignored_attributes");
  EXPECT_EQ(json::serialize(with), json::serialize(without));
  // A left-out column's value is not read: a text id is no error either.
  EXPECT_EQ(http_->post("/api/predictions/pricing", "{" + fields + R"(,"PID":"526-301-100"})", a).status, 200);
  auto misspelt = http_->post("/api/predictions/pricing", "{" + fields + R"(,"PIDD":1})", a);
  EXPECT_EQ(misspelt.status, 400);
  EXPECT_EQ(error_of(misspelt), "unknown field PIDD");

  const std::string old = token("t_other");
  auto refused = http_->post("/api/predictions/pricing", left_out, old);
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_EQ(error_of(refused), "unknown field PID");
  auto old_target = http_->post("/api/predictions/pricing", "{" + fields + R"(,"Sale_Price":1})", old);
  ASSERT_EQ(old_target.status, 200) << old_target.body;
  EXPECT_EQ(json::serialize(as_object(old_target).at("ignored_attributes")), R"(["Sale_Price"])");
}

// Without an `avm/`, pricing uses the `value/` model the listings are valued
// with (what `reai demo` and `reai import listings` train), the tenant's own
// first; a dedicated `avm/` (with comparables) still comes first.
TEST_F(PredictionRoutesTest, PricingFallsBackToTheListingsValuationModel) {
  install(trained().avm, "value");
  fs::remove(model_dir_ / "value" / "sales.csv");
  start();
  const std::string a = token(kTenant);
  const std::string body = R"({"Neighborhood":"East","Gr_Liv_Area":1600,"Year_Built":1995,"Full_Bath":2})";
  auto r = http_->post("/api/predictions/pricing", body, a);
  ASSERT_EQ(r.status, 200) << r.body;
  auto o = as_object(r);
  expect_interval(o, "lower80", "list_price", "upper80");
  EXPECT_GT(o.at("list_price").to_number<double>(), 80000);
  EXPECT_TRUE(o.at("comparables").as_array().empty());  // value/ has no sales.csv

  // The tenant's own value/ before the shared one: a tenant-only copy
  // serves another tenant nothing.
  fs::remove_all(model_dir_ / "value");
  fs::create_directories(model_dir_ / "tenants" / kTenant);
  fs::copy(trained().avm, model_dir_ / "tenants" / kTenant / "value", fs::copy_options::recursive);
  auto own = http_->post("/api/predictions/pricing", body, a);
  ASSERT_EQ(own.status, 200) << own.body;
  EXPECT_EQ(as_object(own).at("comparables").as_array().size(), 5u);
  EXPECT_EQ(http_->post("/api/predictions/pricing", body, token("t_other")).status, 404);

  install(trained().avm, "value");
  fs::remove(model_dir_ / "value" / "sales.csv");
  fs::remove_all(model_dir_ / "tenants");
  install(trained().avm, "avm");
  auto dedicated = http_->post("/api/predictions/pricing", body, a);
  ASSERT_EQ(dedicated.status, 200) << dedicated.body;
  EXPECT_EQ(as_object(dedicated).at("comparables").as_array().size(), 5u);  // avm/ with its sales.csv
}

// Pricing is computed on the pricing worker, never on the calling (io)
// thread: the call returns a deferred answer, and the answer arrives once,
// through `post`, from another thread. At stop, a queued price answers 503.
TEST_F(PredictionRoutesTest, PricingIsAnsweredByTheWorkerThroughPost) {
  install(trained().avm, "avm");
  PredictionRoutes routes(*store_, model_dir_.string(), clock_);
  TokenClaims claims{kTenant, Role::kAgent, kAsOf + 3600};
  const std::string body = R"({"Neighborhood":"East","Gr_Liv_Area":1600,"Year_Built":1995,"Full_Bath":2})";
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<ApiResponse, std::thread::id>> answers;
  int posts = 0;
  Api::Post post = [&](std::function<void()> f) {
    {
      std::lock_guard lock(mu);
      ++posts;
    }
    f();
  };
  Api::Respond respond = [&](ApiResponse r) {
    std::lock_guard lock(mu);
    answers.emplace_back(std::move(r), std::this_thread::get_id());
    cv.notify_all();
  };
  ApiResponse r = routes.handle(Route::kPredictionPricing, claims, false, true, "", "", body, post, respond);
  EXPECT_TRUE(r.deferred);
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return !answers.empty(); }));
    EXPECT_EQ(posts, 1);
    EXPECT_EQ(answers.size(), 1u);
    EXPECT_NE(answers[0].second, std::this_thread::get_id());
    ASSERT_EQ(answers[0].first.status, 200) << answers[0].first.body;
    auto o = json::parse(answers[0].first.body).as_object();
    EXPECT_GT(o.at("list_price").to_number<double>(), 80000);
  }
  // Bad input is answered from the worker too, with its 4xx.
  r = routes.handle(Route::kPredictionPricing, claims, false, true, "", "", "{", post, respond);
  EXPECT_TRUE(r.deferred);
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return answers.size() == 2; }));
    EXPECT_EQ(answers[1].first.status, 400);
  }
  // An oversize body is refused at once, without the worker.
  r = routes.handle(Route::kPredictionPricing, claims, false, true, "", "", std::string(70 * 1024, ' '), post, respond);
  EXPECT_FALSE(r.deferred);
  EXPECT_EQ(r.status, 413);
  // Without post/respond (a synchronous caller) it is computed inline.
  r = routes.handle(Route::kPredictionPricing, claims, false, true, "", "", body);
  EXPECT_FALSE(r.deferred);
  EXPECT_EQ(r.status, 200) << r.body;
  routes.stop();
  r = routes.handle(Route::kPredictionPricing, claims, false, true, "", "", body, post, respond);
  EXPECT_FALSE(r.deferred);
  EXPECT_EQ(r.status, 503);
  std::lock_guard lock(mu);
  EXPECT_EQ(answers.size(), 2u);
}

}  // namespace
}  // namespace reai::server
