// Redis Bus. Keys (P = the deployment prefix):
//   P seq:T  - tenant T's last seq (INCR)
//   P bus:T  - tenant T's replay stream, entry ids "SEQ-0", capped ~capacity
//   P bus    - every tenant's messages in publish order, read by all instances,
//              and the notices (field notice=1, no seq: an older reader that
//              finds seq 0 drops them)
// Seqs: INCR rather than stream ids, because clients count 1, 2, 3 per tenant
// with no gaps; one Lua script does INCR + both XADDs, so stream order is seq
// order. Streams rather than PUBLISH: a reader that lost its connection
// resumes from the last id it read instead of losing what was sent meanwhile,
// and `since` is a range read on any instance.
//
// Local side: a channel per tenant (last delivered seq + a ring of what this
// instance delivered), used for delivery order and as the fallback while
// Redis is down. Every delivery to handlers happens under the channel lock in
// strictly increasing seq, whether it came from the reader or a local publish.
#include <algorithm>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include "bus/bus.h"
#include "bus/redis_connection.h"
#include "bus/subscriber_set.h"
#include "bus/tenant_channels.h"

namespace reai::bus {
namespace {

using redis::Connection;
using redis::Reply;

// KEYS: seq, tenant stream, global stream. ARGV: topic, payload, tenant cap,
// global cap, tenant.
const redis::LuaScript kPublishScript(R"lua(
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], seq .. '-0', 't', ARGV[1], 'p', ARGV[2])
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], '*', 'tenant', ARGV[5], 'seq', seq, 't', ARGV[1], 'p', ARGV[2])
return seq
)lua");

// kPublishScript for each of a batch's messages, in order, in one call.
// KEYS: global stream, then per message its tenant's seq and stream. ARGV:
// tenant cap, global cap, then per message topic, payload, tenant. Returns
// the seqs in order.
const redis::LuaScript kPublishEachScript(R"lua(
local seqs = {}
for i = 1, (#KEYS - 1) / 2 do
  local a = 3 * i
  local seq = redis.call('INCR', KEYS[2 * i])
  redis.call('XADD', KEYS[2 * i + 1], 'MAXLEN', '~', ARGV[1], seq .. '-0', 't', ARGV[a], 'p', ARGV[a + 1])
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'tenant', ARGV[a + 2], 'seq', seq, 't', ARGV[a], 'p', ARGV[a + 1])
  seqs[i] = seq
end
return seqs
)lua");

// KEYS: seq, tenant stream. ARGV: since, capacity.
// Returns {last, oldest seq still replayable, entries after since}.
const redis::LuaScript kSinceScript(R"lua(
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
local since = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
if since > last then return {last, 0, {}} end
local oldest = last + 1
local head = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
if #head > 0 then oldest = tonumber(string.match(head[1][1], '^(%d+)')) end
if oldest < last - cap + 1 then oldest = last - cap + 1 end
local from = math.max(since + 1, oldest)
local entries = {}
if from <= last then entries = redis.call('XRANGE', KEYS[2], from .. '-0', '+') end
return {last, oldest, entries}
)lua");

// KEYS: seq. ARGV: floor. Never lowers a counter another instance advanced.
const redis::LuaScript kRaiseScript(R"lua(
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if cur < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return cur
)lua");

constexpr std::size_t kGlobalStreamCap = 100000;
constexpr auto kCommandTimeout = std::chrono::milliseconds(2000);
constexpr auto kReaderTimeout = std::chrono::milliseconds(3000);  // > XREAD BLOCK
constexpr std::string_view kReadBlockMs = "1000";
constexpr auto kOwnDeliveryWait = std::chrono::milliseconds(2000);
constexpr auto kMinBackoff = std::chrono::milliseconds(50);
constexpr auto kMaxBackoff = std::chrono::milliseconds(2000);

struct Channel {
  std::mutex mu;
  std::condition_variable delivered;  // last advanced
  std::uint64_t last = 0;             // highest seq delivered here
  std::deque<BusMessage> ring;        // what was delivered here, oldest first
};

std::uint64_t to_u64(std::string_view s) {
  std::uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

// The value of `name` in a stream entry's [field, value, ...] array.
std::string field(const redisReply* fields, std::string_view name) {
  if (fields == nullptr || fields->type != REDIS_REPLY_ARRAY) return {};
  for (std::size_t i = 0; i + 1 < fields->elements; i += 2) {
    if (redis::reply_string(fields->element[i]) == name) return redis::reply_string(fields->element[i + 1]);
  }
  return {};
}

class RedisBus final : public Bus {
 public:
  RedisBus(RedisEndpoint endpoint, std::size_t replay_capacity)
      : endpoint_(std::move(endpoint)),
        capacity_(replay_capacity),
        global_key_(endpoint_.prefix + "bus") {
    // Connected before the first publish when Redis is there, so a message
    // published right after construction is read back by this instance.
    Status first = recover();
    if (!first) mark_down(first.message());
    reader_ = std::thread([this] { read_loop(); });
  }

  ~RedisBus() override {
    {
      std::lock_guard lock(stop_mu_);
      stopping_ = true;
    }
    stop_cv_.notify_all();
    reader_conn_.interrupt();
    reader_.join();
  }

  Result<std::uint64_t> publish(std::string_view tenant_id, std::string_view topic,
                                std::shared_ptr<const std::string> payload) override {
    if (tenant_id.empty()) return invalid_argument("publish: empty tenant id");
    if (!payload) payload = std::make_shared<const std::string>();
    Channel& channel = channels_.get(tenant_id);
    for (;;) {
      if (up_.load()) {
        if (auto seq = publish_remote(tenant_id, topic, *payload)) {
          wait_for_own_delivery(channel, *seq, std::chrono::steady_clock::now() + kOwnDeliveryWait);
          return *seq;
        }
      }
      std::shared_lock mode(mode_mu_);
      if (up_.load()) continue;  // Redis came back meanwhile: it assigns the seq
      return publish_local(channel, tenant_id, topic, std::move(payload));
    }
  }

  Result<std::vector<std::uint64_t>> publish_each(std::span<const Outgoing> messages) override {
    for (const Outgoing& m : messages) {
      if (m.tenant_id.empty()) return invalid_argument("publish_each: empty tenant id");
    }
    if (messages.empty()) return std::vector<std::uint64_t>{};
    if (up_.load()) {
      if (auto seqs = publish_remote_each(messages)) {
        wait_for_own_delivery_each(messages, *seqs);
        return std::move(*seqs);
      }
    }
    // Redis down (or it went away during the call): each alone, as publish()
    // does it, so the degraded behaviour is publish()'s exactly.
    return publish_each_alone(*this, messages);
  }

  SubscriptionId subscribe(Handler handler) override { return subscribers_.subscribe(std::move(handler)); }

  void unsubscribe(SubscriptionId id) override { subscribers_.unsubscribe(id); }

  Result<ReplayResult> since(std::string_view tenant_id, std::uint64_t since_seq) override {
    if (up_.load()) {
      if (auto remote = since_remote(tenant_id, since_seq)) return std::move(*remote);
    }
    Channel* channel = channels_.find(tenant_id);
    if (channel == nullptr) return ReplayResult{{}, since_seq == 0};
    std::lock_guard lock(channel->mu);
    return since_local(*channel, since_seq);
  }

  std::uint64_t last_seq(std::string_view tenant_id) override {
    if (up_.load()) {
      std::string key = seq_key(tenant_id);
      std::lock_guard lock(pub_mu_);
      auto reply = pub_conn_.command({"GET", key});
      if (reply) return redis::reply_integer(reply->get());
      mark_down(reply.status().message());
    }
    Channel* channel = channels_.find(tenant_id);
    if (channel == nullptr) return 0;
    std::lock_guard lock(channel->mu);
    return channel->last;
  }

  Status notify(std::string_view tenant_id, std::string_view topic,
                std::shared_ptr<const std::string> payload) override {
    if (tenant_id.empty()) return invalid_argument("notify: empty tenant id");
    Notice notice{std::string(tenant_id), std::string(topic), payload ? std::move(payload) : std::make_shared<const std::string>()};
    if (up_.load() && send_notice(notice)) return Status::ok();
    {
      std::lock_guard lock(hold_mu_);
      if (held_.size() >= capacity_) {
        return resource_exhausted("redis bus down and " + std::to_string(capacity_) + " notices held: notice dropped");
      }
      held_.push_back(std::move(notice));
    }
    // Redis may have come back (and the hold been sent) since up_ was read.
    if (up_.load()) (void)send_held();  // a failure marks the bus down; the rest waits
    return Status::ok();
  }

  SubscriptionId subscribe_notices(Handler handler) override { return notices_.subscribe(std::move(handler)); }

  void unsubscribe_notices(SubscriptionId id) override { notices_.unsubscribe(id); }

  Status health() override {
    if (up_.load()) return Status::ok();
    std::lock_guard lock(reason_mu_);
    return unavailable("redis bus down (" + down_reason_ + "); delivering to this instance's clients only");
  }

 private:
  std::string seq_key(std::string_view tenant) const { return endpoint_.prefix + "seq:" + std::string(tenant); }
  std::string stream_key(std::string_view tenant) const {
    return endpoint_.prefix + "bus:" + std::string(tenant);
  }

  struct Notice {
    std::string tenant;
    std::string topic;
    std::shared_ptr<const std::string> payload;
  };

  // The reply's error (and the bus marked down) when Redis did not take it.
  Status send_notice(const Notice& n) {
    const std::string cap = std::to_string(kGlobalStreamCap);
    std::lock_guard lock(pub_mu_);
    auto reply = pub_conn_.command({"XADD", global_key_, "MAXLEN", "~", cap, "*", "tenant", n.tenant, "notice", "1",
                                    "t", n.topic, "p", *n.payload});
    if (!reply) {
      mark_down(reply.status().message());
      return reply.status();
    }
    return Status::ok();
  }

  // Sends what was held while Redis was down, oldest first; stops (keeping
  // the rest) if Redis goes away again, answering why.
  Status send_held() {
    std::lock_guard lock(hold_mu_);
    while (!held_.empty() && up_.load()) {
      REAI_RETURN_IF_ERROR(send_notice(held_.front()));
      held_.pop_front();
    }
    return Status::ok();
  }

  void mark_down(const std::string& reason) {
    {
      std::lock_guard lock(reason_mu_);
      down_reason_ = reason;
    }
    up_.store(false);
    // Publishers waiting for the reader give up and deliver locally.
    for (auto& [tenant, channel] : channels_.all()) {
      std::lock_guard lock(channel->mu);
      channel->delivered.notify_all();
    }
  }

  // The seq Redis assigned, or nullopt (and the bus marked down).
  std::optional<std::uint64_t> publish_remote(std::string_view tenant, std::string_view topic,
                                              std::string_view payload) {
    const std::string keys[] = {seq_key(tenant), stream_key(tenant)};
    const std::string tenant_cap = std::to_string(std::max<std::size_t>(capacity_, 1));
    const std::string global_cap = std::to_string(kGlobalStreamCap);
    std::lock_guard lock(pub_mu_);
    auto reply = pub_conn_.eval(kPublishScript, {"3", keys[0], keys[1], global_key_, topic, payload,
                                    tenant_cap, global_cap, tenant});
    if (!reply) {
      mark_down(reply.status().message());
      return std::nullopt;
    }
    return static_cast<std::uint64_t>(redis::reply_integer(reply->get()));
  }

  // The seqs Redis assigned to `messages`, in order, or nullopt (and the bus
  // marked down).
  std::optional<std::vector<std::uint64_t>> publish_remote_each(std::span<const Outgoing> messages) {
    static const std::string kEmpty;
    std::vector<std::string> keys;
    keys.reserve(2 * messages.size());
    for (const Outgoing& m : messages) {
      keys.push_back(seq_key(m.tenant_id));
      keys.push_back(stream_key(m.tenant_id));
    }
    const std::string numkeys = std::to_string(1 + keys.size());
    const std::string tenant_cap = std::to_string(std::max<std::size_t>(capacity_, 1));
    const std::string global_cap = std::to_string(kGlobalStreamCap);
    std::vector<std::string_view> args;
    args.reserve(4 + 5 * messages.size());
    args.insert(args.end(), {numkeys, global_key_});
    args.insert(args.end(), keys.begin(), keys.end());
    args.insert(args.end(), {tenant_cap, global_cap});
    for (const Outgoing& m : messages) {
      args.insert(args.end(), {m.topic, m.payload ? std::string_view(*m.payload) : kEmpty, m.tenant_id});
    }
    Reply reply;
    {
      std::lock_guard lock(pub_mu_);
      auto r = pub_conn_.eval(kPublishEachScript, args);
      if (!r) {
        mark_down(r.status().message());
        return std::nullopt;
      }
      reply = std::move(*r);
    }
    const redisReply* seqs = reply.get();
    if (seqs->type != REDIS_REPLY_ARRAY || seqs->elements != messages.size()) {
      mark_down("publish_each: unexpected reply");
      return std::nullopt;
    }
    std::vector<std::uint64_t> out;
    out.reserve(messages.size());
    for (std::size_t i = 0; i < seqs->elements; ++i) {
      out.push_back(static_cast<std::uint64_t>(redis::reply_integer(seqs->element[i])));
    }
    return out;
  }

  // Waits for each tenant's last message of the batch, the batch's last
  // first. The reader delivers the global stream in order and a batch's
  // messages are contiguous in it, so once the last is delivered here so
  // are the others: the other waits return at once. One deadline for the
  // whole batch: a lagging reader costs the caller (who holds the batch's
  // leases) at most what one publish() would, however many tenants.
  void wait_for_own_delivery_each(std::span<const Outgoing> messages, const std::vector<std::uint64_t>& seqs) {
    const auto deadline = std::chrono::steady_clock::now() + kOwnDeliveryWait;
    std::vector<std::string_view> waited;
    for (std::size_t i = messages.size(); i-- > 0;) {
      const std::string_view tenant = messages[i].tenant_id;
      if (std::find(waited.begin(), waited.end(), tenant) != waited.end()) continue;
      waited.push_back(tenant);
      wait_for_own_delivery(channels_.get(tenant), seqs[i], deadline);
    }
  }

  // The reader delivers this instance's own messages too, which keeps one
  // order per tenant; publish returns once it has (or Redis went away, or
  // the deadline passed).
  void wait_for_own_delivery(Channel& channel, std::uint64_t seq,
                             std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(channel.mu);
    channel.delivered.wait_until(lock, deadline, [&] { return channel.last >= seq || !up_.load(); });
  }

  // Redis is down: the next local seq, delivered here only. Recovery raises
  // Redis's counter past it so seqs never run backwards for these clients.
  std::uint64_t publish_local(Channel& channel, std::string_view tenant, std::string_view topic,
                              std::shared_ptr<const std::string> payload) {
    std::lock_guard lock(channel.mu);
    BusMessage message{std::string(tenant), channel.last + 1, std::string(topic), std::move(payload)};
    deliver_locked(channel, message);
    return message.seq;
  }

  // Caller holds channel.mu. Drops what is not newer than what was delivered
  // (a resync follows any such divergence).
  void deliver_locked(Channel& channel, const BusMessage& message) {
    if (message.seq <= channel.last) return;
    channel.last = message.seq;
    if (capacity_ > 0) {
      if (channel.ring.size() >= capacity_) channel.ring.pop_front();
      channel.ring.push_back(message);
    }
    subscribers_.deliver(message);
    channel.delivered.notify_all();
  }

  std::optional<ReplayResult> since_remote(std::string_view tenant, std::uint64_t since_seq) {
    const std::string keys[] = {seq_key(tenant), stream_key(tenant)};
    const std::string since_arg = std::to_string(since_seq);
    const std::string cap = std::to_string(capacity_);
    Reply reply;
    {
      std::lock_guard lock(pub_mu_);
      auto r = pub_conn_.eval(kSinceScript, {"2", keys[0], keys[1], since_arg, cap});
      if (!r) {
        mark_down(r.status().message());
        return std::nullopt;
      }
      reply = std::move(*r);
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) return std::nullopt;
    const std::uint64_t last = static_cast<std::uint64_t>(redis::reply_integer(reply->element[0]));
    const std::uint64_t oldest = static_cast<std::uint64_t>(redis::reply_integer(reply->element[1]));
    ReplayResult result;
    if (since_seq > last) {
      result.complete = false;
      return result;
    }
    result.complete = since_seq + 1 >= oldest;
    const redisReply* entries = reply->element[2];
    for (std::size_t i = 0; entries->type == REDIS_REPLY_ARRAY && i < entries->elements; ++i) {
      const redisReply* entry = entries->element[i];
      if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2) continue;
      const std::string id = redis::reply_string(entry->element[0]);
      BusMessage m{std::string(tenant), to_u64(id.substr(0, id.find('-'))), field(entry->element[1], "t"),
                   std::make_shared<const std::string>(field(entry->element[1], "p"))};
      result.messages.push_back(std::move(m));
    }
    return result;
  }

  // Caller holds channel.mu. The ring may have holes where messages were
  // dropped; a replay across a hole is incomplete.
  static ReplayResult since_local(const Channel& channel, std::uint64_t since_seq) {
    ReplayResult result;
    if (since_seq > channel.last) {
      result.complete = false;
      return result;
    }
    std::uint64_t expected = since_seq + 1;
    for (const BusMessage& m : channel.ring) {
      if (m.seq <= since_seq) continue;
      if (m.seq != expected) result.complete = false;
      expected = m.seq + 1;
      result.messages.push_back(m);
    }
    if (expected != channel.last + 1) result.complete = false;
    return result;
  }

  // --- reader thread -------------------------------------------------------

  void read_loop() {
    auto backoff = kMinBackoff;
    while (!stopping()) {
      if (!up_.load() || !reader_conn_.connected()) {
        Status recovered = recover();
        if (!recovered) {
          mark_down(recovered.message());
          sleep_for(backoff);
          backoff = std::min(backoff * 2, kMaxBackoff);
          continue;
        }
        backoff = kMinBackoff;
      }
      auto reply = reader_conn_.command({"XREAD", "COUNT", "512", "BLOCK", kReadBlockMs, "STREAMS", global_key_, last_id_});
      if (!reply) {
        if (stopping()) return;
        mark_down(reply.status().message());
        reader_conn_.close();
        continue;
      }
      deliver_batch(reply->get());
    }
  }

  // XREAD reply: [[stream, [[id, [field, value, ...]], ...]]]; nil on timeout.
  void deliver_batch(const redisReply* reply) {
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) return;
    const redisReply* stream = reply->element[0];
    if (stream->type != REDIS_REPLY_ARRAY || stream->elements != 2) return;
    const redisReply* entries = stream->element[1];
    for (std::size_t i = 0; entries->type == REDIS_REPLY_ARRAY && i < entries->elements; ++i) {
      const redisReply* entry = entries->element[i];
      if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2) continue;
      last_id_ = redis::reply_string(entry->element[0]);
      const redisReply* fields = entry->element[1];
      if (field(fields, "notice") == "1") {
        BusMessage notice{field(fields, "tenant"), 0, field(fields, "t"),
                          std::make_shared<const std::string>(field(fields, "p"))};
        if (!notice.tenant_id.empty()) notices_.deliver(notice);
        continue;
      }
      BusMessage m{field(fields, "tenant"), to_u64(field(fields, "seq")), field(fields, "t"),
                   std::make_shared<const std::string>(field(fields, "p"))};
      if (m.tenant_id.empty()) continue;
      Channel& channel = channels_.get(m.tenant_id);
      std::lock_guard lock(channel.mu);
      deliver_locked(channel, m);
    }
  }

  // (Re)connects both connections, raises Redis's counters to what this
  // instance delivered, switches publishing back to Redis, and asks every
  // tenant's clients (on all instances) to resynchronise: during the outage
  // this instance's and the others' updates did not reach each other.
  Status recover() {
    if (!reader_conn_.connected()) {
      if (Status s = reader_conn_.connect(endpoint_, kReaderTimeout); !s) return s;
      if (last_id_.empty()) {
        auto tail = reader_conn_.command({"XREVRANGE", global_key_, "+", "-", "COUNT", "1"});
        if (!tail) return tail.status();
        const redisReply* r = tail->get();
        last_id_ = r->type == REDIS_REPLY_ARRAY && r->elements > 0
                       ? redis::reply_string(r->element[0]->element[0])
                       : "0-0";
      }
    }
    std::vector<std::pair<std::string, std::uint64_t>> tenants;
    {
      std::unique_lock mode(mode_mu_);  // no local seq is assigned until up_
      std::lock_guard lock(pub_mu_);
      if (!pub_conn_.connected()) {
        if (Status s = pub_conn_.connect(endpoint_, kCommandTimeout); !s) return s;
      }
      tenants = last_delivered();
      for (auto& [tenant, last] : tenants) {
        const std::string key = seq_key(tenant);
        const std::string floor = std::to_string(last);
        auto raised = pub_conn_.eval(kRaiseScript, {"1", key, floor});
        if (!raised) return raised.status();
      }
      up_.store(true);
    }
    for (auto& [tenant, last] : tenants) {
      if (!publish_remote(tenant, "resync", "{}")) return health();
    }
    return send_held();
  }

  bool stopping() {
    std::lock_guard lock(stop_mu_);
    return stopping_;
  }

  void sleep_for(std::chrono::milliseconds d) {
    std::unique_lock lock(stop_mu_);
    stop_cv_.wait_for(lock, d, [this] { return stopping_; });
  }

  // (tenant, last seq delivered here) for every channel.
  std::vector<std::pair<std::string, std::uint64_t>> last_delivered() {
    std::vector<std::pair<std::string, std::uint64_t>> out;
    for (auto& [tenant, channel] : channels_.all()) {
      std::lock_guard lock(channel->mu);
      out.emplace_back(std::move(tenant), channel->last);
    }
    return out;
  }

  const RedisEndpoint endpoint_;
  const std::size_t capacity_;
  const std::string global_key_;

  std::atomic<bool> up_{false};
  std::mutex reason_mu_;
  std::string down_reason_ = "not connected yet";  // guarded by reason_mu_

  // Publishers read up_ and assign local seqs under a shared lock; recovery
  // takes it exclusively while it raises counters and sets up_.
  std::shared_mutex mode_mu_;
  std::mutex pub_mu_;
  Connection pub_conn_;  // guarded by pub_mu_

  Connection reader_conn_;  // reader thread only (interrupt() from the destructor)
  std::string last_id_;     // reader thread only (and the constructor before it)
  std::thread reader_;

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;  // guarded by stop_mu_

  TenantChannels<Channel> channels_;

  SubscriberSet subscribers_;

  // Notices: their own handlers (never the hub's), and those that could not
  // be sent while Redis was down, oldest first, at most capacity_.
  SubscriberSet notices_;
  std::mutex hold_mu_;  // taken before pub_mu_, never while holding it
  std::deque<Notice> held_;  // guarded by hold_mu_
};

}  // namespace

std::unique_ptr<Bus> make_redis_bus(RedisEndpoint endpoint, std::size_t replay_capacity) {
  return std::make_unique<RedisBus>(std::move(endpoint), replay_capacity);
}

}  // namespace reai::bus
