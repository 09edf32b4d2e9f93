#include "registry/resident_id.h"

#include <gtest/gtest.h>

#include <set>

namespace jiceng::registry {
namespace {

// The check character computed the long way, independently of the implementation, so a wrong
// weight table in the code cannot also be wrong here.
char HandCheck(const std::string& first17) {
  const int w[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
  int s = 0;
  for (int i = 0; i < 17; ++i) s += (first17[i] - '0') * w[i];
  return "10X98765432"[s % 11];
}

TEST(ResidentId, KnownGoodNumbers) {
  // 11010519491231002X: S = 7+9+0+5+0+20+2+9+24+27+7+18+30+5+0+0+4 = 167, 167 mod 11 = 2 -> X.
  auto a = ParseResidentId("11010519491231002X");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->region, "110105");
  EXPECT_EQ(a->birth_date, (CivilDate{1949, 12, 31}));
  EXPECT_EQ(a->sequence, 2);
  EXPECT_EQ(a->sex, Sex::kFemale);
  // 440524188001010014: S = 195, 195 mod 11 = 8 -> '4'.
  auto b = ParseResidentId("440524188001010014");
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(b->birth_date, (CivilDate{1880, 1, 1}));
  EXPECT_EQ(b->sex, Sex::kMale);  // sequence 001 is odd
  // 嘉善县 330421, born 1985-03-17, sequence 123:
  // S = 21+27+0+20+16+4+2+9+48+15+0+27+10+35+8+8+6 = 256, 256 mod 11 = 3 -> '9'.
  EXPECT_EQ(ResidentIdCheckChar("33042119850317123"), '9');
  EXPECT_EQ(HandCheck("33042119850317123"), '9');
  EXPECT_TRUE(ParseResidentId("330421198503171239").ok());
}

TEST(ResidentId, LowerCaseXIsNormalised) {
  auto r = ParseResidentId("11010519491231002x");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->normalized, "11010519491231002X");
}

TEST(ResidentId, BadCheckCharacter) {
  EXPECT_FALSE(ParseResidentId("110105194912310021").ok());
  EXPECT_FALSE(ParseResidentId("440524188001010013").ok());
  auto r = ParseResidentId("330421198503171232");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("should be 9"), std::string::npos);
}

TEST(ResidentId, BadDates) {
  // 1999-02-30 does not exist; the check character is right so only the date can fail.
  std::string first17 = "33042119990230001";
  std::string id = first17 + HandCheck(first17);
  auto r = ParseResidentId(id);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("19990230"), std::string::npos);
  // 2000 is a leap year, 1900 is not.
  std::string leap = "33042120000229002";
  EXPECT_TRUE(ParseResidentId(leap + HandCheck(leap)).ok());
  std::string not_leap = "33042119000229002";
  EXPECT_FALSE(ParseResidentId(not_leap + HandCheck(not_leap)).ok());
  std::string month13 = "33042119851301002";
  EXPECT_FALSE(ParseResidentId(month13 + HandCheck(month13)).ok());
}

TEST(ResidentId, BadShapes) {
  EXPECT_FALSE(ParseResidentId("").ok());
  EXPECT_FALSE(ParseResidentId("1101051949123100").ok());
  EXPECT_FALSE(ParseResidentId("11010519491231002XX").ok());
  EXPECT_FALSE(ParseResidentId("1101051949123100AX").ok());
  EXPECT_FALSE(ParseResidentId("11010519491231002Y").ok());
  // Province prefix 99 does not exist.
  std::string bad_region = "99010519491231002";
  EXPECT_FALSE(ParseResidentId(bad_region + HandCheck(bad_region)).ok());
}

TEST(ResidentId, Upgrade15To18) {
  auto r = UpgradeResidentId15("110105491231002");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(*r, "11010519491231002X");
  auto info = ParseAnyResidentId("110105491231002");
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->normalized, "11010519491231002X");
  EXPECT_EQ(info->birth_date, (CivilDate{1949, 12, 31}));
  EXPECT_FALSE(UpgradeResidentId15("110105490230002").ok());  // 1949-02-30
  EXPECT_FALSE(UpgradeResidentId15("11010549123100").ok());
  EXPECT_FALSE(UpgradeResidentId15("11010549123100A").ok());
}

TEST(ResidentId, MakeRoundTrips) {
  for (int seq : {0, 1, 2, 437, 998, 999}) {
    auto id = MakeResidentId("330421", CivilDate{2024, 2, 29}, seq);
    ASSERT_TRUE(id.ok());
    EXPECT_EQ((*id)[17], HandCheck(id->substr(0, 17)));
    auto info = ParseResidentId(*id);
    ASSERT_TRUE(info.ok()) << *id;
    EXPECT_EQ(info->birth_date, (CivilDate{2024, 2, 29}));
    EXPECT_EQ(info->sequence, seq);
    EXPECT_EQ(info->sex, seq % 2 ? Sex::kMale : Sex::kFemale);
  }
  EXPECT_FALSE(MakeResidentId("330421", CivilDate{2023, 2, 29}, 1).ok());
  EXPECT_FALSE(MakeResidentId("33042", CivilDate{2023, 2, 28}, 1).ok());
  EXPECT_FALSE(MakeResidentId("330421", CivilDate{2023, 2, 28}, 1000).ok());
  EXPECT_EQ(FormatCivilDate(CivilDate{2024, 2, 9}), "2024-02-09");
}

// Every check value 0..10 is reachable and maps through the table.
TEST(ResidentId, AllCheckValuesCovered) {
  std::set<char> seen;
  for (int seq = 0; seq < 200; ++seq) {
    auto id = MakeResidentId("330421", CivilDate{1990, 6, 15}, seq);
    ASSERT_TRUE(id.ok());
    seen.insert((*id)[17]);
    EXPECT_TRUE(ParseResidentId(*id).ok());
  }
  EXPECT_EQ(seen.size(), 11u);
}

}  // namespace
}  // namespace jiceng::registry
