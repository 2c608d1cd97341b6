// A local hedonic correction for the AVM (private to property/): the kriged
// hedonic estimate's residual regressed, by ridge, on the home's attributes
// within each location cluster (a geographically weighted regression with
// one precomputed fit per cluster). Prices per attribute differ between
// parts of a city; the global ridge and the trees each average them away in
// their own way, so a local fit errs differently from both.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include <boost/json.hpp>

#include "core/status.h"

namespace reai::property {

class LocalRidge {
 public:
  // Training data: `features` is rows x cols (the feature plan's), of which
  // the columns `use` enter the regression (standardised, missing = 0);
  // `px`, `py` each row's coordinates in km, `residual` the target.
  struct Data {
    std::span<const float> features;
    std::size_t cols = 0;
    std::vector<int> use;
    std::span<const float> px, py;
    std::span<const float> residual;
  };

  // Places the cluster centres (k-means on the coordinates of all rows; no
  // label is read) and chooses the ridge penalty by the folds. Writes the
  // out-of-fold correction of every row to `*oof` and fits every cluster on
  // all rows. `seed` fixes the k-means start. Fails only on bad sizes.
  static Result<LocalRidge> fit(const Data& data, std::span<const int> folds, int num_folds, unsigned seed,
                                std::vector<float>* oof);

  bool empty() const { return centres_x_.empty(); }
  // Correction for one home from its feature-plan features (centred log
  // price). Thread-safe, no allocation.
  double predict(const float* features, float px, float py) const;
  std::size_t clusters() const { return centres_x_.size(); }
  double lambda() const { return lambda_; }

  boost::json::object to_json() const;
  static Result<LocalRidge> from_json(const boost::json::object& json, std::size_t cols);

 private:
  static constexpr std::size_t kMaxMix = 4;
  std::size_t nearest(float px, float py) const;
  // The mix_ clusters nearest to (px, py) and their inverse-square-distance
  // weights (summing to 1); returns how many.
  int mix(float px, float py, std::size_t* cluster, double* weight) const;
  std::size_t mix_ = 1;
  double standard(std::size_t k, float v) const;
  std::size_t cols_ = 0;
  std::vector<int> use_;
  std::vector<double> mean_, scale_;
  double lambda_ = 0;
  std::vector<float> centres_x_, centres_y_;
  std::vector<double> coef_;  // per cluster: intercept then one weight per used feature
};

}  // namespace reai::property
