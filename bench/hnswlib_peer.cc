#include "bench/hnswlib_peer.h"

#include <hnswlib/hnswlib.h>

#include <algorithm>
#include <atomic>
#include <thread>

namespace tessera::bench {

struct HnswlibPeer::Impl {
  std::unique_ptr<hnswlib::SpaceInterface<float>> space;
  std::unique_ptr<hnswlib::HierarchicalNSW<float>> graph;
};

HnswlibPeer::HnswlibPeer(Space space, int dims, const float* vectors, int64_t n, int m,
                         int ef_construction, int threads)
    : impl_(std::make_unique<Impl>()) {
  if (space == Space::kL2) {
    impl_->space = std::make_unique<hnswlib::L2Space>(dims);
  } else {
    impl_->space = std::make_unique<hnswlib::InnerProductSpace>(dims);
  }
  impl_->graph = std::make_unique<hnswlib::HierarchicalNSW<float>>(
      impl_->space.get(), static_cast<size_t>(n), static_cast<size_t>(m),
      static_cast<size_t>(ef_construction), /*random_seed=*/100);
  if (n == 0) return;
  impl_->graph->addPoint(vectors, 0);
  std::atomic<int64_t> next{1};
  auto work = [&] {
    for (int64_t i = next++; i < n; i = next++) {
      impl_->graph->addPoint(vectors + i * dims, static_cast<hnswlib::labeltype>(i));
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < std::max(1, threads); ++t) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
}

HnswlibPeer::~HnswlibPeer() = default;

void HnswlibPeer::SetEf(int ef) { impl_->graph->setEf(static_cast<size_t>(ef)); }

void HnswlibPeer::Search(const float* query, int k, std::vector<int64_t>* labels) const {
  auto top = impl_->graph->searchKnn(query, static_cast<size_t>(k));
  labels->assign(top.size(), -1);
  for (size_t i = top.size(); i-- > 0;) {
    (*labels)[i] = static_cast<int64_t>(top.top().second);
    top.pop();
  }
}

}  // namespace tessera::bench
