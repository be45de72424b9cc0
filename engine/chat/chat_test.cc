#include "engine/chat/chat.h"

#include <string>
#include <vector>

#include "engine/chat/chat_format.h"
#include "gtest/gtest.h"

namespace tessera::engine {
namespace {

TEST(ParseOpenAiMessagesTest, ReadsEveryRoleAndField) {
  auto messages = ParseOpenAiMessages(R"({"model": "x", "messages": [
    {"role": "developer", "content": "Be brief."},
    {"role": "user", "content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": "there"}]},
    {"role": "assistant", "content": null, "tool_calls": [
      {"id": "abcDEF123", "type": "function",
       "function": {"name": "get_weather", "arguments": "{\"b\": 1, \"a\": [true, null]}"}},
      {"id": "zzzzzzzzz", "function": {"name": "now", "arguments": ""}},
      {"function": {"name": "obj", "arguments": {"k": "v"}}}]},
    {"role": "tool", "tool_call_id": "abcDEF123", "name": "get_weather", "content": "22"},
    {"role": "assistant", "content": "It is 22.", "unknown_field": 1}
  ]})");
  ASSERT_TRUE(messages.ok()) << messages.status();
  ASSERT_EQ(messages->size(), 5u);
  EXPECT_EQ((*messages)[0], (ChatMessage{ChatRole::kSystem, "Be brief."}));
  EXPECT_EQ((*messages)[1].content, "Hello\n\nthere");
  const ChatMessage& call = (*messages)[2];
  EXPECT_EQ(call.role, ChatRole::kAssistant);
  EXPECT_EQ(call.content, "");
  ASSERT_EQ(call.tool_calls.size(), 3u);
  // Arguments are kept in their order, compact.
  EXPECT_EQ(call.tool_calls[0],
            (ToolCall{"abcDEF123", "get_weather", R"({"b":1,"a":[true,null]})"}));
  EXPECT_EQ(call.tool_calls[1].arguments_json, "{}");
  EXPECT_EQ(call.tool_calls[2], (ToolCall{"", "obj", R"({"k":"v"})"}));
  EXPECT_EQ((*messages)[3], (ChatMessage{ChatRole::kTool, "22", {}, "abcDEF123", "get_weather"}));
  EXPECT_EQ((*messages)[4].content, "It is 22.");
}

TEST(ParseOpenAiMessagesTest, AcceptsABareArray) {
  auto messages = ParseOpenAiMessages(R"([{"role": "user", "content": "hi"}])");
  ASSERT_TRUE(messages.ok()) << messages.status();
  EXPECT_EQ(messages->size(), 1u);
}

struct BadInput {
  const char* json;
  const char* error;
};

class BadMessagesTest : public ::testing::TestWithParam<BadInput> {};

TEST_P(BadMessagesTest, NamesThePathOfTheBadField) {
  auto messages = ParseOpenAiMessages(GetParam().json);
  ASSERT_FALSE(messages.ok());
  EXPECT_EQ(messages.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(messages.status().message().find(GetParam().error), std::string::npos)
      << messages.status().message();
}

INSTANTIATE_TEST_SUITE_P(
    Errors, BadMessagesTest,
    ::testing::Values(
        BadInput{R"([{"role": "user", "content": "a"}, {"role": "user", "content": "b"},
                    {"role": "assistant", "tool_calls": [{"id": "x", "function":
                     {"name": "f", "arguments": "{not json"}}]}])",
                 "messages[2].tool_calls[0].function.arguments: not valid JSON"},
        BadInput{R"([{"role": "assistant", "tool_calls": [{"function": {"name": "f",
                     "arguments": "[1]"}}]}])",
                 "messages[0].tool_calls[0].function.arguments: expected a JSON object"},
        BadInput{R"([{"role": "assistant", "tool_calls": [{"function": {"arguments": "{}"}}]}])",
                 "messages[0].tool_calls[0].function.name: missing"},
        BadInput{R"([{"role": "assistant", "tool_calls": [{"type": "retrieval"}]}])",
                 "messages[0].tool_calls[0].type: \"retrieval\" is not supported"},
        BadInput{R"([{"role": "robot", "content": "x"}])",
                 "messages[0].role: \"robot\" is not one of"},
        BadInput{R"([{"content": "x"}])", "messages[0].role: missing"},
        BadInput{R"([{"role": "user", "content": 5}])",
                 "messages[0].content: expected a string or an array of text parts, got a number"},
        BadInput{R"([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}])",
                 "messages[0].content[0].type: \"image_url\" is not supported"},
        BadInput{R"([{"role": "user", "tool_calls": [{"function": {"name": "f"}}]}])",
                 "messages[0].tool_calls: only assistant messages make tool calls"},
        BadInput{R"([{"role": "tool", "tool_call_id": 7}])",
                 "messages[0].tool_call_id: expected a string, got a number"},
        BadInput{R"([42])", "messages[0]: expected an object, got a number"},
        BadInput{R"({"model": "x"})", "messages: missing"},
        BadInput{R"("hello")", "messages: expected an array or an object"},
        BadInput{R"([{"role": "user", "content": "x"})", "messages: not valid JSON"},
        BadInput{"", "messages: not valid JSON"}));

TEST(ParseOpenAiMessagesTest, DeepNestingIsAnErrorNotACrash) {
  const std::string deep = std::string(1000000, '[') + std::string(1000000, ']');
  auto messages = ParseOpenAiMessages(deep);
  EXPECT_EQ(messages.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(messages.status().message().find("nested deeper"), std::string::npos);
}

TEST(ParseOpenAiToolsTest, ReadsFunctionTools) {
  auto tools = ParseOpenAiTools(R"({"tools": [
    {"type": "function", "function": {"name": "get_weather", "description": "Weather",
      "parameters": {"type": "object", "properties": {"z": {}, "a": {}}}}},
    {"type": "function", "function": {"name": "now"}}]})");
  ASSERT_TRUE(tools.ok()) << tools.status();
  ASSERT_EQ(tools->size(), 2u);
  EXPECT_EQ((*tools)[0], (ToolSpec{"get_weather", "Weather",
                                   R"({"type":"object","properties":{"z":{},"a":{}}})"}));
  EXPECT_EQ((*tools)[1], (ToolSpec{"now", "", "{}"}));
}

TEST(ParseOpenAiToolsTest, NoToolsIsEmpty) {
  auto tools = ParseOpenAiTools(R"({"messages": []})");
  ASSERT_TRUE(tools.ok());
  EXPECT_TRUE(tools->empty());
  tools = ParseOpenAiTools(R"({"tools": null})");
  ASSERT_TRUE(tools.ok());
  EXPECT_TRUE(tools->empty());
}

TEST(ParseOpenAiToolsTest, ErrorsNameThePath) {
  EXPECT_NE(ParseOpenAiTools(R"([{"type": "function", "function": {"name": "a"}},
                                 {"type": "function", "function": {"description": "x"}}])")
                .status()
                .message()
                .find("tools[1].function.name: missing"),
            std::string::npos);
  EXPECT_NE(ParseOpenAiTools(R"([{"type": "function", "function": {"name": "a",
                                   "parameters": "{}"}}])")
                .status()
                .message()
                .find("tools[0].function.parameters: expected a JSON schema object"),
            std::string::npos);
  EXPECT_NE(ParseOpenAiTools(R"([{"type": "code_interpreter"}])")
                .status()
                .message()
                .find("tools[0].type: \"code_interpreter\" is not supported"),
            std::string::npos);
  EXPECT_NE(
      ParseOpenAiTools(R"({"tools": {}})").status().message().find("tools: expected an array"),
      std::string::npos);
}

TEST(NamesTest, ToolNamesAndCallIds) {
  EXPECT_TRUE(IsValidToolName("get_current-weather2"));
  EXPECT_TRUE(IsValidToolName(std::string(64, 'a')));
  EXPECT_FALSE(IsValidToolName(std::string(65, 'a')));
  EXPECT_FALSE(IsValidToolName(""));
  EXPECT_FALSE(IsValidToolName("server.tool"));
  EXPECT_FALSE(IsValidToolName("a b"));
  EXPECT_TRUE(IsValidMistralCallId("aB3dE5gH7"));
  EXPECT_FALSE(IsValidMistralCallId("aB3dE5gH"));
  EXPECT_FALSE(IsValidMistralCallId("aB3dE5gH7x"));
  EXPECT_FALSE(IsValidMistralCallId("call_1234"));
}

TEST(ChatFormatTest, NamesRoundTrip) {
  for (ChatFormat f : {ChatFormat::kMistralV1, ChatFormat::kMistralV2, ChatFormat::kMistralV3,
                       ChatFormat::kMistralV7, ChatFormat::kMistralV11, ChatFormat::kMistralV13}) {
    auto parsed = ParseChatFormat(ChatFormatName(f));
    ASSERT_TRUE(parsed.ok()) << parsed.status();
    EXPECT_EQ(*parsed, f);
  }
  EXPECT_EQ(*ParseChatFormat("Mistral-V7"), ChatFormat::kMistralV7);
  auto bad = ParseChatFormat("llama-3");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("mistral-v13"), std::string::npos);
}

}  // namespace
}  // namespace tessera::engine
