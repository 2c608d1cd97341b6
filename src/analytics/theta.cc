// The theta method (Assimakopoulos & Nikolopoulos 2000) in the form of
// Hyndman & Billah (2003): simple exponential smoothing with a drift of half
// the series' linear-regression slope, on seasonally adjusted values.
#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "analytics/forecast.h"

namespace reai::analytics {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int kAlphaGrid = 40;

// Additive seasonal indices by calendar position (sum zero): the mean of
// each month's deviation from the centred 2x12 moving average. All zero when
// fewer than two deviations per calendar month exist.
std::array<double, kSeasonLength> seasonal_indices(std::span<const double> y, int start_month) {
  std::array<double, kSeasonLength> sum{}, count{};
  const auto n = static_cast<long>(y.size());
  for (long i = 6; i + 6 < n; ++i) {
    double moving = 0;
    bool complete = true;
    for (long j = i - 6; j <= i + 6 && complete; ++j) {
      const double v = y[static_cast<std::size_t>(j)];
      complete = !std::isnan(v);
      moving += (j == i - 6 || j == i + 6 ? 0.5 : 1.0) * v;
    }
    if (!complete) continue;
    const auto position = static_cast<std::size_t>((start_month + i) % kSeasonLength);
    sum[position] += y[static_cast<std::size_t>(i)] - moving / kSeasonLength;
    count[position] += 1;
  }
  std::array<double, kSeasonLength> index{};
  double mean = 0;
  for (std::size_t k = 0; k < kSeasonLength; ++k) {
    if (count[k] < 2) return {};
    index[k] = sum[k] / count[k];
    mean += index[k] / kSeasonLength;
  }
  for (double& v : index) v -= mean;
  return index;
}

}  // namespace

std::vector<double> theta_forecast(std::span<const double> y, int start_month, int horizon) {
  const auto season = seasonal_indices(y, start_month);
  auto position = [&](long i) { return static_cast<std::size_t>(((start_month + i) % kSeasonLength + kSeasonLength) % kSeasonLength); };
  // Seasonally adjusted values with their month offsets.
  std::vector<double> adjusted, at;
  for (std::size_t i = 0; i < y.size(); ++i) {
    if (std::isnan(y[i])) continue;
    adjusted.push_back(y[i] - season[position(static_cast<long>(i))]);
    at.push_back(static_cast<double>(i));
  }
  const std::size_t n = adjusted.size();
  if (n == 0) return std::vector<double>(static_cast<std::size_t>(horizon), kNaN);
  // Slope of the least-squares line through the adjusted values.
  double slope = 0;
  if (n >= 2) {
    double mean_t = 0, mean_y = 0;
    for (std::size_t i = 0; i < n; ++i) {
      mean_t += at[i] / static_cast<double>(n);
      mean_y += adjusted[i] / static_cast<double>(n);
    }
    double sxy = 0, sxx = 0;
    for (std::size_t i = 0; i < n; ++i) {
      sxy += (at[i] - mean_t) * (adjusted[i] - mean_y);
      sxx += (at[i] - mean_t) * (at[i] - mean_t);
    }
    slope = sxx > 0 ? sxy / sxx : 0;
  }
  // Simple exponential smoothing: alpha minimising the one-step squared
  // error on a grid (one parameter: a grid is exact enough and cheap).
  double best_alpha = 1, best_sse = std::numeric_limits<double>::infinity(), best_level = adjusted.back();
  for (int g = 1; g <= kAlphaGrid; ++g) {
    const double alpha = static_cast<double>(g) / kAlphaGrid;
    double level = adjusted.front(), sse = 0;
    for (std::size_t i = 1; i < n; ++i) {
      const double e = adjusted[i] - level;
      sse += e * e;
      level += alpha * e;
    }
    if (sse < best_sse) {
      best_sse = sse;
      best_alpha = alpha;
      best_level = level;
    }
  }
  // Drift: half the slope, with the SES correction for the level lagging a
  // trend ((1 - (1 - alpha)^n) / alpha - 1 steps behind).
  const double lag = (1 - std::pow(1 - best_alpha, static_cast<double>(n))) / best_alpha;
  const long last = static_cast<long>(y.size()) - 1;
  std::vector<double> out;
  for (int h = 1; h <= horizon; ++h) {
    const double drift = 0.5 * slope * (static_cast<double>(h - 1) + lag);
    out.push_back(best_level + drift + season[position(last + h)]);
  }
  return out;
}

}  // namespace reai::analytics
