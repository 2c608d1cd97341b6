// A tenant's inventory as the product holds it: each listing's source cells
// as JSON attributes (any listings CSV schema), its list price, and its
// valuation with price competitiveness (list price against the AVM value and
// its interval). Storage-neutral: callers move these texts to and from the
// store; ListingCatalog and ValuationModel read the table rebuilt here.
#pragma once

#include <boost/json/fwd.hpp>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "property/property.h"

namespace reai::property {

// Where the list price stands against the value and its 80% interval.
struct PriceCompetitiveness {
  std::string label;    // "under-priced" (below lower80), "fair", "over-priced" (above upper80)
  double percent = 0;   // (list price - value) / value * 100
  std::string text;     // "priced 8% under its estimated value"
};
// Requires list_price > 0 and v.predicted > 0.
PriceCompetitiveness assess_price(double list_price, const Valuation& v);

// {"value":..,"lower80":..,"upper80":..,"lower90":..,"upper90":..,
//  "competitiveness":{"label":..,"percent":..,"text":..},"model":model_version}
std::string valuation_json(const Valuation& v, double list_price, std::string_view model_version);

// What every valuation answer says about the model beside the value (POST
// /api/properties/value, POST /api/predictions/pricing, a listing's stored
// valuation), for row `row` (a valid index) of `table` valued by `model`:
//   "outside_training_range": [{"attribute","value","min","max"}] for each
//     attribute beyond its column's range in the training sales (the
//     estimate extrapolates; ValuationModel::outside_training_range()), []
//     when none is, null when the model keeps no ranges (saved before);
//   "market_as_of": ValuationModel::market_as_of() ("2010-07"), null when
//     unknown.
// Sets both keys of `*out`. Thread-safe.
void add_training_context(const ValuationModel& model, const SalesTable& table, std::size_t row,
                          boost::json::object* out);

// Removes from `table` the columns `model` was trained with but reads
// nothing from (ValuationModel::ignored_columns(): the target, a constant
// or identifier column of the training file) and returns their names, in
// header order, for an answer's "ignored_attributes". Call it after
// refusing unknown_columns(): what is left are the attributes the model
// reads, so nothing downstream (comparables) reads the others either.
std::vector<std::string> drop_ignored_columns(const ValuationModel& model, SalesTable* table);

// valuation_json() with add_training_context() of row `row` of `table`
// (`v` is that row's valuation by `model`): what the importer stores.
std::string valuation_json(const Valuation& v, double list_price, std::string_view model_version,
                           const ValuationModel& model, const SalesTable& table, std::size_t row);

// One row's cells by header name as a JSON object of strings, leaving out
// the columns whose indices are in `skip` and empty/NA cells.
std::string attributes_json(std::span<const std::string> header, std::span<const std::string> row,
                            std::span<const int> skip);

struct StoredListing {
  std::string id;
  double list_price = 0;
  std::string attributes_json;  // attributes_json()'s format
};

// Synthetic columns of listings_table(): the id and the list price.
inline constexpr std::string_view kListingIdColumn = "reai_listing_id";
inline constexpr std::string_view kListPriceColumn = "reai_list_price";

// A table of the listings: kListingIdColumn, kListPriceColumn, then every
// attribute name in first-seen order (missing cells empty), so
// ListingCatalog::build({kListPriceColumn, kListingIdColumn}) and
// ValuationModel::predict read it like the source file. InvalidArgument when
// an attributes text is not a JSON object of scalars (message names the id).
Result<SalesTable> listings_table(std::span<const StoredListing> listings, std::string name);

// A one-row table from a JSON object of scalars (strings, numbers, booleans,
// null = missing). InvalidArgument for another JSON type (names the field).
Result<SalesTable> attributes_table(std::string_view attributes_json, std::string name);

// "<kind>@<mtime of DIR/model.json, ISO 8601>": changes whenever a model is
// retrained into DIR (a second apart). NotFound when DIR/model.json does not exist.
Result<std::string> model_dir_version(const std::string& dir, std::string_view kind);

// The model directory serving `tenant` for `kind` ("value", "match"):
// MODEL_DIR/tenants/T/kind when it holds a model.json, else MODEL_DIR/kind
// (which may not exist: check with model_dir_version). InvalidArgument for an
// invalid tenant id (core/tenant_id.h): the path is never built from one.
Result<std::string> tenant_model_dir(const std::string& model_dir, const std::string& tenant, std::string_view kind);

}  // namespace reai::property
