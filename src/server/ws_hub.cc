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

void WsHub::set_linger(WsShard::Clock::duration linger) {
  std::lock_guard lock(mu_);
  linger_ = linger;
  for (auto& shard : shards_) shard->set_linger(linger);
}

WsShard* WsHub::assign_shard(const std::function<std::vector<std::unique_ptr<WsShard>>()>& make) {
  std::lock_guard lock(mu_);
  if (shards_.empty()) {
    shards_ = make();
    for (auto& shard : shards_) shard->set_linger(linger_);
  }
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
  // One copy of the frame per shard: the shards' io threads then never
  // share a reference count, which every deliver and write touches.
  auto framed = wire_frame(message);
  for (std::size_t i = 0; i < groups->size(); ++i) {
    const auto& group = (*groups)[i];
    group.shard->fan_out(group.sessions, message.seq,
                         i + 1 == groups->size() ? std::move(framed) : std::make_shared<const std::string>(*framed));
  }
}

void WsShard::fan_out(std::shared_ptr<const Sessions> sessions, std::uint64_t seq,
                      std::shared_ptr<const std::string> frame) {
  Clock::duration wait{};
  {
    std::lock_guard lock(mu_);
    const std::size_t session_count = sessions ? sessions->size() : 0;
    jobs_.push_back({std::move(sessions), seq, std::move(frame)});
    if (scheduled_) return;
    scheduled_ = true;
    // With a linger, the pump starts no sooner than a window after the last
    // one: whatever arrives in between joins this message's writes.
    if (linger_ > Clock::duration::zero() && pumped_) wait = last_pump_ + window_locked(session_count) - Clock::now();
  }
  if (wait > Clock::duration::zero()) {
    post_after(wait, [this] { pump(); });
  } else {
    post([this] { pump(); });
  }
}

void WsShard::set_linger(Clock::duration linger) {
  std::lock_guard lock(mu_);
  linger_ = std::max(linger, Clock::duration::zero());
}

WsShard::Clock::duration WsShard::window_locked(std::size_t sessions) const {
  if (sessions >= kSessionsForFullLinger) return linger_;
  return linger_ * static_cast<Clock::rep>(sessions) / static_cast<Clock::rep>(kSessionsForFullLinger);
}

std::size_t WsShard::pending_jobs() const {
  std::lock_guard lock(mu_);
  return jobs_.size();
}

// The pump walks a cursor round the active session list. Every active job
// (the first active_ of jobs_, all sharing that list) is handed to each
// session the cursor visits, then one flush(): a job is done when the cursor
// has been once round the list since it became active. A message published
// while a fan-out is in progress becomes active at once, at the cursor: the
// sessions still waiting for the first message get both in one write, and
// the rest get it on the next round, so no message waits for the previous
// one to reach everybody, and the busier the shard, the more messages per
// write. Per session, messages still arrive in queue order.
void WsShard::pump() {
  std::size_t budget = kDeliveriesPerRun;
  std::unique_lock lock(mu_);
  if (linger_ > Clock::duration::zero()) {
    last_pump_ = Clock::now();
    pumped_ = true;
  }
  while (true) {
    activate_locked();
    if (active_ == 0) break;
    const Sessions& sessions = *jobs_.front().sessions;
    if (budget < active_) {
      // Stay scheduled; queue behind whatever else waits on the io threads.
      lock.unlock();
      post([this] { pump(); });
      return;
    }
    // Up to the end of the oldest job's round, so the active set only
    // changes between steps.
    const std::size_t visits =
        std::min(jobs_.front().remaining, std::max<std::size_t>(1, budget / active_));
    budget -= std::min(budget, visits * active_);
    batch_.clear();
    for (std::size_t i = 0; i < active_; ++i) batch_.push_back(&jobs_[i]);
    lock.unlock();
    for (std::size_t i = 0; i < visits; ++i) {
      if (auto s = sessions[cursor_].lock()) {
        for (const Job* job : batch_) s->deliver(job->seq, job->frame);
        s->flush();
      }
      if (++cursor_ == sessions.size()) cursor_ = 0;
    }
    lock.lock();
    for (std::size_t i = 0; i < active_; ++i) jobs_[i].remaining -= visits;
    while (active_ > 0 && jobs_.front().remaining == 0) {
      jobs_.pop_front();
      --active_;
    }
  }
  batch_.clear();
  scheduled_ = false;
}

// Makes waiting jobs that share the active jobs' session list active (all
// of them when none is), up to kMaxJobsPerBatch.
void WsShard::activate_locked() {
  while (active_ < jobs_.size() && active_ < kMaxJobsPerBatch) {
    Job& job = jobs_[active_];
    if (active_ > 0 && job.sessions != jobs_.front().sessions) break;
    if (active_ == 0 && cursor_ >= job.sessions->size()) cursor_ = 0;
    job.remaining = job.sessions->size();
    if (job.remaining == 0) {
      jobs_.pop_front();  // nobody to deliver to
      continue;
    }
    ++active_;
  }
}

}  // namespace reai::server
