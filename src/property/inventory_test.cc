// Inventory texts: attributes as JSON, tables rebuilt from them, price
// competitiveness, model directories.
#include "property/inventory.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "property/matching.h"

namespace reai::property {
namespace {

TEST(Inventory, PriceCompetitivenessAgainstValueAndInterval) {
  const Valuation v{200000, 180000, 220000, 170000, 230000};
  auto under = assess_price(170000, v);
  EXPECT_EQ(under.label, "under-priced");
  EXPECT_DOUBLE_EQ(under.percent, -15.0);
  EXPECT_EQ(under.text, "priced 15% under its estimated value");
  auto fair = assess_price(210000, v);
  EXPECT_EQ(fair.label, "fair");
  EXPECT_EQ(fair.text, "priced 5% over its estimated value, within the 80% range");
  EXPECT_EQ(assess_price(240000, v).label, "over-priced");
  EXPECT_EQ(assess_price(200000, v).text, "priced at its estimated value");
}

TEST(Inventory, AttributesSkipPriceIdAndMissingCells) {
  const std::vector<std::string> header = {"id", "Beds", "Area", "Price", "Note"};
  const std::vector<std::string> row = {"x1", "3", "NA", "150000", "has \"quotes\""};
  const std::vector<int> skip = {0, 3};
  EXPECT_EQ(attributes_json(header, row, skip), R"({"Beds":"3","Note":"has \"quotes\""})");
}

TEST(Inventory, ListingsTableUnitesColumnsAndBuildsACatalog) {
  std::vector<StoredListing> stored;
  for (int i = 0; i < 30; ++i) {
    std::string id = "L";
    id += std::to_string(i);
    stored.push_back({id, 100000.0 + 5000 * i,
                      i % 2 ? R"({"Neighborhood":"A","Bedrooms":"3"})" : R"({"Bedrooms":2,"Pool":true})"});
  }
  auto t = listings_table(stored, "inventory");
  ASSERT_TRUE(t) << t.status().to_string();
  EXPECT_EQ(t->header, (std::vector<std::string>{std::string(kListingIdColumn), std::string(kListPriceColumn),
                                                 "Bedrooms", "Pool", "Neighborhood"}));
  ASSERT_EQ(t->rows.size(), 30u);
  EXPECT_EQ(t->rows[0], (std::vector<std::string>{"L0", "100000", "2", "true", ""}));
  EXPECT_EQ(t->rows[1], (std::vector<std::string>{"L1", "105000", "3", "", "A"}));
  auto catalog = ListingCatalog::build(*t, {std::string(kListPriceColumn), std::string(kListingIdColumn)});
  ASSERT_TRUE(catalog) << catalog.status().to_string();
  EXPECT_EQ(catalog->size(), 30u);
  EXPECT_EQ(catalog->listing(catalog->find("L7")).price, 135000);

  std::vector<StoredListing> bad = {{"B1", 1, "[1]"}};
  EXPECT_EQ(listings_table(bad, "x").status().message(), "listing 'B1': attributes must be a JSON object");
  bad = {{"B2", 1, R"({"a":{"b":1}})"}};
  EXPECT_EQ(listings_table(bad, "x").status().message(), "listing 'B2': attribute 'a' is not a scalar");
}

TEST(Inventory, AttributesTableWritesNumbersAsPlainCells) {
  auto t = attributes_table(R"({"Area":1500.0,"Lat":42.05,"Beds":3,"Pool":false,"Note":null})", "body");
  ASSERT_TRUE(t) << t.status().to_string();
  EXPECT_EQ(t->header, (std::vector<std::string>{"Area", "Lat", "Beds", "Pool", "Note"}));
  EXPECT_EQ(t->rows.at(0), (std::vector<std::string>{"1500", "42.05", "3", "false", ""}));
  EXPECT_EQ(attributes_table(R"({"a":[1]})", "body").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(attributes_table("{", "body").status().code(), StatusCode::kInvalidArgument);
}

TEST(Inventory, ModelDirectoriesPreferTheTenantsOwn) {
  namespace fs = std::filesystem;
  std::string name = "reai_inventory_test_";
  name += std::to_string(std::random_device{}());
  const fs::path root = fs::temp_directory_path() / name;
  EXPECT_EQ(tenant_model_dir(root.string(), "t1", "value").value(), (root / "value").string());
  EXPECT_EQ(model_dir_version((root / "value").string(), "value").status().code(), StatusCode::kNotFound);
  fs::create_directories(root / "tenants" / "t1" / "value");
  std::ofstream(root / "tenants" / "t1" / "value" / "model.json") << "{}";
  EXPECT_EQ(tenant_model_dir(root.string(), "t1", "value").value(), (root / "tenants" / "t1" / "value").string());
  EXPECT_EQ(tenant_model_dir(root.string(), "t2", "value").value(), (root / "value").string());
  auto version = model_dir_version((root / "tenants" / "t1" / "value").string(), "value");
  ASSERT_TRUE(version);
  EXPECT_EQ(version->substr(0, 8), "value@20");
  fs::remove_all(root);
}

TEST(Inventory, ModelDirectoryRefusesAnInvalidTenantId) {
  // A model.json planted where "../.." would lead must not be found.
  namespace fs = std::filesystem;
  const fs::path root = fs::temp_directory_path() / ("reai_inventory_escape_" + std::to_string(std::random_device{}()));
  fs::create_directories(root / "models");
  fs::create_directories(root / "value");
  std::ofstream(root / "value" / "model.json") << "{}";
  for (const char* id : {"../..", "..", "", "bad tenant!", "a/b"}) {
    auto dir = tenant_model_dir((root / "models").string(), id, "value");
    EXPECT_EQ(dir.status().code(), StatusCode::kInvalidArgument) << id;
  }
  fs::remove_all(root);
}

}  // namespace
}  // namespace reai::property
