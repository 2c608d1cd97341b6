#include "ghl/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/version.hpp>

#include <charconv>

namespace reai::ghl {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

constexpr std::size_t kMaxAnswerBytes = 4 << 20;

struct BaseUrl {
  bool tls = false;
  std::string host;
  std::string port;
  std::string prefix;  // path prefix without a trailing '/'
};

Result<BaseUrl> parse_base(const std::string& url) {
  BaseUrl b;
  std::string_view rest = url;
  if (rest.rfind("https://", 0) == 0) {
    b.tls = true;
    rest.remove_prefix(8);
  } else if (rest.rfind("http://", 0) == 0) {
    rest.remove_prefix(7);
  } else {
    return invalid_argument("GHL API base must start with http:// or https://");
  }
  const auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) b.prefix = std::string(rest.substr(slash));
  while (!b.prefix.empty() && b.prefix.back() == '/') b.prefix.pop_back();
  const auto colon = authority.rfind(':');
  if (colon != std::string_view::npos) {
    b.host = std::string(authority.substr(0, colon));
    b.port = std::string(authority.substr(colon + 1));
  } else {
    b.host = std::string(authority);
    b.port = b.tls ? "443" : "80";
  }
  if (b.host.empty() || b.port.empty()) return invalid_argument("GHL API base has no host: " + url);
  return b;
}

http::verb verb_of(std::string_view method) {
  if (method == "POST") return http::verb::post;
  if (method == "PUT") return http::verb::put;
  if (method == "DELETE") return http::verb::delete_;
  return http::verb::get;
}

template <class T>
std::optional<T> header_number(const http::response<http::string_body>& res, std::string_view name) {
  auto it = res.find(name);
  if (it == res.end()) return std::nullopt;
  const std::string_view v = it->value();
  T out{};
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc()) return std::nullopt;
  return out;
}

}  // namespace

struct HttpClient::Impl {
  BaseUrl base;
  std::chrono::milliseconds timeout;
  asio::io_context ioc;
  ssl::context tls{ssl::context::tls_client};

  http::request<http::string_body> make_request(const ApiCall& call, std::string_view token) const {
    http::request<http::string_body> req{verb_of(call.method), base.prefix + call.target, 11};
    req.set(http::field::host, base.host);
    req.set(http::field::user_agent, "reai");
    req.set(http::field::accept, "application/json");
    req.set("Version", kApiVersion);
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + std::string(token));
    if (!call.body.empty()) {
      req.set(http::field::content_type, call.content_type);
      req.body() = call.body;
    }
    req.prepare_payload();
    return req;
  }

  // Runs the io_context until the exchange ends; the stream's timer bounds it.
  template <class Stream>
  Result<HttpAnswer> exchange(Stream& stream, beast::tcp_stream& tcp_layer,
                              const http::request<http::string_body>& req) {
    beast::error_code ec;
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxAnswerBytes);
    tcp_layer.expires_after(timeout);
    http::async_write(stream, req, [&](beast::error_code e, std::size_t) {
      ec = e;
      if (e) return;
      http::async_read(stream, buffer, parser, [&](beast::error_code e2, std::size_t) { ec = e2; });
    });
    ioc.restart();
    ioc.run();
    if (ec) return unavailable("GHL " + std::string(req.target()) + ": " + ec.message());
    const auto& res = parser.get();
    HttpAnswer a;
    a.status = res.result_int();
    a.body = res.body();
    a.rate.retry_after_s = header_number<double>(res, "Retry-After");
    a.rate.remaining = header_number<int>(res, "X-RateLimit-Remaining");
    a.rate.interval_ms = header_number<double>(res, "X-RateLimit-Interval-Milliseconds");
    return a;
  }

  Result<tcp::resolver::results_type> resolve() {
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    auto results = resolver.resolve(base.host, base.port, ec);
    if (ec) return unavailable("GHL resolve " + base.host + ": " + ec.message());
    return results;
  }

  Status connect(beast::tcp_stream& stream, const tcp::resolver::results_type& endpoints) {
    beast::error_code ec;
    stream.expires_after(timeout);
    stream.async_connect(endpoints, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
    ioc.restart();
    ioc.run();
    if (ec) return unavailable("GHL connect " + base.host + ":" + base.port + ": " + ec.message());
    return Status::ok();
  }

  Result<HttpAnswer> send(const ApiCall& call, std::string_view token) {
    auto endpoints = resolve();
    if (!endpoints) return endpoints.status();
    const auto req = make_request(call, token);
    if (!base.tls) {
      beast::tcp_stream stream(ioc);
      REAI_RETURN_IF_ERROR(connect(stream, *endpoints));
      auto answer = exchange(stream, stream, req);
      beast::error_code ignored;
      stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
      return answer;
    }
    beast::ssl_stream<beast::tcp_stream> stream(ioc, tls);
    if (!SSL_set_tlsext_host_name(stream.native_handle(), base.host.c_str())) {
      return unavailable("GHL TLS: cannot set SNI host name");
    }
    stream.set_verify_callback(ssl::host_name_verification(base.host));
    REAI_RETURN_IF_ERROR(connect(beast::get_lowest_layer(stream), *endpoints));
    beast::error_code ec;
    beast::get_lowest_layer(stream).expires_after(timeout);
    stream.async_handshake(ssl::stream_base::client, [&](beast::error_code e) { ec = e; });
    ioc.restart();
    ioc.run();
    if (ec) return unavailable("GHL TLS handshake: " + ec.message());
    return exchange(stream, beast::get_lowest_layer(stream), req);
  }
};

Result<std::unique_ptr<HttpClient>> HttpClient::create(const std::string& base_url, std::chrono::milliseconds timeout) {
  auto base = parse_base(base_url);
  if (!base) return base.status();
  auto impl = std::make_unique<Impl>();
  impl->base = std::move(*base);
  impl->timeout = timeout;
  if (impl->base.tls) {
    impl->tls.set_default_verify_paths();
    impl->tls.set_verify_mode(ssl::verify_peer);
  }
  return std::unique_ptr<HttpClient>(new HttpClient(std::move(impl)));
}

HttpClient::HttpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpClient::~HttpClient() = default;

Result<HttpAnswer> HttpClient::send(const ApiCall& call, std::string_view token) { return impl_->send(call, token); }

}  // namespace reai::ghl
