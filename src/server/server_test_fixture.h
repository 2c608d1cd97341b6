// The fixture of the server module's tests: a real Server on an ephemeral
// port over the memory store, the in-process bus and cache, and a real
// engine on an empty model directory (fallback scoring), driven over real
// HTTP and WebSocket. Test-only; each test file derives its own fixture.
#pragma once

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bus/bus.h"
#include "scoring/scoring.h"
#include "server/server.h"
#include "store/store.h"
#include "support/test_client.h"
#include "support/token.h"

namespace reai::server::fixture {

inline constexpr UnixSeconds kNow = 1'700'000'000;
inline constexpr const char* kSecret = reai::testing::kTestJwtSecret;

// A fresh directory under the system's temp dir; the caller removes it.
inline std::filesystem::path make_temp_dir(const std::string& tag) {
  std::random_device rd;
  auto p = std::filesystem::temp_directory_path() / ("reai_server_test_" + tag + "_" + std::to_string(rd()));
  std::filesystem::create_directories(p);
  return p;
}

// The body as a JSON object; a test failure (and {}) when it is not one.
inline boost::json::object as_object(const reai::testing::HttpResponse& r) {
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(r.body, ec);
  if (ec || !v.is_object()) {
    ADD_FAILURE() << "not a JSON object: " << r.body;
    return {};
  }
  return v.as_object();
}

// The `error` text of an error answer ("" when absent).
inline std::string error_of(const reai::testing::HttpResponse& r) {
  auto o = as_object(r);
  return o.contains("error") && o["error"].is_string() ? std::string(o["error"].as_string()) : std::string();
}

class InProcessServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_dir_ = make_temp_dir("models");
    store_ = store::make_memory_store();
    bus_ = bus::make_in_process_bus(1024);
    cache_ = bus::make_in_process_cache(clock_);
    registry_ = std::make_unique<scoring::DirectoryModelRegistry>(model_dir_.string());
    ASSERT_TRUE(registry_->reload());
    engine_ = std::make_unique<scoring::LeadScoringEngine>(*registry_, cache_.get());
  }

  void TearDown() override {
    if (server_) server_->stop();
    server_.reset();
    std::error_code ec;
    std::filesystem::remove_all(model_dir_, ec);
    for (auto& d : extra_dirs_) std::filesystem::remove_all(d, ec);
  }

  // Starts the server with `config` (port, secret and threads are the
  // fixture's) and an HTTP client on it.
  void start(ServerConfig config = {}) {
    config.port = 0;
    config.jwt_secret = kSecret;
    config.threads = 2;
    server_ = std::make_unique<Server>(config, ServerDeps{*store_, *bus_, *cache_, *engine_, *registry_, clock_});
    Status s = server_->start();
    ASSERT_TRUE(s) << s.to_string();
    ASSERT_NE(server_->port(), 0);
    http_ = std::make_unique<reai::testing::HttpClient>("127.0.0.1", server_->port());
  }

  std::string token(const std::string& tenant, Role role = Role::kAgent) {
    return reai::testing::reai_token(tenant, role, kSecret, kNow);
  }

  ManualClock clock_{kNow};
  std::filesystem::path model_dir_;
  std::vector<std::filesystem::path> extra_dirs_;  // removed at TearDown
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<bus::Bus> bus_;
  std::unique_ptr<bus::Cache> cache_;
  std::unique_ptr<scoring::DirectoryModelRegistry> registry_;
  std::unique_ptr<scoring::LeadScoringEngine> engine_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<reai::testing::HttpClient> http_;
};

}  // namespace reai::server::fixture
