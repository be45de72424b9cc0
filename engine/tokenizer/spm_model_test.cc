// Checks the hand-written .model reader and its tokenizer against libsentencepiece
// (SentencePieceTokenizer) as the oracle. Test binaries may link libsentencepiece: they do not
// link libprotobuf, whose symbols clash with the copy inside libsentencepiece.
#include "engine/tokenizer/spm_model.h"

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "engine/tokenizer/sentencepiece_tokenizer.h"
#include "engine/tokenizer/test_util.h"
#include "engine/tokenizer/text_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace tessera::engine {
namespace {

using ::testing::HasSubstr;
using testing::PromptFromRendered;
using testing::ReadTestFile;
using testing::TestDataPath;

const std::vector<std::string> kModels = {"mistral-v1.model", "mistral-v3.model",
                                          "mistral-v7.model"};

// --- a tiny protobuf writer, to build and alter models -----------------------------------------

std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7F) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}
std::string VarintField(uint32_t field, uint64_t v) { return Varint(field << 3) + Varint(v); }
std::string BytesField(uint32_t field, const std::string& bytes) {
  return Varint((field << 3) | 2) + Varint(bytes.size()) + bytes;
}
std::string FloatField(uint32_t field, float f) {
  std::string out = Varint((field << 3) | 5);
  char raw[4];
  std::memcpy(raw, &f, 4);
  return out + std::string(raw, 4);
}
// Appending a sub-message merges it into the one already there (protobuf semantics).
std::string WithTrainer(const std::string& model, const std::string& fields) {
  return model + BytesField(2, fields);
}
std::string WithNormalizer(const std::string& model, const std::string& fields) {
  return model + BytesField(3, fields);
}
std::string Piece(const std::string& text, float score, int type) {
  return BytesField(1, BytesField(1, text) + FloatField(2, score) + VarintField(3, type));
}

// --- test texts -----------------------------------------------------------------------------

const std::vector<std::string>& Fragments() {
  static const auto* fragments = new std::vector<std::string>{
      "Hello", " world", "the", " quick brown fox", "jumps over", "The", "I'm", "don't",
      "def f(x):\n    return x ** 2\n", "int main() { return 0; }", "for (i = 0; i < n; ++i)",
      "{\"a\": [1, 2, {\"b\": null}]}", "https://example.com/a?b=c&d=%20", "SELECT * FROM t;",
      "🦙", "🚀🚀", "👩‍💻", "🇫🇷", "日本語のテキスト", "中文文本", "한국어", "Привет", "Ελληνικά",
      "العربية", "עברית", "हिन्दी", "Äpfel", "naïve café", "Straße", "ꙮ", "e\xCC\x81", "ﬁ", "½",
      "™", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", " ", "  ", "   ", "        ", "\n", "\n\n", "\t", "\t\t", "\r\n", " \n ",
      "[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]", "<s>", "</s>", "<unk>", "<pad>",
      "[REF]", "[/REF]", "[REFERENCE_DOC_3]", "[REFERENCE_DOC_", "[control_12]", "[IMG]",
      "[INST", "INST]", "<0x41>", "\xE2\x96\x81", "\xE2\x96\x81\xE2\x96\x81", "12345", "3.14159",
      "!!!", "...", "\"quoted\"", "'", "-", "_", "\x01", std::string("\0", 1), "\x7F", "\xFF",
      "\xC3", "\xE2\x82", "a", "b", "x", "Z", "0"};
  return *fragments;
}

std::string RandomCodePoints(std::mt19937& rng, int count) {
  static const std::vector<std::pair<char32_t, char32_t>> ranges = {
      {0x20, 0x7E},     {0xA0, 0x24F},     {0x370, 0x3FF},   {0x400, 0x4FF},  {0x590, 0x6FF},
      {0x900, 0x97F},   {0x3040, 0x30FF},  {0x4E00, 0x9FFF}, {0xAC00, 0xD7A3}, {0x1F300, 0x1FAFF},
      {0x10000, 0x1FFFF}, {0xE000, 0xF8FF}, {0x1, 0x1F}};
  std::string out;
  for (int i = 0; i < count; ++i) {
    const auto& [lo, hi] = ranges[rng() % ranges.size()];
    const char32_t cp = lo + rng() % (hi - lo + 1);
    tokenizer_internal::AppendUtf8(cp, &out);
  }
  return out;
}

std::vector<std::string> VariedTexts(int count, uint32_t seed) {
  std::vector<std::string> texts = {"", " ", "  ", "\n", "a", "Hello world",
                                    "  two leading spaces and trailing  ",
                                    "<s>[INST]Hi there[/INST][TOOL_CALLS]", "[REF] x [/REF]",
                                    "x[REF]y", " [REF]", "[REF] ", "   many   spaces   "};
  std::mt19937 rng(seed);
  const auto& fragments = Fragments();
  while (static_cast<int>(texts.size()) < count) {
    std::string text;
    const int parts = static_cast<int>(rng() % 9);
    for (int i = 0; i < parts; ++i) {
      switch (rng() % 10) {
        case 0:
          text += RandomCodePoints(rng, 1 + static_cast<int>(rng() % 6));
          break;
        case 1:
          text.push_back(static_cast<char>(rng() % 256));  // often invalid UTF-8
          break;
        default:
          text += fragments[rng() % fragments.size()];
      }
    }
    texts.push_back(std::move(text));
  }
  return texts;
}

std::string Concatenated(const Tokenizer& tokenizer, const std::vector<int32_t>& ids) {
  std::string out;
  int32_t prev = -1;
  for (const int32_t id : ids) {
    out += tokenizer.TokenText(prev, id);
    prev = id;
  }
  return out;
}

// Same ids, Decode and TokenText as the oracle for every text and flag combination; returns the
// number of mismatching texts (reports the first few).
int CompareOnTexts(const Tokenizer& ours, const Tokenizer& oracle,
                   const std::vector<std::string>& texts, const std::string& label) {
  int mismatches = 0;
  for (const std::string& text : texts) {
    bool same = true;
    for (const bool add_special : {false, true}) {
      for (const bool parse_special : {false, true}) {
        const auto expected = oracle.Encode(text, add_special, parse_special);
        const auto actual = ours.Encode(text, add_special, parse_special);
        same &= actual == expected;
        same &= ours.Decode(expected) == oracle.Decode(expected);
        same &= ours.Decode(expected, true) == oracle.Decode(expected, true);
        same &= Concatenated(ours, expected) == Concatenated(oracle, expected);
      }
    }
    if (!same && ++mismatches <= 5) {
      ADD_FAILURE() << label << ": differs on \"" << text << "\": ours "
                    << ::testing::PrintToString(ours.Encode(text, false, true)) << " oracle "
                    << ::testing::PrintToString(oracle.Encode(text, false, true));
    }
  }
  return mismatches;
}

std::unique_ptr<Tokenizer> Ours(const std::string& bytes) {
  auto tokenizer = SentencePieceModelTokenizer(bytes);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return tokenizer.ok() ? std::move(*tokenizer) : nullptr;
}

std::unique_ptr<Tokenizer> Oracle(const std::string& bytes) {
  auto tokenizer = SentencePieceTokenizer::FromSerialized(bytes);
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return tokenizer.ok() ? std::move(*tokenizer) : nullptr;
}

TEST(SpmModelTest, VocabularyMatchesSentencePiece) {
  for (const std::string& name : kModels) {
    const std::string bytes = ReadTestFile(name);
    auto ours = Ours(bytes);
    auto oracle = Oracle(bytes);
    ASSERT_NE(ours, nullptr);
    ASSERT_NE(oracle, nullptr);
    EXPECT_EQ(ours->kind(), "sentencepiece");
    ASSERT_EQ(ours->vocab_size(), oracle->vocab_size()) << name;
    EXPECT_EQ(ours->bos_id(), oracle->bos_id());
    EXPECT_EQ(ours->eos_id(), oracle->eos_id());
    EXPECT_EQ(ours->unk_id(), oracle->unk_id());
    EXPECT_EQ(ours->pad_id(), oracle->pad_id());
    int differing = 0;
    for (int32_t id = 0; id < ours->vocab_size(); ++id) {
      differing += ours->Piece(id) != oracle->Piece(id) ||
                   ours->IsControl(id) != oracle->IsControl(id) ||
                   ours->TokenId(ours->Piece(id)) != oracle->TokenId(oracle->Piece(id));
    }
    EXPECT_EQ(differing, 0) << name;
    EXPECT_FALSE(ours->TokenId("no such piece").has_value());

    auto vocab = VocabFromSentencePieceModel(bytes);
    ASSERT_TRUE(vocab.ok()) << vocab.status();
    EXPECT_EQ(vocab->kind, Vocab::Kind::kLlamaSpm);
    EXPECT_EQ(static_cast<int32_t>(vocab->tokens.size()), oracle->vocab_size());
    EXPECT_EQ(vocab->bos, 1);
    EXPECT_EQ(vocab->eos, 2);
    EXPECT_EQ(vocab->unk, 0);
    EXPECT_EQ(vocab->pad, -1);
    EXPECT_TRUE(vocab->add_space_prefix);
    EXPECT_EQ(vocab->token_types[3], name == "mistral-v1.model" ? kTokenByte
                                                                               : kTokenControl);
    EXPECT_TRUE(CreateTokenizer(*vocab).ok());
  }
}

TEST(SpmModelTest, EncodeDecodeMatchSentencePieceOnVariedTexts) {
  const std::vector<std::string> texts = VariedTexts(3000, 20240611);
  for (const std::string& name : kModels) {
    const std::string bytes = ReadTestFile(name);
    auto ours = Ours(bytes);
    auto oracle = Oracle(bytes);
    ASSERT_NE(ours, nullptr);
    ASSERT_NE(oracle, nullptr);
    EXPECT_EQ(CompareOnTexts(*ours, *oracle, texts, name), 0) << name;

    // A long input, and arbitrary id sequences (out of range, bytes, controls) for decoding.
    std::string long_text;
    for (const auto& text : texts) long_text += text;
    EXPECT_EQ(ours->Encode(long_text, true, true), oracle->Encode(long_text, true, true));
    std::mt19937 rng(7);
    for (int i = 0; i < 500; ++i) {
      std::vector<int32_t> ids;
      const int n = static_cast<int>(rng() % 12);
      for (int k = 0; k < n; ++k) {
        ids.push_back(rng() % 4 == 0 ? static_cast<int32_t>(rng() % 300) - 10
                                     : static_cast<int32_t>(rng() % (ours->vocab_size() + 20)));
      }
      EXPECT_EQ(ours->Decode(ids), oracle->Decode(ids));
      EXPECT_EQ(ours->Decode(ids, true), oracle->Decode(ids, true));
      EXPECT_EQ(Concatenated(*ours, ids), Concatenated(*oracle, ids));
    }
  }
}

TEST(SpmModelTest, NormaliserOptionsMatchSentencePiece) {
  const std::vector<std::string> texts = VariedTexts(600, 99);
  const std::string base = ReadTestFile("mistral-v3.model");
  struct Variant {
    std::string label;
    std::string bytes;
  };
  for (const Variant& v : std::vector<Variant>{
           {"no dummy prefix", WithNormalizer(base, VarintField(3, 0))},
           {"remove extra whitespaces", WithNormalizer(base, VarintField(4, 1))},
           {"both", WithNormalizer(base, VarintField(3, 0) + VarintField(4, 1))},
           {"name absent", base}}) {
    auto ours = Ours(v.bytes);
    auto oracle = Oracle(v.bytes);
    ASSERT_NE(ours, nullptr) << v.label;
    ASSERT_NE(oracle, nullptr) << v.label;
    EXPECT_EQ(CompareOnTexts(*ours, *oracle, texts, v.label), 0) << v.label;
  }
}

// A model built by hand: unused pieces (merged, then split again), user-defined pieces, no byte
// fallback (unknown characters become <unk>).
TEST(SpmModelTest, HandBuiltModelMatchesSentencePiece) {
  const std::string space = "\xE2\x96\x81";
  std::string model = Piece("<unk>", 0, 2) + Piece("<s>", 0, 3) + Piece("</s>", 0, 3) +
                      Piece("<ctl>", 0, 3) + Piece("@@", 0, 4) + Piece("@@@", 0, 4) +
                      Piece(space + "a", -1, 1) + Piece("ab", -2, 5) + Piece("abc", -3, 1) +
                      Piece("bc", -4, 1) + Piece(space, -5, 1) + Piece("a", -6, 1) +
                      Piece("b", -7, 1) + Piece("c", -8, 1) + Piece("cab", -9, 5) +
                      Piece(space + "ab", -0.5f, 5) + Piece("x", -10, 1);
  model += BytesField(2, VarintField(3, 2));
  model += BytesField(3, BytesField(1, "identity") + VarintField(4, 0));
  auto ours = Ours(model);
  auto oracle = Oracle(model);
  ASSERT_NE(ours, nullptr);
  ASSERT_NE(oracle, nullptr);
  std::vector<std::string> texts = {"abc", "ab", "a b c", "cab", "abcab", "xyz", "zz z", "a@@b",
                                    "@@@@", "@@ @@", "<ctl>ab", "ab<ctl>", "qqq", "abcabcab x"};
  std::mt19937 rng(3);
  const std::string alphabet = "abcxyz @<>/s";
  for (int i = 0; i < 1500; ++i) {
    std::string text;
    const int n = static_cast<int>(rng() % 12);
    for (int k = 0; k < n; ++k) text.push_back(alphabet[rng() % alphabet.size()]);
    texts.push_back(text);
  }
  EXPECT_EQ(CompareOnTexts(*ours, *oracle, texts, "hand-built"), 0);
}

TEST(SpmModelTest, MistralChatVectors) {
  struct Case {
    std::string dir;
    std::string version;
  };
  int checked = 0;
  for (const Case& c : std::vector<Case>{{"no_tools", "v1"},
                                         {"no_tools", "v3"},
                                         {"get_weather_full", "v3"},
                                         {"parallel_calls", "v3"}}) {
    auto loaded = LoadSentencePieceModel(TestDataPath("mistral-" + c.version + ".model"));
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    const Tokenizer& tokenizer = **loaded;
    const std::string base = "mistral-chat-vectors/" + c.dir + "/";
    std::string rendered = ReadTestFile(base + "text_" + c.version + ".txt");
    while (!rendered.empty() && rendered.back() == '\n') rendered.pop_back();
    const auto json = nlohmann::json::parse(ReadTestFile(base + "tokens_" + c.version + ".json"));
    const std::vector<int32_t> expected = json.at("tokens").get<std::vector<int32_t>>();
    const std::string prompt = PromptFromRendered(rendered, tokenizer);
    EXPECT_EQ(tokenizer.Encode(prompt, false, true), expected) << c.dir << " " << c.version;
    if (c.version == "v3") {
      EXPECT_EQ(tokenizer.Decode(expected, true), prompt);
    }
    ++checked;
  }
  EXPECT_EQ(checked, 4);
}

TEST(SpmModelTest, ParseSpecialOnlyForControlPieces) {
  auto loaded = LoadSentencePieceModel(TestDataPath("mistral-v7.model"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const Tokenizer& tokenizer = **loaded;
  const int32_t inst = *tokenizer.TokenId("[INST]");
  const int32_t end_inst = *tokenizer.TokenId("[/INST]");
  const int32_t tool_calls = *tokenizer.TokenId("[TOOL_CALLS]");
  const auto hi = tokenizer.Encode("Hi there", false);
  std::vector<int32_t> expected = {1, inst};
  expected.insert(expected.end(), hi.begin(), hi.end());
  expected.push_back(end_inst);
  expected.push_back(tool_calls);
  EXPECT_EQ(tokenizer.Encode("<s>[INST]Hi there[/INST][TOOL_CALLS]", false, true), expected);
  const auto plain = tokenizer.Encode("<s>[INST]Hi there[/INST][TOOL_CALLS]", false, false);
  EXPECT_THAT(plain, ::testing::Not(::testing::Contains(inst)));
  EXPECT_EQ(tokenizer.Decode(plain), "<s>[INST]Hi there[/INST][TOOL_CALLS]");
  EXPECT_EQ(tokenizer.Decode(expected, true), "<s>[INST]Hi there[/INST][TOOL_CALLS]");
  // The unknown piece is never parsed from text (as SentencePiece).
  EXPECT_THAT(tokenizer.Encode("<unk>", false, true), ::testing::Not(::testing::Contains(0)));
}

TEST(SpmModelTest, UnsupportedModelsAreRejectedClearly) {
  const std::string base = ReadTestFile("mistral-v3.model");
  auto unigram = SentencePieceModelTokenizer(WithTrainer(base, VarintField(3, 1)));
  EXPECT_EQ(unigram.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(unigram.status().message(), HasSubstr("Unigram"));
  auto nfkc = SentencePieceModelTokenizer(WithNormalizer(base, BytesField(1, "nmt_nfkc")));
  EXPECT_EQ(nfkc.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(nfkc.status().message(), HasSubstr("nmt_nfkc"));
  auto charsmap = SentencePieceModelTokenizer(WithNormalizer(base, BytesField(2, "rules")));
  EXPECT_EQ(charsmap.status().code(), absl::StatusCode::kUnimplemented);
  auto suffix = SentencePieceModelTokenizer(WithTrainer(base, VarintField(24, 1)));
  EXPECT_EQ(suffix.status().code(), absl::StatusCode::kUnimplemented);
  auto no_escape = SentencePieceModelTokenizer(WithNormalizer(base, VarintField(5, 0)));
  EXPECT_EQ(no_escape.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(VocabFromSentencePieceModel(WithTrainer(base, VarintField(3, 1))).status().code(),
            absl::StatusCode::kUnimplemented);
}

TEST(SpmModelTest, LoadErrors) {
  EXPECT_EQ(LoadSentencePieceModel("/nonexistent/x.model").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(LoadSentencePieceModel(TestDataPath("mistral-LICENCE")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(LoadSentencePieceModel(TestDataPath("")).status().code(),
            absl::StatusCode::kInvalidArgument);  // a directory
  for (const std::string& bad : {std::string(), std::string("definitely not a model"),
                                std::string("\x0A\xFF\xFF\xFF\xFF\x0F", 6),
                                std::string("\x0B", 1), std::string("\x0A\x02\x08", 3)}) {
    const auto status = SentencePieceModelTokenizer(bad).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  }
}

// The top-level fields of a well-formed serialized message, each raw (tag and value).
std::vector<std::pair<uint32_t, std::string>> TopLevelFields(const std::string& bytes) {
  std::vector<std::pair<uint32_t, std::string>> fields;
  size_t pos = 0;
  auto varint = [&]() {
    uint64_t value = 0;
    for (int shift = 0;; shift += 7) {
      const uint8_t byte = static_cast<uint8_t>(bytes.at(pos++));
      value |= static_cast<uint64_t>(byte & 0x7F) << shift;
      if ((byte & 0x80) == 0) return value;
    }
  };
  while (pos < bytes.size()) {
    const size_t start = pos;
    const uint64_t tag = varint();
    switch (tag & 7) {
      case 0: varint(); break;
      case 1: pos += 8; break;
      case 2: pos += varint(); break;
      case 5: pos += 4; break;
    }
    fields.emplace_back(static_cast<uint32_t>(tag >> 3), bytes.substr(start, pos - start));
  }
  return fields;
}

// The first `pieces` pieces (and the byte pieces) of a model with its trainer and normaliser specs: small enough to try
// every truncation.
// The byte pieces are always kept (byte_fallback needs all 256).
std::string SmallModel(const std::string& bytes, int pieces) {
  std::string out;
  for (const auto& [number, raw] : TopLevelFields(bytes)) {
    if (number != 1 || pieces-- > 0 || raw.find("<0x") != std::string::npos) out += raw;
  }
  return out;
}

// Every truncation of small models cut from the Mistral files (one with v1's short specs, one
// with v7's long list of control symbols) gives an error, except where the prefix happens to be a
// whole model that libsentencepiece accepts too; a sample of truncations of the full files too.
TEST(SpmModelTest, TruncatedModelsGiveErrors) {
  for (const auto& [name, pieces] :
       std::vector<std::pair<std::string, int>>{{"mistral-v1.model", 300}, {"mistral-v7.model", 20}}) {
    const std::string small = SmallModel(ReadTestFile(name), pieces);
    auto ours = Ours(small);
    auto oracle = Oracle(small);
    ASSERT_NE(ours, nullptr);
    ASSERT_NE(oracle, nullptr);
    EXPECT_EQ(CompareOnTexts(*ours, *oracle, VariedTexts(200, 5), "small " + name), 0);
    int accepted = 0;
    for (size_t n = 0; n < small.size(); ++n) {
      const std::string prefix = small.substr(0, n);
      auto parsed = SentencePieceModelTokenizer(prefix);
      if (!parsed.ok()) continue;
      ++accepted;
      EXPECT_TRUE(SentencePieceTokenizer::FromSerialized(prefix).ok())
          << name << " prefix " << n << " accepted by us only";
      (*parsed)->Encode("Hello [INST] world", true, true);
    }
    EXPECT_LT(accepted, 5) << name;
  }
  for (const std::string& name : kModels) {
    const std::string bytes = ReadTestFile(name);
    for (size_t n = 0; n < bytes.size(); n += bytes.size() / 40 + 1) {
      EXPECT_FALSE(ParseSentencePieceModel(bytes.substr(0, n)).ok()) << name << " " << n;
    }
    for (size_t n = bytes.size() - 20; n < bytes.size(); ++n) {
      auto parsed = ParseSentencePieceModel(bytes.substr(0, n));
      EXPECT_TRUE(!parsed.ok() || SentencePieceTokenizer::FromSerialized(bytes.substr(0, n)).ok())
          << name << " " << n;
    }
  }
}

// Random byte flips never crash: small models many times, the full files a few times.
TEST(SpmModelTest, CorruptedModelsNeverCrash) {
  struct Case {
    std::string bytes;
    int tries;
  };
  std::vector<Case> cases;
  for (const std::string& name : kModels) {
    const std::string bytes = ReadTestFile(name);
    cases.push_back({SmallModel(bytes, 50), 400});
    cases.push_back({bytes, 30});
  }
  const std::vector<std::string> texts = VariedTexts(30, 11);
  int loaded = 0;
  for (const Case& c : cases) {
    std::mt19937 rng(static_cast<uint32_t>(c.bytes.size()));
    for (int i = 0; i < c.tries; ++i) {
      std::string corrupt = c.bytes;
      const int flips = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < flips; ++k) {
        // Half the flips land in the last 4 KiB (the specs), half anywhere.
        const size_t pos = rng() % 2 && c.bytes.size() > 4096
                               ? c.bytes.size() - 1 - rng() % 4096
                               : rng() % c.bytes.size();
        corrupt[pos] = static_cast<char>(rng() % 2 ? corrupt[pos] ^ (1 << (rng() % 8)) : rng());
      }
      auto parsed = SentencePieceModelTokenizer(corrupt);
      if (!parsed.ok()) continue;
      ++loaded;
      const Tokenizer& t = **parsed;
      for (const std::string& text : texts) {
        const auto ids = t.Encode(text, true, true);
        t.Decode(ids, true);
        Concatenated(t, ids);
      }
    }
  }
  EXPECT_GT(loaded, 0);  // many flips inside piece text still give a usable model
}

}  // namespace
}  // namespace tessera::engine
