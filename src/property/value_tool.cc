// Standalone `reai_value` binary: the `reai value` subcommands only.
#include <CLI/CLI.hpp>

#include "cli/value_commands.h"

int main(int argc, char** argv) {
  CLI::App app{"reai_value: property valuation (same as `reai value`)"};
  app.require_subcommand(1);
  int exit_code = 0;
  reai::cli::add_value_command(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  return exit_code;
}
