// Background WAL checkpoints for the SQLite store, private to src/store.
//
// SQLite's automatic checkpoint runs inside the commit that crosses its
// threshold: every few hundred appends one caller would copy pages back to
// the database and wait for two fsyncs (milliseconds on a busy disk) while
// holding the store's only write lock, stalling every other append. The
// Checkpointer takes over the writer's WAL hook and does that work on its own
// thread and connection instead; PASSIVE checkpoints never block writers.
#pragma once

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
  std::thread thread_;
};

}  // namespace reai::store
