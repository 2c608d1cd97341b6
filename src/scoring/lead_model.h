// Private to scoring: the LeadModel definition shared by loading, training,
// the engine and replay.
#pragma once

#include <limits>
#include <string>
#include <vector>

#include "features/features.h"
#include "models/models.h"
#include "scoring/scoring.h"

namespace reai::scoring {

// /2: agent track records are keyed by tenant and agent ("tenant|agent").
// scripts/lib/lead-model.sh names it too: scripts that keep a trained model
// between runs retrain one of another format.
inline constexpr std::string_view kModelFormat = "reai-lead-model/2";

class LeadModel {
 public:
  std::string version;
  models::CompiledForest forest;
  models::IsotonicCalibrator calibrator;
  // Log-odds shift after the isotonic map (see level_neutral_shift).
  double calibration_shift = 0;
  // Log-odds level shift by lead age, after the isotonic map; empty for
  // models trained before it existed (identity).
  models::AgeLogitCalibration level_calibration;
  std::size_t age_column = 0;  // lead_age_hours in the feature row
  // Track records as of the end of the training data (serving starts here).
  features::TrackRecordBook track_records;
  // The book holds the outcomes of leads whose 90-day window closed by this
  // instant (the training export end); later-maturing leads are counted live
  // by the engine. Max when the metadata does not say (live counting off).
  UnixSeconds track_records_end = std::numeric_limits<UnixSeconds>::max();
  double base_rate = 0.1;
};

// Probability, SHAP reasons and confidence of one feature row.
struct ModelOutput {
  double probability = 0;
  std::vector<ScoreReason> reasons;
};
// Raw forest probability -> calibrated; reasons from path attribution
// (served: one walk of the trees gives the margin and the reasons, a few
// microseconds, where exact TreeSHAP costs ~1 ms a row; scoring_test checks
// both rank the same top reasons) or exact TreeSHAP. Fails (Internal) when the
// model produces a non-finite value.
enum class Reasons { kNone, kPath, kTreeShap };
Result<ModelOutput> evaluate_model(const LeadModel& model, const float* row, Reasons reasons);

// Calibrated probability of a raw forest probability.
double calibrate(const models::IsotonicCalibrator& calibrator, double shift, double raw);
// The isotonic map is fitted on the validation period, whose base rate is
// one season's; applied as is it would move every later score to that
// season's level. This log-odds shift keeps the isotonic shape but makes the
// calibrated mean over `raw` equal the raw mean (the model, trained on all
// periods, already carries the level).
double level_neutral_shift(const models::IsotonicCalibrator& calibrator, std::span<const double> raw);

// The documented rule-based scorer used without a model.
ModelOutput rule_based_score(const float* row);

// confidence in [0, 1] (see scoring.cc for the formula).
double score_confidence(double probability, double base_rate, std::uint32_t events_count, bool fallback);

// The top 3 |impact| entries of `impacts` (one per feature) as reasons.
std::vector<ScoreReason> top_reasons(const float* row, const double* impacts, std::size_t n);

}  // namespace reai::scoring
