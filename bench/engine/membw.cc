#include "bench/engine/membw.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "bench/bench_util.h"

namespace tessera::bench {
namespace {

// Four independent accumulators so that the adds never limit the read rate; the compiler
// vectorises this loop (SSE2 is plenty: one core can add far faster than DRAM delivers).
uint64_t SumWords(const uint64_t* p, size_t n) {
  uint64_t a = 0, b = 0, c = 0, d = 0;
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a += p[i];
    b += p[i + 1];
    c += p[i + 2];
    d += p[i + 3];
  }
  for (; i < n; ++i) a += p[i];
  return a + b + c + d;
}

}  // namespace

BandwidthProbe::BandwidthProbe(size_t bytes, int threads) : threads_(std::max(1, threads)) {
  const size_t unit = size_t{4096} * threads_;
  bytes = std::max(unit, bytes / unit * unit);
  void* p = nullptr;
  if (posix_memalign(&p, 4096, bytes) != 0) std::abort();
  // Weights come from the page cache (4 KiB pages) in both engines: measure the same pages.
  madvise(p, bytes, MADV_NOHUGEPAGE);
  std::memset(p, 1, bytes);
  data_ = static_cast<uint64_t*>(p);
  words_ = bytes / sizeof(uint64_t);
}

BandwidthProbe::~BandwidthProbe() { std::free(data_); }

double BandwidthProbe::ReadGBps(int passes) {
  std::vector<double> rates;
  const size_t per = words_ / threads_;
  for (int pass = 0; pass < passes; ++pass) {
    std::vector<uint64_t> sums(threads_);
    std::vector<std::thread> pool;
    Stopwatch sw;
    for (int t = 1; t < threads_; ++t) {
      pool.emplace_back([&, t] { sums[t] = SumWords(data_ + t * per, per); });
    }
    sums[0] = SumWords(data_, per);
    for (auto& th : pool) th.join();
    const double s = sw.Seconds();
    for (uint64_t v : sums) sink_ += v;
    rates.push_back(static_cast<double>(per * threads_ * sizeof(uint64_t)) / s / 1e9);
  }
  return *std::max_element(rates.begin(), rates.end());
}

}  // namespace tessera::bench
