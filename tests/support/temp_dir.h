// A fresh directory under the system temp dir, removed with everything in it
// when the object goes out of scope. Header-only, for tests and benchmarks
// of any module (no link dependency).
#pragma once

#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <system_error>

namespace reai::testing {

class TempDir {
 public:
  // `prefix` names the directory (prefix_XXXXXX) so a leftover says whose it is.
  explicit TempDir(const std::string& prefix = "reai_test") {
    std::string pattern = (std::filesystem::temp_directory_path() / (prefix + "_XXXXXX")).string();
    if (::mkdtemp(pattern.data()) == nullptr) std::abort();
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace reai::testing
