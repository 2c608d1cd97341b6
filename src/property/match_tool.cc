// Standalone `reai_match` binary: `match` and `train match` only (same code
// as `reai match` / `reai train match`), for working on this module alone.
#include "cli/cli.h"
#include "cli/match_commands.h"

int main(int argc, char** argv) {
  CLI::App app{"reai_match: property matching (same as `reai match`, `reai train match`)"};
  app.require_subcommand(1);
  int exit_code = reai::cli::kExitOk;
  reai::cli::add_match_commands(app, &exit_code);
  return reai::cli::run_app(app, argc, argv, exit_code);
}
