// A memory-bandwidth reading for the engine benchmark: a streaming read of a large buffer
// (4 KiB pages, like the page cache that holds the memory-mapped model files both engines read
// weights from) by N threads, in GB/s. Taken right before each engine run, because bandwidth on
// shared machines drifts by tens of percent over minutes.
#ifndef TESSERA_BENCH_ENGINE_MEMBW_H_
#define TESSERA_BENCH_ENGINE_MEMBW_H_

#include <cstddef>
#include <cstdint>

namespace tessera::bench {

class BandwidthProbe {
 public:
  // Allocates and touches `bytes` (rounded down to a multiple of 4 KiB * threads).
  BandwidthProbe(size_t bytes, int threads);
  ~BandwidthProbe();
  BandwidthProbe(const BandwidthProbe&) = delete;
  BandwidthProbe& operator=(const BandwidthProbe&) = delete;

  // The best of `passes` full reads of the buffer, in GB/s (1e9 bytes): the ceiling, which is
  // what decode is compared with (on a time-shared machine slower passes mostly measure lost
  // CPU time, not memory).
  double ReadGBps(int passes = 5);

 private:
  uint64_t* data_ = nullptr;
  size_t words_ = 0;
  int threads_;
  uint64_t sink_ = 0;  // keeps the sums alive
};

}  // namespace tessera::bench

#endif  // TESSERA_BENCH_ENGINE_MEMBW_H_
