// WsHub/WsShard fan-out without sockets: a manual shard runs posted pumps
// one at a time so slicing, ordering and membership are observable.
#include "server/ws_hub.h"

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bus/bus.h"
#include "server/ws_frame.h"

namespace reai::server {
namespace {

class ManualShard final : public WsShard {
 public:
  // Runs one posted task; false when none is queued.
  bool run_one() {
    if (tasks_.empty()) return false;
    auto task = std::move(tasks_.front());
    tasks_.pop_front();
    task();
    return true;
  }
  int run_all() {
    int runs = 0;
    while (run_one()) ++runs;
    return runs;
  }
  std::size_t queued_tasks() const { return tasks_.size(); }
  // Tasks waiting for a delay (post_after), and the delays they asked for.
  std::size_t delayed_tasks() const { return delayed_.size(); }
  const std::vector<Clock::duration>& delays() const { return delays_; }
  // Lets the first delayed task's time pass: it becomes an ordinary queued task.
  bool elapse_one() {
    if (delayed_.empty()) return false;
    tasks_.push_back(std::move(delayed_.front()));
    delayed_.pop_front();
    return true;
  }

 protected:
  void post(std::function<void()> task) override { tasks_.push_back(std::move(task)); }
  void post_after(Clock::duration delay, std::function<void()> task) override {
    delays_.push_back(delay);
    delayed_.push_back(std::move(task));
  }

 private:
  std::deque<std::function<void()>> tasks_;
  std::deque<std::function<void()>> delayed_;
  std::vector<Clock::duration> delays_;
};

class RecordingSubscriber final : public WsSubscriber {
 public:
  explicit RecordingSubscriber(WsShard* shard) : shard_(shard) {}
  void deliver(std::uint64_t seq, std::shared_ptr<const std::string> frame) override {
    seqs.push_back(seq);
    frames.emplace_back(ws_frame_payload(*frame));
  }
  void flush() override { flushed_at.push_back(seqs.size()); }
  void going_away() override { ++going_away_calls; }
  WsShard* shard() const override { return shard_; }

  std::vector<std::uint64_t> seqs;
  std::vector<std::string> frames;
  std::vector<std::size_t> flushed_at;  // deliveries so far at each flush()
  int going_away_calls = 0;

 private:
  WsShard* shard_;
};

class WsHubTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bus_ = bus::make_in_process_bus(1024);
    hub_ = std::make_unique<WsHub>(*bus_);
    first_ = static_cast<ManualShard*>(hub_->assign_shard([] {
      std::vector<std::unique_ptr<WsShard>> shards;
      shards.push_back(std::make_unique<ManualShard>());
      shards.push_back(std::make_unique<ManualShard>());
      return shards;
    }));
    second_ = static_cast<ManualShard*>(hub_->assign_shard([] { return std::vector<std::unique_ptr<WsShard>>{}; }));
    hub_->start();
  }
  void TearDown() override { hub_->stop(); }

  std::vector<std::shared_ptr<RecordingSubscriber>> join(const std::string& tenant, ManualShard* shard, int n) {
    std::vector<std::shared_ptr<RecordingSubscriber>> out;
    for (int i = 0; i < n; ++i) {
      out.push_back(std::make_shared<RecordingSubscriber>(shard));
      hub_->join(tenant, out.back());
    }
    return out;
  }
  void publish(const std::string& tenant, const std::string& payload) {
    ASSERT_TRUE(bus_->publish(tenant, "score_update", std::make_shared<const std::string>(payload)));
  }

  std::unique_ptr<bus::Bus> bus_;
  std::unique_ptr<WsHub> hub_;
  ManualShard* first_ = nullptr;
  ManualShard* second_ = nullptr;
};

TEST_F(WsHubTest, ShardsAreCreatedOnceAndAssignedRoundRobin) {
  ASSERT_NE(first_, nullptr);
  ASSERT_NE(second_, nullptr);
  EXPECT_NE(first_, second_);
  EXPECT_EQ(hub_->assign_shard([] { return std::vector<std::unique_ptr<WsShard>>{}; }), first_);
  EXPECT_EQ(hub_->assign_shard([] { return std::vector<std::unique_ptr<WsShard>>{}; }), second_);
}

TEST_F(WsHubTest, OneJobPerShardPerMessageAndFramedOnce) {
  auto a = join("tenant-a", first_, 3);
  auto b = join("tenant-a", second_, 2);
  publish("tenant-a", R"({"contact_id":"c1","score":0.5})");
  // Nothing is delivered on the publishing thread; one pump per shard.
  EXPECT_EQ(first_->queued_tasks(), 1u);
  EXPECT_EQ(second_->queued_tasks(), 1u);
  EXPECT_EQ(first_->pending_jobs(), 1u);
  EXPECT_EQ(first_->run_all(), 1);
  EXPECT_EQ(second_->run_all(), 1);
  for (const auto& s : a) {
    ASSERT_EQ(s->frames.size(), 1u);
    EXPECT_EQ(s->frames[0], R"({"type":"score_update","seq":1,"contact_id":"c1","score":0.5})");
  }
  for (const auto& s : b) EXPECT_EQ(s->seqs, std::vector<std::uint64_t>{1});
  EXPECT_EQ(first_->pending_jobs(), 0u);
}

TEST_F(WsHubTest, PumpDeliversInBoundedSlicesAndKeepsOrder) {
  const int n = static_cast<int>(WsShard::kDeliveriesPerRun) * 2 + 10;
  auto subs = join("tenant-a", first_, n);
  // Three messages queue before the shard runs at all.
  publish("tenant-a", R"({"n":1})");
  publish("tenant-a", R"({"n":2})");
  publish("tenant-a", R"({"n":3})");
  EXPECT_EQ(first_->queued_tasks(), 1u);
  EXPECT_EQ(first_->pending_jobs(), 3u);
  // The first run stops after one slice and re-posts itself. The three
  // waiting messages go to each session together, then one flush.
  ASSERT_TRUE(first_->run_one());
  const int per_run = static_cast<int>(WsShard::kDeliveriesPerRun) / 3;
  int served = 0;
  for (const auto& s : subs) {
    if (s->seqs.empty()) continue;
    ++served;
    EXPECT_EQ(s->seqs, (std::vector<std::uint64_t>{1, 2, 3}));
    EXPECT_EQ(s->flushed_at, std::vector<std::size_t>{3});
  }
  EXPECT_EQ(served, per_run);
  EXPECT_EQ(first_->queued_tasks(), 1u);
  const int runs = (n + per_run - 1) / per_run;
  EXPECT_EQ(1 + first_->run_all(), runs);
  for (const auto& s : subs) {
    EXPECT_EQ(s->seqs, (std::vector<std::uint64_t>{1, 2, 3}));
    EXPECT_EQ(s->flushed_at, std::vector<std::size_t>{3});
  }
  EXPECT_EQ(first_->pending_jobs(), 0u);
  // Idle again: the next message schedules one new pump.
  publish("tenant-a", R"({"n":4})");
  EXPECT_EQ(first_->queued_tasks(), 1u);
  first_->run_all();
  for (const auto& s : subs) EXPECT_EQ(s->seqs.back(), 4u);
}

TEST_F(WsHubTest, MessageJoinsTheFanOutInProgress) {
  const std::size_t n = WsShard::kDeliveriesPerRun + 172;
  auto subs = join("tenant-a", first_, static_cast<int>(n));
  publish("tenant-a", R"({"n":1})");
  ASSERT_TRUE(first_->run_one());  // the first kDeliveriesPerRun sessions have message 1
  publish("tenant-a", R"({"n":2})");
  EXPECT_EQ(first_->queued_tasks(), 1u);  // the pump is still scheduled
  EXPECT_EQ(first_->pending_jobs(), 2u);
  first_->run_all();
  // Sessions not yet reached when message 2 arrived get both in one write;
  // the others get message 2 on the next round. (Session order is the
  // hub's, not the join order.)
  std::size_t one_write = 0;
  std::size_t two_writes = 0;
  for (const auto& s : subs) {
    EXPECT_EQ(s->seqs, (std::vector<std::uint64_t>{1, 2}));
    if (s->flushed_at == std::vector<std::size_t>{2}) ++one_write;
    if (s->flushed_at == (std::vector<std::size_t>{1, 2})) ++two_writes;
  }
  EXPECT_EQ(two_writes, WsShard::kDeliveriesPerRun);
  EXPECT_EQ(one_write, n - WsShard::kDeliveriesPerRun);
  EXPECT_EQ(first_->pending_jobs(), 0u);
  // The next message starts where the last round ended (the first session
  // that got both at once), so the same sessions are not always served last.
  publish("tenant-a", R"({"n":3})");
  ASSERT_TRUE(first_->run_one());
  std::size_t reached = 0;
  for (const auto& s : subs) {
    if (s->seqs.back() != 3u) continue;
    ++reached;
    EXPECT_EQ(s->flushed_at.size(), 2u);  // one of the sessions served once for 1 and 2
  }
  EXPECT_EQ(reached, WsShard::kDeliveriesPerRun);
  first_->run_all();
  for (const auto& s : subs) EXPECT_EQ(s->seqs.back(), 3u);
}

// The linger is an hour here so the test never depends on how fast it runs.
TEST_F(WsHubTest, LingerSendsTheMessagesOfAWindowInOneWritePerSessionInOrder) {
  hub_->set_linger(std::chrono::hours(1));
  auto subs = join("tenant-a", first_, 3);
  // The first message after a quiet spell goes out at once.
  publish("tenant-a", R"({"n":1})");
  EXPECT_EQ(first_->queued_tasks(), 1u);
  EXPECT_EQ(first_->delayed_tasks(), 0u);
  first_->run_all();
  // Messages arriving within the linger wait for the window's end, then go
  // to each session together, in order, with one flush.
  publish("tenant-a", R"({"n":2})");
  publish("tenant-a", R"({"n":3})");
  publish("tenant-a", R"({"n":4})");
  EXPECT_EQ(first_->queued_tasks(), 0u);
  ASSERT_EQ(first_->delayed_tasks(), 1u);
  EXPECT_GT(first_->delays()[0], WsShard::Clock::duration::zero());
  EXPECT_LE(first_->delays()[0], std::chrono::hours(1));
  EXPECT_EQ(first_->pending_jobs(), 3u);
  for (const auto& s : subs) EXPECT_EQ(s->seqs, std::vector<std::uint64_t>{1});
  ASSERT_TRUE(first_->elapse_one());
  first_->run_all();
  for (const auto& s : subs) {
    EXPECT_EQ(s->seqs, (std::vector<std::uint64_t>{1, 2, 3, 4}));
    EXPECT_EQ(s->flushed_at, (std::vector<std::size_t>{1, 4}));
    ASSERT_EQ(s->frames.size(), 4u);
    EXPECT_EQ(s->frames[3], R"({"type":"score_update","seq":4,"n":4})");
  }
  EXPECT_EQ(first_->pending_jobs(), 0u);
  // Without a linger every message is pumped at once again.
  hub_->set_linger(WsShard::Clock::duration::zero());
  publish("tenant-a", R"({"n":5})");
  EXPECT_EQ(first_->queued_tasks(), 1u);
  EXPECT_EQ(first_->delayed_tasks(), 0u);
  first_->run_all();
  for (const auto& s : subs) EXPECT_EQ(s->flushed_at, (std::vector<std::size_t>{1, 4, 5}));
}

// A shard writing to few sessions waits a proportionally shorter window:
// one session, 1/256 of the linger; 256 sessions or more, all of it. (The
// linger is an hour, so the time the test itself takes never matters.)
TEST_F(WsHubTest, LingerWindowShrinksWithTheSessionsAShardWritesTo) {
  hub_->set_linger(std::chrono::hours(1));
  const WsShard::Clock::duration kFull = std::chrono::hours(1);
  const WsShard::Clock::duration one_session_window = kFull / WsShard::kSessionsForFullLinger;
  auto alone = join("tenant-a", first_, 1);
  publish("tenant-a", R"({"n":1})");
  first_->run_all();
  publish("tenant-a", R"({"n":2})");
  publish("tenant-a", R"({"n":3})");
  ASSERT_EQ(first_->delayed_tasks(), 1u);
  EXPECT_GT(first_->delays()[0], one_session_window / 2);
  EXPECT_LE(first_->delays()[0], one_session_window);
  ASSERT_TRUE(first_->elapse_one());
  first_->run_all();
  EXPECT_EQ(alone[0]->seqs, (std::vector<std::uint64_t>{1, 2, 3}));
  EXPECT_EQ(alone[0]->flushed_at, (std::vector<std::size_t>{1, 3}));

  // Another tenant with kSessionsForFullLinger sessions on the same shard:
  // its messages wait (nearly) the whole hour.
  auto crowd = join("tenant-b", first_, static_cast<int>(WsShard::kSessionsForFullLinger));
  publish("tenant-b", R"({"n":1})");
  ASSERT_EQ(first_->delayed_tasks(), 1u);
  EXPECT_GT(first_->delays()[1], kFull - one_session_window);
  EXPECT_LE(first_->delays()[1], kFull);
  ASSERT_TRUE(first_->elapse_one());
  first_->run_all();
  for (const auto& s : crowd) EXPECT_EQ(s->seqs, std::vector<std::uint64_t>{1});
}

TEST_F(WsHubTest, LingerAppliesToShardsCreatedLater) {
  auto bus = bus::make_in_process_bus(16);
  WsHub hub(*bus);
  hub.set_linger(std::chrono::hours(1));
  auto* shard = static_cast<ManualShard*>(hub.assign_shard([] {
    std::vector<std::unique_ptr<WsShard>> shards;
    shards.push_back(std::make_unique<ManualShard>());
    return shards;
  }));
  hub.start();
  auto sub = std::make_shared<RecordingSubscriber>(shard);
  hub.join("tenant-a", sub);
  auto payload = std::make_shared<const std::string>(R"({"n":1})");
  ASSERT_TRUE(bus->publish("tenant-a", "score_update", payload));
  shard->run_all();
  ASSERT_TRUE(bus->publish("tenant-a", "score_update", payload));
  EXPECT_EQ(shard->queued_tasks(), 0u);
  EXPECT_EQ(shard->delayed_tasks(), 1u);
  ASSERT_TRUE(shard->elapse_one());
  shard->run_all();
  EXPECT_EQ(sub->seqs, (std::vector<std::uint64_t>{1, 2}));
  hub.stop();
}

TEST_F(WsHubTest, TenantsAreIsolated) {
  auto a = join("tenant-a", first_, 2);
  auto b = join("tenant-b", first_, 2);
  publish("tenant-a", R"({"x":1})");
  publish("tenant-b", R"({"x":2})");
  publish("tenant-a", R"({"x":3})");
  first_->run_all();
  for (const auto& s : a) EXPECT_EQ(s->seqs, (std::vector<std::uint64_t>{1, 2}));
  for (const auto& s : b) {
    EXPECT_EQ(s->seqs, std::vector<std::uint64_t>{1});
    EXPECT_EQ(s->frames[0], R"({"type":"score_update","seq":1,"x":2})");
  }
  EXPECT_EQ(hub_->connections("tenant-a"), 2u);
  EXPECT_EQ(hub_->connections("tenant-c"), 0u);
  EXPECT_EQ(hub_->total_connections(), 4u);
}

TEST_F(WsHubTest, LeaveAndDestroyedSessionsGetNothingMore) {
  auto subs = join("tenant-a", first_, 3);
  publish("tenant-a", R"({"x":1})");
  first_->run_all();
  hub_->leave("tenant-a", subs[0].get());
  // Queued for a session that is then destroyed: skipped, no crash.
  publish("tenant-a", R"({"x":2})");
  std::weak_ptr<RecordingSubscriber> gone = subs[2];
  hub_->leave("tenant-a", subs[2].get());
  subs[2].reset();
  EXPECT_TRUE(gone.expired());
  first_->run_all();
  EXPECT_EQ(subs[0]->seqs, std::vector<std::uint64_t>{1});
  EXPECT_EQ(subs[1]->seqs, (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(hub_->connections("tenant-a"), 1u);
  // A later joiner is in the next message's fan-out.
  auto late = join("tenant-a", second_, 1);
  publish("tenant-a", R"({"x":3})");
  first_->run_all();
  second_->run_all();
  EXPECT_EQ(subs[1]->seqs.back(), 3u);
  EXPECT_EQ(late[0]->seqs, std::vector<std::uint64_t>{3});
}

TEST_F(WsHubTest, StopTellsEverySessionToGoAway) {
  auto a = join("tenant-a", first_, 2);
  auto b = join("tenant-b", second_, 1);
  hub_->stop();
  for (const auto& s : a) EXPECT_EQ(s->going_away_calls, 1);
  EXPECT_EQ(b[0]->going_away_calls, 1);
  // Unsubscribed: nothing more is queued.
  publish("tenant-a", R"({"x":1})");
  EXPECT_EQ(first_->queued_tasks(), 0u);
}

}  // namespace
}  // namespace reai::server
