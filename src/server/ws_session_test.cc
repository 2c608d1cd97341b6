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
#include <string>
#include <thread>

#include "bus/bus.h"
#include "scoring/scoring.h"
#include "server/server.h"
#include "store/store.h"
#include "server/server_test_fixture.h"
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

class WsSessionTest : public fixture::InProcessServerTest {
 protected:
  void SetUp() override {
    InProcessServerTest::SetUp();
    start();
    target_ = "/api/realtime/scoring/tenant-a?token=" + token("tenant-a");
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
