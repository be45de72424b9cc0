// End-to-end tests of the engine on real weights: stories260K (a 260K-parameter Llama from
// llama2.c's tinyllamas, GGUF) must produce, greedily from BOS, exactly the text two independent
// engines (llama2.c and llama.cpp) produce. Run through the scheduler, alone and batched with
// other requests, so continuous batching and chunked prefill are checked against the reference.
#include "engine/engine.h"

#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::engine {
namespace {

using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The reference text as llama2.c's run.c prints it: the 200 tokens, then a newline of its own.
std::string Golden() {
  std::string g = ReadFile("engine/testdata/stories260K.greedy200.txt");
  EXPECT_FALSE(g.empty());
  if (!g.empty() && g.back() == '\n') g.pop_back();
  return g;
}

constexpr char kModel[] = "engine/model/testdata/stories260K.gguf";

std::unique_ptr<Engine> MakeEngine(int max_running = 8) {
  EngineOptions o;
  o.device = "cpu";
  o.num_threads = 2;
  ModelConfig m;
  m.id = "stories";
  m.path = kModel;
  m.max_running = max_running;
  m.max_queued = 4;
  m.kv_cache_mb = 16;
  o.models.push_back(m);
  auto e = Engine::Create(o);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? std::move(*e) : nullptr;
}

struct Collected {
  absl::Mutex mu;
  std::string text;
  std::vector<int32_t> ids;
  GenerateEvent finish;
  absl::Notification done;
};

std::function<void(const GenerateEvent&)> Collect(Collected* c) {
  return [c](const GenerateEvent& e) {
    {
      absl::MutexLock lock(&c->mu);
      if (e.type == GenerateEvent::Type::kText) {
        c->text += e.text;
        c->ids.insert(c->ids.end(), e.token_ids.begin(), e.token_ids.end());
      } else if (e.type == GenerateEvent::Type::kFinish) {
        c->finish = e;
      }
    }
    // Last: the waiter may destroy `c` as soon as this returns.
    if (e.type == GenerateEvent::Type::kFinish) c->done.Notify();
  };
}

GenerateParams Greedy(std::string prompt, int max_tokens) {
  GenerateParams p;
  p.model = "stories";
  p.prompt = std::move(prompt);
  p.sampling.temperature = 0;
  p.max_tokens = max_tokens;
  return p;
}

TEST(EngineTest, Stories260KGreedyFromBosMatchesTheReferenceByteForByte) {
  auto engine = MakeEngine();
  ASSERT_NE(engine, nullptr);
  Collected c;
  ASSERT_TRUE(engine->Generate(Greedy("", 200), Collect(&c)).ok());
  c.done.WaitForNotification();
  EXPECT_EQ(c.finish.reason, FinishReason::kLength);
  EXPECT_EQ(c.finish.completion_tokens, 200);
  EXPECT_EQ(c.finish.prompt_tokens, 1);
  EXPECT_EQ(c.ids.size(), 200u);
  EXPECT_EQ(c.text, Golden());
}

TEST(EngineTest, ConcurrentRequestsInOneBatchGiveTheSameTextAsAlone) {
  auto engine = MakeEngine();
  ASSERT_NE(engine, nullptr);
  const std::string golden = Golden();
  // Different prompt lengths join the batch at different steps (chunked prefill beside decode).
  std::vector<std::string> prompts = {"", "Once upon a time", "", "The dog"};
  std::vector<std::unique_ptr<Collected>> results;
  for (const std::string& p : prompts) {
    results.push_back(std::make_unique<Collected>());
    ASSERT_TRUE(engine->Generate(Greedy(p, 200), Collect(results.back().get())).ok());
  }
  for (auto& r : results) r->done.WaitForNotification();
  EXPECT_EQ(results[0]->text, golden);
  EXPECT_EQ(results[2]->text, golden);
  // The same prompt alone gives the same continuation as inside the batch.
  for (int i : {1, 3}) {
    Collected alone;
    ASSERT_TRUE(engine->Generate(Greedy(prompts[i], 200), Collect(&alone)).ok());
    alone.done.WaitForNotification();
    EXPECT_EQ(results[i]->text, alone.text) << prompts[i];
    EXPECT_FALSE(alone.text.empty());
  }
}

TEST(EngineTest, TokenizerMatchesLlamaCpp) {
  auto engine = MakeEngine();
  ASSERT_NE(engine, nullptr);
  auto t = engine->Tokenize("stories", "Once upon a time", false);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->ids, (std::vector<int32_t>{403, 407, 261, 378}));
}

TEST(EngineTest, StopStringEndsGenerationAndIsNotReturned) {
  auto engine = MakeEngine();
  ASSERT_NE(engine, nullptr);
  const std::string golden = Golden();
  GenerateParams p = Greedy("", 200);
  p.stop = {"Lily"};
  Collected c;
  ASSERT_TRUE(engine->Generate(p, Collect(&c)).ok());
  c.done.WaitForNotification();
  EXPECT_EQ(c.finish.reason, FinishReason::kStopSequence);
  EXPECT_EQ(c.finish.stop_sequence, "Lily");
  EXPECT_EQ(c.text, golden.substr(0, golden.find("Lily")));
}

TEST(EngineTest, SeededSamplingIsReproducible) {
  auto engine = MakeEngine();
  ASSERT_NE(engine, nullptr);
  auto run = [&](uint64_t seed) {
    GenerateParams p = Greedy("Once upon a time", 60);
    p.sampling.temperature = 0.9f;
    p.sampling.top_p = 0.95f;
    p.sampling.seed = seed;
    p.seed_set = true;
    Collected c;
    EXPECT_TRUE(engine->Generate(p, Collect(&c)).ok());
    c.done.WaitForNotification();
    return c.text;
  };
  EXPECT_EQ(run(5), run(5));
  EXPECT_NE(run(5), run(6));
}

TEST(EngineTest, BadRequestsGetClearErrors) {
  auto engine = MakeEngine();
  ASSERT_NE(engine, nullptr);
  Collected c;
  GenerateParams unknown = Greedy("x", 5);
  unknown.model = "nope";
  auto s = engine->Generate(unknown, Collect(&c));
  EXPECT_EQ(s.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.status().message(), HasSubstr("stories"));

  std::string long_prompt;
  for (int i = 0; i < 3000; ++i) long_prompt += "Once upon a time ";
  s = engine->Generate(Greedy(long_prompt, 5), Collect(&c));
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("context"));

  GenerateParams negative = Greedy("x", -5);
  EXPECT_EQ(engine->Generate(negative, Collect(&c)).status().code(),
            absl::StatusCode::kInvalidArgument);

  GenerateParams bad = Greedy("x", 5);
  bad.sampling.top_p = 2;
  EXPECT_EQ(engine->Generate(bad, Collect(&c)).status().code(), absl::StatusCode::kInvalidArgument);

  GenerateParams chat;
  chat.model = "stories";
  chat.messages.push_back({ChatRole::kUser, "hi"});
  EXPECT_EQ(engine->Generate(chat, Collect(&c)).status().code(),
            absl::StatusCode::kFailedPrecondition);

  EmbedParams embed;
  embed.model = "stories";
  embed.inputs = {"x"};
  EXPECT_EQ(engine->Embed(embed).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(EngineTest, LongPromptIsTruncatedWhenAsked) {
  auto engine = MakeEngine();
  ASSERT_NE(engine, nullptr);
  std::string long_prompt;
  for (int i = 0; i < 3000; ++i) long_prompt += "Once upon a time ";
  GenerateParams p = Greedy(long_prompt, 5);
  p.truncate_prompt = true;
  Collected c;
  ASSERT_TRUE(engine->Generate(p, Collect(&c)).ok());
  c.done.WaitForNotification();
  EXPECT_EQ(c.finish.reason, FinishReason::kLength);
  EXPECT_EQ(c.finish.completion_tokens, 5);
}

TEST(EngineTest, CancelledRequestFinishesAndFreesItsCache) {
  auto engine = MakeEngine(/*max_running=*/1);
  ASSERT_NE(engine, nullptr);
  Collected c;
  auto h = engine->Generate(Greedy("", 0), Collect(&c));  // up to the whole context
  ASSERT_TRUE(h.ok());
  (*h)->Cancel();
  c.done.WaitForNotification();
  EXPECT_EQ(c.finish.reason, FinishReason::kCancelled);
  // The single slot is free again: the next request runs to completion.
  Collected next;
  ASSERT_TRUE(engine->Generate(Greedy("", 10), Collect(&next)).ok());
  next.done.WaitForNotification();
  EXPECT_EQ(next.finish.completion_tokens, 10);
}

TEST(EngineTest, FloodOfRequestsIsBoundedWithResourceExhausted) {
  auto engine = MakeEngine(/*max_running=*/1);  // queue of 4
  ASSERT_NE(engine, nullptr);
  std::vector<std::unique_ptr<Collected>> accepted;
  int rejected = 0;
  for (int i = 0; i < 40; ++i) {
    auto c = std::make_unique<Collected>();
    auto h = engine->Generate(Greedy("", 100), Collect(c.get()));
    if (h.ok()) {
      accepted.push_back(std::move(c));
    } else {
      EXPECT_EQ(h.status().code(), absl::StatusCode::kResourceExhausted);
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 0);
  for (auto& c : accepted) c->done.WaitForNotification();
}

}  // namespace
}  // namespace tessera::engine
