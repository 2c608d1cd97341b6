// Black-box: two `reai serve` processes sharing one Redis (--bus, --cache),
// each with its own SQLite data dir. Score updates caused on instance A reach
// WebSocket clients on instance B, all of them, in seq order, and a client
// that reconnects to the other instance with `since` misses nothing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <string>
#include <vector>

#include "support/private_redis.h"
#include "support/process.h"
#include "support/test_client.h"
#include "support/token.h"

namespace reai::testing {
namespace {

namespace json = boost::json;

const std::string kSecret = kTestJwtSecret;

// A fresh key prefix per run so seqs start at 1 on the shared test Redis.
std::string redis_url() { return PrivateRedis::shared().url("cluster-" + std::to_string(::getpid())); }

struct Instance {
  std::uint16_t port = 0;
  std::unique_ptr<ReaiProcess> process;
};

Instance start_instance(const std::string& url, const std::string& models) {
  Instance i;
  i.port = free_port();
  i.process = std::make_unique<ReaiProcess>(std::vector<std::string>{
      "serve", "--port", std::to_string(i.port), "--data-dir", make_temp_dir("reai-cluster-data"), "--model-dir",
      models, "--jwt-secret", kSecret, "--bus", url, "--cache", url});
  return i;
}

json::object parse(const std::string& text) { return json::parse(text).as_object(); }

TEST(RedisCluster, UpdatesPostedToOneInstanceReachClientsOfTheOther) {
  const std::string url = redis_url();
  const std::string models = make_temp_dir("reai-cluster-models");  // fallback scorer: enough here
  Instance a = start_instance(url, models);
  Instance b = start_instance(url, models);
  ASSERT_TRUE(a.process->wait_for_port(a.port)) << a.process->log();
  ASSERT_TRUE(b.process->wait_for_port(b.port)) << b.process->log();
  const std::string t = reai_token("t_cluster", server::Role::kAgent, kSecret);

  HttpClient http_a("127.0.0.1", a.port);
  HttpClient http_b("127.0.0.1", b.port);
  for (HttpClient* http : {&http_a, &http_b}) {
    auto ready = http->get("/readyz");
    ASSERT_EQ(ready.status, 200) << ready.body;
    EXPECT_EQ(parse(ready.body).at("bus").at("status").as_string(), "ok") << ready.body;
    EXPECT_EQ(parse(ready.body).at("cache").at("status").as_string(), "ok") << ready.body;
    EXPECT_NE(http->get("/metrics").body.find("reai_bus_up 1"), std::string::npos);
  }

  WsClient on_b;
  ASSERT_TRUE(on_b.connect("127.0.0.1", b.port, "/api/realtime/scoring/t_cluster?token=" + t));
  constexpr int kEvents = 200;
  for (int i = 0; i < kEvents; ++i) {
    const std::string body = R"({"contact_id":"lead-)" + std::to_string(i) + R"(","type":"sms_in"})";
    auto r = http_a.post("/api/events", body, t);
    ASSERT_EQ(r.status, 200) << r.body;
  }
  std::vector<std::int64_t> seqs;
  for (int i = 0; i < kEvents; ++i) {
    auto m = on_b.read();
    ASSERT_TRUE(m.has_value()) << "lost after " << seqs.size() << " updates; " << on_b.error();
    auto o = parse(*m);
    ASSERT_EQ(o.at("type").as_string(), "score_update") << *m;
    EXPECT_EQ(o.at("lead_id").as_string(), "lead-" + std::to_string(i)) << *m;
    seqs.push_back(o.at("seq").as_int64());
  }
  for (int i = 0; i < kEvents; ++i) EXPECT_EQ(seqs[i], i + 1);
  EXPECT_FALSE(on_b.read(std::chrono::milliseconds(300)).has_value()) << "nothing beyond what was posted";

  // A client of B moves to A with since=100: A replays 101..200 from Redis.
  WsClient moved;
  ASSERT_TRUE(moved.connect("127.0.0.1", a.port, "/api/realtime/scoring/t_cluster?token=" + t + "&since=100"));
  for (int seq = 101; seq <= kEvents; ++seq) {
    auto m = moved.read();
    ASSERT_TRUE(m.has_value()) << "replay stopped before seq " << seq;
    EXPECT_EQ(parse(*m).at("seq").as_int64(), seq) << *m;
  }
  // And live updates caused on B now reach it on A.
  ASSERT_EQ(http_b.post("/api/events", R"({"contact_id":"lead-b","type":"call_in"})", t).status, 200);
  auto live = moved.read();
  ASSERT_TRUE(live.has_value());
  EXPECT_EQ(parse(*live).at("seq").as_int64(), kEvents + 1);
  EXPECT_EQ(parse(*live).at("lead_id").as_string(), "lead-b");

  on_b.close();
  moved.close();  // else shutdown waits for these clients' close frames
  EXPECT_EQ(a.process->stop(SIGTERM), 0) << a.process->log();
  EXPECT_EQ(b.process->stop(SIGTERM), 0) << b.process->log();
}

TEST(RedisCluster, UnreachableRedisDegradesButTheInstanceKeepsServingItsClients) {
  // Nothing listens on port 1 of loopback.
  Instance lone = start_instance("redis://127.0.0.1:1", make_temp_dir("reai-cluster-models"));
  ASSERT_TRUE(lone.process->wait_for_port(lone.port)) << lone.process->log();
  const std::string t = reai_token("t_lone", server::Role::kAgent, kSecret);
  HttpClient http("127.0.0.1", lone.port);
  auto ready = http.get("/readyz");
  EXPECT_EQ(ready.status, 200) << ready.body;  // the store works: still ready to take events
  EXPECT_EQ(parse(ready.body).at("status").as_string(), "degraded") << ready.body;
  EXPECT_EQ(parse(ready.body).at("bus").at("status").as_string(), "unavailable") << ready.body;
  EXPECT_EQ(parse(ready.body).at("cache").at("status").as_string(), "unavailable") << ready.body;
  const std::string metrics = http.get("/metrics").body;
  EXPECT_NE(metrics.find("reai_bus_up 0"), std::string::npos);
  EXPECT_NE(metrics.find("reai_cache_up 0"), std::string::npos);

  WsClient ws;
  ASSERT_TRUE(ws.connect("127.0.0.1", lone.port, "/api/realtime/scoring/t_lone?token=" + t));
  ASSERT_EQ(http.post("/api/events", R"({"contact_id":"c1","type":"sms_in"})", t).status, 200);
  ASSERT_EQ(http.post("/api/events", R"({"contact_id":"c2","type":"sms_in"})", t).status, 200);
  for (std::int64_t seq = 1; seq <= 2; ++seq) {
    auto m = ws.read();
    ASSERT_TRUE(m.has_value()) << ws.error();
    EXPECT_EQ(parse(*m).at("seq").as_int64(), seq) << *m;
  }
  ws.close();
  EXPECT_EQ(lone.process->stop(SIGTERM), 0) << lone.process->log();
}

TEST(RedisCluster, BadBusUrlIsRefusedAtStart) {
  auto r = run_reai({"serve", "--port", "0", "--data-dir", make_temp_dir("reai-cluster-bad"), "--jwt-secret",
                     kSecret, "--bus", "redis://127.0.0.1:notaport"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("bad port"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace reai::testing
