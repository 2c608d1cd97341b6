#include "property/hedonic.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace reai::property {
namespace {

// A training set for the hedonic model: features a (0-10), b (0-1), total
// area (500-3000) and a categorical column with three levels, as the feature
// plan would hand them over (raw categorical codes are level ids).
struct Synthetic {
  Schema schema;
  std::vector<float> x;
  RawMatrix raw;
  std::vector<float> labels;
  std::vector<int> folds;
};

template <typename Truth>
Synthetic make_synthetic(std::size_t n, unsigned seed, double noise, Truth truth) {
  Synthetic s;
  ColumnSchema a{"a", ColumnKind::kNumeric, {}, {}}, b{"b", ColumnKind::kNumeric, {}, {}};
  ColumnSchema area{"total_area", ColumnKind::kNumeric, {}, {}};
  ColumnSchema kind{"kind", ColumnKind::kCategorical, {"low", "mid", "high"}, {}};
  s.schema.columns = {a, b, area, kind};
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> unit(0, 1);
  std::normal_distribution<double> normal(0, 1);
  s.raw = RawMatrix{n, 4, std::vector<float>(n * 4)};
  s.x.resize(n * 4);
  for (std::size_t i = 0; i < n; ++i) {
    const float row[4] = {10 * unit(rng), unit(rng), 500 + 2500 * unit(rng), static_cast<float>(i % 3)};
    std::copy_n(row, 4, s.raw.values.data() + i * 4);
    std::copy_n(row, 4, s.x.data() + i * 4);
    s.labels.push_back(static_cast<float>(truth(row) + noise * normal(rng)));
    s.folds.push_back(static_cast<int>(i % 5));
  }
  return s;
}

HedonicModel fit(const Synthetic& s, bool hinges = true) {
  HedonicModel h = HedonicModel::design(s.schema, s.x, 4, s.raw, hinges);
  const std::vector<char> use(s.labels.size(), 1);
  h.fit(s.x, s.raw, s.labels, s.folds, 5, use);
  return h;
}

// Largest error of the model against the noiseless truth over a grid of new rows.
template <typename Truth>
double worst_error(const HedonicModel& h, Truth truth) {
  double worst = 0;
  for (float a = 0.5f; a < 10; a += 1) {
    for (float b : {0.1f, 0.5f, 0.9f}) {
      for (float area : {800.0f, 1500.0f, 2500.0f}) {
        for (float kind : {0.0f, 1.0f, 2.0f}) {
          const float row[4] = {a, b, area, kind};
          worst = std::max(worst, std::fabs(h.predict(row, row) - truth(row)));
        }
      }
    }
  }
  return worst;
}

TEST(HedonicModelTest, RecoversALinearRelationWithCategoryEffects) {
  auto truth = [](const float* r) { return 0.08 * r[0] - 0.5 * r[1] + 0.0004 * r[2] + (r[3] == 2 ? 0.3 : 0.0); };
  const Synthetic s = make_synthetic(900, 3, 0.02, truth);
  const HedonicModel h = fit(s);
  EXPECT_LT(worst_error(h, truth), 0.06);
  EXPECT_LE(h.lambda(), 10);  // little shrinkage wins on clean data
}

// Price flat in `a` up to 5 and rising after it: the quartile hinges bend the
// linear model; a line plus a log term alone is off by 0.055.
TEST(HedonicModelTest, HingesFollowAKink) {
  auto truth = [](const float* r) { return 0.1 * std::max(0.0f, r[0] - 5.0f) + 0.0002 * r[2]; };
  const Synthetic s = make_synthetic(900, 4, 0.01, truth);
  const HedonicModel h = fit(s);
  EXPECT_LT(worst_error(h, truth), 0.02);  // 0.006
  const HedonicModel straight = fit(s, /*hinges=*/false);
  EXPECT_LT(straight.terms(), h.terms());
  EXPECT_GT(worst_error(straight, truth), 0.04);  // 0.055
}

TEST(HedonicModelTest, MissingValuesAndUnseenLevelsStillPredict) {
  auto truth = [](const float* r) { return 0.08 * r[0] + 0.0004 * r[2]; };
  const Synthetic s = make_synthetic(300, 5, 0.02, truth);
  const HedonicModel h = fit(s);
  const float nan = std::nanf("");
  const float row[4] = {nan, nan, nan, nan};
  EXPECT_TRUE(std::isfinite(h.predict(row, row)));
}

TEST(HedonicModelTest, JsonRoundTripKeepsPredictions) {
  auto truth = [](const float* r) { return 0.1 * std::max(0.0f, r[0] - 5.0f) + 0.0004 * r[2] + 0.2 * r[1]; };
  const Synthetic s = make_synthetic(600, 6, 0.02, truth);
  const HedonicModel h = fit(s);
  auto loaded = HedonicModel::from_json(h.to_json(), 4, 4);
  ASSERT_TRUE(loaded.has_value()) << loaded.status().message();
  for (std::size_t i = 0; i < 20; ++i) {
    EXPECT_DOUBLE_EQ(loaded->predict(s.x.data() + i * 4, s.raw.row(i)), h.predict(s.x.data() + i * 4, s.raw.row(i)));
  }
}

TEST(HedonicModelTest, RejectsJsonThatDoesNotMatchTheFeatures) {
  auto truth = [](const float* r) { return 0.08 * r[0] + 0.0004 * r[2]; };
  const Synthetic s = make_synthetic(300, 7, 0.02, truth);
  const boost::json::object good = fit(s).to_json();
  EXPECT_FALSE(HedonicModel::from_json(good, 5, 4).has_value());  // wrong feature count
  boost::json::object short_weights = good;
  short_weights["weights"].as_array().pop_back();
  EXPECT_FALSE(HedonicModel::from_json(short_weights, 4, 4).has_value());
  boost::json::object bad_hinge = good;
  bad_hinge["hinge_feature"] = boost::json::array{99};
  bad_hinge["hinge_knot"] = boost::json::array{0.0};
  bad_hinge["hinge_scale"] = boost::json::array{1.0};
  EXPECT_FALSE(HedonicModel::from_json(bad_hinge, 4, 4).has_value());
  boost::json::object not_numbers = good;
  not_numbers["mean"] = boost::json::array{"x", "y", "z", "w"};
  EXPECT_FALSE(HedonicModel::from_json(not_numbers, 4, 4).has_value());
  // Without its curve terms the weights no longer match the design.
  boost::json::object no_curves = good;
  for (const char* key : {"hinge_feature", "hinge_knot", "hinge_scale"}) no_curves.erase(key);
  EXPECT_FALSE(HedonicModel::from_json(no_curves, 4, 4).has_value());
}

}  // namespace
}  // namespace reai::property
