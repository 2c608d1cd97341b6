// The running product on one machine: store, bus, cache, model registry,
// scoring engine and server wired together with the embedded defaults.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "bus/bus.h"
#include "core/time.h"
#include "scoring/scoring.h"
#include "server/server.h"
#include "store/store.h"

namespace reai::cli {

struct RuntimeOptions {
  std::string data_dir = "var";
  // postgres:// URL of a PostgreSQL store; empty: SQLite in data_dir.
  std::string store;
  std::string model_dir = "var/models";
  // --bus / --cache: "" (in-process) or redis://host:port[?prefix=NAME].
  std::string bus_url;
  std::string cache_url;
  server::ServerConfig server;
  // Pins "now" (tests and exact comparisons with `reai replay`); wall clock when unset.
  std::optional<UnixSeconds> fixed_clock;
  // Starts "now" at this instant, then runs at the wall clock's pace (a demo
  // started at a date; its live stream needs a clock that moves). Ignored
  // when fixed_clock is set.
  std::optional<UnixSeconds> clock_starts_at;
};

class Runtime {
 public:
  // Opens the store and loads models; the server is not started yet.
  static Result<std::unique_ptr<Runtime>> open(const RuntimeOptions& options);
  // Rebuilds state from the store and starts listening.
  Status start();
  // Blocks until SIGINT/SIGTERM or stop(), then shuts down gracefully.
  void wait() { server_->wait(); }
  void stop() { server_->stop(); }
  std::uint16_t port() const { return server_->port(); }
  // The server's "now" (lives as long as the runtime).
  const Clock& clock() const { return *clock_; }
  store::Store& store() { return *store_; }
  scoring::DirectoryModelRegistry& registry() { return *registry_; }

 private:
  Runtime() = default;
  std::unique_ptr<Clock> clock_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<bus::Bus> bus_;
  std::unique_ptr<bus::Cache> cache_;
  std::unique_ptr<bus::Leases> leases_;
  std::unique_ptr<scoring::DirectoryModelRegistry> registry_;
  std::unique_ptr<scoring::LeadScoringEngine> engine_;
  std::unique_ptr<server::Server> server_;
};

// --jwt-secret, else $REAI_JWT_SECRET; InvalidArgument when neither is set or
// the key is shorter than server::kMinJwtSecretBytes (the message names the source).
Result<std::string> resolve_jwt_secret(const std::string& flag_value);

// Blocks SIGINT and SIGTERM in the calling thread and so in every thread it
// starts afterwards. Called first by the commands that serve: a stop signal
// that arrives while the server starts stays pending until Server::wait()
// has installed its handler and unblocks them, and then stops the server
// gracefully instead of killing the process (exit 143) half-started. SIGHUP
// (reload every model, once serving) is held back the same way.
void block_stop_signals();

}  // namespace reai::cli
