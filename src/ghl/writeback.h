// GoHighLevel write-back, the pure half: what reai sends to GHL's REST API v2
// (score custom field, band tags, OAuth token grants), how it reads GHL's
// answers, and the pacing rules (token bucket per location, retry delays).
// No I/O: the transport lives in ghl/http_client.h and the worker in the
// server. Every function is safe from any thread; TokenBucket is not (one
// owner). Facts: shared/GHL.md.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace reai::ghl {

// The Version header GHL's v2 API requires.
inline constexpr std::string_view kApiVersion = "2021-07-28";
// Name of the numeric contact custom field reai writes its score into; found
// by this name (or its key "contact.reai_score") or created.
inline constexpr std::string_view kScoreFieldName = "reai score";
inline constexpr std::string_view kScoreFieldKey = "contact.reai_score";

// "hot" -> "hot-lead", "warm" -> "warm-lead", "cold" -> "cold-lead".
std::string band_tag(std::string_view band);
// The two band tags a contact in `band` must not carry.
std::vector<std::string> other_band_tags(std::string_view band);

// The payload of an outbox update of kind "score": the lead's state when it
// was enqueued. Every update carries the full state, so the newest update of
// a contact supersedes older ones, and sending one twice is harmless.
struct ScoreChange {
  int score = 0;
  std::string band;           // "hot" | "warm" | "cold"
  bool band_changed = false;  // tags are written only then
};
std::string score_change_json(const ScoreChange& change);
// InvalidArgument for malformed JSON, a missing field or an unknown band.
Result<ScoreChange> parse_score_change(std::string_view json_text);

// One REST call, relative to the API base.
struct ApiCall {
  std::string method;  // "GET", "POST", "PUT", "DELETE"
  std::string target;  // path + query, e.g. "/contacts/abc"
  std::string body;
  std::string content_type = "application/json";  // ignored when body is empty
};

// PUT /contacts/{id} with only customFields (never `tags`: it would replace
// every tag). Idempotent: it sets a value.
ApiCall put_score_call(std::string_view contact_id, std::string_view field_id, int score);
// POST (add) or DELETE (remove) /contacts/{id}/tags {"tags":[...]}.
// Idempotent: tags are a set.
ApiCall tags_call(bool add, std::string_view contact_id, const std::vector<std::string>& tags);
ApiCall list_custom_fields_call(std::string_view location_id);
ApiCall create_score_field_call(std::string_view location_id);
// The id of reai's score field in a custom-fields list answer
// ({"customFields":[{"id","name","fieldKey",...}]}); nullopt when absent.
// InvalidArgument for a malformed answer.
Result<std::optional<std::string>> find_score_field(std::string_view list_body);
// The id in a create answer ({"customField":{"id":...}} or {"id":...}).
Result<std::string> parse_created_field(std::string_view body);

// OAuth (POST /oauth/token, form-encoded).
struct OAuthClient {
  std::string client_id;
  std::string client_secret;
};
ApiCall token_from_code_call(const OAuthClient& client, std::string_view code, std::string_view redirect_uri);
ApiCall token_from_refresh_call(const OAuthClient& client, std::string_view refresh_token);
struct TokenGrant {
  std::string access_token;
  std::string refresh_token;
  std::int64_t expires_in = 0;  // seconds
  std::string location_id;      // empty for a company-level grant
};
// InvalidArgument when the answer is malformed or lacks access_token.
Result<TokenGrant> parse_token_grant(std::string_view body);

// application/x-www-form-urlencoded of the pairs, in order.
std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields);
// Percent-encodes a path segment (ids are opaque to reai).
std::string encode_path_segment(std::string_view segment);

// GHL's error message from an error answer ({"message": "..."} where message
// may be a string or an array of strings), else the body cut to 200 bytes.
std::string error_message(std::string_view body);

// Whether GHL's answer to a refresh-token grant refuses the grant itself
// (the app was uninstalled, the refresh token revoked or rotated elsewhere):
// 400 or 401 whose JSON `error` is "invalid_grant" (OAuth 2.0, RFC 6749
// section 5.2). Retrying cannot help; a new install can. Anything else (5xx,
// 429, another error such as invalid_client, a body that is not JSON) is not
// a refusal of the tenant's grant.
bool refresh_refused(int http_status, std::string_view body);
// GHL's words for an OAuth error: error_description, else message (as
// error_message), else error, else the body cut to 200 bytes.
std::string oauth_error_message(std::string_view body);

// What to do with an answer's status code.
enum class Verdict : std::uint8_t {
  kOk,       // 2xx
  kRetry,    // 429, 5xx (and transport errors): back off, keep the update
  kRefresh,  // 401: refresh the token once, then retry
  kFail,     // other 4xx: record GHL's message, give up
};
Verdict classify(int http_status);

// Response headers that pace retries (absent ones are nullopt).
struct RateHeaders {
  std::optional<double> retry_after_s;  // Retry-After (seconds form)
  std::optional<int> remaining;         // X-RateLimit-Remaining
  std::optional<double> interval_ms;    // X-RateLimit-Interval-Milliseconds
};
// Seconds to wait before retry `attempt` (1-based): exponential from 1 s,
// capped at 300 s, with full jitter (`jitter01` in [0,1), the caller's
// random draw), but never less than Retry-After, and at least the window
// (10 s by default) when the limit is exhausted.
double retry_delay_seconds(int attempt, const RateHeaders& headers, double jitter01);

// GHL's per-location limit: at most `capacity` requests in any `period_s`
// window. A sliding log rather than a refilling token bucket: a bucket that
// starts full lets 100 go at once and then refills, which puts more than 100
// in some 10 s window, and GHL (and the fake in the tests) counts windows.
// Time is the caller's (seconds, monotonic). Not thread-safe (one owner).
class RequestWindow {
 public:
  RequestWindow(int capacity, double period_s);
  // Takes a slot and answers 0, or answers how long to wait for one
  // (nothing taken).
  double take(double now_s);
  // How long until `n` slots are free at once (0: now); nothing taken.
  double wait_for(int n, double now_s);
  // No request before `until_s` (GHL said the window is used up).
  void block_until(double until_s);

 private:
  int capacity_;
  double period_s_;
  std::deque<double> sent_;  // times of the requests in the current window
  double blocked_until_s_ = 0;
};

}  // namespace reai::ghl
