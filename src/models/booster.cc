// Booster: RAII over XGBoost's C API, and the DenseMatrix helpers it consumes.
#include <xgboost/c_api.h>

#include <cassert>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>
#include <string_view>
#include <utility>
#include <vector>

#include "models/models.h"

namespace reai::models {

DenseMatrix::DenseMatrix(std::size_t r, std::size_t c) : rows(r), cols(c), values(r * c, 0.0f) {}

void DenseMatrix::append_row(std::span<const float> row) {
  assert(row.size() == cols && "append_row: row width differs from cols");
  values.insert(values.end(), row.begin(), row.end());
  ++rows;
}

namespace {

Status xgb_error(std::string_view call) {
  return internal_error("xgboost " + std::string(call) + ": " + XGBGetLastError());
}

#define REAI_XGB_CHECK(call)                          \
  do {                                                \
    if ((call) != 0) return xgb_error(#call);         \
  } while (0)

// Owns one DMatrixHandle.
class DMatrix {
 public:
  DMatrix() = default;
  DMatrix(const DMatrix&) = delete;
  DMatrix& operator=(const DMatrix&) = delete;
  ~DMatrix() {
    if (handle_ != nullptr) XGDMatrixFree(handle_);
  }
  DMatrixHandle* out() { return &handle_; }
  DMatrixHandle get() const { return handle_; }

 private:
  DMatrixHandle handle_ = nullptr;
};

Status check_shape(const DenseMatrix& x, std::string_view what) {
  if (x.rows == 0 || x.cols == 0) return invalid_argument(std::string(what) + ": empty matrix");
  if (x.values.size() != x.rows * x.cols) {
    return invalid_argument(std::string(what) + ": values hold " + std::to_string(x.values.size()) +
                            " floats, expected rows*cols = " + std::to_string(x.rows * x.cols));
  }
  return Status::ok();
}

Status make_dmatrix(const DenseMatrix& x, int nthread, DMatrix& out) {
  REAI_XGB_CHECK(XGDMatrixCreateFromMat_omp(x.values.data(), x.rows, x.cols,
                                            std::numeric_limits<float>::quiet_NaN(), out.out(),
                                            nthread));
  return Status::ok();
}

// Metrics where a larger value is better (XGBoost's own list).
bool metric_maximizes(std::string_view name) {
  std::string_view base = name.substr(0, name.find('@'));
  return base == "auc" || base == "aucpr" || base == "map" || base == "ndcg" || base == "pre";
}

// "[3]\tvalid-logloss:0.61\tvalid-auc:0.8": XGBoost stops on the last metric.
Status parse_last_metric(std::string_view eval, std::string* name, double* value) {
  std::size_t tab = eval.rfind('\t');
  if (tab == std::string_view::npos) return internal_error("unexpected eval output: " + std::string(eval));
  std::string_view item = eval.substr(tab + 1);
  std::size_t dash = item.find('-');
  std::size_t colon = item.rfind(':');
  if (dash == std::string_view::npos || colon == std::string_view::npos || colon < dash) {
    return internal_error("unexpected eval output: " + std::string(eval));
  }
  *name = std::string(item.substr(dash + 1, colon - dash - 1));
  std::string number(item.substr(colon + 1));
  char* end = nullptr;
  *value = std::strtod(number.c_str(), &end);
  if (end == number.c_str()) return internal_error("unparsable metric in eval output: " + std::string(eval));
  return Status::ok();
}

std::string fmt_double(double v) {
  std::ostringstream os;
  os.precision(17);
  os << v;
  return os.str();
}

// XGBoost's training parameters from `params` (hist trees; nthread and
// eval_metric only when set; `extra` last, so it overrides).
Status set_train_params(BoosterHandle raw, const TrainParams& params) {
  std::vector<std::pair<std::string, std::string>> settings = {
      {"booster", "gbtree"},
      {"tree_method", "hist"},
      {"objective", params.objective},
      {"max_depth", std::to_string(params.max_depth)},
      {"eta", fmt_double(params.eta)},
      {"subsample", fmt_double(params.subsample)},
      {"colsample_bytree", fmt_double(params.colsample_bytree)},
      {"min_child_weight", fmt_double(params.min_child_weight)},
      {"lambda", fmt_double(params.reg_lambda)},
      {"alpha", fmt_double(params.reg_alpha)},
      {"seed", std::to_string(params.seed)},
      {"verbosity", params.verbose ? "1" : "0"},
  };
  if (params.nthread > 0) settings.emplace_back("nthread", std::to_string(params.nthread));
  if (!params.eval_metric.empty()) settings.emplace_back("eval_metric", params.eval_metric);
  for (const auto& kv : params.extra) settings.push_back(kv);
  for (const auto& [name, value] : settings) {
    REAI_XGB_CHECK(XGBoosterSetParam(raw, name.c_str(), value.c_str()));
  }
  return Status::ok();
}

struct BoostedRounds {
  int rounds = 0;      // rounds run
  int best_iter = -1;  // best on the validation set (-1: not evaluated)
};

// Boosts up to params.num_rounds rounds on `train`. With `valid`, each
// round is evaluated when early stopping or verbose: the best round is
// tracked on the last metric, and with `early_stop` boosting ends
// params.early_stopping_rounds rounds after it.
Result<BoostedRounds> boost_rounds(BoosterHandle raw, const DMatrix& train, const DMatrix* valid, bool early_stop,
                                   const TrainParams& params) {
  BoostedRounds r;
  double best_score = 0;
  bool maximize = false;
  int iter = 0;
  for (; iter < params.num_rounds; ++iter) {
    REAI_XGB_CHECK(XGBoosterUpdateOneIter(raw, iter, train.get()));
    if (valid == nullptr || !(early_stop || params.verbose)) continue;
    DMatrixHandle eval_sets[1] = {valid->get()};
    const char* eval_names[1] = {"valid"};
    const char* eval_out = nullptr;
    REAI_XGB_CHECK(XGBoosterEvalOneIter(raw, iter, eval_sets, eval_names, 1, &eval_out));
    if (params.verbose) std::fprintf(stderr, "%s\n", eval_out);
    std::string metric;
    double score = 0;
    REAI_RETURN_IF_ERROR(parse_last_metric(eval_out, &metric, &score));
    if (r.best_iter < 0) maximize = metric_maximizes(metric);
    if (r.best_iter < 0 || (maximize ? score > best_score : score < best_score)) {
      r.best_iter = iter;
      best_score = score;
    }
    if (early_stop && iter - r.best_iter >= params.early_stopping_rounds) {
      ++iter;
      break;
    }
  }
  r.rounds = iter;
  return r;
}

}  // namespace

// Labels of one data set: either plain targets or survival intervals.
struct Booster::Labels {
  std::span<const float> label;  // plain targets (empty for intervals)
  std::span<const float> lower;
  std::span<const float> upper;
  std::span<const float> weights;

  bool interval() const { return label.empty() && !lower.empty(); }

  Status validate(std::size_t rows, std::string_view what) const {
    auto need = [&](std::span<const float> v, std::string_view field) -> Status {
      if (v.size() != rows) {
        return invalid_argument(std::string(what) + ": " + std::string(field) + " has " +
                                std::to_string(v.size()) + " values for " + std::to_string(rows) +
                                " rows");
      }
      return Status::ok();
    };
    if (interval()) {
      REAI_RETURN_IF_ERROR(need(lower, "lower bounds"));
      REAI_RETURN_IF_ERROR(need(upper, "upper bounds"));
      for (std::size_t i = 0; i < rows; ++i) {
        if (!(lower[i] >= 0) || std::isnan(upper[i]) || upper[i] < lower[i]) {
          return invalid_argument(std::string(what) + ": bad interval at row " + std::to_string(i));
        }
      }
    } else {
      REAI_RETURN_IF_ERROR(need(label, "labels"));
      for (std::size_t i = 0; i < rows; ++i) {
        if (!std::isfinite(label[i])) {
          return invalid_argument(std::string(what) + ": non-finite label at row " + std::to_string(i));
        }
      }
    }
    if (!weights.empty()) {
      REAI_RETURN_IF_ERROR(need(weights, "weights"));
      for (float w : weights) {
        if (!(w >= 0) || !std::isfinite(w)) return invalid_argument(std::string(what) + ": bad weight");
      }
    }
    return Status::ok();
  }

  Status attach(DMatrix& m) const {
    if (interval()) {
      REAI_XGB_CHECK(XGDMatrixSetFloatInfo(m.get(), "label_lower_bound", lower.data(), lower.size()));
      REAI_XGB_CHECK(XGDMatrixSetFloatInfo(m.get(), "label_upper_bound", upper.data(), upper.size()));
    } else {
      REAI_XGB_CHECK(XGDMatrixSetFloatInfo(m.get(), "label", label.data(), label.size()));
    }
    if (!weights.empty()) {
      REAI_XGB_CHECK(XGDMatrixSetFloatInfo(m.get(), "weight", weights.data(), weights.size()));
    }
    return Status::ok();
  }
};

Booster::Booster(Booster&& other) noexcept : handle_(other.handle_), num_rounds_(other.num_rounds_) {
  other.handle_ = nullptr;
  other.num_rounds_ = 0;
}

Booster& Booster::operator=(Booster&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) XGBoosterFree(handle_);
    handle_ = other.handle_;
    num_rounds_ = other.num_rounds_;
    other.handle_ = nullptr;
    other.num_rounds_ = 0;
  }
  return *this;
}

Booster::~Booster() {
  if (handle_ != nullptr) XGBoosterFree(handle_);
}

Result<Booster> Booster::train(const DenseMatrix& x, std::span<const float> labels,
                               std::span<const float> weights, const DenseMatrix* valid_x,
                               std::span<const float> valid_labels, const TrainParams& params) {
  Labels train_labels{labels, {}, {}, weights};
  Labels valid{valid_labels, {}, {}, {}};
  return train_impl(x, train_labels, valid_x, valid, params);
}

Result<Booster> Booster::train_aft(const DenseMatrix& x, std::span<const float> lower,
                                   std::span<const float> upper, std::span<const float> weights,
                                   const DenseMatrix* valid_x, std::span<const float> valid_lower,
                                   std::span<const float> valid_upper, const TrainParams& params) {
  if (lower.empty()) return invalid_argument("train_aft: no lower bounds");
  Labels train_labels{{}, lower, upper, weights};
  Labels valid{{}, valid_lower, valid_upper, {}};
  if (valid_x != nullptr && valid_lower.empty()) return invalid_argument("train_aft: validation set without bounds");
  return train_impl(x, train_labels, valid_x, valid, params);
}

Result<Booster> Booster::train_impl(const DenseMatrix& x, const Labels& train, const DenseMatrix* valid_x,
                                    const Labels& valid, const TrainParams& params) {
  REAI_RETURN_IF_ERROR(check_shape(x, "training data"));
  REAI_RETURN_IF_ERROR(train.validate(x.rows, "training data"));
  if (params.num_rounds <= 0) return invalid_argument("num_rounds must be positive");
  if (valid_x != nullptr) {
    REAI_RETURN_IF_ERROR(check_shape(*valid_x, "validation data"));
    if (valid_x->cols != x.cols) {
      return invalid_argument("validation data has " + std::to_string(valid_x->cols) +
                              " columns, training data " + std::to_string(x.cols));
    }
    REAI_RETURN_IF_ERROR(valid.validate(valid_x->rows, "validation data"));
  }

  DMatrix dtrain, dvalid;
  REAI_RETURN_IF_ERROR(make_dmatrix(x, params.nthread, dtrain));
  REAI_RETURN_IF_ERROR(train.attach(dtrain));
  if (valid_x != nullptr) {
    REAI_RETURN_IF_ERROR(make_dmatrix(*valid_x, params.nthread, dvalid));
    REAI_RETURN_IF_ERROR(valid.attach(dvalid));
  }

  DMatrixHandle cache[2] = {dtrain.get(), dvalid.get()};
  BoosterHandle raw = nullptr;
  REAI_XGB_CHECK(XGBoosterCreate(cache, valid_x != nullptr ? 2 : 1, &raw));
  Booster booster(raw, 0);
  REAI_RETURN_IF_ERROR(set_train_params(raw, params));
  const bool early_stop = valid_x != nullptr && params.early_stopping_rounds > 0;
  auto boosted = boost_rounds(raw, dtrain, valid_x != nullptr ? &dvalid : nullptr, early_stop, params);
  if (!boosted) return boosted.status();
  int rounds = boosted->rounds;
  // Early stopping keeps the trees up to the best validation round only.
  if (early_stop && boosted->best_iter + 1 < rounds) {
    BoosterHandle sliced = nullptr;
    REAI_XGB_CHECK(XGBoosterSlice(raw, 0, boosted->best_iter + 1, 1, &sliced));
    booster = Booster(sliced, 0);
    raw = sliced;
  }
  REAI_XGB_CHECK(XGBoosterBoostedRounds(raw, &rounds));
  booster.num_rounds_ = rounds;
  return booster;
}

Result<Booster> Booster::load_json(const std::string& json) {
  if (json.empty()) return invalid_argument("empty model");
  BoosterHandle raw = nullptr;
  REAI_XGB_CHECK(XGBoosterCreate(nullptr, 0, &raw));
  Booster booster(raw, 0);
  if (XGBoosterLoadModelFromBuffer(raw, json.data(), json.size()) != 0) {
    return invalid_argument(std::string("cannot load XGBoost model: ") + XGBGetLastError());
  }
  int rounds = 0;
  REAI_XGB_CHECK(XGBoosterBoostedRounds(raw, &rounds));
  booster.num_rounds_ = rounds;
  return booster;
}

Result<Booster> Booster::load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("cannot read model file " + path);
  std::ostringstream buf;
  buf << in.rdbuf();
  Result<Booster> b = load_json(std::move(buf).str());
  if (!b) return Status(b.status().code(), path + ": " + b.status().message());
  return b;
}

Result<std::string> Booster::save_json() const {
  if (handle_ == nullptr) return failed_precondition("booster moved from");
  bst_ulong len = 0;
  const char* data = nullptr;
  REAI_XGB_CHECK(XGBoosterSaveModelToBuffer(handle_, R"({"format":"json"})", &len, &data));
  return std::string(data, len);  // XGBoost's buffer is thread-local scratch: copy now
}

Status Booster::save_file(const std::string& path) const {
  Result<std::string> json = save_json();
  if (!json) return json.status();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) return unavailable("cannot write model file " + path);
  out.write(json->data(), static_cast<std::streamsize>(json->size()));
  out.close();
  if (!out) return unavailable("failed writing model file " + path);
  return Status::ok();
}

Result<std::vector<float>> Booster::predict_type(const DenseMatrix& x, int type) const {
  if (handle_ == nullptr) return failed_precondition("booster moved from");
  if (x.rows == 0) return std::vector<float>{};
  REAI_RETURN_IF_ERROR(check_shape(x, "prediction data"));
  if (x.cols != num_features()) {
    return invalid_argument("prediction data has " + std::to_string(x.cols) + " columns, model expects " +
                            std::to_string(num_features()));
  }
  DMatrix dm;
  // OpenMP fan-out costs more than it saves on a few rows.
  REAI_RETURN_IF_ERROR(make_dmatrix(x, x.rows < 1024 ? 1 : 0, dm));
  std::string config = R"({"type":)" + std::to_string(type) +
                       R"(,"training":false,"iteration_begin":0,"iteration_end":0,"strict_shape":false})";
  const bst_ulong* shape = nullptr;
  bst_ulong dim = 0;
  const float* out = nullptr;
  REAI_XGB_CHECK(XGBoosterPredictFromDMatrix(handle_, dm.get(), config.c_str(), &shape, &dim, &out));
  std::size_t n = 1;
  for (bst_ulong i = 0; i < dim; ++i) n *= shape[i];
  return std::vector<float>(out, out + n);
}

Result<std::vector<float>> Booster::predict(const DenseMatrix& x, bool output_margin) const {
  return predict_type(x, output_margin ? 1 : 0);
}

Result<std::vector<float>> Booster::contributions(const DenseMatrix& x) const {
  return predict_type(x, 2);
}

std::size_t Booster::num_features() const {
  bst_ulong n = 0;
  if (handle_ == nullptr || XGBoosterGetNumFeature(handle_, &n) != 0) return 0;
  return n;
}

}  // namespace reai::models
