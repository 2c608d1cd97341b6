// `reai forecast` and `reai forecast backtest`: market trend forecasts on a
// monthly panel (shared/EVALUATION.md "Market trends"); `reai price`: pricing
// strategy for a listing.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "analytics/forecast.h"
#include "core/status.h"

namespace reai::cli {

// Writes `points` of `panel` as series,metric,year,month,h,point,lower80,upper80
// to `path`, creating its directory, through a temporary file renamed into
// place, so a server reading MODEL_DIR/markets/forecast.csv never sees half a
// file. Internal when it cannot write.
Status write_forecast_csv(const std::string& path, const analytics::MonthlyPanel& panel,
                          const std::vector<analytics::ForecastPoint>& points);

// Registers `forecast` (with subcommand backtest) on `app`; the callbacks
// store the exit code (0 ok, 1 failure, 2 bad input) in *exit_code.
void add_forecast_command(CLI::App& app, int* exit_code);

// Registers `price`: a recommended list price for one listing (AVM value and
// interval, comparable sales, the area's market forecast, an explanation).
void add_price_command(CLI::App& app, int* exit_code);

}  // namespace reai::cli
