// WsHub: the tenant -> WebSocket sessions registry and the server's one bus
// subscription. Each bus message is framed once ({"type":..,"seq":N,...})
// and handed to every session of its tenant; sessions are snapshotted under
// the lock and fed outside it, so a slow session never blocks a publisher.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bus/bus.h"

namespace reai::server {

// What the hub needs from a session (implemented by the Beast session).
class WsSubscriber {
 public:
  virtual ~WsSubscriber() = default;
  // Queues a framed message; called from any thread; must not block.
  virtual void deliver(std::uint64_t seq, std::shared_ptr<const std::string> frame) = 0;
  // Closes with 1001 (server going away); any thread.
  virtual void going_away() = 0;
};

class WsHub {
 public:
  explicit WsHub(bus::Bus& bus);
  ~WsHub();
  // Subscribes to the bus; call once before sessions join.
  void start();
  // Unsubscribes and tells every session to go away.
  void stop();
  void join(const std::string& tenant_id, const std::shared_ptr<WsSubscriber>& session);
  void leave(const std::string& tenant_id, const WsSubscriber* session);
  std::size_t connections(std::string_view tenant_id) const;
  std::size_t total_connections() const;

  // {"type":"<topic>","seq":N,<payload fields>} (payload is a JSON object).
  static std::shared_ptr<const std::string> frame(const bus::BusMessage& message);

 private:
  void on_message(const bus::BusMessage& message);
  std::vector<std::weak_ptr<WsSubscriber>> snapshot(std::string_view tenant_id) const;

  bus::Bus& bus_;
  std::uint64_t subscription_ = 0;
  bool subscribed_ = false;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::unordered_map<const WsSubscriber*, std::weak_ptr<WsSubscriber>>> sessions_;
  std::size_t total_ = 0;
};

}  // namespace reai::server
