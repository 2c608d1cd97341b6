// Black-box: the scaled-out deployment of `make run-cluster`, built from the
// real parts. A private PostgreSQL (store) and Redis (bus + cache), two
// `reai serve` instances sharing them, and nginx balancing them
// (scripts/cluster-nginx-conf) over Unix-domain sockets, as run-cluster does
// (the instances answer on their TCP ports too, which the checks use). Each test owns its engines, so it may stop or
// kill them under load without disturbing other tests.
//
// What is asserted: correctness (nothing acknowledged is lost, no duplicate
// after retries with the same event_id, seqs contiguous across instances,
// and after a SIGKILL every lead's score, served or stored, is what one
// instance computes from the store).
// What is measured and printed, never asserted: recovery times.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
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
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

const std::string kSecret = kTestJwtSecret;
const std::string kTenant = "t_cluster";
constexpr int kLeads = 20;  // load events spread over these leads
// "now" on every instance, so scores computed at different moments (and by
// a fresh instance afterwards) are comparable. Events carry no ts: they are
// all at this instant and fold in the store's insertion order.
const std::string kClock = "2025-06-20T00:00:00Z";
// Tokens are issued at the pinned clock: a server refuses one issued after its now.
const UnixSeconds kIssuedAt = parse_iso8601(kClock).value();


bool shell(const std::string& line) { return std::system(line.c_str()) == 0; }

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Polls `done` every 20 ms until it holds or `limit` passes.
template <typename Pred>
bool eventually(Pred done, milliseconds limit = milliseconds(30000)) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(milliseconds(20));
  }
  return done();
}

json::object parse(const std::string& text) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec || !v.is_object()) return {};
  return v.as_object();
}

std::string status_of(const json::object& o, const char* component) {
  if (!o.contains(component)) return "";
  return std::string(o.at(component).at("status").as_string());
}

std::string event_body(const std::string& lead, const std::string& event_id) {
  return R"({"contact_id":")" + lead + R"(","type":"sms_in","event_id":")" + event_id + R"("})";
}

// An event at `at` (before kClock), so a lead's events arrive mostly in time
// order (the fast path) and now and then late (the refold).
std::string event_body_at(const std::string& lead, const std::string& event_id, std::time_t at) {
  std::tm utc{};
  gmtime_r(&at, &utc);
  char ts[32];
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &utc);
  return R"({"contact_id":")" + lead + R"(","type":"sms_in","ts":")" + ts + R"(","event_id":")" + event_id + R"("})";
}


// nginx in front of the instances, configured by scripts/cluster-nginx-conf
// and run unprivileged in its own prefix (daemonised; stopped with -s stop).
class Balancer {
 public:
  // `upstreams`: ports or unix:PATH (absolute).
  Balancer(const std::string& name, const std::vector<std::string>& upstreams)
      : dir_(test_build_dir() + "/" + name), port_(free_port()) {
    std::filesystem::remove_all(dir_);
    std::string line = "scripts/cluster-nginx-conf ";
    line.append(dir_).append(" ").append(std::to_string(port_));
    for (const auto& u : upstreams) line.append(" ").append(u);
    line.append(" >/dev/null");
    ok_ = shell(line) && shell(nginx(""));
  }
  ~Balancer() {
    if (ok_) (void)shell(nginx("-s stop") + " 2>/dev/null");
  }
  bool ok() const { return ok_; }
  std::uint16_t port() const { return port_; }
  std::string error_log() const {
    std::ifstream in(dir_ + "/error.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  // The build dir's path has no quotes or spaces (cmake's own binary dir).
  std::string nginx(const std::string& extra) const {
    std::string line = "nginx -p ";
    line.append(dir_).append(" -e ").append(dir_).append("/error.log -c ").append(dir_).append("/nginx.conf ");
    return line.append(extra);
  }
  std::string dir_;
  std::uint16_t port_;
  bool ok_ = false;
};

// Posts events through the balancer from its own threads, each event retried
// with the same event_id until acknowledged (2xx), as a well-behaved client
// does. Counts the answers that were not acknowledgements.
class Load {
 public:
  Load(std::uint16_t port, std::string token, int threads = 2, milliseconds pause = milliseconds(4))
      : port_(port), token_(std::move(token)), pause_(pause) {
    for (int t = 0; t < threads; ++t) threads_.emplace_back([this, t] { run(t); });
  }
  ~Load() { finish(); }

  // Stops taking new events; every event begun is retried until acknowledged.
  void finish() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  std::set<std::string> acknowledged() {
    std::lock_guard lock(mu_);
    return acked_;
  }
  std::size_t acked_count() {
    std::lock_guard lock(mu_);
    return acked_.size();
  }
  int refusals() const { return refusals_.load(); }  // non-2xx answers and connection failures
  int unfinished() const { return unfinished_.load(); }
  // The first acknowledgement at or after `t`, in seconds after `t`; -1 when none.
  double first_ack_after(Clock::time_point t) {
    std::lock_guard lock(mu_);
    for (auto at : ack_times_) {
      if (at >= t) return std::chrono::duration<double>(at - t).count();
    }
    return -1;
  }
  // The longest time without any acknowledgement between `from` and `to`.
  double longest_gap(Clock::time_point from, Clock::time_point to) {
    std::lock_guard lock(mu_);
    Clock::time_point previous = from;
    double longest = 0;
    for (auto at : ack_times_) {
      if (at < from || at > to) continue;
      longest = std::max(longest, std::chrono::duration<double>(at - previous).count());
      previous = at;
    }
    return std::max(longest, std::chrono::duration<double>(to - previous).count());
  }

 private:
  void run(int thread) {
    HttpClient http("127.0.0.1", port_, milliseconds(5000));
    for (int n = 0; !stop_; ++n) {
      const std::string id = "load-" + std::to_string(thread) + "-" + std::to_string(n);
      const std::string lead = "lead-" + std::to_string((n * 7 + thread) % kLeads);
      // Times come from one counter shared by the threads, so the two
      // threads' events of a lead interleave slightly out of order.
      const std::time_t at = kLoadStart + next_second_.fetch_add(1);
      if (!post_until_acknowledged(http, lead, id, at)) ++unfinished_;
      std::this_thread::sleep_for(pause_);
    }
  }

  bool post_until_acknowledged(HttpClient& http, const std::string& lead, const std::string& id, std::time_t at) {
    const auto give_up = Clock::now() + std::chrono::seconds(60);
    for (;;) {
      auto r = http.post("/api/events", event_body_at(lead, id, at), token_);
      if (r.status >= 200 && r.status < 300) break;
      ++refusals_;
      if (Clock::now() > give_up) return false;
      std::this_thread::sleep_for(milliseconds(20));
    }
    std::lock_guard lock(mu_);
    acked_.insert(id);
    ack_times_.push_back(Clock::now());  // under the lock: stays sorted
    return true;
  }

  std::uint16_t port_;
  std::string token_;
  milliseconds pause_;
  static constexpr std::time_t kLoadStart = 1748736000;  // 2025-06-01T00:00:00Z
  std::atomic<bool> stop_{false};
  std::atomic<std::int64_t> next_second_{0};
  std::atomic<int> refusals_{0};
  std::atomic<int> unfinished_{0};
  std::mutex mu_;
  std::set<std::string> acked_;              // guarded by mu_
  std::vector<Clock::time_point> ack_times_;  // guarded by mu_, sorted
  std::vector<std::thread> threads_;
};

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pg_.fresh()) << "scripts/pg-test-server could not start PostgreSQL";
    ASSERT_TRUE(redis_.start()) << "scripts/redis-test-server could not start Redis";
    models_ = make_temp_dir("reai-cluster-test-models");  // fallback scorer: enough here
    for (auto& i : instances_) start_instance(i, free_port());
    for (auto& i : instances_) ASSERT_TRUE(i.process->wait_for_port(i.port)) << i.process->log();
    balancer_ = std::make_unique<Balancer>("cluster-test-nginx-" + test_name(),
                                           std::vector<std::string>{"unix:" + instances_[0].socket,
                                                                    "unix:" + instances_[1].socket});
    ASSERT_TRUE(balancer_->ok()) << "nginx did not start";
    ASSERT_TRUE(eventually([&] { return HttpClient("127.0.0.1", balancer_->port()).get("/healthz").status == 200; }))
        << balancer_->error_log();
    token_ = reai_token(kTenant, server::Role::kAgent, kSecret, kIssuedAt);
  }

  // A clean shutdown after the faults (and, under ASan, no leak) is part of
  // the contract; nginx's idle upstream connections must not hold it up.
  void TearDown() override {
    for (auto& i : instances_) {
      if (i.process) {
        EXPECT_EQ(i.process->stop(SIGTERM), 0) << i.process->log();
      }
    }
  }

  struct Instance {
    std::uint16_t port = 0;
    std::string socket;  // the balancer's way in (absolute, short enough for sun_path)
    std::unique_ptr<ReaiProcess> process;
  };

  // A restart on the same port reuses the socket path: the killed
  // process's socket file is replaced.
  void start_instance(Instance& i, std::uint16_t port) {
    i.port = port;
    i.socket = std::filesystem::absolute(test_build_dir() + "/ct-" + std::to_string(port) + ".sock").string();
    i.process = std::make_unique<ReaiProcess>(std::vector<std::string>{
        "serve", "--port", std::to_string(port), "--unix-socket", i.socket, "--threads", "1", "--store", pg_.url(),
        "--bus", redis_.url("cluster-test"), "--cache", redis_.url("cluster-test"), "--model-dir", models_,
        "--jwt-secret", kSecret, "--clock", kClock});
  }

  // One more instance on the same store, alone (no Redis): its start-up
  // replay is what one instance computes from the store.
  std::unique_ptr<ReaiProcess> start_fresh_instance(std::uint16_t port) {
    return std::make_unique<ReaiProcess>(std::vector<std::string>{"serve", "--port", std::to_string(port), "--threads",
                                                                  "1", "--store", pg_.url(), "--model-dir", models_,
                                                                  "--jwt-secret", kSecret, "--clock", kClock});
  }

  json::object readyz(const Instance& i, int* status = nullptr) {
    auto r = HttpClient("127.0.0.1", i.port, milliseconds(3000)).get("/readyz");
    if (status) *status = r.status;
    return parse(r.body);
  }

  // Every event id the store holds for the load's leads, and how many rows
  // (a duplicate event would make rows exceed the distinct ids).
  std::set<std::string> stored_event_ids(std::uint16_t port, std::size_t* rows) {
    HttpClient http("127.0.0.1", port);
    std::set<std::string> ids;
    *rows = 0;
    for (int lead = 0; lead < kLeads; ++lead) {
      auto r = http.get("/api/contacts/lead-" + std::to_string(lead) + "/events?limit=1000", token_);
      if (r.status == 404) continue;  // a lead the load never reached
      EXPECT_EQ(r.status, 200) << r.body;
      auto o = parse(r.body);
      if (!o.contains("events")) continue;
      const auto total = static_cast<std::size_t>(o.at("total").to_number<std::int64_t>());
      EXPECT_LE(total, 1000u) << "raise the limit or shorten the load";
      *rows += total;
      for (const auto& e : o.at("events").as_array()) ids.insert(std::string(e.at("event_id").as_string()));
    }
    return ids;
  }

  void expect_every_acknowledged_event_stored_once(Load& load, std::uint16_t port) {
    EXPECT_EQ(load.unfinished(), 0) << "events never acknowledged within a minute";
    const auto acked = load.acknowledged();
    std::size_t rows = 0;
    const auto stored = stored_event_ids(port, &rows);
    std::size_t missing = 0;
    for (const auto& id : acked) missing += stored.count(id) ? 0 : 1;
    EXPECT_EQ(missing, 0u) << "acknowledged events missing from the store";
    EXPECT_EQ(rows, stored.size()) << "an event id is stored twice";
    // Every event was retried until acknowledged, so nothing else is stored.
    EXPECT_EQ(stored.size(), acked.size());
    std::printf("[ cluster  ] %zu events acknowledged, %zu stored, %d refusals retried\n", acked.size(),
                stored.size(), load.refusals());
  }

  struct Score {
    int status = 0;
    double probability = -1;
    std::int64_t events_count = -1;  // not in stored rows
    std::int64_t score = -1;
    std::string band;
  };
  // The score `port` serves for `lead` now.
  Score served_score(std::uint16_t port, const std::string& lead) {
    auto r = HttpClient("127.0.0.1", port, milliseconds(5000)).get("/api/contacts/" + lead + "/score", token_);
    Score s;
    s.status = r.status;
    auto o = parse(r.body);
    if (r.status != 200 || !o.contains("probability")) return s;
    s.probability = o.at("probability").to_number<double>();
    s.events_count = o.at("events_count").to_number<std::int64_t>();
    s.score = o.at("score").to_number<std::int64_t>();
    s.band = std::string(o.at("band").as_string());
    return s;
  }
  // The newest stored score row of `lead` (status 0 when there is none).
  Score latest_row(std::uint16_t port, const std::string& lead) {
    auto r = HttpClient("127.0.0.1", port, milliseconds(5000)).get("/api/contacts/" + lead + "/scores?limit=1", token_);
    Score s;
    auto o = parse(r.body);
    if (r.status != 200 || !o.contains("scores") || o.at("scores").as_array().empty()) return s;
    const auto& row = o.at("scores").as_array().front().as_object();
    s.status = r.status;
    s.probability = row.at("probability").to_number<double>();
    s.score = row.at("score").to_number<std::int64_t>();
    s.band = std::string(row.at("band").as_string());
    return s;
  }

  // "Its score is consistent": for every lead with stored events, the score
  // each running instance serves equals what one instance started afterwards
  // on the same store computes (its start-up replay folds the stored events
  // in store order), and so does the lead's newest stored score row. Rows are
  // recorded when score, band or reasons change, so a row's probability may
  // predate sub-point drifts: it is held to the visible score and band.
  void expect_scores_consistent_with_a_fresh_instance(const std::vector<std::string>& leads) {
    const std::uint16_t port = free_port();
    auto fresh = start_fresh_instance(port);
    ASSERT_TRUE(fresh->wait_for_port(port)) << fresh->log();
    int checked = 0;
    for (const auto& lead : leads) {
      const Score expected = served_score(port, lead);
      if (expected.status == 404) continue;  // a lead the load never reached
      ASSERT_EQ(expected.status, 200) << lead;
      ++checked;
      for (const auto& i : instances_) {
        const Score got = served_score(i.port, lead);
        EXPECT_EQ(got.status, 200) << lead;
        EXPECT_NEAR(got.probability, expected.probability, 1e-9) << lead << " served by the instance on " << i.port;
        EXPECT_EQ(got.events_count, expected.events_count) << lead << " served by the instance on " << i.port;
      }
      // Rows leave through each instance's writer: wait for the last one.
      Score row;
      EXPECT_TRUE(eventually(
          [&] {
            row = latest_row(port, lead);
            return row.score == expected.score && row.band == expected.band;
          },
          milliseconds(5000)))
          << lead << ": newest stored row " << row.score << " " << row.band << ", one instance computes "
          << expected.score << " " << expected.band << " (p=" << expected.probability << ")";
    }
    EXPECT_GT(checked, 0);
    if (!HasFailure()) std::printf("[ cluster  ] %d leads: both instances and their newest stored rows agree with a fresh instance\n",
                checked);
    EXPECT_EQ(fresh->stop(SIGTERM), 0) << fresh->log();
  }

  static std::string test_name() { return ::testing::UnitTest::GetInstance()->current_test_info()->name(); }

  PrivatePostgres pg_{"cluster-test-pg-" + test_name()};
  PrivateRedis redis_ = PrivateRedis::own("cluster-test-redis-" + test_name());
  std::string models_;
  Instance instances_[2];
  std::unique_ptr<Balancer> balancer_;
  std::string token_;
};

// Reads `ws` until a score_update of `lead`, advancing `*last_seq`. Without
// `saw_resync` every frame must carry the seq after the previous one (no
// gap, no resync: nothing missed). With it, gaps are allowed (the contract
// across a Redis outage is a resync message) and a resync is reported.
// False on a gap, a resync not asked for, or the time limit.
bool read_until_lead(WsClient& ws, const std::string& lead, std::uint64_t* last_seq, bool* saw_resync = nullptr,
                     milliseconds limit = milliseconds(20000)) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    auto m = ws.read(milliseconds(1000));
    if (!m) {
      if (!ws.is_open()) return false;
      continue;
    }
    auto o = parse(*m);
    if (o.contains("type") && o.at("type").as_string() == "resync") {
      if (!saw_resync) {
        ADD_FAILURE() << "told to resync after seq " << *last_seq << ": updates were missed";
        return false;
      }
      *saw_resync = true;
    }
    if (!o.contains("seq")) continue;
    const auto seq = static_cast<std::uint64_t>(o.at("seq").to_number<std::int64_t>());
    if (*last_seq != 0 && seq != *last_seq + 1 && !saw_resync) {
      ADD_FAILURE() << "seq " << seq << " after " << *last_seq << ": " << *m;
      return false;
    }
    *last_seq = seq;
    if (o.contains("lead_id") && o.at("lead_id").as_string() == lead) return true;
  }
  return false;
}

TEST_F(ClusterTest, EveryUpdateReachesClientsOfBothInstancesThroughTheBalancer) {
  const std::string path = "/api/realtime/scoring/" + kTenant + "?token=" + token_;
  WsClient on_b;
  ASSERT_TRUE(on_b.connect("127.0.0.1", instances_[1].port, path));
  WsClient via_balancer;  // on whichever instance nginx picked
  ASSERT_TRUE(via_balancer.connect("127.0.0.1", balancer_->port(), path)) << via_balancer.error();

  // Posted through nginx: round robin puts them on both instances, and
  // directly on A.
  constexpr int kEvents = 200;
  HttpClient http_lb("127.0.0.1", balancer_->port());
  HttpClient http_a("127.0.0.1", instances_[0].port);
  for (int i = 0; i < kEvents; ++i) {
    HttpClient& http = i % 4 == 3 ? http_a : http_lb;
    auto r = http.post("/api/events", event_body("new-" + std::to_string(i), "fan-" + std::to_string(i)), token_);
    ASSERT_EQ(r.status, 200) << r.body;
  }
  for (WsClient* ws : {&on_b, &via_balancer}) {
    for (int i = 0; i < kEvents; ++i) {
      auto m = ws->read();
      ASSERT_TRUE(m.has_value()) << "lost after " << i << " updates: " << ws->error();
      auto o = parse(*m);
      ASSERT_EQ(o.at("type").as_string(), "score_update") << *m;
      EXPECT_EQ(o.at("seq").to_number<std::int64_t>(), i + 1) << *m;
      EXPECT_EQ(o.at("lead_id").as_string(), "new-" + std::to_string(i)) << *m;
    }
  }

  // The balancer's client moves to A with since=150 and misses nothing.
  via_balancer.close();
  WsClient moved;
  ASSERT_TRUE(moved.connect("127.0.0.1", instances_[0].port, path + "&since=150"));
  for (int seq = 151; seq <= kEvents; ++seq) {
    auto m = moved.read();
    ASSERT_TRUE(m.has_value()) << "replay stopped before seq " << seq;
    EXPECT_EQ(parse(*m).at("seq").to_number<std::int64_t>(), seq) << *m;
  }
  on_b.close();
  moved.close();
}

// The value of the counter or gauge `name` on the instance's /metrics; -1
// when it is not there.
long long metric(std::uint16_t port, const std::string& name) {
  const std::string text = HttpClient("127.0.0.1", port, milliseconds(3000)).get("/metrics").body;
  const std::string line = "\n" + name + " ";
  const auto at = text.find(line);
  return at == std::string::npos ? -1 : std::strtoll(text.c_str() + at + line.size(), nullptr, 10);
}

// Issue 8's reading "a client on B receives every update caused by events
// posted to A", through the balancer: events go to A only (/instance/1/),
// the client sits on B only (/instance/2/), so every update it gets went
// A -> Redis -> B -> nginx. Posted by a few threads at once, each waiting
// for its answer (a sustained stream, as fast as the store commits). The
// client must see every update, seqs 1, 2, 3... with no gap, each poster's
// events in the order it posted them. Halfway it leaves; posting goes on;
// it comes back on A with `since` and must get exactly the rest.
TEST_F(ClusterTest, ClientOnBGetsEveryUpdateOfEventsPostedToAThroughTheBalancerAndResumesOnA) {
  const std::string scoring = "/api/realtime/scoring/" + kTenant + "?token=" + token_;
  const long long scored_on_b_before = metric(instances_[1].port, "reai_events_total");
  WsClient client;
  ASSERT_TRUE(client.connect("127.0.0.1", balancer_->port(), "/instance/2" + scoring)) << client.error();
  ASSERT_TRUE(eventually([&] { return metric(instances_[1].port, "reai_websocket_connections") == 1; }))
      << "the client is not on B";
  EXPECT_EQ(metric(instances_[0].port, "reai_websocket_connections"), 0) << "the client is on A";

  constexpr int kPosters = 4;
  constexpr int kPerPoster = 150;
  constexpr int kEvents = kPosters * kPerPoster;
  std::atomic<int> refused{0};
  std::vector<std::thread> posters;
  struct JoinAll {
    std::vector<std::thread>& threads;
    ~JoinAll() {
      for (auto& t : threads) {
        if (t.joinable()) t.join();
      }
    }
  } join_posters{posters};  // also when an assertion returns early
  for (int p = 0; p < kPosters; ++p) {
    posters.emplace_back([&, p] {
      HttpClient http("127.0.0.1", balancer_->port());
      for (int k = 0; k < kPerPoster; ++k) {
        const std::string id = "pair-" + std::to_string(p) + "-" + std::to_string(k);
        if (http.post("/instance/1/api/events", event_body(id, id), token_).status != 200) ++refused;
      }
    });
  }

  // Lead "pair-P-K" -> K: each poster's K must rise by one, update by update.
  std::vector<int> next_of_poster(kPosters, 0);
  std::uint64_t last_seq = 0;
  auto take = [&](const std::string& text) {
    auto o = parse(text);
    ASSERT_EQ(o.at("type").as_string(), "score_update") << text;
    const auto seq = static_cast<std::uint64_t>(o.at("seq").to_number<std::int64_t>());
    ASSERT_EQ(seq, last_seq + 1) << "after seq " << last_seq << ": " << text;
    last_seq = seq;
    const std::string lead(o.at("lead_id").as_string());
    int poster = -1, k = -1;
    ASSERT_EQ(std::sscanf(lead.c_str(), "pair-%d-%d", &poster, &k), 2) << text;
    ASSERT_TRUE(poster >= 0 && poster < kPosters) << text;
    ASSERT_EQ(k, next_of_poster[poster]) << "poster " << poster << "'s events out of order: " << text;
    ++next_of_poster[poster];
  };
  for (int i = 0; i < kEvents / 2; ++i) {
    auto m = client.read();
    ASSERT_TRUE(m.has_value()) << "no update after seq " << last_seq << ": " << client.error();
    take(*m);
    if (HasFatalFailure()) break;
  }
  client.close();
  if (HasFatalFailure()) return;

  // Back on A (through the balancer), resuming after the last seq it saw,
  // while the rest is still being posted.
  WsClient resumed;
  ASSERT_TRUE(resumed.connect("127.0.0.1", balancer_->port(),
                              "/instance/1" + scoring + "&since=" + std::to_string(last_seq)))
      << resumed.error();
  for (auto& t : posters) t.join();
  EXPECT_EQ(refused.load(), 0);
  while (last_seq < static_cast<std::uint64_t>(kEvents) && !HasFatalFailure()) {
    auto m = resumed.read();
    ASSERT_TRUE(m.has_value()) << "no update after seq " << last_seq << " on A: " << resumed.error();
    take(*m);
  }
  for (int p = 0; p < kPosters; ++p) EXPECT_EQ(next_of_poster[p], kPerPoster) << "poster " << p;
  EXPECT_FALSE(resumed.read(milliseconds(300)).has_value()) << "an update beyond the events posted";
  // Every event was taken and scored by A: B only relayed.
  EXPECT_EQ(metric(instances_[1].port, "reai_events_total"), scored_on_b_before);
  resumed.close();
}

TEST_F(ClusterTest, RedisKilledUnderLoadInstancesKeepScoringAndCatchUp) {
  const std::string path = "/api/realtime/scoring/" + kTenant + "?token=" + token_;
  WsClient on_b;
  ASSERT_TRUE(on_b.connect("127.0.0.1", instances_[1].port, path));
  Load load(balancer_->port(), token_);
  ASSERT_TRUE(eventually([&] { return load.acked_count() >= 100; }));

  const int refusals_before = load.refusals();
  ASSERT_TRUE(redis_.kill());
  const auto killed = Clock::now();
  for (auto& i : instances_) {
    int status = 0;
    json::object ready;
    EXPECT_TRUE(eventually([&] {
      ready = readyz(i, &status);
      return status_of(ready, "bus") == "unavailable";
    })) << json::serialize(ready);
    EXPECT_EQ(status, 200) << "still taking events: " << json::serialize(ready);
    EXPECT_EQ(ready.at("status").as_string(), "degraded") << json::serialize(ready);
    EXPECT_EQ(status_of(ready, "cache"), "unavailable") << json::serialize(ready);
    EXPECT_NE(HttpClient("127.0.0.1", i.port).get("/metrics").body.find("reai_bus_up 0"), std::string::npos);
  }
  // Scoring goes on without Redis.
  const std::size_t acked_at_kill = load.acked_count();
  EXPECT_TRUE(eventually([&] { return load.acked_count() >= acked_at_kill + 200; }))
      << "events stopped being acknowledged without Redis";
  const double down_for = seconds_since(killed);

  ASSERT_TRUE(redis_.start());
  const auto restarted = Clock::now();
  // Bus and cache reconnect on their own backoffs: each time is the later
  // of the two instances.
  double bus_back = -1;
  double cache_back = -1;
  EXPECT_TRUE(eventually([&] {
    bool bus = true;
    bool cache = true;
    for (auto& i : instances_) {
      auto ready = readyz(i);
      bus = bus && status_of(ready, "bus") == "ok";
      cache = cache && status_of(ready, "cache") == "ok";
      if (bus && cache) {
        EXPECT_EQ(ready.at("status").as_string(), "ready") << json::serialize(ready);
      }
    }
    if (bus && bus_back < 0) bus_back = seconds_since(restarted);
    if (cache && cache_back < 0) cache_back = seconds_since(restarted);
    return bus_back >= 0 && cache_back >= 0;
  }));
  // Caught up: an update caused on A reaches B's client again, after B's
  // client was told to resynchronise.
  HttpClient http_a("127.0.0.1", instances_[0].port);
  double fanout_back = -1;
  std::uint64_t last_seq = 0;
  bool resync = false;
  for (int attempt = 0; attempt < 50 && fanout_back < 0; ++attempt) {
    const std::string lead = "probe-" + std::to_string(attempt);
    ASSERT_EQ(http_a.post("/api/events", event_body(lead, lead), token_).status, 200);
    if (read_until_lead(on_b, lead, &last_seq, &resync, milliseconds(2000))) fanout_back = seconds_since(restarted);
  }
  EXPECT_GE(fanout_back, 0) << "no update from A reached B's client after Redis returned";
  EXPECT_TRUE(resync) << "B's client was not told to resynchronise";
  load.finish();
  EXPECT_EQ(load.refusals(), refusals_before) << "events refused while Redis was down";
  std::printf("[ cluster  ] Redis down %.2f s; after its restart: bus ok on both instances in %.2f s, cache in %.2f s, "
              "A->B delivery in %.2f s\n",
              down_for, bus_back, cache_back, fanout_back);
  expect_every_acknowledged_event_stored_once(load, instances_[1].port);
  on_b.close();
}

TEST_F(ClusterTest, PostgresRestartedUnderLoadRefusesThenResumesWithoutLoss) {
  Load load(balancer_->port(), token_);
  ASSERT_TRUE(eventually([&] { return load.acked_count() >= 100; }));

  const int refusals_before = load.refusals();
  ASSERT_TRUE(pg_.stop());
  const auto stopped = Clock::now();
  for (auto& i : instances_) {
    int status = 0;
    json::object ready;
    EXPECT_TRUE(eventually([&] {
      ready = readyz(i, &status);
      return status == 503;
    })) << json::serialize(ready);
    EXPECT_EQ(status_of(ready, "store"), "unavailable") << json::serialize(ready);
  }
  // Refused (the loader sees 503 and retries), never acknowledged.
  EXPECT_TRUE(eventually([&] { return load.refusals() > refusals_before + 20; }));
  HttpClient http_a("127.0.0.1", instances_[0].port);
  auto refused = http_a.post("/api/events", event_body("probe", "while-down"), token_);
  EXPECT_EQ(refused.status, 503) << refused.body;
  EXPECT_TRUE(parse(refused.body).contains("error")) << refused.body;
  // Down long enough for every instance's pool to have failed and retried.
  std::this_thread::sleep_for(milliseconds(1000) - std::min<Clock::duration>(Clock::now() - stopped, milliseconds(1000)));
  const double down_for = seconds_since(stopped);

  ASSERT_TRUE(pg_.start());
  const auto restarted = Clock::now();
  double ready_back = -1;
  for (auto& i : instances_) {
    int status = 0;
    EXPECT_TRUE(eventually([&] {
      readyz(i, &status);
      return status == 200;
    }));
    ready_back = std::max(ready_back, seconds_since(restarted));
  }
  const std::size_t acked_at_restart = load.acked_count();
  EXPECT_TRUE(eventually([&] { return load.acked_count() >= acked_at_restart + 100; }))
      << "events not acknowledged again after PostgreSQL returned";
  // The refused event, retried, is taken once.
  auto retried = http_a.post("/api/events", event_body("probe", "while-down"), token_);
  EXPECT_EQ(retried.status, 200) << retried.body;
  load.finish();
  std::printf("[ cluster  ] PostgreSQL down %.2f s: first event acknowledged %.2f s after restart, readyz 200 on "
              "both instances after %.2f s\n",
              down_for, load.first_ack_after(restarted), ready_back);
  expect_every_acknowledged_event_stored_once(load, instances_[0].port);
}

TEST_F(ClusterTest, InstanceKilledUnderLoadLosesNoAcknowledgedEventAndClientsResumeElsewhere) {
  const std::string path = "/api/realtime/scoring/" + kTenant + "?token=" + token_;
  WsClient on_a;
  ASSERT_TRUE(on_a.connect("127.0.0.1", instances_[0].port, path));
  Load load(balancer_->port(), token_);
  ASSERT_TRUE(eventually([&] { return load.acked_count() >= 200; }));

  // A's client reads a while, then A dies mid-load.
  std::uint64_t last_seq = 0;
  for (int i = 0; i < 50; ++i) {
    auto m = on_a.read();
    ASSERT_TRUE(m.has_value()) << on_a.error();
    const auto seq = static_cast<std::uint64_t>(parse(*m).at("seq").to_number<std::int64_t>());
    if (last_seq != 0) {
      ASSERT_EQ(seq, last_seq + 1) << *m;
    }
    last_seq = seq;
  }
  const int refusals_before = load.refusals();
  EXPECT_EQ(instances_[0].process->stop(SIGKILL), 128 + SIGKILL);
  const auto killed = Clock::now();
  const std::size_t acked_at_kill = load.acked_count();
  EXPECT_TRUE(eventually([&] { return load.acked_count() >= acked_at_kill + 300; }))
      << "the balancer did not move the load to B";
  const double served_by_b = seconds_since(killed);

  // Its client resumes on B from the last seq it saw, missing nothing.
  WsClient moved;
  ASSERT_TRUE(moved.connect("127.0.0.1", instances_[1].port, path + "&since=" + std::to_string(last_seq)));

  // A comes back on its port; the balancer uses it again.
  start_instance(instances_[0], instances_[0].port);
  const auto restarted = Clock::now();
  ASSERT_TRUE(instances_[0].process->wait_for_port(instances_[0].port)) << instances_[0].process->log();
  int status = 0;
  EXPECT_TRUE(eventually([&] {
    readyz(instances_[0], &status);
    return status == 200;
  }));
  const double a_ready = seconds_since(restarted);
  const std::size_t acked_at_restart = load.acked_count();
  EXPECT_TRUE(eventually([&] { return load.acked_count() >= acked_at_restart + 200; }));
  // Through its socket file, which the new process replaced: the balancer's
  // events reach A again (only they count here; the marker goes to B).
  EXPECT_TRUE(eventually([&] {
    const std::string metrics = HttpClient("127.0.0.1", instances_[0].port).get("/metrics").body;
    const auto at = metrics.find("\nreai_events_total ");
    return at != std::string::npos && std::strtoull(metrics.c_str() + at + 19, nullptr, 10) > 0;
  })) << "the balancer never reached the restarted instance: " << balancer_->error_log();
  load.finish();

  // The moved client saw every seq up to an update posted last.
  HttpClient http_b("127.0.0.1", instances_[1].port);
  ASSERT_EQ(http_b.post("/api/events", event_body("marker", "marker"), token_).status, 200);
  EXPECT_TRUE(read_until_lead(moved, "marker", &last_seq)) << "the moved client missed updates";
  std::printf("[ cluster  ] instance A SIGKILLed: %d requests refused/retried, longest time without an "
              "acknowledgement %.2f s (%zu acknowledged by B within %.2f s); A restarted and ready in %.2f s\n",
              load.refusals() - refusals_before, load.longest_gap(killed, killed + std::chrono::milliseconds(
                                                                                    static_cast<int>(served_by_b * 1000))),
              load.acked_count() - acked_at_kill, served_by_b, a_ready);
  expect_every_acknowledged_event_stored_once(load, instances_[1].port);
  std::vector<std::string> leads = {"marker"};
  for (int lead = 0; lead < kLeads; ++lead) leads.push_back("lead-" + std::to_string(lead));
  expect_scores_consistent_with_a_fresh_instance(leads);
  moved.close();
}

}  // namespace
}  // namespace reai::testing
