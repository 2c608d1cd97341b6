#include "cli/analytics_commands.h"
#include "cli/cli.h"
#include "cli/forecast_commands.h"
#include "cli/match_commands.h"
#include "cli/value_commands.h"

int main(int argc, char** argv) {
  CLI::App app{"reai: real-time lead scoring, property intelligence and forecasts for GoHighLevel teams"};
  app.require_subcommand(1);
  int exit_code = reai::cli::kExitOk;
  reai::cli::add_serve_command(app, &exit_code);
  reai::cli::add_demo_command(app, &exit_code);
  reai::cli::add_token_command(app, &exit_code);
  reai::cli::add_tenant_command(app, &exit_code);
  reai::cli::add_import_command(app, &exit_code);
  reai::cli::add_ghl_command(app, &exit_code);
  reai::cli::add_train_command(app, &exit_code);
  reai::cli::add_replay_command(app, &exit_code);
  reai::cli::add_simulate_command(app, &exit_code);
  reai::cli::add_value_command(app, &exit_code);
  reai::cli::add_analytics_commands(app, &exit_code);
  reai::cli::add_forecast_command(app, &exit_code);
  reai::cli::add_price_command(app, &exit_code);
  reai::cli::add_match_commands(app, &exit_code);
  return reai::cli::run_app(app, argc, argv, exit_code);
}
