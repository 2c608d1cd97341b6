// Synthetic training data for the models tests and benchmark (private).
#pragma once

#include <cmath>
#include <random>
#include <vector>

#include "models/models.h"

namespace reai::models::testing {

struct SyntheticData {
  DenseMatrix x;
  std::vector<float> binary;      // Bernoulli outcome of a nonlinear logit
  std::vector<float> continuous;  // noisy regression target
  std::vector<float> duration;    // positive survival time
};

// Rows of `cols` standard-normal features, about `nan_share` of them missing
// (NaN), with interactions so trees split on the same feature repeatedly.
inline SyntheticData make_synthetic(std::size_t rows, std::size_t cols, unsigned seed,
                                    double nan_share = 0.1) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  SyntheticData d;
  d.x = DenseMatrix(rows, cols);
  for (std::size_t i = 0; i < rows; ++i) {
    float* r = d.x.row(i);
    for (std::size_t j = 0; j < cols; ++j) {
      r[j] = unit(rng) < nan_share ? std::nanf("") : normal(rng);
      if (j % 5 == 4 && !std::isnan(r[j])) r[j] = std::round(r[j] * 2);  // discrete column, ties
    }
    auto at = [&](std::size_t j) { return std::isnan(r[j % cols]) ? 0.5f : r[j % cols]; };
    const double logit = 1.2 * at(0) - 0.8 * at(1) * at(2) + std::sin(2 * at(3)) + 0.5 * (at(4) > 1) - 0.3;
    d.binary.push_back(unit(rng) < 1 / (1 + std::exp(-logit)) ? 1.0f : 0.0f);
    d.continuous.push_back(static_cast<float>(logit + 0.3 * normal(rng)));
    d.duration.push_back(static_cast<float>(std::exp(1 + 0.5 * logit + 0.2 * normal(rng))));
  }
  return d;
}

}  // namespace reai::models::testing
