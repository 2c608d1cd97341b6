#include "core/files.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

namespace reai {
namespace {

namespace fs = std::filesystem;

class FilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::random_device rd;
    dir_ = fs::temp_directory_path() / ("reai_files_test_" + std::to_string(rd()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(FilesTest, WriteThenReadGivesTheSameBytes) {
  const std::string path = (dir_ / "model.json").string();
  const std::string text = std::string("{\"a\":1}\n") + '\0' + "binary tail";
  ASSERT_TRUE(write_text_file(path, text));
  EXPECT_EQ(read_text_file(path).value(), text);
  ASSERT_TRUE(write_text_file(path, "short"));  // replaces, never appends
  EXPECT_EQ(read_text_file(path).value(), "short");
  EXPECT_FALSE(fs::exists(path + ".tmp"));
}

TEST_F(FilesTest, MissingFileAndUnwritableDirectoryAreErrors) {
  EXPECT_EQ(read_text_file((dir_ / "absent").string()).status().code(), StatusCode::kNotFound);
  const std::string path = (dir_ / "no-such-dir" / "model.json").string();
  EXPECT_EQ(write_text_file(path, "x").code(), StatusCode::kUnavailable);
  EXPECT_FALSE(fs::exists(path));
}

}  // namespace
}  // namespace reai
