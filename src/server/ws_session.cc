// One WebSocket subscriber: one write in flight, a bounded queue, overflow
// tells the client and drops it so it never slows anyone else.
#include <deque>

#include "bus/bus.h"
#include "server/net.h"

namespace reai::server {
namespace {

constexpr auto kCloseDeadline = std::chrono::seconds(5);
constexpr std::string_view kOverflowFrame = R"({"type":"overflow"})";
constexpr std::string_view kResyncFrame = R"({"type":"resync"})";

class WsSession final : public WsSubscriber, public Connection, public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(tcp::socket socket, std::shared_ptr<ServerContext> ctx)
      : ws_(std::move(socket)), ctx_(std::move(ctx)), close_deadline_(ws_.get_executor()) {}

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

  void deliver(std::uint64_t seq, std::shared_ptr<const std::string> frame) override {
    net::post(ws_.get_executor(), [self = shared_from_this(), seq, frame = std::move(frame)]() mutable {
      self->on_deliver(seq, std::move(frame));
    });
  }

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
      if (!ec) beast::get_lowest_layer(self->ws_).socket().close(ec);
    });
    if (accepted_ && !writing_ && queue_.empty()) start_close();
  }

  void start_close() {
    ws_.async_close(close_reason_, [self = shared_from_this()](beast::error_code ec) {
      self->close_deadline_.cancel();
      if (ec && ec != net::error::operation_aborted) fail(ec, "ws close");
    });
  }

  websocket::stream<beast::tcp_stream> ws_;
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
  std::make_shared<WsSession>(std::move(socket), std::move(ctx))->run(std::move(request));
}

}  // namespace reai::server
