#include "server/track_outcomes.h"

#include <memory>

#include <boost/json.hpp>

namespace reai::server {

namespace json = boost::json;

std::string encode_track_outcome(const scoring::TrackOutcome& o) {
  json::object v;
  v["lead"] = o.lead.contact_id;
  v["agent"] = o.lead.assigned_agent_id;
  v["source"] = o.lead.source;
  v["created_at"] = o.lead.created_at;
  v["converted"] = o.converted;
  if (o.first_outreach) v["first_outreach"] = *o.first_outreach;
  return json::serialize(v);
}

Result<scoring::TrackOutcome> decode_track_outcome(std::string_view tenant_id, std::string_view payload) {
  boost::system::error_code ec;
  json::value v = json::parse(payload, ec);
  if (ec || !v.is_object()) return invalid_argument("live_outcome: not a JSON object");
  const json::object& o = v.get_object();
  auto text = [&o](const char* k) -> const json::string* {
    const json::value* x = o.if_contains(k);
    return x && x->is_string() ? &x->get_string() : nullptr;
  };
  auto integer = [&o](const char* k) -> std::optional<std::int64_t> {
    const json::value* x = o.if_contains(k);
    if (x && x->is_int64()) return x->get_int64();
    if (x && x->is_uint64() && x->get_uint64() <= std::uint64_t(INT64_MAX)) return std::int64_t(x->get_uint64());
    return std::nullopt;
  };
  const json::string* lead = text("lead");
  const json::string* agent = text("agent");
  const json::string* source = text("source");
  const auto created_at = integer("created_at");
  const json::value* converted = o.if_contains("converted");
  if (!lead || !agent || !source || !created_at || !converted || !converted->is_bool()) {
    return invalid_argument("live_outcome: missing or mistyped field");
  }
  scoring::TrackOutcome out;
  out.lead.tenant_id = std::string(tenant_id);
  out.lead.contact_id = std::string(*lead);
  out.lead.assigned_agent_id = std::string(*agent);
  out.lead.source = std::string(*source);
  out.lead.created_at = *created_at;
  out.converted = converted->get_bool();
  if (o.contains("first_outreach")) {
    const auto first = integer("first_outreach");
    if (!first) return invalid_argument("live_outcome: mistyped first_outreach");
    out.first_outreach = *first;
  }
  return out;
}

TrackOutcomeSharing::TrackOutcomeSharing(bus::Bus& bus, scoring::LeadScoringEngine& engine)
    : bus_(bus), engine_(engine) {
  engine_.share_outcomes({});
  // Before the start-up replay reads the store: an outcome another instance
  // counts meanwhile either arrives here or is in what the replay reads.
  subscription_ = bus_.subscribe_notices([this](const bus::BusMessage& m) {
    if (m.topic != kLiveOutcomeTopic || !m.payload) return;
    auto outcome = decode_track_outcome(m.tenant_id, *m.payload);
    auto counted = outcome ? engine_.add_outcome(*outcome) : Result<bool>(outcome.status());
    if (!counted) malformed_.fetch_add(1, std::memory_order_relaxed);
    else (*counted ? received_ : repeats_).fetch_add(1, std::memory_order_relaxed);
  });
}

void TrackOutcomeSharing::start_publishing() {
  engine_.share_outcomes([this](const scoring::TrackOutcome& o) {
    // A refusal means Redis is down and this instance's hold is full; it
    // shows in /readyz, and the outcome stays counted here.
    if (bus_.notify(o.lead.tenant_id, kLiveOutcomeTopic,
                    std::make_shared<const std::string>(encode_track_outcome(o)))) {
      published_.fetch_add(1, std::memory_order_relaxed);
    } else {
      publish_failures_.fetch_add(1, std::memory_order_relaxed);
    }
  });
  publishing_ = true;
}

TrackOutcomeStats TrackOutcomeSharing::stats() const {
  TrackOutcomeStats s;
  s.publishing = publishing_.load();
  s.published = published_.load(std::memory_order_relaxed);
  s.publish_failures = publish_failures_.load(std::memory_order_relaxed);
  s.received = received_.load(std::memory_order_relaxed);
  s.repeats = repeats_.load(std::memory_order_relaxed);
  s.malformed = malformed_.load(std::memory_order_relaxed);
  return s;
}

TrackOutcomeSharing::~TrackOutcomeSharing() {
  engine_.share_outcomes({});  // nothing counted from now on calls into this object
  bus_.unsubscribe_notices(subscription_);
}

}  // namespace reai::server
