#include "server/dashboard_routes.h"

#include <array>
#include <map>
#include <unordered_map>

#include <boost/json.hpp>

#include "core/time.h"
#include "server/codec.h"
#include "server/http_errors.h"
#include "server/responses.h"
#include "store/store.h"

namespace reai::server {
namespace json = boost::json;
namespace {

ApiResponse json_answer(std::string body, Route route) { return json_response(200, std::move(body), route); }

// The value of `limit` in a query string: `fallback` when absent, nullopt
// when not an integer in 1..1000.
std::optional<std::size_t> limit_param(std::string_view query, std::size_t fallback) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.substr(0, 6) != "limit=") continue;
    const std::string_view digits = pair.substr(6);
    if (digits.empty() || digits.size() > 4) return std::nullopt;
    std::size_t v = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + std::size_t(c - '0');
    }
    if (v == 0 || v > 1000) return std::nullopt;
    return v;
  }
  return fallback;
}

template <class T>
json::value optional_json(const std::optional<T>& v) {
  return v ? json::value(*v) : json::value(nullptr);
}

}  // namespace

ApiResponse DashboardRoutes::contact(const TokenClaims& claims, std::string_view contact_id) {
  auto c = store_.get_contact(claims.tenant_id, std::string(contact_id));
  if (!c) return error_response(c.status(), Route::kContact);
  json::object o;
  o["tenant_id"] = c->tenant_id;
  o["contact_id"] = c->contact_id;
  o["created_at"] = format_iso8601(c->created_at);
  o["source"] = c->source;
  o["lead_type"] = lead_type_name(c->lead_type);
  o["assigned_agent_id"] = c->assigned_agent_id;
  o["budget"] = optional_json(c->budget);
  // 0: unknown (imported from history), shown as not known rather than 1970.
  o["budget_stated_at"] = c->budget_stated_at > 0 ? json::value(format_iso8601(c->budget_stated_at)) : json::value(nullptr);
  o["timeline_months"] = optional_json(c->timeline_months);
  o["pre_approved"] = optional_json(c->pre_approved);
  o["beds_wanted"] = optional_json(c->beds_wanted);
  o["area_wanted"] = c->area_wanted;
  o["has_phone"] = optional_json(c->has_phone);
  o["has_email"] = optional_json(c->has_email);
  return json_answer(json_text(o), Route::kContact);
}

ApiResponse DashboardRoutes::events(const TokenClaims& claims, std::string_view contact_id, std::string_view query) {
  const auto limit = limit_param(query, 200);
  if (!limit) return error_response(invalid_argument("limit must be 1..1000"), Route::kContactEvents);
  const std::string id(contact_id);
  auto c = store_.get_contact(claims.tenant_id, id);
  if (!c) return error_response(c.status(), Route::kContactEvents);
  auto events = store_.events_for_contact(claims.tenant_id, id);
  if (!events) return error_response(events.status(), Route::kContactEvents);
  json::array list;
  const std::size_t n = std::min(*limit, events->size());
  list.reserve(n);
  // Stored in time order; the page wants the newest first.
  for (std::size_t i = 0; i < n; ++i) {
    const Event& e = (*events)[events->size() - 1 - i];
    json::object item;
    item["event_id"] = e.event_id;
    item["type"] = event_type_name(e.type);
    item["ts"] = format_iso8601(e.ts);
    if (!e.property_id.empty()) item["property_id"] = e.property_id;
    if (e.value) item["value"] = *e.value;
    list.push_back(std::move(item));
  }
  json::object o;
  o["tenant_id"] = claims.tenant_id;
  o["lead_id"] = id;
  o["total"] = events->size();
  o["events"] = std::move(list);
  return json_answer(json_text(o), Route::kContactEvents);
}

ApiResponse DashboardRoutes::distribution(const TokenClaims& claims) {
  std::unordered_map<std::string, std::string> source_of;
  Status scanned = store_.for_each_contact(claims.tenant_id, [&](const Contact& c) {
    source_of.emplace(c.contact_id, c.source);
    return true;
  });
  if (!scanned) return error_response(scanned, Route::kLeadDistribution);
  std::vector<LeadBoard::Standing> leads;
  if (board_) {
    leads = board_->standings(claims.tenant_id);
  } else {
    for (const auto& s : engine_.top_leads(claims.tenant_id, std::nullopt, std::numeric_limits<std::size_t>::max())) {
      leads.push_back({s.lead_id, s.score, s.band});
    }
  }
  constexpr std::array<scoring::Band, 3> kBands = {scoring::Band::kHot, scoring::Band::kWarm, scoring::Band::kCold};
  auto band_index = [&](scoring::Band b) { return std::size_t(std::find(kBands.begin(), kBands.end(), b) - kBands.begin()); };
  std::array<std::size_t, 3> bands{};
  std::map<std::string, std::array<std::size_t, 3>> by_source;
  std::array<std::array<std::size_t, 3>, 10> bins{};
  for (const auto& s : leads) {
    const std::size_t b = band_index(s.band);
    if (b >= kBands.size()) continue;
    ++bands[b];
    auto it = source_of.find(s.lead_id);
    const std::string source = it == source_of.end() || it->second.empty() ? "unknown" : it->second;
    ++by_source[source][b];
    ++bins[std::size_t(std::clamp(s.score, 0, 99) / 10)][b];
  }
  auto band_object = [&](const std::array<std::size_t, 3>& counts) {
    json::object o;
    for (std::size_t i = 0; i < kBands.size(); ++i) o[scoring::band_name(kBands[i])] = counts[i];
    return o;
  };
  json::array sources;
  for (const auto& [name, counts] : by_source) {
    json::object o = band_object(counts);
    o["source"] = name;
    o["count"] = counts[0] + counts[1] + counts[2];
    sources.push_back(std::move(o));
  }
  json::array score_bins;
  for (std::size_t i = 0; i < bins.size(); ++i) {
    json::object o = band_object(bins[i]);
    o["from"] = i * 10;
    o["to"] = i == 9 ? 100 : i * 10 + 9;
    score_bins.push_back(std::move(o));
  }
  json::object o;
  o["tenant_id"] = claims.tenant_id;
  o["leads"] = leads.size();
  o["bands"] = band_object(bands);
  o["sources"] = std::move(sources);
  o["score_bins"] = std::move(score_bins);
  return json_answer(json_text(o), Route::kLeadDistribution);
}

}  // namespace reai::server
