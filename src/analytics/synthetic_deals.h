// Test-only: a generated CRM history with known deal dynamics. Deals move
// signed -> active -> offer -> under_contract -> closed with exponential stage
// durations; at each step a deal is lost with a probability that is lower for
// pre-approved leads. Seeded, so tests are deterministic.
#pragma once

#include <cmath>
#include <cstdio>
#include <random>
#include <string>

#include "analytics/deals.h"
#include "core/time.h"

namespace reai::analytics::testing {

inline constexpr UnixSeconds kHistoryStart = 1704067200;  // 2024-01-01

inline CrmHistory synthetic_history(int opportunities, int days, unsigned seed, int agents = 6) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> unit(0, 1);
  const double mean_days[4] = {8, 14, 7, 25};
  CrmHistory h;
  for (int i = 0; i < opportunities; ++i) {
    char id[32];
    std::snprintf(id, sizeof id, "%07d", i);
    const std::string agent = "t_gen-ag" + std::to_string(i % agents);
    Contact c;
    c.tenant_id = "t_gen";
    c.contact_id = std::string("c") + id;
    c.created_at = kHistoryStart + static_cast<UnixSeconds>(unit(rng) * days * 86400.0);
    c.source = unit(rng) < 0.5 ? "zillow" : "referral";
    c.lead_type = LeadType::kBuyer;
    c.assigned_agent_id = agent;
    c.pre_approved = unit(rng) < 0.5;
    c.budget = 150000 + 100000 * unit(rng);
    h.contacts.push_back(c);
    UnixSeconds t = c.created_at + static_cast<UnixSeconds>(unit(rng) * 10 * 86400);
    for (int k = 0; k < 3; ++k) {
      Event e;
      e.tenant_id = "t_gen";
      e.event_id = "e" + std::string(id) + std::to_string(k);
      e.contact_id = c.contact_id;
      e.ts = c.created_at + 600 + k * 86400;
      e.type = k == 0 ? EventType::kCallOut : EventType::kPropertyView;
      h.events.push_back(e);
    }
    const double lose = *c.pre_approved ? 0.05 : 0.25;
    OpportunityStage row;
    row.tenant_id = "t_gen";
    row.opportunity_id = std::string("o") + id;
    row.contact_id = c.contact_id;
    row.agent_id = agent;
    row.monetary_value = *c.budget;
    for (int stage = 0; stage <= 4; ++stage) {
      row.ts = t;
      row.stage = static_cast<Stage>(stage);
      h.stages.push_back(row);
      if (stage == 4) break;
      t += static_cast<UnixSeconds>(-std::log(1 - unit(rng)) * mean_days[stage] * 86400.0) + 3600;
      if (unit(rng) < lose) {
        row.ts = t;
        row.stage = Stage::kLost;
        h.stages.push_back(row);
        break;
      }
    }
  }
  std::sort(h.events.begin(), h.events.end(), [](const Event& a, const Event& b) { return a.ts < b.ts; });
  return h;
}

}  // namespace reai::analytics::testing
