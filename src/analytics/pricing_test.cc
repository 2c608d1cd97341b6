#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "analytics/pricing.h"

namespace reai::analytics {
namespace {

TEST(Pricing, ListingFromJsonKeepsFieldsAsCells) {
  auto listing = listing_from_json(R"({"Gr_Liv_Area": 1500, "Neighborhood": "North_Ames", "Pool": false, "Lot": 8450.5, "Alley": null})");
  ASSERT_TRUE(listing) << listing.status().to_string();
  ASSERT_EQ(listing->header.size(), 5u);
  EXPECT_EQ(listing->rows[0][0], "1500");
  EXPECT_EQ(listing->rows[0][1], "North_Ames");
  EXPECT_EQ(listing->rows[0][2], "false");
  EXPECT_EQ(listing->rows[0][3], "8450.5");
  EXPECT_EQ(listing->rows[0][4], "");
  EXPECT_EQ(listing_from_json("[1,2]").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(listing_from_json("{\"a\": [1]}").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(listing_from_json("{not json").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(listing_from_json("{}").status().code(), StatusCode::kInvalidArgument);
}

property::SalesTable sales() {
  property::SalesTable t;
  t.name = "sales.csv";
  t.header = {"area", "hood", "price"};
  t.rows = {{"1000", "A", "100000"}, {"1500", "A", "150000"}, {"1520", "B", "160000"},
            {"3000", "A", "300000"}, {"1490", "A", "NA"},     {"1510", "A", "155000"}};
  return t;
}

TEST(Pricing, NearestComparablesRankBySharedColumns) {
  auto listing = listing_from_json(R"({"area": 1500, "hood": "A", "unknown": 3})");
  ASSERT_TRUE(listing);
  auto comps = nearest_comparables(sales(), "price", *listing, 3);
  ASSERT_TRUE(comps) << comps.status().to_string();
  ASSERT_EQ(comps->size(), 3u);
  EXPECT_EQ((*comps)[0].row, 2u);  // same area and hood; row 5 has no price
  EXPECT_DOUBLE_EQ((*comps)[0].price, 150000);
  EXPECT_EQ((*comps)[1].row, 6u);
  // A different neighbourhood weighs like one standard deviation of area
  // (~650 here): 1000 sq ft in A (0.77 sd) beats 1520 sq ft in B.
  EXPECT_EQ((*comps)[2].row, 1u);
  EXPECT_LT((*comps)[0].distance, (*comps)[2].distance);
  EXPECT_EQ(nearest_comparables(sales(), "Sale_Price", *listing, 3).status().code(), StatusCode::kInvalidArgument);
  auto unrelated = listing_from_json(R"({"beds": 3})");
  EXPECT_EQ(nearest_comparables(sales(), "price", *unrelated, 3).status().code(), StatusCode::kInvalidArgument);
}

std::string write_forecast(const std::string& text) {
  const std::string path = ::testing::TempDir() + "/pricing_forecast.csv";
  std::ofstream(path) << text;
  return path;
}

TEST(Pricing, MarketOutlookReadsTheAreasForecast) {
  const std::string path = write_forecast(
      "series,metric,year,month,h,point,lower80,upper80\n"
      "Austin,median,2014,1,1,200000,190000,210000\n"
      "Austin,median,2014,2,2,202000,188000,215000\n"
      "Austin,median,2014,3,3,206000,190000,222000\n"
      "Austin,sales,2014,1,1,900,800,1000\n"
      "Dallas,median,2014,1,1,1,1,1\n");
  auto outlook = market_outlook(path, "Austin", "median");
  ASSERT_TRUE(outlook) << outlook.status().to_string();
  EXPECT_EQ(outlook->months, 2);
  EXPECT_NEAR(outlook->change, 0.03, 1e-12);
  EXPECT_NEAR(outlook->lower80, -0.05, 1e-12);
  EXPECT_NEAR(outlook->upper80, 0.11, 1e-12);
  EXPECT_EQ(market_outlook(path, "Houston", "median").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(market_outlook(path, "Dallas", "median").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(market_outlook("/nonexistent.csv", "Austin", "median").status().code(), StatusCode::kNotFound);
  const std::string bad = write_forecast("series,metric,h\nAustin,median,1\n");
  EXPECT_EQ(market_outlook(bad, "Austin", "median").status().code(), StatusCode::kInvalidArgument);
}

TEST(Pricing, RecommendationMovesTheAvmValueWithTheMarket) {
  property::Valuation avm;
  avm.predicted = 200000;
  avm.lower80 = 180000;
  avm.upper80 = 224000;
  const auto plain = recommend_price(avm, {}, nullptr);
  EXPECT_DOUBLE_EQ(plain.list_price, 200000);
  EXPECT_NEAR(plain.lower80, 180000, 1e-6);
  EXPECT_NEAR(plain.upper80, 224000, 1e-6);
  EXPECT_NE(plain.explanation.find("No market forecast"), std::string::npos);
  // The value is at the training sales' prices, not brought forward: never "today".
  EXPECT_NE(plain.explanation.find("$200,000 (80% range $180,000 to $224,000) at the prices of its training sales. "),
            std::string::npos)
      << plain.explanation;
  EXPECT_EQ(plain.explanation.find("today"), std::string::npos);
  const auto dated = recommend_price(avm, {}, nullptr, "2010-07");
  EXPECT_NE(dated.explanation.find("at the prices of its training sales (market as of 2010-07). "), std::string::npos)
      << dated.explanation;
  EXPECT_DOUBLE_EQ(dated.list_price, plain.list_price);  // words only: the price is the same

  MarketOutlook up{"Austin", "median", 2, 0.03, -0.05, 0.11};
  Comparable comp;
  comp.price = 150000;
  const auto rec = recommend_price(avm, {comp}, &up);
  EXPECT_DOUBLE_EQ(rec.list_price, 206000);
  EXPECT_LT(rec.lower80, 206000 * 0.9);   // wider than the AVM's range alone
  EXPECT_GT(rec.upper80, 206000 * 1.12);
  EXPECT_NE(rec.explanation.find("Austin"), std::string::npos);
  EXPECT_NE(rec.explanation.find("$206,000"), std::string::npos);
  EXPECT_NE(rec.explanation.find("check them"), std::string::npos);  // comparables 27% below

  MarketOutlook crash{"Austin", "median", 2, -0.4, -0.5, -0.3};
  EXPECT_DOUBLE_EQ(recommend_price(avm, {}, &crash).list_price, 180000);  // capped at -10%
}

}  // namespace
}  // namespace reai::analytics
