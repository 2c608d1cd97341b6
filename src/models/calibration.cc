// IsotonicCalibrator: pool-adjacent-violators fit, interpolated apply.
#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>

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
