// Where the tests' build keeps its files (private servers, trained models).
#pragma once

#include <cstdlib>
#include <string>

namespace reai::testing {

// The build directory the test binaries came from (REAI_BUILD_DIR, set by
// reai_test() and the CTest fixtures), else "build".
inline std::string test_build_dir() {
  const char* build = std::getenv("REAI_BUILD_DIR");
  return build && *build ? build : "build";
}

}  // namespace reai::testing
