#include "agents/mcp/json_rpc.h"

#include "agents/mcp/schema_validator.h"
#include "agents/mcp/types.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::mcp {
namespace {

using ::testing::HasSubstr;

TEST(JsonRpcTest, ParseRejectsMalformedWithoutThrowing) {
  EXPECT_FALSE(ParseJson("{\"a\":").ok());
  EXPECT_FALSE(ParseJson("not json").ok());
  auto ok = ParseJson("{\"a\":1}");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)["a"], 1);
}

TEST(JsonRpcTest, ClassifiesMessages) {
  EXPECT_EQ(Classify(Json::parse(R"({"jsonrpc":"2.0","id":1,"method":"ping"})")), MessageKind::kRequest);
  EXPECT_EQ(Classify(Json::parse(R"({"jsonrpc":"2.0","method":"notifications/x"})")), MessageKind::kNotification);
  EXPECT_EQ(Classify(Json::parse(R"({"result":{},"jsonrpc":"2.0","id":"a"})")), MessageKind::kResult);
  EXPECT_EQ(Classify(Json::parse(R"({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}})")),
            MessageKind::kError);
  EXPECT_EQ(Classify(Json::parse(R"({"jsonrpc":"2.0","id":null,"method":"ping"})")), MessageKind::kInvalid);
  EXPECT_EQ(Classify(Json::parse(R"([1,2])")), MessageKind::kInvalid);
  EXPECT_EQ(Classify(Json::parse(R"({"jsonrpc":"2.0"})")), MessageKind::kInvalid);
}

TEST(JsonRpcTest, IdKeysKeepIntegersAndStringsApart) {
  EXPECT_EQ(IdKey(Json(5)), "i:5");
  EXPECT_EQ(IdKey(Json("5")), "s:5");
  EXPECT_NE(IdKey(Json(5)), IdKey(Json("5")));
  EXPECT_EQ(IdKey(Json(nullptr)), "");
}

TEST(JsonRpcTest, SerializeReplacesInvalidUtf8InsteadOfThrowing) {
  Json j = {{"text", std::string("a\xff" "b")}};
  EXPECT_THAT(Serialize(j), HasSubstr("a\xEF\xBF\xBD" "b"));
  EXPECT_EQ(Serialize(Json{{"t", "line1\nline2"}}).find('\n'), std::string::npos);
}

TEST(JsonRpcTest, RpcErrorsMapToSpecificCodes) {
  absl::Status s = RpcErrorToStatus(Json::parse(R"({"code":-32601,"message":"Method not found"})"), "tools/list");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(s.message()), HasSubstr("Method not found"));
  EXPECT_EQ(RpcErrorCodeOf(s), -32601);
  EXPECT_EQ(RpcErrorToStatus(Json::parse(R"({"code":-32602,"message":"bad"})"), "x").code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RpcErrorCodeOf(absl::InternalError("x")), 0);
}

TEST(TypesTest, ParsesEveryContentType) {
  Json result = Json::parse(R"({"content":[
    {"type":"text","text":"hi","annotations":{"priority":1}},
    {"type":"image","data":"AAA=","mimeType":"image/png"},
    {"type":"audio","data":"BBB=","mimeType":"audio/wav"},
    {"type":"resource_link","uri":"file:///a","name":"a"},
    {"type":"resource","resource":{"uri":"x://1","text":"inline","mimeType":"text/plain"}},
    {"type":"resource","resource":{"uri":"x://2","blob":"AQ=="}},
    {"type":"future-thing"}],
    "structuredContent":{"k":1},"isError":false})");
  auto parsed = ParseCallToolResult(result);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  ASSERT_EQ(parsed->content.size(), 7u);
  EXPECT_EQ(parsed->content[0].type, ContentItem::Type::kText);
  EXPECT_EQ(parsed->content[0].annotations["priority"], 1);
  EXPECT_EQ(parsed->content[1].type, ContentItem::Type::kImage);
  EXPECT_EQ(parsed->content[1].mime_type, "image/png");
  EXPECT_EQ(parsed->content[2].type, ContentItem::Type::kAudio);
  EXPECT_EQ(parsed->content[3].type, ContentItem::Type::kResourceLink);
  EXPECT_EQ(parsed->content[3].uri, "file:///a");
  EXPECT_EQ(parsed->content[4].text, "inline");
  EXPECT_EQ(parsed->content[5].data, "AQ==");
  EXPECT_EQ(parsed->content[6].type, ContentItem::Type::kUnknown);
  EXPECT_EQ((*parsed->structured_content)["k"], 1);
  EXPECT_FALSE(parsed->is_error);
  EXPECT_THAT(RenderContentAsText(*parsed), HasSubstr("[image image/png"));
}

TEST(TypesTest, RejectsBrokenBlocksAndNames) {
  EXPECT_FALSE(ParseCallToolResult(Json::parse(R"({"content":[{"type":"text"}]})")).ok());
  EXPECT_FALSE(ParseCallToolResult(Json::parse(R"({"content":[{"type":"image","data":"x"}]})")).ok());
  EXPECT_FALSE(ParseCallToolResult(Json::parse(R"({"nothing":1})")).ok());
  EXPECT_TRUE(IsValidToolName("get-sum.v2_x"));
  EXPECT_FALSE(IsValidToolName("bad name"));
  EXPECT_FALSE(IsValidToolName(std::string(129, 'a')));
  EXPECT_FALSE(ParseTool(Json::parse(R"({"name":"t"})")).ok());  // no inputSchema
}

TEST(SchemaValidatorTest, ChecksTheCommonKeywords) {
  Json schema = Json::parse(R"({"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",
    "properties":{"sum":{"type":"number"},"tags":{"type":"array","items":{"type":"string"}},
                  "kind":{"enum":["a","b"]}},
    "required":["sum"],"additionalProperties":false})");
  EXPECT_TRUE(ValidateAgainstSchema(schema, Json::parse(R"({"sum":4.5,"tags":["x"],"kind":"a"})")).ok());
  absl::Status missing = ValidateAgainstSchema(schema, Json::parse(R"({"tags":[]})"));
  EXPECT_EQ(missing.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(ValidateAgainstSchema(schema, Json::parse(R"({"sum":"4"})")).ok());
  EXPECT_FALSE(ValidateAgainstSchema(schema, Json::parse(R"({"sum":1,"extra":true})")).ok());
  EXPECT_FALSE(ValidateAgainstSchema(schema, Json::parse(R"({"sum":1,"tags":[1]})")).ok());
  EXPECT_FALSE(ValidateAgainstSchema(schema, Json::parse(R"({"sum":1,"kind":"c"})")).ok());
}

TEST(SchemaValidatorTest, LocalRefsWorkAndUncompilableSchemasAreUnimplemented) {
  Json schema = Json::parse(R"({"type":"object","properties":{"p":{"$ref":"#/$defs/pos"}},
    "$defs":{"pos":{"type":"integer","minimum":0}}})");
  EXPECT_TRUE(ValidateAgainstSchema(schema, Json::parse(R"({"p":3})")).ok());
  EXPECT_FALSE(ValidateAgainstSchema(schema, Json::parse(R"({"p":-3})")).ok());
  Json remote = Json::parse(R"({"$ref":"https://example.com/schema.json"})");
  EXPECT_EQ(ValidateAgainstSchema(remote, Json::object()).code(), absl::StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace tessera::mcp
