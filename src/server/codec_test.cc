#include "server/codec.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdint>
#include <limits>

#include "server/http_errors.h"
#include "server/ws_hub.h"

namespace reai::server {
namespace {

constexpr UnixSeconds kNow = 1'700'000'000;

Result<Event> parse(std::string_view text, std::string_view default_contact = {}) {
  return parse_event(boost::json::parse(text), "t1", default_contact, kNow);
}

TEST(Codec, ParsesFullEvent) {
  auto e = parse(R"({"contact_id":"c1","type":"property_view","ts":"2023-11-14T08:00:00Z",
                     "property_id":"p9","value":350000,"event_id":"e1","tenant_id":"t1"})");
  ASSERT_TRUE(e) << e.status().to_string();
  EXPECT_EQ(e->tenant_id, "t1");
  EXPECT_EQ(e->contact_id, "c1");
  EXPECT_EQ(e->type, EventType::kPropertyView);
  EXPECT_EQ(e->ts, 1699948800);
  EXPECT_EQ(e->property_id, "p9");
  ASSERT_TRUE(e->value.has_value());
  EXPECT_DOUBLE_EQ(*e->value, 350000);
  EXPECT_EQ(e->event_id, "e1");
}

TEST(Codec, EventTimesUpToADayAheadOfTheServerAreTaken) {
  EXPECT_EQ(parse(R"({"contact_id":"c1","type":"sms_in","ts":"2023-11-15T22:13:20Z"})")->ts, kNow + 86400);
  EXPECT_EQ(parse(R"({"contact_id":"c1","type":"sms_in","ts":"1970-01-01T00:00:00Z"})")->ts, 0);
  EXPECT_EQ(parse(R"({"contact_id":"c1","type":"property_view","value":0})")->value, 0.0);
}

TEST(Codec, DefaultsTsToNowAndLeavesEventIdEmpty) {
  auto e = parse(R"({"contact_id":"c1","type":"sms_in"})");
  ASSERT_TRUE(e);
  EXPECT_EQ(e->ts, kNow);
  EXPECT_TRUE(e->event_id.empty());
}

TEST(Codec, RejectsBadEvents) {
  struct Case {
    const char* json;
    const char* needle;
    StatusCode code;
  };
  const Case cases[] = {
      {R"({"type":"sms_in"})", "contact_id", StatusCode::kInvalidArgument},
      {R"({"contact_id":"c1"})", "type", StatusCode::kInvalidArgument},
      {R"({"contact_id":"c1","type":"teleport"})", "type", StatusCode::kInvalidArgument},
      {R"({"contact_id":"c1","type":"sms_in","colour":"red"})", "colour", StatusCode::kInvalidArgument},
      {R"({"contact_id":42,"type":"sms_in"})", "contact_id", StatusCode::kInvalidArgument},
      {R"({"contact_id":"c1","type":"sms_in","value":"big"})", "value", StatusCode::kInvalidArgument},
      {R"({"contact_id":"c1","type":"sms_in","ts":"yesterday"})", "ts", StatusCode::kInvalidArgument},
      {R"({"contact_id":"c1","type":"sms_in","tenant_id":"t2"})", "tenant_id", StatusCode::kPermissionDenied},
      {R"([1])", "object", StatusCode::kInvalidArgument},
      // kNow is 2023-11-14T22:13:20Z: more than a day ahead, or before 1970.
      {R"({"contact_id":"c1","type":"sms_in","ts":"2023-11-15T22:13:21Z"})", "ts", StatusCode::kInvalidArgument},
      {R"({"contact_id":"c1","type":"sms_in","ts":"9999-12-31T23:59:59Z"})", "ts", StatusCode::kInvalidArgument},
      {R"({"contact_id":"c1","type":"sms_in","ts":"1969-12-31T23:59:59Z"})", "ts", StatusCode::kInvalidArgument},
      {R"({"contact_id":"c1","type":"property_view","value":-1})", "value", StatusCode::kInvalidArgument},
      {R"({"contact_id":"c1","type":"property_view","value":1.79e308})", "value", StatusCode::kInvalidArgument},
  };
  for (const auto& c : cases) {
    auto e = parse(c.json);
    ASSERT_FALSE(e) << c.json;
    EXPECT_EQ(e.status().code(), c.code) << c.json;
    EXPECT_NE(e.status().message().find(c.needle), std::string::npos) << e.status().message();
  }
}

// Ids an event or a contact names (a listing, an agent) follow the id rule
// of contact ids: a 500 KB property_id was stored, naming a listing no
// /api/listings/{id} could ask for.
TEST(Codec, ListingAndAgentIdsFollowTheIdRule) {
  const std::string long_id(257, 'p');
  auto event = parse(R"({"contact_id":"c1","type":"property_view","property_id":")" + long_id + "\"}");
  ASSERT_FALSE(event);
  EXPECT_NE(event.status().message().find("property_id"), std::string::npos) << event.status().message();
  EXPECT_TRUE(parse(R"({"contact_id":"c1","type":"property_view","property_id":")" + long_id.substr(1) + "\"}"));
  EXPECT_TRUE(parse(R"({"contact_id":"c1","type":"sms_in","property_id":""})"));
  EXPECT_TRUE(parse(R"({"contact_id":"c1","type":"sms_in","property_id":null})"));
  Contact c;
  c.contact_id = "c1";
  auto agent = apply_contact_fields(boost::json::parse(R"({"assigned_agent_id":")" + long_id + "\"}"), "t1", &c);
  ASSERT_FALSE(agent);
  EXPECT_NE(agent.message().find("assigned_agent_id"), std::string::npos) << agent.message();
  EXPECT_TRUE(apply_contact_fields(boost::json::parse(R"({"assigned_agent_id":"ag-1"})"), "t1", &c));
  EXPECT_TRUE(apply_contact_fields(boost::json::parse(R"({"assigned_agent_id":""})"), "t1", &c));  // unassigned
  // Control characters are refused in ids and labels; other UTF-8 is kept.
  for (const char* bad : {R"({"contact_id":"\u0000x","type":"sms_in"})", R"({"contact_id":"a\nb","type":"sms_in"})",
                          R"({"contact_id":"c1","type":"sms_in","property_id":"p\u007f"})"}) {
    auto e = parse(bad);
    ASSERT_FALSE(e) << bad;
    EXPECT_NE(e.status().message().find("must not contain control characters"), std::string::npos) << bad;
  }
  EXPECT_FALSE(apply_contact_fields(boost::json::parse(R"({"source":"\u0001"})"), "t1", &c));
  EXPECT_TRUE(parse(R"({"contact_id":"caf\u00e9 \u4e2d","type":"sms_in"})"));
}

TEST(Codec, DefaultContactMustMatch) {
  EXPECT_TRUE(parse(R"({"type":"sms_in"})", "lead7"));
  EXPECT_FALSE(parse(R"({"type":"sms_in","contact_id":"other"})", "lead7"));
}

TEST(Codec, ContactFieldsKeepOmittedAndClearNull) {
  Contact c;
  c.tenant_id = "t1";
  c.contact_id = "c1";
  c.budget = 100;
  c.source = "zillow";
  ASSERT_TRUE(apply_contact_fields(boost::json::parse(
                                       R"({"timeline_months":3,"pre_approved":true,"lead_type":"buyer",
                                           "created_at":"2024-01-01","beds_wanted":null})"),
                                   "t1", &c));
  EXPECT_EQ(c.budget, 100);
  EXPECT_EQ(c.source, "zillow");
  EXPECT_EQ(c.timeline_months, 3);
  EXPECT_EQ(c.pre_approved, true);
  EXPECT_EQ(c.lead_type, LeadType::kBuyer);
  EXPECT_EQ(c.created_at, 1704067200);
  ASSERT_TRUE(apply_contact_fields(boost::json::parse(R"({"budget":null})"), "t1", &c));
  EXPECT_FALSE(c.budget.has_value());
  EXPECT_FALSE(apply_contact_fields(boost::json::parse(R"({"timeline_months":2.5})"), "t1", &c));
  EXPECT_FALSE(apply_contact_fields(boost::json::parse(R"({"pre_approved":"yes"})"), "t1", &c));
  EXPECT_FALSE(apply_contact_fields(boost::json::parse(R"({"nickname":"x"})"), "t1", &c));
  EXPECT_FALSE(apply_contact_fields(boost::json::parse(R"({"contact_id":"c2"})"), "t1", &c));
}

// A contact's stated fields are read by the model and shown on the dashboard:
// a typo in lead_type, a megabyte source, or a budget of -5 is the client's
// bug and gets a 400 naming the field, not a silently odd lead.
TEST(Codec, ContactFieldsRefuseUnknownLeadTypesOversizeLabelsAndImpossibleNumbers) {
  Contact c;
  c.tenant_id = "t1";
  c.contact_id = "c1";
  auto apply = [&c](const std::string& json) { return apply_contact_fields(boost::json::parse(json), "t1", &c); };
  auto error_of = [&](const std::string& json) { return apply(json).message(); };

  EXPECT_NE(error_of(R"({"lead_type":"byuer"})").find("'lead_type'"), std::string::npos);
  EXPECT_EQ(apply(R"({"lead_type":"byuer"})").code(), StatusCode::kInvalidArgument);
  for (const char* type : {"buyer", "seller", "both", "investor"}) {
    ASSERT_TRUE(apply(std::string(R"({"lead_type":")") + type + "\"}")) << type;
    EXPECT_EQ(lead_type_name(c.lead_type), type);
  }
  ASSERT_TRUE(apply(R"({"lead_type":""})"));
  EXPECT_EQ(c.lead_type, LeadType::kUnknown);
  ASSERT_TRUE(apply(R"({"lead_type":"seller"})"));
  ASSERT_TRUE(apply(R"({"lead_type":"unknown"})"));
  EXPECT_EQ(c.lead_type, LeadType::kUnknown);

  const std::string long_label(kMaxIdBytes + 1, 'z');
  EXPECT_NE(error_of(R"({"source":")" + long_label + "\"}").find("'source'"), std::string::npos);
  EXPECT_NE(error_of(R"({"area_wanted":")" + long_label + "\"}").find("'area_wanted'"), std::string::npos);
  ASSERT_TRUE(apply(R"({"source":")" + std::string(kMaxIdBytes, 'z') + R"(","area_wanted":""})"));
  EXPECT_EQ(c.source.size(), kMaxIdBytes);
  EXPECT_EQ(c.area_wanted, "");

  EXPECT_NE(error_of(R"({"budget":-1})").find("'budget' must be between 0 and 10000000000"), std::string::npos);
  EXPECT_FALSE(apply(R"({"budget":2e10})"));
  EXPECT_FALSE(apply(R"({"timeline_months":-3})"));
  EXPECT_FALSE(apply(R"({"timeline_months":241})"));
  EXPECT_FALSE(apply(R"({"beds_wanted":-1})"));
  EXPECT_NE(error_of(R"({"beds_wanted":51})").find("'beds_wanted' must be between 0 and 50"), std::string::npos);
  ASSERT_TRUE(apply(R"({"budget":0,"timeline_months":240,"beds_wanted":50})"));
  EXPECT_EQ(c.budget, 0.0);
  EXPECT_EQ(c.timeline_months, 240);
  EXPECT_EQ(c.beds_wanted, 50);
}

TEST(Codec, ScoreJsonHasEveryField) {
  scoring::LeadScore s;
  s.tenant_id = "t1";
  s.lead_id = "c\"1";
  s.probability = 0.625;
  s.score = 63;
  s.band = scoring::Band::kHot;
  s.confidence = 0.5;
  s.events_count = 4;
  s.reasons = {{"inbound_sms_7d", "replied by SMS", 0.75}};
  s.model_version = "fallback";
  s.fallback_reason = "no_model";
  s.scored_at = 1704067200;
  s.latency_ns = 2500;
  auto v = boost::json::parse(score_json(s)).as_object();
  EXPECT_EQ(v["lead_id"].as_string(), "c\"1");
  EXPECT_EQ(v["probability"].as_double(), 0.625);
  EXPECT_EQ(v["score"].as_int64(), 63);
  EXPECT_EQ(v["band"].as_string(), "hot");
  EXPECT_EQ(v["events_count"].as_int64(), 4);
  EXPECT_EQ(v["reasons"].as_array()[0].as_object()["feature"].as_string(), "inbound_sms_7d");
  EXPECT_EQ(v["model"].as_string(), "fallback");
  EXPECT_EQ(v["fallback_reason"].as_string(), "no_model");
  EXPECT_EQ(v["scored_at"].as_string(), "2024-01-01T00:00:00Z");
  EXPECT_DOUBLE_EQ(v["latency_us"].to_number<double>(), 2.5);
  s.fallback_reason.clear();
  EXPECT_FALSE(boost::json::parse(score_json(s)).as_object().contains("fallback_reason"));
}

TEST(Codec, ErrorJsonEscapes) {
  EXPECT_EQ(error_json("bad \"x\"\n"), R"({"error":"bad \"x\"\n"})");
}

TEST(Codec, HttpStatusMapping) {
  EXPECT_EQ(http_status_for(StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(http_status_for(StatusCode::kUnauthenticated), 401);
  EXPECT_EQ(http_status_for(StatusCode::kPermissionDenied), 403);
  EXPECT_EQ(http_status_for(StatusCode::kNotFound), 404);
  EXPECT_EQ(http_status_for(StatusCode::kPayloadTooLarge), 413);
  EXPECT_EQ(http_status_for(StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(http_status_for(StatusCode::kUnavailable), 503);
  EXPECT_EQ(http_status_for(StatusCode::kInternal), 500);
}

TEST(Codec, FrameSplicesSeqIntoPayload) {
  bus::BusMessage m;
  m.tenant_id = "t1";
  m.seq = 7;
  m.topic = "score_update";
  m.payload = std::make_shared<const std::string>(R"({"lead_id":"c1","score":5})");
  auto v = boost::json::parse(*WsHub::frame(m)).as_object();
  EXPECT_EQ(v["type"].as_string(), "score_update");
  EXPECT_EQ(v["seq"].as_int64(), 7);
  EXPECT_EQ(v["lead_id"].as_string(), "c1");
  m.payload = std::make_shared<const std::string>("{}");
  EXPECT_EQ(*WsHub::frame(m), R"({"type":"score_update","seq":7})");
}

TEST(Codec, ParseEventsBodyCountsValidItems) {
  auto n = parse_events_body(R"([{"contact_id":"a","type":"sms_in"},{"type":"x"}])", "t1", kNow);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1u);
  EXPECT_FALSE(parse_events_body("{", "t1", kNow));
}

}  // namespace
}  // namespace reai::server
