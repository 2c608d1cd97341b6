// The one mapping of StatusCode to an HTTP status. Private to src/server.
#pragma once

#include "core/status.h"

namespace reai::server {

int http_status_for(StatusCode code);

}  // namespace reai::server
