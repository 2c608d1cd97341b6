// Black-box tests of `reai train deals`, `reai deals` and `reai agents` on the
// small fixture history (shared/EVALUATION.md "Deals", "Agents").
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

#include "support/process.h"

namespace reai::testing {
namespace {

const std::string kFixture = "tests/fixtures/crm_small";

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(AnalyticsBinaryTest, TrainDealsThenForecastOpenDeals) {
  const std::string dir = make_temp_dir("reai-deals");
  auto train = run_reai({"train", "deals", "--contacts", kFixture + "/contacts.csv", "--events",
                         kFixture + "/events.csv", "--stages", kFixture + "/opportunity_stages.csv", "--out",
                         dir + "/deals", "--threads", "1"});
  ASSERT_EQ(train.exit_code, 0) << train.output;
  // 37 opportunities: too few lost deals to learn from. Saved, and said.
  EXPECT_NE(train.output.find("reai train deals: warning: degenerate model: only 8 lost deals among 164 training "
                              "examples (need at least 10 closed and 10 lost deals); saved with that reason"),
            std::string::npos)
      << train.output;
  std::ifstream meta_file(dir + "/deals/deal_model.json");
  const std::string meta((std::istreambuf_iterator<char>(meta_file)), std::istreambuf_iterator<char>());
  EXPECT_NE(meta.find("\"degenerate\":\"only 8 lost deals among 164 training examples (need at least 10 closed and "
                      "10 lost deals)\""),
            std::string::npos)
      << meta;
  EXPECT_NE(meta.find("\"closed_deals\":12,\"lost_deals\":8"), std::string::npos) << meta;
  // `reai deals` on the fixture's contacts and events.
  const auto run_deals = [&](const std::string& model, const std::string& stages, const std::string& as_of,
                             const std::string& out) {
    return run_reai({"deals", "--model", model, "--contacts", kFixture + "/contacts.csv", "--events",
                     kFixture + "/events.csv", "--stages", stages, "--as-of", as_of, "--out", out});
  };
  const std::string stages = kFixture + "/opportunity_stages.csv";
  auto deals = run_deals(dir + "/deals", stages, "2025-06-01T00:00:00Z", dir + "/deals.csv");
  ASSERT_EQ(deals.exit_code, 0) << deals.output;
  EXPECT_NE(deals.output.find("is degenerate (only 8 lost deals among 164 training examples (need at least 10 closed "
                              "and 10 lost deals)): p_close and days are the stage prior"),
            std::string::npos)
      << deals.output;
  const auto lines = read_lines(dir + "/deals.csv");
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(lines[0], "opportunity_id,p_close,expected_days_to_close,lower80_days,upper80_days");
  double p = -1, expected = -1, lower = -1, upper = -1;
  ASSERT_EQ(std::sscanf(lines[1].c_str(), "%*[^,],%lf,%lf,%lf,%lf", &p, &expected, &lower, &upper), 4) << lines[1];
  EXPECT_GT(p, 0);
  EXPECT_LT(p, 1);
  EXPECT_LE(lower, expected);
  EXPECT_LE(expected, upper);
  auto bad_time = run_deals(dir + "/deals", stages, "yesterday", dir + "/x.csv");
  EXPECT_EQ(bad_time.exit_code, 2) << bad_time.output;
  auto no_model = run_deals(dir + "/none", stages, "2025-06-01T00:00:00Z", dir + "/x.csv");
  EXPECT_EQ(no_model.exit_code, 2) << no_model.output;
  // Before the history starts, or with no stage rows: no pipeline to
  // forecast, said and refused (2), never an empty file.
  auto before = run_deals(dir + "/deals", stages, "2020-01-01T00:00:00Z", dir + "/before.csv");
  EXPECT_EQ(before.exit_code, 2) << before.output;
  EXPECT_NE(before.output.find("reai: no opportunity history at or before 2020-01-01T00:00:00Z: the first stage row "
                               "is at 2024-01-13T19:19:27Z"),
            std::string::npos)
      << before.output;
  EXPECT_FALSE(std::ifstream(dir + "/before.csv").good());
  const std::string header_only = dir + "/stages.csv";
  std::ofstream(header_only) << "opportunity_id,tenant_id,contact_id,agent_id,monetary_value,ts,stage\n";
  auto none = run_deals(dir + "/deals", header_only, "2025-06-01T00:00:00Z", dir + "/none.csv");
  EXPECT_EQ(none.exit_code, 2) << none.output;
  EXPECT_NE(none.output.find("no data rows"), std::string::npos) << none.output;
}

TEST(AnalyticsBinaryTest, AgentsWritesForecastAndCoachingForEveryAgent) {
  const std::string dir = make_temp_dir("reai-agents");
  auto run = run_reai({"agents", "--stages", kFixture + "/opportunity_stages.csv", "--contacts",
                       kFixture + "/contacts.csv", "--events", kFixture + "/events.csv", "--as-of",
                       "2026-01-01T00:00:00Z", "--horizon-months", "3", "--out", dir + "/agents.csv", "--coaching",
                       dir + "/coaching.csv"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const auto forecast = read_lines(dir + "/agents.csv");
  ASSERT_GE(forecast.size(), 4u);
  EXPECT_EQ(forecast[0], "agent_id,year,month,expected_closings,lower80,upper80");
  EXPECT_NE(forecast[1].find(",2026,1,"), std::string::npos) << forecast[1];
  std::set<std::string> forecast_agents, coached;
  for (std::size_t i = 1; i < forecast.size(); ++i) forecast_agents.insert(forecast[i].substr(0, forecast[i].find(',')));
  const auto coaching = read_lines(dir + "/coaching.csv");
  ASSERT_GE(coaching.size(), 2u);
  EXPECT_EQ(coaching[0], "agent_id,finding");
  for (std::size_t i = 1; i < coaching.size(); ++i) coached.insert(coaching[i].substr(0, coaching[i].find(',')));
  for (const auto& agent : forecast_agents) EXPECT_TRUE(coached.count(agent)) << agent;
}

TEST(AnalyticsBinaryTest, AgentsBadInputExitsWithTwo) {
  const std::string dir = make_temp_dir("reai-agents-bad");
  const std::string no_stage = dir + "/stages.csv";
  std::ofstream(no_stage) << "opportunity_id,tenant_id,contact_id,agent_id,monetary_value,ts\n";
  auto missing_column = run_reai({"agents", "--stages", no_stage, "--as-of", "2026-01-01T00:00:00Z", "--out",
                                  dir + "/a.csv"});
  EXPECT_EQ(missing_column.exit_code, 2) << missing_column.output;
  auto missing_file = run_reai({"agents", "--stages", dir + "/none.csv", "--as-of", "2026-01-01T00:00:00Z", "--out",
                                dir + "/a.csv"});
  EXPECT_EQ(missing_file.exit_code, 2) << missing_file.output;
  auto bad_horizon = run_reai({"agents", "--stages", kFixture + "/opportunity_stages.csv", "--as-of",
                               "2026-01-01T00:00:00Z", "--horizon-months", "0", "--out", dir + "/a.csv"});
  EXPECT_EQ(bad_horizon.exit_code, 2) << bad_horizon.output;
  // Before the history starts: no pipeline to forecast, said (as reai deals).
  auto before = run_reai({"agents", "--stages", kFixture + "/opportunity_stages.csv", "--as-of",
                          "2020-01-01T00:00:00Z", "--out", dir + "/before.csv"});
  EXPECT_EQ(before.exit_code, 2) << before.output;
  EXPECT_NE(before.output.find("reai: no opportunity rows before the as-of instant"), std::string::npos)
      << before.output;
  auto contacts_alone = run_reai({"agents", "--stages", kFixture + "/opportunity_stages.csv", "--contacts",
                                  kFixture + "/contacts.csv", "--as-of", "2026-01-01T00:00:00Z", "--out",
                                  dir + "/a.csv"});
  EXPECT_EQ(contacts_alone.exit_code, 2) << contacts_alone.output;
}

// `reai forecast backtest` on the fixture panel (sales, median; 2008-2013):
// the city set (no gap in any column) and the per-forecast file.
TEST(AnalyticsBinaryTest, ForecastBacktestWritesEveryScoredForecast) {
  const std::string dir = make_temp_dir("reai-backtest");
  auto run = run_reai({"forecast", "backtest", "--data", "fixtures/market/txhousing.csv", "--series", "city", "--time",
                       "year,month", "--metrics", "median,sales", "--origins", "2013-06:2013-07", "--complete-from",
                       "2012-01", "--complete-columns", "all", "--points-out", dir + "/points.csv", "--quiet"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("origins 2, horizon 3"), std::string::npos) << run.output;
  const auto lines = read_lines(dir + "/points.csv");
  ASSERT_GE(lines.size(), 2u);
  EXPECT_EQ(lines[0], "method,series,metric,origin,h,actual,point,lower80,upper80,scale");
  std::set<std::string> methods;
  for (std::size_t i = 1; i < lines.size(); ++i) methods.insert(lines[i].substr(0, lines[i].find(',')));
  EXPECT_EQ(methods, (std::set<std::string>{"combined", "ets", "global_gbm", "seasonal_naive", "theta"}));
  auto bad = run_reai({"forecast", "backtest", "--data", "fixtures/market/txhousing.csv", "--series", "city", "--time",
                       "year,month", "--metrics", "median,sales", "--origins", "2013-06:2013-07", "--complete-from",
                       "2012-01", "--complete-columns", "some"});
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  auto unwritable = run_reai({"forecast", "backtest", "--data", "fixtures/market/txhousing.csv", "--series", "city",
                              "--time", "year,month", "--metrics", "median,sales", "--origins", "2013-06:2013-06",
                              "--points-out", dir + "/no/such/dir/points.csv", "--quiet"});
  EXPECT_EQ(unwritable.exit_code, 2) << unwritable.output;
  EXPECT_NE(unwritable.output.find("cannot write --points-out"), std::string::npos) << unwritable.output;
}

// `reai forecast --seed`: the global model's subsampling seed. The same seed
// gives the same file; another seed moves the forecasts (by a little: the
// seed is what a backtest on a second seed varies, docs/RESULTS.md).
// A user's own panel with a series that stops early and one with a few
// months only: forecasts as before, and stderr names both.
TEST(AnalyticsBinaryTest, ForecastNamesStaleAndShortSeries) {
  const std::string dir = make_temp_dir("reai-forecast-thin");
  std::string csv = "region,year,month,price\n";
  for (int i = 0; i < 36; ++i) {
    csv += "Long," + std::to_string(2021 + i / 12) + "," + std::to_string(1 + i % 12) + "," + std::to_string(300 + i) + "\n";
  }
  csv += "Tiny,2023,1,200\nTiny,2023,2,205\n";
  const std::string data = dir + "/panel.csv";
  std::ofstream(data) << csv;
  auto run = run_reai({"forecast", "--data", data, "--series", "region", "--time", "year,month", "--metrics", "price",
                       "--horizon", "2", "--out", dir + "/out.csv", "--quiet"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("1 of 2 series-metrics end before the origin 2023-12"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("Tiny price (last 2023-02)"), std::string::npos) << run.output;
  EXPECT_NE(run.output.find("1 of 2 series-metrics have fewer than 12 months of values"), std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("Tiny price (2)"), std::string::npos) << run.output;
  EXPECT_EQ(read_lines(dir + "/out.csv").size(), 5u);
}

TEST(AnalyticsBinaryTest, ForecastSeedReproducesAndVaries) {
  const std::string dir = make_temp_dir("reai-forecast-seed");
  auto forecast = [&](const std::string& seed, const std::string& out) {
    return run_reai({"forecast", "--data", "fixtures/market/txhousing.csv", "--series", "city", "--time",
                     "year,month", "--metrics", "median,sales", "--horizon", "3", "--seed", seed, "--out",
                     dir + "/" + out, "--quiet"});
  };
  for (const auto& [seed, out] : {std::pair{"7", "a.csv"}, {"7", "b.csv"}, {"8", "c.csv"}}) {
    auto run = forecast(seed, out);
    ASSERT_EQ(run.exit_code, 0) << run.output;
  }
  const auto a = read_lines(dir + "/a.csv"), b = read_lines(dir + "/b.csv"), c = read_lines(dir + "/c.csv");
  ASSERT_GE(a.size(), 2u);
  EXPECT_EQ(a[0], "series,metric,year,month,h,point,lower80,upper80");
  EXPECT_EQ(a, b);
  ASSERT_EQ(a.size(), c.size());
  std::size_t differ = 0;
  for (std::size_t i = 1; i < a.size(); ++i) differ += a[i] != c[i] ? 1 : 0;
  EXPECT_GT(differ, (a.size() - 1) / 2) << "seed 8 changed only " << differ << " of " << a.size() - 1 << " lines";
  EXPECT_EQ(forecast("seven", "d.csv").exit_code, 2);
}

}  // namespace
}  // namespace reai::testing
