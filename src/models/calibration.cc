// IsotonicCalibrator: pool-adjacent-violators fit, interpolated apply.
#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <optional>
#include <utility>

#include "models/models.h"

namespace reai::models {

namespace {

constexpr double kMinProbability = 0.0005;
constexpr double kMaxProbability = 0.9995;

// A run of sorted points pooled into one constant level.
struct Block {
  double weight = 0;
  double sum_x = 0;
  double sum_y = 0;
  double mean_y() const { return sum_y / weight; }
};

}  // namespace

Result<IsotonicCalibrator> IsotonicCalibrator::fit(std::span<const double> scores,
                                                   std::span<const float> labels) {
  if (scores.size() != labels.size()) {
    return invalid_argument("isotonic fit: " + std::to_string(scores.size()) + " scores but " +
                            std::to_string(labels.size()) + " labels");
  }
  if (scores.size() < 10) return invalid_argument("isotonic fit: needs at least 10 points");
  for (std::size_t i = 0; i < scores.size(); ++i) {
    if (!std::isfinite(scores[i]) || !std::isfinite(labels[i])) {
      return invalid_argument("isotonic fit: non-finite value at " + std::to_string(i));
    }
  }
  std::vector<std::size_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });

  std::vector<Block> blocks;
  for (std::size_t k = 0; k < order.size(); ++k) {
    const double x = scores[order[k]];
    const double y = labels[order[k]];
    // Equal scores must map to one value, so they start in one block.
    if (k > 0 && x == scores[order[k - 1]]) {
      blocks.back().weight += 1;
      blocks.back().sum_x += x;
      blocks.back().sum_y += y;
    } else {
      blocks.push_back({1, x, y});
    }
    while (blocks.size() > 1 && blocks[blocks.size() - 2].mean_y() > blocks.back().mean_y()) {
      Block top = blocks.back();
      blocks.pop_back();
      blocks.back().weight += top.weight;
      blocks.back().sum_x += top.sum_x;
      blocks.back().sum_y += top.sum_y;
    }
  }
  IsotonicCalibrator c;
  for (const Block& b : blocks) {
    c.x_.push_back(b.sum_x / b.weight);
    c.y_.push_back(b.mean_y());
  }
  return c;
}

double IsotonicCalibrator::apply(double score) const {
  if (std::isnan(score)) return score;  // garbage in stays visible downstream
  double p = score;
  if (!x_.empty()) {
    if (score <= x_.front()) {
      p = y_.front();
    } else if (score >= x_.back()) {
      p = y_.back();
    } else {
      const std::size_t hi = std::upper_bound(x_.begin(), x_.end(), score) - x_.begin();
      const std::size_t lo = hi - 1;
      const double t = (score - x_[lo]) / (x_[hi] - x_[lo]);
      p = y_[lo] + t * (y_[hi] - y_[lo]);
    }
  }
  return std::clamp(p, kMinProbability, kMaxProbability);
}

std::string IsotonicCalibrator::to_json() const {
  boost::json::object obj;
  obj["x"] = boost::json::array(x_.begin(), x_.end());
  obj["y"] = boost::json::array(y_.begin(), y_.end());
  return boost::json::serialize(obj);
}

Result<IsotonicCalibrator> IsotonicCalibrator::from_json(const std::string& json) {
  boost::json::error_code ec;
  boost::json::value root = boost::json::parse(json, ec);
  if (ec) return invalid_argument("calibrator JSON does not parse: " + ec.message());
  if (!root.is_object()) return invalid_argument("calibrator JSON: not an object");
  const auto* xs = root.get_object().if_contains("x");
  const auto* ys = root.get_object().if_contains("y");
  if (xs == nullptr || ys == nullptr || !xs->is_array() || !ys->is_array()) {
    return invalid_argument("calibrator JSON: needs arrays 'x' and 'y'");
  }
  if (xs->get_array().size() != ys->get_array().size() || xs->get_array().empty()) {
    return invalid_argument("calibrator JSON: 'x' and 'y' must be non-empty and of equal length");
  }
  IsotonicCalibrator c;
  for (std::size_t i = 0; i < xs->get_array().size(); ++i) {
    const auto& xv = xs->get_array()[i];
    const auto& yv = ys->get_array()[i];
    if (!xv.is_number() || !yv.is_number()) return invalid_argument("calibrator JSON: non-numeric point");
    const double x = xv.to_number<double>();
    const double y = yv.to_number<double>();
    if (!std::isfinite(x) || !(y >= 0 && y <= 1)) return invalid_argument("calibrator JSON: point out of range");
    if (!c.x_.empty() && (x <= c.x_.back() || y < c.y_.back())) {
      return invalid_argument("calibrator JSON: points are not increasing");
    }
    c.x_.push_back(x);
    c.y_.push_back(y);
  }
  return c;
}

}  // namespace reai::models

// ---------------------------------------------------------------------------
// Logistic recalibration (Platt on the logit) and its per-age form.
namespace reai::models {
namespace {

double clamped_logit(double p) {
  p = std::clamp(p, 1e-6, 1 - 1e-6);
  return std::log(p / (1 - p));
}

}  // namespace

double LogitLinear::apply(double p) const {
  if (std::isnan(p)) return p;
  const double z = intercept + slope * clamped_logit(p);
  return std::clamp(1.0 / (1.0 + std::exp(-z)), kMinProbability, kMaxProbability);
}

namespace {

Status check_logit_fit_inputs(std::span<const double> probs, std::span<const float> labels,
                              std::span<const float> weights, double intercept_sd, double slope_sd) {
  if (probs.size() != labels.size() || (!weights.empty() && weights.size() != probs.size())) {
    return invalid_argument("logit fit: probabilities, labels and weights differ in length");
  }
  if (probs.size() < 10) return invalid_argument("logit fit: needs at least 10 points");
  if (!(intercept_sd >= 0) || !(slope_sd >= 0) || !std::isfinite(intercept_sd) || !std::isfinite(slope_sd)) {
    return invalid_argument("logit fit: prior standard deviations must be finite and >= 0");
  }
  for (std::size_t i = 0; i < probs.size(); ++i) {
    const double w = weights.empty() ? 1.0 : weights[i];
    if (!std::isfinite(probs[i]) || !std::isfinite(labels[i]) || !std::isfinite(w) || w < 0) {
      return invalid_argument(std::string("logit fit: non-finite value or negative weight at ") + std::to_string(i));
    }
  }
  return Status::ok();
}

// The penalized log-likelihood of (intercept a, slope b) on the logits x,
// with Gaussian priors centred on (0, 1); a zero sd fixes that parameter
// at its centre.
struct LogitFitProblem {
  std::vector<double> x;
  std::span<const float> labels;
  std::span<const float> weights;  // empty: all 1
  bool fit_a, fit_b;
  double pa, pb;  // prior precisions (0 when fixed)

  double weight(std::size_t i) const { return weights.empty() ? 1.0 : weights[i]; }

  double objective(double a, double b) const {
    double ll = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double w = weight(i);
      const double z = a + b * x[i];
      // log(1 + e^z) computed stably.
      const double softplus = z > 0 ? z + std::log1p(std::exp(-z)) : std::log1p(std::exp(z));
      ll += w * (labels[i] * z - softplus);
    }
    return ll - 0.5 * pa * a * a - 0.5 * pb * (b - 1) * (b - 1);
  }

  // The Newton step (da, db) from `m`; nullopt when the Hessian gives none
  // (or nothing is fitted).
  std::optional<std::pair<double, double>> newton_step(const LogitLinear& m) const {
    double ga = -pa * m.intercept, gb = -pb * (m.slope - 1);
    double haa = pa, hab = 0, hbb = pb;
    for (std::size_t i = 0; i < x.size(); ++i) {
      const double w = weight(i);
      const double q = 1.0 / (1.0 + std::exp(-(m.intercept + m.slope * x[i])));
      const double r = w * (labels[i] - q);
      const double h = w * q * (1 - q);
      ga += r;
      gb += r * x[i];
      haa += h;
      hab += h * x[i];
      hbb += h * x[i] * x[i];
    }
    if (fit_a && fit_b) {
      const double det = haa * hbb - hab * hab;
      if (!(det > 0)) return std::nullopt;
      return std::pair{(hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det};
    }
    if (fit_a) {
      if (!(haa > 0)) return std::nullopt;
      return std::pair{ga / haa, 0.0};
    }
    if (fit_b) {
      if (!(hbb > 0)) return std::nullopt;
      return std::pair{0.0, gb / hbb};
    }
    return std::nullopt;
  }
};

}  // namespace

Result<LogitLinear> fit_logit_linear(std::span<const double> probs, std::span<const float> labels,
                                     std::span<const float> weights, double intercept_sd, double slope_sd) {
  REAI_RETURN_IF_ERROR(check_logit_fit_inputs(probs, labels, weights, intercept_sd, slope_sd));
  const bool fit_a = intercept_sd > 0, fit_b = slope_sd > 0;
  LogitFitProblem problem{std::vector<double>(probs.size()), labels, weights, fit_a, fit_b,
                          fit_a ? 1 / (intercept_sd * intercept_sd) : 0, fit_b ? 1 / (slope_sd * slope_sd) : 0};
  for (std::size_t i = 0; i < probs.size(); ++i) problem.x[i] = clamped_logit(probs[i]);
  // Newton steps on the penalized log-likelihood in (intercept, slope).
  // Concave, so a few steps converge; step halving guards against
  // overshoot on separable data.
  LogitLinear m;
  double current = problem.objective(m.intercept, m.slope);
  for (int iter = 0; iter < 50; ++iter) {
    const auto direction = problem.newton_step(m);
    if (!direction) break;
    const auto [da, db] = *direction;
    double step = 1;
    double next = problem.objective(m.intercept + da, m.slope + db);
    while (next < current && step > 1e-6) {
      step *= 0.5;
      next = problem.objective(m.intercept + step * da, m.slope + step * db);
    }
    if (next < current) break;
    m.intercept += step * da;
    m.slope += step * db;
    const bool converged = std::fabs(step * da) < 1e-10 && std::fabs(step * db) < 1e-10;
    current = next;
    if (converged) break;
  }
  if (!std::isfinite(m.intercept) || !std::isfinite(m.slope) || m.slope <= 0) {
    return invalid_argument("logit fit: no usable fit (labels separate the scores or point the wrong way)");
  }
  return m;
}

Result<AgeLogitCalibration> AgeLogitCalibration::make(std::vector<Anchor> anchors) {
  AgeLogitCalibration c;
  for (std::size_t i = 0; i < anchors.size(); ++i) {
    const Anchor& a = anchors[i];
    if (!std::isfinite(a.age_hours) || a.age_hours < 0 || (i > 0 && !(a.age_hours > anchors[i - 1].age_hours))) {
      return invalid_argument("age calibration: anchor ages must be finite, >= 0 and increasing");
    }
    if (!std::isfinite(a.map.intercept) || !std::isfinite(a.map.slope) || !(a.map.slope > 0)) {
      return invalid_argument("age calibration: anchors need a finite intercept and a slope > 0");
    }
    c.log_ages_.push_back(std::log1p(a.age_hours));
  }
  c.anchors_ = std::move(anchors);
  return c;
}

double AgeLogitCalibration::apply(double p, double age_hours) const {
  if (anchors_.empty() || std::isnan(p)) return p;
  const double la = std::log1p(std::isfinite(age_hours) ? std::max(age_hours, 0.0) : 0.0);
  if (la <= log_ages_.front()) return anchors_.front().map.apply(p);
  if (la >= log_ages_.back()) return anchors_.back().map.apply(p);
  std::size_t hi = 1;
  while (log_ages_[hi] < la) ++hi;
  const double t = (la - log_ages_[hi - 1]) / (log_ages_[hi] - log_ages_[hi - 1]);
  const LogitLinear& lo_map = anchors_[hi - 1].map;
  const LogitLinear& hi_map = anchors_[hi].map;
  return LogitLinear{lo_map.intercept + t * (hi_map.intercept - lo_map.intercept),
                     lo_map.slope + t * (hi_map.slope - lo_map.slope)}
      .apply(p);
}

std::string AgeLogitCalibration::to_json() const {
  boost::json::array ages, intercepts, slopes;
  for (const Anchor& a : anchors_) {
    ages.emplace_back(a.age_hours);
    intercepts.emplace_back(a.map.intercept);
    slopes.emplace_back(a.map.slope);
  }
  return boost::json::serialize(
      boost::json::object{{"ages_hours", std::move(ages)}, {"intercept", std::move(intercepts)}, {"slope", std::move(slopes)}});
}

Result<AgeLogitCalibration> AgeLogitCalibration::from_json(const std::string& json) {
  boost::json::error_code ec;
  boost::json::value root = boost::json::parse(json, ec);
  if (ec || !root.is_object()) return invalid_argument("age calibration JSON: not an object");
  const auto& obj = root.get_object();
  const auto* ages = obj.if_contains("ages_hours");
  const auto* intercepts = obj.if_contains("intercept");
  const auto* slopes = obj.if_contains("slope");
  if (!ages || !intercepts || !slopes || !ages->is_array() || !intercepts->is_array() || !slopes->is_array()) {
    return invalid_argument("age calibration JSON: needs arrays 'ages_hours', 'intercept' and 'slope'");
  }
  const std::size_t n = ages->get_array().size();
  if (intercepts->get_array().size() != n || slopes->get_array().size() != n) {
    return invalid_argument("age calibration JSON: arrays differ in length");
  }
  std::vector<Anchor> anchors(n);
  for (std::size_t i = 0; i < n; ++i) {
    const auto& a = ages->get_array()[i];
    const auto& b = intercepts->get_array()[i];
    const auto& c = slopes->get_array()[i];
    if (!a.is_number() || !b.is_number() || !c.is_number()) {
      return invalid_argument("age calibration JSON: non-numeric value");
    }
    anchors[i] = {a.to_number<double>(), {b.to_number<double>(), c.to_number<double>()}};
  }
  return make(std::move(anchors));
}

}  // namespace reai::models
