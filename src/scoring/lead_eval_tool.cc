// lead_eval: measures the lead model against a plain baseline on a time split
// of a CRM history, the way the holdout is measured (EVALUATION.md).
//
//   lead_eval [DATA_DIR] [--cutoff 2025-07-01] [--eval-end 2025-10-03]
//   lead_eval [DATA_DIR] --train-full MODEL_DIR      (training time on everything)
//
// DATA_DIR defaults to $REAI_SHARED_DATA/crm. Trains on contacts created
// before the cutoff with history before the cutoff only, replays contacts
// created in [cutoff, eval-end) through the engine (contacts + events, no
// stages) and prints AUC / Brier / ECE at 1, 24 and 168 hours for the model
// and for XGBoost per horizon on plain counts + stated attributes.
//
// Environment (experiments): REAI_LEAD_EVAL_MODEL_DIR (default
// /tmp/reai_lead_eval_model), REAI_LEAD_ISOTONIC=0|1, REAI_LEAD_LEVEL=0|1, REAI_LEAD_MAX_DEPTH,
// REAI_LEAD_ETA, REAI_LEAD_MIN_CHILD_WEIGHT, REAI_LEAD_EVAL_REUSE=1 (measure the
// model already in the directory), REAI_LEAD_EVAL_NO_BASELINE=1,
// REAI_LEAD_EVAL_DUMP=PREFIX (per-horizon CSVs of eval and pre-cutoff rows).
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <numeric>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/crm_history.h"
#include "core/tenant_id.h"
#include "core/time.h"
#include "features/features.h"
#include "models/models.h"
#include "scoring/lead_model.h"
#include "scoring/scoring.h"

using namespace reai;

namespace {

struct Metrics {
  double auc, brier, ece;
};

Metrics measure(const std::vector<double>& p, const std::vector<float>& y) {
  return {models::roc_auc(p, y), models::brier_score(p, y), models::expected_calibration_error(p, y, 10)};
}

std::string key(const std::string& t, const std::string& c) { return tenant_scoped_key(t, c); }

// Plain features: event counts as of the instant + stated attributes.
std::vector<std::size_t> plain_columns() {
  std::vector<std::size_t> cols;
  for (const auto& spec : features::feature_schema()) {
    std::string_view n = spec.name;
    if (n.starts_with("count_") || n == "budget" || n == "timeline_months" || n == "pre_approved" ||
        n == "beds_wanted" || n == "has_phone" || n == "has_email" || n == "area_wanted_given" ||
        n == "source_code" || n == "lead_type_code") {
      cols.push_back(*features::feature_index(n));
    }
  }
  return cols;
}

using EventsByContact = std::unordered_map<std::string, std::vector<const Event*>>;

// The contact's features as of `t`: its events up to `t` applied in order.
features::LeadFeatureState state_as_of(const Contact& c, const EventsByContact& by_contact, UnixSeconds t) {
  features::LeadFeatureState s;
  s.set_contact(c);
  auto it = by_contact.find(key(c.tenant_id, c.contact_id));
  if (it != by_contact.end()) {
    for (const Event* e : it->second) {
      if (e->ts <= t) s.apply(*e);
    }
  }
  return s;
}

UnixSeconds instant(const Contact& c, double hours) { return c.created_at + static_cast<UnixSeconds>(hours * 3600); }

models::DenseMatrix plain_matrix(const std::vector<const Contact*>& cs, const EventsByContact& by_contact,
                                 double hours) {
  const auto cols = plain_columns();
  models::DenseMatrix m(cs.size(), cols.size());
  std::vector<float> row(features::feature_count());
  for (std::size_t i = 0; i < cs.size(); ++i) {
    const UnixSeconds t = instant(*cs[i], hours);
    state_as_of(*cs[i], by_contact, t).write_features(t, nullptr, row.data());
    for (std::size_t j = 0; j < cols.size(); ++j) m.row(i)[j] = row[cols[j]];
  }
  return m;
}

struct EvalArgs {
  std::string data_dir;
  std::string cutoff_text = "2025-07-01";
  std::string eval_end_text = "2025-10-03";
  std::string full_out;  // --train-full
  UnixSeconds cutoff = 0, eval_end = 0;
};

// Exit code when the run should stop (help, usage error), else nullopt.
std::optional<int> parse_args(int argc, char** argv, EvalArgs* args) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--cutoff" && i + 1 < argc) {
      args->cutoff_text = argv[++i];
    } else if (a == "--eval-end" && i + 1 < argc) {
      args->eval_end_text = argv[++i];
    } else if (a == "--train-full" && i + 1 < argc) {
      args->full_out = argv[++i];
    } else if (a == "--help") {
      std::fprintf(stderr, "usage: lead_eval [DATA_DIR] [--cutoff DATE] [--eval-end DATE] [--train-full MODEL_DIR]\n");
      return 0;
    } else {
      args->data_dir = a;
    }
  }
  if (args->data_dir.empty()) {
    const char* shared = std::getenv("REAI_SHARED_DATA");
    if (!shared) {
      std::fprintf(stderr, "lead_eval: give DATA_DIR or set REAI_SHARED_DATA\n");
      return 2;
    }
    args->data_dir = std::string(shared) + "/crm";
  }
  auto cutoff = parse_iso8601(args->cutoff_text);
  auto eval_end = parse_iso8601(args->eval_end_text);
  if (!cutoff || !eval_end) {
    std::fprintf(stderr, "lead_eval: bad date\n");
    return 2;
  }
  args->cutoff = *cutoff;
  args->eval_end = *eval_end;
  return std::nullopt;
}

scoring::TrainLeadOptions options_from_environment() {
  scoring::TrainLeadOptions options;
  options.nthread = 2;
  if (const char* v = std::getenv("REAI_LEAD_ISOTONIC")) options.isotonic = std::atoi(v) != 0;
  if (const char* v = std::getenv("REAI_LEAD_LEVEL")) options.level_calibration = std::atoi(v) != 0;
  if (const char* v = std::getenv("REAI_LEAD_MAX_DEPTH")) options.max_depth = std::atoi(v);
  if (const char* v = std::getenv("REAI_LEAD_ETA")) options.eta = std::atof(v);
  if (const char* v = std::getenv("REAI_LEAD_MIN_CHILD_WEIGHT")) options.min_child_weight = std::atof(v);
  return options;
}

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && std::atoi(v) != 0;
}

// The history cut at the cutoff: training sees contacts created before it and
// rows before it; evaluation replays contacts created in [cutoff, eval_end)
// with all their events. Labels come from every signed row (the truth).
struct EvalSplit {
  CrmHistory train;  // the rows before the cutoff
  std::vector<Contact> eval_c;
  std::vector<Event> eval_e;
  std::unordered_map<std::string, UnixSeconds> signed_at;  // first signing per contact

  float label_of(const Contact& c) const {
    auto it = signed_at.find(key(c.tenant_id, c.contact_id));
    return it != signed_at.end() && it->second <= c.created_at + kConversionWindowSeconds ? 1.f : 0.f;
  }
};

EvalSplit split_history(const CrmHistory& crm, UnixSeconds cutoff, UnixSeconds eval_end) {
  EvalSplit split;
  split.train = truncate_history(crm, cutoff);
  for (const auto& c : crm.contacts)
    if (c.created_at >= cutoff && c.created_at < eval_end) split.eval_c.push_back(c);
  std::unordered_map<std::string, bool> is_eval;
  for (const auto& c : split.eval_c) is_eval[key(c.tenant_id, c.contact_id)] = true;
  for (const auto& e : crm.events)
    if (is_eval.count(key(e.tenant_id, e.contact_id))) split.eval_e.push_back(e);
  for (const auto& s : crm.stages) {
    if (s.stage == Stage::kSigned) {
      auto [it, inserted] = split.signed_at.try_emplace(key(s.tenant_id, s.contact_id), s.ts);
      if (!inserted) it->second = std::min(it->second, s.ts);
    }
  }
  return split;
}

// The baseline's contacts: training ones with a complete window, the last 20%
// by created_at held out for early stopping; and the evaluation contacts.
struct BaselineSets {
  std::vector<const Contact*> train, validation, eval;
  std::vector<float> train_y, validation_y, eval_y;
};

BaselineSets baseline_sets(const EvalSplit& split, UnixSeconds cutoff) {
  std::vector<const Contact*> complete;
  for (const auto& c : split.train.contacts) {
    if (c.created_at + kConversionWindowSeconds <= cutoff) complete.push_back(&c);
  }
  std::sort(complete.begin(), complete.end(), [](auto* a, auto* b) { return a->created_at < b->created_at; });
  const std::size_t cut = complete.size() * 8 / 10;
  BaselineSets sets;
  sets.train.assign(complete.begin(), complete.begin() + cut);
  sets.validation.assign(complete.begin() + cut, complete.end());
  for (const auto& c : split.eval_c) sets.eval.push_back(&c);
  for (auto* c : sets.train) sets.train_y.push_back(split.label_of(*c));
  for (auto* c : sets.validation) sets.validation_y.push_back(split.label_of(*c));
  for (auto* c : sets.eval) sets.eval_y.push_back(split.label_of(*c));
  return sets;
}

// XGBoost at one horizon on plain as-of counts + stated attributes; NaNs when
// skipped (REAI_LEAD_EVAL_NO_BASELINE) or when training fails.
Metrics baseline_metrics(const BaselineSets& sets, const EventsByContact& by_contact, double hours) {
  if (std::getenv("REAI_LEAD_EVAL_NO_BASELINE") != nullptr) return {NAN, NAN, NAN};
  models::TrainParams params;
  params.max_depth = 5;
  params.eta = 0.05;
  params.num_rounds = 600;
  params.early_stopping_rounds = 40;
  params.nthread = 2;
  params.eval_metric = "logloss";
  params.extra = {{"tree_method", "hist"}};
  auto xt = plain_matrix(sets.train, by_contact, hours);
  auto xv = plain_matrix(sets.validation, by_contact, hours);
  auto xe = plain_matrix(sets.eval, by_contact, hours);
  auto booster = models::Booster::train(xt, sets.train_y, {}, &xv, sets.validation_y, params);
  if (!booster) return {NAN, NAN, NAN};
  auto pred = booster->predict(xe);
  if (!pred) return {NAN, NAN, NAN};
  return measure(std::vector<double>(pred->begin(), pred->end()), sets.eval_y);
}

// The model's raw (uncalibrated) output at `t` = created_at + hours.
double raw_output(const scoring::LeadModel& model, const Contact& c, const EventsByContact& by_contact, double hours,
                  std::vector<float>* row) {
  const UnixSeconds t = instant(c, hours);
  state_as_of(c, by_contact, t).write_features(t, &model.track_records, row->data());
  return model.forest.predict(row->data());
}

// Offline analysis (REAI_LEAD_EVAL_DUMP): eval rows, then pre-cutoff contacts
// whose instant precedes the cutoff (label as known at the end of the data).
void dump_rows(const std::string& path, const EvalSplit& split, const BaselineSets& sets,
               const scoring::LeadModel& model, const EventsByContact& by_contact, double hours, UnixSeconds cutoff,
               const std::vector<double>& p, const std::vector<double>& raw) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) return;
  std::fprintf(f, "set,created,tenant,label,p,raw,signed_days\n");
  for (std::size_t i = 0; i < sets.eval.size(); ++i) {
    std::fprintf(f, "eval,%lld,%s,%.0f,%.6f,%.6f,\n", (long long)sets.eval[i]->created_at,
                 sets.eval[i]->tenant_id.c_str(), sets.eval_y[i], p[i], raw[i]);
  }
  std::vector<float> row(features::feature_count());
  for (const auto& c : split.train.contacts) {
    if (instant(c, hours) >= cutoff) continue;
    const double output = raw_output(model, c, by_contact, hours, &row);
    auto sit = split.signed_at.find(key(c.tenant_id, c.contact_id));
    std::string sd;
    if (sit != split.signed_at.end()) sd = std::to_string(double(sit->second - c.created_at) / 86400.0);
    std::fprintf(f, "recent,%lld,%s,%.0f,,%.6f,%s\n", (long long)c.created_at, c.tenant_id.c_str(), split.label_of(c),
                 output, sd.c_str());
  }
  std::fclose(f);
}

double mean(const std::vector<double>& v) { return std::accumulate(v.begin(), v.end(), 0.0) / double(v.size()); }

// The three CSVs of DATA_DIR; nullopt (after printing why) when one does not
// load.
std::optional<CrmHistory> load_crm(const std::string& data_dir) {
  auto history = load_crm_history_dir(data_dir);
  if (!history) {
    std::fprintf(stderr, "lead_eval: %s\n", history.status().to_string().c_str());
    return std::nullopt;
  }
  return std::move(*history);
}

// --train-full: training time on the whole history, no evaluation.
int train_full(const CrmHistory& crm, const std::string& model_dir, const scoring::TrainLeadOptions& options) {
  auto report = scoring::train_lead_model(crm.contacts, crm.events, crm.stages, model_dir, options);
  if (!report) {
    std::fprintf(stderr, "lead_eval: %s\n", report.status().to_string().c_str());
    return 1;
  }
  std::printf("full training: %.1f s, %zu examples\n", report->seconds,
              report->train_examples + report->validation_examples);
  return 0;
}

// REAI_LEAD_EVAL_REUSE=1 measures the model already in the directory
// (trained by an earlier run on the same cutoff) instead of retraining.
Result<scoring::TrainLeadReport> train_or_reuse(const EvalSplit& split, const std::string& model_dir,
                                                const scoring::TrainLeadOptions& options) {
  if (env_flag("REAI_LEAD_EVAL_REUSE")) return scoring::TrainLeadReport{};
  return scoring::train_lead_model(split.train.contacts, split.train.events, split.train.stages, model_dir, options);
}

EventsByContact events_by_contact(const EvalSplit& split) {
  EventsByContact by_contact;
  for (const auto& e : split.train.events) by_contact[key(e.tenant_id, e.contact_id)].push_back(&e);
  for (const auto& e : split.eval_e) by_contact[key(e.tenant_id, e.contact_id)].push_back(&e);
  return by_contact;
}

void print_run_header(const EvalArgs& args, const BaselineSets& sets, const scoring::TrainLeadReport& report,
                      double replay_s) {
  std::printf("\nlead_eval: train contacts created < %s (history < cutoff), eval contacts created in [%s, %s): n=%zu, positives=%.0f\n",
              args.cutoff_text.c_str(), args.cutoff_text.c_str(), args.eval_end_text.c_str(), sets.eval.size(),
              std::accumulate(sets.eval_y.begin(), sets.eval_y.end(), 0.0));
  std::printf("model %s: %zu train + %zu validation examples, trained in %.1f s; replay %.1f s\n\n",
              report.version.c_str(), report.train_examples, report.validation_examples, report.seconds, replay_s);
}

// What one horizon's line compares: the served (calibrated) probabilities
// from the replay, and the model's raw output on the same contacts.
struct HorizonInputs {
  double hours = 0;
  std::vector<double> p, raw;
};

void print_horizon(const EvalArgs& args, const EvalSplit& split, const BaselineSets& sets,
                   const scoring::LeadModel& model, const EventsByContact& by_contact, const HorizonInputs& in) {
  const Metrics mine = measure(in.p, sets.eval_y);
  const Metrics base = baseline_metrics(sets, by_contact, in.hours);
  const Metrics unc = measure(in.raw, sets.eval_y);
  if (const char* dump = std::getenv("REAI_LEAD_EVAL_DUMP")) {
    dump_rows(std::string(dump) + "_" + std::to_string(int(in.hours)) + ".csv", split, sets, model, by_contact,
              in.hours, args.cutoff, in.p, in.raw);
  }
  std::vector<double> observed(sets.eval_y.begin(), sets.eval_y.end());
  std::printf("         mean predicted %.4f (model) %.4f (raw), observed %.4f\n", mean(in.p), mean(in.raw),
              mean(observed));
  std::printf("%6.0f h | %.4f / %.4f / %.4f    | %.4f / %.4f / %.4f    | %.4f / %.4f / %.4f\n", in.hours, mine.auc,
              mine.brier, mine.ece, base.auc, base.brier, base.ece, unc.auc, unc.brier, unc.ece);
}

// Trains on the split's past, replays the evaluation contacts and prints
// one line of metrics per horizon.
int evaluate(const EvalArgs& args, const CrmHistory& crm, const scoring::TrainLeadOptions& options) {
  const EvalSplit split = split_history(crm, args.cutoff, args.eval_end);
  const char* model_out = std::getenv("REAI_LEAD_EVAL_MODEL_DIR");
  const std::string model_dir = model_out ? model_out : "/tmp/reai_lead_eval_model";
  Result<scoring::TrainLeadReport> report = train_or_reuse(split, model_dir, options);
  if (!report) {
    std::fprintf(stderr, "lead_eval: %s\n", report.status().to_string().c_str());
    return 1;
  }
  const std::vector<double> hours = {1, 24, 168};
  const auto replay_start = std::chrono::steady_clock::now();
  auto rows = scoring::replay_scores(model_dir, split.eval_c, split.eval_e, {}, hours);
  if (!rows) {
    std::fprintf(stderr, "lead_eval: %s\n", rows.status().to_string().c_str());
    return 1;
  }
  const double replay_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - replay_start).count();

  const EventsByContact by_contact = events_by_contact(split);
  const BaselineSets sets = baseline_sets(split, args.cutoff);
  print_run_header(args, sets, *report, replay_s);
  auto model = scoring::load_lead_model(model_dir);
  if (!model) return 1;
  std::printf("%-8s | %-26s | %-26s | %-26s\n", "horizon", "reai model AUC/Brier/ECE", "baseline AUC/Brier/ECE",
              "reai uncalibrated");
  std::vector<float> row(features::feature_count());
  for (std::size_t h = 0; h < hours.size(); ++h) {
    HorizonInputs in;
    in.hours = hours[h];
    for (std::size_t i = 0; i < split.eval_c.size(); ++i) in.p.push_back((*rows)[i * hours.size() + h].probability);
    for (const Contact* c : sets.eval) in.raw.push_back(raw_output(**model, *c, by_contact, hours[h], &row));
    print_horizon(args, split, sets, **model, by_contact, in);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  EvalArgs args;
  if (auto exit_code = parse_args(argc, argv, &args)) return *exit_code;
  const std::optional<CrmHistory> crm = load_crm(args.data_dir);
  if (!crm) return 2;
  const scoring::TrainLeadOptions options = options_from_environment();
  if (!args.full_out.empty()) return train_full(*crm, args.full_out, options);
  return evaluate(args, *crm, options);
}
