// Benchmarks of the CPU backend's kernels at Mistral-7B shapes, reporting the
// rate at which weights stream from memory (GB/s: 1e9 bytes per second), next
// to a memory-bandwidth probe that bounds what a memory-bound GEMV can reach.
// Run:
//   bazel run -c opt //engine/backend/cpu:kernels_bench --
//   --benchmark_repetitions=5
// TESSERA_CPU_ISA=avx2|scalar forces a kernel level; BENCH_THREADS sets the
// thread count (default 2).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "benchmark/benchmark.h"
#include "engine/backend/backend.h"
#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cpu/spin_pool.h"
#include "engine/model/dtype.h"

namespace tessera::engine::cpu {
namespace {

int BenchThreads() {
  const char* env = std::getenv("BENCH_THREADS");
  return env != nullptr ? std::atoi(env) : 2;
}

Backend& SharedBackend() {
  static Backend* backend = [] {
    CpuBackendOptions options;
    options.num_threads = BenchThreads();
    return CreateCpuBackend(options)->release();
  }();
  return *backend;
}

// Weights are built once per (type, rows, cols) and kept: quantizing 58M values
// takes seconds.
struct BenchWeight {
  std::vector<uint8_t> bytes;
  std::unique_ptr<Weight> weight;
};

const BenchWeight& GetWeight(DType type, int64_t rows, int64_t cols) {
  static auto* cache =
      new std::map<std::tuple<int, int64_t, int64_t>, std::unique_ptr<BenchWeight>>;
  auto& slot = (*cache)[{static_cast<int>(type), rows, cols}];
  if (slot == nullptr) {
    slot = std::make_unique<BenchWeight>();
    const size_t rb = *RowBytes(type, cols);
    slot->bytes.resize(rows * rb);
    std::vector<float> row(cols);
    uint32_t s = 12345;
    for (int64_t r = 0; r < rows; ++r) {
      for (float& f : row) {
        s = s * 1664525u + 1013904223u;
        f = static_cast<float>(static_cast<int32_t>(s)) * (1.0f / 2147483648.0f);
      }
      QuantizeRow(type, row.data(), slot->bytes.data() + r * rb, cols);
    }
    slot->weight = *SharedBackend().LoadWeight({type, rows, cols, slot->bytes.data()});
  }
  return *slot;
}

void BM_MatMul(benchmark::State& state, DType type) {
  const int64_t rows = state.range(0), cols = state.range(1), n = state.range(2);
  Backend& b = SharedBackend();
  const BenchWeight& w = GetWeight(type, rows, cols);
  auto x = b.Alloc(n * cols);
  std::vector<float> xh(n * cols);
  for (int64_t i = 0; i < n * cols; ++i) xh[i] = static_cast<float>((i * 7919) % 1000) / 500.0f - 1;
  b.CopyFromHost(xh.data(), xh.size(), *x);
  auto y = b.Alloc(n * rows);
  for (auto _ : state) {
    b.MatMul(*w.weight, *x, n, *y);
    benchmark::DoNotOptimize(y->data());
  }
  const double bytes = static_cast<double>(w.bytes.size());
  state.counters["weight_GB/s"] =
      benchmark::Counter(bytes / 1e9 * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * rows * cols * n / 1e9 * state.iterations(),
                                                 benchmark::Counter::kIsRate);
  state.SetLabel(b.name());
}

void GemvArgs(benchmark::internal::Benchmark* bm) {
  bm->Args({4096, 4096, 1})->Args({14336, 4096, 1})->Unit(benchmark::kMicrosecond)->UseRealTime();
}

BENCHMARK_CAPTURE(BM_MatMul, F16, DType::kF16)->Apply(GemvArgs);
BENCHMARK_CAPTURE(BM_MatMul, Q8_0, DType::kQ8_0)->Apply(GemvArgs);
BENCHMARK_CAPTURE(BM_MatMul, Q4_0, DType::kQ4_0)->Apply(GemvArgs);
BENCHMARK_CAPTURE(BM_MatMul, Q4_K, DType::kQ4_K)->Apply(GemvArgs);
// Small decode batches and prefill.
BENCHMARK_CAPTURE(BM_MatMul, Q8_0_batch, DType::kQ8_0)
    ->Args({4096, 4096, 4})
    ->Args({4096, 4096, 8})
    ->Args({4096, 4096, 64})
    ->Args({4096, 4096, 512})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_MatMul, Q4_0_batch, DType::kQ4_0)
    ->Args({4096, 4096, 64})
    ->Args({4096, 4096, 512})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_MatMul, F16_batch, DType::kF16)
    ->Args({4096, 4096, 8})
    ->Args({4096, 4096, 16})
    ->Args({4096, 4096, 32})
    ->Args({4096, 4096, 64})
    ->Args({4096, 4096, 512})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
// bge-small shapes (dim 384, FFN 1536) over a pass of 512 tokens (CpuBackend::PreferredPassTokens).
BENCHMARK_CAPTURE(BM_MatMul, F16_bert, DType::kF16)
    ->Args({384, 384, 512})
    ->Args({1536, 384, 512})
    ->Args({384, 1536, 512})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Memory bandwidth probes over 512 MiB (far beyond the caches): a read-only
// reduction split across the same number of threads as the GEMVs, and a
// single-threaded memcpy.
constexpr size_t kProbeBytes = size_t{512} << 20;

void BM_MemRead(benchmark::State& state) {
  const int threads = BenchThreads();
  static std::vector<uint64_t>* buf = new std::vector<uint64_t>(kProbeBytes / 8, 1);
  SpinPool pool(threads);
  const int64_t parts = threads * 8;
  const size_t per = buf->size() / parts;
  std::vector<uint64_t> sums(parts);
  for (auto _ : state) {
    pool.Run(parts, [&](int64_t t) {
      const uint64_t* p = buf->data() + t * per;
      uint64_t a = 0, b = 0, c = 0, d = 0;
      for (size_t i = 0; i < per; i += 4) {
        a ^= p[i];
        b ^= p[i + 1];
        c ^= p[i + 2];
        d ^= p[i + 3];
      }
      sums[t] = a ^ b ^ c ^ d;
    });
    benchmark::DoNotOptimize(sums.data());
  }
  state.counters["GB/s"] =
      benchmark::Counter(kProbeBytes / 1e9 * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_MemRead)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Memcpy(benchmark::State& state) {
  static std::vector<char>* src = new std::vector<char>(kProbeBytes, 1);
  static std::vector<char>* dst = new std::vector<char>(kProbeBytes, 2);
  for (auto _ : state) {
    std::memcpy(dst->data(), src->data(), kProbeBytes);
    benchmark::DoNotOptimize(dst->data());
  }
  // Bytes moved: read + written.
  state.counters["GB/s"] =
      benchmark::Counter(2.0 * kProbeBytes / 1e9 * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Memcpy)->Unit(benchmark::kMillisecond)->UseRealTime();

// Fork-join latency of the pool: one op with one empty task per thread.
void BM_PoolRoundTrip(benchmark::State& state) {
  SpinPool pool(BenchThreads());
  for (auto _ : state) pool.Run(pool.num_threads(), [](int64_t) {});
}
BENCHMARK(BM_PoolRoundTrip)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace tessera::engine::cpu

BENCHMARK_MAIN();
