// The background checkpointer: the WAL restarts at the configured point
// while appends keep coming, and every committed row is still there.
#include "store/checkpointer.h"

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "store/sqlite_db.h"
#include "store/wal_test_support.h"
#include "support/temp_dir.h"

namespace reai::store {
namespace {

namespace fs = std::filesystem;

class TempDir : public reai::testing::TempDir {
 public:
  TempDir() : reai::testing::TempDir("reai_checkpointer_test") {}
};

std::unique_ptr<Database> open_wal(const fs::path& file) {
  auto db = Database::open(file.string());
  EXPECT_TRUE(db.has_value());
  if (!db) return nullptr;
  EXPECT_TRUE((*db)->exec("PRAGMA journal_mode = WAL").is_ok());
  EXPECT_TRUE((*db)->exec("PRAGMA synchronous = NORMAL").is_ok());
  return std::move(*db);
}

void create_rows_table(Database& db) {
  ASSERT_TRUE(db.exec("CREATE TABLE rows (id INTEGER PRIMARY KEY, k INTEGER NOT NULL, body TEXT NOT NULL);"
                      "CREATE INDEX rows_by_k ON rows (k)")
                  .is_ok());
}

// One commit per row; each touches the table's tail and a random leaf of
// the index, two or more WAL frames.
void insert_rows(Database& db, int first, int count) {
  for (int i = first; i < first + count; ++i) {
    auto stmt = db.prepare("INSERT INTO rows (id, k, body) VALUES (?1, ?2, ?3)");
    ASSERT_TRUE(stmt.has_value());
    StatementScope scope(*stmt);
    (*stmt)->bind(1, static_cast<std::int64_t>(i));
    (*stmt)->bind(2, static_cast<std::int64_t>((i * 7919) % 1009));
    const std::string body(1000, static_cast<char>('a' + i % 26));
    (*stmt)->bind(3, body);
    ASSERT_TRUE((*stmt)->run().is_ok());
  }
}

std::int64_t query_int(Database& db, const std::string& sql) {
  auto stmt = db.prepare(sql);
  EXPECT_TRUE(stmt.has_value());
  if (!stmt) return -1;
  StatementScope scope(*stmt);
  Status status;
  if (!(*stmt)->step(&status)) return -1;
  return (*stmt)->int64(0);
}

TEST(CheckpointerTest, WalRestartsAtItsThresholdAndKeepsEveryRow) {
  TempDir tmp;
  const fs::path file = tmp.path() / "c.db";
  // Rows go in until the WAL has restarted twice. The writer restarts it only
  // once no background pass runs, so how many rows that takes depends on
  // how the threads are scheduled (a loaded machine can hold a pass back for
  // a while); with restarts out of reach the cap is hit and the test fails.
  constexpr int kChunk = 100;
  // ~26k frames: some 200 restart points at 128, none at the default 65,536,
  // so a checkpointer that ignored the thresholds given fails here.
  constexpr int kMaxRows = 10'000;
  int rows = 0;
  {
    auto db = open_wal(file);
    ASSERT_NE(db, nullptr);
    ASSERT_NO_FATAL_FAILURE(create_rows_table(*db));
    auto checkpointer = Checkpointer::start(*db, file.string(), {.background_frames = 64,
                                                                 .restart_frames = 128,
                                                                 .foreground_frames = 512});
    ASSERT_TRUE(checkpointer.has_value());
    // Each restart bumps the checkpoint sequence number in the WAL header.
    while (rows < kMaxRows && wal_restarts(file) < 2) {
      ASSERT_NO_FATAL_FAILURE(insert_rows(*db, rows, kChunk));
      rows += kChunk;
    }
    EXPECT_GE(wal_restarts(file), 2u) << "the WAL did not restart in " << rows << " rows";
    EXPECT_TRUE((*checkpointer)->last_status().is_ok());
  }
  auto reopened = open_wal(file);
  ASSERT_NE(reopened, nullptr);
  EXPECT_EQ(query_int(*reopened, "SELECT count(*) FROM rows"), rows);
  EXPECT_EQ(query_int(*reopened, "SELECT sum(id) FROM rows"), std::int64_t{rows} * (rows - 1) / 2);
  EXPECT_EQ(query_int(*reopened, "SELECT integrity_check = 'ok' FROM pragma_integrity_check"), 1);
}

// A read transaction (the store's long scan on a reader) pins the WAL: no
// restart while it is open, however far appends carry the WAL past the
// restart point. Once it ends, the checkpointer copies the long tail and
// the WAL restarts again, every row kept.
TEST(CheckpointerTest, ReaderPinsTheWalUntilItEndsThenItRestarts) {
  TempDir tmp;
  const fs::path file = tmp.path() / "c.db";
  auto db = open_wal(file);
  ASSERT_NE(db, nullptr);
  ASSERT_NO_FATAL_FAILURE(create_rows_table(*db));
  auto checkpointer = Checkpointer::start(*db, file.string(), {.background_frames = 64,
                                                               .restart_frames = 128,
                                                               .foreground_frames = 100'000});
  ASSERT_TRUE(checkpointer.has_value());
  ASSERT_NO_FATAL_FAILURE(insert_rows(*db, 0, 10));
  auto reader = open_wal(file);
  ASSERT_NE(reader, nullptr);
  auto scan = reader->prepare("SELECT id FROM rows ORDER BY id");
  ASSERT_TRUE(scan.has_value());
  Status status;
  ASSERT_TRUE((*scan)->step(&status));  // the read transaction is open from here
  const auto restarts_before = wal_restarts(file);
  int rows = 10;
  ASSERT_NO_FATAL_FAILURE(insert_rows(*db, rows, 1000));  // thousands of frames: many restart points
  rows += 1000;
  EXPECT_EQ(wal_restarts(file), restarts_before) << "the WAL restarted under an open reader";
  std::int64_t seen = 1;
  while ((*scan)->step(&status)) ++seen;
  EXPECT_TRUE(status.is_ok());
  EXPECT_EQ(seen, 10) << "the reader's snapshot changed";
  (*scan)->reset();  // the read transaction ends
  constexpr int kMaxRows = 20'000;
  while (rows < kMaxRows && wal_restarts(file) < restarts_before + 2) {
    ASSERT_NO_FATAL_FAILURE(insert_rows(*db, rows, 100));
    rows += 100;
  }
  EXPECT_GE(wal_restarts(file), restarts_before + 2) << "the WAL did not restart in " << rows << " rows";
  EXPECT_TRUE((*checkpointer)->last_status().is_ok());
  EXPECT_EQ(query_int(*reader, "SELECT count(*) FROM rows"), rows);
}

TEST(CheckpointerTest, DefaultThresholdsAreOrderedAndRestartAt256MiB) {
  const Checkpointer::Thresholds t;
  EXPECT_LT(t.background_frames, t.restart_frames);
  EXPECT_LT(t.restart_frames, t.foreground_frames);
  EXPECT_EQ(std::int64_t{t.restart_frames} * 4096, std::int64_t{256} << 20);
}

TEST(CheckpointerTest, ThresholdsOutOfOrderAreRefused) {
  TempDir tmp;
  const fs::path file = tmp.path() / "c.db";
  auto db = open_wal(file);
  ASSERT_NE(db, nullptr);
  for (const auto& bad : {Checkpointer::Thresholds{.background_frames = 0, .restart_frames = 10, .foreground_frames = 20},
                          Checkpointer::Thresholds{.background_frames = 20, .restart_frames = 10, .foreground_frames = 30},
                          Checkpointer::Thresholds{.background_frames = 5, .restart_frames = 30, .foreground_frames = 10}}) {
    auto checkpointer = Checkpointer::start(*db, file.string(), bad);
    ASSERT_FALSE(checkpointer.has_value());
    EXPECT_EQ(checkpointer.status().code(), StatusCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace reai::store
