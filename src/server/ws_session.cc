// One WebSocket subscriber: one write in flight, a bounded queue, overflow
// tells the client and drops it so it never slows anyone else.
//
// Every session's socket is bound to its WsShard's strand (one shard per io
// thread), so the hub's fan-out reaches a session by a direct call from the
// shard's pump: no post, allocation or thread hop per message per session.
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <vector>

#include "bus/bus.h"
#include "server/net.h"

namespace reai::server {
namespace {

constexpr auto kCloseDeadline = std::chrono::seconds(5);
constexpr std::string_view kOverflowFrame = R"({"type":"overflow"})";
constexpr std::string_view kResyncFrame = R"({"type":"resync"})";

using Strand = net::strand<net::io_context::executor_type>;

// Owns the fan-out strands inside the io_context: a strand must be destroyed
// before the io_context's strand service, and services are destroyed newest
// first, while the hub (and its shards) outlive the io_context.
class FanoutStrands final : public net::execution_context::service {
 public:
  using key_type = FanoutStrands;
  static inline net::execution_context::id id;
  explicit FanoutStrands(net::execution_context& context) : service(context) {}
  std::deque<Strand> strands;  // deque: stable addresses; under the hub's lock

 private:
  void shutdown() override {}
};

// A fan-out shard whose serial executor is a strand of the server's
// io_context. Posts only while the io_context lives (the hub unsubscribes
// from the bus before the server destroys it).
class StrandShard final : public WsShard {
 public:
  explicit StrandShard(Strand* strand) : strand_(strand) {}
  const Strand& strand() const { return *strand_; }

 protected:
  void post(std::function<void()> task) override { net::post(*strand_, std::move(task)); }

 private:
  Strand* strand_;
};

std::vector<std::unique_ptr<WsShard>> make_shards(net::io_context& ioc, std::size_t count) {
  // The first strand registers the strand service before FanoutStrands.
  Strand first = net::make_strand(ioc);
  auto& owner = net::use_service<FanoutStrands>(ioc);
  std::vector<std::unique_ptr<WsShard>> shards;
  for (std::size_t i = 0; i < count; ++i) {
    owner.strands.push_back(i == 0 ? first : net::make_strand(ioc));
    shards.push_back(std::make_unique<StrandShard>(&owner.strands.back()));
  }
  return shards;
}

class WsSession final : public WsSubscriber, public Connection, public std::enable_shared_from_this<WsSession> {
 public:
  // `socket` is bound to `shard`'s strand.
  WsSession(tcp::socket socket, StrandShard* shard, std::shared_ptr<ServerContext> ctx)
      : ws_(std::move(socket)), shard_(shard), ctx_(std::move(ctx)), close_deadline_(ws_.get_executor()) {}

  ~WsSession() override {
    if (joined_) ctx_->hub.leave(admission_.tenant_id, this);
    ctx_->remove(this);
  }

  void run(http::request<http::string_body> request) {
    ctx_->add(shared_from_this());
    net::dispatch(ws_.get_executor(), [self = shared_from_this(), req = std::move(request)]() mutable {
      self->on_run(std::move(req));
    });
  }

  // On the shard strand, which is this session's executor.
  void deliver(std::uint64_t seq, std::shared_ptr<const std::string> frame) override {
    on_deliver(seq, std::move(frame));
  }

  WsShard* shard() const override { return shard_; }

  void going_away() override {
    net::post(ws_.get_executor(), [self = shared_from_this()] {
      if (self->accepted_) {
        self->close_with(websocket::close_code::going_away, "server shutting down", true);
      } else {
        self->going_away_requested_ = true;  // on_accept closes
      }
    });
  }

  void shutdown() override { going_away(); }

 private:
  void on_run(http::request<http::string_body> request) {
    admission_ = ctx_->api.admit_websocket(request.target());
    websocket::stream_base::timeout timeout{};
    timeout.handshake_timeout = std::chrono::seconds(30);
    timeout.idle_timeout = std::chrono::seconds(60);
    timeout.keep_alive_pings = true;  // a ping at half the idle time
    ws_.set_option(timeout);
    ws_.read_message_max(64 * 1024);  // clients only send control frames
    ws_.set_option(websocket::stream_base::decorator(
        [](websocket::response_type& res) { res.set(http::field::server, "reai"); }));
    // Join (and replay) before the handshake completes: once the client
    // sees the upgrade, nothing published after that instant may be missed.
    // Frames queue until on_accept.
    if (admission_.close_code == 0 && !ctx_->stopping) {
      ctx_->hub.join(admission_.tenant_id, shared_from_this());
      joined_ = true;
      // Anything published between join and the replay read arrives both
      // ways; the seq check drops the second copy.
      if (admission_.since) replay(*admission_.since);
    }
    ws_.async_accept(request, beast::bind_front_handler(&WsSession::on_accept, shared_from_this()));
  }

  void on_accept(beast::error_code ec) {
    if (ec) return fail(ec, "ws accept");
    accepted_ = true;
    // Accept first, then close with the code, so browsers can read it.
    if (admission_.close_code != 0) {
      return close_with(static_cast<std::uint16_t>(admission_.close_code), admission_.reason, false);
    }
    if (!joined_ || going_away_requested_) return close_with(websocket::close_code::going_away, "server shutting down", true);
    do_read();
    if (!queue_.empty() && !writing_) do_write();
    if (pending_close_ && queue_.empty() && !writing_) start_close();
  }

  void replay(std::uint64_t since) {
    auto missed = ctx_->bus.since(admission_.tenant_id, since);
    const bool too_many = missed && missed->messages.size() >= ctx_->config.ws_queue_limit;
    if (!missed || !missed->complete || too_many) enqueue(std::make_shared<const std::string>(kResyncFrame));
    if (!missed) return;
    if (too_many) {
      // More than the queue holds: the client re-reads current scores.
      last_seq_ = missed->messages.back().seq;
      return;
    }
    for (const auto& m : missed->messages) on_deliver(m.seq, WsHub::frame(m));
  }

  void do_read() { ws_.async_read(buffer_, beast::bind_front_handler(&WsSession::on_read, shared_from_this())); }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) {
      close_deadline_.cancel();
      if (ec != websocket::error::closed) fail(ec, "ws read");
      return;
    }
    // Clients have nothing to say yet; pings are answered by Beast.
    buffer_.consume(buffer_.size());
    do_read();
  }

  void on_deliver(std::uint64_t seq, std::shared_ptr<const std::string> frame) {
    if (closing_ || seq <= last_seq_) return;
    last_seq_ = seq;
    enqueue(std::move(frame));
  }

  void enqueue(std::shared_ptr<const std::string> frame) {
    if (closing_) return;
    if (queue_.size() >= ctx_->config.ws_queue_limit) return overflow();
    queue_.push_back(std::move(frame));
    if (!writing_ && accepted_) do_write();
  }

  void overflow() {
    ctx_->metrics.record_ws_drop();
    // Keep only the frame being written; the client learns why it is dropped.
    if (writing_) {
      queue_.erase(queue_.begin() + 1, queue_.end());
    } else {
      queue_.clear();
    }
    queue_.push_back(std::make_shared<const std::string>(kOverflowFrame));
    close_with(websocket::close_code::policy_error, "queue overflow", false);
  }

  void do_write() {
    writing_ = true;
    ws_.text(true);
    ws_.async_write(net::buffer(*queue_.front()), beast::bind_front_handler(&WsSession::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    writing_ = false;
    if (ec) {
      close_deadline_.cancel();
      return fail(ec, "ws write");
    }
    queue_.pop_front();
    if (!queue_.empty()) return do_write();
    if (pending_close_) start_close();
  }

  // Closes after the queued frames (or at once when `drop_queue`), bounded
  // by a deadline so a client that never reads cannot hold the socket.
  void close_with(websocket::close_code code, std::string_view reason, bool drop_queue) {
    close_with(static_cast<std::uint16_t>(code), reason, drop_queue);
  }
  void close_with(std::uint16_t code, std::string_view reason, bool drop_queue) {
    if (pending_close_) return;
    closing_ = true;
    pending_close_ = true;
    close_reason_.code = code;
    close_reason_.reason = std::string(reason.substr(0, 120));
    if (drop_queue && queue_.size() > 1) queue_.erase(queue_.begin() + 1, queue_.end());
    if (drop_queue && !writing_) queue_.clear();
    close_deadline_.expires_after(kCloseDeadline);
    close_deadline_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) beast::get_lowest_layer(self->ws_).close(ec);
    });
    if (accepted_ && !writing_ && queue_.empty()) start_close();
  }

  void start_close() {
    ws_.async_close(close_reason_, [self = shared_from_this()](beast::error_code ec) {
      self->close_deadline_.cancel();
      if (ec && ec != net::error::operation_aborted) fail(ec, "ws close");
    });
  }

  // A plain socket: the websocket stream keeps its own timeouts, and
  // tcp_stream's per-operation bookkeeping is measurable at this volume.
  websocket::stream<tcp::socket> ws_;
  StrandShard* shard_;
  std::shared_ptr<ServerContext> ctx_;
  net::steady_timer close_deadline_;
  WsAdmission admission_;
  beast::flat_buffer buffer_;
  std::deque<std::shared_ptr<const std::string>> queue_;
  websocket::close_reason close_reason_;
  std::uint64_t last_seq_ = 0;
  bool accepted_ = false;
  bool joined_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool pending_close_ = false;
  bool going_away_requested_ = false;
};

}  // namespace

void start_websocket_session(tcp::socket socket, http::request<http::string_body> request,
                             std::shared_ptr<ServerContext> ctx) {
  auto& ioc = static_cast<net::io_context&>(net::query(socket.get_executor(), net::execution::context));
  const auto shard_count = static_cast<std::size_t>(std::max(1, ctx->config.threads));
  auto* shard = static_cast<StrandShard*>(
      ctx->hub.assign_shard([&ioc, shard_count] { return make_shards(ioc, shard_count); }));
  // Move the descriptor onto the shard's strand.
  beast::error_code ec;
  const auto protocol = socket.local_endpoint(ec).protocol();
  if (ec) return fail(ec, "ws rebind");
  const auto fd = socket.release(ec);
  if (ec) return fail(ec, "ws rebind");
  tcp::socket bound(shard->strand());
  bound.assign(protocol, fd, ec);
  if (ec) {
    ::close(fd);
    return fail(ec, "ws rebind");
  }
  std::make_shared<WsSession>(std::move(bound), shard, std::move(ctx))->run(std::move(request));
}

}  // namespace reai::server
