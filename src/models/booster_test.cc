#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <unistd.h>

#include "models/models.h"
#include "models/synthetic_data.h"

namespace reai::models {
namespace {

using testing::make_synthetic;

TrainParams quick_params() {
  TrainParams p;
  p.max_depth = 4;
  p.eta = 0.2;
  p.num_rounds = 40;
  p.early_stopping_rounds = 0;
  p.nthread = 1;
  return p;
}

std::size_t tree_count(const std::string& model_json) {
  auto root = boost::json::parse(model_json);
  return root.at("learner").at("gradient_booster").at("model").at("trees").as_array().size();
}

TEST(DenseMatrixTest, AppendRowAndAccess) {
  DenseMatrix m(0, 3);
  const float a[] = {1, 2, 3};
  const float b[] = {4, 5, 6};
  m.append_row(a);
  m.append_row(b);
  ASSERT_EQ(m.rows, 2u);
  ASSERT_EQ(m.values.size(), 6u);
  EXPECT_EQ(m.row(1)[0], 4);
  EXPECT_EQ(m.row(0)[2], 3);
  DenseMatrix z(2, 2);
  EXPECT_EQ(z.values, std::vector<float>(4, 0.0f));
}

TEST(BoosterTest, TrainsAndPredictsProbabilities) {
  auto data = make_synthetic(1500, 8, 1);
  auto booster = Booster::train(data.x, data.binary, {}, nullptr, {}, quick_params());
  ASSERT_TRUE(booster) << booster.status().to_string();
  EXPECT_EQ(booster->num_features(), 8u);
  EXPECT_EQ(booster->num_rounds(), 40);
  auto probs = booster->predict(data.x);
  ASSERT_TRUE(probs);
  ASSERT_EQ(probs->size(), 1500u);
  std::vector<double> p(probs->begin(), probs->end());
  for (double v : p) {
    EXPECT_GT(v, 0);
    EXPECT_LT(v, 1);
  }
  EXPECT_GT(roc_auc(p, data.binary), 0.8);
  auto margins = booster->predict(data.x, /*output_margin=*/true);
  ASSERT_TRUE(margins);
  EXPECT_NEAR(1 / (1 + std::exp(-(*margins)[7])), (*probs)[7], 1e-6);
}

TEST(BoosterTest, WeightsChangeTheModel) {
  auto data = make_synthetic(800, 6, 2);
  std::vector<float> weights(800, 1.0f);
  for (std::size_t i = 0; i < weights.size(); i += 3) weights[i] = 5.0f;
  auto plain = Booster::train(data.x, data.binary, {}, nullptr, {}, quick_params());
  auto weighted = Booster::train(data.x, data.binary, weights, nullptr, {}, quick_params());
  ASSERT_TRUE(plain && weighted);
  EXPECT_NE(*plain->save_json(), *weighted->save_json());
}

TEST(BoosterTest, EarlyStoppingKeepsBestRounds) {
  auto train = make_synthetic(1000, 8, 3);
  auto valid = make_synthetic(500, 8, 4);
  TrainParams p = quick_params();
  p.eta = 0.6;  // overfits fast, so the validation loss turns early
  p.max_depth = 6;
  p.num_rounds = 300;
  p.early_stopping_rounds = 5;
  p.eval_metric = "logloss";
  auto booster = Booster::train(train.x, train.binary, {}, &valid.x, valid.binary, p);
  ASSERT_TRUE(booster) << booster.status().to_string();
  EXPECT_LT(booster->num_rounds(), 300);
  EXPECT_GE(booster->num_rounds(), 1);
  auto json = booster->save_json();
  ASSERT_TRUE(json);
  EXPECT_EQ(tree_count(*json), static_cast<std::size_t>(booster->num_rounds()));

  // Training is deterministic, so the kept rounds equal a run stopped there.
  TrainParams exact = p;
  exact.early_stopping_rounds = 0;
  exact.num_rounds = booster->num_rounds();
  auto same = Booster::train(train.x, train.binary, {}, nullptr, {}, exact);
  ASSERT_TRUE(same);
  EXPECT_EQ(*same->predict(valid.x), *booster->predict(valid.x));

  // And it is the best: one more round is not better on validation.
  TrainParams longer = p;
  longer.early_stopping_rounds = 0;
  longer.num_rounds = booster->num_rounds() + 1;
  auto next = Booster::train(train.x, train.binary, {}, nullptr, {}, longer);
  ASSERT_TRUE(next);
  auto best_pred = booster->predict(valid.x);
  auto next_pred = next->predict(valid.x);
  ASSERT_TRUE(best_pred && next_pred);
  std::vector<double> a(best_pred->begin(), best_pred->end()), b(next_pred->begin(), next_pred->end());
  EXPECT_LE(log_loss(a, valid.binary), log_loss(b, valid.binary) + 1e-6);
}

TEST(BoosterTest, AucMetricIsMaximized) {
  auto train = make_synthetic(800, 6, 5);
  auto valid = make_synthetic(400, 6, 6);
  TrainParams p = quick_params();
  p.num_rounds = 60;
  p.early_stopping_rounds = 10;
  p.eval_metric = "auc";
  auto booster = Booster::train(train.x, train.binary, {}, &valid.x, valid.binary, p);
  ASSERT_TRUE(booster) << booster.status().to_string();
  EXPECT_GE(booster->num_rounds(), 1);
  EXPECT_LE(booster->num_rounds(), 60);
}

TEST(BoosterTest, SaveLoadRoundTripPredictsIdentically) {
  auto data = make_synthetic(1000, 7, 7);
  auto booster = Booster::train(data.x, data.binary, {}, nullptr, {}, quick_params());
  ASSERT_TRUE(booster);
  auto json = booster->save_json();
  ASSERT_TRUE(json);
  auto loaded = Booster::load_json(*json);
  ASSERT_TRUE(loaded) << loaded.status().to_string();
  EXPECT_EQ(loaded->num_rounds(), booster->num_rounds());
  EXPECT_EQ(loaded->num_features(), 7u);
  EXPECT_EQ(*loaded->predict(data.x), *booster->predict(data.x));

  const std::string path =
      (std::filesystem::temp_directory_path() / ("reai_models_test_" + std::to_string(getpid()) + ".json"))
          .string();
  ASSERT_TRUE(booster->save_file(path).is_ok());
  auto from_file = Booster::load_file(path);
  std::filesystem::remove(path);
  ASSERT_TRUE(from_file) << from_file.status().to_string();
  EXPECT_EQ(*from_file->predict(data.x), *booster->predict(data.x));

  Booster moved = std::move(*loaded);
  EXPECT_EQ(*moved.predict(data.x), *booster->predict(data.x));
}

TEST(BoosterTest, ContributionsSumToMargin) {
  auto data = make_synthetic(600, 5, 8);
  auto booster = Booster::train(data.x, data.binary, {}, nullptr, {}, quick_params());
  ASSERT_TRUE(booster);
  auto contrib = booster->contributions(data.x);
  auto margin = booster->predict(data.x, true);
  ASSERT_TRUE(contrib && margin);
  ASSERT_EQ(contrib->size(), 600u * 6);
  for (std::size_t i = 0; i < 600; ++i) {
    double sum = 0;
    for (std::size_t j = 0; j < 6; ++j) sum += (*contrib)[i * 6 + j];
    EXPECT_NEAR(sum, (*margin)[i], 1e-4);
  }
}

TEST(BoosterTest, RejectsBadInput) {
  auto data = make_synthetic(100, 4, 9);
  TrainParams p = quick_params();
  std::vector<float> short_labels(data.binary.begin(), data.binary.end() - 1);
  EXPECT_EQ(Booster::train(data.x, short_labels, {}, nullptr, {}, p).status().code(),
            StatusCode::kInvalidArgument);
  std::vector<float> short_weights(10, 1.0f);
  EXPECT_EQ(Booster::train(data.x, data.binary, short_weights, nullptr, {}, p).status().code(),
            StatusCode::kInvalidArgument);
  DenseMatrix empty(0, 4);
  EXPECT_EQ(Booster::train(empty, {}, {}, nullptr, {}, p).status().code(), StatusCode::kInvalidArgument);
  DenseMatrix ragged = data.x;
  ragged.values.pop_back();
  EXPECT_EQ(Booster::train(ragged, data.binary, {}, nullptr, {}, p).status().code(),
            StatusCode::kInvalidArgument);
  std::vector<float> nan_labels = data.binary;
  nan_labels[3] = std::nanf("");
  EXPECT_EQ(Booster::train(data.x, nan_labels, {}, nullptr, {}, p).status().code(),
            StatusCode::kInvalidArgument);
  auto narrow = make_synthetic(50, 3, 10);
  EXPECT_EQ(Booster::train(data.x, data.binary, {}, &narrow.x, narrow.binary, p).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Booster::train(data.x, data.binary, {}, &data.x, short_labels, p).status().code(),
            StatusCode::kInvalidArgument);
  TrainParams zero = p;
  zero.num_rounds = 0;
  EXPECT_EQ(Booster::train(data.x, data.binary, {}, nullptr, {}, zero).status().code(),
            StatusCode::kInvalidArgument);

  TrainParams bad_objective = p;
  bad_objective.objective = "no:such-objective";
  auto failed = Booster::train(data.x, data.binary, {}, nullptr, {}, bad_objective);
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.status().code(), StatusCode::kInternal);
  EXPECT_NE(failed.status().message().find("no:such-objective"), std::string::npos);

  EXPECT_EQ(Booster::load_json("").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Booster::load_json("{not json").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Booster::load_json("{}").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Booster::load_json(R"({"learner":{"gradient_booster":7}})").status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Booster::load_file("/nonexistent/reai/model.json").status().code(), StatusCode::kNotFound);

  auto booster = Booster::train(data.x, data.binary, {}, nullptr, {}, p);
  ASSERT_TRUE(booster);
  EXPECT_EQ(booster->predict(narrow.x).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(booster->contributions(narrow.x).status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(booster->predict(DenseMatrix(0, 4))->empty());
}

TEST(BoosterTest, TrainsSurvivalAft) {
  auto data = make_synthetic(800, 6, 11);
  std::vector<float> lower = data.duration;
  std::vector<float> upper = data.duration;
  for (std::size_t i = 0; i < upper.size(); i += 4) upper[i] = std::numeric_limits<float>::infinity();
  TrainParams p = quick_params();
  p.objective = "survival:aft";
  p.extra = {{"aft_loss_distribution", "normal"}, {"aft_loss_distribution_scale", "1.0"}};
  auto booster = Booster::train_aft(data.x, lower, upper, {}, nullptr, {}, {}, p);
  ASSERT_TRUE(booster) << booster.status().to_string();
  auto pred = booster->predict(data.x);
  ASSERT_TRUE(pred);
  for (float v : *pred) EXPECT_GT(v, 0);
  std::vector<float> inverted = upper;
  inverted[1] = lower[1] / 2;
  EXPECT_EQ(Booster::train_aft(data.x, lower, inverted, {}, nullptr, {}, {}, p).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace reai::models
