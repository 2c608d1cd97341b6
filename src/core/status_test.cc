#include "core/status.h"

#include <gtest/gtest.h>

namespace reai {
namespace {

Result<int> half(int x) {
  if (x % 2) return invalid_argument("odd");
  return x / 2;
}

Status chain(int x) {
  REAI_RETURN_IF_ERROR(half(x).status());
  return Status::ok();
}

TEST(StatusTest, OkAndError) {
  EXPECT_TRUE(Status::ok().is_ok());
  EXPECT_EQ(Status::ok().to_string(), "OK");
  Status s = not_found("contact c1");
  EXPECT_FALSE(s.is_ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.to_string(), "NotFound: contact c1");
}

TEST(StatusTest, ResultCarriesValueOrError) {
  auto a = half(8);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(*a, 4);
  EXPECT_TRUE(a.status().is_ok());
  auto b = half(3);
  ASSERT_FALSE(b.has_value());
  EXPECT_EQ(b.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(chain(3).message(), "odd");
  EXPECT_TRUE(chain(4).is_ok());
}

}  // namespace
}  // namespace reai
