// TensorView: one named tensor of a loaded model file, as every loader (GGUF, safetensors)
// presents it: element type, shape in GGML order, and a pointer to the bytes where they lie in
// the (memory-mapped) file. Views never own data; they stay valid as long as the file object
// that returned them is alive.
#ifndef TESSERA_ENGINE_MODEL_TENSOR_H_
#define TESSERA_ENGINE_MODEL_TENSOR_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/model/dtype.h"

namespace tessera::engine {

struct TensorView {
  std::string name;
  DType type = DType::kF32;
  // GGML order: shape[0] is the contiguous (innermost) dimension. Never empty (a scalar is {1}).
  std::vector<int64_t> shape;
  const void* data = nullptr;  // into the mapped file; owned by the file object
  size_t nbytes = 0;

  // Elements per row (the innermost dimension).
  int64_t cols() const { return shape.empty() ? 1 : shape[0]; }
  // Number of rows: the product of shape[1..] (1 for a 1-D tensor).
  int64_t rows() const {
    int64_t r = 1;
    for (size_t i = 1; i < shape.size(); ++i) r *= shape[i];
    return r;
  }
  int64_t num_elements() const { return cols() * rows(); }
};

}  // namespace tessera::engine

#endif  // TESSERA_ENGINE_MODEL_TENSOR_H_
