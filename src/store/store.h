// store/: the storage port. Domain and API code talk to storage only through these interfaces
// and never know which backend (store/sqlite, store/postgres) runs underneath.
//
// Reads run in read-only transactions (a consistent snapshot). Writes are submitted as units of
// work to IStore::Write, which returns only once the work is durably committed: a backend may
// commit several callers' units in one database transaction (group commit), each inside its own
// savepoint so that one unit's failure rolls back only that unit.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/result.h"

namespace jiceng::store {

// One stored version of a resource.
struct ResourceVersion {
  std::string type;
  std::string id;
  int64_t version = 0;          // 1, 2, 3 … per resource
  int64_t last_updated_us = 0;  // microseconds since the epoch, UTC
  bool deleted = false;         // a delete is stored as a tombstone version
  std::string json;             // the full resource with meta; empty for tombstones
};

// Search index rows of one resource version, written in the same transaction as the version.
// The foundation indexes tokens (identifier) for conditional interactions; the search module
// fills every kind.
struct TokenIndexRow {
  std::string param;   // search parameter code, e.g. "identifier"
  std::string system;  // may be empty
  std::string code;
};
// The typed rows below were added by the search module (fhir/search fills them; every backend
// stores them in the same transaction as the version and replaces them on the next Put).
// Conventions a backend must keep:
//  * StringIndexRow.value is already normalised by fhir/search (lower case, no accents,
//    half-width); the backend compares it bytewise. `exact` is the text as written (:exact).
//    A token's display text (for :text) is stored as a string row whose param is "<code>:text".
//    A Reference's identifier (for :identifier) is stored as a token row whose param is
//    "<code>:identifier".
//  * Date ranges are half-open [start_us, end_us) in UTC microseconds.
//  * QuantityIndexRow.canonical_code is empty when the unit has no canonical form.
struct StringIndexRow {
  std::string param;
  std::string value;  // normalised
  std::string exact;  // as written
};
struct DateIndexRow {
  std::string param;
  int64_t start_us = 0;
  int64_t end_us = 0;
};
struct NumberIndexRow {
  std::string param;
  double value = 0;
};
struct QuantityIndexRow {
  std::string param;
  double value = 0;
  std::string system;  // may be empty
  std::string code;    // the coded unit, else the human unit
  double canonical_value = 0;
  std::string canonical_code;  // base-unit code ("g", "m3", "m-3.mol", search::Canonicalize)
};
struct ReferenceIndexRow {
  std::string param;
  std::string target_type;  // may be empty (unknown type, e.g. a canonical URL)
  std::string target_id;    // the logical id; empty for a URL that names no Type/id
  std::string url;          // absolute URL or canonical as written; empty for relative refs
};
struct UriIndexRow {
  std::string param;
  std::string value;
};
// Composite parameters (Observation code-value-quantity, component-code-value-quantity, …): one
// row per combination of component values found within ONE element of the composite's
// expression, so a search matches both components in the same element. The first component is
// a token; the second is stored in the columns of its kind (the others keep their zero values):
//   token     code2 = code, system2 = system
//   quantity  number2 = value, code2 = unit code (else unit), system2 = system,
//             canonical_code2/canonical_number2 as in QuantityIndexRow
//   date      [start2_us, end2_us) as in DateIndexRow
//   string    code2 = normalised text, system2 = text as written
//   reference code2 = target id, system2 = target type (may be empty) for a resource of this
//             server (relative, or absolute under the base); code2 = URL, system2 = '' for
//             any other absolute reference (an id holds no ':', so the two never meet)
// A composite of a token and two numbers (R4's four MolecularSequence coordinates: chromosome
// or referenceseqid, then start and end) keeps the first number in number2 and the second, an
// integer position, in end2_us. Both are key columns, so two variants of one resource that
// differ in either number stay two rows, and a search pairs start and end within one variant.
// Token :of-type rows are stored here too, under param "<code>:of-type": first component the
// Identifier.type coding, second the Identifier's system (system2) and value (code2).
struct CompositeIndexRow {
  std::string param;
  std::string system1;
  std::string code1;
  std::string code2;
  std::string system2;
  double number2 = 0;
  std::string canonical_code2;
  double canonical_number2 = 0;
  int64_t start2_us = 0;
  int64_t end2_us = 0;
};
// Full text of a resource for _text (its narrative, Resource.text.div without markup) and
// _content (the text of its string values). fhir/search has already normalised both for
// matching (NormalizeString, then every CJK ideograph made a word of its own by spaces, so a
// backend's word tokenizer finds Chinese by characters); a backend indexes them as words.
struct FullTextIndexRow {
  std::string narrative;
  std::string content;
};
struct IndexRows {
  std::vector<TokenIndexRow> tokens;
  std::vector<StringIndexRow> strings;
  std::vector<DateIndexRow> dates;
  std::vector<NumberIndexRow> numbers;
  std::vector<QuantityIndexRow> quantities;
  std::vector<ReferenceIndexRow> references;
  std::vector<UriIndexRow> uris;
  std::vector<CompositeIndexRow> composites;
  std::vector<FullTextIndexRow> full_text;  // at most one
  // The source of the distribution key: the id of the Patient whose compartment holds the
  // resource (a Patient's own id), empty when it is in none (Organization, ValueSet…). Set with
  // the rows by api::ExtractIndexRows from the R4 Patient CompartmentDefinition. PostgreSQL
  // keeps a hash of it on every row of the resource (shard_key, see pg_schema.cpp); SQLite, one
  // node by design, does not store it.
  std::string patient_compartment;
  // Optional: the backend's own encoding of the rows above, computed by IStore::PrecomputeIndex
  // on a thread other than the store's writer (SQLite: the resource_index_keys blob, and during
  // a bulk load the rows' sort records). Empty:
  // the backend encodes when it writes. Whoever changes the rows after precomputing must
  // clear it.
  std::string precomputed;
};

// ---- search query (backend-neutral; fhir/search parses FHIR query strings into it) -----------
//
// A SearchQuery is the AND of its clauses; a clause is the OR of its values. Values are already
// normalised and resolved into the shape the index rows have, so a backend only maps them to its
// tables; it never needs the FHIR definitions.
enum class SearchKind : uint8_t {
  kString,
  kToken,
  kDate,
  kNumber,
  kQuantity,
  kReference,
  kUri,
  kId,           // _id: the resource's logical id (values in SearchValue::code)
  kLastUpdated,  // _lastUpdated: the resource's last_updated_us (values as dates)
  // Added with chains, _has and composites (see SearchClause):
  kChain,         // subject.name=x: a reference whose target matches SearchClause::links
  kReverseChain,  // _has:Observation:subject:code=x: referenced by a resource matching links
  kComposite,     // composite rows (and token :of-type); values in SearchValue::components
  kText,          // _text (param "_text": the narrative) and _content (the whole resource);
                  // values in SearchValue::words
};
// eq ne gt lt ge le sa eb ap, with the R4 range semantics (see fhir/search/query.h).
enum class SearchPrefix : uint8_t { kEq, kNe, kGt, kLt, kGe, kLe, kSa, kEb, kAp };
enum class StringMatch : uint8_t { kStartsWith, kExact, kContains };
enum class UriMatch : uint8_t { kEquals, kBelow, kAbove };

struct SearchValue {
  SearchPrefix prefix = SearchPrefix::kEq;
  // string: normalised text (`text`) and, for :exact, the text as written (`exact`).
  std::string text;
  std::string exact;
  StringMatch string_match = StringMatch::kStartsWith;
  // token: system nullopt = any system; "" = no system. code empty = any code (system|).
  // _id: code. reference: type (may be empty) + code (= id), or url.
  std::optional<std::string> system;
  std::string code;
  std::string type;
  std::string url;
  // date/_lastUpdated: the search value's range [lo_us, hi_us). number/quantity: the implicit
  // precision range [lo, hi) and the value as written (`number`). Quantities with a canonical
  // unit carry canonical_code and are compared on canonical values.
  int64_t lo_us = 0, hi_us = 0;
  double number = 0, lo = 0, hi = 0;
  std::string canonical_code;
  // uri
  UriMatch uri_match = UriMatch::kEquals;
  // token :in / :not-in: the codes of a value set in one system. When non-empty the value
  // matches a row whose code is one of them and, when `system` is set, whose system is it (the
  // R4 value sets embedded with the definitions carry codes only: any system); `code` is unused.
  std::vector<std::string> codes;
  // composite: one value per component, in the order of SearchClause::components.
  std::vector<SearchValue> components;
  // _text/_content: every word must occur, as the start of a word of the text. Words are
  // normalised like FullTextIndexRow; one may hold several tokens (a CJK run "高 血 压"), which
  // must then occur in order, the last as a prefix.
  std::vector<std::string> words;
};

struct SearchClause;

// One target of a chain: resources of `type` that match all of `all_of`.
struct SearchLink {
  std::string type;
  std::vector<SearchClause> all_of;  // AND (in practice one clause: the rest of the chain)
};

struct SearchClause {
  std::string param;  // index param code ("name", "code:text" for token :text)
  SearchKind kind = SearchKind::kToken;
  bool negate = false;              // token :not / :not-in — resources with no matching row
  std::optional<bool> missing;      // :missing=true/false (values empty then)
  std::vector<SearchValue> any_of;  // OR
  // kComposite: the kind of each component (the first is always kToken).
  std::vector<SearchKind> components;
  // kChain: `param` is a reference parameter of the searched type; the clause holds when one of
  // its references ("Type/id") points at a current resource of links[i].type matching
  // links[i].all_of, for some i (an ambiguous chain has one link per candidate target type).
  // kReverseChain (_has): `param` is a reference parameter of links[0].type; the clause holds
  // when a current resource of that type refers to the searched resource through `param` and
  // matches links[0].all_of.
  std::vector<SearchLink> links;
  // Non-empty: `param` has no rows of its own; its rows are those of these params together
  // (Observation combo-code is code | component-code: see search::StoredAsUnionOf).
  std::vector<std::string> union_of;
};

struct SortKey {
  std::string param;
  SearchKind kind = SearchKind::kId;
  bool descending = false;
  std::vector<std::string> union_of;  // as SearchClause::union_of
};

// The value a match sorts by for one SortKey, as the backend computed it: none (the match has no
// value of the parameter: it sorts last in both directions), an integer (dates: start_us
// ascending, end_us descending; _lastUpdated), a real (number, quantity) or text (string, token
// code, reference target id, uri, _id).
using SortValue = std::variant<std::monostate, int64_t, double, std::string>;

// Which SortValue alternative a key of this kind sorts by (0: none, 1: int, 2: real, 3: text).
inline size_t SortValueIndex(SearchKind kind) {
  switch (kind) {
    case SearchKind::kDate:
    case SearchKind::kLastUpdated:
      return 1;
    case SearchKind::kNumber:
    case SearchKind::kQuantity:
      return 2;
    default:
      return 3;
  }
}

// A position in a search's order (keyset paging): the matches strictly after the entry whose sort
// values (one per SearchQuery::sort key) and id these are. Unlike an offset, it does not move
// when matches before it change or drop out.
struct SearchAfter {
  std::vector<SortValue> values;
  std::string id;
  // The position past every match (`values` all empty, no id), for SearchQuery::backward only:
  // the last page, whose matches are the `count` last ones however many came or went before them.
  bool end = false;
};

struct SearchQuery {
  std::string type;
  std::vector<SearchClause> all_of;        // AND
  std::vector<SortKey> sort;               // then by id (a stable tiebreak) when empty or tied
  std::optional<int64_t> at_or_before_us;  // snapshot: ignore resources written after it
  int64_t offset = 0;
  // Only the matches after this position (then `offset` more are skipped). The total, when
  // counted, still counts every match.
  std::optional<SearchAfter> after;
  // With `after`: the page is instead the `count` matches just before that position, still in the
  // search's order (a previous page; `offset` is then 0). Fewer than `count` come back when the
  // position is near the start.
  bool backward = false;
  // Return SearchPage::last, the position of the page's last entry, when the page is full, and,
  // after a position, SearchPage::first.
  bool want_last = false;
  int64_t count = 50;      // 0: no entries (e.g. _summary=count)
  bool with_total = true;  // count the matches (costs a second query)
  // with_total: count at most this many matches (0: all of them). When more match, the total is
  // left unknown (SearchPage::total nullopt), so that a broad search does not pay for counting
  // a million rows to show one page (_total=accurate asks for the exact count).
  int64_t total_limit = 0;
  // The entries without their JSON (ResourceVersion::json empty), for listing the ids of the
  // matches (api/search_results).
  bool ids_only = false;
  // When the backend finds and sorts every match anyway (few matches), it also returns their ids
  // in order (SearchPage::all_ids) if they number at most this many (0: never), so that a first
  // page can keep them for stable paging without listing them in a second search.
  int64_t list_ids_up_to = 0;
  // Stop a search that runs longer than this (0: no bound), with SearchTimedOut's error, so that
  // one pathological search cannot hold a thread and a database connection for minutes.
  int64_t timeout_ms = 0;
};

// The error of a search stopped by SearchQuery::timeout_ms: 503 with issue type too-costly
// ("the operation was stopped to protect server resources").
inline Error SearchTimedOut(int64_t timeout_ms) {
  Error e(ErrorCode::kUnavailable,
          "The search was stopped after " + std::to_string(timeout_ms) +
              " ms to protect the server: narrow it (more criteria, a smaller _count, no "
              "_total=accurate) and try again");
  e.issues.push_back(Issue{"error", "too-costly", e.message, {}});
  return e;
}

struct SearchPage {
  std::vector<ResourceVersion> entries;
  std::optional<int64_t> total;  // set when with_total (and within total_limit)
  // The ids of every match in order, when SearchQuery::list_ids_up_to asked for them and the
  // backend had them at hand; nullopt otherwise.
  std::optional<std::vector<std::string>> all_ids;
  // With SearchQuery::want_last and a full page: the position of its last entry, for the next
  // page's SearchQuery::after.
  std::optional<SearchAfter> last;
  // With SearchQuery::want_last, `after` and at least one entry: the position of the first entry,
  // for the previous page's SearchQuery::after (with `backward`).
  std::optional<SearchAfter> first;
};

struct HistoryQuery {
  std::string type;                        // empty: system-level history
  std::string id;                          // empty: type- or system-level history
  std::optional<int64_t> since_us;         // only versions with last_updated >= since
  std::optional<int64_t> at_or_before_us;  // snapshot bound so pages stay stable
  int64_t offset = 0;
  int64_t count = 50;
};

struct HistoryPage {
  std::vector<ResourceVersion> entries;  // newest first
  int64_t total = 0;                     // all matching versions (ignoring offset/count)
};

class IReadTransaction {
 public:
  virtual ~IReadTransaction() = default;

  // The current version of a resource, tombstone included (deleted == true); nullopt if the
  // resource never existed.
  virtual Result<std::optional<ResourceVersion>> ReadCurrent(std::string_view type,
                                                             std::string_view id) = 0;
  virtual Result<std::optional<ResourceVersion>> ReadVersion(std::string_view type,
                                                             std::string_view id,
                                                             int64_t version) = 0;
  virtual Result<HistoryPage> History(const HistoryQuery& query) = 0;

  // Ids of current, non-deleted resources of `type` with a token index row (param, system, code).
  // `system` nullopt matches any system; "" matches a row with no system. At most `limit` ids.
  virtual Result<std::vector<std::string>> FindByToken(std::string_view type,
                                                       std::string_view param,
                                                       std::optional<std::string_view> system,
                                                       std::string_view code, int limit) = 0;
  // Number of current, non-deleted resources of a type (all types when empty).
  virtual Result<int64_t> CountCurrent(std::string_view type) = 0;

  // Current, non-deleted resources of a type ordered by id, for listing without criteria.
  // (Added after the first backends; the default says so rather than guessing.)
  virtual Result<std::vector<ResourceVersion>> ListCurrent(std::string_view type, int64_t offset,
                                                           int64_t count) {
    (void)type, (void)offset, (void)count;
    return Error(ErrorCode::kNotImplemented, "Listing is not implemented by this backend");
  }

  // Current, non-deleted resources matching `query` (see SearchQuery). Added with the search
  // module; backends without it answer NotImplemented.
  virtual Result<SearchPage> Search(const SearchQuery& query) {
    (void)query;
    return Error(ErrorCode::kNotImplemented, "Search is not implemented by this backend");
  }
};

class IWriteTransaction : public IReadTransaction {
 public:
  // Appends `version` as the newest version of its resource: a history row, the current-row
  // pointer, and `index` replacing the previous version's index rows. The caller has checked
  // that version.version == previous + 1 (it reads the current version in this transaction).
  // A backend may write a unit's Puts together, when the unit ends or before a read of the unit
  // that could see them (PostgreSQL does): reads of the unit always see its earlier Puts, and a
  // version that turns out not to be newer than the stored one (a writer outside this store's
  // serialisation) then fails the whole unit with kConflict rather than this call.
  virtual Status Put(const ResourceVersion& version, const IndexRows& index) = 0;

  // Replaces the index rows of the current version of type/id, which must be `version` and not
  // deleted (kConflict otherwise: a newer version already has its own rows), without writing a
  // version. For `jiceng reindex`, after a release indexes more than the rows a database holds.
  // (Added after the first backends; the default says so rather than guessing.)
  virtual Status ReplaceIndex(std::string_view type, std::string_view id, int64_t version,
                              const IndexRows& index) {
    (void)type, (void)id, (void)version, (void)index;
    return Error(ErrorCode::kNotImplemented, "Reindexing is not implemented by this backend");
  }
};

using WriteWork = std::function<Status(IWriteTransaction&)>;

class IStore {
 public:
  virtual ~IStore() = default;

  virtual Result<std::unique_ptr<IReadTransaction>> BeginRead() = 0;

  // The current version of one resource, as IReadTransaction::ReadCurrent, for a caller that
  // reads nothing else: one statement sees one committed state, so a backend may run it without
  // opening a transaction of its own (PostgreSQL: one statement in one round trip, no BEGIN or
  // ROLLBACK). The default opens a read transaction for it.
  virtual Result<std::optional<ResourceVersion>> ReadCurrent(std::string_view type,
                                                             std::string_view id) {
    JC_ASSIGN_OR_RETURN(std::unique_ptr<IReadTransaction> txn, BeginRead());
    return txn->ReadCurrent(type, id);
  }

  // Runs `work` in a write transaction and returns once it is durably committed. If `work`
  // returns an error, its changes are rolled back and the error is returned.
  virtual Status Write(const WriteWork& work) = 0;

  // Flushes, stops background threads and closes the database. Further calls fail.
  virtual void Close() = 0;

  // A short name for logs and metrics ("sqlite", "postgres").
  virtual std::string_view Backend() const = 0;

  // Does on the calling thread the part of writing `rows`, the rows of a resource of `type`,
  // that does not need the database (fills IndexRows::precomputed), so that the writer does
  // less. Bulk loaders call it on their worker threads. Optional: the default does nothing.
  virtual void PrecomputeIndex(std::string_view /*type*/, IndexRows& /*rows*/) const {}

  // Bulk loading into an empty database (jiceng import, generate --db). BeginBulkLoad returns
  // true when the backend took it on: until EndBulkLoad, writes keep what each resource needs
  // to be indexed but leave the search index tables to EndBulkLoad, which builds them in key
  // order (far cheaper than row by row), and searches in the meantime fail with kUnavailable.
  // Every write stays durable; after a crash, the next open completes the build. A backend
  // without such a mode, or a database that already holds resources, returns false and writes
  // as usual (EndBulkLoad then does nothing). `progress` is told (resources indexed, of total).
  virtual Result<bool> BeginBulkLoad() { return false; }
  virtual Status EndBulkLoad(const std::function<void(int64_t, int64_t)>& progress = {}) {
    (void)progress;
    return Status::Ok();
  }

  // After a bulk change (import, generate --db, migrate-db, reindex): brings the query planner's
  // statistics up to date, where the backend's planner keeps them. PostgreSQL: VACUUM (ANALYZE)
  // (its autovacuum does it only later; a search planned without statistics right after a
  // 200,000-resource import ran for minutes instead of milliseconds, and index-only scans visit
  // the heap until a VACUUM has set the visibility map). SQLite: nothing (the search compiler
  // counts index rows itself, sql::RowEstimator).
  virtual Status RefreshStatistics() { return Status::Ok(); }

  // The kept ids of a search's later pages (api/search_results.h), where every server process of
  // the database finds them. A backend that several processes share says so here (PostgreSQL:
  // an UNLOGGED table on the primary, neither durable nor replicated, written off the request's
  // path). The default shares nothing: an SQLite server keeps them in its own memory only.
  virtual bool SharesSearchResults() const { return false; }
  // Publishes `body` under `key` until `expires_us`. May return before the entry is visible: a
  // FindSearchResults meanwhile misses it, and the caller pages without it (from the link's
  // cursor, which a first page's links carry for this).
  virtual void PublishSearchResults(std::string key, std::string body, int64_t expires_us) {
    (void)key, (void)body, (void)expires_us;
  }
  // The body under `key` if it has not expired by `now_us`, its expiry moved to `expires_us`.
  virtual Result<std::optional<std::string>> FindSearchResults(std::string_view key, int64_t now_us,
                                                               int64_t expires_us) {
    (void)key, (void)now_us, (void)expires_us;
    return std::optional<std::string>{};
  }
};

}  // namespace jiceng::store
