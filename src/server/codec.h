// JSON codec of the API: strict parsing of events and contact fields, and the
// one serializer of the score object. Private to src/server.
#pragma once

#include <boost/json/fwd.hpp>
#include <cstddef>
#include <string>
#include <string_view>

#include "core/json_text.h"  // append_json_string, json_text: every API answer and WebSocket message
#include "core/status.h"
#include "core/types.h"
#include "scoring/scoring.h"

namespace reai::server {

// Parses one event object. `tenant_id` comes from the token; a "tenant_id"
// field must equal it (else PermissionDenied). `default_contact_id` (may be
// empty) fills a missing contact_id. A missing ts becomes `now`; a missing
// event_id stays empty (the caller generates one). InvalidArgument names the
// offending field for unknown fields, wrong types, unknown types, bad dates,
// a ts before 1970 or more than kMaxEventLeadSeconds after `now` (clocks
// drift; a year ahead is a bug), and a value outside 0..kMaxBudget.
inline constexpr UnixSeconds kMaxEventLeadSeconds = 86400;
// The bound above for any time a client states (an event's ts, a contact's
// created_at): InvalidArgument naming `field` outside it.
Status check_crm_time(UnixSeconds t, UnixSeconds now, std::string_view field);
Result<Event> parse_event(const boost::json::value& v, std::string_view tenant_id,
                          std::string_view default_contact_id, UnixSeconds now);

// Applies the contact fields of `object` onto `contact` (omitted fields keep
// their value; null clears an optional one). Keys listed in `ignored_keys`
// are skipped (e.g. "events" in score-trigger lead_data). Same errors as
// parse_event; a contact_id field must equal contact->contact_id. Also
// InvalidArgument for a lead_type other than buyer, seller, both, investor,
// unknown or "", a source or area_wanted over kMaxIdBytes or not UTF-8, and
// a stated number outside the bounds below.
inline constexpr double kMaxBudget = 1e10;
inline constexpr int kMaxTimelineMonths = 240;
inline constexpr int kMaxBedsWanted = 50;
Status apply_contact_fields(const boost::json::value& v, std::string_view tenant_id, Contact* contact,
                            std::string_view ignored_key = {});

// The score object, as every route and the WebSocket send it.
void append_score_fields(const scoring::LeadScore& s, std::string* out);  // without braces
std::string score_json(const scoring::LeadScore& s);

// {"error":"..."}
std::string error_json(std::string_view message);

// Parses a body (object or array of events) the way POST /api/events does,
// without side effects: the fuzz target's entry point. Returns the number
// of valid events, or the error for the whole body.
Result<std::size_t> parse_events_body(std::string_view body, std::string_view tenant_id, UnixSeconds now);

inline constexpr std::size_t kMaxBatchEvents = 1000;

// The rule for every contact, lead, listing, agent or opportunity id a
// client names, in a body or in a path: 1..kMaxIdBytes bytes of UTF-8
// without control characters (it is stored, and answers and WebSocket frames
// carry it as JSON text).
// InvalidArgument naming `field` otherwise.
// A body's "tenant_id" field: OK when it is the token's tenant;
// PermissionDenied for another, InvalidArgument when not a string.
Status check_tenant(const boost::json::value& v, std::string_view tenant_id);

inline constexpr std::size_t kMaxIdBytes = 256;
Status check_id(std::string_view id, std::string_view field);

}  // namespace reai::server
