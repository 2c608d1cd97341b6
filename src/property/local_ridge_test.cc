#include "property/local_ridge.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace reai::property {
namespace {

// Homes on a 20 x 20 km square; the price of feature 0 (size) rises with x:
// residual = 0.02 * x * size, which no single global slope explains.
// Feature 1 is noise the local fits should not need.
struct Market {
  std::vector<float> features, px, py, residual;
  std::vector<int> folds;
};

Market make_market(std::size_t n, unsigned seed) {
  Market m;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> unit(0, 1);
  std::normal_distribution<double> normal(0, 1);
  for (std::size_t i = 0; i < n; ++i) {
    const float x = 20 * unit(rng), y = 20 * unit(rng), size = static_cast<float>(normal(rng));
    m.features.push_back(size);
    m.features.push_back(unit(rng));
    m.px.push_back(x);
    m.py.push_back(y);
    m.residual.push_back(static_cast<float>(0.02 * (x - 10) * size + 0.02 * normal(rng)));
    m.folds.push_back(static_cast<int>(i % 5));
  }
  return m;
}

LocalRidge::Data data_of(const Market& m) { return {m.features, 2, {0, 1}, m.px, m.py, m.residual}; }

double rmse(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i) s += (a[i] - b[i]) * (a[i] - b[i]);
  return std::sqrt(s / a.size());
}

TEST(LocalRidgeTest, LearnsSlopesThatVaryWithLocation) {
  const Market m = make_market(2000, 1);
  std::vector<float> oof;
  auto model = LocalRidge::fit(data_of(m), m.folds, 5, 7, &oof);
  ASSERT_TRUE(model.has_value()) << model.status().message();
  EXPECT_EQ(model->clusters(), 20u);
  ASSERT_EQ(oof.size(), m.residual.size());
  // Without the correction the error is the residual itself (~0.12);
  // out-of-fold, the local fits explain most of it.
  const std::vector<float> zero(m.residual.size(), 0.0f);
  EXPECT_GT(rmse(m.residual, zero), 0.10);
  EXPECT_LT(rmse(m.residual, oof), 0.05);
  // A new home of size +1 in the east gains, in the west loses.
  const float big[2] = {1.0f, 0.5f};
  EXPECT_GT(model->predict(big, 18, 10), 0.08);
  EXPECT_LT(model->predict(big, 2, 10), -0.08);
  // No location: no correction.
  EXPECT_EQ(model->predict(big, std::nanf(""), 10), 0.0);
}

TEST(LocalRidgeTest, RoundTripsThroughJson) {
  const Market m = make_market(600, 2);
  std::vector<float> oof;
  auto model = LocalRidge::fit(data_of(m), m.folds, 5, 3, &oof);
  ASSERT_TRUE(model.has_value());
  auto loaded = LocalRidge::from_json(model->to_json(), 2);
  ASSERT_TRUE(loaded.has_value()) << loaded.status().message();
  const float home[2] = {0.7f, 0.2f};
  EXPECT_DOUBLE_EQ(loaded->predict(home, 5, 15), model->predict(home, 5, 15));
  EXPECT_DOUBLE_EQ(loaded->lambda(), model->lambda());
}

TEST(LocalRidgeTest, RejectsBadInput) {
  Market m = make_market(100, 3);
  m.px.pop_back();
  std::vector<float> oof;
  EXPECT_FALSE(LocalRidge::fit(data_of(m), m.folds, 5, 1, &oof).has_value());

  const Market good = make_market(300, 4);
  auto model = LocalRidge::fit(data_of(good), good.folds, 5, 1, &oof);
  ASSERT_TRUE(model.has_value());
  // A plan with fewer features than the model reads.
  EXPECT_FALSE(LocalRidge::from_json(model->to_json(), 1).has_value());
  boost::json::object broken = model->to_json();
  broken["coef"].as_array().pop_back();
  EXPECT_FALSE(LocalRidge::from_json(broken, 2).has_value());
  broken = model->to_json();
  broken.erase("lambda");
  EXPECT_FALSE(LocalRidge::from_json(broken, 2).has_value());
}

}  // namespace
}  // namespace reai::property
