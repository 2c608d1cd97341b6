#include "server/track_outcomes.h"

#include <filesystem>
#include <limits>
#include <memory>

#include <gtest/gtest.h>
#include <unistd.h>

#include "scoring/lead_model.h"
#include "scoring/synthetic_history.h"

namespace reai::server {
namespace {

namespace fs = std::filesystem;
using scoring::testing_support::kDay;
using scoring::testing_support::kStart;

class FixedRegistry final : public scoring::ModelRegistry {
 public:
  explicit FixedRegistry(std::shared_ptr<const scoring::LeadModel> m) : m_(std::move(m)) {}
  std::shared_ptr<const scoring::LeadModel> lead_model(std::string_view) const override { return m_; }

 private:
  std::shared_ptr<const scoring::LeadModel> m_;
};

TEST(TrackOutcomeCodec, RoundTripsAndRejectsBadInput) {
  scoring::TrackOutcome o;
  o.lead.tenant_id = "ignored";
  o.lead.contact_id = "c\"1";
  o.lead.assigned_agent_id = "agent-7";
  o.lead.source = "zillow";
  o.lead.created_at = 1'735'000'000;
  o.converted = true;
  auto back = decode_track_outcome("t1", encode_track_outcome(o));
  ASSERT_TRUE(back) << back.status().to_string();
  EXPECT_EQ(back->lead.tenant_id, "t1");
  EXPECT_EQ(back->lead.contact_id, "c\"1");
  EXPECT_EQ(back->lead.assigned_agent_id, "agent-7");
  EXPECT_EQ(back->lead.source, "zillow");
  EXPECT_EQ(back->lead.created_at, 1'735'000'000);
  EXPECT_TRUE(back->converted);
  EXPECT_FALSE(back->first_outreach);
  o.converted = false;
  o.first_outreach = 1'735'000'600;
  back = decode_track_outcome("t1", encode_track_outcome(o));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->first_outreach, 1'735'000'600);
  for (const char* bad : {"", "[]", "{", R"({"lead":"x"})",
                          R"({"lead":"x","agent":"a","source":"s","created_at":"1","converted":false})",
                          R"({"lead":"x","agent":"a","source":"s","created_at":1,"converted":0})",
                          R"({"lead":"x","agent":"a","source":"s","created_at":1,"converted":false,"first_outreach":1.5})"}) {
    EXPECT_EQ(decode_track_outcome("t1", bad).status().code(), StatusCode::kInvalidArgument) << bad;
  }
}

TEST(TrackOutcomeSharing, TwoEnginesOnOneBusScoreAnotherLeadOfTheAgentAlike) {
  const std::string dir = (fs::temp_directory_path() / ("reai_track_outcomes_" + std::to_string(::getpid()))).string();
  fs::remove_all(dir);
  const auto history = scoring::testing_support::make_history(1500, kStart, 300 * kDay, 7, "c");
  scoring::TrainLeadOptions options;
  options.example_ages_hours = {1, 24, 168};
  options.nthread = 2;
  options.progress = false;
  ASSERT_TRUE(scoring::train_lead_model(history.contacts, history.events, history.stages, dir, options));
  auto model = scoring::load_lead_model(dir);
  fs::remove_all(dir);
  ASSERT_TRUE(model) << model.status().to_string();
  const UnixSeconds end = (*model)->track_records_end;
  ASSERT_LT(end, std::numeric_limits<UnixSeconds>::max());
  FixedRegistry registry(*model);

  auto lead = [&](const std::string& id, UnixSeconds created) {
    Contact c = history.contacts[0];
    c.tenant_id = "t1";
    c.contact_id = id;
    c.created_at = created;
    return c;
  };
  auto stage = [](const std::string& contact, UnixSeconds ts, Stage st) {
    OpportunityStage s;
    s.tenant_id = "t1";
    s.opportunity_id = "o-" + contact;
    s.contact_id = contact;
    s.ts = ts;
    s.stage = st;
    return s;
  };
  const std::string agent = history.contacts[0].assigned_agent_id;
  const Contact folded = lead("folded", end + kDay);
  const Contact other = lead("other", end + 60 * kDay);
  Event outreach;
  outreach.tenant_id = "t1";
  outreach.event_id = "e-out";
  outreach.contact_id = "folded";
  outreach.type = EventType::kSmsOut;
  outreach.ts = folded.created_at + 1200;

  auto bus = bus::make_in_process_bus();
  scoring::LeadScoringEngine a(registry, nullptr), b(registry, nullptr), single(registry, nullptr);
  TrackOutcomeSharing share_a(*bus, a), share_b(*bus, b);
  share_a.start_publishing();
  share_b.start_publishing();
  std::size_t seen = 0, sequenced = 0;
  auto counter = bus->subscribe_notices([&seen](const bus::BusMessage& m) { seen += m.topic == kLiveOutcomeTopic; });
  auto hub_like = bus->subscribe([&sequenced](const bus::BusMessage&) { ++sequenced; });
  // B holds the agent's other lead; A (and the single reference engine) fold
  // the lead whose outcome matters, its first outreach and its signing.
  b.load_contact(other);
  single.load_contact(other);
  for (scoring::LeadScoringEngine* e : {&a, &single}) {
    ASSERT_TRUE(e->upsert_contact(folded, folded.created_at));
    ASSERT_TRUE(e->apply_event(outreach, outreach.ts));
    e->apply_stage(stage("folded", end + 10 * kDay, Stage::kSigned));
    e->apply_stage(stage("folded", end + 92 * kDay, Stage::kActive));
  }
  bus->unsubscribe_notices(counter);
  bus->unsubscribe(hub_like);
  EXPECT_EQ(seen, 2u);  // one speed item, one matured outcome: once each
  // Notices: no browser-facing message, no tenant seq used.
  EXPECT_EQ(sequenced, 0u);
  EXPECT_EQ(bus->last_seq("t1"), 0u);
  EXPECT_EQ(share_a.stats().published, 2u);
  EXPECT_EQ(share_a.stats().repeats, 2u);  // its own echoes
  EXPECT_EQ(share_b.stats().received, 2u);
  EXPECT_EQ(share_b.stats().published, 0u);
  EXPECT_EQ(share_a.malformed(), 0u);
  EXPECT_EQ(share_b.malformed(), 0u);

  features::TrackRecordBook expected = (*model)->track_records;
  expected.add_speed(folded, 1200);
  expected.add_outcome(folded, true);
  const features::TrackRecord want = *expected.find_agent("t1", agent);
  for (scoring::LeadScoringEngine* e : {&a, &b, &single}) {
    const features::TrackRecord got = e->agent_track_record("t1", agent).value();
    EXPECT_EQ(got.matured, want.matured);
    EXPECT_EQ(got.converted, want.converted);
    EXPECT_EQ(got.speed_count, want.speed_count);
    EXPECT_DOUBLE_EQ(got.speed_log_sum, want.speed_log_sum);
    EXPECT_EQ(e->stats().live_outcomes, 2u);
  }
  const UnixSeconds at = other.created_at + 2 * kDay;
  EXPECT_EQ(b.score("t1", "other", at).value().probability, single.score("t1", "other", at).value().probability);
  // Without the bus, B's score of that lead is another one (with this
  // fixture the agent's record moves that lead's score; a smaller history's
  // model does not split on it there).
  scoring::LeadScoringEngine alone(registry, nullptr);
  alone.load_contact(other);
  EXPECT_NE(alone.score("t1", "other", at).value().probability, b.score("t1", "other", at).value().probability);

  // An instance still replaying the store (start_publishing not called yet)
  // receives but sends nothing of what it counts.
  scoring::LeadScoringEngine replaying(registry, nullptr);
  TrackOutcomeSharing share_replaying(*bus, replaying);
  std::size_t sent_during_replay = 0;
  auto during = bus->subscribe_notices([&](const bus::BusMessage&) { ++sent_during_replay; });
  replaying.load_contact(folded);
  replaying.load_event(outreach);
  bus->unsubscribe_notices(during);
  EXPECT_EQ(sent_during_replay, 0u);
  EXPECT_FALSE(share_replaying.stats().publishing);
  EXPECT_EQ(replaying.stats().live_outcomes, 1u);

  // A malformed message on the topic is dropped and counted.
  ASSERT_TRUE(bus->notify("t1", kLiveOutcomeTopic, std::make_shared<const std::string>("{}")));
  EXPECT_EQ(share_b.malformed(), 1u);
  EXPECT_EQ(b.stats().live_outcomes, 2u);
}

}  // namespace
}  // namespace reai::server
