#include "bus/redis_connection.h"

#include <signal.h>
#include <sys/socket.h>

#include <charconv>
#include <cstring>
#include <mutex>
#include <stdexcept>

#include <openssl/evp.h>

namespace reai::bus::redis {
namespace {

// hiredis 0.14 sends with plain write(), not send(MSG_NOSIGNAL), and Linux has
// no per-socket opt-out: a command written to a connection that interrupt()
// shut down, or whose reset Redis already reported, raises SIGPIPE, whose
// default action kills the whole process (every tenant's scoring, not just
// this connection). Ignored once, process-wide, and only if nobody chose a
// disposition; the write then fails with EPIPE and the command answers
// Unavailable like any other transport failure. Asio (MSG_NOSIGNAL) and libpq
// (which guards its own sends) never needed this.
void ignore_sigpipe_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction current {};
    if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
      ::signal(SIGPIPE, SIG_IGN);
    }
  });
}

}  // namespace

Result<RedisEndpoint> parse_url(std::string_view url) {
  constexpr std::string_view kScheme = "redis://";
  constexpr std::string_view kUnixScheme = "unix://";
  const bool unix_socket = url.substr(0, kUnixScheme.size()) == kUnixScheme;
  if (!unix_socket && url.substr(0, kScheme.size()) != kScheme) {
    return invalid_argument("not a redis:// or unix:// URL: " + std::string(url));
  }
  std::string_view rest = url.substr(unix_socket ? kUnixScheme.size() : kScheme.size());
  RedisEndpoint endpoint;
  if (auto q = rest.find('?'); q != std::string_view::npos) {
    std::string_view query = rest.substr(q + 1);
    rest = rest.substr(0, q);
    constexpr std::string_view kPrefix = "prefix=";
    if (query.substr(0, kPrefix.size()) != kPrefix || query.size() == kPrefix.size() ||
        query.find('&') != std::string_view::npos) {
      return invalid_argument("redis URL: the only query parameter is prefix=NAME");
    }
    endpoint.prefix = std::string(query.substr(kPrefix.size())) + ":";
  }
  if (unix_socket) {
    if (rest.size() < 2 || rest.front() != '/' || rest.back() == '/') {
      return invalid_argument("redis URL: unix:// needs an absolute socket path");
    }
    endpoint.unix_socket = std::string(rest);
    return endpoint;
  }
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  if (rest.find('/') != std::string_view::npos) return invalid_argument("redis URL: no path expected");
  std::string_view host = rest;
  if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    host = rest.substr(0, colon);
    std::string_view port = rest.substr(colon + 1);
    int value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc() || end != port.data() + port.size() || value <= 0 || value > 65535) {
      return invalid_argument("redis URL: bad port '" + std::string(port) + "'");
    }
    endpoint.port = static_cast<std::uint16_t>(value);
  }
  if (host.empty()) return invalid_argument("redis URL: missing host");
  endpoint.host = std::string(host);
  return endpoint;
}

Connection::~Connection() { close(); }

void Connection::close() {
  {
    std::lock_guard lock(fd_mu_);
    fd_ = -1;
  }
  if (ctx_ != nullptr) redisFree(ctx_);
  ctx_ = nullptr;
}

Status Connection::connect(const RedisEndpoint& endpoint, std::chrono::milliseconds io_timeout) {
  ignore_sigpipe_once();
  close();
  constexpr auto kConnectTimeout = std::chrono::milliseconds(500);
  timeval tv{0, static_cast<suseconds_t>(std::chrono::microseconds(kConnectTimeout).count())};
  redisContext* ctx = endpoint.unix_socket.empty()
                          ? redisConnectWithTimeout(endpoint.host.c_str(), endpoint.port, tv)
                          : redisConnectUnixWithTimeout(endpoint.unix_socket.c_str(), tv);
  if (ctx == nullptr) return unavailable("redis: out of memory");
  if (ctx->err != 0) {
    const std::string where =
        endpoint.unix_socket.empty() ? endpoint.host + ":" + std::to_string(endpoint.port) : endpoint.unix_socket;
    std::string why = "redis " + where + ": " + ctx->errstr;
    redisFree(ctx);
    return unavailable(why);
  }
  if (io_timeout.count() > 0) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(io_timeout).count();
    timeval io{static_cast<time_t>(us / 1000000), static_cast<suseconds_t>(us % 1000000)};
    redisSetTimeout(ctx, io);
  }
  ctx_ = ctx;
  std::lock_guard lock(fd_mu_);
  fd_ = ctx->fd;
  return Status::ok();
}

Result<Reply> Connection::exchange(const std::vector<std::string_view>& args) {
  if (ctx_ == nullptr) return unavailable("redis: not connected");
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (std::string_view a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  Reply reply(static_cast<redisReply*>(
      redisCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lengths.data())));
  if (!reply) {
    std::string why = std::string("redis: ") + (ctx_->err != 0 ? ctx_->errstr : "no reply");
    close();
    return unavailable(why);
  }
  return reply;
}

namespace {

Result<Reply> error_reply_as_status(Result<Reply> reply) {
  if (reply && (*reply)->type == REDIS_REPLY_ERROR) {
    return internal_error("redis: " + std::string((*reply)->str, (*reply)->len));
  }
  return reply;
}

bool is_noscript(const Result<Reply>& reply) {
  return reply && (*reply)->type == REDIS_REPLY_ERROR &&
         std::string_view((*reply)->str, (*reply)->len).starts_with("NOSCRIPT");
}

}  // namespace

Result<Reply> Connection::command(const std::vector<std::string_view>& args) {
  return error_reply_as_status(exchange(args));
}

Result<Reply> Connection::eval(const LuaScript& script, const std::vector<std::string_view>& args) {
  std::vector<std::string_view> call;
  call.reserve(args.size() + 2);
  call.push_back("EVALSHA");
  call.push_back(script.sha1());
  call.insert(call.end(), args.begin(), args.end());
  auto reply = exchange(call);
  if (is_noscript(reply)) {
    ++scripts_sent_;
    call[0] = "EVAL";
    call[1] = script.source();
    reply = exchange(call);
  }
  return error_reply_as_status(std::move(reply));
}

void Connection::interrupt() {
  std::lock_guard lock(fd_mu_);
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
}

LuaScript::LuaScript(std::string_view source) : source_(source) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(source_.data(), source_.size(), digest, &length, EVP_sha1(), nullptr) != 1) {
    throw std::runtime_error("redis: SHA-1 of a Lua script failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  sha1_.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) {
    sha1_.push_back(kHex[digest[i] >> 4]);
    sha1_.push_back(kHex[digest[i] & 0xf]);
  }
}

std::string reply_string(const redisReply* r) {
  if (r == nullptr) return {};
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS) return std::string(r->str, r->len);
  return {};
}

long long reply_integer(const redisReply* r) {
  if (r == nullptr) return 0;
  if (r->type == REDIS_REPLY_INTEGER) return r->integer;
  if (r->type == REDIS_REPLY_STRING) {
    long long v = 0;
    std::from_chars(r->str, r->str + r->len, v);
    return v;
  }
  return 0;
}

}  // namespace reai::bus::redis
