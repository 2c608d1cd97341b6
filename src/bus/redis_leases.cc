// Redis leases. Keys (P = the deployment prefix):
//   P l:NAME - the holder's token, with PX = the hold, so a dead holder's
//              lease lapses by itself
//   P m:NAME - the marks: a sorted set scored by when each lapses (Unix ms);
//              the key itself lapses with its newest mark
//   P s:NAME - the stamp (decimal), with PX = its ttl
//   P v:NAME - the value the stamp carries, set with it and with the same PX
// Every call is one Lua script or one command (one round trip, atomic across
// instances).
// Mark lapse times come from the callers' wall clocks: instances of one
// deployment are assumed to agree within seconds (the ttl is minutes).
// One connection under a mutex: lease commands are single round trips, and a
// waiter sleeps without holding it.
#include <atomic>
#include <charconv>
#include <mutex>
#include <random>
#include <thread>

#include "bus/bus.h"
#include "bus/redis_connection.h"

namespace reai::bus {
namespace {

using SteadyClock = std::chrono::steady_clock;

// KEYS: marks, stamp. ARGV: now (Unix ms). A name's state as
// kAcquireEachScript answers it, without the lease.
const redis::LuaScript kPeekScript(R"lua(
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
return {redis.call('GET', KEYS[2]) or '', redis.call('ZRANGE', KEYS[1], 0, -1)}
)lua");

// Takes the lease of each name that is free. KEYS: lease, marks, stamp of
// each name in turn. ARGV: hold ms, now (Unix ms), then one token per name.
// One answer per name, in order: false (nil) while held elsewhere, else
// {stamp or '', {marks}}, lapsed marks dropped. acquire() is this for one name.
const redis::LuaScript kAcquireEachScript(R"lua(
local out = {}
for i = 1, #KEYS / 3 do
  local lease, marks, stamp = KEYS[3 * i - 2], KEYS[3 * i - 1], KEYS[3 * i]
  if redis.call('SET', lease, ARGV[i + 2], 'NX', 'PX', ARGV[1]) then
    redis.call('ZREMRANGEBYSCORE', marks, '-inf', ARGV[2])
    out[i] = {redis.call('GET', stamp) or '', redis.call('ZRANGE', marks, 0, -1)}
  else
    out[i] = false
  end
end
return out
)lua");

// Gives leases back, each only while it holds its token. KEYS: lease, marks,
// stamp, stamped value of each in turn. ARGV, per lease in turn: token, stamp
// ('' = keep), stamp ttl ms, stamped value, the count of marks to remove,
// those marks. release() is this for one lease.
const redis::LuaScript kReleaseEachScript(R"lua(
local a = 1
for i = 1, #KEYS / 4 do
  local lease, marks, stamp, value = KEYS[4 * i - 3], KEYS[4 * i - 2], KEYS[4 * i - 1], KEYS[4 * i]
  local done = tonumber(ARGV[a + 4])
  if redis.call('GET', lease) == ARGV[a] then
    if ARGV[a + 1] ~= '' then
      redis.call('SET', stamp, ARGV[a + 1], 'PX', ARGV[a + 2])
      if ARGV[a + 3] ~= '' then redis.call('SET', value, ARGV[a + 3], 'PX', ARGV[a + 2]) else redis.call('DEL', value) end
    end
    if done > 0 then redis.call('ZREM', marks, unpack(ARGV, a + 5, a + 4 + done)) end
    redis.call('DEL', lease)
  end
  a = a + 5 + done
end
return #KEYS / 4
)lua");

// KEYS: the marks keys. ARGV: lapse time (Unix ms), ttl ms, then one mark per key.
const redis::LuaScript kMarkScript(R"lua(
for i = 1, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[1], ARGV[i + 2])
  -- The key lives as long as its longest-lived mark, never shorter.
  if redis.call('PTTL', KEYS[i]) < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
end
return #KEYS
)lua");

std::int64_t unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// {stamp or '', {marks}} as the scripts answer it.
Result<LeaseState> parse_state(const redisReply* r) {
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[1]->type != REDIS_REPLY_ARRAY) {
    return internal_error("unexpected lease state reply");
  }
  LeaseState state;
  const std::string stamp = redis::reply_string(r->element[0]);
  if (!stamp.empty()) {
    auto [end, ec] = std::from_chars(stamp.data(), stamp.data() + stamp.size(), state.stamp);
    if (ec != std::errc() || end != stamp.data() + stamp.size()) state.stamp = 0;  // not ours: none
  }
  const redisReply* marks = r->element[1];
  state.marks.reserve(marks->elements);
  for (std::size_t i = 0; i < marks->elements; ++i) state.marks.push_back(redis::reply_string(marks->element[i]));
  return state;
}

constexpr auto kCommandTimeout = std::chrono::milliseconds(500);
constexpr auto kMinBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::milliseconds(5000);
constexpr auto kFirstPoll = std::chrono::milliseconds(1);
constexpr auto kMaxPoll = std::chrono::milliseconds(16);

class RedisLeases final : public Leases {
 public:
  explicit RedisLeases(RedisEndpoint endpoint) : endpoint_(std::move(endpoint)) {
    std::random_device rd;
    token_prefix_ = std::to_string(rd()) + "-" + std::to_string(rd()) + "-";
    (void)run({"PING"});  // so health() tells the truth from the start
  }

  Result<Lease> acquire(std::string_view name, std::chrono::milliseconds hold,
                        std::chrono::milliseconds wait) override {
    const std::string names[] = {std::string(name)};
    const auto deadline = SteadyClock::now() + wait;
    auto poll = kFirstPoll;
    for (;;) {
      auto outcomes = acquire_each(names, hold);
      if (!outcomes) return outcomes.status();
      Result<Lease>& outcome = outcomes->front();
      if (outcome || outcome.status().code() != StatusCode::kResourceExhausted) return std::move(outcome);
      const auto steady_now = SteadyClock::now();
      if (steady_now >= deadline) return std::move(outcome);  // still held elsewhere
      std::this_thread::sleep_for(std::min<SteadyClock::duration>(poll, deadline - steady_now));
      poll = std::min(poll * 2, kMaxPoll);
    }
  }

  void release(std::string_view name, std::string_view token, const LeaseUpdate& update) override {
    const LeaseRelease one{std::string(name), std::string(token), update};
    release_each(std::span<const LeaseRelease>(&one, 1));
  }

  Result<std::vector<Result<Lease>>> acquire_each(std::span<const std::string> names,
                                                  std::chrono::milliseconds hold) override {
    std::vector<Result<Lease>> outcomes;
    if (names.empty()) return outcomes;
    std::vector<Keys> lease_keys;
    std::vector<std::string> tokens;
    lease_keys.reserve(names.size());
    tokens.reserve(names.size());
    for (const std::string& name : names) {
      lease_keys.push_back(keys(name));
      tokens.push_back(token_prefix_ + std::to_string(counter_.fetch_add(1, std::memory_order_relaxed)));
    }
    const std::string count = std::to_string(3 * names.size());
    const std::string hold_ms = std::to_string(std::max<std::int64_t>(1, hold.count()));
    const std::string now = std::to_string(unix_ms());
    std::vector<std::string_view> args = {count};
    args.reserve(1 + 4 * names.size() + 2);
    for (const Keys& k : lease_keys) args.insert(args.end(), {k.lease, k.marks, k.stamp});
    args.insert(args.end(), {hold_ms, now});
    for (const std::string& token : tokens) args.push_back(token);
    auto reply = run_script(kAcquireEachScript, args);
    if (!reply) return reply.status();
    const redisReply* r = reply->get();
    if (r->type != REDIS_REPLY_ARRAY || r->elements != names.size()) return internal_error("unexpected leases reply");
    outcomes.reserve(names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (r->element[i]->type == REDIS_REPLY_NIL) {
        outcomes.emplace_back(resource_exhausted("lease on " + names[i] + " is held elsewhere"));
        continue;
      }
      auto state = parse_state(r->element[i]);
      if (!state) return state.status();
      outcomes.emplace_back(Lease{std::move(tokens[i]), std::move(*state)});
    }
    return outcomes;
  }

  void release_each(std::span<const LeaseRelease> releases) override {
    if (releases.empty()) return;
    std::vector<Keys> lease_keys;
    std::vector<std::string> numbers;  // stamp, ttl and mark count of each, in turn
    lease_keys.reserve(releases.size());
    numbers.reserve(3 * releases.size());
    for (const LeaseRelease& r : releases) {
      lease_keys.push_back(keys(r.name));
      numbers.push_back(r.update.stamp ? std::to_string(r.update.stamp) : std::string());
      numbers.push_back(std::to_string(std::max<std::int64_t>(1, r.update.stamp_ttl.count())));
      numbers.push_back(std::to_string(r.update.done_marks.size()));
    }
    const std::string count = std::to_string(4 * releases.size());
    std::vector<std::string_view> args = {count};
    args.reserve(1 + 9 * releases.size());
    for (const Keys& k : lease_keys) args.insert(args.end(), {k.lease, k.marks, k.stamp, k.value});
    for (std::size_t i = 0; i < releases.size(); ++i) {
      const LeaseRelease& r = releases[i];
      args.insert(args.end(), {std::string_view(r.token), std::string_view(numbers[3 * i]),
                               std::string_view(numbers[3 * i + 1]), std::string_view(r.update.stamped_value),
                               std::string_view(numbers[3 * i + 2])});
      for (const std::string& m : r.update.done_marks) args.push_back(m);
    }
    (void)run_script(kReleaseEachScript, args);  // lost releases lapse by themselves (and their marks with them)
  }

  Status mark(const std::vector<LeaseMark>& marks, std::chrono::milliseconds ttl) override {
    if (marks.empty()) return Status::ok();
    std::vector<std::string> keys;
    keys.reserve(marks.size());
    for (const LeaseMark& m : marks) keys.push_back(endpoint_.prefix + "m:" + m.name);
    const std::int64_t ttl_ms = std::max<std::int64_t>(1, ttl.count());
    const std::string lapse = std::to_string(unix_ms() + ttl_ms);
    const std::string ttl_text = std::to_string(ttl_ms);
    const std::string count = std::to_string(marks.size());
    std::vector<std::string_view> args = {count};
    args.reserve(1 + 2 * marks.size() + 2);
    for (const std::string& key : keys) args.push_back(key);
    args.push_back(lapse);
    args.push_back(ttl_text);
    for (const LeaseMark& m : marks) args.push_back(m.mark);
    auto reply = run_script(kMarkScript, args);
    return reply ? Status::ok() : reply.status();
  }

  Result<LeaseState> peek(std::string_view name) override {
    const Keys k = keys(name);
    const std::string now = std::to_string(unix_ms());
    auto reply = run_script(kPeekScript, {"2", k.marks, k.stamp, now});
    if (!reply) return reply.status();
    return parse_state(reply->get());
  }

  Result<std::string> stamped_value(std::string_view name) override {
    const Keys k = keys(name);
    auto reply = run({"GET", k.value});
    if (!reply) return reply.status();
    return redis::reply_string(reply->get());  // nil (none, or lapsed): ""
  }

  void drop_stamp(std::string_view name) override {
    const Keys k = keys(name);
    (void)run({"DEL", k.stamp, k.value});  // unreachable: the stamp lapses by itself
  }

  bool shared() const override { return true; }

  Status health() override {
    std::lock_guard lock(mu_);
    if (down_reason_.empty()) return Status::ok();
    return unavailable("redis leases down (" + down_reason_ + "); each instance works alone");
  }

 private:
  struct Keys {
    std::string lease, marks, stamp, value;
  };
  Keys keys(std::string_view name) const {
    const std::string n(name);
    return {endpoint_.prefix + "l:" + n, endpoint_.prefix + "m:" + n, endpoint_.prefix + "s:" + n,
            endpoint_.prefix + "v:" + n};
  }

  // One command; Unavailable at once while Redis is down and no retry is due.
  Result<redis::Reply> run(const std::vector<std::string_view>& args) {
    return with_connection([&](redis::Connection& c) { return c.command(args); });
  }
  Result<redis::Reply> run_script(const redis::LuaScript& script, const std::vector<std::string_view>& args) {
    return with_connection([&](redis::Connection& c) { return c.eval(script, args); });
  }

  // Runs `call` on the connection (reconnecting when due), keeping the
  // up/down state and its backoff.
  template <class Call>
  Result<redis::Reply> with_connection(Call call) {
    std::lock_guard lock(mu_);
    if (!conn_.connected()) {
      if (!down_reason_.empty() && SteadyClock::now() < retry_at_) return unavailable("redis leases down");
      if (Status s = conn_.connect(endpoint_, kCommandTimeout); !s) {
        mark_down(s.message());
        return s;
      }
    }
    auto reply = call(conn_);
    if (reply || conn_.connected()) {
      down_reason_.clear();
      backoff_ = kMinBackoff;
    } else {
      mark_down(reply.status().message());
    }
    return reply;
  }

  void mark_down(std::string reason) {
    down_reason_ = std::move(reason);
    retry_at_ = SteadyClock::now() + backoff_;
    backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  }

  const RedisEndpoint endpoint_;
  std::string token_prefix_;  // random per process: tokens never collide across instances
  std::atomic<std::uint64_t> counter_{0};
  std::mutex mu_;
  redis::Connection conn_;          // guarded by mu_
  std::string down_reason_;         // guarded by mu_; empty while up
  SteadyClock::time_point retry_at_;  // guarded by mu_
  std::chrono::milliseconds backoff_ = kMinBackoff;  // guarded by mu_
};

}  // namespace

std::unique_ptr<Leases> make_redis_leases(RedisEndpoint endpoint) {
  return std::make_unique<RedisLeases>(std::move(endpoint));
}

}  // namespace reai::bus
