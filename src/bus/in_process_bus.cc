// In-process Bus: a channel per tenant (seq counter + replay ring) and one
// copy-on-write subscriber list shared by all tenants.
//
// Ordering: a publisher holds its tenant's channel lock while it assigns the
// seq and delivers, so concurrent publishers of one tenant are serialised and
// every subscriber sees 1, 2, 3... in order. Tenants publish in parallel.
#include <deque>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <utility>

#include "bus/bus.h"

namespace reai::bus {
namespace {

struct Subscriber {
  explicit Subscriber(Bus::Handler h) : handler(std::move(h)) {}
  Bus::Handler handler;
  // Held while the handler runs; unsubscribe takes it to wait for a running
  // delivery and to switch `active` off for good.
  std::mutex delivering;
  bool active = true;  // guarded by `delivering`
};

using SubscriberList = std::vector<std::pair<SubscriptionId, std::shared_ptr<Subscriber>>>;

struct Channel {
  std::mutex mu;
  std::uint64_t last_seq = 0;    // guarded by mu
  std::deque<BusMessage> replay;  // guarded by mu; seqs are contiguous
};

// Hashing string_view lookups without building a std::string per publish.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class InProcessBus final : public Bus {
 public:
  explicit InProcessBus(std::size_t replay_capacity)
      : replay_capacity_(replay_capacity), subscribers_(std::make_shared<const SubscriberList>()) {}

  Result<std::uint64_t> publish(std::string_view tenant_id, std::string_view topic,
                                std::shared_ptr<const std::string> payload) override {
    if (tenant_id.empty()) return invalid_argument("publish: empty tenant id");
    // Handlers may dereference the payload unconditionally.
    if (!payload) payload = std::make_shared<const std::string>();
    Channel& channel = channel_for(tenant_id);
    std::lock_guard lock(channel.mu);
    BusMessage message{std::string(tenant_id), ++channel.last_seq, std::string(topic), std::move(payload)};
    remember(channel, message);
    std::shared_ptr<const SubscriberList> subscribers = snapshot();
    for (const auto& [id, subscriber] : *subscribers) deliver(*subscriber, message);
    return message.seq;
  }

  SubscriptionId subscribe(Handler handler) override {
    auto subscriber = std::make_shared<Subscriber>(std::move(handler));
    std::lock_guard lock(subscribers_mu_);
    SubscriptionId id = ++last_subscription_;
    auto next = std::make_shared<SubscriberList>(*subscribers_);
    next->emplace_back(id, std::move(subscriber));
    subscribers_ = std::move(next);
    return id;
  }

  void unsubscribe(SubscriptionId id) override {
    std::shared_ptr<Subscriber> removed;
    {
      std::lock_guard lock(subscribers_mu_);
      auto next = std::make_shared<SubscriberList>();
      for (const auto& entry : *subscribers_) {
        if (entry.first == id) removed = entry.second; else next->push_back(entry);
      }
      if (!removed) return;
      subscribers_ = std::move(next);
    }
    // Publishers holding an older snapshot may still reach this subscriber:
    // waiting for its delivery lock and switching it off fences them out.
    std::lock_guard lock(removed->delivering);
    removed->active = false;
  }

  Result<ReplayResult> since(std::string_view tenant_id, std::uint64_t since_seq) override {
    Channel* channel = find_channel(tenant_id);
    if (channel == nullptr) return ReplayResult{{}, since_seq == 0};
    std::lock_guard lock(channel->mu);
    return replay_after(*channel, since_seq);
  }

  std::uint64_t last_seq(std::string_view tenant_id) override {
    Channel* channel = find_channel(tenant_id);
    if (channel == nullptr) return 0;
    std::lock_guard lock(channel->mu);
    return channel->last_seq;
  }

  Status health() override { return Status::ok(); }

 private:
  static void deliver(Subscriber& subscriber, const BusMessage& message) {
    std::lock_guard lock(subscriber.delivering);
    if (subscriber.active) subscriber.handler(message);
  }

  void remember(Channel& channel, const BusMessage& message) {
    if (replay_capacity_ == 0) return;
    if (channel.replay.size() == replay_capacity_) channel.replay.pop_front();
    channel.replay.push_back(message);
  }

  // Caller holds channel.mu.
  static ReplayResult replay_after(const Channel& channel, std::uint64_t since_seq) {
    ReplayResult result;
    // A client ahead of the bus saw a previous life of it (restart): nothing
    // here relates to what it has, so it must resynchronise.
    if (since_seq > channel.last_seq) {
      result.complete = false;
      return result;
    }
    std::uint64_t oldest = channel.replay.empty() ? channel.last_seq + 1 : channel.replay.front().seq;
    result.complete = since_seq + 1 >= oldest;
    std::uint64_t first = std::max(since_seq + 1, oldest);
    for (auto it = channel.replay.begin() + static_cast<std::ptrdiff_t>(first - oldest);
         it != channel.replay.end(); ++it) {
      result.messages.push_back(*it);
    }
    return result;
  }

  std::shared_ptr<const SubscriberList> snapshot() {
    std::lock_guard lock(subscribers_mu_);
    return subscribers_;
  }

  Channel* find_channel(std::string_view tenant_id) {
    std::shared_lock lock(channels_mu_);
    auto it = channels_.find(tenant_id);
    return it == channels_.end() ? nullptr : it->second.get();
  }

  // Channels are never removed, so the reference outlives the map lock.
  Channel& channel_for(std::string_view tenant_id) {
    if (Channel* existing = find_channel(tenant_id)) return *existing;
    std::unique_lock lock(channels_mu_);
    auto [it, inserted] = channels_.try_emplace(std::string(tenant_id), nullptr);
    if (inserted) it->second = std::make_unique<Channel>();
    return *it->second;
  }

  const std::size_t replay_capacity_;

  std::shared_mutex channels_mu_;
  std::unordered_map<std::string, std::unique_ptr<Channel>, StringHash, std::equal_to<>> channels_;

  std::mutex subscribers_mu_;
  std::shared_ptr<const SubscriberList> subscribers_;  // replaced, never mutated
  SubscriptionId last_subscription_ = 0;               // guarded by subscribers_mu_
};

}  // namespace

std::unique_ptr<Bus> make_in_process_bus(std::size_t replay_capacity) {
  return std::make_unique<InProcessBus>(replay_capacity);
}

}  // namespace reai::bus
