#include "engine/model/gguf.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/model/dtype.h"

namespace tessera::engine {
namespace {

constexpr uint32_t kMaxDims = 4;         // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 8;        // nesting of arrays in arrays
// Smallest encodings, used to bound counts by the bytes left before anything is allocated.
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;             // key len, 1-char key, type, u8 value
constexpr uint64_t kMinTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8;  // name, n_dims, 1 dim, type, offset
constexpr uint64_t kMinArrayBytes = 4 + 8;                  // element type + length

// Fixed size in bytes of a scalar GGUF type; 0 for string/array/unknown.
uint64_t ScalarSize(GgufType t) {
  switch (t) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kBool:
      return 1;
    case GgufType::kUint16:
    case GgufType::kInt16:
      return 2;
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kFloat32:
      return 4;
    case GgufType::kUint64:
    case GgufType::kInt64:
    case GgufType::kFloat64:
      return 8;
    default:
      return 0;
  }
}

bool IsInteger(GgufType t) {
  switch (t) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kUint16:
    case GgufType::kInt16:
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kUint64:
    case GgufType::kInt64:
      return true;
    default:
      return false;
  }
}

// Debian's Abseil has its own string_view; StrCat needs it.
absl::string_view S(std::string_view s) { return absl::string_view(s.data(), s.size()); }

bool IsKnownType(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::kFloat64); }

template <typename T>
T Load(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Reads an integer of type `t` at `p`. Fails for UINT64 above INT64_MAX.
bool LoadInt(GgufType t, const unsigned char* p, int64_t* out) {
  switch (t) {
    case GgufType::kUint8: *out = Load<uint8_t>(p); return true;
    case GgufType::kInt8: *out = Load<int8_t>(p); return true;
    case GgufType::kUint16: *out = Load<uint16_t>(p); return true;
    case GgufType::kInt16: *out = Load<int16_t>(p); return true;
    case GgufType::kUint32: *out = Load<uint32_t>(p); return true;
    case GgufType::kInt32: *out = Load<int32_t>(p); return true;
    case GgufType::kInt64: *out = Load<int64_t>(p); return true;
    case GgufType::kUint64: {
      const uint64_t u = Load<uint64_t>(p);
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return false;
      *out = static_cast<int64_t>(u);
      return true;
    }
    default:
      return false;
  }
}

std::string Quote(std::string_view s, size_t max = 80) {
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    const unsigned char c = s[i];
    if (c >= 0x20 && c < 0x7f && c != '\'' && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "\\x%02x", c);
    }
  }
  if (s.size() > max) absl::StrAppend(&out, "...");
  out.push_back('\'');
  return out;
}

}  // namespace

std::string_view GgufTypeName(GgufType type) {
  switch (type) {
    case GgufType::kUint8: return "UINT8";
    case GgufType::kInt8: return "INT8";
    case GgufType::kUint16: return "UINT16";
    case GgufType::kInt16: return "INT16";
    case GgufType::kUint32: return "UINT32";
    case GgufType::kInt32: return "INT32";
    case GgufType::kFloat32: return "FLOAT32";
    case GgufType::kBool: return "BOOL";
    case GgufType::kString: return "STRING";
    case GgufType::kArray: return "ARRAY";
    case GgufType::kUint64: return "UINT64";
    case GgufType::kInt64: return "INT64";
    case GgufType::kFloat64: return "FLOAT64";
  }
  return "UNKNOWN";
}

// A bounds-checked cursor over the file. Every read checks the bytes left first.
class GgufFile::Parser {
 public:
  Parser(const unsigned char* data, size_t size) : data_(data), size_(size) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }
  const unsigned char* at(uint64_t off) const { return data_ + off; }

  absl::Status Error(uint64_t where, std::string_view msg) const {
    return absl::InvalidArgumentError(absl::StrCat("invalid GGUF file: ", S(msg), " (at byte ", where, ")"));
  }

  absl::Status Need(uint64_t n, std::string_view what) const {
    if (n > left()) {
      return Error(pos_, absl::StrCat("truncated: ", S(what), " needs ", n, " bytes but only ", left(),
                                      " are left in the ", size_, "-byte file"));
    }
    return absl::OkStatus();
  }

  template <typename T>
  absl::Status Read(T* out, std::string_view what) {
    if (absl::Status s = Need(sizeof(T), what); !s.ok()) return s;
    *out = Load<T>(data_ + pos_);
    pos_ += sizeof(T);
    return absl::OkStatus();
  }

  absl::Status Skip(uint64_t n, std::string_view what) {
    if (absl::Status s = Need(n, what); !s.ok()) return s;
    pos_ += n;
    return absl::OkStatus();
  }

  absl::Status ReadString(std::string_view* out, std::string_view what) {
    const uint64_t start = pos_;
    uint64_t len;
    if (absl::Status s = Read(&len, what); !s.ok()) return s;
    if (len > left()) {
      return Error(start, absl::StrCat(S(what), " has length ", len, " but only ", left(),
                                       " bytes are left in the file"));
    }
    *out = std::string_view(reinterpret_cast<const char*>(data_ + pos_), len);
    pos_ += len;
    return absl::OkStatus();
  }

  // Validates (and steps over) one value of type `type`. `key` is for messages.
  absl::Status SkipValue(GgufType type, std::string_view key, int depth) {
    const uint64_t size = ScalarSize(type);
    if (size != 0) {
      if (type == GgufType::kBool) {
        uint8_t b;
        if (absl::Status s = Read(&b, "a BOOL value"); !s.ok()) return s;
        if (b > 1) {
          return Error(pos_ - 1, absl::StrCat("BOOL value ", static_cast<int>(b), " of key ", Quote(key),
                                              " is neither 0 nor 1"));
        }
        return absl::OkStatus();
      }
      return Skip(size, absl::StrCat("the ", S(GgufTypeName(type)), " value of key ", Quote(key)));
    }
    if (type == GgufType::kString) {
      // Inline (this runs for each of the 32k+ vocabulary strings): messages only on failure.
      if (left() < 8 || Load<uint64_t>(data_ + pos_) > left() - 8) {
        std::string_view s;
        return ReadString(&s, absl::StrCat("a string value of key ", Quote(key)));
      }
      pos_ += 8 + Load<uint64_t>(data_ + pos_);
      return absl::OkStatus();
    }
    if (type != GgufType::kArray) {
      return Error(pos_, absl::StrCat("unknown value type ", static_cast<uint32_t>(type), " for key ",
                                      Quote(key)));
    }
    if (depth >= kMaxArrayDepth) {
      return Error(pos_, absl::StrCat("arrays nested more than ", kMaxArrayDepth, " deep in key ",
                                      Quote(key)));
    }
    const uint64_t start = pos_;
    uint32_t elem_raw;
    uint64_t count;
    if (absl::Status s = Read(&elem_raw, "an array element type"); !s.ok()) return s;
    if (absl::Status s = Read(&count, "an array length"); !s.ok()) return s;
    if (!IsKnownType(elem_raw)) {
      return Error(start, absl::StrCat("unknown array element type ", elem_raw, " for key ", Quote(key)));
    }
    const GgufType elem = static_cast<GgufType>(elem_raw);
    const uint64_t elem_size = ScalarSize(elem);
    const uint64_t min_elem = elem_size != 0 ? elem_size
                              : elem == GgufType::kString ? 8
                                                          : kMinArrayBytes;
    if (count > left() / min_elem) {
      return Error(start, absl::StrCat("array of key ", Quote(key), " claims ", count, " ",
                                       S(GgufTypeName(elem)), " elements (at least ", min_elem,
                                       " bytes each) but only ", left(), " bytes are left in the file"));
    }
    if (elem_size != 0 && elem != GgufType::kBool) {
      pos_ += count * elem_size;  // bounded above
      return absl::OkStatus();
    }
    for (uint64_t i = 0; i < count; ++i) {
      if (absl::Status s = SkipValue(elem, key, depth + 1); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  const unsigned char* data_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

GgufFile::GgufFile(FileBytes bytes) : bytes_(std::move(bytes)) {}
GgufFile::~GgufFile() = default;

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::Open(const std::string& path) {
  absl::StatusOr<FileBytes> bytes = FileBytes::Map(path);
  if (!bytes.ok()) return bytes.status();
  std::unique_ptr<GgufFile> file(new GgufFile(*std::move(bytes)));
  if (absl::Status s = file->Parse(); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
  }
  return file;
}

absl::StatusOr<std::unique_ptr<GgufFile>> GgufFile::FromBuffer(std::string bytes) {
  std::unique_ptr<GgufFile> file(new GgufFile(FileBytes::Own(std::move(bytes))));
  if (absl::Status s = file->Parse(); !s.ok()) return s;
  return file;
}

absl::Status GgufFile::Parse() {
  Parser p(bytes_.data(), bytes_.size());

  // Header: magic, version, tensor count, KV count.
  if (bytes_.size() < 4) {
    return p.Error(0, absl::StrCat("the file has only ", bytes_.size(), " bytes, too short for the GGUF magic"));
  }
  const std::string_view magic(reinterpret_cast<const char*>(bytes_.data()), 4);
  if (magic != "GGUF") {
    if (magic == "lmgg" || magic == "fmgg" || magic == "tjgg") {
      return p.Error(0, "this is a legacy GGML/GGJT model file, which predates GGUF; convert it to GGUF "
                        "with a current llama.cpp");
    }
    return p.Error(0, absl::StrCat("not a GGUF file: the magic is ", Quote(magic),
                                   ", expected 'GGUF'"));
  }
  uint32_t version;
  if (absl::Status s = p.Skip(4, "the magic"); !s.ok()) return s;
  if (absl::Status s = p.Read(&version, "the version"); !s.ok()) return s;
  if (version == 1) {
    return p.Error(4, "GGUF version 1 is not supported (it has 32-bit counts); convert the model again "
                      "with a current llama.cpp to get version 3");
  }
  if (version != 2 && version != 3) {
    const uint32_t swapped = __builtin_bswap32(version);
    if (swapped >= 1 && swapped <= 3) {
      return p.Error(4, "this is a big-endian GGUF file, which is not supported");
    }
    return p.Error(4, absl::StrCat("unsupported GGUF version ", version, " (supported: 2 and 3)"));
  }
  version_ = static_cast<int>(version);
  uint64_t n_tensors, n_kv;
  if (absl::Status s = p.Read(&n_tensors, "the tensor count"); !s.ok()) return s;
  if (absl::Status s = p.Read(&n_kv, "the metadata count"); !s.ok()) return s;
  if (n_kv > p.left() / kMinKvBytes) {
    return p.Error(16, absl::StrCat("the metadata count ", n_kv, " cannot fit in the ", p.left(),
                                    " bytes left in the file"));
  }
  if (n_tensors > p.left() / kMinTensorInfoBytes) {
    return p.Error(8, absl::StrCat("the tensor count ", n_tensors, " cannot fit in the ", p.left(),
                                   " bytes left in the file"));
  }

  // Metadata.
  entries_.reserve(n_kv);
  value_offsets_.reserve(n_kv);
  entry_index_.reserve(n_kv);
  for (uint64_t i = 0; i < n_kv; ++i) {
    const uint64_t kv_start = p.pos();
    std::string_view key;
    if (absl::Status s = p.ReadString(&key, absl::StrCat("the key of metadata entry ", i)); !s.ok()) return s;
    if (key.empty()) return p.Error(kv_start, absl::StrCat("metadata entry ", i, " has an empty key"));
    uint32_t type_raw;
    if (absl::Status s = p.Read(&type_raw, absl::StrCat("the type of key ", Quote(key))); !s.ok()) return s;
    if (!IsKnownType(type_raw)) {
      return p.Error(p.pos() - 4, absl::StrCat("unknown value type ", type_raw, " for key ", Quote(key)));
    }
    Entry e;
    e.key = key;
    e.type = static_cast<GgufType>(type_raw);
    uint64_t value_offset = p.pos();
    if (e.type == GgufType::kArray) {
      // Peek the header (SkipValue validates it); the stored offset is that of the first element.
      if (absl::Status s = p.Need(kMinArrayBytes, absl::StrCat("the array header of key ", Quote(key)));
          !s.ok()) {
        return s;
      }
      e.array_type = static_cast<GgufType>(Load<uint32_t>(p.at(value_offset)));
      e.array_length = Load<uint64_t>(p.at(value_offset + 4));
      value_offset += kMinArrayBytes;
    }
    if (absl::Status s = p.SkipValue(e.type, key, 0); !s.ok()) return s;
    if (!entry_index_.emplace(key, entries_.size()).second) {
      return p.Error(kv_start, absl::StrCat("duplicate metadata key ", Quote(key)));
    }
    entries_.push_back(e);
    value_offsets_.push_back(value_offset);
  }

  if (Has("general.alignment")) {
    absl::StatusOr<int64_t> a = GetInt("general.alignment");
    if (!a.ok()) {
      return p.Error(value_offsets_[*Find("general.alignment")],
                     absl::StrCat("general.alignment: ", a.status().message()));
    }
    if (*a <= 0 || (*a & (*a - 1)) != 0) {
      return p.Error(value_offsets_[*Find("general.alignment")],
                     absl::StrCat("general.alignment is ", *a, ", which is not a power of two"));
    }
    alignment_ = static_cast<uint64_t>(*a);
  }

  // Tensor infos.
  struct RawTensor {
    std::string_view name;
    uint64_t offset;
    uint64_t info_pos;
  };
  std::vector<RawTensor> raw;
  raw.reserve(n_tensors);
  tensors_.reserve(n_tensors);
  tensor_index_.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    const uint64_t info_pos = p.pos();
    std::string_view name;
    if (absl::Status s = p.ReadString(&name, absl::StrCat("the name of tensor ", i)); !s.ok()) return s;
    if (name.empty()) return p.Error(info_pos, absl::StrCat("tensor ", i, " has an empty name"));
    const std::string what = absl::StrCat("tensor ", Quote(name));
    uint32_t n_dims;
    const uint64_t dims_pos = p.pos();
    if (absl::Status s = p.Read(&n_dims, absl::StrCat("the dimension count of ", what)); !s.ok()) return s;
    if (n_dims < 1 || n_dims > kMaxDims) {
      return p.Error(dims_pos, absl::StrCat(what, " has ", n_dims, " dimensions (must be 1 to ", kMaxDims, ")"));
    }
    TensorView t;
    t.name = std::string(name);
    t.shape.resize(n_dims);
    int64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      uint64_t dim;
      const uint64_t dim_pos = p.pos();
      if (absl::Status s = p.Read(&dim, absl::StrCat("dimension ", d, " of ", what)); !s.ok()) return s;
      if (dim == 0) return p.Error(dim_pos, absl::StrCat("dimension ", d, " of ", what, " is 0"));
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          __builtin_mul_overflow(elements, static_cast<int64_t>(dim), &elements)) {
        return p.Error(dim_pos, absl::StrCat("the element count of ", what, " overflows (dimension ", d,
                                             " is ", dim, ")"));
      }
      t.shape[d] = static_cast<int64_t>(dim);
    }
    uint32_t type_raw;
    const uint64_t type_pos = p.pos();
    if (absl::Status s = p.Read(&type_raw, absl::StrCat("the type of ", what)); !s.ok()) return s;
    if (absl::StatusOr<DTypeInfo> info = GetDTypeInfo(type_raw); !info.ok()) {
      return p.Error(type_pos, absl::StrCat(what, ": ", info.status().message()));
    }
    t.type = static_cast<DType>(type_raw);
    absl::StatusOr<size_t> row_bytes = RowBytes(t.type, t.shape[0]);
    if (!row_bytes.ok()) {
      return p.Error(type_pos, absl::StrCat(what, " (", S(DTypeName(t.type)), "): ", row_bytes.status().message()));
    }
    const uint64_t rows = static_cast<uint64_t>(elements / t.shape[0]);
    uint64_t nbytes;
    if (__builtin_mul_overflow(static_cast<uint64_t>(*row_bytes), rows, &nbytes) ||
        nbytes > std::numeric_limits<size_t>::max()) {
      return p.Error(dims_pos, absl::StrCat("the byte size of ", what, " overflows"));
    }
    t.nbytes = static_cast<size_t>(nbytes);
    uint64_t offset;
    if (absl::Status s = p.Read(&offset, absl::StrCat("the data offset of ", what)); !s.ok()) return s;
    if (!tensor_index_.emplace(name, tensors_.size()).second) {
      return p.Error(info_pos, absl::StrCat("duplicate tensor name ", Quote(name)));
    }
    raw.push_back({name, offset, info_pos});
    tensors_.push_back(std::move(t));
  }

  // Data section: starts at the next multiple of the alignment.
  const uint64_t end_of_infos = p.pos();
  const uint64_t rem = end_of_infos % alignment_;
  data_offset_ = rem == 0 ? end_of_infos : end_of_infos + (alignment_ - rem);
  if (n_tensors == 0) return absl::OkStatus();
  const uint64_t file_size = bytes_.size();
  if (data_offset_ > file_size) {
    return p.Error(end_of_infos, absl::StrCat("truncated: the tensor data section should start at byte ",
                                              data_offset_, " (aligned to ", alignment_,
                                              ") but the file has ", file_size, " bytes"));
  }
  const uint64_t data_size = file_size - data_offset_;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    TensorView& t = tensors_[i];
    const RawTensor& r = raw[i];
    if (r.offset % alignment_ != 0) {
      return p.Error(r.info_pos, absl::StrCat("tensor ", Quote(r.name), " has data offset ", r.offset,
                                              ", not a multiple of the alignment ", alignment_));
    }
    if (r.offset > data_size || t.nbytes > data_size - r.offset) {
      return p.Error(r.info_pos, absl::StrCat("tensor ", Quote(r.name), " (", t.nbytes, " bytes at data offset ",
                                              r.offset, ") extends past the end of the file: the data section "
                                              "has ", data_size, " bytes from byte ", data_offset_));
    }
    t.data = bytes_.data() + data_offset_ + r.offset;
  }
  std::vector<size_t> order(tensors_.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return raw[a].offset < raw[b].offset; });
  for (size_t k = 1; k < order.size(); ++k) {
    const size_t prev = order[k - 1], cur = order[k];
    if (raw[prev].offset + tensors_[prev].nbytes > raw[cur].offset) {
      return p.Error(raw[cur].info_pos,
                     absl::StrCat("tensor ", Quote(raw[cur].name), " (data offset ", raw[cur].offset,
                                  ") overlaps tensor ", Quote(raw[prev].name), " (data offset ",
                                  raw[prev].offset, ", ", tensors_[prev].nbytes, " bytes)"));
    }
  }
  AlignTensorData(&tensors_, &aligned_copies_);
  return absl::OkStatus();
}

std::string_view GgufFile::architecture() const {
  absl::StatusOr<std::string_view> a = GetString("general.architecture");
  return a.ok() ? *a : std::string_view();
}

bool GgufFile::Has(std::string_view key) const { return entry_index_.contains(key); }

absl::StatusOr<size_t> GgufFile::Find(std::string_view key) const {
  auto it = entry_index_.find(key);
  if (it == entry_index_.end()) {
    return absl::NotFoundError(absl::StrCat("the model file has no metadata key ", Quote(key)));
  }
  return it->second;
}

namespace {
absl::Status WrongType(std::string_view key, GgufType have, std::string_view want) {
  return absl::InvalidArgumentError(absl::StrCat("metadata key ", Quote(key), " is ", S(GgufTypeName(have)),
                                                 ", not ", S(want)));
}
absl::Status WrongElementType(std::string_view key, GgufType have, std::string_view want) {
  return absl::InvalidArgumentError(absl::StrCat("metadata key ", Quote(key), " is an array of ",
                                                 S(GgufTypeName(have)), ", not of ", S(want)));
}
}  // namespace

absl::StatusOr<int64_t> GgufFile::GetInt(std::string_view key) const {
  absl::StatusOr<size_t> i = Find(key);
  if (!i.ok()) return i.status();
  const Entry& e = entries_[*i];
  if (!IsInteger(e.type)) return WrongType(key, e.type, "an integer");
  int64_t v;
  if (!LoadInt(e.type, bytes_.data() + value_offsets_[*i], &v)) {
    return absl::InvalidArgumentError(absl::StrCat("metadata key ", Quote(key), " has UINT64 value ",
                                                   Load<uint64_t>(bytes_.data() + value_offsets_[*i]),
                                                   ", above the largest supported integer"));
  }
  return v;
}

absl::StatusOr<double> GgufFile::GetFloat(std::string_view key) const {
  absl::StatusOr<size_t> i = Find(key);
  if (!i.ok()) return i.status();
  const Entry& e = entries_[*i];
  const unsigned char* p = bytes_.data() + value_offsets_[*i];
  if (e.type == GgufType::kFloat32) return Load<float>(p);
  if (e.type == GgufType::kFloat64) return Load<double>(p);
  return WrongType(key, e.type, "FLOAT32 or FLOAT64");
}

absl::StatusOr<bool> GgufFile::GetBool(std::string_view key) const {
  absl::StatusOr<size_t> i = Find(key);
  if (!i.ok()) return i.status();
  const Entry& e = entries_[*i];
  if (e.type != GgufType::kBool) return WrongType(key, e.type, "BOOL");
  return bytes_.data()[value_offsets_[*i]] != 0;
}

absl::StatusOr<std::string_view> GgufFile::GetString(std::string_view key) const {
  absl::StatusOr<size_t> i = Find(key);
  if (!i.ok()) return i.status();
  const Entry& e = entries_[*i];
  if (e.type != GgufType::kString) return WrongType(key, e.type, "STRING");
  const uint64_t off = value_offsets_[*i];
  const uint64_t len = Load<uint64_t>(bytes_.data() + off);
  return std::string_view(reinterpret_cast<const char*>(bytes_.data() + off + 8), len);
}

absl::StatusOr<size_t> GgufFile::FindArray(std::string_view key) const {
  absl::StatusOr<size_t> i = Find(key);
  if (!i.ok()) return i.status();
  if (entries_[*i].type != GgufType::kArray) return WrongType(key, entries_[*i].type, "an ARRAY");
  return *i;
}

absl::StatusOr<std::vector<std::string_view>> GgufFile::GetStringArray(std::string_view key) const {
  absl::StatusOr<size_t> i = FindArray(key);
  if (!i.ok()) return i.status();
  const Entry& e = entries_[*i];
  if (e.array_type != GgufType::kString) return WrongElementType(key, e.array_type, "STRING");
  std::vector<std::string_view> out;
  out.reserve(e.array_length);  // validated: each element takes at least 8 bytes of the file
  const unsigned char* p = bytes_.data() + value_offsets_[*i];
  for (uint64_t k = 0; k < e.array_length; ++k) {
    const uint64_t len = Load<uint64_t>(p);
    out.emplace_back(reinterpret_cast<const char*>(p + 8), len);
    p += 8 + len;
  }
  return out;
}

absl::StatusOr<std::vector<float>> GgufFile::GetFloatArray(std::string_view key) const {
  absl::StatusOr<size_t> i = FindArray(key);
  if (!i.ok()) return i.status();
  const Entry& e = entries_[*i];
  const unsigned char* p = bytes_.data() + value_offsets_[*i];
  std::vector<float> out(e.array_length);
  if (e.array_type == GgufType::kFloat32) {
    if (!out.empty()) std::memcpy(out.data(), p, out.size() * sizeof(float));
  } else if (e.array_type == GgufType::kFloat64) {
    for (uint64_t k = 0; k < e.array_length; ++k) out[k] = static_cast<float>(Load<double>(p + 8 * k));
  } else {
    return WrongElementType(key, e.array_type, "FLOAT32 or FLOAT64");
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> GgufFile::GetIntArray(std::string_view key) const {
  absl::StatusOr<size_t> i = FindArray(key);
  if (!i.ok()) return i.status();
  const Entry& e = entries_[*i];
  if (!IsInteger(e.array_type)) return WrongElementType(key, e.array_type, "an integer type");
  const uint64_t size = ScalarSize(e.array_type);
  const unsigned char* p = bytes_.data() + value_offsets_[*i];
  std::vector<int64_t> out(e.array_length);
  for (uint64_t k = 0; k < e.array_length; ++k) {
    if (!LoadInt(e.array_type, p + size * k, &out[k])) {
      return absl::InvalidArgumentError(absl::StrCat("element ", k, " of metadata key ", Quote(key),
                                                     " is above the largest supported integer"));
    }
  }
  return out;
}

const TensorView* GgufFile::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

// Appends one value of type `t` at `*p` to `out` and advances `*p`. Values were validated at
// parse time, so this walks without checks. At most `max_elements` array elements are printed.
// `need_end`: whether *p must end up after the value (not needed for the outermost value).
void FormatOne(GgufType t, const unsigned char** p, size_t max_elements, std::string* out,
               bool need_end) {
  const unsigned char* q = *p;
  switch (t) {
    case GgufType::kFloat32: absl::StrAppend(out, Load<float>(q)); *p += 4; return;
    case GgufType::kFloat64: absl::StrAppend(out, Load<double>(q)); *p += 8; return;
    case GgufType::kBool: absl::StrAppend(out, *q ? "true" : "false"); *p += 1; return;
    case GgufType::kUint64: absl::StrAppend(out, Load<uint64_t>(q)); *p += 8; return;
    case GgufType::kString: {
      const uint64_t len = Load<uint64_t>(q);
      absl::StrAppend(out, Quote(std::string_view(reinterpret_cast<const char*>(q + 8), len), 60));
      *p += 8 + len;
      return;
    }
    case GgufType::kArray: {
      const GgufType elem = static_cast<GgufType>(Load<uint32_t>(q));
      const uint64_t n = Load<uint64_t>(q + 4);
      *p += 12;
      absl::StrAppend(out, "[");
      for (uint64_t k = 0; k < n; ++k) {
        if (k < max_elements) {
          if (k > 0) absl::StrAppend(out, ", ");
          FormatOne(elem, p, max_elements, out, true);
        } else if (!need_end) {
          break;
        } else {
          std::string ignored;
          FormatOne(elem, p, 0, &ignored, true);
          if (ScalarSize(elem) != 0) {  // fixed-size elements: jump over the rest
            *p += (n - k - 1) * ScalarSize(elem);
            break;
          }
        }
      }
      if (n > max_elements) absl::StrAppend(out, ", ... (", n, " elements)");
      absl::StrAppend(out, "]");
      return;
    }
    default: {
      int64_t v = 0;
      LoadInt(t, q, &v);
      absl::StrAppend(out, v);
      *p += ScalarSize(t);
      return;
    }
  }
}

}  // namespace

std::string GgufFile::FormatValue(std::string_view key, size_t max_elements) const {
  absl::StatusOr<size_t> i = Find(key);
  if (!i.ok()) return "";
  const Entry& e = entries_[*i];
  const unsigned char* p = bytes_.data() + value_offsets_[*i];
  if (e.type == GgufType::kArray) p -= kMinArrayBytes;  // FormatOne reads the array header
  std::string out;
  FormatOne(e.type, &p, max_elements, &out, /*need_end=*/false);
  return out;
}

}  // namespace tessera::engine
