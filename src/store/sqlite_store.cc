// SQLite implementation of Store, in WAL mode: one writer connection behind a
// mutex (one writer is all SQLite allows anyway) and a small pool of read
// connections. WAL lets readers run beside the writer, each on the snapshot
// its read transaction started with, so reads never take the writer's lock:
// a tenant-wide scan (start-up rebuild, prediction snapshots, listing
// popularity: hundreds of ms on a large tenant) no longer stalls appends,
// and point reads (a score, a lead list) no longer queue behind commits.
//
// Read-your-writes: every read is one statement, i.e. one read transaction,
// started when the read starts and ended (statement reset) before it
// returns, so no reader keeps an old snapshot between calls. A write's
// commit has updated the WAL index when the write returns, so a read that
// starts after it sees it, on any reader.
//
// What stays on the writer: every write, and anything that reads its own
// write (the ids from sqlite3_last_insert_rowid, the row counts of
// INSERT ... ON CONFLICT DO NOTHING), which must come from the connection
// that wrote. The store is always a file (DATA_DIR/reai.db): there is no
// in-memory SQLite database whose readers would not see the writer's rows.
//
// A reader's snapshot pins the WAL: a checkpoint cannot copy frames past the
// oldest snapshot, and the WAL cannot restart while any reader uses it. A long
// scan under load therefore lets the WAL grow past the restart point until
// it ends; the checkpointer (checkpointer.h) leaves the larger tail that
// remains to its background thread instead of copying it on the writer.
//
// append_event group-commits: a commit costs the same for one row as for a
// few (it writes the touched pages to the WAL), so when several threads
// append at once, one of them commits everybody's rows in one transaction
// while the others wait, and each gets its own row's answer.
#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "store/checkpointer.h"
#include "store/sqlite_store.h"
#include "store/migrations.h"
#include "store/sqlite_db.h"
#include "store/store.h"
#include "store/validation.h"

namespace reai::store {
namespace {

constexpr const char* kUpsertTenant =
    "INSERT INTO tenants (tenant_id, name, created_at, ghl_location_id) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT (tenant_id) DO UPDATE SET name = excluded.name, "
    "ghl_location_id = excluded.ghl_location_id";
constexpr const char* kSelectTenant =
    "SELECT tenant_id, name, created_at, ghl_location_id FROM tenants WHERE tenant_id = ?1";
constexpr const char* kSelectTenants =
    "SELECT tenant_id, name, created_at, ghl_location_id FROM tenants ORDER BY tenant_id";

constexpr const char* kSelectTenantByLocation =
    "SELECT tenant_id, name, created_at, ghl_location_id FROM tenants WHERE ghl_location_id = ?1"
    " ORDER BY tenant_id LIMIT 1";
constexpr const char* kInsertDelivery =
    "INSERT INTO ghl_deliveries (tenant_id, location_id, webhook_id, kind, received_at, body, status, error,"
    " attempts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', '', 0) ON CONFLICT DO NOTHING";
constexpr const char* kDeliveryColumns =
    "SELECT delivery_id, tenant_id, location_id, webhook_id, kind, received_at, body, status, error, attempts"
    " FROM ghl_deliveries ";
constexpr const char* kSetDeliveryStatus =
    "UPDATE ghl_deliveries SET status = ?3, error = ?4, attempts = attempts + ?5"
    " WHERE tenant_id = ?1 AND delivery_id = ?2";
// Unset fields of the change are bound as NULL and keep the stored value (a new
// row takes GhlSettings' defaults from the literals in VALUES: empty texts,
// active).
constexpr const char* kUpdateGhlSettings =
    "INSERT INTO ghl_settings (tenant_id, workflow_secret, field_map_json, active, hot_pipeline_id, hot_stage_id,"
    " uninstalled_at)"
    " VALUES (?1, coalesce(?2, ''), coalesce(?3, ''), coalesce(?4, 1), coalesce(?5, ''), coalesce(?6, ''),"
    " coalesce(?7, 0))"
    " ON CONFLICT (tenant_id) DO UPDATE SET workflow_secret = coalesce(?2, workflow_secret),"
    " field_map_json = coalesce(?3, field_map_json), active = coalesce(?4, active),"
    " hot_pipeline_id = coalesce(?5, hot_pipeline_id), hot_stage_id = coalesce(?6, hot_stage_id),"
    " uninstalled_at = coalesce(?7, uninstalled_at)";
constexpr const char* kSelectGhlSettings =
    "SELECT tenant_id, workflow_secret, field_map_json, active, hot_pipeline_id, hot_stage_id, uninstalled_at"
    " FROM ghl_settings WHERE tenant_id = ?1";

constexpr const char* kUpsertGhlToken =
    "INSERT INTO ghl_tokens (tenant_id, kind, sealed_access_token, sealed_refresh_token, expires_at, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (tenant_id) DO UPDATE SET kind = excluded.kind,"
    " sealed_access_token = excluded.sealed_access_token, sealed_refresh_token = excluded.sealed_refresh_token,"
    " expires_at = excluded.expires_at, updated_at = excluded.updated_at, refused_at = 0, refused_error = ''";
constexpr const char* kSelectGhlToken =
    "SELECT tenant_id, kind, sealed_access_token, sealed_refresh_token, expires_at, updated_at, refused_at,"
    " refused_error FROM ghl_tokens WHERE tenant_id = ?1";
constexpr const char* kMarkGhlTokenRefused =
    "UPDATE ghl_tokens SET refused_at = ?3, refused_error = ?4"
    " WHERE tenant_id = ?1 AND sealed_refresh_token = ?2 AND refused_at = 0";

constexpr const char* kInsertUpdate =
    "INSERT INTO ghl_outbox (tenant_id, contact_id, kind, payload_json, created_at, status, attempts,"
    " next_attempt_at, error) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?5, '')";
constexpr const char* kUpdateColumns =
    "SELECT update_id, tenant_id, contact_id, kind, payload_json, created_at, status, attempts, next_attempt_at,"
    " error FROM ghl_outbox ";
constexpr const char* kRecordUpdateAttempt =
    "UPDATE ghl_outbox SET status = ?3, error = ?4, next_attempt_at = ?5, attempts = attempts + 1"
    " WHERE tenant_id = ?1 AND update_id = ?2";

constexpr const char* kUpsertContactState =
    "INSERT INTO ghl_contact_states (tenant_id, contact_id, score, band, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)"
    " ON CONFLICT (tenant_id, contact_id) DO UPDATE SET score = excluded.score, band = excluded.band,"
    " updated_at = excluded.updated_at";
constexpr const char* kSelectContactStates =
    "SELECT tenant_id, contact_id, score, band, updated_at FROM ghl_contact_states WHERE tenant_id = ?1"
    " ORDER BY contact_id";
constexpr const char* kUpsertCustomField =
    "INSERT INTO ghl_custom_fields (tenant_id, location_id, field_key, field_id) VALUES (?1, ?2, ?3, ?4)"
    " ON CONFLICT (tenant_id, location_id, field_key) DO UPDATE SET field_id = excluded.field_id";
constexpr const char* kSelectCustomField =
    "SELECT tenant_id, location_id, field_key, field_id FROM ghl_custom_fields"
    " WHERE tenant_id = ?1 AND location_id = ?2 AND field_key = ?3";
constexpr const char* kUpsertSyncCursor =
    "INSERT INTO ghl_sync_cursors (tenant_id, resource, cursor, fetched, done, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (tenant_id, resource) DO UPDATE SET cursor = excluded.cursor,"
    " fetched = excluded.fetched, done = excluded.done, updated_at = excluded.updated_at";
constexpr const char* kSelectSyncCursor =
    "SELECT tenant_id, resource, cursor, fetched, done, updated_at FROM ghl_sync_cursors"
    " WHERE tenant_id = ?1 AND resource = ?2";

constexpr const char* kUpsertListing =
    "INSERT INTO listings (tenant_id, listing_id, list_price, attributes_json, valuation_json, updated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (tenant_id, listing_id) DO UPDATE SET"
    " list_price = excluded.list_price, attributes_json = excluded.attributes_json,"
    " valuation_json = excluded.valuation_json, updated_at = excluded.updated_at";
constexpr const char* kBumpListingsVersion =
    "INSERT INTO listing_versions (tenant_id, version) VALUES (?1, 1) ON CONFLICT (tenant_id) DO UPDATE SET"
    " version = listing_versions.version + 1";
constexpr const char* kListingColumns =
    "SELECT tenant_id, listing_id, list_price, attributes_json, valuation_json, updated_at FROM listings ";

constexpr const char* kContactColumns =
    "tenant_id, contact_id, created_at, source, lead_type, assigned_agent_id, budget, "
    "timeline_months, pre_approved, beds_wanted, area_wanted, has_phone, has_email, budget_stated_at";
constexpr const char* kInsertContactIfAbsent =
    "INSERT INTO contacts (tenant_id, contact_id, created_at, source, lead_type, assigned_agent_id,"
    " budget, timeline_months, pre_approved, beds_wanted, area_wanted, has_phone, has_email, budget_stated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) ON CONFLICT DO NOTHING";
// A budget written unchanged keeps the time it was stated (Contact::
// budget_stated_at), in the statement: a writer racing another sees the row
// as it is, not as it read it.
constexpr const char* kUpsertContact =
    "INSERT INTO contacts (tenant_id, contact_id, created_at, source, lead_type, assigned_agent_id,"
    " budget, timeline_months, pre_approved, beds_wanted, area_wanted, has_phone, has_email, budget_stated_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
    " ON CONFLICT (tenant_id, contact_id) DO UPDATE SET created_at = excluded.created_at,"
    " source = excluded.source, lead_type = excluded.lead_type,"
    " assigned_agent_id = excluded.assigned_agent_id,"
    " budget_stated_at = CASE WHEN contacts.budget IS excluded.budget THEN contacts.budget_stated_at"
    " ELSE excluded.budget_stated_at END, budget = excluded.budget,"
    " timeline_months = excluded.timeline_months, pre_approved = excluded.pre_approved,"
    " beds_wanted = excluded.beds_wanted, area_wanted = excluded.area_wanted,"
    " has_phone = excluded.has_phone, has_email = excluded.has_email";

constexpr const char* kInsertEvent =
    "INSERT INTO events (tenant_id, event_id, contact_id, ts, type, property_id, value)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING";
constexpr const char* kEventColumns =
    "tenant_id, event_id, contact_id, ts, type, property_id, value";

constexpr const char* kInsertStage =
    "INSERT INTO opportunity_stages (tenant_id, opportunity_id, contact_id, agent_id,"
    " monetary_value, ts, stage) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING";

constexpr const char* kInsertScore =
    "INSERT INTO scores (tenant_id, contact_id, ts, probability, score, band, model_version,"
    " reasons_json, lead_order) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
// A lead's first score row: written only when the lead has none. Run under
// the database's write lock (a write statement takes it before reading), so
// the check sees every row committed by another connection or process.
constexpr const char* kInsertFirstScore =
    "INSERT INTO scores (tenant_id, contact_id, ts, probability, score, band, model_version,"
    " reasons_json, lead_order) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9"
    " WHERE NOT EXISTS (SELECT 1 FROM scores WHERE tenant_id = ?1 AND contact_id = ?2)";
constexpr const char* kSelectScores =
    "SELECT tenant_id, contact_id, ts, probability, score, band, model_version, reasons_json, lead_order"
    " FROM scores WHERE tenant_id = ?1 AND contact_id = ?2 ORDER BY lead_order DESC, ts DESC, rowid DESC LIMIT ?3";

constexpr const char* kUpsertModel =
    "INSERT INTO models (tenant_id, kind, version, path, metrics_json, created_at)"
    " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (tenant_id, kind, version) DO UPDATE SET"
    " path = excluded.path, metrics_json = excluded.metrics_json, created_at = excluded.created_at";
constexpr const char* kModelColumns = "tenant_id, kind, version, path, metrics_json, created_at";

ListingRecord read_listing(const Statement& s) {
  return ListingRecord{s.text(0), s.text(1), s.real(2), s.text(3), s.text(4), s.int64(5)};
}

std::string contact_query(const char* where_and_order) {
  return std::string("SELECT ") + kContactColumns + " FROM contacts " + where_and_order;
}
std::string event_query(const char* where_and_order) {
  return std::string("SELECT ") + kEventColumns + " FROM events " + where_and_order;
}

void bind_contact(Statement& s, const Contact& c) {
  s.bind(1, c.tenant_id);
  s.bind(2, c.contact_id);
  s.bind(3, static_cast<std::int64_t>(c.created_at));
  s.bind(4, c.source);
  s.bind(5, lead_type_name(c.lead_type));
  s.bind(6, c.assigned_agent_id);
  s.bind(7, c.budget);
  s.bind(8, c.timeline_months);
  s.bind(9, c.pre_approved);
  s.bind(10, c.beds_wanted);
  s.bind(11, c.area_wanted);
  s.bind(12, c.has_phone);
  s.bind(13, c.has_email);
  s.bind(14, static_cast<std::int64_t>(c.budget_stated_at));
}

Contact read_contact(const Statement& s) {
  Contact c;
  c.tenant_id = s.text(0);
  c.contact_id = s.text(1);
  c.created_at = s.int64(2);
  c.source = s.text(3);
  c.lead_type = parse_lead_type(s.text(4));
  c.assigned_agent_id = s.text(5);
  c.budget = s.optional_real(6);
  c.timeline_months = s.optional_int(7);
  c.pre_approved = s.optional_bool(8);
  c.beds_wanted = s.optional_int(9);
  c.area_wanted = s.text(10);
  c.has_phone = s.optional_bool(11);
  c.has_email = s.optional_bool(12);
  c.budget_stated_at = s.int64(13);
  return c;
}

void bind_event(Statement& s, const Event& e) {
  s.bind(1, e.tenant_id);
  s.bind(2, e.event_id);
  s.bind(3, e.contact_id);
  s.bind(4, static_cast<std::int64_t>(e.ts));
  s.bind(5, event_type_name(e.type));
  s.bind(6, e.property_id);
  s.bind(7, e.value);
}

Result<Event> read_event(const Statement& s) {
  Event e;
  e.tenant_id = s.text(0);
  e.event_id = s.text(1);
  e.contact_id = s.text(2);
  e.ts = s.int64(3);
  std::string type = s.text(4);
  auto parsed = parse_event_type(type);
  if (!parsed) return internal_error("stored event " + e.event_id + " has unknown type '" + type + "'");
  e.type = *parsed;
  e.property_id = s.text(5);
  e.value = s.optional_real(6);
  return e;
}

void bind_stage(Statement& s, const OpportunityStage& o) {
  s.bind(1, o.tenant_id);
  s.bind(2, o.opportunity_id);
  s.bind(3, o.contact_id);
  s.bind(4, o.agent_id);
  s.bind(5, o.monetary_value);
  s.bind(6, static_cast<std::int64_t>(o.ts));
  s.bind(7, stage_name(o.stage));
}

Result<OpportunityStage> read_stage(const Statement& s) {
  OpportunityStage o;
  o.tenant_id = s.text(0);
  o.opportunity_id = s.text(1);
  o.contact_id = s.text(2);
  o.agent_id = s.text(3);
  o.monetary_value = s.real(4);
  o.ts = s.int64(5);
  std::string stage = s.text(6);
  auto parsed = parse_stage(stage);
  if (!parsed) {
    return internal_error("stored opportunity " + o.opportunity_id + " has unknown stage '" +
                          stage + "'");
  }
  o.stage = *parsed;
  return o;
}

GhlDelivery read_delivery(const Statement& s) {
  GhlDelivery d;
  d.delivery_id = s.int64(0);
  d.tenant_id = s.text(1);
  d.location_id = s.text(2);
  d.webhook_id = s.text(3);
  d.kind = s.text(4);
  d.received_at = s.int64(5);
  d.body = s.text(6);
  d.status = parse_delivery_status(s.text(7)).value_or(DeliveryStatus::kFailed);
  d.error = s.text(8);
  d.attempts = static_cast<int>(s.int64(9));
  return d;
}

GhlUpdate read_update(const Statement& s) {
  GhlUpdate u;
  u.update_id = s.int64(0);
  u.tenant_id = s.text(1);
  u.contact_id = s.text(2);
  u.kind = s.text(3);
  u.payload_json = s.text(4);
  u.created_at = s.int64(5);
  u.status = parse_outbox_status(s.text(6)).value_or(OutboxStatus::kFailed);
  u.attempts = static_cast<int>(s.int64(7));
  u.next_attempt_at = s.int64(8);
  u.error = s.text(9);
  return u;
}

Tenant read_tenant(const Statement& s) {
  return Tenant{s.text(0), s.text(1), s.int64(2), s.text(3)};
}

ScoreRecord read_score(const Statement& s) {
  ScoreRecord r;
  r.tenant_id = s.text(0);
  r.contact_id = s.text(1);
  r.ts = s.int64(2);
  r.probability = s.real(3);
  r.score = static_cast<int>(s.int64(4));
  r.lead_order = s.int64(8);
  r.band = s.text(5);
  r.model_version = s.text(6);
  r.reasons_json = s.text(7);
  return r;
}

ModelRecord read_model(const Statement& s) {
  return ModelRecord{s.text(0), s.text(1), s.text(2), s.text(3), s.text(4), s.int64(5)};
}

// Read connections to one database file, opened on demand up to `capacity`,
// each with its own statement cache and used by one thread at a time. A
// caller finding every reader busy waits for one (never for the writer).
class ReaderPool {
 public:
  ReaderPool(std::string path, std::size_t capacity) : path_(std::move(path)), capacity_(capacity) {}

  // A reader for the caller's thread until it goes out of scope.
  class Lease {
   public:
    Lease(ReaderPool* pool, std::unique_ptr<Database> db) : pool_(pool), db_(std::move(db)) {}
    ~Lease() {
      if (db_) pool_->give_back(std::move(db_));
    }
    Lease(Lease&& other) noexcept = default;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;
    Database& db() { return *db_; }

   private:
    ReaderPool* pool_;
    std::unique_ptr<Database> db_;
  };

  // An idle reader, a new one while below capacity, else the first returned.
  // The open's error when a new connection cannot be opened.
  Result<Lease> acquire() {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return !idle_.empty() || opened_ < capacity_; });
      if (!idle_.empty()) {
        std::unique_ptr<Database> db = std::move(idle_.back());
        idle_.pop_back();
        return Lease(this, std::move(db));
      }
      ++opened_;  // reserved; opened outside the lock
    }
    auto db = open_reader();
    if (!db) {
      std::lock_guard lock(mu_);
      --opened_;
      cv_.notify_one();
      return db.status();
    }
    return Lease(this, std::move(*db));
  }

 private:
  Result<std::unique_ptr<Database>> open_reader() {
    auto db = Database::open(path_);
    if (!db) return db.status();
    REAI_RETURN_IF_ERROR((*db)->exec("PRAGMA busy_timeout = 5000"));
    // A reader never writes; a bug that tried would fail instead of taking
    // the write lock beside the writer.
    REAI_RETURN_IF_ERROR((*db)->exec("PRAGMA query_only = ON"));
    REAI_RETURN_IF_ERROR((*db)->exec("PRAGMA temp_store = MEMORY"));
    return db;
  }

  void give_back(std::unique_ptr<Database> db) {
    {
      std::lock_guard lock(mu_);
      idle_.push_back(std::move(db));
    }
    cv_.notify_one();
  }

  const std::string path_;
  const std::size_t capacity_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Database>> idle_;  // guarded by mu_
  std::size_t opened_ = 0;                        // guarded by mu_; idle and leased
};

// One reader per hardware thread: the server's request threads and its
// background work each read on their own; at least two so one long scan
// never makes a point read wait.
std::size_t reader_capacity() { return std::max<std::size_t>(2, std::thread::hardware_concurrency()); }

class SqliteStore final : public Store {
 public:
  SqliteStore(std::unique_ptr<Database> db, std::unique_ptr<Checkpointer> checkpointer, const std::string& path)
      : db_(std::move(db)), checkpointer_(std::move(checkpointer)), readers_(path, reader_capacity()) {}

  Status upsert_tenant(const Tenant& t) override {
    std::lock_guard lock(mu_);
    // Under the write lock, so no other writer of this store links the
    // location in between; the unique index guards other processes.
    REAI_RETURN_IF_ERROR(check_ghl_location_free(t, find_tenant_by_ghl_location(t.ghl_location_id)));
    return write(kUpsertTenant, [&](Statement& s) {
      s.bind(1, t.tenant_id);
      s.bind(2, t.name);
      s.bind(3, static_cast<std::int64_t>(t.created_at));
      s.bind(4, t.ghl_location_id);
    });
  }

  Result<Tenant> get_tenant(const std::string& tenant_id) override {
    std::optional<Tenant> found;
    REAI_RETURN_IF_ERROR(scan(
        kSelectTenant, [&](Statement& s) { s.bind(1, tenant_id); },
        [&](const Statement& s) {
          found = read_tenant(s);
          return Status::ok();
        }));
    if (!found) return not_found("tenant '" + tenant_id + "' not found");
    return *found;
  }

  Result<std::vector<Tenant>> list_tenants() override {
    std::vector<Tenant> out;
    REAI_RETURN_IF_ERROR(scan(
        kSelectTenants, [](Statement&) {},
        [&](const Statement& s) {
          out.push_back(read_tenant(s));
          return Status::ok();
        }));
    return out;
  }

  Result<Tenant> find_tenant_by_ghl_location(const std::string& location_id) override {
    std::optional<Tenant> found;
    if (!location_id.empty()) {
      REAI_RETURN_IF_ERROR(scan(
          kSelectTenantByLocation, [&](Statement& s) { s.bind(1, location_id); },
          [&](const Statement& s) {
            found = read_tenant(s);
            return Status::ok();
          }));
    }
    if (!found) return not_found("no tenant linked to GHL location '" + location_id + "'");
    return *found;
  }

  Result<std::optional<std::int64_t>> record_ghl_delivery(const GhlDelivery& d) override {
    REAI_RETURN_IF_ERROR(validate(d));
    std::lock_guard lock(mu_);
    auto written = insert_counted(kInsertDelivery, [&](Statement& s) {
      s.bind(1, d.tenant_id);
      s.bind(2, d.location_id);
      s.bind(3, d.webhook_id);
      s.bind(4, d.kind);
      s.bind(5, static_cast<std::int64_t>(d.received_at));
      s.bind(6, d.body);
    });
    if (!written) return written.status();
    if (!*written) return std::optional<std::int64_t>();
    return std::optional<std::int64_t>(sqlite3_last_insert_rowid(db_->handle()));
  }

  Result<GhlDelivery> get_ghl_delivery(const std::string& tenant_id, std::int64_t delivery_id) override {
    std::optional<GhlDelivery> found;
    REAI_RETURN_IF_ERROR(scan(
        std::string(kDeliveryColumns) + "WHERE tenant_id = ?1 AND delivery_id = ?2",
        [&](Statement& s) {
          s.bind(1, tenant_id);
          s.bind(2, delivery_id);
        },
        [&](const Statement& s) {
          found = read_delivery(s);
          return Status::ok();
        }));
    if (!found) return not_found("delivery " + std::to_string(delivery_id) + " not found");
    return *found;
  }

  Result<std::vector<GhlDelivery>> list_ghl_deliveries(const std::string& tenant_id, DeliveryStatus status,
                                                       std::size_t limit) override {
    std::vector<GhlDelivery> out;
    REAI_RETURN_IF_ERROR(scan(
        std::string(kDeliveryColumns) + "WHERE tenant_id = ?1 AND status = ?2 ORDER BY delivery_id LIMIT ?3",
        [&](Statement& s) {
          s.bind(1, tenant_id);
          s.bind(2, delivery_status_name(status));
          s.bind(3, static_cast<std::int64_t>(std::min<std::size_t>(limit, 1u << 30)));
        },
        [&](const Statement& s) {
          out.push_back(read_delivery(s));
          return Status::ok();
        }));
    return out;
  }

  Status set_ghl_delivery_status(const std::string& tenant_id, std::int64_t delivery_id, DeliveryStatus status,
                                 const std::string& error, bool count_attempt) override {
    std::lock_guard lock(mu_);
    auto changed = insert_counted(kSetDeliveryStatus, [&](Statement& s) {
      s.bind(1, tenant_id);
      s.bind(2, delivery_id);
      s.bind(3, delivery_status_name(status));
      s.bind(4, error);
      s.bind(5, static_cast<std::int64_t>(count_attempt ? 1 : 0));
    });
    if (!changed) return changed.status();
    if (!*changed) return not_found("delivery " + std::to_string(delivery_id) + " not found");
    return Status::ok();
  }

  Status update_ghl_settings(const std::string& tenant_id, const GhlSettingsChange& change) override {
    REAI_RETURN_IF_ERROR(validate(tenant_id, change));
    std::lock_guard lock(mu_);
    return write(kUpdateGhlSettings, [&](Statement& s) {
      s.bind(1, tenant_id);
      s.bind_text_or_null(2, change.workflow_secret);
      s.bind_text_or_null(3, change.field_map_json);
      s.bind(4, change.active);
      if (change.hot_stage) {
        s.bind(5, change.hot_stage->pipeline_id);
        s.bind(6, change.hot_stage->stage_id);
      } else {
        s.bind_null(5);
        s.bind_null(6);
      }
      if (change.uninstalled_at) {
        s.bind(7, static_cast<std::int64_t>(*change.uninstalled_at));
      } else {
        s.bind_null(7);
      }
    });
  }

  Result<GhlSettings> get_ghl_settings(const std::string& tenant_id) override {
    std::optional<GhlSettings> found;
    REAI_RETURN_IF_ERROR(scan(
        kSelectGhlSettings, [&](Statement& s) { s.bind(1, tenant_id); },
        [&](const Statement& s) {
          found = GhlSettings{s.text(0), s.text(1), s.text(2), s.int64(3) != 0, s.text(4), s.text(5), s.int64(6)};
          return Status::ok();
        }));
    if (!found) return not_found("no GHL settings for tenant '" + tenant_id + "'");
    return *found;
  }

  Status put_ghl_token(const GhlToken& t) override {
    REAI_RETURN_IF_ERROR(validate(t));
    std::lock_guard lock(mu_);
    return write(kUpsertGhlToken, [&](Statement& s) {
      s.bind(1, t.tenant_id);
      s.bind(2, t.kind);
      s.bind(3, t.sealed_access_token);
      s.bind(4, t.sealed_refresh_token);
      s.bind(5, static_cast<std::int64_t>(t.expires_at));
      s.bind(6, static_cast<std::int64_t>(t.updated_at));
    });
  }

  Result<GhlToken> get_ghl_token(const std::string& tenant_id) override {
    std::optional<GhlToken> found;
    REAI_RETURN_IF_ERROR(scan(
        kSelectGhlToken, [&](Statement& s) { s.bind(1, tenant_id); },
        [&](const Statement& s) {
          found = GhlToken{s.text(0), s.text(1), s.text(2), s.text(3), s.int64(4), s.int64(5), s.int64(6), s.text(7)};
          return Status::ok();
        }));
    if (!found) return not_found("no GHL token for tenant '" + tenant_id + "'");
    return *found;
  }

  Result<bool> mark_ghl_token_refused(const std::string& tenant_id, const std::string& sealed_refresh_token,
                                      UnixSeconds refused_at, const std::string& error) override {
    REAI_RETURN_IF_ERROR(validate_token_refusal(tenant_id, refused_at));
    std::lock_guard lock(mu_);
    auto changed = insert_counted(kMarkGhlTokenRefused, [&](Statement& s) {
      s.bind(1, tenant_id);
      s.bind(2, sealed_refresh_token);
      s.bind(3, static_cast<std::int64_t>(refused_at));
      s.bind(4, error);
    });
    if (!changed) return changed.status();
    return *changed;
  }

  Result<std::int64_t> enqueue_ghl_update(const GhlUpdate& u) override {
    REAI_RETURN_IF_ERROR(validate(u));
    std::lock_guard lock(mu_);
    return insert_update(u);
  }

  Result<std::vector<std::int64_t>> enqueue_ghl_writeback(std::span<const GhlUpdate> updates,
                                                          std::span<const GhlContactState> states) override {
    for (const GhlUpdate& u : updates) REAI_RETURN_IF_ERROR(validate(u));
    for (const GhlContactState& st : states) REAI_RETURN_IF_ERROR(validate(st));
    std::vector<std::int64_t> ids;
    if (updates.empty() && states.empty()) return ids;
    std::lock_guard lock(mu_);
    REAI_RETURN_IF_ERROR(in_transaction(updates.size() + states.size(), [&]() -> Status {
      ids.clear();
      for (const GhlUpdate& u : updates) {
        auto id = insert_update(u);
        if (!id) return id.status();
        ids.push_back(*id);
      }
      for (const GhlContactState& st : states) {
        REAI_RETURN_IF_ERROR(write(kUpsertContactState, [&](Statement& s) {
          s.bind(1, st.tenant_id);
          s.bind(2, st.contact_id);
          s.bind(3, static_cast<std::int64_t>(st.score));
          s.bind(4, st.band);
          s.bind(5, static_cast<std::int64_t>(st.updated_at));
        }));
      }
      return Status::ok();
    }));
    return ids;
  }

  Result<std::vector<GhlContactState>> list_ghl_contact_states(const std::string& tenant_id) override {
    std::vector<GhlContactState> out;
    REAI_RETURN_IF_ERROR(scan(
        kSelectContactStates, [&](Statement& s) { s.bind(1, tenant_id); },
        [&](const Statement& s) {
          out.push_back(GhlContactState{s.text(0), s.text(1), static_cast<int>(s.int64(2)), s.text(3), s.int64(4)});
          return Status::ok();
        }));
    return out;
  }

  Status put_ghl_custom_field(const GhlCustomField& f) override {
    REAI_RETURN_IF_ERROR(validate(f));
    std::lock_guard lock(mu_);
    return write(kUpsertCustomField, [&](Statement& s) {
      s.bind(1, f.tenant_id);
      s.bind(2, f.location_id);
      s.bind(3, f.field_key);
      s.bind(4, f.field_id);
    });
  }

  Result<GhlCustomField> get_ghl_custom_field(const std::string& tenant_id, const std::string& location_id,
                                              const std::string& field_key) override {
    std::optional<GhlCustomField> found;
    REAI_RETURN_IF_ERROR(scan(
        kSelectCustomField,
        [&](Statement& s) {
          s.bind(1, tenant_id);
          s.bind(2, location_id);
          s.bind(3, field_key);
        },
        [&](const Statement& s) {
          found = GhlCustomField{s.text(0), s.text(1), s.text(2), s.text(3)};
          return Status::ok();
        }));
    if (!found) return not_found("no GHL custom field '" + field_key + "' for location '" + location_id + "'");
    return *found;
  }

  Status put_ghl_sync_cursor(const GhlSyncCursor& c) override {
    REAI_RETURN_IF_ERROR(validate(c));
    std::lock_guard lock(mu_);
    return write(kUpsertSyncCursor, [&](Statement& s) {
      s.bind(1, c.tenant_id);
      s.bind(2, c.resource);
      s.bind(3, c.cursor);
      s.bind(4, c.fetched);
      s.bind(5, static_cast<std::int64_t>(c.done ? 1 : 0));
      s.bind(6, static_cast<std::int64_t>(c.updated_at));
    });
  }

  Result<GhlSyncCursor> get_ghl_sync_cursor(const std::string& tenant_id, const std::string& resource) override {
    std::optional<GhlSyncCursor> found;
    REAI_RETURN_IF_ERROR(scan(
        kSelectSyncCursor,
        [&](Statement& s) {
          s.bind(1, tenant_id);
          s.bind(2, resource);
        },
        [&](const Statement& s) {
          found = GhlSyncCursor{s.text(0), s.text(1), s.text(2), s.int64(3), s.int64(4) != 0, s.int64(5)};
          return Status::ok();
        }));
    if (!found) return not_found("no GHL sync cursor for '" + resource + "'");
    return *found;
  }

  // Under mu_.
  Result<std::int64_t> insert_update(const GhlUpdate& u) {
    REAI_RETURN_IF_ERROR(write(kInsertUpdate, [&](Statement& s) {
      s.bind(1, u.tenant_id);
      s.bind(2, u.contact_id);
      s.bind(3, u.kind);
      s.bind(4, u.payload_json);
      s.bind(5, static_cast<std::int64_t>(u.created_at));
    }));
    return static_cast<std::int64_t>(sqlite3_last_insert_rowid(db_->handle()));
  }

  Result<std::vector<GhlUpdate>> due_ghl_updates(const std::string& tenant_id, UnixSeconds now,
                                                 std::size_t limit) override {
    std::vector<GhlUpdate> out;
    REAI_RETURN_IF_ERROR(scan(
        std::string(kUpdateColumns) +
            "WHERE tenant_id = ?1 AND status = 'pending' AND next_attempt_at <= ?2"
            " ORDER BY next_attempt_at, update_id LIMIT ?3",
        [&](Statement& s) {
          s.bind(1, tenant_id);
          s.bind(2, static_cast<std::int64_t>(now));
          s.bind(3, static_cast<std::int64_t>(std::min<std::size_t>(limit, 1u << 30)));
        },
        [&](const Statement& s) {
          out.push_back(read_update(s));
          return Status::ok();
        }));
    return out;
  }

  Result<std::vector<GhlUpdate>> list_ghl_updates(const std::string& tenant_id, OutboxStatus status,
                                                  std::size_t limit) override {
    std::vector<GhlUpdate> out;
    REAI_RETURN_IF_ERROR(scan(
        std::string(kUpdateColumns) + "WHERE tenant_id = ?1 AND status = ?2 ORDER BY update_id LIMIT ?3",
        [&](Statement& s) {
          s.bind(1, tenant_id);
          s.bind(2, outbox_status_name(status));
          s.bind(3, static_cast<std::int64_t>(std::min<std::size_t>(limit, 1u << 30)));
        },
        [&](const Statement& s) {
          out.push_back(read_update(s));
          return Status::ok();
        }));
    return out;
  }

  Result<GhlOutboxSummary> ghl_outbox_summary(const std::string& tenant_id) override {
    GhlOutboxSummary out;
    REAI_RETURN_IF_ERROR(scan(
        "SELECT count(*), coalesce(min(created_at), 0) FROM ghl_outbox WHERE tenant_id = ?1 AND status = 'pending'",
        [&](Statement& s) { s.bind(1, tenant_id); },
        [&](const Statement& s) {
          out.pending = static_cast<std::size_t>(s.int64(0));
          out.oldest_pending_at = s.int64(1);
          return Status::ok();
        }));
    return out;
  }

  Status record_ghl_update_attempt(const std::string& tenant_id, std::int64_t update_id, OutboxStatus status,
                                   const std::string& error, UnixSeconds next_attempt_at) override {
    std::lock_guard lock(mu_);
    auto changed = insert_counted(kRecordUpdateAttempt, [&](Statement& s) {
      s.bind(1, tenant_id);
      s.bind(2, update_id);
      s.bind(3, outbox_status_name(status));
      s.bind(4, error);
      s.bind(5, static_cast<std::int64_t>(next_attempt_at));
    });
    if (!changed) return changed.status();
    if (!*changed) return not_found("outbox update " + std::to_string(update_id) + " not found");
    return Status::ok();
  }

  Status upsert_contact(const Contact& contact) override {
    std::lock_guard lock(mu_);
    return write(kUpsertContact, [&](Statement& s) { bind_contact(s, contact); });
  }

  Result<Contact> get_contact(const std::string& tenant_id, const std::string& contact_id) override {
    std::optional<Contact> found;
    REAI_RETURN_IF_ERROR(scan(
        contact_query("WHERE tenant_id = ?1 AND contact_id = ?2"),
        [&](Statement& s) {
          s.bind(1, tenant_id);
          s.bind(2, contact_id);
        },
        [&](const Statement& s) {
          found = read_contact(s);
          return Status::ok();
        }));
    if (!found) return not_found("contact '" + contact_id + "' not found");
    return *found;
  }

  Result<bool> append_event(const Event& event) override {
    REAI_RETURN_IF_ERROR(validate(event));
    PendingAppend mine{&event, std::nullopt};
    std::unique_lock lock(queue_mu_);
    queue_.push_back(&mine);
    while (!mine.result) {
      if (committing_) {
        queue_cv_.wait(lock);
        continue;
      }
      // Lead: commit whatever is queued, this thread's row included.
      committing_ = true;
      std::vector<PendingAppend*> batch;
      batch.swap(queue_);
      lock.unlock();
      std::vector<Result<bool>> results = commit_appends(batch);
      lock.lock();
      for (std::size_t i = 0; i < batch.size(); ++i) batch[i]->result = std::move(results[i]);
      committing_ = false;
      queue_cv_.notify_all();
    }
    return std::move(*mine.result);
  }

  Result<std::vector<bool>> append_batch(std::span<const Event> events, std::span<const ScoreRecord> scores,
                                         std::span<const Contact> new_contacts,
                                         std::vector<bool>* contacts_created) override {
    REAI_RETURN_IF_ERROR(validate_batch(new_contacts, events, scores));
    std::vector<bool> written;
    written.reserve(events.size());
    std::vector<bool> created;
    std::lock_guard lock(mu_);
    Status status = in_transaction(new_contacts.size() + events.size() + scores.size(), [&]() -> Status {
      created.clear();
      written.clear();
      for (const Event& e : events) {
        auto one = insert_event(e);
        if (!one) return one.status();
        written.push_back(*one);
      }
      // After the events: a lead whose every event was refused gets no row.
      const std::vector<bool> keep = contacts_to_insert(new_contacts, events, written);
      for (std::size_t i = 0; i < new_contacts.size(); ++i) {
        if (!keep[i]) {
          created.push_back(false);
          continue;
        }
        auto one = insert_counted(kInsertContactIfAbsent, [&](Statement& s) { bind_contact(s, new_contacts[i]); });
        if (!one) return one.status();
        created.push_back(*one);
      }
      for (const ScoreRecord& r : scores) REAI_RETURN_IF_ERROR(insert_score(r));
      return Status::ok();
    });
    if (!status.is_ok()) return status;
    if (contacts_created) *contacts_created = std::move(created);
    return written;
  }

  Result<std::vector<std::string>> stored_event_contacts(std::span<const Event> events) override {
    // One reader and one statement for all of them (a client replaying a
    // whole batch asks for a thousand), each run its own read transaction.
    static const std::string sql("SELECT contact_id FROM events WHERE tenant_id = ?1 AND event_id = ?2");
    std::vector<std::string> out;
    out.reserve(events.size());
    if (events.empty()) return out;
    auto reader = readers_.acquire();
    if (!reader) return reader.status();
    for (const Event& e : events) {
      auto stmt = reader->db().prepare(sql);
      if (!stmt) return stmt.status();
      StatementScope scope(*stmt);
      (*stmt)->bind(1, e.tenant_id);
      (*stmt)->bind(2, e.event_id);
      Status status;
      std::string& contact_id = out.emplace_back();
      if ((*stmt)->step(&status)) contact_id = (*stmt)->text(0);
      if (!status.is_ok()) return status;
    }
    return out;
  }

  Result<LeadWritten> write_lead(const LeadWrite& write) override {
    REAI_RETURN_IF_ERROR(validate(write));
    LeadWritten out;
    std::lock_guard lock(mu_);
    // Always a transaction (at least two statements: the contact's insert,
    // then its replacement or the events).
    Status status = in_transaction(2 + write.events.size() + write.stages.size(), [&]() -> Status {
      out = LeadWritten();
      auto created = insert_counted(kInsertContactIfAbsent, [&](Statement& s) { bind_contact(s, write.contact); });
      if (!created) return created.status();
      out.contact_created = *created;
      if (write.replace_contact && !*created) {
        REAI_RETURN_IF_ERROR(this->write(kUpsertContact, [&](Statement& s) { bind_contact(s, write.contact); }));
      }
      for (const Event& e : write.events) {
        auto one = insert_event(e);
        if (!one) return one.status();
        // Not written: whose id it is, read on the writer inside this
        // transaction (no other writer can change it meanwhile).
        if (!*one) REAI_RETURN_IF_ERROR(refuse_if_of_another_lead(e));
        out.events.push_back(*one);
      }
      for (const OpportunityStage& o : write.stages) {
        auto one = insert_counted(kInsertStage, [&](Statement& s) { bind_stage(s, o); });
        if (!one) return one.status();
        out.stages.push_back(*one);
      }
      return Status::ok();
    });
    if (!status.is_ok()) return status;
    return out;
  }

  Result<bool> append_stage(const OpportunityStage& stage) override {
    std::lock_guard lock(mu_);
    return insert_counted(kInsertStage, [&](Statement& s) { bind_stage(s, stage); });
  }

  Result<ImportCounts> import_history(const std::vector<Contact>& contacts,
                                      const std::vector<Event>& events,
                                      const std::vector<OpportunityStage>& stages) override {
    std::lock_guard lock(mu_);
    REAI_RETURN_IF_ERROR(db_->exec("BEGIN IMMEDIATE"));
    ImportCounts counts;
    Status status = import_locked(contacts, events, stages, &counts);
    if (!status.is_ok()) {
      (void)db_->exec("ROLLBACK");
      return status;
    }
    status = db_->exec("COMMIT");
    if (!status.is_ok()) {
      (void)db_->exec("ROLLBACK");
      return status;
    }
    return counts;
  }

  Status for_each_contact(const std::string& tenant_id,
                          const std::function<bool(const Contact&)>& fn) override {
    return scan_until(
        contact_query("WHERE tenant_id = ?1 ORDER BY contact_id"),
        [&](Statement& s) { s.bind(1, tenant_id); },
        [&](const Statement& s) -> Result<bool> { return fn(read_contact(s)); });
  }

  Status for_each_event(const std::string& tenant_id,
                        const std::function<bool(const Event&)>& fn) override {
    return scan_until(
        event_query("WHERE tenant_id = ?1 ORDER BY ts, rowid"),
        [&](Statement& s) { s.bind(1, tenant_id); },
        [&](const Statement& s) -> Result<bool> {
          auto event = read_event(s);
          if (!event) return event.status();
          return fn(*event);
        });
  }

  Status for_each_event_after(const std::string& tenant_id, std::int64_t after,
                              const std::function<bool(std::int64_t, const Event&)>& fn) override {
    // "+tenant_id": the tenant's index would scan every row of the tenant;
    // the rowid range reads only the rows written since `after`.
    return scan_until(
        std::string("SELECT ") + kEventColumns + ", rowid FROM events WHERE rowid > ?2 AND +tenant_id = ?1 ORDER BY rowid",
        [&](Statement& s) {
          s.bind(1, tenant_id);
          s.bind(2, after);
        },
        [&](const Statement& s) -> Result<bool> {
          auto event = read_event(s);
          if (!event) return event.status();
          return fn(s.int64(7), *event);
        });
  }

  Status for_each_stage(const std::string& tenant_id,
                        const std::function<bool(const OpportunityStage&)>& fn) override {
    return scan_until(
        "SELECT tenant_id, opportunity_id, contact_id, agent_id, monetary_value, ts, stage"
        " FROM opportunity_stages WHERE tenant_id = ?1 ORDER BY ts, rowid",
        [&](Statement& s) { s.bind(1, tenant_id); },
        [&](const Statement& s) -> Result<bool> {
          auto stage = read_stage(s);
          if (!stage) return stage.status();
          return fn(*stage);
        });
  }

  Result<std::vector<Event>> events_for_contact(const std::string& tenant_id,
                                                const std::string& contact_id) override {
    std::vector<Event> out;
    REAI_RETURN_IF_ERROR(scan(
        event_query("WHERE tenant_id = ?1 AND contact_id = ?2 ORDER BY ts, rowid"),
        [&](Statement& s) {
          s.bind(1, tenant_id);
          s.bind(2, contact_id);
        },
        [&](const Statement& s) {
          auto event = read_event(s);
          if (!event) return event.status();
          out.push_back(std::move(*event));
          return Status::ok();
        }));
    return out;
  }

  Status append_score(const ScoreRecord& r) override {
    std::lock_guard lock(mu_);
    return insert_score(r);
  }

  Status append_scores(std::span<const ScoreRecord> records) override {
    for (const ScoreRecord& r : records) REAI_RETURN_IF_ERROR(validate(r));
    std::lock_guard lock(mu_);
    return in_transaction(records.size(), [&]() -> Status {
      for (const ScoreRecord& r : records) REAI_RETURN_IF_ERROR(insert_score(r));
      return Status::ok();
    });
  }

  Result<std::vector<bool>> append_first_scores(std::span<const ScoreRecord> records) override {
    for (const ScoreRecord& r : records) REAI_RETURN_IF_ERROR(validate(r));
    std::vector<bool> written;
    std::lock_guard lock(mu_);
    // One transaction (BEGIN IMMEDIATE: the write lock from the start), each
    // row's check seeing the rows written before it, this batch's included.
    Status status = in_transaction(records.size(), [&]() -> Status {
      written.clear();
      for (const ScoreRecord& r : records) {
        auto one = insert_counted(kInsertFirstScore, [&](Statement& s) { bind_score(s, r); });
        if (!one) return one.status();
        written.push_back(*one);
      }
      return Status::ok();
    });
    if (!status.is_ok()) return status;
    return written;
  }

  Result<std::vector<std::string>> contacts_without_scores(const std::string& tenant_id) override {
    std::vector<std::string> out;
    // One probe of scores_by_contact per contact.
    REAI_RETURN_IF_ERROR(scan(
        "SELECT contact_id FROM contacts c WHERE tenant_id = ?1 AND NOT EXISTS"
        " (SELECT 1 FROM scores s WHERE s.tenant_id = c.tenant_id AND s.contact_id = c.contact_id)"
        " ORDER BY contact_id",
        [&](Statement& s) { s.bind(1, tenant_id); },
        [&](const Statement& s) {
          out.push_back(s.text(0));
          return Status::ok();
        }));
    return out;
  }

  Result<std::vector<ScoreRecord>> score_history(const std::string& tenant_id,
                                                 const std::string& contact_id,
                                                 std::size_t limit) override {
    std::vector<ScoreRecord> out;
    // SQLite limits are signed; a huge size_t would wrap to "no rows".
    auto capped = static_cast<std::int64_t>(std::min<std::size_t>(limit, INT64_MAX));
    REAI_RETURN_IF_ERROR(scan(
        kSelectScores,
        [&](Statement& s) {
          s.bind(1, tenant_id);
          s.bind(2, contact_id);
          s.bind(3, capped);
        },
        [&](const Statement& s) {
          out.push_back(read_score(s));
          return Status::ok();
        }));
    return out;
  }

  Status record_model(const ModelRecord& m) override {
    std::lock_guard lock(mu_);
    return write(kUpsertModel, [&](Statement& s) {
      s.bind(1, m.tenant_id);
      s.bind(2, m.kind);
      s.bind(3, m.version);
      s.bind(4, m.path);
      s.bind(5, m.metrics_json);
      s.bind(6, static_cast<std::int64_t>(m.created_at));
    });
  }

  Result<std::vector<ModelRecord>> list_models(const std::string& tenant_id,
                                               const std::string& kind) override {
    std::vector<ModelRecord> out;
    // An empty kind lists every kind of the tenant.
    REAI_RETURN_IF_ERROR(scan(
        std::string("SELECT ") + kModelColumns +
            " FROM models WHERE tenant_id = ?1 AND (?2 = '' OR kind = ?2)"
            " ORDER BY created_at DESC, rowid DESC",
        [&](Statement& s) {
          s.bind(1, tenant_id);
          s.bind(2, kind);
        },
        [&](const Statement& s) {
          out.push_back(read_model(s));
          return Status::ok();
        }));
    return out;
  }

  Result<std::size_t> count_events(const std::string& tenant_id) override {
    return count("SELECT count(*) FROM events WHERE tenant_id = ?1", tenant_id);
  }

  Status upsert_listings(std::span<const ListingRecord> listings) override {
    for (const auto& l : listings) REAI_RETURN_IF_ERROR(validate(l));
    std::lock_guard lock(mu_);
    return in_transaction(listings.size(), [&]() -> Status {
      for (const auto& l : listings) {
        REAI_RETURN_IF_ERROR(write(kUpsertListing, [&](Statement& s) {
          s.bind(1, l.tenant_id);
          s.bind(2, l.listing_id);
          s.bind(3, l.list_price);
          s.bind(4, l.attributes_json);
          s.bind(5, l.valuation_json);
          s.bind(6, static_cast<std::int64_t>(l.updated_at));
        }));
      }
      for (const std::string& tenant : distinct_tenants(listings)) {
        REAI_RETURN_IF_ERROR(write(kBumpListingsVersion, [&](Statement& s) { s.bind(1, tenant); }));
      }
      return Status::ok();
    });
  }

  Result<std::int64_t> listings_version(const std::string& tenant_id) override {
    std::int64_t version = 0;
    REAI_RETURN_IF_ERROR(scan(
        "SELECT version FROM listing_versions WHERE tenant_id = ?1", [&](Statement& s) { s.bind(1, tenant_id); },
        [&](const Statement& s) {
          version = s.int64(0);
          return Status::ok();
        }));
    return version;
  }

  Result<ListingRecord> get_listing(const std::string& tenant_id, const std::string& listing_id) override {
    std::optional<ListingRecord> found;
    REAI_RETURN_IF_ERROR(scan(
        std::string(kListingColumns) + "WHERE tenant_id = ?1 AND listing_id = ?2",
        [&](Statement& s) {
          s.bind(1, tenant_id);
          s.bind(2, listing_id);
        },
        [&](const Statement& s) {
          found = read_listing(s);
          return Status::ok();
        }));
    if (!found) return not_found("listing '" + listing_id + "' not found");
    return std::move(*found);
  }

  Status for_each_listing(const std::string& tenant_id,
                          const std::function<bool(const ListingRecord&)>& fn) override {
    return scan_until(
        std::string(kListingColumns) + "WHERE tenant_id = ?1 ORDER BY listing_id",
        [&](Statement& s) { s.bind(1, tenant_id); },
        [&](const Statement& s) -> Result<bool> { return fn(read_listing(s)); });
  }

  Result<std::size_t> count_contacts(const std::string& tenant_id) override {
    return count("SELECT count(*) FROM contacts WHERE tenant_id = ?1", tenant_id);
  }

  Status health() override {
    Status status = scan("SELECT max(version) FROM schema_migrations", [](Statement&) {},
                         [](const Statement&) { return Status::ok(); });
    if (!status.is_ok()) return unavailable("sqlite store: " + status.message());
    status = checkpointer_->last_status();
    if (!status.is_ok()) return unavailable("sqlite store: " + status.message());
    return Status::ok();
  }

 private:
  using Binder = std::function<void(Statement&)>;

  struct PendingAppend {
    const Event* event;
    std::optional<Result<bool>> result;  // set (under queue_mu_) once committed
  };

  // Caller holds mu_.
  // The hot inserts name their SQL by a string made once: the statement
  // cache is keyed by std::string, and a temporary per row is an allocation.
  Status insert_score(const ScoreRecord& r) {
    static const std::string sql(kInsertScore);
    return write(sql, [&](Statement& s) { bind_score(s, r); });
  }

  static void bind_score(Statement& s, const ScoreRecord& r) {
    s.bind(1, r.tenant_id);
    s.bind(2, r.contact_id);
    s.bind(3, static_cast<std::int64_t>(r.ts));
    s.bind(4, r.probability);
    s.bind(5, static_cast<std::int64_t>(r.score));
    s.bind(6, r.band);
    s.bind(7, r.model_version);
    s.bind(8, r.reasons_json);
    s.bind(9, r.lead_order);
  }

  // Runs `body` in one transaction, rolled back when it fails. A single row
  // needs none: autocommit is one. Caller holds mu_.
  Status in_transaction(std::size_t rows, const std::function<Status()>& body) {
    if (rows == 0) return Status::ok();
    if (rows == 1) return body();
    // Cached statements: the writer opens a transaction per batch, so
    // sqlite3_exec's parse on every BEGIN and COMMIT adds up.
    REAI_RETURN_IF_ERROR(write("BEGIN IMMEDIATE", [](Statement&) {}));
    Status status = body();
    if (status.is_ok()) status = write("COMMIT", [](Statement&) {});
    if (!status.is_ok()) (void)db_->exec("ROLLBACK");
    return status;
  }

  Result<bool> insert_event(const Event& event) {
    static const std::string sql(kInsertEvent);
    return insert_counted(sql, [&](Statement& s) { bind_event(s, event); });
  }

  // One result per row, in batch order. Waiters read results under
  // queue_mu_, so they are handed over by the caller, not written here.
  std::vector<Result<bool>> commit_appends(const std::vector<PendingAppend*>& batch) {
    std::lock_guard lock(mu_);
    std::vector<Result<bool>> results;
    results.reserve(batch.size());
    if (batch.size() == 1) {  // no transaction needed: autocommit is one
      results.push_back(insert_event(*batch[0]->event));
      return results;
    }
    Status status = db_->exec("BEGIN IMMEDIATE");
    // A failing row aborts only its own statement; the others stay in the
    // transaction. If SQLite dropped the transaction itself (I/O error), the
    // remaining rows are not attempted outside of it.
    for (const PendingAppend* p : batch) {
      if (status.is_ok() && sqlite3_get_autocommit(db_->handle())) {
        status = internal_error("append batch: transaction lost");
      }
      if (!status.is_ok()) {
        results.push_back(status);
        continue;
      }
      results.push_back(insert_event(*p->event));
    }
    if (status.is_ok()) status = db_->exec("COMMIT");
    if (!status.is_ok()) {
      (void)db_->exec("ROLLBACK");
      results.assign(batch.size(), Result<bool>(status));
    }
    return results;
  }

  // Runs one statement without result rows on the writer. Caller holds mu_.
  Status write(const std::string& sql, const Binder& bind) {
    auto stmt = db_->prepare(sql);
    if (!stmt) return stmt.status();
    StatementScope scope(*stmt);
    bind(**stmt);
    return (*stmt)->run();
  }

  // event_id_of_another_lead when `event`'s id is stored under another
  // lead. On the writer (inside the caller's transaction). Caller holds mu_.
  Status refuse_if_of_another_lead(const Event& event) {
    static const std::string sql("SELECT contact_id FROM events WHERE tenant_id = ?1 AND event_id = ?2");
    auto stmt = db_->prepare(sql);
    if (!stmt) return stmt.status();
    StatementScope scope(*stmt);
    (*stmt)->bind(1, event.tenant_id);
    (*stmt)->bind(2, event.event_id);
    Status status;
    std::string owner;
    if ((*stmt)->step(&status)) owner = (*stmt)->text(0);
    REAI_RETURN_IF_ERROR(status);
    if (owner.empty()) return internal_error("event_id '" + event.event_id + "' refused as stored but not found");
    if (owner != event.contact_id) return event_id_of_another_lead(event);
    return Status::ok();
  }

  // INSERT ... ON CONFLICT DO NOTHING: true when a row was written.
  Result<bool> insert_counted(const std::string& sql, const Binder& bind) {
    REAI_RETURN_IF_ERROR(write(sql, bind));
    return db_->changes() > 0;
  }

  // Calls `row` for every result row (on a reader, see scan_until); the
  // first error stops the scan.
  Status scan(const std::string& sql, const Binder& bind,
              const std::function<Status(const Statement&)>& row) {
    return scan_until(sql, bind, [&](const Statement& s) -> Result<bool> {
      Status status = row(s);
      if (!status.is_ok()) return status;
      return true;
    });
  }

  // Like scan; `row` returning false stops early without error. Runs on a
  // reader, without mu_: the statement is one read transaction, ended by
  // its reset before the reader goes back to the pool.
  Status scan_until(const std::string& sql, const Binder& bind,
                    const std::function<Result<bool>(const Statement&)>& row) {
    auto reader = readers_.acquire();
    if (!reader) return reader.status();
    auto stmt = reader->db().prepare(sql);
    if (!stmt) return stmt.status();
    StatementScope scope(*stmt);
    bind(**stmt);
    Status status;
    while ((*stmt)->step(&status)) {
      auto more = row(**stmt);
      if (!more) return more.status();
      if (!*more) break;
    }
    return status;
  }

  Result<std::size_t> count(const std::string& sql, const std::string& tenant_id) {
    std::size_t n = 0;
    REAI_RETURN_IF_ERROR(scan(
        sql, [&](Statement& s) { s.bind(1, tenant_id); },
        [&](const Statement& s) {
          n = static_cast<std::size_t>(s.int64(0));
          return Status::ok();
        }));
    return n;
  }

  // Inside the import transaction; any error makes the caller roll back.
  Status import_locked(const std::vector<Contact>& contacts, const std::vector<Event>& events,
                       const std::vector<OpportunityStage>& stages, ImportCounts* counts) {
    for (const Contact& c : contacts) {
      REAI_RETURN_IF_ERROR(write(kUpsertContact, [&](Statement& s) { bind_contact(s, c); }));
      ++counts->contacts_written;
    }
    for (const Event& e : events) {
      auto written = insert_counted(kInsertEvent, [&](Statement& s) { bind_event(s, e); });
      if (!written) return with_row(written.status(), "event", e.event_id);
      ++(*written ? counts->events_written : counts->events_duplicate);
    }
    for (const Contact& c : bare_contacts_of_orphan_events(contacts, events)) {
      auto added = insert_counted(kInsertContactIfAbsent, [&](Statement& s) { bind_contact(s, c); });
      if (!added) return with_row(added.status(), "contact", c.contact_id);
      if (*added) ++counts->contacts_added_bare;
    }
    for (const OpportunityStage& o : stages) {
      auto written = insert_counted(kInsertStage, [&](Statement& s) { bind_stage(s, o); });
      if (!written) return with_row(written.status(), "opportunity stage", o.opportunity_id);
      ++(*written ? counts->stages_written : counts->stages_duplicate);
    }
    return Status::ok();
  }

  static Status with_row(const Status& status, const char* what, const std::string& id) {
    return Status(status.code(), std::string(what) + " '" + id + "': " + status.message());
  }

  std::mutex mu_;  // guards db_ (the writer)
  std::unique_ptr<Database> db_;
  std::unique_ptr<Checkpointer> checkpointer_;  // declared after db_: unhooks it first
  ReaderPool readers_;  // every read; closed before the writer

  // Group commit of append_event.
  std::mutex queue_mu_;
  std::condition_variable queue_cv_;
  std::vector<PendingAppend*> queue_;  // waiting for the next commit
  bool committing_ = false;            // a leader is committing a batch
};

Status configure(Database& db) {
  REAI_RETURN_IF_ERROR(db.exec("PRAGMA busy_timeout = 5000"));
  REAI_RETURN_IF_ERROR(db.exec("PRAGMA journal_mode = WAL"));
  // NORMAL in WAL mode: a commit survives a process crash; only an OS crash
  // or power loss can lose the last commits. No fsync per append.
  REAI_RETURN_IF_ERROR(db.exec("PRAGMA synchronous = NORMAL"));
  // After a checkpoint restarts the WAL, truncate the file back to 384 MiB
  // so a burst does not leave a huge WAL behind. Above the restart point
  // (256 MiB, checkpointer.h) and what the writer adds before it restarts:
  // in steady state the file's blocks are reused, never reallocated, and on
  // ext4 a growing file makes fsyncs slow.
  REAI_RETURN_IF_ERROR(db.exec("PRAGMA journal_size_limit = 402653184"));
  REAI_RETURN_IF_ERROR(db.exec("PRAGMA foreign_keys = ON"));
  // 8 MiB of page cache, not more: SQLite (3.40) re-keys pages through the
  // page number past the lock-byte page when a B-tree split reorders its new
  // pages, and the commit after that walks every cached page to drop it
  // again. With random index leaves splitting every few commits, a 64 MiB
  // cache (16k pages) cost the writer a quarter of its time (a third on a
  // 180 MB database); misses are OS page-cache reads: +0.5 `pread64` a request on
  // a 178 MB database, none more on a young one. The full import is no slower
  // (docs/RESULTS.md, "POST /api/events, session 8").
  REAI_RETURN_IF_ERROR(db.exec("PRAGMA cache_size = -8192"));
  REAI_RETURN_IF_ERROR(db.exec("PRAGMA temp_store = MEMORY"));
  auto mode = db.prepare("PRAGMA journal_mode");
  if (!mode) return mode.status();
  StatementScope scope(*mode);
  Status status;
  if (!(*mode)->step(&status) || (*mode)->text(0) != "wal") {
    return status.is_ok() ? unavailable("sqlite store: WAL mode not available") : status;
  }
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& data_dir) {
  return open_sqlite_store(data_dir, Checkpointer::Thresholds{});
}

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& data_dir, Checkpointer::Thresholds thresholds) {
  if (data_dir.empty()) return not_found("sqlite store: empty data directory");
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec) return unavailable("cannot create data directory " + data_dir + ": " + ec.message());
  std::string path = (std::filesystem::path(data_dir) / "reai.db").string();
  auto db = Database::open(path);
  if (!db) return db.status();
  REAI_RETURN_IF_ERROR(configure(**db));
  REAI_RETURN_IF_ERROR(apply_migrations(**db));
  auto checkpointer = Checkpointer::start(**db, path, thresholds);
  if (!checkpointer) return checkpointer.status();
  return std::unique_ptr<Store>(new SqliteStore(std::move(*db), std::move(*checkpointer), path));
}

}  // namespace reai::store
