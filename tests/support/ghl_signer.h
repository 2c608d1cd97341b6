// Test-only signer for GoHighLevel deliveries: generates its own Ed25519 and
// RSA key pairs (never GHL's), exports the public halves as PEM and signs
// bodies as GHL does (base64 Ed25519 / base64 RSA-SHA256 over the raw body).
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdlib>
#include <string>
#include <string_view>

namespace reai::testing {

class GhlSigner {
 public:
  GhlSigner()
      : ed25519_(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")),
        rsa_(EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(2048))) {
    if (!ed25519_ || !rsa_) std::abort();
  }
  ~GhlSigner() {
    EVP_PKEY_free(ed25519_);
    EVP_PKEY_free(rsa_);
  }
  GhlSigner(const GhlSigner&) = delete;
  GhlSigner& operator=(const GhlSigner&) = delete;

  std::string ed25519_public_pem() const { return public_pem(ed25519_); }
  std::string rsa_public_pem() const { return public_pem(rsa_); }
  // Base64 signatures over `body`.
  std::string sign_ed25519(std::string_view body) const { return sign(ed25519_, nullptr, body); }
  std::string sign_rsa(std::string_view body) const { return sign(rsa_, EVP_sha256(), body); }

 private:
  static std::string public_pem(EVP_PKEY* key) {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, key);
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    std::string out(data, static_cast<std::size_t>(n));
    BIO_free(bio);
    return out;
  }
  static std::string sign(EVP_PKEY* key, const EVP_MD* md, std::string_view body) {
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    std::size_t len = 0;
    if (EVP_DigestSignInit(ctx, nullptr, md, nullptr, key) != 1) std::abort();
    EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(body.data()), body.size());
    std::string sig(len, '\0');
    if (EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                       reinterpret_cast<const unsigned char*>(body.data()), body.size()) != 1) {
      std::abort();
    }
    EVP_MD_CTX_free(ctx);
    sig.resize(len);
    std::string b64(4 * ((len + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(b64.data()),
                                  reinterpret_cast<const unsigned char*>(sig.data()), static_cast<int>(len));
    b64.resize(static_cast<std::size_t>(n));
    return b64;
  }
  EVP_PKEY* ed25519_;
  EVP_PKEY* rsa_;
};

}  // namespace reai::testing
