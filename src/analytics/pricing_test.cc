#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "analytics/pricing.h"
#include "core/time.h"

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
  // The months compared and the end of the data they were forecast from.
  EXPECT_EQ(outlook->data_through, "2013-12");
  EXPECT_EQ(outlook->from_month, "2014-01");
  EXPECT_EQ(outlook->to_month, "2014-03");
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

  MarketOutlook up{"Austin", "median", 2, 0.03, -0.05, 0.11, {}, {}, {}};  // no dates
  Comparable comp;
  comp.price = 150000;
  const auto rec = recommend_price(avm, {comp}, &up);
  EXPECT_DOUBLE_EQ(rec.list_price, 206000);
  EXPECT_LT(rec.lower80, 206000 * 0.9);   // wider than the AVM's range alone
  EXPECT_GT(rec.upper80, 206000 * 1.12);
  // In the list price's units, rounded outwards: value 206,000, AVM -10% /
  // +12%, market half-width 8%: 206000 * (1 - hypot(.1, .08)) = 179,619.1
  // and 206000 * (1 + hypot(.12, .08)) = 235,709.7.
  EXPECT_DOUBLE_EQ(rec.lower80, 179000);
  EXPECT_DOUBLE_EQ(rec.upper80, 236000);
  EXPECT_NE(rec.explanation.find("(80% range $179,000 to $236,000)"), std::string::npos) << rec.explanation;
  EXPECT_NE(rec.explanation.find("Austin"), std::string::npos);
  EXPECT_NE(rec.explanation.find("$206,000"), std::string::npos);
  EXPECT_NE(rec.explanation.find("check them"), std::string::npos);  // comparables 27% below

  // Without dates the text cannot name months, and still says nothing of "next".
  EXPECT_NE(rec.explanation.find("+3.0% over the 2 months after its data ends"), std::string::npos) << rec.explanation;
  EXPECT_EQ(rec.explanation.find("next"), std::string::npos) << rec.explanation;

  MarketOutlook crash{"Austin", "median", 2, -0.4, -0.5, -0.3, {}, {}, {}};
  EXPECT_DOUBLE_EQ(recommend_price(avm, {}, &crash).list_price, 180000);  // capped at -10%
}

// A forecast whose data ends long before the answer's instant says so, in
// months: the market then, not today's.
TEST(Pricing, OldForecastSaysWhereItsDataEnds) {
  EXPECT_EQ(months_since("2013-12", parse_iso8601("2026-11-29T12:00:00Z").value()), 155);
  EXPECT_EQ(months_since("2026-10", parse_iso8601("2026-11-01T00:00:00Z").value()), 1);
  EXPECT_FALSE(months_since("", 0).has_value());
  EXPECT_FALSE(months_since("2013-13", 0).has_value());
  property::Valuation avm;
  avm.predicted = 200000;
  avm.lower80 = 180000;
  avm.upper80 = 224000;
  MarketOutlook old{"Austin", "median", 2, 0.03, -0.05, 0.11, "2013-12", "2014-01", "2014-03"};
  const auto stale = recommend_price(avm, {}, &old, {}, parse_iso8601("2026-11-29T12:00:00Z").value());
  EXPECT_NE(stale.explanation.find("The median in Austin is forecast to move +3.0% from 2014-01 to 2014-03 "
                                   "(forecast from data through 2013-12, 155 months before now: that market, not "
                                   "today's), 80% range -5.0% to +11.0%. "),
            std::string::npos)
      << stale.explanation;
  // Recent data: the months and the data's end, no warning.
  const auto fresh = recommend_price(avm, {}, &old, {}, parse_iso8601("2014-01-15T00:00:00Z").value());
  EXPECT_NE(fresh.explanation.find("from 2014-01 to 2014-03 (forecast from data through 2013-12), 80% range"),
            std::string::npos)
      << fresh.explanation;
  EXPECT_DOUBLE_EQ(stale.list_price, fresh.list_price);  // words only
}

}  // namespace
}  // namespace reai::analytics
