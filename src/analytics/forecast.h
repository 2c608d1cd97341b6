// Market trend forecasting on monthly panels: many series (e.g. cities), each
// with several metric columns (e.g. median price, sales), gaps allowed.
//
// Four models and their combination:
//  - seasonal naive (same month last year), the fallback;
//  - theta (exponential smoothing plus half the linear trend);
//  - ETS state-space exponential smoothing (additive or multiplicative error,
//    damped trend, seasonality 12) with parameters by maximum likelihood
//    (NLopt's BOBYQA), by default on log values;
//  - a global gradient-boosted model (XGBoost) trained across all series on
//    lags, rolling statistics, calendar and cross-series features, and the
//    recent moves of the series' other columns (the other metrics and the
//    panel's covariates, e.g. dollar volume, listings, inventory).
// The combination weighs ETS, theta and the global model per series and horizon by their errors
// over rolling origins inside the training data, and its 80%/95% intervals
// are quantiles of those out-of-sample errors, so coverage is measured, not
// assumed.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/status.h"

namespace reai::analytics {

inline constexpr int kSeasonLength = 12;

// Months are counted as year * 12 + (month - 1).
constexpr int month_index(int year, int month) { return year * 12 + (month - 1); }
constexpr int year_of(int index) { return index / 12; }
constexpr int month_of(int index) { return index % 12 + 1; }
// "2013-06" -> month index; InvalidArgument otherwise.
Result<int> parse_year_month(const std::string& text);

// One series of a panel: values[column][t - start] for t in [start, end]; NaN
// marks a missing value. Columns are the panel's metrics, then its
// covariates. Every series of a panel ends at the panel's
// last_month (shorter series are padded with NaN).
struct PanelSeries {
  std::string name;
  int start = 0;
  std::vector<std::vector<double>> values;
  std::size_t length() const { return values.empty() ? 0 : values.front().size(); }
};

struct MonthlyPanel {
  std::vector<std::string> metrics;     // forecast columns
  std::vector<std::string> covariates;  // read for the global model's features only
  std::vector<PanelSeries> series;  // sorted by name
  int first_month = 0;
  int last_month = 0;
};

// How to read a panel from CSV. `time_columns` is either {year, month}
// (integers) or a single date column: "2013-06", "2013-06-30" or a decimal
// year + (month - 1) / 12 ("2013.41666").
// `covariates` are further numeric columns (e.g. listings, inventory) that
// are not forecast but inform the forecasts of the metrics (features of the
// global model). With `auto_covariates`, every other column that holds only
// numbers (or NA) and differs between series in some month is one too (so a
// text column or a decimal date column is not).
struct PanelSpec {
  std::string series_column;
  std::vector<std::string> time_columns;
  std::vector<std::string> metrics;
  std::vector<std::string> covariates;
  bool auto_covariates = false;
};

// Reads a monthly panel. Empty or "NA" metric values are missing. Fails with
// NotFound when the file cannot be read, InvalidArgument naming file, line
// and column for a missing column, an unparsable number or month, a
// duplicated (series, month) row, or no data rows. Thread-safe (no shared
// state).
Result<MonthlyPanel> read_monthly_panel(const std::string& path, const PanelSpec& spec);
// The same from CSV text held in memory (`name` appears in messages).
Result<MonthlyPanel> parse_monthly_panel(std::string csv_text, const std::string& name, const PanelSpec& spec);
// The panel as it was known at `last_month`: later months dropped, series
// that start after it removed.
MonthlyPanel truncate_panel(const MonthlyPanel& panel, int last_month);

// How much of one metric of one series a panel observed: what a user needs
// to know before trusting its forecast. The forecast origin is the panel's
// last_month for every series, so a series whose last value is older is
// forecast further ahead than its `h` says, and one with under a season of
// values has no seasonal pattern of its own (it leans on the pooled model).
struct SeriesCoverage {
  std::size_t series = 0;  // index into MonthlyPanel::series
  std::size_t metric = 0;  // index into MonthlyPanel::metrics
  int observed = 0;        // months with a value (not NaN)
  int last_observed = -1;  // month index of the last value; -1 when none
};
// One entry per (series, metric) pair, in series then metric order. Pure.
std::vector<SeriesCoverage> series_coverage(const MonthlyPanel& panel);

// ---- ETS ----
enum class EtsError { kAdditive, kMultiplicative };
enum class EtsSeason { kNone, kAdditive, kMultiplicative };
struct EtsSpec {
  EtsError error = EtsError::kAdditive;
  bool trend = true;
  bool damped = true;
  EtsSeason season = EtsSeason::kAdditive;
};
struct EtsParams {
  double alpha = 0.3;
  double beta = 0.05;
  double gamma = 0.1;
  double phi = 0.95;
};

// A fitted ETS model with its state at the last observation. Value type.
struct EtsModel {
  EtsSpec spec;
  EtsParams params;
  double sigma = 0;        // residual standard deviation (relative for multiplicative error)
  double level = 0;
  double slope = 0;
  std::vector<double> seasonal;  // by calendar position: seasonal[t % 12] for absolute month t
  int last_month = 0;            // absolute month index of the last observation
  std::size_t observations = 0;  // non-missing values used
  double log_likelihood_term = 0;  // the minimised criterion (n log SSE [+ 2 sum log|mu|])

  // Point forecasts for last_month + 1 .. last_month + horizon.
  std::vector<double> forecast(int horizon) const;
  // Forecast standard deviation at step h (exact for additive error; the
  // usual first-order approximation for multiplicative error).
  double forecast_sd(int h) const;
};

// Fits ETS to `y` (y[i] is month start_month + i; NaN = missing, skipped in
// the likelihood while the states run on) by maximum likelihood over the
// smoothing parameters (alpha, beta <= alpha, gamma <= 1 - alpha, phi in
// [0.8, 0.98]); initial states come from the first years' decomposition.
// Fails with InvalidArgument when fewer than 2 seasons of non-missing values
// remain (seasonal spec) or fewer than 4 (otherwise), or when a
// multiplicative spec meets a non-positive value.
Result<EtsModel> fit_ets(std::span<const double> y, int start_month, const EtsSpec& spec);
// Runs the ETS recursions with fixed parameters (no fitting) and returns the
// model at the end of `y`. When `out_forecasts` is given it receives, for
// h = 1..max_horizon, (*out_forecasts)[h-1][i] = the forecast of y[i] made h
// months before (from the states after y[i-h]); NaN where i < h. Same
// failure modes as fit_ets.
Result<EtsModel> run_ets(std::span<const double> y, int start_month, const EtsSpec& spec, const EtsParams& params,
                         int max_horizon = 0, std::vector<std::vector<double>>* out_forecasts = nullptr);

// Seasonal naive: the value of the same calendar month in the latest year
// with data; the last non-missing value when no such month exists; NaN when
// `y` holds no value at all.
std::vector<double> seasonal_naive(std::span<const double> y, int horizon);

// The theta method: simple exponential smoothing (smoothing weight by least
// squares) plus half the slope of the least-squares line, on values
// seasonally adjusted by classical additive decomposition (when two full
// cycles exist), for months start_month + y.size() .. + horizon - 1. On a
// straight line it forecasts the last value plus half the slope per month
// (the theta-0 and theta-2 lines averaged). NaN values are skipped; all NaN
// when `y` holds none.
std::vector<double> theta_forecast(std::span<const double> y, int start_month, int horizon);

// ---- panel forecasting ----
// kCombined is the product's forecast; kPlainGbm and kEtsPlainMean are the
// issue's reference methods, computed only on request (ForecastOptions::
// references): a global XGBoost on the series' own lags, rolling statistics
// and calendar alone, and the mean of it and ETS.
enum class Method { kSeasonalNaive, kEts, kGlobalGbm, kTheta, kPlainGbm, kEtsPlainMean, kCombined };
inline constexpr int kMethodCount = 7;
const char* method_name(Method method);

struct ForecastOptions {
  int horizon = 3;
  int inner_origins = 18;  // rolling origins inside the training data for weights and intervals
  int gbm_rounds = 120;
  int nthread = 2;
  int seed = 7;
  int gbm_folds = 3;        // cross-fitted global models over the inner origins
  // The global model trains on horizons 1..max(horizon, gbm_train_horizon):
  // the further ones are extra rows of how series move (docs/RESULTS.md).
  int gbm_train_horizon = 6;
  bool references = false;  // also the reference methods kPlainGbm and kEtsPlainMean
  std::function<void(const std::string&)> progress;  // may be empty
};

struct ForecastPoint {
  std::size_t series = 0;  // index into panel.series
  std::size_t metric = 0;  // index into panel.metrics
  int month = 0;           // absolute month index
  int h = 0;
  double point = 0, lower80 = 0, upper80 = 0, lower95 = 0, upper95 = 0;
};

// Forecasts of every method for every series, metric and h = 1..horizon from
// the panel's last month: forecasts[method] lists points in (series, metric,
// h) order; series with no value of a metric are left out, and so are the
// reference methods unless options.references. Fails with
// InvalidArgument on an empty panel or horizon outside [1, 24], Internal on
// an XGBoost failure. Uses up to options.nthread threads.
struct PanelForecasts {
  std::vector<ForecastPoint> by_method[kMethodCount];
};
Result<PanelForecasts> forecast_all_methods(const MonthlyPanel& panel, const ForecastOptions& options);
// The product's forecast: the combination.
Result<std::vector<ForecastPoint>> forecast_panel(const MonthlyPanel& panel, const ForecastOptions& options);

// ---- backtest ----
struct BacktestOptions {
  int first_origin = 0;  // month indices, inclusive
  int last_origin = 0;
  // Score only series whose metric has no gap from this month to the end of
  // the data (e.g. the cities complete after 2011); < 0 scores all.
  int complete_from = -1;
  // With complete_from: a series is scored only when every column the panel
  // holds (metrics and covariates) is gap-free from then on, as the issue
  // counts its "cities without gaps" (39 on the Texas panel to 2015);
  // otherwise each metric is judged on its own column.
  bool complete_all_columns = false;
  // Keep every scored forecast in BacktestReport::points (for per-series
  // analysis or scoring another subset of series outside).
  bool keep_points = false;
  ForecastOptions forecast;
};
struct HorizonScore {
  double mase = 0, mape = 0, smape = 0, coverage80 = 0, coverage95 = 0, width80 = 0;
  std::size_t count = 0;
};
// One scored forecast: the method's point and 80% interval against the
// actual, and the MASE scale of the series at the origin.
struct BacktestPoint {
  Method method = Method::kCombined;
  std::size_t series = 0;  // index into the backtested panel's series
  std::size_t metric = 0;
  int origin = 0;  // absolute month
  int h = 0;
  double actual = 0, point = 0, lower80 = 0, upper80 = 0, scale = 0;
};
struct BacktestReport {
  std::vector<std::string> metrics;
  std::vector<BacktestPoint> points;  // only with BacktestOptions::keep_points
  int horizon = 0;
  int origins = 0;
  std::size_t series_scored = 0;
  // scores[method][metric][h - 1]
  std::vector<std::vector<HorizonScore>> scores[kMethodCount];
};
// For every origin in [first_origin, last_origin] with all h-step actuals
// inside the data, forecasts from the panel truncated at that origin and
// scores against the actuals. MASE scales by the in-sample mean absolute
// seasonal (lag-12) difference up to the origin; MAPE and sMAPE are in
// percent. Fails with InvalidArgument when no origin has actuals.
Result<BacktestReport> backtest_panel(const MonthlyPanel& panel, const BacktestOptions& options);

}  // namespace reai::analytics
