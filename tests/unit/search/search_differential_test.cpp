// The randomized differential search test (issue 3): the Synthea sample (plus a small Bundle of
// edge cases the sample lacks) is written to a store of each backend (search_fixture.h: SQLite,
// PostgreSQL) through the server's transaction Bundle path, then thousands of searches generated
// from a fixed seed — drawn from values that really occur in the data, plus some that do not — run
// through the SQL path (ParseSearch + IReadTransaction::Search) and through the reference evaluator
// (tests/support/ search_reference: FHIRPath over every stored resource in memory). Both must
// return the same ids in the same order and the same total.
//
//   JICENG_DIFFERENTIAL_SEARCHES=N   number of searches (default 4000; 1000 under ASan)
//   JICENG_DIFFERENTIAL_SEED=S       generator seed (default 20240305)
//   JICENG_DIFFERENTIAL_KNOWN_BUGS=1 make no exception for the bugs KnownBugs() lists
//   JICENG_DIFFERENTIAL_QUERY='Observation?code=x&_sort=date'  run only that search (decoded
//                                    values, as mismatches print them), with every id shown
//
// A mismatch prints the query and the first ids of both answers. Each kind of search is one
// generator function (Generator::Generators() lists them with their weights): chains, _has and
// composites are generators like the others, and a new kind is one more function there.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "api/bundle_processor.h"
#include "api/fhir_api.h"
#include "base/time.h"
#include "fhir/definitions.h"
#include "fhir/search/normalize.h"
#include "fhir/search/query.h"
#include "fhir/validator.h"
#include "search_fixture.h"
#include "support/search_reference.h"

namespace jiceng::search {
namespace {

namespace fs = std::filesystem;
using search_ref::ReferenceSearch;
using search_ref::Values;

struct GeneratedSearch {
  std::string type;
  Params params;
  std::string kind;  // which generator made it, for the summary

  std::string Text() const {
    std::string out = type + "?";
    for (size_t i = 0; i < params.size(); ++i) {
      out += (i ? "&" : "") + params[i].first + "=" + params[i].second;
    }
    return out;
  }
};

// ---- the store and the data ------------------------------------------------------------------

// Resources the Synthea sample lacks: numbers, URIs, Chinese and accented names, full-width
// text, units the server converts, unit-only quantities, Money, Timing, open Periods, absolute
// and bare references, Reference.identifier, Identifier.type, meta.profile/source, commas in
// values. Loaded through the same transaction path as the sample.
constexpr std::string_view kSupplement = R"json({
 "resourceType": "Bundle", "type": "transaction", "entry": [
  {"fullUrl": "urn:uuid:sup-org1", "request": {"method": "POST", "url": "Organization"},
   "resource": {"resourceType": "Organization", "id": "sup-org1", "active": true,
    "name": "嘉善县第一人民医院", "alias": ["一院"],
    "identifier": [{"system": "urn:oid:1.2.156.112604", "value": "330421-001"}],
    "address": [{"city": "嘉善县", "state": "浙江省", "postalCode": "314100", "country": "CN"}]}},
  {"fullUrl": "urn:uuid:sup-org2", "request": {"method": "POST", "url": "Organization"},
   "resource": {"resourceType": "Organization", "id": "sup-org2", "name": "魏塘街道社区卫生服务中心",
    "partOf": {"reference": "urn:uuid:sup-org1"}}},
  {"fullUrl": "urn:uuid:sup-doc1", "request": {"method": "POST", "url": "Practitioner"},
   "resource": {"resourceType": "Practitioner", "id": "sup-doc1", "gender": "female",
    "name": [{"family": "张", "given": ["丽"], "text": "张丽"}],
    "identifier": [{"system": "urn:jiceng:staff", "value": "D-0001"}],
    "telecom": [{"system": "email", "value": "zhang.li@jiashan.example"}]}},
  {"fullUrl": "urn:uuid:sup-p1", "request": {"method": "POST", "url": "Patient"},
   "resource": {"resourceType": "Patient", "id": "sup-p1", "active": true, "gender": "male",
    "meta": {"profile": ["http://jiceng.example/fhir/StructureDefinition/resident"],
             "source": "urn:jiceng:import#1", "tag": [{"system": "urn:jiceng:tags", "code": "hypertension"}]},
    "name": [{"family": "王", "given": ["小明"], "text": "王小明"}],
    "birthDate": "1980-03-05",
    "identifier": [{"system": "urn:oid:2.16.156.10011.1.1", "value": "330421198003051234",
      "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NI"}],
               "text": "居民身份证"}}],
    "address": [{"line": ["人民大道１２３号"], "city": "嘉善县", "district": "魏塘街道", "state": "浙江省",
                 "postalCode": "314100", "country": "CN", "use": "home"}],
    "telecom": [{"system": "phone", "value": "13800000000"}],
    "generalPractitioner": [{"reference": "urn:uuid:sup-doc1"}],
    "managingOrganization": {"reference": "urn:uuid:sup-org2"}}},
  {"fullUrl": "urn:uuid:sup-p2", "request": {"method": "POST", "url": "Patient"},
   "resource": {"resourceType": "Patient", "id": "sup-p2", "gender": "female", "birthDate": "1990",
    "deceasedBoolean": false, "name": [{"family": "ＬＩ", "given": ["Ｍｉｎｇ"]}],
    "meta": {"profile": ["http://jiceng.example/fhir/StructureDefinition/resident/child"]}}},
  {"fullUrl": "urn:uuid:sup-p3", "request": {"method": "POST", "url": "Patient"},
   "resource": {"resourceType": "Patient", "id": "sup-p3", "gender": "other", "birthDate": "1975-11",
    "name": [{"family": "Müller", "given": ["Zoë", "Anna-Lena"], "prefix": ["Dr."]},
             {"family": "Lǚ", "given": ["Mu\u0308ller"]}],
    "telecom": [{"system": "email", "value": "anna@example.org"}],
    "address": [{"line": ["Straße 1, Hinterhaus"], "city": "Köln", "country": "DE"}],
    "identifier": [{"system": "urn:jiceng:mrn", "value": "M,1|2"}]}},
  {"fullUrl": "urn:uuid:sup-p4", "request": {"method": "POST", "url": "Patient"},
   "resource": {"resourceType": "Patient", "id": "sup-p4"}},
  {"fullUrl": "urn:uuid:sup-w1", "request": {"method": "POST", "url": "Observation"},
   "resource": {"resourceType": "Observation", "id": "sup-w1", "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}], "text": "体重"},
    "subject": {"reference": "urn:uuid:sup-p1"}, "effectiveDateTime": "2024-03-05T10:00:00+08:00",
    "valueQuantity": {"value": 70, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}},
  {"fullUrl": "urn:uuid:sup-w2", "request": {"method": "POST", "url": "Observation"},
   "resource": {"resourceType": "Observation", "id": "sup-w2", "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
    "subject": {"reference": "urn:uuid:sup-p3"},
    "effectivePeriod": {"start": "2024-01-10", "end": "2024-01-20"},
    "valueQuantity": {"value": 70000, "unit": "g", "system": "http://unitsofmeasure.org", "code": "g"}}},
  {"fullUrl": "urn:uuid:sup-w3", "request": {"method": "POST", "url": "Observation"},
   "resource": {"resourceType": "Observation", "id": "sup-w3", "status": "amended",
    "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
    "subject": {"reference": "http://other.example/fhir/Patient/sup-p1"},
    "effectivePeriod": {"start": "2024-02-01"},
    "valueQuantity": {"value": 154.3, "unit": "lb", "system": "http://unitsofmeasure.org", "code": "[lb_av]"}}},
  {"fullUrl": "urn:uuid:sup-bp", "request": {"method": "POST", "url": "Observation"},
   "resource": {"resourceType": "Observation", "id": "sup-bp", "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
    "subject": {"reference": "urn:uuid:sup-p1"}, "effectiveDateTime": "2024-03-05",
    "performer": [{"identifier": {"system": "urn:jiceng:staff", "value": "D-0001"}}],
    "component": [
     {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
      "valueQuantity": {"value": 135.5, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
     {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
      "valueQuantity": {"value": 11.3, "unit": "kPa", "system": "http://unitsofmeasure.org", "code": "kPa"}}]}},
  {"fullUrl": "urn:uuid:sup-u1", "request": {"method": "POST", "url": "Observation"},
   "resource": {"resourceType": "Observation", "id": "sup-u1", "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0", "display": "Glucose"}]},
    "subject": {"reference": "sup-p2"}, "issued": "2024-03-05T02:00:00.123Z",
    "valueQuantity": {"value": 5.35, "unit": "mmol/L"}}},
  {"fullUrl": "urn:uuid:sup-v1", "request": {"method": "POST", "url": "Observation"},
   "resource": {"resourceType": "Observation", "id": "sup-v1", "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "9187-6", "display": "Urine output"}]},
    "subject": {"reference": "urn:uuid:sup-p1"}, "effectiveDateTime": "2024-03-06",
    "valueQuantity": {"value": 1500, "unit": "mL", "system": "http://unitsofmeasure.org", "code": "mL"}}},
  {"fullUrl": "urn:uuid:sup-v2", "request": {"method": "POST", "url": "Observation"},
   "resource": {"resourceType": "Observation", "id": "sup-v2", "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0", "display": "Glucose"}]},
    "subject": {"reference": "urn:uuid:sup-p3"}, "effectiveDateTime": "2024-03-06",
    "valueQuantity": {"value": 3000, "unit": "µmol/L", "system": "http://unitsofmeasure.org", "code": "umol/L"}}},
  {"fullUrl": "urn:uuid:sup-v3", "request": {"method": "POST", "url": "Observation"},
   "resource": {"resourceType": "Observation", "id": "sup-v3", "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": "Glucose"}]},
    "subject": {"reference": "urn:uuid:sup-p3"}, "effectiveDateTime": "2024-03-07",
    "valueQuantity": {"value": 96, "unit": "mg/dL", "system": "http://unitsofmeasure.org", "code": "mg/dL"}}},
  {"fullUrl": "urn:uuid:sup-v4", "request": {"method": "POST", "url": "Observation"},
   "resource": {"resourceType": "Observation", "id": "sup-v4", "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
    "subject": {"reference": "urn:uuid:sup-p1"}, "effectiveDateTime": "2024-03-07",
    "valueQuantity": {"value": 4320, "unit": "/h", "system": "http://unitsofmeasure.org", "code": "/h"}}},
  {"fullUrl": "urn:uuid:sup-u2", "request": {"method": "POST", "url": "Observation"},
   "resource": {"resourceType": "Observation", "id": "sup-u2", "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8310-5"}]},
    "subject": {"reference": "Group/sup-g1"}, "effectiveInstant": "2024-03-05T02:00:00.5Z",
    "valueQuantity": {"value": -2.5, "unit": "°C", "system": "http://unitsofmeasure.org", "code": "Cel"}}},
  {"fullUrl": "urn:uuid:sup-u3", "request": {"method": "POST", "url": "Observation"},
   "resource": {"resourceType": "Observation", "id": "sup-u3", "status": "preliminary",
    "code": {"coding": [{"system": "http://loinc.org", "display": "no code here"}], "text": "阳性，见备注"},
    "subject": {"reference": "urn:uuid:sup-p4"}, "valueString": "Positive, see notes"}},
  {"fullUrl": "urn:uuid:sup-u4", "request": {"method": "POST", "url": "Observation"},
   "resource": {"resourceType": "Observation", "id": "sup-u4", "status": "final",
    "code": {"text": "尿蛋白"}, "valueCodeableConcept": {"text": "阳性"},
    "effectiveDateTime": "2023"}},
  {"fullUrl": "urn:uuid:sup-ms1", "request": {"method": "POST", "url": "MolecularSequence"},
   "resource": {"resourceType": "MolecularSequence", "id": "sup-ms1", "coordinateSystem": 0,
    "referenceSeq": {"chromosome": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/chromosome-human", "code": "1"}]},
     "genomeBuild": "GRCh38", "windowStart": 5, "windowEnd": 500},
    "variant": [{"start": 10, "end": 20}, {"start": 150, "end": 300}, {"start": 150, "end": 160}]}},
  {"fullUrl": "urn:uuid:sup-ms2", "request": {"method": "POST", "url": "MolecularSequence"},
   "resource": {"resourceType": "MolecularSequence", "id": "sup-ms2", "coordinateSystem": 1,
    "referenceSeq": {"referenceSeqId": {"coding": [{"system": "http://www.ncbi.nlm.nih.gov/nuccore", "code": "NC_000001.11"}]},
     "windowStart": 100, "windowEnd": 200},
    "variant": [{"start": 120, "end": 180}, {"start": 19, "end": 20}]}},
  {"fullUrl": "urn:uuid:sup-ms3", "request": {"method": "POST", "url": "MolecularSequence"},
   "resource": {"resourceType": "MolecularSequence", "id": "sup-ms3", "coordinateSystem": 0,
    "referenceSeq": {"chromosome": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/chromosome-human", "code": "1"}]},
     "genomeBuild": "GRCh37", "windowStart": 100, "windowEnd": 120},
    "variant": [{"start": 100, "end": 400}]}},
  {"fullUrl": "urn:uuid:sup-r1", "request": {"method": "POST", "url": "RiskAssessment"},
   "resource": {"resourceType": "RiskAssessment", "id": "sup-r1", "status": "final",
    "subject": {"reference": "urn:uuid:sup-p1"}, "prediction": [{"probabilityDecimal": 100}]}},
  {"fullUrl": "urn:uuid:sup-r2", "request": {"method": "POST", "url": "RiskAssessment"},
   "resource": {"resourceType": "RiskAssessment", "id": "sup-r2", "status": "final",
    "subject": {"reference": "urn:uuid:sup-p1"}, "prediction": [{"probabilityDecimal": 100.4}]}},
  {"fullUrl": "urn:uuid:sup-r7", "request": {"method": "POST", "url": "RiskAssessment"},
   "resource": {"resourceType": "RiskAssessment", "id": "sup-r7", "status": "final",
    "subject": {"reference": "urn:uuid:sup-p3"}, "prediction": [{"probabilityDecimal": 99.7}]}},
  {"fullUrl": "urn:uuid:sup-r3", "request": {"method": "POST", "url": "RiskAssessment"},
   "resource": {"resourceType": "RiskAssessment", "id": "sup-r3", "status": "final",
    "subject": {"reference": "urn:uuid:sup-p2"}, "prediction": [{"probabilityDecimal": 0.35}]}},
  {"fullUrl": "urn:uuid:sup-r4", "request": {"method": "POST", "url": "RiskAssessment"},
   "resource": {"resourceType": "RiskAssessment", "id": "sup-r4", "status": "final",
    "subject": {"reference": "urn:uuid:sup-p2"}, "prediction": [{"probabilityDecimal": 0.30000000000000004}, {"probabilityDecimal": 0.001}]}},
  {"fullUrl": "urn:uuid:sup-r5", "request": {"method": "POST", "url": "RiskAssessment"},
   "resource": {"resourceType": "RiskAssessment", "id": "sup-r5", "status": "preliminary",
    "subject": {"reference": "urn:uuid:sup-p3"}, "prediction": [{"probabilityDecimal": 0.5}, {"probabilityDecimal": 1.05}]}},
  {"fullUrl": "urn:uuid:sup-r6", "request": {"method": "POST", "url": "RiskAssessment"},
   "resource": {"resourceType": "RiskAssessment", "id": "sup-r6", "status": "final",
    "subject": {"reference": "urn:uuid:sup-p3"}}},
  {"fullUrl": "urn:uuid:sup-i1", "request": {"method": "POST", "url": "Invoice"},
   "resource": {"resourceType": "Invoice", "id": "sup-i1", "status": "issued",
    "subject": {"reference": "urn:uuid:sup-p1"}, "date": "2024-03-05",
    "totalGross": {"value": 125.5, "currency": "CNY"}, "totalNet": {"value": 100, "currency": "CNY"}}},
  {"fullUrl": "urn:uuid:sup-vs1", "request": {"method": "POST", "url": "ValueSet"},
   "resource": {"resourceType": "ValueSet", "id": "sup-vs1", "status": "active", "version": "1.0",
    "url": "http://jiceng.example/fhir/ValueSet/a", "name": "A"}},
  {"fullUrl": "urn:uuid:sup-vs2", "request": {"method": "POST", "url": "ValueSet"},
   "resource": {"resourceType": "ValueSet", "id": "sup-vs2", "status": "draft",
    "url": "http://jiceng.example/fhir/ValueSet/a/b", "name": "AB"}},
  {"fullUrl": "urn:uuid:sup-vs3", "request": {"method": "POST", "url": "ValueSet"},
   "resource": {"resourceType": "ValueSet", "id": "sup-vs3", "status": "active",
    "url": "urn:oid:2.16.156.10011.2.3.3.4", "name": "Oid"}},
  {"fullUrl": "urn:uuid:sup-cs1", "request": {"method": "POST", "url": "CodeSystem"},
   "resource": {"resourceType": "CodeSystem", "id": "sup-cs1", "status": "active", "content": "complete",
    "url": "http://jiceng.example/fhir/CodeSystem/x", "version": "2",
    "concept": [{"code": "a", "display": "甲"}, {"code": "b", "display": "乙"}]}},
  {"fullUrl": "urn:uuid:sup-pr1", "request": {"method": "POST", "url": "Procedure"},
   "resource": {"resourceType": "Procedure", "id": "sup-pr1", "status": "completed",
    "subject": {"reference": "urn:uuid:sup-p1"},
    "instantiatesUri": ["http://jiceng.example/protocol/htn/2024", "urn:jiceng:protocol:dm"],
    "instantiatesCanonical": ["http://jiceng.example/fhir/PlanDefinition/htn|1.0"],
    "performedDateTime": "2024-03-05T10:00:00+08:00"}},
  {"fullUrl": "urn:uuid:sup-cp1", "request": {"method": "POST", "url": "CarePlan"},
   "resource": {"resourceType": "CarePlan", "id": "sup-cp1", "status": "active", "intent": "plan",
    "subject": {"reference": "urn:uuid:sup-p1"}, "period": {"start": "2024-05-01"},
    "activity": [
     {"detail": {"status": "scheduled", "code": {"coding": [{"system": "http://snomed.info/sct", "code": "229065009"}]},
      "scheduledTiming": {"event": ["2024-05-01T08:00:00+08:00", "2024-05-02"],
                          "repeat": {"boundsPeriod": {"start": "2024-05-01", "end": "2024-06"}}}}},
     {"detail": {"status": "not-started", "scheduledPeriod": {"end": "2024-07-01"}}}]}},
  {"fullUrl": "urn:uuid:sup-e1", "request": {"method": "POST", "url": "Encounter"},
   "resource": {"resourceType": "Encounter", "id": "sup-e1", "status": "in-progress",
    "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
    "subject": {"reference": "urn:uuid:sup-p1"}, "period": {"start": "2024-03-05T09:30:00+08:00"},
    "length": {"value": 30, "unit": "min", "system": "http://unitsofmeasure.org", "code": "min"},
    "serviceProvider": {"reference": "urn:uuid:sup-org2"}}},
  {"fullUrl": "urn:uuid:sup-c1", "request": {"method": "POST", "url": "Condition"},
   "resource": {"resourceType": "Condition", "id": "sup-c1",
    "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
    "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10", "display": "Essential (primary) hypertension"}],
             "text": "高血压"},
    "subject": {"reference": "urn:uuid:sup-p1"}, "encounter": {"reference": "urn:uuid:sup-e1"},
    "onsetAge": {"value": 52, "unit": "years", "system": "http://unitsofmeasure.org", "code": "a"},
    "abatementString": "未缓解", "recordedDate": "2024-03-05"}}
 ]})json";

// Synthea Bundles POST every entry (the server assigns random ids); a test needs stable ids to
// be reproducible, so each entry becomes a PUT of the id its fullUrl carries (create-on-update,
// same transaction path, same urn:uuid rewriting).
void PostToPut(json::object& bundle) {
  json::value* entries = bundle.if_contains("entry");
  if (!entries || !entries->is_array()) return;
  for (json::value& e : entries->get_array()) {
    json::object& entry = e.get_object();
    json::object& resource = entry["resource"].get_object();
    json::object& request = entry["request"].get_object();
    if (FindString(request, "method").value_or("") != "POST") continue;
    std::string full_url(FindString(entry, "fullUrl").value_or(""));
    std::string id = full_url.starts_with("urn:uuid:") ? full_url.substr(9)
                                                       : std::string(*FindString(resource, "id"));
    resource["id"] = id;
    request["method"] = "PUT";
    request["url"] = std::string(*FindString(resource, "resourceType")) + "/" + id;
  }
}

// The store with the Synthea sample and the supplement, and every current resource read back:
// one per backend, loaded on first use and dropped by the suite's TearDownTestSuite.
class Corpus {
 public:
  static Corpus& Get(Backend backend) {
    std::unique_ptr<Corpus>& corpus = All()[backend];
    if (!corpus) corpus.reset(new Corpus(backend));
    return *corpus;
  }
  static void DropAll() { All().clear(); }
  ~Corpus() {
    if (store_) store_->Close();
  }

  store::IStore& store() { return *store_; }
  const std::vector<search_ref::StoredResource>& resources() const { return resources_; }
  int64_t loaded_at() const { return loaded_at_; }
  const std::string& error() const { return error_; }

 private:
  static std::map<Backend, std::unique_ptr<Corpus>>& All() {
    static std::map<Backend, std::unique_ptr<Corpus>> all;
    return all;
  }
  explicit Corpus(Backend backend) {
    auto status = Load(backend);
    if (!status.ok()) error_ = status.error().message;
  }

  Status Load(Backend backend) {
    db_ = TestDatabase::Create(backend);
    if (!db_) return Error(ErrorCode::kInternal, "cannot create the test database");
    JC_ASSIGN_OR_RETURN(store_, db_->Open());
    const auto& defs = fhir::Definitions::Get();
    options_.validate = [](const json::object& r, bool strict) {
      fhir::ValidationOptions vo;
      vo.strict = strict;
      return fhir::Validate(r, vo);
    };
    options_.is_resource_type = [&defs](std::string_view t) { return defs.IsResourceType(t); };
    options_.resource_types = defs.ResourceTypes();

    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(fs::path(JICENG_SHARED_DIR) / "data/synthea-r4")) {
      if (e.path().extension() == ".json") files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) return Error(ErrorCode::kInternal, "no Synthea Bundles found");
    std::vector<std::pair<std::string, std::string>> bundles;
    for (const fs::path& f : files) {
      std::ifstream in(f, std::ios::binary);
      std::stringstream text;
      text << in.rdbuf();
      bundles.emplace_back(f.filename().string(), text.str());
    }
    bundles.emplace_back("supplement", std::string(kSupplement));
    for (auto& [name, text] : bundles) {
      JC_ASSIGN_OR_RETURN(json::value bundle, ParseJson(text));
      PostToPut(bundle.get_object());
      api::BundleProcessor processor(*store_, options_, "");
      auto response = processor.Process(std::move(bundle));
      if (!response.ok()) {
        return Error(ErrorCode::kInternal,
                     name + ": " + response.error().message +
                         (response.error().issues.empty()
                              ? ""
                              : " (" + response.error().issues[0].diagnostics + " at " +
                                    response.error().issues[0].expression + ")"));
      }
    }
    loaded_at_ = NowMicros();
    JC_ASSIGN_OR_RETURN(auto txn, store_->BeginRead());
    for (const std::string& type : defs.ResourceTypes()) {
      JC_ASSIGN_OR_RETURN(auto versions, txn->ListCurrent(type, 0, 1'000'000));
      for (store::ResourceVersion& v : versions) {
        JC_ASSIGN_OR_RETURN(json::value json, ParseJson(v.json));
        resources_.push_back({v.type, v.id, v.last_updated_us, std::move(json)});
      }
    }
    return Status::Ok();
  }

  std::unique_ptr<TestDatabase> db_;
  std::unique_ptr<store::IStore> store_;
  api::FhirApiOptions options_;
  std::vector<search_ref::StoredResource> resources_;
  int64_t loaded_at_ = 0;
  std::string error_;
};

// ---- the generator ---------------------------------------------------------------------------

std::string Escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == ',' || c == '|' || c == '$' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// Code points of a UTF-8 string (so that prefixes and substrings never split a character).
std::vector<std::string> CodePoints(std::string_view s) {
  std::vector<std::string> out;
  for (size_t i = 0; i < s.size();) {
    size_t n = 1;
    auto b = static_cast<unsigned char>(s[i]);
    if (b >= 0xF0)
      n = 4;
    else if (b >= 0xE0)
      n = 3;
    else if (b >= 0xC0)
      n = 2;
    out.emplace_back(s.substr(i, n));
    i += n;
  }
  return out;
}

std::string Join(const std::vector<std::string>& parts, size_t from, size_t to) {
  std::string out;
  for (size_t i = from; i < to && i < parts.size(); ++i) out += parts[i];
  return out;
}

// One criterion of a search resolved to where it applies: after chains and _has, the type
// and parameter the value is matched against. For composites, `kind` is the kind of the second
// component and `values` its values.
struct FinalCriterion {
  std::string type, code, modifier, kind;
  std::vector<std::string> values;  // the OR-alternatives, as written
};

std::vector<FinalCriterion> Criteria(const GeneratedSearch& s) {
  std::vector<FinalCriterion> out;
  for (const auto& [name, value] : s.params) {
    if (name == "_sort" || name == "_count" || name == "_getpagesoffset") continue;
    std::string_view n = name;
    std::string type = s.type;
    while (n.starts_with("_has:")) {
      std::string_view rest = n.substr(5);
      size_t c1 = rest.find(':'), c2 = rest.find(':', c1 + 1);
      type = std::string(rest.substr(0, c1));
      n = rest.substr(c2 + 1);
    }
    while (true) {  // chains: the type modifier of each link, or its target, names the next type
      size_t dot = n.find('.');
      if (dot == std::string_view::npos) break;
      std::string_view head = n.substr(0, dot);
      n = n.substr(dot + 1);
      size_t colon = head.find(':');
      if (colon != std::string_view::npos) {
        type = std::string(head.substr(colon + 1));
        continue;
      }
      const auto& defs = fhir::Definitions::Get();
      const fhir::SearchParamDef* link = defs.FindSearchParam(type, head);
      const std::string_view next = n.substr(0, n.find_first_of(":."));
      for (const std::string& target : link ? link->target : std::vector<std::string>{}) {
        if (defs.FindSearchParam(target, next)) {
          type = target;
          break;
        }
      }
    }
    FinalCriterion c;
    c.type = type;
    c.code = std::string(n.substr(0, n.find(':')));
    if (n.find(':') != std::string_view::npos) c.modifier = std::string(n.substr(n.find(':') + 1));
    const fhir::SearchParamDef* p = fhir::Definitions::Get().FindSearchParam(type, c.code);
    c.kind = c.code == "_id" ? "id" : p ? p->type : "";
    c.values.emplace_back();
    for (size_t i = 0; i < value.size(); ++i) {  // split on unescaped commas
      if (value[i] == '\\' && i + 1 < value.size()) {
        c.values.back() += value.substr(i++, 2);
      } else if (value[i] == ',') {
        c.values.emplace_back();
      } else {
        c.values.back() += value[i];
      }
    }
    if (c.kind == "composite" && p && p->components.size() == 2) {
      const fhir::SearchParamDef* second =
          fhir::Definitions::Get().SearchParamByUrl(p->components[1].definition);
      c.kind = second ? second->type : "";
      for (std::string& v : c.values)
        v = v.substr(v.find('$') == std::string::npos ? 0 : v.find('$') + 1);
    }
    out.push_back(std::move(c));
  }
  return out;
}

// ---- known bugs: the one place where the comparison makes exceptions ------------------------
// Each entry is a confirmed bug of the SQL path, reported with a minimal reproduction. A bug
// without witnesses leaves the searches it applies to out (they are counted); a bug with
// witnesses lets them run and accepts a difference made only of the witness resources (rows the
// supplement added to show it), so that every other difference in those searches still fails.
// JICENG_DIFFERENTIAL_KNOWN_BUGS=1 runs everything and accepts nothing.
struct KnownBug {
  std::string name;
  std::string reason;
  std::function<bool(const GeneratedSearch&)> applies;
  std::vector<std::string> witnesses;
};

// For writing KnownBug::applies: whether a criterion of kind `kind` (after chains and _has, the
// second component's kind for composites) has a value starting with `prefix` ("ge").
[[maybe_unused]] bool HasPrefixOn(const GeneratedSearch& s, std::string_view kind,
                                  std::string_view prefix) {
  for (const FinalCriterion& c : Criteria(s)) {
    if (c.kind != kind) continue;
    for (const std::string& v : c.values) {
      if (v.starts_with(prefix)) return true;
    }
  }
  return false;
}

// None known today. (Fixed: decimal bounds computed in binary floating point, lenient number
// syntax, absolute references taken for local ones, the quantity's human unit ignored, Codings
// with a system and no code not indexed, ge/le compared with the implicit range.)
std::vector<KnownBug> KnownBugs([[maybe_unused]] ReferenceSearch& ref) { return {}; }

class Generator {
 public:
  Generator(ReferenceSearch& ref, uint64_t seed, int64_t now_us)
      : ref_(ref), rng_(seed), now_us_(now_us) {
    for (const std::string& t : ref_.Types()) {
      types_.push_back(t);
      for (const fhir::SearchParamDef* p : ref_.SearchParams(t)) {
        if (p->type != "composite")
          params_[t].push_back(p);
        else
          composites_[t].push_back(p);
      }
    }
  }

  // One search from a generator picked by weight; a generator that finds nothing to build from
  // (e.g. no reference in the resource it drew) returns nullopt and another pick is made.
  GeneratedSearch Next() {
    int total = 0;
    for (const Weighted& g : Generators()) total += g.weight;
    for (;;) {
      int pick = Uniform(0, total - 1);
      for (const Weighted& g : Generators()) {
        if (pick >= g.weight) {
          pick -= g.weight;
          continue;
        }
        std::optional<GeneratedSearch> s = (this->*g.fn)();
        if (!s) break;
        s->kind = g.name;
        Decorate(*s);
        return *s;
      }
    }
  }

 private:
  // A kind of search is one member function of this type, listed in Generators().
  using Fn = std::optional<GeneratedSearch> (Generator::*)();
  struct Weighted {
    const char* name;
    int weight;
    Fn fn;
  };
  static const std::vector<Weighted>& Generators() {
    static const std::vector<Weighted> kGenerators = {
        {"single", 40, &Generator::Single},
        {"or-list", 10, &Generator::OrList},
        {"and", 12, &Generator::And},
        {"missing", 5, &Generator::Missing},
        {"id", 3, &Generator::Id},
        {"sort-only", 5, &Generator::SortOnly},
        {"absent-value", 6, &Generator::AbsentValue},
        {"malformed", 3, &Generator::Malformed},
        {"chain", 8, &Generator::Chain},
        {"has", 6, &Generator::ReverseChain},
        {"composite", 6, &Generator::Composite},
        {"code-and-value", 6, &Generator::CodeAndValue},
    };
    return kGenerators;
  }

  int Uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng_); }
  bool Chance(double p) { return std::uniform_real_distribution<double>(0, 1)(rng_) < p; }
  template <class T>
  const T& Pick(const std::vector<T>& v) {
    return v[static_cast<size_t>(Uniform(0, static_cast<int>(v.size()) - 1))];
  }

  // A resource type, Observation-heavy like the data but with every type reachable.
  std::string PickType() {
    if (Chance(0.3)) return "Observation";
    return Pick(types_);
  }
  // A resource of the type; the supplement's edge cases are drawn more often than their share.
  size_t PickResource(const std::string& type) {
    const auto& all = ref_.Resources(type);
    if (Chance(0.15)) {
      std::vector<size_t> supplement;
      for (size_t i = 0; i < all.size(); ++i) {
        if (all[i]->id.starts_with("sup-")) supplement.push_back(i);
      }
      if (!supplement.empty()) return Pick(supplement);
    }
    return static_cast<size_t>(Uniform(0, static_cast<int>(all.size()) - 1));
  }
  // A parameter with a value on the resource (most of the time), or any parameter.
  const fhir::SearchParamDef* PickParam(const std::string& type, size_t index) {
    const auto& all = params_[type];
    if (all.empty()) return nullptr;
    std::vector<const fhir::SearchParamDef*> with_values;
    for (const fhir::SearchParamDef* p : all) {
      if (!ref_.ValuesOf(type, index, *p).Empty(p->type)) with_values.push_back(p);
    }
    if (with_values.empty() || Chance(0.05)) return Pick(all);
    return Pick(with_values);
  }

  // ---- values of one parameter, drawn from what a resource holds ----------------------------

  std::string Prefix(bool ordered) {
    static const std::vector<std::string> kPrefixes = {"eq", "ne", "gt", "lt", "ge",
                                                       "le", "sa", "eb", "ap"};
    if (!ordered || Chance(0.3)) return "";
    return Pick(kPrefixes);
  }

  std::string StringValue(const std::string& modifier, const Values& v) {
    if (v.strings.empty()) return "zzqx";
    std::string s = Pick(v.strings);
    auto cps = CodePoints(s);
    if (modifier == "exact") {
      if (Chance(0.2)) return Escape(search::NormalizeString(s));  // usually differs: no match
      return Escape(s);
    }
    if (modifier == "contains") {
      size_t from = static_cast<size_t>(Uniform(0, static_cast<int>(cps.size()) - 1));
      size_t len =
          static_cast<size_t>(Uniform(1, std::min<int>(4, static_cast<int>(cps.size() - from))));
      return Escape(Join(cps, from, from + len));
    }
    std::string prefix =
        Join(cps, 0, static_cast<size_t>(Uniform(1, static_cast<int>(cps.size()))));
    // Case and accents must not matter.
    if (Chance(0.3)) {
      for (char& c : prefix) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    }
    if (Chance(0.15) && prefix.find('e') != std::string::npos) {
      prefix.replace(prefix.find('e'), 1, "é");
    }
    return Escape(prefix);
  }

  std::string TokenValue(const std::string& modifier, const Values& v) {
    if (modifier == "text") {
      if (v.texts.empty()) return "zzqx";
      auto cps = CodePoints(Pick(v.texts));
      return Escape(Join(cps, 0, static_cast<size_t>(Uniform(1, static_cast<int>(cps.size())))));
    }
    if (modifier == "of-type") {
      if (v.identifier_types.empty()) return "http://terminology.hl7.org/CodeSystem/v2-0203|MR|x";
      const auto& it = Pick(v.identifier_types);
      return Escape(it.type.system.value_or("")) + "|" + Escape(it.type.code) + "|" +
             Escape(it.value);
    }
    if (modifier == "in" || modifier == "not-in") {
      static const std::vector<std::string> kValueSets = {
          "http://hl7.org/fhir/ValueSet/administrative-gender",
          "http://hl7.org/fhir/ValueSet/observation-status",
          "http://hl7.org/fhir/ValueSet/condition-clinical",
          "http://hl7.org/fhir/ValueSet/encounter-status",
          "http://hl7.org/fhir/ValueSet/request-status",
          "http://hl7.org/fhir/ValueSet/event-status"};
      for (const std::string& vs : kValueSets) {
        const auto* codes = fhir::Definitions::Get().ValueSetCodes(vs);
        if (!codes || v.tokens.empty()) continue;
        if (std::find(codes->begin(), codes->end(), v.tokens[0].code) != codes->end()) return vs;
      }
      return Pick(kValueSets);
    }
    if (v.tokens.empty()) return "no-such-code";
    const search_ref::Token& t = Pick(v.tokens);
    const int form = Uniform(0, 3);
    if (form == 0 || (!t.system && form != 2)) return Escape(t.code.empty() ? "x" : t.code);
    if (form == 1 && !t.code.empty()) return Escape(*t.system) + "|" + Escape(t.code);
    if (form == 2) return "|" + Escape(t.code.empty() ? "x" : t.code);
    return Escape(*t.system) + "|";
  }

  std::string FormatInstant(int64_t us, int precision, int offset_minutes) {
    const int64_t local = us + int64_t{offset_minutes} * 60'000'000;
    int64_t days = local >= 0 ? local / 86'400'000'000 : (local - 86'399'999'999) / 86'400'000'000;
    int64_t rem = local - days * 86'400'000'000;
    // civil from days (proleptic Gregorian)
    int64_t z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097, yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100),
            mp = (5 * doy + 2) / 153;
    int64_t d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    if (y < 1 || y > 9999) y = 2024;
    std::string out = fmt::format("{:04}", y);
    if (precision >= 1) out += fmt::format("-{:02}", m);
    if (precision >= 2) out += fmt::format("-{:02}", d);
    if (precision >= 3) {
      const int64_t secs = rem / 1'000'000;
      out += fmt::format("T{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
      if (precision >= 4) out += fmt::format(".{:03}", rem / 1000 % 1000);
      if (offset_minutes == 0) {
        out += "Z";
      } else {
        const int a = std::abs(offset_minutes);
        out += fmt::format("{}{:02}:{:02}", offset_minutes < 0 ? '-' : '+', a / 60, a % 60);
      }
    }
    return out;
  }

  std::string DateValue(const Values& v, bool instant_values = false) {
    int64_t t;
    if (v.dates.empty()) {
      t = now_us_ + int64_t{Uniform(-40, 60)} * 365 * 86'400'000'000;
    } else {
      const search_ref::DateRange& r = Pick(v.dates);
      if (r.start != INT64_MIN && (r.end == INT64_MAX || Chance(0.7)))
        t = r.start;
      else
        t = r.end - 1;
    }
    // Near the boundaries: a little before or after, sometimes.
    if (Chance(0.2)) t += int64_t{Uniform(-3, 3)} * (Chance(0.5) ? 1'000'000 : 86'400'000'000);
    static const int kOffsets[] = {480, 0, -300, 480, 330};
    const int precision = instant_values ? Uniform(2, 4) : Uniform(0, 4);
    const int offset = precision >= 3 ? kOffsets[Uniform(0, 4)] : 480;
    return Prefix(true) + FormatInstant(t, precision, offset);
  }

  // A number as a client would type it: the stored value, or rounded to a few digits.
  std::string NumberText(const search_ref::Decimal& d) {
    std::string exact = search_ref::FormatDecimal(d);
    if (Chance(0.3)) return exact;
    const double v = std::strtod(exact.c_str(), nullptr);
    return fmt::format("{:.{}f}", v, Uniform(0, 3));
  }

  std::string NumberValue(const Values& v) {
    if (v.numbers.empty()) return Prefix(true) + std::to_string(Uniform(-5, 200));
    return Prefix(true) + NumberText(Pick(v.numbers));
  }

  std::string QuantityValue(const Values& v) {
    if (v.quantities.empty()) return Prefix(true) + std::to_string(Uniform(0, 200));
    const search_ref::QuantityValue& q = Pick(v.quantities);
    std::string number = NumberText(q.value);
    const int form = Uniform(0, 4);
    if (form == 0) return Prefix(true) + number;
    if (form == 1) return Prefix(true) + number + "|" + Escape(q.system) + "|" + Escape(q.code);
    if (form == 2) return Prefix(true) + number + "||" + Escape(Chance(0.5) ? q.code : q.unit);
    // Another unit of the same dimension (the server converts every UCUM unit it reads, mass
    // and amount of substance never into each other), or the stored unit itself.
    static const std::vector<std::string> kUnits = {
        "g",   "kg",  "mg", "[lb_av]", "m",      "cm",      "mm",    "mm[Hg]",
        "kPa", "mL",  "L",  "dL",      "umol/L", "mmol/L",  "mg/dL", "g/L",
        "s",   "min", "h",  "/min",    "/h",     "10*3/uL", "10*9/L"};
    auto from = search::CanonicalUnitOf(q.code);
    if (!from) return Prefix(true) + number + "|" + Escape(q.system) + "|" + Escape(q.code);
    std::vector<std::string> same = {q.code};
    for (const std::string& u : kUnits) {
      auto to = search::CanonicalUnitOf(u);
      if (to && to->code == from->code) same.push_back(u);
    }
    const std::string& unit = Pick(same);
    const double value = std::strtod(number.c_str(), nullptr) * from->factor.ToDouble() /
                         search::CanonicalUnitOf(unit)->factor.ToDouble();
    return Prefix(true) + fmt::format("{:.{}f}", value, Uniform(0, 4)) +
           (Chance(0.5) ? "|http://unitsofmeasure.org|" : "||") + Escape(unit);
  }

  std::string UriValue(const std::string& modifier, const Values& v) {
    if (v.uris.empty()) return "http://example.org/none";
    std::string u = Pick(v.uris);
    if (modifier == "below") {
      size_t slash = u.rfind('/');
      if (slash != std::string::npos && slash > 8 && Chance(0.7)) u = u.substr(0, slash);
    }
    if (modifier == "above" && Chance(0.7)) u += "/child/x";
    return Escape(u);
  }

  // A criterion (name, value) for one parameter, drawn from the values on one resource.
  std::pair<std::string, std::string> Criterion(const fhir::SearchParamDef& p, const Values& v) {
    std::string name = p.code;
    const std::string& kind = p.type;
    if (kind == "string") {
      static const std::vector<std::string> kMods = {"", "", "", "exact", "contains"};
      std::string m = Pick(kMods);
      if (!m.empty()) name += ":" + m;
      return {name, StringValue(m, v)};
    }
    if (kind == "token") {
      std::vector<std::string> mods = {"", "", "", "", "not", "text"};
      if (!v.identifier_types.empty()) mods.push_back("of-type");
      mods.push_back("in");
      mods.push_back("not-in");
      std::string m = Pick(mods);
      if (!m.empty()) name += ":" + m;
      return {name, TokenValue(m, v)};
    }
    if (kind == "date") return {name, DateValue(v, p.code == "_lastUpdated")};
    if (kind == "number") return {name, NumberValue(v)};
    if (kind == "quantity") return {name, QuantityValue(v)};
    if (kind == "uri") {
      static const std::vector<std::string> kMods = {"", "", "below", "above"};
      std::string m = Pick(kMods);
      if (!m.empty()) name += ":" + m;
      return {name, UriValue(m, v)};
    }
    if (kind == "reference") {
      if (!v.reference_identifiers.empty() && Chance(0.3)) {
        const search_ref::Token& t = Pick(v.reference_identifiers);
        return {name + ":identifier", Escape(t.system.value_or("")) + "|" + Escape(t.code)};
      }
      if (v.references.empty()) return {name, "Patient/no-such-patient"};
      const search_ref::ReferenceValue& r = Pick(v.references);
      if (!r.url.empty() && Chance(0.7)) return {name, Escape(r.url)};
      if (r.id.empty()) return {name, Escape(r.url)};
      const int form = Uniform(0, 2);
      if (form == 0 || r.type.empty()) return {name, Escape(r.id)};
      if (form == 1 && std::find(p.target.begin(), p.target.end(), r.type) != p.target.end()) {
        return {name + ":" + r.type, Escape(r.id)};
      }
      return {name, Escape(r.type + "/" + r.id)};
    }
    return {name, "x"};
  }

  // ---- whole searches -------------------------------------------------------------------------

  // Adds _sort (several keys, '-' descending) and paging to some searches.
  void Decorate(GeneratedSearch& s) {
    const bool sorted = std::any_of(s.params.begin(), s.params.end(),
                                    [](const auto& p) { return p.first == "_sort"; });
    if (!sorted && Chance(0.35)) {
      std::vector<std::string> keys;
      const int n = Uniform(1, 3);
      for (int k = 0; k < n; ++k) {
        std::string key;
        const int pick = Uniform(0, 9);
        if (pick == 0)
          key = "_id";
        else if (pick == 1)
          key = "_lastUpdated";
        else if (!params_[s.type].empty())
          key = Pick(params_[s.type])->code;
        else
          key = "_id";
        keys.push_back((Chance(0.4) ? "-" : "") + key);
      }
      std::string value;
      for (const std::string& k : keys) value += (value.empty() ? "" : ",") + k;
      s.params.emplace_back("_sort", value);
    }
    if (Chance(0.1)) {
      s.params.emplace_back("_count", std::to_string(Uniform(0, 20)));
      if (Chance(0.7)) s.params.emplace_back("_getpagesoffset", std::to_string(Uniform(0, 40)));
    }
  }

  std::optional<GeneratedSearch> Single() {
    const std::string type = PickType();
    const size_t i = PickResource(type);
    const fhir::SearchParamDef* p = PickParam(type, i);
    if (!p) return std::nullopt;
    GeneratedSearch s{type, {Criterion(*p, ref_.ValuesOf(type, i, *p))}, ""};
    return s;
  }

  // One parameter, several values from several resources: name=a,b,c.
  std::optional<GeneratedSearch> OrList() {
    const std::string type = PickType();
    const size_t i = PickResource(type);
    const fhir::SearchParamDef* p = PickParam(type, i);
    if (!p) return std::nullopt;
    auto [name, value] = Criterion(*p, ref_.ValuesOf(type, i, *p));
    const int n = Uniform(1, 3);
    for (int k = 0; k < n; ++k) {
      const size_t j = PickResource(type);
      auto more = Criterion(*p, ref_.ValuesOf(type, j, *p));
      if (more.first == name) value += "," + more.second;
    }
    return GeneratedSearch{type, {{name, value}}, ""};
  }

  // Several criteria from one resource (so that they can intersect), sometimes one repeated.
  std::optional<GeneratedSearch> And() {
    const std::string type = PickType();
    const size_t i = PickResource(type);
    GeneratedSearch s{type, {}, ""};
    const int n = Uniform(2, 3);
    for (int k = 0; k < n; ++k) {
      const fhir::SearchParamDef* p = PickParam(type, i);
      if (!p) return std::nullopt;
      s.params.push_back(Criterion(*p, ref_.ValuesOf(type, i, *p)));
      // The same parameter again (a date range: date=ge…&date=lt…), from another resource.
      if (Chance(0.3)) {
        const size_t j = PickResource(type);
        s.params.push_back(Criterion(*p, ref_.ValuesOf(type, j, *p)));
      }
    }
    return s;
  }

  std::optional<GeneratedSearch> Missing() {
    const std::string type = PickType();
    const size_t i = PickResource(type);
    const fhir::SearchParamDef* p = PickParam(type, i);
    if (!p || p->code == "_lastUpdated") return std::nullopt;
    GeneratedSearch s{type, {{p->code + ":missing", Chance(0.5) ? "true" : "false"}}, ""};
    if (Chance(0.4)) {
      const fhir::SearchParamDef* q = PickParam(type, i);
      if (q) s.params.push_back(Criterion(*q, ref_.ValuesOf(type, i, *q)));
    }
    return s;
  }

  std::optional<GeneratedSearch> Id() {
    const std::string type = PickType();
    std::string ids;
    const int n = Uniform(1, 3);
    for (int k = 0; k < n; ++k) {
      std::string id = Chance(0.1) ? "no-such-id" : ref_.Resources(type)[PickResource(type)]->id;
      ids += (ids.empty() ? "" : ",") + Escape(id);
    }
    return GeneratedSearch{type, {{"_id", ids}}, ""};
  }

  // Only a sort (and maybe paging), over every resource of a type: Decorate adds it.
  std::optional<GeneratedSearch> SortOnly() {
    GeneratedSearch s{PickType(), {}, ""};
    std::string keys;
    const int n = Uniform(1, 3);
    for (int k = 0; k < n; ++k) {
      const auto& params = params_[s.type];
      std::string key = params.empty() || Chance(0.15) ? "_lastUpdated" : Pick(params)->code;
      keys += (keys.empty() ? "" : ",") + std::string(Chance(0.4) ? "-" : "") + key;
    }
    s.params.emplace_back("_sort", keys);
    return s;
  }

  // Values that occur nowhere (a parameter picked without looking at a resource's values).
  std::optional<GeneratedSearch> AbsentValue() {
    const std::string type = PickType();
    const auto& params = params_[type];
    if (params.empty()) return std::nullopt;
    const fhir::SearchParamDef* p = Pick(params);
    static const Values kNothing;
    return GeneratedSearch{type, {Criterion(*p, kNothing)}, ""};
  }

  // Bad values of supported parameters: both sides must reject them.
  std::optional<GeneratedSearch> Malformed() {
    static const std::vector<std::pair<std::string, std::string>> kBad = {
        {"Patient", "birthdate=1980-13-01"},
        {"Patient", "birthdate=1980-02-30"},
        {"Patient", "birthdate=19800305"},
        {"Patient", "birthdate=gt"},
        {"Observation", "date=2024-03-05T25:00:00Z"},
        {"Observation", "value-quantity=abc"},
        {"Observation", "value-quantity=1|2"},
        {"RiskAssessment", "probability=1.2.3"},
        {"RiskAssessment", "probability=ge"},
        {"Patient", "gender:missing=maybe"},
        {"Patient", "identifier=|"},
        {"Observation", "subject:Patient=Group/1"},
        {"Patient", "_lastUpdated=yesterday"},
        {"Patient", "_count=-1"},
        {"Patient", "name:sounds-like=wang"},
        {"Patient", "no-such-param=1"},
        {"Patient", "_sort=no-such-param"},
        {"RiskAssessment", "probability=0x10"},
        {"RiskAssessment", "probability= 5"},
        {"RiskAssessment", "probability=5."},
        {"Observation", "value-quantity=inf"},
    };
    const auto& [type, query] = Pick(kBad);
    size_t eq = query.find('=');
    return GeneratedSearch{type, {{query.substr(0, eq), query.substr(eq + 1)}}, ""};
  }

  // A reference parameter of `type` whose value on resource `i` names a stored resource.
  struct Link {
    const fhir::SearchParamDef* param = nullptr;
    std::string target_type;
    size_t target = 0;
  };
  std::optional<Link> PickLink(const std::string& type, size_t i) {
    std::vector<Link> links;
    for (const fhir::SearchParamDef* p : params_[type]) {
      if (p->type != "reference") continue;
      for (const auto& r : ref_.ValuesOf(type, i, *p).references) {
        if (!r.url.empty() || r.type.empty()) continue;
        if (auto j = ref_.Find(r.type, r.id)) links.push_back({p, r.type, *j});
      }
    }
    if (links.empty()) return std::nullopt;
    return Pick(links);
  }

  // subject:Patient.name=x, encounter.service-provider:Organization.name=y, …
  std::optional<GeneratedSearch> Chain() {
    const std::string type = PickType();
    const size_t i = PickResource(type);
    auto link = PickLink(type, i);
    if (!link) return std::nullopt;
    std::string name = link->param->code;
    if (Chance(0.6) || link->param->target.size() > 1) name += ":" + link->target_type;
    std::string at = link->target_type;
    size_t j = link->target;
    if (Chance(0.3)) {  // a second level
      if (auto next = PickLink(at, j)) {
        name += "." + next->param->code + ":" + next->target_type;
        at = next->target_type;
        j = next->target;
      }
    }
    if (Chance(0.1)) {
      return GeneratedSearch{type, {{name + "._id", Escape(ref_.Resources(at)[j]->id)}}, ""};
    }
    const fhir::SearchParamDef* p = PickParam(at, j);
    if (!p) return std::nullopt;
    auto [tail, value] = Criterion(*p, ref_.ValuesOf(at, j, *p));
    return GeneratedSearch{type, {{name + "." + tail, value}}, ""};
  }

  // _has:Observation:subject:code=x on Patient: resources another resource points at.
  std::optional<GeneratedSearch> ReverseChain() {
    const std::string source = PickType();
    const size_t i = PickResource(source);
    auto link = PickLink(source, i);
    if (!link) return std::nullopt;
    const std::string via = "_has:" + source + ":" + link->param->code + ":";
    if (Chance(0.1)) {
      return GeneratedSearch{
          link->target_type, {{via + "_id", Escape(ref_.Resources(source)[i]->id)}}, ""};
    }
    const fhir::SearchParamDef* p = PickParam(source, i);
    if (!p) return std::nullopt;
    auto [tail, value] = Criterion(*p, ref_.ValuesOf(source, i, *p));
    return GeneratedSearch{
        link->target_type, {{"_has:" + source + ":" + link->param->code + ":" + tail, value}}, ""};
  }

  // code-value-quantity=http://loinc.org|8480-6$gt100 and the like; the MolecularSequence
  // coordinates (token$number$number) of the supplement's sequences now and then, as no
  // Synthea Bundle has one.
  std::optional<GeneratedSearch> Composite() {
    const double roll = Uniform(0, 99) / 100.0;
    const std::string type = roll < 0.65   ? "Observation"
                             : roll < 0.75 ? "MolecularSequence"
                                           : PickType();
    if (composites_[type].empty()) return std::nullopt;
    const size_t i = PickResource(type);
    const fhir::SearchParamDef* p = Pick(composites_[type]);
    const Values& v = ref_.ValuesOf(type, i, *p);
    if (v.composites.empty() || (p->components.size() != 2 && p->components.size() != 3))
      return std::nullopt;
    const std::vector<Values>& element = Pick(v.composites);
    const auto& defs = fhir::Definitions::Get();
    std::string value;
    for (size_t k = 0; k < p->components.size(); ++k) {
      const fhir::SearchParamDef* c = defs.SearchParamByUrl(p->components[k].definition);
      std::string part;
      if (c->type == "token")
        part = TokenValue("", element[k]);
      else if (c->type == "quantity")
        part = QuantityValue(element[k]);
      else if (c->type == "date")
        part = DateValue(element[k]);
      else if (c->type == "string")
        part = StringValue("", element[k]);
      else if (c->type == "number")
        part = NumberValue(element[k]);
      else
        return std::nullopt;
      value += (k ? "$" : "") + part;
    }
    return GeneratedSearch{type, {{p->code, value}}, ""};
  }

  // Observation?code=…&value-quantity=… (or value-concept), mostly from one Observation, at
  // times with a second value clause: the pairs the server answers from the code-value-*
  // composite rows (FuseRootComposites in fhir/search/query.cpp).
  std::optional<GeneratedSearch> CodeAndValue() {
    const std::string type = "Observation";
    const auto& defs = fhir::Definitions::Get();
    const fhir::SearchParamDef* code = defs.FindSearchParam(type, "code");
    const fhir::SearchParamDef* value =
        defs.FindSearchParam(type, Chance(0.7) ? "value-quantity" : "value-concept");
    if (!code || !value) return std::nullopt;
    const size_t i = PickResource(type);
    const size_t j = Chance(0.2) ? PickResource(type) : i;
    GeneratedSearch s{type,
                      {Criterion(*code, ref_.ValuesOf(type, i, *code)),
                       Criterion(*value, ref_.ValuesOf(type, j, *value))},
                      ""};
    if (Chance(0.3)) {
      s.params.push_back(Criterion(*value, ref_.ValuesOf(type, PickResource(type), *value)));
    }
    if (Chance(0.5)) std::swap(s.params[0], s.params[1]);
    return s;
  }

  ReferenceSearch& ref_;
  std::mt19937_64 rng_;
  int64_t now_us_;
  std::vector<std::string> types_;
  std::map<std::string, std::vector<const fhir::SearchParamDef*>> params_;
  std::map<std::string, std::vector<const fhir::SearchParamDef*>> composites_;
};

// ---- the comparison --------------------------------------------------------------------------

// Fewer under the sanitizers, which make the SQL path several times slower.
#ifdef __SANITIZE_ADDRESS__
constexpr int64_t kDefaultSearches = 1000;
#else
constexpr int64_t kDefaultSearches = 4000;
#endif

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoll(v, nullptr, 10) : fallback;
}

std::string FirstIds(const std::vector<std::string>& ids) {
  const size_t shown = std::getenv("JICENG_DIFFERENTIAL_QUERY") ? ids.size() : 6;
  std::string out;
  for (size_t i = 0; i < ids.size() && i < shown; ++i) out += (i ? " " : "") + ids[i];
  if (ids.size() > shown) out += fmt::format(" … ({} in all)", ids.size());
  return out.empty() ? "(none)" : out;
}

// Both answers to one search, compared.
struct Outcome {
  bool both_rejected = false;
  bool with_results = false;
  std::string problem;  // empty: same answer
};

class Comparison {
 public:
  Comparison(ReferenceSearch& ref, store::IReadTransaction& txn, int64_t now)
      : ref_(ref), txn_(txn) {
    options_.strict = true;
    options_.default_count = 1'000'000;
    options_.max_count = 1'000'000;
    options_.now_us = now;
  }

  // `ignore`: resources left out of both answers (a known bug's witnesses).
  Outcome Run(const GeneratedSearch& s, const std::set<std::string>& ignore = {}) {
    Outcome out;
    auto t0 = std::chrono::steady_clock::now();
    Result<search_ref::Answer> expected = ref_.Search(s.type, s.params);
    auto t1 = std::chrono::steady_clock::now();
    Result<store::SearchPage> actual = [&]() -> Result<store::SearchPage> {
      JC_ASSIGN_OR_RETURN(ParsedSearch parsed, ParseSearch(s.type, s.params, options_));
      return txn_.Search(parsed.query);
    }();
    reference_seconds += std::chrono::duration<double>(t1 - t0).count();
    sql_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    if (!expected.ok() && !actual.ok()) {
      out.both_rejected = true;
      return out;
    }
    std::vector<std::string> actual_ids, expected_ids;
    int64_t actual_total = 0, expected_total = 0;
    if (actual.ok()) {
      for (const auto& v : actual->entries) {
        if (!ignore.count(v.id)) actual_ids.push_back(v.id);
      }
      actual_total = actual->total.value_or(-1) -
                     static_cast<int64_t>(actual->entries.size() - actual_ids.size());
    }
    if (expected.ok()) {
      for (const auto& id : expected->ids) {
        if (!ignore.count(id)) expected_ids.push_back(id);
      }
      expected_total =
          expected->total - static_cast<int64_t>(expected->ids.size() - expected_ids.size());
      out.with_results = expected->total > 0;
    }
    if (!expected.ok()) {
      out.problem = fmt::format("  reference rejects it: {}\n  sql: total {}, {}\n",
                                expected.error().message, actual_total, FirstIds(actual_ids));
    } else if (!actual.ok()) {
      out.problem = fmt::format("  sql rejects it: {}\n  reference: total {}, {}\n",
                                actual.error().message, expected_total, FirstIds(expected_ids));
    } else if (actual_ids != expected_ids || actual_total != expected_total) {
      size_t at = 0;
      while (at < actual_ids.size() && at < expected_ids.size() &&
             actual_ids[at] == expected_ids[at]) {
        ++at;
      }
      out.problem = fmt::format(
          "  sql:       total {}, {}\n  reference: total {}, {}\n  first difference at "
          "position {}: sql {} / reference {}\n",
          actual_total, FirstIds(actual_ids), expected_total, FirstIds(expected_ids), at,
          at < actual_ids.size() ? actual_ids[at] : "(end)",
          at < expected_ids.size() ? expected_ids[at] : "(end)");
    }
    // The same matches again, page by page, each page starting after the last entry of the one
    // before (SearchQuery::after): for every sorted search and a quarter of the others.
    const bool paged = std::any_of(s.params.begin(), s.params.end(), [](const auto& p) {
      return p.first == "_count" || p.first == "_getpagesoffset";
    });
    const bool sorted = std::any_of(s.params.begin(), s.params.end(),
                                    [](const auto& p) { return p.first == "_sort"; });
    if (out.problem.empty() && actual.ok() && ignore.empty() && !paged &&
        expected_ids.size() >= 2 && expected_ids.size() <= 500 &&
        (sorted || ++unsorted_ % 4 == 0)) {
      out.problem = PageThrough(s, expected_ids);
    }
    return out;
  }

  // Empty when following SearchPage::last in pages of a third of the matches visits exactly
  // `expected`, in order.
  std::string PageThrough(const GeneratedSearch& s, const std::vector<std::string>& expected) {
    auto parsed = ParseSearch(s.type, s.params, options_);
    if (!parsed.ok()) return "  reparsing failed: " + parsed.error().message + "\n";
    store::SearchQuery q = parsed->query;
    q.count = std::max<int64_t>(1, static_cast<int64_t>(expected.size()) / 3);
    q.want_last = true;
    q.with_total = false;
    std::vector<std::string> ids;
    for (size_t pages = 0; pages <= expected.size() + 1; ++pages) {
      auto page = txn_.Search(q);
      if (!page.ok()) return "  a page after a cursor failed: " + page.error().message + "\n";
      for (const auto& v : page->entries) ids.push_back(v.id);
      if (!page->last) break;
      q.after = page->last;
    }
    ++paged_through;
    if (ids != expected) {
      return fmt::format("  pages of {} after each last entry: {}\n  one search: {}\n", q.count,
                         FirstIds(ids), FirstIds(expected));
    }
    // And backward (SearchQuery::backward) from the last match, each page before the first
    // entry of the one after it: every match but the last; from the end (a last link's
    // SearchAfter::end), every match.
    store::SearchQuery whole = q;
    whole.after.reset();
    whole.count = static_cast<int64_t>(expected.size());
    auto all = txn_.Search(whole);
    if (!all.ok() || !all->last) return "  no position of the last match\n";
    store::SearchAfter end;
    end.end = true;
    end.values.resize(q.sort.size());
    for (const bool from_end : {false, true}) {
      q.after = from_end ? end : *all->last;
      q.backward = true;
      std::vector<std::string> back;
      for (size_t pages = 0; pages <= expected.size() + 1; ++pages) {
        auto page = txn_.Search(q);
        if (!page.ok()) return "  a page before a cursor failed: " + page.error().message + "\n";
        std::vector<std::string> got;
        for (const auto& v : page->entries) got.push_back(v.id);
        back.insert(back.begin(), got.begin(), got.end());
        if (!page->first || static_cast<int64_t>(got.size()) < q.count) break;
        q.after = page->first;
      }
      if (back != std::vector<std::string>(expected.begin(), expected.end() - (from_end ? 0 : 1))) {
        return fmt::format("  pages of {} before each first entry{}: {}\n  one search: {}\n",
                           q.count, from_end ? ", from the end" : "", FirstIds(back),
                           FirstIds(expected));
      }
    }
    return {};
  }

  double reference_seconds = 0, sql_seconds = 0;
  int64_t paged_through = 0;  // searches also compared page by page

 private:
  int64_t unsorted_ = 0;
  ReferenceSearch& ref_;
  store::IReadTransaction& txn_;
  ParseOptions options_;
};

// JICENG_DIFFERENTIAL_QUERY="Type?a=1&b=2" (decoded, as the generator prints them).
std::optional<GeneratedSearch> GivenSearch() {
  const char* q = std::getenv("JICENG_DIFFERENTIAL_QUERY");
  if (!q || !*q) return std::nullopt;
  std::string_view text = q;
  GeneratedSearch s{std::string(text.substr(0, text.find('?'))), {}, "given"};
  text.remove_prefix(std::min(text.size(), text.find('?') + 1));
  while (!text.empty()) {
    std::string_view part = text.substr(0, text.find('&'));
    const size_t eq = part.find('=');
    s.params.emplace_back(std::string(part.substr(0, eq)),
                          eq == std::string_view::npos ? "" : std::string(part.substr(eq + 1)));
    text.remove_prefix(std::min(text.size(), part.size() + 1));
  }
  return s;
}

// On every backend (search_fixture.h): the same searches, the same reference.
class SearchDifferential : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override { JC_SEARCH_REQUIRE_BACKEND(GetParam()); }
  static void TearDownTestSuite() { Corpus::DropAll(); }
};

TEST_P(SearchDifferential, SqlPathMatchesReferenceOnSynthea) {
  Corpus& corpus = Corpus::Get(GetParam());
  ASSERT_TRUE(corpus.error().empty()) << corpus.error();
  ASSERT_GT(corpus.resources().size(), 9000u);

  const auto started = std::chrono::steady_clock::now();
  const int64_t now = corpus.loaded_at() + 1;
  ReferenceSearch reference(corpus.resources(), {now, 480});
  const std::optional<GeneratedSearch> given = GivenSearch();
  const int64_t searches = given ? 1 : EnvInt("JICENG_DIFFERENTIAL_SEARCHES", kDefaultSearches);
  const uint64_t seed = static_cast<uint64_t>(EnvInt("JICENG_DIFFERENTIAL_SEED", 20240305));
  const bool strict = EnvInt("JICENG_DIFFERENTIAL_KNOWN_BUGS", 0) != 0 || given;
  Generator generator(reference, seed, now);
  const std::vector<KnownBug> known_bugs = KnownBugs(reference);
  auto txn = corpus.store().BeginRead();
  ASSERT_TRUE(txn.ok()) << txn.error().message;
  Comparison comparison(reference, **txn, now);

  int64_t run = 0, with_results = 0, mismatches = 0, both_rejected = 0;
  std::map<std::string, int64_t> by_kind, left_out, accepted;
  for (int64_t n = 0; n < searches; ++n) {
    const GeneratedSearch s = given ? *given : generator.Next();
    std::vector<const KnownBug*> bugs;
    for (const KnownBug& b : known_bugs) {
      if (!strict && b.applies(s)) bugs.push_back(&b);
    }
    auto without_witnesses = [](const KnownBug* b) { return b->witnesses.empty(); };
    if (auto it = std::find_if(bugs.begin(), bugs.end(), without_witnesses); it != bugs.end()) {
      ++left_out[(*it)->name];
      continue;
    }
    ++run;
    ++by_kind[s.kind];
    Outcome outcome = comparison.Run(s);
    both_rejected += outcome.both_rejected;
    with_results += outcome.with_results;
    if (outcome.problem.empty()) continue;
    // A known bug shown by its witnesses: compare again without them (and without paging, which
    // they would shift).
    const KnownBug* explained = nullptr;
    for (const KnownBug* b : bugs) {
      GeneratedSearch whole = s;
      std::erase_if(whole.params, [](const auto& p) {
        return p.first == "_count" || p.first == "_getpagesoffset";
      });
      std::set<std::string> witnesses(b->witnesses.begin(), b->witnesses.end());
      if (comparison.Run(whole, witnesses).problem.empty()) explained = b;
    }
    if (explained) {
      ++accepted[explained->name];
      continue;
    }
    ++mismatches;
    if (mismatches <= 40) ADD_FAILURE() << "mismatch: " << s.Text() << "\n" << outcome.problem;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  auto list = [](const std::map<std::string, int64_t>& m) {
    std::string out;
    for (const auto& [k, c] : m) out += fmt::format(" {}={}", k, c);
    return out.empty() ? std::string(" none") : out;
  };
  std::cout << fmt::format(
                   "differential: {} searches, {} with results, {} mismatches, {} also paged "
                   "through by cursor\n",
                   run, with_results, mismatches, comparison.paged_through)
            << fmt::format(
                   "differential: seed {}, {:.1f} s (reference {:.1f} s, sql {:.1f} s), "
                   "{} rejected by both; generators:{}\n",
                   seed, seconds, comparison.reference_seconds, comparison.sql_seconds,
                   both_rejected, list(by_kind))
            << "differential: known bugs, searches left out:" << list(left_out) << "\n"
            << "differential: known bugs, differences accepted (witnesses only):" << list(accepted)
            << "\n";
  EXPECT_EQ(mismatches, 0);
  // The generator must mostly hit data, or the comparison says little.
  if (!given) {
    EXPECT_GT(with_results * 2, run);
    EXPECT_GT(comparison.paged_through * 10, run);  // the cursor comparison ran often enough
  }
}

JC_SEARCH_ON_EVERY_BACKEND(SearchDifferential);

}  // namespace
}  // namespace jiceng::search
