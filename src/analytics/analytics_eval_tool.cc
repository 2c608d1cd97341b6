// reai_analytics_eval: backtests of the deal and agent models on a CRM
// history (shared/EVALUATION.md protocol; figures in docs/RESULTS.md).
//
//   reai_analytics_eval deals --data DIR --cutoff 2025-07-01
//       --as-of 2025-07-01,2025-08-01,2025-09-01 --end 2026-01-01
//   reai_analytics_eval agents --data DIR --as-of 2025-10-01 --horizon-months 3
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <iostream>
#include <array>
#include <map>
#include <sstream>

#include "analytics/analytics.h"
#include "core/time.h"
#include "models/models.h"

namespace {

using namespace reai;
using namespace reai::analytics;

int fail(const Status& s) {
  std::cerr << "reai_analytics_eval: " << s.message() << "\n";
  return s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kNotFound ? 2 : 1;
}

Result<UnixSeconds> parse_time(const std::string& text) {
  auto t = parse_iso8601(text);
  if (!t) return invalid_argument("bad timestamp '" + text + "'");
  return *t;
}

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(item);
  return out;
}

struct Pooled {
  std::vector<double> p;
  std::vector<float> y;
  std::vector<double> p_censored_as_lost;
  std::vector<float> y_censored_as_lost;
  double abs_err = 0, covered = 0, closed = 0, width = 0;
};

void score(const std::vector<DealPrediction>& preds, const std::vector<DealLabel>& labels, bool days, Pooled& pool) {
  std::map<std::string, const DealLabel*> by_id;
  for (const auto& l : labels) by_id[l.opportunity_id] = &l;
  for (const auto& p : preds) {
    auto it = by_id.find(p.opportunity_id);
    if (it == by_id.end()) continue;
    const DealLabel& l = *it->second;
    pool.p_censored_as_lost.push_back(p.p_close);
    pool.y_censored_as_lost.push_back(l.outcome == DealOutcome::kClosed ? 1.f : 0.f);
    if (l.outcome == DealOutcome::kOpen) continue;  // censored: outcome unknown
    pool.p.push_back(p.p_close);
    pool.y.push_back(l.outcome == DealOutcome::kClosed ? 1.f : 0.f);
    if (days && l.outcome == DealOutcome::kClosed) {
      pool.abs_err += std::abs(p.expected_days_to_close - l.days);
      pool.covered += (l.days >= p.lower80_days && l.days <= p.upper80_days) ? 1 : 0;
      pool.width += p.upper80_days - p.lower80_days;
      pool.closed += 1;
    }
  }
}

void print(const char* name, const Pooled& pool, bool days) {
  std::printf("%-22s n=%zu AUC %.4f Brier %.4f | censored-as-lost n=%zu AUC %.4f Brier %.4f", name, pool.y.size(),
              models::roc_auc(pool.p, pool.y), models::brier_score(pool.p, pool.y), pool.y_censored_as_lost.size(),
              models::roc_auc(pool.p_censored_as_lost, pool.y_censored_as_lost),
              models::brier_score(pool.p_censored_as_lost, pool.y_censored_as_lost));
  if (days)
    std::printf(" | closed %.0f days MAE %.2f cover80 %.3f width %.1f", pool.closed, pool.abs_err / pool.closed,
                pool.covered / pool.closed, pool.width / pool.closed);
  std::printf("\n");
}

int run_deals(const std::string& data, const std::string& cutoff_text, const std::string& as_of_text,
              const std::string& end_text, int step_days, int horizon_days) {
  auto history = load_crm_history_dir(data);
  if (!history) return fail(history.status());
  auto cutoff = parse_time(cutoff_text);
  auto end = parse_time(end_text);
  if (!cutoff) return fail(cutoff.status());
  if (!end) return fail(end.status());
  DealTrainOptions options;
  options.cutoff = *cutoff;
  options.step_days = step_days;
  options.label_horizon_days = horizon_days;
  options.progress = true;
  if (const char* v = std::getenv("REAI_DEALS_DEPTH")) options.max_depth = std::atoi(v);
  if (const char* v = std::getenv("REAI_DEALS_MCW")) options.min_child_weight = std::atof(v);
  if (const char* v = std::getenv("REAI_DEALS_ETA")) options.eta = std::atof(v);
  if (const char* v = std::getenv("REAI_DEALS_SEED")) options.seed = std::atoi(v);
  if (const char* v = std::getenv("REAI_DEALS_COLSAMPLE")) options.colsample_bytree = std::atof(v);
  if (const char* v = std::getenv("REAI_DEALS_DROP")) options.drop_features = split(v);
  DealTrainReport report;
  auto model = DealModel::train(*history, options, &report);
  if (!model) return fail(model.status());
  std::printf("trained in %.1f s: %zu train / %zu calibration examples, rounds %d/%d, calibration AUC %.4f Brier %.4f days MAE %.2f cover80 %.3f\n",
              report.seconds, report.train_examples, report.calibration_examples, report.classifier_rounds,
              report.days_rounds, report.calibration_auc, report.calibration_brier, report.calibration_days_mae,
              report.calibration_coverage80);
  auto plain = DealModel::train(*history, options, nullptr, DealFeatureSet::kPlain);
  if (!plain) return fail(plain.status());
  auto prior = StagePrior::train(*history, options);
  if (!prior) return fail(prior.status());
  Pooled full_pool, plain_pool, prior_pool;
  for (const auto& text : split(as_of_text)) {
    auto as_of = parse_time(text);
    if (!as_of) return fail(as_of.status());
    const auto labels = label_open_deals(*history, *as_of, *end);
    Pooled one;
    const auto preds = model->predict(*history, *as_of);
    score(preds, labels, true, one);
    score(preds, labels, true, full_pool);
    score(plain->predict(*history, *as_of), labels, true, plain_pool);
    score(prior->predict(*history, *as_of), labels, false, prior_pool);
    std::printf("as-of %s: %zu open\n", text.c_str(), labels.size());
    print("  reai deal model", one, true);
  }
  std::printf("pooled:\n");
  print("reai deal model", full_pool, true);
  print("plain GBM reference", plain_pool, true);
  print("stage-only prior", prior_pool, false);
  return 0;
}

// Agents: forecast at as-of against actual closings in the following months,
// and the per-agent better of the 6- and 12-month average of monthly closings.
int run_agents_backtest(const std::string& data, const std::string& as_of_text, int months) {
  auto history = load_crm_history_dir(data);
  if (!history) return fail(history.status());
  auto as_of = parse_time(as_of_text);
  if (!as_of) return fail(as_of.status());
  AgentForecastOptions options;
  options.horizon_months = months;
  auto forecast = forecast_agent_closings(*history, *as_of, options);
  if (!forecast) return fail(forecast.status());
  // Actual closings in the horizon, and in the 12 months before as-of.
  const UnixSeconds horizon_end = *as_of + static_cast<UnixSeconds>(months) * 31 * 86400;
  std::map<std::pair<std::string, int>, int> actual;
  auto key = [](int year, int month) { return year * 12 + month - 1; };
  for (const auto& a : actual_closings(*history, *as_of - 366 * 86400, horizon_end))
    actual[{a.agent_id, key(a.year, a.month)}] = a.closings;
  const int origin = key(forecast->front().year, forecast->front().month);
  auto average = [&](const std::string& agent, int span) {
    double sum = 0;
    for (int m = origin - span; m < origin; ++m) {
      auto it = actual.find({agent, m});
      sum += it == actual.end() ? 0 : it->second;
    }
    return sum / span;
  };
  auto actual_at = [&](const std::string& agent, int m) {
    auto it = actual.find({agent, m});
    return it == actual.end() ? 0.0 : static_cast<double>(it->second);
  };
  std::map<std::string, std::array<double, 3>> per_agent;  // abs err: model, 6m, 12m
  double covered = 0, n = 0, model_err = 0, err6 = 0, err12 = 0, best_err = 0;
  for (const auto& f : *forecast) {
    const double y = actual_at(f.agent_id, key(f.year, f.month));
    auto& e = per_agent[f.agent_id];
    e[0] += std::abs(f.expected_closings - y);
    e[1] += std::abs(average(f.agent_id, 6) - y);
    e[2] += std::abs(average(f.agent_id, 12) - y);
    covered += (y >= f.lower80 && y <= f.upper80) ? 1 : 0;
    n += 1;
  }
  for (const auto& [agent, e] : per_agent) {
    model_err += e[0];
    err6 += e[1];
    err12 += e[2];
    best_err += std::min(e[1], e[2]);  // each agent's better average, chosen with hindsight
  }
  std::printf("agents %zu, agent-months %.0f\n", per_agent.size(), n);
  std::printf("MAE model %.4f | 6-month avg %.4f | 12-month avg %.4f | per-agent better of the two %.4f\n",
              model_err / n, err6 / n, err12 / n, best_err / n);
  std::printf("improvement vs per-agent better average %.1f%% (vs better overall %.1f%%); 80%% coverage %.3f\n",
              100 * (1 - model_err / best_err), 100 * (1 - model_err / std::min(err6, err12)), covered / n);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"reai_analytics_eval: backtests of the deal and agent models"};
  app.require_subcommand(1);
  std::string data = "../shared/data/crm", cutoff = "2025-07-01", as_of = "2025-07-01,2025-08-01,2025-09-01",
              end = "2026-01-01";
  int step_days = 7, horizon_days = 90, months = 3;
  int exit_code = 0;
  auto* deals = app.add_subcommand("deals", "Deal closure/timeline backtest against the references");
  deals->add_option("--data", data, "CRM directory")->capture_default_str();
  deals->add_option("--cutoff", cutoff, "Train on rows before this instant")->capture_default_str();
  deals->add_option("--as-of", as_of, "Comma-separated as-of instants")->capture_default_str();
  deals->add_option("--end", end, "Outcomes observed up to this instant")->capture_default_str();
  deals->add_option("--step-days", step_days, "Spacing of training as-of points")->capture_default_str();
  deals->add_option("--label-horizon-days", horizon_days, "Training points end this long before the cutoff")
      ->capture_default_str();
  deals->callback([&] { exit_code = run_deals(data, cutoff, as_of, end, step_days, horizon_days); });
  auto* agents = app.add_subcommand("agents", "Agent monthly closings backtest against 6/12-month averages");
  std::string agents_as_of = "2025-10-01";
  agents->add_option("--data", data, "CRM directory")->capture_default_str();
  agents->add_option("--as-of", agents_as_of, "Forecast origin")->capture_default_str();
  agents->add_option("--horizon-months", months, "Months forecast")->capture_default_str();
  agents->callback([&] { exit_code = run_agents_backtest(data, agents_as_of, months); });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  return exit_code;
}
