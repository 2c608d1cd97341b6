// Live track records across instances: the edge that carries the engine's
// counted outcomes (LeadScoringEngine::share_outcomes / add_outcome) over the
// bus, topic "live_outcome", per tenant. The engine keeps each (tenant, lead,
// kind) once, so repeats and the echo of this instance's own publication
// count nothing.
#pragma once

#include <atomic>
#include <cstdint>
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

struct TrackOutcomeStats {
  bool publishing = false;
  std::uint64_t published = 0;         // notices handed to the bus
  std::uint64_t publish_failures = 0;  // refused by the bus (its hold was full)
  std::uint64_t received = 0;          // other instances' outcomes counted here
  std::uint64_t repeats = 0;           // known already (own echoes, replayed here)
  std::uint64_t malformed = 0;         // dropped
};

// Outcomes travel as bus notices (Bus::notify), which take no tenant seq and
// never reach the WebSocket hub or a replay. The constructor turns sharing
// on in `engine`, receive only, and subscribes it; start_publishing() sends
// what the engine counts from then on. A server calls it after its start-up
// replay: every instance replays the store itself, so what a replay counts
// is not sent (and, received from another instance, is not counted twice).
// `bus` and `engine` must outlive this object; the destructor stops the
// publishing and the subscription. A malformed notice is dropped and
// counted. Thread-safe.
class TrackOutcomeSharing {
 public:
  TrackOutcomeSharing(bus::Bus& bus, scoring::LeadScoringEngine& engine);
  ~TrackOutcomeSharing();
  TrackOutcomeSharing(const TrackOutcomeSharing&) = delete;
  TrackOutcomeSharing& operator=(const TrackOutcomeSharing&) = delete;
  void start_publishing();
  TrackOutcomeStats stats() const;
  std::uint64_t malformed() const { return malformed_.load(std::memory_order_relaxed); }

 private:
  bus::Bus& bus_;
  scoring::LeadScoringEngine& engine_;
  bus::SubscriptionId subscription_ = 0;
  std::atomic<bool> publishing_{false};
  std::atomic<std::uint64_t> published_{0};
  std::atomic<std::uint64_t> publish_failures_{0};
  std::atomic<std::uint64_t> received_{0};
  std::atomic<std::uint64_t> repeats_{0};
  std::atomic<std::uint64_t> malformed_{0};
};

}  // namespace reai::server
