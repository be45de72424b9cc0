#include "bench/engine/bench_models.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status.h"
#include "engine/model/gguf.h"
#include "engine/model/gguf_writer.h"

namespace tessera::bench {
namespace {

using engine::DType;
using engine::GgufFile;
using engine::GgufType;
using engine::GgufValue;
using engine::GgufWriter;

// Bump when the generated files change, so that stale cached files are rewritten.
constexpr int64_t kGeneratorVersion = 1;
constexpr char kVersionKey[] = "tessera.bench.generator_version";

// SplitMix64: a fast seeded generator (weights only need to be reproducible, not good).
struct Rng {
  uint64_t s;
  uint64_t Next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [-a, a).
  float Uniform(float a) { return (static_cast<float>(Next() >> 40) * (1.0f / 16777216.0f) * 2 - 1) * a; }
};

uint64_t Seed(std::string_view name) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (char c : name) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ull;
  return h;
}

// A [rows, cols] matrix (GGML shape {cols, rows}) of uniform values with standard deviation
// `stddev`, converted to `type`.
absl::Status AddRandom(GgufWriter& w, const std::string& name, DType type, int64_t rows,
                       int64_t cols, float stddev) {
  std::vector<float> v(static_cast<size_t>(rows * cols));
  Rng rng{Seed(name)};
  const float a = stddev * std::sqrt(3.0f);
  for (float& x : v) x = rng.Uniform(a);
  std::vector<int64_t> shape = rows == 1 ? std::vector<int64_t>{cols} : std::vector<int64_t>{cols, rows};
  return w.AddTensor(name, type, shape, v);
}

absl::Status AddConstant(GgufWriter& w, const std::string& name, int64_t n, float value) {
  std::vector<float> v(static_cast<size_t>(n), value);
  return w.AddTensor(name, DType::kF32, {n}, v);
}

bool IsCurrent(const std::string& path) {
  if (!std::filesystem::exists(path)) return false;
  auto f = GgufFile::Open(path);
  if (!f.ok()) return false;
  auto v = (*f)->GetInt(kVersionKey);
  return v.ok() && *v == kGeneratorVersion;
}

absl::Status WriteAtomically(const GgufWriter& w, const std::string& path) {
  const std::string tmp = path + ".tmp";
  RETURN_IF_ERROR(w.WriteFile(tmp));
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return absl::InternalError(absl::StrCat("rename ", tmp, ": ", ec.message()));
  return absl::OkStatus();
}

// A llama-style SPM vocabulary of `n` tokens: <unk>, <s>, </s>, the 256 byte tokens <0xXX>
// (llama.cpp looks up <0x0A> for its line feed), then unique synthetic pieces.
void AddSpmVocab(GgufWriter& w, int n) {
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<int32_t> types;  // 1 normal, 2 unknown, 3 control, 6 byte
  tokens = {"<unk>", "<s>", "</s>"};
  types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    tokens.push_back(absl::StrFormat("<0x%02X>", b));
    types.push_back(6);
  }
  static const char kLetters[] = "etaoinshrdlcumwfgypbvkjxqz";
  for (int i = 0; static_cast<int>(tokens.size()) < n; ++i) {
    std::string piece = (i % 2 == 0) ? "\xE2\x96\x81" : "";  // U+2581, SentencePiece's space
    int k = i / 2;
    do {
      piece += kLetters[k % 26];
      k /= 26;
    } while (k > 0);
    tokens.push_back(piece);
    types.push_back(1);
  }
  for (int i = 0; i < n; ++i) scores.push_back(i < 259 ? 0.0f : -static_cast<float>(i));
  w.AddString("tokenizer.ggml.model", "llama");
  w.AddStringArray("tokenizer.ggml.tokens", tokens);
  w.AddFloat32Array("tokenizer.ggml.scores", scores);
  w.AddInt32Array("tokenizer.ggml.token_type", types);
  w.AddUint32("tokenizer.ggml.bos_token_id", 1);
  w.AddUint32("tokenizer.ggml.eos_token_id", 2);
  w.AddUint32("tokenizer.ggml.unknown_token_id", 0);
  w.AddBool("tokenizer.ggml.add_bos_token", true);
  w.AddBool("tokenizer.ggml.add_eos_token", false);
}

// Copies every tokenizer.* key of `src` into `w`.
absl::Status CopyTokenizerKeys(const GgufFile& src, GgufWriter& w) {
  for (const GgufFile::Entry& e : src.entries()) {
    if (e.key.rfind("tokenizer.", 0) != 0) continue;
    const std::string key(e.key);
    switch (e.type) {
      case GgufType::kString: {
        auto v = src.GetString(key);
        if (!v.ok()) return v.status();
        w.AddString(key, *v);
        break;
      }
      case GgufType::kBool: {
        auto v = src.GetBool(key);
        if (!v.ok()) return v.status();
        w.AddBool(key, *v);
        break;
      }
      case GgufType::kFloat32:
      case GgufType::kFloat64: {
        auto v = src.GetFloat(key);
        if (!v.ok()) return v.status();
        w.AddFloat32(key, static_cast<float>(*v));
        break;
      }
      case GgufType::kArray: {
        if (e.array_type == GgufType::kString) {
          auto v = src.GetStringArray(key);
          if (!v.ok()) return v.status();
          w.AddStringArray(key, std::vector<std::string>(v->begin(), v->end()));
        } else if (e.array_type == GgufType::kFloat32 || e.array_type == GgufType::kFloat64) {
          auto v = src.GetFloatArray(key);
          if (!v.ok()) return v.status();
          w.AddFloat32Array(key, *v);
        } else {
          auto v = src.GetIntArray(key);
          if (!v.ok()) return v.status();
          std::vector<int32_t> ints(v->begin(), v->end());
          w.AddInt32Array(key, ints);
        }
        break;
      }
      default: {  // integers: keep them unsigned 32-bit, as llama.cpp writes ids and counts
        auto v = src.GetInt(key);
        if (!v.ok()) return v.status();
        w.AddUint32(key, static_cast<uint32_t>(*v));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> EnsureMistralShapes(const std::string& dir, DType type, int layers) {
  if (type != DType::kF16 && type != DType::kQ8_0) {
    return absl::InvalidArgumentError("Mistral shapes are written as F16 or Q8_0");
  }
  const std::string path = absl::StrCat(dir, "/mistral7b-shapes-", layers, "l-",
                                        std::string(engine::DTypeName(type)), ".gguf");
  if (IsCurrent(path)) return path;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::fprintf(stderr, "writing %s (once; kept for later runs)\n", path.c_str());
  constexpr int kDim = 4096, kHeads = 32, kKvHeads = 8, kHead = 128, kFfn = 14336, kVocab = 32000;
  GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddString("general.name", "mistral-7b-shapes-random");
  w.AddUint32("general.file_type", type == DType::kF16 ? 1 : 7);  // LLAMA_FTYPE_MOSTLY_*
  w.AddInt64(kVersionKey, kGeneratorVersion);
  w.AddUint32("llama.vocab_size", kVocab);
  w.AddUint32("llama.context_length", 4096);
  w.AddUint32("llama.embedding_length", kDim);
  w.AddUint32("llama.block_count", layers);
  w.AddUint32("llama.feed_forward_length", kFfn);
  w.AddUint32("llama.attention.head_count", kHeads);
  w.AddUint32("llama.attention.head_count_kv", kKvHeads);
  w.AddFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.AddFloat32("llama.rope.freq_base", 1e6f);
  w.AddUint32("llama.rope.dimension_count", kHead);
  AddSpmVocab(w, kVocab);
  const float sd = 0.02f;
  RETURN_IF_ERROR(AddRandom(w, "token_embd.weight", type, kVocab, kDim, sd));
  for (int l = 0; l < layers; ++l) {
    auto n = [&](const char* s) { return absl::StrCat("blk.", l, ".", s, ".weight"); };
    RETURN_IF_ERROR(AddConstant(w, n("attn_norm"), kDim, 1.0f));
    RETURN_IF_ERROR(AddRandom(w, n("attn_q"), type, kHeads * kHead, kDim, sd));
    RETURN_IF_ERROR(AddRandom(w, n("attn_k"), type, kKvHeads * kHead, kDim, sd));
    RETURN_IF_ERROR(AddRandom(w, n("attn_v"), type, kKvHeads * kHead, kDim, sd));
    RETURN_IF_ERROR(AddRandom(w, n("attn_output"), type, kDim, kHeads * kHead, sd));
    RETURN_IF_ERROR(AddConstant(w, n("ffn_norm"), kDim, 1.0f));
    RETURN_IF_ERROR(AddRandom(w, n("ffn_gate"), type, kFfn, kDim, sd));
    RETURN_IF_ERROR(AddRandom(w, n("ffn_up"), type, kFfn, kDim, sd));
    RETURN_IF_ERROR(AddRandom(w, n("ffn_down"), type, kDim, kFfn, sd));
  }
  RETURN_IF_ERROR(AddConstant(w, "output_norm.weight", kDim, 1.0f));
  RETURN_IF_ERROR(AddRandom(w, "output.weight", type, kVocab, kDim, sd));
  RETURN_IF_ERROR(WriteAtomically(w, path));
  return path;
}

absl::StatusOr<std::string> EnsureBgeSmallShapes(const std::string& dir,
                                                 const std::string& vocab_gguf) {
  const std::string path = absl::StrCat(dir, "/bge-small-shapes-F16.gguf");
  if (IsCurrent(path)) return path;
  auto vocab = GgufFile::Open(vocab_gguf);
  if (!vocab.ok()) return vocab.status();
  auto tokens = (*vocab)->GetStringArray("tokenizer.ggml.tokens");
  if (!tokens.ok()) return tokens.status();
  const int64_t n_vocab = static_cast<int64_t>(tokens->size());
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  std::fprintf(stderr, "writing %s (once; kept for later runs)\n", path.c_str());
  constexpr int kDim = 384, kLayers = 12, kHeads = 12, kFfn = 1536, kPositions = 512;
  GgufWriter w;
  w.AddString("general.architecture", "bert");
  w.AddString("general.name", "bge-small-shapes-random");
  w.AddUint32("general.file_type", 1);
  w.AddInt64(kVersionKey, kGeneratorVersion);
  w.AddUint32("bert.context_length", kPositions);
  w.AddUint32("bert.embedding_length", kDim);
  w.AddUint32("bert.block_count", kLayers);
  w.AddUint32("bert.feed_forward_length", kFfn);
  w.AddUint32("bert.attention.head_count", kHeads);
  w.AddFloat32("bert.attention.layer_norm_epsilon", 1e-12f);
  w.AddBool("bert.attention.causal", false);
  w.AddUint32("bert.pooling_type", 2);  // CLS, as bge
  RETURN_IF_ERROR(CopyTokenizerKeys(**vocab, w));
  if (!(*vocab)->Has("tokenizer.ggml.token_type_count")) {
    w.AddUint32("tokenizer.ggml.token_type_count", 2);  // llama.cpp's bert needs it
  }
  const DType f16 = DType::kF16;
  const float sd = 0.02f;
  RETURN_IF_ERROR(AddRandom(w, "token_embd.weight", f16, n_vocab, kDim, sd));
  RETURN_IF_ERROR(AddRandom(w, "token_types.weight", DType::kF32, 2, kDim, sd));
  RETURN_IF_ERROR(AddRandom(w, "position_embd.weight", f16, kPositions, kDim, sd));
  RETURN_IF_ERROR(AddConstant(w, "token_embd_norm.weight", kDim, 1.0f));
  RETURN_IF_ERROR(AddConstant(w, "token_embd_norm.bias", kDim, 0.0f));
  for (int l = 0; l < kLayers; ++l) {
    auto n = [&](const char* s) { return absl::StrCat("blk.", l, ".", s); };
    for (const char* m : {"attn_q", "attn_k", "attn_v", "attn_output"}) {
      RETURN_IF_ERROR(AddRandom(w, n(m) + ".weight", f16, kDim, kDim, sd));
      RETURN_IF_ERROR(AddRandom(w, n(m) + ".bias", DType::kF32, 1, kDim, sd));
    }
    RETURN_IF_ERROR(AddConstant(w, n("attn_output_norm.weight"), kDim, 1.0f));
    RETURN_IF_ERROR(AddConstant(w, n("attn_output_norm.bias"), kDim, 0.0f));
    RETURN_IF_ERROR(AddRandom(w, n("ffn_up.weight"), f16, kFfn, kDim, sd));
    RETURN_IF_ERROR(AddRandom(w, n("ffn_up.bias"), DType::kF32, 1, kFfn, sd));
    RETURN_IF_ERROR(AddRandom(w, n("ffn_down.weight"), f16, kDim, kFfn, sd));
    RETURN_IF_ERROR(AddRandom(w, n("ffn_down.bias"), DType::kF32, 1, kDim, sd));
    RETURN_IF_ERROR(AddConstant(w, n("layer_output_norm.weight"), kDim, 1.0f));
    RETURN_IF_ERROR(AddConstant(w, n("layer_output_norm.bias"), kDim, 0.0f));
  }
  RETURN_IF_ERROR(WriteAtomically(w, path));
  return path;
}

}  // namespace tessera::bench
