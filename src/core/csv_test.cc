#include "core/csv.h"

#include <gtest/gtest.h>

namespace reai {
namespace {

std::vector<std::vector<std::string>> read_all(CsvReader& r, std::vector<std::size_t>* lines = nullptr) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string_view> f;
  Status err;
  while (r.next(f, &err)) {
    EXPECT_TRUE(err.is_ok()) << err.to_string();
    rows.emplace_back(f.begin(), f.end());
    if (lines) lines->push_back(r.line());
  }
  return rows;
}

TEST(CsvTest, QuotesEmptyFieldsAndCrlf) {
  auto r = CsvReader::from_string("a,b,c\r\n1,\"x, \"\"y\"\"\",\r\n\n\"multi\nline\",2,3\n", "t.csv");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->header(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(r->column("c"), 2u);
  EXPECT_FALSE(r->column("zz").has_value());
  EXPECT_EQ(r->require_column("zz").status().message(), "t.csv: missing column 'zz'");
  std::vector<std::size_t> lines;
  auto rows = read_all(*r, &lines);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"1", "x, \"y\"", ""}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"multi\nline", "2", "3"}));
  EXPECT_EQ(lines, (std::vector<std::size_t>{2, 4}));
}

TEST(CsvTest, ManyQuotedFieldsStayValid) {
  std::string header, row;
  for (int i = 0; i < 200; ++i) {
    header += (i ? ",c" : "c") + std::to_string(i);
    row += (i ? ",\"v" : "\"v") + std::to_string(i) + "\"";
  }
  auto r = CsvReader::from_string(header + "\n" + row + "\n", "wide.csv");
  ASSERT_TRUE(r.has_value());
  auto rows = read_all(*r);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][0], "v0");
  EXPECT_EQ(rows[0][199], "v199");
}

TEST(CsvTest, ReportsUnterminatedQuote) {
  auto r = CsvReader::from_string("a,b\n1,\"oops\n", "bad.csv");
  ASSERT_TRUE(r.has_value());
  std::vector<std::string_view> f;
  Status err;
  ASSERT_TRUE(r->next(f, &err));
  EXPECT_EQ(err.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r->line(), 2u);
}

TEST(CsvTest, EmptyAndMissingFiles) {
  EXPECT_EQ(CsvReader::from_string("", "e.csv").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CsvReader::open("/nonexistent/x.csv").status().code(), StatusCode::kNotFound);
}

TEST(CsvTest, OptionalValues) {
  bool ok;
  EXPECT_EQ(parse_optional_double("251000", &ok), 251000.0);
  EXPECT_TRUE(ok);
  EXPECT_FALSE(parse_optional_double("NA", &ok).has_value());
  EXPECT_TRUE(ok);
  EXPECT_FALSE(parse_optional_double("12abc", &ok).has_value());
  EXPECT_FALSE(ok);
  EXPECT_EQ(parse_optional_bool("true", &ok), true);
  EXPECT_FALSE(parse_optional_bool("maybe", &ok).has_value());
  EXPECT_FALSE(ok);
}

TEST(CsvFieldTest, QuotesOnlyWhenNeededAndDoublesQuotes) {
  EXPECT_EQ(csv_field("Austin"), "Austin");
  EXPECT_EQ(csv_field(""), "");
  EXPECT_EQ(csv_field("within budget, 3 beds"), "\"within budget, 3 beds\"");
  EXPECT_EQ(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_field("two\nlines"), "\"two\nlines\"");
}

}  // namespace
}  // namespace reai
