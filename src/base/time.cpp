#include "base/time.h"

#include <chrono>
#include <cstdio>
#include <ctime>

#include <fmt/format.h>

namespace jiceng {

int64_t NowMicros() {
  using namespace std::chrono;
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  // Howard Hinnant's algorithm.
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

namespace {

struct Civil {
  int64_t y;
  unsigned m, d;
};

Civil CivilFromDays(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  return {y + (m <= 2), m, d};
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

bool IsLeap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
unsigned DaysInMonth(int64_t y, unsigned m) {
  static const unsigned kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

bool Digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = 0; i < n; ++i) {
    char c = s[pos + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

}  // namespace

std::string FormatInstant(int64_t micros) {
  int64_t secs = FloorDiv(micros, 1000000);
  int64_t ms = (micros - secs * 1000000) / 1000;
  int64_t days = FloorDiv(secs, 86400);
  int64_t sod = secs - days * 86400;
  Civil c = CivilFromDays(days);
  return fmt::format("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}.{:03d}Z", c.y, c.m, c.d, sod / 3600,
                     (sod / 60) % 60, sod % 60, ms);
}

std::string FormatHttpDate(int64_t micros) {
  static const char* kWday[] = {"Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"};
  static const char* kMon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  int64_t secs = FloorDiv(micros, 1000000);
  int64_t days = FloorDiv(secs, 86400);
  int64_t sod = secs - days * 86400;
  Civil c = CivilFromDays(days);
  int wd = static_cast<int>(((days % 7) + 7) % 7);
  return fmt::format("{}, {:02d} {} {:04d} {:02d}:{:02d}:{:02d} GMT", kWday[wd], c.d, kMon[c.m - 1],
                     c.y, sod / 3600, (sod / 60) % 60, sod % 60);
}

Result<TimeRange> ParseDateTimeRange(std::string_view s, int default_offset_minutes) {
  auto bad = [&] { return Invalid(fmt::format("Invalid date/time '{}'", s)); };
  int y = 0, mo = 1, d = 1, h = 0, mi = 0, se = 0;
  int64_t frac_us = 0;
  if (!Digits(s, 0, 4, y)) return bad();
  std::size_t pos = 4;
  enum Prec { kYear, kMonth, kDay, kMinute, kSecond, kFrac } prec = kYear;
  int frac_digits = 0;
  if (pos < s.size() && s[pos] == '-') {
    if (!Digits(s, pos + 1, 2, mo) || mo < 1 || mo > 12) return bad();
    pos += 3;
    prec = kMonth;
    if (pos < s.size() && s[pos] == '-') {
      if (!Digits(s, pos + 1, 2, d) || d < 1 || static_cast<unsigned>(d) > DaysInMonth(y, mo))
        return bad();
      pos += 3;
      prec = kDay;
      if (pos < s.size() && s[pos] == 'T') {
        if (!Digits(s, pos + 1, 2, h) || s.size() < pos + 6 || s[pos + 3] != ':' ||
            !Digits(s, pos + 4, 2, mi) || h > 23 || mi > 59)
          return bad();
        pos += 6;
        prec = kMinute;
        if (pos < s.size() && s[pos] == ':') {
          if (!Digits(s, pos + 1, 2, se) || se > 60) return bad();
          pos += 3;
          prec = kSecond;
          if (pos < s.size() && s[pos] == '.') {
            ++pos;
            std::size_t start = pos;
            while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
              if (pos - start < 6) frac_us = frac_us * 10 + (s[pos] - '0');
              ++pos;
            }
            frac_digits = static_cast<int>(pos - start);
            if (frac_digits == 0) return bad();
            for (int i = frac_digits; i < 6; ++i) frac_us *= 10;
            prec = kFrac;
          }
        }
      }
    }
  }
  int offset = default_offset_minutes;
  if (pos < s.size()) {
    if (prec < kMinute) return bad();
    if (s[pos] == 'Z' && pos + 1 == s.size()) {
      offset = 0;
    } else if ((s[pos] == '+' || s[pos] == '-') && s.size() == pos + 6 && s[pos + 3] == ':') {
      int oh = 0, om = 0;
      if (!Digits(s, pos + 1, 2, oh) || !Digits(s, pos + 4, 2, om) || oh > 14 || om > 59)
        return bad();
      offset = (oh * 60 + om) * (s[pos] == '-' ? -1 : 1);
    } else {
      return bad();
    }
  }
  if (se == 60) se = 59;  // leap second: clamp
  int64_t days = DaysFromCivil(y, mo, d);
  int64_t start_s = days * 86400 + h * 3600 + mi * 60 + se - static_cast<int64_t>(offset) * 60;
  int64_t start = start_s * 1000000 + frac_us;
  int64_t end = start;
  switch (prec) {
    case kYear: end = (DaysFromCivil(y + 1, 1, 1) * 86400 - int64_t{offset} * 60) * 1000000; break;
    case kMonth: {
      int64_t ny = mo == 12 ? y + 1 : y;
      unsigned nm = mo == 12 ? 1 : mo + 1;
      end = (DaysFromCivil(ny, nm, 1) * 86400 - int64_t{offset} * 60) * 1000000;
      break;
    }
    case kDay: end = start + int64_t{86400} * 1000000; break;
    case kMinute: end = start + int64_t{60} * 1000000; break;
    case kSecond: end = start + 1000000; break;
    case kFrac: {
      int64_t unit = 1;
      for (int i = std::min(frac_digits, 6); i < 6; ++i) unit *= 10;
      end = start + unit;
      break;
    }
  }
  return TimeRange{start, end};
}

Result<int64_t> ParseDateTimeStart(std::string_view text, int default_offset_minutes) {
  JC_ASSIGN_OR_RETURN(TimeRange r, ParseDateTimeRange(text, default_offset_minutes));
  return r.start;
}

}  // namespace jiceng
