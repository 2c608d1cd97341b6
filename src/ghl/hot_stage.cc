#include "ghl/hot_stage.h"

#include <algorithm>
#include <cctype>

#include <boost/json.hpp>

#include "core/json_text.h"

namespace reai::ghl {
namespace {

namespace json = boost::json;

constexpr std::size_t kMaxIdLength = 128;
constexpr std::string_view kOff = "off";

std::string text_of(const json::object& o, std::string_view key) {
  const auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

std::string joined(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) {
    if (!out.empty()) out += "; ";
    out += p;
  }
  return out;
}

}  // namespace

Status check_ghl_id(std::string_view id, std::string_view what) {
  const bool ok = !id.empty() && id.size() <= kMaxIdLength && std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_';
  });
  if (ok) return Status::ok();
  std::string message(what);
  message += " must be 1-128 letters, digits, '-' or '_'";
  return invalid_argument(message);
}

Result<std::optional<HotStage>> parse_hot_stage_spec(std::string_view spec) {
  if (spec == kOff) return std::optional<HotStage>();
  const auto colon = spec.find(':');
  if (colon == std::string_view::npos) {
    return invalid_argument("hot stage must be PIPELINE_ID:STAGE_ID or 'off'");
  }
  HotStage stage{std::string(spec.substr(0, colon)), std::string(spec.substr(colon + 1))};
  REAI_RETURN_IF_ERROR(check_ghl_id(stage.pipeline_id, "hot stage pipeline id"));
  REAI_RETURN_IF_ERROR(check_ghl_id(stage.stage_id, "hot stage id"));
  return std::optional<HotStage>(std::move(stage));
}

std::string stage_move_json(const HotStage& stage) {
  json::object o;
  o["pipeline_id"] = stage.pipeline_id;
  o["stage_id"] = stage.stage_id;
  return json::serialize(o);
}

Result<HotStage> parse_stage_move(std::string_view json_text) {
  auto v = parse_json(json_text);
  if (!v) return v.status();
  const auto* o = v->if_object();
  if (!o) return invalid_argument("stage move: not an object");
  HotStage stage{text_of(*o, "pipeline_id"), text_of(*o, "stage_id")};
  REAI_RETURN_IF_ERROR(check_ghl_id(stage.pipeline_id, "stage move pipeline_id"));
  REAI_RETURN_IF_ERROR(check_ghl_id(stage.stage_id, "stage move stage_id"));
  return stage;
}

ApiCall search_opportunities_call(std::string_view location_id, std::string_view contact_id) {
  std::string target = "/opportunities/search?location_id=";
  target += encode_path_segment(location_id);
  target += "&contact_id=";
  target += encode_path_segment(contact_id);
  target += "&limit=100";
  return ApiCall{"GET", std::move(target), ""};
}

ApiCall pipelines_call(std::string_view location_id) {
  std::string target = "/opportunities/pipelines?locationId=";
  target += encode_path_segment(location_id);
  return ApiCall{"GET", std::move(target), ""};
}

ApiCall move_opportunity_call(std::string_view opportunity_id, std::string_view stage_id) {
  json::object o;
  o["pipelineStageId"] = stage_id;
  std::string target = "/opportunities/";
  target += encode_path_segment(opportunity_id);
  return ApiCall{"PUT", std::move(target), json::serialize(o)};
}

Result<std::vector<Opportunity>> parse_opportunity_search(std::string_view body) {
  // GHL's answer: a repeated key keeps its last value, as GHL's JavaScript reads it.
  auto v = parse_json(body, {}, {}, DuplicateKeys::kLastWins);
  if (!v) return v.status();
  const auto* o = v->if_object();
  const auto* list = o ? o->if_contains("opportunities") : nullptr;
  if (!list || !list->is_array()) return invalid_argument("opportunity search: no opportunities array");
  std::vector<Opportunity> out;
  for (const auto& item : list->as_array()) {
    const auto* record = item.if_object();
    if (!record) continue;
    Opportunity opp{text_of(*record, "id"), text_of(*record, "pipelineId"), text_of(*record, "pipelineStageId"),
                    text_of(*record, "status")};
    if (!opp.id.empty()) out.push_back(std::move(opp));
  }
  return out;
}

Result<std::vector<std::string>> parse_pipeline_stages(std::string_view body, std::string_view pipeline_id) {
  // GHL's answer: a repeated key keeps its last value, as GHL's JavaScript reads it.
  auto v = parse_json(body, {}, {}, DuplicateKeys::kLastWins);
  if (!v) return v.status();
  const auto* o = v->if_object();
  const auto* pipelines = o ? o->if_contains("pipelines") : nullptr;
  if (!pipelines || !pipelines->is_array()) return invalid_argument("pipelines: no pipelines array");
  for (const auto& item : pipelines->as_array()) {
    const auto* pipeline = item.if_object();
    if (!pipeline || text_of(*pipeline, "id") != pipeline_id) continue;
    const auto* stages = pipeline->if_contains("stages");
    if (!stages || !stages->is_array()) return invalid_argument("pipelines: pipeline without a stages array");
    struct Listed {
      std::string id;
      double position;
      bool has_position;
    };
    std::vector<Listed> listed;
    for (const auto& s : stages->as_array()) {
      const auto* stage = s.if_object();
      if (!stage || text_of(*stage, "id").empty()) continue;
      const auto* position = stage->if_contains("position");
      const bool numeric = position && position->is_number();
      listed.push_back({text_of(*stage, "id"), numeric ? position->to_number<double>() : 0.0, numeric});
    }
    if (std::all_of(listed.begin(), listed.end(), [](const Listed& l) { return l.has_position; })) {
      std::stable_sort(listed.begin(), listed.end(),
                       [](const Listed& a, const Listed& b) { return a.position < b.position; });
    }
    std::vector<std::string> order;
    for (auto& l : listed) order.push_back(std::move(l.id));
    return order;
  }
  return not_found("pipeline '" + std::string(pipeline_id) + "' is not among the location's pipelines");
}

bool needs_stage_order(const std::vector<Opportunity>& opportunities, const HotStage& target) {
  return std::any_of(opportunities.begin(), opportunities.end(), [&](const Opportunity& o) {
    return o.status == "open" && o.pipeline_id == target.pipeline_id && o.stage_id != target.stage_id;
  });
}

Result<StageDecision> decide_stage_moves(const std::vector<Opportunity>& opportunities, const HotStage& target,
                                         const std::vector<std::string>& stage_order) {
  auto position = [&](const std::string& stage) -> std::ptrdiff_t {
    auto it = std::find(stage_order.begin(), stage_order.end(), stage);
    return it == stage_order.end() ? -1 : it - stage_order.begin();
  };
  const std::ptrdiff_t target_at = position(target.stage_id);
  if (needs_stage_order(opportunities, target) && target_at < 0) {
    return invalid_argument("hot stage '" + target.stage_id + "' is not a stage of pipeline '" + target.pipeline_id +
                            "'");
  }
  StageDecision decision;
  std::vector<std::string> left;
  for (const auto& o : opportunities) {
    if (o.pipeline_id != target.pipeline_id) continue;  // another pipeline: not reai's to move
    if (o.status != "open") {
      left.push_back(o.id + " is " + (o.status.empty() ? std::string("of unknown status") : o.status));
    } else if (o.stage_id == target.stage_id) {
      left.push_back(o.id + " is in the hot stage already");
    } else if (const auto at = position(o.stage_id); at < 0) {
      left.push_back(o.id + " is in a stage the pipeline does not list");
    } else if (at > target_at) {
      left.push_back(o.id + " is past the hot stage");
    } else {
      decision.move.push_back(o.id);
    }
  }
  if (decision.move.empty() && left.empty()) left.push_back("no opportunity in pipeline " + target.pipeline_id);
  decision.note = joined(left);
  return decision;
}

}  // namespace reai::ghl
