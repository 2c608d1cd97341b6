// One WebSocket subscriber: a bounded queue of pre-encoded frames sent with
// one gather write at a time (one writev for everything queued while the
// previous write was in flight; a non-blocking writev straight from the
// fan-out while the socket has room, an async write only once it is full),
// overflow tells the client and drops it so it never slows anyone else.
//
// Every session's socket is bound to its WsShard's strand (one shard per io
// thread), so the hub's fan-out reaches a session by a direct call from the
// shard's pump: no post, allocation or thread hop per message per session.
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <span>
#include <vector>

#include "bus/bus.h"
#include "server/net.h"
#include "server/ws_frame.h"

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
  std::deque<net::steady_timer> timers;  // the shards' linger timers, likewise

 private:
  void shutdown() override {}
};

// A fan-out shard whose serial executor is a strand of the server's
// io_context. Posts only while the io_context lives (the hub unsubscribes
// from the bus before the server destroys it).
class StrandShard final : public WsShard {
 public:
  // `timer` runs its handlers on `strand`.
  StrandShard(Strand* strand, net::steady_timer* timer) : strand_(strand), timer_(timer) {}
  const Strand& strand() const { return *strand_; }

 protected:
  void post(std::function<void()> task) override { net::post(*strand_, std::move(task)); }

  // The timer is armed from the strand, so it is only ever touched there
  // (the hub's caller may be any thread).
  void post_after(Clock::duration delay, std::function<void()> task) override {
    net::post(*strand_, [this, delay, task = std::move(task)]() mutable {
      timer_->expires_after(delay);
      timer_->async_wait([task = std::move(task)](beast::error_code ec) {
        if (!ec) task();
      });
    });
  }

 private:
  Strand* strand_;
  net::steady_timer* timer_;
};

// Shard i lives on io context i % n, so the fan-out spreads over the io
// threads.
std::vector<std::unique_ptr<WsShard>> make_shards(const std::vector<net::io_context*>& iocs, std::size_t count) {
  std::vector<std::unique_ptr<WsShard>> shards;
  for (std::size_t i = 0; i < count; ++i) {
    net::io_context& ioc = *iocs[i % iocs.size()];
    // A first strand and timer register their services before
    // FanoutStrands, which is therefore destroyed before them.
    Strand strand = net::make_strand(ioc);
    net::steady_timer first_timer(strand);
    auto& owner = net::use_service<FanoutStrands>(ioc);
    owner.strands.push_back(strand);
    owner.timers.emplace_back(owner.strands.back());
    shards.push_back(std::make_unique<StrandShard>(&owner.strands.back(), &owner.timers.back()));
  }
  return shards;
}

// Beast performs the HTTP upgrade; from then on the session owns the socket:
// it writes pre-encoded frames (shared by every session of the tenant) with
// one gather write per batch, and reads client frames itself, so pongs and
// close frames go through the same single writer and can never interleave
// with data frames.
class WsSession final : public WsSubscriber, public Connection, public std::enable_shared_from_this<WsSession> {
 public:
  // `socket` is bound to `shard`'s strand.
  WsSession(StreamSocket socket, StrandShard* shard, std::shared_ptr<ServerContext> ctx)
      : ws_(std::move(socket)),
        shard_(shard),
        ctx_(std::move(ctx)),
        close_deadline_(ws_.get_executor()),
        idle_timer_(ws_.get_executor()) {}

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

  void flush() override {
    if (accepted_ && !writing_ && !finished_ && !queue_.empty()) do_write();
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
  // Frames and bytes per gather write: Asio hands at most 64 buffers to one
  // writev, and a byte cap keeps one slow socket from pinning memory.
  static constexpr std::size_t kMaxFramesPerWrite = 64;
  static constexpr std::size_t kMaxBytesPerWrite = 256 * 1024;
  // Clients only send control frames; a bigger frame closes with 1009.
  static constexpr std::size_t kMaxClientPayload = 64 * 1024;
  // A ping after this long without hearing from the client; the socket
  // closes after another such period of silence.
  static constexpr auto kIdlePing = std::chrono::seconds(30);

  StreamSocket& socket() { return ws_.next_layer(); }

  void on_run(http::request<http::string_body> request) {
    admission_ = ctx_->api.admit_websocket(request.target());
    websocket::stream_base::timeout timeout{};
    timeout.handshake_timeout = std::chrono::seconds(30);
    timeout.idle_timeout = websocket::stream_base::none();
    timeout.keep_alive_pings = false;  // this session pings (on_idle) through its own writer
    ws_.set_option(timeout);
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
    // do_write's writes must return EAGAIN, never wait for room.
    socket().non_blocking(true, ec);
    if (ec) return fail(ec, "ws non-blocking");
    do_read();
    arm_idle_timer();
    // Accept first, then close with the code, so browsers can read it.
    if (admission_.close_code != 0) {
      return close_with(static_cast<std::uint16_t>(admission_.close_code), admission_.reason, false);
    }
    if (!joined_ || going_away_requested_) return close_with(websocket::close_code::going_away, "server shutting down", true);
    if (!queue_.empty() && !writing_) do_write();
  }

  void replay(std::uint64_t since) {
    auto missed = ctx_->bus.since(admission_.tenant_id, since);
    // A complete answer means the client holds every message up to `since`.
    // A copy of one of them can still reach this instance's hub afterwards
    // (the Redis bus answers from Redis, while this instance's subscription
    // may not have delivered its own latest publishes yet): drop it. An
    // incomplete answer (a client ahead of the bus, after a restart) keeps
    // the numbering open, or the new life's messages would all be dropped.
    if (missed && missed->complete) last_seq_ = std::max(last_seq_, since);
    const bool too_many = missed && missed->messages.size() >= ctx_->config.ws_queue_limit;
    if (!missed || !missed->complete || too_many) enqueue(text_frame(kResyncFrame));
    if (!missed) return;
    if (too_many) {
      // More than the queue holds: the client re-reads current scores.
      last_seq_ = missed->messages.back().seq;
      return;
    }
    for (const auto& m : missed->messages) on_deliver(m.seq, WsHub::wire_frame(m));
  }

  static std::shared_ptr<const std::string> text_frame(std::string_view text) {
    return std::make_shared<const std::string>(encode_ws_frame(WsOpcode::kText, text));
  }

  // --- read side: client frames, parsed here so Beast never writes ----------

  void do_read() {
    socket().async_read_some(read_buffer_.prepare(16 * 1024),
                             beast::bind_front_handler(&WsSession::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t n) {
    if (ec) {
      // EOF after our close frame is the normal end; anything else is logged.
      if (ec != net::error::eof && ec != net::error::operation_aborted && !close_sent_) fail(ec, "ws read");
      return finish();
    }
    heard_from_client_ = true;
    read_buffer_.commit(n);
    if (draining_) {
      // After a protocol error: discard input until the client's EOF, so
      // closing never resets the connection before our close frame lands.
      read_buffer_.consume(read_buffer_.size());
      return do_read();
    }
    while (!finished_ && !draining_) {
      auto data = read_buffer_.data();
      WsClientFrame frame;
      const auto result = parse_ws_client_frame(std::span<char>(static_cast<char*>(data.data()), data.size()),
                                                kMaxClientPayload, &frame);
      if (result == WsParseResult::kNeedMore) break;
      if (result != WsParseResult::kFrame) {
        protocol_failure(result == WsParseResult::kTooBig ? websocket::close_code::too_big
                                                          : websocket::close_code::protocol_error);
        break;
      }
      on_client_frame(frame);
      read_buffer_.consume(frame.size);
    }
    if (draining_) read_buffer_.consume(read_buffer_.size());
    if (!finished_) do_read();
  }

  void on_client_frame(const WsClientFrame& frame) {
    switch (frame.opcode) {
      case WsOpcode::kPing:
        if (!close_sent_) push_control(encode_ws_frame(WsOpcode::kPong, frame.payload));
        return;
      case WsOpcode::kClose:
        return on_client_close(frame.payload);
      default:
        return;  // pongs, and text the protocol gives clients no use for
    }
  }

  void on_client_close(std::string_view payload) {
    client_closed_ = true;
    if (close_sent_) {
      // The client answered our close: the handshake is complete.
      if (!writing_) finish();
      return;
    }
    const std::uint16_t code = ws_close_code(payload);
    if (code == 0) return protocol_failure(websocket::close_code::protocol_error);
    // Echo the client's code, then drop the TCP connection (the server
    // closes first, RFC 6455 7.1.1). Undelivered updates are moot.
    closing_ = true;
    drop_unsent();
    queue_close_frame(code == 1005 ? encode_ws_frame(WsOpcode::kClose, {}) : encode_ws_close(code, {}));
  }

  // Nothing more from this client is parsed: send the close code, half-close
  // once it is written, and discard input until the client's EOF (or the
  // close deadline). Called from on_read, which keeps reading.
  void protocol_failure(websocket::close_code code) {
    draining_ = true;
    closing_ = true;
    drop_unsent();
    if (!close_sent_) queue_close_frame(encode_ws_close(static_cast<std::uint16_t>(code), {}));
    if (!writing_) half_close();
  }

  void half_close() {
    if (queue_.empty()) {
      beast::error_code ignored;
      socket().shutdown(net::socket_base::shutdown_send, ignored);
    }
  }

  // --- write side: one gather write of queued frames at a time ---------------

  // Queues without writing: the hub's pump calls flush() after a batch.
  void on_deliver(std::uint64_t seq, std::shared_ptr<const std::string> frame) {
    if (closing_ || seq <= last_seq_) return;
    last_seq_ = seq;
    enqueue(std::move(frame));
  }

  void enqueue(std::shared_ptr<const std::string> frame) {
    if (closing_) return;
    if (queue_.size() >= ctx_->config.ws_queue_limit) return overflow();
    queue_.push_back(std::move(frame));
  }

  // Control frames skip the data limit: they are few and tiny.
  void push_control(std::string frame) {
    queue_.push_back(std::make_shared<const std::string>(std::move(frame)));
    if (!writing_ && accepted_ && !finished_) do_write();
  }

  void overflow() {
    ctx_->metrics.record_ws_drop();
    // Keep only the frames being written; the client learns why it is dropped.
    drop_unsent();
    queue_.push_back(text_frame(kOverflowFrame));
    close_with(websocket::close_code::policy_error, "queue overflow", false);
  }

  void drop_unsent() { queue_.erase(queue_.begin() + static_cast<std::ptrdiff_t>(in_flight_), queue_.end()); }

  // Sends what is queued. The common case (the socket has room) is a
  // non-blocking writev made right here, from the fan-out pump: no async
  // operation, completion handler or trip through the scheduler per
  // message. Only a full socket (EAGAIN or a short write) hands the rest to
  // an async write, which completes in on_write; frames queued meanwhile
  // wait for it, so a slow client costs one pending operation, not a retry
  // per message. Precondition: no write in flight.
  void do_write() {
    while (!queue_.empty() && !finished_) {
      const std::size_t bytes = gather_write();
      beast::error_code ec;
      std::size_t sent = socket().write_some(write_buffers_, ec);
      if (ec == net::error::would_block || ec == net::error::try_again) {
        ec = {};
        sent = 0;
      }
      if (ec) return write_failed(ec);
      if (sent < bytes) {
        skip_written(sent);
        writing_ = true;
        net::async_write(socket(), write_buffers_, beast::bind_front_handler(&WsSession::on_write, shared_from_this()));
        return;
      }
      release_in_flight();
    }
    on_queue_sent();
  }

  // Points write_buffers_ at the first queued frames (at most
  // kMaxFramesPerWrite, kMaxBytesPerWrite unless one frame is bigger);
  // returns their bytes.
  std::size_t gather_write() {
    write_buffers_.clear();
    std::size_t bytes = 0;
    for (const auto& frame : queue_) {
      if (write_buffers_.size() == kMaxFramesPerWrite) break;
      if (!write_buffers_.empty() && bytes + frame->size() > kMaxBytesPerWrite) break;
      write_buffers_.emplace_back(frame->data(), frame->size());
      bytes += frame->size();
    }
    in_flight_ = write_buffers_.size();
    return bytes;
  }

  // Drops the first `n` bytes from write_buffers_ (they are on the wire).
  void skip_written(std::size_t n) {
    auto it = write_buffers_.begin();
    while (n > 0 && n >= it->size()) n -= (it++)->size();
    write_buffers_.erase(write_buffers_.begin(), it);
    if (n > 0) write_buffers_.front() += n;
  }

  void release_in_flight() {
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(in_flight_));
    in_flight_ = 0;
  }

  void write_failed(beast::error_code ec) {
    if (ec != net::error::operation_aborted) fail(ec, "ws write");
    finish();
  }

  void on_write(beast::error_code ec, std::size_t) {
    writing_ = false;
    release_in_flight();
    if (ec) return write_failed(ec);
    do_write();
  }

  // Nothing is queued or in flight.
  void on_queue_sent() {
    // Everything up to and including our close frame is out.
    if (draining_) return half_close();
    if (close_sent_ && client_closed_) finish();
  }

  // Sends a close frame after the queued frames (or at once when
  // `drop_queue`), bounded by a deadline so a client that never reads or
  // never answers cannot hold the socket.
  void close_with(websocket::close_code code, std::string_view reason, bool drop_queue) {
    close_with(static_cast<std::uint16_t>(code), reason, drop_queue);
  }
  void close_with(std::uint16_t code, std::string_view reason, bool drop_queue) {
    if (close_sent_ || finished_) return;
    closing_ = true;
    if (drop_queue) drop_unsent();
    queue_close_frame(encode_ws_close(code, reason));
  }

  void queue_close_frame(std::string frame) {
    close_sent_ = true;
    close_deadline_.expires_after(kCloseDeadline);
    close_deadline_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->finish();
    });
    push_control(std::move(frame));
  }

  // --- keep-alive and teardown ----------------------------------------------

  void arm_idle_timer() {
    idle_timer_.expires_after(kIdlePing);
    idle_timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->on_idle();
    });
  }

  void on_idle() {
    if (finished_) return;
    if (heard_from_client_) {
      heard_from_client_ = false;
      ping_outstanding_ = false;
    } else if (ping_outstanding_) {
      return finish();  // silent for two periods: the peer is gone
    } else if (!close_sent_) {
      ping_outstanding_ = true;
      push_control(encode_ws_frame(WsOpcode::kPing, {}));
    }
    arm_idle_timer();
  }

  // Closes the socket; pending operations complete with errors and release
  // the session.
  void finish() {
    if (finished_) return;
    finished_ = true;
    closing_ = true;
    close_deadline_.cancel();
    idle_timer_.cancel();
    beast::error_code ignored;
    socket().shutdown(net::socket_base::shutdown_both, ignored);
    socket().close(ignored);
  }

  // Beast's stream only performs the handshake (see the class comment).
  websocket::stream<StreamSocket> ws_;
  StrandShard* shard_;
  std::shared_ptr<ServerContext> ctx_;
  net::steady_timer close_deadline_;
  net::steady_timer idle_timer_;
  WsAdmission admission_;
  beast::flat_buffer read_buffer_;
  // Complete frames; the first in_flight_ are being written.
  std::deque<std::shared_ptr<const std::string>> queue_;
  std::vector<net::const_buffer> write_buffers_;
  std::size_t in_flight_ = 0;
  std::uint64_t last_seq_ = 0;
  bool accepted_ = false;
  bool joined_ = false;
  bool writing_ = false;
  bool closing_ = false;       // no more updates are queued
  bool close_sent_ = false;    // our close frame is queued or written
  bool client_closed_ = false; // the client's close frame arrived (or it broke the protocol)
  bool finished_ = false;      // the socket is closed
  bool draining_ = false;      // protocol error: input is discarded until EOF
  bool heard_from_client_ = false;
  bool ping_outstanding_ = false;
  bool going_away_requested_ = false;
};

}  // namespace

void start_websocket_session(StreamSocket socket, http::request<http::string_body> request,
                             std::shared_ptr<ServerContext> ctx) {
  const auto shard_count = static_cast<std::size_t>(std::max(1, ctx->config.threads));
  auto* shard = static_cast<StrandShard*>(
      ctx->hub.assign_shard([&ctx, shard_count] { return make_shards(ctx->io_contexts, shard_count); }));
  // Move the descriptor onto the shard's strand.
  beast::error_code ec;
  const auto protocol = socket.local_endpoint(ec).protocol();
  if (ec) return fail(ec, "ws rebind");
  const auto fd = socket.release(ec);
  if (ec) return fail(ec, "ws rebind");
  StreamSocket bound(shard->strand());
  bound.assign(protocol, fd, ec);
  if (ec) {
    ::close(fd);
    return fail(ec, "ws rebind");
  }
  std::make_shared<WsSession>(std::move(bound), shard, std::move(ctx))->run(std::move(request));
}

}  // namespace reai::server
