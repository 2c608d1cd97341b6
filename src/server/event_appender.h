// EventAppender: the one thread that writes to the store on the request
// path, so the io threads never wait on the disk.
//
// Events: requests queue their events; the thread takes everything queued,
// writes it with one store transaction (one commit for the whole batch, which
// grows with the load) and hands each request its answers through the
// request's own callback. The caller answers the client only from that
// callback: an event is acknowledged only once durable. The queue is bounded
// in events: submit() refuses work beyond it, and the caller answers 503 with
// Retry-After instead of growing memory.
//
// Score history: rows ride in the next event batch's transaction (a bounded
// chunk per turn), so a busy writer pays one commit per turn for both. A row
// wakes the thread only when it sleeps idle (not one wake per row); an idle
// thread writes it at once in a transaction of its own. With
// Limits::score_linger > 0 the thread, after a batch, first waits that long
// for the next events to carry the rows of the batch just answered (a
// wake-up and a commit fewer per batch under load). Off by default: the GHL
// write-back's restart reconciliation reads the newest history row, and a
// kill -9 just after an answer must find it written (a 5 ms linger lost it
// in GhlWritebackTest.KilledMidOutboxDeliversEveryPendingUpdateOnceAfterRestart). Sharing the thread
// (rather than a second writer contending for the store's single write lock)
// keeps an event batch from waiting behind a long history write. History is
// an audit aid: a full row queue drops rows and counts them; the live score
// is never lost, and a row the store refuses never costs an event. Private.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "core/status.h"
#include "core/types.h"
#include "store/store.h"

namespace reai::server {

class EventAppender {
 public:
  // Per event, in submission order: true written, false a replay of a stored
  // event id, or the error that kept it from being written.
  using Answers = std::vector<Result<bool>>;
  // Runs on the appender thread: must be short and must not block (post the
  // real work elsewhere).
  using Done = std::function<void(std::vector<Event> events, Answers answers)>;
  // Runs on the appender thread before an event is written (e.g. create its
  // tenant); an error becomes that event's answer and the event is not
  // written. A contact it appends to `new_contacts` (one the store may not
  // hold yet) is inserted when absent in the batch's own transaction, ahead
  // of the events: one commit for both.
  using Prepare = std::function<Status(const Event&, std::vector<Contact>* new_contacts)>;
  // Runs on the appender thread once a batch's new contacts are committed,
  // before its Done callbacks: every contact the batch introduced, which of
  // them the commit created (one flag each: the store held nothing of them
  // before), and the batch's events with, for each, whether it was stored.
  struct Committed {
    const std::vector<Contact>& contacts;
    const std::vector<bool>& created;
    std::span<const Event> events;
    const std::vector<bool>& stored;
  };
  using ContactsWritten = std::function<void(const Committed&)>;
  // Runs on the appender thread with a batch's events (those that passed
  // prepare) just before their transaction, e.g. to tell other instances
  // they are being written. May block briefly; cannot refuse them.
  using BeforeWrite = std::function<void(std::span<const Event>)>;
  // Runs on the appender thread once a batch's Done callbacks have all run
  // (e.g. to hand the io threads the answers those callbacks gathered).
  using AfterAnswers = std::function<void()>;

  struct Limits {
    std::size_t max_queued_events = 16384;
    std::size_t max_queued_scores = 100'000;
    std::size_t score_rows_per_turn = 1024;  // history rows written per turn
    // How long, after a batch, history rows wait for the next events to
    // ride with (0: written as soon as the thread is idle). See above.
    std::chrono::microseconds score_linger{0};
  };

  EventAppender(store::Store& store, Prepare prepare, Limits limits, ContactsWritten contacts_written = nullptr,
                BeforeWrite before_write = nullptr, AfterAnswers after_answers = nullptr);
  // As stop().
  ~EventAppender();
  EventAppender(const EventAppender&) = delete;
  EventAppender& operator=(const EventAppender&) = delete;

  // Queues `events` (at least one); `done` is called once, on the appender
  // thread, after they are written. False (and nothing queued, `done` never
  // called) when the queue cannot take them all or after stop(). Any thread.
  bool submit(std::vector<Event> events, Done done);
  // Queues a score history row (any thread). After stop() the row is written
  // on the caller's thread.
  void append_score(store::ScoreRecord record);
  // Blocks until every history row queued before the call is in the store.
  void flush_scores();
  // Writes everything queued, calls its callbacks, then joins. Idempotent;
  // not from a Done callback.
  void stop();

  std::size_t queued_events() const { return queued_.load(std::memory_order_relaxed); }
  std::uint64_t rejected() const { return rejected_.load(std::memory_order_relaxed); }
  std::uint64_t batches() const { return batches_.load(std::memory_order_relaxed); }
  std::uint64_t written() const { return written_.load(std::memory_order_relaxed); }
  std::uint64_t scores_dropped() const { return scores_dropped_.load(std::memory_order_relaxed); }
  std::uint64_t scores_failed() const { return scores_failed_.load(std::memory_order_relaxed); }

 private:
  struct Request {
    std::vector<Event> events;
    Done done;
  };

  void run();
  // Under mu_: something must be written now (not just history rows that
  // can wait for the next events).
  bool due() const;
  // Writes the requests' events and `rows` (may be empty) in one commit.
  void write_events(std::vector<Request>& requests, const std::vector<store::ScoreRecord>& rows);
  void write_scores(const std::vector<store::ScoreRecord>& rows);

  store::Store& store_;
  const Prepare prepare_;
  const ContactsWritten contacts_written_;
  const BeforeWrite before_write_;
  const AfterAnswers after_answers_;
  const Limits limits_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable scores_written_;
  std::vector<Request> queue_;
  std::size_t queue_events_ = 0;  // events in queue_
  std::deque<store::ScoreRecord> scores_;
  std::uint64_t scores_queued_total_ = 0;
  std::uint64_t scores_done_total_ = 0;  // written, failed or dropped at stop
  int flush_waiters_ = 0;  // flush_scores() callers waiting: rows are due now
  bool sleeping_ = false;  // the thread waits for anything, no timeout: a history row wakes it
  bool stopping_ = false;
  bool stopped_ = false;  // the thread has exited
  std::atomic<std::size_t> queued_{0};  // events queued or being written
  std::atomic<std::uint64_t> rejected_{0};
  std::atomic<std::uint64_t> batches_{0};
  std::atomic<std::uint64_t> written_{0};
  std::atomic<std::uint64_t> scores_dropped_{0};
  std::atomic<std::uint64_t> scores_failed_{0};
  std::thread thread_;  // last: started once everything above exists
};

}  // namespace reai::server
