// Pricing strategy: a recommended list price and interval for a listing from
// the AVM's value and interval (src/property), the nearest comparable sales
// in feature space, and the 90-day market forecast of its area.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/types.h"
#include "property/property.h"

namespace reai::analytics {

// A JSON object of field -> value (number, string, boolean or null) as a
// one-row SalesTable whose header is the object's keys. InvalidArgument when
// the text is not a JSON object or a value is an array or object.
Result<property::SalesTable> listing_from_json(const std::string& json_text);

struct Comparable {
  std::size_t row = 0;  // 1-based data row of the sales table
  double price = 0;
  double distance = 0;  // RMS of standardised differences over shared columns
  std::vector<std::pair<std::string, std::string>> highlights;  // a few of its fields
};

// The k sales nearest to `listing` (row 0) over the columns both tables hold:
// numeric columns standardised by the sales' standard deviation, other
// columns 0 when equal and 1 otherwise. Rows without a positive price are
// skipped. InvalidArgument when the price column is missing, no column is
// shared, or no sale has a price. Thread-safe.
Result<std::vector<Comparable>> nearest_comparables(const property::SalesTable& sales, const std::string& price_column,
                                                    const property::SalesTable& listing, int k);

// The market outlook of one area from a `reai forecast` CSV: the expected
// relative change of the metric between the first forecast month and the
// one 90 days (2 months) later, with its 80% range. The months are those of
// the forecast's data, which may end long before the instant it is applied
// at: answers name them rather than "the next months".
struct MarketOutlook {
  std::string region;
  std::string metric;
  int months = 0;               // months between the two forecast points
  double change = 0;            // relative, e.g. 0.012 = +1.2%
  double lower80 = 0, upper80 = 0;  // relative change at the 80% bounds of the later point
  // "2013-12": the last month of data the forecast was made from, and the
  // first and later forecast months compared; empty when the CSV has no
  // year and month columns.
  std::string data_through, from_month, to_month;
};

// Whole calendar months from the end of `data_through` ("2013-12") to the
// month of `as_of`, e.g. 2013-12 to 2026-11: 155; nullopt when data_through
// is not a YYYY-MM month.
std::optional<int> months_since(std::string_view data_through, UnixSeconds as_of);
// NotFound when the file cannot be read; InvalidArgument when its columns are
// not those of `reai forecast` or it holds no rows for (region, metric) with
// at least two horizons.
Result<MarketOutlook> market_outlook(const std::string& forecast_csv, const std::string& region,
                                     const std::string& metric);

struct PriceRecommendation {
  double list_price = 0;
  double lower80 = 0, upper80 = 0;
  property::Valuation avm;
  std::vector<Comparable> comparables;
  bool has_market = false;
  MarketOutlook market;
  std::string explanation;  // plain words, several sentences
};

// Combines the three: the AVM value moved by the expected market change over
// the selling period (capped at +/-10%), rounded to $1,000; the interval
// combines the AVM's 80% interval with the market's uncertainty. The
// comparables only inform the explanation (the AVM already uses nearby sales).
// `market_as_of` is the AVM's ValuationModel::market_as_of() ("2010-07"; empty
// when unknown): the explanation says the value is at its training sales'
// prices, never "today", since values are not brought forward. The market
// move is told with the forecast's months and the end of its data; `as_of`
// (the answer's instant, 0 when unknown) adds how long before it that data
// ends when that is more than a quarter.
PriceRecommendation recommend_price(const property::Valuation& avm, std::vector<Comparable> comparables,
                                    const MarketOutlook* market, std::string_view market_as_of = {},
                                    UnixSeconds as_of = 0);

}  // namespace reai::analytics
