// GgufFile: a read-only, validated view of a GGUF model file (versions 2 and 3, little-endian),
// the format of llama.cpp. The file is memory-mapped; metadata values and tensor data are read
// where they lie, never copied, so opening a 7B model with 32k-entry vocabulary arrays is cheap.
//
// Every count, length, offset and size in the file is checked against the file size before any
// byte it refers to is read: a truncated or hostile file yields INVALID_ARGUMENT naming what is
// wrong and the byte offset where it was found, never a crash or an outsized allocation.
//
// Tensor data pointers are aligned for their element type (see AlignTensorData in model_file.h).
//
// Thread-safety: a GgufFile is immutable after Open; all const methods may be called
// concurrently. TensorViews and string_views returned point into the file and live as long as
// the GgufFile.
#ifndef TESSERA_ENGINE_MODEL_GGUF_H_
#define TESSERA_ENGINE_MODEL_GGUF_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "engine/model/model_file.h"
#include "engine/model/tensor.h"

namespace tessera::engine {

// GGUF metadata value types (the numbers stored in the file).
enum class GgufType : uint32_t {
  kUint8 = 0,
  kInt8 = 1,
  kUint16 = 2,
  kInt16 = 3,
  kUint32 = 4,
  kInt32 = 5,
  kFloat32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kUint64 = 10,
  kInt64 = 11,
  kFloat64 = 12,
};

// "UINT32", "STRING", ...; "UNKNOWN" for ids outside the enum.
std::string_view GgufTypeName(GgufType type);

// The default (and minimum meaningful) alignment of the tensor data section and of each tensor.
inline constexpr uint64_t kGgufDefaultAlignment = 32;

class GgufFile : public ModelFile {
 public:
  // One metadata key/value pair, in file order (for printing model info; use the typed getters
  // to read values).
  struct Entry {
    std::string_view key;
    GgufType type;
    GgufType array_type = GgufType::kUint8;  // element type when type == kArray
    uint64_t array_length = 0;               // number of elements when type == kArray
  };

  // Maps `path` read-only and validates it. NOT_FOUND for a missing file, INVALID_ARGUMENT (the
  // message starts with the path) for a file that is not valid GGUF.
  static absl::StatusOr<std::unique_ptr<GgufFile>> Open(const std::string& path);
  // Parses a GGUF file held in memory (owns `bytes`). Same validation and errors as Open.
  static absl::StatusOr<std::unique_ptr<GgufFile>> FromBuffer(std::string bytes);

  ~GgufFile() override;
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  int version() const { return version_; }
  // general.architecture ("llama", "bert", ...), or "" when absent or not a string.
  std::string_view architecture() const;
  // general.alignment, or 32 when absent.
  uint64_t alignment() const { return alignment_; }
  // Byte offset of the tensor data section in the file.
  uint64_t data_offset() const { return data_offset_; }
  size_t file_size() const { return bytes_.size(); }
  // The whole file as mapped (tensor data pointers lie inside it).
  std::string_view bytes() const { return bytes_.view(); }

  // Metadata. Getters return NOT_FOUND for a missing key and INVALID_ARGUMENT naming the key and
  // both types when the value has another type.
  bool Has(std::string_view key) const;
  // Any integer type (u8..i64). A UINT64 value above INT64_MAX is INVALID_ARGUMENT.
  absl::StatusOr<int64_t> GetInt(std::string_view key) const;
  // FLOAT32 or FLOAT64.
  absl::StatusOr<double> GetFloat(std::string_view key) const;
  absl::StatusOr<bool> GetBool(std::string_view key) const;
  // A view into the file.
  absl::StatusOr<std::string_view> GetString(std::string_view key) const;
  // Arrays. GetFloatArray accepts FLOAT32/FLOAT64 elements, GetIntArray any integer element type.
  // Keep the StatusOr in a variable before iterating: `for (auto t : *f.GetStringArray(k))`
  // iterates a destroyed temporary.
  absl::StatusOr<std::vector<std::string_view>> GetStringArray(std::string_view key) const;
  absl::StatusOr<std::vector<float>> GetFloatArray(std::string_view key) const;
  absl::StatusOr<std::vector<int64_t>> GetIntArray(std::string_view key) const;

  // All metadata entries in file order.
  const std::vector<Entry>& entries() const { return entries_; }
  // The value of `key` as short human-readable text (arrays show their first `max_elements`
  // elements and their length; long strings are cut). "" for a missing key.
  std::string FormatValue(std::string_view key, size_t max_elements = 8) const;

  // Tensors, in file order.
  const std::vector<TensorView>& tensors() const override { return tensors_; }
  const TensorView* FindTensor(std::string_view name) const override;

 private:
  class Parser;

  explicit GgufFile(FileBytes bytes);
  absl::Status Parse();
  // The entry index of `key`: NOT_FOUND when absent.
  absl::StatusOr<size_t> Find(std::string_view key) const;
  // The entry index of an array `key`; INVALID_ARGUMENT when the value is not an array.
  absl::StatusOr<size_t> FindArray(std::string_view key) const;

  FileBytes bytes_;
  int version_ = 0;
  uint64_t alignment_ = kGgufDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<Entry> entries_;
  // Parallel to entries_: file offset of each value (for arrays, of the first element).
  std::vector<uint64_t> value_offsets_;
  absl::flat_hash_map<std::string_view, size_t> entry_index_;
  std::vector<TensorView> tensors_;
  std::vector<std::unique_ptr<uint64_t[]>> aligned_copies_;  // see AlignTensorData
  absl::flat_hash_map<std::string_view, size_t> tensor_index_;  // keys point into the file
};

}  // namespace tessera::engine

#endif  // TESSERA_ENGINE_MODEL_GGUF_H_
