// BuyerPreferences: a buyer's taste as time-decayed sufficient statistics,
// updated in O(dims) per behavioural event.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <string>

#include "property/matching.h"

namespace reai::property {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
// A stated budget counts like this many views at the budget.
constexpr double kBudgetWeight = 2.0;
constexpr double kPriorSpread = 0.3;   // log-price spread before behaviour
constexpr double kSeconds = 86400.0;
constexpr std::uint8_t kSavedBit = 1, kTouredBit = 2;

}  // namespace

StatedCriteria stated_criteria(const Contact& contact) {
  StatedCriteria s;
  s.budget = contact.budget;
  s.beds = contact.beds_wanted;
  if (!contact.area_wanted.empty()) s.areas.push_back(contact.area_wanted);
  s.budget_stated_at = contact.budget_stated_at;
  return s;
}

BuyerPreferences::BuyerPreferences(const ListingCatalog& catalog, const StatedCriteria& stated,
                                   const PreferenceOptions& options)
    : options_(options) {
  restate_budget(stated.budget, stated.budget_stated_at);
  if (stated.beds) beds_wanted_ = *stated.beds;
  for (const std::string& area : stated.areas) {
    const std::vector<int> levels = catalog.neighbourhoods_named(area);
    if (levels.empty()) unknown_areas_.push_back(area);
    for (int level : levels) {
      if (!wants_area(level)) areas_wanted_.push_back(level);
    }
  }
  sattr_.assign(catalog.dims(), 0.0);
  nb_w_.assign(catalog.neighbourhood_levels(), 0.0f);
  nb_saves_.assign(catalog.neighbourhood_levels(), 0.0f);
  style_w_.assign(catalog.style_levels(), 0.0f);
}

void BuyerPreferences::decay_to(UnixSeconds ts) {
  if (last_ts_ == 0 || ts <= last_ts_ || w_ == 0) {
    last_ts_ = std::max(last_ts_, ts);
    return;
  }
  const double f = std::exp2(-(ts - last_ts_) / (options_.half_life_days * kSeconds));
  w_ *= f, sp_ *= f, spp_ *= f, sx_ *= f, sy_ *= f, sbeds_ *= f, wbeds_ *= f;
  for (auto& v : sattr_) v *= f;
  for (auto& v : nb_w_) v *= static_cast<float>(f);
  for (auto& v : nb_saves_) v *= static_cast<float>(f);
  for (auto& v : style_w_) v *= static_cast<float>(f);
  last_ts_ = ts;
}

void BuyerPreferences::observe(const ListingCatalog& catalog, std::size_t listing, EventType type, UnixSeconds ts) {
  double w = 0;
  switch (type) {
    case EventType::kPropertyView: w = options_.view_weight; break;
    case EventType::kPropertySave: w = options_.save_weight; break;
    case EventType::kTourRequest: w = options_.tour_weight; break;
    default: return;
  }
  if (listing >= catalog.size()) return;
  if (sattr_.size() != catalog.dims()) sattr_.assign(catalog.dims(), 0.0);
  if (nb_w_.size() != catalog.neighbourhood_levels()) {
    nb_w_.assign(catalog.neighbourhood_levels(), 0.0f);
    nb_saves_.assign(catalog.neighbourhood_levels(), 0.0f);
  }
  if (style_w_.size() != catalog.style_levels()) style_w_.assign(catalog.style_levels(), 0.0f);
  decay_to(ts);
  const Listing& l = catalog.listing(listing);
  const auto id = static_cast<std::uint32_t>(listing);
  const bool is_save = type != EventType::kPropertyView;
  w_ += w;
  sp_ += w * l.log_price;
  spp_ += w * double(l.log_price) * l.log_price;
  if (!std::isnan(l.x_km)) sx_ += w * l.x_km, sy_ += w * l.y_km;
  if (!std::isnan(l.beds)) sbeds_ += w * l.beds, wbeds_ += w;
  const float* a = catalog.attributes(listing);
  for (std::size_t d = 0; d < sattr_.size(); ++d) sattr_[d] += w * a[d];
  if (l.neighbourhood >= 0) {
    nb_w_[l.neighbourhood] += static_cast<float>(w);
    if (is_save) nb_saves_[l.neighbourhood] += 1.0f;
  }
  if (l.style >= 0) style_w_[l.style] += static_cast<float>(w);
  if (is_save) {
    ++saves_;
    if (has_budget() && ts > budget_stated_at_) {  // a statement ends its own second
      note_kept_since_budget(catalog, id, type == EventType::kTourRequest);
    }
    const std::uint8_t how = type == EventType::kTourRequest ? kTouredBit : kSavedBit;
    if (auto it = std::find(saved_.begin(), saved_.end(), id); it != saved_.end()) {
      kept_how_[it - saved_.begin()] |= how;
    } else {
      saved_.push_back(id);
      kept_how_.push_back(how);
    }
  } else {
    ++views_;
  }
  if (std::find(seen_.begin(), seen_.end(), id) == seen_.end()) seen_.push_back(id);
}

void BuyerPreferences::restate_budget(std::optional<double> budget, UnixSeconds ts) {
  kept_since_budget_.clear();
  if (budget && *budget > 0) {
    log_budget_ = static_cast<float>(std::log(*budget));
    budget_usd_ = *budget;
  } else {
    log_budget_ = kNaN;
    budget_usd_ = 0;
  }
  budget_stated_at_ = ts;
  update_effective_budget();
}

void BuyerPreferences::note_kept_since_budget(const ListingCatalog& catalog, std::uint32_t listing, bool toured) {
  const std::uint8_t how = toured ? kTouredBit : kSavedBit;
  for (auto& k : kept_since_budget_) {
    if (k.listing == listing) {
      k.how |= how;
      update_effective_budget();
      return;
    }
  }
  kept_since_budget_.push_back({listing, catalog.listing(listing).price, how});
  update_effective_budget();
}

// The rule of EffectiveBudget: O(n log n) in the homes kept since the
// statement (a handful), once per save or tour.
void BuyerPreferences::update_effective_budget() {
  if (!has_budget()) {
    effective_.reset();
    return;
  }
  EffectiveBudget b;
  b.stated = budget_usd_;
  b.effective = budget_usd_;
  b.kept_since = static_cast<int>(kept_since_budget_.size());
  std::vector<double> above;
  for (const auto& k : kept_since_budget_) {
    if (!(k.price > budget_usd_ * (1 + kBudgetTolerance))) continue;
    above.push_back(k.price);
    b.above.saved += (k.how & kSavedBit) != 0;
    b.above.toured += (k.how & kTouredBit) != 0;
    ++b.above.homes;
  }
  if (!above.empty()) {
    std::sort(above.begin(), above.end());
    b.above_low = above.front();
    b.above_high = above.back();
  }
  // Consistently above: enough homes, and two thirds of all kept since.
  const bool consistent = b.above.homes >= kMinHomesAboveBudget && 3 * b.above.homes >= 2 * b.kept_since;
  if (consistent) {
    const std::size_t n = above.size();
    b.effective = n % 2 == 1 ? above[n / 2] : 0.5 * (above[n / 2 - 1] + above[n / 2]);
    b.follows_behaviour = true;
  }
  effective_ = b;
}

float BuyerPreferences::log_effective_budget() const {
  return effective_ ? static_cast<float>(std::log(effective_->effective)) : kNaN;
}

std::string short_price(double usd) {
  char buf[32];
  if (!(usd > 0) || !std::isfinite(usd)) return "0";
  if (usd >= 999500) {
    std::snprintf(buf, sizeof buf, "%.3gM", usd / 1e6);
  } else if (usd >= 1000) {
    std::snprintf(buf, sizeof buf, "%ldk", std::lround(usd / 1000));
  } else {
    std::snprintf(buf, sizeof buf, "%ld", std::lround(usd));
  }
  return buf;
}

std::string_view kept_verb(const KeptHomes& k) {
  if (k.toured == 0) return "saved";
  if (k.saved == 0) return "toured";
  return k.saved == k.homes && k.toured == k.homes ? "saved and toured" : "saved or toured";
}

std::string effective_budget_why(const EffectiveBudget& budget) {
  if (!budget.follows_behaviour) return "as stated";
  const std::string low = short_price(budget.above_low), high = short_price(budget.above_high);
  const std::string range = low == high ? low : low + "-" + high;
  return "you " + std::string(kept_verb(budget.above)) + " " + std::to_string(budget.above.homes) + " homes at " + range +
         " since stating " + short_price(budget.stated);
}

float BuyerPreferences::price_level() const {
  const double bw = has_budget() ? kBudgetWeight : 0.0;
  if (bw + w_ <= 0) return kNaN;
  return static_cast<float>((bw * (has_budget() ? log_budget_ : 0.0f) + sp_) / (bw + w_));
}

float BuyerPreferences::price_tolerance() const {
  const double prior = 2.0;
  double ss = prior * kPriorSpread * kPriorSpread;
  if (w_ > 0) ss += std::max(0.0, spp_ - sp_ * sp_ / w_);
  const float tol = static_cast<float>(std::sqrt(ss / (prior + w_)));
  return std::clamp(tol, 0.12f, 0.6f);
}

float BuyerPreferences::neighbourhood_share(int level) const {
  if (level < 0 || static_cast<std::size_t>(level) >= nb_w_.size() || w_ <= 0) return 0.0f;
  return static_cast<float>(nb_w_[level] / w_);
}

float BuyerPreferences::neighbourhood_saves(int level) const {
  if (level < 0 || static_cast<std::size_t>(level) >= nb_saves_.size()) return 0.0f;
  return nb_saves_[level];
}

KeptHomes BuyerPreferences::kept_in_neighbourhood(const ListingCatalog& catalog, int level) const {
  KeptHomes k;
  if (level < 0) return k;
  for (std::size_t i = 0; i < saved_.size(); ++i) {
    if (saved_[i] >= catalog.size() || catalog.listing(saved_[i]).neighbourhood != level) continue;
    k.saved += (kept_how_[i] & kSavedBit) != 0;
    k.toured += (kept_how_[i] & kTouredBit) != 0;
    ++k.homes;
  }
  return k;
}

KeptHomes BuyerPreferences::how_kept(std::size_t listing) const {
  const auto it = std::find(saved_.begin(), saved_.end(), static_cast<std::uint32_t>(listing));
  if (it == saved_.end()) return {};
  const std::uint8_t how = kept_how_[it - saved_.begin()];
  return {(how & kSavedBit) != 0, (how & kTouredBit) != 0, 1};
}

float BuyerPreferences::style_share(int level) const {
  if (level < 0 || static_cast<std::size_t>(level) >= style_w_.size() || w_ <= 0) return 0.0f;
  return static_cast<float>(style_w_[level] / w_);
}

float BuyerPreferences::mean_beds() const { return wbeds_ > 0 ? static_cast<float>(sbeds_ / wbeds_) : kNaN; }

std::vector<float> BuyerPreferences::centroid() const {
  std::vector<float> c(sattr_.size(), 0.0f);
  if (w_ <= 0) return c;
  for (std::size_t d = 0; d < c.size(); ++d) c[d] = static_cast<float>(sattr_[d] / w_);
  return c;
}

bool BuyerPreferences::saved(std::size_t listing) const {
  return std::find(saved_.begin(), saved_.end(), static_cast<std::uint32_t>(listing)) != saved_.end();
}

bool BuyerPreferences::seen(std::size_t listing) const {
  return std::find(seen_.begin(), seen_.end(), static_cast<std::uint32_t>(listing)) != seen_.end();
}

std::vector<float> BuyerPreferences::segment_vector() const {
  const float beds = beds_wanted_ >= 0 ? static_cast<float>(beds_wanted_) : mean_beds();
  return {price_level(), centroid_x(), centroid_y(), beds};
}

// ------------------------------------------------------------- segments

int BuyerSegments::assign(const BuyerPreferences& buyer) const {
  if (centres.empty()) return -1;
  const auto v = buyer.segment_vector();
  int best = -1;
  double best_d = std::numeric_limits<double>::infinity();
  for (std::size_t k = 0; k < centres.size(); ++k) {
    double d = 0;
    int used = 0;
    for (std::size_t j = 0; j < v.size(); ++j) {
      if (std::isnan(v[j])) continue;
      const double z = (v[j] - centres[k][j]) / scale[j];
      d += z * z, ++used;
    }
    if (used == 0) return -1;
    if (d < best_d) best_d = d, best = static_cast<int>(k);
  }
  return best;
}

namespace {

using Points = std::vector<std::vector<float>>;

// The buyers with a whole segment vector (behaviour on every dimension),
// and who each is.
void segment_points(std::span<const BuyerPreferences> buyers, Points* points,
                    std::vector<const BuyerPreferences*>* owners) {
  for (const auto& b : buyers) {
    if (!b.has_centroid()) continue;
    auto v = b.segment_vector();
    if (std::any_of(v.begin(), v.end(), [](float x) { return std::isnan(x); })) continue;
    points->push_back(std::move(v));
    owners->push_back(&b);
  }
}

// Each dimension's standard deviation: price, place and beds weigh alike in
// a distance whatever their units.
std::vector<float> dimension_scales(const Points& points) {
  const std::size_t dims = points[0].size();
  std::vector<float> scale(dims, 1.0f);
  for (std::size_t j = 0; j < dims; ++j) {
    double s = 0, ss = 0;
    for (const auto& p : points) s += p[j], ss += double(p[j]) * p[j];
    const double m = s / points.size();
    scale[j] = static_cast<float>(std::sqrt(std::max(1e-6, ss / points.size() - m * m)));
  }
  return scale;
}

inline double scaled_distance(const std::vector<float>& a, const std::vector<float>& b,
                              const std::vector<float>& scale) {
  double d = 0;
  for (std::size_t j = 0; j < scale.size(); ++j) {
    const double z = (a[j] - b[j]) / scale[j];
    d += z * z;
  }
  return d;
}

// k-means++ seeding: k centres, each next one drawn with a chance in
// proportion to its squared distance from the nearest already drawn.
Points seed_centres(const Points& points, std::size_t k, const std::vector<float>& scale, std::mt19937* rng) {
  Points centres;
  centres.push_back(points[(*rng)() % points.size()]);
  std::vector<double> d2(points.size());
  while (centres.size() < k) {
    double total = 0;
    for (std::size_t i = 0; i < points.size(); ++i) {
      d2[i] = std::numeric_limits<double>::infinity();
      for (const auto& c : centres) d2[i] = std::min(d2[i], scaled_distance(points[i], c, scale));
      total += d2[i];
    }
    double r = std::uniform_real_distribution<double>(0, total)(*rng);
    std::size_t pick = 0;
    for (; pick + 1 < points.size() && r > d2[pick]; ++pick) r -= d2[pick];
    centres.push_back(points[pick]);
  }
  return centres;
}

int nearest_centre(const std::vector<float>& point, const Points& centres, const std::vector<float>& scale) {
  int best = 0;
  double bd = scaled_distance(point, centres[0], scale);
  for (std::size_t c = 1; c < centres.size(); ++c) {
    const double d = scaled_distance(point, centres[c], scale);
    if (d < bd) bd = d, best = static_cast<int>(c);
  }
  return best;
}

// Centre c moved to the mean of its members; left where it is with none.
void move_to_members_mean(const Points& points, const std::vector<int>& member, std::size_t c,
                          std::vector<float>* centre) {
  const std::size_t dims = centre->size();
  std::vector<double> sum(dims, 0);
  std::size_t cnt = 0;
  for (std::size_t i = 0; i < points.size(); ++i) {
    if (member[i] != static_cast<int>(c)) continue;
    for (std::size_t j = 0; j < dims; ++j) sum[j] += points[i][j];
    ++cnt;
  }
  if (cnt == 0) return;
  for (std::size_t j = 0; j < dims; ++j) (*centre)[j] = static_cast<float>(sum[j] / cnt);
}

// Lloyd's iterations from `centres` (at most 30, a bound on their time);
// answers each point's segment.
std::vector<int> cluster_points(const Points& points, const std::vector<float>& scale, Points* centres) {
  std::vector<int> member(points.size(), -1);
  for (int iter = 0; iter < 30; ++iter) {
    bool changed = false;
    for (std::size_t i = 0; i < points.size(); ++i) {
      const int best = nearest_centre(points[i], *centres, scale);
      if (member[i] != best) member[i] = best, changed = true;
    }
    if (!changed) break;
    for (std::size_t c = 0; c < centres->size(); ++c) move_to_members_mean(points, member, c, &(*centres)[c]);
  }
  return member;
}

// Per segment, its buyers' mean share of interest per neighbourhood level.
std::vector<std::vector<float>> segment_neighbourhoods(const ListingCatalog& catalog,
                                                       const std::vector<const BuyerPreferences*>& owners,
                                                       const std::vector<int>& member, std::size_t segments) {
  const std::size_t levels = catalog.neighbourhood_levels();
  std::vector<std::vector<float>> neighbourhood(segments, std::vector<float>(levels, 0.0f));
  std::vector<double> mass(segments, 0);
  for (std::size_t i = 0; i < owners.size(); ++i) {
    for (std::size_t l = 0; l < levels; ++l) {
      neighbourhood[member[i]][l] += owners[i]->neighbourhood_share(static_cast<int>(l));
    }
    mass[member[i]] += 1;
  }
  for (std::size_t c = 0; c < segments; ++c) {
    if (mass[c] <= 0) continue;
    for (auto& v : neighbourhood[c]) v = static_cast<float>(v / mass[c]);
  }
  return neighbourhood;
}

}  // namespace

BuyerSegments fit_segments(const ListingCatalog& catalog, std::span<const BuyerPreferences> buyers, int k,
                           unsigned seed) {
  BuyerSegments seg;
  Points points;
  std::vector<const BuyerPreferences*> owners;
  segment_points(buyers, &points, &owners);
  if (points.size() < static_cast<std::size_t>(std::max(k, 1)) * 5 || k <= 0) return seg;
  seg.scale = dimension_scales(points);
  std::mt19937 rng(seed);
  seg.centres = seed_centres(points, static_cast<std::size_t>(k), seg.scale, &rng);
  const std::vector<int> member = cluster_points(points, seg.scale, &seg.centres);
  seg.neighbourhood = segment_neighbourhoods(catalog, owners, member, seg.centres.size());
  return seg;
}

}  // namespace reai::property
