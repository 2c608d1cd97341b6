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

struct MatchEvalArgs {
  std::string crm, listings_path, price = "Sale_Price";
  std::string cutoff_text = "2025-07-01T00:00:00Z", end_text = "2025-10-01T00:00:00Z", model_dir;
  double as_of_days = 7;
  MatchTrainOptions train_options;
  PreferenceOptions pref;
};

Status parse_args(int argc, char** argv, MatchEvalArgs* args) {
  const char* env = std::getenv("REAI_SHARED_DATA");
  const std::string shared = env ? env : "/work/shared/data";
  args->crm = shared + "/crm";
  args->listings_path = shared + "/ames.csv";
  args->train_options.progress = true;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i], v = argv[i + 1];
    if (a == "--crm") args->crm = v;
    else if (a == "--listings") args->listings_path = v;
    else if (a == "--price-column") args->price = v;
    else if (a == "--cutoff") args->cutoff_text = v + "T00:00:00Z";
    else if (a == "--eval-end") args->end_text = v + "T00:00:00Z";
    else if (a == "--as-of-days") args->as_of_days = std::atof(v.c_str());
    else if (a == "--pool") args->train_options.pool = std::strtoul(v.c_str(), nullptr, 10);
    else if (a == "--negatives") args->train_options.negatives_per_buyer = std::atoi(v.c_str());
    else if (a == "--segments") args->train_options.segments = std::atoi(v.c_str());
    else if (a == "--view-weight") args->train_options.view_label_weight = std::atof(v.c_str());
    else if (a == "--half-life") args->pref.half_life_days = std::atof(v.c_str());
    else if (a == "--save-model") args->model_dir = v;
    else return invalid_argument("unknown option " + a);
  }
  return Status::ok();
}

// The ranker trained on buyers created before the cutoff, with events before
// the cutoff only; saved to --save-model when given.
Result<std::shared_ptr<const MatchModel>> train_ranker(const MatchEvalArgs& args, const ListingCatalog& catalog,
                                                       const std::vector<Contact>& contacts,
                                                       const std::vector<Event>& events, UnixSeconds cutoff,
                                                       long long as_of) {
  std::vector<Contact> train_contacts;
  for (const auto& c : contacts) {
    if (c.created_at < cutoff) train_contacts.push_back(c);
  }
  std::vector<Event> train_events;
  for (const auto& e : events) {
    if (e.ts < cutoff) train_events.push_back(e);
  }
  ListingCatalog train_catalog = catalog;
  std::size_t unknown = 0;
  auto train_buyers = build_match_history(train_catalog, train_contacts, train_events, as_of, args.pref, &unknown);
  MatchTrainSummary summary;
  auto model = MatchModel::train(train_catalog, train_buyers, args.train_options, &summary);
  if (!model) return model.status();
  std::fprintf(stderr,
               "match_eval: trained on %zu buyers (%zu pairs, %zu positives) in %.1f s; pool recall %.3f, "
               "validation NDCG@10 in pool %.4f, %d rounds\n",
               summary.buyers, summary.rows, summary.positives, summary.seconds, summary.pool_recall,
               summary.valid_ndcg10, summary.rounds);
  if (!args.model_dir.empty()) {
    if (Status s = model->save(args.model_dir); !s.is_ok()) return s;
  }
  return std::make_shared<const MatchModel>(std::move(*model));
}

std::vector<std::uint32_t> ids_of(const std::vector<Match>& matches) {
  std::vector<std::uint32_t> ids;
  for (const auto& m : matches) ids.push_back(m.listing);
  return ids;
}

// The 10 listings most saved before the buyer's as-of instant, the buyer's
// own saves excluded.
std::vector<std::uint32_t> most_saved(const ListingCatalog& catalog, const MatchHistoryBuyer& b) {
  std::vector<std::pair<int, std::uint32_t>> pop;
  for (std::uint32_t i = 0; i < catalog.size(); ++i) {
    if (!b.preferences.saved(i)) pop.emplace_back(-catalog.popularity(i, b.as_of), i);
  }
  std::partial_sort(pop.begin(), pop.begin() + 10, pop.end());
  std::vector<std::uint32_t> ranked;
  for (int i = 0; i < 10; ++i) ranked.push_back(pop[i].second);
  return ranked;
}

struct MatchEvalReport {
  Scores popular, content, learned, learned_nodiv, pool_recall;
  // The learned ranker on the scored buyers whose budget follows their
  // behaviour at the as-of instant (EffectiveBudget), and how many stated one.
  Scores learned_budget_moved;
  std::size_t with_budget = 0;
  // Calibration of predicted_interest on the learned top 10, over every
  // evaluated buyer (also those who saved nothing later).
  double predicted_sum = 0, observed_sum = 0;
  std::size_t calibration_n = 0;
};

void evaluate_buyer(const MatchHistoryBuyer& b, const ListingCatalog& catalog, const Matcher& content,
                    const Matcher& learned, std::size_t pool_size, MatchEvalReport* report) {
  MatchOptions options;
  MatchOptions nodiv = options;
  nodiv.diversify = false;
  const auto learned_top = learned.top_k(b.preferences, b.as_of, options);
  for (const auto& m : learned_top) {
    report->predicted_sum += m.predicted_interest;
    report->observed_sum +=
        std::find(b.later_interest.begin(), b.later_interest.end(), m.listing) != b.later_interest.end();
    ++report->calibration_n;
  }
  if (b.later_interest.empty()) return;
  report->popular.add(most_saved(catalog, b), b.later_interest);
  report->content.add(ids_of(content.top_k(b.preferences, b.as_of, options)), b.later_interest);
  report->learned.add(ids_of(learned_top), b.later_interest);
  const auto& budget = b.preferences.effective_budget();
  report->with_budget += budget.has_value();
  if (budget && budget->follows_behaviour) report->learned_budget_moved.add(ids_of(learned_top), b.later_interest);
  report->learned_nodiv.add(ids_of(learned.top_k(b.preferences, b.as_of, nodiv)), b.later_interest);
  const auto pool = learned.candidates(b.preferences, b.as_of, pool_size);
  report->pool_recall.recall += recall_at_k(pool, b.later_interest, pool.size());
  ++report->pool_recall.buyers;
}

void print_report(const MatchEvalArgs& args, const MatchEvalReport& r, std::size_t evaluated) {
  std::printf("as of %.0f days; buyers created %s .. %s with a later save/tour\n", args.as_of_days,
              args.cutoff_text.c_str(), args.end_text.c_str());
  r.popular.print("most saved");
  r.content.print("content scorer");
  r.learned.print("learned ranker");
  r.learned_nodiv.print("learned, no diversity");
  std::printf("budget follows behaviour for %zu of the %zu scored buyers with a budget", r.learned_budget_moved.buyers,
              r.with_budget);
  if (r.learned_budget_moved.buyers > 0) {
    std::printf(": learned NDCG@10 %.4f on them", r.learned_budget_moved.ndcg / r.learned_budget_moved.buyers);
  }
  std::printf("\n");
  std::printf("candidate pool (%zu) recall: %.4f\n", args.train_options.pool, r.pool_recall.recall / r.pool_recall.buyers);
  std::printf("learned top 10, all %zu evaluated buyers: mean predicted_interest %.4f, observed save/tour rate %.4f\n",
              evaluated, r.predicted_sum / std::max<std::size_t>(1, r.calibration_n),
              r.observed_sum / std::max<std::size_t>(1, r.calibration_n));
}

}  // namespace

int main(int argc, char** argv) {
  MatchEvalArgs args;
  if (Status s = parse_args(argc, argv, &args); !s.is_ok()) return fail(s);
  const auto cutoff = parse_iso8601(args.cutoff_text);
  const auto eval_end = parse_iso8601(args.end_text);
  if (!cutoff || !eval_end) return fail(invalid_argument("bad --cutoff or --eval-end (YYYY-MM-DD)"));
  const auto t0 = std::chrono::steady_clock::now();
  auto catalog = ListingCatalog::load(args.listings_path, {args.price, ""});
  if (!catalog) return fail(catalog.status());
  std::fprintf(stderr, "match_eval: %s\n", catalog->describe().c_str());
  CsvLoadOptions load;
  auto contacts = load_contacts_csv(args.crm + "/contacts.csv", load, nullptr);
  if (!contacts) return fail(contacts.status());
  auto events = load_events_csv(args.crm + "/events.csv", load, nullptr);
  if (!events) return fail(events.status());
  const long long as_of = static_cast<long long>(args.as_of_days * 86400);
  auto model = train_ranker(args, *catalog, *contacts, *events, *cutoff, as_of);
  if (!model) return fail(model.status());

  // Evaluation: all events (popularity only counts what happened before each
  // buyer's as-of instant).
  std::vector<Contact> eval_contacts;
  for (const auto& c : *contacts) {
    if (c.created_at >= *cutoff && c.created_at < *eval_end) eval_contacts.push_back(c);
  }
  ListingCatalog eval_catalog = *catalog;
  std::size_t unknown = 0;
  auto eval_buyers = build_match_history(eval_catalog, eval_contacts, *events, as_of, args.pref, &unknown);
  const Matcher content(eval_catalog, nullptr);
  const Matcher learned(eval_catalog, *model);
  MatchEvalReport report;
  for (const auto& b : eval_buyers) evaluate_buyer(b, eval_catalog, content, learned, args.train_options.pool, &report);
  print_report(args, report, eval_buyers.size());
  std::printf("total %.1f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}
