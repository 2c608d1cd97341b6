// A private PostgreSQL for black-box tests, driven through
// scripts/pg-test-server (the script CTest's `postgres` fixture uses), with
// its files under the build directory. Run from the source tree.
#pragma once

#include <cstdlib>
#include <fstream>
#include <string>

#include "support/build_dir.h"

namespace reai::testing {

// One PostgreSQL server under test_build_dir()/name; destroyed with the object.
// Each call answers whether the script succeeded.
class PrivatePostgres {
 public:
  explicit PrivatePostgres(const std::string& name) : dir_(test_build_dir() + "/" + name) {}
  ~PrivatePostgres() { (void)run("destroy"); }
  PrivatePostgres(const PrivatePostgres&) = delete;
  PrivatePostgres& operator=(const PrivatePostgres&) = delete;

  bool fresh() { return run("fresh"); }  // an empty cluster, started
  bool start() { return run("start"); }
  bool stop() { return run("stop"); }
  // The libpq URL the script wrote; empty before the first start.
  std::string url() const {
    std::ifstream in(dir_ + "/url");
    std::string url;
    std::getline(in, url);
    return url;
  }

 private:
  bool run(const std::string& command) {
    const std::string line = "scripts/pg-test-server " + command + " '" + dir_ + "' >/dev/null";
    return std::system(line.c_str()) == 0;
  }
  std::string dir_;
};

}  // namespace reai::testing
