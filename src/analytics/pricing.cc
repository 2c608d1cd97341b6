// Pricing strategy from the AVM, comparable sales and the market forecast.
#include "analytics/pricing.h"

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>

#include "analytics/forecast.h"
#include "core/csv.h"

namespace reai::analytics {
namespace {

namespace json = boost::json;

std::optional<double> number(const std::string& cell) {
  bool ok = true;
  auto v = parse_optional_double(cell, &ok);
  if (!ok || !v || !std::isfinite(*v)) return std::nullopt;
  return v;
}

std::string money(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "$%.0f", v);
  std::string digits(buf + 1);
  std::string out;
  const std::size_t n = digits.size();
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0 && (n - i) % 3 == 0 && digits[0] != '-') out += ',';
    out += digits[i];
  }
  return "$" + out;
}

std::string percent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+.1f%%", 100 * v);
  return buf;
}


std::string month_label(int month) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d", year_of(month), month_of(month));
  return buf;
}

// The forecast move in its own months, with the end of its data: a forecast
// from 2013 applied in 2026 is the market then, not "the next months".
std::string market_sentence(const MarketOutlook& m, UnixSeconds as_of) {
  std::string text = "The " + m.metric + " in " + m.region + " is forecast to move " + percent(m.change);
  if (m.data_through.empty()) {
    text += " over the " + std::to_string(m.months) + " months after its data ends";
  } else {
    text += " from " + m.from_month + " to " + m.to_month + " (forecast from data through " + m.data_through;
    const auto age = as_of > 0 ? months_since(m.data_through, as_of) : std::nullopt;
    if (age && *age > 3) text += ", " + std::to_string(*age) + " months before now: that market, not today's";
    text += ")";
  }
  return text + ", 80% range " + percent(m.lower80) + " to " + percent(m.upper80);
}
}  // namespace

Result<property::SalesTable> listing_from_json(const std::string& json_text) {
  json::error_code ec;
  json::value root = json::parse(json_text, ec);
  if (ec) return invalid_argument("listing is not valid JSON: " + ec.message());
  if (!root.is_object()) return invalid_argument("listing must be a JSON object of field: value");
  property::SalesTable table;
  table.name = "listing";
  std::vector<std::string> row;
  for (const auto& [key, value] : root.as_object()) {
    std::string cell;
    if (value.is_string()) {
      cell = std::string(value.as_string());
    } else if (value.is_int64()) {
      cell = std::to_string(value.as_int64());
    } else if (value.is_uint64()) {
      cell = std::to_string(value.as_uint64());
    } else if (value.is_double()) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.10g", value.as_double());
      cell = buf;
    } else if (value.is_bool()) {
      cell = value.as_bool() ? "true" : "false";
    } else if (!value.is_null()) {
      return invalid_argument("listing field '" + std::string(key) + "' must be a number, string, boolean or null");
    }
    table.header.emplace_back(key);
    row.push_back(std::move(cell));
  }
  if (table.header.empty()) return invalid_argument("listing has no fields");
  table.rows.push_back(std::move(row));
  table.lines.push_back(1);
  return table;
}

Result<std::vector<Comparable>> nearest_comparables(const property::SalesTable& sales, const std::string& price_column,
                                                    const property::SalesTable& listing, int k) {
  if (listing.rows.empty()) return invalid_argument("listing has no row");
  const auto price_it = std::find(sales.header.begin(), sales.header.end(), price_column);
  if (price_it == sales.header.end()) return invalid_argument(sales.name + ": missing price column '" + price_column + "'");
  const auto price_col = static_cast<std::size_t>(price_it - sales.header.begin());
  struct Shared {
    std::size_t sales_col;
    std::string value;
    std::optional<double> numeric;
    double sd = 1;
  };
  std::vector<Shared> shared;
  for (std::size_t j = 0; j < listing.header.size(); ++j) {
    if (listing.header[j] == price_column || listing.rows[0][j].empty()) continue;
    auto it = std::find(sales.header.begin(), sales.header.end(), listing.header[j]);
    if (it == sales.header.end()) continue;
    Shared s{static_cast<std::size_t>(it - sales.header.begin()), listing.rows[0][j], number(listing.rows[0][j])};
    if (s.numeric) {
      double sum = 0, sq = 0;
      int n = 0;
      for (const auto& row : sales.rows) {
        if (auto v = number(row[s.sales_col])) {
          sum += *v;
          sq += *v * *v;
          ++n;
        }
      }
      if (n < 2) continue;
      const double mean = sum / n;
      s.sd = std::sqrt(std::max(sq / n - mean * mean, 0.0));
      if (s.sd <= 0) continue;
    }
    shared.push_back(std::move(s));
  }
  if (shared.empty()) return invalid_argument("the listing shares no column with " + sales.name);
  std::vector<Comparable> all;
  for (std::size_t r = 0; r < sales.rows.size(); ++r) {
    const auto& row = sales.rows[r];
    auto price = number(row[price_col]);
    if (!price || *price <= 0) continue;
    double sum = 0;
    for (const auto& s : shared) {
      const std::string& cell = row[s.sales_col];
      double d = 1;  // missing or different
      if (s.numeric) {
        if (auto v = number(cell)) d = std::min(3.0, std::abs(*v - *s.numeric) / s.sd);
      } else if (cell == s.value) {
        d = 0;
      }
      sum += d * d;
    }
    Comparable c;
    c.row = r + 1;
    c.price = *price;
    c.distance = std::sqrt(sum / static_cast<double>(shared.size()));
    all.push_back(std::move(c));
  }
  if (all.empty()) return invalid_argument(sales.name + ": no sale has a positive " + price_column);
  const auto keep = std::min<std::size_t>(all.size(), static_cast<std::size_t>(std::max(1, k)));
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(keep), all.end(),
                    [](const Comparable& a, const Comparable& b) { return a.distance < b.distance; });
  all.resize(keep);
  for (auto& c : all) {
    for (std::size_t i = 0; i < shared.size() && c.highlights.size() < 4; ++i) {
      c.highlights.emplace_back(sales.header[shared[i].sales_col], sales.rows[c.row - 1][shared[i].sales_col]);
    }
  }
  return all;
}

std::optional<int> months_since(std::string_view data_through, UnixSeconds as_of) {
  int year = 0, month = 0;
  const std::string text(data_through);
  if (text.size() != 7 || std::sscanf(text.c_str(), "%4d-%2d", &year, &month) != 2 || month < 1 || month > 12) {
    return std::nullopt;
  }
  const std::time_t t = static_cast<std::time_t>(as_of);
  std::tm utc{};
  gmtime_r(&t, &utc);
  return month_index(utc.tm_year + 1900, utc.tm_mon + 1) - month_index(year, month);
}

Result<MarketOutlook> market_outlook(const std::string& forecast_csv, const std::string& region,
                                     const std::string& metric) {
  auto csv = CsvReader::open(forecast_csv);
  if (!csv) return csv.status();
  std::size_t cols[6];
  const char* names[6] = {"series", "metric", "h", "point", "lower80", "upper80"};
  for (int i = 0; i < 6; ++i) {
    auto c = csv->require_column(names[i]);
    if (!c) return c.status();
    cols[i] = *c;
  }
  struct Point {
    int h;
    double point, lower, upper;
    int month;  // absolute month index; -1 when the CSV has no dates
  };
  // Optional: a forecast CSV without dates still gives the change.
  const auto year_col = csv->column("year");
  const auto month_col = csv->column("month");
  std::vector<Point> points;
  std::vector<std::string_view> f;
  Status error;
  while (csv->next(f, &error)) {
    if (!error.is_ok()) return invalid_argument(forecast_csv + ": " + error.message());
    if (f.size() < 6) return invalid_argument(forecast_csv + " line " + std::to_string(csv->line()) + ": too few fields");
    if (f[cols[0]] != region || f[cols[1]] != metric) continue;
    bool ok = true;
    auto h = parse_optional_double(f[cols[2]], &ok);
    auto p = parse_optional_double(f[cols[3]], &ok);
    auto lo = parse_optional_double(f[cols[4]], &ok);
    auto hi = parse_optional_double(f[cols[5]], &ok);
    if (!ok || !h || !p || !lo || !hi || *p <= 0) {
      return invalid_argument(forecast_csv + " line " + std::to_string(csv->line()) + ": unparsable forecast");
    }
    int month = -1;
    if (year_col && month_col && *year_col < f.size() && *month_col < f.size()) {
      auto y = parse_optional_double(f[*year_col], &ok);
      auto m = parse_optional_double(f[*month_col], &ok);
      if (ok && y && m && *m >= 1 && *m <= 12) month = month_index(static_cast<int>(*y), static_cast<int>(*m));
    }
    points.push_back({static_cast<int>(*h), *p, *lo, *hi, month});
  }
  if (points.size() < 2) {
    return invalid_argument(forecast_csv + ": no forecast of '" + metric + "' for region '" + region +
                            "' with two horizons");
  }
  std::sort(points.begin(), points.end(), [](const Point& a, const Point& b) { return a.h < b.h; });
  // From the first forecast month to the one closest to 90 days later.
  const Point& first = points.front();
  const Point* later = &points.back();
  for (const auto& p : points) {
    if (p.h - first.h >= 2) {
      later = &p;
      break;
    }
  }
  MarketOutlook out;
  out.region = region;
  out.metric = metric;
  out.months = later->h - first.h;
  out.change = later->point / first.point - 1;
  out.lower80 = later->lower / first.point - 1;
  out.upper80 = later->upper / first.point - 1;
  if (first.month >= 0 && later->month >= 0) {
    out.data_through = month_label(first.month - first.h);
    out.from_month = month_label(first.month);
    out.to_month = month_label(later->month);
  }
  return out;
}

PriceRecommendation recommend_price(const property::Valuation& avm, std::vector<Comparable> comparables,
                                    const MarketOutlook* market, std::string_view market_as_of, UnixSeconds as_of) {
  PriceRecommendation rec;
  rec.avm = avm;
  rec.comparables = std::move(comparables);
  double drift = 0, market_half_width = 0;
  if (market != nullptr) {
    rec.has_market = true;
    rec.market = *market;
    drift = std::clamp(market->change, -0.10, 0.10);
    market_half_width = std::max(0.0, (market->upper80 - market->lower80) / 2);
  }
  const double value = avm.predicted * (1 + drift);
  rec.list_price = std::round(value / 1000.0) * 1000.0;
  // Relative half-widths add in quadrature: AVM error and market move are
  // roughly independent.
  const double avm_low = avm.predicted > 0 ? 1 - avm.lower80 / avm.predicted : 0;
  const double avm_high = avm.predicted > 0 ? avm.upper80 / avm.predicted - 1 : 0;
  // The range is said in the list price's units, rounded outwards so it
  // never gets narrower than computed (the epsilon keeps 180000.0000001 at
  // 180,000 rather than pushing it a step out).
  constexpr double kStep = 1000.0, kEps = 1e-9;
  rec.lower80 = std::floor(value * (1 - std::hypot(avm_low, market_half_width)) / kStep + kEps) * kStep;
  rec.upper80 = std::ceil(value * (1 + std::hypot(avm_high, market_half_width)) / kStep - kEps) * kStep;

  // The AVM values at its training sales' prices: saying "today" would pass
  // a 2010 market off as the current one.
  std::string text = "The valuation model puts this home at " + money(avm.predicted) + " (80% range " +
                     money(avm.lower80) + " to " + money(avm.upper80) + ") at the prices of its training sales";
  text += market_as_of.empty() ? ". " : " (market as of " + std::string(market_as_of) + "). ";
  if (rec.has_market) {
    text += market_sentence(*market, as_of);
    text += market->change != drift ? ", capped at " + percent(drift) + " for pricing. " : ". ";
  } else {
    text += "No market forecast was given, so no market adjustment is made. ";
  }
  if (!rec.comparables.empty()) {
    std::vector<double> prices;
    for (const auto& c : rec.comparables) prices.push_back(c.price);
    std::nth_element(prices.begin(), prices.begin() + static_cast<std::ptrdiff_t>(prices.size() / 2), prices.end());
    const double median = prices[prices.size() / 2];
    text += "The " + std::to_string(rec.comparables.size()) + " most similar past sales have a median price of " +
            money(median);
    const double gap = median / value - 1;
    if (std::abs(gap) > 0.15) {
      text += ", " + percent(gap) +
              " from this recommendation: the model sees differences the comparables do not share, check them. ";
    } else {
      text += ", consistent with this recommendation. ";
    }
  }
  text += "Recommended list price: " + money(rec.list_price) + " (80% range " + money(rec.lower80) + " to " +
          money(rec.upper80) + "); pricing near the low end sells faster, near the high end tests the market.";
  rec.explanation = std::move(text);
  return rec;
}

}  // namespace reai::analytics
