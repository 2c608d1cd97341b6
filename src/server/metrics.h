// Server metrics: lock-free counters and histograms, rendered as Prometheus
// text, plus per-tenant scoring latency and event rates for
// /api/realtime/performance. Labels are route templates, never ids.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/cache_lookups.h"

namespace reai::server {

enum class Route : std::uint8_t {
  kEvents = 0,
  kContact,
  kContactScore,
  kContactScores,
  kLeads,
  kScoreTrigger,
  kRealtimeScoring,
  kPerformance,
  kAdminReload,
  kContactEvents,
  kLeadDistribution,
  kHealthz,
  kReadyz,
  kMetrics,
  kIndex,
  kStatic,
  kGhlWebhook,
  kGhlWorkflow,
  kGhlDeliveries,
  kGhlRetry,
  kLeadMatches,
  kPropertiesMatch,
  kPropertiesValue,
  kListing,
  kPredictionMarkets,
  kPredictionDeals,
  kPredictionAgents,
  kPredictionPricing,
  kGhlOAuth,
  kGhlOutbox,
  kGhlConfig,
  kAgentTrackRecord,
  kUnmatched,
};
inline constexpr int kRouteCount = static_cast<int>(Route::kUnmatched) + 1;
std::string_view route_label(Route route);

// A fixed-bucket histogram (seconds) with atomic counters.
class Histogram {
 public:
  static constexpr std::array<double, 14> kBounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                     0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5};
  void observe(double seconds);
  // Appends the _bucket/_sum/_count lines; `labels` like `route="/x"` or "".
  void render(std::string_view name, std::string_view labels, std::string* out) const;

 private:
  std::array<std::atomic<std::uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_ns_{0};
};

// Log-linear latency histogram in nanoseconds (about 12% resolution) for
// percentiles.
class LatencyRecorder {
 public:
  void record(std::int64_t ns);
  // Upper edge of the bucket holding quantile q (0..1); 0 when empty.
  std::int64_t percentile(double q) const;
  std::uint64_t count() const { return count_.load(std::memory_order_relaxed); }

 private:
  static constexpr int kSubBuckets = 8;
  static constexpr int kBuckets = 64 * kSubBuckets;
  std::array<std::atomic<std::uint64_t>, kBuckets> buckets_{};
  std::atomic<std::uint64_t> count_{0};
};

// Events per second over the last minute (one slot per second).
class RateCounter {
 public:
  void add(std::int64_t now_second);
  // Mean events/s over the `window` seconds before now_second (<= 60).
  double rate(std::int64_t now_second, int window) const;

 private:
  static constexpr int kSlots = 64;
  struct Slot {
    std::atomic<std::int64_t> second{-1};
    std::atomic<std::uint64_t> count{0};
  };
  std::array<Slot, kSlots> slots_{};
};

struct TenantMetrics {
  LatencyRecorder scoring_latency;
  RateCounter events;
  std::atomic<std::uint64_t> fallback_scores{0};
};

class Metrics {
 public:
  void record_request(Route route, int http_status, double seconds);
  // One scored event of `tenant`: latency, rate, fallback.
  void record_score(std::string_view tenant_id, std::int64_t latency_ns, bool fallback);
  void record_ws_drop() { ws_queue_drops_.fetch_add(1, std::memory_order_relaxed); }
  // An accept that failed (e.g. no file descriptor left). Any thread.
  void record_accept_failure() { accept_failures_.fetch_add(1, std::memory_order_relaxed); }
  // Metrics of one tenant; created on first use; never freed while the
  // Metrics lives.
  TenantMetrics& tenant(std::string_view tenant_id);
  std::uint64_t ws_queue_drops() const { return ws_queue_drops_.load(std::memory_order_relaxed); }
  std::uint64_t accept_failures() const { return accept_failures_.load(std::memory_order_relaxed); }
  std::uint64_t events_total() const { return events_total_.load(std::memory_order_relaxed); }
  std::uint64_t fallback_total() const { return fallback_total_.load(std::memory_order_relaxed); }

  // Counters, histograms; `extra` (gauges owned by others) is appended.
  std::string render_prometheus(std::string_view extra) const;

 private:
  static constexpr int kMinCode = 100;
  static constexpr int kCodes = 500;
  struct RouteMetrics {
    std::array<std::atomic<std::uint64_t>, kCodes> by_code{};
    Histogram duration;
  };
  std::array<RouteMetrics, kRouteCount> routes_{};
  Histogram scoring_latency_;
  std::atomic<std::uint64_t> events_total_{0};
  std::atomic<std::uint64_t> fallback_total_{0};
  std::atomic<std::uint64_t> ws_queue_drops_{0};
  std::atomic<std::uint64_t> accept_failures_{0};
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  mutable std::mutex tenants_mu_;
  std::unordered_map<std::string, std::unique_ptr<TenantMetrics>, StringHash, std::equal_to<>> tenants_;
};

// Appends Prometheus text exposition (format 0.0.4) to a string: a family's
// HELP and TYPE lines, then its samples. The one writer of every /metrics
// section (server counters, event queue, GHL write-back, lead state), so the
// format is spelled once. Not thread-safe; the string is the caller's.
class PrometheusText {
 public:
  explicit PrometheusText(std::string* out) : out_(out) {}
  // "# HELP name help" and "# TYPE name type" (counter, gauge, histogram).
  PrometheusText& family(std::string_view name, std::string_view type, std::string_view help);
  // "name{labels} value"; `labels` without braces, empty for none.
  PrometheusText& sample(std::string_view name, std::string_view labels, std::uint64_t value);
  // "name{labels} value" for a fraction (shortest round-trip form).
  PrometheusText& fraction(std::string_view name, std::string_view labels, double value);
  // A family of one unlabelled sample.
  PrometheusText& counter(std::string_view name, std::string_view help, std::uint64_t value) {
    return family(name, "counter", help).sample(name, "", value);
  }
  PrometheusText& gauge(std::string_view name, std::string_view help, std::uint64_t value) {
    return family(name, "gauge", help).sample(name, "", value);
  }

 private:
  std::string* out_;
};


// What /metrics and /api/realtime/performance say of the caches, the same
// with one instance or several: lookups of lead feature snapshots (the state
// a lead's events fold into, TTL 300 s shared) and of warm scores (a lead's
// last good score, TTL 3600 s, read when no model can score it).
struct CacheFigures {
  CacheLookups feature_snapshots;
  std::uint64_t snapshots_from_other_instances = 0;  // of the snapshot hits
  CacheLookups warm_scores;
  std::uint64_t warm_score_entries = 0;    // in the cache (Redis: the deployment's)
  std::uint64_t warm_score_evictions = 0;  // expired or pushed out by the size bound
  // Both kinds together.
  CacheLookups all() const {
    return {feature_snapshots.hits + warm_scores.hits, feature_snapshots.misses + warm_scores.misses};
  }
};
// reai_cache_{hits,misses}_total and reai_cache_hit_ratio by kind
// ("feature_snapshot", "warm_score"), reai_cache_entries and
// reai_cache_evictions_total (warm scores).
void append_cache_metrics(const CacheFigures& figures, std::string* out);

// Seconds of a monotonic clock, for rates (not the injectable Clock: rates
// are about real traffic).
std::int64_t monotonic_seconds();

}  // namespace reai::server
