// MatchModel: a gradient-boosted ranker of buyer-listing pairs trained on
// history (who saved or toured what after their first days), with buyer
// segments for cold start.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include <boost/json.hpp>

#include "core/files.h"
#include "models/models.h"
#include "property/matching.h"
#include "property/model_file.h"

namespace reai::property {
namespace json = boost::json;
namespace {

constexpr std::string_view kFormat = "reai-match-1";


json::array floats(const std::vector<float>& v) {
  json::array a;
  for (float x : v) a.emplace_back(static_cast<double>(x));
  return a;
}

bool read_floats(const json::value* v, std::vector<float>* out) {
  if (v == nullptr || !v->is_array()) return false;
  out->clear();
  for (const auto& x : v->get_array()) {
    if (!x.is_number()) return false;
    out->push_back(static_cast<float>(x.to_number<double>()));
  }
  return true;
}

// The buyers' preference states, for fitting the cold-start segments.
std::vector<BuyerPreferences> preferences_of(std::span<const MatchHistoryBuyer> buyers) {
  std::vector<BuyerPreferences> prefs;
  prefs.reserve(buyers.size());
  for (const auto& b : buyers) prefs.push_back(b.preferences);
  return prefs;
}

// The catalog's neighbourhood names: segments keep theirs by name so a model
// works on another listings file of the same market.
std::vector<std::string> neighbourhood_names(const ListingCatalog& catalog) {
  std::vector<std::string> names;
  for (std::size_t l = 0; l < catalog.neighbourhood_levels(); ++l) {
    names.push_back(catalog.neighbourhood_name(static_cast<int>(l)));
  }
  return names;
}

// Validation buyers are the most recent 20% (by created_at), as the model
// will rank buyers who come after the history.
UnixSeconds validation_start(std::span<const MatchHistoryBuyer> buyers) {
  std::vector<UnixSeconds> created;
  for (const auto& b : buyers) created.push_back(b.created_at);
  std::sort(created.begin(), created.end());
  return created.empty() ? 0 : created[created.size() * 8 / 10];
}

// The neighbourhood shares of the buyer's segment; empty without segments.
std::span<const float> segment_shares(const Matcher& stage1, const BuyerPreferences& buyer) {
  const BuyerSegments* s = stage1.segments();
  if (s == nullptr) return {};
  const int k = s->assign(buyer);
  return k >= 0 ? std::span<const float>(s->neighbourhood[k]) : std::span<const float>();
}

bool contains(const std::vector<std::uint32_t>& ids, std::uint32_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

// One validation buyer: rows first .. first + count of the validation
// matrix are their candidate pool, relevant what they saved or toured later.
struct ValidQuery {
  std::size_t first = 0, count = 0;
  std::vector<std::uint32_t> pool, relevant;
};

// Feature rows sampled from the history, and the counts the summary reports.
struct RankerPairs {
  models::DenseMatrix train_x, valid_x;
  std::vector<float> train_y, train_w, valid_y;
  std::vector<ValidQuery> valid_queries;
  std::size_t later_total = 0, later_in_pool = 0, used = 0, positives = 0;

  explicit RankerPairs(std::size_t features) : train_x(0, features), valid_x(0, features) {}
};

// Turns buyers into ranker rows, buyer by buyer in the history's order (the
// random draws depend on that order, so the same seed gives the same model).
class PairSampler {
 public:
  PairSampler(const ListingCatalog& catalog, const Matcher& stage1, const MatchTrainOptions& options,
              UnixSeconds valid_from)
      : catalog_(catalog),
        stage1_(stage1),
        options_(options),
        valid_from_(valid_from),
        rng_(options.seed),
        features_(match_feature_count()),
        pairs_(match_feature_count()) {}

  void add(const MatchHistoryBuyer& b) {
    const bool is_valid = b.created_at >= valid_from_;
    const std::span<const float> shares = segment_shares(stage1_, b.preferences);
    const bool use_views = options_.view_label_weight > 0 && !is_valid;
    if (b.later_interest.empty() && !is_valid && !(use_views && !b.later_views.empty())) {
      add_uninterested(b, shares);
      return;
    }
    if (b.later_interest.empty() && !use_views) return;
    auto pool = stage1_.candidates(b.preferences, b.as_of, options_.pool);
    pairs_.later_total += b.later_interest.size();
    std::vector<std::uint32_t> relevant, viewed;
    for (auto id : b.later_interest) {
      if (contains(pool, id)) relevant.push_back(id);
    }
    if (use_views) {
      for (auto id : b.later_views) {
        if (contains(pool, id) && !contains(relevant, id)) viewed.push_back(id);
      }
    }
    pairs_.later_in_pool += relevant.size();
    if (relevant.empty() && viewed.empty()) return;
    if (is_valid) {
      if (!relevant.empty()) add_validation_query(b, shares, std::move(pool), relevant);
      return;
    }
    add_training_buyer(b, shares, pool, relevant, viewed);
  }

  RankerPairs take() && { return std::move(pairs_); }

 private:
  // A few negatives from buyers who saved nothing later keep predicted
  // interest honest (most buyers save nothing): one buyer in four, five
  // listings of their pool, weighted up to stand for the rest.
  void add_uninterested(const MatchHistoryBuyer& b, std::span<const float> shares) {
    if (rng_() % 4 != 0) return;
    auto pool = stage1_.candidates(b.preferences, b.as_of, options_.pool);
    if (pool.empty()) return;
    constexpr int kTake = 5;
    for (int t = 0; t < kTake; ++t) {
      const auto i = pool[rng_() % pool.size()];
      add_training_row(b, shares, i, 0, 4.0f * static_cast<float>(pool.size()) / kTake);
    }
  }

  // The whole pool, so validation NDCG ranks exactly what the matcher would.
  void add_validation_query(const MatchHistoryBuyer& b, std::span<const float> shares,
                            std::vector<std::uint32_t> pool, const std::vector<std::uint32_t>& relevant) {
    ++pairs_.used;
    pairs_.positives += relevant.size();
    ValidQuery q;
    q.first = pairs_.valid_x.rows;
    q.count = pool.size();
    for (auto i : pool) {
      match_features(catalog_, b.preferences, i, b.as_of, shares, features_.data());
      pairs_.valid_x.append_row(features_);
      pairs_.valid_y.push_back(contains(relevant, i) ? 1.0f : 0.0f);
    }
    q.pool = std::move(pool);
    q.relevant = b.later_interest;
    pairs_.valid_queries.push_back(std::move(q));
  }

  // Saves/tours are positives, views weaker positives, and sampled others
  // of the pool negatives weighted to stand for the whole pool.
  void add_training_buyer(const MatchHistoryBuyer& b, std::span<const float> shares,
                          const std::vector<std::uint32_t>& pool, const std::vector<std::uint32_t>& relevant,
                          const std::vector<std::uint32_t>& viewed) {
    pairs_.used += !relevant.empty();
    pairs_.positives += relevant.size();
    for (auto i : relevant) add_training_row(b, shares, i, 1, 1);
    for (auto i : viewed) add_training_row(b, shares, i, 1, static_cast<float>(options_.view_label_weight));
    const std::size_t labelled = relevant.size() + viewed.size();
    const std::size_t negatives = pool.size() - labelled;
    const int draws = static_cast<int>(std::min<std::size_t>(options_.negatives_per_buyer, negatives));
    for (int t = 0; t < draws; ++t) {
      std::uint32_t i;
      do {
        i = pool[rng_() % pool.size()];
      } while (contains(relevant, i) || contains(viewed, i));
      add_training_row(b, shares, i, 0, static_cast<float>(negatives) / static_cast<float>(draws));
    }
  }

  void add_training_row(const MatchHistoryBuyer& b, std::span<const float> shares, std::uint32_t listing,
                        float label, float weight) {
    match_features(catalog_, b.preferences, listing, b.as_of, shares, features_.data());
    pairs_.train_x.append_row(features_);
    pairs_.train_y.push_back(label);
    pairs_.train_w.push_back(weight);
  }

  const ListingCatalog& catalog_;
  const Matcher& stage1_;
  const MatchTrainOptions& options_;
  UnixSeconds valid_from_;
  std::mt19937 rng_;
  std::vector<float> features_;
  RankerPairs pairs_;
};

RankerPairs sample_pairs(const ListingCatalog& catalog, const Matcher& stage1,
                         std::span<const MatchHistoryBuyer> buyers, const MatchTrainOptions& options,
                         UnixSeconds valid_from) {
  PairSampler sampler(catalog, stage1, options, valid_from);
  std::size_t done = 0;
  for (const auto& b : buyers) {
    if (options.progress && ++done % 2000 == 0) {
      std::fprintf(stderr, "reai train match: %zu/%zu buyers\n", done, buyers.size());
    }
    sampler.add(b);
  }
  return std::move(sampler).take();
}

models::TrainParams ranker_params(const MatchTrainOptions& options) {
  models::TrainParams params;
  params.objective = "binary:logistic";
  params.eval_metric = "logloss";
  params.max_depth = 4;
  params.eta = 0.05;
  params.num_rounds = options.rounds;
  params.early_stopping_rounds = 40;
  params.subsample = 0.8;
  params.colsample_bytree = 0.8;
  params.min_child_weight = 5;
  params.nthread = options.nthread;
  params.seed = static_cast<int>(options.seed);
  return params;
}

// Mean NDCG@10 of the validation buyers, ranking their pools by margin.
double validation_ndcg10(const std::vector<double>& margins, const std::vector<ValidQuery>& queries) {
  double ndcg = 0;
  for (const auto& q : queries) {
    std::vector<std::size_t> order(q.count);
    for (std::size_t i = 0; i < q.count; ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](std::size_t a, std::size_t b) { return margins[q.first + a] > margins[q.first + b]; });
    std::vector<std::uint32_t> ranked;
    for (std::size_t i = 0; i < std::min<std::size_t>(10, order.size()); ++i) ranked.push_back(q.pool[order[i]]);
    ndcg += ndcg_at_k(ranked, q.relevant, 10);
  }
  return ndcg / static_cast<double>(queries.size());
}

// Percentiles 0..100 of the margins: score() reads a margin as the share
// of candidate pairs it beats.
std::vector<double> margin_percentiles(std::vector<double> margins) {
  std::sort(margins.begin(), margins.end());
  std::vector<double> q;
  for (int p = 0; p <= 100; ++p) q.push_back(margins[(margins.size() - 1) * p / 100]);
  return q;
}

// Observed over predicted saves/tours in the validation buyers' top 10 (all
// of them, also those who saved nothing later) as ranked by `probe`;
// `fallback` when either is zero.
double interest_odds_scale(const ListingCatalog& catalog, const MatchModel& probe,
                           std::span<const MatchHistoryBuyer> buyers, UnixSeconds valid_from, std::size_t pool,
                           double fallback) {
  double predicted = 0, observed = 0;
  const Matcher ranked(catalog, std::shared_ptr<const MatchModel>(&probe, [](const MatchModel*) {}));
  MatchOptions top10;
  top10.pool = pool;
  top10.reasons = false;
  for (const auto& b : buyers) {
    if (b.created_at < valid_from) continue;
    for (const auto& m : ranked.top_k(b.preferences, b.as_of, top10)) {
      predicted += m.predicted_interest;
      observed += std::find(b.later_interest.begin(), b.later_interest.end(), m.listing) != b.later_interest.end();
    }
  }
  if (!(predicted > 0 && observed > 0)) return fallback;
  // For small probabilities odds ~ probability, so the ratio scales odds.
  return std::clamp(observed / predicted, 0.05, 20.0);
}

MatchTrainSummary summarise(const RankerPairs& pairs, double ndcg, int rounds,
                            std::chrono::steady_clock::time_point start) {
  MatchTrainSummary s;
  s.buyers = pairs.used;
  s.rows = pairs.train_x.rows;
  s.positives = pairs.positives;
  s.pool_recall = pairs.later_total > 0 ? static_cast<double>(pairs.later_in_pool) / pairs.later_total : 0;
  s.valid_ndcg10 = ndcg;
  s.rounds = rounds;
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return s;
}

// model.json "metrics": the summary and the options that shaped the model.
json::object metrics_of(const MatchTrainSummary& s, const MatchTrainOptions& options, std::size_t segments,
                        double interest_odds_scale) {
  return json::object{{"buyers", s.buyers},         {"training_pairs", s.rows},
                      {"positives", s.positives},   {"pool_recall", s.pool_recall},
                      {"valid_ndcg10_in_pool", s.valid_ndcg10}, {"rounds", s.rounds},
                      {"pool", options.pool},       {"segments", segments},
                      {"interest_odds_scale", interest_odds_scale},
                      {"seconds", s.seconds}};
}

}  // namespace

struct MatchModel::Impl {
  models::CompiledForest forest;
  bool has_forest = false;
  std::string ranker_json;
  std::vector<double> quantiles;  // margins of training candidate pairs, 0..100%
  BuyerSegments segments;
  std::vector<std::string> segment_levels;  // neighbourhood names of segments.neighbourhood
  json::object metrics;
  double interest_odds_scale = 1.0;  // post-hoc calibration of interest()
};

MatchModel::MatchModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
MatchModel::MatchModel(MatchModel&&) noexcept = default;
MatchModel& MatchModel::operator=(MatchModel&&) noexcept = default;
MatchModel::~MatchModel() = default;

double MatchModel::margin(const float* features) const {
  return impl_->has_forest ? impl_->forest.predict_margin(features) : 0.0;
}

double MatchModel::interest(double margin) const {
  // Scaling the odds shifts the margin: training re-weights sampled
  // negatives only roughly, so the scale is measured on validation buyers.
  return 1.0 / (1.0 + std::exp(-(margin + std::log(impl_->interest_odds_scale))));
}

double MatchModel::score(double margin) const {
  const auto& q = impl_->quantiles;
  if (q.size() < 2) return 1.0 / (1.0 + std::exp(-margin));
  if (margin <= q.front()) return 0.0;
  if (margin >= q.back()) return 1.0;
  const auto it = std::upper_bound(q.begin(), q.end(), margin);
  const std::size_t hi = static_cast<std::size_t>(it - q.begin());
  const double span = q[hi] - q[hi - 1];
  const double frac = span > 0 ? (margin - q[hi - 1]) / span : 0.5;
  return (static_cast<double>(hi - 1) + frac) / static_cast<double>(q.size() - 1);
}

BuyerSegments MatchModel::segments_for(const ListingCatalog& catalog) const {
  BuyerSegments s = impl_->segments;
  if (s.centres.empty()) return s;
  const std::size_t levels = catalog.neighbourhood_levels();
  for (auto& shares : s.neighbourhood) {
    std::vector<float> mapped(levels, 0.0f);
    for (std::size_t l = 0; l < levels; ++l) {
      const auto& name = catalog.neighbourhood_name(static_cast<int>(l));
      for (std::size_t j = 0; j < impl_->segment_levels.size() && j < shares.size(); ++j) {
        if (impl_->segment_levels[j] == name) mapped[l] = shares[j];
      }
    }
    shares = std::move(mapped);
  }
  return s;
}

std::string MatchModel::metrics_json() const { return json::serialize(impl_->metrics); }

Result<MatchModel> MatchModel::train(const ListingCatalog& catalog, std::span<const MatchHistoryBuyer> buyers,
                                     const MatchTrainOptions& options, MatchTrainSummary* summary) {
  const auto start = std::chrono::steady_clock::now();
  auto impl = std::make_unique<Impl>();
  impl->segments = fit_segments(catalog, preferences_of(buyers), options.segments, options.seed);
  impl->segment_levels = neighbourhood_names(catalog);
  // Stage 1 uses the segments for cold start, so candidates come from a
  // matcher that already has them.
  std::shared_ptr<const MatchModel> staging(new MatchModel(std::make_unique<Impl>(*impl)));
  const Matcher stage1(catalog, staging);
  const UnixSeconds valid_from = validation_start(buyers);
  const RankerPairs pairs = sample_pairs(catalog, stage1, buyers, options, valid_from);
  if (pairs.used < 20 || pairs.valid_queries.empty()) {
    return invalid_argument("too little history to learn from: " + std::to_string(pairs.used) +
                            " buyers saved or toured a candidate listing after the as-of time (need 20, some of them "
                            "among the most recent 20%)");
  }
  if (options.progress) {
    std::fprintf(stderr, "reai train match: %zu training pairs, %zu validation buyers; training\n",
                 pairs.train_x.rows, pairs.valid_queries.size());
  }
  auto booster = models::Booster::train(pairs.train_x, pairs.train_y, pairs.train_w, &pairs.valid_x, pairs.valid_y,
                                        ranker_params(options));
  if (!booster) return booster.status();
  auto text = booster->save_json();
  if (!text) return text.status();
  auto forest = models::CompiledForest::compile(*text);
  if (!forest) return forest.status();
  impl->ranker_json = std::move(*text);
  impl->forest = std::move(*forest);
  impl->has_forest = true;

  std::vector<double> margins(pairs.valid_x.rows);
  for (std::size_t r = 0; r < pairs.valid_x.rows; ++r) margins[r] = impl->forest.predict_margin(pairs.valid_x.row(r));
  const double ndcg = validation_ndcg10(margins, pairs.valid_queries);
  impl->quantiles = margin_percentiles(std::move(margins));
  {
    const MatchModel probe(std::make_unique<Impl>(*impl));
    impl->interest_odds_scale =
        interest_odds_scale(catalog, probe, buyers, valid_from, options.pool, impl->interest_odds_scale);
  }
  const MatchTrainSummary s = summarise(pairs, ndcg, booster->num_rounds(), start);
  impl->metrics = metrics_of(s, options, impl->segments.centres.size(), impl->interest_odds_scale);
  if (summary != nullptr) *summary = s;
  return MatchModel(std::move(impl));
}

Status MatchModel::save(const std::string& dir) const {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return internal_error("cannot create " + dir + ": " + ec.message());
  const Impl& m = *impl_;
  json::array names;
  for (const auto& n : match_feature_names()) names.emplace_back(n);
  json::array centres, nbs, levels;
  for (const auto& c : m.segments.centres) centres.push_back(floats(c));
  for (const auto& c : m.segments.neighbourhood) nbs.push_back(floats(c));
  for (const auto& l : m.segment_levels) levels.emplace_back(l);
  json::array quantiles;
  for (double q : m.quantiles) quantiles.emplace_back(q);
  json::object root{{"format", kFormat},
                    {"features", std::move(names)},
                    {"objective", "binary:logistic"},
                    {"metrics", m.metrics},
                    {"score_quantiles", std::move(quantiles)},
                    {"interest_odds_scale", m.interest_odds_scale},
                    {"segments", json::object{{"centres", std::move(centres)},
                                              {"scale", floats(m.segments.scale)},
                                              {"neighbourhood_levels", std::move(levels)},
                                              {"neighbourhood", std::move(nbs)}}}};
  REAI_RETURN_IF_ERROR(write_text_file(dir + "/model.json", json::serialize(root)));
  return write_text_file(dir + "/ranker.xgb.json", m.ranker_json);
}

namespace {

// The forest reads features by position: the model's names must be this
// build's, in this build's order.
Status check_feature_schema(const std::string& dir, const json::object& root, const std::vector<std::string>& expected) {
  const json::value* features = root.if_contains("features");
  if (features == nullptr || !features->is_array() || features->get_array().size() != expected.size()) {
    return invalid_argument(dir + "/model.json: feature schema differs from this build's");
  }
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto& v = features->get_array()[i];
    if (!v.is_string() || v.get_string() != expected[i]) {
      return invalid_argument(dir + "/model.json: feature schema differs from this build's");
    }
  }
  return Status::ok();
}

Status read_quantiles(const std::string& dir, const json::object& root, std::vector<double>* quantiles) {
  const json::value* list = root.if_contains("score_quantiles");
  if (list == nullptr || !list->is_array()) return invalid_argument(dir + "/model.json: bad score_quantiles");
  for (const auto& v : list->get_array()) {
    if (!v.is_number()) return invalid_argument(dir + "/model.json: bad score_quantiles");
    quantiles->push_back(v.to_number<double>());
  }
  return Status::ok();
}

// Models saved before the scale was measured keep *scale (1).
Status read_interest_odds_scale(const std::string& dir, const json::object& root, double* scale) {
  const auto* v = root.if_contains("interest_odds_scale");
  if (v == nullptr) return Status::ok();
  if (!v->is_number() || !(v->to_number<double>() > 0)) return invalid_argument(dir + "/model.json: bad interest_odds_scale");
  *scale = v->to_number<double>();
  return Status::ok();
}

// Each centre has the scale's dimensions; each segment its shares per
// neighbourhood level, named in `levels`.
Status read_segment_lists(const std::string& dir, const json::array& centres, const json::array& shares,
                          const json::array& levels, BuyerSegments* segments, std::vector<std::string>* level_names) {
  for (const auto& c : centres) {
    std::vector<float> v;
    if (!read_floats(&c, &v) || v.size() != segments->scale.size()) {
      return invalid_argument(dir + "/model.json: bad segment centre");
    }
    segments->centres.push_back(std::move(v));
  }
  for (const auto& c : shares) {
    std::vector<float> v;
    if (!read_floats(&c, &v)) return invalid_argument(dir + "/model.json: bad segment shares");
    segments->neighbourhood.push_back(std::move(v));
  }
  for (const auto& l : levels) {
    if (!l.is_string()) return invalid_argument(dir + "/model.json: bad segment level");
    level_names->emplace_back(l.get_string());
  }
  return Status::ok();
}

Status read_segments(const std::string& dir, const json::object& root, BuyerSegments* segments,
                     std::vector<std::string>* level_names) {
  const json::value* seg = root.if_contains("segments");
  if (seg == nullptr || !seg->is_object()) return invalid_argument(dir + "/model.json: bad segments");
  const auto& so = seg->get_object();
  const json::value* centres = so.if_contains("centres");
  const json::value* nbs = so.if_contains("neighbourhood");
  const json::value* levels = so.if_contains("neighbourhood_levels");
  if (centres == nullptr || !centres->is_array() || nbs == nullptr || !nbs->is_array() || levels == nullptr ||
      !levels->is_array() || !read_floats(so.if_contains("scale"), &segments->scale) ||
      centres->get_array().size() != nbs->get_array().size()) {
    return invalid_argument(dir + "/model.json: bad segments");
  }
  return read_segment_lists(dir, centres->get_array(), nbs->get_array(), levels->get_array(), segments, level_names);
}

Status read_ranker(const std::string& dir, std::size_t feature_count, std::string* ranker_json,
                   models::CompiledForest* forest) {
  auto ranker = read_text_file(dir + "/ranker.xgb.json");
  if (!ranker) return not_found("no ranker in " + dir + " (" + ranker.status().message() + ")");
  auto compiled = models::CompiledForest::compile(*ranker);
  if (!compiled) return invalid_argument(dir + "/ranker.xgb.json: " + compiled.status().message());
  if (compiled->num_features() != feature_count) {
    return invalid_argument(dir + "/ranker.xgb.json: feature count differs from this build's");
  }
  *ranker_json = std::move(*ranker);
  *forest = std::move(*compiled);
  return Status::ok();
}

}  // namespace

Result<MatchModel> MatchModel::load(const std::string& dir) {
  auto root = read_model_root(dir, "match", kFormat);
  if (!root) return root.status();
  const json::object& o = *root;
  const auto expected = match_feature_names();
  REAI_RETURN_IF_ERROR(check_feature_schema(dir, o, expected));
  auto impl = std::make_unique<Impl>();
  REAI_RETURN_IF_ERROR(read_quantiles(dir, o, &impl->quantiles));
  REAI_RETURN_IF_ERROR(read_interest_odds_scale(dir, o, &impl->interest_odds_scale));
  if (const auto* metrics = o.if_contains("metrics"); metrics != nullptr && metrics->is_object()) {
    impl->metrics = metrics->get_object();
  }
  REAI_RETURN_IF_ERROR(read_segments(dir, o, &impl->segments, &impl->segment_levels));
  REAI_RETURN_IF_ERROR(read_ranker(dir, expected.size(), &impl->ranker_json, &impl->forest));
  impl->has_forest = true;
  return MatchModel(std::move(impl));
}

}  // namespace reai::property
