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

TEST(JsonText, ParseRefusesAKeyNamedTwiceInOneObjectAtAnyDepth) {
  const auto error = [](std::string_view text) {
    auto v = parse_json(text);
    return v ? std::string("parsed") : v.status().message();
  };
  EXPECT_EQ(error(R"({"lead_id":"a","type":"x","lead_id":"b"})"), R"(duplicate key "lead_id")");
  EXPECT_EQ(error(R"({"listing":{"beds":3,"beds":4}})"), R"(duplicate key "beds")");
  EXPECT_EQ(error(R"([{"a":1},{"b":1,"b":2}])"), R"(duplicate key "b")");
  EXPECT_EQ(error(R"({"a":1,"\u0061":2})"), R"(duplicate key "a")") << "keys compare as decoded";
  EXPECT_EQ(error(R"({"":1,"":2})"), R"(duplicate key "")");
  // The same key in different objects, nested or side by side, is no repeat.
  EXPECT_EQ(error(R"({"a":{"a":{"a":1}},"b":[{"a":1},{"a":2}],"c":{"b":1}})"), "parsed");
  // A key is shown as JSON text, cut to 64 bytes.
  EXPECT_EQ(error("{\"tab\\tquote\\\"\":1,\"tab\\tquote\\\"\":2}"), R"(duplicate key "tab\tquote\"")");
  const std::string long_key(100, 'k');
  EXPECT_EQ(error("{\"" + long_key + "\":1,\"" + long_key + "\":2}"),
            "duplicate key \"" + std::string(64, 'k') + "\" (first 64 bytes)");
}

// Past 16 keys an object's keys are sorted, not compared pairwise: still
// exact, and an object of 50,000 keys is checked in well under a second.
TEST(JsonText, ParseFindsARepeatAmongManyKeys) {
  std::string many = "{";
  for (int i = 0; i < 50000; ++i) many += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
  auto unique = parse_json(many + "}");
  ASSERT_TRUE(unique) << unique.status().to_string();
  EXPECT_EQ(unique->as_object().size(), 50000u);
  auto repeated = parse_json(many + ",\"k31337\":0}");
  ASSERT_FALSE(repeated);
  EXPECT_EQ(repeated.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(repeated.status().message(), R"(duplicate key "k31337")");
}

TEST(JsonText, ParseCanKeepTheLastOfARepeatedKeyAndFailsAsBefore) {
  auto last = parse_json(R"({"a":1,"b":{"c":1,"c":2},"a":3})", {}, {}, DuplicateKeys::kLastWins);
  ASSERT_TRUE(last) << last.status().to_string();
  EXPECT_EQ(json_text(*last), R"({"a":3,"b":{"c":2}})");
  auto ok = parse_json(R"({"a":[1,2.5,"x",null,true,{"b":-7}],"c":18446744073709551615})");
  ASSERT_TRUE(ok) << ok.status().to_string();
  EXPECT_EQ(json_text(*ok), R"({"a":[1,2.5,"x",null,true,{"b":-7}],"c":18446744073709551615})");
  // Whatever Boost.JSON's parse refuses is refused with its reason; what it
  // reads (1e999 is infinity) is read the same.
  for (const char* text : {"", "{not json", R"({"a":1} trailing)", "[1,2", "1e99999999999999999999", "\"\xff\"",
                           "1e999", "[]", " {} "}) {
    auto v = parse_json(text);
    boost::system::error_code ec;
    const boost::json::value expected = boost::json::parse(text, ec);
    if (ec) {
      ASSERT_FALSE(v) << text;
      EXPECT_EQ(v.status().message(), "malformed JSON: " + ec.message()) << text;
    } else {
      ASSERT_TRUE(v) << text << ": " << v.status().to_string();
      EXPECT_EQ(*v, expected) << text;
    }
  }
  EXPECT_EQ(parse_json("{not json").status().message(), "malformed JSON: syntax error");
  EXPECT_EQ(parse_json(R"({"a":1} trailing)").status().message(), "malformed JSON: extra data");
  unsigned char buffer[1024];
  boost::json::monotonic_resource arena(buffer, sizeof buffer);
  boost::json::storage_ptr storage(&arena);
  auto placed = parse_json(R"({"a":[1,2]})", {}, storage);
  ASSERT_TRUE(placed);
  EXPECT_EQ(placed->storage().get(), storage.get()) << "built in the given storage";
  boost::json::parse_options shallow;
  shallow.max_depth = 2;
  EXPECT_FALSE(parse_json("[[[1]]]", shallow));
  EXPECT_TRUE(parse_json("[[1]]", shallow));
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

// A round budget or price reads as one: 300000.0, not 3e+05 (which shortest
// to_chars prefers, being a character shorter).
TEST(JsonText, WholeNumbersAreWrittenInFull) {
  namespace json = boost::json;
  EXPECT_EQ(json_text(json::value(300000.0)), "300000.0");
  EXPECT_EQ(json_text(json::value(1e6)), "1000000.0");
  EXPECT_EQ(json_text(json::value(-2e9)), "-2000000000.0");
  EXPECT_EQ(json_text(json::value(1e10)), "10000000000.0");  // the largest budget a contact takes
  EXPECT_EQ(json_text(json::value(0.0)), "0.0");
  std::string plain;
  append_shortest_double(300000.0, &plain);
  EXPECT_EQ(plain, "300000");
  // Beyond 2^53 whole numbers are no longer exact: shortest form again.
  EXPECT_EQ(json_text(json::value(1e20)), "1e+20");
  EXPECT_EQ(json_text(json::value(2.5e-7)), "2.5e-07");
  EXPECT_EQ(json::parse(json_text(json::value(1e6))).as_double(), 1e6);
}

}  // namespace
}  // namespace reai
