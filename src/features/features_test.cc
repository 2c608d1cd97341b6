#include "features/features.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

namespace reai::features {
namespace {

constexpr UnixSeconds kT0 = 1'700'000'000;  // 2023-11-14T22:13:20Z, a Tuesday

Contact make_contact() {
  Contact c;
  c.tenant_id = "t1";
  c.contact_id = "c1";
  c.created_at = kT0;
  c.source = "zillow";
  c.lead_type = LeadType::kBuyer;
  c.assigned_agent_id = "ag1";
  c.budget = 300000;
  c.pre_approved = true;
  return c;
}

Event ev(EventType type, UnixSeconds ts, std::string property = "", std::optional<double> value = {}) {
  Event e;
  e.tenant_id = "t1";
  e.contact_id = "c1";
  e.ts = ts;
  e.type = type;
  e.property_id = std::move(property);
  e.value = value;
  return e;
}

std::vector<float> row(const LeadFeatureState& s, UnixSeconds at, const TrackRecordBook* book = nullptr) {
  std::vector<float> out(feature_count(), -1.f);
  s.write_features(at, book, out.data());
  return out;
}

float get(const std::vector<float>& r, std::string_view name) {
  auto i = feature_index(name);
  EXPECT_TRUE(i.has_value()) << name;
  return r[*i];
}

TEST(FeatureSchema, NamesAreUniqueAndHashStable) {
  auto schema = feature_schema();
  ASSERT_EQ(schema.size(), feature_count());
  for (std::size_t i = 0; i < schema.size(); ++i) {
    EXPECT_EQ(feature_index(schema[i].name), i);
  }
  EXPECT_EQ(schema_hash(), schema_hash());
  EXPECT_EQ(schema_hash().rfind("fnv1a64:", 0), 0u);
  EXPECT_FALSE(feature_index("nope").has_value());
}

TEST(LeadFeatureState, CountsRecencyAndAge) {
  LeadFeatureState s;
  s.set_contact(make_contact());
  s.apply(ev(EventType::kPageView, kT0 + 60));
  s.apply(ev(EventType::kPropertyView, kT0 + 120, "p1", 280000));
  s.apply(ev(EventType::kPropertyView, kT0 + 180, "p1", 280000));
  s.apply(ev(EventType::kPropertySave, kT0 + 240, "p2", 330000));
  auto r = row(s, kT0 + 3600 * 2);
  EXPECT_EQ(get(r, "count_page_view"), 1);
  EXPECT_EQ(get(r, "count_property_view"), 2);
  EXPECT_EQ(get(r, "count_property_save"), 1);
  EXPECT_EQ(get(r, "events_total"), 4);
  EXPECT_FLOAT_EQ(get(r, "lead_age_hours"), 2.f);
  EXPECT_FLOAT_EQ(get(r, "hours_since_property_activity"), (7200.f - 240) / 3600);
  EXPECT_FLOAT_EQ(get(r, "hours_since_last_event"), (7200.f - 240) / 3600);
  EXPECT_TRUE(std::isnan(get(r, "hours_since_inbound_contact")));
  EXPECT_EQ(get(r, "distinct_homes"), 2);
  EXPECT_EQ(get(r, "distinct_homes_saved"), 1);
  EXPECT_FLOAT_EQ(get(r, "mean_viewed_price"), 305000.f);
  EXPECT_FLOAT_EQ(get(r, "viewed_price_to_budget"), (280000.f / 300000 + 330000.f / 300000) / 2);
  EXPECT_FLOAT_EQ(get(r, "share_views_near_budget"), 1.f);
  EXPECT_EQ(get(r, "budget"), 300000.f);
  EXPECT_EQ(get(r, "pre_approved"), 1.f);
  EXPECT_TRUE(std::isnan(get(r, "timeline_months")));
  EXPECT_EQ(get(r, "source_code"), 0.f);
  EXPECT_EQ(get(r, "lead_type_code"), 1.f);
  EXPECT_EQ(get(r, "created_hour_utc"), 22.f);
  EXPECT_EQ(get(r, "created_weekday"), 1.f);  // Tuesday
}

TEST(LeadFeatureState, DecayIsEvaluatedAtScoringInstant) {
  LeadFeatureState s;
  s.set_contact(make_contact());
  s.apply(ev(EventType::kSmsIn, kT0));
  s.apply(ev(EventType::kSmsIn, kT0));
  auto at0 = row(s, kT0);
  EXPECT_NEAR(get(at0, "inbound_activity_1h"), 2.0, 1e-6);
  auto at1h = row(s, kT0 + 3600);
  EXPECT_NEAR(get(at1h, "inbound_activity_1h"), 1.0, 1e-6);
  EXPECT_NEAR(get(at1h, "inbound_activity_24h"), 2.0 * std::pow(0.5, 1.0 / 24), 1e-5);
  auto at1d = row(s, kT0 + 86400);
  EXPECT_NEAR(get(at1d, "inbound_activity_24h"), 1.0, 1e-6);
  EXPECT_NEAR(get(at1d, "inbound_activity_168h"), 2.0 * std::pow(0.5, 1.0 / 7), 1e-5);
  EXPECT_EQ(get(at1d, "property_activity_24h"), 0.f);
}

TEST(LeadFeatureState, SpeedToLeadAndReplies) {
  LeadFeatureState s;
  s.set_contact(make_contact());
  auto r0 = row(s, kT0 + 5 * 3600);
  EXPECT_TRUE(std::isnan(get(r0, "speed_to_lead_min")));
  EXPECT_FLOAT_EQ(get(r0, "hours_without_outreach"), 5.f);
  s.apply(ev(EventType::kSmsOut, kT0 + 600));          // 10 min speed to lead
  s.apply(ev(EventType::kSmsIn, kT0 + 600 + 300));     // reply after 5 min
  s.apply(ev(EventType::kCallOut, kT0 + 7200));
  s.apply(ev(EventType::kEmailOut, kT0 + 7300));
  s.apply(ev(EventType::kCallIn, kT0 + 7300 + 60));    // reply after 1 min
  s.apply(ev(EventType::kSmsOut, kT0 + 9000));
  s.apply(ev(EventType::kSmsOut, kT0 + 9100));
  s.apply(ev(EventType::kSmsIn, kT0 + 9100 + 3 * 86400));  // outside the window
  s.apply(ev(EventType::kSmsOut, kT0 + 9100 + 3 * 86400 + 10));
  auto r = row(s, kT0 + 4 * 86400);
  EXPECT_FLOAT_EQ(get(r, "speed_to_lead_min"), 10.f);
  EXPECT_EQ(get(r, "hours_without_outreach"), 0.f);
  EXPECT_EQ(get(r, "replies_to_outreach"), 2.f);
  EXPECT_FLOAT_EQ(get(r, "first_reply_delay_min"), 5.f);
  EXPECT_FLOAT_EQ(get(r, "fastest_reply_delay_min"), 1.f);
  EXPECT_EQ(get(r, "outreach_total"), 6.f);
  EXPECT_EQ(get(r, "inbound_contact_total"), 3.f);
  EXPECT_EQ(get(r, "unanswered_outreach"), 1.f);
  EXPECT_FLOAT_EQ(get(r, "reply_rate"), 2.f / 6.f);
}

TEST(LeadFeatureState, OutreachBeforeCreationIsNotSpeedToLead) {
  LeadFeatureState s;
  s.set_contact(make_contact());
  s.apply(ev(EventType::kCallOut, kT0 - 100));
  s.apply(ev(EventType::kCallOut, kT0 + 120));
  EXPECT_FLOAT_EQ(get(row(s, kT0 + 3600), "speed_to_lead_min"), 2.f);
}

TEST(LeadFeatureState, OutOfOrderEventsGiveSameFeatures) {
  std::vector<Event> events = {ev(EventType::kPageView, kT0 + 10), ev(EventType::kPropertyView, kT0 + 500, "p1", 1e5),
                               ev(EventType::kEmailOut, kT0 + 900), ev(EventType::kPropertyView, kT0 + 4000, "p2", 2e5),
                               ev(EventType::kEmailOpen, kT0 + 7000)};
  LeadFeatureState in_order, shuffled;
  in_order.set_contact(make_contact());
  shuffled.set_contact(make_contact());
  for (const auto& e : events) in_order.apply(e);
  for (int i : {3, 0, 4, 2, 1}) shuffled.apply(events[i]);
  auto a = row(in_order, kT0 + 10000), b = row(shuffled, kT0 + 10000);
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::isnan(a[i])) {
      EXPECT_TRUE(std::isnan(b[i])) << feature_schema()[i].name;
    } else {
      EXPECT_NEAR(a[i], b[i], 1e-4 * std::max(1.f, std::fabs(a[i]))) << feature_schema()[i].name;
    }
  }
}

TEST(LeadFeatureState, UnknownContactGetsCreatedFromFirstEvent) {
  LeadFeatureState s;
  s.set_created_if_unknown(kT0 + 100);
  s.set_created_if_unknown(kT0 + 50);
  s.apply(ev(EventType::kPageView, kT0 + 100));
  auto r = row(s, kT0 + 50 + 3600);
  EXPECT_FLOAT_EQ(get(r, "lead_age_hours"), 1.f);
  EXPECT_TRUE(std::isnan(get(r, "budget")));
  EXPECT_EQ(get(r, "source_code"), 8.f);
}

TEST(LeadFeatureState, EarlyActivityFeaturesDoNotDependOnArrivalOrder) {
  // The contact row may arrive after its first events (GHL does this).
  LeadFeatureState contact_first, events_first;
  contact_first.set_contact(make_contact());
  const Event booked = ev(EventType::kAppointmentBooked, kT0 - 3 * 86400);
  const Event reply = ev(EventType::kCallIn, kT0 + 1800);
  contact_first.apply(booked);
  contact_first.apply(reply);
  events_first.set_created_if_unknown(booked.ts);
  events_first.apply(booked);
  events_first.apply(reply);
  events_first.set_contact(make_contact());
  for (const auto* s : {&contact_first, &events_first}) {
    auto r = row(*s, kT0 + 7200);
    EXPECT_EQ(get(r, "events_before_created"), 1.f);
    EXPECT_FLOAT_EQ(get(r, "hours_to_first_appointment"), -72.f);
    EXPECT_FLOAT_EQ(get(r, "hours_to_first_inbound_contact"), 0.5f);
    EXPECT_EQ(get(r, "created_month"), 11.f);
    EXPECT_TRUE(std::isnan(get(r, "tenant_conversion_rate")));  // no book
  }
}

TEST(TrackRecordBook, SmoothedRatesAndJsonRoundTrip) {
  TrackRecordBook book;
  for (int i = 0; i < 90; ++i) book.global().add_outcome(i < 9);
  for (int i = 0; i < 10; ++i) book.agent("t1", "ag1").add_outcome(i < 5);
  book.agent("t1", "ag1").add_speed(60);
  book.agent("t1", "ag1").add_speed(60);
  book.agent("t1", "ag1").add_speed(60);
  book.source("t1", "zillow").add_outcome(true);
  const double prior = (9.0 + 1) / (90 + 10);
  EXPECT_NEAR(book.smoothed_rate(nullptr), prior, 1e-12);
  EXPECT_NEAR(book.smoothed_rate(book.find_agent("t1", "ag1")), (5 + 20 * prior) / 30, 1e-12);
  LeadFeatureState s;
  s.set_contact(make_contact());
  auto r = row(s, kT0, &book);
  EXPECT_NEAR(get(r, "agent_conversion_rate"), (5 + 20 * prior) / 30, 1e-6);
  EXPECT_NEAR(get(r, "agent_typical_speed_min"), 1.0, 1e-5);
  EXPECT_NEAR(get(r, "source_conversion_rate"), (1 + 20 * prior) / 21, 1e-6);
  EXPECT_NEAR(get(r, "tenant_conversion_rate"), prior, 1e-6);  // unknown tenant: the prior
  auto back = TrackRecordBook::from_json(book.to_json());
  ASSERT_TRUE(back.has_value());
  auto r2 = row(s, kT0, &*back);
  EXPECT_EQ(get(r2, "agent_conversion_rate"), get(r, "agent_conversion_rate"));
  EXPECT_FALSE(TrackRecordBook::from_json("{").has_value());
  EXPECT_FALSE(TrackRecordBook::from_json("{\"global\":1}").has_value());
}

TEST(TrackRecordBook, AddOutcomeCountsGlobalAgentSourceAndTenant) {
  TrackRecordBook book;
  Contact c = make_contact();
  c.tenant_id = "t1";
  c.assigned_agent_id = "ag7";
  c.source = "zillow";
  book.add_outcome(c, true);
  book.add_outcome(c, false);
  c.assigned_agent_id.clear();
  book.add_outcome(c, true);
  EXPECT_EQ(book.global().matured, 3);
  EXPECT_EQ(book.global().converted, 2);
  ASSERT_NE(book.find_agent("t1", "ag7"), nullptr);
  EXPECT_EQ(book.find_agent("t1", "ag7")->matured, 2);
  EXPECT_EQ(book.find_agent("t1", "ag7")->converted, 1);
  EXPECT_EQ(book.find_agent("t1", ""), nullptr);  // unassigned leads only count for source and tenant
  ASSERT_NE(book.find_source("t1", "zillow"), nullptr);
  EXPECT_EQ(book.find_source("t1", "zillow")->matured, 3);
  ASSERT_NE(book.find_source("t1", "*"), nullptr);
  EXPECT_EQ(book.find_source("t1", "*")->converted, 2);
  EXPECT_EQ(book.find_source("t2", "*"), nullptr);
}

// Agent ids are each brokerage's own: the same id in two tenants is two
// agents, and neither tenant's leads read the other's numbers.
TEST(TrackRecordBook, AgentsSharingAnIdInTwoTenantsKeepSeparateRecords) {
  TrackRecordBook book;
  Contact a = make_contact();
  a.tenant_id = "t1";
  a.assigned_agent_id = "ag01";
  Contact b = a;
  b.tenant_id = "t2";
  for (int i = 0; i < 4; ++i) book.add_outcome(a, true);
  book.add_outcome(b, false);
  book.add_speed(b, 600);
  ASSERT_NE(book.find_agent("t1", "ag01"), nullptr);
  ASSERT_NE(book.find_agent("t2", "ag01"), nullptr);
  EXPECT_EQ(book.find_agent("t1", "ag01")->matured, 4);
  EXPECT_EQ(book.find_agent("t1", "ag01")->converted, 4);
  EXPECT_EQ(book.find_agent("t1", "ag01")->speed_count, 0);
  EXPECT_EQ(book.find_agent("t2", "ag01")->matured, 1);
  EXPECT_EQ(book.find_agent("t2", "ag01")->converted, 0);
  EXPECT_EQ(book.find_agent("t2", "ag01")->speed_count, 1);
  EXPECT_EQ(book.find_agent("t3", "ag01"), nullptr);

  LeadFeatureState s;
  s.set_contact(b);
  auto r = row(s, kT0, &book);
  EXPECT_NEAR(get(r, "agent_conversion_rate"), book.smoothed_rate(book.find_agent("t2", "ag01")), 1e-6);
  EXPECT_LT(get(r, "agent_conversion_rate"), book.smoothed_rate(nullptr));  // t1's 4 of 4 do not lift it
  auto back = TrackRecordBook::from_json(book.to_json());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->find_agent("t1", "ag01")->matured, 4);
  EXPECT_EQ(back->find_agent("t2", "ag01")->matured, 1);
}

// A book whose agent keys name no tenant (written before agents were kept
// per tenant) is refused rather than read as some tenant's.
TEST(TrackRecordBook, FromJsonRefusesKeysWithoutATenant) {
  const std::string record = R"({"m":3,"c":1,"sn":0,"sl":0})";
  auto book_with = [&](const std::string& agents, const std::string& sources) {
    return "{\"global\":" + record + ",\"agents\":{" + agents + "},\"sources\":{" + sources + "}}";
  };
  ASSERT_TRUE(TrackRecordBook::from_json(book_with("\"t1|ag01\":" + record, "\"t1|zillow\":" + record)));
  EXPECT_FALSE(TrackRecordBook::from_json(book_with("\"ag01\":" + record, "")));
  EXPECT_FALSE(TrackRecordBook::from_json(book_with("\"|ag01\":" + record, "")));
  EXPECT_FALSE(TrackRecordBook::from_json(book_with("\"bad tenant|ag01\":" + record, "")));
  EXPECT_FALSE(TrackRecordBook::from_json(book_with("", "\"zillow\":" + record)));
}

TEST(ReasonText, PlainWords) {
  EXPECT_EQ(reason_text(*feature_index("first_reply_delay_min"), 5.f), "first reply to the agent within 5 min");
  EXPECT_EQ(reason_text(*feature_index("distinct_homes"), 12.f), "looked at 12 different homes");
  EXPECT_EQ(reason_text(*feature_index("budget"), 350000.f), "budget of $350k");
  EXPECT_EQ(reason_text(*feature_index("unanswered_outreach"), 3.f), "no reply to 3 agent messages");
  EXPECT_EQ(reason_text(*feature_index("speed_to_lead_min"), NAN), "no agent outreach yet");
  EXPECT_EQ(reason_text(*feature_index("source_code"), 5.f), "came from referral");
  EXPECT_EQ(reason_text(*feature_index("pre_approved"), 1.f), "pre-approval: yes");
  EXPECT_EQ(reason_text(9999, 1.f), "");
  // Plurals follow the number.
  EXPECT_EQ(reason_text(*feature_index("distinct_homes"), 1.f), "looked at 1 different home");
  EXPECT_EQ(reason_text(*feature_index("events_total"), 1.f), "1 recorded activity");
  EXPECT_EQ(reason_text(*feature_index("events_total"), 4.f), "4 recorded activities");
  EXPECT_EQ(reason_text(*feature_index("count_saved_search"), 1.f), "created 1 saved search");
  EXPECT_EQ(reason_text(*feature_index("count_saved_search"), 2.f), "created 2 saved searches");
  EXPECT_EQ(reason_text(*feature_index("timeline_months"), 1.f), "plans to move within 1 month");
  // No marker is left in any text, singular or plural.
  for (std::size_t i = 0; i < feature_count(); ++i) {
    for (float v : {1.f, 2.f}) {
      const std::string text = reason_text(i, v);
      EXPECT_EQ(text.find_first_of("{}|"), std::string::npos) << text;
    }
  }
}

}  // namespace
}  // namespace reai::features
