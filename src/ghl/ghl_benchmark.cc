// Cost of the webhook hot path before the store write: signature
// verification (both schemes), envelope parsing, and the full mapping done
// later on the worker thread.
#include <benchmark/benchmark.h>

#include <fstream>
#include <sstream>

#include "ghl/ghl.h"
#include "support/ghl_signer.h"

namespace {

std::string fixture(const std::string& name) {
  std::ifstream in("tests/fixtures/ghl/" + name, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Setup {
  reai::testing::GhlSigner signer;
  reai::ghl::SignatureVerifier verifier =
      reai::ghl::SignatureVerifier::from_pem(signer.ed25519_public_pem(), signer.rsa_public_pem()).value();
  std::string body = fixture("contact_create.json");
  std::string ed = signer.sign_ed25519(body);
  std::string rsa = signer.sign_rsa(body);
};

Setup& setup() {
  static Setup s;
  return s;
}

void BM_VerifyEd25519(benchmark::State& state) {
  Setup& s = setup();
  for (auto _ : state) benchmark::DoNotOptimize(s.verifier.verify(s.body, s.ed, ""));
}
BENCHMARK(BM_VerifyEd25519);

void BM_VerifyRsaSha256(benchmark::State& state) {
  Setup& s = setup();
  for (auto _ : state) benchmark::DoNotOptimize(s.verifier.verify(s.body, "", s.rsa));
}
BENCHMARK(BM_VerifyRsaSha256);

void BM_ParseEnvelope(benchmark::State& state) {
  Setup& s = setup();
  for (auto _ : state) benchmark::DoNotOptimize(reai::ghl::parse_envelope(s.body));
}
BENCHMARK(BM_ParseEnvelope);

void BM_MapContactWebhook(benchmark::State& state) {
  Setup& s = setup();
  reai::ghl::FieldMapping m;
  m.budget = {"fBudget01"};
  m.timeline = {"fTimeline01"};
  m.pre_approval = {"fPreApp01"};
  for (auto _ : state) benchmark::DoNotOptimize(reai::ghl::map_webhook(s.body, "t1", m));
}
BENCHMARK(BM_MapContactWebhook);

}  // namespace
