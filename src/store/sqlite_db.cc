#include "store/sqlite_db.h"

#include <string>

#include "store/wal_vfs.h"

namespace reai::store {

Status sqlite_status(sqlite3* db, int rc, std::string_view what) {
  std::string message = std::string(what) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
      return invalid_argument(std::move(message));
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PROTOCOL:
      return unavailable(std::move(message));
    default:
      return internal_error(std::move(message));
  }
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

// SQLITE_STATIC avoids a copy per bound string (it matters for bulk import):
// callers keep the text alive until the statement is reset, which every store
// method does through StatementScope before its arguments go away.
void Statement::bind(int index, std::string_view text) {
  sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
}
void Statement::bind(int index, std::int64_t value) { sqlite3_bind_int64(stmt_, index, value); }
void Statement::bind(int index, double value) { sqlite3_bind_double(stmt_, index, value); }
void Statement::bind_null(int index) { sqlite3_bind_null(stmt_, index); }
void Statement::bind(int index, std::optional<double> value) {
  if (value) bind(index, *value); else bind_null(index);
}
void Statement::bind(int index, std::optional<int> value) {
  if (value) bind(index, static_cast<std::int64_t>(*value)); else bind_null(index);
}
void Statement::bind(int index, std::optional<bool> value) {
  if (value) bind(index, static_cast<std::int64_t>(*value ? 1 : 0)); else bind_null(index);
}

void Statement::bind_text_or_null(int index, std::optional<std::string_view> text) {
  if (text) bind(index, *text); else bind_null(index);
}

bool Statement::step(Status* status) {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE) *status = sqlite_status(db_, rc, "sqlite step");
  return false;
}

Status Statement::run() {
  Status status;
  while (step(&status)) {
  }
  return status;
}

std::string Statement::text(int column) const {
  const unsigned char* p = sqlite3_column_text(stmt_, column);
  int n = sqlite3_column_bytes(stmt_, column);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(n)) : std::string();
}
std::int64_t Statement::int64(int column) const { return sqlite3_column_int64(stmt_, column); }
double Statement::real(int column) const { return sqlite3_column_double(stmt_, column); }
bool Statement::is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
std::optional<double> Statement::optional_real(int column) const {
  if (is_null(column)) return std::nullopt;
  return real(column);
}
std::optional<int> Statement::optional_int(int column) const {
  if (is_null(column)) return std::nullopt;
  return static_cast<int>(int64(column));
}
std::optional<bool> Statement::optional_bool(int column) const {
  if (is_null(column)) return std::nullopt;
  return int64(column) != 0;
}

Result<std::unique_ptr<Database>> Database::open(const std::string& path) {
  sqlite3* db = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  // Every connection through the WAL-coalescing VFS (wal_vfs.h): the
  // writer's commits and the checkpointer's restarts write the same WAL.
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, coalescing_wal_vfs());
  if (rc != SQLITE_OK) {
    Status status = unavailable("cannot open " + path + ": " +
                                (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
    sqlite3_close(db);
    return status;
  }
  sqlite3_extended_result_codes(db, 1);
  return std::unique_ptr<Database>(new Database(db));
}

Database::~Database() {
  statements_.clear();  // finalize before close, or close fails with BUSY
  sqlite3_close(db_);
}

Status Database::exec(const std::string& sql) {
  char* error = nullptr;
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return Status::ok();
  std::string message = error ? error : sqlite3_errstr(rc);
  sqlite3_free(error);
  Status status = sqlite_status(nullptr, rc, "");
  return Status(status.code(), "sqlite exec: " + message);
}

Result<Statement*> Database::prepare(const std::string& sql) {
  auto it = statements_.find(sql);
  if (it != statements_.end()) {
    it->second->reset();
    return it->second.get();
  }
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) return sqlite_status(db_, rc, "prepare '" + sql + "'");
  auto owned = std::make_unique<Statement>(db_, stmt);
  Statement* raw = owned.get();
  statements_.emplace(sql, std::move(owned));
  return raw;
}

}  // namespace reai::store
