// In-process leases: held names, marks and stamps under one mutex; waiters
// sleep on a condition variable. Holds, marks and stamps lapse like Redis's,
// so both behave alike.
#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "bus/bus.h"

namespace reai::bus {
namespace {

using SteadyClock = std::chrono::steady_clock;

class InProcessLeases final : public Leases {
 public:
  Result<Lease> acquire(std::string_view name, std::chrono::milliseconds hold,
                        std::chrono::milliseconds wait) override {
    const auto deadline = SteadyClock::now() + wait;
    std::unique_lock lock(mu_);
    const std::string key(name);
    for (;;) {
      const auto now = SteadyClock::now();
      Name& n = names_[key];
      if (auto taken = take_locked(n, hold, now)) return std::move(*taken);
      if (now >= deadline) return held_elsewhere(key);
      // A copy: the entry may be erased while this thread waits.
      const SteadyClock::time_point wake = std::min(deadline, n.until);
      released_.wait_until(lock, wake);
    }
  }

  void release(std::string_view name, std::string_view token, const LeaseUpdate& update) override {
    {
      std::lock_guard lock(mu_);
      release_locked(name, token, update);
    }
    released_.notify_all();
  }

  Result<std::vector<Result<Lease>>> acquire_each(std::span<const std::string> names,
                                                  std::chrono::milliseconds hold) override {
    std::vector<Result<Lease>> outcomes;
    outcomes.reserve(names.size());
    std::lock_guard lock(mu_);
    const auto now = SteadyClock::now();
    for (const std::string& name : names) {
      if (auto taken = take_locked(names_[name], hold, now)) {
        outcomes.emplace_back(std::move(*taken));
      } else {
        outcomes.emplace_back(held_elsewhere(name));
      }
    }
    return outcomes;
  }

  void release_each(std::span<const LeaseRelease> releases) override {
    {
      std::lock_guard lock(mu_);
      for (const LeaseRelease& r : releases) release_locked(r.name, r.token, r.update);
    }
    released_.notify_all();
  }

  Status mark(const std::vector<LeaseMark>& marks, std::chrono::milliseconds ttl) override {
    std::lock_guard lock(mu_);
    const auto until = SteadyClock::now() + ttl;
    for (const LeaseMark& m : marks) names_[m.name].marks[m.mark] = until;
    return Status::ok();
  }

  Result<LeaseState> peek(std::string_view name) override {
    std::lock_guard lock(mu_);
    auto it = names_.find(std::string(name));
    if (it == names_.end()) return LeaseState{};
    LeaseState state = state_locked(it->second, SteadyClock::now());
    forget_if_empty_locked(it, SteadyClock::now());
    return state;
  }

  Result<std::string> stamped_value(std::string_view name) override {
    std::lock_guard lock(mu_);
    auto it = names_.find(std::string(name));
    if (it == names_.end()) return std::string();
    (void)state_locked(it->second, SteadyClock::now());  // a lapsed stamp's value goes with it
    return it->second.stamped_value;
  }

  void drop_stamp(std::string_view name) override {
    std::lock_guard lock(mu_);
    auto it = names_.find(std::string(name));
    if (it == names_.end()) return;
    it->second.stamp = 0;
    it->second.stamped_value.clear();
    forget_if_empty_locked(it, SteadyClock::now());
  }

  bool shared() const override { return false; }
  Status health() override { return Status::ok(); }

 private:
  struct Name {
    std::string token;  // empty: not held
    SteadyClock::time_point until;
    std::uint64_t stamp = 0;
    SteadyClock::time_point stamp_until;
    std::string stamped_value;  // what the stamp carries; goes with it
    std::unordered_map<std::string, SteadyClock::time_point> marks;  // mark -> lapses at
  };
  using Names = std::unordered_map<std::string, Name>;

  // Takes `n` for `hold` when free (or its hold lapsed); nullopt while held.
  std::optional<Lease> take_locked(Name& n, std::chrono::milliseconds hold, SteadyClock::time_point now) {
    if (!n.token.empty() && n.until > now) return std::nullopt;
    n.token = std::to_string(++counter_);
    n.until = now + hold;
    return Lease{n.token, state_locked(n, now)};
  }

  static Status held_elsewhere(std::string_view name) {
    return resource_exhausted("lease on " + std::string(name) + " is held elsewhere");
  }

  // Gives `name` back with `update` when `token` still holds it.
  void release_locked(std::string_view name, std::string_view token, const LeaseUpdate& update) {
    auto it = names_.find(std::string(name));
    if (it == names_.end() || it->second.token != token) return;
    Name& n = it->second;
    n.token.clear();
    const auto now = SteadyClock::now();
    if (update.stamp != 0) {
      n.stamp = update.stamp;
      n.stamp_until = now + update.stamp_ttl;
      n.stamped_value = update.stamped_value;
    }
    for (const std::string& m : update.done_marks) n.marks.erase(m);
    forget_if_empty_locked(it, now);
  }

  // Drops what lapsed, answers the rest.
  static LeaseState state_locked(Name& n, SteadyClock::time_point now) {
    if (n.stamp != 0 && n.stamp_until <= now) {
      n.stamp = 0;
      n.stamped_value.clear();
    }
    std::erase_if(n.marks, [&](const auto& m) { return m.second <= now; });
    LeaseState state;
    state.stamp = n.stamp;
    state.marks.reserve(n.marks.size());
    for (const auto& m : n.marks) state.marks.push_back(m.first);
    return state;
  }

  // A name that keeps nothing any more takes no memory.
  void forget_if_empty_locked(Names::iterator it, SteadyClock::time_point now) {
    Name& n = it->second;
    const bool held = !n.token.empty() && n.until > now;
    const bool stamped = n.stamp != 0 && n.stamp_until > now;
    if (!held && !stamped && n.marks.empty()) names_.erase(it);
  }

  std::mutex mu_;
  std::condition_variable released_;
  Names names_;
  std::uint64_t counter_ = 0;
};

}  // namespace

std::unique_ptr<Leases> make_in_process_leases() { return std::make_unique<InProcessLeases>(); }

}  // namespace reai::bus
