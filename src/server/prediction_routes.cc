#include "server/prediction_routes.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <thread>
#include <unordered_map>

#include <boost/json.hpp>
#include <spdlog/spdlog.h>

#include "analytics/agents.h"
#include "analytics/deals.h"
#include "analytics/forecast.h"
#include "analytics/pricing.h"
#include "core/json_text.h"
#include "core/crm_history.h"
#include "core/csv.h"
#include "core/files.h"
#include "core/tenant_id.h"
#include "core/time.h"
#include "property/inventory.h"
#include "property/property.h"
#include "server/codec.h"
#include "server/http_errors.h"
#include "server/responses.h"
#include "store/store.h"

namespace reai::server {
namespace json = boost::json;
namespace fs = std::filesystem;
namespace {

constexpr const char* kAgentMethodVersion = "agent-closings-1";

ApiResponse answer(const json::object& o, Route route) { return json_response(200, json_text(o), route); }

std::string month_text(int month_index) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d", analytics::year_of(month_index), analytics::month_of(month_index));
  return buf;
}

// `v` rounded to `decimals`; whole numbers as JSON integers (prices, counts),
// so answers read 227037 rather than 2.27037E5.
json::value num(double v, int decimals) {
  if (!std::isfinite(v)) return nullptr;
  const double scale = std::pow(10.0, decimals);
  const double r = std::round(v * scale) / scale;
  if (r == std::floor(r) && std::fabs(r) < 1e15) return json::value(static_cast<std::int64_t>(r));
  return json::value(r);
}

std::string hex8(std::uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%08x", v);
  return buf;
}

std::uint32_t fnv1a(std::string_view text) {
  std::uint32_t h = 2166136261u;
  for (unsigned char c : text) h = (h ^ c) * 16777619u;
  return h;
}

// ---- artefacts on disk ----

struct FileStamp {
  fs::file_time_type::rep mtime = 0;
  std::uintmax_t size = 0;
  bool operator==(const FileStamp&) const = default;
};

std::optional<FileStamp> stamp_of(const fs::path& path) {
  std::error_code ec;
  const auto t = fs::last_write_time(path, ec);
  if (ec) return std::nullopt;
  const auto size = fs::file_size(path, ec);
  if (ec) return std::nullopt;
  return FileStamp{t.time_since_epoch().count(), size};
}

UnixSeconds modified_at(const fs::path& path) {
  std::error_code ec;
  const auto t = fs::last_write_time(path, ec);
  if (ec) return 0;
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::file_clock::to_sys(t).time_since_epoch()).count();
}

template <class T>
struct Loaded {
  std::shared_ptr<const T> value;
  std::string version;
  UnixSeconds created_at = 0;
  FileStamp stamp;
};

// One kind of artefact, cached per directory and re-read when its key file
// changes. Loading happens outside the lock; two racing loads of the same
// change both succeed and the later one wins (same content).
template <class T>
class ArtefactCache {
 public:
  using Loader = std::function<Result<Loaded<T>>(const fs::path& dir)>;
  ArtefactCache(std::string key_file, Loader load) : key_file_(std::move(key_file)), load_(std::move(load)) {}
  const std::string& key_file() const { return key_file_; }

  // NotFound when the key file is absent; the loader's error otherwise.
  Result<std::shared_ptr<const Loaded<T>>> get(const fs::path& dir) {
    const fs::path key = dir / key_file_;
    const auto stamp = stamp_of(key);
    if (!stamp) return not_found(key_file_ + " is missing");
    {
      std::lock_guard lock(mu_);
      auto it = cache_.find(dir.string());
      if (it != cache_.end() && it->second->stamp == *stamp) return it->second;
    }
    auto loaded = load_(dir);
    if (!loaded) return loaded.status();
    loaded->stamp = *stamp;
    loaded->created_at = modified_at(key);
    auto shared = std::make_shared<const Loaded<T>>(std::move(*loaded));
    std::lock_guard lock(mu_);
    cache_[dir.string()] = shared;
    return shared;
  }

 private:
  std::string key_file_;
  Loader load_;
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const Loaded<T>>> cache_;
};

// A `reai forecast` CSV: series,metric,year,month,h,point,lower80,upper80.
struct MarketForecast {
  struct Row {
    std::string region, metric;
    int month = 0, h = 0;
    double point = 0, lower80 = 0, upper80 = 0;
  };
  std::vector<Row> rows;  // file order: region, metric, h
  std::vector<std::string> metrics;
  int origin = 0;  // the month before the first forecast month
  int max_h = 0;
};

Result<Loaded<MarketForecast>> load_market_forecast(const fs::path& path) {
  auto text = read_text_file(path.string());
  if (!text) return text.status();
  const std::string version_hash = hex8(fnv1a(*text));
  auto reader = CsvReader::from_string(std::move(*text), path.string());
  if (!reader) return reader.status();
  std::size_t col[8];
  const char* names[8] = {"series", "metric", "year", "month", "h", "point", "lower80", "upper80"};
  for (int i = 0; i < 8; ++i) {
    auto c = reader->require_column(names[i]);
    if (!c) return c.status();
    col[i] = *c;
  }
  MarketForecast f;
  std::vector<std::string_view> fields;
  Status error;
  int first_month = std::numeric_limits<int>::max();
  while (reader->next(fields, &error)) {
    if (!error) return error;
    const std::string where = path.string() + " line " + std::to_string(reader->line());
    if (fields.size() <= *std::max_element(col, col + 8)) return invalid_argument(where + ": too few columns");
    double v[6];
    for (int i = 2; i < 8; ++i) {
      bool ok = true;
      auto d = parse_optional_double(fields[col[i]], &ok);
      if (!ok || !d) return invalid_argument(where + ": " + names[i] + " is not a number");
      v[i - 2] = *d;
    }
    MarketForecast::Row row{std::string(fields[col[0]]), std::string(fields[col[1]]),
                            analytics::month_index(int(v[0]), int(v[1])), int(v[2]), v[3], v[4], v[5]};
    if (row.h < 1 || v[1] < 1 || v[1] > 12) return invalid_argument(where + ": bad month or h");
    first_month = std::min(first_month, row.month - row.h + 1);
    f.max_h = std::max(f.max_h, row.h);
    if (std::find(f.metrics.begin(), f.metrics.end(), row.metric) == f.metrics.end()) f.metrics.push_back(row.metric);
    f.rows.push_back(std::move(row));
  }
  if (f.rows.empty()) return invalid_argument(path.string() + " holds no forecasts");
  f.origin = first_month - 1;
  Loaded<MarketForecast> out;
  out.version = "markets-" + month_text(f.origin) + "-" + version_hash;
  out.value = std::make_shared<const MarketForecast>(std::move(f));
  return out;
}

Result<Loaded<analytics::DealModel>> load_deal_model(const fs::path& dir) {
  auto m = analytics::DealModel::load(dir.string());
  if (!m) return m.status();
  Loaded<analytics::DealModel> out;
  out.version = m->version();
  out.value = std::make_shared<const analytics::DealModel>(std::move(*m));
  return out;
}

struct Avm {
  property::ValuationModel model;
  std::shared_ptr<const property::SalesTable> sales;  // null: no comparables
};

Result<Loaded<Avm>> load_avm(const fs::path& dir) {
  auto meta = read_text_file((dir / "model.json").string());
  if (!meta) return meta.status();
  auto m = property::ValuationModel::load(dir.string());
  if (!m) return m.status();
  Loaded<Avm> out;
  out.version = "avm-" + hex8(fnv1a(*meta));
  std::shared_ptr<const property::SalesTable> sales;
  if (fs::exists(dir / "sales.csv")) {
    auto table = property::read_sales_csv((dir / "sales.csv").string());
    if (!table) return table.status();
    sales = std::make_shared<const property::SalesTable>(std::move(*table));
  }
  out.value = std::make_shared<const Avm>(Avm{std::move(*m), std::move(sales)});
  return out;
}

// ---- per-tenant history and the predictions made from it ----

struct DealRow {
  analytics::DealPrediction prediction;
  std::string contact_id;
  Stage stage = Stage::kSigned;
  double value = 0;
  UnixSeconds stage_since = 0;
};

struct DealsView {
  std::string version;
  UnixSeconds created_at = 0;
  std::string degenerate;  // the model's reason to answer with the stage prior
  std::vector<DealRow> rows;  // best first
  std::unordered_map<std::string, std::size_t> index;
};

struct AgentsView {
  Status status;  // the forecast's failure (too little history)
  std::vector<std::string> agents;  // sorted
  std::map<std::string, std::vector<analytics::AgentMonthForecast>> months;
  std::map<std::string, std::vector<analytics::CoachingFinding>> findings;
};

struct OpportunityState {
  std::string contact_id, agent_id;
  Stage stage = Stage::kSigned;
  double value = 0;
  UnixSeconds since = 0;
};

struct Snapshot {
  CrmHistory history;
  std::unordered_map<std::string, OpportunityState> opportunities;  // last row at or before as_of
  UnixSeconds as_of = 0;
  std::chrono::steady_clock::time_point built;
  std::uint64_t generation = 0;
  std::mutex mu;  // guards the views below, computed on first use
  std::shared_ptr<const DealsView> deals;
  std::shared_ptr<const AgentsView> agents;
};

struct TenantSlot {
  std::mutex build_mu;  // one rebuild at a time
  std::mutex mu;        // guards snapshot
  std::shared_ptr<Snapshot> snapshot;
  std::atomic<std::uint64_t> generation{0};
  std::atomic<bool> refreshing{false};  // a background rebuild is queued
  std::atomic<bool> wants_agents{false};  // agents were asked for: rebuilds precompute them
};

std::string iso_day(UnixSeconds t) { return format_iso8601(t).substr(0, 10); }

json::object deal_json(const DealRow& d, UnixSeconds as_of) {
  const auto& p = d.prediction;
  json::object o;
  o["opportunity_id"] = p.opportunity_id;
  o["contact_id"] = d.contact_id;
  o["agent_id"] = p.agent_id;
  o["stage"] = stage_name(d.stage);
  o["value"] = num(d.value, 0);
  o["days_in_stage"] = num(std::floor(double(as_of - d.stage_since) / 86400.0), 0);
  o["p_close"] = num(p.p_close, 4);
  o["expected_days_to_close"] = num(p.expected_days_to_close, 1);
  o["lower80_days"] = num(p.lower80_days, 1);
  o["upper80_days"] = num(p.upper80_days, 1);
  auto day_after = [&](double days) { return iso_day(as_of + UnixSeconds(std::llround(days * 86400.0))); };
  o["expected_close_date"] = day_after(p.expected_days_to_close);
  o["close_window80"] = json::array{json::value(day_after(p.lower80_days)), json::value(day_after(p.upper80_days))};
  return o;
}

json::object month_json(const analytics::AgentMonthForecast& m) {
  json::object o;
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d", m.year, m.month);
  o["month"] = buf;
  o["expected_closings"] = num(m.expected_closings, 2);
  o["lower80"] = num(m.lower80, 2);
  o["upper80"] = num(m.upper80, 2);
  o["from_pipeline"] = num(m.from_pipeline, 2);
  return o;
}

json::object agent_json(const AgentsView& v, const std::string& agent) {
  json::object o;
  o["agent_id"] = agent;
  json::array months;
  double total = 0;
  if (auto it = v.months.find(agent); it != v.months.end()) {
    for (const auto& m : it->second) {
      months.push_back(month_json(m));
      total += m.expected_closings;
    }
    if (!it->second.empty()) {
      const auto& next = it->second.front();
      json::object first = month_json(next);
      o["next_month"] = first["month"];
      o["expected_closings"] = num(next.expected_closings, 2);
      o["lower80"] = num(next.lower80, 2);
      o["upper80"] = num(next.upper80, 2);
      o["expected_closings_horizon"] = num(total, 2);
    }
  }
  json::array findings;
  if (auto it = v.findings.find(agent); it != v.findings.end()) {
    if (!it->second.empty()) o["coaching"] = it->second.front().finding;
    for (const auto& f : it->second) findings.push_back(json::object{{"finding", f.finding}, {"strength", num(f.strength, 2)}});
  }
  o["months"] = std::move(months);
  o["findings"] = std::move(findings);
  return o;
}

ApiResponse render_deals(const TokenClaims& claims, std::string_view opportunity_id, const Snapshot& snap,
                         const DealsView& view) {
  constexpr Route kRoute = Route::kPredictionDeals;
  const UnixSeconds as_of = snap.as_of;
  // No stage row yet: "no open deals" would pass for an answer. (One
  // opportunity asked for is then simply not there: 404 below.)
  if (view.rows.empty() && opportunity_id.empty()) {
    if (Status s = analytics::check_deal_history_at(snap.history, as_of); !s) {
      return error_response(failed_precondition(s.message() + " for tenant " + claims.tenant_id +
                                                " (import opportunity_stages.csv with `reai import --tenant " +
                                                claims.tenant_id + "`, or connect GoHighLevel)"),
                            kRoute);
    }
  }
  json::object o;
  o["tenant_id"] = claims.tenant_id;
  o["model_version"] = view.version;
  o["model_created_at"] = format_iso8601(view.created_at);
  o["as_of"] = format_iso8601(as_of);
  o["interval"] = "80%";
  // A degenerate model's constant is no forecast: its stage prior answers,
  // and the answer says so and why.
  o["method"] = view.degenerate.empty() ? "model" : "stage_prior";
  if (!view.degenerate.empty()) {
    o["fallback_reason"] = "the deal model is degenerate (" + view.degenerate +
                           "): p_close is the closing rate of the deal's stage in its training history, "
                           "the days are that stage's";
  }
  if (!opportunity_id.empty()) {
    const std::string id(opportunity_id);
    auto it = view.index.find(id);
    if (it == view.index.end()) {
      auto known = snap.opportunities.find(id);
      if (known == snap.opportunities.end()) return error_response(not_found("no such opportunity"), kRoute);
      return error_response(failed_precondition("opportunity " + id + " is " + std::string(stage_name(known->second.stage)) +
                                              "; nothing to predict"),
                          kRoute);
    }
    for (auto& [k, v] : deal_json(view.rows[it->second], as_of)) o[k] = v;
    return answer(std::move(o), kRoute);
  }
  json::array list;
  list.reserve(view.rows.size());
  for (const auto& d : view.rows) list.push_back(deal_json(d, as_of));
  o["count"] = list.size();
  o["opportunities"] = std::move(list);
  return answer(std::move(o), kRoute);
}

ApiResponse render_agents(const TokenClaims& claims, std::string_view agent_id, const Snapshot& snap,
                          const AgentsView& view) {
  constexpr Route kRoute = Route::kPredictionAgents;
  if (!view.status) {
    return error_response(not_found("agent performance not trained yet: " + view.status.message()), kRoute);
  }
  json::object o;
  o["tenant_id"] = claims.tenant_id;
  o["model_version"] = kAgentMethodVersion;
  o["as_of"] = format_iso8601(snap.as_of);
  o["interval"] = "80%";
  if (!agent_id.empty()) {
    const std::string id(agent_id);
    if (!std::binary_search(view.agents.begin(), view.agents.end(), id)) {
      return error_response(not_found("no such agent"), kRoute);
    }
    for (auto& [k, v] : agent_json(view, id)) o[k] = v;
    return answer(std::move(o), kRoute);
  }
  json::array list;
  for (const auto& a : view.agents) list.push_back(agent_json(view, a));
  o["agents"] = std::move(list);
  return answer(std::move(o), kRoute);
}

// Jobs run in order on one thread, started with the first job; stop()
// drops what is still queued (each job's `cancel` runs instead) and joins.
struct Job {
  std::function<void()> run;
  std::function<void()> cancel;  // at stop, instead of run
};

class JobQueue {
 public:
  JobQueue() = default;
  JobQueue(const JobQueue&) = delete;
  JobQueue& operator=(const JobQueue&) = delete;
  ~JobQueue() { stop(); }

  // False once stopping (the job is dropped; the caller answers itself).
  bool enqueue(Job job) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return false;
      jobs_.push_back(std::move(job));
      if (!worker_.joinable()) worker_ = std::thread([this] { work(); });
    }
    cv_.notify_one();
    return true;
  }

  // Idempotent.
  void stop() {
    std::deque<Job> left;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
      left.swap(jobs_);
    }
    cv_.notify_all();
    if (worker_.joinable()) worker_.join();
    for (auto& job : left) job.cancel();
  }

 private:
  void work() {
    for (;;) {
      Job job;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
        if (stopping_) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job.run();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool stopping_ = false;
  std::thread worker_;
};

}  // namespace

struct PredictionRoutes::Impl {
  Impl(store::Store& s, std::string dir, const Clock& c)
      : store(s),
        model_dir(std::move(dir)),
        clock(c),
        deals("deal_model.json", load_deal_model),
        markets("forecast.csv", [](const fs::path& d) { return load_market_forecast(d / "forecast.csv"); }),
        avms("model.json", load_avm) {}

  store::Store& store;
  fs::path model_dir;
  const Clock& clock;
  ArtefactCache<analytics::DealModel> deals;
  ArtefactCache<MarketForecast> markets;
  ArtefactCache<Avm> avms;
  std::mutex tenants_mu;
  std::unordered_map<std::string, std::unique_ptr<TenantSlot>> tenants;

  // The tenant's own artefact directory when it has one, else the shared
  // one; nullopt when neither holds `key_file`.
  std::optional<fs::path> artefact_dir(const std::string& tenant, const char* kind, const std::string& key_file) const {
    // Claims are validated before a route runs; an id tenant_dir still
    // refuses has no directory of its own.
    if (auto root = tenant_dir(model_dir.string(), tenant)) {
      fs::path own = fs::path(*root) / kind;
      if (fs::exists(own / key_file)) return own;
    }
    fs::path shared = model_dir / kind;
    if (fs::exists(shared / key_file)) return shared;
    return std::nullopt;
  }

  // Pricing's valuation model: a dedicated `avm/` (whose `sales.csv` gives
  // comparables) when there is one, else the `value/` model the tenant's
  // listings are valued with, so the one AVM `reai import listings` and the
  // demo use also prices; the tenant's own before the shared ones.
  std::optional<fs::path> avm_dir(const std::string& tenant) const {
    const std::string& key = avms.key_file();
    if (auto root = tenant_dir(model_dir.string(), tenant)) {
      for (const char* kind : {"avm", "value"}) {
        fs::path own = fs::path(*root) / kind;
        if (fs::exists(own / key)) return own;
      }
    }
    for (const char* kind : {"avm", "value"}) {
      if (fs::exists(model_dir / kind / key)) return model_dir / kind;
    }
    return std::nullopt;
  }

  template <class T>
  Result<std::shared_ptr<const Loaded<T>>> artefact(ArtefactCache<T>& cache, const std::string& tenant,
                                                    const char* kind, const char* what, const char* how) {
    return load_artefact(cache, artefact_dir(tenant, kind, cache.key_file()), what, how);
  }

  template <class T>
  Result<std::shared_ptr<const Loaded<T>>> load_artefact(ArtefactCache<T>& cache, const std::optional<fs::path>& dir,
                                                         const char* what, const char* how) {
    if (!dir) return not_found(std::string(what) + " not trained yet (" + how + ")");
    auto loaded = cache.get(*dir);
    // A model that does not load is the operator's problem, not the caller's:
    // 503, with the reason in the server log.
    if (!loaded) {
      spdlog::error("predictions: {} in {} does not load: {}", what, dir->string(), loaded.status().message());
      return unavailable(std::string(what) + " does not load; see the server log");
    }
    return loaded;
  }

  TenantSlot& slot(const std::string& tenant) {
    std::lock_guard lock(tenants_mu);
    auto& s = tenants[tenant];
    if (!s) s = std::make_unique<TenantSlot>();
    return *s;
  }

  bool fresh(const TenantSlot& s, const Snapshot& snap) const {
    return snap.generation == s.generation.load() &&
           std::chrono::steady_clock::now() - snap.built < PredictionRoutes::kHistoryTtl;
  }

  // The tenant's history as the store holds it now (not installed).
  Result<std::shared_ptr<Snapshot>> build_snapshot(const std::string& tenant, std::uint64_t generation) {
    auto snap = std::make_shared<Snapshot>();
    snap->generation = generation;
    snap->built = std::chrono::steady_clock::now();
    snap->as_of = clock.now();
    REAI_RETURN_IF_ERROR(store.for_each_contact(tenant, [&](const Contact& c) {
      snap->history.contacts.push_back(c);
      return true;
    }));
    REAI_RETURN_IF_ERROR(store.for_each_event(tenant, [&](const Event& e) {
      snap->history.events.push_back(e);
      return true;
    }));
    REAI_RETURN_IF_ERROR(store.for_each_stage(tenant, [&](const OpportunityStage& st) {
      snap->history.stages.push_back(st);
      return true;
    }));
    for (const auto& st : snap->history.stages) {
      if (st.ts > snap->as_of) continue;
      auto& o = snap->opportunities[st.opportunity_id];
      if (o.since == 0 || o.stage != st.stage) o.since = st.ts;
      o.contact_id = st.contact_id;
      o.agent_id = st.agent_id;
      o.stage = st.stage;
      o.value = st.monetary_value;
    }
    return snap;
  }

  // The tenant's history, fresh within kHistoryTtl and since its last
  // invalidation; rebuilt from the store (and installed) otherwise.
  Result<std::shared_ptr<Snapshot>> snapshot(const std::string& tenant) {
    TenantSlot& s = slot(tenant);
    {
      std::lock_guard lock(s.mu);
      if (s.snapshot && fresh(s, *s.snapshot)) return s.snapshot;
    }
    std::lock_guard build(s.build_mu);
    {
      std::lock_guard lock(s.mu);
      if (s.snapshot && fresh(s, *s.snapshot)) return s.snapshot;
    }
    auto snap = build_snapshot(tenant, s.generation.load());
    if (!snap) return snap.status();
    std::lock_guard lock(s.mu);
    s.snapshot = *snap;
    return *snap;
  }

  // The installed history, however old (null when none yet); a stale one is
  // refreshed in the background while it keeps answering.
  std::shared_ptr<Snapshot> current(const std::string& tenant) {
    TenantSlot& s = slot(tenant);
    std::shared_ptr<Snapshot> snap;
    {
      std::lock_guard lock(s.mu);
      snap = s.snapshot;
    }
    if (snap && !fresh(s, *snap)) schedule_refresh(tenant);
    return snap;
  }

  // ---- the workers: slow work off the io threads ----
  // Histories and predictions from them (up to seconds per tenant) on one;
  // pricing requests (milliseconds each: the comparables scan) on another,
  // so a price never waits behind a tenant's history.
  JobQueue history_jobs;
  JobQueue pricing_jobs;

  bool enqueue(Job job) { return history_jobs.enqueue(std::move(job)); }

  void stop() {
    history_jobs.stop();
    pricing_jobs.stop();
  }

  // Rebuilds the tenant's history and the predictions already asked for,
  // then installs them together, so readers never wait for it.
  void schedule_refresh(const std::string& tenant) {
    TenantSlot& s = slot(tenant);
    if (s.refreshing.exchange(true)) return;
    const bool queued = enqueue({[this, tenant, &s] {
                                   std::lock_guard build(s.build_mu);
                                   auto snap = build_snapshot(tenant, s.generation.load());
                                   if (snap) {
                                     auto model = artefact(deals, tenant, "deals", "deal model", "");
                                     if (model) (void)deal_view(tenant, *model, **snap);
                                     if (s.wants_agents.load()) (void)agent_view(**snap);
                                     std::lock_guard lock(s.mu);
                                     s.snapshot = *snap;
                                   }
                                   s.refreshing = false;
                                 },
                                 [&s] { s.refreshing = false; }});
    if (!queued) s.refreshing = false;
  }

  // The answer when everything it needs is ready (a cheap read), else nullopt.
  std::optional<ApiResponse> ready(Route route, const TokenClaims& claims, std::string_view id) {
    if (route == Route::kPredictionDeals) {
      auto model = deal_model(claims.tenant_id);
      if (!model) return error_response(model.status(), route);
      auto snap = current(claims.tenant_id);
      if (!snap) return std::nullopt;
      std::shared_ptr<const DealsView> view;
      {
        std::lock_guard lock(snap->mu);
        if (snap->deals && snap->deals->version == (*model)->version && snap->deals->created_at == (*model)->created_at) {
          view = snap->deals;
        }
      }
      if (!view) return std::nullopt;
      return render_deals(claims, id, *snap, *view);
    }
    auto snap = current(claims.tenant_id);
    if (!snap) return std::nullopt;
    std::shared_ptr<const AgentsView> view;
    {
      std::lock_guard lock(snap->mu);
      view = snap->agents;
    }
    if (!view) return std::nullopt;
    return render_agents(claims, id, *snap, *view);
  }

  // The answer, doing whatever work it needs (history, predictions).
  ApiResponse compute(Route route, const TokenClaims& claims, std::string_view id) {
    if (route == Route::kPredictionDeals) {
      auto model = deal_model(claims.tenant_id);
      if (!model) return error_response(model.status(), route);
      auto snap = snapshot(claims.tenant_id);
      if (!snap) return error_response(snap.status(), route);
      auto view = deal_view(claims.tenant_id, *model, **snap);
      if (!view) return error_response(view.status(), route);
      return render_deals(claims, id, **snap, **view);
    }
    auto snap = snapshot(claims.tenant_id);
    if (!snap) return error_response(snap.status(), route);
    slot(claims.tenant_id).wants_agents = true;
    return render_agents(claims, id, **snap, *agent_view(**snap));
  }

  Result<std::shared_ptr<const Loaded<analytics::DealModel>>> deal_model(const std::string& tenant) {
    return artefact(deals, tenant, "deals", "deal model", "reai train deals --out MODEL_DIR/deals");
  }

  Result<std::shared_ptr<const DealsView>> deal_view(const std::string& tenant,
                                                     const std::shared_ptr<const Loaded<analytics::DealModel>>& model,
                                                     Snapshot& snap) {
    {
      std::lock_guard lock(snap.mu);
      if (snap.deals && snap.deals->version == model->version && snap.deals->created_at == model->created_at) {
        return snap.deals;
      }
    }
    // The history is immutable once built: predict without the lock, so a
    // reader of the previous view never waits for this.
    auto view = std::make_shared<DealsView>();
    view->version = model->version;
    view->created_at = model->created_at;
    view->degenerate = model->value->degenerate();
    for (auto& p : model->value->predict(snap.history, snap.as_of)) {
      if (p.tenant_id != tenant && !p.tenant_id.empty()) continue;
      DealRow row;
      if (auto it = snap.opportunities.find(p.opportunity_id); it != snap.opportunities.end()) {
        row.contact_id = it->second.contact_id;
        row.stage = it->second.stage;
        row.value = it->second.value;
        row.stage_since = it->second.since;
      }
      row.prediction = std::move(p);
      view->rows.push_back(std::move(row));
    }
    std::stable_sort(view->rows.begin(), view->rows.end(), [](const DealRow& a, const DealRow& b) {
      return a.prediction.p_close > b.prediction.p_close;
    });
    for (std::size_t i = 0; i < view->rows.size(); ++i) view->index[view->rows[i].prediction.opportunity_id] = i;
    std::lock_guard lock(snap.mu);
    snap.deals = view;
    return std::shared_ptr<const DealsView>(view);
  }

  std::shared_ptr<const AgentsView> agent_view(Snapshot& snap) {
    {
      std::lock_guard lock(snap.mu);
      if (snap.agents) return snap.agents;
    }
    auto view = std::make_shared<AgentsView>();
    analytics::AgentForecastOptions options;
    auto forecasts = analytics::forecast_agent_closings(snap.history, snap.as_of, options);
    if (!forecasts) {
      view->status = forecasts.status();
    } else {
      for (auto& f : *forecasts) view->months[f.agent_id].push_back(std::move(f));
      for (auto& f : analytics::coaching_findings(snap.history, snap.as_of)) view->findings[f.agent_id].push_back(std::move(f));
      for (const auto& [agent, _] : view->months) view->agents.push_back(agent);
      for (const auto& [agent, _] : view->findings) {
        if (!view->months.count(agent)) view->agents.push_back(agent);
      }
      std::sort(view->agents.begin(), view->agents.end());
    }
    std::lock_guard lock(snap.mu);
    snap.agents = view;
    return view;
  }
};

PredictionRoutes::PredictionRoutes(store::Store& store, std::string model_dir, const Clock& clock)
    : impl_(std::make_unique<Impl>(store, std::move(model_dir), clock)) {}

PredictionRoutes::~PredictionRoutes() { impl_->stop(); }

Route PredictionRoutes::match(std::span<const std::string> segments, std::string* id) {
  const auto& s = segments;
  if (s.size() < 3 || s.size() > 4 || s[0] != "api" || s[1] != "predictions") return Route::kUnmatched;
  Route route = Route::kUnmatched;
  if (s[2] == "market-trends") route = Route::kPredictionMarkets;
  else if (s[2] == "deal-closure") route = Route::kPredictionDeals;
  else if (s[2] == "agent-performance") route = Route::kPredictionAgents;
  else if (s[2] == "pricing") route = Route::kPredictionPricing;
  if (s.size() == 3) return route;
  const bool takes_id = route == Route::kPredictionDeals || route == Route::kPredictionAgents;
  if (!takes_id || s[3].empty()) return Route::kUnmatched;
  *id = s[3];
  return route;
}

ApiResponse PredictionRoutes::handle(Route route, const TokenClaims& claims, bool get, bool post,
                                     std::string_view id, std::string_view query, std::string_view body,
                                     Api::Post post_fn, Api::Respond respond) {
  if (route == Route::kPredictionPricing && post) {
    if (!post_fn || !respond || body.size() > kMaxPricingBody) return pricing(claims, body);
    // The AVM and the comparables scan take milliseconds: on the pricing
    // worker, so an io thread keeps serving events meanwhile.
    const bool queued = impl_->pricing_jobs.enqueue(
        {[this, claims, body = std::string(body), post_fn, respond] {
           ApiResponse r = pricing(claims, body);
           post_fn([respond, r = std::move(r)] { respond(r); });
         },
         [post_fn, respond] {
           post_fn([respond] { respond(error_response(unavailable("server stopping"), Route::kPredictionPricing)); });
         }});
    if (!queued) return error_response(unavailable("server stopping"), route);
    ApiResponse r;
    r.deferred = true;
    r.route = route;
    return r;
  }
  if (get && route == Route::kPredictionMarkets) return market_trends(claims, query);
  if (get && (route == Route::kPredictionDeals || route == Route::kPredictionAgents)) {
    if (!post_fn || !respond) return impl_->compute(route, claims, id);
    if (auto r = impl_->ready(route, claims, id)) return std::move(*r);
    // Reading a tenant's history and predicting from it takes from
    // milliseconds to seconds: the worker does it and answers through the
    // connection's executor.
    const bool queued = impl_->enqueue(
        {[impl = impl_.get(), route, claims, id = std::string(id), post_fn, respond] {
           ApiResponse r = impl->compute(route, claims, id);
           post_fn([respond, r = std::move(r)] { respond(r); });
         },
         [route, post_fn, respond] {
           post_fn([route, respond] { respond(error_response(unavailable("server stopping"), route)); });
         }});
    if (!queued) return error_response(unavailable("server stopping"), route);
    ApiResponse r;
    r.deferred = true;
    r.route = route;
    return r;
  }
  return method_not_allowed(route);
}

void PredictionRoutes::stop() { impl_->stop(); }

void PredictionRoutes::invalidate(const std::string& tenant_id) { impl_->slot(tenant_id).generation.fetch_add(1); }

namespace {

// "horizon=N" days in 1..730 (default 90).
Result<int> parse_horizon_days(std::string_view query) {
  auto h = query_param(query, "horizon");
  if (!h) return 90;
  const std::string& t = *h;
  const bool digits = !t.empty() && t.size() <= 4 && std::all_of(t.begin(), t.end(), [](char c) { return c >= '0' && c <= '9'; });
  const int horizon_days = digits ? std::stoi(t) : 0;
  if (horizon_days < 1 || horizon_days > 730) return invalid_argument("horizon must be a number of days in 1..730");
  return horizon_days;
}

// An empty metric means any; another must be one the forecast holds.
Status check_metric(const MarketForecast& f, const std::string& metric) {
  if (metric.empty() || std::find(f.metrics.begin(), f.metrics.end(), metric) != f.metrics.end()) return Status::ok();
  std::string known;
  for (const auto& m : f.metrics) known += (known.empty() ? "" : ", ") + m;
  return invalid_argument("metric must be one of: " + known);
}

json::object forecast_row_json(const MarketForecast::Row& r) {
  return json::object{{"region", r.region}, {"metric", r.metric},   {"month", month_text(r.month)},
                      {"h", r.h},           {"point", num(r.point, 2)}, {"lower80", num(r.lower80, 2)},
                      {"upper80", num(r.upper80, 2)}};
}

// One region: every month up to the horizon, every metric unless one is asked.
json::array region_forecasts(const MarketForecast& f, const std::string& region, const std::string& metric, int months) {
  json::array list;
  for (const auto& r : f.rows) {
    if (r.region == region && r.h <= months && (metric.empty() || r.metric == metric)) list.push_back(forecast_row_json(r));
  }
  return list;
}

// All regions at the horizon, one metric.
json::array horizon_forecasts(const MarketForecast& f, const std::string& metric, int months) {
  json::array list;
  for (const auto& r : f.rows) {
    if (r.metric == metric && r.h == months) list.push_back(forecast_row_json(r));
  }
  return list;
}

// A month text ("2013-12") or null when unknown.
json::value month_or_null(const std::string& month) {
  if (month.empty()) return nullptr;
  return json::value(month);
}

// How many months before `as_of` the data of a forecast ends (null when unknown).
json::value data_age_json(const std::string& data_through, UnixSeconds as_of) {
  const auto age = analytics::months_since(data_through, as_of);
  if (!age) return nullptr;
  return *age;
}

}  // namespace

ApiResponse PredictionRoutes::market_trends(const TokenClaims& claims, std::string_view query) {
  constexpr Route kRoute = Route::kPredictionMarkets;
  auto horizon_days = parse_horizon_days(query);
  if (!horizon_days) return error_response(horizon_days.status(), kRoute);
  auto loaded = impl_->artefact(impl_->markets, claims.tenant_id, "markets", "market forecast",
                                "reai forecast --out MODEL_DIR/markets/forecast.csv");
  if (!loaded) return error_response(loaded.status(), kRoute);
  const MarketForecast& f = *(*loaded)->value;
  const int months = std::max(1, (*horizon_days + 15) / 30);
  if (*horizon_days > f.max_h * 30) {  // rounding to a month must not reach past the forecast
    return error_response(invalid_argument("horizon beyond the trained forecast: at most " + std::to_string(f.max_h * 30) +
                                         " days"),
                        kRoute);
  }
  const std::string region = query_param(query, "region").value_or("");
  std::string metric = query_param(query, "metric").value_or("");
  if (Status s = check_metric(f, metric); !s) return error_response(s, kRoute);
  json::object o;
  o["tenant_id"] = claims.tenant_id;
  o["model_version"] = (*loaded)->version;
  o["model_created_at"] = format_iso8601((*loaded)->created_at);
  // The forecast runs from the end of its data, which may be long before now:
  // its months are those after data_through, not the next months of today.
  const UnixSeconds as_of = impl_->clock.now();
  o["origin"] = month_text(f.origin);
  o["data_through"] = month_text(f.origin);
  o["as_of"] = format_iso8601(as_of);
  o["data_age_months"] = data_age_json(month_text(f.origin), as_of);
  o["horizon_days"] = *horizon_days;
  o["horizon_months"] = months;
  o["interval"] = "80%";
  if (!region.empty()) {
    json::array list = region_forecasts(f, region, metric, months);
    if (list.empty()) return error_response(not_found("no market forecast for region " + region), kRoute);
    o["region"] = region;
    o["forecasts"] = std::move(list);
    return answer(std::move(o), kRoute);
  }
  // The median price when the forecast has one.
  if (metric.empty()) {
    metric = std::find(f.metrics.begin(), f.metrics.end(), "median") != f.metrics.end() ? "median" : f.metrics.front();
  }
  o["metric"] = metric;
  o["regions"] = horizon_forecasts(f, metric, months);
  return answer(std::move(o), kRoute);
}

ApiResponse PredictionRoutes::deal_closure(const TokenClaims& claims, std::string_view opportunity_id) {
  return impl_->compute(Route::kPredictionDeals, claims, opportunity_id);
}

ApiResponse PredictionRoutes::agent_performance(const TokenClaims& claims, std::string_view agent_id) {
  return impl_->compute(Route::kPredictionAgents, claims, agent_id);
}

namespace {

// A pricing request: the listing's fields, and the market (region, metric)
// its price moves with.
struct PricingRequest {
  json::object listing;
  std::string region, metric = "median";
};

Result<PricingRequest> read_pricing_request(std::string_view body, std::string_view tenant_id) {
  auto v = parse_json(body);
  if (!v) return v.status();
  if (!v->is_object()) return invalid_argument("body must be a JSON object of listing fields");
  PricingRequest request;
  request.listing = std::move(v->as_object());
  json::object& listing = request.listing;
  // As in every body: a tenant named must be the token's (not a listing field).
  if (auto it = listing.find("tenant_id"); it != listing.end()) {
    REAI_RETURN_IF_ERROR(check_tenant(it->value(), tenant_id));
    listing.erase(it);
  }
  for (const char* key : {"region", "metric"}) {
    auto it = listing.find(key);
    if (it == listing.end()) continue;
    if (!it->value().is_string()) return invalid_argument(std::string(key) + " must be a string");
    (std::string_view(key) == "region" ? request.region : request.metric) = std::string(it->value().as_string());
    listing.erase(it);
  }
  return request;
}

// Comparables only inform the explanation: without them (no sales kept with
// the AVM, or none comparable) the price still stands.
std::vector<analytics::Comparable> comparables_of(const Avm& avm, const property::SalesTable& listing) {
  if (!avm.sales) return {};
  auto found = analytics::nearest_comparables(*avm.sales, avm.model.target(), listing, 5);
  if (!found) return {};
  return std::move(*found);
}

// The outlook of `region` in the market forecast in `dir`, and the
// forecast's version; *outlook stays empty when there is no forecast
// (the price then stands on the AVM alone, "market": null).
Status read_market_outlook(ArtefactCache<MarketForecast>& markets, const std::optional<fs::path>& dir,
                           const std::string& region, const std::string& metric,
                           std::optional<analytics::MarketOutlook>* outlook, std::string* version) {
  if (!dir) return Status::ok();
  auto market = markets.get(*dir);
  if (!market) return unavailable("market forecast does not load");
  auto o = analytics::market_outlook((*dir / "forecast.csv").string(), region, metric);
  if (!o) return not_found("no market forecast for region " + region + " and metric " + metric);
  *outlook = std::move(*o);
  *version = (*market)->version;
  return Status::ok();
}

json::array comparables_json(const std::vector<analytics::Comparable>& comparables) {
  json::array comps;
  for (const auto& c : comparables) {
    json::object h;
    for (const auto& [k, val] : c.highlights) h[k] = val;
    comps.push_back(json::object{{"row", c.row}, {"price", num(c.price, 0)}, {"distance", num(c.distance, 3)}, {"highlights", std::move(h)}});
  }
  return comps;
}

json::value market_json(const analytics::PriceRecommendation& rec, const std::string& market_version,
                        UnixSeconds as_of) {
  if (!rec.has_market) return nullptr;
  const auto& m = rec.market;
  return json::object{{"region", m.region},
                      {"metric", m.metric},
                      {"months", m.months},
                      {"from_month", month_or_null(m.from_month)},
                      {"to_month", month_or_null(m.to_month)},
                      {"data_through", month_or_null(m.data_through)},
                      {"data_age_months", data_age_json(m.data_through, as_of)},
                      {"change", num(m.change, 4)},
                      {"lower80", num(m.lower80, 4)},
                      {"upper80", num(m.upper80, 4)},
                      {"model_version", market_version}};
}

json::object pricing_json(const std::string& tenant_id, const Loaded<Avm>& avm, const analytics::PriceRecommendation& rec,
                          const std::string& market_version, UnixSeconds as_of) {
  json::object o;
  o["tenant_id"] = tenant_id;
  o["model_version"] = avm.version;
  o["model_created_at"] = format_iso8601(avm.created_at);
  o["interval"] = "80%";
  o["list_price"] = num(rec.list_price, 0);
  o["lower80"] = num(rec.lower80, 0);
  o["upper80"] = num(rec.upper80, 0);
  o["avm"] = json::object{{"predicted", num(rec.avm.predicted, 0)}, {"lower80", num(rec.avm.lower80, 0)},
                          {"upper80", num(rec.avm.upper80, 0)},     {"lower90", num(rec.avm.lower90, 0)},
                          {"upper90", num(rec.avm.upper90, 0)}};
  o["comparables"] = comparables_json(rec.comparables);
  o["as_of"] = format_iso8601(as_of);
  o["market"] = market_json(rec, market_version, as_of);
  o["explanation"] = rec.explanation;
  return o;
}

}  // namespace

ApiResponse PredictionRoutes::pricing(const TokenClaims& claims, std::string_view body) {
  constexpr Route kRoute = Route::kPredictionPricing;
  if (body.size() > kMaxPricingBody) return error_response(payload_too_large("a listing is at most 64 KiB"), kRoute);
  auto request = read_pricing_request(body, claims.tenant_id);
  if (!request) return error_response(request.status(), kRoute);
  auto table = analytics::listing_from_json(json::serialize(request->listing));
  if (!table) return error_response(table.status(), kRoute);
  auto avm = impl_->load_artefact(impl_->avms, impl_->avm_dir(claims.tenant_id), "valuation model",
                                  "reai value train --out MODEL_DIR/value");
  if (!avm) return error_response(avm.status(), kRoute);
  const Avm& a = *(*avm)->value;
  if (const auto unknown = a.model.unknown_columns(table->header); !unknown.empty()) {
    return error_response(invalid_argument("unknown field " + unknown.front()), kRoute);
  }
  const std::vector<std::string> ignored = property::drop_ignored_columns(a.model, &*table);
  if (Status s = a.model.check_cells(*table); !s) return error_response(s, kRoute);
  auto values = a.model.predict(*table);
  if (!values) return error_response(values.status(), kRoute);
  std::vector<analytics::Comparable> comparables = comparables_of(a, *table);
  std::optional<analytics::MarketOutlook> outlook;
  std::string market_version;
  if (!request->region.empty()) {
    const auto dir = impl_->artefact_dir(claims.tenant_id, "markets", impl_->markets.key_file());
    const Status s = read_market_outlook(impl_->markets, dir, request->region, request->metric, &outlook, &market_version);
    if (!s) return error_response(s, kRoute);
  }
  const UnixSeconds as_of = impl_->clock.now();
  const auto rec = analytics::recommend_price(values->front(), std::move(comparables), outlook ? &*outlook : nullptr,
                                              a.model.market_as_of(), as_of);
  json::object o = pricing_json(claims.tenant_id, **avm, rec, market_version, as_of);
  property::add_training_context(a.model, *table, 0, &o);
  o["ignored_attributes"] = json::array(ignored.begin(), ignored.end());
  return answer(std::move(o), kRoute);
}

}  // namespace reai::server
