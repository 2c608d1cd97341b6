// Deal closure and timeline: for every opportunity open at an as-of instant,
// the probability that it closes, the expected days from as-of to closing
// given it closes, and an 80% interval of those days.
//
// Everything is computed from the rows of a CRM history up to the as-of
// instant only (no look-ahead): stage and time in stage, deal value, the lead's
// attributes and activity, the agent's track record before as-of, season.
// Training draws examples from many as-of points of the history, each labelled
// with what happened after it, but never past the training cutoff.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/crm_history.h"
#include "core/status.h"
#include "core/types.h"

namespace reai::analytics {

// Histories are core's CrmHistory (core/crm_history.h: load_crm_history,
// truncate_history).

// OK when `history` holds an opportunity stage row at or before `as_of`, so
// a forecast at as_of has a pipeline to read (an empty answer then means
// nothing is open). FailedPrecondition otherwise, saying what is missing: no
// stage rows at all, or rows that start after as_of (naming the first one's
// instant).
Status check_deal_history_at(const CrmHistory& history, UnixSeconds as_of);

// One open opportunity's forecast at an as-of instant.
struct DealPrediction {
  std::string opportunity_id;
  std::string tenant_id;
  std::string agent_id;
  double p_close = 0;                // calibrated probability that it reaches `closed`
  double expected_days_to_close = 0; // days from as-of to closing, given it closes
  double lower80_days = 0;           // 80% interval of those days
  double upper80_days = 0;
};

// Outcome of an opportunity open at an as-of instant, seen from the end of a
// history: closed (after `days`), lost, or still open (censored).
enum class DealOutcome { kClosed, kLost, kOpen };
struct DealLabel {
  std::string opportunity_id;
  DealOutcome outcome = DealOutcome::kOpen;
  double days = 0;  // as-of -> closed/lost, or as-of -> end of history when open
};

// The opportunities open at `as_of` (last row at or before as_of is neither
// closed nor lost) and what happened to them in `history` afterwards, up to
// `end`. For evaluation: `history` holds the later rows.
std::vector<DealLabel> label_open_deals(const CrmHistory& history, UnixSeconds as_of, UnixSeconds end);

struct DealTrainOptions {
  // Only rows with ts < cutoff are used (0: all rows; cutoff = last ts + 1s).
  UnixSeconds cutoff = 0;
  // Spacing of the as-of points training examples are drawn from.
  int step_days = 7;
  // As-of points end this long before the cutoff, so most examples have a
  // known outcome (deals in the data resolve within ~200 days).
  int label_horizon_days = 90;
  // Share of the latest as-of points held out for early stopping,
  // calibration and the conformal day intervals.
  double calibration_share = 0.25;
  // Tree parameters of both models (tuned by reai_analytics_eval).
  int max_depth = 3;
  double min_child_weight = 60;
  double eta = 0.03;
  double colsample_bytree = 0.6;
  // Feature names left out (ablations); unknown names are ignored.
  std::vector<std::string> drop_features;
  int nthread = 0;  // 0: min(2, cores)
  int seed = 7;
  bool progress = false;  // progress lines on stderr
};

// Out-of-time figures measured on the calibration as-of points at training.
struct DealTrainReport {
  std::size_t train_examples = 0;
  std::size_t calibration_examples = 0;
  std::size_t opportunities = 0;
  int classifier_rounds = 0;
  int days_rounds = 0;
  double calibration_auc = 0;
  double calibration_brier = 0;
  double calibration_days_mae = 0;
  double calibration_coverage80 = 0;
  double seconds = 0;
  std::string span_start;  // ISO 8601 of the first and last as-of point
  std::string span_end;
  // Distinct opportunities behind the training examples that closed / were
  // lost after their as-of point.
  std::size_t closed_deals = 0;
  std::size_t lost_deals = 0;
  // Why the classifier is no model, e.g. "only 3 closed deals among 40
  // training examples (need at least 10 closed and 10 lost deals)"; empty
  // when it is one. See DealModel::degenerate().
  std::string degenerate;
};

// Fewest distinct closed and lost deals behind the training examples for a
// classifier that is more than a constant: fewer and the model is degenerate.
inline constexpr std::size_t kMinDealsPerOutcome = 10;

// Feature names of the deal model, in row order (the saved feature schema).
const std::vector<std::string>& deal_feature_names();

// Which features a model uses: the full set, or the references.
enum class DealFeatureSet {
  kFull,
  kPlain,  // reference: stage, time in stage, value, pre-approval
};

// The trained deal model: an XGBoost classifier with isotonic calibration for
// p_close and an XGBoost survival:aft model of days to close, with conformal
// log-residual quantiles per stage for the 80% interval. Immutable after
// train/load; predict() is safe to call from several threads.
class DealModel {
 public:
  // Trains from `history` (rows before options.cutoff only). Fails with
  // InvalidArgument when the history yields too few examples of either
  // outcome (fewer than 20 closed or lost), Internal on XGBoost errors.
  static Result<DealModel> train(const CrmHistory& history, const DealTrainOptions& options,
                                 DealTrainReport* report, DealFeatureSet features = DealFeatureSet::kFull);

  // Forecasts every opportunity open at `as_of`, using rows of `history` up to
  // and including as_of only; rows after it change nothing. Sorted by
  // opportunity id. An empty result is not an error (nothing open).
  // A degenerate model answers with its stage prior instead: p_close is the
  // closing rate of the deal's stage in the training examples and the days
  // are that stage's closed deals' quantiles.
  std::vector<DealPrediction> predict(const CrmHistory& history, UnixSeconds as_of) const;

  // Why this model's classifier is no model (too few closed or lost deals
  // among the training examples, or constant or chance-level predictions on
  // the calibration points), so predict() answers with the stage prior; empty
  // when the classifier answers. Saved with the model's metrics.
  const std::string& degenerate() const;

  // Writes MODEL_DIR/{classifier.json, days.json, deal_model.json} (metadata:
  // feature schema, calibration, interval quantiles, training span, metrics).
  // Creates the directory. Fails with Internal when it cannot write.
  Status save(const std::string& dir) const;
  // Loads a directory written by save(). NotFound when missing,
  // InvalidArgument when malformed or written for another feature schema.
  static Result<DealModel> load(const std::string& dir);

  const DealTrainReport& report() const;
  // "deals-<trained span end>-<hash>" identifying this model's version.
  const std::string& version() const;

  DealModel(DealModel&&) noexcept;
  DealModel& operator=(DealModel&&) noexcept;
  ~DealModel();

 private:
  struct Impl;
  explicit DealModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Reference: closing rate by current stage over the training examples
// (the "stage-only prior"). Returns p_close per opportunity open at
// as_of, sorted by opportunity id like DealModel::predict.
class StagePrior {
 public:
  static Result<StagePrior> train(const CrmHistory& history, const DealTrainOptions& options);
  std::vector<DealPrediction> predict(const CrmHistory& history, UnixSeconds as_of) const;

 private:
  double rate_[4] = {0, 0, 0, 0};
};

}  // namespace reai::analytics
