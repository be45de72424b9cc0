// HnswlibPeer: hnswlib 0.6.2 (Debian libhnswlib-dev, header-only) behind a
// tiny interface, the ANN peer of bench/vector_bench. hnswlib.h defines
// non-inline functions, so it is included by hnswlib_peer.cc only.
#ifndef TESSERA_BENCH_HNSWLIB_PEER_H_
#define TESSERA_BENCH_HNSWLIB_PEER_H_

#include <cstdint>
#include <memory>
#include <vector>

namespace tessera::bench {

class HnswlibPeer {
 public:
  enum class Space { kL2, kInnerProduct };
  // Builds a graph over `n` row-major vectors (labels 0..n-1) with `threads`
  // threads (addPoint is thread-safe; the first point goes in alone).
  HnswlibPeer(Space space, int dims, const float* vectors, int64_t n, int m, int ef_construction,
              int threads);
  ~HnswlibPeer();
  HnswlibPeer(const HnswlibPeer&) = delete;
  HnswlibPeer& operator=(const HnswlibPeer&) = delete;

  void SetEf(int ef);
  // The k nearest labels, best first. Not thread-safe with SetEf.
  void Search(const float* query, int k, std::vector<int64_t>* labels) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tessera::bench

#endif  // TESSERA_BENCH_HNSWLIB_PEER_H_
