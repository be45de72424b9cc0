// make_bert_gguf: writes the seeded random BERT model of tests/engine/bert_test_model.h (bge-small
// shapes, the real bge vocabulary) to a file, and prints its FNV-1a 64 hash.
//
//   make_bert_gguf --vocab=engine/tokenizer/testdata/ggml-vocab-bert-bge.gguf --out=model.gguf
//       [--dtype=f32|f16] [--pooling=cls|mean] [--seed=N] [--matrix_std=X] [--embd_std=X]
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "engine/model/gguf.h"
#include "tests/engine/bert_test_model.h"

namespace {

int Usage(const char* why) {
  std::fprintf(stderr,
               "make_bert_gguf: %s\nusage: make_bert_gguf --vocab=VOCAB.gguf --out=OUT.gguf "
               "[--dtype=f32|f16] [--pooling=cls|mean] [--seed=N] [--matrix_std=X] "
               "[--embd_std=X]\n",
               why);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  using tessera::engine::DType;
  using tessera::engine::GgufFile;
  namespace t = tessera::engine::testing;
  t::BertTestModelOptions o;
  std::string vocab_path, out_path;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* flag, std::string* v) {
      const std::string prefix = std::string(flag) + "=";
      if (!absl::StartsWith(a, prefix)) return false;
      *v = a.substr(prefix.size());
      return true;
    };
    std::string v;
    if (value("--vocab", &v)) {
      vocab_path = v;
    } else if (value("--out", &v)) {
      out_path = v;
    } else if (value("--dtype", &v)) {
      if (v == "f32") o.dtype = DType::kF32;
      else if (v == "f16") o.dtype = DType::kF16;
      else return Usage("--dtype must be f32 or f16");
    } else if (value("--pooling", &v)) {
      if (v == "cls") o.pooling_type = 2;
      else if (v == "mean") o.pooling_type = 1;
      else return Usage("--pooling must be cls or mean");
    } else if (value("--seed", &v)) {
      if (!absl::SimpleAtoi(v, &o.seed)) return Usage("--seed must be an unsigned integer");
    } else if (value("--matrix_std", &v)) {
      if (!absl::SimpleAtof(v, &o.matrix_std)) return Usage("--matrix_std must be a number");
    } else if (value("--embd_std", &v)) {
      if (!absl::SimpleAtof(v, &o.embd_std)) return Usage("--embd_std must be a number");
    } else {
      return Usage(("unknown argument " + a).c_str());
    }
  }
  if (vocab_path.empty() || out_path.empty()) return Usage("--vocab and --out are required");
  auto vocab = GgufFile::Open(vocab_path);
  if (!vocab.ok()) {
    std::fprintf(stderr, "make_bert_gguf: %s\n", vocab.status().ToString().c_str());
    return 1;
  }
  auto bytes = t::MakeBertGguf(**vocab, o);
  if (!bytes.ok()) {
    std::fprintf(stderr, "make_bert_gguf: %s\n", bytes.status().ToString().c_str());
    return 1;
  }
  FILE* f = std::fopen(out_path.c_str(), "wb");
  if (f == nullptr || std::fwrite(bytes->data(), 1, bytes->size(), f) != bytes->size() ||
      std::fclose(f) != 0) {
    std::fprintf(stderr, "make_bert_gguf: cannot write %s\n", out_path.c_str());
    return 1;
  }
  std::printf("fnv1a64=%s bytes=%zu\n", t::Fnv1a64Hex(*bytes).c_str(), bytes->size());
  return 0;
}
