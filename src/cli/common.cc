#include <cctype>

#include "cli/cli.h"
#include "core/tenant_id.h"
#include "server/server.h"

namespace reai::cli {

Result<long long> parse_duration(const std::string& text) {
  if (text.empty()) return invalid_argument("empty duration");
  std::size_t i = 0;
  long long value = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    value = value * 10 + (text[i] - '0');
    if (value > 100LL * 365 * 86400) return invalid_argument("duration too long: " + text);
    ++i;
  }
  if (i == 0) return invalid_argument("bad duration '" + text + "' (use e.g. 30m, 24h, 7d)");
  const std::string unit = text.substr(i);
  if (unit.empty() || unit == "s") return value;
  if (unit == "m") return value * 60;
  if (unit == "h") return value * 3600;
  if (unit == "d") return value * 86400;
  return invalid_argument("bad duration '" + text + "' (use e.g. 30m, 24h, 7d)");
}

CLI::Validator postgres_store_url() {
  return CLI::Validator(
      [](std::string& url) -> std::string {
        if (url.empty() || url.starts_with("postgres://") || url.starts_with("postgresql://")) return {};
        return "'" + url + "' is not a postgres:// URL (the SQLite store is --data-dir)";
      },
      "", "postgres_store_url");
}

CLI::Validator tenant_id_option() {
  return CLI::Validator(
      [](std::string& id) -> std::string {
        Status s = check_tenant_id(id);
        return s ? std::string() : s.message();
      },
      "", "tenant_id");
}

CLI::Validator static_dir_option() {
  return CLI::Validator(
      [](std::string& dir) -> std::string {
        Status s = server::check_static_dir(dir);
        return s ? std::string() : s.message() + "; leave --static-dir out for the built-in page";
      },
      "", "static_dir");
}

}  // namespace reai::cli
