// LeadWorkers: a few threads for the work that may wait on a lead's lease.
//
// Under shared leases, scoring a stored event takes the lead's lease in
// Redis: round trips, and up to the lease wait (seconds) while another
// instance holds it. That wait must not hold an io thread (every connection
// on it would stall), so the work is handed here and its answer posted back
// to the connection's executor. Work for one key always runs on the same
// thread, in submission order, so a lead's events queue here, not on the
// stripe lock; different keys spread over the threads, so a busy lease
// delays only the keys that share its thread.
//
// Thread-safe. Jobs must not call stop().
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

namespace reai::server {

class LeadWorkers {
 public:
  // At least one thread.
  explicit LeadWorkers(std::size_t threads);
  // As stop().
  ~LeadWorkers();
  LeadWorkers(const LeadWorkers&) = delete;
  LeadWorkers& operator=(const LeadWorkers&) = delete;

  // Queues `job` on `key`'s thread. False after stop() (the job is not run:
  // the caller runs it elsewhere). Any thread.
  bool post(std::string_view key, std::function<void()> job);
  // Runs every job queued before it, then joins the threads. Idempotent.
  void stop();
  // Jobs queued or running.
  std::uint64_t pending() const;

 private:
  struct Lane {
    std::mutex mu;
    std::condition_variable wake;
    std::deque<std::function<void()>> jobs;  // guarded by mu
    bool stopping = false;                   // guarded by mu
    std::thread thread;
  };
  void run(Lane& lane);

  std::vector<std::unique_ptr<Lane>> lanes_;
  std::mutex stop_mu_;
  bool stopped_ = false;  // guarded by stop_mu_
  std::atomic<std::uint64_t> pending_{0};
};

}  // namespace reai::server
