#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "server/server.h"
#include "support/token.h"

namespace reai::server {
namespace {

constexpr UnixSeconds kNow = 1'700'000'000;
const std::string kKey = reai::testing::kTestJwtSecret;
const std::string kOtherKey = "another-hs256-key-of-thirty-two-bytes";

TEST(Token, RoundTrip) {
  auto token = issue_token("tenant-a", Role::kAdmin, kKey, 3600, kNow);
  ASSERT_TRUE(token) << token.status().to_string();
  auto claims = verify_token(*token, kKey, kNow + 10);
  ASSERT_TRUE(claims) << claims.status().to_string();
  EXPECT_EQ(claims->tenant_id, "tenant-a");
  EXPECT_EQ(claims->role, Role::kAdmin);
  EXPECT_EQ(claims->expires_at, kNow + 3600);
}

TEST(Token, Expired) {
  auto token = issue_token("t", Role::kAgent, kKey, 60, kNow);
  ASSERT_TRUE(token);
  auto claims = verify_token(*token, kKey, kNow + 60);
  ASSERT_FALSE(claims);
  EXPECT_EQ(claims.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(claims.status().message().find("expired"), std::string::npos);
}

TEST(Token, ForgedWithOtherSecret) {
  auto token = issue_token("t", Role::kAdmin, kOtherKey, 60, kNow);
  ASSERT_TRUE(token);
  auto claims = verify_token(*token, kKey, kNow);
  ASSERT_FALSE(claims);
  EXPECT_EQ(claims.status().code(), StatusCode::kUnauthenticated);
}

TEST(Token, TamperedClaimsFail) {
  auto agent = issue_token("t", Role::kAgent, kKey, 60, kNow);
  auto admin = issue_token("t", Role::kAdmin, kKey, 60, kNow);
  ASSERT_TRUE(agent && admin);
  // Agent's header and signature with the admin's claims.
  const std::string& a = *agent;
  const std::string& b = *admin;
  std::string forged = a.substr(0, a.find('.')) + b.substr(b.find('.'), b.rfind('.') - b.find('.')) + a.substr(a.rfind('.'));
  EXPECT_FALSE(verify_token(forged, kKey, kNow));
}

TEST(Token, WrongAlgorithmRejected) {
  // {"alg":"none","typ":"JWT"} . {"tenant_id":"t",...} (rejected on alg before claims are read) . (empty)
  const std::string none_alg =
      "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJ0ZW5hbnRfaWQiOiJ0Iiwicm9sZSI6ImFkbWluIiwiZXhwIjo5OTk5OTk5OTk5fQ.";
  auto claims = verify_token(none_alg, kKey, kNow);
  ASSERT_FALSE(claims);
  EXPECT_NE(claims.status().message().find("HS256"), std::string::npos);
  // {"alg":"HS512"} with the same claims.
  const std::string hs512 = "eyJhbGciOiJIUzUxMiJ9.eyJ0ZW5hbnRfaWQiOiJ0Iiwicm9sZSI6ImFkbWluIiwiZXhwIjo5OTk5OTk5OTk5fQ.c2ln";
  EXPECT_FALSE(verify_token(hs512, kKey, kNow));
}

TEST(Token, GarbageRejected) {
  for (const char* garbage : {"", ".", "..", "...", "abc", "a.b.c", "!!!.###.$$$", "eyJ.eyJ.eyJ"}) {
    auto claims = verify_token(garbage, kKey, kNow);
    ASSERT_FALSE(claims) << garbage;
    EXPECT_EQ(claims.status().code(), StatusCode::kUnauthenticated);
  }
}



TEST(Token, IssueRefusesAnInvalidTenantId) {
  for (const char* id : {"bad tenant!", "..", "../etc", "a/b"}) {
    auto token = issue_token(id, Role::kAgent, kKey, 60, kNow);
    ASSERT_FALSE(token) << id;
    EXPECT_EQ(token.status().code(), StatusCode::kInvalidArgument) << id;
    EXPECT_NE(token.status().message().find("invalid tenant id"), std::string::npos) << token.status().message();
  }
}

TEST(Token, VerifyRefusesASignedTokenWhoseTenantIsInvalid) {
  const std::string good = reai::testing::hs256_token(R"({"tenant":"t_a","role":"agent","exp":9999999999})", kKey);
  auto ok = verify_token(good, kKey, kNow);
  ASSERT_TRUE(ok) << ok.status().to_string();  // the helper signs as the product does
  EXPECT_EQ(ok->tenant_id, "t_a");
  for (const char* tenant : {"../../etc", "bad tenant!", "..", "a\\u0000b"}) {
    const std::string claims = std::string(R"({"tenant":")") + tenant + R"(","role":"agent","exp":9999999999})";
    auto refused = verify_token(reai::testing::hs256_token(claims, kKey), kKey, kNow);
    ASSERT_FALSE(refused) << tenant;
    EXPECT_EQ(refused.status().code(), StatusCode::kUnauthenticated) << tenant;
    EXPECT_NE(refused.status().message().find("tenant"), std::string::npos) << refused.status().message();
  }
}

// A token signed with the key by another tool may carry nbf: it must not be
// accepted before then (it was ignored).
TEST(Token, NotAcceptedBeforeItsNotBefore) {
  const auto token_with_nbf = [](const std::string& nbf) {
    return reai::testing::hs256_token(R"({"tenant":"t_a","role":"agent","exp":9999999999,"nbf":)" + nbf + "}", kKey);
  };
  auto early = verify_token(token_with_nbf(std::to_string(kNow + 60)), kKey, kNow);
  ASSERT_FALSE(early);
  EXPECT_EQ(early.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(early.status().message().find("not valid yet"), std::string::npos) << early.status().message();
  EXPECT_TRUE(verify_token(token_with_nbf(std::to_string(kNow)), kKey, kNow));
  EXPECT_TRUE(verify_token(token_with_nbf(std::to_string(kNow - 60)), kKey, kNow));
  for (const char* bad : {"\"soon\"", "1e300", "-1.5", "null"}) {
    auto refused = verify_token(token_with_nbf(bad), kKey, kNow);
    EXPECT_FALSE(refused) << bad;
  }
}

// RFC 7515 4.1.11: "crit" lists extensions the recipient must understand;
// reai understands none, so any crit (even an empty or malformed one) is refused.
TEST(Token, AHeaderWithCritIsRefused) {
  const std::string claims = R"({"tenant":"t_a","role":"agent","exp":9999999999})";
  for (const char* header : {R"({"alg":"HS256","typ":"JWT","crit":["exp"]})", R"({"alg":"HS256","crit":["b64"],"b64":false})",
                             R"({"alg":"HS256","crit":[]})", R"({"alg":"HS256","crit":null})"}) {
    auto refused = verify_token(reai::testing::hs256_token(claims, kKey, header), kKey, kNow);
    ASSERT_FALSE(refused) << header;
    EXPECT_EQ(refused.status().code(), StatusCode::kUnauthenticated) << header;
    EXPECT_EQ(refused.status().message(), "token header has crit: no JWS extension is supported") << header;
  }
  EXPECT_TRUE(verify_token(reai::testing::hs256_token(claims, kKey, R"({"alg":"HS256","kid":"k1"})"), kKey, kNow));
}

// A claims set or header naming a key twice is refused, signed or not:
// another verifier could read the other value (first-wins vs last-wins).
TEST(Token, AClaimOrHeaderNamedTwiceIsRefused) {
  const std::string twice = R"({"tenant":"t_a","role":"agent","role":"admin","exp":9999999999})";
  auto refused = verify_token(reai::testing::hs256_token(twice, kKey), kKey, kNow);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.status().code(), StatusCode::kUnauthenticated);
  const std::string claims = R"({"tenant":"t_a","role":"agent","exp":9999999999})";
  auto header_twice = verify_token(reai::testing::hs256_token(claims, kKey, R"({"alg":"HS256","alg":"none"})"),
                                   kKey, kNow);
  ASSERT_FALSE(header_twice);
  EXPECT_EQ(header_twice.status().code(), StatusCode::kUnauthenticated);
  EXPECT_TRUE(verify_token(reai::testing::hs256_token(claims, kKey), kKey, kNow));
}

// RFC 7519 4.1.6: a token issued after the verifier's now (beyond the skew
// tolerated, kIatLeewaySeconds) is refused, whoever minted it.
TEST(Token, NotAcceptedWhenIssuedInTheFuture) {
  auto ahead = issue_token("t_a", Role::kAgent, kKey, 3600, kNow + kIatLeewaySeconds + 1);
  ASSERT_TRUE(ahead);
  auto refused = verify_token(*ahead, kKey, kNow);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(refused.status().message(), "token issued in the future");
  // Within the leeway, at now and before: accepted.
  for (UnixSeconds iat : {kNow + kIatLeewaySeconds, kNow, kNow - 86400}) {
    auto token = issue_token("t_a", Role::kAgent, kKey, 3 * 86400, iat);
    ASSERT_TRUE(token);
    EXPECT_TRUE(verify_token(*token, kKey, kNow)) << iat;
  }
  // The verifier's clock decides: the same token passes once it is reached.
  EXPECT_TRUE(verify_token(*ahead, kKey, kNow + 1));
  const auto token_with_iat = [](const std::string& iat) {
    return reai::testing::hs256_token(R"({"tenant":"t_a","role":"agent","exp":9999999999,"iat":)" + iat + "}", kKey);
  };
  EXPECT_TRUE(verify_token(token_with_iat(std::to_string(kNow)), kKey, kNow));
  for (const char* bad : {"\"now\"", "1e300", "-1.5", "null"}) {
    auto malformed = verify_token(token_with_iat(bad), kKey, kNow);
    ASSERT_FALSE(malformed) << bad;
    EXPECT_EQ(malformed.status().message(), "token's iat is not a number of seconds") << bad;
  }
  // A token without iat (another tool may leave it out) is not refused for that.
  EXPECT_TRUE(verify_token(reai::testing::hs256_token(R"({"tenant":"t_a","role":"agent","exp":9999999999})", kKey),
                           kKey, kNow));
}

TEST(Token, IssueValidatesArguments) {
  EXPECT_FALSE(issue_token("", Role::kAgent, kKey, 60, kNow));
  EXPECT_FALSE(issue_token("t", Role::kAgent, "", 60, kNow));
  EXPECT_FALSE(issue_token("t", Role::kAgent, kKey, 0, kNow));
}

// RFC 7518 section 3.2: an HS256 key is at least 256 bits.
TEST(Token, SecretsShorterThan32BytesAreRefused) {
  const std::string short_key(kMinJwtSecretBytes - 1, 'k');
  const std::string just_long_enough(kMinJwtSecretBytes, 'k');
  auto refused = issue_token("t", Role::kAgent, short_key, 60, kNow);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.status().message().find("31 bytes; HS256 needs at least 32"), std::string::npos)
      << refused.status().message();
  EXPECT_EQ(refused.status().message().find(short_key), std::string::npos) << "the key is not echoed";
  EXPECT_FALSE(check_jwt_secret("secret"));
  EXPECT_TRUE(check_jwt_secret(just_long_enough));
  auto ok = issue_token("t", Role::kAgent, just_long_enough, 60, kNow);
  ASSERT_TRUE(ok) << ok.status().to_string();
  // A server holding a short key accepts nothing, even a token signed with it.
  const std::string signed_with_short = reai::testing::hs256_token(R"({"tenant":"t","role":"agent","exp":9999999999})", short_key);
  auto claims = verify_token(signed_with_short, short_key, kNow);
  ASSERT_FALSE(claims);
  EXPECT_EQ(claims.status().code(), StatusCode::kUnauthenticated);
}

TEST(Token, ParseRole) {
  EXPECT_EQ(parse_role("agent"), Role::kAgent);
  EXPECT_EQ(parse_role("admin"), Role::kAdmin);
  EXPECT_EQ(parse_role("root"), std::nullopt);
  EXPECT_EQ(role_name(Role::kAdmin), "admin");
}

TEST(VerifyTokenCached, AnswersAsVerifyTokenAndStillExpires) {
  const std::string secret = kKey;
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
  EXPECT_EQ(verify_token_cached(token, kOtherKey, 1001).status().code(), StatusCode::kUnauthenticated);
  // Tampering changes the text, so it is never a hit.
  std::string forged = token;
  forged.back() = forged.back() == 'A' ? 'B' : 'A';
  EXPECT_EQ(verify_token_cached(forged, secret, 1001).status().code(), StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace reai::server
