#include "engine/tokenizer/sentencepiece_tokenizer.h"

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/tokenizer/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace tessera::engine {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::Not;
using testing::PromptFromRendered;
using testing::ReadTestFile;
using testing::TestDataPath;

std::unique_ptr<Tokenizer> LoadModel(const std::string& name) {
  auto tokenizer = SentencePieceTokenizer::Load(TestDataPath(name));
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return tokenizer.ok() ? std::move(*tokenizer) : nullptr;
}

const std::vector<std::string>& SampleTexts() {
  static const auto* texts = new std::vector<std::string>{
      "Hello world",
      "What's the result of 5 + 5?",
      "  two leading spaces and trailing  ",
      "line one\nline two\n\n\ttabbed",
      "Äpfel, Straße, naïve café, 日本語のテキスト, Привет",
      "emoji 🦙🚀 and rare ꙮ characters",
      "[INST] looks like a control token [/INST] </s>",
  };
  return *texts;
}

TEST(SentencePieceTokenizerTest, LoadsMistralModels) {
  for (const auto& [name, size] : std::vector<std::pair<std::string, int>>{
           {"mistral-v1.model", 32000}, {"mistral-v3.model", 32768}, {"mistral-v7.model", 32768}}) {
    auto tokenizer = LoadModel(name);
    ASSERT_NE(tokenizer, nullptr) << name;
    EXPECT_EQ(tokenizer->kind(), "sentencepiece");
    EXPECT_EQ(tokenizer->vocab_size(), size) << name;
    EXPECT_EQ(tokenizer->bos_id(), 1);
    EXPECT_EQ(tokenizer->eos_id(), 2);
    EXPECT_EQ(tokenizer->unk_id(), 0);
    EXPECT_EQ(tokenizer->Piece(1), "<s>");
    EXPECT_TRUE(tokenizer->IsControl(1));
    EXPECT_FALSE(tokenizer->IsControl(0));
  }
}

TEST(SentencePieceTokenizerTest, RoundTripsAndMatchesSentencePieceDecoding) {
  for (const std::string name : {"mistral-v1.model", "mistral-v3.model", "mistral-v7.model"}) {
    auto tokenizer = LoadModel(name);
    ASSERT_NE(tokenizer, nullptr);
    tokenizer_internal::SentencePieceAdapter reference;
    ASSERT_EQ(reference.LoadFile(TestDataPath(name)), "");
    for (const auto& text : SampleTexts()) {
      const auto ids = tokenizer->Encode(text, /*add_special=*/true);
      ASSERT_FALSE(ids.empty());
      EXPECT_EQ(ids[0], 1);
      EXPECT_EQ(tokenizer->Decode(ids), text) << name;
      EXPECT_EQ(tokenizer->Decode(ids), reference.DecodeIds(std::vector<int>(ids.begin(), ids.end())));
      std::vector<int> plain;
      ASSERT_EQ(reference.Encode(text, &plain), "");
      EXPECT_EQ(std::vector<int32_t>(ids.begin() + 1, ids.end()),
                std::vector<int32_t>(plain.begin(), plain.end()));
    }
  }
}

TEST(SentencePieceTokenizerTest, ByteFallbackForRareCharacters) {
  auto tokenizer = LoadModel("mistral-v3.model");
  ASSERT_NE(tokenizer, nullptr);
  const auto ids = tokenizer->Encode("🦙", false);
  bool saw_byte = false;
  for (int32_t id : ids) saw_byte |= tokenizer->Piece(id).rfind("<0x", 0) == 0;
  EXPECT_TRUE(saw_byte);
  EXPECT_EQ(tokenizer->Decode(ids), "🦙");
}

TEST(SentencePieceTokenizerTest, ParseSpecialTurnsControlTextIntoIds) {
  for (const std::string name : {"mistral-v3.model", "mistral-v7.model"}) {
    auto tokenizer = LoadModel(name);
    ASSERT_NE(tokenizer, nullptr);
    const int32_t inst = *tokenizer->TokenId("[INST]");
    const int32_t end_inst = *tokenizer->TokenId("[/INST]");
    const int32_t tool_calls = *tokenizer->TokenId("[TOOL_CALLS]");
    EXPECT_TRUE(tokenizer->IsControl(inst));
    EXPECT_TRUE(tokenizer->IsControl(tool_calls));

    const auto hi = tokenizer->Encode("Hi there", false);
    std::vector<int32_t> expected = {1, inst};
    expected.insert(expected.end(), hi.begin(), hi.end());
    expected.push_back(end_inst);
    expected.push_back(tool_calls);
    EXPECT_EQ(tokenizer->Encode("<s>[INST]Hi there[/INST][TOOL_CALLS]", false, true), expected);

    // Without parse_special the same text is ordinary text.
    const auto plain = tokenizer->Encode("<s>[INST]Hi there[/INST][TOOL_CALLS]", false, false);
    EXPECT_THAT(plain, Not(Contains(inst)));
    EXPECT_THAT(plain, Not(Contains(tool_calls)));
    EXPECT_THAT(plain, Not(Contains(1)));
    EXPECT_EQ(tokenizer->Decode(plain), "<s>[INST]Hi there[/INST][TOOL_CALLS]");

    // Decode drops control tokens unless asked to keep them.
    EXPECT_EQ(tokenizer->Decode(expected), "Hi there");
    EXPECT_EQ(tokenizer->Decode(expected, /*keep_special=*/true), "<s>[INST]Hi there[/INST][TOOL_CALLS]");
  }
}

TEST(SentencePieceTokenizerTest, V1HasNoInstControlToken) {
  auto tokenizer = LoadModel("mistral-v1.model");
  ASSERT_NE(tokenizer, nullptr);
  const auto ids = tokenizer->Encode("[INST] Hi [/INST]", false, true);
  EXPECT_THAT(ids, Not(Contains(3)));
  EXPECT_EQ(tokenizer->Encode("</s>x", false, true)[0], 2);
}

TEST(SentencePieceTokenizerTest, MistralChatVectors) {
  struct Case {
    std::string dir;
    std::string version;
  };
  int checked = 0;
  for (const Case& c : std::vector<Case>{{"no_tools", "v1"},
                                         {"no_tools", "v3"},
                                         {"get_weather_full", "v3"},
                                         {"parallel_calls", "v3"}}) {
    auto tokenizer = LoadModel("mistral-" + c.version + ".model");
    ASSERT_NE(tokenizer, nullptr);
    const std::string base = "mistral-chat-vectors/" + c.dir + "/";
    std::string rendered = ReadTestFile(base + "text_" + c.version + ".txt");
    while (!rendered.empty() && rendered.back() == '\n') rendered.pop_back();
    const auto json = nlohmann::json::parse(ReadTestFile(base + "tokens_" + c.version + ".json"));
    const std::vector<int32_t> expected = json.at("tokens").get<std::vector<int32_t>>();
    const std::string prompt = PromptFromRendered(rendered, *tokenizer);
    const auto actual = tokenizer->Encode(prompt, false, true);
    EXPECT_EQ(actual, expected) << c.dir << " " << c.version;
    for (size_t i = 0; i < actual.size() && i < expected.size(); ++i) {
      if (actual[i] != expected[i]) {
        ADD_FAILURE() << "first difference at " << i << ": " << tokenizer->Decode(
            absl::MakeConstSpan(actual).subspan(i > 8 ? i - 8 : 0, 16), true) << " vs "
            << tokenizer->Decode(absl::MakeConstSpan(expected).subspan(i > 8 ? i - 8 : 0, 16), true);
        break;
      }
    }
    if (c.version == "v3") {
      EXPECT_EQ(tokenizer->Decode(expected, true), prompt);
    }
    ++checked;
  }
  EXPECT_EQ(checked, 4);
}

TEST(SentencePieceTokenizerTest, TokenTextConcatenatesToDecode) {
  auto tokenizer = LoadModel("mistral-v3.model");
  ASSERT_NE(tokenizer, nullptr);
  for (const auto& text : SampleTexts()) {
    for (bool bos : {false, true}) {
      const auto ids = tokenizer->Encode(text, bos);
      std::string streamed;
      int32_t prev = -1;
      for (int32_t id : ids) {
        streamed += tokenizer->TokenText(prev, id);
        prev = id;
      }
      EXPECT_EQ(streamed, tokenizer->Decode(ids)) << text;
      EXPECT_EQ(streamed, text);
    }
  }
  // The leading space of a word is kept after any other token.
  const int32_t the = *tokenizer->TokenId("\xE2\x96\x81the");
  EXPECT_EQ(tokenizer->TokenText(-1, the), "the");
  EXPECT_EQ(tokenizer->TokenText(1, the), "the");
  EXPECT_EQ(tokenizer->TokenText(the, the), " the");
  EXPECT_EQ(tokenizer->TokenText(-1, 2), "");
  EXPECT_EQ(tokenizer->TokenText(*tokenizer->TokenId("[/INST]"), the), "the");
}

TEST(SentencePieceTokenizerTest, BadInputIsHandled) {
  auto tokenizer = LoadModel("mistral-v3.model");
  ASSERT_NE(tokenizer, nullptr);
  const auto ids = tokenizer->Encode(std::string("ab\xFF\xC3", 4), false);
  EXPECT_EQ(tokenizer->Decode(ids), "ab\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(tokenizer->Decode({-5, 100000, 1}), "");
  EXPECT_EQ(tokenizer->Piece(-1), "");
  EXPECT_FALSE(tokenizer->TokenId("no such piece at all").has_value());
  EXPECT_TRUE(tokenizer->Encode("", false).empty());
  // A lone byte piece that is not valid UTF-8 decodes to U+FFFD.
  const int32_t byte_ff = *tokenizer->TokenId("<0xFF>");
  EXPECT_EQ(tokenizer->Decode({byte_ff}), "\xEF\xBF\xBD");
  EXPECT_EQ(tokenizer->TokenText(-1, byte_ff), "\xFF");
}

TEST(SentencePieceTokenizerTest, LoadErrors) {
  EXPECT_EQ(SentencePieceTokenizer::Load("/nonexistent/x.model").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(SentencePieceTokenizer::Load(TestDataPath("mistral-LICENCE")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SentencePieceTokenizer::FromSerialized("definitely not a model").status().code(),
            absl::StatusCode::kInvalidArgument);
  auto from_bytes = SentencePieceTokenizer::FromSerialized(ReadTestFile("mistral-v7.model"));
  ASSERT_TRUE(from_bytes.ok()) << from_bytes.status();
  EXPECT_EQ((*from_bytes)->vocab_size(), 32768);
  EXPECT_THAT((*from_bytes)->Encode("[INST]", false, true), ElementsAre(3));
}

}  // namespace
}  // namespace tessera::engine
