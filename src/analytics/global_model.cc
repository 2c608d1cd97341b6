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

// The first month of any series.
int first_month(const GlobalModelInput& input) {
  int first = input.last_month;
  for (const auto& metric : input.metrics) {
    for (const auto& s : metric) first = std::min(first, s.start);
  }
  return first;
}

// Inner origins are forecast by earlier models (cross-fitting): the inner
// window is cut into `folds` parts, each forecast by a model trained on
// targets up to the part's first origin. A single model from the first
// origin grew stale over 18 months and made the global model look worse
// than it is, which skewed the combination weights towards ETS.
struct Folds {
  int count = 0;
  std::vector<int> cuts;  // first origin of each part
  // The part that forecasts from `origin`.
  std::size_t of(int origin) const {
    int k = 0;
    while (k + 1 < count && origin >= cuts[static_cast<std::size_t>(k + 1)]) ++k;
    return static_cast<std::size_t>(k);
  }
};

Folds inner_folds(const GlobalModelInput& input) {
  Folds folds;
  folds.count = std::max(0, input.folds);
  for (int k = 0; k < folds.count; ++k) {
    folds.cuts.push_back(input.inner_first + k * (input.last_month - input.inner_first) / folds.count);
  }
  return folds;
}

// Which features a row has.
struct FeatureLayout {
  std::size_t others = 0;     // other columns per series
  bool market_others = false;  // their market trends too
  std::size_t count = 0;
};

FeatureLayout feature_layout(const GlobalModelInput& input) {
  FeatureLayout layout;
  if (!input.plain && !input.metrics.empty() && !input.metrics.front().empty()) {
    layout.others = input.metrics.front().front().others.size();
  }
  layout.market_others = input.market_others && !input.plain;
  layout.count = kOwnFeatures + (input.plain ? 0 : kAdjustedFeatures) + kFeaturesPerOther * layout.others +
                 (layout.market_others ? layout.others : 0);
  return layout;
}

// Market trends from `first`: trends[m][t - first] of each metric (none for
// the plain model), other_trends[m][k][t - first] of metric m's k-th other
// column (only with market_others).
struct MarketTrends {
  std::vector<std::vector<double>> trends;
  std::vector<std::vector<std::vector<double>>> other_trends;
};

MarketTrends market_trends(const GlobalModelInput& input, const FeatureLayout& layout, int first) {
  MarketTrends t;
  if (!input.plain) {
    for (const auto& metric : input.metrics) t.trends.push_back(market_trend(metric, first, input.last_month));
  }
  t.other_trends.resize(input.metrics.size());
  if (layout.market_others) {
    for (std::size_t m = 0; m < input.metrics.size(); ++m) {
      for (std::size_t k = 0; k < layout.others; ++k) {
        t.other_trends[m].push_back(market_trend(input.metrics[m], first, input.last_month, static_cast<int>(k)));
      }
    }
  }
  return t;
}

// One model's training rows and the rows it forecasts.
struct Slot {
  models::DenseMatrix train, predict;
  std::vector<float> y;
  std::vector<RowRef> rows;
};

// One model per (fold or full, horizon group): slot (j, g) with j < F the
// fold's, j = F the full model; g = h - 1 for direct per-horizon models,
// else 0 (one model with the horizon as a feature).
struct SlotGrid {
  std::size_t folds = 0;   // F
  std::size_t groups = 1;  // G
  bool direct = false;
  std::vector<Slot> slots;
  Slot& at(std::size_t j, int h) { return slots[j * groups + (direct ? static_cast<std::size_t>(h - 1) : 0)]; }
  bool inner(std::size_t j) const { return j / groups < folds; }
};

SlotGrid empty_slots(const GlobalModelInput& input, const Folds& folds, std::size_t feature_count) {
  SlotGrid grid;
  grid.folds = static_cast<std::size_t>(folds.count);
  grid.groups = input.direct ? static_cast<std::size_t>(input.horizon) : 1;
  grid.direct = input.direct;
  grid.slots.resize((grid.folds + 1) * grid.groups);
  for (auto& slot : grid.slots) slot.train = slot.predict = models::DenseMatrix(0, feature_count);
  return grid;
}

// What every series' rows share.
struct RowContext {
  const GlobalModelInput& input;
  const Folds& folds;
  const FeatureLayout& layout;
  const MarketTrends& trends;
  int first = 0;
  // (Direct per-horizon models have no use for further horizons.)
  int trained_horizon = 0;
};

// The rows of series s of metric m from origin index i, for every horizon:
// training rows of every model whose targets it may see, and forecast rows
// of the inner fold's and the full model. `row` and `origin_trends` are
// scratch space.
void add_origin_rows(const RowContext& c, std::size_t m, std::size_t s, int i, std::vector<float>& row,
                     std::vector<double>& origin_trends, SlotGrid& grid) {
  const auto& metric = c.input.metrics[m];
  const auto& z = *metric[s].z;
  const int n = static_cast<int>(z.size());
  const int origin = metric[s].start + i;
  const bool plain = c.input.plain;
  const double trend = plain ? kNaN : c.trends.trends[m][static_cast<std::size_t>(origin - c.first)];
  const AdjustedLevel adjusted = plain ? AdjustedLevel{} : adjusted_level(z, i);
  if (c.layout.market_others) {
    for (std::size_t k = 0; k < c.layout.others; ++k) {
      origin_trends[k] = c.trends.other_trends[m][k][static_cast<std::size_t>(origin - c.first)];
    }
  }
  const std::size_t F = grid.folds;
  for (int h = 1; h <= c.trained_horizon; ++h) {
    double base = 0;
    if (!features(metric[s], i, h, m, trend, adjusted, plain, c.layout.market_others ? &origin_trends : nullptr,
                  row.data(), &base)) {
      continue;
    }
    const double target = at(z, i + h);
    if (i + h < n && !std::isnan(target)) {
      for (std::size_t j = 0; j <= F; ++j) {
        if (j < F && origin + h > c.folds.cuts[j]) continue;
        Slot& slot = grid.at(j, h);
        slot.train.append_row(row);
        slot.y.push_back(static_cast<float>(target - base));
      }
    }
    if (h > c.input.horizon) continue;  // a training horizon only
    if (F > 0 && origin >= c.input.inner_first && i + h < n) {
      Slot& slot = grid.at(c.folds.of(origin), h);
      slot.predict.append_row(row);
      slot.rows.push_back({m, s, i, h, base});
    }
    if (i == n - 1) {
      Slot& slot = grid.at(F, h);
      slot.predict.append_row(row);
      slot.rows.push_back({m, s, i, h, base});
    }
  }
}

// Every row of every series, from the origins of the training window on.
void add_all_rows(const RowContext& c, SlotGrid& grid) {
  std::vector<float> row(c.layout.count);
  std::vector<double> origin_trends(c.layout.others);
  for (std::size_t m = 0; m < c.input.metrics.size(); ++m) {
    const auto& metric = c.input.metrics[m];
    for (std::size_t s = 0; s < metric.size(); ++s) {
      const int n = static_cast<int>(metric[s].z->size());
      for (int i = kMinHistory - 1; i < n; ++i) {
        if (metric[s].start + i < c.input.last_month - kTrainingMonths) continue;
        add_origin_rows(c, m, s, i, row, origin_trends, grid);
      }
    }
  }
}

models::TrainParams train_params(const GlobalModelInput& input) {
  models::TrainParams params;
  params.objective = "reg:squarederror";
  params.max_depth = 5;
  params.eta = input.eta;
  params.num_rounds = input.rounds;
  params.early_stopping_rounds = 0;
  params.subsample = 0.8;
  params.colsample_bytree = input.colsample;
  params.min_child_weight = 5;
  // The models train side by side, one XGBoost thread each: on a shared
  // machine XGBoost's OpenMP threads spin against each other (measured 15x
  // slower with nthread=2 under load), independent trainings do not.
  params.nthread = 1;
  params.seed = input.seed;
  params.extra.emplace_back("max_bin", std::to_string(input.max_bin));
  return params;
}

using TrainedModel = std::optional<Result<models::Booster>>;

// A model per slot with at least 50 training rows (none otherwise), two at a
// time when nthread > 1. The full models are the largest, so they start
// first.
std::vector<TrainedModel> train_slots(const std::vector<Slot>& slots, const models::TrainParams& params,
                                      int nthread) {
  std::vector<TrainedModel> boosters(slots.size());
  auto train_model = [&](std::size_t j) {
    if (slots[j].train.rows < 50) return;
    boosters[j] = models::Booster::train(slots[j].train, slots[j].y, {}, nullptr, {}, params);
  };
  std::vector<std::size_t> order;
  for (std::size_t j = slots.size(); j-- > 0;) order.push_back(j);
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (std::size_t j = next++; j < order.size(); j = next++) train_model(order[j]);
  };
  if (nthread > 1 && order.size() > 1) {
    std::jthread side(worker);
    worker();
  } else {
    worker();
  }
  return boosters;
}

// The booster's forecasts of a slot's rows, into out.inner (inner) or
// out.final.
Status store_forecasts(const GlobalModelInput& input, const models::Booster& booster, const Slot& slot, bool inner,
                       GlobalModelOutput& out) {
  const models::DenseMatrix& x = slot.predict;
  const std::vector<RowRef>& rows = slot.rows;
  const auto H = static_cast<std::size_t>(input.horizon);
  if (x.rows == 0) return Status::ok();
  auto pred = booster.predict(x);
  if (!pred) return pred.status();
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const RowRef& ref = rows[r];
    const double value = ref.base + (*pred)[r];
    const auto hi = static_cast<std::size_t>(ref.h - 1);
    if (inner) {
      auto& forecasts = out.inner[ref.metric][ref.series];
      if (forecasts.empty()) {
        forecasts.assign(H, std::vector<double>(input.metrics[ref.metric][ref.series].z->size(), kNaN));
      }
      forecasts[hi][static_cast<std::size_t>(ref.index + ref.h)] = value;
    } else {
      auto& forecasts = out.final[ref.metric][ref.series];
      if (forecasts.empty()) forecasts.assign(H, kNaN);
      forecasts[hi] = value;
    }
  }
  return Status::ok();
}

// An output with an empty forecast list per series.
GlobalModelOutput empty_output(const GlobalModelInput& input) {
  GlobalModelOutput out;
  const std::size_t M = input.metrics.size();
  out.inner.resize(M);
  out.final.resize(M);
  for (std::size_t m = 0; m < M; ++m) {
    out.inner[m].resize(input.metrics[m].size());
    out.final[m].resize(input.metrics[m].size());
  }
  return out;
}

}  // namespace

Result<GlobalModelOutput> run_global_model(const GlobalModelInput& input) {
  const int first = first_month(input);
  const FeatureLayout layout = feature_layout(input);
  const MarketTrends trends = market_trends(input, layout, first);
  const Folds folds = inner_folds(input);
  SlotGrid grid = empty_slots(input, folds, layout.count);
  const int trained_horizon = input.direct ? input.horizon : std::max(input.horizon, input.train_horizon);
  add_all_rows(RowContext{input, folds, layout, trends, first, trained_horizon}, grid);
  const auto boosters = train_slots(grid.slots, train_params(input), input.nthread);
  GlobalModelOutput out = empty_output(input);
  for (std::size_t j = 0; j < grid.slots.size(); ++j) {
    if (!boosters[j]) continue;
    if (!*boosters[j]) return boosters[j]->status();
    REAI_RETURN_IF_ERROR(store_forecasts(input, boosters[j]->value(), grid.slots[j], grid.inner(j), out));
  }
  return out;
}

}  // namespace reai::analytics
