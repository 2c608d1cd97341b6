// LeadWorkers: one queue and thread per lane; a key always maps to one lane.
#include "server/lead_workers.h"

#include <algorithm>
#include <string>

namespace reai::server {

LeadWorkers::LeadWorkers(std::size_t threads) {
  const std::size_t n = std::max<std::size_t>(1, threads);
  lanes_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) lanes_.push_back(std::make_unique<Lane>());
  for (auto& lane : lanes_) {
    Lane* l = lane.get();
    l->thread = std::thread([this, l] { run(*l); });
  }
}

LeadWorkers::~LeadWorkers() { stop(); }

bool LeadWorkers::post(std::string_view key, std::function<void()> job) {
  Lane& lane = *lanes_[std::hash<std::string_view>{}(key) % lanes_.size()];
  {
    std::lock_guard lock(lane.mu);
    if (lane.stopping) return false;
    lane.jobs.push_back(std::move(job));
    pending_.fetch_add(1, std::memory_order_relaxed);
  }
  lane.wake.notify_one();
  return true;
}

void LeadWorkers::run(Lane& lane) {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(lane.mu);
      lane.wake.wait(lock, [&] { return lane.stopping || !lane.jobs.empty(); });
      if (lane.jobs.empty()) return;  // stopping, and everything queued ran
      job = std::move(lane.jobs.front());
      lane.jobs.pop_front();
    }
    job();
    pending_.fetch_sub(1, std::memory_order_relaxed);
  }
}

void LeadWorkers::stop() {
  std::lock_guard stop_lock(stop_mu_);
  if (stopped_) return;
  stopped_ = true;
  for (auto& lane : lanes_) {
    {
      std::lock_guard lock(lane->mu);
      lane->stopping = true;
    }
    lane->wake.notify_one();
  }
  for (auto& lane : lanes_) lane->thread.join();
}

std::uint64_t LeadWorkers::pending() const { return pending_.load(std::memory_order_relaxed); }

}  // namespace reai::server
