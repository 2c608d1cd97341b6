#include "cli/runtime.h"

#include <csignal>
#include <cstdlib>
#include <iostream>

namespace reai::cli {

void block_stop_signals() {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  // SIGHUP's default is to end the process; Server::wait() makes it a reload.
  sigaddset(&stop_signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
}

namespace {

// The wall clock moved to start at another instant: it reads `start` when
// made and then runs at the wall clock's pace (a demo started at a date).
class StartedClock final : public Clock {
 public:
  explicit StartedClock(UnixSeconds start) : offset_(start - SystemClock().now()) {}
  UnixSeconds now() const override { return SystemClock().now() + offset_; }

 private:
  const UnixSeconds offset_;
};

}  // namespace

Result<std::unique_ptr<Runtime>> Runtime::open(const RuntimeOptions& options) {
  std::unique_ptr<Runtime> rt(new Runtime());
  if (options.fixed_clock) {
    rt->clock_ = std::make_unique<ManualClock>(*options.fixed_clock);
  } else if (options.clock_starts_at) {
    rt->clock_ = std::make_unique<StartedClock>(*options.clock_starts_at);
  } else {
    rt->clock_ = std::make_unique<SystemClock>();
  }
  auto store = store::open_store(options.store.empty() ? options.data_dir : options.store);
  if (!store) return store.status();
  rt->store_ = std::move(*store);
  auto opened_bus = bus::open_bus(options.bus_url);
  if (!opened_bus) return opened_bus.status();
  rt->bus_ = std::move(*opened_bus);
  auto opened_cache = bus::open_cache(options.cache_url, *rt->clock_);
  if (!opened_cache) return opened_cache.status();
  rt->cache_ = std::move(*opened_cache);
  // Per-lead leases live beside the shared cache: with a Redis cache, lead
  // state is synchronised across instances.
  auto opened_leases = bus::open_leases(options.cache_url);
  if (!opened_leases) return opened_leases.status();
  rt->leases_ = std::move(*opened_leases);
  rt->registry_ = std::make_unique<scoring::DirectoryModelRegistry>(options.model_dir);
  Status loaded = rt->registry_->reload();
  if (!loaded.is_ok()) {
    // Serving goes on with the documented fallback scorer; the reason shows
    // in /readyz and in every score ("model": "fallback").
    std::cerr << "reai: warning: " << loaded.message() << "\n";
  }
  rt->engine_ = std::make_unique<scoring::LeadScoringEngine>(*rt->registry_, rt->cache_.get());
  server::ServerDeps deps{*rt->store_, *rt->bus_, *rt->cache_, *rt->engine_, *rt->registry_, *rt->clock_,
                            rt->leases_.get()};
  server::ServerConfig config = options.server;
  config.model_dir = options.model_dir;  // property models (match, value) beside the lead models
  rt->server_ = std::make_unique<server::Server>(std::move(config), deps);
  return rt;
}

Status Runtime::start() { return server_->start(); }

Result<std::string> resolve_jwt_secret(const std::string& flag_value) {
  std::string secret, source;
  if (!flag_value.empty()) {
    secret = flag_value;
    source = "--jwt-secret";
  } else if (const char* env = std::getenv("REAI_JWT_SECRET"); env && *env) {
    secret = env;
    source = "REAI_JWT_SECRET";
  } else {
    return invalid_argument("no JWT secret: pass --jwt-secret or set REAI_JWT_SECRET");
  }
  if (Status s = server::check_jwt_secret(secret); !s) return invalid_argument(source + ": " + s.message());
  return secret;
}

}  // namespace reai::cli
