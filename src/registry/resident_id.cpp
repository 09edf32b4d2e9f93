#include "registry/resident_id.h"

#include <array>
#include <cstdio>

namespace jiceng::registry {
namespace {

constexpr std::array<int, 17> kWeights = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
constexpr std::string_view kCheckChars = "10X98765432";

bool AllDigits(std::string_view s) {
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

int Num(std::string_view s) {
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

// GB/T 2260 province-level prefixes (11 Beijing … 65 Xinjiang, 71 Taiwan, 81/82 HK/Macau).
// Only the shape is checked beyond this: numbers keep codes that have since been retired.
bool IsPlausibleProvince(int p) {
  return (p >= 11 && p <= 15) || (p >= 21 && p <= 23) || (p >= 31 && p <= 37) ||
         (p >= 41 && p <= 46) || (p >= 50 && p <= 54) || (p >= 61 && p <= 65) || p == 71 ||
         p == 81 || p == 82;
}

Status CheckRegion(std::string_view region) {
  if (region.size() != 6 || !AllDigits(region)) {
    return Invalid("Resident ID region code must be 6 digits");
  }
  if (!IsPlausibleProvince(Num(region.substr(0, 2)))) {
    return Invalid("Resident ID region code has no valid province prefix");
  }
  return Status::Ok();
}

}  // namespace

bool IsValidCivilDate(const CivilDate& d) {
  if (d.year < 1800 || d.year > 2999 || d.month < 1 || d.month > 12 || d.day < 1) return false;
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (d.year % 4 == 0 && d.year % 100 != 0) || d.year % 400 == 0;
  int max_day = kDays[d.month - 1] + (d.month == 2 && leap ? 1 : 0);
  return d.day <= max_day;
}

char ResidentIdCheckChar(std::string_view first17) {
  int sum = 0;
  for (std::size_t i = 0; i < 17 && i < first17.size(); ++i) {
    sum += (first17[i] - '0') * kWeights[i];
  }
  return kCheckChars[static_cast<std::size_t>(sum % 11)];
}

Result<ResidentIdInfo> ParseResidentId(std::string_view id) {
  if (id.size() != 18) return Invalid("Resident ID must have 18 characters");
  std::string_view first17 = id.substr(0, 17);
  if (!AllDigits(first17)) return Invalid("Resident ID characters 1-17 must be digits");
  char check = id[17];
  if (check == 'x') check = 'X';
  if (!((check >= '0' && check <= '9') || check == 'X')) {
    return Invalid("Resident ID check character must be a digit or X");
  }
  JC_RETURN_IF_ERROR(CheckRegion(id.substr(0, 6)));
  CivilDate birth{Num(id.substr(6, 4)), Num(id.substr(10, 2)), Num(id.substr(12, 2))};
  if (birth.year < 1850 || !IsValidCivilDate(birth)) {
    return Invalid("Resident ID birth date " + std::string(id.substr(6, 8)) + " is not a real date");
  }
  char expected = ResidentIdCheckChar(first17);
  if (check != expected) {
    return Invalid(std::string("Resident ID check character should be ") + expected);
  }
  ResidentIdInfo info;
  info.normalized.assign(first17);
  info.normalized.push_back(check);
  info.region.assign(id.substr(0, 6));
  info.birth_date = birth;
  info.sequence = Num(id.substr(14, 3));
  info.sex = info.sequence % 2 == 1 ? Sex::kMale : Sex::kFemale;
  return info;
}

Result<std::string> UpgradeResidentId15(std::string_view id15) {
  if (id15.size() != 15 || !AllDigits(id15)) return Invalid("Old resident ID must be 15 digits");
  JC_RETURN_IF_ERROR(CheckRegion(id15.substr(0, 6)));
  // The 15-digit form was issued only to people born in the 1900s.
  CivilDate birth{1900 + Num(id15.substr(6, 2)), Num(id15.substr(8, 2)), Num(id15.substr(10, 2))};
  if (!IsValidCivilDate(birth)) {
    return Invalid("Old resident ID birth date " + std::string(id15.substr(6, 6)) +
                   " is not a real date");
  }
  std::string out;
  out.reserve(18);
  out.append(id15.substr(0, 6));
  out.append("19");
  out.append(id15.substr(6));
  out.push_back(ResidentIdCheckChar(out));
  return out;
}

Result<ResidentIdInfo> ParseAnyResidentId(std::string_view id) {
  if (id.size() == 15) {
    JC_ASSIGN_OR_RETURN(std::string upgraded, UpgradeResidentId15(id));
    return ParseResidentId(upgraded);
  }
  return ParseResidentId(id);
}

Result<std::string> MakeResidentId(std::string_view region, const CivilDate& birth, int sequence) {
  JC_RETURN_IF_ERROR(CheckRegion(region));
  if (!IsValidCivilDate(birth)) return Invalid("Birth date is not a real date");
  if (sequence < 0 || sequence > 999) return Invalid("Sequence must be 0..999");
  char buf[18];
  std::snprintf(buf, sizeof buf, "%04d%02d%02d%03d", birth.year, birth.month, birth.day, sequence);
  std::string out;
  out.reserve(18);
  out.append(region);
  out.append(buf, 11);
  out.push_back(ResidentIdCheckChar(out));
  return out;
}

std::string FormatCivilDate(const CivilDate& d) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d", d.year, d.month, d.day);
  return buf;
}

}  // namespace jiceng::registry
