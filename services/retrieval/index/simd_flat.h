// SimdIndexFlat: a faiss::IndexFlat whose distance computer uses AVX2/FMA
// (chosen at run time; scalar otherwise). Debian's libfaiss 1.7.3 is built
// for baseline x86-64, so its own distance loops are scalar, which makes
// every HNSW search and insertion 2-4x slower than it need be. Used as the
// storage of our HNSW indexes; it serialises as a plain IndexFlat (it is one),
// so saved files stay standard FAISS. Thread-compatible like IndexFlat.
#ifndef TESSERA_SERVICES_RETRIEVAL_INDEX_SIMD_FLAT_H_
#define TESSERA_SERVICES_RETRIEVAL_INDEX_SIMD_FLAT_H_

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>

#include <cstddef>

namespace tessera::retrieval {

class SimdIndexFlat : public faiss::IndexFlat {
 public:
  SimdIndexFlat(idx_t d, faiss::MetricType metric) : faiss::IndexFlat(d, metric) {}
  faiss::FlatCodesDistanceComputer* get_FlatCodesDistanceComputer() const override;
};

// Replaces an HNSW index's plain IndexFlat storage by a SimdIndexFlat holding
// the same vectors (moved, not copied). No-op for other storage types.
// Throws like FAISS.
void UseSimdStorage(faiss::IndexHNSW* hnsw);

// The kernels, exposed for tests: inner product and squared L2 distance.
float SimdInnerProduct(const float* a, const float* b, size_t d);
float SimdL2Squared(const float* a, const float* b, size_t d);

}  // namespace tessera::retrieval

#endif  // TESSERA_SERVICES_RETRIEVAL_INDEX_SIMD_FLAT_H_
