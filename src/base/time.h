// base/time: instants as microseconds since the Unix epoch (UTC), and FHIR date/time text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"

namespace jiceng {

int64_t NowMicros();

// "2024-03-05T02:00:00.123Z" (millisecond precision, UTC) for meta.lastUpdated.
std::string FormatInstant(int64_t micros);
// RFC 7231 IMF-fixdate for Last-Modified: "Tue, 05 Mar 2024 02:00:00 GMT".
std::string FormatHttpDate(int64_t micros);

// Parses a FHIR instant or a dateTime/date with any precision; the result is the start of the
// period it names, in microseconds. A value without an offset is read in `default_offset_minutes`
// (the deployment's time zone; Asia/Shanghai = +480).
Result<int64_t> ParseDateTimeStart(std::string_view text, int default_offset_minutes = 480);

// The half-open range [start, end) of microseconds that a partial-precision date/dateTime names.
struct TimeRange {
  int64_t start = 0;
  int64_t end = 0;
};
Result<TimeRange> ParseDateTimeRange(std::string_view text, int default_offset_minutes = 480);

// Days since 1970-01-01 for a civil date (proleptic Gregorian).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d);

}  // namespace jiceng
