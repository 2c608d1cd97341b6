// `reai_forecast`: the same code as `reai forecast`, without the full CLI's
// server dependencies, for working on this module alone.
#include "cli/cli.h"
#include "cli/forecast_commands.h"

int main(int argc, char** argv) {
  CLI::App app{"reai_forecast: market trend forecasts"};
  app.require_subcommand(1);
  int exit_code = reai::cli::kExitOk;
  reai::cli::add_forecast_command(app, &exit_code);
  reai::cli::add_price_command(app, &exit_code);
  return reai::cli::run_app(app, argc, argv, exit_code);
}
