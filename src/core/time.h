// Time: ISO 8601 parsing/formatting and the injectable Clock.
#pragma once

#include <atomic>
#include <optional>
#include <string>
#include <string_view>

#include "core/types.h"

namespace reai {

// Parses "2024-01-01T08:37:40Z", "2024-01-01T08:37:40.123Z",
// "2024-01-01T08:37:40+02:00" and "2024-01-01" (midnight UTC). Fractions are
// truncated. Returns nullopt for anything else, including impossible dates.
std::optional<UnixSeconds> parse_iso8601(std::string_view text);

// "2024-01-01T08:37:40Z".
std::string format_iso8601(UnixSeconds t);

// Days since 1970-01-01 for a proleptic Gregorian date (month 1..12).
std::int64_t days_from_civil(int year, int month, int day);

// The source of "now" for everything time-dependent (decayed features,
// TTLs, token expiry), injected so tests and replay control time.
// Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual UnixSeconds now() const = 0;
};

// Wall-clock time.
class SystemClock final : public Clock {
 public:
  UnixSeconds now() const override;
};

// A clock that moves only when told to; for tests and replay.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(UnixSeconds start = 0) : now_(start) {}
  UnixSeconds now() const override { return now_.load(std::memory_order_relaxed); }
  void set(UnixSeconds t) { now_.store(t, std::memory_order_relaxed); }
  void advance(UnixSeconds seconds) { now_.fetch_add(seconds, std::memory_order_relaxed); }

 private:
  std::atomic<UnixSeconds> now_;
};

}  // namespace reai
