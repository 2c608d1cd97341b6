#include "server/published_scores.h"

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace reai::server {
namespace {

scoring::LeadScore score_of(const std::string& lead, int score) {
  scoring::LeadScore s;
  s.tenant_id = "t1";
  s.lead_id = lead;
  s.score = score;
  s.band = scoring::band_for_probability(score / 100.0);
  return s;
}

// What left, in order, as the Send callbacks and the test note it.
class Log {
 public:
  void add(std::string line) {
    std::lock_guard lock(mu_);
    lines_.push_back(std::move(line));
  }
  std::vector<std::string> lines() {
    std::lock_guard lock(mu_);
    return lines_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> lines_;
};

// Long enough for an unordered direct publish to have gone out; the test
// passes in that time only when the publish waits.
constexpr auto kGrace = std::chrono::milliseconds(200);

TEST(PublishedScores, ADirectPublishWaitsUntilItsLeadsQueuedUpdatesAreSent) {
  PublishedScores published;
  Log log;
  const scoring::LeadScore queued = score_of("lead", 10);
  ASSERT_TRUE(published.record(queued, true, [&](bool) { log.add("queued 10"); }));
  ASSERT_TRUE(published.record(score_of("lead", 15), true, [&](bool) { log.add("queued 15"); }));
  std::atomic<bool> direct_done{false};
  std::thread direct([&] {
    EXPECT_TRUE(published.record(score_of("lead", 20), false, [&](bool) { log.add("direct 20"); }));
    direct_done = true;
  });
  // Another lead's direct publish is not held.
  EXPECT_TRUE(published.record(score_of("other", 50), false, [&](bool) { log.add("other 50"); }));
  std::this_thread::sleep_for(kGrace);
  EXPECT_FALSE(direct_done);
  // The batch held two of the lead's updates: one sent is not enough.
  const std::string key = PublishedScores::lead_key(queued);
  published.sent(std::vector<std::string>{key});
  std::this_thread::sleep_for(kGrace);
  EXPECT_FALSE(direct_done);
  log.add("batch sent");
  published.sent(std::vector<std::string>{key});
  direct.join();
  EXPECT_EQ(log.lines(), (std::vector<std::string>{"queued 10", "queued 15", "other 50", "batch sent", "direct 20"}));
}

TEST(PublishedScores, AnUnchangedScoreSendsNothingUntilForgotten) {
  PublishedScores published;
  int sends = 0;
  bool moved = false;
  auto send = [&](bool m) {
    ++sends;
    moved = m;
  };
  published.seed(score_of("lead", 30));
  EXPECT_FALSE(published.record(score_of("lead", 30), false, send));
  scoring::LeadScore reasons_only = score_of("lead", 30);
  reasons_only.reasons.push_back({"inbound_sms_7d", "replied by SMS", 0.5});
  EXPECT_TRUE(published.record(reasons_only, false, send));
  EXPECT_FALSE(moved);  // same score and band: only the reasons changed
  EXPECT_TRUE(published.record(score_of("lead", 31), false, send));
  EXPECT_TRUE(moved);
  published.forget(score_of("lead", 31));
  EXPECT_TRUE(published.record(score_of("lead", 31), false, send));
  EXPECT_EQ(sends, 3);
}

}  // namespace
}  // namespace reai::server
