// `reai demo` (what `make run` runs) and `reai simulate`.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <thread>

#include "analytics/analytics.h"
#include "cli/cli.h"
#include "cli/demo_history.h"
#include "cli/listing_commands.h"
#include "cli/forecast_commands.h"
#include "cli/runtime.h"
#include "cli/simulator.h"
#include "core/crm_csv.h"
#include "core/crm_history.h"
#include "property/matching.h"
#include "property/property.h"

namespace reai::cli {
namespace {

namespace fs = std::filesystem;

struct DemoArgs {
  std::string history = "fixtures/demo";
  std::string market_panel = "fixtures/market/txhousing.csv";
  RuntimeOptions runtime;
  std::string tenant = "demo";
  std::string jwt_secret;
  double rate = 4;
  bool no_simulator = false;
  std::string clock;  // ISO 8601 instant the demo's clock starts at (then runs); empty: now
};

// Where a rebuilt demo store and its models are kept, in the data directory.
constexpr const char* kPreviousDemo = "previous-demo";

// The demo tenant's rows of the shipped history in DIR (crm/ layout).
Result<CrmHistory> load_history(const std::string& dir, const std::string& tenant) {
  CsvLoadOptions options;
  options.tenant_filter = tenant;
  return load_crm_history_dir(dir, options);
}

// A demo keeps its signing key in the data dir so tokens survive restarts.
Result<std::string> demo_secret(const DemoArgs& args) {
  const char* env = std::getenv("REAI_JWT_SECRET");
  if (!args.jwt_secret.empty() || (env && *env)) return resolve_jwt_secret(args.jwt_secret);
  const fs::path path = fs::path(args.runtime.data_dir) / "demo-jwt-secret";
  std::string secret;
  if (std::ifstream in(path); in && std::getline(in, secret) && secret.size() >= server::kMinJwtSecretBytes) return secret;
  std::random_device rd;
  static constexpr char kHex[] = "0123456789abcdef";
  secret.clear();
  for (int i = 0; i < 64; ++i) secret.push_back(kHex[rd() % 16]);
  std::error_code ec;
  fs::create_directories(args.runtime.data_dir, ec);
  std::ofstream out(path);
  out << secret << "\n";
  if (!out) return internal_error("cannot write " + path.string());
  fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write, ec);
  return secret;
}

// Moves the in-memory history to where the store holds it. A new store: by
// whole weeks so it ends within the week before `starts_at`, recorded before
// the import (a failed import is redone, and re-recorded, on the next start).
// An existing store: by its recorded shift, never again; a store imported
// before shifts were recorded holds the history as shipped. (A stale demo
// store was emptied before this: demo_store_needs_rebuild.)
Status place_history(const DemoArgs& args, bool store_is_empty, UnixSeconds starts_at, CrmHistory* history) {
  if (store_is_empty) {
    const UnixSeconds end = history_end(*history);
    const UnixSeconds shift = end > 0 ? week_aligned_shift(end, starts_at) : 0;
    REAI_RETURN_IF_ERROR(write_history_shift(args.runtime.data_dir, {shift, end + shift}));
    shift_history(*history, shift);
    std::cerr << "demo: history moved by " << shift / 86400 << " days to end at " << format_iso8601(end + shift)
              << "\n";
    return Status::ok();
  }
  auto record = read_history_shift(args.runtime.data_dir);
  if (!record) return record.status();
  if (!*record) {
    std::cerr << "demo: reusing the stored history as shipped (ends at " << format_iso8601(history_end(*history))
              << "; imported before the demo placed it at its start)\n";
    return Status::ok();
  }
  shift_history(*history, (*record)->shift_seconds);
  std::cerr << "demo: reusing the stored history (ends at " << format_iso8601((*record)->history_end) << ")\n";
  return Status::ok();
}

// True when the store holds the demo and nothing else: its one tenant is
// the demo's, and the shipped history's first and last contacts are stored
// where `shift` placed them. Only such a store is ever rebuilt.
Result<bool> holds_only_the_demo(store::Store& store, const DemoArgs& args, const CrmHistory& shipped,
                                 UnixSeconds shift) {
  auto tenants = store.list_tenants();
  if (!tenants) return tenants.status();
  if (tenants->size() != 1 || tenants->front().tenant_id != args.tenant || shipped.contacts.empty()) return false;
  for (const Contact* c : {&shipped.contacts.front(), &shipped.contacts.back()}) {
    auto stored = store.get_contact(args.tenant, c->contact_id);
    if (!stored) {
      if (stored.status().code() == StatusCode::kNotFound) return false;
      return stored.status();
    }
    if (stored->created_at != c->created_at + shift) return false;
  }
  return true;
}

// A store that already holds the demo's events, before the demo reuses it:
// true when its history ended long before the demo starts (imported as
// shipped before the demo placed it, or placed on a start a month or more
// ago: open deals would sit that long in their stage) and the store holds
// nothing but the demo, so it is rebuilt. A store with more in it is left
// as it is, and the log says what to do.
Result<bool> demo_store_needs_rebuild(store::Store& store, const DemoArgs& args, const CrmHistory& shipped,
                                      UnixSeconds starts_at) {
  auto record = read_history_shift(args.runtime.data_dir);
  if (!record) return record.status();
  const UnixSeconds shift = *record ? (*record)->shift_seconds : 0;
  const UnixSeconds end = *record ? (*record)->history_end : history_end(shipped);
  if (!demo_history_is_stale(end, starts_at)) return false;
  auto demo_only = holds_only_the_demo(store, args, shipped, shift);
  if (!demo_only) return demo_only.status();
  const std::string ended = "the demo history in " + args.runtime.data_dir + " ended " +
                            std::to_string((starts_at - end) / 86400) + " days before the demo starts (" +
                            format_iso8601(end) + (*record ? "" : ", imported as shipped") + ")";
  if (!*demo_only) {
    std::cerr << "demo: " << ended << ", but the store holds more than the demo (other tenants or contacts), so it "
              << "is left as it is: start the demo on a new --data-dir to have its history end at the start\n";
    return false;
  }
  std::cerr << "demo: " << ended << ": rebuilding it with the history placed at the start (it is demo data; the old "
            << "store and the models trained on it are kept in " << (fs::path(args.runtime.data_dir) / kPreviousDemo)
               .string()
            << " until the next rebuild)\n";
  return true;
}

// Moves the demo store (reai.db and its WAL files, the shift record) and the
// models trained on its history (retrained on the next steps) to
// DATA_DIR/previous-demo, replacing an older one. The store must be closed.
Status set_aside_demo_store(const DemoArgs& args) {
  const fs::path data(args.runtime.data_dir);
  const fs::path aside = data / kPreviousDemo;
  std::error_code ec;
  fs::remove_all(aside, ec);
  fs::create_directories(aside / "models", ec);
  if (ec) return internal_error("cannot create " + aside.string() + ": " + ec.message());
  for (const char* name : {"reai.db", "reai.db-wal", "reai.db-shm", "demo-history-shift"}) {
    if (!fs::exists(data / name)) continue;
    fs::rename(data / name, aside / name, ec);
    if (ec) return internal_error("cannot move " + (data / name).string() + ": " + ec.message());
  }
  for (const char* name : {"leads", "deals", "match"}) {
    const fs::path model = fs::path(args.runtime.model_dir) / name;
    if (!fs::exists(model)) continue;
    fs::rename(model, aside / "models" / name, ec);
    if (ec) fs::remove_all(model, ec);  // on another file system: it is retrained from the shipped history anyway
    if (ec) return internal_error("cannot move " + model.string() + ": " + ec.message());
  }
  return Status::ok();
}

void print_validation(const scoring::TrainLeadReport& report) {
  for (const auto& m : report.validation) {
    std::cerr << "demo:   validation at " << m.hours << " h: auc " << m.auc << ", brier " << m.brier << ", ece "
              << m.ece << ", n " << m.n << "\n";
  }
}

Status prepare_demo_tenant(const DemoArgs& args, UnixSeconds starts_at, CrmHistory* history_in) {
  auto store = store::open_sqlite_store(args.runtime.data_dir);
  if (!store) return store.status();
  auto events = (*store)->count_events(args.tenant);
  if (!events) return events.status();
  if (*events > 0) {
    auto rebuild = demo_store_needs_rebuild(**store, args, *history_in, starts_at);
    if (!rebuild) return rebuild.status();
    if (*rebuild) {
      store->reset();  // closed before its files move
      REAI_RETURN_IF_ERROR(set_aside_demo_store(args));
      store = store::open_sqlite_store(args.runtime.data_dir);
      if (!store) return store.status();
      events = 0;
    }
  }
  if (!(*store)->get_tenant(args.tenant)) {
    REAI_RETURN_IF_ERROR((*store)->upsert_tenant({args.tenant, "Demo Realty", starts_at, ""}));
  }
  REAI_RETURN_IF_ERROR(place_history(args, *events == 0, starts_at, history_in));
  const CrmHistory& history = *history_in;
  if (*events == 0) {
    std::cerr << "demo: importing " << history.contacts.size() << " contacts and "
              << history.events.size() << " events into " << args.runtime.data_dir << "\n";
    auto counts = (*store)->import_history(history.contacts, history.events, history.stages);
    if (!counts) return counts.status();
  }
  const std::string model_dir = args.runtime.model_dir + "/leads";
  bool train = !fs::exists(fs::path(model_dir) / "metadata.json");
  if (!train) {
    // A model an older reai wrote may not load in this one (format or
    // feature schema changed): the demo retrains rather than serving rules.
    if (auto loaded = scoring::load_lead_model(model_dir); !loaded) {
      std::cerr << "demo: retraining: " << loaded.status().message() << "\n";
      train = true;
    }
  }
  if (train) {
    std::cerr << "demo: training the lead model on the demo history (once)\n";
    scoring::TrainLeadOptions options;
    auto report = scoring::train_lead_model(history.contacts, history.events, history.stages, model_dir, options);
    if (!report) return report.status();
    std::cerr << "demo: model " << report->version << " trained in " << report->seconds << " s\n";
    print_validation(*report);
  }
  return Status::ok();
}

// The demo's listings (the Ames homes its events name), once, so the lead
// page shows real matches. Absent file: matching answers "no listings".
Status prepare_demo_listings(const DemoArgs& args) {
  const std::string path = args.history + "/listings.csv";
  if (!fs::exists(path)) return Status::ok();
  {
    auto store = store::open_sqlite_store(args.runtime.data_dir);
    if (!store) return store.status();
    bool any = false;
    REAI_RETURN_IF_ERROR((*store)->for_each_listing(args.tenant, [&](const store::ListingRecord&) {
      any = true;
      return false;
    }));
    if (any) return Status::ok();
  }
  // A quick valuation model (first hyper-parameter candidate, ~3 s), so the
  // listings carry values and price competitiveness.
  const std::string value_dir = args.runtime.model_dir + "/value";
  if (!fs::exists(fs::path(value_dir) / "model.json")) {
    std::cerr << "demo: training the valuation model on the demo listings (once)\n";
    auto table = property::read_sales_csv(path);
    if (!table) return table.status();
    property::TrainOptions options;
    options.time_budget_seconds = 0;
    auto model = property::ValuationModel::train(*table, "List_Price", options);
    if (!model) return model.status();
    REAI_RETURN_IF_ERROR(model->save(value_dir));
  }
  std::cerr << "demo: importing listings from " << path << "\n";
  ImportListingsArgs import;
  import.data_dir = args.runtime.data_dir;
  import.model_dir = args.runtime.model_dir;
  import.tenant = args.tenant;
  import.listings = path;
  import.price_column = "List_Price";
  import.id_column = "listing_id";
  if (run_import_listings(import) != kExitOk) return internal_error("demo: importing " + path + " failed");
  return Status::ok();
}

// The match ranker, learned from who saved or toured which demo listing
// after their first week (as `reai train match`), so the lead page ranks
// with it instead of the content scorer. The matching routes pick the model
// up on their next request (model.json appears).
void train_match_model(const DemoArgs& args, const CrmHistory& history) {
  const fs::path models(args.runtime.model_dir);
  const std::string listings = args.history + "/listings.csv";
  if (fs::exists(models / "match" / "model.json") || !fs::exists(listings)) return;
  const auto started = std::chrono::steady_clock::now();
  auto catalog = property::ListingCatalog::load(listings, {"List_Price", "listing_id"});
  if (!catalog) {
    std::cerr << "demo: match model not trained: " << catalog.status().message() << "\n";
    return;
  }
  const auto buyers = property::build_match_history(*catalog, history.contacts, history.events, 7 * 86400, {}, nullptr);
  property::MatchTrainOptions options;
  options.nthread = 1;  // the server and the simulator share the machine
  property::MatchTrainSummary summary;
  auto model = property::MatchModel::train(*catalog, buyers, options, &summary);
  const fs::path temp = models / "match.tmp";
  std::error_code ec;
  fs::remove_all(temp, ec);
  Status saved = model ? model->save(temp.string()) : model.status();
  if (saved) fs::rename(temp, models / "match", ec);
  if (!saved || ec) {
    std::cerr << "demo: match model not trained: " << (saved ? ec.message() : saved.message()) << "\n";
    return;
  }
  std::cerr << "demo: match model trained in "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() << " s ("
            << summary.buyers << " buyers with a later save or tour; validation NDCG@10 " << summary.valid_ndcg10
            << ")\n";
}

// The deal model and the market forecast the prediction routes serve, and
// the match ranker, made once in the background while the demo already runs
// (the routes answer "not trained yet" or rank with the content scorer until
// the files appear, then pick them up on their own).
void train_predictions(const DemoArgs& args, const CrmHistory& history) {
  const fs::path models(args.runtime.model_dir);
  if (!fs::exists(models / "deals" / "deal_model.json")) {
    const auto started = std::chrono::steady_clock::now();
    analytics::DealTrainOptions options;
    options.step_days = 14;  // half the as-of points of `reai train deals`: a few seconds
    options.nthread = 1;     // the server and the simulator share the machine
    auto model = analytics::DealModel::train(history, options, nullptr);
    const fs::path temp = models / "deals.tmp";
    std::error_code ec;
    fs::remove_all(temp, ec);
    Status saved = model ? model->save(temp.string()) : model.status();
    if (saved) fs::rename(temp, models / "deals", ec);
    if (!saved || ec) {
      std::cerr << "demo: deal model not trained: " << (saved ? ec.message() : saved.message()) << "\n";
    } else {
      std::cerr << "demo: deal model " << model->version() << " trained in "
                << std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() << " s\n";
      // A user's own small history: its open deals get stage averages.
      if (!model->degenerate().empty())
        std::cerr << "demo: warning: the deal model is degenerate (" << model->degenerate()
                  << "): open deals are shown with their stage's closing rate\n";
    }
  }
  const fs::path forecast = models / "markets" / "forecast.csv";
  if (!fs::exists(forecast) && !args.market_panel.empty() && fs::exists(args.market_panel)) {
    auto panel = analytics::read_monthly_panel(args.market_panel, {"city", {"year", "month"}, {"median", "sales"}, {}, true});
    analytics::ForecastOptions options;
    options.nthread = 1;
    auto points = panel ? analytics::forecast_panel(*panel, options) : Result<std::vector<analytics::ForecastPoint>>(panel.status());
    Status written = points ? write_forecast_csv(forecast.string(), *panel, *points) : points.status();
    if (!written) std::cerr << "demo: market forecast not made: " << written.message() << "\n";
    else std::cerr << "demo: market forecast of " << panel->series.size() << " cities written to " << forecast << "\n";
  }
  train_match_model(args, history);
}

void print_welcome(const DemoArgs& args, std::uint16_t port, const std::string& agent_token,
                   const std::string& admin_token) {
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  std::cout << "\n"
            << "reai is running on " << base << " (tenant '" << args.tenant << "')\n\n"
            << "Open the page (the token rides in the URL fragment, never sent to the server):\n"
            << "  " << base << "/#token=" << agent_token << "\n\n"
            << "Agent token:\n  " << agent_token << "\n\n"
            << "Send an event and get the lead's new score:\n"
            << "  curl -s -X POST " << base << "/api/events \\\n"
            << "    -H 'Authorization: Bearer " << agent_token << "' \\\n"
            << "    -H 'Content-Type: application/json' \\\n"
            << "    -d '{\"contact_id\":\"lead-42\",\"type\":\"sms_in\"}'\n\n"
            << "Hot leads:  curl -s -H 'Authorization: Bearer " << agent_token << "' '" << base
            << "/api/leads?band=hot&limit=10'\n"
            << "Admin token (model reload): " << admin_token << "\n\n"
            << "Press Ctrl-C to stop.\n"
            << std::flush;
}

int run_demo(DemoArgs args) {
  block_stop_signals();
  auto secret = demo_secret(args);
  if (!secret) return report_failure(secret.status());
  args.runtime.server.jwt_secret = *secret;
  if (!args.clock.empty()) {
    args.runtime.clock_starts_at = parse_iso8601(args.clock);
    if (!args.runtime.clock_starts_at) return report_failure(invalid_argument("bad --clock '" + args.clock + "'"));
  }
  const UnixSeconds now = args.runtime.clock_starts_at.value_or(SystemClock().now());
  auto history = load_history(args.history, args.tenant);
  if (!history) return report_failure(history.status());
  Status prepared = prepare_demo_tenant(args, now, &*history);
  if (!prepared.is_ok()) return report_failure(prepared);
  if (Status listed = prepare_demo_listings(args); !listed.is_ok()) return report_failure(listed);

  auto runtime = Runtime::open(args.runtime);
  if (!runtime) return report_failure(runtime.status());
  Status started = (*runtime)->start();
  if (!started.is_ok()) return report_failure(started);
  auto agent = server::issue_token(args.tenant, server::Role::kAgent, *secret, 7 * 86400, now);
  auto admin = server::issue_token(args.tenant, server::Role::kAdmin, *secret, 86400, now);
  if (!agent || !admin) return report_failure(agent ? admin.status() : agent.status());
  print_welcome(args, (*runtime)->port(), *agent, *admin);
  std::thread predictions([&] { train_predictions(args, *history); });

  std::atomic<bool> stop_simulator{false};
  std::thread simulator;
  if (!args.no_simulator) {
    SimulatorOptions options;
    options.port = (*runtime)->port();
    options.token = *agent;
    options.events_per_second = args.rate;
    options.clock = &(*runtime)->clock();  // the posted times follow the server's clock (--clock)
    simulator = std::thread([&, options] {
      auto report = run_simulator(history->contacts, history->events, options, stop_simulator);
      if (!report) std::cerr << "demo: simulator stopped: " << report.status().message() << "\n";
    });
  }
  (*runtime)->wait();
  stop_simulator = true;
  if (simulator.joinable()) simulator.join();
  predictions.join();
  std::cerr << "demo: stopped\n";
  return kExitOk;
}

struct SimulateArgs {
  std::string history = "fixtures/demo";
  std::string tenant;
  SimulatorOptions options;
};

int run_simulate(SimulateArgs args) {
  auto history = load_history(args.history, args.tenant);
  if (!history) return report_failure(history.status());
  std::atomic<bool> never{false};
  args.options.verbose = true;
  auto report = run_simulator(history->contacts, history->events, args.options, never);
  if (!report) return report_failure(report.status());
  std::cout << "posted " << report->events_posted << " events for " << report->leads_created
            << " leads, " << report->http_errors << " HTTP errors\n";
  return report->http_errors ? kExitFailure : kExitOk;
}

}  // namespace

void add_demo_command(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<DemoArgs>();
  auto* cmd = app.add_subcommand(
      "demo", "Demo tenant end to end: import a history, train, serve, and stream live events");
  cmd->add_option("--history", args->history, "crm/ CSV directory of the demo history")->capture_default_str();
  cmd->add_option("--tenant", args->tenant, "Tenant id in the history")->capture_default_str()
      ->check(tenant_id_option());
  cmd->add_option("--market-panel", args->market_panel,
                  "Monthly panel (city,year,month,median,sales) forecast for /api/predictions/market-trends")
      ->capture_default_str();
  cmd->add_option("--data-dir", args->runtime.data_dir, "SQLite store directory")->capture_default_str();
  cmd->add_option("--model-dir", args->runtime.model_dir, "Model directory")->capture_default_str();
  cmd->add_option("--port", args->runtime.server.port, "HTTP port")->capture_default_str();
  cmd->add_option("--threads", args->runtime.server.threads, "I/O threads")->capture_default_str();
  cmd->add_option("--static-dir", args->runtime.server.static_dir,
                  "Dashboard files: a directory with index.html (web/dist); without the option, the built-in page")
      ->check(static_dir_option());
  cmd->add_option("--jwt-secret", args->jwt_secret, "HS256 key (default: generated, kept in the data dir)");
  cmd->add_option("--rate", args->rate, "Simulated events per second")->capture_default_str();
  cmd->add_flag("--no-simulator", args->no_simulator, "Serve without the live event stream");
  cmd->add_option("--clock", args->clock,
                  "Start the demo at this ISO 8601 instant: the history is placed to end there, and the server's "
                  "clock (which the live stream follows) starts there and runs");
  cmd->callback([args, exit_code] { *exit_code = run_demo(*args); });
}

void add_simulate_command(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<SimulateArgs>();
  auto* cmd = app.add_subcommand("simulate", "Stream time-compressed lead histories to a running server");
  cmd->add_option("--history", args->history, "crm/ CSV directory")->capture_default_str();
  cmd->add_option("--tenant", args->tenant, "Only this tenant's leads from the history")
      ->check(tenant_id_option());
  cmd->add_option("--host", args->options.host, "Server host")->capture_default_str();
  cmd->add_option("--port", args->options.port, "Server port")->capture_default_str();
  cmd->add_option("--token", args->options.token, "Agent JWT")->required();
  cmd->add_option("--rate", args->options.events_per_second, "Events per second")->capture_default_str();
  cmd->add_option("--duration", args->options.duration_seconds, "Seconds to run (0: forever)")
      ->capture_default_str();
  cmd->callback([args, exit_code] { *exit_code = run_simulate(*args); });
}

}  // namespace reai::cli
