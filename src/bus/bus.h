// Bus: ordered per-tenant publish/subscribe of updates (score changes, ...),
// with a bounded replay buffer so a client that reconnects with `since=SEQ`
// misses nothing. Cache: key/value with per-entry TTL and hit/miss counters.
// In-process implementations are the embedded default; Redis comes later
// behind the same interfaces. All implementations are thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/time.h"

namespace reai::bus {

struct BusMessage {
  std::string tenant_id;
  std::uint64_t seq = 0;  // 1, 2, 3... per tenant, no gaps
  std::string topic;      // e.g. "score_update"
  // Shared so fan-out to thousands of subscribers copies no bytes.
  std::shared_ptr<const std::string> payload;
};

struct ReplayResult {
  std::vector<BusMessage> messages;  // seq > since, oldest first
  // false when messages after `since` were already evicted from the buffer,
  // so the caller knows it must resynchronise (e.g. re-read current scores).
  bool complete = true;
};

using SubscriptionId = std::uint64_t;

class Bus {
 public:
  using Handler = std::function<void(const BusMessage&)>;
  virtual ~Bus() = default;

  // Assigns the tenant's next seq, keeps the message in the tenant's replay
  // buffer and delivers it to every subscriber, in seq order per tenant.
  // Handlers run on the publishing thread (in-process) and must be quick and
  // must not publish or (un)subscribe from inside. Returns the seq.
  virtual Result<std::uint64_t> publish(std::string_view tenant_id, std::string_view topic,
                                        std::shared_ptr<const std::string> payload) = 0;
  // Subscribes to all tenants. The handler lives until unsubscribe returns.
  virtual SubscriptionId subscribe(Handler handler) = 0;
  virtual void unsubscribe(SubscriptionId id) = 0;
  // Messages of the tenant with seq > since still buffered.
  virtual Result<ReplayResult> since(std::string_view tenant_id, std::uint64_t since_seq) = 0;
  // Last seq assigned for the tenant (0 when none).
  virtual std::uint64_t last_seq(std::string_view tenant_id) = 0;
  // OK when the bus works; Unavailable with the reason otherwise.
  virtual Status health() = 0;
};

// Replay buffer keeps the last `replay_capacity` messages per tenant.
std::unique_ptr<Bus> make_in_process_bus(std::size_t replay_capacity = 65536);

struct CacheStats {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t entries = 0;
  std::uint64_t evictions = 0;  // expired or pushed out by the size bound
  double hit_rate() const { return hits + misses ? double(hits) / double(hits + misses) : 0.0; }
};

class Cache {
 public:
  virtual ~Cache() = default;
  // nullopt on miss or when the entry expired (expiry counts as a miss).
  virtual std::optional<std::string> get(std::string_view key) = 0;
  // Stores `value` until now + ttl_seconds.
  virtual void put(std::string_view key, std::string value, UnixSeconds ttl_seconds) = 0;
  virtual void erase(std::string_view key) = 0;
  virtual CacheStats stats() const = 0;
  virtual Status health() = 0;
};

// Time-to-live read from `clock`; at most `max_entries` (least recently used
// go first). The clock must outlive the cache.
std::unique_ptr<Cache> make_in_process_cache(const Clock& clock, std::size_t max_entries = 1'000'000);

// TTLs of the core issue.
inline constexpr UnixSeconds kFeatureSnapshotTtl = 300;
inline constexpr UnixSeconds kWarmScoreTtl = 3600;

}  // namespace reai::bus
