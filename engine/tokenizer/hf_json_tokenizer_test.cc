#include "engine/tokenizer/hf_json_tokenizer.h"

#include <algorithm>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "engine/model/gguf.h"
#include "engine/tokenizer/gguf_vocab.h"
#include "engine/tokenizer/test_util.h"
#include "engine/tokenizer/vocab.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace tessera::engine {
namespace {

using ::testing::ElementsAre;
using testing::ReadVectors;
using testing::TestDataPath;

constexpr char kSmallBpe[] = R"({
  "added_tokens": [
    {"id": 0, "content": "<unk>", "special": true},
    {"id": 1, "content": "<s>", "special": true},
    {"id": 2, "content": "</s>", "special": true}
  ],
  "normalizer": {"type": "Sequence", "normalizers": [
    {"type": "Prepend", "prepend": "\u2581"},
    {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
  "pre_tokenizer": null,
  "post_processor": {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>"}}]},
  "decoder": {"type": "Sequence", "decoders": [{"type": "ByteFallback"}]},
  "model": {"type": "BPE", "unk_token": "<unk>", "byte_fallback": true,
    "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0x0A>": 3, "\u2581": 4, "h": 5, "i": 6,
              "\u2581h": 7, "\u2581hi": 8, "hi": 9},
    "merges": ["\u2581 h", ["\u2581h", "i"], "h i"]}
})";

TEST(HfJsonTokenizerTest, SmallBpe) {
  auto tokenizer = TokenizerFromHfJsonString(kSmallBpe);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const Tokenizer& t = **tokenizer;
  EXPECT_EQ(t.kind(), "bpe");
  EXPECT_THAT(t.Encode("hi hi", true), ElementsAre(1, 8, 8));
  EXPECT_THAT(t.Encode("hi\nhi", false), ElementsAre(8, 3, 9));
  EXPECT_THAT(t.Encode("hx", false), ElementsAre(7, 0));  // no byte token for 'x': unk
  EXPECT_THAT(t.Encode("</s>hi", false, true), ElementsAre(2, 8));
  EXPECT_EQ(t.Decode({1, 8, 3, 9, 2}), "hi\nhi");
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_TRUE(t.IsControl(2));
}

TEST(HfJsonTokenizerTest, WordPiece) {
  const char* json = R"({
    "added_tokens": [{"id": 0, "content": "[PAD]", "special": true},
                     {"id": 1, "content": "[UNK]", "special": true},
                     {"id": 2, "content": "[CLS]", "special": true},
                     {"id": 3, "content": "[SEP]", "special": true}],
    "normalizer": {"type": "BertNormalizer", "lowercase": true},
    "pre_tokenizer": {"type": "BertPreTokenizer"},
    "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
              "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "un": 4, "##aff": 5,
                        "##able": 6, ",": 7}}})";
  auto tokenizer = TokenizerFromHfJsonString(json);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  EXPECT_EQ((*tokenizer)->kind(), "wordpiece");
  EXPECT_THAT((*tokenizer)->Encode("UNAFFABLE, x", true), ElementsAre(2, 4, 5, 6, 7, 1, 3));
}

TEST(HfJsonTokenizerTest, Errors) {
  EXPECT_EQ(TokenizerFromHfJsonString("{not json").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TokenizerFromHfJsonString("[1,2]").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TokenizerFromHfJsonString(R"({"model": {"type": "BPE", "vocab": {"a": 5}, "merges": []}})")
                .status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TokenizerFromHfJsonString(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [3]}})")
                .status().code(),
            absl::StatusCode::kInvalidArgument);
  const auto byte_level = TokenizerFromHfJsonString(
      R"({"pre_tokenizer": {"type": "ByteLevel"}, "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})");
  EXPECT_EQ(byte_level.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(byte_level.status().message()), ::testing::HasSubstr("ByteLevel"));
  EXPECT_EQ(TokenizerFromHfJsonString(R"({"model": {"type": "Unigram", "vocab": {}}})").status().code(),
            absl::StatusCode::kUnimplemented);
  EXPECT_EQ(TokenizerFromHfJson("/nonexistent/tokenizer.json").status().code(),
            absl::StatusCode::kNotFound);
}

// A Llama-style tokenizer.json built from the GGUF vocabulary: merges are every split of a token
// into two tokens, ranked by the merged token's score. It must tokenize the llama.cpp vectors
// like the score-based tokenizer does.
TEST(HfJsonTokenizerTest, LlamaStyleJsonMatchesSpmVectors) {
  auto file = GgufFile::Open(TestDataPath("ggml-vocab-llama-spm.gguf"));
  ASSERT_TRUE(file.ok()) << file.status();
  auto vocab = VocabFromGguf(**file);
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  nlohmann::json vocab_map = nlohmann::json::object();
  std::unordered_map<std::string, int32_t> ids;
  for (size_t i = 0; i < vocab->tokens.size(); ++i) {
    vocab_map[vocab->tokens[i]] = i;
    ids.emplace(vocab->tokens[i], static_cast<int32_t>(i));
  }
  std::vector<std::tuple<float, int32_t, int32_t, std::string>> merges;
  for (size_t i = 0; i < vocab->tokens.size(); ++i) {
    if (vocab->token_types[i] != kTokenNormal) continue;
    const std::string& t = vocab->tokens[i];
    for (size_t cut = 1; cut < t.size(); ++cut) {
      if ((static_cast<unsigned char>(t[cut]) & 0xC0) == 0x80) continue;
      const auto left = ids.find(t.substr(0, cut));
      const auto right = ids.find(t.substr(cut));
      if (left == ids.end() || right == ids.end()) continue;
      if (vocab->token_types[left->second] != kTokenNormal ||
          vocab->token_types[right->second] != kTokenNormal) {
        continue;
      }
      merges.emplace_back(-vocab->scores[i], left->second, right->second,
                          t.substr(0, cut) + " " + t.substr(cut));
    }
  }
  std::sort(merges.begin(), merges.end());
  nlohmann::json merge_list = nlohmann::json::array();
  for (const auto& m : merges) merge_list.push_back(std::get<3>(m));
  nlohmann::json root = {
      {"added_tokens",
       {{{"id", 0}, {"content", "<unk>"}, {"special", true}},
        {{"id", 1}, {"content", "<s>"}, {"special", true}},
        {{"id", 2}, {"content", "</s>"}, {"special", true}}}},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers",
         {{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
          {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}}}}}},
      {"pre_tokenizer", nullptr},
      {"model",
       {{"type", "BPE"}, {"unk_token", "<unk>"}, {"byte_fallback", true}, {"vocab", vocab_map},
        {"merges", merge_list}}}};
  auto tokenizer = TokenizerFromHfJsonString(root.dump());
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  const auto cases = ReadVectors("ggml-vocab-llama-spm.gguf");
  ASSERT_EQ(cases.size(), 46u);
  for (const auto& c : cases) {
    EXPECT_EQ((*tokenizer)->Encode(c.text, false), c.ids) << "text: [" << c.text << "]";
    EXPECT_EQ((*tokenizer)->Decode(c.ids), c.text);
  }
}

}  // namespace
}  // namespace tessera::engine
