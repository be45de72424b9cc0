// GgufWriter: builds GGUF v3 files in memory for tests and benchmarks (test-only): metadata of
// every GGUF type including nested arrays, and tensors given as floats and stored as F32, F16,
// BF16 or a quantized type through the reference QuantizeRow, so that tests can make small
// Llama/BERT models with seeded random weights and load them with GgufFile.
//
// Usage:
//   GgufWriter w;
//   w.AddString("general.architecture", "llama");
//   w.AddUint32("llama.block_count", 2);
//   ASSERT_OK(w.AddTensor("token_embd.weight", DType::kQ8_0, {64, 512}, weights));
//   ASSERT_OK(w.WriteFile(path));   // or std::string bytes = w.Serialize();
//
// Not thread-safe. Keys and tensors are written in the order they were added; adding a key or a
// tensor name twice writes both (readers reject such files, which hostile-input tests rely on).
#ifndef TESSERA_ENGINE_MODEL_GGUF_WRITER_H_
#define TESSERA_ENGINE_MODEL_GGUF_WRITER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/model/dtype.h"
#include "engine/model/gguf.h"

namespace tessera::engine {

// One metadata value, already encoded.
class GgufValue {
 public:
  static GgufValue Uint8(uint8_t v);
  static GgufValue Int8(int8_t v);
  static GgufValue Uint16(uint16_t v);
  static GgufValue Int16(int16_t v);
  static GgufValue Uint32(uint32_t v);
  static GgufValue Int32(int32_t v);
  static GgufValue Uint64(uint64_t v);
  static GgufValue Int64(int64_t v);
  static GgufValue Float32(float v);
  static GgufValue Float64(double v);
  static GgufValue Bool(bool v);
  static GgufValue String(std::string_view v);
  // An array of `element_type`; every element must have that type (aborts otherwise).
  // Elements may themselves be arrays (of any, possibly differing, element types).
  static GgufValue Array(GgufType element_type, const std::vector<GgufValue>& elements);
  static GgufValue StringArray(const std::vector<std::string>& v);
  static GgufValue Float32Array(absl::Span<const float> v);
  static GgufValue Int32Array(absl::Span<const int32_t> v);

  GgufType type() const { return type_; }
  // The encoded value, without its type id (for arrays: element type, length, elements).
  const std::string& encoded() const { return encoded_; }

 private:
  GgufValue(GgufType type, std::string encoded) : type_(type), encoded_(std::move(encoded)) {}
  GgufType type_;
  std::string encoded_;
};

class GgufWriter {
 public:
  struct Options {
    uint32_t version = 3;
    // Alignment of the data section and of each tensor. When not 32, a general.alignment
    // (UINT32) key is written first. Must be a power of two.
    uint32_t alignment = 32;
  };

  GgufWriter() : GgufWriter(Options()) {}
  explicit GgufWriter(Options options);

  void Add(std::string_view key, GgufValue value);
  void AddUint32(std::string_view key, uint32_t v) { Add(key, GgufValue::Uint32(v)); }
  void AddInt32(std::string_view key, int32_t v) { Add(key, GgufValue::Int32(v)); }
  void AddUint64(std::string_view key, uint64_t v) { Add(key, GgufValue::Uint64(v)); }
  void AddInt64(std::string_view key, int64_t v) { Add(key, GgufValue::Int64(v)); }
  void AddFloat32(std::string_view key, float v) { Add(key, GgufValue::Float32(v)); }
  void AddFloat64(std::string_view key, double v) { Add(key, GgufValue::Float64(v)); }
  void AddBool(std::string_view key, bool v) { Add(key, GgufValue::Bool(v)); }
  void AddString(std::string_view key, std::string_view v) { Add(key, GgufValue::String(v)); }
  void AddStringArray(std::string_view key, const std::vector<std::string>& v) {
    Add(key, GgufValue::StringArray(v));
  }
  void AddFloat32Array(std::string_view key, absl::Span<const float> v) {
    Add(key, GgufValue::Float32Array(v));
  }
  void AddInt32Array(std::string_view key, absl::Span<const int32_t> v) {
    Add(key, GgufValue::Int32Array(v));
  }

  // Adds a tensor of `shape` (GGML order: shape[0] is the row length) from `values` (row-major,
  // shape[0] contiguous), converted to `type` row by row with QuantizeRow. INVALID_ARGUMENT when
  // the shape is empty or has a dimension < 1, when values.size() is not the element count, or
  // when shape[0] is not a multiple of the type's block size.
  absl::Status AddTensor(std::string_view name, DType type, std::vector<int64_t> shape,
                         absl::Span<const float> values);
  // Adds a tensor whose bytes are already encoded; `data` must be exactly the tensor's size.
  absl::Status AddRawTensor(std::string_view name, DType type, std::vector<int64_t> shape,
                            std::string data);

  // The whole file.
  std::string Serialize() const;
  // Writes Serialize() to `path` (replacing it). INTERNAL with the OS reason on failure.
  absl::Status WriteFile(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    DType type;
    std::vector<int64_t> shape;
    std::string data;
  };
  Options options_;
  std::vector<std::pair<std::string, GgufValue>> kvs_;
  std::vector<Tensor> tensors_;
};

}  // namespace tessera::engine

#endif  // TESSERA_ENGINE_MODEL_GGUF_WRITER_H_
