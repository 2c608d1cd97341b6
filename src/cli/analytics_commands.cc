// `reai train deals`, `reai deals`, `reai agents`.
#include "cli/analytics_commands.h"

#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "analytics/analytics.h"
#include "cli/cli.h"
#include "core/crm_csv.h"
#include "core/crm_history.h"
#include "core/csv.h"
#include "core/time.h"

namespace reai::cli {
namespace {

struct AnalyticsArgs {
  std::string contacts, events, stages, out, model, as_of, coaching;
  int horizon_months = 3;
  int threads = 0;
  int seed = 7;
};

Result<UnixSeconds> parse_as_of(const std::string& text) {
  auto t = parse_iso8601(text);
  if (!t) return invalid_argument("bad --as-of '" + text + "' (ISO 8601, e.g. 2026-03-01T00:00:00Z)");
  return *t;
}

int run_train_deals(const AnalyticsArgs& args) {
  std::cerr << "reai train deals: reading history\n";
  auto history = load_crm_history(args.contacts, optional_file(args.events), args.stages);
  if (!history) return report_failure(history.status());
  analytics::DealTrainOptions options;
  options.nthread = args.threads;
  options.seed = args.seed;
  options.progress = true;
  analytics::DealTrainReport report;
  auto model = analytics::DealModel::train(*history, options, &report);
  if (!model) return report_failure(model.status());
  if (Status s = model->save(args.out); !s.is_ok()) return report_failure(s);
  std::printf("deal model %s written to %s in %.1f s: %zu opportunities, %zu training / %zu calibration examples; "
              "out-of-time AUC %.4f, Brier %.4f, days MAE %.1f, 80%% coverage %.3f\n",
              model->version().c_str(), args.out.c_str(), report.seconds, report.opportunities, report.train_examples,
              report.calibration_examples, report.calibration_auc, report.calibration_brier,
              report.calibration_days_mae, report.calibration_coverage80);
  if (!report.degenerate.empty()) {
    // Saved all the same (its metrics say so), so a server reading it tells
    // its users why the answers are the stage prior.
    std::cerr << "reai train deals: warning: degenerate model: " << report.degenerate
              << "; saved with that reason in its metrics: `reai deals` and the server answer with the stage prior "
                 "(each stage's closing rate) until a longer history is trained\n";
  }
  return 0;
}

int run_deals(const AnalyticsArgs& args) {
  auto as_of = parse_as_of(args.as_of);
  if (!as_of) return report_failure(as_of.status());
  auto model = analytics::DealModel::load(args.model);
  if (!model) return report_failure(model.status());
  auto history = load_crm_history(args.contacts, optional_file(args.events), args.stages);
  if (!history) return report_failure(history.status());
  // Before any stage row there is no pipeline to forecast: bad input (an
  // as-of before the data, or empty data), never an empty file.
  if (Status s = analytics::check_deal_history_at(*history, *as_of); !s)
    return report_failure(invalid_argument(s.message()));
  if (!model->degenerate().empty())
    std::cerr << "reai deals: warning: model " << model->version() << " is degenerate (" << model->degenerate()
              << "): p_close and days are the stage prior\n";
  const auto predictions = model->predict(*history, *as_of);
  std::ofstream out(args.out);
  if (!out) return report_failure(invalid_argument("cannot write " + args.out));
  out << "opportunity_id,p_close,expected_days_to_close,lower80_days,upper80_days\n";
  char line[256];
  for (const auto& p : predictions) {
    std::snprintf(line, sizeof line, ",%.6f,%.2f,%.2f,%.2f\n", p.p_close, p.expected_days_to_close, p.lower80_days,
                  p.upper80_days);
    out << p.opportunity_id << line;
  }
  out.close();
  if (!out) return report_failure(internal_error("failed writing " + args.out));
  std::cerr << "reai deals: " << predictions.size() << " open opportunities at " << args.as_of << " -> " << args.out
            << " (model " << model->version() << ")\n";
  if (predictions.empty())
    std::cerr << "reai deals: no opportunity was open at " << args.as_of
              << ": every one in the history before it had closed or been lost\n";
  return 0;
}

int run_agents(const AnalyticsArgs& args) {
  auto as_of = parse_as_of(args.as_of);
  if (!as_of) return report_failure(as_of.status());
  if (args.contacts.empty() != args.events.empty())
    return report_failure(invalid_argument("--contacts and --events go together (coaching from lead activity)"));
  CrmHistory history;
  if (!args.contacts.empty()) {
    auto loaded = load_crm_history(args.contacts, optional_file(args.events), args.stages);
    if (!loaded) return report_failure(loaded.status());
    history = std::move(*loaded);
  } else {
    auto stages = load_stages_csv(args.stages, {}, nullptr);
    if (!stages) return report_failure(stages.status());
    history.stages = std::move(*stages);
  }
  analytics::AgentForecastOptions options;
  options.horizon_months = args.horizon_months;
  auto forecast = analytics::forecast_agent_closings(history, *as_of, options);
  if (!forecast) return report_failure(forecast.status());
  std::ofstream out(args.out);
  if (!out) return report_failure(invalid_argument("cannot write " + args.out));
  out << "agent_id,year,month,expected_closings,lower80,upper80\n";
  char line[128];
  for (const auto& f : *forecast) {
    std::snprintf(line, sizeof line, ",%d,%d,%.3f,%.0f,%.0f\n", f.year, f.month, f.expected_closings, f.lower80,
                  f.upper80);
    out << f.agent_id << line;
  }
  out.close();
  if (!out) return report_failure(internal_error("failed writing " + args.out));
  std::cerr << "reai agents: " << forecast->size() << " agent-months -> " << args.out << "\n";
  if (!args.coaching.empty()) {
    const auto findings = analytics::coaching_findings(history, *as_of);
    std::ofstream coaching(args.coaching);
    if (!coaching) return report_failure(invalid_argument("cannot write " + args.coaching));
    coaching << "agent_id,finding\n";
    for (const auto& f : findings) coaching << f.agent_id << ',' << csv_field(f.finding) << '\n';
    coaching.close();
    if (!coaching) return report_failure(internal_error("failed writing " + args.coaching));
    std::cerr << "reai agents: " << findings.size() << " coaching findings -> " << args.coaching << "\n";
  }
  return 0;
}

}  // namespace

void add_analytics_commands(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<AnalyticsArgs>();
  CLI::App* train = nullptr;
  try {
    train = app.get_subcommand("train");
  } catch (const CLI::OptionNotFound&) {
    train = app.add_subcommand("train", "Train a model from history");
    train->require_subcommand(1);
  }
  auto* train_deals = train->add_subcommand("deals", "Train the deal closure/timeline model");
  train_deals->add_option("--contacts", args->contacts, "contacts.csv")->required();
  train_deals->add_option("--events", args->events, "events.csv")->required();
  train_deals->add_option("--stages", args->stages, "opportunity_stages.csv")->required();
  train_deals->add_option("--out", args->out, "Model directory to write (e.g. MODEL_DIR/deals)")->required();
  train_deals->add_option("--threads", args->threads, "Training threads (0: min(2, cores))");
  train_deals->add_option("--seed", args->seed, "Random seed")->capture_default_str();
  train_deals->callback([args, exit_code] { *exit_code = run_train_deals(*args); });

  auto* deals = app.add_subcommand(
      "deals", "Forecast open opportunities: opportunity_id,p_close,expected_days_to_close,lower80_days,upper80_days");
  deals->add_option("--model", args->model, "Model directory from `reai train deals`")->required();
  deals->add_option("--contacts", args->contacts, "contacts.csv")->required();
  deals->add_option("--events", args->events, "events.csv")->required();
  deals->add_option("--stages", args->stages, "opportunity_stages.csv")->required();
  deals->add_option("--as-of", args->as_of, "ISO 8601 instant; only rows up to it are used")->required();
  deals->add_option("--out", args->out, "Output CSV")->required();
  deals->callback([args, exit_code] { *exit_code = run_deals(*args); });

  auto* agents = app.add_subcommand(
      "agents", "Monthly closings per agent with 80% intervals, and coaching findings against the team");
  agents->add_option("--stages", args->stages, "opportunity_stages.csv")->required();
  agents->add_option("--as-of", args->as_of, "ISO 8601 forecast origin; only rows before it are used")->required();
  agents->add_option("--horizon-months", args->horizon_months, "Months to forecast")->capture_default_str();
  agents->add_option("--out", args->out, "Output CSV: agent_id,year,month,expected_closings,lower80,upper80")
      ->required();
  agents->add_option("--coaching", args->coaching, "Coaching CSV to write: agent_id,finding");
  agents->add_option("--contacts", args->contacts, "contacts.csv (speed-to-lead, touches, source rates)");
  agents->add_option("--events", args->events, "events.csv (with --contacts)");
  agents->callback([args, exit_code] { *exit_code = run_agents(*args); });
}

}  // namespace reai::cli
