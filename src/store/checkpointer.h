// Background WAL checkpoints for the SQLite store, private to src/store.
//
// SQLite's automatic checkpoint runs inside the commit that crosses its
// threshold: every few hundred appends one caller would copy pages back to
// the database and wait for two fsyncs (milliseconds on a busy disk) while
// holding the store's only write lock, stalling every other append. The
// Checkpointer takes over the writer's WAL hook and does that work on its own
// thread and connection instead; PASSIVE checkpoints never block writers.
//
// A background checkpoint alone never lets the WAL restart while appends keep
// coming (the writer always adds frames during the pass), so the file would
// grow to the foreground limit; on ext4 a growing file also makes every
// fsync flush its new blocks, which stalled appends for hundreds of ms. So
// once the WAL passes kRestartFrames the background stops being asked, and
// the next commit that finds it idle checkpoints the short remaining tail on
// the writer's connection: fully backfilled, the WAL restarts from its start
// at the next write and its file (blocks already allocated) is reused.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/status.h"
#include "store/sqlite_db.h"

namespace reai::store {

class Checkpointer {
 public:
  // Opens a second connection to `path` and hooks `writer`'s commits.
  // `writer` must outlive the Checkpointer.
  static Result<std::unique_ptr<Checkpointer>> start(Database& writer, const std::string& path);
  // Unhooks the writer and joins the thread.
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // OK, or the last checkpoint failure (for health checks).
  Status last_status();

 private:
  Checkpointer(Database& writer, std::unique_ptr<Database> own);
  static int on_commit(void* self, sqlite3* db, const char* schema, int wal_frames);
  void request();
  void run();

  Database& writer_;
  std::unique_ptr<Database> db_;  // used by thread_ only

  std::mutex mu_;
  std::condition_variable cv_;
  bool requested_ = false;  // guarded by mu_
  bool stop_ = false;       // guarded by mu_
  Status last_status_;      // guarded by mu_
  std::atomic<bool> running_{false};  // a background pass is in progress
  std::thread thread_;
};

}  // namespace reai::store
