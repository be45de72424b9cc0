#include "services/retrieval/index/faiss_vector_index.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/file_system.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/retrieval/index/vector_index.h"

namespace tessera::retrieval {
namespace {

using ::testing::HasSubstr;
using Metric = FaissVectorIndex::Metric;

constexpr int kDims = 64;

// n unit vectors (rows) of kDims floats.
std::vector<float> RandomUnitVectors(int64_t n, uint64_t seed, int dims = kDims) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> gauss;
  std::vector<float> out(n * dims);
  for (int64_t i = 0; i < n; ++i) {
    float* row = out.data() + i * dims;
    double norm = 0;
    for (int d = 0; d < dims; ++d) {
      row[d] = gauss(rng);
      norm += row[d] * row[d];
    }
    for (int d = 0; d < dims; ++d) row[d] = static_cast<float>(row[d] / std::sqrt(norm));
  }
  return out;
}

std::vector<int64_t> SequentialIds(int64_t n, int64_t first = 1000, int64_t step = 3) {
  std::vector<int64_t> ids(n);
  for (int64_t i = 0; i < n; ++i) ids[i] = first + i * step;
  return ids;
}

// A set of vectors with their ids, and brute-force search over them.
struct Dataset {
  std::vector<int64_t> ids;
  std::vector<float> vectors;

  static Dataset Make(int64_t n, uint64_t seed) {
    return Dataset{SequentialIds(n), RandomUnitVectors(n, seed)};
  }
  const float* row(size_t i) const { return vectors.data() + i * kDims; }

  // Exact top-k (ids, best first) among ids accepted by `allowed` and not
  // in `removed`, for the given metric.
  std::vector<VectorHit> BruteForce(const float* q, int k, const IdFilter* allowed,
                                    Metric metric = Metric::kInnerProduct,
                                    const absl::flat_hash_set<int64_t>& removed = {}) const {
    std::vector<VectorHit> all;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (allowed != nullptr && !allowed->Contains(ids[i])) continue;
      if (removed.contains(ids[i])) continue;
      double s = 0;
      for (int d = 0; d < kDims; ++d) {
        const double x = row(i)[d];
        s += metric == Metric::kL2 ? (x - q[d]) * (x - q[d]) : x * q[d];
      }
      all.push_back({ids[i], static_cast<float>(metric == Metric::kL2 ? -s : s)});
    }
    std::sort(all.begin(), all.end(), [](const VectorHit& a, const VectorHit& b) {
      return a.score != b.score ? a.score > b.score : a.id < b.id;
    });
    if (static_cast<int>(all.size()) > k) all.resize(k);
    return all;
  }
};

std::vector<int64_t> HitIds(const std::vector<VectorHit>& hits) {
  std::vector<int64_t> out;
  for (const VectorHit& h : hits) out.push_back(h.id);
  return out;
}

FaissVectorIndex::Options MakeOptions(const std::string& factory, FileSystem* fs = nullptr) {
  FaissVectorIndex::Options options;
  options.factory = factory;
  options.dimensions = kDims;
  options.file_system = fs;
  // IVF needs at least 39 * nlist vectors by default; PQ8 codebooks need 256.
  if (factory.rfind("IVF", 0) == 0) options.train_min_vectors = 2000;
  return options;
}

std::unique_ptr<FaissVectorIndex> MakeIndex(const FaissVectorIndex::Options& options) {
  auto index = FaissVectorIndex::Create(options);
  EXPECT_TRUE(index.ok()) << index.status();
  return index.ok() ? std::move(index).value() : nullptr;
}

std::unique_ptr<FaissVectorIndex> MakeFilled(const std::string& factory, const Dataset& data,
                                             FileSystem* fs = nullptr) {
  auto index = MakeIndex(MakeOptions(factory, fs));
  if (index == nullptr) return nullptr;
  // Two batches: IVF trains (inline) on the first 2000 vectors, which keeps
  // k-means cheap, then the rest goes straight into the trained index.
  const size_t first = std::min<size_t>(data.ids.size(), 2000);
  EXPECT_TRUE(
      index
          ->Add(std::vector<int64_t>(data.ids.begin(), data.ids.begin() + first),
                std::vector<float>(data.vectors.begin(), data.vectors.begin() + first * kDims))
          .ok());
  EXPECT_TRUE(
      index
          ->Add(std::vector<int64_t>(data.ids.begin() + first, data.ids.end()),
                std::vector<float>(data.vectors.begin() + first * kDims, data.vectors.end()))
          .ok());
  return index;
}

// A random filter accepting about `fraction` of `ids`.
IdSetFilter RandomFilter(const std::vector<int64_t>& ids, double fraction, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::bernoulli_distribution keep(fraction);
  std::vector<int64_t> allowed;
  for (int64_t id : ids) {
    if (keep(rng)) allowed.push_back(id);
  }
  return IdSetFilter(allowed);
}

// ---------------------------------------------------------------------------
// Creation and argument checks.

TEST(FaissVectorIndexTest, CreateRejectsBadFactoryWithFaissMessage) {
  auto bad = FaissVectorIndex::Create(MakeOptions("Bogus12"));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("could not parse index string Bogus12"));

  // PQ subquantizers must divide the dimension: FAISS says so.
  auto pq = FaissVectorIndex::Create(MakeOptions("IVF16,PQ7"));
  EXPECT_EQ(pq.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(pq.status().message(), HasSubstr("multiple of the number of subquantizers"));
}

TEST(FaissVectorIndexTest, CreateRejectsUnsupportedFactoriesAndOptions) {
  for (const char* factory : {"PQ8", "IVF16_HNSW8,Flat", "HNSW16,SQ8", "IVF16,PQ8x4fs",
                              "IDMap2,Flat", "OPQ8,IVF16,PQ8", "LSH"}) {
    auto index = FaissVectorIndex::Create(MakeOptions(factory));
    EXPECT_EQ(index.status().code(), absl::StatusCode::kInvalidArgument) << factory;
  }
  auto options = MakeOptions("Flat");
  options.dimensions = 0;
  EXPECT_EQ(FaissVectorIndex::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
  options.dimensions = -4;
  EXPECT_EQ(FaissVectorIndex::Create(options).status().code(), absl::StatusCode::kInvalidArgument);

  options = MakeOptions("IVF64,PQ8");
  options.train_min_vectors = 100;  // k-means needs >= 256 for 8-bit codebooks
  auto too_few = FaissVectorIndex::Create(options);
  EXPECT_EQ(too_few.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(too_few.status().message(), HasSubstr("256"));

  options = MakeOptions("HNSW32");
  options.hnsw_ef_search = 0;
  EXPECT_EQ(FaissVectorIndex::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
  options = MakeOptions("Flat");
  options.max_tombstone_fraction = 0;
  EXPECT_EQ(FaissVectorIndex::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(FaissVectorIndexTest, AddValidatesAndIsAllOrNothing) {
  auto index = MakeIndex(MakeOptions("HNSW32"));
  ASSERT_NE(index, nullptr);
  const auto v = RandomUnitVectors(3, 1);
  ASSERT_TRUE(index->Add({1, 2}, std::vector<float>(v.begin(), v.begin() + 2 * kDims)).ok());

  // 3 is new, 2 is live: nothing is added.
  absl::Status dup = index->Add({3, 2}, std::vector<float>(v.begin(), v.begin() + 2 * kDims));
  EXPECT_EQ(dup.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(dup.message(), HasSubstr("2"));
  EXPECT_EQ(index->size(), 2);

  EXPECT_EQ(index->Add({5, 5}, std::vector<float>(v.begin(), v.begin() + 2 * kDims)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(index->Add({-1}, std::vector<float>(v.begin(), v.begin() + kDims)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(index->Add({7}, std::vector<float>(kDims + 1)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(index->Add({7}, nullptr).code(), absl::StatusCode::kInvalidArgument);
  std::vector<float> nan(v.begin(), v.begin() + kDims);
  nan[5] = std::nanf("");
  EXPECT_EQ(index->Add({7}, nan).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(index->size(), 2);
  EXPECT_TRUE(index->Add({}, nullptr).ok());

  // A removed id may be added again.
  ASSERT_TRUE(index->Remove({2, 12345}).ok());
  EXPECT_EQ(index->size(), 1);
  ASSERT_TRUE(index->Add({2}, std::vector<float>(v.begin() + 2 * kDims, v.end())).ok());
  EXPECT_EQ(index->size(), 2);
  auto hits = index->Search(std::vector<float>(v.begin() + 2 * kDims, v.end()), 1);
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].id, 2);
  EXPECT_NEAR((*hits)[0].score, 1.0, 1e-5);
}

TEST(FaissVectorIndexTest, SearchChecksArguments) {
  auto index = MakeIndex(MakeOptions("Flat"));
  ASSERT_NE(index, nullptr);
  EXPECT_EQ(index->Search(std::vector<float>(kDims - 1), 3).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(index->Search(std::vector<float>(kDims), -1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(index->Search(nullptr, 3, nullptr).status().code(), absl::StatusCode::kInvalidArgument);
  // Empty index, k = 0: no hits, no error.
  auto empty = index->Search(std::vector<float>(kDims, 0.1f), 5);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  const auto data = Dataset::Make(20, 2);
  ASSERT_TRUE(index->Add(data.ids, data.vectors).ok());
  auto none = index->Search(data.row(0), 0, nullptr);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  // k larger than the index: every vector, once.
  auto all = index->Search(data.row(0), 1000, nullptr);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 20u);
}

// ---------------------------------------------------------------------------
// Exactness and recall.

class FlatMetricTest : public ::testing::TestWithParam<Metric> {};

TEST_P(FlatMetricTest, MatchesBruteForceWithAndWithoutFilter) {
  const auto data = Dataset::Make(2000, 3);
  auto options = MakeOptions("Flat");
  options.metric = GetParam();
  auto index = MakeIndex(options);
  ASSERT_NE(index, nullptr);
  ASSERT_TRUE(index->Add(data.ids, data.vectors).ok());
  const auto queries = RandomUnitVectors(20, 4);
  const IdSetFilter filter = RandomFilter(data.ids, 0.05, 5);
  for (int q = 0; q < 20; ++q) {
    const float* query = queries.data() + q * kDims;
    for (const IdFilter* f :
         {static_cast<const IdFilter*>(nullptr), static_cast<const IdFilter*>(&filter)}) {
      auto hits = index->Search(query, 10, f);
      ASSERT_TRUE(hits.ok()) << hits.status();
      const auto want = data.BruteForce(query, 10, f, GetParam());
      ASSERT_EQ(hits->size(), want.size());
      EXPECT_EQ(HitIds(*hits), HitIds(want));
      for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR((*hits)[i].score, want[i].score, 1e-4);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Metrics, FlatMetricTest,
                         ::testing::Values(Metric::kInnerProduct, Metric::kL2));

double RecallAt10(const FaissVectorIndex& index, const Dataset& data,
                  const std::vector<float>& queries, int nq) {
  int found = 0;
  for (int q = 0; q < nq; ++q) {
    const float* query = queries.data() + q * kDims;
    auto hits = index.Search(query, 10, nullptr);
    EXPECT_TRUE(hits.ok());
    if (!hits.ok()) continue;
    const auto want = HitIds(data.BruteForce(query, 10, nullptr));
    for (const VectorHit& h : *hits) found += std::count(want.begin(), want.end(), h.id);
  }
  return static_cast<double>(found) / (10.0 * nq);
}

TEST(FaissVectorIndexTest, RecallOfHnswAndIvfAgainstExact) {
  const auto data = Dataset::Make(5000, 6);
  const auto queries = RandomUnitVectors(100, 7);
  auto flat = MakeFilled("Flat", data);
  auto hnsw = MakeFilled("HNSW32", data);
  auto ivf = MakeFilled("IVF64,Flat", data);
  ASSERT_TRUE(flat && hnsw && ivf);
  ASSERT_TRUE(ivf->is_trained());
  EXPECT_EQ(RecallAt10(*flat, data, queries, 100), 1.0);
  const double hnsw_recall = RecallAt10(*hnsw, data, queries, 100);
  const double ivf_recall = RecallAt10(*ivf, data, queries, 100);
  // Random 64-d unit vectors have no cluster structure: the hardest case.
  EXPECT_GE(hnsw_recall, 0.9);
  EXPECT_GE(ivf_recall, 0.5);  // nprobe 16 of 64 lists
  std::cerr << "recall@10 HNSW32(ef 128)=" << hnsw_recall << " IVF64,Flat(nprobe 16)=" << ivf_recall
            << "\n";
}

// ---------------------------------------------------------------------------
// Filtered search: the filter is applied inside FAISS, so exactly k hits come
// back whenever at least k vectors are allowed.

class FilteredSearchTest : public ::testing::TestWithParam<std::string> {};

TEST_P(FilteredSearchTest, ExactlyKAllowedHits) {
  const std::string factory = GetParam();
  const auto data = Dataset::Make(5000, 8);
  auto index = MakeFilled(factory, data);
  ASSERT_NE(index, nullptr);
  EXPECT_TRUE(index->is_trained()) << index->Describe();
  const IdSetFilter filter = RandomFilter(data.ids, 0.05, 9);
  ASSERT_GE(filter.size(), 200);
  const auto queries = RandomUnitVectors(50, 10);
  int overlap = 0;
  for (int q = 0; q < 50; ++q) {
    const float* query = queries.data() + q * kDims;
    auto hits = index->Search(query, 10, &filter);
    ASSERT_TRUE(hits.ok()) << hits.status();
    ASSERT_EQ(hits->size(), 10u) << factory << " query " << q;
    for (const VectorHit& h : *hits) EXPECT_TRUE(filter.Contains(h.id)) << h.id;
    EXPECT_TRUE(
        std::is_sorted(hits->begin(), hits->end(),
                       [](const VectorHit& a, const VectorHit& b) { return a.score > b.score; }));
    const auto want = HitIds(data.BruteForce(query, 10, &filter));
    if (factory == "Flat") EXPECT_EQ(HitIds(*hits), want);
    for (const VectorHit& h : *hits) overlap += std::count(want.begin(), want.end(), h.id);
  }
  // Against the exact top-10 among allowed ids (5k random 64-d vectors, 5% allowed).
  const double recall = overlap / 500.0;
  const double floor = factory == "Flat"                         ? 1.0
                       : factory == "HNSW32"                     ? 0.9
                       : factory.find("PQ") != std::string::npos ? 0.3
                                                                 : 0.4;
  EXPECT_GE(recall, floor) << factory;
  std::cerr << factory << " filtered recall@10 = " << recall << "\n";

  // Very selective filters, including fewer allowed than k.
  const IdSetFilter three(std::vector<int64_t>{data.ids[17], data.ids[2500], data.ids[4999]});
  auto hits = index->Search(queries.data(), 10, &three);
  ASSERT_TRUE(hits.ok());
  EXPECT_THAT(HitIds(*hits),
              ::testing::UnorderedElementsAre(data.ids[17], data.ids[2500], data.ids[4999]));
  const IdSetFilter nothing(std::vector<int64_t>{});
  hits = index->Search(queries.data(), 10, &nothing);
  ASSERT_TRUE(hits.ok());
  EXPECT_TRUE(hits->empty());
  const IdSetFilter unknown(std::vector<int64_t>{-5, 1, 2});  // ids that are not in the index
  hits = index->Search(queries.data(), 10, &unknown);
  ASSERT_TRUE(hits.ok());
  EXPECT_TRUE(hits->empty());
}

INSTANTIATE_TEST_SUITE_P(Factories, FilteredSearchTest,
                         ::testing::Values("Flat", "HNSW32", "IVF64,Flat", "IVF64,PQ8",
                                           "IVF64,SQ8"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name;
                           for (char c : info.param) {
                             if (std::isalnum(static_cast<unsigned char>(c))) name += c;
                           }
                           return name;
                         });

// ---------------------------------------------------------------------------
// Removal.

class RemoveTest : public ::testing::TestWithParam<std::string> {};

TEST_P(RemoveTest, RemovedIdsNeverComeBack) {
  const std::string factory = GetParam();
  const auto data = Dataset::Make(3000, 11);
  auto options = MakeOptions(factory);
  options.inline_maintenance = false;  // keep the tombstones for this test
  auto index = MakeIndex(options);
  ASSERT_NE(index, nullptr);
  ASSERT_TRUE(index->Add(data.ids, data.vectors).ok());
  if (factory.rfind("IVF", 0) == 0) {
    auto trained = index->TrainIfReady();
    ASSERT_TRUE(trained.ok() && *trained) << trained.status();
  }

  // Remove every 10th vector, including each query's own vector.
  std::vector<int64_t> removed;
  absl::flat_hash_set<int64_t> removed_set;
  for (size_t i = 0; i < data.ids.size(); i += 10) {
    removed.push_back(data.ids[i]);
    removed_set.insert(data.ids[i]);
  }
  ASSERT_TRUE(index->Remove(removed).ok());
  EXPECT_EQ(index->size(), 3000 - 300);
  EXPECT_EQ(index->tombstones(), factory == "Flat" ? 0 : 300);
  EXPECT_THAT(index->Describe(), HasSubstr(factory == "Flat" ? "tombstones=0" : "tombstones=300"));

  const IdSetFilter filter = RandomFilter(data.ids, 0.05, 12);
  for (size_t i = 0; i < data.ids.size(); i += 50) {
    for (const IdFilter* f :
         {static_cast<const IdFilter*>(nullptr), static_cast<const IdFilter*>(&filter)}) {
      auto hits = index->Search(data.row(i), 10, f);
      ASSERT_TRUE(hits.ok()) << hits.status();
      EXPECT_EQ(hits->size(), 10u);
      for (const VectorHit& h : *hits) {
        EXPECT_FALSE(removed_set.contains(h.id)) << h.id;
        if (f != nullptr) EXPECT_TRUE(filter.Contains(h.id));
      }
      if (factory == "Flat") {
        EXPECT_EQ(HitIds(*hits),
                  HitIds(data.BruteForce(data.row(i), 10, f, Metric::kInnerProduct, removed_set)));
      }
    }
  }
  // A filter that allows only removed ids finds nothing.
  const IdSetFilter only_removed(removed);
  auto none = index->Search(data.row(0), 10, &only_removed);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

INSTANTIATE_TEST_SUITE_P(Factories, RemoveTest, ::testing::Values("Flat", "HNSW32", "IVF32,Flat"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name;
                           for (char c : info.param) {
                             if (std::isalnum(static_cast<unsigned char>(c))) name += c;
                           }
                           return name;
                         });

TEST(FaissVectorIndexTest, HnswCompactsWhenTombstonesExceedFraction) {
  const auto data = Dataset::Make(2000, 13);
  auto options = MakeOptions("HNSW32");
  options.inline_maintenance = false;
  auto index = MakeIndex(options);
  ASSERT_NE(index, nullptr);
  ASSERT_TRUE(index->Add(data.ids, data.vectors).ok());
  std::vector<int64_t> removed(data.ids.begin(), data.ids.begin() + 300);  // 15%
  ASSERT_TRUE(index->Remove(removed).ok());
  auto compacted = index->CompactIfNeeded();
  ASSERT_TRUE(compacted.ok());
  EXPECT_FALSE(*compacted);                                        // 15% <= 20%
  removed.assign(data.ids.begin() + 300, data.ids.begin() + 600);  // 30% in all
  ASSERT_TRUE(index->Remove(removed).ok());
  EXPECT_EQ(index->tombstones(), 600);
  compacted = index->CompactIfNeeded();
  ASSERT_TRUE(compacted.ok()) << compacted.status();
  EXPECT_TRUE(*compacted);
  EXPECT_EQ(index->tombstones(), 0);
  EXPECT_EQ(index->size(), 1400);
  EXPECT_THAT(index->Describe(), HasSubstr("live=1400 stored=1400 tombstones=0"));
  // Every live vector still finds itself; removed ones are gone.
  for (size_t i = 0; i < data.ids.size(); i += 37) {
    auto hits = index->Search(data.row(i), 1, nullptr);
    ASSERT_TRUE(hits.ok());
    ASSERT_EQ(hits->size(), 1u);
    if (i >= 600) EXPECT_EQ((*hits)[0].id, data.ids[i]);
    EXPECT_GE(std::find(data.ids.begin(), data.ids.end(), (*hits)[0].id) - data.ids.begin(), 600);
  }

  // With inline maintenance, Remove compacts by itself.
  auto inline_index = MakeFilled("HNSW32", data);
  ASSERT_NE(inline_index, nullptr);
  ASSERT_TRUE(
      inline_index->Remove(std::vector<int64_t>(data.ids.begin(), data.ids.begin() + 500)).ok());
  EXPECT_EQ(inline_index->tombstones(), 0);
  EXPECT_EQ(inline_index->size(), 1500);
}

// ---------------------------------------------------------------------------
// IVF training.

TEST(FaissVectorIndexTest, IvfSearchesExactlyBeforeTrainingThenTrains) {
  const auto data = Dataset::Make(3000, 14);
  auto options = MakeOptions("IVF32,PQ8");
  options.inline_maintenance = false;
  auto index = MakeIndex(options);
  ASSERT_NE(index, nullptr);
  ASSERT_TRUE(
      index
          ->Add(std::vector<int64_t>(data.ids.begin(), data.ids.begin() + 1000),
                std::vector<float>(data.vectors.begin(), data.vectors.begin() + 1000 * kDims))
          .ok());
  EXPECT_FALSE(index->is_trained());
  EXPECT_THAT(index->Describe(), HasSubstr("untrained"));
  auto trained = index->TrainIfReady();
  ASSERT_TRUE(trained.ok());
  EXPECT_FALSE(*trained);  // 1000 < 2000

  // Exact (side index), filtered, with removals.
  ASSERT_TRUE(index->Remove({data.ids[1], data.ids[2]}).ok());
  Dataset first{std::vector<int64_t>(data.ids.begin(), data.ids.begin() + 1000),
                std::vector<float>(data.vectors.begin(), data.vectors.begin() + 1000 * kDims)};
  const IdSetFilter filter = RandomFilter(first.ids, 0.1, 15);
  const absl::flat_hash_set<int64_t> removed = {data.ids[1], data.ids[2]};
  for (int q = 0; q < 10; ++q) {
    auto hits = index->Search(data.row(q), 10, &filter);
    ASSERT_TRUE(hits.ok());
    EXPECT_EQ(HitIds(*hits),
              HitIds(first.BruteForce(data.row(q), 10, &filter, Metric::kInnerProduct, removed)));
  }

  ASSERT_TRUE(index
                  ->Add(std::vector<int64_t>(data.ids.begin() + 1000, data.ids.end()),
                        std::vector<float>(data.vectors.begin() + 1000 * kDims, data.vectors.end()))
                  .ok());
  EXPECT_FALSE(index->is_trained());  // inline maintenance is off
  trained = index->TrainIfReady();
  ASSERT_TRUE(trained.ok()) << trained.status();
  EXPECT_TRUE(*trained);
  EXPECT_TRUE(index->is_trained());
  EXPECT_EQ(index->size(), 2998);
  EXPECT_THAT(index->Describe(), HasSubstr("state=trained nlist=32"));
  trained = index->TrainIfReady();
  ASSERT_TRUE(trained.ok());
  EXPECT_FALSE(*trained);  // once only
  auto hits = index->Search(data.row(1), 3000, nullptr);
  ASSERT_TRUE(hits.ok());
  EXPECT_EQ(hits->size(), 2998u);
  for (const VectorHit& h : *hits) EXPECT_FALSE(removed.contains(h.id));
}

TEST(FaissVectorIndexTest, InlineMaintenanceTrainsOnAdd) {
  const auto data = Dataset::Make(2500, 16);
  auto index = MakeIndex(MakeOptions("IVF32,Flat"));
  ASSERT_NE(index, nullptr);
  for (int b = 0; b < 5; ++b) {
    ASSERT_TRUE(index
                    ->Add(std::vector<int64_t>(data.ids.begin() + b * 500,
                                               data.ids.begin() + (b + 1) * 500),
                          std::vector<float>(data.vectors.begin() + b * 500 * kDims,
                                             data.vectors.begin() + (b + 1) * 500 * kDims))
                    .ok());
    EXPECT_EQ(index->is_trained(), (b + 1) * 500 >= 2000) << b;
  }
  EXPECT_EQ(index->size(), 2500);
}

// Training runs while writes continue; the writes made during the rebuild are
// replayed into the trained index.
TEST(FaissVectorIndexTest, BackgroundTrainingKeepsConcurrentWrites) {
  const auto data = Dataset::Make(4000, 17);
  auto options = MakeOptions("IVF32,Flat");
  options.inline_maintenance = false;
  auto index = MakeIndex(options);
  ASSERT_NE(index, nullptr);
  ASSERT_TRUE(
      index
          ->Add(std::vector<int64_t>(data.ids.begin(), data.ids.begin() + 2500),
                std::vector<float>(data.vectors.begin(), data.vectors.begin() + 2500 * kDims))
          .ok());
  std::thread trainer([&] {
    auto trained = index->TrainIfReady();
    EXPECT_TRUE(trained.ok() && *trained) << trained.status();
  });
  absl::flat_hash_set<int64_t> removed;
  for (int i = 2500; i < 4000; i += 50) {
    std::vector<int64_t> ids(data.ids.begin() + i, data.ids.begin() + i + 50);
    ASSERT_TRUE(index
                    ->Add(ids, std::vector<float>(data.vectors.begin() + i * kDims,
                                                  data.vectors.begin() + (i + 50) * kDims))
                    .ok());
    ASSERT_TRUE(index->Remove({data.ids[i - 2500]}).ok());
    removed.insert(data.ids[i - 2500]);
  }
  trainer.join();
  EXPECT_TRUE(index->is_trained());
  EXPECT_EQ(index->size(), 4000 - static_cast<int64_t>(removed.size()));
  auto all = index->Search(data.row(0), 5000, nullptr);
  ASSERT_TRUE(all.ok());
  absl::flat_hash_set<int64_t> seen;
  for (const VectorHit& h : *all) {
    EXPECT_FALSE(removed.contains(h.id));
    EXPECT_TRUE(seen.insert(h.id).second) << "duplicate " << h.id;
  }
  EXPECT_EQ(seen.size(), 4000 - removed.size());
}

// ---------------------------------------------------------------------------
// Persistence.

class SaveLoadTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SaveLoadTest, RoundTripGivesIdenticalResults) {
  const std::string factory = GetParam();
  InMemoryFileSystem fs;
  ASSERT_TRUE(fs.CreateDirectories("/idx", 0755).ok());
  const auto data = Dataset::Make(2500, 18);
  auto options = MakeOptions(factory, &fs);
  options.inline_maintenance = false;
  auto index = MakeIndex(options);
  ASSERT_NE(index, nullptr);
  ASSERT_TRUE(index->Add(data.ids, data.vectors).ok());
  if (factory.rfind("IVF", 0) == 0) ASSERT_TRUE(index->TrainIfReady().ok());
  ASSERT_TRUE(index->Remove({data.ids[3], data.ids[4], data.ids[99]}).ok());
  ASSERT_TRUE(index->Save("/idx/vectors.tvi").ok());

  auto loaded = FaissVectorIndex::Load("/idx/vectors.tvi", options);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->size(), index->size());
  EXPECT_EQ((*loaded)->tombstones(), index->tombstones());
  EXPECT_EQ((*loaded)->is_trained(), index->is_trained());
  EXPECT_EQ((*loaded)->Describe(), index->Describe());
  const IdSetFilter filter = RandomFilter(data.ids, 0.05, 19);
  for (int q = 0; q < 30; ++q) {
    for (const IdFilter* f :
         {static_cast<const IdFilter*>(nullptr), static_cast<const IdFilter*>(&filter)}) {
      auto a = index->Search(data.row(q * 7), 10, f);
      auto b = (*loaded)->Search(data.row(q * 7), 10, f);
      ASSERT_TRUE(a.ok() && b.ok());
      ASSERT_EQ(HitIds(*a), HitIds(*b));
      for (size_t i = 0; i < a->size(); ++i) EXPECT_EQ((*a)[i].score, (*b)[i].score);
    }
  }
  // The loaded index keeps working: add, remove (duplicates still detected),
  // compact.
  EXPECT_EQ((*loaded)->Add({data.ids[10]}, std::vector<float>(data.row(10), data.row(11))).code(),
            absl::StatusCode::kAlreadyExists);
  ASSERT_TRUE((*loaded)->Add({data.ids[3]}, std::vector<float>(data.row(3), data.row(4))).ok());
  ASSERT_TRUE((*loaded)->Compact().ok());
  EXPECT_EQ((*loaded)->tombstones(), 0);
  auto self = (*loaded)->Search(data.row(3), 1, nullptr);
  ASSERT_TRUE(self.ok());
  ASSERT_EQ(self->size(), 1u);
  if (factory.find("PQ") == std::string::npos) EXPECT_EQ((*self)[0].id, data.ids[3]);
}

INSTANTIATE_TEST_SUITE_P(Factories, SaveLoadTest,
                         ::testing::Values("Flat", "HNSW32", "IVF32,Flat", "IVF32,PQ8"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name;
                           for (char c : info.param) {
                             if (std::isalnum(static_cast<unsigned char>(c))) name += c;
                           }
                           return name;
                         });

TEST(FaissVectorIndexTest, SaveLoadUntrainedIvfKeepsSideIndex) {
  InMemoryFileSystem fs;
  ASSERT_TRUE(fs.CreateDirectories("/idx", 0755).ok());
  const auto data = Dataset::Make(500, 20);
  auto options = MakeOptions("IVF32,Flat", &fs);
  auto index = MakeIndex(options);
  ASSERT_NE(index, nullptr);
  ASSERT_TRUE(index->Add(data.ids, data.vectors).ok());
  ASSERT_FALSE(index->is_trained());
  ASSERT_TRUE(index->Save("/idx/v").ok());
  auto loaded = FaissVectorIndex::Load("/idx/v", options);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_FALSE((*loaded)->is_trained());
  EXPECT_EQ((*loaded)->size(), 500);
  auto more = Dataset::Make(2000, 21);
  for (auto& id : more.ids) id += 1'000'000;
  ASSERT_TRUE((*loaded)->Add(more.ids, more.vectors).ok());
  EXPECT_TRUE((*loaded)->is_trained());  // inline maintenance trained it
  EXPECT_EQ((*loaded)->size(), 2500);
}

TEST(FaissVectorIndexTest, SaveIsAtomicOnDisk) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = tmp != nullptr ? tmp : "/tmp";
  const std::string path = JoinPath(dir, "atomic.tvi");
  const auto data = Dataset::Make(300, 22);
  auto index = MakeFilled("HNSW32", data);
  ASSERT_NE(index, nullptr);
  ASSERT_TRUE(index->Save(path).ok());
  ASSERT_TRUE(index->Remove({data.ids[0]}).ok());
  ASSERT_TRUE(index->Save(path).ok());  // replaces
  auto names = LocalFileSystem()->ListDirectory(dir);
  ASSERT_TRUE(names.ok());
  for (const std::string& name : *names) EXPECT_THAT(name, ::testing::Not(HasSubstr(".tmp")));
  auto options = MakeOptions("HNSW32");
  auto loaded = FaissVectorIndex::Load(path, options);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->size(), 299);
}

TEST(FaissVectorIndexTest, LoadReportsMissingCorruptTruncatedAndMismatched) {
  InMemoryFileSystem fs;
  ASSERT_TRUE(fs.CreateDirectories("/idx", 0755).ok());
  const auto data = Dataset::Make(400, 23);
  auto options = MakeOptions("HNSW16", &fs);
  auto index = MakeFilled("HNSW16", data, &fs);
  ASSERT_NE(index, nullptr);
  ASSERT_TRUE(index->Save("/idx/good").ok());
  auto bytes = fs.ReadFile("/idx/good", 1 << 30);
  ASSERT_TRUE(bytes.ok());

  EXPECT_EQ(FaissVectorIndex::Load("/idx/missing", options).status().code(),
            absl::StatusCode::kNotFound);

  // Flipped bytes anywhere: header, FAISS data, checksum.
  for (size_t at : {size_t{9}, size_t{30}, bytes->size() / 2, bytes->size() - 1}) {
    std::string corrupt = *bytes;
    corrupt[at] = static_cast<char>(corrupt[at] ^ 0x5a);
    ASSERT_TRUE(fs.WriteFileAtomic("/idx/corrupt", corrupt, 0644).ok());
    auto loaded = FaissVectorIndex::Load("/idx/corrupt", options);
    EXPECT_EQ(loaded.status().code(), absl::StatusCode::kDataLoss) << at << loaded.status();
  }
  // Truncated at various points, and padded.
  for (size_t len : {size_t{0}, size_t{3}, size_t{8}, size_t{19}, size_t{40}, bytes->size() / 2,
                     bytes->size() - 1}) {
    ASSERT_TRUE(fs.WriteFileAtomic("/idx/short", bytes->substr(0, len), 0644).ok());
    EXPECT_EQ(FaissVectorIndex::Load("/idx/short", options).status().code(),
              absl::StatusCode::kDataLoss)
        << len;
  }
  ASSERT_TRUE(fs.WriteFileAtomic("/idx/long", *bytes + "x", 0644).ok());
  EXPECT_EQ(FaissVectorIndex::Load("/idx/long", options).status().code(),
            absl::StatusCode::kDataLoss);
  ASSERT_TRUE(fs.WriteFileAtomic("/idx/text", "hello, this is not an index", 0644).ok());
  EXPECT_EQ(FaissVectorIndex::Load("/idx/text", options).status().code(),
            absl::StatusCode::kDataLoss);

  // Mismatched options.
  auto other = options;
  other.dimensions = 32;
  EXPECT_EQ(FaissVectorIndex::Load("/idx/good", other).status().code(),
            absl::StatusCode::kFailedPrecondition);
  other = options;
  other.factory = "HNSW32";
  EXPECT_EQ(FaissVectorIndex::Load("/idx/good", other).status().code(),
            absl::StatusCode::kFailedPrecondition);
  other = options;
  other.metric = Metric::kL2;
  EXPECT_EQ(FaissVectorIndex::Load("/idx/good", other).status().code(),
            absl::StatusCode::kFailedPrecondition);
  other = options;
  other.dimensions = 0;  // take the file's
  auto loaded = FaissVectorIndex::Load("/idx/good", other);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->dimensions(), kDims);
}

// ---------------------------------------------------------------------------
// Concurrency.

class ConcurrencyTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ConcurrencyTest, SearchesRunWhileAnotherThreadAddsAndRemoves) {
  const std::string factory = GetParam();
  const auto data = Dataset::Make(4000, 24);
  auto index = MakeIndex(MakeOptions(factory));  // inline maintenance: IVF trains mid-way
  ASSERT_NE(index, nullptr);
  ASSERT_TRUE(
      index
          ->Add(std::vector<int64_t>(data.ids.begin(), data.ids.begin() + 500),
                std::vector<float>(data.vectors.begin(), data.vectors.begin() + 500 * kDims))
          .ok());
  const absl::flat_hash_set<int64_t> known(data.ids.begin(), data.ids.end());
  const IdSetFilter filter = RandomFilter(data.ids, 0.2, 25);
  std::atomic<bool> done{false};
  std::atomic<int> errors{0};
  std::atomic<int64_t> searches{0};
  std::vector<std::thread> searchers;
  for (int t = 0; t < 4; ++t) {
    searchers.emplace_back([&, t] {
      const auto queries = RandomUnitVectors(16, 100 + t);
      int q = 0;
      while (!done.load()) {
        const IdFilter* f = (q % 2 == 0) ? &filter : nullptr;
        auto hits = index->Search(queries.data() + (q % 16) * kDims, 10, f);
        ++q;
        if (!hits.ok() || hits->size() > 10) {
          ++errors;
          continue;
        }
        for (const VectorHit& h : *hits) {
          if (!known.contains(h.id) || (f != nullptr && !f->Contains(h.id))) ++errors;
        }
        ++searches;
      }
    });
  }
  std::thread writer([&] {
    for (int i = 500; i < 4000; i += 100) {
      if (!index
               ->Add(std::vector<int64_t>(data.ids.begin() + i, data.ids.begin() + i + 100),
                     std::vector<float>(data.vectors.begin() + i * kDims,
                                        data.vectors.begin() + (i + 100) * kDims))
               .ok()) {
        ++errors;
      }
      if (!index->Remove({data.ids[i - 400]}).ok()) ++errors;
    }
    done.store(true);
  });
  writer.join();
  for (auto& th : searchers) th.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_GT(searches.load(), 0);
  EXPECT_EQ(index->size(), 4000 - 35);
  EXPECT_TRUE(index->is_trained());
}

INSTANTIATE_TEST_SUITE_P(Factories, ConcurrencyTest,
                         ::testing::Values("Flat", "HNSW32", "IVF32,Flat"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           std::string name;
                           for (char c : info.param) {
                             if (std::isalnum(static_cast<unsigned char>(c))) name += c;
                           }
                           return name;
                         });

TEST(FaissVectorIndexTest, DescribeNamesFactoryCountsAndState) {
  const auto data = Dataset::Make(100, 26);
  auto index = MakeFilled("HNSW32", data);
  ASSERT_NE(index, nullptr);
  EXPECT_EQ(index->Describe(),
            "FaissVectorIndex{factory=\"HNSW32\" metric=inner_product dims=64 live=100 stored=100 "
            "tombstones=0 state=ready ef_search=128}");
  auto ivf = MakeFilled("IVF32,Flat", data);
  ASSERT_NE(ivf, nullptr);
  EXPECT_THAT(ivf->Describe(),
              HasSubstr("state=untrained (exact side index; trains at 2000 vectors) nlist=32"));
}

}  // namespace
}  // namespace tessera::retrieval
