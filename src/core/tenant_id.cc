#include "core/tenant_id.h"

#include <filesystem>
#include <string>

namespace reai {
namespace {

bool allowed(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == '-';
}

// The id as a message may show it: an attacker-chosen id must not forge log
// lines or flood them.
std::string printable(std::string_view id) {
  constexpr std::size_t kShown = 80;
  std::string out;
  for (std::size_t i = 0; i < id.size() && i < kShown; ++i) {
    const auto c = static_cast<unsigned char>(id[i]);
    if (c < 0x20 || c == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 0xf];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (id.size() > kShown) out += "...";
  return out;
}

}  // namespace

bool is_valid_tenant_id(std::string_view id) {
  if (id.empty() || id.size() > kMaxTenantIdLength || id.front() == '.' || id.front() == '-') return false;
  for (char c : id) {
    if (!allowed(c)) return false;
  }
  return true;
}

Status check_tenant_id(std::string_view id) {
  if (is_valid_tenant_id(id)) return Status::ok();
  return invalid_argument("invalid tenant id '" + printable(id) +
                          "': use 1-64 characters of A-Z a-z 0-9 . _ -, not starting with '.' or '-'");
}

std::string tenant_scoped_key(std::string_view tenant_id, std::string_view id, char separator) {
  std::string key;
  key.reserve(tenant_id.size() + 1 + id.size());
  key.append(tenant_id).push_back(separator);
  key.append(id);
  return key;
}

Result<std::string> tenant_dir(std::string_view root, std::string_view tenant) {
  REAI_RETURN_IF_ERROR(check_tenant_id(tenant));
  return (std::filesystem::path(root) / "tenants" / tenant).string();
}

}  // namespace reai
