#include "store/migrations.h"

#include <chrono>
#include <string>

#include "store/store.h"

namespace reai::store {
namespace {

// Every table carries tenant_id and every key/index starts with it, so each
// tenant-scoped query is an index range scan. Events, stages and scores are
// rowid tables: the rowid is the insertion order that breaks ts ties, and
// every index carries it implicitly.
constexpr std::string_view kMigration1 = R"sql(
CREATE TABLE tenants (
  tenant_id TEXT NOT NULL PRIMARY KEY CHECK (tenant_id <> ''),
  name TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  ghl_location_id TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE contacts (
  tenant_id TEXT NOT NULL CHECK (tenant_id <> ''),
  contact_id TEXT NOT NULL CHECK (contact_id <> ''),
  created_at INTEGER NOT NULL,
  source TEXT NOT NULL,
  lead_type TEXT NOT NULL,
  assigned_agent_id TEXT NOT NULL,
  budget REAL,
  timeline_months INTEGER,
  pre_approved INTEGER,
  beds_wanted INTEGER,
  area_wanted TEXT NOT NULL,
  has_phone INTEGER,
  has_email INTEGER,
  PRIMARY KEY (tenant_id, contact_id)
) WITHOUT ROWID;

CREATE TABLE events (
  tenant_id TEXT NOT NULL CHECK (tenant_id <> ''),
  event_id TEXT NOT NULL CHECK (event_id <> ''),
  contact_id TEXT NOT NULL CHECK (contact_id <> ''),
  ts INTEGER NOT NULL,
  type TEXT NOT NULL,
  property_id TEXT NOT NULL,
  value REAL,
  PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX events_by_time ON events (tenant_id, ts);
CREATE INDEX events_by_contact ON events (tenant_id, contact_id, ts);

CREATE TABLE opportunity_stages (
  tenant_id TEXT NOT NULL CHECK (tenant_id <> ''),
  opportunity_id TEXT NOT NULL CHECK (opportunity_id <> ''),
  contact_id TEXT NOT NULL,
  agent_id TEXT NOT NULL,
  monetary_value REAL NOT NULL,
  ts INTEGER NOT NULL,
  stage TEXT NOT NULL,
  PRIMARY KEY (tenant_id, opportunity_id, ts, stage)
);
CREATE INDEX stages_by_time ON opportunity_stages (tenant_id, ts);

CREATE TABLE scores (
  tenant_id TEXT NOT NULL CHECK (tenant_id <> ''),
  contact_id TEXT NOT NULL CHECK (contact_id <> ''),
  ts INTEGER NOT NULL,
  probability REAL NOT NULL,
  score INTEGER NOT NULL,
  band TEXT NOT NULL,
  model_version TEXT NOT NULL,
  reasons_json TEXT NOT NULL
);
CREATE INDEX scores_by_contact ON scores (tenant_id, contact_id, ts);

CREATE TABLE models (
  tenant_id TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind <> ''),
  version TEXT NOT NULL CHECK (version <> ''),
  path TEXT NOT NULL,
  metrics_json TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, kind, version)
);
CREATE INDEX models_by_time ON models (tenant_id, kind, created_at);
)sql";

// GoHighLevel: raw webhook deliveries (stored before they are answered) and
// per-tenant settings. A delivery's webhook id is unique per tenant, which is
// the replay guard.
constexpr std::string_view kMigrationGhlDeliveries = R"sql(
CREATE TABLE ghl_deliveries (
  delivery_id INTEGER PRIMARY KEY,
  tenant_id TEXT NOT NULL CHECK (tenant_id <> ''),
  location_id TEXT NOT NULL,
  webhook_id TEXT NOT NULL CHECK (webhook_id <> ''),
  kind TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  body TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed', 'ignored')),
  error TEXT NOT NULL,
  attempts INTEGER NOT NULL
);
CREATE UNIQUE INDEX ghl_deliveries_by_webhook ON ghl_deliveries (tenant_id, webhook_id);
CREATE INDEX ghl_deliveries_by_status ON ghl_deliveries (tenant_id, status, delivery_id);
CREATE INDEX tenants_by_ghl_location ON tenants (ghl_location_id);

CREATE TABLE ghl_settings (
  tenant_id TEXT NOT NULL PRIMARY KEY CHECK (tenant_id <> ''),
  workflow_secret TEXT NOT NULL,
  field_map_json TEXT NOT NULL,
  active INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

// GoHighLevel write-back outbox: updates survive a restart until GHL took
// them (sent) or refused them (failed, with GHL's message).
constexpr std::string_view kMigrationGhlOutbox = R"sql(
CREATE TABLE ghl_outbox (
  update_id INTEGER PRIMARY KEY,
  tenant_id TEXT NOT NULL CHECK (tenant_id <> ''),
  contact_id TEXT NOT NULL CHECK (contact_id <> ''),
  kind TEXT NOT NULL CHECK (kind <> ''),
  payload_json TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
  attempts INTEGER NOT NULL,
  next_attempt_at INTEGER NOT NULL,
  error TEXT NOT NULL
);
CREATE INDEX ghl_outbox_due ON ghl_outbox (tenant_id, status, next_attempt_at, update_id);
)sql";

// Listings per tenant (`reai import listings`): attributes as JSON so any
// listings CSV schema fits; the importer's valuation beside them.
constexpr std::string_view kMigrationListings = R"sql(
CREATE TABLE listings (
  tenant_id TEXT NOT NULL CHECK (tenant_id <> ''),
  listing_id TEXT NOT NULL CHECK (listing_id <> ''),
  list_price REAL NOT NULL CHECK (list_price > 0),
  attributes_json TEXT NOT NULL CHECK (attributes_json <> ''),
  valuation_json TEXT NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, listing_id)
) WITHOUT ROWID;
)sql";

// GoHighLevel API credentials per tenant, sealed by the caller.
constexpr std::string_view kMigrationGhlTokens = R"sql(
CREATE TABLE ghl_tokens (
  tenant_id TEXT NOT NULL PRIMARY KEY CHECK (tenant_id <> ''),
  kind TEXT NOT NULL CHECK (kind <> ''),
  sealed_access_token TEXT NOT NULL CHECK (sealed_access_token <> ''),
  sealed_refresh_token TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

// GoHighLevel write-back state: what was last enqueued per contact (the
// filler's comparison survives restarts) and the ids of reai's custom fields
// per location (found or created once, not once per start).
constexpr std::string_view kMigrationGhlWritebackState = R"sql(
CREATE TABLE ghl_contact_states (
  tenant_id TEXT NOT NULL CHECK (tenant_id <> ''),
  contact_id TEXT NOT NULL CHECK (contact_id <> ''),
  score INTEGER NOT NULL,
  band TEXT NOT NULL CHECK (band IN ('hot', 'warm', 'cold')),
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, contact_id)
) WITHOUT ROWID;

CREATE TABLE ghl_custom_fields (
  tenant_id TEXT NOT NULL CHECK (tenant_id <> ''),
  location_id TEXT NOT NULL CHECK (location_id <> ''),
  field_key TEXT NOT NULL CHECK (field_key <> ''),
  field_id TEXT NOT NULL CHECK (field_id <> ''),
  PRIMARY KEY (tenant_id, location_id, field_key)
) WITHOUT ROWID;
)sql";

// `reai ghl sync`: where each resource's paged pull stopped.
constexpr std::string_view kMigrationGhlSyncCursors = R"sql(
CREATE TABLE ghl_sync_cursors (
  tenant_id TEXT NOT NULL CHECK (tenant_id <> ''),
  resource TEXT NOT NULL CHECK (resource <> ''),
  cursor TEXT NOT NULL,
  fetched INTEGER NOT NULL CHECK (fetched >= 0),
  done INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, resource)
) WITHOUT ROWID;
)sql";

// Migration 8 (the list's position is the version): a per-tenant listings version bumped in the
// same transaction as every listings write, so a server polls one row to
// notice listings imported by another process.
constexpr std::string_view kMigrationListingVersions = R"sql(
CREATE TABLE listing_versions (
  tenant_id TEXT NOT NULL PRIMARY KEY CHECK (tenant_id <> ''),
  version INTEGER NOT NULL
) WITHOUT ROWID;
)sql";

// Migration 9: the per-tenant "move the opportunity to this stage when the
// lead turns hot" setting. Empty ids = off, so existing tenants stay off.
constexpr std::string_view kMigrationGhlHotStage = R"sql(
ALTER TABLE ghl_settings ADD COLUMN hot_pipeline_id TEXT NOT NULL DEFAULT '';
ALTER TABLE ghl_settings ADD COLUMN hot_stage_id TEXT NOT NULL DEFAULT '';
)sql";

// Migration 10: each score row's place among its lead's rows (ScoreRecord::
// lead_order), first in the newest-row order, so rows that two instances
// commit in the opposite order still read back in the lead's order. Rows
// from before have 0 (they keep their (ts, insertion) order among
// themselves and come before every row written since).
constexpr std::string_view kMigrationScoreLeadOrder = R"sql(
ALTER TABLE scores ADD COLUMN lead_order INTEGER NOT NULL DEFAULT 0 CHECK (lead_order >= 0);
DROP INDEX scores_by_contact;
CREATE INDEX scores_by_contact ON scores (tenant_id, contact_id, lead_order, ts);
)sql";

// Migration 11: a GHL location is linked to one tenant at most. Before, two
// tenants could name the same location and its webhooks went to the first by
// id, silently. A database that already has such a pair stops here, naming
// the index: unlink one of the two (reai tenant --ghl-location) first.
constexpr std::string_view kMigrationGhlLocationLinkedOnce = R"sql(
CREATE UNIQUE INDEX tenants_ghl_location_linked_once ON tenants (ghl_location_id) WHERE ghl_location_id <> '';
)sql";

// Migration 12: PostgreSQL indexes events by (tenant_id, seq) for
// Store::for_each_event_after; SQLite reads them by rowid range and needs
// nothing (the version stays the same number in both stores).
constexpr std::string_view kMigrationEventsAfter = R"sql(
-- nothing: for_each_event_after reads a rowid range
)sql";

// Migration 13: a GHL install's lifecycle survives restarts and is seen by
// every instance: when GHL refused to refresh the tenant's OAuth token (the
// write-back waits for a new install) and when the app was uninstalled.
constexpr std::string_view kMigrationGhlInstallState = R"sql(
ALTER TABLE ghl_tokens ADD COLUMN refused_at INTEGER NOT NULL DEFAULT 0 CHECK (refused_at >= 0);
ALTER TABLE ghl_tokens ADD COLUMN refused_error TEXT NOT NULL DEFAULT '';
ALTER TABLE ghl_settings ADD COLUMN uninstalled_at INTEGER NOT NULL DEFAULT 0 CHECK (uninstalled_at >= 0);
)sql";

// Migration 14: when each contact's budget was stated (Contact::
// budget_stated_at). Rows from before have 0: stated before any behaviour,
// as they were read until now.
constexpr std::string_view kMigrationBudgetStatedAt = R"sql(
ALTER TABLE contacts ADD COLUMN budget_stated_at INTEGER NOT NULL DEFAULT 0 CHECK (budget_stated_at >= 0);
)sql";

Result<int> recorded_version(Database& db) {
  auto stmt = db.prepare("SELECT coalesce(max(version), 0) FROM schema_migrations");
  if (!stmt) return stmt.status();
  StatementScope scope(*stmt);
  Status status;
  if (!(*stmt)->step(&status)) {
    return status.is_ok() ? internal_error("schema_migrations: no row") : status;
  }
  return static_cast<int>((*stmt)->int64(0));
}

Status record_version(Database& db, int version) {
  auto stmt = db.prepare("INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)");
  if (!stmt) return stmt.status();
  StatementScope scope(*stmt);
  auto now = std::chrono::duration_cast<std::chrono::seconds>(
                 std::chrono::system_clock::now().time_since_epoch()).count();
  (*stmt)->bind(1, static_cast<std::int64_t>(version));
  (*stmt)->bind(2, static_cast<std::int64_t>(now));
  return (*stmt)->run();
}

Status migrate_locked(Database& db) {
  REAI_RETURN_IF_ERROR(db.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      " version INTEGER NOT NULL PRIMARY KEY, applied_at INTEGER NOT NULL)"));
  auto current = recorded_version(db);
  if (!current) return current.status();
  const int known = schema_version();
  if (*current > known) {
    return failed_precondition("database schema version " + std::to_string(*current) +
                               " is newer than this binary's " + std::to_string(known) +
                               "; upgrade reai");
  }
  for (int version = *current + 1; version <= known; ++version) {
    REAI_RETURN_IF_ERROR(db.exec(std::string(sqlite_migrations()[version - 1])));
    REAI_RETURN_IF_ERROR(record_version(db, version));
  }
  return Status::ok();
}

}  // namespace

const std::vector<std::string_view>& sqlite_migrations() {
  static const std::vector<std::string_view> migrations = {kMigration1, kMigrationGhlDeliveries, kMigrationGhlOutbox,
                                                                  kMigrationListings, kMigrationGhlTokens,
                                                                  kMigrationGhlWritebackState,
                                                                  kMigrationGhlSyncCursors, kMigrationListingVersions,
                                                                  kMigrationGhlHotStage, kMigrationScoreLeadOrder,
                                                                  kMigrationGhlLocationLinkedOnce,
                                                                  kMigrationEventsAfter, kMigrationGhlInstallState,
                                                                  kMigrationBudgetStatedAt};
  return migrations;
}

Status apply_migrations(Database& db) {
  REAI_RETURN_IF_ERROR(db.exec("BEGIN IMMEDIATE"));
  Status status = migrate_locked(db);
  if (!status.is_ok()) {
    (void)db.exec("ROLLBACK");
    return status;
  }
  return db.exec("COMMIT");
}

}  // namespace reai::store

namespace reai::store {

int schema_version() { return static_cast<int>(sqlite_migrations().size()); }

}  // namespace reai::store
