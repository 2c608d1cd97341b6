// The demo's live stream against a real server (the server module's
// in-process fixture): it reaches its rate at once instead of ramping up.
#include "cli/simulator.h"

#include <gtest/gtest.h>

#include "server/server_test_fixture.h"

namespace reai::cli {
namespace {

using server::fixture::as_object;

constexpr UnixSeconds kHour = 3600;

// `leads` leads of 10 events each, two (replayed) hours apart.
struct Script {
  std::vector<Contact> contacts;
  std::vector<Event> events;
};
Script make_script(int leads) {
  Script s;
  for (int l = 0; l < leads; ++l) {
    Contact& c = s.contacts.emplace_back();
    c.tenant_id = "t_sim";
    c.contact_id = std::to_string(l);
    c.contact_id.insert(c.contact_id.begin(), 'c');  // (GCC 12 warns falsely on "c" + to_string)
    c.created_at = 1'700'000'000;
    c.source = "zillow";
    for (int k = 0; k < 10; ++k) {
      Event& e = s.events.emplace_back();
      e.tenant_id = c.tenant_id;
      e.contact_id = c.contact_id;
      e.ts = c.created_at + 2 * k * kHour;
      e.type = k % 2 ? EventType::kSmsIn : EventType::kPageView;
    }
  }
  return s;
}

class SimulatorTest : public server::fixture::InProcessServerTest {
 protected:
  // The simulator stamps events with the wall clock, and the server refuses
  // event times more than a day after its own: the server's clock is the
  // wall clock here, and the token is issued on it.
  void SetUp() override {
    InProcessServerTest::SetUp();
    clock_.set(SystemClock().now());
  }

  SimulatorOptions options() {
    SimulatorOptions o;
    o.port = server_->port();
    o.token = reai::testing::reai_token("t_sim", server::Role::kAgent, server::fixture::kSecret, clock_.now());
    o.events_per_second = 4;      // a lead (10 events) every 2.5 s
    o.time_compression = 3600;    // its events 2 s apart, over 18 s
    o.max_lead_age_days = 1;      // the window: 24 s
    o.duration_seconds = 0.5;
    return o;
  }
};

// Warm: the 9 leads begun 2.5, 5, ... 22.5 s before the start, with the
// 2, 3, 4, 6, 7, 8, 9, 10, 10 events (59) each would have posted by then.
TEST_F(SimulatorTest, AWarmStartPostsWhatAWholeWindowWouldHaveAtOnce) {
  start();
  const Script script = make_script(5);
  std::atomic<bool> stop{false};
  auto report = run_simulator(script.contacts, script.events, options(), stop);
  ASSERT_TRUE(report) << report.status().to_string();
  EXPECT_EQ(report->http_errors, 0u);
  EXPECT_GE(report->leads_created, 9u);
  EXPECT_GE(report->events_posted, 59u);
  // Every lead is scored and listed at once.
  auto leads = as_object(http_->get("/api/leads?limit=100", options().token));
  EXPECT_GE(leads["leads"].as_array().size(), 9u) << boost::json::serialize(leads);
}

// Cold, the stream ramps up: in the first half second only the first
// lead's first event is due.
TEST_F(SimulatorTest, WithoutTheWarmStartTheFirstSecondsPostLittle) {
  start();
  const Script script = make_script(5);
  SimulatorOptions o = options();
  o.warm_start = false;
  std::atomic<bool> stop{false};
  auto report = run_simulator(script.contacts, script.events, o, stop);
  ASSERT_TRUE(report) << report.status().to_string();
  EXPECT_LE(report->leads_created, 1u);
  EXPECT_LE(report->events_posted, 1u);
}

// A server whose clock is not the wall clock (`reai demo --clock`): the
// simulator stamps its leads and events on that clock, so the server stores
// them (it refuses times more than a day after its own now) at its "now".
TEST_F(SimulatorTest, PostedTimesFollowTheServersClock) {
  clock_.set(*parse_iso8601("2024-03-01T12:00:00Z"));  // long before the wall clock
  start();
  const Script script = make_script(5);
  SimulatorOptions o = options();
  o.clock = &clock_;
  std::atomic<bool> stop{false};
  auto report = run_simulator(script.contacts, script.events, o, stop);
  ASSERT_TRUE(report) << report.status().to_string();
  EXPECT_EQ(report->http_errors, 0u);
  EXPECT_GE(report->events_posted, 59u);
  // Dated within the warm start's window (24 s) before the server's now.
  auto leads = as_object(http_->get("/api/leads?limit=100", o.token))["leads"].as_array();
  ASSERT_GE(leads.size(), 9u);
  const std::string lead_id(leads[0].as_object().at("lead_id").as_string());
  auto events = as_object(http_->get("/api/contacts/" + lead_id + "/events?limit=100", o.token))["events"].as_array();
  ASSERT_FALSE(events.empty());
  for (const auto& e : events) {
    const UnixSeconds ts = *parse_iso8601(e.as_object().at("ts").as_string());
    EXPECT_LE(ts, clock_.now());
    EXPECT_GE(ts, clock_.now() - 30) << e;
  }
  // On the wall clock (the old behaviour), every request is refused.
  o.clock = nullptr;
  report = run_simulator(script.contacts, script.events, o, stop);
  ASSERT_TRUE(report) << report.status().to_string();
  EXPECT_EQ(report->events_posted, 0u);
  EXPECT_GT(report->http_errors, 0u);
}

TEST_F(SimulatorTest, BadOptionsAndAnUnreachableServerAreRefused) {
  const Script script = make_script(1);
  std::atomic<bool> stop{false};
  SimulatorOptions o;
  o.events_per_second = 0;
  EXPECT_EQ(run_simulator(script.contacts, script.events, o, stop).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(run_simulator({}, {}, SimulatorOptions{}, stop).status().code(), StatusCode::kInvalidArgument);
  o = SimulatorOptions{};
  o.port = 1;  // nothing listens there
  o.duration_seconds = 1;
  EXPECT_EQ(run_simulator(script.contacts, script.events, o, stop).status().code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace reai::cli
