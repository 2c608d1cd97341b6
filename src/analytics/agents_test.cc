#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "analytics/analytics.h"
#include "analytics/synthetic_deals.h"
#include "core/time.h"

namespace reai::analytics {
namespace {

using testing::kHistoryStart;
using testing::synthetic_history;

UnixSeconds at(const char* iso) { return *parse_iso8601(iso); }

TEST(AgentForecast, ForecastsEveryAgentForEachMonthWithOrderedIntervals) {
  const CrmHistory h = synthetic_history(1200, 600, 4);
  AgentForecastOptions options;
  options.horizon_months = 3;
  auto f = forecast_agent_closings(h, at("2025-06-01T00:00:00Z"), options);
  ASSERT_TRUE(f.has_value()) << f.status().to_string();
  ASSERT_EQ(f->size(), 6u * 3u);
  EXPECT_EQ((*f)[0].year, 2025);
  EXPECT_EQ((*f)[0].month, 6);
  EXPECT_EQ((*f)[2].month, 8);
  for (const auto& m : *f) {
    EXPECT_GT(m.expected_closings, 0);
    EXPECT_LE(m.lower80, m.expected_closings);
    EXPECT_GE(m.upper80, m.expected_closings);
    EXPECT_LE(m.from_pipeline, m.expected_closings);
  }
  // Mid-month as-of: the first month forecast is the next one.
  auto mid = forecast_agent_closings(h, at("2025-06-15T12:00:00Z"), options);
  ASSERT_TRUE(mid.has_value());
  EXPECT_EQ((*mid)[0].month, 7);
}

TEST(AgentForecast, MatchesActualClosingsOnGeneratedHistory) {
  // 1200 deals over 600 days among 6 agents: about 2.5 closings per agent-month.
  const CrmHistory h = synthetic_history(1200, 600, 4);
  AgentForecastOptions options;
  auto f = forecast_agent_closings(h, at("2025-05-01T00:00:00Z"), options);
  ASSERT_TRUE(f.has_value());
  std::map<std::pair<std::string, int>, int> actual;
  for (const auto& a : actual_closings(h, at("2025-05-01T00:00:00Z"), at("2025-08-01T00:00:00Z")))
    actual[{a.agent_id, a.month}] = a.closings;
  double err = 0, total_forecast = 0, total_actual = 0;
  for (const auto& m : *f) {
    const double y = actual.count({m.agent_id, m.month}) ? actual[{m.agent_id, m.month}] : 0;
    err += std::abs(m.expected_closings - y);
    total_forecast += m.expected_closings;
    total_actual += y;
  }
  EXPECT_GT(total_actual, 20);
  EXPECT_NEAR(total_forecast / total_actual, 1.0, 0.35);
  EXPECT_LT(err / static_cast<double>(f->size()), 2.5);
}

TEST(AgentForecast, NewAgentIsShrunkTowardsTheTeam) {
  CrmHistory h = synthetic_history(1200, 600, 4);
  // A new agent signed one deal last week: not forecast as zero, nor from one point.
  OpportunityStage row;
  row.tenant_id = "t_gen";
  row.opportunity_id = "o_new";
  row.contact_id = "c_new";
  row.agent_id = "t_gen-new";
  row.monetary_value = 200000;
  row.ts = at("2025-05-25T00:00:00Z");
  row.stage = Stage::kSigned;
  h.stages.push_back(row);
  auto f = forecast_agent_closings(h, at("2025-06-01T00:00:00Z"), {});
  ASSERT_TRUE(f.has_value());
  double new_agent = 0, veteran = 0;
  for (const auto& m : *f) {
    if (m.agent_id == "t_gen-new") new_agent += m.expected_closings;
    if (m.agent_id == "t_gen-ag0") veteran += m.expected_closings;
  }
  EXPECT_GT(new_agent, 0.1 * veteran);
  EXPECT_LT(new_agent, veteran);
}

TEST(AgentForecast, RejectsBadHorizonAndShortHistory) {
  const CrmHistory h = synthetic_history(300, 600, 4);
  AgentForecastOptions bad;
  bad.horizon_months = 0;
  EXPECT_EQ(forecast_agent_closings(h, at("2025-06-01T00:00:00Z"), bad).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(forecast_agent_closings(h, at("2024-02-01T00:00:00Z"), {}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(forecast_agent_closings(CrmHistory{}, at("2025-06-01T00:00:00Z"), {}).status().code(),
            StatusCode::kInvalidArgument);
}

// Agent ids are each brokerage's own: a history where two tenants both name
// an agent "a1" would pool two people's closings under one row.
TEST(AgentForecast, RefusesAnAgentIdUsedByTwoTenants) {
  CrmHistory h = synthetic_history(300, 600, 4);
  ASSERT_TRUE(check_agent_ids_name_one_tenant(h));
  ASSERT_FALSE(h.stages.empty());
  OpportunityStage other = h.stages.front();
  other.tenant_id = "t_other";
  other.opportunity_id = "o-other";
  h.stages.push_back(other);
  const Status s = check_agent_ids_name_one_tenant(h);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'" + other.agent_id + "'"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("t_other"), std::string::npos) << s.message();
  EXPECT_EQ(forecast_agent_closings(h, at("2025-06-01T00:00:00Z"), {}).status().code(), StatusCode::kInvalidArgument);

  CrmHistory leads = synthetic_history(300, 600, 4);
  ASSERT_FALSE(leads.contacts.empty());
  Contact c = leads.contacts.front();
  c.tenant_id = "t_other";
  c.contact_id = "c-other";
  c.assigned_agent_id = leads.stages.front().agent_id;
  leads.contacts.push_back(c);
  EXPECT_EQ(check_agent_ids_name_one_tenant(leads).code(), StatusCode::kInvalidArgument);
}

TEST(Coaching, EveryAgentGetsAFindingFromTheFixture) {
  auto h = load_crm_history("tests/fixtures/crm_small/contacts.csv", "tests/fixtures/crm_small/events.csv",
                            "tests/fixtures/crm_small/opportunity_stages.csv");
  ASSERT_TRUE(h.has_value()) << h.status().to_string();
  const UnixSeconds as_of = at("2026-01-01T00:00:00Z");
  std::set<std::string> agents;
  for (const auto& c : h->contacts)
    if (!c.assigned_agent_id.empty()) agents.insert(c.assigned_agent_id);
  for (const auto& s : h->stages) agents.insert(s.agent_id);
  const auto findings = coaching_findings(*h, as_of);
  std::set<std::string> covered;
  for (const auto& f : findings) {
    covered.insert(f.agent_id);
    EXPECT_FALSE(f.finding.empty());
  }
  EXPECT_EQ(covered, agents);
}

TEST(Coaching, SlowAgentIsToldAboutSpeedToLead) {
  CrmHistory h = synthetic_history(600, 400, 8, 3);
  // Agent 2's first outreach comes a day late on every lead.
  for (auto& e : h.events)
    if (e.type == EventType::kCallOut && std::stoi(e.contact_id.substr(1)) % 3 == 2) e.ts += 86400;
  const auto findings = coaching_findings(h, kHistoryStart + 400 * 86400);
  std::string told;
  for (const auto& f : findings)
    if (f.agent_id == "t_gen-ag2" && f.finding.find("Replies to new leads") != std::string::npos) told = f.finding;
  // Short sentences a broker reads at a glance, every number kept: the
  // agent's reply time and lead count, the team's, and how the team's
  // faster half signs against its slower half.
  EXPECT_EQ(told,
            "Replies to new leads in 24.2 h (median of 199 leads); the team's median is 10 min. In this team, leads "
            "answered within 10 min and slower ones sign within 90 days about as often (100% vs 100%). Too large a "
            "gap to be chance (z = 20.0).");
}

// Where the team's own leads show that speed pays, the finding says by how
// much: here the slow agent's leads (a third of them, answered a day late)
// sign about half as often as the rest, which all sign.
TEST(Coaching, SpeedToLeadFindingTellsTheTeamsEffectWhenItIsClear) {
  CrmHistory h = synthetic_history(600, 400, 8, 3);
  auto slow_lead = [](const std::string& contact_id) { return std::stoi(contact_id.substr(1)) % 3 == 2; };
  for (auto& e : h.events)
    if (e.type == EventType::kCallOut && slow_lead(e.contact_id)) e.ts += 86400;
  std::erase_if(h.stages, [&](const OpportunityStage& s) {
    return slow_lead(s.contact_id) && std::stoi(s.contact_id.substr(1)) / 3 % 2 == 0;
  });
  const auto findings = coaching_findings(h, kHistoryStart + 400 * 86400);
  std::string told;
  for (const auto& f : findings)
    if (f.agent_id == "t_gen-ag2" && f.finding.find("Replies to new leads") != std::string::npos) told = f.finding;
  EXPECT_NE(told.find(" Team leads answered within 10 min sign within 90 days 2.1x as often (100% vs 47%)."),
            std::string::npos)
      << told;
}

// Contact ids are each tenant's own: a second tenant whose contacts reuse
// the ids (its own agents, prompt outreach, no signings) changes none of the
// first tenant's agents' findings, and its slow agent is still told.
TEST(Coaching, TenantsReusingContactIdsKeepTheirOwnLeads) {
  const CrmHistory twin = synthetic_history(600, 400, 8, 3);
  CrmHistory own = twin;
  // Agent 2's first outreach comes a day late on every lead.
  for (auto& e : own.events)
    if (e.type == EventType::kCallOut && std::stoi(e.contact_id.substr(1)) % 3 == 2) e.ts += 86400;
  const UnixSeconds as_of = kHistoryStart + 400 * 86400;
  CrmHistory both = own;
  for (Contact c : twin.contacts) {
    c.tenant_id = "t_twin";
    if (!c.assigned_agent_id.empty()) c.assigned_agent_id = "twin-" + c.assigned_agent_id;
    both.contacts.push_back(std::move(c));
  }
  for (Event e : twin.events) {
    e.tenant_id = "t_twin";
    e.event_id = "twin-" + e.event_id;
    both.events.push_back(std::move(e));
  }
  std::sort(both.events.begin(), both.events.end(), [](const Event& a, const Event& b) { return a.ts < b.ts; });
  ASSERT_TRUE(check_agent_ids_name_one_tenant(both));
  auto findings_of_own_agents = [](const std::vector<CoachingFinding>& all) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& f : all)
      if (f.agent_id.rfind("twin-", 0) != 0) out.emplace_back(f.agent_id, f.finding);
    return out;
  };
  const auto alone = findings_of_own_agents(coaching_findings(own, as_of));
  ASSERT_TRUE(std::any_of(alone.begin(), alone.end(), [](const auto& f) {
    return f.first == "t_gen-ag2" && f.second.find("Replies to new leads") != std::string::npos;
  }));
  EXPECT_EQ(findings_of_own_agents(coaching_findings(both, as_of)), alone);
}

}  // namespace
}  // namespace reai::analytics
