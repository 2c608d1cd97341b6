// libFuzzer target for the JSON event parser (built with REAI_FUZZ=ON and
// clang); event_parser_fuzz_test.cc runs the same entry point over a corpus
// of nasty inputs in every `make test`.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "server/codec.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto parsed = reai::server::parse_events_body(body, "tenant-fuzz", 1700000000);
  // Either outcome is fine; a crash, leak or UB is the bug being hunted.
  if (parsed) (void)*parsed;
  return 0;
}
