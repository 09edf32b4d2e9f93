#include "api/json_patch.h"

#include <gtest/gtest.h>

namespace jiceng::api {
namespace {

json::value J(const char* s) { return *ParseJson(s); }

TEST(JsonPatch, Rfc6902Operations) {
  auto doc = J(R"({"a":{"b":[1,2,3]},"c":"x"})");
  ASSERT_TRUE(ApplyJsonPatch(doc, J(R"([
    {"op":"add","path":"/a/b/1","value":9},
    {"op":"add","path":"/a/b/-","value":4},
    {"op":"remove","path":"/a/b/0"},
    {"op":"replace","path":"/c","value":"y"},
    {"op":"copy","from":"/c","path":"/d"},
    {"op":"move","from":"/d","path":"/e~1f"},
    {"op":"test","path":"/e~1f","value":"y"}])"))
                  .ok());
  EXPECT_EQ(doc, J(R"({"a":{"b":[9,2,3,4]},"c":"y","e/f":"y"})"));
}

TEST(JsonPatch, FailureLeavesDocumentUnchanged) {
  auto doc = J(R"({"a":1})");
  auto before = doc;
  Status s = ApplyJsonPatch(
      doc, J(R"([{"op":"replace","path":"/a","value":2},{"op":"test","path":"/a","value":3}])"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kUnprocessable);
  EXPECT_EQ(doc, before);
}

TEST(JsonPatch, MalformedOperationsAreInvalidWithLocation) {
  auto doc = J(R"({"a":1})");
  Status s = ApplyJsonPatch(
      doc, J(R"([{"op":"add","path":"/b","value":1},{"op":"add","path":"b","value":1}])"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::kInvalid);
  EXPECT_EQ(s.error().issues.at(0).expression, "patch[1].path");
  EXPECT_FALSE(ApplyJsonPatch(doc, J(R"({"op":"add"})")).ok());
  EXPECT_FALSE(ApplyJsonPatch(doc, J(R"([{"op":"add","path":"/x"}])")).ok());
  EXPECT_FALSE(ApplyJsonPatch(doc, J(R"([{"op":"remove","path":"/zz"}])")).ok());
  EXPECT_FALSE(ApplyJsonPatch(doc, J(R"([{"op":"move","from":"/a","path":"/a/b"}])")).ok());
}

TEST(JsonPatch, ArrayIndexRules) {
  auto doc = J(R"({"l":[1]})");
  EXPECT_FALSE(ApplyJsonPatch(doc, J(R"([{"op":"add","path":"/l/01","value":0}])")).ok());
  EXPECT_FALSE(ApplyJsonPatch(doc, J(R"([{"op":"add","path":"/l/5","value":0}])")).ok());
  EXPECT_FALSE(ApplyJsonPatch(doc, J(R"([{"op":"remove","path":"/l/1"}])")).ok());
  EXPECT_TRUE(ApplyJsonPatch(doc, J(R"([{"op":"add","path":"/l/1","value":0}])")).ok());
}

}  // namespace
}  // namespace jiceng::api
