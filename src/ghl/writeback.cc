#include "ghl/writeback.h"

#include <algorithm>
#include <cmath>

#include <boost/json.hpp>

#include "core/json_text.h"

namespace reai::ghl {
namespace {

namespace json = boost::json;

constexpr std::string_view kBands[] = {"hot", "warm", "cold"};

bool is_band(std::string_view band) { return std::find(std::begin(kBands), std::end(kBands), band) != std::end(kBands); }

std::string tags_body(const std::vector<std::string>& tags) {
  json::array a;
  for (const auto& t : tags) a.emplace_back(t);
  json::object o;
  o["tags"] = std::move(a);
  return json::serialize(o);
}

std::string field_id_of(const json::object& field) {
  if (const auto* id = field.if_contains("id"); id && id->is_string()) return std::string(id->as_string());
  return {};
}

}  // namespace

std::string band_tag(std::string_view band) { return std::string(band) + "-lead"; }

std::vector<std::string> other_band_tags(std::string_view band) {
  std::vector<std::string> out;
  for (auto b : kBands) {
    if (b != band) out.push_back(band_tag(b));
  }
  return out;
}

std::string score_change_json(const ScoreChange& c) {
  json::object o;
  o["score"] = c.score;
  o["band"] = c.band;
  o["band_changed"] = c.band_changed;
  return json::serialize(o);
}

Result<ScoreChange> parse_score_change(std::string_view text) {
  auto v = parse_json(text);
  if (!v) return v.status();
  const auto* o = v->if_object();
  if (!o) return invalid_argument("score change: not an object");
  const auto* score = o->if_contains("score");
  const auto* band = o->if_contains("band");
  const auto* changed = o->if_contains("band_changed");
  if (!score || !score->is_int64() || !band || !band->is_string() || !changed || !changed->is_bool()) {
    return invalid_argument("score change: needs score (integer), band (string), band_changed (bool)");
  }
  ScoreChange c;
  c.score = static_cast<int>(score->as_int64());
  c.band = std::string(band->as_string());
  c.band_changed = changed->as_bool();
  if (!is_band(c.band)) return invalid_argument("score change: unknown band '" + c.band + "'");
  return c;
}

ApiCall put_score_call(std::string_view contact_id, std::string_view field_id, int score) {
  json::object field;
  field["id"] = field_id;
  field["field_value"] = score;
  json::array fields;
  fields.emplace_back(std::move(field));
  json::object o;
  o["customFields"] = std::move(fields);
  return ApiCall{"PUT", "/contacts/" + encode_path_segment(contact_id), json::serialize(o)};
}

ApiCall tags_call(bool add, std::string_view contact_id, const std::vector<std::string>& tags) {
  return ApiCall{add ? "POST" : "DELETE", "/contacts/" + encode_path_segment(contact_id) + "/tags", tags_body(tags)};
}

ApiCall list_custom_fields_call(std::string_view location_id) {
  return ApiCall{"GET", "/locations/" + encode_path_segment(location_id) + "/customFields", ""};
}

ApiCall create_score_field_call(std::string_view location_id) {
  json::object o;
  o["name"] = kScoreFieldName;
  o["dataType"] = "NUMERICAL";
  o["model"] = "contact";
  return ApiCall{"POST", "/locations/" + encode_path_segment(location_id) + "/customFields", json::serialize(o)};
}

Result<std::optional<std::string>> find_score_field(std::string_view list_body) {
  // GHL's answer: a repeated key keeps its last value, as GHL's JavaScript reads it.
  auto v = parse_json(list_body, {}, {}, DuplicateKeys::kLastWins);
  if (!v) return v.status();
  const auto* o = v->if_object();
  const auto* fields = o ? o->if_contains("customFields") : nullptr;
  if (!fields || !fields->is_array()) return invalid_argument("custom fields: no customFields array");
  for (const auto& f : fields->as_array()) {
    const auto* field = f.if_object();
    if (!field) continue;
    const auto* name = field->if_contains("name");
    const auto* key = field->if_contains("fieldKey");
    const bool named = name && name->is_string() && name->as_string() == kScoreFieldName;
    const bool keyed = key && key->is_string() && key->as_string() == kScoreFieldKey;
    if ((named || keyed) && !field_id_of(*field).empty()) return std::optional<std::string>(field_id_of(*field));
  }
  return std::optional<std::string>();
}

Result<std::string> parse_created_field(std::string_view body) {
  // GHL's answer: a repeated key keeps its last value, as GHL's JavaScript reads it.
  auto v = parse_json(body, {}, {}, DuplicateKeys::kLastWins);
  if (!v) return v.status();
  const auto* o = v->if_object();
  if (!o) return invalid_argument("created field: not an object");
  if (const auto* inner = o->if_contains("customField"); inner && inner->is_object()) o = &inner->as_object();
  std::string id = field_id_of(*o);
  if (id.empty()) return invalid_argument("created field: no id");
  return id;
}

ApiCall token_from_code_call(const OAuthClient& client, std::string_view code, std::string_view redirect_uri) {
  std::vector<std::pair<std::string, std::string>> f = {{"client_id", client.client_id},
                                                        {"client_secret", client.client_secret},
                                                        {"grant_type", "authorization_code"},
                                                        {"code", std::string(code)},
                                                        {"user_type", "Location"}};
  if (!redirect_uri.empty()) f.emplace_back("redirect_uri", std::string(redirect_uri));
  return ApiCall{"POST", "/oauth/token", form_encode(f), "application/x-www-form-urlencoded"};
}

ApiCall token_from_refresh_call(const OAuthClient& client, std::string_view refresh_token) {
  return ApiCall{"POST", "/oauth/token",
                 form_encode({{"client_id", client.client_id},
                              {"client_secret", client.client_secret},
                              {"grant_type", "refresh_token"},
                              {"refresh_token", std::string(refresh_token)},
                              {"user_type", "Location"}}),
                 "application/x-www-form-urlencoded"};
}

Result<TokenGrant> parse_token_grant(std::string_view body) {
  // GHL's answer: a repeated key keeps its last value, as GHL's JavaScript reads it.
  auto v = parse_json(body, {}, {}, DuplicateKeys::kLastWins);
  if (!v) return v.status();
  const auto* o = v->if_object();
  if (!o) return invalid_argument("token answer: not an object");
  TokenGrant g;
  auto text = [&](std::string_view key) {
    const auto* f = o->if_contains(key);
    return f && f->is_string() ? std::string(f->as_string()) : std::string();
  };
  g.access_token = text("access_token");
  g.refresh_token = text("refresh_token");
  g.location_id = text("locationId");
  if (const auto* e = o->if_contains("expires_in"); e && e->is_number()) g.expires_in = e->to_number<std::int64_t>();
  if (g.access_token.empty()) return invalid_argument("token answer: no access_token");
  return g;
}

std::string form_encode(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::string out;
  for (const auto& [k, v] : fields) {
    if (!out.empty()) out += '&';
    out += encode_path_segment(k);
    out += '=';
    out += encode_path_segment(v);
  }
  return out;
}

std::string encode_path_segment(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string error_message(std::string_view body) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (!ec && v.is_object()) {
    if (const auto* m = v.as_object().if_contains("message")) {
      if (m->is_string()) return std::string(m->as_string());
      if (m->is_array()) {
        std::string joined;
        for (const auto& part : m->as_array()) {
          if (!part.is_string()) continue;
          if (!joined.empty()) joined += "; ";
          joined += std::string(part.as_string());
        }
        if (!joined.empty()) return joined;
      }
    }
  }
  return std::string(body.substr(0, 200));
}

namespace {

// The string member `name` of a JSON object body, or "".
std::string string_member(std::string_view body, std::string_view name) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return "";
  const auto* m = v.as_object().if_contains(name);
  return m && m->is_string() ? std::string(m->as_string()) : "";
}

}  // namespace

bool refresh_refused(int http_status, std::string_view body) {
  return (http_status == 400 || http_status == 401) && string_member(body, "error") == "invalid_grant";
}

std::string oauth_error_message(std::string_view body) {
  if (std::string d = string_member(body, "error_description"); !d.empty()) return d;
  std::string m = error_message(body);
  if (m != body.substr(0, 200)) return m;  // a "message" was found
  if (std::string e = string_member(body, "error"); !e.empty()) return e;
  return m;
}

Verdict classify(int status) {
  if (status >= 200 && status < 300) return Verdict::kOk;
  if (status == 429 || status >= 500 || status <= 0) return Verdict::kRetry;
  if (status == 401) return Verdict::kRefresh;
  return Verdict::kFail;
}

double retry_delay_seconds(int attempt, const RateHeaders& h, double jitter01) {
  const double cap = std::min(300.0, std::ldexp(1.0, std::clamp(attempt, 1, 20) - 1));
  double delay = cap * std::clamp(jitter01, 0.0, 1.0);
  if (h.retry_after_s) delay = std::max(delay, *h.retry_after_s);
  if (h.remaining && *h.remaining <= 0) delay = std::max(delay, h.interval_ms ? *h.interval_ms / 1000.0 : 10.0);
  return delay;
}

RequestWindow::RequestWindow(int capacity, double period_s) : capacity_(std::max(1, capacity)), period_s_(period_s) {}

double RequestWindow::take(double now_s) {
  if (now_s < blocked_until_s_) return blocked_until_s_ - now_s;
  while (!sent_.empty() && sent_.front() <= now_s - period_s_) sent_.pop_front();
  if (static_cast<int>(sent_.size()) < capacity_) {
    sent_.push_back(now_s);
    return 0;
  }
  return sent_.front() + period_s_ - now_s;
}

double RequestWindow::wait_for(int n, double now_s) {
  if (now_s < blocked_until_s_) return blocked_until_s_ - now_s;
  while (!sent_.empty() && sent_.front() <= now_s - period_s_) sent_.pop_front();
  const int free = capacity_ - static_cast<int>(sent_.size());
  if (free >= n) return 0;
  const int must_expire = std::min(n, capacity_) - free;
  if (must_expire <= 0) return 0;
  return sent_[static_cast<std::size_t>(must_expire - 1)] + period_s_ - now_s;
}

void RequestWindow::block_until(double until_s) { blocked_until_s_ = std::max(blocked_until_s_, until_s); }

}  // namespace reai::ghl
