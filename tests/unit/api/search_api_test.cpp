// Search result shaping through FhirApi in process, over a real store of each backend (SQLite and
// PostgreSQL, api_fixture.h): _include and _revinclude (with :iterate and the caps), compartment
// search, $everything, paging links and the CapabilityStatement.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "api/fhir_api.h"
#include "api/interactions.h"
#include "api_fixture.h"
#include "base/time.h"
#include "fhir/definitions.h"
#include "fhir/validator.h"

namespace jiceng::api {
namespace {

namespace fs = std::filesystem;

using SearchApiTest = testing::ApiTest;

using V = std::vector<std::string>;

TEST_P(SearchApiTest, IncludeAddsTargetsOnceWithoutCountingThem) {
  Seed();
  auto b = Get("/fhir/Observation?code=8867-4&_include=Observation:subject");
  EXPECT_EQ(b.at("total"), 2);
  EXPECT_EQ(Entries(b, "match"), (V{"Observation/o1", "Observation/o3"}));
  EXPECT_EQ(Entries(b, "include"), (V{"Patient/p1", "Patient/p2"}));
  EXPECT_NE(Link(b, "self")->find("_include=Observation:subject"), std::string::npos);

  // Both observations of p1: the patient once.
  b =
      Get("/fhir/Observation?subject=Patient/"
          "p1&_include=Observation:subject&_include=Observation:performer");
  EXPECT_EQ(Entries(b, "match"), (V{"Observation/o1", "Observation/o2"}));
  EXPECT_EQ(Entries(b, "include"), (V{"Patient/p1", "Practitioner/d1", "Practitioner/d2"}));

  // A target type restricts.
  b = Get("/fhir/Observation?_include=Observation:performer:Patient");
  EXPECT_EQ(Entries(b, "include"), V{"Patient/p1"});
}

TEST_P(SearchApiTest, IncludeWildcards) {
  Seed();
  auto b = Get("/fhir/Observation?_id=o1&_include=*");
  EXPECT_EQ(Entries(b, "match"), V{"Observation/o1"});
  std::vector<std::string> inc = Entries(b, "include");
  std::set<std::string> got(inc.begin(), inc.end());
  EXPECT_EQ(got, (std::set<std::string>{"Patient/p1", "Practitioner/d1", "Encounter/e1"}));
  EXPECT_EQ(inc.size(), got.size());

  b = Get("/fhir/Observation?_id=o1&_include=Observation:*:Practitioner");
  EXPECT_EQ(Entries(b, "include"), V{"Practitioner/d1"});
}

TEST_P(SearchApiTest, RevInclude) {
  Seed();
  auto b = Get("/fhir/Patient?_id=p1&_revinclude=Observation:subject");
  EXPECT_EQ(b.at("total"), 1);
  EXPECT_EQ(Entries(b, "match"), V{"Patient/p1"});
  EXPECT_EQ(Entries(b, "include"), (V{"Observation/o1", "Observation/o2"}));

  b = Get("/fhir/Patient?_revinclude=Observation:performer");
  EXPECT_EQ(Entries(b, "include"), V{"Observation/o4"});

  // Several matches: every referencing resource once.
  b = Get("/fhir/Practitioner?_revinclude=Observation:performer&_revinclude=Encounter:participant");
  EXPECT_EQ(Entries(b, "match"), (V{"Practitioner/d1", "Practitioner/d2"}));
  EXPECT_EQ(Entries(b, "include"),
            (V{"Observation/o1", "Observation/o2", "Observation/o3", "Encounter/e1"}));
}

TEST_P(SearchApiTest, IterateFollowsIncludedResourcesAndStops) {
  Seed();
  // A cycle o10 -> o11 -> o12 -> o10.
  Put(Obs("o10", "p1", "1", R"(,"hasMember":[{"reference":"Observation/o11"}])"));
  Put(Obs("o11", "p1", "1", R"(,"hasMember":[{"reference":"Observation/o12"}])"));
  Put(Obs("o12", "p1", "1", R"(,"hasMember":[{"reference":"Observation/o10"}])"));
  auto b = Get("/fhir/Observation?_id=o10&_include=Observation:has-member");
  EXPECT_EQ(Entries(b, "include"), V{"Observation/o11"});
  b = Get("/fhir/Observation?_id=o10&_include:iterate=Observation:has-member");
  EXPECT_EQ(Entries(b, "include"), (V{"Observation/o11", "Observation/o12"}));
  b = Get("/fhir/Observation?_id=o10&_include:recurse=Observation:has-member");
  EXPECT_EQ(Entries(b, "include"), (V{"Observation/o11", "Observation/o12"}));
  // A match is never repeated as an include.
  b = Get("/fhir/Observation?_id=o10,o11&_include=Observation:has-member");
  EXPECT_EQ(Entries(b, "match"), (V{"Observation/o10", "Observation/o11"}));
  EXPECT_EQ(Entries(b, "include"), V{"Observation/o12"});

  // An :iterate include applies to what a _revinclude added; a plain one does not.
  b = Get("/fhir/Patient?_id=p2&_revinclude=Observation:subject&_include=Observation:performer");
  EXPECT_EQ(Entries(b, "include"), (V{"Observation/o3", "Observation/o4"}));
  b =
      Get("/fhir/"
          "Patient?_id=p2&_revinclude=Observation:subject&_include:iterate=Observation:performer");
  EXPECT_EQ(Entries(b, "include"),
            (V{"Observation/o3", "Observation/o4", "Practitioner/d1", "Patient/p1"}));
}

TEST_P(SearchApiTest, IncludeCaps) {
  Seed();
  FhirApiOptions o;
  o.max_include_count = 2;
  o.max_include_iterations = 1;
  MakeApi(o);
  auto b = Get("/fhir/Practitioner?_revinclude=Observation:performer");
  EXPECT_EQ(Entries(b, "include").size(), 2u);
  auto issues = OutcomeIssues(b);
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].rfind("incomplete: ", 0), 0u) << issues[0];

  // A chain longer than the rounds allowed.
  Put(Obs("c1", "p1", "1", R"(,"hasMember":[{"reference":"Observation/c2"}])"));
  Put(Obs("c2", "p1", "1", R"(,"hasMember":[{"reference":"Observation/c3"}])"));
  Put(Obs("c3", "p1", "1", R"(,"hasMember":[{"reference":"Observation/c4"}])"));
  Put(Obs("c4", "p1", "1"));
  o.max_include_count = 100;
  MakeApi(o);
  b = Get("/fhir/Observation?_id=c1&_include:iterate=Observation:has-member");
  EXPECT_EQ(Entries(b, "include"), (V{"Observation/c2", "Observation/c3"}));
  issues = OutcomeIssues(b);
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_NE(issues[0].find(":iterate stopped"), std::string::npos);
}

// Past search_total_limit matches the total is left out unless the client asks _total=accurate;
// _summary=count always counts. The last link, found from the end, needs no total.
TEST_P(SearchApiTest, TotalIsCountedUpToTheLimitUnlessAccurateIsAsked) {
  Seed();  // four Observations
  FhirApiOptions o;
  o.search_total_limit = 3;
  MakeApi(o);
  auto b = Get("/fhir/Observation?_count=2");
  EXPECT_EQ(b.if_contains("total"), nullptr);
  ASSERT_NE(Link(b, "last"), std::nullopt);
  EXPECT_NE(Link(b, "last")->find("_cursor="), std::string::npos);
  EXPECT_EQ(Link(b, "last")->find("_getpagesoffset"), std::string::npos);
  EXPECT_NE(Link(b, "next"), std::nullopt);
  auto last = Get(Target(*Link(b, "last")));
  EXPECT_EQ(Entries(last, "match"), (V{"Observation/o3", "Observation/o4"}));
  EXPECT_FALSE(Link(last, "next"));
  b = Get("/fhir/Observation?_count=2&_total=estimate");
  EXPECT_EQ(b.if_contains("total"), nullptr);
  b = Get("/fhir/Observation?_count=2&_total=accurate");
  EXPECT_EQ(b.at("total"), 4);
  EXPECT_NE(Link(b, "last"), std::nullopt);
  b = Get("/fhir/Observation?_summary=count");
  EXPECT_EQ(b.at("total"), 4);
  b = Get("/fhir/Observation?_count=2&subject=Patient/p1");  // within the limit
  EXPECT_EQ(b.at("total"), 2);
}

// A search that collects every match anyway keeps their ids for stable paging even past
// search_total_limit: its total stays unreported on every page, and the later pages neither
// shift when a match is deleted nor offer a page after the last.
TEST_P(SearchApiTest, CollectedMatchesPageStablyPastTheTotalLimit) {
  FhirApiOptions o;
  o.search_total_limit = 3;
  MakeApi(o);
  for (int i = 1; i <= 5; ++i) Put(Obs("k" + std::to_string(i), "p1", "8867-4"));
  Put(Obs("other", "p1", "29463-7"));
  auto b = Get("/fhir/Observation?code=8867-4&_sort=_id&_count=2");
  EXPECT_EQ(b.if_contains("total"), nullptr);
  EXPECT_EQ(Entries(b, "match"), (V{"Observation/k1", "Observation/k2"}));
  ASSERT_TRUE(Link(b, "next"));
  EXPECT_NE(Link(b, "next")->find("_getpages="), std::string::npos);
  ASSERT_EQ(Call("DELETE", "/fhir/Observation/k1").status, 204);
  auto second = Get(Target(*Link(b, "next")));
  EXPECT_EQ(second.if_contains("total"), nullptr);
  EXPECT_EQ(Entries(second, "match"), (V{"Observation/k3", "Observation/k4"}));
  ASSERT_TRUE(Link(second, "next"));
  auto third = Get(Target(*Link(second, "next")));
  EXPECT_EQ(Entries(third, "match"), V{"Observation/k5"});
  EXPECT_FALSE(Link(third, "next"));
}

// Past the kept ids (here: none kept), a next link carries a _cursor: the page after the last
// entry of this one, so that matches on earlier pages that are deleted or updated meanwhile shift
// nothing. previous, first and self keep working; a cursor that is not the server's is a 400.
TEST_P(SearchApiTest, NextLinksPastTheKeptIdsStartAfterTheLastEntry) {
  FhirApiOptions o;
  o.search_results.max_ids = 0;
  MakeApi(o);
  for (int i = 1; i <= 7; ++i) Put(Obs("k" + std::to_string(i), "p1", "8867-4"));
  for (const std::string sort : {"_id", "-_lastUpdated,_id", "-code,-_id"}) {
    SCOPED_TRACE(sort);
    auto b = Get("/fhir/Observation?code=8867-4&_count=2&_sort=" + sort);
    const V first_page = Entries(b, "match");
    ASSERT_EQ(first_page.size(), 2u);
    ASSERT_TRUE(Link(b, "next"));
    EXPECT_NE(Link(b, "next")->find("_cursor="), std::string::npos);
    EXPECT_EQ(Link(b, "self")->find("_cursor="), std::string::npos);
    // Both entries of the first page change after it was served: the rest stays in place.
    ASSERT_EQ(Call("DELETE", "/fhir/" + first_page[0]).status, 204);
    Put(Obs(first_page[1].substr(first_page[1].find('/') + 1), "p1", "8867-4"));
    V rest;
    std::vector<V> pages;
    auto page = b;
    while (auto next = Link(page, "next")) {
      page = Get(Target(*next));
      EXPECT_EQ(page.at("total"), 5);  // the matches of the snapshot still there unchanged
      pages.push_back(Entries(page, "match"));
      for (const std::string& e : pages.back()) rest.push_back(e);
      ASSERT_TRUE(Link(page, "previous"));
      EXPECT_NE(Link(page, "previous")->find("_cursor="), std::string::npos);
      // self repeats the page.
      EXPECT_EQ(Entries(Get(Target(*Link(page, "self"))), "match"), Entries(page, "match"));
    }
    EXPECT_EQ(rest.size(), 5u);
    for (const std::string& id : first_page) EXPECT_EQ(std::count(rest.begin(), rest.end(), id), 0);
    // Back through the previous links: each page before the first entry of the one after it,
    // the same pages; before the first of them nothing is left in the snapshot (both entries
    // of the first page changed), so the previous link gives the first page as it is now.
    ASSERT_EQ(pages.size(), 3u);
    for (size_t i = pages.size() - 1; i > 0; --i) {
      page = Get(Target(*Link(page, "previous")));
      EXPECT_EQ(Entries(page, "match"), pages[i - 1]) << i;
      EXPECT_EQ(page.at("total"), 5);
      ASSERT_TRUE(Link(page, "next"));
      EXPECT_EQ(Entries(Get(Target(*Link(page, "next"))), "match"), pages[i]);
    }
    page = Get(Target(*Link(page, "previous")));
    EXPECT_EQ(Entries(page, "match"), pages[0]);
    EXPECT_FALSE(Link(page, "previous"));
    // Put the two back as they were for the next order.
    Put(Obs(first_page[0].substr(first_page[0].find('/') + 1), "p1", "8867-4"));
  }
  Response r = Call("GET", "/fhir/Observation?code=8867-4&_cursor=bm90IGEgY3Vyc29y");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("_cursor"), std::string::npos);
  // A cursor of another order (two values for one key).
  r = Call("GET", "/fhir/Observation?_sort=_id&_cursor=WzEsMiwiazEiXQ");
  EXPECT_EQ(r.status, 400);
}

// The last link is the page before the end (a _cursor, not an offset computed from the first
// page's total): the last _count matches of the snapshot however many before them dropped out
// since. It has no next link; its previous link goes back by cursor. With kept ids its
// _getpagesoffset serves the same page, and another process finds it from the cursor.
TEST_P(SearchApiTest, LastLinkIsTheMatchesBeforeTheEnd) {
  for (int i = 1; i <= 7; ++i) Put(Obs("k" + std::to_string(i), "p1", "8867-4"));
  for (const bool kept : {false, true}) {
    for (const std::string sort : {"_id", "-_lastUpdated,_id", "-code,-_id"}) {
      SCOPED_TRACE(sort + (kept ? ", kept ids" : ""));
      FhirApiOptions o;
      if (!kept) o.search_results.max_ids = 0;
      MakeApi(o);
      const std::string search = "/fhir/Observation?code=8867-4&_sort=" + sort;
      const V order = Entries(Get(search + "&_count=100"), "match");
      ASSERT_EQ(order.size(), 7u);
      auto b = Get(search + "&_count=2");
      ASSERT_TRUE(Link(b, "last"));
      EXPECT_NE(Link(b, "last")->find("_cursor="), std::string::npos);
      EXPECT_EQ(Link(b, "last")->find("_getpagesoffset=5") != std::string::npos, true);
      EXPECT_EQ(Link(b, "last")->find("_getpages=") != std::string::npos, kept);
      if (kept) {
        // From the kept ids, then in another process from the cursor: the same page.
        auto last = Get(Target(*Link(b, "last")));
        EXPECT_EQ(Entries(last, "match"), V(order.end() - 2, order.end()));
        EXPECT_FALSE(Link(last, "next"));
        MakeApi(o);
        last = Get(Target(*Link(b, "last")));
        EXPECT_EQ(Entries(last, "match"), V(order.end() - 2, order.end()));
        EXPECT_FALSE(Link(last, "next"));
        continue;
      }
      // Both entries of the first page change after it was served: by offset the last page
      // (from 6 of 7) would now be empty.
      ASSERT_EQ(Call("DELETE", "/fhir/" + order[0]).status, 204);
      Put(Obs(order[1].substr(order[1].find('/') + 1), "p1", "8867-4"));
      auto last = Get(Target(*Link(b, "last")));
      EXPECT_EQ(Entries(last, "match"), V(order.end() - 2, order.end()));
      EXPECT_EQ(last.at("total"), 5);
      EXPECT_FALSE(Link(last, "next"));
      EXPECT_EQ(Entries(Get(Target(*Link(last, "self"))), "match"), Entries(last, "match"));
      ASSERT_TRUE(Link(last, "previous"));
      auto prev = Get(Target(*Link(last, "previous")));
      EXPECT_EQ(Entries(prev, "match"), V(order.end() - 4, order.end() - 2));
      ASSERT_TRUE(Link(prev, "next"));
      EXPECT_EQ(Entries(Get(Target(*Link(prev, "next"))), "match"), Entries(last, "match"));
      // Put the two back as they were for the next order.
      Put(Obs(order[0].substr(order[0].find('/') + 1), "p1", "8867-4"));
    }
  }
  // A cursor of the end on a forward page is not the server's.
  EXPECT_EQ(Call("GET", "/fhir/Observation?_cursor=ImVuZCI").status, 400);
}

// Another process (a fresh FhirApi over the same database) continues from the links of pages
// served from kept ids after the last entry of the page it was given, so the matches deleted or
// updated since shift nothing there either. Where kept ids stay in their process (SQLite: the
// fresh FhirApi has none of this one's searches) the links carry a _cursor beside _getpages and
// the other process pages from it; where they are shared through the database (PostgreSQL,
// IStore::SharesSearchResults) the other process finds them there, and only the first page's
// links carry one (AFirstPageLinkPagesFromItsCursorBeforeItsIdsAreFound).
TEST_P(SearchApiTest, KeptIdLinksLetAnotherProcessContinue) {
  const bool with_cursor = !store_->SharesSearchResults();
  for (int i = 1; i <= 9; ++i) Put(Obs("k" + std::to_string(i), "p1", "8867-4"));
  for (const std::string sort : {"_id", "-_lastUpdated,_id", "-code,-_id"}) {
    SCOPED_TRACE(sort);
    MakeApi(FhirApiOptions{});
    const std::string search = "/fhir/Observation?code=8867-4&_count=2&_sort=" + sort;
    auto b = Get(search);
    ASSERT_EQ(Entries(b, "match").size(), 2u);
    ASSERT_TRUE(Link(b, "next"));
    EXPECT_NE(Link(b, "next")->find("_getpages="), std::string::npos);
    EXPECT_NE(Link(b, "next")->find("_cursor="), std::string::npos);
    // The second page comes from the kept ids, and so do its links (a cursor among them where
    // the ids are not shared).
    auto second = Get(Target(*Link(b, "next")));
    const V second_page = Entries(second, "match");
    ASSERT_EQ(second_page.size(), 2u);
    ASSERT_TRUE(Link(second, "next"));
    EXPECT_NE(Link(second, "next")->find("_getpages="), std::string::npos);
    EXPECT_EQ(Link(second, "next")->find("_cursor=") != std::string::npos, with_cursor);
    // The whole order, as this process pages it.
    V expected = Entries(b, "match");
    expected.insert(expected.end(), second_page.begin(), second_page.end());
    for (auto page = second; Link(page, "next");) {
      page = Get(Target(*Link(page, "next")));
      for (std::string& e : Entries(page, "match")) expected.push_back(std::move(e));
    }
    ASSERT_EQ(expected.size(), 9u);

    // Shared ids are published off the request's path (IStore::PublishSearchResults): another
    // process finds them once the insert has landed, so wait for that (a miss in between is the
    // documented window, in which the other process pages without them).
    if (store_->SharesSearchResults()) {
      const std::string link = *Link(second, "next");
      const size_t at = link.find("_getpages=") + std::string("_getpages=").size();
      const std::string key = link.substr(at, link.find('&', at) - at);
      bool visible = false;
      for (int tries = 0; tries < 200 && !visible; ++tries) {
        auto found = store_->FindSearchResults(key, NowMicros(), NowMicros() + 60'000'000);
        visible = found.ok() && found->has_value();
        if (!visible) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      ASSERT_TRUE(visible) << "kept ids " << key << " never published";
    }
    // Another process, and both entries of the second page changed since.
    MakeApi(FhirApiOptions{});
    ASSERT_EQ(Call("DELETE", "/fhir/" + second_page[0]).status, 204);
    Put(Obs(second_page[1].substr(second_page[1].find('/') + 1), "p1", "8867-4"));
    V rest;
    for (auto page = second; Link(page, "next");) {
      page = Get(Target(*Link(page, "next")));
      for (std::string& e : Entries(page, "match")) rest.push_back(std::move(e));
    }
    EXPECT_EQ(rest, V(expected.begin() + 4, expected.end()));
    // And back: the second page's previous link, before its first entry.
    ASSERT_TRUE(Link(second, "previous"));
    EXPECT_EQ(Link(second, "previous")->find("_cursor=") != std::string::npos, with_cursor);
    EXPECT_EQ(Entries(Get(Target(*Link(second, "previous"))), "match"),
              V(expected.begin(), expected.begin() + 2));
    // Put the two back as they were for the next order.
    Put(Obs(second_page[0].substr(second_page[0].find('/') + 1), "p1", "8867-4"));
  }
}

// A first page's links carry its cursor beside the kept ids' key on every backend: where the ids
// are shared (PostgreSQL) they are published off the request's path, and a link that reaches
// another process before they land finds no ids under its key. That process then runs the
// search again after the cursor, under the page's snapshot: a match of the first page deleted
// since shifts nothing. (An unknown key stands for the ids not yet published: the same miss.)
TEST_P(SearchApiTest, AFirstPageLinkPagesFromItsCursorBeforeItsIdsAreFound) {
  for (int i = 1; i <= 7; ++i) Put(Obs("w" + std::to_string(i), "p1", "8867-4"));
  for (const std::string sort : {"_id", "-_lastUpdated,_id"}) {
    SCOPED_TRACE(sort);
    MakeApi(FhirApiOptions{});
    const std::string search = "/fhir/Observation?code=8867-4&_count=3&_sort=" + sort;
    V all;
    for (auto page = Get(search);; page = Get(Target(*Link(page, "next")))) {
      for (std::string& e : Entries(page, "match")) all.push_back(std::move(e));
      if (!Link(page, "next")) break;
    }
    ASSERT_EQ(all.size(), 7u);
    auto first = Get(search);
    ASSERT_EQ(Entries(first, "match"), V(all.begin(), all.begin() + 3));
    std::string next = *Link(first, "next");
    ASSERT_NE(next.find("_cursor="), std::string::npos);
    const size_t at = next.find("_getpages=") + std::string("_getpages=").size();
    ASSERT_NE(at, std::string::npos + std::string("_getpages=").size());
    next.replace(at, next.find('&', at) - at, "00000000-0000-4000-8000-000000000000");
    MakeApi(FhirApiOptions{});
    ASSERT_EQ(Call("DELETE", "/fhir/" + all[0]).status, 204);
    EXPECT_EQ(Entries(Get(Target(next)), "match"), V(all.begin() + 3, all.begin() + 6));
    Put(Obs(all[0].substr(all[0].find('/') + 1), "p1", "8867-4"));
  }
}

TEST_P(SearchApiTest, IncludeIsOffForSummaryCountAndBadValues) {
  Seed();
  auto b = Get("/fhir/Observation?_include=Observation:subject&_summary=count");
  EXPECT_EQ(b.at("total"), 4);
  EXPECT_EQ(b.if_contains("entry"), nullptr);
  // Lenient: a bad _include is ignored with a warning and left out of the self link.
  b = Get("/fhir/Observation?_id=o1&_include=Observation:nope");
  EXPECT_EQ(Entries(b, "match"), V{"Observation/o1"});
  EXPECT_EQ(Link(b, "self")->find("_include"), std::string::npos);
  ASSERT_EQ(OutcomeIssues(b).size(), 1u);
  // Strict: 400 naming it.
  Response r = Call("GET", "/fhir/Observation?_include=Observation:nope", {},
                    {{"prefer", "handling=strict"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("nope"), std::string::npos);
}

TEST_P(SearchApiTest, NearAndQueryAreNotSupported) {
  Put(R"({"resourceType":"Location","id":"l1","name":"Clinic"})");
  auto b = Get("/fhir/Location?near=30.8|120.9|10|km");
  EXPECT_EQ(Entries(b, "match"), V{"Location/l1"});
  auto issues = OutcomeIssues(b);
  ASSERT_EQ(issues.size(), 1u);
  EXPECT_EQ(issues[0].rfind("not-supported: ", 0), 0u);
  EXPECT_EQ(Link(b, "self")->find("near"), std::string::npos);
  for (const char* prefer :
       {"handling=strict", "handling = strict", "return=minimal; handling=strict",
        "return=minimal, handling=\"strict\""}) {
    Response r = Call("GET", "/fhir/Location?_query=closest", {}, {{"prefer", prefer}});
    EXPECT_EQ(r.status, 400) << prefer;
    EXPECT_NE(r.body.find("not-supported"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("_query"), std::string::npos) << r.body;
  }
  // handling=lenient is the default, said out loud.
  EXPECT_EQ(
      Call("GET", "/fhir/Location?_query=closest", {}, {{"prefer", "handling=lenient"}}).status,
      200);
}

TEST_P(SearchApiTest, CountZeroHasNoNextLink) {
  Seed();
  auto b = Get("/fhir/Observation?_count=0");
  EXPECT_EQ(b.at("total"), 4);
  EXPECT_EQ(b.at("link").get_array().size(), 1u);
  EXPECT_EQ(b.if_contains("entry"), nullptr);
}

TEST_P(SearchApiTest, PagingLinksWalkTheSnapshot) {
  Seed();
  auto b = Get("/fhir/Observation?_count=3&_sort=_id");
  EXPECT_EQ(Entries(b, "match"), (V{"Observation/o1", "Observation/o2", "Observation/o3"}));
  ASSERT_TRUE(Link(b, "next") && Link(b, "first") && Link(b, "last"));
  EXPECT_FALSE(Link(b, "previous"));
  Put(Obs("o0", "p1", "1"));  // sorts first, after the snapshot
  auto n = Get(Target(*Link(b, "next")));
  EXPECT_EQ(n.at("total"), 4);
  EXPECT_EQ(Entries(n, "match"), V{"Observation/o4"});
  EXPECT_FALSE(Link(n, "next"));
  auto first = Get(Target(*Link(n, "previous")));
  EXPECT_EQ(Entries(first, "match"), (V{"Observation/o1", "Observation/o2", "Observation/o3"}));
  // self repeats the request (its cursor too); last is the last three matches.
  EXPECT_EQ(Entries(Get(Target(*Link(n, "last"))), "match"),
            (V{"Observation/o2", "Observation/o3", "Observation/o4"}));
  EXPECT_EQ(Entries(Get(Target(*Link(n, "self"))), "match"), V{"Observation/o4"});
}

TEST_P(SearchApiTest, PostSearchTakesIncludesAndShapingFromTheBody) {
  Seed();
  Response r = Call("POST", "/fhir/Observation/_search",
                    "_id=o2&_include=Observation:subject&_elements=status",
                    {{"content-type", "application/x-www-form-urlencoded"}});
  ASSERT_EQ(r.status, 200) << r.body;
  auto b = ParseJson(r.body)->get_object();
  EXPECT_EQ(Entries(b, "match"), V{"Observation/o2"});
  EXPECT_EQ(Entries(b, "include"), V{"Patient/p1"});
  const json::object& o2 = b.at("entry").at(0).at("resource").get_object();
  EXPECT_NE(o2.if_contains("status"), nullptr);   // _elements
  EXPECT_NE(o2.if_contains("code"), nullptr);     // mandatory
  EXPECT_EQ(o2.if_contains("subject"), nullptr);  // neither
}

TEST_P(SearchApiTest, CompartmentSearch) {
  Seed();
  // subject OR performer: o4 is about p2 but performed by p1.
  auto b = Get("/fhir/Patient/p1/Observation");
  EXPECT_EQ(b.at("total"), 3);
  EXPECT_EQ(Entries(b, "match"), (V{"Observation/o1", "Observation/o2", "Observation/o4"}));
  EXPECT_EQ(Link(b, "self")->rfind("http://test/fhir/Patient/p1/Observation?", 0), 0u);
  // With criteria, sorting and paging across the union.
  b = Get("/fhir/Patient/p1/Observation?code=29463-7&_sort=-_id&_count=1");
  EXPECT_EQ(b.at("total"), 2);
  EXPECT_EQ(Entries(b, "match"), V{"Observation/o4"});
  auto n = Get(Target(*Link(b, "next")));
  EXPECT_EQ(Entries(n, "match"), V{"Observation/o2"});
  // The same by cursor alone (no ids kept): the union of the parameters' matches is listed
  // whole, then paged after the cursor.
  {
    FhirApiOptions o;
    o.search_results.max_ids = 0;
    MakeApi(o);
    b = Get("/fhir/Patient/p1/Observation?code=29463-7&_sort=-_id&_count=1");
    ASSERT_TRUE(Link(b, "next"));
    ASSERT_NE(Link(b, "next")->find("_cursor="), std::string::npos);
    n = Get(Target(*Link(b, "next")));
    EXPECT_EQ(n.at("total"), 2);
    EXPECT_EQ(Entries(n, "match"), V{"Observation/o2"});
    MakeApi(FhirApiOptions{});
  }
  // One parameter only (Encounter: subject): no union needed.
  b = Get("/fhir/Patient/p1/Encounter?_include=Encounter:participant");
  EXPECT_EQ(Entries(b, "match"), V{"Encounter/e1"});
  EXPECT_EQ(Entries(b, "include"), V{"Practitioner/d2"});
  b = Get("/fhir/Patient/p2/Observation?_total=none");
  EXPECT_EQ(b.if_contains("total"), nullptr);
  EXPECT_EQ(Entries(b, "match"), (V{"Observation/o3", "Observation/o4"}));
  // Other compartments share the code: Encounter (with {def}) and Practitioner.
  b = Get("/fhir/Encounter/e1/Observation");
  EXPECT_EQ(Entries(b, "match"), V{"Observation/o1"});
  b = Get("/fhir/Encounter/e1/Encounter");
  EXPECT_EQ(Entries(b, "match"), V{"Encounter/e1"});
  b = Get("/fhir/Practitioner/d1/Observation");
  EXPECT_EQ(Entries(b, "match"), (V{"Observation/o1", "Observation/o3"}));
  b = Get("/fhir/Practitioner/d2/Encounter");
  EXPECT_EQ(Entries(b, "match"), V{"Encounter/e1"});
  // Errors.
  Get("/fhir/Patient/nobody/Observation", 404);
  Get("/fhir/Observation/o1/Patient", 404);
  Get("/fhir/Patient/p1/Organization", 400);
  Get("/fhir/Patient/p1/Nope", 404);
  EXPECT_EQ(Call("DELETE", "/fhir/Patient/p1/Observation").status, 405);
  ASSERT_EQ(Call("DELETE", "/fhir/Patient/p2").status, 204);
  Get("/fhir/Patient/p2/Observation", 410);
}

TEST_P(SearchApiTest, CompartmentSearchOfEveryType) {
  Seed();
  auto b = Get("/fhir/Patient/p1/*");
  EXPECT_EQ(b.at("total"), 4);
  EXPECT_EQ(Entries(b, "match"),
            (V{"Encounter/e1", "Observation/o1", "Observation/o2", "Observation/o4"}));
  b = Get("/fhir/Patient/p1/*?_type=Observation&_count=2");
  EXPECT_EQ(b.at("total"), 3);
  EXPECT_EQ(Entries(b, "match"), (V{"Observation/o1", "Observation/o2"}));
  EXPECT_NE(Link(b, "self")->find("_type=Observation"), std::string::npos);
  auto n = Get(Target(*Link(b, "next")));
  EXPECT_EQ(Entries(n, "match"), V{"Observation/o4"});
  // Common parameters apply to every type; type-specific ones do not.
  b = Get("/fhir/Patient/p1/*?_id=o2,e1");
  EXPECT_EQ(Entries(b, "match"), (V{"Encounter/e1", "Observation/o2"}));
  b = Get("/fhir/Patient/p1/*?code=8867-4");
  EXPECT_EQ(b.at("total"), 4);
  EXPECT_EQ(Link(b, "self")->find("code"), std::string::npos);
  EXPECT_EQ(OutcomeIssues(b).size(), 1u);
  Response r = Call("GET", "/fhir/Patient/p1/*?code=8867-4", {}, {{"prefer", "handling=strict"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("code"), std::string::npos);
  // The Encounter compartment holds the encounter itself.
  b = Get("/fhir/Encounter/e1/*");
  EXPECT_EQ(Entries(b, "match"), (V{"Encounter/e1", "Observation/o1"}));
}

TEST_P(SearchApiTest, EverythingPagesTheCompartmentAndAddsReferencedResources) {
  Seed();
  auto b = Get("/fhir/Patient/p1/$everything");
  EXPECT_EQ(b.at("type"), "searchset");
  EXPECT_EQ(b.at("total"), 5);
  EXPECT_EQ(Entries(b, "match"), (V{"Patient/p1", "Encounter/e1", "Observation/o1",
                                    "Observation/o2", "Observation/o4"}));
  std::vector<std::string> inc = Entries(b, "include");
  std::set<std::string> got(inc.begin(), inc.end());
  // Referenced non-members; never p2 (a Patient, i.e. a compartment member type).
  EXPECT_EQ(got,
            (std::set<std::string>{"Practitioner/d1", "Practitioner/d2", "Organization/org1"}));
  EXPECT_EQ(got.size(), inc.size());

  // _type narrows both the members and the referenced resources.
  b = Get("/fhir/Patient/p1/$everything?_type=Observation,Practitioner");
  EXPECT_EQ(Entries(b, "match"), (V{"Observation/o1", "Observation/o2", "Observation/o4"}));
  inc = Entries(b, "include");
  EXPECT_EQ(std::set<std::string>(inc.begin(), inc.end()),
            (std::set<std::string>{"Practitioner/d1", "Practitioner/d2"}));

  // Paging with _count, stable while data changes.
  b = Get("/fhir/Patient/p1/$everything?_count=2");
  EXPECT_EQ(Entries(b, "match"), (V{"Patient/p1", "Encounter/e1"}));
  auto next = Link(b, "next");
  ASSERT_TRUE(next);
  EXPECT_NE(next->find("/Patient/p1/$everything?"), std::string::npos);
  Put(Obs("o0", "p1", "1"));  // would sort first among the observations
  auto p2 = Get(Target(*next));
  EXPECT_EQ(p2.at("total"), 5);
  EXPECT_EQ(Entries(p2, "match"), (V{"Observation/o1", "Observation/o2"}));
  auto p3 = Get(Target(*Link(p2, "next")));
  EXPECT_EQ(Entries(p3, "match"), V{"Observation/o4"});
  EXPECT_FALSE(Link(p3, "next"));
  // A new request sees the new observation.
  EXPECT_EQ(Get("/fhir/Patient/p1/$everything").at("total"), 6);
}

TEST_P(SearchApiTest, EverythingSinceAndErrors) {
  Seed();
  // `_since` has millisecond precision: keep the seed and the update apart.
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  const std::string since = FormatInstant(NowMicros());
  std::this_thread::sleep_for(std::chrono::milliseconds(3));
  Put(Obs("o2", "p1", "29463-7", R"(,"valueString":"amended")"));  // updated after `since`
  auto b = Get("/fhir/Patient/p1/$everything?_since=" + since);
  EXPECT_EQ(b.at("total"), 1);
  EXPECT_EQ(Entries(b, "match"), V{"Observation/o2"});
  Get("/fhir/Patient/p1/$everything?_since=yesterday", 400);
  Get("/fhir/Patient/p1/$everything?_type=Nope", 400);
  Get("/fhir/Patient/nobody/$everything", 404);
  Get("/fhir/Observation/o1/$everything", 404);
  // Unknown parameters: ignored with a warning, or 400 when strict.
  b = Get("/fhir/Patient/p1/$everything?start=2020");
  EXPECT_EQ(OutcomeIssues(b).size(), 1u);
  EXPECT_EQ(
      Call("GET", "/fhir/Patient/p1/$everything?start=2020", {}, {{"prefer", "handling=strict"}})
          .status,
      400);
  // Encounter/$everything: the encounter, its observation, and referenced non-members.
  b = Get("/fhir/Encounter/e1/$everything");
  EXPECT_EQ(Entries(b, "match"), (V{"Encounter/e1", "Observation/o1"}));
  std::vector<std::string> inc = Entries(b, "include");
  std::set<std::string> got(inc.begin(), inc.end());
  EXPECT_TRUE(got.count("Patient/p1"));
  EXPECT_TRUE(got.count("Practitioner/d2"));
}

TEST_P(SearchApiTest, CapabilityStatementSaysWhatExists) {
  auto cs = Get("/fhir/metadata");
  const auto& rest = cs.at("rest").at(0).get_object();
  const json::object* patient = nullptr;
  const json::object* observation = nullptr;
  for (const auto& r : rest.at("resource").get_array()) {
    if (r.at("type") == "Patient") patient = &r.get_object();
    if (r.at("type") == "Observation") observation = &r.get_object();
  }
  ASSERT_TRUE(patient && observation);
  auto has = [](const json::value& arr, std::string_view v) {
    for (const auto& x : arr.get_array())
      if (x.is_string() && x.get_string() == v) return true;
    return false;
  };
  EXPECT_TRUE(has(observation->at("searchInclude"), "Observation:subject"));
  EXPECT_TRUE(has(observation->at("searchInclude"), "*"));
  EXPECT_FALSE(has(observation->at("searchInclude"), "Observation:code"));
  EXPECT_TRUE(has(patient->at("searchRevInclude"), "Observation:subject"));
  EXPECT_TRUE(has(patient->at("searchRevInclude"), "Encounter:patient"));
  EXPECT_FALSE(has(patient->at("searchRevInclude"), "Observation:code"));
  ASSERT_TRUE(patient->contains("operation"));
  EXPECT_EQ(patient->at("operation").at(0).at("name"), "everything");
  EXPECT_EQ(patient->at("operation").at(0).at("definition"),
            "http://hl7.org/fhir/OperationDefinition/Patient-everything");
  EXPECT_FALSE(observation->contains("operation"));
  for (const auto& i : patient->at("interaction").get_array()) {
    EXPECT_NE(i.at("code"), "everything");
    EXPECT_NE(i.at("code"), "search");
  }
  EXPECT_TRUE(has(rest.at("compartment"), "http://hl7.org/fhir/CompartmentDefinition/patient"));
  EXPECT_TRUE(has(rest.at("compartment"), "http://hl7.org/fhir/CompartmentDefinition/encounter"));
  std::string doc(rest.at("documentation").get_string());
  EXPECT_NE(doc.find("near"), std::string::npos);
  EXPECT_NE(doc.find("_query"), std::string::npos);
  // near is not a listed parameter of Location (it is not supported).
  for (const auto& r : rest.at("resource").get_array()) {
    if (r.at("type") != "Location") continue;
    for (const auto& p : r.at("searchParam").get_array()) EXPECT_NE(p.at("name"), "near");
  }
}

JC_API_ON_EVERY_BACKEND(SearchApiTest);

}  // namespace
}  // namespace jiceng::api
