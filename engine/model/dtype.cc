#include "engine/model/dtype.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"

namespace tessera::engine {
namespace {

constexpr DTypeInfo kF32Info{"F32", 1, 4};
constexpr DTypeInfo kF16Info{"F16", 1, 2};
constexpr DTypeInfo kBF16Info{"BF16", 1, 2};
constexpr DTypeInfo kQ8_0Info{"Q8_0", kQK8_0, sizeof(BlockQ8_0)};
constexpr DTypeInfo kQ4_0Info{"Q4_0", kQK4_0, sizeof(BlockQ4_0)};
constexpr DTypeInfo kQ4_KInfo{"Q4_K", kQK_K, sizeof(BlockQ4_K)};

uint32_t FloatBits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float BitsFloat(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// The 6-bit scale and min of sub-block j of a Q4_K block (GGML's packing).
void ScaleMinK4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

}  // namespace

absl::StatusOr<DTypeInfo> GetDTypeInfo(uint32_t id) {
  switch (id) {
    case 0: return kF32Info;
    case 1: return kF16Info;
    case 2: return kQ4_0Info;
    case 8: return kQ8_0Info;
    case 12: return kQ4_KInfo;
    case 30: return kBF16Info;
    default:
      return absl::InvalidArgumentError(absl::StrCat(
          "tensor type ", id,
          " is not supported (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K)"));
  }
}

DTypeInfo GetDTypeInfo(DType type) { return *GetDTypeInfo(static_cast<uint32_t>(type)); }

std::string_view DTypeName(DType type) { return GetDTypeInfo(type).name; }

absl::StatusOr<size_t> RowBytes(DType type, int64_t n) {
  const DTypeInfo info = GetDTypeInfo(type);
  if (n < 0 || n % info.block_size != 0) {
    return absl::InvalidArgumentError(absl::StrCat("a row of ", n, " elements is not a whole number of ",
                                                   std::string(info.name), " blocks of ", info.block_size));
  }
  const uint64_t blocks = static_cast<uint64_t>(n) / info.block_size;
  if (blocks > std::numeric_limits<size_t>::max() / info.type_size) {
    return absl::InvalidArgumentError("row size overflows");
  }
  return blocks * info.type_size;
}

float F16ToF32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  if (exp == 0) {
    if (mant == 0) return BitsFloat(sign);
    // Subnormal: normalise.
    int e = -1;
    do {
      ++e;
      mant <<= 1;
    } while ((mant & 0x400) == 0);
    mant &= 0x3FF;
    return BitsFloat(sign | ((127 - 15 - e) << 23) | (mant << 13));
  }
  if (exp == 31) return BitsFloat(sign | 0x7F800000 | (mant << 13));
  return BitsFloat(sign | ((exp + 127 - 15) << 23) | (mant << 13));
}

uint16_t F32ToF16(float f) {
  const uint32_t x = FloatBits(f);
  const uint16_t sign = (x >> 16) & 0x8000;
  const uint32_t abs = x & 0x7FFFFFFF;
  if (abs > 0x7F800000) return sign | 0x7E00;                 // NaN
  if (abs >= 0x477FF000) return sign | 0x7C00;                // overflow to inf (>= 65520)
  if (abs < 0x38800000) {                                     // subnormal or zero in f16
    if (abs < 0x33000000) return sign;                        // rounds to zero
    const uint32_t e = abs >> 23;
    const uint32_t m = (abs & 0x7FFFFF) | 0x800000;
    const int shift = 126 - static_cast<int>(e);              // 14 + (113 - e) ... bits to drop + 13
    const uint32_t half = 1u << (shift - 1);
    uint32_t r = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1);
    if (rem > half || (rem == half && (r & 1))) ++r;
    return sign | static_cast<uint16_t>(r);
  }
  uint32_t r = abs - 0x38000000;  // rebias exponent 127 -> 15
  const uint32_t rem = r & 0x1FFF;
  r >>= 13;
  if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) ++r;
  return sign | static_cast<uint16_t>(r);
}

float BF16ToF32(uint16_t h) { return BitsFloat(static_cast<uint32_t>(h) << 16); }

uint16_t F32ToBF16(float f) {
  uint32_t x = FloatBits(f);
  if ((x & 0x7FFFFFFF) > 0x7F800000) return static_cast<uint16_t>((x >> 16) | 0x40);  // quiet NaN
  x += 0x7FFF + ((x >> 16) & 1);
  return static_cast<uint16_t>(x >> 16);
}

void DequantizeRow(DType type, const void* src, float* dst, int64_t n) {
  switch (type) {
    case DType::kF32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::kF16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = F16ToF32(s[i]);
      return;
    }
    case DType::kBF16: {
      const auto* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = BF16ToF32(s[i]);
      return;
    }
    case DType::kQ8_0: {
      const auto* b = static_cast<const BlockQ8_0*>(src);
      for (int64_t i = 0; i < n / kQK8_0; ++i) {
        const float d = F16ToF32(b[i].d);
        for (int j = 0; j < kQK8_0; ++j) dst[i * kQK8_0 + j] = d * b[i].qs[j];
      }
      return;
    }
    case DType::kQ4_0: {
      const auto* b = static_cast<const BlockQ4_0*>(src);
      for (int64_t i = 0; i < n / kQK4_0; ++i) {
        const float d = F16ToF32(b[i].d);
        float* y = dst + i * kQK4_0;
        for (int j = 0; j < kQK4_0 / 2; ++j) {
          y[j] = ((b[i].qs[j] & 0xF) - 8) * d;
          y[j + kQK4_0 / 2] = ((b[i].qs[j] >> 4) - 8) * d;
        }
      }
      return;
    }
    case DType::kQ4_K: {
      const auto* b = static_cast<const BlockQ4_K*>(src);
      for (int64_t i = 0; i < n / kQK_K; ++i) {
        const float d = F16ToF32(b[i].d);
        const float dmin = F16ToF32(b[i].dmin);
        const uint8_t* q = b[i].qs;
        float* y = dst + i * kQK_K;
        int is = 0;
        for (int j = 0; j < kQK_K; j += 64) {
          uint8_t sc, m;
          ScaleMinK4(is, b[i].scales, &sc, &m);
          const float d1 = d * sc, m1 = dmin * m;
          ScaleMinK4(is + 1, b[i].scales, &sc, &m);
          const float d2 = d * sc, m2 = dmin * m;
          for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
          for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
          q += 32;
          is += 2;
        }
      }
      return;
    }
  }
}

void QuantizeRow(DType type, const float* src, void* dst, int64_t n) {
  switch (type) {
    case DType::kF32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case DType::kF16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = F32ToF16(src[i]);
      return;
    }
    case DType::kBF16: {
      auto* d = static_cast<uint16_t*>(dst);
      for (int64_t i = 0; i < n; ++i) d[i] = F32ToBF16(src[i]);
      return;
    }
    case DType::kQ8_0: {
      auto* b = static_cast<BlockQ8_0*>(dst);
      for (int64_t i = 0; i < n / kQK8_0; ++i) {
        const float* x = src + i * kQK8_0;
        float amax = 0;
        for (int j = 0; j < kQK8_0; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0 ? 1.0f / d : 0.0f;
        b[i].d = F32ToF16(d);
        for (int j = 0; j < kQK8_0; ++j) b[i].qs[j] = static_cast<int8_t>(std::roundf(x[j] * id));
      }
      return;
    }
    case DType::kQ4_0: {
      auto* b = static_cast<BlockQ4_0*>(dst);
      for (int64_t i = 0; i < n / kQK4_0; ++i) {
        const float* x = src + i * kQK4_0;
        float amax = 0, max = 0;
        for (int j = 0; j < kQK4_0; ++j) {
          if (std::fabs(x[j]) > amax) {
            amax = std::fabs(x[j]);
            max = x[j];
          }
        }
        const float d = max / -8.0f;
        const float id = d != 0 ? 1.0f / d : 0.0f;
        b[i].d = F32ToF16(d);
        for (int j = 0; j < kQK4_0 / 2; ++j) {
          const uint8_t lo = std::min<int>(15, static_cast<int8_t>(x[j] * id + 8.5f));
          const uint8_t hi = std::min<int>(15, static_cast<int8_t>(x[j + kQK4_0 / 2] * id + 8.5f));
          b[i].qs[j] = lo | (hi << 4);
        }
      }
      return;
    }
    case DType::kQ4_K: {
      // A simple min/max fit per 32-element sub-block (GGML searches scales more carefully; any
      // valid encoding dequantizes the same way everywhere).
      auto* b = static_cast<BlockQ4_K*>(dst);
      for (int64_t i = 0; i < n / kQK_K; ++i) {
        const float* x = src + i * kQK_K;
        float scales[8], mins[8];
        for (int s = 0; s < 8; ++s) {
          float lo = 0, hi = 0;
          for (int l = 0; l < 32; ++l) {
            lo = std::min(lo, x[s * 32 + l]);
            hi = std::max(hi, x[s * 32 + l]);
          }
          scales[s] = (hi - lo) / 15.0f;
          mins[s] = -lo;
        }
        const float max_scale = *std::max_element(scales, scales + 8);
        const float max_min = *std::max_element(mins, mins + 8);
        const float d = max_scale / 63.0f, dmin = max_min / 63.0f;
        BlockQ4_K& blk = b[i];
        blk.d = F32ToF16(d);
        blk.dmin = F32ToF16(dmin);
        std::memset(blk.scales, 0, sizeof(blk.scales));
        uint8_t ls[8], lm[8];
        for (int s = 0; s < 8; ++s) {
          ls[s] = d > 0 ? std::min(63, static_cast<int>(std::lround(scales[s] / d))) : 0;
          lm[s] = dmin > 0 ? std::min(63, static_cast<int>(std::lround(mins[s] / dmin))) : 0;
          if (s < 4) {
            blk.scales[s] |= ls[s];
            blk.scales[s + 4] |= lm[s];
          } else {
            blk.scales[s + 4] = (ls[s] & 0xF) | ((lm[s] & 0xF) << 4);
            blk.scales[s - 4] |= (ls[s] >> 4) << 6;
            blk.scales[s] |= (lm[s] >> 4) << 6;
          }
        }
        const float fd = F16ToF32(blk.d), fdmin = F16ToF32(blk.dmin);
        uint8_t L[kQK_K];
        for (int s = 0; s < 8; ++s) {
          const float sd = fd * ls[s], sm = fdmin * lm[s];
          for (int l = 0; l < 32; ++l) {
            const int q = sd > 0 ? static_cast<int>(std::lround((x[s * 32 + l] + sm) / sd)) : 0;
            L[s * 32 + l] = static_cast<uint8_t>(std::clamp(q, 0, 15));
          }
        }
        uint8_t* q = blk.qs;
        for (int j = 0; j < kQK_K; j += 64) {
          for (int l = 0; l < 32; ++l) q[l] = L[j + l] | (L[j + l + 32] << 4);
          q += 32;
        }
      }
      return;
    }
  }
}

}  // namespace tessera::engine
