// A CRM history as one value: the contacts, events and opportunity stage rows
// of one or more tenants, as loaded from the crm/ CSV files (core/crm_csv.h)
// or built by a generator. Shared by the demo, the analytics models, the
// prediction routes, the batch commands and the evaluation tools.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/crm_csv.h"
#include "core/status.h"
#include "core/types.h"

namespace reai {

// Plain value type; rows keep the order they were loaded or built in
// (load_events_csv sorts events by ts).
struct CrmHistory {
  std::vector<Contact> contacts;
  std::vector<Event> events;
  std::vector<OpportunityStage> stages;
};

// What each file's load read and skipped. A file's report is set only when
// that file loaded: on failure, the files before the failing one have theirs,
// the failing one and those after it do not; a file not asked for (nullopt
// path) never has one.
struct CrmHistoryLoadReport {
  std::optional<CsvLoadReport> contacts;
  std::optional<CsvLoadReport> events;
  std::optional<CsvLoadReport> stages;
};

// Loads contacts, then events, then stages with core/crm_csv.h and `options`
// (skip_bad_rows and tenant_filter apply to all three files). A nullopt
// events or stages path loads no rows of that kind; a given path must name a
// file, an empty one included. Fails with the first failing file's status:
// NotFound naming the path (missing file), InvalidArgument (missing column,
// bad row naming file and line without skip_bad_rows, a file without data
// rows). `report` may be null.
Result<CrmHistory> load_crm_history(const std::string& contacts_path, const std::optional<std::string>& events_path,
                                    const std::optional<std::string>& stages_path,
                                    const CsvLoadOptions& options = {}, CrmHistoryLoadReport* report = nullptr);

// A command line's optional file: nullopt when `path` is empty (not given).
std::optional<std::string> optional_file(const std::string& path);

// The three files of a directory in the crm/ layout: DIR/contacts.csv,
// DIR/events.csv, DIR/opportunity_stages.csv, all required.
Result<CrmHistory> load_crm_history_dir(const std::string& dir, const CsvLoadOptions& options = {},
                                        CrmHistoryLoadReport* report = nullptr);

// The rows of `history` with a timestamp strictly before `end` (contacts by
// created_at, events and stages by ts), in their order.
CrmHistory truncate_history(const CrmHistory& history, UnixSeconds end);

// The latest timestamp of the history (contacts' created_at, events' and
// stages' ts); 0 when it is empty.
UnixSeconds history_end(const CrmHistory& history);

}  // namespace reai
