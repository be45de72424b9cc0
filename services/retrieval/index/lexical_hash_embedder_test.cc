#include "services/retrieval/index/lexical_hash_embedder.h"

#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::retrieval {
namespace {

double Dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

double Norm(const std::vector<float>& a) { return std::sqrt(Dot(a, a)); }

std::unique_ptr<LexicalHashEmbedder> MakeEmbedder(LexicalHashEmbedder::Options options = {}) {
  auto e = LexicalHashEmbedder::Create(options);
  EXPECT_TRUE(e.ok()) << e.status();
  return std::move(e).value();
}

TEST(LexicalHashEmbedderTest, NameAndDimensions) {
  auto e = MakeEmbedder();
  EXPECT_EQ(e->name(), "lexical-hash-384");
  EXPECT_EQ(e->dimensions(), 384);
  auto small = MakeEmbedder({.dimensions = 64});
  EXPECT_EQ(small->name(), "lexical-hash-64");
  auto seeded = MakeEmbedder({.dimensions = 64, .seed = 7});
  EXPECT_EQ(seeded->name(), "lexical-hash-64-s0000000000000007");
}

TEST(LexicalHashEmbedderTest, RejectsBadDimensions) {
  EXPECT_EQ(LexicalHashEmbedder::Create({.dimensions = 0}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LexicalHashEmbedder::Create({.dimensions = -3}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LexicalHashEmbedder::Create({.dimensions = (1 << 16) + 1}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(LexicalHashEmbedderTest, EmbedReturnsOneUnitVectorPerTextInOrder) {
  auto e = MakeEmbedder();
  std::vector<std::string> texts = {"alpha beta", "gamma", "delta epsilon zeta"};
  auto out = e->Embed(texts);
  ASSERT_TRUE(out.ok()) << out.status();
  ASSERT_EQ(out->size(), 3u);
  for (size_t i = 0; i < texts.size(); ++i) {
    ASSERT_EQ((*out)[i].size(), 384u);
    EXPECT_NEAR(Norm((*out)[i]), 1.0, 1e-5);
    EXPECT_EQ((*out)[i], e->EmbedText(texts[i]));
  }
}

TEST(LexicalHashEmbedderTest, DeterministicAcrossInstances) {
  const std::string text = "The quarterly budget report is due on Friday.";
  EXPECT_EQ(MakeEmbedder()->EmbedText(text), MakeEmbedder()->EmbedText(text));
  // Another seed is another space.
  EXPECT_NE(MakeEmbedder()->EmbedText(text), MakeEmbedder({.seed = 1})->EmbedText(text));
}

// Pinned once from this implementation: any change to tokenisation, hashing,
// weighting or projection changes every stored vector, so it must be
// deliberate (and come with a new name()).
TEST(LexicalHashEmbedderTest, GoldenValues) {
  const std::vector<float> v = MakeEmbedder()->EmbedText("Hello, World! Zürich 2024");
  ASSERT_EQ(v.size(), 384u);
  // Exact (hex-float) values: the output is bit-identical everywhere.
  const std::vector<std::pair<int, float>> golden = {{0, -0x1.b64c66p-5f},    // -0.0535032265
                                                     {1, 0x1.6d3facp-5f},     // 0.0445860252
                                                     {100, -0x1.6d3facp-4f},  // -0.0891720504
                                                     {383, -0x1.2432fp-5f}};  // -0.0356688201
  for (const auto& [index, value] : golden) {
    EXPECT_EQ(v[index], value) << "dimension " << index;
  }
}

TEST(LexicalHashEmbedderTest, CaseAndPunctuationInsensitive) {
  auto e = MakeEmbedder();
  EXPECT_EQ(e->EmbedText("Budget REPORT, finance!"), e->EmbedText("budget report finance"));
}

TEST(LexicalHashEmbedderTest, EmptyAndWhitespaceGiveZeroVector) {
  auto e = MakeEmbedder();
  const std::vector<float> zero(384, 0.0f);
  EXPECT_EQ(e->EmbedText(""), zero);
  EXPECT_EQ(e->EmbedText(" \t\n  "), zero);
  EXPECT_EQ(e->EmbedText("... !!! ---"), zero);
}

TEST(LexicalHashEmbedderTest, SimilarTextsAreCloser) {
  auto e = MakeEmbedder();
  const auto a = e->EmbedText("quarterly budget report for finance");
  const auto b = e->EmbedText("finance budget report Q3");
  const auto c = e->EmbedText("kubernetes pod restart");
  const double ab = Dot(a, b);
  const double ac = Dot(a, c);
  EXPECT_GT(ab, ac + 0.2) << "ab=" << ab << " ac=" << ac;
  EXPECT_GT(ab, 0.3);
  EXPECT_LT(std::abs(ac), 0.2);
  // Character n-grams make morphology count.
  const auto d = e->EmbedText("budgeting reports");
  const auto f = e->EmbedText("volcano eruption");
  EXPECT_GT(Dot(e->EmbedText("budget report"), d), Dot(e->EmbedText("budget report"), f) + 0.2);
}

TEST(LexicalHashEmbedderTest, WordOrderMattersThroughBigrams) {
  auto e = MakeEmbedder();
  const auto ab = e->EmbedText("new york");
  const auto ba = e->EmbedText("york new");
  EXPECT_NE(ab, ba);
  EXPECT_GT(Dot(ab, ba), 0.5);  // same unigrams and character n-grams
}

TEST(LexicalHashEmbedderTest, Utf8WordsAreKeptWhole) {
  auto e = MakeEmbedder();
  const auto a = e->EmbedText("東京 の 天気");
  EXPECT_NEAR(Norm(a), 1.0, 1e-5);
  EXPECT_GT(Dot(a, e->EmbedText("東京の天気")), 0.1);  // shared character n-grams
  EXPECT_GT(Dot(e->EmbedText("Zürich office"), e->EmbedText("zürich")),
            Dot(e->EmbedText("Zürich office"), e->EmbedText("zurich")));
}

TEST(LexicalHashEmbedderTest, InvalidUtf8DoesNotCrash) {
  auto e = MakeEmbedder();
  const std::string bad[] = {
      std::string("\xff\xfe\xfd"),
      std::string("abc\xc3"),                    // truncated 2-byte sequence at the end
      std::string("\xe2\x82 mid \xf0\x9f\x98"),  // truncated 3- and 4-byte sequences
      std::string("\x80\x80\x80\x80\x80 lone continuations"),
      std::string("nul\0byte", 8),
  };
  for (const std::string& text : bad) {
    const auto v = e->EmbedText(text);
    ASSERT_EQ(v.size(), 384u);
    EXPECT_NEAR(Norm(v), 1.0, 1e-5);
    EXPECT_EQ(v, e->EmbedText(text));
  }
}

TEST(LexicalHashEmbedderTest, LargeTextIsFine) {
  // About 5 MB: words from a 2,000-word vocabulary plus one 100 KB "word".
  std::string text;
  text.reserve(5'300'000);
  uint64_t x = 12345;
  while (text.size() < 5'000'000) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    absl::StrAppend(&text, "w", (x >> 33) % 2000, (x >> 20) % 7 == 0 ? ". " : " ");
  }
  text.append(100'000, 'z');
  auto e = MakeEmbedder();
  const auto v = e->EmbedText(text);
  ASSERT_EQ(v.size(), 384u);
  EXPECT_NEAR(Norm(v), 1.0, 1e-5);
}

TEST(LexicalHashEmbedderTest, ConcurrentEmbedsAgree) {
  auto e = MakeEmbedder();
  const std::string text = "concurrent embedding of the same text";
  const auto want = e->EmbedText(text);
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        auto got = e->Embed({text, "other"});
        if (!got.ok() || (*got)[0] != want) ++mismatches[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_THAT(mismatches, ::testing::Each(0));
}

}  // namespace
}  // namespace tessera::retrieval
