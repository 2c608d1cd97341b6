// One HTTP/1.1 keep-alive connection: read a request, route it, write the
// response, repeat; hands WebSocket upgrades over to a WsSession.
#include <spdlog/spdlog.h>

#include <array>
#include <charconv>

#include "server/codec.h"
#include "server/net.h"

namespace reai::server {
namespace {

constexpr auto kReadTimeout = std::chrono::seconds(60);
constexpr auto kDrainTimeout = std::chrono::seconds(2);

Method method_of(http::verb v) {
  switch (v) {
    case http::verb::get: return Method::kGet;
    case http::verb::post: return Method::kPost;
    case http::verb::put: return Method::kPut;
    case http::verb::delete_: return Method::kDelete;
    case http::verb::head: return Method::kHead;
    default: return Method::kOther;
  }
}

std::string_view sv(beast::string_view s) { return {s.data(), s.size()}; }

class HttpSession final : public Connection, public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(StreamSocket socket, std::shared_ptr<ServerContext> ctx)
      : stream_(std::move(socket)), ctx_(std::move(ctx)) {}

  ~HttpSession() override { ctx_->remove(this); }

  void run() {
    ctx_->add(shared_from_this());
    net::dispatch(stream_.get_executor(), beast::bind_front_handler(&HttpSession::do_read, shared_from_this()));
  }

  void shutdown() override {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      // A request being handled finishes first; on_write then closes.
      if (!self->busy_) self->stream_.cancel();
    });
  }

 private:
  void do_read() {
    if (ctx_->stopping) return do_close();
    busy_ = false;
    parser_.emplace();
    parser_->body_limit(ctx_->config.max_body_bytes);
    stream_.expires_after(kReadTimeout);
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&HttpSession::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream) return do_close();
    if (ec == http::error::body_limit) {
      return refuse(413, "request body larger than " + std::to_string(ctx_->config.max_body_bytes) + " bytes");
    }
    // Head over the parser's limit (a long target, many or long fields).
    if (ec == http::error::header_limit) return refuse(431, "request line and header fields too large");
    // A message that is not HTTP/1.1 (bad request line, field, length or
    // chunk): the client is told why rather than dropped without a word.
    // partial_message is a client that closed mid-request: nobody to tell.
    if (ec && ec.category() == http::make_error_code(http::error::bad_method).category() &&
        ec != http::error::partial_message) {
      return refuse(400, "malformed HTTP request: " + ec.message());
    }
    if (ec) {
      if (ec != net::error::operation_aborted && ec != beast::error::timeout) fail(ec, "http read");
      return;
    }
    busy_ = true;
    auto& req = parser_->get();
    if (websocket::is_upgrade(req) && Api::is_websocket_path(sv(req.target()))) {
      stream_.expires_never();
      return start_websocket_session(stream_.release_socket(), parser_->release(), ctx_);
    }
    // Beast's req[field] is the first of several: a proxy in front may have
    // checked the other, so neither is taken.
    if (req.count(http::field::authorization) > 1) return answer_400(req, "more than one Authorization header");
    ApiRequest api_request;
    api_request.method = method_of(req.method());
    api_request.target = sv(req.target());
    api_request.body = req.body();
    api_request.authorization = sv(req[http::field::authorization]);
    api_request.content_type = sv(req[http::field::content_type]);
    api_request.ghl_signature = sv(req["X-GHL-Signature"]);
    api_request.wh_signature = sv(req["x-wh-signature"]);
    api_request.workflow_secret = sv(req["X-Reai-Workflow-Secret"]);
    const auto start = std::chrono::steady_clock::now();
    // Both callbacks run on this connection's strand: `respond` inline or
    // from a function given to `post` (an event answered once durable).
    // The lane is the connection's io_context (one thread each): deferred
    // answers for one io thread travel together.
    auto self = shared_from_this();
    const void* lane = &net::query(stream_.get_executor(), net::execution::context);
    ctx_->api.handle_async(
        api_request,
        [self](std::function<void()> fn) { net::post(self->stream_.get_executor(), std::move(fn)); },
        [self, start, version = req.version(), keep_alive = req.keep_alive(),
         head = req.method() == http::verb::head](ApiResponse r) {
          const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          self->ctx_->metrics.record_request(r.route, r.status, seconds);
          self->write(std::move(r), version, keep_alive, head);
        },
        lane);
  }

  // Answers a request that was read but is refused before routing; the
  // connection goes on as the client asked.
  template <class Request>
  void answer_400(const Request& req, std::string_view message) {
    ApiResponse r;
    r.status = 400;
    r.body = error_json(message);
    r.route = Route::kUnmatched;
    ctx_->metrics.record_request(Route::kUnmatched, r.status, 0);
    write(std::move(r), req.version(), req.keep_alive(), req.method() == http::verb::head);
  }

  // Answers a request that could not be read and closes the connection
  // (the parser cannot find where the next request starts).
  void refuse(int status, std::string message) {
    busy_ = true;
    ApiResponse r;
    r.status = status;
    r.body = error_json(message);
    r.route = Route::kUnmatched;
    ctx_->metrics.record_request(Route::kUnmatched, status, 0);
    write(std::move(r), 11, false, false);
  }

  // The response head is formatted into a string the session reuses and
  // goes out with the body in one gather write: Beast's fields container
  // and serializer cost an allocation per header field and a buffer walk per
  // response, visible in the profile of POST /api/events. A HEAD answer
  // carries the GET answer's headers, Content-Length included, and no body
  // (RFC 9110 9.3.2).
  void write(ApiResponse r, unsigned version, bool keep_alive, bool head) {
    keep_alive = keep_alive && !ctx_->stopping;
    const bool bodiless = r.status / 100 == 1 || r.status == 204 || r.status == 304;
    head_.clear();
    head_ += version == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
    append_number(static_cast<std::size_t>(r.status));
    head_ += ' ';
    const auto reason = http::obsolete_reason(static_cast<http::status>(r.status));
    head_.append(reason.data(), reason.size());
    head_ += "\r\nServer: reai\r\nContent-Type: ";
    head_ += r.content_type;
    head_ += "\r\nCache-Control: ";
    head_ += r.cache_control.empty() ? std::string_view("no-store") : std::string_view(r.cache_control);
    head_ += "\r\n";
    if (!r.retry_after.empty()) {
      head_ += "Retry-After: ";
      head_ += r.retry_after;
      head_ += "\r\n";
    }
    if (r.html_security_headers) {
      head_ +=
          "Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
          "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'none'; form-action 'self'; "
          "frame-ancestors 'none'\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n";
    }
    if (version >= 11 && !keep_alive) head_ += "Connection: close\r\n";
    if (version < 11 && keep_alive) head_ += "Connection: keep-alive\r\n";
    if (!bodiless) {
      head_ += "Content-Length: ";
      append_number(r.body.size());
      head_ += "\r\n";
    }
    head_ += "\r\n";
    body_ = std::move(r.body);
    if (head || bodiless) body_.clear();
    const std::array<net::const_buffer, 2> buffers{net::buffer(head_), net::buffer(body_)};
    net::async_write(stream_, buffers,
                     beast::bind_front_handler(&HttpSession::on_write, shared_from_this(), !keep_alive));
  }

  void append_number(std::size_t n) {
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
    head_.append(digits, end);
  }

  void on_write(bool close, beast::error_code ec, std::size_t) {
    if (ec) return fail(ec, "http write");
    if (close) return do_close();
    do_read();
  }

  // Half-closes and drains what the peer still sends (an oversize body),
  // so closing does not reset the connection before it reads our answer.
  void do_close() {
    beast::error_code ec;
    stream_.socket().shutdown(net::socket_base::shutdown_send, ec);
    if (ctx_->stopping) return;
    stream_.expires_after(kDrainTimeout);
    stream_.async_read_some(net::buffer(drain_), beast::bind_front_handler(&HttpSession::on_drain, shared_from_this()));
  }

  void on_drain(beast::error_code ec, std::size_t) {
    if (ec) return;  // EOF, timeout or reset: done either way
    stream_.async_read_some(net::buffer(drain_), beast::bind_front_handler(&HttpSession::on_drain, shared_from_this()));
  }

  beast::basic_stream<net::generic::stream_protocol> stream_;
  std::shared_ptr<ServerContext> ctx_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string head_;  // the response being written: head and body
  std::string body_;
  std::array<char, 4096> drain_{};
  bool busy_ = false;
};

}  // namespace

void fail(beast::error_code ec, const char* what) {
  if (ec == net::error::operation_aborted || ec == websocket::error::closed || ec == net::error::eof ||
      ec == net::error::connection_reset || ec == beast::error::timeout || ec == net::error::broken_pipe) {
    return;
  }
  spdlog::debug("{}: {}", what, ec.message());
}

void start_http_session(StreamSocket socket, std::shared_ptr<ServerContext> ctx) {
  std::make_shared<HttpSession>(std::move(socket), std::move(ctx))->run();
}

}  // namespace reai::server
