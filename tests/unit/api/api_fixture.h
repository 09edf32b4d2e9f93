// A FhirApi in process over a real store, with helpers to call it and read its Bundles (tests of
// api/ that go through the REST surface without HTTP). Parameterised by backend, like the store
// and integration suites, so every test runs on both: SQLite on a file in a temporary directory,
// and PostgreSQL in a fresh schema of the database JICENG_TEST_PG_URL names (TestDatabase of
// tests/integration/integration_env.h). Without that URL the PostgreSQL variants are skipped on
// a developer machine and FAIL when CI is set (JC_REQUIRE_BACKEND).
//
//   using MyApiTest = testing::ApiTest;
//   TEST_P(MyApiTest, …) { … }
//   JC_API_ON_EVERY_BACKEND(MyApiTest);
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/fhir_api.h"
#include "api/interactions.h"
#include "base/json.h"
#include "fhir/definitions.h"
#include "fhir/validator.h"
#include "integration/integration_env.h"
#include "store/postgres/postgres_store.h"
#include "store/sqlite/sqlite_store.h"

// Runs the TEST_Ps of `suite` once per backend: test names end in /Sqlite and /Postgres.
#define JC_API_ON_EVERY_BACKEND(suite)                                               \
  INSTANTIATE_TEST_SUITE_P(Backend, suite,                                           \
                           ::testing::Values(::jiceng::testing::Backend::kSqlite,    \
                                             ::jiceng::testing::Backend::kPostgres), \
                           ::jiceng::api::testing::ApiBackendName)

namespace jiceng::api::testing {

using ::jiceng::testing::Backend;

inline std::string ApiBackendName(const ::testing::TestParamInfo<Backend>& info) {
  return ::jiceng::testing::BackendName(info.param);
}

class ApiTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    JC_REQUIRE_BACKEND(GetParam());
    db_ = ::jiceng::testing::TestDatabase::Create(GetParam());
    ASSERT_TRUE(db_);
    dir_ = db_->dir().string();
    Result<std::unique_ptr<store::IStore>> s = [&]() -> Result<std::unique_ptr<store::IStore>> {
      if (GetParam() == Backend::kSqlite) return store::OpenSqliteStore(db_->db());
      store::PostgresOptions options;
      options.read_connections = 4;  // as the store and search suites' PostgreSQL stores
      return store::OpenPostgresStore(db_->db(), options);
    }();
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(*s);
    MakeApi(FhirApiOptions{});
  }
  void TearDown() override {
    api_.reset();
    if (store_) store_->Close();
    store_.reset();
    db_.reset();  // removes the directory, and the PostgreSQL schema
  }

  void MakeApi(FhirApiOptions o) {
    o.base_url = "http://test/fhir";
    if (o.export_dir.empty()) o.export_dir = dir_ + "/exports";
    o.validate = [](const json::object& r, bool strict) {
      fhir::ValidationOptions vo;
      vo.strict = strict;
      return fhir::Validate(r, vo);
    };
    o.is_resource_type = [](std::string_view t) {
      return fhir::Definitions::Get().IsResourceType(t);
    };
    o.resource_types = fhir::Definitions::Get().ResourceTypes();
    api_ = std::make_unique<FhirApi>(*store_, o);
  }

  Response Call(const std::string& method, const std::string& target, const std::string& body = {},
                HeaderList headers = {}) {
    Request r;
    r.method = method;
    r.target = target;
    size_t q = target.find('?');
    r.path = target.substr(0, q);
    if (q != std::string::npos) {
      auto parsed = ParseQueryString(target.substr(q + 1));
      EXPECT_TRUE(parsed.ok()) << target;
      if (parsed.ok()) r.query = *parsed;
    }
    r.headers = std::move(headers);
    if (!body.empty()) {
      bool has_ct = false;
      for (const auto& h : r.headers) has_ct |= h.first == "content-type";
      if (!has_ct) r.headers.emplace_back("content-type", "application/fhir+json");
    }
    r.body = body;
    return api_->Handle(r);
  }

  json::object Get(const std::string& target, int status = 200, HeaderList headers = {}) {
    Response r = Call("GET", target, {}, std::move(headers));
    EXPECT_EQ(r.status, status) << target << "\n" << r.body;
    auto v = ParseJson(r.body);
    EXPECT_TRUE(v.ok() && v->is_object()) << r.body;
    return v.ok() && v->is_object() ? v->get_object() : json::object{};
  }

  // PUT with a client id (update-create), so tests choose ids.
  void Put(const std::string& json_text) {
    auto v = ParseJson(json_text);
    ASSERT_TRUE(v.ok()) << json_text;
    const auto& o = v->get_object();
    std::string target = "/fhir/" + std::string(*FindString(o, "resourceType")) + "/" +
                         std::string(*FindString(o, "id"));
    Response r = Call("PUT", target, json_text);
    ASSERT_TRUE(r.status == 200 || r.status == 201) << target << "\n" << r.body;
  }

  static std::vector<std::string> Entries(const json::object& bundle, std::string_view mode) {
    std::vector<std::string> out;
    const json::array* entries = FindArray(bundle, "entry");
    if (!entries) return out;
    for (const auto& e : *entries) {
      const auto& eo = e.get_object();
      if (FindString(eo.at("search").get_object(), "mode").value_or("") != mode) continue;
      const auto& r = eo.at("resource").get_object();
      out.push_back(std::string(*FindString(r, "resourceType")) + "/" +
                    std::string(FindString(r, "id").value_or("")));
    }
    return out;
  }

  static std::optional<std::string> Link(const json::object& bundle, std::string_view rel) {
    for (const auto& l : bundle.at("link").get_array()) {
      if (FindString(l.get_object(), "relation").value_or("") == rel)
        return std::string(*FindString(l.get_object(), "url"));
    }
    return std::nullopt;
  }

  // The request target of a link ("http://test/fhir/…" → "/fhir/…").
  static std::string Target(const std::string& url) { return url.substr(url.find("/fhir")); }

  static std::vector<std::string> OutcomeIssues(const json::object& bundle) {
    std::vector<std::string> out;
    const json::array* entries = FindArray(bundle, "entry");
    if (!entries) return out;
    for (const auto& e : *entries) {
      const auto& eo = e.get_object();
      if (FindString(eo.at("search").get_object(), "mode").value_or("") != "outcome") continue;
      for (const auto& i : eo.at("resource").at("issue").get_array())
        out.push_back(std::string(i.at("code").get_string()) + ": " +
                      std::string(i.at("diagnostics").get_string()));
    }
    return out;
  }

  // A small world: two patients, a practitioner, an organization, observations.
  void Seed() {
    Put(R"({"resourceType":"Organization","id":"org1","name":"Township health centre"})");
    Put(R"({"resourceType":"Practitioner","id":"d1","name":[{"family":"Li"}]})");
    Put(R"({"resourceType":"Practitioner","id":"d2","name":[{"family":"Zhao"}]})");
    Put(R"({"resourceType":"Patient","id":"p1","name":[{"family":"Wang"}],
            "generalPractitioner":[{"reference":"Practitioner/d1"}],
            "managingOrganization":{"reference":"Organization/org1"}})");
    Put(R"({"resourceType":"Patient","id":"p2","name":[{"family":"Chen"}]})");
    Put(R"({"resourceType":"Encounter","id":"e1","status":"finished",
            "class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},
            "subject":{"reference":"Patient/p1"},
            "participant":[{"individual":{"reference":"Practitioner/d2"}}]})");
    Put(Obs(
        "o1", "p1", "8867-4",
        R"(,"performer":[{"reference":"Practitioner/d1"}],"encounter":{"reference":"Encounter/e1"})"));
    Put(Obs("o2", "p1", "29463-7", R"(,"performer":[{"reference":"Practitioner/d2"}])"));
    Put(Obs("o3", "p2", "8867-4", R"(,"performer":[{"reference":"Practitioner/d1"}])"));
    // Patient-reported: p1 is the performer of an observation about p2.
    Put(Obs("o4", "p2", "29463-7", R"(,"performer":[{"reference":"Patient/p1"}])"));
  }

  static std::string Obs(const std::string& id, const std::string& patient, const std::string& code,
                         const std::string& extra = {}) {
    return R"({"resourceType":"Observation","id":")" + id +
           R"(","status":"final","code":{"coding":[{"system":"http://loinc.org","code":")" + code +
           R"("}]},"subject":{"reference":"Patient/)" + patient + R"("})" + extra + "}";
  }

  std::unique_ptr<::jiceng::testing::TestDatabase> db_;
  std::string dir_;  // a scratch directory beside the database (exports)
  std::unique_ptr<store::IStore> store_;
  std::unique_ptr<FhirApi> api_;
};

}  // namespace jiceng::api::testing
