// Black-box tests of the `reai` batch commands: import, train leads, replay,
// token, tenant. They run the real binary on the small fixture history.
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "support/process.h"
#include "support/test_client.h"
#include "support/token.h"

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

// contacts.csv of tenant t1: c1 good, c2 with a bad budget on line 3.
std::string write_contacts_with_a_bad_row(const std::string& dir) {
  return write_file(dir, "contacts.csv",
                    "contact_id,tenant_id,created_at,source,lead_type,assigned_agent_id,budget\n"
                    "c1,t1,2024-01-01T00:00:00Z,zillow,buyer,a1,250000\n"
                    "c2,t1,2024-01-02T00:00:00Z,zillow,buyer,a1,lots\n");
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
  const std::string contacts = write_contacts_with_a_bad_row(dir);
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

// A contact row skipped as bad (or absent from the export) leaves its events
// without a contact: the import adds the bare contact the server would have
// stored with them, once, and never over a real row.
TEST(CliBinaryTest, EventsWithoutTheirContactRowGetABareContactOnce) {
  const std::string dir = make_temp_dir("reai-import-orphans");
  const std::string contacts = write_contacts_with_a_bad_row(dir);
  const std::string events = write_file(dir, "events.csv",
                                        "event_id,tenant_id,contact_id,ts,type,property_id,value\n"
                                        "e1,t1,c1,2024-01-01T01:00:00Z,sms_in,,\n"
                                        "e2,t1,c2,2024-01-03T01:00:00Z,sms_in,,\n"
                                        "e3,t1,c2,2024-01-02T05:00:00Z,email_open,,\n"
                                        "e4,t1,c3,2024-01-04T01:00:00Z,sms_in,,\n");
  const std::string data = dir + "/store";
  const std::vector<std::string> args = {"import", "--data-dir", data, "--contacts", contacts,
                                         "--events",  events,        "--skip-bad"};
  auto first = run_reai(args);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("imported 1 contacts, 4 events"), std::string::npos) << first.output;
  EXPECT_NE(first.output.find("added 2 contacts for events whose contact row was not imported"), std::string::npos)
      << first.output;
  auto again = run_reai(args);
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_EQ(again.output.find("added"), std::string::npos) << "bare contacts are added once: " << again.output;

  // The real row arriving later replaces the bare one (import upserts).
  const std::string fixed = write_file(dir, "fixed.csv",
                                       "contact_id,tenant_id,created_at,source,lead_type,assigned_agent_id,budget\n"
                                       "c2,t1,2024-01-02T00:00:00Z,zillow,buyer,a1,300000\n");
  auto later = run_reai({"import", "--data-dir", data, "--contacts", fixed, "--events", events});
  ASSERT_EQ(later.exit_code, 0) << later.output;
  EXPECT_NE(later.output.find("imported 1 contacts, 0 events (4 already present)"), std::string::npos)
      << later.output;
  EXPECT_EQ(later.output.find("added"), std::string::npos) << later.output;
}

// `reai import listings`: ids from the file stem and row, valuations when an
// AVM is trained, idempotent re-import, a changed listing revalued.
TEST(CliBinaryTest, ImportListingsValuesDedupesAndRevaluesChanges) {
  const std::string dir = make_temp_dir("reai-listings");
  const std::string data = dir + "/store", models = dir + "/models";
  auto lines = read_lines("tests/fixtures/ames_small/ames.csv");
  ASSERT_GT(lines.size(), 100u);
  std::string text;
  for (const auto& l : lines) text += l + "\n";
  const std::string listings = write_file(dir, "ames.csv", text);
  const std::vector<std::string> args = {"import", "listings", "--data-dir", data, "--model-dir", models, "--tenant",
                                         "t1", "--listings", listings, "--price-column", "Sale_Price"};
  auto first = run_reai(args);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("imported 200 listings for tenant t1: 200 new, 0 updated, 0 unchanged; not valued"),
            std::string::npos) << first.output;
  auto again = run_reai(args);
  ASSERT_EQ(again.exit_code, 0) << again.output;
  EXPECT_NE(again.output.find("0 new, 0 updated, 200 unchanged"), std::string::npos) << again.output;

  // An AVM trained into the model dir: the next import values every listing.
  auto train = run_reai({"value", "train", "--data", listings, "--target", "Sale_Price", "--out", models + "/value",
                         "--budget", "0", "--threads", "1"});
  ASSERT_EQ(train.exit_code, 0) << train.output;
  // The fixture's latest sale: Year_Sold 2010, Mo_Sold 7.
  EXPECT_NE(train.output.find("reai value train: market as of 2010-07 (the latest training sale)"), std::string::npos)
      << train.output;
  auto valued = run_reai(args);
  ASSERT_EQ(valued.exit_code, 0) << valued.output;
  EXPECT_NE(valued.output.find("0 new, 200 updated, 0 unchanged; valued"), std::string::npos) << valued.output;
  EXPECT_NE(valued.output.find("reai import listings: 0 of 200 rows have attributes outside the training range"),
            std::string::npos)
      << valued.output;
  EXPECT_NE(valued.output.find("reai import listings: market as of 2010-07"), std::string::npos) << valued.output;

  // One listing's price changes: only it is rewritten (and revalued).
  std::vector<std::string> header;
  {
    std::stringstream ss(lines[0]);
    for (std::string cell; std::getline(ss, cell, ',');) header.push_back(cell);
  }
  std::size_t price_col = 0;
  while (price_col < header.size() && header[price_col] != "\"Sale_Price\"" && header[price_col] != "Sale_Price") {
    ++price_col;
  }
  ASSERT_LT(price_col, header.size());
  std::vector<std::string> cells;
  {
    std::stringstream ss(lines[5]);
    for (std::string cell; std::getline(ss, cell, ',');) cells.push_back(cell);
  }
  ASSERT_EQ(cells.size(), header.size()) << "row 5 has no quoted comma";
  cells[price_col] = "123456";
  std::string row;
  for (std::size_t i = 0; i < cells.size(); ++i) row += (i ? "," : "") + cells[i];
  lines[5] = row;
  text.clear();
  for (const auto& l : lines) text += l + "\n";
  write_file(dir, "ames.csv", text);
  auto changed = run_reai(args);
  ASSERT_EQ(changed.exit_code, 0) << changed.output;
  EXPECT_NE(changed.output.find("0 new, 1 updated, 199 unchanged; valued"), std::string::npos) << changed.output;
}

// `reai value predict` on another market's file: the output keeps its
// columns; stderr counts the rows with an attribute beyond the training range.
TEST(CliBinaryTest, ValuePredictCountsRowsOutsideTheTrainingRange) {
  const std::string dir = make_temp_dir("reai-value-range");
  auto lines = read_lines("tests/fixtures/other_market/sales.csv");
  ASSERT_GT(lines.size(), 20u);
  ASSERT_EQ(lines[0].substr(0, 40), "id,date,price,bedrooms,bathrooms,sqft_li");
  auto train = run_reai({"value", "train", "--data", "tests/fixtures/other_market/sales.csv", "--target", "price",
                         "--out", dir + "/model", "--budget", "0", "--threads", "1"});
  ASSERT_EQ(train.exit_code, 0) << train.output;
  // Three listings: as sold, one of 40,000 sq ft, one with 40 bedrooms too.
  auto with_cell = [](const std::string& line, std::size_t col, const std::string& cell) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, ',');) cells.push_back(c);
    cells[col] = cell;
    std::string out;
    for (std::size_t i = 0; i < cells.size(); ++i) out += (i ? "," : "") + cells[i];
    return out;
  };
  const std::string listings =
      write_file(dir, "listings.csv",
                 lines[0] + "\n" + lines[1] + "\n" + with_cell(lines[2], 5, "40000") + "\n" +
                     with_cell(with_cell(lines[3], 5, "40000"), 3, "40") + "\n");
  auto predict = run_reai({"value", "predict", "--model", dir + "/model", "--data", listings, "--out", dir + "/out.csv"});
  ASSERT_EQ(predict.exit_code, 0) << predict.output;
  EXPECT_NE(predict.output.find("reai value predict: 2 of 3 rows have attributes outside the training range"),
            std::string::npos)
      << predict.output;
  EXPECT_NE(predict.output.find("reai value predict: market as of "), std::string::npos) << predict.output;
  const auto out = read_lines(dir + "/out.csv");
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0], "row,predicted,lower80,upper80,lower90,upper90");
  EXPECT_EQ(out[3].substr(0, 2), "3,");

  // Columns left out: named, not only counted. Without bedrooms the rows are
  // still valued (a warning names it); with four columns left, refused (2),
  // the error naming what is missing, the first ten and how many.
  auto without_columns = [](const std::string& line, std::size_t keep_from) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, ',');) cells.push_back(c);
    std::string out;
    for (std::size_t i = 0; i < cells.size(); ++i) {
      if (i == 3 || (keep_from > 0 && i > 2 && i < keep_from)) continue;
      out += (out.empty() ? "" : ",") + cells[i];
    }
    return out;
  };
  const std::string no_bedrooms = write_file(
      dir, "no_bedrooms.csv", without_columns(lines[0], 0) + "\n" + without_columns(lines[1], 0) + "\n");
  auto partial = run_reai({"value", "predict", "--model", dir + "/model", "--data", no_bedrooms, "--out", dir + "/p.csv"});
  ASSERT_EQ(partial.exit_code, 0) << partial.output;
  EXPECT_NE(partial.output.find("reai value predict: warning: columns the model uses are missing, most important "
                                "first (valued as if unknown): bedrooms (1 missing)\n"),
            std::string::npos)
      << partial.output;
  // id, date and price, then zipcode, lat and long only.
  const std::string sparse = write_file(
      dir, "sparse.csv", without_columns(lines[0], 16) + "\n" + without_columns(lines[1], 16) + "\n");
  auto refused_sparse = run_reai({"value", "predict", "--model", dir + "/model", "--data", sparse, "--out", dir + "/s.csv"});
  EXPECT_EQ(refused_sparse.exit_code, 2) << refused_sparse.output;
  EXPECT_NE(refused_sparse.output.find("too little of the model's schema is present"), std::string::npos)
      << refused_sparse.output;
  EXPECT_NE(refused_sparse.output.find(", ... (13 missing, the first 10 named)\n"), std::string::npos)
      << refused_sparse.output;
  EXPECT_NE(refused_sparse.output.find("; missing, most important first: "), std::string::npos) << refused_sparse.output;

  // `reai price` counts the same on stderr for its one listing.
  auto listing_json = [&](const std::string& line) {
    std::vector<std::string> names, cells;
    std::stringstream hs(lines[0]), cs(line);
    for (std::string c; std::getline(hs, c, ',');) names.push_back(c);
    for (std::string c; std::getline(cs, c, ',');) cells.push_back(c);
    std::string json = "{";
    for (std::size_t i = 0; i < names.size() && i < cells.size(); ++i) {
      if (names[i] == "price") continue;
      json += (json.size() > 1 ? ",\"" : "\"") + names[i] + "\":\"" + cells[i] + "\"";
    }
    return json + "}";
  };
  for (const auto& [line, count] : {std::pair{lines[1], "0 of 1"}, std::pair{with_cell(lines[2], 5, "40000"), "1 of 1"}}) {
    const std::string listing = write_file(dir, "listing.json", listing_json(line));
    auto price = run_reai({"price", "--model", dir + "/model", "--listing", listing});
    ASSERT_EQ(price.exit_code, 0) << price.output;
    EXPECT_NE(price.output.find(std::string("reai price: ") + count + " rows have attributes outside the training range"),
              std::string::npos)
        << price.output;
  }
}

// `reai value predict` on a user's own columns: a category the training
// sales never had is valued as missing but named on stderr (the output keeps
// its columns); a number column holding text fails with the file line, exit 2.
TEST(CliBinaryTest, ValuePredictNamesUnseenCategoriesAndRefusesUnreadableNumbers) {
  const std::string dir = make_temp_dir("reai-value-unseen");
  const char* const zones[] = {"Downtown", "Suburb", "Rural"};
  std::string sales = "SqFt,Zone,Pool,SalePrice\n";
  for (int i = 0; i < 90; ++i) {
    const int sqft = 900 + (i * 37) % 2400;
    sales += std::to_string(sqft) + "," + zones[i % 3] + "," + (i % 4 == 0 ? "yes" : "no") + "," +
             std::to_string(sqft * (150 - 30 * (i % 3)) + (i * 7919) % 20000) + "\n";
  }
  const std::string train_file = write_file(dir, "sales.csv", sales);
  auto train = run_reai({"value", "train", "--data", train_file, "--target", "SalePrice", "--out", dir + "/model",
                         "--budget", "0", "--threads", "1"});
  ASSERT_EQ(train.exit_code, 0) << train.output;
  const std::string listings = write_file(dir, "listings.csv",
                                          "SqFt,Zone,Pool\n1500,Suburb,no\n1500,Waterfront,no\n1500,downtown,yes\n");
  auto predict = run_reai({"value", "predict", "--model", dir + "/model", "--data", listings, "--out", dir + "/out.csv"});
  ASSERT_EQ(predict.exit_code, 0) << predict.output;
  EXPECT_NE(predict.output.find("reai value predict: 2 of 3 rows have a category no training sale had (valued as if "
                                "missing): row 2 Zone 'Waterfront'; row 3 Zone 'downtown' (training has 'Downtown')"),
            std::string::npos)
      << predict.output;
  const auto out = read_lines(dir + "/out.csv");
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0], "row,predicted,lower80,upper80,lower90,upper90");

  const std::string bad = write_file(dir, "bad.csv", "SqFt,Zone,Pool\n1500,Suburb,no\nbig,Suburb,no\n");
  auto refused = run_reai({"value", "predict", "--model", dir + "/model", "--data", bad, "--out", dir + "/bad_out.csv"});
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_NE(refused.output.find("bad.csv line 3: attribute 'SqFt' must be numeric, not 'big'"), std::string::npos)
      << refused.output;
}

TEST(CliBinaryTest, ImportListingsReportsBadRowsWithFileAndLine) {
  const std::string dir = make_temp_dir("reai-listings-bad");
  const std::string data = dir + "/store";
  const std::string listings = write_file(dir, "homes.csv",
                                          "mls,Neighborhood,Beds,List_Price\n"
                                          "A1,OldTown,3,150000\n"
                                          "A2,OldTown,2,lots\n"
                                          "A3,Edwards,4,\"$210,000\"\n"
                                          "A4,Edwards,4,NA\n");
  const std::vector<std::string> base = {"import", "listings", "--data-dir", data, "--model-dir", dir + "/none",
                                         "--tenant", "t1", "--listings", listings, "--price-column", "List_Price",
                                         "--id-column", "mls"};
  auto strict = run_reai(base);
  EXPECT_EQ(strict.exit_code, 2) << strict.output;
  EXPECT_NE(strict.output.find("homes.csv:3: price 'lots' is not a positive number"), std::string::npos)
      << strict.output;
  EXPECT_NE(strict.output.find("nothing imported"), std::string::npos) << strict.output;

  std::vector<std::string> lenient = base;
  lenient.push_back("--skip-bad");
  auto ok = run_reai(lenient);
  ASSERT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find("imported 2 listings for tenant t1: 2 new"), std::string::npos) << ok.output;
  EXPECT_NE(ok.output.find("skipped 1 rows without a price"), std::string::npos) << ok.output;
  EXPECT_NE(ok.output.find("skipped 1 bad rows"), std::string::npos) << ok.output;

  auto no_column = run_reai({"import", "listings", "--data-dir", data, "--tenant", "t1", "--listings", listings,
                             "--price-column", "Price"});
  EXPECT_EQ(no_column.exit_code, 2);
  EXPECT_NE(no_column.output.find("missing price column 'Price'"), std::string::npos) << no_column.output;
  auto explicit_avm = run_reai({"import", "listings", "--data-dir", data, "--tenant", "t1", "--listings", listings,
                                "--price-column", "List_Price", "--id-column", "mls", "--avm", dir + "/nope",
                                "--skip-bad"});
  EXPECT_EQ(explicit_avm.exit_code, 2) << explicit_avm.output;
  // Plain `reai import` still needs its history files.
  auto history = run_reai({"import", "--data-dir", data});
  EXPECT_EQ(history.exit_code, 2);
  EXPECT_NE(history.output.find("import needs --contacts and --events"), std::string::npos) << history.output;
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
  EXPECT_EQ(run_reai({"token", "--tenant", "t", "--role", "king", "--jwt-secret", kTestJwtSecret}).exit_code, 2);
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
  auto ok = run_reai({"token", "--tenant", "t1", "--role", "admin", "--jwt-secret", kTestJwtSecret, "--ttl", "1h"});
  ASSERT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_EQ(std::count(ok.output.begin(), ok.output.end(), '.'), 2) << ok.output;
  ::unsetenv("REAI_JWT_SECRET");
  auto none = run_reai({"token", "--tenant", "t1"});
  EXPECT_EQ(none.exit_code, 2) << none.output;
}

// A server pinned with serve --clock refuses tokens issued after its clock:
// token --clock issues at the pinned instant.
TEST(CliBinaryTest, TokenIssuedAtAPinnedClock) {
  const UnixSeconds pinned = parse_iso8601("2025-06-20T00:00:00Z").value();
  auto run = run_reai({"token", "--tenant", "t1", "--jwt-secret", kTestJwtSecret, "--ttl", "1h", "--clock",
                       "2025-06-20T00:00:00Z"});
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::string token = run.output.substr(0, run.output.find('\n'));
  auto claims = server::verify_token(token, kTestJwtSecret, pinned);
  ASSERT_TRUE(claims) << claims.status().to_string();
  EXPECT_EQ(claims->expires_at, pinned + 3600);
  auto bad = run_reai({"token", "--tenant", "t1", "--jwt-secret", kTestJwtSecret, "--clock", "yesterday"});
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_NE(bad.output.find("bad --clock 'yesterday'"), std::string::npos) << bad.output;
}

// HS256 keys under 32 bytes are refused (RFC 7518 section 3.2), from the flag
// or the environment, by `token` and by `serve` before it opens anything.
TEST(CliBinaryTest, ShortJwtSecretsExitWithTwo) {
  const std::string dir = make_temp_dir("reai-short-secret");
  auto token = run_reai({"token", "--tenant", "t1", "--jwt-secret", "k"});
  EXPECT_EQ(token.exit_code, 2) << token.output;
  EXPECT_NE(token.output.find("--jwt-secret: the JWT secret is 1 bytes; HS256 needs at least 32"), std::string::npos)
      << token.output;
  auto serve = run_reai({"serve", "--port", "0", "--data-dir", dir, "--jwt-secret", "thirty-one-bytes-is-still-short"});
  EXPECT_EQ(serve.exit_code, 2) << serve.output;
  EXPECT_NE(serve.output.find("31 bytes"), std::string::npos) << serve.output;
  ::setenv("REAI_JWT_SECRET", "short", 1);
  auto env = run_reai({"token", "--tenant", "t1"});
  ::unsetenv("REAI_JWT_SECRET");
  EXPECT_EQ(env.exit_code, 2) << env.output;
  EXPECT_NE(env.output.find("REAI_JWT_SECRET: the JWT secret is 5 bytes"), std::string::npos) << env.output;
}

// serve --help names every model directory the server reads (README,
// "Configuration"), not only the lead, match and value ones, and the Redis
// socket form of --bus and --cache.
TEST(CliBinaryTest, ServeHelpNamesEveryModelDirectoryAndRedisForm) {
  auto help = run_reai({"serve", "--help"});
  EXPECT_EQ(help.exit_code, 0) << help.output;
  EXPECT_NE(help.output.find("DIR/{leads,value,match,deals,markets,avm} (shared), DIR/tenants/T/..."), std::string::npos)
      << help.output;
  std::size_t unix_forms = 0;
  for (auto at = help.output.find("unix:///PATH.sock"); at != std::string::npos;
       at = help.output.find("unix:///PATH.sock", at + 1)) {
    ++unix_forms;
  }
  EXPECT_EQ(unix_forms, 2u) << help.output;  // --bus and --cache
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

// `tenant add` on an existing tenant updates only what it is given: setting
// the hot stage used to rename "Demo Realty" to its id.
TEST(CliBinaryTest, TenantAddKeepsTheNameWhenNotGiven) {
  const std::string dir = make_temp_dir("reai-tenant-name");
  ASSERT_EQ(run_reai({"tenant", "add", "--data-dir", dir, "--tenant", "t1", "--name", "Demo Realty"}).exit_code, 0);
  auto stage = run_reai({"tenant", "add", "--data-dir", dir, "--tenant", "t1", "--ghl-hot-stage", "pipe-1:stage-2"});
  ASSERT_EQ(stage.exit_code, 0) << stage.output;
  auto list = run_reai({"tenant", "list", "--data-dir", dir});
  EXPECT_NE(list.output.find("t1,Demo Realty,0,0,"), std::string::npos) << list.output;
  // A new tenant without --name is named after its id.
  ASSERT_EQ(run_reai({"tenant", "add", "--data-dir", dir, "--tenant", "t2"}).exit_code, 0);
  list = run_reai({"tenant", "list", "--data-dir", dir});
  EXPECT_NE(list.output.find("t2,t2,0,0,"), std::string::npos) << list.output;
}

// `reai demo --clock T` on the small fixture (t_cyclone, 2024-01 to 2025-12),
// without a market panel, with or without the simulator.
std::vector<std::string> demo_args(const std::string& dir, std::uint16_t port, const std::string& clock,
                                   bool simulator = false) {
  std::vector<std::string> args = {"demo",          "--history",      kFixture,      "--tenant",     "t_cyclone",
                                   "--data-dir",    dir,              "--model-dir", dir + "/models", "--port",
                                   std::to_string(port), "--market-panel", "",  "--jwt-secret", kTestJwtSecret,
                                   "--clock",       clock};
  if (!simulator) args.push_back("--no-simulator");
  return args;
}

// The times of the simulator's first lead's events ("sim-..." leads), as
// stored; empty when no such lead is listed.
std::vector<UnixSeconds> simulated_event_times(std::uint16_t port, UnixSeconds clock) {
  HttpClient http("127.0.0.1", port);
  const std::string token = reai_token("t_cyclone", server::Role::kAgent, kTestJwtSecret, clock);
  auto leads = http.get("/api/leads?limit=1000", token);  // every lead of the small fixture, and more
  if (leads.status != 200) return {};
  const boost::json::value listed = boost::json::parse(leads.body);  // (kept: the loop reads into it)
  for (const auto& l : listed.at("leads").as_array()) {
    const std::string id(l.as_object().at("lead_id").as_string());
    if (!id.starts_with("sim-")) continue;
    auto r = http.get("/api/contacts/" + id + "/events?limit=100", token);
    std::vector<UnixSeconds> times;
    if (r.status != 200) return times;
    const boost::json::value events = boost::json::parse(r.body);
    for (const auto& e : events.at("events").as_array()) {
      times.push_back(parse_iso8601(e.as_object().at("ts").as_string()).value_or(0));
    }
    return times;
  }
  return {};
}

// The demo's open deals as of its clock: {days_in_stage of each, as_of}.
std::pair<std::vector<double>, std::string> open_deal_ages(std::uint16_t port, UnixSeconds clock) {
  HttpClient http("127.0.0.1", port);
  auto r = http.get("/api/predictions/deal-closure", reai_token("t_cyclone", server::Role::kAgent, kTestJwtSecret, clock));
  if (r.status != 200) {
    ADD_FAILURE() << r.status << " " << r.body;
    return {};
  }
  const auto o = boost::json::parse(r.body).as_object();
  std::vector<double> ages;
  for (const auto& d : o.at("opportunities").as_array()) ages.push_back(d.as_object().at("days_in_stage").to_number<double>());
  return {ages, std::string(o.at("as_of").as_string())};
}

// The stored time of the fixture's last t_cyclone event (c0033049's page
// view at 2025-12-31T23:50:27Z as shipped).
std::string last_event_ts(std::uint16_t port, UnixSeconds clock) {
  HttpClient http("127.0.0.1", port);
  auto r = http.get("/api/contacts/c0033049/events?limit=1",
                    reai_token("t_cyclone", server::Role::kAgent, kTestJwtSecret, clock));
  if (r.status != 200) return r.body;
  return std::string(boost::json::parse(r.body).at("events").as_array().at(0).at("ts").as_string());
}

// The demo's clock starts at --clock and runs (its live stream needs time
// to move): `as_of` is a little after the start.
void expect_clock_started_at(const std::string& as_of, UnixSeconds start) {
  const auto at = parse_iso8601(as_of);
  ASSERT_TRUE(at.has_value()) << as_of;
  EXPECT_GE(*at, start) << as_of;
  EXPECT_LE(*at, start + 300) << as_of;
}

// The demo places the shipped history so it ends within the week before the
// demo's start (whole weeks, so weekdays stay), records that, and a restart
// on the same store reuses it: no second shift, no second import.
TEST(CliBinaryTest, DemoHistoryEndsAtTheDemoStartAndIsPlacedOnce) {
  const std::string dir = make_temp_dir("reai-demo-clock");
  const UnixSeconds start = parse_iso8601("2026-11-29T12:00:00Z").value();
  const std::uint16_t port = free_port();
  // The small fixture has too few resolved deals for the demo's own deal
  // training: a model from `reai train deals` on both tenants (unshifted: it
  // is relative-time) is in place, and the demo keeps it.
  auto deals = run_reai({"train", "deals", "--contacts", kFixture + "/contacts.csv", "--events",
                         kFixture + "/events.csv", "--stages", kFixture + "/opportunity_stages.csv", "--out",
                         dir + "/models/deals", "--threads", "1"});
  ASSERT_EQ(deals.exit_code, 0) << deals.output;
  std::vector<double> first_ages;
  {
    ReaiProcess demo(demo_args(dir, port, "2026-11-29T12:00:00Z"));
    ASSERT_TRUE(demo.wait_for_port(port, 120000)) << demo.log();
    EXPECT_EQ(last_event_ts(port, start), "2026-11-25T23:50:27Z");  // 329 days (47 weeks) later
    auto [ages, as_of] = open_deal_ages(port, start);
    ASSERT_FALSE(ages.empty()) << demo.log();
    expect_clock_started_at(as_of, start);
    // The history spans two years: no open deal is older than that, and the
    // pipeline was moving up to the demo's start (unshifted, the youngest
    // would be 333 days old: the fixture ends on 2025-12-31).
    EXPECT_LE(*std::max_element(ages.begin(), ages.end()), 731) << demo.log();
    EXPECT_LT(*std::min_element(ages.begin(), ages.end()), 60) << demo.log();
    first_ages = ages;
    EXPECT_EQ(demo.stop(), 0) << demo.log();
    EXPECT_NE(demo.log().find("demo: history moved by 329 days to end at 2026-11-25T23:50:27Z"), std::string::npos)
        << demo.log();
  }
  const auto record = read_lines(dir + "/demo-history-shift");
  ASSERT_EQ(record.size(), 2u);
  EXPECT_EQ(record[0], "shift_seconds=" + std::to_string(329 * 86400));  // 47 weeks
  EXPECT_EQ(record[1], "history_end=2026-11-25T23:50:27Z");  // within the week before the start

  // Two weeks later, the same store: the history stays where it was placed.
  // With the live stream this time: it posts on the demo's clock, which the
  // server accepts (on the wall clock it refused every request).
  const UnixSeconds later = start + 14 * 86400;
  ReaiProcess again(demo_args(dir, port, format_iso8601(later), true));
  ASSERT_TRUE(again.wait_for_port(port, 120000)) << again.log();
  std::vector<UnixSeconds> simulated;
  for (int k = 0; k < 100 && simulated.empty(); ++k) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    simulated = simulated_event_times(port, later);
  }
  ASSERT_FALSE(simulated.empty()) << again.log();
  for (UnixSeconds t : simulated) {
    EXPECT_GE(t, later - 300) << format_iso8601(t);  // the warm start's window (168 s) and the run so far
    EXPECT_LE(t, later + 300) << format_iso8601(t);
  }
  EXPECT_EQ(last_event_ts(port, later), "2026-11-25T23:50:27Z");  // not moved again
  auto [ages, as_of] = open_deal_ages(port, later);
  expect_clock_started_at(as_of, later);
  ASSERT_EQ(ages.size(), first_ages.size());
  // Whole days: the clocks ran on for a few seconds after their starts.
  EXPECT_NEAR(*std::min_element(ages.begin(), ages.end()), *std::min_element(first_ages.begin(), first_ages.end()) + 14,
              1);
  EXPECT_EQ(again.stop(), 0) << again.log();
  EXPECT_EQ(again.log().find("simulator stopped"), std::string::npos) << again.log();
  EXPECT_EQ(again.log().find("importing"), std::string::npos) << again.log();
  EXPECT_EQ(again.log().find("training the lead model"), std::string::npos) << again.log();
  EXPECT_NE(again.log().find("reusing the stored history (ends at 2026-11-25T23:50:27Z)"), std::string::npos)
      << again.log();
  EXPECT_EQ(read_lines(dir + "/demo-history-shift"), record);
}

// A store made before the demo placed its history (no shift record, the
// history as shipped) would show deals a year in their stage: the demo
// rebuilds it, saying so, and keeps the old one in previous-demo. A store
// with more than the demo in it is never touched.
TEST(CliBinaryTest, DemoRebuildsAStaleDemoStoreAndLeavesOthersAlone) {
  const std::string dir = make_temp_dir("reai-demo-stale");
  const std::string other = make_temp_dir("reai-demo-stale-other");
  const std::uint16_t port = free_port();
  // As an older reai left them: the history imported as shipped (a start
  // right after its end places it nowhere), and no record of that.
  for (const std::string& d : {dir, other}) {
    ReaiProcess old(demo_args(d, port, "2026-01-02T00:00:00Z"));
    ASSERT_TRUE(old.wait_for_port(port, 120000)) << old.log();
    EXPECT_EQ(old.stop(), 0) << old.log();
    std::filesystem::remove(d + "/demo-history-shift");
  }
  ASSERT_EQ(run_reai({"tenant", "add", "--data-dir", other, "--tenant", "t2"}).exit_code, 0);  // not only the demo

  const UnixSeconds start = parse_iso8601("2026-11-29T12:00:00Z").value();
  {
    ReaiProcess demo(demo_args(dir, port, format_iso8601(start)));
    ASSERT_TRUE(demo.wait_for_port(port, 120000)) << demo.log();
    EXPECT_EQ(last_event_ts(port, start), "2026-11-25T23:50:27Z");  // placed at the start
    EXPECT_EQ(demo.stop(), 0) << demo.log();
    EXPECT_NE(demo.log().find("ended 332 days before the demo starts (2025-12-31T23:50:27Z, imported as shipped): "
                              "rebuilding it"),
              std::string::npos)
        << demo.log();
    EXPECT_NE(demo.log().find("history moved by 329 days"), std::string::npos) << demo.log();
  }
  EXPECT_TRUE(std::filesystem::exists(dir + "/previous-demo/reai.db"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/previous-demo/models/leads/metadata.json"));
  EXPECT_TRUE(std::filesystem::exists(dir + "/models/leads/metadata.json"));  // retrained
  EXPECT_EQ(read_lines(dir + "/demo-history-shift").at(1), "history_end=2026-11-25T23:50:27Z");

  // Six weeks on, the placed history is stale in turn: rebuilt again.
  const UnixSeconds later = start + 42 * 86400;
  {
    ReaiProcess demo(demo_args(dir, port, format_iso8601(later)));
    ASSERT_TRUE(demo.wait_for_port(port, 120000)) << demo.log();
    EXPECT_EQ(last_event_ts(port, later), "2027-01-06T23:50:27Z");
    EXPECT_EQ(demo.stop(), 0) << demo.log();
    EXPECT_NE(demo.log().find("ended 45 days before the demo starts (2026-11-25T23:50:27Z): rebuilding it"),
              std::string::npos)
        << demo.log();
  }

  ReaiProcess kept(demo_args(other, port, format_iso8601(start)));
  ASSERT_TRUE(kept.wait_for_port(port, 120000)) << kept.log();
  EXPECT_EQ(last_event_ts(port, start), "2025-12-31T23:50:27Z");  // as it was
  EXPECT_EQ(kept.stop(), 0) << kept.log();
  EXPECT_NE(kept.log().find("the store holds more than the demo (other tenants or contacts), so it is left as it is"),
            std::string::npos)
      << kept.log();
  EXPECT_FALSE(std::filesystem::exists(other + "/previous-demo"));
  EXPECT_FALSE(std::filesystem::exists(other + "/demo-history-shift"));
}

}  // namespace
}  // namespace reai::testing
