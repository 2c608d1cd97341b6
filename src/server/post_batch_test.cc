#include "server/post_batch.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace reai::server {
namespace {

// A lane that records what is posted to it and runs it only when told.
struct FakeLane {
  std::vector<std::function<void()>> posted;
  PostBatch::Post post() {
    return [this](std::function<void()> fn) { posted.push_back(std::move(fn)); };
  }
  void run_all() {
    auto fns = std::move(posted);
    posted.clear();
    for (auto& fn : fns) fn();
  }
};

TEST(PostBatchTest, OneLanesFunctionsGoInOnePostInOrder) {
  FakeLane a;
  PostBatch batch;
  std::vector<std::string> ran;
  for (const char* name : {"first", "second", "third"}) batch.add(&a, a.post(), [&ran, name] { ran.push_back(name); });
  EXPECT_TRUE(a.posted.empty()) << "posted before the flush";
  EXPECT_FALSE(batch.empty());
  batch.flush();
  EXPECT_TRUE(batch.empty());
  ASSERT_EQ(a.posted.size(), 1u);
  a.run_all();
  EXPECT_EQ(ran, (std::vector<std::string>{"first", "second", "third"}));
}

TEST(PostBatchTest, EachLaneGetsOnePostWithItsOwnFunctions) {
  FakeLane a, b;
  PostBatch batch;
  std::vector<std::string> ran;
  batch.add(&a, a.post(), [&] { ran.push_back("a1"); });
  batch.add(&b, b.post(), [&] { ran.push_back("b1"); });
  batch.add(&a, a.post(), [&] { ran.push_back("a2"); });
  batch.add(&b, b.post(), [&] { ran.push_back("b2"); });
  batch.flush();
  ASSERT_EQ(a.posted.size(), 1u);
  ASSERT_EQ(b.posted.size(), 1u);
  b.run_all();
  a.run_all();
  EXPECT_EQ(ran, (std::vector<std::string>{"b1", "b2", "a1", "a2"}));
}

TEST(PostBatchTest, NullLaneIsPostedAtOnce) {
  FakeLane a;
  PostBatch batch;
  bool ran = false;
  batch.add(nullptr, a.post(), [&] { ran = true; });
  ASSERT_EQ(a.posted.size(), 1u);
  EXPECT_TRUE(batch.empty());
  a.run_all();
  EXPECT_TRUE(ran);
}

TEST(PostBatchTest, FlushStartsAFreshBatchAndAnEmptyFlushPostsNothing) {
  FakeLane a;
  PostBatch batch;
  batch.flush();
  EXPECT_TRUE(a.posted.empty());
  int runs = 0;
  batch.add(&a, a.post(), [&] { ++runs; });
  batch.flush();
  batch.add(&a, a.post(), [&] { ++runs; });
  batch.flush();
  ASSERT_EQ(a.posted.size(), 2u) << "one post per flush";
  a.run_all();
  EXPECT_EQ(runs, 2);
}

}  // namespace
}  // namespace reai::server
