// fhir/search/query: FHIR R4 search query strings → the backend-neutral store::SearchQuery.
//
// Supported (anything else is "unsupported": 400 with Prefer: handling=strict, else ignored and
// left out of the self link and of ParsedSearch::applied):
//   string     default starts-with, :exact, :contains, :missing
//   token      code, system|code, |code, system|, :not, :text, :missing,
//              :of-type (typesystem|typecode|value on Identifiers; all three parts required),
//              :in / :not-in against the ValueSets the server holds: stored ValueSet resources
//              (ParseOptions::value_sets; codes in their systems, see value_set.h), then the R4
//              value sets embedded with the definitions (matched on code in any system);
//              another ValueSet → 400 naming it
//   date       prefixes eq ne gt lt ge le sa eb ap, partial precision ranges on both sides
//   number     prefixes, implicit precision ("100" = [99.5, 100.5)); the R4 decimal syntax
//              only ("5.", " 5", "0x10" are 400s)
//   quantity   [prefix]number[|system|code]; number||code matches the code or the human unit
//              (Quantity.unit); UCUM mass, length and mm[Hg]/kPa compare across units
//   reference  id, Type/id, absolute URL, :Type, :missing, :identifier (system|value of
//              Reference.identifier). Type/id and id name resources of this server: relative
//              references, or absolute ones under the base URL (ParseOptions::base_url); any
//              other absolute URL, and a canonical, is found by its URL only.
//   uri        exact, :below, :above, :missing
//   composite  code$value with each component parsed as its own type, both matched within the
//              same element (Observation code-value-quantity, component-code-value-quantity,
//              combo-code-value-quantity, code-value-concept/-date/-string, useContext
//              context-type-quantity/-value, Group characteristic-value); :missing. The
//              MolecularSequence coordinates take token$number$number (chromosome-variant-
//              coordinate=1$gt100$lt200), start and end matched within one variant (or one
//              referenceSeq window), each number as a number parameter.
//   chains     subject.name=x, subject:Patient.name=x, encounter.subject.identifier=x (any
//              parameter, with its modifiers, at the end; up to 4 levels with _has). Without a
//              type modifier every target type of the reference that has the chained parameter
//              is searched. Chains follow references to current resources of this server
//              ("Type/id", or "<base>/Type/id").
//   _has       _has:Observation:subject:code=x, nested (_has:A:p:_has:B:q:param=x), chains
//              inside (_has:Observation:subject:encounter.status=x)
//   _text      the narrative (words of Resource.text.div), _content the text of every string
//              value: each space-separated word must occur, as the start of a word; Chinese by
//              characters, in order ("高血压"). Comma = OR.
//   _id, _lastUpdated, OR with ',', AND with repeated parameters
//   _sort (several keys, '-' descending, id tiebreak; not composites), _count, _total,
//   _summary=count, _getpagesoffset/_snapshot/_getpages/_cursor (paging links)
// Date range semantics, for a stored range [s, e) and a search range [lo, hi):
//   eq: lo <= s && e <= hi      ne: !eq        gt: e > hi     lt: s < lo
//   ge: gt || eq                le: lt || eq   sa: s >= hi    eb: e <= lo
//   ap: overlaps [lo - w, hi + w), w = 10% of the distance from now to the search value.
// Number/quantity compare the decimal a stored double stands for (search::DecimalOf) with the
// search number x as written and its range [x - h, x + h), h half a unit of its last digit, in
// exact decimal arithmetic:
//   eq: x-h <= v < x+h  ne: !eq  gt/sa: v > x  lt/eb: v < x  ge: v >= x  le: v <= x
//   ap: 0.9x <= v <= 1.1x
// handed to the store as bounds on the stored doubles that decide exactly that
// (search::SmallestDoubleAtLeast): eq/ne lo <= v < hi; gt/sa v > number; lt/eb v < number;
// ge v >= number; le v <= number; ap as eq over [lo, hi). A quantity value may be several
// alternatives (one per unit it is compared in).
// Errors inside a chain or _has name the whole parameter as given ("subject.birthdate").
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"
#include "fhir/definitions.h"
#include "fhir/search/value_set.h"
#include "store/store.h"

namespace jiceng::search {

using Params = std::vector<std::pair<std::string, std::string>>;

struct ParseOptions {
  bool strict = false;  // Prefer: handling=strict
  int64_t default_count = 20;
  int64_t max_count = 1000;
  // Without _total=accurate, count at most this many matches (store::SearchQuery::total_limit;
  // 0: count all). _total=estimate is answered the same way: exactly or not at all.
  int64_t total_limit = 0;
  int64_t now_us = 0;  // for `ap` on dates; 0: the clock
  // This server's base URL, for reference values: an absolute URL under it names a local
  // resource (see ExtractOptions::base_url). nullopt: ServerBaseUrl().
  std::optional<std::string> base_url;
  // The stored ValueSets, for :in / :not-in (empty: only the embedded R4 value sets).
  ValueSetSource value_sets;
};

struct ParsedSearch {
  store::SearchQuery query;
  // The position of the page's first entry among all the matches (_getpagesoffset), for the
  // paging links. Equal to query.offset, except after a _cursor, which the query starts from.
  int64_t position = 0;
  // The parameters that took effect, as given (for the self link), without the paging ones
  // (_count, _getpagesoffset, _snapshot, _getpages, _cursor) that the caller adds itself.
  Params applied;
  bool summary_count = false;
  std::string results_key;  // _getpages: the key of the search's kept results, if given
};

// Parses the query of a type-level search. Bad values of supported parameters are kInvalid
// errors naming the parameter; so are unsupported ones when options.strict.
Result<ParsedSearch> ParseSearch(std::string_view type, const Params& params,
                                 const ParseOptions& options);

// `_cursor`: a position in a search's order (store::SearchAfter) as the opaque text of a next
// link: base64url of a JSON array of the sort values and then the id; of a previous link (the
// page before the position: store::SearchQuery::backward), the same array as {"before": […]};
// of a last link (the page before the end: store::SearchAfter::end), {"before": "end"}.
// Decoding checks it against the search's sort keys (a value per key, of the key's kind, or null)
// and fails with kInvalid naming _cursor otherwise.
std::string EncodeSearchCursor(const store::SearchAfter& after, bool backward = false);
struct SearchCursor {
  store::SearchAfter at;
  bool backward = false;
};
Result<SearchCursor> DecodeSearchCursor(std::string_view text,
                                        const std::vector<store::SortKey>& sort);

// The search parameters ParseSearch answers for `type` besides _id and _lastUpdated: the
// indexed ones (IndexedParams, composites included) plus _text and _content, for the
// CapabilityStatement.
std::vector<const fhir::SearchParamDef*> SearchableParams(std::string_view type);

// Parses only criteria (no _count/_sort/paging), for conditional create/update/delete; always
// strict: an unsupported criterion must not widen a conditional write's match. `value_sets`: as
// ParseOptions::value_sets.
Result<store::SearchQuery> ParseCriteria(std::string_view type, const Params& params,
                                         const ValueSetSource& value_sets = {});

}  // namespace jiceng::search
