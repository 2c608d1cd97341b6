// Coaching findings: an agent's own numbers against the team's (the agent's
// tenant), each with a z-score so the strongest differences come first.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

#include "analytics/agents.h"
#include "analytics/deal_history.h"
#include "core/tenant_id.h"

namespace reai::analytics {
namespace {

using detail::kDay;

constexpr UnixSeconds kFollowUpWindow = 14 * 86400;
constexpr double kMinLeads = 10;

struct LeadStats {
  std::string agent;
  std::string tenant;
  std::string source;
  std::optional<double> speed_minutes;  // first outreach after created_at
  std::optional<int> touches_14d;       // outreach in the first 14 days (when elapsed)
  std::optional<bool> signed_90d;       // when the 90-day window has matured
};

struct Rate {
  double hits = 0, n = 0;
  double value() const { return n > 0 ? hits / n : 0; }
};

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0 : s / static_cast<double>(v.size());
}

double stddev(const std::vector<double>& v) {
  if (v.size() < 2) return 0;
  const double m = mean(v);
  double s = 0;
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}

// z of an agent's proportion against the team's rate.
double proportion_z(const Rate& agent, const Rate& team) {
  const double p = std::clamp(team.value(), 0.01, 0.99);
  return agent.n > 0 ? (agent.value() - p) / std::sqrt(p * (1 - p) / agent.n) : 0;
}

std::string pct(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%.0f%%", 100 * x);
  return b;
}

std::string num(double x, int decimals = 1) {
  char b[32];
  std::snprintf(b, sizeof b, "%.*f", decimals, x);
  return b;
}

// A reply time a broker reads at a glance: "12 min", "4.2 h", "3.1 days".
std::string duration(double minutes) {
  if (minutes < 10) return num(minutes) + " min";
  if (minutes < 90) return num(minutes, 0) + " min";
  if (minutes < 48 * 60) return num(minutes / 60) + " h";
  return num(minutes / 1440) + " days";
}

// "3 leads", "1 lead".
std::string count_of(double n, const char* one, const char* many) {
  const long k = std::lround(n);
  return std::to_string(k) + " " + (k == 1 ? one : many);
}

// Contact ids are each tenant's own: every contact lookup names the tenant
// (agent ids are refused when two tenants share one, by the callers that pool
// tenants: check_agent_ids_name_one_tenant).

// Each contact's first signing (stage row), by tenant_scoped_key.
std::unordered_map<std::string, UnixSeconds> first_signing_per_contact(const CrmHistory& history) {
  std::unordered_map<std::string, UnixSeconds> signed_at;
  for (const auto& s : history.stages) {
    auto [it, inserted] = signed_at.try_emplace(tenant_scoped_key(s.tenant_id, s.contact_id), s.ts);
    if (!inserted) it->second = std::min(it->second, s.ts);
  }
  return signed_at;
}

// The leads with an assigned agent, in contact order, with their creation
// times and where each is by tenant_scoped_key.
struct LeadTable {
  std::vector<LeadStats> leads;
  std::vector<UnixSeconds> created;
  std::unordered_map<std::string, std::size_t> index;
};

// Assigned leads with their signing outcome (when matured) and no outreach
// counted yet.
LeadTable assigned_leads(const CrmHistory& history, UnixSeconds as_of) {
  const auto signed_at = first_signing_per_contact(history);
  LeadTable table;
  for (const auto& c : history.contacts) {
    if (c.assigned_agent_id.empty()) continue;
    table.index[tenant_scoped_key(c.tenant_id, c.contact_id)] = table.leads.size();
    LeadStats l;
    l.agent = c.assigned_agent_id;
    l.tenant = c.tenant_id;
    l.source = c.source.empty() ? "unknown" : c.source;
    if (c.created_at + kConversionWindowSeconds <= as_of) {
      auto it = signed_at.find(tenant_scoped_key(c.tenant_id, c.contact_id));
      l.signed_90d = it != signed_at.end() && it->second <= c.created_at + kConversionWindowSeconds;
    }
    if (c.created_at + kFollowUpWindow <= as_of) l.touches_14d = 0;
    table.leads.push_back(std::move(l));
    table.created.push_back(c.created_at);
  }
  return table;
}

// Speed-to-lead and first-14-day touches from the outreach events.
void count_outreach(const CrmHistory& history, LeadTable& table) {
  for (const auto& e : history.events) {  // sorted by ts
    if (!is_outreach(e.type)) continue;
    auto it = table.index.find(tenant_scoped_key(e.tenant_id, e.contact_id));
    if (it == table.index.end()) continue;
    LeadStats& l = table.leads[it->second];
    const UnixSeconds c = table.created[it->second];
    if (e.ts < c) continue;
    if (!l.speed_minutes) l.speed_minutes = (e.ts - c) / 60.0;
    if (l.touches_14d && e.ts < c + kFollowUpWindow) *l.touches_14d += 1;
  }
}

// Each assigned lead's numbers.
std::vector<LeadStats> lead_stats(const CrmHistory& history, UnixSeconds as_of) {
  LeadTable table = assigned_leads(history, as_of);
  count_outreach(history, table);
  return std::move(table.leads);
}

// Resolved outcomes, offer -> under contract, days to close.
struct DealStats {
  Rate closed, offer_to_contract;
  std::vector<double> days_to_close;
};

struct DealGroups {
  std::map<std::string, DealStats> by_agent, by_team;
};

// How one opportunity went: its first terminal stage (if any), whether it
// reached an offer and under contract before it, its days to close.
struct OpportunityOutcome {
  std::optional<Stage> terminal;
  bool offer = false, contract = false;
  std::optional<double> days_to_close;
};

OpportunityOutcome opportunity_outcome(const detail::Opportunity& o) {
  OpportunityOutcome out;
  for (const auto& r : o.rows) {
    out.offer |= r.second == Stage::kOffer;
    out.contract |= r.second == Stage::kUnderContract;
    if (r.second == Stage::kClosed || r.second == Stage::kLost) {
      out.terminal = r.second;
      if (r.second == Stage::kClosed) out.days_to_close = (r.first - o.first_ts()) / kDay;
      break;
    }
  }
  return out;
}

DealGroups deal_groups(const detail::DealHistory& deals) {
  DealGroups groups;
  for (const auto& o : deals.opportunities()) {
    const OpportunityOutcome d = opportunity_outcome(o);
    if (d.days_to_close) {
      groups.by_agent[o.agent_id].days_to_close.push_back(*d.days_to_close);
      groups.by_team[o.tenant_id].days_to_close.push_back(*d.days_to_close);
    }
    if (!d.terminal) continue;
    for (auto* s : {&groups.by_agent[o.agent_id], &groups.by_team[o.tenant_id]}) {
      s->closed.n += 1;
      s->closed.hits += *d.terminal == Stage::kClosed ? 1 : 0;
      if (d.offer) {
        s->offer_to_contract.n += 1;
        s->offer_to_contract.hits += d.contract ? 1 : 0;
      }
    }
  }
  return groups;
}

// Every agent with opportunities or assigned leads, and the agent's tenant
// (the opportunities' when both name one).
std::map<std::string, std::string> agent_tenants(const detail::DealHistory& deals,
                                                 const std::vector<LeadStats>& leads) {
  std::map<std::string, std::string> agent_tenant;
  for (const auto& o : deals.opportunities()) agent_tenant[o.agent_id] = o.tenant_id;
  for (const auto& l : leads) agent_tenant.emplace(l.agent, l.tenant);
  return agent_tenant;
}

// Lead numbers of an agent or a team.
struct LeadGroup {
  std::vector<double> speed, touches;
  Rate signed_rate;
  std::map<std::string, Rate> by_source;
};

struct LeadGroups {
  std::map<std::string, LeadGroup> by_agent, by_team;
};

LeadGroups lead_groups(const std::vector<LeadStats>& leads) {
  LeadGroups groups;
  for (const auto& l : leads) {
    for (auto* g : {&groups.by_agent[l.agent], &groups.by_team[l.tenant]}) {
      if (l.speed_minutes) g->speed.push_back(*l.speed_minutes);
      if (l.touches_14d) g->touches.push_back(*l.touches_14d);
      if (l.signed_90d) {
        g->signed_rate.n += 1;
        g->signed_rate.hits += *l.signed_90d ? 1 : 0;
        g->by_source[l.source].n += 1;
        g->by_source[l.source].hits += *l.signed_90d ? 1 : 0;
      }
    }
  }
  return groups;
}

// The entry of `key`, or an empty one when there is none.
template <typename Value>
const Value& entry_or_empty(const std::map<std::string, Value>& map, const std::string& key) {
  static const Value empty{};
  const auto it = map.find(key);
  return it == map.end() ? empty : it->second;
}

// Signing rates of a team's matured leads answered at most (first) and more
// than (second) the team's median speed-to-lead.
using SpeedEffect = std::pair<Rate, Rate>;

// |z| of a difference between two rates that chance alone rarely makes
// (about 5% of the time).
constexpr double kClearEffectZ = 1.96;

// The two-proportion z statistic of a.value() - b.value() (pooled rate); 0
// when the pooled rate is 0 or 1 (no spread to measure against).
double two_proportion_z(const Rate& a, const Rate& b) {
  const double pooled = (a.hits + b.hits) / (a.n + b.n);
  const double se = std::sqrt(pooled * (1 - pooled) * (1 / a.n + 1 / b.n));
  return se > 0 ? (a.value() - b.value()) / se : 0;
}

// Effect of speed-to-lead on each team: matured leads answered faster than
// the team median sign at what rate, against the slower half.
std::map<std::string, SpeedEffect> speed_effect_by_tenant(const std::vector<LeadStats>& leads,
                                                          const std::map<std::string, LeadGroup>& team_leads) {
  std::map<std::string, SpeedEffect> speed_effect;
  for (const auto& l : leads) {
    if (!l.speed_minutes || !l.signed_90d) continue;
    const double team_median = median(entry_or_empty(team_leads, l.tenant).speed);
    Rate& r = *l.speed_minutes <= team_median ? speed_effect[l.tenant].first : speed_effect[l.tenant].second;
    r.n += 1;
    r.hits += *l.signed_90d ? 1 : 0;
  }
  return speed_effect;
}

// An agent's numbers and the agent's team's, side by side.
struct AgentComparison {
  const std::string& agent;
  const LeadGroup& al;
  const LeadGroup& tl;
  const DealStats& ad;
  const DealStats& td;
  const SpeedEffect& team_speed_effect;
};

using MaybeFinding = std::optional<CoachingFinding>;

CoachingFinding finding(const AgentComparison& a, double z, std::string text) {
  return {a.agent, std::move(text), std::abs(z)};
}

MaybeFinding speed_to_lead_finding(const AgentComparison& a) {
  const LeadGroup& al = a.al;
  const LeadGroup& tl = a.tl;
  if (al.speed.size() < kMinLeads) return std::nullopt;
  // Log minutes: speed-to-lead is heavy-tailed.
  std::vector<double> a_log, t_log;
  for (double s : al.speed) a_log.push_back(std::log1p(s));
  for (double s : tl.speed) t_log.push_back(std::log1p(s));
  const double z = (mean(a_log) - mean(t_log)) / std::max(1e-9, stddev(t_log) / std::sqrt(a_log.size()));
  const double team_median = median(tl.speed);
  std::string text = "Replies to new leads in " + duration(median(al.speed)) + " (median of " +
                     count_of(static_cast<double>(al.speed.size()), "lead", "leads") + "); the team's median is " +
                     duration(team_median) + ".";
  const auto& [fast, slow] = a.team_speed_effect;
  if (fast.n >= 30 && slow.n >= 30) {
    if (std::abs(two_proportion_z(fast, slow)) < kClearEffectZ) {
      // A ratio of two rates that differ by chance would be read as an
      // effect: say there is none to see instead.
      text += " In this team, leads answered within " + duration(team_median) +
              " and slower ones sign within 90 days about as often (" + pct(fast.value()) + " vs " +
              pct(slow.value()) + ").";
    } else {
      text += " Team leads answered within " + duration(team_median) + " sign within 90 days ";
      text += slow.value() > 0 ? num(fast.value() / slow.value()) + "x as often (" + pct(fast.value()) + " vs " +
                                     pct(slow.value()) + ")."
                               : "at " + pct(fast.value()) + ", slower ones at " + pct(slow.value()) + ".";
    }
  }
  return finding(a, z, text);
}

MaybeFinding follow_up_touches_finding(const AgentComparison& a) {
  const LeadGroup& al = a.al;
  const LeadGroup& tl = a.tl;
  if (al.touches.size() < kMinLeads) return std::nullopt;
  const double z =
      (mean(al.touches) - mean(tl.touches)) / std::max(1e-9, stddev(tl.touches) / std::sqrt(al.touches.size()));
  return finding(a, z,
                 "Follows up " + num(mean(al.touches)) + " times per lead in its first 14 days; the team averages " +
                     num(mean(tl.touches)) + ".");
}

MaybeFinding lead_to_signed_finding(const AgentComparison& a) {
  const Rate& mine = a.al.signed_rate;
  const Rate& team = a.tl.signed_rate;
  if (mine.n < kMinLeads) return std::nullopt;
  return finding(a, proportion_z(mine, team),
                 "Signs " + pct(mine.value()) + " of leads within 90 days (" +
                     count_of(mine.n, "lead", "leads") + "); the team signs " + pct(team.value()) + ".");
}

// The lead source where the agent's signing rate differs most from the
// team's on that source.
MaybeFinding lead_source_finding(const AgentComparison& a) {
  if (a.al.signed_rate.n < kMinLeads) return std::nullopt;
  double best_z = 0;
  std::string best;
  for (const auto& [source, rate] : a.al.by_source) {
    if (rate.n < kMinLeads) continue;
    const auto team_it = a.tl.by_source.find(source);
    if (team_it == a.tl.by_source.end()) continue;
    const double z = proportion_z(rate, team_it->second);
    if (std::abs(z) > std::abs(best_z)) {
      best_z = z;
      best = "Signs " + pct(rate.value()) + " of " + source + " leads within 90 days (" +
             count_of(rate.n, "lead", "leads") + "); the team signs " + pct(team_it->second.value()) + " of them.";
    }
  }
  if (best.empty()) return std::nullopt;
  return finding(a, best_z, best);
}

MaybeFinding deals_closed_finding(const AgentComparison& a) {
  const Rate& mine = a.ad.closed;
  const Rate& team = a.td.closed;
  if (mine.n < 5) return std::nullopt;
  return finding(a, proportion_z(mine, team),
                 "Closes " + pct(mine.value()) + " of signed deals (" + count_of(mine.n, "resolved deal", "resolved deals") +
                     "); the team closes " + pct(team.value()) + ".");
}

MaybeFinding offer_to_contract_finding(const AgentComparison& a) {
  const Rate& mine = a.ad.offer_to_contract;
  const Rate& team = a.td.offer_to_contract;
  if (mine.n < 5) return std::nullopt;
  return finding(a, proportion_z(mine, team),
                 "Gets " + pct(mine.value()) + " of offers under contract (" + count_of(mine.n, "offer", "offers") +
                     "); the team gets " + pct(team.value()) + ".");
}

MaybeFinding days_to_close_finding(const AgentComparison& a) {
  const std::vector<double>& mine = a.ad.days_to_close;
  const std::vector<double>& team = a.td.days_to_close;
  if (mine.size() < 5) return std::nullopt;
  const double z = (mean(mine) - mean(team)) / std::max(1e-9, stddev(team) / std::sqrt(mine.size()));
  return finding(a, z,
                 "Takes " + num(median(mine), 0) + " days from signing to closing (median of " +
                     count_of(static_cast<double>(mine.size()), "deal", "deals") + "); the team takes " +
                     num(median(team), 0) + ".");
}

CoachingFinding too_little_history_finding(const AgentComparison& a) {
  return finding(a, 0,
                 "Too little history to compare with the team yet: " +
                     count_of(static_cast<double>(a.al.speed.size()), "lead", "leads") + " with outreach, " +
                     count_of(a.ad.closed.n, "resolved deal", "resolved deals") +
                     ". Forecasts lean on the team's numbers.");
}

// Every finding of one agent, in the order ties are kept in.
std::vector<CoachingFinding> all_agent_findings(const AgentComparison& a) {
  std::vector<CoachingFinding> mine;
  for (auto* of : {speed_to_lead_finding, follow_up_touches_finding, lead_to_signed_finding, lead_source_finding,
                   deals_closed_finding, offer_to_contract_finding, days_to_close_finding}) {
    if (auto f = of(a)) mine.push_back(std::move(*f));
  }
  if (mine.empty()) mine.push_back(too_little_history_finding(a));
  return mine;
}

// The agent's three strongest findings, marked when significant, appended
// to out.
void append_strongest_findings(std::vector<CoachingFinding> mine, std::vector<CoachingFinding>& out) {
  std::stable_sort(mine.begin(), mine.end(), [](const auto& a, const auto& b) { return a.strength > b.strength; });
  if (mine.size() > 3) mine.resize(3);
  for (auto& f : mine) {
    if (f.strength >= 1.96) f.finding += " Too large a gap to be chance (z = " + num(f.strength) + ").";
    out.push_back(std::move(f));
  }
}

}  // namespace

std::vector<CoachingFinding> coaching_findings(const CrmHistory& full_history, UnixSeconds as_of) {
  const CrmHistory history = truncate_history(full_history, as_of);
  const std::vector<LeadStats> leads = lead_stats(history, as_of);
  const detail::DealHistory deals(history);
  const DealGroups deal_numbers = deal_groups(deals);
  const LeadGroups lead_numbers = lead_groups(leads);
  const auto speed_effect = speed_effect_by_tenant(leads, lead_numbers.by_team);
  std::vector<CoachingFinding> out;
  for (const auto& [agent, tenant] : agent_tenants(deals, leads)) {
    const AgentComparison comparison{agent,
                                     entry_or_empty(lead_numbers.by_agent, agent),
                                     entry_or_empty(lead_numbers.by_team, tenant),
                                     entry_or_empty(deal_numbers.by_agent, agent),
                                     entry_or_empty(deal_numbers.by_team, tenant),
                                     entry_or_empty(speed_effect, tenant)};
    append_strongest_findings(all_agent_findings(comparison), out);
  }
  return out;
}

}  // namespace reai::analytics
