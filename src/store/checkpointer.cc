#include "store/checkpointer.h"

namespace reai::store {

Result<std::unique_ptr<Checkpointer>> Checkpointer::start(Database& writer, const std::string& path,
                                                          Thresholds thresholds) {
  if (thresholds.background_frames <= 0 || thresholds.restart_frames < thresholds.background_frames ||
      thresholds.foreground_frames < thresholds.restart_frames) {
    return invalid_argument("checkpointer: thresholds must satisfy 0 < background <= restart <= foreground");
  }
  auto own = Database::open(path);
  if (!own) return own.status();
  REAI_RETURN_IF_ERROR((*own)->exec("PRAGMA busy_timeout = 5000"));
  // A connection learns that the database is in WAL mode only when it first
  // reads it; until then its checkpoints are silent no-ops (log size -1).
  REAI_RETURN_IF_ERROR((*own)->exec("PRAGMA journal_mode = WAL"));
  std::unique_ptr<Checkpointer> checkpointer(new Checkpointer(writer, std::move(*own), thresholds));
  // Replaces SQLite's automatic checkpoint, which is itself a WAL hook.
  sqlite3_wal_hook(writer.handle(), &Checkpointer::on_commit, checkpointer.get());
  return checkpointer;
}

Checkpointer::Checkpointer(Database& writer, std::unique_ptr<Database> own, Thresholds thresholds)
    : writer_(writer), db_(std::move(own)), thresholds_(thresholds), thread_([this] { run(); }) {}

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

// Runs on the committing thread, inside the commit: keep it short.
int Checkpointer::on_commit(void* self, sqlite3* db, const char* schema, int wal_frames) {
  auto* checkpointer = static_cast<Checkpointer*>(self);
  const Thresholds& t = checkpointer->thresholds_;
  const bool background_idle = !checkpointer->running_.load(std::memory_order_acquire);
  if (wal_frames >= t.foreground_frames || (wal_frames >= t.restart_frames && background_idle)) {
    // PASSIVE never waits (no busy handler): SQLITE_BUSY when a background
    // pass just started, and the next commit tries again.
    sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  } else if (wal_frames >= t.background_frames && wal_frames < t.restart_frames) {
    checkpointer->request();
  }
  return SQLITE_OK;
}

void Checkpointer::request() {
  {
    std::lock_guard lock(mu_);
    requested_ = true;
  }
  cv_.notify_one();
}

void Checkpointer::run() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return requested_ || stop_; });
    if (stop_) return;
    requested_ = false;
    running_.store(true, std::memory_order_release);
    lock.unlock();
    int rc = sqlite3_wal_checkpoint_v2(db_->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                       nullptr, nullptr);
    running_.store(false, std::memory_order_release);
    lock.lock();
    // BUSY: another checkpoint is running; the next commit asks again.
    if (rc == SQLITE_OK || rc == SQLITE_BUSY) {
      last_status_ = Status::ok();
    } else {
      last_status_ = sqlite_status(db_->handle(), rc, "wal checkpoint");
    }
  }
}

}  // namespace reai::store
