// Reading a monthly panel from CSV.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <optional>

#include "analytics/forecast.h"
#include "core/csv.h"

namespace reai::analytics {
namespace {

constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();

std::optional<int> parse_int(std::string_view text) {
  int value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

// "2013-06", "2013-06-30", "2013/06", or a decimal year + (month - 1) / 12.
std::optional<int> parse_date_month(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  if (text.size() >= 7 && (text[4] == '-' || text[4] == '/')) {
    auto year = parse_int(text.substr(0, 4));
    std::string_view rest = text.substr(5);
    std::size_t end = rest.find_first_of("-/T ");
    auto month = parse_int(rest.substr(0, end));
    if (!year || !month || *month < 1 || *month > 12) return std::nullopt;
    return month_index(*year, *month);
  }
  bool ok = true;
  auto value = parse_optional_double(text, &ok);
  if (!ok || !value || *value < 0 || *value > 1e5) return std::nullopt;
  const double months = *value * 12.0;
  const long rounded = std::lround(months);
  if (std::abs(months - static_cast<double>(rounded)) > 0.01) return std::nullopt;
  return static_cast<int>(rounded);
}

struct RawRow {
  int month;
  std::vector<double> values;
};

std::string at(const CsvReader& csv) { return csv.path() + " line " + std::to_string(csv.line()); }

// Where the panel's columns are in the CSV.
struct PanelColumns {
  std::size_t series = 0;
  std::vector<std::size_t> time;
  std::vector<std::string> names;      // the metrics, then the named covariates
  std::vector<std::size_t> values;     // of names
  std::size_t width = 0;               // the largest of these indices
  std::vector<std::size_t> candidates;  // every other column (with auto_covariates)
};

// Candidate covariates: every column the spec does not name.
std::vector<std::size_t> candidate_columns(const CsvReader& csv, const PanelColumns& cols) {
  std::vector<std::size_t> candidates;
  for (std::size_t c = 0; c < csv.header().size(); ++c) {
    const bool taken = c == cols.series || std::find(cols.time.begin(), cols.time.end(), c) != cols.time.end() ||
                       std::find(cols.values.begin(), cols.values.end(), c) != cols.values.end();
    if (!taken) candidates.push_back(c);
  }
  return candidates;
}

Result<PanelColumns> panel_columns(const CsvReader& csv, const PanelSpec& spec) {
  if (spec.time_columns.empty() || spec.time_columns.size() > 2) {
    return invalid_argument("--time takes year,month columns or one date column");
  }
  if (spec.metrics.empty()) return invalid_argument("no metric columns given");
  PanelColumns cols;
  auto series_col = csv.require_column(spec.series_column);
  if (!series_col) return series_col.status();
  cols.series = *series_col;
  for (const auto& name : spec.time_columns) {
    auto col = csv.require_column(name);
    if (!col) return col.status();
    cols.time.push_back(*col);
  }
  cols.names = spec.metrics;
  cols.names.insert(cols.names.end(), spec.covariates.begin(), spec.covariates.end());
  for (const auto& name : cols.names) {
    auto col = csv.require_column(name);
    if (!col) return col.status();
    cols.values.push_back(*col);
  }
  cols.width = cols.series;
  for (auto c : cols.time) cols.width = std::max(cols.width, c);
  for (auto c : cols.values) cols.width = std::max(cols.width, c);
  if (spec.auto_covariates) cols.candidates = candidate_columns(csv, cols);
  return cols;
}

// The row's month from its year and month columns or its date column.
Result<int> row_month(const CsvReader& csv, const std::vector<std::string_view>& fields, const PanelColumns& cols,
                      const PanelSpec& spec) {
  if (cols.time.size() == 2) {
    auto year = parse_int(fields[cols.time[0]]);
    auto month = parse_int(fields[cols.time[1]]);
    if (!year || *year < 0 || *year > 9999) {
      return invalid_argument(at(csv) + ": unparsable year '" + std::string(fields[cols.time[0]]) + "' in column " +
                              spec.time_columns[0]);
    }
    if (!month || *month < 1 || *month > 12) {
      return invalid_argument(at(csv) + ": unparsable month '" + std::string(fields[cols.time[1]]) + "' in column " +
                              spec.time_columns[1]);
    }
    return month_index(*year, *month);
  }
  auto month = parse_date_month(fields[cols.time[0]]);
  if (!month) {
    return invalid_argument(at(csv) + ": unparsable date '" + std::string(fields[cols.time[0]]) + "' in column " +
                            spec.time_columns[0] + " (use YYYY-MM or a decimal year)");
  }
  return *month;
}

// The row's metric and named covariate values (NaN when empty).
Status append_named_values(const CsvReader& csv, const std::vector<std::string_view>& fields,
                           const PanelColumns& cols, RawRow& row) {
  for (std::size_t m = 0; m < cols.values.size(); ++m) {
    bool ok = true;
    auto value = parse_optional_double(fields[cols.values[m]], &ok);
    if (!ok || (value && !std::isfinite(*value))) {
      return invalid_argument(at(csv) + ": unparsable value '" + std::string(fields[cols.values[m]]) +
                              "' in column " + cols.names[m]);
    }
    row.values.push_back(value ? *value : kMissing);
  }
  return Status::ok();
}

// The row's candidate covariate values (NaN once a candidate has shown a
// value that is not a number, which rules it out: numeric[c] false).
void append_candidate_values(const std::vector<std::string_view>& fields, const PanelColumns& cols,
                             std::vector<bool>& numeric, RawRow& row) {
  for (std::size_t c = 0; c < cols.candidates.size(); ++c) {
    bool ok = true;
    std::optional<double> value;
    const std::size_t col = cols.candidates[c];
    if (numeric[c] && col < fields.size()) value = parse_optional_double(fields[col], &ok);
    if (!ok || (value && !std::isfinite(*value))) numeric[c] = false;
    row.values.push_back(numeric[c] && value ? *value : kMissing);
  }
}

using RowsBySeries = std::map<std::string, std::vector<RawRow>, std::less<>>;

// Every data row by series, and which candidate covariates stayed numeric.
struct RawPanel {
  RowsBySeries rows_by_series;
  std::vector<bool> numeric;  // [candidate]
};

Result<RawPanel> read_rows(CsvReader& csv, const PanelColumns& cols, const PanelSpec& spec) {
  RawPanel raw;
  raw.numeric.assign(cols.candidates.size(), true);
  std::vector<std::string_view> fields;
  Status error;
  while (csv.next(fields, &error)) {
    if (!error.is_ok()) return invalid_argument(at(csv) + ": " + error.message());
    if (fields.size() <= cols.width) {
      return invalid_argument(at(csv) + ": " + std::to_string(fields.size()) + " fields, expected at least " +
                              std::to_string(cols.width + 1));
    }
    std::string_view name = fields[cols.series];
    if (name.empty()) return invalid_argument(at(csv) + ": empty " + spec.series_column);
    RawRow row;
    auto month = row_month(csv, fields, cols, spec);
    if (!month) return month.status();
    row.month = *month;
    REAI_RETURN_IF_ERROR(append_named_values(csv, fields, cols, row));
    append_candidate_values(fields, cols, raw.numeric, row);
    auto it = raw.rows_by_series.find(name);
    if (it == raw.rows_by_series.end()) it = raw.rows_by_series.emplace(std::string(name), std::vector<RawRow>{}).first;
    it->second.push_back(std::move(row));
  }
  if (raw.rows_by_series.empty()) return invalid_argument(csv.path() + ": no data rows");
  return raw;
}

// Whether value `index` differs between two series in some month.
bool varies_between_series(const RowsBySeries& rows_by_series, std::size_t index) {
  std::map<int, double> first_value;
  bool varies = false;
  for (const auto& [name, rows] : rows_by_series) {
    for (const auto& r : rows) {
      const double v = r.values[index];
      if (std::isnan(v)) continue;
      auto [it, inserted] = first_value.emplace(r.month, v);
      if (!inserted && it->second != v) varies = true;
    }
  }
  return varies;
}

// The panel's value columns (indices into RawRow::values) and covariate names.
struct KeptColumns {
  std::vector<std::size_t> values;
  std::vector<std::string> covariates;
};

// The named columns and, of the numeric candidates, those that differ
// between series in some month: a column that is a function of the month
// alone (a decimal date) says nothing the calendar does not.
KeptColumns kept_columns(const RawPanel& raw, const PanelColumns& cols, const CsvReader& csv,
                         const PanelSpec& spec) {
  KeptColumns kept{std::vector<std::size_t>(cols.names.size()), spec.covariates};
  for (std::size_t c = 0; c < cols.names.size(); ++c) kept.values[c] = c;
  for (std::size_t c = 0; c < cols.candidates.size(); ++c) {
    if (!raw.numeric[c]) continue;
    const std::size_t index = cols.names.size() + c;
    if (!varies_between_series(raw.rows_by_series, index)) continue;
    kept.values.push_back(index);
    kept.covariates.push_back(csv.header()[cols.candidates[c]]);
  }
  return kept;
}

// One series from its rows, from its first month to the panel's last.
Result<PanelSeries> panel_series(const std::string& name, const std::vector<RawRow>& rows, int last_month,
                                 const std::vector<std::size_t>& kept, const std::string& path) {
  PanelSeries series;
  series.name = name;
  series.start = std::numeric_limits<int>::max();
  for (const auto& r : rows) series.start = std::min(series.start, r.month);
  const std::size_t length = static_cast<std::size_t>(last_month - series.start + 1);
  series.values.assign(kept.size(), std::vector<double>(length, kMissing));
  std::vector<bool> seen(length, false);
  for (const auto& r : rows) {
    const auto i = static_cast<std::size_t>(r.month - series.start);
    if (seen[i]) {
      return invalid_argument(path + ": series '" + name + "' has two rows for " + std::to_string(year_of(r.month)) +
                              "-" + std::to_string(month_of(r.month)));
    }
    seen[i] = true;
    for (std::size_t k = 0; k < kept.size(); ++k) series.values[k][i] = r.values[kept[k]];
  }
  return series;
}

Result<MonthlyPanel> read_panel(CsvReader csv, const PanelSpec& spec) {
  auto cols = panel_columns(csv, spec);
  if (!cols) return cols.status();
  auto raw = read_rows(csv, *cols, spec);
  if (!raw) return raw.status();
  KeptColumns kept = kept_columns(*raw, *cols, csv, spec);

  MonthlyPanel panel;
  panel.metrics = spec.metrics;
  panel.covariates = std::move(kept.covariates);
  panel.first_month = std::numeric_limits<int>::max();
  panel.last_month = std::numeric_limits<int>::min();
  for (const auto& [name, rows] : raw->rows_by_series) {
    for (const auto& r : rows) {
      panel.first_month = std::min(panel.first_month, r.month);
      panel.last_month = std::max(panel.last_month, r.month);
    }
  }
  for (const auto& [name, rows] : raw->rows_by_series) {
    auto series = panel_series(name, rows, panel.last_month, kept.values, csv.path());
    if (!series) return series.status();
    panel.series.push_back(std::move(*series));
  }
  return panel;
}

}  // namespace

Result<int> parse_year_month(const std::string& text) {
  auto month = parse_date_month(text);
  if (!month || text.size() < 7) return invalid_argument("bad month '" + text + "' (use YYYY-MM)");
  return *month;
}

Result<MonthlyPanel> read_monthly_panel(const std::string& path, const PanelSpec& spec) {
  auto csv = CsvReader::open(path);
  if (!csv) return csv.status();
  return read_panel(std::move(*csv), spec);
}

Result<MonthlyPanel> parse_monthly_panel(std::string csv_text, const std::string& name, const PanelSpec& spec) {
  auto csv = CsvReader::from_string(std::move(csv_text), name);
  if (!csv) return csv.status();
  return read_panel(std::move(*csv), spec);
}

MonthlyPanel truncate_panel(const MonthlyPanel& panel, int last_month) {
  MonthlyPanel out;
  out.metrics = panel.metrics;
  out.covariates = panel.covariates;
  out.first_month = panel.first_month;
  out.last_month = std::min(last_month, panel.last_month);
  for (const auto& s : panel.series) {
    if (s.start > out.last_month) continue;
    PanelSeries t;
    t.name = s.name;
    t.start = s.start;
    const auto length = static_cast<std::size_t>(out.last_month - s.start + 1);
    for (const auto& v : s.values) t.values.emplace_back(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(length));
    out.series.push_back(std::move(t));
  }
  return out;
}

std::vector<SeriesCoverage> series_coverage(const MonthlyPanel& panel) {
  std::vector<SeriesCoverage> out;
  for (std::size_t s = 0; s < panel.series.size(); ++s) {
    const PanelSeries& series = panel.series[s];
    for (std::size_t m = 0; m < panel.metrics.size() && m < series.values.size(); ++m) {
      SeriesCoverage c{s, m, 0, -1};
      const auto& values = series.values[m];
      for (std::size_t t = 0; t < values.size(); ++t) {
        if (std::isnan(values[t])) continue;
        ++c.observed;
        c.last_observed = series.start + static_cast<int>(t);
      }
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace reai::analytics
