// `reai train deals`, `reai deals` and `reai agents`: the deal closure and
// agent forecast batch interface (shared/EVALUATION.md "Deals", "Agents").
#pragma once

#include <CLI/CLI.hpp>

namespace reai::cli {

// Registers `deals` and `agents` on `app`, and `deals` under the existing
// `train` subcommand when there is one (else creates `train`). Callbacks store
// the exit code (0 ok, 1 failure, 2 bad input) in *exit_code.
void add_analytics_commands(CLI::App& app, int* exit_code);

}  // namespace reai::cli
