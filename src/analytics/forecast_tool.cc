// `reai_forecast`: the same code as `reai forecast`, without the full CLI's
// server dependencies, for working on this module alone.
#include "cli/forecast_commands.h"

int main(int argc, char** argv) {
  CLI::App app{"reai_forecast: market trend forecasts"};
  app.require_subcommand(1);
  int exit_code = 0;
  reai::cli::add_forecast_command(app, &exit_code);
  reai::cli::add_price_command(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  return exit_code;
}
