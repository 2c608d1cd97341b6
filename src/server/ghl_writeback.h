// GhlWriteback: scores and band tags out to GoHighLevel (private to the
// server; the Api owns one).
//
// Filler: the Api reports every published score change (on_score, a mutex
// push: nothing else on the scoring path). The worker thread turns them into
// durable outbox rows for tenants linked to a GHL location, comparing each
// change with what was last enqueued for the contact (a store row written in
// the same commit as the outbox rows, cached per tenant): the same score and
// band again is nothing to send (a delivery reprocessed after a crash), a
// band change is enqueued at once, a score-only change at most once per
// `score_interval_s` per contact (the newest one is held and written when
// the interval has passed). At start, reconcile() enqueues what a crash kept
// from the outbox: contacts whose rebuilt band differs from the last enqueued
// one, and contacts whose last recorded score never reached the outbox.
//
// Backfill: contacts never written back at all (the first start after a
// tenant is linked: possibly its whole history) are not enqueued at once but
// fed to the outbox `backfill_batch` at a time, only while the tenant has
// fewer than that many updates pending. At GHL's 100 requests per 10 s a
// 10,000-contact backfill takes most of an hour; fed this way a fresh band
// change waits behind at most `backfill_batch` backfill updates instead of
// the whole backfill. Nothing of it is lost at a restart: a contact not yet
// fed has no state row, so the next start finds it again.
//
// Hot stage: when a change turns a lead hot (a band change to hot against
// what was last enqueued, or a new lead's first score being hot; not a
// backfill) and the tenant configured a hot stage (GhlSettings), an outbox
// row of kind "stage" carrying the target is written in the same commit as
// the score row, so it exists exactly once per transition and survives a
// restart. The sender searches the contact's opportunities and PUTs the
// pipelineStageId of each open one of the configured pipeline that sits in
// an earlier stage (ghl/hot_stage.h: never a won/lost/abandoned one, never
// backwards); sending it again after a crash moves nothing twice.
//
// Sender: the same thread delivers each tenant's pending updates in order
// (oldest first; a retry holds the tenant's later updates back so an old
// score never overwrites a newer one), paced per location at GHL's 100
// requests per 10 s. Per update: PUT /contacts/{id} with the score custom
// field (found or created once per location), and on a band change POST the
// band tag and DELETE the other band tags. 429/5xx/transport errors: retried
// with exponential backoff + jitter, honouring Retry-After and the
// X-RateLimit headers; 401: the OAuth token is refreshed once (the rotated
// refresh token stored) and the call retried; other 4xx: failed with GHL's
// message.
//
// Re-authorisation: when GHL refuses the refresh itself (400/401 with
// invalid_grant: the app was uninstalled, the refresh token revoked or
// rotated elsewhere), retrying cannot help. The stored token is marked
// refused (Store::mark_ghl_token_refused: only if it is still the token the
// refresh used, so a rotation by another instance is not mistaken for a
// refusal), one warning is logged, and the tenant's updates stay pending in
// the outbox, in order, with nothing sent and no refresh tried by any
// instance, until a new token is stored (an OAuth install through the
// callback, or `reai tenant add --ghl-token-file`): the worker looks at the
// stored token every few seconds and resumes by itself. A transport error,
// 429 or 5xx on the refresh is an outage, retried with backoff as before.
// While the app is uninstalled (settings inactive) nothing is sent either. An update is marked sent only after every call got a 2xx. A crash
// between the 2xx and that store write sends it again after the restart,
// which is harmless: the PUT sets a value and tag add/remove are set
// operations, so GHL ends in the same state (at-least-once delivery of
// idempotent calls = each change applied once). Newer updates of a contact
// supersede older pending ones (each carries the full state).
//
// OAuth: exchange_code() swaps an install's code for tokens on the worker
// thread, seals them (SecretBox) and creates/links the tenant by locationId.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "ghl/ghl.h"
#include "ghl/hot_stage.h"
#include "ghl/http_client.h"
#include "ghl/secret_box.h"
#include "ghl/sync.h"
#include "ghl/writeback.h"
#include "store/store.h"

namespace reai::server {

struct ServerConfig;

struct GhlWritebackConfig {
  std::string api_base = "https://services.leadconnectorhq.com";
  int rate_capacity = 100;  // requests per location per rate_period_s (GHL's limit)
  double rate_period_s = 10;
  double score_interval_s = 60;  // score-only changes per contact
  std::optional<ghl::SecretBox> secret_box;  // none: stored tokens cannot be used
  ghl::OAuthClient oauth;
  std::string oauth_redirect_uri;
  // false: the worker runs jobs (sync, OAuth) only and sends no outbox
  // update (`reai ghl sync` next to a running server).
  bool deliver_outbox = true;
  // Backfill updates fed per tenant while fewer than this many are pending.
  std::size_t backfill_batch = 20;
  // How often a tenant whose grant GHL refused looks for a new token (an
  // install on another instance, `reai tenant add --ghl-token-file`): one
  // store read, no call to GHL.
  double reauth_recheck_s = 10;
};

class GhlWriteback {
 public:
  // Starts the worker thread. InvalidArgument for a bad api_base.
  static Result<std::unique_ptr<GhlWriteback>> create(store::Store& store, GhlWritebackConfig config);
  ~GhlWriteback();
  GhlWriteback(const GhlWriteback&) = delete;
  GhlWriteback& operator=(const GhlWriteback&) = delete;

  // A published score change. Any thread; never blocks beyond a short lock.
  // Changes beyond a bounded queue are dropped and counted.
  void on_score(const std::string& tenant_id, const std::string& contact_id, int score, std::string_view band);

  // A contact's score as rebuilt from the stored events at start.
  struct CurrentScore {
    std::string tenant_id;
    std::string contact_id;
    int score = 0;
    std::string band;
  };
  // Start-up reconciliation and backfill (see above), on the worker thread
  // before any change reported later. Any thread; call once, before on_score.
  void reconcile(std::vector<CurrentScore> scores);

  // OAuth install: exchanges `code` on the worker thread; `done` gets the
  // tenant id (or the error), on the worker thread. FailedPrecondition when
  // no client id/secret or secret key is configured.
  using OAuthDone = std::function<void(Result<std::string>)>;
  void exchange_code(std::string code, OAuthDone done);

  // `reai ghl sync`: pulls the tenant's location's contacts, then its
  // opportunities, page by page into the store (contacts upserted through the
  // tenant's field mapping, stage rows deduplicated: a rerun changes
  // nothing), on the worker thread, so the same rate window, retry rule and
  // token refresh as the write-back apply. After each stored page the cursor
  // is stored, so an interrupted sync resumes at the next page; a finished
  // resource is skipped unless `restart`. Blocks the caller. FailedPrecondition
  // when the tenant is not linked or has no usable token; Unavailable after
  // `max_attempts` failed tries of one page (429/5xx/transport) or at stop;
  // InvalidArgument when GHL refuses a call (4xx) or answers a malformed page.
  struct SyncOptions {
    bool restart = false;
    int page_limit = ghl::kMaxPageLimit;
    int max_attempts = 8;
  };
  struct SyncReport {
    std::int64_t contacts = 0;       // stored by this run
    std::int64_t opportunities = 0;  // records read by this run
    std::int64_t stage_rows = 0;     // new stage rows
    int pages = 0;
    bool resumed = false;  // started from a stored cursor
  };
  Result<SyncReport> sync(const std::string& tenant_id, const SyncOptions& options);

  // Waits until every change reported so far is in the outbox (tests).
  void flush();
  // Stops the worker: changes already reported are enqueued first; pending
  // updates stay in the outbox for the next start. Idempotent.
  void stop();

  struct Stats {
    std::uint64_t enqueued = 0;    // outbox rows (score and stage)
    std::uint64_t reconciled = 0;  // of enqueued: by reconcile() and the backfill
    std::uint64_t unchanged = 0;   // changes equal to what was last enqueued
    std::uint64_t sent = 0;
    std::uint64_t failed = 0;
    std::uint64_t retries = 0;
    std::uint64_t dropped = 0;
    std::uint64_t requests = 0;
    // Requests by outcome: 2xx, 429, 5xx or transport error, 401, other 4xx.
    std::uint64_t requests_ok = 0;
    std::uint64_t requests_429 = 0;
    std::uint64_t requests_retry = 0;
    std::uint64_t requests_401 = 0;
    std::uint64_t requests_refused = 0;
    std::uint64_t token_refreshes = 0;
    std::uint64_t token_refresh_failures = 0;
    std::uint64_t stage_moves = 0;  // opportunities moved to the hot stage (PUT 2xx)
    // Pending updates settled unsent because a newer update of the contact
    // carries its state (recorded sent with "superseded by update N").
    std::uint64_t superseded = 0;
    // Tenants whose grant GHL refused, as marked by this instance (one per
    // refusal: the warning logged with it).
    std::uint64_t reauth_marked = 0;
    // Gauges over every linked tenant, refreshed by the worker about once a
    // second: pending outbox updates and the age of the oldest one.
    std::uint64_t outbox_pending = 0;
    std::int64_t oldest_pending_age_s = 0;
    // Contacts never written back that wait to be fed to the outbox.
    std::uint64_t backfill_waiting = 0;
    // Linked tenants whose stored token GHL refused (any instance marked
    // it): their write-back waits for a new install. Refreshed with the
    // outbox gauges.
    std::uint64_t tenants_needing_reauth = 0;
  };
  Stats stats() const;

 private:
  struct Change {
    std::string tenant_id;
    std::string contact_id;
    ghl::ScoreChange state;
  };
  struct Written {  // what was last enqueued for a contact
    int score = 0;
    std::string band;
  };
  struct ContactPace {
    double last_enqueued_s = -1e18;
    std::optional<ghl::ScoreChange> held;  // newest score-only change not yet enqueued
  };
  struct Tenant {
    std::string location_id;
    std::string access_token;  // opened; empty until loaded
    bool oauth = false;
    // When GHL refused the tenant's grant (the stored mark): nothing is sent
    // until a new token is stored. 0: usable.
    UnixSeconds reauth_since = 0;
    std::string field_id;
    std::unique_ptr<ghl::RequestWindow> window;
    double wake_s = 0;  // nothing is sent before this (a retry's delay)
  };
  // kReauth: GHL refused the tenant's grant; the update waits, unsent and
  // not failed, for a new install.
  enum class CallResult { kOk, kRetry, kFailed, kReauth };
  // One sender pass: the tenant's pending updates, the parsed state of each
  // score update (nullopt: unreadable, or a stage move) and each contact's
  // newest score update (its index).
  struct DeliveryPass {
    std::vector<store::GhlUpdate> updates;
    std::vector<std::optional<ghl::ScoreChange>> states;
    std::unordered_map<std::string, std::size_t> newest;
  };

  GhlWriteback(store::Store& store, GhlWritebackConfig config, std::unique_ptr<ghl::HttpClient> http);
  void run();
  // Filler: pace and enqueue `changes`; write held changes that are due.
  void enqueue_changes(std::vector<Change> changes, double now_s);
  void enqueue_held(double now_s);
  void reconcile_now(const std::vector<CurrentScore>& scores, double now_s);
  bool linked(const std::string& tenant_id, double now_s);
  // What was last enqueued for the tenant's contacts (loaded once); nullptr
  // when the store cannot say (the change waits for the next turn).
  std::unordered_map<std::string, Written>* written_of(const std::string& tenant_id);
  void write_update(const Change& change);  // into batch_ (and the contact's state)
  // A "stage" row into batch_ when the tenant configured a hot stage.
  void write_stage_move(const std::string& tenant_id, const std::string& contact_id);
  // Feeds backfill_ into the outbox where little is pending (see above).
  void feed_backfill(double now_s);
  void write_batch();                       // batch_ into the outbox, one commit
  // Sender: one pass over a tenant's due updates; answers when to look again
  // (0: nothing pending).
  double deliver(const std::string& tenant_id, double now_s);
  // Loads the tenant's token: nullopt when loaded, else when to look again
  // (0: the tenant is not linked to GHL).
  std::optional<double> wait_for_token(const std::string& tenant_id, Tenant* t, double now_s);
  static DeliveryPass read_pass(std::vector<store::GhlUpdate> updates);
  // Sends (or settles without sending) update `i` of the pass: nullopt to go
  // on with the next, else when to look again (a retry's delay, a full
  // window, an update not yet due).
  std::optional<double> deliver_update(const std::string& tenant_id, Tenant* t, const DeliveryPass& pass,
                                       std::size_t i, UnixSeconds wall, double now_s);
  // Why readable score update `i` is settled without a call (superseded by
  // the contact's newest), or nullopt when it is to be sent.
  static std::optional<std::string> why_superseded(const DeliveryPass& pass, std::size_t i);
  // Records an update whose payload cannot be read as failed (`why`) and
  // counts it; nothing is sent. Answers nullopt (go on with the next update).
  std::optional<double> record_unreadable(const std::string& tenant_id, const store::GhlUpdate& u,
                                          const std::string& why);
  void record_attempt(const std::string& tenant_id, const store::GhlUpdate& u, store::OutboxStatus status,
                      const std::string& error, UnixSeconds next_attempt_at);
  // Records a sent update's outcome (`text`: the note on kOk, GHL's error
  // otherwise) and counts it; on kRetry the location waits `delay_s`.
  std::optional<double> record_result(const std::string& tenant_id, Tenant* t, const store::GhlUpdate& u,
                                      CallResult result, double delay_s, const std::string& text);
  // Loads the tenant's location and token into `t` (refreshing an expiring
  // OAuth token). FailedPrecondition, with t->reauth_since set, when the
  // stored token is marked refused; FailedPrecondition when the app is
  // uninstalled or the tenant not linked.
  Status load_tenant(const std::string& tenant_id, Tenant* t);
  // Refreshes the OAuth token (or rereads a private one). OK: t's token is
  // usable again. FailedPrecondition with t->reauth_since set: GHL refused
  // the grant (marked now, or already by any instance: no call is made).
  // Other errors: an outage or an unusable answer, to be retried.
  Status refresh_token(const std::string& tenant_id, Tenant* t);
  // GHL's refusal of `stored`'s refresh: marks it in the store, or, when
  // another writer stored a new token meanwhile, takes that token (OK).
  Status on_refresh_refused(const std::string& tenant_id, Tenant* t, const store::GhlToken& stored,
                            const std::string& why);
  // One call, paced by the location's window (waits for a slot) with the
  // 401 -> refresh -> retry rule. On kRetry `delay_s` says how long to wait;
  // on kFailed `error` holds GHL's message.
  CallResult call(const std::string& tenant_id, Tenant* t, const ghl::ApiCall& c, int attempt, std::string* body,
                  double* delay_s, std::string* error);
  Status ensure_field(const std::string& tenant_id, Tenant* t, int attempt, double* delay_s, std::string* error,
                      CallResult* result);
  // One update's calls: the score field and tags, or a hot-stage move. On
  // kOk `note` may say what was left alone (kept with the sent row).
  CallResult send_score(const std::string& tenant_id, Tenant* t, const std::string& contact_id,
                        const ghl::ScoreChange& state, int attempt, double* delay_s, std::string* error);
  CallResult send_stage_move(const std::string& tenant_id, Tenant* t, const std::string& contact_id,
                             const ghl::HotStage& target, int attempt, double* delay_s, std::string* error,
                             std::string* note);
  Result<std::string> do_exchange(const std::string& code);
  Result<SyncReport> do_sync(const std::string& tenant_id, const SyncOptions& options);
  // do_sync's steps. The tenant's token, loaded unless it already is;
  // FailedPrecondition when it cannot be.
  Status load_sync_credentials(const std::string& tenant_id, Tenant* t);
  // The tenant's field mapping (the default when it set none).
  Result<ghl::FieldMapping> sync_field_mapping(const std::string& tenant_id);
  // Where the run starts reading `name`: the stored cursor, or the start
  // (options.restart, or none stored; a restart stores it at once).
  Result<store::GhlSyncCursor> sync_start_cursor(const std::string& tenant_id, const std::string& name,
                                                 const SyncOptions& options, SyncReport* report);
  // Every remaining page of `resource`, stored page by page with its cursor.
  Status sync_resource(const std::string& tenant_id, Tenant* t, ghl::SyncResource resource, const SyncOptions& options,
                       const ghl::FieldMapping& mapping, SyncReport* report);
  // One page's body, retried up to options.max_attempts times; InvalidArgument
  // when GHL refuses it, Unavailable when the tries run out or on stop.
  Result<std::string> fetch_sync_page(const std::string& tenant_id, Tenant* t, ghl::SyncResource resource,
                                      const std::string& name, const SyncOptions& options, const std::string& cursor);
  // One page of `resource` stored; answers the records read.
  Result<std::size_t> store_page(const std::string& tenant_id, ghl::SyncResource resource, const ghl::Page& page,
                                 const ghl::FieldMapping& mapping, SyncReport* report);
  bool wait_for(double seconds);  // false when stopping
  void summarize_outbox();        // the Stats gauges

  store::Store& store_;
  const GhlWritebackConfig config_;
  std::unique_ptr<ghl::HttpClient> http_;

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable flushed_;
  std::vector<Change> incoming_;
  bool waiting_ = false;  // run() waits for work: the next change wakes it
  std::deque<std::function<void()>> jobs_;
  // Tenants linked() found without a GHL location, and when: on_score
  // skips their changes until a recheck is due.
  std::unordered_map<std::string, double> unlinked_;
  std::uint64_t reported_ = 0;
  std::uint64_t filled_ = 0;
  bool stopping_ = false;
  Stats stats_;

  // Worker thread only.
  std::unordered_map<std::string, ContactPace> pace_;  // tenant \x1f contact
  std::map<std::string, Tenant> tenants_;
  std::vector<store::GhlUpdate> batch_;
  std::vector<store::GhlContactState> batch_states_;
  std::unordered_map<std::string, std::unordered_map<std::string, Written>> written_;  // tenant -> contact
  std::set<std::string> busy_tenants_;  // may have pending updates
  struct Location {
    std::string id;  // empty: not linked (looked up again after a while)
    double checked_s = 0;
  };
  std::unordered_map<std::string, Location> locations_;  // by tenant
  struct Held {
    double due_s;
    std::string tenant_id;
    std::string contact_id;
  };
  std::deque<Held> held_;  // due times ascend (a fixed interval after each write)
  std::map<std::string, std::deque<CurrentScore>> backfill_;  // by tenant, in reconcile order

  double summarized_s_ = 0;

  std::thread worker_;  // last
};

// The write-back settings of a server's configuration (API base, rate
// limit, score interval, sealing key, OAuth client). InvalidArgument for a
// rate limit below 1 request per positive period; the key file's errors.
Result<GhlWritebackConfig> ghl_writeback_config(const ServerConfig& config);

// The write-back counters and gauges in Prometheus text format
// (reai_ghl_writeback_*, reai_ghl_token_refreshes_total, reai_ghl_outbox_*).
std::string ghl_writeback_metrics(const GhlWriteback::Stats& stats);

}  // namespace reai::server
