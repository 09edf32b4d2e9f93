// Runs the official FHIRPath test suite (tests-fhir-r4.xml) against the engine with the R4
// definitions as the model. Inputs are the JSON forms of the suite's example resources.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "base/json.h"
#include "fhir/fhirpath/definitions_model.h"
#include "fhir/fhirpath/fhirpath.h"

namespace jiceng::fhirpath {
namespace {

const std::string kDir = std::string(JICENG_SHARED_DIR) + "/data/fhirpath";

// Tests that cannot apply to this engine, by name, with the reason. Nothing else is skipped;
// each skip is printed with its reason so that none goes unnoticed. Empty: every test of the
// suite applies to JSON input and runs.
const std::map<std::string, std::string> kSkipped = {};

struct Output {
  std::string type;  // empty when the suite gives none
  std::string value;
};

struct SuiteTest {
  std::string name;
  std::string input_file;
  std::string expression;
  std::string invalid;  // "", "syntax", "semantic", "execution", "true"
  bool predicate = false;
  bool strict = false;
  bool unordered = false;
  std::vector<Output> outputs;
};

std::string Unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    if (s[i] == '&') {
      static const std::pair<std::string_view, char> kEntities[] = {
          {"&lt;", '<'}, {"&gt;", '>'}, {"&amp;", '&'}, {"&quot;", '"'}, {"&apos;", '\''}};
      bool hit = false;
      for (const auto& [e, c] : kEntities) {
        if (s.substr(i, e.size()) == e) {
          out += c;
          i += e.size();
          hit = true;
          break;
        }
      }
      if (hit) continue;
    }
    out += s[i++];
  }
  return out;
}

// Attribute value of `attr` in a tag's text ("<test name="x" ...>"); empty when absent.
std::string Attr(std::string_view tag, std::string_view attr) {
  size_t pos = 0;
  while ((pos = tag.find(attr, pos)) != std::string_view::npos) {
    bool boundary = pos > 0 && std::isspace(static_cast<unsigned char>(tag[pos - 1]));
    size_t eq = pos + attr.size();
    while (eq < tag.size() && tag[eq] == ' ') ++eq;
    if (boundary && eq < tag.size() && tag[eq] == '=') {
      size_t q = tag.find('"', eq);
      size_t end = tag.find('"', q + 1);
      return Unescape(tag.substr(q + 1, end - q - 1));
    }
    pos = eq;
  }
  return {};
}

std::vector<SuiteTest> ParseSuite(const std::string& xml_in) {
  // Comments hold disabled tests; drop them first.
  std::string xml;
  for (size_t i = 0; i < xml_in.size();) {
    if (xml_in.compare(i, 4, "<!--") == 0) {
      size_t end = xml_in.find("-->", i);
      i = end == std::string::npos ? xml_in.size() : end + 3;
    } else {
      xml += xml_in[i++];
    }
  }
  std::vector<SuiteTest> tests;
  size_t pos = 0;
  while ((pos = xml.find("<test", pos)) != std::string::npos) {
    char next = xml[pos + 5];
    if (next != ' ' && next != '>' && next != '\t' && next != '\n') {
      pos += 5;
      continue;
    }
    size_t tag_end = xml.find('>', pos);
    size_t body_end = xml.find("</test>", tag_end);
    std::string_view tag(xml.data() + pos, tag_end - pos);
    std::string_view body(xml.data() + tag_end + 1, body_end - tag_end - 1);
    SuiteTest t;
    t.name = Attr(tag, "name");
    t.input_file = Attr(tag, "inputfile");
    t.predicate = Attr(tag, "predicate") == "true";
    t.strict = Attr(tag, "mode") == "strict";
    t.unordered = Attr(tag, "ordered") == "false";
    size_t e = body.find("<expression");
    size_t e_end = body.find('>', e);
    std::string_view etag = body.substr(e, e_end - e);
    t.invalid = Attr(etag, "invalid");
    if (Attr(etag, "mode") == "strict") t.strict = true;
    size_t e_close = body.find("</expression>", e_end);
    t.expression = Unescape(body.substr(e_end + 1, e_close - e_end - 1));
    size_t o = e_close;
    while ((o = body.find("<output", o)) != std::string_view::npos) {
      size_t o_end = body.find('>', o);
      size_t o_close = body.find("</output>", o_end);
      Output out;
      out.type = Attr(body.substr(o, o_end - o), "type");
      out.value = Unescape(body.substr(o_end + 1, o_close - o_end - 1));
      t.outputs.push_back(out);
      o = o_close;
    }
    if (t.name.empty()) t.name = "(unnamed) " + t.expression;
    tests.push_back(std::move(t));
    pos = body_end;
  }
  return tests;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The item in the suite's notation ("@2015-02-04", "4 'mg'", "true").
std::string Render(const Item& raw) {
  Item i = raw.ToSystem();
  switch (i.kind()) {
    case Item::Kind::kDate:
    case Item::Kind::kDateTime: return "@" + i.ToText();
    case Item::Kind::kTime: return "@T" + i.ToText();
    case Item::Kind::kNode: return i.json() ? ToJson(*i.json()) : "(null node)";
    default: return i.ToText();
  }
}

bool Matches(const Item& raw, const Output& want) {
  Item i = raw.ToSystem();
  const std::string& t = want.type;
  if (t == "boolean" && i.kind() != Item::Kind::kBoolean) return false;
  if (t == "integer" && i.kind() != Item::Kind::kInteger) return false;
  if (t == "decimal" && i.kind() != Item::Kind::kDecimal) return false;
  if (t == "date" && i.kind() != Item::Kind::kDate) return false;
  if (t == "dateTime" && i.kind() != Item::Kind::kDateTime) return false;
  if (t == "time" && i.kind() != Item::Kind::kTime) return false;
  if (t == "Quantity" && i.kind() != Item::Kind::kQuantity) return false;
  if ((t == "string" || t == "code" || t == "id" || t == "uri") &&
      i.kind() != Item::Kind::kString) {
    return false;
  }
  if (i.kind() == Item::Kind::kDecimal || (t.empty() && i.kind() == Item::Kind::kInteger)) {
    auto want_d = ParseDecimal(want.value);
    if (want_d && i.kind() == Item::Kind::kDecimal && want_d->scale > 0 && t.empty()) {
      // Untyped outputs of boundary functions state the exact digits.
      return FormatDecimal(i.decimal()) == want.value;
    }
    if (want_d) {
      double got = i.kind() == Item::Kind::kDecimal ? i.decimal().value
                                                    : static_cast<double>(i.integer());
      return DecimalEquals(got, want_d->value);
    }
  }
  return Render(raw) == want.value;
}

TEST(FhirPathSuite, R4) {
  std::string xml = ReadFile(kDir + "/tests-fhir-r4.xml");
  ASSERT_FALSE(xml.empty()) << "missing " << kDir;
  std::vector<SuiteTest> tests = ParseSuite(xml);
  std::map<std::string, json::value> inputs;
  int passed = 0, failed = 0, skipped = 0;
  const ModelInfo& model = DefinitionsModel();
  for (const SuiteTest& t : tests) {
    if (auto skip = kSkipped.find(t.name); skip != kSkipped.end()) {
      ++skipped;
      std::printf("fhirpath suite: skipped %s: %s\n", t.name.c_str(), skip->second.c_str());
      continue;
    }
    json::value resource;
    if (!t.input_file.empty()) {
      std::string file = t.input_file;
      if (file.size() > 4 && file.substr(file.size() - 4) == ".xml") {
        file = file.substr(0, file.size() - 4) + ".json";
      }
      auto it = inputs.find(file);
      if (it == inputs.end()) {
        auto parsed = ParseJson(ReadFile(kDir + "/input/" + file));
        ASSERT_TRUE(parsed.ok()) << file;
        it = inputs.emplace(file, std::move(parsed).value()).first;
      }
      resource = it->second;
    }
    EvalOptions opts;
    opts.model = &model;
    opts.strict = t.strict;
    std::string problem;
    auto expr = Compile(t.expression);
    Result<Collection> result = expr.ok() ? Evaluate(*expr, resource, opts)
                                          : Result<Collection>(expr.error());
    if (!t.invalid.empty()) {
      if (result.ok()) {
        problem = "expected an error (" + t.invalid + "), got " +
                  std::to_string(result->size()) + " item(s)";
      }
    } else if (!result.ok()) {
      problem = "error: " + result.error().message;
    } else {
      Collection got = *result;
      if (t.predicate) got = Collection{Item::Boolean(!got.empty())};
      if (got.size() != t.outputs.size()) {
        problem = "expected " + std::to_string(t.outputs.size()) + " item(s), got " +
                  std::to_string(got.size());
      } else {
        std::vector<bool> used(got.size(), false);
        for (size_t k = 0; k < t.outputs.size() && problem.empty(); ++k) {
          bool ok = false;
          if (t.unordered) {
            for (size_t j = 0; j < got.size() && !ok; ++j) {
              if (!used[j] && Matches(got[j], t.outputs[k])) used[j] = ok = true;
            }
          } else {
            ok = Matches(got[k], t.outputs[k]);
          }
          if (!ok) {
            problem = "item " + std::to_string(k) + ": expected " + t.outputs[k].type + " " +
                      t.outputs[k].value + ", got " + (t.unordered ? "?" : Render(got[k]));
          }
        }
      }
      if (!problem.empty()) {
        problem += " [got:";
        for (const Item& i : got) problem += " " + Render(i);
        problem += "]";
      }
    }
    if (problem.empty()) {
      ++passed;
    } else {
      ++failed;
      ADD_FAILURE() << t.name << ": " << t.expression << "\n  " << problem;
    }
  }
  std::printf("fhirpath suite: %d passed, %d failed, %d skipped\n", passed, failed, skipped);
  EXPECT_EQ(passed + failed + skipped, static_cast<int>(tests.size()));
}

}  // namespace
}  // namespace jiceng::fhirpath
