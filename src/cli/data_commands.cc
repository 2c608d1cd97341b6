// `reai tenant`, `reai import`: getting tenants and CRM history into the store.
#include <cctype>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <set>

#include "cli/cli.h"
#include "cli/listing_commands.h"
#include "core/crm_csv.h"
#include "core/crm_history.h"
#include "core/time.h"
#include "ghl/contact_export.h"
#include "ghl/ghl.h"
#include "ghl/hot_stage.h"
#include "ghl/secret_box.h"
#include "store/store.h"

namespace reai::cli {
namespace {

struct TenantArgs {
  std::string data_dir = "var";
  std::string store;  // postgres:// URL; empty: SQLite in data_dir
  std::string tenant;
  std::string name;
  std::string ghl_location;
  std::string ghl_workflow_secret;
  std::string ghl_field_map;  // file
  std::string ghl_hot_stage;  // "PIPELINE_ID:STAGE_ID" or "off"; empty: unchanged
  std::string ghl_token_file;   // a Private Integration Token
  std::string secret_key_file;  // seals it
};

// Stores a Private Integration Token, sealed with the server's secret key
// (the same --secret-key-file `reai serve` opens it with).
Status write_ghl_token(store::Store& store, const TenantArgs& args) {
  if (args.ghl_token_file.empty()) return Status::ok();
  if (args.secret_key_file.empty()) return invalid_argument("--ghl-token-file needs --secret-key-file");
  auto box = ghl::SecretBox::from_key_file(args.secret_key_file);
  if (!box) return box.status();
  std::ifstream in(args.ghl_token_file, std::ios::binary);
  if (!in) return invalid_argument("cannot read --ghl-token-file " + args.ghl_token_file);
  std::ostringstream text;
  text << in.rdbuf();
  std::string token = text.str();
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back()))) token.pop_back();
  while (!token.empty() && std::isspace(static_cast<unsigned char>(token.front()))) token.erase(0, 1);
  if (token.empty()) return invalid_argument(args.ghl_token_file + " is empty");
  store::GhlToken t;
  t.tenant_id = args.tenant;
  t.kind = "private";
  t.sealed_access_token = box->seal(token);
  t.updated_at = SystemClock().now();
  return store.put_ghl_token(t);
}

// Links the tenant to GoHighLevel: one location per tenant, the workflow
// secret, the custom-field mapping and the hot stage (validated before
// anything is written).
Status write_ghl_settings(store::Store& store, const TenantArgs& args) {
  std::optional<ghl::HotStage> hot_stage;
  if (!args.ghl_hot_stage.empty()) {
    auto parsed = ghl::parse_hot_stage_spec(args.ghl_hot_stage);
    if (!parsed) return invalid_argument("--ghl-hot-stage: " + parsed.status().message());
    hot_stage = std::move(*parsed);
  }
  if (!args.ghl_location.empty()) {
    auto owner = store.find_tenant_by_ghl_location(args.ghl_location);
    if (owner && owner->tenant_id != args.tenant) {
      return invalid_argument("GHL location '" + args.ghl_location + "' is already linked to tenant '" +
                              owner->tenant_id + "'");
    }
    if (!owner && owner.status().code() != StatusCode::kNotFound) return owner.status();
  }
  if (args.ghl_workflow_secret.empty() && args.ghl_field_map.empty() && args.ghl_hot_stage.empty()) return Status::ok();
  store::GhlSettingsChange change;
  if (!args.ghl_workflow_secret.empty()) change.workflow_secret = args.ghl_workflow_secret;
  if (!args.ghl_field_map.empty()) {
    std::ifstream in(args.ghl_field_map);
    if (!in) return invalid_argument("cannot read --ghl-field-map " + args.ghl_field_map);
    std::ostringstream text;
    text << in.rdbuf();
    auto mapping = ghl::parse_field_mapping(text.str());
    if (!mapping) return invalid_argument(args.ghl_field_map + ": " + mapping.status().message());
    change.field_map_json = text.str();
  }
  if (!args.ghl_hot_stage.empty()) {
    change.hot_stage = hot_stage ? store::GhlSettingsChange::HotStage{hot_stage->pipeline_id, hot_stage->stage_id}
                                 : store::GhlSettingsChange::HotStage{};
  }
  return store.update_ghl_settings(args.tenant, change);
}

int run_tenant_add(const TenantArgs& args) {
  auto store = store::open_store(store_location(args.store, args.data_dir));
  if (!store) return report_failure(store.status());
  store::Tenant tenant;
  tenant.tenant_id = args.tenant;
  tenant.name = args.name.empty() ? args.tenant : args.name;
  tenant.created_at = SystemClock().now();
  tenant.ghl_location_id = args.ghl_location;
  if (auto existing = (*store)->get_tenant(args.tenant)) {
    tenant.created_at = existing->created_at;
    if (args.name.empty()) tenant.name = existing->name;  // an update of other settings keeps the name
    if (args.ghl_location.empty()) tenant.ghl_location_id = existing->ghl_location_id;  // keep the link
  }
  if (Status g = write_ghl_settings(**store, args); !g.is_ok()) return report_failure(g);
  Status s = (*store)->upsert_tenant(tenant);
  if (!s.is_ok()) return report_failure(s);
  if (Status t = write_ghl_token(**store, args); !t.is_ok()) return report_failure(t);
  std::cout << "tenant " << tenant.tenant_id << " ready in " << store_description(args.store, args.data_dir) << "\n";
  return kExitOk;
}

// A CSV field: quoted (quotes doubled) when it holds a comma, quote or line break.
std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\r\n") == std::string::npos) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

int run_tenant_list(const std::string& location) {
  auto store = store::open_store(location);
  if (!store) return report_failure(store.status());
  if (Status s = write_tenant_list(**store, std::cout); !s) return report_failure(s);
  return kExitOk;
}

struct ImportArgs {
  std::string data_dir = "var";
  std::string store;
  std::string contacts;
  std::string events;
  std::string stages;
  std::string tenant;
  bool skip_bad = false;
};

struct GhlContactsArgs {
  std::string data_dir = "var";
  std::string store;  // postgres:// URL; empty: SQLite in data_dir
  std::string csv;
  std::string tenant;
};

int run_import_ghl_contacts(const GhlContactsArgs& args) {
  std::ifstream in(args.csv, std::ios::binary);
  if (!in) return report_failure(not_found("cannot read " + args.csv));
  std::ostringstream text;
  text << in.rdbuf();
  auto parsed = ghl::parse_contact_export(text.str(), args.tenant);
  if (!parsed) return report_failure(parsed.status());
  for (const auto& why : parsed->skipped) std::cerr << "  skipped " << why << "\n";
  auto store = store::open_store(store_location(args.store, args.data_dir));
  if (!store) return report_failure(store.status());
  if (!(*store)->get_tenant(args.tenant)) {
    if (Status s = (*store)->upsert_tenant({args.tenant, args.tenant, SystemClock().now(), ""}); !s.is_ok()) {
      return report_failure(s);
    }
  }
  auto counts = (*store)->import_history(parsed->contacts, {}, {});
  if (!counts) return report_failure(counts.status());
  std::cout << "imported " << counts->contacts_written << " GHL contacts into tenant " << args.tenant << " ("
            << parsed->skipped.size() << " rows skipped)\n";
  return kExitOk;
}

void print_report(const std::string& what, const CsvLoadReport& report) {
  std::cerr << "  " << what << ": " << report.rows_read << " rows";
  if (report.rows_skipped) std::cerr << ", " << report.rows_skipped << " bad rows skipped";
  std::cerr << "\n";
  for (std::size_t i = 0; i < report.errors.size() && i < 10; ++i) {
    std::cerr << "    " << report.errors[i].to_string() << "\n";
  }
}

int run_import(const ImportArgs& args) {
  CsvLoadOptions options;
  options.skip_bad_rows = args.skip_bad;
  options.tenant_filter = args.tenant;
  // Everything is parsed and validated before the first write, so a bad row
  // without --skip-bad leaves the store untouched.
  std::cerr << "reai import: reading CSV files\n";
  CrmHistoryLoadReport load_report;
  auto history = load_crm_history(args.contacts, args.events, optional_file(args.stages), options, &load_report);
  // The files that loaded are reported even when a later one fails.
  if (load_report.contacts) print_report("contacts", *load_report.contacts);
  if (load_report.events) print_report("events", *load_report.events);
  if (load_report.stages) print_report("stages", *load_report.stages);
  if (!history) return report_failure(history.status());

  auto store = store::open_store(store_location(args.store, args.data_dir));
  if (!store) return report_failure(store.status());
  std::set<std::string> tenants;
  for (const auto& c : history->contacts) tenants.insert(c.tenant_id);
  for (const auto& e : history->events) tenants.insert(e.tenant_id);
  for (const auto& id : tenants) {
    if ((*store)->get_tenant(id)) continue;
    Status s = (*store)->upsert_tenant({id, id, SystemClock().now(), ""});
    if (!s.is_ok()) return report_failure(s);
  }
  std::cerr << "reai import: writing to " << store_description(args.store, args.data_dir) << "\n";
  auto counts = (*store)->import_history(history->contacts, history->events, history->stages);
  if (!counts) return report_failure(counts.status());
  std::cout << "imported " << counts->contacts_written << " contacts, " << counts->events_written
            << " events (" << counts->events_duplicate << " already present), "
            << counts->stages_written << " stage rows (" << counts->stages_duplicate
            << " already present) for " << tenants.size() << " tenant(s)\n";
  if (counts->contacts_added_bare) {
    std::cout << "added " << counts->contacts_added_bare << " contacts for events whose contact row was not imported\n";
  }
  std::size_t skipped = 0;
  for (const auto* report : {&load_report.contacts, &load_report.events, &load_report.stages})
    if (*report) skipped += (*report)->rows_skipped;
  if (skipped) std::cout << "skipped " << skipped << " bad rows\n";
  return kExitOk;
}

}  // namespace

Status write_tenant_list(store::Store& store, std::ostream& out) {
  auto tenants = store.list_tenants();
  if (!tenants) return tenants.status();
  out << "tenant_id,name,contacts,events,ghl_location_id,ghl,ghl_since,ghl_detail\n";
  for (const auto& t : *tenants) {
    auto contacts = store.count_contacts(t.tenant_id);
    auto events = store.count_events(t.tenant_id);
    auto install = store::ghl_install_of(store, t);
    if (!install) return install.status();
    out << t.tenant_id << "," << csv_field(t.name) << "," << (contacts ? *contacts : 0) << ","
        << (events ? *events : 0) << "," << t.ghl_location_id << "," << store::ghl_install_state_name(install->state)
        << "," << (install->since != 0 ? format_iso8601(install->since) : "") << "," << csv_field(install->detail)
        << "\n";
  }
  return Status::ok();
}

void add_tenant_command(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("tenant", "Manage tenants (brokerages)");
  cmd->require_subcommand(1);
  auto args = std::make_shared<TenantArgs>();
  auto* add = cmd->add_subcommand("add", "Create or update a tenant");
  add->add_option("--data-dir", args->data_dir, "Directory of the SQLite store")->capture_default_str();
  add->add_option("--store", args->store, kStoreHelp)->check(postgres_store_url());
  add->add_option("--tenant", args->tenant, "Tenant id")->required()
      ->check(tenant_id_option());
  add->add_option("--name", args->name, "Display name");
  add->add_option("--ghl-location", args->ghl_location, "GoHighLevel location id to link");
  add->add_option("--ghl-workflow-secret", args->ghl_workflow_secret,
                  "Shared secret of POST /api/ghl/workflow/{tenant}");
  add->add_option("--ghl-field-map", args->ghl_field_map,
                  "JSON file mapping GHL custom fields to budget/timeline/pre_approval and stages");
  add->add_option("--ghl-hot-stage", args->ghl_hot_stage,
                  "PIPELINE_ID:STAGE_ID: move the lead's open opportunity to this GHL stage when the lead turns hot "
                  "('off' turns it off)");
  add->add_option("--ghl-token-file", args->ghl_token_file,
                  "File holding the location's GHL Private Integration Token (stored sealed)");
  add->add_option("--secret-key-file", args->secret_key_file,
                  "Key sealing GHL tokens at rest: 32 raw bytes or 64 hex digits (as given to reai serve)");
  add->callback([args, exit_code] { *exit_code = run_tenant_add(*args); });
  auto* list = cmd->add_subcommand(
      "list", "List tenants with their contact and event counts and GoHighLevel install state (CSV)");
  list->add_option("--data-dir", args->data_dir, "Directory of the SQLite store")->capture_default_str();
  list->add_option("--store", args->store, kStoreHelp)->check(postgres_store_url());
  list->callback([args, exit_code] { *exit_code = run_tenant_list(store_location(args->store, args->data_dir)); });
}

void add_import_command(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ImportArgs>();
  auto* cmd = app.add_subcommand(
      "import", "Load a CRM history (crm/ CSV format) into the store; `import listings` loads listings");
  cmd->add_option("--data-dir", args->data_dir, "Directory of the SQLite store")->capture_default_str();
  cmd->add_option("--store", args->store, kStoreHelp)->check(postgres_store_url());
  cmd->add_option("--contacts", args->contacts, "contacts.csv (required without a subcommand)");
  cmd->add_option("--events", args->events, "events.csv (required without a subcommand)");
  cmd->add_option("--stages", args->stages, "opportunity_stages.csv");
  cmd->add_option("--tenant", args->tenant, "Import only this tenant's rows")
      ->check(tenant_id_option());
  cmd->add_flag("--skip-bad", args->skip_bad, "Skip rows that do not parse (counted) instead of stopping");
  cmd->require_subcommand(0, 1);
  add_import_listings_command(*cmd, exit_code);
  auto ghl_args = std::make_shared<GhlContactsArgs>();
  auto* ghl = cmd->add_subcommand("ghl-contacts", "Load a GoHighLevel contact export (CSV) into a tenant");
  ghl->add_option("--data-dir", ghl_args->data_dir, "Directory of the SQLite store")->capture_default_str();
  ghl->add_option("--store", ghl_args->store, kStoreHelp)->check(postgres_store_url());
  ghl->add_option("--csv", ghl_args->csv, "The export (Contact Id, Phone, Email, Created, Tags, ... columns)")
      ->required();
  ghl->add_option("--tenant", ghl_args->tenant, "Tenant the contacts belong to")->required()
      ->check(tenant_id_option());
  ghl->callback([ghl_args, exit_code] { *exit_code = run_import_ghl_contacts(*ghl_args); });
  cmd->callback([args, cmd, exit_code] {
    if (!cmd->get_subcommands().empty()) return;  // the subcommand ran
    if (args->contacts.empty() || args->events.empty()) {
      *exit_code = report_failure(invalid_argument("import needs --contacts and --events (or a subcommand)"));
      return;
    }
    *exit_code = run_import(*args);
  });
}

}  // namespace reai::cli
