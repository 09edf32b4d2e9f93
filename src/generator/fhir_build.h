// generator/fhir_build: small builders for the FHIR datatypes the generator emits, and the
// calendar arithmetic it needs. Internal to generator/.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/json.h"

namespace jiceng::generator {

namespace json = boost::json;

inline constexpr std::string_view kLoinc = "http://loinc.org";
inline constexpr std::string_view kUcum = "http://unitsofmeasure.org";
inline constexpr std::string_view kSnomed = "http://snomed.info/sct";
inline constexpr std::string_view kIcd10 = "http://hl7.org/fhir/sid/icd-10";
inline constexpr std::string_view kLocalCs = "https://jiceng.example/fhir/CodeSystem/";

// Civil dates as days since 1970-01-01.
struct Ymd {
  int y = 1970;
  int m = 1;
  int d = 1;
};
int64_t DayNumber(int y, int m, int d);
Ymd CivilFromDays(int64_t days);
// Same day of month `months` later (clamped to the month's last day).
int64_t AddMonths(int64_t day, int months);
int64_t AddYears(int64_t day, int years);
// Completed years of age on `day`.
int AgeOn(int64_t birth, int64_t day);
// "2025-06-30".
std::string DateText(int64_t day);
// "2025-06-30T09:15:00+08:00": the county keeps Beijing time.
std::string DateTimeText(int64_t day, int minute_of_day);

json::object Coding(std::string_view system, std::string_view code, std::string_view display);
json::object Concept(json::object coding, std::string_view text = {});
json::object Concept2(json::object coding1, json::object coding2, std::string_view text = {});
json::object Reference(std::string_view type, std::string_view id);
json::object UcumQuantity(double value, std::string_view unit);
json::object UcumQuantity(int64_t value, std::string_view unit);

}  // namespace jiceng::generator
