#include "cli/demo_history.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/time.h"

namespace reai::cli {

namespace {
constexpr UnixSeconds kWeek = 7 * 86400;
constexpr const char* kShiftKey = "shift_seconds=";
constexpr const char* kEndKey = "history_end=";
}  // namespace

UnixSeconds week_aligned_shift(UnixSeconds end, UnixSeconds anchor) {
  const UnixSeconds gap = anchor - end;
  // Floor division, so a history after the anchor moves back, never forward.
  const UnixSeconds weeks = gap >= 0 ? gap / kWeek : -((-gap + kWeek - 1) / kWeek);
  return weeks * kWeek;
}

bool demo_history_is_stale(UnixSeconds end, UnixSeconds starts_at) {
  return starts_at - end > kStaleDemoHistorySeconds;
}

void shift_history(CrmHistory& history, UnixSeconds seconds) {
  if (seconds == 0) return;
  for (auto& c : history.contacts) c.created_at += seconds;
  for (auto& e : history.events) e.ts += seconds;
  for (auto& s : history.stages) s.ts += seconds;
}

std::string history_shift_path(const std::string& data_dir) {
  return (std::filesystem::path(data_dir) / "demo-history-shift").string();
}

Result<std::optional<HistoryShiftRecord>> read_history_shift(const std::string& data_dir) {
  const std::string path = history_shift_path(data_dir);
  std::ifstream in(path);
  if (!in) return std::optional<HistoryShiftRecord>();
  HistoryShiftRecord record;
  bool has_shift = false, has_end = false;
  for (std::string line; std::getline(in, line);) {
    const std::string_view l(line);
    if (l.starts_with(kShiftKey)) {
      try {
        record.shift_seconds = std::stoll(line.substr(std::string_view(kShiftKey).size()));
        has_shift = true;
      } catch (const std::exception&) {
        return invalid_argument(path + ": bad " + line);
      }
    } else if (l.starts_with(kEndKey)) {
      auto end = parse_iso8601(l.substr(std::string_view(kEndKey).size()));
      if (!end) return invalid_argument(path + ": bad " + line);
      record.history_end = *end;
      has_end = true;
    }
  }
  if (!has_shift || !has_end) return invalid_argument(path + ": needs shift_seconds= and history_end= lines");
  return std::optional<HistoryShiftRecord>(record);
}

Status write_history_shift(const std::string& data_dir, const HistoryShiftRecord& record) {
  const std::string path = history_shift_path(data_dir);
  const std::string temp = path + ".tmp";
  {
    std::ofstream out(temp, std::ios::trunc);
    out << kShiftKey << record.shift_seconds << "\n" << kEndKey << format_iso8601(record.history_end) << "\n";
    if (!out.flush()) return internal_error("cannot write " + temp);
  }
  std::error_code ec;
  std::filesystem::rename(temp, path, ec);
  if (ec) return internal_error("cannot write " + path + ": " + ec.message());
  return Status::ok();
}

}  // namespace reai::cli
