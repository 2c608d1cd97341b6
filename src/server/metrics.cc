#include "server/metrics.h"

#include <bit>
#include <chrono>
#include <cstdio>

#include "core/json_text.h"

namespace reai::server {

std::string_view route_label(Route route) {
  static constexpr std::array<std::string_view, kRouteCount> kLabels = {
      "/api/events",        "/api/contacts/{id}",          "/api/contacts/{id}/score",
      "/api/contacts/{id}/scores", "/api/leads",            "/api/realtime/score-trigger",
      "/api/realtime/scoring/{tenant_id}", "/api/realtime/performance", "/api/admin/reload",
      "/api/contacts/{id}/events", "/api/leads/distribution",
      "/healthz",           "/readyz",                     "/metrics",
      "/",                  "static",                      "/api/ghl/webhook",
      "/api/ghl/workflow/{tenant}", "/api/admin/ghl/deliveries", "/api/admin/ghl/deliveries/{id}/retry",
      "/api/leads/{id}/matches", "/api/properties/match", "/api/properties/value", "/api/listings/{id}",
      "/api/predictions/market-trends", "/api/predictions/deal-closure/{id}", "/api/predictions/agent-performance/{id}",
      "/api/predictions/pricing",
      "/api/ghl/oauth/callback", "/api/admin/ghl/outbox", "/api/admin/ghl/config",
      "/api/agents/{id}/track-record", "unmatched"};
  return kLabels[static_cast<int>(route)];
}

std::int64_t monotonic_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void Histogram::observe(double seconds) {
  std::size_t i = 0;
  while (i < kBounds.size() && seconds > kBounds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_ns_.fetch_add(seconds > 0 ? std::uint64_t(seconds * 1e9) : 0, std::memory_order_relaxed);
}

void Histogram::render(std::string_view name, std::string_view labels, std::string* out) const {
  char buf[256];
  std::uint64_t cumulative = 0;
  const char* sep = labels.empty() ? "" : ",";
  for (std::size_t i = 0; i <= kBounds.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    if (i < kBounds.size()) {
      std::snprintf(buf, sizeof buf, "%.*s_bucket{%.*s%sle=\"%g\"} %llu\n", int(name.size()), name.data(),
                    int(labels.size()), labels.data(), sep, kBounds[i],
                    static_cast<unsigned long long>(cumulative));
    } else {
      std::snprintf(buf, sizeof buf, "%.*s_bucket{%.*s%sle=\"+Inf\"} %llu\n", int(name.size()), name.data(),
                    int(labels.size()), labels.data(), sep, static_cast<unsigned long long>(cumulative));
    }
    out->append(buf);
  }
  std::string braces;
  if (!labels.empty()) {
    braces.push_back('{');
    braces.append(labels);
    braces.push_back('}');
  }
  std::snprintf(buf, sizeof buf, "%.*s_sum%s %.9f\n%.*s_count%s %llu\n", int(name.size()), name.data(),
                braces.c_str(), double(sum_ns_.load(std::memory_order_relaxed)) / 1e9, int(name.size()),
                name.data(), braces.c_str(), static_cast<unsigned long long>(count_.load(std::memory_order_relaxed)));
  out->append(buf);
}

void LatencyRecorder::record(std::int64_t ns) {
  std::uint64_t v = ns > 0 ? std::uint64_t(ns) : 1;
  int msb = 63 - std::countl_zero(v);
  int sub = msb >= 3 ? int((v >> (msb - 3)) & (kSubBuckets - 1)) : int(v & (kSubBuckets - 1));
  int index = msb * kSubBuckets + sub;
  buckets_[std::size_t(index)].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

std::int64_t LatencyRecorder::percentile(double q) const {
  const std::uint64_t total = count();
  if (total == 0) return 0;
  const auto rank = std::uint64_t(q * double(total - 1)) + 1;
  std::uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets_[std::size_t(i)].load(std::memory_order_relaxed);
    if (seen >= rank) {
      const int msb = i / kSubBuckets;
      const int sub = i % kSubBuckets;
      if (msb < 3) return std::int64_t(sub) + 1;
      const std::uint64_t base = std::uint64_t(1) << msb;
      return std::int64_t(base + (std::uint64_t(sub + 1) << (msb - 3)));
    }
  }
  return 0;
}

void RateCounter::add(std::int64_t now_second) {
  Slot& slot = slots_[std::size_t(now_second % kSlots)];
  std::int64_t seen = slot.second.load(std::memory_order_relaxed);
  if (seen != now_second && slot.second.compare_exchange_strong(seen, now_second, std::memory_order_relaxed)) {
    // The first writer of a new second resets the slot; a racing writer's
    // increment may be lost, which a rate display tolerates.
    slot.count.store(0, std::memory_order_relaxed);
  }
  slot.count.fetch_add(1, std::memory_order_relaxed);
}

double RateCounter::rate(std::int64_t now_second, int window) const {
  std::uint64_t sum = 0;
  for (int i = 1; i <= window; ++i) {
    const Slot& slot = slots_[std::size_t((now_second - i) % kSlots)];
    if (slot.second.load(std::memory_order_relaxed) == now_second - i) {
      sum += slot.count.load(std::memory_order_relaxed);
    }
  }
  return window > 0 ? double(sum) / window : 0.0;
}

void Metrics::record_request(Route route, int http_status, double seconds) {
  RouteMetrics& r = routes_[static_cast<int>(route)];
  int code = http_status - kMinCode;
  if (code < 0 || code >= kCodes) code = 500 - kMinCode;
  r.by_code[std::size_t(code)].fetch_add(1, std::memory_order_relaxed);
  r.duration.observe(seconds);
}

TenantMetrics& Metrics::tenant(std::string_view tenant_id) {
  std::lock_guard lock(tenants_mu_);
  auto it = tenants_.find(tenant_id);
  if (it == tenants_.end()) {
    it = tenants_.emplace(std::string(tenant_id), std::make_unique<TenantMetrics>()).first;
  }
  return *it->second;
}

void Metrics::record_score(std::string_view tenant_id, std::int64_t latency_ns, bool fallback) {
  TenantMetrics& t = tenant(tenant_id);
  t.scoring_latency.record(latency_ns);
  t.events.add(monotonic_seconds());
  events_total_.fetch_add(1, std::memory_order_relaxed);
  scoring_latency_.observe(double(latency_ns) / 1e9);
  if (fallback) {
    t.fallback_scores.fetch_add(1, std::memory_order_relaxed);
    fallback_total_.fetch_add(1, std::memory_order_relaxed);
  }
}

PrometheusText& PrometheusText::family(std::string_view name, std::string_view type, std::string_view help) {
  out_->append("# HELP ").append(name).append(" ").append(help).append("\n# TYPE ").append(name);
  out_->append(" ").append(type).append("\n");
  return *this;
}

PrometheusText& PrometheusText::sample(std::string_view name, std::string_view labels, std::uint64_t value) {
  out_->append(name);
  if (!labels.empty()) out_->append("{").append(labels).append("}");
  out_->append(" ").append(std::to_string(value)).append("\n");
  return *this;
}

PrometheusText& PrometheusText::fraction(std::string_view name, std::string_view labels, double value) {
  out_->append(name);
  if (!labels.empty()) out_->append("{").append(labels).append("}");
  out_->push_back(' ');
  append_shortest_double(value, out_);
  out_->push_back('\n');
  return *this;
}

void append_cache_metrics(const CacheFigures& f, std::string* out) {
  constexpr std::string_view kSnapshot = "kind=\"feature_snapshot\"", kWarm = "kind=\"warm_score\"";
  PrometheusText(out)
      .family("reai_cache_hits_total", "counter",
              "Cache lookups served: lead feature snapshots (state at hand, here or another instance's) and warm "
              "scores.")
      .sample("reai_cache_hits_total", kSnapshot, f.feature_snapshots.hits)
      .sample("reai_cache_hits_total", kWarm, f.warm_scores.hits)
      .family("reai_cache_misses_total", "counter",
              "Cache lookups not served: a lead's state refolded from the store or new here; no warm score.")
      .sample("reai_cache_misses_total", kSnapshot, f.feature_snapshots.misses)
      .sample("reai_cache_misses_total", kWarm, f.warm_scores.misses)
      .family("reai_cache_hit_ratio", "gauge", "Hits over lookups since start (0 before any).")
      .fraction("reai_cache_hit_ratio", kSnapshot, f.feature_snapshots.hit_rate())
      .fraction("reai_cache_hit_ratio", kWarm, f.warm_scores.hit_rate())
      .family("reai_cache_entries", "gauge", "Entries in the cache (Redis: the deployment's).")
      .sample("reai_cache_entries", kWarm, f.warm_score_entries)
      .family("reai_cache_evictions_total", "counter", "Entries expired or pushed out by the size bound.")
      .sample("reai_cache_evictions_total", kWarm, f.warm_score_evictions);
}

std::string Metrics::render_prometheus(std::string_view extra) const {
  std::string out;
  out.reserve(16384);
  char buf[256];
  PrometheusText text(&out);
  text.family("http_requests_total", "counter", "HTTP requests by route template and status code.");
  for (int r = 0; r < kRouteCount; ++r) {
    for (int c = 0; c < kCodes; ++c) {
      const std::uint64_t n = routes_[std::size_t(r)].by_code[std::size_t(c)].load(std::memory_order_relaxed);
      if (n == 0) continue;
      const std::string_view label = route_label(static_cast<Route>(r));
      std::snprintf(buf, sizeof buf, "http_requests_total{route=\"%.*s\",code=\"%d\"} %llu\n", int(label.size()),
                    label.data(), c + kMinCode, static_cast<unsigned long long>(n));
      out.append(buf);
    }
  }
  text.family("http_request_duration_seconds", "histogram", "HTTP request latency by route template.");
  for (int r = 0; r < kRouteCount; ++r) {
    std::string labels = "route=\"";
    labels.append(route_label(static_cast<Route>(r)));
    labels.push_back('"');
    routes_[std::size_t(r)].duration.render("http_request_duration_seconds", labels, &out);
  }
  text.family("reai_scoring_latency_seconds", "histogram", "Feature update + prediction + reasons per event.");
  scoring_latency_.render("reai_scoring_latency_seconds", "", &out);
  text.counter("reai_events_total", "Events scored.", events_total())
      .counter("reai_fallback_scores_total", "Scores from the rule-based fallback.", fallback_total())
      .counter("reai_websocket_queue_drops_total", "WebSocket clients dropped for a full queue.", ws_queue_drops())
      .counter("reai_http_accept_failures_total", "Connections not accepted (e.g. no file descriptor left).",
               accept_failures());
  out.append(extra);
  return out;
}

}  // namespace reai::server
