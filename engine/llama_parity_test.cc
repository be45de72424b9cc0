// The same Llama weights through the two loaders give the same logits: a Hugging Face
// safetensors directory (half-split RoPE, q/k as trained) and a GGUF file written the way
// llama.cpp's converter writes it (q/k rows permuted for adjacent-pair RoPE). Checks both
// loaders, both RoPE layouts, grouped-query attention and the output head end to end.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "engine/backend/backend.h"
#include "engine/model/gguf.h"
#include "engine/model/gguf_writer.h"
#include "engine/model/llama.h"
#include "engine/model/safetensors.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace tessera::engine {
namespace {

constexpr int kVocab = 97, kDim = 64, kLayers = 2, kHeads = 4, kKvHeads = 2, kFfn = 96;
constexpr int kHeadDim = kDim / kHeads;

struct Tensor {
  std::string hf_name, gguf_name;
  int64_t rows, cols;
  std::vector<float> values;
  int permute_heads = 0;  // q/k: heads to permute for GGUF
};

std::vector<Tensor> RandomWeights() {
  std::mt19937 rng(1234);
  std::normal_distribution<float> normal(0.0f, 0.08f);
  std::vector<Tensor> t;
  auto add = [&](std::string hf, std::string gguf, int64_t rows, int64_t cols, bool norm,
                 int permute = 0) {
    Tensor x{hf, gguf, rows, cols, std::vector<float>(rows * cols), permute};
    for (float& v : x.values) v = norm ? 1.0f + normal(rng) : normal(rng);
    t.push_back(std::move(x));
  };
  add("model.embed_tokens.weight", "token_embd.weight", kVocab, kDim, false);
  for (int l = 0; l < kLayers; ++l) {
    const std::string hf = "model.layers." + std::to_string(l) + ".";
    const std::string gg = "blk." + std::to_string(l) + ".";
    add(hf + "input_layernorm.weight", gg + "attn_norm.weight", 1, kDim, true);
    add(hf + "self_attn.q_proj.weight", gg + "attn_q.weight", kHeads * kHeadDim, kDim, false, kHeads);
    add(hf + "self_attn.k_proj.weight", gg + "attn_k.weight", kKvHeads * kHeadDim, kDim, false, kKvHeads);
    add(hf + "self_attn.v_proj.weight", gg + "attn_v.weight", kKvHeads * kHeadDim, kDim, false);
    add(hf + "self_attn.o_proj.weight", gg + "attn_output.weight", kDim, kHeads * kHeadDim, false);
    add(hf + "post_attention_layernorm.weight", gg + "ffn_norm.weight", 1, kDim, true);
    add(hf + "mlp.gate_proj.weight", gg + "ffn_gate.weight", kFfn, kDim, false);
    add(hf + "mlp.up_proj.weight", gg + "ffn_up.weight", kFfn, kDim, false);
    add(hf + "mlp.down_proj.weight", gg + "ffn_down.weight", kDim, kFfn, false);
  }
  add("model.norm.weight", "output_norm.weight", 1, kDim, true);
  add("lm_head.weight", "output.weight", kVocab, kDim, false);
  return t;
}

// llama.cpp's converter reorders each head's q/k rows from halves (i, i + d/2) to pairs (2i, 2i+1).
std::vector<float> PermuteForGguf(const Tensor& t) {
  std::vector<float> out(t.values.size());
  const int hd = static_cast<int>(t.rows / t.permute_heads);
  for (int h = 0; h < t.permute_heads; ++h) {
    for (int i = 0; i < hd / 2; ++i) {
      for (int j = 0; j < 2; ++j) {
        const int64_t dst = h * hd + 2 * i + j, src = h * hd + j * (hd / 2) + i;
        std::memcpy(&out[dst * t.cols], &t.values[src * t.cols], t.cols * sizeof(float));
      }
    }
  }
  return out;
}

std::string WriteGguf(const std::vector<Tensor>& tensors, const std::string& dir) {
  GgufWriter w;
  w.AddString("general.architecture", "llama");
  w.AddUint32("llama.context_length", 256);
  w.AddUint32("llama.embedding_length", kDim);
  w.AddUint32("llama.block_count", kLayers);
  w.AddUint32("llama.feed_forward_length", kFfn);
  w.AddUint32("llama.attention.head_count", kHeads);
  w.AddUint32("llama.attention.head_count_kv", kKvHeads);
  w.AddFloat32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  w.AddFloat32("llama.rope.freq_base", 500000.0f);
  for (const Tensor& t : tensors) {
    std::vector<float> v = t.permute_heads ? PermuteForGguf(t) : t.values;
    std::vector<int64_t> shape = t.rows == 1 ? std::vector<int64_t>{t.cols} : std::vector<int64_t>{t.cols, t.rows};
    EXPECT_TRUE(w.AddTensor(t.gguf_name, DType::kF32, shape, v).ok());
  }
  const std::string path = dir + "/model.gguf";
  EXPECT_TRUE(w.WriteFile(path).ok());
  return path;
}

void WriteSafetensors(const std::vector<Tensor>& tensors, const std::string& dir) {
  nlohmann::json header = nlohmann::json::object();
  std::string data;
  for (const Tensor& t : tensors) {
    const size_t begin = data.size();
    data.append(reinterpret_cast<const char*>(t.values.data()), t.values.size() * sizeof(float));
    header[t.hf_name] = {{"dtype", "F32"},
                         {"shape", t.rows == 1 ? nlohmann::json::array({t.cols})
                                               : nlohmann::json::array({t.rows, t.cols})},
                         {"data_offsets", {begin, data.size()}}};
  }
  std::string h = header.dump();
  const uint64_t n = h.size();
  std::ofstream out(dir + "/model.safetensors", std::ios::binary);
  out.write(reinterpret_cast<const char*>(&n), 8);
  out << h << data;
  std::ofstream cfg(dir + "/config.json");
  cfg << nlohmann::json{{"model_type", "llama"},
                        {"hidden_size", kDim},
                        {"num_hidden_layers", kLayers},
                        {"num_attention_heads", kHeads},
                        {"num_key_value_heads", kKvHeads},
                        {"intermediate_size", kFfn},
                        {"vocab_size", kVocab},
                        {"max_position_embeddings", 256},
                        {"rms_norm_eps", 1e-5},
                        {"rope_theta", 500000.0},
                        {"tie_word_embeddings", false}}
             .dump();
}

std::vector<float> Logits(LlamaModel& model, const std::vector<int32_t>& tokens) {
  auto cache = model.NewCache(4, 16);
  EXPECT_TRUE(cache.ok()) << cache.status();
  std::vector<int32_t> seq(tokens.size(), 0), pos(tokens.size()), slots(tokens.size()), all(tokens.size());
  const std::vector<int32_t> table = {0, 1, 2, 3};
  for (size_t i = 0; i < tokens.size(); ++i) pos[i] = slots[i] = all[i] = static_cast<int32_t>(i);
  ForwardBatch b;
  b.tokens = tokens;
  b.token_seq = seq;
  b.token_pos = pos;
  b.slots = slots;
  b.block_tables = {table};
  b.logits_for = all;
  std::vector<float> logits;
  EXPECT_TRUE(model.Forward(b, **cache, &logits).ok());
  return logits;
}

TEST(LlamaParityTest, SafetensorsAndGgufGiveTheSameLogits) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/parity";
  std::filesystem::create_directories(dir);
  const std::vector<Tensor> tensors = RandomWeights();
  const std::string gguf_path = WriteGguf(tensors, dir);
  WriteSafetensors(tensors, dir);

  auto backend = CreateBackend("cpu", 2);
  ASSERT_TRUE(backend.ok()) << backend.status();
  auto gguf = GgufFile::Open(gguf_path);
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  auto from_gguf = LlamaModel::FromGguf(**gguf, backend->get());
  ASSERT_TRUE(from_gguf.ok()) << from_gguf.status();
  auto st = SafetensorsModel::Open(dir);
  ASSERT_TRUE(st.ok()) << st.status();
  auto from_st = LlamaModel::FromSafetensors(**st, backend->get());
  ASSERT_TRUE(from_st.ok()) << from_st.status();
  EXPECT_EQ((*from_gguf)->config().rope.style, RopeStyle::kNormal);
  EXPECT_EQ((*from_st)->config().rope.style, RopeStyle::kNeox);

  std::vector<int32_t> tokens;
  for (int i = 0; i < 40; ++i) tokens.push_back((i * 37 + 5) % kVocab);
  const std::vector<float> a = Logits(**from_gguf, tokens);
  const std::vector<float> b = Logits(**from_st, tokens);
  ASSERT_EQ(a.size(), tokens.size() * kVocab);
  ASSERT_EQ(a.size(), b.size());
  double worst = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(a[i])));
  }
  EXPECT_LT(worst, 1e-4) << "max |logit| " << scale;
  EXPECT_GT(scale, 0.1);  // the logits are not trivially zero
}

TEST(LlamaParityTest, RopeLayoutsAreNotInterchangeable) {
  // Guard against a test that cannot fail: loading the GGUF weights with the wrong RoPE layout
  // must change the logits.
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/wrong";
  std::filesystem::create_directories(dir);
  std::vector<Tensor> tensors = RandomWeights();
  for (Tensor& t : tensors) t.permute_heads = 0;  // GGUF without the converter's permutation
  const std::string gguf_path = WriteGguf(tensors, dir);
  WriteSafetensors(tensors, dir);
  auto backend = CreateBackend("cpu", 2);
  ASSERT_TRUE(backend.ok());
  auto gguf = GgufFile::Open(gguf_path);
  ASSERT_TRUE(gguf.ok());
  auto from_gguf = LlamaModel::FromGguf(**gguf, backend->get());
  auto st = SafetensorsModel::Open(dir);
  ASSERT_TRUE(st.ok());
  auto from_st = LlamaModel::FromSafetensors(**st, backend->get());
  ASSERT_TRUE(from_gguf.ok() && from_st.ok());
  std::vector<int32_t> tokens = {3, 14, 15, 92, 65, 35};
  const std::vector<float> a = Logits(**from_gguf, tokens);
  const std::vector<float> b = Logits(**from_st, tokens);
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - b[i]));
  EXPECT_GT(worst, 1e-3);
}

// Two prompts in one batch (sequences 0 and 1, their own cache blocks) then one decode step of
// each; logits_for picks the rows whose logits come back.
struct TwoPrompts {
  std::vector<int32_t> tokens, seq, pos, slots;
  std::vector<int32_t> table0 = {0, 1}, table1 = {2, 3};
};

TwoPrompts MakeTwoPrompts() {
  TwoPrompts p;
  for (int i = 0; i < 40; ++i) {
    const int s = i < 25 ? 0 : 1, at = s == 0 ? i : i - 25;
    p.tokens.push_back((i * 37 + 5) % kVocab);
    p.seq.push_back(s);
    p.pos.push_back(at);
    p.slots.push_back(s * 32 + at);
  }
  return p;
}

std::vector<float> RunPass(LlamaModel& model, KvCache& cache, const TwoPrompts& p,
                       const std::vector<int32_t>& tokens, const std::vector<int32_t>& seq,
                       const std::vector<int32_t>& pos, const std::vector<int32_t>& slots,
                       const std::vector<int32_t>& logits_for) {
  ForwardBatch b;
  b.tokens = tokens;
  b.token_seq = seq;
  b.token_pos = pos;
  b.slots = slots;
  b.block_tables = {p.table0, p.table1};
  b.logits_for = logits_for;
  std::vector<float> logits;
  const absl::Status s = model.Forward(b, cache, &logits);
  EXPECT_TRUE(s.ok()) << s;
  return logits;
}

// A prompt's last layer runs its attention, output projection and FFN only for the rows whose
// logits are wanted (the last token of each prompt, or none for a chunk without logits). The
// logits are the bits of the full pass, in the asked order, and the cache the next step reads is
// the same: with F32 weights no op depends on how many rows it gets.
TEST(LlamaParityTest, OnlyTheWantedRowsRunTheLastLayer) {
  const std::string dir = std::string(std::getenv("TEST_TMPDIR")) + "/pruned";
  std::filesystem::create_directories(dir);
  auto backend = CreateBackend("cpu", 2);
  ASSERT_TRUE(backend.ok()) << backend.status();
  const std::string path = WriteGguf(RandomWeights(), dir);
  auto gguf = GgufFile::Open(path);
  ASSERT_TRUE(gguf.ok()) << gguf.status();
  auto model = LlamaModel::FromGguf(**gguf, backend->get());
  ASSERT_TRUE(model.ok()) << model.status();
  const TwoPrompts p = MakeTwoPrompts();
  std::vector<int32_t> all(40);
  for (int i = 0; i < 40; ++i) all[i] = i;

  auto full_cache = (*model)->NewCache(4, 32);
  auto some_cache = (*model)->NewCache(4, 32);
  auto none_cache = (*model)->NewCache(4, 32);
  ASSERT_TRUE(full_cache.ok() && some_cache.ok() && none_cache.ok());
  const std::vector<float> full = RunPass(**model, **full_cache, p, p.tokens, p.seq, p.pos, p.slots, all);
  const std::vector<int32_t> wanted = {39, 24, 39, 3};  // any order, repeats allowed
  const std::vector<float> some =
      RunPass(**model, **some_cache, p, p.tokens, p.seq, p.pos, p.slots, wanted);
  const std::vector<float> none = RunPass(**model, **none_cache, p, p.tokens, p.seq, p.pos, p.slots, {});
  ASSERT_EQ(full.size(), 40u * kVocab);
  ASSERT_EQ(some.size(), wanted.size() * kVocab);
  EXPECT_TRUE(none.empty());
  for (size_t i = 0; i < wanted.size(); ++i) {
    for (int v = 0; v < kVocab; ++v) {
      ASSERT_EQ(some[i * kVocab + v], full[wanted[i] * kVocab + v]) << "row " << wanted[i];
    }
  }
  // The next token of each prompt reads the cache each pass left.
  const std::vector<int32_t> next = {11, 12}, nseq = {0, 1}, npos = {25, 15}, nslots = {25, 47},
                             both = {0, 1};
  const std::vector<float> after_full =
      RunPass(**model, **full_cache, p, next, nseq, npos, nslots, both);
  const std::vector<float> after_some =
      RunPass(**model, **some_cache, p, next, nseq, npos, nslots, both);
  const std::vector<float> after_none =
      RunPass(**model, **none_cache, p, next, nseq, npos, nslots, both);
  ASSERT_EQ(after_full.size(), 2u * kVocab);
  EXPECT_EQ(after_some, after_full);
  EXPECT_EQ(after_none, after_full);
}

}  // namespace
}  // namespace tessera::engine
