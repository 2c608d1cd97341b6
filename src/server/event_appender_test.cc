#include "server/event_appender.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace reai::server {
namespace {

Event event(const std::string& id, const std::string& contact = "c1") {
  Event e;
  e.tenant_id = "t1";
  e.event_id = id;
  e.contact_id = contact;
  e.ts = 1'700'000'000;
  e.type = EventType::kPageView;
  return e;
}

store::ScoreRecord score_row(const std::string& contact, int score) {
  return store::ScoreRecord{"t1", contact, 1'700'000'000, score / 100.0, score, "warm", "v1", "[]"};
}

// Collects one request's answers; get() waits for them.
struct Outcome {
  std::promise<std::pair<std::vector<Event>, EventAppender::Answers>> promise;
  std::future<std::pair<std::vector<Event>, EventAppender::Answers>> future = promise.get_future();
  EventAppender::Done done() {
    return [this](std::vector<Event> events, EventAppender::Answers answers) {
      promise.set_value({std::move(events), std::move(answers)});
    };
  }
};

// Holds the appender thread inside prepare until released, so tests can
// fill the queue deterministically.
class Gate {
 public:
  Status wait_open() {
    std::unique_lock lock(mu_);
    ++waiting_;
    cv_.notify_all();
    cv_.wait(lock, [this] { return open_; });
    return Status::ok();
  }
  void wait_until_held() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return waiting_ > 0; });
  }
  void open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int waiting_ = 0;
  bool open_ = false;
};

TEST(EventAppenderTest, AnswersEachEventInSubmissionOrder) {
  auto store = store::make_memory_store();
  ASSERT_TRUE(store->append_event(event("old")).value());
  EventAppender appender(*store, nullptr, {});
  Outcome outcome;
  ASSERT_TRUE(appender.submit({event("a"), event("old"), event("b"), event("a")}, outcome.done()));
  auto [events, answers] = outcome.future.get();
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[1].event_id, "old");
  ASSERT_EQ(answers.size(), 4u);
  EXPECT_TRUE(answers[0].value());
  EXPECT_FALSE(answers[1].value());
  EXPECT_TRUE(answers[2].value());
  EXPECT_FALSE(answers[3].value());
  EXPECT_EQ(store->count_events("t1").value(), 3u);
  EXPECT_EQ(appender.written(), 4u);
}

TEST(EventAppenderTest, NewContactsShareTheBatchAndAreReportedOnceWritten) {
  auto store = store::make_memory_store();
  std::vector<Contact> reported;
  std::vector<bool> created, stored;
  std::vector<std::string> events_seen;
  EventAppender appender(
      *store,
      [](const Event& e, std::vector<Contact>* new_contacts) {
        if (e.contact_id != "known") {
          Contact c;
          c.tenant_id = e.tenant_id;
          c.contact_id = e.contact_id;
          c.created_at = e.ts;
          new_contacts->push_back(c);
        }
        return Status::ok();
      },
      {}, [&](const EventAppender::Committed& batch) {
        reported = batch.contacts;
        created = batch.created;
        stored = batch.stored;
        events_seen.clear();
        for (const Event& e : batch.events) events_seen.push_back(e.event_id);
      });
  Outcome outcome;
  ASSERT_TRUE(appender.submit({event("e1", "new"), event("e2", "known"), event("", "lost")}, outcome.done()));
  auto [events, answers] = outcome.future.get();
  // The whole batch is refused (an event without an id): no contact from it
  // is written or reported, and the events come back intact for the answer.
  ASSERT_FALSE(answers[0].has_value());
  EXPECT_EQ(events[0].event_id, "e1");
  EXPECT_EQ(events[1].contact_id, "known");
  EXPECT_TRUE(reported.empty());
  EXPECT_EQ(store->count_contacts("t1").value(), 0u);

  Outcome second;
  ASSERT_TRUE(appender.submit({event("e1", "new"), event("e2", "known")}, second.done()));
  EXPECT_TRUE(second.future.get().second[0].value());
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_EQ(reported[0].contact_id, "new");
  EXPECT_EQ(created, std::vector<bool>{true});  // absent before this commit
  EXPECT_EQ(events_seen, (std::vector<std::string>{"e1", "e2"}));
  EXPECT_EQ(stored, (std::vector<bool>{true, true}));
  EXPECT_EQ(store->get_contact("t1", "new").value().created_at, 1'700'000'000);
  EXPECT_EQ(appender.batches(), 2u);

  // The same contact again (this instance's prepare did not know it), and a
  // replayed event: reported, but not as created, and the replay not stored.
  Outcome third;
  ASSERT_TRUE(appender.submit({event("e3", "new"), event("e1", "known")}, third.done()));
  EXPECT_TRUE(third.future.get().second[0].value());
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_EQ(created, std::vector<bool>{false});
  EXPECT_EQ(stored, (std::vector<bool>{true, false}));
}

TEST(EventAppenderTest, PrepareErrorAnswersOnlyThatEvent) {
  auto store = store::make_memory_store();
  EventAppender appender(
      *store,
      [](const Event& e, std::vector<Contact>*) { return e.contact_id == "bad" ? unavailable("contact store down") : Status::ok(); }, {});
  Outcome outcome;
  ASSERT_TRUE(appender.submit({event("e1"), event("e2", "bad"), event("e3")}, outcome.done()));
  auto [events, answers] = outcome.future.get();
  EXPECT_TRUE(answers[0].value());
  ASSERT_FALSE(answers[1].has_value());
  EXPECT_EQ(answers[1].status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(answers[2].value());
  EXPECT_EQ(store->count_events("t1").value(), 2u);
}

TEST(EventAppenderTest, StoreErrorAnswersEveryEventOfTheBatch) {
  auto store = store::make_memory_store();
  EventAppender appender(*store, nullptr, {});
  Outcome outcome;
  // An event without contact fails validation, which fails the transaction.
  ASSERT_TRUE(appender.submit({event("e1"), event("e2", "")}, outcome.done()));
  auto [events, answers] = outcome.future.get();
  for (const auto& a : answers) {
    ASSERT_FALSE(a.has_value());
    EXPECT_EQ(a.status().code(), StatusCode::kInvalidArgument);
  }
  EXPECT_EQ(store->count_events("t1").value(), 0u);
}

TEST(EventAppenderTest, RequestsQueuedTogetherShareOneCommit) {
  auto store = store::make_memory_store();
  Gate gate;
  EventAppender appender(
      *store, [&gate](const Event& e, std::vector<Contact>*) { return e.event_id == "first" ? gate.wait_open() : Status::ok(); }, {});
  Outcome first, second, third;
  ASSERT_TRUE(appender.submit({event("first")}, first.done()));
  gate.wait_until_held();
  ASSERT_TRUE(appender.submit({event("s1"), event("s2")}, second.done()));
  ASSERT_TRUE(appender.submit({event("t1")}, third.done()));
  gate.open();
  EXPECT_TRUE(first.future.get().second[0].value());
  EXPECT_EQ(second.future.get().second.size(), 2u);
  EXPECT_TRUE(third.future.get().second[0].value());
  EXPECT_EQ(appender.batches(), 2u);  // "first", then the two queued behind it
  EXPECT_EQ(store->count_events("t1").value(), 4u);
}

// The after-answers hook runs once per batch, on the appender thread, after
// every Done of that batch and before the next batch's first.
TEST(EventAppenderTest, AfterAnswersRunsOncePerBatchAfterItsLastAnswer) {
  auto store = store::make_memory_store();
  Gate gate;
  std::vector<std::string> log;  // appender thread only, read after stop()
  auto done = [&](const std::string& name) {
    return [&, name](std::vector<Event>, EventAppender::Answers) { log.push_back(name); };
  };
  {
    EventAppender appender(
        *store, [&gate](const Event& e, std::vector<Contact>*) { return e.event_id == "first" ? gate.wait_open() : Status::ok(); },
        {}, nullptr, nullptr, [&] { log.push_back("after"); });
    ASSERT_TRUE(appender.submit({event("first")}, done("first")));
    gate.wait_until_held();
    ASSERT_TRUE(appender.submit({event("s1"), event("s2")}, done("second")));
    ASSERT_TRUE(appender.submit({event("t1")}, done("third")));
    gate.open();
    appender.stop();
    EXPECT_EQ(appender.batches(), 2u);
  }
  EXPECT_EQ(log, (std::vector<std::string>{"first", "after", "second", "third", "after"}));
}

TEST(EventAppenderTest, FullQueueRefusesUntilDrained) {
  auto store = store::make_memory_store();
  Gate gate;
  EventAppender appender(
      *store, [&gate](const Event& e, std::vector<Contact>*) { return e.event_id == "hold" ? gate.wait_open() : Status::ok(); },
      EventAppender::Limits{.max_queued_events = 3});
  Outcome held, a, b;
  ASSERT_TRUE(appender.submit({event("hold")}, held.done()));
  gate.wait_until_held();  // taken off the queue: the queue is empty again
  ASSERT_TRUE(appender.submit({event("a1"), event("a2")}, a.done()));
  ASSERT_TRUE(appender.submit({event("b1")}, b.done()));
  EXPECT_FALSE(appender.submit({event("c1")}, [](std::vector<Event>, EventAppender::Answers) { FAIL(); }));
  EXPECT_EQ(appender.rejected(), 1u);
  EXPECT_EQ(appender.queued_events(), 4u);  // 3 queued + 1 being written
  gate.open();
  held.future.get();
  a.future.get();
  b.future.get();
  EXPECT_EQ(store->count_events("t1").value(), 4u);
  Outcome later;
  EXPECT_TRUE(appender.submit({event("c1")}, later.done()));
  EXPECT_TRUE(later.future.get().second[0].value());
}

TEST(EventAppenderTest, OversizeRequestIsTakenWhenTheQueueIsEmpty) {
  auto store = store::make_memory_store();
  EventAppender appender(*store, nullptr, EventAppender::Limits{.max_queued_events = 2});
  Outcome outcome;
  ASSERT_TRUE(appender.submit({event("e1"), event("e2"), event("e3")}, outcome.done()));
  EXPECT_EQ(outcome.future.get().second.size(), 3u);
}

TEST(EventAppenderTest, EmptyRequestIsRefused) {
  auto store = store::make_memory_store();
  EventAppender appender(*store, nullptr, {});
  EXPECT_FALSE(appender.submit({}, [](std::vector<Event>, EventAppender::Answers) { FAIL(); }));
}

TEST(EventAppenderTest, StopWritesWhatIsQueuedThenRefuses) {
  auto store = store::make_memory_store();
  Gate gate;
  EventAppender appender(
      *store, [&gate](const Event& e, std::vector<Contact>*) { return e.event_id == "hold" ? gate.wait_open() : Status::ok(); }, {});
  std::atomic<int> answered{0};
  auto count = [&answered](std::vector<Event>, EventAppender::Answers answers) {
    for (const auto& a : answers) answered += a.value() ? 1 : 0;
  };
  ASSERT_TRUE(appender.submit({event("hold")}, count));
  gate.wait_until_held();
  ASSERT_TRUE(appender.submit({event("q1"), event("q2")}, count));
  std::thread stopper([&appender] { appender.stop(); });
  gate.open();
  stopper.join();
  EXPECT_EQ(answered.load(), 3);
  EXPECT_EQ(store->count_events("t1").value(), 3u);
  EXPECT_FALSE(appender.submit({event("late")}, count));
  appender.stop();  // idempotent
}

TEST(EventAppenderTest, ScoreRowsAreWrittenAndFlushed) {
  auto store = store::make_memory_store();
  EventAppender appender(*store, nullptr, EventAppender::Limits{.score_rows_per_turn = 2});
  for (int i = 0; i < 5; ++i) appender.append_score(score_row("c1", i));
  appender.flush_scores();
  auto rows = store->score_history("t1", "c1", 10).value();
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows[0].score, 4);  // newest first (same ts: later insertion first)
  appender.stop();
  appender.append_score(score_row("c1", 9));  // after stop: written directly
  appender.flush_scores();
  EXPECT_EQ(store->score_history("t1", "c1", 10).value().size(), 6u);
}

TEST(EventAppenderTest, ScoreRowsRideWithTheNextEventBatch) {
  auto store = store::make_memory_store();
  // A linger far longer than the test: rows written before it ends can only
  // have gone in the second event's transaction.
  EventAppender appender(*store, nullptr, EventAppender::Limits{.score_linger = std::chrono::seconds(600)});
  Outcome first, second;
  ASSERT_TRUE(appender.submit({event("e1")}, first.done()));
  first.future.get();
  for (int i = 0; i < 3; ++i) appender.append_score(score_row("c1", i));
  ASSERT_TRUE(appender.submit({event("e2")}, second.done()));
  EXPECT_TRUE(second.future.get().second[0].value());
  EXPECT_EQ(store->score_history("t1", "c1", 10).value().size(), 3u);
  EXPECT_EQ(appender.batches(), 2u);
}

TEST(EventAppenderTest, ScoreRowWithoutEventsIsWrittenAfterTheLinger) {
  auto store = store::make_memory_store();
  EventAppender appender(*store, nullptr, EventAppender::Limits{.score_linger = std::chrono::milliseconds(1)});
  Outcome first;
  ASSERT_TRUE(appender.submit({event("e1")}, first.done()));
  first.future.get();
  appender.append_score(score_row("c1", 7));  // lingering or asleep: either way it gets written
  // No flush_scores(): the thread must write the row on its own.
  std::size_t rows = 0;
  for (int i = 0; i < 5000 && rows == 0; ++i) {
    rows = store->score_history("t1", "c1", 10).value().size();
    if (rows == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(rows, 1u);
  appender.append_score(score_row("c2", 8));  // long idle now: this row wakes the thread
  for (int i = 0; i < 5000 && store->score_history("t1", "c2", 10).value().empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  EXPECT_EQ(store->score_history("t1", "c2", 10).value().size(), 1u);
  EXPECT_EQ(appender.scores_failed(), 0u);
}

TEST(EventAppenderTest, ScoreRowsBeyondTheBoundAreDroppedAndCounted) {
  auto store = store::make_memory_store();
  Gate gate;
  EventAppender appender(
      *store, [&gate](const Event& e, std::vector<Contact>*) { return e.event_id == "hold" ? gate.wait_open() : Status::ok(); },
      EventAppender::Limits{.max_queued_scores = 2});
  Outcome held;
  ASSERT_TRUE(appender.submit({event("hold")}, held.done()));
  gate.wait_until_held();
  for (int i = 0; i < 5; ++i) appender.append_score(score_row("c1", i));
  EXPECT_EQ(appender.scores_dropped(), 3u);
  gate.open();
  held.future.get();
  appender.flush_scores();
  EXPECT_EQ(store->score_history("t1", "c1", 10).value().size(), 2u);
  EXPECT_EQ(appender.scores_failed(), 0u);
}

TEST(EventAppenderTest, InvalidScoreRowsAreCountedAsFailed) {
  auto store = store::make_memory_store();
  EventAppender appender(*store, nullptr, {});
  appender.append_score(score_row("", 1));  // no contact: invalid
  appender.flush_scores();
  EXPECT_EQ(appender.scores_failed(), 1u);
}

}  // namespace
}  // namespace reai::server
