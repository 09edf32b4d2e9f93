// A SQLite store in a temporary directory that resources are written to with the index rows the
// extractor gives them, and searched through the query parser: the search tests' fixture.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "base/time.h"
#include "fhir/search/extractor.h"
#include "fhir/search/query.h"
#include "store/sqlite/sqlite_store.h"

namespace jiceng::search {

class SearchStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    namespace fs = std::filesystem;
    std::string tmpl = (fs::path(::testing::TempDir()) / "jiceng-search-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    auto s = store::OpenSqliteStore(dir_ + "/t.db");
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_->Close();
    std::filesystem::remove_all(dir_);
  }

  // Writes `text` (with resourceType and id) as the next version of its resource.
  void Put(std::string_view text, int64_t updated_us = 0) {
    auto v = ParseJson(text);
    ASSERT_TRUE(v.ok()) << text;
    store::ResourceVersion rv;
    rv.type = std::string(*FindString(v->get_object(), "resourceType"));
    rv.id = std::string(*FindString(v->get_object(), "id"));
    rv.last_updated_us = updated_us ? updated_us : NowMicros();
    rv.json = std::string(text);
    store::IndexRows rows = ExtractIndexRows(*v);
    Status s = store_->Write([&](store::IWriteTransaction& txn) -> Status {
      JC_ASSIGN_OR_RETURN(auto cur, txn.ReadCurrent(rv.type, rv.id));
      rv.version = cur ? cur->version + 1 : 1;
      return txn.Put(rv, rows);
    });
    ASSERT_TRUE(s.ok()) << s.error().message;
  }

  // Deletes (a tombstone version).
  void Delete(std::string_view type, std::string_view id) {
    Status s = store_->Write([&](store::IWriteTransaction& txn) -> Status {
      JC_ASSIGN_OR_RETURN(auto cur, txn.ReadCurrent(type, id));
      store::ResourceVersion v;
      v.type = std::string(type);
      v.id = std::string(id);
      v.version = cur ? cur->version + 1 : 1;
      v.last_updated_us = NowMicros();
      v.deleted = true;
      return txn.Put(v, {});
    });
    ASSERT_TRUE(s.ok()) << s.error().message;
  }

  static Params ParseQuery(std::string_view query) {
    Params params;
    size_t pos = 0;
    while (pos <= query.size() && !query.empty()) {
      size_t amp = query.find('&', pos);
      std::string_view part =
          query.substr(pos, amp == std::string_view::npos ? query.npos : amp - pos);
      size_t eq = part.find('=');
      params.emplace_back(std::string(part.substr(0, eq)),
                          eq == std::string_view::npos ? "" : std::string(part.substr(eq + 1)));
      if (amp == std::string_view::npos) break;
      pos = amp + 1;
    }
    return params;
  }

  Result<ParsedSearch> Parse(std::string_view type, std::string_view query, bool strict = true) {
    ParseOptions o;
    o.strict = strict;
    o.default_count = 1000;
    o.max_count = 1000;
    return ParseSearch(type, ParseQuery(query), o);
  }

  Result<store::SearchPage> Run(std::string_view type, std::string_view query) {
    JC_ASSIGN_OR_RETURN(ParsedSearch p, Parse(type, query));
    JC_ASSIGN_OR_RETURN(auto txn, store_->BeginRead());
    return txn->Search(p.query);
  }

  // Ids in result order; sorted when `keep_order` is false.
  std::vector<std::string> Ids(std::string_view type, std::string_view query,
                               bool keep_order = false) {
    auto page = Run(type, query);
    EXPECT_TRUE(page.ok()) << query << ": " << page.error().message;
    std::vector<std::string> ids;
    if (!page.ok()) return ids;
    for (const auto& v : page->entries) ids.push_back(v.id);
    if (!keep_order) std::sort(ids.begin(), ids.end());
    return ids;
  }

  using V = std::vector<std::string>;
  std::string dir_;
  std::unique_ptr<store::IStore> store_;
};

}  // namespace jiceng::search
