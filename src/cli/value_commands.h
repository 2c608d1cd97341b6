// `reai value train|predict|cv`: the automated valuation model's batch
// interface (shared/EVALUATION.md "Valuation").
#pragma once

#include <CLI/CLI.hpp>

namespace reai::cli {

// Registers `value` with subcommands train, predict and cv on `app`; the
// callbacks store the exit code (0 ok, 1 failure, 2 bad input) in *exit_code.
void add_value_command(CLI::App& app, int* exit_code);

}  // namespace reai::cli
