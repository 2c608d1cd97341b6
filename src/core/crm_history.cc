#include "core/crm_history.h"

#include <algorithm>
#include <utility>

namespace reai {

namespace {

// Loads one file into `rows`; its report is set only when it loaded.
template <typename Row, typename Loader>
Status load_file(Loader loader, const std::string& path, const CsvLoadOptions& options, std::vector<Row>* rows,
                 std::optional<CsvLoadReport>* report) {
  CsvLoadReport file_report;
  auto loaded = loader(path, options, &file_report);
  if (!loaded) return loaded.status();
  *rows = std::move(*loaded);
  *report = std::move(file_report);
  return Status::ok();
}

}  // namespace

Result<CrmHistory> load_crm_history(const std::string& contacts_path, const std::optional<std::string>& events_path,
                                    const std::optional<std::string>& stages_path, const CsvLoadOptions& options,
                                    CrmHistoryLoadReport* report) {
  CrmHistory history;
  CrmHistoryLoadReport loaded;
  Status status = load_file(load_contacts_csv, contacts_path, options, &history.contacts, &loaded.contacts);
  if (status.is_ok() && events_path)
    status = load_file(load_events_csv, *events_path, options, &history.events, &loaded.events);
  if (status.is_ok() && stages_path)
    status = load_file(load_stages_csv, *stages_path, options, &history.stages, &loaded.stages);
  // Written on failure too: a caller can say which files loaded before the
  // one that failed.
  if (report) *report = std::move(loaded);
  if (!status.is_ok()) return status;
  return history;
}

Result<CrmHistory> load_crm_history_dir(const std::string& dir, const CsvLoadOptions& options,
                                        CrmHistoryLoadReport* report) {
  return load_crm_history(dir + "/contacts.csv", dir + "/events.csv", dir + "/opportunity_stages.csv", options,
                          report);
}

std::optional<std::string> optional_file(const std::string& path) {
  if (path.empty()) return std::nullopt;
  return path;
}

CrmHistory truncate_history(const CrmHistory& history, UnixSeconds end) {
  CrmHistory out;
  for (const auto& c : history.contacts)
    if (c.created_at < end) out.contacts.push_back(c);
  for (const auto& e : history.events)
    if (e.ts < end) out.events.push_back(e);
  for (const auto& s : history.stages)
    if (s.ts < end) out.stages.push_back(s);
  return out;
}

UnixSeconds history_end(const CrmHistory& history) {
  UnixSeconds end = 0;
  for (const auto& c : history.contacts) end = std::max(end, c.created_at);
  for (const auto& e : history.events) end = std::max(end, e.ts);
  for (const auto& s : history.stages) end = std::max(end, s.ts);
  return end;
}

}  // namespace reai
