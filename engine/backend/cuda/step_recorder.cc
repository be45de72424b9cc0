#include "engine/backend/cuda/step_recorder.h"

namespace tessera::engine::cuda {

int64_t MetaArena::Reserve(int64_t n) {
  int64_t r = kMinReserve;
  while (r < n) r <<= 1;
  return r;
}

void MetaArena::Reset() {
  used_ = 0;
  last_.clear();
}

std::optional<int64_t> MetaArena::Stage(int kind, const int32_t* data, int64_t n) {
  if (n < 0) return std::nullopt;
  auto it = last_.find(kind);
  if (it != last_.end() && it->second.n == n &&
      (n == 0 || std::memcmp(host_ + it->second.offset, data, n * sizeof(int32_t)) == 0)) {
    return it->second.offset;
  }
  const int64_t reserve = Reserve(n);  // a multiple of kAlign, so used_ stays aligned
  if (used_ + reserve > capacity_) return std::nullopt;
  const int64_t offset = used_;
  if (n > 0) std::memcpy(host_ + offset, data, n * sizeof(int32_t));
  // The reserved tail is zeroed: the bytes copied to the device are the same whatever the
  // previous step left there.
  std::memset(host_ + offset + n, 0, (reserve - n) * sizeof(int32_t));
  used_ += reserve;
  last_[kind] = Last{offset, n};
  return offset;
}

}  // namespace tessera::engine::cuda
