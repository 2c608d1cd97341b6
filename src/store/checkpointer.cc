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
  const bool restart_due = wal_frames >= t.restart_frames && background_idle;
  if (wal_frames >= t.foreground_frames || (restart_due && checkpointer->writer_takes_tail(wal_frames))) {
    // PASSIVE never waits (no busy handler): SQLITE_BUSY when a background
    // pass just started, and the next commit tries again.
    int backfilled = 0;
    const int rc = sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, &backfilled);
    checkpointer->record(rc, db, "wal checkpoint (writer)", backfilled);
    checkpointer->writer_seen_backfilled_ = checkpointer->backfilled_.load(std::memory_order_relaxed);
  } else if (restart_due || (wal_frames >= t.background_frames && wal_frames < t.restart_frames)) {
    checkpointer->request();
  }
  return SQLITE_OK;
}

// Past the restart point, whether the writer copies the tail itself (the
// short rest a background pass left) or leaves it to the background: a
// reader's snapshot (a long scan) stops every pass at the frame it started
// from, so the tail behind it grows while the scan runs. The writer takes a
// short tail, and a long one only once a background pass made progress since
// it last looked (that pass copied the bulk; the rest arrived during it, as
// without readers). No progress: the WAL is pinned, or was until now and no
// pass has run since, so the background is asked.
bool Checkpointer::writer_takes_tail(int wal_frames) {
  const int backfilled = backfilled_.load(std::memory_order_relaxed);
  // A count above the WAL's size is from before the last restart.
  const int tail = backfilled <= wal_frames ? wal_frames - backfilled : wal_frames;
  const bool progressed = backfilled != writer_seen_backfilled_;
  writer_seen_backfilled_ = backfilled;
  return tail <= (thresholds_.restart_frames - thresholds_.background_frames) / 2 || progressed;
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

void Checkpointer::run() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return requested_ || stop_; });
    if (stop_) return;
    requested_ = false;
    running_.store(true, std::memory_order_release);
    lock.unlock();
    int backfilled = 0;
    const int rc = sqlite3_wal_checkpoint_v2(db_->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                       nullptr, &backfilled);
    record(rc, db_->handle(), "wal checkpoint", backfilled);
    running_.store(false, std::memory_order_release);
    lock.lock();
  }
}

}  // namespace reai::store
