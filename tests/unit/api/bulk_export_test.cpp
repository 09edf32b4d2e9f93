// $export (FHIR Bulk Data: system, Patient and Group level) through FhirApi in process: kick-off,
// polling, the manifest and its NDJSON files, _type and _since, cancelling, and the errors of a
// bad request; on each backend (api_fixture.h).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "api_fixture.h"
#include "base/time.h"
#include "fhir/definitions.h"

namespace jiceng::api {
namespace {

namespace fs = std::filesystem;

class BulkExportTest : public testing::ApiTest {
 protected:
  // Polls a status URL until it is no longer 202 (at most ~10 s); returns the last response.
  Response Poll(const std::string& status_url) {
    Response r;
    for (int i = 0; i < 1000; ++i) {
      r = Call("GET", Target(status_url));
      if (r.status != 202) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return r;
  }
  static std::optional<std::string> HeaderOf(const Response& r, std::string_view name) {
    for (const auto& [k, v] : r.headers)
      if (k == name) return v;
    return std::nullopt;
  }
  // The ids of the resources in an NDJSON body, one line each.
  static std::vector<std::string> NdjsonIds(const std::string& body) {
    std::vector<std::string> ids;
    std::istringstream in(body);
    for (std::string line; std::getline(in, line);) {
      auto v = ParseJson(line);
      EXPECT_TRUE(v.ok() && v->is_object()) << line;
      if (v.ok()) ids.push_back(std::string(*FindString(v->get_object(), "id")));
    }
    return ids;
  }
  // Kicks off an export with `query`, waits for it, and returns the manifest.
  json::object Export(const std::string& query, const std::string& path = "/fhir/$export") {
    Response kick = Call("GET", path + query, {}, {{"prefer", "respond-async"}});
    EXPECT_EQ(kick.status, 202) << kick.body;
    auto status_url = HeaderOf(kick, "Content-Location");
    EXPECT_TRUE(status_url);
    if (!status_url) return {};
    Response done = Poll(*status_url);
    EXPECT_EQ(done.status, 200) << done.body;
    auto v = ParseJson(done.body);
    EXPECT_TRUE(v.ok() && v->is_object()) << done.body;
    last_status_url_ = *status_url;
    return v.ok() && v->is_object() ? v->get_object() : json::object{};
  }
  // Every exported resource of a manifest as "Type/id".
  std::set<std::string> Exported(const json::object& manifest) {
    std::set<std::string> got;
    for (const auto& f : manifest.at("output").as_array()) {
      const auto& fo = f.as_object();
      Response file = Call("GET", Target(std::string(fo.at("url").as_string())));
      EXPECT_EQ(file.status, 200);
      for (const auto& id : NdjsonIds(file.body))
        got.insert(std::string(fo.at("type").as_string()) + "/" + id);
    }
    return got;
  }
  std::string last_status_url_;
};

TEST_P(BulkExportTest, ExportsEveryTypeAsNdjsonFilesListedInTheManifest) {
  FhirApiOptions o;
  o.export_dir = dir_ + "/exports";
  o.export_file_resources = 2;  // three Observations: two files
  MakeApi(o);
  Seed();  // an Organization, two Practitioners, two Patients, an Encounter, four Observations
  Put(Obs("o5", "p2", "8867-4"));
  Call("DELETE", "/fhir/Observation/o5");  // deleted: not exported
  const json::object m = Export("");
  EXPECT_EQ(m.at("requiresAccessToken"), false);
  EXPECT_EQ(m.at("request"), "http://test/fhir/$export");
  EXPECT_TRUE(ParseDateTimeStart(std::string(m.at("transactionTime").as_string())).ok());
  std::map<std::string, std::vector<std::string>> ids;  // type → ids over its files
  std::map<std::string, int> files;
  for (const auto& f : m.at("output").as_array()) {
    const auto& fo = f.as_object();
    const std::string type(fo.at("type").as_string());
    Response file = Call("GET", Target(std::string(fo.at("url").as_string())));
    ASSERT_EQ(file.status, 200);
    EXPECT_EQ(file.content_type, "application/fhir+ndjson");
    auto got = NdjsonIds(file.body);
    EXPECT_EQ(static_cast<int64_t>(got.size()), fo.at("count").as_int64());
    EXPECT_LE(got.size(), 2u);
    ids[type].insert(ids[type].end(), got.begin(), got.end());
    ++files[type];
  }
  EXPECT_EQ(ids["Observation"], (std::vector<std::string>{"o1", "o2", "o3", "o4"}));
  EXPECT_EQ(files["Observation"], 2);
  EXPECT_EQ(ids["Patient"], (std::vector<std::string>{"p1", "p2"}));
  EXPECT_EQ(ids["Practitioner"], (std::vector<std::string>{"d1", "d2"}));
  EXPECT_EQ(ids["Organization"], std::vector<std::string>{"org1"});
  EXPECT_EQ(ids["Encounter"], std::vector<std::string>{"e1"});
  EXPECT_EQ(ids.size(), 5u);  // no file for a type without resources

  // DELETE on the status URL removes the job and its files.
  EXPECT_EQ(Call("DELETE", Target(last_status_url_)).status, 202);
  EXPECT_EQ(Call("GET", Target(last_status_url_)).status, 404);
  const auto& first = m.at("output").as_array()[0].as_object();
  EXPECT_EQ(Call("GET", Target(std::string(first.at("url").as_string()))).status, 404);
}

TEST_P(BulkExportTest, TypeAndSinceNarrowTheExport) {
  Seed();
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  const std::string since = FormatInstant(NowMicros());
  std::this_thread::sleep_for(std::chrono::milliseconds(5));
  Put(Obs("o9", "p1", "8867-4"));  // new since
  Put(R"({"resourceType":"Patient","id":"p2","name":[{"family":"Chen"}],"gender":"male"})");
  const json::object m = Export("?_type=Observation,Patient&_since=" + since);
  std::set<std::string> got;
  for (const auto& f : m.at("output").as_array()) {
    const auto& fo = f.as_object();
    Response file = Call("GET", Target(std::string(fo.at("url").as_string())));
    for (const auto& id : NdjsonIds(file.body))
      got.insert(std::string(fo.at("type").as_string()) + "/" + id);
  }
  EXPECT_EQ(got, (std::set<std::string>{"Observation/o9", "Patient/p2"}));
}

TEST_P(BulkExportTest, BadKickOffsAreRefusedWithAnOutcome) {
  // Without Prefer: respond-async.
  EXPECT_EQ(Call("GET", "/fhir/$export").status, 400);
  HeaderList async{{"prefer", "respond-async"}};
  EXPECT_EQ(Call("GET", "/fhir/$export?_type=Nonsense", {}, async).status, 400);
  EXPECT_EQ(Call("GET", "/fhir/$export?_since=yesterday", {}, async).status, 400);
  EXPECT_EQ(Call("GET", "/fhir/$export?_outputFormat=text/csv", {}, async).status, 400);
  EXPECT_EQ(Call("GET", "/fhir/$export?_typeFilter=Patient%3Fgender%3Dmale", {}, async).status,
            501);
  EXPECT_EQ(Call("GET", "/fhir/$export-poll-status/0123456789abcdef").status, 404);
  EXPECT_EQ(Call("DELETE", "/fhir/$export-poll-status/0123456789abcdef").status, 404);
  EXPECT_EQ(Call("GET", "/fhir/$export-file/0123456789abcdef/1.Patient.ndjson").status, 404);
  // The CapabilityStatement lists the operation.
  auto cs = Get("/fhir/metadata");
  const auto& ops = cs.at("rest").as_array()[0].as_object().at("operation").as_array();
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_EQ(ops[0].at("name"), "export");
}

}  // namespace
}  // namespace jiceng::api

namespace jiceng::api {
namespace {

// Patient level: every resource in some Patient's compartment, and nothing else (not the
// Organization or the Practitioners, not an Observation about a Group).
TEST_P(BulkExportTest, PatientLevelExportsThePatientCompartmentsOnly) {
  Seed();
  Put(R"({"resourceType":"Observation","id":"og","status":"final","code":{"text":"x"},
          "subject":{"reference":"Group/g1"}})");
  const json::object m = Export("", "/fhir/Patient/$export");
  EXPECT_EQ(m.at("request"), "http://test/fhir/Patient/$export");
  EXPECT_EQ(Exported(m),
            (std::set<std::string>{"Patient/p1", "Patient/p2", "Encounter/e1", "Observation/o1",
                                   "Observation/o2", "Observation/o3", "Observation/o4"}));
  // _type narrows within the compartment; a type outside it is refused.
  EXPECT_EQ(Exported(Export("?_type=Encounter", "/fhir/Patient/$export")),
            std::set<std::string>{"Encounter/e1"});
  Response outside =
      Call("GET", "/fhir/Patient/$export?_type=Organization", {}, {{"prefer", "respond-async"}});
  EXPECT_EQ(outside.status, 400) << outside.body;
  EXPECT_NE(outside.body.find("Patient compartment"), std::string::npos) << outside.body;
}

// Group level: the compartments of the Group's active Patient members. o4 is about p2 but
// performed by p1, so it is in p1's compartment too; so is the Group itself (R4: Group.member).
TEST_P(BulkExportTest, GroupLevelExportsItsActiveMembersCompartments) {
  Seed();
  Put(R"({"resourceType":"Group","id":"g1","type":"person","actual":true,"member":[
          {"entity":{"reference":"Patient/p1"}},
          {"entity":{"reference":"Patient/p2"},"inactive":true},
          {"entity":{"reference":"Practitioner/d1"}}]})");
  const json::object m = Export("", "/fhir/Group/g1/$export");
  EXPECT_EQ(m.at("request"), "http://test/fhir/Group/g1/$export");
  EXPECT_EQ(Exported(m),
            (std::set<std::string>{"Patient/p1", "Group/g1", "Encounter/e1", "Observation/o1",
                                   "Observation/o2", "Observation/o4"}));
  // An absolute reference under this server's base names the member too.
  Put(R"({"resourceType":"Group","id":"g2","type":"person","actual":true,"member":[
          {"entity":{"reference":"http://test/fhir/Patient/p2"}}]})");
  EXPECT_EQ(Exported(Export("?_type=Patient,Observation", "/fhir/Group/g2/$export")),
            (std::set<std::string>{"Patient/p2", "Observation/o3", "Observation/o4"}));
}

TEST_P(BulkExportTest, PatientAndGroupLevelErrorsAndCapabilities) {
  Seed();
  const HeaderList async = {{"prefer", "respond-async"}};
  EXPECT_EQ(Call("GET", "/fhir/Observation/$export", {}, async).status, 404);
  EXPECT_EQ(Call("GET", "/fhir/Patient/p1/$export", {}, async).status, 404);
  EXPECT_EQ(Call("GET", "/fhir/Group/nope/$export", {}, async).status, 404);
  Put(R"({"resourceType":"Group","id":"gone","type":"person","actual":true})");
  Call("DELETE", "/fhir/Group/gone");
  EXPECT_EQ(Call("GET", "/fhir/Group/gone/$export", {}, async).status, 410);
  EXPECT_EQ(Call("GET", "/fhir/Patient/$export").status, 400);  // not asynchronous
  auto cap = ParseJson(Call("GET", "/fhir/metadata").body);
  ASSERT_TRUE(cap.ok());
  std::map<std::string, std::string> defs;  // type → its export operation's definition
  for (const auto& res : cap->at("rest").at(0).at("resource").as_array()) {
    const auto& r = res.as_object();
    if (const auto* ops = r.if_contains("operation")) {
      for (const auto& op : ops->as_array()) {
        if (op.at("name") == "export")
          defs[std::string(r.at("type").as_string())] =
              std::string(op.at("definition").as_string());
      }
    }
  }
  EXPECT_EQ(
      defs,
      (std::map<std::string, std::string>{
          {"Group", "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/group-export"},
          {"Patient", "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"}}));
}

// The jobs live in their directory, not in one FhirApi: a second server on the same database and
// directory (another process, or this one after a restart) answers the status, the files and
// DELETE of a job the first one ran.
TEST_P(BulkExportTest, JobsOutliveTheirServerAndAreSharedThroughTheDirectory) {
  Seed();
  const json::object m = Export("?_type=Patient,Observation");
  const std::string status = Target(last_status_url_);
  const std::string file_url = Target(std::string(m.at("output").at(0).at("url").as_string()));
  const std::string file_body = Call("GET", file_url).body;
  Response first = Call("GET", status);
  EXPECT_TRUE(HeaderOf(first, "Expires"));

  MakeApi(FhirApiOptions{});  // a restart
  Response again = Call("GET", status);
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(ParseJson(again.body)->at("transactionTime"), m.at("transactionTime"));
  EXPECT_EQ(Call("GET", file_url).body, file_body);

  FhirApiOptions o;  // another server on the same database and directory
  o.base_url = "http://test/fhir";
  o.export_dir = dir_ + "/exports";
  o.validate = [](const json::object&, bool) { return std::vector<Issue>{}; };
  o.is_resource_type = [](std::string_view t) {
    return fhir::Definitions::Get().IsResourceType(t);
  };
  FhirApi other(*store_, o);
  Request del;
  del.method = "DELETE";
  del.target = del.path = status;
  EXPECT_EQ(other.Handle(del).status, 202);
  EXPECT_EQ(Call("GET", status).status, 404);
  EXPECT_EQ(Call("GET", file_url).status, 404);
  EXPECT_FALSE(fs::exists(dir_ + "/exports/" + status.substr(status.rfind('/') + 1)));

  // Job ids are 32 lowercase hex digits: nothing else reaches the file system.
  EXPECT_EQ(Call("GET", "/fhir/$export-poll-status/..").status, 404);
  EXPECT_EQ(Call("GET", "/fhir/$export-poll-status/" + std::string(32, 'A')).status, 404);
  EXPECT_EQ(Call("DELETE", "/fhir/$export-poll-status/" + std::string(31, 'a')).status, 404);
}

class BulkExportJobsTest : public BulkExportTest {
 protected:
  BulkExportsOptions Options() {
    BulkExportsOptions o;
    o.dir = dir_ + "/exports";
    return o;
  }
  static BulkExportRequest Request(std::vector<std::string> types) {
    BulkExportRequest r;
    r.request_url = "http://test/fhir/$export";
    r.types = std::move(types);
    return r;
  }
  // Gets the job's status from `exports` until it is no longer running (at most ~10 s).
  static std::optional<BulkExportStatus> Wait(BulkExports& exports, const std::string& id) {
    std::optional<BulkExportStatus> s;
    for (int i = 0; i < 1000; ++i) {
      s = exports.Get(id);
      if (!s || s->state != BulkExportStatus::State::kRunning) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return s;
  }
  // The ids in a job's files of `type`.
  static std::vector<std::string> Ids(BulkExports& exports, const std::string& id,
                                      const BulkExportStatus& s, const std::string& type) {
    std::vector<std::string> ids;
    for (const auto& f : s.files) {
      if (f.type != type) continue;
      auto path = exports.FilePath(id, f.name);
      EXPECT_TRUE(path);
      if (!path) continue;
      std::ifstream in(*path);
      std::ostringstream body;
      body << in.rdbuf();
      for (auto& i : NdjsonIds(body.str())) ids.push_back(std::move(i));
    }
    return ids;
  }
};

// The process running a job stops (here: its BulkExports is destroyed, which leaves the job on
// disk as running and releases its lock, as a kill -9 or a restart does). Another BulkExports
// on the directory takes the job over at a poll and runs it again from the start.
TEST_P(BulkExportJobsTest, ARunningJobWhoseProcessIsGoneIsTakenOverAndRunAgain) {
  Seed();
  std::atomic<bool> in_observation{false};
  BulkExportsOptions o = Options();
  o.before_type = [&](const std::string& type, const std::atomic<bool>& stop) {
    if (type != "Observation") return;
    in_observation = true;
    for (int i = 0; i < 1000 && !stop; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  };
  auto first = std::make_unique<BulkExports>(*store_, o);
  auto id = first->Start(Request({"Patient", "Observation"}));
  ASSERT_TRUE(id.ok()) << id.error().message;
  for (int i = 0; i < 1000 && !in_observation; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_TRUE(in_observation);

  BulkExports second(*store_, Options());
  auto s = second.Get(*id);  // the first process is alive: reported, not taken over
  ASSERT_TRUE(s);
  EXPECT_EQ(s->state, BulkExportStatus::State::kRunning);
  EXPECT_EQ(s->types_done, 1u);
  const int64_t first_snapshot = s->transaction_time_us;
  EXPECT_FALSE(second.FilePath(*id, "1.Patient.ndjson"));  // not complete: no files yet

  first.reset();  // the process is gone: the job is on disk, running, its lock free
  s = Wait(second, *id);
  ASSERT_TRUE(s);
  ASSERT_EQ(s->state, BulkExportStatus::State::kComplete) << s->error;
  EXPECT_GT(s->transaction_time_us, first_snapshot);  // a new snapshot: run again
  EXPECT_EQ(Ids(second, *id, *s, "Patient"), (std::vector<std::string>{"p1", "p2"}));
  EXPECT_EQ(Ids(second, *id, *s, "Observation"),
            (std::vector<std::string>{"o1", "o2", "o3", "o4"}));
  EXPECT_EQ(s->files.size(), 2u);  // the first run's Patient file was not kept beside the new one
}

// A job deleted by another process while it runs: its directory goes, and the process running
// it stops and leaves nothing behind.
TEST_P(BulkExportJobsTest, ADeleteFromAnotherProcessStopsTheJob) {
  Seed();
  std::atomic<bool> in_observation{false}, release{false};
  BulkExportsOptions o = Options();
  o.before_type = [&](const std::string& type, const std::atomic<bool>& stop) {
    if (type != "Observation") return;
    in_observation = true;
    for (int i = 0; i < 1000 && !stop && !release; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  };
  BulkExports first(*store_, o);
  auto id = first.Start(Request({"Patient", "Observation"}));
  ASSERT_TRUE(id.ok());
  for (int i = 0; i < 1000 && !in_observation; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  BulkExports second(*store_, Options());
  EXPECT_TRUE(second.Delete(*id));
  EXPECT_FALSE(second.Delete(*id));
  release = true;
  for (int i = 0; i < 1000 && fs::exists(o.dir + "/" + *id); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_FALSE(fs::exists(o.dir + "/" + *id));
  EXPECT_FALSE(first.Get(*id));
  // Its slot is freed once its thread ends: two more jobs may run in `first` (a, and b once
  // the deleted job's thread has ended, if it had not yet).
  auto a = first.Start(Request({"Observation"}));
  ASSERT_TRUE(a.ok());
  Result<std::string> b = first.Start(Request({"Patient"}));
  for (int i = 0; i < 100 && !b.ok(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    b = first.Start(Request({"Patient"}));
  }
  EXPECT_TRUE(b.ok());
}

// Finished jobs stay for the retention period, then go at the next start-up or kick-off.
TEST_P(BulkExportJobsTest, FinishedJobsAreRemovedAfterTheRetention) {
  Seed();
  BulkExports kept(*store_, Options());
  auto id = kept.Start(Request({"Patient"}));
  ASSERT_TRUE(id.ok());
  auto s = Wait(kept, *id);
  ASSERT_TRUE(s && s->state == BulkExportStatus::State::kComplete);
  kept.TakeOverOrphans();
  EXPECT_TRUE(kept.Get(*id));  // within the week
  BulkExportsOptions o = Options();
  o.retention = std::chrono::seconds(0);
  BulkExports expiring(*store_, o);
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  expiring.TakeOverOrphans();
  EXPECT_FALSE(expiring.Get(*id));
  EXPECT_FALSE(fs::exists(o.dir + "/" + *id));
}

JC_API_ON_EVERY_BACKEND(BulkExportTest);
JC_API_ON_EVERY_BACKEND(BulkExportJobsTest);

}  // namespace
}  // namespace jiceng::api
