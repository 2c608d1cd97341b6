// Schema inference and raw encoding of sales tables (private to property/).
#pragma once

#include <cstddef>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "property/property.h"

namespace reai::property {

enum class ColumnKind { kNumeric, kCategorical, kBoolean, kDate, kLongitude, kLatitude };

std::string_view column_kind_name(ColumnKind kind);
bool parse_column_kind(std::string_view name, ColumnKind* kind);

// Heterogeneous lookup so a string_view cell finds its level without a copy.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using LevelIndex = std::unordered_map<std::string, int, StringHash, std::equal_to<>>;

struct ColumnSchema {
  std::string name;
  ColumnKind kind = ColumnKind::kNumeric;
  std::vector<std::string> levels;  // categorical: level id -> text
  LevelIndex level_index;           // categorical: text -> level id
  // Numeric and coordinate columns: the smallest and largest value of the
  // training sales (set by the AVM's training; -inf/+inf: not known, as in
  // a model saved before ranges were kept, or a column of another kind).
  double min = -std::numeric_limits<double>::infinity();
  double max = std::numeric_limits<double>::infinity();
  bool has_range() const { return min <= max && min > -std::numeric_limits<double>::infinity(); }
};

// True for the kinds whose cells are plain numbers (numeric, longitude,
// latitude): those whose training range is kept.
bool is_number_kind(ColumnKind kind);

// A column of the sales file the schema leaves out: no price signal that
// generalises.
struct IgnoredColumn {
  std::string name;
  std::string reason;  // "constant", "identifier", ...; empty when not known (a loaded model)
};

struct Schema {
  std::vector<ColumnSchema> columns;
  std::vector<IgnoredColumn> ignored;  // in file order
};

// True for "", NA, N/A, NaN, null (any case): the spellings of a missing cell.
bool is_missing_cell(std::string_view cell);
// Lower-case words of a column name: "Year_Remod_Add" -> {year, remod, add},
// "SqFtLiving" -> {sq, ft, living}.
std::vector<std::string> name_tokens(std::string_view name);
// "2014-05-02", "2014/05/02", "05/02/2014" (with optional time) -> decimal year.
bool parse_date_cell(std::string_view cell, double* year);
// The same cells as calendar parts (2014, 5, 2); false where parse_date_cell is.
bool parse_calendar_date(std::string_view cell, int* year, int* month, int* day);

// Infers a schema from `table`, skipping column `skip` (the target; -1 none).
// Never fails: unusable columns are listed in `ignored`.
Schema infer_schema(const SalesTable& table, int skip);

// A number cell ("1500", "1.5e3", "$350,000") as a double; NaN when missing
// or not a finite number.
double parse_number_cell(std::string_view cell);

// Encodes one cell of `column` as a float: numbers as is, categorical as level
// id, boolean as 0/1, dates as decimal years; NaN when missing, unparsable or
// an unseen level.
float encode_cell(const ColumnSchema& column, std::string_view cell);

}  // namespace reai::property
