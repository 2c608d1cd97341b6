// Loading a CRM history in the crm/ CSV format (shared/data/README.md):
// contacts.csv, events.csv, opportunity_stages.csv. Columns are found by
// header name; extra columns are ignored; a missing required column fails the
// whole file. A row that does not parse is reported with its file and line.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/types.h"

namespace reai {

struct CsvRowError {
  std::string file;
  std::size_t line = 0;
  std::string message;
  std::string to_string() const;  // "events.csv:12: bad ts '2024-13-01'"
};

struct CsvLoadOptions {
  // false: the first bad row fails the load (InvalidArgument naming file and
  // line). true: bad rows are skipped and counted in the report.
  bool skip_bad_rows = false;
  // Only rows of this tenant are kept when set.
  std::string tenant_filter;
};

struct CsvLoadReport {
  std::size_t rows_read = 0;
  std::size_t rows_skipped = 0;
  std::vector<CsvRowError> errors;  // the first 100 bad rows
};

// Each loader fails with NotFound (file), InvalidArgument (missing column, bad
// row without skip_bad_rows) or InvalidArgument("no rows") for an empty file.
// `report` may be null.
Result<std::vector<Contact>> load_contacts_csv(const std::string& path, const CsvLoadOptions& options,
                                               CsvLoadReport* report);
// Events come back sorted by (ts, file order).
Result<std::vector<Event>> load_events_csv(const std::string& path, const CsvLoadOptions& options,
                                           CsvLoadReport* report);
Result<std::vector<OpportunityStage>> load_stages_csv(const std::string& path,
                                                      const CsvLoadOptions& options,
                                                      CsvLoadReport* report);

}  // namespace reai
