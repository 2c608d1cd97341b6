// Standalone `reai_analytics_cli` binary: `train deals`, `deals` and `agents` only
// (the same code as in `reai`), for working on this module without the server.
#include <CLI/CLI.hpp>

#include "cli/analytics_commands.h"

int main(int argc, char** argv) {
  CLI::App app{"reai_analytics_cli: deal and agent forecasts (same as `reai train deals|deals|agents`)"};
  app.require_subcommand(1);
  int exit_code = 0;
  reai::cli::add_analytics_commands(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  return exit_code;
}
