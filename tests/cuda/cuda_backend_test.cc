// Every op of the CUDA backend (engine/backend/cuda) against the CPU backend, the oracle, on
// fresh random inputs. Output buffers are poisoned with NaN before each op so that elements the
// GPU never writes show up as failures. Tagged requires-gpu: without a device (or on a GPU older
// than sm_90) every test calls GTEST_SKIP, so the target passes on CPU-only machines.
//
// Tolerances (|gpu - cpu| <= abs + rel * scale, scale stated per op):
//   GetRows: exact (both dequantize with the same formulas in F32).
//   MatMul: scale = sum_c |x_c * w_rc| of the output element; rel = 1e-5 (F32), 2e-3 (F16),
//     8e-3 (BF16; the cuBLAS path rounds activations to BF16), 1e-2 (Q8_0, Q4_0, Q4_K: the CPU
//     rounds activations to 8 bits, error <= 1/127 of the scale; the GPU keeps F32 or BF16).
//   Elementwise (Add, AddRow, SiluMul, Gelu): rel 2e-6 of |value| + abs 1e-6.
//   RmsNorm, LayerNorm: rel 1e-5 of |value| + abs 1e-5 (different summation order).
//   Rope: abs 1e-5 (angles in double on both; values of order 1).
//   PagedAttention, DenseAttention: abs 2e-5 + rel 1e-4 of max|v| (online vs two-pass softmax).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/backend/backend.h"
#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cuda/cuda_backend.h"
#include "engine/model/dtype.h"
#include "gtest/gtest.h"

namespace tessera::engine {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::vector<float> RandomFloats(int64_t n, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

// Bytes of a weight of `type` with rows x cols random values (Q4_K: random blocks).
std::vector<uint8_t> RandomWeight(DType type, int64_t rows, int64_t cols, std::mt19937& rng,
                                  float scale = 1.0f) {
  const size_t row_bytes = *RowBytes(type, cols);
  std::vector<uint8_t> out(rows * row_bytes);
  if (type == DType::kQ4_K) {
    std::uniform_int_distribution<int> byte(0, 255);
    for (uint8_t& b : out) b = static_cast<uint8_t>(byte(rng));
    std::uniform_real_distribution<float> d(0.001f, 0.01f);
    auto* blocks = reinterpret_cast<BlockQ4_K*>(out.data());
    for (int64_t i = 0; i < rows * cols / kQK_K; ++i) {
      blocks[i].d = F32ToF16(d(rng) * scale);
      blocks[i].dmin = F32ToF16(d(rng) * scale);
    }
    return out;
  }
  for (int64_t r = 0; r < rows; ++r) {
    const std::vector<float> v = RandomFloats(cols, rng, -scale, scale);
    QuantizeRow(type, v.data(), out.data() + r * row_bytes, cols);
  }
  return out;
}

std::vector<float> Dequantized(DType type, const std::vector<uint8_t>& w, int64_t rows,
                               int64_t cols) {
  const size_t row_bytes = *RowBytes(type, cols);
  std::vector<float> out(rows * cols);
  for (int64_t r = 0; r < rows; ++r) {
    DequantizeRow(type, w.data() + r * row_bytes, out.data() + r * cols, cols);
  }
  return out;
}

// The scale of each MatMul output, sum over c of |x[i][c] * w[r][c]| (tolerances are relative
// to it), for x [n, cols] and w [rows, cols].
std::vector<double> AbsDotScale(const std::vector<float>& x, const std::vector<float>& w,
                                int64_t n, int64_t rows, int64_t cols) {
  std::vector<double> scale(n * rows);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t r = 0; r < rows; ++r) {
      double sum = 0;
      for (int64_t c = 0; c < cols; ++c) sum += std::fabs(x[i * cols + c] * w[r * cols + c]);
      scale[i * rows + r] = sum;
    }
  }
  return scale;
}

class CudaBackendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why;
    if (cuda::CudaDeviceCount(&why) == 0) {
      GTEST_SKIP() << "No CUDA device available (" << why << "); skipping GPU test.";
    }
    auto gpu = cuda::CreateCudaBackend({});
    if (!gpu.ok() && gpu.status().code() == absl::StatusCode::kFailedPrecondition) {
      GTEST_SKIP() << gpu.status();
    }
    ASSERT_TRUE(gpu.ok()) << gpu.status();
    gpu_ = std::move(*gpu);
    cpu::CpuBackendOptions o;
    o.num_threads = 2;
    auto c = cpu::CreateCpuBackend(o);
    ASSERT_TRUE(c.ok()) << c.status();
    cpu_ = std::move(*c);
  }

  // A buffer of `b` holding v.
  static std::unique_ptr<Buffer> Upload(Backend& b, const std::vector<float>& v) {
    auto buf = b.Alloc(v.size());
    b.CopyFromHost(v.data(), v.size(), *buf);
    return buf;
  }
  // A buffer of n NaNs.
  static std::unique_ptr<Buffer> Poisoned(Backend& b, int64_t n) {
    return Upload(b, std::vector<float>(n, kNaN));
  }
  static std::vector<float> Download(Backend& b, const Buffer& buf, int64_t n) {
    std::vector<float> v(n);
    b.CopyToHost(buf, 0, n, v.data());
    return v;
  }
  static std::unique_ptr<Weight> Load(Backend& b, DType type, int64_t rows, int64_t cols,
                                      const void* data) {
    auto w = b.LoadWeight({type, rows, cols, data});
    EXPECT_TRUE(w.ok()) << w.status();
    return w.ok() ? std::move(*w) : nullptr;
  }
  static std::unique_ptr<Weight> LoadF32(Backend& b, const std::vector<float>& v) {
    return Load(b, DType::kF32, 1, v.size(), v.data());
  }

  // Expects every element written (no NaN poison left) and finite.
  static void ExpectAllFinite(const std::vector<float>& v, const std::string& what) {
    const auto bad = std::find_if(v.begin(), v.end(), [](float f) { return !std::isfinite(f); });
    EXPECT_TRUE(bad == v.end()) << what << ": element " << (bad - v.begin()) << " of " << v.size()
                                << " is " << (bad == v.end() ? 0.0f : *bad);
  }

  // Expects |got[i] - want[i]| <= abs + rel * scale[i] (scale empty: |want[i]|).
  static void ExpectNear(const std::vector<float>& got, const std::vector<float>& want, double abs,
                         double rel, const std::string& what,
                         const std::vector<double>& scale = {}) {
    ASSERT_EQ(got.size(), want.size()) << what;
    int failures = 0;
    for (size_t i = 0; i < got.size() && failures < 8; ++i) {
      const double s = scale.empty() ? std::fabs(want[i]) : scale[i];
      const double tol = abs + rel * s;
      if (std::isnan(got[i]) && !std::isnan(want[i])) {
        ADD_FAILURE() << what << ": element " << i << " of " << got.size()
                      << " was not written (still the NaN poison); want " << want[i];
        ++failures;
      } else if (!(std::fabs(static_cast<double>(got[i]) - want[i]) <= tol)) {
        ADD_FAILURE() << what << ": element " << i << ": gpu " << got[i] << ", cpu " << want[i]
                      << ", tolerance " << tol;
        ++failures;
      }
    }
  }

  // The same KV cache on both backends: random keys and values in [lo, hi] for positions
  // [0, lengths[s]) of each sequence s, written to `layer` through block table tables[s].
  struct TwinCaches {
    std::unique_ptr<KvCache> gpu, cpu;
  };
  TwinCaches FillTwinCaches(const KvCacheShape& shape, int layer, const std::vector<int>& lengths,
                            const std::vector<std::vector<int32_t>>& tables, std::mt19937& rng,
                            float lo, float hi) {
    TwinCaches twin;
    auto cg = gpu_->AllocKvCache(shape);
    auto cc = cpu_->AllocKvCache(shape);
    EXPECT_TRUE(cg.ok() && cc.ok());
    if (!cg.ok() || !cc.ok()) return twin;
    twin.gpu = std::move(*cg);
    twin.cpu = std::move(*cc);
    const int64_t kd = int64_t{shape.num_kv_heads} * shape.head_dim;
    for (size_t s = 0; s < lengths.size(); ++s) {
      std::vector<int32_t> slots;
      for (int p = 0; p < lengths[s]; ++p) {
        slots.push_back(tables[s][p / shape.block_size] * shape.block_size + p % shape.block_size);
      }
      const std::vector<float> k = RandomFloats(slots.size() * kd, rng, lo, hi);
      const std::vector<float> v = RandomFloats(slots.size() * kd, rng, lo, hi);
      auto kg = Upload(*gpu_, k), vg = Upload(*gpu_, v), kc = Upload(*cpu_, k), vc = Upload(*cpu_, v);
      gpu_->WriteKv(*twin.gpu, layer, *kg, *vg, slots);
      cpu_->WriteKv(*twin.cpu, layer, *kc, *vc, slots);
    }
    return twin;
  }

  // Two sequences for long-context decode (8 kv heads of 128; 4000 keys in blocks 7.., 100 keys
  // in blocks 0..6) written into `layer` of both caches.
  struct LongContext {
    KvCacheShape shape;
    std::vector<std::vector<int32_t>> tables;
    TwinCaches caches;
  };
  LongContext FillLongContext(int layer, std::mt19937& rng) {
    LongContext lc;
    lc.shape.num_layers = layer + 1;
    lc.shape.num_blocks = 260;
    lc.shape.block_size = 16;
    lc.shape.num_kv_heads = 8;
    lc.shape.head_dim = 128;
    lc.tables.resize(2);
    for (int b = 0; b < 250; ++b) lc.tables[0].push_back(b + 7);
    for (int b = 0; b < 7; ++b) lc.tables[1].push_back(b);  // 100 keys: 7 blocks
    lc.caches = FillTwinCaches(lc.shape, layer, {4000, 100}, lc.tables, rng, -2, 2);
    return lc;
  }

  // TopK of the same logits on both backends: the same k, candidates, ids and counts exactly (the
  // penalty and the ordering are exact float operations), the softmax sums within 1e-6 relative
  // (device expf and another summation order), and the penalised logits left in place identical.
  void ExpectTopKMatchesCpu(const std::vector<float>& x, int64_t rows, int64_t cols, int k,
                            const std::vector<float>& temp, const std::vector<float>& penalty,
                            const std::vector<int32_t>& pen_ids,
                            const std::vector<int32_t>& starts, const std::string& what) {
    TopKRequest req;
    req.k = k;
    req.sum_temperature = temp;
    req.penalty = penalty;
    req.penalty_ids = pen_ids;
    req.penalty_starts = starts;
    auto lg = Upload(*gpu_, x), lc = Upload(*cpu_, x);
    TopKRows g, c;
    gpu_->TopK(*lg, rows, cols, req, &g);
    cpu_->TopK(*lc, rows, cols, req, &c);
    EXPECT_EQ(g.k, k) << what;
    EXPECT_EQ(g.ids, c.ids) << what;
    EXPECT_EQ(g.values, c.values) << what;
    EXPECT_EQ(g.nonfinite, c.nonfinite) << what;
    for (int64_t r = 0; r < rows; ++r) {
      EXPECT_NEAR(g.sum_exp[r], c.sum_exp[r], 1e-6 * c.sum_exp[r]) << what << " row " << r;
    }
    const std::vector<float> pg = Download(*gpu_, *lg, rows * cols),
                             pc = Download(*cpu_, *lc, rows * cols);
    EXPECT_EQ(0, std::memcmp(pg.data(), pc.data(), pg.size() * sizeof(float))) << what;
  }

  // A paged-attention batch over `tables` (one per sequence); the spans must outlive it.
  static PagedAttentionBatch AttentionBatch(absl::Span<const int32_t> seq,
                                            absl::Span<const int32_t> pos,
                                            const std::vector<std::vector<int32_t>>& tables,
                                            int window) {
    PagedAttentionBatch batch;
    batch.token_seq = seq;
    batch.token_pos = pos;
    for (const auto& t : tables) batch.block_tables.push_back(t);
    batch.sliding_window = window;
    return batch;
  }

  std::unique_ptr<Backend> gpu_, cpu_;
};

const DType kAllTypes[] = {DType::kF32, DType::kF16, DType::kBF16,
                           DType::kQ8_0, DType::kQ4_0, DType::kQ4_K};

TEST_F(CudaBackendTest, NameSaysCuda) { EXPECT_EQ(gpu_->name().substr(0, 5), "cuda:"); }

TEST_F(CudaBackendTest, CopyRoundTripsAndHonoursOffsets) {
  std::mt19937 rng(1);
  const std::vector<float> v = RandomFloats(1000, rng);
  auto buf = Poisoned(*gpu_, 1200);
  gpu_->CopyFromHost(v.data(), 1000, *buf, 100);
  std::vector<float> back(1000);
  gpu_->CopyToHost(*buf, 100, 1000, back.data());
  EXPECT_EQ(back, v);
  std::vector<float> head(100);
  gpu_->CopyToHost(*buf, 0, 100, head.data());
  for (float f : head) EXPECT_TRUE(std::isnan(f));
}

TEST_F(CudaBackendTest, GetRowsMatchesCpuExactly) {
  std::mt19937 rng(2);
  const int64_t rows = 37, cols = 512;
  const std::vector<int32_t> ids = {0, 36, 5, 5, 17, 1};
  for (DType type : kAllTypes) {
    const std::vector<uint8_t> w = RandomWeight(type, rows, cols, rng);
    auto wg = Load(*gpu_, type, rows, cols, w.data());
    auto wc = Load(*cpu_, type, rows, cols, w.data());
    auto og = Poisoned(*gpu_, ids.size() * cols);
    auto oc = Poisoned(*cpu_, ids.size() * cols);
    gpu_->GetRows(*wg, ids, *og);
    cpu_->GetRows(*wc, ids, *oc);
    ExpectNear(Download(*gpu_, *og, ids.size() * cols), Download(*cpu_, *oc, ids.size() * cols),
               0.0, 0.0, absl::StrCat("GetRows ", std::string(DTypeName(type))));
  }
}

TEST_F(CudaBackendTest, GatherRowsMatchesCpuExactly) {
  std::mt19937 rng(12);
  const int64_t dim = 4096 + 3;
  const std::vector<float> x = RandomFloats(7 * dim, rng);
  const std::vector<int32_t> rows = {6, 0, 2, 2, 5};
  auto xg = Upload(*gpu_, x), xc = Upload(*cpu_, x);
  auto og = Poisoned(*gpu_, rows.size() * dim), oc = Poisoned(*cpu_, rows.size() * dim);
  gpu_->GatherRows(*xg, rows, dim, *og);
  cpu_->GatherRows(*xc, rows, dim, *oc);
  ExpectNear(Download(*gpu_, *og, rows.size() * dim), Download(*cpu_, *oc, rows.size() * dim), 0.0,
             0.0, "GatherRows");
}

// A small decode-like step (embedding lookup, norm, RoPE, quantized matvec, SwiGLU, gather) on
// its own weights and buffers, for the recorded-step tests.
struct StepRig {
  static constexpr int64_t kVocab = 300, kDim = 256, kRows = 384, kN = 3;
  std::vector<uint8_t> table, wq;
  std::vector<float> norm;
  std::unique_ptr<Weight> t, w, nw;
  std::unique_ptr<Buffer> x, h, y, last;

  StepRig(Backend& b, uint32_t seed) {
    std::mt19937 rng(seed);
    table = RandomWeight(DType::kBF16, kVocab, kDim, rng);
    wq = RandomWeight(DType::kQ8_0, kRows, kDim, rng);
    norm = RandomFloats(kDim, rng, 0.5f, 1.5f);
    t = std::move(*b.LoadWeight({DType::kBF16, kVocab, kDim, table.data()}));
    w = std::move(*b.LoadWeight({DType::kQ8_0, kRows, kDim, wq.data()}));
    nw = std::move(*b.LoadWeight({DType::kF32, 1, kDim, norm.data()}));
    x = b.Alloc(kN * kDim);
    h = b.Alloc(kN * kDim);
    y = b.Alloc(kN * kRows);
    last = b.Alloc(2 * kRows);
  }
  // One step (token ids and positions change with `step`, as in decoding); its output.
  std::vector<float> Run(Backend& b, int step) {
    const std::vector<int32_t> ids = {step % 300, (step * 7 + 1) % 300, (step * 13 + 2) % 300};
    const std::vector<int32_t> pos = {step, step + 5, 2 * step};
    const std::vector<int32_t> want = {2, step % 3};
    RopeParams rope;
    {
      StepScope scope(b);
      for (int layer = 0; layer < 4; ++layer) {  // enough ops for a graph
        b.GetRows(*t, ids, *x);
        b.RmsNorm(*x, kN, kDim, *nw, 1e-5f, *h);
        b.Rope(*h, pos, 4, 64, rope);
        b.MatMul(*w, *h, kN, *y);
        b.SiluMul(*y, *y, kN * kRows);
      }
      b.GatherRows(*y, want, kRows, *last);
    }
    std::vector<float> out(2 * kRows);
    b.CopyToHost(*last, 0, out.size(), out.data());
    return out;
  }
};

// Ops between BeginStep and EndStep are recorded, then run (op by op the first time, as a
// captured graph the second, replayed after); every run must equal the same ops run one by one,
// with the metadata (token ids, positions) changing between runs as in decoding.
TEST_F(CudaBackendTest, RecordedStepsEqualOpByOpRuns) {
  StepRig rig(*gpu_, 13);
  std::vector<std::vector<float>> eager, graphed;
  cuda::SetCudaGraphs(*gpu_, false);
  for (int step = 0; step < 6; ++step) eager.push_back(rig.Run(*gpu_, step));
  cuda::SetCudaGraphs(*gpu_, true);
  for (int step = 0; step < 6; ++step) graphed.push_back(rig.Run(*gpu_, step));
  for (int step = 0; step < 6; ++step) {
    ExpectNear(graphed[step], eager[step], 0.0, 0.0, absl::StrCat("step ", step));
  }
  const cuda::CudaGraphStats stats = cuda::GetCudaGraphStats(*gpu_);
  EXPECT_TRUE(stats.enabled) << stats.disabled_reason;
  EXPECT_EQ(stats.graphs_captured, 1);
  EXPECT_EQ(stats.steps_replayed, 5);  // steps 1..5: captured once, replayed after
}

// Two threads recording steps on one backend at once (one step is open at a time; the other
// waits), and a third issuing ops outside any step meanwhile: every result equals the same work
// done op by op on one thread.
TEST_F(CudaBackendTest, StepsFromSeveralThreadsEqualOpByOpRuns) {
  constexpr int kSteps = 20;
  StepRig a(*gpu_, 21), b(*gpu_, 22);
  std::mt19937 rng(23);
  const std::vector<float> xs = RandomFloats(5 * 64, rng);
  auto src = Upload(*gpu_, xs);
  auto dst = gpu_->Alloc(2 * 64);
  const std::vector<int32_t> rows = {4, 1};
  cuda::SetCudaGraphs(*gpu_, false);
  std::vector<std::vector<float>> want_a, want_b;
  for (int step = 0; step < kSteps; ++step) {
    want_a.push_back(a.Run(*gpu_, step));
    want_b.push_back(b.Run(*gpu_, step + 100));
  }
  cuda::SetCudaGraphs(*gpu_, true);
  std::vector<std::vector<float>> got_a, got_b;
  std::atomic<bool> done{false};
  std::atomic<int> side_ok{0}, side_bad{0};
  std::thread ta([&] {
    for (int step = 0; step < kSteps; ++step) got_a.push_back(a.Run(*gpu_, step));
  });
  std::thread tb([&] {
    for (int step = 0; step < kSteps; ++step) got_b.push_back(b.Run(*gpu_, step + 100));
  });
  std::thread side([&] {
    std::vector<float> out(2 * 64);
    do {
      gpu_->GatherRows(*src, rows, 64, *dst);
      gpu_->CopyToHost(*dst, 0, out.size(), out.data());
      const bool same = std::equal(out.begin(), out.begin() + 64, xs.begin() + 4 * 64) &&
                        std::equal(out.begin() + 64, out.end(), xs.begin() + 64);
      (same ? side_ok : side_bad)++;
    } while (!done.load());
  });
  ta.join();
  tb.join();
  done = true;
  side.join();
  ASSERT_EQ(got_a.size(), static_cast<size_t>(kSteps));
  ASSERT_EQ(got_b.size(), static_cast<size_t>(kSteps));
  for (int step = 0; step < kSteps; ++step) {
    ExpectNear(got_a[step], want_a[step], 0.0, 0.0, absl::StrCat("thread a, step ", step));
    ExpectNear(got_b[step], want_b[step], 0.0, 0.0, absl::StrCat("thread b, step ", step));
  }
  EXPECT_EQ(side_bad.load(), 0);
  EXPECT_GT(side_ok.load(), 0);
  const cuda::CudaGraphStats stats = cuda::GetCudaGraphStats(*gpu_);
  EXPECT_TRUE(stats.enabled) << stats.disabled_reason;
}

// TopK on the device against the CPU backend (ExpectTopKMatchesCpu) over vocabularies of 50 to
// 151936, with ties, NaN, infinity and penalties.
TEST_F(CudaBackendTest, TopKMatchesCpu) {
  std::mt19937 rng(14);
  for (int64_t cols : {int64_t{50}, int64_t{32000}, int64_t{151936}}) {
    const int64_t rows = 5;
    std::vector<float> x = RandomFloats(rows * cols, rng, -8.0f, 8.0f);
    for (int64_t i = 0; i < rows * cols; i += 97) x[i] = std::round(x[i]);  // ties
    x[3] = kNaN;
    x[cols + 7] = std::numeric_limits<float>::infinity();
    const std::vector<float> temp = {0.7f, 0.0f, 1.0f, 1.3f, 0.2f};
    const std::vector<float> penalty = {1.0f, 1.3f, 0.8f, 1.0f, 2.0f};
    std::vector<int32_t> pen_ids, starts = {0};
    for (int64_t r = 0; r < rows; ++r) {
      for (int i = 0; i < 40; ++i) pen_ids.push_back((r * 1000 + i * 31) % (cols + 10));
      std::sort(pen_ids.begin() + starts.back(), pen_ids.end());
      pen_ids.erase(std::unique(pen_ids.begin() + starts.back(), pen_ids.end()), pen_ids.end());
      starts.push_back(static_cast<int32_t>(pen_ids.size()));
    }
    for (int k : {1, 7, kMaxTopK}) {
      ExpectTopKMatchesCpu(x, rows, cols, k, temp, penalty, pen_ids, starts,
                           absl::StrCat("cols ", cols, " k ", k));
    }
  }
}

// The radix select's corners: +0 and -0 tie (the order falls back to ids), a row with fewer
// finite logits than k, a row of one repeated value (every logit ties), a row with none finite.
TEST_F(CudaBackendTest, TopKTiesZerosAndShortRowsMatchCpu) {
  const int64_t rows = 4, cols = 300;
  std::vector<float> x(rows * cols, -1.0f);
  int sign = 0;
  for (int64_t c : {5, 17, 40, 200, 250, 299}) x[c] = (sign++ % 2 == 0) ? 0.0f : -0.0f;
  for (int64_t c = 0; c < cols; ++c) x[cols + c] = -std::numeric_limits<float>::infinity();
  x[cols + 9] = 2.5f;
  x[cols + 100] = -3.0f;
  for (int64_t c = 0; c < cols; ++c) x[2 * cols + c] = 0.25f;
  for (int64_t c = 0; c < cols; ++c) x[3 * cols + c] = kNaN;
  const std::vector<float> temp = {1.0f, 0.5f, 1.0f, 1.0f}, penalty = {1.0f, 1.0f, 1.0f, 1.0f};
  const std::vector<int32_t> pen_ids, starts = {0, 0, 0, 0, 0};
  for (int k : {1, 3, 7, kMaxTopK}) {
    ExpectTopKMatchesCpu(x, rows, cols, k, temp, penalty, pen_ids, starts, absl::StrCat("k ", k));
  }
}

TEST_F(CudaBackendTest, MatMulMatchesCpuForEveryTypeAndBatchSize) {
  std::mt19937 rng(3);
  const int64_t rows = 200, cols = 512;
  for (DType type : kAllTypes) {
    const double rel = type == DType::kF32    ? 1e-5
                       : type == DType::kF16  ? 2e-3
                       : type == DType::kBF16 ? 8e-3
                                              : 1e-2;
    const std::vector<uint8_t> w = RandomWeight(type, rows, cols, rng);
    const std::vector<float> wf = Dequantized(type, w, rows, cols);
    auto wg = Load(*gpu_, type, rows, cols, w.data());
    auto wc = Load(*cpu_, type, rows, cols, w.data());
    const std::vector<float> bias = RandomFloats(rows, rng);
    auto bg = LoadF32(*gpu_, bias);
    auto bc = LoadF32(*cpu_, bias);
    for (int64_t n : {1, 2, 3, 4, 5, 8, 9, 33, 100}) {
      for (bool with_bias : {false, true}) {
        const std::vector<float> x = RandomFloats(n * cols, rng);
        const std::vector<double> scale = AbsDotScale(x, wf, n, rows, cols);
        auto xg = Upload(*gpu_, x);
        auto xc = Upload(*cpu_, x);
        auto yg = Poisoned(*gpu_, n * rows);
        auto yc = Poisoned(*cpu_, n * rows);
        gpu_->MatMul(*wg, *xg, n, *yg, with_bias ? bg.get() : nullptr);
        cpu_->MatMul(*wc, *xc, n, *yc, with_bias ? bc.get() : nullptr);
        ExpectNear(Download(*gpu_, *yg, n * rows), Download(*cpu_, *yc, n * rows), 1e-5, rel,
                   absl::StrCat("MatMul ", std::string(DTypeName(type)), " n=", n, with_bias ? " +bias" : ""),
                   scale);
      }
    }
  }
}

// The decode matvec shares a row among 1, 2 or 4 warps depending on the row count (relative to
// 64 warps per multiprocessor: 4 below 4224 rows on a 132-multiprocessor H100/H200, 2 below 8448):
// each arrangement (and a last block only partly used) against the CPU.
TEST_F(CudaBackendTest, MatVecMatchesCpuForEveryRowSplit) {
  std::mt19937 rng(17);
  const int64_t cols = 256;
  for (int64_t rows : {int64_t{1027}, int64_t{2050}, int64_t{5001}, int64_t{9003}, int64_t{20001}}) {
    for (DType type : {DType::kBF16, DType::kQ8_0}) {
      const double rel = type == DType::kBF16 ? 8e-3 : 1e-2;
      const std::vector<uint8_t> w = RandomWeight(type, rows, cols, rng);
      const std::vector<float> wf = Dequantized(type, w, rows, cols);
      auto wg = Load(*gpu_, type, rows, cols, w.data());
      auto wc = Load(*cpu_, type, rows, cols, w.data());
      for (int64_t n : {1, 2, 5}) {
        const std::vector<float> x = RandomFloats(n * cols, rng);
        const std::vector<double> scale = AbsDotScale(x, wf, n, rows, cols);
        auto xg = Upload(*gpu_, x), xc = Upload(*cpu_, x);
        auto yg = Poisoned(*gpu_, n * rows), yc = Poisoned(*cpu_, n * rows);
        gpu_->MatMul(*wg, *xg, n, *yg);
        cpu_->MatMul(*wc, *xc, n, *yc);
        ExpectNear(Download(*gpu_, *yg, n * rows), Download(*cpu_, *yc, n * rows), 1e-5, rel,
                   absl::StrCat("MatVec ", std::string(DTypeName(type)), " rows=", rows, " n=", n),
                   scale);
      }
    }
  }
}

// Several projections of one input (q/k/v, gate/up): one launch on the device for matvec sizes,
// one MatMul each otherwise; every output against the CPU.
TEST_F(CudaBackendTest, MatMulsMatchCpu) {
  std::mt19937 rng(18);
  const int64_t cols = 256;
  // q/k/v-like parts sharing each row among four warps (577 rows in all), two (6144 on an
  // H100/H200) and one (24576), and gate/up-like pairs.
  for (const std::vector<int64_t>& rows :
       {std::vector<int64_t>{384, 96, 97}, std::vector<int64_t>{4096, 1024, 1024},
        std::vector<int64_t>{16384, 4096, 4096}, std::vector<int64_t>{700, 700}}) {
    for (DType type : {DType::kBF16, DType::kQ8_0, DType::kF32}) {
      const double rel = type == DType::kF32 ? 1e-5 : type == DType::kBF16 ? 8e-3 : 1e-2;
      std::vector<std::vector<uint8_t>> data;
      std::vector<std::unique_ptr<Weight>> wg, wc;
      for (int64_t r : rows) {
        data.push_back(RandomWeight(type, r, cols, rng));
        wg.push_back(Load(*gpu_, type, r, cols, data.back().data()));
        wc.push_back(Load(*cpu_, type, r, cols, data.back().data()));
      }
      for (int64_t n : {1, 2, 5}) {
        const std::vector<float> x = RandomFloats(n * cols, rng);
        auto xg = Upload(*gpu_, x), xc = Upload(*cpu_, x);
        std::vector<std::unique_ptr<Buffer>> yg, yc;
        std::vector<const Weight*> pg, pc;
        std::vector<Buffer*> og, oc;
        for (size_t j = 0; j < rows.size(); ++j) {
          yg.push_back(Poisoned(*gpu_, n * rows[j]));
          yc.push_back(Poisoned(*cpu_, n * rows[j]));
          pg.push_back(wg[j].get());
          pc.push_back(wc[j].get());
          og.push_back(yg[j].get());
          oc.push_back(yc[j].get());
        }
        gpu_->MatMuls(pg, *xg, n, og);
        cpu_->MatMuls(pc, *xc, n, oc);
        for (size_t j = 0; j < rows.size(); ++j) {
          const std::vector<float> wf = Dequantized(type, data[j], rows[j], cols);
          const std::vector<double> scale = AbsDotScale(x, wf, n, rows[j], cols);
          ExpectNear(Download(*gpu_, *yg[j], n * rows[j]), Download(*cpu_, *yc[j], n * rows[j]),
                     1e-5, rel,
                     absl::StrCat("MatMuls ", std::string(DTypeName(type)), " n=", n, " part ", j,
                                  " of ", rows.size()),
                     scale);
        }
      }
    }
  }
}

// Weights of `type` on the GPU with their bytes (kept for the test's lifetime).
struct GpuWeights {
  std::vector<std::vector<uint8_t>> data;
  std::vector<std::unique_ptr<Weight>> w;
};

// The shared-memory pipelined matvec (SetCudaMatVecAsync) against the default kernel: the same
// bits for MatMul and MatMuls, F16 and BF16, one and two rows, rows shared by 4, 2 and 1 warps,
// rows whose units end mid-stage (cols 264, 4104) or give some warps nothing (cols 8), on a
// resident grid and with one block per row group.
TEST_F(CudaBackendTest, AsyncMatVecEqualsDefault) {
  std::mt19937 rng(23);
  const std::vector<std::pair<int64_t, int64_t>> shapes = {
      {1027, 256}, {5001, 264}, {9003, 4104}, {300, 8}};
  for (DType type : {DType::kBF16, DType::kF16}) {
    for (const auto& [rows, cols] : shapes) {
      const std::vector<int64_t> part_rows = {rows, rows / 4 + 1, rows / 4};
      GpuWeights g;
      for (int64_t r : part_rows) {
        g.data.push_back(RandomWeight(type, r, cols, rng));
        g.w.push_back(Load(*gpu_, type, r, cols, g.data.back().data()));
      }
      for (int64_t n : {1, 2}) {
        const std::vector<float> x = RandomFloats(n * cols, rng);
        auto xg = Upload(*gpu_, x);
        for (bool persistent : {true, false}) {
          cuda::SetCudaMatVecPersistent(*gpu_, persistent);
          // [async][part]: MatMul of part 0, then MatMuls of all three parts.
          std::vector<std::vector<float>> out[2];
          for (int async = 0; async < 2; ++async) {
            cuda::SetCudaMatVecAsync(*gpu_, async == 1);
            auto y = Poisoned(*gpu_, n * rows);
            gpu_->MatMul(*g.w[0], *xg, n, *y);
            out[async].push_back(Download(*gpu_, *y, n * rows));
            std::vector<std::unique_ptr<Buffer>> ys;
            std::vector<Buffer*> yp;
            std::vector<const Weight*> wp;
            for (size_t j = 0; j < part_rows.size(); ++j) {
              ys.push_back(Poisoned(*gpu_, n * part_rows[j]));
              yp.push_back(ys.back().get());
              wp.push_back(g.w[j].get());
            }
            gpu_->MatMuls(wp, *xg, n, yp);
            for (size_t j = 0; j < part_rows.size(); ++j) {
              out[async].push_back(Download(*gpu_, *ys[j], n * part_rows[j]));
            }
          }
          cuda::SetCudaMatVecAsync(*gpu_, false);
          const std::string what = absl::StrCat(std::string(DTypeName(type)), " ", rows, "x", cols,
                                                " n=", n, persistent ? "" : " one block per group");
          for (size_t j = 0; j < out[0].size(); ++j) {
            ASSERT_EQ(out[0][j].size(), out[1][j].size());
            EXPECT_EQ(0, std::memcmp(out[0][j].data(), out[1][j].data(),
                                     out[0][j].size() * sizeof(float)))
                << what << (j == 0 ? " MatMul" : " MatMuls part ") << (j == 0 ? 0 : j - 1);
            ExpectAllFinite(out[1][j], what + " output " + std::to_string(j));
          }
        }
        cuda::SetCudaMatVecPersistent(*gpu_, true);
      }
    }
  }
}

// MatMulSwiGlu fused into one matvec launch (SetCudaFusedSwiGlu) against MatMuls then SiluMul:
// the same bits for gate/up pairs whose rows are shared by 4, 2 and 1 warps on an H100/H200, for
// F32, F16, BF16 (also through the pipelined kernel) and Q8_0 (up to 5 rows), and the unfused
// path's values against the CPU's.
TEST_F(CudaBackendTest, FusedSwiGluEqualsMatMulsThenSiluMul) {
  std::mt19937 rng(24);
  const int64_t cols = 256;
  for (int64_t rows : {int64_t{1000}, int64_t{3000}, int64_t{5003}}) {
    for (DType type : {DType::kBF16, DType::kF16, DType::kQ8_0, DType::kF32}) {
      const std::vector<uint8_t> gate = RandomWeight(type, rows, cols, rng);
      const std::vector<uint8_t> up = RandomWeight(type, rows, cols, rng);
      auto gg = Load(*gpu_, type, rows, cols, gate.data());
      auto ug = Load(*gpu_, type, rows, cols, up.data());
      auto gc = Load(*cpu_, type, rows, cols, gate.data());
      auto uc = Load(*cpu_, type, rows, cols, up.data());
      const bool half = type == DType::kBF16 || type == DType::kF16;
      for (int64_t n : {1, 2, 5}) {
        const std::vector<float> x = RandomFloats(n * cols, rng);
        auto xg = Upload(*gpu_, x), xc = Upload(*cpu_, x);
        // fused: 0 off, 1 on, 2 on with the pipelined matvec (16-bit weights).
        std::vector<std::vector<float>> out;
        for (int fused = 0; fused < (half ? 3 : 2); ++fused) {
          cuda::SetCudaFusedSwiGlu(*gpu_, fused > 0);
          cuda::SetCudaMatVecAsync(*gpu_, fused == 2);
          auto yg = Poisoned(*gpu_, n * rows), scratch = Poisoned(*gpu_, n * rows);
          gpu_->MatMulSwiGlu(*gg, *ug, *xg, n, *yg, *scratch);
          out.push_back(Download(*gpu_, *yg, n * rows));
        }
        cuda::SetCudaFusedSwiGlu(*gpu_, false);
        cuda::SetCudaMatVecAsync(*gpu_, false);
        const std::string what =
            absl::StrCat("SwiGLU ", std::string(DTypeName(type)), " rows=", rows, " n=", n);
        for (size_t f = 1; f < out.size(); ++f) {
          EXPECT_EQ(0, std::memcmp(out[0].data(), out[f].data(), out[0].size() * sizeof(float)))
              << what << (f == 1 ? " fused" : " fused, pipelined matvec");
        }
        // Against the CPU: silu(g) * u with g and u each within the MatMul tolerance (a loose
        // bound: |silu'| <= 1.1, values of order 10).
        auto yc = Poisoned(*cpu_, n * rows), sc = Poisoned(*cpu_, n * rows);
        cpu_->MatMulSwiGlu(*gc, *uc, *xc, n, *yc, *sc);
        const double rel = type == DType::kF32 ? 1e-5 : type == DType::kQ8_0 ? 1e-2 : 8e-3;
        const std::vector<float> gf = Dequantized(type, gate, rows, cols),
                                 uf = Dequantized(type, up, rows, cols);
        const std::vector<double> gs = AbsDotScale(x, gf, n, rows, cols),
                                  us = AbsDotScale(x, uf, n, rows, cols);
        std::vector<double> scale(gs.size());
        for (size_t i = 0; i < scale.size(); ++i) scale[i] = 2.2 * (gs[i] + 1) * (us[i] + 1);
        ExpectNear(out[0], Download(*cpu_, *yc, n * rows), 1e-5, rel, what + " vs cpu", scale);
      }
    }
  }
}

// The fused residual add and norm: the same bits as Add then RmsNorm on the device, and the CPU's
// values within the norms' tolerance.
TEST_F(CudaBackendTest, AddRmsNormEqualsAddThenRmsNorm) {
  std::mt19937 rng(19);
  // float4 rows (64, 4096, 5000) and scalar ones (4099).
  for (int64_t dim : {int64_t{64}, int64_t{4096}, int64_t{4099}, int64_t{5000}}) {
    const int64_t n = 3;
    const std::vector<float> x = RandomFloats(n * dim, rng, -3, 3), o = RandomFloats(n * dim, rng);
    const std::vector<float> w = RandomFloats(dim, rng, 0.5f, 1.5f);
    auto wg = LoadF32(*gpu_, w), wc = LoadF32(*cpu_, w);
    auto og = Upload(*gpu_, o), oc = Upload(*cpu_, o);
    auto x1 = Upload(*gpu_, x), x2 = Upload(*gpu_, x), xc = Upload(*cpu_, x);
    auto h1 = Poisoned(*gpu_, n * dim), h2 = Poisoned(*gpu_, n * dim), hc = Poisoned(*cpu_, n * dim);
    gpu_->AddRmsNorm(*og, n, dim, *x1, *wg, 1e-5f, *h1);
    gpu_->Add(*og, n * dim, *x2);
    gpu_->RmsNorm(*x2, n, dim, *wg, 1e-5f, *h2);
    cpu_->AddRmsNorm(*oc, n, dim, *xc, *wc, 1e-5f, *hc);
    const std::string what = absl::StrCat("AddRmsNorm dim=", dim);
    ExpectNear(Download(*gpu_, *x1, n * dim), Download(*gpu_, *x2, n * dim), 0.0, 0.0, what + " x");
    ExpectNear(Download(*gpu_, *h1, n * dim), Download(*gpu_, *h2, n * dim), 0.0, 0.0, what + " out");
    ExpectNear(Download(*gpu_, *h1, n * dim), Download(*cpu_, *hc, n * dim), 1e-5, 1e-5,
               what + " vs cpu");
  }
}

TEST_F(CudaBackendTest, ElementwiseOpsMatchCpu) {
  std::mt19937 rng(4);
  for (int64_t n : {1, 1000, 300001}) {
    const std::vector<float> a = RandomFloats(n, rng, -6, 6), b = RandomFloats(n, rng, -6, 6);
    {
      auto yg = Upload(*gpu_, a), yc = Upload(*cpu_, a);
      auto xg = Upload(*gpu_, b), xc = Upload(*cpu_, b);
      gpu_->Add(*xg, n, *yg);
      cpu_->Add(*xc, n, *yc);
      ExpectNear(Download(*gpu_, *yg, n), Download(*cpu_, *yc, n), 1e-6, 2e-6, "Add");
      gpu_->SiluMul(*yg, *xg, n);
      cpu_->SiluMul(*yc, *xc, n);
      ExpectNear(Download(*gpu_, *yg, n), Download(*cpu_, *yc, n), 1e-6, 2e-6, "SiluMul");
      gpu_->Gelu(*xg, n);
      cpu_->Gelu(*xc, n);
      ExpectNear(Download(*gpu_, *xg, n), Download(*cpu_, *xc, n), 1e-6, 2e-6, "Gelu");
    }
  }
  const int64_t rows = 7, cols = 384;
  const std::vector<float> y = RandomFloats(rows * cols, rng);
  for (DType type : {DType::kF32, DType::kF16}) {
    std::vector<float> rowv = RandomFloats(cols, rng);
    std::vector<uint8_t> bytes(*RowBytes(type, cols));
    QuantizeRow(type, rowv.data(), bytes.data(), cols);
    auto rg = Load(*gpu_, type, 1, cols, bytes.data());
    auto rc = Load(*cpu_, type, 1, cols, bytes.data());
    auto yg = Upload(*gpu_, y), yc = Upload(*cpu_, y);
    gpu_->AddRow(*rg, rows, *yg);
    cpu_->AddRow(*rc, rows, *yc);
    ExpectNear(Download(*gpu_, *yg, rows * cols), Download(*cpu_, *yc, rows * cols), 1e-6, 2e-6,
               absl::StrCat("AddRow ", std::string(DTypeName(type))));
  }
}

TEST_F(CudaBackendTest, NormsMatchCpu) {
  std::mt19937 rng(5);
  for (int64_t dim : {64, 384, 4096, 4099, 6144}) {
    const int64_t n = 9;
    const std::vector<float> x = RandomFloats(n * dim, rng, -3, 3);
    const std::vector<float> w = RandomFloats(dim, rng), b = RandomFloats(dim, rng);
    auto wg = LoadF32(*gpu_, w), wc = LoadF32(*cpu_, w);
    auto bg = LoadF32(*gpu_, b), bc = LoadF32(*cpu_, b);
    auto xg = Upload(*gpu_, x), xc = Upload(*cpu_, x);
    auto og = Poisoned(*gpu_, n * dim), oc = Poisoned(*cpu_, n * dim);
    gpu_->RmsNorm(*xg, n, dim, *wg, 1e-5f, *og);
    cpu_->RmsNorm(*xc, n, dim, *wc, 1e-5f, *oc);
    ExpectNear(Download(*gpu_, *og, n * dim), Download(*cpu_, *oc, n * dim), 1e-5, 1e-5,
               absl::StrCat("RmsNorm dim=", dim));
    og = Poisoned(*gpu_, n * dim);
    oc = Poisoned(*cpu_, n * dim);
    gpu_->LayerNorm(*xg, n, dim, *wg, *bg, 1e-12f, *og);
    cpu_->LayerNorm(*xc, n, dim, *wc, *bc, 1e-12f, *oc);
    ExpectNear(Download(*gpu_, *og, n * dim), Download(*cpu_, *oc, n * dim), 1e-5, 1e-5,
               absl::StrCat("LayerNorm dim=", dim));
    // In place (out aliases x).
    gpu_->RmsNorm(*xg, n, dim, *wg, 1e-5f, *xg);
    cpu_->RmsNorm(*xc, n, dim, *wc, 1e-5f, *xc);
    ExpectNear(Download(*gpu_, *xg, n * dim), Download(*cpu_, *xc, n * dim), 1e-5, 1e-5,
               absl::StrCat("RmsNorm in place dim=", dim));
  }
}

TEST_F(CudaBackendTest, RopeMatchesCpu) {
  std::mt19937 rng(6);
  const std::vector<int32_t> positions = {0, 1, 7, 513, 4095, 100000};
  const int64_t t = positions.size();
  for (RopeStyle style : {RopeStyle::kNormal, RopeStyle::kNeox}) {
    for (int head_dim : {64, 128}) {
      for (int rotary_dim : {0, 32}) {
        const int heads = 5;
        RopeParams p;
        p.style = style;
        p.rotary_dim = rotary_dim;
        p.theta = rotary_dim == 0 ? 10000.0f : 1000000.0f;
        p.freq_scale = rotary_dim == 0 ? 1.0f : 0.25f;
        const std::vector<float> x = RandomFloats(t * heads * head_dim, rng);
        auto xg = Upload(*gpu_, x), xc = Upload(*cpu_, x);
        gpu_->Rope(*xg, positions, heads, head_dim, p);
        cpu_->Rope(*xc, positions, heads, head_dim, p);
        ExpectNear(Download(*gpu_, *xg, x.size()), Download(*cpu_, *xc, x.size()), 1e-5, 0.0,
                   absl::StrCat("Rope ", style == RopeStyle::kNeox ? "neox" : "normal",
                                " head_dim=", head_dim, " rotary_dim=", rotary_dim));
      }
    }
  }
}

// RopeWriteKv fused into one kernel (SetCudaFusedRopeKv) against the three ops it replaces, on the
// device: the rotated q and k and the cache contents (read back through attention over every
// written key) identical bit for bit; and the separate ops against the CPU backend's.
TEST_F(CudaBackendTest, FusedRopeWriteKvEqualsSeparateOps) {
  std::mt19937 rng(21);
  const std::vector<int32_t> positions = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 4095};
  const int64_t t = positions.size();
  std::vector<int32_t> slots(t);  // positions 0..10 of a sequence whose first block is block 2
  for (int64_t i = 0; i < t; ++i) slots[i] = static_cast<int32_t>(32 + i);
  for (RopeStyle style : {RopeStyle::kNormal, RopeStyle::kNeox}) {
    for (int rotary_dim : {0, 32}) {
      const int heads = 9, kv_heads = 3, head_dim = 64;  // 9 and 3: partly filled head groups
      RopeParams p;
      p.style = style;
      p.rotary_dim = rotary_dim;
      KvCacheShape shape;
      shape.num_layers = 2;
      shape.num_blocks = 4;
      shape.block_size = 16;
      shape.num_kv_heads = kv_heads;
      shape.head_dim = head_dim;
      const std::vector<float> q = RandomFloats(t * heads * head_dim, rng);
      const std::vector<float> k = RandomFloats(t * kv_heads * head_dim, rng);
      const std::vector<float> v = RandomFloats(t * kv_heads * head_dim, rng);
      const std::string what = absl::StrCat(style == RopeStyle::kNeox ? "neox" : "normal",
                                            " rotary_dim=", rotary_dim);
      // Runs RopeWriteKv on `b` (fused or not) into layer 1 of a fresh cache; returns the rotated
      // q, k and an attention readout of the cache.
      auto run = [&](Backend& b, bool fused) {
        cuda::SetCudaFusedRopeKv(b, fused);
        auto cache = b.AllocKvCache(shape);
        EXPECT_TRUE(cache.ok());
        auto qb = Upload(b, q), kb = Upload(b, k), vb = Upload(b, v);
        b.RopeWriteKv(*qb, *kb, *vb, positions, heads, kv_heads, head_dim, p, **cache, 1, slots);
        // Attention of one query at position 10 reads every key written (slots 32..42).
        const std::vector<int32_t> seq = {0}, pos = {10};
        const std::vector<std::vector<int32_t>> tables = {{2}};
        const std::vector<float> probe = RandomFloats(heads * head_dim, rng);
        auto pb = Upload(b, probe);
        auto out = Poisoned(b, heads * head_dim);
        b.PagedAttention(**cache, 1, *pb, AttentionBatch(seq, pos, tables, 0), heads, 0.125f,
                         *out);
        return std::vector<std::vector<float>>{Download(b, *qb, q.size()),
                                               Download(b, *kb, k.size()),
                                               Download(b, *out, heads * head_dim)};
      };
      // The attention probes draw from rng: give each run the same draws.
      const std::mt19937 saved = rng;
      const auto separate = run(*gpu_, false);
      rng = saved;
      const auto fused = run(*gpu_, true);
      rng = saved;
      const auto cpu = run(*cpu_, false);
      cuda::SetCudaFusedRopeKv(*gpu_, false);
      for (int j = 0; j < 3; ++j) {
        ASSERT_EQ(separate[j].size(), fused[j].size());
        EXPECT_EQ(0, std::memcmp(separate[j].data(), fused[j].data(),
                                 separate[j].size() * sizeof(float)))
            << what << (j == 0 ? " q" : j == 1 ? " k" : " attention over the cache");
        ExpectNear(separate[j], cpu[j], j < 2 ? 1e-5 : 2.2e-4, 0.0,
                   absl::StrCat(what, " output ", j, " against the CPU"));
      }
    }
  }
}

// Writes every position of three sequences into both caches (random block tables), then runs
// attention for a few decode tokens (one block per token and head) and for a batch with prefill
// chunks (query tiles sharing key loads), with and without a sliding window, for several head
// sizes and query-per-kv-head groups.
TEST_F(CudaBackendTest, WriteKvAndPagedAttentionMatchCpu) {
  std::mt19937 rng(7);
  for (int head_dim : {8, 64, 80, 128, 256}) {
    KvCacheShape shape;
    shape.num_layers = 2;
    shape.num_blocks = 90;
    shape.block_size = 4;
    shape.num_kv_heads = 2;
    shape.head_dim = head_dim;
    const std::vector<int> lengths = {5, 17, 61, 250};
    std::vector<int32_t> blocks(shape.num_blocks);
    std::iota(blocks.begin(), blocks.end(), 0);
    std::shuffle(blocks.begin(), blocks.end(), rng);
    std::vector<std::vector<int32_t>> tables;
    size_t next = 0;
    for (int len : lengths) {
      const int nb = (len + shape.block_size - 1) / shape.block_size;
      tables.emplace_back(blocks.begin() + next, blocks.begin() + next + nb);
      next += nb;
    }
    const int layer = 1;
    TwinCaches caches = FillTwinCaches(shape, layer, lengths, tables, rng, -2, 2);
    ASSERT_TRUE(caches.gpu && caches.cpu);
    // Decode: the last position of sequences 0, 1 and 3 (250 keys: several rounds of the
    // grouped kernel's loads). Mixed: those, positions 40..60 of sequence 2 and 0..16 of
    // sequence 1 (prefill chunks, with tiles left partly empty).
    std::vector<int32_t> seq = {0, 1, 3}, pos = {lengths[0] - 1, lengths[1] - 1, lengths[3] - 1};
    for (int p = 40; p < lengths[2]; ++p) {
      seq.push_back(2);
      pos.push_back(p);
    }
    for (int p = 0; p < lengths[1]; ++p) {
      seq.push_back(1);
      pos.push_back(p);
    }
    for (int num_heads : {2, 4, 8, 16, 32}) {  // 1, 2, 4, 8 and 16 query heads per kv head
      const int64_t width = int64_t{num_heads} * head_dim;
      for (int64_t tokens : {int64_t{3}, static_cast<int64_t>(seq.size())}) {
        const std::vector<float> q = RandomFloats(tokens * width, rng, -2, 2);
        auto qg = Upload(*gpu_, q), qc = Upload(*cpu_, q);
        for (int window : {0, 7, 40}) {
          const PagedAttentionBatch batch = AttentionBatch(
              absl::MakeConstSpan(seq.data(), tokens), absl::MakeConstSpan(pos.data(), tokens),
              tables, window);
          const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
          auto og = Poisoned(*gpu_, tokens * width), oc = Poisoned(*cpu_, tokens * width);
          gpu_->PagedAttention(*caches.gpu, layer, *qg, batch, num_heads, scale, *og);
          cpu_->PagedAttention(*caches.cpu, layer, *qc, batch, num_heads, scale, *oc);
          ExpectNear(Download(*gpu_, *og, tokens * width), Download(*cpu_, *oc, tokens * width),
                     2e-5 + 2e-4, 0.0,
                     absl::StrCat("PagedAttention head_dim=", head_dim, " heads=", num_heads,
                                  " tokens=", tokens, " window=", window));
        }
      }
    }
  }
}

// Long prefill runs (64 tokens or more of one sequence) go through cuBLAS with F16 queries and
// probabilities: within 1e-3 of the CPU (inputs in [-1, 1]; the F16 roundings account for ~1e-4,
// a key masked wrongly for 2e-3 or more), 1e-4 on average, alongside decode tokens of other
// sequences in the same batch; and the tiled kernel (SetCudaGemmPrefill off) still within 2.2e-4
// on the same batch.
TEST_F(CudaBackendTest, LongPrefillRunsThroughCublasMatchCpu) {
  std::mt19937 rng(15);
  for (int head_dim : {64, 128}) {
    for (int num_heads : {8, 32}) {  // 1 and 4 query heads per kv head (8 kv heads)
      KvCacheShape shape;
      shape.num_layers = 1;
      shape.num_blocks = 48;
      shape.block_size = 16;
      shape.num_kv_heads = 8;
      shape.head_dim = head_dim;
      // Sequence 0: 300 positions; sequence 1: 40; block tables interleaved.
      const std::vector<int> lengths = {300, 40};
      std::vector<std::vector<int32_t>> tables(2);
      for (int b = 0; b < 19; ++b) tables[0].push_back(2 * b);
      for (int b = 0; b < 3; ++b) tables[1].push_back(2 * b + 1);
      TwinCaches caches = FillTwinCaches(shape, 0, lengths, tables, rng, -1, 1);
      ASSERT_TRUE(caches.gpu && caches.cpu);
      // A decode token of sequence 1, then positions 100..299 of sequence 0 (a 200-token chunk
      // continuing a prompt), then another decode token.
      std::vector<int32_t> seq = {1}, pos = {39};
      for (int p = 100; p < 300; ++p) {
        seq.push_back(0);
        pos.push_back(p);
      }
      seq.push_back(1);
      pos.push_back(38);
      const int64_t tokens = seq.size(), width = int64_t{num_heads} * head_dim;
      const std::vector<float> q = RandomFloats(tokens * width, rng);
      auto qg = Upload(*gpu_, q), qc = Upload(*cpu_, q);
      for (int window : {0, 50}) {
        const PagedAttentionBatch batch = AttentionBatch(seq, pos, tables, window);
        const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
        auto oc = Poisoned(*cpu_, tokens * width);
        cpu_->PagedAttention(*caches.cpu, 0, *qc, batch, num_heads, scale, *oc);
        const std::vector<float> want = Download(*cpu_, *oc, tokens * width);
        const std::string what = absl::StrCat("head_dim=", head_dim, " heads=", num_heads,
                                              " window=", window);
        for (bool gemm : {true, false}) {
          cuda::SetCudaGemmPrefill(*gpu_, gemm);
          auto og = Poisoned(*gpu_, tokens * width);
          gpu_->PagedAttention(*caches.gpu, 0, *qg, batch, num_heads, scale, *og);
          const std::vector<float> got = Download(*gpu_, *og, tokens * width);
          ExpectNear(got, want, gemm ? 1e-3 : 2.2e-4, 0.0,
                     absl::StrCat(what, gemm ? " (cuBLAS)" : " (tiled)"));
          double sum = 0;
          for (size_t i = 0; i < got.size(); ++i) sum += std::fabs(got[i] - want[i]);
          EXPECT_LT(sum / got.size(), 1e-4) << what;
        }
        cuda::SetCudaGemmPrefill(*gpu_, true);
      }
    }
  }
}

// Decode over a long context with few tokens: the grouped kernel splits each token's keys over
// several blocks and merges them; the result must match the CPU as the unsplit kernels do.
TEST_F(CudaBackendTest, LongContextDecodeSplitsMatchCpu) {
  std::mt19937 rng(16);
  for (int num_heads : {8, 32}) {
    const LongContext lc = FillLongContext(0, rng);
    const TwinCaches& caches = lc.caches;
    const auto& tables = lc.tables;
    ASSERT_TRUE(caches.gpu && caches.cpu);
    // The splits follow the longest context: the 10-key token leaves most of its splits empty.
    const std::vector<int32_t> seq = {0, 1, 1}, pos = {3999, 99, 9};
    const int64_t tokens = 3, width = int64_t{num_heads} * 128;
    const std::vector<float> q = RandomFloats(tokens * width, rng, -2, 2);
    auto qg = Upload(*gpu_, q), qc = Upload(*cpu_, q);
    for (int window : {0, 1000}) {
      const PagedAttentionBatch batch = AttentionBatch(seq, pos, tables, window);
      const float scale = 1.0f / std::sqrt(128.0f);
      auto og = Poisoned(*gpu_, tokens * width), oc = Poisoned(*cpu_, tokens * width);
      gpu_->PagedAttention(*caches.gpu, 0, *qg, batch, num_heads, scale, *og);
      cpu_->PagedAttention(*caches.cpu, 0, *qc, batch, num_heads, scale, *oc);
      ExpectNear(Download(*gpu_, *og, tokens * width), Download(*cpu_, *oc, tokens * width),
                 2.2e-4, 0.0, absl::StrCat("split decode heads=", num_heads, " window=", window));
    }
  }
}

// Decode splits merged by the last block of each (token, kv head) (SetCudaFusedSplitMerge)
// against the second merge kernel: the same bits, again on a second call (the counters reset
// themselves), and in recorded steps replayed as CUDA graphs.
TEST_F(CudaBackendTest, FusedSplitMergeEqualsMergeKernel) {
  std::mt19937 rng(25);
  const LongContext lc = FillLongContext(1, rng);
  const TwinCaches& caches = lc.caches;
  const auto& tables = lc.tables;
  ASSERT_TRUE(caches.gpu);
  for (int num_heads : {8, 32}) {
    // One token (the most splits) and three.
    for (const auto& [seq, pos] :
         {std::pair<std::vector<int32_t>, std::vector<int32_t>>{{0}, {3999}},
          {{0, 1, 1}, {3999, 99, 9}}}) {
      const int64_t tokens = seq.size(), width = int64_t{num_heads} * 128;
      const std::vector<float> q = RandomFloats(tokens * width, rng, -2, 2);
      auto qg = Upload(*gpu_, q);
      for (int window : {0, 1000}) {
        const PagedAttentionBatch batch = AttentionBatch(seq, pos, tables, window);
        const float scale = 1.0f / std::sqrt(128.0f);
        // One output buffer (a recorded step is replayed only with the same pointers), poisoned
        // before each call.
        auto out = gpu_->Alloc(tokens * width);
        const std::vector<float> poison(tokens * width, kNaN);
        auto attend = [&](bool fused, bool step) {
          cuda::SetCudaFusedSplitMerge(*gpu_, fused);
          gpu_->CopyFromHost(poison.data(), poison.size(), *out);
          if (step) {
            StepScope scope(*gpu_);
            gpu_->PagedAttention(*caches.gpu, 1, *qg, batch, num_heads, scale, *out);
          } else {
            gpu_->PagedAttention(*caches.gpu, 1, *qg, batch, num_heads, scale, *out);
          }
          return Download(*gpu_, *out, tokens * width);
        };
        const std::vector<float> want = attend(false, false);
        const std::string what =
            absl::StrCat("heads=", num_heads, " tokens=", tokens, " window=", window);
        ExpectAllFinite(want, what);
        for (int call = 0; call < 2; ++call) {
          const std::vector<float> got = attend(true, false);
          EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)))
              << what << " call " << call;
        }
        const int64_t replayed = cuda::GetCudaGraphStats(*gpu_).steps_replayed;
        for (int call = 0; call < 4; ++call) {  // seen, captured, replayed twice
          const std::vector<float> got = attend(true, true);
          EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)))
              << what << " recorded step " << call;
        }
        EXPECT_GE(cuda::GetCudaGraphStats(*gpu_).steps_replayed, replayed + 2) << what;
        cuda::SetCudaFusedSplitMerge(*gpu_, false);
      }
    }
  }
}

// Both kernels (one block per token and head; SetCudaTiledDenseAttention: 16 tokens per block,
// tiles straddling sequences, an empty sequence, a one-token one, a last tile of 13 tokens; head
// sizes 30 (scalar key loads) to 256).
TEST_F(CudaBackendTest, DenseAttentionMatchesCpu) {
  std::mt19937 rng(8);
  for (int head_dim : {30, 32, 64, 80, 256}) {
    const int heads = 4;
    const std::vector<int32_t> starts = {0, 1, 8, 28, 28, 157};
    const int64_t tokens = starts.back(), width = int64_t{heads} * head_dim;
    const std::vector<float> q = RandomFloats(tokens * width, rng, -2, 2);
    const std::vector<float> k = RandomFloats(tokens * width, rng, -2, 2);
    const std::vector<float> v = RandomFloats(tokens * width, rng, -2, 2);
    auto qg = Upload(*gpu_, q), kg = Upload(*gpu_, k), vg = Upload(*gpu_, v);
    auto qc = Upload(*cpu_, q), kc = Upload(*cpu_, k), vc = Upload(*cpu_, v);
    const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    auto oc = Poisoned(*cpu_, tokens * width);
    cpu_->DenseAttention(*qc, *kc, *vc, starts, heads, head_dim, scale, *oc);
    const std::vector<float> want = Download(*cpu_, *oc, tokens * width);
    for (bool tiled : {false, true}) {
      cuda::SetCudaTiledDenseAttention(*gpu_, tiled);
      auto og = Poisoned(*gpu_, tokens * width);
      gpu_->DenseAttention(*qg, *kg, *vg, starts, heads, head_dim, scale, *og);
      ExpectNear(Download(*gpu_, *og, tokens * width), want, 2e-5 + 2e-4, 0.0,
                 absl::StrCat("DenseAttention head_dim=", head_dim, tiled ? " tiled" : ""));
    }
    cuda::SetCudaTiledDenseAttention(*gpu_, false);
  }
}

TEST_F(CudaBackendTest, LoadWeightRejectsBadShapes) {
  float f = 0;
  EXPECT_EQ(gpu_->LoadWeight({DType::kF32, 0, 4, &f}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(gpu_->LoadWeight({DType::kQ8_0, 1, 31, &f}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(gpu_->LoadWeight({DType::kF32, 1, 4, nullptr}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(gpu_->AllocKvCache({}).status().code(), absl::StatusCode::kInvalidArgument);
}

// Needs no device: the factory must answer FAILED_PRECONDITION, never crash, without one.
TEST(CudaBackendNoGpuTest, FactoryFailsCleanlyWithoutADevice) {
  if (cuda::CudaDeviceCount() > 0) GTEST_SKIP() << "a device is present";
  auto b = cuda::CreateCudaBackend({});
  EXPECT_EQ(b.status().code(), absl::StatusCode::kFailedPrecondition) << b.status();
}

}  // namespace
}  // namespace tessera::engine
