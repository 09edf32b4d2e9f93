// fhir/fhirpath/values: FHIRPath System values that are not plain C++ scalars — partial
// precision Date/DateTime/Time, Decimal with its written scale, Quantity with UCUM or
// calendar-duration units — and the comparison and arithmetic rules the spec gives them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace jiceng::fhirpath {

// A decimal as a double plus the number of digits written after the point: the scale drives
// output, precision() and equivalence (`~` compares at the lesser precision).
struct Decimal {
  double value = 0;
  int scale = 0;
};

// Parses "12", "-1.50"; nullopt when not a FHIRPath decimal.
std::optional<Decimal> ParseDecimal(std::string_view text);
std::string FormatDecimal(const Decimal& d);
// Equality of decimals with a tolerance for binary rounding (0.1 + 0.2 = 0.3 must hold).
bool DecimalEquals(double a, double b);

enum class DtKind : uint8_t { kDate, kDateTime, kTime };

// Precision counts the components present. For kTime the first component is the hour.
enum class DtPrecision : uint8_t {
  kYear = 1,
  kMonth,
  kDay,
  kHour,
  kMinute,
  kSecond,
  kMillisecond
};

struct DateTime {
  DtKind kind = DtKind::kDateTime;
  DtPrecision precision = DtPrecision::kYear;
  int year = 0, month = 1, day = 1, hour = 0, minute = 0, second = 0, millis = 0;
  bool has_tz = false;
  int tz_minutes = 0;  // offset east of UTC
};

// Parses the text of a FHIR date/dateTime/instant/time (no leading '@'). A dateTime may have
// a trailing 'T' with nothing after it (FHIRPath literal "@2015T"). nullopt when malformed.
std::optional<DateTime> ParseDateTimeText(std::string_view text, DtKind kind);
std::string FormatDateTime(const DateTime& d);  // without '@'

// Three-way comparison; nullopt when the values differ only below their common precision
// (the spec's "uncertain" result, which makes `=` and `<` empty).
std::optional<int> CompareDateTime(const DateTime& a, const DateTime& b);
// Equivalence: false (not empty) when precisions differ.
bool EquivalentDateTime(const DateTime& a, const DateTime& b);

struct Quantity {
  Decimal value;
  std::string unit;  // UCUM code, or a calendar keyword ("year", "days", …) as written
};

// Calendar keywords normalised to singular ("years" -> "year"); empty if not a keyword.
std::string_view CalendarUnit(std::string_view unit);

// Converts b's value into a's unit; nullopt when the units are not commensurable. Calendar
// years/months are not commensurable with UCUM 'a'/'mo' for equality (the spec's rule).
std::optional<double> ConvertQuantityValue(const Quantity& from, std::string_view to_unit);
bool UnitsComparable(std::string_view a, std::string_view b);
// a*b and a/b with unit algebra; nullopt when a unit is not understood.
std::optional<Quantity> MultiplyQuantity(const Quantity& a, const Quantity& b, bool divide);

// DateTime + quantity (negate for minus); nullopt when the unit is not a duration allowed
// in date arithmetic ('a' and 'mo' are not: their length varies).
std::optional<DateTime> AddDuration(const DateTime& d, const Quantity& q, bool subtract);

// Parses "4 'mg'", "2 days", "1.5" (unit '1'); nullopt if malformed.
std::optional<Quantity> ParseQuantityText(std::string_view text);
std::string FormatQuantity(const Quantity& q);

}  // namespace jiceng::fhirpath
