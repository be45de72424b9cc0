// Our BERT encoder against llama.cpp: the seeded random model of bert_test_model.h (bge-small
// shapes, the real bge vocabulary) is regenerated here, byte for byte the model
// tools/bert_golden.sh ran llama.cpp (node-llama-cpp) on, and our tokenizer and embeddings are
// compared with the golden file that script wrote. No node or llama.cpp is needed here.
//
// Tolerances (max abs difference per component of L2-normalised vectors):
//   F32, CLS or mean pooling, vs llama.cpp F32      1e-4 (the issue's bound). llama.cpp's GELU is
//       the tanh approximation looked up in an F16 table; ours is the exact erf form: the
//       differences measured are printed.
//   F16 weights vs llama.cpp F16 and vs our F32     kF16Tolerance (llama.cpp also rounds the
//       activations to F16 before each F16 matmul).
//   a batch of 32 vs one sequence at a time         0: the same bits.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/backend/backend.h"
#include "engine/engine.h"
#include "engine/model/bert.h"
#include "engine/model/gguf.h"
#include "engine/tokenizer/gguf_vocab.h"
#include "engine/tokenizer/tokenizer.h"
#include "engine/tokenizer/vocab.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/engine/bert_test_model.h"

namespace tessera::engine {
namespace {

using Vectors = std::vector<std::vector<float>>;

constexpr double kTolerance = 1e-4;  // measured 4.9e-5
constexpr double kF16Tolerance = 3e-4;  // measured 8e-5

std::string Runfile(const std::string& rel) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return absl::StrCat(srcdir ? srcdir : ".", "/tessera/", rel);
}

std::string TmpPath(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return absl::StrCat(tmp ? tmp : "/tmp", "/", name);
}

std::vector<float> Normalised(std::vector<float> v) {
  double norm = 0;
  for (float f : v) norm += static_cast<double>(f) * f;
  norm = std::sqrt(norm);
  for (float& f : v) f = static_cast<float>(f / norm);
  return v;
}

double MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - b[i]));
  }
  return worst;
}

// One generated model, written to TEST_TMPDIR and opened.
struct LoadedModel {
  std::string path;
  std::unique_ptr<GgufFile> file;
  std::unique_ptr<BertModel> bert;
};

class BertGoldenTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::ifstream in(Runfile("tests/engine/testdata/bert_golden.json"));
    ASSERT_TRUE(in.good()) << "missing bert_golden.json";
    golden_ = new nlohmann::json(nlohmann::json::parse(in));
    auto vocab = GgufFile::Open(Runfile((*golden_)["generator"]["vocab"].get<std::string>()));
    ASSERT_TRUE(vocab.ok()) << vocab.status();
    vocab_ = vocab->release();
    auto backend = CreateBackend("cpu", 2);
    ASSERT_TRUE(backend.ok()) << backend.status();
    backend_ = backend->release();
    for (const auto& t : (*golden_)["texts"]) {
      texts_.push_back(t["text"].get<std::string>());
      tokens_.push_back(t["tokens"].get<std::vector<int32_t>>());
    }
  }
  static void TearDownTestSuite() {
    delete backend_;
    delete vocab_;
    delete golden_;
  }

  // Regenerates golden model `name` ("f32_cls", "f32_mean", "f16_cls"), checks it is the file
  // llama.cpp ran, and loads it.
  static void Load(const std::string& name, LoadedModel* out) {
    const nlohmann::json& gen = (*golden_)["generator"];
    const nlohmann::json& m = (*golden_)["models"][name];
    testing::BertTestModelOptions o;
    o.seed = gen["seed"].get<uint64_t>();
    o.matrix_std = gen["matrix_std"].get<float>();
    o.embd_std = gen["embd_std"].get<float>();
    o.dtype = m["dtype"] == "f16" ? DType::kF16 : DType::kF32;
    o.pooling_type = m["pooling"] == "mean" ? 1 : 2;
    auto bytes = testing::MakeBertGguf(*vocab_, o);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    ASSERT_EQ(testing::Fnv1a64Hex(*bytes), m["fnv1a64"].get<std::string>())
        << "the generator no longer makes the model the golden file was computed from; "
           "rerun tests/engine/tools/bert_golden.sh";
    out->path = TmpPath(name + ".gguf");
    {
      std::ofstream f(out->path, std::ios::binary | std::ios::trunc);
      f.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
      ASSERT_TRUE(f.good());
    }
    bytes->clear();
    auto file = GgufFile::Open(out->path);
    ASSERT_TRUE(file.ok()) << file.status();
    out->file = std::move(*file);
    auto bert = BertModel::FromGguf(*out->file, backend_);
    ASSERT_TRUE(bert.ok()) << bert.status();
    out->bert = std::move(*bert);
  }

  static Vectors Golden(const std::string& name) {
    Vectors v;
    for (const auto& row : (*golden_)["models"][name]["vectors"]) {
      v.push_back(row.get<std::vector<float>>());
    }
    return v;
  }

  // Our normalised embeddings of the golden token ids, one sequence per forward pass.
  static Vectors EmbedEach(BertModel& bert, const std::vector<std::vector<int32_t>>& seqs) {
    Vectors out;
    for (const auto& s : seqs) {
      auto e = bert.Embed({s});
      EXPECT_TRUE(e.ok()) << e.status();
      if (!e.ok()) return {};
      out.push_back(Normalised((*e)[0]));
    }
    return out;
  }

  // Compares row by row, prints each text's worst component and returns the overall worst.
  static double Compare(const std::string& what, const Vectors& ours, const Vectors& theirs) {
    EXPECT_EQ(ours.size(), theirs.size());
    double worst = 0;
    for (size_t i = 0; i < std::min(ours.size(), theirs.size()); ++i) {
      const double d = MaxAbsDiff(ours[i], theirs[i]);
      worst = std::max(worst, d);
      std::printf("  %-28s text %2zu (%3zu tokens): max |diff| %.3g\n", what.c_str(), i,
                  i < tokens_.size() ? tokens_[i].size() : 0, d);
    }
    std::printf("%s: worst max |diff| %.3g\n", what.c_str(), worst);
    return worst;
  }

  static nlohmann::json* golden_;
  static GgufFile* vocab_;
  static Backend* backend_;
  static std::vector<std::string> texts_;
  static std::vector<std::vector<int32_t>> tokens_;
};

nlohmann::json* BertGoldenTest::golden_ = nullptr;
GgufFile* BertGoldenTest::vocab_ = nullptr;
Backend* BertGoldenTest::backend_ = nullptr;
std::vector<std::string> BertGoldenTest::texts_;
std::vector<std::vector<int32_t>> BertGoldenTest::tokens_;

TEST_F(BertGoldenTest, GoldenFileIsWellFormed) {
  ASSERT_GE(texts_.size(), 10u);
  for (const char* name : {"f32_cls", "f32_mean", "f16_cls"}) {
    const Vectors v = Golden(name);
    ASSERT_EQ(v.size(), texts_.size()) << name;
    for (const auto& row : v) {
      ASSERT_EQ(row.size(), 384u) << name;
      double norm = 0;
      for (float f : row) norm += static_cast<double>(f) * f;
      EXPECT_NEAR(norm, 1.0, 1e-5) << name;
    }
  }
  size_t longest = 0;
  for (const auto& t : tokens_) longest = std::max(longest, t.size());
  EXPECT_GE(longest, 150u) << "one text should be long";
}

// Known difference: llama.cpp's WordPiece drops Hangul medial vowels and final consonants
// (U+1160..U+11FF, what NFD makes of a syllable) as if they were accents; Hugging Face's
// BertTokenizer, which bge was trained with, keeps them (category Lo), and so do we. Everything
// else must match exactly.
bool IsHangulVowelOrFinal(const Tokenizer& tok, int32_t id) {
  std::string p = tok.Piece(id);
  if (p.rfind("\xE2\x96\x81", 0) == 0) p = p.substr(3);  // U+2581 word start
  if (p.rfind("##", 0) == 0) p = p.substr(2);
  if (p.size() != 3) return false;
  const auto* u = reinterpret_cast<const unsigned char*>(p.data());
  if ((u[0] & 0xF0) != 0xE0) return false;
  const int cp = ((u[0] & 0x0F) << 12) | ((u[1] & 0x3F) << 6) | (u[2] & 0x3F);
  return cp >= 0x1160 && cp <= 0x11FF;
}

TEST_F(BertGoldenTest, TokenIdsMatchLlamaCpp) {
  auto vocab = VocabFromGguf(*vocab_);
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  auto tok = CreateTokenizer(*vocab);
  ASSERT_TRUE(tok.ok()) << tok.status();
  int hangul_texts = 0;
  for (size_t i = 0; i < texts_.size(); ++i) {
    const std::vector<int32_t> ours = (*tok)->Encode(texts_[i], /*add_special=*/true);
    std::vector<int32_t> filtered;
    for (int32_t id : ours) {
      if (!IsHangulVowelOrFinal(**tok, id)) filtered.push_back(id);
    }
    if (filtered.size() != ours.size()) ++hangul_texts;
    EXPECT_EQ(filtered, tokens_[i]) << texts_[i];
    EXPECT_EQ(ours == tokens_[i], filtered.size() == ours.size()) << texts_[i];
  }
  EXPECT_EQ(hangul_texts, 1) << "exactly one golden text has Hangul";
}

TEST_F(BertGoldenTest, F32ClsMatchesLlamaCpp) {
  LoadedModel m;
  ASSERT_NO_FATAL_FAILURE(Load("f32_cls", &m));
  EXPECT_EQ(m.bert->config().pooling, Pooling::kCls);
  EXPECT_EQ(m.bert->config().dim, 384);
  EXPECT_EQ(m.bert->config().num_layers, 12);
  EXPECT_EQ(m.bert->config().vocab_size, 30522);
  const double worst = Compare("f32 cls vs llama.cpp", EmbedEach(*m.bert, tokens_), Golden("f32_cls"));
  EXPECT_LE(worst, kTolerance);
}

TEST_F(BertGoldenTest, EngineEmbedMatchesLlamaCpp) {
  LoadedModel m;
  ASSERT_NO_FATAL_FAILURE(Load("f32_cls", &m));
  m.bert.reset();
  EngineOptions options;
  options.device = "cpu";
  options.num_threads = 2;
  ModelConfig mc;
  mc.id = "bge-random";
  mc.path = m.path;
  mc.kind = ModelKind::kEmbedding;
  options.models.push_back(mc);
  auto engine = Engine::Create(options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  EmbedParams p;
  p.model = "bge-random";
  p.inputs = texts_;
  p.normalize = true;
  auto r = (*engine)->Embed(p);
  ASSERT_TRUE(r.ok()) << r.status();
  // The Hangul text is tokenized differently (see TokenIdsMatchLlamaCpp): left out here.
  Vectors ours, theirs;
  const Vectors golden = Golden("f32_cls");
  for (size_t i = 0; i < texts_.size(); ++i) {
    if (r->token_counts[i] != static_cast<int>(tokens_[i].size())) {
      std::printf("  engine: text %zu left out (%d tokens here, %zu in llama.cpp)\n", i,
                  r->token_counts[i], tokens_[i].size());
      continue;
    }
    ours.push_back(r->vectors[i]);
    theirs.push_back(golden[i]);
  }
  EXPECT_EQ(ours.size(), texts_.size() - 1);
  const double worst = Compare("engine (batched) vs llama.cpp", ours, theirs);
  EXPECT_LE(worst, kTolerance);
}

TEST_F(BertGoldenTest, MeanPoolingMatchesLlamaCpp) {
  LoadedModel m;
  ASSERT_NO_FATAL_FAILURE(Load("f32_mean", &m));
  EXPECT_EQ(m.bert->config().pooling, Pooling::kMean);
  const Vectors ours = EmbedEach(*m.bert, tokens_);
  const double worst = Compare("f32 mean vs llama.cpp", ours, Golden("f32_mean"));
  EXPECT_LE(worst, kTolerance);
  // Same weights, other pooling: the vectors must differ (the key is honoured), except for a
  // sequence whose mean is its CLS row, which a 3-token text is not.
  const Vectors cls = Golden("f32_cls");
  for (size_t i = 0; i < ours.size(); ++i) {
    EXPECT_GT(MaxAbsDiff(ours[i], cls[i]), 0.01) << "mean equals CLS for text " << i;
  }
}

TEST_F(BertGoldenTest, F16WeightsMatchLlamaCppAndOurF32) {
  LoadedModel m;
  ASSERT_NO_FATAL_FAILURE(Load("f16_cls", &m));
  const Vectors ours = EmbedEach(*m.bert, tokens_);
  m = LoadedModel();
  EXPECT_LE(Compare("f16 cls vs llama.cpp f16", ours, Golden("f16_cls")), kF16Tolerance);
  EXPECT_LE(Compare("f16 cls vs llama.cpp f32", ours, Golden("f32_cls")), kF16Tolerance);
  LoadedModel f32;
  ASSERT_NO_FATAL_FAILURE(Load("f32_cls", &f32));
  EXPECT_LE(Compare("f16 cls vs our f32", ours, EmbedEach(*f32.bert, tokens_)), kF16Tolerance);
}

// 32 texts of about 64 tokens: one Embed call over all of them (on the CPU backend, passes of at
// most 512 tokens) gives the very bits that 32 separate calls give: attention never crosses
// sequences, padding never leaks in, and with float weights no op depends on the batch.
TEST_F(BertGoldenTest, BatchOf32EqualsOneAtATime) {
  LoadedModel m;
  ASSERT_NO_FATAL_FAILURE(Load("f32_cls", &m));
  const std::vector<int32_t>& long_text = *std::max_element(
      tokens_.begin(), tokens_.end(), [](const auto& a, const auto& b) { return a.size() < b.size(); });
  std::vector<std::vector<int32_t>> seqs;
  for (int s = 0; s < 32; ++s) {
    const size_t len = 48 + (s * 7) % 33;  // 48..80 tokens, different lengths
    std::vector<int32_t> seq = {long_text.front()};  // [CLS]
    for (size_t i = 0; seq.size() < len - 1; ++i) {
      seq.push_back(long_text[1 + (s * 5 + i) % (long_text.size() - 2)]);
    }
    seq.push_back(long_text.back());  // [SEP]
    seqs.push_back(std::move(seq));
  }
  const Vectors single = EmbedEach(*m.bert, seqs);
  const auto t0 = std::chrono::steady_clock::now();
  auto batch = m.bert->Embed(seqs);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(batch.ok()) << batch.status();
  ASSERT_EQ(batch->size(), 32u);
  double worst = 0;
  for (size_t i = 0; i < 32; ++i) {
    worst = std::max(worst, MaxAbsDiff(Normalised((*batch)[i]), single[i]));
  }
  int64_t total = 0;
  for (const auto& s : seqs) total += static_cast<int64_t>(s.size());
  std::printf("batch of 32 (%lld tokens) vs one at a time: worst max |diff| %.3g; batch took %.3f s "
              "(2 threads, informational)\n",
              static_cast<long long>(total), worst, secs);
  EXPECT_EQ(worst, 0.0);
}

// A cross-encoder (2 layers, the golden vocabulary): the scores of 14 query-document pairs in
// one Score call (on the CPU backend, passes of at most 512 tokens) are the bits of 14 separate
// calls; the pairs score differently; bad type ids and a model without the head are refused.
TEST_F(BertGoldenTest, RerankerScoresDoNotDependOnGrouping) {
  testing::BertTestModelOptions o;
  o.num_layers = 2;
  o.reranker = true;
  o.matrix_std = 0.05f;
  auto bytes = testing::MakeBertGguf(*vocab_, o);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  const std::string path = TmpPath("reranker.gguf");
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes->data(), static_cast<std::streamsize>(bytes->size()));
    ASSERT_TRUE(f.good());
  }
  auto file = GgufFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status();
  auto bert = BertModel::FromGguf(**file, backend_);
  ASSERT_TRUE(bert.ok()) << bert.status();
  ASSERT_TRUE((*bert)->config().is_reranker);

  const std::vector<int32_t>& query = tokens_[0];  // [CLS] query [SEP]
  std::vector<int32_t> words;  // the inner tokens of every text, one after another
  for (const auto& t : tokens_) words.insert(words.end(), t.begin() + 1, t.end() - 1);
  std::vector<std::vector<int32_t>> seqs, types;
  for (size_t i = 0; i < 14; ++i) {
    std::vector<int32_t> seq(query.begin(), query.end());
    for (size_t j = 0; j < 60 + 9 * i; ++j) seq.push_back(words[(17 * i + j) % words.size()]);
    seq.push_back(query.back());  // [SEP]
    std::vector<int32_t> type(seq.size(), 1);
    std::fill(type.begin(), type.begin() + query.size(), 0);
    seqs.push_back(std::move(seq));
    types.push_back(std::move(type));
  }
  size_t total = 0;
  for (const auto& seq : seqs) total += seq.size();
  ASSERT_GT(total, 1024u);  // several passes
  auto all = (*bert)->Score(seqs, types);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), seqs.size());
  for (size_t i = 0; i < seqs.size(); ++i) {
    auto one = (*bert)->Score({seqs[i]}, {types[i]});
    ASSERT_TRUE(one.ok()) << one.status();
    EXPECT_TRUE(std::isfinite((*all)[i]));
    EXPECT_EQ((*all)[i], (*one)[0]) << "pair " << i;
  }
  EXPECT_NE((*all)[0], (*all)[1]);

  EXPECT_EQ((*bert)->Score(seqs, {types.begin(), types.end() - 1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  std::vector<std::vector<int32_t>> bad_types = types;
  bad_types.back().back() = 2;  // the model has two token types
  EXPECT_EQ((*bert)->Score(seqs, bad_types).status().code(), absl::StatusCode::kInvalidArgument);
  LoadedModel embedder;
  ASSERT_NO_FATAL_FAILURE(Load("f32_cls", &embedder));
  EXPECT_EQ(embedder.bert->Score(seqs, types).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace tessera::engine
