// GhlWriteback in process: the filler's pacing (band changes at once,
// score-only changes held for the interval, unlinked tenants skipped), the
// sender's ordering (a contact's newer update supersedes an older one unless
// the older one moved the band), hot-stage moves, and the backfill fed behind
// fresh changes, against the fake GHL REST API.
#include "server/ghl_writeback.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <future>
#include <sstream>
#include <thread>

#include "ghl/writeback.h"
#include "support/fake_ghl.h"

namespace reai::server {
namespace {

using reai::testing::FakeGhl;

bool eventually(const std::function<bool()>& done, int seconds = 20) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

class GhlWritebackUnitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    box_ = ghl::SecretBox::from_key(std::string(32, 'k')).value();
    ASSERT_TRUE(store_->upsert_tenant({"t1", "One", 1, "LOC1"}).is_ok());
    ASSERT_TRUE(store_->upsert_tenant({"t2", "Two", 1, ""}).is_ok());
    ASSERT_TRUE(store_->put_ghl_token({"t1", "private", box_->seal("pit-1"), "", 0, 1}).is_ok());
    ghl_.accept_token("pit-1");
  }

  std::unique_ptr<GhlWriteback> start(double score_interval_s, std::size_t backfill_batch = 20, int rate = 100,
                                      double period_s = 10) {
    GhlWritebackConfig c;
    c.api_base = ghl_.base_url();
    c.score_interval_s = score_interval_s;
    c.secret_box = box_;
    c.backfill_batch = backfill_batch;
    c.rate_capacity = rate;
    c.rate_period_s = period_s;
    return GhlWriteback::create(*store_, c).value();
  }

  // A writer with the OAuth client configured; a tenant whose grant GHL
  // refused looks for a new token every 20 ms, so a refresh it should not
  // try would show at once.
  std::unique_ptr<GhlWriteback> start_oauth() {
    GhlWritebackConfig c;
    c.api_base = ghl_.base_url();
    c.score_interval_s = 3600;
    c.secret_box = box_;
    c.oauth = ghl::OAuthClient{"app-id", "app-secret"};
    c.reauth_recheck_s = 0.02;
    return GhlWriteback::create(*store_, c).value();
  }
  // The OAuth callback's exchange of `code` (t1 is linked to LOC1).
  void install(GhlWriteback& wb, const std::string& code) {
    std::promise<Result<std::string>> done;
    auto tenant = done.get_future();
    wb.exchange_code(code, [&](Result<std::string> r) { done.set_value(std::move(r)); });
    const auto r = tenant.get();
    ASSERT_TRUE(r) << r.status().to_string();
    EXPECT_EQ(*r, "t1");
  }
  int requests_with(const std::string& bearer, int status) {
    int n = 0;
    for (const auto& r : ghl_.received()) n += r.authorization == "Bearer " + bearer && r.status == status;
    return n;
  }

  // t1's sales pipeline in GHL: new -> contacted -> hot -> offer.
  void add_sales_pipeline() {
    ghl_.add_pipeline(R"({"id":"pipeSales","name":"Sales","stages":[{"id":"stgNew","position":0},)"
                      R"({"id":"stgContacted","position":1},{"id":"stgHot","position":2},{"id":"stgOffer","position":3}]})");
  }
  void add_opportunity(const std::string& id, const std::string& contact, const std::string& stage,
                       const std::string& status) {
    ghl_.add_opportunity_record(R"({"id":")" + id + R"(","contactId":")" + contact +
                                R"(","pipelineId":"pipeSales","pipelineStageId":")" + stage + R"(","status":")" +
                                status + R"("})");
  }
  void set_hot_stage(const std::string& pipeline, const std::string& stage) {
    ASSERT_TRUE(store_->update_ghl_settings("t1", {.hot_stage = store::GhlSettingsChange::HotStage{pipeline, stage}}).is_ok());
  }
  std::vector<store::GhlUpdate> stage_rows(store::OutboxStatus status) {
    std::vector<store::GhlUpdate> all = store_->list_ghl_updates("t1", status, 1000).value();
    std::vector<store::GhlUpdate> out;
    for (auto& u : all) {
      if (u.kind == "stage") out.push_back(std::move(u));
    }
    return out;
  }
  int requests_to(const std::string& method, const std::string& prefix) {
    int n = 0;
    for (const auto& r : ghl_.received()) n += r.method == method && r.target.rfind(prefix, 0) == 0;
    return n;
  }

  std::size_t rows(const std::string& tenant, store::OutboxStatus status) {
    return store_->list_ghl_updates(tenant, status, 1000).value().size();
  }

  std::unique_ptr<store::Store> store_ = store::make_memory_store();
  std::optional<ghl::SecretBox> box_;
  FakeGhl ghl_;
};

TEST_F(GhlWritebackUnitTest, BandChangesGoAtOnceScoreOnlyChangesAreHeldAndUnlinkedTenantsSkipped) {
  auto wb = start(3600);
  wb->on_score("t1", "c1", 40, "warm");
  wb->on_score("t1", "c1", 45, "warm");  // within the interval: held
  wb->on_score("t1", "c1", 47, "warm");  // replaces the held one
  wb->on_score("t2", "c9", 90, "hot");    // not linked to GHL
  wb->flush();
  EXPECT_EQ(rows("t2", store::OutboxStatus::kPending) + rows("t2", store::OutboxStatus::kSent), 0u);
  ASSERT_TRUE(eventually([&] { return rows("t1", store::OutboxStatus::kSent) == 1; }));
  EXPECT_EQ(ghl_.scores().at("c1"), 40);
  EXPECT_EQ(ghl_.tags("c1"), (std::set<std::string>{"warm-lead"}));
  wb->on_score("t1", "c1", 80, "hot");  // a band change goes at once, with the newest score
  ASSERT_TRUE(eventually([&] { return rows("t1", store::OutboxStatus::kSent) == 2; }));
  EXPECT_EQ(ghl_.scores().at("c1"), 80);
  EXPECT_EQ(ghl_.tags("c1"), (std::set<std::string>{"hot-lead"}));
  // A held score-only change is written to the outbox at stop, not lost.
  wb->on_score("t1", "c1", 82, "hot");
  wb->flush();
  EXPECT_EQ(rows("t1", store::OutboxStatus::kPending), 0u);
  wb->stop();
  auto pending = store_->list_ghl_updates("t1", store::OutboxStatus::kPending, 10).value();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(ghl::parse_score_change(pending[0].payload_json).value().score, 82);
  const auto stats = wb->stats();
  EXPECT_EQ(stats.dropped, 0u);
  EXPECT_EQ(stats.enqueued, 3u);  // 40 warm, 80 hot, then the held 82 at stop
  EXPECT_EQ(stats.sent, 2u);
  // 2 custom-field calls, then PUT + tag add + tag remove per band change.
  EXPECT_EQ(stats.requests_ok, 8u);
  EXPECT_EQ(stats.requests_429 + stats.requests_retry + stats.requests_401 + stats.requests_refused, 0u);
  const std::string text = ghl_writeback_metrics(stats);
  EXPECT_NE(text.find("\nreai_ghl_writeback_requests_total{outcome=\"ok\"} 8\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nreai_ghl_writeback_updates_total{result=\"sent\"} 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("# TYPE reai_ghl_outbox_pending gauge\n"), std::string::npos) << text;
}

TEST_F(GhlWritebackUnitTest, ScoreOnlyChangesGoOncePerInterval) {
  auto wb = start(0.2);
  wb->on_score("t1", "c2", 10, "cold");
  wb->on_score("t1", "c2", 11, "cold");
  wb->on_score("t1", "c2", 12, "cold");
  ASSERT_TRUE(eventually([&] { return ghl_.scores().count("c2") && ghl_.scores().at("c2") == 12; }));
  EXPECT_EQ(ghl_.put_counts().at("c2"), 2);  // the band change, then the newest held score
}

TEST_F(GhlWritebackUnitTest, NewerUpdatesSupersedeOlderOnesButNeverABandChange) {
  // Left by an earlier run: all pending when the worker starts.
  const std::string tenant = "t1", contact = "c3", kind = "score";
  for (const auto& change : {ghl::ScoreChange{10, "cold", true}, ghl::ScoreChange{20, "cold", false},
                             ghl::ScoreChange{30, "cold", false}}) {
    store::GhlUpdate u{0, tenant, contact, kind, ghl::score_change_json(change), 1, store::OutboxStatus::kPending, 0, 0, ""};
    ASSERT_TRUE(store_->enqueue_ghl_update(u).has_value());
  }
  auto wb = start(60);
  ASSERT_TRUE(eventually([&] { return rows("t1", store::OutboxStatus::kPending) == 0; }));
  EXPECT_EQ(ghl_.put_counts().at("c3"), 2);  // 10 (moves the band), then 30; 20 superseded
  EXPECT_EQ(ghl_.scores().at("c3"), 30);
  EXPECT_EQ(ghl_.tags("c3"), (std::set<std::string>{"cold-lead"}));
  auto sent = store_->list_ghl_updates("t1", store::OutboxStatus::kSent, 10).value();
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_NE(sent[1].error.find("superseded"), std::string::npos);
}

// A row no code of ours writes (a hand-edited outbox, a future format) is
// failed with the reason and counted; the contact's readable update and
// other contacts' updates still go.
TEST_F(GhlWritebackUnitTest, AnUnreadablePayloadIsRecordedFailedAndNothingElseWaitsForIt) {
  auto enqueue = [&](const std::string& contact, const std::string& kind, const std::string& payload) {
    store::GhlUpdate u{0, "t1", contact, kind, payload, 1, store::OutboxStatus::kPending, 0, 0, ""};
    ASSERT_TRUE(store_->enqueue_ghl_update(u).has_value());
  };
  enqueue("c5", "score", ghl::score_change_json({55, "warm", true}));
  enqueue("c5", "score", "{not json");
  enqueue("c6", "stage", "[]");
  enqueue("c6", "score", ghl::score_change_json({20, "cold", true}));
  auto wb = start(3600);
  ASSERT_TRUE(eventually([&] { return rows("t1", store::OutboxStatus::kPending) == 0; }));
  EXPECT_EQ(ghl_.scores().at("c5"), 55);  // not superseded by a newer row nobody can read
  EXPECT_EQ(ghl_.scores().at("c6"), 20);
  auto failed = store_->list_ghl_updates("t1", store::OutboxStatus::kFailed, 10).value();
  ASSERT_EQ(failed.size(), 2u);
  EXPECT_EQ(failed[0].error, "unreadable payload");
  EXPECT_EQ(failed[1].error.rfind("unreadable payload: ", 0), 0u) << failed[1].error;
  EXPECT_EQ(rows("t1", store::OutboxStatus::kSent), 2u);
  EXPECT_EQ(wb->stats().failed, 2u);
  EXPECT_EQ(wb->stats().sent, 2u);
}

TEST_F(GhlWritebackUnitTest, AChangeAlreadyEnqueuedBeforeARestartIsNotEnqueuedAgain) {
  {
    auto wb = start(3600);
    wb->on_score("t1", "c4", 70, "hot");
    wb->flush();
    wb->stop();
  }
  ASSERT_EQ(rows("t1", store::OutboxStatus::kPending) + rows("t1", store::OutboxStatus::kSent), 1u);
  // A new process (nothing in memory) sees the same score again, as when a
  // delivery pending at a crash is processed a second time.
  auto wb = start(3600);
  wb->on_score("t1", "c4", 70, "hot");
  wb->flush();
  EXPECT_EQ(wb->stats().unchanged, 1u);
  EXPECT_EQ(wb->stats().enqueued, 0u);
  // A band change against the stored state still goes, marked as one.
  wb->on_score("t1", "c4", 50, "warm");
  wb->flush();
  ASSERT_TRUE(eventually([&] { return ghl_.tags("c4") == std::set<std::string>{"warm-lead"}; })) << ghl_.received().size();
  EXPECT_EQ(ghl_.scores().at("c4"), 50);
  auto states = store_->list_ghl_contact_states("t1").value();
  ASSERT_EQ(states.size(), 1u);
  EXPECT_EQ(states[0].score, 50);
  EXPECT_EQ(states[0].band, "warm");
}

TEST_F(GhlWritebackUnitTest, ReconcileEnqueuesWhatTheOutboxMissedAndNothingElse) {
  std::vector<store::GhlUpdate> none;
  std::vector<store::GhlContactState> enqueued = {{"t1", "moved", 40, "warm", 1},
                                                  {"t1", "same", 55, "warm", 1},
                                                  {"t1", "drifted", 60, "warm", 1},
                                                  {"t1", "held", 30, "cold", 1}};
  ASSERT_TRUE(store_->enqueue_ghl_writeback(none, enqueued).has_value());
  // "drifted": its last recorded score is the enqueued one (only time moved);
  // "held": reai recorded 35 but the crash came before it reached the outbox.
  ASSERT_TRUE(store_->append_score({"t1", "drifted", 10, 0.5, 60, "warm", "m", "[]"}).is_ok());
  ASSERT_TRUE(store_->append_score({"t1", "held", 10, 0.3, 35, "cold", "m", "[]"}).is_ok());
  auto wb = start(3600);
  wb->reconcile({{"t1", "moved", 85, "hot"},
                 {"t1", "same", 55, "warm"},
                 {"t1", "drifted", 58, "warm"},
                 {"t1", "held", 35, "cold"},
                 {"t1", "never", 20, "cold"},
                 {"t2", "unlinked", 90, "hot"}});
  ASSERT_TRUE(eventually([&] { return wb->stats().reconciled == 3; })) << wb->stats().reconciled;
  ASSERT_TRUE(eventually([&] { return rows("t1", store::OutboxStatus::kSent) == 3; }));
  auto scores = ghl_.scores();
  EXPECT_EQ(scores.size(), 3u);
  EXPECT_EQ(scores.at("moved"), 85);
  EXPECT_EQ(scores.at("held"), 35);
  EXPECT_EQ(scores.at("never"), 20);
  EXPECT_EQ(ghl_.tags("moved"), (std::set<std::string>{"hot-lead"}));
  EXPECT_EQ(ghl_.tags("never"), (std::set<std::string>{"cold-lead"}));
  EXPECT_TRUE(ghl_.tags("held").empty());  // a score-only change touches no tag
  EXPECT_EQ(rows("t2", store::OutboxStatus::kPending) + rows("t2", store::OutboxStatus::kSent), 0u);
}

TEST_F(GhlWritebackUnitTest, TheScoreFieldIdIsLookedUpOncePerLocationAcrossRestarts) {
  auto custom_field_calls = [&] {
    int n = 0;
    for (const auto& r : ghl_.received()) n += r.target.find("/customFields") != std::string::npos;
    return n;
  };
  {
    auto wb = start(3600);
    wb->on_score("t1", "c5", 10, "cold");
    ASSERT_TRUE(eventually([&] { return ghl_.put_counts().count("c5") == 1; }));
    wb->stop();
  }
  const int first = custom_field_calls();
  EXPECT_EQ(first, 2);  // list (absent), then create
  const auto stored = store_->get_ghl_custom_field("t1", "LOC1", std::string(ghl::kScoreFieldKey)).value();
  EXPECT_FALSE(stored.field_id.empty());
  auto wb = start(3600);
  wb->on_score("t1", "c6", 90, "hot");
  ASSERT_TRUE(eventually([&] { return ghl_.put_counts().count("c6") == 1; }));
  EXPECT_EQ(custom_field_calls(), first);
  bool put_with_stored_id = false;
  for (const auto& r : ghl_.received()) {
    if (r.method == "PUT" && r.target == "/contacts/c6") put_with_stored_id = r.body.find(stored.field_id) != std::string::npos;
  }
  EXPECT_TRUE(put_with_stored_id);
}

TEST_F(GhlWritebackUnitTest, OAuthExchangeNeedsConfiguration) {
  auto wb = start(60);
  std::promise<Result<std::string>> done;
  wb->exchange_code("c", [&](Result<std::string> r) { done.set_value(std::move(r)); });
  EXPECT_EQ(done.get_future().get().status().code(), StatusCode::kFailedPrecondition);
}

TEST_F(GhlWritebackUnitTest, TurningHotMovesTheOpenOpportunityOnceAndNeverAWonOne) {
  add_sales_pipeline();
  set_hot_stage("pipeSales", "stgHot");
  add_opportunity("oOpen", "c7", "stgNew", "open");
  add_opportunity("oWon", "c7", "stgContacted", "won");
  add_opportunity("oPast", "c8", "stgOffer", "open");
  add_opportunity("oLost", "c9", "stgNew", "lost");
  auto wb = start(3600);
  wb->on_score("t1", "c7", 40, "warm");  // not hot: no move
  wb->on_score("t1", "c8", 30, "cold");
  wb->on_score("t1", "c9", 30, "cold");
  wb->flush();
  ASSERT_TRUE(eventually([&] { return rows("t1", store::OutboxStatus::kSent) == 3; }));
  EXPECT_TRUE(stage_rows(store::OutboxStatus::kSent).empty());
  wb->on_score("t1", "c7", 80, "hot");  // turns hot
  wb->on_score("t1", "c7", 81, "hot");  // still hot (held): no second move
  wb->on_score("t1", "c8", 90, "hot");  // its opportunity is past the hot stage
  wb->on_score("t1", "c9", 90, "hot");  // its only opportunity is lost
  wb->flush();
  ASSERT_TRUE(eventually([&] { return stage_rows(store::OutboxStatus::kSent).size() == 3; }))
      << stage_rows(store::OutboxStatus::kPending).size();
  EXPECT_EQ(ghl_.stage_moves(), (std::vector<std::pair<std::string, std::string>>{{"oOpen", "stgHot"}}));
  EXPECT_EQ(ghl_.opportunity_stage("oWon"), "stgContacted");
  EXPECT_EQ(ghl_.opportunity_stage("oPast"), "stgOffer");
  EXPECT_EQ(ghl_.opportunity_stage("oLost"), "stgNew");
  // Each sent row says what became of the contact's opportunities.
  auto sent = stage_rows(store::OutboxStatus::kSent);
  std::map<std::string, std::string> notes;
  for (const auto& u : sent) notes[u.contact_id] = u.error;
  EXPECT_EQ(notes["c7"], "moved oOpen; left alone: oWon is won");
  EXPECT_EQ(notes["c8"], "not moved: oPast is past the hot stage");
  EXPECT_EQ(notes["c9"], "not moved: oLost is lost");
  // Cooling down and turning hot again is a second transition: its move
  // finds the opportunity in the hot stage already and PUTs nothing.
  wb->on_score("t1", "c7", 40, "warm");
  wb->on_score("t1", "c7", 85, "hot");
  wb->flush();
  ASSERT_TRUE(eventually([&] { return stage_rows(store::OutboxStatus::kSent).size() == 4; }));
  EXPECT_EQ(ghl_.stage_moves().size(), 1u);
  EXPECT_EQ(requests_to("PUT", "/opportunities/"), 1);
  EXPECT_EQ(wb->stats().stage_moves, 1u);
  EXPECT_TRUE(stage_rows(store::OutboxStatus::kFailed).empty());
  for (const auto& r : ghl_.received()) {
    if (r.target.rfind("/opportunities/search", 0) == 0) {
      EXPECT_NE(r.target.find("location_id=LOC1&contact_id="), std::string::npos) << r.target;
    }
  }
}

TEST_F(GhlWritebackUnitTest, NoHotStageConfiguredMeansNoMove) {
  add_sales_pipeline();
  add_opportunity("oOpen", "c7", "stgNew", "open");
  auto wb = start(3600);
  wb->on_score("t1", "c7", 40, "warm");
  wb->on_score("t1", "c7", 90, "hot");
  wb->flush();
  ASSERT_TRUE(eventually([&] { return rows("t1", store::OutboxStatus::kSent) == 2; }));
  wb->stop();
  EXPECT_TRUE(stage_rows(store::OutboxStatus::kSent).empty());
  EXPECT_TRUE(stage_rows(store::OutboxStatus::kPending).empty());
  EXPECT_TRUE(ghl_.stage_moves().empty());
  EXPECT_EQ(requests_to("GET", "/opportunities/"), 0);
}

TEST_F(GhlWritebackUnitTest, AStageMoveLeftByAnEarlierRunIsSentThroughFailures) {
  add_sales_pipeline();
  add_opportunity("oOpen", "c7", "stgNew", "open");
  store::GhlUpdate u{0, "t1", "c7", "stage", ghl::stage_move_json({"pipeSales", "stgHot"}), 1,
                     store::OutboxStatus::kPending, 0, 0, ""};
  ASSERT_TRUE(store_->enqueue_ghl_update(u).has_value());
  ghl_.fail_next(1, 503);
  auto wb = start(3600);
  ASSERT_TRUE(eventually([&] { return stage_rows(store::OutboxStatus::kSent).size() == 1; }));
  EXPECT_EQ(ghl_.stage_moves(), (std::vector<std::pair<std::string, std::string>>{{"oOpen", "stgHot"}}));
  EXPECT_EQ(stage_rows(store::OutboxStatus::kSent)[0].attempts, 2);
  EXPECT_GE(wb->stats().retries, 1u);
}

TEST_F(GhlWritebackUnitTest, AHotStageGhlDoesNotKnowIsRecordedFailed) {
  add_sales_pipeline();
  set_hot_stage("pipeSales", "stgDeleted");
  add_opportunity("oOpen", "c7", "stgNew", "open");
  add_opportunity("oGone", "c8", "stgNew", "open");
  auto wb = start(3600);
  wb->on_score("t1", "c7", 90, "hot");
  wb->flush();
  ASSERT_TRUE(eventually([&] { return stage_rows(store::OutboxStatus::kFailed).size() == 1; }));
  EXPECT_NE(stage_rows(store::OutboxStatus::kFailed)[0].error.find("'stgDeleted' is not a stage of pipeline"),
            std::string::npos)
      << stage_rows(store::OutboxStatus::kFailed)[0].error;
  set_hot_stage("pipeGone", "stgHot");
  wb->on_score("t1", "c8", 90, "hot");
  wb->flush();
  ASSERT_TRUE(eventually([&] { return stage_rows(store::OutboxStatus::kSent).size() == 1; }));
  // No opportunity of c8 in pipeGone: nothing to move, no pipelines needed.
  EXPECT_EQ(stage_rows(store::OutboxStatus::kSent)[0].error, "not moved: no opportunity in pipeline pipeGone");
  EXPECT_TRUE(ghl_.stage_moves().empty());
  EXPECT_EQ(wb->stats().failed, 1u);
}

TEST_F(GhlWritebackUnitTest, ABackfillNeverStarvesAFreshBandChange) {
  // The first start after linking: 30 contacts reai scored but never wrote
  // back, paced at 30 requests per second (3 per contact: about 3 s), fed 5
  // at a time. (The fake's own limit, 100 per 10 s, is never reached.)
  constexpr int kContacts = 30;
  constexpr std::size_t kBatch = 5;
  std::vector<GhlWriteback::CurrentScore> never;
  for (int i = 0; i < kContacts; ++i) never.push_back({"t1", "old" + std::to_string(i), 20, "cold"});
  auto wb = start(3600, kBatch, 30, 1.0);
  wb->reconcile(never);
  ASSERT_TRUE(eventually([&] { return ghl_.put_counts().size() >= 3; }));
  const std::size_t seen = ghl_.received().size();
  wb->on_score("t1", "fresh", 90, "hot");
  ASSERT_TRUE(eventually([&] { return ghl_.put_counts().size() == kContacts + 1; }, 60))
      << ghl_.put_counts().size() << " " << wb->stats().backfill_waiting;
  // Once reported, the fresh change went out behind at most the batch being
  // sent and the one fed next (without the feeding: behind every contact
  // not yet sent).
  int backfill_between = 0;
  const auto received = ghl_.received();
  for (std::size_t i = seen; i < received.size() && received[i].target != "/contacts/fresh"; ++i) {
    backfill_between += received[i].method == "PUT";
  }
  EXPECT_LE(backfill_between, static_cast<int>(2 * kBatch));
  ASSERT_TRUE(eventually([&] { return rows("t1", store::OutboxStatus::kPending) == 0; }));
  int after_fresh = 0;
  bool fresh_seen = false;
  for (const auto& r : ghl_.received()) {
    if (r.target == "/contacts/fresh" && r.method == "PUT") fresh_seen = true;
    else if (fresh_seen && r.method == "PUT") ++after_fresh;
  }
  EXPECT_GT(after_fresh, 0) << "the backfill ended before the fresh change came: nothing tested";
  const auto stats = wb->stats();
  EXPECT_EQ(stats.reconciled, static_cast<std::uint64_t>(kContacts));
  EXPECT_EQ(stats.backfill_waiting, 0u);
  EXPECT_EQ(rows("t1", store::OutboxStatus::kSent), static_cast<std::size_t>(kContacts + 1));
  for (int i = 0; i < kContacts; ++i) {
    EXPECT_EQ(ghl_.tags("old" + std::to_string(i)), (std::set<std::string>{"cold-lead"})) << i;
  }
  EXPECT_EQ(ghl_.put_counts().at("fresh"), 1);
  EXPECT_EQ(ghl_.too_many_requests(), 0);
}

TEST_F(GhlWritebackUnitTest, ABackfilledContactChangedMeanwhileIsSentOnceWithItsNewState) {
  std::vector<GhlWriteback::CurrentScore> never;
  for (int i = 0; i < 30; ++i) never.push_back({"t1", "old" + std::to_string(i), 20, "cold"});
  auto wb = start(3600, 2, 30, 1.0);
  wb->reconcile(never);
  wb->on_score("t1", "old29", 70, "warm");  // before its backfill turn
  ASSERT_TRUE(eventually([&] { return rows("t1", store::OutboxStatus::kSent) == 30; }, 60));
  EXPECT_EQ(ghl_.put_counts().at("old29"), 1);
  EXPECT_EQ(ghl_.scores().at("old29"), 70);
  EXPECT_EQ(ghl_.tags("old29"), (std::set<std::string>{"warm-lead"}));
  EXPECT_EQ(wb->stats().reconciled, 29u);
}

// GHL refusing the refresh itself (the app uninstalled in GHL, the refresh
// token revoked): the stored token is marked once, with one warning and one
// count; nothing more is sent or refreshed, by this writer or a restarted one
// (as another instance would), and the tenant's updates wait in the outbox
// until a new install, after which they go out by themselves.
TEST_F(GhlWritebackUnitTest, ARefusedGrantPausesTheTenantUntilANewInstall) {
  std::ostringstream log;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(log);
  spdlog::default_logger()->sinks().push_back(sink);
  struct Unhook {
    std::shared_ptr<spdlog::sinks::sink> sink;
    ~Unhook() { std::erase(spdlog::default_logger()->sinks(), sink); }
  } unhook{sink};

  ghl_.add_oauth_code("code-1", "LOC1");
  ghl_.add_oauth_code("code-2", "LOC1");
  auto wb = start_oauth();
  install(*wb, "code-1");
  wb->on_score("t1", "c1", 40, "warm");
  ASSERT_TRUE(eventually([&] { return rows("t1", store::OutboxStatus::kSent) == 1; }));

  ghl_.revoke_grants();
  wb->on_score("t1", "c1", 80, "hot");
  ASSERT_TRUE(eventually([&] { return wb->stats().tenants_needing_reauth == 1; }));
  const auto refused = store_->get_ghl_token("t1").value();
  EXPECT_GT(refused.refused_at, 0);
  EXPECT_EQ(refused.refused_error, "GHL token refresh: 400 Invalid grant: refresh token is invalid");
  auto pending = store_->list_ghl_updates("t1", store::OutboxStatus::kPending, 10).value();
  ASSERT_EQ(pending.size(), 1u);  // kept, in its place, not failed
  EXPECT_NE(pending[0].error.find("Invalid grant"), std::string::npos) << pending[0].error;
  EXPECT_EQ(rows("t1", store::OutboxStatus::kFailed), 0u);

  // More changes, and a restart: the mark is read from the store.
  wb->on_score("t1", "c2", 90, "hot");
  wb->flush();
  const auto first = wb->stats();
  wb->stop();
  wb = start_oauth();
  wb->on_score("t1", "c3", 20, "cold");
  wb->flush();
  ASSERT_TRUE(eventually([&] { return wb->stats().tenants_needing_reauth == 1; }));
  EXPECT_EQ(rows("t1", store::OutboxStatus::kPending), 3u);
  EXPECT_EQ(ghl_.refreshes(), std::vector<std::string>{"rt-1"});
  // Uninstalled as well (the UNINSTALL webhook came after the refusal): the
  // tenant left, so it is no longer counted as waiting for re-authorisation
  // (`reai tenant list` says uninstalled).
  ASSERT_TRUE(store_->update_ghl_settings("t1", {.active = false, .uninstalled_at = 1'700'000'000}).is_ok());
  ASSERT_TRUE(eventually([&] { return wb->stats().tenants_needing_reauth == 0; }));

  install(*wb, "code-2");  // the app installed again: sending resumes by itself
  ASSERT_TRUE(eventually([&] {
    return rows("t1", store::OutboxStatus::kPending) == 0 && wb->stats().tenants_needing_reauth == 0;
  }));
  EXPECT_EQ(rows("t1", store::OutboxStatus::kSent), 4u);
  EXPECT_EQ(rows("t1", store::OutboxStatus::kFailed), 0u);
  EXPECT_EQ(ghl_.scores().at("c1"), 80);
  EXPECT_EQ(ghl_.scores().at("c2"), 90);
  EXPECT_EQ(ghl_.scores().at("c3"), 20);
  EXPECT_EQ(ghl_.tags("c1"), (std::set<std::string>{"hot-lead"}));
  EXPECT_EQ(store_->get_ghl_token("t1")->refused_at, 0);
  // One refresh, refused; one request with the revoked token; nothing else
  // reached GHL between the refusal and the new install.
  EXPECT_EQ(ghl_.refreshes(), std::vector<std::string>{"rt-1"});
  EXPECT_EQ(requests_with("at-1", 401), 1);
  EXPECT_EQ(first.reauth_marked, 1u);
  EXPECT_EQ(first.token_refresh_failures, 1u);
  EXPECT_EQ(first.failed, 0u);
  EXPECT_EQ(wb->stats().reauth_marked, 0u);  // the restarted writer found it marked
  EXPECT_EQ(wb->stats().token_refresh_failures, 0u);
  const std::string text = ghl_writeback_metrics(first);
  EXPECT_NE(text.find("\nreai_ghl_reauth_marked_total 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\nreai_ghl_tenants_needing_reauth 1\n"), std::string::npos) << text;
  spdlog::default_logger()->flush();
  const std::string lines = log.str();
  std::size_t warnings = 0;
  for (std::size_t at = lines.find("GHL refused the authorisation of tenant t1"); at != std::string::npos;
       at = lines.find("GHL refused the authorisation of tenant t1", at + 1)) {
    ++warnings;
  }
  EXPECT_EQ(warnings, 1u) << lines;
  EXPECT_NE(lines.find("(location LOC1): GHL token refresh: 400 Invalid grant: refresh token is invalid"),
            std::string::npos)
      << lines;
}

// A transport error or 5xx from GHL's token service is an outage, not a
// refusal: the update is retried with backoff and goes out once the refresh
// works; nothing is marked.
TEST_F(GhlWritebackUnitTest, AnOutageOfTheTokenServiceIsRetriedNotMarked) {
  ghl_.add_oauth_code("code-1", "LOC1");
  auto wb = start_oauth();
  install(*wb, "code-1");
  ghl_.revoke_token("at-1");  // the access token stopped working; the refresh token is fine
  ghl_.fail_refresh_next(2, 503);
  wb->on_score("t1", "c1", 80, "hot");
  ASSERT_TRUE(eventually([&] { return rows("t1", store::OutboxStatus::kSent) == 1; }, 30));
  EXPECT_EQ(ghl_.scores().at("c1"), 80);
  EXPECT_EQ(ghl_.refreshes(), (std::vector<std::string>{"rt-1", "rt-1", "rt-1"}));
  const auto stats = wb->stats();
  EXPECT_EQ(stats.token_refresh_failures, 2u);
  EXPECT_EQ(stats.token_refreshes, 1u);
  EXPECT_EQ(stats.retries, 2u);
  EXPECT_EQ(stats.reauth_marked, 0u);
  EXPECT_EQ(store_->get_ghl_token("t1")->refused_at, 0);
}

}  // namespace
}  // namespace reai::server
