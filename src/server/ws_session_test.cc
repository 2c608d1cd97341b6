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
#include <mutex>
#include <span>
#include <utility>
#include <vector>
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

// A bus whose own subscription runs behind its replay buffer, as the Redis
// bus's does: since() already answers a message the hub has not been handed
// yet. Deliveries are held while `hold` is set and handed over by release().
class LateDeliveryBus : public bus::Bus {
 public:
  explicit LateDeliveryBus(std::unique_ptr<bus::Bus> inner) : inner_(std::move(inner)) {}

  void hold() { holding_ = true; }
  // Hands the held messages to the subscribers, in order, on this thread.
  void release() {
    std::vector<bus::BusMessage> held;
    std::vector<Handler> handlers;
    {
      std::lock_guard lock(mu_);
      holding_ = false;
      held.swap(held_);
      for (auto& [id, h] : handlers_) handlers.push_back(h);
    }
    for (const auto& m : held) {
      for (const auto& h : handlers) h(m);
    }
  }

  Result<std::uint64_t> publish(std::string_view tenant_id, std::string_view topic,
                                std::shared_ptr<const std::string> payload) override {
    return inner_->publish(tenant_id, topic, std::move(payload));
  }
  Result<std::vector<std::uint64_t>> publish_each(std::span<const bus::Outgoing> messages) override {
    return inner_->publish_each(messages);
  }
  bus::SubscriptionId subscribe(Handler handler) override {
    const auto id = inner_->subscribe([this, handler](const bus::BusMessage& m) {
      {
        std::lock_guard lock(mu_);
        if (holding_) return held_.push_back(m);
      }
      handler(m);
    });
    std::lock_guard lock(mu_);
    handlers_.emplace_back(id, std::move(handler));
    return id;
  }
  void unsubscribe(bus::SubscriptionId id) override {
    inner_->unsubscribe(id);
    std::lock_guard lock(mu_);
    std::erase_if(handlers_, [id](const auto& h) { return h.first == id; });
  }
  Result<bus::ReplayResult> since(std::string_view tenant_id, std::uint64_t since_seq) override {
    return inner_->since(tenant_id, since_seq);
  }
  std::uint64_t last_seq(std::string_view tenant_id) override { return inner_->last_seq(tenant_id); }
  Status health() override { return inner_->health(); }
  Status notify(std::string_view tenant_id, std::string_view topic,
                std::shared_ptr<const std::string> payload) override {
    return inner_->notify(tenant_id, topic, std::move(payload));
  }
  bus::SubscriptionId subscribe_notices(Handler handler) override { return inner_->subscribe_notices(std::move(handler)); }
  void unsubscribe_notices(bus::SubscriptionId id) override { inner_->unsubscribe_notices(id); }

 private:
  std::unique_ptr<bus::Bus> inner_;
  std::mutex mu_;
  bool holding_ = false;
  std::vector<bus::BusMessage> held_;
  std::vector<std::pair<bus::SubscriptionId, Handler>> handlers_;
};

class WsResumeRaceTest : public fixture::InProcessServerTest {
 protected:
  void SetUp() override {
    InProcessServerTest::SetUp();
    auto late = std::make_unique<LateDeliveryBus>(std::move(bus_));
    late_ = late.get();
    bus_ = std::move(late);
    start();
  }

  std::uint64_t publish(const std::string& tenant) {
    auto seq = bus_->publish(tenant, "score_update", std::make_shared<const std::string>(R"({"lead_id":"x"})"));
    EXPECT_TRUE(seq);
    return seq ? *seq : 0;
  }

  LateDeliveryBus* late_ = nullptr;
};

// A client that saw seq 3 on another instance resumes here with since=3
// while this instance's hub has not yet been handed 1..3: those copies come
// after the (empty, complete) replay and must not reach the client again.
TEST_F(WsResumeRaceTest, ResumingClientNeverGetsAgainWhatItsSinceCovers) {
  late_->hold();
  for (int i = 0; i < 3; ++i) publish("tenant-a");
  WsClient ws;
  ASSERT_TRUE(ws.connect("127.0.0.1", server_->port(),
                         "/api/realtime/scoring/tenant-a?token=" + token("tenant-a") + "&since=3"))
      << ws.error();
  late_->release();
  EXPECT_EQ(publish("tenant-a"), 4u);
  auto text = ws.read();
  ASSERT_TRUE(text) << ws.error();
  EXPECT_EQ(json::parse(*text).as_object()["seq"].to_number<std::uint64_t>(), 4u) << *text;
  EXPECT_FALSE(ws.read(std::chrono::milliseconds(200)).has_value());
}

// A client ahead of the bus (it saw a previous life of the server) is told
// to resynchronise and then gets the new life's messages from seq 1 on.
TEST_F(WsResumeRaceTest, ClientAheadOfTheBusResynchronisesAndGetsTheNewNumbering) {
  WsClient ws;
  ASSERT_TRUE(ws.connect("127.0.0.1", server_->port(),
                         "/api/realtime/scoring/tenant-a?token=" + token("tenant-a") + "&since=500"))
      << ws.error();
  auto resync = ws.read();
  ASSERT_TRUE(resync) << ws.error();
  EXPECT_EQ(json::parse(*resync).as_object()["type"].as_string(), "resync") << *resync;
  EXPECT_EQ(publish("tenant-a"), 1u);
  auto text = ws.read();
  ASSERT_TRUE(text) << ws.error();
  EXPECT_EQ(json::parse(*text).as_object()["seq"].to_number<std::uint64_t>(), 1u) << *text;
}

}  // namespace
}  // namespace reai::server
