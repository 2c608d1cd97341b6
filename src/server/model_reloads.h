// Model reloads off the io threads, across instances and of everything.
//
// A tenant admin's reload (POST /api/admin/reload) runs here, on one reload
// thread, and when it succeeded is announced to the other instances as a bus
// notice (topic "model_reload", the tenant as the notice's tenant); each
// instance that hears it runs the same tenant-scoped reload on its own
// reload thread. The sender skips its own notice (the payload names the
// instance that sent it): it has just reloaded. An operator's reload of
// everything (SIGHUP) runs here too and is logged with its report.
// Private to src/server; owned by Api.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

#include "bus/bus.h"
#include "core/status.h"
#include "scoring/scoring.h"
#include "server/lead_workers.h"
#include "server/property_routes.h"

namespace reai::server {

inline constexpr std::string_view kModelReloadTopic = "model_reload";

// {"origin":"<instance id>"}; the tenant travels as the notice's tenant.
std::string encode_reload_notice(std::string_view origin);
// The sending instance's id; InvalidArgument on malformed JSON or a missing,
// mistyped or empty origin.
Result<std::string> decode_reload_notice(std::string_view payload);

struct ModelReloadStats {
  std::uint64_t announced = 0;          // notices handed to the bus
  std::uint64_t announce_failures = 0;  // refused by the bus
  std::uint64_t received = 0;           // other instances' notices, reloaded here
  std::uint64_t coalesced = 0;          // received while that tenant's reload was already queued
  std::uint64_t own = 0;                // this instance's own notices, skipped
  std::uint64_t ignored = 0;            // malformed or an invalid tenant id: logged, dropped
  std::uint64_t full_reloads = 0;       // reloads of everything run
};

class ModelReloads {
 public:
  // What one tenant's reload did on this instance.
  struct TenantReload {
    scoring::ModelReloadReport models;
    PropertyRoutes::RefreshReport property;
    // Whether the notice went out to the other instances: OK (handed to a
    // working bus), the bus's refusal (ResourceExhausted: its backend is
    // down and its hold is full), Unavailable when the bus took it while
    // down (held, sent when it returns), or FailedPrecondition when the
    // reload itself failed (nothing is announced then).
    Status announced;
  };
  using RefreshProperty = std::function<PropertyRoutes::RefreshReport(const std::string& tenant_id)>;
  using Done = std::function<void(TenantReload)>;

  // Subscribes to the bus's notices at once. `refresh_property` (may be
  // empty) is the property side of a tenant's reload. `bus`, `registry` and
  // what `refresh_property` uses must outlive this object.
  ModelReloads(bus::Bus& bus, scoring::DirectoryModelRegistry& registry, RefreshProperty refresh_property);
  // As stop().
  ~ModelReloads();
  ModelReloads(const ModelReloads&) = delete;
  ModelReloads& operator=(const ModelReloads&) = delete;

  // A tenant admin's reload: on the reload thread, rereads the shared lead
  // model and the tenant's own (DirectoryModelRegistry::reload_tenant) and
  // refreshes its property models; when that succeeded, announces it on the
  // bus. `done` runs on the reload thread with the outcome. False after
  // stop() (nothing runs). Any thread; never waits for a load.
  bool reload_tenant(std::string tenant_id, Done done);
  // An operator's reload of everything (DirectoryModelRegistry::reload_all),
  // queued for the reload thread (at most one waits) and logged with its
  // report: what moved, what stayed, what failed to load (which keeps its
  // previous model). Nothing is announced: every instance gets its own
  // signal. Any thread; never waits for a load.
  void reload_all();
  // Waits until what was queued before the call has run (tests).
  void wait_idle();
  // Unsubscribes, runs what is queued, joins the reload thread. Idempotent.
  void stop();
  ModelReloadStats stats() const;
  const std::string& instance_id() const { return instance_id_; }

 private:
  // Bus thread (or the notifier's, in-process): decodes and queues, never loads.
  void on_notice(const bus::BusMessage& m);
  // Reload thread: another instance's notice for `tenant_id`.
  void reload_for_notice(const std::string& tenant_id);
  TenantReload reload_here(const std::string& tenant_id);
  void run_full_reload();

  bus::Bus& bus_;
  scoring::DirectoryModelRegistry& registry_;
  RefreshProperty refresh_property_;
  const std::string instance_id_;  // random per process: tells own notices apart
  LeadWorkers worker_{1};          // the reload thread
  std::mutex mu_;
  std::set<std::string, std::less<>> queued_tenants_;  // notice reloads waiting; guarded by mu_
  bool full_queued_ = false;                           // guarded by mu_
  bus::SubscriptionId subscription_ = 0;
  std::atomic<bool> subscribed_{false};
  std::atomic<std::uint64_t> announced_{0};
  std::atomic<std::uint64_t> announce_failures_{0};
  std::atomic<std::uint64_t> received_{0};
  std::atomic<std::uint64_t> coalesced_{0};
  std::atomic<std::uint64_t> own_{0};
  std::atomic<std::uint64_t> ignored_{0};
  std::atomic<std::uint64_t> full_reloads_{0};
};

// "reloaded [..] unchanged [..] failed [..]" for a log line.
std::string describe_reload(const scoring::ModelReloadReport& report);

}  // namespace reai::server
