// Bus and Cache suites, parameterized by factory so another implementation
// (Redis) runs the same tests: add a factory and list it in the Types below.
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "bus/bus.h"
#include "bus/redis_test_support.h"

namespace reai::bus {
namespace {

struct InProcessBusFactory {
  static std::string name() { return "InProcess"; }
  std::unique_ptr<Bus> make(std::size_t replay_capacity) { return make_in_process_bus(replay_capacity); }
};

struct InProcessCacheFactory {
  static std::string name() { return "InProcess"; }
  std::unique_ptr<Cache> make(const Clock& clock, std::size_t max_entries) {
    return make_in_process_cache(clock, max_entries);
  }
};

// Each Redis bus/cache gets its own key prefix, so every test starts empty on
// the shared test server (scripts/redis-test-server, fixture redis_server).
RedisEndpoint fresh_test_endpoint() {
  static std::atomic<int> counter{0};
  RedisEndpoint e;
  e.port = static_cast<std::uint16_t>(test_redis_port());
  e.prefix = numbered_prefix(++counter);
  return e;
}

struct RedisBusFactory {
  static std::string name() { return "Redis"; }
  std::unique_ptr<Bus> make(std::size_t replay_capacity) {
    auto bus = make_redis_bus(fresh_test_endpoint(), replay_capacity);
    // Degraded, it would pass most tests locally: that is not what runs here.
    EXPECT_TRUE(bus->health().is_ok()) << bus->health().message();
    return bus;
  }
};

struct RedisCacheFactory {
  static std::string name() { return "Redis"; }
  std::unique_ptr<Cache> make(const Clock& clock, std::size_t max_entries) {
    auto cache = make_redis_cache(fresh_test_endpoint(), clock, max_entries);
    EXPECT_TRUE(cache->health().is_ok()) << cache->health().message();
    return cache;
  }
};

struct FactoryNames {
  template <typename T>
  static std::string GetName(int) { return T::name(); }
};

std::shared_ptr<const std::string> text(std::string s) {
  return std::make_shared<const std::string>(std::move(s));
}

// prefix + n. Not `prefix + std::to_string(n)`: GCC 12 -O3 reports a false
// -Wrestrict on that expression.
std::string numbered(const char* prefix, int n) {
  std::string out = prefix;
  out += std::to_string(n);
  return out;
}

std::vector<std::uint64_t> seqs(const std::vector<BusMessage>& messages) {
  std::vector<std::uint64_t> out;
  for (const BusMessage& m : messages) out.push_back(m.seq);
  return out;
}

std::vector<std::uint64_t> one_to(std::uint64_t n) {
  std::vector<std::uint64_t> out;
  for (std::uint64_t i = 1; i <= n; ++i) out.push_back(i);
  return out;
}

// Records what a subscriber received, per tenant.
class Recorder {
 public:
  Bus::Handler handler() {
    return [this](const BusMessage& m) {
      std::lock_guard lock(mu_);
      by_tenant_[m.tenant_id].push_back(m.seq);
      last_ = m;
    };
  }
  std::vector<std::uint64_t> seqs_of(const std::string& tenant) {
    std::lock_guard lock(mu_);
    return by_tenant_[tenant];
  }
  BusMessage last() {
    std::lock_guard lock(mu_);
    return last_;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::vector<std::uint64_t>> by_tenant_;
  BusMessage last_;
};

// Every notice one handler received, in arrival order.
class NoticeLog {
 public:
  Bus::Handler handler() {
    return [this](const BusMessage& m) {
      std::lock_guard lock(mu_);
      seen_.push_back(m);
    };
  }
  std::vector<BusMessage> seen() {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  std::mutex mu_;
  std::vector<BusMessage> seen_;
};

// Polls `done` for up to 20 s: Redis delivers notices on its reader thread.
// Returns whether it came true; no test asserts the time.
template <typename F>
bool eventually(F done) {
  for (int i = 0; i < 2000 && !done(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  return done();
}

template <typename Factory>
class BusTest : public ::testing::Test {
 protected:
  std::unique_ptr<Bus> make(std::size_t capacity = 1024) { return factory_.make(capacity); }
  Factory factory_;
};

using BusFactories = ::testing::Types<InProcessBusFactory, RedisBusFactory>;
TYPED_TEST_SUITE(BusTest, BusFactories, FactoryNames);

TYPED_TEST(BusTest, SeqCountsPerTenantFromOne) {
  auto bus = this->make();
  EXPECT_TRUE(bus->health().is_ok());
  EXPECT_EQ(bus->last_seq("t_a"), 0u);
  EXPECT_EQ(bus->publish("t_a", "score_update", text("a1")).value(), 1u);
  EXPECT_EQ(bus->publish("t_a", "score_update", text("a2")).value(), 2u);
  EXPECT_EQ(bus->publish("t_b", "score_update", text("b1")).value(), 1u);
  EXPECT_EQ(bus->publish("t_a", "score_update", text("a3")).value(), 3u);
  EXPECT_EQ(bus->last_seq("t_a"), 3u);
  EXPECT_EQ(bus->last_seq("t_b"), 1u);
  EXPECT_EQ(bus->last_seq("t_c"), 0u);
}

TYPED_TEST(BusTest, EverySubscriberGetsTheMessage) {
  auto bus = this->make();
  Recorder first, second;
  bus->subscribe(first.handler());
  bus->subscribe(second.handler());
  ASSERT_TRUE(bus->publish("t_a", "score_update", text(R"({"score":87})")).has_value());
  for (Recorder* r : {&first, &second}) {
    BusMessage m = r->last();
    EXPECT_EQ(m.tenant_id, "t_a");
    EXPECT_EQ(m.seq, 1u);
    EXPECT_EQ(m.topic, "score_update");
    ASSERT_NE(m.payload, nullptr);
    EXPECT_EQ(*m.payload, R"({"score":87})");
  }
}

TYPED_TEST(BusTest, RejectsEmptyTenantAndToleratesNullPayload) {
  auto bus = this->make();
  Recorder r;
  bus->subscribe(r.handler());
  EXPECT_EQ(bus->publish("", "score_update", text("x")).status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(bus->publish("t_a", "ping", nullptr).has_value());
  ASSERT_NE(r.last().payload, nullptr);
  EXPECT_EQ(*r.last().payload, "");
}

TYPED_TEST(BusTest, ConcurrentPublishersDeliverInSeqOrderPerTenant) {
  auto bus = this->make(1 << 16);
  Recorder a, b, c;
  bus->subscribe(a.handler());
  bus->subscribe(b.handler());
  bus->subscribe(c.handler());
  constexpr int kThreads = 4, kPerThread = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&bus] {
      for (int i = 0; i < kPerThread; ++i) {
        EXPECT_TRUE(bus->publish("t_a", "u", text("a")).has_value());
        EXPECT_TRUE(bus->publish("t_b", "u", text("b")).has_value());
      }
    });
  }
  for (auto& th : threads) th.join();
  const auto expected = one_to(kThreads * kPerThread);
  for (Recorder* r : {&a, &b, &c}) {
    EXPECT_EQ(r->seqs_of("t_a"), expected);
    EXPECT_EQ(r->seqs_of("t_b"), expected);
  }
  EXPECT_EQ(seqs(bus->since("t_a", 0)->messages), expected);
}

TYPED_TEST(BusTest, SinceReturnsBufferedMessagesAfterSeq) {
  auto bus = this->make(10);
  for (int i = 1; i <= 5; ++i) ASSERT_TRUE(bus->publish("t_a", "u", text(std::to_string(i))).has_value());

  auto after2 = bus->since("t_a", 2).value();
  EXPECT_TRUE(after2.complete);
  EXPECT_EQ(seqs(after2.messages), (std::vector<std::uint64_t>{3, 4, 5}));
  EXPECT_EQ(*after2.messages[0].payload, "3");
  EXPECT_EQ(after2.messages[0].tenant_id, "t_a");

  auto all = bus->since("t_a", 0).value();
  EXPECT_TRUE(all.complete);
  EXPECT_EQ(seqs(all.messages), one_to(5));

  auto none = bus->since("t_a", 5).value();
  EXPECT_TRUE(none.complete);
  EXPECT_TRUE(none.messages.empty());
}

TYPED_TEST(BusTest, SinceIsIncompleteOnceMessagesWereEvicted) {
  auto bus = this->make(4);
  for (int i = 1; i <= 10; ++i) ASSERT_TRUE(bus->publish("t_a", "u", text("m")).has_value());

  auto from_start = bus->since("t_a", 0).value();
  EXPECT_FALSE(from_start.complete);
  EXPECT_EQ(seqs(from_start.messages), (std::vector<std::uint64_t>{7, 8, 9, 10}));

  auto missing_one = bus->since("t_a", 5).value();  // 6 is gone
  EXPECT_FALSE(missing_one.complete);
  EXPECT_EQ(seqs(missing_one.messages), (std::vector<std::uint64_t>{7, 8, 9, 10}));

  auto exact = bus->since("t_a", 6).value();
  EXPECT_TRUE(exact.complete);
  EXPECT_EQ(seqs(exact.messages), (std::vector<std::uint64_t>{7, 8, 9, 10}));
}

TYPED_TEST(BusTest, SinceAheadOfTheBusAsksForResync) {
  auto bus = this->make();
  ASSERT_TRUE(bus->publish("t_a", "u", text("m")).has_value());
  // A client that saw seq 50 talked to an earlier life of the bus.
  auto ahead = bus->since("t_a", 50).value();
  EXPECT_FALSE(ahead.complete);
  EXPECT_TRUE(ahead.messages.empty());
  EXPECT_FALSE(bus->since("t_new", 3)->complete);
  auto fresh = bus->since("t_new", 0).value();
  EXPECT_TRUE(fresh.complete);
  EXPECT_TRUE(fresh.messages.empty());
}

TYPED_TEST(BusTest, ReplayAndSeqAreIsolatedPerTenant) {
  auto bus = this->make(3);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(bus->publish("t_a", "u", text("a")).has_value());
  ASSERT_TRUE(bus->publish("t_b", "u", text("b")).has_value());
  // t_a's traffic neither evicts t_b's buffer nor advances its seq.
  auto b = bus->since("t_b", 0).value();
  EXPECT_TRUE(b.complete);
  ASSERT_EQ(b.messages.size(), 1u);
  EXPECT_EQ(b.messages[0].tenant_id, "t_b");
  EXPECT_EQ(*b.messages[0].payload, "b");
  auto a = bus->since("t_a", 0);
  for (const BusMessage& m : a->messages) EXPECT_EQ(m.tenant_id, "t_a");
  EXPECT_EQ(bus->last_seq("t_b"), 1u);
}

Outgoing outgoing(std::string tenant, std::string payload, std::string topic = "score_update") {
  return Outgoing{std::move(tenant), std::move(topic), text(std::move(payload))};
}

std::vector<std::string> payloads(const std::vector<BusMessage>& messages) {
  std::vector<std::string> out;
  for (const BusMessage& m : messages) out.push_back(*m.payload);
  return out;
}

TYPED_TEST(BusTest, PublishEachTakesEachTenantsSeqsInTheGivenOrder) {
  auto bus = this->make();
  Recorder r;
  bus->subscribe(r.handler());
  ASSERT_EQ(bus->publish("t_b", "score_update", text("b1")).value(), 1u);
  const std::vector<Outgoing> batch = {outgoing("t_a", "a1"), outgoing("t_b", "b2"), outgoing("t_a", "a2"),
                                       outgoing("t_c", "c1", "resync"), outgoing("t_a", "a3")};
  auto seqs_of_batch = bus->publish_each(batch);
  ASSERT_TRUE(seqs_of_batch.has_value()) << seqs_of_batch.status().to_string();
  EXPECT_EQ(*seqs_of_batch, (std::vector<std::uint64_t>{1, 2, 2, 1, 3}));
  // Delivered before publish_each returned, in seq order per tenant.
  EXPECT_EQ(r.seqs_of("t_a"), one_to(3));
  EXPECT_EQ(r.seqs_of("t_b"), one_to(2));
  EXPECT_EQ(r.seqs_of("t_c"), one_to(1));
  EXPECT_EQ(bus->last_seq("t_a"), 3u);
  // since() replays the batch's messages, with their topics and payloads.
  auto a = bus->since("t_a", 0).value();
  EXPECT_TRUE(a.complete);
  EXPECT_EQ(payloads(a.messages), (std::vector<std::string>{"a1", "a2", "a3"}));
  auto b = bus->since("t_b", 1).value();
  EXPECT_TRUE(b.complete);
  EXPECT_EQ(payloads(b.messages), (std::vector<std::string>{"b2"}));
  auto c = bus->since("t_c", 0).value();
  ASSERT_EQ(c.messages.size(), 1u);
  EXPECT_EQ(c.messages[0].topic, "resync");
  EXPECT_EQ(c.messages[0].tenant_id, "t_c");
}

TYPED_TEST(BusTest, PublishEachOfNothingOrWithAnEmptyTenantPublishesNothing) {
  auto bus = this->make();
  Recorder r;
  bus->subscribe(r.handler());
  auto none = bus->publish_each({});
  ASSERT_TRUE(none.has_value());
  EXPECT_TRUE(none->empty());
  const std::vector<Outgoing> bad = {outgoing("t_a", "a1"), outgoing("", "x")};
  EXPECT_EQ(bus->publish_each(bad).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bus->last_seq("t_a"), 0u);
  EXPECT_TRUE(r.seqs_of("t_a").empty());
  // A null payload arrives empty, as with publish().
  const std::vector<Outgoing> null_payload = {Outgoing{"t_a", "ping", nullptr}};
  EXPECT_EQ(bus->publish_each(null_payload).value(), (std::vector<std::uint64_t>{1}));
  ASSERT_NE(r.last().payload, nullptr);
  EXPECT_EQ(*r.last().payload, "");
}

TYPED_TEST(BusTest, PublishEachInterleavesWithSinglePublishesWithoutGaps) {
  auto bus = this->make(1 << 16);
  Recorder r;
  bus->subscribe(r.handler());
  constexpr int kRounds = 100, kBatch = 5;
  std::thread batches([&bus] {
    std::vector<Outgoing> batch;
    for (int i = 0; i < kBatch; ++i) {
      batch.push_back(outgoing("t_a", "batch"));
      batch.push_back(outgoing("t_b", "batch"));
    }
    for (int round = 0; round < kRounds; ++round) {
      auto seqs = bus->publish_each(batch);
      ASSERT_TRUE(seqs.has_value());
      // Each tenant's messages of the batch take increasing seqs, in order.
      for (std::size_t i = 2; i < seqs->size(); ++i) EXPECT_GT((*seqs)[i], (*seqs)[i - 2]);
    }
  });
  std::thread singles([&bus] {
    for (int i = 0; i < kRounds * kBatch; ++i) {
      EXPECT_TRUE(bus->publish("t_a", "score_update", text("single")).has_value());
    }
  });
  batches.join();
  singles.join();
  EXPECT_EQ(r.seqs_of("t_a"), one_to(2 * kRounds * kBatch));
  EXPECT_EQ(r.seqs_of("t_b"), one_to(kRounds * kBatch));
  auto replay = bus->since("t_a", 0).value();
  EXPECT_TRUE(replay.complete);
  EXPECT_EQ(seqs(replay.messages), one_to(2 * kRounds * kBatch));
}

TYPED_TEST(BusTest, NoticesReachOnlyNoticeHandlersAndTakeNoSeq) {
  auto bus = this->make();
  Recorder sequenced;
  bus->subscribe(sequenced.handler());
  NoticeLog notices;
  const SubscriptionId id = bus->subscribe_notices(notices.handler());
  ASSERT_TRUE(bus->notify("t_a", "live_outcome", text("n1")).is_ok());
  ASSERT_TRUE(bus->notify("t_b", "live_outcome", nullptr).is_ok());
  EXPECT_EQ(bus->notify("", "live_outcome", text("x")).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(eventually([&] { return notices.seen().size() == 2; }));
  const auto seen = notices.seen();
  EXPECT_EQ(seen[0].tenant_id, "t_a");
  EXPECT_EQ(seen[0].seq, 0u);
  EXPECT_EQ(seen[0].topic, "live_outcome");
  EXPECT_EQ(*seen[0].payload, "n1");
  EXPECT_EQ(seen[1].tenant_id, "t_b");
  ASSERT_NE(seen[1].payload, nullptr);
  EXPECT_EQ(*seen[1].payload, "");
  // No seq was taken and nothing is replayed: the tenant's stream starts at
  // 1 as if no notice had been sent, and its subscribers saw only that.
  EXPECT_EQ(bus->last_seq("t_a"), 0u);
  auto replay = bus->since("t_a", 0).value();
  EXPECT_TRUE(replay.complete);
  EXPECT_TRUE(replay.messages.empty());
  EXPECT_EQ(bus->publish("t_a", "score_update", text("s1")).value(), 1u);
  EXPECT_EQ(sequenced.seqs_of("t_a"), (std::vector<std::uint64_t>{1}));
  EXPECT_TRUE(sequenced.seqs_of("t_b").empty());
  // Unsubscribed: the next notice is not delivered (it travels before the
  // message published after it, whose delivery publish waits for).
  bus->unsubscribe_notices(id);
  ASSERT_TRUE(bus->notify("t_a", "live_outcome", text("n3")).is_ok());
  EXPECT_EQ(bus->publish("t_a", "score_update", text("s2")).value(), 2u);
  EXPECT_EQ(notices.seen().size(), 2u);
  EXPECT_EQ(sequenced.seqs_of("t_a"), (std::vector<std::uint64_t>{1, 2}));
}

TYPED_TEST(BusTest, UnsubscribedHandlerIsNeverCalledAgain) {
  auto bus = this->make();
  Recorder kept, dropped;
  bus->subscribe(kept.handler());
  SubscriptionId id = bus->subscribe(dropped.handler());
  ASSERT_TRUE(bus->publish("t_a", "u", text("1")).has_value());
  bus->unsubscribe(id);
  bus->unsubscribe(id);      // twice: harmless
  bus->unsubscribe(999999);  // unknown: harmless
  ASSERT_TRUE(bus->publish("t_a", "u", text("2")).has_value());
  EXPECT_EQ(kept.seqs_of("t_a"), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(dropped.seqs_of("t_a"), (std::vector<std::uint64_t>{1}));
}

TYPED_TEST(BusTest, UnsubscribeWaitsForARunningHandler) {
  auto bus = this->make();
  std::atomic<bool> unsubscribed{false};
  std::atomic<int> calls_after{0};
  std::atomic<int> calls{0};
  SubscriptionId id = bus->subscribe([&](const BusMessage&) {
    if (unsubscribed.load()) ++calls_after;
    ++calls;
    std::this_thread::yield();
    if (unsubscribed.load()) ++calls_after;  // still running after return
  });
  std::atomic<bool> stop{false};
  std::thread publisher([&] {
    while (!stop.load()) EXPECT_TRUE(bus->publish("t_a", "u", text("x")).has_value());
  });
  while (calls.load() < 100) std::this_thread::yield();
  bus->unsubscribe(id);
  unsubscribed.store(true);
  std::uint64_t seq_at_unsubscribe = bus->last_seq("t_a");
  while (bus->last_seq("t_a") < seq_at_unsubscribe + 100) std::this_thread::yield();
  stop.store(true);
  publisher.join();
  EXPECT_EQ(calls_after.load(), 0);
}

TYPED_TEST(BusTest, SubscribeAndUnsubscribeDuringPublishingIsSafe) {
  auto bus = this->make(64);
  Recorder steady;
  bus->subscribe(steady.handler());
  std::atomic<bool> stop{false};
  std::thread publisher([&] {
    while (!stop.load()) EXPECT_TRUE(bus->publish("t_a", "u", text("x")).has_value());
  });
  while (bus->last_seq("t_a") == 0) std::this_thread::yield();
  for (int i = 0; i < 200; ++i) {
    auto seen = std::make_shared<std::atomic<int>>(0);
    SubscriptionId id = bus->subscribe([seen](const BusMessage&) { ++*seen; });
    bus->unsubscribe(id);
  }
  stop.store(true);
  publisher.join();
  // The churn of other subscribers cost the steady one nothing.
  EXPECT_EQ(steady.seqs_of("t_a"), one_to(bus->last_seq("t_a")));
}

template <typename Factory>
class CacheTest : public ::testing::Test {
 protected:
  std::unique_ptr<Cache> make(std::size_t max_entries = 1000) { return factory_.make(clock_, max_entries); }
  ManualClock clock_{1'700'000'000};
  Factory factory_;
};

using CacheFactories = ::testing::Types<InProcessCacheFactory, RedisCacheFactory>;
TYPED_TEST_SUITE(CacheTest, CacheFactories, FactoryNames);

TYPED_TEST(CacheTest, HitsAndMissesAreCounted) {
  auto cache = this->make();
  EXPECT_TRUE(cache->health().is_ok());
  EXPECT_EQ(cache->get("k"), std::nullopt);
  cache->put("k", "v", kWarmScoreTtl);
  EXPECT_EQ(cache->get("k"), "v");
  EXPECT_EQ(cache->get("k"), "v");
  EXPECT_EQ(cache->get("other"), std::nullopt);
  CacheStats s = cache->stats();
  EXPECT_EQ(s.hits, 2u);
  EXPECT_EQ(s.misses, 2u);
  EXPECT_EQ(s.entries, 1u);
  EXPECT_EQ(s.evictions, 0u);
  EXPECT_DOUBLE_EQ(s.hit_rate(), 0.5);
  EXPECT_DOUBLE_EQ(CacheStats{}.hit_rate(), 0.0);
}

TYPED_TEST(CacheTest, EntriesExpireAfterTheirTtl) {
  auto cache = this->make();
  cache->put("snapshot", "s", kFeatureSnapshotTtl);
  cache->put("score", "w", kWarmScoreTtl);
  this->clock_.advance(kFeatureSnapshotTtl - 1);
  EXPECT_EQ(cache->get("snapshot"), "s");
  this->clock_.advance(1);
  EXPECT_EQ(cache->get("snapshot"), std::nullopt);  // expiry is a miss
  EXPECT_EQ(cache->get("score"), "w");
  this->clock_.advance(kWarmScoreTtl);
  EXPECT_EQ(cache->get("score"), std::nullopt);
  CacheStats s = cache->stats();
  EXPECT_EQ(s.hits, 2u);
  EXPECT_EQ(s.misses, 2u);
  EXPECT_EQ(s.evictions, 2u);
  EXPECT_EQ(s.entries, 0u);
}

TYPED_TEST(CacheTest, PutReplacesValueAndRestartsTtl) {
  auto cache = this->make();
  cache->put("k", "old", 10);
  this->clock_.advance(8);
  cache->put("k", "new", 10);
  this->clock_.advance(8);
  EXPECT_EQ(cache->get("k"), "new");
  EXPECT_EQ(cache->stats().entries, 1u);
}

TYPED_TEST(CacheTest, NonPositiveTtlStoresNothing) {
  auto cache = this->make();
  cache->put("k", "v", 60);
  cache->put("k", "v2", 0);
  cache->put("j", "v", -5);
  EXPECT_EQ(cache->get("k"), std::nullopt);
  EXPECT_EQ(cache->get("j"), std::nullopt);
  EXPECT_EQ(cache->stats().entries, 0u);
}

TYPED_TEST(CacheTest, LeastRecentlyUsedGoesFirst) {
  auto cache = this->make(3);
  cache->put("a", "1", 60);
  cache->put("b", "2", 60);
  cache->put("c", "3", 60);
  EXPECT_EQ(cache->get("a"), "1");  // a is now the most recent; b the least
  cache->put("d", "4", 60);
  EXPECT_EQ(cache->get("b"), std::nullopt);
  EXPECT_EQ(cache->get("a"), "1");
  EXPECT_EQ(cache->get("c"), "3");
  EXPECT_EQ(cache->get("d"), "4");
  CacheStats s = cache->stats();
  EXPECT_EQ(s.entries, 3u);
  EXPECT_EQ(s.evictions, 1u);
}

TYPED_TEST(CacheTest, LargeCacheStaysWithinItsBound) {
  constexpr std::size_t kMax = 10'000;
  auto cache = this->make(kMax);
  for (int i = 0; i < 25'000; ++i) cache->put(numbered("key-", i), "v", 60);
  CacheStats s = cache->stats();
  EXPECT_LE(s.entries, kMax);
  EXPECT_GT(s.entries, kMax * 9 / 10);
  EXPECT_EQ(s.evictions, 25'000 - s.entries);
  EXPECT_EQ(cache->get("key-24999"), "v");  // the newest survives
}

TYPED_TEST(CacheTest, EraseRemovesWithoutCountingEviction) {
  auto cache = this->make();
  cache->put("k", "v", 60);
  cache->erase("k");
  cache->erase("never-there");
  EXPECT_EQ(cache->get("k"), std::nullopt);
  CacheStats s = cache->stats();
  EXPECT_EQ(s.entries, 0u);
  EXPECT_EQ(s.evictions, 0u);
}

TYPED_TEST(CacheTest, PutEachStoresEveryEntryWithItsOwnTtl) {
  auto cache = this->make();
  cache->put("gone", "old", 60);
  const std::vector<CachePut> entries{{"short", "s", 10}, {"long", "l", 60}, {"gone", "x", 0}, {"never", "n", -1}};
  cache->put_each(entries);
  EXPECT_EQ(cache->get("gone"), std::nullopt);  // a non-positive TTL erases
  EXPECT_EQ(cache->get("never"), std::nullopt);
  EXPECT_EQ(cache->get("short"), "s");
  EXPECT_EQ(cache->get("long"), "l");
  EXPECT_EQ(cache->stats().entries, 2u);
  this->clock_.advance(10);
  EXPECT_EQ(cache->get("short"), std::nullopt);
  EXPECT_EQ(cache->get("long"), "l");
  this->clock_.advance(50);
  EXPECT_EQ(cache->get("long"), std::nullopt);
  cache->put_each({});  // nothing, and no harm
  EXPECT_EQ(cache->stats().entries, 0u);
}

TYPED_TEST(CacheTest, PutEachOfAKeyTwiceKeepsTheLaterValueAndTtl) {
  auto cache = this->make();
  cache->put_each(std::vector<CachePut>{{"k", "first", 100}, {"j", "other", 100}, {"k", "second", 10}});
  EXPECT_EQ(cache->get("k"), "second");
  EXPECT_EQ(cache->stats().entries, 2u);
  this->clock_.advance(10);
  EXPECT_EQ(cache->get("k"), std::nullopt);
  EXPECT_EQ(cache->get("j"), "other");
}

TYPED_TEST(CacheTest, PutEachLeavesTheEntriesThatPutInTurnWould) {
  auto cache = this->make(3);
  cache->put("a", "1", 60);
  cache->put("b", "2", 60);
  EXPECT_EQ(cache->get("a"), "1");  // b is now the least recently used
  // With the bound of 3, b goes; the entries are used in order, so once a
  // is used again the next one pushes out c (older than d), not d.
  cache->put_each(std::vector<CachePut>{{"c", "3", 60}, {"d", "4", 60}});
  EXPECT_EQ(cache->get("b"), std::nullopt);
  EXPECT_EQ(cache->stats().evictions, 1u);
  EXPECT_EQ(cache->get("a"), "1");
  cache->put_each(std::vector<CachePut>{{"e", "5", 60}});
  EXPECT_EQ(cache->get("c"), std::nullopt);
  EXPECT_EQ(cache->get("d"), "4");
  EXPECT_EQ(cache->get("e"), "5");
  EXPECT_EQ(cache->get("a"), "1");
  CacheStats s = cache->stats();
  EXPECT_EQ(s.entries, 3u);
  EXPECT_EQ(s.evictions, 2u);
}

TYPED_TEST(CacheTest, ConcurrentGetPutKeepsCountersConsistent) {
  for (std::size_t max_entries : {std::size_t{64}, std::size_t{100'000}}) {
    auto cache = this->make(max_entries);
    constexpr int kThreads = 4, kOps = 5'000;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&cache, t, this] {
        for (int i = 0; i < kOps; ++i) {
          std::string key = numbered("k", (i * 7 + t) % 500);
          if (i % 3 == 0) cache->put(key, numbered("v", i), 1 + i % 50);
          auto value = cache->get(key);
          if (value) {
            EXPECT_EQ(value->front(), 'v');
          }
          if (i % 97 == 0) cache->erase(key);
          if (t == 0 && i % 500 == 0) this->clock_.advance(1);
        }
      });
    }
    for (auto& th : threads) th.join();
    CacheStats s = cache->stats();
    EXPECT_EQ(s.hits + s.misses, std::uint64_t{kThreads * kOps});
    EXPECT_LE(s.entries, max_entries);
  }
}

}  // namespace
}  // namespace reai::bus
