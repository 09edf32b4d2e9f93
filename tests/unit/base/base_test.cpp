#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "base/base64.h"
#include "base/config.h"
#include "base/files.h"
#include "base/ids.h"
#include "base/json.h"
#include "base/time.h"

namespace jiceng {
namespace {

TEST(Json, ParseErrorNamesLineAndColumn) {
  auto r = ParseJson("{\n  \"a\": tru\n}");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, ErrorCode::kInvalid);
  EXPECT_NE(r.error().message.find("line 2"), std::string::npos) << r.error().message;
}

TEST(Json, RejectsTrailingGarbageAndTruncation) {
  EXPECT_FALSE(ParseJson("{} x").ok());
  EXPECT_FALSE(ParseJson("{\"a\":").ok());
  EXPECT_TRUE(ParseJson(" {\"a\":1} \n").ok());
}

TEST(Json, PrettyRoundTrips) {
  auto v = ParseJson(R"({"a":[1,{"b":"c"}],"d":{}})");
  ASSERT_TRUE(v.ok());
  auto again = ParseJson(ToPrettyJson(*v));
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*v, *again);
}

// JsonEqual answers what json::value's operator== answers, on every pair of a varied set.
TEST(Json, JsonEqualAgreesWithBoost) {
  // One array of them, so that the parser builds each value as it does for resources.
  auto parsed = ParseJson(R"([null, true, false, 0, 1, -1, 1.0, 18446744073709551615, "a", "b",
      [], [1, 2], [2, 1], [1, 2, 3], {}, {"a": 1, "b": [true, {"c": "d"}]},
      {"b": [true, {"c": "d"}], "a": 1}, {"a": 1, "b": [true, {"c": "e"}]}, {"a": 1},
      {"a": 1, "c": [true, {"c": "d"}]}])");
  ASSERT_TRUE(parsed.ok());
  std::vector<json::value> values(parsed->get_array().begin(), parsed->get_array().end());
  values.push_back(json::value(int64_t{5}));
  values.push_back(json::value(uint64_t{5}));
  values.push_back(json::value(int64_t{-5}));
  for (const auto& a : values) {
    for (const auto& b : values) {
      EXPECT_EQ(JsonEqual(a, b), a == b) << json::serialize(a) << " vs " << json::serialize(b);
    }
  }
}

TEST(Json, DecimalsInShortestFormAndStringsEscaped) {
  auto v = ParseJson(
      R"({"a":120.5,"b":0.1,"c":7,"d":-3.25e-7,"e":1e21,"s":"王\"x\\\n\u0001","u":18446744073709551615})");
  ASSERT_TRUE(v.ok());
  std::string out = ToJson(*v);
  EXPECT_EQ(out,
            "{\"a\":120.5,\"b\":0.1,\"c\":7,\"d\":-3.25e-07,\"e\":1e+21,\"s\":"
            "\"王\\\"x\\\\\\n\\u0001\",\"u\":18446744073709551615}");
  auto again = ParseJson(out);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *v);
  EXPECT_NE(ToPrettyJson(*v).find("\"a\": 120.5"), std::string::npos);
  // An object serialises exactly as the same object held in a value.
  EXPECT_EQ(ToJson(v->get_object()), out);
}

// ---- Decimals: every number with a fraction or an exponent is read as the nearest double ----

// The double std::from_chars reads from `s` (the reference: correctly rounded).
double FromChars(std::string_view s) {
  double d = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
  EXPECT_TRUE(ec == std::errc() && ptr == s.data() + s.size()) << s;
  return d;
}

std::uint64_t Bits(double d) { return std::bit_cast<std::uint64_t>(d); }

// Feeds `chunks` to a JsonParser one after another, then finishes; a failure is left in `ec`.
json::value ParseInChunks(const std::vector<std::string_view>& chunks,
                          boost::system::error_code& ec) {
  JsonParser p;
  for (std::string_view c : chunks) {
    std::size_t n = p.WriteSome(c, ec);
    if (ec) return nullptr;
    if (n != c.size()) {
      ec = json::error::extra_data;
      return nullptr;
    }
  }
  p.Finish(ec);
  if (ec) return nullptr;
  return p.Release();
}

// The number in a document built by Wrap().
const json::value& TheNumber(const json::value& v) {
  if (v.is_array()) return v.get_array().at(0);
  if (v.is_object()) return v.get_object().at("v");
  return v;
}

// `number` alone, in an array and in an object (a number at the very end of the input takes
// another path through the parser than one followed by a delimiter).
std::vector<std::string> Wrap(std::string_view number) {
  std::string n(number);
  return {n, "[" + n + "]", "{\"v\":" + n + "}", " [ 1, " + n + " ,2]"};
}

TEST(JsonDecimal, SeventeenDigitsRoundTripExactly) {
  // Boost.JSON 1.81 alone reads this as 112.416, a different double (Synthea writes it).
  auto v = ParseJson(R"({"valueQuantity":{"value":112.41600000000001,"unit":"mg"}})");
  ASSERT_TRUE(v.ok());
  const json::value& value = v->at("valueQuantity").at("value");
  ASSERT_TRUE(value.is_double());
  EXPECT_EQ(Bits(value.get_double()), Bits(112.41600000000001));
  EXPECT_NE(Bits(value.get_double()), Bits(112.416));
  EXPECT_EQ(ToJson(*v), R"({"valueQuantity":{"value":112.41600000000001,"unit":"mg"}})");
  EXPECT_NE(ToPrettyJson(*v).find("\"value\": 112.41600000000001"), std::string::npos);
}

TEST(JsonDecimal, TrickyDecimalsMatchFromChars) {
  const char* const kNumbers[] = {"112.41600000000001",
                                  "113.41600000000001",
                                  "453.66400000000004",
                                  "102.70340146410271",
                                  "1.8934011785786686",
                                  "114.88827603376555",
                                  "117.92195263326035",
                                  "0.1",
                                  "0.2",
                                  "0.3",
                                  "0.30000000000000004",
                                  "1e-7",
                                  "1E-7",
                                  "1.0e-7",
                                  "-3.25e-7",
                                  "5e-324",
                                  "-5e-324",
                                  "4.9406564584124654e-324",
                                  "2.4703282292062328e-324",
                                  "2.2250738585072011e-308",
                                  "2.2250738585072014e-308",
                                  "1.7976931348623157e308",
                                  "1.7976931348623158e308",
                                  "-1.7976931348623157E+308",
                                  "-112.41600000000001",
                                  "-0.1",
                                  "-0.0",
                                  "0.0",
                                  "0e0",
                                  "-0e-0",
                                  "1.5",
                                  "1.50",
                                  "100.0",
                                  "1e21",
                                  "1E+21",
                                  "123e-2",
                                  "9007199254740993.0",
                                  "9007199254740993e0",
                                  "18446744073709551616",
                                  "-9223372036854775809",
                                  "123456789012345678901234567890",
                                  "0.1000000000000000055511151231257827",
                                  "1.00000000000000011102230246251565404236316680908203125",
                                  "1.00000000000000011102230246251565404236316680908203126",
                                  "3.141592653589793238462643383279",
                                  "0.000000000000000000000000000000000000000000000000000000000001",
                                  "7.2057594037927933e16",
                                  "8.98846567431158e307",
                                  "1234567890.1234567890123456789"};
  for (std::string_view number : kNumbers) {
    SCOPED_TRACE(number);
    const double want = FromChars(number);
    for (const std::string& doc : Wrap(number)) {
      SCOPED_TRACE(doc);
      auto v = ParseJson(doc);
      ASSERT_TRUE(v.ok()) << v.error().message;
      const json::value& got =
          v->is_array() && v->get_array().size() == 3 ? v->get_array()[1] : TheNumber(*v);
      ASSERT_TRUE(got.is_double());
      EXPECT_EQ(Bits(got.get_double()), Bits(want));
      // What is served reads back as the same double.
      EXPECT_EQ(Bits(FromChars(ToJson(got))), Bits(want)) << ToJson(got);

      // Split into two chunks at every offset, and fed one byte at a time.
      for (std::size_t k = 1; k < doc.size(); ++k) {
        std::string_view d(doc);
        boost::system::error_code ec;
        json::value split = ParseInChunks({d.substr(0, k), d.substr(k)}, ec);
        ASSERT_FALSE(ec) << "split at " << k << ": " << ec.message();
        EXPECT_EQ(split, *v) << "split at " << k;
        EXPECT_EQ(Bits((split.is_array() && split.get_array().size() == 3 ? split.get_array()[1]
                                                                          : TheNumber(split))
                           .get_double()),
                  Bits(want))
            << "split at " << k;
      }
      std::vector<std::string_view> bytes;
      for (std::size_t k = 0; k < doc.size(); ++k)
        bytes.push_back(std::string_view(doc).substr(k, 1));
      boost::system::error_code ec;
      json::value bytewise = ParseInChunks(bytes, ec);
      ASSERT_FALSE(ec) << ec.message();
      EXPECT_EQ(bytewise, *v);
    }
  }
}

// A random JSON decimal: up to 8 integer digits, 1 to 17 fraction digits, sometimes negative,
// sometimes with an exponent.
std::string RandomDecimal(std::mt19937_64& rng) {
  auto digit = [&] { return static_cast<char>('0' + rng() % 10); };
  std::string t = rng() % 4 == 0 ? "-" : "";
  const int int_digits = static_cast<int>(rng() % 9);
  const int frac_digits = 1 + static_cast<int>(rng() % 17);
  if (int_digits == 0) t += '0';
  for (int k = 0; k < int_digits; ++k) t += k == 0 ? static_cast<char>('1' + rng() % 9) : digit();
  t += '.';
  for (int k = 0; k < frac_digits; ++k) t += digit();
  if (rng() % 8 == 0)
    t += (rng() % 2 ? "e" : "E") + std::to_string(static_cast<int>(rng() % 61) - 30);
  return t;
}

TEST(JsonDecimal, RandomDecimalsMatchFromChars) {
  std::mt19937_64 rng(20240611);
  std::vector<std::string> texts;
  std::string doc = "[";
  for (int i = 0; i < 200000; ++i) {
    texts.push_back(RandomDecimal(rng));
    if (i) doc += ',';
    doc += texts.back();
  }
  doc += ']';
  auto v = ParseJson(doc);
  ASSERT_TRUE(v.ok()) << v.error().message;
  const json::array& a = v->get_array();
  ASSERT_EQ(a.size(), texts.size());
  std::size_t mismatches = 0;
  for (std::size_t i = 0; i < texts.size(); ++i) {
    if (Bits(a[i].as_double()) != Bits(FromChars(texts[i])) && ++mismatches <= 10)
      ADD_FAILURE() << texts[i] << " parsed as " << ToJson(a[i]);
  }
  EXPECT_EQ(mismatches, 0u);
}

TEST(JsonDecimal, IntegersStayIntegers) {
  auto v = ParseJson(R"([0,-0,7,-9223372036854775808,9223372036854775807,18446744073709551615])");
  ASSERT_TRUE(v.ok());
  const auto& a = v->get_array();
  EXPECT_TRUE(a[0].is_int64() && a[0].get_int64() == 0);
  EXPECT_TRUE(a[1].is_int64() && a[1].get_int64() == 0);
  EXPECT_TRUE(a[2].is_int64() && a[2].get_int64() == 7);
  EXPECT_TRUE(a[3].is_int64() && a[3].get_int64() == std::numeric_limits<std::int64_t>::min());
  EXPECT_TRUE(a[4].is_int64() && a[4].get_int64() == std::numeric_limits<std::int64_t>::max());
  EXPECT_TRUE(a[5].is_uint64() && a[5].get_uint64() == std::numeric_limits<std::uint64_t>::max());
  // An integer split across chunks does not leak its digits into the next decimal.
  boost::system::error_code ec;
  json::value split = ParseInChunks({"[12", "34,0.", "5]"}, ec);
  ASSERT_FALSE(ec);
  EXPECT_EQ(split.get_array()[0].get_int64(), 1234);
  EXPECT_EQ(Bits(split.get_array()[1].get_double()), Bits(0.5));
}

TEST(JsonDecimal, OutsideTheRangeOfDoubleIsInfinityOrZero) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const std::pair<const char*, double> kCases[] = {
      {"1e400", kInf}, {"-1e400", -kInf}, {"1.7976931348623159e308", kInf},
      {"1e-400", 0.0}, {"-1e-400", -0.0}, {"2.4703282292062327e-324", 0.0},
  };
  for (const auto& [text, want] : kCases) {
    for (const std::string& doc : Wrap(text)) {
      auto v = ParseJson(doc);
      ASSERT_TRUE(v.ok()) << doc;
      const json::value& got =
          v->is_array() && v->get_array().size() == 3 ? v->get_array()[1] : TheNumber(*v);
      ASSERT_TRUE(got.is_double()) << doc;
      EXPECT_EQ(Bits(got.get_double()), Bits(want)) << doc;
    }
  }
  // JSON has no infinity: it is served as null, as before.
  EXPECT_EQ(ToJson(*ParseJson("[1e400]")), "[null]");
}

TEST(JsonDecimal, MalformedNumbersFailAsBefore) {
  // The messages Jiceng gave with boost::json::stream_parser.
  const std::pair<const char*, const char*> kCases[] = {
      {"1.", "Malformed JSON at line 1, column 3: syntax error"},
      {"-", "Malformed JSON at line 1, column 2: incomplete JSON"},
      {"1e", "Malformed JSON at line 1, column 3: incomplete JSON"},
      {"01", "Malformed JSON: unexpected data after the value at offset 1"},
      {"1.e5", "Malformed JSON at line 1, column 3: syntax error"},
      {".5", "Malformed JSON at line 1, column 1: syntax error"},
      {"+1", "Malformed JSON at line 1, column 1: syntax error"},
      {"1e+", "Malformed JSON at line 1, column 4: syntax error"},
      {"1.5.2", "Malformed JSON: unexpected data after the value at offset 3"},
      {"[1.]", "Malformed JSON at line 1, column 4: syntax error"},
      {"[-]", "Malformed JSON at line 1, column 3: syntax error"},
      {"[1e]", "Malformed JSON at line 1, column 4: syntax error"},
      {"[01]", "Malformed JSON at line 1, column 3: syntax error"},
      {"[-01]", "Malformed JSON at line 1, column 4: syntax error"},
      {R"({"a":1.})", "Malformed JSON at line 1, column 8: syntax error"},
      {R"({"a":-})", "Malformed JSON at line 1, column 7: syntax error"},
      {R"({"a":1e})", "Malformed JSON at line 1, column 8: syntax error"},
      {R"({"a":01})", "Malformed JSON at line 1, column 7: syntax error"},
      {R"({"a":1E+})", "Malformed JSON at line 1, column 9: syntax error"},
      {"[1,\n1.x]", "Malformed JSON at line 2, column 3: syntax error"},
      {"1e99999999999", "Malformed JSON at line 1, column 12: exponent overflow"},
      {"[1e2147483648]", "Malformed JSON at line 1, column 13: exponent overflow"},
  };
  for (const auto& [text, message] : kCases) {
    auto r = ParseJson(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalid);
    EXPECT_EQ(r.error().message, message) << text;
  }
  // Split inside the number, the error is the same.
  for (const char* text : {"[1.]", "[-]", "[1e]", "[01]", "[1e+]"}) {
    std::string_view t(text);
    for (std::size_t k = 1; k < t.size(); ++k) {
      boost::system::error_code ec;
      ParseInChunks({t.substr(0, k), t.substr(k)}, ec);
      EXPECT_EQ(ec, json::error::syntax) << text << " split at " << k << ": " << ec.message();
    }
  }
}

TEST(Json, KeepsStrictnessLimitsAndDuplicateKeyRule) {
  // The last of duplicate keys wins, as with boost::json::stream_parser.
  auto dup = ParseJson(R"({"a":1,"b":0,"a":2.5})");
  ASSERT_TRUE(dup.ok());
  EXPECT_EQ(ToJson(*dup), R"({"a":2.5,"b":0})");
  EXPECT_EQ(ParseJson("[1,]").error().message, "Malformed JSON at line 1, column 4: syntax error");
  EXPECT_EQ(ParseJson(R"({"a":1,})").error().message,
            "Malformed JSON at line 1, column 8: syntax error");
  EXPECT_EQ(ParseJson("/*c*/1").error().message,
            "Malformed JSON at line 1, column 1: syntax error");
  EXPECT_EQ(ParseJson("\"\xff\"").error().message,
            "Malformed JSON at line 1, column 2: syntax error");
  EXPECT_TRUE(ParseJson(std::string(128, '[') + std::string(128, ']')).ok());
  EXPECT_EQ(ParseJson(std::string(129, '[') + std::string(129, ']')).error().message,
            "Malformed JSON at line 1, column 129: too deep");
  // Long strings and keys split across chunks are joined.
  std::string key(300, 'k'), str(5000, 's');
  std::string doc = "{\"" + key + "\":\"" + str + "\"}";
  boost::system::error_code ec;
  json::value v =
      ParseInChunks({std::string_view(doc).substr(0, 100), std::string_view(doc).substr(100, 1000),
                     std::string_view(doc).substr(1100)},
                    ec);
  ASSERT_FALSE(ec);
  EXPECT_EQ(v.at(key).as_string(), str);
}

TEST(Json, ParserUsesTheGivenMemoryResource) {
  json::monotonic_resource arena;
  json::storage_ptr sp(&arena);
  JsonParser p(sp);
  boost::system::error_code ec;
  std::string_view doc = R"({"a":[1.5,"x"]})";
  EXPECT_EQ(p.WriteSome(doc, ec), doc.size());
  ASSERT_FALSE(ec);
  p.Finish(ec);
  ASSERT_FALSE(ec);
  ASSERT_TRUE(p.Done());
  json::value v = p.Release();
  EXPECT_EQ(v.storage().get(), &arena);
  EXPECT_EQ(v.at("a").storage().get(), &arena);
  // ParseJson's values use the default resource.
  EXPECT_EQ(ParseJson("{}")->storage().get(), json::storage_ptr().get());
}

// Every number token of a JSON text, in document order (the text outside string literals).
std::vector<std::string_view> NumberTokens(std::string_view text) {
  std::vector<std::string_view> out;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      std::size_t start = i;
      while (i + 1 < text.size() &&
             std::string_view("0123456789+-.eE").find(text[i + 1]) != std::string_view::npos)
        ++i;
      out.push_back(text.substr(start, i + 1 - start));
    }
  }
  return out;
}

// Every number of `v`, in document order.
void CollectNumbers(const json::value& v, std::vector<const json::value*>& out) {
  if (v.is_object()) {
    for (const auto& kv : v.get_object()) CollectNumbers(kv.value(), out);
  } else if (v.is_array()) {
    for (const auto& e : v.get_array()) CollectNumbers(e, out);
  } else if (v.is_number()) {
    out.push_back(&v);
  }
}

TEST(JsonDecimal, EverySyntheaDecimalMatchesFromChars) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(fs::path(JICENG_SHARED_DIR) / "data/synthea-r4"))
    if (e.path().extension() == ".json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  ASSERT_EQ(files.size(), 30u);
  std::size_t decimals = 0, mismatches = 0, text_changed = 0;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string text = ss.str();
    auto v = ParseJson(text);
    ASSERT_TRUE(v.ok()) << f << ": " << v.error().message;
    std::vector<std::string_view> tokens = NumberTokens(text);
    std::vector<const json::value*> numbers;
    CollectNumbers(*v, numbers);
    ASSERT_EQ(tokens.size(), numbers.size()) << f;
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (!numbers[i]->is_double()) continue;
      ++decimals;
      if (Bits(numbers[i]->get_double()) != Bits(FromChars(tokens[i]))) {
        if (++mismatches <= 10)
          ADD_FAILURE() << f.filename() << ": " << tokens[i] << " parsed as "
                        << ToJson(*numbers[i]);
      }
      // Synthea writes decimals in shortest form, so the served text is the text sent.
      if (ToJson(*numbers[i]) != tokens[i]) ++text_changed;
    }
  }
  EXPECT_EQ(decimals, 10516u);  // the sample's decimals (Boost.JSON 1.81 alone misreads 1,158)
  EXPECT_EQ(mismatches, 0u);
  EXPECT_EQ(text_changed, 0u);
}

TEST(Time, FormatsInstantsInUtc) {
  EXPECT_EQ(FormatInstant(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatInstant(1709604000123456), "2024-03-05T02:00:00.123Z");
  EXPECT_EQ(FormatHttpDate(1709604000123456), "Tue, 05 Mar 2024 02:00:00 GMT");
}

TEST(Time, PartialPrecisionRanges) {
  auto y = ParseDateTimeRange("2024", 0);
  ASSERT_TRUE(y.ok());
  auto v = ParseDateTimeStart("2024-03-05T10:00:00+08:00");
  ASSERT_TRUE(v.ok());
  EXPECT_LE(y->start, *v);
  EXPECT_LT(*v, y->end);
  auto d = ParseDateTimeRange("2024-02-29", 480);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->end - d->start, int64_t{86400} * 1000000);
  // Local midnight in Shanghai is 16:00 UTC the day before.
  EXPECT_EQ(FormatInstant(d->start), "2024-02-28T16:00:00.000Z");
}

TEST(Time, RejectsBadDates) {
  for (const char* s : {"2023-02-29", "2024-13-01", "24-01-01", "2024-01-01T25:00:00Z",
                        "2024-01-01T10:00:00+08", "2024-01-01Z", "2024-01-01T10:00:00.Z"}) {
    EXPECT_FALSE(ParseDateTimeRange(s).ok()) << s;
  }
}

TEST(Ids, UuidShapeAndValidity) {
  std::string a = NewUuid(), b = NewUuid();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.size(), 36u);
  EXPECT_EQ(a[14], '4');
  EXPECT_TRUE(IsValidId(a));
  EXPECT_FALSE(IsValidId(""));
  EXPECT_FALSE(IsValidId("a/b"));
  EXPECT_FALSE(IsValidId(std::string(65, 'a')));
}

// RFC 9562: 48 bits of Unix milliseconds, version 7, 12 + 62 other bits, variant 10.
TEST(Ids, VersionSevenUuidCarriesItsMillisecondsFirst) {
  EXPECT_EQ(UuidV7(0x017F22E279B0ULL, 0xCC3, 0x18C4DC0C0C07398FULL),
            "017f22e2-79b0-7cc3-98c4-dc0c0c07398f");  // RFC 9562 appendix A.6
  EXPECT_EQ(UuidV7(1, ~0ULL, ~0ULL), "00000000-0001-7fff-bfff-ffffffffffff");
  EXPECT_LT(UuidV7(1000, ~0ULL, ~0ULL), UuidV7(1001, 0, 0));  // text order is time order

  auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  std::string id = NewResourceId();
  auto after = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
  ASSERT_EQ(id.size(), 36u);
  EXPECT_TRUE(IsValidId(id));
  EXPECT_EQ(id[14], '7');
  EXPECT_TRUE(id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b') << id;
  auto ms = static_cast<int64_t>(std::stoull(id.substr(0, 8) + id.substr(9, 4), nullptr, 16));
  EXPECT_GE(ms, before);
  EXPECT_LE(ms, after);
  EXPECT_NE(NewResourceId(), NewResourceId());
}

// The published FNV-1a 64 test vectors: stored keys depend on these exact values.
TEST(Ids, Fnv1a64IsTheStandardHash) {
  EXPECT_EQ(Fnv1a64(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(Fnv1a64("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(Fnv1a64("foobar"), 0x85944171f73967e8ULL);
}

TEST(Files, ReadWholeFileReturnsEveryByteOrNothing) {
  const auto path = std::filesystem::path(::testing::TempDir()) / "jiceng-files-test.bin";
  const std::string bytes("a\0b\nc\xff", 6);
  std::ofstream(path, std::ios::binary) << bytes;
  EXPECT_EQ(ReadWholeFile(path), bytes);
  std::ofstream(path, std::ios::binary | std::ios::trunc).close();
  EXPECT_EQ(ReadWholeFile(path), std::string());
  std::filesystem::remove(path);
  EXPECT_EQ(ReadWholeFile(path), std::nullopt);
  EXPECT_FALSE(TempDirectory().empty());
}

TEST(Config, DefaultsAndOverrides) {
  auto c =
      ParseConfig("[server]\nlisten = \"0.0.0.0:9000\"\n[fhir]\nvalidation = \"lenient\"\n", "t");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->listen, "0.0.0.0:9000");
  EXPECT_FALSE(c->strict_validation);
  EXPECT_EQ(c->db, "jiceng.db");
  EXPECT_EQ(c->search_total_limit, 1000);
  EXPECT_EQ(ParseConfig("[fhir]\nsearch_total_limit = 0\n", "t")->search_total_limit, 0);
  EXPECT_FALSE(ParseConfig("[fhir]\nsearch_total_limit = -1\n", "t").ok());
}

TEST(Config, UnknownKeyIsAnError) {
  auto c = ParseConfig("[server]\nlistn = \"x\"\n", "t");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("server.listn"), std::string::npos);
  EXPECT_FALSE(ParseConfig("[fhir]\nvalidation = \"loose\"\n", "t").ok());
  EXPECT_FALSE(ParseConfig("[server]\ndb_read_connections = 0\n", "t").ok());
  EXPECT_EQ(ParseConfig("[server]\ndb_read_connections = 16\n", "t")->db_read_connections, 16);
  EXPECT_EQ(ParseConfig("", "t")->db_read_pipelines, 2);
  EXPECT_EQ(ParseConfig("[fhir]\nexport_file_resources = 500\nexport_dir = \"/x\"\n", "t")
                ->export_file_resources,
            500);
  EXPECT_FALSE(ParseConfig("[fhir]\nexport_file_resources = 0\n", "t").ok());
  EXPECT_FALSE(ParseConfig("[server]\ndb_read_pipelines = 0\n", "t").ok());
  EXPECT_EQ(ParseConfig("[server]\ndb_read_pipelines = 4\n", "t")->db_read_pipelines, 4);
  EXPECT_EQ(ParseConfig("", "t")->db_write_lock_timeout_ms, 30000);
  EXPECT_EQ(ParseConfig("[server]\ndb_write_lock_timeout_ms = 0\n", "t")->db_write_lock_timeout_ms,
            0);
  EXPECT_FALSE(ParseConfig("[server]\ndb_write_lock_timeout_ms = -1\n", "t").ok());
  EXPECT_EQ(ParseConfig("", "t")->db_write_begin_attempts, 4);
  EXPECT_EQ(ParseConfig("[server]\ndb_write_begin_attempts = 9\n", "t")->db_write_begin_attempts,
            9);
  EXPECT_FALSE(ParseConfig("[server]\ndb_write_begin_attempts = 0\n", "t").ok());
  EXPECT_FALSE(ParseConfig("[server\n", "t").ok());
}

TEST(Base64, RoundTripsEveryLengthInBothAlphabets) {
  std::string bytes;
  for (int n = 0; n < 70; ++n) {
    for (const bool url : {false, true}) {
      for (const bool padded : {false, true}) {
        const std::string text = EncodeBase64(bytes, url, padded);
        EXPECT_EQ(text.find(url ? '+' : '-'), std::string::npos);
        EXPECT_EQ(text.find(url ? '/' : '_'), std::string::npos);
        EXPECT_EQ(text.size() % 4 == 0, padded || n % 3 == 0) << n;
        ASSERT_EQ(DecodeBase64(text), bytes) << n << " " << text;
      }
    }
    bytes += static_cast<char>(n * 37 + 251);  // every byte value's high bits, 0xFF included
  }
}

TEST(Base64, DecodesTheRfcVectorsAndRejectsWhatIsNotBase64) {
  EXPECT_EQ(EncodeBase64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(EncodeBase64("fo"), "Zm8=");
  EXPECT_EQ(EncodeBase64("f"), "Zg==");
  EXPECT_EQ(EncodeBase64("\xfb\xff", true, false), "-_8");
  EXPECT_EQ(DecodeBase64("aGVsbG8="), "hello");
  EXPECT_EQ(DecodeBase64("aGVs\r\nbG8"), "hello");  // line breaks of a MIME body
  EXPECT_EQ(DecodeBase64(""), "");
  EXPECT_EQ(DecodeBase64("a*b"), std::nullopt);
  EXPECT_EQ(DecodeBase64("Zg==Zg=="), std::nullopt);  // data after the padding
  EXPECT_EQ(DecodeBase64("Zm9vY"), std::nullopt);     // a lone sixth of a byte
}

}  // namespace
}  // namespace jiceng
