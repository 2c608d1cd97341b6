// A Bus's channels, one per tenant (private to src/bus): both buses keep
// per-tenant state (seq, replay ring) behind one map with one lock
// discipline, so it lives here once.
//
// Threads: every member is safe from any thread. Lookups take the map's lock
// shared; only the first get() of a tenant takes it exclusively.
// Lifetime: a channel, once created, lives as long as the TenantChannels
// (channels are never removed), so pointers and references handed out stay
// valid after the map's lock is released. What is inside a channel is the
// caller's to guard (its own mutex).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace reai::bus {

template <class Channel>
class TenantChannels {
 public:
  // The tenant's channel, or nullptr if it was never created.
  Channel* find(std::string_view tenant_id) {
    std::shared_lock lock(mu_);
    auto it = channels_.find(tenant_id);
    return it == channels_.end() ? nullptr : it->second.get();
  }

  // The tenant's channel, default-constructed on first use. Concurrent first
  // calls for one tenant all get the same channel.
  Channel& get(std::string_view tenant_id) {
    if (Channel* existing = find(tenant_id)) return *existing;
    std::unique_lock lock(mu_);
    auto [it, inserted] = channels_.try_emplace(std::string(tenant_id), nullptr);
    if (inserted) it->second = std::make_unique<Channel>();
    return *it->second;
  }

  // Every channel with its tenant, as they are now (in no particular
  // order); channels created afterwards are not in it.
  std::vector<std::pair<std::string, Channel*>> all() {
    std::shared_lock lock(mu_);
    std::vector<std::pair<std::string, Channel*>> out;
    out.reserve(channels_.size());
    for (auto& [tenant_id, channel] : channels_) out.emplace_back(tenant_id, channel.get());
    return out;
  }

 private:
  // Looks up a string_view without building a std::string per publish.
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  std::shared_mutex mu_;
  std::unordered_map<std::string, std::unique_ptr<Channel>, StringHash, std::equal_to<>> channels_;
};

}  // namespace reai::bus
