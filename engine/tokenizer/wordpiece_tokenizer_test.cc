#include "engine/tokenizer/wordpiece_tokenizer.h"

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

std::unique_ptr<Tokenizer> BgeTokenizer() {
  auto file = GgufFile::Open(TestDataPath("ggml-vocab-bert-bge.gguf"));
  EXPECT_TRUE(file.ok()) << file.status();
  if (!file.ok()) return nullptr;
  auto vocab = VocabFromGguf(**file);
  EXPECT_TRUE(vocab.ok()) << vocab.status();
  if (!vocab.ok()) return nullptr;
  EXPECT_EQ(vocab->kind, Vocab::Kind::kWordPiece);
  EXPECT_EQ(vocab->cls, 101);
  EXPECT_EQ(vocab->sep, 102);
  auto tokenizer = CreateTokenizer(*vocab);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return tokenizer.ok() ? std::move(*tokenizer) : nullptr;
}

std::unique_ptr<Tokenizer> VocabTxtTokenizer() {
  auto tokenizer = WordPieceTokenizer::FromVocabFile(TestDataPath("bert-uncased-vocab.txt"));
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return tokenizer.ok() ? std::move(*tokenizer) : nullptr;
}

TEST(WordPieceTokenizerTest, BasicTokenizer) {
  EXPECT_THAT(WordPieceTokenizer::BasicTokenize(" Héllo, WORLD!\tnaïve\x01 日本"),
              ElementsAre("hello", ",", "world", "!", "naive", "日", "本"));
  EXPECT_TRUE(WordPieceTokenizer::BasicTokenize(" \n\t ").empty());
}

TEST(WordPieceTokenizerTest, MatchesLlamaCppBgeVectors) {
  auto gguf = BgeTokenizer();
  auto txt = VocabTxtTokenizer();
  ASSERT_NE(gguf, nullptr);
  ASSERT_NE(txt, nullptr);
  const auto cases = ReadVectors("ggml-vocab-bert-bge.gguf");
  ASSERT_EQ(cases.size(), 46u);
  for (const auto& c : cases) {
    std::vector<int32_t> ids = gguf->Encode(c.text, /*add_special=*/false);
    EXPECT_EQ(ids, c.ids) << "text: [" << c.text << "]";
    // Both spellings of the vocabulary give the same ids.
    EXPECT_EQ(txt->Encode(c.text, false), ids) << "text: [" << c.text << "]";
  }
}

TEST(WordPieceTokenizerTest, SpecialTokensAndDecode) {
  auto tokenizer = VocabTxtTokenizer();
  ASSERT_NE(tokenizer, nullptr);
  EXPECT_EQ(tokenizer->kind(), "wordpiece");
  EXPECT_EQ(tokenizer->cls_id(), 101);
  EXPECT_EQ(tokenizer->sep_id(), 102);
  EXPECT_EQ(tokenizer->unk_id(), 100);
  EXPECT_EQ(tokenizer->pad_id(), 0);
  const auto ids = tokenizer->Encode("Hello unaffable world", true);
  ASSERT_GE(ids.size(), 4u);
  EXPECT_EQ(ids.front(), 101);
  EXPECT_EQ(ids.back(), 102);
  EXPECT_EQ(tokenizer->Decode(ids), "hello unaffable world");
  EXPECT_EQ(tokenizer->Decode(ids, true), "[CLS] hello unaffable world [SEP]");
  std::string streamed;
  int32_t prev = -1;
  for (int32_t id : ids) {
    streamed += tokenizer->TokenText(prev, id);
    prev = id;
  }
  EXPECT_EQ(streamed, tokenizer->Decode(ids));
  // "[SEP]" in text is text unless parse_special.
  EXPECT_THAT(tokenizer->Encode("a [SEP] b", false, true), ElementsAre(1037, 102, 1038));
  EXPECT_THAT(tokenizer->Encode("a [SEP] b", false, false), ::testing::Not(::testing::Contains(102)));
  // A word over 100 characters is [UNK].
  EXPECT_THAT(tokenizer->Encode(std::string(101, 'a'), false), ElementsAre(100));
  EXPECT_THAT(tokenizer->Encode("\xF0\x9F\xA6\x99", false), ElementsAre(100));  // not in vocab
}

TEST(WordPieceTokenizerTest, Errors) {
  EXPECT_EQ(WordPieceTokenizer::FromVocabFile("/nonexistent/vocab.txt").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(WordPieceTokenizer::FromVocabText("").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WordPieceTokenizer::FromVocabText("a\nb\n##c").status().code(),
            absl::StatusCode::kInvalidArgument);  // no [UNK]
  auto tiny = WordPieceTokenizer::FromVocabText("[UNK]\n[CLS]\n[SEP]\nun\n##aff\n##able");
  ASSERT_TRUE(tiny.ok()) << tiny.status();
  EXPECT_THAT((*tiny)->Encode("unaffable", true), ElementsAre(1, 3, 4, 5, 2));
  EXPECT_THAT((*tiny)->Encode("unaffablex un", false), ElementsAre(0, 3));
  EXPECT_EQ((*tiny)->Decode({3, 4, 5, 3, 99}), "unaffable un");
  EXPECT_THAT((*tiny)->Encode(std::string("un\xFF", 3), false), ElementsAre(3));  // U+FFFD dropped
}

TEST(WordPieceTokenizerTest, LargeInput) {
  auto tokenizer = VocabTxtTokenizer();
  ASSERT_NE(tokenizer, nullptr);
  std::string text;
  while (text.size() < (1u << 20)) text += "The quick brown fox jumps over the lazy dog. ";
  const auto ids = tokenizer->Encode(text, true);
  EXPECT_GT(ids.size(), 200000u);
}

}  // namespace
}  // namespace tessera::engine
