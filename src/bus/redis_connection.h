// Internal to src/bus: one synchronous hiredis connection with timeouts, and
// the parsing of redis:// URLs. Not thread-safe: one owner (or a mutex) each.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <hiredis.h>

#include "bus/bus.h"

namespace reai::bus::redis {

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

// redis://host[:port][?prefix=P], or unix:///absolute/path.sock[?prefix=P]
// for a server on this host's Unix-domain socket.
Result<RedisEndpoint> parse_url(std::string_view url);

// A Lua script and its SHA-1 digest, the name EVALSHA runs it by.
class LuaScript {
 public:
  // Throws std::runtime_error when OpenSSL cannot compute SHA-1 (a broken
  // installation); the scripts are namespace-scope constants, so that ends
  // the process at start-up rather than failing calls later.
  explicit LuaScript(std::string_view source);
  std::string_view source() const { return source_; }
  std::string_view sha1() const { return sha1_; }  // 40 lowercase hex digits

 private:
  std::string source_;
  std::string sha1_;
};

class Connection {
 public:
  Connection() = default;
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Replaces any current connection. `io_timeout` bounds every command
  // (0: none, for blocking reads that are woken by interrupt()).
  Status connect(const RedisEndpoint& endpoint, std::chrono::milliseconds io_timeout);
  bool connected() const { return ctx_ != nullptr; }
  void close();
  // Runs one command (arguments binary-safe). A transport failure closes the
  // connection and returns Unavailable; an error reply returns Internal.
  Result<Reply> command(const std::vector<std::string_view>& args);
  // Runs `script`; `args` are numkeys, the keys, then the script's ARGV.
  // Sent as EVALSHA, so a call carries the 40-byte digest instead of the
  // script and Redis does not hash the text again. A server that does not
  // know the digest (first call, a restarted or flushed Redis) answers
  // NOSCRIPT, and the call is repeated once as EVAL, which also caches it
  // there. Errors as command().
  Result<Reply> eval(const LuaScript& script, const std::vector<std::string_view>& args);
  // How many eval() calls had to send the script text (NOSCRIPT answers).
  std::uint64_t scripts_sent() const { return scripts_sent_; }
  // Makes a command blocked in another thread return with an error (the
  // socket is shut down, not closed, so that thread still owns it).
  void interrupt();

 private:
  // Sends `args` and answers the reply as it came, an error reply included;
  // a transport failure closes the connection and answers Unavailable.
  Result<Reply> exchange(const std::vector<std::string_view>& args);

  redisContext* ctx_ = nullptr;
  std::uint64_t scripts_sent_ = 0;
  // Guards fd_ between close() and interrupt() from another thread, so a
  // shutdown never hits a descriptor number the system already reused.
  std::mutex fd_mu_;
  int fd_ = -1;
};

std::string reply_string(const redisReply* r);  // "" unless string/status
long long reply_integer(const redisReply* r);   // integer, or numeric string; 0 otherwise

}  // namespace reai::bus::redis
