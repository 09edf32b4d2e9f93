// api/search_shaping: what the API layer does around a store search — the parameters it answers
// itself (_include/_revinclude) or refuses (near, _query), warnings for ignored parameters,
// paging links, the searchset Bundle, and paging across several types (compartment `*` and
// $everything).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/response_format.h"
#include "api/search_include.h"
#include "base/error.h"
#include "base/result.h"
#include "store/store.h"

namespace jiceng::api {

using SearchParams = std::vector<std::pair<std::string, std::string>>;

struct SearchShaping {
  std::vector<IncludeSpec> includes;  // _include / _revinclude
  SearchParams criteria;              // everything else, for search::ParseSearch
  SearchParams applied;               // the shaping parameters that took effect, as given
  std::vector<Issue> warnings;        // what lenient handling ignored
};

// Parameters this server does not support at all (near, _query): with `strict` a 400 naming
// the parameter (issue code not-supported); otherwise ignored with a warning. Bad _include /
// _revinclude values are handled the same way (they name unknown types or parameters).
Result<SearchShaping> SplitShaping(const SearchParams& params, bool strict);

// Whether a parameter only steers paging (and is added to links by the caller).
bool IsPagingParam(std::string_view name);

// The _sort value the store really applies (keys the parser dropped are gone); replaces the
// given _sort in `applied` (or removes it when no key is left) and warns when it differs.
void NormalizeSort(SearchParams& applied, const std::vector<store::SortKey>& keys,
                   std::vector<Issue>& warnings);

// A link URL: base + path + "?k=v&…" with components percent-encoded where needed.
std::string BuildLink(const std::string& base, const std::string& path, const SearchParams& params);

struct PagingLinks {
  std::string base;     // e.g. http://host/fhir
  std::string path;     // e.g. /Patient, /Patient/1/Observation, /Patient/1/$everything
  SearchParams params;  // what the search applied, _snapshot included
  int64_t offset = 0;
  int64_t count = 0;
  std::optional<int64_t> total;  // when known
  bool has_more = false;         // without a total: whether this page was full
  // _cursor (fhir/search/query.h) of this page, carried by the self link, and of the pages after
  // and before it, carried by the next and previous links (empty: paging by offset alone).
  std::string self_cursor;
  std::string next_cursor;
  std::string prev_cursor;
  // _cursor of the last page (the matches before the end, however many came or went before
  // them); empty: the last link pages by offset, and only with a total.
  std::string last_cursor;
  // The page came from the search's kept ids (the links carry _getpages): the total, when
  // known, is the kept ids' count, so it decides whether a next page follows.
  bool by_kept_ids = false;
};

// self, first, previous, next and last (last only with a total or a last_cursor), as (relation,
// url). A page of zero entries (_count=0, _summary=count) links to itself only.
std::vector<std::pair<std::string, std::string>> MakePagingLinks(const PagingLinks& p);

// Builds a searchset Bundle as text (stored resources embedded without re-parsing unless the
// format options shape them).
class SearchsetWriter {
 public:
  SearchsetWriter(std::string base, FormatOptions format);
  void SetTotal(std::optional<int64_t> total) { total_ = total; }
  void SetLinks(std::vector<std::pair<std::string, std::string>> links) {
    links_ = std::move(links);
  }
  void AddEntry(const store::ResourceVersion& v, std::string_view mode);
  // An OperationOutcome entry (search.mode = outcome); nothing when `issues` is empty.
  void AddOutcome(const std::vector<Issue>& issues);
  std::string Finish();

 private:
  std::string base_;
  FormatOptions format_;
  std::optional<int64_t> total_;
  std::vector<std::pair<std::string, std::string>> links_;
  std::string entries_;
};

// The searchset Bundle of one page: paging links from `links` (links.count is the page size the
// caller asked for; with `summary_count` there are no entries, so only a self link that still
// carries it), the total when `show_total`, the matches, the included resources and the
// warnings as an OperationOutcome entry.
std::string WriteSearchsetPage(PagingLinks links, bool summary_count, bool show_total,
                               const FormatOptions& format,
                               const std::vector<store::ResourceVersion>& matches,
                               const std::vector<store::ResourceVersion>& included,
                               const std::vector<Issue>& warnings);

// Paging across parts of known sizes taken in order (types of a compartment): the slices of
// the parts that the page [offset, offset + count) covers.
struct PartSlice {
  size_t part = 0;
  int64_t offset = 0;  // within the part
  int64_t count = 0;
};
std::vector<PartSlice> SliceParts(const std::vector<int64_t>& sizes, int64_t offset, int64_t count);

}  // namespace jiceng::api
