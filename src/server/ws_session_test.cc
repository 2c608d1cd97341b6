// The WebSocket session's own framing on a real server: pings answered in
// between updates, both close handshakes, protocol errors, replay order.
// (server_test.cc covers admission, overflow and graceful stop.)
#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>
#include <chrono>
#include <filesystem>
#include <random>
#include <string>
#include <thread>

#include "bus/bus.h"
#include "scoring/scoring.h"
#include "server/server.h"
#include "store/store.h"
#include "support/test_client.h"

namespace reai::server {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using reai::testing::HttpClient;
using reai::testing::WsClient;

constexpr UnixSeconds kNow = 1'700'000'000;
constexpr const char* kSecret = "ws-session-secret";

class WsSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    model_dir_ = fs::temp_directory_path() / ("reai_ws_session_test_" + std::to_string(rd()));
    fs::create_directories(model_dir_);
    store_ = store::make_memory_store();
    bus_ = bus::make_in_process_bus(1024);
    cache_ = bus::make_in_process_cache(clock_);
    registry_ = std::make_unique<scoring::DirectoryModelRegistry>(model_dir_.string());
    ASSERT_TRUE(registry_->reload());
    engine_ = std::make_unique<scoring::LeadScoringEngine>(*registry_, cache_.get());
    ServerConfig config;
    config.port = 0;
    config.jwt_secret = kSecret;
    config.threads = 2;
    server_ = std::make_unique<Server>(config, ServerDeps{*store_, *bus_, *cache_, *engine_, *registry_, clock_});
    Status s = server_->start();
    ASSERT_TRUE(s) << s.to_string();
    auto t = issue_token("tenant-a", Role::kAgent, kSecret, 3600, kNow);
    ASSERT_TRUE(t);
    target_ = "/api/realtime/scoring/tenant-a?token=" + *t;
  }

  void TearDown() override {
    if (server_) server_->stop();
    server_.reset();
    std::error_code ec;
    fs::remove_all(model_dir_, ec);
  }

  // A payload whose `pad` makes the frame land in each header length class.
  std::uint64_t publish(std::size_t pad) {
    auto payload = std::make_shared<const std::string>(R"({"lead_id":"x","pad":")" + std::string(pad, 'p') + "\"}");
    auto seq = bus_->publish("tenant-a", "score_update", payload);
    EXPECT_TRUE(seq);
    return seq ? *seq : 0;
  }

  // A Beast client, for what WsClient does not expose.
  void connect(websocket::stream<tcp::socket>& ws) {
    ws.next_layer().connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), server_->port()));
    ws.handshake("127.0.0.1", target_);
  }

  bool connections_drop_to_zero() {
    HttpClient http("127.0.0.1", server_->port());
    for (int i = 0; i < 200; ++i) {
      if (http.get("/metrics").body.find("reai_websocket_connections 0") != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

  ManualClock clock_{kNow};
  fs::path model_dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<bus::Bus> bus_;
  std::unique_ptr<bus::Cache> cache_;
  std::unique_ptr<scoring::DirectoryModelRegistry> registry_;
  std::unique_ptr<scoring::LeadScoringEngine> engine_;
  std::unique_ptr<Server> server_;
  std::string target_;
};

TEST_F(WsSessionTest, PingsAreAnsweredBetweenUpdatesAndEveryUpdateArrivesIntact) {
  WsClient ws;
  ASSERT_TRUE(ws.connect("127.0.0.1", server_->port(), target_));
  // 7-bit, 16-bit and 64-bit frame lengths, several queued per gather write.
  const std::size_t pads[] = {10, 100, 200, 65500, 70000};
  std::vector<std::pair<std::uint64_t, std::size_t>> sent;
  for (int round = 0; round < 40; ++round) {
    for (std::size_t pad : pads) sent.emplace_back(publish(pad), pad);
    ASSERT_TRUE(ws.ping()) << "no pong in round " << round << ": " << ws.error();
  }
  for (const auto& [seq, pad] : sent) {
    auto text = ws.read();
    ASSERT_TRUE(text) << "missing seq " << seq << ": " << ws.error();
    auto m = json::parse(*text).as_object();
    EXPECT_EQ(m["type"].as_string(), "score_update");
    ASSERT_EQ(m["seq"].to_number<std::uint64_t>(), seq);
    EXPECT_EQ(m["pad"].as_string().size(), pad);
  }
}

TEST_F(WsSessionTest, ClientCloseIsEchoedAndTheConnectionEnds) {
  net::io_context ioc;
  websocket::stream<tcp::socket> ws(ioc);
  connect(ws);
  publish(10);
  beast::flat_buffer b;
  ws.read(b);
  EXPECT_NE(beast::buffers_to_string(b.data()).find("\"score_update\""), std::string::npos);
  beast::error_code ec;
  ws.close(websocket::close_reason(websocket::close_code::normal, "bye"), ec);  // reads the echo, then EOF
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(ws.reason().code, websocket::close_code::normal);
  EXPECT_TRUE(connections_drop_to_zero());
}

TEST_F(WsSessionTest, UnmaskedClientFrameClosesWithProtocolError) {
  net::io_context ioc;
  websocket::stream<tcp::socket> ws(ioc);
  connect(ws);
  const std::string unmasked("\x81\x02hi", 4);  // a client frame without the mandatory mask
  net::write(ws.next_layer(), net::buffer(unmasked));
  beast::flat_buffer b;
  beast::error_code ec;
  ws.read(b, ec);
  EXPECT_EQ(ec, websocket::error::closed) << ec.message();
  EXPECT_EQ(ws.reason().code, websocket::close_code::protocol_error);
  EXPECT_TRUE(connections_drop_to_zero());
}

TEST_F(WsSessionTest, OversizedClientFrameClosesWithTooBig) {
  net::io_context ioc;
  websocket::stream<tcp::socket> ws(ioc);
  connect(ws);
  ws.auto_fragment(false);
  ws.write(net::buffer(std::string(200 * 1024, 'x')));
  beast::flat_buffer b;
  beast::error_code ec;
  ws.read(b, ec);
  EXPECT_EQ(ec, websocket::error::closed) << ec.message();
  EXPECT_EQ(ws.reason().code, websocket::close_code::too_big);
  EXPECT_TRUE(connections_drop_to_zero());
}

TEST_F(WsSessionTest, ResumeReplaysMissedUpdatesInOrderBeforeLiveOnes) {
  const std::uint64_t first = publish(10);
  std::vector<std::uint64_t> missed;
  for (int i = 0; i < 50; ++i) missed.push_back(publish(i % 2 ? 70000 : 20));
  WsClient ws;
  ASSERT_TRUE(ws.connect("127.0.0.1", server_->port(), target_ + "&since=" + std::to_string(first)));
  const std::uint64_t live = publish(30);
  missed.push_back(live);
  for (std::uint64_t seq : missed) {
    auto text = ws.read();
    ASSERT_TRUE(text) << ws.error();
    EXPECT_EQ(json::parse(*text).as_object()["seq"].to_number<std::uint64_t>(), seq);
  }
}

}  // namespace
}  // namespace reai::server
