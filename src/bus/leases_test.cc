// Leases: the contract on both implementations (exclusive, token-guarded
// release, lapse after the hold, bounded wait), and what only Redis does
// (shared across instances, unreachable server).
#include <atomic>
#include <chrono>
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
  p.b().release("lead:t:1", "not-the-token");
  EXPECT_FALSE(p.b().acquire("lead:t:1", milliseconds(5000), milliseconds(0)).has_value());
  p.a().release("lead:t:1", *first);
  auto next = p.b().acquire("lead:t:1", milliseconds(5000), milliseconds(0));
  ASSERT_TRUE(next.has_value());
  EXPECT_NE(*next, *first);
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
  p.a().release("lead:t:1", *dead);
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
        leases.release("lead:t:hot", *token);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(overlaps.load(), 0);
  EXPECT_EQ(turns.load(), 80);
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
  leases->release("lead:t:1", "x");  // harmless while down
}

}  // namespace
}  // namespace reai::bus
