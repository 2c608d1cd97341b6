#include "features/features.h"

#include "core/tenant_id.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include <boost/json.hpp>

namespace reai::features {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr double kLn2 = 0.69314718055994530942;
constexpr std::size_t kKeptOutreach = 4;
// Events before created_at are counted up to this many (contact rows may
// arrive after their first events, so the count is taken at read time).
constexpr std::size_t kKeptEarlyEvents = 8;

// Order matters: it is the model's column order (the schema hash covers it).
constexpr FeatureSpec kSchema[] = {
    {"count_page_view", "viewed {v} page{s}", "", Unit::kCount},
    {"count_property_view", "viewed {v} home{s}", "", Unit::kCount},
    {"count_property_save", "saved {v} home{s}", "", Unit::kCount},
    {"count_tour_request", "requested {v} tour{s}", "", Unit::kCount},
    {"count_saved_search", "created {v} saved search{es}", "", Unit::kCount},
    {"count_email_open", "opened {v} email{s}", "", Unit::kCount},
    {"count_email_click", "clicked {v} email{s}", "", Unit::kCount},
    {"count_sms_in", "sent {v} text message{s}", "", Unit::kCount},
    {"count_call_in", "called in {v} time{s}", "", Unit::kCount},
    {"count_form_submit", "submitted {v} form{s}", "", Unit::kCount},
    {"count_sms_out", "received {v} agent text{s}", "", Unit::kCount},
    {"count_call_out", "received {v} agent call{s}", "", Unit::kCount},
    {"count_email_out", "received {v} agent email{s}", "", Unit::kCount},
    {"count_appointment_booked", "booked {v} appointment{s}", "", Unit::kCount},
    {"count_appointment_showed", "showed up to {v} appointment{s}", "", Unit::kCount},
    {"inbound_activity_1h", "{v} lead actions in the last hour (decayed)", "", Unit::kNumber},
    {"inbound_activity_24h", "{v} lead actions in the last day (decayed)", "", Unit::kNumber},
    {"inbound_activity_168h", "{v} lead actions in the last week (decayed)", "", Unit::kNumber},
    {"property_activity_1h", "{v} home views in the last hour (decayed)", "", Unit::kNumber},
    {"property_activity_24h", "{v} home views in the last day (decayed)", "", Unit::kNumber},
    {"property_activity_168h", "{v} home views in the last week (decayed)", "", Unit::kNumber},
    {"outreach_activity_1h", "{v} agent touches in the last hour (decayed)", "", Unit::kNumber},
    {"outreach_activity_24h", "{v} agent touches in the last day (decayed)", "", Unit::kNumber},
    {"outreach_activity_168h", "{v} agent touches in the last week (decayed)", "", Unit::kNumber},
    {"hours_since_inbound_contact", "last texted or called {v} ago", "never texted or called in", Unit::kHours},
    {"hours_since_property_activity", "last looked at a home {v} ago", "has not looked at any home", Unit::kHours},
    {"hours_since_last_event", "last activity {v} ago", "no activity yet", Unit::kHours},
    {"hours_since_outreach", "last agent touch {v} ago", "no agent outreach yet", Unit::kHours},
    {"lead_age_hours", "lead is {v} old", "", Unit::kHours},
    {"speed_to_lead_min", "first agent response after {v}", "no agent outreach yet", Unit::kMinutes},
    {"hours_without_outreach", "no agent outreach after {v}", "", Unit::kHours},
    {"outreach_total", "agent reached out {v} time{s}", "", Unit::kCount},
    {"inbound_contact_total", "reached out {v} time{s} (texts, calls, forms)", "", Unit::kCount},
    {"replies_to_outreach", "replied {v} time{s} to agent outreach", "", Unit::kCount},
    {"first_reply_delay_min", "first reply to the agent within {v}", "no reply to agent outreach yet", Unit::kMinutes},
    {"fastest_reply_delay_min", "replied within {v} at best", "no reply to agent outreach yet", Unit::kMinutes},
    {"unanswered_outreach", "no reply to {v} agent message{s}", "", Unit::kCount},
    {"reply_rate", "answered {v} of agent outreach", "", Unit::kShare},
    {"activity_velocity", "day-to-week activity ratio {v}", "no recent activity", Unit::kRatio},
    {"distinct_homes", "looked at {v} different home{s}", "", Unit::kCount},
    {"distinct_homes_saved", "saved {v} different home{s}", "", Unit::kCount},
    {"mean_viewed_price", "views homes around {v}", "no priced home viewed", Unit::kDollars},
    {"viewed_price_to_budget", "viewed prices at {v} of budget", "no budget or priced views", Unit::kRatio},
    {"share_views_near_budget", "{v} of viewed homes within 20% of budget", "no budget or priced views", Unit::kShare},
    {"budget", "budget of {v}", "no budget stated", Unit::kDollars},
    {"timeline_months", "plans to move within {v} month{s}", "no timeline stated", Unit::kNumber},
    {"pre_approved", "pre-approval: {v}", "pre-approval unknown", Unit::kFlag},
    {"beds_wanted", "wants {v} bedroom{s}", "no bedroom count stated", Unit::kNumber},
    {"has_phone", "phone number given: {v}", "phone unknown", Unit::kFlag},
    {"has_email", "email given: {v}", "email unknown", Unit::kFlag},
    {"area_wanted_given", "named a wanted area: {v}", "", Unit::kFlag},
    {"source_code", "lead source", "", Unit::kCode},
    {"lead_type_code", "lead type", "", Unit::kCode},
    {"created_hour_utc", "came in at hour {v} (UTC)", "", Unit::kNumber},
    {"created_weekday", "came in on weekday {v}", "", Unit::kNumber},
    {"agent_conversion_rate", "assigned agent converts {v} of leads", "", Unit::kShare},
    {"agent_typical_speed_min", "assigned agent usually responds within {v}", "agent response time unknown", Unit::kMinutes},
    {"source_conversion_rate", "this lead source converts {v} of leads", "", Unit::kShare},
    {"events_total", "{v} recorded activit{y|ies}", "", Unit::kCount},
    {"tenant_conversion_rate", "this brokerage converts {v} of leads", "", Unit::kShare},
    {"created_month", "came in in month {v}", "", Unit::kNumber},
    {"events_before_created", "{v} activit{y|ies} before the lead was created", "", Unit::kCount},
    {"hours_to_first_appointment", "booked an appointment {v} after coming in", "no appointment booked", Unit::kHours},
    {"hours_to_first_inbound_contact", "first reached out {v} after coming in", "has not reached out", Unit::kHours},
};
constexpr std::size_t kFeatureCount = sizeof(kSchema) / sizeof(kSchema[0]);

// Column indices used by the writer (checked against names at startup by tests).
enum Col : std::size_t {
  kColCounts = 0,
  kColDecayed = 15,  // group * 3 + half-life
  kColHoursSinceInbound = 24,
  kColHoursSinceProperty,
  kColHoursSinceEvent,
  kColHoursSinceOutreach,
  kColAge,
  kColSpeedToLead,
  kColHoursWithoutOutreach,
  kColOutreachTotal,
  kColInboundContactTotal,
  kColReplies,
  kColFirstReplyDelay,
  kColFastestReplyDelay,
  kColUnanswered,
  kColReplyRate,
  kColVelocity,
  kColDistinctHomes,
  kColDistinctSaved,
  kColMeanPrice,
  kColPriceToBudget,
  kColShareNearBudget,
  kColBudget,
  kColTimeline,
  kColPreApproved,
  kColBeds,
  kColHasPhone,
  kColHasEmail,
  kColAreaGiven,
  kColSource,
  kColLeadType,
  kColCreatedHour,
  kColCreatedWeekday,
  kColAgentRate,
  kColAgentSpeed,
  kColSourceRate,
  kColEventsTotal,
  kColTenantRate,
  kColCreatedMonth,
  kColEventsBeforeCreated,
  kColHoursToAppointment,
  kColHoursToInboundContact,
  kColEnd
};
static_assert(kColEnd == kFeatureCount, "column enum and schema disagree");

std::uint64_t fnv1a(std::string_view s, std::uint64_t h = 1469598103934665603ULL) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

float opt_f(const std::optional<double>& v) { return v ? static_cast<float>(*v) : kNaN; }
float opt_f(const std::optional<int>& v) { return v ? static_cast<float>(*v) : kNaN; }
float opt_f(const std::optional<bool>& v) { return v ? (*v ? 1.f : 0.f) : kNaN; }
float hours_between(const std::optional<UnixSeconds>& t, UnixSeconds at) {
  if (!t) return kNaN;
  return static_cast<float>(std::max<double>(0, double(at - *t)) / 3600.0);
}

int group_of(EventType type) {
  if (is_outreach(type)) return 2;
  if (is_property_event(type)) return 1;
  return 0;
}

std::string format_duration_minutes(double minutes) {
  char buf[64];
  if (minutes < 1) return "under a minute";
  if (minutes < 90) {
    std::snprintf(buf, sizeof buf, "%.0f min", minutes);
  } else if (minutes < 48 * 60) {
    std::snprintf(buf, sizeof buf, "%.0f hours", minutes / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%.0f days", minutes / 1440);
  }
  return buf;
}

std::string format_value(Unit unit, float v) {
  char buf[64];
  switch (unit) {
    case Unit::kCount:
      std::snprintf(buf, sizeof buf, "%.0f", v);
      return buf;
    case Unit::kHours:
      return format_duration_minutes(double(v) * 60);
    case Unit::kMinutes:
      return format_duration_minutes(v);
    case Unit::kDollars:
      if (v >= 1e6) {
        std::snprintf(buf, sizeof buf, "$%.1fM", v / 1e6);
      } else {
        std::snprintf(buf, sizeof buf, "$%.0fk", v / 1e3);
      }
      return buf;
    case Unit::kShare:
    case Unit::kRatio:
      std::snprintf(buf, sizeof buf, "%.0f%%", double(v) * 100);
      return buf;
    case Unit::kFlag:
      return v > 0.5f ? "yes" : "no";
    case Unit::kCode:
    case Unit::kNumber:
      std::snprintf(buf, sizeof buf, "%.1f", v);
      std::string s = buf;
      if (s.size() > 2 && s.ends_with(".0")) s.resize(s.size() - 2);
      return s;
  }
  return "";
}

constexpr std::string_view kSources[] = {"zillow",  "realtor_com", "facebook_ads", "google_ppc",
                                         "website", "referral",    "open_house",   "sphere"};

boost::json::object record_json(const TrackRecord& r) {
  return {{"m", r.matured}, {"c", r.converted}, {"sn", r.speed_count}, {"sl", r.speed_log_sum}};
}

std::optional<TrackRecord> record_from(const boost::json::value& v) {
  if (!v.is_object()) return std::nullopt;
  const auto& o = v.as_object();
  TrackRecord r;
  auto num = [&](const char* key, double* out) {
    auto it = o.find(key);
    if (it == o.end() || !it->value().is_number()) return false;
    *out = it->value().to_number<double>();
    return true;
  };
  if (!num("m", &r.matured) || !num("c", &r.converted) || !num("sn", &r.speed_count) ||
      !num("sl", &r.speed_log_sum)) {
    return std::nullopt;
  }
  return r;
}

// Month 1..12 of a day count since 1970-01-01 (civil calendar).
int civil_month(std::int64_t days) {
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const std::int64_t doe = days - era * 146097;
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const std::int64_t mp = (5 * doy + 2) / 153;
  return static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
}

}  // namespace

std::span<const FeatureSpec> feature_schema() { return {kSchema, kFeatureCount}; }
std::size_t feature_count() { return kFeatureCount; }

std::optional<std::size_t> feature_index(std::string_view name) {
  for (std::size_t i = 0; i < kFeatureCount; ++i) {
    if (kSchema[i].name == name) return i;
  }
  return std::nullopt;
}

std::string schema_hash() {
  std::uint64_t h = 1469598103934665603ULL;
  for (const auto& spec : kSchema) {
    h = fnv1a(spec.name, h);
    h = fnv1a("\n", h);
  }
  char buf[40];
  std::snprintf(buf, sizeof buf, "fnv1a64:%016llx", static_cast<unsigned long long>(h));
  return buf;
}

namespace {

// Resolves plural markers in a reason text: "{s}" and "{es}" are suffixes
// for a plural, "{one|many}" picks a form: "home{s}", "activit{y|ies}".
std::string inflect(std::string_view text, bool singular) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const std::size_t close = text[i] == '{' ? text.find('}', i) : std::string_view::npos;
    if (close == std::string_view::npos) {
      out.push_back(text[i]);
      continue;
    }
    const std::string_view marker = text.substr(i + 1, close - i - 1);
    const std::size_t bar = marker.find('|');
    if (bar != std::string_view::npos) {
      out.append(singular ? marker.substr(0, bar) : marker.substr(bar + 1));
    } else if (!singular) {
      out.append(marker);
    }
    i = close;
  }
  return out;
}

}  // namespace

std::string reason_text(std::size_t index, float value) {
  if (index >= kFeatureCount) return "";
  const FeatureSpec& spec = kSchema[index];
  if (index == kColSource) {
    int code = std::isnan(value) ? -1 : int(value);
    if (code >= 0 && code < int(std::size(kSources))) return "came from " + std::string(kSources[code]);
    return "came from another source";
  }
  if (index == kColLeadType) {
    int code = std::isnan(value) ? 0 : int(value);
    return std::string(lead_type_name(static_cast<LeadType>(std::clamp(code, 0, 4)))) + " lead";
  }
  if (std::isnan(value)) {
    return spec.missing_text.empty() ? std::string(spec.name) + " unknown" : std::string(spec.missing_text);
  }
  const std::string shown = format_value(spec.unit, value);
  std::string text(spec.text);
  auto pos = text.find("{v}");
  if (pos != std::string::npos) text.replace(pos, 3, shown);
  return inflect(text, shown == "1");
}

int source_code(std::string_view source) {
  for (std::size_t i = 0; i < std::size(kSources); ++i) {
    if (kSources[i] == source) return int(i);
  }
  return int(std::size(kSources));
}

void TrackRecord::add_speed(double seconds) {
  speed_count += 1;
  speed_log_sum += std::log1p(std::max(0.0, seconds) / 60.0);
}

namespace {

// '|' (not the default separator): these keys are the book's JSON keys.
std::string tenant_key(const std::string& tenant_id, const std::string& name) {
  return tenant_scoped_key(tenant_id, name, '|');
}

bool has_tenant_part(std::string_view key) {
  const auto bar = key.find('|');
  return bar != std::string_view::npos && is_valid_tenant_id(key.substr(0, bar));
}

}  // namespace

TrackRecord& TrackRecordBook::agent(const std::string& tenant_id, const std::string& agent_id) {
  return agents_[tenant_key(tenant_id, agent_id)];
}

TrackRecord& TrackRecordBook::source(const std::string& tenant_id, const std::string& source) {
  return sources_[tenant_key(tenant_id, source)];
}

const TrackRecord* TrackRecordBook::find_agent(const std::string& tenant_id, const std::string& agent_id) const {
  auto it = agents_.find(tenant_key(tenant_id, agent_id));
  return it == agents_.end() ? nullptr : &it->second;
}

const TrackRecord* TrackRecordBook::find_source(const std::string& tenant_id,
                                                const std::string& source) const {
  auto it = sources_.find(tenant_key(tenant_id, source));
  return it == sources_.end() ? nullptr : &it->second;
}

void TrackRecordBook::add_outcome(const Contact& lead, bool signed_within_window) {
  global_.add_outcome(signed_within_window);
  if (!lead.assigned_agent_id.empty()) agent(lead.tenant_id, lead.assigned_agent_id).add_outcome(signed_within_window);
  source(lead.tenant_id, lead.source).add_outcome(signed_within_window);
  source(lead.tenant_id, "*").add_outcome(signed_within_window);
}

void TrackRecordBook::add_speed(const Contact& lead, double seconds) {
  global_.add_speed(seconds);
  if (!lead.assigned_agent_id.empty()) agent(lead.tenant_id, lead.assigned_agent_id).add_speed(seconds);
  source(lead.tenant_id, lead.source).add_speed(seconds);
}

double TrackRecordBook::smoothed_rate(const TrackRecord* record) const {
  // With no history at all the prior is a typical lead conversion rate.
  double prior = global_.matured > 0 ? (global_.converted + 1) / (global_.matured + 10) : 0.1;
  if (!record) return prior;
  return (record->converted + kPriorWeight * prior) / (record->matured + kPriorWeight);
}

std::string TrackRecordBook::to_json() const {
  boost::json::object agents, sources;
  for (const auto& [k, r] : agents_) agents[k] = record_json(r);
  for (const auto& [k, r] : sources_) sources[k] = record_json(r);
  boost::json::object root{{"global", record_json(global_)}, {"agents", agents}, {"sources", sources}};
  return boost::json::serialize(root);
}

std::optional<TrackRecordBook> TrackRecordBook::from_json(std::string_view json) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(json, ec);
  if (ec || !v.is_object()) return std::nullopt;
  const auto& o = v.as_object();
  TrackRecordBook book;
  auto g = o.find("global");
  if (g == o.end()) return std::nullopt;
  auto global = record_from(g->value());
  if (!global) return std::nullopt;
  book.global_ = *global;
  for (const char* section : {"agents", "sources"}) {
    auto it = o.find(section);
    if (it == o.end() || !it->value().is_object()) return std::nullopt;
    auto& target = section[0] == 'a' ? book.agents_ : book.sources_;
    for (const auto& [k, rv] : it->value().as_object()) {
      if (!has_tenant_part(k)) return std::nullopt;
      auto r = record_from(rv);
      if (!r) return std::nullopt;
      target[std::string(k)] = *r;
    }
  }
  return book;
}

void LeadFeatureState::Decayed::add(UnixSeconds ts, double half_life_seconds) {
  if (ts >= at) {
    value = value * std::exp(-kLn2 * double(ts - at) / half_life_seconds) + 1.0;
    at = ts;
  } else {
    // Late event: its weight as of `at` is already decayed.
    value += std::exp(-kLn2 * double(at - ts) / half_life_seconds);
  }
}

double LeadFeatureState::Decayed::read(UnixSeconds now, double half_life_seconds) const {
  if (value == 0) return 0;
  if (now <= at) return value;
  return value * std::exp(-kLn2 * double(now - at) / half_life_seconds);
}

void LeadFeatureState::set_contact(const Contact& contact) {
  contact_ = contact;
  has_contact_ = true;
}

void LeadFeatureState::set_created_if_unknown(UnixSeconds created_at) {
  if (has_contact_) return;
  if (contact_.created_at == 0 || created_at < contact_.created_at) contact_.created_at = created_at;
}

std::optional<UnixSeconds> LeadFeatureState::first_outreach() const {
  for (UnixSeconds t : early_outreach_) {
    if (t >= contact_.created_at) return t;
  }
  return std::nullopt;
}

namespace {

void keep_latest(std::optional<UnixSeconds>& t, UnixSeconds ts) {
  if (!t || ts > *t) t = ts;
}

void keep_earliest(std::optional<UnixSeconds>& t, UnixSeconds ts) {
  if (!t || ts < *t) t = ts;
}

// Keeps `times` sorted and at most `limit` long, dropping the latest: events
// can arrive out of order, and only the earliest few are ever read.
inline void keep_earliest_times(std::vector<UnixSeconds>& times, UnixSeconds ts, std::size_t limit) {
  auto pos = std::lower_bound(times.begin(), times.end(), ts);
  if (times.size() < limit || pos != times.end()) {
    times.insert(pos, ts);
    if (times.size() > limit) times.pop_back();
  }
}

}  // namespace

// The steps of apply() and write_features() below are inline: both run for
// every event on the scoring hot path, and as separate calls they cost
// about 5% more instructions.
void LeadFeatureState::apply(const Event& event) {
  count_event(event.type, event.ts);
  note_event_time(event.type, event.ts);
  if (is_outreach(event.type)) {
    note_outreach(event.ts);
  } else if (is_inbound_contact(event.type)) {
    note_inbound_contact(event.type, event.ts);
  }
  if (is_property_event(event.type)) note_property_event(event);
}

inline void LeadFeatureState::count_event(EventType type, UnixSeconds ts) {
  ++events_count_;
  ++counts_[static_cast<std::size_t>(type)];
  auto& decayed = decayed_[group_of(type)];
  for (std::size_t h = 0; h < kHalfLivesHours.size(); ++h) decayed[h].add(ts, kHalfLivesHours[h] * 3600.0);
}

inline void LeadFeatureState::note_event_time(EventType type, UnixSeconds ts) {
  keep_earliest(first_event_, ts);
  keep_earliest_times(early_events_, ts, kKeptEarlyEvents);
  if (type == EventType::kAppointmentBooked) keep_earliest(first_appointment_, ts);
  keep_latest(last_event_, ts);
}

inline void LeadFeatureState::note_outreach(UnixSeconds ts) {
  keep_latest(last_outreach_, ts);
  ++outreach_since_inbound_;
  keep_earliest_times(early_outreach_, ts, kKeptOutreach);
}

// A text or call soon after the agent's last outreach counts as a reply; a
// form is not a reply, the lead would have filled it in anyway.
inline void LeadFeatureState::note_inbound_contact(EventType type, UnixSeconds ts) {
  keep_earliest(first_inbound_contact_, ts);
  keep_latest(last_inbound_, ts);
  outreach_since_inbound_ = 0;
  const bool replies = type != EventType::kFormSubmit && last_outreach_ && *last_outreach_ <= ts &&
                       ts - *last_outreach_ <= kReplyWindowSeconds;
  if (!replies) return;
  ++replies_;
  double delay = double(ts - *last_outreach_);
  if (!first_reply_delay_s_) first_reply_delay_s_ = delay;
  if (!min_reply_delay_s_ || delay < *min_reply_delay_s_) min_reply_delay_s_ = delay;
}

inline void LeadFeatureState::note_property_event(const Event& event) {
  keep_latest(last_property_, event.ts);
  if (event.property_id.empty()) return;
  const float price = event.value ? static_cast<float>(*event.value) : kNaN;
  Listing* listing = find_or_add_listing(fnv1a(event.property_id), price);
  if (listing && event.type == EventType::kPropertySave) listing->saved = true;
}

// A home's price is taken from its first event only, so repeat views do not
// weigh the mean price. Past kMaxListings homes, new ones are not tracked
// (nullptr) to bound the state per lead.
inline LeadFeatureState::Listing* LeadFeatureState::find_or_add_listing(std::uint64_t id_hash, float price) {
  for (Listing& l : listings_) {
    if (l.id_hash == id_hash) return &l;
  }
  if (listings_.size() >= kMaxListings) return nullptr;
  listings_.push_back({id_hash, price, false});
  if (!std::isnan(price)) {
    price_sum_ += price;
    ++price_n_;
  }
  return &listings_.back();
}

std::optional<double> typical_speed_minutes(const TrackRecord& record) {
  if (record.speed_count < 3) return std::nullopt;
  return std::expm1(record.speed_log_sum / record.speed_count);
}

void LeadFeatureState::write_track_features(const TrackRecordBook* book, float* out) const {
  if (!book) {
    out[kColAgentRate] = kNaN;
    out[kColAgentSpeed] = kNaN;
    out[kColSourceRate] = kNaN;
    out[kColTenantRate] = kNaN;
    return;
  }
  const TrackRecord* agent = book->find_agent(contact_.tenant_id, contact_.assigned_agent_id);
  const TrackRecord* source = book->find_source(contact_.tenant_id, contact_.source);
  out[kColAgentRate] = static_cast<float>(book->smoothed_rate(agent));
  const auto speed = agent ? typical_speed_minutes(*agent) : std::nullopt;
  out[kColAgentSpeed] = speed ? static_cast<float>(*speed) : kNaN;
  out[kColSourceRate] = static_cast<float>(book->smoothed_rate(source));
  out[kColTenantRate] = static_cast<float>(book->smoothed_rate(book->find_source(contact_.tenant_id, "*")));
}

void LeadFeatureState::write_features(UnixSeconds at, const TrackRecordBook* book, float* out) const {
  write_activity(at, out);
  write_recency(at, out);
  write_conversation(at, out);
  write_homes_viewed(out);
  write_stated_profile(out);
  write_creation_time(out);
  write_track_features(book, out);
  write_milestones(out);
}

// Per-type counts, and per-group counts decayed to `at` at each half-life.
inline void LeadFeatureState::write_activity(UnixSeconds at, float* out) const {
  for (int i = 0; i < kEventTypeCount; ++i) out[kColCounts + i] = static_cast<float>(counts_[i]);
  for (int g = 0; g < kGroupCount; ++g) {
    for (std::size_t h = 0; h < kHalfLivesHours.size(); ++h) {
      out[kColDecayed + g * 3 + h] =
          static_cast<float>(decayed_[g][h].read(at, kHalfLivesHours[h] * 3600.0));
    }
  }
  out[kColEventsTotal] = static_cast<float>(events_count_);
}

inline void LeadFeatureState::write_recency(UnixSeconds at, float* out) const {
  out[kColHoursSinceInbound] = hours_between(last_inbound_, at);
  out[kColHoursSinceProperty] = hours_between(last_property_, at);
  out[kColHoursSinceEvent] = hours_between(last_event_, at);
  out[kColHoursSinceOutreach] = hours_between(last_outreach_, at);
  const double age_h = double(at - contact_.created_at) / 3600.0;
  out[kColAge] = static_cast<float>(age_h);
  auto first_out = first_outreach();
  out[kColSpeedToLead] = first_out ? static_cast<float>(double(*first_out - contact_.created_at) / 60.0) : kNaN;
  out[kColHoursWithoutOutreach] = first_out ? 0.f : static_cast<float>(std::max(0.0, age_h));
}

// The exchange between agent and lead: touches each way, replies, and how
// the lead's last day of activity compares with its last week.
inline void LeadFeatureState::write_conversation(UnixSeconds at, float* out) const {
  auto count = [this](EventType t) { return counts_[static_cast<std::size_t>(t)]; };
  const std::uint32_t outreach =
      count(EventType::kSmsOut) + count(EventType::kCallOut) + count(EventType::kEmailOut);
  const std::uint32_t inbound =
      count(EventType::kSmsIn) + count(EventType::kCallIn) + count(EventType::kFormSubmit);
  out[kColOutreachTotal] = static_cast<float>(outreach);
  out[kColInboundContactTotal] = static_cast<float>(inbound);
  out[kColReplies] = static_cast<float>(replies_);
  out[kColFirstReplyDelay] = first_reply_delay_s_ ? static_cast<float>(*first_reply_delay_s_ / 60) : kNaN;
  out[kColFastestReplyDelay] = min_reply_delay_s_ ? static_cast<float>(*min_reply_delay_s_ / 60) : kNaN;
  out[kColUnanswered] = static_cast<float>(outreach_since_inbound_);
  out[kColReplyRate] = outreach ? static_cast<float>(double(replies_) / outreach) : kNaN;
  const double day = decayed_[kInbound][1].read(at, 24 * 3600.0) + decayed_[kProperty][1].read(at, 24 * 3600.0);
  const double week = decayed_[kInbound][2].read(at, 168 * 3600.0) + decayed_[kProperty][2].read(at, 168 * 3600.0);
  out[kColVelocity] = week > 1e-3 ? static_cast<float>(day / week) : kNaN;
}

// Homes looked at, and their prices against the stated budget ("near" is
// within 20%); the budget can change after the views, so this is read time.
inline void LeadFeatureState::write_homes_viewed(float* out) const {
  std::uint32_t saved = 0, near = 0, priced = 0;
  double ratio_sum = 0;
  const double budget = contact_.budget.value_or(0);
  for (const Listing& l : listings_) {
    saved += l.saved ? 1 : 0;
    if (budget > 0 && !std::isnan(l.price)) {
      ++priced;
      double r = l.price / budget;
      ratio_sum += r;
      near += (r >= 0.8 && r <= 1.2) ? 1 : 0;
    }
  }
  out[kColDistinctHomes] = static_cast<float>(listings_.size());
  out[kColDistinctSaved] = static_cast<float>(saved);
  out[kColMeanPrice] = price_n_ ? static_cast<float>(price_sum_ / price_n_) : kNaN;
  out[kColPriceToBudget] = priced ? static_cast<float>(ratio_sum / priced) : kNaN;
  out[kColShareNearBudget] = priced ? static_cast<float>(double(near) / priced) : kNaN;
}

// What the contact row says about the lead.
inline void LeadFeatureState::write_stated_profile(float* out) const {
  out[kColBudget] = opt_f(contact_.budget);
  out[kColTimeline] = opt_f(contact_.timeline_months);
  out[kColPreApproved] = opt_f(contact_.pre_approved);
  out[kColBeds] = opt_f(contact_.beds_wanted);
  out[kColHasPhone] = opt_f(contact_.has_phone);
  out[kColHasEmail] = opt_f(contact_.has_email);
  out[kColAreaGiven] = contact_.area_wanted.empty() ? 0.f : 1.f;
  out[kColSource] = static_cast<float>(source_code(contact_.source));
  out[kColLeadType] = static_cast<float>(static_cast<int>(contact_.lead_type));
}

inline void LeadFeatureState::write_creation_time(float* out) const {
  const std::int64_t day_s = ((contact_.created_at % 86400) + 86400) % 86400;
  out[kColCreatedHour] = static_cast<float>(day_s / 3600);
  // 1970-01-01 was a Thursday; 0 = Monday.
  const std::int64_t days = (contact_.created_at - day_s) / 86400;
  out[kColCreatedWeekday] = static_cast<float>(((days + 3) % 7 + 7) % 7);
  out[kColCreatedMonth] = static_cast<float>(civil_month(days));
}

// When things first happened, relative to created_at (read at write time:
// the contact row may arrive after the first events).
inline void LeadFeatureState::write_milestones(float* out) const {
  out[kColEventsBeforeCreated] = static_cast<float>(
      std::lower_bound(early_events_.begin(), early_events_.end(), contact_.created_at) - early_events_.begin());
  auto since_created = [this](const std::optional<UnixSeconds>& t) {
    return t ? static_cast<float>(double(*t - contact_.created_at) / 3600.0) : kNaN;
  };
  out[kColHoursToAppointment] = since_created(first_appointment_);
  out[kColHoursToInboundContact] = since_created(first_inbound_contact_);
}

}  // namespace reai::features
