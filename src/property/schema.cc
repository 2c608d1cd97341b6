#include "property/schema.h"

#include <algorithm>
#include <charconv>
#include <cctype>
#include <cmath>
#include <fstream>
#include <iterator>
#include <limits>
#include <unordered_set>
#include <utility>

#include "core/csv.h"

namespace reai::property {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool parse_boolean_cell(std::string_view cell, float* out) {
  static constexpr std::string_view kTrue[] = {"y", "yes", "true", "t"};
  static constexpr std::string_view kFalse[] = {"n", "no", "false", "f"};
  for (auto t : kTrue) {
    if (iequals(cell, t)) return *out = 1.0f, true;
  }
  for (auto f : kFalse) {
    if (iequals(cell, f)) return *out = 0.0f, true;
  }
  return false;
}

bool has_token(const std::vector<std::string>& tokens, std::initializer_list<std::string_view> words) {
  for (const auto& t : tokens) {
    for (auto w : words) {
      if (t == w) return true;
    }
  }
  return false;
}

// Zip and postal codes are numbers that mean places, not quantities.
bool is_code_name(const std::vector<std::string>& tokens) {
  return has_token(tokens, {"zip", "zipcode", "postal", "postcode", "zip5", "fips"});
}

bool is_id_name(const std::vector<std::string>& tokens) {
  return tokens.size() >= 1 && (tokens.back() == "id" || tokens.front() == "id" || tokens.back() == "pid" ||
                                has_token(tokens, {"uuid", "mls", "parcel", "apn"}));
}

struct ColumnStats {
  std::size_t present = 0;
  std::size_t numeric = 0;
  std::size_t boolean = 0;
  std::size_t dates = 0;
  double min = std::numeric_limits<double>::infinity();
  double max = -std::numeric_limits<double>::infinity();
  std::unordered_set<std::string_view> distinct;
};

ColumnStats column_stats(const SalesTable& table, std::size_t c) {
  ColumnStats s;
  for (const auto& row : table.rows) {
    std::string_view cell = trim(row[c]);
    if (is_missing_cell(cell)) continue;
    ++s.present;
    if (s.distinct.size() <= table.rows.size()) s.distinct.insert(cell);
    double v = 0;
    float b = 0;
    auto [p, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), v);
    if (ec == std::errc() && p == cell.data() + cell.size() && std::isfinite(v)) {
      ++s.numeric;
      s.min = std::min(s.min, v);
      s.max = std::max(s.max, v);
    } else if (parse_boolean_cell(cell, &b)) {
      ++s.boolean;
    } else if (double y = 0; parse_date_cell(cell, &y)) {
      ++s.dates;
    }
  }
  return s;
}

ColumnSchema categorical_column(const SalesTable& table, std::size_t c, std::string name) {
  ColumnSchema col{std::move(name), ColumnKind::kCategorical, {}, {}};
  for (const auto& row : table.rows) {
    std::string_view cell = trim(row[c]);
    if (is_missing_cell(cell)) continue;
    if (col.level_index.find(cell) != col.level_index.end()) continue;
    col.level_index.emplace(std::string(cell), static_cast<int>(col.levels.size()));
    col.levels.emplace_back(cell);
  }
  return col;
}

// A trimmed, present cell as a number; NaN when it is not a finite one.
// encode_cell's hot path: no second trim or missing check.
double parse_present_number(std::string_view cell) {
  double v = 0;
  auto [p, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), v);
  if (ec == std::errc() && p == cell.data() + cell.size() && std::isfinite(v)) return v;
  // "$350,000" and similar formatted numbers.
  std::string cleaned;
  for (char ch : cell) {
    if (ch != '$' && ch != ',' && ch != ' ') cleaned.push_back(ch);
  }
  auto [q, ec2] = std::from_chars(cleaned.data(), cleaned.data() + cleaned.size(), v);
  if (ec2 == std::errc() && q == cleaned.data() + cleaned.size() && std::isfinite(v) && !cleaned.empty()) return v;
  return kNaN;
}

}  // namespace

std::string_view column_kind_name(ColumnKind kind) {
  switch (kind) {
    case ColumnKind::kNumeric: return "numeric";
    case ColumnKind::kCategorical: return "categorical";
    case ColumnKind::kBoolean: return "boolean";
    case ColumnKind::kDate: return "date";
    case ColumnKind::kLongitude: return "longitude";
    case ColumnKind::kLatitude: return "latitude";
  }
  return "numeric";
}

bool is_number_kind(ColumnKind kind) {
  return kind == ColumnKind::kNumeric || kind == ColumnKind::kLongitude || kind == ColumnKind::kLatitude;
}

bool parse_column_kind(std::string_view name, ColumnKind* kind) {
  for (ColumnKind k : {ColumnKind::kNumeric, ColumnKind::kCategorical, ColumnKind::kBoolean, ColumnKind::kDate,
                       ColumnKind::kLongitude, ColumnKind::kLatitude}) {
    if (column_kind_name(k) == name) return *kind = k, true;
  }
  return false;
}

bool is_missing_cell(std::string_view cell) {
  cell = trim(cell);
  return cell.empty() || iequals(cell, "NA") || iequals(cell, "N/A") || iequals(cell, "NaN") ||
         iequals(cell, "null");
}

std::vector<std::string> name_tokens(std::string_view name) {
  std::vector<std::string> tokens;
  std::string current;
  auto flush = [&] {
    if (!current.empty()) tokens.push_back(std::move(current));
    current.clear();
  };
  for (std::size_t i = 0; i < name.size(); ++i) {
    const unsigned char ch = static_cast<unsigned char>(name[i]);
    if (!std::isalnum(ch)) {
      flush();
      continue;
    }
    // camelCase boundary: a capital after a lower-case letter or digit.
    if (std::isupper(ch) && i > 0 && (std::islower(static_cast<unsigned char>(name[i - 1])))) flush();
    current.push_back(static_cast<char>(std::tolower(ch)));
  }
  flush();
  return tokens;
}

bool parse_calendar_date(std::string_view cell, int* year, int* month, int* day) {
  cell = trim(cell);
  if (cell.size() < 8) return false;
  int parts[3] = {0, 0, 0};
  std::size_t pos = 0;
  char sep = 0;
  for (int k = 0; k < 3; ++k) {
    const char* begin = cell.data() + pos;
    auto [p, ec] = std::from_chars(begin, cell.data() + cell.size(), parts[k]);
    if (ec != std::errc() || p == begin) return false;
    pos = static_cast<std::size_t>(p - cell.data());
    if (k < 2) {
      if (pos >= cell.size() || (cell[pos] != '-' && cell[pos] != '/')) return false;
      if (k == 0) sep = cell[pos];
      if (cell[pos] != sep) return false;
      ++pos;
    }
  }
  // Anything after the date must be a time ("T..." or " ...").
  if (pos < cell.size() && cell[pos] != 'T' && cell[pos] != ' ') return false;
  int y = 0, m = 0, d = 0;
  if (parts[0] >= 1000) {
    y = parts[0], m = parts[1], d = parts[2];
  } else if (parts[2] >= 1000) {
    y = parts[2], m = parts[0], d = parts[1];  // US order: MM/DD/YYYY
  } else {
    return false;
  }
  if (m < 1 || m > 12 || d < 1 || d > 31 || y < 1800 || y > 2200) return false;
  *year = y, *month = m, *day = d;
  return true;
}

bool parse_date_cell(std::string_view cell, double* year) {
  int y = 0, m = 0, d = 0;
  if (!parse_calendar_date(cell, &y, &m, &d)) return false;
  *year = y + (m - 1) / 12.0 + (d - 1) / 365.0;
  return true;
}

Schema infer_schema(const SalesTable& table, int skip) {
  Schema schema;
  const std::size_t n = table.rows.size();
  for (std::size_t c = 0; c < table.header.size(); ++c) {
    if (static_cast<int>(c) == skip) continue;
    const std::string& name = table.header[c];
    const auto tokens = name_tokens(name);
    ColumnStats s = column_stats(table, c);
    if (s.present == 0) {
      schema.ignored.push_back({name, "all missing"});
      continue;
    }
    const std::size_t distinct = s.distinct.size();
    const bool mostly_numeric = s.numeric >= 0.95 * s.present;
    // Unique-per-row values carry no price signal that generalises.
    const bool unique_per_row = distinct >= 0.98 * s.present && s.present >= 10;
    if (is_id_name(tokens) && (unique_per_row || !mostly_numeric)) {
      schema.ignored.push_back({name, "identifier"});
      continue;
    }
    if (distinct == 1) {
      schema.ignored.push_back({name, "constant"});
      continue;
    }
    if (mostly_numeric && !is_code_name(tokens)) {
      ColumnKind kind = ColumnKind::kNumeric;
      if (has_token(tokens, {"longitude", "lon", "lng", "long"}) && s.min >= -180 && s.max <= 180) {
        kind = ColumnKind::kLongitude;
      } else if (has_token(tokens, {"latitude", "lat"}) && s.min >= -90 && s.max <= 90) {
        kind = ColumnKind::kLatitude;
      }
      schema.columns.push_back({name, kind, {}, {}});
      continue;
    }
    if (s.boolean >= 0.95 * s.present && distinct <= 2) {
      schema.columns.push_back({name, ColumnKind::kBoolean, {}, {}});
      continue;
    }
    if (s.dates >= 0.95 * s.present) {
      schema.columns.push_back({name, ColumnKind::kDate, {}, {}});
      continue;
    }
    if (unique_per_row || (distinct > 0.5 * static_cast<double>(n) && distinct > 100)) {
      schema.ignored.push_back({name, "free text or identifier"});
      continue;
    }
    schema.columns.push_back(categorical_column(table, c, name));
  }
  return schema;
}

float encode_cell(const ColumnSchema& column, std::string_view cell) {
  cell = trim(cell);
  if (is_missing_cell(cell)) return kNaN;
  switch (column.kind) {
    case ColumnKind::kCategorical: {
      auto it = column.level_index.find(cell);
      return it == column.level_index.end() ? kNaN : static_cast<float>(it->second);
    }
    case ColumnKind::kBoolean: {
      float b = 0;
      if (parse_boolean_cell(cell, &b)) return b;
      double v = 0;
      auto [p, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), v);
      return ec == std::errc() && p == cell.data() + cell.size() ? static_cast<float>(v != 0) : kNaN;
    }
    case ColumnKind::kDate: {
      double y = 0;
      return parse_date_cell(cell, &y) ? static_cast<float>(y) : kNaN;
    }
    default: return static_cast<float>(parse_present_number(cell));
  }
}

double parse_number_cell(std::string_view cell) {
  cell = trim(cell);
  return is_missing_cell(cell) ? kNaN : parse_present_number(cell);
}

Result<SalesTable> parse_sales_csv(std::string text, std::string name) {
  auto reader = CsvReader::from_string(std::move(text), name);
  if (!reader) return reader.status();
  SalesTable table;
  table.name = name;
  table.header = reader->header();
  for (auto& h : table.header) h = std::string(trim(h));
  std::vector<std::string_view> fields;
  Status error;
  while (reader->next(fields, &error)) {
    if (!error.is_ok()) return invalid_argument(name + " line " + std::to_string(reader->line()) + ": " + error.message());
    std::vector<std::string> row(table.header.size());
    for (std::size_t i = 0; i < fields.size() && i < row.size(); ++i) row[i] = std::string(fields[i]);
    table.rows.push_back(std::move(row));
    table.lines.push_back(reader->line());
  }
  if (table.rows.empty()) return invalid_argument(name + " has no data rows");
  return table;
}

Result<SalesTable> read_sales_csv(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("cannot read " + path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return parse_sales_csv(std::move(text), path);
}

}  // namespace reai::property
