#include "store/checkpointer.h"

#include <chrono>

namespace reai::store {

Result<std::unique_ptr<Checkpointer>> Checkpointer::start(Database& writer, std::mutex& writer_mutex,
                                                          const std::string& path, Thresholds thresholds) {
  if (thresholds.background_frames <= 0 || thresholds.restart_frames < thresholds.background_frames ||
      thresholds.foreground_frames < thresholds.restart_frames ||
      thresholds.finish_tail_frames <= 0) {
    return invalid_argument(
        "checkpointer: thresholds must satisfy 0 < background <= restart <= foreground and "
        "0 < finish_tail");
  }
  auto own = Database::open(path);
  if (!own) return own.status();
  REAI_RETURN_IF_ERROR((*own)->exec("PRAGMA busy_timeout = 5000"));
  // A connection learns that the database is in WAL mode only when it first
  // reads it; until then its checkpoints are silent no-ops (log size -1).
  REAI_RETURN_IF_ERROR((*own)->exec("PRAGMA journal_mode = WAL"));
  std::unique_ptr<Checkpointer> checkpointer(new Checkpointer(writer, writer_mutex, std::move(*own), thresholds));
  // Replaces SQLite's automatic checkpoint, which is itself a WAL hook.
  sqlite3_wal_hook(writer.handle(), &Checkpointer::on_commit, checkpointer.get());
  return checkpointer;
}

Checkpointer::Checkpointer(Database& writer, std::mutex& writer_mutex, std::unique_ptr<Database> own,
                           Thresholds thresholds)
    : writer_(writer),
      writer_mutex_(writer_mutex),
      db_(std::move(own)),
      thresholds_(thresholds),
      thread_([this] { run(); }) {}

Checkpointer::~Checkpointer() {
  sqlite3_wal_hook(writer_.handle(), nullptr, nullptr);
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

Status Checkpointer::last_status() {
  std::lock_guard lock(mu_);
  return last_status_;
}

Checkpointer::Stats Checkpointer::stats() const {
  return {background_passes_.load(std::memory_order_relaxed), cycles_ended_.load(std::memory_order_relaxed),
          finish_ns_.load(std::memory_order_relaxed), writer_passes_.load(std::memory_order_relaxed)};
}

// Runs on the committing thread, inside the commit: keep it short.
int Checkpointer::on_commit(void* self, sqlite3* db, const char* schema, int wal_frames) {
  auto* checkpointer = static_cast<Checkpointer*>(self);
  const Thresholds& t = checkpointer->thresholds_;
  checkpointer->wal_frames_.store(wal_frames, std::memory_order_relaxed);
  if (wal_frames >= t.foreground_frames) {
    // The background fell this far behind: copy on the writer too. PASSIVE
    // never waits (no busy handler): SQLITE_BUSY when a background pass
    // holds the checkpoint lock, and the next commit tries again.
    int backfilled = 0;
    const int rc = sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, &backfilled);
    checkpointer->writer_passes_.fetch_add(1, std::memory_order_relaxed);
    checkpointer->record(rc, db, "wal checkpoint (writer)", backfilled);
  } else if (wal_frames >= t.background_frames) {
    checkpointer->request();
  }
  return SQLITE_OK;
}

// BUSY is not a failure: another pass holds the checkpoint lock and the next
// commit asks again.
void Checkpointer::record(int rc, sqlite3* db, const char* what, int backfilled) {
  if (rc == SQLITE_OK && backfilled >= 0) backfilled_.store(backfilled, std::memory_order_relaxed);
  std::lock_guard lock(mu_);
  last_status_ = rc == SQLITE_OK || rc == SQLITE_BUSY ? Status::ok() : sqlite_status(db, rc, what);
}

void Checkpointer::request() {
  {
    std::lock_guard lock(mu_);
    requested_ = true;
  }
  cv_.notify_one();
}

Checkpointer::Pass Checkpointer::background_pass() {
  Pass pass{SQLITE_OK, -1, -1};
  pass.rc = sqlite3_wal_checkpoint_v2(db_->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &pass.log_frames,
                                      &pass.backfilled);
  background_passes_.fetch_add(1, std::memory_order_relaxed);
  record(pass.rc, db_->handle(), "wal checkpoint", pass.backfilled);
  return pass;
}

int Checkpointer::sync_database_file() {
  sqlite3_file* file = nullptr;
  const int rc = sqlite3_file_control(db_->handle(), "main", SQLITE_FCNTL_FILE_POINTER, &file);
  if (rc != SQLITE_OK || file == nullptr || file->pMethods == nullptr) return rc == SQLITE_OK ? SQLITE_ERROR : rc;
  return file->pMethods->xSync(file, SQLITE_SYNC_NORMAL);
}

// A pass "reached its start's end" when it copied every frame the WAL held
// when it began: no reader's snapshot stopped it. Only then is the tail
// behind it (what the writer committed during the pass) worth a last pass
// under the writer's mutex; a pinned WAL would make that pass copy nothing.
void Checkpointer::end_cycle(Pass last) {
  constexpr int kMaxCatchUpPasses = 8;
  // Asked again before the writer's next commit (which restarts the WAL).
  if (wal_frames_.load(std::memory_order_relaxed) == ended_at_frames_) return;
  for (int i = 0;; ++i) {
    if (last.rc != SQLITE_OK || last.log_frames <= 0 || last.backfilled != last.log_frames) return;
    const int frames = wal_frames_.load(std::memory_order_relaxed);
    if (frames < last.log_frames) return;  // restarted meanwhile (the writer's net)
    if (frames - last.backfilled <= thresholds_.finish_tail_frames) break;
    if (i == kMaxCatchUpPasses) return;  // the writer outruns the passes; the next commit asks again
    last = background_pass();
  }
  // The overtaken passes wrote pages without syncing the database (SQLite
  // syncs it only after a pass that reached the WAL's current end); sync
  // them now so the last pass's own sync covers the tail alone.
  if (const int rc = sync_database_file(); rc != SQLITE_OK) {
    record(rc, db_->handle(), "database sync before the last pass", -1);
    return;
  }
  // Counted before the writer's mutex is released: whoever reads the count
  // under it knows no commit has come since.
  std::lock_guard writer_lock(writer_mutex_);
  const auto locked = std::chrono::steady_clock::now();
  const Pass final_pass = background_pass();
  finish_ns_.fetch_add(static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                      std::chrono::steady_clock::now() - locked)
                                                      .count()),
                       std::memory_order_relaxed);
  if (final_pass.rc == SQLITE_OK && final_pass.log_frames > 0 && final_pass.backfilled == final_pass.log_frames) {
    cycles_ended_.fetch_add(1, std::memory_order_relaxed);
    ended_at_frames_ = final_pass.log_frames;
  }
}

void Checkpointer::run() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return requested_ || stop_; });
    if (stop_) return;
    requested_ = false;
    lock.unlock();
    const Pass pass = background_pass();
    if (wal_frames_.load(std::memory_order_relaxed) >= thresholds_.restart_frames) end_cycle(pass);
    lock.lock();
  }
}

}  // namespace reai::store
