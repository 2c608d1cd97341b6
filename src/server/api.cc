#include "server/api.h"
#include "server/lead_board.h"
#include "server/lead_sync.h"
#include "server/lead_workers.h"
#include "server/model_reloads.h"
#include "server/track_outcomes.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <future>
#include <iterator>
#include <random>

#include "bus/bus.h"
#include "core/json_text.h"
#include "core/tenant_id.h"
#include "core/time.h"
#include "server/codec.h"
#include "server/dashboard_routes.h"
#include "server/ghl_routes.h"
#include "server/prediction_routes.h"
#include "server/ghl_writeback.h"
#include "server/http_errors.h"
#include "server/property_routes.h"
#include "server/responses.h"
#include "store/store.h"

namespace reai::server {
namespace json = boost::json;

// Per-tenant token buckets for write routes.
class TokenBuckets {
 public:
  explicit TokenBuckets(double rate) : rate_(rate), burst_(std::max(1.0, rate)) {}
  // 0 when allowed; otherwise the whole seconds to wait.
  int acquire(const std::string& tenant_id) {
    const double now = std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    std::lock_guard lock(mu_);
    auto [it, inserted] = buckets_.try_emplace(tenant_id, Bucket{burst_, now});
    Bucket& b = it->second;
    b.tokens = std::min(burst_, b.tokens + (now - b.last) * rate_);
    b.last = now;
    if (b.tokens >= 1.0) {
      b.tokens -= 1.0;
      return 0;
    }
    return std::max(1, int(std::ceil((1.0 - b.tokens) / rate_)));
  }

 private:
  struct Bucket {
    double tokens;
    double last;
  };
  double rate_;
  double burst_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
};

namespace {

constexpr std::string_view kWsPrefix = "/api/realtime/scoring/";


std::optional<std::uint64_t> parse_uint(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + std::uint64_t(c - '0');
  }
  return v;
}

std::string contact_key(std::string_view tenant_id, std::string_view contact_id) {
  return tenant_scoped_key(tenant_id, contact_id);
}

std::string reasons_json(const scoring::LeadScore& s) {
  std::string out = "[";
  for (std::size_t i = 0; i < s.reasons.size(); ++i) {
    if (i) out.push_back(',');
    out.append("{\"feature\":");
    append_json_string(s.reasons[i].feature, &out);
    out.append(",\"text\":");
    append_json_string(s.reasons[i].text, &out);
    out.append(",\"impact\":");
    out.append(json_text(json::value(s.reasons[i].impact)));
    out.push_back('}');
  }
  out.push_back(']');
  return out;
}

// Parses a body with a stack-first arena: most events fit in 4 KiB.
class BodyParser {
 public:
  Result<json::value> parse(std::string_view body) {
    return parse_json(body, {}, json::storage_ptr(&resource_));
  }

 private:
  unsigned char buffer_[4096];
  json::monotonic_resource resource_{buffer_, sizeof buffer_};
};

// Lead state across instances in /metrics (Prometheus text).
void append_lead_sync_metrics(bool shared, const LeadSyncStats& s, bool up, std::string* out) {
  PrometheusText(out)
      .gauge("reai_lead_state_shared", "Whether lead state is synchronised across instances (Redis leases).",
             shared ? 1 : 0)
      .gauge("reai_lead_leases_up", "Whether per-lead leases work (0: degraded, each instance alone).", up ? 1 : 0)
      .counter("reai_lead_snapshot_adopted_total",
               "Lead feature-snapshot hits read from another instance's snapshot (Redis, with the lease's stamp).",
               s.snapshot_adopted)
      .counter("reai_lead_store_rebuilds_total", "Leads refolded from their stored events.", s.store_rebuilds)
      .counter("reai_lead_unshared_snapshots_total",
               "Lead snapshots over the size bound, published without their state (others refold from the store).",
               s.unshared_snapshots)
      .counter("reai_lead_created_folds_total",
               "Snapshot misses of leads this instance's commit created, folded without reading the store.",
               s.created_folds)
      .counter("reai_lead_marked_refolds_total",
               "Leads refolded because another instance's write (in flight or died) was not in the shared state.",
               s.marked_refolds)
      .counter("reai_lead_mark_failures_total",
               "Lead marks not set before a write (lease service down): a death before the publish goes unseen.",
               s.mark_failures)
      .counter("reai_lead_refused_marks_total",
               "Lead marks dropped after the store refused their event as another lead's (409).", s.refused_marks)
      .counter("reai_lead_leases_total", "Per-lead leases taken.", s.leases)
      .counter("reai_lead_lease_failures_total", "Per-lead leases not taken (down or busy): applied alone.",
               s.lease_failures)
      .counter("reai_lead_lease_overruns_total",
               "Per-lead leases given back a hold (2 s) or more after they were asked for: they may have lapsed.",
               s.lease_overruns)
      .counter("reai_lead_lease_nanoseconds_total", "Nanoseconds spent taking and releasing per-lead leases.",
               s.lease_ns);
}

bool is_fallback(const scoring::LeadScore& s) { return !s.fallback_reason.empty() || s.model_version == "fallback"; }

// A score's history row.
store::ScoreRecord score_record(const scoring::LeadScore& s) {
  store::ScoreRecord record;
  record.tenant_id = s.tenant_id;
  record.contact_id = s.lead_id;
  record.ts = s.scored_at;
  record.probability = s.probability;
  record.score = s.score;
  record.band = std::string(scoring::band_name(s.band));
  record.model_version = s.model_version;
  record.reasons_json = reasons_json(s);
  // The lead's order, not this instance's: another instance's writer may
  // commit an earlier score of the lead after this one.
  record.lead_order = s.events_count;
  return record;
}

}  // namespace

Api::Api(const ServerConfig& config, const ServerDeps& deps, Metrics& metrics, WsHub& hub)
    : config_(config),
      deps_(deps),
      metrics_(metrics),
      hub_(hub),
      lead_sync_(std::make_unique<LeadSync>(deps.store, deps.leases, deps.engine)),
      dashboard_(std::make_unique<DashboardRoutes>(deps.store, deps.engine)),
      predictions_(std::make_unique<PredictionRoutes>(deps.store, deps.registry.model_dir(), deps.clock)),
      appender_(std::make_unique<EventAppender>(
          deps.store, [this](const Event& e, std::vector<Contact>* new_contacts) { return prepare_event(e, new_contacts); },
          EventAppender::Limits{.max_queued_events = config.max_queued_events},
          [this](const EventAppender::Committed& batch) {
            remember_stored_contacts(batch);
            // Shared lead state: a lead this commit created needs no store
            // read to be folded (see LeadSync::leads_created).
            if (!lead_sync_->active()) return;
            std::vector<Contact> created;
            for (std::size_t i = 0; i < batch.contacts.size() && i < batch.created.size(); ++i) {
              if (batch.created[i]) created.push_back(batch.contacts[i]);
            }
            lead_sync_->leads_created(created, batch.events, batch.stored);
          },
          // Shared lead state: other instances learn which leads have events
          // being written before the commit (see lead_sync.h).
          lead_sync_->active()
              ? EventAppender::BeforeWrite([this](std::span<const Event> batch) { lead_sync_->will_store(batch); })
              : nullptr,
          [this] {
            hand_batch_to_batch_worker();
            answer_posts_.flush();
          })) {
  if (config_.tenant_rate_limit_per_s > 0) rate_limiter_ = std::make_unique<TokenBuckets>(config_.tenant_rate_limit_per_s);
  std::random_device rd;
  char buf[32];
  std::snprintf(buf, sizeof buf, "evt-%08x%08x-", rd(), rd());
  event_id_prefix_ = buf;
  ghl_ = std::make_unique<GhlRoutes>(*this);
  property_ = std::make_unique<PropertyRoutes>(deps.store, deps.bus, deps.clock, config.model_dir);
  reloads_ = std::make_unique<ModelReloads>(deps_.bus, deps_.registry, [this](const std::string& tenant_id) {
    return property_->refresh(tenant_id);
  });
  if (lead_sync_->active()) {
    lead_workers_ = std::make_unique<LeadWorkers>(kLeadWorkerThreads);
    batch_worker_ = std::make_unique<LeadWorkers>(1);
    // Before rebuild() seeds it: nothing published meanwhile is missed.
    board_ = std::make_unique<LeadBoard>();
    board_subscription_ = deps_.bus.subscribe([board = board_.get()](const bus::BusMessage& m) {
      if (m.topic == "score_update") board->record(m.payload);
    });
    dashboard_->use_board(board_.get());
    // Before rebuild() reads the store, receive only (see rebuild()).
    track_outcomes_ = std::make_unique<TrackOutcomeSharing>(deps_.bus, deps_.engine);
  }
}

Api::~Api() {
  if (board_) deps_.bus.unsubscribe(board_subscription_);
  ghl_->stop();
  if (writeback_) writeback_->stop();
  // As stop_appender(): the appender's last batches are handed to the batch
  // worker (held leads to the lead workers), which score them before
  // anything they use goes away; the batches first.
  appender_->stop();
  if (batch_worker_) batch_worker_->stop();
  if (lead_workers_) lead_workers_->stop();
  reloads_->stop();
  property_->stop();
}

void Api::stop_appender() {
  predictions_->stop();
  ghl_->stop();  // its last deliveries still go through the appender
  if (writeback_) writeback_->stop();
  appender_->stop();
  // After the appender: its last batches' scoring was handed to the workers;
  // the batches first, as they hand held leads to the lead workers.
  if (batch_worker_) batch_worker_->stop();
  if (lead_workers_) lead_workers_->stop();
  reloads_->stop();  // refreshes property models: before property_
  property_->stop();
}

void Api::reload_all_models() { reloads_->reload_all(); }

void Api::drain_ghl() {
  ghl_->drain();
  if (writeback_) writeback_->flush();
}

// The counter is zero-padded to a fixed width so ids sort in issue order:
// each new id lands at the right edge of the store's (tenant_id, event_id)
// key index, one shared page per commit and full pages, instead of splitting
// leaves in the middle ("-10" sorts before "-9").
std::string Api::next_event_id() {
  const std::uint64_t n = event_counter_.fetch_add(1, std::memory_order_relaxed) + 1;
  char digits[20];
  const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
  const auto width = static_cast<std::size_t>(end - digits);
  constexpr std::size_t kWidth = 12;
  std::string id;
  id.reserve(event_id_prefix_.size() + std::max(width, kWidth));
  id += event_id_prefix_;
  if (width < kWidth) id.append(kWidth - width, '0');
  id.append(digits, width);
  return id;
}

Status Api::rebuild() {
  REAI_RETURN_IF_ERROR(ghl_->load_keys());
  auto tenants = deps_.store.list_tenants();
  if (!tenants) return tenants.status();
  const UnixSeconds now = deps_.clock.now();
  std::vector<GhlWriteback::CurrentScore> linked_scores;  // for the write-back's reconciliation
  for (const auto& tenant : *tenants) {
    std::vector<std::string> contact_ids;
    REAI_RETURN_IF_ERROR(deps_.store.for_each_contact(tenant.tenant_id, [&](const Contact& c) {
      deps_.engine.load_contact(c);
      contact_ids.push_back(c.contact_id);
      return true;
    }));
    REAI_RETURN_IF_ERROR(deps_.store.for_each_event(tenant.tenant_id, [&](const Event& e) {
      deps_.engine.load_event(e);
      return true;
    }));
    REAI_RETURN_IF_ERROR(deps_.store.for_each_stage(tenant.tenant_id, [&](const OpportunityStage& s) {
      deps_.engine.apply_stage(s);
      return true;
    }));
    {
      std::lock_guard lock(known_mu_);
      known_tenants_.insert(tenant.tenant_id);
      for (const auto& id : contact_ids) known_contacts_.insert(contact_key(tenant.tenant_id, id));
    }
    // Leads a history import brought in have no score row yet: their
    // start-up score becomes their first one, so each has a history. Written
    // only where the lead still has none: another instance starting at the
    // same time may have written it (or scored the lead) meanwhile.
    auto unscored_ids = deps_.store.contacts_without_scores(tenant.tenant_id);
    if (!unscored_ids) return unscored_ids.status();
    const std::unordered_set<std::string> unscored(unscored_ids->begin(), unscored_ids->end());
    std::vector<store::ScoreRecord> first_rows;
    for (const auto& id : contact_ids) {
      auto score = deps_.engine.score(tenant.tenant_id, id, now);
      if (!score) continue;
      if (unscored.count(id)) first_rows.push_back(score_record(*score));
      seed_last_score(*score);
      if (board_) board_->record(std::make_shared<const std::string>(score_json(*score)), /*only_if_absent=*/true);
      if (!tenant.ghl_location_id.empty()) {
        linked_scores.push_back({tenant.tenant_id, id, score->score, std::string(scoring::band_name(score->band))});
      }
    }
    auto written = deps_.store.append_first_scores(first_rows);
    if (!written) return written.status();
  }
  auto wb_config = ghl_writeback_config(config_);
  if (!wb_config) return wb_config.status();
  auto writeback = GhlWriteback::create(deps_.store, std::move(*wb_config));
  if (!writeback) return writeback.status();
  writeback_ = std::move(*writeback);
  // Before any delivery is reprocessed: a change that was in memory but not
  // in the outbox at a crash is found by comparing with what was enqueued.
  writeback_->reconcile(std::move(linked_scores));
  // Every instance replays the store itself, so what this replay counted is
  // not sent; what this instance counts from now on is.
  if (track_outcomes_) track_outcomes_->start_publishing();
  return ghl_->resume_pending();
}

bool Api::is_websocket_path(std::string_view target) { return target.substr(0, kWsPrefix.size()) == kWsPrefix; }

WsAdmission Api::admit_websocket(std::string_view target) const {
  WsAdmission a;
  const auto q = target.find('?');
  const std::string_view path = target.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? std::string_view() : target.substr(q + 1);
  auto tenant = percent_decode(path.substr(kWsPrefix.size()), false);
  if (!tenant || tenant->empty() || tenant->find('/') != std::string::npos) {
    a.close_code = 4000;
    a.reason = "bad tenant in path";
    return a;
  }
  auto token = query_param(query, "token");
  if (!token) {
    a.close_code = 4001;
    a.reason = "missing token";
    return a;
  }
  auto claims = verify_token(*token, config_.jwt_secret, deps_.clock.now());
  if (!claims) {
    a.close_code = 4001;
    a.reason = claims.status().message();
    return a;
  }
  if (claims->tenant_id != *tenant) {
    a.close_code = 4003;
    a.reason = "token is for another tenant";
    return a;
  }
  if (auto since = query_param(query, "since")) {
    a.since = parse_uint(*since);
    if (!a.since) {
      a.close_code = 4000;
      a.reason = "since must be a sequence number";
      return a;
    }
  }
  a.tenant_id = std::move(*tenant);
  return a;
}

Result<TokenClaims> Api::authenticate(const ApiRequest& request) const {
  // HTTP auth schemes are case-insensitive (RFC 9110 11.1): "bearer" too.
  constexpr std::string_view kBearer = "bearer ";
  const std::string_view scheme = std::string_view(request.authorization).substr(0, kBearer.size());
  const bool is_bearer = std::equal(scheme.begin(), scheme.end(), kBearer.begin(), kBearer.end(), [](char a, char b) {
    return std::tolower(static_cast<unsigned char>(a)) == b;
  });
  if (!is_bearer) return unauthenticated("missing bearer token");
  return verify_token_cached(request.authorization.substr(kBearer.size()), config_.jwt_secret, deps_.clock.now());
}

ApiResponse Api::handle(const ApiRequest& request) {
  const auto q = request.target.find('?');
  const std::string_view path = request.target.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? std::string_view() : request.target.substr(q + 1);
  return route(request, path, query, nullptr);
}

void Api::handle_async(const ApiRequest& request, Post post, Respond respond, const void* lane) {
  const auto q = request.target.find('?');
  const std::string_view path = request.target.substr(0, q);
  const std::string_view query = q == std::string_view::npos ? std::string_view() : request.target.substr(q + 1);
  Deferred deferred{std::move(post), std::move(respond), lane};
  ApiResponse r = route(request, path, query, &deferred);
  if (!r.deferred) deferred.respond(std::move(r));
}

// An /api/ path that needs a token, matched: its route and the ids its path
// names (percent-decoded once, by path_segments). kUnmatched when no route
// has this path; `bad_path` set (and kUnmatched) when its escapes are malformed.
struct Api::TokenRoute {
  Route route = Route::kUnmatched;
  std::string contact_id, agent_id, property_id, prediction_id;  // lead or listing id in property_id
  std::string delivery_id;
  Status bad_path;
};

namespace {

using Segments = std::span<const std::string>;

// check_id for the one id a route's path names (at most one is set), under
// the name a body would give it.
Status check_path_id(Route route, std::string_view contact_id, std::string_view agent_id,
                     std::string_view property_id, std::string_view prediction_id) {
  if (!contact_id.empty()) return check_id(contact_id, "contact_id");
  if (!agent_id.empty()) return check_id(agent_id, "agent_id");
  if (!property_id.empty()) return check_id(property_id, route == Route::kLeadMatches ? "lead_id" : "listing_id");
  if (!prediction_id.empty()) {
    return check_id(prediction_id, route == Route::kPredictionDeals ? "opportunity_id" : "agent_id");
  }
  return Status::ok();
}

// The paths without an id, after "/api/".
Route fixed_route(Segments s) {
  if (s.size() == 2 && s[1] == "events") return Route::kEvents;
  if (s.size() == 2 && s[1] == "leads") return Route::kLeads;
  if (s.size() == 3 && s[1] == "leads" && s[2] == "distribution") return Route::kLeadDistribution;
  if (s.size() == 3 && s[1] == "realtime" && s[2] == "score-trigger") return Route::kScoreTrigger;
  if (s.size() == 3 && s[1] == "realtime" && s[2] == "performance") return Route::kPerformance;
  if (s.size() >= 3 && s[1] == "realtime" && s[2] == "scoring") return Route::kRealtimeScoring;
  if (s.size() == 3 && s[1] == "admin" && s[2] == "reload") return Route::kAdminReload;
  return Route::kUnmatched;
}

// The GHL admin routes: /api/admin/ghl/{outbox,config,deliveries,deliveries/ID/retry}.
Route ghl_admin_route(Segments s, std::string* delivery_id) {
  if (s.size() < 4 || s[1] != "admin" || s[2] != "ghl") return Route::kUnmatched;
  if (s.size() == 4 && s[3] == "outbox") return Route::kGhlOutbox;
  if (s.size() == 4 && s[3] == "config") return Route::kGhlConfig;
  if (s.size() == 4 && s[3] == "deliveries") return Route::kGhlDeliveries;
  if (s.size() == 6 && s[3] == "deliveries" && !s[4].empty() && s[5] == "retry") {
    *delivery_id = s[4];
    return Route::kGhlRetry;
  }
  return Route::kUnmatched;
}

// /api/contacts/{id}[/score|/scores|/events].
Route contact_route(Segments s, std::string* contact_id) {
  if (s.size() < 3 || s.size() > 4 || s[1] != "contacts" || s[2].empty()) return Route::kUnmatched;
  Route route = Route::kUnmatched;
  if (s.size() == 3) route = Route::kContact;
  else if (s[3] == "score") route = Route::kContactScore;
  else if (s[3] == "scores") route = Route::kContactScores;
  else if (s[3] == "events") route = Route::kContactEvents;
  if (route != Route::kUnmatched) *contact_id = s[2];
  return route;
}

// /api/agents/{id}/track-record.
Route track_record_route(Segments s, std::string* agent_id) {
  if (s.size() != 4 || s[1] != "agents" || s[2].empty() || s[3] != "track-record") return Route::kUnmatched;
  *agent_id = s[2];
  return Route::kAgentTrackRecord;
}

}  // namespace

Api::TokenRoute Api::match_token_route(std::string_view path) {
  TokenRoute m;
  auto segments = path_segments(path);
  if (!segments) {
    m.bad_path = segments.status();
    return m;
  }
  const Segments s = *segments;
  if (s.empty() || s[0] != "api") return m;
  m.route = fixed_route(s);
  if (m.route == Route::kUnmatched) m.route = ghl_admin_route(s, &m.delivery_id);
  if (m.route == Route::kUnmatched) m.route = PredictionRoutes::match(s, &m.prediction_id);
  if (m.route == Route::kUnmatched) m.route = contact_route(s, &m.contact_id);
  if (m.route == Route::kUnmatched) m.route = track_record_route(s, &m.agent_id);
  if (m.route == Route::kUnmatched) m.route = PropertyRoutes::route_of(s, &m.property_id);
  return m;
}

ApiResponse Api::route(const ApiRequest& request, std::string_view path, std::string_view query,
                       Deferred* deferred) {
  const bool get = request.method == Method::kGet || request.method == Method::kHead;
  const Route probe = path == "/healthz"   ? Route::kHealthz
                      : path == "/readyz"  ? Route::kReadyz
                      : path == "/metrics" ? Route::kMetrics
                                           : Route::kUnmatched;
  if (probe != Route::kUnmatched && !get) {
    // Read-only: a POST or DELETE answered 200 would tell a client it did something.
    return method_not_allowed(probe);
  }
  if (probe == Route::kHealthz) return json_response(200, R"({"status":"ok"})", Route::kHealthz);
  if (probe == Route::kReadyz) return readyz();
  if (probe == Route::kMetrics) return metrics_page();
  if (path.substr(0, 5) != "/api/") {
    if (!get) return method_not_allowed(Route::kStatic);
    return static_page(path);
  }
  // GoHighLevel authenticates with signatures / a shared secret, not a JWT.
  if (auto ghl = route_ghl(request, path, deferred)) return std::move(*ghl);
  // The marketplace install redirect carries a one-time code, not a token.
  if (path == "/api/ghl/oauth/callback") {
    if (!get) return method_not_allowed(Route::kGhlOAuth);
    return ghl_oauth_callback(query, deferred);
  }
  // Everything else under /api/ needs a token; the tenant always comes from it.
  const TokenRoute matched = match_token_route(path);
  if (!matched.bad_path) return error_response(matched.bad_path, matched.route);
  if (matched.route == Route::kUnmatched) return error_response(not_found("no such route"), matched.route);
  return route_with_token(request, matched, query, deferred);
}

std::optional<ApiResponse> Api::route_ghl(const ApiRequest& request, std::string_view path, Deferred* deferred) {
  constexpr std::string_view kGhlWorkflowPrefix = "/api/ghl/workflow/";
  const bool webhook = path == "/api/ghl/webhook";
  if (!webhook && path.substr(0, kGhlWorkflowPrefix.size()) != kGhlWorkflowPrefix) return std::nullopt;
  GhlRoutes::Post post;
  GhlRoutes::Respond respond;
  if (deferred) {
    post = deferred->post;
    respond = deferred->respond;
  }
  if (webhook) return ghl_->webhook(request, std::move(post), std::move(respond));
  auto tenant = percent_decode(path.substr(kGhlWorkflowPrefix.size()), false);
  if (!tenant || tenant->empty() || tenant->find('/') != std::string::npos) {
    return error_response(not_found("no such route"), Route::kGhlWorkflow);
  }
  return ghl_->workflow(*tenant, request, std::move(post), std::move(respond));
}

ApiResponse Api::route_with_token(const ApiRequest& request, const TokenRoute& m, std::string_view query,
                                  Deferred* deferred) {
  auto claims = authenticate(request);
  if (!claims) return error_response(claims.status(), m.route);
  if (auto tenant = query_param(query, "tenant_id"); tenant && *tenant != claims->tenant_id) {
    return error_response(permission_denied("tenant_id does not match the token"), m.route);
  }
  // An id in the path obeys the rule of ids in a body: PUT would otherwise
  // store a contact no event can name (nor any JSON answer carry).
  if (Status s = check_path_id(m.route, m.contact_id, m.agent_id, m.property_id, m.prediction_id); !s) {
    return error_response(s, m.route);
  }
  const bool write = request.method == Method::kPost || request.method == Method::kPut;
  // A form post (curl -d without a Content-Type) would otherwise fail as
  // "malformed JSON", which hides what the client got wrong.
  if (write && !request.body.empty() && !is_json_content_type(request.content_type)) {
    return unsupported_media_type(m.route);
  }
  if (write && rate_limiter_) {
    if (int wait = rate_limiter_->acquire(claims->tenant_id); wait > 0) {
      ApiResponse r = error_response(resource_exhausted("rate limit exceeded for this tenant"), m.route);
      r.retry_after = std::to_string(wait);
      return r;
    }
  }
  return dispatch(*claims, m, request, query, deferred);
}

ApiResponse Api::dispatch(const TokenClaims& claims, const TokenRoute& m, const ApiRequest& request,
                          std::string_view query, Deferred* deferred) {
  const bool get = request.method == Method::kGet || request.method == Method::kHead;
  auto method_is = [&](Method method) { return request.method == method || (method == Method::kGet && get); };
  switch (m.route) {
    case Route::kEvents:
      if (method_is(Method::kPost)) return post_events(claims, request, deferred);
      break;
    case Route::kContact:
      if (method_is(Method::kPut)) return put_contact(claims, m.contact_id, request);
      if (method_is(Method::kGet)) return dashboard_->contact(claims, m.contact_id);
      break;
    case Route::kContactEvents:
      if (method_is(Method::kGet)) return dashboard_->events(claims, m.contact_id, query);
      break;
    case Route::kLeadDistribution:
      if (method_is(Method::kGet)) return dashboard_->distribution(claims);
      break;
    case Route::kContactScore:
      if (method_is(Method::kGet)) return get_score(claims, m.contact_id);
      break;
    case Route::kContactScores:
      if (method_is(Method::kGet)) return get_score_history(claims, m.contact_id, query);
      break;
    case Route::kLeads:
      if (method_is(Method::kGet)) return get_leads(claims, query);
      break;
    case Route::kScoreTrigger:
      if (method_is(Method::kPost)) return score_trigger(claims, request);
      break;
    case Route::kPerformance:
      if (method_is(Method::kGet)) return performance(claims);
      break;
    case Route::kAdminReload:
      if (method_is(Method::kPost)) return admin_reload(claims, deferred);
      break;
    case Route::kGhlDeliveries:
      if (method_is(Method::kGet)) return ghl_->list_deliveries(claims, query);
      break;
    case Route::kGhlRetry:
      if (method_is(Method::kPost)) return ghl_->retry_delivery(claims, m.delivery_id);
      break;
    case Route::kGhlOutbox:
      if (method_is(Method::kGet)) return list_ghl_outbox(claims, query);
      break;
    case Route::kGhlConfig:
      if (method_is(Method::kGet) || method_is(Method::kPut)) return ghl_->config(claims, request, !get);
      break;
    case Route::kAgentTrackRecord:
      if (method_is(Method::kGet)) return get_agent_track_record(claims, m.agent_id);
      break;
    case Route::kRealtimeScoring:
      return error_response(invalid_argument("this route needs a WebSocket upgrade"), m.route);
    case Route::kLeadMatches:
    case Route::kPropertiesMatch:
    case Route::kPropertiesValue:
    case Route::kListing:
      return property_->handle(m.route, claims, request, m.property_id, query);
    case Route::kPredictionMarkets:
    case Route::kPredictionDeals:
    case Route::kPredictionAgents:
    case Route::kPredictionPricing:
      return predictions_->handle(m.route, claims, get, request.method == Method::kPost, m.prediction_id, query,
                                 request.body, deferred ? deferred->post : Post(),
                                 deferred ? deferred->respond : Respond());
    default:
      break;
  }
  return method_not_allowed(m.route);
}

Status Api::ensure_tenant(const std::string& tenant_id) {
  {
    std::lock_guard lock(known_mu_);
    if (known_tenants_.count(tenant_id)) return {};
  }
  auto existing = deps_.store.get_tenant(tenant_id);
  if (!existing) {
    if (existing.status().code() != StatusCode::kNotFound) return existing.status();
    REAI_RETURN_IF_ERROR(deps_.store.upsert_tenant({tenant_id, tenant_id, deps_.clock.now(), ""}));
  }
  std::lock_guard lock(known_mu_);
  known_tenants_.insert(tenant_id);
  return {};
}

void Api::remember_contact(const std::string& tenant_id, const std::string& contact_id) {
  std::lock_guard lock(known_mu_);
  known_contacts_.insert(contact_key(tenant_id, contact_id));
}

void Api::remember_stored_contacts(const EventAppender::Committed& batch) {
  // A contact the commit created, or one a stored event names (stored
  // before, or just now): the store holds it. Any other was left out, its
  // events all refused (an event id of another lead), and is not known.
  std::unordered_set<std::string> named;
  for (std::size_t k = 0; k < batch.events.size() && k < batch.stored.size(); ++k) {
    if (batch.stored[k]) named.insert(contact_key(batch.events[k].tenant_id, batch.events[k].contact_id));
  }
  for (std::size_t i = 0; i < batch.contacts.size(); ++i) {
    const Contact& c = batch.contacts[i];
    const bool created = i < batch.created.size() && batch.created[i];
    if (created || named.count(contact_key(c.tenant_id, c.contact_id))) remember_contact(c.tenant_id, c.contact_id);
  }
}

Status Api::ensure_contact(const std::string& tenant_id, const std::string& contact_id, UnixSeconds created_at) {
  {
    std::lock_guard lock(known_mu_);
    if (known_contacts_.count(contact_key(tenant_id, contact_id))) return {};
  }
  // Inserted only when absent, in one statement: when instances race to
  // create a contact (events before the contact), the first row stored wins
  // and stays, and every instance folds the lead from that row (LeadSync
  // rebuilds from the store). A read-then-write would let a later instance
  // overwrite it, or a PUT's full row, with its own bare row.
  Contact c;
  c.tenant_id = tenant_id;
  c.contact_id = contact_id;
  c.created_at = created_at;
  auto inserted = deps_.store.append_batch({}, {}, std::span<const Contact>(&c, 1));
  if (!inserted) return inserted.status();
  remember_contact(tenant_id, contact_id);
  return {};
}

void Api::seed_last_score(const scoring::LeadScore& s) { published_.seed(s); }

std::shared_ptr<const std::string> Api::publish_if_changed(const scoring::LeadScore& s, Outbox* outbox) {
  const bool to_outbox = outbox != nullptr && outbox->open;
  std::shared_ptr<const std::string> json;
  // Sent under the lead's lock (published, or queued in the outbox) so a
  // lead's updates, and its write-back changes, leave in record order.
  const bool changed = published_.record(s, to_outbox, [&](bool moved) {
    if (writeback_ && moved) writeback_->on_score(s.tenant_id, s.lead_id, s.score, scoring::band_name(s.band));
    json = std::make_shared<const std::string>(score_json(s));
    if (to_outbox) {
      outbox->messages.push_back(bus::Outgoing{s.tenant_id, "score_update", json});
      outbox->leads.push_back(PublishedScores::lead_key(s));
    } else {
      auto published = deps_.bus.publish(s.tenant_id, "score_update", json);
      (void)published;  // a bus failure shows in /readyz; the score itself stands
    }
  });
  if (!changed) return nullptr;
  appender_->append_score(score_record(s));
  return json;
}

void Api::send_outbox(Outbox& outbox) {
  outbox.open = false;
  if (outbox.messages.empty()) return;
  auto published = deps_.bus.publish_each(outbox.messages);
  (void)published;  // a bus failure shows in /readyz; the scores themselves stand
  published_.sent(outbox.leads);
  outbox.messages.clear();
  outbox.leads.clear();
}

void Api::forget_last_score(const scoring::LeadScore& s) { published_.forget(s); }

LeadSyncPublish Api::publisher(std::shared_ptr<const std::string>* json, Outbox* outbox) {
  return [this, json, outbox](const scoring::LeadScore& s, bool adopted) {
    if (adopted && lead_sync_->active()) forget_last_score(s);
    auto published = publish_if_changed(s, outbox);
    if (json) *json = std::move(published);
  };
}

Status Api::prepare_event(const Event& event, std::vector<Contact>* new_contacts) {
  REAI_RETURN_IF_ERROR(ensure_tenant(event.tenant_id));
  if (!new_contacts) return ensure_contact(event.tenant_id, event.contact_id, event.ts);
  {
    std::lock_guard lock(known_mu_);
    if (known_contacts_.count(contact_key(event.tenant_id, event.contact_id))) return {};
  }
  // Not known yet: it rides in the batch's transaction, inserted only when
  // absent, so no lookup is needed here either.
  for (const Contact& c : *new_contacts) {
    if (c.contact_id == event.contact_id && c.tenant_id == event.tenant_id) return {};
  }
  Contact& c = new_contacts->emplace_back();
  c.tenant_id = event.tenant_id;
  c.contact_id = event.contact_id;
  c.created_at = event.ts;
  return {};
}

Result<Api::EventOutcome> Api::apply_event(Event event) {
  if (event.event_id.empty()) event.event_id = next_event_id();
  std::vector<Contact> new_contacts;
  REAI_RETURN_IF_ERROR(prepare_event(event, &new_contacts));
  lead_sync_->will_store(std::span<const Event>(&event, 1));
  if (new_contacts.empty()) return finish_event(event, deps_.store.append_event(event));
  // A lead not known yet: its contact and the event in one transaction, the
  // contact only when the event is written (a refused id writes nothing).
  auto written = deps_.store.append_batch(std::span<const Event>(&event, 1), {}, new_contacts);
  if (!written) return finish_event(event, Result<bool>(written.status()));
  if (written->at(0)) remember_contact(event.tenant_id, event.contact_id);
  return finish_event(event, Result<bool>(bool(written->at(0))));
}

Result<Api::EventOutcome> Api::finish_event(const Event& event, const Result<bool>& appended) {
  if (!appended) return appended.status();
  if (!*appended) {
    // Not written: its id is stored. Whose event that is takes a read, paid
    // here only (an event written pays nothing).
    auto stored_under = deps_.store.stored_event_contacts(std::span<const Event>(&event, 1));
    if (!stored_under) return stored_under.status();
    return repeated_event(event, stored_under->front());
  }
  std::shared_ptr<const std::string> json;
  auto score = lead_sync_->apply_stored_event(event, deps_.clock.now(), publisher(&json));
  return scored_outcome(event, std::move(score), std::move(json));
}

namespace {

Status stored_for_another_lead(const Event& event) {
  return already_exists("event_id '" + event.event_id +
                        "' is stored for another lead (event ids are unique within a tenant)");
}

}  // namespace

Result<Api::EventOutcome> Api::repeated_event(const Event& event, const std::string& stored_under) {
  if (stored_under.empty()) {  // the store refused the id yet holds no event of it: events are never deleted
    return internal_error("event_id '" + event.event_id + "' was refused as stored but is not found");
  }
  if (stored_under != event.contact_id) {
    // Its mark names work this lead can never hold: dropped, or every
    // synchronised call on the lead would refold it until the mark lapses.
    lead_sync_->refused(std::span<const Event>(&event, 1));
    return stored_for_another_lead(event);
  }
  REAI_RETURN_IF_ERROR(lead_sync_->refresh(event.tenant_id, event.contact_id));
  auto current = deps_.engine.score(event.tenant_id, event.contact_id, deps_.clock.now());
  if (!current) return current.status();
  return EventOutcome{std::move(*current), true, nullptr};
}

Result<std::vector<std::string>> Api::stored_under_of_replays(std::span<const Event> events,
                                                              const std::vector<Result<bool>>& answers) {
  std::vector<Event> replays;
  for (std::size_t k = 0; k < events.size(); ++k) {
    if (answers[k] && !*answers[k]) replays.push_back(events[k]);
  }
  if (replays.empty()) return std::vector<std::string>();
  return deps_.store.stored_event_contacts(replays);
}

Result<Api::EventOutcome> Api::scored_outcome(const Event& event, Result<scoring::LeadScore> score,
                                              std::shared_ptr<const std::string> json) {
  if (!score) return score.status();
  metrics_.record_score(event.tenant_id, score->latency_ns, is_fallback(*score));
  property_->on_event(event);  // queued: matching never delays the score
  return EventOutcome{std::move(*score), false, std::move(json)};
}

std::vector<Result<Api::EventOutcome>> Api::finish_events(std::span<const Event> events,
                                                         const std::vector<Result<bool>>& answers, Outbox* outbox) {
  // The stored ones, in order, scored together.
  std::vector<Event> copies;
  std::span<const Event> stored = events;
  const bool all_stored =
      std::all_of(answers.begin(), answers.end(), [](const Result<bool>& a) { return a && *a; });
  if (!all_stored) {
    for (std::size_t k = 0; k < events.size(); ++k) {
      if (answers[k] && *answers[k]) copies.push_back(events[k]);
    }
    stored = copies;
  }
  std::vector<std::shared_ptr<const std::string>> json(stored.size());
  auto scores = lead_sync_->apply_stored_events(
      stored, deps_.clock.now(),
      [this, &json, outbox](std::size_t i, const scoring::LeadScore& s, bool adopted) {
        publisher(&json[i], outbox)(s, adopted);
      },
      outbox ? std::function<void()>([this, outbox] { send_outbox(*outbox); }) : nullptr);
  if (outbox) send_outbox(*outbox);  // already sent and closed: nothing
  // Events not written (ids already stored): whose events those are, in
  // one read for all of them, after the batch's own were applied.
  Result<std::vector<std::string>> stored_under = std::vector<std::string>();
  if (!all_stored) stored_under = stored_under_of_replays(events, answers);
  std::vector<Result<EventOutcome>> outcomes;
  outcomes.reserve(events.size());
  std::size_t next = 0;
  std::size_t next_replay = 0;
  for (std::size_t k = 0; k < events.size(); ++k) {
    if (!answers[k]) {
      outcomes.push_back(answers[k].status());
      continue;
    }
    if (!*answers[k]) {
      if (!stored_under) {
        outcomes.push_back(stored_under.status());
      } else {
        outcomes.push_back(repeated_event(events[k], (*stored_under)[next_replay++]));
      }
      continue;
    }
    Result<scoring::LeadScore>& score = scores[next];
    std::shared_ptr<const std::string>& published = json[next];
    ++next;
    outcomes.push_back(scored_outcome(events[k], std::move(score), std::move(published)));
  }
  return outcomes;
}

// One appender batch's requests being scored. Each event's outcome has its
// own slot; a request is answered by whoever scores its last event.
struct Api::ScoringBatch {
  std::vector<ScoringRequest> requests;
  std::vector<Event> events;  // every request's, in order
  std::vector<std::size_t> request_of;  // per event
  std::vector<std::optional<Result<EventOutcome>>> outcomes;
  std::unique_ptr<std::atomic<std::size_t>[]> unscored;  // per request
};

void Api::hand_batch_to_batch_worker() {
  if (scoring_batch_.empty()) return;
  auto batch = std::make_shared<ScoringBatch>();
  batch->requests = std::move(scoring_batch_);
  scoring_batch_.clear();
  // One thread for every batch, no lead's: batches are scored in commit
  // order (a lead's events of consecutive batches are applied in order),
  // and never behind a lead waiting on its lease.
  if (batch_worker_->post("", [this, batch] { score_and_answer(batch); })) return;
  // Stopped: scored on the io threads, as without shared leases.
  for (ScoringRequest& r : batch->requests) {
    auto request = std::make_shared<ScoringRequest>(std::move(r));
    answer_posts_.add(request->lane, request->post, [this, request] {
      request->respond(request->answer(finish_events(request->events, request->answers)));
    });
  }
}

void Api::score_and_answer(const std::shared_ptr<ScoringBatch>& batch) {
  ScoringBatch& b = *batch;
  const std::vector<Result<bool>> answers = gather_requests(&b);
  std::vector<std::size_t> together;
  ParkedLeads parked;
  split_off_parked_leads(b, answers, &together, &parked);
  std::vector<Result<EventOutcome>> outcomes = score_together(b, answers, together);
  std::vector<std::size_t> held = answer_scored_together(b, answers, together, std::move(outcomes));
  if (held.empty() && parked.empty()) return;
  park_on_lead_workers(batch, held, std::move(parked));
}

namespace {

// Event i of `events` goes to its lead's list, in the order leads come.
void park_event(const std::vector<Event>& events, std::size_t i,
                std::vector<std::pair<std::string, std::vector<std::size_t>>>* parked) {
  std::string key = contact_key(events[i].tenant_id, events[i].contact_id);
  auto it = std::find_if(parked->begin(), parked->end(), [&](const auto& p) { return p.first == key; });
  if (it == parked->end()) it = parked->insert(parked->end(), {std::move(key), {}});
  it->second.push_back(i);
}

bool stored_new(const Result<bool>& answer) { return answer && *answer; }

}  // namespace

std::vector<Result<bool>> Api::gather_requests(ScoringBatch* b) {
  std::vector<Result<bool>> answers;
  b->unscored.reset(new std::atomic<std::size_t>[b->requests.size()]);
  for (std::size_t r = 0; r < b->requests.size(); ++r) {
    ScoringRequest& request = b->requests[r];
    b->unscored[r].store(request.events.size(), std::memory_order_relaxed);
    std::move(request.events.begin(), request.events.end(), std::back_inserter(b->events));
    std::move(request.answers.begin(), request.answers.end(), std::back_inserter(answers));
    b->request_of.insert(b->request_of.end(), request.answers.size(), r);
  }
  b->outcomes.resize(b->events.size());
  return answers;
}

void Api::split_off_parked_leads(const ScoringBatch& b, const std::vector<Result<bool>>& answers,
                                 std::vector<std::size_t>* together, ParkedLeads* parked) {
  // Stored events of leads with events parked on their own worker follow
  // them there, behind them: a lead's events are applied in order.
  std::lock_guard lock(parked_mu_);
  for (std::size_t i = 0; i < b.events.size(); ++i) {
    if (!parked_.empty() && stored_new(answers[i]) &&
        parked_.count(contact_key(b.events[i].tenant_id, b.events[i].contact_id))) {
      park_event(b.events, i, parked);
    } else {
      together->push_back(i);
    }
  }
}

std::vector<Result<Api::EventOutcome>> Api::score_together(const ScoringBatch& b,
                                                           const std::vector<Result<bool>>& answers,
                                                           const std::vector<std::size_t>& together) {
  // The batch's score updates leave together, before its leases are given
  // back and before any answer (an event's 2xx follows its update).
  Outbox outbox;
  // Usually nothing is parked and the batch is scored as it is, uncopied.
  if (together.size() == b.events.size()) return finish_events(b.events, answers, &outbox);
  std::vector<Event> some_events;
  std::vector<Result<bool>> some_answers;
  some_events.reserve(together.size());
  some_answers.reserve(together.size());
  for (std::size_t i : together) {
    some_events.push_back(b.events[i]);
    some_answers.push_back(answers[i]);
  }
  return finish_events(some_events, some_answers, &outbox);
}

std::vector<std::size_t> Api::answer_scored_together(ScoringBatch& b, const std::vector<Result<bool>>& answers,
                                                     const std::vector<std::size_t>& together,
                                                     std::vector<Result<EventOutcome>> outcomes) {
  PostBatch responses;  // one post per io thread
  std::vector<std::size_t> held;
  for (std::size_t k = 0; k < together.size(); ++k) {
    const std::size_t i = together[k];
    if (stored_new(answers[i]) && !outcomes[k] && outcomes[k].status().code() == StatusCode::kResourceExhausted) {
      held.push_back(i);  // its lead's lease is held elsewhere
      continue;
    }
    scored(b, i, std::move(outcomes[k]), &responses);
  }
  responses.flush();
  return held;
}

void Api::park_on_lead_workers(const std::shared_ptr<ScoringBatch>& batch, const std::vector<std::size_t>& held,
                               ParkedLeads parked) {
  for (std::size_t i : held) park_event(batch->events, i, &parked);
  for (auto& [key, indexes] : parked) std::sort(indexes.begin(), indexes.end());  // the batch's order
  // Counted before the jobs are posted: a job may be done, and count itself
  // off, before the last is posted.
  {
    std::lock_guard lock(parked_mu_);
    for (const auto& p : parked) ++parked_[p.first];
  }
  for (auto& [key, indexes] : parked) {
    if (!lead_workers_->post(key, [this, batch, key, indexes] { score_parked(batch, key, indexes); })) {
      score_parked(batch, key, indexes);  // stopping: here
    }
  }
}

void Api::score_parked(const std::shared_ptr<ScoringBatch>& batch, const std::string& key,
                       const std::vector<std::size_t>& events) {
  std::vector<Result<EventOutcome>> outcomes;
  outcomes.reserve(events.size());
  for (std::size_t i : events) outcomes.push_back(finish_event(batch->events[i], Result<bool>(true)));
  {
    std::lock_guard lock(parked_mu_);
    if (auto it = parked_.find(key); it != parked_.end() && --it->second == 0) parked_.erase(it);
  }
  for (std::size_t k = 0; k < events.size(); ++k) scored(*batch, events[k], std::move(outcomes[k]), nullptr);
}

void Api::scored(ScoringBatch& batch, std::size_t i, Result<EventOutcome> outcome, PostBatch* responses) {
  batch.outcomes[i] = std::move(outcome);
  const std::size_t r = batch.request_of[i];
  if (batch.unscored[r].fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  ScoringRequest& request = batch.requests[r];
  std::vector<Result<EventOutcome>> own;
  own.reserve(request.answers.size());
  for (std::size_t k = 0; k < batch.events.size(); ++k) {
    if (batch.request_of[k] == r) own.push_back(std::move(*batch.outcomes[k]));
  }
  auto response = std::make_shared<ApiResponse>(request.answer(std::move(own)));
  auto send = [respond = request.respond, response] { respond(std::move(*response)); };
  if (responses) {
    responses->add(request.lane, request.post, std::move(send));
  } else {
    request.post(std::move(send));
  }
}

Result<Api::EventOutcome> Api::ingest_event(const std::string& tenant_id, const json::value& v,
                                            std::string_view default_contact_id) {
  auto event = parse_event(v, tenant_id, default_contact_id, deps_.clock.now());
  if (!event) return event.status();
  return apply_event(std::move(*event));
}

void Api::append_outcome_json(const Result<EventOutcome>& r, std::string* out) {
  if (!r) {
    out->append(error_json(r.status().message()));
    return;
  }
  if (r->json) {
    out->append(*r->json);
    return;
  }
  out->push_back('{');
  append_score_fields(r->score, out);
  if (r->duplicate) out->append(",\"duplicate\":true");
  out->push_back('}');
}

ApiResponse Api::post_events(const TokenClaims& claims, const ApiRequest& request, Deferred* deferred) {
  BodyParser parser;
  auto body = parser.parse(request.body);
  if (!body) return error_response(body.status(), Route::kEvents);
  auto outcome_json = append_outcome_json;
  if (deferred && (body->is_object() || body->is_array())) {
    std::vector<Result<Event>> items;
    if (body->is_object()) {
      items.push_back(parse_event(*body, claims.tenant_id, {}, deps_.clock.now()));
    } else {
      const auto& array = body->as_array();
      if (array.size() > kMaxBatchEvents) {
        return error_response(payload_too_large("a batch holds at most 1000 events"), Route::kEvents);
      }
      items.reserve(array.size());
      for (const auto& item : array) items.push_back(parse_event(item, claims.tenant_id, {}, deps_.clock.now()));
    }
    return post_events_deferred(std::move(items), body->is_object(), deferred);
  }
  if (body->is_object()) {
    auto r = ingest_event(claims.tenant_id, *body, {});
    if (!r) return error_response(r.status(), Route::kEvents);
    std::string out;
    out.reserve(512);
    outcome_json(r, &out);
    return json_response(200, std::move(out), Route::kEvents);
  }
  if (!body->is_array()) {
    return error_response(invalid_argument("body must be an event object or an array of events"), Route::kEvents);
  }
  const auto& items = body->as_array();
  if (items.size() > kMaxBatchEvents) {
    return error_response(payload_too_large("a batch holds at most 1000 events"), Route::kEvents);
  }
  std::string out = "[";
  out.reserve(items.size() * 512 + 2);
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) out.push_back(',');
    outcome_json(ingest_event(claims.tenant_id, items[i], {}), &out);
  }
  out.push_back(']');
  return json_response(200, std::move(out), Route::kEvents);
}

ApiResponse Api::ghl_oauth_callback(std::string_view query, Deferred* deferred) {
  constexpr Route kRoute = Route::kGhlOAuth;
  auto code = query_param(query, "code");
  if (!code || code->empty()) return error_response(invalid_argument("missing code"), kRoute);
  if (code->size() > 4096) return error_response(invalid_argument("code too long"), kRoute);
  if (!writeback_) return error_response(unavailable("GHL write-back is not running"), kRoute);
  auto answer = [](const Result<std::string>& tenant) {
    if (!tenant) return error_response(tenant.status(), kRoute);
    json::object o{{"status", "installed"}, {"tenant_id", *tenant}};
    return json_response(200, json_text(o), kRoute);
  };
  if (!deferred) {
    // No executor to answer on later (tests calling handle()): wait here.
    auto promise = std::make_shared<std::promise<Result<std::string>>>();
    auto future = promise->get_future();
    writeback_->exchange_code(*code, [promise](Result<std::string> r) { promise->set_value(std::move(r)); });
    return answer(future.get());
  }
  // The exchange is a blocking HTTPS call: it runs on the write-back thread
  // and the answer comes back through the connection's executor.
  writeback_->exchange_code(*code, [answer, post = deferred->post, respond = deferred->respond](
                                       Result<std::string> tenant) {
    post([answer, respond, tenant = std::move(tenant)] { respond(answer(tenant)); });
  });
  ApiResponse r;
  r.deferred = true;
  r.route = kRoute;
  return r;
}

ApiResponse Api::list_ghl_outbox(const TokenClaims& claims, std::string_view query) {
  constexpr Route kRoute = Route::kGhlOutbox;
  if (claims.role != Role::kAdmin) return error_response(permission_denied("admin role required"), kRoute);
  const auto status_name = query_param(query, "status");
  auto status = store::parse_outbox_status(status_name && !status_name->empty() ? *status_name : "failed");
  if (!status) return error_response(invalid_argument("status must be pending, sent or failed"), kRoute);
  std::size_t limit = 100;
  if (auto l = query_param(query, "limit")) {
    auto n = parse_uint(*l);
    if (!n || *n < 1 || *n > 1000) return error_response(invalid_argument("limit must be 1..1000"), kRoute);
    limit = static_cast<std::size_t>(*n);
  }
  auto list = deps_.store.list_ghl_updates(claims.tenant_id, *status, limit);
  if (!list) return error_response(list.status(), kRoute);
  json::array items;
  for (const auto& u : *list) {
    items.push_back(json::object{{"update_id", u.update_id},
                                 {"contact_id", u.contact_id},
                                 {"kind", u.kind},
                                 {"payload", u.payload_json},
                                 {"created_at", format_iso8601(u.created_at)},
                                 {"status", store::outbox_status_name(u.status)},
                                 {"attempts", u.attempts},
                                 {"error", u.error}});
  }
  json::object o{{"tenant_id", claims.tenant_id}, {"updates", std::move(items)}};
  return json_response(200, json_text(o), kRoute);
}

// What the answer of a deferred POST /api/events needs once its events are
// stored: each item's parse error, or OK for an item whose event was queued.
// Shared, not copied, by the callbacks that answer.
struct Api::PendingEvents {
  std::vector<Status> parse_errors;
  bool single;
};

ApiResponse Api::post_events_deferred(std::vector<Result<Event>> items, bool single, Deferred* deferred) {
  if (single && !items[0]) return error_response(items[0].status(), Route::kEvents);
  auto pending = std::make_shared<PendingEvents>();
  pending->single = single;
  std::vector<Event> events = take_parsed_events(items, &pending->parse_errors);
  if (events.empty()) return answer_events(*pending, {});
  // Runs on the appender thread.
  auto stored = [this, pending, deferred = *deferred](std::vector<Event> written, EventAppender::Answers answers) {
    if (lead_workers_ && !written.empty()) {
      queue_for_batch_worker(pending, deferred, std::move(written), std::move(answers));
    } else {
      score_on_requester(pending, deferred, std::move(written), std::move(answers));
    }
  };
  if (!appender_->submit(std::move(events), std::move(stored))) return appender_full_response();
  ApiResponse r;
  r.deferred = true;
  return r;
}

std::vector<Event> Api::take_parsed_events(std::vector<Result<Event>>& items, std::vector<Status>* parse_errors) {
  parse_errors->reserve(items.size());
  std::vector<Event> events;
  events.reserve(items.size());
  for (auto& item : items) {
    if (!item) {
      parse_errors->push_back(item.status());
      continue;
    }
    if (item->event_id.empty()) item->event_id = next_event_id();
    events.push_back(std::move(*item));
    parse_errors->push_back(Status::ok());
  }
  return events;
}

ApiResponse Api::answer_events(const PendingEvents& pending, std::vector<Result<EventOutcome>> outcomes) {
  if (pending.single) {
    if (!outcomes[0]) return error_response(outcomes[0].status(), Route::kEvents);
    std::string out;
    out.reserve(512);
    append_outcome_json(outcomes[0], &out);
    return json_response(200, std::move(out), Route::kEvents);
  }
  std::string out = "[";
  out.reserve(pending.parse_errors.size() * 512 + 2);
  std::size_t next = 0;
  for (std::size_t i = 0; i < pending.parse_errors.size(); ++i) {
    if (i) out.push_back(',');
    if (pending.parse_errors[i].is_ok()) {
      append_outcome_json(outcomes[next++], &out);
    } else {
      out.append(error_json(pending.parse_errors[i].message()));
    }
  }
  out.push_back(']');
  return json_response(200, std::move(out), Route::kEvents);
}

void Api::queue_for_batch_worker(const std::shared_ptr<PendingEvents>& pending, const Deferred& deferred,
                                 std::vector<Event> written, EventAppender::Answers answers) {
  // Under shared leases scoring waits on Redis (seconds while another
  // instance holds a lead): the batch's requests are scored together on
  // a lead worker (hand_batch_to_batch_worker, once the batch is answered),
  // and only the answers go to the io threads.
  scoring_batch_.push_back({std::move(written), std::move(answers),
                            [pending](std::vector<Result<EventOutcome>> outcomes) {
                              return answer_events(*pending, std::move(outcomes));
                            },
                            deferred.post, deferred.respond, deferred.lane});
}

void Api::score_on_requester(const std::shared_ptr<PendingEvents>& pending, const Deferred& deferred,
                             std::vector<Event> written, EventAppender::Answers answers) {
  // Scoring and the response happen on the requester's executor, not on
  // the appender thread, with the batch's other answers for that thread
  // (answer_posts_, flushed once the batch is answered). Shared so the
  // posted function copies pointers, not events.
  auto stored = std::make_shared<std::pair<std::vector<Event>, EventAppender::Answers>>(std::move(written),
                                                                                       std::move(answers));
  answer_posts_.add(deferred.lane, deferred.post, [this, pending, respond = deferred.respond, stored] {
    respond(answer_events(*pending, finish_events(stored->first, stored->second)));
  });
}

ApiResponse Api::appender_full_response() {
  ApiResponse r = error_response(unavailable("too many events waiting to be stored; retry shortly"), Route::kEvents);
  r.retry_after = "1";
  return r;
}

ApiResponse Api::put_contact(const TokenClaims& claims, std::string_view contact_id, const ApiRequest& request) {
  BodyParser parser;
  auto body = parser.parse(request.body);
  if (!body) return error_response(body.status(), Route::kContact);
  auto score = upsert_contact_with(claims.tenant_id, std::string(contact_id), [&](Contact* contact) {
    return apply_contact_fields(*body, claims.tenant_id, contact);
  });
  if (!score) return error_response(score.status(), Route::kContact);
  return json_response(200, score_json(*score), Route::kContact);
}

Result<scoring::LeadScore> Api::upsert_contact_with(const std::string& tenant_id, const std::string& id,
                                                    const std::function<Status(Contact*)>& edit) {
  Contact contact;
  auto existing = deps_.store.get_contact(tenant_id, id);
  const bool stored = existing.has_value();
  if (existing) {
    contact = std::move(*existing);
  } else if (existing.status().code() == StatusCode::kNotFound) {
    contact.tenant_id = tenant_id;
    contact.contact_id = id;
    contact.created_at = deps_.clock.now();
  } else {
    return existing.status();
  }
  const UnixSeconds created_before = contact.created_at;
  const std::optional<double> budget_before = contact.budget;
  REAI_RETURN_IF_ERROR(edit(&contact));
  if (contact.tenant_id != tenant_id || contact.contact_id != id) return invalid_argument("contact ids cannot change");
  note_budget_statement(budget_before, stored, deps_.clock.now(), &contact);
  // Only a stated created_at is checked: a stored one stays editable.
  if (contact.created_at != created_before) {
    REAI_RETURN_IF_ERROR(check_crm_time(contact.created_at, deps_.clock.now(), "created_at"));
  }
  REAI_RETURN_IF_ERROR(ensure_tenant(tenant_id));
  const std::string mark = lead_sync_->will_store_contact(tenant_id, id);
  REAI_RETURN_IF_ERROR(deps_.store.upsert_contact(contact));
  remember_contact(tenant_id, id);
  auto score = lead_sync_->contact_stored(contact, deps_.clock.now(), publisher(nullptr), mark);
  if (!score) return score.status();
  property_->on_contact_changed(tenant_id, id);
  return score;
}

Result<scoring::LeadScore> Api::apply_stage(const OpportunityStage& stage) {
  REAI_RETURN_IF_ERROR(ensure_tenant(stage.tenant_id));
  REAI_RETURN_IF_ERROR(ensure_contact(stage.tenant_id, stage.contact_id, stage.ts));
  auto written = deps_.store.append_stage(stage);
  if (!written) return written.status();
  if (*written) {
    deps_.engine.apply_stage(stage);
    predictions_->invalidate(stage.tenant_id);
  }
  REAI_RETURN_IF_ERROR(lead_sync_->refresh(stage.tenant_id, stage.contact_id));
  auto score = deps_.engine.score(stage.tenant_id, stage.contact_id, deps_.clock.now());
  if (!score) return score.status();
  if (*written) publish_if_changed(*score);
  return score;
}

ApiResponse Api::get_score(const TokenClaims& claims, std::string_view contact_id) {
  if (Status s = lead_sync_->refresh(claims.tenant_id, std::string(contact_id)); !s) {
    return error_response(s, Route::kContactScore);
  }
  auto score = deps_.engine.score(claims.tenant_id, contact_id, deps_.clock.now());
  if (!score) return error_response(score.status(), Route::kContactScore);
  return json_response(200, score_json(*score), Route::kContactScore);
}

ApiResponse Api::get_score_history(const TokenClaims& claims, std::string_view contact_id, std::string_view query) {
  std::size_t limit = 50;
  if (auto l = query_param(query, "limit")) {
    auto n = parse_uint(*l);
    if (!n || *n == 0 || *n > 1000) return error_response(invalid_argument("limit must be 1..1000"), Route::kContactScores);
    limit = *n;
  }
  const std::string id(contact_id);
  auto contact = deps_.store.get_contact(claims.tenant_id, id);
  if (!contact) return error_response(contact.status(), Route::kContactScores);
  // Read-your-writes: rows of scores already returned are in the store.
  appender_->flush_scores();
  auto history = deps_.store.score_history(claims.tenant_id, id, limit);
  if (!history) return error_response(history.status(), Route::kContactScores);
  std::string out = "{\"tenant_id\":";
  append_json_string(claims.tenant_id, &out);
  out.append(",\"lead_id\":");
  append_json_string(id, &out);
  out.append(",\"scores\":[");
  for (std::size_t i = 0; i < history->size(); ++i) {
    const auto& r = (*history)[i];
    if (i) out.push_back(',');
    out.append("{\"scored_at\":");
    append_json_string(format_iso8601(r.ts), &out);
    out.append(",\"probability\":");
    out.append(json_text(json::value(r.probability)));
    out.append(",\"score\":" + std::to_string(r.score) + ",\"band\":");
    append_json_string(r.band, &out);
    out.append(",\"model\":");
    append_json_string(r.model_version, &out);
    out.append(",\"reasons\":");
    out.append(r.reasons_json.empty() ? "[]" : r.reasons_json);
    out.push_back('}');
  }
  out.append("]}");
  return json_response(200, std::move(out), Route::kContactScores);
}

ApiResponse Api::get_leads(const TokenClaims& claims, std::string_view query) {
  std::optional<scoring::Band> band;
  if (auto b = query_param(query, "band"); b && !b->empty()) {
    band = scoring::parse_band(*b);
    if (!band) return error_response(invalid_argument("band must be hot, warm or cold"), Route::kLeads);
  }
  std::size_t limit = 50;
  if (auto l = query_param(query, "limit")) {
    auto n = parse_uint(*l);
    if (!n || *n == 0 || *n > 1000) return error_response(invalid_argument("limit must be 1..1000"), Route::kLeads);
    limit = *n;
  }
  std::string out = "{\"tenant_id\":";
  append_json_string(claims.tenant_id, &out);
  out.append(",\"leads\":[");
  if (board_) {
    // Several instances: the cluster's newest published scores, the same
    // list on every instance (this engine's memory lags for leads last
    // scored elsewhere).
    auto leads = board_->top(claims.tenant_id, band, limit);
    for (std::size_t i = 0; i < leads.size(); ++i) {
      if (i) out.push_back(',');
      out.append(*leads[i]);
    }
    out.append("]}");
    return json_response(200, std::move(out), Route::kLeads);
  }
  auto leads = deps_.engine.top_leads(claims.tenant_id, band, limit);
  for (std::size_t i = 0; i < leads.size(); ++i) {
    if (i) out.push_back(',');
    out.push_back('{');
    append_score_fields(leads[i], &out);
    out.push_back('}');
  }
  out.append("]}");
  return json_response(200, std::move(out), Route::kLeads);
}

// A score-trigger request: the lead, and what it brings (contact fields
// and events), all checked before anything is stored.
struct Api::ScoreTrigger {
  std::string lead_id;
  const json::value* lead_data = nullptr;  // into the parsed body
  std::vector<Event> events;
  Contact contact;              // the stored one with the fields applied, or a new one
  bool fields_given = false;    // contact fields to store (else the contact is only made to exist)
};

namespace {

// What a lead write stored, for the answer: {"events_written","events_replayed","contact"}.
std::string stored_json(const store::LeadWritten& written, bool contact_replaced) {
  const auto n = std::count(written.events.begin(), written.events.end(), true);
  const char* contact = written.contact_created ? "created" : contact_replaced ? "updated" : "unchanged";
  return "{\"events_written\":" + std::to_string(n) +
         ",\"events_replayed\":" + std::to_string(written.events.size() - std::size_t(n)) + ",\"contact\":\"" +
         contact + "\"}";
}

}  // namespace

ApiResponse Api::score_trigger(const TokenClaims& claims, const ApiRequest& request) {
  constexpr Route kRoute = Route::kScoreTrigger;
  BodyParser parser;
  auto body = parser.parse(request.body);
  if (!body) return error_response(body.status(), kRoute);
  auto trigger = read_score_trigger(claims, *body);
  if (!trigger) return error_response(trigger.status(), kRoute);
  // Validate everything before changing anything.
  const UnixSeconds now = deps_.clock.now();
  if (Status s = read_trigger_data(claims, now, &*trigger); !s) return error_response(s, kRoute);
  if (!trigger->lead_data || !trigger->lead_data->is_object()) {
    // Nothing brought: the lead's current score, nothing written.
    if (Status s = lead_sync_->refresh(claims.tenant_id, trigger->lead_id); !s) return error_response(s, kRoute);
    auto current = deps_.engine.score(claims.tenant_id, trigger->lead_id, now);
    if (!current) return error_response(current.status(), kRoute);
    return json_response(200, score_json(*current), kRoute);
  }
  // The contact and the events in one commit: all stored, or none (409 for
  // an event id stored for another lead, and the store's error).
  store::LeadWrite write;
  write.contact = std::move(trigger->contact);
  write.replace_contact = trigger->fields_given;
  write.events = std::move(trigger->events);
  auto stored = store_lead(std::move(write), now);
  if (!stored) return error_response(stored.status(), kRoute);
  const std::string what = stored_json(stored->written, trigger->fields_given);
  if (!stored->score) {
    // Stored, not scored: a 5xx would invite a retry that stores the events
    // without ids again. 202 says it is stored; the score follows on read.
    json::object o{{"lead_id", trigger->lead_id},
                   {"error", "stored, but the lead was not scored: " + stored->score_status.message()}};
    std::string out = json_text(o);
    out.pop_back();
    return json_response(202, out + ",\"stored\":" + what + "}", kRoute);
  }
  std::string out = score_json(*stored->score);
  out.pop_back();  // the score object, with what was stored
  return json_response(200, out + ",\"stored\":" + what + "}", kRoute);
}

Result<Api::ScoreTrigger> Api::read_score_trigger(const TokenClaims& claims, const json::value& body) {
  if (!body.is_object()) return invalid_argument("body must be a JSON object");
  ScoreTrigger trigger;
  for (const auto& kv : body.as_object()) {
    if (kv.key() == "lead_id") {
      if (!kv.value().is_string() || kv.value().as_string().empty()) {
        return invalid_argument("field 'lead_id' must be a non-empty string");
      }
      trigger.lead_id = std::string(kv.value().as_string());
      REAI_RETURN_IF_ERROR(check_id(trigger.lead_id, "lead_id"));
    } else if (kv.key() == "lead_data") {
      trigger.lead_data = &kv.value();
    } else if (kv.key() == "tenant_id") {
      if (!kv.value().is_string() || kv.value().as_string() != claims.tenant_id) {
        return permission_denied("tenant_id does not match the token");
      }
    } else {
      return invalid_argument("field '" + std::string(kv.key()) + "' is not a known field");
    }
  }
  if (trigger.lead_id.empty()) return invalid_argument("field 'lead_id' is required");
  if (trigger.lead_data && !trigger.lead_data->is_object() && !trigger.lead_data->is_null()) {
    return invalid_argument("field 'lead_data' must be an object");
  }
  return trigger;
}

Status Api::read_trigger_data(const TokenClaims& claims, UnixSeconds now, ScoreTrigger* trigger) {
  if (!trigger->lead_data || !trigger->lead_data->is_object()) return Status::ok();
  const auto& data = trigger->lead_data->as_object();
  if (auto it = data.find("events"); it != data.end()) {
    if (!it->value().is_array()) return invalid_argument("field 'events' must be an array");
    const auto& items = it->value().as_array();
    if (items.size() > kMaxBatchEvents) return payload_too_large("at most 1000 events");
    for (std::size_t i = 0; i < items.size(); ++i) {
      auto e = parse_event(items[i], claims.tenant_id, trigger->lead_id, now);
      if (!e) return Status(e.status().code(), "events[" + std::to_string(i) + "]: " + e.status().message());
      trigger->events.push_back(std::move(*e));
    }
  }
  auto existing = deps_.store.get_contact(claims.tenant_id, trigger->lead_id);
  const bool stored = existing.has_value();
  Contact& contact = trigger->contact;
  if (existing) {
    contact = std::move(*existing);
  } else if (existing.status().code() == StatusCode::kNotFound) {
    const auto& events = trigger->events;
    contact.tenant_id = claims.tenant_id;
    contact.contact_id = trigger->lead_id;
    contact.created_at =
        events.empty() ? now
                       : std::min_element(events.begin(), events.end(), [](auto& a, auto& b) { return a.ts < b.ts; })->ts;
  } else {
    return existing.status();
  }
  const std::optional<double> budget_before = contact.budget;
  REAI_RETURN_IF_ERROR(apply_contact_fields(*trigger->lead_data, claims.tenant_id, &contact, "events"));
  note_budget_statement(budget_before, stored, now, &contact);
  trigger->fields_given = data.size() > (data.contains("events") ? 1u : 0u);
  return Status::ok();
}

Result<Api::StoredLead> Api::store_lead(store::LeadWrite write, UnixSeconds now) {
  const std::string tenant_id = write.contact.tenant_id;
  const std::string lead_id = write.contact.contact_id;
  for (Event& e : write.events) {
    if (e.event_id.empty()) e.event_id = next_event_id();
  }
  REAI_RETURN_IF_ERROR(ensure_tenant(tenant_id));
  lead_sync_->will_store(write.events);
  // A replaced contact is marked; a created one rides with its events' marks.
  const std::string mark = write.replace_contact ? lead_sync_->will_store_contact(tenant_id, lead_id) : std::string();
  auto written = deps_.store.write_lead(write);
  if (!written) {
    if (written.status().code() == StatusCode::kAlreadyExists) refuse_other_leads_ids(write);
    return written.status();
  }
  remember_contact(tenant_id, lead_id);
  StoredLead out;
  out.written = std::move(*written);
  out.score_status = apply_stored_lead(write, out.written, now, mark, &out.score);
  if (!out.score_status.is_ok()) out.score.reset();
  return out;
}

void Api::refuse_other_leads_ids(const store::LeadWrite& write) {
  // Nothing was written; the events whose ids are another lead's can never
  // be this lead's, so their marks go (the others may be retried).
  auto stored_under = deps_.store.stored_event_contacts(write.events);
  if (!stored_under) return;  // the marks lapse
  std::vector<Event> refused;
  for (std::size_t k = 0; k < write.events.size(); ++k) {
    const std::string& under = (*stored_under)[k];
    if (!under.empty() && under != write.contact.contact_id) refused.push_back(write.events[k]);
  }
  lead_sync_->refused(refused);
}

Status Api::apply_stored_lead(const store::LeadWrite& write, const store::LeadWritten& written, UnixSeconds now,
                              const std::string& mark, std::optional<scoring::LeadScore>* score) {
  const std::string& tenant_id = write.contact.tenant_id;
  const std::string& lead_id = write.contact.contact_id;
  for (std::size_t k = 0; k < write.events.size(); ++k) {
    if (!written.events[k]) continue;  // the lead's own replay: already applied
    std::shared_ptr<const std::string> json;
    auto applied = lead_sync_->apply_stored_event(write.events[k], now, publisher(&json));
    auto outcome = scored_outcome(write.events[k], std::move(applied), std::move(json));
    if (!outcome) return outcome.status();
    *score = std::move(outcome->score);
  }
  bool staged = false;
  for (std::size_t k = 0; k < write.stages.size(); ++k) {
    if (!written.stages[k]) continue;
    deps_.engine.apply_stage(write.stages[k]);
    staged = true;
  }
  if (staged) predictions_->invalidate(tenant_id);
  // The contact last: the fold puts it before every event whatever the
  // order of writes, so the lead ends as if it came first.
  if (write.replace_contact || written.contact_created) {
    auto stored = lead_sync_->contact_stored(write.contact, now, publisher(nullptr), mark);
    if (!stored) return stored.status();
    property_->on_contact_changed(tenant_id, lead_id);
    *score = std::move(*stored);
  } else if (staged || !*score) {
    REAI_RETURN_IF_ERROR(lead_sync_->refresh(tenant_id, lead_id));
    auto current = deps_.engine.score(tenant_id, lead_id, now);
    if (!current) return current.status();
    if (staged) publish_if_changed(*current);
    *score = std::move(*current);
  }
  return Status::ok();
}

CacheFigures Api::cache_figures() const {
  const LeadSyncStats sync = lead_sync_->stats();
  const scoring::EngineStats engine = deps_.engine.stats();
  const bus::CacheStats cache = deps_.cache.stats();
  CacheFigures f;
  f.feature_snapshots = {sync.snapshot_hits, sync.snapshot_misses};
  f.snapshots_from_other_instances = sync.snapshot_adopted;
  f.warm_scores = {engine.warm_score_hits, engine.warm_score_misses};
  f.warm_score_entries = cache.entries;
  f.warm_score_evictions = cache.evictions;
  return f;
}

namespace {

json::object lookups_json(const CacheLookups& l) {
  return {{"hits", l.hits}, {"misses", l.misses}, {"hit_rate", l.hit_rate()}};
}

// `cache` of /api/realtime/performance: both kinds together, then each.
json::object cache_json(const CacheFigures& f, bool shared) {
  json::object o = lookups_json(f.all());
  json::object snapshots = lookups_json(f.feature_snapshots);
  snapshots["from_other_instances"] = f.snapshots_from_other_instances;
  snapshots["shared"] = shared;
  snapshots["ttl_s"] = bus::kFeatureSnapshotTtl;
  o["feature_snapshots"] = std::move(snapshots);
  json::object warm = lookups_json(f.warm_scores);
  warm["entries"] = f.warm_score_entries;
  warm["evictions"] = f.warm_score_evictions;
  warm["ttl_s"] = bus::kWarmScoreTtl;
  o["warm_scores"] = std::move(warm);
  return o;
}

// `cache.tenant`: the same lookups, the caller's tenant's only.
json::object tenant_cache_json(const CacheLookups& snapshots, const CacheLookups& warm) {
  json::object o = lookups_json({snapshots.hits + warm.hits, snapshots.misses + warm.misses});
  o["feature_snapshots"] = lookups_json(snapshots);
  o["warm_scores"] = lookups_json(warm);
  return o;
}

}  // namespace

ApiResponse Api::performance(const TokenClaims& claims) {
  TenantMetrics& t = metrics_.tenant(claims.tenant_id);
  const std::int64_t now_s = monotonic_seconds();
  const auto engine = deps_.engine.stats();
  std::string model = deps_.registry.shared_version();
  if (auto m = deps_.registry.lead_model(claims.tenant_id)) model = scoring::lead_model_version(*m);
  json::object o;
  o["tenant_id"] = claims.tenant_id;
  json::object latency;
  for (auto [name, q] : {std::pair{"p50", 0.50}, std::pair{"p95", 0.95}, std::pair{"p99", 0.99}}) {
    const std::int64_t ns = t.scoring_latency.percentile(q);
    latency[std::string(name) + "_ns"] = ns;
    latency[std::string(name) + "_ms"] = double(ns) / 1e6;
  }
  latency["samples"] = t.scoring_latency.count();
  o["scoring_latency"] = std::move(latency);
  o["events_per_second"] = {{"last_10s", t.events.rate(now_s, 10)}, {"last_60s", t.events.rate(now_s, 60)}};
  o["websocket_connections"] = {{"tenant", hub_.connections(claims.tenant_id)}, {"total", hub_.total_connections()}};
  json::object cache = cache_json(cache_figures(), lead_sync_->active());
  cache["tenant"] = tenant_cache_json(lead_sync_->snapshot_lookups(claims.tenant_id),
                                      deps_.engine.warm_score_lookups(claims.tenant_id));
  o["cache"] = std::move(cache);
  o["model_version"] = model.empty() ? "fallback" : model;
  o["fallback_scores"] = {{"tenant", t.fallback_scores.load(std::memory_order_relaxed)}, {"total", engine.fallback_scores}};
  const LeadSyncStats sync = lead_sync_->stats();
  o["lead_state"] = {{"shared", lead_sync_->active()},
                     {"degraded", !lead_sync_->health().is_ok()},
                     {"store_rebuilds", sync.store_rebuilds},
                     {"unshared_snapshots", sync.unshared_snapshots},
                     {"created_folds", sync.created_folds},
                     {"marked_refolds", sync.marked_refolds},
                     {"mark_failures", sync.mark_failures},
                     {"refused_marks", sync.refused_marks},
                     {"leases", sync.leases},
                     {"lease_failures", sync.lease_failures},
                     {"lease_overruns", sync.lease_overruns},
                     {"lease_mean_us", sync.leases ? double(sync.lease_ns) / double(sync.leases) / 1e3 : 0.0}};
  const TrackOutcomeStats shared_outcomes = track_outcomes_ ? track_outcomes_->stats() : TrackOutcomeStats{};
  o["track_records"] = {{"live_outcomes", engine.live_outcomes},
                        {"shared", track_outcomes_ != nullptr},
                        {"publishing", shared_outcomes.publishing},
                        {"published", shared_outcomes.published},
                        {"publish_failures", shared_outcomes.publish_failures},
                        {"received", shared_outcomes.received},
                        {"repeats", shared_outcomes.repeats},
                        {"malformed", shared_outcomes.malformed}};
  return json_response(200, json_text(o), Route::kPerformance);
}

// The agent's track record as the lead scorer reads it now (the model's
// snapshot plus the live outcomes counted since, on every instance when
// they share them) and the two agent features it gives each of the agent's
// leads. 404 when the tenant has no lead model.
ApiResponse Api::get_agent_track_record(const TokenClaims& claims, std::string_view agent_id) {
  constexpr Route kRoute = Route::kAgentTrackRecord;
  auto record = deps_.engine.agent_track_record(claims.tenant_id, agent_id);
  if (!record) return error_response(record.status(), kRoute);
  auto rate = deps_.engine.agent_conversion_rate(claims.tenant_id, agent_id);
  if (!rate) return error_response(rate.status(), kRoute);
  json::object o;
  o["agent_id"] = agent_id;
  o["matured"] = record->matured;
  o["converted"] = record->converted;
  o["speed_count"] = record->speed_count;
  o["speed_log_sum"] = record->speed_log_sum;
  o["live_outcomes"] = deps_.engine.live_outcomes(claims.tenant_id);  // the tenant's, not the instance's
  json::object features;
  features["agent_conversion_rate"] = *rate;
  const auto speed = features::typical_speed_minutes(*record);
  features["agent_typical_speed_min"] = speed ? json::value(*speed) : json::value(nullptr);
  o["features"] = std::move(features);
  return json_response(200, json_text(o), kRoute);
}

namespace {

// The answer to a tenant admin's reload once it ran (on the reload thread).
ApiResponse admin_reload_answer(const ModelReloads::TenantReload& r, const std::string& shared_version) {
  constexpr Route kRoute = Route::kAdminReload;
  if (!r.models.status) {
    const Status& s = r.models.status;
    // A bad model on disk is the operator's input, not a server bug.
    const bool bad_model = s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kFailedPrecondition ||
                           s.code() == StatusCode::kNotFound;
    return error_response(bad_model ? failed_precondition(s.message()) : s, kRoute);
  }
  const auto names = [](const std::vector<std::string>& a, const std::vector<std::string>& b) {
    json::array out;
    for (const auto* list : {&a, &b}) {
      for (const std::string& n : *list) out.emplace_back(n);
    }
    return out;
  };
  json::object o;
  o["status"] = "reloaded";
  o["model_version"] = shared_version.empty() ? "fallback" : shared_version;
  o["reloaded"] = names(r.models.reloaded, r.property.reloaded);
  o["unchanged"] = names(r.models.unchanged, r.property.unchanged);
  o["tenants_refreshed"] = r.property.tenants_refreshed;
  // Only what happened: the notice was handed to a working bus, or why not.
  o["announced"] = r.announced.is_ok();
  if (!r.announced) o["announce_error"] = r.announced.to_string();
  return json_response(200, json_text(o), kRoute);
}

}  // namespace

// A tenant admin acts on what is theirs: the shared lead model and the
// tenant's own are reread, the tenant's catalog and property models checked;
// another tenant is touched only when a shared model it falls back to moved.
// The reload reads model files: it runs on the reload thread, and once it
// succeeded every other instance is told (a bus notice) to do the same.
ApiResponse Api::admin_reload(const TokenClaims& claims, Deferred* deferred) {
  constexpr Route kRoute = Route::kAdminReload;
  if (claims.role != Role::kAdmin) return error_response(permission_denied("admin role required"), kRoute);
  auto answer = [this](const ModelReloads::TenantReload& r) {
    return admin_reload_answer(r, deps_.registry.shared_version());
  };
  if (!deferred) {
    // No executor to answer on later (tests calling handle()): wait here.
    auto promise = std::make_shared<std::promise<ApiResponse>>();
    auto future = promise->get_future();
    if (!reloads_->reload_tenant(claims.tenant_id,
                                 [promise, answer](ModelReloads::TenantReload r) { promise->set_value(answer(r)); })) {
      return error_response(unavailable("the server is stopping"), kRoute);
    }
    return future.get();
  }
  const bool queued = reloads_->reload_tenant(
      claims.tenant_id, [answer, post = deferred->post, respond = deferred->respond](ModelReloads::TenantReload r) {
        post([respond, response = answer(r)]() mutable { respond(std::move(response)); });
      });
  if (!queued) return error_response(unavailable("the server is stopping"), kRoute);
  ApiResponse r;
  r.deferred = true;
  r.route = kRoute;
  return r;
}

ApiResponse Api::readyz() {
  auto component = [](const Status& s) {
    return json::object{{"status", s ? "ok" : "unavailable"}, {"detail", s ? "" : s.message()}};
  };
  const Status store = deps_.store.health();
  const Status bus = deps_.bus.health();
  const Status cache = deps_.cache.health();
  const std::string version = deps_.registry.shared_version();
  json::object o;
  o["store"] = component(store);
  o["bus"] = component(bus);
  o["cache"] = component(cache);
  o["leases"] = component(lead_sync_->health());  // degraded, never "not ready"
  // A model on disk that does not load leaves scoring on the previous model
  // or the fallback: degraded, never "not ready", with the loader's reason.
  const Status model = deps_.registry.last_reload();
  o["model"] = {{"status", model ? "ok" : "degraded"},
                {"version", version.empty() ? "fallback" : version},
                {"detail", model ? "" : model.message()}};
  // GHL webhooks: a processing failure turns the light red with its text
  // until an operator looks (GET /api/admin/ghl/deliveries?status=failed).
  const auto webhook = ghl_->health();
  o["webhook"] = {{"status", webhook.failures == 0 ? "ok" : "degraded"},
                  {"detail", webhook.last_failure},
                  {"queued", ghl_->queued()},
                  {"failed_since_start", webhook.failures}};
  // GHL write-back: a tenant whose grant GHL refused gets nothing written
  // back until it installs the app again; amber, never "not ready" (counts
  // only: `reai tenant list` and the tenant's GET /api/admin/ghl/config
  // name the state).
  if (writeback_) {
    const GhlWriteback::Stats wb = writeback_->stats();
    const std::uint64_t reauth = wb.tenants_needing_reauth;
    o["ghl_writeback"] = {
        {"status", reauth == 0 ? "ok" : "degraded"},
        {"detail", reauth == 0 ? std::string()
                               : std::to_string(reauth) + (reauth == 1 ? " tenant needs" : " tenants need") +
                                     " GHL re-authorisation (install the app again); `reai tenant list` names them"},
        {"tenants_needing_reauth", reauth},
        {"outbox_pending", wb.outbox_pending}};
  }
  // Degraded still answers 200: the instance takes events and serves its own
  // clients, so a balancer keeps it; only a store outage takes it out.
  o["status"] = !store ? "unavailable" : (bus && cache && model ? "ready" : "degraded");
  return json_response(store ? 200 : 503, json_text(o), Route::kReadyz);
}

ApiResponse Api::metrics_page() {
  std::string extra;
  // reai_bus_up / reai_cache_up are 0 while Redis (or another shared backend)
  // is unreachable: instances then serve only their own WebSocket clients;
  // /readyz says why.
  PrometheusText(&extra)
      .gauge("reai_websocket_connections", "Open WebSocket connections.", hub_.total_connections())
      .gauge("reai_bus_up", "Whether the update bus works (0: this instance's clients only).",
             deps_.bus.health().is_ok() ? 1 : 0)
      .gauge("reai_cache_up", "Whether the cache works (0: every lookup misses).", deps_.cache.health().is_ok() ? 1 : 0)
      .gauge("reai_event_queue_depth", "Events waiting to be stored.", appender_->queued_events())
      .counter("reai_event_queue_rejected_total", "Requests refused (503) because the event queue was full.",
               appender_->rejected())
      .counter("reai_event_commits_total", "Store transactions that appended events.", appender_->batches())
      .counter("reai_events_stored_total", "Events appended through the queue (replays included).",
               appender_->written())
      .gauge("reai_ghl_queue_depth", "GoHighLevel deliveries waiting to be stored or processed.", ghl_->queued());
  append_cache_metrics(cache_figures(), &extra);
  if (writeback_) extra.append(ghl_writeback_metrics(writeback_->stats()));
  append_lead_sync_metrics(lead_sync_->active(), lead_sync_->stats(), lead_sync_->health().is_ok(), &extra);
  if (track_outcomes_) {
    const TrackOutcomeStats t = track_outcomes_->stats();
    PrometheusText(&extra)
        .counter("reai_track_outcomes_published_total",
                 "Live track-record outcomes counted here and sent to the other instances.", t.published)
        .counter("reai_track_outcomes_publish_failures_total",
                 "Live track-record outcomes the bus refused (Redis down, hold full): the others miss them.",
                 t.publish_failures)
        .counter("reai_track_outcomes_received_total", "Live track-record outcomes counted from other instances.",
                 t.received)
        .counter("reai_track_outcomes_malformed_total", "Malformed live_outcome notices dropped.", t.malformed);
  }
  const ModelReloadStats reloads = reloads_->stats();
  PrometheusText(&extra)
      .counter("reai_model_reloads_announced_total", "Admin reloads handed to the bus for the other instances.",
               reloads.announced)
      .counter("reai_model_reload_announce_failures_total",
               "Admin reloads the bus refused (Redis down, hold full): the others were not told.",
               reloads.announce_failures)
      .counter("reai_model_reload_notices_total", "Other instances' reload notices, each reloaded here.",
               reloads.received)
      .counter("reai_model_reload_notices_ignored_total", "Reload notices dropped: malformed or an invalid tenant.",
               reloads.ignored)
      .counter("reai_model_full_reloads_total", "Reloads of every tenant's models (SIGHUP).", reloads.full_reloads);
  ApiResponse r = json_response(200, metrics_.render_prometheus(extra), Route::kMetrics);
  r.content_type = "text/plain; version=0.0.4";
  return r;
}

ApiResponse Api::static_page(std::string_view path) {
  ApiResponse r;
  r.html_security_headers = true;
  if (static_dir_usable(config_.static_dir)) {
    auto decoded = percent_decode(path, false);
    auto file = decoded ? read_static_file(config_.static_dir, *decoded) : std::nullopt;
    if (!file) return error_response(not_found("no such file"), Route::kStatic);
    r.route = path == "/" ? Route::kIndex : Route::kStatic;
    r.body = std::move(file->body);
    r.content_type = std::move(file->content_type);
    r.cache_control = std::move(file->cache_control);
    return r;
  }
  if (path == "/" || path == "/index.html") {
    r.route = Route::kIndex;
    r.body = std::string(builtin_index_html());
    r.content_type = "text/html; charset=utf-8";
    r.cache_control = "no-cache";
    return r;
  }
  if (path == "/app.js") {
    r.route = Route::kStatic;
    r.body = std::string(builtin_app_js());
    r.content_type = "application/javascript; charset=utf-8";
    r.cache_control = "no-cache";
    return r;
  }
  return error_response(not_found("no such page"), Route::kStatic);
}

}  // namespace reai::server
