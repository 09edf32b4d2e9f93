#include "api/interactions.h"

#include <gtest/gtest.h>

#include "api/bundle_processor.h"

namespace jiceng::api {
namespace {

TEST(Query, ParsesAndDecodes) {
  auto q = ParseQueryString("identifier=urn%3Aoid%3A1%7C123&name=wang+li&_id=a,b&flag");
  ASSERT_TRUE(q.ok());
  ASSERT_EQ(q->size(), 4u);
  EXPECT_EQ((*q)[0].second, "urn:oid:1|123");
  EXPECT_EQ((*q)[1].second, "wang li");
  EXPECT_EQ((*q)[3].first, "flag");
  EXPECT_FALSE(ParseQueryString("a=%zz").ok());
  EXPECT_FALSE(ParseQueryString("a=%4").ok());
}

TEST(ETag, Versions) {
  EXPECT_EQ(*ParseETagVersion("W/\"3\""), 3);
  EXPECT_EQ(*ParseETagVersion("\"12\""), 12);
  EXPECT_EQ(*ParseETagVersion("7"), 7);
  EXPECT_FALSE(ParseETagVersion("W/\"x\"").ok());
  EXPECT_FALSE(ParseETagVersion("").ok());
  EXPECT_FALSE(ParseETagVersion("W/\"99999999999999999999\"").ok());
}

TEST(Index, IdentifierTokens) {
  auto r = ParseJson(
      R"({"resourceType":"Patient","identifier":[{"system":"s","value":"1"},{"value":"2"},{"system":"x"}]})");
  auto rows = ExtractIndexRows(r->get_object());
  // Every token parameter is indexed now (e.g. deceased=false); keep the identifier rows.
  std::vector<store::TokenIndexRow> ids;
  for (const auto& t : rows.tokens)
    if (t.param == "identifier") ids.push_back(t);
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[0].system, "s");
  EXPECT_EQ(ids[1].code, "2");
  // A system without a value is found by "identifier=x|" (R4 token "[system]|").
  EXPECT_EQ(ids[2].system, "x");
  EXPECT_EQ(ids[2].code, "");
}

// The distribution key's source: the Patient whose compartment holds the resource, by the R4
// Patient CompartmentDefinition's parameters in their order for the type.
TEST(Index, PatientCompartment) {
  auto compartment = [](const char* text) {
    auto r = ParseJson(text);
    EXPECT_TRUE(r.ok());
    return ExtractIndexRows(r->get_object()).patient_compartment;
  };
  EXPECT_EQ(compartment(R"({"resourceType":"Patient","id":"p1"})"), "p1");
  EXPECT_EQ(compartment(R"({"resourceType":"Observation","id":"o","status":"final",
      "code":{"text":"bp"},"subject":{"reference":"Patient/p2"},
      "performer":[{"reference":"Patient/p3"}]})"),
            "p2");
  // subject is a Group: performer, the next parameter of Observation's list, decides.
  EXPECT_EQ(compartment(R"({"resourceType":"Observation","id":"o","status":"final",
      "code":{"text":"bp"},"subject":{"reference":"Group/g"},
      "performer":[{"reference":"Patient/p3"}]})"),
            "p3");
  EXPECT_EQ(compartment(R"({"resourceType":"Encounter","id":"e","status":"finished",
      "class":{"code":"AMB"},"subject":{"reference":"Patient/p4"}})"),
            "p4");
  EXPECT_EQ(compartment(R"({"resourceType":"Observation","id":"o","status":"final",
      "code":{"text":"bp"},"subject":{"reference":"Group/g"}})"),
            "");
  EXPECT_EQ(compartment(R"({"resourceType":"Organization","id":"org","name":"County"})"), "");
}

TEST(Meta, StampKeepsOtherMeta) {
  auto r = ParseJson(R"({"resourceType":"Patient","meta":{"profile":["p"],"versionId":"9"}})");
  auto& o = r->get_object();
  StampMeta(o, "abc", 2, 0);
  EXPECT_EQ(o.at("id"), "abc");
  EXPECT_EQ(o.at("meta").at("versionId"), "2");
  EXPECT_EQ(o.at("meta").at("lastUpdated"), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(o.at("meta").at("profile").get_array().size(), 1u);
}

}  // namespace
}  // namespace jiceng::api
