#include "engine/tokenizer/llama_spm_tokenizer.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/model/gguf.h"
#include "engine/tokenizer/gguf_vocab.h"
#include "engine/tokenizer/test_util.h"
#include "engine/tokenizer/vocab.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::engine {
namespace {

using ::testing::ElementsAre;
using testing::ReadVectors;
using testing::TestDataPath;

Vocab LlamaVocab() {
  auto file = GgufFile::Open(TestDataPath("ggml-vocab-llama-spm.gguf"));
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return Vocab();
  auto vocab = VocabFromGguf(**file);
  EXPECT_TRUE(vocab.ok()) << vocab.status();
  return vocab.ok() ? *vocab : Vocab();
}

std::unique_ptr<Tokenizer> LlamaTokenizer() {
  auto tokenizer = CreateTokenizer(LlamaVocab());
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return tokenizer.ok() ? std::move(*tokenizer) : nullptr;
}

TEST(GgufVocabTest, ReadsLlamaVocabulary) {
  const Vocab vocab = LlamaVocab();
  EXPECT_EQ(vocab.kind, Vocab::Kind::kLlamaSpm);
  EXPECT_EQ(vocab.tokens.size(), 32000u);
  EXPECT_EQ(vocab.scores.size(), 32000u);
  EXPECT_EQ(vocab.token_types.size(), 32000u);
  EXPECT_EQ(vocab.bos, 1);
  EXPECT_EQ(vocab.eos, 2);
  EXPECT_EQ(vocab.unk, 0);
  EXPECT_TRUE(vocab.add_bos);
  EXPECT_FALSE(vocab.add_eos);
  EXPECT_TRUE(vocab.add_space_prefix);
  EXPECT_EQ(vocab.tokens[3], "<0x00>");
  EXPECT_EQ(vocab.token_types[3], kTokenByte);
}

TEST(LlamaSpmTokenizerTest, MatchesLlamaCppVectors) {
  auto tokenizer = LlamaTokenizer();
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->kind(), "llama-spm");
  const auto cases = ReadVectors("ggml-vocab-llama-spm.gguf");
  ASSERT_EQ(cases.size(), 46u);
  for (const auto& c : cases) {
    EXPECT_EQ(tokenizer->Encode(c.text, /*add_special=*/false), c.ids) << "text: [" << c.text << "]";
    EXPECT_EQ(tokenizer->Decode(c.ids), c.text) << "text: [" << c.text << "]";
    std::string streamed;
    int32_t prev = -1;
    for (int32_t id : c.ids) {
      streamed += tokenizer->TokenText(prev, id);
      prev = id;
    }
    EXPECT_EQ(streamed, c.text);
  }
}

TEST(LlamaSpmTokenizerTest, SpecialTokens) {
  auto tokenizer = LlamaTokenizer();
  ASSERT_NE(tokenizer, nullptr);
  const auto hello = tokenizer->Encode("Hello", false);
  auto with_bos = tokenizer->Encode("Hello", true);
  ASSERT_EQ(with_bos.size(), hello.size() + 1);
  EXPECT_EQ(with_bos[0], 1);
  // "</s>" is text unless parse_special.
  EXPECT_THAT(tokenizer->Encode("</s>", false, true), ElementsAre(2));
  const auto plain = tokenizer->Encode("</s>", false, false);
  EXPECT_GT(plain.size(), 1u);
  EXPECT_EQ(tokenizer->Decode(plain), "</s>");
  EXPECT_EQ(tokenizer->Decode({1, hello[0], 2}), "Hello");
  EXPECT_EQ(tokenizer->Decode({1, hello[0], 2}, true), "<s>Hello</s>");
}

TEST(LlamaSpmTokenizerTest, ByteFallbackAndStreaming) {
  auto tokenizer = LlamaTokenizer();
  ASSERT_NE(tokenizer, nullptr);
  const std::string text = "a 🦙 b\n\x01";
  const auto ids = tokenizer->Encode(text, true);
  int bytes = 0;
  for (int32_t id : ids) bytes += tokenizer->Piece(id).rfind("<0x", 0) == 0;
  EXPECT_GE(bytes, 4);
  EXPECT_EQ(tokenizer->Decode(ids), text);
  std::string streamed;
  int32_t prev = -1;
  for (int32_t id : ids) {
    const std::string piece = tokenizer->TokenText(prev, id);
    streamed += piece;
    prev = id;
  }
  EXPECT_EQ(streamed, text);
}

TEST(LlamaSpmTokenizerTest, InvalidUtf8AndOutOfRange) {
  auto tokenizer = LlamaTokenizer();
  ASSERT_NE(tokenizer, nullptr);
  const auto ids = tokenizer->Encode(std::string("x\xFFy", 3), false);
  EXPECT_EQ(tokenizer->Decode(ids), "x\xEF\xBF\xBDy");
  EXPECT_EQ(tokenizer->Decode({-1, 1 << 30}), "");
  EXPECT_EQ(tokenizer->TokenText(-1, 99999999), "");
}

// Quadratic merging would take minutes on this (1 MB of text and 256 KB without a space).
TEST(LlamaSpmTokenizerTest, LargeInputIsFast) {
  auto tokenizer = LlamaTokenizer();
  ASSERT_NE(tokenizer, nullptr);
  std::string text;
  const std::string sentence = "The quick brown fox jumps over the lazy dog, again and again. ";
  while (text.size() < (1u << 20)) text += sentence;
  const auto ids = tokenizer->Encode(text, false);
  EXPECT_GT(ids.size(), 100000u);
  EXPECT_EQ(tokenizer->Decode(ids), text);
  const std::string no_spaces(1u << 18, 'a');
  const auto a_ids = tokenizer->Encode(no_spaces, false);
  EXPECT_EQ(tokenizer->Decode(a_ids), no_spaces);
}

TEST(VocabTest, ValidationErrors) {
  Vocab vocab;
  EXPECT_EQ(CreateTokenizer(vocab).status().code(), absl::StatusCode::kInvalidArgument);
  vocab.tokens = {"<unk>", "a", "b", "ab"};
  vocab.scores = {0, 0, 0};
  EXPECT_EQ(CreateTokenizer(vocab).status().code(), absl::StatusCode::kInvalidArgument);
  vocab.scores = {0, -1, -1, -0.5};
  vocab.bos = 7;
  EXPECT_EQ(CreateTokenizer(vocab).status().code(), absl::StatusCode::kInvalidArgument);
  vocab.bos = -1;
  vocab.token_types = {2, 1, 1, 9};
  EXPECT_EQ(CreateTokenizer(vocab).status().code(), absl::StatusCode::kInvalidArgument);
  vocab.token_types = {2, 1, 1, 1};
  vocab.unk = 0;
  vocab.add_space_prefix = false;
  auto tokenizer = CreateTokenizer(vocab);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_THAT((*tokenizer)->Encode("abab", false), ElementsAre(3, 3));
  EXPECT_THAT((*tokenizer)->Encode("abc", false), ElementsAre(3, 0));  // no byte tokens: unk
  vocab.kind = Vocab::Kind::kBpe;
  EXPECT_EQ(CreateTokenizer(vocab).status().code(), absl::StatusCode::kUnimplemented);
}

TEST(LlamaSpmTokenizerTest, MergeByRank) {
  Vocab vocab;
  vocab.tokens = {"<unk>", "a", "b", "c", "ab", "bc", "abc"};
  vocab.token_types = {2, 1, 1, 1, 1, 1, 1};
  vocab.unk = 0;
  vocab.add_space_prefix = false;
  vocab.merges = {"b c", "a b", "a bc"};
  auto tokenizer = LlamaSpmTokenizer::Create(vocab, LlamaSpmTokenizer::MergeMode::kByRank);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->kind(), "bpe");
  EXPECT_THAT((*tokenizer)->Encode("abc", false), ElementsAre(6));   // b c, then a bc
  EXPECT_THAT((*tokenizer)->Encode("abab", false), ElementsAre(4, 4));
  vocab.merges = {"a b", "b c", "ab c"};
  tokenizer = LlamaSpmTokenizer::Create(vocab, LlamaSpmTokenizer::MergeMode::kByRank);
  ASSERT_TRUE(tokenizer.ok());
  EXPECT_THAT((*tokenizer)->Encode("abc", false), ElementsAre(6));
  vocab.merges = {"a b", "b c"};  // "ab c" missing: stays apart
  tokenizer = LlamaSpmTokenizer::Create(vocab, LlamaSpmTokenizer::MergeMode::kByRank);
  ASSERT_TRUE(tokenizer.ok());
  EXPECT_THAT((*tokenizer)->Encode("abc", false), ElementsAre(4, 3));
  vocab.merges = {"abc"};
  EXPECT_EQ(LlamaSpmTokenizer::Create(vocab, LlamaSpmTokenizer::MergeMode::kByRank).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tessera::engine
