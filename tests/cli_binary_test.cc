// Black-box tests of the `reai` batch commands: import, train leads, replay,
// token, tenant. They run the real binary on the small fixture history.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "support/process.h"

namespace reai::testing {
namespace {

namespace fs = std::filesystem;
const std::string kFixture = "tests/fixtures/crm_small";

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string write_file(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(CliBinaryTest, ImportIsIdempotentAndCountsRows) {
  const std::string dir = make_temp_dir("reai-import");
  const std::vector<std::string> args = {"import", "--data-dir", dir, "--contacts", kFixture + "/contacts.csv",
                                         "--events", kFixture + "/events.csv", "--stages",
                                         kFixture + "/opportunity_stages.csv"};
  auto first = run_reai(args);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("imported 600 contacts, 14476 events (0 already present), 162 stage rows"),
            std::string::npos)
      << first.output;
  auto second = run_reai(args);
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("0 events (14476 already present)"), std::string::npos) << second.output;

  auto list = run_reai({"tenant", "list", "--data-dir", dir});
  ASSERT_EQ(list.exit_code, 0) << list.output;
  EXPECT_NE(list.output.find("t_cyclone,t_cyclone,"), std::string::npos) << list.output;
  EXPECT_NE(list.output.find("t_prairie,t_prairie,"), std::string::npos) << list.output;
}

TEST(CliBinaryTest, BadRowStopsImportWithoutWritingOrIsSkipped) {
  const std::string dir = make_temp_dir("reai-import-bad");
  const std::string contacts = write_file(
      dir, "contacts.csv",
      "contact_id,tenant_id,created_at,source,lead_type,assigned_agent_id,budget\n"
      "c1,t1,2024-01-01T00:00:00Z,zillow,buyer,a1,250000\n"
      "c2,t1,2024-01-02T00:00:00Z,zillow,buyer,a1,lots\n");
  const std::string events = write_file(dir, "events.csv",
                                        "event_id,tenant_id,contact_id,ts,type,property_id,value\n"
                                        "e1,t1,c1,2024-01-01T01:00:00Z,sms_in,,\n");
  const std::string data = dir + "/store";
  auto strict = run_reai({"import", "--data-dir", data, "--contacts", contacts, "--events", events});
  EXPECT_EQ(strict.exit_code, 2) << strict.output;
  EXPECT_NE(strict.output.find("contacts.csv:3: bad budget 'lots'"), std::string::npos) << strict.output;
  auto list = run_reai({"tenant", "list", "--data-dir", data});
  EXPECT_EQ(list.output.find("t1,"), std::string::npos) << "nothing may be written: " << list.output;

  auto lenient = run_reai({"import", "--data-dir", data, "--contacts", contacts, "--events", events, "--skip-bad"});
  ASSERT_EQ(lenient.exit_code, 0) << lenient.output;
  EXPECT_NE(lenient.output.find("imported 1 contacts, 1 events"), std::string::npos) << lenient.output;
  EXPECT_NE(lenient.output.find("skipped 1 bad rows"), std::string::npos) << lenient.output;
}

TEST(CliBinaryTest, BadInputExitsWithTwo) {
  const std::string dir = make_temp_dir("reai-bad");
  auto missing = run_reai({"import", "--data-dir", dir, "--contacts", "/nonexistent.csv", "--events", "/x.csv"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.output.find("/nonexistent.csv"), std::string::npos) << missing.output;
  const std::string events = write_file(dir, "events.csv", "event_id,tenant_id,contact_id,type\n");
  auto no_column = run_reai({"replay", "--model", dir, "--contacts", kFixture + "/contacts.csv", "--events",
                             events, "--out", dir + "/o.csv"});
  EXPECT_EQ(no_column.exit_code, 2) << no_column.output;
  auto bad_hours = run_reai({"replay", "--model", dir, "--contacts", kFixture + "/contacts.csv", "--events",
                             kFixture + "/events.csv", "--as-of-hours", "1,soon", "--out", dir + "/o.csv"});
  EXPECT_EQ(bad_hours.exit_code, 2) << bad_hours.output;
  EXPECT_EQ(run_reai({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(run_reai({"token", "--tenant", "t", "--role", "king", "--jwt-secret", "s"}).exit_code, 2);
}

TEST(CliBinaryTest, TrainThenReplayWritesEveryContactAndOffset) {
  const std::string dir = make_temp_dir("reai-train");
  auto train = run_reai({"train", "leads", "--contacts", kFixture + "/contacts.csv", "--events",
                         kFixture + "/events.csv", "--stages", kFixture + "/opportunity_stages.csv", "--out",
                         dir + "/leads", "--threads", "2"});
  ASSERT_EQ(train.exit_code, 0) << train.output;
  EXPECT_TRUE(fs::exists(dir + "/leads/model.json"));
  EXPECT_TRUE(fs::exists(dir + "/leads/metadata.json"));
  EXPECT_NE(train.output.find("auc"), std::string::npos) << train.output;

  auto replay = run_reai({"replay", "--model", dir + "/leads", "--contacts", kFixture + "/contacts.csv",
                          "--events", kFixture + "/events.csv", "--as-of-hours", "1,24,168", "--out",
                          dir + "/scores.csv"});
  ASSERT_EQ(replay.exit_code, 0) << replay.output;
  auto lines = read_lines(dir + "/scores.csv");
  ASSERT_EQ(lines.size(), 1u + 600u * 3u);
  EXPECT_EQ(lines[0], "contact_id,hours,probability,score");
  std::map<std::string, int> offsets;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    std::stringstream ss(lines[i]);
    std::string id, hours, prob, score;
    std::getline(ss, id, ',');
    std::getline(ss, hours, ',');
    std::getline(ss, prob, ',');
    std::getline(ss, score, ',');
    const double p = std::stod(prob);
    const int s = std::stoi(score);
    ASSERT_GE(p, 0.0);
    ASSERT_LE(p, 1.0);
    ASSERT_GE(s, 0);
    ASSERT_LE(s, 100);
    ++offsets[hours];
  }
  EXPECT_EQ(offsets["1"], 600);
  EXPECT_EQ(offsets["24"], 600);
  EXPECT_EQ(offsets["168"], 600);
}

TEST(CliBinaryTest, TokenNeedsASecret) {
  auto ok = run_reai({"token", "--tenant", "t1", "--role", "admin", "--jwt-secret", "k", "--ttl", "1h"});
  ASSERT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_EQ(std::count(ok.output.begin(), ok.output.end(), '.'), 2) << ok.output;
  ::unsetenv("REAI_JWT_SECRET");
  auto none = run_reai({"token", "--tenant", "t1"});
  EXPECT_EQ(none.exit_code, 2) << none.output;
}

TEST(CliBinaryTest, TenantAddLinksAGhlLocationOnce) {
  const std::string dir = make_temp_dir("reai-ghl-tenant");
  const std::string map = write_file(dir, "map.json", R"({"budget":"fBudget01","stages":{"s1":"offer"}})");
  const std::string bad_map = write_file(dir, "bad.json", R"({"budget":"fBudget01","stages":{"s1":"escrow"}})");
  auto add = run_reai({"tenant", "add", "--data-dir", dir, "--tenant", "t1", "--ghl-location", "LOC1",
                       "--ghl-workflow-secret", "s3cret", "--ghl-field-map", map});
  ASSERT_EQ(add.exit_code, 0) << add.output;
  // Renaming keeps the link.
  ASSERT_EQ(run_reai({"tenant", "add", "--data-dir", dir, "--tenant", "t1", "--name", "Austin"}).exit_code, 0);
  auto list = run_reai({"tenant", "list", "--data-dir", dir});
  EXPECT_NE(list.output.find("t1,Austin,0,0,LOC1"), std::string::npos) << list.output;
  auto taken = run_reai({"tenant", "add", "--data-dir", dir, "--tenant", "t2", "--ghl-location", "LOC1"});
  EXPECT_EQ(taken.exit_code, 2) << taken.output;
  EXPECT_NE(taken.output.find("already linked to tenant 't1'"), std::string::npos) << taken.output;
  auto bad = run_reai({"tenant", "add", "--data-dir", dir, "--tenant", "t3", "--ghl-field-map", bad_map});
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_EQ(run_reai({"tenant", "add", "--data-dir", dir, "--tenant", "t3", "--ghl-field-map", dir + "/none.json"})
                .exit_code,
            2);
}

}  // namespace
}  // namespace reai::testing
