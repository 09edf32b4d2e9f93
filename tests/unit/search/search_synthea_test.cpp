// Chains, _has, composites, :of-type, :in/:not-in and _content over real data: the Synthea sample
// (30 transaction Bundles) loaded into a store of each backend, every expected id set computed
// here by walking the JSON, independently of the index and the SQL.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "fhir/definitions.h"
#include "fhir/search/normalize.h"
#include "search_fixture.h"

namespace jiceng::search {
namespace {

namespace fs = std::filesystem;

// The sample is read once for the whole suite and written once per backend (writing it takes a
// few seconds); each test opens the same database.
class SyntheaSearchTest : public SearchStoreTest {
 protected:
  using Resources = std::map<std::string, json::object>;  // "Type/id" → resource
  using Writes = std::vector<std::pair<store::ResourceVersion, store::IndexRows>>;

  static void SetUpTestSuite() {
    all_ = new Resources;
    writes_ = new Writes;
    databases_ = new std::map<Backend, std::unique_ptr<TestDatabase>>;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(fs::path(JICENG_SHARED_DIR) / "data/synthea-r4")) {
      if (e.path().extension() == ".json") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    ASSERT_EQ(files.size(), 30u);
    for (const fs::path& f : files) LoadBundle(f, *writes_);
  }
  static void TearDownTestSuite() {
    delete databases_;  // drops them
    delete writes_;
    delete all_;
    databases_ = nullptr;
  }
  void SetUp() override {
    JC_SEARCH_REQUIRE_BACKEND(GetParam());
    ASSERT_TRUE(databases_);
    ASSERT_GT(all_->size(), 9000u);
    std::unique_ptr<TestDatabase>& db = (*databases_)[GetParam()];
    if (!db) {
      db = TestDatabase::Create(GetParam());
      ASSERT_TRUE(db);
      auto store = db->Open();
      ASSERT_TRUE(store.ok()) << store.error().message;
      Status s = (*store)->Write([&](store::IWriteTransaction& txn) -> Status {
        for (const auto& [v, rows] : *writes_) JC_RETURN_IF_ERROR(txn.Put(v, rows));
        return Status::Ok();
      });
      (*store)->Close();
      ASSERT_TRUE(s.ok()) << s.error().message;
    }
    auto store = db->Open();
    ASSERT_TRUE(store.ok()) << store.error().message;
    store_ = std::move(*store);
  }
  void TearDown() override {
    if (store_) store_->Close();
    store_.reset();
  }

  // Resolves the Bundle's urn:uuid references to "Type/id" (what the server's transaction
  // processing does) and adds its resources to `writes`. Organizations and Practitioners recur
  // across Bundles (conditional creates): the first copy is kept.
  static void LoadBundle(const fs::path& file, Writes& writes) {
    std::ifstream in(file);
    std::stringstream ss;
    ss << in.rdbuf();
    auto bundle = ParseJson(ss.str());
    ASSERT_TRUE(bundle.ok()) << file;
    std::map<std::string, std::string> urls;
    json::array& entries = bundle->as_object()["entry"].as_array();
    for (const json::value& e : entries) {
      const json::object& r = e.at("resource").as_object();
      urls[std::string(e.at("fullUrl").as_string())] =
          std::string(r.at("resourceType").as_string()) + "/" + std::string(r.at("id").as_string());
    }
    for (json::value& e : entries) {
      json::value& r = e.as_object()["resource"];
      Rewrite(r, urls);
      store::ResourceVersion v;
      v.type = std::string(r.at("resourceType").as_string());
      v.id = std::string(r.at("id").as_string());
      v.version = 1;
      v.last_updated_us = NowMicros();
      v.json = ToJson(r);
      if (!all_->emplace(v.type + "/" + v.id, r.as_object()).second) continue;
      writes.emplace_back(v, ExtractIndexRows(r));
    }
  }

  static void Rewrite(json::value& v, const std::map<std::string, std::string>& urls) {
    if (v.is_object()) {
      for (auto& [k, child] : v.as_object()) {
        if (k == "reference" && child.is_string()) {
          auto it = urls.find(std::string(child.as_string()));
          if (it != urls.end()) child = it->second;
        } else {
          Rewrite(child, urls);
        }
      }
    } else if (v.is_array()) {
      for (json::value& child : v.as_array()) Rewrite(child, urls);
    }
  }

  // ---- independent expectations ----

  std::vector<std::pair<std::string, const json::object*>> OfType(std::string_view type) const {
    std::vector<std::pair<std::string, const json::object*>> out;
    for (const auto& [key, r] : *all_) {
      if (key.starts_with(std::string(type) + "/")) out.emplace_back(key.substr(type.size() + 1), &r);
    }
    return out;
  }

  static std::string Ref(const json::object& r, std::string_view member) {
    const json::object* o = FindObject(r, member);
    return o ? std::string(FindString(*o, "reference").value_or("")) : std::string();
  }

  static bool HasCoding(const json::object* cc, std::string_view system, std::string_view code) {
    if (!cc) return false;
    const json::array* codings = FindArray(*cc, "coding");
    if (!codings) return false;
    for (const json::value& c : *codings) {
      if (FindString(c.as_object(), "system").value_or("") == system &&
          FindString(c.as_object(), "code").value_or("") == code)
        return true;
    }
    return false;
  }

  // Values of the components of `obs` coded (loinc, code).
  static std::vector<double> ComponentValues(const json::object& obs, std::string_view code) {
    std::vector<double> out;
    const json::array* components = FindArray(obs, "component");
    if (!components) return out;
    for (const json::value& c : *components) {
      const json::object& co = c.as_object();
      if (!HasCoding(FindObject(co, "code"), "http://loinc.org", code)) continue;
      if (const json::object* q = FindObject(co, "valueQuantity")) out.push_back(q->at("value").to_number<double>());
    }
    return out;
  }

  static std::vector<std::string> Sorted(std::set<std::string> s) { return {s.begin(), s.end()}; }

  static Resources* all_;
  static Writes* writes_;
  static std::map<Backend, std::unique_ptr<TestDatabase>>* databases_;
};

SyntheaSearchTest::Resources* SyntheaSearchTest::all_ = nullptr;
SyntheaSearchTest::Writes* SyntheaSearchTest::writes_ = nullptr;
std::map<Backend, std::unique_ptr<TestDatabase>>* SyntheaSearchTest::databases_ = nullptr;

TEST_P(SyntheaSearchTest, ChainsOverTheSample) {
  // Every patient's BP panels found through subject.family, compared with the walk of the data.
  int checked = 0;
  for (const auto& [pid, patient] : OfType("Patient")) {
    const std::string family(patient->at("name").as_array()[0].as_object().at("family").as_string());
    std::set<std::string> same_family;  // patients whose family starts with it (normalised)
    for (const auto& [qid, q] : OfType("Patient")) {
      for (const json::value& n : q->at("name").as_array()) {
        if (auto f = FindString(n.as_object(), "family");
            f && NormalizeString(*f).starts_with(NormalizeString(family)))
          same_family.insert("Patient/" + qid);
      }
    }
    std::set<std::string> expected;
    for (const auto& [oid, o] : OfType("Observation")) {
      if (HasCoding(FindObject(*o, "code"), "http://loinc.org", "55284-4") &&
          same_family.count(Ref(*o, "subject")))
        expected.insert(oid);
    }
    ASSERT_FALSE(expected.empty()) << family;
    EXPECT_EQ(Ids("Observation", "subject.family=" + family + "&code=http://loinc.org|55284-4"),
              Sorted(expected))
        << family;
    EXPECT_EQ(Ids("Observation", "subject:Patient.family=" + family + "&code=55284-4"),
              Sorted(expected));
    if (++checked == 5) break;
  }
  // Two levels: observations whose encounter's patient was born on a given day.
  const auto patients = OfType("Patient");
  const json::object& p0 = *patients.front().second;
  const std::string birth(p0.at("birthDate").as_string());
  std::set<std::string> born;
  for (const auto& [pid, p] : patients) {
    if (FindString(*p, "birthDate").value_or("") == birth) born.insert("Patient/" + pid);
  }
  std::set<std::string> expected;
  for (const auto& [oid, o] : OfType("Observation")) {
    const std::string enc = Ref(*o, "encounter");
    if (enc.empty()) continue;
    if (born.count(Ref(all_->at(enc), "subject"))) expected.insert(oid);
  }
  ASSERT_FALSE(expected.empty());
  EXPECT_EQ(Ids("Observation", "encounter.subject.birthdate=" + birth), Sorted(expected));
}

TEST_P(SyntheaSearchTest, ReverseChainsAndCompositesOverTheSample) {
  // Patients with a systolic pressure above 140 in some BP panel.
  std::set<std::string> hypertensive, high_obs, low_diastolic;
  for (const auto& [oid, o] : OfType("Observation")) {
    for (double v : ComponentValues(*o, "8480-6")) {
      if (v > 140) {
        hypertensive.insert(Ref(*o, "subject").substr(8));
        high_obs.insert(oid);
      }
    }
    for (double v : ComponentValues(*o, "8462-4")) {
      if (v < 70) low_diastolic.insert(oid);
    }
  }
  ASSERT_FALSE(hypertensive.empty());
  ASSERT_FALSE(low_diastolic.empty());
  EXPECT_EQ(Ids("Observation", "component-code-value-quantity=http://loinc.org|8480-6$gt140"),
            Sorted(high_obs));
  EXPECT_EQ(Ids("Observation",
                "component-code-value-quantity=http://loinc.org|8462-4$lt70|http://unitsofmeasure.org|mm[Hg]"),
            Sorted(low_diastolic));
  EXPECT_EQ(Ids("Patient", "_has:Observation:subject:component-code-value-quantity="
                           "http://loinc.org|8480-6$gt140"),
            Sorted(hypertensive));
  // Organisations that served an encounter of a female patient (a chain inside _has).
  std::set<std::string> orgs;
  for (const auto& [eid, e] : OfType("Encounter")) {
    const std::string subject = Ref(*e, "subject"), provider = Ref(*e, "serviceProvider");
    if (provider.empty() || !all_->count(subject)) continue;
    if (FindString(all_->at(subject), "gender").value_or("") == "female") orgs.insert(provider.substr(13));
  }
  ASSERT_FALSE(orgs.empty());
  EXPECT_EQ(Ids("Organization", "_has:Encounter:service-provider:patient.gender=female"),
            Sorted(orgs));
}

TEST_P(SyntheaSearchTest, OfTypeInAndContentOverTheSample) {
  const std::string v2 = "http://terminology.hl7.org/CodeSystem/v2-0203";
  int checked = 0;
  for (const auto& [pid, p] : OfType("Patient")) {
    for (const json::value& id : p->at("identifier").as_array()) {
      const json::object& io = id.as_object();
      if (!HasCoding(FindObject(io, "type"), v2, "SS")) continue;
      const std::string ssn(io.at("value").as_string());
      EXPECT_EQ(Ids("Patient", "identifier:of-type=" + v2 + "|SS|" + ssn), V({pid}));
      EXPECT_EQ(Ids("Patient", "identifier:of-type=" + v2 + "|MR|" + ssn), V());
      ++checked;
    }
  }
  EXPECT_GT(checked, 20);
  // Encounter.status: Synthea writes "finished", which event-status does not hold.
  const auto& codes = *fhir::Definitions::Get().ValueSetCodes("http://hl7.org/fhir/ValueSet/event-status");
  std::set<std::string> in, not_in;
  for (const auto& [eid, e] : OfType("Encounter")) {
    const std::string status(FindString(*e, "status").value_or(""));
    (std::find(codes.begin(), codes.end(), status) != codes.end() ? in : not_in).insert(eid);
  }
  ASSERT_FALSE(not_in.empty());
  EXPECT_EQ(Ids("Encounter", "status:in=http://hl7.org/fhir/ValueSet/event-status"), Sorted(in));
  EXPECT_EQ(Ids("Encounter", "status:not-in=http://hl7.org/fhir/ValueSet/event-status"),
            Sorted(not_in));
  // _content: conditions whose code mentions a word starting with "hypertens".
  std::set<std::string> mentions;
  for (const auto& [cid, c] : OfType("Condition")) {
    std::string text = NormalizeString(ToJson(c->at("code")));
    for (char& ch : text) {
      if (!std::isalnum(static_cast<unsigned char>(ch))) ch = ' ';
    }
    if (text.starts_with("hypertens") || text.find(" hypertens") != std::string::npos)
      mentions.insert(cid);
  }
  ASSERT_FALSE(mentions.empty());
  EXPECT_EQ(Ids("Condition", "_content=hypertens"), Sorted(mentions));
}

JC_SEARCH_ON_EVERY_BACKEND(SyntheaSearchTest);

}  // namespace
}  // namespace jiceng::search
