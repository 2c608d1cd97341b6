// Internal to src/bus: one synchronous hiredis connection with timeouts, and
// the parsing of redis:// URLs. Not thread-safe: one owner (or a mutex) each.
#pragma once

#include <chrono>
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

// redis://host[:port][?prefix=P]
Result<RedisEndpoint> parse_url(std::string_view url);

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
  // Makes a command blocked in another thread return with an error (the
  // socket is shut down, not closed, so that thread still owns it).
  void interrupt();

 private:
  redisContext* ctx_ = nullptr;
  // Guards fd_ between close() and interrupt() from another thread, so a
  // shutdown never hits a descriptor number the system already reused.
  std::mutex fd_mu_;
  int fd_ = -1;
};

std::string reply_string(const redisReply* r);  // "" unless string/status
long long reply_integer(const redisReply* r);   // integer, or numeric string; 0 otherwise

}  // namespace reai::bus::redis
