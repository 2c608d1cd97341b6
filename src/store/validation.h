// Row checks shared by the stores that cannot lean on SQL CHECK constraints
// (memory). They mirror the constraints of the SQLite schema exactly, so every
// implementation rejects the same rows with InvalidArgument. Also the rows
// every implementation derives the same way.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/types.h"
#include "store/store.h"

namespace reai::store {

Status validate(const Tenant& tenant);
Status validate(const Contact& contact);
Status validate(const Event& event);
Status validate(const OpportunityStage& stage);
Status validate(const ScoreRecord& record);
Status validate(const ModelRecord& model);
Status validate(const GhlDelivery& delivery);
Status validate(const GhlUpdate& update);
Status validate(const ListingRecord& listing);
Status validate(const GhlToken& token);
// Store::mark_ghl_token_refused's arguments.
Status validate_token_refusal(const std::string& tenant_id, UnixSeconds refused_at);
Status validate(const GhlContactState& state);
Status validate(const GhlCustomField& field);
Status validate(const GhlSyncCursor& cursor);
Status validate(const std::string& tenant_id, const GhlSettingsChange& change);
// The first invalid row of an append_batch, contacts then events then
// scores, so every store refuses a batch for the same row.
Status validate_batch(std::span<const Contact> contacts, std::span<const Event> events,
                      std::span<const ScoreRecord> scores);

// The checks of Store::write_lead before anything is written: every row
// valid, every event and stage of the write's lead.
Status validate(const LeadWrite& write);
// write_lead's refusal of `event`, whose id is stored for another lead.
Status event_id_of_another_lead(const Event& event);

// OK when `tenant` may be written with its ghl_location_id: it names none,
// or `holder` (the store's answer for the tenant linked to that location) is
// NotFound or that tenant itself. AlreadyExists naming the other tenant
// otherwise, since a location's webhooks must reach exactly one tenant; a
// store failure in `holder` is passed on.
Status check_ghl_location_free(const Tenant& tenant, const Result<Tenant>& holder);

// The contact the server would store with each lead of `events` that has
// none in `contacts`: a bare row (no attributes) created at the lead's first
// event, one per lead, in order of first appearance. Events with an empty
// contact id are left out (they fail validation on their own).
std::vector<Contact> bare_contacts_of_orphan_events(std::span<const Contact> contacts,
                                                    std::span<const Event> events);

// Which of an append_batch's `new_contacts` to insert once its events are
// written (`written`: one answer per event): a contact some event of the
// batch names only when at least one of those events was written, so a batch
// whose every event of a lead was refused (its id stored for another lead)
// leaves no contact behind; a contact no event names (a contact alone) is
// inserted. One flag per contact.
std::vector<bool> contacts_to_insert(std::span<const Contact> contacts, std::span<const Event> events,
                                     const std::vector<bool>& written);

// The tenants of a listings batch, each once (whose listings_version a write bumps).
std::vector<std::string> distinct_tenants(std::span<const ListingRecord> listings);

}  // namespace reai::store
