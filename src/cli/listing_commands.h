// `reai import listings`: a tenant's inventory into the store, each listing
// valued by the AVM (when one is trained) with its price competitiveness.
#pragma once

#include <CLI/CLI.hpp>

namespace reai::cli {

// Registers `listings` under the existing `import` subcommand `import_cmd`.
// The callback stores the exit code (0 ok, 1 failure, 2 bad input) in
// *exit_code.
void add_import_listings_command(CLI::App& import_cmd, int* exit_code);

}  // namespace reai::cli
