#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

TEST(EventParserFuzz, NastyInputsDoNotCrash) {
  std::vector<std::string> corpus = {
      "",
      "{",
      "}",
      "[",
      "null",
      "[]",
      "{}",
      "[{}]",
      "\"string\"",
      "1e999999",
      "-0",
      R"({"contact_id":"c1","type":"page_view"})",
      R"({"contact_id":"c1","type":"page_view","ts":"2024-13-45T99:99:99Z"})",
      R"({"contact_id":"c1","type":"page_view","value":1e308,"property_id":null})",
      R"({"contact_id":"c1","type":"page_view","value":"NaN"})",
      R"({"contact_id":"","type":"page_view"})",
      R"({"contact_id":123,"type":["x"]})",
      R"({"contact_id":"c1","type":"page_view","contact_id":"c2"})",
      R"({"contact_id":"c1","type":"page_view","tenant_id":"other"})",
      R"({"contact_id":"\u0000\ud800","type":"page_view"})",
      "{\"contact_id\":\"\xff\xfe\",\"type\":\"page_view\"}",
      R"([1,2,3,{"a":{"b":{"c":[[[[[[[[]]]]]]]]}}}])",
      std::string(10000, '['),
      std::string(10000, '{'),
      "[" + std::string(5000, '1') + "]",
      R"({"contact_id":"c1","type":"page_view","value":-9223372036854775809})",
      R"({"contact_id":"c1","type":"page_view","value":18446744073709551616})",
  };
  std::string big_batch = "[";
  for (int i = 0; i < 1200; ++i) big_batch += std::string(i ? "," : "") + R"({"contact_id":"c","type":"sms_in"})";
  big_batch += "]";
  corpus.push_back(big_batch);
  for (const auto& input : corpus) {
    EXPECT_EQ(LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(input.data()), input.size()), 0);
  }
}

}  // namespace
