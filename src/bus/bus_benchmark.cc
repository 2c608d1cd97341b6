// Bus fan-out and cache costs.
#include <atomic>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "bus/bus.h"

namespace reai::bus {
namespace {

// Publish to N subscribers that count what they get (arg 0 = N).
void BM_Publish(benchmark::State& state) {
  auto bus = make_in_process_bus();
  std::atomic<std::uint64_t> delivered{0};
  for (std::int64_t i = 0; i < state.range(0); ++i) {
    bus->subscribe([&delivered](const BusMessage& m) {
      delivered.fetch_add(m.payload->size() > 0 ? 1 : 0, std::memory_order_relaxed);
    });
  }
  auto payload = std::make_shared<const std::string>(std::string(200, 'x'));  // a score object
  for (auto _ : state) benchmark::DoNotOptimize(bus->publish("t_bench", "score_update", payload));
  state.SetItemsProcessed(state.iterations());
  state.counters["deliveries_per_s"] =
      benchmark::Counter(static_cast<double>(delivered.load()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Publish)->Arg(1)->Arg(1000)->Arg(5000);

// Several tenants publishing at once (one per thread), one subscriber.
void BM_PublishThreads(benchmark::State& state) {
  static std::unique_ptr<Bus> bus;
  if (state.thread_index() == 0) {
    bus = make_in_process_bus();
    bus->subscribe([](const BusMessage&) {});
  }
  auto payload = std::make_shared<const std::string>("x");
  std::string tenant = "t";
  tenant += std::to_string(state.thread_index());
  for (auto _ : state) benchmark::DoNotOptimize(bus->publish(tenant, "u", payload));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PublishThreads)->Threads(1)->Threads(2)->UseRealTime();

std::vector<std::string> keys(int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    std::string key = "t_prairie:lead:";
    key += std::to_string(i);
    out.push_back(std::move(key));
  }
  return out;
}

void BM_CacheGetHit(benchmark::State& state) {
  SystemClock clock;
  auto cache = make_in_process_cache(clock);
  auto ks = keys(100'000);
  for (const auto& k : ks) cache->put(k, std::string(100, 'v'), kWarmScoreTtl);
  std::size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(cache->get(ks[i++ % ks.size()]));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CacheGetHit)->Threads(1)->Threads(2)->UseRealTime();

void BM_CachePut(benchmark::State& state) {
  SystemClock clock;
  auto cache = make_in_process_cache(clock, 50'000);  // the bound is hit: puts evict too
  auto ks = keys(100'000);
  std::size_t i = 0;
  for (auto _ : state) cache->put(ks[i++ % ks.size()], std::string(100, 'v'), kFeatureSnapshotTtl);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CachePut);

}  // namespace
}  // namespace reai::bus
