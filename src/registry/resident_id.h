// registry/resident_id: the mainland resident identity number (居民身份证号码, GB 11643-1999).
// Owns validation, the 15→18 digit upgrade, the facts a number encodes (birth date, sex) and
// construction of valid numbers. See shared/domain/RULES.md §1.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"

namespace jiceng::registry {

// OID of the resident identity number as used in Chinese health record documents
// (WS/T 500 shared documents identify 身份证号 with root 2.16.156.10011.1.3).
inline constexpr std::string_view kResidentIdSystem = "urn:oid:2.16.156.10011.1.3";

enum class Sex { kMale, kFemale };

struct CivilDate {
  int year = 0;
  int month = 0;
  int day = 0;
  friend bool operator==(const CivilDate&, const CivilDate&) = default;
};

// What an 18-digit number says about its holder.
struct ResidentIdInfo {
  std::string normalized;  // 18 characters, check character upper-case
  std::string region;      // 6-digit address code (shape-checked only: retired codes stay valid)
  CivilDate birth_date;
  int sequence = 0;        // 3-digit sequence; odd = male, even = female
  Sex sex = Sex::kMale;
};

// ISO 7064 MOD 11-2 check character over the first 17 digits ('0'..'9' or 'X').
// `first17` must be 17 ASCII digits.
char ResidentIdCheckChar(std::string_view first17);

bool IsValidCivilDate(const CivilDate& d);

// Validates an 18-digit number: shape, region code shape, a real birth date and the check
// character. Lower-case 'x' is accepted and the
// normalized number carries 'X'.
Result<ResidentIdInfo> ParseResidentId(std::string_view id);

// Upgrades the old 15-digit number (6 region + YYMMDD + 3 sequence, all born 19xx) to 18 digits.
Result<std::string> UpgradeResidentId15(std::string_view id15);

// Accepts either form; a 15-digit number is upgraded first.
Result<ResidentIdInfo> ParseAnyResidentId(std::string_view id);

// Builds a valid 18-digit number. `sequence` is 0..999; its parity encodes the sex, so callers
// choose an odd sequence for a man and an even one for a woman.
Result<std::string> MakeResidentId(std::string_view region, const CivilDate& birth, int sequence);

// "YYYY-MM-DD" (FHIR date) for a civil date.
std::string FormatCivilDate(const CivilDate& d);

}  // namespace jiceng::registry
