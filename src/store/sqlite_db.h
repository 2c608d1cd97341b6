// Thin RAII layer over the SQLite C API, private to src/store. One Database
// owns one connection and caches its prepared statements; it is not
// thread-safe: the owning store serialises access with its own mutex.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/status.h"

namespace reai::store {

// A prepared statement. Bind indices are 1-based, like SQLite's.
class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  // Clears bindings and rewinds, so a cached statement starts fresh.
  void reset();

  // Not copied: `text` must stay alive until reset().
  void bind(int index, std::string_view text);
  void bind(int index, std::int64_t value);
  void bind(int index, double value);
  void bind_null(int index);
  void bind(int index, std::optional<double> value);
  void bind(int index, std::optional<int> value);
  void bind(int index, std::optional<bool> value);
  // NULL when empty (a separate name: an overload would make bind(std::string) ambiguous).
  void bind_text_or_null(int index, std::optional<std::string_view> text);

  // true: a row is available; false: done. Errors come back as Status via
  // `status` (set only on failure) so call sites stay short.
  bool step(Status* status);
  // Runs to completion; fails on any error.
  Status run();

  std::string text(int column) const;
  std::int64_t int64(int column) const;
  double real(int column) const;
  bool is_null(int column) const;
  std::optional<double> optional_real(int column) const;
  std::optional<int> optional_int(int column) const;
  std::optional<bool> optional_bool(int column) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
};

// Resets a cached statement when a scope ends, so no read transaction stays
// open between calls (an open reader would stall WAL checkpoints).
class StatementScope {
 public:
  explicit StatementScope(Statement* statement) : statement_(statement) {}
  ~StatementScope() { statement_->reset(); }
  StatementScope(const StatementScope&) = delete;
  StatementScope& operator=(const StatementScope&) = delete;

 private:
  Statement* statement_;
};

class Database {
 public:
  // Unavailable when the file cannot be opened.
  static Result<std::unique_ptr<Database>> open(const std::string& path);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Runs one or more statements without results (DDL, pragmas).
  Status exec(const std::string& sql);
  // A cached statement for `sql`, reset and ready to bind. The reference stays
  // valid for the Database's lifetime.
  Result<Statement*> prepare(const std::string& sql);
  // Rows changed by the last INSERT/UPDATE/DELETE.
  int changes() const { return sqlite3_changes(db_); }

  sqlite3* handle() { return db_; }

 private:
  explicit Database(sqlite3* db) : db_(db) {}
  sqlite3* db_;
  std::unordered_map<std::string, std::unique_ptr<Statement>> statements_;
};

// Maps an SQLite result code to a Status: constraint violations are
// InvalidArgument (bad data), busy/IO errors Unavailable, the rest Internal.
Status sqlite_status(sqlite3* db, int rc, std::string_view what);

}  // namespace reai::store
