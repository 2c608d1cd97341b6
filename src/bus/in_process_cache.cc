// In-process Cache: LRU lists in independent shards, each behind its own
// mutex, so threads touching different keys rarely contend. Small caches use
// one shard so the LRU bound is exact; large ones split it evenly, which
// bounds the total and approximates global LRU.
#include <atomic>
#include <list>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "bus/bus.h"

namespace reai::bus {
namespace {

constexpr std::size_t kShardedFrom = 4096;  // entries; below: one shard
constexpr std::size_t kShards = 16;

struct Entry {
  std::string key;
  std::string value;
  UnixSeconds expires_at = 0;  // expired once now >= expires_at
};

struct Shard {
  std::mutex mu;
  std::list<Entry> lru;  // most recently used first
  // Keys view the strings held by `lru` nodes, which never move.
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index;
};

class InProcessCache final : public Cache {
 public:
  InProcessCache(const Clock& clock, std::size_t max_entries)
      : clock_(clock),
        shards_(max_entries >= kShardedFrom ? kShards : 1),
        shard_capacity_((max_entries + shards_.size() - 1) / shards_.size()) {}

  std::optional<std::string> get(std::string_view key) override {
    Shard& shard = shard_for(key);
    std::lock_guard lock(shard.mu);
    auto it = shard.index.find(key);
    if (it == shard.index.end()) {
      misses_.fetch_add(1, std::memory_order_relaxed);
      return std::nullopt;
    }
    if (clock_.now() >= it->second->expires_at) {
      remove(shard, it->second);
      misses_.fetch_add(1, std::memory_order_relaxed);
      return std::nullopt;
    }
    shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
    hits_.fetch_add(1, std::memory_order_relaxed);
    return it->second->value;
  }

  void put(std::string_view key, std::string value, UnixSeconds ttl_seconds) override {
    Shard& shard = shard_for(key);
    std::lock_guard lock(shard.mu);
    auto it = shard.index.find(key);
    if (ttl_seconds <= 0) {  // already expired: keeping it would only cost space
      if (it != shard.index.end()) remove(shard, it->second);
      return;
    }
    UnixSeconds expires_at = clock_.now() + ttl_seconds;
    if (it != shard.index.end()) {
      it->second->value = std::move(value);
      it->second->expires_at = expires_at;
      shard.lru.splice(shard.lru.begin(), shard.lru, it->second);
      return;
    }
    shard.lru.push_front(Entry{std::string(key), std::move(value), expires_at});
    shard.index.emplace(shard.lru.front().key, shard.lru.begin());
    entries_.fetch_add(1, std::memory_order_relaxed);
    while (shard.lru.size() > shard_capacity_) remove(shard, std::prev(shard.lru.end()));
  }

  void put_each(std::span<const CachePut> entries) override {
    for (const CachePut& e : entries) put(e.key, e.value, e.ttl_seconds);
  }

  void erase(std::string_view key) override {
    Shard& shard = shard_for(key);
    std::lock_guard lock(shard.mu);
    auto it = shard.index.find(key);
    if (it == shard.index.end()) return;
    auto entry = it->second;
    shard.index.erase(it);  // before the node (which owns the key) goes
    shard.lru.erase(entry);
    entries_.fetch_sub(1, std::memory_order_relaxed);  // not an eviction: asked for
  }

  CacheStats stats() const override {
    CacheStats s;
    s.hits = hits_.load(std::memory_order_relaxed);
    s.misses = misses_.load(std::memory_order_relaxed);
    s.entries = entries_.load(std::memory_order_relaxed);
    s.evictions = evictions_.load(std::memory_order_relaxed);
    return s;
  }

  Status health() override { return Status::ok(); }

 private:
  Shard& shard_for(std::string_view key) {
    if (shards_.size() == 1) return shards_[0];
    return shards_[std::hash<std::string_view>{}(key) % shards_.size()];
  }

  // Drops an entry because it expired or fell off the LRU end.
  void remove(Shard& shard, std::list<Entry>::iterator entry) {
    shard.index.erase(entry->key);  // before the node (which owns the key) goes
    shard.lru.erase(entry);
    entries_.fetch_sub(1, std::memory_order_relaxed);
    evictions_.fetch_add(1, std::memory_order_relaxed);
  }

  const Clock& clock_;
  std::vector<Shard> shards_;
  const std::size_t shard_capacity_;
  std::atomic<std::uint64_t> hits_{0};
  std::atomic<std::uint64_t> misses_{0};
  std::atomic<std::uint64_t> entries_{0};
  std::atomic<std::uint64_t> evictions_{0};
};

}  // namespace

std::unique_ptr<Cache> make_in_process_cache(const Clock& clock, std::size_t max_entries) {
  return std::make_unique<InProcessCache>(clock, max_entries);
}

}  // namespace reai::bus
