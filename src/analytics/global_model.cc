// The global model: rows are (series, metric, origin, horizon); the target is
// the transformed value h months after the origin minus the series' mean over
// the 12 months to the origin, so one model serves series of any magnitude.
#include "analytics/global_model.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <thread>

#include "analytics/forecast.h"
#include "models/models.h"

namespace reai::analytics {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int kLags = 13;
constexpr int kMinHistory = 12;
// Training origins: the last 8 years. Older ones cost training time and, on
// the Texas panel, did not improve the backtest (market regimes change).
constexpr int kTrainingMonths = 96;
constexpr std::size_t kOwnFeatures = 3 + kLags + 2 + 4 + 2 + 2 + 1;
constexpr std::size_t kFeaturesPerOther = 2;
// The product model's seasonal indices average this many years: a city's
// monthly median is noisy, and three years' deviations carried much of that
// noise into the index (the plain reference keeps three years).
constexpr int kSeasonYears = 6;
constexpr int kReferenceSeasonYears = 3;
// Seasonally adjusted recent level features (product model only).
constexpr std::size_t kAdjustedFeatures = 4;

double at(const std::vector<double>& z, int i) {
  return i >= 0 && i < static_cast<int>(z.size()) ? z[static_cast<std::size_t>(i)] : kNaN;
}

double mean_range(const std::vector<double>& z, int from, int to, int* count = nullptr) {
  double sum = 0;
  int n = 0;
  for (int i = from; i <= to; ++i) {
    const double v = at(z, i);
    if (!std::isnan(v)) {
      sum += v;
      ++n;
    }
  }
  if (count != nullptr) *count = n;
  return n > 0 ? sum / n : kNaN;
}

float f(double v) { return std::isnan(v) ? std::numeric_limits<float>::quiet_NaN() : static_cast<float>(v); }

// Cross-series context per metric and absolute month: mean year-over-year
// change of the 3-month mean across series (the market-wide trend).
// `other` < 0 means the series' own values, else its others[other] column.
std::vector<double> market_trend(const std::vector<GlobalModelSeries>& series, int first, int last, int other = -1) {
  std::vector<double> sum(static_cast<std::size_t>(last - first + 1), 0.0), n(sum.size(), 0.0);
  for (const auto& s : series) {
    const auto& z = other < 0 ? *s.z : *s.others[static_cast<std::size_t>(other)];
    for (int i = 14; i < static_cast<int>(z.size()); ++i) {
      const double now = mean_range(z, i - 2, i), before = mean_range(z, i - 14, i - 12);
      if (std::isnan(now) || std::isnan(before)) continue;
      const int t = s.start + i - first;
      if (t < 0 || t >= static_cast<int>(sum.size())) continue;
      sum[static_cast<std::size_t>(t)] += now - before;
      n[static_cast<std::size_t>(t)] += 1;
    }
  }
  for (std::size_t t = 0; t < sum.size(); ++t) sum[t] = n[t] > 0 ? sum[t] / n[t] : kNaN;
  return sum;
}

// Average deviation of the target's calendar month from its centred yearly
// mean over the last `years` years fully observed before the origin.
double seasonal_index(const std::vector<double>& z, int origin, int target, int years) {
  double sum = 0;
  int n = 0;
  for (int j = target - kSeasonLength; j >= target - (years + 1) * kSeasonLength && n < years; j -= kSeasonLength) {
    if (j + 5 > origin) continue;
    const double v = at(z, j);
    int count = 0;
    const double centre = mean_range(z, j - 6, j + 5, &count);
    if (std::isnan(v) || count < 9) continue;
    sum += v - centre;
    ++n;
  }
  return n > 0 ? sum / n : kNaN;
}

// The recent level with each month's seasonal index taken out, averaged
// over 1, 3 and 6 months, and its slope over the year: a denoised level the
// trees would otherwise have to assemble from lags and indices. The same for
// every horizon of an origin, so computed once per origin.
struct AdjustedLevel {
  double level[3] = {kNaN, kNaN, kNaN};
  double slope = kNaN;
};
AdjustedLevel adjusted_level(const std::vector<double>& z, int i) {
  std::array<double, kSeasonLength> adjusted;  // adjusted[d]: month i - d
  for (int d = 0; d < kSeasonLength; ++d) {
    const int j = i - d;
    adjusted[static_cast<std::size_t>(d)] = at(z, j) - seasonal_index(z, i, j + kSeasonLength, kSeasonYears);
  }
  auto mean_of = [&](int from, int to) {  // d from..to, NaN skipped
    double sum = 0;
    int n = 0;
    for (int d = from; d <= to; ++d) {
      const double v = adjusted[static_cast<std::size_t>(d)];
      if (std::isnan(v)) continue;
      sum += v;
      ++n;
    }
    return n > 0 ? sum / n : kNaN;
  };
  AdjustedLevel out;
  out.level[0] = mean_of(0, 0);
  out.level[1] = mean_of(0, 2);
  out.level[2] = mean_of(0, 5);
  out.slope = (out.level[1] - mean_of(9, 11)) / 9.0;
  return out;
}

// Features of the row (series z, origin index i, horizon h); false when the
// origin has too little history.
// `other_trends` (may be null) are the market trends of the other columns at
// the origin.
bool features(const GlobalModelSeries& series, int i, int h, std::size_t metric, double trend,
              const AdjustedLevel& adjusted, bool plain, const std::vector<double>* other_trends, float* out,
              double* base_out) {
  const std::vector<double>& z = *series.z;
  const int start = series.start;
  int count = 0;
  const double base = mean_range(z, i - 11, i, &count);
  if (count < 6 || (std::isnan(at(z, i)) && std::isnan(at(z, i - 1)))) return false;
  std::size_t k = 0;
  out[k++] = static_cast<float>(h);
  out[k++] = static_cast<float>(month_of(start + i + h));
  out[k++] = static_cast<float>(metric);
  for (int lag = 0; lag < kLags; ++lag) out[k++] = f(at(z, i - lag) - base);
  out[k++] = f(at(z, i + h - 12) - base);
  out[k++] = f(at(z, i + h - 24) - base);
  const double mean3 = mean_range(z, i - 2, i);
  const double mean3_last_year = mean_range(z, i - 14, i - 12);
  const double base_last_year = mean_range(z, i - 23, i - 12);
  out[k++] = f(mean3 - base);
  out[k++] = f(mean3 - mean3_last_year);
  out[k++] = f(base - base_last_year);
  double sq = 0;
  int n = 0;
  for (int j = i - 11; j <= i; ++j) {
    const double d = at(z, j) - at(z, j - 1);
    if (!std::isnan(d)) {
      sq += d * d;
      ++n;
    }
  }
  out[k++] = f(n > 1 ? std::sqrt(sq / n) : kNaN);
  const int years = plain ? kReferenceSeasonYears : kSeasonYears;
  out[k++] = f(seasonal_index(z, i, i + h, years));
  out[k++] = f(seasonal_index(z, i, i, years));
  out[k++] = f(trend);
  out[k++] = f(static_cast<double>(std::min(i, 240)));
  double ets = kNaN;
  const auto hi = static_cast<std::size_t>(h - 1);
  if (plain) {
    // no stacked ETS forecast
  } else if (i + h < static_cast<int>(z.size())) {
    if (series.ets_inner != nullptr && hi < series.ets_inner->size()) {
      ets = (*series.ets_inner)[hi][static_cast<std::size_t>(i + h)];
    }
  } else if (i == static_cast<int>(z.size()) - 1 && series.ets_final != nullptr && hi < series.ets_final->size()) {
    ets = (*series.ets_final)[hi];
  }
  out[k++] = f(ets - base);
  if (plain) {
    *base_out = base;
    return true;
  }
  for (std::size_t a = 0; a < 3; ++a) out[k++] = f(adjusted.level[a] - base);
  out[k++] = f(adjusted.slope);
  // The other columns' recent moves: the 3-month mean against the 12-month
  // mean and against the same months a year before.
  for (const std::vector<double>* other : series.others) {
    const double o3 = mean_range(*other, i - 2, i);
    out[k++] = f(o3 - mean_range(*other, i - 11, i));
    out[k++] = f(o3 - mean_range(*other, i - 14, i - 12));
  }
  if (other_trends != nullptr) {
    for (double t : *other_trends) out[k++] = f(t);
  }
  *base_out = base;
  return true;
}

struct RowRef {
  std::size_t metric, series;
  int index, h;
  double base;
};

}  // namespace

Result<GlobalModelOutput> run_global_model(const GlobalModelInput& input) {
  GlobalModelOutput out;
  const std::size_t M = input.metrics.size();
  const int H = input.horizon;
  out.inner.resize(M);
  out.final.resize(M);
  int first = input.last_month;
  for (const auto& metric : input.metrics) {
    for (const auto& s : metric) first = std::min(first, s.start);
  }
  std::vector<std::vector<double>> trends;
  if (!input.plain) {
    for (const auto& metric : input.metrics) trends.push_back(market_trend(metric, first, input.last_month));
  }

  // Inner origins are forecast by earlier models (cross-fitting): the inner
  // window is cut into `folds` parts, each forecast by a model trained on
  // targets up to the part's first origin. A single model from the first
  // origin grew stale over 18 months and made the global model look worse
  // than it is, which skewed the combination weights towards ETS.
  const int folds = std::max(0, input.folds);
  std::vector<int> cuts;
  for (int k = 0; k < folds; ++k) cuts.push_back(input.inner_first + k * (input.last_month - input.inner_first) / folds);
  auto fold_of = [&](int origin) {
    int k = 0;
    while (k + 1 < folds && origin >= cuts[static_cast<std::size_t>(k + 1)]) ++k;
    return static_cast<std::size_t>(k);
  };
  std::size_t others = 0;
  if (!input.plain && !input.metrics.empty() && !input.metrics.front().empty()) {
    others = input.metrics.front().front().others.size();
  }
  const bool market_others = input.market_others && !input.plain;
  const std::size_t feature_count = kOwnFeatures + (input.plain ? 0 : kAdjustedFeatures) +
                                    kFeaturesPerOther * others + (market_others ? others : 0);
  // other_trends[m][k][t - first]: market trend of metric m's k-th other column.
  std::vector<std::vector<std::vector<double>>> other_trends(M);
  if (market_others) {
    for (std::size_t m = 0; m < M; ++m) {
      for (std::size_t k = 0; k < others; ++k) {
        other_trends[m].push_back(market_trend(input.metrics[m], first, input.last_month, static_cast<int>(k)));
      }
    }
  }
  std::vector<double> origin_trends(others);
  // (Direct per-horizon models have no use for further horizons.)
  const int trained_horizon = input.direct ? H : std::max(H, input.train_horizon);
  const auto F = static_cast<std::size_t>(folds);
  // One model per (fold or full, horizon group): slot (j, g) with j < F the
  // fold's, j = F the full model; g = h - 1 for direct per-horizon models,
  // else 0 (one model with the horizon as a feature).
  const std::size_t G = input.direct ? static_cast<std::size_t>(H) : 1;
  struct Slot {
    models::DenseMatrix train, predict;
    std::vector<float> y;
    std::vector<RowRef> rows;
  };
  std::vector<Slot> slots((F + 1) * G);
  for (auto& slot : slots) slot.train = slot.predict = models::DenseMatrix(0, feature_count);
  auto slot_at = [&](std::size_t j, int h) -> Slot& { return slots[j * G + (input.direct ? static_cast<std::size_t>(h - 1) : 0)]; };
  std::vector<float> row(feature_count);
  for (std::size_t m = 0; m < M; ++m) {
    const auto& metric = input.metrics[m];
    out.inner[m].resize(metric.size());
    out.final[m].resize(metric.size());
    for (std::size_t s = 0; s < metric.size(); ++s) {
      const auto& z = *metric[s].z;
      const int start = metric[s].start;
      const int n = static_cast<int>(z.size());
      for (int i = kMinHistory - 1; i < n; ++i) {
        const int origin = start + i;
        if (origin < input.last_month - kTrainingMonths) continue;
        const double trend = input.plain ? kNaN : trends[m][static_cast<std::size_t>(origin - first)];
        const AdjustedLevel adjusted = input.plain ? AdjustedLevel{} : adjusted_level(z, i);
        if (market_others) {
          for (std::size_t k = 0; k < others; ++k) {
            origin_trends[k] = other_trends[m][k][static_cast<std::size_t>(origin - first)];
          }
        }
        for (int h = 1; h <= trained_horizon; ++h) {
          double base = 0;
          if (!features(metric[s], i, h, m, trend, adjusted, input.plain, market_others ? &origin_trends : nullptr,
                        row.data(), &base)) {
            continue;
          }
          const double target = at(z, i + h);
          if (i + h < n && !std::isnan(target)) {
            for (std::size_t j = 0; j <= F; ++j) {
              if (j < F && origin + h > cuts[j]) continue;
              Slot& slot = slot_at(j, h);
              slot.train.append_row(row);
              slot.y.push_back(static_cast<float>(target - base));
            }
          }
          if (h > H) continue;  // a training horizon only
          if (F > 0 && origin >= input.inner_first && i + h < n) {
            Slot& slot = slot_at(fold_of(origin), h);
            slot.predict.append_row(row);
            slot.rows.push_back({m, s, i, h, base});
          }
          if (i == n - 1) {
            Slot& slot = slot_at(F, h);
            slot.predict.append_row(row);
            slot.rows.push_back({m, s, i, h, base});
          }
        }
      }
    }
  }
  models::TrainParams params;
  params.objective = "reg:squarederror";
  params.max_depth = 5;
  params.eta = input.eta;
  params.num_rounds = input.rounds;
  params.early_stopping_rounds = 0;
  params.subsample = 0.8;
  params.colsample_bytree = input.colsample;
  params.min_child_weight = 5;
  params.nthread = input.nthread;
  params.seed = input.seed;
  auto fill = [&](const models::Booster& booster, const models::DenseMatrix& x, const std::vector<RowRef>& rows,
                  bool inner) -> Status {
    if (x.rows == 0) return Status::ok();
    auto pred = booster.predict(x);
    if (!pred) return pred.status();
    for (std::size_t r = 0; r < rows.size(); ++r) {
      const RowRef& ref = rows[r];
      const double value = ref.base + (*pred)[r];
      const auto hi = static_cast<std::size_t>(ref.h - 1);
      if (inner) {
        auto& slot = out.inner[ref.metric][ref.series];
        if (slot.empty()) {
          slot.assign(static_cast<std::size_t>(H),
                      std::vector<double>(input.metrics[ref.metric][ref.series].z->size(), kNaN));
        }
        slot[hi][static_cast<std::size_t>(ref.index + ref.h)] = value;
      } else {
        auto& slot = out.final[ref.metric][ref.series];
        if (slot.empty()) slot.assign(static_cast<std::size_t>(H), kNaN);
        slot[hi] = value;
      }
    }
    return Status::ok();
  };
  // The models train side by side, one XGBoost thread each: on a shared
  // machine XGBoost's OpenMP threads spin against each other (measured 15x
  // slower with nthread=2 under load), independent trainings do not.
  params.nthread = 1;
  params.extra.emplace_back("max_bin", std::to_string(input.max_bin));
  // The full models are the largest, so they start first.
  std::vector<std::optional<Result<models::Booster>>> boosters(slots.size());
  auto train_model = [&](std::size_t j) {
    if (slots[j].train.rows >= 50) boosters[j] = models::Booster::train(slots[j].train, slots[j].y, {}, nullptr, {}, params);
  };
  std::vector<std::size_t> order;
  for (std::size_t j = slots.size(); j-- > 0;) order.push_back(j);
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (std::size_t j = next++; j < order.size(); j = next++) train_model(order[j]);
  };
  if (input.nthread > 1 && order.size() > 1) {
    std::jthread side(worker);
    worker();
  } else {
    worker();
  }
  for (std::size_t j = 0; j < slots.size(); ++j) {
    if (!boosters[j]) continue;
    if (!*boosters[j]) return boosters[j]->status();
    REAI_RETURN_IF_ERROR(fill(boosters[j]->value(), slots[j].predict, slots[j].rows, j / G < F));
  }
  return out;
}

}  // namespace reai::analytics
