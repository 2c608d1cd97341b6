// PostgreSQL implementation of Store: a small pool of libpq connections, every
// statement prepared once per connection, every query scoped by tenant id.
// Batches are one INSERT ... SELECT FROM unnest(arrays) per table, so a batch
// of any size costs at most five round trips (BEGIN, contacts, events, scores,
// COMMIT) and one commit. Concurrent commits from several connections (or instances) are
// grouped by PostgreSQL itself, so append_event needs no queue of its own.
#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "store/postgres_migrations.h"
#include "store/postgres_pool.h"
#include "store/store.h"
#include "store/validation.h"

namespace reai::store {
namespace {

constexpr const char* kTenantColumns = "SELECT tenant_id, name, created_at, ghl_location_id FROM tenants ";
constexpr const char* kUpsertTenant =
    "INSERT INTO tenants (tenant_id, name, created_at, ghl_location_id) VALUES ($1, $2, $3, $4) "
    "ON CONFLICT (tenant_id) DO UPDATE SET name = excluded.name, ghl_location_id = excluded.ghl_location_id";

constexpr const char* kContactColumns =
    "SELECT tenant_id, contact_id, created_at, source, lead_type, assigned_agent_id, budget, timeline_months,"
    " pre_approved, beds_wanted, area_wanted, has_phone, has_email, budget_stated_at FROM contacts ";
// The contacts a batch introduces, in array order, each only when absent
// (a repeat later in the same batch is skipped too).
constexpr const char* kInsertContactsIfAbsent =
    "INSERT INTO contacts (tenant_id, contact_id, created_at, source, lead_type, assigned_agent_id,"
    " budget, timeline_months, pre_approved, beds_wanted, area_wanted, has_phone, has_email, budget_stated_at)"
    " SELECT t, c, ca, s, lt, ag, b, tm, pa, bw, aw, hp, he, bs FROM unnest($1::bytea[], $2::bytea[], $3::int8[],"
    " $4::bytea[], $5::bytea[], $6::bytea[], $7::float8[], $8::int8[], $9::bool[], $10::int8[], $11::bytea[],"
    " $12::bool[], $13::bool[], $14::int8[]) WITH ORDINALITY AS x(t, c, ca, s, lt, ag, b, tm, pa, bw, aw, hp, he, bs, n)"
    " ORDER BY n"
    " ON CONFLICT DO NOTHING RETURNING tenant_id, contact_id";
// A budget written unchanged keeps the time it was stated (Contact::
// budget_stated_at), decided on the row as it is when written.
constexpr const char* kUpsertContact =
    "INSERT INTO contacts (tenant_id, contact_id, created_at, source, lead_type, assigned_agent_id,"
    " budget, timeline_months, pre_approved, beds_wanted, area_wanted, has_phone, has_email, budget_stated_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
    " ON CONFLICT (tenant_id, contact_id) DO UPDATE SET created_at = excluded.created_at,"
    " source = excluded.source, lead_type = excluded.lead_type,"
    " assigned_agent_id = excluded.assigned_agent_id,"
    " budget_stated_at = CASE WHEN contacts.budget IS NOT DISTINCT FROM excluded.budget"
    " THEN contacts.budget_stated_at ELSE excluded.budget_stated_at END, budget = excluded.budget,"
    " timeline_months = excluded.timeline_months, pre_approved = excluded.pre_approved,"
    " beds_wanted = excluded.beds_wanted, area_wanted = excluded.area_wanted,"
    " has_phone = excluded.has_phone, has_email = excluded.has_email";

constexpr const char* kEventColumns =
    "SELECT tenant_id, event_id, contact_id, ts, type, property_id, value FROM events ";
constexpr const char* kInsertEvent =
    "INSERT INTO events (tenant_id, event_id, contact_id, ts, type, property_id, value)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING";
// Rows in array order (ORDER BY n keeps seq in batch order); a repeated id
// later in the same batch conflicts with the earlier one and is skipped.
constexpr const char* kInsertEvents =
    "INSERT INTO events (tenant_id, event_id, contact_id, ts, type, property_id, value)"
    " SELECT t, e, c, ts, ty, p, v FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::int8[], $5::bytea[],"
    " $6::bytea[], $7::float8[]) WITH ORDINALITY AS b(t, e, c, ts, ty, p, v, n) ORDER BY n"
    " ON CONFLICT DO NOTHING RETURNING tenant_id, event_id";
// read_new_events: the tenant's events above a position, each beside the
// read's own snapshot (xmin: the oldest transaction still running; xmax: the
// first not yet started), which comes alone when no event does.
constexpr const char* kSelectNewEvents =
    "SELECT e.tenant_id, e.event_id, e.contact_id, e.ts, e.type, e.property_id, e.value, e.seq,"
    " pg_snapshot_xmin(s.snap)::text::int8, pg_snapshot_xmax(s.snap)::text::int8"
    " FROM (SELECT pg_current_snapshot() AS snap) s"
    " LEFT JOIN events e ON e.tenant_id = $1 AND e.seq > $2 ORDER BY e.seq";
constexpr const char* kSelectEventsHorizon =
    "SELECT pg_snapshot_xmax(pg_current_snapshot())::text::int8,"
    " coalesce((SELECT max(seq) FROM events WHERE tenant_id = $1), 0)";
// The contact each (tenant, event id) is stored under, by the id's place in
// the arrays (1-based); ids not stored have no row.
constexpr const char* kSelectStoredEventContacts =
    "SELECT k.n, e.contact_id FROM unnest($1::bytea[], $2::bytea[]) WITH ORDINALITY AS k(t, e, n)"
    " JOIN events e ON e.tenant_id = k.t AND e.event_id = k.e";

constexpr const char* kStageColumns =
    "SELECT tenant_id, opportunity_id, contact_id, agent_id, monetary_value, ts, stage FROM opportunity_stages ";
constexpr const char* kInsertStage =
    "INSERT INTO opportunity_stages (tenant_id, opportunity_id, contact_id, agent_id, monetary_value, ts, stage)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING";

constexpr const char* kInsertScore =
    "INSERT INTO scores (tenant_id, contact_id, ts, probability, score, band, model_version, reasons_json,"
    " lead_order) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
constexpr const char* kInsertScores =
    "INSERT INTO scores (tenant_id, contact_id, ts, probability, score, band, model_version, reasons_json,"
    " lead_order) SELECT t, c, ts, p, s, b, m, r, o FROM unnest($1::bytea[], $2::bytea[], $3::int8[], $4::float8[],"
    " $5::int8[], $6::bytea[], $7::bytea[], $8::bytea[], $9::int8[]) WITH ORDINALITY AS x(t, c, ts, p, s, b, m, r, o, n)"
    " ORDER BY n";
// The first score row of each lead of the batch that has none: the first
// record of each (tenant, contact) of the batch (a statement does not see its
// own rows), only when no row of that lead is stored. Run after
// kFirstScoresLock in the same transaction, so its snapshot holds every first
// row another instance committed.
constexpr const char* kInsertFirstScores =
    "INSERT INTO scores (tenant_id, contact_id, ts, probability, score, band, model_version, reasons_json,"
    " lead_order) SELECT t, c, ts, p, s, b, m, r, o FROM (SELECT DISTINCT ON (t, c) * FROM unnest($1::bytea[],"
    " $2::bytea[], $3::int8[], $4::float8[], $5::int8[], $6::bytea[], $7::bytea[], $8::bytea[], $9::int8[])"
    " WITH ORDINALITY AS x(t, c, ts, p, s, b, m, r, o, n) ORDER BY t, c, n) AS f"
    " WHERE NOT EXISTS (SELECT 1 FROM scores WHERE scores.tenant_id = f.t AND scores.contact_id = f.c)"
    " ORDER BY n RETURNING tenant_id, contact_id";
constexpr const char* kSelectScores =
    "SELECT tenant_id, contact_id, ts, probability, score, band, model_version, reasons_json, lead_order FROM scores"
    " WHERE tenant_id = $1 AND contact_id = $2 ORDER BY lead_order DESC, ts DESC, seq DESC LIMIT $3";

constexpr const char* kUpsertModel =
    "INSERT INTO models (tenant_id, kind, version, path, metrics_json, created_at) VALUES ($1, $2, $3, $4, $5, $6)"
    " ON CONFLICT (tenant_id, kind, version) DO UPDATE SET path = excluded.path,"
    " metrics_json = excluded.metrics_json, created_at = excluded.created_at";
constexpr const char* kSelectModels =
    "SELECT tenant_id, kind, version, path, metrics_json, created_at FROM models"
    " WHERE tenant_id = $1 AND ($2 = ''::bytea OR kind = $2) ORDER BY created_at DESC, seq DESC";

constexpr const char* kInsertDelivery =
    "INSERT INTO ghl_deliveries (tenant_id, location_id, webhook_id, kind, received_at, body, status, error,"
    " attempts) VALUES ($1, $2, $3, $4, $5, $6, 'pending', '', 0) ON CONFLICT DO NOTHING RETURNING delivery_id";
constexpr const char* kDeliveryColumns =
    "SELECT delivery_id, tenant_id, location_id, webhook_id, kind, received_at, body, status, error, attempts"
    " FROM ghl_deliveries ";
constexpr const char* kSetDeliveryStatus =
    "UPDATE ghl_deliveries SET status = $3, error = $4, attempts = attempts + $5"
    " WHERE tenant_id = $1 AND delivery_id = $2";
// Unset fields of the change are sent as NULL and keep the stored value (a new
// row takes GhlSettings' defaults from the literals in VALUES: empty texts,
// active).
constexpr const char* kUpdateGhlSettings =
    "INSERT INTO ghl_settings (tenant_id, workflow_secret, field_map_json, active, hot_pipeline_id, hot_stage_id,"
    " uninstalled_at)"
    " VALUES ($1, coalesce($2, ''::bytea), coalesce($3, ''::bytea), coalesce($4, true), coalesce($5, ''::bytea),"
    " coalesce($6, ''::bytea), coalesce($7, 0))"
    " ON CONFLICT (tenant_id) DO UPDATE SET workflow_secret = coalesce($2, ghl_settings.workflow_secret),"
    " field_map_json = coalesce($3, ghl_settings.field_map_json), active = coalesce($4, ghl_settings.active),"
    " hot_pipeline_id = coalesce($5, ghl_settings.hot_pipeline_id),"
    " hot_stage_id = coalesce($6, ghl_settings.hot_stage_id),"
    " uninstalled_at = coalesce($7, ghl_settings.uninstalled_at)";
constexpr const char* kSelectGhlSettings =
    "SELECT tenant_id, workflow_secret, field_map_json, active, hot_pipeline_id, hot_stage_id, uninstalled_at"
    " FROM ghl_settings WHERE tenant_id = $1";

constexpr const char* kInsertUpdate =
    "INSERT INTO ghl_outbox (tenant_id, contact_id, kind, payload_json, created_at, status, attempts,"
    " next_attempt_at, error) VALUES ($1, $2, $3, $4, $5, 'pending', 0, $5, '') RETURNING update_id";
constexpr const char* kUpdateColumns =
    "SELECT update_id, tenant_id, contact_id, kind, payload_json, created_at, status, attempts, next_attempt_at,"
    " error FROM ghl_outbox ";
constexpr const char* kRecordUpdateAttempt =
    "UPDATE ghl_outbox SET status = $3, error = $4, next_attempt_at = $5, attempts = attempts + 1"
    " WHERE tenant_id = $1 AND update_id = $2";
constexpr const char* kUpsertGhlToken =
    "INSERT INTO ghl_tokens (tenant_id, kind, sealed_access_token, sealed_refresh_token, expires_at, updated_at)"
    " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id) DO UPDATE SET kind = excluded.kind,"
    " sealed_access_token = excluded.sealed_access_token, sealed_refresh_token = excluded.sealed_refresh_token,"
    " expires_at = excluded.expires_at, updated_at = excluded.updated_at, refused_at = 0, refused_error = ''::bytea";
constexpr const char* kSelectGhlToken =
    "SELECT tenant_id, kind, sealed_access_token, sealed_refresh_token, expires_at, updated_at, refused_at,"
    " refused_error FROM ghl_tokens WHERE tenant_id = $1";
constexpr const char* kMarkGhlTokenRefused =
    "UPDATE ghl_tokens SET refused_at = $3, refused_error = $4"
    " WHERE tenant_id = $1 AND sealed_refresh_token = $2 AND refused_at = 0";
constexpr const char* kUpsertContactState =
    "INSERT INTO ghl_contact_states (tenant_id, contact_id, score, band, updated_at) VALUES ($1, $2, $3, $4, $5)"
    " ON CONFLICT (tenant_id, contact_id) DO UPDATE SET score = excluded.score, band = excluded.band,"
    " updated_at = excluded.updated_at";
constexpr const char* kSelectContactStates =
    "SELECT tenant_id, contact_id, score, band, updated_at FROM ghl_contact_states WHERE tenant_id = $1"
    " ORDER BY contact_id";
constexpr const char* kUpsertCustomField =
    "INSERT INTO ghl_custom_fields (tenant_id, location_id, field_key, field_id) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (tenant_id, location_id, field_key) DO UPDATE SET field_id = excluded.field_id";
constexpr const char* kSelectCustomField =
    "SELECT tenant_id, location_id, field_key, field_id FROM ghl_custom_fields"
    " WHERE tenant_id = $1 AND location_id = $2 AND field_key = $3";
constexpr const char* kUpsertSyncCursor =
    "INSERT INTO ghl_sync_cursors (tenant_id, resource, cursor, fetched, done, updated_at)"
    " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, resource) DO UPDATE SET cursor = excluded.cursor,"
    " fetched = excluded.fetched, done = excluded.done, updated_at = excluded.updated_at";
constexpr const char* kSelectSyncCursor =
    "SELECT tenant_id, resource, cursor, fetched, done, updated_at FROM ghl_sync_cursors"
    " WHERE tenant_id = $1 AND resource = $2";
constexpr const char* kUpsertListing =
    "INSERT INTO listings (tenant_id, listing_id, list_price, attributes_json, valuation_json, updated_at)"
    " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, listing_id) DO UPDATE SET"
    " list_price = excluded.list_price, attributes_json = excluded.attributes_json,"
    " valuation_json = excluded.valuation_json, updated_at = excluded.updated_at";
constexpr const char* kBumpListingsVersion =
    "INSERT INTO listing_versions (tenant_id, version) VALUES ($1, 1) ON CONFLICT (tenant_id) DO UPDATE SET"
    " version = listing_versions.version + 1";
constexpr const char* kSelectListingsVersion = "SELECT version FROM listing_versions WHERE tenant_id = $1";
constexpr const char* kListingColumns =
    "SELECT tenant_id, listing_id, list_price, attributes_json, valuation_json, updated_at FROM listings ";

// Serializes migrations of several instances starting at once ("reai" in ASCII).
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(1919246697)";
// Serializes the first score rows of instances starting at once (held to
// commit: who waits checks after the other's rows are in).
constexpr const char* kFirstScoresLock = "SELECT pg_advisory_xact_lock(1919246698)";

std::int64_t capped(std::size_t limit) {
  return static_cast<std::int64_t>(std::min<std::size_t>(limit, INT64_MAX));
}

PgParams contact_params(const Contact& c) {
  PgParams p;
  p.bytes(c.tenant_id).bytes(c.contact_id).int8(static_cast<std::int64_t>(c.created_at)).bytes(c.source);
  p.bytes(lead_type_name(c.lead_type)).bytes(c.assigned_agent_id).float8(c.budget).int8(c.timeline_months);
  p.boolean(c.pre_approved).int8(c.beds_wanted).bytes(c.area_wanted).boolean(c.has_phone).boolean(c.has_email);
  p.int8(static_cast<std::int64_t>(c.budget_stated_at));
  return p;
}

std::optional<int> optional_int(const PgResult& r, int row, int col) {
  auto v = r.optional_int8(row, col);
  if (!v) return std::nullopt;
  return static_cast<int>(*v);
}

Contact read_contact(const PgResult& r, int i) {
  Contact c;
  c.tenant_id = r.bytes(i, 0);
  c.contact_id = r.bytes(i, 1);
  c.created_at = r.int8(i, 2);
  c.source = r.bytes(i, 3);
  c.lead_type = parse_lead_type(r.bytes(i, 4));
  c.assigned_agent_id = r.bytes(i, 5);
  c.budget = r.optional_float8(i, 6);
  c.timeline_months = optional_int(r, i, 7);
  c.pre_approved = r.optional_boolean(i, 8);
  c.beds_wanted = optional_int(r, i, 9);
  c.area_wanted = r.bytes(i, 10);
  c.has_phone = r.optional_boolean(i, 11);
  c.has_email = r.optional_boolean(i, 12);
  c.budget_stated_at = r.int8(i, 13);
  return c;
}

PgParams event_params(const Event& e) {
  PgParams p;
  p.bytes(e.tenant_id).bytes(e.event_id).bytes(e.contact_id).int8(static_cast<std::int64_t>(e.ts));
  p.bytes(event_type_name(e.type)).bytes(e.property_id).float8(e.value);
  return p;
}

Result<Event> read_event(const PgResult& r, int i) {
  Event e;
  e.tenant_id = r.bytes(i, 0);
  e.event_id = r.bytes(i, 1);
  e.contact_id = r.bytes(i, 2);
  e.ts = r.int8(i, 3);
  std::string type = r.bytes(i, 4);
  auto parsed = parse_event_type(type);
  if (!parsed) return internal_error("stored event " + e.event_id + " has unknown type '" + type + "'");
  e.type = *parsed;
  e.property_id = r.bytes(i, 5);
  e.value = r.optional_float8(i, 6);
  return e;
}

// ------------------------------------------------ read_new_events' margin
//
// A position (seq) is drawn when a row is inserted, so rows commit out of
// position order. A row a read could not see (its transaction still running)
// but below a position it reached shows later. Which positions can that be?
// A transaction running at read k has an id >= that read's snapshot xmin.
// Take m, the latest read whose snapshot xmax <= that xmin: every such
// transaction got its id after read m's snapshot, so its rows draw positions
// above every position committed by then, i.e. above read m's position. One
// read further back (m - 1) for the moment between drawing a position and
// getting an id (the id comes with the row's insertion, just after): the
// next read starts above read m - 1's position and skips the positions it
// read already. Snapshot xmin never goes back, so later reads' m never
// does either.

struct Snapshot {
  std::uint64_t oldest_running = 0;  // xmin
  std::uint64_t next_xid = 0;        // xmax
};

// Notes `position` as read; false when it was read already.
bool note_read(EventCursor& cursor, std::int64_t position) {
  auto& above = cursor.read_above;
  if (position > cursor.position) {
    cursor.position = position;
    above.push_back(position);
    return true;
  }
  if (position <= cursor.settled) return false;
  const auto at = std::lower_bound(above.begin(), above.end(), position);
  if (at != above.end() && *at == position) return false;
  above.insert(at, position);  // a late commit
  return true;
}

void settle(EventCursor& cursor, const Snapshot& snapshot) {
  auto& h = cursor.horizons;
  h.push_back({snapshot.next_xid, cursor.position});
  std::size_t m = h.size();
  while (m > 0 && h[m - 1].next_xid > snapshot.oldest_running) --m;
  if (m >= 2) {  // read m - 1 is h[m - 1]; its predecessor h[m - 2]
    cursor.settled = std::max(cursor.settled, h[m - 2].position);
    h.erase(h.begin(), h.begin() + static_cast<std::ptrdiff_t>(m - 2));
  }
  if (h.size() > Store::kMaxHorizons) h.erase(h.begin(), h.end() - static_cast<std::ptrdiff_t>(Store::kMaxHorizons));
  auto& above = cursor.read_above;
  if (above.size() > Store::kMaxReadAbove) {
    // A transaction open that long: its oldest positions count as read.
    cursor.settled = std::max(cursor.settled, above[above.size() - Store::kMaxReadAbove - 1]);
  }
  above.erase(above.begin(), std::upper_bound(above.begin(), above.end(), cursor.settled));
}

PgParams stage_params(const OpportunityStage& o) {
  PgParams p;
  p.bytes(o.tenant_id).bytes(o.opportunity_id).bytes(o.contact_id).bytes(o.agent_id).float8(o.monetary_value);
  p.int8(static_cast<std::int64_t>(o.ts)).bytes(stage_name(o.stage));
  return p;
}

Result<OpportunityStage> read_stage(const PgResult& r, int i) {
  OpportunityStage o;
  o.tenant_id = r.bytes(i, 0);
  o.opportunity_id = r.bytes(i, 1);
  o.contact_id = r.bytes(i, 2);
  o.agent_id = r.bytes(i, 3);
  o.monetary_value = r.float8(i, 4);
  o.ts = r.int8(i, 5);
  std::string stage = r.bytes(i, 6);
  auto parsed = parse_stage(stage);
  if (!parsed) return internal_error("stored opportunity " + o.opportunity_id + " has unknown stage '" + stage + "'");
  o.stage = *parsed;
  return o;
}

PgParams score_params(const ScoreRecord& s) {
  PgParams p;
  p.bytes(s.tenant_id).bytes(s.contact_id).int8(static_cast<std::int64_t>(s.ts)).float8(s.probability);
  p.int8(static_cast<std::int64_t>(s.score)).bytes(s.band).bytes(s.model_version).bytes(s.reasons_json);
  p.int8(s.lead_order);
  return p;
}

ScoreRecord read_score(const PgResult& r, int i) {
  return ScoreRecord{r.bytes(i, 0), r.bytes(i, 1), r.int8(i, 2), r.float8(i, 3), static_cast<int>(r.int8(i, 4)),
                     r.bytes(i, 5), r.bytes(i, 6), r.bytes(i, 7), r.int8(i, 8)};
}

Tenant read_tenant(const PgResult& r, int i) { return Tenant{r.bytes(i, 0), r.bytes(i, 1), r.int8(i, 2), r.bytes(i, 3)}; }

ModelRecord read_model(const PgResult& r, int i) {
  return ModelRecord{r.bytes(i, 0), r.bytes(i, 1), r.bytes(i, 2), r.bytes(i, 3), r.bytes(i, 4), r.int8(i, 5)};
}

GhlDelivery read_delivery(const PgResult& r, int i) {
  GhlDelivery d;
  d.delivery_id = r.int8(i, 0);
  d.tenant_id = r.bytes(i, 1);
  d.location_id = r.bytes(i, 2);
  d.webhook_id = r.bytes(i, 3);
  d.kind = r.bytes(i, 4);
  d.received_at = r.int8(i, 5);
  d.body = r.bytes(i, 6);
  d.status = parse_delivery_status(r.bytes(i, 7)).value_or(DeliveryStatus::kFailed);
  d.error = r.bytes(i, 8);
  d.attempts = static_cast<int>(r.int8(i, 9));
  return d;
}

GhlUpdate read_update(const PgResult& r, int i) {
  GhlUpdate u;
  u.update_id = r.int8(i, 0);
  u.tenant_id = r.bytes(i, 1);
  u.contact_id = r.bytes(i, 2);
  u.kind = r.bytes(i, 3);
  u.payload_json = r.bytes(i, 4);
  u.created_at = r.int8(i, 5);
  u.status = parse_outbox_status(r.bytes(i, 6)).value_or(OutboxStatus::kFailed);
  u.attempts = static_cast<int>(r.int8(i, 7));
  u.next_attempt_at = r.int8(i, 8);
  u.error = r.bytes(i, 9);
  return u;
}

// The unnest() arrays of one contacts INSERT.
PgParams contacts_batch_params(std::span<const Contact> contacts) {
  PgArray tenant(kByteaOid), id(kByteaOid), created(kInt8Oid), source(kByteaOid), type(kByteaOid), agent(kByteaOid),
      budget(kFloat8Oid), timeline(kInt8Oid), pre_approved(kBoolOid), beds(kInt8Oid), area(kByteaOid),
      phone(kBoolOid), email(kBoolOid), stated_at(kInt8Oid);
  for (const Contact& c : contacts) {
    tenant.bytes(c.tenant_id);
    id.bytes(c.contact_id);
    created.int8(static_cast<std::int64_t>(c.created_at));
    source.bytes(c.source);
    type.bytes(lead_type_name(c.lead_type));
    agent.bytes(c.assigned_agent_id);
    budget.float8(c.budget);
    timeline.int8(c.timeline_months);
    pre_approved.boolean(c.pre_approved);
    beds.int8(c.beds_wanted);
    area.bytes(c.area_wanted);
    phone.boolean(c.has_phone);
    email.boolean(c.has_email);
    stated_at.int8(static_cast<std::int64_t>(c.budget_stated_at));
  }
  PgParams p;
  p.array(kByteaArrayOid, tenant.encode()).array(kByteaArrayOid, id.encode()).array(kInt8ArrayOid, created.encode());
  p.array(kByteaArrayOid, source.encode()).array(kByteaArrayOid, type.encode()).array(kByteaArrayOid, agent.encode());
  p.array(kFloat8ArrayOid, budget.encode()).array(kInt8ArrayOid, timeline.encode());
  p.array(kBoolArrayOid, pre_approved.encode()).array(kInt8ArrayOid, beds.encode());
  p.array(kByteaArrayOid, area.encode()).array(kBoolArrayOid, phone.encode()).array(kBoolArrayOid, email.encode());
  p.array(kInt8ArrayOid, stated_at.encode());
  return p;
}

// The unnest() arrays of one events INSERT.
PgParams events_batch_params(std::span<const Event> events) {
  PgArray tenant(kByteaOid), id(kByteaOid), contact(kByteaOid), ts(kInt8Oid), type(kByteaOid),
      property(kByteaOid), value(kFloat8Oid);
  for (const Event& e : events) {
    tenant.bytes(e.tenant_id);
    id.bytes(e.event_id);
    contact.bytes(e.contact_id);
    ts.int8(e.ts);
    type.bytes(event_type_name(e.type));
    property.bytes(e.property_id);
    value.float8(e.value);
  }
  PgParams p;
  p.array(kByteaArrayOid, tenant.encode()).array(kByteaArrayOid, id.encode()).array(kByteaArrayOid, contact.encode());
  p.array(kInt8ArrayOid, ts.encode()).array(kByteaArrayOid, type.encode()).array(kByteaArrayOid, property.encode());
  p.array(kFloat8ArrayOid, value.encode());
  return p;
}

PgParams scores_batch_params(std::span<const ScoreRecord> scores) {
  PgArray tenant(kByteaOid), contact(kByteaOid), ts(kInt8Oid), probability(kFloat8Oid), score(kInt8Oid),
      band(kByteaOid), model(kByteaOid), reasons(kByteaOid), order(kInt8Oid);
  for (const ScoreRecord& s : scores) {
    tenant.bytes(s.tenant_id);
    contact.bytes(s.contact_id);
    ts.int8(s.ts);
    probability.float8(s.probability);
    score.int8(s.score);
    band.bytes(s.band);
    model.bytes(s.model_version);
    reasons.bytes(s.reasons_json);
    order.int8(s.lead_order);
  }
  PgParams p;
  p.array(kByteaArrayOid, tenant.encode()).array(kByteaArrayOid, contact.encode()).array(kInt8ArrayOid, ts.encode());
  p.array(kFloat8ArrayOid, probability.encode()).array(kInt8ArrayOid, score.encode());
  p.array(kByteaArrayOid, band.encode()).array(kByteaArrayOid, model.encode()).array(kByteaArrayOid, reasons.encode());
  p.array(kInt8ArrayOid, order.encode());
  return p;
}

// Answer i: true when rows[i] is the first of its (tenant, id) in the batch
// and the INSERT returned that key (its first two columns).
template <class Row, class Id>
std::vector<bool> first_returned(std::span<const Row> rows, const PgResult& inserted, Id id) {
  std::map<std::pair<std::string, std::string>, bool> fresh;  // key -> not yet claimed
  for (int i = 0; i < inserted.rows(); ++i) fresh[{inserted.bytes(i, 0), inserted.bytes(i, 1)}] = true;
  std::vector<bool> out;
  out.reserve(rows.size());
  for (const Row& row : rows) {
    auto it = fresh.find({row.tenant_id, id(row)});
    bool written = it != fresh.end() && it->second;
    if (written) it->second = false;
    out.push_back(written);
  }
  return out;
}

std::vector<bool> answers_from(std::span<const Event> events, const PgResult& inserted) {
  return first_returned(events, inserted, [](const Event& e) -> const std::string& { return e.event_id; });
}

std::vector<bool> created_from(std::span<const Contact> contacts, const PgResult& inserted) {
  return first_returned(contacts, inserted, [](const Contact& c) -> const std::string& { return c.contact_id; });
}

// Inside write_lead's transaction: event_id_of_another_lead for the first
// of `events` not `written` whose id is stored under another lead. The
// insert that found the id waited for its writer's commit, so this read
// (a new statement, read committed) sees that row.
Status refuse_ids_of_other_leads(PgSession& session, std::span<const Event> events, const std::vector<bool>& written) {
  PgArray tenant(kByteaOid), id(kByteaOid);
  std::vector<std::size_t> asked;
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (written[i]) continue;
    tenant.bytes(events[i].tenant_id);
    id.bytes(events[i].event_id);
    asked.push_back(i);
  }
  if (asked.empty()) return Status::ok();
  PgParams p;
  p.array(kByteaArrayOid, tenant.encode()).array(kByteaArrayOid, id.encode());
  auto r = session.exec(kSelectStoredEventContacts, p);
  if (!r) return r.status();
  std::vector<std::string> owner(asked.size());
  for (int i = 0; i < r->rows(); ++i) owner[static_cast<std::size_t>(r->int8(i, 0) - 1)] = r->bytes(i, 1);
  for (std::size_t k = 0; k < asked.size(); ++k) {
    const Event& e = events[asked[k]];
    if (owner[k].empty()) return internal_error("event_id '" + e.event_id + "' refused as stored but not found");
    if (owner[k] != e.contact_id) return event_id_of_another_lead(e);
  }
  return Status::ok();
}

class PostgresStore final : public Store {
 public:
  explicit PostgresStore(std::unique_ptr<PgPool> pool) : pool_(std::move(pool)) {}

  Status upsert_tenant(const Tenant& t) override {
    REAI_RETURN_IF_ERROR(validate(t));
    // Two instances linking one location at once: the unique index refuses
    // the second write; this check names the holder in the usual case.
    REAI_RETURN_IF_ERROR(check_ghl_location_free(t, find_tenant_by_ghl_location(t.ghl_location_id)));
    PgParams p;
    p.bytes(t.tenant_id).bytes(t.name).int8(static_cast<std::int64_t>(t.created_at)).bytes(t.ghl_location_id);
    return write(kUpsertTenant, p);
  }

  Result<Tenant> get_tenant(const std::string& tenant_id) override {
    PgParams p;
    p.bytes(tenant_id);
    auto r = query(std::string(kTenantColumns) + "WHERE tenant_id = $1", p);
    if (!r) return r.status();
    if (r->rows() == 0) return not_found("tenant '" + tenant_id + "' not found");
    return read_tenant(*r, 0);
  }

  Result<std::vector<Tenant>> list_tenants() override {
    auto r = query(std::string(kTenantColumns) + "ORDER BY tenant_id", PgParams());
    if (!r) return r.status();
    return rows_of<Tenant>(*r, read_tenant);
  }

  Status upsert_contact(const Contact& contact) override {
    REAI_RETURN_IF_ERROR(validate(contact));
    return write(kUpsertContact, contact_params(contact));
  }

  Result<Contact> get_contact(const std::string& tenant_id, const std::string& contact_id) override {
    PgParams p;
    p.bytes(tenant_id).bytes(contact_id);
    auto r = query(std::string(kContactColumns) + "WHERE tenant_id = $1 AND contact_id = $2", p);
    if (!r) return r.status();
    if (r->rows() == 0) return not_found("contact '" + contact_id + "' not found");
    return read_contact(*r, 0);
  }

  Result<bool> append_event(const Event& event) override {
    REAI_RETURN_IF_ERROR(validate(event));
    auto r = query(kInsertEvent, event_params(event));
    if (!r) return r.status();
    return r->affected() > 0;
  }

  Result<std::vector<bool>> append_batch(std::span<const Event> events, std::span<const ScoreRecord> scores,
                                         std::span<const Contact> new_contacts,
                                         std::vector<bool>* contacts_created) override {
    REAI_RETURN_IF_ERROR(validate_batch(new_contacts, events, scores));
    if (events.empty() && scores.empty() && new_contacts.empty()) return std::vector<bool>();
    auto session = pool_->acquire();
    if (!session) return session.status();
    std::vector<bool> written, created;
    Status status = session->transaction([&]() -> Status {
      written.clear();
      created.clear();
      if (!events.empty()) {
        auto inserted = session->exec(kInsertEvents, events_batch_params(events));
        if (!inserted) return inserted.status();
        written = answers_from(events, *inserted);
      }
      // After the events: a lead whose every event was refused gets no row.
      // One statement for all of them: a batch of new leads introduces a
      // contact per event, and a statement each was a round trip each.
      created.assign(new_contacts.size(), false);
      const std::vector<bool> keep = contacts_to_insert(new_contacts, events, written);
      std::vector<Contact> kept;
      std::vector<std::size_t> kept_at;
      for (std::size_t i = 0; i < new_contacts.size(); ++i) {
        if (!keep[i]) continue;
        kept.push_back(new_contacts[i]);
        kept_at.push_back(i);
      }
      if (!kept.empty()) {
        auto inserted = session->exec(kInsertContactsIfAbsent, contacts_batch_params(kept));
        if (!inserted) return inserted.status();
        const std::vector<bool> kept_created = created_from(kept, *inserted);
        for (std::size_t j = 0; j < kept.size(); ++j) created[kept_at[j]] = kept_created[j];
      }
      if (scores.empty()) return Status::ok();
      auto rows = session->exec(kInsertScores, scores_batch_params(scores));
      return rows ? Status::ok() : rows.status();
    });
    if (!status.is_ok()) return status;
    if (contacts_created) *contacts_created = std::move(created);
    return written;
  }

  Result<std::vector<std::string>> stored_event_contacts(std::span<const Event> events) override {
    std::vector<std::string> out(events.size());
    if (events.empty()) return out;
    PgArray tenant(kByteaOid), id(kByteaOid);
    for (const Event& e : events) {
      tenant.bytes(e.tenant_id);
      id.bytes(e.event_id);
    }
    PgParams p;
    p.array(kByteaArrayOid, tenant.encode()).array(kByteaArrayOid, id.encode());
    auto r = query(kSelectStoredEventContacts, p);
    if (!r) return r.status();
    for (int i = 0; i < r->rows(); ++i) out[static_cast<std::size_t>(r->int8(i, 0) - 1)] = r->bytes(i, 1);
    return out;
  }

  Result<LeadWritten> write_lead(const LeadWrite& write) override {
    REAI_RETURN_IF_ERROR(validate(write));
    auto session = pool_->acquire();
    if (!session) return session.status();
    LeadWritten out;
    Status status = session->transaction([&]() -> Status {
      out = LeadWritten();
      const std::span<const Contact> lead(&write.contact, 1);
      auto created = session->exec(kInsertContactsIfAbsent, contacts_batch_params(lead));
      if (!created) return created.status();
      out.contact_created = created->rows() > 0;
      if (write.replace_contact && !out.contact_created) {
        auto replaced = session->exec(kUpsertContact, contact_params(write.contact));
        if (!replaced) return replaced.status();
      }
      if (!write.events.empty()) {
        auto inserted = session->exec(kInsertEvents, events_batch_params(write.events));
        if (!inserted) return inserted.status();
        out.events = answers_from(write.events, *inserted);
        REAI_RETURN_IF_ERROR(refuse_ids_of_other_leads(*session, write.events, out.events));
      }
      for (const OpportunityStage& o : write.stages) {
        auto r = session->exec(kInsertStage, stage_params(o));
        if (!r) return r.status();
        out.stages.push_back(r->affected() > 0);
      }
      return Status::ok();
    });
    if (!status.is_ok()) return status;
    return out;
  }

  Result<bool> append_stage(const OpportunityStage& stage) override {
    REAI_RETURN_IF_ERROR(validate(stage));
    auto r = query(kInsertStage, stage_params(stage));
    if (!r) return r.status();
    return r->affected() > 0;
  }

  Result<ImportCounts> import_history(const std::vector<Contact>& contacts, const std::vector<Event>& events,
                                      const std::vector<OpportunityStage>& stages) override {
    for (const Contact& c : contacts) REAI_RETURN_IF_ERROR(with_row(validate(c), "contact", c.contact_id));
    for (const Event& e : events) REAI_RETURN_IF_ERROR(with_row(validate(e), "event", e.event_id));
    for (const OpportunityStage& o : stages) {
      REAI_RETURN_IF_ERROR(with_row(validate(o), "opportunity stage", o.opportunity_id));
    }
    auto session = pool_->acquire();
    if (!session) return session.status();
    ImportCounts counts;
    Status status = session->transaction([&]() -> Status {
      counts = ImportCounts();
      return import_locked(*session, contacts, events, stages, &counts);
    });
    if (!status.is_ok()) return status;
    return counts;
  }

  Status for_each_contact(const std::string& tenant_id, const std::function<bool(const Contact&)>& fn) override {
    PgParams p;
    p.bytes(tenant_id);
    return stream(std::string(kContactColumns) + "WHERE tenant_id = $1 ORDER BY contact_id", p,
                  [&](const PgResult& r) -> Result<bool> { return fn(read_contact(r, 0)); });
  }

  Status for_each_event(const std::string& tenant_id, const std::function<bool(const Event&)>& fn) override {
    PgParams p;
    p.bytes(tenant_id);
    return stream(std::string(kEventColumns) + "WHERE tenant_id = $1 ORDER BY ts, seq", p,
                  [&](const PgResult& r) -> Result<bool> {
                    auto event = read_event(r, 0);
                    if (!event) return event.status();
                    return fn(*event);
                  });
  }

  Status for_each_event_after(const std::string& tenant_id, std::int64_t after,
                              const std::function<bool(std::int64_t, const Event&)>& fn) override {
    PgParams p;
    p.bytes(tenant_id).int8(after);
    return stream("SELECT tenant_id, event_id, contact_id, ts, type, property_id, value, seq FROM events"
                  " WHERE tenant_id = $1 AND seq > $2 ORDER BY seq",
                  p, [&](const PgResult& r) -> Result<bool> {
                    auto event = read_event(r, 0);
                    if (!event) return event.status();
                    return fn(r.int8(0, 7), *event);
                  });
  }

  Status read_new_events(const std::string& tenant_id, EventCursor& cursor,
                         const std::function<void(const Event&)>& fn) override {
    if (cursor.horizons.empty()) REAI_RETURN_IF_ERROR(seed_horizon(tenant_id, cursor));
    PgParams p;
    p.bytes(tenant_id).int8(cursor.settled);
    std::optional<Snapshot> snapshot;
    REAI_RETURN_IF_ERROR(stream(kSelectNewEvents, p, [&](const PgResult& r) -> Result<bool> {
      if (!snapshot) snapshot = Snapshot{static_cast<std::uint64_t>(r.int8(0, 8)), static_cast<std::uint64_t>(r.int8(0, 9))};
      if (r.null(0, 7)) return true;  // no event: the snapshot alone
      const std::int64_t position = r.int8(0, 7);
      if (!note_read(cursor, position)) return true;  // counted by an earlier read
      auto event = read_event(r, 0);
      if (!event) return event.status();
      fn(*event);
      return true;
    }));
    if (snapshot) settle(cursor, *snapshot);
    return Status::ok();
  }

  Status for_each_stage(const std::string& tenant_id,
                        const std::function<bool(const OpportunityStage&)>& fn) override {
    PgParams p;
    p.bytes(tenant_id);
    return stream(std::string(kStageColumns) + "WHERE tenant_id = $1 ORDER BY ts, seq", p,
                  [&](const PgResult& r) -> Result<bool> {
                    auto stage = read_stage(r, 0);
                    if (!stage) return stage.status();
                    return fn(*stage);
                  });
  }

  Result<std::vector<Event>> events_for_contact(const std::string& tenant_id,
                                                const std::string& contact_id) override {
    PgParams p;
    p.bytes(tenant_id).bytes(contact_id);
    auto r = query(std::string(kEventColumns) + "WHERE tenant_id = $1 AND contact_id = $2 ORDER BY ts, seq", p);
    if (!r) return r.status();
    std::vector<Event> out;
    for (int i = 0; i < r->rows(); ++i) {
      auto event = read_event(*r, i);
      if (!event) return event.status();
      out.push_back(std::move(*event));
    }
    return out;
  }

  Status append_score(const ScoreRecord& record) override {
    REAI_RETURN_IF_ERROR(validate(record));
    return write(kInsertScore, score_params(record));
  }

  Status append_scores(std::span<const ScoreRecord> records) override {
    for (const ScoreRecord& r : records) REAI_RETURN_IF_ERROR(validate(r));
    if (records.empty()) return Status::ok();
    // One statement: atomic without an explicit transaction.
    return write(kInsertScores, scores_batch_params(records));
  }

  Result<std::vector<bool>> append_first_scores(std::span<const ScoreRecord> records) override {
    for (const ScoreRecord& r : records) REAI_RETURN_IF_ERROR(validate(r));
    if (records.empty()) return std::vector<bool>();
    auto session = pool_->acquire();
    if (!session) return session.status();
    std::vector<bool> written;
    // Under READ COMMITTED a check and an insert in one statement still race
    // another instance's: the lock makes the second wait for the first's commit.
    Status status = session->transaction([&]() -> Status {
      REAI_RETURN_IF_ERROR(session->exec_simple(kFirstScoresLock));
      auto inserted = session->exec(kInsertFirstScores, scores_batch_params(records));
      if (!inserted) return inserted.status();
      written = first_returned(records, *inserted, [](const ScoreRecord& r) -> const std::string& { return r.contact_id; });
      return Status::ok();
    });
    if (!status.is_ok()) return status;
    return written;
  }

  Result<std::vector<std::string>> contacts_without_scores(const std::string& tenant_id) override {
    PgParams p;
    p.bytes(tenant_id);
    auto r = query(
        "SELECT contact_id FROM contacts c WHERE tenant_id = $1 AND NOT EXISTS"
        " (SELECT 1 FROM scores s WHERE s.tenant_id = c.tenant_id AND s.contact_id = c.contact_id)"
        " ORDER BY contact_id",
        p);
    if (!r) return r.status();
    return rows_of<std::string>(*r, [](const PgResult& rows, int i) { return rows.bytes(i, 0); });
  }

  Result<std::vector<ScoreRecord>> score_history(const std::string& tenant_id, const std::string& contact_id,
                                                 std::size_t limit) override {
    PgParams p;
    p.bytes(tenant_id).bytes(contact_id).int8(capped(limit));
    auto r = query(kSelectScores, p);
    if (!r) return r.status();
    return rows_of<ScoreRecord>(*r, read_score);
  }

  Status record_model(const ModelRecord& m) override {
    REAI_RETURN_IF_ERROR(validate(m));
    PgParams p;
    p.bytes(m.tenant_id).bytes(m.kind).bytes(m.version).bytes(m.path).bytes(m.metrics_json);
    p.int8(static_cast<std::int64_t>(m.created_at));
    return write(kUpsertModel, p);
  }

  Result<std::vector<ModelRecord>> list_models(const std::string& tenant_id, const std::string& kind) override {
    PgParams p;
    p.bytes(tenant_id).bytes(kind);
    auto r = query(kSelectModels, p);
    if (!r) return r.status();
    return rows_of<ModelRecord>(*r, read_model);
  }

  Result<Tenant> find_tenant_by_ghl_location(const std::string& location_id) override {
    if (!location_id.empty()) {
      PgParams p;
      p.bytes(location_id);
      auto r = query(std::string(kTenantColumns) + "WHERE ghl_location_id = $1 ORDER BY tenant_id LIMIT 1", p);
      if (!r) return r.status();
      if (r->rows() > 0) return read_tenant(*r, 0);
    }
    return not_found("no tenant linked to GHL location '" + location_id + "'");
  }

  Result<std::optional<std::int64_t>> record_ghl_delivery(const GhlDelivery& d) override {
    REAI_RETURN_IF_ERROR(validate(d));
    PgParams p;
    p.bytes(d.tenant_id).bytes(d.location_id).bytes(d.webhook_id).bytes(d.kind);
    p.int8(static_cast<std::int64_t>(d.received_at)).bytes(d.body);
    auto r = query(kInsertDelivery, p);
    if (!r) return r.status();
    if (r->rows() == 0) return std::optional<std::int64_t>();
    return std::optional<std::int64_t>(r->int8(0, 0));
  }

  Result<GhlDelivery> get_ghl_delivery(const std::string& tenant_id, std::int64_t delivery_id) override {
    PgParams p;
    p.bytes(tenant_id).int8(delivery_id);
    auto r = query(std::string(kDeliveryColumns) + "WHERE tenant_id = $1 AND delivery_id = $2", p);
    if (!r) return r.status();
    if (r->rows() == 0) return not_found("delivery " + std::to_string(delivery_id) + " not found");
    return read_delivery(*r, 0);
  }

  Result<std::vector<GhlDelivery>> list_ghl_deliveries(const std::string& tenant_id, DeliveryStatus status,
                                                       std::size_t limit) override {
    PgParams p;
    p.bytes(tenant_id).bytes(delivery_status_name(status)).int8(capped(limit));
    auto r = query(std::string(kDeliveryColumns) +
                       "WHERE tenant_id = $1 AND status = $2 ORDER BY delivery_id LIMIT $3",
                   p);
    if (!r) return r.status();
    return rows_of<GhlDelivery>(*r, read_delivery);
  }

  Status set_ghl_delivery_status(const std::string& tenant_id, std::int64_t delivery_id, DeliveryStatus status,
                                 const std::string& error, bool count_attempt) override {
    PgParams p;
    p.bytes(tenant_id).int8(delivery_id).bytes(delivery_status_name(status)).bytes(error);
    p.int8(static_cast<std::int64_t>(count_attempt ? 1 : 0));
    auto r = query(kSetDeliveryStatus, p);
    if (!r) return r.status();
    if (r->affected() == 0) return not_found("delivery " + std::to_string(delivery_id) + " not found");
    return Status::ok();
  }

  Status update_ghl_settings(const std::string& tenant_id, const GhlSettingsChange& change) override {
    REAI_RETURN_IF_ERROR(validate(tenant_id, change));
    PgParams p;
    p.bytes(tenant_id).optional_bytes(change.workflow_secret).optional_bytes(change.field_map_json);
    p.boolean(change.active);
    const auto& hot = change.hot_stage;
    p.optional_bytes(hot ? std::optional<std::string_view>(hot->pipeline_id) : std::nullopt);
    p.optional_bytes(hot ? std::optional<std::string_view>(hot->stage_id) : std::nullopt);
    if (change.uninstalled_at) {
      p.int8(static_cast<std::int64_t>(*change.uninstalled_at));
    } else {
      p.int8(std::optional<int>());  // NULL: keep the stored value
    }
    return write(kUpdateGhlSettings, p);
  }

  Result<GhlSettings> get_ghl_settings(const std::string& tenant_id) override {
    PgParams p;
    p.bytes(tenant_id);
    auto r = query(kSelectGhlSettings, p);
    if (!r) return r.status();
    if (r->rows() == 0) return not_found("no GHL settings for tenant '" + tenant_id + "'");
    return GhlSettings{r->bytes(0, 0), r->bytes(0, 1), r->bytes(0, 2), r->boolean(0, 3),
                       r->bytes(0, 4), r->bytes(0, 5), r->int8(0, 6)};
  }

  Result<std::int64_t> enqueue_ghl_update(const GhlUpdate& u) override {
    REAI_RETURN_IF_ERROR(validate(u));
    PgParams p;
    p.bytes(u.tenant_id).bytes(u.contact_id).bytes(u.kind).bytes(u.payload_json);
    p.int8(static_cast<std::int64_t>(u.created_at));
    auto r = query(kInsertUpdate, p);
    if (!r) return r.status();
    return r->int8(0, 0);
  }

  Result<std::vector<std::int64_t>> enqueue_ghl_writeback(std::span<const GhlUpdate> updates,
                                                          std::span<const GhlContactState> states) override {
    for (const GhlUpdate& u : updates) REAI_RETURN_IF_ERROR(validate(u));
    for (const GhlContactState& st : states) REAI_RETURN_IF_ERROR(validate(st));
    std::vector<std::int64_t> ids;
    if (updates.empty() && states.empty()) return ids;
    auto session = pool_->acquire();
    if (!session) return session.status();
    Status status = session->transaction([&]() -> Status {
      ids.clear();
      for (const GhlUpdate& u : updates) {
        PgParams p;
        p.bytes(u.tenant_id).bytes(u.contact_id).bytes(u.kind).bytes(u.payload_json);
        p.int8(static_cast<std::int64_t>(u.created_at));
        auto r = session->exec(kInsertUpdate, p);
        if (!r) return r.status();
        ids.push_back(r->int8(0, 0));
      }
      for (const GhlContactState& st : states) {
        PgParams p;
        p.bytes(st.tenant_id).bytes(st.contact_id).int8(static_cast<std::int64_t>(st.score)).bytes(st.band);
        p.int8(static_cast<std::int64_t>(st.updated_at));
        auto r = session->exec(kUpsertContactState, p);
        if (!r) return r.status();
      }
      return Status::ok();
    });
    if (!status.is_ok()) return status;
    return ids;
  }

  Result<std::vector<GhlContactState>> list_ghl_contact_states(const std::string& tenant_id) override {
    PgParams p;
    p.bytes(tenant_id);
    auto r = query(kSelectContactStates, p);
    if (!r) return r.status();
    return rows_of<GhlContactState>(*r, [](const PgResult& r, int i) {
      return GhlContactState{r.bytes(i, 0), r.bytes(i, 1), static_cast<int>(r.int8(i, 2)), r.bytes(i, 3),
                             r.int8(i, 4)};
    });
  }

  Status put_ghl_custom_field(const GhlCustomField& f) override {
    REAI_RETURN_IF_ERROR(validate(f));
    PgParams p;
    p.bytes(f.tenant_id).bytes(f.location_id).bytes(f.field_key).bytes(f.field_id);
    return write(kUpsertCustomField, p);
  }

  Result<GhlCustomField> get_ghl_custom_field(const std::string& tenant_id, const std::string& location_id,
                                              const std::string& field_key) override {
    PgParams p;
    p.bytes(tenant_id).bytes(location_id).bytes(field_key);
    auto r = query(kSelectCustomField, p);
    if (!r) return r.status();
    if (r->rows() == 0) return not_found("no GHL custom field '" + field_key + "' for location '" + location_id + "'");
    return GhlCustomField{r->bytes(0, 0), r->bytes(0, 1), r->bytes(0, 2), r->bytes(0, 3)};
  }

  Status put_ghl_sync_cursor(const GhlSyncCursor& c) override {
    REAI_RETURN_IF_ERROR(validate(c));
    PgParams p;
    p.bytes(c.tenant_id).bytes(c.resource).bytes(c.cursor).int8(c.fetched).boolean(c.done);
    p.int8(static_cast<std::int64_t>(c.updated_at));
    return write(kUpsertSyncCursor, p);
  }

  Result<GhlSyncCursor> get_ghl_sync_cursor(const std::string& tenant_id, const std::string& resource) override {
    PgParams p;
    p.bytes(tenant_id).bytes(resource);
    auto r = query(kSelectSyncCursor, p);
    if (!r) return r.status();
    if (r->rows() == 0) return not_found("no GHL sync cursor for '" + resource + "'");
    return GhlSyncCursor{r->bytes(0, 0), r->bytes(0, 1), r->bytes(0, 2), r->int8(0, 3), r->boolean(0, 4),
                         r->int8(0, 5)};
  }

  Status put_ghl_token(const GhlToken& t) override {
    REAI_RETURN_IF_ERROR(validate(t));
    PgParams p;
    p.bytes(t.tenant_id).bytes(t.kind).bytes(t.sealed_access_token).bytes(t.sealed_refresh_token);
    p.int8(static_cast<std::int64_t>(t.expires_at)).int8(static_cast<std::int64_t>(t.updated_at));
    return write(kUpsertGhlToken, p);
  }

  Result<GhlToken> get_ghl_token(const std::string& tenant_id) override {
    PgParams p;
    p.bytes(tenant_id);
    auto r = query(kSelectGhlToken, p);
    if (!r) return r.status();
    if (r->rows() == 0) return not_found("no GHL token for tenant '" + tenant_id + "'");
    return GhlToken{r->bytes(0, 0), r->bytes(0, 1), r->bytes(0, 2), r->bytes(0, 3),
                    r->int8(0, 4), r->int8(0, 5), r->int8(0, 6), r->bytes(0, 7)};
  }

  Result<bool> mark_ghl_token_refused(const std::string& tenant_id, const std::string& sealed_refresh_token,
                                      UnixSeconds refused_at, const std::string& error) override {
    REAI_RETURN_IF_ERROR(validate_token_refusal(tenant_id, refused_at));
    PgParams p;
    p.bytes(tenant_id).bytes(sealed_refresh_token).int8(static_cast<std::int64_t>(refused_at)).bytes(error);
    auto r = query(kMarkGhlTokenRefused, p);
    if (!r) return r.status();
    return r->affected() > 0;
  }

  Status upsert_listings(std::span<const ListingRecord> listings) override {
    for (const ListingRecord& l : listings) REAI_RETURN_IF_ERROR(validate(l));
    if (listings.empty()) return Status::ok();
    auto session = pool_->acquire();
    if (!session) return session.status();
    return session->transaction([&]() -> Status {
      for (const ListingRecord& l : listings) {
        PgParams p;
        p.bytes(l.tenant_id).bytes(l.listing_id).float8(l.list_price).bytes(l.attributes_json);
        p.bytes(l.valuation_json).int8(static_cast<std::int64_t>(l.updated_at));
        auto r = session->exec(kUpsertListing, p);
        if (!r) return r.status();
      }
      for (const std::string& tenant : distinct_tenants(listings)) {
        PgParams p;
        p.bytes(tenant);
        auto r = session->exec(kBumpListingsVersion, p);
        if (!r) return r.status();
      }
      return Status::ok();
    });
  }

  Result<std::int64_t> listings_version(const std::string& tenant_id) override {
    PgParams p;
    p.bytes(tenant_id);
    auto r = query(kSelectListingsVersion, p);
    if (!r) return r.status();
    return r->rows() == 0 ? std::int64_t{0} : r->int8(0, 0);
  }

  Result<ListingRecord> get_listing(const std::string& tenant_id, const std::string& listing_id) override {
    PgParams p;
    p.bytes(tenant_id).bytes(listing_id);
    auto r = query(std::string(kListingColumns) + "WHERE tenant_id = $1 AND listing_id = $2", p);
    if (!r) return r.status();
    if (r->rows() == 0) return not_found("listing '" + listing_id + "' not found");
    return read_listing(*r, 0);
  }

  Status for_each_listing(const std::string& tenant_id,
                          const std::function<bool(const ListingRecord&)>& fn) override {
    PgParams p;
    p.bytes(tenant_id);
    return stream(std::string(kListingColumns) + "WHERE tenant_id = $1 ORDER BY listing_id", p,
                  [&](const PgResult& r) -> Result<bool> { return fn(read_listing(r, 0)); });
  }

  static ListingRecord read_listing(const PgResult& r, int row) {
    return ListingRecord{r.bytes(row, 0), r.bytes(row, 1), r.float8(row, 2),
                         r.bytes(row, 3), r.bytes(row, 4), r.int8(row, 5)};
  }

  Result<std::vector<GhlUpdate>> due_ghl_updates(const std::string& tenant_id, UnixSeconds now,
                                                 std::size_t limit) override {
    PgParams p;
    p.bytes(tenant_id).int8(static_cast<std::int64_t>(now)).int8(capped(limit));
    auto r = query(std::string(kUpdateColumns) +
                       "WHERE tenant_id = $1 AND status = 'pending' AND next_attempt_at <= $2"
                       " ORDER BY next_attempt_at, update_id LIMIT $3",
                   p);
    if (!r) return r.status();
    return rows_of<GhlUpdate>(*r, read_update);
  }

  Result<std::vector<GhlUpdate>> list_ghl_updates(const std::string& tenant_id, OutboxStatus status,
                                                  std::size_t limit) override {
    PgParams p;
    p.bytes(tenant_id).bytes(outbox_status_name(status)).int8(capped(limit));
    auto r = query(std::string(kUpdateColumns) + "WHERE tenant_id = $1 AND status = $2 ORDER BY update_id LIMIT $3",
                   p);
    if (!r) return r.status();
    return rows_of<GhlUpdate>(*r, read_update);
  }

  Result<GhlOutboxSummary> ghl_outbox_summary(const std::string& tenant_id) override {
    PgParams p;
    p.bytes(tenant_id);
    auto r = query(
        "SELECT count(*), coalesce(min(created_at), 0) FROM ghl_outbox WHERE tenant_id = $1 AND status = 'pending'", p);
    if (!r) return r.status();
    return GhlOutboxSummary{static_cast<std::size_t>(r->int8(0, 0)), r->int8(0, 1)};
  }

  Status record_ghl_update_attempt(const std::string& tenant_id, std::int64_t update_id, OutboxStatus status,
                                   const std::string& error, UnixSeconds next_attempt_at) override {
    PgParams p;
    p.bytes(tenant_id).int8(update_id).bytes(outbox_status_name(status)).bytes(error);
    p.int8(static_cast<std::int64_t>(next_attempt_at));
    auto r = query(kRecordUpdateAttempt, p);
    if (!r) return r.status();
    if (r->affected() == 0) return not_found("outbox update " + std::to_string(update_id) + " not found");
    return Status::ok();
  }

  Result<std::size_t> count_events(const std::string& tenant_id) override {
    return count("SELECT count(*) FROM events WHERE tenant_id = $1", tenant_id);
  }

  Result<std::size_t> count_contacts(const std::string& tenant_id) override {
    return count("SELECT count(*) FROM contacts WHERE tenant_id = $1", tenant_id);
  }

  Status health() override {
    auto r = query("SELECT max(version) FROM schema_migrations", PgParams());
    if (!r) return unavailable(r.status().message());
    return Status::ok();
  }

 private:
  template <typename T, typename Reader>
  static std::vector<T> rows_of(const PgResult& r, Reader read) {
    std::vector<T> out;
    out.reserve(static_cast<std::size_t>(r.rows()));
    for (int i = 0; i < r.rows(); ++i) out.push_back(read(r, i));
    return out;
  }

  Result<PgResult> query(const std::string& sql, const PgParams& params) {
    auto session = pool_->acquire();
    if (!session) return session.status();
    return session->exec(sql, params);
  }

  Status write(const std::string& sql, const PgParams& params) {
    auto r = query(sql, params);
    return r ? Status::ok() : r.status();
  }

  Status stream(const std::string& sql, const PgParams& params,
                const std::function<Result<bool>(const PgResult&)>& row) {
    auto session = pool_->acquire();
    if (!session) return session.status();
    return session->stream(sql, params, row);
  }

  // A fresh cursor's first horizon, taken just before its first read: what
  // a read before it would have left (see settle).
  Status seed_horizon(const std::string& tenant_id, EventCursor& cursor) {
    PgParams p;
    p.bytes(tenant_id);
    auto r = query(kSelectEventsHorizon, p);
    if (!r) return r.status();
    cursor.horizons.push_back({static_cast<std::uint64_t>(r->int8(0, 0)), r->int8(0, 1)});
    return Status::ok();
  }

  Result<std::size_t> count(const std::string& sql, const std::string& tenant_id) {
    PgParams p;
    p.bytes(tenant_id);
    auto r = query(sql, p);
    if (!r) return r.status();
    return static_cast<std::size_t>(r->int8(0, 0));
  }

  // Inside the import transaction. Events go in chunks through the batch
  // INSERT (one round trip per chunk instead of per row).
  static Status import_locked(PgSession& session, const std::vector<Contact>& contacts,
                              const std::vector<Event>& events, const std::vector<OpportunityStage>& stages,
                              ImportCounts* counts) {
    for (const Contact& c : contacts) {
      auto r = session.exec(kUpsertContact, contact_params(c));
      if (!r) return with_row(r.status(), "contact", c.contact_id);
      ++counts->contacts_written;
    }
    constexpr std::size_t kChunk = 5000;
    std::span<const Event> all(events);
    for (std::size_t at = 0; at < all.size(); at += kChunk) {
      auto chunk = all.subspan(at, std::min(kChunk, all.size() - at));
      auto inserted = session.exec(kInsertEvents, events_batch_params(chunk));
      if (!inserted) return inserted.status();
      for (bool written : answers_from(chunk, *inserted)) ++(written ? counts->events_written : counts->events_duplicate);
    }
    const std::vector<Contact> bare = bare_contacts_of_orphan_events(contacts, events);
    std::span<const Contact> all_bare(bare);
    for (std::size_t at = 0; at < all_bare.size(); at += kChunk) {
      auto chunk = all_bare.subspan(at, std::min(kChunk, all_bare.size() - at));
      auto inserted = session.exec(kInsertContactsIfAbsent, contacts_batch_params(chunk));
      if (!inserted) return inserted.status();
      for (bool added : created_from(chunk, *inserted)) counts->contacts_added_bare += added;
    }
    for (const OpportunityStage& o : stages) {
      auto r = session.exec(kInsertStage, stage_params(o));
      if (!r) return with_row(r.status(), "opportunity stage", o.opportunity_id);
      ++(r->affected() > 0 ? counts->stages_written : counts->stages_duplicate);
    }
    return Status::ok();
  }

  static Status with_row(const Status& status, const char* what, const std::string& id) {
    if (status.is_ok()) return status;
    return Status(status.code(), std::string(what) + " '" + id + "': " + status.message());
  }

  std::unique_ptr<PgPool> pool_;
};

// Creates schema_migrations when absent and applies the missing migrations in
// one transaction under an advisory lock, so instances starting together do
// not both migrate.
Status migrate(PgSession& session) {
  const auto& migrations = postgres_migrations();
  if (static_cast<int>(migrations.size()) != schema_version()) {
    return failed_precondition("postgres store: " + std::to_string(migrations.size()) +
                               " migrations for schema version " + std::to_string(schema_version()));
  }
  return session.transaction([&]() -> Status {
    REAI_RETURN_IF_ERROR(session.exec_simple(kMigrationLock));
    REAI_RETURN_IF_ERROR(session.exec_simple(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT NOT NULL PRIMARY KEY,"
        " applied_at BIGINT NOT NULL)"));
    auto current = session.exec("SELECT coalesce(max(version), 0) FROM schema_migrations", PgParams());
    if (!current) return current.status();
    const std::int64_t recorded = current->int8(0, 0);
    if (recorded > schema_version()) {
      return failed_precondition("database schema version " + std::to_string(recorded) +
                                 " is newer than this binary's " + std::to_string(schema_version()) +
                                 "; upgrade reai");
    }
    for (auto version = recorded + 1; version <= schema_version(); ++version) {
      REAI_RETURN_IF_ERROR(session.exec_simple(std::string(migrations[version - 1])));
      PgParams p;
      p.int8(version);
      auto recorded_row = session.exec(
          "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, extract(epoch from now())::bigint)", p);
      if (!recorded_row) return recorded_row.status();
    }
    return Status::ok();
  });
}

bool is_postgres_url(const std::string& s) {
  return s.starts_with("postgres://") || s.starts_with("postgresql://");
}

}  // namespace

Result<std::unique_ptr<Store>> open_postgres_store(const std::string& url, std::size_t pool_size) {
  if (!is_postgres_url(url)) return invalid_argument("postgres store: not a postgres:// URL");
  auto pool = std::make_unique<PgPool>(url, pool_size);
  {
    auto session = pool->acquire();
    if (!session) return session.status();
    REAI_RETURN_IF_ERROR(migrate(*session));
  }
  return std::unique_ptr<Store>(new PostgresStore(std::move(pool)));
}

Result<std::unique_ptr<Store>> open_store(const std::string& url_or_data_dir) {
  if (is_postgres_url(url_or_data_dir)) return open_postgres_store(url_or_data_dir);
  return open_sqlite_store(url_or_data_dir);
}

}  // namespace reai::store
