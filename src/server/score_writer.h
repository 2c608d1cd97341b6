// ScoreHistoryWriter: appends score history rows on its own thread, so the
// event hot path makes only one synchronous store write (the event itself).
// Rows are batched in arrival order; a full queue drops rows and counts them
// (history is an audit aid; the live score is never lost). Private.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "store/store.h"

namespace reai::server {

class ScoreHistoryWriter {
 public:
  explicit ScoreHistoryWriter(store::Store& store, std::size_t max_queued = 100'000);
  // Flushes what is queued, then joins.
  ~ScoreHistoryWriter();
  void append(store::ScoreRecord record);
  // Blocks until every row queued before the call is written.
  void flush();
  std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  std::uint64_t failed() const { return failed_.load(std::memory_order_relaxed); }

 private:
  void run();

  store::Store& store_;
  const std::size_t max_queued_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable written_;
  std::deque<store::ScoreRecord> queue_;
  std::uint64_t queued_total_ = 0;
  std::uint64_t written_total_ = 0;
  bool stopping_ = false;
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> failed_{0};
  std::thread thread_;
};

}  // namespace reai::server
