// What this instance last published per lead, and the order a lead's score
// updates leave in while some of them wait in a batch (the batch worker's
// outbox, sent later in one bus call): a direct publish of a lead waits for
// the lead's queued updates to be sent, so a client sees them in order.
// Thread-safe. Leads are sharded (64 shards) and a send runs under its
// shard's lock, so a slow send (a direct publish waiting for Redis to deliver
// it) holds up the other leads of its shard for that time.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "scoring/scoring.h"

namespace reai::server {

class PublishedScores {
 public:
  PublishedScores();
  ~PublishedScores();
  PublishedScores(const PublishedScores&) = delete;
  PublishedScores& operator=(const PublishedScores&) = delete;

  // The key record() and sent() know the score's lead by.
  static std::string lead_key(const scoring::LeadScore& score);

  // Records `score` as its lead's last published one and runs
  // `send(bool moved)` (publishes it, or queues it in a batch), or answers
  // false and runs nothing when it equals the last one (score, band and
  // reason features). `send` runs under the lead's shard lock, so a lead's updates
  // leave in the order recorded; `moved`: the score or band changed (not only
  // the reasons). queued = false (a direct publish): first waits while the
  // lead has queued updates not yet sent. queued = true: the update waits in
  // a batch; the lead counts one more queued update until sent() names it.
  // A template so the hot path builds no std::function per score.
  template <class Send>
  bool record(const scoring::LeadScore& score, bool queued, Send&& send) {
    Admission admitted = admit(score, queued);
    if (admitted.last == nullptr) return false;
    send(admitted.moved);
    settle(admitted, score, queued);  // after send: a send that throws leaves nothing recorded
    return true;
  }
  // The batch holding queued updates of these leads (lead_key of each
  // update, one per update) was sent: direct publishes waiting on them go on.
  void sent(std::span<const std::string> lead_keys);
  // Records `score` as the lead's last without sending anything.
  void seed(const scoring::LeadScore& score);
  // Forgets the lead's last (another instance may have published since), so
  // its next score is recorded and sent whatever it is.
  void forget(const scoring::LeadScore& score);

 private:
  struct Last {
    int score = -1;
    scoring::Band band = scoring::Band::kCold;
    std::vector<std::string> reason_features;
  };
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Last> last;
    std::unordered_map<std::string, std::size_t> queued;  // leads with unsent updates: how many each
    std::condition_variable sent;  // a lead left `queued`
  };
  // admit()'s answer. Holds the lead's shard lock; `last`: the lead's entry
  // when the score differs from it (to be sent), else nullptr.
  struct Admission {
    std::unique_lock<std::mutex> lock;
    Shard* shard = nullptr;
    std::string key;
    Last* last = nullptr;
    bool moved = false;
  };
  Admission admit(const scoring::LeadScore& score, bool queued);
  // Records the sent score as the lead's last and, when queued, counts it.
  static void settle(Admission& admitted, const scoring::LeadScore& score, bool queued);
  static constexpr std::size_t kShards = 64;
  Shard& shard_for(const std::string& key);
  static Last last_of(const scoring::LeadScore& score);

  std::unique_ptr<Shard[]> shards_;
};

}  // namespace reai::server
