#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cmath>
#include <limits>
#include <memory>

#include "models/models.h"
#include "models/synthetic_data.h"

namespace reai::models {
namespace {

using testing::make_synthetic;
using testing::SyntheticData;

constexpr std::size_t kCols = 12;

TrainParams forest_params(const std::string& objective) {
  TrainParams p;
  p.objective = objective;
  p.max_depth = 6;
  p.eta = 0.15;
  p.num_rounds = 60;
  p.early_stopping_rounds = 0;
  p.nthread = 1;
  return p;
}

// One binary model shared by the tests: training is the slow part.
class CompiledForestTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    train_ = new SyntheticData(make_synthetic(3000, kCols, 21));
    test_ = new SyntheticData(make_synthetic(3000, kCols, 22, 0.2));
    auto b = Booster::train(train_->x, train_->binary, {}, nullptr, {}, forest_params("binary:logistic"));
    ASSERT_TRUE(b) << b.status().to_string();
    booster_ = new Booster(std::move(*b));
    auto json = booster_->save_json();
    ASSERT_TRUE(json);
    json_ = new std::string(*json);
  }
  static void TearDownTestSuite() {
    delete train_;
    delete test_;
    delete booster_;
    delete json_;
  }
  static SyntheticData* train_;
  static SyntheticData* test_;
  static Booster* booster_;
  static std::string* json_;
};
SyntheticData* CompiledForestTest::train_ = nullptr;
SyntheticData* CompiledForestTest::test_ = nullptr;
Booster* CompiledForestTest::booster_ = nullptr;
std::string* CompiledForestTest::json_ = nullptr;

void expect_margins_match(const CompiledForest& forest, const Booster& booster, const DenseMatrix& x) {
  auto margins = booster.predict(x, true);
  auto outputs = booster.predict(x);
  ASSERT_TRUE(margins && outputs);
  for (std::size_t i = 0; i < x.rows; ++i) {
    const double want = (*margins)[i];
    ASSERT_NEAR(forest.predict_margin(x.row(i)), want, 1e-5 * std::max(1.0, std::abs(want))) << "row " << i;
    const double out = (*outputs)[i];
    ASSERT_NEAR(forest.predict(x.row(i)), out, 1e-5 * std::max(1.0, std::abs(out))) << "row " << i;
  }
}

TEST_F(CompiledForestTest, MatchesXGBoostOnThousandsOfRows) {
  auto forest = CompiledForest::compile(*json_);
  ASSERT_TRUE(forest) << forest.status().to_string();
  EXPECT_EQ(forest->num_features(), kCols);
  EXPECT_EQ(forest->num_trees(), 60u);
  auto probs = booster_->predict(test_->x);
  auto margins = booster_->predict(test_->x, true);
  ASSERT_TRUE(probs && margins);
  for (std::size_t i = 0; i < test_->x.rows; ++i) {
    ASSERT_NEAR(forest->predict(test_->x.row(i)), (*probs)[i], 1e-6) << "row " << i;
    const double m = (*margins)[i];
    ASSERT_NEAR(forest->predict_margin(test_->x.row(i)), m, 1e-5 * std::max(1.0, std::abs(m))) << "row " << i;
  }
  expect_margins_match(*forest, *booster_, train_->x);
}

TEST_F(CompiledForestTest, MissingAndExtremeValuesFollowXGBoost) {
  auto forest = CompiledForest::compile(*json_);
  ASSERT_TRUE(forest);
  DenseMatrix x(0, kCols);
  std::vector<float> row(kCols, std::nanf(""));
  x.append_row(row);  // everything missing: default directions only
  for (float v : {-1e30f, 1e30f, 0.0f, -0.0f, 1.0f, -2.0f}) {
    std::fill(row.begin(), row.end(), v);
    x.append_row(row);
  }
  // Values exactly on split thresholds must go right (x < t goes left).
  auto json = boost::json::parse(*json_);
  const auto& tree = json.at("learner").at("gradient_booster").at("model").at("trees").at(0);
  const auto& cond = tree.at("split_conditions").as_array();
  const auto& feat = tree.at("split_indices").as_array();
  const auto& left = tree.at("left_children").as_array();
  for (std::size_t n = 0; n < cond.size(); ++n) {
    if (left[n].to_number<int>() < 0) continue;
    std::fill(row.begin(), row.end(), 0.0f);
    row[feat[n].to_number<int>()] = static_cast<float>(cond[n].to_number<double>());
    x.append_row(row);
  }
  expect_margins_match(*forest, *booster_, x);
}

TEST_F(CompiledForestTest, ShapEqualsXGBoostContributions) {
  auto forest = CompiledForest::compile(*json_);
  ASSERT_TRUE(forest);
  DenseMatrix x(0, kCols);
  for (std::size_t i = 0; i < 400; ++i) x.append_row({test_->x.row(i), kCols});
  auto contrib = booster_->contributions(x);
  ASSERT_TRUE(contrib);
  ASSERT_EQ(contrib->size(), 400 * (kCols + 1));
  std::vector<double> phi(kCols + 1);
  for (std::size_t i = 0; i < x.rows; ++i) {
    forest->shap_values(x.row(i), phi);
    double sum = 0;
    for (std::size_t j = 0; j <= kCols; ++j) {
      const double want = (*contrib)[i * (kCols + 1) + j];
      ASSERT_NEAR(phi[j], want, 1e-4 * std::max(1.0, std::abs(want))) << "row " << i << " feature " << j;
      sum += phi[j];
    }
    ASSERT_NEAR(sum, forest->predict_margin(x.row(i)), 1e-6) << "row " << i;
  }
}

TEST_F(CompiledForestTest, PathContributionsSumToMarginAndRankLikeShap) {
  auto forest = CompiledForest::compile(*json_);
  ASSERT_TRUE(forest);
  std::vector<double> phi(kCols + 1), path(kCols + 1);
  int same_top = 0;
  const int rows = 500;
  for (int i = 0; i < rows; ++i) {
    const float* row = test_->x.row(i);
    forest->shap_values(row, phi);
    forest->path_contributions(row, path);
    EXPECT_DOUBLE_EQ(path[kCols], phi[kCols]);  // same bias
    double sum = 0;
    for (double v : path) sum += v;
    ASSERT_NEAR(sum, forest->predict_margin(row), 1e-6);
    auto top = [](const std::vector<double>& v) {
      return std::max_element(v.begin(), v.end() - 1, [](double a, double b) { return std::abs(a) < std::abs(b); }) -
             v.begin();
    };
    same_top += top(phi) == top(path);
  }
  // Path attribution is an approximation: on this data it names the same
  // strongest feature as TreeSHAP for 422 of 500 rows.
  EXPECT_GT(same_top, rows * 3 / 4);
}

TEST_F(CompiledForestTest, ShapOfAllMissingRowIsExact) {
  auto forest = CompiledForest::compile(*json_);
  ASSERT_TRUE(forest);
  std::vector<float> row(kCols, std::nanf(""));
  std::vector<double> phi(kCols + 1);
  forest->shap_values(row.data(), phi);
  double sum = 0;
  for (double v : phi) sum += v;
  EXPECT_NEAR(sum, forest->predict_margin(row.data()), 1e-9);
}

TEST(CompiledForestObjectives, SquaredErrorMatches) {
  auto train = make_synthetic(2000, 8, 31);
  auto test = make_synthetic(2000, 8, 32);
  auto booster = Booster::train(train.x, train.continuous, {}, nullptr, {}, forest_params("reg:squarederror"));
  ASSERT_TRUE(booster);
  auto forest = CompiledForest::compile(*booster->save_json());
  ASSERT_TRUE(forest) << forest.status().to_string();
  expect_margins_match(*forest, *booster, test.x);
  auto contrib = booster->contributions(test.x);
  ASSERT_TRUE(contrib);
  std::vector<double> phi(9);
  for (std::size_t i = 0; i < 200; ++i) {
    forest->shap_values(test.x.row(i), phi);
    for (std::size_t j = 0; j < 9; ++j) ASSERT_NEAR(phi[j], (*contrib)[i * 9 + j], 1e-4);
  }
}

TEST(CompiledForestObjectives, SurvivalAftMatches) {
  auto train = make_synthetic(2000, 8, 33);
  auto test = make_synthetic(2000, 8, 34);
  std::vector<float> upper = train.duration;
  for (std::size_t i = 0; i < upper.size(); i += 3) upper[i] = std::numeric_limits<float>::infinity();
  TrainParams p = forest_params("survival:aft");
  p.extra = {{"aft_loss_distribution", "logistic"}};
  auto booster = Booster::train_aft(train.x, train.duration, upper, {}, nullptr, {}, {}, p);
  ASSERT_TRUE(booster) << booster.status().to_string();
  auto forest = CompiledForest::compile(*booster->save_json());
  ASSERT_TRUE(forest) << forest.status().to_string();
  expect_margins_match(*forest, *booster, test.x);
}

TEST(CompiledForestObjectives, NonDefaultBaseScoreMatches) {
  auto train = make_synthetic(1000, 6, 35);
  TrainParams p = forest_params("binary:logistic");
  p.num_rounds = 10;
  p.extra = {{"base_score", "0.2"}};
  auto booster = Booster::train(train.x, train.binary, {}, nullptr, {}, p);
  ASSERT_TRUE(booster);
  auto forest = CompiledForest::compile(*booster->save_json());
  ASSERT_TRUE(forest);
  expect_margins_match(*forest, *booster, train.x);
}

// The shared reader sees the trees CompiledForest compiles: as many, each
// node as stored (children after parents, leaves with left < 0), and it
// refuses what the forest refuses, plus a non-finite field (1e999).
TEST_F(CompiledForestTest, ReadXgboostTreesGivesEachTreesNodesAsStored) {
  auto trees = read_xgboost_trees(*json_);
  ASSERT_TRUE(trees) << trees.status().to_string();
  auto forest = CompiledForest::compile(*json_);
  ASSERT_TRUE(forest);
  ASSERT_EQ(trees->size(), forest->num_trees());
  auto root = boost::json::parse(*json_);
  const auto& first = root.at("learner").at("gradient_booster").at("model").at("trees").at(0).as_object();
  const auto& left = first.at("left_children").as_array();
  const auto& conditions = first.at("split_conditions").as_array();
  ASSERT_EQ((*trees)[0].size(), left.size());
  for (std::size_t i = 0; i < left.size(); ++i) {
    const XgbTreeNode& node = (*trees)[0][i];
    EXPECT_EQ(node.left, left[i].to_number<double>()) << i;
    EXPECT_EQ(node.condition, conditions[i].to_number<double>()) << i;
    if (node.left >= 0) {
      EXPECT_GT(node.left, double(i)) << i;
    }
  }

  auto broken = root;
  broken.at("learner").at("gradient_booster").at("model").at("trees").at(0).at("split_conditions").as_array()[0] =
      std::numeric_limits<double>::infinity();
  std::string text = boost::json::serialize(broken);  // Boost writes infinity as 1e99999
  EXPECT_EQ(read_xgboost_trees(text).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CompiledForest::compile(text).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(read_xgboost_trees("{garbage").status().code(), StatusCode::kInvalidArgument);
  broken = root;
  broken.at("learner").at("gradient_booster").at("name") = "gblinear";
  EXPECT_EQ(read_xgboost_trees(boost::json::serialize(broken)).status().code(), StatusCode::kFailedPrecondition);
}

TEST(CompiledForestErrors, RejectsBadModels) {
  EXPECT_EQ(CompiledForest::compile("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CompiledForest::compile("{garbage").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CompiledForest::compile("[1,2]").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CompiledForest::compile(R"({"learner":{}})").status().code(), StatusCode::kInvalidArgument);

  auto data = make_synthetic(500, 5, 36);
  TrainParams p = forest_params("binary:logistic");
  p.num_rounds = 5;
  p.max_depth = 3;

  TrainParams dart = p;
  dart.extra = {{"booster", "dart"}};
  auto dart_booster = Booster::train(data.x, data.binary, {}, nullptr, {}, dart);
  ASSERT_TRUE(dart_booster) << dart_booster.status().to_string();
  EXPECT_EQ(CompiledForest::compile(*dart_booster->save_json()).status().code(), StatusCode::kFailedPrecondition);

  TrainParams multi = p;
  multi.objective = "multi:softprob";
  multi.extra = {{"num_class", "3"}};
  std::vector<float> classes(data.x.rows);
  for (std::size_t i = 0; i < classes.size(); ++i) classes[i] = static_cast<float>(i % 3);
  auto multi_booster = Booster::train(data.x, classes, {}, nullptr, {}, multi);
  ASSERT_TRUE(multi_booster) << multi_booster.status().to_string();
  EXPECT_EQ(CompiledForest::compile(*multi_booster->save_json()).status().code(), StatusCode::kFailedPrecondition);

  auto good = Booster::train(data.x, data.binary, {}, nullptr, {}, p);
  ASSERT_TRUE(good);
  auto json = boost::json::parse(*good->save_json());
  auto& tree = json.at("learner").at("gradient_booster").at("model").at("trees").at(0).as_object();

  auto broken = json;
  broken.at("learner").at("gradient_booster").at("model").at("trees").at(0).as_object().erase("sum_hessian");
  EXPECT_EQ(CompiledForest::compile(boost::json::serialize(broken)).status().code(), StatusCode::kInvalidArgument);

  broken = json;
  auto& bt = broken.at("learner").at("gradient_booster").at("model").at("trees").at(0).as_object();
  bt["right_children"].as_array()[0] = 999;
  EXPECT_EQ(CompiledForest::compile(boost::json::serialize(broken)).status().code(), StatusCode::kInvalidArgument);

  broken = json;
  auto& ct = broken.at("learner").at("gradient_booster").at("model").at("trees").at(0).as_object();
  ct["split_indices"].as_array()[0] = 77;
  EXPECT_EQ(CompiledForest::compile(boost::json::serialize(broken)).status().code(), StatusCode::kInvalidArgument);

  broken = json;
  auto& cyc = broken.at("learner").at("gradient_booster").at("model").at("trees").at(0).as_object();
  cyc["left_children"].as_array()[1] = 0;
  EXPECT_EQ(CompiledForest::compile(boost::json::serialize(broken)).status().code(), StatusCode::kInvalidArgument);

  const std::string text = boost::json::serialize(json);
  EXPECT_EQ(CompiledForest::compile(text.substr(0, text.size() / 2)).status().code(),
            StatusCode::kInvalidArgument);

  broken = json;
  broken.at("learner").at("learner_model_param").at("num_feature") = "zero";
  EXPECT_EQ(CompiledForest::compile(boost::json::serialize(broken)).status().code(),
            StatusCode::kInvalidArgument);

  broken = json;
  broken.at("learner").at("objective").at("name") = "rank:unknown";
  EXPECT_EQ(CompiledForest::compile(boost::json::serialize(broken)).status().code(),
            StatusCode::kFailedPrecondition);
  (void)tree;
}

}  // namespace
}  // namespace reai::models
