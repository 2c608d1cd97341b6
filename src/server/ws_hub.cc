#include "server/ws_hub.h"

#include "server/codec.h"

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
    for (auto& [tenant, sessions] : sessions_) {
      for (auto& [ptr, weak] : sessions) all.push_back(weak);
    }
  }
  for (auto& weak : all) {
    if (auto s = weak.lock()) s->going_away();
  }
}

void WsHub::join(const std::string& tenant_id, const std::shared_ptr<WsSubscriber>& session) {
  std::lock_guard lock(mu_);
  if (sessions_[tenant_id].emplace(session.get(), session).second) ++total_;
}

void WsHub::leave(const std::string& tenant_id, const WsSubscriber* session) {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(tenant_id);
  if (it == sessions_.end()) return;
  if (it->second.erase(session)) --total_;
  if (it->second.empty()) sessions_.erase(it);
}

std::size_t WsHub::connections(std::string_view tenant_id) const {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(std::string(tenant_id));
  return it == sessions_.end() ? 0 : it->second.size();
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

std::vector<std::weak_ptr<WsSubscriber>> WsHub::snapshot(std::string_view tenant_id) const {
  std::vector<std::weak_ptr<WsSubscriber>> out;
  std::lock_guard lock(mu_);
  auto it = sessions_.find(std::string(tenant_id));
  if (it == sessions_.end()) return out;
  out.reserve(it->second.size());
  for (auto& [ptr, weak] : it->second) out.push_back(weak);
  return out;
}

void WsHub::on_message(const bus::BusMessage& message) {
  auto sessions = snapshot(message.tenant_id);
  if (sessions.empty()) return;
  auto framed = frame(message);
  for (auto& weak : sessions) {
    if (auto s = weak.lock()) s->deliver(message.seq, framed);
  }
}

}  // namespace reai::server
