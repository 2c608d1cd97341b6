// Black-box test of GoHighLevel webhooks in through the real `reai` binary:
// `reai tenant add --ghl-location`, `reai serve --ghl-ed25519-key/--ghl-rsa-key`,
// signed deliveries over HTTP changing scores pushed over WebSocket, refusals
// changing nothing, and a delivery answered 200 just before kill -9 applied
// exactly once after the restart.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <csignal>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/time.h"
#include "support/ghl_signer.h"
#include "support/process.h"
#include "support/test_client.h"
#include "support/token.h"
#include "support/text_edit.h"

namespace reai::testing {
namespace {

namespace json = boost::json;

const std::string kSecret = kTestJwtSecret;
const std::string kContact = "CONa1b2c3d4e5f6g7h8i9";
const std::string kClock = "2026-07-02T10:00:30Z";
// Tokens are issued at the pinned clock: a server refuses one issued after its now.
const UnixSeconds kIssuedAt = parse_iso8601(kClock).value();

std::string fixture(const std::string& name) {
  std::ifstream in("tests/fixtures/ghl/" + name, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string fresh(const std::string& name) {
  return reai::testing::with_string_field(fixture(name), "timestamp", kClock);
}

std::string write_file(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

class GhlBinaryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir("reai-ghl");
    models_ = make_temp_dir("reai-ghl-models");
    ed_key_ = write_file(dir_, "ed25519.pem", signer_.ed25519_public_pem());
    rsa_key_ = write_file(dir_, "rsa.pem", signer_.rsa_public_pem());
    const std::string map = write_file(dir_, "map.json", R"({"budget":"fBudget01","pre_approval":"fPreApp01"})");
    auto add = run_reai({"tenant", "add", "--data-dir", dir_ + "/data", "--tenant", "t1", "--ghl-location",
                         "LOC8f2k1m9q0a7s6d5f4g", "--ghl-field-map", map});
    ASSERT_EQ(add.exit_code, 0) << add.output;
    token_ = reai_token("t1", server::Role::kAgent, kSecret, kIssuedAt);
  }

  void start() {
    port_ = free_port();
    server_ = std::make_unique<ReaiProcess>(std::vector<std::string>{
        "serve", "--port", std::to_string(port_), "--data-dir", dir_ + "/data", "--model-dir", models_,
        "--jwt-secret", kSecret, "--clock", kClock, "--ghl-ed25519-key", ed_key_, "--ghl-rsa-key", rsa_key_});
    ASSERT_TRUE(server_->wait_for_port(port_)) << server_->log();
    http_ = std::make_unique<HttpClient>("127.0.0.1", port_);
  }

  HttpResponse post_signed(const std::string& body) {
    return http_->request("POST", "/api/ghl/webhook", body, {}, {{"X-GHL-Signature", signer_.sign_ed25519(body)}});
  }

  // The lead's events_count once it reaches `n` (bounded wait), else the last seen.
  std::int64_t wait_events(std::int64_t n) {
    std::int64_t seen = -1;
    for (int i = 0; i < 500 && seen != n; ++i) {
      auto r = http_->get("/api/contacts/" + kContact + "/score", token_);
      if (r.status == 200) seen = json::parse(r.body).as_object().at("events_count").as_int64();
      if (seen != n) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return seen;
  }

  GhlSigner signer_;
  std::string dir_, models_, ed_key_, rsa_key_, token_;
  std::uint16_t port_ = 0;
  std::unique_ptr<ReaiProcess> server_;
  std::unique_ptr<HttpClient> http_;
};

TEST_F(GhlBinaryTest, SignedDeliveriesScoreRefusalsDoNotAndAKilledServerLosesNothing) {
  start();
  WsClient ws;
  ASSERT_TRUE(ws.connect("127.0.0.1", port_, "/api/realtime/scoring/t1?token=" + token_));
  auto created = post_signed(fresh("contact_create.json"));
  ASSERT_EQ(created.status, 200) << created.body << server_->log();
  auto sms = post_signed(fresh("inbound_sms.json"));
  ASSERT_EQ(sms.status, 200) << sms.body;
  ASSERT_EQ(wait_events(1), 1);
  auto pushed = ws.read();
  ASSERT_TRUE(pushed.has_value());
  EXPECT_EQ(json::parse(*pushed).as_object().at("lead_id").as_string(), kContact);

  // Replayed, stale, unsigned, wrongly signed: nothing changes.
  EXPECT_EQ(json::parse(post_signed(fresh("inbound_sms.json")).body).as_object().at("status").as_string(), "duplicate");
  const std::string call = fresh("outbound_call.json");
  const std::string stale = reai::testing::replace_all(call, kClock, "2026-07-02T09:50:00Z");
  EXPECT_EQ(post_signed(stale).status, 401);
  EXPECT_EQ(http_->post("/api/ghl/webhook", call).status, 401);
  GhlSigner stranger;
  EXPECT_EQ(http_->request("POST", "/api/ghl/webhook", call, {}, {{"X-GHL-Signature", stranger.sign_ed25519(call)}})
                .status,
            401);
  EXPECT_EQ(wait_events(1), 1);

  // Accepted (durable), then the process dies at once.
  ASSERT_EQ(http_->request("POST", "/api/ghl/webhook", call, {}, {{"x-wh-signature", signer_.sign_rsa(call)}}).status,
            200);
  EXPECT_EQ(server_->stop(SIGKILL), 128 + SIGKILL);
  start();
  EXPECT_EQ(wait_events(2), 2);
  EXPECT_EQ(json::parse(post_signed(call).body).as_object().at("status").as_string(), "duplicate");
  EXPECT_EQ(wait_events(2), 2);
  EXPECT_EQ(server_->stop(), 0) << server_->log();
}

}  // namespace
}  // namespace reai::testing
