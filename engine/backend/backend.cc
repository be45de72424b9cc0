#include "engine/backend/backend.h"

#include <limits>

#include "absl/strings/str_cat.h"

namespace tessera::engine {

absl::StatusOr<size_t> CheckWeightData(const WeightData& w) {
  if (absl::Status s = GetDTypeInfo(static_cast<uint32_t>(w.type)).status(); !s.ok()) return s;
  if (w.rows <= 0 || w.cols <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("weight shape [", w.rows, ", ", w.cols, "] is empty or negative"));
  }
  absl::StatusOr<size_t> row_bytes = RowBytes(w.type, w.cols);
  if (!row_bytes.ok()) return row_bytes.status();
  if (static_cast<uint64_t>(w.rows) > std::numeric_limits<size_t>::max() / *row_bytes) {
    return absl::InvalidArgumentError("weight size overflows");
  }
  if (w.data == nullptr) return absl::InvalidArgumentError("weight data is null");
  return row_bytes;
}

absl::StatusOr<int64_t> CheckKvCacheShape(const KvCacheShape& s) {
  if (s.num_layers <= 0 || s.num_blocks <= 0 || s.block_size <= 0 || s.num_kv_heads <= 0 ||
      s.head_dim <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "KV cache shape must be positive: layers=", s.num_layers, " blocks=", s.num_blocks,
        " block_size=", s.block_size, " kv_heads=", s.num_kv_heads, " head_dim=", s.head_dim));
  }
  const double total =
      2.0 * s.num_layers * s.num_blocks * s.block_size * s.num_kv_heads * s.head_dim * sizeof(uint16_t);
  if (total > static_cast<double>(std::numeric_limits<int64_t>::max() / 2)) {
    return absl::InvalidArgumentError("KV cache size overflows");
  }
  return int64_t{s.num_blocks} * s.block_size * s.num_kv_heads * s.head_dim;
}

}  // namespace tessera::engine
