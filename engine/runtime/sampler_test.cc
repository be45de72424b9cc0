#include "engine/runtime/sampler.h"

#include <cmath>
#include <map>
#include <vector>

#include "gtest/gtest.h"

namespace tessera::engine {
namespace {

TEST(SamplerTest, GreedyPicksTheLargestAndTheLowestIdOnTies) {
  Sampler s({.temperature = 0.0f});
  std::vector<float> logits = {0.1f, 2.0f, -1.0f, 2.0f};
  EXPECT_EQ(s.Sample(absl::MakeSpan(logits)), 1);
}

TEST(SamplerTest, SameSeedSameChoices) {
  std::vector<float> base(100);
  for (int i = 0; i < 100; ++i) base[i] = static_cast<float>(i % 7) * 0.3f;
  auto run = [&](uint64_t seed) {
    Sampler s({.temperature = 1.0f, .seed = seed});
    std::vector<int32_t> out;
    for (int i = 0; i < 50; ++i) {
      std::vector<float> l = base;
      out.push_back(s.Sample(absl::MakeSpan(l)));
    }
    return out;
  };
  EXPECT_EQ(run(42), run(42));
  EXPECT_NE(run(42), run(43));
}

TEST(SamplerTest, TopKOneIsGreedy) {
  Sampler s({.temperature = 5.0f, .top_k = 1, .seed = 7});
  for (int i = 0; i < 20; ++i) {
    std::vector<float> l = {1.0f, 3.0f, 2.9f};
    EXPECT_EQ(s.Sample(absl::MakeSpan(l)), 1);
  }
}

TEST(SamplerTest, TopPKeepsOnlyTheNucleus) {
  // Probabilities ~ {0.5, 0.3, 0.2} at temperature 1: top_p 0.6 keeps the first two.
  Sampler s({.temperature = 1.0f, .top_p = 0.6f, .seed = 1});
  std::map<int, int> counts;
  for (int i = 0; i < 2000; ++i) {
    std::vector<float> l = {std::log(0.5f), std::log(0.3f), std::log(0.2f)};
    ++counts[s.Sample(absl::MakeSpan(l))];
  }
  EXPECT_EQ(counts[2], 0);
  EXPECT_GT(counts[0], counts[1]);
  EXPECT_GT(counts[1], 400);
}

TEST(SamplerTest, DistributionFollowsTheSoftmax) {
  Sampler s({.temperature = 1.0f, .seed = 3});
  int ones = 0;
  const int n = 20000;
  for (int i = 0; i < n; ++i) {
    std::vector<float> l = {0.0f, std::log(3.0f)};  // p(1) = 0.75
    ones += s.Sample(absl::MakeSpan(l)) == 1;
  }
  EXPECT_NEAR(static_cast<double>(ones) / n, 0.75, 0.02);
}

TEST(SamplerTest, RepetitionPenaltyDemotesSeenTokens) {
  Sampler s({.temperature = 0.0f, .repetition_penalty = 2.0f});
  s.Observe(0);
  std::vector<float> l = {3.0f, 2.0f};  // 3/2 = 1.5 < 2
  EXPECT_EQ(s.Sample(absl::MakeSpan(l)), 1);
  std::vector<float> neg = {-1.0f, -1.5f};  // seen negative logits get more negative: -2 < -1.5
  EXPECT_EQ(s.Sample(absl::MakeSpan(neg)), 1);
}

TEST(SamplerTest, ValidationNamesTheField) {
  EXPECT_FALSE(ValidateSamplingOptions({.temperature = -1.0f}).ok());
  EXPECT_FALSE(ValidateSamplingOptions({.top_p = 0.0f}).ok());
  EXPECT_FALSE(ValidateSamplingOptions({.top_p = 1.5f}).ok());
  EXPECT_FALSE(ValidateSamplingOptions({.top_k = -2}).ok());
  EXPECT_NE(ValidateSamplingOptions({.repetition_penalty = 0.0f}).message().find("repetition_penalty"),
            std::string::npos);
  EXPECT_TRUE(ValidateSamplingOptions({}).ok());
}

}  // namespace
}  // namespace tessera::engine
