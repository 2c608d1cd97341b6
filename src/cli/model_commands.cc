// `reai train leads`, `reai replay`: the lead model's batch interface
// (shared/EVALUATION.md "Lead scoring").
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/cli.h"
#include "core/crm_history.h"
#include "scoring/scoring.h"

namespace reai::cli {
namespace {

struct TrainLeadsArgs {
  std::string contacts;
  std::string events;
  std::string stages;
  std::string out;
  int threads = 0;
  int seed = 42;
};

int run_train_leads(const TrainLeadsArgs& args) {
  std::cerr << "reai train leads: reading history\n";
  auto history = load_crm_history(args.contacts, args.events, args.stages);
  if (!history) return report_failure(history.status());
  std::cerr << "  " << history->contacts.size() << " contacts, " << history->events.size() << " events, "
            << history->stages.size() << " stage rows\n";
  scoring::TrainLeadOptions options;
  options.nthread = args.threads;
  options.seed = args.seed;
  auto report = scoring::train_lead_model(history->contacts, history->events, history->stages, args.out, options);
  if (!report) return report_failure(report.status());
  std::cout << "model " << report->version << " written to " << args.out << " in "
            << report->seconds << " s (" << report->train_examples << " training, "
            << report->validation_examples << " validation examples, "
            << report->censored_contacts << " censored contacts excluded)\n";
  std::cout << "validation (time-based split, calibrated):\n  hours     auc   brier     ece      n\n";
  for (const auto& m : report->validation) {
    char line[128];
    std::snprintf(line, sizeof line, "  %5.0f  %6.4f  %6.4f  %6.4f  %5zu\n", m.hours, m.auc, m.brier,
                  m.ece, m.n);
    std::cout << line;
  }
  return kExitOk;
}

struct ReplayArgs {
  std::string model;
  std::string contacts;
  std::string events;
  std::string stages;
  std::string as_of_hours = "1,24,168";
  std::string out;
};

Result<std::vector<double>> parse_hours(const std::string& text) {
  std::vector<double> hours;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      std::size_t used = 0;
      double h = std::stod(item, &used);
      if (used != item.size() || h < 0) throw std::invalid_argument(item);
      hours.push_back(h);
    } catch (const std::exception&) {
      return invalid_argument("bad --as-of-hours value '" + item + "'");
    }
  }
  if (hours.empty()) return invalid_argument("--as-of-hours is empty");
  return hours;
}

int run_replay(const ReplayArgs& args) {
  auto hours = parse_hours(args.as_of_hours);
  if (!hours) return report_failure(hours.status());
  auto history = load_crm_history(args.contacts, args.events, optional_file(args.stages));
  if (!history) return report_failure(history.status());
  std::cerr << "reai replay: " << history->contacts.size() << " contacts, " << history->events.size()
            << " events\n";
  auto rows = scoring::replay_scores(args.model, history->contacts, history->events, history->stages, *hours);
  if (!rows) return report_failure(rows.status());
  std::ofstream out(args.out);
  if (!out) return report_failure(invalid_argument("cannot write " + args.out));
  out << "contact_id,hours,probability,score\n";
  char prob[32];
  for (const auto& r : *rows) {
    std::snprintf(prob, sizeof prob, "%.6f", r.probability);
    out << r.contact_id << ',' << r.hours << ',' << prob << ',' << r.score << '\n';
  }
  out.close();
  if (!out) return report_failure(internal_error("failed writing " + args.out));
  std::cerr << "reai replay: wrote " << rows->size() << " scores to " << args.out << "\n";
  return kExitOk;
}

}  // namespace

void add_train_command(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("train", "Train a model from history");
  cmd->require_subcommand(1);
  auto args = std::make_shared<TrainLeadsArgs>();
  auto* leads = cmd->add_subcommand("leads", "Train the lead-scoring model (signed within 90 days)");
  leads->add_option("--contacts", args->contacts, "contacts.csv")->required();
  leads->add_option("--events", args->events, "events.csv")->required();
  leads->add_option("--stages", args->stages, "opportunity_stages.csv")->required();
  leads->add_option("--out", args->out, "Model directory to write (e.g. MODEL_DIR/leads)")->required();
  leads->add_option("--threads", args->threads, "Training threads (0: all cores)");
  leads->add_option("--seed", args->seed, "Random seed")->capture_default_str();
  leads->callback([args, exit_code] { *exit_code = run_train_leads(*args); });
}

void add_replay_command(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ReplayArgs>();
  auto* cmd = app.add_subcommand(
      "replay", "Push a history through the real-time engine and write the score held at created_at + hours");
  cmd->add_option("--model", args->model, "Lead model directory (from `reai train leads`)")->required();
  cmd->add_option("--contacts", args->contacts, "contacts.csv")->required();
  cmd->add_option("--events", args->events, "events.csv")->required();
  cmd->add_option("--stages", args->stages, "opportunity_stages.csv (optional: live track records)");
  cmd->add_option("--as-of-hours", args->as_of_hours, "Offsets after created_at, comma-separated")
      ->capture_default_str();
  cmd->add_option("--out", args->out, "Output CSV: contact_id,hours,probability,score")->required();
  cmd->callback([args, exit_code] { *exit_code = run_replay(*args); });
}

}  // namespace reai::cli
