#include "engine/model/safetensors.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <set>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/model/dtype.h"

namespace tessera::engine {
namespace {

using json = nlohmann::json;

constexpr int kMaxJsonDepth = 64;
constexpr size_t kMaxDims = 8;
constexpr uint64_t kMaxConfigBytes = 64 << 20;

absl::string_view S(std::string_view s) { return absl::string_view(s.data(), s.size()); }

absl::Status Invalid(std::string_view msg) {
  return absl::InvalidArgumentError(absl::StrCat("invalid safetensors file: ", S(msg)));
}

// Element sizes of the safetensors dtypes. `supported` is set for the ones the engine computes with.
bool LookupDType(std::string_view name, uint64_t* size, DType* type, bool* supported) {
  struct Entry {
    std::string_view name;
    uint64_t size;
    DType type;
    bool supported;
  };
  static constexpr Entry kTable[] = {
      {"F32", 4, DType::kF32, true},     {"F16", 2, DType::kF16, true},
      {"BF16", 2, DType::kBF16, true},   {"F64", 8, DType::kF32, false},
      {"I64", 8, DType::kF32, false},    {"U64", 8, DType::kF32, false},
      {"I32", 4, DType::kF32, false},    {"U32", 4, DType::kF32, false},
      {"I16", 2, DType::kF32, false},    {"U16", 2, DType::kF32, false},
      {"I8", 1, DType::kF32, false},     {"U8", 1, DType::kF32, false},
      {"BOOL", 1, DType::kF32, false},   {"F8_E4M3", 1, DType::kF32, false},
      {"F8_E5M2", 1, DType::kF32, false},
  };
  for (const Entry& e : kTable) {
    if (e.name == name) {
      *size = e.size;
      *type = e.type;
      *supported = e.supported;
      return true;
    }
  }
  return false;
}

// Nesting depth of a JSON text, so that a hostile header cannot make the parser build millions
// of nested containers. Brackets inside strings do not count.
int JsonDepth(std::string_view text) {
  int depth = 0, max_depth = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      max_depth = std::max(max_depth, ++depth);
      if (max_depth > kMaxJsonDepth) return max_depth;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return max_depth;
}

// Parses JSON text, turning nlohmann's exceptions into INVALID_ARGUMENT prefixed with `what`.
absl::StatusOr<json> ParseJson(std::string_view text, std::string_view what) {
  if (JsonDepth(text) > kMaxJsonDepth) {
    return absl::InvalidArgumentError(
        absl::StrCat(S(what), " nests JSON deeper than ", kMaxJsonDepth, " levels"));
  }
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(S(what), " is not valid JSON: ", e.what()));
  }
}

std::string Quote(std::string_view s) {
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < 80; ++i) {
    const unsigned char c = s[i];
    if (c >= 0x20 && c < 0x7f && c != '\'') {
      out.push_back(static_cast<char>(c));
    } else {
      static const char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  if (s.size() > 80) out += "...";
  out.push_back('\'');
  return out;
}

// A non-negative integer that fits int64, or false.
bool GetCount(const json& j, uint64_t* out) {
  if (!j.is_number_unsigned()) {
    if (!j.is_number_integer() || j.get<int64_t>() < 0) return false;
  }
  const uint64_t v = j.get<uint64_t>();
  if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
  *out = v;
  return true;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path,
                                                                       SafetensorsOptions options) {
  absl::StatusOr<FileBytes> bytes = FileBytes::Map(path);
  if (!bytes.ok()) return bytes.status();
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile(*std::move(bytes)));
  if (absl::Status s = file->Parse(options); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
  }
  return file;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::FromBuffer(std::string bytes,
                                                                             SafetensorsOptions options) {
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile(FileBytes::Own(std::move(bytes))));
  if (absl::Status s = file->Parse(options); !s.ok()) return s;
  return file;
}

absl::Status SafetensorsFile::Parse(const SafetensorsOptions& options) {
  const uint64_t size = bytes_.size();
  if (size < 8) {
    return Invalid(absl::StrCat("the file has ", size, " bytes, too short for the 8-byte header length"));
  }
  uint64_t header_len;
  std::memcpy(&header_len, bytes_.data(), 8);
  if (header_len > kSafetensorsMaxHeaderBytes) {
    return Invalid(absl::StrCat("the header length is ", header_len, " bytes, above the limit of ",
                                kSafetensorsMaxHeaderBytes, " (is this a safetensors file?)"));
  }
  if (header_len > size - 8) {
    return Invalid(absl::StrCat("truncated: the header length is ", header_len, " bytes but only ", size - 8,
                                " bytes follow it"));
  }
  const std::string_view header = bytes_.view().substr(8, header_len);
  absl::StatusOr<json> parsed = ParseJson(header, "the header (bytes 8 to " + std::to_string(8 + header_len) + ")");
  if (!parsed.ok()) return Invalid(std::string(parsed.status().message()));
  const json& root = *parsed;
  if (!root.is_object()) return Invalid("the header is not a JSON object");

  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = size - data_start;
  struct Range {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Range> ranges;
  std::vector<std::pair<uint64_t, TensorView>> found;
  // The checks below keep nlohmann from throwing; the try is a backstop at the library boundary.
  try {
  for (const auto& [name, entry] : root.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) return Invalid("__metadata__ is not a JSON object");
      for (const auto& [k, v] : entry.items()) {
        if (!v.is_string()) {
          return Invalid(absl::StrCat("__metadata__ entry ", Quote(k), " is not a string"));
        }
        metadata_[k] = v.get<std::string>();
      }
      continue;
    }
    const std::string what = absl::StrCat("tensor ", Quote(name));
    if (!entry.is_object()) return Invalid(absl::StrCat(what, " is not a JSON object"));
    auto dtype_it = entry.find("dtype");
    auto shape_it = entry.find("shape");
    auto offsets_it = entry.find("data_offsets");
    if (dtype_it == entry.end() || !dtype_it->is_string()) {
      return Invalid(absl::StrCat(what, " has no string \"dtype\""));
    }
    if (shape_it == entry.end() || !shape_it->is_array()) {
      return Invalid(absl::StrCat(what, " has no array \"shape\""));
    }
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2) {
      return Invalid(absl::StrCat(what, " has no \"data_offsets\" [begin, end]"));
    }
    const std::string dtype_name = dtype_it->get<std::string>();
    uint64_t elem_size;
    DType type;
    bool supported;
    if (!LookupDType(dtype_name, &elem_size, &type, &supported)) {
      return Invalid(absl::StrCat(what, " has unknown dtype ", Quote(dtype_name)));
    }
    if (shape_it->size() > kMaxDims) {
      return Invalid(absl::StrCat(what, " has ", shape_it->size(), " dimensions (at most ", kMaxDims, ")"));
    }
    std::vector<int64_t> shape;
    uint64_t elements = 1;
    for (const json& d : *shape_it) {
      uint64_t dim;
      if (!GetCount(d, &dim)) {
        return Invalid(absl::StrCat(what, " has a shape entry that is not a non-negative integer: ", d.dump()));
      }
      if (__builtin_mul_overflow(elements, dim, &elements) ||
          elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return Invalid(absl::StrCat(what, ": the element count of shape ", shape_it->dump(), " overflows"));
      }
      shape.push_back(static_cast<int64_t>(dim));
    }
    uint64_t begin, end;
    if (!GetCount((*offsets_it)[0], &begin) || !GetCount((*offsets_it)[1], &end)) {
      return Invalid(absl::StrCat(what, " has data_offsets that are not non-negative integers: ",
                                  offsets_it->dump()));
    }
    if (begin > end || end > data_size) {
      return Invalid(absl::StrCat(what, " has data_offsets [", begin, ", ", end,
                                  "] outside the data section of ", data_size, " bytes (file bytes ", data_start,
                                  " to ", size, ")"));
    }
    uint64_t nbytes;
    if (__builtin_mul_overflow(elements, elem_size, &nbytes) || nbytes != end - begin) {
      return Invalid(absl::StrCat(what, " (", dtype_name, ", shape ", shape_it->dump(), ") needs ",
                                  elements, " x ", elem_size, " bytes but data_offsets [", begin, ", ", end,
                                  "] hold ", end - begin));
    }
    ranges.push_back({begin, end, name});
    if (!supported) {
      if (!options.skip_unsupported_dtypes) {
        return Invalid(absl::StrCat(what, " has dtype ", dtype_name,
                                    ", which is not supported (supported: F32, F16, BF16)"));
      }
      skipped_.push_back(absl::StrCat(name, " (", dtype_name, ")"));
      continue;
    }
    TensorView t;
    t.name = name;
    t.type = type;
    t.shape.assign(shape.rbegin(), shape.rend());  // GGML order: innermost first
    if (t.shape.empty()) t.shape.push_back(1);
    t.data = bytes_.data() + data_start + begin;
    t.nbytes = static_cast<size_t>(nbytes);
    found.emplace_back(begin, std::move(t));
  }
  } catch (const json::exception& e) {
    return Invalid(absl::StrCat("unexpected JSON in the header: ", e.what()));
  }

  // No two tensors may share bytes (empty tensors occupy nothing).
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const Range* prev = nullptr;
  for (const Range& r : ranges) {
    if (r.begin == r.end) continue;
    if (prev != nullptr && r.begin < prev->end) {
      return Invalid(absl::StrCat("tensor ", Quote(r.name), " (bytes ", r.begin, " to ", r.end,
                                  " of the data section) overlaps tensor ", Quote(prev->name), " (bytes ",
                                  prev->begin, " to ", prev->end, ")"));
    }
    prev = &r;
  }

  std::stable_sort(found.begin(), found.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  tensors_.reserve(found.size());
  for (auto& [begin, t] : found) tensors_.push_back(std::move(t));
  AlignTensorData(&tensors_, &aligned_copies_);
  for (size_t i = 0; i < tensors_.size(); ++i) index_.emplace(tensors_[i].name, i);
  return absl::OkStatus();
}

const TensorView* SafetensorsFile::FindTensor(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  return dir.back() == '/' ? dir + name : dir + "/" + name;
}

bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

absl::StatusOr<json> ReadJsonFile(const std::string& path) {
  absl::StatusOr<FileBytes> bytes = FileBytes::Map(path);
  if (!bytes.ok()) return bytes.status();
  if (bytes->size() > kMaxConfigBytes) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is larger than ", kMaxConfigBytes, " bytes"));
  }
  absl::StatusOr<json> j = ParseJson(bytes->view(), path);
  if (!j.ok()) return j.status();
  if (!j->is_object()) return absl::InvalidArgumentError(absl::StrCat(path, " is not a JSON object"));
  return j;
}

// A shard name from the index must name a file inside the model directory.
bool IsPlainFileName(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\0') == std::string::npos;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SafetensorsModel>> SafetensorsModel::Open(const std::string& dir,
                                                                         SafetensorsOptions options) {
  std::unique_ptr<SafetensorsModel> model(new SafetensorsModel());
  const std::string config_path = JoinPath(dir, "config.json");
  absl::StatusOr<json> config = ReadJsonFile(config_path);
  if (!config.ok()) return config.status();
  model->config_ = *std::move(config);

  const std::string index_path = JoinPath(dir, "model.safetensors.index.json");
  const std::string single_path = JoinPath(dir, "model.safetensors");
  if (FileExists(index_path)) {
    absl::StatusOr<json> index = ReadJsonFile(index_path);
    if (!index.ok()) return index.status();
    auto wm = index->find("weight_map");
    if (wm == index->end() || !wm->is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(index_path, " has no \"weight_map\" object"));
    }
    std::map<std::string, std::vector<std::string>> by_shard;  // shard -> tensors the index puts there
    for (const auto& [tensor, shard] : wm->items()) {
      if (!shard.is_string() || !IsPlainFileName(shard.get<std::string>())) {
        return absl::InvalidArgumentError(absl::StrCat(index_path, ": the weight_map entry of tensor ",
                                                       Quote(tensor), " is not a file name in the model directory: ",
                                                       shard.dump()));
      }
      by_shard[shard.get<std::string>()].push_back(tensor);
    }
    if (by_shard.empty()) return absl::InvalidArgumentError(absl::StrCat(index_path, " lists no tensors"));
    for (const auto& [shard, names] : by_shard) {
      const std::string path = JoinPath(dir, shard);
      absl::StatusOr<std::unique_ptr<SafetensorsFile>> f = SafetensorsFile::Open(path, options);
      if (!f.ok()) {
        return absl::Status(f.status().code(),
                            absl::StrCat("shard ", Quote(shard), " listed in ", index_path, ": ", f.status().message()));
      }
      std::set<std::string_view> skipped_names;
      for (const std::string& s : (*f)->skipped()) skipped_names.insert(std::string_view(s).substr(0, s.rfind(" (")));
      for (const std::string& name : names) {
        if ((*f)->FindTensor(name) == nullptr && skipped_names.count(name) == 0) {
          return absl::InvalidArgumentError(absl::StrCat(index_path, " places tensor ", Quote(name), " in ", path,
                                                         ", which does not contain it"));
        }
      }
      model->files_.push_back(*std::move(f));
    }
  } else if (FileExists(single_path)) {
    absl::StatusOr<std::unique_ptr<SafetensorsFile>> f = SafetensorsFile::Open(single_path, options);
    if (!f.ok()) return f.status();
    model->files_.push_back(*std::move(f));
  } else {
    return absl::NotFoundError(absl::StrCat("model directory '", dir,
                                            "' has neither model.safetensors nor model.safetensors.index.json"));
  }

  for (const auto& f : model->files_) {
    for (const TensorView& t : f->tensors()) model->tensors_.push_back(t);
  }
  for (size_t i = 0; i < model->tensors_.size(); ++i) {
    if (!model->index_.emplace(model->tensors_[i].name, i).second) {
      return absl::InvalidArgumentError(absl::StrCat("model directory '", dir, "': tensor ",
                                                     Quote(model->tensors_[i].name), " is in more than one shard"));
    }
  }
  return model;
}

const TensorView* SafetensorsModel::FindTensor(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace tessera::engine
