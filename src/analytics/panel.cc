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

Result<MonthlyPanel> read_panel(CsvReader csv, const PanelSpec& spec) {
  if (spec.time_columns.empty() || spec.time_columns.size() > 2) {
    return invalid_argument("--time takes year,month columns or one date column");
  }
  if (spec.metrics.empty()) return invalid_argument("no metric columns given");
  auto series_col = csv.require_column(spec.series_column);
  if (!series_col) return series_col.status();
  std::vector<std::size_t> time_cols, metric_cols;
  for (const auto& name : spec.time_columns) {
    auto col = csv.require_column(name);
    if (!col) return col.status();
    time_cols.push_back(*col);
  }
  std::vector<std::string> columns = spec.metrics;
  columns.insert(columns.end(), spec.covariates.begin(), spec.covariates.end());
  for (const auto& name : columns) {
    auto col = csv.require_column(name);
    if (!col) return col.status();
    metric_cols.push_back(*col);
  }
  std::size_t width = *series_col;
  for (auto c : time_cols) width = std::max(width, c);
  for (auto c : metric_cols) width = std::max(width, c);
  // Candidate covariates: every other column, until a value is not a number.
  std::vector<std::size_t> candidate_cols;
  std::vector<bool> numeric;
  if (spec.auto_covariates) {
    for (std::size_t c = 0; c < csv.header().size(); ++c) {
      const bool taken = c == *series_col || std::find(time_cols.begin(), time_cols.end(), c) != time_cols.end() ||
                         std::find(metric_cols.begin(), metric_cols.end(), c) != metric_cols.end();
      if (!taken) candidate_cols.push_back(c);
    }
    numeric.assign(candidate_cols.size(), true);
  }

  std::map<std::string, std::vector<RawRow>, std::less<>> rows_by_series;
  std::vector<std::string_view> fields;
  Status error;
  while (csv.next(fields, &error)) {
    if (!error.is_ok()) return invalid_argument(at(csv) + ": " + error.message());
    if (fields.size() <= width) {
      return invalid_argument(at(csv) + ": " + std::to_string(fields.size()) + " fields, expected at least " +
                              std::to_string(width + 1));
    }
    std::string_view name = fields[*series_col];
    if (name.empty()) return invalid_argument(at(csv) + ": empty " + spec.series_column);
    RawRow row;
    if (time_cols.size() == 2) {
      auto year = parse_int(fields[time_cols[0]]);
      auto month = parse_int(fields[time_cols[1]]);
      if (!year || *year < 0 || *year > 9999) {
        return invalid_argument(at(csv) + ": unparsable year '" + std::string(fields[time_cols[0]]) + "' in column " +
                                spec.time_columns[0]);
      }
      if (!month || *month < 1 || *month > 12) {
        return invalid_argument(at(csv) + ": unparsable month '" + std::string(fields[time_cols[1]]) +
                                "' in column " + spec.time_columns[1]);
      }
      row.month = month_index(*year, *month);
    } else {
      auto month = parse_date_month(fields[time_cols[0]]);
      if (!month) {
        return invalid_argument(at(csv) + ": unparsable date '" + std::string(fields[time_cols[0]]) +
                                "' in column " + spec.time_columns[0] + " (use YYYY-MM or a decimal year)");
      }
      row.month = *month;
    }
    for (std::size_t m = 0; m < metric_cols.size(); ++m) {
      bool ok = true;
      auto value = parse_optional_double(fields[metric_cols[m]], &ok);
      if (!ok || (value && !std::isfinite(*value))) {
        return invalid_argument(at(csv) + ": unparsable value '" + std::string(fields[metric_cols[m]]) +
                                "' in column " + columns[m]);
      }
      row.values.push_back(value ? *value : kMissing);
    }
    for (std::size_t c = 0; c < candidate_cols.size(); ++c) {
      bool ok = true;
      std::optional<double> value;
      if (numeric[c] && candidate_cols[c] < fields.size()) value = parse_optional_double(fields[candidate_cols[c]], &ok);
      if (!ok || (value && !std::isfinite(*value))) numeric[c] = false;
      row.values.push_back(numeric[c] && value ? *value : kMissing);
    }
    auto it = rows_by_series.find(name);
    if (it == rows_by_series.end()) it = rows_by_series.emplace(std::string(name), std::vector<RawRow>{}).first;
    it->second.push_back(std::move(row));
  }
  if (rows_by_series.empty()) return invalid_argument(csv.path() + ": no data rows");

  // Of the numeric candidates keep those that differ between series in some
  // month: a column that is a function of the month alone (a decimal date)
  // says nothing the calendar does not.
  std::vector<std::size_t> kept(columns.size());
  for (std::size_t c = 0; c < columns.size(); ++c) kept[c] = c;
  std::vector<std::string> covariates = spec.covariates;
  for (std::size_t c = 0; c < candidate_cols.size(); ++c) {
    if (!numeric[c]) continue;
    const std::size_t index = columns.size() + c;
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
    if (!varies) continue;
    kept.push_back(index);
    covariates.push_back(csv.header()[candidate_cols[c]]);
  }

  MonthlyPanel panel;
  panel.metrics = spec.metrics;
  panel.covariates = covariates;
  panel.first_month = std::numeric_limits<int>::max();
  panel.last_month = std::numeric_limits<int>::min();
  for (const auto& [name, rows] : rows_by_series) {
    for (const auto& r : rows) {
      panel.first_month = std::min(panel.first_month, r.month);
      panel.last_month = std::max(panel.last_month, r.month);
    }
  }
  for (auto& [name, rows] : rows_by_series) {
    PanelSeries series;
    series.name = name;
    series.start = std::numeric_limits<int>::max();
    for (const auto& r : rows) series.start = std::min(series.start, r.month);
    const std::size_t length = static_cast<std::size_t>(panel.last_month - series.start + 1);
    series.values.assign(kept.size(), std::vector<double>(length, kMissing));
    std::vector<bool> seen(length, false);
    for (const auto& r : rows) {
      const auto i = static_cast<std::size_t>(r.month - series.start);
      if (seen[i]) {
        return invalid_argument(csv.path() + ": series '" + name + "' has two rows for " +
                                std::to_string(year_of(r.month)) + "-" + std::to_string(month_of(r.month)));
      }
      seen[i] = true;
      for (std::size_t k = 0; k < kept.size(); ++k) series.values[k][i] = r.values[kept[k]];
    }
    panel.series.push_back(std::move(series));
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

}  // namespace reai::analytics
