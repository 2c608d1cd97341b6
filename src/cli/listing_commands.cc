// `reai import listings` (shared/EVALUATION.md "Property matching": ids from
// --id-column or file stem + 1-based row, `ames.csv` row 12 is `ames-0012`).
#include "cli/listing_commands.h"

#include <iostream>
#include <memory>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "cli/cli.h"
#include "cli/valuation_report.h"
#include "core/time.h"
#include "property/inventory.h"
#include "property/matching.h"
#include "property/property.h"
#include "property/schema.h"
#include "store/store.h"

namespace reai::cli {
namespace {

struct Avm {
  std::optional<property::ValuationModel> model;
  std::string version;
};

// The explicit --avm (its failure is the command's), else the tenant's or
// the shared trained model when there is one (absent: no valuations).
Result<Avm> load_avm(const ImportListingsArgs& args) {
  auto avm_dir = args.avm.empty() ? property::tenant_model_dir(args.model_dir, args.tenant, "value")
                                  : Result<std::string>(args.avm);
  if (!avm_dir) return avm_dir.status();
  const std::string& dir = *avm_dir;
  auto version = property::model_dir_version(dir, "value");
  if (!version) {
    if (!args.avm.empty()) return version.status();
    std::cerr << "  no valuation model in " << dir << " (reai value train --out " << dir
              << "): listings are stored without values\n";
    return Avm{};
  }
  auto model = property::ValuationModel::load(dir);
  if (!model) return model.status();
  std::cerr << "  valuing with " << dir << "\n";
  return Avm{std::move(*model), std::move(*version)};
}

// The model's values of every row, or none: the model is dropped (with a
// word) when it does not fit this file, unless --avm named it.
Result<std::vector<property::Valuation>> value_rows(const ImportListingsArgs& args, const property::SalesTable& table,
                                                   Avm* avm) {
  if (!avm->model) return std::vector<property::Valuation>{};
  auto predicted = avm->model->predict(table);
  if (predicted) return std::move(*predicted);
  if (!args.avm.empty()) return predicted.status();
  std::cerr << "  the valuation model does not fit this file (" << predicted.status().message()
            << "): listings are stored without values\n";
  avm->model.reset();
  return std::vector<property::Valuation>{};
}

struct ListingRows {
  std::vector<store::ListingRecord> rows;
  std::size_t no_price = 0, bad = 0;
};

// Every row checked before anything is written; a bad row is reported with
// its line and counted.
ListingRows read_listing_rows(const ImportListingsArgs& args, const property::SalesTable& table, property::ListingKeyColumns cols,
                              const Avm& avm, const std::vector<property::Valuation>& values, UnixSeconds now) {
  const std::vector<int> skip = cols.id >= 0 ? std::vector<int>{cols.price, cols.id} : std::vector<int>{cols.price};
  ListingRows out;
  std::unordered_set<std::string> ids;
  for (std::size_t r = 0; r < table.rows.size(); ++r) {
    const auto& cells = table.rows[r];
    const std::size_t line = r < table.lines.size() ? table.lines[r] : r + 2;
    auto fail = [&](const std::string& why) {
      ++out.bad;
      std::cerr << "  " << args.listings << ":" << line << ": " << why << "\n";
    };
    if (property::is_missing_cell(cells[cols.price])) {
      ++out.no_price;
      continue;
    }
    const auto price = property::parse_listing_price(cells[cols.price]);
    if (!price) {
      fail("price '" + cells[cols.price] + "' is not a positive number");
      continue;
    }
    const std::string id = cols.id >= 0 ? cells[cols.id] : property::listing_row_id(args.listings, r + 1);
    if (property::is_missing_cell(id)) {
      fail("empty id");
      continue;
    }
    if (!ids.insert(id).second) {
      fail("listing id '" + id + "' repeats");
      continue;
    }
    store::ListingRecord rec{args.tenant, id, *price, property::attributes_json(table.header, cells, skip), "", now};
    if (avm.model) rec.valuation_json = property::valuation_json(values[r], *price, avm.version, *avm.model, table, r);
    out.rows.push_back(std::move(rec));
  }
  return out;
}

struct WriteCounts {
  std::size_t added = 0, updated = 0, unchanged = 0;
};

// Re-import is idempotent: a listing whose price, attributes and valuation
// are unchanged is not rewritten; a changed one is revalued and replaced.
Result<WriteCounts> write_changed_listings(store::Store& store, const std::string& tenant,
                                           std::vector<store::ListingRecord> rows) {
  std::unordered_map<std::string, store::ListingRecord> existing;
  Status scanned = store.for_each_listing(tenant, [&](const store::ListingRecord& l) {
    existing.emplace(l.listing_id, l);
    return true;
  });
  if (!scanned.is_ok()) return scanned;
  std::vector<store::ListingRecord> changed;
  WriteCounts counts;
  for (auto& rec : rows) {
    auto it = existing.find(rec.listing_id);
    if (it == existing.end()) {
      ++counts.added;
    } else if (it->second.list_price == rec.list_price && it->second.attributes_json == rec.attributes_json &&
               it->second.valuation_json == rec.valuation_json) {
      ++counts.unchanged;
      continue;
    } else {
      ++counts.updated;
    }
    changed.push_back(std::move(rec));
  }
  if (Status s = store.upsert_listings(changed); !s.is_ok()) return s;
  return counts;
}

}  // namespace

int run_import_listings(const ImportListingsArgs& args) {
  if (args.tenant.empty()) return report_failure(invalid_argument("--tenant must not be empty"));
  std::cerr << "reai import listings: reading " << args.listings << "\n";
  auto table = property::read_sales_csv(args.listings);
  if (!table) return report_failure(table.status());
  auto cols = property::find_listing_key_columns(*table, {args.price_column, args.id_column});
  if (!cols) return report_failure(cols.status());
  auto avm = load_avm(args);
  if (!avm) return report_failure(avm.status());
  auto values = value_rows(args, *table, &*avm);
  if (!values) return report_failure(values.status());
  if (avm->model) {
    report_outside_training_range("reai import listings", *avm->model, *values);
    report_unseen_categories("reai import listings", *avm->model, *table, *values);
    report_market_as_of("reai import listings", *avm->model);
  }

  // A bad row stops the import (store untouched) unless --skip-bad.
  const UnixSeconds now = SystemClock().now();
  ListingRows read = read_listing_rows(args, *table, *cols, *avm, *values, now);
  if (read.bad > 0 && !args.skip_bad) {
    return report_failure(invalid_argument(std::to_string(read.bad) + " bad row(s) in " + args.listings +
                                           "; nothing imported (fix them or pass --skip-bad)"));
  }
  if (read.rows.empty()) return report_failure(invalid_argument(args.listings + ": no listing has a price"));

  auto store = store::open_store(store_location(args.store, args.data_dir));
  if (!store) return report_failure(store.status());
  if (!(*store)->get_tenant(args.tenant)) {
    if (Status s = (*store)->upsert_tenant({args.tenant, args.tenant, now, ""}); !s.is_ok()) return report_failure(s);
  }
  const std::size_t imported = read.rows.size();
  auto counts = write_changed_listings(**store, args.tenant, std::move(read.rows));
  if (!counts) return report_failure(counts.status());
  std::cout << "imported " << imported << " listings for tenant " << args.tenant << ": " << counts->added << " new, "
            << counts->updated << " updated, " << counts->unchanged << " unchanged"
            << (avm->model ? "; valued" : "; not valued") << "\n";
  if (read.no_price > 0) std::cout << "skipped " << read.no_price << " rows without a price\n";
  if (read.bad > 0) std::cout << "skipped " << read.bad << " bad rows\n";
  return kExitOk;
}

void add_import_listings_command(CLI::App& import_cmd, int* exit_code) {
  auto args = std::make_shared<ImportListingsArgs>();
  auto* cmd = import_cmd.add_subcommand("listings", "Load a tenant's listings (any listings CSV) and value them");
  cmd->add_option("--data-dir", args->data_dir, "Directory of the SQLite store")->capture_default_str();
  cmd->add_option("--store", args->store, kStoreHelp)->check(postgres_store_url());
  cmd->add_option("--tenant", args->tenant, "Tenant id")->required()
      ->check(tenant_id_option());
  cmd->add_option("--listings", args->listings, "Listings CSV (any columns; e.g. ames.csv)")->required();
  cmd->add_option("--price-column", args->price_column, "Column with the list price")->required();
  cmd->add_option("--id-column", args->id_column,
                  "Column with listing ids (default: file stem + 1-based row, e.g. ames-0012)");
  cmd->add_option("--model-dir", args->model_dir, "Models: DIR/value, DIR/tenants/T/value")->capture_default_str();
  cmd->add_option("--avm", args->avm, "Valuation model directory (default: the tenant's or the shared one)");
  cmd->add_flag("--skip-bad", args->skip_bad, "Skip rows that do not parse (reported) instead of stopping");
  cmd->callback([args, exit_code] { *exit_code = run_import_listings(*args); });
}

}  // namespace reai::cli
