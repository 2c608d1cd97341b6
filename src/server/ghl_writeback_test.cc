// GhlWriteback in process: the filler's pacing (band changes at once,
// score-only changes held for the interval, unlinked tenants skipped) and the
// sender's ordering (a contact's newer update supersedes an older one unless
// the older one moved the band), against the fake GHL REST API.
#include "server/ghl_writeback.h"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <future>
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

  std::unique_ptr<GhlWriteback> start(double score_interval_s) {
    GhlWritebackConfig c;
    c.api_base = ghl_.base_url();
    c.score_interval_s = score_interval_s;
    c.secret_box = box_;
    return GhlWriteback::create(*store_, c).value();
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

}  // namespace
}  // namespace reai::server
