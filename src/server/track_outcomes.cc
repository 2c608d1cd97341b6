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

TrackOutcomeSharing::TrackOutcomeSharing(bus::Bus& bus, scoring::LeadScoringEngine& engine) : bus_(bus) {
  // Subscribe first: nothing another instance publishes meanwhile is missed.
  subscription_ = bus_.subscribe([this, &engine](const bus::BusMessage& m) {
    if (m.topic != kLiveOutcomeTopic || !m.payload) return;
    auto outcome = decode_track_outcome(m.tenant_id, *m.payload);
    if (!outcome || !engine.add_outcome(*outcome)) malformed_.fetch_add(1, std::memory_order_relaxed);
  });
  engine.share_outcomes([&bus](const scoring::TrackOutcome& o) {
    auto published = bus.publish(o.lead.tenant_id, kLiveOutcomeTopic, std::make_shared<const std::string>(encode_track_outcome(o)));
    (void)published;  // a bus failure shows in /readyz; the outcome stays counted here
  });
}

TrackOutcomeSharing::~TrackOutcomeSharing() { bus_.unsubscribe(subscription_); }

}  // namespace reai::server
