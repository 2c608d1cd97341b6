#include "cli/cli.h"

#include <gtest/gtest.h>

namespace reai::cli {
namespace {

TEST(CliTest, ParsesDurations) {
  EXPECT_EQ(*parse_duration("24h"), 86400);
  EXPECT_EQ(*parse_duration("30m"), 1800);
  EXPECT_EQ(*parse_duration("7d"), 604800);
  EXPECT_EQ(*parse_duration("90"), 90);
  EXPECT_EQ(*parse_duration("90s"), 90);
  for (const char* bad : {"", "h", "-5m", "12y", "1.5h", "99999999999999d"}) {
    EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
  }
}

TEST(CliTest, BadInputMapsToExitCodeTwo) {
  EXPECT_EQ(report_failure(invalid_argument("missing column 'ts'")), kExitBadInput);
  EXPECT_EQ(report_failure(not_found("no such file")), kExitBadInput);
  EXPECT_EQ(report_failure(internal_error("boom")), kExitFailure);
}

}  // namespace
}  // namespace reai::cli
