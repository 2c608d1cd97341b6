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

// Contact ids are each tenant's own: every contact lookup names the tenant
// (agent ids are refused when two tenants share one, by the callers that pool
// tenants: check_agent_ids_name_one_tenant).
std::string tenant_key(const std::string& tenant_id, const std::string& id) { return tenant_id + '\x1f' + id; }

}  // namespace

std::vector<CoachingFinding> coaching_findings(const CrmHistory& full_history, UnixSeconds as_of) {
  const CrmHistory history = truncate_history(full_history, as_of);
  // First signing per contact, and each lead's numbers.
  std::unordered_map<std::string, UnixSeconds> signed_at;
  for (const auto& s : history.stages) {
    auto [it, inserted] = signed_at.try_emplace(tenant_key(s.tenant_id, s.contact_id), s.ts);
    if (!inserted) it->second = std::min(it->second, s.ts);
  }
  std::unordered_map<std::string, std::size_t> lead_index;
  std::vector<LeadStats> leads;
  std::vector<UnixSeconds> created;
  for (const auto& c : history.contacts) {
    if (c.assigned_agent_id.empty()) continue;
    lead_index[tenant_key(c.tenant_id, c.contact_id)] = leads.size();
    LeadStats l;
    l.agent = c.assigned_agent_id;
    l.tenant = c.tenant_id;
    l.source = c.source.empty() ? "unknown" : c.source;
    if (c.created_at + kConversionWindowSeconds <= as_of) {
      auto it = signed_at.find(tenant_key(c.tenant_id, c.contact_id));
      l.signed_90d = it != signed_at.end() && it->second <= c.created_at + kConversionWindowSeconds;
    }
    if (c.created_at + kFollowUpWindow <= as_of) l.touches_14d = 0;
    leads.push_back(std::move(l));
    created.push_back(c.created_at);
  }
  for (const auto& e : history.events) {  // sorted by ts
    if (!is_outreach(e.type)) continue;
    auto it = lead_index.find(tenant_key(e.tenant_id, e.contact_id));
    if (it == lead_index.end()) continue;
    LeadStats& l = leads[it->second];
    const UnixSeconds c = created[it->second];
    if (e.ts < c) continue;
    if (!l.speed_minutes) l.speed_minutes = (e.ts - c) / 60.0;
    if (l.touches_14d && e.ts < c + kFollowUpWindow) *l.touches_14d += 1;
  }

  // Deals: resolved outcomes, offer -> under contract, days to close.
  const detail::DealHistory deals(history);
  struct DealStats {
    Rate closed, offer_to_contract;
    std::vector<double> days_to_close;
  };
  std::map<std::string, DealStats> agent_deals, team_deals;
  std::map<std::string, std::string> agent_tenant;
  for (const auto& o : deals.opportunities()) {
    agent_tenant[o.agent_id] = o.tenant_id;
    std::optional<Stage> terminal;
    bool offer = false, contract = false;
    for (const auto& r : o.rows) {
      offer |= r.second == Stage::kOffer;
      contract |= r.second == Stage::kUnderContract;
      if (r.second == Stage::kClosed || r.second == Stage::kLost) {
        terminal = r.second;
        if (r.second == Stage::kClosed) {
          agent_deals[o.agent_id].days_to_close.push_back((r.first - o.first_ts()) / kDay);
          team_deals[o.tenant_id].days_to_close.push_back((r.first - o.first_ts()) / kDay);
        }
        break;
      }
    }
    if (!terminal) continue;
    for (auto* s : {&agent_deals[o.agent_id], &team_deals[o.tenant_id]}) {
      s->closed.n += 1;
      s->closed.hits += *terminal == Stage::kClosed ? 1 : 0;
      if (offer) {
        s->offer_to_contract.n += 1;
        s->offer_to_contract.hits += contract ? 1 : 0;
      }
    }
  }

  // Lead numbers per agent and per team.
  struct LeadGroup {
    std::vector<double> speed, touches;
    Rate signed_rate;
    std::map<std::string, Rate> by_source;
  };
  std::map<std::string, LeadGroup> agent_leads, team_leads;
  for (const auto& l : leads) {
    agent_tenant.emplace(l.agent, l.tenant);
    for (auto* g : {&agent_leads[l.agent], &team_leads[l.tenant]}) {
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
  // Effect of speed-to-lead on the team: matured leads answered faster than
  // the team median sign at what rate, against the slower half.
  std::map<std::string, std::pair<Rate, Rate>> speed_effect;  // tenant -> (fast, slow)
  for (const auto& l : leads) {
    if (!l.speed_minutes || !l.signed_90d) continue;
    const double team_median = median(team_leads[l.tenant].speed);
    Rate& r = *l.speed_minutes <= team_median ? speed_effect[l.tenant].first : speed_effect[l.tenant].second;
    r.n += 1;
    r.hits += *l.signed_90d ? 1 : 0;
  }

  std::vector<CoachingFinding> out;
  for (const auto& [agent, tenant] : agent_tenant) {
    std::vector<CoachingFinding> mine;
    auto add = [&](double z, std::string text) { mine.push_back({agent, std::move(text), std::abs(z)}); };
    const LeadGroup& al = agent_leads[agent];
    const LeadGroup& tl = team_leads[tenant];
    if (al.speed.size() >= kMinLeads) {
      // Log minutes: speed-to-lead is heavy-tailed.
      std::vector<double> a_log, t_log;
      for (double s : al.speed) a_log.push_back(std::log1p(s));
      for (double s : tl.speed) t_log.push_back(std::log1p(s));
      const double z = (mean(a_log) - mean(t_log)) / std::max(1e-9, stddev(t_log) / std::sqrt(a_log.size()));
      std::string text = "median speed-to-lead " + num(median(al.speed)) + " min vs team " + num(median(tl.speed)) +
                         " min (" + std::to_string(al.speed.size()) + " leads)";
      const auto& [fast, slow] = speed_effect[tenant];
      if (fast.n >= 30 && slow.n >= 30)
        text += "; team leads answered faster than the team median sign within 90 days at " + pct(fast.value()) +
                " vs " + pct(slow.value()) + " when slower";
      add(z, text);
    }
    if (al.touches.size() >= kMinLeads) {
      const double z = (mean(al.touches) - mean(tl.touches)) / std::max(1e-9, stddev(tl.touches) / std::sqrt(al.touches.size()));
      add(z, "follow-up touches in a lead's first 14 days: " + num(mean(al.touches)) + " vs team " +
                 num(mean(tl.touches)) + " per lead");
    }
    if (al.signed_rate.n >= kMinLeads) {
      add(proportion_z(al.signed_rate, tl.signed_rate),
          "lead-to-signed within 90 days " + pct(al.signed_rate.value()) + " vs team " + pct(tl.signed_rate.value()) +
              " (" + std::to_string(static_cast<int>(al.signed_rate.n)) + " matured leads)");
      double best_z = 0;
      std::string best;
      for (const auto& [source, rate] : al.by_source) {
        if (rate.n < kMinLeads) continue;
        const auto team_it = tl.by_source.find(source);
        if (team_it == tl.by_source.end()) continue;
        const double z = proportion_z(rate, team_it->second);
        if (std::abs(z) > std::abs(best_z)) {
          best_z = z;
          best = "lead-to-signed from " + source + " " + pct(rate.value()) + " vs team " +
                 pct(team_it->second.value()) + " (" + std::to_string(static_cast<int>(rate.n)) + " leads)";
        }
      }
      if (!best.empty()) add(best_z, best);
    }
    const DealStats& ad = agent_deals[agent];
    const DealStats& td = team_deals[tenant];
    if (ad.closed.n >= 5) {
      add(proportion_z(ad.closed, td.closed), "signed deals that close " + pct(ad.closed.value()) + " vs team " +
                                                  pct(td.closed.value()) + " (" +
                                                  std::to_string(static_cast<int>(ad.closed.n)) + " resolved deals)");
    }
    if (ad.offer_to_contract.n >= 5)
      add(proportion_z(ad.offer_to_contract, td.offer_to_contract),
          "offers reaching under contract " + pct(ad.offer_to_contract.value()) + " vs team " +
              pct(td.offer_to_contract.value()));
    if (ad.days_to_close.size() >= 5) {
      const double z = (mean(ad.days_to_close) - mean(td.days_to_close)) /
                       std::max(1e-9, stddev(td.days_to_close) / std::sqrt(ad.days_to_close.size()));
      add(z, "median days signed to closed " + num(median(ad.days_to_close), 0) + " vs team " +
                 num(median(td.days_to_close), 0));
    }
    if (mine.empty())
      add(0, "too little history to compare with the team yet (" + std::to_string(al.speed.size()) +
                 " leads with outreach, " + std::to_string(static_cast<int>(ad.closed.n)) +
                 " resolved deals); forecasts lean on the team's numbers");
    std::stable_sort(mine.begin(), mine.end(), [](const auto& a, const auto& b) { return a.strength > b.strength; });
    if (mine.size() > 3) mine.resize(3);
    for (auto& f : mine) {
      if (f.strength >= 1.96) f.finding += " [significant, z=" + num(f.strength) + "]";
      out.push_back(std::move(f));
    }
  }
  return out;
}

}  // namespace reai::analytics
