// Redis Cache. Keys (P = the deployment prefix):
//   P c:K     - "EXPIRES_AT\n" + value, with Redis TTL = ttl (garbage collection)
//   P c:lru   - sorted set of live keys scored by last use
//   P c:clock - the counter that orders uses (so ties within a second break)
// Expiry follows the injected Clock (like the in-process cache, and the same
// time the rest of the server sees), hence the deadline inside the value.
// Each call is one Lua script, atomic across instances (put_each: one for
// all its entries).
//
// Connections: a small pool, each checked out by one caller at a time, so
// threads do not queue behind one socket. When Redis is unreachable calls
// fail fast until the backoff deadline, then one caller retries.
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <span>
#include <vector>

#include "bus/bus.h"
#include "bus/redis_connection.h"

namespace reai::bus {
namespace {

using redis::Connection;

// KEYS: value key, lru, clock. ARGV: now. Returns the stored text or nil;
// an entry past its deadline is removed and reported as -1.
const redis::LuaScript kGetScript(R"lua(
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('ZREM', KEYS[2], KEYS[1])
  return false
end
local nl = string.find(v, '\n', 1, true)
if tonumber(string.sub(v, 1, nl - 1)) <= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], KEYS[1])
  return -1
end
redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), KEYS[1])
return string.sub(v, nl + 1)
)lua");

// KEYS: value key, lru, clock. ARGV: stored text, ttl seconds, max entries.
// Returns how many least recently used entries were pushed out.
const redis::LuaScript kPutScript(R"lua(
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), KEYS[1])
local excess = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[3])
if excess <= 0 then return 0 end
local victims = redis.call('ZPOPMIN', KEYS[2], excess)
for i = 1, #victims, 2 do redis.call('DEL', victims[i]) end
return excess
)lua");

// put_each's: KEYS: lru, clock, then each entry's value key. ARGV: max
// entries, then each entry's stored text and ttl seconds (<= 0: erase). The
// entries take consecutive use stamps in order; one trim at the end.
// Returns how many least recently used entries were pushed out.
const redis::LuaScript kPutEachScript(R"lua(
local n = #KEYS - 2
local first = redis.call('INCRBY', KEYS[2], n) - n
for i = 1, n do
  local key, ttl = KEYS[i + 2], tonumber(ARGV[2 * i + 1])
  if ttl > 0 then
    redis.call('SET', key, ARGV[2 * i], 'EX', ttl)
    redis.call('ZADD', KEYS[1], first + i, key)
  else
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], key)
  end
end
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[1])
if excess <= 0 then return 0 end
local victims = redis.call('ZPOPMIN', KEYS[1], excess)
for i = 1, #victims, 2 do redis.call('DEL', victims[i]) end
return excess
)lua");

constexpr std::size_t kPoolSize = 4;
constexpr auto kCommandTimeout = std::chrono::milliseconds(500);
constexpr auto kMinBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::milliseconds(5000);

class RedisCache final : public Cache {
 public:
  RedisCache(RedisEndpoint endpoint, const Clock& clock, std::size_t max_entries)
      : endpoint_(std::move(endpoint)),
        clock_(clock),
        max_entries_(std::to_string(max_entries)),
        lru_key_(endpoint_.prefix + "c:lru"),
        clock_key_(endpoint_.prefix + "c:clock"),
        pool_(kPoolSize) {
    for (auto& slot : pool_) free_.push_back(&slot);
    (void)run({"PING"});  // so health() tells the truth from the start
  }

  std::optional<std::string> get(std::string_view key) override {
    const std::string k = value_key(key);
    const std::string now = std::to_string(clock_.now());
    auto reply = run_script(kGetScript, {"3", k, lru_key_, clock_key_, now});
    if (reply && (*reply)->type == REDIS_REPLY_STRING) {
      hits_.fetch_add(1, std::memory_order_relaxed);
      return redis::reply_string(reply->get());
    }
    if (reply && (*reply)->type == REDIS_REPLY_INTEGER) evictions_.fetch_add(1, std::memory_order_relaxed);
    misses_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }

  void put(std::string_view key, std::string value, UnixSeconds ttl_seconds) override {
    if (ttl_seconds <= 0) return erase(key);  // already expired: keeping it would only cost space
    const std::string stored = stored_text(value, ttl_seconds);
    const std::string k = value_key(key);
    const std::string ttl = std::to_string(ttl_seconds);
    count_evictions(run_script(kPutScript, {"3", k, lru_key_, clock_key_, stored, ttl, max_entries_}));
  }

  void put_each(std::span<const CachePut> entries) override {
    if (entries.empty()) return;
    // Owned first, viewed after: the views must not move.
    const std::string numkeys = std::to_string(entries.size() + 2);
    std::vector<std::string> keys, values, ttls;
    keys.reserve(entries.size());
    values.reserve(entries.size());
    ttls.reserve(entries.size());
    for (const CachePut& e : entries) {
      keys.push_back(value_key(e.key));
      values.push_back(e.ttl_seconds > 0 ? stored_text(e.value, e.ttl_seconds) : std::string());
      ttls.push_back(std::to_string(e.ttl_seconds));
    }
    std::vector<std::string_view> args{numkeys, lru_key_, clock_key_};
    args.reserve(3 + 3 * entries.size() + 1);
    args.insert(args.end(), keys.begin(), keys.end());
    args.push_back(max_entries_);
    for (std::size_t i = 0; i < entries.size(); ++i) {
      args.push_back(values[i]);
      args.push_back(ttls[i]);
    }
    count_evictions(run_script(kPutEachScript, args));
  }

  void erase(std::string_view key) override {
    const std::string k = value_key(key);
    (void)run({"DEL", k});
    (void)run({"ZREM", lru_key_, k});
  }

  CacheStats stats() const override {
    CacheStats s;
    s.hits = hits_.load(std::memory_order_relaxed);
    s.misses = misses_.load(std::memory_order_relaxed);
    s.evictions = evictions_.load(std::memory_order_relaxed);
    auto reply = run({"ZCARD", lru_key_});
    if (reply) s.entries = static_cast<std::uint64_t>(redis::reply_integer(reply->get()));
    return s;
  }

  Status health() override {
    // Lookups are rare once leads hold their warm scores, so the last
    // command's outcome can be minutes old: ask Redis now. While it is down
    // the ping is the reconnect probe, paced by the backoff like any call.
    (void)run({"PING"});
    std::lock_guard lock(pool_mu_);
    if (down_reason_.empty()) return Status::ok();
    return unavailable("redis cache down (" + down_reason_ + "); every lookup is a miss");
  }

 private:
  std::string value_key(std::string_view key) const { return endpoint_.prefix + "c:" + std::string(key); }
  // What a value key holds: its deadline on clock_, a newline, the value.
  std::string stored_text(std::string_view value, UnixSeconds ttl_seconds) const {
    std::string stored = std::to_string(clock_.now() + ttl_seconds);
    stored.push_back('\n');
    stored.append(value);
    return stored;
  }
  // A put script's answer: how many entries it pushed out.
  void count_evictions(const Result<redis::Reply>& reply) {
    if (reply) evictions_.fetch_add(static_cast<std::uint64_t>(redis::reply_integer(reply->get())),
                                    std::memory_order_relaxed);
  }

  // One command on a pooled connection; Unavailable while Redis is down.
  Result<redis::Reply> run(const std::vector<std::string_view>& args) const {
    return with_connection([&](Connection& c) { return c.command(args); });
  }
  Result<redis::Reply> run_script(const redis::LuaScript& script, const std::vector<std::string_view>& args) const {
    return with_connection([&](Connection& c) { return c.eval(script, args); });
  }

  template <class Call>
  Result<redis::Reply> with_connection(Call call) const {
    Connection* conn = checkout();
    if (conn == nullptr) return unavailable("redis cache down");
    if (!conn->connected()) {
      if (Status s = conn->connect(endpoint_, kCommandTimeout); !s) {
        checkin(conn, s.message());
        return s;
      }
    }
    auto reply = call(*conn);
    checkin(conn, reply || conn->connected() ? std::string() : reply.status().message());
    return reply;
  }

  // A free connection, or nullptr while Redis is down and not yet due for a
  // retry (callers then miss at once instead of waiting for timeouts).
  Connection* checkout() const {
    std::unique_lock lock(pool_mu_);
    if (!down_reason_.empty()) {
      if (std::chrono::steady_clock::now() < retry_at_ || retrying_) return nullptr;
      retrying_ = true;  // this caller probes; the others keep missing
    }
    pool_cv_.wait(lock, [this] { return !free_.empty(); });
    Connection* conn = free_.back();
    free_.pop_back();
    return conn;
  }

  // `failure` empty: the connection works (Redis is up again if it was down).
  void checkin(Connection* conn, const std::string& failure) const {
    {
      std::lock_guard lock(pool_mu_);
      free_.push_back(conn);
      retrying_ = false;
      if (failure.empty()) {
        down_reason_.clear();
        backoff_ = kMinBackoff;
      } else {
        // The idle connections went down with the server: closed now, the
        // next probe reconnects instead of failing on a dead socket.
        for (Connection* idle : free_) idle->close();
        down_reason_ = failure;
        retry_at_ = std::chrono::steady_clock::now() + backoff_;
        backoff_ = std::min(backoff_ * 2, kMaxBackoff);
      }
    }
    pool_cv_.notify_one();
  }

  const RedisEndpoint endpoint_;
  const Clock& clock_;
  const std::string max_entries_;
  const std::string lru_key_;
  const std::string clock_key_;

  // Mutable: stats() const reads the entry count through the pool.
  mutable std::mutex pool_mu_;
  mutable std::condition_variable pool_cv_;
  mutable std::vector<Connection> pool_;
  mutable std::vector<Connection*> free_;  // guarded by pool_mu_
  mutable std::string down_reason_;        // guarded by pool_mu_; empty while up
  mutable std::chrono::steady_clock::time_point retry_at_;  // guarded by pool_mu_
  mutable std::chrono::milliseconds backoff_ = kMinBackoff; // guarded by pool_mu_
  mutable bool retrying_ = false;                           // guarded by pool_mu_

  std::atomic<std::uint64_t> hits_{0};
  std::atomic<std::uint64_t> misses_{0};
  std::atomic<std::uint64_t> evictions_{0};
};

}  // namespace

std::unique_ptr<Cache> make_redis_cache(RedisEndpoint endpoint, const Clock& clock, std::size_t max_entries) {
  return std::make_unique<RedisCache>(std::move(endpoint), clock, max_entries);
}

}  // namespace reai::bus
