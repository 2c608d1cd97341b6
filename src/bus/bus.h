// Bus: ordered per-tenant publish/subscribe of updates (score changes, ...),
// with a bounded replay buffer so a client that reconnects with `since=SEQ`
// misses nothing. Cache: key/value with per-entry TTL and hit/miss counters.
// In-process implementations are the embedded default; Redis implementations
// share them across instances. All implementations are thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
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

// One message of publish_each: what publish() takes, owned, so a caller can
// collect a batch's messages before sending them.
struct Outgoing {
  std::string tenant_id;
  std::string topic;
  std::shared_ptr<const std::string> payload;  // null: empty
};

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
  // publish() of each message of `messages`, in the given order, with the
  // same guarantees: each tenant's messages take its next seqs in that order
  // (no gaps), are kept for since() and delivered in seq order, and the call
  // returns once they all are (as publish() does for one). Answers each
  // message's seq, in order; InvalidArgument (nothing published) when a
  // message has an empty tenant; an empty span publishes nothing. Messages
  // of other publishers may take seqs between a tenant's messages of the
  // batch. The Redis bus sends the whole batch in one round trip and waits
  // once for its own delivery; while Redis is down each message is
  // published as publish() publishes it. In-process: publish() in a loop.
  virtual Result<std::vector<std::uint64_t>> publish_each(std::span<const Outgoing> messages) = 0;
  // Subscribes to all tenants. The handler lives until unsubscribe returns.
  virtual SubscriptionId subscribe(Handler handler) = 0;
  virtual void unsubscribe(SubscriptionId id) = 0;
  // Messages of the tenant with seq > since still buffered.
  virtual Result<ReplayResult> since(std::string_view tenant_id, std::uint64_t since_seq) = 0;
  // Last seq assigned for the tenant (0 when none).
  virtual std::uint64_t last_seq(std::string_view tenant_id) = 0;
  // OK when the bus works; Unavailable with the reason otherwise.
  virtual Status health() = 0;

  // Notices: messages between the instances themselves (e.g. a counted
  // track-record outcome), beside the tenants' sequenced streams. A notice
  // takes no seq (BusMessage::seq is 0), is never kept for since() and never
  // reaches subscribe()'s handlers (so no browser sees one and no client's
  // seq numbering moves); it reaches the notice handlers of every instance,
  // this one's included, once each. No order is promised between notices.
  // Handlers follow the rules of subscribe()'s (quick; they must not notify,
  // publish or (un)subscribe from inside).
  // OK when handed over; InvalidArgument for an empty tenant;
  // ResourceExhausted when it had to be held (the bus's backend is down) and
  // the hold is full: that notice is dropped.
  virtual Status notify(std::string_view tenant_id, std::string_view topic,
                        std::shared_ptr<const std::string> payload) = 0;
  virtual SubscriptionId subscribe_notices(Handler handler) = 0;
  // On return the handler is not running and will not run again.
  virtual void unsubscribe_notices(SubscriptionId id) = 0;
};

// Replay buffer keeps the last `replay_capacity` messages per tenant.
// Notices go to this process's notice handlers only, on the notifying
// thread, before notify returns.
std::unique_ptr<Bus> make_in_process_bus(std::size_t replay_capacity = 65536);

// publish_each as publish() in a loop: `bus.publish` of each message alone, in
// order (the in-process bus's publish_each, and the Redis bus's while Redis is
// down). InvalidArgument, before any is published, when a tenant id is empty;
// else the first failing publish's status (the earlier ones stay published).
Result<std::vector<std::uint64_t>> publish_each_alone(Bus& bus, std::span<const Outgoing> messages);

struct CacheStats {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  std::uint64_t entries = 0;
  std::uint64_t evictions = 0;  // expired or pushed out by the size bound
  double hit_rate() const { return hits + misses ? double(hits) / double(hits + misses) : 0.0; }
};

// One entry of Cache::put_each: what put() takes, owned, so a caller can
// collect a batch's entries before sending them.
struct CachePut {
  std::string key;
  std::string value;
  UnixSeconds ttl_seconds = 0;
};

class Cache {
 public:
  virtual ~Cache() = default;
  // nullopt on miss or when the entry expired (expiry counts as a miss).
  virtual std::optional<std::string> get(std::string_view key) = 0;
  // Stores `value` until now + ttl_seconds.
  virtual void put(std::string_view key, std::string value, UnixSeconds ttl_seconds) = 0;
  // put() of each entry of `entries`, in the given order (a key given twice
  // keeps its later value and TTL; a non-positive TTL erases it). Redis: one
  // round trip for the whole call (none when empty), trimming to the size
  // bound once, after all of them: the entries that survive are those put()
  // in turn would leave (evictions may count fewer); unreachable, nothing
  // is stored, as put(). In-process: put() in a loop.
  virtual void put_each(std::span<const CachePut> entries) = 0;
  virtual void erase(std::string_view key) = 0;
  virtual CacheStats stats() const = 0;
  // OK when the cache works; Unavailable with the reason otherwise. Checks
  // the backend itself (a remote cache pings it, at most once per backoff
  // while it is down), so the answer does not depend on lookups being made.
  virtual Status health() = 0;
};

// Time-to-live read from `clock`; at most `max_entries` (least recently used
// go first). The clock must outlive the cache.
std::unique_ptr<Cache> make_in_process_cache(const Clock& clock, std::size_t max_entries = 1'000'000);

// Where a Redis deployment lives. Every key reai writes starts with `prefix`,
// so several deployments (or test runs) can share one server.
struct RedisEndpoint {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  // Non-empty: connect to this Unix-domain socket instead of host:port (Redis
  // on the same host: every command then skips the TCP stack, which is most
  // of an instance's CPU per Redis round trip).
  std::string unix_socket;
  std::string prefix = "reai:";
};

// Redis bus: seqs come from Redis (INCR per tenant, atomic with the append to
// the tenant's replay stream), so they are global across instances; `since`
// reads that stream from any instance; a reader thread with its own
// connection delivers every instance's messages to local subscribers in seq
// order (handlers run on that thread; publish returns once its own message
// was delivered here). When Redis is unreachable, publish delivers locally
// with local seqs and health() says so; on return, seq counters are raised
// past the local ones and a "resync" message goes to every tenant this
// instance knows, since updates may have been missed meanwhile.
// Notices travel on the same instance-wide stream (no seq, no tenant
// stream), so a reader that lost its connection resumes them too; handlers
// run on the reader thread, this instance's own notices included. While
// Redis is unreachable notices are held here (at most `replay_capacity`) and
// sent when it returns.
// The constructor never fails: an unreachable server starts degraded.
std::unique_ptr<Bus> make_redis_bus(RedisEndpoint endpoint, std::size_t replay_capacity = 65536);

// Redis cache: values live in Redis (shared by instances); expiry is judged by
// `clock` (Redis's own TTL only collects garbage); at most `max_entries`
// across the deployment, least recently used first. hits/misses/evictions
// count this instance's calls; entries is the deployment's count. get, put
// and put_each are one Lua script each (put_each: for all its entries).
// Redis unreachable: get misses, put/put_each/erase do nothing, health()
// says so, and it reconnects with backoff. The clock must outlive the cache.
std::unique_ptr<Cache> make_redis_cache(RedisEndpoint endpoint, const Clock& clock,
                                        std::size_t max_entries = 1'000'000);

// From a --bus / --cache flag: "" or "inprocess" -> in-process;
// "redis://host[:port][?prefix=NAME]" -> Redis. InvalidArgument otherwise.
Result<std::unique_ptr<Bus>> open_bus(std::string_view url);
Result<std::unique_ptr<Cache>> open_cache(std::string_view url, const Clock& clock);

// Leases: a short exclusive hold on a name (one lead), so one instance at a
// time works on it. A lease lapses by itself after `hold`, so a holder that
// dies blocks the name for at most that long. The in-process implementation
// (the embedded default) is not shared: with it every instance is alone.
//
// Beside each name the service keeps, shared like the lease itself:
// - marks: strings anyone adds without the lease (e.g. "an event of this lead
//   is being stored"), each lapsing `ttl` after it was (last) added unless a
//   holder removes it as it gives the lease back;
// - a stamp: a number (0 = none) only a holder sets, as it gives the lease
//   back; it lapses `ttl` after it was set.
// Both come with the lease (no extra round trip) or, without it, from peek().
// The stamp may carry a value (e.g. the state it names), set with it in the
// same release and lapsing with it, read by stamped_value(): a holder shares
// its state and gives the lease back in one round trip.
// Thread-safe.
struct LeaseState {
  std::uint64_t stamp = 0;
  std::vector<std::string> marks;  // live ones, in no particular order
};
struct Lease {
  std::string token;  // gives the lease back
  LeaseState state;   // as it was when the lease was taken
};
// What a holder changes as it gives the lease back: atomically with the
// release, and only while its token still holds the lease.
struct LeaseUpdate {
  std::uint64_t stamp = 0;               // 0: the stamp is left as it is
  std::chrono::milliseconds stamp_ttl{0};  // > 0 whenever stamp is
  std::string stamped_value;             // with a stamp: replaces the value it carries
  std::vector<std::string> done_marks;   // removed
};
struct LeaseMark {
  std::string name;
  std::string mark;
};
// One lease given back by release_each: as release(name, token, update).
struct LeaseRelease {
  std::string name;
  std::string token;
  LeaseUpdate update;
};

class Leases {
 public:
  virtual ~Leases() = default;
  // Takes the lease on `name` for at most `hold`, waiting up to `wait` while
  // another holder has it. Answers the token that releases it and the name's
  // state; ResourceExhausted when still held elsewhere after `wait`;
  // Unavailable when the backing service cannot be reached (callers then
  // work alone).
  virtual Result<Lease> acquire(std::string_view name, std::chrono::milliseconds hold,
                                std::chrono::milliseconds wait) = 0;
  // Gives the lease back, applying `update`, when `token` still holds it; a
  // lapsed lease that someone else took since is left alone (and so is its
  // state: the update is dropped).
  virtual void release(std::string_view name, std::string_view token, const LeaseUpdate& update) = 0;
  // Takes the leases on every name of `names` for at most `hold` each, all in
  // one round trip and without waiting (a holder of many names polls none).
  // Answers one outcome per name, in order: the Lease as acquire() answers
  // it, or ResourceExhausted for a name held elsewhere, which neither blocks
  // nor fails the others (a name given twice: its second is held by its
  // first). Unavailable for the whole call when the service cannot be
  // reached (nothing taken).
  virtual Result<std::vector<Result<Lease>>> acquire_each(std::span<const std::string> names,
                                                          std::chrono::milliseconds hold) = 0;
  // Gives back every lease of `releases` as release() gives back each (a
  // lapsed one, taken since by someone else, is left alone with its state),
  // all in one round trip.
  virtual void release_each(std::span<const LeaseRelease> releases) = 0;
  // Adds each mark to its name (all in one round trip), alive for `ttl`.
  // Unavailable when the service cannot be reached (nothing added).
  virtual Status mark(const std::vector<LeaseMark>& marks, std::chrono::milliseconds ttl) = 0;
  // The name's state without taking the lease.
  virtual Result<LeaseState> peek(std::string_view name) = 0;
  // The value the name's stamp carries ("" when no stamp, or it carries
  // none); it may belong to a newer stamp than one read before, so callers
  // check it names the stamp they expect. Unavailable when unreachable.
  virtual Result<std::string> stamped_value(std::string_view name) = 0;
  // Drops the name's stamp and its value without the lease (so the next
  // holder finds none); nothing happens when the service is unreachable.
  virtual void drop_stamp(std::string_view name) = 0;
  // True when other instances see the same leases (and so share state).
  virtual bool shared() const = 0;
  // OK when leases work; Unavailable with the reason otherwise.
  virtual Status health() = 0;
};

std::unique_ptr<Leases> make_in_process_leases();
// Redis leases: one Lua script each for acquire_each (SET NX PX with a random
// token, and the state read, for every name of the call), release_each
// (token check, state update with the stamped value, delete, for every
// lease), mark (every name of the call) and peek; acquire and release are
// the first two for one name; one GET for stamped_value, one DEL for
// drop_stamp. A busy lease is polled with backoff
// (1 ms doubling to 16 ms). Redis unreachable: acquire answers Unavailable at
// once until the reconnect backoff (100 ms doubling to 5 s) is due.
std::unique_ptr<Leases> make_redis_leases(RedisEndpoint endpoint);
// From the --cache flag (leases live beside the shared cache): "" or
// "inprocess" -> in-process; "redis://..." -> Redis. InvalidArgument otherwise.
Result<std::unique_ptr<Leases>> open_leases(std::string_view url);

// TTLs of the core issue.
inline constexpr UnixSeconds kFeatureSnapshotTtl = 300;
inline constexpr UnixSeconds kWarmScoreTtl = 3600;

}  // namespace reai::bus
