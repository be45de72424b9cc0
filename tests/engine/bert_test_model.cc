#include "tests/engine/bert_test_model.h"

#include <cstdio>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/model/gguf_writer.h"

namespace tessera::engine::testing {
namespace {

// SplitMix64, and approximately normal values from it as the Irwin-Hall sum of four uniforms
// scaled to unit variance: only exact arithmetic, so every machine makes the same floats.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  double Normal() {
    const double s = Uniform() + Uniform() + Uniform() + Uniform();
    return (s - 2.0) * 1.7320508075688772;  // sqrt(3): variance 4/12 -> 1
  }

 private:
  uint64_t state_;
};

std::vector<float> Random(Rng& rng, int64_t n, double mean, double stddev) {
  std::vector<float> v(n);
  for (float& f : v) f = static_cast<float>(mean + stddev * rng.Normal());
  return v;
}

// The value of metadata entry `e` of `f`, re-encoded with its own type.
absl::StatusOr<GgufValue> CopyValue(const GgufFile& f, const GgufFile::Entry& e) {
  auto scalar = [](GgufType t, int64_t i) -> GgufValue {
    switch (t) {
      case GgufType::kUint8: return GgufValue::Uint8(static_cast<uint8_t>(i));
      case GgufType::kInt8: return GgufValue::Int8(static_cast<int8_t>(i));
      case GgufType::kUint16: return GgufValue::Uint16(static_cast<uint16_t>(i));
      case GgufType::kInt16: return GgufValue::Int16(static_cast<int16_t>(i));
      case GgufType::kUint32: return GgufValue::Uint32(static_cast<uint32_t>(i));
      case GgufType::kInt32: return GgufValue::Int32(static_cast<int32_t>(i));
      case GgufType::kUint64: return GgufValue::Uint64(static_cast<uint64_t>(i));
      default: return GgufValue::Int64(i);
    }
  };
  auto is_int = [](GgufType t) {
    return t != GgufType::kFloat32 && t != GgufType::kFloat64 && t != GgufType::kBool &&
           t != GgufType::kString && t != GgufType::kArray;
  };
  switch (e.type) {
    case GgufType::kString: {
      auto s = f.GetString(e.key);
      if (!s.ok()) return s.status();
      return GgufValue::String(*s);
    }
    case GgufType::kBool: {
      auto b = f.GetBool(e.key);
      if (!b.ok()) return b.status();
      return GgufValue::Bool(*b);
    }
    case GgufType::kFloat32:
    case GgufType::kFloat64: {
      auto d = f.GetFloat(e.key);
      if (!d.ok()) return d.status();
      return e.type == GgufType::kFloat32 ? GgufValue::Float32(static_cast<float>(*d))
                                          : GgufValue::Float64(*d);
    }
    case GgufType::kArray: {
      if (e.array_type == GgufType::kString) {
        auto a = f.GetStringArray(e.key);
        if (!a.ok()) return a.status();
        return GgufValue::StringArray(std::vector<std::string>(a->begin(), a->end()));
      }
      if (e.array_type == GgufType::kFloat32) {
        auto a = f.GetFloatArray(e.key);
        if (!a.ok()) return a.status();
        return GgufValue::Float32Array(*a);
      }
      if (is_int(e.array_type)) {
        auto a = f.GetIntArray(e.key);
        if (!a.ok()) return a.status();
        std::vector<GgufValue> items;
        items.reserve(a->size());
        for (int64_t i : *a) items.push_back(scalar(e.array_type, i));
        return GgufValue::Array(e.array_type, items);
      }
      return absl::InvalidArgumentError(absl::StrCat(
          std::string(e.key), ": arrays of ", std::string(GgufTypeName(e.array_type)), " are not copied"));
    }
    default: {
      auto i = f.GetInt(e.key);
      if (!i.ok()) return i.status();
      return scalar(e.type, *i);
    }
  }
}

}  // namespace

absl::StatusOr<std::string> MakeBertGguf(const GgufFile& vocab, const BertTestModelOptions& o) {
  if (o.dtype != DType::kF32 && o.dtype != DType::kF16) {
    return absl::InvalidArgumentError("dtype must be F32 or F16");
  }
  if (o.dim <= 0 || o.num_heads <= 0 || o.dim % o.num_heads != 0 || o.num_layers <= 0 ||
      o.ffn_dim <= 0 || o.max_positions <= 0 || o.type_vocab <= 0) {
    return absl::InvalidArgumentError("inconsistent BERT shapes");
  }
  auto tokens = vocab.GetStringArray("tokenizer.ggml.tokens");
  if (!tokens.ok()) return tokens.status();
  const int64_t n_vocab = static_cast<int64_t>(tokens->size());

  GgufWriter w;
  w.AddString("general.architecture", "bert");
  w.AddString("general.name", "tessera-bert-random");
  w.AddUint32("general.file_type", o.dtype == DType::kF16 ? 1 : 0);
  w.AddUint32("bert.context_length", o.max_positions);
  w.AddUint32("bert.embedding_length", o.dim);
  w.AddUint32("bert.feed_forward_length", o.ffn_dim);
  w.AddUint32("bert.block_count", o.num_layers);
  w.AddUint32("bert.attention.head_count", o.num_heads);
  w.AddFloat32("bert.attention.layer_norm_epsilon", o.norm_eps);
  w.AddBool("bert.attention.causal", false);
  w.AddUint32("bert.pooling_type", o.reranker ? 4 : o.pooling_type);
  for (const GgufFile::Entry& e : vocab.entries()) {
    if (!e.key.starts_with("tokenizer.ggml.")) continue;
    auto v = CopyValue(vocab, e);
    if (!v.ok()) return v.status();
    w.Add(e.key, *std::move(v));
  }
  if (!vocab.Has("tokenizer.ggml.token_type_count")) {
    w.AddUint32("tokenizer.ggml.token_type_count", o.type_vocab);  // llama.cpp requires it
  }

  // Weights are drawn in this fixed order whatever the dtype, so that the F16 model holds the
  // F32 model's weights rounded.
  Rng rng(o.seed);
  const int64_t d = o.dim, ff = o.ffn_dim;
  absl::Status status;
  auto matrix = [&](const std::string& name, int64_t rows, int64_t cols, double stddev) {
    if (!status.ok()) return;
    status = w.AddTensor(name, o.dtype, {cols, rows}, Random(rng, rows * cols, 0.0, stddev));
  };
  auto vec = [&](const std::string& name, int64_t n, double mean, double stddev) {
    if (!status.ok()) return;
    status = w.AddTensor(name, DType::kF32, {n}, Random(rng, n, mean, stddev));
  };
  matrix("token_embd.weight", n_vocab, d, o.embd_std);
  // Token types stay F32 as in llama.cpp's converter: its graph adds row 0 to F32 activations,
  // and ggml's CPU add has no F32 + F16 form.
  if (status.ok()) {
    status = w.AddTensor("token_types.weight", DType::kF32, {d, o.type_vocab},
                         Random(rng, o.type_vocab * d, 0.0, o.embd_std));
  }
  matrix("position_embd.weight", o.max_positions, d, o.embd_std);
  vec("token_embd_norm.weight", d, 1.0, o.norm_std);
  vec("token_embd_norm.bias", d, 0.0, o.bias_std);
  for (int l = 0; l < o.num_layers; ++l) {
    const std::string p = absl::StrCat("blk.", l, ".");
    for (const char* m : {"attn_q", "attn_k", "attn_v", "attn_output"}) {
      matrix(absl::StrCat(p, m, ".weight"), d, d, o.matrix_std);
      vec(absl::StrCat(p, m, ".bias"), d, 0.0, o.bias_std);
    }
    vec(p + "attn_output_norm.weight", d, 1.0, o.norm_std);
    vec(p + "attn_output_norm.bias", d, 0.0, o.bias_std);
    matrix(p + "ffn_up.weight", ff, d, o.matrix_std);
    vec(p + "ffn_up.bias", ff, 0.0, o.bias_std);
    matrix(p + "ffn_down.weight", d, ff, o.matrix_std);
    vec(p + "ffn_down.bias", d, 0.0, o.bias_std);
    vec(p + "layer_output_norm.weight", d, 1.0, o.norm_std);
    vec(p + "layer_output_norm.bias", d, 0.0, o.bias_std);
  }
  if (o.reranker) {
    matrix("cls.weight", d, d, o.matrix_std);
    vec("cls.bias", d, 0.0, o.bias_std);
    matrix("cls.output.weight", 1, d, o.matrix_std);
    vec("cls.output.bias", 1, 0.0, o.bias_std);
  }
  if (!status.ok()) return status;
  return w.Serialize();
}

std::string Fnv1a64Hex(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

}  // namespace tessera::engine::testing
