// Leases: the contract on both implementations (exclusive, token-guarded
// release, lapse after the hold, bounded wait), and what only Redis does
// (shared across instances, unreachable server).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "bus/bus.h"
#include "bus/redis_test_support.h"

namespace reai::bus {
namespace {

using std::chrono::milliseconds;

RedisEndpoint test_endpoint(int port) {
  static std::atomic<int> counter{2000};
  RedisEndpoint e;
  e.port = static_cast<std::uint16_t>(port);
  e.prefix = numbered_prefix(++counter);
  return e;
}

// Two handles on the same leases: one object in-process, two clients of one
// Redis prefix otherwise (two instances).
struct Pair {
  std::unique_ptr<Leases> own;
  std::unique_ptr<Leases> second;  // null for in-process (it is not shared)
  Leases& a() { return *own; }
  Leases& b() { return second ? *second : *own; }
};

// Takes `name` on `leases` and releases it with `stamp`, carrying `value`
// ("" clears it) for `ttl`. Call as ASSERT_NO_FATAL_FAILURE(stamp_with(...)).
void stamp_with(Leases& leases, const std::string& name, std::uint64_t stamp, std::string value,
                milliseconds ttl = milliseconds(60000)) {
  auto held = leases.acquire(name, milliseconds(5000), milliseconds(0));
  ASSERT_TRUE(held.has_value());
  LeaseUpdate update;
  update.stamp = stamp;
  update.stamp_ttl = ttl;
  update.stamped_value = std::move(value);
  leases.release(name, held->token, update);
}

class LeasesTest : public ::testing::TestWithParam<bool> {
 protected:
  Pair make() {
    if (!GetParam()) return {make_in_process_leases(), nullptr};
    RedisEndpoint e = test_endpoint(test_redis_port());
    return {make_redis_leases(e), make_redis_leases(e)};
  }
};

TEST_P(LeasesTest, OneHolderAtATimeAndTheTokenReleases) {
  Pair p = make();
  auto first = p.a().acquire("lead:t:1", milliseconds(5000), milliseconds(0));
  ASSERT_TRUE(first.has_value()) << first.status().message();
  auto busy = p.b().acquire("lead:t:1", milliseconds(5000), milliseconds(20));
  ASSERT_FALSE(busy.has_value());
  EXPECT_EQ(busy.status().code(), StatusCode::kResourceExhausted);
  // Another name is free.
  auto other = p.b().acquire("lead:t:2", milliseconds(5000), milliseconds(0));
  ASSERT_TRUE(other.has_value());
  // A wrong token releases nothing.
  p.b().release("lead:t:1", "not-the-token", {});
  EXPECT_FALSE(p.b().acquire("lead:t:1", milliseconds(5000), milliseconds(0)).has_value());
  p.a().release("lead:t:1", first->token, {});
  auto next = p.b().acquire("lead:t:1", milliseconds(5000), milliseconds(0));
  ASSERT_TRUE(next.has_value());
  EXPECT_NE(next->token, first->token);
  EXPECT_EQ(p.a().health().code(), StatusCode::kOk);
}

TEST_P(LeasesTest, AHoldLapsesSoADeadHolderBlocksOnlyThatLong) {
  Pair p = make();
  auto dead = p.a().acquire("lead:t:1", milliseconds(50), milliseconds(0));
  ASSERT_TRUE(dead.has_value());
  // Never released: the waiter gets it once the hold lapsed.
  auto waiter = p.b().acquire("lead:t:1", milliseconds(5000), milliseconds(5000));
  ASSERT_TRUE(waiter.has_value()) << waiter.status().message();
  // The dead holder's late release does not free the new holder's lease.
  p.a().release("lead:t:1", dead->token, {});
  EXPECT_FALSE(p.a().acquire("lead:t:1", milliseconds(5000), milliseconds(0)).has_value());
}

TEST_P(LeasesTest, WaitersTakeTurnsAndNeverOverlap) {
  Pair p = make();
  std::atomic<int> inside{0};
  std::atomic<int> overlaps{0};
  std::atomic<int> turns{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Leases& leases = t % 2 ? p.b() : p.a();
      for (int i = 0; i < 20; ++i) {
        auto token = leases.acquire("lead:t:hot", milliseconds(5000), milliseconds(5000));
        if (!token) continue;
        if (inside.fetch_add(1) != 0) overlaps.fetch_add(1);
        std::this_thread::yield();
        inside.fetch_sub(1);
        turns.fetch_add(1);
        leases.release("lead:t:hot", token->token, {});
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(turns.load(), 80);
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST_P(LeasesTest, MarksAndTheStampComeWithTheLeaseAndChangeOnlyWithItsRelease) {
  Pair p = make();
  auto empty = p.b().peek("lead:t:1");
  ASSERT_TRUE(empty.has_value()) << empty.status().message();
  EXPECT_EQ(empty->stamp, 0u);
  EXPECT_TRUE(empty->marks.empty());
  // Anyone marks, without the lease, several names at once.
  ASSERT_TRUE(p.a().mark({{"lead:t:1", "e1"}, {"lead:t:1", "e2"}, {"lead:t:2", "e9"}}, milliseconds(60000)).is_ok());
  ASSERT_TRUE(p.b().mark({{"lead:t:1", "e1"}}, milliseconds(60000)).is_ok());  // again: still one
  auto held = p.b().acquire("lead:t:1", milliseconds(5000), milliseconds(0));
  ASSERT_TRUE(held.has_value());
  EXPECT_EQ(sorted(held->state.marks), (std::vector<std::string>{"e1", "e2"}));
  EXPECT_EQ(held->state.stamp, 0u);
  // A mark added while held is kept by a release that did not see it.
  ASSERT_TRUE(p.a().mark({{"lead:t:1", "e3"}}, milliseconds(60000)).is_ok());
  LeaseUpdate update;
  update.stamp = 18'446'744'073'709'551'557ull;  // the full 64 bits survive
  update.stamp_ttl = milliseconds(60000);
  update.done_marks = {"e1", "e2"};
  p.b().release("lead:t:1", held->token, update);
  auto after = p.a().peek("lead:t:1");
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->stamp, 18'446'744'073'709'551'557ull);
  EXPECT_EQ(after->marks, (std::vector<std::string>{"e3"}));
  auto other = p.a().peek("lead:t:2");
  ASSERT_TRUE(other.has_value());
  EXPECT_EQ(other->marks, (std::vector<std::string>{"e9"}));
  EXPECT_EQ(other->stamp, 0u);
  // Taking it again shows the same; a release without update changes nothing.
  auto again = p.a().acquire("lead:t:1", milliseconds(5000), milliseconds(0));
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->state.stamp, after->stamp);
  EXPECT_EQ(again->state.marks, after->marks);
  p.a().release("lead:t:1", again->token, {});
  EXPECT_EQ(p.b().peek("lead:t:1")->stamp, after->stamp);
}

TEST_P(LeasesTest, ALapsedHoldersUpdateIsDroppedAndMarksAndStampsLapse) {
  Pair p = make();
  ASSERT_TRUE(p.a().mark({{"lead:t:1", "e1"}}, milliseconds(60000)).is_ok());
  auto dead = p.a().acquire("lead:t:1", milliseconds(50), milliseconds(0));
  ASSERT_TRUE(dead.has_value());
  auto next = p.b().acquire("lead:t:1", milliseconds(5000), milliseconds(5000));  // after the lapse
  ASSERT_TRUE(next.has_value());
  LeaseUpdate late;
  late.stamp = 7;
  late.stamp_ttl = milliseconds(60000);
  late.done_marks = {"e1"};
  p.a().release("lead:t:1", dead->token, late);  // no longer the holder
  auto state = p.b().peek("lead:t:1");
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->stamp, 0u);
  EXPECT_EQ(state->marks, (std::vector<std::string>{"e1"}));
  LeaseUpdate brief;
  brief.stamp = 9;
  brief.stamp_ttl = milliseconds(50);
  p.b().release("lead:t:1", next->token, brief);
  ASSERT_TRUE(p.b().mark({{"lead:t:1", "e2"}}, milliseconds(50)).is_ok());
  std::this_thread::sleep_for(milliseconds(120));
  state = p.a().peek("lead:t:1");
  ASSERT_TRUE(state.has_value());
  EXPECT_EQ(state->stamp, 0u);                                     // lapsed
  EXPECT_EQ(state->marks, (std::vector<std::string>{"e1"}));       // e2 lapsed, e1 still alive
}

// The stamp carries a value (binary-safe), set only by the holder's release
// with the stamp, replaced or cleared by the next stamp, lapsing with it, and
// dropped with it by drop_stamp (no lease needed).
TEST_P(LeasesTest, TheStampCarriesItsValueWhichGoesWithIt) {
  Pair p = make();
  auto none = p.b().stamped_value("lead:t:1");
  ASSERT_TRUE(none.has_value()) << none.status().message();
  EXPECT_EQ(*none, "");
  const std::string value("LS1\0\x01\xff\n state", 13);
  ASSERT_NO_FATAL_FAILURE(stamp_with(p.a(), "lead:t:1", 5, value));
  EXPECT_EQ(p.b().stamped_value("lead:t:1").value(), value);
  EXPECT_EQ(p.b().peek("lead:t:1")->stamp, 5u);
  // A release without a stamp keeps both; a stale holder changes neither.
  auto dead = p.b().acquire("lead:t:1", milliseconds(50), milliseconds(0));
  ASSERT_TRUE(dead.has_value());
  auto next = p.a().acquire("lead:t:1", milliseconds(5000), milliseconds(5000));  // after the lapse
  ASSERT_TRUE(next.has_value());
  LeaseUpdate late;
  late.stamp = 6;
  late.stamp_ttl = milliseconds(60000);
  late.stamped_value = "late";
  p.b().release("lead:t:1", dead->token, late);
  p.a().release("lead:t:1", next->token, {});
  EXPECT_EQ(p.b().peek("lead:t:1")->stamp, 5u);
  EXPECT_EQ(p.b().stamped_value("lead:t:1").value(), value);
  // A new stamp without a value clears the old value.
  ASSERT_NO_FATAL_FAILURE(stamp_with(p.a(), "lead:t:1", 7, ""));
  EXPECT_EQ(p.b().peek("lead:t:1")->stamp, 7u);
  EXPECT_EQ(p.b().stamped_value("lead:t:1").value(), "");
  // drop_stamp takes both, without the lease.
  ASSERT_NO_FATAL_FAILURE(stamp_with(p.a(), "lead:t:1", 8, value));
  EXPECT_EQ(p.b().stamped_value("lead:t:1").value(), value);
  p.b().drop_stamp("lead:t:1");
  EXPECT_EQ(p.a().peek("lead:t:1")->stamp, 0u);
  EXPECT_EQ(p.a().stamped_value("lead:t:1").value(), "");
  // And the value lapses with its stamp.
  ASSERT_NO_FATAL_FAILURE(stamp_with(p.b(), "lead:t:2", 9, value, milliseconds(50)));
  std::this_thread::sleep_for(milliseconds(120));
  EXPECT_EQ(p.a().peek("lead:t:2")->stamp, 0u);
  EXPECT_EQ(p.a().stamped_value("lead:t:2").value(), "");
}

// Several names in one call: each has its own outcome, a name held
// elsewhere fails alone, and each release applies only while its token holds.
TEST_P(LeasesTest, ManyNamesAreTakenAndGivenBackEachWithItsOwnOutcome) {
  Pair p = make();
  auto none = p.a().acquire_each({}, milliseconds(5000));
  ASSERT_TRUE(none.has_value()) << none.status().message();
  EXPECT_TRUE(none->empty());
  ASSERT_TRUE(p.b().mark({{"lead:t:1", "e1"}, {"lead:t:3", "e3"}, {"lead:t:3", "e4"}}, milliseconds(60000)).is_ok());
  ASSERT_NO_FATAL_FAILURE(stamp_with(p.b(), "lead:t:3", 33, "three"));
  auto elsewhere = p.b().acquire("lead:t:2", milliseconds(5000), milliseconds(0));
  ASSERT_TRUE(elsewhere.has_value());
  const std::vector<std::string> names = {"lead:t:1", "lead:t:2", "lead:t:3", "lead:t:1"};
  auto taken = p.a().acquire_each(names, milliseconds(5000));
  ASSERT_TRUE(taken.has_value()) << taken.status().message();
  ASSERT_EQ(taken->size(), 4u);
  const Result<Lease>& one = (*taken)[0];
  const Result<Lease>& three = (*taken)[2];
  ASSERT_TRUE(one.has_value()) << one.status().message();
  EXPECT_EQ(one->state.marks, (std::vector<std::string>{"e1"}));
  EXPECT_EQ(one->state.stamp, 0u);
  ASSERT_FALSE((*taken)[1].has_value());
  EXPECT_EQ((*taken)[1].status().code(), StatusCode::kResourceExhausted);
  ASSERT_TRUE(three.has_value()) << three.status().message();
  EXPECT_EQ(sorted(three->state.marks), (std::vector<std::string>{"e3", "e4"}));
  EXPECT_EQ(three->state.stamp, 33u);
  ASSERT_FALSE((*taken)[3].has_value());  // the same name again: held by its first
  EXPECT_EQ((*taken)[3].status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(one->token, three->token);
  // Held now: a single acquire elsewhere finds both busy.
  EXPECT_FALSE(p.b().acquire("lead:t:1", milliseconds(5000), milliseconds(0)).has_value());
  EXPECT_FALSE(p.b().acquire("lead:t:3", milliseconds(5000), milliseconds(0)).has_value());
  // One round trip gives back 1 (stamp with value, its mark done) and 3 (only
  // e3 done, stamp kept); a wrong token for 2 leaves its holder alone.
  std::vector<LeaseRelease> releases(3);
  releases[0] = {"lead:t:1", one->token, {}};
  releases[0].update.stamp = 11;
  releases[0].update.stamp_ttl = milliseconds(60000);
  releases[0].update.stamped_value = std::string("one\0bytes", 9);
  releases[0].update.done_marks = {"e1"};
  releases[1] = {"lead:t:2", "not-the-token", {}};
  releases[1].update.stamp = 22;
  releases[1].update.stamp_ttl = milliseconds(60000);
  releases[2] = {"lead:t:3", three->token, {}};
  releases[2].update.done_marks = {"e3"};
  p.a().release_each(releases);
  auto state1 = p.b().peek("lead:t:1");
  ASSERT_TRUE(state1.has_value());
  EXPECT_EQ(state1->stamp, 11u);
  EXPECT_TRUE(state1->marks.empty());
  EXPECT_EQ(p.b().stamped_value("lead:t:1").value(), std::string("one\0bytes", 9));
  auto state3 = p.b().peek("lead:t:3");
  ASSERT_TRUE(state3.has_value());
  EXPECT_EQ(state3->stamp, 33u);
  EXPECT_EQ(state3->marks, (std::vector<std::string>{"e4"}));
  EXPECT_EQ(p.b().stamped_value("lead:t:3").value(), "three");
  EXPECT_EQ(p.b().peek("lead:t:2")->stamp, 0u);
  EXPECT_FALSE(p.a().acquire("lead:t:2", milliseconds(5000), milliseconds(0)).has_value());  // still held
  auto again = p.b().acquire_each(std::vector<std::string>{"lead:t:1", "lead:t:3"}, milliseconds(5000));
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE((*again)[0].has_value());
  EXPECT_TRUE((*again)[1].has_value());
}

// A lapsed hold taken by another since: its part of a release_each is
// dropped, the others' parts apply.
TEST_P(LeasesTest, ALapsedHoldInManyReleasesLeavesOnlyThatNameAlone) {
  Pair p = make();
  auto taken = p.a().acquire_each(std::vector<std::string>{"lead:t:1", "lead:t:2"}, milliseconds(50));
  ASSERT_TRUE(taken.has_value());
  ASSERT_TRUE((*taken)[0].has_value());
  ASSERT_TRUE((*taken)[1].has_value());
  auto next = p.b().acquire("lead:t:2", milliseconds(5000), milliseconds(5000));  // after the lapse
  ASSERT_TRUE(next.has_value());
  std::vector<LeaseRelease> releases(2);
  for (int i = 0; i < 2; ++i) {
    releases[i] = {"lead:t:" + std::to_string(i + 1), (*taken)[i]->token, {}};
    releases[i].update.stamp = 40 + i;
    releases[i].update.stamp_ttl = milliseconds(60000);
    releases[i].update.stamped_value = "v" + std::to_string(i);
  }
  p.a().release_each(releases);  // lead:t:1's hold lapsed too, but nobody took it
  EXPECT_EQ(p.b().peek("lead:t:2")->stamp, 0u);
  EXPECT_EQ(p.b().stamped_value("lead:t:2").value(), "");
  EXPECT_FALSE(p.a().acquire("lead:t:2", milliseconds(5000), milliseconds(0)).has_value());  // b holds it
  p.b().release("lead:t:2", next->token, {});
  EXPECT_TRUE(p.a().acquire("lead:t:2", milliseconds(5000), milliseconds(0)).has_value());
}

INSTANTIATE_TEST_SUITE_P(Implementations, LeasesTest, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? std::string("Redis") : std::string("InProcess");
                         });

TEST(Leases, OnlyRedisIsShared) {
  EXPECT_FALSE(make_in_process_leases()->shared());
  EXPECT_TRUE(make_redis_leases(test_endpoint(test_redis_port()))->shared());
  EXPECT_TRUE(open_leases("").has_value());
  EXPECT_FALSE(open_leases("memcached://x").has_value());
}

TEST(Leases, UnreachableRedisAnswersUnavailableAtOnce) {
  auto leases = make_redis_leases(test_endpoint(1));  // nothing listens on port 1
  auto token = leases->acquire("lead:t:1", milliseconds(1000), milliseconds(1000));
  ASSERT_FALSE(token.has_value());
  EXPECT_EQ(token.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(leases->health().code(), StatusCode::kUnavailable);
  leases->release("lead:t:1", "x", {});  // harmless while down
  EXPECT_EQ(leases->mark({{"lead:t:1", "e1"}}, milliseconds(1000)).code(), StatusCode::kUnavailable);
  EXPECT_FALSE(leases->peek("lead:t:1").has_value());
  EXPECT_EQ(leases->stamped_value("lead:t:1").status().code(), StatusCode::kUnavailable);
  leases->drop_stamp("lead:t:1");  // harmless while down
  const std::vector<std::string> names = {"lead:t:1", "lead:t:2"};
  auto many = leases->acquire_each(names, milliseconds(1000));
  ASSERT_FALSE(many.has_value());
  EXPECT_EQ(many.status().code(), StatusCode::kUnavailable);
  leases->release_each(std::vector<LeaseRelease>{{"lead:t:1", "x", {}}});  // harmless while down
}

}  // namespace
}  // namespace reai::bus
