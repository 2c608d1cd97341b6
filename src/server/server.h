// Server: the HTTP + WebSocket edge of reai (`reai serve`).
//
// REST routes ingest CRM events and contacts, return scores and ranked leads;
// a WebSocket per agent receives every score change of its tenant, with replay
// after reconnect (`?since=SEQ`). Every /api route authenticates a JWT (HS256)
// whose `tenant_id` claim scopes everything the caller can read or write.
// Errors are JSON `{"error": "..."}` with a 4xx/5xx status.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "core/time.h"
#include "core/types.h"

namespace reai::store {
class Store;
}
namespace reai::bus {
class Bus;
class Cache;
class Leases;
}  // namespace reai::bus
namespace reai::scoring {
class LeadScoringEngine;
class DirectoryModelRegistry;
}  // namespace reai::scoring

namespace reai::server {

struct ServerConfig {
  std::string address = "127.0.0.1";
  std::uint16_t port = 8080;  // 0 = ephemeral (tests); Server::port() tells the bound one
  // If set, also accepts on this Unix-domain socket path (same routes and
  // WebSockets): for a proxy on the same host; a WebSocket write to it costs
  // the instance about 40% of a loopback TCP write. A stale socket file
  // (server killed) is replaced; a path a live server accepts on, or that is
  // not a socket, fails start(). Mode 0666, removed at stop().
  std::string unix_socket;
  int threads = 2;
  std::string jwt_secret;  // HS256 key: at least kMinJwtSecretBytes (check_jwt_secret)
  std::size_t max_body_bytes = 1 << 20;
  // Messages queued per WebSocket before the client is told and dropped.
  std::size_t ws_queue_limit = 8192;
  // WebSocket write linger (WsHub::set_linger): 0 writes each update at
  // once; N > 0 (behind a proxy) sends the updates of each N ms window in
  // one write per client, each delayed by at most N ms. 0..1000.
  int ws_linger_ms = 0;
  // Empty: the built-in plain page. Set: GET / and static files are served
  // from it, and start() refuses a directory without index.html
  // (check_static_dir) rather than quietly serving the built-in page.
  std::string static_dir;
  // 0 = unlimited; a token bucket per tenant on write routes -> 429.
  double tenant_rate_limit_per_s = 0;
  // Events waiting to be written; beyond it POST /api/events answers 503
  // with Retry-After (bounded memory under overload).
  std::size_t max_queued_events = 16384;
  // GoHighLevel webhooks: PEM public key files (empty: GHL's published
  // Ed25519 key; no RSA key means the legacy x-wh-signature is refused) and
  // the REST API base for write-back.
  std::string ghl_ed25519_key_file;
  std::string ghl_rsa_key_file;
  std::string ghl_api_base = "https://services.leadconnectorhq.com";
  // Property models: DIR/match, DIR/value and DIR/tenants/T/{match,value}
  // (`reai serve --model-dir`); empty: no property models (content scorer,
  // no valuations).
  std::string model_dir;
  // Write-back: the key sealing stored GHL tokens (32 raw bytes or 64 hex
  // digits; without it no token can be used), the marketplace app's OAuth
  // client, the per-location pace (GHL's 100 requests per 10 s; tests may
  // change it) and the least time between score-only updates of a contact.
  std::string ghl_secret_key_file;
  std::string ghl_client_id;
  std::string ghl_client_secret;
  std::string ghl_oauth_redirect_uri;
  int ghl_rate_requests = 100;
  double ghl_rate_period_s = 10;
  double ghl_score_interval_s = 60;
};

// Everything the server uses; all must outlive the Server.
struct ServerDeps {
  store::Store& store;
  bus::Bus& bus;
  bus::Cache& cache;
  scoring::LeadScoringEngine& engine;
  scoring::DirectoryModelRegistry& registry;
  const Clock& clock;
  // Per-lead leases; null or not shared: this instance alone owns lead state.
  // Shared (Redis): lead state is synchronised through `cache` and `store`.
  bus::Leases* leases = nullptr;
};

class Server {
 public:
  Server(ServerConfig config, ServerDeps deps);
  // Stops (as stop()) if still running.
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Rebuilds the engine from the store (every tenant's contacts, events and
  // stages, then scores each lead at clock.now()), binds and starts the io
  // threads. InvalidArgument for a bad config (empty secret, threads < 1, a
  // unix_socket path too long or not a socket), Unavailable when the address
  // or the socket path cannot be bound (port busy, a live server on the
  // path), or the store's error. Call once.
  Status start();
  // The bound port (the ephemeral one when config.port was 0); 0 before start.
  std::uint16_t port() const;
  // Graceful: stops accepting, closes WebSockets with 1001 (going away),
  // lets in-flight requests finish (bounded wait), joins the threads.
  // Idempotent; safe from any thread except the server's own io threads.
  void stop();
  // Blocks until stop() is called elsewhere or SIGINT/SIGTERM arrives, then
  // stops gracefully; meanwhile each SIGHUP reloads every tenant's lead
  // models on this instance (off the io threads, logged with what moved and
  // what failed; a model that fails keeps its previous version serving).
  // Returns immediately when not started. Unblocks SIGINT, SIGTERM and
  // SIGHUP in the calling thread once its handlers are installed, so a
  // signal the caller held back during start() is handled here.
  void wait();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// JWT (HS256). Claims: tenant_id, role ("agent"|"admin"), iat, exp.
enum class Role { kAgent, kAdmin };
std::string_view role_name(Role role);
// "agent" / "admin"; nullopt otherwise.
std::optional<Role> parse_role(std::string_view name);

struct TokenClaims {
  std::string tenant_id;
  Role role = Role::kAgent;
  UnixSeconds expires_at = 0;
};

// Ok for an empty `static_dir` (the built-in page) or a directory holding
// index.html; InvalidArgument naming the path otherwise (missing, not a
// directory, or no index.html).
Status check_static_dir(const std::string& static_dir);

// The shortest HS256 key accepted: RFC 7518 section 3.2 asks for a key at least
// as long as the hash output (256 bits); shorter keys are open to brute force.
inline constexpr std::size_t kMinJwtSecretBytes = 32;

// Ok for a key of at least kMinJwtSecretBytes; InvalidArgument otherwise,
// saying how long it is and how to make one (never echoing the key).
Status check_jwt_secret(std::string_view secret);

// A signed token valid until now + ttl_seconds. InvalidArgument for an
// invalid tenant id (core/tenant_id.h), a secret check_jwt_secret refuses or
// a non-positive ttl.
Result<std::string> issue_token(const std::string& tenant_id, Role role, const std::string& secret,
                                UnixSeconds ttl_seconds, UnixSeconds now);
// How far ahead of the verifier's clock a token's iat may be: the clock skew
// tolerated between the host that minted it and the server.
inline constexpr UnixSeconds kIatLeewaySeconds = 60;
// Unauthenticated for a malformed token, an alg other than HS256, a header
// with "crit" (no extension is understood), a bad signature, missing claims,
// expiry (exp <= now), an nbf after now, an iat after now +
// kIatLeewaySeconds ("token issued in the future"), and for every token when
// `secret` is one check_jwt_secret refuses.
Result<TokenClaims> verify_token(std::string_view token, const std::string& secret, UnixSeconds now);
// As verify_token, remembering tokens that verified in a small per-thread
// table (no lock), so a keep-alive client does not pay the HMAC and the JSON
// decode on every request. A remembered token is still refused once expired;
// failures are never remembered. Any thread.
Result<TokenClaims> verify_token_cached(std::string_view token, const std::string& secret, UnixSeconds now);

}  // namespace reai::server
