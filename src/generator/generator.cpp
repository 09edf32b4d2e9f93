#include "generator/generator.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "base/ids.h"
#include "generator/fhir_build.h"
#include "generator/rng.h"
#include "generator/tables.h"
#include "registry/resident_id.h"

namespace jiceng::generator {
namespace {

using registry::CivilDate;

constexpr int kMaxAge = 100;
// Two years of history end on options.as_of.
constexpr int kHistoryDays = 730;

// ---------------------------------------------------------------------------------------------
// Names

std::string Capitalized(std::string_view s) {
  std::string out(s);
  if (!out.empty() && out[0] >= 'a' && out[0] <= 'z') out[0] = static_cast<char>(out[0] - 32);
  return out;
}

// GB/T 28039 style: syllables of the given name run together; an apostrophe separates a
// syllable starting with a, o or e from the one before ("Xi'an").
void AppendSyllable(std::string& out, std::string_view syllable) {
  if (!out.empty() && (syllable[0] == 'a' || syllable[0] == 'o' || syllable[0] == 'e')) {
    out.push_back('\'');
  }
  out.append(syllable);
}

// ---------------------------------------------------------------------------------------------
// Resident ID numbers. Sequences are allocated per birth date and sex over the whole run so no
// two residents share a number (i.i.d. draws would collide thousands of times at a million).

class IdNumberAllocator {
 public:
  IdNumberAllocator() : base_(DayNumber(1900, 1, 1)), used_(2 * 50000, 0) {}

  std::string Allocate(std::string_view region, int64_t birth_day, bool male) {
    std::size_t slot = static_cast<std::size_t>(std::clamp<int64_t>(birth_day - base_, 0, 49999));
    uint16_t n = used_[slot * 2 + (male ? 1 : 0)]++;
    // Start each day at a scattered offset so numbers do not all begin at 001/002.
    uint64_t h = static_cast<uint64_t>(birth_day) * 0x9E3779B97F4A7C15ULL;
    int start = static_cast<int>((h >> 40) % 60);
    int seq = ((start + n) % 500) * 2 + (male ? 1 : 0);
    Ymd b = CivilFromDays(birth_day);
    auto id = registry::MakeResidentId(region, CivilDate{b.y, b.m, b.d}, seq);
    return id.ok() ? std::move(id).value() : std::string();
  }

 private:
  int64_t base_;
  std::vector<uint16_t> used_;
};

// ---------------------------------------------------------------------------------------------
// The county's institutions

struct Staff {
  std::string practitioner_id;
  bool doctor = true;
};

struct Township {
  std::string code9;
  std::string name;  // "大桥镇"
  std::string org_id;
  std::vector<std::string> gps;     // general practitioners (家庭医生)
  std::vector<std::string> nurses;
  std::vector<std::string> public_health;
};

struct Village {
  std::string code12;
  std::string name;  // "石塘村"
  std::string org_id;
  std::string doctor_id;  // 乡村医生
  int township = 0;
  int64_t next_record = 1;  // 健康档案编号 sequence
};

struct CountyDirectory {
  const CountyInfo* info = nullptr;
  std::string bureau_id, community_id, hospital_id, tcm_id, mch_id;
  std::vector<std::string> hospital_doctors, tcm_doctors, mch_doctors;
  std::vector<Township> townships;
  std::vector<Village> villages;
  std::vector<double> village_weights;
  double village_weight_total = 0;
};

// ---------------------------------------------------------------------------------------------
// The whole run's state, and one household's emission context.

struct Person {
  int age = 0;
  bool male = false;
  bool bloodline = true;  // carries the household surname
  int mother = -1;        // index in the household
  int64_t birth_day = 0;
  std::string family, given, family_py, given_py;
  std::string id_number;
  std::string phone;
  std::string patient_id;
  std::string record_no;
  bool htn = false, htn_dx = false, dm = false, dm_dx = false;
  double sbp_mean = 120, glucose_mean = 5.0;
};

// Residents still to be placed in households, counted by sex and single year of age. Drawing the
// population first and then grouping it keeps the age-sex pyramid exact whatever the household
// rules do.
class AgePool {
 public:
  AgePool() { counts_[0].fill(0); counts_[1].fill(0); }
  void Add(bool male, int age) { ++counts_[male][age]; ++total_; }
  int64_t total() const { return total_; }
  int64_t CountRange(int lo, int hi) const {
    int64_t n = 0;
    for (int s = 0; s < 2; ++s)
      for (int a = std::max(lo, 0); a <= std::min(hi, kMaxAge); ++a) n += counts_[s][a];
    return n;
  }
  // Takes one resident of the sex (0 female, 1 male, -1 either) with an age in [lo, hi],
  // weighted by how many remain. Returns false when none is left there.
  bool Take(Rng& rng, int sex, int lo, int hi, int& age, bool& male) {
    lo = std::max(lo, 0);
    hi = std::min(hi, kMaxAge);
    if (lo > hi) return false;
    int64_t n = 0;
    for (int s = 0; s < 2; ++s) {
      if (sex >= 0 && s != sex) continue;
      for (int a = lo; a <= hi; ++a) n += counts_[s][a];
    }
    if (n == 0) return false;
    int64_t r = rng.Int(0, n - 1);
    for (int s = 0; s < 2; ++s) {
      if (sex >= 0 && s != sex) continue;
      for (int a = lo; a <= hi; ++a) {
        r -= counts_[s][a];
        if (r < 0) {
          --counts_[s][a];
          --total_;
          age = a;
          male = s == 1;
          return true;
        }
      }
    }
    return false;
  }

 private:
  std::array<std::array<int32_t, kMaxAge + 1>, 2> counts_;
  int64_t total_ = 0;
};

struct RunState {
  const GeneratorOptions* options = nullptr;
  int64_t as_of = 0;
  int64_t window_start = 0;
  IdNumberAllocator ids;
  std::vector<std::string_view> city_county_codes;
  uint64_t ids_issued = 0;  // resource ids made so far (HouseholdWriter::Uuid)
};

class HouseholdWriter {
 public:
  HouseholdWriter(RunState& run, CountyDirectory& dir, Rng& rng, Batch& batch)
      : run_(run), dir_(dir), rng_(rng), out_(batch.resources), batch_(batch) {}

  void Write(std::vector<Person>& members);

 private:
  std::string Uuid();
  std::string Phone();
  void NamePerson(Person& p);
  json::array Names(std::string_view family, std::string_view given, std::string_view family_py,
                    std::string_view given_py) const;
  json::object AddressFor(const Village& v) const;
  void EmitPatient(const Person& p, const Village& v);
  void EmitDuplicate(const Person& p, const Village& v);
  void EmitClinical(std::vector<Person>& members, int i, const Village& v);
  std::string EmitEncounter(const Person& p, int64_t day, int minute, std::string_view type_code,
                            std::string_view type_display, std::string_view org_id,
                            std::string_view practitioner_id, std::string_view klass,
                            const std::vector<std::string>& reasons,
                            std::string_view episode_id);
  void EmitBp(const Person& p, int64_t day, int minute, std::string_view encounter_id, int sbp,
              int dbp, bool home);
  void EmitLab(const Person& p, int64_t day, int minute, std::string_view encounter_id,
               std::string_view loinc, std::string_view display, std::string_view text,
               double value, std::string_view unit, std::string_view category, bool home);
  std::string EmitCondition(const Person& p, std::string_view icd, std::string_view icd_display,
                            std::string_view sct, std::string_view sct_display,
                            std::string_view text, int64_t onset);
  void Chronic(Person& p, const Village& v);
  void Elderly(Person& p, const Village& v);
  void Pregnancy(const Person& p, const Village& v, int64_t lmp, int64_t delivered);
  void Child(std::vector<Person>& members, int i, const Village& v);
  void Immunizations(const Person& p, const Village& v);
  std::string_view VisitOrg(const Village& v, std::string_view* practitioner);
  std::string_view Pick(const std::vector<std::string>& v) {
    return v[static_cast<std::size_t>(rng_.Int(0, static_cast<int64_t>(v.size()) - 1))];
  }

  RunState& run_;
  CountyDirectory& dir_;
  Rng& rng_;
  std::vector<json::object>& out_;
  Batch& batch_;
  int village_ = 0;
  std::string household_surname_;
  std::string household_surname_py_;
};

// A version-7 UUID, as the server assigns (base/ids.h NewResourceId), on the generator's own
// clock: one millisecond per id from the start of the history window, so that ids follow the
// load order (and a load appends to the (type, id) index) and are the same for the same seed.
std::string HouseholdWriter::Uuid() {
  uint64_t a = rng_.Next(), b = rng_.Next();
  constexpr uint64_t kMsPerDay = 86'400'000;
  uint64_t ms = static_cast<uint64_t>(run_.window_start) * kMsPerDay + run_.ids_issued++;
  return UuidV7(ms, a, b);
}

std::string HouseholdWriter::Phone() {
  auto prefixes = MobilePrefixes();
  std::string s(prefixes[static_cast<std::size_t>(rng_.Int(0, static_cast<int64_t>(prefixes.size()) - 1))]);
  s += fmt::format("{:08d}", rng_.Int(0, 99999999));
  return s;
}

json::array HouseholdWriter::Names(std::string_view family, std::string_view given,
                                   std::string_view family_py, std::string_view given_py) const {
  json::array names;
  names.reserve(2);
  {
    json::object n;
    n.reserve(5);
    // ISO 21090 name representation: IDE = ideographic (汉字), ABC = alphabetic (拼音).
    n.emplace("extension",
              json::array{json::object{
                  {"url", "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"},
                  {"valueCode", "IDE"}}});
    n.emplace("use", "official");
    n.emplace("text", std::string(family) + std::string(given));
    n.emplace("family", family);
    n.emplace("given", json::array{json::string(given)});
    names.emplace_back(std::move(n));
  }
  {
    json::object n;
    n.reserve(5);
    n.emplace("extension",
              json::array{json::object{
                  {"url", "http://hl7.org/fhir/StructureDefinition/iso21090-EN-representation"},
                  {"valueCode", "ABC"}}});
    n.emplace("use", "usual");
    n.emplace("text", std::string(family_py) + " " + std::string(given_py));
    n.emplace("family", family_py);
    n.emplace("given", json::array{json::string(given_py)});
    names.emplace_back(std::move(n));
  }
  return names;
}

json::object HouseholdWriter::AddressFor(const Village& v) const {
  const Township& t = dir_.townships[static_cast<std::size_t>(v.township)];
  json::object a;
  a.reserve(10);
  a.emplace("extension", json::array{json::object{{"url", kDivisionCodeExtension},
                                                  {"valueCode", v.code12}}});
  a.emplace("use", "home");
  a.emplace("type", "physical");
  std::string line = fmt::format("{}{}{}组{}号", t.name, v.name, 1 + (rng_.Next() % 12),
                                 1 + (rng_.Next() % 98));
  a.emplace("text", fmt::format("{}{}{}{}", dir_.info->province, dir_.info->city, dir_.info->name,
                                line));
  a.emplace("line", json::array{json::string(line)});
  a.emplace("city", dir_.info->city);
  a.emplace("district", dir_.info->name);
  a.emplace("state", dir_.info->province);
  a.emplace("postalCode", dir_.info->postal_code);
  a.emplace("country", "CN");
  return a;
}

const Surname& DrawSurname(Rng& rng) {
  static const std::vector<double> weights = [] {
    std::vector<double> w;
    for (const auto& s : Surnames()) w.push_back(s.share);
    return w;
  }();
  return Surnames()[rng.Weighted(weights, SurnameShareTotal())];
}

void HouseholdWriter::NamePerson(Person& p) {
  if (p.bloodline) {
    p.family = household_surname_;
    p.family_py = household_surname_py_;
  } else {
    const Surname& s = DrawSurname(rng_);
    p.family = s.hanzi;
    p.family_py = s.pinyin;
  }
  bool old = CivilFromDays(p.birth_day).y < 1980;
  auto chars = GivenChars(p.male, old);
  int len = rng_.Chance(old ? 0.62 : 0.78) ? 2 : 1;
  p.given.clear();
  std::string py;
  std::size_t first = static_cast<std::size_t>(rng_.Int(0, static_cast<int64_t>(chars.size()) - 1));
  p.given.append(chars[first].hanzi);
  AppendSyllable(py, chars[first].pinyin);
  if (len == 2) {
    std::size_t second = first;
    while (second == first) {
      second = static_cast<std::size_t>(rng_.Int(0, static_cast<int64_t>(chars.size()) - 1));
    }
    p.given.append(chars[second].hanzi);
    AppendSyllable(py, chars[second].pinyin);
  }
  p.given_py = Capitalized(py);
}


void HouseholdWriter::EmitPatient(const Person& p, const Village& v) {
  json::object r;
  r.reserve(11);
  r.emplace("resourceType", "Patient");
  r.emplace("id", p.patient_id);
  json::array ids;
  ids.reserve(2);
  ids.emplace_back(json::object{
      {"use", "official"},
      {"type", Concept(Coding("http://terminology.hl7.org/CodeSystem/v2-0203", "NI",
                              "National unique individual identifier"),
                       "居民身份证")},
      {"system", registry::kResidentIdSystem},
      {"value", p.id_number}});
  ids.emplace_back(json::object{{"system", kHealthRecordSystem}, {"value", p.record_no}});
  r.emplace("identifier", std::move(ids));
  r.emplace("active", true);
  r.emplace("name", Names(p.family, p.given, p.family_py, p.given_py));
  if (!p.phone.empty()) {
    r.emplace("telecom", json::array{json::object{
                             {"system", "phone"}, {"value", p.phone}, {"use", "mobile"}}});
  }
  r.emplace("gender", p.male ? "male" : "female");
  r.emplace("birthDate", DateText(p.birth_day));
  r.emplace("address", json::array{AddressFor(v)});
  r.emplace("managingOrganization", Reference("Organization", v.org_id));
  out_.push_back(std::move(r));
}

// A second registration of the same resident at another institution, corrupted the way real
// registrations are, so the master patient index has something to find.
void HouseholdWriter::EmitDuplicate(const Person& p, const Village& v) {
  std::string family = p.family, given = p.given, phone = p.phone, id_number = p.id_number;
  static constexpr std::array<std::string_view, 4> kKinds = {"name-typo", "traditional-char",
                                                             "missing-id", "changed-phone"};
  std::string kind(kKinds[static_cast<std::size_t>(rng_.Int(0, 3))]);
  auto swap_in = [](std::string& s, std::span<const CharSwap> table, Rng& rng) {
    std::vector<std::pair<std::size_t, const CharSwap*>> hits;
    for (const auto& sw : table) {
      for (std::size_t pos = s.find(sw.from); pos != std::string::npos;
           pos = s.find(sw.from, pos + 1)) {
        hits.emplace_back(pos, &sw);
      }
    }
    if (hits.empty()) return false;
    auto [pos, sw] = hits[static_cast<std::size_t>(rng.Int(0, static_cast<int64_t>(hits.size()) - 1))];
    s.replace(pos, sw->from.size(), sw->to);
    return true;
  };
  if (kind == "traditional-char") {
    bool done = swap_in(family, TraditionalForms(), rng_) || swap_in(given, TraditionalForms(), rng_);
    if (!done) kind = "name-typo";
  }
  if (kind == "name-typo") {
    if (!swap_in(given, Homophones(), rng_)) {
      // No same-sound character to mistype: the clerk drops the second character instead.
      if (given.size() > 3) {
        given.resize(3);  // every given-name character here is 3 bytes of UTF-8
      } else {
        kind = "changed-phone";
      }
    }
  }
  if (kind == "missing-id") id_number.clear();
  if (kind == "changed-phone") {
    std::string fresh = Phone();
    while (fresh == phone) fresh = Phone();
    phone = std::move(fresh);
  }

  // Registered at the county hospital (most often), the TCM hospital or another township.
  std::string_view org_id, doctor;
  double r = rng_.Uniform();
  if (r < 0.6) {
    org_id = dir_.hospital_id;
    doctor = Pick(dir_.hospital_doctors);
  } else if (r < 0.8) {
    org_id = dir_.tcm_id;
    doctor = Pick(dir_.tcm_doctors);
  } else {
    std::size_t t = static_cast<std::size_t>(rng_.Int(0, static_cast<int64_t>(dir_.townships.size()) - 1));
    if (static_cast<int>(t) == v.township) t = (t + 1) % dir_.townships.size();
    org_id = dir_.townships[t].org_id;
    doctor = Pick(dir_.townships[t].gps);
  }
  std::string mrn_system = fmt::format("https://jiceng.example/fhir/sid/mrn/{}", org_id);
  std::string mrn = fmt::format("MZ{:08d}", rng_.Int(1, 99999999));

  Person dup = p;
  dup.patient_id = Uuid();
  json::object res;
  res.reserve(11);
  res.emplace("resourceType", "Patient");
  res.emplace("id", dup.patient_id);
  json::array ids;
  if (!id_number.empty()) {
    ids.emplace_back(json::object{{"use", "official"},
                                  {"system", registry::kResidentIdSystem},
                                  {"value", id_number}});
  }
  ids.emplace_back(json::object{{"use", "usual"}, {"system", mrn_system}, {"value", mrn}});
  res.emplace("identifier", std::move(ids));
  res.emplace("active", true);
  // Homophone and traditional variants are pronounced the same, so the romanised name is too.
  res.emplace("name", Names(family, given, p.family_py, p.given_py));
  if (!phone.empty()) {
    res.emplace("telecom", json::array{json::object{
                               {"system", "phone"}, {"value", phone}, {"use", "mobile"}}});
  }
  res.emplace("gender", p.male ? "male" : "female");
  res.emplace("birthDate", DateText(p.birth_day));
  // Hospitals often record the address only down to the township.
  if (rng_.Chance(0.5)) {
    res.emplace("address", json::array{AddressFor(v)});
  } else {
    const Township& t = dir_.townships[static_cast<std::size_t>(v.township)];
    res.emplace("address",
                json::array{json::object{{"use", "home"},
                                         {"text", fmt::format("{}{}", dir_.info->name, t.name)},
                                         {"district", dir_.info->name},
                                         {"city", dir_.info->city},
                                         {"state", dir_.info->province}}});
  }
  res.emplace("managingOrganization", Reference("Organization", org_id));
  out_.push_back(std::move(res));

  int64_t day = rng_.Int(run_.window_start, run_.as_of);
  std::string enc = EmitEncounter(dup, day, static_cast<int>(rng_.Int(8 * 60, 16 * 60)),
                                  "outpatient", "门诊", org_id, doctor, "AMB", {}, {});
  if (p.htn_dx) {
    int sbp = static_cast<int>(std::lround(rng_.Normal(p.sbp_mean, 8)));
    EmitBp(dup, day, 9 * 60, enc, sbp, static_cast<int>(std::lround(0.55 * sbp + rng_.Normal(8, 5))),
           false);
  }
  batch_.duplicates.push_back(DuplicateTruth{
      dup.patient_id, p.patient_id, kind, mrn_system + "|" + mrn,
      std::string(kHealthRecordSystem) + "|" + p.record_no});
}

std::string HouseholdWriter::EmitEncounter(const Person& p, int64_t day, int minute,
                                           std::string_view type_code,
                                           std::string_view type_display,
                                           std::string_view org_id,
                                           std::string_view practitioner_id,
                                           std::string_view klass,
                                           const std::vector<std::string>& reasons,
                                           std::string_view episode_id) {
  std::string id = Uuid();
  json::object r;
  r.reserve(11);
  r.emplace("resourceType", "Encounter");
  r.emplace("id", id);
  r.emplace("status", "finished");
  r.emplace("class", Coding("http://terminology.hl7.org/CodeSystem/v3-ActCode", klass,
                            klass == "HH" ? "home health" : "ambulatory"));
  r.emplace("type", json::array{Concept(
                        Coding(fmt::format("{}encounter-type", kLocalCs), type_code, type_display),
                        type_display)});
  r.emplace("subject", Reference("Patient", p.patient_id));
  if (!episode_id.empty()) {
    r.emplace("episodeOfCare", json::array{Reference("EpisodeOfCare", episode_id)});
  }
  r.emplace("participant",
            json::array{json::object{{"individual", Reference("Practitioner", practitioner_id)}}});
  r.emplace("period", json::object{{"start", DateTimeText(day, minute)},
                                   {"end", DateTimeText(day, minute + 15)}});
  if (!reasons.empty()) {
    json::array rr;
    for (const auto& c : reasons) rr.emplace_back(Reference("Condition", c));
    r.emplace("reasonReference", std::move(rr));
  }
  r.emplace("serviceProvider", Reference("Organization", org_id));
  out_.push_back(std::move(r));
  return id;
}

json::object ObservationHead(std::string id, std::string_view category,
                             std::string_view category_display) {
  json::object r;
  r.reserve(12);
  r.emplace("resourceType", "Observation");
  r.emplace("id", std::move(id));
  r.emplace("status", "final");
  r.emplace("category",
            json::array{Concept(Coding("http://terminology.hl7.org/CodeSystem/observation-category",
                                       category, category_display))});
  return r;
}

json::object HomeMethod() {
  return Concept(Coding(fmt::format("{}observation-method", kLocalCs), kHomeMethodCode, "居家自测"),
                 "居家自测");
}

void HouseholdWriter::EmitBp(const Person& p, int64_t day, int minute,
                             std::string_view encounter_id, int sbp, int dbp, bool home) {
  json::object r = ObservationHead(Uuid(), "vital-signs", "Vital Signs");
  r.emplace("code", Concept(Coding(kLoinc, "85354-9", "Blood pressure panel with all children optional"),
                            "血压"));
  r.emplace("subject", Reference("Patient", p.patient_id));
  if (!encounter_id.empty()) r.emplace("encounter", Reference("Encounter", encounter_id));
  r.emplace("effectiveDateTime", DateTimeText(day, minute));
  if (home) {
    r.emplace("performer", json::array{Reference("Patient", p.patient_id)});
    r.emplace("method", HomeMethod());
  }
  r.emplace("component",
            json::array{
                json::object{{"code", Concept(Coding(kLoinc, "8480-6", "Systolic blood pressure"),
                                              "收缩压")},
                             {"valueQuantity", UcumQuantity(int64_t{sbp}, "mm[Hg]")}},
                json::object{{"code", Concept(Coding(kLoinc, "8462-4", "Diastolic blood pressure"),
                                              "舒张压")},
                             {"valueQuantity", UcumQuantity(int64_t{dbp}, "mm[Hg]")}}});
  out_.push_back(std::move(r));
}

void HouseholdWriter::EmitLab(const Person& p, int64_t day, int minute,
                              std::string_view encounter_id, std::string_view loinc,
                              std::string_view display, std::string_view text, double value,
                              std::string_view unit, std::string_view category, bool home) {
  json::object r = ObservationHead(Uuid(), category,
                                   category == "laboratory" ? "Laboratory" : "Vital Signs");
  if (loinc == kFastingGlucoseLoinc) {
    // 14771-0 is the molar fasting glucose that matches mmol/L; 1558-6 (its mass twin) is kept
    // as a second coding because platform rules were specified against it.
    r.emplace("code", Concept2(Coding(kLoinc, loinc, display),
                               Coding(kLoinc, kFastingGlucoseMassLoinc,
                                      "Fasting glucose [Mass/volume] in Serum or Plasma"),
                               text));
  } else {
    r.emplace("code", Concept(Coding(kLoinc, loinc, display), text));
  }
  r.emplace("subject", Reference("Patient", p.patient_id));
  if (!encounter_id.empty()) r.emplace("encounter", Reference("Encounter", encounter_id));
  r.emplace("effectiveDateTime", DateTimeText(day, minute));
  if (home) {
    r.emplace("performer", json::array{Reference("Patient", p.patient_id)});
    r.emplace("method", HomeMethod());
  }
  r.emplace("valueQuantity", UcumQuantity(value, unit));
  out_.push_back(std::move(r));
}

std::string HouseholdWriter::EmitCondition(const Person& p, std::string_view icd,
                                           std::string_view icd_display, std::string_view sct,
                                           std::string_view sct_display, std::string_view text,
                                           int64_t onset) {
  std::string id = Uuid();
  json::object r;
  r.reserve(10);
  r.emplace("resourceType", "Condition");
  r.emplace("id", id);
  r.emplace("clinicalStatus",
            Concept(Coding("http://terminology.hl7.org/CodeSystem/condition-clinical", "active",
                           "Active")));
  r.emplace("verificationStatus",
            Concept(Coding("http://terminology.hl7.org/CodeSystem/condition-ver-status",
                           "confirmed", "Confirmed")));
  r.emplace("category",
            json::array{Concept(Coding("http://terminology.hl7.org/CodeSystem/condition-category",
                                       "problem-list-item", "Problem List Item"))});
  r.emplace("code", Concept2(Coding(kIcd10, icd, icd_display), Coding(kSnomed, sct, sct_display),
                             text));
  r.emplace("subject", Reference("Patient", p.patient_id));
  r.emplace("onsetDateTime", DateText(onset));
  r.emplace("recordedDate", DateText(onset));
  out_.push_back(std::move(r));
  return id;
}

std::string_view HouseholdWriter::VisitOrg(const Village& v, std::string_view* practitioner) {
  // Most follow-ups happen at the village clinic; a quarter at the township centre.
  if (rng_.Chance(0.75)) {
    *practitioner = v.doctor_id;
    return v.org_id;
  }
  const Township& t = dir_.townships[static_cast<std::size_t>(v.township)];
  *practitioner = Pick(t.gps);
  return t.org_id;
}

double Round1(double x) { return std::round(x * 10.0) / 10.0; }
double Round2(double x) { return std::round(x * 100.0) / 100.0; }

// Hypertension and diabetes under basic public-health management: quarterly follow-ups over two
// years (RULES.md §2–3), a 2-week recheck after many uncontrolled readings, home readings for a
// share of patients with a device.
void HouseholdWriter::Chronic(Person& p, const Village& v) {
  std::vector<std::string> reasons;
  int64_t onset_floor = AddYears(p.birth_day, std::max(25, p.age - 20));
  int64_t onset = rng_.Int(std::min(onset_floor, run_.as_of - 30), run_.as_of - 30);
  if (p.htn_dx) {
    reasons.push_back(EmitCondition(p, "I10", "Essential (primary) hypertension", "38341003",
                                    "Hypertensive disorder, systemic arterial", "高血压", onset));
  }
  if (p.dm_dx) {
    int64_t dm_onset = rng_.Int(std::min(onset_floor, run_.as_of - 30), run_.as_of - 30);
    reasons.push_back(EmitCondition(p, "E11", "Type 2 diabetes mellitus", "44054006",
                                    "Diabetes mellitus type 2", "2型糖尿病", dm_onset));
    onset = std::min(onset, dm_onset);
  }
  const int sbp_target = p.age >= 65 ? 150 : 140;  // RULES.md §2 default for 65+
  int64_t first = std::max(run_.window_start, onset + 14);
  // Each patient has their own adherence: some miss many visits.
  double miss = rng_.Chance(0.15) ? 0.45 : 0.06;
  for (int q = 0; q < kHistoryDays / 91; ++q) {
    int64_t day = run_.window_start + q * 91 + rng_.Int(0, 80);
    if (day < first || day > run_.as_of || rng_.Chance(miss)) continue;
    for (int recheck = 0; recheck < 2; ++recheck) {
      std::string_view practitioner;
      std::string_view org = VisitOrg(v, &practitioner);
      int minute = static_cast<int>(rng_.Int(8 * 60, 11 * 60 + 30));
      std::string enc = EmitEncounter(p, day, minute, "chronic-follow-up", "慢性病随访", org,
                                      practitioner, "AMB", reasons, {});
      double shift = recheck ? -5.0 : 0.0;  // medication adjusted at the first visit
      int sbp = static_cast<int>(std::lround(rng_.Normal(p.sbp_mean + shift, 8)));
      if (rng_.Chance(0.003)) sbp = static_cast<int>(rng_.Int(180, 205));  // rare emergency
      int dbp = static_cast<int>(std::lround(0.55 * sbp + rng_.Normal(8, 5)));
      EmitBp(p, day, minute + 3, enc, sbp, dbp, false);
      bool uncontrolled = sbp >= sbp_target || dbp >= 90;
      if (p.dm_dx) {
        // Floored at 4.0: a low reading is the rare event below, not the tail of the noise.
        double g = Round1(std::max(4.0, rng_.Normal(p.glucose_mean + shift / 5.0, 0.9)));
        double e = rng_.Uniform();
        if (e < 0.003) g = Round1(rng_.Uniform(16.7, 22.0));  // rare hyperglycaemic emergency
        else if (e < 0.006) g = Round1(rng_.Uniform(2.8, 3.9));  // rare hypoglycaemia
        EmitLab(p, day, minute + 5, enc, kFastingGlucoseLoinc, "Fasting glucose [Moles/volume] in Serum or Plasma",
                "空腹血糖", g, "mmol/L", "laboratory", false);
        uncontrolled = uncontrolled || g >= 7.0;
      }
      if (!uncontrolled || recheck == 1 || !rng_.Chance(0.5)) break;
      day += rng_.Int(10, 14);
      if (day > run_.as_of) break;
    }
  }
  if (p.htn_dx && rng_.Chance(0.2)) {
    for (int64_t day = run_.as_of - 84 + rng_.Int(0, 6); day <= run_.as_of; day += 7) {
      int sbp = static_cast<int>(std::lround(rng_.Normal(p.sbp_mean - 4, 9)));
      if (rng_.Chance(0.003)) sbp = static_cast<int>(rng_.Int(180, 200));
      EmitBp(p, day, static_cast<int>(rng_.Int(6 * 60 + 30, 7 * 60 + 30)), {}, sbp,
             static_cast<int>(std::lround(0.55 * sbp + rng_.Normal(8, 5))), true);
    }
  }
  if (p.dm_dx && rng_.Chance(0.15)) {
    for (int64_t day = run_.as_of - 84 + rng_.Int(0, 6); day <= run_.as_of; day += 7) {
      double g = Round1(std::max(4.0, rng_.Normal(p.glucose_mean, 1.1)));
      EmitLab(p, day, static_cast<int>(rng_.Int(6 * 60, 7 * 60)), {}, "14743-9",
              "Glucose [Moles/volume] in Capillary blood by Glucometer", "指尖血糖", g, "mmol/L",
              "laboratory", true);
    }
  }
}

// 老年人健康管理 (RULES.md §5): a yearly check with physical exam and tests at the township
// centre; about two thirds of the 65+ attend in a given year.
void HouseholdWriter::Elderly(Person& p, const Village& v) {
  const Township& t = dir_.townships[static_cast<std::size_t>(v.township)];
  for (int year = 0; year < 2; ++year) {
    if (p.age - (1 - year) < 65 || !rng_.Chance(0.65)) continue;
    int64_t day = run_.window_start + year * 365 + rng_.Int(60, 300);
    if (day > run_.as_of) continue;
    std::string_view gp = Pick(t.gps);
    int minute = static_cast<int>(rng_.Int(7 * 60 + 30, 10 * 60));
    std::string enc = EmitEncounter(p, day, minute, "elderly-annual-check", "老年人健康体检",
                                    t.org_id, gp, "AMB", {}, {});
    int sbp = static_cast<int>(std::lround(rng_.Normal(p.sbp_mean, 8)));
    EmitBp(p, day, minute + 5, enc, sbp, static_cast<int>(std::lround(0.55 * sbp + rng_.Normal(8, 5))),
           false);
    int m = minute + 20;
    EmitLab(p, day, m, enc, kFastingGlucoseLoinc, "Fasting glucose [Moles/volume] in Serum or Plasma",
            "空腹血糖", Round1(std::max(4.0, rng_.Normal(p.glucose_mean, p.dm ? 0.9 : 0.35))), "mmol/L",
            "laboratory", false);
    double tc = std::max(2.5, rng_.Normal(4.9, 0.9));
    EmitLab(p, day, m, enc, "14647-2", "Cholesterol [Moles/volume] in Serum or Plasma", "总胆固醇",
            Round2(tc), "mmol/L", "laboratory", false);
    EmitLab(p, day, m, enc, "14927-8", "Triglyceride [Moles/volume] in Serum or Plasma",
            "甘油三酯", Round2(std::exp(rng_.Normal(0.3, 0.45))), "mmol/L", "laboratory", false);
    EmitLab(p, day, m, enc, "22748-8", "Cholesterol in LDL [Moles/volume] in Serum or Plasma",
            "低密度脂蛋白胆固醇", Round2(std::max(0.8, 0.62 * tc + rng_.Normal(0, 0.3))), "mmol/L",
            "laboratory", false);
    EmitLab(p, day, m, enc, "14646-4", "Cholesterol in HDL [Moles/volume] in Serum or Plasma",
            "高密度脂蛋白胆固醇", Round2(std::max(0.5, rng_.Normal(1.3, 0.3))), "mmol/L",
            "laboratory", false);
    EmitLab(p, day, m, enc, "14682-9", "Creatinine [Moles/volume] in Serum or Plasma", "肌酐",
            std::round(std::max(35.0, rng_.Normal(p.male ? 85 : 66, 16))), "umol/L", "laboratory",
            false);
    EmitLab(p, day, m, enc, "1742-6",
            "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "谷丙转氨酶",
            std::round(std::exp(rng_.Normal(2.9, 0.4))), "U/L", "laboratory", false);
    EmitLab(p, day, m, enc, "718-7", "Hemoglobin [Mass/volume] in Blood", "血红蛋白",
            std::round(rng_.Normal(p.male ? 138 : 124, 12)), "g/L", "laboratory", false);
  }
}

// 孕产妇健康管理 (RULES.md §6): booking (早孕建册, most before 13 weeks), antenatal visits in the
// four windows, risk colour at booking; after delivery a home visit in 3–7 days and the 42-day
// check. `delivered` < 0 for an ongoing pregnancy.
void HouseholdWriter::Pregnancy(const Person& p, const Village& v, int64_t lmp, int64_t delivered) {
  const Township& t = dir_.townships[static_cast<std::size_t>(v.township)];
  int64_t end = delivered >= 0 ? delivered : run_.as_of;
  int64_t booking = lmp + 7 * (rng_.Chance(0.9) ? rng_.Int(6, 12) : rng_.Int(13, 20));
  if (booking > end) return;  // not yet known to the health system
  std::string episode = Uuid();
  {
    json::object r;
    r.reserve(8);
    r.emplace("resourceType", "EpisodeOfCare");
    r.emplace("id", episode);
    r.emplace("status", delivered >= 0 && delivered + 42 <= run_.as_of ? "finished" : "active");
    r.emplace("type", json::array{Concept(Coding(fmt::format("{}care-program", kLocalCs),
                                                 "maternal", "孕产妇健康管理"),
                                          "孕产妇健康管理")});
    r.emplace("patient", Reference("Patient", p.patient_id));
    r.emplace("managingOrganization", Reference("Organization", t.org_id));
    json::object period{{"start", DateText(booking)}};
    if (delivered >= 0 && delivered + 42 <= run_.as_of) period.emplace("end", DateText(delivered + 42));
    r.emplace("period", std::move(period));
    out_.push_back(std::move(r));
  }
  std::string_view gp = Pick(t.gps);
  int minute = static_cast<int>(rng_.Int(8 * 60, 11 * 60));
  std::string enc = EmitEncounter(p, booking, minute, "antenatal-booking", "早孕建册", t.org_id, gp,
                                  "AMB", {}, episode);
  {
    json::object r = ObservationHead(Uuid(), "social-history", "Social History");
    r.emplace("code", Concept(Coding(kLoinc, "82810-3", "Pregnancy status"), "妊娠状态"));
    r.emplace("subject", Reference("Patient", p.patient_id));
    r.emplace("encounter", Reference("Encounter", enc));
    r.emplace("effectiveDateTime", DateTimeText(booking, minute + 5));
    r.emplace("valueCodeableConcept", Concept(Coding(kLoinc, "LA15173-0", "Pregnant"), "已孕"));
    out_.push_back(std::move(r));
  }
  {
    json::object r = ObservationHead(Uuid(), "exam", "Exam");
    r.emplace("code", Concept(Coding(kLoinc, "11778-8", "Delivery date Estimated"), "预产期"));
    r.emplace("subject", Reference("Patient", p.patient_id));
    r.emplace("encounter", Reference("Encounter", enc));
    r.emplace("effectiveDateTime", DateTimeText(booking, minute + 6));
    r.emplace("valueDateTime", DateText(lmp + 280));
    out_.push_back(std::move(r));
  }
  {
    // Five-colour grading: age drives yellow/orange; the rest follows the rough shares county
    // reports give (most green, a few percent orange, red rare, purple ≈ 1–2% with HBV).
    int age = AgeOn(p.birth_day, booking);
    std::string_view colour = "green", display = "绿色（低风险）";
    double r = rng_.Uniform();
    if (age >= 40 || r < 0.06) {
      colour = "orange"; display = "橙色（较高风险）";
    } else if (age >= 35 || age <= 18 || r < 0.28) {
      colour = "yellow"; display = "黄色（一般风险）";
    }
    if (r > 0.995) { colour = "red"; display = "红色（高风险）"; }
    if (r > 0.30 && r < 0.315) { colour = "purple"; display = "紫色（传染性疾病）"; }
    json::object o = ObservationHead(Uuid(), "exam", "Exam");
    o.emplace("code", Concept(Coding(fmt::format("{}observation-code", kLocalCs),
                                     "maternal-risk-colour", "孕产妇妊娠风险分级"),
                              "妊娠风险分级"));
    o.emplace("subject", Reference("Patient", p.patient_id));
    o.emplace("encounter", Reference("Encounter", enc));
    o.emplace("effectiveDateTime", DateTimeText(booking, minute + 8));
    o.emplace("valueCodeableConcept",
              Concept(Coding(fmt::format("{}maternal-risk-colour", kLocalCs), colour, display)));
    out_.push_back(std::move(o));
  }
  static constexpr int kWindows[4][2] = {{16, 20}, {21, 24}, {28, 36}, {37, 40}};
  for (const auto& w : kWindows) {
    int64_t day = lmp + 7 * rng_.Int(w[0], w[1]) + rng_.Int(0, 6);
    if (day <= booking || day >= end || !rng_.Chance(0.92)) continue;
    bool hospital = w[0] >= 28;  // late antenatal care moves to the MCH hospital
    std::string_view org = hospital ? std::string_view(dir_.mch_id) : std::string_view(t.org_id);
    std::string_view doc = hospital ? Pick(dir_.mch_doctors) : Pick(t.gps);
    int m = static_cast<int>(rng_.Int(8 * 60, 11 * 60));
    std::string e = EmitEncounter(p, day, m, "antenatal-visit", "产前随访", org, doc, "AMB", {}, episode);
    int sbp = static_cast<int>(std::lround(rng_.Normal(112, 10)));
    EmitBp(p, day, m + 4, e, sbp, static_cast<int>(std::lround(0.6 * sbp + rng_.Normal(4, 5))), false);
  }
  if (delivered < 0) return;
  int64_t home = delivered + rng_.Int(3, 7);
  if (home <= run_.as_of && rng_.Chance(0.9)) {
    EmitEncounter(p, home, static_cast<int>(rng_.Int(9 * 60, 16 * 60)), "postpartum-home-visit",
                  "产后访视", t.org_id, Pick(t.nurses), "HH", {}, episode);
  }
  int64_t check = delivered + 42 + rng_.Int(0, 7);
  if (check <= run_.as_of && rng_.Chance(0.85)) {
    EmitEncounter(p, check, static_cast<int>(rng_.Int(8 * 60, 11 * 60)), "postpartum-42d-check",
                  "产后42天健康检查", t.org_id, Pick(t.gps), "AMB", {}, episode);
  }
}

struct VaccineDose {
  std::string_view code;
  std::string_view display;
  int dose;
  int months;  // age the dose falls due; 0 = at birth
};

// National immunization programme, 2021 edition (RULES.md §7). DTaP doses follow the 2025
// schedule (2, 4, 6, 18 months) for children born from 2024-11-01, whose first dose fell due
// after the change; DT at 6 years stays with the old schedule.
constexpr VaccineDose kSchedule[] = {
    {"HepB", "乙肝疫苗", 1, 0},      {"BCG", "卡介苗", 1, 0},       {"HepB", "乙肝疫苗", 2, 1},
    {"IPV", "脊灰灭活疫苗", 1, 2},   {"IPV", "脊灰灭活疫苗", 2, 3}, {"bOPV", "二价脊灰减毒活疫苗", 3, 4},
    {"DTaP", "百白破疫苗", 1, 3},    {"DTaP", "百白破疫苗", 2, 4},  {"DTaP", "百白破疫苗", 3, 5},
    {"HepB", "乙肝疫苗", 3, 6},      {"MPSV-A", "A群流脑多糖疫苗", 1, 6},
    {"MMR", "麻腮风疫苗", 1, 8},     {"JE-L", "乙脑减毒活疫苗", 1, 8},
    {"MPSV-A", "A群流脑多糖疫苗", 2, 9}, {"DTaP", "百白破疫苗", 4, 18},
    {"MMR", "麻腮风疫苗", 2, 18},    {"HepA-L", "甲肝减毒活疫苗", 1, 18},
    {"JE-L", "乙脑减毒活疫苗", 2, 24}, {"MPSV-AC", "A群C群流脑多糖疫苗", 1, 36},
    {"bOPV", "二价脊灰减毒活疫苗", 4, 48}, {"DT", "白破疫苗", 1, 72},
    {"MPSV-AC", "A群C群流脑多糖疫苗", 2, 72},
};

void HouseholdWriter::Immunizations(const Person& p, const Village& v) {
  const Township& t = dir_.townships[static_cast<std::size_t>(v.township)];
  const bool new_dtap = p.birth_day >= DayNumber(2024, 11, 1);
  const bool defaulter = rng_.Chance(0.05);  // families that fall behind on many doses
  std::vector<std::pair<std::string_view, int64_t>> last;  // vaccine → last dose day
  for (const auto& d : kSchedule) {
    int months = d.months;
    if (d.code == "DTaP" && new_dtap) months = d.dose == 4 ? 18 : 2 * d.dose;
    if (d.code == "DT" && new_dtap) continue;
    int64_t due = AddMonths(p.birth_day, months);
    if (due > run_.as_of) continue;
    if (rng_.Chance(defaulter ? 0.25 : 0.015)) continue;  // a gap in the record
    int64_t delay;
    if (months == 0) {
      delay = rng_.Chance(0.97) ? 0 : rng_.Int(1, 3);
    } else if (defaulter) {
      delay = rng_.Int(0, 90);
    } else {
      double r = rng_.Uniform();
      delay = r < 0.7 ? rng_.Int(0, 7) : r < 0.95 ? rng_.Int(8, 30) : rng_.Int(31, 120);
    }
    int64_t day = due + delay;
    for (auto& [code, prev] : last) {
      if (code == d.code) day = std::max(day, prev + 28);  // minimum interval within a series
    }
    if (day > run_.as_of) continue;
    bool found = false;
    for (auto& [code, prev] : last) {
      if (code == d.code) { prev = day; found = true; }
    }
    if (!found) last.emplace_back(d.code, day);
    // Birth doses are given where the baby is born; the rest at the township's vaccination
    // clinic (预防接种门诊).
    std::string_view org = months == 0 ? std::string_view(dir_.mch_id) : std::string_view(t.org_id);
    json::object r;
    r.reserve(10);
    r.emplace("resourceType", "Immunization");
    r.emplace("id", Uuid());
    r.emplace("status", "completed");
    r.emplace("vaccineCode", Concept(Coding(kNipVaccineSystem, d.code, d.display), d.display));
    r.emplace("patient", Reference("Patient", p.patient_id));
    r.emplace("occurrenceDateTime", DateText(day));
    r.emplace("primarySource", true);
    r.emplace("lotNumber", fmt::format("{}{:05d}", CivilFromDays(day).y, rng_.Int(1, 99999)));
    r.emplace("performer", json::array{json::object{{"actor", Reference("Organization", org)}}});
    r.emplace("protocolApplied", json::array{json::object{{"series", "NIP-2021"},
                                                          {"doseNumberPositiveInt", d.dose}}});
    out_.push_back(std::move(r));
  }
}

// Child health checks 0–6 (RULES.md §7) with weight and length/height, and immunizations.
void HouseholdWriter::Child(std::vector<Person>& members, int i, const Village& v) {
  Person& p = members[static_cast<std::size_t>(i)];
  const Township& t = dir_.townships[static_cast<std::size_t>(v.township)];
  Immunizations(p, v);
  // Approximate WHO medians (both sexes) by age in months.
  static constexpr double kMonths[] = {0, 1, 3, 6, 8, 12, 18, 24, 30, 36, 48, 60, 72};
  static constexpr double kWeight[] = {3.3, 4.4, 6.2, 7.8, 8.5, 9.6, 10.9, 12.2, 13.3, 14.3, 16.3, 18.3, 20.5};
  static constexpr double kHeight[] = {50, 54, 61, 67, 70, 75, 82, 87, 92, 96, 103, 110, 116};
  static constexpr int kCheckDays[] = {7, 30};
  static constexpr int kCheckMonths[] = {3, 6, 8, 12, 18, 24, 30, 36, 48, 60, 72};
  const double z = rng_.Normal(p.male ? 0.3 : -0.3, 1.0);  // the child's own growth percentile
  auto check = [&](int64_t day, double months) {
    // A child's record covers the whole childhood, not only the two-year window.
    if (day > run_.as_of || !rng_.Chance(0.9)) return;
    std::size_t k = 1;
    while (k + 1 < std::size(kMonths) && kMonths[k] < months) ++k;
    double f = std::clamp((months - kMonths[k - 1]) / (kMonths[k] - kMonths[k - 1]), 0.0, 1.0);
    double w = kWeight[k - 1] + f * (kWeight[k] - kWeight[k - 1]);
    double h = kHeight[k - 1] + f * (kHeight[k] - kHeight[k - 1]);
    int minute = static_cast<int>(rng_.Int(8 * 60, 11 * 60));
    std::string enc = EmitEncounter(p, day, minute, "child-health-check", "儿童健康检查", t.org_id,
                                    Pick(t.gps), day - p.birth_day <= 30 ? "HH" : "AMB", {}, {});
    EmitLab(p, day, minute + 3, enc, "29463-7", "Body weight", "体重",
            Round1(w * (1 + 0.08 * z) + rng_.Normal(0, 0.1)), "kg", "vital-signs", false);
    EmitLab(p, day, minute + 4, enc, "8302-2", "Body height", "身长/身高",
            Round1(h * (1 + 0.03 * z) + rng_.Normal(0, 0.4)), "cm", "vital-signs", false);
  };
  for (int d : kCheckDays) check(p.birth_day + d + rng_.Int(0, 5), d / 30.44);
  for (int m : kCheckMonths) check(AddMonths(p.birth_day, m) + rng_.Int(0, 14), m);
}

void HouseholdWriter::EmitClinical(std::vector<Person>& members, int i, const Village& v) {
  Person& p = members[static_cast<std::size_t>(i)];
  if (p.htn_dx || p.dm_dx) Chronic(p, v);
  if (p.age >= 64) Elderly(p, v);
  if (p.age <= 6) {
    Child(members, i, v);
    // The mother's pregnancy with this child, when she lives here and it ended inside the window.
    if (p.mother >= 0 && p.birth_day >= run_.window_start) {
      Pregnancy(members[static_cast<std::size_t>(p.mother)], v, p.birth_day - rng_.Int(266, 287),
                p.birth_day);
    }
  }
}

void HouseholdWriter::Write(std::vector<Person>& members) {
  village_ = static_cast<int>(rng_.Weighted(dir_.village_weights, dir_.village_weight_total));
  Village& v = dir_.villages[static_cast<std::size_t>(village_)];
  const Surname& s = DrawSurname(rng_);
  household_surname_ = s.hanzi;
  household_surname_py_ = s.pinyin;
  for (Person& p : members) {
    int64_t latest = AddYears(run_.as_of, -p.age);
    int64_t earliest = AddYears(run_.as_of, -(p.age + 1)) + 1;
    p.birth_day = rng_.Int(earliest, latest);
    NamePerson(p);
    std::string_view region = dir_.info->code;
    if (!p.bloodline && rng_.Chance(0.2)) {
      auto m = MigrantBirthRegions();
      region = m[static_cast<std::size_t>(rng_.Int(0, static_cast<int64_t>(m.size()) - 1))];
    } else if (run_.city_county_codes.size() > 1 && rng_.Chance(0.05)) {
      region = run_.city_county_codes[static_cast<std::size_t>(
          rng_.Int(0, static_cast<int64_t>(run_.city_county_codes.size()) - 1))];
    }
    p.id_number = run_.ids.Allocate(region, p.birth_day, p.male);
    double phone_p = p.age < 15 ? 0.0 : p.age < 65 ? 0.95 : p.age < 75 ? 0.75 : 0.5;
    if (rng_.Chance(phone_p)) p.phone = Phone();
    p.patient_id = Uuid();
    p.record_no = fmt::format("{}{:05d}", v.code12, v.next_record++ % 100000);
    p.htn = rng_.Chance(HypertensionPrevalence(p.age));
    p.htn_dx = p.htn && rng_.Chance(kHypertensionAwareness);
    p.dm = rng_.Chance(DiabetesPrevalence(p.age));
    p.dm_dx = p.dm && rng_.Chance(kDiabetesAwareness);
    // Treated patients sit around the target (≈ half controlled per visit, as county control
    // rates of 40–60% report); untreated ones above it; others drift up slowly with age.
    if (p.htn_dx) {
      p.sbp_mean = rng_.Normal(p.age >= 65 ? 143 : 137, 11);
    } else if (p.htn) {
      p.sbp_mean = rng_.Normal(150, 9);
    } else {
      p.sbp_mean = std::min(134.0, rng_.Normal(112 + 0.3 * std::max(0, p.age - 30), 8));
    }
    if (p.dm_dx) {
      p.glucose_mean = std::max(5.2, rng_.Normal(7.3, 1.5));
    } else if (p.dm) {
      p.glucose_mean = rng_.Normal(7.9, 0.9);
    } else {
      p.glucose_mean = std::min(6.0, rng_.Normal(5.1, 0.45));
    }
  }
  for (const Person& p : members) EmitPatient(p, v);
  {
    // The household (户): one Group so contracts and visits can address the family as a unit
    // without N² RelatedPerson resources that would duplicate each member's identity.
    const Person& head = members.front();
    json::object g;
    g.reserve(10);
    g.emplace("resourceType", "Group");
    g.emplace("id", Uuid());
    g.emplace("identifier",
              json::array{json::object{
                  {"system", "https://jiceng.example/fhir/sid/household-no"},
                  {"value", fmt::format("{}{:05d}", v.code12, v.next_record % 100000)}}});
    g.emplace("active", true);
    g.emplace("type", "person");
    g.emplace("actual", true);
    g.emplace("code", Concept(Coding(fmt::format("{}group-type", kLocalCs), "household", "家庭户"),
                              "家庭户"));
    g.emplace("name", fmt::format("{}{}户", head.family, head.given));
    g.emplace("quantity", static_cast<int64_t>(members.size()));
    g.emplace("managingEntity", Reference("Organization", v.org_id));
    json::array m;
    m.reserve(members.size());
    for (const Person& p : members) {
      m.emplace_back(json::object{{"entity", Reference("Patient", p.patient_id)}});
    }
    g.emplace("member", std::move(m));
    out_.push_back(std::move(g));
  }
  for (int i = 0; i < static_cast<int>(members.size()); ++i) EmitClinical(members, i, v);
  // Ongoing pregnancies: ≈ 6.4 births per 1,000 residents a year (2023 national birth rate,
  // 国家统计局), so about 3.7% of women 20–44 are pregnant past the booking weeks at any time.
  for (const Person& p : members) {
    if (p.male || p.age < 20 || p.age > 44) continue;
    bool infant = false;
    for (const Person& c : members) {
      if (c.mother >= 0 && &members[static_cast<std::size_t>(c.mother)] == &p && c.age < 1) infant = true;
    }
    if (infant || !rng_.Chance(0.037)) continue;
    Pregnancy(p, v, run_.as_of - rng_.Int(5 * 7, 40 * 7), -1);
  }
  const double dup_rate = run_.options->dup_rate;
  for (const Person& p : members) {
    if (dup_rate > 0 && rng_.Chance(dup_rate)) EmitDuplicate(p, v);
  }
  batch_.residents += static_cast<int64_t>(members.size());
}

// ---------------------------------------------------------------------------------------------
// Household formation from the age pool.

std::vector<Person> FormHousehold(AgePool& pool, Rng& rng) {
  std::vector<Person> hh;
  auto take = [&](int sex, int lo, int hi, bool bloodline) -> int {
    Person p;
    if (!pool.Take(rng, sex, lo, hi, p.age, p.male)) return -1;
    p.bloodline = bloodline;
    hh.push_back(std::move(p));
    return static_cast<int>(hh.size()) - 1;
  };
  if (pool.CountRange(0, 17) > 0) {
    // A household built around children: parents, or grandparents when the parents work away
    // (留守儿童, common in rural counties), sometimes both.
    take(-1, 0, 17, true);
    int young = hh[0].age, old = hh[0].age;
    double sib = rng.Uniform();
    int siblings = sib < 0.08 ? 2 : sib < 0.45 ? 1 : 0;
    for (int k = 0; k < siblings; ++k) {
      if (take(-1, std::max(0, hh[0].age - 8), std::min(17, hh[0].age + 8), true) >= 0) {
        young = std::min(young, hh.back().age);
        old = std::max(old, hh.back().age);
      }
    }
    const int children = static_cast<int>(hh.size());
    double r = rng.Uniform();
    int mother = -1;
    if (r < 0.62 || r >= 0.85) {
      mother = take(0, old + 20, young + 42, false);
      if (r < 0.62) {
        int ma = mother >= 0 ? hh[static_cast<std::size_t>(mother)].age : old + 28;
        take(1, ma - 2, ma + 8, true);
      }
      if (rng.Chance(0.35)) take(-1, old + 45, young + 75, true);
    } else {
      int gm = take(0, old + 40, young + 72, false);
      int ga = gm >= 0 ? hh[static_cast<std::size_t>(gm)].age : old + 55;
      if (rng.Chance(0.75)) take(1, ga - 3, ga + 6, true);
    }
    if (static_cast<int>(hh.size()) == children) take(-1, old + 18, 100, true);  // any carer
    for (int k = 0; k < children; ++k) hh[static_cast<std::size_t>(k)].mother = mother;
    // The first adult heads the household in the Group name; children stay listed first.
    std::rotate(hh.begin(), hh.begin() + children, hh.end());
    for (auto& p : hh) {
      if (p.mother >= 0) p.mother -= children;
    }
    return hh;
  }
  take(-1, 18, 100, true);
  if (hh.empty()) return hh;
  const int head_age = hh[0].age;
  const bool head_male = hh[0].male;
  double married = head_age < 23 ? 0.1 : head_age < 30 ? 0.55 : head_age < 65 ? 0.88
                 : head_age < 80 ? 0.7 : 0.45;
  if (rng.Chance(married)) {
    if (head_male) take(0, head_age - 8, head_age + 2, false);
    else take(1, head_age - 2, head_age + 8, false);
  }
  if (head_age >= 45 && head_age < 65 && rng.Chance(0.2)) take(-1, head_age + 20, head_age + 40, true);
  if (head_age >= 60 && rng.Chance(0.1)) take(-1, std::max(18, head_age - 40), head_age - 20, true);
  if (head_age < 30 && rng.Chance(0.4)) {
    take(0, head_age + 20, head_age + 35, false);
    take(1, head_age + 20, head_age + 38, true);
  }
  return hh;
}

// ---------------------------------------------------------------------------------------------
// The directory: institutions, staff and teams with fixed ids.

// 统一社会信用代码 (GB 32100-2015): registration authority + type, 6-digit region, 9-character
// organization code (GB 11714, own check digit), and a mod-31 check character.
std::string SocialCreditCode(std::string_view kind2, std::string_view region, Rng& rng) {
  static constexpr std::string_view kChars = "0123456789ABCDEFGHJKLMNPQRTUWXY";
  std::string org = fmt::format("{:08d}", rng.Int(0, 99999999));
  static constexpr int kOrgW[8] = {3, 7, 9, 10, 5, 8, 4, 2};
  int s = 0;
  for (int i = 0; i < 8; ++i) s += (org[static_cast<std::size_t>(i)] - '0') * kOrgW[i];
  int c9 = 11 - s % 11;
  org.push_back(c9 == 10 ? 'X' : c9 == 11 ? '0' : static_cast<char>('0' + c9));
  std::string code = std::string(kind2) + std::string(region) + org;
  static constexpr int kW[17] = {1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28};
  int sum = 0;
  for (int i = 0; i < 17; ++i) {
    sum += static_cast<int>(kChars.find(code[static_cast<std::size_t>(i)])) * kW[i];
  }
  int c = (31 - sum % 31) % 31;
  code.push_back(kChars[static_cast<std::size_t>(c)]);
  return code;
}

class DirectoryBuilder {
 public:
  DirectoryBuilder(RunState& run, Rng& rng, std::vector<json::object>& out)
      : run_(run), rng_(rng), out_(out) {}

  void Organization(std::string_view id, std::string_view name, std::string_view hl7_type,
                    std::string_view local_type, std::string_view local_display,
                    std::string_view part_of, std::string_view region,
                    std::string_view division12, const CountyInfo& c, std::string_view line,
                    bool uscc, std::string_view uscc_kind) {
    json::object r;
    r.reserve(10);
    r.emplace("resourceType", "Organization");
    r.emplace("id", id);
    json::array ids;
    if (uscc) {
      ids.emplace_back(json::object{{"system", "https://jiceng.example/fhir/sid/uscc"},
                                    {"value", SocialCreditCode(uscc_kind, region, rng_)}});
    }
    ids.emplace_back(json::object{{"system", "https://jiceng.example/fhir/sid/institution-code"},
                                  {"value", id.substr(4)}});
    r.emplace("identifier", std::move(ids));
    r.emplace("active", true);
    r.emplace("type",
              json::array{Concept2(Coding("http://terminology.hl7.org/CodeSystem/organization-type",
                                          hl7_type, hl7_type == "govt" ? "Government" : "Healthcare Provider"),
                                   Coding(fmt::format("{}institution-type", kLocalCs), local_type,
                                          local_display),
                                   local_display)});
    r.emplace("name", name);
    r.emplace("telecom", json::array{json::object{
                             {"system", "phone"},
                             {"value", fmt::format("0573-8{:07d}", rng_.Int(0, 9999999))},
                             {"use", "work"}}});
    json::object a;
    a.reserve(8);
    if (!division12.empty()) {
      a.emplace("extension",
                json::array{json::object{{"url", kDivisionCodeExtension}, {"valueCode", division12}}});
    }
    a.emplace("use", "work");
    a.emplace("text", fmt::format("{}{}{}{}", c.province, c.city, c.name, line));
    a.emplace("line", json::array{json::string(line)});
    a.emplace("city", c.city);
    a.emplace("district", c.name);
    a.emplace("state", c.province);
    a.emplace("postalCode", c.postal_code);
    a.emplace("country", "CN");
    r.emplace("address", json::array{std::move(a)});
    if (!part_of.empty()) r.emplace("partOf", Reference("Organization", part_of));
    out_.push_back(std::move(r));
  }

  // One practitioner and their role at `org`. kind: doctor | nurse | public-health | village.
  std::string Staff(std::string_view org, std::string_view key, int n, std::string_view kind,
                    const CountyInfo& c) {
    std::string id = fmt::format("prac-{}-{}", key, n);
    bool male = rng_.Chance(kind == "nurse" ? 0.05 : kind == "village" ? 0.75 : 0.55);
    int age = static_cast<int>(kind == "village" ? rng_.Int(35, 68) : rng_.Int(26, 58));
    int64_t birth = AddYears(run_.as_of, -age) - rng_.Int(0, 364);
    const Surname& s = DrawSurname(rng_);
    auto chars = GivenChars(male, CivilFromDays(birth).y < 1980);
    const NameChar& g1 = chars[static_cast<std::size_t>(rng_.Int(0, static_cast<int64_t>(chars.size()) - 1))];
    const NameChar& g2 = chars[static_cast<std::size_t>(rng_.Int(0, static_cast<int64_t>(chars.size()) - 1))];
    std::string given = std::string(g1.hanzi) + std::string(g2.hanzi);
    std::string py;
    AppendSyllable(py, g1.pinyin);
    AppendSyllable(py, g2.pinyin);
    std::string id_number = run_.ids.Allocate(c.code, birth, male);

    json::object r;
    r.reserve(9);
    r.emplace("resourceType", "Practitioner");
    r.emplace("id", id);
    r.emplace("identifier",
              json::array{json::object{{"system", registry::kResidentIdSystem}, {"value", id_number}},
                          json::object{{"system", "https://jiceng.example/fhir/sid/practitioner-licence"},
                                       {"value", fmt::format("1{:02d}{}{:06d}", rng_.Int(10, 24),
                                                             c.code, rng_.Int(0, 999999))}}});
    r.emplace("active", true);
    json::array names;
    names.emplace_back(json::object{{"use", "official"},
                                    {"text", std::string(s.hanzi) + given},
                                    {"family", s.hanzi},
                                    {"given", json::array{json::string(given)}}});
    names.emplace_back(json::object{{"use", "usual"},
                                    {"text", std::string(s.pinyin) + " " + Capitalized(py)},
                                    {"family", s.pinyin},
                                    {"given", json::array{json::string(Capitalized(py))}}});
    r.emplace("name", std::move(names));
    r.emplace("telecom", json::array{json::object{{"system", "phone"},
                                                  {"value", fmt::format("139{:08d}", rng_.Int(0, 99999999))},
                                                  {"use", "mobile"}}});
    r.emplace("gender", male ? "male" : "female");
    r.emplace("birthDate", DateText(birth));
    std::string_view q_code = kind == "nurse" ? "nurse" : kind == "village" ? "rural-doctor" : "physician";
    std::string_view q_display = kind == "nurse" ? "护士" : kind == "village" ? "乡村医生" : "执业医师";
    r.emplace("qualification",
              json::array{json::object{{"code", Concept(Coding(fmt::format("{}qualification", kLocalCs),
                                                               q_code, q_display),
                                                        q_display)}}});
    out_.push_back(std::move(r));

    std::string_view role_display = kind == "nurse"           ? "护士"
                                    : kind == "village"       ? "乡村医生"
                                    : kind == "public-health" ? "公共卫生医师"
                                    : kind == "gp"            ? "家庭医生（全科医生）"
                                                              : "临床医师";
    json::object role;
    role.reserve(6);
    role.emplace("resourceType", "PractitionerRole");
    role.emplace("id", fmt::format("role-{}-{}", key, n));
    role.emplace("active", true);
    role.emplace("practitioner", Reference("Practitioner", id));
    role.emplace("organization", Reference("Organization", org));
    role.emplace("code", json::array{Concept(
                             Coding("http://terminology.hl7.org/CodeSystem/practitioner-role",
                                    kind == "nurse" ? "nurse" : "doctor",
                                    kind == "nurse" ? "Nurse" : "Doctor"),
                             role_display)});
    out_.push_back(std::move(role));
    return id;
  }

 private:
  RunState& run_;
  Rng& rng_;
  std::vector<json::object>& out_;
};

std::string PlaceName(Rng& rng, std::set<std::string>& used, std::string_view suffix) {
  auto a = PlaceFirst();
  auto b = PlaceSecond();
  for (int attempt = 0;; ++attempt) {
    std::string name = std::string(a[static_cast<std::size_t>(rng.Int(0, static_cast<int64_t>(a.size()) - 1))]) +
                       std::string(b[static_cast<std::size_t>(rng.Int(0, static_cast<int64_t>(b.size()) - 1))]);
    if (attempt > 30) name += std::to_string(attempt);
    name += suffix;
    if (used.insert(name).second) return name;
  }
}

CountyDirectory BuildDirectory(RunState& run, int county, Rng& rng, std::vector<json::object>& out,
                               std::set<std::string>& cities_done) {
  const GeneratorOptions& o = *run.options;
  const CountyInfo& c = Counties()[static_cast<std::size_t>(county)];
  CountyDirectory d;
  d.info = &c;
  DirectoryBuilder b(run, rng, out);
  std::string code(c.code);
  std::string city_id;
  if (o.counties > 1) {
    city_id = fmt::format("org-{}-wjw", c.city_code);
    if (cities_done.insert(city_id).second) {
      b.Organization(city_id, fmt::format("{}卫生健康委员会", c.city), "govt", "health-commission",
                     "卫生健康委员会", {}, fmt::format("{}00", c.city_code), {}, c, "人民路1号", true, "11");
    }
  }
  d.bureau_id = fmt::format("org-{}-wjw", code);
  b.Organization(d.bureau_id, fmt::format("{}卫生健康局", c.name), "govt", "health-commission",
                 "卫生健康局", city_id, code, {}, c, "县前街8号", true, "11");
  d.community_id = fmt::format("org-{}-ygt", code);
  b.Organization(d.community_id, fmt::format("{}医共体", c.name), "prov", "medical-community",
                 "县域医共体", d.bureau_id, code, {}, c, "解放路88号", true, "12");
  d.hospital_id = fmt::format("org-{}-rmyy", code);
  b.Organization(d.hospital_id, fmt::format("{}人民医院", c.name), "prov", "county-hospital",
                 "县级综合医院", d.community_id, code, {}, c, "解放路88号", true, "12");
  d.tcm_id = fmt::format("org-{}-zyy", code);
  b.Organization(d.tcm_id, fmt::format("{}中医医院", c.name), "prov", "tcm-hospital", "中医医院",
                 d.community_id, code, {}, c, "健康路18号", true, "12");
  d.mch_id = fmt::format("org-{}-fybjy", code);
  b.Organization(d.mch_id, fmt::format("{}妇幼保健院", c.name), "prov", "mch-hospital",
                 "妇幼保健院", d.community_id, code, {}, c, "花园路6号", true, "12");
  std::set<std::string> names;
  for (int t = 0; t < o.townships_per_county; ++t) {
    Township tw;
    bool xiang = rng.Chance(0.2);  // some townships are 乡 rather than 镇
    tw.code9 = fmt::format("{}{:03d}", code, xiang ? 200 + t : 100 + t);
    tw.name = PlaceName(rng, names, xiang ? "乡" : "镇");
    tw.org_id = fmt::format("org-{}", tw.code9);
    b.Organization(tw.org_id, tw.name + "卫生院", "prov", "township-health-centre", "乡镇卫生院",
                   d.community_id, code, fmt::format("{}000", tw.code9), c,
                   tw.name + "中心街1号", true, "12");
    d.townships.push_back(std::move(tw));
  }
  for (int t = 0; t < o.townships_per_county; ++t) {
    Township& tw = d.townships[static_cast<std::size_t>(t)];
    for (int k = 0; k < o.villages_per_township; ++k) {
      Village v;
      v.code12 = fmt::format("{}{:03d}", tw.code9, 200 + k);  // 2xx: 村委会 in 统计用区划代码
      v.name = PlaceName(rng, names, "村");
      v.org_id = fmt::format("org-{}", v.code12);
      v.township = t;
      b.Organization(v.org_id, v.name + "卫生室", "prov", "village-clinic", "村卫生室", tw.org_id,
                     code, v.code12, c, tw.name + v.name + "村委会旁", false, {});
      d.villages.push_back(std::move(v));
      // Village sizes vary a lot (a few hundred to several thousand residents).
      d.village_weights.push_back(std::exp(rng.Normal(0, 0.5)));
    }
  }
  for (double w : d.village_weights) d.village_weight_total += w;
  // Staff, after every organization so each role's organization already exists.
  for (int i = 0; i < 16; ++i) {
    std::string id = b.Staff(d.hospital_id, code + "-rmyy", i + 1, i < 12 ? "doctor" : "nurse", c);
    if (i < 12) d.hospital_doctors.push_back(id);
  }
  for (int i = 0; i < 8; ++i) {
    std::string id = b.Staff(d.tcm_id, code + "-zyy", i + 1, i < 6 ? "doctor" : "nurse", c);
    if (i < 6) d.tcm_doctors.push_back(id);
  }
  for (int i = 0; i < 8; ++i) {
    std::string id = b.Staff(d.mch_id, code + "-fybjy", i + 1, i < 6 ? "doctor" : "nurse", c);
    if (i < 6) d.mch_doctors.push_back(id);
  }
  for (auto& tw : d.townships) {
    int n = 0;
    for (int i = 0; i < 3; ++i) tw.gps.push_back(b.Staff(tw.org_id, tw.code9, ++n, "gp", c));
    for (int i = 0; i < 2; ++i) tw.nurses.push_back(b.Staff(tw.org_id, tw.code9, ++n, "nurse", c));
    for (int i = 0; i < 2; ++i) {
      tw.public_health.push_back(b.Staff(tw.org_id, tw.code9, ++n, "public-health", c));
    }
  }
  for (auto& v : d.villages) {
    v.doctor_id = b.Staff(v.org_id, v.code12, 1, "village", c);
    if (rng.Chance(0.3)) b.Staff(v.org_id, v.code12, 2, "village", c);
  }
  // Family-doctor teams (家庭医生团队): a GP leads, with a nurse, a public-health doctor and the
  // village doctors of a third of the township's villages.
  for (int t = 0; t < static_cast<int>(d.townships.size()); ++t) {
    const Township& tw = d.townships[static_cast<std::size_t>(t)];
    for (int k = 0; k < 3; ++k) {
      json::object team;
      team.reserve(6);
      team.emplace("resourceType", "CareTeam");
      team.emplace("id", fmt::format("team-{}-{}", tw.code9, k + 1));
      team.emplace("status", "active");
      team.emplace("name", fmt::format("{}卫生院家庭医生团队{}", tw.name, k + 1));
      json::array parts;
      auto add = [&](std::string_view role, std::string_view who) {
        parts.emplace_back(json::object{{"role", json::array{json::object{{"text", role}}}},
                                        {"member", Reference("Practitioner", who)}});
      };
      add("团队长", tw.gps[static_cast<std::size_t>(k)]);
      add("护士", tw.nurses[static_cast<std::size_t>(k % 2)]);
      add("公共卫生医师", tw.public_health[static_cast<std::size_t>(k % 2)]);
      for (const auto& v : d.villages) {
        if (v.township == t && (&v - d.villages.data()) % 3 == k) add("乡村医生", v.doctor_id);
      }
      team.emplace("participant", std::move(parts));
      team.emplace("managingOrganization", json::array{Reference("Organization", tw.org_id)});
      out.push_back(std::move(team));
    }
  }
  return d;
}

int AgeFromBand(Rng& rng, std::size_t band) {
  if (band < 17) return static_cast<int>(band) * 5 + static_cast<int>(rng.Int(0, 4));
  // 85+: a declining tail to 100.
  int a = 85 + static_cast<int>(std::floor(-std::log(1.0 - rng.Uniform()) * 4.5));
  return std::min(a, kMaxAge);
}

}  // namespace

Status ValidateOptions(const GeneratorOptions& o) {
  if (o.residents < 1 || o.residents > 100'000'000) return Invalid("--residents must be 1..100000000");
  if (o.counties < 1 || o.counties > static_cast<int>(Counties().size())) {
    return Invalid(fmt::format("--counties must be 1..{}", Counties().size()));
  }
  if (o.residents < o.counties) return Invalid("--residents must be at least --counties");
  if (o.townships_per_county < 1 || o.townships_per_county > 99) return Invalid("townships 1..99");
  if (o.villages_per_township < 1 || o.villages_per_township > 199) return Invalid("villages 1..199");
  if (!(o.dup_rate >= 0 && o.dup_rate <= 0.5)) return Invalid("--dup-rate must be 0..0.5");
  if (o.batch_size < 1) return Invalid("--bundle-size must be positive");
  auto as_of = registry::CivilDate{};
  if (o.as_of.size() != 10 || std::sscanf(o.as_of.c_str(), "%4d-%2d-%2d", &as_of.year,
                                          &as_of.month, &as_of.day) != 3 ||
      !registry::IsValidCivilDate(as_of) || as_of.year < 2010 || as_of.year > 2099) {
    return Invalid("--as-of must be a date YYYY-MM-DD between 2010 and 2099");
  }
  return Status::Ok();
}

Status GenerateCounty(const GeneratorOptions& options, const BatchSink& sink,
                      const ProgressFn& progress) {
  JC_RETURN_IF_ERROR(ValidateOptions(options));
  RunState run;
  run.options = &options;
  registry::CivilDate d;
  std::sscanf(options.as_of.c_str(), "%4d-%2d-%2d", &d.year, &d.month, &d.day);
  run.as_of = DayNumber(d.year, d.month, d.day);
  run.window_start = run.as_of - kHistoryDays + 1;
  for (int c = 0; c < options.counties; ++c) run.city_county_codes.push_back(Counties()[static_cast<std::size_t>(c)].code);

  Progress prog;
  prog.residents_total = options.residents;
  std::set<std::string> cities_done;
  auto bands = AgeBandShares();
  double band_total = 0;
  for (double b : bands) band_total += b;

  for (int county = 0; county < options.counties; ++county) {
    prog.county = county;
    Rng county_rng(MixSeed(options.seed, 0xC0C0, static_cast<uint64_t>(county)));
    Batch directory;
    directory.kind = BatchKind::kDirectory;
    CountyDirectory dir = BuildDirectory(run, county, county_rng, directory.resources, cities_done);
    prog.stage = "directory";
    prog.resources_done += static_cast<int64_t>(directory.resources.size());
    JC_RETURN_IF_ERROR(sink(std::move(directory)));
    if (progress) progress(prog);

    int64_t n = options.residents / options.counties +
                (county < options.residents % options.counties ? 1 : 0);
    AgePool pool;
    for (int64_t i = 0; i < n; ++i) {
      int age = AgeFromBand(county_rng, county_rng.Weighted(bands, band_total));
      pool.Add(county_rng.Chance(MaleShareAtAge(age)), age);
    }
    prog.stage = "residents";
    Batch batch;
    uint64_t household = 0;
    while (pool.total() > 0) {
      std::vector<Person> members = FormHousehold(pool, county_rng);
      if (members.empty()) break;
      Rng hh_rng(MixSeed(options.seed, static_cast<uint64_t>(county) + 1, household++));
      HouseholdWriter writer(run, dir, hh_rng, batch);
      writer.Write(members);
      if (static_cast<int>(batch.resources.size()) >= options.batch_size) {
        prog.residents_done += batch.residents;
        prog.resources_done += static_cast<int64_t>(batch.resources.size());
        JC_RETURN_IF_ERROR(sink(std::move(batch)));
        batch = Batch();
        if (progress) progress(prog);
      }
    }
    if (!batch.resources.empty()) {
      prog.residents_done += batch.residents;
      prog.resources_done += static_cast<int64_t>(batch.resources.size());
      JC_RETURN_IF_ERROR(sink(std::move(batch)));
      if (progress) progress(prog);
    }
  }
  return Status::Ok();
}

}  // namespace jiceng::generator
