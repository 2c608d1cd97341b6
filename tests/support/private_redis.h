// redis-servers for tests, driven through scripts/redis-test-server (the
// script CTest's `redis_server` fixture uses), each on a port the script
// picks free and records in its directory: test runs of several checkouts or
// builds at once never meet on one server. Header-only (bus_test uses it
// without the rest of the test support). Run from the source tree.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>

#include "support/build_dir.h"

namespace reai::testing {

// One redis-server with its files in a directory under the build dir.
class PrivateRedis {
 public:
  ~PrivateRedis() {
    if (owned_) (void)run("stop");
  }
  PrivateRedis(const PrivateRedis&) = delete;
  PrivateRedis& operator=(const PrivateRedis&) = delete;

  // test_build_dir()/name, started and stopped by this object.
  static PrivateRedis own(const std::string& name) { return PrivateRedis(test_build_dir() + "/" + name, true); }
  // The run's shared server (fixture redis_server starts and stops it).
  static PrivateRedis shared() { return PrivateRedis(test_build_dir() + "/redis-test", false); }

  // Each call answers whether the script succeeded. A restart after kill()
  // keeps the port, so clients can reconnect.
  bool start() { return run("start"); }
  bool kill() { return run("kill"); }
  // The port the script recorded; 0 before the first start.
  std::uint16_t port() const {
    std::ifstream in(dir_ + "/port");
    unsigned port = 0;
    in >> port;
    return static_cast<std::uint16_t>(port);
  }
  // redis://127.0.0.1:PORT?prefix=PREFIX (no prefix when empty).
  std::string url(const std::string& prefix = "") const {
    std::string url = "redis://127.0.0.1:" + std::to_string(port());
    return prefix.empty() ? url : url + "?prefix=" + prefix;
  }
  // The server's Unix-domain socket, DIR/redis.sock; empty when it has none
  // (the script skips it when the path is too long for a socket address).
  std::string unix_socket() const {
    std::error_code ec;
    const auto path = std::filesystem::absolute(dir_ + "/redis.sock", ec);
    return !ec && std::filesystem::is_socket(path, ec) ? path.string() : "";
  }

 private:
  PrivateRedis(std::string dir, bool owned) : dir_(std::move(dir)), owned_(owned) {}
  bool run(const std::string& command) {
    const std::string line = "scripts/redis-test-server " + command + " '" + dir_ + "' >/dev/null";
    return std::system(line.c_str()) == 0;
  }
  std::string dir_;
  bool owned_;
};

// The port of the run's shared test Redis; 0 when the fixture has not started it.
inline std::uint16_t shared_redis_port() { return PrivateRedis::shared().port(); }

}  // namespace reai::testing
