// Analytics: forecasts a broker can act on, each with an interval.
// Deal closure and timeline (deals.h); agent closings and coaching (agents.h).
#pragma once

#include "analytics/agents.h"
#include "analytics/deals.h"
