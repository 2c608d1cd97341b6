// Standalone `reai_analytics_cli` binary: `train deals`, `deals` and `agents` only
// (the same code as in `reai`), for working on this module without the server.
#include "cli/cli.h"
#include "cli/analytics_commands.h"

int main(int argc, char** argv) {
  CLI::App app{"reai_analytics_cli: deal and agent forecasts (same as `reai train deals|deals|agents`)"};
  app.require_subcommand(1);
  int exit_code = reai::cli::kExitOk;
  reai::cli::add_analytics_commands(app, &exit_code);
  return reai::cli::run_app(app, argc, argv, exit_code);
}
