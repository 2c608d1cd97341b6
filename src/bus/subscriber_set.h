// The subscribers of a Bus (private to src/bus): a copy-on-write list, so a
// publisher delivers from a snapshot without holding the registry's lock,
// and unsubscribe fences out publishers still holding an older snapshot.
#pragma once

#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "bus/bus.h"

namespace reai::bus {

class SubscriberSet {
 public:
  SubscriberSet() : list_(std::make_shared<const List>()) {}

  // Thread-safe. The handler runs on publishers' threads, one delivery at a
  // time per subscriber.
  SubscriptionId subscribe(Bus::Handler handler) {
    auto subscriber = std::make_shared<Subscriber>(std::move(handler));
    std::lock_guard lock(mu_);
    const SubscriptionId id = ++last_id_;
    auto next = std::make_shared<List>(*list_);
    next->emplace_back(id, std::move(subscriber));
    list_ = std::move(next);
    return id;
  }

  // Thread-safe; an unknown id is ignored. On return the handler is not
  // running and will not run again (waits for a delivery in progress), so it
  // must not be called from inside that subscriber's own handler.
  void unsubscribe(SubscriptionId id) {
    std::shared_ptr<Subscriber> removed;
    {
      std::lock_guard lock(mu_);
      auto next = std::make_shared<List>();
      for (const auto& entry : *list_) {
        if (entry.first == id) removed = entry.second; else next->push_back(entry);
      }
      if (!removed) return;
      list_ = std::move(next);
    }
    std::lock_guard lock(removed->delivering);
    removed->active = false;
  }

  // Hands `message` to every current subscriber, in subscription order.
  void deliver(const BusMessage& message) {
    std::shared_ptr<const List> snapshot;
    {
      std::lock_guard lock(mu_);
      snapshot = list_;
    }
    for (const auto& [id, subscriber] : *snapshot) {
      std::lock_guard lock(subscriber->delivering);
      if (subscriber->active) subscriber->handler(message);
    }
  }

 private:
  struct Subscriber {
    explicit Subscriber(Bus::Handler h) : handler(std::move(h)) {}
    Bus::Handler handler;
    std::mutex delivering;  // held while the handler runs
    bool active = true;     // guarded by `delivering`
  };
  using List = std::vector<std::pair<SubscriptionId, std::shared_ptr<Subscriber>>>;

  std::mutex mu_;
  std::shared_ptr<const List> list_;  // replaced, never mutated
  SubscriptionId last_id_ = 0;        // guarded by mu_
};

}  // namespace reai::bus
