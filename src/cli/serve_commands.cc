// `reai serve`, `reai token`.
#include <cctype>
#include <fstream>
#include <iostream>
#include <stdexcept>

#include "cli/cli.h"
#include "cli/runtime.h"
#include "core/time.h"
#include "server/ghl_writeback.h"
#include "store/store.h"

namespace reai::cli {
namespace {

struct ServeArgs {
  RuntimeOptions runtime;
  std::string jwt_secret;
  std::string fixed_clock;
  std::string ghl_client_secret_file;
  std::string ghl_rate_limit = "100/10";
};

// "N/SECONDS" -> (N, SECONDS).
Status parse_rate_limit(const std::string& text, server::ServerConfig* config) {
  const auto slash = text.find('/');
  try {
    if (slash == std::string::npos) throw std::invalid_argument(text);
    std::size_t used = 0;
    const int n = std::stoi(text.substr(0, slash), &used);
    if (used != slash) throw std::invalid_argument(text);
    const double period = std::stod(text.substr(slash + 1), &used);
    if (used != text.size() - slash - 1 || n < 1 || !(period > 0)) throw std::invalid_argument(text);
    config->ghl_rate_requests = n;
    config->ghl_rate_period_s = period;
    return Status::ok();
  } catch (const std::exception&) {
    return invalid_argument("--ghl-rate-limit must be N/SECONDS, e.g. 100/10");
  }
}

void add_server_options(CLI::App* cmd, ServeArgs* args) {
  auto& s = args->runtime.server;
  cmd->add_option("--port", s.port, "HTTP port")->capture_default_str();
  cmd->add_option("--address", s.address, "Address to listen on")->capture_default_str();
  cmd->add_option("--unix-socket", s.unix_socket,
                  "Also accept on this Unix-domain socket path (for a proxy on the same host)");
  cmd->add_option("--threads", s.threads, "I/O threads")->capture_default_str();
  cmd->add_option("--data-dir", args->runtime.data_dir, "SQLite store directory")->capture_default_str();
  cmd->add_option("--store", args->runtime.store,
                  "postgres://user@host/db URL of a PostgreSQL store (instead of --data-dir; several instances "
                  "may share it)")
      ->check(postgres_store_url());
  cmd->add_option("--bus", args->runtime.bus_url,
                  "Score update fan-out: in-process when empty, or redis://HOST:PORT[?prefix=NAME] or "
                  "unix:///PATH.sock[?prefix=NAME]");
  cmd->add_option("--cache", args->runtime.cache_url,
                  "Feature/score cache: in-process when empty, or redis://HOST:PORT[?prefix=NAME] or "
                  "unix:///PATH.sock[?prefix=NAME]");
  cmd->add_option("--model-dir", args->runtime.model_dir, "Models: DIR/{leads,value,match,deals,markets,avm} (shared), DIR/tenants/T/... (one tenant's, "
                  "first)")
      ->capture_default_str();
  cmd->add_option("--jwt-secret", args->jwt_secret, "HS256 key (or env REAI_JWT_SECRET)");
  cmd->add_option("--static-dir", s.static_dir,
                  "Dashboard files: a directory with index.html (web/dist); without the option, the built-in page")
      ->check(static_dir_option());
  cmd->add_option("--max-body-bytes", s.max_body_bytes, "Request body limit")->capture_default_str();
  cmd->add_option("--ws-queue-limit", s.ws_queue_limit, "Messages queued per WebSocket client")
      ->capture_default_str();
  cmd->add_option("--ws-linger-ms", s.ws_linger_ms,
                  "Behind a proxy: send each client's updates of N ms in one write (adds up to N ms)")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  cmd->add_option("--tenant-rate-limit", s.tenant_rate_limit_per_s,
                  "Write requests per second per tenant (0: unlimited)")
      ->capture_default_str();
  cmd->add_option("--ghl-ed25519-key", s.ghl_ed25519_key_file,
                  "PEM public key for X-GHL-Signature (default: GHL's published key)");
  cmd->add_option("--ghl-rsa-key", s.ghl_rsa_key_file,
                  "PEM public key for the legacy x-wh-signature (default: legacy scheme refused)");
  cmd->add_option("--ghl-api-base", s.ghl_api_base, "GoHighLevel REST API base URL")->capture_default_str();
  cmd->add_option("--secret-key-file", s.ghl_secret_key_file,
                  "Key sealing GHL tokens at rest (32 raw bytes or 64 hex digits); needed for write-back");
  cmd->add_option("--ghl-client-id", s.ghl_client_id, "GHL marketplace app OAuth client id");
  cmd->add_option("--ghl-client-secret-file", args->ghl_client_secret_file,
                  "File holding the GHL marketplace app OAuth client secret");
  cmd->add_option("--ghl-oauth-redirect-uri", s.ghl_oauth_redirect_uri,
                  "redirect_uri sent with the OAuth code exchange (when the app registered one)");
  cmd->add_option("--ghl-rate-limit", args->ghl_rate_limit,
                  "GHL requests per location as N/SECONDS (GHL's limit; lower it, never raise it, in production)")
      ->capture_default_str();
  cmd->add_option("--ghl-score-interval", s.ghl_score_interval_s,
                  "Least seconds between score-only write-backs of a contact (band changes always go)")
      ->capture_default_str();
  cmd->add_option("--clock", args->fixed_clock,
                  "Pin the server's clock to an ISO 8601 instant (tests, comparisons with replay)");
}

Status read_client_secret(const std::string& file, server::ServerConfig* config) {
  if (file.empty()) return Status::ok();
  std::ifstream in(file);
  if (!in) return invalid_argument("cannot read --ghl-client-secret-file");
  std::getline(in, config->ghl_client_secret);
  while (!config->ghl_client_secret.empty() && std::isspace(static_cast<unsigned char>(config->ghl_client_secret.back()))) {
    config->ghl_client_secret.pop_back();
  }
  return Status::ok();
}

Status check_api_base(const std::string& api_base) {
  if (api_base.rfind("http://", 0) != 0 && api_base.rfind("https://", 0) != 0) {
    return invalid_argument("--ghl-api-base must be an http:// or https:// URL");
  }
  return Status::ok();
}

int run_serve(ServeArgs args) {
  block_stop_signals();
  auto secret = resolve_jwt_secret(args.jwt_secret);
  if (!secret) return report_failure(secret.status());
  args.runtime.server.jwt_secret = *secret;
  if (Status b = check_api_base(args.runtime.server.ghl_api_base); !b) return report_failure(b);
  if (Status r = parse_rate_limit(args.ghl_rate_limit, &args.runtime.server); !r.is_ok()) return report_failure(r);
  if (Status c = read_client_secret(args.ghl_client_secret_file, &args.runtime.server); !c) return report_failure(c);
  if (!args.fixed_clock.empty()) {
    args.runtime.fixed_clock = parse_iso8601(args.fixed_clock);
    if (!args.runtime.fixed_clock) {
      return report_failure(invalid_argument("bad --clock '" + args.fixed_clock + "'"));
    }
  }
  auto runtime = Runtime::open(args.runtime);
  if (!runtime) return report_failure(runtime.status());
  Status started = (*runtime)->start();
  if (!started.is_ok()) return report_failure(started);
  std::cerr << "reai serve: listening on http://" << args.runtime.server.address << ":"
            << (*runtime)->port();
  if (!args.runtime.server.unix_socket.empty()) std::cerr << " and unix:" << args.runtime.server.unix_socket;
  std::cerr << "\n";
  (*runtime)->wait();
  std::cerr << "reai serve: stopped\n";
  return kExitOk;
}

struct TokenArgs {
  std::string tenant;
  std::string role = "agent";
  std::string jwt_secret;
  std::string ttl = "24h";
  std::string clock;  // ISO 8601 issue instant; empty: now
};

int run_token(const TokenArgs& args) {
  auto secret = resolve_jwt_secret(args.jwt_secret);
  if (!secret) return report_failure(secret.status());
  auto role = server::parse_role(args.role);
  if (!role) return report_failure(invalid_argument("--role must be agent or admin"));
  auto ttl = parse_duration(args.ttl);
  if (!ttl) return report_failure(ttl.status());
  UnixSeconds issued_at = SystemClock().now();
  if (!args.clock.empty()) {
    auto pinned = parse_iso8601(args.clock);
    if (!pinned) return report_failure(invalid_argument("bad --clock '" + args.clock + "'"));
    issued_at = *pinned;
  }
  auto token = server::issue_token(args.tenant, *role, *secret, *ttl, issued_at);
  if (!token) return report_failure(token.status());
  std::cout << *token << "\n";
  return kExitOk;
}

}  // namespace

void add_serve_command(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ServeArgs>();
  auto* cmd = app.add_subcommand("serve", "Run the HTTP + WebSocket server");
  add_server_options(cmd, args.get());
  cmd->callback([args, exit_code] { *exit_code = run_serve(*args); });
}

void add_token_command(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<TokenArgs>();
  auto* cmd = app.add_subcommand("token", "Print a signed HS256 JWT for a tenant");
  cmd->add_option("--tenant", args->tenant, "Tenant id")->required()
      ->check(tenant_id_option());
  cmd->add_option("--role", args->role, "agent or admin")->capture_default_str();
  cmd->add_option("--jwt-secret", args->jwt_secret, "HS256 key (or env REAI_JWT_SECRET)");
  cmd->add_option("--ttl", args->ttl, "Lifetime, e.g. 30m, 24h, 7d")->capture_default_str();
  cmd->add_option("--clock", args->clock,
                  "Issue at this ISO 8601 instant instead of now: for a server pinned with serve --clock, "
                  "which refuses a token issued after its clock");
  cmd->callback([args, exit_code] { *exit_code = run_token(*args); });
}

struct GhlSyncArgs {
  std::string data_dir = "var";
  std::string store;  // postgres:// URL; empty: SQLite in data_dir
  std::string tenant;
  server::ServerConfig server;
  std::string ghl_client_secret_file;
  std::string ghl_rate_limit = "100/10";
  int page_size = ghl::kMaxPageLimit;
  int max_attempts = 8;
  bool restart = false;
};

int run_ghl_sync(GhlSyncArgs args) {
  if (args.page_size < 1 || args.page_size > ghl::kMaxPageLimit) {
    return report_failure(invalid_argument("--page-size must be 1.." + std::to_string(ghl::kMaxPageLimit)));
  }
  if (args.max_attempts < 1) return report_failure(invalid_argument("--max-attempts must be at least 1"));
  if (Status b = check_api_base(args.server.ghl_api_base); !b) return report_failure(b);
  if (Status r = parse_rate_limit(args.ghl_rate_limit, &args.server); !r) return report_failure(r);
  if (Status c = read_client_secret(args.ghl_client_secret_file, &args.server); !c) return report_failure(c);
  auto config = server::ghl_writeback_config(args.server);
  if (!config) return report_failure(config.status());
  config->deliver_outbox = false;  // a running server owns the outbox
  auto store = store::open_store(args.store.empty() ? args.data_dir : args.store);
  if (!store) return report_failure(store.status());
  if (auto tenant = (*store)->get_tenant(args.tenant); !tenant) return report_failure(tenant.status());
  auto worker = server::GhlWriteback::create(**store, std::move(*config));
  if (!worker) return report_failure(worker.status());
  server::GhlWriteback::SyncOptions options;
  options.restart = args.restart;
  options.page_limit = args.page_size;
  options.max_attempts = args.max_attempts;
  auto report = (*worker)->sync(args.tenant, options);
  (*worker)->stop();
  if (!report) return report_failure(report.status());
  std::cout << "synced tenant " << args.tenant << ": " << report->contacts << " contacts, " << report->opportunities
            << " opportunities (" << report->stage_rows << " new stage rows) in " << report->pages << " pages"
            << (report->resumed ? " (resumed)" : "") << "\n";
  return kExitOk;
}

void add_ghl_command(CLI::App& app, int* exit_code) {
  auto* cmd = app.add_subcommand("ghl", "GoHighLevel tools");
  cmd->require_subcommand(1);
  auto args = std::make_shared<GhlSyncArgs>();
  auto* sync = cmd->add_subcommand(
      "sync", "Pull a linked tenant's GHL contacts and opportunities into the store (resumable, rate-limited)");
  sync->add_option("--data-dir", args->data_dir, "Directory of the SQLite store")->capture_default_str();
  sync->add_option("--store", args->store, "postgres://user@host/db URL of a PostgreSQL store (instead of --data-dir)")->check(postgres_store_url());
  sync->add_option("--tenant", args->tenant, "Tenant linked to a GHL location (reai tenant add --ghl-location)")
      ->required()
      ->check(tenant_id_option());
  sync->add_option("--secret-key-file", args->server.ghl_secret_key_file,
                   "Key the tenant's GHL token is sealed with (as given to reai serve)");
  sync->add_option("--ghl-api-base", args->server.ghl_api_base, "GoHighLevel REST API base URL")->capture_default_str();
  sync->add_option("--ghl-client-id", args->server.ghl_client_id, "OAuth client id (refreshes an OAuth token)");
  sync->add_option("--ghl-client-secret-file", args->ghl_client_secret_file, "File holding the OAuth client secret");
  sync->add_option("--ghl-rate-limit", args->ghl_rate_limit,
                   "GHL requests per location as N/SECONDS (leave room for a running server's write-back)")
      ->capture_default_str();
  sync->add_option("--page-size", args->page_size, "Records per page (1-100)")->capture_default_str();
  sync->add_option("--max-attempts", args->max_attempts, "Tries of one page (429/5xx) before stopping; rerun resumes")
      ->capture_default_str();
  sync->add_flag("--restart", args->restart, "Start over instead of resuming from the stored cursor");
  sync->callback([args, exit_code] { *exit_code = run_ghl_sync(*args); });
}

}  // namespace reai::cli
