#include "ghl/hot_stage.h"

#include <gtest/gtest.h>

namespace reai::ghl {
namespace {

const HotStage kTarget{"pipeSales", "stgHot"};
// The pipeline lists its stages out of order; "position" is the order.
const std::string kPipelines =
    R"({"pipelines":[{"id":"pipeOther","stages":[{"id":"stgX","position":0}]},)"
    R"({"id":"pipeSales","name":"Sales","stages":[{"id":"stgOffer","position":3},{"id":"stgNew","position":0},)"
    R"({"id":"stgHot","position":2},{"id":"stgContacted","position":1}]}]})";

std::vector<std::string> order() { return parse_pipeline_stages(kPipelines, "pipeSales").value(); }

TEST(HotStageTest, SpecIsPipelineColonStageOrOff) {
  EXPECT_EQ(parse_hot_stage_spec("pipe-1:0b6e8c1e-7c2a-4f5e-9d1b-3a2c4e5f6a7b").value(),
            (HotStage{"pipe-1", "0b6e8c1e-7c2a-4f5e-9d1b-3a2c4e5f6a7b"}));
  EXPECT_FALSE(parse_hot_stage_spec("off").value().has_value());
  for (const char* bad : {"", "pipe", ":stage", "pipe:", "pipe:st age", "pi/pe:stage", "pipe:stage:more", "OFF",
                          "pipe:stage\n"}) {
    auto r = parse_hot_stage_spec(bad);
    ASSERT_FALSE(r.has_value()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(parse_hot_stage_spec("p:" + std::string(129, 'a')).has_value());
  EXPECT_TRUE(parse_hot_stage_spec("p:" + std::string(128, 'a')).has_value());
}

TEST(HotStageTest, PayloadRoundTripsAndRefusesBadOnes) {
  EXPECT_EQ(parse_stage_move(stage_move_json(kTarget)).value(), kTarget);
  EXPECT_FALSE(parse_stage_move("{").has_value());
  EXPECT_FALSE(parse_stage_move("[]").has_value());
  EXPECT_FALSE(parse_stage_move(R"({"pipeline_id":"p"})").has_value());
  EXPECT_FALSE(parse_stage_move(R"({"pipeline_id":"p","stage_id":7})").has_value());
}

TEST(HotStageTest, CallsFollowGhlApi) {
  auto search = search_opportunities_call("LOC 1", "CON/1");
  EXPECT_EQ(search.method, "GET");
  EXPECT_EQ(search.target, "/opportunities/search?location_id=LOC%201&contact_id=CON%2F1&limit=100");
  EXPECT_TRUE(search.body.empty());
  EXPECT_EQ(pipelines_call("LOC1").target, "/opportunities/pipelines?locationId=LOC1");
  auto move = move_opportunity_call("opp1", "stgHot");
  EXPECT_EQ(move.method, "PUT");
  EXPECT_EQ(move.target, "/opportunities/opp1");
  EXPECT_EQ(move.body, R"({"pipelineStageId":"stgHot"})");
}

TEST(HotStageTest, SearchAndPipelineAnswersAreRead) {
  auto opps = parse_opportunity_search(
                  R"({"opportunities":[{"id":"o1","pipelineId":"p","pipelineStageId":"s","status":"open","name":"x"},)"
                  R"({"name":"no id"},7],"meta":{"total":2}})")
                  .value();
  ASSERT_EQ(opps.size(), 1u);
  EXPECT_EQ(opps[0].id, "o1");
  EXPECT_EQ(opps[0].pipeline_id, "p");
  EXPECT_EQ(opps[0].stage_id, "s");
  EXPECT_EQ(opps[0].status, "open");
  EXPECT_FALSE(parse_opportunity_search("{").has_value());
  EXPECT_FALSE(parse_opportunity_search(R"({"meta":{}})").has_value());

  EXPECT_EQ(order(), (std::vector<std::string>{"stgNew", "stgContacted", "stgHot", "stgOffer"}));
  // Without a position on every stage, the listed order is the order.
  EXPECT_EQ(parse_pipeline_stages(R"({"pipelines":[{"id":"p","stages":[{"id":"b","position":1},{"id":"a"}]}]})", "p")
                .value(),
            (std::vector<std::string>{"b", "a"}));
  EXPECT_EQ(parse_pipeline_stages(kPipelines, "pipeGone").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(parse_pipeline_stages(R"({"pipelines":[{"id":"p"}]})", "p").status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(parse_pipeline_stages("nope", "p").has_value());
}

TEST(HotStageTest, OnlyOpenOpportunitiesBeforeTheHotStageMove) {
  const std::vector<Opportunity> opps = {
      {"oNew", "pipeSales", "stgNew", "open"},          {"oContacted", "pipeSales", "stgContacted", "open"},
      {"oThere", "pipeSales", "stgHot", "open"},        {"oPast", "pipeSales", "stgOffer", "open"},
      {"oWon", "pipeSales", "stgNew", "won"},           {"oLost", "pipeSales", "stgContacted", "lost"},
      {"oAbandoned", "pipeSales", "stgNew", "abandoned"}, {"oElsewhere", "pipeOther", "stgX", "open"},
      {"oUnknown", "pipeSales", "stgDeleted", "open"},
  };
  auto d = decide_stage_moves(opps, kTarget, order()).value();
  EXPECT_EQ(d.move, (std::vector<std::string>{"oNew", "oContacted"}));
  for (const char* left : {"oThere is in the hot stage already", "oPast is past the hot stage", "oWon is won",
                           "oLost is lost", "oAbandoned is abandoned", "oUnknown is in a stage the pipeline"}) {
    EXPECT_NE(d.note.find(left), std::string::npos) << d.note;
  }
  EXPECT_EQ(d.note.find("oElsewhere"), std::string::npos) << d.note;
}

TEST(HotStageTest, NothingToMoveNeedsNoPipelineOrder) {
  const std::vector<Opportunity> won = {{"oWon", "pipeSales", "stgNew", "won"}};
  EXPECT_FALSE(needs_stage_order(won, kTarget));
  auto d = decide_stage_moves(won, kTarget, {}).value();
  EXPECT_TRUE(d.move.empty());
  EXPECT_EQ(d.note, "oWon is won");
  EXPECT_FALSE(needs_stage_order({{"oThere", "pipeSales", "stgHot", "open"}}, kTarget));
  auto none = decide_stage_moves({}, kTarget, {}).value();
  EXPECT_TRUE(none.move.empty());
  EXPECT_EQ(none.note, "no opportunity in pipeline pipeSales");
  EXPECT_TRUE(needs_stage_order({{"oNew", "pipeSales", "stgNew", "open"}}, kTarget));
}

TEST(HotStageTest, AHotStageThePipelineDoesNotListIsRefused) {
  const std::vector<Opportunity> opps = {{"oNew", "pipeSales", "stgNew", "open"}};
  auto d = decide_stage_moves(opps, HotStage{"pipeSales", "stgGone"}, order());
  ASSERT_FALSE(d.has_value());
  EXPECT_EQ(d.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(d.status().message().find("stgGone"), std::string::npos);
}

}  // namespace
}  // namespace reai::ghl
