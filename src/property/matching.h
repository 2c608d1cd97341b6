// Property matching: listings from any listings CSV, a per-buyer preference
// state learned incrementally from behaviour (views, saves, tour requests)
// and stated criteria, fast candidate filtering, and a ranking model trained
// on history that turns buyer-listing features into a match score, a
// predicted interest (probability of a save or tour) and plain reasons.
//
// Flow: ListingCatalog::build (once per inventory) -> BuyerPreferences per
// buyer (set_stated, then observe() per event) -> Matcher::top_k.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "core/types.h"
#include "property/property.h"

namespace reai::property {

// ---------------------------------------------------------------- listings

struct ListingOptions {
  std::string price_column;  // required: list price (or sale price for Ames)
  std::string id_column;     // empty: ids are "<file stem>-<row, 4 digits>"
};

// The price column and the optional id column of a listings file; id -1 when
// ids come from the file name (listing_row_id). InvalidArgument naming the
// file (table.name) when the price column is unnamed or either is missing.
struct ListingKeyColumns {
  int price = -1, id = -1;
};
Result<ListingKeyColumns> find_listing_key_columns(const SalesTable& table, const ListingOptions& options);

// A list price cell, "350000" or "$350,000"; nullopt unless it is a positive
// finite number.
std::optional<double> parse_listing_price(std::string_view cell);

// The id of 1-based data row `row` of a file without an id column:
// "<stem of path>-<row, at least 4 digits>", e.g. "ames-0012".
std::string listing_row_id(const std::string& path, std::size_t row);

// One listing's matching attributes. Missing numbers are NaN, missing codes -1.
struct Listing {
  std::string id;
  std::size_t row = 0;        // 1-based data row in the source file
  double price = 0;
  float log_price = 0;
  int neighbourhood = -1;     // level of the neighbourhood/zip/area column
  int style = -1;             // level of the style/type column
  float beds = 0;             // NaN when unknown
  float x_km = 0, y_km = 0;   // projected coordinates, NaN when unknown
  float log_value = 0;        // log of the comparables estimate, NaN when unknown
  double appraised_value = std::numeric_limits<double>::quiet_NaN();  // the AVM's value when set (set_appraisal)
};

// Times of one kind of behaviour (saves and tours, or views) per listing
// that arrive while a catalog is shared: one writer or several may add()
// while any threads read. A reader takes no lock: a listing's count and the
// latest time behind it are atomics, and only a query at or before that
// latest time (an event dated ahead of the ranking instant) reads the times
// themselves under a mutex. Copying copies what was added so far.
// Memory: a count per listing, and of each listing's events the newest
// kKeptTimes times; older ones are folded into a count beside the newest
// time folded. So a query after that time (the serving case: ranking at
// now, events dated up to now) is exact; one at or before it counts only
// the kept times before it (a lower bound: never an event at or after it).
class LiveTimes {
 public:
  static constexpr std::size_t kKeptTimes = 32;
  LiveTimes();
  LiveTimes(const LiveTimes& other);
  LiveTimes& operator=(const LiveTimes& other);
  LiveTimes(LiveTimes&&) noexcept;
  LiveTimes& operator=(LiveTimes&&) noexcept;
  ~LiveTimes();
  // n listings, none added. Not thread-safe: before sharing.
  void reset(std::size_t n);
  // One event of listing i (< n) at t. Any thread.
  void add(std::size_t i, UnixSeconds t);
  // Events of listing i added with a time strictly before t (see above for
  // a t at or before a folded time). Any thread.
  int count_before(std::size_t i, UnixSeconds t) const;
  // Times held, every listing's (at most kKeptTimes each). Any thread.
  std::size_t kept_times() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The inventory: listings with their attributes, a standardised attribute
// vector per listing (for similarity), an index sorted by price for fast
// price-band filtering, and popularity from behaviour.
// Immutable after build() apart from popularity: record_*() before sharing,
// add_live_*() while shared. Const methods are thread-safe, also beside
// add_live_*().
class ListingCatalog {
 public:
  // Builds the catalog from `table`. InvalidArgument when the price column
  // (or the given id column) is missing, a price cell is present but not a
  // positive number (message names file and line), ids repeat, or no listing
  // has a price. Rows whose price is missing are skipped and counted.
  static Result<ListingCatalog> build(const SalesTable& table, const ListingOptions& options);
  // Reads `path` (read_sales_csv) and builds; the id stem is the file name
  // without directory and extension.
  static Result<ListingCatalog> load(const std::string& path, const ListingOptions& options);

  std::size_t size() const { return listings_.size(); }
  const Listing& listing(std::size_t i) const { return listings_[i]; }
  // Index of a listing id, or -1.
  int find(std::string_view id) const;
  // Standardised attribute vector of listing i (dims() floats, NaN -> 0).
  const float* attributes(std::size_t i) const { return attributes_.data() + i * dims_; }
  std::size_t dims() const { return dims_; }
  std::size_t skipped_rows() const { return skipped_rows_; }
  // The AVM's value of listing i (> 0), as the product stored it at import.
  // Only then does a reason speak of "its estimated value" ("priced 8% under
  // its estimated value", the valuation the match carries); a listing without
  // one can only be "priced 8% under comparable homes" (the comparables
  // estimate). The ranking features do not change. Not thread-safe: call
  // before sharing the catalog.
  void set_appraisal(std::size_t i, double value) { listings_[i].appraised_value = value; }
  const std::string& neighbourhood_name(int level) const;
  std::size_t neighbourhood_levels() const { return neighbourhood_names_.size(); }
  // The neighbourhood levels named `area` as area_key() compares names
  // (usually one; none when the listings have no such area).
  std::vector<int> neighbourhoods_named(std::string_view area) const;
  const std::string& style_name(int level) const;
  std::size_t style_levels() const { return style_names_.size(); }
  // Which source columns were recognised, for people ("neighbourhood: Neighborhood, ...").
  std::string describe() const;

  // Listings sorted by log price; [lower, upper) of that order whose log
  // price lies in [lo, hi].
  const std::vector<std::uint32_t>& by_price() const { return by_price_; }
  std::pair<std::size_t, std::size_t> price_range(float lo, float hi) const;
  // The stage-1 candidate index: listings grouped into buckets by
  // (neighbourhood, beds), each bucket sorted by log price, with the
  // stage-1 attributes laid out in that order and each bucket's beds range
  // and location box. Stated area, beds and price level then bound which
  // rows can still enter a candidate pool (Matcher::candidates), so a query
  // reads the few thousand rows near the buyer's price in the buckets that
  // can matter instead of the whole price band.
  struct CandidateIndex {
    struct Bucket {
      std::uint32_t begin = 0, end = 0;  // rows [begin, end)
      std::int32_t neighbourhood = -1;
      float min_beds = 0, max_beds = 0;  // NaN when the bucket's beds are unknown
      float min_x = 0, max_x = 0, min_y = 0, max_y = 0;  // NaN when no row has coordinates
    };
    std::vector<Bucket> buckets;
    std::vector<std::uint32_t> listing;  // catalog index per row
    std::vector<float> log_price, beds, x_km, y_km;
    std::vector<std::int32_t> style;
  };
  const CandidateIndex& candidate_index() const { return candidate_index_; }

  // Saves and tour requests by anyone strictly before `t`, per listing (from
  // record_interest() and add_live_interest()). Cheap: binary search in
  // per-listing sorted times, plus one atomic load for the live ones.
  int popularity(std::size_t i, UnixSeconds t) const;
  // Records a save/tour of listing i at time t; call finish_popularity()
  // after the last one, before popularity() is used. Not thread-safe: while
  // building, before the catalog is shared.
  void record_interest(std::size_t i, UnixSeconds t);
  void finish_popularity();
  // Views by anyone strictly before `t` (from record_view() and add_live_view()).
  int view_count(std::size_t i, UnixSeconds t) const;
  void record_view(std::size_t i, UnixSeconds t);
  // Behaviour that arrives while the catalog serves: a save/tour or a view
  // of listing i at t counts in popularity() / view_count() from the moment
  // this returns. Thread-safe beside every const method; the caller counts
  // each event once (across record_* and add_live_*).
  void add_live_interest(std::size_t i, UnixSeconds t) { live_interest_.add(i, t); }
  void add_live_view(std::size_t i, UnixSeconds t) { live_views_.add(i, t); }

  // Generated inventory for benchmarks and tests: `n` listings with a
  // realistic spread of prices, neighbourhoods, beds and sizes (deterministic
  // for a seed).
  static ListingCatalog generate(std::size_t n, unsigned seed);

 private:
  friend struct CatalogBuilder;
  std::vector<Listing> listings_;
  std::unordered_map<std::string, int> index_;
  std::vector<float> attributes_;
  std::size_t dims_ = 0;
  std::vector<std::uint32_t> by_price_;
  std::vector<float> sorted_log_price_;  // by_price() order
  CandidateIndex candidate_index_;
  std::vector<std::vector<UnixSeconds>> interest_times_, view_times_;
  LiveTimes live_interest_, live_views_;
  std::vector<std::string> neighbourhood_names_, style_names_;
  std::string described_;
  std::size_t skipped_rows_ = 0;
};

// ------------------------------------------------------- buyer preferences

// Distinct homes a buyer kept: saved, asked to tour, and either (a home
// both saved and toured counts once in `homes`).
struct KeptHomes {
  int saved = 0;
  int toured = 0;
  int homes = 0;
};

// What a buyer told us (contacts.csv: budget, beds_wanted, area_wanted).
struct StatedCriteria {
  std::optional<double> budget;
  std::optional<int> beds;
  std::vector<std::string> areas;  // neighbourhood names as in the listings file (any one will do)
  // When the budget was stated: saves and tours after it (in a later
  // second) may move the effective budget (EffectiveBudget). 0: before any
  // behaviour (a stored budget whose time is unknown).
  UnixSeconds budget_stated_at = 0;
};

// What a stored contact states: its budget, stated at budget_stated_at (a
// restatement through the API or the CRM starts the effective budget over;
// 0 for one imported from history), its beds and its area.
StatedCriteria stated_criteria(const Contact& contact);

// A stated budget is met up to this much over it: a buyer who says 250,000
// still wants to see a 255,000 home, not a 265,000 one (Matcher::top_k).
inline constexpr double kBudgetTolerance = 0.05;

// The budget the first group of matches is held to. It is the stated one
// unless the buyer's strong signals since stating it (distinct homes saved
// or toured; views are not counted) consistently sit above it: at least
// kMinHomesAboveBudget of them priced more than kBudgetTolerance over it,
// and they are at least two thirds of the homes kept since the statement.
// Then it follows behaviour: the median price of those homes above. A new
// statement (BuyerPreferences::restate_budget) starts over from it.
inline constexpr int kMinHomesAboveBudget = 2;
struct EffectiveBudget {
  double stated = 0;     // USD, > 0
  double effective = 0;  // USD, the stated one or, following behaviour, above it
  bool follows_behaviour = false;
  int kept_since = 0;    // distinct homes saved or toured since the statement
  KeptHomes above;       // those priced more than kBudgetTolerance over `stated`
  double above_low = 0, above_high = 0;  // their lowest and highest price (USD), 0 when none
};

// What the buyer did with the homes `k` counts: "saved", "toured", "saved
// and toured" (each home both) or "saved or toured".
std::string_view kept_verb(const KeptHomes& k);
// Plain words for people. "120k", "1.25M", "950": a price as a person says it.
std::string short_price(double usd);
// Why the effective budget is what it is: "you saved 3 homes at 150k-170k
// since stating 120k" (following behaviour) or "as stated".
std::string effective_budget_why(const EffectiveBudget& budget);

// How a stated area is compared with the listings' neighbourhood names:
// case, surrounding spaces and '_' versus ' ' aside ("north ames" names
// North_Ames, which the reasons show as "North Ames"). Lower-case, with each
// run of spaces and underscores one space.
std::string area_key(std::string_view name);

struct PreferenceOptions {
  double half_life_days = 21;  // older behaviour fades: tastes shift
  double view_weight = 1.0;
  double save_weight = 3.0;
  double tour_weight = 4.0;
};

// A buyer's taste, updated incrementally in O(dims + small) per event:
// time-decayed weighted price level and spread, neighbourhood and style
// shares, attribute centroid, location centroid, beds, the homes seen and
// saved. Value type; not thread-safe (one owner per buyer).
class BuyerPreferences {
 public:
  BuyerPreferences() = default;
  BuyerPreferences(const ListingCatalog& catalog, const StatedCriteria& stated,
                   const PreferenceOptions& options = {});

  // A view, save or tour request of listing `listing` (catalog index) at
  // `ts`. Events must come in time order; other event types are ignored.
  void observe(const ListingCatalog& catalog, std::size_t listing, EventType type, UnixSeconds ts);

  // Decayed weights as of time `now` (>= the last event) are used by
  // features; these accessors return the raw state at the last event.
  double weight() const { return w_; }
  int views() const { return views_; }
  int saves() const { return saves_; }    // saves + tour requests
  UnixSeconds last_event() const { return last_ts_; }
  // Buyer's price level (log) and tolerance (log spread), blending the
  // stated budget with the decayed behaviour.
  float price_level() const;
  float price_tolerance() const;
  bool has_budget() const { return log_budget_ == log_budget_; }
  float log_budget() const { return log_budget_; }  // the stated budget
  // The budget the first group of matches is held to (EffectiveBudget);
  // nullopt without a stated budget. Kept up to date by observe().
  const std::optional<EffectiveBudget>& effective_budget() const { return effective_; }
  // Log of effective_budget()->effective; NaN without a budget.
  float log_effective_budget() const;
  // The buyer states a budget again at `ts` (nullopt or <= 0: none): it
  // replaces the stated one and what was kept up to `ts` (that second
  // included) no longer moves it.
  void restate_budget(std::optional<double> budget, UnixSeconds ts);
  int beds_wanted() const { return beds_wanted_; }
  // The neighbourhood levels of the stated areas (empty: none stated or
  // none in the catalog), and whether `level` is one of them.
  const std::vector<int>& areas_wanted() const { return areas_wanted_; }
  // The stated areas no listing of the catalog is in (neighbourhoods_named
  // finds none), as given and in order: stated, but not matched on.
  const std::vector<std::string>& unknown_areas() const { return unknown_areas_; }
  bool wants_area(int level) const {
    return level >= 0 && std::find(areas_wanted_.begin(), areas_wanted_.end(), level) != areas_wanted_.end();
  }
  // Decayed share of behaviour weight in neighbourhood / style `level`.
  float neighbourhood_share(int level) const;
  float neighbourhood_saves(int level) const;
  // The homes kept (saved or toured, not decayed) in neighbourhood `level`
  // of `catalog` (the one observed with); none for a bad level.
  KeptHomes kept_in_neighbourhood(const ListingCatalog& catalog, int level) const;
  // How `listing` was kept: {1,0,1} saved, {0,1,1} toured, {1,1,1} both;
  // all 0 when it was not.
  KeptHomes how_kept(std::size_t listing) const;
  float style_share(int level) const;
  float mean_beds() const;  // NaN with no events
  bool has_centroid() const { return w_ > 0; }
  // Weighted mean standardised attributes (catalog dims) and location.
  std::vector<float> centroid() const;
  float centroid_x() const { return w_ > 0 ? sx_ / w_ : std::nanf(""); }
  float centroid_y() const { return w_ > 0 ? sy_ / w_ : std::nanf(""); }
  bool saved(std::size_t listing) const;
  bool seen(std::size_t listing) const;
  const std::vector<std::uint32_t>& seen_listings() const { return seen_; }
  const std::vector<std::uint32_t>& saved_listings() const { return saved_; }
  // Compact summary for segmentation: price level, location, beds, size.
  std::vector<float> segment_vector() const;

 private:
  void decay_to(UnixSeconds ts);
  void note_kept_since_budget(const ListingCatalog& catalog, std::uint32_t listing, bool toured);
  void update_effective_budget();
  PreferenceOptions options_;
  float log_budget_ = std::nanf("");
  double budget_usd_ = 0;
  UnixSeconds budget_stated_at_ = 0;
  // Homes saved or toured since the budget was stated: listing, price, how
  // (kSavedBit, kTouredBit). Cleared by restate_budget.
  struct KeptSinceBudget {
    std::uint32_t listing = 0;
    double price = 0;
    std::uint8_t how = 0;
  };
  std::vector<KeptSinceBudget> kept_since_budget_;
  std::optional<EffectiveBudget> effective_;
  int beds_wanted_ = -1;
  std::vector<int> areas_wanted_;
  std::vector<std::string> unknown_areas_;
  double w_ = 0, sp_ = 0, spp_ = 0, sx_ = 0, sy_ = 0, sbeds_ = 0, wbeds_ = 0;
  std::vector<double> sattr_;
  std::vector<float> nb_w_, nb_saves_, style_w_;
  std::vector<std::uint32_t> seen_, saved_;
  // Beside saved_: how each was kept (kSavedBit, kTouredBit).
  std::vector<std::uint8_t> kept_how_;
  int views_ = 0, saves_ = 0;
  UnixSeconds last_ts_ = 0;
};

// ---------------------------------------------------------------- matching

// Buyer-listing features the ranking model reads (names in feature_names()).
std::vector<std::string> match_feature_names();
std::size_t match_feature_count();
// Writes match_feature_count() floats for (buyer, listing) at time `now`.
// `segment_shares` (may be empty) is the buyer's segment's neighbourhood
// share per level, for cold start.
void match_features(const ListingCatalog& catalog, const BuyerPreferences& buyer, std::size_t listing,
                    UnixSeconds now, std::span<const float> segment_shares, float* out);

// k-means segments over preference states; each carries the neighbourhood
// mix of its members' behaviour, which cold-start buyers borrow.
struct BuyerSegments {
  std::vector<std::vector<float>> centres;       // segment_vector() space
  std::vector<float> scale;                      // per-dimension standardisation
  std::vector<std::vector<float>> neighbourhood; // per segment, share per level
  // Segment of a buyer (nearest centre over the dimensions the buyer has),
  // or -1 when there are no segments.
  int assign(const BuyerPreferences& buyer) const;
};
// Clusters `buyers` into k segments (k-means++, `seed`). Empty segments when
// fewer than k buyers have behaviour.
BuyerSegments fit_segments(const ListingCatalog& catalog, std::span<const BuyerPreferences> buyers, int k,
                           unsigned seed);

struct MatchOptions {
  std::size_t k = 10;
  std::size_t pool = 300;          // candidates re-ranked by the model

  bool exclude_seen = false;       // also drop listings already viewed
  bool diversify = true;           // no near-copies of a listing already chosen
  bool reasons = true;
};

struct Match {
  std::uint32_t listing = 0;   // catalog index
  double match_score = 0;      // 0-1, higher is better
  double predicted_interest = 0;  // P(save or tour request)
  // Plain words, at most three. What the buyer stated comes first: "within
  // budget" or "8% over budget" (with a budget; over the stated one), "over
  // your stated 120k, like the 3 homes you saved at 150k-170k" (a home over
  // the stated budget that the effective budget, following the buyer's
  // saves and tours, lets in), "outside North Ames" (a
  // home in none of the stated areas). Then: "in Northridge like 4 homes
  // you saved" (distinct homes, by what the buyer did: "saved", "toured",
  // "saved and toured" or "saved or toured"), "similar to a home you
  // toured", "priced 8% under its estimated value" (only for a listing
  // with an AVM valuation, ListingCatalog::set_appraisal) or "priced 8% under
  // comparable homes" (without one), ...
  std::vector<std::string> reasons;
};

class MatchModel;

// Ranks listings for buyers. Holds a reference to the catalog (which must
// outlive it) and shares the model. Thread-safe for concurrent top_k().
class Matcher {
 public:
  // `model` may be null: then a documented content scorer ranks (price level,
  // neighbourhood, beds, style, similarity to homes seen) and
  // predicted_interest comes from its calibration constants.
  Matcher(const ListingCatalog& catalog, std::shared_ptr<const MatchModel> model);

  // Top `options.k` listings for `buyer` at time `now`, best first; never a
  // listing the buyer saved (or toured). Fewer when fewer qualify.
  // A stated area and budget are hard-ish: listings in a stated area and at
  // most kBudgetTolerance over the effective budget (the stated one, or
  // where the buyer's saves and tours since stating it consistently sit:
  // BuyerPreferences::effective_budget) come first, then those missing one of the two,
  // then those missing both (these only when too few meet them, and their
  // reasons say so: "outside North Ames", "8% over budget"); the model (or
  // the content scorer) ranks within each group, so match_score need not
  // fall from one match to the next. Stated areas not in the catalog
  // (unknown_areas) are not matched on.
  std::vector<Match> top_k(const BuyerPreferences& buyer, UnixSeconds now, const MatchOptions& options) const;

  // Stage 1 only: the `pool` best candidates by the content score within
  // the price band and beds filter (excluding saved listings). For training.
  std::vector<std::uint32_t> candidates(const BuyerPreferences& buyer, UnixSeconds now, std::size_t pool) const;

  const BuyerSegments* segments() const;

 private:
  const ListingCatalog* catalog_;
  std::shared_ptr<const MatchModel> model_;
  BuyerSegments segments_;  // the model's segments on this catalog's levels
};

// ---------------------------------------------------------- training data

// One buyer of a history: criteria, behaviour up to the as-of time, and the
// listings they saved or toured after it (the ranking target).
struct MatchHistoryBuyer {
  std::string contact_id;
  UnixSeconds created_at = 0;
  UnixSeconds as_of = 0;
  BuyerPreferences preferences;                 // events up to as_of
  std::vector<std::uint32_t> later_interest;    // saved/toured after as_of, not saved before
  std::vector<std::uint32_t> later_views;       // viewed after as_of (weaker evidence of taste)
};

// Buyers (lead types buyer, both, investor) of `contacts` with preference
// states from `events` up to created_at + as_of_seconds. Property events
// naming an unknown listing are skipped and counted in *unknown_listings.
// Also records every save/tour in the catalog's popularity (so call on the
// catalog before matching; finish_popularity() is called).
std::vector<MatchHistoryBuyer> build_match_history(ListingCatalog& catalog, std::span<const Contact> contacts,
                                                   std::span<const Event> events, long long as_of_seconds,
                                                   const PreferenceOptions& options,
                                                   std::size_t* unknown_listings);

struct MatchTrainOptions {
  std::size_t pool = 300;
  int negatives_per_buyer = 60;
  int segments = 8;
  int rounds = 300;
  int nthread = 0;
  unsigned seed = 1;
  // Later views that led to no save count as positives with this weight:
  // views sample the same taste as saves and are twenty times as many.
  double view_label_weight = 0.15;
  bool progress = false;
};

struct MatchTrainSummary {
  std::size_t buyers = 0;          // buyers with at least one later save/tour in their pool
  std::size_t rows = 0;
  std::size_t positives = 0;
  double pool_recall = 0;          // share of later saves/tours inside the candidate pool
  double valid_ndcg10 = 0;         // on the last 20% of buyers by created_at (inside the pool)
  int rounds = 0;
  double seconds = 0;
};

// A trained ranker with its calibration (predicted interest) and segments.
class MatchModel {
 public:
  MatchModel(MatchModel&&) noexcept;
  MatchModel& operator=(MatchModel&&) noexcept;
  ~MatchModel();

  // Trains on `buyers` (their later_interest are the positives). InvalidArgument
  // when fewer than 20 buyers have a later save/tour in their candidate pool;
  // Internal on XGBoost failures.
  static Result<MatchModel> train(const ListingCatalog& catalog, std::span<const MatchHistoryBuyer> buyers,
                                  const MatchTrainOptions& options, MatchTrainSummary* summary);
  // model.json (feature schema, metrics, calibration, segments) + ranker.json.
  Status save(const std::string& dir) const;
  // NotFound when the directory or files are missing; InvalidArgument when
  // they do not parse or the feature schema differs from this build's.
  static Result<MatchModel> load(const std::string& dir);

  // Raw ranking margin of a feature row; probability of save/tour.
  double margin(const float* features) const;
  double interest(double margin) const;
  // 0-1: share of training candidate pairs the margin beats.
  double score(double margin) const;
  // The segments with neighbourhood shares re-indexed to `catalog`'s levels
  // (by name, so a model works on another listings file of the same market).
  BuyerSegments segments_for(const ListingCatalog& catalog) const;
  // Training metrics and options as JSON text (model.json "metrics").
  std::string metrics_json() const;

 private:
  struct Impl;
  explicit MatchModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Ranking metrics for one buyer: `ranked` listings (best first) against the
// `relevant` set. NDCG with binary gains and log2 discount; 0 when relevant
// is empty.
double ndcg_at_k(std::span<const std::uint32_t> ranked, std::span<const std::uint32_t> relevant, std::size_t k);
double recall_at_k(std::span<const std::uint32_t> ranked, std::span<const std::uint32_t> relevant, std::size_t k);

}  // namespace reai::property
