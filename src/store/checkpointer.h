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
// once the WAL passes the restart point the background stops being asked, and
// the next commit that finds it idle checkpoints the short remaining tail on
// the writer's connection: fully backfilled, the WAL restarts from its start
// at the next write and its file (blocks already allocated) is reused.
//
// That short tail is the one stall on the append path that holds every
// request in flight (the writer waits for its own copy and two fsyncs), so the
// restart point is set by how often it may happen: at 20k appends/s the WAL
// grows by ~200 MiB/s (about three frames per append), and a restart every
// 64 MiB put the writer in its own checkpoint for 2-4% of the time (figures
// in docs/RESULTS.md, "POST /api/events, session 8"), i.e. across the p99 of
// the answers.
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
  // WAL sizes in frames (one page each, 4 KiB by default) at which the
  // checkpoint work starts; 0 < background <= restart <= foreground.
  struct Thresholds {
    // Background passes are asked for from here on (128 MiB of 4 KiB pages).
    // Pages the load keeps dirtying (index leaves, the tail of each table) are
    // copied once per pass, so starting later copies them fewer times.
    int background_frames = 32'768;
    // The next commit that finds the background idle finishes the checkpoint
    // itself and the WAL restarts (256 MiB). Larger: rarer writer stalls of
    // about the same length (the background keeps the tail short), a larger
    // WAL file and a longer recovery read after a crash.
    int restart_frames = 65'536;
    // Safety net when the background cannot keep up (1 GiB): every commit
    // tries a checkpoint itself.
    int foreground_frames = 262'144;
  };

  // Opens a second connection to `path` and hooks `writer`'s commits.
  // `writer` must outlive the Checkpointer.
  static Result<std::unique_ptr<Checkpointer>> start(Database& writer, const std::string& path,
                                                     Thresholds thresholds);
  static Result<std::unique_ptr<Checkpointer>> start(Database& writer, const std::string& path) {
    return start(writer, path, Thresholds{});
  }
  // Unhooks the writer and joins the thread.
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // OK, or the last checkpoint failure (for health checks).
  Status last_status();

 private:
  Checkpointer(Database& writer, std::unique_ptr<Database> own, Thresholds thresholds);
  static int on_commit(void* self, sqlite3* db, const char* schema, int wal_frames);
  void request();
  void run();

  Database& writer_;
  std::unique_ptr<Database> db_;  // used by thread_ only
  const Thresholds thresholds_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool requested_ = false;  // guarded by mu_
  bool stop_ = false;       // guarded by mu_
  Status last_status_;      // guarded by mu_
  std::atomic<bool> running_{false};  // a background pass is in progress
  std::thread thread_;
};

}  // namespace reai::store
