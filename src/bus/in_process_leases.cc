// In-process leases: a map of held names under one mutex; waiters sleep on a
// condition variable. Holds lapse like Redis's, so both behave alike.
#include <condition_variable>
#include <mutex>
#include <random>
#include <unordered_map>

#include "bus/bus.h"

namespace reai::bus {
namespace {

using SteadyClock = std::chrono::steady_clock;

class InProcessLeases final : public Leases {
 public:
  Result<std::string> acquire(std::string_view name, std::chrono::milliseconds hold,
                              std::chrono::milliseconds wait) override {
    const auto deadline = SteadyClock::now() + wait;
    std::unique_lock lock(mu_);
    const std::string key(name);
    for (;;) {
      const auto now = SteadyClock::now();
      auto it = held_.find(key);
      if (it == held_.end() || it->second.until <= now) {
        std::string token = std::to_string(++counter_);
        held_[key] = Hold{token, now + hold};
        return token;
      }
      if (now >= deadline) return resource_exhausted("lease on " + key + " is held elsewhere");
      // A copy: the entry may be erased while this thread waits.
      const SteadyClock::time_point wake = std::min(deadline, it->second.until);
      released_.wait_until(lock, wake);
    }
  }

  void release(std::string_view name, std::string_view token) override {
    {
      std::lock_guard lock(mu_);
      auto it = held_.find(std::string(name));
      if (it == held_.end() || it->second.token != token) return;
      held_.erase(it);
    }
    released_.notify_all();
  }

  bool shared() const override { return false; }
  Status health() override { return Status::ok(); }

 private:
  struct Hold {
    std::string token;
    SteadyClock::time_point until;
  };
  std::mutex mu_;
  std::condition_variable released_;
  std::unordered_map<std::string, Hold> held_;
  std::uint64_t counter_ = 0;
};

}  // namespace

std::unique_ptr<Leases> make_in_process_leases() { return std::make_unique<InProcessLeases>(); }

}  // namespace reai::bus
