// Whole models on the CUDA backend against the references: stories260K's greedy text through
// the engine with device=cuda must equal the llama2.c/llama.cpp golden text byte for byte, and a
// small random BERT's embeddings must match the CPU backend's. Tagged requires-gpu; skips
// without a device.
//
// Tolerance for embeddings: per sequence, max |gpu - cpu| <= 1e-3 * max |cpu| and cosine
// similarity >= 0.99999 (the GEMMs with F16 weights round activations to F16 on the GPU).
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/types/span.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "engine/backend/backend.h"
#include "engine/backend/cpu/cpu_backend.h"
#include "engine/backend/cuda/cuda_backend.h"
#include "engine/engine.h"
#include "engine/model/bert.h"
#include "engine/model/gguf.h"
#include "engine/model/llama.h"
#include "engine/model/dtype.h"
#include "gtest/gtest.h"
#include "tests/engine/bert_test_model.h"

namespace tessera::engine {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool SkipWithoutDevice(std::string* why) { return cuda::CudaDeviceCount(why) == 0; }

#define SKIP_WITHOUT_GPU()                                                                \
  do {                                                                                    \
    std::string why;                                                                      \
    if (SkipWithoutDevice(&why)) {                                                        \
      GTEST_SKIP() << "No CUDA device available (" << why << "); skipping GPU test.";     \
    }                                                                                     \
    auto probe = cuda::CreateCudaBackend({});                                             \
    if (!probe.ok()) GTEST_SKIP() << probe.status();                                      \
  } while (0)

struct Collected {
  absl::Mutex mu;
  std::string text;
  GenerateEvent finish;
  absl::Notification done;
};

TEST(CudaModelTest, Stories260KGreedyMatchesTheGoldenTextOnTheGpu) {
  SKIP_WITHOUT_GPU();
  EngineOptions o;
  o.device = "cuda";
  o.num_threads = 2;
  ModelConfig m;
  m.id = "stories";
  m.path = "engine/model/testdata/stories260K.gguf";
  m.max_running = 8;
  m.max_queued = 4;
  m.kv_cache_mb = 16;
  o.models.push_back(m);
  auto engine = Engine::Create(o);
  ASSERT_TRUE(engine.ok()) << engine.status();
  std::string golden = ReadFile("engine/testdata/stories260K.greedy200.txt");
  ASSERT_FALSE(golden.empty());
  if (golden.back() == '\n') golden.pop_back();

  // Alone, then four at once (continuous batching and chunked prefill on the device).
  for (int concurrent : {1, 4}) {
    std::vector<std::unique_ptr<Collected>> results;
    for (int i = 0; i < concurrent; ++i) {
      results.push_back(std::make_unique<Collected>());
      Collected* c = results.back().get();
      GenerateParams p;
      p.model = "stories";
      p.prompt = "";
      p.sampling.temperature = 0;
      p.max_tokens = 200;
      ASSERT_TRUE((*engine)
                      ->Generate(p,
                                 [c](const GenerateEvent& e) {
                                   {
                                     absl::MutexLock lock(&c->mu);
                                     if (e.type == GenerateEvent::Type::kText) c->text += e.text;
                                     if (e.type == GenerateEvent::Type::kFinish) c->finish = e;
                                   }
                                   if (e.type == GenerateEvent::Type::kFinish) c->done.Notify();
                                 })
                      .ok());
    }
    for (auto& r : results) {
      r->done.WaitForNotification();
      EXPECT_EQ(r->finish.completion_tokens, 200);
      EXPECT_EQ(r->text, golden) << "concurrent=" << concurrent;
    }
  }
}

TEST(CudaModelTest, BertEmbeddingsMatchTheCpuBackend) {
  SKIP_WITHOUT_GPU();
  auto vocab = GgufFile::Open("engine/tokenizer/testdata/ggml-vocab-bert-bge.gguf");
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  auto gpu = cuda::CreateCudaBackend({});
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  cpu::CpuBackendOptions co;
  co.num_threads = 2;
  auto cpu = cpu::CreateCpuBackend(co);
  ASSERT_TRUE(cpu.ok()) << cpu.status();

  for (DType dtype : {DType::kF32, DType::kF16}) {
    for (int pooling : {1, 2}) {
      testing::BertTestModelOptions o;
      o.dtype = dtype;
      o.pooling_type = pooling;
      o.dim = 128;
      o.num_layers = 3;
      o.num_heads = 4;
      o.ffn_dim = 512;
      o.max_positions = 128;
      auto bytes = testing::MakeBertGguf(**vocab, o);
      ASSERT_TRUE(bytes.ok()) << bytes.status();
      auto file = GgufFile::FromBuffer(std::move(*bytes));
      ASSERT_TRUE(file.ok()) << file.status();
      auto bg = BertModel::FromGguf(**file, gpu->get());
      auto bc = BertModel::FromGguf(**file, cpu->get());
      ASSERT_TRUE(bg.ok()) << bg.status();
      ASSERT_TRUE(bc.ok()) << bc.status();

      std::mt19937 rng(11);
      std::uniform_int_distribution<int32_t> tok(1000, 20000);
      std::vector<std::vector<int32_t>> seqs;
      for (int len : {2, 9, 40, 128, 17}) {
        std::vector<int32_t> s = {101};
        for (int i = 1; i + 1 < len; ++i) s.push_back(tok(rng));
        s.push_back(102);
        seqs.push_back(s);
      }
      auto eg = (*bg)->Embed(seqs);
      auto ec = (*bc)->Embed(seqs);
      ASSERT_TRUE(eg.ok()) << eg.status();
      ASSERT_TRUE(ec.ok()) << ec.status();
      ASSERT_EQ(eg->size(), ec->size());
      for (size_t s = 0; s < seqs.size(); ++s) {
        const auto& g = (*eg)[s];
        const auto& c = (*ec)[s];
        ASSERT_EQ(g.size(), c.size());
        double dot = 0, ng = 0, nc = 0, max_c = 0, max_diff = 0;
        for (size_t i = 0; i < g.size(); ++i) {
          ASSERT_FALSE(std::isnan(g[i])) << "element " << i;
          dot += double{g[i]} * c[i];
          ng += double{g[i]} * g[i];
          nc += double{c[i]} * c[i];
          max_c = std::max(max_c, std::fabs(double{c[i]}));
          max_diff = std::max(max_diff, std::fabs(double{g[i]} - c[i]));
        }
        const std::string what = absl::StrCat(std::string(DTypeName(dtype)), " pooling=", pooling,
                                              " sequence ", s, " (", seqs[s].size(), " tokens)");
        EXPECT_LE(max_diff, 1e-3 * max_c) << what;
        EXPECT_GE(dot / std::sqrt(ng * nc), 0.99999) << what;
      }
    }
  }
}

// A small Llama with 8 query heads over 2 kv heads, an FFN twice the model width, context 512.
LlamaConfig SmallLlama(int vocab, int layers, int head_dim) {
  LlamaConfig c;
  c.vocab_size = vocab;
  c.num_layers = layers;
  c.num_heads = 8;
  c.num_kv_heads = 2;
  c.head_dim = head_dim;
  c.dim = 8 * head_dim;
  c.ffn_dim = 2 * c.dim;
  c.context_length = 512;
  c.rope.rotary_dim = head_dim;
  return c;
}

// Random BF16 weights (normal, standard deviation `std`) with F32 norms of 1 for
// LlamaModel::FromWeights; the host copies live in `store`, shared by every backend loading them
// (so two models on two backends get the same weights), and outlive the models (the CPU backend
// aliases host data instead of copying it).
struct WeightStore {
  std::map<std::pair<int, int>, std::vector<uint16_t>> bf16;
  std::map<std::pair<int, int>, std::vector<float>> f32;
};
LlamaModel::TensorSource RandomBf16Source(Backend& b, WeightStore& store, std::mt19937& rng,
                                          float std) {
  return [&b, &store, &rng, std](LlamaTensor t, int l, int64_t rows,
                                 int64_t cols) -> absl::StatusOr<std::unique_ptr<Weight>> {
    const std::pair<int, int> key{static_cast<int>(t), l};
    if (rows == 1) {
      std::vector<float>& ones = store.f32[key];
      ones.assign(cols, 1.0f);
      return b.LoadWeight({DType::kF32, 1, cols, ones.data()});
    }
    std::vector<uint16_t>& v = store.bf16[key];
    if (v.empty()) {
      std::normal_distribution<float> normal(0.0f, std);
      v.resize(rows * cols);
      for (auto& x : v) x = F32ToBF16(normal(rng));
    }
    return b.LoadWeight({DType::kBF16, rows, cols, v.data()});
  };
}

// Counts the elements of `v` that are NaN or infinite.
int64_t NonFinite(const float* v, size_t n) {
  return std::count_if(v, v + n, [](float x) { return !std::isfinite(x); });
}

// Forward passes over sequences with fixed block tables (block size 16), built as the scheduler
// builds them: the tokens added since the last pass, each sequence's table cut to the blocks its
// positions reach, the logits of each sequence's last new token in the order of Add.
class Passes {
 public:
  explicit Passes(std::vector<std::vector<int32_t>> tables)
      : tables_(std::move(tables)), len_(tables_.size(), 0) {}

  void Add(int s, absl::Span<const int32_t> tokens) {
    const int32_t seq = static_cast<int32_t>(block_tables_.size());
    for (int32_t t : tokens) {
      const int p = len_[s]++;
      tokens_.push_back(t);
      seq_.push_back(seq);
      pos_.push_back(p);
      slots_.push_back(tables_[s][p / 16] * 16 + p % 16);
    }
    last_.push_back(static_cast<int32_t>(tokens_.size()) - 1);
    block_tables_.push_back(absl::MakeConstSpan(tables_[s].data(), (len_[s] - 1) / 16 + 1));
  }

  absl::Status Run(LlamaModel& m, KvCache& cache, std::vector<float>* logits) {
    ForwardBatch batch;
    batch.tokens = tokens_;
    batch.token_seq = seq_;
    batch.token_pos = pos_;
    batch.slots = slots_;
    batch.block_tables = block_tables_;
    batch.logits_for = last_;
    const absl::Status st = m.Forward(batch, cache, logits);
    tokens_.clear();
    seq_.clear();
    pos_.clear();
    slots_.clear();
    last_.clear();
    block_tables_.clear();
    return st;
  }

 private:
  std::vector<std::vector<int32_t>> tables_;
  std::vector<int> len_;
  std::vector<int32_t> tokens_, seq_, pos_, slots_, last_;
  std::vector<absl::Span<const int32_t>> block_tables_;
};

int32_t Argmax(const std::vector<float>& logits, size_t row, int vocab) {
  const float* r = logits.data() + row * vocab;
  return static_cast<int32_t>(std::max_element(r, r + vocab) - r);
}

// The logits of every pass of a fixed decode run on `model` (with a fresh cache): prefill of three
// prompts, then 30 decode steps whose batch shrinks from three sequences to two and grows back (new
// step shapes: captured or updated graphs), with block tables growing across block boundaries;
// each step feeds back the greedy choices. Empty (after a test failure) when the cache fails.
std::vector<std::vector<float>> DecodeRun(LlamaModel& model, const LlamaConfig& c) {
  std::vector<std::vector<float>> all;
  auto cache = model.NewCache(64, 16);
  if (!cache.ok()) {
    ADD_FAILURE() << cache.status();
    return all;
  }
  Passes passes({{0, 1, 2, 3, 4}, {10, 11, 12, 13, 14}, {20, 21, 22, 23, 24}});
  std::vector<int32_t> next(3);
  for (int s = 0; s < 3; ++s) {  // prefill: prompts of 9, 14 and 5 tokens in one pass
    std::vector<int32_t> prompt(s == 0 ? 9 : s == 1 ? 14 : 5);
    for (size_t p = 0; p < prompt.size(); ++p) prompt[p] = (s * 37 + p * 11) % c.vocab_size;
    passes.Add(s, prompt);
    next[s] = (s * 5 + 3) % c.vocab_size;
  }
  std::vector<float> logits;
  EXPECT_TRUE(passes.Run(model, **cache, &logits).ok());
  all.push_back(logits);
  for (int step = 0; step < 30; ++step) {
    // Sequence 1 sits out steps 10..19.
    const std::vector<int> active =
        step < 10 || step >= 20 ? std::vector<int>{0, 1, 2} : std::vector<int>{0, 2};
    for (int s : active) passes.Add(s, {next[s]});
    EXPECT_TRUE(passes.Run(model, **cache, &logits).ok());
    for (size_t i = 0; i < active.size(); ++i) next[active[i]] = Argmax(logits, i, c.vocab_size);
    all.push_back(logits);
  }
  return all;
}

// Two DecodeRun results are identical, bit for bit, and finite.
void ExpectSameLogits(const std::vector<std::vector<float>>& want,
                      const std::vector<std::vector<float>>& got, const std::string& what) {
  ASSERT_EQ(want.size(), got.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(want[i].size(), got[i].size()) << what;
    ASSERT_EQ(NonFinite(want[i].data(), want[i].size()), 0) << "forward pass " << i;
    EXPECT_EQ(0, std::memcmp(want[i].data(), got[i].data(), want[i].size() * sizeof(float)))
        << "forward pass " << i << " differs " << what;
  }
}

// LlamaModel::Forward on the device with CUDA graphs (the default) against the same steps run op
// by op (DecodeRun): the logits must be identical, bit for bit (the same kernels run).
TEST(CudaModelTest, DecodeWithCudaGraphsEqualsOpByOp) {
  SKIP_WITHOUT_GPU();
  auto gpu = cuda::CreateCudaBackend({});
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  Backend& b = **gpu;
  const LlamaConfig c = SmallLlama(/*vocab=*/320, /*layers=*/3, /*head_dim=*/32);
  std::mt19937 rng(5);
  WeightStore store;
  auto model = LlamaModel::FromWeights(c, &b, RandomBf16Source(b, store, rng, 0.08f));
  ASSERT_TRUE(model.ok()) << model.status();
  cuda::SetCudaGraphs(b, false);
  const std::vector<std::vector<float>> eager = DecodeRun(**model, c);
  cuda::SetCudaGraphs(b, true);
  const std::vector<std::vector<float>> graphed = DecodeRun(**model, c);
  ExpectSameLogits(eager, graphed, "with CUDA graphs");
  const cuda::CudaGraphStats stats = cuda::GetCudaGraphStats(b);
  EXPECT_TRUE(stats.enabled) << stats.disabled_reason;
  EXPECT_GE(stats.graphs_captured, 1);
  EXPECT_GE(stats.steps_replayed, 20);
}

// The decode paths that are off by default until measured on a GPU change how kernels are
// launched or grouped, never what they compute: DecodeRun on fresh backends with programmatic
// dependent launch (cuda::SetCudaPdl; op by op and with graphs), with RopeWriteKv fused
// (cuda::SetCudaFusedRopeKv), with the SwiGLU matvec fused, the pipelined matvec and the split
// merge in the attention kernel (SetCudaFusedSwiGlu, SetCudaMatVecAsync, SetCudaFusedSplitMerge),
// and with all of them gives the logits of a run with none, bit for bit.
TEST(CudaModelTest, DecodeWithExperimentalPathsEqualsWithout) {
  SKIP_WITHOUT_GPU();
  const LlamaConfig c = SmallLlama(/*vocab=*/320, /*layers=*/3, /*head_dim=*/32);
  std::mt19937 rng(7);
  WeightStore store;
  struct Paths {
    bool pdl = false, rope_kv = false, kernels = false, graphs = true;
  };
  auto run = [&](Paths p) {
    cuda::SetCudaPdl(p.pdl);
    std::vector<std::vector<float>> out;
    auto gpu = cuda::CreateCudaBackend({});
    if (!gpu.ok()) {
      ADD_FAILURE() << gpu.status();
      return out;
    }
    cuda::SetCudaGraphs(**gpu, p.graphs);
    cuda::SetCudaFusedRopeKv(**gpu, p.rope_kv);
    cuda::SetCudaFusedSwiGlu(**gpu, p.kernels);
    cuda::SetCudaMatVecAsync(**gpu, p.kernels);
    cuda::SetCudaFusedSplitMerge(**gpu, p.kernels);
    auto model =
        LlamaModel::FromWeights(c, gpu->get(), RandomBf16Source(**gpu, store, rng, 0.08f));
    if (!model.ok()) {
      ADD_FAILURE() << model.status();
      return out;
    }
    out = DecodeRun(**model, c);
    const std::string what = absl::StrCat("pdl ", p.pdl, " rope/kv ", p.rope_kv, " kernels ",
                                          p.kernels);
    if (p.graphs) {
      const cuda::CudaGraphStats stats = cuda::GetCudaGraphStats(**gpu);
      EXPECT_TRUE(stats.enabled) << what << ": " << stats.disabled_reason;
      EXPECT_GE(stats.steps_replayed, 20) << what;
    }
    return out;
  };
  const std::vector<std::vector<float>> plain = run({});
  ExpectSameLogits(plain, run({.pdl = true, .graphs = false}), "with PDL, op by op");
  ExpectSameLogits(plain, run({.pdl = true}), "with PDL and CUDA graphs");
  ExpectSameLogits(plain, run({.rope_kv = true}), "with RopeWriteKv fused");
  ExpectSameLogits(plain, run({.kernels = true, .graphs = false}),
                   "with the fused SwiGLU, pipelined matvec and in-kernel split merge, op by op");
  ExpectSameLogits(plain, run({.kernels = true}),
                   "with the fused SwiGLU, pipelined matvec and in-kernel split merge");
  ExpectSameLogits(plain, run({.pdl = true, .rope_kv = true, .kernels = true}),
                   "with every experimental path");
  cuda::SetCudaPdl(false);
}

// A random Llama (BF16 weights, head size 64, 4 query heads per kv head) on the GPU against the
// same weights on the CPU backend: a 100-token prefill (attention through cuBLAS) next to a short
// prompt, then decode steps (grouped decode attention, fused projections, CUDA graphs). Logits
// within 3% of the largest CPU logit and cosine >= 0.999 per row (the GEMMs round activations to
// BF16 on the GPU).
TEST(CudaModelTest, RandomLlamaLogitsMatchTheCpuBackend) {
  SKIP_WITHOUT_GPU();
  auto gpu = cuda::CreateCudaBackend({});
  ASSERT_TRUE(gpu.ok()) << gpu.status();
  cpu::CpuBackendOptions co;
  co.num_threads = 2;
  auto cpu = cpu::CreateCpuBackend(co);
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  const LlamaConfig c = SmallLlama(/*vocab=*/1000, /*layers=*/2, /*head_dim=*/64);
  std::mt19937 rng(6);
  WeightStore store;
  auto mg = LlamaModel::FromWeights(c, gpu->get(), RandomBf16Source(**gpu, store, rng, 0.06f));
  auto mc = LlamaModel::FromWeights(c, cpu->get(), RandomBf16Source(**cpu, store, rng, 0.06f));
  ASSERT_TRUE(mg.ok() && mc.ok());
  auto cg = (*mg)->NewCache(32, 16);
  auto cc = (*mc)->NewCache(32, 16);
  ASSERT_TRUE(cg.ok() && cc.ok());
  const std::vector<std::vector<int32_t>> tables = {{0, 1, 2, 3, 4, 5, 6, 7}, {8, 9}};
  Passes pg(tables), pc(tables);
  auto compare = [&](const std::vector<float>& g, const std::vector<float>& want, size_t rows,
                     const std::string& what) {
    ASSERT_EQ(g.size(), want.size());
    for (size_t r = 0; r < rows; ++r) {
      const float* a = g.data() + r * c.vocab_size;
      const float* b = want.data() + r * c.vocab_size;
      ASSERT_EQ(NonFinite(b, c.vocab_size), 0) << what << " row " << r << " on the CPU";
      ASSERT_EQ(NonFinite(a, c.vocab_size), 0) << what << " row " << r << " on the GPU";
      double max_abs = 0, dot = 0, na = 0, nb = 0, worst = 0;
      for (int i = 0; i < c.vocab_size; ++i) {
        max_abs = std::max(max_abs, std::fabs(static_cast<double>(b[i])));
        worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - b[i]));
        dot += static_cast<double>(a[i]) * b[i];
        na += static_cast<double>(a[i]) * a[i];
        nb += static_cast<double>(b[i]) * b[i];
      }
      EXPECT_LE(worst, 0.03 * max_abs) << what << " row " << r;
      EXPECT_GE(dot / std::sqrt(na * nb), 0.999) << what << " row " << r;
    }
  };
  std::vector<int32_t> next(2);
  for (int step = -1; step < 6; ++step) {  // -1: the prompts (100 and 7 tokens)
    for (int s = 0; s < 2; ++s) {
      std::vector<int32_t> tokens = {next[s]};
      if (step < 0) {
        tokens.resize(s == 0 ? 100 : 7);
        for (size_t p = 0; p < tokens.size(); ++p) tokens[p] = (s * 389 + p * 97) % c.vocab_size;
      }
      pg.Add(s, tokens);
      pc.Add(s, tokens);
    }
    std::vector<float> lg, lc;
    ASSERT_TRUE(pg.Run(**mg, **cg, &lg).ok());
    ASSERT_TRUE(pc.Run(**mc, **cc, &lc).ok());
    compare(lg, lc, 2, step < 0 ? std::string("prefill") : absl::StrCat("decode step ", step));
    for (int s = 0; s < 2; ++s) next[s] = Argmax(lc, s, c.vocab_size);  // the CPU's greedy choice
  }
}

}  // namespace
}  // namespace tessera::engine
