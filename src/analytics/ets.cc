// ETS exponential smoothing: state recursions (Hyndman et al., "Forecasting
// with Exponential Smoothing", table 2.3) and maximum-likelihood fitting with
// NLopt's BOBYQA (bounded, derivative-free).
#include <nlopt.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>

#include "analytics/forecast.h"

namespace reai::analytics {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInvalid = 1e100;

struct State {
  double level = 0;
  double slope = 0;
  std::array<double, kSeasonLength> seasonal{};
};

bool multiplicative(const EtsSpec& spec) {
  return spec.error == EtsError::kMultiplicative || spec.season == EtsSeason::kMultiplicative;
}

std::size_t first_value(std::span<const double> y) {
  std::size_t i = 0;
  while (i < y.size() && std::isnan(y[i])) ++i;
  return i;
}

std::size_t count_values(std::span<const double> y) {
  return static_cast<std::size_t>(std::count_if(y.begin(), y.end(), [](double v) { return !std::isnan(v); }));
}

double block_mean(std::span<const double> y, std::size_t from, std::size_t to) {
  double sum = 0;
  int n = 0;
  for (std::size_t i = from; i < std::min(to, y.size()); ++i) {
    if (!std::isnan(y[i])) {
      sum += y[i];
      ++n;
    }
  }
  return n > 0 ? sum / n : kNaN;
}

// Initial states just before the first value, from the first two years: the
// level is the first year's mean, the slope the change of yearly means, the
// seasonal factors the average deviation of each month from its year's mean.
State initial_state(std::span<const double> y, int start_month, const EtsSpec& spec) {
  State state;
  const bool mult_season = spec.season == EtsSeason::kMultiplicative;
  state.seasonal.fill(mult_season ? 1.0 : 0.0);
  const std::size_t f = first_value(y);
  const double year0 = block_mean(y, f, f + 12);
  const double year1 = block_mean(y, f + 12, f + 24);
  if (spec.trend && !std::isnan(year1)) state.slope = (year1 - year0) / 12.0;
  state.level = year0 - 6.5 * state.slope;
  if (spec.season == EtsSeason::kNone) return state;
  std::array<double, kSeasonLength> sum{};
  std::array<int, kSeasonLength> n{};
  for (std::size_t block = 0; block < 2; ++block) {
    const std::size_t from = f + 12 * block;
    const double mean = block_mean(y, from, from + 12);
    if (std::isnan(mean)) continue;
    for (std::size_t i = from; i < std::min(from + 12, y.size()); ++i) {
      if (std::isnan(y[i])) continue;
      // Deviation from the year's trend line, not just its mean.
      const double trend_line = mean + state.slope * (static_cast<double>(i - from) - 5.5);
      const auto pos = static_cast<std::size_t>((start_month + static_cast<int>(i)) % kSeasonLength);
      sum[pos] += mult_season ? y[i] / trend_line : y[i] - trend_line;
      ++n[pos];
    }
  }
  double total = 0;
  for (std::size_t p = 0; p < kSeasonLength; ++p) {
    state.seasonal[p] = n[p] > 0 ? sum[p] / n[p] : (mult_season ? 1.0 : 0.0);
    total += state.seasonal[p];
  }
  const double mean = total / kSeasonLength;
  for (auto& s : state.seasonal) s = mult_season ? s / mean : s - mean;
  return state;
}

double damped_sum(double phi, int h) {
  double sum = 0, p = 1;
  for (int j = 1; j <= h; ++j) {
    p *= phi;
    sum += p;
  }
  return sum;
}

// Forecast h steps after the state's month `month`.
double forecast_from(const State& s, const EtsSpec& spec, const EtsParams& p, int month, int h) {
  const double phi = spec.damped ? p.phi : 1.0;
  const double trend = spec.trend ? damped_sum(phi, h) * s.slope : 0.0;
  const double base = s.level + trend;
  const double season = s.seasonal[static_cast<std::size_t>((month + h) % kSeasonLength)];
  switch (spec.season) {
    case EtsSeason::kNone:
      return base;
    case EtsSeason::kAdditive:
      return base + season;
    case EtsSeason::kMultiplicative:
      return base * season;
  }
  return base;
}

struct RunResult {
  State state;
  double sse = 0;
  double sum_log_mu = 0;
  std::size_t n = 0;
  bool valid = true;
};

// Forecasts of y[i], y[i+1], ... (up to max_horizon, within `n` values)
// from the state before y[i] is seen: forecasts[h-1][i+h-1] is made h steps
// before its value.
inline void record_forecasts(const State& s, const EtsSpec& spec, const EtsParams& p, int month, std::size_t i,
                             std::size_t n, int max_horizon, std::vector<std::vector<double>>* forecasts) {
  for (int h = 1; h <= max_horizon && i + static_cast<std::size_t>(h) - 1 < n; ++h) {
    (*forecasts)[static_cast<std::size_t>(h - 1)][i + static_cast<std::size_t>(h) - 1] =
        forecast_from(s, spec, p, month - 1, h);
  }
}

// The one-step forecast from the level and slope carried on (`lb`) and
// the month's seasonal state `sp`.
inline double one_step_mean(double lb, double sp, EtsSeason season) {
  double mu = lb;
  if (season == EtsSeason::kAdditive) mu = lb + sp;
  if (season == EtsSeason::kMultiplicative) mu = lb * sp;
  return mu;
}

// The states after an additive error e = y - mu.
inline void update_after_additive_error(double lb, double b_damped, double e, EtsSeason season, const EtsParams& p,
                                        State* s, double* sp) {
  switch (season) {
    case EtsSeason::kNone:
      s->level = lb + p.alpha * e;
      s->slope = b_damped + p.beta * e;
      break;
    case EtsSeason::kAdditive:
      s->level = lb + p.alpha * e;
      s->slope = b_damped + p.beta * e;
      *sp = *sp + p.gamma * e;
      break;
    case EtsSeason::kMultiplicative:
      s->level = lb + p.alpha * e / *sp;
      s->slope = b_damped + p.beta * e / *sp;
      *sp = *sp + p.gamma * e / lb;
      break;
  }
}

// The states after a relative error e = (y - mu) / mu.
inline void update_after_relative_error(double lb, double b_damped, double mu, double e, EtsSeason season,
                                        const EtsParams& p, State* s, double* sp) {
  switch (season) {
    case EtsSeason::kNone:
      s->level = lb * (1 + p.alpha * e);
      s->slope = b_damped + p.beta * lb * e;
      break;
    case EtsSeason::kAdditive:
      s->level = lb + p.alpha * mu * e;
      s->slope = b_damped + p.beta * mu * e;
      *sp = *sp + p.gamma * mu * e;
      break;
    case EtsSeason::kMultiplicative:
      s->level = lb * (1 + p.alpha * e);
      s->slope = b_damped + p.beta * lb * e;
      *sp = *sp * (1 + p.gamma * e);
      break;
  }
}

// The recursions over all of y. `forecasts[h-1][i]` (when given) receives the
// forecast of y[i] made h steps before.
RunResult run(std::span<const double> y, int start_month, const EtsSpec& spec, const EtsParams& p,
              const State& init, int max_horizon, std::vector<std::vector<double>>* forecasts) {
  RunResult r;
  r.state = init;
  State& s = r.state;
  const double phi = spec.damped ? p.phi : 1.0;
  const bool trend = spec.trend;
  if (forecasts != nullptr) forecasts->assign(static_cast<std::size_t>(max_horizon), std::vector<double>(y.size(), kNaN));
  const std::size_t f = first_value(y);
  for (std::size_t i = f; i < y.size(); ++i) {
    const int month = start_month + static_cast<int>(i);
    if (forecasts != nullptr) record_forecasts(s, spec, p, month, i, y.size(), max_horizon, forecasts);
    const double lb = s.level + (trend ? phi * s.slope : 0.0);
    const double b_damped = trend ? phi * s.slope : 0.0;
    double& sp = s.seasonal[static_cast<std::size_t>(month % kSeasonLength)];
    const double mu = one_step_mean(lb, sp, spec.season);
    if (std::isnan(y[i])) {  // missing: the states run on without an error
      s.level = lb;
      s.slope = b_damped;
      continue;
    }
    if (multiplicative(spec) && (mu <= 0 || lb <= 0)) {
      r.valid = false;
      return r;
    }
    if (spec.error == EtsError::kAdditive) {
      const double e = y[i] - mu;
      r.sse += e * e;
      update_after_additive_error(lb, b_damped, e, spec.season, p, &s, &sp);
    } else {
      const double e = (y[i] - mu) / mu;
      r.sse += e * e;
      r.sum_log_mu += std::log(std::abs(mu));
      update_after_relative_error(lb, b_damped, mu, e, spec.season, p, &s, &sp);
    }
    if (!std::isfinite(s.level) || !std::isfinite(s.slope)) {
      r.valid = false;
      return r;
    }
    ++r.n;
  }
  return r;
}

double criterion(const RunResult& r, const EtsSpec& spec) {
  if (!r.valid || r.n == 0) return kInvalid;
  const double n = static_cast<double>(r.n);
  double value = n * std::log(std::max(r.sse, 1e-300) / n);
  if (spec.error == EtsError::kMultiplicative) value += 2 * r.sum_log_mu;
  return value;
}

Status check_input(std::span<const double> y, const EtsSpec& spec) {
  const std::size_t values = count_values(y);
  const std::size_t needed = spec.season == EtsSeason::kNone ? 4 : 2 * kSeasonLength;
  if (values < needed) {
    return invalid_argument("ETS needs at least " + std::to_string(needed) + " values, got " + std::to_string(values));
  }
  if (multiplicative(spec)) {
    for (double v : y) {
      if (!std::isnan(v) && v <= 0) return invalid_argument("multiplicative ETS needs positive values");
    }
  }
  return Status::ok();
}

// Free parameters in the unit box: alpha, beta / alpha, gamma / (1 - alpha), phi.
struct Problem {
  std::span<const double> y;
  int start_month;
  EtsSpec spec;
  State init;
  EtsParams decode(const std::vector<double>& x) const {
    EtsParams p;
    std::size_t k = 0;
    p.alpha = x[k++];
    p.beta = spec.trend ? x[k++] * p.alpha : 0.0;
    p.gamma = spec.season != EtsSeason::kNone ? x[k++] * (1 - p.alpha) : 0.0;
    p.phi = spec.trend && spec.damped ? x[k++] : 1.0;
    return p;
  }
};

double objective(const std::vector<double>& x, std::vector<double>& /*grad*/, void* data) {
  const auto* problem = static_cast<const Problem*>(data);
  const EtsParams p = problem->decode(x);
  return criterion(run(problem->y, problem->start_month, problem->spec, p, problem->init, 0, nullptr), problem->spec);
}

EtsModel to_model(const RunResult& r, const EtsSpec& spec, const EtsParams& p, int last_month, std::size_t params) {
  EtsModel model;
  model.spec = spec;
  model.params = p;
  const double dof = std::max(1.0, static_cast<double>(r.n) - static_cast<double>(params));
  model.sigma = std::sqrt(r.sse / dof);
  model.level = r.state.level;
  model.slope = r.state.slope;
  model.seasonal.assign(r.state.seasonal.begin(), r.state.seasonal.end());
  model.last_month = last_month;
  model.observations = r.n;
  model.log_likelihood_term = criterion(r, spec);
  return model;
}

}  // namespace

std::vector<double> EtsModel::forecast(int horizon) const {
  State s;
  s.level = level;
  s.slope = slope;
  std::copy_n(seasonal.begin(), std::min<std::size_t>(seasonal.size(), kSeasonLength), s.seasonal.begin());
  std::vector<double> out;
  for (int h = 1; h <= horizon; ++h) out.push_back(forecast_from(s, spec, params, last_month, h));
  return out;
}

double EtsModel::forecast_sd(int h) const {
  const double phi = spec.damped ? params.phi : 1.0;
  double var = 1.0;
  for (int j = 1; j < h; ++j) {
    double c = params.alpha + (spec.trend ? params.beta * damped_sum(phi, j) : 0.0);
    if (spec.season != EtsSeason::kNone && j % kSeasonLength == 0) c += params.gamma;
    var += c * c;
  }
  double scale = sigma;
  if (spec.error == EtsError::kMultiplicative) scale *= std::abs(forecast(h).back());
  return scale * std::sqrt(var);
}

Result<EtsModel> run_ets(std::span<const double> y, int start_month, const EtsSpec& spec, const EtsParams& params,
                         int max_horizon, std::vector<std::vector<double>>* out_forecasts) {
  REAI_RETURN_IF_ERROR(check_input(y, spec));
  const State init = initial_state(y, start_month, spec);
  RunResult r = run(y, start_month, spec, params, init, max_horizon, out_forecasts);
  if (!r.valid) return invalid_argument("ETS recursions diverged with these parameters");
  const std::size_t k = 1 + (spec.trend ? 1 : 0) + (spec.season != EtsSeason::kNone ? 1 : 0) + (spec.damped ? 1 : 0);
  return to_model(r, spec, params, start_month + static_cast<int>(y.size()) - 1, k);
}

Result<EtsModel> fit_ets(std::span<const double> y, int start_month, const EtsSpec& spec) {
  REAI_RETURN_IF_ERROR(check_input(y, spec));
  Problem problem{y, start_month, spec, initial_state(y, start_month, spec)};
  std::vector<double> x{0.2}, lower{1e-4}, upper{0.9999};
  if (spec.trend) {
    x.push_back(0.1);
    lower.push_back(1e-4);
    upper.push_back(0.9999);
  }
  if (spec.season != EtsSeason::kNone) {
    x.push_back(0.1);
    lower.push_back(1e-4);
    upper.push_back(0.9999);
  }
  if (spec.trend && spec.damped) {
    x.push_back(0.95);
    lower.push_back(0.8);
    upper.push_back(0.98);
  }
  nlopt::opt opt(nlopt::LN_BOBYQA, static_cast<unsigned>(x.size()));
  opt.set_lower_bounds(lower);
  opt.set_upper_bounds(upper);
  opt.set_min_objective(objective, &problem);
  opt.set_xtol_rel(1e-5);
  opt.set_maxeval(1500);
  double best = kInvalid;
  try {
    opt.optimize(x, best);
  } catch (const nlopt::roundoff_limited&) {
    // BOBYQA stops on round-off near the optimum; x holds its best point.
  } catch (const std::exception& e) {
    return internal_error(std::string("NLopt failed fitting ETS: ") + e.what());
  }
  const EtsParams params = problem.decode(x);
  RunResult r = run(y, start_month, spec, params, problem.init, 0, nullptr);
  if (!r.valid) return invalid_argument("ETS found no stable parameters for this series");
  return to_model(r, spec, params, start_month + static_cast<int>(y.size()) - 1, x.size());
}

std::vector<double> seasonal_naive(std::span<const double> y, int horizon) {
  std::vector<double> out;
  double last = kNaN;
  for (double v : y) {
    if (!std::isnan(v)) last = v;
  }
  const auto n = static_cast<long>(y.size());
  for (int h = 1; h <= horizon; ++h) {
    double value = kNaN;
    for (long i = n - 1 + h - kSeasonLength; i >= 0; i -= kSeasonLength) {
      if (i < n && !std::isnan(y[static_cast<std::size_t>(i)])) {
        value = y[static_cast<std::size_t>(i)];
        break;
      }
    }
    out.push_back(std::isnan(value) ? last : value);
  }
  return out;
}

}  // namespace reai::analytics
