// The `reai` command line: one function per subcommand, registered on a
// CLI11 app. Exit codes: 0 success, 1 runtime failure, 2 bad input (missing
// file or column, unparsable value, empty data, bad option).
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "core/status.h"

namespace reai::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitBadInput = 2;

// Prints "reai: <message>" to stderr and returns the exit code for `status`.
int report_failure(const Status& status);

// Each registers its subcommand on `app`; the callback stores the exit code
// in `*exit_code`.
void add_serve_command(CLI::App& app, int* exit_code);
void add_token_command(CLI::App& app, int* exit_code);
void add_tenant_command(CLI::App& app, int* exit_code);
void add_import_command(CLI::App& app, int* exit_code);
void add_train_command(CLI::App& app, int* exit_code);
void add_replay_command(CLI::App& app, int* exit_code);
void add_simulate_command(CLI::App& app, int* exit_code);
void add_demo_command(CLI::App& app, int* exit_code);

// "24h", "30m", "7d", "3600" (seconds) -> seconds; InvalidArgument otherwise.
Result<long long> parse_duration(const std::string& text);

}  // namespace reai::cli
