#include "core/json_text.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdint>
#include <limits>

namespace reai {
namespace {

TEST(JsonText, StringEscapesOnlyWhatJsonRequiresAndRoundTrips) {
  std::string out = "x";
  append_json_string("plain", &out);
  EXPECT_EQ(out, "x\"plain\"");
  out.clear();
  const std::string tricky = std::string("a\"b\\c\nd\re\tf") + '\x01' + "g\x1fh" + "\xc3\xa9";
  append_json_string(tricky, &out);
  EXPECT_EQ(out, "\"a\\\"b\\\\c\\nd\\re\\tf\\u0001g\\u001fh\xc3\xa9\"");
  EXPECT_EQ(boost::json::parse(out).as_string(), tricky);  // valid JSON for the same text
  out.clear();
  append_json_string("", &out);
  EXPECT_EQ(out, "\"\"");
}

// Bytes that are not UTF-8 (a percent-decoded path id, a query value echoed
// in an error) must not make the answer invalid JSON: each bad byte becomes
// U+FFFD, valid multi-byte characters pass through untouched.
TEST(JsonText, StringReplacesBytesThatAreNotUtf8) {
  const std::string replacement = "\xef\xbf\xbd";
  const struct {
    std::string in;
    std::string want;  // between the quotes
  } cases[] = {
      {"a\xff\xfe" "b", "a" + replacement + replacement + "b"},
      {"\xc3", replacement},                                   // truncated 2-byte sequence
      {"\xc0\xaf", replacement + replacement},                // overlong '/'
      {"\xed\xa0\x80", replacement + replacement + replacement},  // UTF-16 surrogate
      {"\xf4\x90\x80\x80", replacement + replacement + replacement + replacement},  // above U+10FFFF
      {"\xe2\x98", replacement + replacement},                // truncated 3-byte sequence
      {"\xe2\x98\xba\xf0\x9f\x98\x80\xc3\xa9", "\xe2\x98\xba\xf0\x9f\x98\x80\xc3\xa9"},  // valid: kept
  };
  for (const auto& c : cases) {
    std::string out;
    append_json_string(c.in, &out);
    EXPECT_EQ(out, "\"" + c.want + "\"");
    boost::system::error_code ec;
    boost::json::parse(out, ec);  // Boost.JSON refuses invalid UTF-8
    EXPECT_FALSE(ec) << ec.message();
  }
}

TEST(JsonText, WritesPlainNumbersAndRoundTrips) {
  namespace json = boost::json;
  json::object o;
  o["list_price"] = 137500.0;
  o["match_score"] = 0.0756;
  o["beds"] = 3.0;
  o["tiny"] = 1e-7;
  o["neg"] = std::int64_t{-42};
  o["big"] = std::uint64_t{18446744073709551615u};
  o["inf"] = std::numeric_limits<double>::infinity();
  o["ok"] = true;
  o["none"] = nullptr;
  o["reasons"] = json::array{"3 bedrooms \"as asked\"", json::array{}, json::object{}};
  const std::string text = json_text(o);
  EXPECT_EQ(text,
            "{\"list_price\":137500.0,\"match_score\":0.0756,\"beds\":3.0,\"tiny\":1e-07,\"neg\":-42,"
            "\"big\":18446744073709551615,\"inf\":null,\"ok\":true,\"none\":null,"
            "\"reasons\":[\"3 bedrooms \\\"as asked\\\"\",[],{}]}");
  // Valid JSON with the same values and kinds.
  const auto back = json::parse(text).as_object();
  EXPECT_EQ(back.at("list_price").as_double(), 137500.0);
  EXPECT_EQ(back.at("beds").as_double(), 3.0);
  EXPECT_DOUBLE_EQ(back.at("match_score").as_double(), 0.0756);
  EXPECT_DOUBLE_EQ(back.at("tiny").as_double(), 1e-7);
  EXPECT_EQ(back.at("big").as_uint64(), 18446744073709551615u);
  EXPECT_EQ(back.at("reasons").as_array()[0].as_string(), "3 bedrooms \"as asked\"");
  const double awkward = 0.1 + 0.2;  // shortest round trip, not a rounded one
  EXPECT_EQ(json::parse(json_text(json::value(awkward))).as_double(), awkward);
}

}  // namespace
}  // namespace reai
