// Agent performance: monthly closings per agent for the next months with an
// 80% interval, and coaching findings from the agent's own numbers against
// the team's.
//
// The forecast adds two parts: the agent's open pipeline at as-of (each deal's
// chance of closing in each month, from how deals of the same stage and age
// closed in the history) and deals not yet signed (the team's per-agent rate of
// such closings for that month and horizon, scaled by the agent's signing rate
// shrunk towards the team's, so a new agent is not forecast from three data
// points). Intervals are negative-binomial with the dispersion measured by a
// rolling backtest inside the history. Only rows before as-of are used.
#pragma once

#include <string>
#include <vector>

#include "analytics/deals.h"
#include "core/status.h"

namespace reai::analytics {

struct AgentMonthForecast {
  std::string agent_id;
  int year = 0;
  int month = 0;  // 1..12
  double expected_closings = 0;
  double lower80 = 0;
  double upper80 = 0;
  double from_pipeline = 0;  // part of expected_closings from deals open at as-of
};

struct AgentForecastOptions {
  int horizon_months = 3;
  // Pseudo-count (signings per year) pulling an agent's signing rate towards
  // the team's average.
  double shrinkage_signings = 8;
};

// Forecasts months starting with the month of `as_of` when as_of is the first
// of a month at midnight UTC, else the month after. Agents are those with an
// opportunity row before as_of. Sorted by agent, then month. Fails with
// InvalidArgument when horizon_months is outside 1..24 or fewer than three
// months of history precede as_of, or when one agent id appears under two
// tenants (see check_agent_ids_name_one_tenant).
Result<std::vector<AgentMonthForecast>> forecast_agent_closings(const CrmHistory& history, UnixSeconds as_of,
                                                                const AgentForecastOptions& options);

// Agent forecasts and coaching are keyed by agent id, as their CSVs are. An
// id is a brokerage's own, so a history in which two tenants use the same
// agent id would pool two agents: InvalidArgument naming the id and tenants.
Status check_agent_ids_name_one_tenant(const CrmHistory& history);

struct CoachingFinding {
  std::string agent_id;
  // Short plain sentences a broker reads at a glance, the agent's number
  // first, then the team's: "Replies to new leads in 4.2 h (median of 45
  // leads); the team's median is 1.1 h. Team leads answered within 1.1 h sign
  // within 90 days 2.3x as often (23% vs 10%)." A gap too large to be chance
  // adds "Too large a gap to be chance (z = 2.5)."
  std::string finding;
  double strength = 0;  // |z| of the difference; findings are sorted by it per agent
};

// Findings for every agent with opportunity rows or assigned leads before
// as_of, compared with the team (the agent's tenant). Uses contacts/events
// when present (speed-to-lead, follow-up touches, lead-to-signed by source)
// and stages (stage conversion, time to close). Every agent gets at least one
// finding. Sorted by agent, strongest first.
std::vector<CoachingFinding> coaching_findings(const CrmHistory& history, UnixSeconds as_of);

// Actual closings per agent and month in [from, to) (evaluation).
struct AgentMonthActual {
  std::string agent_id;
  int year = 0;
  int month = 0;
  int closings = 0;
};
std::vector<AgentMonthActual> actual_closings(const CrmHistory& history, UnixSeconds from, UnixSeconds to);

}  // namespace reai::analytics
