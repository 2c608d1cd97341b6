// Standalone `reai_value` binary: the `reai value` subcommands only.
#include "cli/cli.h"
#include "cli/value_commands.h"

int main(int argc, char** argv) {
  CLI::App app{"reai_value: property valuation (same as `reai value`)"};
  app.require_subcommand(1);
  int exit_code = reai::cli::kExitOk;
  reai::cli::add_value_command(app, &exit_code);
  return reai::cli::run_app(app, argc, argv, exit_code);
}
