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
#include <string>
#include <unordered_map>

#include "core/crm_csv.h"
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

models::DenseMatrix plain_matrix(const std::vector<const Contact*>& cs,
                                 const std::unordered_map<std::string, std::vector<const Event*>>& by_contact,
                                 double hours) {
  const auto cols = plain_columns();
  models::DenseMatrix m(cs.size(), cols.size());
  std::vector<float> row(features::feature_count());
  for (std::size_t i = 0; i < cs.size(); ++i) {
    features::LeadFeatureState s;
    s.set_contact(*cs[i]);
    const UnixSeconds t = cs[i]->created_at + static_cast<UnixSeconds>(hours * 3600);
    auto it = by_contact.find(key(cs[i]->tenant_id, cs[i]->contact_id));
    if (it != by_contact.end()) {
      for (const Event* e : it->second) {
        if (e->ts <= t) s.apply(*e);
      }
    }
    s.write_features(t, nullptr, row.data());
    for (std::size_t j = 0; j < cols.size(); ++j) m.row(i)[j] = row[cols[j]];
  }
  return m;
}

}  // namespace

int main(int argc, char** argv) {
  std::string data_dir;
  std::string cutoff_text = "2025-07-01", eval_end_text = "2025-10-03", full_out;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--cutoff" && i + 1 < argc) {
      cutoff_text = argv[++i];
    } else if (a == "--eval-end" && i + 1 < argc) {
      eval_end_text = argv[++i];
    } else if (a == "--train-full" && i + 1 < argc) {
      full_out = argv[++i];
    } else if (a == "--help") {
      std::fprintf(stderr, "usage: lead_eval [DATA_DIR] [--cutoff DATE] [--eval-end DATE] [--train-full MODEL_DIR]\n");
      return 0;
    } else {
      data_dir = a;
    }
  }
  if (data_dir.empty()) {
    const char* shared = std::getenv("REAI_SHARED_DATA");
    if (!shared) {
      std::fprintf(stderr, "lead_eval: give DATA_DIR or set REAI_SHARED_DATA\n");
      return 2;
    }
    data_dir = std::string(shared) + "/crm";
  }
  auto cutoff = parse_iso8601(cutoff_text);
  auto eval_end = parse_iso8601(eval_end_text);
  if (!cutoff || !eval_end) {
    std::fprintf(stderr, "lead_eval: bad date\n");
    return 2;
  }
  CsvLoadOptions load;
  auto contacts = load_contacts_csv(data_dir + "/contacts.csv", load, nullptr);
  auto events = load_events_csv(data_dir + "/events.csv", load, nullptr);
  auto stages = load_stages_csv(data_dir + "/opportunity_stages.csv", load, nullptr);
  if (!contacts || !events || !stages) {
    std::fprintf(stderr, "lead_eval: %s %s %s\n", contacts.status().to_string().c_str(),
                 events.status().to_string().c_str(), stages.status().to_string().c_str());
    return 2;
  }
  scoring::TrainLeadOptions options;
  options.nthread = 2;
  if (const char* v = std::getenv("REAI_LEAD_ISOTONIC")) options.isotonic = std::atoi(v) != 0;
  if (const char* v = std::getenv("REAI_LEAD_LEVEL")) options.level_calibration = std::atoi(v) != 0;
  if (const char* v = std::getenv("REAI_LEAD_MAX_DEPTH")) options.max_depth = std::atoi(v);
  if (const char* v = std::getenv("REAI_LEAD_ETA")) options.eta = std::atof(v);
  if (const char* v = std::getenv("REAI_LEAD_MIN_CHILD_WEIGHT")) options.min_child_weight = std::atof(v);
  const char* model_out = std::getenv("REAI_LEAD_EVAL_MODEL_DIR");
  if (!full_out.empty()) {
    auto report = scoring::train_lead_model(*contacts, *events, *stages, full_out, options);
    if (!report) {
      std::fprintf(stderr, "lead_eval: %s\n", report.status().to_string().c_str());
      return 1;
    }
    std::printf("full training: %.1f s, %zu examples\n", report->seconds,
                report->train_examples + report->validation_examples);
    return 0;
  }

  std::vector<Contact> train_c, eval_c;
  for (const auto& c : *contacts) {
    if (c.created_at < *cutoff) train_c.push_back(c);
    else if (c.created_at < *eval_end) eval_c.push_back(c);
  }
  std::vector<Event> train_e, eval_e;
  std::unordered_map<std::string, bool> is_eval;
  for (const auto& c : eval_c) is_eval[key(c.tenant_id, c.contact_id)] = true;
  for (const auto& e : *events) {
    if (e.ts < *cutoff) train_e.push_back(e);
    if (is_eval.count(key(e.tenant_id, e.contact_id))) eval_e.push_back(e);
  }
  std::vector<OpportunityStage> train_s;
  std::unordered_map<std::string, UnixSeconds> signed_at;
  for (const auto& s : *stages) {
    if (s.ts < *cutoff) train_s.push_back(s);
    if (s.stage == Stage::kSigned) {
      auto [it, inserted] = signed_at.try_emplace(key(s.tenant_id, s.contact_id), s.ts);
      if (!inserted) it->second = std::min(it->second, s.ts);
    }
  }
  auto label_of = [&](const Contact& c) {
    auto it = signed_at.find(key(c.tenant_id, c.contact_id));
    return it != signed_at.end() && it->second <= c.created_at + kConversionWindowSeconds ? 1.f : 0.f;
  };
  const std::string model_dir = model_out ? model_out : "/tmp/reai_lead_eval_model";
  // REAI_LEAD_EVAL_REUSE=1 measures the model already in the directory
  // (trained by an earlier run on the same cutoff) instead of retraining.
  const bool reuse = std::getenv("REAI_LEAD_EVAL_REUSE") && std::atoi(std::getenv("REAI_LEAD_EVAL_REUSE")) != 0;
  Result<scoring::TrainLeadReport> report =
      reuse ? Result<scoring::TrainLeadReport>(scoring::TrainLeadReport{})
            : scoring::train_lead_model(train_c, train_e, train_s, model_dir, options);
  if (!report) {
    std::fprintf(stderr, "lead_eval: %s\n", report.status().to_string().c_str());
    return 1;
  }
  const std::vector<double> hours = {1, 24, 168};
  const auto replay_start = std::chrono::steady_clock::now();
  auto rows = scoring::replay_scores(model_dir, eval_c, eval_e, {}, hours);
  if (!rows) {
    std::fprintf(stderr, "lead_eval: %s\n", rows.status().to_string().c_str());
    return 1;
  }
  const double replay_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - replay_start).count();

  // Baseline: XGBoost per horizon on plain as-of counts + stated attributes,
  // trained on the same contacts (complete windows), early stopping on the
  // last 20% by created_at.
  std::unordered_map<std::string, std::vector<const Event*>> by_contact;
  for (const auto& e : train_e) by_contact[key(e.tenant_id, e.contact_id)].push_back(&e);
  for (const auto& e : eval_e) by_contact[key(e.tenant_id, e.contact_id)].push_back(&e);
  const UnixSeconds train_end = (*cutoff);
  std::vector<const Contact*> base_train;
  for (const auto& c : train_c) {
    if (c.created_at + kConversionWindowSeconds <= train_end) base_train.push_back(&c);
  }
  std::sort(base_train.begin(), base_train.end(), [](auto* a, auto* b) { return a->created_at < b->created_at; });
  const std::size_t split = base_train.size() * 8 / 10;
  std::vector<const Contact*> bt(base_train.begin(), base_train.begin() + split), bv(base_train.begin() + split, base_train.end());
  std::vector<const Contact*> ev;
  for (const auto& c : eval_c) ev.push_back(&c);
  std::vector<float> bty, bvy, evy;
  for (auto* c : bt) bty.push_back(label_of(*c));
  for (auto* c : bv) bvy.push_back(label_of(*c));
  for (auto* c : ev) evy.push_back(label_of(*c));

  std::printf("\nlead_eval: train contacts created < %s (history < cutoff), eval contacts created in [%s, %s): n=%zu, positives=%.0f\n",
              cutoff_text.c_str(), cutoff_text.c_str(), eval_end_text.c_str(), ev.size(),
              std::accumulate(evy.begin(), evy.end(), 0.0));
  std::printf("model %s: %zu train + %zu validation examples, trained in %.1f s; replay %.1f s\n\n",
              report->version.c_str(), report->train_examples, report->validation_examples, report->seconds, replay_s);
  auto model = scoring::load_lead_model(model_dir);
  if (!model) return 1;
  std::printf("%-8s | %-26s | %-26s | %-26s\n", "horizon", "reai model AUC/Brier/ECE", "baseline AUC/Brier/ECE",
              "reai uncalibrated");
  for (std::size_t h = 0; h < hours.size(); ++h) {
    std::vector<double> p;
    for (std::size_t i = 0; i < eval_c.size(); ++i) p.push_back((*rows)[i * hours.size() + h].probability);
    Metrics mine = measure(p, evy);
    models::TrainParams params;
    params.max_depth = 5;
    params.eta = 0.05;
    params.num_rounds = 600;
    params.early_stopping_rounds = 40;
    params.nthread = 2;
    params.eval_metric = "logloss";
    params.extra = {{"tree_method", "hist"}};
    auto xt = plain_matrix(bt, by_contact, hours[h]);
    auto xv = plain_matrix(bv, by_contact, hours[h]);
    auto xe = plain_matrix(ev, by_contact, hours[h]);
    const bool skip_baseline = std::getenv("REAI_LEAD_EVAL_NO_BASELINE") != nullptr;
    auto booster = skip_baseline ? Result<models::Booster>(invalid_argument("skipped"))
                                 : models::Booster::train(xt, bty, {}, &xv, bvy, params);
    Metrics base{NAN, NAN, NAN};
    if (booster) {
      auto pred = booster->predict(xe);
      if (pred) {
        std::vector<double> pb(pred->begin(), pred->end());
        base = measure(pb, evy);
      }
    }
    // The model's raw (uncalibrated) output on the same rows.
    std::vector<double> raw;
    std::vector<float> row(features::feature_count());
    for (const Contact* c : ev) {
      features::LeadFeatureState s;
      s.set_contact(*c);
      const UnixSeconds t = c->created_at + static_cast<UnixSeconds>(hours[h] * 3600);
      auto it = by_contact.find(key(c->tenant_id, c->contact_id));
      if (it != by_contact.end()) {
        for (const Event* e : it->second) {
          if (e->ts <= t) s.apply(*e);
        }
      }
      s.write_features(t, &(*model)->track_records, row.data());
      raw.push_back((*model)->forest.predict(row.data()));
    }
    Metrics unc = measure(raw, evy);
    if (const char* dump = std::getenv("REAI_LEAD_EVAL_DUMP")) {
      // Offline analysis: eval rows, then pre-cutoff contacts whose instant
      // precedes the cutoff (label as known at the end of the data).
      std::FILE* f = std::fopen((std::string(dump) + "_" + std::to_string(int(hours[h])) + ".csv").c_str(), "w");
      if (f) {
        std::fprintf(f, "set,created,tenant,label,p,raw,signed_days\n");
        for (std::size_t i = 0; i < ev.size(); ++i) {
          std::fprintf(f, "eval,%lld,%s,%.0f,%.6f,%.6f,\n", (long long)ev[i]->created_at, ev[i]->tenant_id.c_str(),
                       evy[i], p[i], raw[i]);
        }
        for (const auto& c : train_c) {
          const UnixSeconds t = c.created_at + static_cast<UnixSeconds>(hours[h] * 3600);
          if (t >= *cutoff) continue;
          features::LeadFeatureState s;
          s.set_contact(c);
          auto it = by_contact.find(key(c.tenant_id, c.contact_id));
          if (it != by_contact.end()) {
            for (const Event* e : it->second) {
              if (e->ts <= t) s.apply(*e);
            }
          }
          s.write_features(t, &(*model)->track_records, row.data());
          auto sit = signed_at.find(key(c.tenant_id, c.contact_id));
          std::string sd;
          if (sit != signed_at.end()) sd = std::to_string(double(sit->second - c.created_at) / 86400.0);
          std::fprintf(f, "recent,%lld,%s,%.0f,,%.6f,%s\n", (long long)c.created_at, c.tenant_id.c_str(), label_of(c),
                       (*model)->forest.predict(row.data()), sd.c_str());
        }
        std::fclose(f);
      }
    }
    std::printf("         mean predicted %.4f (model) %.4f (raw), observed %.4f\n",
                std::accumulate(p.begin(), p.end(), 0.0) / double(p.size()),
                std::accumulate(raw.begin(), raw.end(), 0.0) / double(raw.size()),
                std::accumulate(evy.begin(), evy.end(), 0.0) / double(evy.size()));
    std::printf("%6.0f h | %.4f / %.4f / %.4f    | %.4f / %.4f / %.4f    | %.4f / %.4f / %.4f\n", hours[h], mine.auc,
                mine.brier, mine.ece, base.auc, base.brier, base.ece, unc.auc, unc.brier, unc.ece);
  }
  return 0;
}
