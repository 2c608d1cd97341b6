// Forecasting a whole panel: 46 series x 2 metrics x 3 horizons, the size of
// the Texas panel (EVALUATION.md "Market trends"). Reads the real panel when
// REAI_TXHOUSING names it, else generates one of the same shape.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <sstream>

#include "analytics/forecast.h"

namespace reai::analytics {
namespace {

MonthlyPanel generated_panel() {
  std::mt19937 rng(1);
  std::normal_distribution<double> noise(0.0, 0.04);
  std::ostringstream csv;
  csv << "city,year,month,median,sales\n";
  for (int s = 0; s < 46; ++s) {
    double level = 11.5 + 0.02 * s, sales_level = 4 + 0.05 * s;
    for (int t = 0; t < 168; ++t) {
      level += 0.003 + 0.3 * noise(rng);
      sales_level += 0.002 + 0.3 * noise(rng);
      const double season = 0.05 * std::sin(2 * M_PI * t / 12.0);
      csv << "c" << s << "," << 2000 + t / 12 << "," << t % 12 + 1 << "," << std::exp(level + season + noise(rng))
          << "," << std::round(std::exp(sales_level + 3 * season + noise(rng))) << "\n";
    }
  }
  return *parse_monthly_panel(csv.str(), "generated.csv", {"city", {"year", "month"}, {"median", "sales"}, {}, false});
}

MonthlyPanel benchmark_panel() {
  if (const char* path = std::getenv("REAI_TXHOUSING")) {
    auto panel = read_monthly_panel(path, {"city", {"year", "month"}, {"median", "sales"}, {}, true});
    if (panel) return *panel;
  }
  return generated_panel();
}

void BM_ForecastPanel(benchmark::State& state) {
  const MonthlyPanel panel = benchmark_panel();
  ForecastOptions options;
  options.horizon = 3;
  options.nthread = static_cast<int>(state.range(0));
  std::size_t points = 0;
  for (auto _ : state) {
    auto result = forecast_panel(panel, options);
    if (!result) {
      state.SkipWithError(result.status().message().c_str());
      return;
    }
    points = result->size();
    benchmark::DoNotOptimize(result);
  }
  state.counters["series"] = static_cast<double>(panel.series.size());
  state.counters["forecasts"] = static_cast<double>(points);
}
BENCHMARK(BM_ForecastPanel)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_FitEts(benchmark::State& state) {
  const MonthlyPanel panel = benchmark_panel();
  std::vector<double> z;
  for (double v : panel.series[0].values[0]) z.push_back(std::log(v));
  const EtsSpec spec{EtsError::kAdditive, true, true, EtsSeason::kAdditive};
  for (auto _ : state) benchmark::DoNotOptimize(fit_ets(z, panel.series[0].start, spec));
}
BENCHMARK(BM_FitEts)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace reai::analytics
