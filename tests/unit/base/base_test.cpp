#include <gtest/gtest.h>

#include "base/config.h"
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

TEST(Config, DefaultsAndOverrides) {
  auto c =
      ParseConfig("[server]\nlisten = \"0.0.0.0:9000\"\n[fhir]\nvalidation = \"lenient\"\n", "t");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->listen, "0.0.0.0:9000");
  EXPECT_FALSE(c->strict_validation);
  EXPECT_EQ(c->db, "jiceng.db");
}

TEST(Config, UnknownKeyIsAnError) {
  auto c = ParseConfig("[server]\nlistn = \"x\"\n", "t");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(c.error().message.find("server.listn"), std::string::npos);
  EXPECT_FALSE(ParseConfig("[fhir]\nvalidation = \"loose\"\n", "t").ok());
  EXPECT_FALSE(ParseConfig("[server]\ndb_read_connections = 0\n", "t").ok());
  EXPECT_EQ(ParseConfig("[server]\ndb_read_connections = 16\n", "t")->db_read_connections, 16);
  EXPECT_FALSE(ParseConfig("[server\n", "t").ok());
}

}  // namespace
}  // namespace jiceng
