#include "engine/model/gguf_writer.h"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace tessera::engine {
namespace {

template <typename T>
void Put(std::string* out, T v) {
  char buf[sizeof(T)];
  std::memcpy(buf, &v, sizeof(T));
  out->append(buf, sizeof(T));
}

void PutString(std::string* out, std::string_view s) {
  Put<uint64_t>(out, s.size());
  out->append(s.data(), s.size());
}

}  // namespace

#define TESSERA_GGUF_SCALAR(Name, CType, Type)          \
  GgufValue GgufValue::Name(CType v) {                  \
    std::string e;                                      \
    Put<CType>(&e, v);                                  \
    return GgufValue(GgufType::Type, std::move(e));     \
  }
TESSERA_GGUF_SCALAR(Uint8, uint8_t, kUint8)
TESSERA_GGUF_SCALAR(Int8, int8_t, kInt8)
TESSERA_GGUF_SCALAR(Uint16, uint16_t, kUint16)
TESSERA_GGUF_SCALAR(Int16, int16_t, kInt16)
TESSERA_GGUF_SCALAR(Uint32, uint32_t, kUint32)
TESSERA_GGUF_SCALAR(Int32, int32_t, kInt32)
TESSERA_GGUF_SCALAR(Uint64, uint64_t, kUint64)
TESSERA_GGUF_SCALAR(Int64, int64_t, kInt64)
TESSERA_GGUF_SCALAR(Float32, float, kFloat32)
TESSERA_GGUF_SCALAR(Float64, double, kFloat64)
#undef TESSERA_GGUF_SCALAR

GgufValue GgufValue::Bool(bool v) { return GgufValue(GgufType::kBool, std::string(1, v ? 1 : 0)); }

GgufValue GgufValue::String(std::string_view v) {
  std::string e;
  PutString(&e, v);
  return GgufValue(GgufType::kString, std::move(e));
}

GgufValue GgufValue::Array(GgufType element_type, const std::vector<GgufValue>& elements) {
  std::string e;
  Put<uint32_t>(&e, static_cast<uint32_t>(element_type));
  Put<uint64_t>(&e, elements.size());
  for (const GgufValue& v : elements) {
    if (v.type() != element_type) {  // programming error in a test
      std::fprintf(stderr, "GgufValue::Array: element of type %s in an array of %s\n",
                   std::string(GgufTypeName(v.type())).c_str(), std::string(GgufTypeName(element_type)).c_str());
      std::abort();
    }
    e += v.encoded();
  }
  return GgufValue(GgufType::kArray, std::move(e));
}

GgufValue GgufValue::StringArray(const std::vector<std::string>& v) {
  std::string e;
  Put<uint32_t>(&e, static_cast<uint32_t>(GgufType::kString));
  Put<uint64_t>(&e, v.size());
  for (const std::string& s : v) PutString(&e, s);
  return GgufValue(GgufType::kArray, std::move(e));
}

GgufValue GgufValue::Float32Array(absl::Span<const float> v) {
  std::string e;
  Put<uint32_t>(&e, static_cast<uint32_t>(GgufType::kFloat32));
  Put<uint64_t>(&e, v.size());
  for (float f : v) Put<float>(&e, f);
  return GgufValue(GgufType::kArray, std::move(e));
}

GgufValue GgufValue::Int32Array(absl::Span<const int32_t> v) {
  std::string e;
  Put<uint32_t>(&e, static_cast<uint32_t>(GgufType::kInt32));
  Put<uint64_t>(&e, v.size());
  for (int32_t i : v) Put<int32_t>(&e, i);
  return GgufValue(GgufType::kArray, std::move(e));
}

GgufWriter::GgufWriter(Options options) : options_(options) {
  if (options_.alignment == 0 || (options_.alignment & (options_.alignment - 1)) != 0) {
    std::fprintf(stderr, "GgufWriter: alignment %u is not a power of two\n", options_.alignment);
    std::abort();  // programming error in a test
  }
  if (options_.alignment != kGgufDefaultAlignment) AddUint32("general.alignment", options_.alignment);
}

void GgufWriter::Add(std::string_view key, GgufValue value) {
  kvs_.emplace_back(std::string(key), std::move(value));
}

namespace {

absl::StatusOr<size_t> TensorBytes(std::string_view name, DType type, const std::vector<int64_t>& shape,
                                   int64_t* elements) {
  const std::string n(name);
  if (shape.empty() || shape.size() > 4) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", n, "' must have 1 to 4 dimensions"));
  }
  int64_t count = 1;
  for (int64_t d : shape) {
    if (d < 1 || __builtin_mul_overflow(count, d, &count)) {
      return absl::InvalidArgumentError(absl::StrCat("tensor '", n, "' has a bad shape"));
    }
  }
  absl::StatusOr<size_t> row = RowBytes(type, shape[0]);
  if (!row.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", n, "': ", row.status().message()));
  }
  *elements = count;
  return *row * static_cast<size_t>(count / shape[0]);
}

}  // namespace

absl::Status GgufWriter::AddTensor(std::string_view name, DType type, std::vector<int64_t> shape,
                                   absl::Span<const float> values) {
  int64_t elements = 0;
  absl::StatusOr<size_t> nbytes = TensorBytes(name, type, shape, &elements);
  if (!nbytes.ok()) return nbytes.status();
  if (static_cast<int64_t>(values.size()) != elements) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", std::string(name), "' has ", elements,
                                                   " elements but ", values.size(), " values were given"));
  }
  const int64_t cols = shape[0];
  const int64_t rows = elements / cols;
  const size_t row_bytes = *nbytes / static_cast<size_t>(rows);
  std::string data(*nbytes, '\0');
  for (int64_t r = 0; r < rows; ++r) {
    QuantizeRow(type, values.data() + r * cols, data.data() + r * row_bytes, cols);
  }
  tensors_.push_back({std::string(name), type, std::move(shape), std::move(data)});
  return absl::OkStatus();
}

absl::Status GgufWriter::AddRawTensor(std::string_view name, DType type, std::vector<int64_t> shape,
                                      std::string data) {
  int64_t elements = 0;
  absl::StatusOr<size_t> nbytes = TensorBytes(name, type, shape, &elements);
  if (!nbytes.ok()) return nbytes.status();
  if (data.size() != *nbytes) {
    return absl::InvalidArgumentError(absl::StrCat("tensor '", std::string(name), "' needs ", *nbytes,
                                                   " bytes, got ", data.size()));
  }
  tensors_.push_back({std::string(name), type, std::move(shape), std::move(data)});
  return absl::OkStatus();
}

std::string GgufWriter::Serialize() const {
  const uint64_t align = options_.alignment;
  auto pad = [align](std::string* s) { s->append((align - s->size() % align) % align, '\0'); };
  std::string out = "GGUF";
  Put<uint32_t>(&out, options_.version);
  Put<uint64_t>(&out, tensors_.size());
  Put<uint64_t>(&out, kvs_.size());
  for (const auto& [key, value] : kvs_) {
    PutString(&out, key);
    Put<uint32_t>(&out, static_cast<uint32_t>(value.type()));
    out += value.encoded();
  }
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    PutString(&out, t.name);
    Put<uint32_t>(&out, static_cast<uint32_t>(t.shape.size()));
    for (int64_t d : t.shape) Put<uint64_t>(&out, static_cast<uint64_t>(d));
    Put<uint32_t>(&out, static_cast<uint32_t>(t.type));
    Put<uint64_t>(&out, offset);
    offset += t.data.size();
    offset += (align - offset % align) % align;
  }
  pad(&out);
  for (const Tensor& t : tensors_) {
    out += t.data;
    pad(&out);
  }
  return out;
}

absl::Status GgufWriter::WriteFile(const std::string& path) const {
  const std::string bytes = Serialize();
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    return absl::InternalError(absl::StrCat("cannot create '", path, "': ", std::strerror(errno)));
  }
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  const int err = errno;
  if (std::fclose(f) != 0 || !ok) {
    return absl::InternalError(absl::StrCat("cannot write '", path, "': ", std::strerror(ok ? errno : err)));
  }
  return absl::OkStatus();
}

}  // namespace tessera::engine
