#include "support/test_client.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>

namespace reai::testing {
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// Runs the io_context until `done` or the deadline; true when done.
bool run_until(net::io_context& ioc, const bool& done, Clock::time_point deadline) {
  ioc.restart();
  while (!done) {
    if (ioc.run_one_until(deadline) == 0) {
      if (Clock::now() >= deadline) return done;
      ioc.restart();
    }
  }
  return true;
}

// Runs until `a` or `b` is set; false on the deadline.
bool run_until_either(net::io_context& ioc, const bool& a, const bool& b, Clock::time_point deadline) {
  ioc.restart();
  while (!a && !b) {
    if (ioc.run_one_until(deadline) == 0) {
      if (Clock::now() >= deadline) return a || b;
      ioc.restart();
    }
  }
  return true;
}

}  // namespace

struct HttpClient::Impl {
  std::string host;
  std::uint16_t port;
  std::chrono::milliseconds timeout;
  net::io_context ioc;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;

  beast::error_code connect() {
    stream.emplace(ioc);
    buffer.clear();
    beast::error_code result;
    bool done = false;
    tcp::endpoint ep(net::ip::make_address(host), port);
    stream->expires_after(timeout);
    stream->async_connect(ep, [&](beast::error_code ec) {
      result = ec;
      done = true;
    });
    if (!run_until(ioc, done, Clock::now() + timeout + std::chrono::seconds(1))) return net::error::timed_out;
    if (result) stream.reset();
    return result;
  }

  beast::error_code exchange(http::request<http::string_body>& req, HttpResponse* out) {
    beast::error_code result;
    bool done = false;
    http::response_parser<http::string_body> parser;
    parser.body_limit(boost::none);
    parser.skip(req.method() == http::verb::head);  // a HEAD answer has no body
    stream->expires_after(timeout);
    http::async_write(*stream, req, [&](beast::error_code ec, std::size_t) {
      if (ec) {
        result = ec;
        done = true;
        return;
      }
      http::async_read(*stream, buffer, parser, [&](beast::error_code ec2, std::size_t) {
        result = ec2;
        done = true;
      });
    });
    if (!run_until(ioc, done, Clock::now() + timeout + std::chrono::seconds(1))) return net::error::timed_out;
    if (result) return result;
    auto& res = parser.get();
    out->status = static_cast<int>(res.result_int());
    out->body = res.body();
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (auto& c : name) c = char(std::tolower(static_cast<unsigned char>(c)));
      out->headers[name] = std::string(f.value());
    }
    if (!res.keep_alive()) stream.reset();
    return {};
  }
};

HttpClient::HttpClient(std::string host, std::uint16_t port, std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
  impl_->timeout = timeout;
}

HttpClient::~HttpClient() = default;

HttpResponse HttpClient::request(const std::string& method, const std::string& target, const std::string& body,
                                 const std::string& token,
                                 const std::vector<std::pair<std::string, std::string>>& headers) {
  HttpResponse out;
  http::request<http::string_body> req;
  req.method_string(method);
  req.target(target);
  req.version(11);
  req.set(http::field::host, impl_->host);
  req.keep_alive(true);
  if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
  if (!body.empty()) req.set(http::field::content_type, "application/json");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  for (int attempt = 0; attempt < 2; ++attempt) {
    const bool reused = impl_->stream.has_value();
    if (!reused) {
      if (auto ec = impl_->connect()) {
        out.body = "connect: " + ec.message();
        return out;
      }
    }
    beast::error_code ec = impl_->exchange(req, &out);
    if (!ec) return out;
    impl_->stream.reset();
    out = {};
    out.body = "request: " + ec.message();
    // A kept-alive connection the server closed meanwhile: retry once.
    if (!reused) break;
  }
  return out;
}

struct WsClient::Impl {
  std::chrono::milliseconds timeout;
  net::io_context ioc;
  std::optional<websocket::stream<beast::tcp_stream>> ws;
  beast::flat_buffer buffer;
  std::deque<std::string> pending;
  bool open = false;
  int close_code = 0;
  std::string error;
  // An async_read may outlive a timed-out read() call; the next call
  // collects it.
  bool read_in_flight = false;
  bool read_done = false;
  beast::error_code read_ec;
  bool pong_seen = false;

  void start_read() {
    read_in_flight = true;
    read_done = false;
    ws->async_read(buffer, [this](beast::error_code ec, std::size_t) {
      read_ec = ec;
      read_done = true;
    });
  }

  // Waits for the in-flight read; nullopt on timeout (read stays pending).
  std::optional<std::optional<std::string>> finish_read(Clock::time_point deadline) {
    if (!run_until(ioc, read_done, deadline)) return std::nullopt;
    read_in_flight = false;
    if (read_ec) {
      if (read_ec == websocket::error::closed) {
        close_code = ws->reason().code;
        error = "closed";
      } else {
        error = read_ec.message();
      }
      open = false;
      return std::optional<std::string>();
    }
    std::string text = beast::buffers_to_string(buffer.data());
    buffer.consume(buffer.size());
    return std::optional<std::string>(std::move(text));
  }
};

WsClient::WsClient(std::chrono::milliseconds timeout) : impl_(std::make_unique<Impl>()) {
  impl_->timeout = timeout;
}

WsClient::~WsClient() = default;

bool WsClient::connect(const std::string& host, std::uint16_t port, const std::string& target,
                       int receive_buffer_bytes) {
  Impl& s = *impl_;
  s.ws.emplace(s.ioc);
  auto& socket = beast::get_lowest_layer(*s.ws).socket();
  tcp::endpoint ep(net::ip::make_address(host), port);
  beast::error_code ec;
  socket.open(ep.protocol(), ec);
  if (!ec && receive_buffer_bytes > 0) socket.set_option(net::socket_base::receive_buffer_size(receive_buffer_bytes), ec);
  if (ec) {
    s.error = ec.message();
    return false;
  }
  bool done = false;
  beast::error_code result;
  const auto deadline = Clock::now() + s.timeout;
  socket.async_connect(ep, [&](beast::error_code e) {
    if (e) {
      result = e;
      done = true;
      return;
    }
    s.ws->async_handshake(host + ":" + std::to_string(port), target, [&](beast::error_code e2) {
      result = e2;
      done = true;
    });
  });
  if (!run_until(s.ioc, done, deadline)) {
    s.error = "connect timed out";
    return false;
  }
  if (result) {
    s.error = result.message();
    return false;
  }
  s.ws->control_callback([&s](websocket::frame_type kind, beast::string_view) {
    if (kind == websocket::frame_type::pong) s.pong_seen = true;
  });
  s.open = true;
  return true;
}

std::optional<std::string> WsClient::read() { return read(impl_->timeout); }

std::optional<std::string> WsClient::read(std::chrono::milliseconds timeout) {
  Impl& s = *impl_;
  if (!s.pending.empty()) {
    std::string m = std::move(s.pending.front());
    s.pending.pop_front();
    return m;
  }
  if (!s.ws || (!s.open && !s.read_in_flight)) return std::nullopt;
  if (!s.read_in_flight) s.start_read();
  auto r = s.finish_read(Clock::now() + timeout);
  if (!r) {
    s.error = "timeout";
    return std::nullopt;
  }
  return *r;
}

bool WsClient::send(const std::string& text) {
  Impl& s = *impl_;
  if (!s.open) return false;
  bool done = false;
  beast::error_code result;
  s.ws->text(true);
  s.ws->async_write(net::buffer(text), [&](beast::error_code ec, std::size_t) {
    result = ec;
    done = true;
  });
  if (!run_until(s.ioc, done, Clock::now() + s.timeout)) return false;
  return !result;
}

bool WsClient::ping() {
  Impl& s = *impl_;
  if (!s.open) return false;
  s.pong_seen = false;
  bool done = false;
  beast::error_code result;
  s.ws->async_ping({}, [&](beast::error_code ec) {
    result = ec;
    done = true;
  });
  const auto deadline = Clock::now() + s.timeout;
  if (!run_until(s.ioc, done, deadline) || result) return false;
  while (!s.pong_seen) {
    if (!s.read_in_flight) s.start_read();
    // Pongs are seen by the control callback while a read is pending; a
    // text message may complete the read first (kept for read()).
    if (!run_until_either(s.ioc, s.pong_seen, s.read_done, deadline)) return false;
    if (s.read_done) {
      auto r = s.finish_read(deadline);
      if (r && *r) s.pending.push_back(std::move(**r));
      if (!s.open) return s.pong_seen;
    }
  }
  return true;
}

void WsClient::close() {
  Impl& s = *impl_;
  if (!s.ws || !s.open) return;
  bool done = false;
  s.ws->async_close(websocket::close_code::normal, [&](beast::error_code) { done = true; });
  run_until(s.ioc, done, Clock::now() + s.timeout);
  s.open = false;
}

bool WsClient::is_open() const { return impl_->open; }
int WsClient::close_code() const { return impl_->close_code; }
std::string WsClient::error() const { return impl_->error; }

}  // namespace reai::testing
