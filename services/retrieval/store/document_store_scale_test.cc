// 100k chunks: AllowedChunkIds and Bm25Search stay single indexed queries. Prints timings; the
// assertions are on results (timings vary too much across machines and sanitizers to assert).
#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "services/retrieval/store/document_store.h"

namespace tessera::retrieval {
namespace {

TEST(DocumentStoreScaleTest, HundredThousandChunks) {
  auto opened = SqliteDocumentStore::Open({});
  ASSERT_TRUE(opened.ok()) << opened.status();
  auto& store = **opened;
  CollectionRecord c;
  c.name = "big";
  c.embedding_model = "m";
  c.dimensions = 4;
  ASSERT_TRUE(store.CreateCollection(c).ok());

  constexpr int kDocs = 20000;
  constexpr int kChunksPerDoc = 5;
  std::mt19937 rng(3);
  const std::vector<std::string> words = {"alpha",  "beta",  "gamma", "delta", "kappa",
                                          "lambda", "sigma", "omega", "theta", "zeta"};
  int64_t expected_for_group0 = 0;
  absl::Time start = absl::Now();
  for (int d = 0; d < kDocs; ++d) {
    DocumentInput in;
    in.collection = "big";
    in.source = "local";
    in.external_id = absl::StrCat("doc", d);
    in.content_hash = "h";
    const int group = d % 50;
    in.acl = {absl::StrCat("group:g", group, "@x.com"), absl::StrCat("user:u", d % 997, "@x.com")};
    if (group == 0) expected_for_group0 += kChunksPerDoc;
    std::vector<ChunkText> chunks(kChunksPerDoc);
    std::vector<std::vector<float>> embeddings(kChunksPerDoc, std::vector<float>{1, 2, 3, 4});
    for (auto& chunk : chunks) {
      chunk.text = absl::StrCat(words[rng() % words.size()], " ", words[rng() % words.size()], " ",
                                words[rng() % words.size()]);
      chunk.token_count = 3;
    }
    auto r = store.UpsertDocument(in, chunks, embeddings);
    ASSERT_TRUE(r.ok()) << r.status();
  }
  std::printf("insert %d chunks: %s\n", kDocs * kChunksPerDoc,
              absl::FormatDuration(absl::Now() - start).c_str());

  AccessFilter everyone;
  everyone.collections = {"big"};
  for (int g = 0; g < 50; ++g) everyone.principals.push_back(absl::StrCat("group:g", g, "@x.com"));
  start = absl::Now();
  auto all = store.AllowedChunkIds(everyone);
  std::printf("AllowedChunkIds (all %zu): %s\n", all.ok() ? all->size() : 0,
              absl::FormatDuration(absl::Now() - start).c_str());
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), static_cast<size_t>(kDocs * kChunksPerDoc));
  EXPECT_TRUE(std::is_sorted(all->begin(), all->end()));

  AccessFilter one;
  one.collections = {"big"};
  one.principals = ExpandPrincipal("nobody@y.com", {"g0@x.com"});
  start = absl::Now();
  auto some = store.AllowedChunkIds(one);
  std::printf("AllowedChunkIds (one group, %zu): %s\n", some.ok() ? some->size() : 0,
              absl::FormatDuration(absl::Now() - start).c_str());
  ASSERT_TRUE(some.ok());
  EXPECT_EQ(static_cast<int64_t>(some->size()), expected_for_group0);

  start = absl::Now();
  auto hits = store.Bm25Search("alpha omega", one, 50);
  std::printf("Bm25Search (one group): %s\n", absl::FormatDuration(absl::Now() - start).c_str());
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ(hits->size(), 50u);
  for (const Bm25Hit& h : *hits) {
    EXPECT_TRUE(std::binary_search(some->begin(), some->end(), h.chunk_id));
  }

  start = absl::Now();
  int64_t n = 0;
  ASSERT_TRUE(store
                  .ForEachEmbedding("big",
                                    [&](int64_t, const float* v, int dims) {
                                      n += dims == 4 && v[3] == 4.0f;
                                      return absl::OkStatus();
                                    })
                  .ok());
  std::printf("ForEachEmbedding: %s\n", absl::FormatDuration(absl::Now() - start).c_str());
  EXPECT_EQ(n, kDocs * kChunksPerDoc);

  start = absl::Now();
  auto removed = store.DeleteCollection("big");
  std::printf("DeleteCollection: %s\n", absl::FormatDuration(absl::Now() - start).c_str());
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, *all);
}

}  // namespace
}  // namespace tessera::retrieval
