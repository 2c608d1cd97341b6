// Black-box tests of GoHighLevel write-back through the real `reai` binary
// against a fake GHL REST API (tests/support/fake_ghl.h): signed deliveries
// change scores and the score field and band tag reach GHL through 401, 429,
// 5xx and 422 answers; a kill -9 with deliveries pending, changes in memory
// and updates in the outbox loses nothing and resends nothing; a burst of 1,000 band changes stays within the rate limit; the
// OAuth install stores tokens sealed and rotates the refresh token; a lead
// turning hot moves its open opportunity to the tenant's hot stage exactly
// once (across a kill -9), never a won one, and not at all when it is off.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <csignal>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include "core/time.h"
#include "support/fake_ghl.h"
#include "support/ghl_signer.h"
#include "support/process.h"
#include "support/test_client.h"
#include "support/token.h"
#include "support/text_edit.h"

namespace reai::testing {
namespace {

namespace json = boost::json;

const std::string kSecret = kTestJwtSecret;
const std::string kLocation = "LOC8f2k1m9q0a7s6d5f4g";
const std::string kFixtureContact = "CONa1b2c3d4e5f6g7h8i9";
const std::string kClock = "2026-07-02T10:00:30Z";
// Tokens are issued at the pinned clock: a server refuses one issued after its now.
const UnixSeconds kIssuedAt = parse_iso8601(kClock).value();
const std::string kPit = "pit-7f3e9a";

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string write_file(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// A fixture delivery about `contact` (fresh timestamp, its own webhookId).
std::string delivery(const std::string& fixture, const std::string& contact, const std::string& location = kLocation) {
  std::string body = read_text("tests/fixtures/ghl/" + fixture);
  body = replace_all(body, kFixtureContact, contact);
  body = replace_all(body, kLocation, location);
  body = with_string_field(body, "timestamp", kClock);
  return with_string_field(body, "webhookId", "wh-" + fixture + "-" + contact);
}

// Polls `done` every 20 ms for at most `seconds`.
bool eventually(const std::function<bool()>& done, int seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return done();
}

class GhlWritebackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir("reai-ghl-wb");
    models_ = make_temp_dir("reai-ghl-wb-models");
    ed_key_ = write_file(dir_, "ed25519.pem", signer_.ed25519_public_pem());
    secret_key_ = write_file(dir_, "secret.key", std::string(64, 'c'));
    client_secret_ = write_file(dir_, "client.secret", "app-secret\n");
    token_file_ = write_file(dir_, "pit.txt", kPit + "\n");
    admin_ = reai_token("t1", server::Role::kAdmin, kSecret, kIssuedAt);
  }

  void link_tenant_with_pit() {
    auto add = run_reai({"tenant", "add", "--data-dir", dir_ + "/data", "--tenant", "t1", "--ghl-location", kLocation,
                         "--ghl-token-file", token_file_, "--secret-key-file", secret_key_});
    ASSERT_EQ(add.exit_code, 0) << add.output;
  }

  void start(const FakeGhl& ghl, const std::string& rate, std::vector<std::string> extra = {}) {
    port_ = free_port();
    std::vector<std::string> args = {"serve", "--port", std::to_string(port_), "--data-dir", dir_ + "/data",
                                     "--model-dir", models_, "--jwt-secret", kSecret, "--clock", kClock,
                                     "--ghl-ed25519-key", ed_key_, "--ghl-api-base", ghl.base_url(),
                                     "--secret-key-file", secret_key_, "--ghl-rate-limit", rate};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<ReaiProcess>(args);
    ASSERT_TRUE(server_->wait_for_port(port_)) << server_->log();
    http_ = std::make_unique<HttpClient>("127.0.0.1", port_);
  }

  int post_signed(const std::string& body) {
    return http_->request("POST", "/api/ghl/webhook", body, {}, {{"X-GHL-Signature", signer_.sign_ed25519(body)}})
        .status;
  }

  // reai's current score and band of a contact of `tenant` (-1 when none).
  std::pair<int, std::string> reai_score(const std::string& contact, const std::string& token) {
    auto r = http_->get("/api/contacts/" + contact + "/score", token);
    if (r.status != 200) return {-1, ""};
    auto o = json::parse(r.body).as_object();
    return {static_cast<int>(o.at("score").as_int64()), std::string(o.at("band").as_string())};
  }

  std::size_t pending_deliveries(const std::string& admin) {
    auto r = http_->get("/api/admin/ghl/deliveries?status=pending&limit=1000", admin);
    if (r.status != 200) return 1;  // unknown: not settled
    return json::parse(r.body).as_object().at("deliveries").as_array().size();
  }

  // A sample's value in /metrics (-1 when absent).
  long long metric(const std::string& sample) {
    const std::string body = http_->get("/metrics").body;
    const auto at = body.find("\n" + sample + " ");
    if (at == std::string::npos) return -1;
    return std::stoll(body.substr(at + sample.size() + 2));
  }

  std::size_t outbox_count(const std::string& status, const std::string& admin) {
    auto r = http_->get("/api/admin/ghl/outbox?status=" + status + "&limit=1000", admin);
    if (r.status != 200) return 0;
    return json::parse(r.body).as_object().at("updates").as_array().size();
  }

  GhlSigner signer_;
  std::string dir_, models_, ed_key_, secret_key_, client_secret_, token_file_, admin_;
  std::uint16_t port_ = 0;
  std::unique_ptr<ReaiProcess> server_;
  std::unique_ptr<HttpClient> http_;
};

TEST_F(GhlWritebackTest, ScoresAndBandTagsReachGhlThroughRetriesAndRefusals) {
  link_tenant_with_pit();
  FakeGhl ghl;
  ghl.accept_token(kPit);
  ghl.fail_next(1, 401);  // a private token is not refreshed: retried after a backoff
  start(ghl, "100/10", {"--ghl-score-interval", "1"});
  const std::string agent = reai_token("t1", server::Role::kAgent, kSecret, kIssuedAt);

  ASSERT_EQ(post_signed(delivery("contact_create.json", kFixtureContact)), 200);
  ASSERT_TRUE(eventually([&] { return ghl.scores().count(kFixtureContact) == 1; }, 30)) << server_->log();
  ghl.fail_next(2, 503);
  ghl.fail_every(4);
  ASSERT_EQ(post_signed(delivery("inbound_sms.json", kFixtureContact)), 200);
  ASSERT_EQ(post_signed(delivery("outbound_call.json", kFixtureContact)), 200);
  ASSERT_EQ(post_signed(delivery("appointment_create.json", kFixtureContact)), 200);
  // GHL ends with reai's latest score and exactly the matching band tag.
  std::pair<int, std::string> now;
  ASSERT_TRUE(eventually(
      [&] {
        now = reai_score(kFixtureContact, agent);
        auto scores = ghl.scores();
        return scores.count(kFixtureContact) && scores[kFixtureContact] == now.first &&
               ghl.tags(kFixtureContact) == std::set<std::string>{now.second + "-lead"};
      },
      60))
      << "reai " << now.first << " " << now.second << "\n" << server_->log();

  // A contact GHL refuses (422) is recorded failed with GHL's message; others go on.
  ghl.fail_every(0);
  ghl.refuse_contact("CONrefused01");
  ASSERT_EQ(post_signed(delivery("contact_create.json", "CONrefused01")), 200);
  ASSERT_EQ(post_signed(delivery("contact_create.json", "CONaccepted01")), 200);
  ASSERT_TRUE(eventually([&] { return ghl.scores().count("CONaccepted01") == 1; }, 30));
  auto failed = http_->get("/api/admin/ghl/outbox?status=failed", admin_);
  ASSERT_EQ(failed.status, 200) << failed.body;
  auto updates = json::parse(failed.body).as_object().at("updates").as_array();
  ASSERT_EQ(updates.size(), 1u) << failed.body;
  EXPECT_EQ(updates[0].as_object().at("contact_id").as_string(), "CONrefused01");
  EXPECT_NE(std::string(updates[0].as_object().at("error").as_string()).find("cannot be updated"), std::string::npos);
  EXPECT_EQ(http_->get("/api/admin/ghl/outbox?status=failed", agent).status, 403);
  EXPECT_EQ(http_->get("/api/admin/ghl/outbox?status=bogus", admin_).status, 400);

  // Unsigned and stale deliveries change nothing in GHL. The accepted
  // contact's tag requests may still be on their way: wait until the outbox
  // is drained and GHL has seen nothing new for a while before counting.
  std::size_t before = 0;
  ASSERT_TRUE(eventually(
      [&] {
        if (metric("reai_ghl_outbox_pending") != 0) return false;
        const auto seen = ghl.received().size();
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        before = ghl.received().size();
        return before == seen;
      },
      30));
  EXPECT_EQ(http_->post("/api/ghl/webhook", delivery("contact_create.json", "CONunsigned")).status, 401);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(ghl.received().size(), before);

  // What GHL received: the documented headers, never a tags replacement;
  // and the failures above really happened.
  int unauthorized = 0, unavailable = 0;
  for (const auto& r : ghl.received()) {
    unauthorized += r.status == 401;
    unavailable += r.status == 503;
    EXPECT_EQ(r.version, "2021-07-28") << r.target;
    EXPECT_EQ(r.authorization, "Bearer " + kPit) << r.target;
    if (r.method == "PUT") {
      EXPECT_EQ(r.body.find("\"tags\""), std::string::npos) << r.body;
    }
  }
  EXPECT_EQ(unauthorized, 1);
  EXPECT_GE(unavailable, 2);
  // /metrics counts the same requests by outcome; nothing is left pending.
  EXPECT_EQ(metric("reai_ghl_writeback_requests_total{outcome=\"unauthorized\"}"), 1);
  EXPECT_EQ(metric("reai_ghl_writeback_requests_total{outcome=\"retryable\"}"), unavailable);
  EXPECT_EQ(metric("reai_ghl_writeback_requests_total{outcome=\"refused\"}"), 1);  // the 422
  EXPECT_EQ(metric("reai_ghl_writeback_requests_total{outcome=\"rate_limited\"}"), 0);
  EXPECT_EQ(metric("reai_ghl_writeback_updates_total{result=\"failed\"}"), 1);
  EXPECT_GE(metric("reai_ghl_writeback_retries_total"), 3);
  long long ok = 0;
  for (const auto& r : ghl.received()) ok += r.status >= 200 && r.status < 300;
  EXPECT_EQ(metric("reai_ghl_writeback_requests_total{outcome=\"ok\"}"), ok);
  EXPECT_TRUE(eventually([&] { return metric("reai_ghl_outbox_pending") == 0; }, 10));
  EXPECT_EQ(metric("reai_ghl_outbox_oldest_pending_age_seconds"), 0);
  EXPECT_EQ(server_->stop(), 0) << server_->log();
}

TEST_F(GhlWritebackTest, KilledMidOutboxDeliversEveryPendingUpdateOnceAfterRestart) {
  link_tenant_with_pit();
  FakeGhl ghl(10, 1.0);
  ghl.accept_token(kPit);
  // Score-only changes are held in memory for an hour: any such change at
  // the kill exists only in memory (and in the score history), never in the
  // outbox, so the restart has to find it.
  const std::vector<std::string> hold = {"--ghl-score-interval", "3600"};
  start(ghl, "10/1", hold);
  const std::string agent = reai_token("t1", server::Role::kAgent, kSecret, kIssuedAt);
  constexpr int kContacts = 30;
  constexpr int kMessaged = 10;
  auto contact = [](int i) { return "CONkill" + std::to_string(i); };
  for (int i = 0; i < kContacts; ++i) ASSERT_EQ(post_signed(delivery("contact_create.json", contact(i))), 200);
  ASSERT_TRUE(eventually([&] { return ghl.put_counts().size() >= 3; }, 30)) << server_->log();
  // More changes, then kill -9 straight after the last answer: deliveries
  // still pending (processed again on start), changes in memory only, and
  // updates in the outbox, all at once.
  for (int i = 0; i < kMessaged; ++i) ASSERT_EQ(post_signed(delivery("inbound_sms.json", contact(i))), 200);
  EXPECT_EQ(server_->stop(SIGKILL), 128 + SIGKILL);
  const auto sent_before = ghl.put_counts().size();
  EXPECT_LT(sent_before, std::size_t(kContacts)) << "the kill came too late to test anything";

  start(ghl, "10/1", hold);
  // Nothing lost: GHL ends with reai's current score and exactly its band
  // tag on every contact.
  std::string differs;
  ASSERT_TRUE(eventually(
      [&] {
        auto scores = ghl.scores();
        for (int i = 0; i < kContacts; ++i) {
          auto [score, band] = reai_score(contact(i), agent);
          if (!scores.count(contact(i)) || scores[contact(i)] != score ||
              ghl.tags(contact(i)) != std::set<std::string>{band + "-lead"}) {
            differs = contact(i) + " reai " + std::to_string(score) + " " + band;
            return false;
          }
        }
        return true;
      },
      90))
      << differs << "\n" << server_->log();
  ASSERT_TRUE(eventually([&] { return outbox_count("pending", admin_) == 0; }, 30));
  EXPECT_EQ(pending_deliveries(admin_), 0u);
  // Nothing twice: a contact gets one PUT per score it went through (one
  // from the create, one more for a message that changed it). The one
  // update whose 2xx may have come just before the kill (before reai
  // recorded it) may be sent again, harmlessly (same value).
  const std::string initial_score_probe = contact(kContacts - 1);
  const int created_score = reai_score(initial_score_probe, agent).first;
  int over = 0;
  int total = 0;
  for (const auto& [id, n] : ghl.put_counts()) {
    total += n;
    const int index = std::stoi(id.substr(std::string("CONkill").size()));
    const bool changed = index < kMessaged && reai_score(id, agent).first != created_score;
    const int expected = changed ? 2 : 1;
    EXPECT_LE(n, expected + 1) << id;
    if (n > expected) ++over;
  }
  EXPECT_LE(over, 1);
  EXPECT_LE(total, kContacts + kMessaged + 1);
  EXPECT_EQ(outbox_count("failed", admin_), 0u);
  EXPECT_EQ(server_->stop(), 0) << server_->log();
}

TEST_F(GhlWritebackTest, ABurstOfOneThousandBandChangesStaysWithinTheRateLimitAndLosesNone) {
  link_tenant_with_pit();
  // GHL's 100 requests per 10 s, with the window shortened to 1 s so the
  // test's 3,002 requests take ~30 s instead of ~5 minutes.
  FakeGhl ghl(100, 1.0);
  ghl.accept_token(kPit);
  start(ghl, "100/1");
  constexpr int kContacts = 1000;
  for (int i = 0; i < kContacts; ++i) {
    ASSERT_EQ(post_signed(delivery("contact_create.json", "CONburst" + std::to_string(i))), 200);
  }
  ASSERT_TRUE(eventually(
      [&] {
        auto puts = ghl.put_counts();
        return puts.size() == std::size_t(kContacts);
      },
      100))
      << ghl.put_counts().size() << " of " << kContacts << "\n" << server_->log();
  ASSERT_TRUE(eventually([&] { return outbox_count("sent", admin_) == std::size_t(kContacts); }, 30));
  for (int i = 0; i < kContacts; ++i) {
    EXPECT_EQ(ghl.tags("CONburst" + std::to_string(i)).size(), 1u) << i;
  }
  EXPECT_LE(ghl.max_in_window(), 100);
  EXPECT_EQ(ghl.too_many_requests(), 0);
  EXPECT_EQ(outbox_count("pending", admin_), 0u);
  EXPECT_EQ(server_->stop(), 0) << server_->log();
}

TEST_F(GhlWritebackTest, OAuthInstallStoresSealedTokensAndRotatesTheRefreshToken) {
  FakeGhl ghl;
  ghl.add_oauth_code("code-1", "LOCoauth01");
  const std::vector<std::string> oauth = {"--ghl-client-id", "app-id", "--ghl-client-secret-file", client_secret_};
  start(ghl, "100/10", oauth);
  EXPECT_EQ(http_->get("/api/ghl/oauth/callback").status, 400);
  EXPECT_EQ(http_->post("/api/ghl/oauth/callback?code=code-1", "").status, 405);  // a redirect is a GET
  auto bad = http_->get("/api/ghl/oauth/callback?code=wrong");
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_NE(bad.body.find("invalid code"), std::string::npos) << bad.body;
  auto ok = http_->get("/api/ghl/oauth/callback?code=code-1");
  ASSERT_EQ(ok.status, 200) << ok.body << server_->log();
  EXPECT_EQ(json::parse(ok.body).as_object().at("tenant_id").as_string(), "LOCoauth01");

  ASSERT_EQ(post_signed(delivery("contact_create.json", "CONoauth1", "LOCoauth01")), 200);
  ASSERT_TRUE(eventually([&] { return ghl.put_counts().count("CONoauth1") == 1; }, 30)) << server_->log();
  // The access token stops working: reai refreshes once (rt-1, rotated) and retries.
  ghl.revoke_token("at-1");
  ASSERT_EQ(post_signed(delivery("contact_create.json", "CONoauth2", "LOCoauth01")), 200);
  ASSERT_TRUE(eventually([&] { return ghl.put_counts().count("CONoauth2") == 1; }, 30)) << server_->log();
  EXPECT_EQ(ghl.refreshes(), std::vector<std::string>{"rt-1"});
  EXPECT_EQ(metric("reai_ghl_token_refreshes_total{result=\"ok\"}"), 1);
  EXPECT_EQ(metric("reai_ghl_token_refreshes_total{result=\"failed\"}"), 0);
  EXPECT_EQ(server_->stop(), 0) << server_->log();

  // Tokens are sealed at rest; after a restart the rotated ones are used.
  const std::string db = read_text(dir_ + "/data/reai.db") + read_text(dir_ + "/data/reai.db-wal");
  for (const std::string plain : {"at-1", "at-2", "rt-1", "rt-2"}) EXPECT_EQ(db.find(plain), std::string::npos) << plain;
  start(ghl, "100/10", oauth);
  ASSERT_EQ(post_signed(delivery("contact_create.json", "CONoauth3", "LOCoauth01")), 200);
  ASSERT_TRUE(eventually([&] { return ghl.put_counts().count("CONoauth3") == 1; }, 30)) << server_->log();
  EXPECT_EQ(ghl.received().back().authorization, "Bearer at-2");
  EXPECT_EQ(ghl.refreshes().size(), 1u);
  EXPECT_EQ(server_->stop(), 0) << server_->log();
}

// `reai ghl sync`: pages through GHL's contacts and opportunities within the
// rate limit, stops on a refusal with its cursor stored, resumes there, and
// a restarted sync stores nothing new.
TEST_F(GhlWritebackTest, SyncPullsContactsAndOpportunitiesPageByPageAndResumes) {
  link_tenant_with_pit();
  const std::string map = write_file(dir_, "map.json", R"({"budget":"fldBudget","stages":{"stg-offer":"offer"}})");
  auto mapped = run_reai({"tenant", "add", "--data-dir", dir_ + "/data", "--tenant", "t1", "--ghl-field-map", map});
  ASSERT_EQ(mapped.exit_code, 0) << mapped.output;
  ASSERT_EQ(run_reai({"tenant", "add", "--data-dir", dir_ + "/data", "--tenant", "unlinked"}).exit_code, 0);
  FakeGhl ghl(3, 1.0);
  ghl.accept_token(kPit);
  constexpr int kContacts = 250;
  constexpr int kOpportunities = 30;
  auto id = [](const char* prefix, int i) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%s%03d", prefix, i);
    return std::string(buf);
  };
  for (int i = 0; i < kContacts; ++i) {
    ghl.add_contact_record(R"({"id":")" + id("CONsync", i) + R"(","locationId":")" + kLocation +
                           R"(","email":"a@b.c","dateAdded":"2026-06-01T10:00:00.000Z","customFields":[{"id":"fldBudget","value":"$450,000"}]})");
  }
  for (int i = 0; i < kOpportunities; ++i) {
    ghl.add_opportunity_record(R"({"id":")" + id("OPPsync", i) + R"(","contactId":")" + id("CONsync", i) +
                               R"(","status":"open","pipelineStageId":"stg-offer","monetaryValue":9000,"lastStageChangeAt":"2026-06-20T10:00:00.000Z"})");
  }
  auto sync = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"ghl", "sync", "--data-dir", dir_ + "/data", "--secret-key-file", secret_key_,
                                     "--ghl-api-base", ghl.base_url(), "--ghl-rate-limit", "3/1", "--page-size", "50"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_reai(args);
  };
  // Bad input: no tenant, an unknown or unlinked one, a page size GHL refuses.
  EXPECT_EQ(sync({}).exit_code, 2);
  auto unknown = sync({"--tenant", "nobody"});
  EXPECT_EQ(unknown.exit_code, 2) << unknown.output;
  auto unlinked = sync({"--tenant", "unlinked"});
  EXPECT_EQ(unlinked.exit_code, 1) << unlinked.output;
  EXPECT_NE(unlinked.output.find("not linked"), std::string::npos) << unlinked.output;
  EXPECT_EQ(sync({"--tenant", "t1", "--page-size", "0"}).exit_code, 2);
  EXPECT_EQ(sync({"--tenant", "t1", "--page-size", "101"}).exit_code, 2);
  EXPECT_TRUE(ghl.received().empty());

  // GHL refuses the 4th page: 3 pages (150 contacts) are stored, the sync stops.
  ghl.fail_lists_from(4, 400);
  auto stopped = sync({"--tenant", "t1"});
  EXPECT_EQ(stopped.exit_code, 2) << stopped.output;
  EXPECT_NE(stopped.output.find("injected list failure"), std::string::npos) << stopped.output;
  // The rerun resumes after the 150th contact, through two 503s.
  ghl.fail_lists_from(0, 0);
  ghl.fail_next(2, 503);
  const std::size_t before = ghl.received().size();
  auto resumed = sync({"--tenant", "t1"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("100 contacts, 30 opportunities (30 new stage rows) in 4 pages (resumed)"),
            std::string::npos)
      << resumed.output;
  const auto received = ghl.received();
  ASSERT_GT(received.size(), before);
  EXPECT_NE(received[before].target.find("startAfterId=CONsync149"), std::string::npos) << received[before].target;
  int lists = 0;
  for (const auto& r : received) {
    lists += r.target.rfind("/contacts/?", 0) == 0 || r.target.rfind("/opportunities/search?", 0) == 0;
    EXPECT_EQ(r.authorization, "Bearer " + kPit);
    EXPECT_EQ(r.version, "2021-07-28");
  }
  EXPECT_EQ(lists, static_cast<int>(received.size()));
  // Each run paces itself; back-to-back runs (separate processes) may meet a
  // 429 at the seam, which is retried. GHL never accepted more than its limit.
  EXPECT_LE(ghl.max_in_window(), 3);

  // Finished: a rerun reads nothing; --restart reads everything, stores nothing new.
  auto again = sync({"--tenant", "t1"});
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("0 contacts, 0 opportunities (0 new stage rows) in 0 pages"), std::string::npos)
      << again.output;
  auto restart = sync({"--tenant", "t1", "--restart"});
  ASSERT_EQ(restart.exit_code, 0) << restart.output;
  EXPECT_NE(restart.output.find("250 contacts, 30 opportunities (0 new stage rows) in 7 pages"), std::string::npos)
      << restart.output;
  auto list = run_reai({"tenant", "list", "--data-dir", dir_ + "/data"});
  ASSERT_EQ(list.exit_code, 0) << list.output;
  EXPECT_NE(list.output.find("t1,t1,250,0,"), std::string::npos) << list.output;

  // The synced contacts carry their mapped fields and score once served.
  start(ghl, "3/1");
  auto contact = http_->get("/api/contacts/CONsync005", reai_token("t1", server::Role::kAgent, kSecret, kIssuedAt));
  ASSERT_EQ(contact.status, 200) << contact.body;
  EXPECT_EQ(json::parse(contact.body).as_object().at("budget").to_number<double>(), 450000) << contact.body;
  EXPECT_EQ(server_->stop(), 0) << server_->log();
}

// A delivery of `fixture` about `contact` whose message/appointment ids are
// the contact's own (GHL ids become event ids, unique per tenant).
std::string own_delivery(const std::string& fixture, const std::string& contact) {
  std::string body = delivery(fixture, contact);
  for (const std::string id : {"MSGq1w2e3r4t5y6u7i8o9", "MSGcall0001", "MSGcall0002", "MSGemail0002", "MSGsms0003",
                               "APTz9y8x7w6v5", "TASK01", "NOTE01"}) {
    body = replace_all(body, id, id + "-" + contact);
  }
  return body;
}

// The deliveries that take a new contact from its first score to hot (with
// the budget and pre-approval fields mapped): stated budget, pre-approved,
// replies to outreach, a booked showing.
const std::vector<std::string> kToHot = {"contact_create.json", "outbound_sms.json", "inbound_sms.json",
                                         "inbound_call_misnamed.json", "inbound_email.json", "appointment_create.json"};

TEST_F(GhlWritebackTest, TurningHotMovesTheOpenOpportunityToTheHotStageOnceAndNeverAWonOne) {
  link_tenant_with_pit();
  auto add = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"tenant", "add", "--data-dir", dir_ + "/data", "--tenant", "t1"};
    args.insert(args.end(), extra.begin(), extra.end());
    return run_reai(args);
  };
  // Bad configuration is refused and stores nothing.
  for (const char* bad : {"pipeSales", "pipeSales:", ":stgHot", "pipe Sales:stgHot", "pipeSales:stg/Hot"}) {
    auto r = add({"--ghl-hot-stage", bad});
    EXPECT_EQ(r.exit_code, 2) << bad << ": " << r.output;
    EXPECT_NE(r.output.find("--ghl-hot-stage"), std::string::npos) << r.output;
  }
  const std::string map = write_file(dir_, "map.json", R"({"budget":"fBudget01","pre_approval":"fPreApp01"})");
  auto configured = add({"--ghl-hot-stage", "pipeSales:stgHot", "--ghl-field-map", map});
  ASSERT_EQ(configured.exit_code, 0) << configured.output;

  FakeGhl ghl;
  ghl.accept_token(kPit);
  ghl.add_pipeline(R"({"id":"pipeSales","name":"Sales","stages":[{"id":"stgNew","position":0},)"
                   R"({"id":"stgHot","position":1},{"id":"stgOffer","position":2}]})");
  auto opportunity = [&](const std::string& id, const std::string& contact, const std::string& status) {
    ghl.add_opportunity_record(R"({"id":")" + id + R"(","contactId":")" + contact +
                               R"(","pipelineId":"pipeSales","pipelineStageId":"stgNew","status":")" + status + R"("})");
  };
  opportunity("OPPhot", "CONhot", "open");
  opportunity("OPPwon", "CONwon", "won");
  opportunity("OPPoff", "CONoff", "open");
  start(ghl, "100/10");
  const std::string agent = reai_token("t1", server::Role::kAgent, kSecret, kIssuedAt);
  auto config = http_->get("/api/admin/ghl/config", admin_);
  ASSERT_EQ(config.status, 200) << config.body;
  EXPECT_EQ(json::parse(config.body).at("hot_stage").at("stage_id").as_string(), "stgHot") << config.body;
  auto stage_rows = [&](const std::string& status) {
    std::vector<json::object> out;
    auto r = http_->get("/api/admin/ghl/outbox?status=" + status + "&limit=1000", admin_);
    if (r.status != 200) return out;
    const json::value list = json::parse(r.body);
    for (const auto& u : list.at("updates").as_array()) {
      if (u.at("kind") == "stage") out.push_back(u.as_object());
    }
    return out;
  };
  auto turn_hot = [&](const std::string& contact) {
    for (const auto& fixture : kToHot) {
      ASSERT_EQ(post_signed(own_delivery(fixture, contact)), 200) << fixture;
    }
    ASSERT_TRUE(eventually([&] { return reai_score(contact, agent).second == "hot"; }, 30))
        << contact << " is " << reai_score(contact, agent).second << "\n" << server_->log();
  };

  // GHL is down while CONhot turns hot: the move waits in the outbox, and a
  // kill -9 does not lose it.
  ghl.set_down(true);
  turn_hot("CONhot");
  ASSERT_TRUE(eventually([&] { return stage_rows("pending").size() == 1; }, 30)) << server_->log();
  EXPECT_EQ(server_->stop(SIGKILL), 128 + SIGKILL);
  ghl.set_down(false);
  start(ghl, "100/10");
  ASSERT_TRUE(eventually([&] { return stage_rows("sent").size() == 1; }, 60)) << server_->log();
  EXPECT_EQ(ghl.stage_moves(), (std::vector<std::pair<std::string, std::string>>{{"OPPhot", "stgHot"}}));
  EXPECT_EQ(ghl.tags("CONhot"), std::set<std::string>{"hot-lead"});

  // A won opportunity is never moved; its row says why.
  turn_hot("CONwon");
  ASSERT_TRUE(eventually([&] { return stage_rows("sent").size() == 2; }, 30)) << server_->log();
  EXPECT_EQ(ghl.opportunity_stage("OPPwon"), "stgNew");
  bool won_noted = false;
  for (const auto& row : stage_rows("sent")) won_noted = won_noted || row.at("error") == "not moved: OPPwon is won";
  EXPECT_TRUE(won_noted);

  // Still hot, replayed deliveries, a restart: no second move.
  ASSERT_EQ(post_signed(own_delivery("outbound_call.json", "CONhot")), 200);
  ASSERT_EQ(post_signed(own_delivery("appointment_create.json", "CONhot")), 200);  // a replay
  ASSERT_TRUE(eventually([&] { return pending_deliveries(admin_) == 0; }, 30));
  EXPECT_EQ(reai_score("CONhot", agent).second, "hot");
  EXPECT_EQ(server_->stop(), 0) << server_->log();
  start(ghl, "100/10");

  // Turned off through the admin route: CONoff turns hot, nothing moves.
  auto off = http_->put("/api/admin/ghl/config", R"({"hot_stage":null})", admin_);
  ASSERT_EQ(off.status, 200) << off.body;
  EXPECT_EQ(http_->put("/api/admin/ghl/config", R"({"hot_stage":{"pipeline_id":"pipeSales"}})", admin_).status, 400);
  turn_hot("CONoff");
  ASSERT_TRUE(eventually([&] { return ghl.tags("CONoff") == std::set<std::string>{"hot-lead"}; }, 30))
      << server_->log();
  ASSERT_TRUE(eventually([&] { return outbox_count("pending", admin_) == 0; }, 30));
  EXPECT_EQ(stage_rows("sent").size(), 2u);
  EXPECT_EQ(ghl.opportunity_stage("OPPoff"), "stgNew");
  int puts = 0;
  for (const auto& r : ghl.received()) puts += r.method == "PUT" && r.target.rfind("/opportunities/", 0) == 0;
  EXPECT_EQ(puts, 1);
  EXPECT_EQ(ghl.stage_moves().size(), 1u);
  EXPECT_EQ(metric("reai_ghl_writeback_stage_moves_total"), 0);  // this run moved nothing
  EXPECT_EQ(outbox_count("failed", admin_), 0u);
  EXPECT_EQ(server_->stop(), 0) << server_->log();
}

}  // namespace
}  // namespace reai::testing
