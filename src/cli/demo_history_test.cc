#include "cli/demo_history.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/time.h"

namespace reai::cli {
namespace {

constexpr UnixSeconds kDay = 86400;

UnixSeconds at(const char* iso) { return parse_iso8601(iso).value(); }

CrmHistory small_history() {
  CrmHistory h;
  Contact c;
  c.created_at = at("2024-01-01T10:00:00Z");
  h.contacts.push_back(c);
  Event e;
  e.ts = at("2025-12-31T23:59:58Z");  // a Wednesday: the demo fixture's last event
  h.events.push_back(e);
  OpportunityStage s;
  s.ts = at("2025-06-01T08:00:00Z");
  h.stages.push_back(s);
  return h;
}

TEST(DemoHistory, ShiftEndsWithinTheWeekBeforeTheStartByWholeWeeks) {
  CrmHistory h = small_history();
  EXPECT_EQ(history_end(h), at("2025-12-31T23:59:58Z"));
  const UnixSeconds start = at("2026-11-29T12:00:00Z");
  const UnixSeconds shift = week_aligned_shift(history_end(h), start);
  EXPECT_EQ(shift, 329 * kDay);  // 47 weeks
  shift_history(h, shift);
  EXPECT_EQ(history_end(h), at("2026-11-25T23:59:58Z"));  // still a Wednesday, 3.5 days before the start
  EXPECT_EQ(h.contacts[0].created_at, at("2024-11-25T10:00:00Z"));
  EXPECT_EQ(h.stages[0].ts, at("2026-04-26T08:00:00Z"));
  // Already in the week before: no move; a history after the start moves back.
  EXPECT_EQ(week_aligned_shift(start - 6 * kDay, start), 0);
  EXPECT_EQ(week_aligned_shift(start, start), 0);
  EXPECT_EQ(week_aligned_shift(start + 1, start), -7 * kDay);
  EXPECT_EQ(week_aligned_shift(start + 7 * kDay, start), -7 * kDay);
  EXPECT_EQ(week_aligned_shift(start - 7 * kDay, start), 7 * kDay);
}

// A month (30 days) after its end, a stored demo history is rebuilt: two
// weeks later it is reused (a restart), the shipped one in a 2026-11 demo is not.
TEST(DemoHistory, AHistoryEndingOverAMonthBeforeTheStartIsStale) {
  const UnixSeconds start = at("2026-11-29T12:00:00Z");
  EXPECT_FALSE(demo_history_is_stale(start - 14 * kDay, start));
  EXPECT_FALSE(demo_history_is_stale(start - 30 * kDay, start));
  EXPECT_TRUE(demo_history_is_stale(start - 30 * kDay - 1, start));
  EXPECT_TRUE(demo_history_is_stale(at("2025-12-31T23:59:58Z"), start));  // the fixture as shipped
  EXPECT_FALSE(demo_history_is_stale(start + kDay, start));  // a --clock before the history's end
}

TEST(DemoHistory, ShiftRecordRoundTripsAndIsAbsentOnANewStore) {
  const std::string dir = ::testing::TempDir() + "/demo_history_record";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto none = read_history_shift(dir);
  ASSERT_TRUE(none) << none.status().to_string();
  EXPECT_FALSE(none->has_value());
  ASSERT_TRUE(write_history_shift(dir, {329 * kDay, at("2026-11-25T23:59:58Z")}).is_ok());
  auto back = read_history_shift(dir);
  ASSERT_TRUE(back && back->has_value());
  EXPECT_EQ((*back)->shift_seconds, 329 * kDay);
  EXPECT_EQ((*back)->history_end, at("2026-11-25T23:59:58Z"));
  std::ofstream(history_shift_path(dir)) << "shift_seconds=many\n";
  EXPECT_EQ(read_history_shift(dir).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace reai::cli
