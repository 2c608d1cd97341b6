// WsHub: the tenant -> WebSocket sessions registry and the server's one bus
// subscription. Each bus message is framed once ({"type":..,"seq":N,...},
// then encoded as a complete WebSocket text frame) and the same bytes are
// handed to every session of its tenant.
//
// Fan-out cost is per shard, not per session: every session belongs to one
// WsShard (a serial executor, in the server a strand its socket is bound
// to), and a bus message costs one queued job per shard. The shard's pump
// then calls WsSubscriber::deliver for its sessions directly, in bounded
// slices, so a big fan-out never holds an io thread for long and HTTP
// handlers queued meanwhile run between slices. A message that arrives
// while a fan-out is in progress joins it at the session the pump has
// reached (see pump()), and when several messages are waiting the pump
// hands each session all of them before calling its flush(), so the session
// sends them with one write: the busier the server, the fewer syscalls per
// message, and no message waits for the previous one to reach everybody.
//
// Linger (off by default): behind a proxy every write a session makes costs
// the proxy a read and a write and the client a read, so a deployment may
// trade a little latency for fewer, bigger writes. With a linger of N ms a
// shard's pump starts at most once per N ms: a message arriving sooner after
// the last pump waits for the rest of the window, and everything that
// arrived meanwhile goes to each session in one write. A message arriving
// after a quiet spell (N ms or more since the last pump) goes out at once,
// so an idle server adds no delay; the most any message waits is N ms.
// The window shrinks with the sessions a pump writes to: for S sessions it
// is N x S / kSessionsForFullLinger (N from that many on). What a window
// saves is one write per session, so a shard with few clients (one agent's
// dashboard receiving thousands of updates a second) saves little by
// waiting and would pay the whole N ms on every update; this way a shard
// makes at most kSessionsForFullLinger / N writes a second (5,120 at 50 ms)
// whatever its clients, until it has more sessions than that, and the delay
// stays proportional to what it saves.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "bus/bus.h"

namespace reai::server {

class WsShard;

// What the hub needs from a session (implemented by the Beast session).
class WsSubscriber {
 public:
  virtual ~WsSubscriber() = default;
  // Queues `frame`, a complete WebSocket text frame (wire_frame). Called only on the session's shard executor,
  // in seq order per tenant; must not block.
  virtual void deliver(std::uint64_t seq, std::shared_ptr<const std::string> frame) = 0;
  // Starts sending what deliver() queued (the pump calls it once after
  // handing this session a batch). Same executor; must not block.
  virtual void flush() = 0;
  // Closes with 1001 (server going away); any thread.
  virtual void going_away() = 0;
  // The shard whose executor runs this session; fixed for its lifetime,
  // never null, outlives the session (the hub owns shards).
  virtual WsShard* shard() const = 0;
};

// A serial executor plus the ordered queue of fan-out jobs waiting on it.
class WsShard {
 public:
  using Sessions = std::vector<std::weak_ptr<WsSubscriber>>;
  // Upper bound on deliver() calls per pump run; the pump re-posts itself
  // for the rest so other handlers on the io threads are not starved.
  static constexpr std::size_t kDeliveriesPerRun = 128;
  // Most queued messages (with the same session list) one session is
  // handed before its flush().
  static constexpr std::size_t kMaxJobsPerBatch = 64;
  static_assert(kMaxJobsPerBatch <= kDeliveriesPerRun, "every pump run must visit a session");
  // Sessions from which a linger window is the whole configured linger
  // (fewer: proportionally shorter; see the file comment).
  static constexpr std::size_t kSessionsForFullLinger = 256;

  using Clock = std::chrono::steady_clock;

  WsShard() = default;
  virtual ~WsShard() = default;
  WsShard(const WsShard&) = delete;
  WsShard& operator=(const WsShard&) = delete;

  // Queues `frame` for every live session of `sessions` (all of this
  // shard). Any thread; jobs are delivered in the order they are queued.
  void fan_out(std::shared_ptr<const Sessions> sessions, std::uint64_t seq, std::shared_ptr<const std::string> frame);
  // Jobs queued and not yet fully delivered (for tests and metrics).
  std::size_t pending_jobs() const;
  // The least time between two pump starts for kSessionsForFullLinger
  // sessions or more, proportionally less for fewer (see the file comment);
  // zero (the default) pumps as soon as a message arrives. Any thread;
  // applies from the next message on.
  void set_linger(Clock::duration linger);

 protected:
  // Runs `task` later on this shard's serial executor; any thread.
  virtual void post(std::function<void()> task) = 0;
  // Runs `task` on this shard's serial executor once `delay` (> 0) has
  // passed; any thread. Used only with a linger, at most one pending at a
  // time.
  virtual void post_after(Clock::duration delay, std::function<void()> task) = 0;

 private:
  struct Job {
    std::shared_ptr<const Sessions> sessions;
    std::uint64_t seq;
    std::shared_ptr<const std::string> frame;
    std::size_t remaining = 0;  // sessions the cursor must still visit (active jobs)
  };
  // On the shard's executor.
  void pump();
  void activate_locked();
  // Under mu_: the least time between pump starts when a pump writes to
  // `sessions` sessions.
  Clock::duration window_locked(std::size_t sessions) const;

  mutable std::mutex mu_;
  std::deque<Job> jobs_;
  // Touched by the pump only (jobs_ is pushed by any thread under mu_, but
  // popped only by the pump, so pointers to its front jobs stay valid):
  // the first active_ jobs are being fanned out, cursor_ is the next
  // session of their list, batch_ points at them while mu_ is released.
  std::size_t active_ = 0;
  std::size_t cursor_ = 0;
  std::vector<const Job*> batch_;
  bool scheduled_ = false;
  // Under mu_: the linger, and when the last pump started (if one has).
  Clock::duration linger_{};
  Clock::time_point last_pump_{};
  bool pumped_ = false;
};

class WsHub {
 public:
  explicit WsHub(bus::Bus& bus);
  ~WsHub();
  // Subscribes to the bus; call once before sessions join.
  void start();
  // Unsubscribes and tells every session to go away.
  void stop();
  // `session->shard()` must be one of this hub's shards.
  void join(const std::string& tenant_id, const std::shared_ptr<WsSubscriber>& session);
  void leave(const std::string& tenant_id, const WsSubscriber* session);
  std::size_t connections(std::string_view tenant_id) const;
  std::size_t total_connections() const;
  // WsShard::set_linger for every shard, those created later included.
  void set_linger(WsShard::Clock::duration linger);

  // Creates the shards once (first caller's `make` wins; later calls ignore
  // it) and returns the next one round-robin for a new session. Any thread.
  // The hub owns the shards until it is destroyed.
  WsShard* assign_shard(const std::function<std::vector<std::unique_ptr<WsShard>>()>& make);

  // {"type":"<topic>","seq":N,<payload fields>} (payload is a JSON object).
  static std::shared_ptr<const std::string> frame(const bus::BusMessage& message);
  // frame()'s text as one complete unmasked WebSocket text frame (header
  // plus payload, ws_frame.h), the bytes every session writes as they are.
  static std::shared_ptr<const std::string> wire_frame(const bus::BusMessage& message);

 private:
  struct ShardGroup {
    WsShard* shard;
    std::shared_ptr<const WsShard::Sessions> sessions;
  };
  struct Tenant {
    std::unordered_map<const WsSubscriber*, std::weak_ptr<WsSubscriber>> members;
    // Per-shard member lists, rebuilt on the first message after a join or
    // leave, so steady fan-out copies no session list.
    std::shared_ptr<const std::vector<ShardGroup>> groups;
  };

  void on_message(const bus::BusMessage& message);
  std::shared_ptr<const std::vector<ShardGroup>> groups_of(std::string_view tenant_id);

  bus::Bus& bus_;
  std::uint64_t subscription_ = 0;
  bool subscribed_ = false;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Tenant> tenants_;
  std::size_t total_ = 0;
  std::vector<std::unique_ptr<WsShard>> shards_;
  std::size_t next_shard_ = 0;
  WsShard::Clock::duration linger_{};
};

}  // namespace reai::server
