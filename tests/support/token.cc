#include "support/token.h"

#include <gtest/gtest.h>

namespace reai::testing {

std::string reai_token(const std::string& tenant, server::Role role, const std::string& secret, UnixSeconds now) {
  constexpr UnixSeconds kTenYears = 3650LL * 86400;
  if (now == kWallClock) now = SystemClock().now();
  auto token = server::issue_token(tenant, role, secret, kTenYears, now);
  EXPECT_TRUE(token) << token.status().to_string();
  return token ? *token : std::string();
}

}  // namespace reai::testing
