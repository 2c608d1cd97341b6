// Store costs: append_event / append_events (the event path's disk write),
// reading a tenant's new events after a position (the matching worker's
// popularity catch-up), score history batches, and
// import of the full shared CRM history (set REAI_SHARED_DATA to the folder
// holding crm/; skipped otherwise).
#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "core/crm_history.h"
#include "store/store.h"

namespace reai::store {
namespace {

namespace fs = std::filesystem;

fs::path fresh_dir(const char* tag) {
  std::string name = std::string("reai_store_bench_") + tag + "_XXXXXX";
  std::string pattern = (fs::temp_directory_path() / name).string();
  if (mkdtemp(pattern.data()) == nullptr) std::abort();
  return pattern;
}

Event bench_event(std::int64_t i) {
  Event e;
  e.tenant_id = "t_bench";
  e.event_id = "evt-" + std::to_string(i);
  e.contact_id = "c-" + std::to_string(i % 5000);
  e.ts = 1'704'067'200 + i;
  e.type = EventType::kPropertyView;
  e.property_id = "ames-0042";
  e.value = 215'000;
  return e;
}

// Also reports the latency distribution: the mean hides the stalls (fsyncs,
// checkpoints) that a hot path's p99 feels.
void run_appends(benchmark::State& state, Store& store) {
  std::int64_t i = 0;
  std::vector<double> micros;
  micros.reserve(1 << 20);
  for (auto _ : state) {
    Event event = bench_event(i++);
    auto start = std::chrono::steady_clock::now();
    auto written = store.append_event(event);
    auto elapsed = std::chrono::steady_clock::now() - start;
    micros.push_back(std::chrono::duration<double, std::micro>(elapsed).count());
    if (!written || !*written) state.SkipWithError("append failed");
  }
  state.SetItemsProcessed(state.iterations());
  if (micros.empty()) return;
  std::sort(micros.begin(), micros.end());
  auto at = [&](double q) {
    return micros[static_cast<std::size_t>(q * static_cast<double>(micros.size() - 1))];
  };
  state.counters["p50_us"] = at(0.50);
  state.counters["p99_us"] = at(0.99);
  state.counters["p999_us"] = at(0.999);
  state.counters["max_us"] = micros.back();
}

void BM_SqliteAppendEvent(benchmark::State& state) {
  fs::path dir = fresh_dir("append");
  {
    auto store = open_sqlite_store(dir.string());
    if (!store) {
      state.SkipWithError(store.status().to_string().c_str());
      return;
    }
    run_appends(state, **store);
  }
  fs::remove_all(dir);
}
BENCHMARK(BM_SqliteAppendEvent)->UseRealTime();

// Threads appending at once share commits (group commit).
void BM_SqliteAppendEventThreads(benchmark::State& state) {
  static fs::path dir;
  static std::unique_ptr<Store> store;
  if (state.thread_index() == 0) {
    dir = fresh_dir("threads");
    auto opened = open_sqlite_store(dir.string());
    if (!opened) std::abort();
    store = std::move(*opened);
  }
  // Ids apart per thread: 1e12 > any iteration count.
  std::int64_t i = static_cast<std::int64_t>(state.thread_index()) * 1'000'000'000'000;
  for (auto _ : state) {
    auto written = store->append_event(bench_event(i++));
    if (!written || !*written) state.SkipWithError("append failed");
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    store.reset();
    fs::remove_all(dir);
  }
}
BENCHMARK(BM_SqliteAppendEventThreads)->Threads(1)->Threads(2)->Threads(4)->Threads(8)->UseRealTime();

void BM_SqliteAppendDuplicateEvent(benchmark::State& state) {
  fs::path dir = fresh_dir("dup");
  {
    auto store = open_sqlite_store(dir.string());
    if (!store) {
      state.SkipWithError(store.status().to_string().c_str());
      return;
    }
    Event e = bench_event(1);
    (void)(*store)->append_event(e);
    for (auto _ : state) benchmark::DoNotOptimize((*store)->append_event(e).has_value());
    state.SetItemsProcessed(state.iterations());
  }
  fs::remove_all(dir);
}
BENCHMARK(BM_SqliteAppendDuplicateEvent)->UseRealTime();

// One transaction per batch of state.range(0) events: the server's event
// appender writes this way, the batch size growing with the load.
void BM_SqliteAppendEvents(benchmark::State& state) {
  fs::path dir = fresh_dir("batch");
  {
    auto store = open_sqlite_store(dir.string());
    if (!store) {
      state.SkipWithError(store.status().to_string().c_str());
      return;
    }
    std::int64_t i = 0;
    std::vector<Event> batch(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
      for (Event& e : batch) e = bench_event(i++);
      auto written = (*store)->append_events(batch);
      if (!written) state.SkipWithError("append failed");
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
  }
  fs::remove_all(dir);
}
BENCHMARK(BM_SqliteAppendEvents)->Arg(1)->Arg(4)->Arg(16)->Arg(64)->Arg(256)->UseRealTime();

// What the matching worker pays per catch-up of a tenant's behaviour over a
// 100k-event tenant: range(0) new events appended (untimed) before each
// timed read; range(1) 0 reads with for_each_event_after from the last
// position, 1 with read_new_events (the worker's read: on PostgreSQL it
// re-reads a margin and skips what it returned).
void events_after(benchmark::State& state, Store& store) {
  std::int64_t i = 0;
  std::vector<Event> batch(1000);
  for (int b = 0; b < 100; ++b) {
    for (Event& e : batch) e = bench_event(i++);
    if (!store.append_events(batch)) state.SkipWithError("append failed");
  }
  const bool cursor_read = state.range(1) == 1;
  std::int64_t position = 0;
  EventCursor cursor;
  const auto read = [&] {
    std::size_t rows = 0;
    Status status = cursor_read ? store.read_new_events("t_bench", cursor, [&](const Event&) { ++rows; })
                                : store.for_each_event_after("t_bench", position, [&](std::int64_t p, const Event&) {
                                    position = p;
                                    return ++rows, true;
                                  });
    if (!status.is_ok()) state.SkipWithError("read failed");
    return rows;
  };
  read();  // up to the end, as a catalog build leaves it
  std::vector<Event> fresh(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    for (Event& e : fresh) e = bench_event(i++);
    if (!fresh.empty() && !store.append_events(fresh)) state.SkipWithError("append failed");
    const auto start = std::chrono::steady_clock::now();
    const std::size_t rows = read();
    state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    if (rows != fresh.size()) state.SkipWithError("rows missed");
  }
}

// One statement on a connection of its own; true when it ran.
bool postgres_admin(const std::string& url, const std::string& sql) {
  PGconn* conn = PQconnectdb(url.c_str());
  bool ok = PQstatus(conn) == CONNECTION_OK;
  if (ok) {
    PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
    PGresult* r = PQexec(conn, sql.c_str());
    ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    PQclear(r);
  }
  PQfinish(conn);
  return ok;
}

void BM_SqliteEventsAfter(benchmark::State& state) {
  fs::path dir = fresh_dir("after");
  {
    auto store = open_sqlite_store(dir.string());
    if (!store) {
      state.SkipWithError(store.status().to_string().c_str());
      return;
    }
    events_after(state, **store);
  }
  fs::remove_all(dir);
}
BENCHMARK(BM_SqliteEventsAfter)
    ->ArgsProduct({{0, 1, 16}, {0, 1}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// The same on PostgreSQL (REAI_BENCH_POSTGRES_URL, e.g. scripts/pg-test-server
// start's URL; skipped without it), in a schema of its own dropped after.
void BM_PostgresEventsAfter(benchmark::State& state) {
  const char* url = std::getenv("REAI_BENCH_POSTGRES_URL");
  if (url == nullptr || *url == 0) {
    state.SkipWithError("set REAI_BENCH_POSTGRES_URL");
    return;
  }
  const std::string schema = "reai_bench_" + std::to_string(getpid());
  const std::string base(url);
  const std::string scoped = base + (base.find('?') == std::string::npos ? "?" : "&") + "options=-csearch_path%3D" + schema;
  if (!postgres_admin(base, "DROP SCHEMA IF EXISTS " + schema + " CASCADE; CREATE SCHEMA " + schema)) {
    state.SkipWithError("cannot create the benchmark's schema");
    return;
  }
  {
    auto store = open_postgres_store(scoped);
    if (!store) {
      state.SkipWithError(store.status().to_string().c_str());
    } else {
      events_after(state, **store);
    }
  }
  (void)postgres_admin(base, "DROP SCHEMA " + schema + " CASCADE");
}
BENCHMARK(BM_PostgresEventsAfter)
    ->ArgsProduct({{0, 1, 16}, {0, 1}})
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

// Score history rows, one transaction per batch of state.range(0).
void BM_SqliteAppendScores(benchmark::State& state) {
  fs::path dir = fresh_dir("scores");
  {
    auto store = open_sqlite_store(dir.string());
    if (!store) {
      state.SkipWithError(store.status().to_string().c_str());
      return;
    }
    std::int64_t i = 0;
    std::vector<ScoreRecord> batch(static_cast<std::size_t>(state.range(0)));
    for (auto _ : state) {
      for (ScoreRecord& r : batch) {
        r.tenant_id = "t_bench";
        r.contact_id = "c-" + std::to_string(i % 5000);
        r.ts = 1'704'067'200 + i++;
        r.probability = 0.42;
        r.score = 42;
        r.band = "warm";
        r.model_version = "leads-20260101000000-abcdef01";
        r.reasons_json = R"([{"feature":"property_views_7d","text":"viewed 12 homes in 2 days","impact":0.31},)"
                         R"({"feature":"sms_in_reply_minutes","text":"replied by SMS within 5 min","impact":0.2}])";
      }
      if (Status s = (*store)->append_scores(batch); !s) state.SkipWithError("append failed");
    }
    state.SetItemsProcessed(state.iterations() * state.range(0));
  }
  fs::remove_all(dir);
}
BENCHMARK(BM_SqliteAppendScores)->Arg(1)->Arg(16)->Arg(64)->Arg(256)->UseRealTime();

void BM_MemoryAppendEvent(benchmark::State& state) {
  auto store = make_memory_store();
  run_appends(state, *store);
}
BENCHMARK(BM_MemoryAppendEvent);

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// One iteration: parse the three CSVs, then import them into a new database.
void BM_ImportSharedHistory(benchmark::State& state) {
  const char* shared = std::getenv("REAI_SHARED_DATA");
  if (shared == nullptr) {
    state.SkipWithError("REAI_SHARED_DATA not set");
    return;
  }
  fs::path crm = fs::path(shared) / "crm";
  for (auto _ : state) {
    auto start = std::chrono::steady_clock::now();
    auto history = load_crm_history_dir(crm.string());
    if (!history) {
      state.SkipWithError("cannot load the shared history");
      return;
    }
    double parse_s = seconds_since(start);
    fs::path dir = fresh_dir("import");
    auto import_start = std::chrono::steady_clock::now();
    {
      auto store = open_sqlite_store(dir.string());
      if (!store) {
        state.SkipWithError(store.status().to_string().c_str());
        return;
      }
      auto counts = (*store)->import_history(history->contacts, history->events, history->stages);
      if (!counts) {
        state.SkipWithError(counts.status().to_string().c_str());
        return;
      }
      state.counters["events_written"] = static_cast<double>(counts->events_written);
      state.counters["contacts_written"] = static_cast<double>(counts->contacts_written);
      state.counters["stages_written"] = static_cast<double>(counts->stages_written);
    }
    state.counters["parse_s"] = parse_s;
    state.counters["import_s"] = seconds_since(import_start);
    state.counters["total_s"] = seconds_since(start);
    fs::remove_all(dir);
  }
}
BENCHMARK(BM_ImportSharedHistory)->Iterations(1)->Unit(benchmark::kSecond);

}  // namespace
}  // namespace reai::store
