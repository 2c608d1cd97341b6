#include <gtest/gtest.h>

#include "server/server.h"

namespace reai::server {
namespace {

constexpr UnixSeconds kNow = 1'700'000'000;

TEST(Token, RoundTrip) {
  auto token = issue_token("tenant-a", Role::kAdmin, "secret", 3600, kNow);
  ASSERT_TRUE(token) << token.status().to_string();
  auto claims = verify_token(*token, "secret", kNow + 10);
  ASSERT_TRUE(claims) << claims.status().to_string();
  EXPECT_EQ(claims->tenant_id, "tenant-a");
  EXPECT_EQ(claims->role, Role::kAdmin);
  EXPECT_EQ(claims->expires_at, kNow + 3600);
}

TEST(Token, Expired) {
  auto token = issue_token("t", Role::kAgent, "secret", 60, kNow);
  ASSERT_TRUE(token);
  auto claims = verify_token(*token, "secret", kNow + 60);
  ASSERT_FALSE(claims);
  EXPECT_EQ(claims.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(claims.status().message().find("expired"), std::string::npos);
}

TEST(Token, ForgedWithOtherSecret) {
  auto token = issue_token("t", Role::kAdmin, "other-secret", 60, kNow);
  ASSERT_TRUE(token);
  auto claims = verify_token(*token, "secret", kNow);
  ASSERT_FALSE(claims);
  EXPECT_EQ(claims.status().code(), StatusCode::kUnauthenticated);
}

TEST(Token, TamperedClaimsFail) {
  auto agent = issue_token("t", Role::kAgent, "secret", 60, kNow);
  auto admin = issue_token("t", Role::kAdmin, "secret", 60, kNow);
  ASSERT_TRUE(agent && admin);
  // Agent's header and signature with the admin's claims.
  const std::string& a = *agent;
  const std::string& b = *admin;
  std::string forged = a.substr(0, a.find('.')) + b.substr(b.find('.'), b.rfind('.') - b.find('.')) + a.substr(a.rfind('.'));
  EXPECT_FALSE(verify_token(forged, "secret", kNow));
}

TEST(Token, WrongAlgorithmRejected) {
  // {"alg":"none","typ":"JWT"} . {"tenant_id":"t",...} (rejected on alg before claims are read) . (empty)
  const std::string none_alg =
      "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJ0ZW5hbnRfaWQiOiJ0Iiwicm9sZSI6ImFkbWluIiwiZXhwIjo5OTk5OTk5OTk5fQ.";
  auto claims = verify_token(none_alg, "secret", kNow);
  ASSERT_FALSE(claims);
  EXPECT_NE(claims.status().message().find("HS256"), std::string::npos);
  // {"alg":"HS512"} with the same claims.
  const std::string hs512 = "eyJhbGciOiJIUzUxMiJ9.eyJ0ZW5hbnRfaWQiOiJ0Iiwicm9sZSI6ImFkbWluIiwiZXhwIjo5OTk5OTk5OTk5fQ.c2ln";
  EXPECT_FALSE(verify_token(hs512, "secret", kNow));
}

TEST(Token, GarbageRejected) {
  for (const char* garbage : {"", ".", "..", "...", "abc", "a.b.c", "!!!.###.$$$", "eyJ.eyJ.eyJ"}) {
    auto claims = verify_token(garbage, "secret", kNow);
    ASSERT_FALSE(claims) << garbage;
    EXPECT_EQ(claims.status().code(), StatusCode::kUnauthenticated);
  }
}

TEST(Token, IssueValidatesArguments) {
  EXPECT_FALSE(issue_token("", Role::kAgent, "s", 60, kNow));
  EXPECT_FALSE(issue_token("t", Role::kAgent, "", 60, kNow));
  EXPECT_FALSE(issue_token("t", Role::kAgent, "s", 0, kNow));
}

TEST(Token, ParseRole) {
  EXPECT_EQ(parse_role("agent"), Role::kAgent);
  EXPECT_EQ(parse_role("admin"), Role::kAdmin);
  EXPECT_EQ(parse_role("root"), std::nullopt);
  EXPECT_EQ(role_name(Role::kAdmin), "admin");
}

TEST(VerifyTokenCached, AnswersAsVerifyTokenAndStillExpires) {
  const std::string secret = "cache-secret";
  auto token = issue_token("t_a", Role::kAdmin, secret, 60, 1000).value();
  for (int i = 0; i < 3; ++i) {  // the first verifies, the rest are remembered
    auto claims = verify_token_cached(token, secret, 1000 + i);
    ASSERT_TRUE(claims.has_value()) << claims.status().to_string();
    EXPECT_EQ(claims->tenant_id, "t_a");
    EXPECT_EQ(claims->role, Role::kAdmin);
    EXPECT_EQ(claims->expires_at, 1060);
  }
  EXPECT_EQ(verify_token_cached(token, secret, 1060).status().code(), StatusCode::kUnauthenticated);
  // A remembered token under another secret is verified afresh, and refused.
  EXPECT_EQ(verify_token_cached(token, "other-secret", 1001).status().code(), StatusCode::kUnauthenticated);
  // Tampering changes the text, so it is never a hit.
  std::string forged = token;
  forged.back() = forged.back() == 'A' ? 'B' : 'A';
  EXPECT_EQ(verify_token_cached(forged, secret, 1001).status().code(), StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace reai::server
