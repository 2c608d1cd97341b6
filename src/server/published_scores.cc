#include "server/published_scores.h"

#include "core/tenant_id.h"

namespace reai::server {

PublishedScores::PublishedScores() : shards_(new Shard[kShards]) {}
PublishedScores::~PublishedScores() = default;

std::string PublishedScores::lead_key(const scoring::LeadScore& score) {
  return tenant_scoped_key(score.tenant_id, score.lead_id);
}

PublishedScores::Shard& PublishedScores::shard_for(const std::string& key) {
  return shards_[std::hash<std::string>{}(key) % kShards];
}

PublishedScores::Last PublishedScores::last_of(const scoring::LeadScore& score) {
  Last last;
  last.score = score.score;
  last.band = score.band;
  for (const auto& r : score.reasons) last.reason_features.push_back(r.feature);
  return last;
}

PublishedScores::Admission PublishedScores::admit(const scoring::LeadScore& s, bool queued) {
  Admission admitted;
  admitted.key = lead_key(s);
  admitted.shard = &shard_for(admitted.key);
  Shard& shard = *admitted.shard;
  admitted.lock = std::unique_lock(shard.mu);
  // Queued updates of this lead leave first; this one is recorded after
  // them. (Not the batch's own updates: its batch is sent before it
  // publishes directly.)
  if (!queued && !shard.queued.empty()) {
    shard.sent.wait(admitted.lock, [&] { return !shard.queued.contains(admitted.key); });
  }
  Last& last = shard.last[admitted.key];
  bool same = last.score == s.score && last.band == s.band && last.reason_features.size() == s.reasons.size();
  for (std::size_t i = 0; same && i < s.reasons.size(); ++i) same = last.reason_features[i] == s.reasons[i].feature;
  if (same) return admitted;
  admitted.last = &last;
  admitted.moved = last.score != s.score || last.band != s.band;
  return admitted;
}

void PublishedScores::settle(Admission& admitted, const scoring::LeadScore& s, bool queued) {
  *admitted.last = last_of(s);
  if (queued) ++admitted.shard->queued[admitted.key];
}

void PublishedScores::sent(std::span<const std::string> lead_keys) {
  for (const std::string& key : lead_keys) {
    Shard& shard = shard_for(key);
    std::lock_guard lock(shard.mu);
    auto it = shard.queued.find(key);
    if (it == shard.queued.end() || --it->second > 0) continue;
    shard.queued.erase(it);
    shard.sent.notify_all();
  }
}

void PublishedScores::seed(const scoring::LeadScore& s) {
  const std::string key = lead_key(s);
  Last last = last_of(s);
  Shard& shard = shard_for(key);
  std::lock_guard lock(shard.mu);
  shard.last[key] = std::move(last);
}

void PublishedScores::forget(const scoring::LeadScore& s) {
  const std::string key = lead_key(s);
  Shard& shard = shard_for(key);
  std::lock_guard lock(shard.mu);
  shard.last.erase(key);
}

}  // namespace reai::server
