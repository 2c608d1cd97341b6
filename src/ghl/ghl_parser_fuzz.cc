// libFuzzer target for the GHL webhook parsers (built with REAI_FUZZ=ON and
// clang); ghl_test.cc runs the same entry point over a corpus of nasty inputs
// in every `make test`.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "ghl/ghl.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  static const reai::ghl::FieldMapping mapping = [] {
    reai::ghl::FieldMapping m;
    m.budget = {"f-budget", "Budget"};
    m.timeline = {"f-timeline", "Timeline"};
    m.pre_approval = {"f-pre", "Pre-approved"};
    m.stages["stage-offer"] = reai::Stage::kOffer;
    return m;
  }();
  // Either outcome is fine; a crash, leak or UB is the bug being hunted.
  (void)reai::ghl::parse_envelope(body);
  (void)reai::ghl::map_webhook(body, "tenant-fuzz", mapping);
  (void)reai::ghl::map_workflow(body, "tenant-fuzz", mapping, 1700000000);
  (void)reai::ghl::parse_field_mapping(body);
  return 0;
}
