// What a tenant id may be: the one rule every edge (command line, JWT claims,
// GHL webhooks and OAuth, CSV imports) and every path builder applies, so a
// tenant id is always safe as one directory name and in a log line.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/status.h"

namespace reai {

inline constexpr std::size_t kMaxTenantIdLength = 64;

// A valid tenant id is 1 to 64 characters of [A-Za-z0-9._-] that does not
// start with '.' (so never ".", ".." or a hidden directory) or '-' (never
// read as a command-line option). GHL location ids (20 alphanumerics) and
// ids like "t_prairie" or "tenant-a" are valid.
bool is_valid_tenant_id(std::string_view id);

// Ok for a valid id; InvalidArgument otherwise, with a message that names the
// id (quoted, cut to 80 bytes with control bytes escaped) and states the rule.
Status check_tenant_id(std::string_view id);

// "TENANT" + separator + "ID": the map key of an id that is unique only
// within its tenant (contacts, agents, sources...). Unambiguous because a
// valid tenant id never holds the separator (any byte outside its alphabet).
std::string tenant_scoped_key(std::string_view tenant_id, std::string_view id, char separator = '\x1f');

// ROOT/tenants/TENANT, the one place a path is built from a tenant id (model
// directories). InvalidArgument (check_tenant_id's) for an invalid id, so no
// caller can be led out of ROOT, whatever it forgot to check.
Result<std::string> tenant_dir(std::string_view root, std::string_view tenant);

}  // namespace reai
