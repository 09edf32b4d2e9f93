#include "store/sqlite/sqlite_schema.h"

#include <chrono>
#include <string>
#include <vector>

#include "store/sqlite/connection.h"
#include "store/sqlite/sqlite_index_write.h"

namespace jiceng::store::sqlite {

ResourceVersion RowToVersion(const Stmt& s) {
  ResourceVersion v;
  v.type = s.ColumnText(0);
  v.id = s.ColumnText(1);
  v.version = s.ColumnInt(2);
  v.last_updated_us = s.ColumnInt(3);
  v.deleted = s.ColumnInt(4) != 0;
  v.json = s.ColumnText(5);
  return v;
}
namespace {

// 'JCNG': marks the file as a Jiceng database so we never migrate someone else's SQLite file.
constexpr int64_t kApplicationId = 0x4A434E47;

// Schema v1 — design notes (the PostgreSQL backend mirrors these tables):
//
// * resource: the current version of every resource, one row per (type, id), json included.
//   `rid` (INTEGER PRIMARY KEY = the rowid) is a surrogate key: every per-resource table (history
//   and all search index tables) keys on this 8-byte integer instead of repeating type + id
//   strings, which keeps the index b-trees small and makes "replace this resource's index rows"
//   one integer range delete. Read by id is one lookup on the (type, id) unique index plus its
//   rowid row, with no probe into history.
// * resource_history: every version, tombstones included (deleted = 1, json = ''). type and id
//   are repeated (immutable per rid) so that type- and system-level history never join. The row
//   of a live current version holds json = '' too and shares the resource row's json (a live
//   resource's json is never empty); the next version's write moves that json into it. Until
//   2026-11 the current json was stored in both rows: ~1-3 KB written twice per version, and
//   over a quarter of the file (the Synthea sample: 52.9 MB then, 38.6 MB now). Rows written
//   before then keep their copy, which reads the same.
//   Readers (sqlite_store.cpp kHistoryColumns) pick the resource row's json for such rows.
//   Indexes: (rid, version) for instance history and vread; (last_updated_us) for system history;
//   (type, last_updated_us) for type history. Ties on last_updated_us order by hid (insertion).
// * idx_token: the token search index, one row per (resource, param, system, code) of the
//   current version; WITHOUT ROWID so the table is its own (type, param, code, system) index.
//   system is '' when the token has none. The search module adds idx_string, idx_date,
//   idx_number, idx_quantity, idx_reference, idx_uri, idx_composite in the same shape:
//   (type, param, <value columns>, rid) primary key + an index on rid for replacement.
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE resource (
  rid INTEGER PRIMARY KEY,
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  version INTEGER NOT NULL,
  last_updated_us INTEGER NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0,
  json TEXT NOT NULL,
  UNIQUE (type, id)
);
CREATE INDEX resource_live_by_type ON resource(type) WHERE deleted = 0;

CREATE TABLE resource_history (
  hid INTEGER PRIMARY KEY,
  rid INTEGER NOT NULL REFERENCES resource(rid),
  type TEXT NOT NULL,
  id TEXT NOT NULL,
  version INTEGER NOT NULL,
  last_updated_us INTEGER NOT NULL,
  deleted INTEGER NOT NULL DEFAULT 0,
  json TEXT NOT NULL
);
CREATE UNIQUE INDEX resource_history_by_rid ON resource_history(rid, version);
CREATE INDEX resource_history_by_time ON resource_history(last_updated_us);
CREATE INDEX resource_history_by_type_time ON resource_history(type, last_updated_us);

CREATE TABLE idx_token (
  type TEXT NOT NULL,
  param TEXT NOT NULL,
  code TEXT NOT NULL,
  system TEXT NOT NULL DEFAULT '',
  rid INTEGER NOT NULL REFERENCES resource(rid),
  PRIMARY KEY (type, param, code, system, rid)
) WITHOUT ROWID;
CREATE INDEX idx_token_by_rid ON idx_token(rid);
)sql";

// Schema v2 — the typed search index tables (fhir/search extracts their rows on every Put).
// Same shape as idx_token: WITHOUT ROWID with (type, param, <value columns>, rid) as the primary
// key, so each table is its own index for "param op value" and the matching rids come out of
// one range scan; plus an index on rid so Put can replace a resource's rows.
// * idx_string: value is the normalised text (prefix search is a range scan on it), exact the
//   text as written (for :exact). Token display text (:text) is stored here as "<code>:text".
// * idx_date: [start_us, end_us) in UTC microseconds; open Period ends are ±2^63.
// * idx_quantity: canonical_code/canonical_value hold the UCUM canonical form when the unit has
//   one (kg → g), so that searches compare across commensurable units; a second index serves
//   those canonical searches. Since 2026-11 the form is the base-unit code of any unit
//   fhir/ucum reads ("m3" for mL, "m-1.s-2.g" for mm[Hg]; search::Canonicalize), where it was
//   "g", "m" or "mm[Hg]" for twelve units before, and searches read these columns (they
//   converted the search value into each of the twelve units before): rows written earlier
//   are found across units again after `jiceng reindex` (docs/operations.md). Its primary-key
//   columns are declared first: SQLite 3.40's integrity_check misreads non-key NOT NULL columns
//   declared before a key column of a WITHOUT ROWID table and reports them as NULL (a false
//   positive that fails health checks).
// * idx_reference: target_type/target_id for "Type/id" (relative or absolute), url for absolute
//   and canonical references.
// Rows of resources written before v2 are not back-filled here: a reindex rewrites them.
constexpr const char* kSchemaV2 = R"sql(
CREATE TABLE idx_string (
  type TEXT NOT NULL,
  param TEXT NOT NULL,
  value TEXT NOT NULL,
  exact TEXT NOT NULL,
  rid INTEGER NOT NULL REFERENCES resource(rid),
  PRIMARY KEY (type, param, value, exact, rid)
) WITHOUT ROWID;
CREATE INDEX idx_string_by_rid ON idx_string(rid);

CREATE TABLE idx_date (
  type TEXT NOT NULL,
  param TEXT NOT NULL,
  start_us INTEGER NOT NULL,
  end_us INTEGER NOT NULL,
  rid INTEGER NOT NULL REFERENCES resource(rid),
  PRIMARY KEY (type, param, start_us, end_us, rid)
) WITHOUT ROWID;
CREATE INDEX idx_date_by_rid ON idx_date(rid);

CREATE TABLE idx_number (
  type TEXT NOT NULL,
  param TEXT NOT NULL,
  value REAL NOT NULL,
  rid INTEGER NOT NULL REFERENCES resource(rid),
  PRIMARY KEY (type, param, value, rid)
) WITHOUT ROWID;
CREATE INDEX idx_number_by_rid ON idx_number(rid);

CREATE TABLE idx_quantity (
  type TEXT NOT NULL,
  param TEXT NOT NULL,
  code TEXT NOT NULL,
  system TEXT NOT NULL,
  value REAL NOT NULL,
  rid INTEGER NOT NULL REFERENCES resource(rid),
  canonical_code TEXT NOT NULL,
  canonical_value REAL NOT NULL,
  PRIMARY KEY (type, param, code, system, value, rid)
) WITHOUT ROWID;
CREATE INDEX idx_quantity_by_rid ON idx_quantity(rid);
CREATE INDEX idx_quantity_canonical ON idx_quantity(type, param, canonical_code, canonical_value)
  WHERE canonical_code <> '';

CREATE TABLE idx_reference (
  type TEXT NOT NULL,
  param TEXT NOT NULL,
  target_id TEXT NOT NULL,
  target_type TEXT NOT NULL,
  url TEXT NOT NULL,
  rid INTEGER NOT NULL REFERENCES resource(rid),
  PRIMARY KEY (type, param, target_id, target_type, url, rid)
) WITHOUT ROWID;
CREATE INDEX idx_reference_by_rid ON idx_reference(rid);

CREATE TABLE idx_uri (
  type TEXT NOT NULL,
  param TEXT NOT NULL,
  value TEXT NOT NULL,
  rid INTEGER NOT NULL REFERENCES resource(rid),
  PRIMARY KEY (type, param, value, rid)
) WITHOUT ROWID;
CREATE INDEX idx_uri_by_rid ON idx_uri(rid);
)sql";

// Composite search rows and full text (the search compiler's chains/_has need no new tables).
// * idx_composite: store::CompositeIndexRow, one row per combination of component values within
//   one element (Observation component-code-value-quantity …), plus token :of-type rows under
//   "<code>:of-type". The first component is a token (code1, system1); the second sits in the
//   columns of its kind (token/string: code2 + system2, quantity: number2 + code2 + system2 and
//   the canonical pair, date: [start2_us, end2_us); the token-number-number MolecularSequence
//   coordinates: number2 and end2_us); unused columns hold '' or 0. Same shape as the v2
//   tables, key columns declared first (see idx_quantity).
// * fts_resource: FTS5 over the narrative (_text) and the text content (_content) of each
//   resource, rowid = the resource's rid. Text arrives normalised with every CJK ideograph a
//   word of its own, so unicode61 finds Chinese by characters (a phrase query in order).
//   Rows of resources written before this migration are not back-filled: a reindex rewrites them.
constexpr const char* kSchemaV3Search = R"sql(
CREATE TABLE idx_composite (
  type TEXT NOT NULL,
  param TEXT NOT NULL,
  code1 TEXT NOT NULL,
  system1 TEXT NOT NULL,
  code2 TEXT NOT NULL,
  system2 TEXT NOT NULL,
  number2 REAL NOT NULL,
  start2_us INTEGER NOT NULL,
  end2_us INTEGER NOT NULL,
  rid INTEGER NOT NULL REFERENCES resource(rid),
  canonical_code2 TEXT NOT NULL,
  canonical_number2 REAL NOT NULL,
  PRIMARY KEY (type, param, code1, system1, code2, system2, number2, start2_us, end2_us, rid)
) WITHOUT ROWID;
CREATE INDEX idx_composite_by_rid ON idx_composite(rid);

CREATE VIRTUAL TABLE fts_resource USING fts5(narrative, content,
  tokenize = 'unicode61 remove_diacritics 2');
)sql";

// Schema v4 — resource_index_keys replaces the eight idx_*_by_rid indexes.
// Each resource's IndexRows, encoded (index_keys.h), in one row keyed by rid. A Put finds the
// previous version's index rows there and deletes them by primary key, and a search sorts by a
// parameter through jc_sort_key() over it; so no idx_* table needs a second index on rid, and
// every index row costs one B-tree insert instead of two (the rid indexes were a third of the
// writer's work in Bundle ingest). The table itself is appended to in rid order.
constexpr const char* kSchemaV4 = R"sql(
CREATE TABLE resource_index_keys (
  rid INTEGER PRIMARY KEY REFERENCES resource(rid),
  keys BLOB NOT NULL
);
)sql";

// Fills resource_index_keys from the rows already in the idx_* tables (through the rid indexes,
// still present), then drops those indexes.
Status BackfillIndexKeys(Connection& c) {
  std::vector<int64_t> rids;
  {
    JC_SQL_STMT(s, c, "SELECT rid FROM resource WHERE deleted = 0 ORDER BY rid");
    for (;;) {
      JC_ASSIGN_OR_RETURN(bool row, s.Step());
      if (!row) break;
      rids.push_back(s.ColumnInt(0));
    }
  }
  for (int64_t rid : rids) {
    IndexRows rows;
    {
      JC_SQL_STMT(s, c, "SELECT param, system, code FROM idx_token WHERE rid = ?1");
      s.BindInt(1, rid);
      while (true) {
        JC_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        rows.tokens.push_back({s.ColumnText(0), s.ColumnText(1), s.ColumnText(2)});
      }
    }
    {
      JC_SQL_STMT(s, c, "SELECT param, value, exact FROM idx_string WHERE rid = ?1");
      s.BindInt(1, rid);
      while (true) {
        JC_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        rows.strings.push_back({s.ColumnText(0), s.ColumnText(1), s.ColumnText(2)});
      }
    }
    {
      JC_SQL_STMT(s, c, "SELECT param, start_us, end_us FROM idx_date WHERE rid = ?1");
      s.BindInt(1, rid);
      while (true) {
        JC_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        rows.dates.push_back({s.ColumnText(0), s.ColumnInt(1), s.ColumnInt(2)});
      }
    }
    {
      JC_SQL_STMT(s, c, "SELECT param, value FROM idx_number WHERE rid = ?1");
      s.BindInt(1, rid);
      while (true) {
        JC_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        rows.numbers.push_back({s.ColumnText(0), s.ColumnDouble(1)});
      }
    }
    {
      JC_SQL_STMT(s, c,
                  "SELECT param, value, system, code, canonical_value, canonical_code "
                  "FROM idx_quantity WHERE rid = ?1");
      s.BindInt(1, rid);
      while (true) {
        JC_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        rows.quantities.push_back({s.ColumnText(0), s.ColumnDouble(1), s.ColumnText(2),
                                   s.ColumnText(3), s.ColumnDouble(4), s.ColumnText(5)});
      }
    }
    {
      JC_SQL_STMT(s, c,
                  "SELECT param, target_type, target_id, url FROM idx_reference WHERE rid = ?1");
      s.BindInt(1, rid);
      while (true) {
        JC_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        rows.references.push_back(
            {s.ColumnText(0), s.ColumnText(1), s.ColumnText(2), s.ColumnText(3)});
      }
    }
    {
      JC_SQL_STMT(s, c, "SELECT param, value FROM idx_uri WHERE rid = ?1");
      s.BindInt(1, rid);
      while (true) {
        JC_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        rows.uris.push_back({s.ColumnText(0), s.ColumnText(1)});
      }
    }
    {
      JC_SQL_STMT(s, c,
                  "SELECT param, system1, code1, code2, system2, number2, canonical_code2, "
                  "canonical_number2, start2_us, end2_us FROM idx_composite WHERE rid = ?1");
      s.BindInt(1, rid);
      while (true) {
        JC_ASSIGN_OR_RETURN(bool row, s.Step());
        if (!row) break;
        rows.composites.push_back({s.ColumnText(0), s.ColumnText(1), s.ColumnText(2),
                                   s.ColumnText(3), s.ColumnText(4), s.ColumnDouble(5),
                                   s.ColumnText(6), s.ColumnDouble(7), s.ColumnInt(8),
                                   s.ColumnInt(9)});
      }
    }
    JC_RETURN_IF_ERROR(WriteIndexKeys(c, rid, rows));
  }
  return c.Exec(
      "DROP INDEX idx_token_by_rid; DROP INDEX idx_string_by_rid; DROP INDEX idx_date_by_rid; "
      "DROP INDEX idx_number_by_rid; DROP INDEX idx_quantity_by_rid; "
      "DROP INDEX idx_reference_by_rid; DROP INDEX idx_uri_by_rid; "
      "DROP INDEX idx_composite_by_rid;");
}

// Schema v5 — date rows by their end as well. idx_date's key leads with start_us, which bounds
// lt/le/eq/sa searches; ge/gt/eb/ap bound the end (a stored [s, e) matching ge X has e >= X), so
// without this index "date=ge<recent>" could only be answered by reading every date row of the
// parameter. The search planner (store/sql/search_sql.cpp) adds the bound on end_us to such
// clauses so that this index serves them.
constexpr const char* kSchemaV5 = R"sql(
CREATE INDEX idx_date_by_end ON idx_date(type, param, end_us);
)sql";

// Schema v6 — named flags of the store itself. One so far: `index_build_pending`, set while a
// bulk load defers the idx_* tables (bulk_index_build.h).
constexpr const char* kSchemaV6 = R"sql(
CREATE TABLE store_state (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
)sql";

// Schema v7 — full text of recent writes, waiting to be indexed in a batch (see
// sqlite_index_write.h, QueueFullText): one row per resource, its latest text. `fresh`: the
// resource had no row in fts_resource when its text was queued; NULL text: none any more (the
// row is deleted when indexed).
constexpr const char* kSchemaV7 = R"sql(
CREATE TABLE fts_pending (
  rid INTEGER PRIMARY KEY,
  fresh INTEGER NOT NULL,
  narrative TEXT,
  content TEXT
);
)sql";

constexpr Migration kMigrations[] = {
    {1, "resource, history and token index", kSchemaV1},
    {2, "typed search index tables", kSchemaV2},
    {3, "composite search index and full text", kSchemaV3Search},
    {4, "index keys per resource instead of rid indexes", kSchemaV4, &BackfillIndexKeys},
    {5, "date index by end", kSchemaV5},
    {6, "store state flags", kSchemaV6},
    {7, "full text of recent writes, indexed in batches", kSchemaV7},
};

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Status ApplyInTransaction(Connection& conn, std::span<const Migration> migrations) {
  JC_ASSIGN_OR_RETURN(std::optional<int64_t> app_id, conn.QueryInt("PRAGMA application_id"));
  JC_ASSIGN_OR_RETURN(
      std::optional<int64_t> has_migrations,
      conn.QueryInt("SELECT 1 FROM sqlite_schema WHERE name = 'schema_migrations'"));
  JC_ASSIGN_OR_RETURN(std::optional<int64_t> table_count,
                      conn.QueryInt("SELECT count(*) FROM sqlite_schema"));
  if (app_id.value_or(0) != 0 && *app_id != kApplicationId) {
    return Invalid("not a Jiceng database (foreign SQLite application_id)");
  }
  if (!has_migrations && table_count.value_or(0) > 0) {
    return Invalid("not a Jiceng database (tables present but no schema_migrations)");
  }
  JC_RETURN_IF_ERROR(conn.Exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at_us INTEGER NOT NULL)"));
  JC_ASSIGN_OR_RETURN(std::optional<int64_t> current,
                      conn.QueryInt("SELECT max(version) FROM schema_migrations"));
  const int64_t have = current.value_or(0);
  const int64_t known = migrations.empty() ? 0 : migrations.back().version;
  if (have > known) {
    return Error(ErrorCode::kUnavailable, "database schema version " + std::to_string(have) +
                                              " is newer than this binary knows (" +
                                              std::to_string(known) + "); run a newer jiceng");
  }
  JC_RETURN_IF_ERROR(
      conn.Exec(("PRAGMA application_id = " + std::to_string(kApplicationId)).c_str()));
  for (const Migration& m : migrations) {
    if (m.version <= have) continue;
    Status s = conn.Exec(m.sql);
    if (s.ok() && m.then) s = m.then(conn);
    if (!s.ok()) {
      Error e = std::move(s).error();
      e.message = "migration " + std::to_string(m.version) + " (" + m.name + "): " + e.message;
      return e;
    }
    JC_SQL_STMT(ins, conn,
                "INSERT INTO schema_migrations(version, name, applied_at_us) VALUES (?1, ?2, ?3)");
    ins.BindInt(1, m.version);
    ins.BindText(2, m.name);
    ins.BindInt(3, NowUs());
    JC_RETURN_IF_ERROR(ins.Run());
  }
  // Mirror the version where `sqlite3 file 'PRAGMA user_version'` shows it to an operator.
  return conn.Exec(("PRAGMA user_version = " + std::to_string(known)).c_str());
}

}  // namespace

std::span<const Migration> Migrations() { return kMigrations; }

Status ApplyMigrations(Connection& conn, std::span<const Migration> migrations) {
  for (size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version != static_cast<int>(i) + 1) {
      return Internal("schema migrations must be numbered 1, 2, 3 … without gaps");
    }
  }
  // IMMEDIATE: two processes opening the same new file must not both run migration 1.
  JC_RETURN_IF_ERROR(conn.Exec("BEGIN IMMEDIATE"));
  Status s = ApplyInTransaction(conn, migrations);
  if (s.ok()) s = conn.Exec("COMMIT");
  if (!s.ok() && conn.InTransaction()) (void)conn.Exec("ROLLBACK");
  return s;
}

}  // namespace jiceng::store::sqlite
