#include "core/cache_lookups.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace reai {
namespace {

TEST(TenantCacheLookups, CountsEachTenantApartAndAllTogether) {
  TenantCacheLookups lookups;
  EXPECT_EQ(lookups.of("t1").hits + lookups.of("t1").misses, 0u);
  EXPECT_EQ(lookups.of("t1").hit_rate(), 0.0);
  lookups.count("t1", true);
  lookups.count("t1", true);
  lookups.count("t1", false);
  lookups.count("t2", false);
  EXPECT_EQ(lookups.of("t1").hits, 2u);
  EXPECT_EQ(lookups.of("t1").misses, 1u);
  EXPECT_DOUBLE_EQ(lookups.of("t1").hit_rate(), 2.0 / 3.0);
  EXPECT_EQ(lookups.of("t2").hits, 0u);
  EXPECT_EQ(lookups.of("t2").misses, 1u);
  EXPECT_EQ(lookups.of("t3").misses, 0u);
  EXPECT_EQ(lookups.total().hits, 2u);
  EXPECT_EQ(lookups.total().misses, 2u);
}

// Threads counting for new and known tenants at once lose no count.
TEST(TenantCacheLookups, ConcurrentCountsAreAllKept) {
  TenantCacheLookups lookups;
  constexpr int kThreads = 4, kEach = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&lookups, t] {
      for (int i = 0; i < kEach; ++i) lookups.count("tenant-" + std::to_string(i % 7), (i + t) % 2 == 0);
    });
  }
  for (auto& th : threads) th.join();
  std::uint64_t sum = 0;
  for (int k = 0; k < 7; ++k) {
    const CacheLookups c = lookups.of("tenant-" + std::to_string(k));
    sum += c.hits + c.misses;
  }
  EXPECT_EQ(sum, std::uint64_t(kThreads) * kEach);
  EXPECT_EQ(lookups.total().hits + lookups.total().misses, std::uint64_t(kThreads) * kEach);
  EXPECT_EQ(lookups.total().hits, std::uint64_t(kThreads) * kEach / 2);
}

}  // namespace
}  // namespace reai
