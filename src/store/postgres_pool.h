// libpq plumbing of the PostgreSQL store, private to src/store: typed
// parameters in binary format, results, and a small pool of connections that
// prepare each statement once per connection and reconnect when broken.
#pragma once

#include <libpq-fe.h>

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"

namespace reai::store {

// Statement parameters, all sent in binary format with their types, so bytes
// (NUL included) go through untouched and the server never guesses a type.
class PgParams {
 public:
  PgParams& bytes(std::string_view value);  // BYTEA
  PgParams& optional_bytes(std::optional<std::string_view> value);  // BYTEA or NULL
  PgParams& int8(std::int64_t value);
  PgParams& int8(std::optional<int> value);
  PgParams& float8(std::optional<double> value);
  PgParams& boolean(std::optional<bool> value);
  // A one-dimensional array already in binary array format (PgArray).
  PgParams& array(Oid array_type, std::string encoded);

  int size() const { return static_cast<int>(types_.size()); }
  const Oid* types() const { return types_.data(); }
  // Pointers into this object: valid while it is alive and unchanged.
  std::vector<const char*> values() const;
  std::vector<int> lengths() const;
  std::vector<int> formats() const { return std::vector<int>(types_.size(), 1); }

 private:
  PgParams& add(Oid type, std::optional<std::string> value);
  std::vector<Oid> types_;
  std::vector<std::optional<std::string>> values_;
};

// Builds a one-dimensional array parameter (unnest() feeds batch inserts).
class PgArray {
 public:
  explicit PgArray(Oid element_type) : element_type_(element_type) {}
  void bytes(std::string_view value);
  void int8(std::int64_t value);
  void int8(std::optional<int> value);  // nullopt: NULL
  void float8(std::optional<double> value);
  void boolean(std::optional<bool> value);
  std::string encode() const;

 private:
  void add(std::optional<std::string> element);
  Oid element_type_;
  std::string elements_;
  int count_ = 0;
  bool has_null_ = false;
};

inline constexpr Oid kByteaOid = 17;
inline constexpr Oid kInt8Oid = 20;
inline constexpr Oid kFloat8Oid = 701;
inline constexpr Oid kBoolOid = 16;
inline constexpr Oid kBoolArrayOid = 1000;
inline constexpr Oid kByteaArrayOid = 1001;
inline constexpr Oid kInt8ArrayOid = 1016;
inline constexpr Oid kFloat8ArrayOid = 1022;

// A result in binary format; columns are read by the type the SQL selects.
class PgResult {
 public:
  explicit PgResult(PGresult* result) : result_(result, &PQclear) {}
  int rows() const { return PQntuples(result_.get()); }
  // Rows an INSERT/UPDATE/DELETE touched.
  std::int64_t affected() const;
  bool null(int row, int col) const { return PQgetisnull(result_.get(), row, col) != 0; }
  std::string bytes(int row, int col) const;
  std::int64_t int8(int row, int col) const;  // int8 or int4 columns
  double float8(int row, int col) const;
  bool boolean(int row, int col) const;
  std::optional<std::int64_t> optional_int8(int row, int col) const;
  std::optional<double> optional_float8(int row, int col) const;
  std::optional<bool> optional_boolean(int row, int col) const;

 private:
  std::unique_ptr<PGresult, void (*)(PGresult*)> result_;
};

struct PgConnection;
class PgPool;

// One pooled connection, checked out by one thread at a time; given back to
// the pool when destroyed (closed instead when it broke or was left inside a
// transaction). Errors: Unavailable when the server cannot be reached or the
// connection broke, InvalidArgument for rows the schema refuses, Internal
// otherwise.
class PgSession {
 public:
  PgSession(PgPool* pool, std::unique_ptr<PgConnection> connection);
  PgSession(PgSession&&) noexcept;
  PgSession& operator=(PgSession&&) = delete;
  ~PgSession();

  // Runs `sql` as a statement prepared once on this connection.
  Result<PgResult> exec(const std::string& sql, const PgParams& params);
  // Runs SQL without parameters (BEGIN, COMMIT, DDL; several statements allowed).
  Status exec_simple(const std::string& sql);
  // Streams the rows one at a time (no full result in memory); `row`
  // returning false stops early, an error stops and is returned.
  Status stream(const std::string& sql, const PgParams& params,
                const std::function<Result<bool>(const PgResult&)>& row);
  // Runs `body` in a transaction: committed when it succeeds, rolled back
  // otherwise. Retried from the start (at most 3 times) when the server
  // aborted it for a deadlock or serialization failure, so `body` must reset
  // what it collects.
  Status transaction(const std::function<Status()>& body);

 private:
  Result<std::string> prepared_name(const std::string& sql, const PgParams& params);
  // Takes ownership of `raw`; the error (and `connection_->broken`) when it failed.
  Result<PgResult> checked(PGresult* raw, const std::string& what);
  Status error(const PGresult* result, const std::string& what);
  PgPool* pool_;
  std::unique_ptr<PgConnection> connection_;
  bool retriable_ = false;  // the last error was a deadlock/serialization failure
};

// N connections to one server, opened on demand. Thread-safe.
class PgPool {
 public:
  // `conninfo`: a postgres:// URL or key=value string. Nothing connects yet.
  PgPool(std::string conninfo, std::size_t size);
  ~PgPool();
  PgPool(const PgPool&) = delete;
  PgPool& operator=(const PgPool&) = delete;

  // Waits for a free connection; reconnects when it broke (or the server was
  // seen restarting). Unavailable when the server cannot be reached.
  Result<PgSession> acquire();

 private:
  friend class PgSession;
  void release(std::unique_ptr<PgConnection> connection, bool broken);
  Result<std::unique_ptr<PgConnection>> connect();

  const std::string conninfo_;
  const std::size_t size_;
  std::mutex mu_;
  std::condition_variable freed_;
  std::vector<std::unique_ptr<PgConnection>> idle_;
  std::size_t open_ = 0;         // idle + checked out + being opened
  std::uint64_t generation_ = 0; // bumped when a connection breaks
};

}  // namespace reai::store
