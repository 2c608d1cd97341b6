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
  {
    std::vector<BuyerPreferences> prefs;
    prefs.reserve(buyers.size());
    for (const auto& b : buyers) prefs.push_back(b.preferences);
    impl->segments = fit_segments(catalog, prefs, options.segments, options.seed);
    for (std::size_t l = 0; l < catalog.neighbourhood_levels(); ++l) {
      impl->segment_levels.push_back(catalog.neighbourhood_name(static_cast<int>(l)));
    }
  }
  // Stage 1 uses the segments for cold start, so candidates come from a
  // matcher that already has them.
  std::shared_ptr<const MatchModel> staging(new MatchModel(std::make_unique<Impl>(*impl)));
  const Matcher stage1(catalog, staging);

  // Validation: the most recent 20% of buyers (by created_at).
  std::vector<UnixSeconds> created;
  for (const auto& b : buyers) created.push_back(b.created_at);
  std::sort(created.begin(), created.end());
  const UnixSeconds valid_from = created.empty() ? 0 : created[created.size() * 8 / 10];

  const std::size_t nf = match_feature_count();
  models::DenseMatrix train_x(0, nf), valid_x(0, nf);
  std::vector<float> train_y, train_w, valid_y;
  struct ValidQuery {
    std::size_t first = 0, count = 0;
    std::vector<std::uint32_t> pool, relevant;
  };
  std::vector<ValidQuery> valid_queries;
  std::mt19937 rng(options.seed);
  std::size_t later_total = 0, later_in_pool = 0, used = 0, positives = 0;
  std::vector<float> f(nf);
  std::size_t done = 0;
  for (const auto& b : buyers) {
    if (options.progress && ++done % 2000 == 0) {
      std::fprintf(stderr, "reai train match: %zu/%zu buyers\n", done, buyers.size());
    }
    const bool is_valid = b.created_at >= valid_from;
    const std::span<const float> seg_shares = [&]() -> std::span<const float> {
      const BuyerSegments* s = stage1.segments();
      if (s == nullptr) return {};
      const int k = s->assign(b.preferences);
      return k >= 0 ? std::span<const float>(s->neighbourhood[k]) : std::span<const float>();
    }();
    const bool use_views = options.view_label_weight > 0 && !is_valid;
    if (b.later_interest.empty() && !is_valid && !(use_views && !b.later_views.empty())) {
      // A few negatives from buyers who saved nothing later keep predicted
      // interest honest (most buyers save nothing).
      if (rng() % 4 != 0) continue;
      auto pool = stage1.candidates(b.preferences, b.as_of, options.pool);
      if (pool.empty()) continue;
      constexpr int kTake = 5;
      for (int t = 0; t < kTake; ++t) {
        const auto i = pool[rng() % pool.size()];
        match_features(catalog, b.preferences, i, b.as_of, seg_shares, f.data());
        train_x.append_row(f);
        train_y.push_back(0);
        train_w.push_back(4.0f * static_cast<float>(pool.size()) / kTake);
      }
      continue;
    }
    if (b.later_interest.empty() && !use_views) continue;
    auto pool = stage1.candidates(b.preferences, b.as_of, options.pool);
    const auto in_pool = [&](std::uint32_t id) { return std::find(pool.begin(), pool.end(), id) != pool.end(); };
    later_total += b.later_interest.size();
    std::vector<std::uint32_t> relevant, viewed;
    for (auto id : b.later_interest) {
      if (in_pool(id)) relevant.push_back(id);
    }
    if (use_views) {
      for (auto id : b.later_views) {
        if (in_pool(id) && std::find(relevant.begin(), relevant.end(), id) == relevant.end()) viewed.push_back(id);
      }
    }
    later_in_pool += relevant.size();
    if (relevant.empty() && viewed.empty()) continue;
    if (is_valid) {
      if (relevant.empty()) continue;
      ++used;
      positives += relevant.size();
      ValidQuery q;
      q.first = valid_x.rows;
      q.count = pool.size();
      for (auto i : pool) {
        match_features(catalog, b.preferences, i, b.as_of, seg_shares, f.data());
        valid_x.append_row(f);
        valid_y.push_back(std::find(relevant.begin(), relevant.end(), i) != relevant.end() ? 1.0f : 0.0f);
      }
      q.pool = std::move(pool);
      q.relevant = b.later_interest;
      valid_queries.push_back(std::move(q));
      continue;
    }
    used += !relevant.empty();
    positives += relevant.size();
    for (auto i : relevant) {
      match_features(catalog, b.preferences, i, b.as_of, seg_shares, f.data());
      train_x.append_row(f);
      train_y.push_back(1);
      train_w.push_back(1);
    }
    for (auto i : viewed) {
      match_features(catalog, b.preferences, i, b.as_of, seg_shares, f.data());
      train_x.append_row(f);
      train_y.push_back(1);
      train_w.push_back(static_cast<float>(options.view_label_weight));
    }
    const std::size_t labelled = relevant.size() + viewed.size();
    const std::size_t negatives = pool.size() - labelled;
    const int take = static_cast<int>(std::min<std::size_t>(options.negatives_per_buyer, negatives));
    const auto is_labelled = [&](std::uint32_t i) {
      return std::find(relevant.begin(), relevant.end(), i) != relevant.end() ||
             std::find(viewed.begin(), viewed.end(), i) != viewed.end();
    };
    for (int t = 0; t < take; ++t) {
      std::uint32_t i;
      do {
        i = pool[rng() % pool.size()];
      } while (is_labelled(i));
      match_features(catalog, b.preferences, i, b.as_of, seg_shares, f.data());
      train_x.append_row(f);
      train_y.push_back(0);
      train_w.push_back(static_cast<float>(negatives) / static_cast<float>(take));
    }
  }
  if (used < 20 || valid_queries.empty()) {
    return invalid_argument("too little history to learn from: " + std::to_string(used) +
                            " buyers saved or toured a candidate listing after the as-of time (need 20, some of them "
                            "among the most recent 20%)");
  }
  if (options.progress) {
    std::fprintf(stderr, "reai train match: %zu training pairs, %zu validation buyers; training\n", train_x.rows,
                 valid_queries.size());
  }
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
  auto booster = models::Booster::train(train_x, train_y, train_w, &valid_x, valid_y, params);
  if (!booster) return booster.status();
  auto text = booster->save_json();
  if (!text) return text.status();
  auto forest = models::CompiledForest::compile(*text);
  if (!forest) return forest.status();
  impl->ranker_json = std::move(*text);
  impl->forest = std::move(*forest);
  impl->has_forest = true;

  // Validation NDCG@10 inside the pool, and the score scale.
  std::vector<double> margins(valid_x.rows);
  for (std::size_t r = 0; r < valid_x.rows; ++r) margins[r] = impl->forest.predict_margin(valid_x.row(r));
  double ndcg = 0;
  for (const auto& q : valid_queries) {
    std::vector<std::size_t> order(q.count);
    for (std::size_t i = 0; i < q.count; ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](std::size_t a, std::size_t b) { return margins[q.first + a] > margins[q.first + b]; });
    std::vector<std::uint32_t> ranked;
    for (std::size_t i = 0; i < std::min<std::size_t>(10, order.size()); ++i) ranked.push_back(q.pool[order[i]]);
    ndcg += ndcg_at_k(ranked, q.relevant, 10);
  }
  ndcg /= static_cast<double>(valid_queries.size());
  std::vector<double> sorted = margins;
  std::sort(sorted.begin(), sorted.end());
  for (int p = 0; p <= 100; ++p) impl->quantiles.push_back(sorted[(sorted.size() - 1) * p / 100]);

  // Calibrate predicted interest on the validation buyers' top 10 (all of
  // them, also those who saved nothing later).
  {
    double predicted = 0, observed = 0;
    const MatchModel probe(std::make_unique<Impl>(*impl));
    const Matcher ranked(catalog, std::shared_ptr<const MatchModel>(&probe, [](const MatchModel*) {}));
    MatchOptions top10;
    top10.pool = options.pool;
    top10.reasons = false;
    for (const auto& b : buyers) {
      if (b.created_at < valid_from) continue;
      for (const auto& m : ranked.top_k(b.preferences, b.as_of, top10)) {
        predicted += m.predicted_interest;
        observed += std::find(b.later_interest.begin(), b.later_interest.end(), m.listing) != b.later_interest.end();
      }
    }
    if (predicted > 0 && observed > 0) {
      // For small probabilities odds ~ probability, so the ratio scales odds.
      impl->interest_odds_scale = std::clamp(observed / predicted, 0.05, 20.0);
    }
  }

  MatchTrainSummary s;
  s.buyers = used;
  s.rows = train_x.rows;
  s.positives = positives;
  s.pool_recall = later_total > 0 ? static_cast<double>(later_in_pool) / later_total : 0;
  s.valid_ndcg10 = ndcg;
  s.rounds = booster->num_rounds();
  s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  impl->metrics = json::object{{"buyers", s.buyers},         {"training_pairs", s.rows},
                               {"positives", s.positives},   {"pool_recall", s.pool_recall},
                               {"valid_ndcg10_in_pool", s.valid_ndcg10}, {"rounds", s.rounds},
                               {"pool", options.pool},       {"segments", impl->segments.centres.size()},
                               {"interest_odds_scale", impl->interest_odds_scale},
                               {"seconds", s.seconds}};
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

Result<MatchModel> MatchModel::load(const std::string& dir) {
  auto text = read_text_file(dir + "/model.json");
  if (!text) return not_found("no match model in " + dir + " (" + text.status().message() + ")");
  json::error_code ec;
  json::value root = json::parse(*text, ec);
  if (ec || !root.is_object()) return invalid_argument(dir + "/model.json does not parse");
  const auto& o = root.get_object();
  const json::value* format = o.if_contains("format");
  if (format == nullptr || !format->is_string() || format->get_string() != kFormat) {
    return invalid_argument(dir + "/model.json is not a " + std::string(kFormat) + " model");
  }
  const json::value* features = o.if_contains("features");
  const auto expected = match_feature_names();
  if (features == nullptr || !features->is_array() || features->get_array().size() != expected.size()) {
    return invalid_argument(dir + "/model.json: feature schema differs from this build's");
  }
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const auto& v = features->get_array()[i];
    if (!v.is_string() || v.get_string() != expected[i]) {
      return invalid_argument(dir + "/model.json: feature schema differs from this build's");
    }
  }
  auto impl = std::make_unique<Impl>();
  const json::value* quantiles = o.if_contains("score_quantiles");
  if (quantiles == nullptr || !quantiles->is_array()) return invalid_argument(dir + "/model.json: bad score_quantiles");
  for (const auto& v : quantiles->get_array()) {
    if (!v.is_number()) return invalid_argument(dir + "/model.json: bad score_quantiles");
    impl->quantiles.push_back(v.to_number<double>());
  }
  if (const auto* scale = o.if_contains("interest_odds_scale"); scale != nullptr) {
    if (!scale->is_number() || !(scale->to_number<double>() > 0)) {
      return invalid_argument(dir + "/model.json: bad interest_odds_scale");
    }
    impl->interest_odds_scale = scale->to_number<double>();
  }
  if (const auto* metrics = o.if_contains("metrics"); metrics != nullptr && metrics->is_object()) {
    impl->metrics = metrics->get_object();
  }
  const json::value* seg = o.if_contains("segments");
  if (seg == nullptr || !seg->is_object()) return invalid_argument(dir + "/model.json: bad segments");
  const auto& so = seg->get_object();
  const json::value* centres = so.if_contains("centres");
  const json::value* nbs = so.if_contains("neighbourhood");
  const json::value* levels = so.if_contains("neighbourhood_levels");
  if (centres == nullptr || !centres->is_array() || nbs == nullptr || !nbs->is_array() || levels == nullptr ||
      !levels->is_array() || !read_floats(so.if_contains("scale"), &impl->segments.scale) ||
      centres->get_array().size() != nbs->get_array().size()) {
    return invalid_argument(dir + "/model.json: bad segments");
  }
  for (const auto& c : centres->get_array()) {
    std::vector<float> v;
    if (!read_floats(&c, &v) || v.size() != impl->segments.scale.size()) {
      return invalid_argument(dir + "/model.json: bad segment centre");
    }
    impl->segments.centres.push_back(std::move(v));
  }
  for (const auto& c : nbs->get_array()) {
    std::vector<float> v;
    if (!read_floats(&c, &v)) return invalid_argument(dir + "/model.json: bad segment shares");
    impl->segments.neighbourhood.push_back(std::move(v));
  }
  for (const auto& l : levels->get_array()) {
    if (!l.is_string()) return invalid_argument(dir + "/model.json: bad segment level");
    impl->segment_levels.emplace_back(l.get_string());
  }
  auto ranker = read_text_file(dir + "/ranker.xgb.json");
  if (!ranker) return not_found("no ranker in " + dir + " (" + ranker.status().message() + ")");
  auto forest = models::CompiledForest::compile(*ranker);
  if (!forest) return invalid_argument(dir + "/ranker.xgb.json: " + forest.status().message());
  if (forest->num_features() != expected.size()) {
    return invalid_argument(dir + "/ranker.xgb.json: feature count differs from this build's");
  }
  impl->ranker_json = std::move(*ranker);
  impl->forest = std::move(*forest);
  impl->has_forest = true;
  return MatchModel(std::move(impl));
}

}  // namespace reai::property
