// fhir/fhirpath/ast: the compiled form of an expression (internal to the engine).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "fhir/fhirpath/fhirpath.h"

namespace jiceng::fhirpath {

enum class Op : uint8_t {
  kLiteral,
  kEmpty,     // {}
  kMember,    // input.name (input null: the focus)
  kFunction,  // input.name(args) (input null: the focus)
  kIndexer,   // input[args[0]]
  kThis,
  kIndex,
  kTotal,
  kVariable,  // %name
  kNegate,
  kIs,  // input is name
  kAs,  // input as name
  kBinary,
};

enum class BinOp : uint8_t {
  kAnd, kOr, kXor, kImplies, kEq, kNe, kEquiv, kNequiv, kLt, kLe, kGt, kGe,
  kUnion, kAdd, kSub, kConcat, kMul, kDiv, kIntDiv, kMod, kIn, kContains,
};

enum class Fn : uint8_t {
  kEmpty, kExists, kAll, kAllTrue, kAnyTrue, kAllFalse, kAnyFalse, kSubsetOf, kSupersetOf,
  kCount, kDistinct, kIsDistinct, kWhere, kSelect, kRepeat, kOfType, kAs, kIs, kSingle,
  kFirst, kLast, kTail, kSkip, kTake, kIntersect, kExclude, kUnion, kCombine, kIif,
  kToBoolean, kConvertsToBoolean, kToInteger, kConvertsToInteger, kToDecimal,
  kConvertsToDecimal, kToString, kConvertsToString, kToDate, kConvertsToDate, kToDateTime,
  kConvertsToDateTime, kToTime, kConvertsToTime, kToQuantity, kConvertsToQuantity,
  kIndexOf, kSubstring, kStartsWith, kEndsWith, kContains, kUpper, kLower, kReplace,
  kMatches, kMatchesFull, kReplaceMatches, kLength, kToChars, kAbs, kCeiling, kExp, kFloor, kLn, kLog,
  kPower, kRound, kSqrt, kTruncate, kChildren, kDescendants, kTrace, kNow, kToday,
  kTimeOfDay, kNot, kHasValue, kExtension, kResolve, kMemberOf, kAggregate, kType,
  kEncode, kDecode, kEscape, kUnescape, kTrim, kSplit, kJoin, kSort, kLowBoundary,
  kHighBoundary, kPrecision, kComparable, kConformsTo, kHtmlChecks, kIn, kGetValue,
};

struct AstNode {
  Op op = Op::kLiteral;
  BinOp bin = BinOp::kAnd;
  Fn fn = Fn::kEmpty;
  std::string name;  // member, function, variable or type name ("FHIR.Patient" as written)
  Item literal;
  std::unique_ptr<AstNode> input;
  std::vector<std::unique_ptr<AstNode>> args;
};

}  // namespace jiceng::fhirpath
