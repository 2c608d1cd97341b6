// Single-row scoring cost: CompiledForest against XGBoost's own predict, on a
// model shaped like production (300 trees, depth 6, 60 features).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>

#include "models/models.h"
#include "models/synthetic_data.h"

namespace reai::models {
namespace {

constexpr std::size_t kCols = 60;

struct Fixture {
  testing::SyntheticData rows = testing::make_synthetic(4096, kCols, 99, 0.15);
  std::unique_ptr<Booster> booster;
  std::unique_ptr<CompiledForest> forest;

  Fixture() {
    auto data = testing::make_synthetic(10000, kCols, 98, 0.15);
    TrainParams p;
    p.max_depth = 6;
    p.eta = 0.05;
    p.num_rounds = 300;
    p.early_stopping_rounds = 0;
    p.min_child_weight = 0;  // grow full-depth trees like a large production model
    p.reg_lambda = 0.1;
    p.nthread = 1;  // OpenMP spinning on shared cores distorts XGBoost's timings
    auto b = Booster::train(data.x, data.binary, {}, nullptr, {}, p);
    if (!b) std::abort();
    booster = std::make_unique<Booster>(std::move(*b));
    auto f = CompiledForest::compile(*booster->save_json());
    if (!f) std::abort();
    forest = std::make_unique<CompiledForest>(std::move(*f));
  }
};

// Never destroyed: see Booster's lifetime note in models.h.
Fixture& fixture() {
  static Fixture* f = new Fixture;
  return *f;
}

void BM_CompiledForestPredict(benchmark::State& state) {
  Fixture& f = fixture();
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.forest->predict(f.rows.x.row(i)));
    i = (i + 1) & 4095;
  }
  state.counters["trees"] = static_cast<double>(f.forest->num_trees());
}
BENCHMARK(BM_CompiledForestPredict);

void BM_CompiledForestShap(benchmark::State& state) {
  Fixture& f = fixture();
  std::vector<double> phi(kCols + 1);
  std::size_t i = 0;
  for (auto _ : state) {
    f.forest->shap_values(f.rows.x.row(i), phi);
    benchmark::DoNotOptimize(phi.data());
    i = (i + 1) & 4095;
  }
}
BENCHMARK(BM_CompiledForestShap);

void BM_CompiledForestPathContributions(benchmark::State& state) {
  Fixture& f = fixture();
  std::vector<double> phi(kCols + 1);
  std::size_t i = 0;
  for (auto _ : state) {
    f.forest->path_contributions(f.rows.x.row(i), phi);
    benchmark::DoNotOptimize(phi.data());
    i = (i + 1) & 4095;
  }
}
BENCHMARK(BM_CompiledForestPathContributions);

void BM_CompileForestFromJson(benchmark::State& state) {
  Fixture& f = fixture();
  const std::string json = *f.booster->save_json();
  for (auto _ : state) {
    auto forest = CompiledForest::compile(json);
    benchmark::DoNotOptimize(forest);
  }
}
BENCHMARK(BM_CompileForestFromJson)->Unit(benchmark::kMillisecond);

void BM_XGBoostSingleRowPredict(benchmark::State& state) {
  Fixture& f = fixture();
  DenseMatrix one(1, kCols);
  std::size_t i = 0;
  for (auto _ : state) {
    std::copy(f.rows.x.row(i), f.rows.x.row(i) + kCols, one.values.begin());
    auto p = f.booster->predict(one);
    benchmark::DoNotOptimize(p);
    i = (i + 1) & 4095;
  }
}
BENCHMARK(BM_XGBoostSingleRowPredict);

void BM_XGBoostSingleRowContributions(benchmark::State& state) {
  Fixture& f = fixture();
  DenseMatrix one(1, kCols);
  std::size_t i = 0;
  for (auto _ : state) {
    std::copy(f.rows.x.row(i), f.rows.x.row(i) + kCols, one.values.begin());
    auto p = f.booster->contributions(one);
    benchmark::DoNotOptimize(p);
    i = (i + 1) & 4095;
  }
}
BENCHMARK(BM_XGBoostSingleRowContributions);

// Batch of 4096 rows through XGBoost, reported per row.
void BM_XGBoostBatchPredictPerRow(benchmark::State& state) {
  Fixture& f = fixture();
  for (auto _ : state) {
    auto p = f.booster->predict(f.rows.x);
    benchmark::DoNotOptimize(p);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * 4096);
}
BENCHMARK(BM_XGBoostBatchPredictPerRow)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace reai::models
