#include "core/tenant_id.h"
#include "store/store.h"

namespace reai::store {

Result<Tenant> link_ghl_location(Store& store, const std::string& location_id, UnixSeconds now) {
  auto linked = store.find_tenant_by_ghl_location(location_id);
  if (linked) return linked;
  if (linked.status().code() != StatusCode::kNotFound) return linked.status();
  if (Status s = check_tenant_id(location_id); !s) {
    return invalid_argument("GHL locationId cannot name a tenant: " + s.message());
  }
  Tenant tenant{location_id, location_id, now, location_id};
  if (auto same_id = store.get_tenant(location_id)) {
    if (!same_id->ghl_location_id.empty()) {
      return already_exists("tenant '" + location_id + "' is linked to GHL location '" + same_id->ghl_location_id +
                            "', not to the location of the same id");
    }
    tenant = *same_id;
    tenant.ghl_location_id = location_id;
  } else if (same_id.status().code() != StatusCode::kNotFound) {
    return same_id.status();
  }
  REAI_RETURN_IF_ERROR(store.upsert_tenant(tenant));
  return tenant;
}

}  // namespace reai::store
