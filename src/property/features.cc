#include "property/features.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

namespace reai::property {
namespace json = boost::json;
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr std::size_t kMaxTargetEncoded = 8;
constexpr int kTargetEncodingMinLevels = 10;
constexpr double kTargetSmoothing = 10.0;
constexpr double kRankSmoothing = 5.0;
constexpr double kRotations[] = {15, 30, 45, 60};

bool has_any(const std::vector<std::string>& tokens, std::initializer_list<std::string_view> words) {
  for (const auto& t : tokens) {
    for (auto w : words) {
      if (t == w) return true;
    }
  }
  return false;
}

bool is_area_name(const std::vector<std::string>& t) {
  return has_any(t, {"sf", "sqft", "sqm", "area", "footage", "feet", "living", "square", "size", "m2"}) &&
         !has_any(t, {"lot", "land", "garage", "pool", "porch", "deck", "vnr", "veneer", "misc", "fin", "unf",
                      "low", "frontage", "price", "per", "yard", "patio", "site", "acre", "acres"});
}

bool is_basement_name(const std::vector<std::string>& t) { return has_any(t, {"bsmt", "basement"}); }

bool is_year_name(const std::vector<std::string>& t) {
  return has_any(t, {"year", "yr", "yearbuilt", "yrbuilt", "yearsold", "yrsold"});
}

std::string normalize_level(std::string_view level) {
  std::string out;
  for (char ch : level) {
    if (std::isalnum(static_cast<unsigned char>(ch))) out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
  }
  return out;
}

// The better of two candidates for one role: fewer name tokens, then no
// digits ("sqft_living" over "sqft_living15").
int pick_simplest(const Schema& schema, const std::vector<int>& candidates) {
  int best = -1;
  std::size_t best_score = 0;
  for (int c : candidates) {
    const auto& name = schema.columns[c].name;
    const std::size_t digits = static_cast<std::size_t>(
        std::count_if(name.begin(), name.end(), [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); }));
    const std::size_t score = name_tokens(name).size() * 10 + digits * 100;
    if (best < 0 || score < best_score) best = c, best_score = score;
  }
  return best;
}

float safe_log(float v) { return v > 0 ? std::log(v) : kNaN; }

}  // namespace

float quality_ordinal(std::string_view level) {
  const std::string w = normalize_level(level);
  struct Word {
    std::string_view text;
    float value;
  };
  static constexpr Word kWords[] = {
      {"verypoor", 1}, {"poor", 2}, {"po", 2}, {"fair", 3}, {"fa", 3}, {"belowaverage", 4},
      {"mn", 4}, {"minimum", 4}, {"no", 3}, {"average", 5}, {"av", 5}, {"avg", 5}, {"typical", 5},
      {"ta", 5}, {"typ", 5}, {"aboveaverage", 6}, {"good", 7}, {"gd", 7}, {"verygood", 8},
      {"excellent", 9}, {"ex", 9}, {"exc", 9}, {"veryexcellent", 10}, {"superior", 10}};
  for (const auto& word : kWords) {
    if (w == word.text) return word.value;
  }
  // "No_Basement", "No Garage", "None": the feature is absent.
  if (w == "none" || (level.size() > 3 && (level[0] == 'N' || level[0] == 'n') && (level[1] == 'o' || level[1] == 'O') &&
                      (level[2] == '_' || level[2] == ' ' || level[2] == '-'))) {
    return 0;
  }
  return kNaN;
}

RawMatrix encode_table(const Schema& schema, const SalesTable& table, std::span<const std::size_t> rows) {
  RawMatrix raw;
  raw.rows = rows.size();
  raw.cols = schema.columns.size();
  raw.values.resize(raw.rows * raw.cols);
  std::vector<int> cell_of(schema.columns.size(), -1);
  for (std::size_t c = 0; c < schema.columns.size(); ++c) {
    for (std::size_t h = 0; h < table.header.size(); ++h) {
      if (table.header[h] == schema.columns[c].name) {
        cell_of[c] = static_cast<int>(h);
        break;
      }
    }
  }
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& cells = table.rows[rows[i]];
    for (std::size_t c = 0; c < raw.cols; ++c) {
      raw.values[i * raw.cols + c] = cell_of[c] < 0 ? kNaN : encode_cell(schema.columns[c], cells[cell_of[c]]);
    }
  }
  return raw;
}

std::vector<int> assign_folds(std::size_t n, int folds, unsigned seed) {
  std::vector<int> fold(n);
  for (std::size_t i = 0; i < n; ++i) fold[i] = static_cast<int>(i % static_cast<std::size_t>(folds));
  std::mt19937 rng(seed);
  std::shuffle(fold.begin(), fold.end(), rng);
  return fold;
}

LevelMeans level_means(std::span<const float> codes, std::span<const float> values, std::size_t levels,
                       std::span<const int> folds, int exclude_fold, double smoothing) {
  std::vector<double> sum(levels, 0.0), count(levels, 0.0);
  double total = 0, total_count = 0;
  for (std::size_t i = 0; i < codes.size(); ++i) {
    if (exclude_fold >= 0 && folds[i] == exclude_fold) continue;
    if (std::isnan(values[i])) continue;
    total += values[i];
    total_count += 1;
    if (std::isnan(codes[i])) continue;
    const auto level = static_cast<std::size_t>(codes[i]);
    if (level >= levels) continue;
    sum[level] += values[i];
    count[level] += 1;
  }
  LevelMeans out;
  out.prior = total_count > 0 ? static_cast<float>(total / total_count) : kNaN;
  out.mean.resize(levels);
  for (std::size_t l = 0; l < levels; ++l) {
    out.mean[l] = static_cast<float>((sum[l] + smoothing * out.prior) / (count[l] + smoothing));
  }
  return out;
}

namespace {

// Keeps the K smallest distances sorted; most candidates fail the first test.
template <int K>
struct TopK {
  float d[K];
  int index[K];
  int found = 0;
  void offer(float dist, int i) {
    if (found == K && dist >= d[K - 1]) return;
    int pos = found < K ? found++ : K - 1;
    while (pos > 0 && d[pos - 1] > dist) {
      d[pos] = d[pos - 1];
      index[pos] = index[pos - 1];
      --pos;
    }
    d[pos] = dist;
    index[pos] = i;
  }
};

void sort_by_x(KnnPoints* p) {
  std::vector<std::size_t> order(p->x.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return p->x[a] < p->x[b]; });
  auto permute = [&](auto& v) {
    auto copy = v;
    for (std::size_t k = 0; k < order.size(); ++k) v[k] = copy[order[k]];
  };
  permute(p->x), permute(p->y), permute(p->log_price), permute(p->log_price_per_area), permute(p->fold);
  permute(p->log_area), permute(p->year_built);
  if (!p->row.empty()) permute(p->row);
  if (!p->residual.empty()) permute(p->residual);
}

// Comparable-sales distance units: 0.5 km, 20% of floor area, 15 years.
constexpr float kCompKm2 = 1 / 0.25f;
constexpr float kCompArea = 1 / 0.2f;
constexpr float kCompYears = 1 / 15.0f;

}  // namespace

Neighbours find_neighbours(const KnnPoints& points, float x, float y, float log_area, float year_built,
                           int exclude_fold) {
  Neighbours out;
  if (std::isnan(x) || std::isnan(y)) return out;
  TopK<kWide> near;
  TopK<kComps> comps;
  const bool with_comps = !std::isnan(log_area) && !points.log_area.empty();
  const bool with_year = !std::isnan(year_built) && !points.year_built.empty();
  // Points are sorted by x: sweep right then left from the query and stop
  // once the x gap alone exceeds both current k-th best distances.
  auto visit = [&](std::size_t i, float dx) {
    if (points.fold[i] == exclude_fold) return;
    const float dy = points.y[i] - y;
    const float d = dx * dx + dy * dy;
    near.offer(d, static_cast<int>(i));
    if (!with_comps) return;
    const float da = (points.log_area[i] - log_area) * kCompArea;
    if (std::isnan(da)) return;
    float dyear = with_year ? (points.year_built[i] - year_built) * kCompYears : 0.0f;
    if (std::isnan(dyear)) dyear = 0;
    comps.offer(d * kCompKm2 + da * da + dyear * dyear, static_cast<int>(i));
  };
  auto bound = [&] {
    const float inf = std::numeric_limits<float>::infinity();
    const float b_near = near.found == kWide ? near.d[kWide - 1] : inf;
    const float b_comps = !with_comps ? 0.0f : comps.found == kComps ? comps.d[kComps - 1] / kCompKm2 : inf;
    return std::max(b_near, b_comps);
  };
  const std::size_t n = points.x.size();
  const auto start = static_cast<std::size_t>(std::lower_bound(points.x.begin(), points.x.end(), x) - points.x.begin());
  for (std::size_t i = start; i < n; ++i) {
    const float dx = points.x[i] - x;
    if (dx * dx > bound()) break;
    visit(i, dx);
  }
  for (std::size_t i = start; i-- > 0;) {
    const float dx = points.x[i] - x;
    if (dx * dx > bound()) break;
    visit(i, dx);
  }
  out.near_found = near.found;
  std::copy_n(near.index, near.found, out.near);
  if (near.found >= kNear) out.near_d2_k = near.d[kNear - 1];
  out.comps_found = comps.found;
  std::copy_n(comps.index, comps.found, out.comps);
  return out;
}

NeighbourPrices neighbour_prices(const KnnPoints& points, const Neighbours& found, float log_area) {
  NeighbourPrices out{kNaN, kNaN, kNaN, kNaN, kNaN};
  if (found.near_found < kNear) return out;
  double sum_near = 0, sum_wide = 0, ppa = 0;
  int ppa_count = 0;
  for (int k = 0; k < found.near_found; ++k) {
    const float lp = points.log_price[found.near[k]];
    sum_wide += lp;
    if (k < kNear) {
      sum_near += lp;
      const float p = points.log_price_per_area[found.near[k]];
      if (!std::isnan(p)) ppa += p, ++ppa_count;
    }
  }
  out.mean_near = static_cast<float>(sum_near / kNear);
  out.mean_wide = found.near_found == kWide ? static_cast<float>(sum_wide / kWide) : kNaN;
  out.ppa_near = ppa_count >= kNear / 2 ? static_cast<float>(ppa / ppa_count) : kNaN;
  out.log_distance = std::log(std::sqrt(found.near_d2_k) + 0.01f);
  if (found.comps_found >= kComps / 2) {
    double c = 0;
    for (int k = 0; k < found.comps_found; ++k) c += points.log_price_per_area[found.comps[k]];
    out.comps = static_cast<float>(c / found.comps_found) + log_area;
  }
  return out;
}

void neighbour_residuals(const Neighbours& found, std::span<const float> residual, float* out) {
  auto mean_of = [&](const int* index, int count, int need) {
    if (count < need) return kNaN;
    double sum = 0;
    for (int k = 0; k < count; ++k) sum += residual[static_cast<std::size_t>(index[k])];
    return static_cast<float>(sum / count);
  };
  out[0] = mean_of(found.near, std::min(found.near_found, kNear), kNear);
  out[1] = found.near_found == kWide ? mean_of(found.near, kWide, kWide) : kNaN;
  out[2] = mean_of(found.comps, found.comps_found, kComps / 2);
}

struct FeaturePlan::Context {
  float te_mean[kMaxTargetEncoded];
  float te_ppa[kMaxTargetEncoded];
  NeighbourPrices neighbours;
};

void FeaturePlan::add_feature(std::string name, std::vector<int> sources) {
  names_.push_back(std::move(name));
  sources_.push_back(std::move(sources));
}

void FeaturePlan::set_role_flags() {
  has_area_ = !living_.empty();
  has_age_ = year_built_ >= 0 && year_sold_ >= 0;
  has_remod_ = remod_ >= 0 && year_sold_ >= 0;
  has_baths_ = bath_full_.size() + bath_half_.size() >= 2;
  has_knn_ = lon_ >= 0 && lat_ >= 0;
}

float FeaturePlan::total_area(const float* raw) const {
  if (!has_area_) return kNaN;
  float sum = 0;
  bool any = false;
  for (int c : living_) {
    if (!std::isnan(raw[c])) sum += raw[c], any = true;
  }
  if (!any) return kNaN;
  if (basement_ >= 0 && !std::isnan(raw[basement_])) sum += raw[basement_];
  return sum;
}

void FeaturePlan::project(const float* raw, float* x, float* y) const {
  *x = raw[lon_] * lon_scale_;
  *y = raw[lat_] * 111.0f;
}

namespace {

// One column of the raw matrix.
std::vector<float> column_values(const RawMatrix& raw, int c) {
  std::vector<float> v(raw.rows);
  for (std::size_t i = 0; i < raw.rows; ++i) v[i] = raw.row(i)[c];
  return v;
}

// Quality words (Ex, Gd, TA, ...) as ordinals when they name at least two
// levels and 95% of the present cells; empty otherwise.
std::vector<float> quality_codes(const ColumnSchema& col, const std::vector<float>& codes) {
  std::vector<std::size_t> level_count(col.levels.size(), 0);
  for (float code : codes) {
    if (!std::isnan(code)) ++level_count[static_cast<std::size_t>(code)];
  }
  std::size_t known = 0, present = 0, known_levels = 0;
  std::vector<float> ordinal(col.levels.size());
  for (std::size_t l = 0; l < col.levels.size(); ++l) {
    ordinal[l] = quality_ordinal(col.levels[l]);
    present += level_count[l];
    if (!std::isnan(ordinal[l])) {
      known += level_count[l];
      if (ordinal[l] > 0) ++known_levels;
    }
  }
  if (known_levels >= 2 && known >= 0.95 * static_cast<double>(present)) return ordinal;
  return {};
}

// Levels ranked by their smoothed mean log price, so trees split them
// like numbers.
std::vector<float> price_rank_codes(const ColumnSchema& col, const std::vector<float>& codes,
                                    std::span<const float> log_price) {
  const std::vector<int> no_folds(codes.size(), 0);
  const LevelMeans means = level_means(codes, log_price, col.levels.size(), no_folds, -1, kRankSmoothing);
  std::vector<std::size_t> order(col.levels.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return means.mean[a] < means.mean[b]; });
  std::vector<float> rank(col.levels.size());
  for (std::size_t r = 0; r < order.size(); ++r) rank[order[r]] = static_cast<float>(r);
  return rank;
}

}  // namespace

// Columns that may play each role, from their names and kinds; the plan
// then picks one (or a set) per role.
struct FeaturePlan::RoleCandidates {
  std::vector<int> living_named, area_cols, floors, basement_cols, built, sold, remod;
  std::vector<int> bath_full, bath_half;
  int lon = -1, lat = -1;
};

FeaturePlan::RoleCandidates FeaturePlan::role_candidates(const Schema& schema) {
  RoleCandidates r;
  for (std::size_t ci = 0; ci < schema.columns.size(); ++ci) {
    const int c = static_cast<int>(ci);
    const auto& col = schema.columns[ci];
    const auto t = name_tokens(col.name);
    if (col.kind == ColumnKind::kLongitude && r.lon < 0) r.lon = c;
    if (col.kind == ColumnKind::kLatitude && r.lat < 0) r.lat = c;
    const bool numeric = col.kind == ColumnKind::kNumeric;
    const bool time_like = numeric || col.kind == ColumnKind::kDate;
    if (numeric && is_area_name(t)) {
      if (is_basement_name(t)) {
        r.basement_cols.push_back(c);
      } else if (has_any(t, {"liv", "living"})) {
        r.living_named.push_back(c);
      } else if (has_any(t, {"flr", "floor"})) {
        r.floors.push_back(c);
      } else if (!has_any(t, {"above", "abv", "upper", "bedroom", "rooms", "room"})) {
        r.area_cols.push_back(c);
      }
    }
    if (numeric && has_any(t, {"bath", "baths", "bathroom", "bathrooms", "bth"})) {
      (has_any(t, {"half", "hbath"}) ? r.bath_half : r.bath_full).push_back(c);
    }
    if (time_like && (has_any(t, {"built", "build", "constructed", "construction", "yearbuilt", "yrbuilt"}))) {
      r.built.push_back(c);
    } else if (time_like && has_any(t, {"remod", "remodel", "remodeled", "renovated", "renov", "renovation"})) {
      r.remod.push_back(c);
    } else if (is_sale_time_column(col.name, col.kind)) {
      r.sold.push_back(c);
    }
  }
  return r;
}

bool is_sale_time_column(std::string_view name, ColumnKind kind) {
  const auto t = name_tokens(name);
  return (kind == ColumnKind::kDate && has_any(t, {"sold", "sale", "date", "closed", "close"})) ||
         (kind == ColumnKind::kNumeric && is_year_name(t) && has_any(t, {"sold", "sale", "yearsold", "yrsold"}));
}

int sale_month_column(const Schema& schema) {
  for (std::size_t c = 0; c < schema.columns.size(); ++c) {
    const auto& col = schema.columns[c];
    const auto t = name_tokens(col.name);
    if (col.kind == ColumnKind::kNumeric && has_any(t, {"mo", "month", "mosold"}) &&
        has_any(t, {"sold", "sale", "mosold"})) {
      return static_cast<int>(c);
    }
  }
  return -1;
}

void FeaturePlan::choose_roles(const Schema& schema, const RoleCandidates& r) {
  lon_ = r.lon;
  lat_ = r.lat;
  bath_full_ = r.bath_full;
  bath_half_ = r.bath_half;
  if (!r.living_named.empty()) {
    living_ = {pick_simplest(schema, r.living_named)};
  } else if (!r.floors.empty()) {
    living_ = r.floors;
  } else if (!r.area_cols.empty()) {
    living_ = {pick_simplest(schema, r.area_cols)};
  }
  if (!r.basement_cols.empty()) {
    std::vector<int> totals;
    for (int c : r.basement_cols) {
      if (has_any(name_tokens(schema.columns[c].name), {"total", "tot"})) totals.push_back(c);
    }
    basement_ = pick_simplest(schema, totals.empty() ? r.basement_cols : totals);
  }
  if (!r.built.empty()) year_built_ = pick_simplest(schema, r.built);
  if (!r.sold.empty()) year_sold_ = pick_simplest(schema, r.sold);
  if (!r.remod.empty()) remod_ = pick_simplest(schema, r.remod);
  set_role_flags();
}

void FeaturePlan::code_levels(const Schema& schema, const RawMatrix& raw, std::span<const float> log_price) {
  std::vector<std::pair<std::size_t, int>> te_candidates;
  for (std::size_t c = 0; c < columns_; ++c) {
    const auto& col = schema.columns[c];
    if (col.kind != ColumnKind::kCategorical) continue;
    const auto codes = column_values(raw, static_cast<int>(c));
    level_code_[c] = quality_codes(col, codes);
    if (!level_code_[c].empty()) continue;
    level_code_[c] = price_rank_codes(col, codes, log_price);
    if (static_cast<int>(col.levels.size()) >= kTargetEncodingMinLevels) te_candidates.push_back({col.levels.size(), static_cast<int>(c)});
  }
  // The columns with the most levels gain most from target encoding.
  std::sort(te_candidates.rbegin(), te_candidates.rend());
  for (std::size_t k = 0; k < te_candidates.size() && k < kMaxTargetEncoded; ++k) te_columns_.push_back(te_candidates[k].second);
  std::sort(te_columns_.begin(), te_columns_.end());
}

void FeaturePlan::list_features(const Schema& schema) {
  for (std::size_t c = 0; c < columns_; ++c) add_feature(schema.columns[c].name, {static_cast<int>(c)});
  std::vector<int> area_sources = living_;
  if (basement_ >= 0) area_sources.push_back(basement_);
  if (has_area_) add_feature("total_area", area_sources);
  if (has_age_) add_feature("age_at_sale", {year_built_, year_sold_});
  if (has_remod_) add_feature("years_since_remodel", {remod_, year_sold_});
  if (has_baths_) {
    std::vector<int> baths = bath_full_;
    baths.insert(baths.end(), bath_half_.begin(), bath_half_.end());
    add_feature("total_bathrooms", baths);
  }
  for (int c : te_columns_) {
    add_feature("te_" + schema.columns[c].name, {c});
    if (has_area_) {
      std::vector<int> s = area_sources;
      s.push_back(c);
      add_feature("te_value_per_area_" + schema.columns[c].name, s);
    }
  }
  if (has_knn_) {
    const std::vector<int> coords = {lon_, lat_};
    for (double deg : kRotations) add_feature("rotated_" + std::to_string(static_cast<int>(deg)), coords);
    add_feature("knn8_log_price", coords);
    add_feature("knn25_log_price", coords);
    add_feature("knn8_log_distance", coords);
    if (has_area_) {
      std::vector<int> s = area_sources;
      s.insert(s.end(), coords.begin(), coords.end());
      add_feature("knn8_value_from_area", s);
      if (year_built_ >= 0) s.push_back(year_built_);
      add_feature("comparable_sales_value", s);
    }
  }
}

std::vector<float> FeaturePlan::log_price_per_area(const RawMatrix& raw, std::span<const float> log_price) const {
  std::vector<float> ppa(raw.rows, kNaN);
  for (std::size_t i = 0; i < raw.rows; ++i) ppa[i] = log_price[i] - safe_log(total_area(raw.row(i)));
  return ppa;
}

void FeaturePlan::fit_target_encodings(const Schema& schema, const RawMatrix& raw, std::span<const float> log_price,
                                       std::span<const float> ppa) {
  const std::vector<int> no_folds(raw.rows, 0);
  for (int c : te_columns_) {
    const auto codes = column_values(raw, c);
    const std::size_t levels = schema.columns[c].levels.size();
    te_mean_.push_back(level_means(codes, log_price, levels, no_folds, -1, kTargetSmoothing));
    te_ppa_.push_back(level_means(codes, ppa, levels, no_folds, -1, kTargetSmoothing));
  }
}

void FeaturePlan::fit_knn_points(const RawMatrix& raw, std::span<const float> log_price, std::span<const float> ppa,
                                 std::span<const int> folds) {
  double lat_sum = 0;
  std::size_t lat_count = 0;
  for (std::size_t i = 0; i < raw.rows; ++i) {
    if (!std::isnan(raw.row(i)[lat_])) lat_sum += raw.row(i)[lat_], ++lat_count;
  }
  const double lat0 = lat_count ? lat_sum / lat_count : 0;
  lon_scale_ = static_cast<float>(111.0 * std::cos(lat0 * M_PI / 180.0));
  for (std::size_t i = 0; i < raw.rows; ++i) {
    float x = 0, y = 0;
    project(raw.row(i), &x, &y);
    if (std::isnan(x) || std::isnan(y)) continue;
    knn_.x.push_back(x);
    knn_.y.push_back(y);
    knn_.log_price.push_back(log_price[i]);
    knn_.log_price_per_area.push_back(ppa[i]);
    knn_.log_area.push_back(safe_log(total_area(raw.row(i))));
    knn_.year_built.push_back(year_built_of(raw.row(i)));
    knn_.fold.push_back(folds[i]);
    knn_.row.push_back(static_cast<int>(i));
  }
  sort_by_x(&knn_);
}

void FeaturePlan::write_training_features(const Schema& schema, const RawMatrix& raw, std::span<const float> log_price,
                                          std::span<const float> ppa, std::span<const int> folds,
                                          std::vector<float>* out) const {
  const std::size_t n = raw.rows;
  const int num_folds = folds.empty() ? 0 : *std::max_element(folds.begin(), folds.end()) + 1;
  std::vector<std::vector<LevelMeans>> oof_mean(num_folds), oof_ppa(num_folds);
  for (int f = 0; f < num_folds; ++f) {
    for (int c : te_columns_) {
      const auto codes = column_values(raw, c);
      const std::size_t levels = schema.columns[c].levels.size();
      oof_mean[f].push_back(level_means(codes, log_price, levels, folds, f, kTargetSmoothing));
      oof_ppa[f].push_back(level_means(codes, ppa, levels, folds, f, kTargetSmoothing));
    }
  }
  const std::size_t width = num_features();
  out->assign(n * width, kNaN);
  for (std::size_t i = 0; i < n; ++i) {
    const float* r = raw.row(i);
    Context ctx;
    for (std::size_t k = 0; k < te_columns_.size(); ++k) {
      const float code = r[te_columns_[k]];
      const auto& m = oof_mean[folds[i]][k];
      const auto& p = oof_ppa[folds[i]][k];
      ctx.te_mean[k] = std::isnan(code) ? m.prior : m.mean[static_cast<std::size_t>(code)];
      ctx.te_ppa[k] = std::isnan(code) ? p.prior : p.mean[static_cast<std::size_t>(code)];
    }
    if (has_knn_) {
      float x = 0, y = 0;
      project(r, &x, &y);
      ctx.neighbours = nearest_prices(knn_, x, y, safe_log(total_area(r)), year_built_of(r), folds[i]);
    }
    build_with(r, ctx, out->data() + i * width);
  }
}

FeaturePlan FeaturePlan::fit(const Schema& schema, const RawMatrix& raw, std::span<const float> log_price,
                             std::span<const int> folds, std::vector<float>* train_features) {
  FeaturePlan plan;
  plan.columns_ = schema.columns.size();
  plan.level_code_.resize(plan.columns_);
  plan.choose_roles(schema, role_candidates(schema));
  // Categorical codes: quality words become ordinals; other levels are ranked
  // by their smoothed mean price so trees split them like numbers.
  plan.code_levels(schema, raw, log_price);
  plan.list_features(schema);
  // Per-row log price per area, the comparables' unit value.
  const std::vector<float> ppa = plan.log_price_per_area(raw, log_price);
  // Location encodings on all rows (for prediction) ...
  plan.fit_target_encodings(schema, raw, log_price, ppa);
  if (plan.has_knn_) plan.fit_knn_points(raw, log_price, ppa, folds);
  // ... and out-of-fold for the training rows themselves.
  plan.write_training_features(schema, raw, log_price, ppa, folds, train_features);
  return plan;
}

void FeaturePlan::full_context(const float* raw, Context* ctx, Neighbours* neighbours) const {
  for (std::size_t k = 0; k < te_columns_.size(); ++k) {
    const float code = raw[te_columns_[k]];
    const auto& m = te_mean_[k];
    const auto& p = te_ppa_[k];
    const bool known = !std::isnan(code) && static_cast<std::size_t>(code) < m.mean.size();
    ctx->te_mean[k] = known ? m.mean[static_cast<std::size_t>(code)] : m.prior;
    ctx->te_ppa[k] = known ? p.mean[static_cast<std::size_t>(code)] : p.prior;
  }
  if (has_knn_) {
    float x = 0, y = 0;
    project(raw, &x, &y);
    const float log_area = safe_log(total_area(raw));
    const Neighbours found = find_neighbours(knn_, x, y, log_area, year_built_of(raw), -1);
    ctx->neighbours = neighbour_prices(knn_, found, log_area);
    if (neighbours != nullptr) *neighbours = found;
  }
}

void FeaturePlan::build(const float* raw, float* out, Neighbours* neighbours) const {
  Context ctx;
  full_context(raw, &ctx, neighbours);
  build_with(raw, ctx, out);
}

void FeaturePlan::set_hedonic_residuals(std::span<const float> full, const std::vector<std::vector<float>>& by_fold) {
  if (!has_knn_ || knn_.row.size() != knn_.x.size()) return;
  has_residuals_ = true;
  knn_.residual.resize(knn_.x.size());
  knn_.fold_residual.assign(by_fold.size(), std::vector<float>(knn_.x.size()));
  for (std::size_t p = 0; p < knn_.x.size(); ++p) {
    const auto i = static_cast<std::size_t>(knn_.row[p]);
    knn_.residual[p] = full[i];
    for (std::size_t f = 0; f < by_fold.size(); ++f) knn_.fold_residual[f][p] = by_fold[f][i];
  }
}

std::vector<float> FeaturePlan::training_residual_features(const RawMatrix& raw, std::span<const int> folds) const {
  std::vector<float> out(raw.rows * kResidualFeatures, kNaN);
  if (!has_residuals_) return out;
  for (std::size_t i = 0; i < raw.rows; ++i) {
    const float* r = raw.row(i);
    float x = 0, y = 0;
    project(r, &x, &y);
    const Neighbours found = find_neighbours(knn_, x, y, safe_log(total_area(r)), year_built_of(r), folds[i]);
    neighbour_residuals(found, knn_.fold_residual[static_cast<std::size_t>(folds[i])], out.data() + i * kResidualFeatures);
  }
  return out;
}

void FeaturePlan::residual_features(const Neighbours& neighbours, float* out) const {
  if (!has_residuals_) return;
  neighbour_residuals(neighbours, knn_.residual, out);
}

void FeaturePlan::build_with(const float* raw, const Context& ctx, float* out) const {
  std::size_t k = 0;
  for (std::size_t c = 0; c < columns_; ++c) {
    const float v = raw[c];
    if (level_code_[c].empty() || std::isnan(v)) {
      out[k++] = v;
    } else {
      const auto level = static_cast<std::size_t>(v);
      out[k++] = level < level_code_[c].size() ? level_code_[c][level] : kNaN;
    }
  }
  const float area = total_area(raw);
  const float log_area = safe_log(area);
  if (has_area_) out[k++] = area;
  if (has_age_) out[k++] = raw[year_sold_] - raw[year_built_];
  if (has_remod_) out[k++] = raw[year_sold_] - raw[remod_];
  if (has_baths_) {
    float baths = 0;
    bool any = false;
    for (int c : bath_full_) {
      if (!std::isnan(raw[c])) baths += raw[c], any = true;
    }
    for (int c : bath_half_) {
      if (!std::isnan(raw[c])) baths += 0.5f * raw[c], any = true;
    }
    out[k++] = any ? baths : kNaN;
  }
  for (std::size_t t = 0; t < te_columns_.size(); ++t) {
    out[k++] = ctx.te_mean[t];
    if (has_area_) out[k++] = ctx.te_ppa[t] + log_area;
  }
  if (has_knn_) {
    float x = 0, y = 0;
    project(raw, &x, &y);
    for (double deg : kRotations) {
      const double rad = deg * M_PI / 180.0;
      out[k++] = static_cast<float>(x * std::cos(rad) + y * std::sin(rad));
    }
    out[k++] = ctx.neighbours.mean_near;
    out[k++] = ctx.neighbours.mean_wide;
    out[k++] = ctx.neighbours.log_distance;
    if (has_area_) {
      out[k++] = ctx.neighbours.ppa_near + log_area;
      out[k++] = ctx.neighbours.comps;
    }
  }
}

namespace {

json::array floats_to_json(const std::vector<float>& v) {
  json::array a;
  a.reserve(v.size());
  for (float f : v) {
    if (std::isnan(f)) {
      a.emplace_back(nullptr);
    } else {
      a.emplace_back(static_cast<double>(f));
    }
  }
  return a;
}

json::array ints_to_json(const std::vector<int>& v) {
  json::array a;
  for (int i : v) a.emplace_back(i);
  return a;
}

Result<std::vector<float>> floats_from_json(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_array()) return invalid_argument("model.json: missing array " + std::string(key));
  std::vector<float> out;
  out.reserve(v->get_array().size());
  for (const auto& e : v->get_array()) {
    if (e.is_null()) {
      out.push_back(kNaN);
    } else if (e.is_number()) {
      out.push_back(static_cast<float>(e.to_number<double>()));
    } else {
      return invalid_argument("model.json: non-number in " + std::string(key));
    }
  }
  return out;
}

Result<std::vector<int>> ints_from_json(const json::object& o, std::string_view key, int limit) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr || !v->is_array()) return invalid_argument("model.json: missing array " + std::string(key));
  std::vector<int> out;
  for (const auto& e : v->get_array()) {
    if (!e.is_int64()) return invalid_argument("model.json: non-integer in " + std::string(key));
    const auto i = e.get_int64();
    if (i < -1 || i >= limit) return invalid_argument("model.json: index out of range in " + std::string(key));
    out.push_back(static_cast<int>(i));
  }
  return out;
}

// level_code: one array per schema column (empty unless categorical).
Result<std::vector<std::vector<float>>> level_codes_from_json(const json::object& o, std::size_t schema_columns) {
  const json::value* codes = o.if_contains("level_code");
  if (codes == nullptr || !codes->is_array() || codes->get_array().size() != schema_columns) {
    return invalid_argument("model.json: level_code does not match the schema");
  }
  std::vector<std::vector<float>> level_code;
  for (const auto& c : codes->get_array()) {
    if (!c.is_array()) return invalid_argument("model.json: bad level_code");
    auto v = floats_from_json(json::object{{"v", c}}, "v");
    if (!v) return v.status();
    level_code.push_back(std::move(*v));
  }
  return level_code;
}

// The schema columns that play a role in the derived features, as saved.
struct SavedRoles {
  std::vector<int> living, bath_full, bath_half;
  std::vector<int> roles;  // basement, year built, year sold, remodel, longitude, latitude
  std::vector<int> te_columns;
};

Result<SavedRoles> roles_from_json(const json::object& o, int limit) {
  auto living = ints_from_json(o, "living", limit);
  auto bath_full = ints_from_json(o, "bath_full", limit);
  auto bath_half = ints_from_json(o, "bath_half", limit);
  auto roles = ints_from_json(o, "roles", limit);
  auto te_columns = ints_from_json(o, "te_columns", limit);
  for (const auto* r : {&living, &bath_full, &bath_half, &roles, &te_columns}) {
    if (!*r) return r->status();
  }
  if (roles->size() != 6 || te_columns->size() > kMaxTargetEncoded) return invalid_argument("model.json: bad roles");
  return SavedRoles{std::move(*living), std::move(*bath_full), std::move(*bath_half), std::move(*roles),
                    std::move(*te_columns)};
}

// te: per target-encoded column, its level means of log price and of log
// price per area with their priors.
Status target_encodings_from_json(const json::object& o, std::size_t te_columns, std::vector<LevelMeans>* te_mean,
                                  std::vector<LevelMeans>* te_ppa) {
  const json::value* te = o.if_contains("te");
  if (te == nullptr || !te->is_array() || te->get_array().size() != te_columns) {
    return invalid_argument("model.json: bad target encodings");
  }
  for (const auto& e : te->get_array()) {
    if (!e.is_object()) return invalid_argument("model.json: bad target encoding");
    const auto& t = e.get_object();
    auto mean = floats_from_json(t, "mean");
    auto ppa = floats_from_json(t, "ppa");
    if (!mean) return mean.status();
    if (!ppa) return ppa.status();
    auto prior = floats_from_json(json::object{{"v", json::array{t.at("prior"), t.at("ppa_prior")}}}, "v");
    if (!prior) return prior.status();
    te_mean->push_back({std::move(*mean), (*prior)[0]});
    te_ppa->push_back({std::move(*ppa), (*prior)[1]});
  }
  return Status::ok();
}

// knn: the training sales' points, sorted by x as nearest_prices() needs.
Result<KnnPoints> knn_from_json(const json::object& o) {
  const json::value* knn = o.if_contains("knn");
  if (knn == nullptr || !knn->is_object()) return invalid_argument("model.json: missing knn");
  auto kx = floats_from_json(knn->get_object(), "x");
  auto ky = floats_from_json(knn->get_object(), "y");
  auto kp = floats_from_json(knn->get_object(), "log_price");
  auto ka = floats_from_json(knn->get_object(), "log_price_per_area");
  auto kla = floats_from_json(knn->get_object(), "log_area");
  auto kyb = floats_from_json(knn->get_object(), "year_built");
  for (const auto* r : {&kx, &ky, &kp, &ka, &kla, &kyb}) {
    if (!*r) return r->status();
  }
  if (ky->size() != kx->size() || kp->size() != kx->size() || ka->size() != kx->size() ||
      kla->size() != kx->size() || kyb->size() != kx->size()) {
    return invalid_argument("model.json: knn arrays differ in size");
  }
  const std::size_t points = kx->size();
  KnnPoints k;
  k.x = std::move(*kx);
  k.y = std::move(*ky);
  k.log_price = std::move(*kp);
  k.log_price_per_area = std::move(*ka);
  k.fold.assign(points, 0);
  k.log_area = std::move(*kla);
  k.year_built = std::move(*kyb);
  // Models saved before the spatial residual features have none.
  if (knn->get_object().contains("residual")) {
    auto kr = floats_from_json(knn->get_object(), "residual");
    if (!kr) return kr.status();
    if (kr->size() != points && !kr->empty()) return invalid_argument("model.json: knn arrays differ in size");
    k.residual = std::move(*kr);
  }
  if (!std::is_sorted(k.x.begin(), k.x.end())) sort_by_x(&k);
  return k;
}

// One feature as saved: its name and the schema columns it reads.
struct SavedFeature {
  std::string name;
  std::vector<int> sources;
};

Result<std::vector<SavedFeature>> features_from_json(const json::object& o, int limit) {
  const json::value* names = o.if_contains("names");
  const json::value* sources = o.if_contains("sources");
  if (names == nullptr || !names->is_array() || sources == nullptr || !sources->is_array() ||
      names->get_array().size() != sources->get_array().size()) {
    return invalid_argument("model.json: missing feature names");
  }
  std::vector<SavedFeature> features;
  for (std::size_t k = 0; k < names->get_array().size(); ++k) {
    const auto& name = names->get_array()[k];
    const auto& src = sources->get_array()[k];
    if (!name.is_string() || !src.is_array()) return invalid_argument("model.json: bad feature name");
    auto ids = ints_from_json(json::object{{"v", src}}, "v", limit);
    if (!ids) return ids.status();
    features.push_back({std::string(name.get_string()), std::move(*ids)});
  }
  return features;
}

}  // namespace

json::object FeaturePlan::to_json() const {
  json::object o;
  json::array codes;
  for (const auto& c : level_code_) codes.push_back(floats_to_json(c));
  o["level_code"] = std::move(codes);
  o["living"] = ints_to_json(living_);
  o["bath_full"] = ints_to_json(bath_full_);
  o["bath_half"] = ints_to_json(bath_half_);
  o["roles"] = ints_to_json({basement_, year_built_, year_sold_, remod_, lon_, lat_});
  o["lon_scale"] = lon_scale_;
  o["te_columns"] = ints_to_json(te_columns_);
  json::array te;
  for (std::size_t k = 0; k < te_columns_.size(); ++k) {
    te.push_back(json::object{{"mean", floats_to_json(te_mean_[k].mean)},
                              {"prior", te_mean_[k].prior},
                              {"ppa", floats_to_json(te_ppa_[k].mean)},
                              {"ppa_prior", std::isnan(te_ppa_[k].prior) ? json::value(nullptr) : json::value(te_ppa_[k].prior)}});
  }
  o["te"] = std::move(te);
  o["knn"] = json::object{{"x", floats_to_json(knn_.x)},
                          {"y", floats_to_json(knn_.y)},
                          {"log_price", floats_to_json(knn_.log_price)},
                          {"log_price_per_area", floats_to_json(knn_.log_price_per_area)},
                          {"log_area", floats_to_json(knn_.log_area)},
                          {"year_built", floats_to_json(knn_.year_built)},
                          {"residual", floats_to_json(knn_.residual)}};
  json::array names, sources;
  for (std::size_t k = 0; k < names_.size(); ++k) {
    names.emplace_back(names_[k]);
    sources.push_back(ints_to_json(sources_[k]));
  }
  o["names"] = std::move(names);
  o["sources"] = std::move(sources);
  return o;
}

Result<FeaturePlan> FeaturePlan::from_json(const json::object& o, std::size_t schema_columns) {
  FeaturePlan plan;
  plan.columns_ = schema_columns;
  const int limit = static_cast<int>(schema_columns);
  auto level_code = level_codes_from_json(o, schema_columns);
  if (!level_code) return level_code.status();
  plan.level_code_ = std::move(*level_code);
  auto roles = roles_from_json(o, limit);
  if (!roles) return roles.status();
  plan.living_ = roles->living;
  plan.bath_full_ = roles->bath_full;
  plan.bath_half_ = roles->bath_half;
  plan.basement_ = roles->roles[0], plan.year_built_ = roles->roles[1], plan.year_sold_ = roles->roles[2];
  plan.remod_ = roles->roles[3], plan.lon_ = roles->roles[4], plan.lat_ = roles->roles[5];
  plan.te_columns_ = roles->te_columns;
  const json::value* scale = o.if_contains("lon_scale");
  if (scale == nullptr || !scale->is_number()) return invalid_argument("model.json: missing lon_scale");
  plan.lon_scale_ = static_cast<float>(scale->to_number<double>());
  if (Status te = target_encodings_from_json(o, plan.te_columns_.size(), &plan.te_mean_, &plan.te_ppa_); !te) {
    return te;
  }
  auto knn = knn_from_json(o);
  if (!knn) return knn.status();
  plan.knn_ = std::move(*knn);
  plan.set_role_flags();
  plan.has_residuals_ = plan.has_knn_ && !plan.knn_.residual.empty();
  auto features = features_from_json(o, limit);
  if (!features) return features.status();
  for (auto& f : *features) plan.add_feature(std::move(f.name), std::move(f.sources));
  return plan;
}

}  // namespace reai::property
