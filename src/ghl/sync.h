// GoHighLevel history pull (`reai ghl sync`), the pure half: the paged list
// calls, how a page answer is read, and the resumable cursor. No I/O: the
// server's GHL worker sends the calls (same token refresh and rate window as
// the write-back). Safe from any thread. Facts: shared/GHL.md.
//
// Both resources page with GHL's cursor scheme: a page holds at most `limit`
// records in (dateAdded, id) order and its `meta` names the last record
// (`startAfter`, `startAfterId`); the next call passes them back. A page
// with fewer than `limit` records is the last.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "ghl/writeback.h"

namespace reai::ghl {

enum class SyncResource : std::uint8_t { kContacts, kOpportunities };
// "contacts" / "opportunities" (the store's cursor key).
std::string_view sync_resource_name(SyncResource resource);

// The largest page GHL serves.
inline constexpr int kMaxPageLimit = 100;

// GET /contacts/?locationId=&limit=[&startAfter=&startAfterId=] or
// GET /opportunities/search?location_id=&limit=[&startAfter=&startAfterId=].
// `cursor` is a Page::next_cursor ("" = the first page); limit is clamped to
// 1..kMaxPageLimit.
ApiCall page_call(SyncResource resource, std::string_view location_id, int limit, std::string_view cursor);

struct Page {
  std::vector<std::string> records;  // each record's JSON object text
  std::string next_cursor;           // opaque; "" when `last`
  bool last = false;
};
// Reads {"contacts"|"opportunities": [...], "meta": {"startAfter", "startAfterId"}}.
// InvalidArgument for malformed JSON, a missing array, a record that is not
// an object, or a full page without a usable cursor (it would loop forever).
Result<Page> parse_page(SyncResource resource, std::string_view body, int limit);

}  // namespace reai::ghl
