#include <gtest/gtest.h>

#include <cmath>
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

namespace reai::models {
namespace {

// Rows whose true probability is sigmoid(a + b * logit(p)) for a known (a, b).
void shifted_rows(double a, double b, int n, std::vector<double>* probs, std::vector<float>* labels) {
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> unit(0, 1);
  std::normal_distribution<double> logit(-2.5, 1.2);
  for (int i = 0; i < n; ++i) {
    const double z = logit(rng);
    probs->push_back(1 / (1 + std::exp(-z)));
    labels->push_back(unit(rng) < 1 / (1 + std::exp(-(a + b * z))) ? 1.f : 0.f);
  }
}

TEST(LogitLinearTest, RecoversInterceptAndSlopeWithAWeakPrior) {
  std::vector<double> probs;
  std::vector<float> labels;
  shifted_rows(0.3, 0.8, 40000, &probs, &labels);
  auto fit = fit_logit_linear(probs, labels, {}, 10, 10);
  ASSERT_TRUE(fit) << fit.status().to_string();
  EXPECT_NEAR(fit->intercept, 0.3, 0.1);
  EXPECT_NEAR(fit->slope, 0.8, 0.05);
  // Applying the fit makes the mean prediction match the observed rate.
  double mean_p = 0, mean_y = 0;
  for (std::size_t i = 0; i < probs.size(); ++i) {
    mean_p += fit->apply(probs[i]);
    mean_y += labels[i];
  }
  EXPECT_NEAR(mean_p / double(probs.size()), mean_y / double(probs.size()), 0.002);
}

TEST(LogitLinearTest, ZeroSlopeSdFitsTheInterceptOnlyAndAStrongPriorShrinks) {
  std::vector<double> probs;
  std::vector<float> labels;
  shifted_rows(0.4, 1.0, 20000, &probs, &labels);
  auto free_fit = fit_logit_linear(probs, labels, {}, 10, 0);
  ASSERT_TRUE(free_fit);
  EXPECT_DOUBLE_EQ(free_fit->slope, 1.0);
  EXPECT_NEAR(free_fit->intercept, 0.4, 0.08);
  auto shrunk = fit_logit_linear(probs, labels, {}, 0.01, 0);
  ASSERT_TRUE(shrunk);
  EXPECT_GT(shrunk->intercept, 0);
  EXPECT_LT(shrunk->intercept, 0.5 * free_fit->intercept);
  // Zero weights remove rows: weighting out the positives pulls the level down.
  std::vector<float> weights(labels.size(), 1.f);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] > 0 && i % 2 == 0) weights[i] = 0;
  }
  auto weighted = fit_logit_linear(probs, labels, weights, 10, 0);
  ASSERT_TRUE(weighted);
  EXPECT_LT(weighted->intercept, free_fit->intercept - 0.3);
}

TEST(LogitLinearTest, RejectsBadInput) {
  const std::vector<double> probs(20, 0.1);
  const std::vector<float> labels(20, 0.f);
  EXPECT_FALSE(fit_logit_linear(probs, std::vector<float>(19, 0.f), {}, 1, 1));
  EXPECT_FALSE(fit_logit_linear(std::vector<double>(5, 0.1), std::vector<float>(5, 0.f), {}, 1, 1));
  EXPECT_FALSE(fit_logit_linear(probs, labels, std::vector<float>(3, 1.f), 1, 1));
  EXPECT_FALSE(fit_logit_linear(probs, labels, {}, -1, 1));
  std::vector<double> bad = probs;
  bad[3] = std::nan("");
  EXPECT_FALSE(fit_logit_linear(bad, labels, {}, 1, 1));
  EXPECT_TRUE(std::isnan(LogitLinear{}.apply(std::nan(""))));
  EXPECT_DOUBLE_EQ(LogitLinear{}.apply(0.0), 0.0005);
  EXPECT_NEAR(LogitLinear{}.apply(0.3), 0.3, 1e-12);
}

TEST(AgeLogitCalibrationTest, InterpolatesInLogAgeAndHoldsTheEnds) {
  auto cal = AgeLogitCalibration::make({{1, {0.2, 1.0}}, {24, {-0.2, 1.0}}, {168, {0.0, 0.9}}});
  ASSERT_TRUE(cal) << cal.status().to_string();
  auto expect = [](double a, double b, double p) { return LogitLinear{a, b}.apply(p); };
  EXPECT_NEAR(cal->apply(0.1, 0), expect(0.2, 1.0, 0.1), 1e-12);
  EXPECT_NEAR(cal->apply(0.1, 1), expect(0.2, 1.0, 0.1), 1e-12);
  EXPECT_NEAR(cal->apply(0.1, 24), expect(-0.2, 1.0, 0.1), 1e-12);
  EXPECT_NEAR(cal->apply(0.1, 5000), expect(0.0, 0.9, 0.1), 1e-12);
  // Halfway in log1p(age) between 1 h and 24 h: intercept 0.
  const double mid = std::expm1(0.5 * (std::log1p(1.0) + std::log1p(24.0)));
  EXPECT_NEAR(cal->apply(0.1, mid), 0.1, 1e-9);
  EXPECT_NEAR(cal->apply(0.1, std::nan("")), expect(0.2, 1.0, 0.1), 1e-12);

  auto round_trip = AgeLogitCalibration::from_json(cal->to_json());
  ASSERT_TRUE(round_trip) << round_trip.status().to_string();
  for (double age : {0.0, 3.0, 50.0, 400.0}) EXPECT_DOUBLE_EQ(round_trip->apply(0.07, age), cal->apply(0.07, age));
  EXPECT_NEAR(AgeLogitCalibration{}.apply(0.123, 5), 0.123, 1e-15);
}

TEST(AgeLogitCalibrationTest, RejectsMalformedAnchors) {
  EXPECT_FALSE(AgeLogitCalibration::make({{24, {0, 1}}, {1, {0, 1}}}));
  EXPECT_FALSE(AgeLogitCalibration::make({{1, {0, 0}}}));
  EXPECT_FALSE(AgeLogitCalibration::make({{-1, {0, 1}}}));
  EXPECT_FALSE(AgeLogitCalibration::from_json("not json"));
  EXPECT_FALSE(AgeLogitCalibration::from_json(R"({"ages_hours":[1],"intercept":[0]})"));
  EXPECT_FALSE(AgeLogitCalibration::from_json(R"({"ages_hours":[1,2],"intercept":[0,0],"slope":[1]})"));
  EXPECT_FALSE(AgeLogitCalibration::from_json(R"({"ages_hours":["1"],"intercept":[0],"slope":[1]})"));
  EXPECT_TRUE(AgeLogitCalibration::from_json(R"({"ages_hours":[],"intercept":[],"slope":[]})"));
}

}  // namespace
}  // namespace reai::models
