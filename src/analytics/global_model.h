// Internal: the global gradient-boosted model across all series of a panel.
#pragma once

#include <vector>

#include "core/status.h"

namespace reai::analytics {

struct GlobalModelSeries {
  const std::vector<double>* z = nullptr;  // transformed values, NaN = missing
  int start = 0;                           // absolute month of z[0]
  // ETS forecasts used as features (stacking), may be null:
  // ets_inner[h-1][i] forecasts z[i] from h months before; ets_final[h-1]
  // forecasts from the last month.
  const std::vector<std::vector<double>>* ets_inner = nullptr;
  const std::vector<double>* ets_final = nullptr;
  // The series' other columns (other metrics, covariates), transformed and
  // aligned with z (same start and length); the same count for every series.
  std::vector<const std::vector<double>*> others;
};

struct GlobalModelInput {
  std::vector<std::vector<GlobalModelSeries>> metrics;  // [metric][series], same series order
  int horizon = 3;
  int inner_first = 0;  // first inner origin (absolute month)
  int last_month = 0;
  // Trees: 120 rounds at eta 0.08, 32 bins, half the features per tree cost
  // half of 200 rounds at 0.05, 64 bins and 0.8 with the same backtest
  // accuracy, which pays for more cross-fitted folds (docs/RESULTS.md).
  int rounds = 120;
  double eta = 0.08;
  int max_bin = 32;
  double colsample = 0.5;
  int nthread = 2;
  int seed = 7;
  // Cross-fitted models for the inner forecasts: the inner window is cut into
  // `folds` consecutive parts, each forecast by a model trained on targets up
  // to its start. 0 = no inner forecasts (only `final`).
  int folds = 2;
  // The plain reference model: own lags, rolling statistics and calendar
  // only (ETS forecasts, other columns and the market trend are ignored).
  bool plain = false;
  // One model per horizon instead of one with the horizon as a feature
  // (worse on the Texas backtest, so not the product's choice).
  bool direct = false;
  // The model trains on horizons 1..max(horizon, train_horizon) and forecasts
  // 1..horizon: rows for the further horizons are more examples of how a
  // series moves over months (the horizon is a feature), and on the Texas
  // backtest they made the 3-month forecast of the median price better
  // (docs/RESULTS.md, "Market trends: further horizons ..."). The ETS
  // features then need ets_inner for those horizons too (missing ones are
  // NaN features).
  int train_horizon = 0;
  // The market-wide trend of every other column (the mean year-over-year
  // change of its 3-month mean across series) as features: listings and
  // inventory turn before prices do, and their average over all series is
  // far less noisy than one city's. Ignored by the plain model.
  bool market_others = false;
};

struct GlobalModelOutput {
  // inner[m][s][h-1][i]: forecast of z[i] made h months before, from a model
  // by a model trained only on targets up to the first origin of the inner
  // window's fold that holds the origin; empty when the series has no usable
  // history (or folds = 0). final[m][s][h-1]: forecast from last_month by a model
  // trained on all targets.
  std::vector<std::vector<std::vector<std::vector<double>>>> inner;
  std::vector<std::vector<std::vector<double>>> final;
};

// One XGBoost model (horizon, metric and calendar are features) trained
// folds + 1 times (on horizons up to train_horizon, forecasting up to
// horizon): once per fold of the inner window on targets up to the
// fold's first origin, and on all targets; on origins of the last 8 years. Fails with
// Internal on an XGBoost error; a panel too short to train on yields empty
// forecasts (callers fall back to seasonal naive).
Result<GlobalModelOutput> run_global_model(const GlobalModelInput& input);

}  // namespace reai::analytics
