#include "store/store.h"

namespace reai::store {

std::string_view ghl_install_state_name(GhlInstallState state) {
  switch (state) {
    case GhlInstallState::kNone: return "none";
    case GhlInstallState::kLinked: return "linked";
    case GhlInstallState::kOAuth: return "oauth";
    case GhlInstallState::kPrivate: return "private";
    case GhlInstallState::kUninstalled: return "uninstalled";
    case GhlInstallState::kNeedsReauth: return "needs_reauth";
  }
  return "none";
}

Result<GhlInstall> ghl_install_of(Store& store, const Tenant& tenant) {
  auto settings = store.get_ghl_settings(tenant.tenant_id);
  if (!settings && settings.status().code() != StatusCode::kNotFound) return settings.status();
  auto token = store.get_ghl_token(tenant.tenant_id);
  if (!token && token.status().code() != StatusCode::kNotFound) return token.status();
  // An uninstall explains a refusal that follows it (GHL revokes the grant),
  // so it is named first.
  if (settings && !settings->active) return GhlInstall{GhlInstallState::kUninstalled, settings->uninstalled_at, ""};
  if (token && token->refused_at != 0) {
    return GhlInstall{GhlInstallState::kNeedsReauth, token->refused_at, token->refused_error};
  }
  if (token) return GhlInstall{token->kind == "oauth" ? GhlInstallState::kOAuth : GhlInstallState::kPrivate, 0, ""};
  if (!tenant.ghl_location_id.empty()) return GhlInstall{GhlInstallState::kLinked, 0, ""};
  return GhlInstall{};
}

}  // namespace reai::store
