// Building API answers and reading request URLs: shared by Api and the route
// classes so every route maps a Status to HTTP and decodes ids the same way.
// Private to src/server. Pure functions: thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "server/api.h"

namespace reai::server {

// A JSON answer with this HTTP status.
ApiResponse json_response(int status, std::string body, Route route);
// The status's HTTP code (http_status_for) and {"error": message}.
ApiResponse error_response(const Status& status, Route route);
// 405 {"error": "method not allowed"}: the route exists, the method does not.
ApiResponse method_not_allowed(Route route);
// Whether a request body's Content-Type header names JSON: application/json
// or a +json type, any parameters (charset) and case aside. An absent header
// counts as JSON: clients written before the check sent JSON without one.
bool is_json_content_type(std::string_view content_type);
// 415 {"error": "Content-Type must be application/json"}.
ApiResponse unsupported_media_type(Route route);
// %XX decoding (and '+' as space in query strings); nullopt when a % escape
// is malformed.
std::optional<std::string> percent_decode(std::string_view in, bool plus_is_space);
// A path's segments (split at '/', the leading one dropped), each
// percent-decoded once (RFC 3986: "%2F" inside a segment is a '/' of that
// segment, never a separator; '+' stays '+'). "/api/leads/a%2Fb/matches" is
// {"api", "leads", "a/b", "matches"}. InvalidArgument when an escape is
// malformed.
Result<std::vector<std::string>> path_segments(std::string_view path);
// The decoded value of `key` in a query string; nullopt when absent, ""
// when present but badly encoded.
std::optional<std::string> query_param(std::string_view query, std::string_view key);

}  // namespace reai::server
