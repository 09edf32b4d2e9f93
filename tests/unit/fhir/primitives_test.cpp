#include "fhir/primitives.h"

#include <gtest/gtest.h>

namespace jiceng::fhir {
namespace {

TEST(PrimitivesTest, DatesAndTimes) {
  EXPECT_TRUE(IsValidDate("2024"));
  EXPECT_TRUE(IsValidDate("2024-02"));
  EXPECT_TRUE(IsValidDate("2024-02-29"));
  EXPECT_FALSE(IsValidDate("2023-02-29"));
  EXPECT_FALSE(IsValidDate("0000"));
  EXPECT_FALSE(IsValidDate("2024-13"));
  EXPECT_FALSE(IsValidDate("2024-01-01T00:00:00Z"));
  EXPECT_TRUE(IsValidDateTime("2024-01-01T00:00:00Z"));
  EXPECT_TRUE(IsValidDateTime("2024-01-01T00:00:00.123456+14:00"));
  EXPECT_FALSE(IsValidDateTime("2024-01-01T00:00:00+14:30"));
  EXPECT_FALSE(IsValidDateTime("2024-01T00:00:00Z"));
  EXPECT_FALSE(IsValidDateTime("2024-01-01T24:00:00Z"));
  EXPECT_FALSE(IsValidDateTime("2024-01-01T00:00:00."));
  EXPECT_TRUE(IsValidInstant("2024-01-01T00:00:00-05:00"));
  EXPECT_FALSE(IsValidInstant("2024-01-01"));
  EXPECT_TRUE(IsValidTime("23:59:60"));
  EXPECT_FALSE(IsValidTime("23:59"));
}

TEST(PrimitivesTest, ControlCharactersAreRefused) {
  using boost::json::value;
  EXPECT_TRUE(CheckPrimitive(PrimitiveKind::kString, value("line one\nline two\tend\r")));
  EXPECT_FALSE(CheckPrimitive(PrimitiveKind::kString, value(std::string("a\0b", 3))));
  EXPECT_FALSE(CheckPrimitive(PrimitiveKind::kString, value("bell\a")));
  EXPECT_FALSE(CheckPrimitive(PrimitiveKind::kMarkdown, value("esc\x1b[0m")));
  const char* why = nullptr;
  EXPECT_FALSE(CheckPrimitive(PrimitiveKind::kCode, value("a\x01"), &why));
  ASSERT_NE(why, nullptr);
  EXPECT_NE(std::string(why).find("control character"), std::string::npos);
}

TEST(PrimitivesTest, Strings) {
  EXPECT_TRUE(IsValidId("a-B.9"));
  EXPECT_FALSE(IsValidId(std::string(65, 'a')));
  EXPECT_FALSE(IsValidId(""));
  EXPECT_TRUE(IsValidCode("a b"));
  EXPECT_FALSE(IsValidCode("a  b"));
  EXPECT_FALSE(IsValidCode("a "));
  boost::json::value oid = "urn:oid:1.2.840.10008";
  EXPECT_TRUE(CheckPrimitive(PrimitiveKind::kOid, oid));
  boost::json::value bad_oid = "urn:oid:1.02";
  EXPECT_FALSE(CheckPrimitive(PrimitiveKind::kOid, bad_oid));
  boost::json::value uuid = "urn:uuid:0B8C9A4E-1f3d-4c2b-9e7a-6d5c4b3a2f10";
  EXPECT_FALSE(CheckPrimitive(PrimitiveKind::kUuid, uuid));
  EXPECT_EQ(PrimitiveKindOf("positiveInt"), PrimitiveKind::kPositiveInt);
  EXPECT_EQ(PrimitiveKindOf("Quantity"), PrimitiveKind::kNone);
  const char* why = nullptr;
  EXPECT_FALSE(CheckPrimitive(PrimitiveKind::kPositiveInt, boost::json::value(0), &why));
  EXPECT_NE(why, nullptr);
  EXPECT_TRUE(CheckPrimitive(PrimitiveKind::kDecimal, boost::json::value(1)));
}

}  // namespace
}  // namespace jiceng::fhir
