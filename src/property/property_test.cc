#include "property/property.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "property/features.h"
#include "property/inventory.h"
#include "property/schema.h"

namespace reai::property {
namespace {

const char* const kNeighbourhoods[] = {"Northridge", "Old_Town", "Edwards", "Somerset", "Gilbert",
                                       "Sawyer",     "Crawford", "Mitchell", "Timber",  "Veenker",
                                       "Blueste",    "Greens"};

// A sales file with the usual columns: price depends on size, age, quality,
// neighbourhood and a smooth spatial trend; noise is larger for "Poor"
// condition homes so a locally weighted interval has something to learn.
std::string make_sales_csv(std::size_t rows, unsigned seed, bool other_market = false) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> normal(0, 1);
  std::uniform_real_distribution<double> unit(0, 1);
  std::ostringstream out;
  if (other_market) {
    out << "listing_id,zipcode,sqft_living,sqft_lot,bathrooms,yr_built,date,condition,waterfront,lat,long,price\n";
  } else {
    out << "Id,Neighborhood,Gr_Liv_Area,Total_Bsmt_SF,Full_Bath,Half_Bath,Year_Built,Year_Sold,Exter_Cond,"
           "Central_Air,Longitude,Latitude,Sale_Price\n";
  }
  const char* const conditions[] = {"Poor", "Fair", "Typical", "Good", "Excellent"};
  for (std::size_t i = 0; i < rows; ++i) {
    const int hood = static_cast<int>(unit(rng) * 12);
    const double lon = -93.6 + 0.01 * hood + 0.01 * unit(rng);
    const double lat = 42.0 + 0.005 * hood + 0.01 * unit(rng);
    const double area = 800 + 1800 * unit(rng);
    const double bsmt = unit(rng) < 0.2 ? 0 : 300 + 900 * unit(rng);
    const int full = 1 + static_cast<int>(unit(rng) * 3), half = static_cast<int>(unit(rng) * 2);
    const int built = 1900 + static_cast<int>(unit(rng) * 110);
    const int sold = 2006 + static_cast<int>(unit(rng) * 5);
    const int cond = static_cast<int>(unit(rng) * 5);
    const bool air = unit(rng) < 0.9;
    const double sd = cond == 0 ? 0.25 : 0.06;
    const double log_price = 11.4 + 0.7 * std::log((area + 0.5 * bsmt) / 1500) + 0.04 * hood + 0.05 * (cond - 2) -
                             0.002 * (sold - built) + 0.05 * air + 2.0 * (lat - 42.03) + sd * normal(rng);
    const double price = std::round(std::exp(log_price));
    if (other_market) {
      out << "L" << i << "," << (50010 + hood * 7) << "," << area << "," << 4000 + 100 * hood << "," << full + 0.5 * half
          << "," << built << "," << sold << "-0" << (1 + i % 9) << "-15," << conditions[cond] << ","
          << (air ? 0 : 1) << "," << lat << "," << lon << "," << price << "\n";
    } else {
      out << i + 1 << "," << kNeighbourhoods[hood] << "," << area << "," << (bsmt == 0 ? "NA" : std::to_string(bsmt))
          << "," << full << "," << half << "," << built << "," << sold << "," << conditions[cond] << ","
          << (air ? "Y" : "N") << "," << lon << "," << lat << "," << price << "\n";
    }
  }
  return out.str();
}

SalesTable parse_or_die(std::string text) {
  auto t = parse_sales_csv(std::move(text), "test.csv");
  EXPECT_TRUE(t.has_value()) << t.status().to_string();
  return std::move(*t);
}

TrainOptions fast_options() {
  TrainOptions o;
  o.time_budget_seconds = 0;  // first candidate only
  o.seed = 3;
  return o;
}

const ColumnSchema* find_column(const Schema& schema, const std::string& name) {
  for (const auto& c : schema.columns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

TEST(SchemaTest, InfersKindsFromOddCsv) {
  const SalesTable table = parse_or_die(
      "parcel_id,\"Zip Code\",Living Area,Heat,Central_Air,Longitude,Latitude,Sold Date,Empty,Notes,Price\n"
      "A1,50010,1500,\"Gas, forced\",Y,-93.6,42.0,2010-05-01,NA,\"say \"\"hi\"\"\",100000\n"
      "A2,50011,NA,Electric,N,-93.7,42.1,2010-06-15,,x,120000\n"
      "A3,50010,1800,Gas,Y,-93.65,42.05,05/20/2011,NA,y,140000\n"
      "A4,50012,,Electric,Y,-93.61,42.02,2011-07-01,NA,z,160000\n");
  const Schema schema = infer_schema(table, 10);
  ASSERT_NE(find_column(schema, "Zip Code"), nullptr);
  EXPECT_EQ(find_column(schema, "Zip Code")->kind, ColumnKind::kCategorical);  // codes, not quantities
  EXPECT_EQ(find_column(schema, "Living Area")->kind, ColumnKind::kNumeric);
  EXPECT_EQ(find_column(schema, "Heat")->kind, ColumnKind::kCategorical);
  EXPECT_EQ(find_column(schema, "Heat")->levels.size(), 3u);  // "Gas, forced", Electric, Gas
  EXPECT_EQ(find_column(schema, "Central_Air")->kind, ColumnKind::kBoolean);
  EXPECT_EQ(find_column(schema, "Longitude")->kind, ColumnKind::kLongitude);
  EXPECT_EQ(find_column(schema, "Latitude")->kind, ColumnKind::kLatitude);
  EXPECT_EQ(find_column(schema, "Sold Date")->kind, ColumnKind::kDate);
  EXPECT_EQ(find_column(schema, "parcel_id"), nullptr);  // identifier
  EXPECT_EQ(find_column(schema, "Empty"), nullptr);      // all missing
  EXPECT_EQ(find_column(schema, "Price"), nullptr);      // the skipped target
  EXPECT_EQ(schema.ignored.size(), 2u);

  const ColumnSchema& area = *find_column(schema, "Living Area");
  EXPECT_EQ(encode_cell(area, "1500"), 1500.0f);
  EXPECT_TRUE(std::isnan(encode_cell(area, "NA")));
  EXPECT_EQ(encode_cell(area, "$1,500"), 1500.0f);
  const ColumnSchema& heat = *find_column(schema, "Heat");
  EXPECT_TRUE(std::isnan(encode_cell(heat, "Solar")));  // unseen level
  EXPECT_EQ(encode_cell(*find_column(schema, "Central_Air"), "N"), 0.0f);
}

TEST(SchemaTest, Helpers) {
  EXPECT_EQ(name_tokens("Year_Remod_Add"), (std::vector<std::string>{"year", "remod", "add"}));
  EXPECT_EQ(name_tokens("SqFtLiving"), (std::vector<std::string>{"sq", "ft", "living"}));
  double y = 0;
  ASSERT_TRUE(parse_date_cell("2014-07-01T00:00:00", &y));
  EXPECT_NEAR(y, 2014.5, 1e-9);
  EXPECT_FALSE(parse_date_cell("2014-13-01", &y));
  EXPECT_FALSE(parse_date_cell("1500", &y));
  EXPECT_TRUE(is_missing_cell(" NA "));
  EXPECT_FALSE(is_missing_cell("None"));  // a level in Ames (no masonry veneer)
  EXPECT_EQ(quality_ordinal("Excellent"), quality_ordinal("Ex"));
  EXPECT_GT(quality_ordinal("Good"), quality_ordinal("Typical"));
  EXPECT_EQ(quality_ordinal("TA"), quality_ordinal("Average"));
  EXPECT_GT(quality_ordinal("Fa"), quality_ordinal("Po"));
  EXPECT_EQ(quality_ordinal("No_Basement"), 0.0f);
  EXPECT_TRUE(std::isnan(quality_ordinal("North_Ames")));
}

TEST(EncodingTest, LevelMeansExcludeTheHeldOutFold) {
  const std::vector<float> codes = {0, 0, 1, 1};
  const std::vector<float> values = {10, 20, 30, 40};
  const std::vector<int> folds = {0, 1, 0, 1};
  const LevelMeans all = level_means(codes, values, 2, folds, -1, 0.0);
  EXPECT_FLOAT_EQ(all.mean[0], 15);
  EXPECT_FLOAT_EQ(all.prior, 25);
  const LevelMeans oof = level_means(codes, values, 2, folds, 0, 0.0);
  EXPECT_FLOAT_EQ(oof.mean[0], 20);  // row 0's own 10 is not used
  EXPECT_FLOAT_EQ(oof.mean[1], 40);
}

// Each neighbourhood has two homes at the same spot. Were a row's own price
// used in its encodings, changing it would change its own features.
TEST(EncodingTest, TrainingFeaturesNeverSeeTheRowsOwnPrice) {
  const std::size_t n = 200;
  Schema schema;
  schema.columns.push_back({"Neighborhood", ColumnKind::kCategorical, {}, {}});
  for (int l = 0; l < 100; ++l) {
    std::string level = std::to_string(l);
    level.insert(level.begin(), 'n');
    schema.columns[0].levels.push_back(level);
  }
  schema.columns.push_back({"Living_Area", ColumnKind::kNumeric, {}, {}});
  schema.columns.push_back({"Longitude", ColumnKind::kLongitude, {}, {}});
  schema.columns.push_back({"Latitude", ColumnKind::kLatitude, {}, {}});
  RawMatrix raw{n, 4, std::vector<float>(n * 4)};
  std::vector<float> log_price(n);
  for (std::size_t i = 0; i < n; ++i) {
    const float level = static_cast<float>(i / 2);
    raw.values[i * 4 + 0] = level;
    raw.values[i * 4 + 1] = 1000 + 10 * static_cast<float>(i);
    raw.values[i * 4 + 2] = -93.0f + 0.01f * level;
    raw.values[i * 4 + 3] = 42.0f;
    log_price[i] = 12.0f + 0.01f * static_cast<float>(i % 7);
  }
  const auto folds = assign_folds(n, 5, 1);
  std::vector<float> before, after;
  const FeaturePlan plan = FeaturePlan::fit(schema, raw, log_price, folds, &before);
  const std::size_t row = 17;
  log_price[row] += 3.0f;  // a wildly different own price
  FeaturePlan::fit(schema, raw, log_price, folds, &after);
  const std::size_t w = plan.num_features();
  int checked = 0;
  for (std::size_t k = 0; k < w; ++k) {
    const std::string& name = plan.names()[k];
    if (name.rfind("te_", 0) != 0 && name.rfind("knn", 0) != 0 && name.rfind("comparable", 0) != 0) continue;
    ++checked;
    const float b = before[row * w + k], a = after[row * w + k];
    EXPECT_TRUE(a == b || (std::isnan(a) && std::isnan(b))) << name << ": " << b << " -> " << a;
  }
  EXPECT_EQ(checked, 7);  // te, te per area, knn8, knn25, knn distance, knn per area, comparables
  // The same change does move its twin's encodings when the twin is in another fold.
  const std::size_t twin = row ^ 1;
  if (folds[twin] != folds[row]) {
    EXPECT_NE(before[twin * w + w - 1], after[twin * w + w - 1]);
  }
}

// Spatial residual features of a training row come from points outside its
// fold and from the hedonic model fitted without its fold: its own residual
// (which carries its own price) must not move them.
TEST(EncodingTest, SpatialResidualFeaturesAreOutOfFold) {
  const std::size_t n = 120;
  Schema schema;
  schema.columns.push_back({"Living_Area", ColumnKind::kNumeric, {}, {}});
  schema.columns.push_back({"Longitude", ColumnKind::kLongitude, {}, {}});
  schema.columns.push_back({"Latitude", ColumnKind::kLatitude, {}, {}});
  RawMatrix raw{n, 3, std::vector<float>(n * 3)};
  std::vector<float> log_price(n);
  for (std::size_t i = 0; i < n; ++i) {
    raw.values[i * 3 + 0] = 1000 + 10 * static_cast<float>(i % 13);
    raw.values[i * 3 + 1] = -93.0f + 0.001f * static_cast<float>(i % 11);
    raw.values[i * 3 + 2] = 42.0f + 0.001f * static_cast<float>(i / 11);
    log_price[i] = 12.0f;
  }
  const auto folds = assign_folds(n, 4, 5);
  std::vector<float> x;
  FeaturePlan plan = FeaturePlan::fit(schema, raw, log_price, folds, &x);
  std::vector<float> full(n);
  std::vector<std::vector<float>> by_fold(4, std::vector<float>(n));
  for (std::size_t i = 0; i < n; ++i) {
    full[i] = 0.01f * static_cast<float>(i % 5);
    for (int f = 0; f < 4; ++f) by_fold[f][i] = full[i] + 0.001f * static_cast<float>(f);
  }
  plan.set_hedonic_residuals(full, by_fold);
  ASSERT_EQ(plan.num_residual_features(), kResidualFeatures);
  const auto before = plan.training_residual_features(raw, folds);
  const std::size_t row = 42;
  full[row] += 5.0f;
  for (auto& fitted : by_fold) fitted[row] += 5.0f;
  plan.set_hedonic_residuals(full, by_fold);
  const auto after = plan.training_residual_features(raw, folds);
  for (std::size_t k = 0; k < kResidualFeatures; ++k) {
    EXPECT_FLOAT_EQ(before[row * kResidualFeatures + k], after[row * kResidualFeatures + k]) << k;
    EXPECT_FALSE(std::isnan(before[row * kResidualFeatures + k])) << k;
  }
  // The residual only enters rows of other folds that have it as a neighbour.
  bool moved = false;
  for (std::size_t i = 0; i < n; ++i) {
    if (folds[i] == folds[row]) {
      for (std::size_t k = 0; k < kResidualFeatures; ++k) {
        EXPECT_FLOAT_EQ(before[i * kResidualFeatures + k], after[i * kResidualFeatures + k]);
      }
    } else {
      moved = moved || before[i * kResidualFeatures] != after[i * kResidualFeatures];
    }
  }
  EXPECT_TRUE(moved);
}

TEST(EncodingTest, DerivedFeaturesFollowColumnNames) {
  const SalesTable ames_like = parse_or_die(make_sales_csv(60, 1));
  auto model = ValuationModel::train(ames_like, "Sale_Price", fast_options());
  ASSERT_TRUE(model.has_value()) << model.status().to_string();
  const std::string schema = model->describe_schema();
  EXPECT_NE(schema.find("Exter_Cond: categorical"), std::string::npos);
  EXPECT_NE(schema.find("Id (identifier): ignored"), std::string::npos);
}

TEST(ValuationTest, ConformalCoverageOnHeldOutDataIsNearNominal) {
  const SalesTable train = parse_or_die(make_sales_csv(1200, 11));
  const SalesTable test = parse_or_die(make_sales_csv(1000, 12));
  TrainSummary summary;
  auto model = ValuationModel::train(train, "Sale_Price", fast_options(), &summary);
  ASSERT_TRUE(model.has_value()) << model.status().to_string();
  EXPECT_EQ(summary.rows, 1200u);
  EXPECT_GT(summary.features, summary.columns);  // expert features were added
  auto values = model->predict(test);
  ASSERT_TRUE(values.has_value()) << values.status().to_string();
  const std::size_t price_col = 12;
  double in80 = 0, in90 = 0, log_err = 0, width_poor = 0, width_good = 0, n_poor = 0, n_good = 0;
  for (std::size_t i = 0; i < test.rows.size(); ++i) {
    const double price = std::stod(test.rows[i][price_col]);
    const Valuation& v = (*values)[i];
    ASSERT_LE(v.lower90, v.lower80);
    ASSERT_LE(v.lower80, v.predicted);
    ASSERT_LE(v.predicted, v.upper80);
    ASSERT_LE(v.upper80, v.upper90);
    in80 += price >= v.lower80 && price <= v.upper80;
    in90 += price >= v.lower90 && price <= v.upper90;
    log_err += std::pow(std::log(v.predicted / price), 2);
    const double width = (v.upper80 - v.lower80) / v.predicted;
    if (test.rows[i][8] == "Poor") {
      width_poor += width, ++n_poor;
    } else {
      width_good += width, ++n_good;
    }
  }
  const double n = static_cast<double>(test.rows.size());
  EXPECT_NEAR(in80 / n, 0.80, 0.05);
  EXPECT_NEAR(in90 / n, 0.90, 0.04);
  EXPECT_LT(std::sqrt(log_err / n), 0.16);
  // Locally weighted: the noisy homes get wider intervals.
  EXPECT_GT(width_poor / n_poor, 1.5 * width_good / n_good);
}

TEST(ValuationTest, PredictHandlesMissingExtraAndUnseenColumns) {
  const SalesTable train = parse_or_die(make_sales_csv(300, 5));
  auto model = ValuationModel::train(train, "Sale_Price", fast_options());
  ASSERT_TRUE(model.has_value()) << model.status().to_string();
  // Reordered, target absent, an extra column, Central_Air missing, an unseen neighbourhood.
  const SalesTable listings = parse_or_die(
      "Latitude,Longitude,Neighborhood,Gr_Liv_Area,Total_Bsmt_SF,Full_Bath,Half_Bath,Year_Built,Year_Sold,"
      "Exter_Cond,Listing_Agent\n"
      "42.03,-93.55,Northridge,1500,800,2,1,1990,2010,Good,Smith\n"
      "42.03,-93.55,Atlantis,1500,800,2,1,1990,2010,Good,Jones\n"
      "42.03,-93.55,Northridge,NA,NA,NA,NA,NA,NA,NA,Jones\n");
  auto values = model->predict(listings);
  ASSERT_TRUE(values.has_value()) << values.status().to_string();
  ASSERT_EQ(values->size(), 3u);
  for (const auto& v : *values) {
    EXPECT_TRUE(std::isfinite(v.predicted) && v.predicted > 10000 && v.predicted < 2e6) << v.predicted;
    EXPECT_LT(v.lower90, v.upper90);
  }
  // With its target present, predict ignores it: same values as without.
  auto with_target = model->predict(train);
  ASSERT_TRUE(with_target.has_value());
  SalesTable without = train;
  for (auto& row : without.rows) row[12] = "NA";
  auto again = model->predict(without);
  ASSERT_TRUE(again.has_value());
  EXPECT_DOUBLE_EQ((*with_target)[7].predicted, (*again)[7].predicted);

  // Too little of the schema: a clear error.
  const SalesTable sparse = parse_or_die("Half_Bath,Listing_Agent\n1,Smith\n");
  auto rejected = model->predict(sparse);
  ASSERT_FALSE(rejected.has_value());
  EXPECT_EQ(rejected.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(rejected.status().message().find("too little of the model's schema"), std::string::npos);
  // ... naming what is missing, the most important first: all but Half_Bath
  // of the 11 input columns (Id is ignored, Sale_Price the target).
  const std::string message = rejected.status().message();
  const auto missing = model->missing_columns(sparse.header);
  ASSERT_EQ(missing.size(), 10u);
  EXPECT_EQ(std::count(missing.begin(), missing.end(), "Half_Bath"), 0);
  EXPECT_EQ(std::count(missing.begin(), missing.end(), "Gr_Liv_Area"), 1);
  EXPECT_NE(message.find("; missing, most important first: " + missing[0] + ", " + missing[1] + ", "), std::string::npos)
      << message;
  EXPECT_EQ(message.substr(message.size() - 12), "(10 missing)") << message;
  EXPECT_EQ(missing[0], "Gr_Liv_Area");  // living area carries the most of the price
  EXPECT_TRUE(model->missing_columns(train.header).empty());
}

TEST(ValuationTest, MissingColumnsAreNamedTenAtMostWithTheCount) {
  std::vector<std::string> twelve;
  for (char c = 'a'; c < 'a' + 12; ++c) twelve.push_back(std::string(1, c));
  EXPECT_EQ(name_missing_columns(twelve), "a, b, c, d, e, f, g, h, i, j, ... (12 missing, the first 10 named)");
  EXPECT_EQ(name_missing_columns({"Gr_Liv_Area", "Year_Built"}), "Gr_Liv_Area, Year_Built (2 missing)");
  EXPECT_EQ(name_missing_columns({}), "");
}

TEST(ValuationTest, SaveAndLoadReproducePredictions) {
  const SalesTable train = parse_or_die(make_sales_csv(200, 8));
  auto model = ValuationModel::train(train, "Sale_Price", fast_options());
  ASSERT_TRUE(model.has_value()) << model.status().to_string();
  const std::string dir = (std::filesystem::temp_directory_path() / ("avm_test_" + std::to_string(::getpid()))).string();
  ASSERT_TRUE(model->save(dir).is_ok());
  auto loaded = ValuationModel::load(dir);
  ASSERT_TRUE(loaded.has_value()) << loaded.status().to_string();
  EXPECT_EQ(loaded->target(), "Sale_Price");
  auto a = model->predict(train);
  auto b = loaded->predict(train);
  ASSERT_TRUE(a.has_value() && b.has_value());
  for (std::size_t i = 0; i < a->size(); ++i) {
    EXPECT_NEAR((*a)[i].predicted, (*b)[i].predicted, 1e-6 * (*a)[i].predicted);
    EXPECT_NEAR((*a)[i].upper90, (*b)[i].upper90, 1e-6 * (*a)[i].upper90);
  }
  std::filesystem::remove_all(dir);
  EXPECT_EQ(ValuationModel::load(dir).status().code(), StatusCode::kNotFound);
}

// A column of the training file the schema left out (an identifier, a sale
// year constant because every sale is of one year) is not a misspelling:
// ignored_columns() names it with the target, unknown_columns() only names
// what was never a training column; both survive save and load. A model
// saved before the left-out columns were kept still calls them unknown.
TEST(ValuationTest, LeftOutTrainingColumnsAreIgnoredNotUnknown) {
  SalesTable train = parse_or_die(make_sales_csv(200, 8));
  for (auto& row : train.rows) row[7] = "2009";  // Year_Sold: constant
  auto model = ValuationModel::train(train, "Sale_Price", fast_options());
  ASSERT_TRUE(model.has_value()) << model.status().to_string();
  const std::vector<std::string> header = {"Id", "Gr_Liv_Area", "Year_Sold", "Gr_Liv_Areaa", "Sale_Price"};
  const std::vector<std::string> ignored = {"Id", "Year_Sold", "Sale_Price"};
  const std::vector<std::string> unknown = {"Gr_Liv_Areaa"};
  EXPECT_EQ(model->ignored_columns(header), ignored);
  EXPECT_EQ(model->unknown_columns(header), unknown);

  // drop_ignored_columns() takes them out of a table; they change no value.
  SalesTable without = train;
  EXPECT_EQ(drop_ignored_columns(*model, &without), ignored);
  ASSERT_EQ(without.header.size(), train.header.size() - 3);
  EXPECT_EQ(without.header.front(), "Neighborhood");
  EXPECT_EQ(without.header[6], "Exter_Cond");
  EXPECT_EQ(without.rows[3].size(), without.header.size());
  EXPECT_EQ(without.rows[3][6], train.rows[3][8]);
  SalesTable listing = parse_or_die("Gr_Liv_Area,Year_Sold,Neighborhood,Id\n1500,2026,OldTown,7\n");
  EXPECT_EQ(drop_ignored_columns(*model, &listing), (std::vector<std::string>{"Year_Sold", "Id"}));
  EXPECT_EQ(listing.header, (std::vector<std::string>{"Gr_Liv_Area", "Neighborhood"}));
  EXPECT_EQ(listing.rows[0], (std::vector<std::string>{"1500", "OldTown"}));
  auto with_all = model->predict(train);
  auto with_fewer = model->predict(without);
  ASSERT_TRUE(with_all.has_value() && with_fewer.has_value());
  EXPECT_EQ((*with_all)[3].predicted, (*with_fewer)[3].predicted);

  const std::string dir = (std::filesystem::temp_directory_path() / ("avm_ignored_" + std::to_string(::getpid()))).string();
  ASSERT_TRUE(model->save(dir).is_ok());
  auto loaded = ValuationModel::load(dir);
  ASSERT_TRUE(loaded.has_value()) << loaded.status().to_string();
  EXPECT_EQ(loaded->ignored_columns(header), ignored);
  EXPECT_EQ(loaded->unknown_columns(header), unknown);
  EXPECT_NE(loaded->describe_schema().find("Year_Sold: ignored"), std::string::npos);

  std::ifstream in(dir + "/model.json");
  std::stringstream text;
  text << in.rdbuf();
  boost::json::object root = boost::json::parse(text.str()).as_object();
  EXPECT_EQ(boost::json::serialize(root["ignored_columns"]), R"(["Id","Year_Sold"])");
  root.erase("ignored_columns");
  std::ofstream(dir + "/model.json", std::ios::trunc) << boost::json::serialize(root);
  auto before = ValuationModel::load(dir);
  ASSERT_TRUE(before.has_value()) << before.status().to_string();
  EXPECT_EQ(before->ignored_columns(header), std::vector<std::string>{"Sale_Price"});
  EXPECT_EQ(before->unknown_columns(header), (std::vector<std::string>{"Id", "Year_Sold", "Gr_Liv_Areaa"}));
  auto before_values = before->predict(train);
  ASSERT_TRUE(before_values.has_value());
  EXPECT_NEAR((*before_values)[3].predicted, (*with_all)[3].predicted, 1e-6 * (*with_all)[3].predicted);

  root["ignored_columns"] = boost::json::array{"Id", 7};
  std::ofstream(dir + "/model.json", std::ios::trunc) << boost::json::serialize(root);
  auto bad = ValuationModel::load(dir);
  std::filesystem::remove_all(dir);
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("bad ignored_columns"), std::string::npos) << bad.status().to_string();
}

// A model directory holding no model, a broken file or another kind's model
// is refused with a message that says which.
TEST(ValuationTest, LoadNamesAMissingBrokenOrForeignModel) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("avm_envelope_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto missing = ValuationModel::load(dir.string());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("no valuation model in " + dir.string()), std::string::npos);
  const std::pair<std::string, std::string> cases[] = {
      {"{not json", "model.json does not parse"},
      {"[1, 2]", "model.json does not parse"},
      {R"({"format":"reai-match-1"})", "model.json is not a reai-avm-2 model"},
      {R"({"target":"Sale_Price"})", "model.json is not a reai-avm-2 model"},
  };
  for (const auto& [text, needle] : cases) {
    std::ofstream(dir / "model.json") << text;
    auto loaded = ValuationModel::load(dir.string());
    EXPECT_EQ(loaded.status().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_NE(loaded.status().message().find(needle), std::string::npos) << loaded.status().to_string();
  }
  std::filesystem::remove_all(dir);
}

// The smallest and largest value of column `col` in `table`'s rows.
std::pair<double, double> column_range(const SalesTable& table, std::size_t col) {
  double low = 1e300, high = -1e300;
  for (const auto& row : table.rows) {
    if (row[col] == "NA") continue;
    low = std::min(low, std::stod(row[col])), high = std::max(high, std::stod(row[col]));
  }
  return {low, high};
}

// Rewrites DIR/model.json as a reai-avm-1 model wrote it: that format and
// no column ranges.
void downgrade_to_format_1(const std::string& dir) {
  std::ifstream in(dir + "/model.json");
  std::stringstream text;
  text << in.rdbuf();
  boost::json::object root = boost::json::parse(text.str()).as_object();
  root["format"] = "reai-avm-1";
  root.erase("ignored_columns");
  for (auto& column : root["columns"].as_array()) column.as_object().erase("min"), column.as_object().erase("max");
  std::ofstream(dir + "/model.json") << boost::json::serialize(root);
}

// Trees value a home beyond the training range like the nearest one seen:
// the model keeps each number column's range, counts the attributes outside
// it per valued row and names them; a negative value in a column never
// negative in training is refused as a sign error.
TEST(ValuationTest, TrainingRangesFlagExtrapolationAndRefuseNegatives) {
  const SalesTable train = parse_or_die(make_sales_csv(300, 5));
  auto model = ValuationModel::train(train, "Sale_Price", fast_options());
  ASSERT_TRUE(model.has_value()) << model.status().to_string();
  ASSERT_TRUE(model->has_training_ranges());
  const auto [area_min, area_max] = column_range(train, 2);  // Gr_Liv_Area
  const auto [lon_min, lon_max] = column_range(train, 10);   // Longitude, always negative
  ASSERT_GT(area_min, 0);
  ASSERT_LT(lon_max, 0);
  const std::string header =
      "Neighborhood,Gr_Liv_Area,Total_Bsmt_SF,Full_Bath,Half_Bath,Year_Built,Year_Sold,Exter_Cond,Central_Air,"
      "Longitude,Latitude\n";
  const SalesTable listings = parse_or_die(header +
                                           "Gilbert,1500,800,2,1,1990,2008,Good,Y,-93.55,42.03\n"
                                           "Gilbert,40000,800,2,1,1990,2008,Good,Y,-93.55,42.03\n"
                                           "Gilbert,1e9,800,2,1,1990,2008,Good,Y,-80.5,42.03\n"
                                           "Gilbert,-500,800,2,1,1990,2008,Good,Y,-93.55,42.03\n"
                                           "Gilbert,NA,800,2,1,1990,2008,Good,Y,-93.55,42.03\n");
  auto values = model->predict(listings);
  ASSERT_TRUE(values.has_value()) << values.status().to_string();
  const int expected_counts[] = {0, 1, 2, 1, 0};
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ((*values)[i].outside_range, expected_counts[i]) << "row " << i;
  EXPECT_TRUE(model->outside_training_range(listings, 0).empty());
  EXPECT_TRUE(model->outside_training_range(listings, 4).empty());  // missing is not out of range
  const auto big = model->outside_training_range(listings, 1);
  ASSERT_EQ(big.size(), 1u);
  EXPECT_EQ(big[0].attribute, "Gr_Liv_Area");
  EXPECT_EQ(big[0].value, 40000);
  EXPECT_EQ(big[0].min, area_min);
  EXPECT_EQ(big[0].max, area_max);
  const auto far = model->outside_training_range(listings, 2);  // schema order: area, then longitude
  ASSERT_EQ(far.size(), 2u);
  EXPECT_EQ(far[0].value, 1e9);
  EXPECT_EQ(far[1].attribute, "Longitude");
  EXPECT_EQ(far[1].value, -80.5);
  EXPECT_EQ(far[1].max, lon_max);
  // The training rows themselves are never outside.
  auto on_train = model->predict(train);
  ASSERT_TRUE(on_train.has_value());
  for (const auto& v : *on_train) ASSERT_EQ(v.outside_range, 0);

  // A negative area is a sign error (every sale had it >= 0); a negative
  // longitude is where the market is.
  const Status negative = model->check_cells(listings);
  EXPECT_EQ(negative.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(negative.message().find("attribute 'Gr_Liv_Area' must not be negative: every training sale had it ≥ 0"),
            std::string::npos)
      << negative.message();
  SalesTable without_negative = listings;
  without_negative.rows.erase(without_negative.rows.begin() + 3);
  EXPECT_TRUE(model->check_cells(without_negative).is_ok());

  // Saved as reai-avm-2 with the ranges; a reai-avm-1 file still loads and
  // values the same, without range checks.
  const std::string dir = (std::filesystem::temp_directory_path() / ("avm_ranges_" + std::to_string(::getpid()))).string();
  ASSERT_TRUE(model->save(dir).is_ok());
  auto loaded = ValuationModel::load(dir);
  ASSERT_TRUE(loaded.has_value()) << loaded.status().to_string();
  auto reloaded = loaded->predict(listings);
  ASSERT_TRUE(reloaded.has_value());
  for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ((*reloaded)[i].outside_range, expected_counts[i]);
  EXPECT_EQ(loaded->outside_training_range(listings, 1).at(0).max, area_max);
  downgrade_to_format_1(dir);
  auto old = ValuationModel::load(dir);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(old.has_value()) << old.status().to_string();
  EXPECT_FALSE(old->has_training_ranges());
  auto old_values = old->predict(listings);
  ASSERT_TRUE(old_values.has_value());
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ((*old_values)[i].outside_range, 0);
    EXPECT_NEAR((*old_values)[i].predicted, (*values)[i].predicted, 1e-6 * (*values)[i].predicted);
  }
  EXPECT_TRUE(old->outside_training_range(listings, 1).empty());
  EXPECT_TRUE(old->check_cells(listings).is_ok());
}

// A category no training sale had is valued as missing, like before, but
// counted per row and named (with the training level it differs from only
// in case, a likely typo), so a user learns 'Waterfront' was not valued as
// such. Missing cells and columns are not unseen categories.
TEST(ValuationTest, UnseenCategoriesAreCountedAndNamed) {
  const SalesTable train = parse_or_die(make_sales_csv(200, 7));
  auto model = ValuationModel::train(train, "Sale_Price", fast_options());
  ASSERT_TRUE(model.has_value()) << model.status().to_string();
  const std::string header =
      "Neighborhood,Gr_Liv_Area,Total_Bsmt_SF,Full_Bath,Half_Bath,Year_Built,Year_Sold,Exter_Cond,"
      "Central_Air,Longitude,Latitude\n";
  const std::string hood = train.rows[0][1];
  std::string lower_hood = hood;
  for (char& c : lower_hood) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  ASSERT_NE(lower_hood, hood);
  const SalesTable listings = parse_or_die(header +
                                           hood + ",1500,800,2,1,1990,2010,Good,Y,-93.55,42.03\n" +
                                           "Atlantis,1500,800,2,1,1990,2010, Needs work ,Y,-93.55,42.03\n" +
                                           lower_hood + ",1500,800,2,1,1990,2010,NA,Y,-93.55,42.03\n" +
                                           ",1500,800,2,1,1990,2010,Good,Y,-93.55,42.03\n");
  auto values = model->predict(listings);
  ASSERT_TRUE(values.has_value()) << values.status().to_string();
  EXPECT_EQ((*values)[0].unseen_categories, 0);
  EXPECT_EQ((*values)[1].unseen_categories, 2);
  EXPECT_EQ((*values)[2].unseen_categories, 1);
  EXPECT_EQ((*values)[3].unseen_categories, 0);
  EXPECT_TRUE(model->unseen_categories(listings, 0).empty());
  const auto two = model->unseen_categories(listings, 1);
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[0].attribute, "Neighborhood");
  EXPECT_EQ(two[0].value, "Atlantis");
  EXPECT_EQ(two[0].differs_in_case_from, "");
  EXPECT_EQ(two[1].attribute, "Exter_Cond");
  EXPECT_EQ(two[1].value, "Needs work");
  const auto typo = model->unseen_categories(listings, 2);
  ASSERT_EQ(typo.size(), 1u);
  EXPECT_EQ(typo[0].value, lower_hood);
  EXPECT_EQ(typo[0].differs_in_case_from, hood);
  // Valued as if the cell were missing: the same value as an empty cell.
  SalesTable as_missing = listings;
  as_missing.rows[1][0] = "";
  as_missing.rows[1][7] = "";
  auto missing_values = model->predict(as_missing);
  ASSERT_TRUE(missing_values.has_value());
  EXPECT_DOUBLE_EQ((*missing_values)[1].predicted, (*values)[1].predicted);
  EXPECT_EQ((*missing_values)[1].unseen_categories, 0);
}

// `table` with a Mo_Sold column appended: month 1 + (row % 7), so the
// latest month of any year is at most July.
SalesTable with_month_sold(SalesTable table) {
  table.header.push_back("Mo_Sold");
  for (std::size_t i = 0; i < table.rows.size(); ++i) table.rows[i].push_back(std::to_string(1 + i % 7));
  return table;
}

// A valuation is always later than its training sales: the sale year is
// never "outside the training range" (a 2026 listing against 2006-2010
// sales), and the model says instead what market it reflects: the latest
// sale's year and month (Year_Sold, Mo_Sold). Predictions do not change.
TEST(ValuationTest, SaleYearIsNeverOutsideAndTheModelSaysItsMarket) {
  const SalesTable train = with_month_sold(parse_or_die(make_sales_csv(300, 5)));
  int latest_month = 0;  // of the 2010 sales
  for (const auto& row : train.rows) {
    if (row[7] == "2010") latest_month = std::max(latest_month, std::stoi(row.back()));
  }
  ASSERT_GT(latest_month, 0);
  auto model = ValuationModel::train(train, "Sale_Price", fast_options());
  ASSERT_TRUE(model.has_value()) << model.status().to_string();
  EXPECT_EQ(model->market_as_of(), "2010-0" + std::to_string(latest_month));
  const std::string header =
      "Neighborhood,Gr_Liv_Area,Total_Bsmt_SF,Full_Bath,Half_Bath,Year_Built,Year_Sold,Mo_Sold,Exter_Cond,"
      "Central_Air,Longitude,Latitude\n";
  const SalesTable listings = parse_or_die(header +
                                           "Gilbert,1500,800,2,1,1990,2026,3,Good,Y,-93.55,42.03\n"
                                           "Gilbert,40000,800,2,1,1990,2026,3,Good,Y,-93.55,42.03\n"
                                           "Gilbert,1500,800,2,1,1990,1950,3,Good,Y,-93.55,42.03\n");
  auto values = model->predict(listings);
  ASSERT_TRUE(values.has_value()) << values.status().to_string();
  EXPECT_EQ((*values)[0].outside_range, 0);
  EXPECT_EQ((*values)[1].outside_range, 1);
  EXPECT_EQ((*values)[2].outside_range, 0);
  EXPECT_TRUE(model->outside_training_range(listings, 0).empty());
  ASSERT_EQ(model->outside_training_range(listings, 1).size(), 1u);
  EXPECT_EQ(model->outside_training_range(listings, 1)[0].attribute, "Gr_Liv_Area");
  // The sign check stays: a negative sale year is still a sign error.
  SalesTable negative = listings;
  negative.rows[0][6] = "-2026";
  EXPECT_NE(model->check_cells(negative).message().find("attribute 'Year_Sold' must not be negative"),
            std::string::npos);

  // Saved and loaded with the model; a model saved before market_as_of was
  // kept loads with it unknown and values the same.
  const std::string dir = (std::filesystem::temp_directory_path() / ("avm_market_" + std::to_string(::getpid()))).string();
  ASSERT_TRUE(model->save(dir).is_ok());
  auto loaded = ValuationModel::load(dir);
  ASSERT_TRUE(loaded.has_value()) << loaded.status().to_string();
  EXPECT_EQ(loaded->market_as_of(), model->market_as_of());
  auto reloaded = loaded->predict(listings);
  ASSERT_TRUE(reloaded.has_value());
  EXPECT_EQ((*reloaded)[0].outside_range, 0);
  {
    std::ifstream in(dir + "/model.json");
    std::stringstream text;
    text << in.rdbuf();
    boost::json::object root = boost::json::parse(text.str()).as_object();
    ASSERT_TRUE(root.contains("market_as_of"));
    root.erase("market_as_of");
    std::ofstream(dir + "/model.json") << boost::json::serialize(root);
  }
  auto old = ValuationModel::load(dir);
  ASSERT_TRUE(old.has_value()) << old.status().to_string();
  EXPECT_EQ(old->market_as_of(), "");
  auto old_values = old->predict(listings);
  ASSERT_TRUE(old_values.has_value());
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ((*old_values)[i].predicted, (*values)[i].predicted);
    EXPECT_EQ((*old_values)[i].outside_range, (*values)[i].outside_range);
  }
  downgrade_to_format_1(dir);
  auto format_1 = ValuationModel::load(dir);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(format_1.has_value()) << format_1.status().to_string();
  EXPECT_EQ(format_1->market_as_of(), "");

  // A sale year alone gives the year.
  auto no_month = ValuationModel::train(parse_or_die(make_sales_csv(300, 5)), "Sale_Price", fast_options());
  ASSERT_TRUE(no_month.has_value());
  EXPECT_EQ(no_month->market_as_of(), "2010");
  // Every sale of one year: the schema leaves the constant Year_Sold out,
  // yet it still dates the sales.
  SalesTable one_year = train;
  for (auto& row : one_year.rows) row[7] = "2009";
  auto constant = ValuationModel::train(one_year, "Sale_Price", fast_options());
  ASSERT_TRUE(constant.has_value());
  EXPECT_NE(constant->describe_schema().find("Year_Sold (constant): ignored"), std::string::npos);
  EXPECT_EQ(constant->market_as_of(), "2009-07");
}

TEST(ValuationTest, WorksOnAnotherMarketsColumns) {
  const SalesTable train = parse_or_die(make_sales_csv(600, 21, /*other_market=*/true));
  const SalesTable test = parse_or_die(make_sales_csv(300, 22, true));
  auto model = ValuationModel::train(train, "price", fast_options());
  ASSERT_TRUE(model.has_value()) << model.status().to_string();
  const std::string schema = model->describe_schema();
  EXPECT_NE(schema.find("zipcode: categorical"), std::string::npos);
  EXPECT_NE(schema.find("date: date"), std::string::npos);
  EXPECT_NE(schema.find("long: longitude"), std::string::npos);
  EXPECT_NE(schema.find("condition: categorical"), std::string::npos);
  EXPECT_NE(schema.find("listing_id (identifier): ignored"), std::string::npos);
  // A sale date column: the market is its latest date.
  std::string latest;
  for (const auto& row : train.rows) latest = std::max(latest, row[6]);
  EXPECT_EQ(model->market_as_of(), latest);
  auto values = model->predict(test);
  ASSERT_TRUE(values.has_value()) << values.status().to_string();
  double ape = 0;
  for (std::size_t i = 0; i < test.rows.size(); ++i) {
    const double price = std::stod(test.rows[i][11]);
    ape += std::fabs((*values)[i].predicted - price) / price;
  }
  EXPECT_LT(ape / static_cast<double>(test.rows.size()), 0.15);
}

// tests/fixtures/other_market/sales.csv: a synthetic file shaped like
// another market's sales export (zipcode, sqft_living, yr_built, lat/long,
// compact dates, an empty lot cell), none of Ames's column names.
TEST(ValuationTest, OtherMarketFixtureTrainsPredictsAndCrossValidates) {
  auto table = read_sales_csv("tests/fixtures/other_market/sales.csv");
  ASSERT_TRUE(table.has_value()) << table.status().to_string();
  TrainSummary summary;
  auto model = ValuationModel::train(*table, "price", fast_options(), &summary);
  ASSERT_TRUE(model.has_value()) << model.status().to_string();
  const std::string schema = model->describe_schema();
  EXPECT_NE(schema.find("zipcode: categorical"), std::string::npos) << schema;
  EXPECT_NE(schema.find("lat: latitude"), std::string::npos) << schema;
  EXPECT_NE(schema.find("long: longitude"), std::string::npos) << schema;
  EXPECT_NE(schema.find("sqft_living: numeric"), std::string::npos) << schema;
  EXPECT_LT(summary.oof_rmsle, 0.25);
  const std::string dir =
      (std::filesystem::temp_directory_path() / ("avm_other_" + std::to_string(::getpid()))).string();
  ASSERT_TRUE(model->save(dir).is_ok());
  auto loaded = ValuationModel::load(dir);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(loaded.has_value()) << loaded.status().to_string();
  auto a = model->predict(*table);
  auto b = loaded->predict(*table);
  ASSERT_TRUE(a.has_value() && b.has_value());
  ASSERT_EQ(a->size(), table->rows.size());
  for (std::size_t i = 0; i < a->size(); ++i) {
    EXPECT_NEAR((*a)[i].predicted, (*b)[i].predicted, 1e-6 * (*a)[i].predicted);
    EXPECT_LT((*a)[i].lower80, (*a)[i].predicted);
    EXPECT_GT((*a)[i].upper90, (*a)[i].upper80);
  }
  // Ranges come from the columns' types, not their names.
  for (std::size_t i = 0; i < a->size(); ++i) ASSERT_EQ((*a)[i].outside_range, 0);
  SalesTable huge = *table;
  huge.rows.resize(1);
  const std::size_t living = static_cast<std::size_t>(
      std::find(huge.header.begin(), huge.header.end(), "sqft_living") - huge.header.begin());
  huge.rows[0][living] = "40000";
  auto huge_value = loaded->predict(huge);
  ASSERT_TRUE(huge_value.has_value());
  EXPECT_EQ(huge_value->at(0).outside_range, 1);
  const auto outside = loaded->outside_training_range(huge, 0);
  ASSERT_EQ(outside.size(), 1u);
  EXPECT_EQ(outside[0].attribute, "sqft_living");
  EXPECT_EQ(outside[0].value, 40000);
  EXPECT_LT(outside[0].max, 40000);
  huge.rows[0][living] = "-40000";
  EXPECT_NE(loaded->check_cells(huge).message().find("attribute 'sqft_living' must not be negative"), std::string::npos);
  auto report = cross_validate(*table, "price", 3, 2, fast_options());
  ASSERT_TRUE(report.has_value()) << report.status().to_string();
  EXPECT_LT(report->rmsle, 0.25);
  EXPECT_GT(report->coverage80, 0.65);
  EXPECT_LT(report->coverage80, 0.95);
  EXPECT_GT(report->coverage90, report->coverage80);
}

TEST(ValuationTest, BadInputIsRejectedWithAClearMessage) {
  const SalesTable train = parse_or_die(make_sales_csv(50, 2));
  auto missing_col = ValuationModel::train(train, "Price", fast_options());
  ASSERT_FALSE(missing_col.has_value());
  EXPECT_EQ(missing_col.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(missing_col.status().message().find("no target column 'Price'"), std::string::npos);

  SalesTable bad = train;
  bad.rows[3][12] = "cheap";
  auto unparsable = ValuationModel::train(bad, "Sale_Price", fast_options());
  ASSERT_FALSE(unparsable.has_value());
  EXPECT_NE(unparsable.status().message().find("line 5"), std::string::npos) << unparsable.status().message();
  EXPECT_NE(unparsable.status().message().find("'cheap'"), std::string::npos);

  SalesTable few = train;
  few.rows.resize(10);
  EXPECT_EQ(ValuationModel::train(few, "Sale_Price", fast_options()).status().code(), StatusCode::kInvalidArgument);

  EXPECT_EQ(parse_sales_csv("a,b,price\n", "empty.csv").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(parse_sales_csv("", "blank.csv").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(read_sales_csv("/nonexistent/sales.csv").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(cross_validate(train, "Sale_Price", 1, 1, fast_options()).status().code(), StatusCode::kInvalidArgument);
}

TEST(ValuationTest, CrossValidateReportsMetrics) {
  const SalesTable sales = parse_or_die(make_sales_csv(300, 4));
  auto report = cross_validate(sales, "Sale_Price", 3, 1, fast_options());
  ASSERT_TRUE(report.has_value()) << report.status().to_string();
  EXPECT_EQ(report->rows, 300u);
  EXPECT_GT(report->ppe10, 0.3);
  EXPECT_LT(report->rmsle, 0.2);
  EXPECT_GT(report->coverage80, 0.65);
  EXPECT_LT(report->width80, report->width90);
  EXPECT_GT(report->median_ape, 0.0);
  EXPECT_LT(report->median_ape, report->mape);
  // Per-row values, in file order, reproduce the summary metrics.
  ASSERT_EQ(report->predictions.size(), 300u);
  double sq = 0, in80 = 0;
  std::vector<int> per_fold(3, 0);
  for (std::size_t i = 0; i < 300; ++i) {
    const CvPrediction& p = report->predictions[i];
    EXPECT_EQ(p.line, i + 2);  // header is line 1
    ASSERT_GE(p.fold, 0);
    ASSERT_LT(p.fold, 3);
    ++per_fold[p.fold];
    EXPECT_EQ(p.actual, std::stod(sales.rows[i].back()));
    EXPECT_LT(p.value.lower80, p.value.predicted);
    const double e = std::log(p.value.predicted / p.actual);
    sq += e * e;
    in80 += p.actual >= p.value.lower80 && p.actual <= p.value.upper80;
  }
  EXPECT_NEAR(std::sqrt(sq / 300), report->rmsle, 1e-9);
  EXPECT_NEAR(in80 / 300, report->coverage80, 1e-12);
  EXPECT_EQ(per_fold, (std::vector<int>{100, 100, 100}));
}

// Full Ames run; only with REAI_SHARED_DATA (a directory holding ames.csv).
TEST(ValuationTest, AmesInnerCvIsAccurate) {
  const char* dir = std::getenv("REAI_SHARED_DATA");
  if (dir == nullptr) GTEST_SKIP() << "REAI_SHARED_DATA not set";
  auto table = read_sales_csv(std::string(dir) + "/ames.csv");
  if (!table) GTEST_SKIP() << table.status().to_string();
  TrainSummary summary;
  auto model = ValuationModel::train(*table, "Sale_Price", TrainOptions{}, &summary);
  ASSERT_TRUE(model.has_value()) << model.status().to_string();
  EXPECT_LT(summary.oof_rmsle, 0.13);
}

}  // namespace
}  // namespace reai::property
