// Predictive analytics: market trend forecasts and pricing strategy (this
// file is the module's umbrella header; each area has its own header).
#pragma once

#include "analytics/forecast.h"
#include "analytics/pricing.h"
