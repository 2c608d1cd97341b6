// Internal to src/analytics: an index over a CRM history for as-of feature
// extraction (opportunities with their stage rows, per-contact activity
// timelines, per-agent resolved deals). Not part of the public interface.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "analytics/deals.h"

namespace reai::analytics::detail {

inline constexpr double kDay = 86400.0;

struct Opportunity {
  std::string id;
  std::string tenant_id;
  std::string contact_id;
  std::string agent_id;
  double value = 0;
  std::vector<std::pair<UnixSeconds, Stage>> rows;  // sorted by ts
  UnixSeconds first_ts() const { return rows.front().first; }
  // Index of the last row at or before t, or -1.
  int row_at(UnixSeconds t) const;
  // Open at t: it has a row at or before t and that row is not closed/lost.
  bool open_at(UnixSeconds t) const;
  // First closed/lost row strictly after t, or nullopt.
  std::optional<std::pair<UnixSeconds, Stage>> resolution_after(UnixSeconds t) const;
};

// Activity timeline categories counted per contact.
enum ActivityKind { kAllEvents = 0, kInbound, kOutreach, kPropertyActivity, kTours, kShowings, kActivityKinds };

struct AgentResolution {
  UnixSeconds ts = 0;
  bool closed = false;
  double log_days = 0;  // log of days signed -> closed (closed only)
};

class DealHistory {
 public:
  explicit DealHistory(const CrmHistory& history);

  // Ids are each tenant's own: every lookup names the tenant, so a history
  // of several brokerages that reuse ids ("c1", "ag01") never pools them.
  const std::vector<Opportunity>& opportunities() const { return opps_; }
  const Contact* contact(const std::string& tenant_id, const std::string& contact_id) const;
  // Events of `kind` of the contact in (from, to].
  int count_events(const std::string& tenant_id, const std::string& contact_id, ActivityKind kind, UnixSeconds from,
                   UnixSeconds to) const;
  // Timestamp of the contact's last event of `kind` at or before t.
  std::optional<UnixSeconds> last_event(const std::string& tenant_id, const std::string& contact_id,
                                        ActivityKind kind, UnixSeconds t) const;
  // Agent's deals resolved strictly before t: (resolved, closed, sum of log days of closed ones).
  std::array<double, 3> agent_record(const std::string& tenant_id, const std::string& agent_id, UnixSeconds t) const;
  // Deals resolved before t over all agents: same layout.
  std::array<double, 3> global_record(UnixSeconds t) const;
  int agent_open_deals(const std::string& tenant_id, const std::string& agent_id, UnixSeconds t) const;
  UnixSeconds last_ts() const { return last_ts_; }
  UnixSeconds first_ts() const { return first_ts_; }

 private:
  // Maps below are keyed by "tenant|id" (tenant ids cannot hold '|').
  std::vector<Opportunity> opps_;
  std::unordered_map<std::string, Contact> contacts_;
  std::unordered_map<std::string, std::array<std::vector<UnixSeconds>, kActivityKinds>> activity_;
  std::unordered_map<std::string, std::vector<AgentResolution>> agent_resolutions_;
  std::unordered_map<std::string, std::vector<const Opportunity*>> agent_opps_;
  std::vector<AgentResolution> all_resolutions_;
  UnixSeconds first_ts_ = 0;
  UnixSeconds last_ts_ = 0;
};

// Months counted from year 0: year * 12 + (month - 1), UTC.
int month_index(UnixSeconds t);
UnixSeconds month_start(int month_index);

// Feature row of opportunity `opp` at `t` (layout: deal_feature_names()).
std::vector<float> deal_features(const DealHistory& history, const Opportunity& opp, UnixSeconds t);

// Column indices of the plain reference model's features.
std::vector<std::size_t> plain_feature_columns();

}  // namespace reai::analytics::detail
