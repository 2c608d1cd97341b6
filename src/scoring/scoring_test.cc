#include "scoring/scoring.h"

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <thread>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "bus/bus.h"
#include "models/models.h"
#include "scoring/lead_model.h"
#include "scoring/synthetic_history.h"

namespace reai::scoring {
namespace {

namespace fs = std::filesystem;
using testing_support::History;
using testing_support::make_history;
using testing_support::kStart;
using testing_support::kDay;

class FakeCache final : public bus::Cache {
 public:
  std::optional<std::string> get(std::string_view key) override {
    std::lock_guard lock(mu_);
    if (down) return std::nullopt;  // as a remote cache: every lookup misses
    auto it = values_.find(std::string(key));
    if (it == values_.end()) return std::nullopt;
    return it->second;
  }
  void put(std::string_view key, std::string value, UnixSeconds ttl) override {
    std::lock_guard lock(mu_);
    values_[std::string(key)] = std::move(value);
    last_ttl_ = ttl;
  }
  void put_each(std::span<const bus::CachePut> entries) override {
    for (const bus::CachePut& e : entries) put(e.key, e.value, e.ttl_seconds);
    std::lock_guard lock(mu_);
    ++put_each_calls_;
  }
  void erase(std::string_view key) override {
    std::lock_guard lock(mu_);
    values_.erase(std::string(key));
  }
  bus::CacheStats stats() const override { return {}; }
  Status health() override { return down ? unavailable("cache down") : Status::ok(); }
  std::size_t size() {
    std::lock_guard lock(mu_);
    return values_.size();
  }
  UnixSeconds last_ttl_ = 0;
  int put_each_calls_ = 0;
  std::atomic<bool> down{false};

 private:
  std::mutex mu_;
  std::map<std::string, std::string> values_;
};

class EmptyRegistry final : public ModelRegistry {
 public:
  std::shared_ptr<const LeadModel> lead_model(std::string_view) const override { return nullptr; }
};

class FixedRegistry final : public ModelRegistry {
 public:
  explicit FixedRegistry(std::shared_ptr<const LeadModel> m) : m_(std::move(m)) {}
  std::shared_ptr<const LeadModel> lead_model(std::string_view) const override { return m_; }

 private:
  std::shared_ptr<const LeadModel> m_;
};

// An event of `lead` (tenant t1 unless the contact says otherwise).
Event lead_event(const std::string& tenant_id, const std::string& lead_id, UnixSeconds ts, EventType type) {
  Event e;
  e.tenant_id = tenant_id;
  e.event_id = lead_id + "-" + std::to_string(ts);
  e.contact_id = lead_id;
  e.ts = ts;
  e.type = type;
  return e;
}

// A registry whose model can be taken away, as when a tenant's model is
// deleted or fails to load.
class SwitchableRegistry final : public ModelRegistry {
 public:
  explicit SwitchableRegistry(std::shared_ptr<const LeadModel> m) : m_(std::move(m)) {}
  std::shared_ptr<const LeadModel> lead_model(std::string_view) const override {
    std::lock_guard lock(mu_);
    return m_;
  }
  void remove() {
    std::lock_guard lock(mu_);
    m_ = nullptr;
  }

 private:
  mutable std::mutex mu_;
  std::shared_ptr<const LeadModel> m_;
};

class LeadScoringTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string((fs::temp_directory_path() / ("reai_scoring_test_" + std::to_string(::getpid()))).string());
    fs::remove_all(*dir_);
    history_ = new History(make_history(1500, kStart, 300 * kDay, 7, "c"));
    TrainLeadOptions options;
    options.example_ages_hours = {1, 24, 168};
    options.nthread = 2;
    options.progress = false;
    auto report = train_lead_model(history_->contacts, history_->events, history_->stages,
                                   *dir_ + "/leads", options);
    ASSERT_TRUE(report) << report.status().to_string();
    report_ = new TrainLeadReport(*report);
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
    delete history_;
    delete report_;
  }
  static std::string model_dir() { return *dir_ + "/leads"; }

  // The suite's model with track records, served by `registry_`; `end_` is
  // where its records stop, so leads created after it are live outcomes.
  // Call as ASSERT_NO_FATAL_FAILURE(load_track_record_model()).
  void load_track_record_model() {
    auto model = load_lead_model(model_dir());
    ASSERT_TRUE(model) << model.status().to_string();
    model_ = *model;
    registry_.emplace(model_);
    end_ = model_->track_records_end;
    ASSERT_LT(end_, std::numeric_limits<UnixSeconds>::max());
  }
  std::shared_ptr<const LeadModel> model_;
  std::optional<FixedRegistry> registry_;
  UnixSeconds end_ = 0;

  static std::string* dir_;
  static History* history_;
  static TrainLeadReport* report_;
};
std::string* LeadScoringTest::dir_ = nullptr;
History* LeadScoringTest::history_ = nullptr;
TrainLeadReport* LeadScoringTest::report_ = nullptr;

// Tenant t1's stage row of `contact`'s opportunity.
OpportunityStage stage_row(const std::string& contact, UnixSeconds ts, Stage stage) {
  OpportunityStage s;
  s.tenant_id = "t1";
  s.opportunity_id = "o-" + contact;
  s.contact_id = contact;
  s.ts = ts;
  s.stage = stage;
  return s;
}

// `base` under another id and creation time.
Contact contact_like(const Contact& base, const std::string& id, UnixSeconds created) {
  Contact c = base;
  c.contact_id = id;
  c.created_at = created;
  return c;
}

TEST_F(LeadScoringTest, TrainingReportsMetricsAndVersion) {
  EXPECT_EQ(report_->version.rfind("leads-", 0), 0u);
  EXPECT_GT(report_->train_examples, 0u);
  EXPECT_GT(report_->validation_examples, 0u);
  ASSERT_EQ(report_->validation.size(), 3u);
  EXPECT_GT(report_->validation[2].auc, 0.7);
  EXPECT_TRUE(fs::exists(model_dir() + "/model.json"));
  EXPECT_TRUE(fs::exists(model_dir() + "/metadata.json"));
}

TEST_F(LeadScoringTest, HeldOutLaterLeadsAreRankedWell) {
  History later = make_history(600, kStart + 400 * kDay, 60 * kDay, 99, "h");
  auto rows = replay_scores(model_dir(), later.contacts, later.events, {}, {1, 168});
  ASSERT_TRUE(rows) << rows.status().to_string();
  ASSERT_EQ(rows->size(), later.contacts.size() * 2);
  std::vector<double> p;
  std::vector<float> y;
  for (std::size_t i = 0; i < later.contacts.size(); ++i) {
    const ReplayRow& r = (*rows)[i * 2 + 1];
    EXPECT_EQ(r.contact_id, later.contacts[i].contact_id);
    EXPECT_EQ(r.hours, 168);
    EXPECT_EQ(r.score, static_cast<int>(std::lround(r.probability * 100)));
    p.push_back(r.probability);
    y.push_back(later.converted[r.contact_id] ? 1.f : 0.f);
  }
  EXPECT_GT(models::roc_auc(p, y), 0.7);
}

TEST_F(LeadScoringTest, SavedModelPredictsLikeXgboost) {
  auto model = load_lead_model(model_dir());
  ASSERT_TRUE(model) << model.status().to_string();
  auto booster = models::Booster::load_file(model_dir() + "/model.json");
  ASSERT_TRUE(booster);
  const std::size_t nf = features::feature_count();
  models::DenseMatrix x(0, nf);
  std::vector<float> row(nf);
  for (std::size_t i = 0; i < 50; ++i) {
    features::LeadFeatureState s;
    s.set_contact(history_->contacts[i]);
    for (const auto& e : history_->events) {
      if (e.contact_id == history_->contacts[i].contact_id) s.apply(e);
    }
    s.write_features(history_->contacts[i].created_at + 30 * 3600, &(*model)->track_records, row.data());
    x.append_row(row);
  }
  auto expected = booster->predict(x);
  ASSERT_TRUE(expected);
  for (std::size_t i = 0; i < x.rows; ++i) {
    EXPECT_NEAR((*model)->forest.predict(x.row(i)), (*expected)[i], 1e-5);
    // The served path computes the margin from its attribution walk.
    auto served = evaluate_model(**model, x.row(i), Reasons::kPath);
    auto plain = evaluate_model(**model, x.row(i), Reasons::kNone);
    ASSERT_TRUE(served && plain);
    EXPECT_NEAR(served->probability, plain->probability, 1e-9);
    EXPECT_FALSE(served->reasons.empty());
  }
  // A second load is the same model.
  auto again = load_lead_model(model_dir());
  ASSERT_TRUE(again);
  EXPECT_EQ(lead_model_version(**again), report_->version);
  for (std::size_t i = 0; i < x.rows; ++i) {
    EXPECT_EQ((*again)->forest.predict(x.row(i)), (*model)->forest.predict(x.row(i)));
  }
}

TEST_F(LeadScoringTest, PathReasonsRankLikeTreeShap) {
  auto model = load_lead_model(model_dir());
  ASSERT_TRUE(model);
  const std::size_t nf = features::feature_count();
  std::vector<float> row(nf);
  std::map<std::string, features::LeadFeatureState> states;
  for (const auto& c : history_->contacts) states[c.contact_id].set_contact(c);
  for (const auto& e : history_->events) states[e.contact_id].apply(e);
  int top1_same = 0, top1_in_top3 = 0, rows = 0;
  double overlap = 0;
  for (const auto& c : history_->contacts) {
    if (rows == 300) break;
    states[c.contact_id].write_features(c.created_at + 48 * 3600, &(*model)->track_records, row.data());
    std::vector<double> path(nf + 1, 0.0), shap(nf + 1, 0.0);
    (*model)->forest.path_contributions(row.data(), path);
    (*model)->forest.shap_values(row.data(), shap);
    double sum_path = 0, sum_shap = 0;
    for (double v : path) sum_path += v;
    for (double v : shap) sum_shap += v;
    // Both sum to the margin (the served score is read off the path's sum).
    EXPECT_NEAR(sum_shap, (*model)->forest.predict_margin(row.data()), 1e-4);
    EXPECT_NEAR(sum_path, (*model)->forest.predict_margin(row.data()), 1e-9);
    auto a = top_reasons(row.data(), path.data(), nf), b = top_reasons(row.data(), shap.data(), nf);
    if (a.empty() || b.empty()) continue;
    ++rows;
    top1_same += a[0].feature == b[0].feature;
    for (const auto& rb : b) top1_in_top3 += a[0].feature == rb.feature;
    for (const auto& ra : a) {
      for (const auto& rb : b) overlap += ra.feature == rb.feature;
    }
  }
  ASSERT_GT(rows, 100);
  std::printf("path vs TreeSHAP: top-1 agreement %.3f, path top-1 in SHAP top-3 %.3f, mean top-3 overlap %.2f over %d rows\n",
              double(top1_same) / rows, double(top1_in_top3) / rows, overlap / rows, rows);
  // The three reasons shown are nearly the same set; their order can differ.
  EXPECT_GT(double(top1_in_top3) / rows, 0.9);
  EXPECT_GT(overlap / rows, 2.2);
}

TEST_F(LeadScoringTest, EngineAndReplayGiveIdenticalScores) {
  std::vector<Contact> some(history_->contacts.begin(), history_->contacts.begin() + 40);
  const std::vector<double> hours = {1, 24};
  auto rows = replay_scores(model_dir(), some, history_->events, {}, hours);
  ASSERT_TRUE(rows);
  auto model = load_lead_model(model_dir());
  ASSERT_TRUE(model);
  FixedRegistry registry(*model);
  for (std::size_t h = 0; h < hours.size(); ++h) {
    LeadScoringEngine engine(registry, nullptr);
    for (std::size_t i = 0; i < some.size(); ++i) {
      const Contact& c = some[i];
      const UnixSeconds at = c.created_at + static_cast<UnixSeconds>(hours[h] * 3600);
      std::optional<LeadScore> last = engine.upsert_contact(c, c.created_at).value();
      for (const auto& e : history_->events) {
        if (e.contact_id == c.contact_id && e.ts <= at) last = engine.apply_event(e, e.ts).value();
      }
      auto s = engine.score(c.tenant_id, c.contact_id, at);
      ASSERT_TRUE(s);
      EXPECT_EQ(s->probability, (*rows)[i * hours.size() + h].probability) << c.contact_id;
      EXPECT_EQ(s->model_version, report_->version);
      EXPECT_EQ(s->fallback_reason, "");
      EXPECT_LE(s->reasons.size(), 3u);
      EXPECT_GE(s->confidence, 0.0);
      EXPECT_LE(s->confidence, 1.0);
      EXPECT_EQ(s->events_count, last->events_count);
    }
  }
}

TEST_F(LeadScoringTest, RebuildingALeadEqualsApplyingItsEventsInOrder) {
  auto model = load_lead_model(model_dir());
  ASSERT_TRUE(model);
  FixedRegistry registry(*model);
  LeadScoringEngine live(registry, nullptr);
  LeadScoringEngine rebuilt(registry, nullptr);
  for (std::size_t i = 0; i < 30; ++i) {
    const Contact& c = history_->contacts[i];
    std::vector<Event> events;
    for (const auto& e : history_->events) {
      if (e.contact_id == c.contact_id) events.push_back(e);
    }
    ASSERT_TRUE(live.upsert_contact(c, c.created_at));
    for (const auto& e : events) ASSERT_TRUE(live.apply_event(e, e.ts));
    // A stale state first (half the events), then the rebuild replaces it.
    rebuilt.load_contact(c);
    for (std::size_t k = 0; k < events.size() / 2; ++k) rebuilt.load_event(events[k]);
    rebuilt.rebuild_lead(c.tenant_id, c.contact_id, &c, events);
    const UnixSeconds at = c.created_at + 30 * kDay;
    auto a = live.score(c.tenant_id, c.contact_id, at);
    auto b = rebuilt.score(c.tenant_id, c.contact_id, at);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->probability, b->probability) << c.contact_id;
    EXPECT_EQ(a->events_count, b->events_count);
  }
  // Nothing to build from: an unknown lead stays unknown.
  rebuilt.rebuild_lead("t_x", "nobody", nullptr, {});
  EXPECT_EQ(rebuilt.score("t_x", "nobody", 0).status().code(), StatusCode::kNotFound);
}

TEST_F(LeadScoringTest, SignedLeadsUpdateTrackRecordsOnceTheirWindowCloses) {
  ASSERT_NO_FATAL_FAILURE(load_track_record_model());
  LeadScoringEngine engine(*registry_, nullptr);
  const std::string agent = history_->contacts[0].assigned_agent_id;
  features::TrackRecordBook expected = model_->track_records;
  ASSERT_NE(expected.find_agent("t1", agent), nullptr);
  const double before = engine.agent_conversion_rate("t1", agent).value();
  EXPECT_DOUBLE_EQ(before, expected.smoothed_rate(expected.find_agent("t1", agent)));
  auto lead = [&](const std::string& id, UnixSeconds created) { return contact_like(history_->contacts[0], id, created); };
  auto* const stage = &stage_row;
  engine.load_contact(lead("old", end_ - 100 * kDay));  // matured within the snapshot
  engine.load_contact(lead("new1", end_ + kDay));
  ASSERT_TRUE(engine.upsert_contact(lead("new2", end_ + kDay), end_ + kDay));
  engine.apply_stage(stage("old", end_ - 99 * kDay, Stage::kSigned));
  engine.apply_stage(stage("new1", end_ + 10 * kDay, Stage::kSigned));
  engine.apply_stage(stage("nobody", end_ + 11 * kDay, Stage::kSigned));  // unknown lead: ignored
  // "old" matured (counted once, already in the snapshot); the new leads'
  // windows are still open, so the agent's record has not moved.
  EXPECT_EQ(engine.stats().live_outcomes, 1u);
  EXPECT_DOUBLE_EQ(engine.agent_conversion_rate("t1", agent).value(), before);
  engine.apply_stage(stage("new1", end_ + 92 * kDay, Stage::kActive));
  EXPECT_EQ(engine.stats().live_outcomes, 3u);
  expected.add_outcome(lead("new1", end_ + kDay), true);
  expected.add_outcome(lead("new2", end_ + kDay), false);
  const double after = engine.agent_conversion_rate("t1", agent).value();
  EXPECT_DOUBLE_EQ(after, expected.smoothed_rate(expected.find_agent("t1", agent)));
  EXPECT_NE(after, before);
  // Stages never count a lead twice.
  engine.apply_stage(stage("new2", end_ + 200 * kDay, Stage::kLost));
  EXPECT_EQ(engine.stats().live_outcomes, 3u);
  EXPECT_DOUBLE_EQ(engine.agent_conversion_rate("t1", agent).value(), after);
  EmptyRegistry none;
  LeadScoringEngine no_model(none, nullptr);
  EXPECT_FALSE(no_model.agent_conversion_rate("t1", agent));
}

// One model may serve several tenants; an agent id another tenant also uses
// must give neither tenant the other's numbers, trained or live.
TEST_F(LeadScoringTest, AgentTrackRecordsAreEachTenantsOwn) {
  ASSERT_NO_FATAL_FAILURE(load_track_record_model());
  LeadScoringEngine engine(*registry_, nullptr);
  const std::string agent = history_->contacts[0].assigned_agent_id;
  const features::TrackRecord t1_before = engine.agent_track_record("t1", agent).value();
  ASSERT_GT(t1_before.matured, 0);
  const features::TrackRecord t2_before = engine.agent_track_record("t2", agent).value();
  EXPECT_EQ(t2_before.matured, 0);
  EXPECT_EQ(t2_before.speed_count, 0);
  EXPECT_DOUBLE_EQ(engine.agent_conversion_rate("t2", agent).value(), model_->track_records.smoothed_rate(nullptr));

  Contact other = contact_like(history_->contacts[0], "t2-lead", end_ + kDay);
  other.tenant_id = "t2";
  engine.load_contact(other);
  auto t2_stage = [](UnixSeconds ts, Stage stage) {
    OpportunityStage s = stage_row("t2-lead", ts, stage);
    s.tenant_id = "t2";
    return s;
  };
  engine.apply_stage(t2_stage(end_ + 10 * kDay, Stage::kSigned));
  engine.apply_stage(t2_stage(end_ + 92 * kDay, Stage::kActive));  // its window closes
  EXPECT_EQ(engine.stats().live_outcomes, 1u);
  const features::TrackRecord t2_after = engine.agent_track_record("t2", agent).value();
  EXPECT_EQ(t2_after.matured, 1);
  EXPECT_EQ(t2_after.converted, 1);
  const features::TrackRecord t1_after = engine.agent_track_record("t1", agent).value();
  EXPECT_EQ(t1_after.matured, t1_before.matured);
  EXPECT_EQ(t1_after.converted, t1_before.converted);
}

// A tenant's pipeline rows close its own leads' windows only: another
// tenant's later stage rows must not count this tenant's leads as not
// converted before its own signed rows arrive.
TEST_F(LeadScoringTest, AnotherTenantsPipelineClosesNoWindowOfThisTenant) {
  ASSERT_NO_FATAL_FAILURE(load_track_record_model());
  LeadScoringEngine engine(*registry_, nullptr);
  const std::string agent = history_->contacts[0].assigned_agent_id;
  const features::TrackRecord t1_before = engine.agent_track_record("t1", agent).value();
  engine.load_contact(contact_like(history_->contacts[0], "t1-lead", end_ + kDay));
  Contact other = contact_like(history_->contacts[0], "t2-lead", end_ + kDay);
  other.tenant_id = "t2";
  engine.load_contact(other);
  OpportunityStage t2_row = stage_row("t2-lead", end_ + 200 * kDay, Stage::kActive);
  t2_row.tenant_id = "t2";
  engine.apply_stage(t2_row);  // t2's pipeline is far ahead of t1's
  EXPECT_EQ(engine.stats().live_outcomes, 1u);  // t2's own lead only
  const features::TrackRecord t1_between = engine.agent_track_record("t1", agent).value();
  EXPECT_EQ(t1_between.matured, t1_before.matured);
  // t1's own rows: its lead signed in its window, then the window closes.
  engine.apply_stage(stage_row("t1-lead", end_ + 10 * kDay, Stage::kSigned));
  engine.apply_stage(stage_row("t1-lead", end_ + 92 * kDay, Stage::kActive));
  EXPECT_EQ(engine.stats().live_outcomes, 2u);
  const features::TrackRecord t1_after = engine.agent_track_record("t1", agent).value();
  EXPECT_EQ(t1_after.matured, t1_before.matured + 1);
  EXPECT_EQ(t1_after.converted, t1_before.converted + 1);
}

TEST_F(LeadScoringTest, FirstOutreachAfterTheSnapshotUpdatesTheAgentsSpeedRecord) {
  ASSERT_NO_FATAL_FAILURE(load_track_record_model());
  LeadScoringEngine engine(*registry_, nullptr);
  const std::string agent = history_->contacts[0].assigned_agent_id;
  const features::TrackRecord before = engine.agent_track_record("t1", agent).value();
  auto outreach = [](const std::string& lead, UnixSeconds ts, EventType type) {
    return lead_event("t1", lead, ts, type);
  };
  Contact c = history_->contacts[0];
  c.contact_id = "fresh";
  c.created_at = end_ + kDay;
  ASSERT_TRUE(engine.upsert_contact(c, c.created_at));
  ASSERT_TRUE(engine.apply_event(outreach("fresh", c.created_at + 600, EventType::kEmailOpen), c.created_at + 600));
  EXPECT_EQ(engine.agent_track_record("t1", agent).value().speed_count, before.speed_count);  // not outreach
  ASSERT_TRUE(engine.apply_event(outreach("fresh", c.created_at + 1200, EventType::kSmsOut), c.created_at + 1200));
  ASSERT_TRUE(engine.apply_event(outreach("fresh", c.created_at + 1800, EventType::kCallOut), c.created_at + 1800));
  const features::TrackRecord after = engine.agent_track_record("t1", agent).value();
  EXPECT_EQ(after.speed_count, before.speed_count + 1);  // the first outreach only
  EXPECT_NEAR(after.speed_log_sum - before.speed_log_sum, std::log1p(20.0), 1e-9);  // 20 minutes
  // A lead reached within the snapshot's span is in the snapshot already.
  c.contact_id = "old";
  c.created_at = end_ - 10 * kDay;
  engine.load_contact(c);
  engine.load_event(outreach("old", c.created_at + 60, EventType::kSmsOut));
  EXPECT_EQ(engine.agent_track_record("t1", agent).value().speed_count, after.speed_count);
  EXPECT_EQ(engine.agent_track_record("t1", "no-such-agent").value().speed_count, 0);
}

TEST_F(LeadScoringTest, SharedOutcomesCountOnceAndScoreAsIfFoldedHere) {
  ASSERT_NO_FATAL_FAILURE(load_track_record_model());
  auto lead = [&](const std::string& id, UnixSeconds created) { return contact_like(history_->contacts[0], id, created); };
  const std::string agent = history_->contacts[0].assigned_agent_id;
  auto* const stage = &stage_row;
  const Contact folded = lead("folded", end_ + kDay);
  const Contact other = lead("other", end_ + 60 * kDay);  // window still open at the last stage row
  const Event outreach = lead_event("t1", "folded", folded.created_at + 1200, EventType::kSmsOut);

  // A folds "folded" and publishes; B holds only "other"; `single` folds both.
  LeadScoringEngine a(*registry_, nullptr), b(*registry_, nullptr), single(*registry_, nullptr);
  std::vector<TrackOutcome> published;
  a.share_outcomes([&published](const TrackOutcome& o) { published.push_back(o); });
  b.share_outcomes({});
  for (LeadScoringEngine* e : {&a, &single}) {
    e->load_contact(folded);
    e->load_event(outreach);
    e->apply_stage(stage("folded", end_ + 10 * kDay, Stage::kSigned));
    e->apply_stage(stage("folded", end_ + 92 * kDay, Stage::kActive));
  }
  single.load_contact(other);
  b.load_contact(other);
  ASSERT_EQ(published.size(), 2u);  // the speed item, then the matured outcome
  EXPECT_EQ(published[0].first_outreach, outreach.ts);
  EXPECT_FALSE(published[1].first_outreach);
  EXPECT_TRUE(published[1].converted);
  EXPECT_EQ(published[1].lead.contact_id, "folded");

  const UnixSeconds at = other.created_at + 2 * kDay;
  const double b_before = b.score("t1", "other", at).value().probability;
  for (const auto& o : published) EXPECT_TRUE(b.add_outcome(o).value());
  // Repeats and A's own echo count nothing.
  for (const auto& o : published) {
    EXPECT_FALSE(b.add_outcome(o).value());
    EXPECT_FALSE(a.add_outcome(o).value());
  }
  EXPECT_EQ(a.stats().live_outcomes, 2u);
  EXPECT_EQ(b.stats().live_outcomes, 2u);

  features::TrackRecordBook expected = model_->track_records;
  expected.add_speed(folded, 1200);
  expected.add_outcome(folded, true);
  const features::TrackRecord want = *expected.find_agent("t1", agent);
  for (LeadScoringEngine* e : {&a, &b, &single}) {
    const features::TrackRecord got = e->agent_track_record("t1", agent).value();
    EXPECT_EQ(got.matured, want.matured);
    EXPECT_EQ(got.converted, want.converted);
    EXPECT_EQ(got.speed_count, want.speed_count);
    EXPECT_DOUBLE_EQ(got.speed_log_sum, want.speed_log_sum);
    EXPECT_DOUBLE_EQ(e->agent_conversion_rate("t1", agent).value(), expected.smoothed_rate(&want));
  }
  const double b_after = b.score("t1", "other", at).value().probability;
  EXPECT_EQ(b_after, single.score("t1", "other", at).value().probability);
  EXPECT_NE(b_after, b_before);

  // B later folds the same lead itself: counted already, so neither counted
  // nor published again.
  std::vector<TrackOutcome> from_b;
  LeadScoringEngine c(*registry_, nullptr);
  c.share_outcomes([&from_b](const TrackOutcome& o) { from_b.push_back(o); });
  for (const auto& o : published) ASSERT_TRUE(c.add_outcome(o).value());
  c.load_contact(folded);
  c.load_event(outreach);
  c.apply_stage(stage("folded", end_ + 10 * kDay, Stage::kSigned));
  c.apply_stage(stage("folded", end_ + 92 * kDay, Stage::kActive));
  EXPECT_TRUE(from_b.empty());
  EXPECT_EQ(c.stats().live_outcomes, 2u);
  EXPECT_EQ(c.agent_track_record("t1", agent).value().matured, want.matured);

  // An outcome the model's snapshot holds already changes nothing.
  TrackOutcome old{lead("old", end_ - 100 * kDay), true, std::nullopt};
  EXPECT_TRUE(b.add_outcome(old).value());
  EXPECT_EQ(b.agent_track_record("t1", agent).value().matured, want.matured);

  // Bad input, and sharing off.
  TrackOutcome bad = published[1];
  bad.lead.contact_id.clear();
  EXPECT_EQ(b.add_outcome(bad).status().code(), StatusCode::kInvalidArgument);
  bad = published[0];
  bad.first_outreach = folded.created_at - 1;
  EXPECT_EQ(b.add_outcome(bad).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(single.add_outcome(published[1]).status().code(), StatusCode::kFailedPrecondition);
}

// A server's start: sharing on with no publisher while it replays the store
// (every instance replays it itself), then the bus's publisher. What the
// replay counted is neither published nor counted again when another
// instance's copy arrives; what is counted afterwards is published.
TEST_F(LeadScoringTest, OutcomesCountedBeforeThePublisherIsSetAreKeptButNotPublished) {
  ASSERT_NO_FATAL_FAILURE(load_track_record_model());
  auto lead = [&](const std::string& id, UnixSeconds created) { return contact_like(history_->contacts[0], id, created); };
  const Contact replayed = lead("replayed", end_ + kDay);
  const Contact live = lead("live", end_ + 2 * kDay);
  const Contact elsewhere = lead("elsewhere", end_ + 3 * kDay);
  LeadScoringEngine engine(*registry_, nullptr);
  std::vector<TrackOutcome> published;
  engine.share_outcomes({});  // receive only, during the replay
  // Another instance's outcome arrives while the replay runs.
  TrackOutcome from_other{elsewhere, false, elsewhere.created_at + 600};
  EXPECT_TRUE(engine.add_outcome(from_other).value());
  engine.load_contact(replayed);
  engine.load_event(lead_event("t1", "replayed", replayed.created_at + 300, EventType::kSmsOut));
  engine.load_contact(elsewhere);
  engine.load_event(lead_event("t1", "elsewhere", elsewhere.created_at + 600, EventType::kSmsOut));
  EXPECT_EQ(engine.stats().live_outcomes, 2u);  // "elsewhere" once, though received and replayed
  engine.share_outcomes([&published](const TrackOutcome& o) { published.push_back(o); });
  // The replayed lead's copy from another instance counts nothing now.
  EXPECT_FALSE(engine.add_outcome({replayed, false, replayed.created_at + 300}).value());
  EXPECT_TRUE(published.empty());
  ASSERT_TRUE(engine.upsert_contact(live, live.created_at));
  ASSERT_TRUE(engine.apply_event(lead_event("t1", "live", live.created_at + 900, EventType::kCallOut), live.created_at + 900));
  ASSERT_EQ(published.size(), 1u);
  EXPECT_EQ(published[0].lead.contact_id, "live");
  EXPECT_EQ(published[0].first_outreach, live.created_at + 900);
  EXPECT_EQ(engine.stats().live_outcomes, 3u);
  features::TrackRecordBook expected = model_->track_records;
  expected.add_speed(replayed, 300);
  expected.add_speed(elsewhere, 600);
  expected.add_speed(live, 900);
  const features::TrackRecord want = *expected.find_agent("t1", replayed.assigned_agent_id);
  const features::TrackRecord got = engine.agent_track_record("t1", replayed.assigned_agent_id).value();
  EXPECT_EQ(got.speed_count, want.speed_count);
  EXPECT_DOUBLE_EQ(got.speed_log_sum, want.speed_log_sum);
  // An empty publisher stops publishing again.
  engine.share_outcomes({});
  const Contact quiet = lead("quiet", end_ + 4 * kDay);
  ASSERT_TRUE(engine.apply_event(lead_event("t1", "quiet", quiet.created_at + 60, EventType::kSmsOut), quiet.created_at + 60));
  EXPECT_EQ(published.size(), 1u);
  EXPECT_EQ(engine.stats().live_outcomes, 4u);
}

TEST_F(LeadScoringTest, ScoresCarryReasonsAndGoToTheCache) {
  auto model = load_lead_model(model_dir());
  ASSERT_TRUE(model);
  FixedRegistry registry(*model);
  FakeCache cache;
  LeadScoringEngine engine(registry, &cache);
  const Contact& c = history_->contacts[3];
  ASSERT_TRUE(engine.upsert_contact(c, c.created_at));
  const Event e = lead_event("t1", c.contact_id, c.created_at + 600, EventType::kSmsIn);
  auto s = engine.apply_event(e, e.ts + 1);
  ASSERT_TRUE(s);
  ASSERT_FALSE(s->reasons.empty());
  for (std::size_t i = 1; i < s->reasons.size(); ++i) {
    EXPECT_GE(std::fabs(s->reasons[i - 1].impact), std::fabs(s->reasons[i].impact));
  }
  EXPECT_FALSE(s->reasons[0].text.empty());
  EXPECT_GT(s->latency_ns, 0);
  EXPECT_EQ(s->scored_at, e.ts + 1);
  auto cached = cache.get("score:t1:" + c.contact_id);
  ASSERT_TRUE(cached.has_value());
  EXPECT_NE(cached->find(report_->version), std::string::npos);
  EXPECT_EQ(cache.last_ttl_, bus::kWarmScoreTtl);
  // Valid JSON carrying the score exactly (shortest round-trip doubles).
  boost::system::error_code ec;
  auto parsed = boost::json::parse(*cached, ec);
  ASSERT_FALSE(ec) << *cached;
  const auto& o = parsed.as_object();
  EXPECT_EQ(o.at("probability").to_number<double>(), s->probability);
  EXPECT_EQ(o.at("confidence").to_number<double>(), s->confidence);
  EXPECT_EQ(o.at("score").to_number<int>(), s->score);
  EXPECT_EQ(o.at("events_count").to_number<std::uint32_t>(), s->events_count);
  EXPECT_EQ(o.at("model_version").as_string(), s->model_version);
  EXPECT_EQ(o.at("scored_at").to_number<std::int64_t>(), s->scored_at);
}

// The batch worker's way: several leads' warm scores held, then sent in one
// cache call, holding exactly what scoring them one by one would have put.
TEST_F(LeadScoringTest, HeldWarmScoresReachTheCacheTogetherWhenStored) {
  auto model = load_lead_model(model_dir());
  ASSERT_TRUE(model);
  SwitchableRegistry registry(*model);
  FakeCache cache;
  LeadScoringEngine engine(registry, &cache);
  const Contact& a = history_->contacts[3];
  const Contact& b = history_->contacts[4];
  engine.load_contact(a);
  engine.load_contact(b);
  HeldWarmScores held;
  auto sa = engine.score(a.tenant_id, a.contact_id, a.created_at + 60, &held);
  auto sb = engine.score(b.tenant_id, b.contact_id, b.created_at + 60, &held);
  ASSERT_TRUE(sa && sb);
  EXPECT_EQ(cache.size(), 0u);  // held, not sent
  ASSERT_EQ(held.puts.size(), 2u);
  EXPECT_EQ(held.puts[0].key, "score:" + a.tenant_id + ":" + a.contact_id);
  EXPECT_EQ(held.puts[1].ttl_seconds, bus::kWarmScoreTtl);
  engine.store_warm_scores(held);
  EXPECT_TRUE(held.puts.empty());
  EXPECT_EQ(cache.put_each_calls_, 1);
  EXPECT_EQ(cache.size(), 2u);
  FakeCache alone;
  LeadScoringEngine one_by_one(registry, &alone);
  one_by_one.load_contact(a);
  ASSERT_TRUE(one_by_one.score(a.tenant_id, a.contact_id, a.created_at + 60));
  EXPECT_EQ(cache.get("score:" + a.tenant_id + ":" + a.contact_id),
            alone.get("score:" + a.tenant_id + ":" + a.contact_id));
  // A fallback score is no warm score: nothing held, nothing sent.
  registry.remove();
  ASSERT_TRUE(engine.score(a.tenant_id, a.contact_id, a.created_at + 120, &held));
  EXPECT_TRUE(held.puts.empty());
  engine.store_warm_scores(held);
  EXPECT_EQ(cache.put_each_calls_, 1);
}

TEST_F(LeadScoringTest, AMissingModelFallsBackToTheLastGoodScore) {
  auto model = load_lead_model(model_dir());
  ASSERT_TRUE(model);
  SwitchableRegistry registry(*model);
  FakeCache cache;
  LeadScoringEngine engine(registry, &cache);
  const Contact& c = history_->contacts[5];
  auto good = engine.upsert_contact(c, c.created_at);
  ASSERT_TRUE(good);
  ASSERT_TRUE(good->fallback_reason.empty());
  registry.remove();
  auto s = engine.apply_event(lead_event(c.tenant_id, c.contact_id, c.created_at + 60, EventType::kTourRequest),
                              c.created_at + 60);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->fallback_reason, "last_good_score");
  EXPECT_DOUBLE_EQ(s->probability, good->probability);
  EXPECT_EQ(s->model_version, good->model_version);
  EXPECT_EQ(s->events_count, 1u);
  // The good score was in memory: the cache was not asked.
  EXPECT_EQ(engine.stats().warm_score_hits, 0u);
  EXPECT_EQ(engine.stats().warm_score_misses, 0u);
  // A fresh engine (a restart, another instance) finds it in the cache.
  LeadScoringEngine restarted(registry, &cache);
  auto r = restarted.upsert_contact(c, c.created_at + 120);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->fallback_reason, "last_good_score");
  EXPECT_DOUBLE_EQ(r->probability, good->probability);
  EXPECT_EQ(restarted.stats().warm_score_hits, 1u);
  EXPECT_EQ(restarted.stats().warm_score_misses, 0u);
  // Kept in memory: the lead's next fallback does not ask again.
  auto again = restarted.apply_event(lead_event(c.tenant_id, c.contact_id, c.created_at + 180, EventType::kSmsIn),
                                     c.created_at + 180);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->fallback_reason, "last_good_score");
  EXPECT_DOUBLE_EQ(again->probability, good->probability);
  EXPECT_EQ(restarted.stats().warm_score_hits, 1u);
  // A lead never scored by a model gets the rule-based score.
  Contact other = history_->contacts[6];
  auto rule = restarted.upsert_contact(other, other.created_at);
  ASSERT_TRUE(rule);
  EXPECT_EQ(rule->fallback_reason, "no_model");
  EXPECT_EQ(rule->model_version, "fallback");
  EXPECT_EQ(restarted.stats().warm_score_misses, 1u);
  // A lead the cache had nothing for asks once, not at every score...
  ASSERT_TRUE(restarted.score(other.tenant_id, other.contact_id, other.created_at + 60));
  EXPECT_EQ(restarted.stats().warm_score_misses, 1u);
  // ...until it is rebuilt from elsewhere (another instance may have scored it).
  restarted.rebuild_lead(other.tenant_id, other.contact_id, &other, {});
  ASSERT_TRUE(restarted.score(other.tenant_id, other.contact_id, other.created_at + 60));
  EXPECT_EQ(restarted.stats().warm_score_misses, 2u);
  // An unreadable warm score is a miss too: the rule-based score serves.
  Contact garbled = history_->contacts[7];
  cache.put("score:" + garbled.tenant_id + ":" + garbled.contact_id, "{\"probability\":", bus::kWarmScoreTtl);
  auto from_rule = restarted.upsert_contact(garbled, garbled.created_at);
  ASSERT_TRUE(from_rule);
  EXPECT_EQ(from_rule->fallback_reason, "no_model");
  EXPECT_EQ(restarted.stats().warm_score_hits, 1u);
  EXPECT_EQ(restarted.stats().warm_score_misses, 3u);
}

// A lead whose warm score could not be read because the cache was down asks
// again once it is back, instead of keeping the rule-based score.
TEST_F(LeadScoringTest, AWarmScoreMissedWhileTheCacheIsDownIsAskedForAgain) {
  auto model = load_lead_model(model_dir());
  ASSERT_TRUE(model);
  SwitchableRegistry registry(*model);
  FakeCache cache;
  LeadScoringEngine scorer(registry, &cache);
  const Contact& c = history_->contacts[5];
  auto good = scorer.upsert_contact(c, c.created_at);
  ASSERT_TRUE(good);
  ASSERT_TRUE(good->fallback_reason.empty());
  registry.remove();

  cache.down = true;
  LeadScoringEngine restarted(registry, &cache);
  auto during = restarted.upsert_contact(c, c.created_at + 60);
  ASSERT_TRUE(during);
  EXPECT_EQ(during->fallback_reason, "no_model");
  EXPECT_EQ(restarted.stats().warm_score_misses, 1u);

  cache.down = false;
  auto after = restarted.score(c.tenant_id, c.contact_id, c.created_at + 120);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->fallback_reason, "last_good_score");
  EXPECT_DOUBLE_EQ(after->probability, good->probability);
  EXPECT_EQ(restarted.stats().warm_score_hits, 1u);
}

TEST(LeadScoringEngine, SaysWhetherItHeldTheLeadAnEventIsAppliedTo) {
  EmptyRegistry registry;
  LeadScoringEngine engine(registry, nullptr);
  EXPECT_FALSE(engine.has_lead("t1", "c1"));
  Event e;
  e.tenant_id = "t1";
  e.contact_id = "c1";
  e.type = EventType::kPageView;
  e.ts = kStart;
  bool known = true;
  ASSERT_TRUE(engine.apply_event(e, kStart, &known));
  EXPECT_FALSE(known);  // created by this event
  EXPECT_TRUE(engine.has_lead("t1", "c1"));
  e.ts = kStart + 60;
  ASSERT_TRUE(engine.apply_event(e, kStart + 60, &known));
  EXPECT_TRUE(known);
  // A contact alone makes the lead known; other tenants' leads are not.
  Contact c;
  c.tenant_id = "t1";
  c.contact_id = "c2";
  c.created_at = kStart;
  engine.load_contact(c);
  EXPECT_TRUE(engine.has_lead("t1", "c2"));
  EXPECT_FALSE(engine.has_lead("t2", "c1"));
  e.contact_id = "c2";
  ASSERT_TRUE(engine.apply_event(e, kStart + 60, &known));
  EXPECT_TRUE(known);
  // No cache: no warm-score lookups, though every score here is a fallback.
  EXPECT_EQ(engine.stats().warm_score_hits + engine.stats().warm_score_misses, 0u);
}

TEST(LeadScoringEngine, FallsBackWithoutModel) {
  EmptyRegistry registry;
  FakeCache cache;
  LeadScoringEngine engine(registry, &cache);
  Contact c;
  c.tenant_id = "t1";
  c.contact_id = "c1";
  c.created_at = kStart;
  c.pre_approved = true;
  c.budget = 350000;
  auto s = engine.upsert_contact(c, kStart);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->model_version, "fallback");
  EXPECT_EQ(s->fallback_reason, "no_model");
  const double cold = s->probability;
  Event e;
  e.tenant_id = "t1";
  e.contact_id = "c1";
  e.type = EventType::kTourRequest;
  e.ts = kStart + 60;
  auto s2 = engine.apply_event(e, kStart + 60);
  ASSERT_TRUE(s2);
  EXPECT_GT(s2->probability, cold);
  EXPECT_GT(s2->probability, 0.0);
  EXPECT_LT(s2->probability, 1.0);
  ASSERT_FALSE(s2->reasons.empty());
  EXPECT_EQ(s2->reasons[0].feature, "count_tour_request");
  EXPECT_EQ(engine.stats().fallback_scores, 2u);
  EXPECT_EQ(cache.size(), 0u);  // fallback scores are not "last good"
}

TEST(LeadScoringEngine, UnknownLeadIsNotFoundAndBadInputRejected) {
  EmptyRegistry registry;
  LeadScoringEngine engine(registry, nullptr);
  auto s = engine.score("t1", "nobody", kStart);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.status().code(), StatusCode::kNotFound);
  Event e;
  e.contact_id = "c1";
  EXPECT_EQ(engine.apply_event(e, kStart).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(engine.upsert_contact(Contact{}, kStart).status().code(), StatusCode::kInvalidArgument);
}

TEST(LeadScoringEngine, EventBeforeContactCreatesMinimalLead) {
  EmptyRegistry registry;
  LeadScoringEngine engine(registry, nullptr);
  Event e;
  e.tenant_id = "t1";
  e.contact_id = "c9";
  e.type = EventType::kPageView;
  e.ts = kStart;
  ASSERT_TRUE(engine.apply_event(e, kStart));
  auto s = engine.score("t1", "c9", kStart + 3600);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->events_count, 1u);
  EXPECT_FALSE(engine.score("t2", "c9", kStart));  // tenants are separate
}

TEST(LeadScoringEngine, TopLeadsAreRankedAndFilteredByBand) {
  EmptyRegistry registry;
  LeadScoringEngine engine(registry, nullptr);
  for (int i = 0; i < 6; ++i) {
    Contact c;
    c.tenant_id = "t1";
    c.contact_id = "c" + std::to_string(i);
    c.created_at = kStart;
    if (i >= 4) c.pre_approved = true;
    ASSERT_TRUE(engine.upsert_contact(c, kStart));
    for (int k = 0; k < i; ++k) {
      Event e;
      e.tenant_id = "t1";
      e.contact_id = c.contact_id;
      e.type = k % 2 ? EventType::kTourRequest : EventType::kAppointmentBooked;
      e.ts = kStart + k;
      ASSERT_TRUE(engine.apply_event(e, kStart + 10));
    }
  }
  Contact other;
  other.tenant_id = "t2";
  other.contact_id = "x";
  ASSERT_TRUE(engine.upsert_contact(other, kStart));
  auto top = engine.top_leads("t1", std::nullopt, 3);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].lead_id, "c5");
  EXPECT_GE(top[0].probability, top[1].probability);
  EXPECT_GE(top[1].probability, top[2].probability);
  auto all = engine.top_leads("t1", std::nullopt, 100);
  EXPECT_EQ(all.size(), 6u);
  auto cold = engine.top_leads("t1", Band::kCold, 100);
  for (const auto& s : cold) EXPECT_EQ(s.band, Band::kCold);
  auto hot = engine.top_leads("t1", Band::kHot, 100);
  for (const auto& s : hot) EXPECT_EQ(s.band, Band::kHot);
  std::size_t warm = engine.top_leads("t1", Band::kWarm, 100).size();
  EXPECT_EQ(cold.size() + hot.size() + warm, 6u);
  EXPECT_FALSE(cold.empty());
  EXPECT_FALSE(hot.empty());
}

TEST(LeadScoringEngine, ConcurrentEventsOnSharedAndSeparateLeads) {
  EmptyRegistry registry;
  LeadScoringEngine engine(registry, nullptr, EngineOptions{8});
  constexpr int kThreads = 4, kPerThread = 400;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        Event e;
        e.tenant_id = "t1";
        e.contact_id = i % 2 ? "shared" : "own" + std::to_string(t);
        e.type = EventType::kPropertyView;
        e.ts = kStart + i;
        if (!engine.apply_event(e, kStart + i)) failures++;
        if (i % 50 == 0) engine.top_leads("t1", std::nullopt, 5);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(engine.stats().events_applied, std::uint64_t(kThreads * kPerThread));
  EXPECT_EQ(engine.stats().leads, std::uint64_t(kThreads + 1));
  EXPECT_EQ(engine.score("t1", "shared", kStart + 1000)->events_count, std::uint32_t(kThreads * kPerThread / 2));
}

TEST(Bands, ThresholdsAndNames) {
  EXPECT_EQ(band_for_probability(0.5), Band::kHot);
  EXPECT_EQ(band_for_probability(0.49), Band::kWarm);
  EXPECT_EQ(band_for_probability(0.2), Band::kWarm);
  EXPECT_EQ(band_for_probability(0.19), Band::kCold);
  for (Band b : {Band::kCold, Band::kWarm, Band::kHot}) EXPECT_EQ(parse_band(band_name(b)), b);
  EXPECT_FALSE(parse_band("lukewarm"));
}

TEST_F(LeadScoringTest, RegistryReloadKeepsOldModelOnCorruptNewOne) {
  const std::string root = *dir_ + "_registry";
  fs::remove_all(root);
  fs::create_directories(root);
  DirectoryModelRegistry empty(root + "/absent");
  EXPECT_TRUE(empty.reload().is_ok());
  EXPECT_EQ(empty.lead_model("t1"), nullptr);
  fs::copy(model_dir(), root + "/leads", fs::copy_options::recursive);
  DirectoryModelRegistry registry(root);
  ASSERT_TRUE(registry.reload().is_ok());
  EXPECT_EQ(registry.shared_version(), report_->version);
  auto before = registry.lead_model("t1");
  ASSERT_NE(before, nullptr);
  {
    std::ofstream out(root + "/leads/model.json", std::ios::trunc);
    out << "{not json";
  }
  Status st = registry.reload();
  EXPECT_FALSE(st.is_ok());
  EXPECT_EQ(registry.shared_version(), report_->version);
  EXPECT_EQ(registry.lead_model("t1"), before);
  fs::remove_all(root);
}

TEST_F(LeadScoringTest, LoadRejectsOtherSchemaAndMissingFiles) {
  const std::string copy = *dir_ + "_schema";
  fs::remove_all(copy);
  fs::copy(model_dir(), copy, fs::copy_options::recursive);
  std::string meta;
  {
    std::ifstream in(copy + "/metadata.json");
    meta.assign(std::istreambuf_iterator<char>(in), {});
  }
  auto pos = meta.find(features::schema_hash());
  ASSERT_NE(pos, std::string::npos);
  meta.replace(pos, features::schema_hash().size(), "fnv1a64:0000000000000000");
  {
    std::ofstream out(copy + "/metadata.json", std::ios::trunc);
    out << meta;
  }
  auto loaded = load_lead_model(copy);
  ASSERT_FALSE(loaded);
  EXPECT_EQ(loaded.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(loaded.status().message().find("schema"), std::string::npos);
  EXPECT_EQ(load_lead_model(copy + "/nope").status().code(), StatusCode::kNotFound);
  fs::remove_all(copy);
}

// Rewrites metadata.json of a copied model directory through `edit`.
void edit_metadata(const std::string& dir, const std::function<void(boost::json::object&)>& edit) {
  std::string text;
  {
    std::ifstream in(dir + "/metadata.json");
    text.assign(std::istreambuf_iterator<char>(in), {});
  }
  boost::json::value meta = boost::json::parse(text);
  edit(meta.as_object());
  std::ofstream out(dir + "/metadata.json", std::ios::trunc);
  out << boost::json::serialize(meta);
}

// A tenant admin's reload reads the shared model and the tenant's own, never
// another tenant's; a model is swapped only when its version moved, so a
// reload that finds nothing new leaves every served model in place.
TEST_F(LeadScoringTest, TenantReloadReadsSharedAndOwnModelsAndSwapsOnlyNewVersions) {
  const std::string root = *dir_ + "_tenant_reload";
  fs::remove_all(root);
  fs::create_directories(root + "/tenants/a");
  fs::create_directories(root + "/tenants/b");
  fs::copy(model_dir(), root + "/leads", fs::copy_options::recursive);
  fs::copy(model_dir(), root + "/tenants/a/leads", fs::copy_options::recursive);
  fs::copy(model_dir(), root + "/tenants/b/leads", fs::copy_options::recursive);
  edit_metadata(root + "/tenants/b/leads", [](boost::json::object& m) { m["version"] = "leads-b1"; });
  DirectoryModelRegistry registry(root);
  ASSERT_TRUE(registry.reload().is_ok());
  const auto shared = registry.lead_model("c");
  const auto own_a = registry.lead_model("a");
  const auto own_b = registry.lead_model("b");
  ASSERT_NE(own_b, nullptr);
  EXPECT_NE(own_b, shared);

  auto same = registry.reload_tenant("a");
  ASSERT_TRUE(same.status.is_ok()) << same.status.to_string();
  EXPECT_TRUE(same.reloaded.empty());
  EXPECT_EQ(same.unchanged, (std::vector<std::string>{"leads", "tenants/a/leads"}));
  EXPECT_EQ(registry.lead_model("a"), own_a);
  EXPECT_EQ(registry.lead_model("c"), shared);

  // Tenant b's model is broken on disk: a's reload never reads it.
  {
    std::ofstream out(root + "/tenants/b/leads/model.json", std::ios::trunc);
    out << "{not json";
  }
  edit_metadata(root + "/leads", [](boost::json::object& m) { m["version"] = "leads-shared2"; });
  auto moved = registry.reload_tenant("a");
  ASSERT_TRUE(moved.status.is_ok()) << moved.status.to_string();
  EXPECT_EQ(moved.reloaded, std::vector<std::string>{"leads"});
  EXPECT_EQ(moved.unchanged, std::vector<std::string>{"tenants/a/leads"});
  EXPECT_EQ(registry.shared_version(), "leads-shared2");
  EXPECT_NE(registry.lead_model("c"), shared);
  EXPECT_EQ(registry.lead_model("a"), own_a);
  EXPECT_EQ(registry.lead_model("b"), own_b);
  EXPECT_TRUE(registry.last_reload().is_ok());

  // b's own reload finds it broken: b keeps its model, and the error stays
  // named (readiness) through a's later reloads until b's loads.
  auto broken = registry.reload_tenant("b");
  EXPECT_EQ(broken.status.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(broken.status.message().find("tenants/b/leads"), std::string::npos) << broken.status.message();
  EXPECT_EQ(registry.lead_model("b"), own_b);
  EXPECT_TRUE(registry.reload_tenant("a").status.is_ok());
  EXPECT_FALSE(registry.last_reload().is_ok());
  fs::copy(model_dir() + "/model.json", root + "/tenants/b/leads/model.json", fs::copy_options::overwrite_existing);
  auto fixed = registry.reload_tenant("b");
  ASSERT_TRUE(fixed.status.is_ok()) << fixed.status.to_string();
  // Same version leads-b1 as the one serving: kept, nothing swapped.
  EXPECT_EQ(fixed.unchanged, (std::vector<std::string>{"leads", "tenants/b/leads"}));
  EXPECT_TRUE(fixed.reloaded.empty());
  EXPECT_EQ(registry.lead_model("b"), own_b);
  EXPECT_TRUE(registry.last_reload().is_ok());

  EXPECT_EQ(registry.reload_tenant("../b").status.code(), StatusCode::kInvalidArgument);
  fs::remove_all(root);
}

// An operator's reload of everything (SIGHUP) reads the shared model and
// every tenant directory, and says per directory what moved, what stayed and
// what failed to load (the failed one keeps serving its previous version).
TEST_F(LeadScoringTest, FullReloadReportsEveryDirectoryByOutcome) {
  const std::string root = *dir_ + "_full_reload";
  fs::remove_all(root);
  fs::create_directories(root + "/tenants/a");
  fs::create_directories(root + "/tenants/b");
  fs::copy(model_dir(), root + "/leads", fs::copy_options::recursive);
  fs::copy(model_dir(), root + "/tenants/a/leads", fs::copy_options::recursive);
  fs::copy(model_dir(), root + "/tenants/b/leads", fs::copy_options::recursive);
  fs::create_directories(root + "/tenants/not a tenant/leads");  // no valid id: never read
  edit_metadata(root + "/tenants/a/leads", [](boost::json::object& m) { m["version"] = "leads-a1"; });
  edit_metadata(root + "/tenants/b/leads", [](boost::json::object& m) { m["version"] = "leads-b1"; });
  DirectoryModelRegistry registry(root);
  auto first = registry.reload_all();
  ASSERT_TRUE(first.status.is_ok()) << first.status.to_string();
  EXPECT_EQ(first.reloaded.size(), 3u);
  const auto own_b = registry.lead_model("b");

  edit_metadata(root + "/tenants/a/leads", [](boost::json::object& m) { m["version"] = "leads-a2"; });
  {
    std::ofstream out(root + "/tenants/b/leads/model.json", std::ios::trunc);
    out << "{not json";
  }
  auto second = registry.reload_all();
  EXPECT_EQ(second.status.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(second.status.message().find("tenants/b/leads"), std::string::npos) << second.status.message();
  EXPECT_EQ(second.reloaded, std::vector<std::string>{"tenants/a/leads"});
  EXPECT_EQ(second.unchanged, std::vector<std::string>{"leads"});
  EXPECT_EQ(second.failed, std::vector<std::string>{"tenants/b/leads"});
  EXPECT_EQ(lead_model_version(*registry.lead_model("a")), "leads-a2");
  EXPECT_EQ(registry.lead_model("b"), own_b);
  EXPECT_EQ(lead_model_version(*registry.lead_model("b")), "leads-b1");
  fs::remove_all(root);
}

TEST_F(LeadScoringTest, WithoutAYearOfHistoryTheLevelIsLeftAlone) {
  // 300 days of history: no cohorts a year before the latest ones, so no
  // seasonal reference and no level shift; the served probability is the
  // forest's own.
  for (const auto& m : report_->validation) EXPECT_EQ(m.level_shift, 0.0) << m.hours;
  auto model = load_lead_model(model_dir());
  ASSERT_TRUE(model);
  EXPECT_FALSE((*model)->level_calibration.empty());
  std::vector<float> row(features::feature_count());
  features::LeadFeatureState s;
  s.set_contact(history_->contacts[3]);
  s.write_features(history_->contacts[3].created_at + 24 * 3600, &(*model)->track_records, row.data());
  auto out = evaluate_model(**model, row.data(), Reasons::kNone);
  ASSERT_TRUE(out);
  EXPECT_NEAR(out->probability, (*model)->forest.predict(row.data()), 1e-9);
}

TEST_F(LeadScoringTest, ModelsWithoutLevelCalibrationLoadAndMalformedOnesDoNot) {
  const std::string copy = *dir_ + "_level";
  fs::remove_all(copy);
  fs::copy(model_dir(), copy, fs::copy_options::recursive);
  edit_metadata(copy, [](boost::json::object& m) { m.erase("level_calibration"); });
  auto old_model = load_lead_model(copy);
  ASSERT_TRUE(old_model) << old_model.status().to_string();
  EXPECT_TRUE((*old_model)->level_calibration.empty());
  edit_metadata(copy, [](boost::json::object& m) {
    m["level_calibration"] = boost::json::object{
        {"map", boost::json::object{{"ages_hours", {24, 1}}, {"intercept", {0, 0}}, {"slope", {1, 1}}}}};
  });
  auto bad = load_lead_model(copy);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(bad.status().message().find("level_calibration"), std::string::npos);
  edit_metadata(copy, [](boost::json::object& m) { m["level_calibration"] = boost::json::object{}; });
  EXPECT_FALSE(load_lead_model(copy));
  fs::remove_all(copy);
}

TEST(TrainLeadModel, LevelCalibrationFollowsADriftSinceLastYear) {
  // 16 months of leads; in the last 60 days one in three leads that would
  // not have signed signs 12 days in (behaviour unchanged). The latest
  // cohorts then convert more than the model expects while the same dates a
  // year earlier did not, so the served level moves up.
  History h = make_history(3000, kStart, 480 * kDay, 21, "d");
  const UnixSeconds drift_from = kStart + 420 * kDay;
  int extra = 0;
  for (const auto& c : h.contacts) {
    if (c.created_at < drift_from || h.converted[c.contact_id] || ++extra % 3 != 0) continue;
    OpportunityStage s;
    s.tenant_id = c.tenant_id;
    s.opportunity_id = std::string("o") + c.contact_id;
    s.contact_id = c.contact_id;
    s.agent_id = c.assigned_agent_id;
    s.ts = c.created_at + 12 * kDay;
    s.stage = Stage::kSigned;
    h.stages.push_back(s);
  }
  TrainLeadOptions options;
  options.example_ages_hours = {1, 24, 168, 336};
  options.nthread = 2;
  options.progress = false;
  const std::string out = (fs::temp_directory_path() / (std::string("reai_scoring_drift_") + std::to_string(::getpid()))).string();
  auto report = train_lead_model(h.contacts, h.events, h.stages, out, options);
  ASSERT_TRUE(report) << report.status().to_string();
  // Shrunk towards 0 by the windows' sampling variance, but clearly up.
  for (const auto& m : report->validation) EXPECT_GT(m.level_shift, 0.05) << m.hours;
  // Leads older than a week keep the week-old shift.
  ASSERT_EQ(report->validation.size(), 4u);
  EXPECT_EQ(report->validation[3].level_shift, report->validation[2].level_shift);
  auto model = load_lead_model(out);
  ASSERT_TRUE(model) << model.status().to_string();
  // Served probability = sigmoid(logit(forest) + shift at the lead's age).
  std::vector<float> row(features::feature_count());
  for (std::size_t i = 0; i < 20; ++i) {
    features::LeadFeatureState s;
    s.set_contact(h.contacts[i]);
    s.write_features(h.contacts[i].created_at + 24 * 3600, &(*model)->track_records, row.data());
    const double raw = (*model)->forest.predict(row.data());
    const double z = std::log(raw / (1 - raw)) + report->validation[1].level_shift;
    auto served = evaluate_model(**model, row.data(), Reasons::kPath);
    ASSERT_TRUE(served);
    EXPECT_NEAR(served->probability, 1 / (1 + std::exp(-z)), 1e-9);
  }
  fs::remove_all(out);
}

TEST(TrainLeadModel, RejectsTooLittleOrOneClassHistory) {
  TrainLeadOptions options;
  options.progress = false;
  const std::string out = (fs::temp_directory_path() / "reai_scoring_bad_model").string();
  EXPECT_EQ(train_lead_model({}, {}, {}, out, options).status().code(), StatusCode::kInvalidArgument);
  History h = make_history(300, kStart, 100 * kDay, 3, "c");
  EXPECT_EQ(train_lead_model(h.contacts, h.events, {}, out, options).status().code(), StatusCode::kInvalidArgument);
  options.example_ages_hours = {-1};
  EXPECT_EQ(train_lead_model(h.contacts, h.events, h.stages, out, options).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_FALSE(fs::exists(out + "/model.json"));
}

TEST_F(LeadScoringTest, ReplayRejectsBadInput) {
  EXPECT_FALSE(replay_scores(*dir_ + "/missing", {}, {}, {}, {1}));
  EXPECT_EQ(replay_scores(model_dir(), {}, {}, {}, {-1}).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace reai::scoring
