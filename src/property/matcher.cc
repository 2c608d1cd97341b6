// Matcher: candidate filtering, buyer-listing features, ranking, diversity
// and reasons; and the history builder used for training and evaluation.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
#include <unordered_map>

#include "core/tenant_id.h"
#include "property/matching.h"

namespace reai::property {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr std::size_t kSimilarSeen = 30;  // most recent homes compared for similarity

enum Feature : int {
  kPriceGap = 0,
  kPriceGapZ,
  kBudgetGap,
  kNeighbourhoodShare,
  kNeighbourhoodSaves,
  kAreaMatch,
  kSegmentShare,
  kBedsGapStated,
  kBedsGapSeen,
  kStyleShare,
  kGeoKm,
  kCentroidSimilarity,
  kMaxSimilaritySeen,
  kMaxSimilaritySaved,
  kSeenBefore,
  kPopularity,
  kValueGap,
  kBuyerViews,
  kBuyerSaves,
  kPriceTolerance,
  kLogPrice,
  kViewPopularity,
  kSaveRate,
  kKernelSeen,
  kGeoKernelSeen,
  kFeatureCount
};

const char* const kFeatureNames[kFeatureCount] = {
    "price_gap",        "price_gap_z",       "budget_gap",          "neighbourhood_share",
    "neighbourhood_saves", "area_match",     "segment_share",       "beds_gap_stated",
    "beds_gap_seen",    "style_share",       "geo_km",              "centroid_similarity",
    "max_similarity_seen", "max_similarity_saved", "seen_before",  "popularity",
    "value_gap",        "buyer_views",       "buyer_saves",         "price_tolerance",
    "log_price",        "view_popularity",   "save_rate",           "kernel_seen",
    "geo_kernel_seen"};

float similarity(const float* a, const float* b, std::size_t dims) {
  if (dims == 0) return kNaN;
  float s = 0;
  for (std::size_t d = 0; d < dims; ++d) {
    const float z = a[d] - b[d];
    s += z * z;
  }
  return -s / static_cast<float>(dims);
}

// Per-query constants of the content score, computed once per top_k.
struct Query {
  float level = 0, tol = 0.5f;
  std::vector<float> nb_share, style_share, segment_share;
  int beds_wanted = -1;
  std::vector<char> area_wanted;  // per neighbourhood level: one of the stated areas
  float cx = kNaN, cy = kNaN;
  bool behaviour = false;
};

Query make_query(const ListingCatalog& catalog, const BuyerPreferences& buyer, const BuyerSegments* segments) {
  Query q;
  q.level = buyer.price_level();
  q.tol = buyer.price_tolerance();
  if (std::isnan(q.level)) {
    // Nothing known: the middle of the market, wide tolerance.
    const auto& order = catalog.by_price();
    q.level = order.empty() ? 0.0f : catalog.listing(order[order.size() / 2]).log_price;
    q.tol = 0.6f;
  }
  q.behaviour = buyer.has_centroid();
  q.nb_share.resize(catalog.neighbourhood_levels());
  for (std::size_t l = 0; l < q.nb_share.size(); ++l) q.nb_share[l] = buyer.neighbourhood_share(static_cast<int>(l));
  q.style_share.resize(catalog.style_levels());
  for (std::size_t l = 0; l < q.style_share.size(); ++l) q.style_share[l] = buyer.style_share(static_cast<int>(l));
  if (segments != nullptr) {
    const int s = segments->assign(buyer);
    if (s >= 0) q.segment_share = segments->neighbourhood[s];
  }
  q.beds_wanted = buyer.beds_wanted();
  q.area_wanted.assign(catalog.neighbourhood_levels(), 0);
  for (int level : buyer.areas_wanted()) q.area_wanted[level] = 1;
  q.cx = buyer.centroid_x(), q.cy = buyer.centroid_y();
  return q;
}

// The hand-built content scorer: Gaussian price fit, neighbourhood and
// style affinity from behaviour, stated area and beds, segment prior for
// buyers without behaviour. Also stage 1 of the learned ranker.
float content_score(const Query& q, const Listing& l) {
  const float gap = (l.log_price - q.level) / q.tol;
  float s = -0.5f * gap * gap;
  if (l.neighbourhood >= 0) {
    if (!q.nb_share.empty()) s += 2.5f * q.nb_share[l.neighbourhood];
    if (q.area_wanted[l.neighbourhood]) s += 0.8f;
    if (!q.behaviour && !q.segment_share.empty()) s += 2.0f * q.segment_share[l.neighbourhood];
  }
  if (l.style >= 0 && !q.style_share.empty()) s += 0.6f * q.style_share[l.style];
  if (q.beds_wanted >= 0 && !std::isnan(l.beds)) s -= 0.3f * std::fabs(l.beds - static_cast<float>(q.beds_wanted));
  if (!std::isnan(q.cx) && !std::isnan(l.x_km)) {
    const float dx = l.x_km - q.cx, dy = l.y_km - q.cy;
    s -= 0.15f * std::sqrt(dx * dx + dy * dy);
  }
  return s;
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// A home at most this much over the stated budget is "within budget" (it is
// met up to kBudgetTolerance over it, or over the effective budget).
constexpr double kWithinBudget = 0.02;

// How a listing stands against what the buyer stated: in one of the stated
// areas (also true when no area is stated or none of the stated ones is in
// the catalog: unknown_areas are not matched on), and how far over the
// stated and the effective budget its price is (fractions, negative under
// it; NaN without a budget).
struct StatedFit {
  bool in_area = true;
  double over_budget = std::numeric_limits<double>::quiet_NaN();
  double over_effective = std::numeric_limits<double>::quiet_NaN();
  bool within_tolerance() const { return !(over_effective > kBudgetTolerance); }
  // Stated criteria the listing misses: 0, 1 or 2. Listings that miss fewer
  // always rank first (top_k).
  int misses() const { return static_cast<int>(!in_area) + static_cast<int>(!within_tolerance()); }
};

StatedFit stated_fit(const ListingCatalog& catalog, const BuyerPreferences& buyer, std::size_t listing) {
  const Listing& l = catalog.listing(listing);
  StatedFit fit;
  fit.in_area = buyer.areas_wanted().empty() || buyer.wants_area(l.neighbourhood);
  if (const auto& budget = buyer.effective_budget()) {
    fit.over_budget = l.price / budget->stated - 1;
    fit.over_effective = l.price / budget->effective - 1;
  }
  return fit;
}

bool has_hard_criteria(const BuyerPreferences& buyer) { return buyer.has_budget() || !buyer.areas_wanted().empty(); }

std::string percent(double fraction) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%ld%%", std::lround(std::fabs(fraction) * 100));
  return buf;
}

std::string pretty(std::string name) {
  std::replace(name.begin(), name.end(), '_', ' ');
  return name;
}

// The kept home most similar to `listing` (the one kMaxSimilaritySaved
// measured): how the buyer kept it.
KeptHomes most_similar_kept(const ListingCatalog& catalog, const BuyerPreferences& buyer, std::size_t listing) {
  const float* a = catalog.attributes(listing);
  float best = 0;
  std::optional<std::uint32_t> best_id;
  for (std::uint32_t id : buyer.saved_listings()) {
    if (id == listing) continue;
    const float s = similarity(a, catalog.attributes(id), catalog.dims());
    if (!std::isnan(s) && (!best_id || s > best)) best = s, best_id = id;
  }
  return best_id ? buyer.how_kept(*best_id) : KeptHomes{};
}

// "outside North Ames", "outside Edwards and Gilbert", "outside the 3 areas
// you asked for": a home shown although it is in none of the stated areas.
std::string outside_areas(const ListingCatalog& catalog, const BuyerPreferences& buyer) {
  const auto& areas = buyer.areas_wanted();
  if (areas.size() == 1) return "outside " + pretty(catalog.neighbourhood_name(areas[0]));
  if (areas.size() == 2) {
    return "outside " + pretty(catalog.neighbourhood_name(areas[0])) + " and " +
           pretty(catalog.neighbourhood_name(areas[1]));
  }
  return "outside the " + std::to_string(areas.size()) + " areas you asked for";
}

// "within budget", "8% over budget", or for a home the buyer's behaviour
// let in: "over your stated 120k, like the 3 homes you saved at 150k-170k".
std::string budget_reason(const EffectiveBudget& budget, const StatedFit& fit) {
  if (fit.over_budget <= kWithinBudget) return "within budget";
  if (!budget.follows_behaviour || !fit.within_tolerance()) return percent(fit.over_budget) + " over budget";
  const std::string low = short_price(budget.above_low), high = short_price(budget.above_high);
  return "over your stated " + short_price(budget.stated) + ", like the " + std::to_string(budget.above.homes) +
         " homes you " + std::string(kept_verb(budget.above)) + " at " + (low == high ? low : low + "-" + high);
}

std::vector<std::string> make_reasons(const ListingCatalog& catalog, const BuyerPreferences& buyer,
                                      std::size_t listing, const float* f) {
  const Listing& l = catalog.listing(listing);
  std::vector<std::string> reasons;
  // What the buyer stated comes first, and a home that misses it says so
  // (these two are never cut by the limit of three).
  const StatedFit fit = stated_fit(catalog, buyer, listing);
  if (const auto& budget = buyer.effective_budget()) {
    reasons.push_back(budget_reason(*budget, fit));
  } else if (std::fabs(f[kPriceGap]) < 0.1f && buyer.has_centroid()) {
    reasons.push_back("priced like the homes you view");
  }
  if (!fit.in_area) reasons.push_back(outside_areas(catalog, buyer));
  const std::string nb = pretty(catalog.neighbourhood_name(l.neighbourhood));
  const KeptHomes kept_here = buyer.kept_in_neighbourhood(catalog, l.neighbourhood);
  if (!nb.empty()) {
    if (kept_here.homes > 0) {
      reasons.push_back("in " + nb + " like " + std::to_string(kept_here.homes) +
                        (kept_here.homes == 1 ? " home you " : " homes you ") + std::string(kept_verb(kept_here)));
    } else if (f[kNeighbourhoodShare] >= 0.2f) {
      reasons.push_back("in " + nb + ", where you have been looking");
    } else if (f[kAreaMatch] == 1.0f) {
      reasons.push_back("in " + nb + ", the area you asked for");
    }
  }
  if (buyer.beds_wanted() >= 0 && l.beds == static_cast<float>(buyer.beds_wanted())) {
    reasons.push_back(std::to_string(buyer.beds_wanted()) + " bedrooms as you asked");
  }
  // "Estimated value" always means the AVM valuation the match carries, in
  // the same rounding as its competitiveness text (inventory.h
  // assess_price). A listing without one may still be cheap against the
  // catalog's comparables estimate, and is then said to be so in those words.
  const std::size_t reasons_before_value = reasons.size();
  if (l.appraised_value > 0) {
    const double gap = (l.price - l.appraised_value) / l.appraised_value;
    if (gap <= -0.05) reasons.push_back("priced " + percent(gap) + " under its estimated value");
  } else if (!std::isnan(f[kValueGap]) && f[kValueGap] < -0.05f) {
    reasons.push_back("priced " + percent(std::exp(f[kValueGap]) - 1) + " under comparable homes");
  }
  const bool under_value = reasons.size() > reasons_before_value;
  const std::size_t value_reason = reasons_before_value;
  if (!std::isnan(f[kMaxSimilaritySaved]) && f[kMaxSimilaritySaved] > -0.3f) {
    const KeptHomes similar = most_similar_kept(catalog, buyer, listing);
    if (similar.homes > 0) reasons.push_back("similar to a home you " + std::string(kept_verb(similar)));
  }
  if (f[kPopularity] >= std::log1p(3.0f)) {
    reasons.push_back("saved by " + std::to_string(static_cast<int>(std::lround(std::expm1(f[kPopularity])))) +
                      " other buyers");
  }
  // A bargain is worth saying: it keeps its place among the three kept.
  if (under_value && value_reason >= 3) std::swap(reasons[2], reasons[value_reason]);
  if (reasons.size() > 3) reasons.resize(3);
  return reasons;
}

// Near-copies: same neighbourhood and style, within 5% in price and close in
// every attribute on average.
bool near_copy(const ListingCatalog& catalog, std::uint32_t a, std::uint32_t b) {
  const Listing& x = catalog.listing(a);
  const Listing& y = catalog.listing(b);
  if (x.neighbourhood != y.neighbourhood || x.style != y.style) return false;
  if (std::fabs(x.log_price - y.log_price) > 0.05f) return false;
  const float s = similarity(catalog.attributes(a), catalog.attributes(b), catalog.dims());
  return std::isnan(s) || s > -0.15f;
}

// Stage 1: the `pool` listings with the best content score among those
// whose log price lies in a band (and, with the beds filter, whose beds are
// within 2 of the stated beds), without scanning the band. Each bucket of
// the candidate index is read outwards from the buyer's price level by two
// cursors; every row's score is at most its bucket's bound (the price term
// at the cursor's gap, the bucket's neighbourhood bonus, the best style
// bonus, the least beds and distance penalties its ranges allow), and rows
// further from the level score no better, so the cursors are taken best
// bound first and the search stops when the weakest pooled score beats
// every remaining bound: the same pool as scoring the whole band, reading
// only the rows that could enter it. kMaxRows caps the rows read per
// search, so no query costs more than that however loose the bounds are.
class CandidateSearch {
 public:
  static constexpr std::size_t kMaxRows = 24000;

  CandidateSearch(const ListingCatalog::CandidateIndex& index, const Query& q, std::size_t nb_levels,
                  std::size_t style_levels, const BuyerPreferences& buyer)
      : ix_(index), q_(q), buyer_(buyer) {
    // Dense per-level bonuses: the same terms as content_score().
    nb_bonus_.assign(nb_levels + 1, 0.0f);
    for (std::size_t l = 0; l < nb_levels; ++l) {
      float b = q.nb_share.empty() ? 0.0f : 2.5f * q.nb_share[l];
      if (q.area_wanted[l]) b += 0.8f;
      if (!q.behaviour && !q.segment_share.empty()) b += 2.0f * q.segment_share[l];
      nb_bonus_[l + 1] = b;
    }
    style_bonus_.assign(style_levels + 1, 0.0f);
    for (std::size_t l = 0; l < style_levels; ++l) {
      style_bonus_[l + 1] = q.style_share.empty() ? 0.0f : 0.6f * q.style_share[l];
      max_style_ = std::max(max_style_, style_bonus_[l + 1]);
    }
    inv_tol_ = 1.0f / q.tol;
  }

  // With `areas` (a flag per neighbourhood level), only rows of those
  // neighbourhoods are read.
  void run(float lo, float hi, bool filter_beds, std::size_t pool, const std::vector<char>* areas = nullptr) {
    pool_.clear();
    cursors_.clear();
    rows_read_ = 0;
    if (pool == 0) return;
    const bool beds = q_.beds_wanted >= 0;
    const float wanted = static_cast<float>(q_.beds_wanted);
    const bool geo = !std::isnan(q_.cx);
    for (const auto& b : ix_.buckets) {
      if (areas != nullptr && (b.neighbourhood < 0 || !(*areas)[b.neighbourhood])) continue;
      float fixed = nb_bonus_[b.neighbourhood + 1] + max_style_;
      if (beds && !std::isnan(b.min_beds)) {
        const float gap = wanted < b.min_beds ? b.min_beds - wanted : wanted > b.max_beds ? wanted - b.max_beds : 0.0f;
        if (filter_beds && gap > 2) continue;  // no row of the bucket passes
        fixed -= 0.3f * gap;
      }
      if (geo && !std::isnan(b.min_x)) {
        const float dx = std::max({b.min_x - q_.cx, 0.0f, q_.cx - b.max_x});
        const float dy = std::max({b.min_y - q_.cy, 0.0f, q_.cy - b.max_y});
        fixed -= 0.15f * std::sqrt(dx * dx + dy * dy);
      }
      // Rows [begin, end) of the bucket inside [lo, hi]; split at the level.
      const auto first = ix_.log_price.begin();
      const auto from = std::lower_bound(first + b.begin, first + b.end, lo) - first;
      const auto to = std::upper_bound(first + from, first + b.end, hi) - first;
      if (from >= to) continue;
      const auto mid = std::lower_bound(first + from, first + to, q_.level) - first;
      const auto row = [](std::ptrdiff_t v) { return static_cast<std::uint32_t>(v); };
      push_cursor({0, fixed, row(mid), row(to), b.neighbourhood, false, filter_beds});
      push_cursor({0, fixed, row(mid), row(from), b.neighbourhood, true, filter_beds});
    }
    while (!cursors_.empty() && rows_read_ < kMaxRows) {
      if (pool_.size() >= pool && cursors_.front().bound <= pool_.front().first) break;
      std::pop_heap(cursors_.begin(), cursors_.end(), by_bound);
      Cursor c = cursors_.back();
      cursors_.pop_back();
      const std::uint32_t r = c.down ? c.next - 1 : c.next;
      score_row(r, c.neighbourhood, c.filter_beds, pool);
      c.next = c.down ? c.next - 1 : c.next + 1;
      push_cursor(c);
    }
  }

  // Candidates kept by the last run().
  std::size_t found() const { return pool_.size(); }

  // The pool, best first (ties by catalog index).
  std::vector<std::uint32_t> best() {
    std::sort(pool_.begin(), pool_.end(), better);
    std::vector<std::uint32_t> out(pool_.size());
    for (std::size_t i = 0; i < pool_.size(); ++i) out[i] = pool_[i].second;
    return out;
  }

 private:
  struct Cursor {
    float bound;      // best score any row left in this cursor can reach
    float fixed;      // the bucket's part of the bound
    std::uint32_t next, stop;  // next row to read (down: next - 1) and where to stop
    std::int32_t neighbourhood;
    bool down;
    bool filter_beds;
  };
  static bool by_bound(const Cursor& a, const Cursor& b) { return a.bound < b.bound; }

  void push_cursor(Cursor c) {
    if (c.next == c.stop) return;
    const std::uint32_t r = c.down ? c.next - 1 : c.next;
    const float gap = (ix_.log_price[r] - q_.level) * inv_tol_;
    // A hair of slack for float rounding between the bound and the score.
    c.bound = -0.5f * gap * gap + c.fixed + 1e-4f;
    cursors_.push_back(c);
    std::push_heap(cursors_.begin(), cursors_.end(), by_bound);
  }

  // The same arithmetic as the full scan this replaces (content_score()).
  void score_row(std::uint32_t r, std::int32_t neighbourhood, bool filter_beds, std::size_t pool) {
    ++rows_read_;
    const float bed_gap = std::fabs(ix_.beds[r] - static_cast<float>(q_.beds_wanted));
    if (filter_beds && bed_gap > 2) return;  // NaN beds pass
    const float gap = (ix_.log_price[r] - q_.level) * inv_tol_;
    float s = -0.5f * gap * gap + nb_bonus_[neighbourhood + 1] + style_bonus_[ix_.style[r] + 1];
    if (q_.beds_wanted >= 0 && bed_gap == bed_gap) s -= 0.3f * bed_gap;
    if (!std::isnan(q_.cx) && ix_.x_km[r] == ix_.x_km[r]) {
      const float dx = ix_.x_km[r] - q_.cx, dy = ix_.y_km[r] - q_.cy;
      s -= 0.15f * std::sqrt(dx * dx + dy * dy);
    }
    const std::uint32_t listing = ix_.listing[r];
    if (pool_.size() >= pool && !better({s, listing}, pool_.front())) return;
    if (buyer_.saved(listing)) return;  // saved listings never come back
    if (pool_.size() >= pool) {
      std::pop_heap(pool_.begin(), pool_.end(), better);
      pool_.pop_back();
    }
    pool_.emplace_back(s, listing);
    std::push_heap(pool_.begin(), pool_.end(), better);
  }

  // Higher score, then the lower catalog index (as sorting the scan did).
  // As a heap order it keeps the weakest candidate on top.
  static bool better(const std::pair<float, std::uint32_t>& a, const std::pair<float, std::uint32_t>& b) {
    return a.first != b.first ? a.first > b.first : a.second < b.second;
  }

  const ListingCatalog::CandidateIndex& ix_;
  const Query& q_;
  const BuyerPreferences& buyer_;
  std::vector<float> nb_bonus_, style_bonus_;
  float max_style_ = 0, inv_tol_ = 1;
  std::vector<Cursor> cursors_;
  std::vector<std::pair<float, std::uint32_t>> pool_;  // min-heap by worse()
  std::size_t rows_read_ = 0;
};

}  // namespace

std::vector<std::string> match_feature_names() { return {std::begin(kFeatureNames), std::end(kFeatureNames)}; }
std::size_t match_feature_count() { return kFeatureCount; }

void match_features(const ListingCatalog& catalog, const BuyerPreferences& buyer, std::size_t listing,
                    UnixSeconds now, std::span<const float> segment_shares, float* out) {
  const Listing& l = catalog.listing(listing);
  float level = buyer.price_level();
  const float tol = buyer.price_tolerance();
  out[kPriceGap] = std::isnan(level) ? kNaN : l.log_price - level;
  out[kPriceGapZ] = std::isnan(level) ? kNaN : std::fabs(l.log_price - level) / tol;
  out[kBudgetGap] = buyer.has_budget() ? l.log_price - buyer.log_budget() : kNaN;
  out[kNeighbourhoodShare] = buyer.has_centroid() ? buyer.neighbourhood_share(l.neighbourhood) : kNaN;
  out[kNeighbourhoodSaves] = buyer.neighbourhood_saves(l.neighbourhood);
  out[kAreaMatch] = buyer.areas_wanted().empty() || l.neighbourhood < 0 ? kNaN
                                                                        : static_cast<float>(buyer.wants_area(l.neighbourhood));
  out[kSegmentShare] = segment_shares.empty() || l.neighbourhood < 0 ? kNaN : segment_shares[l.neighbourhood];
  out[kBedsGapStated] = buyer.beds_wanted() < 0 ? kNaN : l.beds - static_cast<float>(buyer.beds_wanted());
  out[kBedsGapSeen] = l.beds - buyer.mean_beds();
  out[kStyleShare] = buyer.has_centroid() ? buyer.style_share(l.style) : kNaN;
  const float cx = buyer.centroid_x(), cy = buyer.centroid_y();
  out[kGeoKm] = std::isnan(cx) || std::isnan(l.x_km) ? kNaN : std::hypot(l.x_km - cx, l.y_km - cy);
  const float* a = catalog.attributes(listing);
  const std::size_t dims = catalog.dims();
  if (buyer.has_centroid()) {
    const auto c = buyer.centroid();
    out[kCentroidSimilarity] = similarity(a, c.data(), dims);
  } else {
    out[kCentroidSimilarity] = kNaN;
  }
  float best_seen = kNaN, best_saved = kNaN, kernel = 0, geo_kernel = 0;
  int compared = 0;
  const auto& seen = buyer.seen_listings();
  const std::size_t from = seen.size() > kSimilarSeen ? seen.size() - kSimilarSeen : 0;
  for (std::size_t i = from; i < seen.size(); ++i) {
    if (seen[i] == listing) continue;
    const float s = similarity(a, catalog.attributes(seen[i]), dims);
    if (std::isnan(best_seen) || s > best_seen) best_seen = s;
    if (!std::isnan(s)) kernel += std::exp(2.0f * s);
    const Listing& o = catalog.listing(seen[i]);
    if (!std::isnan(o.x_km) && !std::isnan(l.x_km)) {
      const float dx = o.x_km - l.x_km, dy = o.y_km - l.y_km;
      geo_kernel += std::exp(-(dx * dx + dy * dy));
    }
    ++compared;
  }
  out[kKernelSeen] = compared > 0 ? kernel / compared : kNaN;
  out[kGeoKernelSeen] = compared > 0 ? geo_kernel / compared : kNaN;
  for (std::uint32_t s_id : buyer.saved_listings()) {
    if (s_id == listing) continue;
    const float s = similarity(a, catalog.attributes(s_id), dims);
    if (std::isnan(best_saved) || s > best_saved) best_saved = s;
  }
  out[kMaxSimilaritySeen] = best_seen;
  out[kMaxSimilaritySaved] = best_saved;
  out[kSeenBefore] = static_cast<float>(buyer.seen(listing));
  out[kPopularity] = std::log1p(static_cast<float>(catalog.popularity(listing, now)));
  out[kValueGap] = std::isnan(l.log_value) ? kNaN : l.log_price - l.log_value;
  out[kBuyerViews] = std::log1p(static_cast<float>(buyer.views()));
  out[kBuyerSaves] = static_cast<float>(buyer.saves());
  out[kPriceTolerance] = tol;
  out[kLogPrice] = l.log_price;
  const int views = catalog.view_count(listing, now);
  out[kViewPopularity] = std::log1p(static_cast<float>(views));
  out[kSaveRate] = (static_cast<float>(catalog.popularity(listing, now)) + 0.5f) / (static_cast<float>(views) + 10.0f);
  (void)level;
}

Matcher::Matcher(const ListingCatalog& catalog, std::shared_ptr<const MatchModel> model)
    : catalog_(&catalog), model_(std::move(model)) {
  if (model_) segments_ = model_->segments_for(catalog);
}

const BuyerSegments* Matcher::segments() const { return segments_.centres.empty() ? nullptr : &segments_; }

std::vector<std::uint32_t> Matcher::candidates(const BuyerPreferences& buyer, UnixSeconds /*now*/,
                                               std::size_t pool) const {
  const Query q = make_query(*catalog_, buyer, segments());
  const float half = std::max(0.4f, 2.0f * q.tol);
  CandidateSearch search(catalog_->candidate_index(), q, catalog_->neighbourhood_levels(), catalog_->style_levels(), buyer);
  search.run(q.level - half, q.level + half, q.beds_wanted >= 0, pool);
  // Too few inside the filters (a small or thin market): widen to every
  // price without the beds filter rather than return a short list. Only
  // then: listings outside the band crowd out better ones when the band
  // already holds a fair pool. The widened search is bounded the same way.
  constexpr std::size_t kMinPool = 64;
  const std::size_t wanted_pool = std::min({pool, catalog_->size(), kMinPool});
  const auto [begin, end] = catalog_->price_range(q.level - half, q.level + half);
  if (search.found() < wanted_pool && (end - begin < catalog_->size() || q.beds_wanted >= 0)) {
    const float inf = std::numeric_limits<float>::infinity();
    search.run(-inf, inf, false, pool);
  }
  return search.best();
}

namespace {

// The neighbourhood shares of the buyer's segment, or empty when the model
// has no segments or the buyer fits none.
std::span<const float> segment_shares_of(const BuyerSegments* segments, const BuyerPreferences& buyer) {
  if (segments == nullptr) return {};
  const int s = segments->assign(buyer);
  if (s < 0) return {};
  return segments->neighbourhood[s];
}

// (-margin, index into pool) of every candidate, best first (ties by pool
// order); fills each candidate's feature row in `features`.
std::vector<std::pair<double, std::size_t>> rank_pool(const ListingCatalog& catalog, const MatchModel* model,
                                                      const BuyerPreferences& buyer, UnixSeconds now,
                                                      std::span<const std::uint32_t> pool,
                                                      std::span<const float> segment_shares,
                                                      std::vector<float>& features) {
  const std::size_t nf = match_feature_count();
  std::vector<std::pair<double, std::size_t>> ranked(pool.size());
  const Query q = model ? Query{} : make_query(catalog, buyer, nullptr);
  for (std::size_t i = 0; i < pool.size(); ++i) {
    float* f = features.data() + i * nf;
    match_features(catalog, buyer, pool[i], now, segment_shares, f);
    // Without a model: the content score, with homes already seen pushed
    // down (buyers rarely come back to a home they passed on).
    const double margin = model ? model->margin(f) : content_score(q, catalog.listing(pool[i])) - 1.0 * f[kSeenBefore];
    ranked[i] = {-margin, i};
  }
  std::sort(ranked.begin(), ranked.end());
  return ranked;
}

// Indices into pool of the options.k best, taking `ranked` (best first
// within each tier, tiers in order) a tier at a time. With diversify, a
// near-copy of a home already chosen is deferred and only fills places its
// tier leaves over: a near-copy that meets the stated criteria still comes
// before a home that misses them.
struct Picks {
  std::vector<std::size_t> chosen, deferred;
};

Picks pick_best(const ListingCatalog& catalog, std::span<const std::uint32_t> pool,
                std::span<const std::pair<double, std::size_t>> ranked, std::span<const int> tier_of,
                const MatchOptions& options) {
  Picks picks;
  std::size_t from = 0;
  while (from < ranked.size() && picks.chosen.size() < options.k) {
    const int tier = tier_of[ranked[from].second];
    std::size_t to = from;
    while (to < ranked.size() && tier_of[ranked[to].second] == tier) ++to;
    std::vector<std::size_t> deferred;
    for (std::size_t r = from; r < to && picks.chosen.size() < options.k; ++r) {
      const std::size_t i = ranked[r].second;
      const bool copy = options.diversify && std::any_of(picks.chosen.begin(), picks.chosen.end(), [&](std::size_t c) {
                          return near_copy(catalog, pool[c], pool[i]);
                        });
      (copy ? deferred : picks.chosen).push_back(i);
    }
    for (std::size_t i : deferred) {
      if (picks.chosen.size() >= options.k) break;
      picks.chosen.push_back(i);
      picks.deferred.push_back(i);
    }
    from = to;
  }
  return picks;
}

// Tier first; within it best margin first, but near-copies that were
// deferred stay behind the diverse picks.
void order_picks(Picks& picks, const std::vector<double>& margin_of, std::span<const int> tier_of) {
  const auto& deferred = picks.deferred;
  std::stable_sort(picks.chosen.begin(), picks.chosen.end(), [&](std::size_t a, std::size_t b) {
    if (tier_of[a] != tier_of[b]) return tier_of[a] < tier_of[b];
    const bool da = std::find(deferred.begin(), deferred.end(), a) != deferred.end();
    const bool db = std::find(deferred.begin(), deferred.end(), b) != deferred.end();
    if (da != db) return !da;
    return margin_of[a] > margin_of[b];
  });
}

// Stage 1 for a buyer who stated an area or a budget: the `pool` best
// listings by the content score among those that meet both (in a stated
// area, priced at most kBudgetTolerance over the effective budget). First from the
// bottom of the usual price band up, with the beds filter (as
// Matcher::candidates reads: the pools the ranker learned from; on history
// this ranks better than reading every cheaper home too); when that holds
// fewer than a fair pool, at every price under the budget tolerance, and
// without the beds filter when even that leaves fewer than `k`.
std::vector<std::uint32_t> qualifying_candidates(const ListingCatalog& catalog, const Query& q,
                                                 const BuyerPreferences& buyer, std::size_t pool, std::size_t k) {
  constexpr std::size_t kMinPool = 64;
  const float inf = std::numeric_limits<float>::infinity();
  const float hi =
      buyer.has_budget() ? buyer.log_effective_budget() + static_cast<float>(std::log1p(kBudgetTolerance)) : inf;
  const std::vector<char>* areas = buyer.areas_wanted().empty() ? nullptr : &q.area_wanted;
  CandidateSearch search(catalog.candidate_index(), q, catalog.neighbourhood_levels(), catalog.style_levels(), buyer);
  const float half = std::max(0.4f, 2.0f * q.tol);
  search.run(q.level - half, hi, q.beds_wanted >= 0, pool, areas);
  if (search.found() >= std::min(pool, kMinPool)) return search.best();
  search.run(-inf, hi, q.beds_wanted >= 0, pool, areas);
  if (search.found() < k && q.beds_wanted >= 0) search.run(-inf, hi, false, pool, areas);
  return search.best();
}

Match match_of(const ListingCatalog& catalog, const MatchModel* model, const BuyerPreferences& buyer,
               std::uint32_t listing, double margin, const float* features, bool reasons) {
  Match m;
  m.listing = listing;
  if (model) {
    m.predicted_interest = model->interest(margin);
    m.match_score = model->score(margin);
  } else {
    // Content scorer: a documented monotone squashing, not a calibrated
    // probability (train a model for calibrated interest).
    m.match_score = sigmoid(margin);
    m.predicted_interest = 0.05 * sigmoid(margin - 1.0);
  }
  if (reasons) m.reasons = make_reasons(catalog, buyer, listing, features);
  return m;
}

}  // namespace

std::vector<Match> Matcher::top_k(const BuyerPreferences& buyer, UnixSeconds now, const MatchOptions& options) const {
  const std::size_t pool_size = model_ ? options.pool : std::max(options.pool, options.k * 4);
  const auto unwanted = [&](std::uint32_t i) { return options.exclude_seen && buyer.seen(i); };
  // A stated area and budget are hard-ish: the pool holds the listings that
  // meet them, and only when fewer than k do, the usual candidates fill it.
  const bool stated = has_hard_criteria(buyer);
  std::vector<std::uint32_t> pool;
  if (stated) {
    pool = qualifying_candidates(*catalog_, make_query(*catalog_, buyer, segments()), buyer, pool_size, options.k);
    std::erase_if(pool, unwanted);
  }
  if (pool.size() < options.k) {
    const std::size_t qualifying = pool.size();
    for (std::uint32_t i : candidates(buyer, now, pool_size)) {
      if (unwanted(i) || std::find(pool.begin(), pool.begin() + qualifying, i) != pool.begin() + qualifying) continue;
      pool.push_back(i);
    }
  }
  const std::size_t nf = match_feature_count();
  std::vector<float> features(pool.size() * nf);
  auto ranked = rank_pool(*catalog_, model_.get(), buyer, now, pool, segment_shares_of(segments(), buyer), features);
  std::vector<double> margin_of(pool.size());
  for (const auto& [neg, i] : ranked) margin_of[i] = -neg;
  // Taste ranks within a tier: listings meeting both stated criteria, then
  // those missing one, then both.
  std::vector<int> tier_of(pool.size(), 0);
  if (stated) {
    for (std::size_t i = 0; i < pool.size(); ++i) tier_of[i] = stated_fit(*catalog_, buyer, pool[i]).misses();
    std::stable_sort(ranked.begin(), ranked.end(),
                     [&](const auto& a, const auto& b) { return tier_of[a.second] < tier_of[b.second]; });
  }
  Picks picks = pick_best(*catalog_, pool, ranked, tier_of, options);
  order_picks(picks, margin_of, tier_of);
  std::vector<Match> out;
  for (std::size_t i : picks.chosen) {
    out.push_back(match_of(*catalog_, model_.get(), buyer, pool[i], margin_of[i], features.data() + i * nf,
                           options.reasons));
  }
  return out;
}

// ---------------------------------------------------------------- history

std::vector<MatchHistoryBuyer> build_match_history(ListingCatalog& catalog, std::span<const Contact> contacts,
                                                   std::span<const Event> events, long long as_of_seconds,
                                                   const PreferenceOptions& options,
                                                   std::size_t* unknown_listings) {
  std::vector<MatchHistoryBuyer> buyers;
  std::unordered_map<std::string, std::size_t> index;
  for (const Contact& c : contacts) {
    if (c.lead_type != LeadType::kBuyer && c.lead_type != LeadType::kBoth && c.lead_type != LeadType::kInvestor) continue;
    const StatedCriteria stated = stated_criteria(c);
    MatchHistoryBuyer b;
    b.contact_id = c.contact_id;
    b.created_at = c.created_at;
    b.as_of = c.created_at + as_of_seconds;
    b.preferences = BuyerPreferences(catalog, stated, options);
    index.emplace(tenant_scoped_key(c.tenant_id, c.contact_id), buyers.size());
    buyers.push_back(std::move(b));
  }
  std::size_t unknown = 0;
  for (const Event& e : events) {
    if (!is_property_event(e.type)) continue;
    const int listing = catalog.find(e.property_id);
    if (listing < 0) {
      ++unknown;
      continue;
    }
    const bool interest = e.type != EventType::kPropertyView;
    if (interest) {
      catalog.record_interest(static_cast<std::size_t>(listing), e.ts);
    } else {
      catalog.record_view(static_cast<std::size_t>(listing), e.ts);
    }
    auto it = index.find(tenant_scoped_key(e.tenant_id, e.contact_id));
    if (it == index.end()) continue;
    MatchHistoryBuyer& b = buyers[it->second];
    if (e.ts <= b.as_of) {
      b.preferences.observe(catalog, static_cast<std::size_t>(listing), e.type, e.ts);
    } else if (!interest) {
      const auto id = static_cast<std::uint32_t>(listing);
      if (std::find(b.later_views.begin(), b.later_views.end(), id) == b.later_views.end()) b.later_views.push_back(id);
    } else if (!b.preferences.saved(static_cast<std::size_t>(listing))) {
      const auto id = static_cast<std::uint32_t>(listing);
      if (std::find(b.later_interest.begin(), b.later_interest.end(), id) == b.later_interest.end()) {
        b.later_interest.push_back(id);
      }
    }
  }
  catalog.finish_popularity();
  if (unknown_listings != nullptr) *unknown_listings = unknown;
  return buyers;
}

double ndcg_at_k(std::span<const std::uint32_t> ranked, std::span<const std::uint32_t> relevant, std::size_t k) {
  if (relevant.empty()) return 0;
  double dcg = 0, ideal = 0;
  for (std::size_t i = 0; i < std::min(k, ranked.size()); ++i) {
    if (std::find(relevant.begin(), relevant.end(), ranked[i]) != relevant.end()) dcg += 1.0 / std::log2(i + 2.0);
  }
  for (std::size_t i = 0; i < std::min(k, relevant.size()); ++i) ideal += 1.0 / std::log2(i + 2.0);
  return dcg / ideal;
}

double recall_at_k(std::span<const std::uint32_t> ranked, std::span<const std::uint32_t> relevant, std::size_t k) {
  if (relevant.empty()) return 0;
  std::size_t hits = 0;
  for (std::size_t i = 0; i < std::min(k, ranked.size()); ++i) {
    hits += std::find(relevant.begin(), relevant.end(), ranked[i]) != relevant.end();
  }
  return static_cast<double>(hits) / relevant.size();
}

}  // namespace reai::property
