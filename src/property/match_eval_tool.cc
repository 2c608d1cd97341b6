// match_eval: measures property matching on a time split of a CRM history,
// the way the holdout is measured (EVALUATION.md "Property matching").
//
//   match_eval [--crm DIR] [--listings ames.csv] [--price-column Sale_Price]
//              [--cutoff 2025-07-01] [--eval-end 2025-10-01] [--as-of-days 7]
//
// Trains the ranker on buyers created before the cutoff, with history before
// the cutoff only; evaluates buyers created in [cutoff, eval-end) at
// created_at + as-of-days against the listings they save or request a tour
// of after that instant (excluding ones saved before). Prints NDCG@10 and
// recall@10 for: the most-saved listings, the content scorer, the learned
// ranker. Reads $REAI_SHARED_DATA (default /work/shared/data).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/crm_csv.h"
#include "core/time.h"
#include "property/matching.h"

using namespace reai;
using namespace reai::property;

namespace {

struct Scores {
  double ndcg = 0, recall = 0;
  std::size_t buyers = 0;
  void add(const std::vector<std::uint32_t>& ranked, const std::vector<std::uint32_t>& relevant) {
    ndcg += ndcg_at_k(ranked, relevant, 10);
    recall += recall_at_k(ranked, relevant, 10);
    ++buyers;
  }
  void print(const char* name) const {
    std::printf("%-28s NDCG@10 %.4f  recall@10 %.4f  (%zu buyers)\n", name, ndcg / buyers, recall / buyers, buyers);
  }
};

int fail(const Status& s) {
  std::fprintf(stderr, "match_eval: %s\n", s.message().c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  const char* env = std::getenv("REAI_SHARED_DATA");
  const std::string shared = env ? env : "/work/shared/data";
  std::string crm = shared + "/crm", listings_path = shared + "/ames.csv", price = "Sale_Price";
  std::string cutoff_text = "2025-07-01T00:00:00Z", end_text = "2025-10-01T00:00:00Z", model_dir;
  double as_of_days = 7;
  MatchTrainOptions train_options;
  train_options.progress = true;
  PreferenceOptions pref;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--crm") crm = v;
    else if (a == "--listings") listings_path = v;
    else if (a == "--price-column") price = v;
    else if (a == "--cutoff") cutoff_text = v + "T00:00:00Z";
    else if (a == "--eval-end") end_text = v + "T00:00:00Z";
    else if (a == "--as-of-days") as_of_days = std::atof(v.c_str());
    else if (a == "--pool") train_options.pool = std::strtoul(v.c_str(), nullptr, 10);
    else if (a == "--negatives") train_options.negatives_per_buyer = std::atoi(v.c_str());
    else if (a == "--segments") train_options.segments = std::atoi(v.c_str());
    else if (a == "--view-weight") train_options.view_label_weight = std::atof(v.c_str());
    else if (a == "--half-life") pref.half_life_days = std::atof(v.c_str());
    else if (a == "--save-model") model_dir = v;
    else {
      std::fprintf(stderr, "match_eval: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  const auto cutoff = parse_iso8601(cutoff_text);
  const auto eval_end = parse_iso8601(end_text);
  if (!cutoff || !eval_end) return fail(invalid_argument("bad --cutoff or --eval-end (YYYY-MM-DD)"));
  const auto t0 = std::chrono::steady_clock::now();
  auto catalog = ListingCatalog::load(listings_path, {price, ""});
  if (!catalog) return fail(catalog.status());
  std::fprintf(stderr, "match_eval: %s\n", catalog->describe().c_str());
  CsvLoadOptions load;
  auto contacts = load_contacts_csv(crm + "/contacts.csv", load, nullptr);
  if (!contacts) return fail(contacts.status());
  auto events = load_events_csv(crm + "/events.csv", load, nullptr);
  if (!events) return fail(events.status());
  const long long as_of = static_cast<long long>(as_of_days * 86400);

  // Training: contacts created before the cutoff, events before the cutoff.
  std::vector<Contact> train_contacts, eval_contacts;
  for (const auto& c : *contacts) {
    if (c.created_at < *cutoff) train_contacts.push_back(c);
    else if (c.created_at < *eval_end) eval_contacts.push_back(c);
  }
  std::vector<Event> train_events;
  for (const auto& e : *events) {
    if (e.ts < *cutoff) train_events.push_back(e);
  }
  ListingCatalog train_catalog = *catalog;
  std::size_t unknown = 0;
  auto train_buyers = build_match_history(train_catalog, train_contacts, train_events, as_of, pref, &unknown);
  MatchTrainSummary summary;
  auto model = MatchModel::train(train_catalog, train_buyers, train_options, &summary);
  if (!model) return fail(model.status());
  std::fprintf(stderr,
               "match_eval: trained on %zu buyers (%zu pairs, %zu positives) in %.1f s; pool recall %.3f, "
               "validation NDCG@10 in pool %.4f, %d rounds\n",
               summary.buyers, summary.rows, summary.positives, summary.seconds, summary.pool_recall,
               summary.valid_ndcg10, summary.rounds);
  if (!model_dir.empty()) {
    if (Status s = model->save(model_dir); !s.is_ok()) return fail(s);
  }
  auto shared_model = std::make_shared<const MatchModel>(std::move(*model));

  // Evaluation: all events (popularity only counts what happened before each
  // buyer's as-of instant).
  ListingCatalog eval_catalog = *catalog;
  auto eval_buyers = build_match_history(eval_catalog, eval_contacts, *events, as_of, pref, &unknown);
  const Matcher content(eval_catalog, nullptr);
  const Matcher learned(eval_catalog, shared_model);
  Scores popular, content_scores, learned_scores, learned_nodiv, pool_recall;
  // Calibration of predicted_interest on the learned top 10, over every
  // evaluated buyer (also those who saved nothing later).
  double predicted_sum = 0, observed_sum = 0;
  std::size_t calibration_n = 0;
  MatchOptions options;
  MatchOptions nodiv = options;
  nodiv.diversify = false;
  std::vector<std::uint32_t> order = eval_catalog.by_price();
  for (const auto& b : eval_buyers) {
    {
      const auto top = learned.top_k(b.preferences, b.as_of, options);
      for (const auto& m : top) {
        predicted_sum += m.predicted_interest;
        observed_sum += std::find(b.later_interest.begin(), b.later_interest.end(), m.listing) != b.later_interest.end();
        ++calibration_n;
      }
    }
    if (b.later_interest.empty()) continue;
    // Most saved before the as-of instant, excluding the buyer's saves.
    std::vector<std::pair<int, std::uint32_t>> pop;
    for (std::uint32_t i = 0; i < eval_catalog.size(); ++i) {
      if (!b.preferences.saved(i)) pop.emplace_back(-eval_catalog.popularity(i, b.as_of), i);
    }
    std::partial_sort(pop.begin(), pop.begin() + 10, pop.end());
    std::vector<std::uint32_t> ranked;
    for (int i = 0; i < 10; ++i) ranked.push_back(pop[i].second);
    popular.add(ranked, b.later_interest);
    const auto to_ids = [](const std::vector<Match>& ms) {
      std::vector<std::uint32_t> ids;
      for (const auto& m : ms) ids.push_back(m.listing);
      return ids;
    };
    content_scores.add(to_ids(content.top_k(b.preferences, b.as_of, options)), b.later_interest);
    const auto learned_top = learned.top_k(b.preferences, b.as_of, options);
    learned_scores.add(to_ids(learned_top), b.later_interest);
    learned_nodiv.add(to_ids(learned.top_k(b.preferences, b.as_of, nodiv)), b.later_interest);
    const auto pool = learned.candidates(b.preferences, b.as_of, train_options.pool);
    pool_recall.recall += recall_at_k(pool, b.later_interest, pool.size());
    ++pool_recall.buyers;
  }
  std::printf("as of %.0f days; buyers created %s .. %s with a later save/tour\n", as_of_days, cutoff_text.c_str(),
              end_text.c_str());
  popular.print("most saved");
  content_scores.print("content scorer");
  learned_scores.print("learned ranker");
  learned_nodiv.print("learned, no diversity");
  std::printf("candidate pool (%zu) recall: %.4f\n", train_options.pool, pool_recall.recall / pool_recall.buyers);
  std::printf("learned top 10, all %zu evaluated buyers: mean predicted_interest %.4f, observed save/tour rate %.4f\n",
              eval_buyers.size(), predicted_sum / std::max<std::size_t>(1, calibration_n),
              observed_sum / std::max<std::size_t>(1, calibration_n));
  std::printf("total %.1f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}
