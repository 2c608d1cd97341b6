#include "core/csv.h"

#include <charconv>
#include <fstream>
#include <sstream>

namespace reai {

Result<CsvReader> CsvReader::open(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("cannot read file " + path);
  std::ostringstream buf;
  buf << in.rdbuf();
  return from_string(std::move(buf).str(), path);
}

Result<CsvReader> CsvReader::from_string(std::string text, std::string name) {
  CsvReader r;
  r.path_ = std::move(name);
  r.text_ = std::move(text);
  if (r.text_.size() >= 3 && r.text_.compare(0, 3, "\xEF\xBB\xBF") == 0) r.pos_ = 3;  // UTF-8 BOM
  Status s = r.read_header();
  if (!s.is_ok()) return s;
  return r;
}

Status CsvReader::read_header() {
  std::vector<std::string_view> fields;
  Status error;
  if (!next(fields, &error)) return invalid_argument(path_ + ": empty file (no header row)");
  if (!error.is_ok()) return invalid_argument(path_ + ": header: " + error.message());
  for (auto f : fields) header_.emplace_back(f);
  return Status::ok();
}

std::optional<std::size_t> CsvReader::column(std::string_view name) const {
  for (std::size_t i = 0; i < header_.size(); ++i) {
    if (header_[i] == name) return i;
  }
  return std::nullopt;
}

Result<std::size_t> CsvReader::require_column(std::string_view name) const {
  if (auto c = column(name)) return *c;
  return invalid_argument(path_ + ": missing column '" + std::string(name) + "'");
}

// The helpers below are inline and stay in this file so that next(), the
// import's hot path, compiles to one loop as it did before it was split
// (read_row_fields is forced: left to itself GCC made it a call per row).

inline void CsvReader::skip_blank_lines() {
  const std::size_t n = text_.size();
  while (pos_ < n && (text_[pos_] == '\n' || text_[pos_] == '\r')) {
    if (text_[pos_] == '\n') ++next_line_;
    ++pos_;
  }
}

// Reads the text after an opening quote up to its closing quote, turning ""
// into ". Returns false when the text ends first (an unterminated quote).
inline bool CsvReader::unescape_quoted_text(std::string& value) {
  const std::size_t n = text_.size();
  while (pos_ < n) {
    char c = text_[pos_++];
    if (c != '"') {
      if (c == '\n') ++next_line_;  // a quoted field may span lines
      value.push_back(c);
      continue;
    }
    if (pos_ < n && text_[pos_] == '"') {
      value.push_back('"');
      ++pos_;
      continue;
    }
    return true;
  }
  return false;
}

// A quoted field's unescaped text is not a slice of text_, so it is kept in
// unquoted_ (a deque: its elements do not move) and the view points there.
inline bool CsvReader::read_quoted_field(std::vector<std::string_view>& fields) {
  std::string value;
  ++pos_;  // the opening quote
  if (!unescape_quoted_text(value)) return false;
  unquoted_.push_back(std::move(value));
  fields.emplace_back(unquoted_.back());
  return true;
}

inline void CsvReader::read_plain_field(std::vector<std::string_view>& fields) {
  const std::size_t n = text_.size();
  std::size_t start = pos_;
  while (pos_ < n && text_[pos_] != ',' && text_[pos_] != '\n' && text_[pos_] != '\r') ++pos_;
  fields.emplace_back(text_.data() + start, pos_ - start);
}

// Consumes the comma or line break after a field. A lone CR that is not at
// the end of the text counts as junk, like text after a closing quote.
inline CsvReader::FieldEnd CsvReader::consume_field_end() {
  const std::size_t n = text_.size();
  if (pos_ >= n) return FieldEnd::kRowEnd;
  if (text_[pos_] == ',') {
    ++pos_;
    return FieldEnd::kNextField;
  }
  if (text_[pos_] == '\r') ++pos_;
  if (pos_ < n && text_[pos_] == '\n') {
    ++pos_;
    ++next_line_;
    return FieldEnd::kRowEnd;
  }
  if (pos_ >= n) return FieldEnd::kRowEnd;
  return FieldEnd::kJunk;
}

// After junk such as "ab"c the reader resumes at the next line, so one bad
// row does not swallow the rest of the file.
inline void CsvReader::skip_rest_of_line() {
  const std::size_t n = text_.size();
  while (pos_ < n && text_[pos_] != '\n') ++pos_;
  if (pos_ < n) {
    ++pos_;
    ++next_line_;
  }
}

[[gnu::always_inline]] inline Status CsvReader::read_row_fields(std::vector<std::string_view>& fields) {
  while (true) {
    const bool quoted = pos_ < text_.size() && text_[pos_] == '"';
    if (quoted) {
      if (!read_quoted_field(fields)) return invalid_argument("unterminated quoted field");
    } else {
      read_plain_field(fields);
    }
    switch (consume_field_end()) {
      case FieldEnd::kNextField:
        continue;
      case FieldEnd::kRowEnd:
        return Status::ok();
      case FieldEnd::kJunk:
        skip_rest_of_line();
        return invalid_argument("characters after a closing quote");
    }
  }
}

bool CsvReader::next(std::vector<std::string_view>& fields, Status* error) {
  fields.clear();
  unquoted_.clear();
  skip_blank_lines();
  if (pos_ >= text_.size()) return false;
  row_line_ = next_line_;
  *error = read_row_fields(fields);
  if (!error->is_ok()) fields.clear();  // a malformed row is reported with no fields
  return true;
}

std::optional<double> parse_optional_double(std::string_view t, bool* ok) {
  *ok = true;
  if (t.empty() || t == "NA" || t == "null") return std::nullopt;
  double v = 0;
  auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
  if (ec != std::errc() || p != t.data() + t.size()) {
    *ok = false;
    return std::nullopt;
  }
  return v;
}

std::optional<bool> parse_optional_bool(std::string_view t, bool* ok) {
  *ok = true;
  if (t.empty() || t == "NA" || t == "null") return std::nullopt;
  if (t == "true" || t == "TRUE" || t == "True" || t == "1" || t == "yes") return true;
  if (t == "false" || t == "FALSE" || t == "False" || t == "0" || t == "no") return false;
  *ok = false;
  return std::nullopt;
}

std::string csv_field(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) return std::string(text);
  std::string out(1, '"');
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace reai
