#include "engine/backend/cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <mutex>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "engine/backend/cpu/spin_pool.h"
#include "engine/model/dtype.h"

namespace tessera::engine::cpu {
namespace {

// Ops take no Status: a shape mismatch is a bug in the model code, so it aborts
// loudly.
[[noreturn]] void CheckFailed(const char* file, int line, const char* cond) {
  std::fprintf(stderr, "%s:%d: CPU backend check failed: %s\n", file, line, cond);
  std::abort();
}
#define CPU_CHECK(cond) \
  if (!(cond)) CheckFailed(__FILE__, __LINE__, #cond)

constexpr size_t kAlign = 64;

void* AlignedAlloc(size_t bytes) {
  const size_t rounded = (std::max<size_t>(bytes, 1) + kAlign - 1) / kAlign * kAlign;
  return std::aligned_alloc(kAlign, rounded);
}

class CpuBuffer final : public Buffer {
 public:
  CpuBuffer(float* data, int64_t size) : data_(data), size_(size) {}
  ~CpuBuffer() override { std::free(data_); }
  float* data() override { return data_; }
  const float* data() const override { return data_; }
  int64_t size() const override { return size_; }

 private:
  float* data_;
  int64_t size_;
};

class CpuWeight final : public Weight {
 public:
  CpuWeight(const WeightData& w, size_t row_bytes)
      : Weight(w.type, w.rows, w.cols),
        data_(static_cast<const uint8_t*>(w.data)),
        row_bytes_(row_bytes) {
    if (w.rows == 1 && w.type != DType::kF32) {
      f32_.resize(w.cols);
      DequantizeRow(w.type, w.data, f32_.data(), w.cols);
    }
  }
  const uint8_t* data() const { return data_; }
  size_t row_bytes() const { return row_bytes_; }
  // The values of a 1-D weight as floats.
  const float* row_f32() const {
    return type() == DType::kF32 ? reinterpret_cast<const float*>(data_) : f32_.data();
  }

 private:
  const uint8_t* data_;
  size_t row_bytes_;
  std::vector<float> f32_;  // 1-D non-F32 weights only
};

class CpuKvCache final : public KvCache {
 public:
  CpuKvCache(const KvCacheShape& shape, uint16_t* data, int64_t layer_stride)
      : KvCache(shape), data_(data), layer_stride_(layer_stride) {}
  ~CpuKvCache() override { std::free(data_); }
  uint16_t* k(int layer) const { return data_ + 2 * layer * layer_stride_; }
  uint16_t* v(int layer) const { return data_ + (2 * layer + 1) * layer_stride_; }

 private:
  uint16_t* data_;
  int64_t layer_stride_;  // elements of K (or V) per layer
};

const CpuWeight& AsCpu(const Weight& w) { return static_cast<const CpuWeight&>(w); }
const CpuKvCache& AsCpu(const KvCache& c) { return static_cast<const CpuKvCache&>(c); }

class CpuBackend final : public Backend {
 public:
  CpuBackend(Isa isa, int num_threads) : kt_(GetKernelTable(isa)), pool_(num_threads) {}

  std::string name() const override {
    return absl::StrCat("cpu-", std::string(IsaName(kt_.isa)), " (", pool_.num_threads(),
                        pool_.num_threads() == 1 ? " thread)" : " threads)");
  }

  std::unique_ptr<Buffer> Alloc(int64_t num_floats) override {
    CPU_CHECK(num_floats >= 0);
    auto* p = static_cast<float*>(AlignedAlloc(static_cast<size_t>(num_floats) * sizeof(float)));
    CPU_CHECK(p != nullptr);
    return std::make_unique<CpuBuffer>(p, num_floats);
  }

  absl::StatusOr<std::unique_ptr<Weight>> LoadWeight(const WeightData& w) override {
    absl::StatusOr<size_t> row_bytes = CheckWeightData(w);
    if (!row_bytes.ok()) return row_bytes.status();
    return std::make_unique<CpuWeight>(w, *row_bytes);
  }

  absl::StatusOr<std::unique_ptr<KvCache>> AllocKvCache(const KvCacheShape& s) override {
    absl::StatusOr<int64_t> stride = CheckKvCacheShape(s);
    if (!stride.ok()) return stride.status();
    const int64_t layer_stride = *stride;
    const size_t bytes = static_cast<size_t>(2 * s.num_layers * layer_stride) * sizeof(uint16_t);
    auto* p = static_cast<uint16_t*>(AlignedAlloc(bytes));
    if (p == nullptr) {
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot allocate a KV cache of ", bytes, " bytes"));
    }
    std::memset(p, 0, bytes);
    return std::make_unique<CpuKvCache>(s, p, layer_stride);
  }

  void CopyFromHost(const float* src, int64_t n, Buffer& dst, int64_t dst_offset) override {
    CPU_CHECK(n >= 0 && dst_offset >= 0 && dst_offset + n <= dst.size());
    if (n > 0) std::memcpy(dst.data() + dst_offset, src, n * sizeof(float));
  }

  void CopyToHost(const Buffer& src, int64_t src_offset, int64_t n, float* dst) override {
    CPU_CHECK(n >= 0 && src_offset >= 0 && src_offset + n <= src.size());
    if (n > 0) std::memcpy(dst, src.data() + src_offset, n * sizeof(float));
  }

  void GetRows(const Weight& table, absl::Span<const int32_t> ids, Buffer& out) override {
    const CpuWeight& t = AsCpu(table);
    const int64_t cols = t.cols();
    CPU_CHECK(static_cast<int64_t>(ids.size()) * cols <= out.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      CPU_CHECK(ids[i] >= 0 && ids[i] < t.rows());
      DequantizeRow(t.type(), t.data() + ids[i] * t.row_bytes(), out.data() + i * cols, cols);
    }
  }

  void GatherRows(const Buffer& x, absl::Span<const int32_t> rows, int64_t dim,
                  Buffer& out) override {
    CPU_CHECK(dim >= 0 && static_cast<int64_t>(rows.size()) * dim <= out.size());
    CPU_CHECK(x.data() != out.data() || rows.empty());
    for (size_t i = 0; i < rows.size(); ++i) {
      CPU_CHECK(rows[i] >= 0 && (rows[i] + int64_t{1}) * dim <= x.size());
      std::memcpy(out.data() + i * dim, x.data() + rows[i] * dim, dim * sizeof(float));
    }
  }

  int64_t PreferredPassTokens() const override { return 512; }

  void MatMul(const Weight& weight, const Buffer& x, int64_t n, Buffer& y,
              const Weight* bias) override {
    const CpuWeight& w = AsCpu(weight);
    const int64_t rows = w.rows(), k = w.cols();
    CPU_CHECK(n >= 0 && x.size() >= n * k && y.size() >= n * rows);
    if (bias != nullptr) CPU_CHECK(bias->rows() == 1 && bias->cols() == rows);
    if (n == 0) return;
    const XFormat fmt = MatMulXFormat(w.type());
    const void* xp = x.data();
    size_t xrb = XRowBytes(fmt, k);
    std::unique_lock<std::mutex> xq_lock(xq_mu_, std::defer_lock);
    if (fmt != XFormat::kF32) {
      xq_lock.lock();  // xq_ is shared by concurrent callers (models sharing the backend)
      if (xq_.size() < n * xrb) xq_.resize(n * xrb);
      uint8_t* q = xq_.data();
      const float* xf = x.data();
      auto quantize = [&](int64_t i) {
        if (fmt == XFormat::kQ8) {
          kt_.quantize_q8(xf + i * k, q + i * xrb, k);
        } else {
          kt_.quantize_q8k(xf + i * k, reinterpret_cast<BlockQ8KX*>(q + i * xrb), k);
        }
      };
      if (n >= 8) {
        pool_.Run(n, quantize);
      } else {
        for (int64_t i = 0; i < n; ++i) quantize(i);
      }
      xp = q;
    }
    // Output rows in chunks (multiples of 16): about 4 per thread so that a
    // slow thread (others share the machine) does not hold the op up, but large
    // enough to stream weights in long runs.
    const int64_t threads = pool_.num_threads();
    int64_t chunk = (rows + threads * 4 - 1) / (threads * 4);
    chunk = std::max<int64_t>(16, (chunk + 15) / 16 * 16);
    // A small product is not worth waking the workers: a small model's decode step is a hundred
    // of them, and a worker descheduled by a busy machine would stall each one.
    if (static_cast<double>(rows) * static_cast<double>(w.row_bytes()) * static_cast<double>(n) <
        kMinParallelBytes) {
      chunk = rows;
    }
    const int64_t tasks = (rows + chunk - 1) / chunk;
    const float* b = bias != nullptr ? AsCpu(*bias).row_f32() : nullptr;
    float* yp = y.data();
    pool_.Run(tasks, [&](int64_t t) {
      const int64_t r0 = t * chunk, r1 = std::min(rows, r0 + chunk);
      kt_.matmul(w.type(), w.data(), w.row_bytes(), xp, xrb, n, k, r0, r1, yp, rows);
      if (b != nullptr) {
        // y += 1 * b: the same bits as y + b, in the SIMD level's vectors.
        for (int64_t i = 0; i < n; ++i) kt_.axpy_f32(1.0f, b + r0, yp + i * rows + r0, r1 - r0);
      }
    });
  }

  void Add(const Buffer& x, int64_t n, Buffer& y) override {
    CPU_CHECK(n >= 0 && x.size() >= n && y.size() >= n);
    const float* xp = x.data();
    float* yp = y.data();
    Elementwise(n, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) yp[i] += xp[i];
    });
  }

  void AddRow(const Weight& row, int64_t n, Buffer& y) override {
    const CpuWeight& r = AsCpu(row);
    CPU_CHECK(r.rows() == 1 && n >= 0 && y.size() >= n * r.cols());
    const float* rp = r.row_f32();
    const int64_t cols = r.cols();
    for (int64_t i = 0; i < n; ++i) {
      float* yp = y.data() + i * cols;
      for (int64_t c = 0; c < cols; ++c) yp[c] += rp[c];
    }
  }

  void RmsNorm(const Buffer& x, int64_t n, int64_t dim, const Weight& weight, float eps,
               Buffer& out) override {
    const CpuWeight& w = AsCpu(weight);
    CPU_CHECK(w.rows() == 1 && w.cols() == dim && x.size() >= n * dim && out.size() >= n * dim);
    const float* wp = w.row_f32();
    Rows(n, dim, [&](int64_t i) {
      const float* xr = x.data() + i * dim;
      float* o = out.data() + i * dim;
      const float ms = kt_.dot_f32(xr, xr, dim) / static_cast<float>(dim);
      const float scale = 1.0f / std::sqrt(ms + eps);
      for (int64_t c = 0; c < dim; ++c) o[c] = xr[c] * scale * wp[c];
    });
  }

  void LayerNorm(const Buffer& x, int64_t n, int64_t dim, const Weight& gamma, const Weight& beta,
                 float eps, Buffer& out) override {
    const CpuWeight& g = AsCpu(gamma);
    const CpuWeight& bt = AsCpu(beta);
    CPU_CHECK(g.rows() == 1 && g.cols() == dim && bt.rows() == 1 && bt.cols() == dim);
    CPU_CHECK(x.size() >= n * dim && out.size() >= n * dim);
    const float* gp = g.row_f32();
    const float* bp = bt.row_f32();
    Rows(n, dim, [&](int64_t i) {
      kt_.layer_norm(x.data() + i * dim, dim, gp, bp, eps, out.data() + i * dim);
    });
  }

  void SiluMul(Buffer& gate, const Buffer& up, int64_t n) override {
    CPU_CHECK(n >= 0 && gate.size() >= n && up.size() >= n);
    float* g = gate.data();
    const float* u = up.data();
    Elementwise(n, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
    });
  }

  void Gelu(Buffer& x, int64_t n) override {
    CPU_CHECK(n >= 0 && x.size() >= n);
    float* p = x.data();
    Elementwise(n, [&](int64_t b, int64_t e) { kt_.gelu(p + b, e - b); });
  }

  void Rope(Buffer& x, absl::Span<const int32_t> positions, int num_heads, int head_dim,
            const RopeParams& params) override {
    const int rd = params.rotary_dim == 0 ? head_dim : params.rotary_dim;
    CPU_CHECK(rd > 0 && rd <= head_dim && rd % 2 == 0);
    const int64_t width = int64_t{num_heads} * head_dim;
    CPU_CHECK(x.size() >= static_cast<int64_t>(positions.size()) * width);
    const int half = rd / 2;
    // Frequencies and angles in double: at position 10^5 a float angle would be
    // off by ~10^-2.
    std::vector<double> inv_freq(half);
    for (int i = 0; i < half; ++i) inv_freq[i] = std::pow(double{params.theta}, -2.0 * i / rd);
    Rows(positions.size(), width, [&](int64_t t) {
      std::vector<float> cs(2 * half);
      const double p = static_cast<double>(positions[t]) * params.freq_scale;
      for (int i = 0; i < half; ++i) {
        cs[2 * i] = static_cast<float>(std::cos(p * inv_freq[i]));
        cs[2 * i + 1] = static_cast<float>(std::sin(p * inv_freq[i]));
      }
      for (int h = 0; h < num_heads; ++h) {
        float* v = x.data() + t * width + int64_t{h} * head_dim;
        for (int i = 0; i < half; ++i) {
          const int a = params.style == RopeStyle::kNormal ? 2 * i : i;
          const int b = params.style == RopeStyle::kNormal ? 2 * i + 1 : i + half;
          const float x0 = v[a], x1 = v[b], c = cs[2 * i], s = cs[2 * i + 1];
          v[a] = x0 * c - x1 * s;
          v[b] = x0 * s + x1 * c;
        }
      }
    });
  }

  void WriteKv(KvCache& cache, int layer, const Buffer& k, const Buffer& v,
               absl::Span<const int32_t> slots) override {
    const CpuKvCache& c = AsCpu(cache);
    CPU_CHECK(layer >= 0 && layer < c.shape().num_layers);
    const int64_t kd = c.kv_dim();
    const int64_t n = slots.size();
    CPU_CHECK(k.size() >= n * kd && v.size() >= n * kd);
    for (int64_t i = 0; i < n; ++i) {
      CPU_CHECK(slots[i] >= 0 && slots[i] < c.num_slots());
      kt_.f32_to_f16(k.data() + i * kd, c.k(layer) + slots[i] * kd, kd);
      kt_.f32_to_f16(v.data() + i * kd, c.v(layer) + slots[i] * kd, kd);
    }
  }

  void PagedAttention(const KvCache& cache, int layer, const Buffer& q,
                      const PagedAttentionBatch& batch, int num_heads, float scale,
                      Buffer& out) override {
    const CpuKvCache& c = AsCpu(cache);
    const KvCacheShape& s = c.shape();
    CPU_CHECK(layer >= 0 && layer < s.num_layers);
    CPU_CHECK(num_heads > 0 && num_heads % s.num_kv_heads == 0);
    CPU_CHECK(batch.token_seq.size() == batch.token_pos.size());
    const int64_t tokens = batch.token_seq.size();
    const int hd = s.head_dim;
    const int64_t width = int64_t{num_heads} * hd;
    const int64_t kd = c.kv_dim();
    const int group = num_heads / s.num_kv_heads;
    CPU_CHECK(q.size() >= tokens * width && out.size() >= tokens * width);
    for (int64_t t = 0; t < tokens; ++t) {
      const int32_t seq = batch.token_seq[t], pos = batch.token_pos[t];
      CPU_CHECK(seq >= 0 && seq < static_cast<int64_t>(batch.block_tables.size()) && pos >= 0);
      const auto& table = batch.block_tables[seq];
      CPU_CHECK(pos / s.block_size < static_cast<int64_t>(table.size()));
    }
    const uint16_t* kc = c.k(layer);
    const uint16_t* vc = c.v(layer);
    int64_t span = 0;  // keys read, summed over tokens: the work, for the serial/parallel choice
    for (int64_t t = 0; t < tokens; ++t) span += batch.token_pos[t] + 1;
    RunTasks(tokens * num_heads, span * num_heads * s.head_dim * 2, [&](int64_t task) {
      const int64_t t = task / num_heads;
      const int h = static_cast<int>(task % num_heads);
      const int32_t pos = batch.token_pos[t];
      const auto& table = batch.block_tables[batch.token_seq[t]];
      const int32_t start =
          batch.sliding_window > 0 ? std::max(0, pos - batch.sliding_window + 1) : 0;
      const int64_t head_off = int64_t{h / group} * hd;
      const float* qh = q.data() + t * width + int64_t{h} * hd;
      float* o = out.data() + t * width + int64_t{h} * hd;
      thread_local std::vector<float> scores;
      scores.resize(pos - start + 1);
      auto slot = [&](int32_t p) -> int64_t {
        const int32_t block = table[p / s.block_size];
        CPU_CHECK(block >= 0 && block < s.num_blocks);
        return int64_t{block} * s.block_size + p % s.block_size;
      };
      float mx = -std::numeric_limits<float>::infinity();
      for (int32_t p = start; p <= pos; ++p) {
        const float v = kt_.dot_f16(kc + slot(p) * kd + head_off, qh, hd) * scale;
        scores[p - start] = v;
        mx = std::max(mx, v);
      }
      float sum = 0;
      for (float& v : scores) {
        v = std::exp(v - mx);
        sum += v;
      }
      const float inv = 1.0f / sum;
      std::fill(o, o + hd, 0.0f);
      for (int32_t p = start; p <= pos; ++p) {
        kt_.axpy_f16(scores[p - start] * inv, vc + slot(p) * kd + head_off, o, hd);
      }
    });
  }

  void TopK(Buffer& logits, int64_t rows, int64_t cols, const TopKRequest& r,
            TopKRows* out) override {
    CheckTopKRequest(logits, rows, cols, r);
    out->k = r.k;
    out->values.assign(rows * r.k, 0.0f);
    out->ids.assign(rows * r.k, -1);
    out->sum_exp.assign(rows, 0.0);
    out->nonfinite.assign(rows, 0);
    Rows(rows, cols, [&](int64_t i) {
      const auto pen = r.penalty_ids.subspan(r.penalty_starts[i],
                                             r.penalty_starts[i + 1] - r.penalty_starts[i]);
      TopKRow(logits.data() + i * cols, cols, r.k, r.sum_temperature[i], r.penalty[i], pen,
              out->values.data() + i * r.k, out->ids.data() + i * r.k, &out->sum_exp[i],
              &out->nonfinite[i]);
    });
  }

  void DenseAttention(const Buffer& q, const Buffer& k, const Buffer& v,
                      absl::Span<const int32_t> seq_starts, int num_heads, int head_dim,
                      float scale, Buffer& out) override {
    CPU_CHECK(!seq_starts.empty() && seq_starts[0] == 0);
    const int64_t tokens = seq_starts.back();
    const int64_t width = int64_t{num_heads} * head_dim;
    CPU_CHECK(q.size() >= tokens * width && k.size() >= tokens * width &&
              v.size() >= tokens * width && out.size() >= tokens * width);
    // Tasks: (sequence, head, block of kQueries queries); each transposes its sequence's keys of
    // the head once for its block.
    constexpr int64_t kQueries = 32;
    struct Task {
      int32_t begin, len, q0, q1, head;
    };
    std::vector<Task> tasks;
    int64_t span = 0, max_len = 0;
    for (size_t sidx = 0; sidx + 1 < seq_starts.size(); ++sidx) {
      CPU_CHECK(seq_starts[sidx] <= seq_starts[sidx + 1]);
      const int32_t b = seq_starts[sidx], len = seq_starts[sidx + 1] - b;
      span += int64_t{len} * len;
      max_len = std::max<int64_t>(max_len, len);
      for (int h = 0; h < num_heads; ++h) {
        for (int32_t q0 = 0; q0 < len; q0 += kQueries) {
          tasks.push_back({b, len, q0, static_cast<int32_t>(std::min<int64_t>(len, q0 + kQueries)), h});
        }
      }
    }
    const int64_t scratch_floats = DenseAttentionScratch(max_len, head_dim);
    RunTasks(static_cast<int64_t>(tasks.size()), span * num_heads * head_dim * 4, [&](int64_t i) {
      const Task& t = tasks[i];
      thread_local std::vector<float> scratch;
      if (static_cast<int64_t>(scratch.size()) < scratch_floats) scratch.resize(scratch_floats);
      const int64_t off = int64_t{t.begin} * width + int64_t{t.head} * head_dim;
      kt_.dense_attention(q.data() + off, k.data() + off, v.data() + off, width, t.len, t.q0, t.q1,
                          head_dim, scale, out.data() + off, scratch.data());
    });
  }

 private:
  // Below this many bytes of weights or cache read, an op runs on the calling thread.
  static constexpr double kMinParallelBytes = 1 << 18;

  // Runs fn(task) for [0, n): in parallel when the op reads enough bytes to pay for waking the
  // workers, else inline.
  template <typename Fn>
  void RunTasks(int64_t n, int64_t bytes, Fn fn) {
    if (static_cast<double>(bytes) < kMinParallelBytes) {
      for (int64_t t = 0; t < n; ++t) fn(t);
      return;
    }
    pool_.Run(n, fn);
  }

  // Runs fn(begin, end) over [0, n) in fixed chunks, in parallel when n is
  // large enough to pay for waking the workers.
  template <typename Fn>
  void Elementwise(int64_t n, Fn fn) {
    constexpr int64_t kChunk = 1 << 14;
    if (n <= kChunk) {
      fn(0, n);
      return;
    }
    pool_.Run((n + kChunk - 1) / kChunk,
              [&](int64_t t) { fn(t * kChunk, std::min(n, (t + 1) * kChunk)); });
  }
  // Runs fn(row) for rows [0, n) of `width` floats, in parallel when there is
  // enough work.
  template <typename Fn>
  void Rows(int64_t n, int64_t width, Fn fn) {
    if (n * width <= (1 << 14) || n == 1) {
      for (int64_t i = 0; i < n; ++i) fn(i);
      return;
    }
    pool_.Run(n, fn);
  }

  const KernelTable& kt_;
  SpinPool pool_;
  std::mutex xq_mu_;
  std::vector<uint8_t> xq_ ABSL_GUARDED_BY(xq_mu_);  // quantized activations of the current MatMul
};

}  // namespace

absl::StatusOr<std::unique_ptr<Backend>> CreateCpuBackend(const CpuBackendOptions& options) {
  if (options.num_threads < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_threads must be >= 0 (0: all cores), got ", options.num_threads));
  }
  Isa isa = BestIsa();
  if (options.isa.has_value()) {
    isa = *options.isa;
  } else if (const char* env = std::getenv("TESSERA_CPU_ISA"); env != nullptr && *env != '\0') {
    absl::StatusOr<Isa> parsed = ParseIsa(env);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("TESSERA_CPU_ISA: ", std::string(parsed.status().message())));
    }
    isa = *parsed;
  }
  if (!IsaSupported(isa)) {
    return absl::FailedPreconditionError(
        absl::StrCat("this CPU does not support the ", std::string(IsaName(isa)), " kernels"));
  }
  int threads = options.num_threads;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  return std::make_unique<CpuBackend>(isa, threads);
}

}  // namespace tessera::engine::cpu
