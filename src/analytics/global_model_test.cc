#include "analytics/global_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "analytics/forecast.h"

namespace reai::analytics {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Series held by the test, pointed to by GlobalModelSeries.
struct TestPanel {
  std::vector<std::vector<double>> z;      // [series][t], log values
  std::vector<std::vector<double>> other;  // [series][t], one other column
};

GlobalModelInput input_for(const TestPanel& panel, int start, int horizon) {
  GlobalModelInput input;
  std::vector<GlobalModelSeries> series;
  for (std::size_t s = 0; s < panel.z.size(); ++s) {
    GlobalModelSeries g{&panel.z[s], start, nullptr, nullptr, {}};
    if (!panel.other.empty()) g.others.push_back(&panel.other[s]);
    series.push_back(std::move(g));
  }
  input.metrics.push_back(std::move(series));
  input.horizon = horizon;
  input.last_month = start + static_cast<int>(panel.z.front().size()) - 1;
  input.inner_first = input.last_month - 18;
  input.folds = 2;
  input.nthread = 1;
  return input;
}

// Mean absolute error of the cross-fitted inner forecasts at horizon h.
double inner_mae(const GlobalModelOutput& out, const TestPanel& panel, int h) {
  double sum = 0;
  int n = 0;
  for (std::size_t s = 0; s < panel.z.size(); ++s) {
    const auto& forecasts = out.inner[0][s][static_cast<std::size_t>(h - 1)];
    for (std::size_t i = 0; i < forecasts.size(); ++i) {
      if (std::isnan(forecasts[i])) continue;
      sum += std::abs(forecasts[i] - panel.z[s][i]);
      ++n;
    }
  }
  return n > 0 ? sum / n : kNaN;
}

// Training on horizons past the forecast ones adds rows, not outputs: the
// forecasts are for 1..horizon only, and on seasonal series with a steady
// trend they stay exact to a fraction of a percent.
TEST(GlobalModel, TrainsOnFurtherHorizonsButForecastsTheAskedOnes) {
  TestPanel panel;
  const int start = month_index(2005, 1), length = 108;
  for (int s = 0; s < 10; ++s) {
    std::vector<double> z;
    for (int t = 0; t < length; ++t) {
      z.push_back(std::log(100.0 + 15 * s) + 0.004 * t + 0.1 * std::sin(2 * M_PI * t / 12.0));
    }
    panel.z.push_back(std::move(z));
  }
  GlobalModelInput input = input_for(panel, start, 3);
  input.train_horizon = 6;
  input.rounds = 200;
  auto out = run_global_model(input);
  ASSERT_TRUE(out) << out.status().to_string();
  for (std::size_t s = 0; s < panel.z.size(); ++s) {
    ASSERT_EQ(out->final[0][s].size(), 3u);
    ASSERT_EQ(out->inner[0][s].size(), 3u);
    for (int h = 1; h <= 3; ++h) {
      const int t = length - 1 + h;
      const double truth = std::log(100.0 + 15 * static_cast<double>(s)) + 0.004 * t + 0.1 * std::sin(2 * M_PI * t / 12.0);
      EXPECT_NEAR(out->final[0][s][static_cast<std::size_t>(h - 1)], truth, 0.01) << "series " << s << " h=" << h;
    }
  }
  // The inner forecasts cover the inner origins at every forecast horizon.
  EXPECT_LT(inner_mae(*out, panel, 3), 0.01);
  input.train_horizon = 30;  // longer than the series allow for most rows: still fine
  EXPECT_TRUE(run_global_model(input));
}

// Each city's other column (think of new listings) is a market-wide monthly
// shock plus the city's own, twice as large; the price three months on
// moves with the market's year-over-year change of that column's 3-month
// mean. One city's column says little, the average over all cities much: the
// market trend of the other column makes the 3-month forecast clearly better.
TEST(GlobalModel, MarketTrendOfAnotherColumnInformsTheForecast) {
  std::mt19937 rng(5);
  std::normal_distribution<double> market_shock(0, 0.1), city_shock(0, 0.2), noise(0, 0.002);
  const int start = month_index(2004, 1), length = 120, cities = 40;
  std::vector<double> market(length);
  for (double& m : market) m = market_shock(rng);
  auto mean3 = [&](int t) { return (market[t] + market[t - 1] + market[t - 2]) / 3; };
  TestPanel panel;
  for (int s = 0; s < cities; ++s) {
    std::vector<double> z, other;
    for (int t = 0; t < length; ++t) {
      const double signal = t >= 17 ? mean3(t - 3) - mean3(t - 15) : 0;  // the market trend 3 months before
      z.push_back(std::log(100.0 + 10 * s) + signal + noise(rng));
      other.push_back(std::log(50.0 + s) + market[static_cast<std::size_t>(t)] + city_shock(rng));
    }
    panel.z.push_back(std::move(z));
    panel.other.push_back(std::move(other));
  }
  GlobalModelInput input = input_for(panel, start, 3);
  input.rounds = 150;
  auto without = run_global_model(input);
  ASSERT_TRUE(without) << without.status().to_string();
  input.market_others = true;
  auto with = run_global_model(input);
  ASSERT_TRUE(with) << with.status().to_string();
  const double mae_without = inner_mae(*without, panel, 3), mae_with = inner_mae(*with, panel, 3);
  EXPECT_LT(mae_with, 0.9 * mae_without) << "with " << mae_with << ", without " << mae_without;
  // The plain reference model ignores the flag: same forecasts either way.
  input.plain = true;
  auto plain_with = run_global_model(input);
  input.market_others = false;
  auto plain_without = run_global_model(input);
  ASSERT_TRUE(plain_with && plain_without);
  EXPECT_DOUBLE_EQ(inner_mae(*plain_with, panel, 3), inner_mae(*plain_without, panel, 3));
}

}  // namespace
}  // namespace reai::analytics
