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
  wb->on_score("t1", "c1", 40, "warm", true);
  wb->on_score("t1", "c1", 45, "warm", false);  // within the interval: held
  wb->on_score("t1", "c1", 47, "warm", false);  // replaces the held one
  wb->on_score("t2", "c9", 90, "hot", true);    // not linked to GHL
  wb->flush();
  EXPECT_EQ(rows("t2", store::OutboxStatus::kPending) + rows("t2", store::OutboxStatus::kSent), 0u);
  ASSERT_TRUE(eventually([&] { return rows("t1", store::OutboxStatus::kSent) == 1; }));
  EXPECT_EQ(ghl_.scores().at("c1"), 40);
  EXPECT_EQ(ghl_.tags("c1"), (std::set<std::string>{"warm-lead"}));
  wb->on_score("t1", "c1", 80, "hot", true);  // a band change goes at once, with the newest score
  ASSERT_TRUE(eventually([&] { return rows("t1", store::OutboxStatus::kSent) == 2; }));
  EXPECT_EQ(ghl_.scores().at("c1"), 80);
  EXPECT_EQ(ghl_.tags("c1"), (std::set<std::string>{"hot-lead"}));
  // A held score-only change is written to the outbox at stop, not lost.
  wb->on_score("t1", "c1", 82, "hot", false);
  wb->flush();
  EXPECT_EQ(rows("t1", store::OutboxStatus::kPending), 0u);
  wb->stop();
  auto pending = store_->list_ghl_updates("t1", store::OutboxStatus::kPending, 10).value();
  ASSERT_EQ(pending.size(), 1u);
  EXPECT_EQ(ghl::parse_score_change(pending[0].payload_json).value().score, 82);
  EXPECT_EQ(wb->stats().dropped, 0u);
}

TEST_F(GhlWritebackUnitTest, ScoreOnlyChangesGoOncePerInterval) {
  auto wb = start(0.2);
  wb->on_score("t1", "c2", 10, "cold", true);
  wb->on_score("t1", "c2", 11, "cold", false);
  wb->on_score("t1", "c2", 12, "cold", false);
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

TEST_F(GhlWritebackUnitTest, OAuthExchangeNeedsConfiguration) {
  auto wb = start(60);
  std::promise<Result<std::string>> done;
  wb->exchange_code("c", [&](Result<std::string> r) { done.set_value(std::move(r)); });
  EXPECT_EQ(done.get_future().get().status().code(), StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace reai::server
