// Property valuation (AVM): a gradient-boosted model of log sale price learned
// from any sales CSV, with conformal 80% and 90% intervals.
//
// The schema (numeric, categorical, boolean, date and coordinate columns) is
// inferred from the training file; features a valuation expert would add
// (total living area, age at sale, remodel age, bathrooms, quality ordinals,
// neighbourhood target encoding, nearest-comparable prices) are derived from
// column types and name patterns, so a different market's file with different
// columns works too. Location encodings are computed out-of-fold during
// training: a row's own price never enters its own features.
#pragma once

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace reai::property {

// A CSV held as text cells: header plus rows (each row has header().size()
// cells; short rows are padded with empty cells).
struct SalesTable {
  std::string name;                           // file name, for messages
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  std::vector<std::size_t> lines;             // 1-based file line of each row
};

// Reads a CSV file. NotFound when the file cannot be read, InvalidArgument
// when it is malformed (unterminated quote) or has a header but no data rows.
Result<SalesTable> read_sales_csv(const std::string& path);
// Same from text in memory (`name` is used in messages).
Result<SalesTable> parse_sales_csv(std::string text, std::string name);

struct TrainOptions {
  int folds = 5;             // inner folds: out-of-fold encodings, tuning, conformal scores
  // The hyper-parameter search always evaluates the first candidate and adds
  // the next only while the elapsed time stays under 3/4 of this budget.
  double time_budget_seconds = 15;
  int nthread = 0;           // worker threads (inner folds in parallel), 0: min(2, cores)
  int seed = 1;
  bool progress = false;     // progress lines on stderr
};

// One valued row. All prices in the target's units.
struct Valuation {
  double predicted = 0;
  double lower80 = 0, upper80 = 0;
  double lower90 = 0, upper90 = 0;
  // How many of the row's attributes lie outside the range of their column
  // in the training sales (ValuationModel::outside_training_range() names
  // them). The trees value such a home like the nearest one seen (a 40,000
  // sq ft home like the largest sale), so the estimate is an extrapolation.
  // The sale-time column (Year_Sold) never counts: every valuation is later
  // than the training sales (ValuationModel::market_as_of() says how much).
  // Always 0 for a model saved before ranges were kept.
  int outside_range = 0;
  // How many of the row's categorical attributes hold a value no training
  // sale had (ValuationModel::unseen_categories() names them). The model
  // values such a cell as missing, i.e. like an average home of the other
  // attributes, so the user should know ('Waterfront' in a Zone column
  // trained on Downtown/Suburb/Rural is not valued as waterfront).
  int unseen_categories = 0;
};

// One attribute of a valued row beyond what the training sales had.
struct OutsideTrainingRange {
  std::string attribute;   // the column's name
  double value = 0;        // the row's value
  double min = 0, max = 0; // the range of the column in the training sales
};

// One categorical attribute of a valued row whose value no training sale had.
struct UnseenCategory {
  std::string attribute;  // the column's name
  std::string value;      // the row's cell, trimmed
  // The training level equal to `value` but for letter case ("Downtown" for
  // "downtown"), a likely typo; empty when there is none.
  std::string differs_in_case_from;
};

struct TrainSummary {
  std::size_t rows = 0;           // training rows used (rows with a target)
  std::size_t skipped_rows = 0;   // rows with a missing target
  std::size_t columns = 0;        // schema columns used as inputs
  std::size_t features = 0;       // model features after feature engineering
  std::string params;             // chosen hyper-parameters, for people
  int rounds = 0;                 // boosting rounds of the final model
  double oof_rmsle = 0;           // inner out-of-fold RMSE of log price
  double seconds = 0;
};

class ValuationModel {
 public:
  ValuationModel(ValuationModel&&) noexcept;
  ValuationModel& operator=(ValuationModel&&) noexcept;
  ~ValuationModel();

  // Trains on every row of `table` with a target. InvalidArgument when the
  // target column is missing, a target cell is present but not a positive
  // number, fewer than 20 rows have a target, or no usable input column
  // remains. Internal on XGBoost failures. Not thread-safe with respect to
  // `options.nthread` (XGBoost uses that many threads).
  static Result<ValuationModel> train(const SalesTable& table, const std::string& target,
                                      const TrainOptions& options, TrainSummary* summary = nullptr);
  // Loads a model directory written by save(). NotFound when missing,
  // InvalidArgument when its files do not parse.
  static Result<ValuationModel> load(const std::string& dir);
  // Writes model.json (schema, encodings, calibration) and the two XGBoost
  // boosters into `dir` (created if needed). Internal on write failures.
  Status save(const std::string& dir) const;

  // Values every row of `table` (same columns as training, any order; the
  // target column, if present, and unknown columns are ignored; missing
  // columns and cells count as missing values; unseen categories as
  // missing, i.e. "other", and counted in Valuation::unseen_categories).
  // InvalidArgument when too little of the schema
  // remains: the present columns carry < 50% of the model's importance mass
  // (mean |path contribution| on training rows, shared among the columns a
  // feature reads) or are < 50% of the schema's columns. Thread-safe.
  Result<std::vector<Valuation>> predict(const SalesTable& table) const;

  // Hot path: bind a header once, then value rows of cells in that layout.
  // bind() fails like predict() when too little of the schema remains.
  class RowBinding;
  Result<RowBinding> bind(std::span<const std::string> header) const;
  // `cells` must have as many entries as the bound header. No allocation
  // beyond a small per-thread scratch buffer. Thread-safe.
  Valuation value(const RowBinding& binding, std::span<const std::string_view> cells) const;

  // The target column name the model was trained on.
  const std::string& target() const;
  // The names of `header` that were never a column of the training file
  // (neither a schema column, nor the target, nor a column the schema left
  // out), in header order. The API routes refuse them: a misspelt attribute
  // would otherwise be valued as missing without a word.
  std::vector<std::string> unknown_columns(std::span<const std::string> header) const;
  // The names of `header` that were columns of the training file the model
  // reads nothing from, in header order: the target and the columns the
  // schema left out (constant, such as a sale year when every training sale
  // is of one year; an identifier; free text; all missing). The API routes
  // accept and ignore them: a client sending the training file's columns
  // is not refused. Only the target for a model saved before the left-out
  // columns were kept (they stay unknown_columns()).
  std::vector<std::string> ignored_columns(std::span<const std::string> header) const;
  // OK, or InvalidArgument naming the first cell of `table` in a numeric,
  // boolean, date or coordinate column that is not missing yet cannot be
  // read as one ("attribute 'Gr_Liv_Area' must be numeric, not 'big'"). The
  // API routes refuse it for the same reason: it would be valued as missing.
  // (An unseen category is not an error: the model has a place for it.)
  // Also InvalidArgument for a negative value in a numeric or coordinate
  // column that no training sale had negative ("attribute 'Gr_Liv_Area'
  // must not be negative: every training sale had it ≥ 0 ...") when the
  // model keeps training ranges: a sign error, not a home.
  Status check_cells(const SalesTable& table) const;
  // False for a model saved before training ranges were kept (format
  // reai-avm-1): it values out-of-range attributes without a word.
  bool has_training_ranges() const;
  // The attributes of row `row` of `table` (a valid index) outside the
  // range of their numeric or coordinate column in the training sales, in
  // schema order; the same rows value() counts in Valuation::outside_range.
  // Never the sale-time column (a sale year or date: Year_Sold, a
  // "sold"/"sale"/"closed" date): a valuation is always for a later time
  // than its training sales, so its year is always beyond theirs.
  // Empty when none is, or without training ranges.
  std::vector<OutsideTrainingRange> outside_training_range(const SalesTable& table, std::size_t row) const;
  // The categorical attributes of row `row` of `table` (a valid index) that
  // are present but hold a value no training sale had, in schema order; the
  // same cells value() counts in Valuation::unseen_categories.
  std::vector<UnseenCategory> unseen_categories(const SalesTable& table, std::size_t row) const;
  // The market the model reflects: the latest sale time of its training
  // sales in the sale-time column. A sale year gives "2010", with a
  // month-sold column beside it (Ames Mo_Sold) the latest month of that
  // year, "2010-07"; a sale date gives the latest date, "2010-07-15".
  // Values are at that market's prices. Empty when the training sales had
  // no sale-time column (or none readable), or for a model saved before it
  // was kept.
  const std::string& market_as_of() const;
  // Share of importance mass and of schema columns present in `header`.
  void schema_coverage(std::span<const std::string> header, double* importance_share,
                       double* column_share) const;
  // The model's input columns absent from `header`, the most important
  // first (ties in schema order). Empty when every one is present.
  std::vector<std::string> missing_columns(std::span<const std::string> header) const;
  // Human-readable schema: one "name: kind" line per column.
  std::string describe_schema() const;

 private:
  struct Impl;
  explicit ValuationModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// "Overall_Qual, Gr_Liv_Area, ... (23 missing, the first 10 named)": the
// first `max_named` of `missing` and how many there are; "" when none is.
std::string name_missing_columns(const std::vector<std::string>& missing, std::size_t max_named = 10);

class ValuationModel::RowBinding {
 public:
  // For each schema column, the index of its cell in the bound header or -1.
  std::vector<int> cell_of_column;
  std::size_t width = 0;
};

// One row's out-of-fold valuation in cross-validation.
struct CvPrediction {
  std::size_t line = 0;  // 1-based line of the row in the sales file
  int fold = 0;          // outer fold that held the row out
  double actual = 0;     // the row's target
  Valuation value;       // from the model trained without the row's fold
};

// Cross-validated accuracy of the whole training pipeline (EVALUATION.md
// "Valuation"). Relative widths are (upper - lower) / predicted.
struct CvReport {
  std::size_t rows = 0;
  int folds = 0;
  double mape = 0, median_ape = 0, ppe10 = 0, rmsle = 0;
  double coverage80 = 0, coverage90 = 0;
  double width80 = 0, width90 = 0;
  double seconds = 0;
  // Every row with a target, in file order: which sales the model misses
  // and by how much (a few abnormal sales can dominate RMSLE).
  std::vector<CvPrediction> predictions;
};

// K-fold cross-validation with folds drawn from `seed`; each fold runs the
// full train() on the other folds. Fails like train(); InvalidArgument when
// folds < 2 or exceeds the number of rows.
Result<CvReport> cross_validate(const SalesTable& table, const std::string& target, int folds,
                                int seed, const TrainOptions& options);

}  // namespace reai::property
