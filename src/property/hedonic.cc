#include "property/hedonic.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace reai::property {
namespace json = boost::json;
namespace {

constexpr double kLambdas[] = {1, 3, 10, 30, 100, 300};
constexpr std::size_t kMinLevelRows = 5;
constexpr double kClip = 5;  // standardised values beyond this are extrapolation
constexpr std::size_t kMinHingeDistinct = 12;  // fewer distinct values: a line is enough

// Four partial sums so the compiler can overlap the multiplies.
double dot(const double* x, const double* y, std::size_t n) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  std::size_t k = 0;
  for (; k + 4 <= n; k += 4) s0 += x[k] * y[k], s1 += x[k + 1] * y[k + 1], s2 += x[k + 2] * y[k + 2], s3 += x[k + 3] * y[k + 3];
  for (; k < n; ++k) s0 += x[k] * y[k];
  return (s0 + s1) + (s2 + s3);
}

// Solves (a) x = b in place for symmetric positive definite `a` (m x m,
// row-major) by Cholesky; returns false when `a` is not positive definite.
bool cholesky_solve(std::vector<double>& a, std::vector<double>& b, std::size_t m) {
  for (std::size_t j = 0; j < m; ++j) {
    double d = a[j * m + j] - dot(a.data() + j * m, a.data() + j * m, j);
    if (!(d > 1e-12)) return false;
    d = std::sqrt(d);
    a[j * m + j] = d;
    for (std::size_t i = j + 1; i < m; ++i) {
      const double s = a[i * m + j] - dot(a.data() + i * m, a.data() + j * m, j);
      a[i * m + j] = s / d;
    }
  }
  for (std::size_t i = 0; i < m; ++i) {
    double s = b[i];
    for (std::size_t k = 0; k < i; ++k) s -= a[i * m + k] * b[k];
    b[i] = s / a[i * m + i];
  }
  for (std::size_t i = m; i-- > 0;) {
    double s = b[i];
    for (std::size_t k = i + 1; k < m; ++k) s -= a[k * m + i] * b[k];
    b[i] = s / a[i * m + i];
  }
  return true;
}

// Adds row `d` (m values, the last one the constant 1) to the lower triangle
// of `gram` and `d * y` to `rhs`. One-hot zeros are skipped.
void accumulate(const double* d, double y, std::size_t m, std::vector<double>& gram, std::vector<double>& rhs) {
  for (std::size_t i = 0; i < m; ++i) {
    if (d[i] == 0) continue;
    rhs[i] += d[i] * y;
    double* g = gram.data() + i * m;
    for (std::size_t j = 0; j <= i; ++j) g[j] += d[i] * d[j];
  }
}

}  // namespace

std::size_t HedonicModel::width() const {
  return features_ + static_cast<std::size_t>(std::count(missing_flag_.begin(), missing_flag_.end(), 1)) +
         static_cast<std::size_t>(std::count(log_extra_.begin(), log_extra_.end(), 1)) + hinge_feature_.size() +
         onehot_column_.size();
}

double HedonicModel::standard(std::size_t f, float v) const {
  if (std::isnan(v)) return 0.0;
  const double t = use_log_[f] ? std::log1p(std::max(0.0f, v)) : v;
  return std::clamp((t - mean_[f]) / scale_[f], -kClip, kClip);
}

HedonicModel HedonicModel::design(const Schema& schema, const std::vector<float>& x, std::size_t cols,
                                  const RawMatrix& raw, bool hinges) {
  HedonicModel h;
  h.features_ = cols;
  const std::size_t n = raw.rows;
  h.use_log_.assign(cols, 0);
  h.mean_.assign(cols, 0);
  h.scale_.assign(cols, 1);
  h.missing_flag_.assign(cols, 0);
  h.log_extra_.assign(cols, 0);
  h.log_mean_.assign(cols, 0);
  h.log_scale_.assign(cols, 1);
  for (std::size_t f = 0; f < cols; ++f) {
    double lo = std::numeric_limits<double>::infinity(), hi = -lo, sum = 0;
    std::size_t present = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const float v = x[i * cols + f];
      if (std::isnan(v)) continue;
      lo = std::min<double>(lo, v), hi = std::max<double>(hi, v), sum += v, ++present;
    }
    h.missing_flag_[f] = present < n && present > 0;
    if (present == 0) continue;
    // Skewed non-negative quantities (lot size, porch area) act in ratios.
    h.use_log_[f] = lo >= 0 && hi > 4 * (sum / present) ? 1 : 0;
    double s1 = 0, s2 = 0;
    for (std::size_t i = 0; i < n; ++i) {
      float v = x[i * cols + f];
      if (std::isnan(v)) continue;
      const double t = h.use_log_[f] ? std::log1p(std::max(0.0f, v)) : v;
      s1 += t, s2 += t * t;
    }
    h.mean_[f] = s1 / present;
    const double var = s2 / present - h.mean_[f] * h.mean_[f];
    h.scale_[f] = var > 1e-12 ? std::sqrt(var) : 1.0;
    // Non-negative quantities with a range also get a log term, so price can
    // bend with size and age.
    if (!h.use_log_[f] && lo >= 0 && hi > 2) {
      double l1 = 0, l2 = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const float v = x[i * cols + f];
        if (std::isnan(v)) continue;
        const double t = std::log1p(std::max(0.0f, v));
        l1 += t, l2 += t * t;
      }
      const double lvar = l2 / present - (l1 / present) * (l1 / present);
      if (lvar > 1e-6) {
        h.log_extra_[f] = 1;
        h.log_mean_[f] = l1 / present;
        h.log_scale_[f] = std::sqrt(lvar);
      }
    }
  }
  for (std::size_t c = 0; c < schema.columns.size(); ++c) {
    if (schema.columns[c].kind != ColumnKind::kCategorical) continue;
    std::vector<std::size_t> count(schema.columns[c].levels.size(), 0);
    for (std::size_t i = 0; i < n; ++i) {
      const float v = raw.row(i)[c];
      if (!std::isnan(v)) ++count[static_cast<std::size_t>(v)];
    }
    for (std::size_t l = 0; l < count.size(); ++l) {
      if (count[l] < kMinLevelRows || count[l] + kMinLevelRows > n) continue;
      h.onehot_column_.push_back(static_cast<int>(c));
      h.onehot_level_.push_back(static_cast<int>(l));
    }
  }
  if (hinges) h.add_hinges(x, n);
  return h;
}

void HedonicModel::add_hinges(const std::vector<float>& x, std::size_t n) {
  const std::size_t cols = features_;
  std::vector<double> present;
  for (std::size_t f = 0; f < cols; ++f) {
    present.clear();
    for (std::size_t i = 0; i < n; ++i) {
      if (!std::isnan(x[i * cols + f])) present.push_back(standard(f, x[i * cols + f]));
    }
    if (present.empty()) continue;
    std::sort(present.begin(), present.end());
    std::size_t distinct = 1;
    for (std::size_t i = 1; i < present.size(); ++i) distinct += present[i] != present[i - 1];
    if (distinct < kMinHingeDistinct) continue;
    double previous = present.front();
    for (double q : {0.25, 0.5, 0.75}) {
      const double knot = present[static_cast<std::size_t>(q * static_cast<double>(present.size() - 1))];
      if (!(knot > previous)) continue;  // ties (many zeros): no new bend
      previous = knot;
      double s1 = 0, s2 = 0;
      for (std::size_t i = 0; i < n; ++i) {
        const double t = std::max(0.0, standard(f, x[i * cols + f]) - knot);
        s1 += t, s2 += t * t;
      }
      const double var = s2 / static_cast<double>(n) - (s1 / n) * (s1 / n);
      if (!(var > 1e-10)) continue;
      hinge_feature_.push_back(static_cast<int>(f));
      hinge_knot_.push_back(knot);
      hinge_scale_.push_back(std::sqrt(var));
    }
  }
}

void HedonicModel::expand(const float* features, const float* raw, double* out) const {
  std::size_t k = 0;
  for (std::size_t f = 0; f < features_; ++f) {
    const float v = features[f];
    if (std::isnan(v)) {
      out[k++] = 0;
      continue;
    }
    const double t = use_log_[f] ? std::log1p(std::max(0.0f, v)) : v;
    out[k++] = std::clamp((t - mean_[f]) / scale_[f], -kClip, kClip);
  }
  for (std::size_t f = 0; f < features_; ++f) {
    if (missing_flag_[f]) out[k++] = std::isnan(features[f]) ? 1.0 : 0.0;
  }
  for (std::size_t f = 0; f < features_; ++f) {
    if (!log_extra_[f]) continue;
    const float v = features[f];
    out[k++] = std::isnan(v) ? 0.0
                             : std::clamp((std::log1p(std::max(0.0f, v)) - log_mean_[f]) / log_scale_[f], -kClip, kClip);
  }
  for (std::size_t h = 0; h < hinge_feature_.size(); ++h) {
    const float v = features[hinge_feature_[h]];
    out[k++] = std::isnan(v) ? 0.0 : std::max(0.0, standard(hinge_feature_[h], v) - hinge_knot_[h]) / hinge_scale_[h];
  }
  for (std::size_t j = 0; j < onehot_column_.size(); ++j) {
    const float v = raw[onehot_column_[j]];
    out[k++] = !std::isnan(v) && static_cast<int>(v) == onehot_level_[j] ? 1.0 : 0.0;
  }
}

std::vector<float> HedonicModel::fit(const std::vector<float>& x, const RawMatrix& raw, std::span<const float> labels,
                                     std::span<const int> folds, int num_folds, std::span<const char> use,
                                     std::vector<std::vector<float>>* fold_fitted) {
  const std::size_t n = raw.rows;
  const std::size_t q = width();
  const std::size_t m = q + 1;  // + intercept
  std::vector<double> design(n * m);
  for (std::size_t i = 0; i < n; ++i) {
    expand(x.data() + i * features_, raw.row(i), design.data() + i * m);
    design[i * m + q] = 1.0;
  }
  // Per-fold normal equations; a fold's training system is the sum of the others.
  std::vector<std::vector<double>> gram(num_folds, std::vector<double>(m * m, 0.0));
  std::vector<std::vector<double>> rhs(num_folds, std::vector<double>(m, 0.0));
  for (std::size_t i = 0; i < n; ++i) {
    if (use[i]) accumulate(design.data() + i * m, labels[i], m, gram[folds[i]], rhs[folds[i]]);
  }

  auto solve = [&](int exclude, double lambda, std::vector<double>* beta) {
    std::vector<double> a(m * m, 0.0);
    beta->assign(m, 0.0);
    for (int f = 0; f < num_folds; ++f) {
      if (f == exclude) continue;
      for (std::size_t k = 0; k < m * m; ++k) a[k] += gram[f][k];
      for (std::size_t k = 0; k < m; ++k) (*beta)[k] += rhs[f][k];
    }
    for (std::size_t i = 0; i < m; ++i) {
      for (std::size_t j = 0; j < i; ++j) a[j * m + i] = a[i * m + j];
      a[i * m + i] += i < q ? lambda : 1e-6;
    }
    return cholesky_solve(a, *beta, m);
  };

  std::vector<float> best_oof(n, 0.0f);
  double best_sse = std::numeric_limits<double>::infinity();
  std::vector<double> beta;
  for (double lambda : kLambdas) {
    std::vector<float> oof(n, 0.0f);
    bool ok = true;
    for (int f = 0; f < num_folds && ok; ++f) {
      ok = solve(f, lambda, &beta);
      for (std::size_t i = 0; i < n && ok; ++i) {
        if (folds[i] != f) continue;
        double s = 0;
        for (std::size_t k = 0; k < m; ++k) s += design[i * m + k] * beta[k];
        oof[i] = static_cast<float>(s);
      }
    }
    if (!ok) continue;
    double sse = 0;
    for (std::size_t i = 0; i < n; ++i) sse += use[i] ? (oof[i] - labels[i]) * (oof[i] - labels[i]) : 0.0;
    if (sse < best_sse) best_sse = sse, best_oof = std::move(oof), lambda_ = lambda;
  }
  if (lambda_ == 0) lambda_ = kLambdas[std::size(kLambdas) - 1];
  if (fold_fitted != nullptr) {
    fold_fitted->assign(num_folds, std::vector<float>(n, 0.0f));
    for (int f = 0; f < num_folds; ++f) {
      if (!solve(f, lambda_, &beta)) continue;
      for (std::size_t i = 0; i < n; ++i) {
        double s = 0;
        for (std::size_t k = 0; k < m; ++k) s += design[i * m + k] * beta[k];
        (*fold_fitted)[f][i] = static_cast<float>(s);
      }
    }
  }
  if (!solve(-1, lambda_, &beta)) beta.assign(m, 0.0);
  weights_.assign(beta.begin(), beta.begin() + static_cast<std::ptrdiff_t>(q));
  intercept_ = beta[q];
  return best_oof;
}

double HedonicModel::predict(const float* features, const float* raw) const {
  double s = intercept_;
  std::size_t k = 0;
  for (std::size_t f = 0; f < features_; ++f, ++k) {
    const float v = features[f];
    if (std::isnan(v)) continue;
    const double t = use_log_[f] ? std::log1p(std::max(0.0f, v)) : v;
    s += weights_[k] * std::clamp((t - mean_[f]) / scale_[f], -kClip, kClip);
  }
  for (std::size_t f = 0; f < features_; ++f) {
    if (missing_flag_[f]) s += std::isnan(features[f]) ? weights_[k] : 0.0, ++k;
  }
  for (std::size_t f = 0; f < features_; ++f) {
    if (!log_extra_[f]) continue;
    const float v = features[f];
    if (!std::isnan(v)) {
      s += weights_[k] * std::clamp((std::log1p(std::max(0.0f, v)) - log_mean_[f]) / log_scale_[f], -kClip, kClip);
    }
    ++k;
  }
  for (std::size_t h = 0; h < hinge_feature_.size(); ++h, ++k) {
    const float v = features[hinge_feature_[h]];
    if (!std::isnan(v)) s += weights_[k] * std::max(0.0, standard(hinge_feature_[h], v) - hinge_knot_[h]) / hinge_scale_[h];
  }
  for (std::size_t j = 0; j < onehot_column_.size(); ++j, ++k) {
    const float v = raw[onehot_column_[j]];
    if (!std::isnan(v) && static_cast<int>(v) == onehot_level_[j]) s += weights_[k];
  }
  return s;
}

json::object HedonicModel::to_json() const {
  auto ints = [](const std::vector<int>& v) { return json::array(v.begin(), v.end()); };
  auto doubles = [](const std::vector<double>& v) { return json::array(v.begin(), v.end()); };
  return json::object{{"use_log", ints(use_log_)},         {"mean", doubles(mean_)},
                      {"scale", doubles(scale_)},          {"missing_flag", ints(missing_flag_)},
                      {"log_extra", ints(log_extra_)}, {"log_mean", doubles(log_mean_)}, {"log_scale", doubles(log_scale_)},
                      {"onehot_column", ints(onehot_column_)}, {"onehot_level", ints(onehot_level_)},
                      {"hinge_feature", ints(hinge_feature_)}, {"hinge_knot", doubles(hinge_knot_)},
                      {"hinge_scale", doubles(hinge_scale_)},
                      {"weights", doubles(weights_)},      {"intercept", intercept_},
                      {"lambda", lambda_}};
}

Result<HedonicModel> HedonicModel::from_json(const json::object& o, std::size_t features, std::size_t columns) {
  HedonicModel h;
  h.features_ = features;
  auto read = [&](std::string_view key, auto* out) -> bool {
    const json::value* v = o.if_contains(key);
    if (v == nullptr || !v->is_array()) return false;
    for (const auto& e : v->get_array()) {
      if (!e.is_number()) return false;
      out->push_back(static_cast<typename std::remove_pointer_t<decltype(out)>::value_type>(e.to_number<double>()));
    }
    return true;
  };
  if (!read("use_log", &h.use_log_) || !read("mean", &h.mean_) || !read("scale", &h.scale_) ||
      !read("missing_flag", &h.missing_flag_) || !read("log_extra", &h.log_extra_) ||
      !read("log_mean", &h.log_mean_) || !read("log_scale", &h.log_scale_) || !read("onehot_column", &h.onehot_column_) ||
      !read("onehot_level", &h.onehot_level_) || !read("weights", &h.weights_)) {
    return invalid_argument("model.json: bad hedonic model");
  }
  // Hinges are optional: models saved before them have none.
  auto read_optional = [&](std::string_view key, auto* out) { return o.if_contains(key) == nullptr || read(key, out); };
  if (!read_optional("hinge_feature", &h.hinge_feature_) || !read_optional("hinge_knot", &h.hinge_knot_) ||
      !read_optional("hinge_scale", &h.hinge_scale_)) {
    return invalid_argument("model.json: bad hedonic model");
  }
  const auto in_features = [&](int f) { return f >= 0 && static_cast<std::size_t>(f) < features; };
  if (h.hinge_knot_.size() != h.hinge_feature_.size() || h.hinge_scale_.size() != h.hinge_feature_.size() ||
      !std::all_of(h.hinge_feature_.begin(), h.hinge_feature_.end(), in_features) ||
      !std::all_of(h.hinge_scale_.begin(), h.hinge_scale_.end(), [](double v) { return v > 0; })) {
    return invalid_argument("model.json: hedonic hinges do not match the features");
  }
  if (h.use_log_.size() != features || h.mean_.size() != features || h.scale_.size() != features ||
      h.missing_flag_.size() != features || h.log_extra_.size() != features || h.log_mean_.size() != features ||
      h.log_scale_.size() != features || h.onehot_level_.size() != h.onehot_column_.size() ||
      h.weights_.size() != h.width()) {
    return invalid_argument("model.json: hedonic model does not match the features");
  }
  for (int c : h.onehot_column_) {
    if (c < 0 || static_cast<std::size_t>(c) >= columns) return invalid_argument("model.json: bad hedonic column");
  }
  const json::value* intercept = o.if_contains("intercept");
  const json::value* lambda = o.if_contains("lambda");
  if (intercept == nullptr || !intercept->is_number() || lambda == nullptr || !lambda->is_number()) {
    return invalid_argument("model.json: bad hedonic intercept");
  }
  h.intercept_ = intercept->to_number<double>();
  h.lambda_ = lambda->to_number<double>();
  return h;
}

}  // namespace reai::property
