#include "engine/backend/backend.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
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

void Backend::MatMuls(absl::Span<const Weight* const> w, const Buffer& x, int64_t n,
                      absl::Span<Buffer* const> y) {
  if (w.size() != y.size()) {
    std::fprintf(stderr, "Backend::MatMuls: %zu weights but %zu outputs\n", w.size(), y.size());
    std::abort();
  }
  for (size_t j = 0; j < w.size(); ++j) MatMul(*w[j], x, n, *y[j]);
}

void Backend::MatMulSwiGlu(const Weight& w_gate, const Weight& w_up, const Buffer& x, int64_t n,
                           Buffer& gate, Buffer& up) {
  const Weight* w[] = {&w_gate, &w_up};
  Buffer* y[] = {&gate, &up};
  MatMuls(w, x, n, y);
  SiluMul(gate, up, n * w_gate.rows());
}

void CheckTopKRequest(const Buffer& logits, int64_t rows, int64_t cols, const TopKRequest& r) {
  const char* bad = nullptr;
  if (r.k < 1 || r.k > kMaxTopK) {
    bad = "k must be in [1, kMaxTopK]";
  } else if (rows < 0 || cols <= 0 || rows * cols > logits.size()) {
    bad = "the logits buffer is smaller than rows * cols";
  } else if (static_cast<int64_t>(r.sum_temperature.size()) != rows ||
             static_cast<int64_t>(r.penalty.size()) != rows ||
             static_cast<int64_t>(r.penalty_starts.size()) != rows + 1) {
    bad = "per-row spans must hold one value per row (penalty_starts: rows + 1)";
  } else if (r.penalty_starts[0] != 0 ||
             r.penalty_starts[rows] != static_cast<int32_t>(r.penalty_ids.size()) ||
             !std::is_sorted(r.penalty_starts.begin(), r.penalty_starts.end())) {
    bad = "penalty_starts must run from 0 to penalty_ids.size() without decreasing";
  }
  if (bad != nullptr) {
    std::fprintf(stderr, "Backend::TopK: bad request: %s\n", bad);
    std::abort();
  }
}

void TopKRow(float* row, int64_t cols, int k, float sum_temperature, float penalty,
             absl::Span<const int32_t> penalty_ids, float* values, int32_t* ids, double* sum_exp,
             int32_t* nonfinite) {
  if (penalty != 1.0f) {
    for (int32_t t : penalty_ids) {
      if (t < 0 || t >= cols) continue;
      float& l = row[t];
      l = l > 0 ? l / penalty : l * penalty;
    }
  }
  // The k best under (value descending, id ascending), kept as a heap whose top is the worst.
  auto better = [](const std::pair<float, int32_t>& a, const std::pair<float, int32_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  std::vector<std::pair<float, int32_t>> heap;
  heap.reserve(k + 1);
  int32_t bad = 0;
  for (int64_t c = 0; c < cols; ++c) {
    const float v = row[c];
    if (!std::isfinite(v)) {
      ++bad;
      continue;
    }
    if (static_cast<int>(heap.size()) < k) {
      heap.push_back({v, static_cast<int32_t>(c)});
      std::push_heap(heap.begin(), heap.end(), better);
    } else if (better({v, static_cast<int32_t>(c)}, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), better);
      heap.back() = {v, static_cast<int32_t>(c)};
      std::push_heap(heap.begin(), heap.end(), better);
    }
  }
  std::sort(heap.begin(), heap.end(), better);
  for (int j = 0; j < k; ++j) {
    const bool have = j < static_cast<int>(heap.size());
    values[j] = have ? heap[j].first : -std::numeric_limits<float>::infinity();
    ids[j] = have ? heap[j].second : -1;
  }
  *nonfinite = bad;
  double sum = 0;
  if (sum_temperature > 0 && !heap.empty()) {
    const float max = heap.front().first;
    for (int64_t c = 0; c < cols; ++c) {
      const float v = row[c];
      if (std::isfinite(v)) sum += static_cast<float>(std::exp((v - max) / sum_temperature));
    }
  }
  *sum_exp = sum;
}

}  // namespace tessera::engine
