// Api: every route's logic, free of any transport type so it can be tested
// and reasoned about without Beast. The HTTP session turns a Beast request
// into an ApiRequest and an ApiResponse back into bytes.
#pragma once

#include <atomic>
#include <functional>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <boost/json/fwd.hpp>

#include "scoring/scoring.h"
#include "server/event_appender.h"
#include "server/metrics.h"
#include "server/post_batch.h"
#include "server/published_scores.h"
#include "server/server.h"
#include "server/ws_hub.h"
#include "store/store.h"

namespace reai::server {

enum class Method { kGet, kPost, kPut, kDelete, kHead, kOther };

struct ApiRequest {
  Method method = Method::kGet;
  std::string_view target;         // path + query, as received
  std::string_view body;
  std::string_view authorization;  // the Authorization header
  std::string_view content_type;   // the Content-Type header (empty: absent)
  std::string_view ghl_signature;    // X-GHL-Signature
  std::string_view wh_signature;     // x-wh-signature (legacy)
  std::string_view workflow_secret;  // X-Reai-Workflow-Secret
};

struct ApiResponse {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
  Route route = Route::kUnmatched;
  std::string retry_after;    // seconds, for 429
  std::string cache_control;  // empty: "no-store"
  bool html_security_headers = false;
  bool deferred = false;  // internal: answered later through handle_async's respond
};

// Who may open a scoring WebSocket, decided before the upgrade completes.
struct WsAdmission {
  int close_code = 0;  // 0 accepted; 4001 bad token; 4003 other tenant; 4000 bad request
  std::string reason;
  std::string tenant_id;
  std::optional<std::uint64_t> since;
};

class TokenBuckets;
class DashboardRoutes;
class PredictionRoutes;
class GhlRoutes;
class PropertyRoutes;
class GhlWriteback;
class LeadSync;
class LeadWorkers;
class LeadBoard;
class TrackOutcomeSharing;
class ModelReloads;

using LeadSyncPublish = std::function<void(const scoring::LeadScore& score, bool adopted)>;

class Api {
 public:
  Api(const ServerConfig& config, const ServerDeps& deps, Metrics& metrics, WsHub& hub);
  ~Api();

  // Waits until score history rows queued so far are in the store.
  void flush_history() { appender_->flush_scores(); }
  // Loads every tenant's history into the engine and scores each lead.
  Status rebuild();
  ApiResponse handle(const ApiRequest& request);
  // Runs `fn` on the caller's executor (e.g. the connection's strand), later.
  using Post = std::function<void(std::function<void()>)>;
  using Respond = std::function<void(ApiResponse)>;
  // As handle(), but the answer goes to `respond`, called exactly once:
  // inline for most routes; for POST /api/events once the events are durable,
  // inside a function handed to `post`, so the io thread never waits on the
  // disk (nor, under shared leases, on a lead's lease: scoring runs on a lead
  // worker first). `lane` names the thread `post` runs on (e.g. its
  // io_context), so the answers of one commit bound for one thread go in one
  // post; null: each is posted alone. `request` need only live until this
  // returns. Any io thread.
  void handle_async(const ApiRequest& request, Post post, Respond respond, const void* lane = nullptr);
  // Writes the events already queued, answers them (through their `post`),
  // and refuses new ones (503). Call before the io threads stop.
  void stop_appender();
  // Waits until queued GoHighLevel deliveries are processed and their score
  // changes are in the write-back outbox (tests).
  void drain_ghl();
  // Rereads every tenant's lead models (shared and MODEL_DIR/tenants/*) on
  // this instance, off the caller's thread: queued for the reload thread,
  // which logs what moved and what failed (a model that failed keeps its
  // previous version serving). Any thread (SIGHUP); returns at once.
  void reload_all_models();
  // True for GET /api/realtime/scoring/...: the session upgrades it.
  static bool is_websocket_path(std::string_view target);
  WsAdmission admit_websocket(std::string_view target) const;

 private:
  friend class GhlRoutes;  // applies deliveries through the paths below
  struct EventOutcome {
    scoring::LeadScore score;
    bool duplicate = false;
    // The score object as published on the bus, reused for the answer; null
    // when the score did not change (nothing published).
    std::shared_ptr<const std::string> json;
  };
  // The score updates of one scoring batch (batch worker only), recorded in
  // order and published together, in one bus call, before the batch's
  // leases are given back (send_outbox). Once sent it is closed: later
  // scores of the batch publish at once.
  struct Outbox {
    std::vector<bus::Outgoing> messages;
    std::vector<std::string> leads;  // each message's lead (PublishedScores::lead_key)
    bool open = true;
  };

  Result<TokenClaims> authenticate(const ApiRequest& request) const;
  // Set by handle_async: where a deferred answer goes.
  struct Deferred {
    Post post;
    Respond respond;
    const void* lane = nullptr;  // see handle_async
  };
  ApiResponse route(const ApiRequest& request, std::string_view path, std::string_view query,
                    Deferred* deferred);
  struct TokenRoute;  // api.cc
  static TokenRoute match_token_route(std::string_view path);
  // The GHL webhook and workflow routes; nullopt for another path.
  std::optional<ApiResponse> route_ghl(const ApiRequest& request, std::string_view path, Deferred* deferred);
  // Authentication, tenant and path-id checks, media type and rate limit,
  // then dispatch.
  ApiResponse route_with_token(const ApiRequest& request, const TokenRoute& m, std::string_view query,
                               Deferred* deferred);
  ApiResponse dispatch(const TokenClaims& claims, const TokenRoute& m, const ApiRequest& request,
                       std::string_view query, Deferred* deferred);
  ApiResponse post_events(const TokenClaims& claims, const ApiRequest& request, Deferred* deferred);
  // Queues parsed events to the appender; the answer comes through `deferred`.
  ApiResponse post_events_deferred(std::vector<Result<Event>> items, bool single, Deferred* deferred);
  struct PendingEvents;  // api.cc
  // post_events_deferred's steps. The parsed items' events (each given an
  // id when it has none), moved out; `parse_errors` gets one status per item.
  std::vector<Event> take_parsed_events(std::vector<Result<Event>>& items, std::vector<Status>* parse_errors);
  // The response: every item in order, a parse error or its event's outcome.
  static ApiResponse answer_events(const PendingEvents& pending, std::vector<Result<EventOutcome>> outcomes);
  // On the appender thread, once the request's events are stored: queued for
  // the batch worker (shared leases), or scored and answered on the
  // requester's io thread.
  void queue_for_batch_worker(const std::shared_ptr<PendingEvents>& pending, const Deferred& deferred,
                              std::vector<Event> written, EventAppender::Answers answers);
  void score_on_requester(const std::shared_ptr<PendingEvents>& pending, const Deferred& deferred,
                          std::vector<Event> written, EventAppender::Answers answers);
  // 503 with Retry-After: the appender's queue is full.
  static ApiResponse appender_full_response();
  ApiResponse put_contact(const TokenClaims& claims, std::string_view contact_id, const ApiRequest& request);
  ApiResponse get_score(const TokenClaims& claims, std::string_view contact_id);
  ApiResponse get_score_history(const TokenClaims& claims, std::string_view contact_id, std::string_view query);
  ApiResponse get_leads(const TokenClaims& claims, std::string_view query);
  ApiResponse get_agent_track_record(const TokenClaims& claims, std::string_view agent_id);
  ApiResponse score_trigger(const TokenClaims& claims, const ApiRequest& request);
  struct ScoreTrigger;  // api.cc
  static Result<ScoreTrigger> read_score_trigger(const TokenClaims& claims, const boost::json::value& body);
  // The trigger's events and contact fields, parsed and checked (nothing stored).
  Status read_trigger_data(const TokenClaims& claims, UnixSeconds now, ScoreTrigger* trigger);
  // What store_lead did. `score` is the lead's score after the commit, or
  // nullopt with `score_status` the error when scoring failed after it (the
  // records stay stored: nothing is rolled back then).
  struct StoredLead {
    store::LeadWritten written;
    Status score_status;
    std::optional<scoring::LeadScore> score;
  };
  // Stores a lead's contact, events (each given an id when it has none) and
  // stages in one store commit (Store::write_lead: all or nothing; an event
  // id stored for another lead is AlreadyExists and nothing is written),
  // then applies what was written to the lead and scores it: the new
  // contact fields, the written events (a replay of the lead's own id
  // changes nothing) and pipeline rows, publishing changed scores. An error
  // only when nothing was written.
  Result<StoredLead> store_lead(store::LeadWrite write, UnixSeconds now);
  // After write_lead refused `write` (AlreadyExists): drops the marks of its
  // events whose ids are stored for another lead (LeadSync::refused).
  void refuse_other_leads_ids(const store::LeadWrite& write);
  // store_lead's steps after the commit; `mark` from will_store_contact.
  Status apply_stored_lead(const store::LeadWrite& write, const store::LeadWritten& written, UnixSeconds now,
                           const std::string& mark, std::optional<scoring::LeadScore>* score);
  ApiResponse performance(const TokenClaims& claims);
  // Runs on the reload thread (ModelReloads); answered through `deferred`,
  // or waited for when there is none (handle()).
  ApiResponse admin_reload(const TokenClaims& claims, Deferred* deferred);
  ApiResponse readyz();
  ApiResponse ghl_oauth_callback(std::string_view query, Deferred* deferred);
  ApiResponse list_ghl_outbox(const TokenClaims& claims, std::string_view query);
  ApiResponse metrics_page();
  ApiResponse static_page(std::string_view path);
  // Feature-snapshot and warm-score lookups so far (this instance's).
  CacheFigures cache_figures() const;

  Result<EventOutcome> ingest_event(const std::string& tenant_id, const boost::json::value& v,
                                    std::string_view default_contact_id);
  Result<EventOutcome> apply_event(Event event);
  // Tenant and contact rows an event needs; before the event is written.
  // The tenant is created at once; a contact not known to exist goes into
  // `new_contacts` (the appender's batch), or is created at once when null.
  Status prepare_event(const Event& event, std::vector<Contact>* new_contacts);
  // After the append: scores (and publishes) a new event, or answers the
  // current score for a replay (repeated_event).
  Result<EventOutcome> finish_event(const Event& event, const Result<bool>& appended);
  // An event the store did not write, its id being stored under the lead
  // `stored_under` (Store::stored_event_contacts): this lead's current score
  // marked duplicate when that is this lead, AlreadyExists (409, nothing
  // stored) when it is another lead, whatever this lead holds.
  Result<EventOutcome> repeated_event(const Event& event, const std::string& stored_under);
  // stored_event_contacts of the events answered false (not written, no
  // error), in order, in one read; empty without a store read when none.
  Result<std::vector<std::string>> stored_under_of_replays(std::span<const Event> events,
                                                           const std::vector<Result<bool>>& answers);
  // A stored event's outcome once scored (`json`: what was published).
  Result<EventOutcome> scored_outcome(const Event& event, Result<scoring::LeadScore> score,
                                      std::shared_ptr<const std::string> json);
  // finish_event for each of `events` (`answers`: one each), with the stored
  // ones scored together (LeadSync::apply_stored_events: under shared
  // leases, one lease round trip each way for all of them).
  // With `outbox` (the batch worker), the scores applied under the batch's
  // leases are published together (see Outbox).
  std::vector<Result<EventOutcome>> finish_events(std::span<const Event> events,
                                                  const std::vector<Result<bool>>& answers,
                                                  Outbox* outbox = nullptr);
  // One deferred POST /api/events of an appender batch, waiting to be scored.
  struct ScoringRequest {
    std::vector<Event> events;
    std::vector<Result<bool>> answers;
    std::function<ApiResponse(std::vector<Result<EventOutcome>>)> answer;  // the response from the outcomes
    Post post;
    Respond respond;
    const void* lane;
  };
  struct ScoringBatch;
  // Scores the requests of one appender batch together (finish_events) and
  // sends each its response once all its events are scored. On the lead
  // workers' batch lane; a lead whose lease is held elsewhere (or that still
  // has such events waiting) goes to its own lead worker, where it waits
  // without holding up the other leads.
  void score_and_answer(const std::shared_ptr<ScoringBatch>& batch);
  // score_and_answer's steps. Moves every request's events into the batch
  // (with their request and unscored counts); answers their append answers.
  static std::vector<Result<bool>> gather_requests(ScoringBatch* b);
  // Indexes of the batch's events of each lead sent to its own worker, per
  // lead in the order leads come.
  using ParkedLeads = std::vector<std::pair<std::string, std::vector<std::size_t>>>;
  // Which events are scored here (`together`) and which follow their lead's
  // events already parked on its worker (`parked`).
  void split_off_parked_leads(const ScoringBatch& b, const std::vector<Result<bool>>& answers,
                              std::vector<std::size_t>* together, ParkedLeads* parked);
  // finish_events of the `together` events (indexes into the batch), in order.
  std::vector<Result<EventOutcome>> score_together(const ScoringBatch& b, const std::vector<Result<bool>>& answers,
                                                   const std::vector<std::size_t>& together);
  // Records the outcomes and sends the answers they complete; answers the
  // events whose lead's lease is held elsewhere (not recorded).
  std::vector<std::size_t> answer_scored_together(ScoringBatch& b, const std::vector<Result<bool>>& answers,
                                                  const std::vector<std::size_t>& together,
                                                  std::vector<Result<EventOutcome>> outcomes);
  // Sends the parked and `held` events to their leads' workers (scored
  // there, in the batch's order, by score_parked).
  void park_on_lead_workers(const std::shared_ptr<ScoringBatch>& batch, const std::vector<std::size_t>& held,
                            ParkedLeads parked);
  // On a lead's own worker: applies `events` (indexes into the batch) of
  // one lead in order, waiting for its lease.
  void score_parked(const std::shared_ptr<ScoringBatch>& batch, const std::string& key,
                    const std::vector<std::size_t>& events);
  // Records event i's outcome; when that was its request's last, answers
  // it (through `responses` when given, else at once).
  void scored(ScoringBatch& batch, std::size_t i, Result<EventOutcome> outcome, PostBatch* responses);
  // On the appender thread, once a batch is answered: hands its requests
  // (scoring_batch_) to the batch worker as one job.
  void hand_batch_to_batch_worker();
  // One item of a POST /api/events answer: the score object or an error.
  static void append_outcome_json(const Result<EventOutcome>& r, std::string* out);
  // PUT /api/contacts' path: loads (or creates) the contact, lets `edit`
  // change it (an error from `edit` is returned and nothing is written),
  // stores it, rescores and publishes a changed score.
  Result<scoring::LeadScore> upsert_contact_with(const std::string& tenant_id, const std::string& contact_id,
                                                 const std::function<Status(Contact*)>& edit);
  // Stores a pipeline row and, when new, applies it and rescores the lead.
  Result<scoring::LeadScore> apply_stage(const OpportunityStage& stage);
  Status ensure_tenant(const std::string& tenant_id);
  // Stores a bare contact created at `created_at` unless one is stored (the
  // stored row wins, whoever wrote it).
  Status ensure_contact(const std::string& tenant_id, const std::string& contact_id, UnixSeconds created_at);
  void remember_contact(const std::string& tenant_id, const std::string& contact_id);
  // After an appender commit: remembers the batch's contacts the store now holds.
  void remember_stored_contacts(const EventAppender::Committed& batch);
  // Records, stores and publishes `score` when it differs from the last one;
  // returns the published score object, or null when nothing changed. An
  // open `outbox` takes the update instead of the bus (sent later, by
  // send_outbox); a lead's updates still leave in the order they were
  // recorded: a direct publish waits while the lead has unsent ones.
  std::shared_ptr<const std::string> publish_if_changed(const scoring::LeadScore& score, Outbox* outbox = nullptr);
  // Publishes what `outbox` holds (one bus call) and closes it.
  void send_outbox(Outbox& outbox);
  void seed_last_score(const scoring::LeadScore& score);
  // Forgets what was last published for the lead (another instance may have
  // published since), so its next score is published whatever it is.
  void forget_last_score(const scoring::LeadScore& score);
  // publish_if_changed as LeadSync's OnScore; stores the published object.
  LeadSyncPublish publisher(std::shared_ptr<const std::string>* json, Outbox* outbox = nullptr);
  std::string next_event_id();

  const ServerConfig& config_;
  ServerDeps deps_;
  Metrics& metrics_;
  WsHub& hub_;
  std::unique_ptr<TokenBuckets> rate_limiter_;
  // Lead state across instances (events, contacts, reads go through it).
  std::unique_ptr<LeadSync> lead_sync_;
  std::unique_ptr<DashboardRoutes> dashboard_;
  std::unique_ptr<PredictionRoutes> predictions_;
  std::mutex known_mu_;
  std::unordered_set<std::string> known_tenants_;
  std::unordered_set<std::string> known_contacts_;  // tenant \x1f contact
  // The last score published per lead; orders direct publishes behind a
  // lead's updates queued in the batch worker's outbox.
  PublishedScores published_;
  std::string event_id_prefix_;
  std::atomic<std::uint64_t> event_counter_{0};
  // Last: stopped and destroyed before what its callbacks use.
  // Answers of the appender's current batch, one post per io thread; used
  // on the appender thread only. Before appender_: outlives its thread.
  PostBatch answer_posts_;
  // Under shared leases: the current appender batch's requests, scored as one
  // job once the batch is answered; used on the appender thread only.
  std::vector<ScoringRequest> scoring_batch_;
  // Leads whose events wait on their own lead worker (a lease held
  // elsewhere), with how many such jobs each: a later batch sends their
  // events there too, behind them.
  std::mutex parked_mu_;
  std::unordered_map<std::string, int> parked_;  // guarded by parked_mu_
  std::unique_ptr<EventAppender> appender_;
  // Created by rebuild(); stopped after ghl_ so the last deliveries' score
  // changes still reach the outbox.
  std::unique_ptr<GhlWriteback> writeback_;
  // After the appender: destroyed (its worker joined) before it.
  std::unique_ptr<GhlRoutes> ghl_;
  std::unique_ptr<PropertyRoutes> property_;
  // Admin reloads, other instances' reload notices and SIGHUP's reload of
  // everything, on one reload thread (never an io thread). After property_,
  // which its reloads refresh: stopped and destroyed before it.
  std::unique_ptr<ModelReloads> reloads_;
  // Only under shared leases: scores the events of leads whose lease is held
  // elsewhere, one lane per lead, off the io threads and the batch worker (a
  // lease wait stalls neither a connection nor other leads). Stopped before
  // everything above.
  static constexpr std::size_t kLeadWorkerThreads = 4;
  std::unique_ptr<LeadWorkers> lead_workers_;
  // Only under shared leases: scores each appender batch's stored events
  // together (score_and_answer); stopped before lead_workers_.
  std::unique_ptr<LeadWorkers> batch_worker_;
  // Only under shared leases: GET /api/leads from every instance's published
  // scores (the bus), so all instances list the same; unsubscribed first.
  std::unique_ptr<LeadBoard> board_;
  bus::SubscriptionId board_subscription_{};
  // Only under shared leases: the live track-record outcomes each instance
  // counts go to the others (bus notices), so agent and source features,
  // and the scores, agree. Receives from construction; sends after rebuild().
  std::unique_ptr<TrackOutcomeSharing> track_outcomes_;
};

// The built-in page and static files. Private helpers of Api.
struct StaticFile {
  std::string body;
  std::string content_type;
  std::string cache_control;
};
// Resolves a URL path under `static_dir` (rejecting traversal); nullopt when
// absent or outside.
std::optional<StaticFile> read_static_file(const std::string& static_dir, std::string_view url_path);
bool static_dir_usable(const std::string& static_dir);
std::string_view builtin_index_html();
std::string_view builtin_app_js();

}  // namespace reai::server
