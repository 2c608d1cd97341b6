// Black-box tests of `reai serve`: the real binary, real SQLite, real HTTP and
// WebSocket. They pin behaviour at the protocol level so internals can change.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/json.hpp>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iterator>
#include <set>
#include <sstream>
#include <thread>

#include "core/crm_csv.h"
#include "core/time.h"
#include "support/private_redis.h"
#include "support/process.h"
#include "support/test_client.h"
#include "support/token.h"

namespace reai::testing {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;

const std::string kSecret = kTestJwtSecret;
const std::string kFixture = "tests/fixtures/crm_small";

// Sends `bytes` on a new connection and returns everything the server
// answers until it closes (or 10 s pass): for requests HttpClient cannot make.
std::string raw_exchange(std::uint16_t port, const std::string& bytes) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string out;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 &&
      ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size())) {
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

json::object parse_object(const std::string& body) {
  json::value v = json::parse(body);
  return v.as_object();
}

// The lead model trained on the fixture by the `train_fixture_model` CTest
// fixture (tests/CMakeLists.txt), shared by every test here.
const std::string& trained_model_dir() {
  static const std::string dir = [] {
    const char* build = std::getenv("REAI_BUILD_DIR");
    return std::string(build && *build ? build : "build") + "/test-models";
  }();
  return dir;
}

class ServerBinaryTest : public ::testing::Test {
 protected:
  void start(const std::string& model_dir, const std::vector<std::string>& extra = {}) {
    if (data_dir_.empty()) data_dir_ = make_temp_dir("reai-data");
    port_ = free_port();
    std::vector<std::string> args = {"serve", "--port", std::to_string(port_), "--data-dir", data_dir_,
                                     "--model-dir", model_dir, "--jwt-secret", kSecret};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<ReaiProcess>(args);
    ASSERT_TRUE(server_->wait_for_port(port_)) << server_->log();
  }
  int stop() { return server_->stop(SIGTERM); }

  std::string data_dir_;
  std::uint16_t port_ = 0;
  std::unique_ptr<ReaiProcess> server_;
};

TEST_F(ServerBinaryTest, FallbackWithoutModelThenReloadPicksUpTrainedModel) {
  const std::string models = make_temp_dir("reai-empty-models");
  start(models);
  HttpClient http("127.0.0.1", port_);
  const std::string agent = reai_token("t1", server::Role::kAgent, kSecret);
  auto r = http.post("/api/events", R"({"contact_id":"c1","type":"sms_in"})", agent);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(parse_object(r.body).at("model").as_string(), "fallback");

  fs::copy(trained_model_dir() + "/leads", models + "/leads", fs::copy_options::recursive);
  EXPECT_EQ(http.post("/api/admin/reload", "", agent).status, 403);
  auto reload = http.post("/api/admin/reload", "", reai_token("t1", server::Role::kAdmin, kSecret));
  ASSERT_EQ(reload.status, 200) << reload.body;
  r = http.post("/api/events", R"({"contact_id":"c1","type":"tour_request","property_id":"ames-0001","value":200000})", agent);
  ASSERT_EQ(r.status, 200) << r.body;
  auto score = parse_object(r.body);
  EXPECT_NE(score.at("model").as_string(), "fallback");
  EXPECT_EQ(score.at("events_count").as_int64(), 2);
  EXPECT_EQ(stop(), 0) << server_->log();
}

// Copies the fixture's trained model to `dir` as a model of `version` (what
// a retrain there would leave, as far as a reload can tell).
void place_model(const fs::path& dir, const std::string& version) {
  fs::remove_all(dir);
  fs::create_directories(dir.parent_path());
  fs::copy(trained_model_dir() + "/leads", dir, fs::copy_options::recursive);
  std::ifstream in(dir / "metadata.json");
  json::value meta = json::parse(std::string(std::istreambuf_iterator<char>(in), {}));
  in.close();
  meta.as_object()["version"] = version;
  std::ofstream(dir / "metadata.json", std::ios::trunc) << json::serialize(meta);
}

// SIGHUP makes a running server reread every tenant's model directory: a
// tenant retrained in place and a tenant given its first own model are
// scored with them without a restart; a model that fails to load leaves its
// tenant on the previous one, and the server keeps serving.
TEST_F(ServerBinaryTest, SighupReloadsEveryTenantsModelsWithoutRestart) {
  const fs::path models = make_temp_dir("reai-hup-models");
  place_model(models / "leads", "leads-shared-1");
  place_model(models / "tenants" / "t1" / "leads", "leads-t1-1");
  place_model(models / "tenants" / "t3" / "leads", "leads-t3-1");
  start(models.string());
  HttpClient http("127.0.0.1", port_);
  int events = 0;
  auto model_of = [&](const std::string& tenant) {
    const std::string body = R"({"contact_id":"c1","type":"sms_in","event_id":"e)" + std::to_string(++events) + R"("})";
    auto r = http.post("/api/events", body, reai_token(tenant, server::Role::kAgent, kSecret));
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? std::string(parse_object(r.body).at("model").as_string()) : std::string();
  };
  ASSERT_EQ(model_of("t1"), "leads-t1-1");
  ASSERT_EQ(model_of("t2"), "leads-shared-1");
  ASSERT_EQ(model_of("t3"), "leads-t3-1");

  place_model(models / "tenants" / "t1" / "leads", "leads-t1-2");
  place_model(models / "tenants" / "t2" / "leads", "leads-t2-1");
  std::ofstream(models / "tenants" / "t3" / "leads" / "model.json", std::ios::trunc) << "{not json";
  ASSERT_EQ(::kill(server_->pid(), SIGHUP), 0);
  // The reload runs on its own thread: wait for the log line that ends it.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (server_->log().find("model reload of every tenant: ") == std::string::npos &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(server_->running()) << server_->log();
  EXPECT_NE(server_->log().find("reloaded [tenants/t1/leads, tenants/t2/leads] unchanged [leads] failed [tenants/t3/leads]"),
            std::string::npos)
      << server_->log();
  EXPECT_EQ(model_of("t1"), "leads-t1-2");
  EXPECT_EQ(model_of("t2"), "leads-t2-1");
  EXPECT_EQ(model_of("t3"), "leads-t3-1");  // failed to load: the previous one serves
  EXPECT_EQ(model_of("t4"), "leads-shared-1");
  EXPECT_NE(http.get("/metrics").body.find("\nreai_model_full_reloads_total 1\n"), std::string::npos);
  EXPECT_EQ(stop(), 0) << server_->log();
  fs::remove_all(models);
}

// Two instances on one Redis bus (own SQLite each, one model directory, as
// behind nginx): an admin reload on A is announced, and B serves the
// retrained model without being asked. While Redis is down the answer says
// the reload was not announced, and why.
TEST(ServerClusterReload, AnAdminReloadOnOneInstanceReachesTheOther) {
  auto redis = PrivateRedis::own("redis-reload-" + std::to_string(::getpid()));
  ASSERT_TRUE(redis.start()) << "redis-server did not start";
  const fs::path models = make_temp_dir("reai-cluster-reload-models");
  place_model(models / "leads", "leads-shared-1");
  place_model(models / "tenants" / "t1" / "leads", "leads-t1-1");
  struct Instance {
    std::uint16_t port = 0;
    std::unique_ptr<ReaiProcess> process;
  };
  auto start_instance = [&] {
    Instance i;
    i.port = free_port();
    i.process = std::make_unique<ReaiProcess>(std::vector<std::string>{
        "serve", "--port", std::to_string(i.port), "--data-dir", make_temp_dir("reai-cluster-reload-data"),
        "--model-dir", models.string(), "--jwt-secret", kSecret, "--bus", redis.url("reload:")});
    return i;
  };
  Instance a = start_instance(), b = start_instance();
  ASSERT_TRUE(a.process->wait_for_port(a.port)) << a.process->log();
  ASSERT_TRUE(b.process->wait_for_port(b.port)) << b.process->log();
  HttpClient http_a("127.0.0.1", a.port), http_b("127.0.0.1", b.port);
  const std::string agent = reai_token("t1", server::Role::kAgent, kSecret);
  const std::string admin = reai_token("t1", server::Role::kAdmin, kSecret);
  int events = 0;
  auto model_on_b = [&] {
    const std::string body = R"({"contact_id":"c1","type":"sms_in","event_id":"e)" + std::to_string(++events) + R"("})";
    auto r = http_b.post("/api/events", body, agent);
    EXPECT_EQ(r.status, 200) << r.body;
    return r.status == 200 ? std::string(parse_object(r.body).at("model").as_string()) : std::string();
  };
  auto wait_for_model_on_b = [&](const std::string& version) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    std::string seen;
    while ((seen = model_on_b()) != version && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return seen;
  };
  ASSERT_EQ(model_on_b(), "leads-t1-1");

  place_model(models / "tenants" / "t1" / "leads", "leads-t1-2");
  auto reload = http_a.post("/api/admin/reload", "", admin);
  ASSERT_EQ(reload.status, 200) << reload.body;
  auto answer = parse_object(reload.body);
  EXPECT_EQ(answer.at("announced"), json::value(true)) << reload.body;
  EXPECT_EQ(json::serialize(answer.at("reloaded")), R"(["tenants/t1/leads"])") << reload.body;
  EXPECT_EQ(wait_for_model_on_b("leads-t1-2"), "leads-t1-2") << b.process->log();
  // The log line follows the swap (and the property refresh): it may come
  // a moment after B already scores with the new model.
  const std::string logged = "model reload of tenant t1 announced by another instance: reloaded [tenants/t1/leads]";
  const auto log_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (b.process->log().find(logged) == std::string::npos && std::chrono::steady_clock::now() < log_deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_NE(b.process->log().find(logged), std::string::npos) << b.process->log();
  const std::string metrics_b = http_b.get("/metrics").body;
  EXPECT_NE(metrics_b.find("\nreai_model_reload_notices_total 1\n"), std::string::npos) << metrics_b;
  EXPECT_NE(http_a.get("/metrics").body.find("\nreai_model_reloads_announced_total 1\n"), std::string::npos);

  // Redis down: A reloads, and says the others were not told (yet).
  ASSERT_TRUE(redis.kill());
  place_model(models / "tenants" / "t1" / "leads", "leads-t1-3");
  reload = http_a.post("/api/admin/reload", "", admin);
  ASSERT_EQ(reload.status, 200) << reload.body;
  answer = parse_object(reload.body);
  EXPECT_EQ(answer.at("announced"), json::value(false)) << reload.body;
  EXPECT_NE(std::string(answer.at("announce_error").as_string()).find("Unavailable"), std::string::npos)
      << reload.body;
  EXPECT_EQ(model_on_b(), "leads-t1-2");
  // Back up: the held notice goes out, and B catches up.
  ASSERT_TRUE(redis.start());
  EXPECT_EQ(wait_for_model_on_b("leads-t1-3"), "leads-t1-3") << b.process->log();
  EXPECT_EQ(a.process->stop(SIGTERM), 0) << a.process->log();
  EXPECT_EQ(b.process->stop(SIGTERM), 0) << b.process->log();
  fs::remove_all(models);
}

TEST_F(ServerBinaryTest, TenantsAreIsolatedOverHttpAndWebSocket) {
  start(trained_model_dir());
  HttpClient http("127.0.0.1", port_);
  const std::string a = reai_token("tenant_a", server::Role::kAgent, kSecret);
  const std::string b = reai_token("tenant_b", server::Role::kAgent, kSecret);
  WsClient ws_b;
  ASSERT_TRUE(ws_b.connect("127.0.0.1", port_, "/api/realtime/scoring/tenant_b?token=" + b));
  WsClient wrong;
  ASSERT_TRUE(wrong.connect("127.0.0.1", port_, "/api/realtime/scoring/tenant_a?token=" + b));
  EXPECT_FALSE(wrong.read().has_value());
  EXPECT_EQ(wrong.close_code(), 4003);
  WsClient forged;
  ASSERT_TRUE(forged.connect("127.0.0.1", port_, "/api/realtime/scoring/tenant_a?token=" + a + "x"));
  EXPECT_FALSE(forged.read().has_value());
  EXPECT_EQ(forged.close_code(), 4001);

  ASSERT_EQ(http.post("/api/events", R"({"contact_id":"secret-lead","type":"sms_in"})", a).status, 200);
  EXPECT_EQ(http.get("/api/contacts/secret-lead/score", a).status, 200);
  EXPECT_EQ(http.get("/api/contacts/secret-lead/score", b).status, 404);
  auto leads_b = http.get("/api/leads?limit=50", b);
  ASSERT_EQ(leads_b.status, 200);
  EXPECT_EQ(leads_b.body.find("secret-lead"), std::string::npos);
  EXPECT_EQ(http.post("/api/events", R"({"tenant_id":"tenant_a","contact_id":"x","type":"sms_in"})", b).status,
            403);
  ASSERT_EQ(http.post("/api/events", R"({"contact_id":"b-lead","type":"sms_in"})", b).status, 200);
  auto msg = ws_b.read();
  ASSERT_TRUE(msg.has_value());
  EXPECT_NE(msg->find("b-lead"), std::string::npos);
  EXPECT_EQ(msg->find("secret-lead"), std::string::npos);
}

// Listings imported by `reai import listings` (another process) while the
// server runs are matched without POST /api/admin/reload: the server notices
// the store's listings version within a few seconds and rebuilds its catalog.
TEST_F(ServerBinaryTest, ListingsImportedWhileServingAreMatchedWithoutReload) {
  start(make_temp_dir("reai-empty-models"));
  HttpClient http("127.0.0.1", port_);
  const std::string agent = reai_token("t1", server::Role::kAgent, kSecret);
  const std::string criteria = R"({"budget":200000,"beds":3,"k":10})";
  // The first request for an unseen tenant queues its catalog load (503
  // "listings are loading"); once loaded it has none.
  auto before = http.post("/api/properties/match", criteria, agent);
  for (int i = 0; i < 200 && before.status == 503; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    before = http.post("/api/properties/match", criteria, agent);
  }
  ASSERT_EQ(before.status, 404) << before.body;

  const std::string dir = make_temp_dir("reai-listings");
  const auto import = [&](const std::string& file, const std::string& rows) {
    std::ofstream(dir + "/" + file) << "mls,Neighborhood,Bedroom_AbvGr,Gr_Liv_Area,price\n" << rows;
    auto r = run_reai({"import", "listings", "--data-dir", data_dir_, "--tenant", "t1", "--listings",
                       dir + "/" + file, "--price-column", "price", "--id-column", "mls"});
    ASSERT_EQ(r.exit_code, 0) << r.output;
  };
  // Waits (at most 20 s) until the criteria match over `count` listings.
  const auto matched_over = [&](std::size_t count) -> json::object {
    json::object last;
    for (int i = 0; i < 200; ++i) {
      auto r = http.post("/api/properties/match", criteria, agent);
      if (r.status == 200) {
        last = parse_object(r.body);
        if (last.at("listings").to_number<std::size_t>() == count) return last;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return last;
  };
  import("first.csv", "A1,North_Ames,3,1500,190000\nA2,Old_Town,2,900,120000\nA3,North_Ames,4,2100,260000\n");
  auto first = matched_over(3);
  ASSERT_FALSE(first.empty()) << "the first import was never matched";
  ASSERT_EQ(first.at("listings").to_number<std::size_t>(), 3u);

  import("second.csv", "B1,North_Ames,3,1450,199000\nB2,Gilbert,3,1600,205000\n");
  auto second = matched_over(5);
  ASSERT_EQ(second.at("listings").to_number<std::size_t>(), 5u) << json::serialize(second);
  std::set<std::string> ids;
  for (const auto& m : second.at("matches").as_array()) ids.insert(std::string(m.at("property_id").as_string()));
  EXPECT_TRUE(ids.count("B1") && ids.count("B2") && ids.count("A1")) << json::serialize(second);
  EXPECT_EQ(stop(), 0) << server_->log();
}

TEST_F(ServerBinaryTest, BadInputGetsJsonErrors) {
  start(trained_model_dir());
  HttpClient http("127.0.0.1", port_);
  const std::string t = reai_token("t1", server::Role::kAgent, kSecret);
  struct Case {
    std::string body;
    int status;
  };
  for (const Case& c : std::vector<Case>{{"{not json", 400},
                                         {R"({"contact_id":7,"type":"sms_in"})", 400},
                                         {R"({"contact_id":"c","type":"teleport"})", 400},
                                         {R"({"type":"sms_in"})", 400},
                                         {R"({"contact_id":"c","type":"sms_in","colour":"red"})", 400},
                                         {R"({"contact_id":"c","type":"sms_in","ts":"yesterday"})", 400}}) {
    auto r = http.post("/api/events", c.body, t);
    EXPECT_EQ(r.status, c.status) << c.body << " -> " << r.body;
    EXPECT_TRUE(parse_object(r.body).contains("error")) << r.body;
  }
  auto big = http.post("/api/events", std::string(2 << 20, ' '), t);
  EXPECT_EQ(big.status, 413);
  EXPECT_EQ(http.post("/api/events", R"({"contact_id":"c","type":"sms_in"})", "").status, 401);
  EXPECT_EQ(http.post("/api/events", R"({"contact_id":"c","type":"sms_in"})", t + "tampered").status, 401);
  EXPECT_EQ(http.get("/api/contacts/nobody/score", t).status, 404);
  EXPECT_EQ(http.get("/healthz").status, 200);
}

// Requests the HTTP parser refuses (a head over its limit, a bad request
// line, a bad length or chunk) used to be dropped without a word, the
// connection reset under the client: each now gets a status and a JSON error.
TEST_F(ServerBinaryTest, UnreadableHttpRequestsGetJsonErrors) {
  start(make_temp_dir("reai-empty-models"));
  const std::string t = reai_token("t1", server::Role::kAgent, kSecret);
  const std::string event = R"({"contact_id":"c","type":"sms_in"})";
  const std::string post_head = "POST /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + t + "\r\n";
  struct Case {
    std::string name;
    std::string bytes;
    std::string status_line;
  };
  const Case cases[] = {
      {"long target", "GET /api/leads?" + std::string(20000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n",
       "HTTP/1.1 431 "},
      {"long field", "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: " + std::string(20000, 'a') + "\r\n\r\n",
       "HTTP/1.1 431 "},
      {"bad request line", "GARBAGE\r\n\r\n", "HTTP/1.1 400 "},
      {"field without colon", "GET /healthz HTTP/1.1\r\nHost x\r\n\r\n", "HTTP/1.1 400 "},
      {"bad content length", post_head + "Content-Length: -1\r\n\r\n" + event, "HTTP/1.1 400 "},
      {"two content lengths", post_head + "Content-Length: 5\r\nContent-Length: 35\r\n\r\n" + event,
       "HTTP/1.1 400 "},
      {"bad chunk size", post_head + "Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n", "HTTP/1.1 400 "},
  };
  for (const auto& c : cases) {
    const std::string answer = raw_exchange(port_, c.bytes);
    EXPECT_EQ(answer.substr(0, c.status_line.size()), c.status_line) << c.name << ": " << answer;
    const auto body = answer.find("\r\n\r\n");
    ASSERT_NE(body, std::string::npos) << c.name << ": " << answer;
    EXPECT_TRUE(parse_object(answer.substr(body + 4)).contains("error")) << c.name << ": " << answer;
  }
  // Requests before the unreadable one on the same connection are answered.
  const std::string pipelined = raw_exchange(
      port_, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGARBAGE\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(pipelined.rfind("HTTP/1.1 200 ", 0), 0u) << pipelined;
  EXPECT_NE(pipelined.find("HTTP/1.1 400 "), std::string::npos) << pipelined;
  HttpClient http("127.0.0.1", port_);
  EXPECT_EQ(http.get("/healthz").status, 200);
  EXPECT_EQ(stop(), 0) << server_->log();
}

// Clients holding connections until the server has no file descriptor
// left: a failed accept was retried at once, and failed again at once while
// the connection stayed queued, a loop burning a whole core until a client
// let go. The server now waits between attempts and serves again after.
TEST_F(ServerBinaryTest, RunningOutOfFileDescriptorsDoesNotSpinTheAcceptLoop) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "the sanitizers' own memory checks need descriptors the test takes away";
#endif
  rlimit limit{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &limit), 0);
  rlimit low = limit;
  low.rlim_cur = 64;  // the server inherits it
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  start(make_temp_dir("reai-empty-models"));
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &limit), 0);

  std::vector<int> held;
  for (int i = 0; i < 100; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(fd, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port_);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr), 0);
    held.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::seconds(1));  // the server out of descriptors meanwhile
  for (int fd : held) ::close(fd);

  HttpClient http("127.0.0.1", port_);
  auto health = http.get("/healthz");
  for (int i = 0; i < 100 && health.status != 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    health = http.get("/healthz");
  }
  ASSERT_EQ(health.status, 200) << server_->log();
  const std::string metrics = http.get("/metrics").body;
  const std::string name = "reai_http_accept_failures_total ";
  const auto at = metrics.find("\n" + name);
  ASSERT_NE(at, std::string::npos) << metrics;
  const double failures = std::stod(metrics.substr(at + 1 + name.size()));
  EXPECT_GT(failures, 0) << "the server never ran out: the test proves nothing";
  // A retry every 50 ms is about 20 in that second; the spinning loop made
  // hundreds of thousands.
  EXPECT_LT(failures, 1000);
  EXPECT_EQ(stop(), 0) << server_->log();
}

TEST_F(ServerBinaryTest, ReconnectWithSinceMissesNothingAndStateSurvivesRestart) {
  start(trained_model_dir());
  const std::string t = reai_token("t1", server::Role::kAgent, kSecret);
  {
    HttpClient http("127.0.0.1", port_);
    WsClient ws;
    ASSERT_TRUE(ws.connect("127.0.0.1", port_, "/api/realtime/scoring/t1?token=" + t));
    ASSERT_EQ(http.post("/api/events", R"({"event_id":"e1","contact_id":"c1","type":"sms_in"})", t).status, 200);
    auto first = ws.read();
    ASSERT_TRUE(first.has_value());
    const auto seq = parse_object(*first).at("seq").as_int64();
    ws.close();
    ASSERT_EQ(http.post("/api/events", R"({"event_id":"e2","contact_id":"c2","type":"call_in"})", t).status, 200);
    ASSERT_EQ(http.post("/api/events", R"({"event_id":"e3","contact_id":"c3","type":"form_submit"})", t).status, 200);
    auto dup = http.post("/api/events", R"({"event_id":"e3","contact_id":"c3","type":"form_submit"})", t);
    ASSERT_EQ(dup.status, 200);
    EXPECT_TRUE(parse_object(dup.body).at("duplicate").as_bool());

    WsClient again;
    ASSERT_TRUE(again.connect("127.0.0.1", port_,
                              "/api/realtime/scoring/t1?token=" + t + "&since=" + std::to_string(seq)));
    auto m2 = again.read();
    auto m3 = again.read();
    ASSERT_TRUE(m2 && m3);
    EXPECT_EQ(parse_object(*m2).at("seq").as_int64(), seq + 1);
    EXPECT_NE(m2->find("\"c2\""), std::string::npos);
    EXPECT_EQ(parse_object(*m3).at("seq").as_int64(), seq + 2);
    EXPECT_FALSE(again.read(std::chrono::milliseconds(300)).has_value()) << "the duplicate published nothing";
  }
  EXPECT_EQ(stop(), 0) << server_->log();
  start(trained_model_dir());
  HttpClient http("127.0.0.1", port_);
  auto r = http.get("/api/contacts/c3/score", t);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(parse_object(r.body).at("events_count").as_int64(), 1);
}

// The server and `reai replay` run the same engine: the same events give the
// same probability at the same instant.
TEST_F(ServerBinaryTest, ServerAndReplayProduceIdenticalScores) {
  auto contacts = load_contacts_csv(kFixture + "/contacts.csv", {}, nullptr);
  auto events = load_events_csv(kFixture + "/events.csv", {}, nullptr);
  ASSERT_TRUE(contacts && events);
  // A lead with activity in its first two days.
  const Contact* lead = nullptr;
  for (const auto& c : *contacts) {
    int n = 0;
    for (const auto& e : *events) n += e.contact_id == c.contact_id && e.ts <= c.created_at + 48 * 3600;
    if (n >= 5) {
      lead = &c;
      break;
    }
  }
  ASSERT_NE(lead, nullptr);
  const UnixSeconds at = lead->created_at + 48 * 3600;
  // The history as it stood at `at`: every other lead's events are imported
  // into the store (the server rebuilds from it), this lead's arrive over HTTP.
  const std::string dir = make_temp_dir("reai-identity");
  {
    std::ofstream c(dir + "/contacts.csv"), all(dir + "/events.csv"), others(dir + "/others.csv");
    std::ifstream src(kFixture + "/contacts.csv");
    std::string line;
    std::getline(src, line);
    c << line << "\n";
    for (std::size_t i = 0; std::getline(src, line); ++i) {
      if ((*contacts)[i].created_at <= at) c << line << "\n";
    }
    const char* header = "event_id,tenant_id,contact_id,ts,type,property_id,value\n";
    all << header;
    others << header;
    for (const auto& e : *events) {
      if (e.ts > at) continue;
      std::ostringstream row;
      row << e.event_id << ',' << e.tenant_id << ',' << e.contact_id << ',' << format_iso8601(e.ts) << ','
          << event_type_name(e.type) << ',' << e.property_id << ',';
      if (e.value) row << std::setprecision(12) << *e.value;
      row << "\n";
      all << row.str();
      if (e.contact_id != lead->contact_id) others << row.str();
    }
  }
  data_dir_ = make_temp_dir("reai-identity-data");
  auto imported = run_reai({"import", "--data-dir", data_dir_, "--contacts", dir + "/contacts.csv", "--events",
                            dir + "/others.csv"});
  ASSERT_EQ(imported.exit_code, 0) << imported.output;
  start(trained_model_dir(), {"--clock", format_iso8601(at)});
  HttpClient http("127.0.0.1", port_);
  const std::string t = reai_token(lead->tenant_id, server::Role::kAgent, kSecret, at);  // at the pinned clock
  for (const auto& e : *events) {
    if (e.contact_id != lead->contact_id || e.ts > at) continue;
    json::object o;
    o["event_id"] = e.event_id;
    o["contact_id"] = e.contact_id;
    o["type"] = std::string(event_type_name(e.type));
    o["ts"] = format_iso8601(e.ts);
    if (!e.property_id.empty()) o["property_id"] = e.property_id;
    if (e.value) o["value"] = *e.value;
    ASSERT_EQ(http.post("/api/events", json::serialize(o), t).status, 200);
  }
  auto r = http.get("/api/contacts/" + lead->contact_id + "/score", t);
  ASSERT_EQ(r.status, 200) << r.body;
  const double served = parse_object(r.body).at("probability").to_number<double>();

  const std::string out = make_temp_dir("reai-replay") + "/scores.csv";
  auto replay = run_reai({"replay", "--model", trained_model_dir() + "/leads", "--contacts",
                          dir + "/contacts.csv", "--events", dir + "/events.csv", "--as-of-hours",
                          "48", "--out", out});
  ASSERT_EQ(replay.exit_code, 0) << replay.output;
  std::ifstream in(out);
  std::string line;
  double replayed = -1;
  while (std::getline(in, line)) {
    if (line.rfind(lead->contact_id + ",", 0) == 0) {
      std::stringstream ss(line);
      std::string id, hours, prob;
      std::getline(ss, id, ',');
      std::getline(ss, hours, ',');
      std::getline(ss, prob, ',');
      replayed = std::stod(prob);
    }
  }
  EXPECT_NEAR(served, replayed, 1e-6) << "lead " << lead->contact_id;
}

// XGBoost's OpenMP threads wait passively in the server (they spun against
// each other on a loaded machine), unless the user chose a policy.
TEST_F(ServerBinaryTest, OpenMpWaitsPassivelyUnlessTheUserChose) {
  auto policy = [&] {
    std::ifstream in("/proc/" + std::to_string(server_->pid()) + "/environ", std::ios::binary);
    std::string entry;
    while (std::getline(in, entry, '\0')) {
      if (entry.rfind("OMP_WAIT_POLICY=", 0) == 0) return entry.substr(16);
    }
    return std::string("(unset)");
  };
  const char* before = std::getenv("OMP_WAIT_POLICY");
  const std::string saved = before != nullptr ? before : "";
  ::unsetenv("OMP_WAIT_POLICY");
  start(make_temp_dir("reai-empty-models"));
  EXPECT_EQ(policy(), "passive");
  EXPECT_EQ(stop(), 0) << server_->log();
  ::setenv("OMP_WAIT_POLICY", "active", 1);
  start(make_temp_dir("reai-empty-models"));
  EXPECT_EQ(policy(), "active");
  EXPECT_EQ(stop(), 0) << server_->log();
  if (before != nullptr) {
    ::setenv("OMP_WAIT_POLICY", saved.c_str(), 1);
  } else {
    ::unsetenv("OMP_WAIT_POLICY");
  }
}

}  // namespace
}  // namespace reai::testing
