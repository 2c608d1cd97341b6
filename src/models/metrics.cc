// Evaluation metrics (EVALUATION.md): ROC AUC, Brier, log loss, ECE.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "models/models.h"

namespace reai::models {

namespace {

constexpr double kUndefined = std::numeric_limits<double>::quiet_NaN();

bool positive(float label) { return label > 0.5f; }

std::vector<std::size_t> order_by(std::span<const double> values) {
  std::vector<std::size_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return values[a] < values[b]; });
  return order;
}

}  // namespace

// Mann-Whitney U with mid-ranks, so tied scores count one half.
double roc_auc(std::span<const double> scores, std::span<const float> labels) {
  if (scores.size() != labels.size() || scores.empty()) return kUndefined;
  for (double s : scores) {
    if (std::isnan(s)) return kUndefined;
  }
  const std::vector<std::size_t> order = order_by(scores);
  double positive_rank_sum = 0;
  double positives = 0;
  std::size_t i = 0;
  while (i < order.size()) {
    std::size_t j = i;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) ++j;
    const double mid_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
    for (std::size_t k = i; k < j; ++k) {
      if (positive(labels[order[k]])) {
        positive_rank_sum += mid_rank;
        positives += 1;
      }
    }
    i = j;
  }
  const double negatives = static_cast<double>(scores.size()) - positives;
  if (positives == 0 || negatives == 0) return kUndefined;
  return (positive_rank_sum - positives * (positives + 1) / 2) / (positives * negatives);
}

double brier_score(std::span<const double> probs, std::span<const float> labels) {
  if (probs.size() != labels.size() || probs.empty()) return kUndefined;
  double sum = 0;
  for (std::size_t i = 0; i < probs.size(); ++i) {
    const double d = probs[i] - labels[i];
    sum += d * d;
  }
  return sum / static_cast<double>(probs.size());
}

double log_loss(std::span<const double> probs, std::span<const float> labels) {
  if (probs.size() != labels.size() || probs.empty()) return kUndefined;
  constexpr double kEps = 1e-15;
  double sum = 0;
  for (std::size_t i = 0; i < probs.size(); ++i) {
    const double p = std::clamp(probs[i], kEps, 1 - kEps);
    const double y = labels[i];
    sum -= y * std::log(p) + (1 - y) * std::log(1 - p);
  }
  return sum / static_cast<double>(probs.size());
}

// Bins are consecutive runs of the probability-sorted rows, bin b holding rows
// [b*n/bins, (b+1)*n/bins); ECE is the count-weighted mean |mean p - mean y|.
double expected_calibration_error(std::span<const double> probs, std::span<const float> labels, int bins) {
  if (probs.size() != labels.size() || probs.empty() || bins < 1) return kUndefined;
  for (double p : probs) {
    if (std::isnan(p)) return kUndefined;
  }
  const std::vector<std::size_t> order = order_by(probs);
  const std::size_t n = probs.size();
  const std::size_t b_count = static_cast<std::size_t>(bins);
  double ece = 0;
  for (std::size_t b = 0; b < b_count; ++b) {
    const std::size_t lo = b * n / b_count;
    const std::size_t hi = (b + 1) * n / b_count;
    if (hi == lo) continue;
    double sum_p = 0;
    double sum_y = 0;
    for (std::size_t k = lo; k < hi; ++k) {
      sum_p += probs[order[k]];
      sum_y += labels[order[k]];
    }
    ece += std::abs(sum_p - sum_y) / static_cast<double>(n);
  }
  return ece;
}

}  // namespace reai::models
