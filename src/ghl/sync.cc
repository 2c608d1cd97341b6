#include "ghl/sync.h"

#include <boost/json.hpp>

#include <algorithm>
#include <cctype>

namespace reai::ghl {
namespace {

namespace json = boost::json;

// The cursor is "startAfter" '|' "startAfterId": both as GHL sent them.
constexpr char kCursorSeparator = '|';

std::string text_of(const json::value* v) {
  if (!v) return {};
  if (v->is_string()) return std::string(v->as_string());
  if (v->is_int64()) return std::to_string(v->as_int64());
  if (v->is_uint64()) return std::to_string(v->as_uint64());
  if (v->is_double()) return std::to_string(static_cast<long long>(v->as_double()));
  return {};
}

std::string query_value(std::string_view value) {
  std::string out;
  static constexpr char kHex[] = "0123456789ABCDEF";
  for (const char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

}  // namespace

std::string_view sync_resource_name(SyncResource resource) {
  return resource == SyncResource::kContacts ? "contacts" : "opportunities";
}

ApiCall page_call(SyncResource resource, std::string_view location_id, int limit, std::string_view cursor) {
  limit = std::clamp(limit, 1, kMaxPageLimit);
  std::string target = resource == SyncResource::kContacts ? "/contacts/?locationId=" : "/opportunities/search?location_id=";
  target += query_value(location_id);
  target += "&limit=" + std::to_string(limit);
  if (const auto bar = cursor.find(kCursorSeparator); bar != std::string_view::npos) {
    target += "&startAfter=" + query_value(cursor.substr(0, bar));
    target += "&startAfterId=" + query_value(cursor.substr(bar + 1));
  }
  return ApiCall{"GET", std::move(target), ""};
}

Result<Page> parse_page(SyncResource resource, std::string_view body, int limit) {
  boost::system::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return invalid_argument("GHL page: not a JSON object");
  const auto& o = v.as_object();
  const json::value* list = o.if_contains(sync_resource_name(resource));
  if (!list || !list->is_array()) {
    return invalid_argument("GHL page: no '" + std::string(sync_resource_name(resource)) + "' array");
  }
  Page page;
  for (const auto& record : list->as_array()) {
    if (!record.is_object()) return invalid_argument("GHL page: a record is not an object");
    page.records.push_back(json::serialize(record));
  }
  page.last = static_cast<int>(page.records.size()) < std::clamp(limit, 1, kMaxPageLimit);
  if (page.last) return page;
  const json::value* meta = o.if_contains("meta");
  const json::object* m = meta && meta->is_object() ? &meta->as_object() : nullptr;
  std::string after = m ? text_of(m->if_contains("startAfter")) : std::string();
  std::string after_id = m ? text_of(m->if_contains("startAfterId")) : std::string();
  if (after_id.empty()) {
    // GHL names the last record; fall back to its id when meta does not.
    const auto& last = list->as_array().back().as_object();
    after_id = text_of(last.if_contains("id"));
  }
  if (after_id.empty() || after.find(kCursorSeparator) != std::string::npos) {
    return invalid_argument("GHL page: a full page without a usable startAfterId");
  }
  page.next_cursor = after + kCursorSeparator + after_id;
  return page;
}

}  // namespace reai::ghl
