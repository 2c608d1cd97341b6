// `reai match` and `reai train match`: property matching's batch interface
// (shared/EVALUATION.md "Property matching").
#pragma once

#include <CLI/CLI.hpp>

namespace reai::cli {

// Registers `match` on `app` and `match` under the existing `train`
// subcommand (call after add_train_command; without one, a `train`
// subcommand is created). Callbacks store the exit code (0 ok, 1 failure,
// 2 bad input) in *exit_code.
void add_match_commands(CLI::App& app, int* exit_code);

}  // namespace reai::cli
