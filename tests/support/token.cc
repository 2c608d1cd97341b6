#include "support/token.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>

namespace reai::testing {

std::string reai_token(const std::string& tenant, server::Role role, const std::string& secret, UnixSeconds now) {
  constexpr UnixSeconds kTenYears = 3650LL * 86400;
  if (now == kWallClock) now = SystemClock().now();
  auto token = server::issue_token(tenant, role, secret, kTenYears, now);
  EXPECT_TRUE(token) << token.status().to_string();
  return token ? *token : std::string();
}

namespace {

std::string base64url(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(acc >> bits) & 0x3f];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 0x3f];
  return out;
}

}  // namespace

std::string hs256_token(std::string_view claims_json, const std::string& secret, std::string_view header_json) {
  const std::string input = base64url(header_json) + "." + base64url(claims_json);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()), reinterpret_cast<const unsigned char*>(input.data()),
       input.size(), mac, &len);
  return input + "." + base64url(std::string_view(reinterpret_cast<const char*>(mac), len));
}

}  // namespace reai::testing
