// JWT HS256 with OpenSSL's HMAC; base64url without padding (RFC 7515).
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <boost/json.hpp>

#include "core/json_text.h"
#include "core/tenant_id.h"
#include "server/server.h"

namespace reai::server {
namespace {

constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string base64url_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    std::uint32_t v = (std::uint8_t(in[i]) << 16) | (std::uint8_t(in[i + 1]) << 8) | std::uint8_t(in[i + 2]);
    out.push_back(kBase64Url[(v >> 18) & 63]);
    out.push_back(kBase64Url[(v >> 12) & 63]);
    out.push_back(kBase64Url[(v >> 6) & 63]);
    out.push_back(kBase64Url[v & 63]);
  }
  if (i + 1 == in.size()) {
    std::uint32_t v = std::uint8_t(in[i]) << 16;
    out.push_back(kBase64Url[(v >> 18) & 63]);
    out.push_back(kBase64Url[(v >> 12) & 63]);
  } else if (i + 2 == in.size()) {
    std::uint32_t v = (std::uint8_t(in[i]) << 16) | (std::uint8_t(in[i + 1]) << 8);
    out.push_back(kBase64Url[(v >> 18) & 63]);
    out.push_back(kBase64Url[(v >> 12) & 63]);
    out.push_back(kBase64Url[(v >> 6) & 63]);
  }
  return out;
}

int base64url_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

std::optional<std::string> base64url_decode(std::string_view in) {
  if (in.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(in.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = base64url_value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | std::uint32_t(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(char((acc >> bits) & 0xFF));
    }
  }
  return out;
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), int(key.size()), reinterpret_cast<const unsigned char*>(data.data()),
       data.size(), mac.data(), &len);
  return std::string(reinterpret_cast<const char*>(mac.data()), len);
}

std::optional<boost::json::object> decode_json_part(std::string_view part) {
  auto raw = base64url_decode(part);
  if (!raw) return std::nullopt;
  // A header or claims set naming a key twice ({"role":"agent","role":"admin"})
  // is refused: another verifier could read the other value.
  auto v = parse_json(*raw);
  if (!v || !v->is_object()) return std::nullopt;
  return std::move(v->as_object());
}

std::optional<std::int64_t> int_claim(const boost::json::object& o, std::string_view name) {
  auto it = o.find(name);
  if (it == o.end()) return std::nullopt;
  if (it->value().is_int64()) return it->value().as_int64();
  if (it->value().is_uint64() && it->value().as_uint64() <= std::uint64_t(INT64_MAX)) {
    return std::int64_t(it->value().as_uint64());
  }
  return std::nullopt;
}

}  // namespace

std::string_view role_name(Role role) { return role == Role::kAdmin ? "admin" : "agent"; }

std::optional<Role> parse_role(std::string_view name) {
  if (name == "agent") return Role::kAgent;
  if (name == "admin") return Role::kAdmin;
  return std::nullopt;
}

Status check_jwt_secret(std::string_view secret) {
  if (secret.size() >= kMinJwtSecretBytes) return Status::ok();
  return invalid_argument("the JWT secret is " + std::to_string(secret.size()) + " bytes; HS256 needs at least " +
                          std::to_string(kMinJwtSecretBytes) + " (e.g. openssl rand -hex 32)");
}

Result<std::string> issue_token(const std::string& tenant_id, Role role, const std::string& secret,
                                UnixSeconds ttl_seconds, UnixSeconds now) {
  if (tenant_id.empty()) return invalid_argument("token needs a tenant id");
  REAI_RETURN_IF_ERROR(check_tenant_id(tenant_id));
  REAI_RETURN_IF_ERROR(check_jwt_secret(secret));
  if (ttl_seconds <= 0) return invalid_argument("token ttl must be positive");
  boost::json::object claims;
  claims["tenant"] = tenant_id;
  claims["role"] = role_name(role);
  claims["iat"] = now;
  claims["exp"] = now + ttl_seconds;
  std::string signing_input = base64url_encode(R"({"alg":"HS256","typ":"JWT"})");
  signing_input += '.';
  signing_input += base64url_encode(boost::json::serialize(claims));
  std::string signature = base64url_encode(hmac_sha256(secret, signing_input));
  return signing_input + "." + signature;
}

Result<TokenClaims> verify_token(std::string_view token, const std::string& secret, UnixSeconds now) {
  if (!check_jwt_secret(secret)) return unauthenticated("server has no usable token secret");
  const auto dot1 = token.find('.');
  if (dot1 == std::string_view::npos) return unauthenticated("malformed token");
  const auto dot2 = token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos) {
    return unauthenticated("malformed token");
  }
  auto header = decode_json_part(token.substr(0, dot1));
  if (!header) return unauthenticated("malformed token header");
  auto alg = header->find("alg");
  if (alg == header->end() || !alg->value().is_string() || alg->value().as_string() != "HS256") {
    return unauthenticated("token algorithm must be HS256");
  }
  // RFC 7515 4.1.11: a recipient that does not understand every extension
  // "crit" lists must refuse the token, and reai understands none.
  if (header->contains("crit")) return unauthenticated("token header has crit: no JWS extension is supported");
  auto signature = base64url_decode(token.substr(dot2 + 1));
  if (!signature) return unauthenticated("malformed token signature");
  const std::string expected = hmac_sha256(secret, token.substr(0, dot2));
  if (signature->size() != expected.size() ||
      CRYPTO_memcmp(signature->data(), expected.data(), expected.size()) != 0) {
    return unauthenticated("bad token signature");
  }
  auto claims = decode_json_part(token.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!claims) return unauthenticated("malformed token claims");
  TokenClaims out;
  auto tenant = claims->find("tenant");
  if (tenant == claims->end() || !tenant->value().is_string() || tenant->value().as_string().empty()) {
    return unauthenticated("token has no tenant claim");
  }
  // Signed by us, yet the id still names directories and metrics: a token
  // minted before ids were checked (or with a leaked key) must not reach them.
  if (!is_valid_tenant_id(tenant->value().as_string())) return unauthenticated("token's tenant claim is not a valid tenant id");
  out.tenant_id = std::string(tenant->value().as_string());
  auto role = claims->find("role");
  std::optional<Role> parsed_role;
  if (role != claims->end() && role->value().is_string()) parsed_role = parse_role(role->value().as_string());
  if (!parsed_role) return unauthenticated("token has no valid role");
  out.role = *parsed_role;
  auto exp = int_claim(*claims, "exp");
  if (!exp) return unauthenticated("token has no exp");
  if (*exp <= now) return unauthenticated("token expired");
  // RFC 7519 4.1.5: not accepted before its nbf. reai never issues one, but
  // another tool holding the key may.
  if (claims->contains("nbf")) {
    auto nbf = int_claim(*claims, "nbf");
    if (!nbf) return unauthenticated("token's nbf is not a number of seconds");
    if (*nbf > now) return unauthenticated("token not valid yet");
  }
  // RFC 7519 4.1.6: a token is not issued after the instant it is checked
  // at. One from a minting host whose clock runs ahead by more than the skew
  // we tolerate (or a forged iat from a leaked key) is refused.
  if (claims->contains("iat")) {
    auto iat = int_claim(*claims, "iat");
    if (!iat) return unauthenticated("token's iat is not a number of seconds");
    if (*iat > now + kIatLeewaySeconds) return unauthenticated("token issued in the future");
  }
  out.expires_at = *exp;
  return out;
}

namespace {

struct VerifiedToken {
  std::string token;
  std::string secret;
  TokenClaims claims;
};

}  // namespace

Result<TokenClaims> verify_token_cached(std::string_view token, const std::string& secret, UnixSeconds now) {
  // Direct-mapped: a collision only costs a fresh verification.
  constexpr std::size_t kSlots = 64;
  thread_local std::array<VerifiedToken, kSlots> verified;
  VerifiedToken& slot = verified[std::hash<std::string_view>{}(token) % kSlots];
  if (!slot.token.empty() && slot.token == token && slot.secret == secret) {
    if (slot.claims.expires_at <= now) return unauthenticated("token expired");
    return slot.claims;
  }
  auto claims = verify_token(token, secret, now);
  if (claims) {
    slot.token.assign(token);
    slot.secret = secret;
    slot.claims = *claims;
  }
  return claims;
}

}  // namespace reai::server
