#include "store/checkpointer.h"

#include <gtest/gtest.h>

namespace reai::store {
namespace {

using Step = CheckpointPacer::Step;
constexpr int kBackground = CheckpointPacer::kBackgroundFrames;
constexpr int kPass = CheckpointPacer::kPassFrames;
constexpr int kRestart = CheckpointPacer::kRestartFrames;

TEST(CheckpointPacerTest, ShortWalNeedsNoCheckpoint) {
  CheckpointPacer pacer;
  EXPECT_EQ(pacer.on_commit(1, true), Step::kNone);
  EXPECT_EQ(pacer.on_commit(kBackground - 1, true), Step::kNone);
}

TEST(CheckpointPacerTest, BackgroundPassesArePacedByFrames) {
  CheckpointPacer pacer;
  EXPECT_EQ(pacer.on_commit(kBackground + 3, true), Step::kBackground);
  // Commits right after the request do not ask again (they did before the
  // pacing: one pass after another, two fsyncs each).
  EXPECT_EQ(pacer.on_commit(kBackground + 10, false), Step::kNone);
  EXPECT_EQ(pacer.on_commit(kBackground + 3 + kPass - 1, true), Step::kNone);
  EXPECT_EQ(pacer.on_commit(kBackground + 3 + kPass, false), Step::kBackground);
  EXPECT_EQ(pacer.on_commit(kBackground + 3 + kPass + 1, true), Step::kNone);
}

TEST(CheckpointPacerTest, WriterFinishesTheTailWhenTheBackgroundIsIdle) {
  CheckpointPacer pacer;
  EXPECT_EQ(pacer.on_commit(kRestart - 1, true), Step::kBackground);
  EXPECT_EQ(pacer.on_commit(kRestart, false), Step::kNone);  // a pass is running: the next commit tries
  EXPECT_EQ(pacer.on_commit(kRestart + 5, true), Step::kWriter);
  EXPECT_EQ(pacer.on_commit(kRestart + 9, true), Step::kWriter);  // until the WAL restarts
}

TEST(CheckpointPacerTest, ForegroundLimitCheckpointsEvenDuringAPass) {
  CheckpointPacer pacer;
  EXPECT_EQ(pacer.on_commit(CheckpointPacer::kForegroundFrames, false), Step::kWriter);
}

TEST(CheckpointPacerTest, ARestartedWalStartsANewCycle) {
  CheckpointPacer pacer;
  EXPECT_EQ(pacer.on_commit(kRestart - 2, true), Step::kBackground);
  EXPECT_EQ(pacer.on_commit(kRestart + 1, true), Step::kWriter);
  // Restarted: frames count from zero again, and the first pass is due at
  // the background threshold, not kPassFrames after the last request.
  EXPECT_EQ(pacer.on_commit(4, true), Step::kNone);
  EXPECT_EQ(pacer.on_commit(kBackground, true), Step::kBackground);
  EXPECT_EQ(pacer.on_commit(kBackground + 1, true), Step::kNone);
}

}  // namespace
}  // namespace reai::store
