#include <gtest/gtest.h>

#include <cmath>

#include "models/models.h"

namespace reai::models {
namespace {

TEST(MetricsTest, AucCountsTiesAsHalf) {
  // Positives 0.35, 0.8, 0.4 against negatives 0.1, 0.4: 4.5 of 6 pairs.
  std::vector<double> s = {0.1, 0.4, 0.35, 0.8, 0.4};
  std::vector<float> y = {0, 0, 1, 1, 1};
  EXPECT_DOUBLE_EQ(roc_auc(s, y), 0.75);
  std::vector<double> all_tied(5, 0.3);
  EXPECT_DOUBLE_EQ(roc_auc(all_tied, y), 0.5);
  std::vector<double> perfect = {0.1, 0.2, 0.7, 0.8, 0.9};
  EXPECT_DOUBLE_EQ(roc_auc(perfect, y), 1.0);
}

TEST(MetricsTest, AucUndefinedCases) {
  std::vector<double> s = {0.1, 0.2, 0.3};
  std::vector<float> ones = {1, 1, 1};
  EXPECT_TRUE(std::isnan(roc_auc(s, ones)));
  std::vector<float> two = {0, 1};
  EXPECT_TRUE(std::isnan(roc_auc(s, two)));
  EXPECT_TRUE(std::isnan(roc_auc({}, {})));
}

TEST(MetricsTest, BrierAndLogLoss) {
  std::vector<double> p = {0.1, 0.9, 0.5};
  std::vector<float> y = {0, 1, 1};
  EXPECT_NEAR(brier_score(p, y), 0.09, 1e-12);
  std::vector<double> q = {0.5, 0.8};
  std::vector<float> z = {1, 0};
  EXPECT_NEAR(log_loss(q, z), (std::log(2.0) + std::log(5.0)) / 2, 1e-12);
  std::vector<double> certain_wrong = {0.0};
  std::vector<float> one = {1};
  EXPECT_TRUE(std::isfinite(log_loss(certain_wrong, one)));
  EXPECT_TRUE(std::isnan(brier_score(p, z)));
  EXPECT_TRUE(std::isnan(log_loss({}, {})));
}

TEST(MetricsTest, ExpectedCalibrationErrorEqualCountBins) {
  // Sorted: bin 1 = {0.1..0.4} mean p 0.25, mean y 0; bin 2 = {0.6..0.9} 0.75 vs 1.
  std::vector<double> p = {0.9, 0.1, 0.6, 0.3, 0.8, 0.2, 0.7, 0.4};
  std::vector<float> y = {1, 0, 1, 0, 1, 0, 1, 0};
  EXPECT_NEAR(expected_calibration_error(p, y, 2), 0.25, 1e-12);
  // One bin: |mean p - mean y| = |0.5 - 0.5|.
  EXPECT_NEAR(expected_calibration_error(p, y, 1), 0.0, 1e-12);
  // Ten rows in three bins of 3, 3, 4.
  std::vector<double> q = {0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};
  std::vector<float> w = {0, 0, 1, 0, 1, 1, 1, 1, 1, 0};
  const double want = (3 * std::abs(0.1 - 1.0 / 3) + 3 * std::abs(0.4 - 2.0 / 3) + 4 * std::abs(0.75 - 0.75)) / 10;
  EXPECT_NEAR(expected_calibration_error(q, w, 3), want, 1e-12);
  // More bins than rows: empty bins are skipped, the rest are single rows.
  EXPECT_NEAR(expected_calibration_error(q, w, 20), 0.0 + (0.0 + 0.1 + 0.8 + 0.3 + 0.6 + 0.5 + 0.4 + 0.3 + 0.2 + 0.9) / 10,
              1e-12);
  EXPECT_TRUE(std::isnan(expected_calibration_error(p, w, 10)));
  EXPECT_TRUE(std::isnan(expected_calibration_error(p, y, 0)));
}

}  // namespace
}  // namespace reai::models
