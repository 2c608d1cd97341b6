// Hot-path cost: feature update + single-row prediction (+ SHAP reasons).
// Uses the model in $REAI_BENCH_MODEL (a `train leads` output directory) when
// set, otherwise trains one on a small synthetic history in setup.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <unistd.h>

#include "scoring/lead_model.h"
#include "scoring/scoring.h"
#include "scoring/synthetic_history.h"

namespace reai::scoring {
namespace {

namespace fs = std::filesystem;
using testing_support::kDay;
using testing_support::kStart;

std::shared_ptr<const LeadModel> bench_model() {
  static std::shared_ptr<const LeadModel> model = [] {
    std::string dir;
    if (const char* env = std::getenv("REAI_BENCH_MODEL")) {
      dir = env;
    } else {
      dir = (fs::temp_directory_path() / ("reai_scoring_bench_" + std::to_string(::getpid()))).string();
      auto h = testing_support::make_history(3000, kStart, 300 * kDay, 11, "c");
      TrainLeadOptions options;
      options.progress = false;
      options.nthread = 2;
      auto report = train_lead_model(h.contacts, h.events, h.stages, dir, options);
      if (!report) std::abort();
    }
    auto loaded = load_lead_model(dir);
    if (!loaded) std::abort();
    return *loaded;
  }();
  return model;
}

class FixedRegistry final : public ModelRegistry {
 public:
  explicit FixedRegistry(std::shared_ptr<const LeadModel> m) : m_(std::move(m)) {}
  std::shared_ptr<const LeadModel> lead_model(std::string_view) const override { return m_; }

 private:
  std::shared_ptr<const LeadModel> m_;
};

class EmptyRegistry final : public ModelRegistry {
 public:
  std::shared_ptr<const LeadModel> lead_model(std::string_view) const override { return nullptr; }
};

Event bench_event(int i) {
  static const EventType kTypes[] = {EventType::kPropertyView, EventType::kSmsIn, EventType::kSmsOut,
                                     EventType::kPageView, EventType::kPropertySave};
  Event e;
  e.tenant_id = "t1";
  e.contact_id = "c" + std::to_string(i % 1000);
  e.type = kTypes[i % 5];
  e.ts = kStart + i;
  if (is_property_event(e.type)) {
    e.property_id = "p" + std::to_string(i % 37);
    e.value = 250000;
  }
  return e;
}

// The full engine path: shard lock, feature update, prediction, TreeSHAP
// reasons, score object.
void BM_EngineApplyEvent(benchmark::State& state) {
  FixedRegistry registry(bench_model());
  LeadScoringEngine engine(registry, nullptr);
  std::vector<Event> events;
  for (int i = 0; i < 4096; ++i) events.push_back(bench_event(i));
  std::size_t i = 0;
  for (auto _ : state) {
    const Event& e = events[i++ % events.size()];
    benchmark::DoNotOptimize(engine.apply_event(e, e.ts));
  }
  state.counters["trees"] = double(bench_model()->forest.num_trees());
}
BENCHMARK(BM_EngineApplyEvent);

// Feature update + feature row + forest + calibration, no reasons.
void BM_UpdateAndPredict(benchmark::State& state) {
  auto model = bench_model();
  features::LeadFeatureState lead;
  Contact c;
  c.tenant_id = "t1";
  c.contact_id = "c1";
  c.created_at = kStart;
  c.budget = 250000;
  lead.set_contact(c);
  float row[128];
  int i = 0;
  for (auto _ : state) {
    Event e = bench_event(i++ & 1023);
    lead.apply(e);
    lead.write_features(e.ts, &model->track_records, row);
    benchmark::DoNotOptimize(evaluate_model(*model, row, Reasons::kNone));
  }
}
BENCHMARK(BM_UpdateAndPredict);

// Path-attribution reasons (served) for one row.
void BM_PathReasons(benchmark::State& state) {
  auto model = bench_model();
  features::LeadFeatureState lead;
  for (int i = 0; i < 20; ++i) lead.apply(bench_event(i * 1000));
  float row[128];
  lead.write_features(kStart + 30000, &model->track_records, row);
  for (auto _ : state) benchmark::DoNotOptimize(evaluate_model(*model, row, Reasons::kPath));
}
BENCHMARK(BM_PathReasons);

// Exact TreeSHAP reasons for one row (not served; for comparison).
void BM_ShapReasons(benchmark::State& state) {
  auto model = bench_model();
  features::LeadFeatureState lead;
  for (int i = 0; i < 20; ++i) lead.apply(bench_event(i * 1000));
  float row[128];
  lead.write_features(kStart + 30000, &model->track_records, row);
  for (auto _ : state) benchmark::DoNotOptimize(evaluate_model(*model, row, Reasons::kTreeShap));
}
BENCHMARK(BM_ShapReasons);

void BM_EngineApplyEventFallback(benchmark::State& state) {
  EmptyRegistry registry;
  LeadScoringEngine engine(registry, nullptr);
  int i = 0;
  for (auto _ : state) {
    Event e = bench_event(i++);
    benchmark::DoNotOptimize(engine.apply_event(e, e.ts));
  }
}
BENCHMARK(BM_EngineApplyEventFallback);

}  // namespace
}  // namespace reai::scoring
