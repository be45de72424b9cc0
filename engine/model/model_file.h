// ModelFile: the common face of a loaded set of model weights (a GGUF file, a safetensors file
// or a Hugging Face model directory), so that model code can take tensors by name without
// knowing the container. Also FileBytes, the read-only bytes of a file (memory-mapped, or an
// owned buffer for tests and fuzzers) that the loaders parse and point into.
#ifndef TESSERA_ENGINE_MODEL_MODEL_FILE_H_
#define TESSERA_ENGINE_MODEL_MODEL_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model/tensor.h"

namespace tessera::engine {

class ModelFile {
 public:
  virtual ~ModelFile() = default;

  // Every tensor, in file order. The views point into memory owned by this object.
  virtual const std::vector<TensorView>& tensors() const = 0;

  // The tensor called `name`, or nullptr. The default scans tensors(); loaders override it with
  // an index.
  virtual const TensorView* FindTensor(std::string_view name) const;
};

// Tensor data must be usable as arrays of its element type (float for F32, uint16_t for F16/BF16,
// the Block structs for quantized types). Loaders point into the file, which meets this for every
// file written by llama.cpp or the safetensors library; for the rest (an odd general.alignment, a
// hand-made safetensors file) this copies the data of each misaligned tensor into `copies` and
// repoints it. Copies total at most the file size, since tensors do not overlap.
size_t RequiredAlignment(DType type);
void AlignTensorData(std::vector<TensorView>* tensors, std::vector<std::unique_ptr<uint64_t[]>>* copies);

// Read-only bytes of a whole file: either an mmap of the file (unmapped on destruction) or an
// owned std::string. Move-only. data() stays at the same address for the object's lifetime,
// including across moves.
class FileBytes {
 public:
  // Maps `path` read-only. NOT_FOUND for a missing file, INVALID_ARGUMENT for an empty file or a
  // directory, INTERNAL for other OS errors; messages name the path.
  static absl::StatusOr<FileBytes> Map(const std::string& path);
  // Takes ownership of `bytes`.
  static FileBytes Own(std::string bytes);

  FileBytes() = default;
  FileBytes(FileBytes&& other) noexcept;
  FileBytes& operator=(FileBytes&& other) noexcept;
  FileBytes(const FileBytes&) = delete;
  FileBytes& operator=(const FileBytes&) = delete;
  ~FileBytes();

  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }
  std::string_view view() const { return {reinterpret_cast<const char*>(data_), size_}; }
  bool mapped() const { return mapped_; }

 private:
  void Reset();

  const unsigned char* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  // Heap-allocated so that data_ survives moves (a moved std::string may change its buffer).
  std::unique_ptr<std::string> owned_;
};

}  // namespace tessera::engine

#endif  // TESSERA_ENGINE_MODEL_MODEL_FILE_H_
