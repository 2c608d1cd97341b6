#include "server/score_writer.h"

#include <spdlog/spdlog.h>

#include <vector>

namespace reai::server {

ScoreHistoryWriter::ScoreHistoryWriter(store::Store& store, std::size_t max_queued)
    : store_(store), max_queued_(max_queued), thread_([this] { run(); }) {}

ScoreHistoryWriter::~ScoreHistoryWriter() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void ScoreHistoryWriter::append(store::ScoreRecord record) {
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= max_queued_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    queue_.push_back(std::move(record));
    ++queued_total_;
  }
  wake_.notify_one();
}

void ScoreHistoryWriter::flush() {
  std::unique_lock lock(mu_);
  const std::uint64_t target = queued_total_;
  written_.wait(lock, [&] { return written_total_ >= target; });
}

void ScoreHistoryWriter::run() {
  std::vector<store::ScoreRecord> batch;
  std::unique_lock lock(mu_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty() && stopping_) return;
    batch.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
    queue_.clear();
    lock.unlock();
    for (const auto& record : batch) {
      if (Status s = store_.append_score(record); !s) {
        if (failed_.fetch_add(1, std::memory_order_relaxed) == 0) {
          spdlog::warn("score history write failed: {}", s.message());
        }
      }
    }
    lock.lock();
    written_total_ += batch.size();
    written_.notify_all();
  }
}

}  // namespace reai::server
