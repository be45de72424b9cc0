// Tests of the CPU backend: every op at every ISA level this machine supports
// against a straightforward double-precision reference on seeded random inputs,
// with outputs poisoned (NaN) beforehand so that unwritten elements show.
#include "engine/backend/cpu/cpu_backend.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/casts.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/backend/backend.h"
#include "engine/backend/cpu/kernels.h"
#include "engine/model/dtype.h"
#include "gtest/gtest.h"

namespace tessera::engine::cpu {
namespace {}  // namespace

// Readable test names and failure messages for the ISA parameter.
void PrintTo(Isa isa, std::ostream* os) { *os << IsaName(isa); }

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::unique_ptr<Backend> MakeBackend(Isa isa, int threads) {
  CpuBackendOptions options;
  options.isa = isa;
  options.num_threads = threads;
  absl::StatusOr<std::unique_ptr<Backend>> b = CreateCpuBackend(options);
  EXPECT_TRUE(b.ok()) << b.status();
  return *std::move(b);
}

std::vector<float> Random(std::mt19937& rng, int64_t n, float lo = -1, float hi = 1) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& f : v) f = d(rng);
  return v;
}

std::unique_ptr<Buffer> Upload(Backend& b, const std::vector<float>& v) {
  auto buf = b.Alloc(v.size());
  b.CopyFromHost(v.data(), v.size(), *buf);
  return buf;
}

std::unique_ptr<Buffer> Poisoned(Backend& b, int64_t n) {
  return Upload(b, std::vector<float>(n, kNaN));
}

std::vector<float> Download(Backend& b, const Buffer& buf, int64_t n) {
  std::vector<float> v(n);
  b.CopyToHost(buf, 0, n, v.data());
  return v;
}

// A weight in host memory (which the CPU backend aliases) with its dequantized
// values.
struct HostWeight {
  DType type;
  int64_t rows, cols;
  std::vector<uint8_t> bytes;
  std::vector<float> values;  // dequantized, [rows, cols]
  std::unique_ptr<Weight> weight;
};

std::unique_ptr<HostWeight> MakeWeight(Backend& b, DType type, int64_t rows, int64_t cols,
                                       std::mt19937& rng) {
  auto w = std::make_unique<HostWeight>();
  w->type = type;
  w->rows = rows;
  w->cols = cols;
  const size_t rb = *RowBytes(type, cols);
  w->bytes.resize(rows * rb);
  w->values.resize(rows * cols);
  const std::vector<float> src = Random(rng, rows * cols);
  for (int64_t r = 0; r < rows; ++r) {
    QuantizeRow(type, src.data() + r * cols, w->bytes.data() + r * rb, cols);
    DequantizeRow(type, w->bytes.data() + r * rb, w->values.data() + r * cols, cols);
  }
  absl::StatusOr<std::unique_ptr<Weight>> loaded =
      b.LoadWeight({type, rows, cols, w->bytes.data()});
  EXPECT_TRUE(loaded.ok()) << loaded.status();
  w->weight = *std::move(loaded);
  return w;
}

class CpuBackendTest : public testing::TestWithParam<Isa> {
 protected:
  void SetUp() override { backend_ = MakeBackend(GetParam(), 2); }
  std::unique_ptr<Backend> backend_;
  std::mt19937 rng_{1234};
};

TEST_P(CpuBackendTest, NameAndAlignment) {
  EXPECT_EQ(backend_->name(),
            absl::StrCat("cpu-", std::string(IsaName(GetParam())), " (2 threads)"));
  for (int64_t n : {0, 1, 3, 17, 1000}) {
    auto buf = backend_->Alloc(n);
    EXPECT_EQ(buf->size(), n);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(buf->data()) % 64, 0u);
  }
}

// MatMul against the F32 product of the dequantized weights, computed in
// double.
//
// Tolerance: float weights: the float summation error, at most ~k * eps * sum|w
// x|. Quantized weights: x is rounded to int8 blocks with scale d = amax(block)
// / 127 (blocks of 32; of 256 for Q4_K), so each x value moves by at most d / 2
// and the output by at most sum over blocks of d/2 * sum|w| in that block; plus
// the float summation error.
TEST_P(CpuBackendTest, MatMulMatchesReference) {
  struct Shape {
    DType type;
    int64_t rows, cols;
  };
  const std::vector<Shape> shapes = {
      {DType::kF32, 37, 67},   {DType::kF32, 5, 16},    {DType::kF16, 37, 67},
      {DType::kF16, 70, 256},  {DType::kBF16, 37, 67},  {DType::kBF16, 9, 40},
      {DType::kQ8_0, 37, 96},  {DType::kQ8_0, 70, 256}, {DType::kQ4_0, 37, 96},
      {DType::kQ4_0, 70, 256}, {DType::kQ4_K, 37, 256}, {DType::kQ4_K, 19, 512},
      // Several column chunks of the many-row (panel) kernels, with tails.
      {DType::kF32, 29, 530},  {DType::kF16, 29, 1031}, {DType::kQ8_0, 29, 1120},
      {DType::kQ4_0, 29, 1120},
  };
  for (const Shape& s : shapes) {
    auto w = MakeWeight(*backend_, s.type, s.rows, s.cols, rng_);
    auto bias = MakeWeight(*backend_, DType::kF32, 1, s.rows, rng_);
    for (int64_t n : {1, 3, 17, 64}) {
      for (bool with_bias : {false, true}) {
        SCOPED_TRACE(absl::StrCat(std::string(DTypeName(s.type)), " ", s.rows, "x", s.cols,
                                  " n=", n, " bias=", with_bias));
        const std::vector<float> x = Random(rng_, n * s.cols, -2, 2);
        auto xb = Upload(*backend_, x);
        auto yb = Poisoned(*backend_, n * s.rows);
        backend_->MatMul(*w->weight, *xb, n, *yb, with_bias ? bias->weight.get() : nullptr);
        const std::vector<float> y = Download(*backend_, *yb, n * s.rows);
        const XFormat fmt = MatMulXFormat(s.type);
        const int64_t qblock = fmt == XFormat::kQ8 ? 32 : fmt == XFormat::kQ8K ? 256 : 0;
        for (int64_t i = 0; i < n; ++i) {
          for (int64_t r = 0; r < s.rows; ++r) {
            const float* xr = &x[i * s.cols];
            const float* wr = &w->values[r * s.cols];
            double ref = with_bias ? bias->values[r] : 0.0, mag = 0, qerr = 0;
            for (int64_t c = 0; c < s.cols; ++c) {
              ref += double{xr[c]} * wr[c];
              mag += std::fabs(double{xr[c]} * wr[c]);
            }
            for (int64_t b0 = 0; qblock > 0 && b0 < s.cols; b0 += qblock) {
              double amax = 0, wsum = 0;
              for (int64_t c = b0; c < b0 + qblock; ++c) {
                amax = std::max(amax, std::fabs(double{xr[c]}));
                wsum += std::fabs(wr[c]);
              }
              qerr += amax / 254.0 * wsum;
            }
            const double tol = qerr * 1.001 + 4e-7 * s.cols * mag + 1e-5;
            ASSERT_NEAR(y[i * s.rows + r], ref, tol) << "i=" << i << " r=" << r;
          }
        }
      }
    }
  }
}

TEST_P(CpuBackendTest, QuantizedMatMulIsMuchCloserThanTheBound) {
  // The bound above is worst case; typical errors are far smaller. Guards
  // against a kernel that is merely "within a loose tolerance" (e.g. a wrong
  // sub-block scale on a few values).
  for (DType type : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_K}) {
    auto w = MakeWeight(*backend_, type, 64, 1024, rng_);
    const std::vector<float> x = Random(rng_, 1024);
    auto xb = Upload(*backend_, x);
    auto yb = Poisoned(*backend_, 64);
    backend_->MatMul(*w->weight, *xb, 1, *yb);
    const std::vector<float> y = Download(*backend_, *yb, 64);
    double err2 = 0, ref2 = 0;
    for (int r = 0; r < 64; ++r) {
      double ref = 0;
      for (int c = 0; c < 1024; ++c) ref += double{x[c]} * w->values[r * 1024 + c];
      err2 += (y[r] - ref) * (y[r] - ref);
      ref2 += ref * ref;
    }
    EXPECT_LT(std::sqrt(err2 / ref2), 0.01) << DTypeName(type);
  }
}

TEST_P(CpuBackendTest, GetRowsDequantizes) {
  for (DType type :
       {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0, DType::kQ4_K}) {
    auto w = MakeWeight(*backend_, type, 11, 256, rng_);
    const std::vector<int32_t> ids = {3, 0, 10, 3};
    auto out = Poisoned(*backend_, ids.size() * 256);
    backend_->GetRows(*w->weight, ids, *out);
    const std::vector<float> y = Download(*backend_, *out, ids.size() * 256);
    for (size_t i = 0; i < ids.size(); ++i) {
      for (int c = 0; c < 256; ++c) ASSERT_EQ(y[i * 256 + c], w->values[ids[i] * 256 + c]);
    }
  }
}

TEST_P(CpuBackendTest, GatherRowsCopiesTheWantedRows) {
  const int64_t dim = 67;
  std::vector<float> x(9 * dim);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i) * 0.5f;
  auto xb = backend_->Alloc(x.size());
  backend_->CopyFromHost(x.data(), x.size(), *xb);
  const std::vector<int32_t> rows = {8, 0, 3, 3};
  auto out = Poisoned(*backend_, rows.size() * dim + 5);
  backend_->GatherRows(*xb, rows, dim, *out);
  const std::vector<float> y = Download(*backend_, *out, rows.size() * dim + 5);
  for (size_t i = 0; i < rows.size(); ++i) {
    for (int64_t c = 0; c < dim; ++c) ASSERT_EQ(y[i * dim + c], x[rows[i] * dim + c]);
  }
  for (int64_t e = rows.size() * dim; e < static_cast<int64_t>(y.size()); ++e) {
    EXPECT_TRUE(std::isnan(y[e])) << "element " << e << " past the gathered rows was written";
  }
}

TEST_P(CpuBackendTest, TopKPenalisesThenRanksEachRow) {
  const int64_t cols = 6;
  const float inf = std::numeric_limits<float>::infinity();
  // Row 0: ties (2.0 at ids 1 and 3) go to the lower id; the penalty divides a positive logit
  // and multiplies a negative one. Row 1: a NaN and an infinity are counted, not ranked, and
  // its 3 finite logits leave the last of k = 4 padded.
  std::vector<float> x = {0.5f, 2.0f, -1.0f, 2.0f, 3.0f, 1.0f,
                          1.0f, std::nanf(""), -inf, 0.25f, 0.5f, -inf};
  auto logits = backend_->Alloc(x.size());
  backend_->CopyFromHost(x.data(), x.size(), *logits);
  const std::vector<float> temp = {1.0f, 0.0f}, penalty = {2.0f, 1.0f};
  const std::vector<int32_t> pen_ids = {4, 2, 99}, starts = {0, 3, 3};
  TopKRequest r;
  r.k = 4;
  r.sum_temperature = temp;
  r.penalty = penalty;
  r.penalty_ids = pen_ids;
  r.penalty_starts = starts;
  TopKRows out;
  backend_->TopK(*logits, 2, cols, r, &out);
  EXPECT_EQ(out.k, 4);
  // Row 0 after the penalty: {0.5, 2, -2, 2, 1.5, 1}.
  EXPECT_EQ(out.ids, (std::vector<int32_t>{1, 3, 4, 5, 0, 4, 3, -1}));
  EXPECT_EQ(std::vector<float>(out.values.begin(), out.values.begin() + 4),
            (std::vector<float>{2.0f, 2.0f, 1.5f, 1.0f}));
  EXPECT_EQ(out.values[7], -inf);
  EXPECT_EQ(out.nonfinite, (std::vector<int32_t>{0, 3}));
  double want = 0;
  for (float v : {0.5f, 2.0f, -2.0f, 2.0f, 1.5f, 1.0f}) want += std::exp(v - 2.0f);
  EXPECT_NEAR(out.sum_exp[0], want, 1e-6);
  EXPECT_EQ(out.sum_exp[1], 0.0);  // temperature 0: not asked for
  // The penalty was applied in place (the sampler reads whole rows from there).
  const std::vector<float> after = Download(*backend_, *logits, 6);
  EXPECT_EQ(after[4], 1.5f);
  EXPECT_EQ(after[2], -2.0f);
}

TEST_P(CpuBackendTest, MatMulsSwiGluAndAddRmsNormEqualTheirParts) {
  const int64_t cols = 128, n = 3;
  auto a = MakeWeight(*backend_, DType::kF16, 40, cols, rng_);
  auto b = MakeWeight(*backend_, DType::kF16, 24, cols, rng_);
  std::vector<float> x(n * cols);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.37 * i);
  auto xb = backend_->Alloc(x.size());
  backend_->CopyFromHost(x.data(), x.size(), *xb);
  auto ya = Poisoned(*backend_, n * 40), yb = Poisoned(*backend_, n * 24);
  auto za = Poisoned(*backend_, n * 40), zb = Poisoned(*backend_, n * 24);
  const Weight* ws[] = {a->weight.get(), b->weight.get()};
  Buffer* ys[] = {ya.get(), yb.get()};
  backend_->MatMuls(ws, *xb, n, ys);
  backend_->MatMul(*a->weight, *xb, n, *za);
  backend_->MatMul(*b->weight, *xb, n, *zb);
  EXPECT_EQ(Download(*backend_, *ya, n * 40), Download(*backend_, *za, n * 40));
  EXPECT_EQ(Download(*backend_, *yb, n * 24), Download(*backend_, *zb, n * 24));

  // MatMulSwiGlu: gate = silu(x * gate^T) * (x * up^T), the bits of the two MatMuls and SiluMul.
  auto up = MakeWeight(*backend_, DType::kF16, 40, cols, rng_);
  auto g1 = Poisoned(*backend_, n * 40), u1 = Poisoned(*backend_, n * 40);
  auto g2 = Poisoned(*backend_, n * 40), u2 = Poisoned(*backend_, n * 40);
  backend_->MatMulSwiGlu(*a->weight, *up->weight, *xb, n, *g1, *u1);
  backend_->MatMul(*a->weight, *xb, n, *g2);
  backend_->MatMul(*up->weight, *xb, n, *u2);
  backend_->SiluMul(*g2, *u2, n * 40);
  const std::vector<float> fused = Download(*backend_, *g1, n * 40);
  EXPECT_EQ(fused, Download(*backend_, *g2, n * 40));
  EXPECT_FALSE(std::isnan(fused[0]));
  EXPECT_NE(fused, Download(*backend_, *ya, n * 40));  // not just the gate projection

  std::vector<float> w(cols, 1.25f), o(n * cols, 0.5f);
  auto wt = backend_->LoadWeight({DType::kF32, 1, cols, w.data()});
  ASSERT_TRUE(wt.ok());
  auto ob = backend_->Alloc(o.size());
  backend_->CopyFromHost(o.data(), o.size(), *ob);
  auto x1 = backend_->Alloc(x.size()), x2 = backend_->Alloc(x.size());
  backend_->CopyFromHost(x.data(), x.size(), *x1);
  backend_->CopyFromHost(x.data(), x.size(), *x2);
  auto h1 = Poisoned(*backend_, n * cols), h2 = Poisoned(*backend_, n * cols);
  backend_->AddRmsNorm(*ob, n, cols, *x1, **wt, 1e-5f, *h1);
  backend_->Add(*ob, n * cols, *x2);
  backend_->RmsNorm(*x2, n, cols, **wt, 1e-5f, *h2);
  EXPECT_EQ(Download(*backend_, *x1, n * cols), Download(*backend_, *x2, n * cols));
  EXPECT_EQ(Download(*backend_, *h1, n * cols), Download(*backend_, *h2, n * cols));
  EXPECT_FALSE(std::isnan(Download(*backend_, *h1, n * cols)[0]));
}

TEST_P(CpuBackendTest, ElementwiseOps) {
  for (int64_t n : {1, 17, 100003}) {
    const std::vector<float> a = Random(rng_, n, -4, 4), b = Random(rng_, n, -4, 4);
    auto ab = Upload(*backend_, a);
    auto bb = Upload(*backend_, b);
    backend_->Add(*ab, n, *bb);
    std::vector<float> y = Download(*backend_, *bb, n);
    for (int64_t i = 0; i < n; ++i) ASSERT_FLOAT_EQ(y[i], a[i] + b[i]);

    auto gate = Upload(*backend_, a);
    auto up = Upload(*backend_, b);
    backend_->SiluMul(*gate, *up, n);
    y = Download(*backend_, *gate, n);
    for (int64_t i = 0; i < n; ++i) {
      const double ref = a[i] / (1 + std::exp(-double{a[i]})) * b[i];
      ASSERT_NEAR(y[i], ref, 1e-5 * (1 + std::fabs(ref)));
    }

    auto g = Upload(*backend_, a);
    backend_->Gelu(*g, n);
    y = Download(*backend_, *g, n);
    for (int64_t i = 0; i < n; ++i) {
      const double ref = 0.5 * a[i] * (1 + std::erf(a[i] / std::sqrt(2.0)));
      ASSERT_NEAR(y[i], ref, 1e-5 * (1 + std::fabs(ref)));
    }
  }
}

// LayerNorm of rows far from zero (mean 1e4, spread 1): the variance is not lost to cancellation.
TEST_P(CpuBackendTest, LayerNormOfLargeOffsets) {
  const int64_t dim = 777;
  auto gamma = MakeWeight(*backend_, DType::kF32, 1, dim, rng_);
  auto beta = MakeWeight(*backend_, DType::kF32, 1, dim, rng_);
  std::vector<float> x = Random(rng_, dim, -1, 1);
  for (float& v : x) v += 1e4f;
  auto xb = Upload(*backend_, x);
  backend_->LayerNorm(*xb, 1, dim, *gamma->weight, *beta->weight, 1e-5f, *xb);  // in place
  const std::vector<float> y = Download(*backend_, *xb, dim);
  double mean = 0, var = 0;
  for (float v : x) mean += v;
  mean /= dim;
  for (float v : x) var += (v - mean) * (v - mean);
  var /= dim;
  for (int64_t c = 0; c < dim; ++c) {
    const double ref = (x[c] - mean) / std::sqrt(var + 1e-5) * gamma->values[c] + beta->values[c];
    ASSERT_NEAR(y[c], ref, 2e-3 * (1 + std::fabs(ref))) << c;  // x itself is rounded at 1e-3
  }
}

TEST_P(CpuBackendTest, AddRowAndNorms) {
  for (DType wtype : {DType::kF32, DType::kF16}) {
    for (int64_t n : {1, 3, 64}) {
      const int64_t dim = 300;
      auto row = MakeWeight(*backend_, wtype, 1, dim, rng_);
      auto beta = MakeWeight(*backend_, wtype, 1, dim, rng_);
      const std::vector<float> x = Random(rng_, n * dim, -3, 3);

      auto yb = Upload(*backend_, x);
      backend_->AddRow(*row->weight, n, *yb);
      std::vector<float> y = Download(*backend_, *yb, n * dim);
      for (int64_t i = 0; i < n * dim; ++i) ASSERT_FLOAT_EQ(y[i], x[i] + row->values[i % dim]);

      // RmsNorm in place (out aliases x).
      auto rb = Upload(*backend_, x);
      backend_->RmsNorm(*rb, n, dim, *row->weight, 1e-5f, *rb);
      y = Download(*backend_, *rb, n * dim);
      for (int64_t i = 0; i < n; ++i) {
        double ss = 0;
        for (int64_t c = 0; c < dim; ++c) ss += double{x[i * dim + c]} * x[i * dim + c];
        const double scale = 1 / std::sqrt(ss / dim + 1e-5);
        for (int64_t c = 0; c < dim; ++c) {
          const double ref = x[i * dim + c] * scale * row->values[c];
          ASSERT_NEAR(y[i * dim + c], ref, 1e-5 * (1 + std::fabs(ref)));
        }
      }

      auto lb = Upload(*backend_, x);
      auto lo = Poisoned(*backend_, n * dim);
      backend_->LayerNorm(*lb, n, dim, *row->weight, *beta->weight, 1e-5f, *lo);
      y = Download(*backend_, *lo, n * dim);
      for (int64_t i = 0; i < n; ++i) {
        double mean = 0, var = 0;
        for (int64_t c = 0; c < dim; ++c) mean += x[i * dim + c];
        mean /= dim;
        for (int64_t c = 0; c < dim; ++c) var += (x[i * dim + c] - mean) * (x[i * dim + c] - mean);
        var /= dim;
        for (int64_t c = 0; c < dim; ++c) {
          const double ref =
              (x[i * dim + c] - mean) / std::sqrt(var + 1e-5) * row->values[c] + beta->values[c];
          ASSERT_NEAR(y[i * dim + c], ref, 1e-5 * (1 + std::fabs(ref)));
        }
      }
    }
  }
}

TEST_P(CpuBackendTest, Rope) {
  const int heads = 3, hd = 12;
  const std::vector<int32_t> pos = {0, 1, 7, 3000};
  for (RopeStyle style : {RopeStyle::kNormal, RopeStyle::kNeox}) {
    for (int rd : {0, 8}) {
      RopeParams p;
      p.style = style;
      p.rotary_dim = rd;
      p.theta = 10000.0f;
      p.freq_scale = 0.5f;
      const int rot = rd == 0 ? hd : rd;
      const std::vector<float> x = Random(rng_, pos.size() * heads * hd);
      auto xb = Upload(*backend_, x);
      backend_->Rope(*xb, pos, heads, hd, p);
      const std::vector<float> y = Download(*backend_, *xb, x.size());
      for (size_t t = 0; t < pos.size(); ++t) {
        for (int h = 0; h < heads; ++h) {
          const float* xv = &x[(t * heads + h) * hd];
          const float* yv = &y[(t * heads + h) * hd];
          std::vector<double> ref(xv, xv + hd);
          for (int i = 0; i < rot / 2; ++i) {
            const double ang = pos[t] * 0.5 * std::pow(10000.0, -2.0 * i / rot);
            const int a = style == RopeStyle::kNormal ? 2 * i : i;
            const int b = style == RopeStyle::kNormal ? 2 * i + 1 : i + rot / 2;
            ref[a] = xv[a] * std::cos(ang) - xv[b] * std::sin(ang);
            ref[b] = xv[a] * std::sin(ang) + xv[b] * std::cos(ang);
          }
          for (int c = 0; c < hd; ++c)
            ASSERT_NEAR(yv[c], ref[c], 2e-6) << t << " " << h << " " << c;
        }
      }
    }
  }
}

// Attention reference: naive softmax in double over F16-rounded keys and values
// (the cache stores F16, so rounding them is part of the specified behaviour,
// not an error).
struct AttnCase {
  int num_heads = 6, kv_heads = 2, hd = 20, block_size = 4, num_blocks = 16, layers = 2;
};

std::vector<float> RoundF16(std::vector<float> v) {
  for (float& f : v) f = F16ToF32(F32ToF16(f));
  return v;
}

TEST_P(CpuBackendTest, PagedAttentionGqaWindowsAndBlockTables) {
  const AttnCase ac;
  KvCacheShape shape{ac.layers, ac.num_blocks, ac.block_size, ac.kv_heads, ac.hd};
  auto cache = backend_->AllocKvCache(shape);
  ASSERT_TRUE(cache.ok()) << cache.status();
  const int kd = ac.kv_heads * ac.hd, qd = ac.num_heads * ac.hd;
  // Three sequences of lengths 1, 7 and 13 in scattered blocks.
  const std::vector<int> lengths = {1, 7, 13};
  const std::vector<std::vector<int32_t>> tables = {{9}, {4, 15}, {2, 11, 0, 7}};
  std::vector<std::vector<float>> keys(3), values(3);
  for (int s = 0; s < 3; ++s) {
    keys[s] = Random(rng_, lengths[s] * kd, -2, 2);
    values[s] = Random(rng_, lengths[s] * kd, -2, 2);
    std::vector<int32_t> slots;
    for (int p = 0; p < lengths[s]; ++p) {
      slots.push_back(tables[s][p / ac.block_size] * ac.block_size + p % ac.block_size);
    }
    auto kb = Upload(*backend_, keys[s]);
    auto vb = Upload(*backend_, values[s]);
    backend_->WriteKv(**cache, 1, *kb, *vb, slots);
    // Different data in layer 0 at the same slots: layer 1 must not read it.
    auto junk = Upload(*backend_, Random(rng_, lengths[s] * kd, 50, 60));
    backend_->WriteKv(**cache, 0, *junk, *junk, slots);
    keys[s] = RoundF16(keys[s]);
    values[s] = RoundF16(values[s]);
  }
  // Decode tokens of every sequence plus all positions of the last one
  // (prefill-like).
  std::vector<int32_t> token_seq = {0, 1, 2}, token_pos = {0, 6, 12};
  for (int p = 0; p < 13; ++p) {
    token_seq.push_back(2);
    token_pos.push_back(p);
  }
  const int64_t tokens = token_seq.size();
  const std::vector<float> q = Random(rng_, tokens * qd, -1, 1);
  auto qb = Upload(*backend_, q);
  for (int window : {0, 4}) {
    PagedAttentionBatch batch;
    batch.token_seq = token_seq;
    batch.token_pos = token_pos;
    for (const auto& t : tables) batch.block_tables.push_back(t);
    batch.sliding_window = window;
    const float scale = 1.0f / std::sqrt(float(ac.hd));
    auto out = Poisoned(*backend_, tokens * qd);
    backend_->PagedAttention(**cache, 1, *qb, batch, ac.num_heads, scale, *out);
    const std::vector<float> y = Download(*backend_, *out, tokens * qd);
    for (int64_t t = 0; t < tokens; ++t) {
      const int s = token_seq[t], pos = token_pos[t];
      const int start = window > 0 ? std::max(0, pos - window + 1) : 0;
      for (int h = 0; h < ac.num_heads; ++h) {
        const int kvh = h / (ac.num_heads / ac.kv_heads);
        std::vector<double> sc;
        double mx = -1e300;
        for (int p = start; p <= pos; ++p) {
          double d = 0;
          for (int c = 0; c < ac.hd; ++c) {
            d += double{q[t * qd + h * ac.hd + c]} * keys[s][p * kd + kvh * ac.hd + c];
          }
          sc.push_back(d * scale);
          mx = std::max(mx, sc.back());
        }
        double sum = 0;
        for (double& v : sc) sum += (v = std::exp(v - mx));
        for (int c = 0; c < ac.hd; ++c) {
          double ref = 0;
          for (int p = start; p <= pos; ++p) {
            ref += sc[p - start] / sum * values[s][p * kd + kvh * ac.hd + c];
          }
          ASSERT_NEAR(y[t * qd + h * ac.hd + c], ref, 2e-5)
              << "window=" << window << " t=" << t << " h=" << h << " c=" << c;
        }
      }
    }
  }
}

TEST_P(CpuBackendTest, DenseAttention) {
  struct Case {
    int heads, hd;
    std::vector<int32_t> starts;
  };
  // Lengths 3, 0, 7, 1 (head size 19: no whole vector); BERT's head sizes over sequences longer
  // than a query block and not a multiple of the key vectors; head size 40 (vector tails).
  const std::vector<Case> cases = {
      {3, 19, {0, 3, 3, 10, 11}}, {2, 32, {0, 64, 141}}, {2, 64, {0, 37, 167}}, {1, 40, {0, 33}}};
  for (const Case& cs : cases) {
    SCOPED_TRACE(absl::StrCat("head size ", cs.hd));
    const int heads = cs.heads, hd = cs.hd, width = heads * hd;
    const std::vector<int32_t>& starts = cs.starts;
    const int tokens = starts.back();
    const std::vector<float> q = Random(rng_, tokens * width, -2, 2),
                             k = Random(rng_, tokens * width, -2, 2),
                             v = Random(rng_, tokens * width);
    auto qb = Upload(*backend_, q);
    auto kb = Upload(*backend_, k);
    auto vb = Upload(*backend_, v);
    auto out = Poisoned(*backend_, tokens * width);
    backend_->DenseAttention(*qb, *kb, *vb, starts, heads, hd, 0.3f, *out);
    const std::vector<float> y = Download(*backend_, *out, tokens * width);
    for (size_t s = 0; s + 1 < starts.size(); ++s) {
      for (int t = starts[s]; t < starts[s + 1]; ++t) {
        for (int h = 0; h < heads; ++h) {
          std::vector<double> sc;
          double mx = -1e300, sum = 0;
          for (int j = starts[s]; j < starts[s + 1]; ++j) {
            double d = 0;
            for (int c = 0; c < hd; ++c)
              d += double{q[t * width + h * hd + c]} * k[j * width + h * hd + c];
            sc.push_back(d * 0.3);
            mx = std::max(mx, sc.back());
          }
          for (double& e : sc) sum += (e = std::exp(e - mx));
          for (int c = 0; c < hd; ++c) {
            double ref = 0;
            for (int j = starts[s]; j < starts[s + 1]; ++j) {
              ref += sc[j - starts[s]] / sum * v[j * width + h * hd + c];
            }
            ASSERT_NEAR(y[t * width + h * hd + c], ref, 2e-5) << t << " " << h << " " << c;
          }
        }
      }
    }
  }
}

// GELU over its whole range, against erf in double: within 2e-7 * |x| + 1e-7 * |gelu(x)| (the
// erfc approximation's 1.5e-7 plus float rounding), the infinities and NaN carried through.
TEST_P(CpuBackendTest, GeluIsAccurateEverywhere) {
  std::vector<float> x;
  for (float f = -12.0f; f <= 12.0f; f += 1.0f / 512) x.push_back(f);
  for (float f : {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-4f, -1e-4f, 30.0f, -30.0f, 1e4f, -1e4f}) {
    x.push_back(f);
  }
  const float inf = std::numeric_limits<float>::infinity();
  x.push_back(inf);
  x.push_back(-inf);
  x.push_back(kNaN);
  auto b = Upload(*backend_, x);
  backend_->Gelu(*b, static_cast<int64_t>(x.size()));
  const std::vector<float> y = Download(*backend_, *b, static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    if (std::isnan(x[i])) {
      EXPECT_TRUE(std::isnan(y[i]));
      continue;
    }
    if (std::isinf(x[i])) {
      if (x[i] > 0) EXPECT_EQ(y[i], inf);
      continue;  // gelu(-inf) = -inf * 0: NaN, as the erf form gives
    }
    const double ref = 0.5 * x[i] * (1 + std::erf(double{x[i]} / std::sqrt(2.0)));
    ASSERT_NEAR(y[i], ref, 2e-7 * std::fabs(x[i]) + 1e-7 * std::fabs(ref) + 1e-37) << "x=" << x[i];
  }
}

TEST_P(CpuBackendTest, ResultsDoNotDependOnThreadCount) {
  std::vector<std::vector<float>> results;
  for (int threads : {1, 2, 3}) {
    auto b = MakeBackend(GetParam(), threads);
    std::mt19937 rng(99);
    std::vector<float> all;
    for (DType type :
         {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0, DType::kQ4_K}) {
      auto w = MakeWeight(*b, type, 133, 512, rng);
      for (int64_t n : {1, 5, 70}) {
        auto xb = Upload(*b, Random(rng, n * 512));
        auto yb = Poisoned(*b, n * 133);
        b->MatMul(*w->weight, *xb, n, *yb);
        const std::vector<float> y = Download(*b, *yb, n * 133);
        all.insert(all.end(), y.begin(), y.end());
      }
    }
    // Ops that go parallel over rows / tokens x heads at these sizes.
    const int64_t rows = 70, dim = 512;
    auto norm_w = MakeWeight(*b, DType::kF32, 1, dim, rng);
    auto xb = Upload(*b, Random(rng, rows * dim));
    b->RmsNorm(*xb, rows, dim, *norm_w->weight, 1e-6f, *xb);
    b->Rope(*xb, std::vector<int32_t>(rows, 5), 8, 64, RopeParams{});
    auto kb = Upload(*b, Random(rng, rows * dim));
    auto vb = Upload(*b, Random(rng, rows * dim));
    auto ob = Poisoned(*b, rows * dim);
    b->DenseAttention(*xb, *kb, *vb, {0, 30, 70}, 8, 64, 0.125f, *ob);
    const std::vector<float> y = Download(*b, *ob, rows * dim);
    all.insert(all.end(), y.begin(), y.end());
    results.push_back(all);
  }
  ASSERT_EQ(results[0].size(), results[1].size());
  for (size_t i = 0; i < results[0].size(); ++i) {
    ASSERT_EQ(results[0][i], results[1][i]) << i;
    ASSERT_EQ(results[0][i], results[2][i]) << i;
  }
}

// Float weights: a row's outputs are the same bits whether it is multiplied alone (the decode
// tile) or in a batch large enough for the panel path, so an embedding or a prompt's logits do not
// depend on what was batched with it. Shapes: one column chunk, several with a tail, BERT's.
TEST_P(CpuBackendTest, FloatMatMulDoesNotDependOnBatchSize) {
  for (DType type : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (auto [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{
             {29, 1031}, {53, 384}, {40, 1536}, {17, 16}, {30, 200}}) {
      SCOPED_TRACE(absl::StrCat(std::string(DTypeName(type)), " ", rows, "x", cols));
      auto w = MakeWeight(*backend_, type, rows, cols, rng_);
      const int64_t n = 131;  // two panel chunks of activation rows and a tail
      const std::vector<float> x = Random(rng_, n * cols, -2, 2);
      auto xb = Upload(*backend_, x);
      auto yb = Poisoned(*backend_, n * rows);
      backend_->MatMul(*w->weight, *xb, n, *yb);
      const std::vector<float> batch = Download(*backend_, *yb, n * rows);
      for (int64_t i : {int64_t{0}, int64_t{1}, int64_t{66}, n - 1}) {
        auto x1 = Upload(*backend_, std::vector<float>(x.begin() + i * cols,
                                                       x.begin() + (i + 1) * cols));
        auto y1 = Poisoned(*backend_, rows);
        backend_->MatMul(*w->weight, *x1, 1, *y1);
        const std::vector<float> one = Download(*backend_, *y1, rows);
        for (int64_t r = 0; r < rows; ++r) {
          ASSERT_EQ(absl::bit_cast<uint32_t>(batch[i * rows + r]), absl::bit_cast<uint32_t>(one[r]))
              << "row " << i << " output " << r << ": " << batch[i * rows + r] << " vs " << one[r];
        }
      }
    }
  }
}

TEST_P(CpuBackendTest, LoadWeightAndCacheValidation) {
  std::vector<uint8_t> data(1024);
  EXPECT_EQ(backend_->LoadWeight({DType::kQ8_0, 2, 33, data.data()}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(backend_->LoadWeight({DType::kF32, 2, 4, nullptr}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(backend_->LoadWeight({DType::kF32, 0, 4, data.data()}).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(backend_->LoadWeight({static_cast<DType>(99), 1, 4, data.data()}).status().code(),
            absl::StatusCode::kInvalidArgument);
  absl::StatusOr<std::unique_ptr<Weight>> ok =
      backend_->LoadWeight({DType::kQ4_0, 2, 64, data.data()});
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ((*ok)->rows(), 2);
  EXPECT_EQ((*ok)->cols(), 64);
  EXPECT_EQ(backend_->AllocKvCache({1, 0, 16, 2, 64}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(AllIsas, CpuBackendTest, testing::ValuesIn(SupportedIsas()),
                         [](const testing::TestParamInfo<Isa>& info) {
                           return std::string(IsaName(info.param));
                         });

TEST(CpuBackendOptionsTest, RejectsNegativeThreads) {
  CpuBackendOptions options;
  options.num_threads = -2;
  EXPECT_EQ(CreateCpuBackend(options).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(CpuBackendOptionsTest, AllLevelsAvailableOnThisMachineAreTested) {
  // The scalar level is always there; document what this run covered.
  std::string levels;
  for (Isa isa : SupportedIsas()) levels += std::string(IsaName(isa)) + " ";
  RecordProperty("isa_levels", levels);
  EXPECT_TRUE(IsaSupported(Isa::kScalar));
}

}  // namespace
}  // namespace tessera::engine::cpu
