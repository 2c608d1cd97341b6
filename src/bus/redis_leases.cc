// Redis leases. Key: P l:NAME -> token, with PX = the hold, so a dead
// holder's lease lapses by itself. One connection under a mutex: lease
// commands are single round trips, and a waiter sleeps without holding it.
#include <atomic>
#include <mutex>
#include <random>
#include <thread>

#include "bus/bus.h"
#include "bus/redis_connection.h"

namespace reai::bus {
namespace {

using SteadyClock = std::chrono::steady_clock;

// KEYS: lease key. ARGV: token. Deletes the key only while it holds the token.
constexpr std::string_view kReleaseScript = R"lua(
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
)lua";

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

  Result<std::string> acquire(std::string_view name, std::chrono::milliseconds hold,
                              std::chrono::milliseconds wait) override {
    const std::string key = endpoint_.prefix + "l:" + std::string(name);
    const std::string token = token_prefix_ + std::to_string(counter_.fetch_add(1, std::memory_order_relaxed));
    const std::string hold_ms = std::to_string(std::max<std::int64_t>(1, hold.count()));
    const auto deadline = SteadyClock::now() + wait;
    auto poll = kFirstPoll;
    for (;;) {
      auto reply = run({"SET", key, token, "NX", "PX", hold_ms});
      if (!reply) return reply.status();
      if ((*reply)->type == REDIS_REPLY_STATUS) return token;  // "OK"; nil when held
      const auto now = SteadyClock::now();
      if (now >= deadline) return resource_exhausted("lease on " + std::string(name) + " is held elsewhere");
      std::this_thread::sleep_for(std::min<SteadyClock::duration>(poll, deadline - now));
      poll = std::min(poll * 2, kMaxPoll);
    }
  }

  void release(std::string_view name, std::string_view token) override {
    const std::string key = endpoint_.prefix + "l:" + std::string(name);
    (void)run({"EVAL", kReleaseScript, "1", key, token});  // a lost release lapses by itself
  }

  bool shared() const override { return true; }

  Status health() override {
    std::lock_guard lock(mu_);
    if (down_reason_.empty()) return Status::ok();
    return unavailable("redis leases down (" + down_reason_ + "); each instance works alone");
  }

 private:
  // One command; Unavailable at once while Redis is down and no retry is due.
  Result<redis::Reply> run(const std::vector<std::string_view>& args) {
    std::lock_guard lock(mu_);
    if (!conn_.connected()) {
      if (!down_reason_.empty() && SteadyClock::now() < retry_at_) return unavailable("redis leases down");
      if (Status s = conn_.connect(endpoint_, kCommandTimeout); !s) {
        mark_down(s.message());
        return s;
      }
    }
    auto reply = conn_.command(args);
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
