#include "server/event_appender.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

namespace reai::server {

EventAppender::EventAppender(store::Store& store, Prepare prepare, Limits limits, ContactsWritten contacts_written,
                             BeforeWrite before_write, AfterAnswers after_answers)
    : store_(store),
      prepare_(std::move(prepare)),
      contacts_written_(std::move(contacts_written)),
      before_write_(std::move(before_write)),
      after_answers_(std::move(after_answers)),
      limits_(limits),
      thread_([this] { run(); }) {}

EventAppender::~EventAppender() { stop(); }

bool EventAppender::submit(std::vector<Event> events, Done done) {
  if (events.empty()) return false;
  {
    std::lock_guard lock(mu_);
    // A request larger than the whole bound still goes through when the
    // queue is empty, so a maximal batch is never refused forever.
    if (stopping_ || (queue_events_ > 0 && queue_events_ + events.size() > limits_.max_queued_events)) {
      rejected_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
    queue_events_ += events.size();
    queued_.fetch_add(events.size(), std::memory_order_relaxed);
    queue_.push_back(Request{std::move(events), std::move(done)});
  }
  wake_.notify_one();
  return true;
}

void EventAppender::append_score(store::ScoreRecord record) {
  std::unique_lock lock(mu_);
  if (stopped_) {
    lock.unlock();
    write_scores({std::move(record)});  // the thread is gone: write it here
    return;
  }
  if (scores_.size() >= limits_.max_queued_scores) {
    scores_dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  scores_.push_back(std::move(record));
  ++scores_queued_total_;
  // Only a thread asleep without a timeout needs waking; one writing or
  // lingering takes the row with the next batch (or after its linger).
  const bool wake = std::exchange(sleeping_, false);
  lock.unlock();
  if (wake) wake_.notify_one();
}

void EventAppender::flush_scores() {
  std::unique_lock lock(mu_);
  const std::uint64_t target = scores_queued_total_;
  if (scores_done_total_ >= target) return;
  ++flush_waiters_;
  wake_.notify_one();
  scores_written_.wait(lock, [&] { return scores_done_total_ >= target; });
  --flush_waiters_;
}

void EventAppender::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

bool EventAppender::due() const {
  return stopping_ || !queue_.empty() ||
         (!scores_.empty() && (flush_waiters_ > 0 || scores_.size() >= limits_.score_rows_per_turn));
}

void EventAppender::run() {
  std::vector<Request> requests;
  std::vector<store::ScoreRecord> rows;
  // Just answered a batch: its requests' history rows are on their way.
  bool linger = false;
  std::unique_lock lock(mu_);
  for (;;) {
    if (!due()) {
      if (linger && limits_.score_linger.count() > 0) {
        wake_.wait_for(lock, limits_.score_linger, [this] { return due(); });
      }
      if (!due() && scores_.empty()) {
        sleeping_ = true;
        wake_.wait(lock, [this] { return due() || !scores_.empty(); });
        sleeping_ = false;
      }
    }
    linger = false;
    if (queue_.empty() && scores_.empty()) {
      if (stopping_) break;  // everything written
      continue;
    }
    requests.swap(queue_);
    queue_events_ = 0;
    const std::size_t n = std::min(scores_.size(), limits_.score_rows_per_turn);
    rows.assign(std::make_move_iterator(scores_.begin()), std::make_move_iterator(scores_.begin() + n));
    scores_.erase(scores_.begin(), scores_.begin() + n);
    lock.unlock();
    if (!requests.empty()) {
      write_events(requests, rows);
      linger = true;
    } else {
      write_scores(rows);
    }
    requests.clear();
    lock.lock();
    if (!rows.empty()) {
      scores_done_total_ += rows.size();
      scores_written_.notify_all();
      rows.clear();
    }
  }
  stopped_ = true;
}

void EventAppender::write_events(std::vector<Request>& requests,
                                 const std::vector<store::ScoreRecord>& rows) {
  // Events that passed prepare, moved (not copied: four strings each) into
  // one span for the transaction and moved back for the callbacks; `from`
  // says which request and position each came from.
  std::size_t total = 0;
  for (const Request& request : requests) total += request.events.size();
  std::vector<Event> batch;
  batch.reserve(total);
  std::vector<std::pair<std::size_t, std::size_t>> from;
  from.reserve(total);
  std::vector<Contact> new_contacts;
  std::vector<Answers> answers(requests.size());
  for (std::size_t r = 0; r < requests.size(); ++r) {
    answers[r].assign(requests[r].events.size(), Result<bool>(false));
    for (std::size_t i = 0; i < requests[r].events.size(); ++i) {
      Event& e = requests[r].events[i];
      if (Status s = prepare_ ? prepare_(e, &new_contacts) : Status::ok(); !s) {
        answers[r][i] = s;
        continue;
      }
      batch.push_back(std::move(e));
      from.emplace_back(r, i);
    }
  }
  if (batch.empty()) {
    write_scores(rows);
  } else {
    if (before_write_) before_write_(batch);
    std::vector<bool> created;
    auto written = store_.append_batch(batch, rows, new_contacts, &created);
    if (!written && !rows.empty()) {
      // Keep a refused history row from costing the events: apart, each
      // stands or falls on its own.
      written = store_.append_batch(batch, {}, new_contacts, &created);
      write_scores(rows);
    }
    if (written && !new_contacts.empty() && contacts_written_) {
      contacts_written_(Committed{new_contacts, created, batch, *written});
    }
    for (std::size_t k = 0; k < batch.size(); ++k) {
      const auto [r, i] = from[k];
      answers[r][i] = written ? Result<bool>(bool((*written)[k])) : Result<bool>(written.status());
      requests[r].events[i] = std::move(batch[k]);
    }
    batches_.fetch_add(1, std::memory_order_relaxed);
    written_.fetch_add(batch.size(), std::memory_order_relaxed);
  }
  for (std::size_t r = 0; r < requests.size(); ++r) {
    const std::size_t n = requests[r].events.size();
    requests[r].done(std::move(requests[r].events), std::move(answers[r]));
    queued_.fetch_sub(n, std::memory_order_relaxed);
  }
  if (after_answers_) after_answers_();
}

void EventAppender::write_scores(const std::vector<store::ScoreRecord>& rows) {
  if (rows.empty()) return;
  if (Status s = store_.append_scores(rows); !s) {
    if (scores_failed_.fetch_add(rows.size(), std::memory_order_relaxed) == 0) {
      spdlog::warn("score history write failed: {}", s.message());
    }
  }
}

}  // namespace reai::server
