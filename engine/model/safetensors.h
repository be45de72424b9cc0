// Hugging Face safetensors loading: SafetensorsFile (one .safetensors file, memory-mapped) and
// SafetensorsModel (a model directory: config.json plus model.safetensors or the shards listed in
// model.safetensors.index.json).
//
// A safetensors file is an 8-byte little-endian header length N, N bytes of JSON mapping tensor
// names to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the data
// section that follows the header) plus an optional "__metadata__" string map, then the data.
// Shapes are stored row-major with the last dimension innermost; TensorView presents them in
// GGML order (reversed: shape[0] innermost) like every other loader. A 0-d (scalar) tensor gets
// shape {1}.
//
// The engine computes with F32, F16 and BF16. Tensors of other dtypes (I64, U8, F64, ...) are
// INVALID_ARGUMENT naming the tensor and dtype, unless Options::skip_unsupported_dtypes, which
// validates and then leaves them out (some checkpoints carry an I64 "position_ids" buffer).
//
// Every offset and size is checked against the file before use; a hostile or truncated file is
// INVALID_ARGUMENT saying what is wrong, never a crash. Tensor data is not copied, except that of
// a tensor misaligned for its element type (safetensors promises no alignment; files written by
// the safetensors library are aligned), see AlignTensorData in model_file.h.
//
// Thread-safety: immutable after Open; const methods may be called concurrently. TensorViews
// live as long as the object that returned them.
#ifndef TESSERA_ENGINE_MODEL_SAFETENSORS_H_
#define TESSERA_ENGINE_MODEL_SAFETENSORS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "engine/model/model_file.h"
#include "engine/model/tensor.h"
#include "nlohmann/json.hpp"

namespace tessera::engine {

// The largest JSON header accepted.
inline constexpr uint64_t kSafetensorsMaxHeaderBytes = 100 << 20;

struct SafetensorsOptions {
  // See the file comment.
  bool skip_unsupported_dtypes = false;
};

class SafetensorsFile : public ModelFile {
 public:
  // Maps and validates `path`. NOT_FOUND for a missing file; INVALID_ARGUMENT (message starting
  // with the path) for an invalid one.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path,
                                                               SafetensorsOptions options = {});
  // Parses a file held in memory (owns `bytes`). Same validation and errors as Open.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> FromBuffer(std::string bytes,
                                                                     SafetensorsOptions options = {});

  // Tensors ordered by their position in the file.
  const std::vector<TensorView>& tensors() const override { return tensors_; }
  const TensorView* FindTensor(std::string_view name) const override;
  // The "__metadata__" entry (empty when absent).
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  // Tensors left out under skip_unsupported_dtypes, as "name (DTYPE)".
  const std::vector<std::string>& skipped() const { return skipped_; }
  // The whole file.
  std::string_view bytes() const { return bytes_.view(); }

 private:
  explicit SafetensorsFile(FileBytes bytes) : bytes_(std::move(bytes)) {}
  absl::Status Parse(const SafetensorsOptions& options);

  FileBytes bytes_;
  std::vector<TensorView> tensors_;
  std::vector<std::unique_ptr<uint64_t[]>> aligned_copies_;
  absl::flat_hash_map<std::string_view, size_t> index_;  // into tensors_, built once it is final
  std::map<std::string, std::string> metadata_;
  std::vector<std::string> skipped_;
};

class SafetensorsModel : public ModelFile {
 public:
  // Opens a Hugging Face model directory: config.json (required, a JSON object) and either
  // model.safetensors.index.json (whose "weight_map" maps each tensor to its shard file in `dir`)
  // or model.safetensors. NOT_FOUND when config.json, the weights or a listed shard is missing;
  // INVALID_ARGUMENT for invalid JSON or weights, a tensor the index places in a shard that lacks
  // it, or a tensor present in two shards. Messages name the file.
  static absl::StatusOr<std::unique_ptr<SafetensorsModel>> Open(const std::string& dir,
                                                                SafetensorsOptions options = {});

  const nlohmann::json& config() const { return config_; }
  // Every tensor of every shard (shards in file-name order, tensors in file order).
  const std::vector<TensorView>& tensors() const override { return tensors_; }
  const TensorView* FindTensor(std::string_view name) const override;
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }

 private:
  SafetensorsModel() = default;

  nlohmann::json config_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::vector<TensorView> tensors_;
  absl::flat_hash_map<std::string_view, size_t> index_;  // into tensors_, built once it is final
};

}  // namespace tessera::engine

#endif  // TESSERA_ENGINE_MODEL_SAFETENSORS_H_
