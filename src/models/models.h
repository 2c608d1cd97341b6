// Models: gradient-boosted trees through XGBoost's C API, a native compiled
// forest for the hot path, probability calibration and evaluation metrics.
//
// XGBoost's own single-row predict costs ~50 us per call (it parses its JSON
// configuration every time), so serving never calls it per event: a trained
// Booster is exported to JSON and compiled into a CompiledForest, which
// evaluates trees from flat arrays and computes SHAP contributions natively.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"

namespace reai::models {

// Dense row-major matrix of features; NaN marks a missing value.
struct DenseMatrix {
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<float> values;  // rows * cols

  DenseMatrix() = default;
  DenseMatrix(std::size_t r, std::size_t c);
  float* row(std::size_t i) { return values.data() + i * cols; }
  const float* row(std::size_t i) const { return values.data() + i * cols; }
  // Appends one row; `row.size()` must equal cols.
  void append_row(std::span<const float> row);
};

struct TrainParams {
  std::string objective = "binary:logistic";  // any XGBoost objective
  std::string eval_metric;                    // empty: XGBoost's default for the objective
  int max_depth = 6;
  double eta = 0.05;
  int num_rounds = 500;
  int early_stopping_rounds = 50;  // needs a validation set; 0 disables
  double subsample = 0.8;
  double colsample_bytree = 0.8;
  double min_child_weight = 1.0;
  double reg_lambda = 1.0;
  double reg_alpha = 0.0;
  int nthread = 0;  // 0: all cores
  int seed = 42;
  bool verbose = false;  // per-round evaluation to stderr
  // Any further XGBoost parameter, e.g. {"aft_loss_distribution", "normal"}.
  std::vector<std::pair<std::string, std::string>> extra;
};

// Owning RAII handle over an XGBoost booster. Movable, not copyable.
// Thread-safety: const methods may be called concurrently (XGBoost's predict
// is thread-safe for a trained booster); train/load are not.
// Lifetime: do not destroy a Booster that has predicted during static
// destruction (a function-local static): XGBoost 1.7 frees per-thread state
// first and its destructor then aborts. Destroy it before main returns.
class Booster {
 public:
  Booster(Booster&&) noexcept;
  Booster& operator=(Booster&&) noexcept;
  Booster(const Booster&) = delete;
  Booster& operator=(const Booster&) = delete;
  ~Booster();

  // Trains on (x, labels, weights). `weights` may be empty. With a validation
  // set and early_stopping_rounds > 0 training stops when the validation
  // metric has not improved for that many rounds and the booster keeps the
  // best iteration only. Fails with InvalidArgument on shape mismatches or
  // empty data, Internal with XGBoost's message on library errors.
  static Result<Booster> train(const DenseMatrix& x, std::span<const float> labels,
                               std::span<const float> weights, const DenseMatrix* valid_x,
                               std::span<const float> valid_labels, const TrainParams& params);
  // survival:aft training: each row's target lies in [lower, upper] (upper =
  // +inf when right-censored; lower == upper when observed). Same contract as
  // train(); params.objective should be "survival:aft".
  static Result<Booster> train_aft(const DenseMatrix& x, std::span<const float> lower,
                                   std::span<const float> upper, std::span<const float> weights,
                                   const DenseMatrix* valid_x, std::span<const float> valid_lower,
                                   std::span<const float> valid_upper, const TrainParams& params);
  // Loads a model saved by save_json / save_file (XGBoost JSON format).
  static Result<Booster> load_json(const std::string& json);
  static Result<Booster> load_file(const std::string& path);

  Result<std::string> save_json() const;
  Status save_file(const std::string& path) const;

  // One output per row (probability for binary:logistic unless output_margin).
  Result<std::vector<float>> predict(const DenseMatrix& x, bool output_margin = false) const;
  // SHAP contributions: rows * (num_features + 1), the last column is the bias.
  Result<std::vector<float>> contributions(const DenseMatrix& x) const;

  std::size_t num_features() const;
  // Boosting rounds kept (after early stopping).
  int num_rounds() const { return num_rounds_; }

 private:
  struct Labels;  // plain or interval labels for one data set
  Booster(void* handle, int num_rounds) : handle_(handle), num_rounds_(num_rounds) {}
  static Result<Booster> train_impl(const DenseMatrix& x, const Labels& train,
                                    const DenseMatrix* valid_x, const Labels& valid,
                                    const TrainParams& params);
  Result<std::vector<float>> predict_type(const DenseMatrix& x, int type) const;
  void* handle_ = nullptr;  // BoosterHandle
  int num_rounds_ = 0;
};

// One node of a tree of XGBoost's JSON model format, as stored: children are
// indices within its tree (left < 0: a leaf, whose value XGBoost keeps in
// `condition`), `cover` its training sum of hessians.
struct XgbTreeNode {
  double left, right, feature, condition, default_left, cover;
};
// The trees of an XGBoost JSON model (learner.gradient_booster.model.trees),
// each its nodes in XGBoost's order, for the readers of the same trees
// (CompiledForest, scoring's path attribution): one gbtree output, numerical
// splits, every tree array present, of its tree's length and numeric.
// InvalidArgument naming what is missing or malformed; FailedPrecondition for
// a model of another kind (multi-output, categorical splits). Node indices
// and features are not range-checked here: each reader checks them against
// its own layout.
Result<std::vector<std::vector<XgbTreeNode>>> read_xgboost_trees(std::string_view model_json);

// A tree ensemble compiled from XGBoost JSON into flat arrays for fast
// single-row evaluation on the hot path. Immutable after construction, so it
// is safe to share across threads. Supports gbtree boosters with numerical
// splits and depth <= 128 (all reai models); anything else fails to compile
// with FailedPrecondition.
class CompiledForest {
 public:
  // `model_json` is Booster::save_json() output.
  static Result<CompiledForest> compile(const std::string& model_json);

  std::size_t num_features() const { return num_features_; }
  std::size_t num_trees() const { return roots_.size(); }
  // Raw margin (sum of leaves + base score in margin space). NaN = missing;
  // `row` must hold num_features() values. ~3.4 us for 300 depth-6 trees,
  // no allocation.
  double predict_margin(const float* row) const;
  // Output in the objective's space: logistic -> probability, squared error ->
  // value, survival:aft -> exp(margin).
  double predict(const float* row) const;
  // Exact TreeSHAP contributions in margin space into `out`, which must hold
  // num_features() + 1 values (last = bias); they sum to predict_margin(row).
  // Cost: ~1.4 ms for 300 depth-6 trees (see models_benchmark), so not per
  // event on the hot path. Thread-safe; allocates only on a thread's first call.
  void shap_values(const float* row, std::span<double> out) const;
  // Path attribution (Saabas): each split on the row's path credits its
  // feature with the change in the cover-weighted expected value. Same layout,
  // bias and sum as shap_values at ~1/250 of the cost (~3 us for 300 depth-6
  // trees), but not exact Shapley values: check it ranks the same top
  // features before using it for reasons. Returns predict_margin(row) (to
  // double rounding), so one walk gives a score and its reasons.
  double path_contributions(const float* row, std::span<double> out) const;

 private:
  struct Node {
    float threshold;   // go left when value < threshold
    std::int32_t feature;  // -1 for a leaf
    std::int32_t left;     // index into nodes_ (absolute)
    std::int32_t right;
    std::int32_t default_child;  // where a missing value goes
    float value;       // leaf value
    float cover;       // training cover (hessian sum), for TreeSHAP
  };
  // Hot-path copy of nodes_, 16 bytes each. A leaf points to itself on both
  // sides and keeps its value in `threshold`, so every tree can be walked a
  // fixed number of steps without branches, several trees interleaved.
  static constexpr std::uint32_t kDefaultLeftBit = 0x80000000u;
  struct FastNode {
    float threshold;         // leaf: the leaf value
    std::uint32_t feature;   // low 31 bits: feature; top bit: missing goes left
    std::int32_t child[2];   // [0] right (x >= threshold), [1] left
  };
  std::vector<Node> nodes_;
  std::vector<FastNode> fast_;
  std::vector<std::int32_t> roots_;
  std::vector<int> max_depths_;
  std::size_t num_features_ = 0;
  double base_margin_ = 0;
  enum class Link { kIdentity, kLogistic, kExp } link_ = Link::kIdentity;
  int max_depth_ = 0;
  double expected_margin_ = 0;        // SHAP bias: base margin + cover-weighted leaf means
  std::vector<double> reciprocals_;   // 1/k for TreeSHAP's weight updates
  // Path attribution's copy of the trees, 24 bytes a node: each step of its
  // walk credits the change in expected value, so that value sits in the node
  // the step reads (a separate array of values cost ~25% more per lead
  // event). A leaf points to itself, as in FastNode.
  struct PathNode {
    float threshold;         // go left when value < threshold
    std::uint32_t feature;   // low 31 bits: feature; top bit: missing goes left
    std::int32_t child[2];   // [0] right, [1] left, absolute indices
    double expected;         // cover-weighted mean leaf value below the node
  };
  std::vector<PathNode> path_nodes_;

  friend class ForestCompiler;
};

// Monotone probability calibration (pool-adjacent-violators). Immutable after
// fit; apply() interpolates linearly between block centres and clamps to
// [0.0005, 0.9995] so no score is ever certain.
class IsotonicCalibrator {
 public:
  // Fails with InvalidArgument when sizes differ or fewer than 10 points.
  static Result<IsotonicCalibrator> fit(std::span<const double> scores, std::span<const float> labels);
  double apply(double score) const;
  // {"x":[...],"y":[...]} and back.
  std::string to_json() const;
  static Result<IsotonicCalibrator> from_json(const std::string& json);
  bool empty() const { return x_.empty(); }

 private:
  std::vector<double> x_;
  std::vector<double> y_;
};

// Logistic recalibration on the logit scale: p' = sigmoid(intercept + slope *
// logit(p)) (Platt scaling of a probability). Two parameters, so it cannot
// bend the ranking (slope > 0 keeps AUC) and varies little between fits.
struct LogitLinear {
  double intercept = 0;
  double slope = 1;
  // Clamps p to [1e-6, 1 - 1e-6] before the logit and the result to
  // [0.0005, 0.9995] like the isotonic map; NaN stays NaN.
  double apply(double p) const;
};

// Penalized (MAP) logistic fit of labels on logit(probs): a Gaussian prior
// centred on the identity (intercept 0, slope 1) with standard deviations
// `intercept_sd` and `slope_sd` (0: that parameter is held at its prior
// centre), so a small or one-sided slice moves the map little. `weights` may
// be empty (all 1). InvalidArgument on size mismatch, non-finite input,
// negative sds or fewer than 10 rows.
Result<LogitLinear> fit_logit_linear(std::span<const double> probs, std::span<const float> labels,
                                     std::span<const float> weights, double intercept_sd, double slope_sd);

// One LogitLinear per anchor age (hours since the lead was created); apply()
// interpolates intercept and slope linearly in log1p(age) between anchors
// and holds the end anchors' maps beyond them. Immutable after construction;
// thread-safe to share. An empty calibration is the identity.
class AgeLogitCalibration {
 public:
  struct Anchor {
    double age_hours = 0;
    LogitLinear map;
  };
  // Anchors must have finite, strictly increasing ages >= 0, finite
  // intercepts and slopes > 0 (InvalidArgument otherwise).
  static Result<AgeLogitCalibration> make(std::vector<Anchor> anchors);
  double apply(double p, double age_hours) const;
  bool empty() const { return anchors_.empty(); }
  const std::vector<Anchor>& anchors() const { return anchors_; }
  // {"ages_hours":[...],"intercept":[...],"slope":[...]} and back.
  std::string to_json() const;
  static Result<AgeLogitCalibration> from_json(const std::string& json);

 private:
  std::vector<Anchor> anchors_;
  std::vector<double> log_ages_;  // log1p(age_hours) per anchor
};

// Metrics. All take parallel arrays and return NaN when undefined (e.g. AUC
// with one class).
double roc_auc(std::span<const double> scores, std::span<const float> labels);
double brier_score(std::span<const double> probs, std::span<const float> labels);
double log_loss(std::span<const double> probs, std::span<const float> labels);
// Expected calibration error over `bins` equal-count bins (EVALUATION.md).
double expected_calibration_error(std::span<const double> probs, std::span<const float> labels,
                                  int bins = 10);

}  // namespace reai::models
