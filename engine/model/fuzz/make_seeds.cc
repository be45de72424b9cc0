// Writes seed corpora for the fuzzers: small valid GGUF files (every metadata type, F32/F16/Q8_0
// tensors, a custom alignment, a tokenizer borrowed from a real model when one is given) into
// OUT/gguf, and small valid safetensors files into OUT/safetensors.
//
// Usage: make_seeds OUT [model.gguf]
#include <sys/stat.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "engine/model/gguf.h"
#include "engine/model/gguf_writer.h"
#include "nlohmann/json.hpp"

namespace tessera::engine {
namespace {

std::vector<float> Floats(size_t n, int seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0, 1);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

bool Write(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
  return static_cast<bool>(out);
}

std::string Safetensors(const nlohmann::json& header, const std::string& data) {
  const std::string text = header.dump();
  const uint64_t n = text.size();
  return std::string(reinterpret_cast<const char*>(&n), 8) + text + data;
}

int Main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s OUT [model.gguf]\n", argv[0]);
    return 2;
  }
  const std::string out = argv[1];
  ::mkdir(out.c_str(), 0755);
  ::mkdir((out + "/gguf").c_str(), 0755);
  ::mkdir((out + "/safetensors").c_str(), 0755);
  bool ok = true;

  {  // Every metadata type and three tensor types.
    GgufWriter w;
    w.AddString("general.architecture", "llama");
    w.AddUint32("llama.block_count", 1);
    w.Add("u8", GgufValue::Uint8(1));
    w.Add("i8", GgufValue::Int8(-1));
    w.Add("u16", GgufValue::Uint16(2));
    w.Add("i16", GgufValue::Int16(-2));
    w.AddInt32("i32", -3);
    w.AddUint64("u64", 4);
    w.AddInt64("i64", -4);
    w.AddFloat32("f32", 0.5f);
    w.AddFloat64("f64", 0.25);
    w.AddBool("b", true);
    w.AddStringArray("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "hi"});
    w.AddFloat32Array("tokenizer.ggml.scores", std::vector<float>{0, 0, 0, -1});
    w.AddInt32Array("tokenizer.ggml.token_type", std::vector<int32_t>{2, 3, 3, 1});
    w.Add("nested", GgufValue::Array(GgufType::kArray, {GgufValue::Int32Array(std::vector<int32_t>{1}),
                                                        GgufValue::StringArray({"x"})}));
    w.Add("bools", GgufValue::Array(GgufType::kBool, {GgufValue::Bool(false), GgufValue::Bool(true)}));
    ok &= w.AddTensor("f32", DType::kF32, {4, 2}, Floats(8, 1)).ok();
    ok &= w.AddTensor("f16", DType::kF16, {8}, Floats(8, 2)).ok();
    ok &= w.AddTensor("q8", DType::kQ8_0, {32, 2}, Floats(64, 3)).ok();
    ok &= Write(out + "/gguf/all_types.gguf", w.Serialize());
  }
  {  // Version 2, alignment 64, no metadata but the alignment.
    GgufWriter::Options o;
    o.version = 2;
    o.alignment = 64;
    GgufWriter w(o);
    ok &= w.AddTensor("x", DType::kF32, {3}, Floats(3, 4)).ok();
    ok &= w.AddTensor("y", DType::kBF16, {5, 1, 1, 2}, Floats(10, 5)).ok();
    ok &= Write(out + "/gguf/v2_align64.gguf", w.Serialize());
  }
  {  // Metadata only.
    GgufWriter w;
    w.AddString("general.name", "empty");
    ok &= Write(out + "/gguf/metadata_only.gguf", w.Serialize());
  }
  if (argc > 2) {  // A real tokenizer (first 64 tokens) with a tiny tensor.
    absl::StatusOr<std::unique_ptr<GgufFile>> model = GgufFile::Open(argv[2]);
    if (!model.ok()) {
      std::fprintf(stderr, "%s\n", std::string(model.status().message()).c_str());
      return 1;
    }
    GgufWriter w;
    for (const GgufFile::Entry& e : (*model)->entries()) {
      if (e.type == GgufType::kString) w.AddString(e.key, *(*model)->GetString(e.key));
      if (e.type == GgufType::kUint32) w.AddUint32(e.key, static_cast<uint32_t>(*(*model)->GetInt(e.key)));
      if (e.type == GgufType::kFloat32) w.AddFloat32(e.key, static_cast<float>(*(*model)->GetFloat(e.key)));
    }
    std::vector<std::string> tokens;
    absl::StatusOr<std::vector<std::string_view>> all = (*model)->GetStringArray("tokenizer.ggml.tokens");
    if (!all.ok()) return 1;
    for (std::string_view t : *all) {
      if (tokens.size() < 64) tokens.emplace_back(t);
    }
    w.AddStringArray("tokenizer.ggml.tokens", tokens);
    ok &= w.AddTensor("token_embd.weight", DType::kF32, {4, 4}, Floats(16, 6)).ok();
    ok &= Write(out + "/gguf/real_metadata.gguf", w.Serialize());
  }

  {
    std::string data(24 + 8 + 2, '\0');
    nlohmann::json h = {{"__metadata__", {{"format", "pt"}}},
                        {"w", {{"dtype", "F32"}, {"shape", {2, 3}}, {"data_offsets", {0, 24}}}},
                        {"h", {{"dtype", "F16"}, {"shape", {4}}, {"data_offsets", {24, 32}}}},
                        {"s", {{"dtype", "BF16"}, {"shape", nlohmann::json::array()}, {"data_offsets", {32, 34}}}}};
    ok &= Write(out + "/safetensors/basic.safetensors", Safetensors(h, data));
    nlohmann::json i = {{"ids", {{"dtype", "I64"}, {"shape", {1, 2}}, {"data_offsets", {0, 16}}}},
                        {"e", {{"dtype", "F32"}, {"shape", {0, 3}}, {"data_offsets", {16, 16}}}}};
    ok &= Write(out + "/safetensors/i64.safetensors", Safetensors(i, std::string(16, '\1')));
    ok &= Write(out + "/safetensors/empty.safetensors", Safetensors(nlohmann::json::object(), ""));
  }
  if (!ok) {
    std::fprintf(stderr, "failed to write the seeds\n");
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace tessera::engine

int main(int argc, char** argv) { return tessera::engine::Main(argc, argv); }
