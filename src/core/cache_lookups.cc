#include "core/cache_lookups.h"

#include <mutex>

namespace reai {

void TenantCacheLookups::count(std::string_view tenant_id, bool hit) {
  add(total_, hit);
  {
    std::shared_lock lock(mu_);
    if (auto it = by_tenant_.find(tenant_id); it != by_tenant_.end()) {
      add(*it->second, hit);
      return;
    }
  }
  std::unique_lock lock(mu_);
  auto [it, inserted] = by_tenant_.try_emplace(std::string(tenant_id), nullptr);
  if (inserted) it->second = std::make_unique<Counts>();
  add(*it->second, hit);
}

CacheLookups TenantCacheLookups::of(std::string_view tenant_id) const {
  std::shared_lock lock(mu_);
  auto it = by_tenant_.find(tenant_id);
  return it == by_tenant_.end() ? CacheLookups{} : read(*it->second);
}

CacheLookups TenantCacheLookups::total() const { return read(total_); }

}  // namespace reai
