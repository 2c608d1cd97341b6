// Hit and miss counts of cache lookups, per tenant and for the process, so
// /api/realtime/performance can say a tenant's own hit rate.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace reai {

struct CacheLookups {
  std::uint64_t hits = 0;
  std::uint64_t misses = 0;
  // Hits over lookups; 0 before any.
  double hit_rate() const { return hits + misses ? double(hits) / double(hits + misses) : 0.0; }
};

// Counts lookups of one kind of cache entry. Thread-safe: count() takes a
// shared lock (an exclusive one only the first time a tenant is counted)
// and two relaxed atomic adds. Tenants are never forgotten (a process
// serves a bounded set of tenants).
class TenantCacheLookups {
 public:
  void count(std::string_view tenant_id, bool hit);
  // The tenant's counts; zeros for a tenant never counted.
  CacheLookups of(std::string_view tenant_id) const;
  // Every tenant's together.
  CacheLookups total() const;

 private:
  struct Counts {
    std::atomic<std::uint64_t> hits{0};
    std::atomic<std::uint64_t> misses{0};
  };
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  static void add(Counts& c, bool hit) { (hit ? c.hits : c.misses).fetch_add(1, std::memory_order_relaxed); }
  static CacheLookups read(const Counts& c) {
    return {c.hits.load(std::memory_order_relaxed), c.misses.load(std::memory_order_relaxed)};
  }

  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, std::unique_ptr<Counts>, Hash, std::equal_to<>> by_tenant_;
  Counts total_;
};

}  // namespace reai
