// `reai forecast` / `reai forecast backtest` (shared/EVALUATION.md "Market trends").
#include "cli/forecast_commands.h"

#include <chrono>
#include <filesystem>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "analytics/analytics.h"
#include "cli/cli.h"
#include "cli/valuation_report.h"
#include "core/csv.h"
#include "core/time.h"

namespace reai::cli {
namespace {

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

struct ForecastArgs {
  std::string data, series, time, metrics, out, origins, complete_from, covariates = "auto";
  std::string complete_columns = "metric", points_out;
  int horizon = 3;
  int threads = 2;
  int inner_origins = 18;
  int seed = analytics::ForecastOptions{}.seed;
  bool quiet = false;
  bool references = false;
};

Result<analytics::MonthlyPanel> read_panel(const ForecastArgs& args) {
  analytics::PanelSpec spec{args.series, split(args.time), split(args.metrics), {}, false};
  if (args.covariates == "auto") {
    spec.auto_covariates = true;
  } else if (args.covariates != "none") {
    spec.covariates = split(args.covariates);
  }
  return analytics::read_monthly_panel(args.data, spec);
}

analytics::ForecastOptions forecast_options(const ForecastArgs& args) {
  analytics::ForecastOptions options;
  options.horizon = args.horizon;
  options.nthread = args.threads;
  options.inner_origins = args.inner_origins;
  options.seed = args.seed;
  options.references = args.references;
  if (!args.quiet) options.progress = [](const std::string& line) { std::cerr << "reai forecast: " << line << "\n"; };
  return options;
}

// Series with fewer months of values than this have no seasonal pattern of
// their own.
constexpr int kSeasonOfValues = analytics::kSeasonLength;

// "<what>: A (x); B (y); ..." over at most ten entries, "" when none.
std::string name_some(const std::vector<std::string>& items) {
  std::string out;
  for (std::size_t i = 0; i < items.size() && i < 10; ++i) out += (i ? "; " : ": ") + items[i];
  return out + (items.size() > 10 ? "; ..." : "");
}

// Tells the user on stderr which series' forecasts rest on thin or stale
// data: every series is forecast from the panel's last month, so one whose
// last value is older is forecast further ahead than its h says, one with
// under a season of values has no seasonal pattern of its own, and one with
// none is not forecast at all. Silent when none.
void report_thin_series(const analytics::MonthlyPanel& panel) {
  std::vector<std::string> stale, short_series;
  const auto coverage = analytics::series_coverage(panel);
  char month[16];
  for (const auto& c : coverage) {
    const std::string name = panel.series[c.series].name + " " + panel.metrics[c.metric];
    if (c.last_observed >= 0 && c.last_observed < panel.last_month) {
      std::snprintf(month, sizeof month, "%04d-%02d", analytics::year_of(c.last_observed),
                    analytics::month_of(c.last_observed));
      stale.push_back(name + " (last " + month + ")");
    }
    if (c.observed < kSeasonOfValues) {
      short_series.push_back(name + (c.observed == 0 ? " (none: not forecast)" : " (" + std::to_string(c.observed) + ")"));
    }
  }
  std::snprintf(month, sizeof month, "%04d-%02d", analytics::year_of(panel.last_month), analytics::month_of(panel.last_month));
  if (!stale.empty()) {
    std::cerr << "reai forecast: " << stale.size() << " of " << coverage.size() << " series-metrics end before the origin "
              << month << " (their h counts from the origin, so they are forecast further ahead)" << name_some(stale)
              << "\n";
  }
  if (!short_series.empty()) {
    std::cerr << "reai forecast: " << short_series.size() << " of " << coverage.size() << " series-metrics have fewer than "
              << kSeasonOfValues << " months of values (no seasonal pattern of their own)"
              << name_some(short_series) << "\n";
  }
}

int run_forecast(const ForecastArgs& args) {
  const auto started = std::chrono::steady_clock::now();
  auto panel = read_panel(args);
  if (!panel) return report_failure(panel.status());
  report_thin_series(*panel);
  auto points = analytics::forecast_panel(*panel, forecast_options(args));
  if (!points) return report_failure(points.status());
  Status written = write_forecast_csv(args.out, *panel, *points);
  if (!written) return report_failure(written);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cerr << "reai forecast: wrote " << points->size() << " forecasts for " << panel->series.size()
            << " series to " << args.out << " in " << seconds << " s\n";
  return kExitOk;
}

Status write_backtest_points(const std::string& path, const analytics::MonthlyPanel& panel,
                             const analytics::BacktestReport& report) {
  std::ofstream out(path);
  if (!out) return internal_error("cannot write " + path);
  out << "method,series,metric,origin,h,actual,point,lower80,upper80,scale\n";
  char line[512];
  for (const auto& p : report.points) {
    std::snprintf(line, sizeof line, ",%s,%04d-%02d,%d,%.9g,%.9g,%.9g,%.9g,%.9g\n", panel.metrics[p.metric].c_str(),
                  analytics::year_of(p.origin), analytics::month_of(p.origin), p.h, p.actual, p.point, p.lower80,
                  p.upper80, p.scale);
    out << analytics::method_name(p.method) << ',' << csv_field(panel.series[p.series].name) << line;
  }
  out.close();
  return out ? Status::ok() : internal_error("failed writing " + path);
}

int run_backtest(const ForecastArgs& args) {
  auto panel = read_panel(args);
  if (!panel) return report_failure(panel.status());
  const auto colon = args.origins.find(':');
  if (colon == std::string::npos) return report_failure(invalid_argument("--origins takes FIRST:LAST, e.g. 2011-12:2013-06"));
  auto first = analytics::parse_year_month(args.origins.substr(0, colon));
  if (!first) return report_failure(first.status());
  auto last = analytics::parse_year_month(args.origins.substr(colon + 1));
  if (!last) return report_failure(last.status());
  analytics::BacktestOptions options;
  options.first_origin = *first;
  options.last_origin = *last;
  options.forecast = forecast_options(args);
  if (!args.complete_from.empty()) {
    auto from = analytics::parse_year_month(args.complete_from);
    if (!from) return report_failure(from.status());
    options.complete_from = *from;
  }
  options.complete_all_columns = args.complete_columns == "all";
  options.keep_points = !args.points_out.empty();
  // An unwritable --points-out fails before minutes of backtesting, not after.
  if (options.keep_points && !std::ofstream(args.points_out)) {
    return report_failure(invalid_argument("cannot write --points-out " + args.points_out));
  }
  auto report = analytics::backtest_panel(*panel, options);
  if (!report) return report_failure(report.status());
  if (!args.points_out.empty()) {
    Status written = write_backtest_points(args.points_out, *panel, *report);
    if (!written) return report_failure(written);
  }
  std::printf("origins %d, horizon %d, series scored %zu of %zu\n", report->origins, report->horizon,
              report->series_scored, panel->series.size());
  std::printf("%-8s %-15s %3s %8s %8s %8s %7s %7s %7s %6s\n", "metric", "method", "h", "MASE", "MAPE%", "sMAPE%",
              "cov80", "cov95", "width80", "n");
  for (std::size_t m = 0; m < report->metrics.size(); ++m) {
    for (int method = 0; method < analytics::kMethodCount; ++method) {
      if (report->scores[method][m].front().count == 0) continue;  // a reference not asked for
      double mase = 0, mape = 0, smape = 0, cov = 0, cov95 = 0, width = 0;
      for (int h = 1; h <= report->horizon; ++h) {
        const auto& s = report->scores[method][m][static_cast<std::size_t>(h - 1)];
        std::printf("%-8s %-15s %3d %8.3f %8.2f %8.2f %7.3f %7.3f %7.3f %6zu\n", report->metrics[m].c_str(),
                    analytics::method_name(static_cast<analytics::Method>(method)), h, s.mase, s.mape, s.smape,
                    s.coverage80, s.coverage95, s.width80, s.count);
        mase += s.mase;
        mape += s.mape;
        smape += s.smape;
        cov += s.coverage80;
        cov95 += s.coverage95;
        width += s.width80;
      }
      const double n = report->horizon;
      std::printf("%-8s %-15s %3s %8.3f %8.2f %8.2f %7.3f %7.3f %7.3f\n", report->metrics[m].c_str(),
                  analytics::method_name(static_cast<analytics::Method>(method)), "avg", mase / n, mape / n, smape / n,
                  cov / n, cov95 / n, width / n);
    }
  }
  return kExitOk;
}

void add_panel_options(CLI::App* cmd, ForecastArgs* args, bool required) {
  auto* data = cmd->add_option("--data", args->data, "Monthly panel CSV with a header row");
  auto* series = cmd->add_option("--series", args->series, "Series column (e.g. city)");
  auto* time = cmd->add_option("--time", args->time, "year,month columns or one date column (YYYY-MM or decimal year)");
  auto* metrics = cmd->add_option("--metrics", args->metrics, "Metric columns to forecast, comma-separated");
  if (required) {
    data->required();
    series->required();
    time->required();
    metrics->required();
  }
  cmd->add_option("--covariates", args->covariates,
                  "Columns that inform the forecasts without being forecast: comma-separated, 'none', or 'auto' "
                  "(every other numeric column that differs between series)")
      ->capture_default_str();
  cmd->add_option("--horizon", args->horizon, "Months ahead (1..24)")->capture_default_str();
  cmd->add_option("--threads", args->threads, "Worker threads")->capture_default_str();
  cmd->add_option("--inner-origins", args->inner_origins,
                  "Rolling origins inside the training data for model weights and intervals")
      ->capture_default_str();
  cmd->add_option("--seed", args->seed,
                  "Seed of the global model's row and feature subsampling (a backtest on another seed shows how "
                  "much of a difference is chance)")
      ->capture_default_str();
  cmd->add_flag("--quiet", args->quiet, "No progress on stderr");
}

struct PriceArgs {
  std::string model, listing, market, region, metric = "median", sales;
  int k = 5;
};

int run_price(const PriceArgs& args) {
  std::ifstream in(args.listing);
  if (!in) return report_failure(not_found("cannot read listing " + args.listing));
  std::stringstream text;
  text << in.rdbuf();
  auto listing = analytics::listing_from_json(text.str());
  if (!listing) return report_failure(invalid_argument(args.listing + ": " + listing.status().message()));
  auto model = property::ValuationModel::load(args.model);
  if (!model) return report_failure(model.status());
  auto values = model->predict(*listing);
  if (!values) return report_failure(values.status());
  report_outside_training_range("reai price", *model, *values);
  report_unseen_categories("reai price", *model, *listing, *values);
  report_market_as_of("reai price", *model);
  std::vector<analytics::Comparable> comparables;
  if (!args.sales.empty()) {
    auto sales = property::read_sales_csv(args.sales);
    if (!sales) return report_failure(sales.status());
    auto found = analytics::nearest_comparables(*sales, model->target(), *listing, args.k);
    if (!found) return report_failure(found.status());
    comparables = std::move(*found);
  }
  std::optional<analytics::MarketOutlook> market;
  if (!args.market.empty()) {
    std::string region = args.region;
    for (const char* key : {"region", "city", "area"}) {
      if (!region.empty()) break;
      for (std::size_t j = 0; j < listing->header.size(); ++j) {
        if (listing->header[j] == key) region = listing->rows[0][j];
      }
    }
    if (region.empty()) return report_failure(invalid_argument("--market needs --region or a region/city field in the listing"));
    auto outlook = analytics::market_outlook(args.market, region, args.metric);
    if (!outlook) return report_failure(outlook.status());
    market = *outlook;
  }
  const auto rec = analytics::recommend_price(values->front(), std::move(comparables), market ? &*market : nullptr,
                                              model->market_as_of(), SystemClock().now());
  std::printf("list_price %.0f\nlower80 %.0f\nupper80 %.0f\navm %.0f (80%%: %.0f - %.0f)\n", rec.list_price, rec.lower80,
              rec.upper80, rec.avm.predicted, rec.avm.lower80, rec.avm.upper80);
  if (rec.has_market) {
    const auto& m = rec.market;
    const std::string span = m.data_through.empty() ? "over " + std::to_string(m.months) + " months after its data"
                                                    : m.from_month + " to " + m.to_month + ", data through " + m.data_through;
    std::printf("market %s %s: %+.2f%% %s (80%%: %+.2f%% to %+.2f%%)\n", m.region.c_str(), m.metric.c_str(),
                100 * m.change, span.c_str(), 100 * m.lower80, 100 * m.upper80);
  }
  for (const auto& c : rec.comparables) {
    std::printf("comparable row %zu price %.0f distance %.3f", c.row, c.price, c.distance);
    for (const auto& [name, value] : c.highlights) std::printf(" %s=%s", name.c_str(), value.c_str());
    std::printf("\n");
  }
  std::printf("\n%s\n", rec.explanation.c_str());
  return kExitOk;
}

}  // namespace

Status write_forecast_csv(const std::string& path, const analytics::MonthlyPanel& panel,
                          const std::vector<analytics::ForecastPoint>& points) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::path(path).has_parent_path()) fs::create_directories(fs::path(path).parent_path(), ec);
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp);
    if (!out) return internal_error("cannot write " + path);
    out << "series,metric,year,month,h,point,lower80,upper80\n";
    char line[512];
    for (const auto& p : points) {
      std::snprintf(line, sizeof line, ",%s,%d,%d,%d,%.6g,%.6g,%.6g\n", panel.metrics[p.metric].c_str(),
                    analytics::year_of(p.month), analytics::month_of(p.month), p.h, p.point, p.lower80, p.upper80);
      out << csv_field(panel.series[p.series].name) << line;
    }
    out.close();
    if (!out) return internal_error("failed writing " + path);
  }
  fs::rename(temp, path, ec);
  if (ec) return internal_error("cannot move " + temp + " to " + path + ": " + ec.message());
  return Status::ok();
}

void add_price_command(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<PriceArgs>();
  auto* cmd = app.add_subcommand("price", "Recommended list price and 80% range for a listing, with comparables and the market outlook");
  cmd->add_option("--model", args->model, "Valuation model directory from `reai value train`")->required();
  cmd->add_option("--listing", args->listing, "Listing JSON object (the sales columns, without the price)")->required();
  cmd->add_option("--market", args->market, "Forecast CSV from `reai forecast` for the 90-day market outlook");
  cmd->add_option("--region", args->region, "Series of the market forecast (default: the listing's region/city field)");
  cmd->add_option("--metric", args->metric, "Market forecast metric")->capture_default_str();
  cmd->add_option("--sales", args->sales, "Sales CSV to draw comparable sales from (e.g. the AVM's training file)");
  cmd->add_option("--k", args->k, "Comparable sales to list")->capture_default_str();
  cmd->callback([args, exit_code] { *exit_code = run_price(*args); });
}

void add_forecast_command(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ForecastArgs>();
  auto* cmd = app.add_subcommand(
      "forecast", "Forecast every series and metric of a monthly panel: series,metric,year,month,h,point,lower80,upper80");
  add_panel_options(cmd, args.get(), false);
  cmd->add_option("--out", args->out, "Output CSV (MODEL_DIR/markets/forecast.csv is what reai serve answers on /api/predictions/market-trends)");
  auto* backtest = cmd->add_subcommand(
      "backtest", "Rolling-origin backtest: MASE/MAPE/sMAPE per horizon and interval coverage, with the references");
  auto bargs = std::make_shared<ForecastArgs>();
  add_panel_options(backtest, bargs.get(), true);
  backtest->add_option("--origins", bargs->origins, "FIRST:LAST forecast origins, e.g. 2011-12:2013-06")->required();
  backtest->add_option("--complete-from", bargs->complete_from,
                       "Score only series without gaps from this month (YYYY-MM) to the end of the data");
  backtest->add_option("--complete-columns", bargs->complete_columns,
                       "With --complete-from: 'all' scores a series only when every column read (metrics and "
                       "covariates) is gap-free, as the issue counts its cities; 'metric' judges each metric's own column")
      ->check(CLI::IsMember({"metric", "all"}))
      ->capture_default_str();
  backtest->add_option("--points-out", bargs->points_out,
                       "Also write every scored forecast: method,series,metric,origin,h,actual,point,lower80,upper80,scale");
  backtest->add_flag("--references", bargs->references,
                     "Also the issue's reference methods: a plain global XGBoost on the series' own lags, rolling "
                     "statistics and calendar (plain_gbm), and its mean with ETS (ets_plain_mean)");
  backtest->callback([bargs, exit_code] { *exit_code = run_backtest(*bargs); });
  cmd->callback([cmd, args, exit_code] {
    if (!cmd->get_subcommands().empty()) return;
    for (const auto& [value, name] : {std::pair{&args->data, "--data"}, std::pair{&args->series, "--series"},
                                      std::pair{&args->time, "--time"}, std::pair{&args->metrics, "--metrics"},
                                      std::pair{&args->out, "--out"}}) {
      if (value->empty()) {
        std::cerr << "reai: forecast needs " << name << " (see reai forecast --help)\n";
        *exit_code = kExitBadInput;
        return;
      }
    }
    *exit_code = run_forecast(*args);
  });
}

}  // namespace reai::cli
