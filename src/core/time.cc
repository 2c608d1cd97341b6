#include "core/time.h"

#include <chrono>
#include <cstdio>

namespace reai {
namespace {

bool parse_digits(std::string_view s, std::size_t pos, std::size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

bool is_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int days_in_month(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

}  // namespace

std::int64_t days_from_civil(int year, int month, int day) {
  // Howard Hinnant's days_from_civil.
  const int y = year - (month <= 2 ? 1 : 0);
  const int era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = static_cast<unsigned>((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1);
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return static_cast<std::int64_t>(era) * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

std::optional<UnixSeconds> parse_iso8601(std::string_view s) {
  int year, month, day;
  if (!parse_digits(s, 0, 4, &year) || s.size() < 10 || s[4] != '-' ||
      !parse_digits(s, 5, 2, &month) || s[7] != '-' || !parse_digits(s, 8, 2, &day)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > days_in_month(year, month)) return std::nullopt;
  const std::int64_t days = days_from_civil(year, month, day);
  if (s.size() == 10) return days * 86400;

  int hour, minute, second;
  if ((s[10] != 'T' && s[10] != ' ') || !parse_digits(s, 11, 2, &hour) || s.size() < 19 ||
      s[13] != ':' || !parse_digits(s, 14, 2, &minute) || s[16] != ':' ||
      !parse_digits(s, 17, 2, &second)) {
    return std::nullopt;
  }
  if (hour > 23 || minute > 59 || second > 60) return std::nullopt;
  std::size_t pos = 19;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    const std::size_t start = pos;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos;
    if (pos == start) return std::nullopt;
  }
  std::int64_t offset = 0;
  if (pos == s.size()) {
    // No zone designator: CRM exports are UTC.
  } else if (s[pos] == 'Z' && pos + 1 == s.size()) {
  } else if ((s[pos] == '+' || s[pos] == '-') && s.size() == pos + 6 && s[pos + 3] == ':') {
    int oh, om;
    if (!parse_digits(s, pos + 1, 2, &oh) || !parse_digits(s, pos + 4, 2, &om) || oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset = (s[pos] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
  } else {
    return std::nullopt;
  }
  return days * 86400 + hour * 3600 + minute * 60 + second - offset;
}

std::string format_iso8601(UnixSeconds t) {
  std::int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
  std::int64_t secs = t - days * 86400;
  // Hinnant's civil_from_days.
  days += 719468;
  const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(days - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  const std::int64_t year = y + (m <= 2 ? 1 : 0);
  if (year < 0 || year > 9999) {  // rare: let snprintf widen the field
    char buf[96];
    std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02lld:%02lld:%02lldZ", static_cast<long long>(year), m, d,
                  static_cast<long long>(secs / 3600), static_cast<long long>(secs / 60 % 60),
                  static_cast<long long>(secs % 60));
    return buf;
  }
  // Scores carry a timestamp on every event: digits by hand, not snprintf.
  std::string out = "0000-00-00T00:00:00Z";
  auto put2 = [&out](std::size_t at, unsigned v) {
    out[at] = static_cast<char>('0' + v / 10);
    out[at + 1] = static_cast<char>('0' + v % 10);
  };
  put2(0, static_cast<unsigned>(year / 100));
  put2(2, static_cast<unsigned>(year % 100));
  put2(5, m);
  put2(8, d);
  put2(11, static_cast<unsigned>(secs / 3600));
  put2(14, static_cast<unsigned>(secs / 60 % 60));
  put2(17, static_cast<unsigned>(secs % 60));
  return out;
}

UnixSeconds SystemClock::now() const {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace reai
