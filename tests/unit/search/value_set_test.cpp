// fhir/search/value_set: a stored ValueSet's codes for token :in / :not-in. The REST cases
// (tests/integration/cases/search_value_sets.json) search with them on every backend; these
// are the expansion rules and the refusals on their own.
#include "fhir/search/value_set.h"

#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

namespace jiceng::search {
namespace {

json::object Parse(const char* text) { return ParseJson(text)->as_object(); }

// system → codes, from the search values.
std::map<std::string, std::vector<std::string>> Codes(const std::vector<store::SearchValue>& vs) {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& v : vs) out[v.system.value_or("?")] = v.codes;
  return out;
}

TEST(ValueSet, ComposeGroupsCodesBySystemLessExcluded) {
  const auto vs = Parse(R"({"resourceType":"ValueSet","url":"u","compose":{
    "include":[{"system":"s1","concept":[{"code":"b"},{"code":"a"}]},
               {"system":"s2","concept":[{"code":"x"}]},
               {"system":"s1","concept":[{"code":"c"}]}],
    "exclude":[{"system":"s1","concept":[{"code":"b"}]},{"system":"s3","concept":[{"code":"x"}]}]}})");
  auto values = ValueSetSearchValues(vs, {});
  ASSERT_TRUE(values.ok()) << values.error().message;
  using M = std::map<std::string, std::vector<std::string>>;
  EXPECT_EQ(Codes(*values), (M{{"s1", {"a", "c"}}, {"s2", {"x"}}}));
}

TEST(ValueSet, AnExpansionWinsOverTheCompose) {
  const auto vs = Parse(R"({"resourceType":"ValueSet","url":"u",
    "compose":{"include":[{"system":"s","concept":[{"code":"from-compose"}]}]},
    "expansion":{"contains":[{"system":"s","code":"a","contains":[{"system":"t","code":"b"}]},
                             {"system":"s","code":"g","abstract":true}]}})");
  auto values = ValueSetSearchValues(vs, {});
  ASSERT_TRUE(values.ok());
  using M = std::map<std::string, std::vector<std::string>>;
  EXPECT_EQ(Codes(*values), (M{{"s", {"a"}}, {"t", {"b"}}}));
}

TEST(ValueSet, ImportsAreFollowedAndACycleIsRefused) {
  const json::object a = Parse(R"({"resourceType":"ValueSet","url":"a",
    "compose":{"include":[{"valueSet":["b|2"]},{"system":"s","concept":[{"code":"1"}]}]}})");
  const json::object b = Parse(R"({"resourceType":"ValueSet","url":"b",
    "compose":{"include":[{"system":"s","concept":[{"code":"2"}]}]}})");
  std::vector<std::string> asked;
  ValueSetSource source = [&](std::string_view url,
                              std::string_view version) -> Result<std::optional<json::object>> {
    asked.push_back(std::string(url) + "|" + std::string(version));
    if (url == "b") return std::optional<json::object>(b);
    if (url == "a") return std::optional<json::object>(a);
    return std::optional<json::object>();
  };
  auto values = ValueSetSearchValues(a, source);
  ASSERT_TRUE(values.ok()) << values.error().message;
  using M = std::map<std::string, std::vector<std::string>>;
  EXPECT_EQ(Codes(*values), (M{{"s", {"1", "2"}}}));
  EXPECT_EQ(asked, std::vector<std::string>{"b|2"});

  const json::object loop = Parse(R"({"resourceType":"ValueSet","url":"a",
    "compose":{"include":[{"valueSet":["a"]}]}})");
  source = [&](std::string_view, std::string_view) -> Result<std::optional<json::object>> {
    return std::optional<json::object>(loop);
  };
  auto cycle = ValueSetSearchValues(loop, source);
  ASSERT_FALSE(cycle.ok());
  EXPECT_NE(cycle.error().message.find("nest more than"), std::string::npos);

  const json::object missing = Parse(R"({"resourceType":"ValueSet","url":"m",
    "compose":{"include":[{"valueSet":["nowhere"]}]}})");
  source = [](std::string_view, std::string_view) -> Result<std::optional<json::object>> {
    return std::optional<json::object>();
  };
  auto none = ValueSetSearchValues(missing, source);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("'nowhere', which this server does not hold"),
            std::string::npos);
}

// What needs a code system's content is refused with the reason, never read as "no codes".
TEST(ValueSet, WhatNeedsTheCodeSystemIsRefused) {
  for (
      const char* text : {
          R"({"url":"u","compose":{"include":[{"system":"s"}]}})",
          R"({"url":"u","compose":{"include":[{"system":"s","filter":[{"property":"concept","op":"is-a","value":"1"}]}]}})",
          R"({"url":"u","compose":{"include":[{"system":"s","concept":[{"code":"1"}],"valueSet":["v"]}]}})",
          R"({"url":"u"})",
      }) {
    auto values = ValueSetSearchValues(Parse(text), {});
    ASSERT_FALSE(values.ok()) << text;
    EXPECT_EQ(values.error().code, ErrorCode::kInvalid) << text;
    EXPECT_NE(values.error().message.find("'u'"), std::string::npos) << values.error().message;
  }
}

}  // namespace
}  // namespace jiceng::search
