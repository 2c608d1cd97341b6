// Versioned schema migrations of the SQLite store, private to src/store.
// Migrations are append-only: a released migration's SQL never changes.
#pragma once

#include <string_view>
#include <vector>

#include "core/status.h"
#include "store/sqlite_db.h"

namespace reai::store {

// Migration N (1-based) is element N-1.
const std::vector<std::string_view>& sqlite_migrations();

// Creates schema_migrations when absent and applies every missing migration in
// one IMMEDIATE transaction (so two processes opening the same file at once
// do not both migrate). FailedPrecondition when the file records a version
// this binary does not know.
Status apply_migrations(Database& db);

}  // namespace reai::store
