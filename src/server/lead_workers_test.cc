#include "server/lead_workers.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace reai::server {
namespace {

// Not `"literal" + std::string`: GCC 12 -O3 warns about it (-Wrestrict).
std::string key_of(const char* prefix, int i) { return std::string(prefix).append(std::to_string(i)); }

TEST(LeadWorkers, JobsOfOneKeyRunInOrderOnOneThread) {
  LeadWorkers workers(3);
  std::mutex mu;
  std::map<std::string, std::vector<int>> seen;
  std::map<std::string, std::thread::id> thread_of;
  bool one_thread_per_key = true;
  for (int i = 0; i < 300; ++i) {
    const std::string key = key_of("lead-", i % 7);
    ASSERT_TRUE(workers.post(key, [&, key, i] {
      std::lock_guard lock(mu);
      seen[key].push_back(i);
      auto [it, inserted] = thread_of.emplace(key, std::this_thread::get_id());
      if (!inserted && it->second != std::this_thread::get_id()) one_thread_per_key = false;
    }));
  }
  workers.stop();
  EXPECT_TRUE(one_thread_per_key);
  ASSERT_EQ(seen.size(), 7u);
  for (const auto& [key, order] : seen) {
    ASSERT_FALSE(order.empty());
    for (std::size_t k = 1; k < order.size(); ++k) EXPECT_EQ(order[k], order[k - 1] + 7) << key;
  }
  EXPECT_EQ(workers.pending(), 0u);
}

TEST(LeadWorkers, AJobWaitingOnOneKeyDoesNotHoldKeysOfOtherLanes) {
  LeadWorkers workers(4);
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  // Find two keys on different lanes by posting a blocker and probing.
  ASSERT_TRUE(workers.post("busy", [released] { released.wait(); }));
  std::atomic<int> ran{0};
  int other_lanes = 0;
  for (int i = 0; i < 64; ++i) {
    std::promise<void> done;
    auto f = done.get_future();
    ASSERT_TRUE(workers.post(key_of("other-", i), [&ran, d = std::make_shared<std::promise<void>>(std::move(done))] {
      ++ran;
      d->set_value();
    }));
    // A key on the busy lane waits for the release; others run.
    if (f.wait_for(std::chrono::seconds(2)) == std::future_status::ready) ++other_lanes;
    if (other_lanes >= 3) break;
  }
  EXPECT_GE(other_lanes, 3);
  release.set_value();
  workers.stop();
  EXPECT_EQ(workers.pending(), 0u);
}

TEST(LeadWorkers, StopRunsWhatWasQueuedAndRefusesMore) {
  LeadWorkers workers(2);
  std::atomic<int> ran{0};
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(workers.post(key_of("k", i), [&] { ++ran; }));
  workers.stop();
  EXPECT_EQ(ran.load(), 100);
  EXPECT_FALSE(workers.post("k", [&] { ++ran; }));
  workers.stop();  // idempotent
  EXPECT_EQ(ran.load(), 100);
}

TEST(LeadWorkers, ZeroThreadsMeansOne) {
  LeadWorkers workers(0);
  std::promise<int> p;
  auto f = p.get_future();
  ASSERT_TRUE(workers.post("k", [&] { p.set_value(7); }));
  EXPECT_EQ(f.get(), 7);
}

}  // namespace
}  // namespace reai::server
