#include "server/lead_board.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>

namespace reai::server {
namespace {

std::shared_ptr<const std::string> score(const std::string& tenant, const std::string& lead, const std::string& p,
                                         const std::string& band) {
  return std::make_shared<const std::string>(R"({"tenant_id":")" + tenant + R"(","lead_id":")" + lead +
                                             R"(","probability":)" + p + R"(,"score":1,"band":")" + band +
                                             R"(","reasons":[]})");
}

std::string lead_of(const std::shared_ptr<const std::string>& json) {
  const auto at = json->find("\"lead_id\":\"") + 11;
  return json->substr(at, json->find('"', at) - at);
}

TEST(LeadBoard, KeepsTheNewestScorePerLeadBestFirstPerTenant) {
  LeadBoard board;
  board.record(score("t1", "a", "0.2", "cold"));
  board.record(score("t1", "b", "0.9", "hot"));
  board.record(score("t1", "c", "0.5", "warm"));
  board.record(score("t2", "z", "0.99", "hot"));
  board.record(score("t1", "a", "0.7", "warm"));  // newer: replaces
  auto top = board.top("t1", std::nullopt, 10);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(lead_of(top[0]), "b");
  EXPECT_EQ(lead_of(top[1]), "a");
  EXPECT_EQ(lead_of(top[2]), "c");
  EXPECT_EQ(*top[1], *score("t1", "a", "0.7", "warm"));  // the object as published
  auto warm = board.top("t1", scoring::Band::kWarm, 1);
  ASSERT_EQ(warm.size(), 1u);
  EXPECT_EQ(lead_of(warm[0]), "a");
  EXPECT_TRUE(board.top("t3", std::nullopt, 10).empty());
  EXPECT_EQ(board.size(), 4u);
}

TEST(LeadBoard, AStartUpSeedDoesNotOverwriteAPublishedScore) {
  LeadBoard board;
  board.record(score("t", "a", "0.8", "hot"));
  board.record(score("t", "a", "0.1", "cold"), /*only_if_absent=*/true);
  board.record(score("t", "b", "0.3", "cold"), /*only_if_absent=*/true);
  auto top = board.top("t", std::nullopt, 10);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(*top[0], *score("t", "a", "0.8", "hot"));
}

TEST(LeadBoard, StandingsAreEachLeadsNewestScoreAndBand) {
  LeadBoard board;
  board.record(score("t", "a", "0.2", "cold"));
  board.record(score("t", "a", "0.8", "hot"));
  board.record(std::make_shared<const std::string>(
      R"({"tenant_id":"t","lead_id":"b","probability":0.42,"score":57,"band":"warm"})"));
  board.record(std::make_shared<const std::string>(R"({"tenant_id":"t","lead_id":"c","probability":0.31,"band":"cold"})"));
  board.record(score("other", "x", "0.9", "hot"));
  auto rows = board.standings("t");
  std::sort(rows.begin(), rows.end(), [](const auto& x, const auto& y) { return x.lead_id < y.lead_id; });
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].lead_id, "a");
  EXPECT_EQ(rows[0].band, scoring::Band::kHot);
  EXPECT_EQ(rows[0].score, 1);  // the published score, not the probability
  EXPECT_EQ(rows[1].score, 57);
  EXPECT_EQ(rows[1].band, scoring::Band::kWarm);
  EXPECT_EQ(rows[2].score, 31);  // no score field: the probability in points
  EXPECT_TRUE(board.standings("nobody").empty());
}

TEST(LeadBoard, IgnoresWhatIsNotAScoreObject) {
  LeadBoard board;
  board.record(nullptr);
  board.record(std::make_shared<const std::string>("not json"));
  board.record(std::make_shared<const std::string>("[1,2]"));
  board.record(std::make_shared<const std::string>(R"({"tenant_id":"t","lead_id":"a","probability":"x","band":"hot"})"));
  board.record(std::make_shared<const std::string>(R"({"tenant_id":"t","lead_id":"a","probability":0.5,"band":"lukewarm"})"));
  board.record(std::make_shared<const std::string>(R"({"tenant_id":"t","probability":0.5,"band":"hot"})"));
  EXPECT_EQ(board.size(), 0u);
}

}  // namespace
}  // namespace reai::server
