// GPU benchmark of the CUDA backend (bench/gpu/run.sh runs it). Prints one table:
//   ceilings   device-to-device copy bandwidth; a large cuBLAS bf16 GEMM
//   decode     Mistral-7B shapes (bf16, 32 layers, GQA 32/8, random weights) through
//              engine/model/llama.cc's LlamaModel: batch-1 tokens/s without and with CUDA graphs
//              and its share of the bandwidth ceiling (bytes read per token / measured copy
//              bandwidth); aggregate tokens/s at 1..256 concurrent streams (each at context 256)
//              with sampling candidates computed on the device, as the scheduler runs, and 128
//              streams with the logits copied to the host instead
//   prefill    tokens/s for one 512-, 2048- and 8192-token prompt (attention through cuBLAS), and
//              2048 with the tiled attention kernel
//   embed      embeddings/s for bge-small and bge-base shapes (F16 weights, 64 x 128 tokens)
// The BERT forward pass calls the Backend ops in the order of engine/model/bert.cc. Without a
// device it prints why and exits with status 2.
//
//   gpu_bench [--quick] [--profile]
//     --quick: fewer streams and steps, for a smoke run
//     --profile: also the per-op time of a 2048-token prefill and a 128-stream decode step
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "bench/gpu/ceilings.h"
#include "engine/backend/backend.h"
#include "engine/backend/cuda/cuda_backend.h"
#include "engine/model/dtype.h"
#include "engine/model/llama.h"

namespace tessera::bench_gpu {
namespace {

using engine::Backend;
using engine::Buffer;
using engine::DType;
using engine::KvCache;
using engine::KvCacheShape;
using engine::PagedAttentionBatch;
using engine::Weight;
using engine::WeightData;

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "gpu_bench: %s\n", what.c_str());
  std::exit(1);
}

// A Backend that forwards every op to another and, when `enabled`, waits for the device after
// each one and adds its wall time to a per-op total (--profile: where a forward pass goes).
class TimingBackend final : public Backend {
 public:
  explicit TimingBackend(Backend& inner) : b_(inner), sync_(inner.Alloc(1)) {}
  bool enabled = false;
  std::vector<std::pair<std::string, double>> totals;
  // Host seconds from BeginStep to EndStep's return (recording a step's ops and launching them:
  // on the critical path at batch 1, where the next step waits for this one's token), and steps.
  double step_host = 0;
  int64_t step_count = 0;

  std::string name() const override { return b_.name(); }
  std::unique_ptr<Buffer> Alloc(int64_t n) override { return b_.Alloc(n); }
  absl::StatusOr<std::unique_ptr<Weight>> LoadWeight(const WeightData& w) override {
    return b_.LoadWeight(w);
  }
  absl::StatusOr<std::unique_ptr<KvCache>> AllocKvCache(const KvCacheShape& s) override {
    return b_.AllocKvCache(s);
  }
  void CopyFromHost(const float* src, int64_t n, Buffer& dst, int64_t off) override {
    Time("CopyFromHost", [&] { b_.CopyFromHost(src, n, dst, off); });
  }
  void CopyToHost(const Buffer& src, int64_t off, int64_t n, float* dst) override {
    Time("CopyToHost", [&] { b_.CopyToHost(src, off, n, dst); });
  }
  void GetRows(const Weight& t, absl::Span<const int32_t> ids, Buffer& out) override {
    Time("GetRows", [&] { b_.GetRows(t, ids, out); });
  }
  void GatherRows(const Buffer& x, absl::Span<const int32_t> rows, int64_t dim,
                  Buffer& out) override {
    Time("GatherRows", [&] { b_.GatherRows(x, rows, dim, out); });
  }
  void TopK(Buffer& logits, int64_t rows, int64_t cols, const engine::TopKRequest& r,
            engine::TopKRows* out) override {
    Time("TopK", [&] { b_.TopK(logits, rows, cols, r, out); });
  }
  // Steps pass through (CUDA graphs) unless ops are being timed one by one.
  void BeginStep() override {
    step_begin_ = Now();
    if (!enabled) b_.BeginStep();
  }
  void EndStep() override {
    if (!enabled) b_.EndStep();
    step_host += Now() - step_begin_;
    ++step_count;
  }
  void MatMul(const Weight& w, const Buffer& x, int64_t n, Buffer& y, const Weight* bias) override {
    Time("MatMul", [&] { b_.MatMul(w, x, n, y, bias); });
  }
  void MatMuls(absl::Span<const Weight* const> w, const Buffer& x, int64_t n,
               absl::Span<Buffer* const> y) override {
    Time("MatMuls", [&] { b_.MatMuls(w, x, n, y); });
  }
  void MatMulSwiGlu(const Weight& wg, const Weight& wu, const Buffer& x, int64_t n, Buffer& g,
                    Buffer& u) override {
    Time("MatMulSwiGlu", [&] { b_.MatMulSwiGlu(wg, wu, x, n, g, u); });
  }
  void Add(const Buffer& x, int64_t n, Buffer& y) override {
    Time("Add", [&] { b_.Add(x, n, y); });
  }
  void AddRmsNorm(const Buffer& o, int64_t n, int64_t d, Buffer& x, const Weight& w, float eps,
                  Buffer& out) override {
    Time("AddRmsNorm", [&] { b_.AddRmsNorm(o, n, d, x, w, eps, out); });
  }
  void AddRow(const Weight& r, int64_t n, Buffer& y) override {
    Time("AddRow", [&] { b_.AddRow(r, n, y); });
  }
  void RmsNorm(const Buffer& x, int64_t n, int64_t d, const Weight& w, float eps,
               Buffer& out) override {
    Time("RmsNorm", [&] { b_.RmsNorm(x, n, d, w, eps, out); });
  }
  void LayerNorm(const Buffer& x, int64_t n, int64_t d, const Weight& g, const Weight& bt,
                 float eps, Buffer& out) override {
    Time("LayerNorm", [&] { b_.LayerNorm(x, n, d, g, bt, eps, out); });
  }
  void SiluMul(Buffer& g, const Buffer& u, int64_t n) override {
    Time("SiluMul", [&] { b_.SiluMul(g, u, n); });
  }
  void Gelu(Buffer& x, int64_t n) override { Time("Gelu", [&] { b_.Gelu(x, n); }); }
  void Rope(Buffer& x, absl::Span<const int32_t> pos, int heads, int hd,
            const engine::RopeParams& p) override {
    Time("Rope", [&] { b_.Rope(x, pos, heads, hd, p); });
  }
  void WriteKv(KvCache& c, int layer, const Buffer& k, const Buffer& v,
               absl::Span<const int32_t> slots) override {
    Time("WriteKv", [&] { b_.WriteKv(c, layer, k, v, slots); });
  }
  void RopeWriteKv(Buffer& q, Buffer& k, const Buffer& v, absl::Span<const int32_t> pos,
                   int heads, int kv_heads, int hd, const engine::RopeParams& p, KvCache& c,
                   int layer, absl::Span<const int32_t> slots) override {
    Time("RopeWriteKv",
         [&] { b_.RopeWriteKv(q, k, v, pos, heads, kv_heads, hd, p, c, layer, slots); });
  }
  void PagedAttention(const KvCache& c, int layer, const Buffer& q, const PagedAttentionBatch& bt,
                      int heads, float scale, Buffer& out) override {
    Time("PagedAttention", [&] { b_.PagedAttention(c, layer, q, bt, heads, scale, out); });
  }
  void DenseAttention(const Buffer& q, const Buffer& k, const Buffer& v,
                      absl::Span<const int32_t> starts, int heads, int hd, float scale,
                      Buffer& out) override {
    Time("DenseAttention", [&] { b_.DenseAttention(q, k, v, starts, heads, hd, scale, out); });
  }

 private:
  template <typename Fn>
  void Time(const char* op, Fn fn) {
    if (!enabled) return fn();
    float f;
    b_.CopyToHost(*sync_, 0, 1, &f);
    const double t0 = Now();
    fn();
    b_.CopyToHost(*sync_, 0, 1, &f);
    const double dt = Now() - t0;
    for (auto& [name, total] : totals) {
      if (name == op) {
        total += dt;
        return;
      }
    }
    totals.emplace_back(op, dt);
  }

  Backend& b_;
  std::unique_ptr<Buffer> sync_;
  double step_begin_ = 0;
};

// Random bf16 / f16 values (std 0.02-ish) shared by every weight: the content does not change
// the timing, and generating 7B values on the host would take longer than the benchmark.
class RandomPool {
 public:
  RandomPool(DType type, size_t n) : type_(type), bits_(n) {
    std::mt19937 rng(1234);
    std::uniform_real_distribution<float> d(-0.035f, 0.035f);
    std::vector<uint16_t> table(4096);
    for (auto& t : table) t = type == DType::kBF16 ? engine::F32ToBF16(d(rng)) : engine::F32ToF16(d(rng));
    uint32_t x = 88172645;
    for (auto& b : bits_) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      b = table[x & 4095];
    }
  }
  std::unique_ptr<Weight> Load(Backend& b, int64_t rows, int64_t cols) const {
    if (static_cast<size_t>(rows * cols) > bits_.size()) Die("random pool too small");
    auto w = b.LoadWeight(WeightData{type_, rows, cols, bits_.data()});
    if (!w.ok()) Die(std::string(w.status().message()));
    return std::move(*w);
  }
  std::unique_ptr<Weight> Norm(Backend& b, int64_t cols) const {
    std::vector<float> ones(cols, 1.0f);
    auto w = b.LoadWeight(WeightData{DType::kF32, 1, cols, ones.data()});
    if (!w.ok()) Die(std::string(w.status().message()));
    return std::move(*w);
  }

 private:
  DType type_;
  std::vector<uint16_t> bits_;
};

struct LlamaShape {
  int vocab = 32000, dim = 4096, layers = 32, heads = 32, kv_heads = 8, head_dim = 128,
      ffn = 14336;
};

// engine/model/llama.cc's LlamaModel itself, on random weights of the given shapes.
class Llama {
 public:
  Llama(Backend& b, const LlamaShape& s, const RandomPool& pool) : s_(s) {
    engine::LlamaConfig c;
    c.vocab_size = s.vocab;
    c.dim = s.dim;
    c.num_layers = s.layers;
    c.num_heads = s.heads;
    c.num_kv_heads = s.kv_heads;
    c.head_dim = s.head_dim;
    c.ffn_dim = s.ffn;
    c.context_length = 32768;
    c.rope.rotary_dim = s.head_dim;
    auto model = engine::LlamaModel::FromWeights(
        c, &b,
        [&](engine::LlamaTensor t, int, int64_t rows,
            int64_t cols) -> absl::StatusOr<std::unique_ptr<Weight>> {
          if (rows == 1) return pool.Norm(b, cols);
          return pool.Load(b, rows, cols);
        });
    if (!model.ok()) Die(std::string(model.status().message()));
    model_ = std::move(*model);
  }

  // Bytes of weights one decode step reads (all but the embedding table).
  double WeightBytesPerStep() const {
    const double per_layer = 2.0 * s_.dim * (2.0 * s_.heads * s_.head_dim +
                                             2.0 * s_.kv_heads * s_.head_dim + 3.0 * s_.ffn);
    return s_.layers * per_layer + 2.0 * s_.vocab * s_.dim;
  }
  // Bytes of KV cache one token at context `ctx` reads (F16 keys and values, every layer).
  double KvBytesPerToken(int ctx) const {
    return 2.0 * 2.0 * s_.layers * s_.kv_heads * s_.head_dim * ctx;
  }

  std::unique_ptr<KvCache> NewCache(int num_blocks, int block_size) {
    auto c = model_->NewCache(num_blocks, block_size);
    if (!c.ok()) Die(std::string(c.status().message()));
    return std::move(*c);
  }

  // One LlamaModel::Forward: logits for the tokens in `last`, copied to the host; or, with
  // `top_k`, LlamaModel::ForwardTopK: chat-style sampling candidates (temperature 0.7, top-p:
  // 64 candidates and the row's softmax sum) computed on the device, as the scheduler runs it.
  void Forward(const std::vector<int32_t>& tokens, const std::vector<int32_t>& seq,
               const std::vector<int32_t>& pos, const std::vector<int32_t>& slots,
               const std::vector<std::vector<int32_t>>& tables, const std::vector<int32_t>& last,
               KvCache& cache, bool top_k = false) {
    engine::ForwardBatch batch;
    batch.tokens = tokens;
    batch.token_seq = seq;
    batch.token_pos = pos;
    batch.slots = slots;
    for (const auto& t : tables) batch.block_tables.push_back(t);
    batch.logits_for = last;
    absl::Status st;
    if (top_k) {
      const size_t rows = last.size();
      std::vector<float> temp(rows, 0.7f), penalty(rows, 1.0f);
      std::vector<int32_t> starts(rows + 1, 0);
      engine::TopKRequest req;
      req.k = engine::kMaxTopK;
      req.sum_temperature = temp;
      req.penalty = penalty;
      req.penalty_starts = starts;
      st = model_->ForwardTopK(batch, cache, req, &top_);
    } else {
      st = model_->Forward(batch, cache, &logits_host_);
    }
    if (!st.ok()) Die(st.ToString());
  }

 private:
  LlamaShape s_;
  std::unique_ptr<engine::LlamaModel> model_;
  std::vector<float> logits_host_;
  engine::TopKRows top_;
};

// Sequences [0, streams) each own blocks_per_seq consecutive blocks.
struct Streams {
  int block_size = 16;
  int blocks_per_seq = 0;
  std::vector<std::vector<int32_t>> tables;
  Streams(int streams, int max_ctx) {
    blocks_per_seq = (max_ctx + block_size - 1) / block_size;
    for (int s = 0; s < streams; ++s) {
      std::vector<int32_t> t(blocks_per_seq);
      for (int i = 0; i < blocks_per_seq; ++i) t[i] = s * blocks_per_seq + i;
      tables.push_back(t);
    }
  }
  int32_t Slot(int s, int p) const {
    return tables[s][p / block_size] * block_size + p % block_size;
  }
};

// Prefill of one `len`-token prompt; returns seconds.
double Prefill(Llama& m, KvCache& cache, const Streams& st, int len) {
  std::vector<int32_t> tokens(len), seq(len, 0), pos(len), slots(len);
  for (int i = 0; i < len; ++i) {
    tokens[i] = (i * 7919) % 32000;
    pos[i] = i;
    slots[i] = st.Slot(0, i);
  }
  const double t0 = Now();
  m.Forward(tokens, seq, pos, slots, {st.tables[0]}, {len - 1}, cache);
  return Now() - t0;
}

// `steps` decode steps of `streams` sequences starting at position ctx; returns seconds.
double Decode(Llama& m, KvCache& cache, const Streams& st, int streams, int ctx, int steps,
              bool top_k = false) {
  std::vector<int32_t> tokens(streams), seq(streams), pos(streams), slots(streams), last(streams);
  std::vector<std::vector<int32_t>> tables(st.tables.begin(), st.tables.begin() + streams);
  double total = 0;
  // Steps -2 and -1: warm-up, untimed (with CUDA graphs: the first sighting of the step runs
  // op by op, the second is captured, the timed ones replay).
  for (int step = -2; step < steps; ++step) {
    const int p = ctx + std::max(step, 0);
    for (int s = 0; s < streams; ++s) {
      tokens[s] = (s * 31 + p) % 32000;
      seq[s] = s;
      pos[s] = p;
      slots[s] = st.Slot(s, p);
      last[s] = s;
    }
    const double t0 = Now();
    m.Forward(tokens, seq, pos, slots, tables, last, cache, top_k);
    if (step >= 0) total += Now() - t0;
  }
  return total;
}

struct BertShape {
  const char* name;
  int dim, layers, heads, ffn, vocab = 30522, max_pos = 512;
};

// Embeddings/s of a BERT encoder: `batch` sequences of `len` tokens, CLS pooling.
double BertEmbedPerSecond(Backend& b, const BertShape& s, const RandomPool& pool, int batch,
                          int len, int iters) {
  struct Layer {
    std::unique_ptr<Weight> wq, bq, wk, bk, wv, bv, wo, bo, n1w, n1b, up, upb, down, downb, n2w,
        n2b;
  };
  auto bias = [&](int cols) { return pool.Norm(b, cols); };
  auto tok = pool.Load(b, s.vocab, s.dim);
  auto posw = pool.Load(b, s.max_pos, s.dim);
  auto en_w = bias(s.dim), en_b = bias(s.dim);
  std::vector<Layer> layers;
  for (int l = 0; l < s.layers; ++l) {
    Layer L;
    L.wq = pool.Load(b, s.dim, s.dim);
    L.wk = pool.Load(b, s.dim, s.dim);
    L.wv = pool.Load(b, s.dim, s.dim);
    L.wo = pool.Load(b, s.dim, s.dim);
    L.bq = bias(s.dim);
    L.bk = bias(s.dim);
    L.bv = bias(s.dim);
    L.bo = bias(s.dim);
    L.n1w = bias(s.dim);
    L.n1b = bias(s.dim);
    L.up = pool.Load(b, s.ffn, s.dim);
    L.upb = bias(s.ffn);
    L.down = pool.Load(b, s.dim, s.ffn);
    L.downb = bias(s.dim);
    L.n2w = bias(s.dim);
    L.n2b = bias(s.dim);
    layers.push_back(std::move(L));
  }
  const int64_t n = int64_t{batch} * len, d = s.dim;
  std::vector<int32_t> tokens(n), positions(n), starts;
  for (int q = 0; q < batch; ++q) {
    starts.push_back(q * len);
    for (int i = 0; i < len; ++i) {
      tokens[q * len + i] = (q * 131 + i * 17) % s.vocab;
      positions[q * len + i] = i;
    }
  }
  starts.push_back(static_cast<int32_t>(n));
  auto x = b.Alloc(n * d), tmp = b.Alloc(n * d), qb = b.Alloc(n * d), kb = b.Alloc(n * d),
       vb = b.Alloc(n * d), attn = b.Alloc(n * d), ffn = b.Alloc(n * s.ffn);
  const int head_dim = s.dim / s.heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  std::vector<float> cls(batch * d);
  std::vector<int32_t> first_tokens(starts.begin(), starts.end() - 1);
  auto cls_dev = b.Alloc(int64_t{batch} * d);
  double total = 0;
  for (int it = -1; it < iters; ++it) {
    const double t0 = Now();
    b.GetRows(*tok, tokens, *x);
    b.GetRows(*posw, positions, *tmp);
    b.Add(*tmp, n * d, *x);
    b.LayerNorm(*x, n, d, *en_w, *en_b, 1e-12f, *x);
    for (const Layer& L : layers) {
      b.MatMul(*L.wq, *x, n, *qb, L.bq.get());
      b.MatMul(*L.wk, *x, n, *kb, L.bk.get());
      b.MatMul(*L.wv, *x, n, *vb, L.bv.get());
      b.DenseAttention(*qb, *kb, *vb, starts, s.heads, head_dim, scale, *attn);
      b.MatMul(*L.wo, *attn, n, *tmp, L.bo.get());
      b.Add(*tmp, n * d, *x);
      b.LayerNorm(*x, n, d, *L.n1w, *L.n1b, 1e-12f, *x);
      b.MatMul(*L.up, *x, n, *ffn, L.upb.get());
      b.Gelu(*ffn, n * s.ffn);
      b.MatMul(*L.down, *ffn, n, *tmp, L.downb.get());
      b.Add(*tmp, n * d, *x);
      b.LayerNorm(*x, n, d, *L.n2w, *L.n2b, 1e-12f, *x);
    }
    // CLS pooling as engine/model/bert.cc: the first tokens gathered on the device, one copy.
    b.GatherRows(*x, first_tokens, d, *cls_dev);
    b.CopyToHost(*cls_dev, 0, int64_t{batch} * d, cls.data());
    if (it >= 0) total += Now() - t0;
  }
  return batch * iters / total;
}

// The CUDA paths that are off by default until measured on a GPU.
struct Experimental {
  const char* name = "";
  bool pdl = false, rope_kv = false, swiglu = false, async = false, merge = false;
  void Apply(Backend& cuda) const {
    engine::cuda::SetCudaPdl(pdl);
    engine::cuda::SetCudaFusedRopeKv(cuda, rope_kv);
    engine::cuda::SetCudaFusedSwiGlu(cuda, swiglu);
    engine::cuda::SetCudaMatVecAsync(cuda, async);
    engine::cuda::SetCudaFusedSplitMerge(cuda, merge);
  }
};

const Experimental kAllExperimental{" + all five", true, true, true, true, true};

// Seconds per call of `op` (queued back to back, 200 times after one warm-up), waiting on `out`.
template <typename Op>
double TimeOp(Backend& b, const Buffer& out, Op op) {
  float f;
  const int iters = 200;
  op();
  b.CopyToHost(out, 0, 1, &f);
  const double t0 = Now();
  for (int i = 0; i < iters; ++i) op();
  b.CopyToHost(out, 0, 1, &f);
  return (Now() - t0) / iters;
}

int Main(int argc, char** argv) {
  bool quick = false, profile = false, kernels = false, experimental = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--quick") {
      quick = true;
    } else if (arg == "--profile") {
      profile = true;
    } else if (arg == "--kernels") {
      kernels = true;
    } else if (arg == "--experimental") {
      experimental = true;
    } else {
      std::fprintf(stderr,
                   "usage: gpu_bench [--quick] [--profile] [--kernels] [--experimental]\n"
                   "  --kernels:      only op-by-op decode steps (two each at batch 1, 128 and 16\n"
                   "                  streams, 7B shapes) and two bge-small embedding passes\n"
                   "                  inside profiler ranges, for ncu --profile-from-start off\n"
                   "                  (per-kernel device times)\n"
                   "  --experimental: only the rows of the paths that are off by default (with\n"
                   "                  --kernels: two batch-1 steps with all of them on), next\n"
                   "                  to the default where it helps; a separate run, so that a\n"
                   "                  fault in one of them costs none of the default rows\n");
      return 64;
    }
  }
  std::string why;
  if (engine::cuda::CudaDeviceCount(&why) == 0) {
    std::fprintf(stderr, "gpu_bench: no CUDA device available (%s); nothing to measure.\n",
                 why.c_str());
    return 2;
  }
  auto backend = engine::cuda::CreateCudaBackend({});
  if (!backend.ok()) {
    std::fprintf(stderr, "gpu_bench: %s\n", std::string(backend.status().message()).c_str());
    return 2;
  }
  TimingBackend timing(**backend);
  Backend& b = timing;
  char name[256];
  double free_gib = 0, total_gib = 0;
  DeviceSummary(name, sizeof(name), &free_gib, &total_gib);
  std::printf("device: %s, %.1f GiB (%.1f GiB free); backend %s\n", name, total_gib, free_gib,
              b.name().c_str());

  std::vector<std::pair<std::string, std::string>> table;
  auto row = [&](std::string k, std::string v) {
    std::printf("  %-52s %s\n", k.c_str(), v.c_str());
    std::fflush(stdout);
    table.emplace_back(std::move(k), std::move(v));
  };
  char buf[256];

  if (kernels) {
    const LlamaShape s;
    RandomPool pool(DType::kBF16, static_cast<size_t>(s.vocab) * s.dim);
    Llama m(b, s, pool);
    const Streams st(128, 256 + 64 + 16);
    auto cache = m.NewCache(128 * st.blocks_per_seq, st.block_size);
    engine::cuda::SetCudaGraphs(**backend, false);  // every kernel launched (and seen) on its own
    if (experimental) {
      // Batch 1 with every path that is off by default (warmed up outside the range).
      kAllExperimental.Apply(**backend);
      Decode(m, *cache, st, 1, 256, 0);
      ProfilerRange(true);
      Decode(m, *cache, st, 1, 256, 0);
      ProfilerRange(false);
      Experimental{}.Apply(**backend);
      std::printf("profiled: 2 decode steps at batch 1 (context 256) with the experimental "
                  "paths on\n");
      return 0;
    }
    Decode(m, *cache, st, 1, 256, 0);
    Decode(m, *cache, st, 128, 256, 0, /*top_k=*/true);
    Decode(m, *cache, st, 16, 256, 0, /*top_k=*/true);
    ProfilerRange(true);
    Decode(m, *cache, st, 1, 256, 0);
    ProfilerRange(false);
    ProfilerRange(true);
    Decode(m, *cache, st, 128, 256, 0, /*top_k=*/true);
    ProfilerRange(false);
    ProfilerRange(true);
    Decode(m, *cache, st, 16, 256, 0, /*top_k=*/true);
    ProfilerRange(false);
    // Two passes of a bge-small embedding batch (64 sequences of 128 tokens, f16 weights).
    const RandomPool bert_pool(DType::kF16, size_t{30522} * 384);
    ProfilerRange(true);
    BertEmbedPerSecond(b, BertShape{"bge-small", 384, 12, 12, 1536}, bert_pool, 64, 128, 1);
    ProfilerRange(false);
    std::printf("profiled: 2 decode steps at batch 1, 2 at 128 streams, 2 at 16 (context 256), "
                "2 bge-small embedding passes (64 x 128 tokens)\n");
    return 0;
  }

  double bw = 0, tflops = 0;
  if (int rc = MeasureCopyBandwidth(size_t{2} << 30, 20, &bw); rc != 0) Die(CeilingErrorString(rc));
  std::snprintf(buf, sizeof(buf), "%.0f GB/s (read + write)", bw);
  row("ceiling: device-to-device copy", buf);
  if (int rc = MeasureBf16Gemm(8192, 8192, 8192, 10, &tflops); rc != 0) Die(CeilingErrorString(rc));
  std::snprintf(buf, sizeof(buf), "%.0f TFLOP/s", tflops);
  row("ceiling: cuBLAS bf16 GEMM 8192^3", buf);

  {
    const LlamaShape s;
    double t0 = Now();
    RandomPool pool(DType::kBF16, static_cast<size_t>(s.vocab) * s.dim);
    Llama m(b, s, pool);
    std::snprintf(buf, sizeof(buf), "%.1f s (%.2f GB of bf16 weights)", Now() - t0,
                  m.WeightBytesPerStep() / 1e9);
    row("mistral-7b shapes: build + upload", buf);

    const std::vector<int> stream_counts =
        quick ? std::vector<int>{1, 16, 128} : std::vector<int>{1, 2, 4, 8, 16, 32, 64, 128, 256};
    const int ctx = 256, steps = quick ? 4 : 16;
    const int max_streams = stream_counts.back();
    // Decode: every stream owns the blocks for context 256 plus the steps; prefill: its own.
    const Streams st(max_streams, ctx + 64 + 16);
    auto cache = m.NewCache(max_streams * st.blocks_per_seq, st.block_size);
    const int max_prompt = quick ? 2048 : 8192;
    const Streams pst(1, max_prompt + 80);  // room for decode steps after the longest prompt
    auto pcache = m.NewCache(pst.blocks_per_seq, pst.block_size);

    std::vector<int> prompts = {512, 2048};
    if (!quick) prompts.push_back(8192);
    if (experimental) prompts.clear();
    for (int len : prompts) {
      Prefill(m, *pcache, pst, len);  // warm-up
      const double sec = Prefill(m, *pcache, pst, len);
      std::snprintf(buf, sizeof(buf), "%.0f tokens/s (%.1f ms)", len / sec, sec * 1e3);
      row("prefill: one " + std::to_string(len) + "-token prompt", buf);
    }
    if (!experimental) {
      // The same 2048 tokens with the tiled attention kernel instead of cuBLAS (comparison).
      engine::cuda::SetCudaGemmPrefill(**backend, false);
      Prefill(m, *pcache, pst, 2048);
      const double sec = Prefill(m, *pcache, pst, 2048);
      engine::cuda::SetCudaGemmPrefill(**backend, true);
      std::snprintf(buf, sizeof(buf), "%.0f tokens/s (%.1f ms)", 2048 / sec, sec * 1e3);
      row("prefill: one 2048-token prompt, tiled attention", buf);
    }
    if (profile && !experimental) {
      // Per-op wall time (each op waited for) of one 2048-token prefill and one 128-stream step.
      timing.enabled = true;
      Prefill(m, *pcache, pst, 2048);
      timing.enabled = false;
      for (const auto& [op, sec] : timing.totals) {
        std::snprintf(buf, sizeof(buf), "%.2f ms", sec * 1e3);
        row("profile prefill 2048: " + op, buf);
      }
      timing.totals.clear();
      timing.enabled = true;
      Decode(m, *cache, st, std::min(128, max_streams), ctx, 1);
      timing.enabled = false;
      for (const auto& [op, sec] : timing.totals) {
        std::snprintf(buf, sizeof(buf), "%.2f ms (2 steps)", sec * 1e3);
        row("profile decode 128 streams: " + op, buf);
      }
      timing.totals.clear();
      timing.enabled = true;
      Decode(m, *cache, st, 1, ctx, 1);
      timing.enabled = false;
      for (const auto& [op, sec] : timing.totals) {
        std::snprintf(buf, sizeof(buf), "%.2f ms (2 steps)", sec * 1e3);
        row("profile decode 1 stream: " + op, buf);
      }
      timing.totals.clear();
    }
    if (profile) {
      // The decode matvecs of one layer alone, back to back (no per-op waits): weight bytes per
      // second, on a resident grid (the default) and with one block per row group; with
      // --experimental the default and the pipelined kernel.
      for (const auto& [rows, cols] : {std::pair<int64_t, int64_t>{28672, 4096},
                                       {6144, 4096}, {4096, 4096}, {4096, 14336}}) {
        auto w = pool.Load(b, rows, cols);
        auto x = b.Alloc(cols);
        auto y = b.Alloc(rows);
        std::vector<float> ones(cols, 0.5f);
        b.CopyFromHost(ones.data(), cols, *x);
        // 0: the default, 1: one block per row group, 2: pipelined through shared memory.
        for (int variant : experimental ? std::vector<int>{0, 2} : std::vector<int>{0, 1}) {
          engine::cuda::SetCudaMatVecPersistent(**backend, variant != 1);
          engine::cuda::SetCudaMatVecAsync(**backend, variant == 2);
          const double sec = TimeOp(b, *y, [&] { b.MatMul(*w, *x, 1, *y); });
          std::snprintf(buf, sizeof(buf), "%.1f us, %.0f GB/s of weights", sec * 1e6,
                        2.0 * rows * cols / sec / 1e9);
          row("profile matvec bf16 " + std::to_string(rows) + "x" + std::to_string(cols) +
                  (variant == 1   ? ", a block per row group"
                   : variant == 2 ? ", pipelined (experimental)"
                                  : ""),
              buf);
        }
        engine::cuda::SetCudaMatVecPersistent(**backend, true);
        engine::cuda::SetCudaMatVecAsync(**backend, false);
      }
      {
        // A layer's gate/up projections and SwiGLU (2 x 14336 x 4096): two launches (MatMuls,
        // SiluMul) or one (fused), with either matvec kernel.
        const int64_t ffn = 14336, cols = 4096;
        auto wg = pool.Load(b, ffn, cols), wu = pool.Load(b, ffn, cols);
        auto x = b.Alloc(cols), g = b.Alloc(ffn), u = b.Alloc(ffn);
        std::vector<float> half(cols, 0.5f);
        b.CopyFromHost(half.data(), cols, *x);
        for (int variant = 0; variant < (experimental ? 4 : 1); ++variant) {
          engine::cuda::SetCudaFusedSwiGlu(**backend, variant & 1);
          engine::cuda::SetCudaMatVecAsync(**backend, variant & 2);
          const double sec = TimeOp(b, *g, [&] { b.MatMulSwiGlu(*wg, *wu, *x, 1, *g, *u); });
          std::snprintf(buf, sizeof(buf), "%.1f us, %.0f GB/s of weights", sec * 1e6,
                        2.0 * 2 * ffn * cols / sec / 1e9);
          row(std::string("profile gate/up + SwiGLU bf16 2x14336x4096") +
                  (variant & 1 ? ", fused" : "") + (variant & 2 ? ", pipelined" : "") +
                  (variant ? " (experimental)" : ""),
              buf);
        }
        Experimental{}.Apply(**backend);
      }
    }
    // Batch 1 op by op, then with CUDA graphs (the default), which the rest runs with.
    for (bool graphs : experimental ? std::vector<bool>{true} : std::vector<bool>{false, true}) {
      engine::cuda::SetCudaGraphs(**backend, graphs);
      const int n_steps = quick ? 8 : 48;
      timing.step_host = 0;
      timing.step_count = 0;
      const double sec = Decode(m, *cache, st, 1, ctx, n_steps);
      const double host_per_step = timing.step_host / std::max<int64_t>(1, timing.step_count);
      const double per_token = sec / n_steps;
      const double bytes = m.WeightBytesPerStep() + m.KvBytesPerToken(ctx);
      // The ceiling: the step's bytes (all reads) moved at the copy's measured traffic rate
      // (which counts bytes read plus bytes written: HBM bandwidth is shared by both).
      const double ceiling_tps = (bw * 1e9) / bytes;
      std::snprintf(buf, sizeof(buf), "%.1f tokens/s (%.2f ms), %.0f%% of the %.0f tokens/s ceiling",
                    1.0 / per_token, per_token * 1e3, 100.0 / per_token / ceiling_tps, ceiling_tps);
      row(graphs ? "decode batch 1, context 256, CUDA graphs" : "decode batch 1, context 256, no graphs",
          buf);
      if (graphs && profile) {
        // The host's share: the next step cannot start recording before this one's token.
        std::snprintf(buf, sizeof(buf), "%.3f ms a step (%.0f%% of the token's time)",
                      host_per_step * 1e3, 100.0 * host_per_step / per_token);
        row("profile decode batch 1: host recording + launch", buf);
      }
    }
    if (experimental) {
      // The paths that are off by default until measured, one at a time and all together at
      // batch 1; at 128 streams and after the longest prompt the default, then all together.
      const int n_steps = quick ? 8 : 48;
      const double bytes = m.WeightBytesPerStep() + m.KvBytesPerToken(ctx);
      const std::vector<Experimental> configs = {
          {" + PDL", true, false, false, false, false},
          {" + fused RoPE/KV write", false, true, false, false, false},
          {" + fused SwiGLU matvec", false, false, true, false, false},
          {" + pipelined matvec", false, false, false, true, false},
          {" + in-kernel split merge", false, false, false, false, true},
          {" + PDL + fused RoPE/KV write", true, true, false, false, false},
          {" + all five", true, true, true, true, true}};
      for (const Experimental& e : configs) {
        e.Apply(**backend);  // (each of these sets every switch)
        const double sec = Decode(m, *cache, st, 1, ctx, n_steps);
        std::snprintf(buf, sizeof(buf), "%.1f tokens/s (%.2f ms), %.0f%% of the ceiling",
                      n_steps / sec, sec / n_steps * 1e3,
                      100.0 * n_steps / sec / (bw * 1e9 / bytes));
        row(std::string("decode batch 1, context 256, CUDA graphs") + e.name + " (experimental)",
            buf);
      }
      const int streams = std::min(128, max_streams);
      Prefill(m, *pcache, pst, max_prompt);  // the long context's keys and values
      for (const Experimental& e : {Experimental{}, kAllExperimental}) {
        e.Apply(**backend);
        const double sec128 = Decode(m, *cache, st, streams, ctx, steps, /*top_k=*/true);
        std::snprintf(buf, sizeof(buf), "%.0f tokens/s (%.1f ms per step)",
                      streams * steps / sec128, sec128 / steps * 1e3);
        row("decode aggregate, " + std::to_string(streams) + " streams" + e.name +
                (*e.name ? " (experimental)" : ""),
            buf);
        const int n_long = quick ? 8 : 32;
        const double sec_long = Decode(m, *pcache, pst, 1, max_prompt, n_long);
        std::snprintf(buf, sizeof(buf), "%.1f tokens/s (%.2f ms)", n_long / sec_long,
                      sec_long / n_long * 1e3);
        row("decode batch 1, context " + std::to_string(max_prompt) + ", CUDA graphs" + e.name +
                (*e.name ? " (experimental)" : ""),
            buf);
      }
      Experimental{}.Apply(**backend);
    }
    if (!experimental) {
      // Batch 1 after the longest prompt: attention over max_prompt keys (split over blocks).
      const int n_steps = quick ? 8 : 32;
      const double sec = Decode(m, *pcache, pst, 1, max_prompt, n_steps);
      std::snprintf(buf, sizeof(buf), "%.1f tokens/s (%.2f ms)", n_steps / sec, sec / n_steps * 1e3);
      row("decode batch 1, context " + std::to_string(max_prompt) + ", CUDA graphs", buf);
    }
    for (int streams : experimental ? std::vector<int>{} : stream_counts) {
      const double sec = Decode(m, *cache, st, streams, ctx, steps, /*top_k=*/true);
      std::snprintf(buf, sizeof(buf), "%.0f tokens/s (%.1f ms per step)", streams * steps / sec,
                    sec / steps * 1e3);
      row("decode aggregate, " + std::to_string(streams) + " streams at context 256", buf);
    }
    if (!experimental) {
      // The same 128 streams with the older attention kernels (for comparison).
      const int streams = std::min(128, max_streams);
      engine::cuda::SetCudaGroupedDecode(**backend, false);
      const double sec = Decode(m, *cache, st, streams, ctx, steps, /*top_k=*/true);
      engine::cuda::SetCudaGroupedDecode(**backend, true);
      std::snprintf(buf, sizeof(buf), "%.0f tokens/s (%.1f ms per step)", streams * steps / sec,
                    sec / steps * 1e3);
      row("decode aggregate, " + std::to_string(streams) + " streams, no grouped decode attention",
          buf);
    }
    if (!experimental) {
      // The same 128 streams with every row of logits copied to the host (no device sampling).
      const int streams = std::min(128, max_streams);
      const double sec = Decode(m, *cache, st, streams, ctx, steps, /*top_k=*/false);
      std::snprintf(buf, sizeof(buf), "%.0f tokens/s (%.1f ms per step)", streams * steps / sec,
                    sec / steps * 1e3);
      row("decode aggregate, " + std::to_string(streams) + " streams, logits to the host", buf);
    }
    const engine::cuda::CudaGraphStats gs = engine::cuda::GetCudaGraphStats(**backend);
    if (gs.enabled) {
      std::snprintf(buf, sizeof(buf), "%lld captured, %lld updated, %lld steps replayed, %lld op by op",
                    static_cast<long long>(gs.graphs_captured),
                    static_cast<long long>(gs.graphs_updated),
                    static_cast<long long>(gs.steps_replayed),
                    static_cast<long long>(gs.steps_eager));
      row("CUDA graphs", buf);
    } else {
      row("CUDA graphs", "off: " + gs.disabled_reason);
    }
  }
  {
    RandomPool pool(DType::kF16, size_t{30522} * 768);
    for (const BertShape& s : {BertShape{"bge-small", 384, 12, 12, 1536},
                               BertShape{"bge-base", 768, 12, 12, 3072}}) {
      // The default attention kernel; with --experimental also the tiled one.
      for (bool tiled : experimental ? std::vector<bool>{false, true} : std::vector<bool>{false}) {
        engine::cuda::SetCudaTiledDenseAttention(**backend, tiled);
        const double eps = BertEmbedPerSecond(b, s, pool, 64, 128, quick ? 2 : 5);
        std::snprintf(buf, sizeof(buf), "%.0f embeddings/s", eps);
        row(std::string("embed: ") + s.name + " shapes, f16, 64 x 128 tokens" +
                (tiled ? ", tiled attention (experimental)" : ""),
            buf);
      }
      engine::cuda::SetCudaTiledDenseAttention(**backend, false);
    }
  }

  std::printf("\n| measurement | result |\n| --- | --- |\n");
  for (const auto& [k, v] : table) std::printf("| %s | %s |\n", k.c_str(), v.c_str());
  return 0;
}

}  // namespace
}  // namespace tessera::bench_gpu

int main(int argc, char** argv) { return tessera::bench_gpu::Main(argc, argv); }
