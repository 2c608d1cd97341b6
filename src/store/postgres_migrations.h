// Versioned schema migrations of the PostgreSQL store, private to src/store.
// Migration N is the PostgreSQL translation of SQLite migration N
// (migrations.cc): both lists grow together, append-only.
#pragma once

#include <string_view>
#include <vector>

namespace reai::store {

// Migration N (1-based) is element N-1.
const std::vector<std::string_view>& postgres_migrations();

}  // namespace reai::store
