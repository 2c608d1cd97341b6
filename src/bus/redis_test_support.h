// Test-only helpers shared by the bus tests (not part of reai_bus).
#pragma once

#include <string>
#include <unistd.h>

#include "support/private_redis.h"

namespace reai::bus {

// "test:<pid>:<n>:" - unique per process and call, so runs never share keys.
inline std::string numbered_prefix(int n) {
  std::string out = "test:";
  out += std::to_string(::getpid());
  out += ':';
  out += std::to_string(n);
  out += ':';
  return out;
}

// The port of the run's shared test Redis (fixture redis_server).
inline int test_redis_port() { return reai::testing::shared_redis_port(); }

}  // namespace reai::bus
