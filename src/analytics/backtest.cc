// Rolling-origin backtest of every method on a panel.
#include <algorithm>
#include <cmath>

#include "analytics/forecast.h"

namespace reai::analytics {
namespace {

bool complete_from(const std::vector<double>& y, int start, int from) {
  for (std::size_t i = 0; i < y.size(); ++i) {
    if (start + static_cast<int>(i) >= from && std::isnan(y[i])) return false;
  }
  return start <= from;
}

double seasonal_mae(const std::vector<double>& y, std::size_t end) {
  double sum = 0;
  int n = 0;
  for (std::size_t i = kSeasonLength; i < end; ++i) {
    if (!std::isnan(y[i]) && !std::isnan(y[i - kSeasonLength])) {
      sum += std::abs(y[i] - y[i - kSeasonLength]);
      ++n;
    }
  }
  return n > 0 ? sum / n : std::nan("");
}

// scored[metric][series]: whether the series counts for the metric (with
// complete_from, only series without gaps from that month; with
// complete_all_columns, without gaps in any metric).
std::vector<std::vector<bool>> scored_series(const MonthlyPanel& panel, const BacktestOptions& options) {
  const std::size_t M = panel.metrics.size();
  std::vector<std::vector<bool>> scored(M, std::vector<bool>(panel.series.size(), true));
  if (options.complete_from < 0) return scored;
  for (std::size_t m = 0; m < M; ++m) {
    for (std::size_t s = 0; s < panel.series.size(); ++s) {
      const PanelSeries& series = panel.series[s];
      if (options.complete_all_columns) {
        for (const auto& column : series.values) {
          scored[m][s] = scored[m][s] && complete_from(column, series.start, options.complete_from);
        }
      } else {
        scored[m][s] = complete_from(series.values[m], series.start, options.complete_from);
      }
    }
  }
  return scored;
}

std::size_t count_scored(const std::vector<std::vector<bool>>& scored, std::size_t series_count) {
  std::size_t n = 0;
  for (std::size_t s = 0; s < series_count; ++s) {
    bool any = false;
    for (const auto& by_series : scored) any = any || by_series[s];
    n += any ? 1 : 0;
  }
  return n;
}

// Running error sums of one method, metric and horizon.
struct ErrorSums {
  double mase = 0, ape = 0, sape = 0, in80 = 0, in95 = 0, width80 = 0;
  std::size_t n = 0, n_ape = 0;

  void add(const ForecastPoint& p, double actual, double scale) {
    const double error = std::abs(actual - p.point);
    mase += error / scale;
    if (actual != 0) {
      ape += 100 * error / std::abs(actual);
      ++n_ape;
    }
    const double denom = std::abs(actual) + std::abs(p.point);
    sape += denom > 0 ? 200 * error / denom : 0;
    in80 += actual >= p.lower80 && actual <= p.upper80 ? 1 : 0;
    in95 += actual >= p.lower95 && actual <= p.upper95 ? 1 : 0;
    width80 += (p.upper80 - p.lower80) / std::abs(actual == 0 ? 1 : actual);
    ++n;
  }

  HorizonScore score() const {
    HorizonScore out;
    out.count = n;
    if (n == 0) return out;
    const double count = static_cast<double>(n);
    out.mase = mase / count;
    out.mape = n_ape > 0 ? ape / static_cast<double>(n_ape) : std::nan("");
    out.smape = sape / count;
    out.coverage80 = in80 / count;
    out.coverage95 = in95 / count;
    out.width80 = width80 / count;
    return out;
  }
};

// sums[method][metric][h - 1]
using BacktestSums = std::vector<std::vector<ErrorSums>>[kMethodCount];

// The index in `panel` of each series of `known` (truncate_panel keeps the
// series order, dropping those not started yet).
std::vector<std::size_t> original_indices(const MonthlyPanel& panel, const MonthlyPanel& known) {
  std::vector<std::size_t> original_index;
  for (std::size_t s = 0, k = 0; s < panel.series.size() && k < known.series.size(); ++s) {
    if (panel.series[s].name == known.series[k].name) {
      original_index.push_back(s);
      ++k;
    }
  }
  return original_index;
}

// Scores the forecasts made at `origin` against the panel's actuals.
void score_origin(const MonthlyPanel& panel, const MonthlyPanel& known, const PanelForecasts& forecasts, int origin,
                  const std::vector<std::vector<bool>>& scored, bool keep_points, BacktestSums& sums,
                  BacktestReport* report) {
  const std::vector<std::size_t> original_index = original_indices(panel, known);
  for (int method = 0; method < kMethodCount; ++method) {
    for (const ForecastPoint& p : forecasts.by_method[method]) {
      const std::size_t s_index = original_index[p.series];
      const PanelSeries& original = panel.series[s_index];
      if (!scored[p.metric][s_index]) continue;
      const auto& y = original.values[p.metric];
      const int idx = p.month - original.start;
      if (idx < 0 || idx >= static_cast<int>(y.size())) continue;
      const double actual = y[static_cast<std::size_t>(idx)];
      if (std::isnan(actual)) continue;
      const double scale = seasonal_mae(y, static_cast<std::size_t>(origin - original.start + 1));
      if (std::isnan(scale) || scale <= 0) continue;
      sums[method][p.metric][static_cast<std::size_t>(p.h - 1)].add(p, actual, scale);
      if (keep_points) {
        report->points.push_back({static_cast<Method>(method), s_index, p.metric, origin, p.h, actual, p.point,
                                  p.lower80, p.upper80, scale});
      }
    }
  }
}

}  // namespace

Result<BacktestReport> backtest_panel(const MonthlyPanel& panel, const BacktestOptions& options) {
  if (panel.series.empty()) return invalid_argument("empty panel");
  const int H = options.forecast.horizon;
  if (H < 1 || H > 24) return invalid_argument("horizon must be in 1..24");
  const int last = std::min(options.last_origin, panel.last_month - H);
  if (options.first_origin > last) {
    return invalid_argument("no origin in the range has " + std::to_string(H) +
                            " months of actuals inside the data (data ends " + std::to_string(year_of(panel.last_month)) +
                            "-" + std::to_string(month_of(panel.last_month)) + ")");
  }
  BacktestReport report;
  report.metrics = panel.metrics;
  report.horizon = H;
  const std::size_t M = panel.metrics.size();
  const std::vector<std::vector<bool>> scored = scored_series(panel, options);
  report.series_scored = count_scored(scored, panel.series.size());
  BacktestSums sums;
  for (auto& by_metric : sums) by_metric.assign(M, std::vector<ErrorSums>(static_cast<std::size_t>(H)));

  for (int origin = options.first_origin; origin <= last; ++origin) {
    if (options.forecast.progress) {
      options.forecast.progress("origin " + std::to_string(year_of(origin)) + "-" + std::to_string(month_of(origin)));
    }
    const MonthlyPanel known = truncate_panel(panel, origin);
    auto forecasts = forecast_all_methods(known, options.forecast);
    if (!forecasts) return forecasts.status();
    ++report.origins;
    score_origin(panel, known, *forecasts, origin, scored, options.keep_points, sums, &report);
  }
  for (int method = 0; method < kMethodCount; ++method) {
    report.scores[method].assign(M, std::vector<HorizonScore>(static_cast<std::size_t>(H)));
    for (std::size_t m = 0; m < M; ++m) {
      for (int h = 0; h < H; ++h) {
        report.scores[method][m][static_cast<std::size_t>(h)] = sums[method][m][static_cast<std::size_t>(h)].score();
      }
    }
  }
  return report;
}

}  // namespace reai::analytics
