#include "api/search_shaping.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>

#include "base/ids.h"
#include "base/json.h"
#include "base/time.h"

namespace jiceng::api {
namespace {

bool NotSupported(std::string_view name) {
  return name == "_query" || name == "near" || name.starts_with("near:");
}

std::string EncodeQueryComponent(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~' || ch == ':' ||
        ch == '|' || ch == ',') {
      out += static_cast<char>(ch);
    } else {
      out += '%';
      out += kHex[ch >> 4];
      out += kHex[ch & 15];
    }
  }
  return out;
}

}  // namespace

Result<SearchShaping> SplitShaping(const SearchParams& params, bool strict) {
  SearchShaping out;
  for (const auto& [name, value] : params) {
    if (IsIncludeParam(name)) {
      auto spec = ParseIncludeSpec(name, value);
      if (!spec.ok()) {
        if (strict) return spec.error();
        out.warnings.push_back(Issue{"warning", "not-supported",
                                     fmt::format("{} (ignored)", spec.error().message), name});
        continue;
      }
      out.includes.push_back(std::move(*spec));
      out.applied.emplace_back(name, value);
    } else if (NotSupported(name)) {
      std::string msg = fmt::format("Search parameter '{}' is not supported by this server", name);
      if (strict) {
        Error e(ErrorCode::kInvalid, msg);
        e.issues.push_back(Issue{"error", "not-supported", msg, name});
        return e;
      }
      out.warnings.push_back(Issue{"warning", "not-supported", msg + " (ignored)", name});
    } else {
      out.criteria.emplace_back(name, value);
    }
  }
  return out;
}

bool IsPagingParam(std::string_view name) {
  return name == "_count" || name == "_getpagesoffset" || name == "_snapshot" ||
         name == "_getpages";
}

void NormalizeSort(SearchParams& applied, const std::vector<store::SortKey>& keys,
                   std::vector<Issue>& warnings) {
  auto it = std::find_if(applied.rbegin(), applied.rend(),
                         [](const auto& p) { return p.first == "_sort"; });
  if (it == applied.rend()) return;
  std::string given = it->second;
  std::string effective;
  for (const store::SortKey& k : keys) {
    if (!effective.empty()) effective += ',';
    if (k.descending) effective += '-';
    effective += k.param;
  }
  SearchParams out;
  bool placed = false;
  for (auto& p : applied) {
    if (p.first != "_sort") {
      out.push_back(std::move(p));
    } else if (!placed) {
      placed = true;
      if (!effective.empty()) out.emplace_back("_sort", effective);
    }
  }
  applied = std::move(out);
  if (given != effective) {
    warnings.push_back(
        Issue{"warning", "not-supported",
              effective.empty()
                  ? fmt::format("_sort '{}' is not supported and was ignored", given)
                  : fmt::format("_sort '{}' was applied as '{}': the other keys are not supported",
                                given, effective),
              "_sort"});
  }
}

std::string BuildLink(const std::string& base, const std::string& path,
                      const SearchParams& params) {
  std::string url = base + path;
  char sep = '?';
  for (const auto& [k, v] : params) {
    url += sep;
    url += EncodeQueryComponent(k);
    url += '=';
    url += EncodeQueryComponent(v);
    sep = '&';
  }
  return url;
}

std::vector<std::pair<std::string, std::string>> MakePagingLinks(const PagingLinks& p) {
  auto url = [&](int64_t off, const std::string& cursor = {}) {
    SearchParams q = p.params;
    q.emplace_back("_count", std::to_string(p.count));
    if (off > 0) q.emplace_back("_getpagesoffset", std::to_string(off));
    if (!cursor.empty()) q.emplace_back("_cursor", cursor);
    return BuildLink(p.base, p.path, q);
  };
  std::vector<std::pair<std::string, std::string>> out;
  out.emplace_back("self", url(p.offset, p.self_cursor));
  if (p.count <= 0) return out;
  // A page after a cursor is numbered by offset, but matches before it may have dropped out
  // since the first page: whether it was full says whether more may follow.
  const bool has_next = p.total && (p.self_cursor.empty() || p.by_kept_ids)
                            ? p.offset + p.count < *p.total
                            : p.has_more;
  if (has_next) out.emplace_back("next", url(p.offset + p.count, p.next_cursor));
  if (p.offset > 0 || !p.prev_cursor.empty())
    out.emplace_back("previous", url(std::max<int64_t>(0, p.offset - p.count), p.prev_cursor));
  out.emplace_back("first", url(0));
  if (!p.last_cursor.empty()) {
    // The last `count` matches, numbered from the total when it is known. Kept ids serve a page
    // by its number, so without a total they get no last link.
    if (p.total || !p.by_kept_ids)
      out.emplace_back("last",
                       url(std::max<int64_t>(0, p.total.value_or(0) - p.count), p.last_cursor));
  } else if (p.total) {
    out.emplace_back("last", url(*p.total > 0 ? (*p.total - 1) / p.count * p.count : 0));
  }
  return out;
}

SearchsetWriter::SearchsetWriter(std::string base, FormatOptions format)
    : base_(std::move(base)), format_(std::move(format)) {
  format_.pretty = false;  // the whole Bundle is pretty-printed at the end, if asked
}

void SearchsetWriter::AddEntry(const store::ResourceVersion& v, std::string_view mode) {
  if (!entries_.empty()) entries_ += ',';
  entries_ += R"({"fullUrl":)";
  AppendJsonString(entries_, fmt::format("{}/{}/{}", base_, v.type, v.id));
  entries_ += R"(,"resource":)";
  auto body = FormatResource(v.json, format_);
  entries_ += body.ok() ? *body : v.json;
  entries_ += R"(,"search":{"mode":)";
  AppendJsonString(entries_, mode);
  entries_ += "}}";
}

void SearchsetWriter::AddOutcome(const std::vector<Issue>& issues) {
  if (issues.empty()) return;
  json::object oo{{"resourceType", "OperationOutcome"}};
  json::array arr;
  for (const Issue& i : issues) {
    json::object o{{"severity", i.severity}, {"code", i.code}, {"diagnostics", i.diagnostics}};
    if (!i.expression.empty()) o["expression"] = json::array{json::string(i.expression)};
    arr.emplace_back(std::move(o));
  }
  oo["issue"] = std::move(arr);
  if (!entries_.empty()) entries_ += ',';
  entries_ += R"({"fullUrl":)";
  AppendJsonString(entries_, "urn:uuid:" + NewUuid());
  entries_ += R"(,"resource":)";
  AppendJson(entries_, oo);
  entries_ += R"(,"search":{"mode":"outcome"}})";
}

std::string SearchsetWriter::Finish() {
  std::string out = R"({"resourceType":"Bundle","id":")" + NewUuid() +
                    R"(","meta":{"lastUpdated":")" + FormatInstant(NowMicros()) +
                    R"("},"type":"searchset")";
  if (total_) out += R"(,"total":)" + std::to_string(*total_);
  out += R"(,"link":[)";
  for (size_t i = 0; i < links_.size(); ++i) {
    if (i) out += ',';
    out += R"({"relation":)";
    AppendJsonString(out, links_[i].first);
    out += R"(,"url":)";
    AppendJsonString(out, links_[i].second);
    out += '}';
  }
  out += ']';
  if (!entries_.empty()) {
    out += R"(,"entry":[)";
    out += entries_;
    out += ']';
  }
  out += '}';
  return out;
}

std::vector<PartSlice> SliceParts(const std::vector<int64_t>& sizes, int64_t offset,
                                  int64_t count) {
  std::vector<PartSlice> out;
  if (count <= 0 || offset < 0) return out;
  const int64_t end = offset > INT64_MAX - count ? INT64_MAX : offset + count;
  int64_t pos = 0;
  for (size_t i = 0; i < sizes.size() && pos < end; ++i) {
    const int64_t size = std::max<int64_t>(0, sizes[i]);
    const int64_t lo = std::max(pos, offset);
    const int64_t hi = std::min(pos + size, end);
    if (lo < hi) out.push_back(PartSlice{i, lo - pos, hi - lo});
    pos += size;
  }
  return out;
}

std::string WriteSearchsetPage(PagingLinks links, bool summary_count, bool show_total,
                               const FormatOptions& format,
                               const std::vector<store::ResourceVersion>& matches,
                               const std::vector<store::ResourceVersion>& included,
                               const std::vector<Issue>& warnings) {
  const int64_t asked = links.count;
  if (summary_count) links.count = 0;  // no entries, so no pages to link
  auto link_list = MakePagingLinks(links);
  if (summary_count) {
    // The self link still carries the page size the caller asked for.
    links.count = asked;
    link_list.front().second = MakePagingLinks(links).front().second;
  }
  SearchsetWriter w(links.base, format);
  if (show_total) w.SetTotal(links.total);
  w.SetLinks(std::move(link_list));
  for (const auto& v : matches) w.AddEntry(v, "match");
  for (const auto& v : included) w.AddEntry(v, "include");
  w.AddOutcome(warnings);
  return w.Finish();
}

}  // namespace jiceng::api
