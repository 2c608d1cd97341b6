#include "bus/tenant_channels.h"

#include <algorithm>
#include <latch>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace reai::bus {
namespace {

struct TestChannel {
  int value = 0;
};

TEST(TenantChannels, FindIsNullBeforeGet) {
  TenantChannels<TestChannel> channels;
  EXPECT_EQ(channels.find("acme"), nullptr);
  channels.get("acme");
  EXPECT_NE(channels.find("acme"), nullptr);
  EXPECT_EQ(channels.find("other"), nullptr);
}

TEST(TenantChannels, GetCreatesOnceAndReturnsTheSameChannel) {
  TenantChannels<TestChannel> channels;
  TestChannel& first = channels.get("acme");
  first.value = 7;
  TestChannel& again = channels.get("acme");
  EXPECT_EQ(&first, &again);
  EXPECT_EQ(again.value, 7);
  EXPECT_EQ(channels.find("acme"), &first);
  EXPECT_NE(&channels.get("other"), &first);
}

TEST(TenantChannels, AllListsEveryTenantWithItsChannel) {
  TenantChannels<TestChannel> channels;
  EXPECT_TRUE(channels.all().empty());
  TestChannel* a = &channels.get("a");
  TestChannel* b = &channels.get("b");
  TestChannel* c = &channels.get("c");
  auto all = channels.all();
  std::sort(all.begin(), all.end());
  const std::vector<std::pair<std::string, TestChannel*>> expected = {{"a", a}, {"b", b}, {"c", c}};
  EXPECT_EQ(all, expected);
}

TEST(TenantChannels, ConcurrentGetOfOneTenantYieldsOneChannel) {
  TenantChannels<TestChannel> channels;
  constexpr int kThreads = 8;
  std::vector<TestChannel*> seen(kThreads, nullptr);
  std::latch start(kThreads);  // all threads race for the first get()
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&channels, &seen, &start, i] {
      start.arrive_and_wait();
      seen[static_cast<std::size_t>(i)] = &channels.get("acme");
    });
  }
  for (std::thread& t : threads) t.join();
  for (TestChannel* channel : seen) EXPECT_EQ(channel, seen.front());
  EXPECT_EQ(channels.all().size(), 1u);
}

}  // namespace
}  // namespace reai::bus
