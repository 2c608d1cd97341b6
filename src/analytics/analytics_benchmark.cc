// Speed of the deal and agent forecasts on a generated history
// (docs/RESULTS.md "Deal closure and timeline").
#include <benchmark/benchmark.h>

#include "analytics/analytics.h"
#include "analytics/synthetic_deals.h"

namespace reai::analytics {
namespace {

using testing::kHistoryStart;
using testing::synthetic_history;

const CrmHistory& history() {
  static const CrmHistory h = synthetic_history(3000, 700, 11, 30);
  return h;
}

const DealModel& model() {
  static DealModel* m = [] {
    DealTrainOptions o;
    o.cutoff = kHistoryStart + 500 * 86400;
    o.step_days = 10;
    auto trained = DealModel::train(history(), o, nullptr);
    if (!trained) std::abort();
    return new DealModel(std::move(*trained));  // never destroyed (see models.h on Booster lifetime)
  }();
  return *m;
}

// All deals open at one as-of instant (~400 of 3,000), features included.
void BM_DealPredictAsOf(benchmark::State& state) {
  const UnixSeconds as_of = kHistoryStart + 600 * 86400;
  model();  // train outside the timed loop
  std::size_t open = 0;
  for (auto _ : state) {
    auto preds = model().predict(history(), as_of);
    open = preds.size();
    benchmark::DoNotOptimize(preds);
  }
  state.counters["open_deals"] = static_cast<double>(open);
}
BENCHMARK(BM_DealPredictAsOf)->Unit(benchmark::kMillisecond);

void BM_AgentForecast3Months(benchmark::State& state) {
  for (auto _ : state) {
    auto f = forecast_agent_closings(history(), kHistoryStart + 600 * 86400, {});
    benchmark::DoNotOptimize(f);
  }
}
BENCHMARK(BM_AgentForecast3Months)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace reai::analytics
