// `reai value train|predict|cv` (shared/EVALUATION.md "Valuation").
#include "cli/value_commands.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/cli.h"
#include "cli/valuation_report.h"
#include "property/property.h"

namespace reai::cli {
namespace {

struct ValueArgs {
  std::string data;
  std::string target;
  std::string out;
  std::string model;
  std::string predictions;  // cv: per-row out-of-fold values (empty: none)
  int folds = 5;
  int seed = 1;
  int threads = 0;
  double budget = 15;
};

property::TrainOptions train_options(const ValueArgs& args) {
  property::TrainOptions options;
  options.seed = args.seed;
  options.nthread = args.threads;
  options.time_budget_seconds = args.budget;
  options.progress = true;
  return options;
}

int run_train(const ValueArgs& args) {
  std::cerr << "reai value train: reading " << args.data << "\n";
  auto table = property::read_sales_csv(args.data);
  if (!table) return report_failure(table.status());
  property::TrainSummary summary;
  auto model = property::ValuationModel::train(*table, args.target, train_options(args), &summary);
  if (!model) return report_failure(model.status());
  if (Status s = model->save(args.out); !s.is_ok()) return report_failure(s);
  std::printf("valuation model written to %s in %.1f s: %zu rows (%zu without a target skipped), %zu columns, "
              "%zu features, %d rounds, %s, inner-CV RMSLE %.4f\n",
              args.out.c_str(), summary.seconds, summary.rows, summary.skipped_rows, summary.columns, summary.features,
              summary.rounds, summary.params.c_str(), summary.oof_rmsle);
  report_market_as_of("reai value train", *model);
  return kExitOk;
}

// OK, or check_cells()'s refusal of `table` (a number, boolean, date or
// coordinate cell that does not read as one, or a sign error) with the file
// line of the first offending row: valued as missing it would give a wrong
// value without a word, and the API refuses the same cell.
Status check_listing_cells(const property::ValuationModel& model, const property::SalesTable& table) {
  const Status whole = model.check_cells(table);
  if (whole.is_ok()) return whole;
  property::SalesTable one{table.name, table.header, {}, {}};
  for (std::size_t i = 0; i < table.rows.size(); ++i) {
    one.rows.assign(1, table.rows[i]);
    const Status row = model.check_cells(one);
    if (!row.is_ok()) {
      const std::size_t line = i < table.lines.size() ? table.lines[i] : i + 2;
      return invalid_argument(table.name + " line " + std::to_string(line) + ": " + row.message());
    }
  }
  return invalid_argument(table.name + ": " + whole.message());
}

int run_predict(const ValueArgs& args) {
  auto model = property::ValuationModel::load(args.model);
  if (!model) return report_failure(model.status());
  auto table = property::read_sales_csv(args.data);
  if (!table) return report_failure(table.status());
  double importance = 0, columns = 0;
  model->schema_coverage(table->header, &importance, &columns);
  std::fprintf(stderr, "reai value predict: %zu rows; input has %.0f%% of the model's columns (%.0f%% of importance)\n",
               table->rows.size(), 100 * columns, 100 * importance);
  // Named, so the user can add them back; the values treat them as missing.
  if (const auto missing = model->missing_columns(table->header); !missing.empty()) {
    std::cerr << "reai value predict: warning: columns the model uses are missing, most important first (valued as "
                 "if unknown): "
              << property::name_missing_columns(missing) << "\n";
  }
  if (Status cells = check_listing_cells(*model, *table); !cells.is_ok()) return report_failure(cells);
  auto values = model->predict(*table);
  if (!values) return report_failure(values.status());
  std::ofstream out(args.out);
  if (!out) return report_failure(invalid_argument("cannot write " + args.out));
  out << "row,predicted,lower80,upper80,lower90,upper90\n";
  char line[256];
  for (std::size_t i = 0; i < values->size(); ++i) {
    const auto& v = (*values)[i];
    std::snprintf(line, sizeof line, "%zu,%.2f,%.2f,%.2f,%.2f,%.2f\n", i + 1, v.predicted, v.lower80, v.upper80,
                  v.lower90, v.upper90);
    out << line;
  }
  out.close();
  if (!out) return report_failure(internal_error("failed writing " + args.out));
  std::cerr << "reai value predict: wrote " << values->size() << " values to " << args.out << "\n";
  report_outside_training_range("reai value predict", *model, *values);
  report_unseen_categories("reai value predict", *model, *table, *values);
  report_market_as_of("reai value predict", *model);
  return kExitOk;
}

// line,fold,actual,predicted,intervals,log_error (log predicted - log actual).
Status write_cv_predictions(const std::string& path, const std::vector<property::CvPrediction>& rows) {
  std::ofstream out(path);
  if (!out) return invalid_argument("cannot write " + path);
  out << "line,fold,actual,predicted,lower80,upper80,lower90,upper90,log_error\n";
  char line[320];
  for (const auto& r : rows) {
    const auto& v = r.value;
    std::snprintf(line, sizeof line, "%zu,%d,%.2f,%.2f,%.2f,%.2f,%.2f,%.2f,%.5f\n", r.line, r.fold + 1, r.actual,
                  v.predicted, v.lower80, v.upper80, v.lower90, v.upper90, std::log(v.predicted / r.actual));
    out << line;
  }
  out.close();
  if (!out) return internal_error("failed writing " + path);
  return Status::ok();
}

int run_cv(const ValueArgs& args) {
  auto table = property::read_sales_csv(args.data);
  if (!table) return report_failure(table.status());
  std::cerr << "reai value cv: " << table->rows.size() << " rows, " << args.folds << " folds, seed " << args.seed << "\n";
  auto report = property::cross_validate(*table, args.target, args.folds, args.seed, train_options(args));
  if (!report) return report_failure(report.status());
  std::printf("rows %zu, folds %d, %.1f s\n", report->rows, report->folds, report->seconds);
  std::printf("MAPE        %.4f\n", report->mape);
  std::printf("median APE  %.4f\n", report->median_ape);
  std::printf("PPE10       %.4f\n", report->ppe10);
  std::printf("RMSLE       %.4f\n", report->rmsle);
  std::printf("coverage80  %.4f  mean relative width %.4f\n", report->coverage80, report->width80);
  std::printf("coverage90  %.4f  mean relative width %.4f\n", report->coverage90, report->width90);
  if (!args.predictions.empty()) {
    Status written = write_cv_predictions(args.predictions, report->predictions);
    if (!written.is_ok()) return report_failure(written);
    std::cerr << "reai value cv: wrote " << report->predictions.size() << " out-of-fold values to " << args.predictions
              << "\n";
  }
  return kExitOk;
}

}  // namespace

void add_value_command(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("value", "Automated valuation model: train, predict, cross-validate");
  cmd->require_subcommand(1);
  auto args = std::make_shared<ValueArgs>();

  auto* train = cmd->add_subcommand("train", "Train a valuation model on a sales CSV (log price, conformal intervals)");
  train->add_option("--data", args->data, "Sales CSV with a header row")->required();
  train->add_option("--target", args->target, "Sale price column")->required();
  train->add_option("--out", args->out, "Model directory to write")->required();
  train->add_option("--seed", args->seed, "Random seed")->capture_default_str();
  train->add_option("--threads", args->threads, "Worker threads (0: min(2, cores))")->capture_default_str();
  train->add_option("--budget", args->budget, "Seconds for the hyper-parameter search")->capture_default_str();
  train->callback([args, exit_code] { *exit_code = run_train(*args); });

  auto* predict = cmd->add_subcommand("predict", "Value listings: row,predicted,lower80,upper80,lower90,upper90");
  predict->add_option("--model", args->model, "Model directory from `reai value train`")->required();
  predict->add_option("--data", args->data, "Listings CSV (same columns as training; target ignored)")->required();
  predict->add_option("--out", args->out, "Output CSV")->required();
  predict->callback([args, exit_code] { *exit_code = run_predict(*args); });

  auto* cv = cmd->add_subcommand("cv", "K-fold cross-validation: MAPE, median APE, PPE10, RMSLE, interval coverage/width");
  cv->add_option("--data", args->data, "Sales CSV with a header row")->required();
  cv->add_option("--target", args->target, "Sale price column")->required();
  cv->add_option("--folds", args->folds, "Number of folds")->capture_default_str();
  cv->add_option("--seed", args->seed, "Random seed for the folds")->capture_default_str();
  cv->add_option("--threads", args->threads, "Worker threads (0: min(2, cores))")->capture_default_str();
  cv->add_option("--budget", args->budget, "Seconds for each fold's hyper-parameter search")->capture_default_str();
  cv->add_option("--predictions", args->predictions,
                 "Also write each row's out-of-fold value to this CSV (line, fold, actual, predicted, intervals, log error)");
  cv->callback([args, exit_code] { *exit_code = run_cv(*args); });
}

}  // namespace reai::cli
