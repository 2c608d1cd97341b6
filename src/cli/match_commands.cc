// `reai match`, `reai train match` (shared/EVALUATION.md "Property matching").
#include "cli/match_commands.h"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cli/cli.h"
#include "core/crm_history.h"
#include "core/csv.h"
#include "property/matching.h"

namespace reai::cli {
namespace {

struct MatchArgs {
  std::string listings, price_column, id_column, contacts, events, out, model;
  double as_of_days = 7;
  int k = 10;
  int threads = 2;
  std::string details;
};

struct History {
  property::ListingCatalog catalog;
  std::vector<property::MatchHistoryBuyer> buyers;
};

Result<History> load_history(const MatchArgs& args, const char* command) {
  if (!(args.as_of_days >= 0)) return invalid_argument("--as-of-days must be >= 0");
  std::cerr << command << ": reading " << args.listings << "\n";
  auto catalog = property::ListingCatalog::load(args.listings, {args.price_column, args.id_column});
  if (!catalog) return catalog.status();
  std::cerr << "  " << catalog->describe();
  if (catalog->skipped_rows() > 0) std::cerr << " (" << catalog->skipped_rows() << " rows without a price skipped)";
  std::cerr << "\n";
  auto crm = load_crm_history(args.contacts, args.events, std::nullopt);  // no stage rows
  if (!crm) return crm.status();
  History h{std::move(*catalog), {}};
  std::size_t unknown = 0;
  h.buyers = property::build_match_history(h.catalog, crm->contacts, crm->events,
                                           static_cast<long long>(args.as_of_days * 86400), {}, &unknown);
  std::cerr << "  " << crm->contacts.size() << " contacts (" << h.buyers.size() << " buyers, both or investors), "
            << crm->events.size() << " events";
  if (unknown > 0) std::cerr << "; " << unknown << " property events name a listing not in the file (ignored)";
  std::cerr << "\n";
  return h;
}

// No --model: a null model, which makes the Matcher use its content scorer.
Result<std::shared_ptr<const property::MatchModel>> load_model_if_given(const std::string& dir) {
  if (dir.empty()) return std::shared_ptr<const property::MatchModel>();
  auto loaded = property::MatchModel::load(dir);
  if (!loaded) return loaded.status();
  return std::make_shared<const property::MatchModel>(std::move(*loaded));
}

// Every buyer's top matches, in buyers' order. Buyers are dealt round-robin
// to `threads` workers; worker 0 reports progress about every 5,000 buyers.
std::vector<std::vector<property::Match>> match_all(const property::Matcher& matcher,
                                                    const std::vector<property::MatchHistoryBuyer>& buyers,
                                                    const property::MatchOptions& options, int threads) {
  std::vector<std::vector<property::Match>> results(buyers.size());
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      for (std::size_t i = t; i < buyers.size(); i += threads) {
        results[i] = matcher.top_k(buyers[i].preferences, buyers[i].as_of, options);
        if (t == 0 && i % 5000 < static_cast<std::size_t>(threads) && i > 0) {
          std::fprintf(stderr, "reai match: %zu/%zu buyers\n", i, buyers.size());
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  return results;
}

// The --details row: the --out row plus predicted interest and the reasons.
void write_details_row(std::ostream& details, const std::string& contact_id, std::size_t rank,
                       const std::string& listing_id, const char* score, const property::Match& m) {
  char interest[32];
  std::snprintf(interest, sizeof interest, "%.9g", m.predicted_interest);
  std::string reasons;
  for (const auto& reason : m.reasons) reasons += (reasons.empty() ? "" : "; ") + reason;
  details << contact_id << ',' << rank << ',' << listing_id << ',' << score << ',' << interest << ','
          << csv_field(reasons) << '\n';
}

// Writes --out (and --details when given); returns the number of rows.
Result<std::size_t> write_matches(const MatchArgs& args, const History& history,
                                  const std::vector<std::vector<property::Match>>& results) {
  std::ofstream out(args.out);
  if (!out) return invalid_argument("cannot write " + args.out);
  out << "contact_id,rank,property_id,match_score\n";
  std::ofstream details;
  if (!args.details.empty()) {
    details.open(args.details);
    if (!details) return invalid_argument("cannot write " + args.details);
    details << "contact_id,rank,property_id,match_score,predicted_interest,reasons\n";
  }
  char score[32];
  std::size_t rows = 0;
  for (std::size_t i = 0; i < history.buyers.size(); ++i) {
    const std::string& contact_id = history.buyers[i].contact_id;
    for (std::size_t r = 0; r < results[i].size(); ++r) {
      const auto& m = results[i][r];
      // Nine significant digits: with six decimals a far-off listing read
      // 0.000000 and close ones tied at 0.500000 (a content score near its
      // top for a buyer with only a budget); "%g" may write 1.5e-07.
      std::snprintf(score, sizeof score, "%.9g", m.match_score);
      const std::string& id = history.catalog.listing(m.listing).id;
      out << contact_id << ',' << r + 1 << ',' << id << ',' << score << '\n';
      if (details) write_details_row(details, contact_id, r + 1, id, score, m);
      ++rows;
    }
  }
  out.close();
  if (!out) return internal_error("failed writing " + args.out);
  return rows;
}

int run_match(const MatchArgs& args) {
  if (args.k <= 0) return report_failure(invalid_argument("--k must be positive"));
  auto model = load_model_if_given(args.model);
  if (!model) return report_failure(model.status());
  auto history = load_history(args, "reai match");
  if (!history) return report_failure(history.status());
  const property::Matcher matcher(history->catalog, *model);
  property::MatchOptions options;
  options.k = static_cast<std::size_t>(args.k);
  options.reasons = !args.details.empty();
  const auto results = match_all(matcher, history->buyers, options, std::max(1, args.threads));
  auto rows = write_matches(args, *history, results);
  if (!rows) return report_failure(rows.status());
  std::cerr << "reai match: wrote " << *rows << " recommendations for " << history->buyers.size() << " buyers to "
            << args.out
            << (*model ? " (learned ranker)" : " (content scorer; pass --model for the learned ranker)") << "\n";
  return kExitOk;
}

int run_train_match(const MatchArgs& args) {
  auto history = load_history(args, "reai train match");
  if (!history) return report_failure(history.status());
  property::MatchTrainOptions options;
  options.progress = true;
  options.nthread = args.threads;
  property::MatchTrainSummary summary;
  auto model = property::MatchModel::train(history->catalog, history->buyers, options, &summary);
  if (!model) return report_failure(model.status());
  if (Status s = model->save(args.out); !s.is_ok()) return report_failure(s);
  std::printf("match model written to %s in %.1f s: %zu buyers with a later save/tour (%zu positives), %zu training "
              "pairs, %d rounds; candidate pool recall %.3f; validation NDCG@10 (most recent 20%% of buyers, within "
              "the pool) %.4f\n",
              args.out.c_str(), summary.seconds, summary.buyers, summary.positives, summary.rows, summary.rounds,
              summary.pool_recall, summary.valid_ndcg10);
  return kExitOk;
}

void add_common(CLI::App* cmd, MatchArgs* args) {
  cmd->add_option("--listings", args->listings, "Listings CSV (any columns; e.g. ames.csv)")->required();
  cmd->add_option("--price-column", args->price_column, "Column with the list price")->required();
  cmd->add_option("--id-column", args->id_column,
                  "Column with listing ids (default: file stem + 1-based row, e.g. ames-0012)");
  cmd->add_option("--contacts", args->contacts, "contacts.csv")->required();
  cmd->add_option("--events", args->events, "events.csv")->required();
  cmd->add_option("--as-of-days", args->as_of_days, "Use events up to created_at + this many days")
      ->capture_default_str();
  cmd->add_option("--threads", args->threads, "Worker threads")->capture_default_str();
}

}  // namespace

void add_match_commands(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<MatchArgs>();
  auto* match = app.add_subcommand("match", "Top-k listings for every buyer from their behaviour and criteria");
  add_common(match, args.get());
  match->add_option("--k", args->k, "Listings per buyer")->capture_default_str();
  match->add_option("--out", args->out, "Output CSV: contact_id,rank,property_id,match_score")->required();
  match->add_option("--model", args->model, "Match model directory (from `reai train match`)");
  match->add_option("--details", args->details,
                    "Also write contact_id,rank,property_id,match_score,predicted_interest,reasons here");
  match->callback([args, exit_code] { *exit_code = run_match(*args); });

  CLI::App* train = nullptr;
  try {
    train = app.get_subcommand("train");
  } catch (const CLI::OptionNotFound&) {
    train = app.add_subcommand("train", "Train a model from history");
    train->require_subcommand(1);
  }
  auto targs = std::make_shared<MatchArgs>();
  auto* tm = train->add_subcommand("match", "Train the match ranker on who saved or toured what after as-of");
  add_common(tm, targs.get());
  tm->add_option("--out", targs->out, "Model directory to write")->required();
  tm->callback([targs, exit_code] { *exit_code = run_train_match(*targs); });
}

}  // namespace reai::cli
