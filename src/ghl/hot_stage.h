// GoHighLevel "move the opportunity to a configured stage when the lead
// turns hot", the pure half: the per-tenant setting (pipeline id + GHL
// pipelineStageId), the outbox payload, the REST calls, how GHL's answers are
// read, and the decision which opportunities move. No I/O: the server's GHL
// worker sends the calls. Safe from any thread. Facts: shared/GHL.md.
//
// The decision: of the contact's opportunities, only the open ones in the
// configured pipeline move, and only when their stage comes before the
// configured stage in the pipeline's order. An opportunity already in that
// stage or a later one, a won/lost/abandoned one, one in another pipeline and
// one in a stage the pipeline does not list are left alone. So a move sent
// twice (a crash between GHL's 2xx and reai's record) changes nothing the
// second time, and an opportunity never moves backwards.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "ghl/writeback.h"

namespace reai::ghl {

struct HotStage {
  std::string pipeline_id;
  std::string stage_id;  // GHL pipelineStageId
  bool operator==(const HotStage&) const = default;
};

// A GHL id as reai accepts it in configuration: 1..128 characters of
// [A-Za-z0-9_-] (GHL's ids are 20-character alphanumerics or UUIDs).
// InvalidArgument naming `what` otherwise.
Status check_ghl_id(std::string_view id, std::string_view what);
// "PIPELINE_ID:STAGE_ID" -> the stage; "off" -> nullopt (turned off).
// InvalidArgument for anything else.
Result<std::optional<HotStage>> parse_hot_stage_spec(std::string_view spec);

// The payload of an outbox update of kind "stage": the target as configured
// when the lead turned hot (a later configuration change does not alter a
// move already owed).
inline constexpr std::string_view kStageUpdateKind = "stage";
std::string stage_move_json(const HotStage& stage);
// InvalidArgument for malformed JSON or ids that check_ghl_id refuses.
Result<HotStage> parse_stage_move(std::string_view json_text);

// GET /opportunities/search?location_id=&contact_id=&limit=100 (one page: a
// contact with more than 100 opportunities has only its first 100 looked at).
ApiCall search_opportunities_call(std::string_view location_id, std::string_view contact_id);
// GET /opportunities/pipelines?locationId=
ApiCall pipelines_call(std::string_view location_id);
// PUT /opportunities/{id} {"pipelineStageId": stage}. Idempotent.
ApiCall move_opportunity_call(std::string_view opportunity_id, std::string_view stage_id);

struct Opportunity {
  std::string id;
  std::string pipeline_id;
  std::string stage_id;
  std::string status;  // "open" | "won" | "lost" | "abandoned" (as GHL says)
};
// Reads {"opportunities":[{"id","pipelineId","pipelineStageId","status"}...]};
// records without an id are skipped. InvalidArgument for malformed JSON or a
// missing array.
Result<std::vector<Opportunity>> parse_opportunity_search(std::string_view body);
// The stage ids of `pipeline_id` in pipeline order (by "position" when every
// stage has one, else as listed) from {"pipelines":[{"id","stages":[{"id",
// "position"}]}]}. NotFound when the pipeline is not listed; InvalidArgument
// for a malformed answer.
Result<std::vector<std::string>> parse_pipeline_stages(std::string_view body, std::string_view pipeline_id);

// True when deciding needs the pipeline's stage order: some open
// opportunity of the pipeline is in another stage than the target.
bool needs_stage_order(const std::vector<Opportunity>& opportunities, const HotStage& target);

struct StageDecision {
  std::vector<std::string> move;  // opportunity ids to PUT, in search order
  std::string note;               // what was left alone and why ("" when nothing)
};
// The decision of the header comment. `stage_order` may be empty when
// needs_stage_order() is false. InvalidArgument when the order is needed and
// does not contain the target stage (a configuration GHL no longer matches).
Result<StageDecision> decide_stage_moves(const std::vector<Opportunity>& opportunities, const HotStage& target,
                                         const std::vector<std::string>& stage_order);

}  // namespace reai::ghl
