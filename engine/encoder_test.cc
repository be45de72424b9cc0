// Embedding and reranking through the Engine with small BERT models built in the test (seeded
// random weights, the real bge WordPiece vocabulary): the behaviour callers rely on, not the
// numbers (tests/engine/bert_golden_test checks those against llama.cpp).
#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "engine/engine.h"
#include "engine/model/gguf.h"
#include "engine/model/gguf_writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::engine {
namespace {

using ::testing::HasSubstr;

constexpr int kDim = 32, kLayers = 2, kHeads = 4, kFfn = 64, kPositions = 64;

// Writes a BERT GGUF with the bge vocabulary; pooling 1 mean, 2 cls, 4 rank (with a head).
std::string WriteBert(const std::string& name, int pooling, uint32_t seed) {
  auto vocab = GgufFile::Open("engine/tokenizer/testdata/ggml-vocab-bert-bge.gguf");
  EXPECT_TRUE(vocab.ok()) << vocab.status();
  GgufWriter w;
  w.AddString("general.architecture", "bert");
  w.AddUint32("bert.embedding_length", kDim);
  w.AddUint32("bert.block_count", kLayers);
  w.AddUint32("bert.attention.head_count", kHeads);
  w.AddUint32("bert.feed_forward_length", kFfn);
  w.AddUint32("bert.context_length", kPositions);
  w.AddFloat32("bert.attention.layer_norm_epsilon", 1e-12f);
  w.AddUint32("bert.pooling_type", pooling);
  auto tokens = (*vocab)->GetStringArray("tokenizer.ggml.tokens");
  EXPECT_TRUE(tokens.ok());
  std::vector<std::string> toks(tokens->begin(), tokens->end());
  w.AddString("tokenizer.ggml.model", "bert");
  w.AddStringArray("tokenizer.ggml.tokens", toks);
  for (const char* key : {"tokenizer.ggml.unknown_token_id", "tokenizer.ggml.seperator_token_id",
                          "tokenizer.ggml.padding_token_id", "tokenizer.ggml.cls_token_id",
                          "tokenizer.ggml.mask_token_id"}) {
    auto v = (*vocab)->GetInt(key);
    if (v.ok()) w.AddUint32(key, static_cast<uint32_t>(*v));
  }
  auto types = (*vocab)->GetIntArray("tokenizer.ggml.token_type");
  if (types.ok()) {
    std::vector<int32_t> t(types->begin(), types->end());
    w.AddInt32Array("tokenizer.ggml.token_type", t);
  }
  const int64_t vocab_size = static_cast<int64_t>(toks.size());
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 0.2f);
  auto add = [&](const std::string& n, std::vector<int64_t> shape, float base = 0.0f) {
    int64_t count = 1;
    for (int64_t d : shape) count *= d;
    std::vector<float> v(count);
    for (float& f : v) f = base + normal(rng);
    EXPECT_TRUE(w.AddTensor(n, DType::kF32, shape, v).ok());
  };
  add("token_embd.weight", {kDim, vocab_size});
  add("token_types.weight", {kDim, 2});
  add("position_embd.weight", {kDim, kPositions});
  add("token_embd_norm.weight", {kDim}, 1.0f);
  add("token_embd_norm.bias", {kDim});
  for (int l = 0; l < kLayers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    for (const char* m : {"attn_q", "attn_k", "attn_v", "attn_output"}) {
      add(p + m + ".weight", {kDim, kDim});
      add(p + m + ".bias", {kDim});
    }
    add(p + "attn_output_norm.weight", {kDim}, 1.0f);
    add(p + "attn_output_norm.bias", {kDim});
    add(p + "ffn_up.weight", {kDim, kFfn});
    add(p + "ffn_up.bias", {kFfn});
    add(p + "ffn_down.weight", {kFfn, kDim});
    add(p + "ffn_down.bias", {kDim});
    add(p + "layer_output_norm.weight", {kDim}, 1.0f);
    add(p + "layer_output_norm.bias", {kDim});
  }
  if (pooling == 4) {
    add("cls.weight", {kDim, kDim});
    add("cls.bias", {kDim});
    add("cls.output.weight", {kDim, 1});
    add("cls.output.bias", {1});
  }
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/" + name + ".gguf";
  EXPECT_TRUE(w.WriteFile(path).ok());
  return path;
}

class EncoderTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    EngineOptions o;
    o.device = "cpu";
    o.num_threads = 2;
    o.models.push_back({.id = "cls", .path = WriteBert("cls", 2, 7)});
    o.models.push_back({.id = "mean", .path = WriteBert("mean", 1, 7)});
    o.models.push_back({.id = "rerank", .path = WriteBert("rerank", 4, 9)});
    auto e = Engine::Create(o);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = e->release();
  }
  static void TearDownTestSuite() { delete engine_; }

  static EmbedResult Embed(const std::string& model, std::vector<std::string> inputs,
                           bool normalize = true) {
    EmbedParams p;
    p.model = model;
    p.inputs = std::move(inputs);
    p.normalize = normalize;
    auto r = engine_->Embed(p);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : EmbedResult{};
  }

  static Engine* engine_;
};
Engine* EncoderTest::engine_ = nullptr;

const std::vector<std::string> kTexts = {
    "What is the travel policy?", "Expense reports are due on Friday.", "héllo wörld",
    "北京是中国的首都", "a", std::string(300, 'x') + " long"};

TEST_F(EncoderTest, ModelsAreListedWithTheirKinds) {
  for (const ModelInfo& m : engine_->ListModels()) {
    EXPECT_EQ(m.architecture, "bert");
    EXPECT_EQ(m.kind, m.id == "rerank" ? ModelKind::kRerank : ModelKind::kEmbedding) << m.id;
    if (m.kind == ModelKind::kEmbedding) {
      EXPECT_EQ(m.embedding_dimensions, kDim);
    }
    EXPECT_EQ(m.tokenizer, "wordpiece");
  }
}

TEST_F(EncoderTest, NormalisedVectorsHaveUnitLengthAndDifferByText) {
  EmbedResult r = Embed("cls", kTexts);
  ASSERT_EQ(r.vectors.size(), kTexts.size());
  EXPECT_EQ(r.dimensions, kDim);
  for (const auto& v : r.vectors) {
    double n = 0;
    for (float f : v) n += f * f;
    EXPECT_NEAR(n, 1.0, 1e-5);
  }
  EXPECT_NE(r.vectors[0], r.vectors[1]);
  EXPECT_GT(r.token_counts[0], 2);
}

TEST_F(EncoderTest, BatchingDoesNotChangeTheVectors) {
  EmbedResult together = Embed("mean", kTexts);
  for (size_t i = 0; i < kTexts.size(); ++i) {
    EmbedResult alone = Embed("mean", {kTexts[i]});
    ASSERT_EQ(alone.vectors.size(), 1u);
    for (int d = 0; d < kDim; ++d) {
      EXPECT_NEAR(alone.vectors[0][d], together.vectors[i][d], 1e-5) << i;
    }
  }
}

TEST_F(EncoderTest, ConcurrentCallersGetTheirOwnResults) {
  EmbedResult expected = Embed("cls", kTexts);
  std::vector<std::thread> threads;
  std::vector<EmbedResult> got(8);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] { got[t] = Embed("cls", {kTexts[t % kTexts.size()]}); });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 8; ++t) {
    ASSERT_EQ(got[t].vectors.size(), 1u);
    for (int d = 0; d < kDim; ++d) {
      EXPECT_NEAR(got[t].vectors[0][d], expected.vectors[t % kTexts.size()][d], 1e-5);
    }
  }
}

TEST_F(EncoderTest, PoolingFollowsTheModel) {
  EmbedResult cls = Embed("cls", {kTexts[0]});
  EmbedResult mean = Embed("mean", {kTexts[0]});
  EXPECT_NE(cls.vectors[0], mean.vectors[0]);  // same weights (seed), different pooling
}

TEST_F(EncoderTest, LongInputsAreCutOrRejectedAsAsked) {
  std::string long_text;
  for (int i = 0; i < 200; ++i) long_text += "policy ";
  EmbedResult r = Embed("cls", {long_text, "short"});
  EXPECT_TRUE(r.truncated[0]);
  EXPECT_FALSE(r.truncated[1]);
  EXPECT_EQ(r.token_counts[0], kPositions);
  EmbedParams p;
  p.model = "cls";
  p.inputs = {long_text};
  p.truncate = Truncate::kNone;
  auto s = engine_->Embed(p);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("inputs[0]"));
}

TEST_F(EncoderTest, DimensionsKeepsAPrefix) {
  EmbedResult full = Embed("cls", {kTexts[0]}, /*normalize=*/false);
  EmbedParams p;
  p.model = "cls";
  p.inputs = {kTexts[0]};
  p.dimensions = 8;
  auto r = engine_->Embed(p);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->vectors[0].size(), 8u);
  for (int d = 0; d < 8; ++d) EXPECT_FLOAT_EQ(r->vectors[0][d], full.vectors[0][d]);
  p.dimensions = kDim + 1;
  EXPECT_EQ(engine_->Embed(p).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(EncoderTest, BadEmbedCalls) {
  EmbedParams p;
  p.model = "cls";
  EXPECT_EQ(engine_->Embed(p).status().code(), absl::StatusCode::kInvalidArgument);  // no inputs
  p.inputs.assign(513, "x");
  EXPECT_EQ(engine_->Embed(p).status().code(), absl::StatusCode::kInvalidArgument);
  p.inputs = {"x"};
  p.model = "rerank";
  EXPECT_EQ(engine_->Embed(p).status().code(), absl::StatusCode::kInvalidArgument);
  p.model = "nope";
  EXPECT_EQ(engine_->Embed(p).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EncoderTest, RerankScoresEveryDocumentBestFirst) {
  RerankParams p;
  p.model = "rerank";
  p.query = "travel policy";
  p.documents = kTexts;
  auto r = engine_->Rerank(p);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->results.size(), kTexts.size());
  std::vector<bool> seen(kTexts.size());
  for (size_t i = 0; i < r->results.size(); ++i) {
    const auto& [index, score] = r->results[i];
    EXPECT_GT(score, 0.0);
    EXPECT_LT(score, 1.0);
    seen[index] = true;
    if (i > 0) {
      EXPECT_GE(r->results[i - 1].second, score);
    }
  }
  for (bool s : seen) EXPECT_TRUE(s);
  // The same pair scores the same whatever else is in the call.
  RerankParams one = p;
  one.documents = {kTexts[2]};
  auto single = engine_->Rerank(one);
  ASSERT_TRUE(single.ok());
  for (const auto& [index, score] : r->results) {
    if (index == 2) {
      EXPECT_NEAR(single->results[0].second, score, 1e-5);
    }
  }
  p.top_n = 2;
  auto top = engine_->Rerank(p);
  ASSERT_TRUE(top.ok());
  ASSERT_EQ(top->results.size(), 2u);
  EXPECT_EQ(top->results[0], r->results[0]);
}

TEST_F(EncoderTest, BadRerankCalls) {
  RerankParams p;
  p.model = "rerank";
  p.documents = {"x"};
  EXPECT_EQ(engine_->Rerank(p).status().code(), absl::StatusCode::kInvalidArgument);  // no query
  p.query = "q";
  p.documents.clear();
  EXPECT_EQ(engine_->Rerank(p).status().code(), absl::StatusCode::kInvalidArgument);
  p.documents = {"x"};
  p.model = "cls";
  EXPECT_EQ(engine_->Rerank(p).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tessera::engine
