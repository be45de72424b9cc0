// Element types of model tensors, with the numbering and block layouts of GGML/GGUF so that
// GGUF tensors are used as they lie in the file. Quantized types pack a block of elements into
// a fixed number of bytes (Q8_0: 32 int8 + one f16 scale). This header is the one place that
// knows the layouts; the loaders validate sizes with it, the backends compute with it.
#ifndef TESSERA_ENGINE_MODEL_DTYPE_H_
#define TESSERA_ENGINE_MODEL_DTYPE_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"

namespace tessera::engine {

// GGML type ids (the numbers GGUF stores). Only the types the engine computes with are named;
// GetDTypeInfo rejects every other id with a clear error.
enum class DType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ8_0 = 8,
  kQ4_K = 12,
  kBF16 = 30,
};

struct DTypeInfo {
  std::string_view name;  // "F32", "Q8_0", ...
  int block_size;         // elements per block (1 for float types)
  int type_size;          // bytes per block
};

// The layout of `id`, or INVALID_ARGUMENT naming the unsupported type.
absl::StatusOr<DTypeInfo> GetDTypeInfo(uint32_t id);
DTypeInfo GetDTypeInfo(DType type);  // for known types; never fails
std::string_view DTypeName(DType type);

// Bytes of a row of `n` elements, or INVALID_ARGUMENT when n is not a multiple of the block size
// or the size overflows.
absl::StatusOr<size_t> RowBytes(DType type, int64_t n);

// Block layouts (little-endian, packed, as in GGML).
inline constexpr int kQK8_0 = 32;
struct BlockQ8_0 {
  uint16_t d;  // f16 scale
  int8_t qs[kQK8_0];
};
static_assert(sizeof(BlockQ8_0) == 34);

inline constexpr int kQK4_0 = 32;
struct BlockQ4_0 {
  uint16_t d;                // f16 scale
  uint8_t qs[kQK4_0 / 2];    // element j in the low nibble of qs[j], j+16 in the high nibble; value (q-8)*d
};
static_assert(sizeof(BlockQ4_0) == 18);

inline constexpr int kQK_K = 256;
struct BlockQ4_K {
  uint16_t d;          // f16 super-block scale for the 6-bit scales
  uint16_t dmin;       // f16 super-block scale for the 6-bit mins
  uint8_t scales[12];  // 8 scales and 8 mins, 6 bits each
  uint8_t qs[kQK_K / 2];
};
static_assert(sizeof(BlockQ4_K) == 144);

// Scalar conversions (exact, round-to-nearest-even for the narrowing ones).
float F16ToF32(uint16_t h);
uint16_t F32ToF16(float f);
float BF16ToF32(uint16_t h);
uint16_t F32ToBF16(float f);

// Reference (scalar) conversion of `n` elements of `type` starting at `src` to float. `n` must be
// a multiple of the block size. Backends have faster versions; tests compare against this one.
void DequantizeRow(DType type, const void* src, float* dst, int64_t n);

// Reference quantization of `n` floats (a multiple of the block size) into `type` blocks, with
// GGML's rounding, so that tests and the benchmarks can build quantized weights.
void QuantizeRow(DType type, const float* src, void* dst, int64_t n);

}  // namespace tessera::engine

#endif  // TESSERA_ENGINE_MODEL_DTYPE_H_
