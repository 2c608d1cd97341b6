#include "property/inventory.h"

#include <sys/stat.h>

#include <boost/json.hpp>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <unordered_map>

#include "core/tenant_id.h"
#include "core/time.h"
#include "property/schema.h"

namespace reai::property {
namespace json = boost::json;
namespace {

std::string number_text(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  return buf;
}

// A scalar JSON value as a CSV cell; false for arrays and objects.
bool scalar_cell(const json::value& v, std::string* out) {
  switch (v.kind()) {
    case json::kind::string: *out = std::string(v.get_string()); return true;
    case json::kind::int64: *out = std::to_string(v.get_int64()); return true;
    case json::kind::uint64: *out = std::to_string(v.get_uint64()); return true;
    case json::kind::double_: *out = std::isfinite(v.get_double()) ? number_text(v.get_double()) : ""; return true;
    case json::kind::bool_: *out = v.get_bool() ? "true" : "false"; return true;
    case json::kind::null: out->clear(); return true;
    default: return false;
  }
}

Result<json::object> parse_object(std::string_view text, const std::string& what) {
  boost::system::error_code ec;
  json::value v = json::parse(text, ec);
  if (ec) return invalid_argument(what + ": malformed JSON: " + ec.message());
  if (!v.is_object()) return invalid_argument(what + ": attributes must be a JSON object");
  return std::move(v.as_object());
}

}  // namespace

PriceCompetitiveness assess_price(double list_price, const Valuation& v) {
  PriceCompetitiveness c;
  c.percent = (list_price - v.predicted) / v.predicted * 100.0;
  const long rounded = std::lround(std::fabs(c.percent));
  const std::string side = c.percent < 0 ? "under" : "over";
  if (list_price < v.lower80) {
    c.label = "under-priced";
  } else if (list_price > v.upper80) {
    c.label = "over-priced";
  } else {
    c.label = "fair";
  }
  if (rounded == 0) {
    c.text = "priced at its estimated value";
  } else if (c.label == "fair") {
    c.text = "priced " + std::to_string(rounded) + "% " + side + " its estimated value, within the 80% range";
  } else {
    c.text = "priced " + std::to_string(rounded) + "% " + side + " its estimated value";
  }
  return c;
}

namespace {

json::object valuation_object(const Valuation& v, double list_price, std::string_view model_version) {
  const PriceCompetitiveness c = assess_price(list_price, v);
  json::object o;
  o["value"] = v.predicted;
  o["lower80"] = v.lower80;
  o["upper80"] = v.upper80;
  o["lower90"] = v.lower90;
  o["upper90"] = v.upper90;
  o["competitiveness"] = {{"label", c.label}, {"percent", std::round(c.percent * 10) / 10}, {"text", c.text}};
  o["model"] = model_version;
  return o;
}

// Whole numbers as integers: boost::json writes a double 40000 as 4E4.
json::value plain_number(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) return static_cast<std::int64_t>(v);
  return v;
}

}  // namespace

std::string valuation_json(const Valuation& v, double list_price, std::string_view model_version) {
  return json::serialize(valuation_object(v, list_price, model_version));
}

void add_training_context(const ValuationModel& model, const SalesTable& table, std::size_t row, json::object* out) {
  if (model.has_training_ranges()) {
    json::array outside;
    for (const auto& o : model.outside_training_range(table, row)) {
      outside.push_back(json::object{{"attribute", o.attribute},
                                     {"value", plain_number(o.value)},
                                     {"min", plain_number(o.min)},
                                     {"max", plain_number(o.max)}});
    }
    (*out)["outside_training_range"] = std::move(outside);
  } else {
    (*out)["outside_training_range"] = nullptr;
  }
  const std::string& market = model.market_as_of();
  (*out)["market_as_of"] = market.empty() ? json::value(nullptr) : json::value(market);
}

std::vector<std::string> drop_ignored_columns(const ValuationModel& model, SalesTable* table) {
  std::vector<std::string> ignored = model.ignored_columns(table->header);
  if (ignored.empty()) return ignored;
  std::vector<bool> keep(table->header.size());
  for (std::size_t c = 0; c < keep.size(); ++c) {
    keep[c] = std::find(ignored.begin(), ignored.end(), table->header[c]) == ignored.end();
  }
  const auto keep_cells = [&](std::vector<std::string>& cells) {
    std::size_t to = 0;
    for (std::size_t c = 0; c < keep.size() && c < cells.size(); ++c) {
      if (!keep[c]) continue;
      if (to != c) cells[to] = std::move(cells[c]);  // a self-move may empty it
      ++to;
    }
    cells.resize(to);
  };
  keep_cells(table->header);
  for (auto& row : table->rows) keep_cells(row);
  return ignored;
}

std::string valuation_json(const Valuation& v, double list_price, std::string_view model_version,
                           const ValuationModel& model, const SalesTable& table, std::size_t row) {
  json::object o = valuation_object(v, list_price, model_version);
  add_training_context(model, table, row, &o);
  return json::serialize(o);
}

std::string attributes_json(std::span<const std::string> header, std::span<const std::string> row,
                            std::span<const int> skip) {
  json::object o;
  for (std::size_t c = 0; c < header.size() && c < row.size(); ++c) {
    bool skipped = false;
    for (int s : skip) skipped = skipped || s == static_cast<int>(c);
    if (skipped || is_missing_cell(row[c])) continue;
    o[header[c]] = row[c];
  }
  return json::serialize(o);
}

Result<SalesTable> listings_table(std::span<const StoredListing> listings, std::string name) {
  SalesTable t;
  t.name = std::move(name);
  t.header = {std::string(kListingIdColumn), std::string(kListPriceColumn)};
  std::unordered_map<std::string, std::size_t> column;
  t.rows.reserve(listings.size());
  std::string cell;
  for (const auto& l : listings) {
    auto attrs = parse_object(l.attributes_json, "listing '" + l.id + "'");
    if (!attrs) return attrs.status();
    std::vector<std::string> row(t.header.size());
    row[0] = l.id;
    row[1] = number_text(l.list_price);
    for (const auto& kv : *attrs) {
      const std::string key(kv.key());
      if (key == kListingIdColumn || key == kListPriceColumn) continue;
      if (!scalar_cell(kv.value(), &cell)) {
        return invalid_argument("listing '" + l.id + "': attribute '" + key + "' is not a scalar");
      }
      auto [it, added] = column.try_emplace(key, t.header.size());
      if (added) t.header.push_back(key);
      if (row.size() <= it->second) row.resize(it->second + 1);
      row[it->second] = cell;
    }
    t.rows.push_back(std::move(row));
    t.lines.push_back(t.rows.size() + 1);
  }
  for (auto& row : t.rows) row.resize(t.header.size());
  return t;
}

Result<SalesTable> attributes_table(std::string_view attributes_json, std::string name) {
  auto attrs = parse_object(attributes_json, name);
  if (!attrs) return attrs.status();
  SalesTable t;
  t.name = std::move(name);
  std::vector<std::string> row;
  std::string cell;
  for (const auto& kv : *attrs) {
    if (!scalar_cell(kv.value(), &cell)) {
      return invalid_argument("attribute '" + std::string(kv.key()) + "' must be a string, number, boolean or null");
    }
    t.header.emplace_back(kv.key());
    row.push_back(cell);
  }
  t.rows.push_back(std::move(row));
  t.lines.push_back(2);
  return t;
}

Result<std::string> model_dir_version(const std::string& dir, std::string_view kind) {
  struct stat st {};
  const std::string file = (std::filesystem::path(dir) / "model.json").string();
  if (::stat(file.c_str(), &st) != 0) return not_found("no " + std::string(kind) + " model in " + dir);
  return std::string(kind) + "@" + format_iso8601(static_cast<UnixSeconds>(st.st_mtime));
}

Result<std::string> tenant_model_dir(const std::string& model_dir, const std::string& tenant, std::string_view kind) {
  namespace fs = std::filesystem;
  auto root = tenant_dir(model_dir, tenant);
  if (!root) return root.status();
  const fs::path own = fs::path(*root) / std::string(kind);
  std::error_code ec;
  if (fs::exists(own / "model.json", ec)) return own.string();
  return (fs::path(model_dir) / std::string(kind)).string();
}

}  // namespace reai::property
