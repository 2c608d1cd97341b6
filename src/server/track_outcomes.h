// Live track records across instances: the edge that carries the engine's
// counted outcomes (LeadScoringEngine::share_outcomes / add_outcome) over the
// bus, topic "live_outcome", per tenant. The engine keeps each (tenant, lead,
// kind) once, so repeats and the echo of this instance's own publication
// count nothing.
#pragma once

#include <string>
#include <string_view>

#include "bus/bus.h"
#include "core/status.h"
#include "scoring/scoring.h"

namespace reai::server {

inline constexpr std::string_view kLiveOutcomeTopic = "live_outcome";

// {"lead":..,"agent":..,"source":..,"created_at":..,"converted":..[,"first_outreach":..]};
// the tenant travels as the bus message's tenant.
std::string encode_track_outcome(const scoring::TrackOutcome& outcome);
// InvalidArgument on malformed JSON or missing/mistyped fields.
Result<scoring::TrackOutcome> decode_track_outcome(std::string_view tenant_id, std::string_view payload);

// Turns sharing on in `engine` (call before any traffic, once per engine)
// and subscribes it to the bus. `bus` and `engine` must outlive this object,
// and the engine must count no outcome after it is destroyed (it publishes
// through `bus`). A malformed message is dropped and counted.
class TrackOutcomeSharing {
 public:
  TrackOutcomeSharing(bus::Bus& bus, scoring::LeadScoringEngine& engine);
  ~TrackOutcomeSharing();
  TrackOutcomeSharing(const TrackOutcomeSharing&) = delete;
  TrackOutcomeSharing& operator=(const TrackOutcomeSharing&) = delete;
  std::uint64_t malformed() const { return malformed_.load(std::memory_order_relaxed); }

 private:
  bus::Bus& bus_;
  bus::SubscriptionId subscription_ = 0;
  std::atomic<std::uint64_t> malformed_{0};
};

}  // namespace reai::server
