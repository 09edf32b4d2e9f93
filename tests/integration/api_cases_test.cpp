// Data-driven REST cases: each file in cases/ is a sequence of requests and expected responses,
// run against a fresh server. Expected bodies are JSON subsets (objects: listed members; arrays:
// listed elements at the same index); `${var}` takes values captured by earlier steps.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <map>
#include <ostream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "base/json.h"
#include "integration/integration_env.h"

namespace jiceng::testing {
namespace {

namespace fs = std::filesystem;

struct Case {
  Backend backend;
  std::string file;  // without ".json"
};

void PrintTo(const Case& c, std::ostream* os) { *os << BackendName(c.backend) << "/" << c.file; }

std::vector<Case> CaseFiles(Backend backend) {
  std::vector<Case> out;
  for (const auto& e : fs::directory_iterator(JICENG_CASES_DIR)) {
    if (e.path().extension() != ".json") continue;
    std::string file = e.path().stem().string();
    out.push_back(Case{backend, std::move(file)});
  }
  std::sort(out.begin(), out.end(), [](const Case& a, const Case& b) { return a.file < b.file; });
  return out;
}

std::string Substitute(std::string s, const std::map<std::string, std::string>& vars) {
  for (const auto& [k, v] : vars) {
    std::string key = "${" + k + "}";
    for (std::size_t pos; (pos = s.find(key)) != std::string::npos;) s.replace(pos, key.size(), v);
  }
  return s;
}

void MatchSubset(const json::value& expected, const json::value& actual, const std::string& path,
                 std::vector<std::string>& errors) {
  if (expected.is_object()) {
    if (!actual.is_object()) { errors.push_back(path + ": expected an object"); return; }
    for (const auto& kv : expected.get_object()) {
      const auto* a = actual.get_object().if_contains(kv.key());
      if (!a) { errors.push_back(path + "/" + std::string(kv.key()) + ": missing"); continue; }
      MatchSubset(kv.value(), *a, path + "/" + std::string(kv.key()), errors);
    }
  } else if (expected.is_array()) {
    if (!actual.is_array()) { errors.push_back(path + ": expected an array"); return; }
    const auto& ea = expected.get_array();
    const auto& aa = actual.get_array();
    if (aa.size() < ea.size()) { errors.push_back(path + ": array has " + std::to_string(aa.size()) + " elements, expected at least " + std::to_string(ea.size())); return; }
    for (std::size_t i = 0; i < ea.size(); ++i) MatchSubset(ea[i], aa[i], path + "/" + std::to_string(i), errors);
  } else if (expected.is_number() && actual.is_number()) {
    if (expected.to_number<double>() != actual.to_number<double>())
      errors.push_back(path + ": expected " + json::serialize(expected) + ", got " + json::serialize(actual));
  } else if (expected != actual) {
    errors.push_back(path + ": expected " + json::serialize(expected) + ", got " + json::serialize(actual));
  }
}

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Each case file runs against a fresh server on a fresh database, once per backend.
class ApiCases : public ::testing::TestWithParam<Case> {};

TEST_P(ApiCases, Run) {
  JC_REQUIRE_BACKEND(GetParam().backend);
  const std::string file = GetParam().file;
  auto text = ReadFile(fs::path(JICENG_CASES_DIR) / (file + ".json"));
  auto doc = ParseJson(text);
  ASSERT_TRUE(doc.ok()) << doc.error().message;
  auto db = TestDatabase::Create(GetParam().backend);
  ASSERT_TRUE(db);
  auto server = StartServer(db->db());
  ASSERT_TRUE(server);
  HttpClient client("127.0.0.1", server->port());
  std::map<std::string, std::string> vars;
  int n = 0;
  for (const auto& step_v : doc->at("steps").get_array()) {
    ++n;
    auto step_text = Substitute(json::serialize(step_v), vars);
    auto step = ParseJson(step_text)->get_object();
    std::string name = std::string(FindString(step, "name").value_or("step " + std::to_string(n)));
    SCOPED_TRACE(std::string(BackendName(GetParam().backend)) + " " + file + " / " + name);
    // "pause_ms": wait before the request, e.g. so that a write falls in a later millisecond
    // than the one before it (lastUpdated and _since have millisecond precision).
    if (auto* pause = Find(step, "pause_ms"))
      std::this_thread::sleep_for(std::chrono::milliseconds(pause->to_number<int>()));
    const auto& req = step.at("request").get_object();
    std::string target;
    if (auto url = FindString(req, "url")) {
      auto pos = url->find("/fhir");
      target = std::string(url->substr(pos));
    } else {
      target = std::string(req.at("path").get_string());
    }
    Headers headers;
    if (auto* h = FindObject(req, "headers"))
      for (const auto& kv : *h) headers.emplace_back(std::string(kv.key()), std::string(kv.value().get_string()));
    std::string body;
    if (auto* b = Find(req, "body")) body = json::serialize(*b);
    else if (auto bt = FindString(req, "body_text")) body = std::string(*bt);
    auto resp = client.Send(std::string(req.at("method").get_string()), target, body, headers);
    ASSERT_TRUE(resp.ok()) << resp.error().message;
    const auto& expect = step.at("expect").get_object();
    EXPECT_EQ(resp->status, expect.at("status").to_number<int>()) << resp->body;
    if (auto* h = FindObject(expect, "headers")) {
      for (const auto& kv : *h) {
        EXPECT_EQ(resp->Header(Lower(std::string(kv.key()))).value_or("<absent>"), std::string(kv.value().get_string()))
            << "header " << kv.key();
      }
    }
    if (auto* hp = FindArray(expect, "header_present")) {
      for (const auto& h : *hp) EXPECT_TRUE(resp->Header(Lower(std::string(h.get_string())))) << "header " << h;
    }
    if (Find(expect, "body_empty")) {
      EXPECT_EQ(resp->body, "");
    }
    if (auto* sub = Find(expect, "body_contains")) {
      for (const auto& s : sub->get_array()) {
        EXPECT_NE(resp->body.find(std::string(s.get_string())), std::string::npos) << "body lacks " << s << ": " << resp->body;
      }
    }
    if (auto* sub = Find(expect, "body_not_contains")) {
      for (const auto& s : sub->get_array()) {
        EXPECT_EQ(resp->body.find(std::string(s.get_string())), std::string::npos) << "body has " << s << ": " << resp->body;
      }
    }
    std::optional<json::value> parsed;
    if (Find(expect, "body") || Find(expect, "body_absent") || Find(step, "capture")) {
      auto p = ParseJson(resp->body);
      ASSERT_TRUE(p.ok()) << "response body is not JSON: " << resp->body;
      parsed = std::move(*p);
    }
    if (auto* eb = Find(expect, "body")) {
      std::vector<std::string> errors;
      MatchSubset(*eb, *parsed, "", errors);
      for (const auto& e : errors) ADD_FAILURE() << e << "\nbody: " << resp->body;
    }
    if (auto* absent = FindArray(expect, "body_absent")) {
      for (const auto& ptr : *absent) {
        boost::system::error_code ec;
        EXPECT_EQ(parsed->find_pointer(ptr.get_string(), ec), nullptr) << ptr << " present: " << resp->body;
      }
    }
    if (auto* cap = FindObject(step, "capture"))
      for (const auto& kv : *cap) {
        boost::system::error_code ec;
        const json::value* v = parsed->find_pointer(kv.value().get_string(), ec);
        ASSERT_NE(v, nullptr) << "capture " << kv.value() << " missing in " << resp->body;
        vars[std::string(kv.key())] = v->is_string() ? std::string(v->get_string()) : json::serialize(*v);
      }
    if (auto* cap = FindObject(step, "capture_header"))
      for (const auto& kv : *cap) vars[std::string(kv.key())] = resp->Header(std::string(kv.value().get_string())).value_or("");
    if (::testing::Test::HasFatalFailure()) return;
  }
}

std::string CaseName(const ::testing::TestParamInfo<Case>& info) { return info.param.file; }

INSTANTIATE_TEST_SUITE_P(Sqlite, ApiCases, ::testing::ValuesIn(CaseFiles(Backend::kSqlite)),
                         CaseName);
INSTANTIATE_TEST_SUITE_P(Postgres, ApiCases, ::testing::ValuesIn(CaseFiles(Backend::kPostgres)),
                         CaseName);

}  // namespace
}  // namespace jiceng::testing
