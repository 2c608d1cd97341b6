// `reai forecast` and `reai forecast backtest`: market trend forecasts on a
// monthly panel (shared/EVALUATION.md "Market trends"); `reai price`: pricing
// strategy for a listing.
#pragma once

#include <CLI/CLI.hpp>

namespace reai::cli {

// Registers `forecast` (with subcommand backtest) on `app`; the callbacks
// store the exit code (0 ok, 1 failure, 2 bad input) in *exit_code.
void add_forecast_command(CLI::App& app, int* exit_code);

// Registers `price`: a recommended list price for one listing (AVM value and
// interval, comparable sales, the area's market forecast, an explanation).
void add_price_command(CLI::App& app, int* exit_code);

}  // namespace reai::cli
