// Store: durable state of every tenant (contacts, events, opportunity stages,
// score history, model registry), behind one interface. SQLite (WAL) is the
// embedded default; PostgreSQL serves several instances; an in-memory
// implementation serves tests.
//
// Every read and write is scoped by tenant id: no method returns another
// tenant's rows. All implementations are thread-safe.
//
// Reads and writes across threads: a write is visible to every read that
// starts after the write returned, on any thread (read-your-writes, and
// anyone else's). Each read method answers from one consistent snapshot of
// the store taken when it starts; two read calls are two snapshots (a write
// may land between them). On SQLite and PostgreSQL reads run beside writes:
// a read, even a long scan, never makes a write wait, nor a write a read
// (SQLite: separate WAL read connections; PostgreSQL: pooled connections).
// The memory store (tests) serialises every call.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "core/types.h"

namespace reai::store {

struct Tenant {
  std::string tenant_id;
  std::string name;
  UnixSeconds created_at = 0;
  std::string ghl_location_id;  // empty when not linked to GoHighLevel
};

// One scoring result kept as history (only changes are recorded).
struct ScoreRecord {
  std::string tenant_id;
  std::string contact_id;
  UnixSeconds ts = 0;
  double probability = 0;
  int score = 0;
  std::string band;
  std::string model_version;
  std::string reasons_json;  // the score object's reasons array, as JSON
  // The row's place among the lead's rows, whichever instance wrote it: the
  // number of the lead's events the score was computed from (a lead's state
  // only grows, and under shared leases it grows in one order across
  // instances). Rows are newest by (lead_order, ts, insertion), so two
  // instances committing one lead's rows in the opposite order still leave
  // the later score newest. >= 0; rows written before it existed have 0.
  std::int64_t lead_order = 0;
};

// A trained model known to the registry.
struct ModelRecord {
  std::string tenant_id;  // empty: shared by all tenants
  std::string kind;       // "leads", "value", "match", "deals"
  std::string version;
  std::string path;
  std::string metrics_json;
  UnixSeconds created_at = 0;
};

// One GoHighLevel webhook delivery, stored raw before it is answered so a
// crash between the answer and its processing loses nothing.
enum class DeliveryStatus : std::uint8_t { kPending = 0, kDone, kFailed, kIgnored };
std::string_view delivery_status_name(DeliveryStatus status);
// "pending" / "done" / "failed" / "ignored"; nullopt otherwise.
std::optional<DeliveryStatus> parse_delivery_status(std::string_view name);

struct GhlDelivery {
  std::int64_t delivery_id = 0;  // assigned by the store
  std::string tenant_id;
  std::string location_id;
  std::string webhook_id;  // unique per tenant (GHL's webhookId, or a workflow dedup key)
  std::string kind;        // "webhook" | "workflow"
  UnixSeconds received_at = 0;
  std::string body;  // the raw body, byte for byte
  DeliveryStatus status = DeliveryStatus::kPending;
  std::string error;  // why it failed or was ignored; warnings of a done one
  int attempts = 0;   // processing attempts so far
};

// A tenant's GoHighLevel settings.
struct GhlSettings {
  std::string tenant_id;
  std::string workflow_secret;   // authenticates workflow webhooks; empty refuses them
  std::string field_map_json;    // ghl::parse_field_mapping's format; empty = none
  bool active = true;            // false after UNINSTALL
  // Where a lead's opportunity moves when the lead turns hot (GHL pipeline
  // id and pipelineStageId); both empty = off (the default), both set = on.
  std::string hot_pipeline_id;
  std::string hot_stage_id;
  // When GHL reported the app uninstalled (the UNINSTALL webhook's arrival);
  // 0 while installed. Cleared by a new INSTALL or OAuth grant.
  UnixSeconds uninstalled_at = 0;
};

// A change to a tenant's GoHighLevel settings. Only the fields set here are
// written, in one statement, so writers of different fields (an admin setting
// the hot stage while an INSTALL webhook sets `active`) never undo each
// other's change. A tenant without settings yet starts from GhlSettings'
// defaults.
struct GhlSettingsChange {
  struct HotStage {
    std::string pipeline_id;  // both empty turn the hot stage off
    std::string stage_id;
  };
  // Unset (the default) keeps the stored value.
  std::optional<std::string> workflow_secret = std::nullopt;
  std::optional<std::string> field_map_json = std::nullopt;
  std::optional<bool> active = std::nullopt;
  std::optional<HotStage> hot_stage = std::nullopt;  // pipeline and stage change together
  std::optional<UnixSeconds> uninstalled_at = std::nullopt;  // 0 clears it; never negative
};

// One write-back to GoHighLevel waiting in the durable outbox (score field,
// band tag, opportunity stage). Sent by the GHL client, marked sent once GHL
// accepted it; kept with GHL's message when refused.
enum class OutboxStatus : std::uint8_t { kPending = 0, kSent, kFailed };
std::string_view outbox_status_name(OutboxStatus status);
std::optional<OutboxStatus> parse_outbox_status(std::string_view name);

struct GhlUpdate {
  std::int64_t update_id = 0;  // assigned by the store
  std::string tenant_id;
  std::string contact_id;
  std::string kind;          // "score" | "tag_add" | "tag_remove" | "stage"
  std::string payload_json;  // what to send, as the client needs it
  UnixSeconds created_at = 0;
  OutboxStatus status = OutboxStatus::kPending;
  int attempts = 0;
  UnixSeconds next_attempt_at = 0;  // not sent before this
  std::string error;
};

// A listing held for a tenant (`reai import listings`). Attributes are the
// source row's cells by column name, so any listings CSV schema fits; the
// valuation is computed by the importer (the store keeps it as given).
struct ListingRecord {
  std::string tenant_id;
  std::string listing_id;
  double list_price = 0;        // > 0
  std::string attributes_json;  // JSON object {"column": "cell text", ...}; never empty
  std::string valuation_json;   // JSON object (value, intervals, competitiveness); "" when not valued
  UnixSeconds updated_at = 0;
};

// A tenant's GoHighLevel API credentials. The token fields are opaque to the
// store: callers seal them (libsodium secretbox) before put and open them
// after get, so the database never holds a usable token.
struct GhlToken {
  std::string tenant_id;
  std::string kind;                  // "oauth" | "private" (a Private Integration Token)
  std::string sealed_access_token;   // sealed; never empty
  std::string sealed_refresh_token;  // sealed; empty for a private token
  UnixSeconds expires_at = 0;        // access token expiry; 0 = does not expire
  UnixSeconds updated_at = 0;
  // When GHL refused to refresh this OAuth grant (invalid_grant: the app was
  // uninstalled, the refresh token revoked or rotated elsewhere), with GHL's
  // message; 0 while usable. Set by mark_ghl_token_refused only: a token put
  // afresh (a new install, a new private token) is usable again, so the
  // write-back resumes by itself.
  UnixSeconds refused_at = 0;
  std::string refused_error = {};
};

// What reai last put in the write-back outbox for a contact. The outbox
// filler compares a new score against this row (not against memory), so a
// delivery reprocessed after a crash enqueues nothing twice, and a start can
// find scores that never reached the outbox.
struct GhlContactState {
  std::string tenant_id;
  std::string contact_id;
  int score = 0;
  std::string band;  // "hot" | "warm" | "cold"
  UnixSeconds updated_at = 0;
};

// The id GHL gave one of reai's custom fields in a location (found or
// created once, then reused across restarts).
struct GhlCustomField {
  std::string tenant_id;
  std::string location_id;
  std::string field_key;  // e.g. "contact.reai_score"
  std::string field_id;
};

// Where `reai ghl sync` stopped for one resource ("contacts",
// "opportunities"): the next page's cursor, so an interrupted sync resumes.
struct GhlSyncCursor {
  std::string tenant_id;
  std::string resource;
  std::string cursor;    // opaque to the store; empty = from the start
  std::int64_t fetched = 0;  // records stored so far
  bool done = false;         // the last page was reached
  UnixSeconds updated_at = 0;
};

// A tenant's pending write-backs at a glance (metrics, admin).
struct GhlOutboxSummary {
  std::size_t pending = 0;
  UnixSeconds oldest_pending_at = 0;  // created_at of the oldest pending; 0 when none
};

struct ImportCounts {
  std::size_t contacts_written = 0;
  std::size_t events_written = 0;   // new event ids only
  std::size_t events_duplicate = 0; // already stored (same tenant + event_id)
  std::size_t stages_written = 0;
  std::size_t stages_duplicate = 0;
  // Leads with events but neither a contact row in the history nor one stored
  // before: each got the bare contact the server would have stored.
  std::size_t contacts_added_bare = 0;
};

// One lead's records from one request or delivery (a score-trigger, a GHL
// delivery), written together by Store::write_lead.
struct LeadWrite {
  // The lead: every event and stage must name its tenant_id and contact_id.
  Contact contact;
  // true: the contact is inserted or replaced (fields were stated); false:
  // inserted only when absent (a stored contact is left as it is).
  bool replace_contact = false;
  std::vector<Event> events;
  std::vector<OpportunityStage> stages;
};

// What write_lead wrote.
struct LeadWritten {
  bool contact_created = false;  // the store held no contact of the lead before
  std::vector<bool> events;      // one each: as append_events answers
  std::vector<bool> stages;      // one each: as append_stage answers
};

// Where a reader of a tenant's new events is (Store::read_new_events): pass
// the same cursor to each read, starting from a default one. Callers read
// `position` (the highest position read, as for_each_event_after numbers
// them) and may copy the cursor; the rest is the store's bookkeeping.
struct EventCursor {
  std::int64_t position = 0;
  // Every event at or below `settled` has been read; the next read starts
  // there. Above it, the positions already read (sorted), skipped when read
  // again. `settled` == `position` on stores that commit in position order.
  std::int64_t settled = 0;
  std::vector<std::int64_t> read_above;
  // PostgreSQL: of each recent read, the first transaction id not yet
  // started when it read (its snapshot's xmax) and `position` after it.
  struct Horizon {
    std::uint64_t next_xid = 0;
    std::int64_t position = 0;
  };
  std::vector<Horizon> horizons;
};

class Store {
 public:
  virtual ~Store() = default;

  // Tenants. upsert replaces name / ghl_location_id of an existing tenant.
  virtual Status upsert_tenant(const Tenant& tenant) = 0;
  // NotFound when absent.
  virtual Result<Tenant> get_tenant(const std::string& tenant_id) = 0;
  virtual Result<std::vector<Tenant>> list_tenants() = 0;

  // Contacts: insert or replace by (tenant_id, contact_id). Every replacing
  // write (this, write_lead's replace_contact, import_history) keeps the
  // stored budget_stated_at when the written budget equals the stored one
  // (both none included), decided against the row as it is at the write,
  // and takes the written one otherwise. InvalidArgument for an empty id or
  // a negative budget_stated_at.
  virtual Status upsert_contact(const Contact& contact) = 0;
  // NotFound when absent.
  virtual Result<Contact> get_contact(const std::string& tenant_id, const std::string& contact_id) = 0;

  // Appends an event. Returns false (and writes nothing) when (tenant_id,
  // event_id) is already stored: replays are idempotent. Durable when it
  // returns (the hot path's only synchronous disk write).
  virtual Result<bool> append_event(const Event& event) = 0;
  // Appends a batch in one transaction (one commit, the cheap way to append
  // under load). Answer i is true when events[i] was written, false when its
  // (tenant_id, event_id) was already stored or came earlier in the batch.
  // All or nothing: InvalidArgument when any event is invalid, or the store's
  // error, and then none is written. Durable when it returns. An empty batch
  // writes nothing and answers an empty vector.
  // (append_batch with events alone; every store answers it the same way.)
  Result<std::vector<bool>> append_events(std::span<const Event> events) {
    return append_batch(events, {}, {}, nullptr);
  }
  // append_events and append_scores in one transaction, so a writer under
  // load pays one commit per batch for both. `new_contacts` (the contacts
  // the events introduce) are inserted in the same transaction, each only
  // when absent (a stored contact is left as it is) and, when events of the
  // batch name it, only when at least one of them is written: a lead whose
  // every event was refused (its event id stored for another lead) gets no
  // row (see contacts_to_insert in validation.h). Events are answered
  // as by append_events; all or nothing for contacts, events and rows
  // together (InvalidArgument when any is invalid). Durable when it returns.
  // `contacts_created` (optional): on success, one flag per new_contacts
  // entry, true when this call inserted it (it was absent, and it is the
  // first of its (tenant_id, contact_id) in the batch); so the caller knows
  // the store held nothing of that contact before this commit. False for a
  // contact left out because its events were all refused.
  virtual Result<std::vector<bool>> append_batch(std::span<const Event> events,
                                                 std::span<const ScoreRecord> scores,
                                                 std::span<const Contact> new_contacts,
                                                 std::vector<bool>* contacts_created) = 0;
  Result<std::vector<bool>> append_batch(std::span<const Event> events, std::span<const ScoreRecord> scores,
                                         std::span<const Contact> new_contacts) {
    return append_batch(events, scores, new_contacts, nullptr);
  }
  // The lead each event id is stored under: answer i is the contact_id of
  // the stored event with events[i]'s (tenant_id, event_id) (no other field
  // is read), or "" when none is stored. One read for all of them. For the
  // events an append answered false: a replay of the lead's own event, or
  // an id stored for another lead (which the caller refuses). Events are
  // never deleted, so an id an append found stored is found here.
  virtual Result<std::vector<std::string>> stored_event_contacts(std::span<const Event> events) = 0;
  // Writes a lead's contact, events and stages in one transaction: all or
  // nothing. Events are answered as by append_events (a replay of the lead's
  // own id is false and changes nothing), stages as by append_stage. An
  // event whose id is stored for another lead refuses the whole write:
  // AlreadyExists naming that id, nothing written. The check runs inside the
  // transaction, so no writer can store such an id between the check and
  // the write (none is left to the caller). InvalidArgument (nothing
  // written) when any row is invalid or an event or stage names another
  // tenant or lead. Durable when it returns.
  virtual Result<LeadWritten> write_lead(const LeadWrite& write) = 0;
  // Appends a pipeline row; false when the identical row (opportunity, ts,
  // stage) is already stored.
  virtual Result<bool> append_stage(const OpportunityStage& stage) = 0;

  // Loads a history in one transaction: all rows are written or none
  // (a failure rolls back). Contacts are upserted; events and stages deduped.
  // A lead whose events come without its contact row (a bad row skipped, an
  // export lacking it) gets a bare contact created at its first event, only
  // when none is stored: so every stored event has its contact, as the
  // server's own writes guarantee and cluster instances rely on (LeadSync).
  virtual Result<ImportCounts> import_history(const std::vector<Contact>& contacts,
                                              const std::vector<Event>& events,
                                              const std::vector<OpportunityStage>& stages) = 0;

  // Streaming reads to rebuild in-memory state at start. Events and stages
  // come in (ts, insertion) order. The callback must not call back into the
  // store. A callback returning false stops the scan early (not an error).
  // A scan sees the rows committed when it started, not those written while
  // it runs; writes from other threads go on meanwhile. On SQLite a scan
  // holds its WAL snapshot until it returns, which keeps the WAL from
  // restarting (it grows meanwhile): keep callbacks short, copy and return.
  virtual Status for_each_contact(const std::string& tenant_id,
                                  const std::function<bool(const Contact&)>& fn) = 0;
  virtual Status for_each_event(const std::string& tenant_id,
                                const std::function<bool(const Event&)>& fn) = 0;
  virtual Status for_each_stage(const std::string& tenant_id,
                                const std::function<bool(const OpportunityStage&)>& fn) = 0;
  // The tenant's events stored after position `after` of the store's
  // insertion order, each with its position (increasing, > after), in that
  // order: for a reader keeping up with the events any process writes (pass
  // the last position it saw; 0 reads from the first). The callback rules of
  // for_each_event. Reads only the rows after `after` on SQLite (rowid
  // order, which is commit order: one writer at a time). On PostgreSQL a
  // position is taken when a row is inserted, so a transaction that commits
  // after one holding a later position shows below a position already read:
  // a reader that must see every row uses read_new_events.
  virtual Status for_each_event_after(const std::string& tenant_id, std::int64_t after,
                                      const std::function<bool(std::int64_t position, const Event&)>& fn) = 0;
  // The tenant's events stored since the reads of `cursor` before this one
  // (all of them from a default cursor), each exactly once over the
  // cursor's life, also when its transaction commits after one holding a
  // later position (PostgreSQL, several writers): for a reader keeping up
  // with every event any process stores. Rows come in position order within
  // one read; a late row comes at the first read after its commit, below
  // positions already read. The callback rules of for_each_event, except
  // that it cannot stop the read. The cursor moves with each row, so on an
  // error the rows the callback saw stay read.
  // Cost: the default (SQLite, memory: position order is commit order) is
  // for_each_event_after(cursor.position). PostgreSQL reads again the rows
  // above the position reached by the last read whose snapshot began after
  // every transaction running at this read had started, one read further
  // back (a position is drawn a moment before its transaction has an id):
  // without writes in flight, about the rows of the previous read; while a
  // transaction stays open (a long import, anywhere on the database), every
  // row since it began, to at most kMaxReadAbove rows, after which the
  // oldest positions are taken as read (a row of a transaction open across
  // that many rows of the tenant could then be missed). `cursor` keeps those
  // positions and one horizon per read since (at most kMaxHorizons: older
  // ones are dropped, the settled position kept).
  static constexpr std::size_t kMaxReadAbove = 65536;
  static constexpr std::size_t kMaxHorizons = 256;
  virtual Status read_new_events(const std::string& tenant_id, EventCursor& cursor,
                                 const std::function<void(const Event&)>& fn) {
    return read_new_events_in_position_order(tenant_id, cursor, fn);
  }
  // A contact's events in time order (empty when none).
  virtual Result<std::vector<Event>> events_for_contact(const std::string& tenant_id,
                                                        const std::string& contact_id) = 0;

  // Score history.
  virtual Status append_score(const ScoreRecord& record) = 0;
  // Appends rows in one transaction; all or nothing (InvalidArgument when any
  // row is invalid, or the store's error).
  virtual Status append_scores(std::span<const ScoreRecord> records) = 0;
  // The tenant's contacts that have no score row, by contact id (empty when
  // every one has one): the leads a history import brought in that were
  // never scored (the server gives each a first row at start).
  virtual Result<std::vector<std::string>> contacts_without_scores(const std::string& tenant_id) = 0;
  // Appends each of `records` whose lead (tenant_id, contact_id) has no
  // score row yet, in one transaction: the first rows of the leads
  // contacts_without_scores names. The check and the write are one step for
  // every instance sharing the store, so instances starting together store
  // one first row per lead (the first to commit) and a lead scored by
  // another meanwhile gets none; a lead given twice gets its first record.
  // Answer i is true when records[i] was written. All or nothing
  // (InvalidArgument when any row is invalid, or the store's error).
  // Durable when it returns. An empty call writes nothing.
  virtual Result<std::vector<bool>> append_first_scores(std::span<const ScoreRecord> records) = 0;
  // Newest first, at most `limit`.
  virtual Result<std::vector<ScoreRecord>> score_history(const std::string& tenant_id,
                                                         const std::string& contact_id,
                                                         std::size_t limit) = 0;

  // Model registry.
  virtual Status record_model(const ModelRecord& model) = 0;
  // Newest first; tenant "" lists shared models.
  virtual Result<std::vector<ModelRecord>> list_models(const std::string& tenant_id,
                                                       const std::string& kind) = 0;

  // GoHighLevel. The tenant linked to a location (tenants.ghl_location_id);
  // NotFound when none.
  virtual Result<Tenant> find_tenant_by_ghl_location(const std::string& location_id) = 0;
  // Stores a raw delivery (status pending, attempts 0) and answers its new
  // id, or nullopt (writing nothing) when (tenant_id, webhook_id) is already
  // stored. InvalidArgument for an empty tenant or webhook id. Durable when
  // it returns.
  virtual Result<std::optional<std::int64_t>> record_ghl_delivery(const GhlDelivery& delivery) = 0;
  // NotFound when absent (or another tenant's).
  virtual Result<GhlDelivery> get_ghl_delivery(const std::string& tenant_id, std::int64_t delivery_id) = 0;
  // A tenant's deliveries in `status`, oldest first, at most `limit`.
  virtual Result<std::vector<GhlDelivery>> list_ghl_deliveries(const std::string& tenant_id, DeliveryStatus status,
                                                               std::size_t limit) = 0;
  // Sets status and error; `count_attempt` adds one to attempts (a
  // processing attempt, not a retry request). NotFound when absent.
  virtual Status set_ghl_delivery_status(const std::string& tenant_id, std::int64_t delivery_id, DeliveryStatus status,
                                         const std::string& error, bool count_attempt) = 0;
  // Applies `change` to the tenant's settings atomically, creating them when
  // absent. InvalidArgument for an empty tenant, a change that sets nothing,
  // or a hot stage with only one of its ids. NotFound from get when never set.
  virtual Status update_ghl_settings(const std::string& tenant_id, const GhlSettingsChange& change) = 0;
  virtual Result<GhlSettings> get_ghl_settings(const std::string& tenant_id) = 0;

  // GoHighLevel write-back outbox. enqueue stores an update (pending,
  // attempts 0, next_attempt_at = created_at) and answers its id; durable
  // when it returns. InvalidArgument for an empty tenant, contact or kind.
  virtual Result<std::int64_t> enqueue_ghl_update(const GhlUpdate& update) = 0;
  // As enqueue_ghl_update for each, in one transaction (one commit per
  // batch: the write-back filler under load). All or nothing; the ids in
  // order. An empty batch writes nothing.
  Result<std::vector<std::int64_t>> enqueue_ghl_updates(std::span<const GhlUpdate> updates) {
    return enqueue_ghl_writeback(updates, {});
  }
  // As enqueue_ghl_updates, and in the same transaction inserts or replaces
  // each state by (tenant_id, contact_id): the outbox rows and "what was last
  // enqueued" never disagree. All or nothing; InvalidArgument for an empty
  // tenant or contact id or a band other than hot/warm/cold.
  virtual Result<std::vector<std::int64_t>> enqueue_ghl_writeback(std::span<const GhlUpdate> updates,
                                                                  std::span<const GhlContactState> states) = 0;
  // A tenant's write-back states in contact_id (byte) order.
  virtual Result<std::vector<GhlContactState>> list_ghl_contact_states(const std::string& tenant_id) = 0;
  // Insert or replace by (tenant_id, location_id, field_key).
  // InvalidArgument for any empty field. NotFound from get when never put.
  virtual Status put_ghl_custom_field(const GhlCustomField& field) = 0;
  virtual Result<GhlCustomField> get_ghl_custom_field(const std::string& tenant_id, const std::string& location_id,
                                                      const std::string& field_key) = 0;
  // Insert or replace by (tenant_id, resource). InvalidArgument for an empty
  // tenant or resource or a negative count. NotFound from get when never put.
  virtual Status put_ghl_sync_cursor(const GhlSyncCursor& cursor) = 0;
  virtual Result<GhlSyncCursor> get_ghl_sync_cursor(const std::string& tenant_id, const std::string& resource) = 0;
  // Pending updates of a tenant due at `now` (next_attempt_at <= now), oldest
  // first, at most `limit`.
  virtual Result<std::vector<GhlUpdate>> due_ghl_updates(const std::string& tenant_id, UnixSeconds now,
                                                         std::size_t limit) = 0;
  // A tenant's updates in `status`, oldest first, at most `limit`.
  virtual Result<std::vector<GhlUpdate>> list_ghl_updates(const std::string& tenant_id, OutboxStatus status,
                                                          std::size_t limit) = 0;
  // Count and age of the tenant's pending updates.
  virtual Result<GhlOutboxSummary> ghl_outbox_summary(const std::string& tenant_id) = 0;
  // Records an attempt: attempts + 1, the new status, error and (for a
  // retry, status pending) next_attempt_at. NotFound when absent.
  virtual Status record_ghl_update_attempt(const std::string& tenant_id, std::int64_t update_id, OutboxStatus status,
                                           const std::string& error, UnixSeconds next_attempt_at) = 0;

  // Listings. Inserts or replaces every row by (tenant_id, listing_id) in one
  // transaction: all or nothing. InvalidArgument (nothing written) when a
  // row has an empty tenant or listing id, a price that is not > 0 or empty
  // attributes_json. An empty span writes nothing. Durable when it returns.
  virtual Status upsert_listings(std::span<const ListingRecord> listings) = 0;
  // A number that grows whenever upsert_listings writes a listing of the
  // tenant (by another process too): 0 when none was ever written. One
  // indexed row: cheap enough to poll so a server notices imported listings.
  virtual Result<std::int64_t> listings_version(const std::string& tenant_id) = 0;
  // NotFound when the tenant has no listing with this id.
  virtual Result<ListingRecord> get_listing(const std::string& tenant_id, const std::string& listing_id) = 0;
  // Every listing of the tenant in listing_id (byte) order; the callback
  // rules of for_each_contact.
  virtual Status for_each_listing(const std::string& tenant_id,
                                  const std::function<bool(const ListingRecord&)>& fn) = 0;

  // Insert or replace by tenant id (a refresh rotates both tokens in one
  // write). The stored token is usable: refused_at/refused_error of `token`
  // are ignored and stored as 0/"" (a new token ends a refusal).
  // InvalidArgument for an empty tenant, kind or access token.
  // NotFound from get when none is stored.
  virtual Status put_ghl_token(const GhlToken& token) = 0;
  virtual Result<GhlToken> get_ghl_token(const std::string& tenant_id) = 0;
  // Marks the tenant's token refused by GHL (GhlToken::refused_at, _error)
  // when its stored refresh token is still `sealed_refresh_token` and it is
  // not marked yet, in one statement: an instance whose refresh lost a race
  // to another instance's rotation (or to a new install) marks nothing.
  // Answers whether this call marked it (false: nothing written, re-read the
  // token). InvalidArgument for an empty tenant or a refused_at <= 0.
  virtual Result<bool> mark_ghl_token_refused(const std::string& tenant_id, const std::string& sealed_refresh_token,
                                              UnixSeconds refused_at, const std::string& error) = 0;

  // Counts for health and tests.
  virtual Result<std::size_t> count_events(const std::string& tenant_id) = 0;
  virtual Result<std::size_t> count_contacts(const std::string& tenant_id) = 0;
  // OK when the store answers; Unavailable with the reason otherwise.
  virtual Status health() = 0;

 protected:
  // read_new_events where positions are drawn in commit order.
  Status read_new_events_in_position_order(const std::string& tenant_id, EventCursor& cursor,
                                           const std::function<void(const Event&)>& fn) {
    return for_each_event_after(tenant_id, cursor.position, [&](std::int64_t p, const Event& e) {
      cursor.position = cursor.settled = p;
      fn(e);
      return true;
    });
  }
};

// Opens (creating when absent) DATA_DIR/reai.db in WAL mode and applies the
// versioned migrations. NotFound/Unavailable when the directory cannot be
// created or the file cannot be opened; FailedPrecondition when the database
// is newer than this binary's schema.
Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& data_dir);

// Connects to PostgreSQL (a postgres:// or postgresql:// URL, libpq's
// syntax and environment variables apply) and applies the versioned
// migrations (the SQLite ones translated). Keeps up to `pool_size`
// connections, opened on demand and reopened when broken; a statement on a
// broken connection answers Unavailable, never retries a write whose outcome
// is unknown. Unavailable when the server cannot be reached,
// FailedPrecondition when the database is newer than this binary's schema,
// InvalidArgument for a URL that is not postgres://.
Result<std::unique_ptr<Store>> open_postgres_store(const std::string& url, std::size_t pool_size = 4);

// The store named on the command line: a postgres:// URL opens PostgreSQL,
// anything else is the SQLite data directory.
Result<std::unique_ptr<Store>> open_store(const std::string& url_or_data_dir);

// A store that lives in memory only; same semantics, for tests.
std::unique_ptr<Store> make_memory_store();

// The tenant of GoHighLevel location `location_id` as an app install or an
// OAuth grant first meets it: the tenant linked to the location; else the
// tenant whose id is the location id, linked now when it is linked to no
// location yet (an operator may create it ahead; its name is kept); else a new
// tenant of that id, linked. AlreadyExists when the tenant of that id is
// linked to another location: a link is never moved silently.
// InvalidArgument when the location id cannot name a tenant; the store's
// failures pass on. Thread-safe as the store is.
Result<Tenant> link_ghl_location(Store& store, const std::string& location_id, UnixSeconds now);

// A tenant's GoHighLevel install as an operator reads it (`reai tenant
// list`, GET /api/admin/ghl/config), from the stored link, settings and
// token. The first that holds wins: uninstalled (the UNINSTALL webhook came,
// no install since), needs re-authorisation (GHL refused the token's refresh;
// the write-back waits for a new install or token), OAuth, private token,
// linked (a location but no token: webhooks in, nothing written back), none.
enum class GhlInstallState : std::uint8_t { kNone = 0, kLinked, kOAuth, kPrivate, kUninstalled, kNeedsReauth };
// "none", "linked", "oauth", "private", "uninstalled", "needs_reauth".
std::string_view ghl_install_state_name(GhlInstallState state);
struct GhlInstall {
  GhlInstallState state = GhlInstallState::kNone;
  UnixSeconds since = 0;  // uninstalled_at / refused_at; 0 for the other states
  std::string detail;     // GHL's message of a refusal; "" otherwise
};
// The store's failures pass on (absent settings or token are not failures).
Result<GhlInstall> ghl_install_of(Store& store, const Tenant& tenant);

// Current schema version (number of migrations).
int schema_version();

}  // namespace reai::store
