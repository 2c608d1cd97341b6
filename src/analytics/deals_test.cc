#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "analytics/analytics.h"
#include "analytics/synthetic_deals.h"
#include "models/models.h"

namespace reai::analytics {
namespace {

using testing::kHistoryStart;
using testing::synthetic_history;

constexpr UnixSeconds kDaySeconds = 86400;

DealTrainOptions fast_options(UnixSeconds cutoff) {
  DealTrainOptions o;
  o.cutoff = cutoff;
  o.step_days = 10;
  o.nthread = 1;
  return o;
}

// One model shared by the tests: trained once on 450 days of generated history.
const DealModel& shared_model() {
  static DealModel* model = [] {
    const CrmHistory h = synthetic_history(1400, 600, 1);
    auto m = DealModel::train(h, fast_options(kHistoryStart + 450 * kDaySeconds), nullptr);
    EXPECT_TRUE(m.has_value()) << m.status().to_string();
    return new DealModel(std::move(*m));  // lives to the end of the test binary
  }();
  return *model;
}

TEST(DealModel, DealsFurtherAlongCloseSoonerAndMoreOften) {
  const CrmHistory h = synthetic_history(1400, 600, 1);
  const UnixSeconds as_of = kHistoryStart + 500 * kDaySeconds;
  const auto preds = shared_model().predict(h, as_of);
  ASSERT_GT(preds.size(), 50u);
  std::map<std::string, Stage> stage_at;
  for (const auto& s : h.stages)
    if (s.ts <= as_of) stage_at[s.opportunity_id] = s.stage;
  double days[4] = {0, 0, 0, 0}, p[4] = {0, 0, 0, 0}, n[4] = {0, 0, 0, 0};
  for (const auto& d : preds) {
    const int k = static_cast<int>(stage_at.at(d.opportunity_id));
    ASSERT_LT(k, 4);
    days[k] += d.expected_days_to_close;
    p[k] += d.p_close;
    n[k] += 1;
    EXPECT_LE(d.lower80_days, d.expected_days_to_close);
    EXPECT_GE(d.upper80_days, d.expected_days_to_close);
    EXPECT_GT(d.p_close, 0);
    EXPECT_LT(d.p_close, 1);
  }
  ASSERT_GT(n[0], 3);
  ASSERT_GT(n[3], 3);
  EXPECT_LT(days[3] / n[3], days[0] / n[0]);  // under contract closes before signed
  EXPECT_GT(p[3] / n[3], p[0] / n[0]);
}

TEST(DealModel, RowsAfterAsOfChangeNothing) {
  CrmHistory h = synthetic_history(1400, 600, 1);
  const UnixSeconds as_of = kHistoryStart + 480 * kDaySeconds;
  const auto before = shared_model().predict(h, as_of);
  // Resolve every deal right after as-of and add later activity.
  for (const auto& p : before) {
    OpportunityStage row;
    row.tenant_id = "t_gen";
    row.opportunity_id = p.opportunity_id;
    row.contact_id = "c" + p.opportunity_id.substr(1);
    row.agent_id = p.agent_id;
    row.monetary_value = 1;
    row.ts = as_of + 1;
    row.stage = Stage::kLost;
    h.stages.push_back(row);
    Event e;
    e.tenant_id = "t_gen";
    e.contact_id = row.contact_id;
    e.ts = as_of + 2;
    e.type = EventType::kAppointmentShowed;
    h.events.push_back(e);
  }
  const auto after = shared_model().predict(h, as_of);
  ASSERT_EQ(before.size(), after.size());
  for (std::size_t i = 0; i < before.size(); ++i) {
    EXPECT_EQ(before[i].opportunity_id, after[i].opportunity_id);
    EXPECT_DOUBLE_EQ(before[i].p_close, after[i].p_close);
    EXPECT_DOUBLE_EQ(before[i].expected_days_to_close, after[i].expected_days_to_close);
    EXPECT_DOUBLE_EQ(before[i].upper80_days, after[i].upper80_days);
  }
}

TEST(DealModel, HeldOutIntervalsCoverAndProbabilitiesRank) {
  // Same process, a different draw: as-of points after the training cutoff.
  const CrmHistory h = synthetic_history(1400, 600, 99);
  const UnixSeconds end = kHistoryStart + 800 * kDaySeconds;
  std::vector<double> p;
  std::vector<float> y;
  double covered = 0, closed = 0;
  for (int day : {470, 500, 530, 560}) {
    const UnixSeconds as_of = kHistoryStart + day * kDaySeconds;
    const auto labels = label_open_deals(h, as_of, end);
    std::map<std::string, DealLabel> by_id;
    for (const auto& l : labels) by_id[l.opportunity_id] = l;
    for (const auto& d : shared_model().predict(h, as_of)) {
      const DealLabel& l = by_id.at(d.opportunity_id);
      if (l.outcome == DealOutcome::kOpen) continue;
      p.push_back(d.p_close);
      y.push_back(l.outcome == DealOutcome::kClosed ? 1.f : 0.f);
      if (l.outcome != DealOutcome::kClosed) continue;
      closed += 1;
      covered += (l.days >= d.lower80_days && l.days <= d.upper80_days) ? 1 : 0;
    }
  }
  ASSERT_GT(closed, 200);
  EXPECT_GT(covered / closed, 0.70);
  EXPECT_LT(covered / closed, 0.90);
  EXPECT_GT(models::roc_auc(p, y), 0.65);  // stage and pre-approval drive losses
}

TEST(DealModel, SaveLoadRoundTripPredictsTheSame) {
  const std::string dir = ::testing::TempDir() + "/deal_model_roundtrip";
  ASSERT_TRUE(shared_model().save(dir).is_ok());
  auto loaded = DealModel::load(dir);
  ASSERT_TRUE(loaded.has_value()) << loaded.status().to_string();
  EXPECT_EQ(loaded->version(), shared_model().version());
  const CrmHistory h = synthetic_history(300, 500, 5);
  const UnixSeconds as_of = kHistoryStart + 400 * kDaySeconds;
  const auto a = shared_model().predict(h, as_of);
  const auto b = loaded->predict(h, as_of);
  ASSERT_EQ(a.size(), b.size());
  ASSERT_FALSE(a.empty());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_NEAR(a[i].p_close, b[i].p_close, 1e-6);
    EXPECT_NEAR(a[i].expected_days_to_close, b[i].expected_days_to_close, 1e-3);
  }
}

TEST(DealModel, NothingOpenIsAnEmptyResult) {
  const CrmHistory h = synthetic_history(300, 500, 5);
  EXPECT_TRUE(shared_model().predict(h, kHistoryStart - 10 * kDaySeconds).empty());
}

TEST(DealModel, LoadRejectsMissingAndMalformedModels) {
  auto missing = DealModel::load(::testing::TempDir() + "/no_such_deal_model");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  const std::string dir = ::testing::TempDir() + "/deal_model_bad";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/deal_model.json") << "{\"format\":\"reai-deal-model-1\",\"feature_names\":[\"x\"]}";
  auto bad = DealModel::load(dir);
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  std::ofstream(dir + "/deal_model.json") << "not json";
  EXPECT_EQ(DealModel::load(dir).status().code(), StatusCode::kInvalidArgument);
}

TEST(DealModel, TrainingRejectsEmptyAndTooShortHistories) {
  auto empty = DealModel::train(CrmHistory{}, fast_options(0), nullptr);
  ASSERT_FALSE(empty.has_value());
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
  // 60 days before the cutoff is shorter than the 90-day label horizon.
  auto short_history =
      DealModel::train(synthetic_history(100, 40, 3), fast_options(kHistoryStart + 60 * kDaySeconds), nullptr);
  ASSERT_FALSE(short_history.has_value());
  EXPECT_EQ(short_history.status().code(), StatusCode::kInvalidArgument);
  // 200 days of rows but only 3 deals: too few resolved examples.
  auto few = DealModel::train(synthetic_history(3, 200, 3), fast_options(0), nullptr);
  ASSERT_FALSE(few.has_value());
  EXPECT_NE(few.status().message().find("too few"), std::string::npos) << few.status().message();
}

TEST(DealModel, ModelOnEnoughDealsIsNotDegenerate) {
  const DealTrainReport& r = shared_model().report();
  EXPECT_EQ(shared_model().degenerate(), "");
  EXPECT_GE(r.closed_deals, kMinDealsPerOutcome);
  EXPECT_GE(r.lost_deals, kMinDealsPerOutcome);
  EXPECT_GT(r.calibration_auc, 0.6);
}

TEST(DealHistoryCheck, NamesWhatIsMissingBeforeAForecast) {
  const Status none = check_deal_history_at(CrmHistory{}, kHistoryStart);
  EXPECT_EQ(none.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(none.message(), "no opportunity history: no stage rows (opportunity_stages.csv) to forecast from");
  const CrmHistory h = synthetic_history(20, 100, 3);
  UnixSeconds first = h.stages.front().ts;
  for (const auto& s : h.stages) first = std::min(first, s.ts);
  const Status before = check_deal_history_at(h, first - 1);
  EXPECT_EQ(before.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(before.message(), "no opportunity history at or before " + format_iso8601(first - 1) +
                                  ": the first stage row is at " + format_iso8601(first));
  EXPECT_TRUE(check_deal_history_at(h, first).is_ok());
}

class CrmFiles : public ::testing::Test {
 protected:
  std::string dir = ::testing::TempDir() + "/analytics_crm_files";
  std::string fixture = "tests/fixtures/crm_small";
  void SetUp() override { std::filesystem::create_directories(dir); }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(dir + "/" + name) << text;
    return dir + "/" + name;
  }
};

TEST_F(CrmFiles, LoadsTheFixture) {
  auto h = load_crm_history(fixture + "/contacts.csv", fixture + "/events.csv", fixture + "/opportunity_stages.csv");
  ASSERT_TRUE(h.has_value()) << h.status().to_string();
  EXPECT_EQ(h->contacts.size(), 600u);
  EXPECT_EQ(h->stages.size(), 162u);
}

// The small fixture: 37 opportunities, 12 of which close and 8 are lost
// after the training as-of points. Its classifier is a constant (AUC 0.5):
// the model says so and answers with each stage's closing rate.
TEST_F(CrmFiles, TooFewLostDealsMakeADegenerateModelThatAnswersWithTheStagePrior) {
  auto h = load_crm_history(fixture + "/contacts.csv", fixture + "/events.csv", fixture + "/opportunity_stages.csv");
  ASSERT_TRUE(h.has_value()) << h.status().to_string();
  DealTrainOptions options;
  options.nthread = 1;
  DealTrainReport report;
  auto model = DealModel::train(*h, options, &report);
  ASSERT_TRUE(model.has_value()) << model.status().to_string();
  EXPECT_EQ(report.train_examples, 164u);
  EXPECT_EQ(report.closed_deals, 12u);
  EXPECT_EQ(report.lost_deals, 8u);
  EXPECT_DOUBLE_EQ(report.calibration_auc, 0.5);
  EXPECT_EQ(model->degenerate(),
            "only 8 lost deals among 164 training examples (need at least 10 closed and 10 lost deals)");
  const UnixSeconds as_of = *parse_iso8601("2025-06-01T00:00:00Z");
  const auto prior = StagePrior::train(*h, options);
  ASSERT_TRUE(prior.has_value());
  const auto expected = prior->predict(*h, as_of);
  const auto predictions = model->predict(*h, as_of);
  ASSERT_EQ(predictions.size(), expected.size());
  ASSERT_GT(predictions.size(), 3u);
  std::set<double> distinct;
  for (std::size_t i = 0; i < predictions.size(); ++i) {
    EXPECT_EQ(predictions[i].opportunity_id, expected[i].opportunity_id);
    EXPECT_DOUBLE_EQ(predictions[i].p_close, expected[i].p_close);  // the stage prior's rate
    EXPECT_LE(predictions[i].lower80_days, predictions[i].expected_days_to_close);
    EXPECT_LE(predictions[i].expected_days_to_close, predictions[i].upper80_days);
    EXPECT_GT(predictions[i].lower80_days, 0);
    distinct.insert(predictions[i].p_close);
  }
  EXPECT_GT(distinct.size(), 1u);  // stages differ, a constant would not
  // Saved and loaded: the reason and the prior travel with the model.
  ASSERT_TRUE(model->save(dir + "/degenerate").is_ok());
  auto loaded = DealModel::load(dir + "/degenerate");
  ASSERT_TRUE(loaded.has_value()) << loaded.status().to_string();
  EXPECT_EQ(loaded->degenerate(), model->degenerate());
  const auto again = loaded->predict(*h, as_of);
  ASSERT_EQ(again.size(), predictions.size());
  for (std::size_t i = 0; i < again.size(); ++i) {
    EXPECT_DOUBLE_EQ(again[i].p_close, predictions[i].p_close);
    EXPECT_DOUBLE_EQ(again[i].upper80_days, predictions[i].upper80_days);
  }
}

TEST_F(CrmFiles, RejectsMissingFileColumnBadTimestampAndEmpty) {
  const std::string contacts = fixture + "/contacts.csv", events = fixture + "/events.csv";
  auto missing = load_crm_history(contacts, events, dir + "/nope.csv");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  const std::string no_stage_column = write(
      "no_stage.csv", "opportunity_id,tenant_id,contact_id,agent_id,monetary_value,ts\no1,t,c1,a1,100,2024-01-01T00:00:00Z\n");
  auto column = load_crm_history(contacts, events, no_stage_column);
  EXPECT_EQ(column.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(column.status().message().find("stage"), std::string::npos) << column.status().message();
  const std::string bad_ts = write("bad_ts.csv",
                                   "opportunity_id,tenant_id,contact_id,agent_id,monetary_value,ts,stage\n"
                                   "o1,t,c1,a1,100,2024-13-45T00:00:00Z,signed\n");
  EXPECT_EQ(load_crm_history(contacts, events, bad_ts).status().code(), StatusCode::kInvalidArgument);
  const std::string empty = write("empty.csv", "");
  EXPECT_EQ(load_crm_history(contacts, events, empty).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace reai::analytics
