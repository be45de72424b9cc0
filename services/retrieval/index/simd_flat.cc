#include "services/retrieval/index/simd_flat.h"

#include <immintrin.h>

#include <memory>
#include <utility>

namespace tessera::retrieval {
namespace {

float DotScalar(const float* a, const float* b, size_t d) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= d; i += 4) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
  }
  for (; i < d; ++i) s0 += a[i] * b[i];
  return (s0 + s1) + (s2 + s3);
}

float L2Scalar(const float* a, const float* b, size_t d) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= d; i += 4) {
    const float d0 = a[i] - b[i], d1 = a[i + 1] - b[i + 1];
    const float d2 = a[i + 2] - b[i + 2], d3 = a[i + 3] - b[i + 3];
    s0 += d0 * d0;
    s1 += d1 * d1;
    s2 += d2 * d2;
    s3 += d3 * d3;
  }
  for (; i < d; ++i) {
    const float t = a[i] - b[i];
    s0 += t * t;
  }
  return (s0 + s1) + (s2 + s3);
}

__attribute__((target("avx2,fma"))) float HorizontalSum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v);
  __m128 hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 0x55));
  return _mm_cvtss_f32(lo);
}

__attribute__((target("avx2,fma"))) float DotAvx2(const float* a, const float* b, size_t d) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i + 8 <= d; i += 8) {
    acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc0);
  }
  float s = HorizontalSum(_mm256_add_ps(acc0, acc1));
  for (; i < d; ++i) s += a[i] * b[i];
  return s;
}

__attribute__((target("avx2,fma"))) float L2Avx2(const float* a, const float* b, size_t d) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    const __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
    acc0 = _mm256_fmadd_ps(d0, d0, acc0);
    acc1 = _mm256_fmadd_ps(d1, d1, acc1);
  }
  for (; i + 8 <= d; i += 8) {
    const __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
    acc0 = _mm256_fmadd_ps(d0, d0, acc0);
  }
  float s = HorizontalSum(_mm256_add_ps(acc0, acc1));
  for (; i < d; ++i) {
    const float t = a[i] - b[i];
    s += t * t;
  }
  return s;
}

using DistanceFn = float (*)(const float*, const float*, size_t);

bool HasAvx2() {
  static const bool has = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return has;
}

// Returns what FAISS's own flat computers return: the inner product for
// METRIC_INNER_PRODUCT (HNSW negates it), the squared distance for L2.
class SimdFlatDistance : public faiss::FlatCodesDistanceComputer {
 public:
  SimdFlatDistance(const faiss::IndexFlat& index, DistanceFn fn)
      : faiss::FlatCodesDistanceComputer(index.codes.data(), index.code_size),
        d_(static_cast<size_t>(index.d)),
        base_(reinterpret_cast<const float*>(index.codes.data())),
        fn_(fn) {}
  void set_query(const float* x) override { query_ = x; }
  float distance_to_code(const uint8_t* code) override {
    return fn_(query_, reinterpret_cast<const float*>(code), d_);
  }
  float symmetric_dis(faiss::Index::idx_t i, faiss::Index::idx_t j) override {
    return fn_(base_ + static_cast<size_t>(i) * d_, base_ + static_cast<size_t>(j) * d_, d_);
  }

 private:
  const size_t d_;
  const float* base_;
  const float* query_ = nullptr;
  const DistanceFn fn_;
};

}  // namespace

float SimdInnerProduct(const float* a, const float* b, size_t d) {
  return HasAvx2() ? DotAvx2(a, b, d) : DotScalar(a, b, d);
}

float SimdL2Squared(const float* a, const float* b, size_t d) {
  return HasAvx2() ? L2Avx2(a, b, d) : L2Scalar(a, b, d);
}

faiss::FlatCodesDistanceComputer* SimdIndexFlat::get_FlatCodesDistanceComputer() const {
  if (metric_type == faiss::METRIC_INNER_PRODUCT) {
    return new SimdFlatDistance(*this, HasAvx2() ? DotAvx2 : DotScalar);
  }
  if (metric_type == faiss::METRIC_L2) {
    return new SimdFlatDistance(*this, HasAvx2() ? L2Avx2 : L2Scalar);
  }
  return faiss::IndexFlat::get_FlatCodesDistanceComputer();
}

void UseSimdStorage(faiss::IndexHNSW* hnsw) {
  if (hnsw == nullptr || dynamic_cast<SimdIndexFlat*>(hnsw->storage) != nullptr) return;
  auto* old = dynamic_cast<faiss::IndexFlat*>(hnsw->storage);
  if (old == nullptr) return;
  auto fast = std::make_unique<SimdIndexFlat>(old->d, old->metric_type);
  fast->codes = std::move(old->codes);
  fast->ntotal = old->ntotal;
  fast->metric_arg = old->metric_arg;
  old->ntotal = 0;
  if (hnsw->own_fields) delete old;
  hnsw->storage = fast.release();
  hnsw->own_fields = true;
}

}  // namespace tessera::retrieval
