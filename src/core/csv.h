// A small, fast CSV reader (RFC 4180: comma separator, "" quoting, CRLF or LF)
// that keeps line numbers for error reports. Reads the whole file into memory.
#pragma once

#include <cstddef>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace reai {

class CsvReader {
 public:
  // Opens `path` and reads its header row. Fails with NotFound when the file
  // cannot be read and InvalidArgument when it is empty.
  static Result<CsvReader> open(const std::string& path);
  // Parses CSV text held in memory (`name` is used in messages).
  static Result<CsvReader> from_string(std::string text, std::string name);

  const std::string& path() const { return path_; }
  const std::vector<std::string>& header() const { return header_; }
  // Index of the named column, or nullopt.
  std::optional<std::size_t> column(std::string_view name) const;
  // Index of the named column, or InvalidArgument naming the file and column.
  Result<std::size_t> require_column(std::string_view name) const;

  // Reads the next non-empty row into `fields`; the views stay valid until the
  // next call. Returns false at end of file. A malformed row (unterminated
  // quote) sets `*error` and returns true with no fields, so callers can
  // report it with line() and continue.
  bool next(std::vector<std::string_view>& fields, Status* error);
  // 1-based physical line number where the last row returned starts.
  std::size_t line() const { return row_line_; }

 private:
  // What follows a field: a comma (another field comes), the row's end, or
  // text after a closing quote (a malformed row).
  enum class FieldEnd { kNextField, kRowEnd, kJunk };

  CsvReader() = default;
  Status read_header();
  // Steps of next(), defined inline in csv.cc: the import's hot path.
  void skip_blank_lines();
  Status read_row_fields(std::vector<std::string_view>& fields);
  bool read_quoted_field(std::vector<std::string_view>& fields);
  bool unescape_quoted_text(std::string& value);
  void read_plain_field(std::vector<std::string_view>& fields);
  FieldEnd consume_field_end();
  void skip_rest_of_line();

  std::string path_;
  std::string text_;
  std::size_t pos_ = 0;
  std::size_t next_line_ = 1;
  std::size_t row_line_ = 0;
  std::vector<std::string> header_;
  std::deque<std::string> unquoted_;  // stable storage for fields that needed unescaping
};

// Parses a field as a number; nullopt for empty/"NA" (missing). Sets *ok=false
// when the text is present but not a number.
std::optional<double> parse_optional_double(std::string_view text, bool* ok);
std::optional<bool> parse_optional_bool(std::string_view text, bool* ok);

// `text` as one CSV field for the writers: as is, or quoted with inner
// quotes doubled when it holds a comma, quote or line break.
std::string csv_field(std::string_view text);

}  // namespace reai
