#include "services/retrieval/fusion.h"

#include "gtest/gtest.h"

namespace tessera::retrieval {
namespace {

TEST(FusionTest, ReciprocalRankFusionWithK60) {
  // A is first in BM25 and third in vector; B is only in vector, first.
  std::vector<ScoredId> bm25 = {{1, 9.0}, {2, 5.0}};
  std::vector<ScoredId> vec = {{3, 0.9}, {4, 0.8}, {1, 0.7}};
  auto hits = Fuse(bm25, vec, {}, 10);
  ASSERT_EQ(hits.size(), 4u);
  EXPECT_EQ(hits[0].id, 1);  // 1/61 + 1/63
  EXPECT_NEAR(hits[0].fused, 1.0 / 61 + 1.0 / 63, 1e-12);
  EXPECT_EQ(*hits[0].bm25_rank, 1);
  EXPECT_EQ(*hits[0].vector_rank, 3);
  EXPECT_DOUBLE_EQ(*hits[0].bm25, 9.0);
  EXPECT_DOUBLE_EQ(*hits[0].vector, 0.7);
  // 2 (bm25 rank 2) and 3 (vector rank 1): 3 first.
  EXPECT_EQ(hits[1].id, 3);
  EXPECT_FALSE(hits[1].bm25.has_value());
  EXPECT_EQ(hits[2].id, 2);
  EXPECT_EQ(hits[3].id, 4);
}

TEST(FusionTest, WeightedSumNormalisesEachList) {
  std::vector<ScoredId> bm25 = {{1, 20.0}, {2, 10.0}, {3, 0.0}};
  std::vector<ScoredId> vec = {{3, 0.9}, {2, 0.5}, {1, 0.1}};
  FusionOptions o;
  o.method = FusionMethod::kWeightedSum;
  o.vector_weight = 0.8;
  o.bm25_weight = 0.2;
  auto hits = Fuse(bm25, vec, o, 2);
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].id, 3);  // 0.8*1 + 0.2*0
  EXPECT_NEAR(hits[0].fused, 0.8, 1e-12);
  EXPECT_EQ(hits[1].id, 2);  // 0.8*0.5 + 0.2*0.5
  EXPECT_NEAR(hits[1].fused, 0.5, 1e-12);
}

TEST(FusionTest, EmptyAndTiesAreStable) {
  EXPECT_TRUE(Fuse({}, {}, {}, 5).empty());
  auto hits = Fuse({{7, 1.0}}, {{5, 1.0}}, {}, 5);
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_EQ(hits[0].id, 5);  // equal fused score: lower id first
}

TEST(SnippetTest, CentresOnFirstQueryTermAndKeepsUtf8Whole) {
  std::string text = std::string(500, 'a') + " the budget for Q3 " + std::string(500, 'b');
  std::string s = Snippet(text, "Budget?", 100);
  EXPECT_NE(s.find("budget"), std::string::npos);
  EXPECT_EQ(s.substr(0, 3), "...");
  EXPECT_LE(s.size(), 106u);
  std::string utf = "";
  for (int i = 0; i < 200; ++i) utf += "\xc3\xa9";  // é
  std::string u = Snippet(utf, "x", 101);
  // Every byte sequence is whole: the body has an even byte count.
  EXPECT_EQ((u.size() - 3) % 2, 0u);
  EXPECT_EQ(Snippet("short", "q"), "short");
}

}  // namespace
}  // namespace tessera::retrieval
