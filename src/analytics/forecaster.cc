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
  const int H = options.horizon;
  const int T = panel.last_month;
  const int inner_count = std::max(kMinInnerOrigins, options.inner_origins);
  const int inner_first = T - inner_count;
  const std::size_t S = panel.series.size();
  const std::size_t M = panel.metrics.size();

  // work[m][s]
  std::vector<std::vector<SeriesWork>> work(M, std::vector<SeriesWork>(S));
  for (std::size_t m = 0; m < M; ++m) {
    const bool positive = metric_positive(panel, m);
    for (std::size_t s = 0; s < S; ++s) {
      SeriesWork& w = work[m][s];
      const auto& y = panel.series[s].values[m];
      w.start = panel.series[s].start;
      w.transform = transform_for(y, positive, &w.present);
      w.z.resize(y.size());
      for (std::size_t i = 0; i < y.size(); ++i) w.z[i] = std::isnan(y[i]) ? kNaN : w.transform.to(y[i]);
      w.mase_scale = seasonal_scale(w.z);
    }
  }
  // ETS forecasts are features of the global model for every horizon it
  // trains on, and a combination member for 1..H (cut back after training).
  const int trained_horizon = std::max(H, options.gbm_train_horizon);
  if (options.progress) options.progress("fitting ETS on " + std::to_string(S * M) + " series");
  parallel_for(S * M, options.nthread, [&](std::size_t k) {
    SeriesWork& w = work[k / S][k % S];
    if (!w.present) return;
    const auto ets = static_cast<std::size_t>(Method::kEts);
    const auto naive = static_cast<std::size_t>(Method::kSeasonalNaive);
    const auto theta = static_cast<std::size_t>(Method::kTheta);
    naive_forecasts(w.z, H, w.inner[naive], w.final[naive]);
    ets_forecasts(w.z, w.start, inner_first, trained_horizon, w.inner[ets], w.final[ets]);
    theta_forecasts(w.z, w.start, inner_first, H, w.inner[theta], w.final[theta]);
  });

  if (options.progress) options.progress("training the global gradient-boosted model");
  // Covariate columns, transformed like the metrics, as features only.
  const std::size_t C = panel.series.front().values.size();
  std::vector<std::vector<std::vector<double>>> covariate_z(C > M ? C - M : 0, std::vector<std::vector<double>>(S));
  for (std::size_t c = M; c < C; ++c) {
    const bool positive = metric_positive(panel, c);
    for (std::size_t s = 0; s < S; ++s) {
      const auto& y = panel.series[s].values[c];
      bool present = false;
      const Transform t = transform_for(y, positive, &present);
      auto& z = covariate_z[c - M][s];
      z.resize(y.size());
      for (std::size_t i = 0; i < y.size(); ++i) z[i] = std::isnan(y[i]) ? kNaN : t.to(y[i]);
    }
  }
  GlobalModelInput input;
  input.horizon = H;
  input.inner_first = inner_first;
  input.last_month = T;
  input.rounds = options.gbm_rounds;
  input.nthread = options.nthread;
  input.seed = options.seed;
  input.folds = options.gbm_folds;
  input.train_horizon = trained_horizon;
  input.market_others = true;
  for (std::size_t m = 0; m < M; ++m) {
    std::vector<GlobalModelSeries> series;
    const auto ets = static_cast<std::size_t>(Method::kEts);
    for (std::size_t s = 0; s < S; ++s) {
      GlobalModelSeries g{&work[m][s].z, work[m][s].start, &work[m][s].inner[ets], &work[m][s].final[ets], {}};
      // Every other column of the same series informs this one (sales and
      // listings move before prices do).
      for (std::size_t other = 0; other < M; ++other) {
        if (other != m) g.others.push_back(&work[other][s].z);
      }
      for (const auto& z : covariate_z) g.others.push_back(&z[s]);
      series.push_back(std::move(g));
    }
    input.metrics.push_back(std::move(series));
  }
  auto gbm = run_global_model(input);
  if (!gbm) return gbm.status();
  for (auto& by_series : work) {
    for (SeriesWork& w : by_series) {
      const auto ets = static_cast<std::size_t>(Method::kEts);
      if (w.inner[ets].size() > static_cast<std::size_t>(H)) w.inner[ets].resize(static_cast<std::size_t>(H));
      if (w.final[ets].size() > static_cast<std::size_t>(H)) w.final[ets].resize(static_cast<std::size_t>(H));
    }
  }
  for (std::size_t m = 0; m < M; ++m) {
    for (std::size_t s = 0; s < S; ++s) {
      const auto g = static_cast<std::size_t>(Method::kGlobalGbm);
      work[m][s].inner[g] = std::move(gbm->inner[m][s]);
      work[m][s].final[g] = std::move(gbm->final[m][s]);
    }
  }
  // The reference global model: the same rows without stacked ETS, other
  // columns or market trend; two cross-fitted folds for its intervals (the
  // settings its backtest figures in docs/RESULTS.md were measured with).
  const auto plain = static_cast<std::size_t>(Method::kPlainGbm);
  const auto mean = static_cast<std::size_t>(Method::kEtsPlainMean);
  if (options.references) {
    if (options.progress) options.progress("training the plain reference global model");
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
    auto reference = run_global_model(input);
    if (!reference) return reference.status();
    for (std::size_t m = 0; m < M; ++m) {
      for (std::size_t s = 0; s < S; ++s) {
        work[m][s].inner[plain] = std::move(reference->inner[m][s]);
        work[m][s].final[plain] = std::move(reference->final[m][s]);
      }
    }
  }
  auto computed = [&](std::size_t method) { return options.references || (method != plain && method != mean); };
  // The combination's members. Theta alone beats ETS on the Texas median
  // price (MASE h = 3 0.884 against 0.935) and brings the combination down a
  // little on both metrics (docs/RESULTS.md, session 6).
  const std::vector<std::size_t> members{static_cast<std::size_t>(Method::kEts),
                                         static_cast<std::size_t>(Method::kGlobalGbm),
                                         static_cast<std::size_t>(Method::kTheta)};
  constexpr int kGrid = 10;
  // Candidate weights: every point of the simplex on a 1/kGrid lattice.
  std::vector<std::vector<double>> grid;
  {
    std::vector<int> parts(members.size(), 0);
    // Every composition of kGrid into members.size() non-negative parts.
    auto add = [&](auto&& self, std::size_t k, int left) -> void {
      if (k + 1 == members.size()) {
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
  }

  PanelForecasts out;
  const auto naive = static_cast<std::size_t>(Method::kSeasonalNaive);
  const auto combined = static_cast<std::size_t>(Method::kCombined);
  for (std::size_t m = 0; m < M; ++m) {
    for (int h = 1; h <= H; ++h) {
      const auto hi = static_cast<std::size_t>(h - 1);
      // Replace each method's missing forecasts by seasonal naive, so every
      // method answers for every series.
      for (std::size_t s = 0; s < S; ++s) {
        SeriesWork& w = work[m][s];
        if (!w.present) continue;
        for (std::size_t method = 1; method < combined; ++method) {
          if (!computed(method) || method == mean) continue;
          if (w.inner[method].size() != static_cast<std::size_t>(H)) w.inner[method] = w.inner[naive];
          if (w.final[method].size() != static_cast<std::size_t>(H)) w.final[method] = w.final[naive];
          for (std::size_t i = 0; i < w.z.size(); ++i) {
            if (std::isnan(w.inner[method][hi][i])) w.inner[method][hi][i] = w.inner[naive][hi][i];
          }
          if (std::isnan(w.final[method][hi])) w.final[method][hi] = w.final[naive][hi];
        }
        if (computed(mean)) {
          const auto ets = static_cast<std::size_t>(Method::kEts);
          if (w.inner[mean].size() != static_cast<std::size_t>(H)) {
            w.inner[mean].assign(static_cast<std::size_t>(H), std::vector<double>(w.z.size(), kNaN));
            w.final[mean].assign(static_cast<std::size_t>(H), kNaN);
          }
          for (std::size_t i = 0; i < w.z.size(); ++i) {
            w.inner[mean][hi][i] = 0.5 * (w.inner[ets][hi][i] + w.inner[plain][hi][i]);
          }
          w.final[mean][hi] = 0.5 * (w.final[ets][hi] + w.final[plain][hi]);
        }
      }
      // Inner-origin absolute errors per method and series, scaled.
      auto scaled_errors = [&](std::size_t method, std::size_t s, const std::vector<double>* weights) {
        const SeriesWork& w = work[m][s];
        std::vector<double> errors;
        const double scale = std::isnan(w.mase_scale) ? 1.0 : w.mase_scale;
        for (int o = inner_first; o + h <= T; ++o) {
          const int idx = o + h - w.start;
          if (idx < 0 || idx >= static_cast<int>(w.z.size())) continue;
          const auto i = static_cast<std::size_t>(idx);
          if (std::isnan(w.z[i])) continue;
          double f = 0;
          if (weights == nullptr) {
            f = w.inner[method][hi][i];
          } else {
            for (std::size_t k = 0; k < members.size(); ++k) f += (*weights)[k] * w.inner[members[k]][hi][i];
          }
          if (!std::isnan(f)) errors.push_back((w.z[i] - f) / scale);
        }
        return errors;
      };
      auto mean_abs = [](const std::vector<double>& e) {
        double sum = 0;
        for (double v : e) sum += std::abs(v);
        return e.empty() ? kNaN : sum / static_cast<double>(e.size());
      };
      // Weights of the members (seasonal naive is the fallback, not a
      // member: it is far behind on every series tried), on a grid over the
      // simplex: the weights minimising the pooled inner error, moved
      // towards each series' own best weights by its number of errors.
      std::vector<std::vector<double>> series_loss(S, std::vector<double>(grid.size(), 0.0));
      std::vector<double> series_n(S, 0.0);
      std::vector<double> pooled_loss(grid.size(), 0.0);
      for (std::size_t s = 0; s < S; ++s) {
        if (!work[m][s].present) continue;
        std::vector<std::vector<double>> e;
        for (std::size_t member : members) e.push_back(scaled_errors(member, s, nullptr));
        bool aligned = true;
        for (const auto& v : e) aligned = aligned && v.size() == e.front().size();
        if (!aligned) continue;
        series_n[s] = static_cast<double>(e.front().size());
        for (std::size_t j = 0; j < e.front().size(); ++j) {
          for (std::size_t g = 0; g < grid.size(); ++g) {
            double blend = 0;
            for (std::size_t k = 0; k < members.size(); ++k) blend += grid[g][k] * e[k][j];
            series_loss[s][g] += std::abs(blend);
          }
        }
        for (std::size_t g = 0; g < grid.size(); ++g) pooled_loss[g] += series_loss[s][g];
      }
      auto best_weights = [&](const std::vector<double>& loss) {
        return grid[static_cast<std::size_t>(std::min_element(loss.begin(), loss.end()) - loss.begin())];
      };
      const std::vector<double> pooled_weights = best_weights(pooled_loss);
      std::vector<std::vector<double>> weights(S, std::vector<double>(members.size(), 0.0));
      for (std::size_t s = 0; s < S; ++s) {
        const std::vector<double> own = series_n[s] > 0 ? best_weights(series_loss[s]) : pooled_weights;
        for (std::size_t k = 0; k < members.size(); ++k) {
          weights[s][k] = (series_n[s] * own[k] + kWeightShrink * pooled_weights[k]) / (series_n[s] + kWeightShrink);
        }
      }
      // Intervals: quantiles of standardised inner errors pooled over
      // series, times each series' shrunk error level.
      for (std::size_t method = 0; method <= combined; ++method) {
        if (!computed(method)) continue;
        std::vector<std::vector<double>> errors(S);
        std::vector<double> level(S, kNaN);
        double pooled_level = 0;
        int pooled_n = 0;
        for (std::size_t s = 0; s < S; ++s) {
          if (!work[m][s].present) continue;
          errors[s] = scaled_errors(method, s, method == combined ? &weights[s] : nullptr);
          const double mae = mean_abs(errors[s]);
          if (!std::isnan(mae)) {
            pooled_level += mae;
            ++pooled_n;
          }
        }
        pooled_level = pooled_n > 0 ? pooled_level / pooled_n : 1.0;
        std::vector<double> standardised;
        for (std::size_t s = 0; s < S; ++s) {
          if (!work[m][s].present) continue;
          const double n = static_cast<double>(errors[s].size());
          const double own = mean_abs(errors[s]);
          level[s] = std::isnan(own) ? pooled_level : (n * own + kShrinkOrigins * pooled_level) / (n + kShrinkOrigins);
          if (level[s] <= 0) level[s] = pooled_level > 0 ? pooled_level : 1.0;
          for (double e : errors[s]) standardised.push_back(std::abs(e) / level[s]);
        }
        // Without enough inner errors fall back to a normal approximation.
        double q80 = quantile(standardised, 0.8), q95 = quantile(standardised, 0.95);
        if (standardised.size() < 20) {
          q80 = kZ80 * 1.2533;  // MAE of a normal is 0.798 sd
          q95 = 1.96 * 1.2533;
        }
        for (std::size_t s = 0; s < S; ++s) {
          const SeriesWork& w = work[m][s];
          if (!w.present) continue;
          double f = 0;
          if (method == combined) {
            for (std::size_t k = 0; k < members.size(); ++k) f += weights[s][k] * w.final[members[k]][hi];
          } else {
            f = w.final[method][hi];
          }
          if (std::isnan(f)) continue;
          const double scale = (std::isnan(w.mase_scale) ? 1.0 : w.mase_scale) * level[s];
          ForecastPoint p;
          p.series = s;
          p.metric = m;
          p.month = T + h;
          p.h = h;
          p.point = w.transform.from(f);
          p.lower80 = w.transform.from(f - q80 * scale);
          p.upper80 = w.transform.from(f + q80 * scale);
          p.lower95 = w.transform.from(f - q95 * scale);
          p.upper95 = w.transform.from(f + q95 * scale);
          out.by_method[method].push_back(p);
        }
      }
    }
  }
  for (auto& points : out.by_method) {
    std::sort(points.begin(), points.end(), [](const ForecastPoint& a, const ForecastPoint& b) {
      if (a.series != b.series) return a.series < b.series;
      if (a.metric != b.metric) return a.metric < b.metric;
      return a.h < b.h;
    });
  }
  return out;
}

Result<std::vector<ForecastPoint>> forecast_panel(const MonthlyPanel& panel, const ForecastOptions& options) {
  auto all = forecast_all_methods(panel, options);
  if (!all) return all.status();
  return std::move(all->by_method[static_cast<std::size_t>(Method::kCombined)]);
}

}  // namespace reai::analytics
