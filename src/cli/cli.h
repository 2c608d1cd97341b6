// The `reai` command line: one function per subcommand, registered on a
// CLI11 app. Exit codes: 0 success, 1 runtime failure, 2 bad input (missing
// file or column, unparsable value, empty data, bad option).
#pragma once

#include <CLI/CLI.hpp>
#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include "core/status.h"

namespace reai::store {
class Store;
}

namespace reai::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitBadInput = 2;

// Prints "reai: <message>" to stderr and returns the exit code for `status`.
// Inline, like run_app, so the modules' standalone tools (reai_value,
// reai_match, reai_forecast, reai_analytics_cli) share them without linking
// the full CLI and its server dependencies.
inline int report_failure(const Status& status) {
  std::cerr << "reai: " << status.message() << "\n";
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
    case StatusCode::kPayloadTooLarge:
      return kExitBadInput;
    default:
      return kExitFailure;
  }
}

// Makes OpenMP (XGBoost's threads) wait passively unless the user chose a
// policy: spinning workers burn their cores while they wait, and on a shared
// or loaded machine a two-thread training spun 15x slower than one thread.
// libgomp reads OMP_WAIT_POLICY once, when it is loaded (before main), so
// setting it here takes a re-exec of this binary with the variable set; the
// process keeps its pid. Returns only when no re-exec happened (the policy
// was set, or /proc/self/exe cannot be executed).
inline void ensure_passive_openmp_waits(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  if (::setenv("OMP_WAIT_POLICY", "passive", 1) != 0) return;
  ::execv("/proc/self/exe", argv);
}

// The body of every binary's main(): parses `argv` with `app` (whose
// subcommand callbacks store their result in `exit_code`) and returns the
// process exit code; a command-line error is bad input (2).
inline int run_app(CLI::App& app, int argc, char** argv, const int& exit_code) {
  ensure_passive_openmp_waits(argv);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitBadInput;
  }
  return exit_code;
}

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
void add_ghl_command(CLI::App& app, int* exit_code);

// `reai tenant list`'s table: CSV `tenant_id,name,contacts,events,
// ghl_location_id,ghl,ghl_since,ghl_detail`, one row per tenant. `ghl` is
// the GoHighLevel install state (store::ghl_install_state_name: oauth,
// private, linked, uninstalled, needs_reauth, none), `ghl_since` when it
// began (ISO 8601; empty for states without a date), `ghl_detail` GHL's
// refusal message (quoted when it holds a comma or quote). The store's
// failures pass on (nothing printed after them).
Status write_tenant_list(store::Store& store, std::ostream& out);

// "24h", "30m", "7d", "3600" (seconds) -> seconds; InvalidArgument otherwise.
Result<long long> parse_duration(const std::string& text);

// Validator of every `--store` option: a postgres:// (or postgresql://) URL,
// or empty (the SQLite store in --data-dir). Anything else is refused at parse time (exit 2), never opened as a SQLite
// directory of that name; the SQLite store is --data-dir.
CLI::Validator postgres_store_url();

// Help text of every `--store` option (checked with postgres_store_url()).
inline constexpr const char* kStoreHelp = "postgres://user@host/db URL of a PostgreSQL store (instead of --data-dir)";

// The store a command opens: the --store URL when given, else the SQLite
// directory `data_dir`.
inline std::string store_location(const std::string& store, const std::string& data_dir) {
  return store.empty() ? data_dir : store;
}

// The store for messages: never the URL, which may carry a password.
inline std::string store_description(const std::string& store, const std::string& data_dir) {
  return store.empty() ? data_dir : "the PostgreSQL store";
}

// Validator of every `--tenant` option: the core rule of core/tenant_id.h, so
// a bad id is refused at parse time (exit 2) before anything is opened.
CLI::Validator tenant_id_option();

// Validator of `--static-dir`: a directory holding index.html
// (server::check_static_dir), refused at parse time (exit 2) before a store is
// opened or a model trained, never replaced by the built-in page.
CLI::Validator static_dir_option();

}  // namespace reai::cli
