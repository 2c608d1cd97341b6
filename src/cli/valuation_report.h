// The stderr lines every command that values homes with the AVM prints
// about the model beside the values (`reai value train|predict`, `reai
// price`, `reai import listings`): what market the model reflects and how
// many rows it values beyond its training sales. Inline, like report_failure
// in cli.h, so the standalone reai_value and reai_forecast binaries share
// them without linking the full CLI.
#pragma once

#include <cstddef>
#include <iostream>
#include <span>
#include <string_view>

#include "property/property.h"

namespace reai::cli {

// "<command>: market as of 2010-07 (the latest training sale): ..." or,
// without a sale time in the training sales (or in a model saved before it
// was kept), that the market is unknown. Writes to stderr.
inline void report_market_as_of(std::string_view command, const property::ValuationModel& model) {
  if (model.market_as_of().empty()) {
    std::cerr << command << ": market as of unknown (the training sales have no sale year or date, or the model was "
                            "saved by an older reai)\n";
    return;
  }
  std::cerr << command << ": market as of " << model.market_as_of()
            << " (the latest training sale): values are at that market's prices\n";
}

// "<command>: N of M rows have attributes outside the training range ..."
// (Valuation::outside_range; the sale-time column never counts), or that
// the model keeps no ranges. Writes to stderr.
inline void report_outside_training_range(std::string_view command, const property::ValuationModel& model,
                                          std::span<const property::Valuation> values) {
  if (!model.has_training_ranges()) {
    std::cerr << command << ": the model keeps no training ranges (saved by an older reai; retrain it): "
                            "rows outside them are not counted\n";
    return;
  }
  std::size_t outside = 0;
  for (const auto& v : values) outside += v.outside_range > 0;
  std::cerr << command << ": " << outside << " of " << values.size()
            << " rows have attributes outside the training range (their values are extrapolations)\n";
}

}  // namespace reai::cli
