#include "generator/fhir_build.h"

#include <algorithm>
#include <cstdio>

#include "base/time.h"

namespace jiceng::generator {

int64_t DayNumber(int y, int m, int d) {
  return DaysFromCivil(y, static_cast<unsigned>(m), static_cast<unsigned>(d));
}

Ymd CivilFromDays(int64_t z) {
  // Howard Hinnant's civil_from_days.
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t d = doy - (153 * mp + 2) / 5 + 1;
  const int64_t m = mp < 10 ? mp + 3 : mp - 9;
  const int64_t y = yoe + era * 400 + (m <= 2 ? 1 : 0);
  return Ymd{static_cast<int>(y), static_cast<int>(m), static_cast<int>(d)};
}

namespace {
int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return kDays[m - 1] + (m == 2 && leap ? 1 : 0);
}
}  // namespace

int64_t AddMonths(int64_t day, int months) {
  Ymd c = CivilFromDays(day);
  int total = c.y * 12 + (c.m - 1) + months;
  int y = total / 12;
  int m = total % 12 + 1;
  int d = std::min(c.d, DaysInMonth(y, m));
  return DayNumber(y, m, d);
}

int64_t AddYears(int64_t day, int years) { return AddMonths(day, years * 12); }

int AgeOn(int64_t birth, int64_t day) {
  Ymd b = CivilFromDays(birth);
  Ymd t = CivilFromDays(day);
  int age = t.y - b.y;
  if (t.m < b.m || (t.m == b.m && t.d < b.d)) --age;
  return age;
}

std::string DateText(int64_t day) {
  Ymd c = CivilFromDays(day);
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", c.y, c.m, c.d);
  return buf;
}

std::string DateTimeText(int64_t day, int minute_of_day) {
  Ymd c = CivilFromDays(day);
  char buf[40];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:00+08:00", c.y, c.m, c.d,
                minute_of_day / 60 % 24, minute_of_day % 60);
  return buf;
}

json::object Coding(std::string_view system, std::string_view code, std::string_view display) {
  json::object o;
  o.reserve(3);
  o.emplace("system", system);
  o.emplace("code", code);
  if (!display.empty()) o.emplace("display", display);
  return o;
}

json::object Concept(json::object coding, std::string_view text) {
  json::object o;
  o.reserve(2);
  o.emplace("coding", json::array{std::move(coding)});
  if (!text.empty()) o.emplace("text", text);
  return o;
}

json::object Concept2(json::object coding1, json::object coding2, std::string_view text) {
  json::object o;
  o.reserve(2);
  o.emplace("coding", json::array{std::move(coding1), std::move(coding2)});
  if (!text.empty()) o.emplace("text", text);
  return o;
}

json::object Reference(std::string_view type, std::string_view id) {
  std::string ref;
  ref.reserve(type.size() + 1 + id.size());
  ref.append(type).push_back('/');
  ref.append(id);
  json::object o;
  o.emplace("reference", std::move(ref));
  return o;
}

json::object UcumQuantity(double value, std::string_view unit) {
  json::object o;
  o.reserve(4);
  o.emplace("value", value);
  o.emplace("unit", unit);
  o.emplace("system", kUcum);
  o.emplace("code", unit);
  return o;
}

json::object UcumQuantity(int64_t value, std::string_view unit) {
  json::object o;
  o.reserve(4);
  o.emplace("value", value);
  o.emplace("unit", unit);
  o.emplace("system", kUcum);
  o.emplace("code", unit);
  return o;
}

}  // namespace jiceng::generator
