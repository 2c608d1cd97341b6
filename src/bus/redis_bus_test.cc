// What only the Redis implementations do: URLs, several instances sharing one
// Redis, and Redis being unreachable, killed and restarted. The shared suite
// (bus_test.cc) covers the Bus/Cache contracts themselves.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "bus/bus.h"
#include "bus/redis_connection.h"
#include "bus/redis_test_support.h"

namespace reai::bus {
namespace {

std::shared_ptr<const std::string> text(std::string s) {
  return std::make_shared<const std::string>(std::move(s));
}

RedisEndpoint endpoint_on(int port) {
  static std::atomic<int> counter{1000};
  RedisEndpoint e;
  e.port = static_cast<std::uint16_t>(port);
  e.prefix = numbered_prefix(++counter);
  return e;
}

// Seqs and topics one subscriber saw, per tenant.
class Seen {
 public:
  Bus::Handler handler() {
    return [this](const BusMessage& m) {
      std::lock_guard lock(mu_);
      seqs_[m.tenant_id].push_back(m.seq);
      topics_[m.tenant_id].push_back(m.topic);
    };
  }
  std::vector<std::uint64_t> seqs(const std::string& tenant) {
    std::lock_guard lock(mu_);
    return seqs_[tenant];
  }
  std::size_t count(const std::string& tenant, const std::string& topic) {
    std::lock_guard lock(mu_);
    std::size_t n = 0;
    for (const auto& t : topics_[tenant]) n += t == topic;
    return n;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::vector<std::uint64_t>> seqs_;
  std::map<std::string, std::vector<std::string>> topics_;
};

// Polls `done` for up to 20 s (the reader thread of another instance delivers
// asynchronously). Returns whether it came true; no test asserts the time.
template <typename F>
bool eventually(F done) {
  for (int i = 0; i < 2000; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

bool strictly_increasing(const std::vector<std::uint64_t>& v) {
  for (std::size_t i = 1; i < v.size(); ++i) {
    if (v[i] <= v[i - 1]) return false;
  }
  return true;
}

TEST(RedisUrl, ParsesHostPortAndPrefix) {
  auto e = redis::parse_url("redis://10.0.0.5:6380?prefix=brokerage1").value();
  EXPECT_EQ(e.host, "10.0.0.5");
  EXPECT_EQ(e.port, 6380);
  EXPECT_EQ(e.prefix, "brokerage1:");
  auto d = redis::parse_url("redis://cache.internal").value();
  EXPECT_EQ(d.host, "cache.internal");
  EXPECT_EQ(d.port, 6379);
  EXPECT_EQ(d.prefix, "reai:");
  auto u = redis::parse_url("unix:///run/redis/redis.sock?prefix=brokerage2").value();
  EXPECT_EQ(u.unix_socket, "/run/redis/redis.sock");
  EXPECT_EQ(u.prefix, "brokerage2:");
  EXPECT_TRUE(d.unix_socket.empty());
  for (const char* bad : {"http://x:1", "redis://", "redis://h:0", "redis://h:99999", "redis://h:12x",
                          "redis://h:1/db", "redis://h:1?db=2", "redis://h:1?prefix=", "unix://", "unix://relative.sock",
                          "unix:///run/redis/", "unix:///r.sock?db=1"}) {
    EXPECT_EQ(redis::parse_url(bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

// hiredis writes with plain write(): a command sent on a connection that was
// shut down (interrupt(), as at stop or reconnect) used to raise SIGPIPE and
// kill the process; it must answer Unavailable instead.
TEST(RedisConnection, ACommandAfterInterruptAnswersUnavailableInsteadOfKillingTheProcess) {
  redis::Connection connection;
  ASSERT_TRUE(connection.connect(endpoint_on(test_redis_port()), std::chrono::milliseconds(500)).is_ok());
  auto pong = connection.command({"PING"});
  ASSERT_TRUE(pong.has_value()) << pong.status().message();
  EXPECT_EQ(redis::reply_string(pong.value().get()), "PONG");
  connection.interrupt();
  EXPECT_EQ(connection.command({"PING"}).status().code(), StatusCode::kUnavailable);
  EXPECT_FALSE(connection.connected());
  EXPECT_EQ(connection.command({"PING"}).status().code(), StatusCode::kUnavailable);
}

TEST(RedisLuaScript, DigestIsTheSha1RedisNamesTheScriptBy) {
  EXPECT_EQ(redis::LuaScript("").sha1(), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
  const redis::LuaScript script("return 'digest check'");
  redis::Connection connection;
  ASSERT_TRUE(connection.connect(endpoint_on(test_redis_port()), std::chrono::milliseconds(500)).is_ok());
  auto loaded = connection.command({"SCRIPT", "LOAD", script.source()});
  ASSERT_TRUE(loaded.has_value()) << loaded.status().message();
  EXPECT_EQ(redis::reply_string(loaded.value().get()), script.sha1());
}

// Scripts go by digest; a server that does not know it (first use, restart,
// SCRIPT FLUSH) gets the text once and knows it afterwards.
TEST(RedisConnection, ScriptsRunByDigestAndAreSentAgainWhenRedisForgetsThem) {
  // A text no other test sends, so the server cannot know it yet.
  const redis::LuaScript script("return ARGV[1] .. KEYS[1] -- " + numbered_prefix(4242));
  redis::Connection connection;
  ASSERT_TRUE(connection.connect(endpoint_on(test_redis_port()), std::chrono::milliseconds(500)).is_ok());
  auto known = [&] {
    auto r = connection.command({"SCRIPT", "EXISTS", script.sha1()});
    return r && (*r)->type == REDIS_REPLY_ARRAY && (*r)->elements == 1 && (*r)->element[0]->integer == 1;
  };
  EXPECT_FALSE(known());
  auto first = connection.eval(script, {"1", "-key", "value"});
  ASSERT_TRUE(first.has_value()) << first.status().message();
  EXPECT_EQ(redis::reply_string(first.value().get()), "value-key");
  EXPECT_EQ(connection.scripts_sent(), 1u);  // NOSCRIPT, then the text
  EXPECT_TRUE(known());
  auto again = connection.eval(script, {"1", "-k2", "v2"});
  ASSERT_TRUE(again.has_value()) << again.status().message();
  EXPECT_EQ(redis::reply_string(again.value().get()), "v2-k2");
  EXPECT_EQ(connection.scripts_sent(), 1u);  // by digest alone
  ASSERT_TRUE(connection.command({"SCRIPT", "FLUSH"}).has_value());
  EXPECT_FALSE(known());
  auto after_flush = connection.eval(script, {"1", "-k3", "v3"});
  ASSERT_TRUE(after_flush.has_value()) << after_flush.status().message();
  EXPECT_EQ(redis::reply_string(after_flush.value().get()), "v3-k3");
  EXPECT_EQ(connection.scripts_sent(), 2u);
  // A known script that fails is an error reply, not sent again as text.
  const redis::LuaScript failing("return redis.call('NOSUCHCOMMAND') -- " + numbered_prefix(4243));
  ASSERT_TRUE(connection.command({"SCRIPT", "LOAD", failing.source()}).has_value());
  auto failed = connection.eval(failing, {"0"});
  EXPECT_EQ(failed.status().code(), StatusCode::kInternal);
  EXPECT_EQ(connection.scripts_sent(), 2u);
  EXPECT_TRUE(connection.connected());
}

TEST(OpenBusAndCache, ChoosesTheImplementationFromTheUrl) {
  ManualClock clock(100);
  ASSERT_TRUE(open_bus("").has_value());
  ASSERT_TRUE(open_bus("inprocess").has_value());
  ASSERT_TRUE(open_cache("", clock).has_value());
  EXPECT_EQ(open_bus("postgres://x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(open_cache("redis://h:0", clock).status().code(), StatusCode::kInvalidArgument);
  const std::string url = "redis://127.0.0.1:" + std::to_string(test_redis_port()) + "?prefix=" +
                          numbered_prefix(1).substr(0, numbered_prefix(1).size() - 1) + "open";
  auto bus = open_bus(url);
  ASSERT_TRUE(bus.has_value());
  EXPECT_TRUE((*bus)->health().is_ok()) << (*bus)->health().message();
  auto cache = open_cache(url, clock);
  ASSERT_TRUE(cache.has_value());
  EXPECT_TRUE((*cache)->health().is_ok()) << (*cache)->health().message();
}

TEST(RedisBus, InstancesShareSeqsAndDeliverToEachOtherInOrder) {
  RedisEndpoint shared = endpoint_on(test_redis_port());
  auto a = make_redis_bus(shared);
  auto b = make_redis_bus(shared);
  Seen on_a, on_b;
  a->subscribe(on_a.handler());
  b->subscribe(on_b.handler());
  constexpr int kEach = 200;
  std::thread from_a([&] {
    for (int i = 0; i < kEach; ++i) EXPECT_TRUE(a->publish("t_a", "score_update", text("a")).has_value());
  });
  std::thread from_b([&] {
    for (int i = 0; i < kEach; ++i) EXPECT_TRUE(b->publish("t_a", "score_update", text("b")).has_value());
  });
  from_a.join();
  from_b.join();
  std::vector<std::uint64_t> all;
  for (std::uint64_t s = 1; s <= 2 * kEach; ++s) all.push_back(s);
  EXPECT_TRUE(eventually([&] { return on_a.seqs("t_a").size() == all.size(); }));
  EXPECT_TRUE(eventually([&] { return on_b.seqs("t_a").size() == all.size(); }));
  EXPECT_EQ(on_a.seqs("t_a"), all);
  EXPECT_EQ(on_b.seqs("t_a"), all);
  EXPECT_EQ(a->last_seq("t_a"), 2u * kEach);
  EXPECT_EQ(b->last_seq("t_a"), 2u * kEach);

  // Notices reach both instances' notice handlers, the sender's included,
  // and take no seq of the shared counters.
  std::atomic<int> notices_on_a{0}, notices_on_b{0};
  a->subscribe_notices([&](const BusMessage& m) { notices_on_a += m.topic == "live_outcome" && *m.payload == "x"; });
  b->subscribe_notices([&](const BusMessage& m) { notices_on_b += m.topic == "live_outcome" && *m.payload == "x"; });
  ASSERT_TRUE(a->notify("t_a", "live_outcome", text("x")).is_ok());
  EXPECT_TRUE(eventually([&] { return notices_on_a == 1 && notices_on_b == 1; }));
  EXPECT_EQ(b->last_seq("t_a"), 2u * kEach);

  // A client resuming on the other instance gets the same messages.
  auto from_b_replay = b->since("t_a", 390).value();
  EXPECT_TRUE(from_b_replay.complete);
  ASSERT_EQ(from_b_replay.messages.size(), 10u);
  EXPECT_EQ(from_b_replay.messages.front().seq, 391u);
  EXPECT_EQ(from_b_replay.messages.front().topic, "score_update");

  // A third instance started later replays what it never saw live.
  auto c = make_redis_bus(shared);
  auto replay = c->since("t_a", 0).value();
  EXPECT_TRUE(replay.complete);
  EXPECT_EQ(replay.messages.size(), all.size());
}

// One instance on the server's Unix-domain socket, one on its TCP port: the
// same server, so the same seqs, deliveries and replay.
TEST(RedisBus, AnInstanceOnTheUnixSocketSharesSeqsWithOneOnTcp) {
  const std::string socket = reai::testing::PrivateRedis::shared().unix_socket();
  if (socket.empty()) GTEST_SKIP() << "the test Redis has no Unix socket (its directory's path is too long)";
  RedisEndpoint over_tcp = endpoint_on(test_redis_port());
  auto endpoint = redis::parse_url("unix://" + socket + "?prefix=" + over_tcp.prefix.substr(0, over_tcp.prefix.size() - 1));
  ASSERT_TRUE(endpoint.has_value()) << endpoint.status().to_string();
  ASSERT_EQ(endpoint->prefix, over_tcp.prefix);
  auto a = make_redis_bus(*endpoint);
  auto b = make_redis_bus(over_tcp);
  ASSERT_TRUE(a->health().is_ok()) << a->health().to_string();
  Seen on_b;
  b->subscribe(on_b.handler());
  for (int i = 0; i < 20; ++i) ASSERT_EQ(a->publish("t_u", "score_update", text("u")).value(), std::uint64_t(i + 1));
  std::vector<std::uint64_t> all;
  for (std::uint64_t s = 1; s <= 20; ++s) all.push_back(s);
  EXPECT_TRUE(eventually([&] { return on_b.seqs("t_u").size() == all.size(); }));
  EXPECT_EQ(on_b.seqs("t_u"), all);
  EXPECT_EQ(b->publish("t_u", "score_update", text("t")).value(), 21u);
  auto replay = a->since("t_u", 18).value();
  ASSERT_EQ(replay.messages.size(), 3u);
  EXPECT_EQ(replay.messages.back().seq, 21u);
}

TEST(RedisBus, UnreachableRedisStillDeliversLocallyAndSaysSo) {
  // Nothing listens on port 1 of loopback: connections are refused at once.
  auto bus = make_redis_bus(endpoint_on(1), 8);
  Seen seen;
  bus->subscribe(seen.handler());
  EXPECT_EQ(bus->health().code(), StatusCode::kUnavailable);
  EXPECT_NE(bus->health().message().find("redis"), std::string::npos);
  EXPECT_EQ(bus->publish("t_a", "u", text("1")).value(), 1u);
  EXPECT_EQ(bus->publish("t_a", "u", text("2")).value(), 2u);
  EXPECT_EQ(seen.seqs("t_a"), (std::vector<std::uint64_t>{1, 2}));
  EXPECT_EQ(bus->last_seq("t_a"), 2u);
  auto replay = bus->since("t_a", 1).value();
  EXPECT_TRUE(replay.complete);
  ASSERT_EQ(replay.messages.size(), 1u);
  EXPECT_EQ(*replay.messages[0].payload, "2");
  // Notices are held for Redis's return (at most the capacity), not
  // delivered meanwhile.
  std::atomic<int> notices{0};
  bus->subscribe_notices([&](const BusMessage&) { ++notices; });
  for (int i = 0; i < 8; ++i) EXPECT_TRUE(bus->notify("t_a", "live_outcome", text("n")).is_ok()) << i;
  EXPECT_EQ(bus->notify("t_a", "live_outcome", text("n")).code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(notices.load(), 0);

  ManualClock clock(100);
  auto cache = make_redis_cache(endpoint_on(1), clock);
  EXPECT_EQ(cache->health().code(), StatusCode::kUnavailable);
  cache->put("k", "v", 60);
  EXPECT_EQ(cache->get("k"), std::nullopt);
  EXPECT_EQ(cache->stats().misses, 1u);
}

TEST(RedisBus, KilledAndRestartedRedisDegradesThenResumesAcrossInstances) {
  // A Redis of this test's own (it is killed), on a free port of its own.
  auto server = reai::testing::PrivateRedis::own("redis-test-killed");
  ASSERT_TRUE(server.start()) << "redis-server did not start";
  RedisEndpoint shared = endpoint_on(server.port());
  auto a = make_redis_bus(shared);
  auto b = make_redis_bus(shared);
  ManualClock clock(100);
  auto cache = make_redis_cache(shared, clock);
  Seen on_a, on_b;
  a->subscribe(on_a.handler());
  b->subscribe(on_b.handler());
  ASSERT_EQ(a->publish("t_a", "score_update", text("before")).value(), 1u);
  ASSERT_TRUE(eventually([&] { return on_b.seqs("t_a").size() == 1; }));
  cache->put("k", "v", 60);
  EXPECT_EQ(cache->get("k"), "v");

  ASSERT_TRUE(server.kill());
  // The first publish after the kill finds out; it is still delivered here.
  auto during = a->publish("t_a", "score_update", text("during"));
  ASSERT_TRUE(during.has_value());
  EXPECT_EQ(a->health().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(eventually([&] { return !b->health().is_ok(); }));
  EXPECT_EQ(on_a.seqs("t_a").back(), *during);
  EXPECT_EQ(on_a.count("t_a", "score_update"), 2u);
  EXPECT_EQ(cache->get("k"), std::nullopt);
  EXPECT_EQ(cache->health().code(), StatusCode::kUnavailable);

  // A notice sent during the outage is held and reaches B once Redis is back.
  std::atomic<int> held_on_b{0};
  b->subscribe_notices([&](const BusMessage& m) { held_on_b += *m.payload == "held"; });
  ASSERT_TRUE(a->notify("t_a", "live_outcome", text("held")).is_ok());

  ASSERT_TRUE(server.start());
  EXPECT_TRUE(eventually([&] { return a->health().is_ok() && b->health().is_ok(); }));
  EXPECT_TRUE(eventually([&] { return held_on_b.load() == 1; }));
  // Clients of both instances are told to reload what they may have missed.
  EXPECT_TRUE(eventually([&] { return on_b.count("t_a", "resync") >= 1; }));
  auto after = a->publish("t_a", "score_update", text("after"));
  ASSERT_TRUE(after.has_value());
  EXPECT_GT(*after, *during);  // counters were raised past the local seqs
  EXPECT_TRUE(eventually([&] { return !on_b.seqs("t_a").empty() && on_b.seqs("t_a").back() == *after; }));
  EXPECT_TRUE(strictly_increasing(on_a.seqs("t_a")));
  EXPECT_TRUE(strictly_increasing(on_b.seqs("t_a")));
  // The cache reconnects on its own (after its backoff).
  EXPECT_TRUE(eventually([&] {
    cache->put("k2", "v2", 60);
    return cache->get("k2") == std::optional<std::string>("v2");
  }));
  EXPECT_TRUE(cache->health().is_ok());
}

std::vector<Outgoing> batch_of(const std::string& tenant, const std::string& other, const std::string& payload) {
  return {Outgoing{tenant, "score_update", text(payload)}, Outgoing{other, "score_update", text(payload)},
          Outgoing{tenant, "score_update", text(payload)}};
}

// A batch reaches the other instances as the same messages, and while Redis
// is down each of its messages goes out as publish() sends one: delivered
// here with local seqs; once Redis is back the seqs continue past them.
TEST(RedisBus, PublishEachDegradesAsPublishDoesAndResumesAfterRedisReturns) {
  auto server = reai::testing::PrivateRedis::own("redis-test-batch");
  ASSERT_TRUE(server.start()) << "redis-server did not start";
  RedisEndpoint shared = endpoint_on(server.port());
  auto a = make_redis_bus(shared);
  auto b = make_redis_bus(shared);
  Seen on_a, on_b;
  a->subscribe(on_a.handler());
  b->subscribe(on_b.handler());
  EXPECT_EQ(a->publish_each(batch_of("t_a", "t_b", "before")).value(), (std::vector<std::uint64_t>{1, 1, 2}));
  EXPECT_EQ(on_a.seqs("t_a"), (std::vector<std::uint64_t>{1, 2}));  // own delivery before the return
  EXPECT_TRUE(eventually([&] { return on_b.seqs("t_a").size() == 2 && on_b.seqs("t_b").size() == 1; }));
  EXPECT_EQ(b->since("t_a", 0)->messages.size(), 2u);

  ASSERT_TRUE(server.kill());
  auto during = a->publish_each(batch_of("t_a", "t_b", "during"));
  ASSERT_TRUE(during.has_value()) << during.status().to_string();
  EXPECT_EQ(*during, (std::vector<std::uint64_t>{3, 2, 4}));  // local seqs after what was delivered here
  EXPECT_EQ(a->health().code(), StatusCode::kUnavailable);
  EXPECT_EQ(on_a.seqs("t_a"), (std::vector<std::uint64_t>{1, 2, 3, 4}));
  EXPECT_EQ(on_a.seqs("t_b"), (std::vector<std::uint64_t>{1, 2}));
  auto local = a->since("t_a", 2).value();
  EXPECT_TRUE(local.complete);
  EXPECT_EQ(local.messages.size(), 2u);

  ASSERT_TRUE(server.start());
  EXPECT_TRUE(eventually([&] { return a->health().is_ok() && b->health().is_ok(); }));
  auto after = a->publish_each(batch_of("t_a", "t_b", "after"));
  ASSERT_TRUE(after.has_value());
  ASSERT_EQ(after->size(), 3u);
  EXPECT_GT((*after)[0], 4u);  // counters were raised past the local seqs
  EXPECT_EQ((*after)[2], (*after)[0] + 1);
  EXPECT_GT((*after)[1], 2u);
  // B's own resync may follow the batch: look for the batch's last message.
  EXPECT_TRUE(eventually([&] {
    auto seen = on_b.seqs("t_a");
    return std::find(seen.begin(), seen.end(), (*after)[2]) != seen.end();
  }));
  EXPECT_TRUE(strictly_increasing(on_a.seqs("t_a")));
  EXPECT_TRUE(strictly_increasing(on_b.seqs("t_a")));
  EXPECT_TRUE(strictly_increasing(on_b.seqs("t_b")));
  auto replay = b->since("t_a", (*after)[0] - 1).value();
  EXPECT_TRUE(replay.complete);
  ASSERT_GE(replay.messages.size(), 2u);
  EXPECT_EQ(replay.messages[0].seq, (*after)[0]);
  EXPECT_EQ(*replay.messages[1].payload, "after");
}

// How many times Redis ran `command` since its stats were reset (0 when never).
long long command_calls(redis::Connection& connection, const std::string& command) {
  auto info = connection.command({"INFO", "commandstats"});
  if (!info) return -1;
  const std::string text = redis::reply_string(info->get());
  const std::string field = "cmdstat_" + command + ":calls=";
  const auto at = text.find(field);
  return at == std::string::npos ? 0 : std::atoll(text.c_str() + at + field.size());
}

// The batch worker's warm scores: a batch's entries cost one round trip (a
// private server, so no other test's commands are counted), and another
// instance reads each as put() would have left it.
TEST(RedisCache, PutEachIsOneRoundTripAndSharedWithOtherInstances) {
  auto server = reai::testing::PrivateRedis::own("redis-test-cache-put-each");
  ASSERT_TRUE(server.start()) << "redis-server did not start";
  ManualClock clock(1'700'000'000);
  const RedisEndpoint shared = endpoint_on(server.port());
  auto a = make_redis_cache(shared, clock);
  auto b = make_redis_cache(shared, clock);
  a->put("warm", "once", 60);  // the scripts' first runs (NOSCRIPT, then the text) are not counted
  a->put_each(std::vector<CachePut>{{"warm", "twice", 60}});
  redis::Connection stats;
  ASSERT_TRUE(stats.connect(shared, std::chrono::milliseconds(500)).is_ok());
  ASSERT_TRUE(stats.command({"CONFIG", "RESETSTAT"}).has_value());

  std::vector<CachePut> batch;
  for (int i = 0; i < 50; ++i) batch.push_back({"lead-" + std::to_string(i), "score-" + std::to_string(i), 60 + i});
  a->put_each(batch);
  EXPECT_EQ(command_calls(stats, "evalsha"), 1);
  EXPECT_EQ(command_calls(stats, "eval"), 0);
  EXPECT_EQ(command_calls(stats, "set"), 50);  // inside the one script

  EXPECT_EQ(b->get("lead-0"), "score-0");
  EXPECT_EQ(b->get("lead-49"), "score-49");
  EXPECT_EQ(b->stats().entries, 51u);  // and "warm"
  clock.advance(60);
  EXPECT_EQ(b->get("lead-0"), std::nullopt);  // each entry's own TTL
  EXPECT_EQ(b->get("lead-1"), "score-1");

  ASSERT_TRUE(server.kill());  // unreachable: nothing stored, nothing thrown
  a->put_each(batch);
  EXPECT_EQ(a->get("lead-1"), std::nullopt);
}

TEST(RedisCache, HealthAsksRedisItselfWithoutAnyLookup) {
  // Leads keep their warm scores in memory, so a cache can sit idle through
  // a whole outage: /readyz must still see it go and come back.
  auto server = reai::testing::PrivateRedis::own("redis-test-cache-health");
  ASSERT_TRUE(server.start()) << "redis-server did not start";
  ManualClock clock(100);
  auto cache = make_redis_cache(endpoint_on(server.port()), clock);
  ASSERT_TRUE(cache->health().is_ok()) << cache->health().message();

  ASSERT_TRUE(server.kill());
  const Status down = cache->health();
  EXPECT_EQ(down.code(), StatusCode::kUnavailable);
  EXPECT_NE(down.message().find("redis cache down"), std::string::npos) << down.message();
  EXPECT_EQ(cache->stats().hits + cache->stats().misses, 0u);  // no lookup was made

  ASSERT_TRUE(server.start());
  EXPECT_TRUE(eventually([&] { return cache->health().is_ok(); }));
  EXPECT_EQ(cache->stats().hits + cache->stats().misses, 0u);
}

}  // namespace
}  // namespace reai::bus
