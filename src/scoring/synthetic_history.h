// Private to scoring tests and benchmarks: a small deterministic CRM history
// in which behaviour drives conversion.
#pragma once

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/crm_history.h"
#include "core/types.h"

namespace reai::scoring::testing_support {

inline constexpr UnixSeconds kStart = 1'704'067'200;  // 2024-01-01
inline constexpr UnixSeconds kDay = 86400;

// A deterministic synthetic history where behaviour drives conversion: each
// lead has a hidden intent; intent shows in replies, home views and tours,
// and decides whether the lead signs.
struct History : CrmHistory {
  std::map<std::string, bool> converted;  // contact id -> signed (the ground truth)
};

inline History make_history(int leads, UnixSeconds from, UnixSeconds span, unsigned seed, const std::string& prefix) {
  History h;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> unit(0, 1);
  std::normal_distribution<double> normal(0, 1);
  const char* sources[] = {"zillow", "referral", "website"};
  int next_event = 0;
  for (int i = 0; i < leads; ++i) {
    Contact c;
    c.tenant_id = "t1";
    c.contact_id = prefix + std::to_string(i);
    c.created_at = from + static_cast<UnixSeconds>(unit(rng) * double(span));
    c.source = sources[i % 3];
    c.lead_type = LeadType::kBuyer;
    c.assigned_agent_id = i % 2 ? "ag1" : "ag2";
    const double intent = normal(rng);
    if (unit(rng) < 0.6) c.budget = 200000 + 20000 * std::round(unit(rng) * 10);
    c.pre_approved = unit(rng) < 0.3 + 0.2 * (intent > 0);
    h.contacts.push_back(c);
    auto add = [&](EventType type, UnixSeconds ts, std::string property = "", std::optional<double> value = {}) {
      Event e;
      e.tenant_id = c.tenant_id;
      e.event_id = "e" + std::to_string(next_event++);
      e.contact_id = c.contact_id;
      e.ts = ts;
      e.type = type;
      e.property_id = std::move(property);
      e.value = value;
      h.events.push_back(std::move(e));
    };
    UnixSeconds t = c.created_at + 300 + static_cast<UnixSeconds>(unit(rng) * 3600);
    add(EventType::kSmsOut, t);
    const int actions = static_cast<int>(std::max(0.0, 3 + 3 * intent + normal(rng)));
    for (int a = 0; a < actions; ++a) {
      t += static_cast<UnixSeconds>(unit(rng) * 8 * 3600);
      const double r = unit(rng);
      if (r < 0.5) {
        // Appended rather than "p" + to_string(...): GCC 12 warns a false
        // -Wrestrict on that operator+ once inlined into some tests.
        std::string listing = "p";
        listing += std::to_string(int(unit(rng) * 50));
        add(EventType::kPropertyView, t, listing, 250000);
      } else if (r < 0.7) {
        add(EventType::kSmsIn, t);
      } else if (r < 0.8) {
        add(EventType::kTourRequest, t, "p1", 250000);
      } else {
        add(EventType::kPageView, t);
      }
    }
    const bool signs = unit(rng) < 1.0 / (1.0 + std::exp(-(-2.0 + 1.8 * intent)));
    h.converted[c.contact_id] = signs;
    if (signs) {
      OpportunityStage s;
      s.tenant_id = c.tenant_id;
      s.opportunity_id = "o" + c.contact_id;
      s.contact_id = c.contact_id;
      s.agent_id = c.assigned_agent_id;
      s.ts = c.created_at + 10 * kDay + static_cast<UnixSeconds>(unit(rng) * 40 * kDay);
      s.stage = Stage::kSigned;
      h.stages.push_back(s);
    }
  }
  std::stable_sort(h.events.begin(), h.events.end(), [](const Event& a, const Event& b) { return a.ts < b.ts; });
  return h;
}

}  // namespace reai::scoring::testing_support
