#include "fhir/primitives.h"

#include <cstdint>
#include <limits>

namespace jiceng::fhir {

namespace {

struct NameKind {
  std::string_view name;
  PrimitiveKind kind;
};
constexpr NameKind kKinds[] = {
    {"boolean", PrimitiveKind::kBoolean},     {"integer", PrimitiveKind::kInteger},
    {"positiveInt", PrimitiveKind::kPositiveInt}, {"unsignedInt", PrimitiveKind::kUnsignedInt},
    {"decimal", PrimitiveKind::kDecimal},     {"string", PrimitiveKind::kString},
    {"markdown", PrimitiveKind::kMarkdown},   {"id", PrimitiveKind::kId},
    {"code", PrimitiveKind::kCode},           {"uri", PrimitiveKind::kUri},
    {"url", PrimitiveKind::kUrl},             {"canonical", PrimitiveKind::kCanonical},
    {"oid", PrimitiveKind::kOid},             {"uuid", PrimitiveKind::kUuid},
    {"base64Binary", PrimitiveKind::kBase64Binary}, {"date", PrimitiveKind::kDate},
    {"dateTime", PrimitiveKind::kDateTime},   {"instant", PrimitiveKind::kInstant},
    {"time", PrimitiveKind::kTime},           {"xhtml", PrimitiveKind::kXhtml},
};

bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Reads exactly n digits at s[pos]; advances pos.
bool Digits(std::string_view s, size_t& pos, int n, int& out) {
  if (pos + static_cast<size_t>(n) > s.size()) return false;
  out = 0;
  for (int i = 0; i < n; ++i) {
    char c = s[pos + static_cast<size_t>(i)];
    if (!IsDigit(c)) return false;
    out = out * 10 + (c - '0');
  }
  pos += static_cast<size_t>(n);
  return true;
}

bool Expect(std::string_view s, size_t& pos, char c) {
  if (pos < s.size() && s[pos] == c) {
    ++pos;
    return true;
  }
  return false;
}

int DaysIn(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0)) return 29;
  return kDays[month - 1];
}

// YYYY(-MM(-DD)?)? ; parts = 1, 2 or 3 parsed. "Dates SHALL be valid dates."
bool ParseDate(std::string_view s, size_t& pos, int& parts) {
  int y, m, d;
  if (!Digits(s, pos, 4, y) || y == 0) return false;
  parts = 1;
  if (!Expect(s, pos, '-')) return true;
  if (!Digits(s, pos, 2, m) || m < 1 || m > 12) return false;
  parts = 2;
  if (!Expect(s, pos, '-')) return true;
  if (!Digits(s, pos, 2, d) || d < 1 || d > DaysIn(y, m)) return false;
  parts = 3;
  return true;
}

// hh:mm:ss(.f+)?
bool ParseTime(std::string_view s, size_t& pos) {
  int h, m, sec;
  if (!Digits(s, pos, 2, h) || h > 23 || !Expect(s, pos, ':') || !Digits(s, pos, 2, m) || m > 59 ||
      !Expect(s, pos, ':') || !Digits(s, pos, 2, sec) || sec > 60)
    return false;
  if (Expect(s, pos, '.')) {
    size_t start = pos;
    while (pos < s.size() && IsDigit(s[pos])) ++pos;
    if (pos == start) return false;
  }
  return true;
}

// Z | (+|-)hh:mm with hh:mm in 00:00..14:00 (R4 regex: (0[0-9]|1[0-3]):[0-5][0-9]|14:00).
bool ParseZone(std::string_view s, size_t& pos) {
  if (Expect(s, pos, 'Z')) return true;
  if (!(Expect(s, pos, '+') || Expect(s, pos, '-'))) return false;
  int h, m;
  if (!Digits(s, pos, 2, h) || !Expect(s, pos, ':') || !Digits(s, pos, 2, m) || m > 59) return false;
  return h < 14 || (h == 14 && m == 0);
}

bool NoWhitespace(std::string_view s) {
  for (char c : s)
    if (IsSpace(c)) return false;
  return true;
}

bool IsValidOid(std::string_view s) {
  constexpr std::string_view kPrefix = "urn:oid:";
  if (s.substr(0, kPrefix.size()) != kPrefix) return false;
  size_t pos = kPrefix.size();
  if (pos >= s.size() || s[pos] < '0' || s[pos] > '2') return false;
  ++pos;
  int arcs = 0;
  while (pos < s.size()) {
    if (s[pos] != '.') return false;
    ++pos;
    if (pos >= s.size() || !IsDigit(s[pos])) return false;
    if (s[pos] == '0' && pos + 1 < s.size() && IsDigit(s[pos + 1])) return false;
    while (pos < s.size() && IsDigit(s[pos])) ++pos;
    ++arcs;
  }
  return arcs > 0;
}

bool IsValidUuid(std::string_view s) {
  constexpr std::string_view kPrefix = "urn:uuid:";
  if (s.size() != kPrefix.size() + 36 || s.substr(0, kPrefix.size()) != kPrefix) return false;
  for (size_t i = 0; i < 36; ++i) {
    char c = s[kPrefix.size() + i];
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? c != '-' : !(IsDigit(c) || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool IsValidBase64(std::string_view s) {
  size_t n = 0;
  for (char c : s) {
    if (IsSpace(c)) continue;
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || IsDigit(c) || c == '+' || c == '/' || c == '=';
    if (!ok) return false;
    ++n;
  }
  return n > 0 && n % 4 == 0;
}

}  // namespace

PrimitiveKind PrimitiveKindOf(std::string_view type) {
  for (const auto& k : kKinds)
    if (k.name == type) return k.kind;
  return PrimitiveKind::kNone;
}

bool IsValidDate(std::string_view s) {
  size_t pos = 0;
  int parts;
  return ParseDate(s, pos, parts) && pos == s.size();
}

bool IsValidDateTime(std::string_view s) {
  size_t pos = 0;
  int parts;
  if (!ParseDate(s, pos, parts)) return false;
  if (pos == s.size()) return true;
  // A time needs a full date and a zone.
  return parts == 3 && Expect(s, pos, 'T') && ParseTime(s, pos) && ParseZone(s, pos) && pos == s.size();
}

bool IsValidInstant(std::string_view s) {
  size_t pos = 0;
  int parts;
  return ParseDate(s, pos, parts) && parts == 3 && Expect(s, pos, 'T') && ParseTime(s, pos) &&
         ParseZone(s, pos) && pos == s.size();
}

bool IsValidTime(std::string_view s) {
  size_t pos = 0;
  return ParseTime(s, pos) && pos == s.size();
}

bool IsValidId(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || IsDigit(c) || c == '-' || c == '.')) return false;
  return true;
}

// [^\s]+(\s[^\s]+)*: no leading, trailing or doubled whitespace.
bool IsValidCode(std::string_view s) {
  if (s.empty() || IsSpace(s.front()) || IsSpace(s.back())) return false;
  for (size_t i = 1; i < s.size(); ++i)
    if (IsSpace(s[i]) && IsSpace(s[i - 1])) return false;
  return true;
}

bool CheckPrimitive(PrimitiveKind kind, const boost::json::value& v, const char** why) {
  auto fail = [why](const char* reason) {
    if (why) *why = reason;
    return false;
  };
  switch (kind) {
    case PrimitiveKind::kNone:
      return fail("not a primitive type");
    case PrimitiveKind::kBoolean:
      return v.is_bool() || fail("expected a JSON boolean");
    case PrimitiveKind::kDecimal:
      return v.is_number() || fail("expected a JSON number");
    case PrimitiveKind::kInteger:
    case PrimitiveKind::kPositiveInt:
    case PrimitiveKind::kUnsignedInt: {
      int64_t n;
      if (v.is_int64()) {
        n = v.get_int64();
      } else if (v.is_uint64()) {
        return fail("integer out of range");
      } else {
        return fail("expected a JSON integer");
      }
      if (n > std::numeric_limits<int32_t>::max() || n < std::numeric_limits<int32_t>::min())
        return fail("integer out of range");
      if (kind == PrimitiveKind::kPositiveInt && n < 1) return fail("positiveInt must be at least 1");
      if (kind == PrimitiveKind::kUnsignedInt && n < 0) return fail("unsignedInt must not be negative");
      return true;
    }
    default:
      break;
  }
  if (!v.is_string()) return fail("expected a JSON string");
  std::string_view s = v.get_string();
  if (s.empty()) return fail("empty string (FHIR forbids empty values)");
  // R4 datatypes: strings "SHALL NOT contain Unicode character points below 32, except for
  // u0009 (horizontal tab), u0010 (carriage return) and u0013 (line feed)"; the other string
  // types are narrower still. (Also keeps NUL out of every backend's text columns.)
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') {
      return fail("control character not allowed (FHIR strings allow only tab, CR and LF below U+0020)");
    }
  }
  switch (kind) {
    case PrimitiveKind::kString:
    case PrimitiveKind::kMarkdown:
      return true;
    case PrimitiveKind::kXhtml:
      // Only the string rules here: the narrative rules need an XML parse and a message with a
      // location, so the validator applies them through fhir/xhtml.h.
      return true;
    case PrimitiveKind::kId:
      return IsValidId(s) || fail("invalid id (1-64 of A-Z a-z 0-9 - .)");
    case PrimitiveKind::kCode:
      return IsValidCode(s) || fail("invalid code (leading, trailing or repeated whitespace)");
    case PrimitiveKind::kUri:
    case PrimitiveKind::kUrl:
    case PrimitiveKind::kCanonical:
      return NoWhitespace(s) || fail("URIs must not contain whitespace");
    case PrimitiveKind::kOid:
      return IsValidOid(s) || fail("invalid oid (urn:oid:…)");
    case PrimitiveKind::kUuid:
      return IsValidUuid(s) || fail("invalid uuid (urn:uuid: and lower-case hex)");
    case PrimitiveKind::kBase64Binary:
      return IsValidBase64(s) || fail("invalid base64Binary");
    case PrimitiveKind::kDate:
      return IsValidDate(s) || fail("invalid date (YYYY, YYYY-MM or YYYY-MM-DD)");
    case PrimitiveKind::kDateTime:
      return IsValidDateTime(s) || fail("invalid dateTime (a time needs seconds and a time zone)");
    case PrimitiveKind::kInstant:
      return IsValidInstant(s) || fail("invalid instant (YYYY-MM-DDThh:mm:ss[.f]Z|±hh:mm)");
    case PrimitiveKind::kTime:
      return IsValidTime(s) || fail("invalid time (hh:mm:ss)");
    default:
      return true;
  }
}

}  // namespace jiceng::fhir
