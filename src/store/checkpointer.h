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
//
// Readers (the store's read connections) pin the WAL: no pass copies frames
// past the snapshot of the oldest read transaction, and the WAL restarts only
// when no reader uses it. While a long scan runs under load the WAL grows past
// the restart point with a tail no pass could copy. The writer would then
// copy that whole tail in its own commit once the scan ends (~100 MiB after
// a half-second scan at full load); so past the restart point the writer
// leaves a tail longer than half the background span (restart - background
// frames) to the background unless a background pass made progress since
// the writer last looked (writer_takes_tail). The restart is delayed until
// the scan ends, never prevented: once no reader pins the WAL, one
// background pass copies the bulk and the next commit takes the rest and
// restarts it as usual.
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
  // `writer` must outlive the Checkpointer. InvalidArgument for thresholds
  // out of order; the open's error when the second connection fails.
  static Result<std::unique_ptr<Checkpointer>> start(Database& writer, const std::string& path,
                                                     Thresholds thresholds);
  static Result<std::unique_ptr<Checkpointer>> start(Database& writer, const std::string& path) {
    return start(writer, path, Thresholds{});
  }
  // Unhooks the writer and joins the thread.
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // OK, or the failure of the last checkpoint pass, the background's or the
  // writer's own (for health checks).
  Status last_status();

 private:
  Checkpointer(Database& writer, std::unique_ptr<Database> own, Thresholds thresholds);
  static int on_commit(void* self, sqlite3* db, const char* schema, int wal_frames);
  void request();
  // `backfilled`: frames of the WAL already copied, as the pass reported.
  void record(int rc, sqlite3* db, const char* what, int backfilled);
  // Called by on_commit only (under the store's writer lock).
  bool writer_takes_tail(int wal_frames);
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
  std::atomic<int> backfilled_{0};    // frames copied, by the last pass that succeeded
  int writer_seen_backfilled_ = -1;   // backfilled_ when on_commit last looked; on_commit only
  std::thread thread_;
};

}  // namespace reai::store
