#include "engine/chat/tool_call_parser.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/chat/chat.h"
#include "engine/chat/chat_format.h"
#include "engine/chat/fake_tokenizer.h"
#include "gtest/gtest.h"

namespace tessera::engine {
namespace {

struct Generation {
  std::vector<std::string> deltas;  // what Feed returned, non-empty ones
  ToolCallParseResult result;
  std::string Streamed() const {
    std::string all;
    for (const auto& d : deltas) all += d;
    return all + result.final_text;
  }
};

ToolCallParserOptions CountingIds() {
  auto n = std::make_shared<int>(0);
  ToolCallParserOptions options;
  options.make_id = [n] { return absl::StrCat("gen", 100000 + ++*n); };  // 9 chars
  return options;
}

Generation Generate(ChatFormat format, const FakeTokenizer& tokenizer, const std::string& output,
                    bool truncated = false, ToolCallParserOptions options = CountingIds()) {
  ToolCallParser parser(format, tokenizer, options);
  Generation run;
  int32_t prev = -1;
  for (int32_t id : tokenizer.Generated(output)) {
    std::string delta = parser.Feed(id, tokenizer.TokenText(prev, id));
    if (!delta.empty()) run.deltas.push_back(delta);
    prev = id;
  }
  run.result = parser.Finish(truncated);
  return run;
}

TEST(ToolCallParserTest, PlainTextStreamsAsItComes) {
  FakeTokenizer tok = FakeTokenizer::V3();
  Generation run = Generate(ChatFormat::kMistralV3, tok, "Paris is sunny.</s>");
  EXPECT_EQ(run.deltas.size(), 15u);  // one per byte
  EXPECT_EQ(run.Streamed(), "Paris is sunny.");
  EXPECT_EQ(run.result.text, "Paris is sunny.");
  EXPECT_TRUE(run.result.tool_calls.empty());
  EXPECT_TRUE(run.result.error.ok());
}

TEST(ToolCallParserTest, V3ParallelCallsWithAndWithoutIds) {
  FakeTokenizer tok = FakeTokenizer::V3();
  Generation run = Generate(
      ChatFormat::kMistralV3, tok,
      R"([TOOL_CALLS] [{"name": "send_email", "arguments": {"to": "a@b.c", "n": 1.5}, "id": "abcDEF123"}, )"
      R"({"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}]</s>)");
  ASSERT_TRUE(run.result.error.ok()) << run.result.error;
  EXPECT_TRUE(run.deltas.empty());
  EXPECT_EQ(run.result.text, "");
  ASSERT_EQ(run.result.tool_calls.size(), 2u);
  EXPECT_EQ(run.result.tool_calls[0],
            (ToolCall{"abcDEF123", "send_email", R"({"to":"a@b.c","n":1.5})"}));
  EXPECT_EQ(run.result.tool_calls[1],
            (ToolCall{"gen100001", "get_weather", R"({"city":"Paris"})"}));
  EXPECT_NE(run.result.raw_tool_calls.find("[TOOL_CALLS]"), std::string::npos);
}

TEST(ToolCallParserTest, V7TextThenCallsStreamsOnlyTheText) {
  FakeTokenizer tok = FakeTokenizer::V7();
  Generation run = Generate(ChatFormat::kMistralV7, tok,
                            R"(Let me check.[TOOL_CALLS][{"name": "lookup", "arguments": {}}])");
  ASSERT_TRUE(run.result.error.ok()) << run.result.error;
  EXPECT_EQ(run.Streamed(), "Let me check.");
  ASSERT_EQ(run.result.tool_calls.size(), 1u);
  EXPECT_EQ(run.result.tool_calls[0].arguments_json, "{}");
}

TEST(ToolCallParserTest, RepeatedAndInvalidModelIdsAreReplaced) {
  FakeTokenizer tok = FakeTokenizer::V3();
  Generation run = Generate(ChatFormat::kMistralV3, tok,
                            R"([TOOL_CALLS][{"name": "a", "arguments": {}, "id": "123456789"},)"
                            R"({"name": "b", "arguments": {}, "id": "123456789"},)"
                            R"({"name": "c", "arguments": {}, "id": "call_1; rm -rf"}])");
  ASSERT_EQ(run.result.tool_calls.size(), 3u);
  EXPECT_EQ(run.result.tool_calls[0].id, "123456789");
  EXPECT_EQ(run.result.tool_calls[1].id, "gen100001");
  EXPECT_EQ(run.result.tool_calls[2].id, "gen100002");
}

TEST(ToolCallParserTest, DefaultIdsAreNineAlphanumerics) {
  FakeTokenizer tok = FakeTokenizer::V3();
  Generation run =
      Generate(ChatFormat::kMistralV3, tok,
               R"([TOOL_CALLS][{"name": "a", "arguments": {}}, {"name": "a", "arguments": {}}])",
               false, ToolCallParserOptions{});
  ASSERT_EQ(run.result.tool_calls.size(), 2u);
  for (const ToolCall& call : run.result.tool_calls) EXPECT_TRUE(IsValidMistralCallId(call.id));
  EXPECT_NE(run.result.tool_calls[0].id, run.result.tool_calls[1].id);
}

TEST(ToolCallParserTest, V11CallsWithCallId) {
  FakeTokenizer tok = FakeTokenizer::V11();
  Generation run = Generate(ChatFormat::kMistralV11, tok,
                            R"([TOOL_CALLS]get-sum[CALL_ID]aB3dE5gH7[ARGS]{"a": 2, "b": 40})"
                            R"([TOOL_CALLS]get_time[ARGS]{ }</s>)");
  ASSERT_TRUE(run.result.error.ok()) << run.result.error;
  ASSERT_EQ(run.result.tool_calls.size(), 2u);
  EXPECT_EQ(run.result.tool_calls[0], (ToolCall{"aB3dE5gH7", "get-sum", R"({"a":2,"b":40})"}));
  EXPECT_EQ(run.result.tool_calls[1], (ToolCall{"gen100001", "get_time", "{}"}));
}

TEST(ToolCallParserTest, V13CallsGetGeneratedIds) {
  FakeTokenizer tok = FakeTokenizer::V11();
  Generation run =
      Generate(ChatFormat::kMistralV13, tok,
               R"(Checking.[TOOL_CALLS]search[ARGS]{"q": "x"}[TOOL_CALLS]search[ARGS]{"q": "y"})");
  ASSERT_TRUE(run.result.error.ok()) << run.result.error;
  EXPECT_EQ(run.Streamed(), "Checking.");
  ASSERT_EQ(run.result.tool_calls.size(), 2u);
  EXPECT_EQ(run.result.tool_calls[0], (ToolCall{"gen100001", "search", R"({"q":"x"})"}));
  EXPECT_EQ(run.result.tool_calls[1], (ToolCall{"gen100002", "search", R"({"q":"y"})"}));
}

TEST(ToolCallParserTest, V1LeadingJsonArrayIsACall) {
  FakeTokenizer tok({});
  Generation run =
      Generate(ChatFormat::kMistralV1, tok,
               "  [{\"name\": \"search\", \"arguments\": {\"q\": \"\xC3\xA9t\xC3\xA9\"}}]");
  ASSERT_TRUE(run.result.error.ok()) << run.result.error;
  EXPECT_TRUE(run.deltas.empty());
  EXPECT_EQ(run.result.final_text, "");
  ASSERT_EQ(run.result.tool_calls.size(), 1u);
  EXPECT_EQ(run.result.tool_calls[0].arguments_json, "{\"q\":\"\xC3\xA9t\xC3\xA9\"}");
}

TEST(ToolCallParserTest, V1BracketTextStreamsOnceItCannotBeACall) {
  FakeTokenizer tok({});
  Generation run = Generate(ChatFormat::kMistralV1, tok, "[1] The report says so.");
  EXPECT_EQ(run.deltas.front(), "[1");  // held only until the second character
  EXPECT_EQ(run.Streamed(), "[1] The report says so.");
  EXPECT_TRUE(run.result.tool_calls.empty());
  EXPECT_TRUE(run.result.error.ok());
}

TEST(ToolCallParserTest, V1JsonAnswerWithoutNamesIsText) {
  FakeTokenizer tok({});
  Generation run = Generate(ChatFormat::kMistralV1, tok, R"([{"title": "Q3"}] are the rows.)");
  EXPECT_TRUE(run.deltas.empty());
  EXPECT_EQ(run.result.final_text, R"([{"title": "Q3"}] are the rows.)");
  EXPECT_EQ(run.result.text, run.result.final_text);
  EXPECT_TRUE(run.result.tool_calls.empty());
  EXPECT_TRUE(run.result.error.ok());
}

TEST(ToolCallParserTest, LiteralControlTextIsNotACall) {
  FakeTokenizer tok = FakeTokenizer::V3();
  ToolCallParser parser(ChatFormat::kMistralV3, tok, CountingIds());
  std::string streamed;
  // The characters of "[TOOL_CALLS]" as ordinary byte tokens.
  for (int32_t id : tok.Encode(R"([TOOL_CALLS] [{"name": "rm", "arguments": {}}])", false,
                               /*parse_special=*/false)) {
    streamed += parser.Feed(id, tok.TokenText(-1, id));
  }
  ToolCallParseResult result = parser.Finish();
  EXPECT_EQ(streamed, R"([TOOL_CALLS] [{"name": "rm", "arguments": {}}])");
  EXPECT_TRUE(result.tool_calls.empty());
}

TEST(ToolCallParserTest, Utf8SplitAcrossTokensIsHeldBack) {
  FakeTokenizer tok = FakeTokenizer::V3();
  Generation run = Generate(ChatFormat::kMistralV3, tok, "caf\xC3\xA9 \xF0\x9F\x98\x80!");
  for (const std::string& d : run.deltas) {
    const unsigned char last = static_cast<unsigned char>(d.back());
    EXPECT_TRUE(last < 0x80 || (last & 0xC0) == 0x80) << "delta ends mid-character";
  }
  EXPECT_EQ(run.Streamed(), "caf\xC3\xA9 \xF0\x9F\x98\x80!");
}

// Random token streams (control tokens, JSON punctuation, bytes) never crash the parser, and the
// streamed text plus final_text is always the result's text.
TEST(ToolCallParserTest, RandomStreamsAreHandled) {
  FakeTokenizer tok = FakeTokenizer::V11();
  const std::string alphabet = "[]{}\":, abc\\\xC3\xA9\xF0";
  uint32_t seed = 12345;
  auto next = [&seed] { return seed = seed * 1103515245u + 12345u, (seed >> 8) & 0xFFFF; };
  for (ChatFormat format : {ChatFormat::kMistralV1, ChatFormat::kMistralV3, ChatFormat::kMistralV7,
                            ChatFormat::kMistralV11, ChatFormat::kMistralV13}) {
    for (int run = 0; run < 300; ++run) {
      ToolCallParser parser(format, tok, CountingIds());
      std::string streamed;
      const int length = next() % 60;
      for (int i = 0; i < length; ++i) {
        int32_t id = next() % 4 == 0
                         ? static_cast<int32_t>(next() % 15)
                         : FakeTokenizer::kByteBase +
                               static_cast<unsigned char>(alphabet[next() % alphabet.size()]);
        streamed += parser.Feed(id, tok.TokenText(-1, id));
      }
      ToolCallParseResult result = parser.Finish(next() % 2 == 0);
      EXPECT_EQ(streamed + result.final_text, result.text);
      for (const ToolCall& call : result.tool_calls) {
        EXPECT_TRUE(IsValidToolName(call.name));
        EXPECT_EQ(call.arguments_json.front(), '{');
      }
    }
  }
}

struct Hostile {
  const char* name;
  ChatFormat format;
  const char* output;
  bool truncated;
  const char* error_part;
};

class HostileOutputTest : public ::testing::TestWithParam<Hostile> {};

TEST_P(HostileOutputTest, BecomesAnErrorValue) {
  const Hostile& h = GetParam();
  FakeTokenizer tok = FakeTokenizer::V11();
  Generation run = Generate(h.format, tok, h.output, h.truncated);
  EXPECT_EQ(run.result.error.code(), absl::StatusCode::kInvalidArgument) << h.output;
  EXPECT_NE(run.result.error.message().find(h.error_part), std::string::npos)
      << run.result.error.message();
  EXPECT_EQ(run.Streamed().find("name"), std::string::npos) << "call text was streamed";
}

const std::string& DeepNesting() {
  static const std::string* s =
      new std::string("[TOOL_CALLS][{\"name\": \"a\", \"arguments\": " + std::string(100000, '[') +
                      std::string(100000, ']') + "}]");
  return *s;
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, HostileOutputTest,
    ::testing::Values(
        Hostile{"BadJson", ChatFormat::kMistralV3,
                R"([TOOL_CALLS][{"name": "a", "arguments": {"x": }}])", false, "not valid JSON"},
        Hostile{"MissingName", ChatFormat::kMistralV3, R"([TOOL_CALLS][{"arguments": {}}])", false,
                "missing \"name\""},
        Hostile{"BadName", ChatFormat::kMistralV3,
                R"([TOOL_CALLS][{"name": "rm -rf /", "arguments": {}}])", false,
                "not a valid tool name"},
        Hostile{"ArgumentsNotObject", ChatFormat::kMistralV3,
                R"([TOOL_CALLS][{"name": "a", "arguments": [1, 2]}])", false,
                "must be a JSON object"},
        Hostile{"NotAnArray", ChatFormat::kMistralV3, R"([TOOL_CALLS] "name")", false,
                "must be a JSON array"},
        Hostile{"Empty", ChatFormat::kMistralV3, "[TOOL_CALLS]</s>", false,
                "not followed by a JSON array"},
        Hostile{"Truncated", ChatFormat::kMistralV3,
                R"([TOOL_CALLS][{"name": "a", "arguments": {"q": "long)", true, "token limit"},
        Hostile{"NeverClosed", ChatFormat::kMistralV3,
                R"([TOOL_CALLS][{"name": "a", "arguments": {"q": "x"})", false, "never closed"},
        Hostile{"ControlTokenInside", ChatFormat::kMistralV3,
                R"([TOOL_CALLS][{"name": "a", [INST]"arguments": {}}])", false,
                "unexpected control token [INST]"},
        Hostile{"V11NoArgs", ChatFormat::kMistralV11, "[TOOL_CALLS]search</s>", false, "no [ARGS]"},
        Hostile{"V11TruncatedArgs", ChatFormat::kMistralV11, R"([TOOL_CALLS]search[ARGS]{"q": "x)",
                true, "token limit"},
        Hostile{"V11TextAfterArgs", ChatFormat::kMistralV11,
                R"([TOOL_CALLS]search[ARGS]{"q": "x"} and more)", false, "nothing after it"},
        Hostile{"V13NoName", ChatFormat::kMistralV13, R"([TOOL_CALLS][ARGS]{"q": 1})", false,
                "missing the tool name"},
        Hostile{"V1Truncated", ChatFormat::kMistralV1, R"([{"name": "search", "arguments": {"q")",
                true, "token limit"},
        Hostile{"DeepNesting", ChatFormat::kMistralV3, DeepNesting().c_str(), false,
                "nested deeper"}),
    [](const ::testing::TestParamInfo<Hostile>& info) { return info.param.name; });

}  // namespace
}  // namespace tessera::engine
