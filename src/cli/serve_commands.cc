// `reai serve`, `reai token`.
#include <cctype>
#include <fstream>
#include <iostream>
#include <stdexcept>

#include "cli/cli.h"
#include "cli/runtime.h"
#include "core/time.h"

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
  cmd->add_option("--threads", s.threads, "I/O threads")->capture_default_str();
  cmd->add_option("--data-dir", args->runtime.data_dir, "SQLite store directory")->capture_default_str();
  cmd->add_option("--store", args->runtime.store,
                  "postgres://user@host/db URL of a PostgreSQL store (instead of --data-dir; several instances "
                  "may share it)");
  cmd->add_option("--bus", args->runtime.bus_url,
                  "Score update fan-out: in-process when empty, or redis://HOST:PORT[?prefix=NAME]");
  cmd->add_option("--cache", args->runtime.cache_url,
                  "Feature/score cache: in-process when empty, or redis://HOST:PORT[?prefix=NAME]");
  cmd->add_option("--model-dir", args->runtime.model_dir, "Models: DIR/{leads,match,value}, DIR/tenants/T/{leads,match,value}")
      ->capture_default_str();
  cmd->add_option("--jwt-secret", args->jwt_secret, "HS256 key (or env REAI_JWT_SECRET)");
  cmd->add_option("--static-dir", s.static_dir, "Dashboard files (web/dist); built-in page when empty");
  cmd->add_option("--max-body-bytes", s.max_body_bytes, "Request body limit")->capture_default_str();
  cmd->add_option("--ws-queue-limit", s.ws_queue_limit, "Messages queued per WebSocket client")
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

int run_serve(ServeArgs args) {
  auto secret = resolve_jwt_secret(args.jwt_secret);
  if (!secret) return report_failure(secret.status());
  args.runtime.server.jwt_secret = *secret;
  const std::string& api_base = args.runtime.server.ghl_api_base;
  if (api_base.rfind("http://", 0) != 0 && api_base.rfind("https://", 0) != 0) {
    return report_failure(invalid_argument("--ghl-api-base must be an http:// or https:// URL"));
  }
  if (Status r = parse_rate_limit(args.ghl_rate_limit, &args.runtime.server); !r.is_ok()) return report_failure(r);
  if (!args.ghl_client_secret_file.empty()) {
    std::ifstream in(args.ghl_client_secret_file);
    if (!in) return report_failure(invalid_argument("cannot read --ghl-client-secret-file"));
    std::getline(in, args.runtime.server.ghl_client_secret);
    while (!args.runtime.server.ghl_client_secret.empty() && std::isspace(static_cast<unsigned char>(
                                                                   args.runtime.server.ghl_client_secret.back()))) {
      args.runtime.server.ghl_client_secret.pop_back();
    }
  }
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
            << (*runtime)->port() << "\n";
  (*runtime)->wait();
  std::cerr << "reai serve: stopped\n";
  return kExitOk;
}

struct TokenArgs {
  std::string tenant;
  std::string role = "agent";
  std::string jwt_secret;
  std::string ttl = "24h";
};

int run_token(const TokenArgs& args) {
  auto secret = resolve_jwt_secret(args.jwt_secret);
  if (!secret) return report_failure(secret.status());
  auto role = server::parse_role(args.role);
  if (!role) return report_failure(invalid_argument("--role must be agent or admin"));
  auto ttl = parse_duration(args.ttl);
  if (!ttl) return report_failure(ttl.status());
  auto token = server::issue_token(args.tenant, *role, *secret, *ttl, SystemClock().now());
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
  cmd->add_option("--tenant", args->tenant, "Tenant id")->required();
  cmd->add_option("--role", args->role, "agent or admin")->capture_default_str();
  cmd->add_option("--jwt-secret", args->jwt_secret, "HS256 key (or env REAI_JWT_SECRET)");
  cmd->add_option("--ttl", args->ttl, "Lifetime, e.g. 30m, 24h, 7d")->capture_default_str();
  cmd->callback([args, exit_code] { *exit_code = run_token(*args); });
}


}  // namespace reai::cli
