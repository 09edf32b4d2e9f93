// generator/tables: the reference tables the synthetic county draws from — surnames with their
// population shares, given-name characters with pinyin, simplified→traditional and homophone
// substitutions for corrupted duplicates, real county codes, the age pyramid and the prevalence
// curves. Every figure names its source beside it in tables.cpp.
#pragma once

#include <span>
#include <string_view>

namespace jiceng::generator {

struct Surname {
  std::string_view hanzi;
  std::string_view pinyin;
  double share;  // percent of the population (approximate)
};
std::span<const Surname> Surnames();
double SurnameShareTotal();

struct NameChar {
  std::string_view hanzi;
  std::string_view pinyin;  // lower-case, no tone marks
};
// Given-name characters by sex and generation: names of people born before 1980 and after
// differ sharply (建国/秀英 versus 梓轩/欣怡).
std::span<const NameChar> GivenChars(bool male, bool born_before_1980);
// Pinyin of a given-name character from any of the lists (empty when unknown).
std::string_view PinyinOf(std::string_view hanzi);

struct CharSwap {
  std::string_view from;
  std::string_view to;
};
// Simplified → traditional forms that registration systems still receive (陈→陳, 刘→劉, …).
std::span<const CharSwap> TraditionalForms();
// Same-sound characters a clerk types by mistake from a spoken name (明→鸣, 伟→玮, …).
std::span<const CharSwap> Homophones();

// A real county-level division (GB/T 2260) with its city and province.
struct CountyInfo {
  std::string_view code;  // 6 digits
  std::string_view name;
  std::string_view city;
  std::string_view city_code;  // 4 digits
  std::string_view province;
  std::string_view postal_code;
};
std::span<const CountyInfo> Counties();
// Birth regions of residents who married or moved in from outside the city (ID prefix only).
std::span<const std::string_view> MigrantBirthRegions();

// Syllables for synthetic township and village names ("{a}{b}镇", "{a}{b}村").
std::span<const std::string_view> PlaceFirst();
std::span<const std::string_view> PlaceSecond();

// Mobile prefixes in real use (1[3-9]x).
std::span<const std::string_view> MobilePrefixes();

// Age pyramid in 5-year bands 0-4 … 80-84, 85+ (18 bands), percent of residents.
std::span<const double> AgeBandShares();
// Probability that a resident of this age is male.
double MaleShareAtAge(int age);

// Prevalence (true, diagnosed or not) of hypertension / type 2 diabetes at an age.
double HypertensionPrevalence(int age);
double DiabetesPrevalence(int age);
// Share of prevalent cases that are diagnosed (and so recorded as a Condition).
inline constexpr double kHypertensionAwareness = 0.50;
inline constexpr double kDiabetesAwareness = 0.40;

}  // namespace jiceng::generator
