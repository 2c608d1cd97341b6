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

bool CsvReader::next(std::vector<std::string_view>& fields, Status* error) {
  fields.clear();
  unquoted_.clear();
  const std::size_t n = text_.size();
  // Skip blank lines.
  while (pos_ < n && (text_[pos_] == '\n' || text_[pos_] == '\r')) {
    if (text_[pos_] == '\n') ++next_line_;
    ++pos_;
  }
  if (pos_ >= n) return false;
  row_line_ = next_line_;
  while (true) {
    if (pos_ < n && text_[pos_] == '"') {
      std::string value;
      ++pos_;
      bool closed = false;
      while (pos_ < n) {
        char c = text_[pos_++];
        if (c == '"') {
          if (pos_ < n && text_[pos_] == '"') {
            value.push_back('"');
            ++pos_;
          } else {
            closed = true;
            break;
          }
        } else {
          if (c == '\n') ++next_line_;
          value.push_back(c);
        }
      }
      if (!closed) {
        fields.clear();
        *error = invalid_argument("unterminated quoted field");
        return true;
      }
      unquoted_.push_back(std::move(value));
      fields.emplace_back(unquoted_.back());
    } else {
      std::size_t start = pos_;
      while (pos_ < n && text_[pos_] != ',' && text_[pos_] != '\n' && text_[pos_] != '\r') ++pos_;
      fields.emplace_back(text_.data() + start, pos_ - start);
    }
    if (pos_ >= n) break;
    if (text_[pos_] == ',') {
      ++pos_;
      continue;
    }
    if (text_[pos_] == '\r') ++pos_;
    if (pos_ < n && text_[pos_] == '\n') {
      ++pos_;
      ++next_line_;
      break;
    }
    if (pos_ >= n) break;
    // Garbage after a closing quote, e.g. "ab"c: skip to the end of the line.
    while (pos_ < n && text_[pos_] != '\n') ++pos_;
    if (pos_ < n) {
      ++pos_;
      ++next_line_;
    }
    fields.clear();
    *error = invalid_argument("characters after a closing quote");
    return true;
  }
  *error = Status::ok();
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
