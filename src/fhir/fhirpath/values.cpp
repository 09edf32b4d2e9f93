#include "fhir/fhirpath/values.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "base/time.h"
#include "fhir/ucum.h"

namespace jiceng::fhirpath {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads exactly n digits at text[pos]; -1 when absent.
int ReadDigits(std::string_view text, size_t pos, size_t n) {
  if (pos + n > text.size()) return -1;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!IsDigit(text[pos + i])) return -1;
    v = v * 10 + (text[pos + i] - '0');
  }
  return v;
}

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
  return kDays[(m - 1) % 12];
}

// Inverse of DaysFromCivil (H. Hinnant's algorithm).
void CivilFromDays(int64_t z, int& y, int& m, int& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t yy = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  y = static_cast<int>(yy + (m <= 2));
}

// Comparison levels: year..second, with milliseconds folded into the seconds level (the spec
// treats seconds as a decimal).
int Level(const DateTime& d) { return std::min(static_cast<int>(d.precision), 6); }

std::array<int64_t, 6> Components(const DateTime& d, bool to_utc) {
  DateTime n = d;
  if (to_utc && d.kind != DtKind::kTime && d.has_tz && d.precision >= DtPrecision::kHour) {
    int64_t minutes = DaysFromCivil(d.year, static_cast<unsigned>(d.month),
                                    static_cast<unsigned>(d.day)) * 1440 +
                      d.hour * 60 + d.minute - d.tz_minutes;
    int64_t days = minutes >= 0 ? minutes / 1440 : -((-minutes + 1439) / 1440);
    int64_t rem = minutes - days * 1440;
    CivilFromDays(days, n.year, n.month, n.day);
    n.hour = static_cast<int>(rem / 60);
    n.minute = static_cast<int>(rem % 60);
  }
  return {n.year, n.month, n.day, n.hour, n.minute, n.second * 1000LL + n.millis};
}

// A UCUM unit (fhir/ucum) or a calendar keyword, read as the UCUM unit of the same name
// (comparison keeps year/month keywords apart from 'a'/'mo': UnitsComparable).
std::optional<ucum::Unit> ParseUnit(std::string_view unit) {
  std::string_view cal = CalendarUnit(unit);
  if (!cal.empty()) {
    if (cal == "week") unit = "wk";
    else if (cal == "day") unit = "d";
    else if (cal == "hour") unit = "h";
    else if (cal == "minute") unit = "min";
    else if (cal == "second") unit = "s";
    else if (cal == "millisecond") unit = "ms";
    else if (cal == "year") unit = "a";
    else if (cal == "month") unit = "mo";
  }
  return ucum::Parse(unit);
}

bool IsCalendarYearMonth(std::string_view unit) {
  std::string_view c = CalendarUnit(unit);
  return c == "year" || c == "month";
}

}  // namespace

std::optional<Decimal> ParseDecimal(std::string_view text) {
  size_t i = 0;
  if (i < text.size() && (text[i] == '-' || text[i] == '+')) ++i;
  size_t digits = 0;
  while (i < text.size() && IsDigit(text[i])) ++i, ++digits;
  if (digits == 0) return std::nullopt;
  int scale = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    while (i < text.size() && IsDigit(text[i])) ++i, ++scale;
    if (scale == 0) return std::nullopt;
  }
  if (i != text.size()) return std::nullopt;
  return Decimal{std::strtod(std::string(text).c_str(), nullptr), scale};
}

std::string FormatDecimal(const Decimal& d) {
  char buf[64];
  if (d.scale >= 0 && d.scale <= 16) {
    std::snprintf(buf, sizeof buf, "%.*f", d.scale, d.value);
    return buf;
  }
  // Computed values (division, functions) carry no written scale: shortest faithful form.
  std::snprintf(buf, sizeof buf, "%.10f", d.value);
  std::string s = buf;
  while (!s.empty() && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  if (s == "-0") s = "0";
  return s;
}

bool DecimalEquals(double a, double b) {
  double scale = std::max({1.0, std::fabs(a), std::fabs(b)});
  return std::fabs(a - b) <= 1e-12 * scale;
}

std::optional<DateTime> ParseDateTimeText(std::string_view text, DtKind kind) {
  DateTime d;
  d.kind = kind;
  size_t pos = 0;
  auto parse_time = [&](DateTime& t, bool hour_only_ok) -> bool {
    int h = ReadDigits(text, pos, 2);
    if (h < 0 || h > 23) return false;
    t.hour = h;
    t.precision = DtPrecision::kHour;
    pos += 2;
    if (pos < text.size() && text[pos] == ':') {
      int mi = ReadDigits(text, pos + 1, 2);
      if (mi < 0 || mi > 59) return false;
      t.minute = mi;
      t.precision = DtPrecision::kMinute;
      pos += 3;
      if (pos < text.size() && text[pos] == ':') {
        int s = ReadDigits(text, pos + 1, 2);
        if (s < 0 || s > 59) return false;
        t.second = s;
        t.precision = DtPrecision::kSecond;
        pos += 3;
        if (pos < text.size() && text[pos] == '.') {
          ++pos;
          size_t start = pos;
          int ms = 0, n = 0;
          while (pos < text.size() && IsDigit(text[pos])) {
            if (n < 3) ms = ms * 10 + (text[pos] - '0'), ++n;
            ++pos;
          }
          if (pos == start) return false;
          while (n < 3) ms *= 10, ++n;
          t.millis = ms;
          t.precision = DtPrecision::kMillisecond;
        }
      }
    } else if (!hour_only_ok) {
      return false;
    }
    return true;
  };
  if (kind == DtKind::kTime) {
    if (!parse_time(d, true)) return std::nullopt;
    return pos == text.size() ? std::optional<DateTime>(d) : std::nullopt;
  }
  int y = ReadDigits(text, 0, 4);
  if (y < 0) return std::nullopt;
  d.year = y;
  d.precision = DtPrecision::kYear;
  pos = 4;
  if (pos < text.size() && text[pos] == '-') {
    int m = ReadDigits(text, pos + 1, 2);
    if (m < 1 || m > 12) return std::nullopt;
    d.month = m;
    d.precision = DtPrecision::kMonth;
    pos += 3;
    if (pos < text.size() && text[pos] == '-') {
      int dd = ReadDigits(text, pos + 1, 2);
      if (dd < 1 || dd > DaysInMonth(y, m)) return std::nullopt;
      d.day = dd;
      d.precision = DtPrecision::kDay;
      pos += 3;
    }
  }
  if (pos < text.size() && text[pos] == 'T') {
    if (kind == DtKind::kDate) return std::nullopt;
    ++pos;
    if (pos < text.size()) {
      if (d.precision != DtPrecision::kDay) return std::nullopt;
      if (!parse_time(d, true)) return std::nullopt;
    }
  }
  if (pos < text.size()) {
    if (kind == DtKind::kDate) return std::nullopt;
    if (text[pos] == 'Z') {
      d.has_tz = true;
      ++pos;
    } else if (text[pos] == '+' || text[pos] == '-') {
      int th = ReadDigits(text, pos + 1, 2);
      if (th < 0 || pos + 3 >= text.size() || text[pos + 3] != ':') return std::nullopt;
      int tm = ReadDigits(text, pos + 4, 2);
      if (tm < 0) return std::nullopt;
      d.has_tz = true;
      d.tz_minutes = (th * 60 + tm) * (text[pos] == '-' ? -1 : 1);
      pos += 6;
    }
  }
  if (pos != text.size()) return std::nullopt;
  return d;
}

std::string FormatDateTime(const DateTime& d) {
  char buf[64];
  std::string out;
  auto time_part = [&](const DateTime& t) {
    std::snprintf(buf, sizeof buf, "%02d", t.hour);
    out += buf;
    if (t.precision >= DtPrecision::kMinute) {
      std::snprintf(buf, sizeof buf, ":%02d", t.minute);
      out += buf;
    }
    if (t.precision >= DtPrecision::kSecond) {
      std::snprintf(buf, sizeof buf, ":%02d", t.second);
      out += buf;
    }
    if (t.precision >= DtPrecision::kMillisecond) {
      std::snprintf(buf, sizeof buf, ".%03d", t.millis);
      out += buf;
    }
  };
  if (d.kind == DtKind::kTime) {
    time_part(d);
    return out;
  }
  std::snprintf(buf, sizeof buf, "%04d", d.year);
  out += buf;
  if (d.precision >= DtPrecision::kMonth) {
    std::snprintf(buf, sizeof buf, "-%02d", d.month);
    out += buf;
  }
  if (d.precision >= DtPrecision::kDay) {
    std::snprintf(buf, sizeof buf, "-%02d", d.day);
    out += buf;
  }
  if (d.kind == DtKind::kDateTime && d.precision >= DtPrecision::kHour) {
    out += 'T';
    time_part(d);
    if (d.has_tz) {
      if (d.tz_minutes == 0) {
        out += 'Z';
      } else {
        int a = std::abs(d.tz_minutes);
        std::snprintf(buf, sizeof buf, "%c%02d:%02d", d.tz_minutes < 0 ? '-' : '+', a / 60,
                      a % 60);
        out += buf;
      }
    }
  }
  return out;
}

std::optional<int> CompareDateTime(const DateTime& a, const DateTime& b) {
  bool utc = a.has_tz == b.has_tz;
  auto ca = Components(a, utc);
  auto cb = Components(b, utc);
  int la = Level(a), lb = Level(b);
  if (!utc && a.kind == DtKind::kDateTime && b.kind == DtKind::kDateTime &&
      std::min(la, lb) >= static_cast<int>(DtPrecision::kHour)) {
    // One offset unknown: the instants cannot be lined up, so the answer is uncertain.
    return std::nullopt;
  }
  size_t start = a.kind == DtKind::kTime ? 3 : 0;
  size_t common = static_cast<size_t>(std::min(la, lb)) + (a.kind == DtKind::kTime ? 3 : 0);
  for (size_t i = start; i < common && i < 6; ++i) {
    if (ca[i] != cb[i]) return ca[i] < cb[i] ? -1 : 1;
  }
  if (la != lb) return std::nullopt;
  return 0;
}

bool EquivalentDateTime(const DateTime& a, const DateTime& b) {
  if (Level(a) != Level(b)) return false;
  auto c = CompareDateTime(a, b);
  return c && *c == 0;
}

std::string_view CalendarUnit(std::string_view unit) {
  static constexpr std::string_view kUnits[] = {"year",   "month",  "week",
                                                "day",    "hour",   "minute",
                                                "second", "millisecond"};
  for (std::string_view u : kUnits) {
    if (unit == u) return u;
    if (unit.size() == u.size() + 1 && unit.substr(0, u.size()) == u && unit.back() == 's') {
      return u;
    }
  }
  return {};
}

bool UnitsComparable(std::string_view a, std::string_view b) {
  if (IsCalendarYearMonth(a) != IsCalendarYearMonth(b)) {
    // year/month keywords compare with each other only.
    return false;
  }
  auto ua = ParseUnit(a), ub = ParseUnit(b);
  return ua && ub && ua->dims == ub->dims;
}

std::optional<double> ConvertQuantityValue(const Quantity& from, std::string_view to_unit) {
  if (from.unit == to_unit) return from.value.value;
  if (!UnitsComparable(from.unit, to_unit)) return std::nullopt;
  auto uf = ParseUnit(from.unit), ut = ParseUnit(to_unit);
  if (IsCalendarYearMonth(from.unit)) {
    // Calendar: a year is exactly 12 months.
    double months_from = CalendarUnit(from.unit) == "year" ? 12 : 1;
    double months_to = CalendarUnit(to_unit) == "year" ? 12 : 1;
    return from.value.value * months_from / months_to;
  }
  return from.value.value * uf->factor.ToDouble() / ut->factor.ToDouble();
}

std::optional<Quantity> MultiplyQuantity(const Quantity& a, const Quantity& b, bool divide) {
  auto ua = ParseUnit(a.unit), ub = ParseUnit(b.unit);
  if (!ua || !ub) return std::nullopt;
  ucum::Dimensions dims;
  for (size_t i = 0; i < dims.size(); ++i) {
    dims[i] = divide ? ua->dims[i] - ub->dims[i] : ua->dims[i] + ub->dims[i];
  }
  const double fa = ua->factor.ToDouble(), fb = ub->factor.ToDouble();
  if (divide && b.value.value == 0) return std::nullopt;
  Quantity q;
  q.value.value = (divide ? a.value.value / b.value.value : a.value.value * b.value.value) *
                  (divide ? fa / fb : fa * fb);
  q.value.scale = -1;
  q.unit = ucum::BaseCode(dims);
  return q;
}

std::optional<DateTime> AddDuration(const DateTime& d, const Quantity& q, bool subtract) {
  std::string_view unit = CalendarUnit(q.unit);
  if (unit.empty()) {
    static constexpr std::pair<std::string_view, std::string_view> kUcum[] = {
        {"wk", "week"}, {"d", "day"}, {"h", "hour"}, {"min", "minute"},
        {"s", "second"}, {"ms", "millisecond"}};
    for (const auto& [code, name] : kUcum) {
      if (q.unit == code) unit = name;
    }
    if (unit.empty()) return std::nullopt;
  }
  int64_t n = static_cast<int64_t>(std::trunc(q.value.value));
  if (subtract) n = -n;
  DateTime r = d;
  if (d.kind == DtKind::kTime && (unit == "year" || unit == "month" || unit == "week" ||
                                   unit == "day")) {
    return std::nullopt;
  }
  if (unit == "year" || unit == "month") {
    int64_t months = r.year * 12LL + (r.month - 1) + (unit == "year" ? n * 12 : n);
    r.year = static_cast<int>(months >= 0 ? months / 12 : (months - 11) / 12);
    r.month = static_cast<int>(months - r.year * 12LL) + 1;
    r.day = std::min(r.day, DaysInMonth(r.year, r.month));
    return r;
  }
  int64_t ms_per = unit == "week"     ? 604800000LL
                   : unit == "day"    ? 86400000LL
                   : unit == "hour"   ? 3600000LL
                   : unit == "minute" ? 60000LL
                   : unit == "second" ? 1000LL
                                      : 1LL;
  int64_t day_ms = 86400000LL;
  int64_t days = d.kind == DtKind::kTime
                     ? 0
                     : DaysFromCivil(r.year, static_cast<unsigned>(r.month),
                                     static_cast<unsigned>(r.day));
  int64_t total = days * day_ms + ((r.hour * 60LL + r.minute) * 60 + r.second) * 1000 +
                  r.millis + n * ms_per;
  int64_t nd = total >= 0 ? total / day_ms : -((-total + day_ms - 1) / day_ms);
  int64_t rem = total - nd * day_ms;
  if (d.kind != DtKind::kTime) CivilFromDays(nd, r.year, r.month, r.day);
  r.hour = static_cast<int>(rem / 3600000);
  r.minute = static_cast<int>(rem / 60000 % 60);
  r.second = static_cast<int>(rem / 1000 % 60);
  r.millis = static_cast<int>(rem % 1000);
  return r;
}

std::optional<Quantity> ParseQuantityText(std::string_view text) {
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ') text.remove_suffix(1);
  size_t sp = text.find(' ');
  Quantity q;
  auto num = ParseDecimal(text.substr(0, sp));
  if (!num) return std::nullopt;
  q.value = *num;
  if (sp == std::string_view::npos) {
    q.unit = "1";
    return q;
  }
  std::string_view unit = text.substr(sp + 1);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  if (unit.size() >= 2 && unit.front() == '\'' && unit.back() == '\'') {
    q.unit = std::string(unit.substr(1, unit.size() - 2));
  } else if (!CalendarUnit(unit).empty()) {
    q.unit = std::string(unit);
  } else {
    return std::nullopt;
  }
  return q;
}

std::string FormatQuantity(const Quantity& q) {
  std::string s = FormatDecimal(q.value);
  if (!CalendarUnit(q.unit).empty()) return s + " " + q.unit;
  return s + " '" + q.unit + "'";
}

}  // namespace jiceng::fhirpath
