#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <sstream>
#include <string>

#include "analytics/forecast.h"

namespace reai::analytics {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Simulates ETS(A,Ad,A): y_t = l + phi b + s_{t-m} + e_t with the textbook
// state updates, starting at month index 0 (January).
std::vector<double> simulate_ets(const EtsParams& p, double sigma, int n, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0.0, sigma);
  double level = 10, slope = 0.02;
  std::vector<double> season(12);
  for (int k = 0; k < 12; ++k) season[static_cast<std::size_t>(k)] = 0.5 * std::sin(2 * M_PI * k / 12.0);
  std::vector<double> y;
  for (int t = 0; t < n; ++t) {
    double& s = season[static_cast<std::size_t>(t % 12)];
    const double lb = level + p.phi * slope;
    const double e = noise(rng);
    y.push_back(lb + s + e);
    level = lb + p.alpha * e;
    slope = p.phi * slope + p.beta * e;
    s += p.gamma * e;
  }
  return y;
}

std::string panel_csv(const std::vector<std::pair<std::string, std::vector<double>>>& series, int start_year) {
  std::ostringstream out;
  out << "city,year,month,median,sales\n";
  for (const auto& [name, values] : series) {
    for (std::size_t i = 0; i < values.size(); ++i) {
      const int month = month_index(start_year, 1) + static_cast<int>(i);
      out << name << "," << year_of(month) << "," << month_of(month) << ",";
      if (std::isnan(values[i])) {
        out << "NA";
      } else {
        out << values[i];
      }
      out << "," << (std::isnan(values[i]) ? 10.0 : values[i] / 1000.0) << "\n";
    }
  }
  return out.str();
}

// (GCC 12 warns falsely on "literal" + std::to_string in some inlinings.)
std::string numbered(const char* prefix, int i) {
  std::ostringstream out;
  out << prefix << i;
  return out.str();
}

const PanelSpec kSpec{"city", {"year", "month"}, {"median", "sales"}, {}, false};

TEST(SeasonalNaive, RepeatsAPureSeasonalSeriesExactly) {
  std::vector<double> y;
  for (int t = 0; t < 60; ++t) y.push_back(100 + 10 * (t % 12) - (t % 12 == 5 ? 30 : 0));
  const auto f = seasonal_naive(y, 14);
  ASSERT_EQ(f.size(), 14u);
  for (int h = 1; h <= 14; ++h) EXPECT_DOUBLE_EQ(f[static_cast<std::size_t>(h - 1)], y[static_cast<std::size_t>(60 + h - 1 - 24 + (h > 12 ? 0 : 12))]);
}

TEST(SeasonalNaive, SkipsMissingMonthsAndFallsBackToLastValue) {
  std::vector<double> y(30, 5.0);
  y[18] = kNaN;  // the same month a year before the forecast month 30
  y[6] = 7.0;    // two years before
  const auto f = seasonal_naive(y, 1);
  EXPECT_DOUBLE_EQ(f[0], 7.0);
  const std::vector<double> short_series{1, 2, 3};
  EXPECT_DOUBLE_EQ(seasonal_naive(short_series, 2)[1], 3.0);
  const std::vector<double> empty(5, kNaN);
  EXPECT_TRUE(std::isnan(seasonal_naive(empty, 1)[0]));
}

TEST(SeasonalNaive, PanelForecastOfPureSeasonalSeriesIsExact) {
  std::vector<std::pair<std::string, std::vector<double>>> series;
  for (int s = 0; s < 4; ++s) {
    std::vector<double> y;
    for (int t = 0; t < 48; ++t) y.push_back(1000.0 * (s + 1) + 100 * ((t * 7) % 12));
    series.emplace_back(numbered("c", s), y);
  }
  auto panel = parse_monthly_panel(panel_csv(series, 2010), "test.csv", kSpec);
  ASSERT_TRUE(panel) << panel.status().to_string();
  ForecastOptions options;
  options.gbm_rounds = 20;
  auto all = forecast_all_methods(*panel, options);
  ASSERT_TRUE(all) << all.status().to_string();
  const auto& naive = all->by_method[static_cast<int>(Method::kSeasonalNaive)];
  ASSERT_EQ(naive.size(), 4u * 2 * 3);
  for (const auto& p : naive) {
    if (p.metric != 0) continue;
    const auto& y = series[p.series].second;
    EXPECT_NEAR(p.point, y[static_cast<std::size_t>(48 + p.h - 1 - 12)], 1e-6);
  }
}

// Theta's known behaviour on a straight line: SES tracks it exactly (weight
// 1), the drift is half the slope, so it forecasts the last value plus half
// the slope per month.
TEST(Theta, ForecastsHalfTheSlopeOfAStraightLine) {
  std::vector<double> y;
  for (int t = 0; t < 40; ++t) y.push_back(5.0 + 0.3 * t);
  y[10] = kNaN;  // gaps are skipped
  const auto f = theta_forecast(y, month_index(2010, 1), 4);
  ASSERT_EQ(f.size(), 4u);
  for (int h = 1; h <= 4; ++h) EXPECT_NEAR(f[static_cast<std::size_t>(h - 1)], y.back() + 0.15 * h, 1e-9) << "h=" << h;
  EXPECT_TRUE(std::isnan(theta_forecast(std::vector<double>(6, kNaN), 0, 2)[1]));
}

// A pure seasonal series: the decomposition recovers the pattern exactly, the
// adjusted series is flat, so theta repeats the seasonal cycle.
TEST(Theta, RepeatsAPureSeasonalSeries) {
  std::vector<double> y;
  const int start = month_index(2010, 4);  // not January: calendar positions matter
  for (int t = 0; t < 60; ++t) y.push_back(10.0 + std::sin(2 * M_PI * ((start + t) % 12) / 12.0));
  const auto f = theta_forecast(y, start, 14);
  for (int h = 1; h <= 14; ++h) {
    EXPECT_NEAR(f[static_cast<std::size_t>(h - 1)], 10.0 + std::sin(2 * M_PI * ((start + 59 + h) % 12) / 12.0), 1e-9)
        << "h=" << h;
  }
}

TEST(Ets, RecoversTheParametersOfAGeneratedSeries) {
  const EtsParams truth{0.3, 0.02, 0.15, 0.9};
  const auto y = simulate_ets(truth, 0.05, 480, 11);
  const EtsSpec spec{EtsError::kAdditive, true, true, EtsSeason::kAdditive};
  auto model = fit_ets(y, 0, spec);
  ASSERT_TRUE(model) << model.status().to_string();
  EXPECT_NEAR(model->params.alpha, truth.alpha, 0.08);
  EXPECT_NEAR(model->params.gamma, truth.gamma, 0.08);
  EXPECT_NEAR(model->params.beta, truth.beta, 0.04);
  EXPECT_NEAR(model->sigma, 0.05, 0.006);
  EXPECT_GE(model->params.phi, 0.8);
  EXPECT_LE(model->params.phi, 0.98);
  // Its one-step forecast error on fresh data from the same process is the
  // noise level.
  EXPECT_EQ(model->forecast(3).size(), 3u);
  EXPECT_GT(model->forecast_sd(3), model->forecast_sd(1));
}

TEST(Ets, RecoversSimpleExponentialSmoothing) {
  std::mt19937 rng(3);
  std::normal_distribution<double> noise(0.0, 1.0);
  std::vector<double> y;
  double level = 50;
  for (int t = 0; t < 600; ++t) {
    const double e = noise(rng);
    y.push_back(level + e);
    level += 0.6 * e;
  }
  const EtsSpec spec{EtsError::kAdditive, false, false, EtsSeason::kNone};
  auto model = fit_ets(y, 0, spec);
  ASSERT_TRUE(model);
  EXPECT_NEAR(model->params.alpha, 0.6, 0.06);
  EXPECT_NEAR(model->forecast(1)[0], model->level, 1e-12);
}

TEST(Ets, MultiplicativeModelFitsPositiveSeasonalData) {
  std::vector<double> y;
  for (int t = 0; t < 96; ++t) y.push_back((100 + t) * (1 + 0.2 * std::sin(2 * M_PI * t / 12.0)));
  const EtsSpec spec{EtsError::kMultiplicative, true, true, EtsSeason::kMultiplicative};
  auto model = fit_ets(y, 0, spec);
  ASSERT_TRUE(model) << model.status().to_string();
  const double expected = (100 + 96) * (1 + 0.2 * std::sin(2 * M_PI * 96 / 12.0));
  EXPECT_NEAR(model->forecast(1)[0], expected, 0.03 * expected);
  y[10] = -1;
  EXPECT_EQ(fit_ets(y, 0, spec).status().code(), StatusCode::kInvalidArgument);
}

TEST(Ets, RunsThroughGapsAndRejectsTooShortSeries) {
  const EtsParams truth{0.3, 0.02, 0.15, 0.9};
  auto y = simulate_ets(truth, 0.05, 240, 5);
  const EtsSpec spec{EtsError::kAdditive, true, true, EtsSeason::kAdditive};
  auto full = fit_ets(y, 0, spec);
  for (int t = 100; t < 106; ++t) y[static_cast<std::size_t>(t)] = kNaN;
  auto gapped = fit_ets(y, 0, spec);
  ASSERT_TRUE(full);
  ASSERT_TRUE(gapped);
  EXPECT_EQ(gapped->observations, full->observations - 6);
  EXPECT_NEAR(gapped->forecast(1)[0], full->forecast(1)[0], 0.1);
  std::vector<double> short_series(20, 1.0);
  EXPECT_EQ(fit_ets(short_series, 0, spec).status().code(), StatusCode::kInvalidArgument);
}

TEST(Panel, ReadsGapsDifferentLengthsAndDateColumns) {
  const std::string csv =
      "region,date,price,count\n"
      "b,2020-01,10,1\n"
      "a,2019-11,5,NA\n"
      "a,2019-12,,2\n"
      "a,2020-01,7,3\n";
  auto panel = parse_monthly_panel(csv, "p.csv", {"region", {"date"}, {"price", "count"}, {}, false});
  ASSERT_TRUE(panel) << panel.status().to_string();
  ASSERT_EQ(panel->series.size(), 2u);
  EXPECT_EQ(panel->series[0].name, "a");
  EXPECT_EQ(panel->series[0].start, month_index(2019, 11));
  EXPECT_EQ(panel->series[0].length(), 3u);
  EXPECT_TRUE(std::isnan(panel->series[0].values[0][1]));
  EXPECT_TRUE(std::isnan(panel->series[0].values[1][0]));
  EXPECT_DOUBLE_EQ(panel->series[0].values[0][2], 7.0);
  EXPECT_EQ(panel->series[1].length(), 1u);
  EXPECT_EQ(panel->last_month, month_index(2020, 1));

  auto decimal = parse_monthly_panel("s,date,v\nx,2013.41666666667,1\nx,2013.5,2\n", "d.csv", {"s", {"date"}, {"v"}, {}, false});
  ASSERT_TRUE(decimal) << decimal.status().to_string();
  EXPECT_EQ(decimal->series[0].start, month_index(2013, 6));
  EXPECT_EQ(decimal->last_month, month_index(2013, 7));

  const MonthlyPanel cut = truncate_panel(*panel, month_index(2019, 12));
  ASSERT_EQ(cut.series.size(), 1u);
  EXPECT_EQ(cut.series[0].length(), 2u);
}

// Covariates: named ones are read after the metrics; `auto` adds every other
// numeric column that differs between series (not text, not a column that
// is the same for every series in a month, like a decimal date).

// A series that stops early or has few values is named by its coverage:
// count of values and last month with one, per metric (-1 when none).
TEST(Panel, SeriesCoverageCountsValuesAndLastObservedMonth) {
  const std::string csv =
      "region,year,month,price,count\n"
      "long,2019,1,1,1\nlong,2019,2,2,NA\nlong,2019,3,3,NA\n"
      "stale,2019,1,4,NA\n";
  auto panel = parse_monthly_panel(csv, "p.csv", {"region", {"year", "month"}, {"price", "count"}, {}, false});
  ASSERT_TRUE(panel) << panel.status().to_string();
  const auto coverage = series_coverage(*panel);
  ASSERT_EQ(coverage.size(), 4u);
  EXPECT_EQ(panel->series[coverage[0].series].name, "long");
  EXPECT_EQ(coverage[0].metric, 0u);
  EXPECT_EQ(coverage[0].observed, 3);
  EXPECT_EQ(coverage[0].last_observed, month_index(2019, 3));
  EXPECT_EQ(coverage[1].observed, 1);
  EXPECT_EQ(coverage[1].last_observed, month_index(2019, 1));
  EXPECT_EQ(panel->series[coverage[2].series].name, "stale");
  EXPECT_EQ(coverage[2].observed, 1);
  EXPECT_EQ(coverage[2].last_observed, month_index(2019, 1));
  EXPECT_EQ(coverage[3].observed, 0);
  EXPECT_EQ(coverage[3].last_observed, -1);
}
TEST(Panel, ReadsNamedAndAutomaticCovariates) {
  const std::string csv =
      "city,year,month,median,listings,agent,date,inventory\n"
      "a,2020,1,10,100,ann,2020,4.5\n"
      "a,2020,2,11,NA,bob,2020.0833,4.0\n"
      "b,2020,1,20,300,cy,2020,6\n"
      "b,2020,2,21,310,dee,2020.0833,\n";
  auto named = parse_monthly_panel(csv, "c.csv", {"city", {"year", "month"}, {"median"}, {"inventory"}, false});
  ASSERT_TRUE(named) << named.status().to_string();
  EXPECT_EQ(named->metrics, std::vector<std::string>{"median"});
  EXPECT_EQ(named->covariates, std::vector<std::string>{"inventory"});
  ASSERT_EQ(named->series[0].values.size(), 2u);
  EXPECT_DOUBLE_EQ(named->series[0].values[1][1], 4.0);
  EXPECT_TRUE(std::isnan(named->series[1].values[1][1]));

  auto automatic = parse_monthly_panel(csv, "c.csv", {"city", {"year", "month"}, {"median"}, {}, true});
  ASSERT_TRUE(automatic) << automatic.status().to_string();
  EXPECT_EQ(automatic->covariates, (std::vector<std::string>{"listings", "inventory"}));
  ASSERT_EQ(automatic->series[1].values.size(), 3u);
  EXPECT_DOUBLE_EQ(automatic->series[1].values[1][1], 310.0);
  EXPECT_TRUE(std::isnan(automatic->series[0].values[1][1]));
  EXPECT_DOUBLE_EQ(automatic->series[0].values[2][0], 4.5);
  const MonthlyPanel cut = truncate_panel(*automatic, month_index(2020, 1));
  EXPECT_EQ(cut.covariates, automatic->covariates);
  EXPECT_EQ(cut.series[0].values.size(), 3u);

  auto unknown = parse_monthly_panel(csv, "c.csv", {"city", {"year", "month"}, {"median"}, {"supply"}, false});
  EXPECT_EQ(unknown.status().code(), StatusCode::kInvalidArgument);
  auto text = parse_monthly_panel(csv, "c.csv", {"city", {"year", "month"}, {"median"}, {"agent"}, false});
  EXPECT_EQ(text.status().code(), StatusCode::kInvalidArgument);
}

TEST(Panel, RejectsBadInput) {
  auto missing = parse_monthly_panel("city,year,month,median\nx,2020,1,5\n", "m.csv", kSpec);
  EXPECT_EQ(missing.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(missing.status().message().find("sales"), std::string::npos);

  auto bad_value = parse_monthly_panel("city,year,month,median,sales\nx,2020,1,abc,5\n", "v.csv", kSpec);
  EXPECT_EQ(bad_value.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad_value.status().message().find("line 2"), std::string::npos);

  auto bad_month = parse_monthly_panel("city,year,month,median,sales\nx,2020,13,1,5\n", "b.csv", kSpec);
  EXPECT_EQ(bad_month.status().code(), StatusCode::kInvalidArgument);

  auto bad_date = parse_monthly_panel("s,date,v\nx,yesterday,1\n", "d.csv", {"s", {"date"}, {"v"}, {}, false});
  EXPECT_EQ(bad_date.status().code(), StatusCode::kInvalidArgument);

  auto empty = parse_monthly_panel("city,year,month,median,sales\n", "e.csv", kSpec);
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);

  auto duplicate = parse_monthly_panel("city,year,month,median,sales\nx,2020,1,1,1\nx,2020,1,2,2\n", "u.csv", kSpec);
  EXPECT_EQ(duplicate.status().code(), StatusCode::kInvalidArgument);

  EXPECT_EQ(read_monthly_panel("/nonexistent/panel.csv", kSpec).status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(parse_year_month("2013-13"));
  EXPECT_EQ(*parse_year_month("2013-06"), month_index(2013, 6));

  EXPECT_EQ(forecast_panel(MonthlyPanel{}, ForecastOptions{}).status().code(), StatusCode::kInvalidArgument);
  auto ok = parse_monthly_panel("city,year,month,median,sales\nx,2020,1,1,1\n", "o.csv", kSpec);
  ASSERT_TRUE(ok);
  ForecastOptions far;
  far.horizon = 40;
  EXPECT_EQ(forecast_panel(*ok, far).status().code(), StatusCode::kInvalidArgument);
}

// A panel of log-ETS series with different noise levels, gaps and lengths.
std::vector<std::pair<std::string, std::vector<double>>> generated_panel(int series, int months) {
  std::vector<std::pair<std::string, std::vector<double>>> out;
  for (int s = 0; s < series; ++s) {
    const EtsParams p{0.2 + 0.02 * (s % 5), 0.01, 0.1, 0.9};
    auto z = simulate_ets(p, 0.02 + 0.01 * (s % 4), months, 100 + static_cast<unsigned>(s));
    std::vector<double> y;
    for (double v : z) y.push_back(std::exp(v));
    if (s % 3 == 0) y[static_cast<std::size_t>(months / 2)] = kNaN;
    if (s % 4 == 1) y.erase(y.begin(), y.begin() + 30);  // starts later
    out.emplace_back(numbered("s", s), y);
  }
  return out;
}

TEST(Forecast, HandlesGapsAndShortSeries) {
  auto series = generated_panel(6, 60);
  series.emplace_back("tiny", std::vector<double>{kNaN, 5, 6});
  series.emplace_back("empty_metric", std::vector<double>(40, kNaN));
  auto panel = parse_monthly_panel(panel_csv(series, 2010), "g.csv", kSpec);
  ASSERT_TRUE(panel) << panel.status().to_string();
  ForecastOptions options;
  options.gbm_rounds = 20;
  auto points = forecast_panel(*panel, options);
  ASSERT_TRUE(points) << points.status().to_string();
  std::size_t tiny = 0;
  for (const auto& p : *points) {
    EXPECT_TRUE(std::isfinite(p.point));
    EXPECT_LE(p.lower80, p.point);
    EXPECT_GE(p.upper80, p.point);
    EXPECT_LE(p.lower95, p.lower80);
    EXPECT_EQ(p.month, panel->last_month + p.h);
    if (panel->series[p.series].name == "tiny" && p.metric == 0) {
      ++tiny;
      EXPECT_NEAR(p.point, 6.0, 1.5);
    }
    EXPECT_NE(panel->series[p.series].name == "empty_metric" && p.metric == 0, true);
  }
  EXPECT_EQ(tiny, 3u);
}

// The reference methods: a plain global model (own lags, rolling
// statistics, calendar) learns a seasonal pattern shared by a panel of pure
// seasonal series of different levels, and the reference mean is the mean of
// it and ETS on log values.
TEST(Forecast, PlainGlobalModelLearnsAPureSeasonalPanel) {
  std::vector<std::pair<std::string, std::vector<double>>> series;
  for (int s = 0; s < 12; ++s) {
    std::vector<double> y;
    for (int t = 0; t < 72; ++t) y.push_back((100.0 + 25 * s) * std::exp(0.2 * std::sin(2 * M_PI * t / 12.0)));
    series.emplace_back(numbered("c", 10 + s), y);  // two digits: the panel's name order is this order
  }
  auto panel = parse_monthly_panel(panel_csv(series, 2010), "seasonal.csv", kSpec);
  ASSERT_TRUE(panel) << panel.status().to_string();
  ForecastOptions options;
  options.gbm_rounds = 200;
  auto without = forecast_all_methods(*panel, options);
  ASSERT_TRUE(without) << without.status().to_string();
  EXPECT_TRUE(without->by_method[static_cast<int>(Method::kPlainGbm)].empty());
  EXPECT_TRUE(without->by_method[static_cast<int>(Method::kEtsPlainMean)].empty());
  options.references = true;
  auto all = forecast_all_methods(*panel, options);
  ASSERT_TRUE(all) << all.status().to_string();
  const auto& plain = all->by_method[static_cast<int>(Method::kPlainGbm)];
  const auto& ets = all->by_method[static_cast<int>(Method::kEts)];
  const auto& mean = all->by_method[static_cast<int>(Method::kEtsPlainMean)];
  ASSERT_EQ(plain.size(), 12u * 2 * 3);
  ASSERT_EQ(mean.size(), plain.size());
  for (std::size_t k = 0; k < plain.size(); ++k) {
    const auto& p = plain[k];
    if (p.metric != 0) continue;
    const double actual = series[p.series].second[static_cast<std::size_t>(72 + p.h - 1 - 12)];
    EXPECT_NEAR(p.point / actual, 1.0, 0.01) << series[p.series].first << " h=" << p.h;
    EXPECT_LE(p.lower80, p.point);
    EXPECT_GE(p.upper80, p.point);
    EXPECT_NEAR(mean[k].point, std::sqrt(ets[k].point * p.point), 1e-6 * p.point);  // mean of logs
  }
}

TEST(Forecast, IntervalsCoverHeldOutGeneratedData) {
  auto series = generated_panel(16, 96);
  auto panel = parse_monthly_panel(panel_csv(series, 2010), "g.csv", kSpec);
  ASSERT_TRUE(panel) << panel.status().to_string();
  BacktestOptions options;
  options.first_origin = panel->last_month - 11;
  options.last_origin = panel->last_month;  // later origins have no actuals and are skipped
  options.forecast.gbm_rounds = 40;
  options.forecast.inner_origins = 12;
  auto report = backtest_panel(*panel, options);
  ASSERT_TRUE(report) << report.status().to_string();
  EXPECT_EQ(report->origins, 9);
  const auto& combined = report->scores[static_cast<int>(Method::kCombined)][0];
  const auto& naive = report->scores[static_cast<int>(Method::kSeasonalNaive)][0];
  for (int h = 0; h < 3; ++h) {
    EXPECT_GT(combined[static_cast<std::size_t>(h)].count, 100u);
    EXPECT_GT(combined[static_cast<std::size_t>(h)].coverage80, 0.68) << "h=" << h + 1;
    EXPECT_LT(combined[static_cast<std::size_t>(h)].coverage80, 0.92) << "h=" << h + 1;
    EXPECT_GT(combined[static_cast<std::size_t>(h)].coverage95, combined[static_cast<std::size_t>(h)].coverage80);
    // On ETS-generated data the combination beats seasonal naive.
    EXPECT_LT(combined[static_cast<std::size_t>(h)].mase, naive[static_cast<std::size_t>(h)].mase);
  }
  BacktestOptions none = options;
  none.first_origin = panel->last_month;
  EXPECT_EQ(backtest_panel(*panel, none).status().code(), StatusCode::kInvalidArgument);
}

// Six origins ending at h = 3 before the panel's last month, with a small
// global model: enough to compare methods on a generated panel in a test.
BacktestOptions small_backtest(const MonthlyPanel& panel) {
  BacktestOptions options;
  options.first_origin = panel.last_month - 8;
  options.last_origin = panel.last_month - 3;
  options.forecast.gbm_rounds = 60;
  options.forecast.inner_origins = 12;
  return options;
}

// A covariate that leads the metric by three months (the metric is the
// covariate's value three months earlier, plus noise): the global model reads
// it and forecasts far better than from the metric's own history.
TEST(Forecast, ALeadingCovariateInformsTheGlobalModel) {
  std::mt19937 rng(3);
  std::normal_distribution<double> step(0, 0.05), noise(0, 0.01);
  std::ostringstream csv;
  csv << "city,year,month,median,lead\n";
  for (int s = 0; s < 12; ++s) {
    std::vector<double> x(84);
    double level = 5 + 0.1 * s;
    for (auto& v : x) v = level += step(rng);
    for (int t = 0; t < 84; ++t) {
      const int month = month_index(2010, 1) + t;
      const double y = t >= 3 ? x[static_cast<std::size_t>(t - 3)] + noise(rng) : level;
      csv << numbered("c", s) << "," << year_of(month) << "," << month_of(month) << "," << std::exp(y) << ","
          << std::exp(x[static_cast<std::size_t>(t)]) << "\n";
    }
  }
  auto mase_h3 = [&](bool with_covariate) {
    const PanelSpec spec{"city", {"year", "month"}, {"median"}, {}, with_covariate};
    auto panel = parse_monthly_panel(csv.str(), "lead.csv", spec);
    EXPECT_TRUE(panel) << panel.status().to_string();
    EXPECT_EQ(panel->covariates.size(), with_covariate ? 1u : 0u);
    auto report = backtest_panel(*panel, small_backtest(*panel));
    EXPECT_TRUE(report) << report.status().to_string();
    // Only the metric is forecast.
    EXPECT_EQ(report->metrics.size(), 1u);
    return report->scores[static_cast<int>(Method::kGlobalGbm)][0][2].mase;
  };
  const double without = mase_h3(false), with = mase_h3(true);
  EXPECT_LT(with, 0.8 * without) << "with " << with << ", without " << without;
}

// The issue scores "cities without gaps": with complete_all_columns a gap in
// any column (here a covariate) drops the series, while per-metric scoring
// keeps it; keep_points returns every scored forecast with its actual and
// MASE scale, consistent with the summary scores.
TEST(Backtest, ScoresOnlySeriesCompleteInEveryColumnAndKeepsPoints) {
  std::ostringstream csv;
  csv << "city,year,month,median,listings\n";
  for (int s = 0; s < 4; ++s) {
    for (int t = 0; t < 48; ++t) {
      const int month = month_index(2010, 1) + t;
      const double y = (100.0 + 10 * s) * (1 + 0.1 * std::sin(2 * M_PI * t / 12.0)) * (1 + 0.002 * t);
      csv << numbered("c", s) << "," << year_of(month) << "," << month_of(month) << "," << y << ",";
      // c1's covariate has a gap after the completeness month, c2's before it.
      if ((s == 1 && t == 40) || (s == 2 && t == 10)) {
        csv << "NA\n";
      } else {
        csv << 50 + s + (t % 7) << "\n";
      }
    }
  }
  const PanelSpec spec{"city", {"year", "month"}, {"median"}, {"listings"}, false};
  auto panel = parse_monthly_panel(csv.str(), "gaps.csv", spec);
  ASSERT_TRUE(panel) << panel.status().to_string();
  BacktestOptions options;
  options.first_origin = panel->last_month - 5;
  options.last_origin = panel->last_month - 3;
  options.complete_from = month_index(2012, 1);
  options.forecast.gbm_rounds = 20;
  options.forecast.inner_origins = 6;
  auto per_metric = backtest_panel(*panel, options);
  ASSERT_TRUE(per_metric) << per_metric.status().to_string();
  EXPECT_EQ(per_metric->series_scored, 4u);
  EXPECT_TRUE(per_metric->points.empty());
  options.complete_all_columns = true;
  options.keep_points = true;
  auto all_columns = backtest_panel(*panel, options);
  ASSERT_TRUE(all_columns) << all_columns.status().to_string();
  EXPECT_EQ(all_columns->series_scored, 3u);
  EXPECT_EQ(all_columns->origins, 3);
  double mase = 0;
  std::size_t n = 0;
  for (const BacktestPoint& p : all_columns->points) {
    EXPECT_NE(panel->series[p.series].name, "c1");
    const auto& y = panel->series[p.series].values[0];
    EXPECT_DOUBLE_EQ(p.actual, y[static_cast<std::size_t>(p.origin + p.h - panel->series[p.series].start)]);
    EXPECT_GT(p.scale, 0);
    if (p.method == Method::kCombined && p.h == 3) {
      mase += std::abs(p.actual - p.point) / p.scale;
      ++n;
    }
  }
  EXPECT_EQ(n, 3u * 3);  // 3 series x 3 origins
  const auto& combined = all_columns->scores[static_cast<int>(Method::kCombined)][0][2];
  EXPECT_EQ(combined.count, n);
  EXPECT_NEAR(mase / static_cast<double>(n), combined.mase, 1e-12);
}

// Monthly noise much larger than a stable seasonal pattern and a slow trend
// (as in a city's median price): the global model, which reads a seasonal
// index from several years and seasonally adjusted recent means, forecasts
// far better than seasonal naive, which carries last year's noise forward.
TEST(Forecast, GlobalModelSeesThroughNoiseOnASeasonalPanel) {
  std::mt19937 rng(11);
  std::normal_distribution<double> noise(0, 0.06), step(0, 0.004);
  std::vector<std::pair<std::string, std::vector<double>>> series;
  for (int s = 0; s < 16; ++s) {
    std::vector<double> y;
    double level = std::log(100.0 + 20 * s);
    for (int t = 0; t < 120; ++t) {
      level += 0.002 + step(rng);
      y.push_back(std::exp(level + 0.08 * std::sin(2 * M_PI * t / 12.0) + noise(rng)));
    }
    series.emplace_back(numbered("c", 10 + s), y);
  }
  auto panel = parse_monthly_panel(panel_csv(series, 2005), "noisy.csv", kSpec);
  ASSERT_TRUE(panel) << panel.status().to_string();
  auto report = backtest_panel(*panel, small_backtest(*panel));
  ASSERT_TRUE(report) << report.status().to_string();
  const double global = report->scores[static_cast<int>(Method::kGlobalGbm)][0][2].mase;
  const double naive = report->scores[static_cast<int>(Method::kSeasonalNaive)][0][2].mase;
  const double combined = report->scores[static_cast<int>(Method::kCombined)][0][2].mase;
  EXPECT_LT(global, 0.8 * naive) << "global " << global << ", seasonal naive " << naive;
  EXPECT_LT(combined, 0.8 * naive) << "combined " << combined << ", seasonal naive " << naive;
}

}  // namespace
}  // namespace reai::analytics
