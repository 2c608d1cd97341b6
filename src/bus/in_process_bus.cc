// In-process Bus: a channel per tenant (seq counter + replay ring) and one
// copy-on-write subscriber list shared by all tenants; notices go to a
// subscriber list of their own, with no channel.
//
// Ordering: a publisher holds its tenant's channel lock while it assigns the
// seq and delivers, so concurrent publishers of one tenant are serialised and
// every subscriber sees 1, 2, 3... in order. Tenants publish in parallel.
#include <algorithm>
#include <deque>
#include <mutex>
#include <utility>

#include "bus/bus.h"
#include "bus/subscriber_set.h"
#include "bus/tenant_channels.h"

namespace reai::bus {
namespace {

struct Channel {
  std::mutex mu;
  std::uint64_t last_seq = 0;    // guarded by mu
  std::deque<BusMessage> replay;  // guarded by mu; seqs are contiguous
};

class InProcessBus final : public Bus {
 public:
  explicit InProcessBus(std::size_t replay_capacity)
      : replay_capacity_(replay_capacity) {}

  Result<std::uint64_t> publish(std::string_view tenant_id, std::string_view topic,
                                std::shared_ptr<const std::string> payload) override {
    if (tenant_id.empty()) return invalid_argument("publish: empty tenant id");
    // Handlers may dereference the payload unconditionally.
    if (!payload) payload = std::make_shared<const std::string>();
    Channel& channel = channels_.get(tenant_id);
    std::lock_guard lock(channel.mu);
    BusMessage message{std::string(tenant_id), ++channel.last_seq, std::string(topic), std::move(payload)};
    remember(channel, message);
    subscribers_.deliver(message);
    return message.seq;
  }

  Result<std::vector<std::uint64_t>> publish_each(std::span<const Outgoing> messages) override {
    return publish_each_alone(*this, messages);
  }

  SubscriptionId subscribe(Handler handler) override { return subscribers_.subscribe(std::move(handler)); }

  void unsubscribe(SubscriptionId id) override { subscribers_.unsubscribe(id); }

  Result<ReplayResult> since(std::string_view tenant_id, std::uint64_t since_seq) override {
    Channel* channel = channels_.find(tenant_id);
    if (channel == nullptr) return ReplayResult{{}, since_seq == 0};
    std::lock_guard lock(channel->mu);
    return replay_after(*channel, since_seq);
  }

  std::uint64_t last_seq(std::string_view tenant_id) override {
    Channel* channel = channels_.find(tenant_id);
    if (channel == nullptr) return 0;
    std::lock_guard lock(channel->mu);
    return channel->last_seq;
  }

  Status health() override { return Status::ok(); }

  Status notify(std::string_view tenant_id, std::string_view topic,
                std::shared_ptr<const std::string> payload) override {
    if (tenant_id.empty()) return invalid_argument("notify: empty tenant id");
    if (!payload) payload = std::make_shared<const std::string>();
    notices_.deliver(BusMessage{std::string(tenant_id), 0, std::string(topic), std::move(payload)});
    return Status::ok();
  }

  SubscriptionId subscribe_notices(Handler handler) override { return notices_.subscribe(std::move(handler)); }

  void unsubscribe_notices(SubscriptionId id) override { notices_.unsubscribe(id); }

 private:
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

  const std::size_t replay_capacity_;

  TenantChannels<Channel> channels_;

  SubscriberSet subscribers_;
  SubscriberSet notices_;  // apart: no seq, no replay, never the hub's
};

}  // namespace

Result<std::vector<std::uint64_t>> publish_each_alone(Bus& bus, std::span<const Outgoing> messages) {
  for (const Outgoing& m : messages) {
    if (m.tenant_id.empty()) return invalid_argument("publish_each: empty tenant id");
  }
  std::vector<std::uint64_t> seqs;
  seqs.reserve(messages.size());
  for (const Outgoing& m : messages) {
    auto seq = bus.publish(m.tenant_id, m.topic, m.payload);
    if (!seq) return seq.status();
    seqs.push_back(*seq);
  }
  return seqs;
}

std::unique_ptr<Bus> make_in_process_bus(std::size_t replay_capacity) {
  return std::make_unique<InProcessBus>(replay_capacity);
}

}  // namespace reai::bus
