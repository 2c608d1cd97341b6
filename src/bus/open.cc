// open_bus / open_cache: the --bus / --cache flag values to implementations.
#include "bus/bus.h"
#include "bus/redis_connection.h"

namespace reai::bus {

Result<std::unique_ptr<Bus>> open_bus(std::string_view url) {
  if (url.empty() || url == "inprocess") return make_in_process_bus();
  auto endpoint = redis::parse_url(url);
  if (!endpoint) return endpoint.status();
  return make_redis_bus(std::move(*endpoint));
}

Result<std::unique_ptr<Cache>> open_cache(std::string_view url, const Clock& clock) {
  if (url.empty() || url == "inprocess") return make_in_process_cache(clock);
  auto endpoint = redis::parse_url(url);
  if (!endpoint) return endpoint.status();
  return make_redis_cache(std::move(*endpoint), clock);
}

Result<std::unique_ptr<Leases>> open_leases(std::string_view url) {
  if (url.empty() || url == "inprocess") return make_in_process_leases();
  auto endpoint = redis::parse_url(url);
  if (!endpoint) return endpoint.status();
  return make_redis_leases(std::move(*endpoint));
}

}  // namespace reai::bus
