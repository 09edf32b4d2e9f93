// The bulk loader's pipeline: batches reach the store in input order even though the next one
// is handed to the store before the previous Write returns (two committers), rejections are
// reported in input order, and a batch whose commit fails after its writes ran is reported,
// not retried.
#include "ingest/bulk_loader.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <map>

#include "store/sqlite/sqlite_store.h"

namespace jiceng::ingest {
namespace {

namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::path(::testing::TempDir()) / "jiceng-ingest-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string path() const { return path_; }

 private:
  std::string path_;
};

api::FhirApiOptions Options() {
  api::FhirApiOptions o;
  o.validate = [](const json::object&, bool) { return std::vector<Issue>{}; };
  o.is_resource_type = [](std::string_view t) { return t == "Patient"; };
  return o;
}

Item Line(std::string text, std::string source) {
  Item i;
  i.text = std::move(text);
  i.source = std::move(source);
  return i;
}

std::string PatientLine(int id, int batch) {
  return fmt::format(R"({{"resourceType":"Patient","id":"p{}","name":[{{"family":"b{}"}}]}})", id,
                     batch);
}

// Wraps a store; the `fail_write`-th Write (counting from 1) runs its work in the wrapped store,
// then reports the failure a commit would (the writes are in the store, the caller is told
// they are not).
class CommitFailsAfterRun : public store::IStore {
 public:
  CommitFailsAfterRun(store::IStore& inner, int fail_write) : inner_(inner), fail_(fail_write) {}
  Result<std::unique_ptr<store::IReadTransaction>> BeginRead() override {
    return inner_.BeginRead();
  }
  Status Write(const store::WriteWork& work) override {
    const int n = ++writes_;
    Status s = inner_.Write(work);
    if (n == fail_ && s.ok()) return Error(ErrorCode::kUnavailable, "disk I/O error (test)");
    return s;
  }
  void Close() override {}
  std::string_view Backend() const override { return "test"; }
  int writes() const { return writes_; }

 private:
  store::IStore& inner_;
  const int fail_;
  std::atomic<int> writes_{0};
};

TEST(BulkLoader, BatchesReachTheStoreInInputOrderAndRejectionsAreReportedInOrder) {
  TempDir dir;
  auto opened = store::OpenSqliteStore(dir.path() + "/t.db");
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  store::IStore& st = **opened;
  const api::FhirApiOptions options = Options();
  std::vector<std::string> rejected;
  LoaderOptions lo;
  lo.prepare_threads = 2;
  lo.on_reject = [&](const Rejection& r) { rejected.push_back(r.source); };
  // 40 batches of 25 resources over 30 ids: most ids are written by many batches, so a batch
  // that overtook its predecessor would leave an older name current or a version skipped. Every
  // seventh line is not JSON.
  std::map<std::string, std::pair<int, int>> expect;  // id → (last batch, versions)
  std::vector<std::string> expect_rejected;
  int line = 0;
  {
    BulkLoader loader(st, options, lo);
    for (int b = 0; b < 40; ++b) {
      Batch batch;
      for (int k = 0; k < 25; ++k, ++line) {
        const std::string source = fmt::format("in:{:05}", line);
        if (line % 7 == 3) {
          batch.items.push_back(Line("{not json", source));
          expect_rejected.push_back(source);
          continue;
        }
        const int id = (b * 25 + k) * 7 % 30;
        batch.items.push_back(Line(PatientLine(id, b), source));
        auto& e = expect["p" + std::to_string(id)];
        e.first = b;
        ++e.second;
      }
      ASSERT_TRUE(loader.Add(std::move(batch)).ok());
    }
    ASSERT_TRUE(loader.Finish().ok());
    const LoaderStats s = loader.stats();
    EXPECT_EQ(s.rejected, static_cast<int64_t>(expect_rejected.size()));
    EXPECT_EQ(s.loaded, line - static_cast<int64_t>(expect_rejected.size()));
    EXPECT_EQ(s.batches, 40);
  }
  EXPECT_EQ(rejected, expect_rejected);
  for (const auto& [id, e] : expect) {
    auto cur = st.ReadCurrent("Patient", id);
    ASSERT_TRUE(cur.ok() && *cur) << id;
    EXPECT_EQ((*cur)->version, e.second) << id;
    EXPECT_NE((*cur)->json.find(fmt::format("\"family\":\"b{}\"", e.first)), std::string::npos)
        << id << ": " << (*cur)->json;
  }
}

TEST(BulkLoader, ABatchWhoseCommitFailsAfterItsWritesRanIsReportedNotRetried) {
  TempDir dir;
  auto opened = store::OpenSqliteStore(dir.path() + "/t.db");
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  CommitFailsAfterRun st(**opened, /*fail_write=*/3);
  const api::FhirApiOptions options = Options();
  std::vector<Rejection> rejected;
  LoaderOptions lo;
  lo.prepare_threads = 1;
  lo.on_reject = [&](const Rejection& r) { rejected.push_back(r); };
  BulkLoader loader(st, options, lo);
  Status added = Status::Ok();
  for (int b = 0; b < 6 && added.ok(); ++b) {
    Batch batch;
    for (int k = 0; k < 10; ++k)
      batch.items.push_back(Line(PatientLine(b * 10 + k, b), fmt::format("in:{}", b * 10 + k)));
    added = loader.Add(std::move(batch));
  }
  const Status finished = loader.Finish();
  // The store failed: the load stops with its error.
  ASSERT_FALSE(finished.ok());
  EXPECT_EQ(finished.error().code, ErrorCode::kUnavailable);
  // The third batch's ten resources are reported, in order, and were not written again one by
  // one (that would have been ten more Writes, and version 2 of each).
  ASSERT_GE(rejected.size(), 10u);
  for (int k = 0; k < 10; ++k) {
    EXPECT_EQ(rejected[k].source, fmt::format("in:{}", 20 + k));
    EXPECT_NE(rejected[k].reason.find("not written"), std::string::npos) << rejected[k].reason;
    auto cur = (*opened)->ReadCurrent("Patient", "p" + std::to_string(20 + k));
    ASSERT_TRUE(cur.ok() && *cur);
    EXPECT_EQ((*cur)->version, 1);
  }
  EXPECT_LE(st.writes(), 4);  // batches 1-3, and at most the one already handed over
  // Nothing of the first two batches is lost or reported.
  for (const auto& r : rejected) EXPECT_GE(r.source, "in:20") << r.source;
  EXPECT_EQ(loader.stats().loaded, 20 + (st.writes() == 4 ? 10 : 0));
}

}  // namespace
}  // namespace jiceng::ingest
