// A live stream of CRM events for the demo: real lead histories (from a
// crm/ CSV history) replayed as new leads, time-compressed, through the
// public HTTP API, so scores move on the page the way they do in production.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/time.h"
#include "core/types.h"

namespace reai::cli {

struct SimulatorOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  std::string token;                // agent JWT of the tenant
  double events_per_second = 4;     // average rate of posted events
  double time_compression = 3600;   // 1 hour of a lead's life plays in 1 s
  double max_lead_age_days = 7;     // history beyond this age is not replayed
  double duration_seconds = 0;      // 0: until stopped
  // Start as if the stream had run for a whole window (max_lead_age_days
  // compressed): the leads it would have begun are created at once with
  // their past events (dated in the past), so the target rate holds from
  // the first second. Off: the rate ramps up over that window.
  bool warm_start = true;
  std::uint32_t seed = 1;
  bool verbose = false;
  // The server's clock, which the posted times follow (the server refuses
  // times more than a day after its own now); nullptr: the wall clock.
  // Not owned; outlives the run.
  const Clock* clock = nullptr;
};

struct SimulatorReport {
  std::uint64_t leads_created = 0;
  std::uint64_t events_posted = 0;
  std::uint64_t http_errors = 0;
};

// Posts events until `stop` becomes true or the duration ends. Fails with
// InvalidArgument when the history has no usable leads, Unavailable when the
// server cannot be reached at all.
Result<SimulatorReport> run_simulator(const std::vector<Contact>& contacts,
                                      const std::vector<Event>& events,
                                      const SimulatorOptions& options, const std::atomic<bool>& stop);

}  // namespace reai::cli
