// Feature engineering for the AVM (private to property/): expert features
// derived from the inferred schema, and location encodings (target encoding
// of high-cardinality categoricals, nearest-neighbour prices) that are
// computed out-of-fold on training rows so no row sees its own price.
#pragma once

#include <cstddef>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "core/status.h"
#include "property/schema.h"

namespace reai::property {

// Raw training data: one float per schema column per row (encode_cell()).
struct RawMatrix {
  std::size_t rows = 0;
  std::size_t cols = 0;
  std::vector<float> values;
  const float* row(std::size_t i) const { return values.data() + i * cols; }
};

RawMatrix encode_table(const Schema& schema, const SalesTable& table, std::span<const std::size_t> rows);

// Fold of each of `n` rows, balanced and shuffled by `seed`.
std::vector<int> assign_folds(std::size_t n, int folds, unsigned seed);

// Smoothed mean of `values` per level over rows whose fold differs from
// `exclude_fold` (-1: all rows). Levels are ids in [0, levels); NaN codes and
// NaN values are skipped. Result[level] = (sum + m * prior) / (count + m).
struct LevelMeans {
  std::vector<float> mean;
  float prior = 0;
};
LevelMeans level_means(std::span<const float> codes, std::span<const float> values, std::size_t levels,
                       std::span<const int> folds, int exclude_fold, double smoothing);

// Points for nearest-neighbour prices, in kilometres.
struct KnnPoints {
  std::vector<float> x, y;
  std::vector<float> log_price;      // target
  std::vector<float> log_price_per_area;  // NaN when the row has no area
  std::vector<int> fold;             // training fold of each point
  std::vector<float> log_area;       // NaN when the row has no area
  std::vector<float> year_built;     // NaN when unknown
  // Residual of each point's log price against the hedonic model fitted on
  // all training rows (empty until set_hedonic_residuals()).
  std::vector<float> residual;
  // Training only, not saved: the training row of each point, and its
  // residual against the hedonic model fitted without fold f
  // (fold_residual[f][point]).
  std::vector<int> row;
  std::vector<std::vector<float>> fold_residual;
};

struct NeighbourPrices {
  float mean_near = 0;   // mean log price of the nearest kNear
  float mean_wide = 0;   // mean log price of the nearest kWide
  float ppa_near = 0;    // mean log price per area of the nearest kNear with an area
  float log_distance = 0;  // log(km to the kNear-th neighbour + 0.01)
  // Comparable sales: the kComps nearest in location, size and age; their
  // mean log price per area plus the home's own log area.
  float comps = 0;
};
inline constexpr int kNear = 8;
inline constexpr int kWide = 25;
inline constexpr int kComps = 10;

// The points nearest to a home: by location (near, sorted by distance) and
// comparables by location, size and age (comps).
struct Neighbours {
  int near[kWide];
  int near_found = 0;
  float near_d2_k = 0;  // squared km to the kNear-th nearest (when found)
  int comps[kComps];
  int comps_found = 0;
};

// Neighbours of (x, y) among points whose fold differs from `exclude_fold`
// (-1: all points). `log_area` and `year_built` (NaN when unknown) select
// the comparables. No allocation.
Neighbours find_neighbours(const KnnPoints& points, float x, float y, float log_area, float year_built,
                           int exclude_fold);
// Their prices; fields are NaN when too few points qualify.
NeighbourPrices neighbour_prices(const KnnPoints& points, const Neighbours& found, float log_area);
inline NeighbourPrices nearest_prices(const KnnPoints& points, float x, float y, float log_area, float year_built,
                                      int exclude_fold) {
  return neighbour_prices(points, find_neighbours(points, x, y, log_area, year_built, exclude_fold), log_area);
}

// Spatial residual features: the mean hedonic residual of the kNear and kWide
// nearest and of the comparables (NaN when too few). A home in a street that
// sells above what its attributes explain is likely to as well.
inline constexpr std::size_t kResidualFeatures = 3;
// `residual[p]` is the residual of point p.
void neighbour_residuals(const Neighbours& found, std::span<const float> residual, float* out);

class FeaturePlan {
 public:
  // Decides the features from the schema and the training data. `log_price`
  // is the target per row; `folds` the fold of each row for out-of-fold
  // encodings. Writes the training feature matrix (rows x num_features())
  // to `*train_features`.
  static FeaturePlan fit(const Schema& schema, const RawMatrix& raw, std::span<const float> log_price,
                         std::span<const int> folds, std::vector<float>* train_features);

  std::size_t num_features() const { return names_.size(); }
  const std::vector<std::string>& names() const { return names_; }
  // Schema columns each feature reads (for importance by input column).
  const std::vector<std::vector<int>>& sources() const { return sources_; }
  // The schema column that says when a sale happened (a numeric sale year
  // or a sale date: Ames Year_Sold, a "sold"/"sale"/"closed" date), -1 when
  // none does. A valuation is always later than the training sales, so its
  // value there is never an extrapolation of the home.
  int sale_time_column() const { return year_sold_; }

  // Features of one new row from its raw encoding, using all training data.
  // `out` must hold num_features() floats. Thread-safe, no allocation.
  // `neighbours` (optional) receives the row's neighbours for
  // residual_features().
  void build(const float* raw, float* out, Neighbours* neighbours = nullptr) const;

  // Spatial residual features (kResidualFeatures), available when the data
  // has coordinates and set_hedonic_residuals() was called at training.
  std::size_t num_residual_features() const { return has_residuals_ ? kResidualFeatures : 0; }
  // Stores the hedonic residuals: `full[i]` of training row i against the
  // model fitted on all rows, `by_fold[f][i]` against the model fitted
  // without fold f. Training only.
  void set_hedonic_residuals(std::span<const float> full, const std::vector<std::vector<float>>& by_fold);
  // Training rows' residual features, out-of-fold: row i (fold f) sees only
  // points outside fold f and their residuals against the model fitted
  // without fold f, exactly as a new home sees the training data.
  std::vector<float> training_residual_features(const RawMatrix& raw, std::span<const int> folds) const;
  // A new home's residual features from build()'s neighbours.
  void residual_features(const Neighbours& neighbours, float* out) const;

  boost::json::object to_json() const;
  static Result<FeaturePlan> from_json(const boost::json::object& json, std::size_t schema_columns);

 private:
  struct Context;  // per-row target-derived values (TE, kNN)
  void build_with(const float* raw, const Context& context, float* out) const;
  void full_context(const float* raw, Context* context, Neighbours* neighbours) const;
  float total_area(const float* raw) const;
  void project(const float* raw, float* x, float* y) const;
  void add_feature(std::string name, std::vector<int> sources);
  // The has_* flags: which derived features the roles of the columns allow.
  void set_role_flags();
  // Steps of fit(), in order.
  struct RoleCandidates;
  static RoleCandidates role_candidates(const Schema& schema);
  void choose_roles(const Schema& schema, const RoleCandidates& candidates);
  void code_levels(const Schema& schema, const RawMatrix& raw, std::span<const float> log_price);
  void list_features(const Schema& schema);
  std::vector<float> log_price_per_area(const RawMatrix& raw, std::span<const float> log_price) const;
  void fit_target_encodings(const Schema& schema, const RawMatrix& raw, std::span<const float> log_price,
                            std::span<const float> ppa);
  void fit_knn_points(const RawMatrix& raw, std::span<const float> log_price, std::span<const float> ppa,
                      std::span<const int> folds);
  void write_training_features(const Schema& schema, const RawMatrix& raw, std::span<const float> log_price,
                               std::span<const float> ppa, std::span<const int> folds,
                               std::vector<float>* out) const;

  std::size_t columns_ = 0;
  std::vector<std::vector<float>> level_code_;  // per schema column (empty unless categorical)
  std::vector<int> living_, bath_full_, bath_half_;
  int basement_ = -1, year_built_ = -1, year_sold_ = -1, remod_ = -1, lon_ = -1, lat_ = -1;
  float lon_scale_ = 111.0f;
  std::vector<int> te_columns_;
  std::vector<LevelMeans> te_mean_, te_ppa_;
  KnnPoints knn_;
  bool has_residuals_ = false;
  bool has_area_ = false, has_age_ = false, has_remod_ = false, has_baths_ = false, has_knn_ = false;
  float year_built_of(const float* raw) const { return year_built_ >= 0 ? raw[year_built_] : std::nanf(""); }
  std::vector<std::string> names_;
  std::vector<std::vector<int>> sources_;
};

// Whether a column of this name and kind can say when a sale happened (a
// numeric sale year, a sale date): the candidates of the plan's sale-time
// column, unless their name also says built or remodelled.
bool is_sale_time_column(std::string_view name, ColumnKind kind);

// The numeric column that says in which month a sale happened, beside a
// numeric sale year (Ames Mo_Sold, MoSold, month_sold, Sale Month), -1 when
// none does. The trees read it as any number; it only dates the sales.
int sale_month_column(const Schema& schema);

// Ordinal value of a quality word (Excellent/Good/Typical/Fair/Poor, Ex/Gd/
// TA/Fa/Po and variants, No_* = 0), or NaN when the word is not one.
float quality_ordinal(std::string_view level);

}  // namespace reai::property
