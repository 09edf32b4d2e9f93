// fhir/ucum: a parser of UCUM unit codes (the case-sensitive "c/s" form FHIR uses) into a
// factor and the powers of base units, so that commensurable units can be compared: FHIRPath
// quantity comparison and arithmetic (fhirpath/values) and quantity search (search/normalize)
// share it.
//
// Grammar (UCUM spec §2-§7): terms joined by '.' (product) and '/' (quotient, left to right:
// mg/kg/d is (mg/kg)/d), a leading '/' (/min), parentheses, integer exponents after a unit
// (m2, s-1, 10*3), integer factors (/100), metric prefixes (Y … y, da) on metric atoms, and the
// atoms of the table in ucum.cpp: the SI base and derived units, the clinically common
// non-SI ones (L, min, h, d, wk, mo, a, mm[Hg], cm[H2O], eq, osm, U, cal, g%) and the common
// customary ones ([in_i], [ft_i], [lb_av], [oz_av], [gal_us], …).
//
// Not understood (nullopt, so such units are compared only as written): annotations ({cells})
// — UCUM gives them no meaning, so reading them as 1 would equate counts of different things —
// arbitrary units ([iU], [arb'U]: commensurable with nothing by the spec), the special units
// with an offset or a non-linear scale (Cel, [degF], [pH], Np, B…: not a factor of a base unit),
// and units whose factor is irrational ([pi], deg) or does not fit the exact factor below.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace jiceng::ucum {

// The base units, in UCUM's order, and mol. UCUM defines mol as 6.0221367e23 (a pure number);
// here it is a base unit of its own, so that amounts of substance are commensurable only with
// each other: mmol/L never with 1/L, and never with mg/dL (that needs a molar mass).
enum class Base : uint8_t { kMeter, kSecond, kGram, kRadian, kKelvin, kCoulomb, kCandela, kMole };
inline constexpr size_t kBaseCount = 8;
using Dimensions = std::array<int, kBaseCount>;

// An exact positive factor: mantissa × 10^exponent / denominator, the denominator coprime to 10
// (so it is 1 exactly when the factor is a terminating decimal: all metric units, [in_i],
// [lb_av], mm[Hg] … but not [oz_av] or mL/min).
struct Factor {
  uint64_t mantissa = 1;
  int exponent = 0;
  uint64_t denominator = 1;
  double ToDouble() const;
};

struct Unit {
  Factor factor;
  Dimensions dims{};
};

// nullopt for a code that is malformed or uses something the parser does not understand (see
// above), or whose exact factor would overflow 64 bits.
std::optional<Unit> Parse(std::string_view code);

// The unit of `dims` in base units, as a UCUM code: "g", "m3", "m-1.s-2.g" (pressure), "m-3.mol";
// "1" for a pure number. Two units are commensurable exactly when these are equal.
std::string BaseCode(const Dimensions& dims);

}  // namespace jiceng::ucum
