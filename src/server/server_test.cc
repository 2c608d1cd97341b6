// In-process server tests: real HTTP and WebSocket against a Server on an
// ephemeral port, with the memory store, in-process bus/cache and a real
// engine on an empty model directory (fallback scoring).
#include "server/server.h"

#include <gtest/gtest.h>

// The Unix-socket tests below read HTTP and WebSocket-handshake responses with
// Beast; GCC 12 at -O2 with the sanitizers then reports a false
// -Wmaybe-uninitialized inside Beast's response parser (basic_parser.hpp).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#pragma GCC diagnostic pop
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "bus/bus.h"
#include "core/time.h"
#include "scoring/lead_model.h"
#include "scoring/scoring.h"
#include "scoring/synthetic_history.h"
#include "store/store.h"
#include "server/server_test_fixture.h"
#include "support/test_client.h"

namespace reai::server {
namespace {

namespace json = boost::json;
namespace fs = std::filesystem;
using reai::testing::HttpClient;
using reai::testing::HttpResponse;
using reai::testing::WsClient;

using fixture::as_object;
using fixture::error_of;
using fixture::kNow;
using fixture::kSecret;
using fixture::make_temp_dir;

class ServerTest : public fixture::InProcessServerTest {
 protected:
  std::string ws_target(const std::string& tenant, const std::string& tok, std::optional<std::uint64_t> since = {}) {
    std::string t = "/api/realtime/scoring/" + tenant + "?token=" + tok;
    if (since) t += "&since=" + std::to_string(*since);
    return t;
  }

  HttpResponse post_event(const std::string& tok, const std::string& contact, const std::string& type = "sms_in",
                          const std::string& event_id = {}) {
    std::string body = R"({"contact_id":")" + contact + R"(","type":")" + type + "\"";
    if (!event_id.empty()) body += R"(,"event_id":")" + event_id + "\"";
    body += "}";
    return http_->post("/api/events", body, tok);
  }

  static json::object message(const std::optional<std::string>& text) {
    if (!text) {
      ADD_FAILURE() << "no WebSocket message";
      return {};
    }
    return json::parse(*text).as_object();
  }

};

TEST_F(ServerTest, HealthReadyAndMetricsNeedNoToken) {
  start();
  auto health = http_->get("/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(as_object(health)["status"].as_string(), "ok");

  auto ready = http_->get("/readyz");
  ASSERT_EQ(ready.status, 200) << ready.body;
  auto r = as_object(ready);
  EXPECT_EQ(r["status"].as_string(), "ready");
  EXPECT_EQ(r["store"].as_object()["status"].as_string(), "ok");
  EXPECT_EQ(r["bus"].as_object()["status"].as_string(), "ok");
  EXPECT_EQ(r["cache"].as_object()["status"].as_string(), "ok");
  EXPECT_EQ(r["model"].as_object()["version"].as_string(), "fallback");
  EXPECT_EQ(r["webhook"].as_object()["status"].as_string(), "ok");

  // HEAD: the GET answer's headers and no body.
  auto head = http_->request("HEAD", "/healthz");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  EXPECT_EQ(head.header("content-length"), std::to_string(health.body.size()));

  // Read-only: other methods are refused, not answered as if they did something.
  for (const char* path : {"/healthz", "/readyz", "/metrics"}) {
    for (const char* method : {"POST", "PUT", "DELETE"}) {
      auto refused = http_->request(method, path, "{}");
      EXPECT_EQ(refused.status, 405) << method << " " << path << " -> " << refused.body;
      EXPECT_FALSE(error_of(refused).empty()) << refused.body;
    }
  }
}

TEST_F(ServerTest, PostEventScoresWithFallbackModel) {
  start();
  const std::string tok = token("tenant-a");
  auto res = post_event(tok, "c1", "sms_in", "e1");
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(res.header("content-type"), "application/json");
  auto s = as_object(res);
  EXPECT_EQ(s["tenant_id"].as_string(), "tenant-a");
  EXPECT_EQ(s["lead_id"].as_string(), "c1");
  EXPECT_EQ(s["model"].as_string(), "fallback");
  EXPECT_TRUE(s.contains("fallback_reason"));
  EXPECT_EQ(s["events_count"].as_int64(), 1);
  EXPECT_EQ(s["scored_at"].as_string(), "2023-11-14T22:13:20Z");
  for (const char* field : {"probability", "score", "band", "confidence", "reasons", "latency_us"}) {
    EXPECT_TRUE(s.contains(field)) << field;
  }

  auto score = http_->get("/api/contacts/c1/score", tok);
  ASSERT_EQ(score.status, 200) << score.body;
  EXPECT_EQ(as_object(score)["lead_id"].as_string(), "c1");

  auto history = http_->get("/api/contacts/c1/scores?limit=5", tok);
  ASSERT_EQ(history.status, 200) << history.body;
  EXPECT_GE(as_object(history)["scores"].as_array().size(), 1u);

  auto leads = http_->get("/api/leads?limit=10", tok);
  ASSERT_EQ(leads.status, 200) << leads.body;
  auto list = as_object(leads)["leads"].as_array();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].as_object()["lead_id"].as_string(), "c1");

  // The event created a minimal contact in the store.
  auto contact = store_->get_contact("tenant-a", "c1");
  ASSERT_TRUE(contact) << contact.status().to_string();
  EXPECT_EQ(contact->created_at, kNow);

  const auto unknown = http_->get("/api/contacts/no%20body/score", tok);
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(error_of(unknown), "lead 'no body' not found");  // quoted, as the other 404s
  EXPECT_EQ(http_->get("/api/leads?band=lukewarm", tok).status, 400);
}

TEST_F(ServerTest, RejectsMissingExpiredAndForgedTokens) {
  start();
  auto none = http_->get("/api/leads");
  EXPECT_EQ(none.status, 401);
  EXPECT_FALSE(error_of(none).empty());
  EXPECT_EQ(http_->get("/api/leads", "garbage").status, 401);
  auto expired = issue_token("tenant-a", Role::kAgent, kSecret, 60, kNow - 3600);
  ASSERT_TRUE(expired);
  EXPECT_EQ(http_->get("/api/leads", *expired).status, 401);
  auto forged = issue_token("tenant-a", Role::kAdmin, "not-the-secret-but-as-long-as-one-is", 3600, kNow);
  ASSERT_TRUE(forged);
  EXPECT_EQ(http_->get("/api/leads", *forged).status, 401);
  // The scheme is case-insensitive (RFC 9110); another scheme is no bearer token.
  const std::string good = token("tenant-a");
  EXPECT_EQ(http_->request("GET", "/api/leads", {}, {}, {{"Authorization", "bearer " + good}}).status, 200);
  EXPECT_EQ(http_->request("GET", "/api/leads", {}, {}, {{"Authorization", "BEARER " + good}}).status, 200);
  auto basic = http_->request("GET", "/api/leads", {}, {}, {{"Authorization", "Basic " + good}});
  EXPECT_EQ(basic.status, 401);
  EXPECT_EQ(error_of(basic), "missing bearer token");
}

// A token signed with the server's key whose tenant claim is no valid tenant
// id (made before ids were checked, or by another tool) is refused: 401 JSON
// over HTTP and on the WebSocket, never a tenant named "../x".
TEST_F(ServerTest, TokenWithAnInvalidTenantClaimIsRefused) {
  start();
  for (const char* tenant : {"../other", "bad tenant!", ".."}) {
    const std::string claims = std::string(R"({"tenant":")") + tenant + R"(","role":"admin","exp":9999999999})";
    const std::string bad = reai::testing::hs256_token(claims, kSecret);
    auto r = http_->get("/api/leads", bad);
    EXPECT_EQ(r.status, 401) << tenant << ": " << r.body;
    EXPECT_NE(error_of(r).find("tenant"), std::string::npos) << r.body;
    EXPECT_EQ(post_event(bad, "c1").status, 401) << tenant;
  }
  // The helper signs as the product does: the same claims with a valid id pass.
  const std::string good = reai::testing::hs256_token(R"({"tenant":"tenant-a","role":"agent","exp":9999999999})", kSecret);
  EXPECT_EQ(http_->get("/api/leads", good).status, 200);
}

// A token signed with the server's key but carrying a header extension reai
// cannot honour ("crit", RFC 7515 4.1.11) is refused with 401 JSON.
TEST_F(ServerTest, ATokenWithCritInItsHeaderIsRefused) {
  start();
  const std::string claims = R"({"tenant":"tenant-a","role":"agent","exp":9999999999})";
  const std::string crit = reai::testing::hs256_token(claims, kSecret, R"({"alg":"HS256","crit":["exp"],"exp":1})");
  auto r = http_->get("/api/leads", crit);
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(error_of(r), "token header has crit: no JWS extension is supported");
  EXPECT_EQ(post_event(crit, "c1").status, 401);
  EXPECT_EQ(http_->get("/api/leads", reai::testing::hs256_token(claims, kSecret)).status, 200);
}

// iat is checked against the server's injected clock, not the wall clock:
// a token minted an hour ahead of it is refused until that hour comes.
TEST_F(ServerTest, ATokenIssuedAfterTheServersNowIsRefusedUntilThen) {
  start();
  auto ahead = issue_token("tenant-a", Role::kAgent, kSecret, 86400, kNow + 3600);
  ASSERT_TRUE(ahead);
  auto r = http_->get("/api/leads", *ahead);
  EXPECT_EQ(r.status, 401) << r.body;
  EXPECT_EQ(error_of(r), "token issued in the future");
  auto posted = post_event(*ahead, "c1");
  EXPECT_EQ(posted.status, 401);
  EXPECT_EQ(error_of(posted), "token issued in the future");
  WsClient ws;
  ASSERT_TRUE(ws.connect("127.0.0.1", server_->port(), ws_target("tenant-a", *ahead))) << ws.error();
  EXPECT_EQ(ws.read(), std::nullopt);
  EXPECT_EQ(ws.close_code(), 4001);
  clock_.set(kNow + 3600 - kIatLeewaySeconds);
  EXPECT_EQ(http_->get("/api/leads", *ahead).status, 200);
}

// Two Authorization fields: the server would check one while a proxy in
// front may have checked the other, so the request is refused with 400 JSON
// (and the connection stays usable).
TEST_F(ServerTest, TwoAuthorizationHeadersAreRefused) {
  start();
  namespace http = boost::beast::http;
  boost::asio::io_context io;
  boost::beast::tcp_stream stream(io);
  stream.connect({boost::asio::ip::make_address("127.0.0.1"), server_->port()});
  const auto exchange = [&stream](const std::vector<std::string>& authorizations) {
    http::request<http::string_body> req(http::verb::get, "/api/leads", 11);
    req.set(http::field::host, "x");
    for (const auto& a : authorizations) req.insert(http::field::authorization, a);
    http::write(stream, req);
    boost::beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    return res;
  };
  const std::string good = "Bearer " + token("tenant-a");
  for (const auto& pair : {std::vector<std::string>{good, good}, {good, "Bearer " + token("tenant-b")}, {good, ""}}) {
    auto res = exchange(pair);
    EXPECT_EQ(res.result_int(), 400) << res.body();
    reai::testing::HttpResponse r{400, res.body(), {}};
    EXPECT_EQ(error_of(r), "more than one Authorization header");
  }
  EXPECT_EQ(exchange({good}).result_int(), 200);
}

TEST_F(ServerTest, TenantsAreIsolated) {
  start();
  const std::string a = token("tenant-a");
  const std::string b = token("tenant-b");
  ASSERT_EQ(post_event(a, "c1").status, 200);

  EXPECT_EQ(http_->get("/api/contacts/c1/score", b).status, 404);
  EXPECT_EQ(http_->get("/api/contacts/c1/scores", b).status, 404);
  EXPECT_TRUE(as_object(http_->get("/api/leads", b))["leads"].as_array().empty());
  EXPECT_EQ(http_->get("/api/leads?tenant_id=tenant-a", b).status, 403);
  auto cross = http_->post("/api/events", R"({"contact_id":"c1","type":"sms_in","tenant_id":"tenant-a"})", b);
  EXPECT_EQ(cross.status, 403) << cross.body;
  auto put = http_->put("/api/contacts/c1", R"({"tenant_id":"tenant-a","budget":1})", b);
  EXPECT_EQ(put.status, 403) << put.body;
  // A's contact is untouched by B's attempts.
  auto a_score = as_object(http_->get("/api/contacts/c1/score", a));
  EXPECT_EQ(a_score["events_count"].as_int64(), 1);
}

TEST_F(ServerTest, WebSocketRejectsBadTokenAndOtherTenant) {
  start();
  WsClient wrong_tenant;
  ASSERT_TRUE(wrong_tenant.connect("127.0.0.1", server_->port(), ws_target("tenant-a", token("tenant-b"))))
      << wrong_tenant.error();
  EXPECT_EQ(wrong_tenant.read(), std::nullopt);
  EXPECT_EQ(wrong_tenant.close_code(), 4003);

  WsClient bad_token;
  ASSERT_TRUE(bad_token.connect("127.0.0.1", server_->port(), ws_target("tenant-a", "nonsense")));
  EXPECT_EQ(bad_token.read(), std::nullopt);
  EXPECT_EQ(bad_token.close_code(), 4001);
}

TEST_F(ServerTest, WebSocketPushesScoreUpdatesOfItsTenantOnly) {
  start();
  const std::string a = token("tenant-a");
  const std::string b = token("tenant-b");
  WsClient ws_a, ws_b;
  ASSERT_TRUE(ws_a.connect("127.0.0.1", server_->port(), ws_target("tenant-a", a))) << ws_a.error();
  ASSERT_TRUE(ws_b.connect("127.0.0.1", server_->port(), ws_target("tenant-b", b))) << ws_b.error();
  EXPECT_TRUE(ws_a.ping());

  ASSERT_EQ(post_event(a, "a1").status, 200);
  ASSERT_EQ(post_event(a, "a2").status, 200);
  ASSERT_EQ(post_event(b, "b1").status, 200);

  auto m1 = message(ws_a.read());
  auto m2 = message(ws_a.read());
  EXPECT_EQ(m1["type"].as_string(), "score_update");
  EXPECT_EQ(m1["lead_id"].as_string(), "a1");
  EXPECT_EQ(m2["lead_id"].as_string(), "a2");
  EXPECT_EQ(m1["tenant_id"].as_string(), "tenant-a");
  EXPECT_EQ(m2["seq"].as_int64(), m1["seq"].as_int64() + 1);

  // B's first message is B's own: nothing of A's was sent before it.
  auto mb = message(ws_b.read());
  EXPECT_EQ(mb["tenant_id"].as_string(), "tenant-b");
  EXPECT_EQ(mb["lead_id"].as_string(), "b1");
  EXPECT_EQ(mb["seq"].as_int64(), 1);
}

TEST_F(ServerTest, DuplicateEventIsNotRescoredOrPublished) {
  start();
  const std::string a = token("tenant-a");
  WsClient ws;
  ASSERT_TRUE(ws.connect("127.0.0.1", server_->port(), ws_target("tenant-a", a)));
  auto first = post_event(a, "c1", "sms_in", "dup-1");
  ASSERT_EQ(first.status, 200);
  EXPECT_FALSE(as_object(first).contains("duplicate"));
  auto again = post_event(a, "c1", "sms_in", "dup-1");
  ASSERT_EQ(again.status, 200) << again.body;
  auto d = as_object(again);
  EXPECT_EQ(d["duplicate"].as_bool(), true);
  EXPECT_EQ(d["events_count"].as_int64(), 1);
  ASSERT_EQ(post_event(a, "c2", "sms_in", "other").status, 200);

  auto m1 = message(ws.read());
  auto m2 = message(ws.read());
  EXPECT_EQ(m1["lead_id"].as_string(), "c1");
  EXPECT_EQ(m2["lead_id"].as_string(), "c2");  // no second c1 update in between
  EXPECT_EQ(m2["seq"].as_int64(), m1["seq"].as_int64() + 1);
  auto count = store_->count_events("tenant-a");
  ASSERT_TRUE(count);
  EXPECT_EQ(*count, 2u);
}

TEST_F(ServerTest, ReconnectWithSinceReceivesMissedUpdates) {
  start();
  const std::string a = token("tenant-a");
  std::int64_t last_seq = 0;
  {
    WsClient ws;
    ASSERT_TRUE(ws.connect("127.0.0.1", server_->port(), ws_target("tenant-a", a)));
    ASSERT_EQ(post_event(a, "c1").status, 200);
    last_seq = message(ws.read())["seq"].as_int64();
    ws.close();
  }
  ASSERT_EQ(post_event(a, "c2").status, 200);
  ASSERT_EQ(post_event(a, "c3").status, 200);
  WsClient again;
  ASSERT_TRUE(again.connect("127.0.0.1", server_->port(), ws_target("tenant-a", a, std::uint64_t(last_seq))));
  auto m2 = message(again.read());
  auto m3 = message(again.read());
  EXPECT_EQ(m2["lead_id"].as_string(), "c2");
  EXPECT_EQ(m2["seq"].as_int64(), last_seq + 1);
  EXPECT_EQ(m3["lead_id"].as_string(), "c3");
  EXPECT_EQ(m3["seq"].as_int64(), last_seq + 2);
  // Live updates continue after the replay.
  ASSERT_EQ(post_event(a, "c4").status, 200);
  auto m4 = message(again.read());
  EXPECT_EQ(m4["lead_id"].as_string(), "c4");
  EXPECT_EQ(m4["seq"].as_int64(), last_seq + 3);
}

// An event id names one event of the tenant: reusing it for a lead that has
// no event is a conflict the caller must hear about, not "unknown lead".
TEST_F(ServerTest, AnEventIdReusedForAnotherLeadIsAConflict) {
  start();
  const std::string a = token("tenant-a");
  ASSERT_EQ(post_event(a, "lead-a", "sms_in", "reuse-1").status, 200);
  auto single = post_event(a, "lead-b", "tour_request", "reuse-1");
  EXPECT_EQ(single.status, 409) << single.body;
  EXPECT_EQ(error_of(single), "event_id 'reuse-1' is stored for another lead (event ids are unique within a tenant)");
  auto batch = http_->post("/api/events", R"([{"contact_id":"lead-c","type":"sms_in","event_id":"reuse-1"},)"
                                          R"({"contact_id":"lead-a","type":"sms_in","event_id":"reuse-2"}])", a);
  ASSERT_EQ(batch.status, 200) << batch.body;
  const auto answers = json::parse(batch.body).as_array();
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_NE(answers[0].as_object().at("error").as_string().find("is stored for another lead"), std::string::npos);
  EXPECT_EQ(answers[1].as_object().at("events_count").as_int64(), 2);
  EXPECT_EQ(*store_->count_events("tenant-a"), 2u);
  // A refused event writes nothing: no bare contact for the new lead ids,
  // alone or in a batch, and they stay unknown.
  EXPECT_EQ(store_->get_contact("tenant-a", "lead-b").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->get_contact("tenant-a", "lead-c").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(*store_->count_contacts("tenant-a"), 1u);
  EXPECT_EQ(http_->get("/api/contacts/lead-b", a).status, 404);
  // The refused id's lead can still begin with an event of its own.
  ASSERT_EQ(post_event(a, "lead-b", "tour_request", "own-1").status, 200);
  EXPECT_EQ(*store_->count_contacts("tenant-a"), 2u);
  // A lead with a contact but no event holds no event of that id either.
  ASSERT_EQ(http_->put("/api/contacts/lead-d", R"({"budget":100000})", a).status, 200);
  auto contact_only = post_event(a, "lead-d", "sms_in", "reuse-1");
  EXPECT_EQ(contact_only.status, 409) << contact_only.body;
  EXPECT_EQ(*store_->count_events("tenant-a"), 3u);
  // Nor does a lead with events of its own: still 409, not a "duplicate"
  // of an event it never stored. Its own id again is the repeat.
  auto with_events = post_event(a, "lead-b", "sms_in", "reuse-1");
  EXPECT_EQ(with_events.status, 409) << with_events.body;
  EXPECT_EQ(error_of(with_events), "event_id 'reuse-1' is stored for another lead (event ids are unique within a tenant)");
  auto own_again = post_event(a, "lead-b", "tour_request", "own-1");
  ASSERT_EQ(own_again.status, 200) << own_again.body;
  EXPECT_TRUE(as_object(own_again)["duplicate"].as_bool());
  EXPECT_EQ(as_object(own_again)["events_count"].as_int64(), 1);
  EXPECT_EQ(*store_->count_events("tenant-a"), 3u);
  // In a batch: an id given to two leads is the first's, the second is
  // refused; a repeat of a lead's own id is a duplicate, another lead's id
  // a conflict whatever the lead holds.
  auto mixed = http_->post("/api/events", R"([{"contact_id":"lead-x","type":"sms_in","event_id":"twice-1"},)"
                                          R"({"contact_id":"lead-y","type":"sms_in","event_id":"twice-1"},)"
                                          R"({"contact_id":"lead-a","type":"sms_in","event_id":"reuse-1"},)"
                                          R"({"contact_id":"lead-a","type":"sms_in","event_id":"own-1"},)"
                                          R"({"contact_id":"lead-x","type":"sms_in","event_id":"twice-1"}])", a);
  ASSERT_EQ(mixed.status, 200) << mixed.body;
  const auto items = json::parse(mixed.body).as_array();
  ASSERT_EQ(items.size(), 5u);
  EXPECT_EQ(items[0].as_object().at("events_count").as_int64(), 1);
  EXPECT_FALSE(items[0].as_object().contains("duplicate"));
  EXPECT_EQ(items[1].as_object().at("error").as_string(),
            "event_id 'twice-1' is stored for another lead (event ids are unique within a tenant)");
  EXPECT_TRUE(items[2].as_object().at("duplicate").as_bool());
  EXPECT_EQ(items[2].as_object().at("lead_id").as_string(), "lead-a");
  EXPECT_EQ(items[3].as_object().at("error").as_string(),
            "event_id 'own-1' is stored for another lead (event ids are unique within a tenant)");
  EXPECT_TRUE(items[4].as_object().at("duplicate").as_bool());
  EXPECT_EQ(items[4].as_object().at("lead_id").as_string(), "lead-x");
  EXPECT_EQ(*store_->count_events("tenant-a"), 4u);
  EXPECT_EQ(store_->get_contact("tenant-a", "lead-y").status().code(), StatusCode::kNotFound);
  auto lead_a = store_->events_for_contact("tenant-a", "lead-a");
  ASSERT_TRUE(lead_a.has_value());
  EXPECT_EQ(lead_a->size(), 2u);
}

TEST_F(ServerTest, SinceBeyondTheReplayBufferAsksForResync) {
  start();
  const std::string a = token("tenant-a");
  auto payload = std::make_shared<const std::string>(R"({"lead_id":"x"})");
  for (int i = 0; i < 1100; ++i) ASSERT_TRUE(bus_->publish("tenant-a", "score_update", payload));
  WsClient ws;
  ASSERT_TRUE(ws.connect("127.0.0.1", server_->port(), ws_target("tenant-a", a, 1)));
  EXPECT_EQ(message(ws.read())["type"].as_string(), "resync");
  auto first = message(ws.read());
  EXPECT_EQ(first["type"].as_string(), "score_update");
  EXPECT_GT(first["seq"].as_int64(), 2);
}

TEST_F(ServerTest, SlowConsumerIsDroppedWhileOthersReceiveEverything) {
  ServerConfig config;
  config.ws_queue_limit = 8;
  start(config);
  const std::string a = token("tenant-a");
  WsClient fast, slow;
  ASSERT_TRUE(fast.connect("127.0.0.1", server_->port(), ws_target("tenant-a", a)));
  ASSERT_TRUE(slow.connect("127.0.0.1", server_->port(), ws_target("tenant-a", a), 4096));
  ASSERT_TRUE(fast.ping());
  ASSERT_TRUE(slow.ping());

  const auto payload =
      std::make_shared<const std::string>(R"({"lead_id":"x","pad":")" + std::string(64 * 1024, 'p') + "\"}");
  bool dropped = false;
  int published = 0;
  for (; published < 2000 && !dropped; ++published) {
    auto seq = bus_->publish("tenant-a", "score_update", payload);
    ASSERT_TRUE(seq);
    auto m = fast.read();
    ASSERT_TRUE(m) << "fast client lost message " << *seq << ": " << fast.error();
    ASSERT_EQ(message(m)["seq"].to_number<std::uint64_t>(), *seq);
    if (published % 16 == 15) {
      dropped = http_->get("/metrics").body.find("reai_websocket_queue_drops_total 1") != std::string::npos;
    }
  }
  ASSERT_TRUE(dropped) << "slow client never overflowed after " << published << " messages";

  int slow_updates = 0;
  bool told = false;
  while (auto m = slow.read()) {
    auto o = message(m);
    if (o["type"].as_string() == "overflow") told = true;
    else ++slow_updates;
  }
  EXPECT_TRUE(told);
  EXPECT_EQ(slow.close_code(), 1008);
  EXPECT_LT(slow_updates, published);
  // The fast client is still served.
  auto seq = bus_->publish("tenant-a", "score_update", payload);
  ASSERT_TRUE(seq);
  EXPECT_EQ(message(fast.read())["seq"].to_number<std::uint64_t>(), *seq);
}

// A linger long enough that a burst certainly lands in one window: every
// update still arrives, in order, over a real socket (the batching itself
// is asserted in WsHubTest.Linger*).
TEST_F(ServerTest, WebSocketLingerDeliversEveryUpdateInOrder) {
  ServerConfig config;
  config.ws_linger_ms = 200;
  start(config);
  const std::string a = token("tenant-a");
  WsClient ws;
  ASSERT_TRUE(ws.connect("127.0.0.1", server_->port(), ws_target("tenant-a", a)));
  ASSERT_TRUE(ws.ping());
  std::vector<std::uint64_t> published;
  for (int i = 0; i < 50; ++i) {
    auto seq = bus_->publish("tenant-a", "score_update",
                             std::make_shared<const std::string>(R"({"lead_id":"l)" + std::to_string(i) + "\"}"));
    ASSERT_TRUE(seq);
    published.push_back(*seq);
  }
  for (std::size_t i = 0; i < published.size(); ++i) {
    auto m = ws.read();
    ASSERT_TRUE(m) << "lost update " << published[i] << ": " << ws.error();
    auto o = message(m);
    EXPECT_EQ(o["seq"].to_number<std::uint64_t>(), published[i]);
    EXPECT_EQ(o["lead_id"].as_string(), "l" + std::to_string(i));
  }
}

TEST_F(ServerTest, ShortJwtSecretIsRefusedAtStart) {
  ServerConfig config;
  config.jwt_secret = "server-test-secret";  // 18 bytes
  config.port = 0;
  Server server(config, ServerDeps{*store_, *bus_, *cache_, *engine_, *registry_, clock_});
  Status s = server.start();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("at least 32"), std::string::npos) << s.to_string();
}

TEST_F(ServerTest, WebSocketLingerOutOfRangeIsRefused) {
  ServerConfig config;
  config.ws_linger_ms = -1;
  config.jwt_secret = kSecret;
  config.port = 0;
  Server server(config, ServerDeps{*store_, *bus_, *cache_, *engine_, *registry_, clock_});
  Status s = server.start();
  EXPECT_FALSE(s);
  EXPECT_NE(s.to_string().find("ws_linger_ms"), std::string::npos) << s.to_string();
}

// A --static-dir that does not hold the dashboard used to serve the built-in
// page without a word; the server now refuses to start.
TEST_F(ServerTest, StaticDirWithoutIndexHtmlIsRefused) {
  const std::string empty_dir = ::testing::TempDir() + "reai-static-empty-" + std::to_string(::getpid());
  std::filesystem::create_directories(empty_dir);
  for (const std::string& dir : {std::string("/nonexistent/web/dist"), empty_dir}) {
    ServerConfig config;
    config.jwt_secret = kSecret;
    config.port = 0;
    config.static_dir = dir;
    Server server(config, ServerDeps{*store_, *bus_, *cache_, *engine_, *registry_, clock_});
    Status s = server.start();
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << dir;
    EXPECT_NE(s.message().find("'" + dir + "'"), std::string::npos) << s.to_string();
  }
  EXPECT_NE(check_static_dir(empty_dir).message().find("no index.html"), std::string::npos);
  std::ofstream(empty_dir + "/index.html") << "<!doctype html>";
  EXPECT_TRUE(check_static_dir(empty_dir));
  EXPECT_TRUE(check_static_dir(""));
  std::filesystem::remove_all(empty_dir);
}

TEST_F(ServerTest, BadInputsGetClearErrors) {
  ServerConfig config;
  config.max_body_bytes = 64 * 1024;
  start(config);
  const std::string a = token("tenant-a");
  struct Case {
    std::string body;
    int status;
    std::string needle;
  };
  const Case cases[] = {
      {"{not json", 400, "malformed JSON"},
      {R"({"contact_id":7,"type":"sms_in"})", 400, "contact_id"},
      {R"({"contact_id":"c1","type":"sms_in","mood":"happy"})", 400, "mood"},
      {R"({"contact_id":"c1","type":"levitate"})", 400, "type"},
      {R"({"type":"sms_in"})", 400, "contact_id"},
      {R"({"contact_id":"c1","type":"sms_in","ts":"not a date"})", 400, "ts"},
      {R"("just a string")", 400, "event"},
  };
  for (const auto& c : cases) {
    auto r = http_->post("/api/events", c.body, a);
    EXPECT_EQ(r.status, c.status) << c.body << " -> " << r.body;
    EXPECT_NE(error_of(r).find(c.needle), std::string::npos) << r.body;
  }
  auto big = http_->post("/api/events", std::string(100 * 1024, ' '), a);
  EXPECT_EQ(big.status, 413) << big.body;
  EXPECT_FALSE(error_of(big).empty());

  auto batch = http_->post("/api/events",
                           R"([{"contact_id":"b1","type":"sms_in"},{"contact_id":"b2","type":"nope"},)"
                           R"({"contact_id":"b3","type":"call_in"}])",
                           a);
  ASSERT_EQ(batch.status, 200) << batch.body;
  auto items = json::parse(batch.body).as_array();
  ASSERT_EQ(items.size(), 3u);
  EXPECT_EQ(items[0].as_object().at("lead_id").as_string(), "b1");
  EXPECT_TRUE(items[1].as_object().contains("error"));
  EXPECT_EQ(items[2].as_object().at("lead_id").as_string(), "b3");

  std::string too_many = "[";
  for (int i = 0; i < 1001; ++i) too_many += std::string(i ? "," : "") + R"({"contact_id":"x","type":"sms_in"})";
  too_many += "]";
  EXPECT_EQ(http_->post("/api/events", too_many, a).status, 413);

  // A body that says it is not JSON (curl -d's default) is refused as such
  // and stores nothing; JSON types with parameters, +json and no header pass.
  const std::string form = R"({"contact_id":"ct1","type":"sms_in"})";
  for (const std::string type : {"application/x-www-form-urlencoded", "text/plain", "application/jsonx"}) {
    auto r = http_->request("POST", "/api/events", form, a, {{"Content-Type", type}});
    EXPECT_EQ(r.status, 415) << type << " -> " << r.body;
    EXPECT_EQ(error_of(r), "Content-Type must be application/json") << r.body;
  }
  EXPECT_EQ(http_->get("/api/contacts/ct1", a).status, 404);
  for (const std::string type : {"Application/JSON; charset=utf-8", "application/vnd.reai+json", ""}) {
    EXPECT_EQ(http_->request("POST", "/api/events", form, a, {{"Content-Type", type}}).status, 200) << type;
  }
  EXPECT_EQ(http_->request("PUT", "/api/contacts/c1", R"({"budget":1})", a, {{"Content-Type", "text/csv"}}).status,
            415);

  EXPECT_EQ(http_->put("/api/contacts/c1", R"({"budget":"lots"})", a).status, 400);
  EXPECT_EQ(http_->put("/api/contacts/c1", R"({"favourite_colour":"red"})", a).status, 400);
  EXPECT_EQ(http_->get("/api/nothing-here", a).status, 404);
  EXPECT_EQ(http_->request("DELETE", "/api/events", {}, a).status, 405);
  // The server is still healthy after all of it.
  EXPECT_EQ(http_->get("/healthz").status, 200);
}

// An id in a path obeys the rule of ids in a body (1..256 bytes of UTF-8):
// PUT used to store a contact with a 5,000-byte or non-UTF-8 id that no event
// can name, whose answers and WebSocket frames were not valid JSON.
// A body naming a key twice is refused with 400 at every route that reads a
// JSON body, before anything is stored: readers disagree on which value
// counts (the first, the last), so reai takes neither.
TEST_F(ServerTest, ABodyNamingAKeyTwiceIsRefusedAtEveryRoute) {
  start();
  const std::string a = token("tenant-a");
  struct Case {
    std::string method, target, body, key;
  };
  const Case cases[] = {
      {"POST", "/api/events", R"({"contact_id":"d1","type":"sms_in","contact_id":"d2"})", "contact_id"},
      {"POST", "/api/events",
       R"([{"contact_id":"d1","type":"sms_in"},{"contact_id":"d3","type":"sms_in","type":"call_in"}])", "type"},
      {"PUT", "/api/contacts/d1", R"({"budget":240000,"pre_approved":true,"budget":1})", "budget"},
      {"POST", "/api/realtime/score-trigger",
       R"({"lead_id":"d1","lead_data":{"budget":1,"events":[{"type":"sms_in","ts":"2023-11-14T00:00:00Z","type":"call_in"}]}})",
       "type"},
      {"POST", "/api/properties/match", R"({"budget":300000,"beds":3,"beds":4})", "beds"},
      {"POST", "/api/properties/value", R"({"listing":{"Gr Liv Area":1500,"Gr Liv Area":3000}})", "Gr Liv Area"},
      {"POST", "/api/predictions/pricing", R"({"region":"ames","listing":{},"region":"other"})", "region"},
  };
  for (const auto& c : cases) {
    auto r = http_->request(c.method, c.target, c.body, a);
    EXPECT_EQ(r.status, 400) << c.target << ": " << r.body;
    EXPECT_EQ(error_of(r), "duplicate key \"" + c.key + "\"") << c.target << ": " << r.body;
  }
  for (const char* id : {"d1", "d2", "d3"}) {
    EXPECT_EQ(http_->get(std::string("/api/contacts/") + id, a).status, 404) << id << " was stored";
  }
  // The same keys once each are fine.
  EXPECT_EQ(post_event(a, "d1").status, 200);
}

TEST_F(ServerTest, PathIdsFollowTheIdRuleOfBodies) {
  start();
  const std::string a = token("tenant-a");
  const std::string long_id(257, 'a');
  for (const std::string& id : {std::string("%FF%FE"), std::string("a%C0%AFb"), long_id}) {
    auto put = http_->put("/api/contacts/" + id, R"({"budget":100000})", a);
    EXPECT_EQ(put.status, 400) << id << " -> " << put.body;
    EXPECT_FALSE(error_of(put).empty()) << put.body;
    for (const std::string& path : {"/api/contacts/" + id, "/api/contacts/" + id + "/score",
                                    "/api/contacts/" + id + "/events", "/api/leads/" + id + "/matches",
                                    "/api/listings/" + id, "/api/agents/" + id + "/track-record",
                                    "/api/predictions/deal-closure/" + id}) {
      auto r = http_->get(path, a);
      EXPECT_EQ(r.status, 400) << path << " -> " << r.body;
      EXPECT_FALSE(error_of(r).empty()) << r.body;
    }
  }
  auto trigger = http_->post("/api/realtime/score-trigger",
                             R"({"lead_id":")" + long_id + R"(","lead_data":{"budget":1}})", a);
  EXPECT_EQ(trigger.status, 400) << trigger.body;
  // Nothing was stored under those ids.
  auto leads = http_->get("/api/leads?limit=1000", a);
  ASSERT_EQ(leads.status, 200) << leads.body;
  EXPECT_EQ(json::parse(leads.body).as_object().at("leads").as_array().size(), 0u) << leads.body;
  // The longest id allowed, and multi-byte UTF-8, still work.
  const std::string longest(256, 'b');
  EXPECT_EQ(http_->put("/api/contacts/" + longest, R"({"budget":100000})", a).status, 200);
  EXPECT_EQ(http_->put("/api/contacts/%E2%98%BA", R"({"budget":100000})", a).status, 200);
  auto smile = http_->get("/api/contacts/%E2%98%BA/score", a);
  ASSERT_EQ(smile.status, 200) << smile.body;
  EXPECT_EQ(json::parse(smile.body).as_object().at("lead_id").as_string(), "\xe2\x98\xba");
}

// Path segments are percent-decoded once, in the router: an id with '/',
// spaces or non-ASCII is named encoded; "%25" decodes to a literal '%' that
// is not decoded again; a malformed escape is a 400 with a JSON error.
TEST_F(ServerTest, PathSegmentsArePercentDecodedOnce) {
  start();
  const std::string a = token("tenant-a");
  const std::string id = "team/a b\xc3\xa9";
  const std::string encoded = "team%2Fa%20b%C3%A9";
  ASSERT_EQ(http_->post("/api/events", R"({"contact_id":"team/a b\u00e9","type":"sms_in"})", a).status, 200);
  auto score = http_->get("/api/contacts/" + encoded + "/score", a);
  ASSERT_EQ(score.status, 200) << score.body;
  EXPECT_EQ(json::parse(score.body).as_object().at("lead_id").as_string(), id);
  auto events = http_->get("/api/contacts/" + encoded + "/events", a);
  ASSERT_EQ(events.status, 200) << events.body;
  EXPECT_EQ(json::parse(events.body).as_object().at("total").as_int64(), 1);
  ASSERT_EQ(http_->put("/api/contacts/" + encoded, R"({"budget":100000})", a).status, 200);
  EXPECT_EQ(store_->get_contact("tenant-a", id).value().budget, std::optional<double>(100000));
  EXPECT_EQ(*store_->count_contacts("tenant-a"), 1u);
  // Decoded once: "%252F" is the three characters "%2F" of the id.
  ASSERT_EQ(http_->put("/api/contacts/x%252Fy", R"({"budget":1})", a).status, 200);
  EXPECT_TRUE(store_->get_contact("tenant-a", "x%2Fy").has_value());
  EXPECT_EQ(store_->get_contact("tenant-a", "x/y").status().code(), StatusCode::kNotFound);
  for (const std::string path : {"/api/contacts/%zz", "/api/contacts/a%2/score", "/api/contacts/a%", "/api/leads/a%G0/matches",
                                 "/api/predictions/agent-performance/%2", "/api/listings/%"}) {
    auto r = http_->get(path, a);
    EXPECT_EQ(r.status, 400) << path << " -> " << r.body;
    EXPECT_NE(error_of(r).find("malformed percent-escape"), std::string::npos) << path << " -> " << r.body;
  }
}

// Leads loaded by a history import (no score row) get their start-up score
// as a first history row, once: a restart adds none, the next event adds its own.
TEST_F(ServerTest, ImportedLeadsGetAFirstHistoryRowAtStart) {
  ASSERT_TRUE(store_->upsert_tenant({"tenant-a", "tenant-a", kNow, ""}));
  Contact with_events;
  with_events.tenant_id = "tenant-a";
  with_events.contact_id = "imported-1";
  with_events.created_at = kNow - 86400;
  Contact without_events = with_events;
  without_events.contact_id = "imported-2";
  Event e;
  e.tenant_id = "tenant-a";
  e.event_id = "imp-1";
  e.contact_id = "imported-1";
  e.ts = kNow - 3600;
  e.type = EventType::kSmsIn;
  ASSERT_TRUE(store_->import_history({with_events, without_events}, {e}, {}).has_value());
  start();
  const std::string a = token("tenant-a");
  auto history = [&](const std::string& id) {
    auto r = http_->get("/api/contacts/" + id + "/scores", a);
    EXPECT_EQ(r.status, 200) << r.body;
    return json::parse(r.body).as_object().at("scores").as_array();
  };
  for (const std::string id : {"imported-1", "imported-2"}) {
    auto rows = history(id);
    ASSERT_EQ(rows.size(), 1u) << id;
    auto current = as_object(http_->get("/api/contacts/" + id + "/score", a));
    EXPECT_EQ(rows[0].as_object().at("score"), current["score"]) << id;
    EXPECT_EQ(rows[0].as_object().at("scored_at").as_string(), format_iso8601(kNow)) << id;
  }
  EXPECT_EQ(store_->score_history("tenant-a", "imported-1", 10).value().at(0).lead_order, 1);
  server_->stop();
  server_.reset();
  start();
  EXPECT_EQ(history("imported-1").size(), 1u);
  EXPECT_EQ(history("imported-2").size(), 1u);
  ASSERT_EQ(post_event(a, "imported-2", "tour_request", "imp-2").status, 200);
  auto rows = history("imported-2");
  ASSERT_EQ(rows.size(), 2u);
}

// Each stored score row carries its lead's order: the number of events the
// score was computed from (what the newest-row readers sort by first, so
// another instance's writer committing an older score later cannot win).
TEST_F(ServerTest, ScoreRowsCarryTheLeadsEventCount) {
  start();
  const std::string tok = token("tenant-a");
  // A row is recorded when the score, band or reasons change.
  std::vector<std::pair<std::int64_t, std::int64_t>> changed;  // (events_count, score) of each recorded score
  std::string last;
  const char* types[] = {"sms_in", "call_in", "property_view", "sms_in", "email_open"};
  for (int i = 0; i < 5; ++i) {
    auto res = post_event(tok, "c1", types[i], "order-" + std::to_string(i));
    ASSERT_EQ(res.status, 200) << res.body;
    auto o = as_object(res);
    EXPECT_EQ(o["events_count"].as_int64(), i + 1);
    std::string key = json::serialize(o["score"]) + json::serialize(o["band"]);
    for (const auto& r : o["reasons"].as_array()) key += json::serialize(r.as_object().at("feature"));
    if (key != last) changed.emplace_back(i + 1, o["score"].as_int64());
    last = key;
  }
  std::vector<store::ScoreRecord> rows;
  for (int i = 0; i < 500; ++i) {
    rows = store_->score_history("tenant-a", "c1", 10).value();
    if (rows.size() >= changed.size()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(rows.size(), changed.size());
  ASSERT_GE(rows.size(), 3u);  // several orders to check (the rule-based score moves with these events)
  for (std::size_t k = 0; k < rows.size(); ++k) {
    const auto& want = changed[changed.size() - 1 - k];  // newest first
    EXPECT_EQ(rows[k].lead_order, want.first) << k;
    EXPECT_EQ(rows[k].score, want.second) << k;
  }
}

// GET /api/agents/{id}/track-record answers the caller's tenant's figures
// only: `live_outcomes` counts the tenant's own live outcomes, so another
// tenant's leads being reached show in neither its numbers nor that count.
TEST_F(ServerTest, AgentTrackRecordCountsOnlyTheCallersLiveOutcomes) {
  namespace synthetic = scoring::testing_support;
  const auto history = synthetic::make_history(1500, kNow - 400 * synthetic::kDay, 300 * synthetic::kDay, 7, "c");
  scoring::TrainLeadOptions options;
  options.example_ages_hours = {1, 24, 168};
  options.nthread = 2;
  options.progress = false;
  ASSERT_TRUE(scoring::train_lead_model(history.contacts, history.events, history.stages,
                                        (model_dir_ / "leads").string(), options));
  ASSERT_TRUE(registry_->reload());
  auto model = registry_->lead_model("tenant-a");
  ASSERT_TRUE(model);
  ASSERT_LT(model->track_records_end, kNow - 3600);  // a lead reached now is a live outcome
  start();
  const std::string a = token("tenant-a");
  const std::string b = token("tenant-b");
  auto live_outcomes = [&](const std::string& tok) {
    auto r = http_->get("/api/agents/ag01/track-record", tok);
    EXPECT_EQ(r.status, 200) << r.body;
    return as_object(r)["live_outcomes"].to_number<std::int64_t>();
  };
  EXPECT_EQ(live_outcomes(a), 0);
  EXPECT_EQ(live_outcomes(b), 0);
  // Tenant a's lead of agent ag01 is reached: a live speed-to-lead outcome.
  ASSERT_EQ(http_->put("/api/contacts/c1",
                       R"({"assigned_agent_id":"ag01","created_at":")" + format_iso8601(kNow - 3600) + R"("})", a)
                .status,
            200);
  ASSERT_EQ(http_->post("/api/events", R"({"contact_id":"c1","type":"call_out"})", a).status, 200);
  EXPECT_EQ(live_outcomes(a), 1);
  auto r = as_object(http_->get("/api/agents/ag01/track-record", a));
  EXPECT_EQ(r["speed_count"].to_number<std::int64_t>(), 1);
  EXPECT_EQ(live_outcomes(b), 0);  // tenant b sees nothing of it
  auto other = as_object(http_->get("/api/agents/ag01/track-record", b));
  EXPECT_EQ(other["speed_count"].to_number<std::int64_t>(), 0);
}

// GET /api/agents/{id}/track-record: token required; 404 without a lead
// model (this fixture has none, so a routed id is answered so too) and for an
// empty id; GET only.
// (Values with a model: lead_lease_binary_test.)
TEST_F(ServerTest, AgentTrackRecordRouteRefusesBadRequests) {
  start();
  const std::string tok = token("tenant-a");
  EXPECT_EQ(http_->get("/api/agents/ag-1/track-record").status, 401);
  auto r = http_->get("/api/agents/ag-1/track-record", tok);
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_NE(r.body.find("no lead model"), std::string::npos) << r.body;
  EXPECT_EQ(http_->get("/api/agents//track-record", tok).status, 404);
  auto slashed = http_->get("/api/agents/a%2Fb/track-record", tok);  // the agent "a/b": routed
  EXPECT_EQ(slashed.status, 404) << slashed.body;
  EXPECT_NE(slashed.body.find("no lead model"), std::string::npos) << slashed.body;
  EXPECT_EQ(http_->post("/api/agents/ag-1/track-record", "{}", tok).status, 405);
  const std::string metrics = http_->get("/metrics").body;
  EXPECT_NE(metrics.find("route=\"/api/agents/{id}/track-record\",code=\"404\""), std::string::npos);
  // Not shared in one instance alone: nothing to send or receive.
  auto perf = as_object(http_->get("/api/realtime/performance", tok));
  EXPECT_FALSE(perf["track_records"].as_object()["shared"].as_bool());
  EXPECT_EQ(metrics.find("reai_track_outcomes_published_total"), std::string::npos);
}

TEST_F(ServerTest, PutContactKeepsOmittedFieldsAndRescores) {
  start();
  const std::string a = token("tenant-a");
  auto put = http_->put("/api/contacts/c9",
                        R"({"budget":450000,"timeline_months":2,"pre_approved":true,"source":"referral",)"
                        R"("created_at":"2023-11-01T00:00:00Z","has_phone":true})",
                        a);
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_EQ(as_object(put)["lead_id"].as_string(), "c9");
  auto again = http_->put("/api/contacts/c9", R"({"beds_wanted":3})", a);
  ASSERT_EQ(again.status, 200) << again.body;
  auto stored = store_->get_contact("tenant-a", "c9");
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->budget, 450000);
  EXPECT_EQ(stored->timeline_months, 2);
  EXPECT_EQ(stored->pre_approved, true);
  EXPECT_EQ(stored->beds_wanted, 3);
  EXPECT_EQ(stored->source, "referral");
  EXPECT_EQ(stored->created_at, 1698796800);
  // A stated created_at has the event times' bounds (kNow + 1 day at most).
  for (const char* when : {"9999-12-31T23:59:59Z", "2023-11-16T00:00:00Z", "1969-12-31T23:59:59Z"}) {
    auto bad = http_->put("/api/contacts/c9", std::string(R"({"created_at":")") + when + "\"}", a);
    EXPECT_EQ(bad.status, 400) << when << " " << bad.body;
    EXPECT_EQ(error_of(bad), "field 'created_at' must be between 1970-01-01 and one day after the server's now");
  }
  EXPECT_EQ(store_->get_contact("tenant-a", "c9")->created_at, 1698796800);
}

TEST_F(ServerTest, ScoreTriggerAppliesLeadDataAndEvents) {
  start();
  const std::string a = token("tenant-a");
  auto r = http_->post("/api/realtime/score-trigger",
                       R"({"lead_id":"L1","lead_data":{"budget":300000,"source":"zillow",)"
                       R"("events":[{"type":"property_view","property_id":"p1","value":310000},{"type":"sms_in"}]}})",
                       a);
  ASSERT_EQ(r.status, 200) << r.body;
  auto s = as_object(r);
  EXPECT_EQ(s["lead_id"].as_string(), "L1");
  EXPECT_EQ(s["events_count"].as_int64(), 2);
  auto bad = http_->post("/api/realtime/score-trigger", R"({"lead_id":"L1","lead_data":{"events":[{"type":"x"}]}})", a);
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(error_of(bad).find("events[0]"), std::string::npos);
  EXPECT_EQ(http_->post("/api/realtime/score-trigger", R"({"lead_data":{}})", a).status, 400);
}

// A trigger whose events are refused (an event id stored for another lead)
// answers 409 and changes nothing: no contact for a new lead, the old fields
// of a known one. One that is not refused stores the fields as before.
TEST_F(ServerTest, ARefusedScoreTriggerStoresNothing) {
  start();
  const std::string a = token("tenant-a");
  ASSERT_EQ(post_event(a, "lead-a", "sms_in", "reuse-1").status, 200);
  auto fresh = http_->post("/api/realtime/score-trigger",
                           R"({"lead_id":"T-new","lead_data":{"budget":300000,"source":"zillow",)"
                           R"("events":[{"type":"sms_in","event_id":"reuse-1"}]}})",
                           a);
  EXPECT_EQ(fresh.status, 409) << fresh.body;
  EXPECT_EQ(store_->get_contact("tenant-a", "T-new").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(http_->get("/api/contacts/T-new", a).status, 404);
  ASSERT_EQ(http_->put("/api/contacts/T-old", R"({"budget":100000})", a).status, 200);
  auto known = http_->post("/api/realtime/score-trigger",
                           R"({"lead_id":"T-old","lead_data":{"budget":999000,)"
                           R"("events":[{"type":"sms_in","event_id":"reuse-1"}]}})",
                           a);
  EXPECT_EQ(known.status, 409) << known.body;
  EXPECT_EQ(store_->get_contact("tenant-a", "T-old")->budget, 100000);
  EXPECT_EQ(*store_->count_contacts("tenant-a"), 2u);
  EXPECT_EQ(*store_->count_events("tenant-a"), 1u);
  // A lead with events, the refused id after a new one: refused before the
  // new one is written.
  ASSERT_EQ(post_event(a, "T-old", "sms_in", "old-1").status, 200);
  auto later = http_->post("/api/realtime/score-trigger",
                           R"({"lead_id":"T-old","lead_data":{"budget":999000,"events":[)"
                           R"({"type":"sms_in","event_id":"old-2"},{"type":"sms_in","event_id":"old-1"},)"
                           R"({"type":"sms_in","event_id":"reuse-1"}]}})",
                           a);
  EXPECT_EQ(later.status, 409) << later.body;
  EXPECT_EQ(error_of(later), "event_id 'reuse-1' is stored for another lead (event ids are unique within a tenant)");
  EXPECT_EQ(store_->get_contact("tenant-a", "T-old")->budget, 100000);
  EXPECT_EQ(*store_->count_events("tenant-a"), 2u);
  auto single = http_->post("/api/realtime/score-trigger",
                            R"({"lead_id":"T-old","lead_data":{"events":[{"type":"sms_in","event_id":"reuse-1"}]}})", a);
  EXPECT_EQ(single.status, 409) << single.body;
  auto replay = http_->post("/api/realtime/score-trigger",
                            R"({"lead_id":"T-old","lead_data":{"events":[{"type":"sms_in","event_id":"old-1"}]}})", a);
  ASSERT_EQ(replay.status, 200) << replay.body;
  EXPECT_EQ(as_object(replay)["events_count"].as_int64(), 1);
  EXPECT_EQ(*store_->count_events("tenant-a"), 2u);
  // The same lead with an event of its own: events and fields stored.
  auto own = http_->post("/api/realtime/score-trigger",
                         R"({"lead_id":"T-new","lead_data":{"budget":300000,"source":"zillow",)"
                         R"("events":[{"type":"sms_in","event_id":"own-1","ts":"2023-11-14T10:00:00Z"}]}})",
                         a);
  ASSERT_EQ(own.status, 200) << own.body;
  EXPECT_EQ(as_object(own)["events_count"].as_int64(), 1);
  auto stored = store_->get_contact("tenant-a", "T-new");
  ASSERT_TRUE(stored) << stored.status().message();
  EXPECT_EQ(stored->budget, 300000);
  EXPECT_EQ(stored->source, "zillow");
  EXPECT_EQ(stored->created_at, parse_iso8601("2023-11-14T10:00:00Z").value());
}

// A trigger's contact fields and events go in one store commit, and the
// answer says what was stored: the events written and replayed, and whether
// the contact was created, updated or left as it was.
TEST_F(ServerTest, ScoreTriggerStoresFieldsAndEventsTogetherAndSaysWhat) {
  start();
  const std::string a = token("tenant-a");
  auto stored_of = [&](const HttpResponse& r) { return json::serialize(as_object(r)["stored"]); };
  auto fresh = http_->post("/api/realtime/score-trigger",
                           R"({"lead_id":"W1","lead_data":{"budget":300000,"source":"zillow","events":[)"
                           R"({"type":"sms_in","event_id":"w1-a","ts":"2023-11-14T10:00:00Z"},)"
                           R"({"type":"property_view","event_id":"w1-b","property_id":"p1","value":310000}]}})",
                           a);
  ASSERT_EQ(fresh.status, 200) << fresh.body;
  EXPECT_EQ(stored_of(fresh), R"({"events_written":2,"events_replayed":0,"contact":"created"})");
  EXPECT_EQ(as_object(fresh)["events_count"].as_int64(), 2);
  EXPECT_EQ(*store_->count_contacts("tenant-a"), 1u);
  EXPECT_EQ(*store_->count_events("tenant-a"), 2u);
  auto contact = store_->get_contact("tenant-a", "W1");
  ASSERT_TRUE(contact) << contact.status().message();
  EXPECT_EQ(contact->budget, 300000);
  EXPECT_EQ(contact->source, "zillow");
  EXPECT_EQ(contact->created_at, parse_iso8601("2023-11-14T10:00:00Z").value());
  // Sent again with a new budget: the events are replays, the fields updated.
  auto again = http_->post("/api/realtime/score-trigger",
                           R"({"lead_id":"W1","lead_data":{"budget":450000,"events":[)"
                           R"({"type":"sms_in","event_id":"w1-a","ts":"2023-11-14T10:00:00Z"},)"
                           R"({"type":"property_view","event_id":"w1-b","property_id":"p1","value":310000}]}})",
                           a);
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(stored_of(again), R"({"events_written":0,"events_replayed":2,"contact":"updated"})");
  EXPECT_EQ(as_object(again)["events_count"].as_int64(), 2);
  EXPECT_EQ(store_->get_contact("tenant-a", "W1")->budget, 450000);
  EXPECT_EQ(store_->get_contact("tenant-a", "W1")->source, "zillow");
  EXPECT_EQ(*store_->count_events("tenant-a"), 2u);
  // Events alone: the stored contact is left as it is.
  auto events_only = http_->post("/api/realtime/score-trigger",
                                 R"({"lead_id":"W1","lead_data":{"events":[{"type":"sms_in","event_id":"w1-c"}]}})", a);
  ASSERT_EQ(events_only.status, 200) << events_only.body;
  EXPECT_EQ(stored_of(events_only), R"({"events_written":1,"events_replayed":0,"contact":"unchanged"})");
  EXPECT_EQ(as_object(events_only)["events_count"].as_int64(), 3);
  EXPECT_EQ(store_->get_contact("tenant-a", "W1")->budget, 450000);
  EXPECT_EQ(*store_->count_events("tenant-a"), 3u);
  // Without lead_data: the current score, nothing written.
  auto read_only = http_->post("/api/realtime/score-trigger", R"({"lead_id":"W1"})", a);
  ASSERT_EQ(read_only.status, 200) << read_only.body;
  EXPECT_EQ(as_object(read_only)["events_count"].as_int64(), 3);
  EXPECT_FALSE(as_object(read_only).contains("stored"));
  EXPECT_EQ(*store_->count_contacts("tenant-a"), 1u);
  EXPECT_EQ(*store_->count_events("tenant-a"), 3u);
}

// Invalid contact fields refuse the whole trigger before anything is
// written: 400 with a JSON error, no contact, no event, old fields kept.
TEST_F(ServerTest, AScoreTriggerWithInvalidContactFieldsStoresNothing) {
  start();
  const std::string a = token("tenant-a");
  ASSERT_EQ(http_->put("/api/contacts/K1", R"({"budget":100000})", a).status, 200);
  for (const std::string lead : {"N1", "K1"}) {
    for (const std::string fields : {R"("budget":"lots")", R"("timeline_months":-3)", R"("colour":"red")"}) {
      auto r = http_->post("/api/realtime/score-trigger",
                           R"({"lead_id":")" + lead + R"(","lead_data":{)" + fields +
                               R"(,"events":[{"type":"sms_in","event_id":"x-)" + lead + R"("}]}})",
                           a);
      EXPECT_EQ(r.status, 400) << lead << " " << fields << " " << r.body;
      EXPECT_FALSE(error_of(r).empty()) << r.body;
    }
  }
  EXPECT_EQ(store_->get_contact("tenant-a", "N1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->get_contact("tenant-a", "K1")->budget, 100000);
  EXPECT_EQ(*store_->count_contacts("tenant-a"), 1u);
  EXPECT_EQ(*store_->count_events("tenant-a"), 0u);
}

TEST_F(ServerTest, PerformanceReportsTheCallersTenant) {
  start();
  const std::string a = token("tenant-a");
  ASSERT_EQ(post_event(a, "c1").status, 200);
  ASSERT_EQ(post_event(a, "c2").status, 200);
  auto r = http_->get("/api/realtime/performance", a);
  ASSERT_EQ(r.status, 200) << r.body;
  auto p = as_object(r);
  EXPECT_EQ(p["tenant_id"].as_string(), "tenant-a");
  EXPECT_EQ(p["scoring_latency"].as_object()["samples"].to_number<std::uint64_t>(), 2u);
  EXPECT_TRUE(p["scoring_latency"].as_object().contains("p99_ms"));
  EXPECT_TRUE(p["events_per_second"].as_object().contains("last_60s"));
  EXPECT_EQ(p["websocket_connections"].as_object()["tenant"].to_number<std::uint64_t>(), 0u);
  EXPECT_EQ(p["model_version"].as_string(), "fallback");
  EXPECT_EQ(p["fallback_scores"].as_object()["tenant"].to_number<std::uint64_t>(), 2u);
  auto other = as_object(http_->get("/api/realtime/performance", token("tenant-b")));
  EXPECT_EQ(other["scoring_latency"].as_object()["samples"].to_number<std::uint64_t>(), 0u);
}

// The issue asks for the caller's tenant's cache hit rate: cache.tenant
// counts only its own lookups, beside the instance's figures.
TEST_F(ServerTest, PerformanceCountsTheCallersTenantsCacheLookupsApart) {
  start();
  const std::string a = token("tenant-a"), b = token("tenant-b");
  ASSERT_EQ(post_event(a, "c1").status, 200);
  ASSERT_EQ(post_event(a, "c2").status, 200);
  ASSERT_EQ(http_->get("/api/contacts/c1/score", a).status, 200);
  ASSERT_EQ(post_event(b, "c9").status, 200);
  auto cache_of = [&](const std::string& tok) {
    return as_object(http_->get("/api/realtime/performance", tok))["cache"].as_object();
  };
  auto count = [](const boost::json::object& o, const char* key) { return o.at(key).to_number<std::uint64_t>(); };
  const auto a_cache = cache_of(a);
  const auto& a_own = a_cache.at("tenant").as_object();
  EXPECT_EQ(count(a_own.at("feature_snapshots").as_object(), "hits"), 1u);
  EXPECT_EQ(count(a_own.at("feature_snapshots").as_object(), "misses"), 2u);
  EXPECT_EQ(count(a_own.at("warm_scores").as_object(), "misses"), 2u);
  EXPECT_EQ(count(a_own, "hits"), 1u);
  EXPECT_EQ(count(a_own, "misses"), 4u);
  EXPECT_DOUBLE_EQ(a_own.at("hit_rate").to_number<double>(), 0.2);
  EXPECT_EQ(count(a_cache.at("feature_snapshots").as_object(), "misses"), 3u);  // the instance's: b's too
  const auto b_cache = cache_of(b);
  const auto& b_own = b_cache.at("tenant").as_object();
  EXPECT_EQ(count(b_own.at("feature_snapshots").as_object(), "hits"), 0u);
  EXPECT_EQ(count(b_own.at("feature_snapshots").as_object(), "misses"), 1u);
  EXPECT_EQ(count(b_own.at("warm_scores").as_object(), "misses"), 1u);
  const auto c_own = cache_of(token("tenant-c")).at("tenant").as_object();
  EXPECT_EQ(count(c_own, "hits") + count(c_own, "misses"), 0u);
}

// Two new leads (misses), then a read of one (a hit); no model, so each
// lead asks the warm-score cache once for a last good score, which none has.
TEST_F(ServerTest, PerformanceAndMetricsCountFeatureSnapshotAndWarmScoreLookups) {
  start();
  const std::string a = token("tenant-a");
  ASSERT_EQ(post_event(a, "c1").status, 200);
  ASSERT_EQ(post_event(a, "c2").status, 200);
  ASSERT_EQ(http_->get("/api/contacts/c1/score", a).status, 200);
  auto cache = as_object(http_->get("/api/realtime/performance", a))["cache"].as_object();
  const auto& snapshots = cache["feature_snapshots"].as_object();
  EXPECT_EQ(snapshots.at("hits").to_number<std::uint64_t>(), 1u);
  EXPECT_EQ(snapshots.at("misses").to_number<std::uint64_t>(), 2u);
  EXPECT_DOUBLE_EQ(snapshots.at("hit_rate").to_number<double>(), 1.0 / 3);
  EXPECT_EQ(snapshots.at("from_other_instances").to_number<std::uint64_t>(), 0u);
  EXPECT_FALSE(snapshots.at("shared").as_bool());
  EXPECT_EQ(snapshots.at("ttl_s").to_number<std::int64_t>(), 300);
  const auto& warm = cache["warm_scores"].as_object();
  EXPECT_EQ(warm.at("hits").to_number<std::uint64_t>(), 0u);
  EXPECT_EQ(warm.at("misses").to_number<std::uint64_t>(), 2u);
  EXPECT_DOUBLE_EQ(warm.at("hit_rate").to_number<double>(), 0.0);
  EXPECT_EQ(warm.at("entries").to_number<std::uint64_t>(), 0u);  // fallback scores are not kept
  EXPECT_EQ(warm.at("ttl_s").to_number<std::int64_t>(), 3600);
  // The top level counts both kinds.
  EXPECT_EQ(cache["hits"].to_number<std::uint64_t>(), 1u);
  EXPECT_EQ(cache["misses"].to_number<std::uint64_t>(), 4u);
  EXPECT_DOUBLE_EQ(cache["hit_rate"].to_number<double>(), 0.2);
  const std::string m = http_->get("/metrics").body;
  for (const char* line :
       {"reai_cache_hits_total{kind=\"feature_snapshot\"} 1\n", "reai_cache_misses_total{kind=\"feature_snapshot\"} 2\n",
        "reai_cache_hits_total{kind=\"warm_score\"} 0\n", "reai_cache_misses_total{kind=\"warm_score\"} 2\n",
        "reai_cache_hit_ratio{kind=\"feature_snapshot\"} 0.3333333333333333\n",
        "reai_cache_hit_ratio{kind=\"warm_score\"} 0\n", "reai_cache_entries{kind=\"warm_score\"} 0\n",
        "reai_lead_snapshot_adopted_total 0\n"}) {
    EXPECT_NE(m.find(line), std::string::npos) << line << m;
  }
}

TEST_F(ServerTest, MetricsUseRouteTemplatesAndNoIds) {
  start();
  const std::string a = token("tenant-a");
  ASSERT_EQ(post_event(a, "secret-contact-42").status, 200);
  EXPECT_EQ(http_->get("/api/contacts/secret-contact-42/score", a).status, 200);
  auto m = http_->get("/metrics");
  ASSERT_EQ(m.status, 200);
  EXPECT_NE(m.header("content-type").find("text/plain"), std::string::npos);
  for (const char* name :
       {"http_requests_total{route=\"/api/events\",code=\"200\"} 1", "http_request_duration_seconds_bucket",
        "route=\"/api/contacts/{id}/score\"", "reai_scoring_latency_seconds_bucket", "reai_events_total 1",
        "reai_websocket_connections 0", "reai_websocket_queue_drops_total 0", "reai_cache_hits_total",
        "reai_cache_misses_total", "reai_fallback_scores_total 1"}) {
    EXPECT_NE(m.body.find(name), std::string::npos) << name;
  }
  EXPECT_EQ(m.body.find("secret-contact-42"), std::string::npos);
  EXPECT_EQ(m.body.find("tenant-a"), std::string::npos);
}

TEST_F(ServerTest, AdminReloadNeedsAdminRole) {
  start();
  auto agent = http_->post("/api/admin/reload", "", token("tenant-a", Role::kAgent));
  EXPECT_EQ(agent.status, 403);
  auto admin = http_->post("/api/admin/reload", "", token("tenant-a", Role::kAdmin));
  ASSERT_EQ(admin.status, 200) << admin.body;
  auto o = as_object(admin);
  EXPECT_EQ(o["model_version"].as_string(), "fallback");
  // No models, no catalog loaded yet: nothing to swap.
  EXPECT_EQ(json::serialize(o["reloaded"]), "[]");
  EXPECT_EQ(json::serialize(o["unchanged"]), R"(["listings"])");
  EXPECT_EQ(o["tenants_refreshed"].as_int64(), 0);
  // Handed to the (in-process) bus: other instances on it would reload too.
  EXPECT_EQ(o["announced"], json::value(true)) << admin.body;
  EXPECT_FALSE(o.contains("announce_error"));
}

// A model on disk this build will not load (here: one an older reai wrote,
// whose agent records pooled tenants) is refused by name; /readyz says so
// until a loadable one replaces it, and scoring goes on with the fallback.
TEST_F(ServerTest, AModelThatDoesNotLoadIsNamedInReadyzAndTheReloadAnswer) {
  start();
  const auto leads = model_dir_ / "leads";
  std::filesystem::create_directories(leads);
  {
    std::ofstream(leads / "metadata.json") << R"({"format":"reai-lead-model/1","version":"leads-old"})";
    std::ofstream(leads / "model.json") << "{}";
  }
  auto reload = http_->post("/api/admin/reload", "", token("tenant-a", Role::kAdmin));
  EXPECT_EQ(reload.status, 422) << reload.body;
  EXPECT_NE(as_object(reload)["error"].as_string().find("retrain the model"), std::string::npos) << reload.body;
  auto ready = http_->get("/readyz");
  ASSERT_EQ(ready.status, 200) << ready.body;  // degraded, still serving
  EXPECT_EQ(as_object(ready)["status"].as_string(), "degraded");
  auto model = as_object(ready)["model"].as_object();
  EXPECT_EQ(model["status"].as_string(), "degraded");
  EXPECT_EQ(model["version"].as_string(), "fallback");
  EXPECT_NE(model["detail"].as_string().find("retrain the model"), std::string::npos) << ready.body;
  EXPECT_EQ(post_event(token("tenant-a"), "c1").status, 200);

  std::filesystem::remove_all(leads);
  ASSERT_EQ(http_->post("/api/admin/reload", "", token("tenant-a", Role::kAdmin)).status, 200);
  auto ready_again = as_object(http_->get("/readyz"));
  EXPECT_EQ(ready_again["status"].as_string(), "ready");
  auto after = ready_again["model"].as_object();
  EXPECT_EQ(after["status"].as_string(), "ok");
  EXPECT_EQ(after["detail"].as_string(), "");
}

TEST_F(ServerTest, RateLimitAnswers429WithRetryAfter) {
  ServerConfig config;
  config.tenant_rate_limit_per_s = 0.001;  // one token, refilled far later
  start(config);
  const std::string a = token("tenant-a");
  EXPECT_EQ(post_event(a, "c1").status, 200);
  auto limited = post_event(a, "c2");
  EXPECT_EQ(limited.status, 429);
  EXPECT_FALSE(limited.header("retry-after").empty());
  // Another tenant has its own bucket; reads are not limited.
  EXPECT_EQ(post_event(token("tenant-b"), "c1").status, 200);
  EXPECT_EQ(http_->get("/api/leads", a).status, 200);
}

TEST_F(ServerTest, BuiltInPageAndScript) {
  start();
  auto page = http_->get("/");
  ASSERT_EQ(page.status, 200);
  EXPECT_NE(page.header("content-type").find("text/html"), std::string::npos);
  EXPECT_NE(page.header("content-security-policy").find("script-src 'self'"), std::string::npos);
  EXPECT_NE(page.body.find("/app.js"), std::string::npos);
  auto js = http_->get("/app.js");
  ASSERT_EQ(js.status, 200);
  EXPECT_NE(js.header("content-type").find("javascript"), std::string::npos);
  EXPECT_NE(js.body.find("sessionStorage"), std::string::npos);
  EXPECT_EQ(http_->get("/missing.png").status, 404);
}

TEST_F(ServerTest, StaticDirServesFilesWithoutTraversal) {
  fs::path root = make_temp_dir("static");
  extra_dirs_.push_back(root);
  fs::create_directories(root / "site" / "assets");
  std::ofstream(root / "site" / "index.html") << "<html>dashboard</html>";
  std::ofstream(root / "site" / "assets" / "app-1.css") << "body{}";
  std::ofstream(root / "secret.txt") << "top secret";
  ServerConfig config;
  config.static_dir = (root / "site").string();
  start(config);

  auto index = http_->get("/");
  ASSERT_EQ(index.status, 200);
  EXPECT_EQ(index.body, "<html>dashboard</html>");
  EXPECT_EQ(index.header("cache-control"), "no-cache");
  auto css = http_->get("/assets/app-1.css");
  ASSERT_EQ(css.status, 200);
  EXPECT_NE(css.header("content-type").find("text/css"), std::string::npos);
  EXPECT_NE(css.header("cache-control").find("max-age"), std::string::npos);
  for (const char* attack : {"/../secret.txt", "/assets/../../secret.txt", "/%2e%2e/secret.txt", "/..%2fsecret.txt"}) {
    auto r = http_->get(attack);
    EXPECT_EQ(r.status, 404) << attack;
    EXPECT_EQ(r.body.find("top secret"), std::string::npos) << attack;
  }
}

TEST_F(ServerTest, StartRebuildsStateFromTheStore) {
  ASSERT_TRUE(store_->upsert_tenant({"tenant-a", "A", kNow - 1000, ""}));
  Contact c;
  c.tenant_id = "tenant-a";
  c.contact_id = "old-lead";
  c.created_at = kNow - 7200;
  ASSERT_TRUE(store_->upsert_contact(c));
  Event e;
  e.tenant_id = "tenant-a";
  e.event_id = "h1";
  e.contact_id = "old-lead";
  e.ts = kNow - 3600;
  e.type = EventType::kCallIn;
  ASSERT_TRUE(store_->append_event(e));
  start();
  auto leads = http_->get("/api/leads", token("tenant-a"));
  ASSERT_EQ(leads.status, 200) << leads.body;
  auto list = as_object(leads)["leads"].as_array();
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].as_object()["lead_id"].as_string(), "old-lead");
  EXPECT_EQ(list[0].as_object()["events_count"].as_int64(), 1);
}

TEST_F(ServerTest, PortInUseIsAnError) {
  start();
  ServerConfig config;
  config.port = server_->port();
  config.jwt_secret = kSecret;
  Server second(config, ServerDeps{*store_, *bus_, *cache_, *engine_, *registry_, clock_});
  Status s = second.start();
  EXPECT_FALSE(s);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  ServerConfig no_secret;
  no_secret.port = 0;
  Server third(no_secret, ServerDeps{*store_, *bus_, *cache_, *engine_, *registry_, clock_});
  EXPECT_EQ(third.start().code(), StatusCode::kInvalidArgument);
}

TEST_F(ServerTest, GracefulStopClosesWebSocketsWithGoingAway) {
  start();
  const std::string a = token("tenant-a");
  WsClient ws;
  ASSERT_TRUE(ws.connect("127.0.0.1", server_->port(), ws_target("tenant-a", a)));
  ASSERT_TRUE(ws.ping());
  ASSERT_EQ(http_->get("/healthz").status, 200);  // an idle keep-alive connection too
  const auto port = server_->port();
  std::thread waiter([this] { server_->wait(); });
  // The client answers the close handshake while the server stops.
  std::optional<std::string> last = "not read";
  std::thread reader([&] { last = ws.read(); });
  server_->stop();
  waiter.join();
  reader.join();
  EXPECT_EQ(last, std::nullopt);
  EXPECT_EQ(ws.close_code(), 1001);
  HttpClient after("127.0.0.1", port, std::chrono::milliseconds(2000));
  EXPECT_EQ(after.get("/healthz").status, 0);
  server_->stop();  // idempotent
}

// --- Unix-domain socket (ServerConfig::unix_socket) ----------------------

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using unix_stream = net::local::stream_protocol;

// One HTTP/1.1 exchange over a Unix-domain socket; status 0 when the socket
// cannot be reached.
HttpResponse unix_get(const fs::path& path, const std::string& target) {
  net::io_context ioc;
  unix_stream::socket socket(ioc);
  beast::error_code ec;
  socket.connect(unix_stream::endpoint(path.string()), ec);
  if (ec) return {};
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "localhost");
  http::write(socket, req, ec);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  if (!ec) http::read(socket, buffer, res, ec);
  if (ec) return {};
  HttpResponse out;
  out.status = res.result_int();
  out.body = res.body();
  return out;
}

// The same routes and WebSocket stream as TCP: a health check, a score
// update caused by an event POSTed over TCP reaches a subscriber on the
// Unix socket (in seq order, the frame unchanged), and the socket file is
// reachable by any local user while the server runs and gone after stop().
TEST_F(ServerTest, UnixSocketServesHttpAndWebSocketsLikeTcp) {
  const fs::path dir = make_temp_dir("unix");
  extra_dirs_.push_back(dir);
  const fs::path path = dir / "reai.sock";
  ServerConfig config;
  config.unix_socket = path.string();
  start(config);

  ASSERT_TRUE(fs::is_socket(path));
  EXPECT_EQ(fs::status(path).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::group_write |
                fs::perms::others_read | fs::perms::others_write);
  const HttpResponse health = unix_get(path, "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, http_->get("/healthz").body);
  EXPECT_EQ(unix_get(path, "/api/leads").status, 401);  // the same auth as TCP

  const std::string a = token("tenant-a");
  net::io_context ioc;
  websocket::stream<unix_stream::socket> ws(ioc);
  ws.next_layer().connect(unix_stream::endpoint(path.string()));
  ws.handshake("localhost", ws_target("tenant-a", a, 0));  // since=0: no race with the join
  std::vector<std::uint64_t> seqs;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(post_event(a, "unix-lead-" + std::to_string(i)).status, 200);
    beast::flat_buffer buffer;
    ws.read(buffer);
    auto o = message(beast::buffers_to_string(buffer.data()));
    EXPECT_EQ(o["type"].as_string(), "score_update");
    EXPECT_EQ(o["lead_id"].as_string(), "unix-lead-" + std::to_string(i));
    seqs.push_back(o["seq"].to_number<std::uint64_t>());
  }
  EXPECT_EQ(seqs[1], seqs[0] + 1);
  EXPECT_EQ(seqs[2], seqs[1] + 1);
  ws.close(websocket::close_code::normal);

  server_->stop();
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(unix_get(path, "/healthz").status, 0);
}

// A socket file left by a killed server is taken over; a path a live server
// accepts on, a path that is not a socket (left untouched) and one too long
// for a socket address are refused with what is wrong.
TEST_F(ServerTest, UnixSocketReplacesOnlyStaleSockets) {
  const fs::path dir = make_temp_dir("unix");
  extra_dirs_.push_back(dir);
  const fs::path path = dir / "reai.sock";
  {
    net::io_context ioc;
    unix_stream::acceptor dead(ioc, unix_stream::endpoint(path.string()));
  }  // closed without unlinking, as after SIGKILL
  ASSERT_TRUE(fs::is_socket(path));
  ServerConfig config;
  config.unix_socket = path.string();
  start(config);
  EXPECT_EQ(unix_get(path, "/healthz").status, 200);

  auto try_start = [this](const std::string& unix_socket) {
    ServerConfig other;
    other.port = 0;
    other.jwt_secret = kSecret;
    other.unix_socket = unix_socket;
    Server server(other, ServerDeps{*store_, *bus_, *cache_, *engine_, *registry_, clock_});
    return server.start();
  };
  Status live = try_start(path.string());
  EXPECT_EQ(live.code(), StatusCode::kUnavailable) << live.to_string();
  EXPECT_NE(live.to_string().find("running server"), std::string::npos) << live.to_string();
  EXPECT_EQ(unix_get(path, "/healthz").status, 200);  // still the first server's

  const fs::path file = dir / "not-a-socket";
  std::ofstream(file) << "keep me";
  Status not_socket = try_start(file.string());
  EXPECT_EQ(not_socket.code(), StatusCode::kInvalidArgument) << not_socket.to_string();
  std::ifstream in(file);
  std::string kept;
  std::getline(in, kept);
  EXPECT_EQ(kept, "keep me");

  Status too_long = try_start((dir / std::string(120, 'x')).string());
  EXPECT_EQ(too_long.code(), StatusCode::kInvalidArgument) << too_long.to_string();
}

}  // namespace
}  // namespace reai::server
