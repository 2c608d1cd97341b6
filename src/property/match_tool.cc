// Standalone `reai_match` binary: `match` and `train match` only (same code
// as `reai match` / `reai train match`), for working on this module alone.
#include <CLI/CLI.hpp>

#include "cli/match_commands.h"

int main(int argc, char** argv) {
  CLI::App app{"reai_match: property matching (same as `reai match`, `reai train match`)"};
  app.require_subcommand(1);
  int exit_code = 0;
  reai::cli::add_match_commands(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  return exit_code;
}
