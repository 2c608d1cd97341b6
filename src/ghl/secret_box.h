// SecretBox: seals GoHighLevel tokens before they reach the store (libsodium
// crypto_secretbox, XSalsa20-Poly1305, random nonce per seal), so a copied
// database file holds no usable credential. Immutable after construction;
// safe from any thread.
#pragma once

#include <array>
#include <string>
#include <string_view>

#include "core/status.h"

namespace reai::ghl {

class SecretBox {
 public:
  static constexpr std::size_t kKeyBytes = 32;

  // The key file holds 32 raw bytes or 64 hex digits (surrounding
  // whitespace ignored), e.g. `head -c 32 /dev/urandom > key`. NotFound when
  // unreadable; InvalidArgument for any other length or content.
  static Result<SecretBox> from_key_file(const std::string& path);
  static Result<SecretBox> from_key(std::string_view key_bytes_or_hex);

  // base64(nonce || ciphertext). Never fails once constructed.
  std::string seal(std::string_view plaintext) const;
  // The plaintext; Unauthenticated when `sealed` was not sealed with this key
  // or was altered; InvalidArgument when it is not base64 or too short.
  Result<std::string> open(std::string_view sealed) const;

 private:
  explicit SecretBox(const std::array<unsigned char, kKeyBytes>& key) : key_(key) {}
  std::array<unsigned char, kKeyBytes> key_;
};

}  // namespace reai::ghl
