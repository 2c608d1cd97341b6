#include "server/ws_hub.h"

#include <algorithm>

#include "server/codec.h"
#include "server/ws_frame.h"

namespace reai::server {

WsHub::WsHub(bus::Bus& bus) : bus_(bus) {}

WsHub::~WsHub() { stop(); }

void WsHub::start() {
  subscription_ = bus_.subscribe([this](const bus::BusMessage& m) { on_message(m); });
  subscribed_ = true;
}

void WsHub::stop() {
  if (subscribed_) {
    bus_.unsubscribe(subscription_);
    subscribed_ = false;
  }
  std::vector<std::weak_ptr<WsSubscriber>> all;
  {
    std::lock_guard lock(mu_);
    for (auto& [id, tenant] : tenants_) {
      for (auto& [ptr, weak] : tenant.members) all.push_back(weak);
    }
  }
  for (auto& weak : all) {
    if (auto s = weak.lock()) s->going_away();
  }
}

void WsHub::join(const std::string& tenant_id, const std::shared_ptr<WsSubscriber>& session) {
  std::lock_guard lock(mu_);
  Tenant& tenant = tenants_[tenant_id];
  if (tenant.members.emplace(session.get(), session).second) {
    ++total_;
    tenant.groups.reset();
  }
}

void WsHub::leave(const std::string& tenant_id, const WsSubscriber* session) {
  std::lock_guard lock(mu_);
  auto it = tenants_.find(tenant_id);
  if (it == tenants_.end()) return;
  if (it->second.members.erase(session)) {
    --total_;
    it->second.groups.reset();
  }
  if (it->second.members.empty()) tenants_.erase(it);
}

std::size_t WsHub::connections(std::string_view tenant_id) const {
  std::lock_guard lock(mu_);
  auto it = tenants_.find(std::string(tenant_id));
  return it == tenants_.end() ? 0 : it->second.members.size();
}

std::size_t WsHub::total_connections() const {
  std::lock_guard lock(mu_);
  return total_;
}

std::shared_ptr<const std::string> WsHub::frame(const bus::BusMessage& message) {
  auto out = std::make_shared<std::string>();
  const std::string& payload = message.payload ? *message.payload : std::string();
  out->reserve(payload.size() + 48);
  out->append("{\"type\":");
  append_json_string(message.topic, out.get());
  out->append(",\"seq\":");
  out->append(std::to_string(message.seq));
  // The payload is a JSON object: splice its fields after ours.
  const auto brace = payload.find('{');
  if (brace != std::string::npos && payload.find_first_not_of(" \t\r\n", brace + 1) != std::string::npos &&
      payload[payload.find_first_not_of(" \t\r\n", brace + 1)] != '}') {
    out->push_back(',');
    out->append(payload, brace + 1);
  } else {
    out->push_back('}');
  }
  return out;
}

std::shared_ptr<const std::string> WsHub::wire_frame(const bus::BusMessage& message) {
  return std::make_shared<const std::string>(encode_ws_frame(WsOpcode::kText, *frame(message)));
}

WsShard* WsHub::assign_shard(const std::function<std::vector<std::unique_ptr<WsShard>>()>& make) {
  std::lock_guard lock(mu_);
  if (shards_.empty()) shards_ = make();
  if (shards_.empty()) return nullptr;
  return shards_[next_shard_++ % shards_.size()].get();
}

std::shared_ptr<const std::vector<WsHub::ShardGroup>> WsHub::groups_of(std::string_view tenant_id) {
  std::lock_guard lock(mu_);
  auto it = tenants_.find(std::string(tenant_id));
  if (it == tenants_.end()) return nullptr;
  Tenant& tenant = it->second;
  if (tenant.groups) return tenant.groups;
  std::unordered_map<WsShard*, std::shared_ptr<WsShard::Sessions>> by_shard;
  for (auto& [ptr, weak] : tenant.members) {
    auto& list = by_shard[ptr->shard()];
    if (!list) list = std::make_shared<WsShard::Sessions>();
    list->push_back(weak);
  }
  auto groups = std::make_shared<std::vector<ShardGroup>>();
  groups->reserve(by_shard.size());
  for (auto& [shard, list] : by_shard) groups->push_back({shard, std::move(list)});
  tenant.groups = std::move(groups);
  return tenant.groups;
}

void WsHub::on_message(const bus::BusMessage& message) {
  auto groups = groups_of(message.tenant_id);
  if (!groups) return;
  auto framed = wire_frame(message);
  for (const auto& group : *groups) group.shard->fan_out(group.sessions, message.seq, framed);
}

void WsShard::fan_out(std::shared_ptr<const Sessions> sessions, std::uint64_t seq,
                      std::shared_ptr<const std::string> frame) {
  {
    std::lock_guard lock(mu_);
    jobs_.push_back({std::move(sessions), seq, std::move(frame)});
    if (scheduled_) return;
    scheduled_ = true;
  }
  post([this] { pump(); });
}

std::size_t WsShard::pending_jobs() const {
  std::lock_guard lock(mu_);
  return jobs_.size();
}

void WsShard::pump() {
  std::size_t budget = kDeliveriesPerRun;
  std::unique_lock lock(mu_);
  while (!jobs_.empty()) {
    if (batch_.empty()) {
      // Only the pump pops, and push_back keeps references valid.
      const auto& sessions = jobs_.front().sessions;
      for (std::size_t i = 0; i < jobs_.size() && i < kMaxJobsPerBatch && jobs_[i].sessions == sessions; ++i) {
        batch_.push_back(&jobs_[i]);
      }
    }
    if (budget < batch_.size()) {
      // Stay scheduled; queue behind whatever else waits on the io threads.
      lock.unlock();
      post([this] { pump(); });
      return;
    }
    lock.unlock();
    const Sessions& sessions = *batch_.front()->sessions;
    const std::size_t end = std::min(sessions.size(), next_session_ + budget / batch_.size());
    budget -= (end - next_session_) * batch_.size();
    for (; next_session_ < end; ++next_session_) {
      auto s = sessions[next_session_].lock();
      if (!s) continue;
      for (const Job* job : batch_) s->deliver(job->seq, job->frame);
      s->flush();
    }
    lock.lock();
    if (next_session_ == sessions.size()) {
      jobs_.erase(jobs_.begin(), jobs_.begin() + static_cast<std::ptrdiff_t>(batch_.size()));
      batch_.clear();
      next_session_ = 0;
    }
  }
  scheduled_ = false;
}

}  // namespace reai::server
