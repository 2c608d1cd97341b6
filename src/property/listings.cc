// ListingCatalog: matching attributes of listings from any listings CSV.
#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <mutex>
#include <numeric>
#include <random>
#include <unordered_map>

#include "property/matching.h"
#include "property/schema.h"

namespace reai::property {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr std::size_t kMaxDims = 48;

bool has_any(const std::vector<std::string>& tokens, std::initializer_list<std::string_view> words) {
  for (const auto& t : tokens) {
    for (auto w : words) {
      if (t == w) return true;
    }
  }
  return false;
}

// Index of the first schema column satisfying `pred`, or -1.
template <typename Pred>
int find_column(const Schema& schema, Pred pred) {
  for (std::size_t c = 0; c < schema.columns.size(); ++c) {
    if (pred(schema.columns[c], name_tokens(schema.columns[c].name))) return static_cast<int>(c);
  }
  return -1;
}

// Index of the table column called `name`, or -1.
int column_index(const SalesTable& table, const std::string& name) {
  for (std::size_t c = 0; c < table.header.size(); ++c) {
    if (table.header[c] == name) return static_cast<int>(c);
  }
  return -1;
}

// Schema columns (-1 when absent) that mean the same thing in any market's
// file, found by the words in their names since every market names them
// differently.
struct CatalogColumns {
  int neighbourhood = -1, style = -1, beds = -1, area = -1, lon = -1, lat = -1;
  bool located() const { return lon >= 0 && lat >= 0; }
};

CatalogColumns find_catalog_columns(const Schema& schema) {
  CatalogColumns cols;
  cols.neighbourhood = find_column(schema, [](const ColumnSchema& c, const std::vector<std::string>& t) {
    return c.kind == ColumnKind::kCategorical &&
           has_any(t, {"neighborhood", "neighbourhood", "zip", "zipcode", "postcode", "subdivision", "district",
                       "community", "city", "area", "suburb"});
  });
  cols.style = find_column(schema, [](const ColumnSchema& c, const std::vector<std::string>& t) {
    return c.kind == ColumnKind::kCategorical && has_any(t, {"style"});
  });
  // Without a style column, a building type is the next best thing.
  if (cols.style < 0) {
    cols.style = find_column(schema, [](const ColumnSchema& c, const std::vector<std::string>& t) {
      return c.kind == ColumnKind::kCategorical && has_any(t, {"type"}) &&
             has_any(t, {"bldg", "building", "property", "home", "dwelling", "house"});
    });
  }
  cols.beds = find_column(schema, [](const ColumnSchema& c, const std::vector<std::string>& t) {
    return c.kind == ColumnKind::kNumeric && has_any(t, {"bedroom", "bedrooms", "beds", "bed", "br"});
  });
  cols.area = find_column(schema, [](const ColumnSchema& c, const std::vector<std::string>& t) {
    return c.kind == ColumnKind::kNumeric &&
           (has_any(t, {"liv", "living", "sqft", "livingarea"}) && !has_any(t, {"lot", "lot15", "basement", "bsmt"}));
  });
  cols.lon = find_column(schema, [](const ColumnSchema& c, const std::vector<std::string>&) {
    return c.kind == ColumnKind::kLongitude;
  });
  cols.lat = find_column(schema, [](const ColumnSchema& c, const std::vector<std::string>&) {
    return c.kind == ColumnKind::kLatitude;
  });
  return cols;
}

// The table's cells read through the schema: schema column c is table
// column table_col[c] (the schema leaves the price column out).
struct EncodedTable {
  const SalesTable& table;
  const Schema& schema;
  std::vector<int> table_col;

  EncodedTable(const SalesTable& t, const Schema& s) : table(t), schema(s), table_col(s.columns.size()) {
    for (std::size_t c = 0; c < s.columns.size(); ++c) table_col[c] = column_index(t, s.columns[c].name);
  }
  float cell(std::size_t row, int c) const { return encode_cell(schema.columns[c], table.rows[row][table_col[c]]); }
  // A categorical cell's level, -1 when the column is absent or the cell missing.
  int level(std::size_t row, int c) const {
    if (c < 0) return -1;
    const float v = cell(row, c);
    return std::isnan(v) ? -1 : static_cast<int>(v);
  }
};

// Columns of the attribute vector: every numeric-like column, at most kMaxDims.
std::vector<int> attribute_columns(const Schema& schema) {
  std::vector<int> dims;
  for (std::size_t c = 0; c < schema.columns.size() && dims.size() < kMaxDims; ++c) {
    const auto kind = schema.columns[c].kind;
    if (kind == ColumnKind::kNumeric || kind == ColumnKind::kBoolean || kind == ColumnKind::kLongitude ||
        kind == ColumnKind::kLatitude || kind == ColumnKind::kDate) {
      dims.push_back(static_cast<int>(c));
    }
  }
  return dims;
}

// Which columns the catalog understood, for the person reading the log.
std::string describe_catalog(const Schema& schema, const CatalogColumns& cols, std::size_t listings,
                             std::size_t attributes) {
  const auto name_of = [&](int c) { return c >= 0 ? schema.columns[c].name : std::string("(none)"); };
  return std::to_string(listings) + " listings; neighbourhood: " + name_of(cols.neighbourhood) + ", style: " +
         name_of(cols.style) + ", beds: " + name_of(cols.beds) + ", living area: " + name_of(cols.area) +
         ", coordinates: " + (cols.located() ? "yes" : "no") + ", " + std::to_string(attributes) + " attributes";
}

}  // namespace

Result<ListingKeyColumns> find_listing_key_columns(const SalesTable& table, const ListingOptions& options) {
  if (options.price_column.empty()) return invalid_argument("a price column is required (--price-column)");
  ListingKeyColumns keys;
  keys.price = column_index(table, options.price_column);
  if (keys.price < 0) return invalid_argument(table.name + ": missing price column '" + options.price_column + "'");
  if (!options.id_column.empty()) {
    keys.id = column_index(table, options.id_column);
    if (keys.id < 0) return invalid_argument(table.name + ": missing id column '" + options.id_column + "'");
  }
  return keys;
}

std::optional<double> parse_listing_price(std::string_view cell) {
  std::string cleaned;
  for (char ch : cell) {
    if (ch != '$' && ch != ',' && ch != ' ') cleaned.push_back(ch);
  }
  double price = 0;
  auto [end, ec] = std::from_chars(cleaned.data(), cleaned.data() + cleaned.size(), price);
  if (cleaned.empty() || ec != std::errc() || end != cleaned.data() + cleaned.size()) return std::nullopt;
  if (!std::isfinite(price) || price <= 0) return std::nullopt;
  return price;
}

std::string listing_row_id(const std::string& path, std::size_t row) {
  char digits[32];
  std::snprintf(digits, sizeof digits, "%04zu", row);
  return std::filesystem::path(path).stem().string() + "-" + digits;
}

struct CatalogBuilder {
  // Comparables estimate: a listing's value is its own size priced at the
  // mean log price per size of its nearest others (or its neighbourhood's,
  // leaving itself out), so value_gap reads "priced under/over comparables".
  static void estimate_values(ListingCatalog& c, const std::vector<float>& log_area) {
    const std::size_t n = c.listings_.size();
    std::vector<float> ppa(n, kNaN);
    for (std::size_t i = 0; i < n; ++i) {
      if (!std::isnan(log_area[i])) ppa[i] = c.listings_[i].log_price - log_area[i];
    }
    const bool coords = n <= 20000 && std::any_of(c.listings_.begin(), c.listings_.end(),
                                                   [](const Listing& l) { return !std::isnan(l.x_km); });
    const std::size_t levels = c.neighbourhood_names_.size();
    std::vector<double> nb_sum(levels, 0), nb_n(levels, 0);
    double all_sum = 0, all_n = 0;
    for (std::size_t i = 0; i < n; ++i) {
      if (std::isnan(ppa[i])) continue;
      all_sum += ppa[i], all_n += 1;
      if (int nb = c.listings_[i].neighbourhood; nb >= 0) nb_sum[nb] += ppa[i], nb_n[nb] += 1;
    }
    if (all_n < 5) {
      for (auto& l : c.listings_) l.log_value = kNaN;
      return;
    }
    constexpr int kComps = 10;
    std::vector<std::pair<float, std::uint32_t>> near;
    for (std::size_t i = 0; i < n; ++i) {
      Listing& l = c.listings_[i];
      l.log_value = kNaN;
      if (std::isnan(log_area[i])) continue;
      double est = (all_sum - ppa[i]) / (all_n - 1);
      if (coords && !std::isnan(l.x_km)) {
        near.clear();
        for (std::size_t j = 0; j < n; ++j) {
          if (j == i || std::isnan(ppa[j]) || std::isnan(c.listings_[j].x_km)) continue;
          const float dx = c.listings_[j].x_km - l.x_km, dy = c.listings_[j].y_km - l.y_km;
          // Size matters as much as 1 km: comparables are similar homes nearby.
          const float ds = (log_area[j] - log_area[i]) * 3.0f;
          near.emplace_back(dx * dx + dy * dy + ds * ds, static_cast<std::uint32_t>(j));
        }
        const std::size_t m = std::min<std::size_t>(kComps, near.size());
        if (m > 0) {
          std::partial_sort(near.begin(), near.begin() + m, near.end());
          double s = 0;
          for (std::size_t q = 0; q < m; ++q) s += ppa[near[q].second];
          est = s / m;
        }
      } else if (l.neighbourhood >= 0 && nb_n[l.neighbourhood] > 3) {
        est = (nb_sum[l.neighbourhood] - ppa[i]) / (nb_n[l.neighbourhood] - 1);
      }
      l.log_value = static_cast<float>(est + log_area[i]);
    }
  }

  // Bucket key: neighbourhood level (-1 unknown), then whole beds clamped to
  // 0..kMaxBedsKey (-1 unknown).
  static constexpr int kMaxBedsKey = 10;
  static std::pair<int, int> bucket_key(const Listing& l) {
    const int beds = std::isnan(l.beds) ? -1 : std::clamp(static_cast<int>(std::lround(l.beds)), 0, kMaxBedsKey);
    return {l.neighbourhood, beds};
  }

  static void build_candidate_index(ListingCatalog& c) {
    const std::size_t n = c.listings_.size();
    std::vector<std::uint32_t> rows(n);
    std::iota(rows.begin(), rows.end(), 0u);
    std::sort(rows.begin(), rows.end(), [&](std::uint32_t a, std::uint32_t b) {
      const Listing& x = c.listings_[a];
      const Listing& y = c.listings_[b];
      const auto kx = bucket_key(x), ky = bucket_key(y);
      if (kx != ky) return kx < ky;
      if (x.log_price != y.log_price) return x.log_price < y.log_price;
      return a < b;
    });
    auto& ix = c.candidate_index_;
    ix = {};
    ix.listing = rows;
    for (std::uint32_t i : rows) {
      const Listing& l = c.listings_[i];
      ix.log_price.push_back(l.log_price);
      ix.beds.push_back(l.beds);
      ix.x_km.push_back(l.x_km);
      ix.y_km.push_back(l.y_km);
      ix.style.push_back(l.style);
    }
    for (std::uint32_t r = 0; r < n;) {
      const auto key = bucket_key(c.listings_[rows[r]]);
      ListingCatalog::CandidateIndex::Bucket b;
      b.begin = r;
      b.neighbourhood = key.first;
      b.min_beds = b.min_x = b.min_y = std::numeric_limits<float>::infinity();
      b.max_beds = b.max_x = b.max_y = -std::numeric_limits<float>::infinity();
      for (; r < n && bucket_key(c.listings_[rows[r]]) == key; ++r) {
        const Listing& l = c.listings_[rows[r]];
        if (!std::isnan(l.beds)) b.min_beds = std::min(b.min_beds, l.beds), b.max_beds = std::max(b.max_beds, l.beds);
        if (!std::isnan(l.x_km)) b.min_x = std::min(b.min_x, l.x_km), b.max_x = std::max(b.max_x, l.x_km);
        if (!std::isnan(l.y_km)) b.min_y = std::min(b.min_y, l.y_km), b.max_y = std::max(b.max_y, l.y_km);
      }
      b.end = r;
      if (b.min_beds > b.max_beds) b.min_beds = b.max_beds = kNaN;
      // A row without coordinates escapes the location bound: no box then.
      bool all_located = true;
      for (std::uint32_t q = b.begin; q < b.end; ++q) all_located = all_located && !std::isnan(ix.x_km[q]) && !std::isnan(ix.y_km[q]);
      if (!all_located || b.min_x > b.max_x) b.min_x = b.max_x = b.min_y = b.max_y = kNaN;
      ix.buckets.push_back(b);
    }
  }

  static void index(ListingCatalog& c) {
    const std::size_t n = c.listings_.size();
    c.index_.clear();
    c.index_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) c.index_.emplace(c.listings_[i].id, static_cast<int>(i));
    c.by_price_.resize(n);
    std::iota(c.by_price_.begin(), c.by_price_.end(), 0u);
    std::sort(c.by_price_.begin(), c.by_price_.end(), [&](std::uint32_t a, std::uint32_t b) {
      return c.listings_[a].log_price < c.listings_[b].log_price;
    });
    c.sorted_log_price_.clear();
    c.sorted_log_price_.reserve(n);
    for (std::uint32_t i : c.by_price_) c.sorted_log_price_.push_back(c.listings_[i].log_price);
    build_candidate_index(c);
    c.interest_times_.assign(n, {});
    c.view_times_.assign(n, {});
    c.live_interest_.reset(n);
    c.live_views_.reset(n);
  }

  // One listing per row with a price; rows without one are skipped (counted),
  // a price or id that cannot be read refuses the file. source_rows gets the
  // table row of each listing.
  static Status read_listings(ListingCatalog& c, const EncodedTable& t, const CatalogColumns& cols,
                              const ListingKeyColumns& keys, std::vector<std::size_t>* source_rows) {
    const SalesTable& table = t.table;
    for (std::size_t r = 0; r < table.rows.size(); ++r) {
      const auto& row = table.rows[r];
      const std::string_view cell = row[keys.price];
      const std::size_t line = r < table.lines.size() ? table.lines[r] : r + 2;
      if (is_missing_cell(cell)) {
        ++c.skipped_rows_;
        continue;
      }
      const std::optional<double> price = parse_listing_price(cell);
      if (!price) {
        return invalid_argument(table.name + " line " + std::to_string(line) + ": price '" + std::string(cell) +
                                "' is not a positive number");
      }
      Listing l;
      l.row = r + 1;
      if (keys.id >= 0) {
        l.id = row[keys.id];
        if (is_missing_cell(l.id)) {
          return invalid_argument(table.name + " line " + std::to_string(line) + ": empty id");
        }
      } else {
        l.id = listing_row_id(table.name, r + 1);
      }
      l.price = *price;
      l.log_price = static_cast<float>(std::log(*price));
      l.neighbourhood = t.level(r, cols.neighbourhood);
      l.style = t.level(r, cols.style);
      l.beds = cols.beds >= 0 ? t.cell(r, cols.beds) : kNaN;
      c.listings_.push_back(std::move(l));
      source_rows->push_back(r);
    }
    return Status::ok();
  }

  // Coordinates projected to km around the mean latitude, so distances in
  // both directions are comparable; NaN without coordinate columns.
  static void project_coordinates(ListingCatalog& c, const EncodedTable& t, const CatalogColumns& cols,
                                  const std::vector<std::size_t>& source_rows) {
    const std::size_t n = c.listings_.size();
    if (!cols.located()) {
      for (auto& l : c.listings_) l.x_km = l.y_km = kNaN;
      return;
    }
    double lat_sum = 0;
    std::size_t lat_n = 0;
    std::vector<float> lo(n), la(n);
    for (std::size_t i = 0; i < n; ++i) {
      lo[i] = t.cell(source_rows[i], cols.lon);
      la[i] = t.cell(source_rows[i], cols.lat);
      if (!std::isnan(la[i])) lat_sum += la[i], ++lat_n;
    }
    const double scale = 111.0 * std::cos((lat_n ? lat_sum / lat_n : 0) * M_PI / 180.0);
    for (std::size_t i = 0; i < n; ++i) {
      c.listings_[i].x_km = static_cast<float>(lo[i] * scale);
      c.listings_[i].y_km = la[i] * 111.0f;
    }
  }

  // Attribute vector: every column of `dims`, log1p when heavily skewed,
  // standardised; missing -> 0 (the mean). Returns the log living area of
  // each listing (NaN when unknown), which the comparables estimate needs.
  static std::vector<float> standardise_attributes(ListingCatalog& c, const EncodedTable& t,
                                                   const std::vector<int>& dims, int area_col,
                                                   const std::vector<std::size_t>& source_rows) {
    const std::size_t n = c.listings_.size();
    c.dims_ = dims.size();
    c.attributes_.assign(n * dims.size(), 0.0f);
    std::vector<float> log_area(n, kNaN);
    for (std::size_t d = 0; d < dims.size(); ++d) {
      std::vector<float> v(n);
      float lo = std::numeric_limits<float>::infinity(), hi = -lo;
      for (std::size_t i = 0; i < n; ++i) {
        v[i] = t.cell(source_rows[i], dims[d]);
        if (!std::isnan(v[i])) lo = std::min(lo, v[i]), hi = std::max(hi, v[i]);
      }
      if (dims[d] == area_col) {
        for (std::size_t i = 0; i < n; ++i) log_area[i] = v[i] > 0 ? std::log(v[i]) : kNaN;
      }
      if (lo >= 0 && hi > 100) {
        for (auto& x : v) x = std::isnan(x) ? x : std::log1p(x);
      }
      store_standardised(c, d, v);
    }
    return log_area;
  }

  // Writes dimension d of every listing's attributes as z-scores of v; a
  // column with fewer than two known values stays 0.
  static void store_standardised(ListingCatalog& c, std::size_t d, const std::vector<float>& v) {
    double sum = 0, sq = 0;
    std::size_t cnt = 0;
    for (float x : v) {
      if (!std::isnan(x)) sum += x, sq += double(x) * x, ++cnt;
    }
    if (cnt < 2) return;
    const double mean = sum / cnt;
    const double sd = std::sqrt(std::max(1e-12, sq / cnt - mean * mean));
    for (std::size_t i = 0; i < v.size(); ++i) {
      c.attributes_[i * c.dims_ + d] = std::isnan(v[i]) ? 0.0f : static_cast<float>((v[i] - mean) / sd);
    }
  }

  // The id index keeps the first of repeated ids; a repeat is refused since
  // events could not tell the listings apart.
  static Status check_unique_ids(const ListingCatalog& c, const std::string& table_name) {
    for (std::size_t i = 0; i < c.listings_.size(); ++i) {
      if (c.index_.at(c.listings_[i].id) != static_cast<int>(i)) {
        return invalid_argument(table_name + ": listing id '" + c.listings_[i].id + "' repeats");
      }
    }
    return Status::ok();
  }
};

Result<ListingCatalog> ListingCatalog::build(const SalesTable& table, const ListingOptions& options) {
  auto keys = find_listing_key_columns(table, options);
  if (!keys) return keys.status();
  const Schema schema = infer_schema(table, keys->price);
  const CatalogColumns cols = find_catalog_columns(schema);
  const EncodedTable encoded(table, schema);

  ListingCatalog catalog;
  std::vector<std::size_t> source_rows;
  if (Status read = CatalogBuilder::read_listings(catalog, encoded, cols, *keys, &source_rows); !read) return read;
  if (catalog.listings_.empty()) return invalid_argument(table.name + ": no listing has a price");
  CatalogBuilder::project_coordinates(catalog, encoded, cols, source_rows);
  const std::vector<int> dims = attribute_columns(schema);
  const std::vector<float> log_area =
      CatalogBuilder::standardise_attributes(catalog, encoded, dims, cols.area, source_rows);
  if (cols.neighbourhood >= 0) catalog.neighbourhood_names_ = schema.columns[cols.neighbourhood].levels;
  if (cols.style >= 0) catalog.style_names_ = schema.columns[cols.style].levels;
  CatalogBuilder::estimate_values(catalog, log_area);
  CatalogBuilder::index(catalog);
  if (Status unique = CatalogBuilder::check_unique_ids(catalog, table.name); !unique) return unique;
  catalog.described_ = describe_catalog(schema, cols, catalog.listings_.size(), dims.size());
  return catalog;
}

Result<ListingCatalog> ListingCatalog::load(const std::string& path, const ListingOptions& options) {
  auto table = read_sales_csv(path);
  if (!table) return table.status();
  return build(*table, options);
}

int ListingCatalog::find(std::string_view id) const {
  auto it = index_.find(std::string(id));
  return it == index_.end() ? -1 : it->second;
}

const std::string& ListingCatalog::neighbourhood_name(int level) const {
  static const std::string kNone;
  return level >= 0 && static_cast<std::size_t>(level) < neighbourhood_names_.size() ? neighbourhood_names_[level]
                                                                                       : kNone;
}

std::string area_key(std::string_view name) {
  std::string key;
  bool gap = false;
  for (char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isspace(c) || ch == '_') {
      gap = !key.empty();
      continue;
    }
    if (gap) key.push_back(' '), gap = false;
    key.push_back(static_cast<char>(std::tolower(c)));
  }
  return key;
}

std::vector<int> ListingCatalog::neighbourhoods_named(std::string_view area) const {
  std::vector<int> levels;
  const std::string wanted = area_key(area);
  if (wanted.empty()) return levels;
  for (std::size_t k = 0; k < neighbourhood_names_.size(); ++k) {
    if (area_key(neighbourhood_names_[k]) == wanted) levels.push_back(static_cast<int>(k));
  }
  return levels;
}

const std::string& ListingCatalog::style_name(int level) const {
  static const std::string kNone;
  return level >= 0 && static_cast<std::size_t>(level) < style_names_.size() ? style_names_[level] : kNone;
}

std::string ListingCatalog::describe() const { return described_; }

std::pair<std::size_t, std::size_t> ListingCatalog::price_range(float lo, float hi) const {
  const auto& v = sorted_log_price_;
  auto b = std::lower_bound(v.begin(), v.end(), lo);
  auto e = std::upper_bound(b, v.end(), hi);
  return {static_cast<std::size_t>(b - v.begin()), static_cast<std::size_t>(e - v.begin())};
}

// ---------------------------------------------------------------- live times

struct LiveTimes::Impl {
  struct Slot {
    std::atomic<int> count{0};
    std::atomic<UnixSeconds> latest{std::numeric_limits<UnixSeconds>::min()};
  };
  std::size_t n = 0;
  std::unique_ptr<Slot[]> slots;
  // A listing's newest times (sorted, at most kKeptTimes) and the older
  // ones folded away: how many, and the newest of them.
  struct Times {
    std::vector<UnixSeconds> kept;
    int folded = 0;
    UnixSeconds folded_latest = std::numeric_limits<UnixSeconds>::min();
  };
  mutable std::mutex mu;  // guards times; add() holds it, so writers are serialised
  std::unordered_map<std::uint32_t, Times> times;  // only listings with some

  explicit Impl(std::size_t size) : n(size), slots(std::make_unique<Slot[]>(size)) {}
};

LiveTimes::LiveTimes() : impl_(std::make_unique<Impl>(0)) {}
LiveTimes::~LiveTimes() = default;
LiveTimes::LiveTimes(LiveTimes&&) noexcept = default;
LiveTimes& LiveTimes::operator=(LiveTimes&&) noexcept = default;

LiveTimes::LiveTimes(const LiveTimes& other) : impl_(std::make_unique<Impl>(other.impl_ ? other.impl_->n : 0)) {
  if (!other.impl_) return;
  std::lock_guard lock(other.impl_->mu);
  impl_->times = other.impl_->times;
  for (std::size_t i = 0; i < impl_->n; ++i) {
    impl_->slots[i].count.store(other.impl_->slots[i].count.load());
    impl_->slots[i].latest.store(other.impl_->slots[i].latest.load());
  }
}

LiveTimes& LiveTimes::operator=(const LiveTimes& other) {
  if (this != &other) *this = LiveTimes(other);
  return *this;
}

void LiveTimes::reset(std::size_t n) { impl_ = std::make_unique<Impl>(n); }

void LiveTimes::add(std::size_t i, UnixSeconds t) {
  Impl& live = *impl_;
  std::lock_guard lock(live.mu);
  Impl::Times& times = live.times[static_cast<std::uint32_t>(i)];
  // Live events mostly come in time order: the insert is at the end.
  times.kept.insert(std::upper_bound(times.kept.begin(), times.kept.end(), t), t);
  if (times.kept.size() > kKeptTimes) {
    times.folded_latest = std::max(times.folded_latest, times.kept.front());
    ++times.folded;
    times.kept.erase(times.kept.begin());
  }
  Impl::Slot& slot = live.slots[i];
  // The latest time before the count: a reader that sees the new count
  // (acquire) then sees a latest time at least this one's, so it never
  // counts an event dated at or after its query time on the fast path.
  if (t > slot.latest.load(std::memory_order_relaxed)) slot.latest.store(t, std::memory_order_release);
  slot.count.fetch_add(1, std::memory_order_release);
}

int LiveTimes::count_before(std::size_t i, UnixSeconds t) const {
  const Impl::Slot& slot = impl_->slots[i];
  const int count = slot.count.load(std::memory_order_acquire);
  if (count == 0) return 0;
  if (t > slot.latest.load(std::memory_order_acquire)) return count;
  // Asked about an instant at or before a live event (dated ahead): count
  // the times themselves.
  std::lock_guard lock(impl_->mu);
  const auto it = impl_->times.find(static_cast<std::uint32_t>(i));
  if (it == impl_->times.end()) return 0;
  const Impl::Times& times = it->second;
  const auto kept = std::lower_bound(times.kept.begin(), times.kept.end(), t) - times.kept.begin();
  return static_cast<int>(kept) + (t > times.folded_latest ? times.folded : 0);
}

std::size_t LiveTimes::kept_times() const {
  std::lock_guard lock(impl_->mu);
  std::size_t n = 0;
  for (const auto& [listing, times] : impl_->times) n += times.kept.size();
  return n;
}

// ---------------------------------------------------------------- popularity

int ListingCatalog::popularity(std::size_t i, UnixSeconds t) const {
  const auto& times = interest_times_[i];
  return static_cast<int>(std::lower_bound(times.begin(), times.end(), t) - times.begin()) +
         live_interest_.count_before(i, t);
}

void ListingCatalog::record_interest(std::size_t i, UnixSeconds t) { interest_times_[i].push_back(t); }

void ListingCatalog::finish_popularity() {
  for (auto& times : interest_times_) std::sort(times.begin(), times.end());
  for (auto& times : view_times_) std::sort(times.begin(), times.end());
}

int ListingCatalog::view_count(std::size_t i, UnixSeconds t) const {
  const auto& times = view_times_[i];
  return static_cast<int>(std::lower_bound(times.begin(), times.end(), t) - times.begin()) +
         live_views_.count_before(i, t);
}

void ListingCatalog::record_view(std::size_t i, UnixSeconds t) { view_times_[i].push_back(t); }

ListingCatalog ListingCatalog::generate(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  constexpr int kNeighbourhoods = 40, kStyles = 8, kDims = 8;
  std::normal_distribution<float> normal(0, 1);
  std::uniform_real_distribution<float> unit(0, 1);
  std::vector<float> nb_x(kNeighbourhoods), nb_y(kNeighbourhoods), nb_price(kNeighbourhoods);
  for (int k = 0; k < kNeighbourhoods; ++k) {
    nb_x[k] = unit(rng) * 20, nb_y[k] = unit(rng) * 20;
    nb_price[k] = 12.0f + 0.35f * normal(rng);
  }
  ListingCatalog c;
  c.dims_ = kDims;
  c.attributes_.resize(n * kDims);
  c.listings_.resize(n);
  for (int k = 0; k < kNeighbourhoods; ++k) c.neighbourhood_names_.push_back("nb" + std::to_string(k));
  for (int k = 0; k < kStyles; ++k) c.style_names_.push_back("style" + std::to_string(k));
  for (std::size_t i = 0; i < n; ++i) {
    Listing& l = c.listings_[i];
    l.id = listing_row_id("gen", i + 1);
    l.row = i + 1;
    l.neighbourhood = static_cast<int>(rng() % kNeighbourhoods);
    l.style = static_cast<int>(rng() % kStyles);
    l.beds = static_cast<float>(1 + rng() % 5);
    const float size = 0.3f * normal(rng) + 0.15f * (l.beds - 3);
    l.log_price = nb_price[l.neighbourhood] + 0.8f * size + 0.1f * normal(rng);
    l.price = std::exp(l.log_price);
    l.log_value = l.log_price + 0.08f * normal(rng);
    l.x_km = nb_x[l.neighbourhood] + normal(rng) * 0.5f;
    l.y_km = nb_y[l.neighbourhood] + normal(rng) * 0.5f;
    float* a = c.attributes_.data() + i * kDims;
    a[0] = size / 0.3f;
    a[1] = (l.beds - 3) / 1.4f;
    a[2] = (l.x_km - 10) / 6, a[3] = (l.y_km - 10) / 6;
    for (int d = 4; d < kDims; ++d) a[d] = normal(rng);
  }
  CatalogBuilder::index(c);
  c.described_ = std::to_string(n) + " generated listings";
  return c;
}

}  // namespace reai::property
