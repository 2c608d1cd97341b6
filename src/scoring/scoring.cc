// Bands, model loading, the directory registry, model evaluation (probability,
// reasons, confidence) and the rule-based fallback scorer.
#include "scoring/scoring.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include <boost/json.hpp>

#include "core/files.h"
#include "core/tenant_id.h"
#include "core/time.h"
#include "scoring/lead_model.h"

namespace reai::scoring {
namespace json = boost::json;
namespace fs = std::filesystem;

std::string_view band_name(Band band) {
  switch (band) {
    case Band::kHot:
      return "hot";
    case Band::kWarm:
      return "warm";
    case Band::kCold:
      return "cold";
  }
  return "cold";
}

std::optional<Band> parse_band(std::string_view name) {
  if (name == "hot") return Band::kHot;
  if (name == "warm") return Band::kWarm;
  if (name == "cold") return Band::kCold;
  return std::nullopt;
}

Band band_for_probability(double probability) {
  if (probability >= kHotThreshold) return Band::kHot;
  if (probability >= kWarmThreshold) return Band::kWarm;
  return Band::kCold;
}

namespace {

Status load_error(const std::string& dir, const std::string& what) {
  return failed_precondition("lead model " + dir + ": " + what);
}

// A string member of the metadata, or "" when it is absent or not a string.
std::string string_member(const json::object& meta, const char* key) {
  const json::value* v = meta.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

// A model trained for another format or feature schema would score garbage,
// so it is refused before anything else is read.
Status check_format_and_schema(const std::string& dir, const json::object& meta) {
  const std::string format = string_member(meta, "format");
  if (format == "reai-lead-model/1") {
    // Its agent records are keyed by agent id alone, pooling tenants that
    // share an agent id; they cannot be split afterwards.
    return load_error(dir, "trained by an older reai that pooled agents across tenants; retrain the model");
  }
  if (format != kModelFormat) return load_error(dir, "unknown format '" + format + "'");
  const std::string schema_hash = string_member(meta, "schema_hash");
  if (schema_hash != features::schema_hash()) {
    return load_error(dir, "feature schema " + schema_hash + " differs from this build's " +
                               features::schema_hash() + "; retrain the model");
  }
  const json::value* names = meta.if_contains("features");
  auto schema = features::feature_schema();
  if (!names || !names->is_array() || names->get_array().size() != schema.size()) {
    return load_error(dir, "feature list missing or of the wrong length");
  }
  for (std::size_t i = 0; i < schema.size(); ++i) {
    const json::value& n = names->get_array()[i];
    if (!n.is_string() || n.get_string() != schema[i].name) return load_error(dir, "feature list differs");
  }
  return Status::ok();
}

Status read_forest(const std::string& dir, const std::string& model_text, LeadModel& model) {
  const std::size_t num_features = features::feature_schema().size();
  auto forest = models::CompiledForest::compile(model_text);
  if (!forest) return load_error(dir, "model.json: " + forest.status().message());
  if (forest->num_features() != num_features) return load_error(dir, "model has the wrong number of features");
  model.forest = std::move(*forest);
  return Status::ok();
}

Status read_calibration(const std::string& dir, const json::object& meta, LeadModel& model) {
  const json::value* cal = meta.if_contains("calibrator");
  if (!cal) return load_error(dir, "no calibrator");
  auto calibrator = models::IsotonicCalibrator::from_json(json::serialize(*cal));
  if (!calibrator) return load_error(dir, "calibrator: " + calibrator.status().message());
  model.calibrator = std::move(*calibrator);
  const json::value* shift = meta.if_contains("calibration_shift");
  if (!shift || !shift->is_number() || !std::isfinite(shift->to_number<double>())) {
    return load_error(dir, "no calibration_shift");
  }
  model.calibration_shift = shift->to_number<double>();
  if (const json::value* level = meta.if_contains("level_calibration")) {
    const json::value* map = level->is_object() ? level->get_object().if_contains("map") : nullptr;
    if (!map) return load_error(dir, "level_calibration has no map");
    auto parsed = models::AgeLogitCalibration::from_json(json::serialize(*map));
    if (!parsed) return load_error(dir, std::string("level_calibration: ") + parsed.status().message());
    model.level_calibration = std::move(*parsed);
  }
  return Status::ok();
}

// Without data_span.export_end the book's end stays max, which turns the
// engine's live counting of later-maturing leads off.
Status read_track_records(const std::string& dir, const json::object& meta, LeadModel& model) {
  const json::value* tr = meta.if_contains("track_records");
  if (!tr) return load_error(dir, "no track records");
  auto book = features::TrackRecordBook::from_json(json::serialize(*tr));
  if (!book) return load_error(dir, "track records are malformed");
  model.track_records = std::move(*book);
  if (const json::value* span = meta.if_contains("data_span"); span && span->is_object()) {
    const json::value* end = span->get_object().if_contains("export_end");
    if (end && end->is_string()) {
      auto t = parse_iso8601(std::string(end->get_string()));
      if (!t) return load_error(dir, "data_span.export_end is not an ISO 8601 time");
      model.track_records_end = *t;
    }
  }
  return Status::ok();
}

}  // namespace

Result<std::shared_ptr<const LeadModel>> load_lead_model(const std::string& dir) {
  auto meta_text = read_text_file((fs::path(dir) / "metadata.json").string());
  if (!meta_text) return meta_text.status();
  auto model_text = read_text_file((fs::path(dir) / "model.json").string());
  if (!model_text) return model_text.status();
  boost::system::error_code ec;
  json::value meta = json::parse(*meta_text, ec);
  if (ec || !meta.is_object()) return load_error(dir, "metadata.json is not a JSON object");
  const json::object& m = meta.get_object();
  REAI_RETURN_IF_ERROR(check_format_and_schema(dir, m));
  auto model = std::make_shared<LeadModel>();
  model->version = string_member(m, "version");
  if (model->version.empty()) return load_error(dir, "no version");
  REAI_RETURN_IF_ERROR(read_forest(dir, *model_text, *model));
  REAI_RETURN_IF_ERROR(read_calibration(dir, m, *model));
  const auto age_column = features::feature_index("lead_age_hours");
  if (!age_column) return load_error(dir, "this build's schema has no lead_age_hours");
  model->age_column = *age_column;
  REAI_RETURN_IF_ERROR(read_track_records(dir, m, *model));
  const json::value* base = m.if_contains("base_rate");
  if (!base || !base->is_number()) return load_error(dir, "no base_rate");
  model->base_rate = base->to_number<double>();
  return std::shared_ptr<const LeadModel>(std::move(model));
}

std::string lead_model_version(const LeadModel& model) { return model.version; }

// ---------------------------------------------------------------------------
// Registry

namespace {

// One model directory as a reload found it, read without the registry's lock.
struct ModelDirRead {
  enum class Outcome { kAbsent, kFailed, kUnchanged, kNewVersion } outcome = Outcome::kAbsent;
  std::shared_ptr<const LeadModel> model;  // kNewVersion only
  std::string error;                       // kFailed only
};

ModelDirRead read_model_dir(const fs::path& dir, const std::shared_ptr<const LeadModel>& serving) {
  using Outcome = ModelDirRead::Outcome;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return {};
  auto loaded = load_lead_model(dir.string());
  if (!loaded) return {Outcome::kFailed, nullptr, loaded.status().message()};
  // The version names the training run: the same one is not swapped, so
  // nothing that holds the serving model sees a change.
  if (serving && serving->version == (*loaded)->version) return {Outcome::kUnchanged, nullptr, {}};
  return {Outcome::kNewVersion, std::move(*loaded), {}};
}

Status kept_previous(const std::vector<std::string>& errors) {
  if (errors.empty()) return Status::ok();
  std::string message = "kept the previous model(s): ";
  for (std::size_t i = 0; i < errors.size(); ++i) message += (i ? "; " : "") + errors[i];
  return failed_precondition(message);
}

}  // namespace

struct DirectoryModelRegistry::State {
  std::mutex reload_mu;  // one reload at a time; held without `mu` while reading disk
  mutable std::mutex mu;
  std::shared_ptr<const LeadModel> shared;
  std::map<std::string, std::shared_ptr<const LeadModel>, std::less<>> tenants;
  // Why a model directory ("leads", "tenants/T/leads") did not load.
  std::map<std::string, std::string> load_errors;
};

DirectoryModelRegistry::DirectoryModelRegistry(std::string model_dir)
    : model_dir_(std::move(model_dir)), state_(std::make_unique<State>()) {}
DirectoryModelRegistry::~DirectoryModelRegistry() = default;

Status DirectoryModelRegistry::reload() { return reload_all().status; }

ModelReloadReport DirectoryModelRegistry::reload_all() {
  std::vector<std::string> tenant_ids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(fs::path(model_dir_) / "tenants", ec)) {
    // A directory no valid tenant id names serves no tenant.
    const std::string name = entry.path().filename().string();
    if (is_valid_tenant_id(name) && fs::is_directory(entry.path() / "leads", ec)) tenant_ids.push_back(name);
  }
  return reload_models(tenant_ids, true);
}

ModelReloadReport DirectoryModelRegistry::reload_tenant(std::string_view tenant_id) {
  if (Status s = check_tenant_id(tenant_id); !s) return ModelReloadReport{s, {}, {}, {}};
  return reload_models({std::string(tenant_id)}, false);
}

ModelReloadReport DirectoryModelRegistry::reload_models(const std::vector<std::string>& tenant_ids,
                                                        bool forget_errors) {
  std::lock_guard reload_lock(state_->reload_mu);  // nothing else swaps until we are done
  struct Read {
    std::string name;
    std::string tenant_id;  // "" for the shared model
    ModelDirRead found;
  };
  std::vector<Read> reads;
  {
    std::shared_ptr<const LeadModel> serving;
    {
      std::lock_guard lock(state_->mu);
      serving = state_->shared;
    }
    reads.push_back({"leads", "", read_model_dir(fs::path(model_dir_) / "leads", serving)});
  }
  for (const std::string& id : tenant_ids) {
    auto dir = tenant_dir(model_dir_, id);
    if (!dir) continue;  // callers pass valid ids
    std::shared_ptr<const LeadModel> serving;
    {
      std::lock_guard lock(state_->mu);
      auto it = state_->tenants.find(id);
      if (it != state_->tenants.end()) serving = it->second;
    }
    reads.push_back({"tenants/" + id + "/leads", id, read_model_dir(fs::path(*dir) / "leads", serving)});
  }
  using Outcome = ModelDirRead::Outcome;
  ModelReloadReport report;
  std::vector<std::string> errors;
  std::lock_guard lock(state_->mu);
  if (forget_errors) state_->load_errors.clear();
  for (Read& r : reads) {
    state_->load_errors.erase(r.name);
    switch (r.found.outcome) {
      case Outcome::kAbsent:
        break;
      case Outcome::kFailed:
        state_->load_errors[r.name] = r.found.error;
        report.failed.push_back(r.name);
        errors.push_back(std::move(r.found.error));
        break;
      case Outcome::kUnchanged:
        report.unchanged.push_back(r.name);
        break;
      case Outcome::kNewVersion:
        (r.tenant_id.empty() ? state_->shared : state_->tenants[r.tenant_id]) = std::move(r.found.model);
        report.reloaded.push_back(r.name);
        break;
    }
  }
  report.status = kept_previous(errors);
  return report;
}

Status DirectoryModelRegistry::last_reload() const {
  std::vector<std::string> errors;
  std::lock_guard lock(state_->mu);
  for (const auto& [name, error] : state_->load_errors) errors.push_back(error);
  return kept_previous(errors);
}

std::shared_ptr<const LeadModel> DirectoryModelRegistry::lead_model(std::string_view tenant_id) const {
  std::lock_guard lock(state_->mu);
  auto it = state_->tenants.find(tenant_id);
  if (it != state_->tenants.end()) return it->second;
  return state_->shared;
}

std::string DirectoryModelRegistry::shared_version() const {
  std::lock_guard lock(state_->mu);
  return state_->shared ? state_->shared->version : std::string();
}

// ---------------------------------------------------------------------------
// Evaluation

double calibrate(const models::IsotonicCalibrator& calibrator, double shift, double raw) {
  if (calibrator.empty()) return raw;
  const double p = calibrator.apply(raw);
  if (shift == 0) return p;
  const double z = std::log(p / (1 - p)) + shift;
  return std::clamp(1.0 / (1.0 + std::exp(-z)), 0.0005, 0.9995);
}

double level_neutral_shift(const models::IsotonicCalibrator& calibrator, std::span<const double> raw) {
  if (raw.empty()) return 0;
  double target = 0;
  for (double r : raw) target += r;
  target /= double(raw.size());
  auto mean_at = [&](double shift) {
    double sum = 0;
    for (double r : raw) sum += calibrate(calibrator, shift, r);
    return sum / double(raw.size());
  };
  double lo = -2, hi = 2;
  for (int i = 0; i < 40; ++i) {
    const double mid = 0.5 * (lo + hi);
    (mean_at(mid) < target ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

std::vector<ScoreReason> top_reasons(const float* row, const double* impacts, std::size_t n) {
  // One pass keeping the three largest |impact| (ties: lower index first);
  // no allocation besides the reasons themselves.
  std::size_t order[3];
  std::size_t k = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double f = std::fabs(impacts[i]);
    if (f == 0) continue;
    std::size_t pos = k;
    while (pos > 0 && std::fabs(impacts[order[pos - 1]]) < f) --pos;
    if (pos >= 3) continue;
    for (std::size_t j = std::min<std::size_t>(k, 2); j > pos; --j) order[j] = order[j - 1];
    order[pos] = i;
    k = std::min<std::size_t>(k + 1, 3);
  }
  std::vector<ScoreReason> reasons;
  reasons.reserve(k);
  auto schema = features::feature_schema();
  for (std::size_t j = 0; j < k; ++j) {
    std::size_t i = order[j];
    reasons.push_back({std::string(schema[i].name), features::reason_text(i, row[i]), impacts[i]});
  }
  return reasons;
}

Result<ModelOutput> evaluate_model(const LeadModel& model, const float* row, Reasons reasons) {
  const std::size_t n = model.forest.num_features();
  // Stack buffer: the schema is small and this is the hot path.
  double impacts[128] = {};
  if (reasons != Reasons::kNone && n + 1 > std::size(impacts)) {
    return internal_error("feature schema too large for reasons");
  }
  double raw;
  if (reasons == Reasons::kPath) {
    // One walk gives both the reasons and the margin.
    const double margin = model.forest.path_contributions(row, std::span<double>(impacts, n + 1));
    raw = 1.0 / (1.0 + std::exp(-margin));
  } else {
    raw = model.forest.predict(row);
    if (reasons == Reasons::kTreeShap) model.forest.shap_values(row, std::span<double>(impacts, n + 1));
  }
  if (!std::isfinite(raw)) return internal_error("lead model produced a non-finite score");
  ModelOutput out;
  out.probability = model.level_calibration.apply(calibrate(model.calibrator, model.calibration_shift, raw),
                                                  row[model.age_column]);
  if (reasons != Reasons::kNone) out.reasons = top_reasons(row, impacts, n);
  return out;
}

// Rule-based scorer (no model). A logistic score on a handful of signals that
// sales teams agree on, with fixed weights:
//   z = -2.6 + 0.7 ln(1+replies to outreach) + 0.4 ln(1+texts/calls/forms)
//       + 0.8 min(tour requests, 2) + 0.9 [appointment booked] + 0.6 [pre-approved]
//       + 0.3 [budget given] + 0.3 ln(1+distinct homes viewed)
//       - 0.4 ln(1 + days since last activity)
//   probability = 1 / (1 + e^-z); reasons = the three largest |terms|.
ModelOutput rule_based_score(const float* row) {
  auto at = [row](std::string_view name) {
    auto i = features::feature_index(name);
    float v = i ? row[*i] : 0.f;
    return std::isnan(v) ? 0.0 : double(v);
  };
  const std::size_t n = features::feature_count();
  std::vector<double> terms(n, 0.0);
  auto term = [&](std::string_view name, double value) {
    if (auto i = features::feature_index(name)) terms[*i] += value;
  };
  term("replies_to_outreach", 0.7 * std::log1p(at("replies_to_outreach")));
  term("inbound_contact_total", 0.4 * std::log1p(at("inbound_contact_total")));
  term("count_tour_request", 0.8 * std::min(at("count_tour_request"), 2.0));
  term("count_appointment_booked", at("count_appointment_booked") > 0 ? 0.9 : 0.0);
  term("pre_approved", at("pre_approved") > 0.5 ? 0.6 : 0.0);
  term("budget", at("budget") > 0 ? 0.3 : 0.0);
  term("distinct_homes", 0.3 * std::log1p(at("distinct_homes")));
  auto last = features::feature_index("hours_since_last_event");
  if (last && !std::isnan(row[*last])) term("hours_since_last_event", -0.4 * std::log1p(row[*last] / 24.0));
  double z = -2.6;
  for (double t : terms) z += t;
  ModelOutput out;
  out.probability = 1.0 / (1.0 + std::exp(-z));
  out.reasons = top_reasons(row, terms.data(), n);
  return out;
}

// confidence = evidence * (0.5 + 0.5 * certainty), halved for the fallback:
//   evidence  = 1 - exp(-(events_count + 1) / 8): a lead with no activity
//               rests on stated attributes only; ~20 events is full evidence;
//   certainty = min(1, |logit(p) - logit(base rate)| / 3): how far the model
//               moved away from the prior, in log-odds.
double score_confidence(double probability, double base_rate, std::uint32_t events_count, bool fallback) {
  auto logit = [](double p) {
    p = std::clamp(p, 1e-6, 1 - 1e-6);
    return std::log(p / (1 - p));
  };
  const double evidence = 1.0 - std::exp(-(double(events_count) + 1.0) / 8.0);
  const double certainty = std::min(1.0, std::fabs(logit(probability) - logit(base_rate)) / 3.0);
  double c = evidence * (0.5 + 0.5 * certainty);
  if (fallback) c *= 0.5;
  return std::clamp(c, 0.0, 1.0);
}

}  // namespace reai::scoring
