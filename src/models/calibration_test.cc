#include <gtest/gtest.h>

#include <random>

#include "models/models.h"

namespace reai::models {
namespace {

TEST(IsotonicCalibratorTest, HandExample) {
  // Sorted labels 0,0,1,0,0,1,1,0,1,1 pool into blocks
  // {1}:0 {2}:0 {3,4,5}:1/3 {6,7,8}:2/3 {9}:1 {10}:1.
  const std::vector<double> scores = {10, 9, 8, 7, 6, 5, 4, 3, 2, 1};
  const std::vector<float> labels = {1, 1, 0, 1, 1, 0, 0, 1, 0, 0};
  auto cal = IsotonicCalibrator::fit(scores, labels);
  ASSERT_TRUE(cal) << cal.status().to_string();
  EXPECT_FALSE(cal->empty());
  EXPECT_DOUBLE_EQ(cal->apply(0.5), 0.0005);  // clamped
  EXPECT_DOUBLE_EQ(cal->apply(1.5), 0.0005);
  EXPECT_NEAR(cal->apply(3), 1.0 / 6, 1e-12);
  EXPECT_NEAR(cal->apply(4), 1.0 / 3, 1e-12);
  EXPECT_NEAR(cal->apply(5.5), 0.5, 1e-12);
  EXPECT_NEAR(cal->apply(8), 5.0 / 6, 1e-12);
  EXPECT_DOUBLE_EQ(cal->apply(20), 0.9995);
}

TEST(IsotonicCalibratorTest, TiedScoresShareOneValue) {
  std::vector<double> scores = {1, 1, 1, 1, 2, 2, 2, 2, 3, 3};
  std::vector<float> labels = {0, 1, 0, 1, 1, 1, 1, 0, 1, 1};
  auto cal = IsotonicCalibrator::fit(scores, labels);
  ASSERT_TRUE(cal);
  EXPECT_NEAR(cal->apply(1), 0.5, 1e-12);
  EXPECT_NEAR(cal->apply(2), 0.75, 1e-12);
  EXPECT_NEAR(cal->apply(3), 0.9995, 1e-12);
}

TEST(IsotonicCalibratorTest, MonotoneAndCalibratesOnNoisyData) {
  std::mt19937 rng(5);
  std::uniform_real_distribution<double> unit(0, 1);
  std::vector<double> scores;
  std::vector<float> labels;
  for (int i = 0; i < 5000; ++i) {
    const double s = unit(rng);
    scores.push_back(s);
    labels.push_back(unit(rng) < s * s ? 1.0f : 0.0f);  // true probability s^2
  }
  auto cal = IsotonicCalibrator::fit(scores, labels);
  ASSERT_TRUE(cal);
  double prev = 0;
  for (double s = -0.1; s <= 1.1; s += 0.001) {
    const double p = cal->apply(s);
    EXPECT_GE(p, prev);
    EXPECT_GE(p, 0.0005);
    EXPECT_LE(p, 0.9995);
    prev = p;
  }
  EXPECT_NEAR(cal->apply(0.5), 0.25, 0.06);
  EXPECT_NEAR(cal->apply(0.8), 0.64, 0.06);
  std::vector<double> calibrated;
  for (double s : scores) calibrated.push_back(cal->apply(s));
  EXPECT_LT(expected_calibration_error(calibrated, labels), expected_calibration_error(scores, labels));
}

TEST(IsotonicCalibratorTest, JsonRoundTrip) {
  std::vector<double> scores = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.33};
  std::vector<float> labels = {0, 0, 1, 0, 1, 0, 1, 1, 1, 1, 0};
  auto cal = IsotonicCalibrator::fit(scores, labels);
  ASSERT_TRUE(cal);
  auto back = IsotonicCalibrator::from_json(cal->to_json());
  ASSERT_TRUE(back) << back.status().to_string();
  EXPECT_EQ(back->to_json(), cal->to_json());
  for (double s = 0; s <= 1; s += 0.01) EXPECT_EQ(back->apply(s), cal->apply(s));
}

TEST(IsotonicCalibratorTest, RejectsBadInput) {
  std::vector<double> nine(9, 0.5);
  std::vector<float> nine_labels(9, 1);
  EXPECT_EQ(IsotonicCalibrator::fit(nine, nine_labels).status().code(), StatusCode::kInvalidArgument);
  std::vector<double> ten(10, 0.5);
  EXPECT_EQ(IsotonicCalibrator::fit(ten, nine_labels).status().code(), StatusCode::kInvalidArgument);
  std::vector<float> ten_labels(10, 1);
  ten[4] = std::nan("");
  EXPECT_EQ(IsotonicCalibrator::fit(ten, ten_labels).status().code(), StatusCode::kInvalidArgument);

  for (const char* bad : {"", "{", "[]", R"({"x":[1,2]})", R"({"x":[1,2],"y":[0.1]})", R"({"x":[],"y":[]})",
                          R"({"x":[2,1],"y":[0.1,0.2]})", R"({"x":[1,2],"y":[0.5,0.1]})",
                          R"({"x":[1,2],"y":[0.1,1.5]})", R"({"x":["a",2],"y":[0.1,0.2]})"}) {
    EXPECT_EQ(IsotonicCalibrator::from_json(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(IsotonicCalibratorTest, EmptyCalibratorOnlyClamps) {
  IsotonicCalibrator none;
  EXPECT_TRUE(none.empty());
  EXPECT_DOUBLE_EQ(none.apply(0.3), 0.3);
  EXPECT_DOUBLE_EQ(none.apply(1.0), 0.9995);
}

}  // namespace
}  // namespace reai::models
