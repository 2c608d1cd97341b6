#include "store/checkpointer.h"

namespace reai::store {
namespace {

// WAL frames (pages) after which a background checkpoint is requested:
// 32 MiB with 4 KiB pages. Pages the load keeps dirtying (index leaves, the
// tail of each table) are copied once per pass, so a longer WAL costs less
// disk work per event than SQLite's default of 1,000.
constexpr int kBackgroundFrames = 8192;
// WAL frames (64 MiB with 4 KiB pages) after which the writer finishes the
// checkpoint itself, whenever no background pass is running. The background
// keeps the tail short, so its cost hardly depends on this; a larger value
// makes the writer's short stall rarer, at the price of a larger WAL file.
constexpr int kRestartFrames = 16384;
// Safety net when the background thread cannot keep up (about 1 GiB of WAL
// with 4 KiB pages): the committing writer checkpoints itself.
constexpr int kForegroundFrames = 262'144;

}  // namespace

Result<std::unique_ptr<Checkpointer>> Checkpointer::start(Database& writer, const std::string& path) {
  auto own = Database::open(path);
  if (!own) return own.status();
  REAI_RETURN_IF_ERROR((*own)->exec("PRAGMA busy_timeout = 5000"));
  // A connection learns that the database is in WAL mode only when it first
  // reads it; until then its checkpoints are silent no-ops (log size -1).
  REAI_RETURN_IF_ERROR((*own)->exec("PRAGMA journal_mode = WAL"));
  std::unique_ptr<Checkpointer> checkpointer(new Checkpointer(writer, std::move(*own)));
  // Replaces SQLite's automatic checkpoint, which is itself a WAL hook.
  sqlite3_wal_hook(writer.handle(), &Checkpointer::on_commit, checkpointer.get());
  return checkpointer;
}

Checkpointer::Checkpointer(Database& writer, std::unique_ptr<Database> own)
    : writer_(writer), db_(std::move(own)), thread_([this] { run(); }) {}

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
  const bool background_idle = !checkpointer->running_.load(std::memory_order_acquire);
  if (wal_frames >= kForegroundFrames || (wal_frames >= kRestartFrames && background_idle)) {
    // PASSIVE never waits (no busy handler): SQLITE_BUSY when a background
    // pass just started, and the next commit tries again.
    sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  } else if (wal_frames >= kBackgroundFrames && wal_frames < kRestartFrames) {
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
