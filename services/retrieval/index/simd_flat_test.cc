#include "services/retrieval/index/simd_flat.h"

#include <faiss/utils/distances.h>

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace tessera::retrieval {
namespace {

TEST(SimdFlatTest, KernelsMatchFaissOnEveryLength) {
  std::mt19937 rng(7);
  std::normal_distribution<float> g;
  for (size_t d : {1, 3, 7, 8, 9, 15, 16, 17, 31, 128, 384, 385}) {
    std::vector<float> a(d), b(d);
    for (auto& x : a) x = g(rng);
    for (auto& x : b) x = g(rng);
    const float ip = faiss::fvec_inner_product(a.data(), b.data(), d);
    const float l2 = faiss::fvec_L2sqr(a.data(), b.data(), d);
    EXPECT_NEAR(SimdInnerProduct(a.data(), b.data(), d), ip, 1e-4f * (1 + std::fabs(ip))) << d;
    EXPECT_NEAR(SimdL2Squared(a.data(), b.data(), d), l2, 1e-4f * (1 + l2)) << d;
  }
}

TEST(SimdFlatTest, HnswWithSimdStorageFindsTheSameNeighbours) {
  const int d = 64, n = 2000;
  std::mt19937 rng(11);
  std::normal_distribution<float> g;
  std::vector<float> x(static_cast<size_t>(n) * d);
  for (auto& v : x) v = g(rng);
  faiss::IndexHNSWFlat plain(d, 16, faiss::METRIC_INNER_PRODUCT);
  faiss::IndexHNSWFlat fast(d, 16, faiss::METRIC_INNER_PRODUCT);
  UseSimdStorage(&fast);
  ASSERT_NE(dynamic_cast<SimdIndexFlat*>(fast.storage), nullptr);
  plain.add(n, x.data());
  fast.add(n, x.data());
  EXPECT_EQ(fast.ntotal, n);
  // Exact top-1 of each query by brute force; both indexes must agree with it
  // about as often (the graphs may differ by float rounding).
  int plain_hits = 0, fast_hits = 0;
  for (int q = 0; q < 100; ++q) {
    const float* query = x.data() + static_cast<size_t>(q) * d;
    faiss::Index::idx_t best = -1;
    float best_ip = -1e30f;
    for (int i = 0; i < n; ++i) {
      float ip = faiss::fvec_inner_product(query, x.data() + static_cast<size_t>(i) * d, d);
      if (ip > best_ip) best_ip = ip, best = i;
    }
    float dist[1];
    faiss::Index::idx_t label[1];
    plain.search(1, query, 1, dist, label);
    plain_hits += label[0] == best;
    fast.search(1, query, 1, dist, label);
    fast_hits += label[0] == best;
    EXPECT_NEAR(dist[0], best_ip, 1e-3f * (1 + std::fabs(best_ip)));
  }
  EXPECT_GE(fast_hits, plain_hits - 3);
  // Moving an existing storage keeps its vectors.
  faiss::IndexHNSWFlat moved(d, 16, faiss::METRIC_L2);
  moved.add(n, x.data());
  UseSimdStorage(&moved);
  float dist[1];
  faiss::Index::idx_t label[1];
  moved.search(1, x.data() + 5 * d, 1, dist, label);
  EXPECT_EQ(label[0], 5);
  EXPECT_NEAR(dist[0], 0.0f, 1e-4f);
}

}  // namespace
}  // namespace tessera::retrieval
