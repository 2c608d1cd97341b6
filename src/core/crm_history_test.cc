#include "core/crm_history.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/time.h"

namespace reai {
namespace {

UnixSeconds at(const char* iso) { return parse_iso8601(iso).value(); }

constexpr const char* kContactsHeader = "contact_id,tenant_id,created_at,source,lead_type,assigned_agent_id\n";
constexpr const char* kEventsHeader = "event_id,tenant_id,contact_id,ts,type,property_id,value\n";
constexpr const char* kStagesHeader = "opportunity_id,tenant_id,contact_id,agent_id,monetary_value,ts,stage\n";

class CrmHistoryFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (std::filesystem::temp_directory_path() /
            ("reai_crm_history_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    write("contacts.csv", std::string(kContactsHeader) +
                              "c1,t_a,2024-01-01T08:00:00Z,zillow,buyer,ag1\n"
                              "c2,t_b,2024-01-02T08:00:00Z,referral,seller,ag2\n");
    write("events.csv", std::string(kEventsHeader) +
                            "e2,t_a,c1,2024-01-03T09:00:00Z,sms_in,,\n"
                            "e1,t_a,c1,2024-01-01T09:00:00Z,sms_out,,\n"
                            "e3,t_b,c2,2024-01-04T09:00:00Z,call_out,,\n");
    write("opportunity_stages.csv", std::string(kStagesHeader) + "o1,t_a,c1,ag1,250000,2024-01-05T10:00:00Z,signed\n");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ + "/" + name) << text;
    return dir_ + "/" + name;
  }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir_;
};

TEST_F(CrmHistoryFiles, LoadsTheThreeFilesOfADirectory) {
  CrmHistoryLoadReport report;
  auto h = load_crm_history_dir(dir_, {}, &report);
  ASSERT_TRUE(h.has_value()) << h.status().to_string();
  ASSERT_EQ(h->contacts.size(), 2u);
  EXPECT_EQ(h->contacts[1].contact_id, "c2");
  ASSERT_EQ(h->events.size(), 3u);
  EXPECT_EQ(h->events[0].event_id, "e1");  // sorted by ts
  ASSERT_EQ(h->stages.size(), 1u);
  EXPECT_EQ(h->stages[0].monetary_value, 250000.0);
  ASSERT_TRUE(report.contacts && report.events && report.stages);
  EXPECT_EQ(report.contacts->rows_read, 2u);
  EXPECT_EQ(report.events->rows_read, 3u);
  EXPECT_EQ(report.stages->rows_read, 1u);
}

TEST_F(CrmHistoryFiles, EventsAndStagesNotAskedForLoadNoRows) {
  CrmHistoryLoadReport report;
  auto h = load_crm_history(path("contacts.csv"), optional_file(""), std::nullopt, {}, &report);
  ASSERT_TRUE(h.has_value()) << h.status().to_string();
  EXPECT_EQ(h->contacts.size(), 2u);
  EXPECT_TRUE(h->events.empty());
  EXPECT_TRUE(h->stages.empty());
  EXPECT_TRUE(report.contacts.has_value());
  EXPECT_FALSE(report.events.has_value());
  EXPECT_FALSE(report.stages.has_value());
}

TEST_F(CrmHistoryFiles, AnEmptyPathGivenIsAMissingFile) {
  auto h = load_crm_history(path("contacts.csv"), path("events.csv"), std::string());
  ASSERT_FALSE(h.has_value());
  EXPECT_EQ(h.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(optional_file(path("events.csv")), path("events.csv"));
}

TEST_F(CrmHistoryFiles, OptionsApplyToEveryFile) {
  CsvLoadOptions tenant_a;
  tenant_a.tenant_filter = "t_a";
  auto h = load_crm_history_dir(dir_, tenant_a);
  ASSERT_TRUE(h.has_value()) << h.status().to_string();
  EXPECT_EQ(h->contacts.size(), 1u);
  EXPECT_EQ(h->events.size(), 2u);
  EXPECT_EQ(h->stages.size(), 1u);

  write("events.csv", std::string(kEventsHeader) +
                          "e1,t_a,c1,2024-01-01T09:00:00Z,sms_out,,\n"
                          "e2,t_a,c1,not-a-time,sms_in,,\n");
  CsvLoadOptions lenient;
  lenient.skip_bad_rows = true;
  CrmHistoryLoadReport report;
  auto skipped = load_crm_history_dir(dir_, lenient, &report);
  ASSERT_TRUE(skipped.has_value()) << skipped.status().to_string();
  EXPECT_EQ(skipped->events.size(), 1u);
  ASSERT_TRUE(report.events.has_value());
  EXPECT_EQ(report.events->rows_skipped, 1u);
  ASSERT_EQ(report.events->errors.size(), 1u);
  EXPECT_EQ(report.events->errors[0].line, 3u);
}

TEST_F(CrmHistoryFiles, MissingFileIsNotFoundNamingThePath) {
  std::filesystem::remove(path("opportunity_stages.csv"));
  CrmHistoryLoadReport report;
  auto h = load_crm_history_dir(dir_, {}, &report);
  ASSERT_FALSE(h.has_value());
  EXPECT_EQ(h.status().code(), StatusCode::kNotFound);
  EXPECT_NE(h.status().message().find(path("opportunity_stages.csv")), std::string::npos) << h.status().message();
  // The files before the failing one loaded; the failing one has no report.
  EXPECT_TRUE(report.contacts.has_value());
  EXPECT_TRUE(report.events.has_value());
  EXPECT_FALSE(report.stages.has_value());
}

TEST_F(CrmHistoryFiles, BadRowNamesFileAndLineAndStopsTheLoad) {
  write("events.csv", std::string(kEventsHeader) +
                          "e1,t_a,c1,2024-01-01T09:00:00Z,sms_out,,\n"
                          "e2,t_a,c1,2024-13-45T09:00:00Z,sms_in,,\n");
  CrmHistoryLoadReport report;
  auto h = load_crm_history_dir(dir_, {}, &report);
  ASSERT_FALSE(h.has_value());
  EXPECT_EQ(h.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(h.status().message().find(path("events.csv") + ":3:"), std::string::npos) << h.status().message();
  EXPECT_TRUE(report.contacts.has_value());
  EXPECT_FALSE(report.events.has_value());
  EXPECT_FALSE(report.stages.has_value());
}

TEST_F(CrmHistoryFiles, FileWithoutRowsFails) {
  write("contacts.csv", kContactsHeader);
  auto h = load_crm_history_dir(dir_);
  ASSERT_FALSE(h.has_value());
  EXPECT_EQ(h.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(h.status().message().find("no data rows"), std::string::npos) << h.status().message();
}

Contact contact(const char* id, const char* created_at) {
  Contact c;
  c.contact_id = id;
  c.created_at = at(created_at);
  return c;
}

Event event(const char* id, const char* ts) {
  Event e;
  e.event_id = id;
  e.ts = at(ts);
  return e;
}

OpportunityStage stage_row(Stage stage, const char* ts) {
  OpportunityStage s;
  s.opportunity_id = "o1";
  s.stage = stage;
  s.ts = at(ts);
  return s;
}

CrmHistory three_day_history() {
  CrmHistory h;
  h.contacts = {contact("c1", "2024-01-01T00:00:00Z"), contact("c2", "2024-01-02T00:00:00Z")};
  h.events = {event("e1", "2024-01-02T00:00:00Z"), event("e2", "2024-01-03T00:00:00Z")};
  h.stages = {stage_row(Stage::kSigned, "2024-01-01T12:00:00Z"), stage_row(Stage::kClosed, "2024-01-02T00:00:00Z")};
  return h;
}

TEST(CrmHistoryTruncate, KeepsRowsStrictlyBeforeTheEnd) {
  const CrmHistory h = three_day_history();
  const CrmHistory before = truncate_history(h, at("2024-01-02T00:00:00Z"));
  ASSERT_EQ(before.contacts.size(), 1u);
  EXPECT_EQ(before.contacts[0].contact_id, "c1");
  EXPECT_TRUE(before.events.empty());  // e1 sits exactly at the end
  ASSERT_EQ(before.stages.size(), 1u);
  EXPECT_EQ(before.stages[0].stage, Stage::kSigned);

  const CrmHistory one_second_on = truncate_history(h, at("2024-01-02T00:00:01Z"));
  EXPECT_EQ(one_second_on.contacts.size(), 2u);
  ASSERT_EQ(one_second_on.events.size(), 1u);
  EXPECT_EQ(one_second_on.events[0].event_id, "e1");
  EXPECT_EQ(one_second_on.stages.size(), 2u);

  EXPECT_EQ(history_end(truncate_history(h, at("2024-01-01T00:00:00Z"))), 0);
}

TEST(CrmHistoryEnd, IsTheLatestTimestampOfAnyKindAndZeroWhenEmpty) {
  EXPECT_EQ(history_end(CrmHistory{}), 0);
  CrmHistory h = three_day_history();
  EXPECT_EQ(history_end(h), at("2024-01-03T00:00:00Z"));  // e2
  h.contacts[1].created_at = at("2024-02-01T00:00:00Z");
  EXPECT_EQ(history_end(h), at("2024-02-01T00:00:00Z"));
  h.stages[0].ts = at("2024-03-01T00:00:00Z");
  EXPECT_EQ(history_end(h), at("2024-03-01T00:00:00Z"));
}

}  // namespace
}  // namespace reai
