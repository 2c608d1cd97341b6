// Test-only helpers shared by the bus tests (not part of reai_bus).
#pragma once

#include <string>
#include <unistd.h>

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

}  // namespace reai::bus
