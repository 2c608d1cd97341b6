// Panel forecasting: seasonal naive, ETS per series, a global XGBoost model
// across series, their combination weighted by rolling-origin errors inside
// the training data, and intervals from those out-of-sample errors.
#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <limits>
#include <thread>

#include "analytics/forecast.h"
#include "analytics/global_model.h"

namespace reai::analytics {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int kMinInnerOrigins = 6;
// Pseudo-count pulling a series' own inner-backtest error towards the
// metric's pooled error: a dozen origins say little about one series.
constexpr double kShrinkOrigins = 12.0;
// Pseudo-count of the pooled best weight against a series' own best weight
// (24 against a series' ~16 inner errors at h = 3: measured on the Texas
// panel, fully pooled weights and fewer pseudo-counts both did worse).
constexpr double kWeightShrink = 24.0;
constexpr double kZ80 = 1.2815515655446004;

// Forecasts are made on log values for positive metrics (prices and counts
// move in proportions), on values scaled by the series' mean magnitude
// otherwise.
struct Transform {
  bool log = true;
  double scale = 1;
  double to(double y) const { return log ? std::log(y) : y / scale; }
  double from(double z) const { return log ? std::exp(z) : z * scale; }
};

// The transform of series `y`: logs when its column is positive, else values
// over the series' mean magnitude. `present` says whether y holds any value.
Transform transform_for(const std::vector<double>& y, bool positive, bool* present) {
  double magnitude = 0;
  int n = 0;
  for (double v : y) {
    if (!std::isnan(v)) {
      magnitude += std::abs(v);
      ++n;
    }
  }
  *present = n > 0;
  return Transform{positive, n > 0 && magnitude > 0 ? magnitude / n : 1.0};
}

bool metric_positive(const MonthlyPanel& panel, std::size_t m) {
  for (const auto& s : panel.series) {
    for (double v : s.values[m]) {
      if (!std::isnan(v) && v <= 0) return false;
    }
  }
  return true;
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return kNaN;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const auto hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

template <typename F>
void parallel_for(std::size_t n, int threads, F&& body) {
  const auto workers = static_cast<std::size_t>(std::max(1, std::min<int>(threads, static_cast<int>(n))));
  if (workers <= 1) {
    for (std::size_t i = 0; i < n; ++i) body(i);
    return;
  }
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> pool;
  for (std::size_t w = 0; w < workers; ++w) {
    pool.emplace_back([&] {
      for (std::size_t i = next++; i < n; i = next++) body(i);
    });
  }
  for (auto& t : pool) t.join();
}

// ETS on transformed values: forecasts of every series from every inner
// origin (parameters fitted on data up to the first inner origin, so these
// are genuine out-of-sample forecasts) and from the last month (refitted).
const EtsSpec kEtsSpec{EtsError::kAdditive, true, true, EtsSeason::kAdditive};

void ets_forecasts(const std::vector<double>& z, int start, int inner_first, int horizon,
                   std::vector<std::vector<double>>& inner, std::vector<double>& final) {
  inner.assign(static_cast<std::size_t>(horizon), std::vector<double>(z.size(), kNaN));
  final.assign(static_cast<std::size_t>(horizon), kNaN);
  const auto cut = static_cast<std::size_t>(std::clamp(inner_first - start + 1, 0, static_cast<int>(z.size())));
  const std::span<const double> all(z);
  EtsSpec spec = kEtsSpec;
  auto fitted = fit_ets(all.first(cut), start, spec);
  if (!fitted) {
    spec.season = EtsSeason::kNone;
    fitted = fit_ets(all.first(cut), start, spec);
  }
  if (fitted) {
    std::vector<std::vector<double>> f;
    if (run_ets(all, start, spec, fitted->params, horizon, &f)) inner = std::move(f);
  }
  spec = kEtsSpec;
  auto full = fit_ets(all, start, spec);
  if (!full) {
    spec.season = EtsSeason::kNone;
    full = fit_ets(all, start, spec);
  }
  if (full) final = full->forecast(horizon);
}

// Seasonal naive from every index: inner[h-1][i] forecasts z[i] from z[..i-h].
void naive_forecasts(const std::vector<double>& z, int horizon, std::vector<std::vector<double>>& inner,
                     std::vector<double>& final) {
  inner.assign(static_cast<std::size_t>(horizon), std::vector<double>(z.size(), kNaN));
  const std::span<const double> all(z);
  for (std::size_t o = 1; o <= z.size(); ++o) {
    const auto f = seasonal_naive(all.first(o), horizon);
    for (int h = 1; h <= horizon; ++h) {
      const std::size_t target = o - 1 + static_cast<std::size_t>(h);
      if (target < z.size()) inner[static_cast<std::size_t>(h - 1)][target] = f[static_cast<std::size_t>(h - 1)];
    }
  }
  final = seasonal_naive(all, horizon);
}

// Theta from every inner origin (refitted at each: one smoothing weight and
// a regression line are cheap) and from the last month.
void theta_forecasts(const std::vector<double>& z, int start, int inner_first, int horizon,
                     std::vector<std::vector<double>>& inner, std::vector<double>& final) {
  inner.assign(static_cast<std::size_t>(horizon), std::vector<double>(z.size(), kNaN));
  const std::span<const double> all(z);
  for (int i = std::max(0, inner_first - start); i + 1 < static_cast<int>(z.size()); ++i) {
    const auto f = theta_forecast(all.first(static_cast<std::size_t>(i + 1)), start, horizon);
    for (int h = 1; h <= horizon && i + h < static_cast<int>(z.size()); ++h) {
      inner[static_cast<std::size_t>(h - 1)][static_cast<std::size_t>(i + h)] = f[static_cast<std::size_t>(h - 1)];
    }
  }
  final = theta_forecast(all, start, horizon);
}

struct SeriesWork {
  Transform transform;
  std::vector<double> z;
  int start = 0;
  bool present = false;
  // [method][h-1][index]: forecast of z[index] made h months before.
  std::vector<std::vector<double>> inner[kMethodCount];
  std::vector<double> final[kMethodCount];  // [method][h-1]
  double mase_scale = kNaN;                 // mean |z_t - z_{t-12}|
};

double seasonal_scale(const std::vector<double>& z) {
  double sum = 0;
  int n = 0;
  for (std::size_t i = kSeasonLength; i < z.size(); ++i) {
    if (!std::isnan(z[i]) && !std::isnan(z[i - kSeasonLength])) {
      sum += std::abs(z[i] - z[i - kSeasonLength]);
      ++n;
    }
  }
  return n > 0 && sum > 0 ? sum / n : kNaN;
}

// work[m][s]: one metric of one series and every method's forecasts of it.
using PanelWork = std::vector<std::vector<SeriesWork>>;
// Candidate combination weights, one per member, each row summing to 1.
using WeightGrid = std::vector<std::vector<double>>;

constexpr auto kNaive = static_cast<std::size_t>(Method::kSeasonalNaive);
constexpr auto kEtsIndex = static_cast<std::size_t>(Method::kEts);
constexpr auto kGbmIndex = static_cast<std::size_t>(Method::kGlobalGbm);
constexpr auto kThetaIndex = static_cast<std::size_t>(Method::kTheta);
constexpr auto kPlainIndex = static_cast<std::size_t>(Method::kPlainGbm);
constexpr auto kMeanIndex = static_cast<std::size_t>(Method::kEtsPlainMean);
constexpr auto kCombinedIndex = static_cast<std::size_t>(Method::kCombined);

// The combination's members. Theta alone beats ETS on the Texas median
// price (MASE h = 3 0.884 against 0.935) and brings the combination down a
// little on both metrics (docs/RESULTS.md, session 6).
const std::vector<std::size_t> kMembers{kEtsIndex, kGbmIndex, kThetaIndex};

// The months and counts every step of forecast_all_methods shares.
struct PanelFrame {
  int horizon = 0;          // H
  int last_month = 0;       // T
  int inner_first = 0;      // first inner origin
  int trained_horizon = 0;  // horizons the global model trains on (>= H)
  std::size_t series = 0;   // S
  std::size_t metrics = 0;  // M
};

PanelFrame panel_frame(const MonthlyPanel& panel, const ForecastOptions& options) {
  PanelFrame f;
  f.horizon = options.horizon;
  f.last_month = panel.last_month;
  f.inner_first = f.last_month - std::max(kMinInnerOrigins, options.inner_origins);
  // ETS forecasts are features of the global model for every horizon it
  // trains on, and a combination member for 1..H (cut back after training).
  f.trained_horizon = std::max(f.horizon, options.gbm_train_horizon);
  f.series = panel.series.size();
  f.metrics = panel.metrics.size();
  return f;
}

// y through the transform, missing values kept missing.
std::vector<double> transformed_values(const std::vector<double>& y, const Transform& t) {
  std::vector<double> z(y.size());
  for (std::size_t i = 0; i < y.size(); ++i) z[i] = std::isnan(y[i]) ? kNaN : t.to(y[i]);
  return z;
}

// Every metric of every series transformed, with its MASE scale; no
// forecasts yet.
PanelWork transformed_metrics(const MonthlyPanel& panel, const PanelFrame& frame) {
  PanelWork work(frame.metrics, std::vector<SeriesWork>(frame.series));
  for (std::size_t m = 0; m < frame.metrics; ++m) {
    const bool positive = metric_positive(panel, m);
    for (std::size_t s = 0; s < frame.series; ++s) {
      SeriesWork& w = work[m][s];
      const auto& y = panel.series[s].values[m];
      w.start = panel.series[s].start;
      w.transform = transform_for(y, positive, &w.present);
      w.z = transformed_values(y, w.transform);
      w.mase_scale = seasonal_scale(w.z);
    }
  }
  return work;
}

// Seasonal naive, ETS and theta of every present series, in parallel.
void fit_local_methods(PanelWork& work, const PanelFrame& frame, int nthread) {
  const std::size_t S = frame.series;
  parallel_for(S * frame.metrics, nthread, [&](std::size_t k) {
    SeriesWork& w = work[k / S][k % S];
    if (!w.present) return;
    naive_forecasts(w.z, frame.horizon, w.inner[kNaive], w.final[kNaive]);
    ets_forecasts(w.z, w.start, frame.inner_first, frame.trained_horizon, w.inner[kEtsIndex], w.final[kEtsIndex]);
    theta_forecasts(w.z, w.start, frame.inner_first, frame.horizon, w.inner[kThetaIndex], w.final[kThetaIndex]);
  });
}

// Covariate columns (after the metrics), transformed like the metrics, as
// features only: [covariate][series].
std::vector<std::vector<std::vector<double>>> transformed_covariates(const MonthlyPanel& panel,
                                                                     const PanelFrame& frame) {
  const std::size_t S = frame.series;
  const std::size_t M = frame.metrics;
  const std::size_t C = panel.series.front().values.size();
  std::vector<std::vector<std::vector<double>>> covariate_z(C > M ? C - M : 0, std::vector<std::vector<double>>(S));
  for (std::size_t c = M; c < C; ++c) {
    const bool positive = metric_positive(panel, c);
    for (std::size_t s = 0; s < S; ++s) {
      const auto& y = panel.series[s].values[c];
      bool present = false;
      const Transform t = transform_for(y, positive, &present);
      covariate_z[c - M][s] = transformed_values(y, t);
    }
  }
  return covariate_z;
}

// The product's global model input. It points into work and covariate_z,
// which must outlive it.
GlobalModelInput global_model_input(const PanelWork& work,
                                    const std::vector<std::vector<std::vector<double>>>& covariate_z,
                                    const PanelFrame& frame, const ForecastOptions& options) {
  GlobalModelInput input;
  input.horizon = frame.horizon;
  input.inner_first = frame.inner_first;
  input.last_month = frame.last_month;
  input.rounds = options.gbm_rounds;
  input.nthread = options.nthread;
  input.seed = options.seed;
  input.folds = options.gbm_folds;
  input.train_horizon = frame.trained_horizon;
  input.market_others = true;
  for (std::size_t m = 0; m < frame.metrics; ++m) {
    std::vector<GlobalModelSeries> series;
    for (std::size_t s = 0; s < frame.series; ++s) {
      GlobalModelSeries g{&work[m][s].z, work[m][s].start, &work[m][s].inner[kEtsIndex], &work[m][s].final[kEtsIndex],
                          {}};
      // Every other column of the same series informs this one (sales and
      // listings move before prices do).
      for (std::size_t other = 0; other < frame.metrics; ++other) {
        if (other != m) g.others.push_back(&work[other][s].z);
      }
      for (const auto& z : covariate_z) g.others.push_back(&z[s]);
      series.push_back(std::move(g));
    }
    input.metrics.push_back(std::move(series));
  }
  return input;
}

// The reference global model: the same rows without stacked ETS, other
// columns or market trend; two cross-fitted folds for its intervals (the
// settings its backtest figures in docs/RESULTS.md were measured with).
GlobalModelInput reference_model_input(GlobalModelInput input) {
  input.plain = true;
  input.folds = 2;
  input.train_horizon = 0;
  input.direct = false;
  // The trees of session 5 (stronger than the product's cheaper ones on
  // this model): the reference is not handicapped.
  input.rounds = 200;
  input.eta = 0.05;
  input.max_bin = 64;
  input.colsample = 0.8;
  return input;
}

// ETS was fitted for the global model's trained horizons: keep 1..H.
void cut_ets_to_horizon(PanelWork& work, int horizon) {
  const auto H = static_cast<std::size_t>(horizon);
  for (auto& by_series : work) {
    for (SeriesWork& w : by_series) {
      if (w.inner[kEtsIndex].size() > H) w.inner[kEtsIndex].resize(H);
      if (w.final[kEtsIndex].size() > H) w.final[kEtsIndex].resize(H);
    }
  }
}

// Moves a global model's forecasts into work as `method`'s.
void store_model_forecasts(PanelWork& work, GlobalModelOutput& model, std::size_t method) {
  for (std::size_t m = 0; m < work.size(); ++m) {
    for (std::size_t s = 0; s < work[m].size(); ++s) {
      work[m][s].inner[method] = std::move(model.inner[m][s]);
      work[m][s].final[method] = std::move(model.final[m][s]);
    }
  }
}

// Whether `method` is forecast at all: the references only on request.
bool method_computed(std::size_t method, bool references) {
  return references || (method != kPlainIndex && method != kMeanIndex);
}

constexpr int kGrid = 10;

// Candidate weights: every point of the simplex on a 1/kGrid lattice, that
// is every composition of kGrid into `members` non-negative parts.
WeightGrid simplex_grid(std::size_t members) {
  WeightGrid grid;
  std::vector<int> parts(members, 0);
  auto add = [&](auto&& self, std::size_t k, int left) -> void {
    if (k + 1 == members) {
      parts[k] = left;
      std::vector<double> w;
      for (int p : parts) w.push_back(static_cast<double>(p) / kGrid);
      grid.push_back(std::move(w));
      return;
    }
    for (int p = 0; p <= left; ++p) {
      parts[k] = p;
      self(self, k + 1, left - p);
    }
  };
  add(add, 0, kGrid);
  return grid;
}

// Replaces each computed method's missing forecasts at horizon index hi by
// seasonal naive, so every method answers for every series.
void fill_missing_with_naive(SeriesWork& w, int horizon, std::size_t hi, bool references) {
  const auto H = static_cast<std::size_t>(horizon);
  for (std::size_t method = 1; method < kCombinedIndex; ++method) {
    if (!method_computed(method, references) || method == kMeanIndex) continue;
    if (w.inner[method].size() != H) w.inner[method] = w.inner[kNaive];
    if (w.final[method].size() != H) w.final[method] = w.final[kNaive];
    for (std::size_t i = 0; i < w.z.size(); ++i) {
      if (std::isnan(w.inner[method][hi][i])) w.inner[method][hi][i] = w.inner[kNaive][hi][i];
    }
    if (std::isnan(w.final[method][hi])) w.final[method][hi] = w.final[kNaive][hi];
  }
}

// The mean of ETS and the plain reference model at horizon index hi.
void fill_ets_plain_mean(SeriesWork& w, int horizon, std::size_t hi) {
  const auto H = static_cast<std::size_t>(horizon);
  if (w.inner[kMeanIndex].size() != H) {
    w.inner[kMeanIndex].assign(H, std::vector<double>(w.z.size(), kNaN));
    w.final[kMeanIndex].assign(H, kNaN);
  }
  for (std::size_t i = 0; i < w.z.size(); ++i) {
    w.inner[kMeanIndex][hi][i] = 0.5 * (w.inner[kEtsIndex][hi][i] + w.inner[kPlainIndex][hi][i]);
  }
  w.final[kMeanIndex][hi] = 0.5 * (w.final[kEtsIndex][hi] + w.final[kPlainIndex][hi]);
}

// One horizon h of one metric: where its inner errors are.
struct HorizonFrame {
  int h = 1;
  std::size_t hi = 0;  // h - 1
  int inner_first = 0;
  int last_month = 0;
};

// Inner-origin errors of one series at horizon h, scaled by its MASE scale:
// of `method`, or with `weights` of the members' blend.
std::vector<double> scaled_errors(const SeriesWork& w, std::size_t method, const std::vector<double>* weights,
                                  const HorizonFrame& at) {
  std::vector<double> errors;
  const double scale = std::isnan(w.mase_scale) ? 1.0 : w.mase_scale;
  for (int o = at.inner_first; o + at.h <= at.last_month; ++o) {
    const int idx = o + at.h - w.start;
    if (idx < 0 || idx >= static_cast<int>(w.z.size())) continue;
    const auto i = static_cast<std::size_t>(idx);
    if (std::isnan(w.z[i])) continue;
    double f = 0;
    if (weights == nullptr) {
      f = w.inner[method][at.hi][i];
    } else {
      for (std::size_t k = 0; k < kMembers.size(); ++k) f += (*weights)[k] * w.inner[kMembers[k]][at.hi][i];
    }
    if (!std::isnan(f)) errors.push_back((w.z[i] - f) / scale);
  }
  return errors;
}

double mean_abs(const std::vector<double>& e) {
  double sum = 0;
  for (double v : e) sum += std::abs(v);
  return e.empty() ? kNaN : sum / static_cast<double>(e.size());
}

// Inner losses of every candidate weight: per series, their sum over series,
// and each series' number of errors (0 when its members' errors differ).
struct GridLosses {
  std::vector<std::vector<double>> series_loss;  // [series][candidate]
  std::vector<double> series_n;
  std::vector<double> pooled_loss;  // [candidate]
};

GridLosses grid_losses(const std::vector<SeriesWork>& metric_work, const WeightGrid& grid, const HorizonFrame& at) {
  const std::size_t S = metric_work.size();
  GridLosses l{std::vector<std::vector<double>>(S, std::vector<double>(grid.size(), 0.0)), std::vector<double>(S, 0.0),
               std::vector<double>(grid.size(), 0.0)};
  for (std::size_t s = 0; s < S; ++s) {
    if (!metric_work[s].present) continue;
    std::vector<std::vector<double>> e;
    for (std::size_t member : kMembers) e.push_back(scaled_errors(metric_work[s], member, nullptr, at));
    bool aligned = true;
    for (const auto& v : e) aligned = aligned && v.size() == e.front().size();
    if (!aligned) continue;
    l.series_n[s] = static_cast<double>(e.front().size());
    for (std::size_t j = 0; j < e.front().size(); ++j) {
      for (std::size_t g = 0; g < grid.size(); ++g) {
        double blend = 0;
        for (std::size_t k = 0; k < kMembers.size(); ++k) blend += grid[g][k] * e[k][j];
        l.series_loss[s][g] += std::abs(blend);
      }
    }
    for (std::size_t g = 0; g < grid.size(); ++g) l.pooled_loss[g] += l.series_loss[s][g];
  }
  return l;
}

const std::vector<double>& best_weights(const WeightGrid& grid, const std::vector<double>& loss) {
  return grid[static_cast<std::size_t>(std::min_element(loss.begin(), loss.end()) - loss.begin())];
}

// Weights of the members (seasonal naive is the fallback, not a member: it
// is far behind on every series tried), on a grid over the simplex: the
// weights minimising the pooled inner error, moved towards each series' own
// best weights by its number of errors. [series][member]
std::vector<std::vector<double>> combination_weights(const std::vector<SeriesWork>& metric_work,
                                                     const WeightGrid& grid, const HorizonFrame& at) {
  const std::size_t S = metric_work.size();
  const GridLosses l = grid_losses(metric_work, grid, at);
  const std::vector<double> pooled_weights = best_weights(grid, l.pooled_loss);
  std::vector<std::vector<double>> weights(S, std::vector<double>(kMembers.size(), 0.0));
  for (std::size_t s = 0; s < S; ++s) {
    const std::vector<double> own = l.series_n[s] > 0 ? best_weights(grid, l.series_loss[s]) : pooled_weights;
    for (std::size_t k = 0; k < kMembers.size(); ++k) {
      weights[s][k] = (l.series_n[s] * own[k] + kWeightShrink * pooled_weights[k]) / (l.series_n[s] + kWeightShrink);
    }
  }
  return weights;
}

// A method's interval widths at one horizon: quantiles of standardised
// inner errors pooled over series, times each series' shrunk error level.
struct IntervalScales {
  std::vector<double> level;  // [series], NaN when absent
  double q80 = 0, q95 = 0;
};

IntervalScales interval_scales(const std::vector<SeriesWork>& metric_work, std::size_t method,
                               const std::vector<std::vector<double>>& weights, const HorizonFrame& at) {
  const std::size_t S = metric_work.size();
  std::vector<std::vector<double>> errors(S);
  IntervalScales out{std::vector<double>(S, kNaN), 0, 0};
  double pooled_level = 0;
  int pooled_n = 0;
  for (std::size_t s = 0; s < S; ++s) {
    if (!metric_work[s].present) continue;
    errors[s] = scaled_errors(metric_work[s], method, method == kCombinedIndex ? &weights[s] : nullptr, at);
    const double mae = mean_abs(errors[s]);
    if (!std::isnan(mae)) {
      pooled_level += mae;
      ++pooled_n;
    }
  }
  pooled_level = pooled_n > 0 ? pooled_level / pooled_n : 1.0;
  std::vector<double> standardised;
  for (std::size_t s = 0; s < S; ++s) {
    if (!metric_work[s].present) continue;
    const double n = static_cast<double>(errors[s].size());
    const double own = mean_abs(errors[s]);
    double& level = out.level[s];
    level = std::isnan(own) ? pooled_level : (n * own + kShrinkOrigins * pooled_level) / (n + kShrinkOrigins);
    if (level <= 0) level = pooled_level > 0 ? pooled_level : 1.0;
    for (double e : errors[s]) standardised.push_back(std::abs(e) / level);
  }
  out.q80 = quantile(standardised, 0.8);
  out.q95 = quantile(standardised, 0.95);
  // Without enough inner errors fall back to a normal approximation.
  if (standardised.size() < 20) {
    out.q80 = kZ80 * 1.2533;  // MAE of a normal is 0.798 sd
    out.q95 = 1.96 * 1.2533;
  }
  return out;
}

// A method's final forecasts of metric m at one horizon, with intervals,
// appended to `points` for every present series that has one.
void append_final_forecasts(const std::vector<SeriesWork>& metric_work, std::size_t m, std::size_t method,
                            const std::vector<std::vector<double>>& weights, const IntervalScales& scales,
                            const HorizonFrame& at, std::vector<ForecastPoint>& points) {
  for (std::size_t s = 0; s < metric_work.size(); ++s) {
    const SeriesWork& w = metric_work[s];
    if (!w.present) continue;
    double f = 0;
    if (method == kCombinedIndex) {
      for (std::size_t k = 0; k < kMembers.size(); ++k) f += weights[s][k] * w.final[kMembers[k]][at.hi];
    } else {
      f = w.final[method][at.hi];
    }
    if (std::isnan(f)) continue;
    const double scale = (std::isnan(w.mase_scale) ? 1.0 : w.mase_scale) * scales.level[s];
    ForecastPoint p;
    p.series = s;
    p.metric = m;
    p.month = at.last_month + at.h;
    p.h = at.h;
    p.point = w.transform.from(f);
    p.lower80 = w.transform.from(f - scales.q80 * scale);
    p.upper80 = w.transform.from(f + scales.q80 * scale);
    p.lower95 = w.transform.from(f - scales.q95 * scale);
    p.upper95 = w.transform.from(f + scales.q95 * scale);
    points.push_back(p);
  }
}

// Every computed method's forecasts of metric m at horizon h, into out.
void forecast_metric_horizon(std::vector<SeriesWork>& metric_work, std::size_t m, int h, const PanelFrame& frame,
                             const WeightGrid& grid, bool references, PanelForecasts& out) {
  const HorizonFrame at{h, static_cast<std::size_t>(h - 1), frame.inner_first, frame.last_month};
  for (SeriesWork& w : metric_work) {
    if (!w.present) continue;
    fill_missing_with_naive(w, frame.horizon, at.hi, references);
    if (method_computed(kMeanIndex, references)) fill_ets_plain_mean(w, frame.horizon, at.hi);
  }
  const auto weights = combination_weights(metric_work, grid, at);
  for (std::size_t method = 0; method <= kCombinedIndex; ++method) {
    if (!method_computed(method, references)) continue;
    const IntervalScales scales = interval_scales(metric_work, method, weights, at);
    append_final_forecasts(metric_work, m, method, weights, scales, at, out.by_method[method]);
  }
}

// Each method's points by series, metric, then horizon.
void sort_by_series_metric_horizon(PanelForecasts& out) {
  for (auto& points : out.by_method) {
    std::sort(points.begin(), points.end(), [](const ForecastPoint& a, const ForecastPoint& b) {
      if (a.series != b.series) return a.series < b.series;
      if (a.metric != b.metric) return a.metric < b.metric;
      return a.h < b.h;
    });
  }
}

}  // namespace

const char* method_name(Method method) {
  switch (method) {
    case Method::kSeasonalNaive:
      return "seasonal_naive";
    case Method::kEts:
      return "ets";
    case Method::kGlobalGbm:
      return "global_gbm";
    case Method::kTheta:
      return "theta";
    case Method::kPlainGbm:
      return "plain_gbm";
    case Method::kEtsPlainMean:
      return "ets_plain_mean";
    case Method::kCombined:
      return "combined";
  }
  return "?";
}

Result<PanelForecasts> forecast_all_methods(const MonthlyPanel& panel, const ForecastOptions& options) {
  if (panel.series.empty() || panel.metrics.empty()) return invalid_argument("empty panel");
  if (options.horizon < 1 || options.horizon > 24) return invalid_argument("horizon must be in 1..24");
  const PanelFrame frame = panel_frame(panel, options);
  PanelWork work = transformed_metrics(panel, frame);
  if (options.progress) options.progress("fitting ETS on " + std::to_string(frame.series * frame.metrics) + " series");
  fit_local_methods(work, frame, options.nthread);

  if (options.progress) options.progress("training the global gradient-boosted model");
  const auto covariate_z = transformed_covariates(panel, frame);
  const GlobalModelInput input = global_model_input(work, covariate_z, frame, options);
  auto gbm = run_global_model(input);
  if (!gbm) return gbm.status();
  cut_ets_to_horizon(work, frame.horizon);
  store_model_forecasts(work, *gbm, kGbmIndex);
  if (options.references) {
    if (options.progress) options.progress("training the plain reference global model");
    auto reference = run_global_model(reference_model_input(input));
    if (!reference) return reference.status();
    store_model_forecasts(work, *reference, kPlainIndex);
  }

  const WeightGrid grid = simplex_grid(kMembers.size());
  PanelForecasts out;
  for (std::size_t m = 0; m < frame.metrics; ++m) {
    for (int h = 1; h <= frame.horizon; ++h) {
      forecast_metric_horizon(work[m], m, h, frame, grid, options.references, out);
    }
  }
  sort_by_series_metric_horizon(out);
  return out;
}

Result<std::vector<ForecastPoint>> forecast_panel(const MonthlyPanel& panel, const ForecastOptions& options) {
  auto all = forecast_all_methods(panel, options);
  if (!all) return all.status();
  return std::move(all->by_method[static_cast<std::size_t>(Method::kCombined)]);
}

}  // namespace reai::analytics
