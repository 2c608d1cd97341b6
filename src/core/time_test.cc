#include "core/time.h"

#include <gtest/gtest.h>

namespace reai {
namespace {

TEST(TimeTest, ParsesUtcAndOffsets) {
  EXPECT_EQ(parse_iso8601("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_iso8601("2024-01-01T08:37:40Z"), 1704098260);
  EXPECT_EQ(parse_iso8601("2024-01-01T08:37:40.999Z"), 1704098260);
  EXPECT_EQ(parse_iso8601("2024-01-01T10:37:40+02:00"), 1704098260);
  EXPECT_EQ(parse_iso8601("2024-01-01"), 1704067200);
  EXPECT_EQ(parse_iso8601("2024-02-29T00:00:00Z"), 1709164800);
}

TEST(TimeTest, RejectsGarbage) {
  for (const char* bad : {"", "2024", "2024-13-01T00:00:00Z", "2023-02-29", "2024-01-01T25:00:00Z",
                          "2024-01-01T00:00:00Zjunk", "yesterday", "2024-01-01T00:00Z"}) {
    EXPECT_FALSE(parse_iso8601(bad).has_value()) << bad;
  }
}

TEST(TimeTest, FormatRoundTrips) {
  EXPECT_EQ(format_iso8601(1704098260), "2024-01-01T08:37:40Z");
  EXPECT_EQ(format_iso8601(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(format_iso8601(951868799), "2000-02-29T23:59:59Z");  // leap day, last second
  EXPECT_EQ(format_iso8601(-1), "1969-12-31T23:59:59Z");
  EXPECT_EQ(format_iso8601(253402300799), "9999-12-31T23:59:59Z");
  EXPECT_EQ(format_iso8601(253402300800), "10000-01-01T00:00:00Z");  // wider, still readable
  for (UnixSeconds t : {0LL, 951782400LL, 1735689599LL, 4102444800LL}) {
    EXPECT_EQ(parse_iso8601(format_iso8601(t)), t);
  }
}

TEST(TimeTest, ManualClockMovesOnlyWhenTold) {
  ManualClock clock(100);
  EXPECT_EQ(clock.now(), 100);
  clock.advance(50);
  EXPECT_EQ(clock.now(), 150);
  clock.set(7);
  EXPECT_EQ(clock.now(), 7);
}

}  // namespace
}  // namespace reai
