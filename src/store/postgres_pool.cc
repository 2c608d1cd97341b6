#include "store/postgres_pool.h"

#include <poll.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>

namespace reai::store {

struct PgConnection {
  PgConnection(PGconn* c, std::uint64_t g) : conn(c), generation(g) {}
  ~PgConnection() { PQfinish(conn); }
  PgConnection(const PgConnection&) = delete;
  PgConnection& operator=(const PgConnection&) = delete;

  PGconn* conn;
  std::uint64_t generation;                              // pool generation it was opened in
  std::unordered_map<std::string, std::string> prepared; // sql -> statement name
  bool broken = false;
};

namespace {

void put_be32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

std::string be64(std::uint64_t v) {
  std::string out;
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
  return out;
}

std::uint64_t read_be(const char* p, int n) {
  std::uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

// libpq messages end with a newline; the store's errors read better without.
std::string trimmed(const char* message) {
  std::string m = message ? message : "";
  for (char& c : m) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

// True when the socket has input (or is closed) right now.
bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return fd < 0 || ::poll(&p, 1, 0) != 0;
}

bool starts_with(const char* s, const char* prefix) {
  return s != nullptr && std::strncmp(s, prefix, std::strlen(prefix)) == 0;
}

}  // namespace

// ---- parameters ----

PgParams& PgParams::add(Oid type, std::optional<std::string> value) {
  types_.push_back(type);
  values_.push_back(std::move(value));
  return *this;
}

PgParams& PgParams::bytes(std::string_view value) { return add(kByteaOid, std::string(value)); }
PgParams& PgParams::optional_bytes(std::optional<std::string_view> value) {
  if (!value) return add(kByteaOid, std::nullopt);
  return bytes(*value);
}
PgParams& PgParams::int8(std::int64_t value) { return add(kInt8Oid, be64(static_cast<std::uint64_t>(value))); }
PgParams& PgParams::int8(std::optional<int> value) {
  if (!value) return add(kInt8Oid, std::nullopt);
  return int8(static_cast<std::int64_t>(*value));
}
PgParams& PgParams::float8(std::optional<double> value) {
  if (!value) return add(kFloat8Oid, std::nullopt);
  return add(kFloat8Oid, be64(std::bit_cast<std::uint64_t>(*value)));
}
PgParams& PgParams::boolean(std::optional<bool> value) {
  if (!value) return add(kBoolOid, std::nullopt);
  return add(kBoolOid, std::string(1, *value ? '\1' : '\0'));
}
PgParams& PgParams::array(Oid array_type, std::string encoded) { return add(array_type, std::move(encoded)); }

std::vector<const char*> PgParams::values() const {
  std::vector<const char*> out;
  for (const auto& v : values_) out.push_back(v ? v->data() : nullptr);
  return out;
}

std::vector<int> PgParams::lengths() const {
  std::vector<int> out;
  for (const auto& v : values_) out.push_back(v ? static_cast<int>(v->size()) : 0);
  return out;
}

void PgArray::add(std::optional<std::string> element) {
  ++count_;
  if (!element) {
    has_null_ = true;
    put_be32(elements_, 0xffffffffu);  // length -1: NULL
    return;
  }
  put_be32(elements_, static_cast<std::uint32_t>(element->size()));
  elements_ += *element;
}

void PgArray::bytes(std::string_view value) { add(std::string(value)); }
void PgArray::int8(std::int64_t value) { add(be64(static_cast<std::uint64_t>(value))); }
void PgArray::int8(std::optional<int> value) {
  if (!value) return add(std::nullopt);
  int8(static_cast<std::int64_t>(*value));
}
void PgArray::boolean(std::optional<bool> value) {
  if (!value) return add(std::nullopt);
  add(std::string(1, *value ? '\1' : '\0'));
}
void PgArray::float8(std::optional<double> value) {
  if (!value) return add(std::nullopt);
  add(be64(std::bit_cast<std::uint64_t>(*value)));
}

// Binary array format: ndim, has-null flag, element type, then per dimension
// its size and lower bound, then each element as length + bytes.
std::string PgArray::encode() const {
  std::string out;
  put_be32(out, count_ == 0 ? 0 : 1);
  put_be32(out, has_null_ ? 1 : 0);
  put_be32(out, element_type_);
  if (count_ > 0) {
    put_be32(out, static_cast<std::uint32_t>(count_));
    put_be32(out, 1);
  }
  return out + elements_;
}

// ---- results ----

std::int64_t PgResult::affected() const {
  const char* n = PQcmdTuples(result_.get());
  return (n && *n) ? std::stoll(n) : 0;
}

std::string PgResult::bytes(int row, int col) const {
  return std::string(PQgetvalue(result_.get(), row, col), PQgetlength(result_.get(), row, col));
}

std::int64_t PgResult::int8(int row, int col) const {
  int n = PQgetlength(result_.get(), row, col);
  std::uint64_t raw = read_be(PQgetvalue(result_.get(), row, col), n);
  if (n == 4) return static_cast<std::int32_t>(static_cast<std::uint32_t>(raw));
  return static_cast<std::int64_t>(raw);
}

double PgResult::float8(int row, int col) const {
  return std::bit_cast<double>(read_be(PQgetvalue(result_.get(), row, col), 8));
}

bool PgResult::boolean(int row, int col) const { return PQgetvalue(result_.get(), row, col)[0] != 0; }

std::optional<std::int64_t> PgResult::optional_int8(int row, int col) const {
  if (null(row, col)) return std::nullopt;
  return int8(row, col);
}
std::optional<double> PgResult::optional_float8(int row, int col) const {
  if (null(row, col)) return std::nullopt;
  return float8(row, col);
}
std::optional<bool> PgResult::optional_boolean(int row, int col) const {
  if (null(row, col)) return std::nullopt;
  return boolean(row, col);
}

// ---- sessions ----

PgSession::PgSession(PgPool* pool, std::unique_ptr<PgConnection> connection)
    : pool_(pool), connection_(std::move(connection)) {}

PgSession::PgSession(PgSession&& other) noexcept
    : pool_(other.pool_), connection_(std::move(other.connection_)), retriable_(other.retriable_) {}

PgSession::~PgSession() {
  if (!connection_) return;
  // A connection left inside a transaction (or mid-result) cannot be reused.
  bool broken = connection_->broken || PQstatus(connection_->conn) != CONNECTION_OK ||
                PQtransactionStatus(connection_->conn) != PQTRANS_IDLE;
  pool_->release(std::move(connection_), broken);
}

// SQLSTATE classes: 08 connection, 57P0x shutdown/starting, 53 resources ->
// the server is (temporarily) unavailable; 23 integrity and 22 data -> the
// row is bad; 40 -> the transaction may simply be retried.
Status PgSession::error(const PGresult* result, const std::string& what) {
  PGconn* conn = connection_->conn;
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  std::string message = "postgres store: " + what + ": " +
                        trimmed(result ? PQresultErrorMessage(result) : PQerrorMessage(conn));
  if (message.back() == ' ' || message.back() == ':') message += trimmed(PQerrorMessage(conn));
  retriable_ = starts_with(state, "40");
  if (PQstatus(conn) != CONNECTION_OK || starts_with(state, "08") || starts_with(state, "57P")) {
    connection_->broken = true;
    return unavailable(std::move(message));
  }
  if (starts_with(state, "53") || retriable_) return unavailable(std::move(message));
  if (starts_with(state, "23") || starts_with(state, "22")) return invalid_argument(std::move(message));
  return internal_error(std::move(message));
}

Result<PgResult> PgSession::checked(PGresult* raw, const std::string& what) {
  PgResult result(raw);
  ExecStatusType status = raw ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_SINGLE_TUPLE) {
    retriable_ = false;
    return result;
  }
  return error(raw, what);
}

Result<std::string> PgSession::prepared_name(const std::string& sql, const PgParams& params) {
  auto found = connection_->prepared.find(sql);
  if (found != connection_->prepared.end()) return found->second;
  std::string name = "reai_" + std::to_string(connection_->prepared.size());
  auto prepared = checked(PQprepare(connection_->conn, name.c_str(), sql.c_str(), params.size(), params.types()),
                          "prepare");
  if (!prepared) return prepared.status();
  connection_->prepared.emplace(sql, name);
  return name;
}

Result<PgResult> PgSession::exec(const std::string& sql, const PgParams& params) {
  auto name = prepared_name(sql, params);
  if (!name) return name.status();
  auto values = params.values();
  auto lengths = params.lengths();
  auto formats = params.formats();
  return checked(PQexecPrepared(connection_->conn, name->c_str(), params.size(), values.data(), lengths.data(),
                                formats.data(), 1),
                 "query");
}

Status PgSession::exec_simple(const std::string& sql) {
  auto result = checked(PQexec(connection_->conn, sql.c_str()), sql.substr(0, 40));
  return result ? Status::ok() : result.status();
}

Status PgSession::stream(const std::string& sql, const PgParams& params,
                         const std::function<Result<bool>(const PgResult&)>& row) {
  auto name = prepared_name(sql, params);
  if (!name) return name.status();
  auto values = params.values();
  auto lengths = params.lengths();
  auto formats = params.formats();
  PGconn* conn = connection_->conn;
  if (!PQsendQueryPrepared(conn, name->c_str(), params.size(), values.data(), lengths.data(), formats.data(), 1)) {
    return error(nullptr, "query");
  }
  PQsetSingleRowMode(conn);
  Status status;
  bool more = true;
  // Every result is read, even after a stop: the connection is reusable only
  // once the query is finished.
  while (PGresult* raw = PQgetResult(conn)) {
    auto result = checked(raw, "query");
    if (!result) {
      if (status.is_ok()) status = result.status();
      continue;
    }
    if (!more || !status.is_ok() || PQresultStatus(raw) != PGRES_SINGLE_TUPLE) continue;
    auto wanted = row(*result);
    if (!wanted) {
      status = wanted.status();
    } else {
      more = *wanted;
    }
  }
  if (status.is_ok() && PQstatus(conn) != CONNECTION_OK) return error(nullptr, "query");
  return status;
}

Status PgSession::transaction(const std::function<Status()>& body) {
  constexpr int kAttempts = 3;
  Status status;
  for (int attempt = 1; attempt <= kAttempts; ++attempt) {
    status = exec_simple("BEGIN");
    if (!status.is_ok()) return status;
    status = body();
    if (status.is_ok()) status = exec_simple("COMMIT");
    if (status.is_ok()) return status;
    bool retry = retriable_;
    if (PQtransactionStatus(connection_->conn) != PQTRANS_IDLE) (void)exec_simple("ROLLBACK");
    if (!retry) return status;
  }
  return status;
}

// ---- pool ----

PgPool::PgPool(std::string conninfo, std::size_t size) : conninfo_(std::move(conninfo)), size_(size ? size : 1) {}

PgPool::~PgPool() = default;

Result<std::unique_ptr<PgConnection>> PgPool::connect() {
  std::uint64_t generation;
  {
    std::lock_guard lock(mu_);
    generation = generation_;
  }
  // A connect timeout of our own (the URL's wins) so an unreachable host
  // answers Unavailable in seconds, not after the kernel's TCP timeout.
  const char* keywords[] = {"connect_timeout", "dbname", nullptr};
  const char* values[] = {"3", conninfo_.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (conn == nullptr) return unavailable("postgres store: out of memory connecting");
  if (PQstatus(conn) != CONNECTION_OK) {
    Status status = unavailable("postgres store: cannot connect: " + trimmed(PQerrorMessage(conn)));
    PQfinish(conn);
    return status;
  }
  // Notices ("relation already exists, skipping") are not errors; libpq
  // would print each one to stderr.
  PQsetNoticeProcessor(conn, [](void*, const char*) {}, nullptr);
  return std::make_unique<PgConnection>(conn, generation);
}

Result<PgSession> PgPool::acquire() {
  std::unique_lock lock(mu_);
  freed_.wait(lock, [&] { return !idle_.empty() || open_ < size_; });
  while (!idle_.empty()) {
    std::unique_ptr<PgConnection> connection = std::move(idle_.back());
    idle_.pop_back();
    // A connection from before a breakage, or one the server wrote to while
    // it was idle (an idle session receives nothing: that is the server's
    // "terminating connection" or the EOF of a restart), is replaced rather
    // than failing the caller's statement.
    if (connection->generation == generation_ && PQstatus(connection->conn) == CONNECTION_OK &&
        !readable(PQsocket(connection->conn))) {
      return PgSession(this, std::move(connection));
    }
    --open_;
  }
  ++open_;
  lock.unlock();
  auto connection = connect();
  if (!connection) {
    lock.lock();
    --open_;
    freed_.notify_one();
    return connection.status();
  }
  return PgSession(this, std::move(*connection));
}

void PgPool::release(std::unique_ptr<PgConnection> connection, bool broken) {
  {
    std::lock_guard lock(mu_);
    if (broken) {
      // Its siblings most likely lost the server too: renew them on next use.
      generation_ = std::max(generation_, connection->generation + 1);
      --open_;
    } else {
      idle_.push_back(std::move(connection));
    }
  }
  connection.reset();  // closes a broken one outside the lock
  freed_.notify_one();
}

}  // namespace reai::store
