// `reai import listings`: a tenant's inventory into the store, each listing
// valued by the AVM (when one is trained) with its price competitiveness.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

namespace reai::cli {

struct ImportListingsArgs {
  std::string data_dir = "var";
  std::string store;         // postgres:// URL; empty: SQLite in data_dir
  std::string model_dir = "var/models";
  std::string tenant;
  std::string listings;      // CSV path
  std::string price_column;
  std::string id_column;     // empty: ids are file stem + 1-based row ("ames-0012")
  std::string avm;           // explicit AVM directory; empty: the tenant's or the shared one when trained
  bool skip_bad = false;     // skip (and report) bad rows instead of stopping
};

// Reads, values and stores the listings (prints a summary; bad rows go to
// stderr as file:line). Returns the exit code. Opens the store (store, else
// SQLite in data_dir) itself, so no other connection of this process may hold
// a SQLite write lock.
int run_import_listings(const ImportListingsArgs& args);

// Registers `listings` under the existing `import` subcommand `import_cmd`.
// The callback stores the exit code (0 ok, 1 failure, 2 bad input) in
// *exit_code.
void add_import_listings_command(CLI::App& import_cmd, int* exit_code);

}  // namespace reai::cli
