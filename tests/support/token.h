// JWTs for tests, signed by the product's own issue_token (src/server), so a
// test's token and the server's check agree on the format by construction.
#pragma once

#include <string>
#include <string_view>

#include "core/time.h"
#include "server/server.h"

namespace reai::testing {

// The HS256 key tests sign with: as long as the product requires
// (server::kMinJwtSecretBytes), so no test weakens the rule.
inline constexpr const char* kTestJwtSecret = "reai-test-hs256-key-0123456789abcdef";
static_assert(std::char_traits<char>::length(kTestJwtSecret) >= server::kMinJwtSecretBytes);

// Issue time meaning "the system clock": what a real `reai` binary checks against.
inline constexpr UnixSeconds kWallClock = 0;

// A token for `tenant` with `role` signed with `secret`, issued at `now`
// (kWallClock: the system clock) and valid for ten years, so it outlives any
// test and any server clock pinned ahead with --clock or a ManualClock.
// A test failure (and "") when the product refuses the arguments (empty
// tenant or secret).
std::string reai_token(const std::string& tenant, server::Role role, const std::string& secret,
                       UnixSeconds now = kWallClock);

// An HS256 token over `claims_json` exactly as given, signed with `secret`,
// as a key holder using another tool could make one: for tokens the product's
// issue_token refuses to make (an invalid tenant id, a short key).
// `header_json` replaces the product's header, e.g. to add "crit".
std::string hs256_token(std::string_view claims_json, const std::string& secret,
                        std::string_view header_json = R"({"alg":"HS256","typ":"JWT"})");

}  // namespace reai::testing
