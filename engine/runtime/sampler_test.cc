#include "engine/runtime/sampler.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <random>
#include <vector>

#include "engine/backend/backend.h"
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

// SampleTop, fed by the backends' TopK (here its host reference, TopKRow), makes the same choices
// as Sample on the whole row, for every kind of sampling, and reads the whole row only when the
// candidates cannot decide.
TEST(SamplerTest, SampleTopMatchesSampleOnTheWholeRow) {
  struct Case {
    const char* name;
    SamplingOptions options;
  };
  const Case cases[] = {
      {"greedy", {.temperature = 0.0f}},
      {"greedy with penalty", {.temperature = 0.0f, .repetition_penalty = 1.5f}},
      {"top-k 5", {.temperature = 0.8f, .top_k = 5, .seed = 1}},
      {"top-k 40, top-p 0.9", {.temperature = 1.0f, .top_k = 40, .top_p = 0.9f, .seed = 2}},
      {"top-p 0.95", {.temperature = 0.7f, .top_p = 0.95f, .seed = 3}},
      {"top-p 0.5, penalty", {.temperature = 0.9f, .top_p = 0.5f, .repetition_penalty = 1.3f, .seed = 4}},
      {"temperature only", {.temperature = 1.0f, .seed = 5}},
      {"top-k 100 (more than the candidates)", {.temperature = 1.2f, .top_k = 100, .seed = 6}},
      {"penalty below 1", {.temperature = 0.6f, .top_k = 8, .repetition_penalty = 0.7f, .seed = 7}},
  };
  constexpr int kK = 64;
  for (const int64_t cols : {int64_t{700}, int64_t{40}}) {  // more logits than candidates, fewer
  for (const Case& tc : cases) {
    Sampler whole(tc.options), top(tc.options);
    std::mt19937 rng(99);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    int full_reads = 0;
    for (int step = 0; step < 300; ++step) {
      // Peaked rows (a short nucleus), flat ones (a long one), ties, and now and then a NaN.
      const float sharp = step % 3 == 0 ? 6.0f : step % 3 == 1 ? 1.0f : 0.3f;
      std::vector<float> row(cols);
      for (float& v : row) v = normal(rng) * sharp;
      if (step % 7 == 0) {
        for (int i = 0; i < 30; ++i) row[(i * 37) % cols] = std::round(row[(i * 37) % cols]);
      }
      if (step % 50 == 49) row[(step * 7) % cols] = std::nanf("");
      std::vector<float> a = row, b = row;
      const int32_t want = whole.Sample(absl::MakeSpan(a));

      std::vector<int32_t> pen(top.penalised().begin(), top.penalised().end());
      std::vector<float> values(kK);
      std::vector<int32_t> ids(kK);
      TopCandidates c;
      c.values = values.data();
      c.ids = ids.data();
      c.k = top.CandidatesNeeded(kK);
      c.cols = cols;
      TopKRow(b.data(), cols, c.k, top.SumTemperature(kK), top.penalty(), pen, values.data(),
              ids.data(), &c.sum_exp, &c.nonfinite);
      const int32_t got = top.SampleTop(c, [&] {
        ++full_reads;
        return b;
      });
      ASSERT_EQ(got, want) << tc.name << ", step " << step;
      whole.Observe(want);
      top.Observe(got);
    }
    // The whole row is read only for rows the candidates cannot decide: the six with a NaN, and
    // with no top-k some long nuclei and draws past the candidates; a top-k beyond the
    // candidates always reads it.
    const int nan_rows = 6;
    if (cols <= kK) {
      // Every logit is a candidate: only the NaN rows need the whole row (and a top-k beyond the
      // row's width is the whole row).
      EXPECT_EQ(full_reads, nan_rows) << tc.name << ", cols " << cols;
    } else if (tc.options.top_k > kK) {
      EXPECT_EQ(full_reads, 300) << tc.name;
    } else if (tc.options.temperature == 0.0f || tc.options.top_k > 0) {
      EXPECT_EQ(full_reads, nan_rows) << tc.name;
    } else {
      EXPECT_GT(full_reads, nan_rows) << tc.name;  // the fallback paths are exercised
      EXPECT_LT(full_reads, 300) << tc.name;
    }
    std::printf("%s, %lld logits: whole row read for %d of 300 rows\n", tc.name,
                static_cast<long long>(cols), full_reads);
  }
  }
}

TEST(SamplerTest, CandidatesNeeded) {
  EXPECT_EQ(Sampler({.temperature = 0.0f}).CandidatesNeeded(64), 1);
  EXPECT_EQ(Sampler({.temperature = 0.0f}).SumTemperature(64), 0.0f);
  EXPECT_EQ(Sampler({.temperature = 0.5f, .top_k = 10}).CandidatesNeeded(64), 10);
  EXPECT_EQ(Sampler({.temperature = 0.5f, .top_k = 10}).SumTemperature(64), 0.0f);
  EXPECT_EQ(Sampler({.temperature = 0.5f, .top_k = 100}).CandidatesNeeded(64), 64);
  EXPECT_EQ(Sampler({.temperature = 0.5f, .top_k = 100}).SumTemperature(64), 0.0f);
  EXPECT_EQ(Sampler({.temperature = 0.5f, .top_p = 0.9f}).SumTemperature(64), 0.5f);
}

}  // namespace
}  // namespace tessera::engine
