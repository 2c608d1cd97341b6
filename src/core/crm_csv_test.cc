#include "core/crm_csv.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace reai {
namespace {

std::string write_temp(const std::string& name, const std::string& text) {
  auto dir = std::filesystem::temp_directory_path() / ("reai_crm_csv_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto path = (dir / name).string();
  std::ofstream(path) << text;
  return path;
}

const char* kContacts =
    "contact_id,tenant_id,created_at,source,lead_type,assigned_agent_id,budget,timeline_months,"
    "pre_approved,beds_wanted,area_wanted,has_phone,has_email,extra\n"
    "c1,t_a,2024-01-01T08:37:40Z,referral,seller,ag3,,,,3,College_Creek,true,true,x\n"
    "c2,t_b,2024-01-01T02:49:57Z,zillow,buyer,ag12,251000,12,false,,,false,true,y\n";

TEST(CrmCsvTest, LoadsContactsWithOptionalFields) {
  CsvLoadReport report;
  auto rows = load_contacts_csv(write_temp("contacts.csv", kContacts), {}, &report);
  ASSERT_TRUE(rows.has_value()) << rows.status().to_string();
  ASSERT_EQ(rows->size(), 2u);
  const Contact& c1 = (*rows)[0];
  EXPECT_EQ(c1.contact_id, "c1");
  EXPECT_EQ(c1.lead_type, LeadType::kSeller);
  EXPECT_FALSE(c1.budget.has_value());
  EXPECT_EQ(c1.beds_wanted, 3);
  EXPECT_EQ(c1.has_phone, true);
  const Contact& c2 = (*rows)[1];
  EXPECT_EQ(c2.budget, 251000.0);
  EXPECT_EQ(c2.timeline_months, 12);
  EXPECT_EQ(c2.pre_approved, false);
  EXPECT_EQ(c2.created_at, 1704077397);
  EXPECT_EQ(report.rows_read, 2u);
}

TEST(CrmCsvTest, TenantFilter) {
  CsvLoadOptions opt;
  opt.tenant_filter = "t_b";
  auto rows = load_contacts_csv(write_temp("contacts_f.csv", kContacts), opt, nullptr);
  ASSERT_TRUE(rows.has_value());
  ASSERT_EQ(rows->size(), 1u);
  EXPECT_EQ((*rows)[0].contact_id, "c2");
}

TEST(CrmCsvTest, BadRowStopsOrIsSkipped) {
  const std::string text =
      "event_id,tenant_id,contact_id,ts,type,property_id,value\n"
      "e2,t,c1,2024-01-02T00:00:00Z,property_view,ames-0001,150000\n"
      "e1,t,c1,2024-01-01T00:00:00Z,sms_in,,\n"
      "e3,t,c1,not-a-time,sms_in,,\n"
      "e4,t,c1,2024-01-03T00:00:00Z,teleport,,\n";
  auto path = write_temp("events.csv", text);
  auto strict = load_events_csv(path, {}, nullptr);
  ASSERT_FALSE(strict.has_value());
  EXPECT_NE(strict.status().message().find("events.csv:4: bad ts 'not-a-time'"), std::string::npos)
      << strict.status().message();

  CsvLoadOptions opt;
  opt.skip_bad_rows = true;
  CsvLoadReport report;
  auto lenient = load_events_csv(path, opt, &report);
  ASSERT_TRUE(lenient.has_value());
  ASSERT_EQ(lenient->size(), 2u);
  EXPECT_EQ((*lenient)[0].event_id, "e1");  // sorted by ts
  EXPECT_EQ((*lenient)[1].value, 150000.0);
  EXPECT_EQ(report.rows_skipped, 2u);
  ASSERT_EQ(report.errors.size(), 2u);
  EXPECT_EQ(report.errors[1].line, 5u);
  EXPECT_NE(report.errors[1].message.find("teleport"), std::string::npos);
}

TEST(CrmCsvTest, InvalidTenantIdIsABadRow) {
  const std::string text =
      "contact_id,tenant_id,created_at\n"
      "c1,t_a,2024-01-01T00:00:00Z\n"
      "c2,../etc,2024-01-01T00:00:00Z\n"
      "c3,bad tenant!,2024-01-01T00:00:00Z\n";
  auto path = write_temp("bad_tenants.csv", text);
  auto strict = load_contacts_csv(path, {}, nullptr);
  ASSERT_FALSE(strict.has_value());
  EXPECT_NE(strict.status().message().find("bad_tenants.csv:3: invalid tenant id '../etc'"), std::string::npos)
      << strict.status().message();

  CsvLoadOptions opt;
  opt.skip_bad_rows = true;
  CsvLoadReport report;
  auto lenient = load_contacts_csv(path, opt, &report);
  ASSERT_TRUE(lenient.has_value());
  ASSERT_EQ(lenient->size(), 1u);
  EXPECT_EQ((*lenient)[0].tenant_id, "t_a");
  EXPECT_EQ(report.rows_skipped, 2u);
}

TEST(CrmCsvTest, MissingColumnAndEmptyFile) {
  auto no_ts = load_events_csv(write_temp("e2.csv", "event_id,tenant_id,contact_id,type\ne,t,c,sms_in\n"), {}, nullptr);
  EXPECT_EQ(no_ts.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(no_ts.status().message().find("missing column 'ts'"), std::string::npos);
  auto empty = load_stages_csv(write_temp("s.csv", "opportunity_id,tenant_id,contact_id,agent_id,monetary_value,ts,stage\n"), {}, nullptr);
  EXPECT_EQ(empty.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(load_stages_csv("/nonexistent.csv", {}, nullptr).status().code(), StatusCode::kNotFound);
}

TEST(CrmCsvTest, LoadsStages) {
  auto rows = load_stages_csv(
      write_temp("stages.csv",
                 "opportunity_id,tenant_id,contact_id,agent_id,monetary_value,ts,stage\n"
                 "o1,t,c1,ag,147000,2024-01-05T00:00:00Z,active\n"
                 "o1,t,c1,ag,147000,2024-01-03T03:00:16Z,signed\n"),
      {}, nullptr);
  ASSERT_TRUE(rows.has_value());
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].stage, Stage::kSigned);
  EXPECT_EQ((*rows)[1].stage, Stage::kActive);
  EXPECT_EQ((*rows)[0].monetary_value, 147000.0);
}

// A CRM export's own date format or stage name fails with what would read.
TEST(CrmCsvTest, BadTimeAndStageSayWhatIsExpected) {
  const std::string header = "opportunity_id,tenant_id,contact_id,agent_id,monetary_value,ts,stage\n";
  auto date = load_stages_csv(write_temp("d.csv", header + "o1,t,c1,ag,1,03/15/2024,active\n"), {}, nullptr);
  ASSERT_FALSE(date.has_value());
  EXPECT_NE(date.status().message().find("d.csv:2: bad ts '03/15/2024' (ISO 8601 expected, e.g. 2026-03-01T00:00:00Z)"),
            std::string::npos)
      << date.status().message();
  auto stage = load_stages_csv(write_temp("n.csv", header + "o1,t,c1,ag,1,2024-01-05T00:00:00Z,negotiating\n"), {},
                               nullptr);
  ASSERT_FALSE(stage.has_value());
  EXPECT_NE(stage.status().message().find(
                "unknown stage 'negotiating' (one of signed, active, offer, under_contract, closed, lost)"),
            std::string::npos)
      << stage.status().message();
}

}  // namespace
}  // namespace reai
