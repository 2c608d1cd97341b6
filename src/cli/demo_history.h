// The demo's shipped history placed at the demo's start: every timestamp of
// the fixture moved by the same whole number of weeks so the history ends
// within a week before "now" (weekdays and hours of day stay as recorded).
// The shift is recorded in the data directory so a restart on an existing
// store reuses it instead of shifting (or importing) again. The history is
// core's CrmHistory (core/crm_history.h, which also has its history_end).
#pragma once

#include <optional>
#include <string>

#include "core/crm_history.h"
#include "core/status.h"
#include "core/types.h"

namespace reai::cli {

// Seconds, a multiple of 7 days, that move `end` to within the week up to
// `anchor` (end + shift in (anchor - 7 days, anchor]); 0 when end is already
// in that week. Negative when end lies after anchor.
UnixSeconds week_aligned_shift(UnixSeconds end, UnixSeconds anchor);

// Adds `seconds` to every timestamp of the history.
void shift_history(CrmHistory& history, UnixSeconds seconds);

// A demo store whose history ended more than this before the demo starts
// shows a stale pipeline (open deals months in their stage): `reai demo`
// rebuilds it when it holds nothing but the demo.
constexpr UnixSeconds kStaleDemoHistorySeconds = 30 * 86400;

// True when a stored history that ends at `end` is stale for a demo that
// starts at `starts_at` (ended more than kStaleDemoHistorySeconds before it).
bool demo_history_is_stale(UnixSeconds end, UnixSeconds starts_at);

// The record of a shift, one file in the data directory: "shift_seconds=N"
// and "history_end=ISO" (the shifted end) lines.
struct HistoryShiftRecord {
  UnixSeconds shift_seconds = 0;
  UnixSeconds history_end = 0;
};
// The file's path in `data_dir`.
std::string history_shift_path(const std::string& data_dir);
// nullopt when the file does not exist; InvalidArgument when it is unreadable.
Result<std::optional<HistoryShiftRecord>> read_history_shift(const std::string& data_dir);
// Writes the file (replacing it through a rename); Internal on I/O failure.
Status write_history_shift(const std::string& data_dir, const HistoryShiftRecord& record);

}  // namespace reai::cli
