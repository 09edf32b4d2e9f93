// The SQLite write side of the search index: replaces a resource's rows in the idx_* tables
// (schema in sqlite_schema.cpp) in the same transaction as its version.
#include "store/sqlite/sqlite_index_write.h"

#include <string>

#include "store/sqlite/connection.h"

namespace jiceng::store::sqlite {
namespace {

Status DeleteRows(Connection& c, const std::string& sql, int64_t rid) {
  JC_SQL_STMT(s, c, sql);
  s.BindInt(1, rid);
  return s.Run();
}

}  // namespace

Status ReplaceIndexRows(Connection& c, std::string_view type, int64_t rid, bool fresh,
                        const IndexRows& index) {
  for (const char* table :
       {"idx_token", "idx_string", "idx_date", "idx_number", "idx_quantity", "idx_reference",
        "idx_uri"}) {
    if (fresh) break;
    JC_RETURN_IF_ERROR(DeleteRows(c, std::string("DELETE FROM ") + table + " WHERE rid = ?1", rid));
  }
  // OR IGNORE throughout: the same value reached by two paths of one resource is one row.
  for (const TokenIndexRow& t : index.tokens) {
    JC_SQL_STMT(s, c,
                "INSERT OR IGNORE INTO idx_token(type, param, code, system, rid) "
                "VALUES (?1, ?2, ?3, ?4, ?5)");
    s.BindText(1, type);
    s.BindText(2, t.param);
    s.BindText(3, t.code);
    s.BindText(4, t.system);
    s.BindInt(5, rid);
    JC_RETURN_IF_ERROR(s.Run());
  }
  for (const StringIndexRow& r : index.strings) {
    JC_SQL_STMT(s, c,
                "INSERT OR IGNORE INTO idx_string(type, param, value, exact, rid) "
                "VALUES (?1, ?2, ?3, ?4, ?5)");
    s.BindText(1, type);
    s.BindText(2, r.param);
    s.BindText(3, r.value);
    s.BindText(4, r.exact);
    s.BindInt(5, rid);
    JC_RETURN_IF_ERROR(s.Run());
  }
  for (const DateIndexRow& r : index.dates) {
    JC_SQL_STMT(s, c,
                "INSERT OR IGNORE INTO idx_date(type, param, start_us, end_us, rid) "
                "VALUES (?1, ?2, ?3, ?4, ?5)");
    s.BindText(1, type);
    s.BindText(2, r.param);
    s.BindInt(3, r.start_us);
    s.BindInt(4, r.end_us);
    s.BindInt(5, rid);
    JC_RETURN_IF_ERROR(s.Run());
  }
  for (const NumberIndexRow& r : index.numbers) {
    JC_SQL_STMT(s, c,
                "INSERT OR IGNORE INTO idx_number(type, param, value, rid) VALUES (?1, ?2, ?3, ?4)");
    s.BindText(1, type);
    s.BindText(2, r.param);
    s.BindDouble(3, r.value);
    s.BindInt(4, rid);
    JC_RETURN_IF_ERROR(s.Run());
  }
  for (const QuantityIndexRow& r : index.quantities) {
    JC_SQL_STMT(s, c,
                "INSERT OR IGNORE INTO idx_quantity(type, param, code, system, value, "
                "canonical_code, canonical_value, rid) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    s.BindText(1, type);
    s.BindText(2, r.param);
    s.BindText(3, r.code);
    s.BindText(4, r.system);
    s.BindDouble(5, r.value);
    s.BindText(6, r.canonical_code);
    s.BindDouble(7, r.canonical_value);
    s.BindInt(8, rid);
    JC_RETURN_IF_ERROR(s.Run());
  }
  for (const ReferenceIndexRow& r : index.references) {
    JC_SQL_STMT(s, c,
                "INSERT OR IGNORE INTO idx_reference(type, param, target_id, target_type, url, rid) "
                "VALUES (?1, ?2, ?3, ?4, ?5, ?6)");
    s.BindText(1, type);
    s.BindText(2, r.param);
    s.BindText(3, r.target_id);
    s.BindText(4, r.target_type);
    s.BindText(5, r.url);
    s.BindInt(6, rid);
    JC_RETURN_IF_ERROR(s.Run());
  }
  for (const UriIndexRow& r : index.uris) {
    JC_SQL_STMT(s, c,
                "INSERT OR IGNORE INTO idx_uri(type, param, value, rid) VALUES (?1, ?2, ?3, ?4)");
    s.BindText(1, type);
    s.BindText(2, r.param);
    s.BindText(3, r.value);
    s.BindInt(4, rid);
    JC_RETURN_IF_ERROR(s.Run());
  }
  return Status::Ok();
}

}  // namespace jiceng::store::sqlite
