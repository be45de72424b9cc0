// The kernels of one instruction-set level. This file is compiled three times
// (see BUILD.bazel): with AVX-512 flags (F, BW, VL, VNNI, F16C, FMA), with AVX2
// + FMA + F16C, and without SIMD flags, each time with TESSERA_CPU_ISA_NS
// naming the namespace and TESSERA_CPU_ISA_ENUM the level. The code picks its
// vector paths with the compiler's feature macros.
//
// MatMul tiles: a tile computes NX rows of x against NW rows of w, loading each
// weight block once for the NX activation rows (register blocking for prefill;
// for decode NX = 1 and the NW rows give independent dependency chains).
// Quantized weights are multiplied as integers against activations quantized to
// int8 (Q8 rows / BlockQ8KX): vpdpbusd (AVX-512 VNNI on 256-bit vectors; on Zen
// 4 the 512-bit form is double-pumped, so 256 bits lose nothing and match the
// 32-value blocks) or vpmaddubsw + vpmaddwd on AVX2.
#include <immintrin.h>

#include <cmath>
#include <cstring>
#include <type_traits>

#include "engine/backend/cpu/kernels.h"
#include "engine/model/dtype.h"

#ifndef TESSERA_CPU_ISA_NS
#error "TESSERA_CPU_ISA_NS must be defined"
#endif

namespace tessera::engine::cpu {
namespace TESSERA_CPU_ISA_NS {
namespace {

#if defined(__AVX512F__) && defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define TESSERA_VNNI 1
#endif
#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#define TESSERA_SIMD 1
#endif

// Local min/max: std:: templates instantiated here would be COMDAT symbols
// shared with the copies compiled for other levels, and the linker could keep
// an AVX-512 instance for the scalar path.
template <typename T>
inline T Min(T a, T b) {
  return b < a ? b : a;
}
template <typename T>
inline T Max(T a, T b) {
  return a < b ? b : a;
}

// Defined here rather than in kernels.h: an inline function in a header is one
// COMDAT symbol for all the per-level copies, and the linker keeps any one of
// them.
inline Q8RowView ViewQ8Row(const void* row, int64_t k) {
  const auto* p = static_cast<const uint8_t*>(row);
  return {reinterpret_cast<const int8_t*>(p), reinterpret_cast<const float*>(p + k),
          reinterpret_cast<const int32_t*>(p + k + k / 32 * sizeof(float))};
}

// ---------------------------------------------------------------------------------------------
// Float vectors: 16 lanes (AVX-512), 8 (AVX2) or 1 (scalar).
#if defined(__AVX512F__)
constexpr int kW = 16;
using VF = __m512;
inline VF VZero() { return _mm512_setzero_ps(); }
inline VF VSet1(float a) { return _mm512_set1_ps(a); }
inline VF VLoad(const float* p) { return _mm512_loadu_ps(p); }
inline void VStore(float* p, VF v) { _mm512_storeu_ps(p, v); }
inline VF VLoadF16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline VF VLoadBF16(const uint16_t* p) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(
      _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))), 16));
}
inline void VStoreF16(uint16_t* p, VF v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p),
                      _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}
inline VF VFma(VF a, VF b, VF c) { return _mm512_fmadd_ps(a, b, c); }
inline float VSum(VF v) { return _mm512_reduce_add_ps(v); }
#elif defined(TESSERA_SIMD)
constexpr int kW = 8;
using VF = __m256;
inline VF VZero() { return _mm256_setzero_ps(); }
inline VF VSet1(float a) { return _mm256_set1_ps(a); }
inline VF VLoad(const float* p) { return _mm256_loadu_ps(p); }
inline void VStore(float* p, VF v) { _mm256_storeu_ps(p, v); }
inline VF VLoadF16(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline VF VLoadBF16(const uint16_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(
      _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
}
inline void VStoreF16(uint16_t* p, VF v) {
  _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
}
inline VF VFma(VF a, VF b, VF c) { return _mm256_fmadd_ps(a, b, c); }
inline float VSum(VF v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#else
constexpr int kW = 1;
using VF = float;
inline VF VZero() { return 0.0f; }
inline VF VSet1(float a) { return a; }
inline VF VLoad(const float* p) { return *p; }
inline void VStore(float* p, VF v) { *p = v; }
inline VF VLoadF16(const uint16_t* p) { return F16ToF32(*p); }
inline VF VLoadBF16(const uint16_t* p) { return BF16ToF32(*p); }
inline void VStoreF16(uint16_t* p, VF v) { *p = F32ToF16(v); }
inline VF VFma(VF a, VF b, VF c) { return a * b + c; }
inline float VSum(VF v) { return v; }
#endif

inline float Half(uint16_t h) {
#if defined(TESSERA_SIMD)
  return _cvtsh_ss(h);
#else
  return F16ToF32(h);
#endif
}

#if defined(TESSERA_SIMD)
// Sum over 4-byte groups of u8 * s8 into int32 lanes, added to acc.
inline __m256i Dp(__m256i acc, __m256i u, __m256i s) {
#if defined(TESSERA_VNNI)
  return _mm256_dpbusd_epi32(acc, u, s);
#else
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
#endif
}
inline float HSum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
#endif

// ---------------------------------------------------------------------------------------------
// MatMul tiles.

constexpr int kNX = 4;  // activation rows per tile
// One activation row against float weights (decode): rows per tile and the prefetch distance.
// Measured on Zen 5 (2 threads, 14336 x 4096 F16): 4 rows and the hardware prefetcher alone
// stream 38 GB/s, 8 rows with 512-byte software prefetch 46-52 GB/s, at the read probe's level;
// 12 or 16 rows are slower again.
constexpr int kGemvRows = 8;
constexpr int64_t kGemvPrefetch = 512;
#if defined(__AVX512F__)
constexpr int kNW = 4;  // weight rows per tile (32 vector registers)
#else
constexpr int kNW = 2;  // 16 vector registers
#endif

struct TileArgs {
  const uint8_t* w;  // first weight row of the tile
  size_t wrb;        // weight row bytes
  const uint8_t* x;  // first activation row of the tile
  size_t xrb;        // activation row bytes
  int64_t k;         // columns
  float* y;          // y[0][0] of the tile
  int64_t ldy;
};

template <DType T>
inline VF LoadWVec(const uint8_t* row, int64_t c) {
  if constexpr (T == DType::kF32) return VLoad(reinterpret_cast<const float*>(row) + c);
  if constexpr (T == DType::kF16) return VLoadF16(reinterpret_cast<const uint16_t*>(row) + c);
  if constexpr (T == DType::kBF16) return VLoadBF16(reinterpret_cast<const uint16_t*>(row) + c);
}
template <DType T>
inline float LoadWScalar(const uint8_t* row, int64_t c) {
  if constexpr (T == DType::kF32) return reinterpret_cast<const float*>(row)[c];
  if constexpr (T == DType::kF16) return Half(reinterpret_cast<const uint16_t*>(row)[c]);
  if constexpr (T == DType::kBF16) return BF16ToF32(reinterpret_cast<const uint16_t*>(row)[c]);
}

template <DType T, int NX, int NW>
void FloatTile(const TileArgs& a) {
  const float* x[NX];
  for (int i = 0; i < NX; ++i) x[i] = reinterpret_cast<const float*>(a.x + i * a.xrb);
  const uint8_t* w[NW];
  for (int j = 0; j < NW; ++j) w[j] = a.w + j * a.wrb;
  VF acc[NX][NW];
  for (int i = 0; i < NX; ++i)
    for (int j = 0; j < NW; ++j) acc[i][j] = VZero();
  constexpr int64_t kBytes = T == DType::kF32 ? 4 : 2;  // per weight
  int64_t c = 0;
  for (; c + kW <= a.k; c += kW) {
    VF xv[NX];
    for (int i = 0; i < NX; ++i) xv[i] = VLoad(x[i] + c);
    if constexpr (NX == 1) {
      // Decode: the rows stream from memory; ask for each one's line kGemvPrefetch bytes ahead.
      if ((c * kBytes) % 64 == 0) {
        for (int j = 0; j < NW; ++j) __builtin_prefetch(w[j] + c * kBytes + kGemvPrefetch);
      }
    }
    for (int j = 0; j < NW; ++j) {
      const VF wv = LoadWVec<T>(w[j], c);
      for (int i = 0; i < NX; ++i) acc[i][j] = VFma(xv[i], wv, acc[i][j]);
    }
  }
  for (int i = 0; i < NX; ++i) {
    for (int j = 0; j < NW; ++j) {
      float s = VSum(acc[i][j]);
      for (int64_t cc = c; cc < a.k; ++cc) s += x[i][cc] * LoadWScalar<T>(w[j], cc);
      a.y[i * a.ldy + j] = s;
    }
  }
}

#if defined(TESSERA_SIMD)
inline int32_t HSumI(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}
#endif

#if defined(TESSERA_SIMD)
// r[j] = sum of the 8 int32 lanes of p[j], j < 4.
inline __m128i Reduce4(const __m256i* p) {
  const __m256i u = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
  return _mm_add_epi32(_mm256_castsi256_si128(u), _mm256_extracti128_si256(u, 1));
}
template <typename Block>
inline __m128 Scales4(const Block* b) {
  return _mm_cvtph_ps(_mm_set_epi16(0, 0, 0, 0, b[3].d, b[2].d, b[1].d, b[0].d));
}
inline float HSum4(__m128 s) {
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// One weight block prepared once and multiplied with the blocks of several
// activation rows. Q8_0 with VNNI: vpdpbusd wants an unsigned operand, so x is
// flipped to x + 128 (xor of the sign bit) and the block starts from -128 *
// sum(w), computed once per weight block:
//   sum((x + 128) * w) - 128 * sum(w) = sum(x * w).
// Q8_0 without VNNI: vpmaddubsw saturates at int16, so x + 128 would overflow;
// use |w| * (x * sign(w)) instead. Q4_0: the nibbles are the unsigned operand
// as they are, and the -8 offset is taken off per block with the activation
// sums.
template <DType T>
struct PreparedBlock {
  __m256i a, b;
};
template <DType T>
inline PreparedBlock<T> Prepare(const void* blocks, int64_t i) {
  if constexpr (T == DType::kQ8_0) {
    const __m256i wq = _mm256_loadu_si256(
        reinterpret_cast<const __m256i*>(static_cast<const BlockQ8_0*>(blocks)[i].qs));
#if defined(TESSERA_VNNI)
    const __m256i sum128 = _mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_set1_epi8(-128), wq);
    return {wq, _mm256_sub_epi32(_mm256_setzero_si256(), sum128)};
#else
    return {wq, _mm256_abs_epi8(wq)};
#endif
  } else {
    const __m128i q = _mm_loadu_si128(
        reinterpret_cast<const __m128i*>(static_cast<const BlockQ4_0*>(blocks)[i].qs));
    // Elements 0..15 are the low nibbles, 16..31 the high ones.
    return {_mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F)),
            _mm256_setzero_si256()};
  }
}
// int32 lanes summing to the block's integer dot product (before Q4_0's
// offset).
template <DType T>
inline __m256i DotBlock(const PreparedBlock<T>& w, const int8_t* xq) {
  const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq));
  if constexpr (T == DType::kQ8_0) {
#if defined(TESSERA_VNNI)
    return _mm256_dpbusd_epi32(w.b, _mm256_xor_si256(x, _mm256_set1_epi8(-128)), w.a);
#else
    return Dp(_mm256_setzero_si256(), w.b, _mm256_sign_epi8(x, w.a));
#endif
  } else {
    return Dp(_mm256_setzero_si256(), w.a, x);
  }
}

// One weight row against NX activation rows, 4 blocks at a time: the integer
// dot products of the 4 blocks are reduced into one vector (a lane per block),
// scaled by the 4 weight scales times the 4 activation scales and accumulated
// with one FMA. Each weight block is loaded and prepared once for all NX rows.
template <DType T, int NX>
void QuantRow(const void* wrow, const uint8_t* xrows, size_t xrb, int64_t k, float* y,
              int64_t ldy) {
  using Block = std::conditional_t<T == DType::kQ8_0, BlockQ8_0, BlockQ4_0>;
  const auto* w = static_cast<const Block*>(wrow);
  const int64_t nb = k / 32;
  Q8RowView x[NX];
  __m128 acc[NX];
  for (int i = 0; i < NX; ++i) {
    x[i] = ViewQ8Row(xrows + i * xrb, k);
    acc[i] = _mm_setzero_ps();
  }
  int64_t b = 0;
  for (; b + 4 <= nb; b += 4) {
    __m256i p[NX][4];
    for (int u = 0; u < 4; ++u) {
      const PreparedBlock<T> pw = Prepare<T>(w, b + u);
      for (int i = 0; i < NX; ++i) p[i][u] = DotBlock<T>(pw, x[i].q + 32 * (b + u));
    }
    const __m128 wd = Scales4(w + b);
    for (int i = 0; i < NX; ++i) {
      __m128i r = Reduce4(p[i]);
      if constexpr (T == DType::kQ4_0) {
        r = _mm_sub_epi32(
            r, _mm_slli_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x[i].sum + b)), 3));
      }
      acc[i] = _mm_fmadd_ps(_mm_mul_ps(wd, _mm_loadu_ps(x[i].d + b)), _mm_cvtepi32_ps(r), acc[i]);
    }
  }
  for (int i = 0; i < NX; ++i) {
    float s = HSum4(acc[i]);
    for (int64_t bb = b; bb < nb; ++bb) {
      int32_t d = HSumI(DotBlock<T>(Prepare<T>(w, bb), x[i].q + 32 * bb));
      if constexpr (T == DType::kQ4_0) d -= 8 * x[i].sum[bb];
      s += Half(w[bb].d) * x[i].d[bb] * static_cast<float>(d);
    }
    y[i * ldy] = s;
  }
}

// r[j] = sum of the 8 int32 lanes of p[j].
inline __m256i Reduce8(const __m256i* p) {
  const __m256i u0 =
      _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
  const __m256i u1 =
      _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]), _mm256_hadd_epi32(p[6], p[7]));
  return _mm256_add_epi32(_mm256_permute2x128_si256(u0, u1, 0x20),
                          _mm256_permute2x128_si256(u0, u1, 0x31));
}
template <typename Block>
inline __m256 Scales8(const Block* b) {
  return _mm256_cvtph_ps(
      _mm_set_epi16(b[7].d, b[6].d, b[5].d, b[4].d, b[3].d, b[2].d, b[1].d, b[0].d));
}

// The decode case (one activation row): 8 blocks per step, a lane per block.
// Q8_0 uses |w| * (x * sign(w)) here, one instruction fewer per block than the
// x + 128 form, whose per-weight-block cost only pays off when shared by
// several rows.
template <DType T>
float QuantDot1(const void* wrow, const Q8RowView& x, int64_t k) {
  using Block = std::conditional_t<T == DType::kQ8_0, BlockQ8_0, BlockQ4_0>;
  const auto* w = static_cast<const Block*>(wrow);
  const int64_t nb = k / 32;
  const __m256i lo_mask = _mm256_set1_epi8(0x0F);
  auto dot = [&](int64_t b) {
    const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q + 32 * b));
    if constexpr (T == DType::kQ8_0) {
      const __m256i wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs));
      return Dp(_mm256_setzero_si256(), _mm256_abs_epi8(wq), _mm256_sign_epi8(xq, wq));
    } else {
      const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w[b].qs));
      return Dp(_mm256_setzero_si256(),
                _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), lo_mask), xq);
    }
  };
  __m256 acc = _mm256_setzero_ps();
  int64_t b = 0;
  for (; b + 8 <= nb; b += 8) {
    __m256i p[8];
    for (int u = 0; u < 8; ++u) p[u] = dot(b + u);
    __m256i r = Reduce8(p);
    if constexpr (T == DType::kQ4_0) {
      r = _mm256_sub_epi32(
          r, _mm256_slli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.sum + b)), 3));
    }
    acc = _mm256_fmadd_ps(_mm256_mul_ps(Scales8(w + b), _mm256_loadu_ps(x.d + b)),
                          _mm256_cvtepi32_ps(r), acc);
  }
  float s = HSum8(acc);
  for (; b < nb; ++b) {
    int32_t d = HSumI(dot(b));
    if constexpr (T == DType::kQ4_0) d -= 8 * x.sum[b];
    s += Half(w[b].d) * x.d[b] * static_cast<float>(d);
  }
  return s;
}

#if defined(TESSERA_VNNI)
constexpr int kQuantNX = 4;  // 16 partial-sum registers of 32
#else
constexpr int kQuantNX = 2;  // 8 of 16
#endif

template <DType T, int NX, int NW>
void QuantTile(const TileArgs& a) {
  for (int j = 0; j < NW; ++j) {
    if constexpr (NX == 1) {
      a.y[j] = QuantDot1<T>(a.w + j * a.wrb, ViewQ8Row(a.x, a.k), a.k);
    } else if constexpr (NX <= kQuantNX) {
      QuantRow<T, NX>(a.w + j * a.wrb, a.x, a.xrb, a.k, a.y + j, a.ldy);
    } else {
      QuantRow<T, kQuantNX>(a.w + j * a.wrb, a.x, a.xrb, a.k, a.y + j, a.ldy);
      QuantRow<T, NX - kQuantNX>(a.w + j * a.wrb, a.x + kQuantNX * a.xrb, a.xrb, a.k,
                                 a.y + kQuantNX * a.ldy + j, a.ldy);
    }
  }
}
#else
template <DType T, int NX, int NW>
void QuantTile(const TileArgs& a) {
  const int64_t nb = a.k / 32;
  for (int j = 0; j < NW; ++j) {
    for (int i = 0; i < NX; ++i) {
      const Q8RowView x = ViewQ8Row(a.x + i * a.xrb, a.k);
      float s = 0;
      for (int64_t b = 0; b < nb; ++b) {
        int32_t d = 0;
        float wd;
        if constexpr (T == DType::kQ8_0) {
          const BlockQ8_0& blk = reinterpret_cast<const BlockQ8_0*>(a.w + j * a.wrb)[b];
          for (int l = 0; l < 32; ++l) d += blk.qs[l] * x.q[32 * b + l];
          wd = Half(blk.d);
        } else {
          const BlockQ4_0& blk = reinterpret_cast<const BlockQ4_0*>(a.w + j * a.wrb)[b];
          for (int l = 0; l < 16; ++l) {
            d += (blk.qs[l] & 0xF) * x.q[32 * b + l] + (blk.qs[l] >> 4) * x.q[32 * b + l + 16];
          }
          d -= 8 * x.sum[b];
          wd = Half(blk.d);
        }
        s += wd * x.d[b] * static_cast<float>(d);
      }
      a.y[i * a.ldy + j] = s;
    }
  }
}
#endif

// The 6-bit scales and mins of the 8 sub-blocks of a Q4_K block (GGML's
// packing: the first four in the low 6 bits of bytes 0..3 / 4..7, the last four
// split over bytes 8..11 and the top bits of bytes 0..7).
inline void UnpackQ4KScales(const uint8_t* s, uint8_t* sc, uint8_t* m) {
  // Four sub-blocks per 32-bit word: bytes 0..3 (u0), 4..7 (u1), 8..11 (u2).
  uint32_t u0, u1, u2;
  std::memcpy(&u0, s, 4);
  std::memcpy(&u1, s + 4, 4);
  std::memcpy(&u2, s + 8, 4);
  const uint32_t sc_lo = u0 & 0x3F3F3F3Fu, m_lo = u1 & 0x3F3F3F3Fu;
  const uint32_t sc_hi = (u2 & 0x0F0F0F0Fu) | ((u0 >> 2) & 0x30303030u);
  const uint32_t m_hi = ((u2 >> 4) & 0x0F0F0F0Fu) | ((u1 >> 2) & 0x30303030u);
  std::memcpy(sc, &sc_lo, 4);
  std::memcpy(sc + 4, &sc_hi, 4);
  std::memcpy(m, &m_lo, 4);
  std::memcpy(m + 4, &m_hi, 4);
}

// Q4_K weights x BlockQ8KX activations. Per 32-value sub-block s: w = d * sc_s
// * q - dmin * m_s, so dot = d * dx * sum_s sc_s * (q . xq)_s - dmin * dx *
// sum_s m_s * bsum_s.
template <int NX, int NW>
void Q4_KTile(const TileArgs& a) {
  const int64_t nb = a.k / kQK_K;
  const BlockQ8KX* x[NX];
  for (int i = 0; i < NX; ++i) x[i] = reinterpret_cast<const BlockQ8KX*>(a.x + i * a.xrb);
  for (int j = 0; j < NW; ++j) {
    const BlockQ4_K* w = reinterpret_cast<const BlockQ4_K*>(a.w + j * a.wrb);
#if defined(TESSERA_SIMD)
    const __m256i lo_mask = _mm256_set1_epi8(0x0F);
    __m256 acc[NX];
    for (int i = 0; i < NX; ++i) acc[i] = _mm256_setzero_ps();
#else
    float acc[NX] = {};
    float macc[NX] = {};
#endif
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t sc[8], m[8];
      UnpackQ4KScales(w[b].scales, sc, m);
      const float d = Half(w[b].d), dmin = Half(w[b].dmin);
#if defined(TESSERA_SIMD)
      {
        uint64_t m8;
        std::memcpy(&m8, m, 8);
        const __m256i mins = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<int64_t>(m8)));
        for (int i = 0; i < NX; ++i) {
          const __m256i bs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x[i][b].bsums));
          acc[i] = _mm256_fnmadd_ps(_mm256_set1_ps(dmin * x[i][b].d),
                                    _mm256_cvtepi32_ps(_mm256_mullo_epi32(bs, mins)), acc[i]);
        }
      }
#else
      for (int i = 0; i < NX; ++i) {
        int32_t msum = 0;
        for (int s = 0; s < 8; ++s) msum += m[s] * x[i][b].bsums[s];
        macc[i] += dmin * x[i][b].d * static_cast<float>(msum);
      }
#endif
#if defined(TESSERA_SIMD)
      __m256i isum[NX];
      for (int i = 0; i < NX; ++i) isum[i] = _mm256_setzero_si256();
      for (int c = 0; c < 4; ++c) {
        const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[b].qs + 32 * c));
        const __m256i lo = _mm256_and_si256(q, lo_mask);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), lo_mask);
        const __m256i sc_lo = _mm256_set1_epi16(sc[2 * c]);
        const __m256i sc_hi = _mm256_set1_epi16(sc[2 * c + 1]);
        for (int i = 0; i < NX; ++i) {
          const int8_t* xq = x[i][b].qs + 64 * c;
          // 15 * 127 * 2 fits int16; times a 6-bit scale, summed in pairs, fits
          // int32.
          const __m256i p_lo =
              _mm256_maddubs_epi16(lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq)));
          const __m256i p_hi = _mm256_maddubs_epi16(
              hi, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + 32)));
          isum[i] = _mm256_add_epi32(isum[i], _mm256_add_epi32(_mm256_madd_epi16(p_lo, sc_lo),
                                                               _mm256_madd_epi16(p_hi, sc_hi)));
        }
      }
      for (int i = 0; i < NX; ++i) {
        acc[i] =
            _mm256_fmadd_ps(_mm256_set1_ps(d * x[i][b].d), _mm256_cvtepi32_ps(isum[i]), acc[i]);
      }
#else
      for (int i = 0; i < NX; ++i) {
        int32_t isum = 0;
        for (int c = 0; c < 4; ++c) {
          const uint8_t* q = w[b].qs + 32 * c;
          const int8_t* xq = x[i][b].qs + 64 * c;
          int32_t dlo = 0, dhi = 0;
          for (int l = 0; l < 32; ++l) {
            dlo += (q[l] & 0xF) * xq[l];
            dhi += (q[l] >> 4) * xq[l + 32];
          }
          isum += sc[2 * c] * dlo + sc[2 * c + 1] * dhi;
        }
        acc[i] += d * x[i][b].d * static_cast<float>(isum);
      }
#endif
    }
    for (int i = 0; i < NX; ++i) {
#if defined(TESSERA_SIMD)
      a.y[i * a.ldy + j] = HSum8(acc[i]);
#else
      a.y[i * a.ldy + j] = acc[i] - macc[i];
#endif
    }
  }
}

template <DType T, int NX, int NW>
void Tile(const TileArgs& a) {
  if constexpr (T == DType::kQ8_0 || T == DType::kQ4_0) {
    QuantTile<T, NX, NW>(a);
  } else if constexpr (T == DType::kQ4_K) {
    Q4_KTile<NX, NW>(a);
  } else {
    FloatTile<T, NX, NW>(a);
  }
}

template <DType T, int NW>
void TileNx(int nx, const TileArgs& a) {
  switch (nx) {
    case 1:
      Tile<T, 1, NW>(a);
      break;
    case 2:
      Tile<T, 2, NW>(a);
      break;
    case 3:
      Tile<T, 3, NW>(a);
      break;
    default:
      Tile<T, kNX, NW>(a);
      break;
  }
}

// ---------------------------------------------------------------------------------------------
// Many-row MatMul (n >= kPanelMinRows, kFloatPanelMinRows): weight panels
// prepared once per chunk of activation rows.
//
// A panel is a few weight rows x a column chunk, converted (F16/BF16 -> F32,
// Q8_0 / Q4_0 -> unsigned bytes plus expanded scales) into a buffer small
// enough to stay in L1 next to the activation tile, and reused by every
// activation row of the chunk. The per-output vector accumulators are kept in a
// buffer between column chunks, so each output is accumulated in one fixed
// order that does not depend on r0, r1 or the tile shape. For float weights it
// is exactly FloatTile's order (results do not depend on n either); quantized
// weights, like QuantDot1 vs QuantRow before, round differently from the
// few-row path.
// Activation rows from which panels pay off (measured on Zen 5: below 64 rows
// the F16 -> F32 conversion costs as much as the reuse saves; Q8_0 / Q4_0 gain
// from 8 rows on).
constexpr int64_t kPanelMinRows = 8;
constexpr int64_t kFloatPanelMinRows = 64;
constexpr int64_t kPanelRows = 16;    // weight rows per panel
constexpr int64_t kPanelChunk = 64;   // activation rows per chunk
constexpr int kPNX = 4;               // activation rows per micro-tile
#if defined(__AVX512F__)
constexpr int kPNW = 4;  // weight rows per micro-tile
#else
constexpr int kPNW = 2;
#endif

// Float weights: panels of kFloatRows x kFloatCols F32 values. The F32 copy is
// exact, so the products and their order match FloatTile.
#if defined(__AVX512F__)
constexpr int kFNW = 6;  // weight rows per micro-tile: 24 accumulators + 4 x + 1 w
constexpr int64_t kFloatRows = 24;
#else
constexpr int kFNW = 2;
constexpr int64_t kFloatRows = 16;
#endif
constexpr int64_t kFloatCols = 256;
constexpr int64_t kFloatWhole = 512;  // widths whose panels are converted whole (see below)

// acc[i * kFloatRows + j]: the accumulator of x row i, panel row j.
template <int NX, int NW>
inline void FloatPanelKernel(const float* const* x, const float* wp, int64_t ws, int64_t c0,
                             int64_t nc, const VF* in, VF* acc) {
  VF a[NX][NW];
  for (int i = 0; i < NX; ++i)
    for (int j = 0; j < NW; ++j) a[i][j] = in[i * kFloatRows + j];
  for (int64_t c = 0; c < nc; c += kW) {
    VF xv[NX];
    for (int i = 0; i < NX; ++i) xv[i] = VLoad(x[i] + c0 + c);
    for (int j = 0; j < NW; ++j) {
      const VF wv = VLoad(wp + j * ws + c);
      for (int i = 0; i < NX; ++i) a[i][j] = VFma(xv[i], wv, a[i][j]);
    }
  }
  for (int i = 0; i < NX; ++i)
    for (int j = 0; j < NW; ++j) acc[i * kFloatRows + j] = a[i][j];
}

// `in`: acc, or (the first column chunk) zeros laid out like it.
template <int NX>
inline void FloatPanelTile(const float* const* x, const float* wp, int64_t ws, int64_t np,
                           int64_t c0, int64_t nc, const VF* in, VF* acc) {
  int64_t j = 0;
  for (; j + kFNW <= np; j += kFNW)
    FloatPanelKernel<NX, kFNW>(x, wp + j * ws, ws, c0, nc, in + j, acc + j);
  if constexpr (kFNW > 4) {
    for (; j + 4 <= np; j += 4) FloatPanelKernel<NX, 4>(x, wp + j * ws, ws, c0, nc, in + j, acc + j);
  }
  for (; j < np; ++j) FloatPanelKernel<NX, 1>(x, wp + j * ws, ws, c0, nc, in + j, acc + j);
}

#if defined(__AVX512F__)
// out[m] = VSum(v[m]) for m < count (count <= 16), bit for bit: the sums are reduced together,
// pairing the same lanes as _mm512_reduce_add_ps (lane i with i + 8, then i + 4, i + 2, i + 1;
// float addition is commutative, so only the pairs matter), in about a third of the instructions.
inline void VSumStore16(const VF* v, int count, float* out) {
  VF in[16];
  for (int m = 0; m < 16; ++m) in[m] = m < count ? v[m] : VZero();
  VF a[8];  // a[p]: lanes 0-7 vector 2p's halves added, lanes 8-15 vector 2p + 1's
  for (int p = 0; p < 8; ++p) {
    a[p] = _mm512_add_ps(_mm512_shuffle_f32x4(in[2 * p], in[2 * p + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_f32x4(in[2 * p], in[2 * p + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  }
  VF b[4];  // b[q]: 128-bit block m holds vector 4q + m's four partial sums
  for (int q = 0; q < 4; ++q) {
    b[q] = _mm512_add_ps(_mm512_shuffle_f32x4(a[2 * q], a[2 * q + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(a[2 * q], a[2 * q + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  }
  VF c[2];  // c[r], block m: two partial sums of vector 8r + m, then two of vector 8r + 4 + m
  for (int r = 0; r < 2; ++r) {
    c[r] = _mm512_add_ps(_mm512_shuffle_ps(b[2 * r], b[2 * r + 1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(b[2 * r], b[2 * r + 1], _MM_SHUFFLE(3, 2, 3, 2)));
  }
  // Lane 4m + t: the sum of vector m + 4t; permuted to lane m + 4t.
  const VF d = _mm512_add_ps(_mm512_shuffle_ps(c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_ps(c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1)));
  const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
  _mm512_mask_storeu_ps(out, static_cast<__mmask16>((1u << count) - 1),
                        _mm512_permutexvar_ps(idx, d));
}
#endif

template <DType T>
void FloatPanelMatMul(const uint8_t* wb, size_t wrb, const uint8_t* xb, size_t xrb, int64_t n,
                      int64_t k, int64_t r0, int64_t r1, float* y, int64_t ldy) {
  alignas(64) static thread_local float wp[kFloatRows * kFloatWhole];
  alignas(64) static thread_local VF acc[kPanelChunk * kFloatRows];
  alignas(64) static const VF zeros[kPNX * kFloatRows] = {};
  const int64_t kv = k / kW * kW;  // columns done in vectors
  // Up to kFloatWhole columns (encoders), a panel is converted whole, once per call, and serves
  // every chunk of activation rows; wider ones a column chunk at a time, per chunk of rows.
  const bool whole = kv <= kFloatWhole;
  const int64_t ws = whole ? kv : kFloatCols;  // floats between panel rows
  auto convert = [&](int64_t p0, int64_t np, int64_t c0, int64_t nc, float* to) {
    for (int64_t j = 0; j < np; ++j) {
      const uint8_t* wrow = wb + (p0 + j) * wrb;
      for (int64_t c = 0; c < nc; c += kW) VStore(to + j * ws + c, LoadWVec<T>(wrow, c0 + c));
    }
  };
  // Rows [i0, i1) against columns [c0, c0 + nc) of the panel (`panel`: its column c0).
  auto multiply = [&](int64_t i0, int64_t i1, int64_t np, int64_t c0, int64_t nc,
                      const float* panel) {
    for (int64_t i = i0; i < i1; i += kPNX) {
      const int nx = static_cast<int>(Min<int64_t>(kPNX, i1 - i));
      const float* x[kPNX];
      for (int u = 0; u < nx; ++u) x[u] = reinterpret_cast<const float*>(xb + (i + u) * xrb);
      VF* a = acc + (i - i0) * kFloatRows;
      const VF* in = c0 == 0 ? zeros : a;  // (the first chunk starts from 0)
      switch (nx) {
        case 1: FloatPanelTile<1>(x, panel, ws, np, c0, nc, in, a); break;
        case 2: FloatPanelTile<2>(x, panel, ws, np, c0, nc, in, a); break;
        case 3: FloatPanelTile<3>(x, panel, ws, np, c0, nc, in, a); break;
        default: FloatPanelTile<kPNX>(x, panel, ws, np, c0, nc, in, a); break;
      }
    }
  };
  auto finish = [&](int64_t i0, int64_t i1, int64_t p0, int64_t np) {
    for (int64_t i = i0; i < i1; ++i) {
#if defined(__AVX512F__)
      if (kv == k && kv > 0) {  // no scalar tail: 16 sums at a time
        for (int64_t j = 0; j < np; j += 16) {
          VSumStore16(acc + (i - i0) * kFloatRows + j, static_cast<int>(Min<int64_t>(16, np - j)),
                      y + i * ldy + p0 + j);
        }
        continue;
      }
#endif
      const float* x = reinterpret_cast<const float*>(xb + i * xrb);
      for (int64_t j = 0; j < np; ++j) {
        float s = kv > 0 ? VSum(acc[(i - i0) * kFloatRows + j]) : 0.0f;
        const uint8_t* wrow = wb + (p0 + j) * wrb;
        for (int64_t c = kv; c < k; ++c) s += x[c] * LoadWScalar<T>(wrow, c);
        y[i * ldy + p0 + j] = s;
      }
    }
  };
  if (whole) {
    for (int64_t p0 = r0; p0 < r1; p0 += kFloatRows) {
      const int64_t np = Min<int64_t>(kFloatRows, r1 - p0);
      convert(p0, np, 0, kv, wp);
      for (int64_t i0 = 0; i0 < n; i0 += kPanelChunk) {
        const int64_t i1 = Min<int64_t>(n, i0 + kPanelChunk);
        for (int64_t c0 = 0; c0 < kv; c0 += kFloatCols) {
          multiply(i0, i1, np, c0, Min<int64_t>(kFloatCols, kv - c0), wp + c0);
        }
        finish(i0, i1, p0, np);
      }
    }
    return;
  }
  for (int64_t i0 = 0; i0 < n; i0 += kPanelChunk) {
    const int64_t i1 = Min<int64_t>(n, i0 + kPanelChunk);
    for (int64_t p0 = r0; p0 < r1; p0 += kFloatRows) {
      const int64_t np = Min<int64_t>(kFloatRows, r1 - p0);
      for (int64_t c0 = 0; c0 < kv; c0 += kFloatCols) {
        const int64_t nc = Min<int64_t>(kFloatCols, kv - c0);
        convert(p0, np, c0, nc, wp);
        multiply(i0, i1, np, c0, nc, wp);
      }
      finish(i0, i1, p0, np);
    }
  }
}

#if defined(TESSERA_VNNI)
// Q8_0 / Q4_0 weights x Q8 rows, two blocks per 512-bit vector. The panel
// holds, per weight row and block pair, the 64 weights as unsigned bytes w +
// Off (Q8_0: w + 128, the sign bit flipped; Q4_0: the nibbles as they are, Off
// = 8) and the two weight scales each broadcast over the 8 lanes of their
// block. vpdpbusd(-Off * x lane sums, w + Off, x) gives 8 int32 lanes per block
// that sum to the block's dot product; they are converted and accumulated with
// one FMA by the product of the scales, and the 16 lanes are summed at the end.
constexpr int64_t kQ8Pairs = 8;  // block pairs per panel chunk (512 columns)
struct Q8PanelPair {
  __m512i q;
  __m512 d;
};

template <int Off, int NX, int NW>
inline void Q8PanelKernel(const Q8RowView* x, const Q8PanelPair* wp, int64_t p0, int64_t npair,
                          __m512* acc, bool first) {
  __m512 a[NX][NW];
  for (int i = 0; i < NX; ++i)
    for (int j = 0; j < NW; ++j) a[i][j] = first ? _mm512_setzero_ps() : acc[i * kPanelRows + j];
  const __m512i off = _mm512_set1_epi8(static_cast<char>(Off));
  const __m512i pair_idx = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  for (int64_t p = 0; p < npair; ++p) {
    const int64_t b = 2 * (p0 + p);
    for (int i = 0; i < NX; ++i) {
      const __m512i xq = _mm512_loadu_si512(x[i].q + 32 * b);
      const __m512i corr =
          _mm512_sub_epi32(_mm512_setzero_si512(), _mm512_dpbusd_epi32(_mm512_setzero_si512(), off, xq));
      const __m512 xd = _mm512_permutexvar_ps(
          pair_idx, _mm512_castps128_ps512(_mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(x[i].d + b)))));
      for (int j = 0; j < NW; ++j) {
        const Q8PanelPair& w = wp[j * kQ8Pairs + p];
        const __m512i dot = _mm512_dpbusd_epi32(corr, w.q, xq);
        a[i][j] = _mm512_fmadd_ps(_mm512_mul_ps(xd, w.d), _mm512_cvtepi32_ps(dot), a[i][j]);
      }
    }
  }
  for (int i = 0; i < NX; ++i)
    for (int j = 0; j < NW; ++j) acc[i * kPanelRows + j] = a[i][j];
}

template <int Off, int NX>
inline void Q8PanelTile(const Q8RowView* x, const Q8PanelPair* wp, int64_t np, int64_t p0,
                        int64_t npair, __m512* acc, bool first) {
  int64_t j = 0;
  for (; j + kPNW <= np; j += kPNW)
    Q8PanelKernel<Off, NX, kPNW>(x, wp + j * kQ8Pairs, p0, npair, acc + j, first);
  for (; j < np; ++j) Q8PanelKernel<Off, NX, 1>(x, wp + j * kQ8Pairs, p0, npair, acc + j, first);
}

template <DType T>
void Q8PanelMatMul(const uint8_t* wb, size_t wrb, const uint8_t* xb, size_t xrb, int64_t n,
                   int64_t k, int64_t r0, int64_t r1, float* y, int64_t ldy) {
  alignas(64) static thread_local Q8PanelPair wp[kPanelRows * kQ8Pairs];
  alignas(64) static thread_local __m512 acc[kPanelChunk * kPanelRows];
  using Block = std::conditional_t<T == DType::kQ8_0, BlockQ8_0, BlockQ4_0>;
  constexpr int Off = T == DType::kQ8_0 ? 128 : 8;
  const int64_t nb = k / 32, npairs = nb / 2;
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  for (int64_t i0 = 0; i0 < n; i0 += kPanelChunk) {
    const int64_t i1 = Min<int64_t>(n, i0 + kPanelChunk);
    for (int64_t r = r0; r < r1; r += kPanelRows) {
      const int64_t np = Min<int64_t>(kPanelRows, r1 - r);
      for (int64_t p0 = 0; p0 < npairs; p0 += kQ8Pairs) {
        const int64_t npair = Min<int64_t>(kQ8Pairs, npairs - p0);
        for (int64_t j = 0; j < np; ++j) {
          const auto* w = reinterpret_cast<const Block*>(wb + (r + j) * wrb);
          for (int64_t p = 0; p < npair; ++p) {
            const Block* blk = w + 2 * (p0 + p);
            Q8PanelPair& out = wp[j * kQ8Pairs + p];
            if constexpr (T == DType::kQ8_0) {
              const __m512i q = _mm512_inserti64x4(
                  _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[0].qs))),
                  _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk[1].qs)), 1);
              out.q = _mm512_xor_si512(q, flip);
            } else {
              // Per block: the 16 low nibbles (elements 0..15), then the 16 high ones.
              const __m128i q0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[0].qs));
              const __m128i q1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk[1].qs));
              const __m512i q = _mm512_inserti64x4(
                  _mm512_castsi256_si512(_mm256_set_m128i(_mm_srli_epi16(q0, 4), q0)),
                  _mm256_set_m128i(_mm_srli_epi16(q1, 4), q1), 1);
              out.q = _mm512_and_si512(q, _mm512_set1_epi8(0x0F));
            }
            // (insertf64x4: AVX512F has no 32x8 insert.)
            out.d = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_set1_ps(Half(blk[0].d))),
                                                        _mm256_castps_pd(_mm256_set1_ps(Half(blk[1].d))), 1));
          }
        }
        const bool first = p0 == 0;
        for (int64_t i = i0; i < i1; i += kPNX) {
          const int nx = static_cast<int>(Min<int64_t>(kPNX, i1 - i));
          Q8RowView x[kPNX];
          for (int u = 0; u < nx; ++u) x[u] = ViewQ8Row(xb + (i + u) * xrb, k);
          __m512* a = acc + (i - i0) * kPanelRows;
          switch (nx) {
            case 1: Q8PanelTile<Off, 1>(x, wp, np, p0, npair, a, first); break;
            case 2: Q8PanelTile<Off, 2>(x, wp, np, p0, npair, a, first); break;
            case 3: Q8PanelTile<Off, 3>(x, wp, np, p0, npair, a, first); break;
            default: Q8PanelTile<Off, kPNX>(x, wp, np, p0, npair, a, first); break;
          }
        }
      }
      for (int64_t i = i0; i < i1; ++i) {
        const Q8RowView x = ViewQ8Row(xb + i * xrb, k);
        for (int64_t j = 0; j < np; ++j) {
          float s = npairs > 0 ? _mm512_reduce_add_ps(acc[(i - i0) * kPanelRows + j]) : 0.0f;
          const auto* w = reinterpret_cast<const Block*>(wb + (r + j) * wrb);
          for (int64_t bb = 2 * npairs; bb < nb; ++bb) {
            int32_t d = 0;
            if constexpr (T == DType::kQ8_0) {
              for (int l = 0; l < 32; ++l) d += w[bb].qs[l] * x.q[32 * bb + l];
            } else {
              for (int l = 0; l < 16; ++l) {
                d += ((w[bb].qs[l] & 0xF) - 8) * x.q[32 * bb + l] +
                     ((w[bb].qs[l] >> 4) - 8) * x.q[32 * bb + l + 16];
              }
            }
            s += Half(w[bb].d) * x.d[bb] * static_cast<float>(d);
          }
          y[i * ldy + r + j] = s;
        }
      }
    }
  }
}
#endif

template <DType T>
void MatMulT(const void* w, size_t wrb, const void* x, size_t xrb, int64_t n, int64_t k, int64_t r0,
             int64_t r1, float* y, int64_t ldy) {
  // Activation rows are processed in chunks small enough to stay in L2 while
  // the weight rows of this range stream past once per chunk.
  constexpr int64_t kXChunk = 64;
  const auto* wb = static_cast<const uint8_t*>(w);
  const auto* xb = static_cast<const uint8_t*>(x);
#if defined(TESSERA_SIMD)
  if constexpr (T == DType::kF32 || T == DType::kF16 || T == DType::kBF16) {
    if (n >= kFloatPanelMinRows) return FloatPanelMatMul<T>(wb, wrb, xb, xrb, n, k, r0, r1, y, ldy);
  }
#endif
#if defined(TESSERA_VNNI)
  if constexpr (T == DType::kQ8_0 || T == DType::kQ4_0) {
    if (n >= kPanelMinRows) return Q8PanelMatMul<T>(wb, wrb, xb, xrb, n, k, r0, r1, y, ldy);
  }
#endif
  if constexpr (T == DType::kF32 || T == DType::kF16 || T == DType::kBF16) {
    if (n == 1) {  // (the same products, in the same order, as the tiles below)
      int64_t r = r0;
      for (; r + kGemvRows <= r1; r += kGemvRows) {
        Tile<T, 1, kGemvRows>(TileArgs{wb + r * wrb, wrb, xb, xrb, k, y + r, ldy});
      }
      for (; r < r1; ++r) Tile<T, 1, 1>(TileArgs{wb + r * wrb, wrb, xb, xrb, k, y + r, ldy});
      return;
    }
  }
  for (int64_t i0 = 0; i0 < n; i0 += kXChunk) {
    const int64_t i1 = Min<int64_t>(n, i0 + kXChunk);
    for (int64_t r = r0; r < r1;) {
      const int nw = r1 - r >= kNW ? kNW : 1;
      for (int64_t i = i0; i < i1; i += kNX) {
        const int nx = static_cast<int>(Min<int64_t>(kNX, i1 - i));
        const TileArgs a{wb + r * wrb, wrb, xb + i * xrb, xrb, k, y + i * ldy + r, ldy};
        if (nw == kNW) {
          TileNx<T, kNW>(nx, a);
        } else {
          TileNx<T, 1>(nx, a);
        }
      }
      r += nw;
    }
  }
}

void MatMul(DType type, const void* w, size_t wrb, const void* x, size_t xrb, int64_t n, int64_t k,
            int64_t r0, int64_t r1, float* y, int64_t ldy) {
  switch (type) {
    case DType::kF32:
      return MatMulT<DType::kF32>(w, wrb, x, xrb, n, k, r0, r1, y, ldy);
    case DType::kF16:
      return MatMulT<DType::kF16>(w, wrb, x, xrb, n, k, r0, r1, y, ldy);
    case DType::kBF16:
      return MatMulT<DType::kBF16>(w, wrb, x, xrb, n, k, r0, r1, y, ldy);
    case DType::kQ8_0:
      return MatMulT<DType::kQ8_0>(w, wrb, x, xrb, n, k, r0, r1, y, ldy);
    case DType::kQ4_0:
      return MatMulT<DType::kQ4_0>(w, wrb, x, xrb, n, k, r0, r1, y, ldy);
    case DType::kQ4_K:
      return MatMulT<DType::kQ4_K>(w, wrb, x, xrb, n, k, r0, r1, y, ldy);
  }
}

// ---------------------------------------------------------------------------------------------
// Activation quantization.

inline int8_t RoundQ(float v) {
  return static_cast<int8_t>(Max(-127, Min(127, static_cast<int>(__builtin_nearbyintf(v)))));
}

void QuantizeQ8(const float* x, void* out_row, int64_t k) {
  auto* q = static_cast<int8_t*>(out_row);
  auto* ds = reinterpret_cast<float*>(q + k);
  auto* sums = reinterpret_cast<int32_t*>(q + k + k / 32 * sizeof(float));
  for (int64_t b = 0; b < k / 32; ++b) {
    const float* v = x + b * 32;
    float amax = 0;
    for (int l = 0; l < 32; ++l) amax = Max(amax, __builtin_fabsf(v[l]));
    const float d = amax / 127.0f;
    const float id = d != 0 ? 127.0f / amax : 0.0f;
    int32_t sum = 0;
    for (int l = 0; l < 32; ++l) {
      q[b * 32 + l] = RoundQ(v[l] * id);
      sum += q[b * 32 + l];
    }
    ds[b] = d;
    sums[b] = sum;
  }
}

void QuantizeQ8K(const float* x, BlockQ8KX* out, int64_t k) {
  for (int64_t b = 0; b < k / 256; ++b) {
    const float* v = x + b * 256;
    float amax = 0;
    for (int l = 0; l < 256; ++l) amax = Max(amax, __builtin_fabsf(v[l]));
    const float d = amax / 127.0f;
    const float id = d != 0 ? 127.0f / amax : 0.0f;
    for (int s = 0; s < 8; ++s) {
      int32_t sum = 0;
      for (int l = 0; l < 32; ++l) {
        out[b].qs[s * 32 + l] = RoundQ(v[s * 32 + l] * id);
        sum += out[b].qs[s * 32 + l];
      }
      out[b].bsums[s] = sum;
    }
    out[b].d = d;
  }
}

// ---------------------------------------------------------------------------------------------
// Attention helpers.

float DotF16(const uint16_t* a, const float* b, int64_t n) {
  VF acc = VZero();
  int64_t i = 0;
  for (; i + kW <= n; i += kW) acc = VFma(VLoadF16(a + i), VLoad(b + i), acc);
  float s = VSum(acc);
  for (; i < n; ++i) s += Half(a[i]) * b[i];
  return s;
}

void AxpyF16(float alpha, const uint16_t* x, float* y, int64_t n) {
  const VF va = VSet1(alpha);
  int64_t i = 0;
  for (; i + kW <= n; i += kW) VStore(y + i, VFma(va, VLoadF16(x + i), VLoad(y + i)));
  for (; i < n; ++i) y[i] += alpha * Half(x[i]);
}

void F32ToF16Row(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + kW <= n; i += kW) VStoreF16(y + i, VLoad(x + i));
  for (; i < n; ++i) y[i] = F32ToF16(x[i]);
}

float DotF32(const float* a, const float* b, int64_t n) {
  VF acc = VZero();
  int64_t i = 0;
  for (; i + kW <= n; i += kW) acc = VFma(VLoad(a + i), VLoad(b + i), acc);
  float s = VSum(acc);
  for (; i < n; ++i) s += a[i] * b[i];
  return s;
}

void AxpyF32(float alpha, const float* x, float* y, int64_t n) {
  const VF va = VSet1(alpha);
  int64_t i = 0;
  for (; i + kW <= n; i += kW) VStore(y + i, VFma(va, VLoad(x + i), VLoad(y + i)));
  for (; i < n; ++i) y[i] += alpha * x[i];
}

// ---------------------------------------------------------------------------------------------
// Vector math: exp of non-positive arguments, GELU, dense attention.

#if defined(__AVX512F__)
inline VF VMax(VF a, VF b) { return _mm512_max_ps(a, b); }
inline float VHMax(VF v) { return _mm512_reduce_max_ps(v); }
inline VF VRound(VF a) {
  return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
inline VF VExp2Int(VF n) {  // 2^n for integral n in [-126, 127]
  return _mm512_castsi512_ps(
      _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
}
inline VF VAbs(VF a) { return _mm512_abs_ps(a); }
// z >= 0 ? a : b, lane by lane (NaN z: b).
inline VF VSelectNonNeg(VF z, VF a, VF b) {
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(z, VZero(), _CMP_GE_OQ), b, a);
}
#elif defined(TESSERA_SIMD)
inline VF VMax(VF a, VF b) { return _mm256_max_ps(a, b); }
inline float VHMax(VF v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}
inline VF VRound(VF a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline VF VExp2Int(VF n) {
  return _mm256_castsi256_ps(
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
}
inline VF VAbs(VF a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a); }
inline VF VSelectNonNeg(VF z, VF a, VF b) {
  return _mm256_blendv_ps(b, a, _mm256_cmp_ps(z, VZero(), _CMP_GE_OQ));
}
#else
inline VF VMax(VF a, VF b) { return a > b ? a : b; }
inline float VHMax(VF v) { return v; }
inline VF VRound(VF a) { return std::nearbyint(a); }
inline VF VExp2Int(VF n) { return std::ldexp(1.0f, static_cast<int>(n)); }
inline VF VAbs(VF a) { return std::fabs(a); }
inline VF VSelectNonNeg(VF z, VF a, VF b) { return z >= 0 ? a : b; }
#endif

// exp(y) for y <= 0, within a few ulp: y = n ln2 + r (ln2 in two parts, the first exact in a few
// bits), |r| <= ln2 / 2, exp(r) by its Taylor series to r^7 / 7! (truncation under 1e-8).
// Arguments below -87 give exp(-87), about 1.6e-38, instead of a denormal or 0.
inline VF VExpNonPos(VF y) {
  y = VMax(y, VSet1(-87.0f));
  const VF n = VRound(y * VSet1(1.44269504f));
  VF r = VFma(n, VSet1(-0.693359375f), y);
  r = VFma(n, VSet1(2.12194440e-4f), r);
  VF p = VSet1(1.0f / 5040);
  p = VFma(p, r, VSet1(1.0f / 720));
  p = VFma(p, r, VSet1(1.0f / 120));
  p = VFma(p, r, VSet1(1.0f / 24));
  p = VFma(p, r, VSet1(1.0f / 6));
  p = VFma(p, r, VSet1(0.5f));
  p = VFma(p, r, VSet1(1.0f));
  p = VFma(p, r, VSet1(1.0f));
  return p * VExp2Int(n);
}

// gelu(x) = x / 2 * (1 + erf(x / sqrt 2)), with erfc(|z|) from Abramowitz and Stegun 7.1.26
// (absolute error under 1.5e-7): 1 + erf(z) is 2 - erfc(z) for z >= 0 and erfc(-z) below, so
// the negative side loses nothing to cancellation.
inline VF VGelu(VF x) {
  const VF z = x * VSet1(0.70710678f);
  const VF a = VAbs(z);
  const VF t = VSet1(1.0f) / VFma(VSet1(0.3275911f), a, VSet1(1.0f));
  VF p = VSet1(1.061405429f);
  p = VFma(p, t, VSet1(-1.453152027f));
  p = VFma(p, t, VSet1(1.421413741f));
  p = VFma(p, t, VSet1(-0.284496736f));
  p = VFma(p, t, VSet1(0.254829592f));
  const VF c = p * t * VExpNonPos(VZero() - a * a);
  return VSet1(0.5f) * x * VSelectNonNeg(z, VSet1(2.0f) - c, c);
}

void GeluF32(float* x, int64_t n) {
  int64_t i = 0;
  for (; i + kW <= n; i += kW) VStore(x + i, VGelu(VLoad(x + i)));
  if (i < n) {
    float tail[kW] = {};
    for (int64_t j = i; j < n; ++j) tail[j - i] = x[j];
    VStore(tail, VGelu(VLoad(tail)));
    for (int64_t j = i; j < n; ++j) x[j] = tail[j - i];
  }
}

// Double vectors of half a float vector's width, for sums that must not lose bits: VDLoad widens
// the floats at p.
#if defined(__AVX512F__)
constexpr int kWD = 8;
using VD = __m512d;
inline VD VDZero() { return _mm512_setzero_pd(); }
inline VD VDSet1(double a) { return _mm512_set1_pd(a); }
inline VD VDLoad(const float* p) { return _mm512_cvtps_pd(_mm256_loadu_ps(p)); }
inline VD VDFma(VD a, VD b, VD c) { return _mm512_fmadd_pd(a, b, c); }
inline double VDSum(VD v) { return _mm512_reduce_add_pd(v); }
#elif defined(TESSERA_SIMD)
constexpr int kWD = 4;
using VD = __m256d;
inline VD VDZero() { return _mm256_setzero_pd(); }
inline VD VDSet1(double a) { return _mm256_set1_pd(a); }
inline VD VDLoad(const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); }
inline VD VDFma(VD a, VD b, VD c) { return _mm256_fmadd_pd(a, b, c); }
inline double VDSum(VD v) {
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, v);
  return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
}
#else
constexpr int kWD = 1;
using VD = double;
inline VD VDZero() { return 0.0; }
inline VD VDSet1(double a) { return a; }
inline VD VDLoad(const float* p) { return *p; }
inline VD VDFma(VD a, VD b, VD c) { return a * b + c; }
inline double VDSum(VD v) { return v; }
#endif

// out = (x - mean) / sqrt(var + eps) * g + b over one row of dim values, the mean and the variance
// summed in double vectors (two accumulators each).
void LayerNormRow(const float* x, int64_t dim, const float* g, const float* b, float eps,
                  float* out) {
  const int64_t dv = dim / (2 * kWD) * (2 * kWD);  // columns summed in vectors
  VD s0 = VDZero(), s1 = VDZero();
  for (int64_t c = 0; c < dv; c += 2 * kWD) {
    s0 = s0 + VDLoad(x + c);
    s1 = s1 + VDLoad(x + c + kWD);
  }
  double sum = VDSum(s0 + s1);
  for (int64_t c = dv; c < dim; ++c) sum += x[c];
  const double mean = sum / static_cast<double>(dim);
  const VD vm = VDSet1(mean);
  VD v0 = VDZero(), v1 = VDZero();
  for (int64_t c = 0; c < dv; c += 2 * kWD) {
    const VD d0 = VDLoad(x + c) - vm, d1 = VDLoad(x + c + kWD) - vm;
    v0 = VDFma(d0, d0, v0);
    v1 = VDFma(d1, d1, v1);
  }
  double var = VDSum(v0 + v1);
  for (int64_t c = dv; c < dim; ++c) var += (x[c] - mean) * (x[c] - mean);
  const float inv = static_cast<float>(1.0 / std::sqrt(var / static_cast<double>(dim) + eps));
  const float m = static_cast<float>(mean);
  const VF vmf = VSet1(m), vinv = VSet1(inv);
  int64_t i = 0;
  for (; i + kW <= dim; i += kW) {
    VStore(out + i, VFma((VLoad(x + i) - vmf) * vinv, VLoad(g + i), VLoad(b + i)));
  }
  for (; i < dim; ++i) out[i] = (x[i] - m) * inv * g[i] + b[i];
}

// Dense attention, blocks: kAttnQ queries at a time against kAttnV vectors of keys (scores) or of
// head columns (values), each block's accumulators in registers.
constexpr int kAttnQ = kDenseAttentionQueries;
#if defined(__AVX512F__)
constexpr int kAttnV = 4;  // 16 accumulators of 32 registers
#else
constexpr int kAttnV = 2;  // 8 of 16
#endif

// s[i * lp + j] += sum over d of q_i[d] * kt[d * lp + j] for the NV key vectors at j0.
template <int NV>
inline void AttnScores(const float* const* qr, const float* kt, int64_t lp, int head_dim,
                       int64_t j0, float scale, float* s) {
  VF acc[kAttnQ][NV];
  for (int i = 0; i < kAttnQ; ++i)
    for (int u = 0; u < NV; ++u) acc[i][u] = VZero();
  for (int d = 0; d < head_dim; ++d) {
    VF kv[NV];
    for (int u = 0; u < NV; ++u) kv[u] = VLoad(kt + d * lp + j0 + u * kW);
    for (int i = 0; i < kAttnQ; ++i) {
      const VF qv = VSet1(qr[i][d]);
      for (int u = 0; u < NV; ++u) acc[i][u] = VFma(qv, kv[u], acc[i][u]);
    }
  }
  for (int i = 0; i < kAttnQ; ++i)
    for (int u = 0; u < NV; ++u) VStore(s + i * lp + j0 + u * kW, acc[i][u] * VSet1(scale));
}

// o_i[d0 + ...] = sum over keys j in order of w[i * lp + j] * v_j[d0 + ...], NV vectors of columns.
template <int NV>
inline void AttnValues(const float* w, int64_t lp, const float* v, int64_t stride, int64_t len,
                       int64_t d0, float* const* orow, int nq) {
  VF acc[kAttnQ][NV];
  for (int i = 0; i < kAttnQ; ++i)
    for (int u = 0; u < NV; ++u) acc[i][u] = VZero();
  for (int64_t j = 0; j < len; ++j) {
    VF vv[NV];
    for (int u = 0; u < NV; ++u) vv[u] = VLoad(v + j * stride + d0 + u * kW);
    for (int i = 0; i < kAttnQ; ++i) {
      const VF wv = VSet1(w[i * lp + j]);
      for (int u = 0; u < NV; ++u) acc[i][u] = VFma(wv, vv[u], acc[i][u]);
    }
  }
  for (int i = 0; i < nq; ++i)
    for (int u = 0; u < NV; ++u) VStore(orow[i] + d0 + u * kW, acc[i][u]);
}

void DenseAttentionHead(const float* q, const float* k, const float* v, int64_t stride,
                        int64_t len, int64_t q0, int64_t q1, int head_dim, float scale, float* out,
                        float* scratch) {
  if (len <= 0 || q1 <= q0) return;
  const int64_t lp = DenseAttentionKeys(len);
  float* kt = scratch;                // head_dim x lp: the keys transposed, 0 past len
  float* s = scratch + head_dim * lp;  // kAttnQ x lp: scores, then weights
  for (int64_t j = 0; j < lp; ++j) {
    for (int d = 0; d < head_dim; ++d) kt[d * lp + j] = j < len ? k[j * stride + d] : 0.0f;
  }
  for (int64_t i0 = q0; i0 < q1; i0 += kAttnQ) {
    const int nq = static_cast<int>(Min<int64_t>(kAttnQ, q1 - i0));
    const float* qr[kAttnQ];
    float* orow[kAttnQ];
    for (int i = 0; i < kAttnQ; ++i) {
      const int64_t row = i0 + Min(i, nq - 1);  // missing queries repeat the last (not stored)
      qr[i] = q + row * stride;
      orow[i] = out + row * stride;
    }
    int64_t j0 = 0;
    for (; j0 + kAttnV * kW <= lp; j0 += kAttnV * kW) AttnScores<kAttnV>(qr, kt, lp, head_dim, j0, scale, s);
    for (; j0 < lp; j0 += kW) AttnScores<1>(qr, kt, lp, head_dim, j0, scale, s);
    // Softmax of each row over its len keys; the padding gets weight 0.
    for (int i = 0; i < nq; ++i) {
      float* si = s + i * lp;
      for (int64_t j = len; j < lp; ++j) si[j] = -__builtin_inff();
      VF m = VSet1(-__builtin_inff());
      for (int64_t j = 0; j < lp; j += kW) m = VMax(m, VLoad(si + j));
      const VF mx = VSet1(VHMax(m));
      for (int64_t j = 0; j < lp; j += kW) VStore(si + j, VExpNonPos(VLoad(si + j) - mx));
      for (int64_t j = len; j < lp; ++j) si[j] = 0.0f;
      VF sum = VZero();
      for (int64_t j = 0; j < lp; j += kW) sum = sum + VLoad(si + j);
      const VF inv = VSet1(1.0f / VSum(sum));
      for (int64_t j = 0; j < lp; j += kW) VStore(si + j, VLoad(si + j) * inv);
    }
    int64_t d0 = 0;
    for (; d0 + kAttnV * kW <= head_dim; d0 += kAttnV * kW) AttnValues<kAttnV>(s, lp, v, stride, len, d0, orow, nq);
    for (; d0 + kW <= head_dim; d0 += kW) AttnValues<1>(s, lp, v, stride, len, d0, orow, nq);
    for (; d0 < head_dim; ++d0) {
      for (int i = 0; i < nq; ++i) {
        float acc = 0.0f;
        for (int64_t j = 0; j < len; ++j) acc += s[i * lp + j] * v[j * stride + d0];
        orow[i][d0] = acc;
      }
    }
  }
}

}  // namespace

const KernelTable& Table() {
  static const KernelTable table{
      Isa::TESSERA_CPU_ISA_ENUM,
      &QuantizeQ8,
      &QuantizeQ8K,
      &MatMul,
      &DotF16,
      &AxpyF16,
      &F32ToF16Row,
      &DotF32,
      &AxpyF32,
      &GeluF32,
      &LayerNormRow,
      &DenseAttentionHead,
  };
  return table;
}

}  // namespace TESSERA_CPU_ISA_NS
}  // namespace tessera::engine::cpu
