// Predictive analytics, each forecast with an interval a broker can trust:
// market trends (forecast.h), pricing strategy (pricing.h), deal closure and
// timeline (deals.h), agent closings and coaching (agents.h). This umbrella
// header includes them; each area's contracts are in its own header.
#pragma once

#include "analytics/agents.h"
#include "analytics/deals.h"
#include "analytics/forecast.h"
#include "analytics/pricing.h"
