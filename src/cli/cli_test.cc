#include "cli/cli.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/time.h"
#include "store/store.h"

namespace reai::cli {
namespace {

TEST(CliTest, ParsesDurations) {
  EXPECT_EQ(*parse_duration("24h"), 86400);
  EXPECT_EQ(*parse_duration("30m"), 1800);
  EXPECT_EQ(*parse_duration("7d"), 604800);
  EXPECT_EQ(*parse_duration("90"), 90);
  EXPECT_EQ(*parse_duration("90s"), 90);
  for (const char* bad : {"", "h", "-5m", "12y", "1.5h", "99999999999999d"}) {
    EXPECT_FALSE(parse_duration(bad).has_value()) << bad;
  }
}

TEST(CliTest, BadInputMapsToExitCodeTwo) {
  EXPECT_EQ(report_failure(invalid_argument("missing column 'ts'")), kExitBadInput);
  EXPECT_EQ(report_failure(not_found("no such file")), kExitBadInput);
  EXPECT_EQ(report_failure(internal_error("boom")), kExitFailure);
}

// `--store mysql://x` used to open a SQLite store in a directory named
// "mysql:/x" and serve from it; every command taking --store refuses it at
// parse time (before any store is opened or server started).
TEST(CliTest, StoreMustBeAPostgresUrl) {
  const std::vector<std::vector<std::string>> commands = {
      {"serve"}, {"tenant", "add", "--tenant", "t"}, {"tenant", "list"}, {"import", "--contacts", "c", "--events", "e"},
      {"ghl", "sync", "--tenant", "t"}, {"import", "listings", "--tenant", "t", "--listings", "l.csv", "--price-column", "p"},
      {"import", "ghl-contacts", "--tenant", "t", "--csv", "c.csv"}};
  for (const auto& command : commands) {
    for (const std::string bad : {"mysql://db/reai", "/var/lib/reai", "postgres:/missing-slash"}) {
      CLI::App app;
      int exit_code = -1;
      add_serve_command(app, &exit_code);
      add_tenant_command(app, &exit_code);
      add_import_command(app, &exit_code);
      add_ghl_command(app, &exit_code);
      std::vector<std::string> args = command;
      args.insert(args.end(), {"--store", bad});
      std::reverse(args.begin(), args.end());  // CLI11 parses a reversed vector
      EXPECT_THROW(app.parse(args), CLI::ValidationError) << command[0] << " --store " << bad;
      EXPECT_EQ(exit_code, -1) << "the command ran";
    }
  }
  for (std::string good : {"postgres://reai@db.internal/reai", "postgresql://u:p@h:5432/d?sslmode=require", ""}) {
    EXPECT_EQ(postgres_store_url()(good), "") << good;
  }
}

// Every command taking --tenant refuses an id that is not a valid tenant id
// (core/tenant_id.h) at parse time: nothing is opened, written or signed.
TEST(CliTest, TenantMustBeAValidTenantId) {
  const std::vector<std::vector<std::string>> commands = {{"tenant", "add"},
                                                          {"import", "--contacts", "c", "--events", "e"},
                                                          {"import", "ghl-contacts", "--csv", "c.csv"},
                                                          {"import", "listings", "--listings", "l.csv"},
                                                          {"token", "--jwt-secret", "s"},
                                                          {"ghl", "sync"},
                                                          {"demo"},
                                                          {"simulate"}};
  for (const auto& command : commands) {
    for (const std::string bad : {"bad tenant!", "..", "../other", "", "-x"}) {
      CLI::App app;
      int exit_code = -1;
      add_serve_command(app, &exit_code);
      add_token_command(app, &exit_code);
      add_tenant_command(app, &exit_code);
      add_import_command(app, &exit_code);
      add_ghl_command(app, &exit_code);
      add_demo_command(app, &exit_code);
      add_simulate_command(app, &exit_code);
      std::vector<std::string> args = command;
      args.insert(args.end(), {"--tenant", bad});
      std::reverse(args.begin(), args.end());  // CLI11 parses a reversed vector
      EXPECT_THROW(app.parse(args), CLI::ParseError) << command[0] << " --tenant '" << bad << "'";
      EXPECT_EQ(exit_code, -1) << "the command ran";
    }
  }
  std::string bad = "bad tenant!";
  EXPECT_NE(tenant_id_option()(bad).find("invalid tenant id 'bad tenant!'"), std::string::npos);
  for (std::string good : {"t1", "t_prairie", "tenant-a", "LOC8f2k1m9q0a7s6d5f4g"}) {
    EXPECT_EQ(tenant_id_option()(good), "") << good;
  }
}

// `--static-dir /nonexistent` used to serve the built-in page without a word.
TEST(CliTest, StaticDirMustHoldTheDashboard) {
  const std::string empty_dir = ::testing::TempDir() + "reai-cli-static-" + std::to_string(::getpid());
  std::filesystem::create_directories(empty_dir);
  for (const char* command : {"serve", "demo"}) {
    for (const std::string& bad : {std::string("/nonexistent"), empty_dir}) {
      CLI::App app;
      int exit_code = -1;
      add_serve_command(app, &exit_code);
      add_demo_command(app, &exit_code);
      std::vector<std::string> args = {command, "--static-dir", bad};
      std::reverse(args.begin(), args.end());  // CLI11 parses a reversed vector
      try {
        app.parse(args);
        ADD_FAILURE() << command << " --static-dir " << bad << " was accepted";
      } catch (const CLI::ValidationError& e) {
        EXPECT_NE(std::string(e.what()).find("'" + bad + "'"), std::string::npos) << e.what();
      }
      EXPECT_EQ(exit_code, -1) << "the command ran";
    }
  }
  std::ofstream(empty_dir + "/index.html") << "<!doctype html>";
  std::string good = empty_dir;
  EXPECT_EQ(static_dir_option()(good), "");
  std::filesystem::remove_all(empty_dir);
}

// `reai tenant list` names each tenant's GoHighLevel state from the store:
// an uninstalled app and a grant GHL refused are dated, with GHL's message.
TEST(CliTest, TenantListShowsEachTenantsGhlInstallState) {
  auto store = store::make_memory_store();
  const UnixSeconds refused = 1'795'000'000, uninstalled = 1'795'100'000;
  ASSERT_TRUE(store->upsert_tenant({"t_none", "Plain, Inc", 1, ""}).is_ok());
  ASSERT_TRUE(store->upsert_tenant({"t_linked", "Linked", 1, "LOC_L"}).is_ok());
  ASSERT_TRUE(store->upsert_tenant({"t_oauth", "OAuth", 1, "LOC_O"}).is_ok());
  ASSERT_TRUE(store->upsert_tenant({"t_pit", "Private", 1, "LOC_P"}).is_ok());
  ASSERT_TRUE(store->upsert_tenant({"t_reauth", "Refused", 1, "LOC_R"}).is_ok());
  ASSERT_TRUE(store->upsert_tenant({"t_gone", "Gone", 1, "LOC_G"}).is_ok());
  ASSERT_TRUE(store->put_ghl_token({"t_oauth", "oauth", "sa", "sr", 0, 1}).is_ok());
  ASSERT_TRUE(store->put_ghl_token({"t_pit", "private", "sp", "", 0, 1}).is_ok());
  ASSERT_TRUE(store->put_ghl_token({"t_reauth", "oauth", "sa2", "sr2", 0, 1}).is_ok());
  ASSERT_TRUE(store->mark_ghl_token_refused("t_reauth", "sr2", refused, "GHL token refresh: 400 Invalid grant, revoked")
                  .value());
  ASSERT_TRUE(store->put_ghl_token({"t_gone", "oauth", "sa3", "sr3", 0, 1}).is_ok());
  ASSERT_TRUE(store->update_ghl_settings("t_gone", {.active = false, .uninstalled_at = uninstalled}).is_ok());
  std::ostringstream out;
  ASSERT_TRUE(write_tenant_list(*store, out).is_ok());
  std::vector<std::string> lines;
  std::istringstream in(out.str());
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  const std::vector<std::string> expected = {
      "tenant_id,name,contacts,events,ghl_location_id,ghl,ghl_since,ghl_detail",
      "t_gone,Gone,0,0,LOC_G,uninstalled," + format_iso8601(uninstalled) + ",",
      "t_linked,Linked,0,0,LOC_L,linked,,",
      "t_none,\"Plain, Inc\",0,0,,none,,",
      "t_oauth,OAuth,0,0,LOC_O,oauth,,",
      "t_pit,Private,0,0,LOC_P,private,,",
      "t_reauth,Refused,0,0,LOC_R,needs_reauth," + format_iso8601(refused) +
          ",\"GHL token refresh: 400 Invalid grant, revoked\""};
  EXPECT_EQ(lines, expected) << out.str();
}

}  // namespace
}  // namespace reai::cli
