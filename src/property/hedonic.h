// A ridge-regularised hedonic (linear) model of log price over the feature
// plan's features and one-hot categorical levels (private to property/).
// Trees and a linear model make different errors; their blend values homes
// better than either (the AVM blends them with weights chosen out-of-fold).
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include <boost/json.hpp>

#include "core/status.h"
#include "property/features.h"
#include "property/schema.h"

namespace reai::property {

class HedonicModel {
 public:
  // Decides the design (transforms, standardisation, one-hot levels) from the
  // training features `x` (rows x cols) and raw columns.
  // With `hinges`, every feature with at least 12 distinct values also gets
  // hinges max(0, z - knot) at its quartiles, so price can follow a bent curve.
  static HedonicModel design(const Schema& schema, const std::vector<float>& x, std::size_t cols, const RawMatrix& raw,
                             bool hinges = true);

  // Out-of-fold predictions (centred labels) for the ridge penalty chosen by
  // the same folds, then fits all rows with it. Returns the OOF predictions.
  // Rows with use[i] == 0 (outliers) are predicted but not learned from.
  // `fold_fitted` (optional) receives, per fold f, the predictions for every
  // row of the model fitted without fold f (the chosen penalty).
  std::vector<float> fit(const std::vector<float>& x, const RawMatrix& raw, std::span<const float> labels,
                         std::span<const int> folds, int num_folds, std::span<const char> use,
                         std::vector<std::vector<float>>* fold_fitted = nullptr);

  // Prediction for one row (centred log price). Thread-safe, no allocation.
  double predict(const float* features, const float* raw) const;
  double lambda() const { return lambda_; }
  // Number of design terms (weights), for progress lines.
  std::size_t terms() const { return width(); }

  boost::json::object to_json() const;
  static Result<HedonicModel> from_json(const boost::json::object& json, std::size_t features, std::size_t columns);

 private:
  std::size_t width() const;
  // Writes the design row into `out` (width() values).
  void expand(const float* features, const float* raw, double* out) const;
  void add_hinges(const std::vector<float>& x, std::size_t n);
  // Standardised (clipped) value of feature f; 0 when missing.
  double standard(std::size_t f, float v) const;

  std::size_t features_ = 0;
  std::vector<int> use_log_;        // per feature: log1p before standardising
  std::vector<double> mean_, scale_;
  std::vector<int> missing_flag_;   // per feature: add a was-missing indicator
  std::vector<int> log_extra_;      // per feature: also add standardised log1p (size, age curves)
  std::vector<double> log_mean_, log_scale_;
  // Hinges max(0, z - knot) / scale: piecewise-linear price curves.
  std::vector<int> hinge_feature_;
  std::vector<double> hinge_knot_, hinge_scale_;
  std::vector<int> onehot_column_;  // per one-hot: raw column
  std::vector<int> onehot_level_;   // per one-hot: level id

  std::vector<double> weights_;     // width()
  double intercept_ = 0;
  double lambda_ = 0;
};

}  // namespace reai::property
