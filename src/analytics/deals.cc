// DealModel: example extraction over as-of points, training, prediction and
// persistence of the deal closure / timeline model.
#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>
#include <thread>
#include <tuple>

#include "analytics/deal_history.h"
#include "analytics/deals.h"
#include "core/time.h"
#include "models/models.h"

namespace reai::analytics {

using detail::DealHistory;
using detail::kDay;
using detail::Opportunity;

namespace {

constexpr int kStages = 4;  // signed, active, offer, under_contract
constexpr const char* kMetadataFile = "deal_model.json";
constexpr const char* kClassifierFile = "classifier.json";
constexpr const char* kDaysFile = "days.json";
// Conformal quantiles of the 80% day interval. Nominally 8%/92%: the
// calibration deals that closed are censored at the cutoff, which hides the
// slowest closers, and out-of-time coverage at 10%/90% measured 75-76%.
constexpr double kLowerQ = 0.08;
constexpr double kUpperQ = 0.92;
// A calibration AUC below this ranks deals about as well as a coin: the
// model is degenerate.
constexpr double kChanceAuc = 0.55;

struct Example {
  std::size_t point = 0;  // index of the as-of point
  std::size_t opportunity = 0;  // index into the history's opportunities
  int stage = 0;
  DealOutcome outcome = DealOutcome::kOpen;
  double days = 0;
};

struct ExampleSet {
  models::DenseMatrix x;
  std::vector<Example> examples;
  std::vector<UnixSeconds> points;
};

UnixSeconds effective_cutoff(const CrmHistory& history, UnixSeconds cutoff) {
  if (cutoff != 0) return cutoff;
  UnixSeconds last = 0;
  for (const auto& s : history.stages) last = std::max(last, s.ts);
  for (const auto& e : history.events) last = std::max(last, e.ts);
  return last + 1;
}

int threads(int requested) {
  if (requested > 0) return requested;
  return static_cast<int>(std::max(1u, std::min(2u, std::thread::hardware_concurrency())));
}

models::DenseMatrix select_columns(const models::DenseMatrix& x, const std::vector<std::size_t>& columns) {
  models::DenseMatrix out(x.rows, columns.size());
  for (std::size_t r = 0; r < x.rows; ++r)
    for (std::size_t c = 0; c < columns.size(); ++c) out.row(r)[c] = x.row(r)[columns[c]];
  return out;
}

// Examples at every as-of point from the first signing + step to
// cutoff - label horizon, labelled with what happened before the cutoff.
Result<ExampleSet> build_examples(const CrmHistory& history, const DealTrainOptions& options, UnixSeconds cutoff) {
  if (history.stages.empty()) return invalid_argument("deal training: no opportunity stage rows");
  if (options.step_days < 1) return invalid_argument("deal training: step_days must be >= 1");
  const CrmHistory visible = truncate_history(history, cutoff);
  if (visible.stages.empty()) return invalid_argument("deal training: no stage rows before the cutoff");
  const DealHistory index(visible);
  ExampleSet set;
  set.x = models::DenseMatrix(0, deal_feature_names().size());
  const UnixSeconds step = static_cast<UnixSeconds>(options.step_days) * 86400;
  const UnixSeconds last_point = cutoff - static_cast<UnixSeconds>(options.label_horizon_days) * 86400;
  for (UnixSeconds t = (index.first_ts() / 86400 + 1) * 86400; t <= last_point; t += step) {
    const std::size_t point = set.points.size();
    set.points.push_back(t);
    for (std::size_t k = 0; k < index.opportunities().size(); ++k) {
      const Opportunity& o = index.opportunities()[k];
      if (!o.open_at(t)) continue;
      Example ex;
      ex.point = point;
      ex.opportunity = k;
      ex.stage = static_cast<int>(o.rows[static_cast<std::size_t>(o.row_at(t))].second);
      if (auto res = o.resolution_after(t)) {
        ex.outcome = res->second == Stage::kClosed ? DealOutcome::kClosed : DealOutcome::kLost;
        ex.days = (res->first - t) / kDay;
      } else {
        ex.days = (cutoff - t) / kDay;
      }
      set.x.append_row(detail::deal_features(index, o, t));
      set.examples.push_back(ex);
    }
  }
  if (set.points.empty())
    return invalid_argument("deal training: history before the cutoff is shorter than the label horizon (" +
                            std::to_string(options.label_horizon_days) + " days)");
  return set;
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(pos));
  const auto hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

std::uint64_t fnv1a(const std::string& text) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// The feature columns the model uses: the plain set, or every feature but
// the dropped ones.
std::vector<std::size_t> model_columns(const DealTrainOptions& options, DealFeatureSet feature_set) {
  if (feature_set == DealFeatureSet::kPlain) return detail::plain_feature_columns();
  std::vector<std::size_t> all;
  for (std::size_t i = 0; i < deal_feature_names().size(); ++i)
    if (std::find(options.drop_features.begin(), options.drop_features.end(), deal_feature_names()[i]) ==
        options.drop_features.end())
      all.push_back(i);
  return all;
}

// Example indices of the fitting points (the earlier ones) and of the
// calibration points (the last calibration_share of them).
struct RowSplit {
  std::vector<std::size_t> fit, cal;
};

RowSplit split_by_point(const ExampleSet& set, double calibration_share) {
  const std::size_t first_calibration_point =
      static_cast<std::size_t>(std::floor(static_cast<double>(set.points.size()) * (1.0 - calibration_share)));
  RowSplit split;
  for (std::size_t i = 0; i < set.examples.size(); ++i)
    (set.examples[i].point < first_calibration_point ? split.fit : split.cal).push_back(i);
  return split;
}

// Rows of x with their labels (closed = 1) and days-to-close bounds
// (right-censored unless closed), and which examples they are.
struct GatheredRows {
  models::DenseMatrix x;
  std::vector<float> label, lower, upper;
  std::vector<std::size_t> kept;
};

// The examples `rows` of x; with resolved_only, not the open (censored) ones.
GatheredRows gather_rows(const ExampleSet& set, const models::DenseMatrix& x, const std::vector<std::size_t>& rows,
                         bool resolved_only) {
  GatheredRows g{models::DenseMatrix(0, x.cols), {}, {}, {}, {}};
  for (std::size_t i : rows) {
    const Example& e = set.examples[i];
    if (resolved_only && e.outcome == DealOutcome::kOpen) continue;
    g.x.append_row({x.row(i), x.cols});
    g.label.push_back(e.outcome == DealOutcome::kClosed ? 1.f : 0.f);
    g.lower.push_back(static_cast<float>(std::max(e.days, 0.01)));
    g.upper.push_back(e.outcome == DealOutcome::kClosed ? g.lower.back() : std::numeric_limits<float>::infinity());
    g.kept.push_back(i);
  }
  return g;
}

// Rows for the days model: closed (observed) and still open
// (right-censored at the cutoff) examples; lost deals never close.
GatheredRows days_rows(const ExampleSet& set, const models::DenseMatrix& x, const std::vector<std::size_t>& rows) {
  std::vector<std::size_t> kept;
  for (std::size_t i : rows)
    if (set.examples[i].outcome != DealOutcome::kLost) kept.push_back(i);
  return gather_rows(set, x, kept, false);
}

Status check_enough_resolved_deals(const std::vector<float>& fit_y, const std::vector<float>& cal_y) {
  std::size_t positives = 0;
  for (float y : fit_y) positives += y > 0.5f ? 1 : 0;
  if (positives < 20 || fit_y.size() - positives < 20 || cal_y.size() < 20)
    return invalid_argument("deal training: too few resolved deals (" + std::to_string(positives) + " closed, " +
                            std::to_string(fit_y.size() - positives) + " lost, " + std::to_string(cal_y.size()) +
                            " calibration examples); need a longer history");
  return Status::ok();
}

models::TrainParams classifier_params(const DealTrainOptions& options) {
  models::TrainParams clf;
  clf.objective = "binary:logistic";
  clf.eval_metric = "logloss";
  clf.max_depth = options.max_depth;
  clf.eta = options.eta;
  clf.num_rounds = 800;
  clf.early_stopping_rounds = 60;
  clf.min_child_weight = options.min_child_weight;
  clf.subsample = 0.8;
  clf.colsample_bytree = options.colsample_bytree;
  clf.nthread = threads(options.nthread);
  clf.seed = options.seed;
  return clf;
}

// The days model's parameters: the classifier's trees with the AFT loss.
models::TrainParams days_params(const models::TrainParams& clf) {
  models::TrainParams aft = clf;
  aft.objective = "survival:aft";
  aft.eval_metric = "aft-nloglik";
  aft.extra = {{"aft_loss_distribution", "normal"}, {"aft_loss_distribution_scale", "0.8"}};
  return aft;
}

// Conformal log-residual quantiles of days (q10, q50, q90) per stage.
using LogResidualQuantiles = std::array<std::array<double, 3>, kStages>;

// Quantiles of log(actual / predicted) on calibration deals that closed,
// per stage (pooled when a stage has too few).
Result<LogResidualQuantiles> log_residual_quantiles(const ExampleSet& set, const std::vector<std::size_t>& dcal_kept,
                                                   const std::vector<float>& dcal_pred) {
  std::array<std::vector<double>, kStages> residuals;
  std::vector<double> pooled;
  for (std::size_t k = 0; k < dcal_kept.size(); ++k) {
    const Example& e = set.examples[dcal_kept[k]];
    if (e.outcome != DealOutcome::kClosed) continue;
    const double r = std::log(std::max(e.days, 0.5)) - std::log(std::max<double>(dcal_pred[k], 0.5));
    residuals[static_cast<std::size_t>(e.stage)].push_back(r);
    pooled.push_back(r);
  }
  if (pooled.size() < 20) return invalid_argument("deal training: fewer than 20 closed calibration deals");
  LogResidualQuantiles q{};
  for (int s = 0; s < kStages; ++s) {
    const auto& own = residuals[static_cast<std::size_t>(s)];
    const auto& r = own.size() >= 40 ? own : pooled;
    q[static_cast<std::size_t>(s)] = {quantile(r, kLowerQ), quantile(r, 0.5), quantile(r, kUpperQ)};
  }
  return q;
}

// Days MAE and 80% interval coverage on the calibration deals that closed.
void report_days_accuracy(const ExampleSet& set, const std::vector<std::size_t>& dcal_kept,
                          const std::vector<float>& dcal_pred, const LogResidualQuantiles& log_residual_q,
                          DealTrainReport& report) {
  double abs_err = 0, covered = 0, closed = 0;
  for (std::size_t k = 0; k < dcal_kept.size(); ++k) {
    const Example& e = set.examples[dcal_kept[k]];
    if (e.outcome != DealOutcome::kClosed) continue;
    const auto& q = log_residual_q[static_cast<std::size_t>(e.stage)];
    const double base = dcal_pred[k];
    abs_err += std::abs(base * std::exp(q[1]) - e.days);
    covered += (e.days >= base * std::exp(q[0]) && e.days <= base * std::exp(q[2])) ? 1 : 0;
    closed += 1;
  }
  report.calibration_days_mae = abs_err / closed;
  report.calibration_coverage80 = covered / closed;
}

// The stage prior a degenerate model answers with: per stage, the closing
// rate of the resolved examples (Laplace-smoothed, as StagePrior) and the
// days quantiles of the closed ones (pooled when a stage has fewer than 20).
struct StagePriorRow {
  double p_close = 0;
  std::array<double, 3> days{};  // kLowerQ, median, kUpperQ
};
using StagePriorTable = std::array<StagePriorRow, kStages>;

StagePriorTable stage_prior_of(const ExampleSet& set) {
  double closed[kStages] = {0, 0, 0, 0}, resolved[kStages] = {0, 0, 0, 0};
  std::array<std::vector<double>, kStages> days;
  std::vector<double> pooled;
  for (const Example& e : set.examples) {
    if (e.outcome == DealOutcome::kOpen || e.stage < 0 || e.stage >= kStages) continue;
    const auto s = static_cast<std::size_t>(e.stage);
    resolved[s] += 1;
    if (e.outcome != DealOutcome::kClosed) continue;
    closed[s] += 1;
    days[s].push_back(e.days);
    pooled.push_back(e.days);
  }
  StagePriorTable table{};
  for (std::size_t s = 0; s < kStages; ++s) {
    table[s].p_close = (closed[s] + 1) / (resolved[s] + 2);
    const auto& d = days[s].size() >= 20 ? days[s] : pooled;
    table[s].days = {quantile(d, kLowerQ), quantile(d, 0.5), quantile(d, kUpperQ)};
  }
  return table;
}

// Distinct opportunities of the examples `rows` that closed / were lost.
std::pair<std::size_t, std::size_t> resolved_deals(const ExampleSet& set, const std::vector<std::size_t>& rows) {
  std::vector<std::size_t> closed, lost;
  for (std::size_t i : rows) {
    const Example& e = set.examples[i];
    if (e.outcome == DealOutcome::kClosed) closed.push_back(e.opportunity);
    if (e.outcome == DealOutcome::kLost) lost.push_back(e.opportunity);
  }
  for (auto* v : {&closed, &lost}) {
    std::sort(v->begin(), v->end());
    v->erase(std::unique(v->begin(), v->end()), v->end());
  }
  return {closed.size(), lost.size()};
}

// Why a trained classifier is no model, or empty: too few distinct deals of
// either outcome to learn from (its examples repeat the same few deals at
// many as-of points), or calibrated predictions that are one constant or
// rank no better than chance on the calibration points.
std::string degenerate_reason(std::size_t closed_deals, std::size_t lost_deals, std::size_t examples,
                              const std::vector<double>& calibrated, double calibration_auc) {
  const std::string among = " among " + std::to_string(examples) + " training examples";
  const std::string need = " (need at least " + std::to_string(kMinDealsPerOutcome) + " closed and " +
                           std::to_string(kMinDealsPerOutcome) + " lost deals)";
  const bool few_closed = closed_deals < kMinDealsPerOutcome, few_lost = lost_deals < kMinDealsPerOutcome;
  if (few_closed && few_lost)
    return "only " + std::to_string(closed_deals) + " closed and " + std::to_string(lost_deals) + " lost deals" +
           among + need;
  if (few_closed) return "only " + std::to_string(closed_deals) + " closed deals" + among + need;
  if (few_lost) return "only " + std::to_string(lost_deals) + " lost deals" + among + need;
  const std::string counts =
      " (" + std::to_string(closed_deals) + " closed and " + std::to_string(lost_deals) + " lost deals" + among + ")";
  const auto [lo, hi] = std::minmax_element(calibrated.begin(), calibrated.end());
  char text[160];
  if (lo != calibrated.end() && *hi - *lo < 1e-6) {
    std::snprintf(text, sizeof text, "constant predictions: every calibration example gets p_close %.3f", *lo);
    return text + counts;
  }
  if (calibration_auc < kChanceAuc) {
    std::snprintf(text, sizeof text, "calibration AUC %.3f is chance level (below %.2f)", calibration_auc, kChanceAuc);
    return text + counts;
  }
  return {};
}

// Opportunities with a stage row before the cutoff.
std::size_t opportunities_before(const CrmHistory& history, UnixSeconds cutoff) {
  std::vector<std::string> ids;
  for (const auto& s : history.stages)
    if (s.ts < cutoff) ids.push_back(s.opportunity_id);
  std::sort(ids.begin(), ids.end());
  return static_cast<std::size_t>(std::unique(ids.begin(), ids.end()) - ids.begin());
}

// "deals-<span end date>-<hash of the classifier>".
std::string model_version(const models::Booster& classifier, const std::string& span_end) {
  auto model_json = classifier.save_json();
  char hash[17];
  std::snprintf(hash, sizeof hash, "%016llx",
                static_cast<unsigned long long>(fnv1a(model_json ? *model_json : std::string())));
  return "deals-" + span_end.substr(0, 10) + "-" + std::string(hash).substr(0, 8);
}

}  // namespace

// Conformal log-residual quantiles of days (q10, q50, q90) per stage.
struct DealModel::Impl {
  models::Booster classifier;
  models::Booster days;
  models::IsotonicCalibrator calibrator;
  std::vector<std::size_t> columns;
  std::array<std::array<double, 3>, kStages> log_residual_q{};
  DealTrainReport report;
  std::string version;
  std::string feature_set = "full";
  StagePriorTable stage_prior{};
  bool has_stage_prior = false;  // models saved before it was kept have none

  Impl(models::Booster c, models::Booster d) : classifier(std::move(c)), days(std::move(d)) {}
};

DealModel::DealModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DealModel::DealModel(DealModel&&) noexcept = default;
DealModel& DealModel::operator=(DealModel&&) noexcept = default;
DealModel::~DealModel() = default;
const DealTrainReport& DealModel::report() const { return impl_->report; }
const std::string& DealModel::version() const { return impl_->version; }
const std::string& DealModel::degenerate() const { return impl_->report.degenerate; }

Result<DealModel> DealModel::train(const CrmHistory& history, const DealTrainOptions& options,
                                   DealTrainReport* report_out, DealFeatureSet feature_set) {
  const auto started = std::chrono::steady_clock::now();
  const UnixSeconds cutoff = effective_cutoff(history, options.cutoff);
  auto set = build_examples(history, options, cutoff);
  if (!set) return set.status();
  const std::vector<std::size_t> columns = model_columns(options, feature_set);
  const models::DenseMatrix x = select_columns(set->x, columns);
  // The classifier skips unresolved (censored) rows.
  const RowSplit split = split_by_point(*set, options.calibration_share);
  const GatheredRows fit = gather_rows(*set, x, split.fit, true);
  const GatheredRows cal = gather_rows(*set, x, split.cal, true);
  REAI_RETURN_IF_ERROR(check_enough_resolved_deals(fit.label, cal.label));
  if (options.progress)
    std::cerr << "reai train deals: " << set->points.size() << " as-of points, " << fit.label.size()
              << " training and " << cal.label.size() << " calibration examples\n";

  const models::TrainParams clf = classifier_params(options);
  auto classifier = models::Booster::train(fit.x, fit.label, {}, &cal.x, cal.label, clf);
  if (!classifier) return classifier.status();
  auto cal_raw = classifier->predict(cal.x);
  if (!cal_raw) return cal_raw.status();
  std::vector<double> cal_scores(cal_raw->begin(), cal_raw->end());
  auto calibrator = models::IsotonicCalibrator::fit(cal_scores, cal.label);
  if (!calibrator) return calibrator.status();

  const GatheredRows dfit = days_rows(*set, x, split.fit);
  const GatheredRows dcal = days_rows(*set, x, split.cal);
  auto days = models::Booster::train_aft(dfit.x, dfit.lower, dfit.upper, {}, &dcal.x, dcal.lower, dcal.upper,
                                         days_params(clf));
  if (!days) return days.status();

  auto impl = std::make_unique<Impl>(std::move(*classifier), std::move(*days));
  impl->calibrator = std::move(*calibrator);
  impl->columns = columns;
  impl->feature_set = feature_set == DealFeatureSet::kPlain ? "plain" : "full";
  auto dcal_pred = impl->days.predict(dcal.x);
  if (!dcal_pred) return dcal_pred.status();
  auto log_residual_q = log_residual_quantiles(*set, dcal.kept, *dcal_pred);
  if (!log_residual_q) return log_residual_q.status();
  impl->log_residual_q = *log_residual_q;

  // Out-of-time figures on the calibration points (in-sample for calibration).
  DealTrainReport& report = impl->report;
  report.train_examples = fit.label.size();
  report.calibration_examples = cal.label.size();
  report.classifier_rounds = impl->classifier.num_rounds();
  report.days_rounds = impl->days.num_rounds();
  std::vector<double> calibrated;
  for (double s : cal_scores) calibrated.push_back(impl->calibrator.apply(s));
  report.calibration_auc = models::roc_auc(calibrated, cal.label);
  report.calibration_brier = models::brier_score(calibrated, cal.label);
  report_days_accuracy(*set, dcal.kept, *dcal_pred, impl->log_residual_q, report);
  report.span_start = format_iso8601(set->points.front());
  report.span_end = format_iso8601(cutoff);
  report.opportunities = opportunities_before(history, cutoff);
  std::tie(report.closed_deals, report.lost_deals) = resolved_deals(*set, fit.kept);
  report.degenerate =
      degenerate_reason(report.closed_deals, report.lost_deals, report.train_examples, calibrated, report.calibration_auc);
  impl->stage_prior = stage_prior_of(*set);
  impl->has_stage_prior = true;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  impl->version = model_version(impl->classifier, report.span_end);
  if (report_out != nullptr) *report_out = report;
  return DealModel(std::move(impl));
}

std::vector<DealPrediction> DealModel::predict(const CrmHistory& history, UnixSeconds as_of) const {
  const CrmHistory visible = truncate_history(history, as_of + 1);
  const DealHistory index(visible);
  models::DenseMatrix full(0, deal_feature_names().size());
  std::vector<const Opportunity*> open;
  std::vector<int> stages;
  for (const Opportunity& o : index.opportunities()) {
    if (!o.open_at(as_of)) continue;
    full.append_row(detail::deal_features(index, o, as_of));
    open.push_back(&o);
    stages.push_back(static_cast<int>(o.rows[static_cast<std::size_t>(o.row_at(as_of))].second));
  }
  std::vector<DealPrediction> out;
  if (open.empty()) return out;
  if (!impl_->report.degenerate.empty() && impl_->has_stage_prior) {
    for (std::size_t i = 0; i < open.size(); ++i) {
      const StagePriorRow& prior = impl_->stage_prior[static_cast<std::size_t>(std::clamp(stages[i], 0, kStages - 1))];
      DealPrediction p;
      p.opportunity_id = open[i]->id;
      p.tenant_id = open[i]->tenant_id;
      p.agent_id = open[i]->agent_id;
      p.p_close = prior.p_close;
      p.lower80_days = prior.days[0];
      p.expected_days_to_close = prior.days[1];
      p.upper80_days = prior.days[2];
      out.push_back(std::move(p));
    }
    return out;
  }
  const models::DenseMatrix x = select_columns(full, impl_->columns);
  auto raw = impl_->classifier.predict(x);
  auto median = impl_->days.predict(x);
  for (std::size_t i = 0; i < open.size(); ++i) {
    DealPrediction p;
    p.opportunity_id = open[i]->id;
    p.tenant_id = open[i]->tenant_id;
    p.agent_id = open[i]->agent_id;
    // XGBoost predict only fails on a shape mismatch, which the fixed column
    // list rules out; fall back to the calibrator's range midpoint regardless.
    p.p_close = impl_->calibrator.apply(raw ? (*raw)[i] : 0.5);
    const double base = median ? std::max<double>((*median)[i], 0.5) : 60.0;
    const auto& q = impl_->log_residual_q[static_cast<std::size_t>(std::clamp(stages[i], 0, kStages - 1))];
    p.expected_days_to_close = base * std::exp(q[1]);
    p.lower80_days = base * std::exp(q[0]);
    p.upper80_days = base * std::exp(q[2]);
    out.push_back(std::move(p));
  }
  return out;
}

Status DealModel::save(const std::string& dir) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return internal_error("cannot create " + dir + ": " + ec.message());
  REAI_RETURN_IF_ERROR(impl_->classifier.save_file(dir + "/" + kClassifierFile));
  REAI_RETURN_IF_ERROR(impl_->days.save_file(dir + "/" + kDaysFile));
  namespace json = boost::json;
  json::object meta;
  meta["format"] = "reai-deal-model-1";
  meta["version"] = impl_->version;
  meta["feature_set"] = impl_->feature_set;
  json::array names, columns;
  for (const auto& n : deal_feature_names()) names.emplace_back(n);
  for (std::size_t c : impl_->columns) columns.emplace_back(c);
  meta["feature_names"] = std::move(names);
  meta["columns"] = std::move(columns);
  meta["calibration"] = json::parse(impl_->calibrator.to_json());
  json::array q;
  for (const auto& s : impl_->log_residual_q) q.push_back(json::array{s[0], s[1], s[2]});
  meta["log_residual_quantiles"] = std::move(q);
  const auto& r = impl_->report;
  meta["metrics"] = json::object{{"calibration_auc", r.calibration_auc},
                                 {"calibration_brier", r.calibration_brier},
                                 {"calibration_days_mae", r.calibration_days_mae},
                                 {"calibration_coverage80", r.calibration_coverage80},
                                 {"closed_deals", r.closed_deals},
                                 {"lost_deals", r.lost_deals},
                                 {"degenerate", r.degenerate.empty() ? json::value(nullptr) : json::value(r.degenerate)}};
  if (impl_->has_stage_prior) {
    json::array prior;
    for (const auto& row : impl_->stage_prior)
      prior.push_back(json::object{{"p_close", row.p_close}, {"days", json::array{row.days[0], row.days[1], row.days[2]}}});
    meta["stage_prior"] = std::move(prior);
  }
  meta["training"] = json::object{{"span_start", r.span_start},
                                  {"span_end", r.span_end},
                                  {"train_examples", r.train_examples},
                                  {"calibration_examples", r.calibration_examples},
                                  {"opportunities", r.opportunities},
                                  {"classifier_rounds", r.classifier_rounds},
                                  {"days_rounds", r.days_rounds},
                                  {"seconds", r.seconds}};
  std::ofstream out(dir + "/" + kMetadataFile);
  out << json::serialize(meta) << "\n";
  out.close();
  if (!out) return internal_error("cannot write " + dir + "/" + kMetadataFile);
  return Status::ok();
}

Result<DealModel> DealModel::load(const std::string& dir) {
  namespace json = boost::json;
  const std::string meta_path = dir + "/" + kMetadataFile;
  std::ifstream in(meta_path);
  if (!in) return not_found("no deal model at " + dir + " (missing " + kMetadataFile + ")");
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  json::value parsed = json::parse(text.str(), ec);
  if (ec || !parsed.is_object()) return invalid_argument(meta_path + ": not a JSON object");
  try {
    const json::object& meta = parsed.as_object();
    if (meta.at("format").as_string() != "reai-deal-model-1") return invalid_argument(meta_path + ": unknown format");
    const auto& names = meta.at("feature_names").as_array();
    if (names.size() != deal_feature_names().size())
      return invalid_argument(meta_path + ": written for another feature schema");
    for (std::size_t i = 0; i < names.size(); ++i)
      if (names[i].as_string() != deal_feature_names()[i])
        return invalid_argument(meta_path + ": written for another feature schema");
    auto classifier = models::Booster::load_file(dir + "/" + kClassifierFile);
    if (!classifier) return classifier.status();
    auto days = models::Booster::load_file(dir + "/" + kDaysFile);
    if (!days) return days.status();
    auto impl = std::make_unique<Impl>(std::move(*classifier), std::move(*days));
    for (const auto& c : meta.at("columns").as_array()) {
      const auto column = static_cast<std::size_t>(c.to_number<std::int64_t>());
      if (column >= deal_feature_names().size()) return invalid_argument(meta_path + ": bad column " + std::to_string(column));
      impl->columns.push_back(column);
    }
    if (impl->columns.size() != impl->classifier.num_features())
      return invalid_argument(meta_path + ": column list does not match the classifier");
    auto calibrator = models::IsotonicCalibrator::from_json(json::serialize(meta.at("calibration")));
    if (!calibrator) return calibrator.status();
    impl->calibrator = std::move(*calibrator);
    const auto& q = meta.at("log_residual_quantiles").as_array();
    if (q.size() != kStages) return invalid_argument(meta_path + ": bad interval quantiles");
    for (std::size_t s = 0; s < kStages; ++s)
      for (std::size_t k = 0; k < 3; ++k) impl->log_residual_q[s][k] = q[s].as_array().at(k).to_number<double>();
    impl->version = std::string(meta.at("version").as_string());
    impl->feature_set = std::string(meta.at("feature_set").as_string());
    const auto& m = meta.at("metrics").as_object();
    impl->report.calibration_auc = m.at("calibration_auc").to_number<double>();
    impl->report.calibration_brier = m.at("calibration_brier").to_number<double>();
    impl->report.calibration_days_mae = m.at("calibration_days_mae").to_number<double>();
    impl->report.calibration_coverage80 = m.at("calibration_coverage80").to_number<double>();
    // Kept since the degenerate check; a model saved before it has neither.
    if (const auto* d = m.if_contains("degenerate"); d != nullptr && d->is_string())
      impl->report.degenerate = std::string(d->as_string());
    if (const auto* c = m.if_contains("closed_deals")) impl->report.closed_deals = c->to_number<std::size_t>();
    if (const auto* l = m.if_contains("lost_deals")) impl->report.lost_deals = l->to_number<std::size_t>();
    if (const auto* prior = meta.if_contains("stage_prior")) {
      const auto& rows = prior->as_array();
      if (rows.size() != kStages) return invalid_argument(meta_path + ": bad stage prior");
      for (std::size_t s = 0; s < kStages; ++s) {
        const auto& row = rows[s].as_object();
        impl->stage_prior[s].p_close = row.at("p_close").to_number<double>();
        for (std::size_t k = 0; k < 3; ++k) impl->stage_prior[s].days[k] = row.at("days").as_array().at(k).to_number<double>();
      }
      impl->has_stage_prior = true;
    }
    if (!impl->report.degenerate.empty() && !impl->has_stage_prior)
      return invalid_argument(meta_path + ": degenerate model without a stage prior");
    const auto& t = meta.at("training").as_object();
    impl->report.span_start = std::string(t.at("span_start").as_string());
    impl->report.span_end = std::string(t.at("span_end").as_string());
    return DealModel(std::move(impl));
  } catch (const std::exception& e) {
    return invalid_argument(meta_path + ": malformed (" + e.what() + ")");
  }
}

Status check_deal_history_at(const CrmHistory& history, UnixSeconds as_of) {
  if (history.stages.empty())
    return failed_precondition("no opportunity history: no stage rows (opportunity_stages.csv) to forecast from");
  UnixSeconds first = history.stages.front().ts;
  for (const auto& s : history.stages) first = std::min(first, s.ts);
  if (first > as_of)
    return failed_precondition("no opportunity history at or before " + format_iso8601(as_of) +
                               ": the first stage row is at " + format_iso8601(first));
  return Status::ok();
}

std::vector<DealLabel> label_open_deals(const CrmHistory& history, UnixSeconds as_of, UnixSeconds end) {
  const DealHistory index(truncate_history(history, end));
  std::vector<DealLabel> labels;
  for (const Opportunity& o : index.opportunities()) {
    if (!o.open_at(as_of)) continue;
    DealLabel l;
    l.opportunity_id = o.id;
    if (auto res = o.resolution_after(as_of)) {
      l.outcome = res->second == Stage::kClosed ? DealOutcome::kClosed : DealOutcome::kLost;
      l.days = (res->first - as_of) / kDay;
    } else {
      l.days = (end - as_of) / kDay;
    }
    labels.push_back(std::move(l));
  }
  return labels;
}

Result<StagePrior> StagePrior::train(const CrmHistory& history, const DealTrainOptions& options) {
  const UnixSeconds cutoff = effective_cutoff(history, options.cutoff);
  auto set = build_examples(history, options, cutoff);
  if (!set) return set.status();
  double closed[kStages] = {0, 0, 0, 0}, resolved[kStages] = {0, 0, 0, 0};
  for (const Example& e : set->examples) {
    if (e.outcome == DealOutcome::kOpen || e.stage >= kStages) continue;
    resolved[e.stage] += 1;
    closed[e.stage] += e.outcome == DealOutcome::kClosed ? 1 : 0;
  }
  StagePrior prior;
  for (int s = 0; s < kStages; ++s) prior.rate_[s] = (closed[s] + 1) / (resolved[s] + 2);
  return prior;
}

std::vector<DealPrediction> StagePrior::predict(const CrmHistory& history, UnixSeconds as_of) const {
  const DealHistory index(truncate_history(history, as_of + 1));
  std::vector<DealPrediction> out;
  for (const Opportunity& o : index.opportunities()) {
    if (!o.open_at(as_of)) continue;
    DealPrediction p;
    p.opportunity_id = o.id;
    p.tenant_id = o.tenant_id;
    p.agent_id = o.agent_id;
    const int stage = static_cast<int>(o.rows[static_cast<std::size_t>(o.row_at(as_of))].second);
    p.p_close = rate_[std::clamp(stage, 0, kStages - 1)];
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace reai::analytics
