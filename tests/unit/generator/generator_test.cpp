#include "generator/generator.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include <unistd.h>

#include "base/ids.h"
#include "base/json.h"
#include "generator/output.h"
#include "registry/resident_id.h"

namespace jiceng::generator {
namespace {

namespace json = boost::json;

struct Collected {
  std::vector<Batch> batches;
};

Collected Generate(const GeneratorOptions& o) {
  Collected c;
  Status st = GenerateCounty(o, [&](Batch&& b) {
    c.batches.push_back(std::move(b));
    return Status::Ok();
  });
  EXPECT_TRUE(st.ok()) << (st.ok() ? "" : st.error().message);
  return c;
}

// FNV-1a over the serialized stream: the determinism tests compare these.
// Resources first, then the truth rows, so batch boundaries do not change the hash.
uint64_t Hash(const Collected& c) {
  uint64_t h = 1469598103934665603ULL;
  std::string s;
  for (const auto& b : c.batches) {
    for (const auto& r : b.resources) {
      s.clear();
      AppendJson(s, r);
      for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ULL;
    }
  }
  for (const auto& b : c.batches) {
    for (const auto& d : b.duplicates) {
      for (unsigned char ch : d.duplicate_id + d.original_id + d.kind) h = (h ^ ch) * 1099511628211ULL;
    }
  }
  return h;
}

std::string_view Str(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string_view(v->get_string()) : std::string_view();
}

std::string ResidentId(const json::object& patient) {
  if (auto* ids = patient.if_contains("identifier")) {
    for (const auto& i : ids->as_array()) {
      if (Str(i.as_object(), "system") == registry::kResidentIdSystem) {
        return std::string(Str(i.as_object(), "value"));
      }
    }
  }
  return {};
}

bool HasHealthRecord(const json::object& patient) {
  for (const auto& i : patient.at("identifier").as_array()) {
    if (Str(i.as_object(), "system") == kHealthRecordSystem) return true;
  }
  return false;
}

// Walks a value and reports any empty string, array or object (FHIR forbids them).
void FindEmpty(const json::value& v, const std::string& path, std::vector<std::string>& bad) {
  switch (v.kind()) {
    case json::kind::string:
      if (v.get_string().empty()) bad.push_back(path);
      break;
    case json::kind::array:
      if (v.get_array().empty()) bad.push_back(path);
      for (std::size_t i = 0; i < v.get_array().size(); ++i) {
        FindEmpty(v.get_array()[i], path + "[" + std::to_string(i) + "]", bad);
      }
      break;
    case json::kind::object:
      if (v.get_object().empty()) bad.push_back(path);
      for (const auto& kv : v.get_object()) FindEmpty(kv.value(), path + "." + std::string(kv.key()), bad);
      break;
    case json::kind::null:
      bad.push_back(path + " (null)");
      break;
    default:
      break;
  }
}

void CollectReferences(const json::value& v, std::vector<std::string>& refs) {
  if (v.is_object()) {
    for (const auto& kv : v.get_object()) {
      if (kv.key() == "reference" && kv.value().is_string()) {
        refs.emplace_back(kv.value().get_string());
      } else {
        CollectReferences(kv.value(), refs);
      }
    }
  } else if (v.is_array()) {
    for (const auto& e : v.get_array()) CollectReferences(e, refs);
  }
}

int AgeOn(std::string_view birth, int y, int m, int d) {
  int by = std::stoi(std::string(birth.substr(0, 4)));
  int bm = std::stoi(std::string(birth.substr(5, 2)));
  int bd = std::stoi(std::string(birth.substr(8, 2)));
  int age = y - by;
  if (m < bm || (m == bm && d < bd)) --age;
  return age;
}

GeneratorOptions Small(int64_t residents, uint64_t seed = 42) {
  GeneratorOptions o;
  o.residents = residents;
  o.seed = seed;
  return o;
}

TEST(Generator, SameSeedSameOutputDifferentSeedDiffers) {
  auto a = Hash(Generate(Small(1500, 42)));
  auto b = Hash(Generate(Small(1500, 42)));
  auto c = Hash(Generate(Small(1500, 43)));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(Generator, BatchSizeDoesNotChangeContent) {
  GeneratorOptions o = Small(800);
  o.batch_size = 50;
  GeneratorOptions p = Small(800);
  p.batch_size = 5000;
  auto small = Generate(o);
  auto large = Generate(p);
  EXPECT_GT(small.batches.size(), large.batches.size());
  EXPECT_EQ(Hash(small), Hash(large));
  // Batches close as soon as they reach the size: a batch exceeds it by at most one household.
  for (const auto& b : small.batches) {
    if (b.kind == BatchKind::kHouseholds) {
      EXPECT_LT(b.resources.size(), 50u + 400u);
    }
  }
}

// Residents' resources get version-7 UUIDs that rise in the order they are written, so a load
// appends to the store's (type, id) index (base/ids.h NewResourceId says why).
TEST(Generator, ResourceIdsAreVersionSevenInWritingOrder) {
  auto c = Generate(Small(300));
  std::string last;
  size_t uuids = 0;
  for (const auto& b : c.batches) {
    if (b.kind != BatchKind::kHouseholds) continue;
    for (const auto& r : b.resources) {
      std::string id(Str(r, "id"));
      ASSERT_EQ(id.size(), 36u) << id;
      EXPECT_EQ(id[14], '7') << id;
      EXPECT_GT(id, last);
      last = id;
      ++uuids;
    }
  }
  EXPECT_GT(uuids, 1000u);
}

TEST(Generator, DirectoryShape) {
  GeneratorOptions o = Small(100);
  auto c = Generate(o);
  ASSERT_FALSE(c.batches.empty());
  const Batch& dir = c.batches.front();
  ASSERT_EQ(dir.kind, BatchKind::kDirectory);
  std::map<std::string, int> types;
  std::set<std::string> org_ids;
  for (const auto& r : dir.resources) {
    ++types[std::string(Str(r, "resourceType"))];
    if (Str(r, "resourceType") == "Organization") {
      org_ids.insert(std::string(Str(r, "id")));
      // Parents come first so the directory loads in order.
      if (auto* part = r.if_contains("partOf")) {
        std::string ref(part->as_object().at("reference").as_string());
        EXPECT_TRUE(org_ids.count(ref.substr(13))) << ref;
      }
    }
  }
  // 卫生健康局 + 医共体 + 3 county hospitals + 15 townships + 225 villages.
  EXPECT_EQ(types["Organization"], 1 + 1 + 3 + 15 + 15 * 15);
  EXPECT_EQ(types["CareTeam"], 45);
  EXPECT_EQ(types["Practitioner"], types["PractitionerRole"]);
  EXPECT_GT(types["Practitioner"], 15 * 7 + 225);
  EXPECT_TRUE(org_ids.count("org-330421-rmyy"));
  EXPECT_TRUE(org_ids.count("org-330421100"));
  EXPECT_TRUE(org_ids.count("org-330421100200") || org_ids.count("org-330421200200"));
}

TEST(Generator, CityOfSeveralCountiesHasAboutAThousandInstitutions) {
  GeneratorOptions o = Small(400);
  o.counties = 4;
  auto c = Generate(o);
  int orgs = 0, directories = 0;
  for (const auto& b : c.batches) {
    if (b.kind != BatchKind::kDirectory) continue;
    ++directories;
    for (const auto& r : b.resources) orgs += Str(r, "resourceType") == "Organization";
  }
  EXPECT_EQ(directories, 4);
  EXPECT_EQ(orgs, 4 * 245 + 1);  // + 嘉兴市卫生健康委员会
}

TEST(Generator, ResidentIdsValidAndConsistent) {
  auto c = Generate(Small(3000));
  int patients = 0, practitioners = 0;
  std::unordered_set<std::string> seen;
  for (const auto& b : c.batches) {
    for (const auto& r : b.resources) {
      auto type = Str(r, "resourceType");
      if (type != "Patient" && type != "Practitioner") continue;
      std::string id = ResidentId(r);
      if (id.empty()) {  // only a "missing-id" duplicate may lack it
        EXPECT_EQ(type, "Patient");
        EXPECT_FALSE(HasHealthRecord(r));
        continue;
      }
      auto info = registry::ParseResidentId(id);
      ASSERT_TRUE(info.ok()) << id << ": " << info.error().message;
      EXPECT_EQ(info->normalized, id);
      EXPECT_EQ(registry::FormatCivilDate(info->birth_date), Str(r, "birthDate")) << id;
      EXPECT_EQ(info->sex == registry::Sex::kMale ? "male" : "female", Str(r, "gender")) << id;
      if (type == "Practitioner" || HasHealthRecord(r)) {
        EXPECT_TRUE(seen.insert(id).second) << "duplicate resident ID " << id;
      }
      (type == "Patient" ? patients : practitioners)++;
    }
  }
  EXPECT_GE(patients, 3000);
  EXPECT_GT(practitioners, 300);
}

TEST(Generator, AgePyramidAndPrevalence) {
  GeneratorOptions o = Small(20000, 7);
  o.dup_rate = 0;
  auto c = Generate(o);
  int total = 0, aged = 0, children = 0, adults = 0, males = 0;
  std::unordered_map<std::string, int> age_of;
  std::unordered_set<std::string> htn, dm;
  for (const auto& b : c.batches) {
    for (const auto& r : b.resources) {
      auto type = Str(r, "resourceType");
      if (type == "Patient") {
        int age = AgeOn(Str(r, "birthDate"), 2025, 6, 30);
        age_of[std::string(Str(r, "id"))] = age;
        ++total;
        aged += age >= 65;
        children += age <= 6;
        adults += age >= 18;
        males += Str(r, "gender") == "male";
      } else if (type == "Condition") {
        std::string subject(r.at("subject").as_object().at("reference").as_string());
        std::string code(r.at("code").as_object().at("coding").as_array()[0].as_object().at("code").as_string());
        (code == "I10" ? htn : dm).insert(subject.substr(8));
      }
    }
  }
  ASSERT_EQ(total, 20000);
  double share65 = static_cast<double>(aged) / total;
  EXPECT_GE(share65, 0.17);
  EXPECT_LE(share65, 0.23);
  EXPECT_NEAR(static_cast<double>(males) / total, 0.5, 0.03);
  EXPECT_GT(children, total * 0.04);
  // Diagnosed hypertension among adults: prevalence by age (≈ 27% of this older rural adult
  // population) times awareness 50% gives ≈ 13–14%.
  int htn_adults = 0;
  for (const auto& id : htn) htn_adults += age_of.at(id) >= 18;
  double htn_share = static_cast<double>(htn_adults) / adults;
  EXPECT_GE(htn_share, 0.10) << htn_share;
  EXPECT_LE(htn_share, 0.17) << htn_share;
  // Diagnosed diabetes: ≈ 13% × 40% ≈ 5%.
  double dm_share = static_cast<double>(dm.size()) / adults;
  EXPECT_GE(dm_share, 0.03) << dm_share;
  EXPECT_LE(dm_share, 0.08) << dm_share;
}

TEST(Generator, ClinicalDataLooksRight) {
  GeneratorOptions o = Small(6000, 11);
  auto c = Generate(o);
  int bp = 0, controlled = 0, emergency = 0, home = 0, imm = 0, glucose = 0, glucose_ok = 0;
  int episodes = 0, groups = 0, grouped = 0;
  std::set<std::string> vaccines;
  for (const auto& b : c.batches) {
    for (const auto& r : b.resources) {
      auto type = Str(r, "resourceType");
      if (type == "Observation") {
        auto code = Str(r.at("code").as_object().at("coding").as_array()[0].as_object(), "code");
        bool is_home = r.contains("method");
        home += is_home;
        if (code == "85354-9" && !is_home) {
          auto& comps = r.at("component").as_array();
          ASSERT_EQ(comps.size(), 2u);
          int64_t sbp = comps[0].as_object().at("valueQuantity").as_object().at("value").as_int64();
          int64_t dbp = comps[1].as_object().at("valueQuantity").as_object().at("value").as_int64();
          EXPECT_EQ(Str(comps[0].as_object().at("valueQuantity").as_object(), "code"), "mm[Hg]");
          ++bp;
          controlled += sbp < 140 && dbp < 90;
          emergency += sbp >= 180 || dbp >= 110;
        }
        if (code == kFastingGlucoseLoinc) {
          double g = r.at("valueQuantity").as_object().at("value").to_number<double>();
          ++glucose;
          glucose_ok += g < 7.0;
        }
      } else if (type == "Immunization") {
        ++imm;
        vaccines.insert(std::string(Str(r.at("vaccineCode").as_object().at("coding").as_array()[0].as_object(), "code")));
        EXPECT_EQ(Str(r, "status"), "completed");
        EXPECT_TRUE(r.contains("occurrenceDateTime"));
      } else if (type == "EpisodeOfCare") {
        ++episodes;
      } else if (type == "Group") {
        ++groups;
        grouped += static_cast<int>(r.at("member").as_array().size());
      }
    }
  }
  ASSERT_GT(bp, 1000);
  double rate = static_cast<double>(controlled) / bp;
  EXPECT_GT(rate, 0.35) << rate;  // BP visits include elderly checks of untreated people
  EXPECT_LT(rate, 0.80) << rate;
  EXPECT_GT(emergency, 0);
  EXPECT_LT(emergency, bp / 50);
  EXPECT_GT(home, 0);
  EXPECT_GT(glucose, 300);
  EXPECT_GT(imm, 1000);
  for (const char* v : {"HepB", "BCG", "IPV", "bOPV", "DTaP", "MMR", "JE-L", "MPSV-A", "MPSV-AC", "HepA-L"}) {
    EXPECT_TRUE(vaccines.count(v)) << v;
  }
  EXPECT_GT(episodes, 10);
  // Households average 2–3.5 people.
  double size = static_cast<double>(grouped) / groups;
  EXPECT_GT(size, 2.0);
  EXPECT_LT(size, 3.5);
}

TEST(Generator, DuplicatesMatchTruth) {
  GeneratorOptions o = Small(8000, 5);
  o.dup_rate = 0.05;
  auto c = Generate(o);
  std::unordered_map<std::string, const json::object*> patients;
  std::vector<DuplicateTruth> truth;
  int originals = 0;
  for (const auto& b : c.batches) {
    for (const auto& r : b.resources) {
      if (Str(r, "resourceType") == "Patient") {
        patients[std::string(Str(r, "id"))] = &r;
        originals += HasHealthRecord(r);
      }
    }
    truth.insert(truth.end(), b.duplicates.begin(), b.duplicates.end());
  }
  ASSERT_EQ(originals, 8000);
  EXPECT_EQ(static_cast<int>(patients.size()), originals + static_cast<int>(truth.size()));
  // Binomial(8000, 0.05): mean 400, sd ≈ 19.5.
  EXPECT_NEAR(static_cast<double>(truth.size()), 400, 80);
  std::map<std::string, int> kinds;
  for (const auto& t : truth) {
    ++kinds[t.kind];
    ASSERT_TRUE(patients.count(t.duplicate_id)) << t.duplicate_id;
    ASSERT_TRUE(patients.count(t.original_id)) << t.original_id;
    const json::object& dup = *patients[t.duplicate_id];
    const json::object& orig = *patients[t.original_id];
    EXPECT_FALSE(HasHealthRecord(dup));
    EXPECT_TRUE(HasHealthRecord(orig));
    EXPECT_EQ(Str(dup, "birthDate"), Str(orig, "birthDate"));
    EXPECT_EQ(Str(dup, "gender"), Str(orig, "gender"));
    auto name = [](const json::object& p) {
      return std::string(p.at("name").as_array()[0].as_object().at("text").as_string());
    };
    auto phone = [](const json::object& p) -> std::string {
      if (!p.contains("telecom")) return {};
      return std::string(p.at("telecom").as_array()[0].as_object().at("value").as_string());
    };
    if (t.kind == "missing-id") {
      EXPECT_TRUE(ResidentId(dup).empty());
      EXPECT_EQ(name(dup), name(orig));
    } else {
      EXPECT_EQ(ResidentId(dup), ResidentId(orig));
    }
    if (t.kind == "name-typo" || t.kind == "traditional-char") {
      EXPECT_NE(name(dup), name(orig));
      EXPECT_EQ(phone(dup), phone(orig));
    }
    if (t.kind == "changed-phone") {
      EXPECT_NE(phone(dup), phone(orig));
      EXPECT_EQ(name(dup), name(orig));
    }
    EXPECT_EQ(t.original_identifier, std::string(kHealthRecordSystem) + "|" +
                                         std::string(orig.at("identifier").as_array()[1].as_object().at("value").as_string()));
  }
  for (const char* k : {"name-typo", "traditional-char", "missing-id", "changed-phone"}) {
    EXPECT_GT(kinds[k], 40) << k;
  }
}

TEST(Generator, NoEmptyValuesAnywhere) {
  GeneratorOptions o = Small(2000, 3);
  o.dup_rate = 0.05;
  auto c = Generate(o);
  std::vector<std::string> bad;
  for (const auto& b : c.batches) {
    for (const auto& r : b.resources) {
      FindEmpty(json::value(r), std::string(Str(r, "resourceType")), bad);
      ASSERT_TRUE(IsValidId(Str(r, "id"))) << Str(r, "id");
    }
  }
  EXPECT_TRUE(bad.empty()) << bad.size() << " empty values, first: " << (bad.empty() ? "" : bad[0]);
}

TEST(Generator, BundleReferencesResolve) {
  GeneratorOptions o = Small(2500, 9);
  o.dup_rate = 0.05;
  o.batch_size = 300;
  std::set<std::string> directory_refs;
  int bundles = 0, checked = 0;
  Status st = GenerateCounty(o, [&](Batch&& b) {
    BatchKind kind = b.kind;
    json::object bundle = ToTransactionBundle(std::move(b));
    EXPECT_EQ(Str(bundle, "type"), "transaction");
    ++bundles;
    std::set<std::string> full_urls;
    for (const auto& e : bundle.at("entry").as_array()) {
      const auto& entry = e.as_object();
      const auto& req = entry.at("request").as_object();
      const auto& res = entry.at("resource").as_object();
      if (kind == BatchKind::kDirectory) {
        EXPECT_EQ(Str(req, "method"), "PUT");
        directory_refs.insert(std::string(Str(req, "url")));
      } else {
        EXPECT_EQ(Str(req, "method"), "POST");
        EXPECT_EQ(Str(req, "url"), Str(res, "resourceType"));
        EXPECT_FALSE(res.contains("id"));
        EXPECT_TRUE(full_urls.insert(std::string(Str(entry, "fullUrl"))).second);
      }
    }
    for (const auto& e : bundle.at("entry").as_array()) {
      std::vector<std::string> refs;
      CollectReferences(e.as_object().at("resource"), refs);
      for (const auto& ref : refs) {
        ++checked;
        if (ref.starts_with("urn:uuid:")) {
          EXPECT_TRUE(full_urls.count(ref)) << "dangling " << ref;
        } else {
          EXPECT_TRUE(directory_refs.count(ref)) << "not in the directory: " << ref;
        }
      }
    }
    return Status::Ok();
  });
  ASSERT_TRUE(st.ok());
  EXPECT_GT(bundles, 5);
  EXPECT_GT(checked, 10000);
}

TEST(Generator, SinkErrorStopsTheStream) {
  int calls = 0;
  Status st = GenerateCounty(Small(2000), [&](Batch&&) -> Status {
    return ++calls == 2 ? Status(Conflict("full")) : Status::Ok();
  });
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "full");
  EXPECT_EQ(calls, 2);
}

TEST(Generator, RejectsBadOptions) {
  GeneratorOptions o;
  o.counties = 13;
  EXPECT_FALSE(ValidateOptions(o).ok());
  o = GeneratorOptions();
  o.dup_rate = -0.1;
  EXPECT_FALSE(ValidateOptions(o).ok());
  o = GeneratorOptions();
  o.as_of = "2025-02-30";
  EXPECT_FALSE(ValidateOptions(o).ok());
  o = GeneratorOptions();
  o.residents = 0;
  EXPECT_FALSE(GenerateCounty(o, [](Batch&&) { return Status::Ok(); }).ok());
}

TEST(JsonText, PlainNumbers) {
  std::string s;
  AppendJson(s, json::value(json::object{{"a", 7.2}, {"b", 140.0}, {"c", int64_t{-3}},
                                          {"d", "引号\"\\\n"}, {"e", json::array{true, nullptr}}}));
  EXPECT_EQ(s, "{\"a\":7.2,\"b\":140,\"c\":-3,\"d\":\"引号\\\"\\\\\\n\",\"e\":[true,null]}");
  // Round trip through the parser gives the same values.
  auto back = json::parse(s);
  EXPECT_DOUBLE_EQ(back.at("a").as_double(), 7.2);
}

TEST(FileOutput, WritesNdjsonAndBundles) {
  std::filesystem::path dir = std::filesystem::temp_directory_path() /
                              ("jiceng-gen-test-" + std::to_string(::getpid()));
  for (auto fmt : {OutputFormat::kNdjson, OutputFormat::kBundles}) {
    std::filesystem::remove_all(dir);
    auto out = FileOutput::Open(dir.string(), fmt);
    ASSERT_TRUE(out.ok());
    GeneratorOptions o = Small(600);
    o.dup_rate = 0.05;
    ASSERT_TRUE(GenerateCounty(o, [&](Batch&& b) { return (*out)->Write(std::move(b)); }).ok());
    ASSERT_TRUE((*out)->Close().ok());
    int64_t lines = 0, dup_lines = -1;
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
      std::ifstream in(e.path());
      std::string line;
      auto name = e.path().filename().string();
      while (std::getline(in, line)) {
        if (name == "duplicates.csv") {
          ++dup_lines;
        } else if (name.ends_with(".ndjson")) {
          ++lines;
          ASSERT_TRUE(json::parse(line).is_object());
        } else if (name.starts_with("bundle-")) {
          lines += static_cast<int64_t>(json::parse(line).at("entry").as_array().size());
        }
      }
    }
    EXPECT_EQ(lines, (*out)->resources());
    EXPECT_EQ(dup_lines, (*out)->duplicates());
    EXPECT_TRUE(std::filesystem::exists(dir / "summary.txt"));
    if (fmt == OutputFormat::kNdjson) {
      EXPECT_EQ(NdjsonFileName("Patient"), "05-Patient.ndjson");
      EXPECT_TRUE(std::filesystem::exists(dir / "05-Patient.ndjson"));
      EXPECT_TRUE(std::filesystem::exists(dir / "01-Organization.ndjson"));
    } else {
      EXPECT_TRUE(std::filesystem::exists(dir / "bundle-000001.json"));
    }
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace jiceng::generator
