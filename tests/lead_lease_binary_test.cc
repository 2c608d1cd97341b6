// Black-box: two `reai serve` instances on one PostgreSQL and one Redis get
// interleaved events of the same leads concurrently (each lead's events go
// to both), then every lead's score on both equals what a single instance
// started afterwards on the same store (its start-up replay) computes.
// Clocks are pinned so "now" is the same instant everywhere.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <atomic>
#include <barrier>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/time.h"
#include "support/private_postgres.h"
#include "support/private_redis.h"
#include "support/process.h"
#include "support/test_client.h"
#include "support/token.h"

namespace reai::testing {
namespace {

namespace json = boost::json;

const std::string kSecret = kTestJwtSecret;
const std::string kClock = "2025-06-20T00:00:00Z";  // inside the fixture model's track-record window
// Tokens are issued at the pinned clock: a server refuses one issued after its now.
const UnixSeconds kIssuedAt = parse_iso8601(kClock).value();


std::string postgres_url() {
  if (const char* url = std::getenv("REAI_TEST_POSTGRES_URL"); url && *url) return url;
  std::ifstream in(test_build_dir() + "/pg-test/url");
  std::string url;
  std::getline(in, url);
  return url;
}

struct Instance {
  std::uint16_t port = 0;
  std::unique_ptr<ReaiProcess> process;
};

Instance start_instance(const std::vector<std::string>& extra, const std::string& clock = kClock) {
  Instance i;
  i.port = free_port();
  std::vector<std::string> args = {"serve", "--port", std::to_string(i.port), "--store", postgres_url(),
                                   "--model-dir", test_build_dir() + "/test-models", "--jwt-secret", kSecret,
                                   "--clock", clock};
  args.insert(args.end(), extra.begin(), extra.end());
  i.process = std::make_unique<ReaiProcess>(args);
  return i;
}

json::object parse(const std::string& text) { return json::parse(text).as_object(); }

struct Score {
  double probability = -1;
  std::int64_t events_count = -1;
  std::string model;
};

Score score_of(HttpClient& http, const std::string& lead, const std::string& token) {
  auto r = http.get("/api/contacts/" + lead + "/score", token);
  EXPECT_EQ(r.status, 200) << r.body;
  if (r.status != 200) return {};
  auto o = parse(r.body);
  return {o.at("probability").to_number<double>(), o.at("events_count").as_int64(),
          std::string(o.at("model").as_string())};
}

TEST(LeadLease, TwoInstancesGettingOneLeadsEventsConcurrentlyScoreAsOneInstance) {
  ASSERT_FALSE(postgres_url().empty()) << "no PostgreSQL test server (fixture postgres)";
  const std::string tenant = "t_lease_" + std::to_string(::getpid());
  const std::string redis = PrivateRedis::shared().url("lease-" + std::to_string(::getpid()) + ":");
  Instance a = start_instance({"--bus", redis, "--cache", redis});
  Instance b = start_instance({"--bus", redis, "--cache", redis});
  ASSERT_TRUE(a.process->wait_for_port(a.port)) << a.process->log();
  ASSERT_TRUE(b.process->wait_for_port(b.port)) << b.process->log();
  const std::string t = reai_token(tenant, server::Role::kAgent, kSecret, kIssuedAt);

  constexpr int kLeads = 6;
  constexpr int kEventsPerClient = 150;
  std::vector<std::string> leads;
  {
    HttpClient http("127.0.0.1", a.port);
    for (int l = 0; l < kLeads; ++l) {
      leads.push_back("lead-" + std::to_string(l));
      const std::string body = R"({"created_at":"2025-06-01T00:00:00Z","source":"zillow","budget":450000,)"
                               R"("has_phone":true,"assigned_agent_id":"ag-)" + std::to_string(l % 2) + R"("})";
      auto r = http.put("/api/contacts/" + leads.back(), body, t);
      ASSERT_EQ(r.status, 200) << r.body;
    }
  }
  // Two clients, one per instance, each posting events of every lead: times
  // advance but jump back now and then (late events) and repeat (equal
  // instants), so the fold order matters (replies follow outreach).
  const char* types[] = {"sms_out", "sms_in", "property_view", "call_out", "call_in", "page_view", "email_open"};
  std::atomic<int> failures{0};
  auto client = [&](std::uint16_t port, int who) {
    HttpClient http("127.0.0.1", port);
    std::mt19937 rng(17 + who);
    for (int n = 0; n < kEventsPerClient; ++n) {
      const std::string& lead = leads[rng() % kLeads];
      const int minute = 120 + n * 10 + static_cast<int>(rng() % 3) * 5 - static_cast<int>(rng() % 4 == 0) * 90;
      const std::time_t at = 1748822400 + minute * 60;  // 2025-06-02T00:00:00Z + minute
      std::tm utc{};
      gmtime_r(&at, &utc);
      char ts[32];
      std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &utc);
      std::string body = R"({"contact_id":")" + lead + R"(","type":")" + types[rng() % 7] + R"(","ts":")" + ts +
                         R"(","event_id":"ev-)" + std::to_string(who) + "-" + std::to_string(n) + R"("})";
      auto r = http.post("/api/events", body, t);
      if (r.status != 200) {
        failures.fetch_add(1);
        ADD_FAILURE() << r.status << " " << r.body;
      }
    }
  };
  std::thread on_a(client, a.port, 0);
  std::thread on_b(client, b.port, 1);
  on_a.join();
  on_b.join();
  ASSERT_EQ(failures.load(), 0);

  std::vector<Score> cluster;
  HttpClient http_a("127.0.0.1", a.port);
  HttpClient http_b("127.0.0.1", b.port);
  // Top leads (before any read rescored a lead here): the same list on both
  // instances, although each scored only some of each lead's events. The
  // bus delivers the last updates asynchronously: wait for them.
  std::string top_a;
  std::string top_b;
  const auto agreed_by = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  do {
    top_a = http_a.get("/api/leads?limit=1000", t).body;
    top_b = http_b.get("/api/leads?limit=1000", t).body;
  } while (top_a != top_b && std::chrono::steady_clock::now() < agreed_by);
  EXPECT_EQ(top_a, top_b) << "GET /api/leads differs between the instances";
  // The distribution too is counted from the cluster's published scores.
  const std::string distribution_a = http_a.get("/api/leads/distribution", t).body;
  EXPECT_EQ(distribution_a, http_b.get("/api/leads/distribution", t).body)
      << "GET /api/leads/distribution differs between the instances";
  const auto top = parse(top_a).at("leads").as_array();
  EXPECT_EQ(top.size(), leads.size()) << top_a;
  for (std::size_t k = 1; k < top.size(); ++k) {
    EXPECT_GE(top[k - 1].at("probability").to_number<double>(), top[k].at("probability").to_number<double>());
  }
  for (const auto& lead : leads) {
    const Score sa = score_of(http_a, lead, t);
    const Score sb = score_of(http_b, lead, t);
    EXPECT_EQ(sa.probability, sb.probability) << lead;
    EXPECT_EQ(sa.events_count, sb.events_count) << lead;
    EXPECT_NE(sa.model, "fallback") << "the fixture model should score";
    cluster.push_back(sa);
  }
  // The shared snapshots were used: hits on both, and the figures are shown.
  std::int64_t adopted = 0;
  for (HttpClient* http : {&http_a, &http_b}) {
    const std::string metrics = http->get("/metrics").body;
    EXPECT_NE(metrics.find("reai_lead_state_shared 1"), std::string::npos);
    EXPECT_NE(metrics.find("reai_lead_leases_up 1"), std::string::npos);
    EXPECT_NE(metrics.find("reai_cache_hits_total{kind=\"feature_snapshot\"}"), std::string::npos);
    EXPECT_NE(metrics.find("reai_cache_hit_ratio{kind=\"feature_snapshot\"}"), std::string::npos);
    EXPECT_NE(metrics.find("reai_lead_lease_failures_total 0"), std::string::npos) << metrics;
    auto perf = http->get("/api/realtime/performance", t);
    ASSERT_EQ(perf.status, 200) << perf.body;
    const auto lead_state = parse(perf.body).at("lead_state").as_object();
    EXPECT_TRUE(lead_state.at("shared").as_bool());
    EXPECT_FALSE(lead_state.at("degraded").as_bool());
    const auto snapshots = parse(perf.body).at("cache").at("feature_snapshots").as_object();
    EXPECT_TRUE(snapshots.at("shared").as_bool());
    EXPECT_GT(snapshots.at("hits").as_int64(), 0) << perf.body;
    const double rate = snapshots.at("hit_rate").to_number<double>();
    EXPECT_DOUBLE_EQ(rate, double(snapshots.at("hits").as_int64()) /
                               double(snapshots.at("hits").as_int64() + snapshots.at("misses").as_int64()));
    EXPECT_GT(lead_state.at("leases").as_int64(), 0) << perf.body;
    adopted += snapshots.at("from_other_instances").as_int64();
    std::cout << "lead_state: " << json::serialize(lead_state) << "\ncache: " << json::serialize(snapshots) << "\n";
    auto ready = http->get("/readyz");
    EXPECT_EQ(parse(ready.body).at("leases").at("status").as_string(), "ok") << ready.body;
  }
  EXPECT_GT(adopted, 0) << "the instances never took turns on a lead";
  EXPECT_EQ(a.process->stop(SIGTERM), 0) << a.process->log();
  EXPECT_EQ(b.process->stop(SIGTERM), 0) << b.process->log();

  // One instance, alone on the store (no Redis): its start-up replay.
  Instance one = start_instance({});
  ASSERT_TRUE(one.process->wait_for_port(one.port)) << one.process->log();
  HttpClient http("127.0.0.1", one.port);
  std::int64_t total = 0;
  for (std::size_t l = 0; l < leads.size(); ++l) {
    const Score s = score_of(http, leads[l], t);
    EXPECT_EQ(s.probability, cluster[l].probability) << leads[l];
    EXPECT_EQ(s.events_count, cluster[l].events_count) << leads[l];
    total += s.events_count;
  }
  EXPECT_EQ(total, 2 * kEventsPerClient);
  // The cluster's list holds each lead's newest published score: the score
  // and band one instance computes (a probability drift below a point is
  // not published).
  const auto fresh_top = parse(http.get("/api/leads?limit=1000", t).body).at("leads").as_array();
  ASSERT_EQ(fresh_top.size(), top.size());
  std::map<std::string, std::pair<std::int64_t, std::string>> fresh_by_lead;
  for (const auto& l : fresh_top) {
    fresh_by_lead[std::string(l.at("lead_id").as_string())] = {l.at("score").as_int64(),
                                                              std::string(l.at("band").as_string())};
  }
  for (const auto& l : top) {
    const auto& want = fresh_by_lead[std::string(l.at("lead_id").as_string())];
    EXPECT_EQ(l.at("score").as_int64(), want.first) << json::serialize(l);
    EXPECT_EQ(l.at("band").as_string(), want.second) << json::serialize(l);
  }
  EXPECT_EQ(http.get("/api/leads/distribution", t).body, distribution_a)
      << "the cluster's distribution is not what one instance counts";
  EXPECT_EQ(one.process->stop(SIGTERM), 0) << one.process->log();
}

// A lead only instance A ever scored: B's engine has never seen it, yet B
// counts it in its distribution (from the published scores), as A does.
TEST(LeadLease, BothInstancesCountTheDistributionFromTheClustersScores) {
  ASSERT_FALSE(postgres_url().empty()) << "no PostgreSQL test server (fixture postgres)";
  const std::string tenant = "t_dist_" + std::to_string(::getpid());
  const std::string redis = PrivateRedis::shared().url("dist-" + std::to_string(::getpid()) + ":");
  Instance a = start_instance({"--bus", redis, "--cache", redis});
  Instance b = start_instance({"--bus", redis, "--cache", redis});
  ASSERT_TRUE(a.process->wait_for_port(a.port)) << a.process->log();
  ASSERT_TRUE(b.process->wait_for_port(b.port)) << b.process->log();
  const std::string t = reai_token(tenant, server::Role::kAgent, kSecret, kIssuedAt);
  HttpClient http_a("127.0.0.1", a.port);
  HttpClient http_b("127.0.0.1", b.port);
  auto r = http_a.put("/api/contacts/only-on-a",
                      R"({"created_at":"2025-06-01T00:00:00Z","source":"zillow","budget":450000,"has_phone":true})", t);
  ASSERT_EQ(r.status, 200) << r.body;
  r = http_a.post("/api/events", R"({"contact_id":"only-on-a","type":"sms_in","ts":"2025-06-02T00:00:00Z"})", t);
  ASSERT_EQ(r.status, 200) << r.body;
  // B hears of the lead's score through the bus.
  const auto heard_by = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (parse(http_b.get("/api/leads", t).body).at("leads").as_array().empty() &&
         std::chrono::steady_clock::now() < heard_by) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const std::string on_a = http_a.get("/api/leads/distribution", t).body;
  const std::string on_b = http_b.get("/api/leads/distribution", t).body;
  EXPECT_EQ(parse(on_b).at("leads").as_int64(), 1) << on_b;
  EXPECT_EQ(on_a, on_b);
  const auto sources = parse(on_b).at("sources").as_array();
  ASSERT_EQ(sources.size(), 1u) << on_b;
  EXPECT_EQ(sources[0].at("source").as_string(), "zillow");
  EXPECT_EQ(a.process->stop(SIGTERM), 0) << a.process->log();
  EXPECT_EQ(b.process->stop(SIGTERM), 0) << b.process->log();
}

// An agent's record as the lead scorer of one instance reads it.
struct AgentRecord {
  double speed_count = -1;
  double speed_log_sum = -1;
  std::string typical_speed;  // the agent_typical_speed_min feature, "null" when missing
  std::string body;
};

AgentRecord agent_record(HttpClient& http, const std::string& agent, const std::string& token) {
  auto r = http.get("/api/agents/" + agent + "/track-record", token);
  EXPECT_EQ(r.status, 200) << r.body;
  if (r.status != 200) return {};
  auto o = parse(r.body);
  return {o.at("speed_count").to_number<double>(), o.at("speed_log_sum").to_number<double>(),
          json::serialize(o.at("features").at("agent_typical_speed_min")), r.body};
}

json::object track_records_of(HttpClient& http, const std::string& token) {
  auto r = http.get("/api/realtime/performance", token);
  EXPECT_EQ(r.status, 200) << r.body;
  return parse(r.body).at("track_records").as_object();
}

// Live track records across instances. Leads of a new agent, created after
// the fixture model's snapshot, get their first outreach on instance A only:
// A counts each speed-to-lead into the agent's record. B never folds those
// leads, yet must read the same record (hence the same agent feature and
// the same score for the agent's lead it holds), through the bus's notices.
// A third instance started afterwards counts them from its own start-up
// replay, sends none of them again, and agrees too.
TEST(LeadLease, TwoInstancesShareLiveTrackRecordsSoAgentFeaturesAndScoresAgree) {
  ASSERT_FALSE(postgres_url().empty()) << "no PostgreSQL test server (fixture postgres)";
  const std::string tenant = "t_track_" + std::to_string(::getpid());
  const std::string agent = "ag-live-" + std::to_string(::getpid());
  const std::string redis = PrivateRedis::shared().url("track-" + std::to_string(::getpid()) + ":");
  const std::string clock = "2026-03-01T00:00:00Z";  // after the fixture model's export end (2026-01-01)
  Instance a = start_instance({"--bus", redis, "--cache", redis}, clock);
  Instance b = start_instance({"--bus", redis, "--cache", redis}, clock);
  ASSERT_TRUE(a.process->wait_for_port(a.port)) << a.process->log();
  ASSERT_TRUE(b.process->wait_for_port(b.port)) << b.process->log();
  const std::string t = reai_token(tenant, server::Role::kAgent, kSecret, kIssuedAt);
  HttpClient http_a("127.0.0.1", a.port);
  HttpClient http_b("127.0.0.1", b.port);
  const std::string contact = R"({"source":"zillow","budget":450000,"has_phone":true,"assigned_agent_id":")" + agent + "\",";
  // The agent's lead B holds (created after the others, read on B first).
  auto r = http_b.put("/api/contacts/probe", contact + R"("created_at":"2026-02-20T00:00:00Z"})", t);
  ASSERT_EQ(r.status, 200) << r.body;
  const AgentRecord b_before = agent_record(http_b, agent, t);
  EXPECT_EQ(b_before.speed_count, 0);
  EXPECT_EQ(b_before.typical_speed, "null");
  constexpr int kLeads = 4;
  for (int k = 0; k < kLeads; ++k) {
    const std::string lead = "reached-" + std::to_string(k);
    const std::string day = "2026-02-0" + std::to_string(k + 1);
    r = http_a.put("/api/contacts/" + lead, contact + R"("created_at":")" + day + R"(T00:00:00Z"})", t);
    ASSERT_EQ(r.status, 200) << r.body;
    // First outreach 5, 10, 15, 20 minutes after creation.
    char ts[32];
    std::snprintf(ts, sizeof ts, "%sT00:%02d:00Z", day.c_str(), 5 * (k + 1));
    r = http_a.post("/api/events", R"({"contact_id":")" + lead + R"(","type":"sms_out","ts":")" + ts +
                                       R"(","event_id":"out-)" + std::to_string(k) + R"("})",
                    t);
    ASSERT_EQ(r.status, 200) << r.body;
  }
  const AgentRecord on_a = agent_record(http_a, agent, t);
  EXPECT_EQ(on_a.speed_count, kLeads) << on_a.body;
  EXPECT_NE(on_a.typical_speed, "null") << on_a.body;
  // B hears of them through the bus (asynchronously: wait for it).
  AgentRecord on_b = agent_record(http_b, agent, t);
  const auto heard_by = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (on_b.speed_count != kLeads && std::chrono::steady_clock::now() < heard_by) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    on_b = agent_record(http_b, agent, t);
  }
  std::cout << "agent record on A: " << on_a.body << "\nagent record on B before A's leads: " << b_before.body
            << "\nagent record on B after: " << on_b.body << "\n";
  EXPECT_EQ(on_b.speed_count, on_a.speed_count) << on_b.body;
  EXPECT_DOUBLE_EQ(on_b.speed_log_sum, on_a.speed_log_sum);
  EXPECT_EQ(on_b.typical_speed, on_a.typical_speed) << "the agent feature differs between the instances";
  // The agent's other lead scores alike on both (A folds it from the shared state).
  const Score probe_b = score_of(http_b, "probe", t);
  const Score probe_a = score_of(http_a, "probe", t);
  std::cout << "probe lead: p=" << probe_a.probability << " on A, " << probe_b.probability << " on B\n";
  EXPECT_EQ(probe_a.probability, probe_b.probability) << "the score of the agent's lead differs";
  const json::object a_counts = track_records_of(http_a, t);
  const json::object b_counts = track_records_of(http_b, t);
  std::cout << "track_records A: " << json::serialize(a_counts) << "\ntrack_records B: " << json::serialize(b_counts)
            << "\n";
  EXPECT_EQ(a_counts.at("published").as_int64(), kLeads);
  EXPECT_EQ(a_counts.at("repeats").as_int64(), kLeads);  // its own echoes
  EXPECT_EQ(b_counts.at("received").as_int64(), kLeads);
  EXPECT_EQ(b_counts.at("published").as_int64(), 0);

  // A third instance on the same store and bus counts them from its replay
  // and sends none of them (A and B receive nothing more).
  Instance c = start_instance({"--bus", redis, "--cache", redis}, clock);
  ASSERT_TRUE(c.process->wait_for_port(c.port)) << c.process->log();
  HttpClient http_c("127.0.0.1", c.port);
  const AgentRecord on_c = agent_record(http_c, agent, t);
  EXPECT_EQ(on_c.speed_count, on_a.speed_count) << on_c.body;
  EXPECT_EQ(on_c.typical_speed, on_a.typical_speed);
  EXPECT_EQ(score_of(http_c, "probe", t).probability, probe_a.probability);
  const json::object c_counts = track_records_of(http_c, t);
  EXPECT_EQ(c_counts.at("published").as_int64(), 0) << json::serialize(c_counts);
  // (The test store holds other tests' leads too: C counts what A counts.)
  EXPECT_EQ(c_counts.at("live_outcomes").as_int64(), track_records_of(http_a, t).at("live_outcomes").as_int64());
  EXPECT_EQ(track_records_of(http_a, t).at("repeats").as_int64(), kLeads);
  EXPECT_EQ(track_records_of(http_b, t).at("received").as_int64(), kLeads);
  for (Instance* i : {&a, &b, &c}) EXPECT_EQ(i->process->stop(SIGTERM), 0) << i->process->log();
}

std::string iso8601(std::time_t at) {
  std::tm utc{};
  gmtime_r(&at, &utc);
  char ts[32];
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return ts;
}

std::string created_at_of(HttpClient& http, const std::string& lead, const std::string& token) {
  auto r = http.get("/api/contacts/" + lead, token);
  EXPECT_EQ(r.status, 200) << r.body;
  if (r.status != 200) return {};
  return std::string(parse(r.body).at("created_at").as_string());
}

// Events before their contact, on two instances at once, with different
// times: each instance would create the contact at its own event's time.
// The first row stored wins (inserted only when absent), both instances fold
// the lead from it, and so does a single instance replaying the store.
TEST(LeadLease, TwoInstancesCreatingOneUnknownContactAtOnceKeepTheFirstStoredRow) {
  ASSERT_FALSE(postgres_url().empty()) << "no PostgreSQL test server (fixture postgres)";
  const std::string tenant = "t_lease_new_" + std::to_string(::getpid());
  const std::string redis = PrivateRedis::shared().url("lease-new-" + std::to_string(::getpid()));
  Instance a = start_instance({"--bus", redis, "--cache", redis});
  Instance b = start_instance({"--bus", redis, "--cache", redis});
  ASSERT_TRUE(a.process->wait_for_port(a.port)) << a.process->log();
  ASSERT_TRUE(b.process->wait_for_port(b.port)) << b.process->log();
  const std::string t = reai_token(tenant, server::Role::kAgent, kSecret, kIssuedAt);

  constexpr int kLeads = 16;
  constexpr std::time_t kStart = 1748822400;  // 2025-06-02T00:00:00Z, before the pinned clock
  auto lead_of = [](int k) { return std::string("new-").append(std::to_string(k)); };
  // Instance A's event of lead k is 10 minutes after instance B's.
  auto at = [&](int k, int who) { return kStart + k * 3600 + (who == 0 ? 600 : 0); };
  std::barrier both(2);
  auto client = [&](std::uint16_t port, int who) {
    HttpClient http("127.0.0.1", port);
    for (int k = 0; k < kLeads; ++k) {
      both.arrive_and_wait();  // the two events of a lead leave together
      const std::string body = R"({"contact_id":")" + lead_of(k) + R"(","type":")" + (who == 0 ? "sms_out" : "page_view") +
                               R"(","ts":")" + iso8601(at(k, who)) + R"(","event_id":"new-)" + std::to_string(who) +
                               "-" + std::to_string(k) + R"("})";
      auto r = http.post("/api/events", body, t);
      EXPECT_EQ(r.status, 200) << r.body;
    }
  };
  std::thread on_a(client, a.port, 0);
  std::thread on_b(client, b.port, 1);
  on_a.join();
  on_b.join();

  HttpClient http_a("127.0.0.1", a.port);
  HttpClient http_b("127.0.0.1", b.port);
  std::vector<std::string> created(kLeads);
  std::vector<Score> cluster(kLeads);
  int a_first = 0;
  for (int k = 0; k < kLeads; ++k) {
    created[k] = created_at_of(http_a, lead_of(k), t);
    EXPECT_EQ(created_at_of(http_b, lead_of(k), t), created[k]) << lead_of(k);
    EXPECT_TRUE(created[k] == iso8601(at(k, 0)) || created[k] == iso8601(at(k, 1)))
        << lead_of(k) << " created at " << created[k] << ", the time of neither event";
    a_first += created[k] == iso8601(at(k, 0)) ? 1 : 0;
    const Score sa = score_of(http_a, lead_of(k), t);
    const Score sb = score_of(http_b, lead_of(k), t);
    EXPECT_EQ(sa.probability, sb.probability) << lead_of(k);
    EXPECT_EQ(sa.events_count, 2) << lead_of(k);
    EXPECT_EQ(sb.events_count, 2) << lead_of(k);
    cluster[k] = sa;
  }
  std::cout << "contacts created from instance A's event: " << a_first << " of " << kLeads << "\n";
  EXPECT_EQ(a.process->stop(SIGTERM), 0) << a.process->log();
  EXPECT_EQ(b.process->stop(SIGTERM), 0) << b.process->log();

  Instance one = start_instance({});
  ASSERT_TRUE(one.process->wait_for_port(one.port)) << one.process->log();
  HttpClient http("127.0.0.1", one.port);
  for (int k = 0; k < kLeads; ++k) {
    EXPECT_EQ(created_at_of(http, lead_of(k), t), created[k]) << lead_of(k);
    const Score s = score_of(http, lead_of(k), t);
    EXPECT_EQ(s.probability, cluster[k].probability) << lead_of(k);
    EXPECT_EQ(s.events_count, cluster[k].events_count) << lead_of(k);
  }
  EXPECT_EQ(one.process->stop(SIGTERM), 0) << one.process->log();
}

// Under shared leases, an event whose id is stored for another lead is
// refused (409) after its lead was marked; the mark goes with the refusal,
// so the lead's next event is served by its snapshot, not refolded from the
// store. Counters, not time.
TEST(LeadLease, AnEventRefusedAsAnotherLeadsLeavesNoMarkThatRefoldsTheLead) {
  ASSERT_FALSE(postgres_url().empty()) << "no PostgreSQL test server (fixture postgres)";
  const std::string tenant = "t_lease_409_" + std::to_string(::getpid());
  const std::string redis = PrivateRedis::shared().url("lease-409-" + std::to_string(::getpid()));
  Instance a = start_instance({"--bus", redis, "--cache", redis});
  ASSERT_TRUE(a.process->wait_for_port(a.port)) << a.process->log();
  const std::string t = reai_token(tenant, server::Role::kAgent, kSecret, kIssuedAt);
  HttpClient http("127.0.0.1", a.port);
  auto post = [&](const std::string& lead, const std::string& id, const std::string& ts) {
    return http.post("/api/events",
                     R"({"contact_id":")" + lead + R"(","type":"page_view","ts":")" + ts + R"(","event_id":")" + id + R"("})",
                     t);
  };
  auto lead_state = [&] {
    auto perf = http.get("/api/realtime/performance", t);
    EXPECT_EQ(perf.status, 200) << perf.body;
    return parse(perf.body).at("lead_state").as_object();
  };
  ASSERT_EQ(post("other", "dup-1", "2025-06-02T00:00:00Z").status, 200);
  ASSERT_EQ(post("l1", "l1-1", "2025-06-02T01:00:00Z").status, 200);
  EXPECT_EQ(post("l1", "dup-1", "2025-06-02T02:00:00Z").status, 409);
  const auto before = lead_state();
  EXPECT_EQ(before.at("refused_marks").as_int64(), 1) << json::serialize(before);
  ASSERT_EQ(post("l1", "l1-2", "2025-06-02T03:00:00Z").status, 200);
  const auto after = lead_state();
  EXPECT_EQ(after.at("store_rebuilds").as_int64(), before.at("store_rebuilds").as_int64()) << json::serialize(after);
  EXPECT_EQ(after.at("marked_refolds").as_int64(), before.at("marked_refolds").as_int64()) << json::serialize(after);
  EXPECT_EQ(score_of(http, "l1", t).events_count, 2);
  EXPECT_EQ(a.process->stop(SIGTERM), 0) << a.process->log();
}

// A lead whose lease another instance holds waits for it, but on a lead
// worker: the instance's only io thread keeps answering other requests (a
// health check, another lead's event) meanwhile. Ordering, not time: the
// other answers arrive while the held lead's request is still unanswered.
TEST(LeadLease, ALeaseHeldElsewhereDelaysOnlyItsLeadNotTheIoThread) {
  ASSERT_FALSE(postgres_url().empty()) << "no PostgreSQL test server (fixture postgres)";
  const std::string tenant = "t_lease_io_" + std::to_string(::getpid());
  const std::string prefix = "lease-io-" + std::to_string(::getpid());
  const std::string redis = PrivateRedis::shared().url(prefix);
  Instance a = start_instance({"--bus", redis, "--cache", redis, "--threads", "1"});
  ASSERT_TRUE(a.process->wait_for_port(a.port)) << a.process->log();
  const std::string t = reai_token(tenant, server::Role::kAgent, kSecret, kIssuedAt);
  // Other leads' events, 8 at once on their own connections: those on another
  // worker than the held lead's are answered while it waits (8 leads on 4
  // workers: some are). Counts the answers that came before the held lead's.
  std::atomic<bool> held_answered{false};
  auto post_other_leads = [&](const std::string& stem) {
    std::atomic<int> answered_first{0};
    std::vector<std::thread> others;
    for (int k = 0; k < 8; ++k) {
      others.emplace_back([&, k] {
        HttpClient h("127.0.0.1", a.port, std::chrono::milliseconds(10000));
        const std::string id = stem + std::to_string(k);
        auto r = h.post("/api/events", R"({"contact_id":")" + id + R"(","type":"sms_in","event_id":")" + id + R"("})", t);
        EXPECT_EQ(r.status, 200) << r.body;
        if (!held_answered.load()) answered_first.fetch_add(1);
      });
    }
    for (auto& o : others) o.join();
    return answered_first.load();
  };
  // The first concurrent events open the instance's PostgreSQL connections
  // (a backend fork each) and prepare statements; on a loaded CI start-up
  // that took most of the hold below, so it is paid here, outside the window
  // the ordering is checked in.
  post_other_leads("warm-");

  // Held as another instance would (src/bus/redis_leases.cc's key for
  // LeadSync's lead key), for less than the lease wait: taken afterwards.
  const std::string lease_key = prefix + ":l:lead:" + std::to_string(tenant.size()) + ":" + tenant + ":held";
  const std::string hold = "redis-cli -p " + std::to_string(shared_redis_port()) + " SET '" + lease_key +
                           "' elsewhere NX PX 2500 >/dev/null";
  ASSERT_EQ(std::system(hold.c_str()), 0);
  int held_status = 0;
  std::thread held([&] {
    HttpClient http("127.0.0.1", a.port, std::chrono::milliseconds(10000));
    held_status = http.post("/api/events", R"({"contact_id":"held","type":"sms_in","event_id":"held-1"})", t).status;
    held_answered = true;
  });
  // Give the held request time to reach the lease (it cannot finish before
  // the hold lapses).
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  HttpClient http("127.0.0.1", a.port, std::chrono::milliseconds(10000));
  EXPECT_EQ(http.get("/healthz").status, 200);
  EXPECT_FALSE(held_answered.load()) << "a health check waited for the held lead: did the hold lapse?";
  EXPECT_GT(post_other_leads("free-"), 0) << "every other lead waited for the held one";
  held.join();
  EXPECT_EQ(held_status, 200);
  EXPECT_EQ(score_of(http, "held", t).events_count, 1);
  EXPECT_EQ(a.process->stop(SIGTERM), 0) << a.process->log();
}

}  // namespace
}  // namespace reai::testing
