// The stderr lines every command that values homes with the AVM prints
// about the model beside the values (`reai value train|predict`, `reai
// price`, `reai import listings`): what market the model reflects and how
// many rows it values beyond its training sales or with categories the
// training sales never had. Inline, like report_failure
// in cli.h, so the standalone reai_value and reai_forecast binaries share
// them without linking the full CLI.
#pragma once

#include <cstddef>
#include <iostream>
#include <span>
#include <string>
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

// "<command>: N of M rows have a category no training sale had (valued as
// missing): row 2 Zone 'Waterfront'; row 5 Zone 'downtown' (training has
// 'Downtown'); ..." naming the first kMaxNamed such cells by output row
// (1-based data row of `table`, as in the values file). `values` are
// `table`'s rows in order. Writes to stderr.
inline void report_unseen_categories(std::string_view command, const property::ValuationModel& model,
                                     const property::SalesTable& table, std::span<const property::Valuation> values) {
  constexpr std::size_t kMaxNamed = 10;
  std::size_t rows = 0, named = 0;
  std::string examples;
  for (std::size_t i = 0; i < values.size() && i < table.rows.size(); ++i) {
    if (values[i].unseen_categories == 0) continue;
    ++rows;
    for (const auto& u : model.unseen_categories(table, i)) {
      if (named++ >= kMaxNamed) break;
      examples += (examples.empty() ? ": row " : "; row ") + std::to_string(i + 1) + " " + u.attribute + " '" +
                  u.value + "'";
      if (!u.differs_in_case_from.empty()) examples += " (training has '" + u.differs_in_case_from + "')";
    }
  }
  std::cerr << command << ": " << rows << " of " << values.size()
            << " rows have a category no training sale had (valued as if missing)" << examples
            << (named > kMaxNamed ? "; ..." : "") << "\n";
}

}  // namespace reai::cli
