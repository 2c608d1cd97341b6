#include "ghl/secret_box.h"

#include <sodium.h>

#include <cctype>
#include <fstream>
#include <sstream>
#include <vector>

namespace reai::ghl {
namespace {

bool sodium_ready() {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

Result<SecretBox> SecretBox::from_key_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("cannot read secret key file " + path);
  std::ostringstream text;
  text << in.rdbuf();
  auto box = from_key(text.str());
  if (!box) return invalid_argument(path + ": " + box.status().message());
  return box;
}

Result<SecretBox> SecretBox::from_key(std::string_view key_text) {
  if (!sodium_ready()) return internal_error("libsodium failed to initialise");
  std::array<unsigned char, kKeyBytes> key{};
  if (key_text.size() == kKeyBytes) {
    std::copy(key_text.begin(), key_text.end(), key.begin());
    return SecretBox(key);
  }
  const std::string_view hex = trim(key_text);
  std::size_t written = 0;
  if (hex.size() != 2 * kKeyBytes ||
      sodium_hex2bin(key.data(), key.size(), hex.data(), hex.size(), nullptr, &written, nullptr) != 0 ||
      written != kKeyBytes) {
    return invalid_argument("secret key must be 32 raw bytes or 64 hex digits");
  }
  return SecretBox(key);
}

std::string SecretBox::seal(std::string_view plaintext) const {
  std::vector<unsigned char> buf(crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + plaintext.size());
  unsigned char* nonce = buf.data();
  randombytes_buf(nonce, crypto_secretbox_NONCEBYTES);
  crypto_secretbox_easy(nonce + crypto_secretbox_NONCEBYTES, reinterpret_cast<const unsigned char*>(plaintext.data()),
                        plaintext.size(), nonce, key_.data());
  std::string out(sodium_base64_ENCODED_LEN(buf.size(), sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), buf.data(), buf.size(), sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.find('\0'));
  return out;
}

Result<std::string> SecretBox::open(std::string_view sealed) const {
  std::vector<unsigned char> buf(sealed.size());
  std::size_t len = 0;
  if (sodium_base642bin(buf.data(), buf.size(), sealed.data(), sealed.size(), nullptr, &len, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0) {
    return invalid_argument("sealed token is not base64");
  }
  if (len < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES) return invalid_argument("sealed token too short");
  const unsigned char* nonce = buf.data();
  const std::size_t ct_len = len - crypto_secretbox_NONCEBYTES;
  std::string plain(ct_len - crypto_secretbox_MACBYTES, '\0');
  if (crypto_secretbox_open_easy(reinterpret_cast<unsigned char*>(plain.data()), nonce + crypto_secretbox_NONCEBYTES,
                                 ct_len, nonce, key_.data()) != 0) {
    return unauthenticated("sealed token does not open with this key");
  }
  return plain;
}

}  // namespace reai::ghl
