// One valuation on the hot path: encode cells, build features (including the
// nearest-neighbour scan), two compiled forests. With REAI_AVM_MODEL (a model
// directory) and REAI_AVM_DATA (a CSV in its layout) it measures that model,
// e.g. one trained on Ames; otherwise a model trained here on synthetic data.
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <random>
#include <sstream>

#include "property/property.h"

namespace reai::property {
namespace {

std::string synthetic_sales(std::size_t rows) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> unit(0, 1);
  std::ostringstream out;
  out << "Neighborhood,Gr_Liv_Area,Total_Bsmt_SF,Full_Bath,Half_Bath,Year_Built,Year_Sold,Exter_Cond,Longitude,"
         "Latitude,Sale_Price\n";
  const char* const conditions[] = {"Poor", "Fair", "Typical", "Good", "Excellent"};
  for (std::size_t i = 0; i < rows; ++i) {
    const int hood = static_cast<int>(unit(rng) * 20);
    const double area = 800 + 1800 * unit(rng);
    const int built = 1900 + static_cast<int>(unit(rng) * 110);
    const int cond = static_cast<int>(unit(rng) * 5);
    const double price = std::exp(11.4 + 0.7 * std::log(area / 1500) + 0.03 * hood + 0.05 * cond + 0.1 * unit(rng));
    out << "N" << hood << "," << area << "," << 500 + 500 * unit(rng) << "," << 1 + i % 3 << "," << i % 2 << "," << built
        << ",2008," << conditions[cond] << "," << -93.6 + 0.01 * hood + 0.01 * unit(rng) << ","
        << 42.0 + 0.004 * hood + 0.01 * unit(rng) << "," << std::round(price) << "\n";
  }
  return out.str();
}

struct Fixture {
  std::optional<ValuationModel> model;
  SalesTable table;
};

Fixture& fixture() {
  static Fixture* f = [] {
    auto* fx = new Fixture;
    const char* model_dir = std::getenv("REAI_AVM_MODEL");
    const char* data = std::getenv("REAI_AVM_DATA");
    if (model_dir != nullptr && data != nullptr) {
      auto m = ValuationModel::load(model_dir);
      auto t = read_sales_csv(data);
      if (!m || !t) {
        std::cerr << "cannot load REAI_AVM_MODEL / REAI_AVM_DATA\n";
        std::exit(1);
      }
      fx->model.emplace(std::move(m).value());
      fx->table = std::move(*t);
    } else {
      fx->table = *parse_sales_csv(synthetic_sales(2500), "synthetic.csv");
      TrainOptions options;
      options.time_budget_seconds = 0;
      auto m = ValuationModel::train(fx->table, "Sale_Price", options);
      if (!m) {
        std::cerr << m.status().to_string() << "\n";
        std::exit(1);
      }
      fx->model.emplace(std::move(m).value());
    }
    return fx;
  }();
  return *f;
}

void BM_ValueOneRow(benchmark::State& state) {
  Fixture& f = fixture();
  auto binding = f.model->bind(f.table.header);
  if (!binding) {
    state.SkipWithError("bind failed");
    return;
  }
  std::vector<std::vector<std::string_view>> rows;
  for (std::size_t i = 0; i < f.table.rows.size() && i < 256; ++i) {
    rows.emplace_back(f.table.rows[i].begin(), f.table.rows[i].end());
  }
  std::size_t i = 0;
  for (auto _ : state) {
    Valuation v = f.model->value(*binding, rows[i++ % rows.size()]);
    benchmark::DoNotOptimize(v);
  }
}
BENCHMARK(BM_ValueOneRow);

}  // namespace
}  // namespace reai::property
