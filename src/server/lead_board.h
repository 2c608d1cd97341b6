// LeadBoard: the newest published score of every lead, per tenant, as the
// whole cluster published it.
//
// Each instance's engine remembers the last score *it* computed per lead, so
// with several instances its top-leads list lags for leads last scored
// elsewhere. Every instance publishes each lead's score changes on the bus
// (in seq order per tenant, a lead's changes in the order they were scored,
// under its lease), and every instance receives them all: fed from the bus,
// this board is the same on every instance. It holds what was published
// (score, band or reasons changed), the granularity of the WebSocket feed
// and of the stored score rows: a probability drift too small to change
// those is not shown until the next change.
//
// Thread-safe.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "scoring/scoring.h"

namespace reai::server {

class LeadBoard {
 public:
  // Records a score object as published (score_json). Ignored unless it is
  // a JSON object with string tenant_id and lead_id, number probability and
  // a band name. `only_if_absent` keeps a lead's entry when it has one (the
  // start-up replay must not overwrite a newer published score).
  void record(std::shared_ptr<const std::string> score_json, bool only_if_absent = false);
  // The tenant's leads, best probability first (ties by lead id), optionally
  // one band only: the score objects as published.
  std::vector<std::shared_ptr<const std::string>> top(std::string_view tenant_id, std::optional<scoring::Band> band,
                                                      std::size_t limit) const;
  std::size_t size() const;

  // One lead's newest published score and band (the score object's "score",
  // or the probability in points when it has none).
  struct Standing {
    std::string lead_id;
    int score = 0;
    scoring::Band band = scoring::Band::kCold;
  };
  // Every lead of the tenant, in no particular order.
  std::vector<Standing> standings(std::string_view tenant_id) const;

 private:
  struct Entry {
    double probability = 0;
    int score = 0;
    scoring::Band band = scoring::Band::kCold;
    std::shared_ptr<const std::string> json;
  };
  mutable std::mutex mu_;
  // tenant -> lead -> newest entry
  std::unordered_map<std::string, std::unordered_map<std::string, Entry>> tenants_;
};

}  // namespace reai::server
