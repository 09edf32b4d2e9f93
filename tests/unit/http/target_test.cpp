#include "http/target.h"

#include <gtest/gtest.h>

namespace jiceng::http {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

TEST(ParseTargetTest, DecodesPathAndQueryInOrder) {
  api::Request r;
  ASSERT_TRUE(ParseTarget("/fhir/Patient/a%20b?name=wang+li&given=%E7%8E%8B&flag&name=x%2By", r).ok());
  EXPECT_EQ(r.path, "/fhir/Patient/a b");
  EXPECT_EQ(r.query, (Pairs{{"name", "wang li"}, {"given", "王"}, {"flag", ""}, {"name", "x+y"}}));
}

TEST(ParseTargetTest, EmptyQuerySegmentsAreSkipped) {
  api::Request r;
  ASSERT_TRUE(ParseTarget("/fhir?a=1&&b=", r).ok());
  EXPECT_EQ(r.query, (Pairs{{"a", "1"}, {"b", ""}}));
}

TEST(ParseTargetTest, RejectsNonOriginForm) {
  api::Request r;
  EXPECT_FALSE(ParseTarget("*", r).ok());
  EXPECT_FALSE(ParseTarget("http://host/x", r).ok());
  EXPECT_FALSE(ParseTarget("/a%zz", r).ok());
  EXPECT_FALSE(ParseTarget("", r).ok());
}

TEST(RouteClassTest, KeepsLabelsLowCardinality) {
  EXPECT_EQ(RouteClass("/fhir"), "/fhir");
  EXPECT_EQ(RouteClass("/fhir/"), "/fhir");
  EXPECT_EQ(RouteClass("/fhir/Patient"), "/fhir/{type}");
  EXPECT_EQ(RouteClass("/fhir/Patient/123"), "/fhir/{type}/{id}");
  EXPECT_EQ(RouteClass("/fhir/Patient/123/_history/2"), "/fhir/{type}/{id}/*");
  EXPECT_EQ(RouteClass("/fhir/$export"), "/fhir/{op}");
  EXPECT_EQ(RouteClass("/healthz"), "/healthz");
  EXPECT_EQ(RouteClass("/metrics"), "/metrics");
  EXPECT_EQ(RouteClass("/metrics/x"), "other");
  EXPECT_EQ(RouteClass("/"), "other");
  EXPECT_EQ(RouteClass("/index.html"), "other");
  EXPECT_EQ(MethodClass("GET"), "GET");
  EXPECT_EQ(MethodClass("BREW"), "OTHER");
}

TEST(OperationOutcomeJsonTest, EscapesDiagnostics) {
  EXPECT_EQ(OperationOutcomeJson("too-costly", "a \"b\"\n"),
            R"({"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"too-costly","diagnostics":"a \"b\"\n"}]})");
}

}  // namespace
}  // namespace jiceng::http
