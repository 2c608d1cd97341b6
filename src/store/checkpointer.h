// Background WAL checkpoints for the SQLite store, private to src/store.
//
// SQLite's automatic checkpoint runs inside the commit that crosses its
// threshold: every few hundred appends one caller would copy pages back to
// the database and wait for two fsyncs (milliseconds on a busy disk) while
// holding the store's only write lock, stalling every other append. The
// Checkpointer takes over the writer's WAL hook and does that work on its own
// thread and connection instead; PASSIVE checkpoints never block writers.
//
// A WAL restarts (new frames go to its start again) only when a pass has
// copied every frame and no commit came after it; while appends keep coming
// a background pass is always overtaken by the writer, so the WAL would grow
// to the foreground limit (and on ext4 a growing file makes every fsync flush
// its new blocks, which stalled appends for hundreds of ms). So past the
// restart point the background ends the cycle itself: it runs passes until
// what is left behind the last one (the tail) is short, syncs the database
// file, then holds the writer's mutex (no write transaction can start) for
// one last pass that copies the tail and leaves the WAL fully backfilled. The
// writer's next commit starts the WAL again from its beginning; it never
// copies pages or syncs the database itself (until the foreground net).
//
// That last pass is the one stall on the append path that holds every
// request in flight (the writer waits for the mutex), so it is kept short:
// a tail of at most `finish_tail_frames` and a database whose other pages
// were synced just before. When the writer copied the tail itself (until
// session 10) it waited for the WAL's and the database's fsyncs, the
// latter covering every page the overtaken passes had written: 1.4-5.8 ms
// per cycle (figures in docs/RESULTS.md, "POST /api/events, session 10").
// The restart point is set by how often that stall may happen: at 20k
// appends/s the WAL grows by ~200 MiB/s (about three frames per append).
//
// Readers (the store's read connections) pin the WAL: no pass copies frames
// past the snapshot of the oldest read transaction, and the WAL restarts only
// when no reader uses it. While a long scan runs under load the WAL grows past
// the restart point with a tail no pass can copy; the background then stops
// after a pass that made no progress and never takes the writer's mutex for
// it. The restart is delayed until the scan ends, never prevented: the next
// commit asks again, and the passes copy the bulk before the short last one.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
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
    // From here on the background ends the cycle and the WAL restarts
    // (256 MiB). Larger: rarer short writer stalls, a larger WAL file and a
    // longer recovery read after a crash.
    int restart_frames = 65'536;
    // Safety net when the background cannot keep up (1 GiB): every commit
    // tries a checkpoint itself.
    int foreground_frames = 262'144;
    // The background takes the writer's mutex for the cycle's last pass only
    // when the tail behind its previous pass is at most this long (4 MiB);
    // longer, it runs another pass first. Positive.
    int finish_tail_frames = 1'024;
  };

  // Counts since start, for tests and figures; any thread.
  struct Stats {
    std::uint64_t background_passes = 0;  // passes on the checkpointer's thread, the last ones included
    std::uint64_t cycles_ended = 0;       // last passes that left the WAL fully backfilled
    std::uint64_t finish_ns = 0;          // wall time the writer's mutex was held for last passes
    std::uint64_t writer_passes = 0;      // checkpoints the writer ran itself (the foreground net)
  };

  // Opens a second connection to `path` and hooks `writer`'s commits.
  // `writer_mutex` is held by every write transaction on `writer` (and
  // whatever else must not run between them); the checkpointer holds it for
  // a cycle's last pass. `writer` and `writer_mutex` must outlive the
  // Checkpointer. InvalidArgument for thresholds out of order; the open's
  // error when the second connection fails.
  static Result<std::unique_ptr<Checkpointer>> start(Database& writer, std::mutex& writer_mutex,
                                                     const std::string& path, Thresholds thresholds);
  static Result<std::unique_ptr<Checkpointer>> start(Database& writer, std::mutex& writer_mutex,
                                                     const std::string& path) {
    return start(writer, writer_mutex, path, Thresholds{});
  }
  // Unhooks the writer and joins the thread.
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // OK, or the failure of the last checkpoint pass, the background's or the
  // writer's own (for health checks).
  Status last_status();

  Stats stats() const;

 private:
  // What a PASSIVE pass reported: frames in the WAL when it started, and
  // frames copied (both -1 when it failed).
  struct Pass {
    int rc;
    int log_frames;
    int backfilled;
  };

  Checkpointer(Database& writer, std::mutex& writer_mutex, std::unique_ptr<Database> own, Thresholds thresholds);
  static int on_commit(void* self, sqlite3* db, const char* schema, int wal_frames);
  void request();
  // `backfilled`: frames of the WAL already copied, as the pass reported.
  void record(int rc, sqlite3* db, const char* what, int backfilled);
  void run();
  Pass background_pass();
  // Past the restart point: passes until the tail is short, then the last
  // one under the writer's mutex. Returns when the cycle ended, or when a
  // pass made no progress (a reader pins the WAL; the next commit asks again).
  void end_cycle(Pass first);
  // The checkpointer connection's own handle on the database file.
  int sync_database_file();

  Database& writer_;
  std::mutex& writer_mutex_;
  std::unique_ptr<Database> db_;  // used by thread_ only
  const Thresholds thresholds_;
  std::atomic<int> wal_frames_{0};  // WAL size after the writer's last commit
  std::atomic<std::uint64_t> background_passes_{0};
  std::atomic<std::uint64_t> cycles_ended_{0};
  std::atomic<std::uint64_t> finish_ns_{0};
  std::atomic<std::uint64_t> writer_passes_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  bool requested_ = false;  // guarded by mu_
  bool stop_ = false;       // guarded by mu_
  Status last_status_;      // guarded by mu_
  std::atomic<int> backfilled_{0};    // frames copied, by the last pass that succeeded
  int ended_at_frames_ = -1;          // WAL size when thread_ last ended a cycle; thread_ only
  std::thread thread_;
};

}  // namespace reai::store
