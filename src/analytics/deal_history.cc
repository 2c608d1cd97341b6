// DealHistory: as-of indexes over a CRM history, and the deal feature row.
#include "analytics/deal_history.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

#include "core/tenant_id.h"
#include "core/time.h"

namespace reai::analytics {

namespace detail {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

bool is_terminal(Stage s) { return s == Stage::kClosed || s == Stage::kLost; }

// Known lead sources get stable codes; anything else is "other".
float source_code(const std::string& source) {
  static const char* const kSources[] = {"zillow",  "realtor_com", "facebook_ads", "google_ppc",
                                         "website", "referral",    "open_house",   "sphere"};
  for (std::size_t i = 0; i < std::size(kSources); ++i)
    if (source == kSources[i]) return static_cast<float>(i);
  return source.empty() ? kNaN : static_cast<float>(std::size(kSources));
}

}  // namespace

int month_index(UnixSeconds t) {
  // Civil date from days since epoch (Howard Hinnant's algorithm).
  const std::int64_t days = (t >= 0 ? t : t - 86399) / 86400;
  const std::int64_t z = days + 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  const int year = static_cast<int>(static_cast<std::int64_t>(yoe) + era * 400) + (month <= 2 ? 1 : 0);
  return year * 12 + month - 1;
}

UnixSeconds month_start(int index) {
  return static_cast<UnixSeconds>(days_from_civil(index / 12, index % 12 + 1, 1)) * 86400;
}

namespace {

int month_of(UnixSeconds t) {
  return month_index(t) % 12 + 1;
}

}  // namespace

int Opportunity::row_at(UnixSeconds t) const {
  auto it = std::upper_bound(rows.begin(), rows.end(), t,
                             [](UnixSeconds v, const auto& r) { return v < r.first; });
  return static_cast<int>(it - rows.begin()) - 1;
}

bool Opportunity::open_at(UnixSeconds t) const {
  const int i = row_at(t);
  return i >= 0 && !is_terminal(rows[static_cast<std::size_t>(i)].second);
}

std::optional<std::pair<UnixSeconds, Stage>> Opportunity::resolution_after(UnixSeconds t) const {
  for (const auto& r : rows)
    if (r.first > t && is_terminal(r.second)) return r;
  return std::nullopt;
}

DealHistory::DealHistory(const CrmHistory& history) {
  std::unordered_map<std::string, std::size_t> index;
  for (const auto& s : history.stages) {
    auto [it, inserted] = index.try_emplace(tenant_scoped_key(s.tenant_id, s.opportunity_id), opps_.size());
    if (inserted) {
      Opportunity o;
      o.id = s.opportunity_id;
      o.tenant_id = s.tenant_id;
      o.contact_id = s.contact_id;
      o.agent_id = s.agent_id;
      opps_.push_back(std::move(o));
    }
    Opportunity& o = opps_[it->second];
    o.value = s.monetary_value;  // the latest row's value wins (sorted below)
    o.rows.emplace_back(s.ts, s.stage);
  }
  first_ts_ = std::numeric_limits<UnixSeconds>::max();
  last_ts_ = std::numeric_limits<UnixSeconds>::min();
  for (auto& o : opps_) {
    std::stable_sort(o.rows.begin(), o.rows.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    first_ts_ = std::min(first_ts_, o.rows.front().first);
    last_ts_ = std::max(last_ts_, o.rows.back().first);
  }
  std::sort(opps_.begin(), opps_.end(),
            [](const auto& a, const auto& b) { return std::tie(a.id, a.tenant_id) < std::tie(b.id, b.tenant_id); });
  for (const auto& o : opps_) {
    const std::string agent = tenant_scoped_key(o.tenant_id, o.agent_id);
    agent_opps_[agent].push_back(&o);
    for (const auto& r : o.rows) {
      if (!is_terminal(r.second)) continue;
      AgentResolution res{r.first, r.second == Stage::kClosed, 0};
      if (res.closed) res.log_days = std::log1p(std::max(0.0, (r.first - o.first_ts()) / kDay));
      agent_resolutions_[agent].push_back(res);
      all_resolutions_.push_back(res);
      break;
    }
  }
  auto by_ts = [](const AgentResolution& a, const AgentResolution& b) { return a.ts < b.ts; };
  for (auto& [agent, list] : agent_resolutions_) std::sort(list.begin(), list.end(), by_ts);
  std::sort(all_resolutions_.begin(), all_resolutions_.end(), by_ts);

  for (const auto& c : history.contacts) contacts_.emplace(tenant_scoped_key(c.tenant_id, c.contact_id), c);
  for (const auto& e : history.events) {
    auto& lists = activity_[tenant_scoped_key(e.tenant_id, e.contact_id)];
    lists[kAllEvents].push_back(e.ts);
    if (is_inbound_contact(e.type)) lists[kInbound].push_back(e.ts);
    if (is_outreach(e.type)) lists[kOutreach].push_back(e.ts);
    if (is_property_event(e.type)) lists[kPropertyActivity].push_back(e.ts);
    if (e.type == EventType::kTourRequest) lists[kTours].push_back(e.ts);
    if (e.type == EventType::kAppointmentShowed) lists[kShowings].push_back(e.ts);
  }
  for (auto& [contact, lists] : activity_)
    for (auto& l : lists) std::sort(l.begin(), l.end());
}

const Contact* DealHistory::contact(const std::string& tenant_id, const std::string& contact_id) const {
  auto it = contacts_.find(tenant_scoped_key(tenant_id, contact_id));
  return it == contacts_.end() ? nullptr : &it->second;
}

int DealHistory::count_events(const std::string& tenant_id, const std::string& contact_id, ActivityKind kind,
                              UnixSeconds from, UnixSeconds to) const {
  auto it = activity_.find(tenant_scoped_key(tenant_id, contact_id));
  if (it == activity_.end()) return 0;
  const auto& l = it->second[kind];
  return static_cast<int>(std::upper_bound(l.begin(), l.end(), to) - std::upper_bound(l.begin(), l.end(), from));
}

std::optional<UnixSeconds> DealHistory::last_event(const std::string& tenant_id, const std::string& contact_id,
                                                   ActivityKind kind, UnixSeconds t) const {
  auto it = activity_.find(tenant_scoped_key(tenant_id, contact_id));
  if (it == activity_.end()) return std::nullopt;
  const auto& l = it->second[kind];
  auto pos = std::upper_bound(l.begin(), l.end(), t);
  if (pos == l.begin()) return std::nullopt;
  return *(pos - 1);
}

namespace {
std::array<double, 3> record_before(const std::vector<AgentResolution>& list, UnixSeconds t) {
  std::array<double, 3> r{0, 0, 0};
  for (const auto& res : list) {
    if (res.ts >= t) break;
    r[0] += 1;
    if (res.closed) {
      r[1] += 1;
      r[2] += res.log_days;
    }
  }
  return r;
}
}  // namespace

std::array<double, 3> DealHistory::agent_record(const std::string& tenant_id, const std::string& agent_id,
                                                UnixSeconds t) const {
  auto it = agent_resolutions_.find(tenant_scoped_key(tenant_id, agent_id));
  if (it == agent_resolutions_.end()) return {0, 0, 0};
  return record_before(it->second, t);
}

std::array<double, 3> DealHistory::global_record(UnixSeconds t) const { return record_before(all_resolutions_, t); }

int DealHistory::agent_open_deals(const std::string& tenant_id, const std::string& agent_id, UnixSeconds t) const {
  auto it = agent_opps_.find(tenant_scoped_key(tenant_id, agent_id));
  if (it == agent_opps_.end()) return 0;
  int n = 0;
  for (const Opportunity* o : it->second) n += o->open_at(t) ? 1 : 0;
  return n;
}

}  // namespace detail

const std::vector<std::string>& deal_feature_names() {
  static const std::vector<std::string> kNames = {
      "stage",                  "days_in_stage",          "days_since_signed",      "log_value",
      "stage_rows",             "days_signed_to_active",  "days_active_to_offer",   "days_offer_to_contract",
      "lead_type",              "source",                 "log_budget",             "budget_to_value",
      "timeline_months",        "pre_approved",           "beds_wanted",            "has_phone",
      "has_email",              "days_created_to_signed", "events_total",           "events_7d",
      "events_30d",             "inbound_30d",            "outreach_30d",           "property_events_30d",
      "tours_total",            "showings_total",         "days_since_last_event",  "days_since_last_inbound",
      "agent_resolved_deals",   "agent_close_rate",       "agent_log_days_to_close", "agent_open_deals",
      "month",                  "inbound_since_signed",   "showings_since_signed"};
  return kNames;
}

namespace detail {

std::vector<std::size_t> plain_feature_columns() { return {0, 1, 3, 13}; }

namespace {

// When the opportunity entered `stage`, among its stage rows up to `row` (those seen by t).
std::optional<UnixSeconds> stage_entered(const Opportunity& o, int row, Stage stage) {
  for (int i = 0; i <= row; ++i) {
    if (o.rows[static_cast<std::size_t>(i)].second == stage) return o.rows[static_cast<std::size_t>(i)].first;
  }
  return std::nullopt;
}

// Columns 0-7: the deal's stage as of t and how fast it moved between stages.
void write_stage_features(const Opportunity& o, UnixSeconds t, std::vector<float>& f) {
  const int row = o.row_at(t);
  const auto stage_row = o.rows[static_cast<std::size_t>(std::max(row, 0))];
  const UnixSeconds signed_at = o.first_ts();
  f[0] = static_cast<float>(static_cast<int>(stage_row.second));
  f[1] = static_cast<float>((t - stage_row.first) / kDay);
  f[2] = static_cast<float>((t - signed_at) / kDay);
  f[3] = o.value > 0 ? static_cast<float>(std::log(o.value)) : kNaN;
  f[4] = static_cast<float>(row + 1);
  // Days between consecutive stage entries seen so far.
  const auto active = stage_entered(o, row, Stage::kActive), offer = stage_entered(o, row, Stage::kOffer),
             contract = stage_entered(o, row, Stage::kUnderContract);
  if (active) f[5] = static_cast<float>((*active - signed_at) / kDay);
  if (active && offer) f[6] = static_cast<float>((*offer - *active) / kDay);
  if (offer && contract) f[7] = static_cast<float>((*contract - *offer) / kDay);
}

// Columns 8-17: what the contact row says, left missing when the contact
// did not exist yet at t (no look-ahead).
void write_contact_features(const DealHistory& h, const Opportunity& o, UnixSeconds t, std::vector<float>& f) {
  const Contact* c = h.contact(o.tenant_id, o.contact_id);
  if (c == nullptr || c->created_at > t) return;
  f[8] = static_cast<float>(static_cast<int>(c->lead_type));
  f[9] = source_code(c->source);
  if (c->budget && *c->budget > 0) {
    f[10] = static_cast<float>(std::log(*c->budget));
    if (o.value > 0) f[11] = static_cast<float>(*c->budget / o.value);
  }
  if (c->timeline_months) f[12] = static_cast<float>(*c->timeline_months);
  if (c->pre_approved) f[13] = *c->pre_approved ? 1.f : 0.f;
  if (c->beds_wanted) f[14] = static_cast<float>(*c->beds_wanted);
  if (c->has_phone) f[15] = *c->has_phone ? 1.f : 0.f;
  if (c->has_email) f[16] = *c->has_email ? 1.f : 0.f;
  f[17] = static_cast<float>((o.first_ts() - c->created_at) / kDay);
}

// Columns 18-27, 33 and 34: the contact's events before t, over its whole
// history, the last week or month, and since the deal was signed.
void write_activity_features(const DealHistory& h, const Opportunity& o, UnixSeconds t, std::vector<float>& f) {
  const auto& id = o.contact_id;
  constexpr UnixSeconds kWeek = 7 * 86400, kMonth = 30 * 86400;
  constexpr UnixSeconds kBeginning = std::numeric_limits<UnixSeconds>::min();
  f[18] = static_cast<float>(h.count_events(o.tenant_id, id, kAllEvents, kBeginning, t));
  f[19] = static_cast<float>(h.count_events(o.tenant_id, id, kAllEvents, t - kWeek, t));
  f[20] = static_cast<float>(h.count_events(o.tenant_id, id, kAllEvents, t - kMonth, t));
  f[21] = static_cast<float>(h.count_events(o.tenant_id, id, kInbound, t - kMonth, t));
  f[22] = static_cast<float>(h.count_events(o.tenant_id, id, kOutreach, t - kMonth, t));
  f[23] = static_cast<float>(h.count_events(o.tenant_id, id, kPropertyActivity, t - kMonth, t));
  f[24] = static_cast<float>(h.count_events(o.tenant_id, id, kTours, kBeginning, t));
  f[25] = static_cast<float>(h.count_events(o.tenant_id, id, kShowings, kBeginning, t));
  if (auto last = h.last_event(o.tenant_id, id, kAllEvents, t)) f[26] = static_cast<float>((t - *last) / kDay);
  if (auto last = h.last_event(o.tenant_id, id, kInbound, t)) f[27] = static_cast<float>((t - *last) / kDay);
  const UnixSeconds signed_at = o.first_ts();
  f[33] = static_cast<float>(h.count_events(o.tenant_id, id, kInbound, signed_at, t));
  f[34] = static_cast<float>(h.count_events(o.tenant_id, id, kShowings, signed_at, t));
}

// Columns 28-31: the agent's track record before t, shrunk towards
// everyone's record before t so an agent with few deals is not extreme.
void write_agent_features(const DealHistory& h, const Opportunity& o, UnixSeconds t, std::vector<float>& f) {
  const auto agent = h.agent_record(o.tenant_id, o.agent_id, t);
  const auto global = h.global_record(t);
  constexpr double kPrior = 10;
  const double global_rate = global[0] > 0 ? global[1] / global[0] : 0.6;
  const double global_log_days = global[1] > 0 ? global[2] / global[1] : std::log1p(70.0);
  f[28] = static_cast<float>(agent[0]);
  f[29] = static_cast<float>((agent[1] + kPrior * global_rate) / (agent[0] + kPrior));
  f[30] = static_cast<float>((agent[2] + kPrior * global_log_days) / (agent[1] + kPrior));
  f[31] = static_cast<float>(h.agent_open_deals(o.tenant_id, o.agent_id, t));
}

}  // namespace

std::vector<float> deal_features(const DealHistory& h, const Opportunity& o, UnixSeconds t) {
  std::vector<float> f(deal_feature_names().size(), kNaN);
  write_stage_features(o, t, f);
  write_contact_features(h, o, t, f);
  write_activity_features(h, o, t, f);
  write_agent_features(h, o, t, f);
  f[32] = static_cast<float>(month_of(t));
  return f;
}

}  // namespace detail
}  // namespace reai::analytics
