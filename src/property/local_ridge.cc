#include "property/local_ridge.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

namespace reai::property {
namespace json = boost::json;
namespace {

constexpr std::size_t kRowsPerCluster = 100;  // sets the number of clusters
constexpr std::size_t kMinClusters = 4, kMaxClusters = 48;
constexpr std::size_t kFitRows = 250;         // nearest training rows each local fit reads
constexpr int kKmeansIterations = 15;
constexpr double kClip = 4.0;                 // standardised values are clipped to +-kClip
// Ridge penalties per unit of kernel weight, searched by the folds.
constexpr double kLambdas[] = {0.3, 1, 3, 10, 30};

// Solves the symmetric positive definite system a x = b (q x q) in place by
// Cholesky; false when not positive definite.
bool cholesky_solve(std::vector<double>& a, std::vector<double>& b, std::size_t q) {
  for (std::size_t j = 0; j < q; ++j) {
    double d = a[j * q + j];
    for (std::size_t k = 0; k < j; ++k) d -= a[j * q + k] * a[j * q + k];
    if (!(d > 1e-12)) return false;
    d = std::sqrt(d);
    a[j * q + j] = d;
    for (std::size_t i = j + 1; i < q; ++i) {
      double s = a[i * q + j];
      for (std::size_t k = 0; k < j; ++k) s -= a[i * q + k] * a[j * q + k];
      a[i * q + j] = s / d;
    }
  }
  for (std::size_t i = 0; i < q; ++i) {
    double s = b[i];
    for (std::size_t k = 0; k < i; ++k) s -= a[i * q + k] * b[k];
    b[i] = s / a[i * q + i];
  }
  for (std::size_t i = q; i-- > 0;) {
    double s = b[i];
    for (std::size_t k = i + 1; k < q; ++k) s -= a[k * q + i] * b[k];
    b[i] = s / a[i * q + i];
  }
  return true;
}

// k-means++ start, then Lloyd iterations, on the points (px, py).
void kmeans(std::span<const float> px, std::span<const float> py, std::size_t k, unsigned seed,
            std::vector<float>* cx, std::vector<float>* cy) {
  const std::size_t n = px.size();
  std::mt19937 rng(seed);
  const std::size_t first = rng() % n;
  cx->assign(1, px[first]);
  cy->assign(1, py[first]);
  std::vector<double> d2(n, std::numeric_limits<double>::infinity());
  while (cx->size() < k) {
    double total = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double dx = px[i] - cx->back(), dy = py[i] - cy->back();
      d2[i] = std::min(d2[i], dx * dx + dy * dy);
      total += d2[i];
    }
    if (!(total > 0)) break;
    double pick = std::uniform_real_distribution<double>(0, total)(rng);
    std::size_t i = 0;
    for (; i + 1 < n && pick > d2[i]; ++i) pick -= d2[i];
    cx->push_back(px[i]);
    cy->push_back(py[i]);
  }
  std::vector<double> sx, sy;
  std::vector<std::size_t> count;
  for (int it = 0; it < kKmeansIterations; ++it) {
    sx.assign(cx->size(), 0), sy.assign(cx->size(), 0), count.assign(cx->size(), 0);
    for (std::size_t i = 0; i < n; ++i) {
      std::size_t best = 0;
      double best_d = std::numeric_limits<double>::infinity();
      for (std::size_t c = 0; c < cx->size(); ++c) {
        const double dx = px[i] - (*cx)[c], dy = py[i] - (*cy)[c];
        if (dx * dx + dy * dy < best_d) best_d = dx * dx + dy * dy, best = c;
      }
      sx[best] += px[i], sy[best] += py[i], ++count[best];
    }
    for (std::size_t c = 0; c < cx->size(); ++c) {
      if (count[c] > 0) (*cx)[c] = static_cast<float>(sx[c] / count[c]), (*cy)[c] = static_cast<float>(sy[c] / count[c]);
    }
  }
}

}  // namespace

double LocalRidge::standard(std::size_t k, float v) const {
  if (std::isnan(v)) return 0;
  return std::clamp((v - mean_[k]) / scale_[k], -kClip, kClip);
}

std::size_t LocalRidge::nearest(float px, float py) const {
  std::size_t best = 0;
  float best_d = std::numeric_limits<float>::infinity();
  for (std::size_t c = 0; c < centres_x_.size(); ++c) {
    const float dx = px - centres_x_[c], dy = py - centres_y_[c];
    if (dx * dx + dy * dy < best_d) best_d = dx * dx + dy * dy, best = c;
  }
  return best;
}

int LocalRidge::mix(float px, float py, std::size_t* cluster, double* weight) const {
  const int want = static_cast<int>(std::min<std::size_t>(mix_, centres_x_.size()));
  float d2[kMaxMix];
  int found = 0;
  for (std::size_t c = 0; c < centres_x_.size(); ++c) {
    const float dx = px - centres_x_[c], dy = py - centres_y_[c];
    const float d = dx * dx + dy * dy;
    if (found == want && d >= d2[found - 1]) continue;
    int pos = found < want ? found++ : found - 1;
    while (pos > 0 && d2[pos - 1] > d) d2[pos] = d2[pos - 1], cluster[pos] = cluster[pos - 1], --pos;
    d2[pos] = d, cluster[pos] = c;
  }
  double total = 0;
  for (int k = 0; k < found; ++k) total += weight[k] = 1.0 / (d2[k] + 0.01);
  for (int k = 0; k < found; ++k) weight[k] /= total;
  return found;
}

Result<LocalRidge> LocalRidge::fit(const Data& data, std::span<const int> folds, int num_folds, unsigned seed,
                                   std::vector<float>* oof) {
  const std::size_t n = data.residual.size();
  if (data.px.size() != n || data.py.size() != n || folds.size() != n || data.features.size() != n * data.cols ||
      n < kMinClusters) {
    return invalid_argument("local ridge: inconsistent training data");
  }
  LocalRidge m;
  m.cols_ = data.cols;
  m.use_ = data.use;
  const std::size_t q = m.use_.size() + 1;
  m.mean_.assign(m.use_.size(), 0), m.scale_.assign(m.use_.size(), 1);
  for (std::size_t k = 0; k < m.use_.size(); ++k) {
    double s = 0, ss = 0, c = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const float v = data.features[i * data.cols + m.use_[k]];
      if (std::isnan(v)) continue;
      s += v, ss += static_cast<double>(v) * v, ++c;
    }
    if (c > 0) m.mean_[k] = s / c;
    const double var = c > 1 ? ss / c - m.mean_[k] * m.mean_[k] : 0;
    m.scale_[k] = var > 1e-12 ? std::sqrt(var) : 1;
  }
  std::vector<double> z(n * q);
  for (std::size_t i = 0; i < n; ++i) {
    z[i * q] = 1;
    for (std::size_t k = 0; k < m.use_.size(); ++k) z[i * q + 1 + k] = m.standard(k, data.features[i * data.cols + m.use_[k]]);
  }
  const std::size_t clusters = std::clamp(n / kRowsPerCluster, kMinClusters, kMaxClusters);
  kmeans(data.px, data.py, clusters, seed, &m.centres_x_, &m.centres_y_);
  const std::size_t k_used = m.centres_x_.size();
  // Normal equations of cluster c on the training rows outside `fold`
  // (-1: all), over its kFitRows nearest rows with tricube weights.
  std::vector<std::pair<float, std::size_t>> by_distance(n);
  auto normal_equations = [&](std::size_t c, int fold, std::vector<double>* a, std::vector<double>* b, double* weight) {
    std::size_t count = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (fold >= 0 && folds[i] == fold) continue;
      const float dx = data.px[i] - m.centres_x_[c], dy = data.py[i] - m.centres_y_[c];
      by_distance[count++] = {dx * dx + dy * dy, i};
    }
    const std::size_t take = std::min(count, kFitRows);
    std::nth_element(by_distance.begin(), by_distance.begin() + (take - 1), by_distance.begin() + count);
    const double radius = std::sqrt(static_cast<double>(by_distance[take - 1].first)) * 1.05 + 1e-6;
    a->assign(q * q, 0), b->assign(q, 0);
    *weight = 0;
    for (std::size_t t = 0; t < take; ++t) {
      const auto [d2, i] = by_distance[t];
      const double u = std::sqrt(static_cast<double>(d2)) / radius;
      const double w = std::pow(1 - u * u * u, 3);
      *weight += w;
      const double* zi = z.data() + i * q;
      for (std::size_t r = 0; r < q; ++r) {
        const double wr = w * zi[r];
        (*b)[r] += wr * data.residual[i];
        for (std::size_t s = 0; s <= r; ++s) (*a)[r * q + s] += wr * zi[s];
      }
    }
    for (std::size_t r = 0; r < q; ++r) {
      for (std::size_t s = 0; s < r; ++s) (*a)[s * q + r] = (*a)[r * q + s];
    }
  };
  auto solve = [&](std::vector<double> a, std::vector<double> b, double weight, double lambda) {
    for (std::size_t r = 0; r < q; ++r) a[r * q + r] += lambda * weight * (r == 0 ? 0.01 : 1.0);
    if (!cholesky_solve(a, b, q)) b.assign(q, 0);
    return b;
  };

  // Penalty by out-of-fold error over all rows.
  constexpr std::size_t kL = std::size(kLambdas);
  std::vector<std::vector<float>> oof_by_lambda(kL, std::vector<float>(n, 0));
  std::vector<double> a, b;
  double weight = 0;
  std::vector<std::vector<double>> coef_by_lambda(kL, std::vector<double>(k_used * q));
  for (int f = 0; f < num_folds; ++f) {
    for (std::size_t c = 0; c < k_used; ++c) {
      normal_equations(c, f, &a, &b, &weight);
      for (std::size_t l = 0; l < kL; ++l) {
        const std::vector<double> coef = solve(a, b, weight, kLambdas[l]);
        std::copy(coef.begin(), coef.end(), coef_by_lambda[l].begin() + c * q);
      }
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (folds[i] != f) continue;
      std::size_t cluster[kMaxMix];
      double w[kMaxMix];
      const int found = m.mix(data.px[i], data.py[i], cluster, w);
      for (std::size_t l = 0; l < kL; ++l) {
        double s = 0;
        for (int k = 0; k < found; ++k) {
          const double* coef = coef_by_lambda[l].data() + cluster[k] * q;
          double part = 0;
          for (std::size_t r = 0; r < q; ++r) part += coef[r] * z[i * q + r];
          s += w[k] * part;
        }
        oof_by_lambda[l][i] = static_cast<float>(s);
      }
    }
  }
  std::size_t best = 0;
  double best_sse = std::numeric_limits<double>::infinity();
  for (std::size_t l = 0; l < kL; ++l) {
    double sse = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double e = data.residual[i] - oof_by_lambda[l][i];
      sse += e * e;
    }
    if (sse < best_sse) best_sse = sse, best = l;
  }
  m.lambda_ = kLambdas[best];
  *oof = std::move(oof_by_lambda[best]);
  m.coef_.assign(k_used * q, 0);
  for (std::size_t c = 0; c < k_used; ++c) {
    normal_equations(c, -1, &a, &b, &weight);
    const std::vector<double> coef = solve(a, b, weight, m.lambda_);
    std::copy(coef.begin(), coef.end(), m.coef_.begin() + c * q);
  }
  return m;
}

double LocalRidge::predict(const float* features, float px, float py) const {
  if (empty() || std::isnan(px) || std::isnan(py)) return 0;
  const std::size_t q = use_.size() + 1;
  std::size_t cluster[kMaxMix];
  double w[kMaxMix];
  const int found = mix(px, py, cluster, w);
  double s = 0;
  for (int c = 0; c < found; ++c) {
    const double* coef = coef_.data() + cluster[c] * q;
    double part = coef[0];
    for (std::size_t k = 0; k < use_.size(); ++k) part += coef[k + 1] * standard(k, features[use_[k]]);
    s += w[c] * part;
  }
  return s;
}

json::object LocalRidge::to_json() const {
  return json::object{{"use", json::array(use_.begin(), use_.end())},
                      {"mean", json::array(mean_.begin(), mean_.end())},
                      {"scale", json::array(scale_.begin(), scale_.end())},
                      {"lambda", lambda_},
                      {"mix", mix_},
                      {"centres_x", json::array(centres_x_.begin(), centres_x_.end())},
                      {"centres_y", json::array(centres_y_.begin(), centres_y_.end())},
                      {"coef", json::array(coef_.begin(), coef_.end())}};
}

Result<LocalRidge> LocalRidge::from_json(const json::object& o, std::size_t cols) {
  LocalRidge m;
  m.cols_ = cols;
  auto numbers = [&](std::string_view key, auto* out) -> bool {
    const json::value* v = o.if_contains(key);
    if (v == nullptr || !v->is_array()) return false;
    for (const auto& e : v->get_array()) {
      if (!e.is_number()) return false;
      out->push_back(static_cast<typename std::decay_t<decltype(*out)>::value_type>(e.to_number<double>()));
    }
    return true;
  };
  const json::value* lambda = o.if_contains("lambda");
  if (!numbers("use", &m.use_) || !numbers("mean", &m.mean_) || !numbers("scale", &m.scale_) ||
      !numbers("centres_x", &m.centres_x_) || !numbers("centres_y", &m.centres_y_) || !numbers("coef", &m.coef_) ||
      lambda == nullptr || !lambda->is_number()) {
    return invalid_argument("local ridge: missing or non-numeric fields");
  }
  m.lambda_ = lambda->to_number<double>();
  if (const json::value* mix = o.if_contains("mix"); mix != nullptr && mix->is_number()) {
    m.mix_ = std::clamp<std::size_t>(static_cast<std::size_t>(mix->to_number<double>()), 1, kMaxMix);
  }
  const std::size_t q = m.use_.size() + 1;
  if (m.mean_.size() != m.use_.size() || m.scale_.size() != m.use_.size() ||
      m.centres_y_.size() != m.centres_x_.size() || m.coef_.size() != m.centres_x_.size() * q ||
      std::any_of(m.use_.begin(), m.use_.end(), [&](int k) { return k < 0 || static_cast<std::size_t>(k) >= cols; }) ||
      std::any_of(m.scale_.begin(), m.scale_.end(), [](double s) { return !(s > 0); })) {
    return invalid_argument("local ridge: sizes do not match the feature plan");
  }
  return m;
}

}  // namespace reai::property
