// Agent monthly closings (pipeline + not-yet-signed deals, shrunk towards the
// team) and coaching findings.
#include "analytics/agents.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <unordered_map>

#include "analytics/deal_history.h"

namespace reai::analytics {

using detail::DealHistory;
using detail::kDay;
using detail::month_index;
using detail::month_start;
using detail::Opportunity;

namespace {

constexpr int kStages = 4;
constexpr int kAgeBuckets = 2;
constexpr double kAgeSplitDays = 21;

std::optional<UnixSeconds> close_time(const Opportunity& o) {
  for (const auto& r : o.rows)
    if (r.second == Stage::kClosed) return r.first;
  return std::nullopt;
}

int age_bucket(double days_in_stage) { return days_in_stage < kAgeSplitDays ? 0 : 1; }

// The forecast's parameters fitted on rows before the origin month.
struct Fitted {
  int horizon = 0;
  // P(closes in month origin + h | stage, age bucket) for deals open at a month start.
  std::vector<std::array<std::array<double, kAgeBuckets>, kStages>> pipeline_rate;
  // Per active agent: closings of deals signed after the month start, by
  // horizon and calendar month of the target (-1 when never observed).
  std::vector<std::array<double, 12>> new_rate_by_month;
  std::vector<double> new_rate;  // by horizon, all months
  std::unordered_map<std::string, double> agent_multiplier;
  double dispersion = 1;
  double tail = 0.10;  // interval = [q(tail), q(1 - tail)], set by the backtest
};

// Counts over the history's months, by horizon: deals open at a month start
// (by stage and age bucket) and those of them that closed h months later, and
// per calendar month of the target the new-deal closings per active agent.
struct MonthTallies {
  explicit MonthTallies(int horizon) : opens(horizon), closes(horizon), new_sum(horizon), new_n(horizon) {
    for (int h = 0; h < horizon; ++h) {
      for (auto& s : opens[h]) s.fill(0);
      for (auto& s : closes[h]) s.fill(0);
      new_sum[h].fill(0);
      new_n[h].fill(0);
    }
  }
  std::vector<std::array<std::array<double, kAgeBuckets>, kStages>> opens, closes;
  std::vector<std::array<double, 12>> new_sum, new_n;
};

// Adds month `mi` (every horizon of it ends by the origin) to the tallies.
void tally_month(const DealHistory& index, int mi, int horizon, MonthTallies& t) {
  const UnixSeconds s = month_start(mi);
  std::unordered_map<std::string, std::vector<double>> new_closings;  // agent -> by h
  std::set<std::string> active;
  for (const Opportunity& o : index.opportunities()) {
    if (o.first_ts() < s && o.first_ts() >= s - 180 * 86400) active.insert(o.agent_id);
    const auto closed = close_time(o);
    const int closed_month = closed ? month_index(*closed) : -1;
    if (o.open_at(s)) {
      const auto& row = o.rows[static_cast<std::size_t>(o.row_at(s))];
      const int k = static_cast<int>(row.second);
      const int b = age_bucket((s - row.first) / kDay);
      for (int h = 0; h < horizon; ++h) {
        t.opens[h][k][b] += 1;
        t.closes[h][k][b] += closed_month == mi + h ? 1 : 0;
      }
    } else if (o.first_ts() >= s && closed && closed_month < mi + horizon) {
      auto& v = new_closings[o.agent_id];
      v.resize(horizon, 0);
      v[closed_month - mi] += 1;
    }
  }
  if (active.empty()) return;
  for (int h = 0; h < horizon; ++h) {
    double total = 0;
    for (const auto& [agent, v] : new_closings) total += v[h];
    t.new_sum[h][(mi + h) % 12] += total / static_cast<double>(active.size());
    t.new_n[h][(mi + h) % 12] += 1;
  }
}

// The pipeline and new-deal rates of the tallies; a calendar month never
// observed gets -1 so that new_deal_rate falls back to the all-months rate.
void set_rates(const MonthTallies& t, int horizon, Fitted& f) {
  f.pipeline_rate.resize(horizon);
  f.new_rate_by_month.resize(horizon);
  f.new_rate.resize(horizon);
  for (int h = 0; h < horizon; ++h) {
    for (int k = 0; k < kStages; ++k)
      for (int b = 0; b < kAgeBuckets; ++b)
        f.pipeline_rate[h][k][b] = (t.closes[h][k][b] + 0.1) / (t.opens[h][k][b] + 1);
    double sum = 0, n = 0;
    for (int c = 0; c < 12; ++c) {
      f.new_rate_by_month[h][c] = t.new_n[h][c] > 0 ? t.new_sum[h][c] / t.new_n[h][c] : -1;
      sum += t.new_sum[h][c];
      n += t.new_n[h][c];
    }
    f.new_rate[h] = n > 0 ? sum / n : 0;
  }
}

// Signings per month over the last 12 months, shrunk towards the team mean,
// as a multiple of the team's rate.
std::unordered_map<std::string, double> agent_multipliers(const DealHistory& index, int origin,
                                                          double shrinkage_signings) {
  const UnixSeconds origin_start = month_start(origin);
  const UnixSeconds year_ago = month_start(origin - 12);
  std::unordered_map<std::string, double> signings;
  std::unordered_map<std::string, UnixSeconds> first_seen;
  for (const Opportunity& o : index.opportunities()) {
    auto [it, inserted] = first_seen.try_emplace(o.agent_id, o.first_ts());
    if (!inserted) it->second = std::min(it->second, o.first_ts());
    if (o.first_ts() >= year_ago && o.first_ts() < origin_start) signings[o.agent_id] += 1;
  }
  double team_rate = 0, team_months = 0;
  std::unordered_map<std::string, double> exposure;
  for (const auto& [agent, seen] : first_seen) {
    const double months = std::clamp((origin_start - std::max(seen, year_ago)) / (30.44 * kDay), 0.5, 12.0);
    exposure[agent] = months;
    team_rate += signings[agent];
    team_months += months;
  }
  team_rate = team_months > 0 ? team_rate / team_months : 0;
  // The prior is worth `shrinkage_signings` signings at the team's rate.
  const double prior_months = team_rate > 0 ? shrinkage_signings / team_rate : 1;
  std::unordered_map<std::string, double> multiplier;
  for (const auto& [agent, months] : exposure) {
    const double rate = (signings[agent] + prior_months * team_rate) / (months + prior_months);
    multiplier[agent] = team_rate > 0 ? rate / team_rate : 1;
  }
  return multiplier;
}

Fitted fit(const DealHistory& index, int origin, int horizon, double shrinkage_signings) {
  Fitted f;
  f.horizon = horizon;
  MonthTallies tallies(horizon);
  const int first = month_index(index.first_ts()) + 1;
  for (int mi = first; mi + horizon <= origin; ++mi) tally_month(index, mi, horizon, tallies);
  set_rates(tallies, horizon, f);
  f.agent_multiplier = agent_multipliers(index, origin, shrinkage_signings);
  return f;
}

double new_deal_rate(const Fitted& f, int h, int target_month) {
  const double seasonal = f.new_rate_by_month[h][target_month % 12];
  return seasonal >= 0 ? seasonal : f.new_rate[h];
}

// Expected closings per agent and horizon from deals open at the origin and
// deals not yet signed.
std::map<std::string, std::vector<std::pair<double, double>>> expected(const DealHistory& index, const Fitted& f,
                                                                       int origin, UnixSeconds as_of) {
  std::map<std::string, std::vector<std::pair<double, double>>> out;  // (total, pipeline)
  for (const auto& [agent, mult] : f.agent_multiplier) {
    auto& v = out[agent];
    v.resize(f.horizon);
    for (int h = 0; h < f.horizon; ++h) v[h].first = mult * new_deal_rate(f, h, origin + h);
  }
  for (const Opportunity& o : index.opportunities()) {
    if (!o.open_at(as_of)) continue;
    const auto& row = o.rows[static_cast<std::size_t>(o.row_at(as_of))];
    const int k = static_cast<int>(row.second);
    const int b = age_bucket((as_of - row.first) / kDay);
    auto& v = out[o.agent_id];
    v.resize(f.horizon);
    for (int h = 0; h < f.horizon; ++h) {
      v[h].first += f.pipeline_rate[h][k][b];
      v[h].second += f.pipeline_rate[h][k][b];
    }
  }
  return out;
}

std::map<std::pair<std::string, int>, int> closings_by_month(const DealHistory& index, int from, int to) {
  std::map<std::pair<std::string, int>, int> out;
  for (const Opportunity& o : index.opportunities()) {
    const auto closed = close_time(o);
    if (!closed) continue;
    const int m = month_index(*closed);
    if (m >= from && m < to) out[{o.agent_id, m}] += 1;
  }
  return out;
}

// Negative binomial (mean mu, variance mu * dispersion) quantile; Poisson
// when dispersion <= 1.
int count_quantile(double mu, double dispersion, double q) {
  if (mu <= 0) return 0;
  double cdf = 0;
  if (dispersion <= 1.0001) {
    double pmf = std::exp(-mu);
    for (int k = 0; k < 1000; ++k) {
      cdf += pmf;
      if (cdf >= q) return k;
      pmf *= mu / (k + 1);
    }
    return 1000;
  }
  const double r = mu / (dispersion - 1);
  const double p = r / (r + mu);  // success probability
  double pmf = std::pow(p, r);
  for (int k = 0; k < 1000; ++k) {
    cdf += pmf;
    if (cdf >= q) return k;
    pmf *= (k + r) / (k + 1) * (1 - p);
  }
  return 1000;
}

}  // namespace

Status check_agent_ids_name_one_tenant(const CrmHistory& history) {
  std::unordered_map<std::string_view, std::string_view> tenant_of;
  auto check = [&](std::string_view agent, std::string_view tenant) -> Status {
    if (agent.empty()) return Status::ok();
    auto [it, inserted] = tenant_of.try_emplace(agent, tenant);
    if (inserted || it->second == tenant) return Status::ok();
    return invalid_argument("agent id '" + std::string(agent) + "' is used by tenants '" + std::string(it->second) +
                            "' and '" + std::string(tenant) +
                            "': agents are forecast and coached by id, so give each tenant its own file");
  };
  for (const auto& s : history.stages) REAI_RETURN_IF_ERROR(check(s.agent_id, s.tenant_id));
  for (const auto& c : history.contacts) REAI_RETURN_IF_ERROR(check(c.assigned_agent_id, c.tenant_id));
  return Status::ok();
}

Result<std::vector<AgentMonthForecast>> forecast_agent_closings(const CrmHistory& history, UnixSeconds as_of,
                                                                const AgentForecastOptions& options) {
  if (options.horizon_months < 1 || options.horizon_months > 24)
    return invalid_argument("horizon-months must be 1..24, got " + std::to_string(options.horizon_months));
  REAI_RETURN_IF_ERROR(check_agent_ids_name_one_tenant(history));
  const DealHistory index(truncate_history(history, as_of));
  if (index.opportunities().empty()) return invalid_argument("no opportunity rows before the as-of instant");
  const int as_of_month = month_index(as_of);
  const int origin = month_start(as_of_month) == as_of ? as_of_month : as_of_month + 1;
  if (origin - month_index(index.first_ts()) < 3 + options.horizon_months)
    return invalid_argument("agent forecast needs at least " + std::to_string(3 + options.horizon_months) +
                            " months of history before the as-of instant");
  Fitted f = fit(index, origin, options.horizon_months, options.shrinkage_signings);

  // Dispersion and interval tail from a rolling backtest: origins whose
  // horizon ends before this origin, each fitted only on rows before it.
  // Counts are discrete, so nominal 10%/90% quantiles over-cover; the tail is
  // chosen so the backtest covers about 85% (its origins are older), with the tail capped at 18%
  // (a 64% nominal central interval) because the latest quarter varies more.
  std::vector<std::pair<double, double>> backtest;  // (mu, actual)
  for (int back = origin - options.horizon_months - 5; back <= origin - options.horizon_months; ++back) {
    if (back - month_index(index.first_ts()) < 3 + options.horizon_months) continue;
    const UnixSeconds start = month_start(back);
    const DealHistory past(truncate_history(history, start));
    const Fitted pf = fit(past, back, options.horizon_months, options.shrinkage_signings);
    const auto actual = closings_by_month(index, back, back + options.horizon_months);
    for (const auto& [agent, v] : expected(past, pf, back, start)) {
      for (int h = 0; h < options.horizon_months; ++h) {
        auto it = actual.find({agent, back + h});
        backtest.emplace_back(std::max(v[h].first, 0.05), it == actual.end() ? 0 : it->second);
      }
    }
  }
  if (backtest.size() > 20) {
    double pearson = 0;
    for (const auto& [mu, y] : backtest) pearson += (y - mu) * (y - mu) / mu;
    f.dispersion = std::clamp(pearson / static_cast<double>(backtest.size()), 1.0, 6.0);
    double best_gap = 1;
    for (double tail = 0.10; tail <= 0.2001; tail += 0.01) {
      double covered = 0;
      for (const auto& [mu, y] : backtest)
        covered += (y >= count_quantile(mu, f.dispersion, tail) && y <= count_quantile(mu, f.dispersion, 1 - tail)) ? 1 : 0;
      const double gap = std::abs(covered / static_cast<double>(backtest.size()) - 0.85);
      if (gap < best_gap - 1e-9) {
        best_gap = gap;
        f.tail = tail;
      }
    }
  } else {
    f.dispersion = 1.5;
  }

  std::vector<AgentMonthForecast> out;
  for (const auto& [agent, v] : expected(index, f, origin, as_of)) {
    for (int h = 0; h < options.horizon_months; ++h) {
      AgentMonthForecast m;
      m.agent_id = agent;
      m.year = (origin + h) / 12;
      m.month = (origin + h) % 12 + 1;
      m.expected_closings = v[h].first;
      m.from_pipeline = v[h].second;
      m.lower80 = count_quantile(v[h].first, f.dispersion, f.tail);
      m.upper80 = count_quantile(v[h].first, f.dispersion, 1 - f.tail);
      out.push_back(std::move(m));
    }
  }
  return out;
}

std::vector<AgentMonthActual> actual_closings(const CrmHistory& history, UnixSeconds from, UnixSeconds to) {
  const DealHistory index(truncate_history(history, to));
  std::vector<AgentMonthActual> out;
  for (const auto& [key, count] : closings_by_month(index, month_index(from), month_index(to - 1) + 1)) {
    AgentMonthActual a;
    a.agent_id = key.first;
    a.year = key.second / 12;
    a.month = key.second % 12 + 1;
    a.closings = count;
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace reai::analytics
