#include "server/codec.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>

#include <boost/json.hpp>

#include "core/json_text.h"
#include "core/time.h"

namespace reai::server {
namespace json = boost::json;
namespace {

Status field_error(std::string_view field, std::string_view what) {
  std::string m = "field '";
  m += field;
  m += "' ";
  m += what;
  return invalid_argument(std::move(m));
}

Status read_string(const json::value& v, std::string_view field, std::string* out) {
  if (!v.is_string()) return field_error(field, "must be a string");
  *out = std::string(v.as_string());
  return {};
}

Status read_number(const json::value& v, std::string_view field, double* out) {
  if (v.is_double()) {
    *out = v.as_double();
  } else if (v.is_int64()) {
    *out = double(v.as_int64());
  } else if (v.is_uint64()) {
    *out = double(v.as_uint64());
  } else {
    return field_error(field, "must be a number");
  }
  if (!std::isfinite(*out)) return field_error(field, "must be finite");
  return {};
}

Status read_int(const json::value& v, std::string_view field, int* out) {
  std::int64_t x = 0;
  if (v.is_int64()) {
    x = v.as_int64();
  } else if (v.is_uint64() && v.as_uint64() <= std::uint64_t(std::numeric_limits<int>::max())) {
    x = std::int64_t(v.as_uint64());
  } else {
    return field_error(field, "must be an integer");
  }
  if (x < std::numeric_limits<int>::min() || x > std::numeric_limits<int>::max()) {
    return field_error(field, "is out of range");
  }
  *out = int(x);
  return {};
}

Status read_bool(const json::value& v, std::string_view field, bool* out) {
  if (!v.is_bool()) return field_error(field, "must be a boolean");
  *out = v.as_bool();
  return {};
}

Status read_time(const json::value& v, std::string_view field, UnixSeconds* out) {
  if (!v.is_string()) return field_error(field, "must be an ISO 8601 string");
  auto t = parse_iso8601(std::string_view(v.as_string()));
  if (!t) return field_error(field, "is not a valid ISO 8601 time");
  *out = *t;
  return {};
}

Status read_id(const json::value& v, std::string_view field, std::string* out) {
  REAI_RETURN_IF_ERROR(read_string(v, field, out));
  return check_id(*out, field);
}

// Free text a contact states (source, area): it becomes a dashboard label and
// a group of /api/leads/distribution, so it has the id rule's bounds but may
// be empty (not stated).
Status read_label(const json::value& v, std::string_view field, std::string* out) {
  REAI_RETURN_IF_ERROR(read_string(v, field, out));
  return out->empty() ? Status{} : check_id(*out, field);
}

std::string format_bound(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", x);
  return buf;
}
std::string format_bound(int x) { return std::to_string(x); }

// A stated number outside what a person could mean is a client bug, not a
// preference: refused rather than fed to the model as an extreme value.
template <typename T>
Status read_bounded(const json::value& v, std::string_view field, std::optional<T>* out,
                    Status (*reader)(const json::value&, std::string_view, T*), T lowest, T highest) {
  if (v.is_null()) {
    out->reset();
    return {};
  }
  T x{};
  REAI_RETURN_IF_ERROR(reader(v, field, &x));
  if (x < lowest || x > highest) {
    return field_error(field, "must be between " + format_bound(lowest) + " and " + format_bound(highest));
  }
  *out = x;
  return {};
}

Status read_lead_type(const json::value& v, std::string_view field, LeadType* out) {
  if (!v.is_string()) return field_error(field, "must be a string");
  const std::string_view name(v.as_string());
  // Empty: not stated (as a CRM export leaves it).
  if (name.empty() || name == lead_type_name(LeadType::kUnknown)) {
    *out = LeadType::kUnknown;
    return {};
  }
  const LeadType type = parse_lead_type(name);
  if (type == LeadType::kUnknown) {
    return field_error(field, "must be one of buyer, seller, both, investor, unknown");
  }
  *out = type;
  return {};
}

template <typename T>
Status read_optional(const json::value& v, std::string_view field, std::optional<T>* out,
                     Status (*reader)(const json::value&, std::string_view, T*)) {
  if (v.is_null()) {
    out->reset();
    return {};
  }
  T x{};
  REAI_RETURN_IF_ERROR(reader(v, field, &x));
  *out = x;
  return {};
}

}  // namespace

Status check_tenant(const json::value& v, std::string_view tenant_id) {
  if (!v.is_string()) return field_error("tenant_id", "must be a string");
  if (v.as_string() != tenant_id) return permission_denied("tenant_id does not match the token");
  return {};
}

Status check_id(std::string_view id, std::string_view field) {
  if (id.empty()) return field_error(field, "must not be empty");
  if (id.size() > kMaxIdBytes) return field_error(field, "is longer than 256 bytes");
  if (!is_utf8(id)) return field_error(field, "is not UTF-8");
  // A NUL or a line break in an id ends up in logs, CSV exports and labels.
  const bool control = std::any_of(id.begin(), id.end(), [](char ch) {
    const auto byte = static_cast<unsigned char>(ch);
    return byte < 0x20 || byte == 0x7f;
  });
  if (control) return field_error(field, "must not contain control characters");
  return {};
}

Status check_crm_time(UnixSeconds t, UnixSeconds now, std::string_view field) {
  // A lead's time-decayed features and its contact's created_at come from
  // these times: one from the far future would skew them for good.
  if (t < 0 || t > now + kMaxEventLeadSeconds) {
    return field_error(field, "must be between 1970-01-01 and one day after the server's now");
  }
  return {};
}

Result<Event> parse_event(const json::value& v, std::string_view tenant_id,
                          std::string_view default_contact_id, UnixSeconds now) {
  if (!v.is_object()) return invalid_argument("an event must be a JSON object");
  Event e;
  e.tenant_id = std::string(tenant_id);
  e.contact_id = std::string(default_contact_id);
  e.ts = now;
  bool has_type = false;
  for (const auto& kv : v.as_object()) {
    const std::string_view key = kv.key();
    const json::value& x = kv.value();
    if (key == "contact_id") {
      REAI_RETURN_IF_ERROR(read_id(x, key, &e.contact_id));
      if (!default_contact_id.empty() && e.contact_id != default_contact_id) {
        return field_error(key, "does not match lead_id");
      }
    } else if (key == "type") {
      if (!x.is_string()) return field_error(key, "must be a string");
      auto t = parse_event_type(std::string_view(x.as_string()));
      if (!t) return field_error(key, "is not a known event type");
      e.type = *t;
      has_type = true;
    } else if (key == "ts") {
      REAI_RETURN_IF_ERROR(read_time(x, key, &e.ts));
      REAI_RETURN_IF_ERROR(check_crm_time(e.ts, now, key));
    } else if (key == "event_id") {
      REAI_RETURN_IF_ERROR(read_id(x, key, &e.event_id));
    } else if (key == "property_id") {
      if (!x.is_null()) REAI_RETURN_IF_ERROR(read_string(x, key, &e.property_id));
      // Empty: no listing. Else a listing id, as GET /api/listings/{id} takes.
      if (!e.property_id.empty()) REAI_RETURN_IF_ERROR(check_id(e.property_id, key));
    } else if (key == "value") {
      REAI_RETURN_IF_ERROR(read_optional<double>(x, key, &e.value, read_number));
      if (e.value && (*e.value < 0 || *e.value > kMaxBudget)) {
        return field_error(key, "must be between 0 and 10000000000");
      }
    } else if (key == "tenant_id") {
      REAI_RETURN_IF_ERROR(check_tenant(x, tenant_id));
    } else {
      return field_error(key, "is not a known event field");
    }
  }
  if (e.contact_id.empty()) return field_error("contact_id", "is required");
  if (!has_type) return field_error("type", "is required");
  return e;
}

Status apply_contact_fields(const json::value& v, std::string_view tenant_id, Contact* c,
                            std::string_view ignored_key) {
  if (!v.is_object()) return invalid_argument("contact fields must be a JSON object");
  for (const auto& kv : v.as_object()) {
    const std::string_view key = kv.key();
    const json::value& x = kv.value();
    if (!ignored_key.empty() && key == ignored_key) continue;
    if (key == "budget") {
      REAI_RETURN_IF_ERROR(read_bounded<double>(x, key, &c->budget, read_number, 0, kMaxBudget));
    } else if (key == "timeline_months") {
      REAI_RETURN_IF_ERROR(read_bounded<int>(x, key, &c->timeline_months, read_int, 0, kMaxTimelineMonths));
    } else if (key == "pre_approved") {
      REAI_RETURN_IF_ERROR(read_optional<bool>(x, key, &c->pre_approved, read_bool));
    } else if (key == "beds_wanted") {
      REAI_RETURN_IF_ERROR(read_bounded<int>(x, key, &c->beds_wanted, read_int, 0, kMaxBedsWanted));
    } else if (key == "has_phone") {
      REAI_RETURN_IF_ERROR(read_optional<bool>(x, key, &c->has_phone, read_bool));
    } else if (key == "has_email") {
      REAI_RETURN_IF_ERROR(read_optional<bool>(x, key, &c->has_email, read_bool));
    } else if (key == "area_wanted") {
      REAI_RETURN_IF_ERROR(read_label(x, key, &c->area_wanted));
    } else if (key == "source") {
      REAI_RETURN_IF_ERROR(read_label(x, key, &c->source));
    } else if (key == "assigned_agent_id") {
      REAI_RETURN_IF_ERROR(read_string(x, key, &c->assigned_agent_id));
      // Empty: unassigned. Else an agent id, as /api/agents/{id} takes.
      if (!c->assigned_agent_id.empty()) REAI_RETURN_IF_ERROR(check_id(c->assigned_agent_id, key));
    } else if (key == "lead_type") {
      REAI_RETURN_IF_ERROR(read_lead_type(x, key, &c->lead_type));
    } else if (key == "created_at") {
      REAI_RETURN_IF_ERROR(read_time(x, key, &c->created_at));
    } else if (key == "contact_id") {
      if (!x.is_string() || x.as_string() != c->contact_id) {
        return field_error(key, "does not match the contact in the path");
      }
    } else if (key == "tenant_id") {
      REAI_RETURN_IF_ERROR(check_tenant(x, tenant_id));
    } else {
      return field_error(key, "is not a known contact field");
    }
  }
  return {};
}

void append_score_fields(const scoring::LeadScore& s, std::string* out) {
  out->append("\"tenant_id\":");
  append_json_string(s.tenant_id, out);
  out->append(",\"lead_id\":");
  append_json_string(s.lead_id, out);
  out->append(",\"probability\":");
  append_shortest_double(s.probability, out);
  out->append(",\"score\":");
  out->append(std::to_string(s.score));
  out->append(",\"band\":");
  append_json_string(scoring::band_name(s.band), out);
  out->append(",\"confidence\":");
  append_shortest_double(s.confidence, out);
  out->append(",\"events_count\":");
  out->append(std::to_string(s.events_count));
  out->append(",\"reasons\":[");
  for (std::size_t i = 0; i < s.reasons.size(); ++i) {
    if (i) out->push_back(',');
    out->append("{\"feature\":");
    append_json_string(s.reasons[i].feature, out);
    out->append(",\"text\":");
    append_json_string(s.reasons[i].text, out);
    out->append(",\"impact\":");
    append_shortest_double(s.reasons[i].impact, out);
    out->push_back('}');
  }
  out->append("],\"model\":");
  append_json_string(s.model_version, out);
  if (!s.fallback_reason.empty()) {
    out->append(",\"fallback_reason\":");
    append_json_string(s.fallback_reason, out);
  }
  out->append(",\"scored_at\":");
  append_json_string(format_iso8601(s.scored_at), out);
  out->append(",\"latency_us\":");
  append_shortest_double(double(s.latency_ns) / 1000.0, out);
}

std::string score_json(const scoring::LeadScore& s) {
  std::string out;
  out.reserve(512);
  out.push_back('{');
  append_score_fields(s, &out);
  out.push_back('}');
  return out;
}

std::string error_json(std::string_view message) {
  std::string out = "{\"error\":";
  append_json_string(message, &out);
  out.push_back('}');
  return out;
}

Result<std::size_t> parse_events_body(std::string_view body, std::string_view tenant_id, UnixSeconds now) {
  auto parsed = parse_json(body);
  if (!parsed) return parsed.status();
  json::value& v = *parsed;
  if (v.is_object()) {
    auto e = parse_event(v, tenant_id, {}, now);
    if (!e) return e.status();
    return std::size_t{1};
  }
  if (!v.is_array()) return invalid_argument("body must be an event object or an array of events");
  if (v.as_array().size() > kMaxBatchEvents) return payload_too_large("a batch holds at most 1000 events");
  std::size_t ok = 0;
  for (const auto& item : v.as_array()) {
    if (parse_event(item, tenant_id, {}, now)) ++ok;
  }
  return ok;
}

}  // namespace reai::server
