// Append latency of the SQLite store while tenant-wide scans run (issue 3:
// a scan used to hold the writer's lock). Grows DATA_DIR's tenant "big" to
// EVENTS events when smaller, then for SECONDS runs WRITERS threads calling
// append_event (one event each, as POST /api/events does) and, with SCAN=1,
// one thread running for_each_event over the tenant, GAP_MS apart (0: back
// to back, the WAL always pinned). Prints
// append p50 / p99 / p99.9 / max, appends/s and scans done. Wall-clock
// figures: print the load average beside them.
//
//   store_scan_load DATA_DIR [EVENTS=400000] [SECONDS=10] [WRITERS=4] [SCAN=1] [GAP_MS=0]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"

namespace {

using Clock = std::chrono::steady_clock;
using reai::Event;
using reai::EventType;

Event event(std::int64_t n, const std::string& prefix) {
  Event e;
  e.tenant_id = "big";
  e.event_id = prefix;
  e.event_id += std::to_string(n);
  e.contact_id = "lead-";
  e.contact_id += std::to_string(n % 20'000);
  e.ts = 1'700'000'000 + n;
  e.type = n % 3 == 0 ? EventType::kPropertyView : EventType::kPageView;
  return e;
}

int grow(reai::store::Store& store, std::size_t target) {
  auto have = store.count_events("big");
  if (!have) return std::fprintf(stderr, "count: %s\n", have.status().to_string().c_str()), 1;
  std::vector<Event> batch;
  for (std::size_t n = *have; n < target; n += batch.size()) {
    batch.clear();
    for (std::size_t i = n; i < std::min(target, n + 5'000); ++i) batch.push_back(event(static_cast<std::int64_t>(i), "g"));
    auto written = store.append_events(batch);
    if (!written) return std::fprintf(stderr, "grow: %s\n", written.status().to_string().c_str()), 1;
  }
  return 0;
}

double percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  return sorted[std::min(sorted.size() - 1, static_cast<std::size_t>(p * static_cast<double>(sorted.size())))];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return std::fprintf(stderr, "usage: store_scan_load DATA_DIR [EVENTS] [SECONDS] [WRITERS] [SCAN] [GAP_MS]\n"), 2;
  const std::size_t events = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 400'000;
  const int seconds = argc > 3 ? std::atoi(argv[3]) : 10;
  const int writers = argc > 4 ? std::atoi(argv[4]) : 4;
  const bool scan = argc > 5 ? std::atoi(argv[5]) != 0 : true;
  const int gap_ms = argc > 6 ? std::atoi(argv[6]) : 0;
  auto store = reai::store::open_sqlite_store(argv[1]);
  if (!store) return std::fprintf(stderr, "open: %s\n", store.status().to_string().c_str()), 1;
  if (int rc = grow(**store, events); rc != 0) return rc;

  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> next{0};
  const std::string run = std::to_string(Clock::now().time_since_epoch().count()) + "-";
  std::vector<std::vector<double>> latencies(static_cast<std::size_t>(writers));
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      auto& mine = latencies[static_cast<std::size_t>(w)];
      while (!stop.load()) {
        const Event e = event(next.fetch_add(1), run);
        const auto t0 = Clock::now();
        auto written = (*store)->append_event(e);
        const auto t1 = Clock::now();
        if (!written) std::fprintf(stderr, "append: %s\n", written.status().to_string().c_str());
        mine.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
      }
    });
  }
  std::atomic<int> scans{0};
  std::atomic<double> scan_ms{0};
  if (scan) {
    threads.emplace_back([&] {
      while (!stop.load()) {
        std::size_t rows = 0;
        const auto t0 = Clock::now();
        auto status = (*store)->for_each_event("big", [&](const Event&) { return ++rows, true; });
        if (!status.is_ok()) std::fprintf(stderr, "scan: %s\n", status.to_string().c_str());
        scan_ms = scan_ms + std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        ++scans;
        for (int slept = 0; slept < gap_ms && !stop.load(); slept += 10) {
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  stop = true;
  for (auto& t : threads) t.join();
  std::vector<double> all;
  for (auto& v : latencies) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  std::printf("appends %zu (%.0f/s) p50 %.0f us p99 %.0f us p99.9 %.0f us max %.0f us; scans %d (mean %.0f ms)\n",
              all.size(), static_cast<double>(all.size()) / seconds, percentile(all, 0.5), percentile(all, 0.99),
              percentile(all, 0.999), all.empty() ? 0.0 : all.back(), scans.load(),
              scans ? scan_ms.load() / scans.load() : 0.0);
  return 0;
}
