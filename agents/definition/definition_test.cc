#include "agents/definition/definition.h"

#include <functional>
#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace tessera::agents {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;
using Json = ::nlohmann::json;
using ::tessera::v1::AgentDefinition;

// A valid definition that uses every part of the format.
Json FullDefinition() {
  return Json::parse(R"json({
    "name": "IT helpdesk",
    "description": "Answers on-call questions.",
    "instructions": "Cite your sources.",
    "model": "mistral-7b",
    "completionArgs": {"temperature": 0.25, "topK": 40, "topP": 0.9, "repetitionPenalty": 1.1,
                       "seed": "12345678901234567890", "maxTokens": 512, "stop": ["</answer>"]},
    "knowledge": {
      "collections": ["acme", "eng"],
      "filters": {"sources": ["gdrive"], "modifiedAfter": "2026-01-01T00:00:00Z",
                  "modifiedBefore": "2026-12-31T00:00:00Z", "metadata": {"department": "eng"},
                  "documentIds": ["d1"]},
      "topK": 12,
      "hybrid": {"fusion": "FUSION_METHOD_WEIGHTED_SUM", "rrfK": 60, "vectorWeight": 0.5,
                 "bm25Weight": 1.5, "vectorCandidates": 100, "bm25Candidates": 100,
                 "rerank": true, "rerankModel": "reranker", "rerankCandidates": 30}
    },
    "tools": [
      {"knowledgeSearch": {"name": "search_docs", "description": "Engineering docs."}},
      {"mcpServer": {"name": "files", "transport": "MCP_TRANSPORT_STDIO", "command": "npx",
                     "args": ["-y", "@modelcontextprotocol/server-filesystem", "/srv"],
                     "env": {"NODE_ENV": "production"}, "secretEnv": {"API_TOKEN": "cred-1"},
                     "cwd": "/tmp", "allowedTools": ["read_text_file", "write_file"],
                     "confirmTools": ["write_file"], "timeout": "30s"}},
      {"mcpServer": {"name": "jira", "transport": "MCP_TRANSPORT_STREAMABLE_HTTP",
                     "url": "https://mcp.acme.example:8443/mcp",
                     "auth": {"oauth": {"credentialRef": "jira-oauth", "scopes": ["read"]}},
                     "confirmTools": ["*"], "timeout": "1.5s"}}
    ],
    "maxIterations": 12,
    "toolTimeout": "45s",
    "starterMessages": ["How do I restart the sync daemon?"],
    "citationsEnabled": false,
    "sharing": {"users": ["ann@acme.example"], "groups": ["engineering@acme.example"],
                "tenantWide": true}
  })json");
}

std::string ParseError(const std::string& json) {
  absl::StatusOr<AgentDefinition> d = ParseAgentDefinitionJson(json);
  if (d.ok()) return "OK";
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << d.status();
  return std::string(d.status().message());
}

std::string ParseError(const Json& json) { return ParseError(json.dump()); }

// The validation error of FullDefinition() changed by `mutate`, which must still parse.
std::string ValidationError(const std::function<void(Json&)>& mutate) {
  Json j = FullDefinition();
  mutate(j);
  absl::StatusOr<AgentDefinition> d = ParseAgentDefinitionJson(j.dump());
  if (!d.ok()) return "PARSE: " + std::string(d.status().message());
  absl::Status s = ValidateAgentDefinition(*d);
  if (s.ok()) return "OK";
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  return std::string(s.message());
}

Json& Mcp(Json& j, int i) { return j["tools"][i]["mcpServer"]; }

Json HttpServer(const std::string& name) {
  return {{"mcpServer",
           {{"name", name},
            {"transport", "MCP_TRANSPORT_STREAMABLE_HTTP"},
            {"url", "http://127.0.0.1:9000/mcp"}}}};
}

// ---------------------------------------------------------------------------------------------
// Parsing.

TEST(ParseTest, FullDefinitionParsesAndValidates) {
  absl::StatusOr<AgentDefinition> d = ParseAgentDefinitionJson(FullDefinition().dump(2));
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(ValidateAgentDefinition(*d).ok()) << ValidateAgentDefinition(*d);
  EXPECT_EQ(d->name(), "IT helpdesk");
  EXPECT_FLOAT_EQ(d->completion_args().temperature(), 0.25f);
  EXPECT_EQ(d->completion_args().seed(), 12345678901234567890ull);
  EXPECT_EQ(d->knowledge().top_k(), 12);
  EXPECT_EQ(d->knowledge().hybrid().fusion(), tessera::v1::FUSION_METHOD_WEIGHTED_SUM);
  ASSERT_EQ(d->tools_size(), 3);
  EXPECT_EQ(d->tools(0).knowledge_search().name(), "search_docs");
  const tessera::v1::McpServerTool& files = d->tools(1).mcp_server();
  EXPECT_EQ(files.transport(), tessera::v1::MCP_TRANSPORT_STDIO);
  EXPECT_EQ(files.args_size(), 3);
  EXPECT_EQ(files.env().at("NODE_ENV"), "production");
  EXPECT_EQ(files.timeout().seconds(), 30);
  EXPECT_EQ(d->tools(2).mcp_server().timeout().nanos(), 500000000);
  EXPECT_EQ(d->tools(2).mcp_server().auth().oauth().credential_ref(), "jira-oauth");
  EXPECT_EQ(d->tool_timeout().seconds(), 45);
  EXPECT_TRUE(d->has_citations_enabled());
  EXPECT_FALSE(d->citations_enabled());
  EXPECT_TRUE(d->sharing().tenant_wide());
}

// Converts every object key to snake_case, except the keys of maps.
Json ToSnakeCase(const Json& j, bool is_map = false) {
  if (j.is_array()) {
    Json out = Json::array();
    for (const Json& e : j) out.push_back(ToSnakeCase(e));
    return out;
  }
  if (!j.is_object()) return j;
  Json out = Json::object();
  for (const auto& [key, value] : j.items()) {
    std::string snake;
    for (char c : key) {
      if (!is_map && c >= 'A' && c <= 'Z') {
        snake += '_';
        snake += static_cast<char>(c - 'A' + 'a');
      } else {
        snake += c;
      }
    }
    bool map = key == "env" || key == "secretEnv" || key == "metadata";
    out[snake] = ToSnakeCase(value, map);
  }
  return out;
}

TEST(ParseTest, BothNameStylesGiveTheSameMessage) {
  Json snake = ToSnakeCase(FullDefinition());
  ASSERT_TRUE(snake.contains("completion_args"));
  ASSERT_TRUE(snake["tools"][1]["mcp_server"]["secret_env"].contains("API_TOKEN"));
  absl::StatusOr<AgentDefinition> camel = ParseAgentDefinitionJson(FullDefinition().dump());
  absl::StatusOr<AgentDefinition> original = ParseAgentDefinitionJson(snake.dump());
  ASSERT_TRUE(camel.ok()) << camel.status();
  ASSERT_TRUE(original.ok()) << original.status();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*camel, *original));
}

TEST(ParseTest, MixedNameStylesAreAccepted) {
  absl::StatusOr<AgentDefinition> d = ParseAgentDefinitionJson(
      R"({"name": "a", "model": "m", "max_iterations": 3, "knowledge": {"top_k": 2}})");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->max_iterations(), 3);
  EXPECT_EQ(d->knowledge().top_k(), 2);
}

TEST(ParseTest, NullMeansDefault) {
  absl::StatusOr<AgentDefinition> d = ParseAgentDefinitionJson(
      R"({"name": "a", "model": "m", "knowledge": null, "tools": null, "maxIterations": null})");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_FALSE(d->has_knowledge());
}

TEST(ParseTest, UnknownFieldWithSuggestion) {
  Json j = FullDefinition();
  j["tools"][1]["mcp_sever"] = j["tools"][1]["mcpServer"];
  j["tools"][1].erase("mcpServer");
  EXPECT_EQ(ParseError(j), R"(tools[1]: unknown field "mcp_sever" (did you mean "mcp_server"?))");

  j = FullDefinition();
  j["nmae"] = "x";
  EXPECT_EQ(ParseError(j), R"($: unknown field "nmae" (did you mean "name"?))");

  j = FullDefinition();
  j["knowledge"]["topk"] = 3;
  EXPECT_EQ(ParseError(j), R"(knowledge: unknown field "topk" (did you mean "topK"?))");

  j = FullDefinition();
  Mcp(j, 1)["allowed_tool"] = Json::array();
  EXPECT_EQ(ParseError(j),
            R"(tools[1].mcpServer: unknown field "allowed_tool" (did you mean "allowed_tools"?))");

  j = FullDefinition();
  j["completionArgs"]["temprature"] = 1;
  EXPECT_EQ(ParseError(j),
            R"(completionArgs: unknown field "temprature" (did you mean "temperature"?))");
}

TEST(ParseTest, UnknownFieldFarFromAnyHasNoSuggestion) {
  Json j = FullDefinition();
  j["sharing"]["banana"] = true;
  EXPECT_EQ(ParseError(j), R"(sharing: unknown field "banana")");
}

TEST(ParseTest, WrongTypesReportTheirPath) {
  struct Case {
    std::string pointer;
    Json value;
    std::string prefix;
  };
  const Case cases[] = {
      {"/knowledge/topK", "many", "knowledge.topK: expected an integer, got string \"many\""},
      {"/knowledge/topK", 2.5, "knowledge.topK: expected an integer, got number 2.5"},
      {"/maxIterations", 3000000000LL, "maxIterations: out of range for a 32-bit integer"},
      {"/name", 5, "name: expected a string, got number 5"},
      {"/tools", Json::object(), "tools: expected an array, got object"},
      {"/tools/1/mcpServer/args/1", 7, "tools[1].mcpServer.args[1]: expected a string"},
      {"/tools/1/mcpServer/env/NODE_ENV", 1, "tools[1].mcpServer.env[\"NODE_ENV\"]: expected a"},
      {"/tools/1/mcpServer/transport", "STDIO",
       "tools[1].mcpServer.transport: unknown value \"STDIO\" (did you mean "
       "\"MCP_TRANSPORT_STDIO\"?)"},
      {"/tools/1/mcpServer/timeout", 30, "tools[1].mcpServer.timeout: expected a duration"},
      {"/toolTimeout", "30 seconds", "toolTimeout: expected a duration"},
      {"/citationsEnabled", "yes", "citationsEnabled: expected true or false"},
      {"/completionArgs/temperature", "hot", "completionArgs.temperature: expected a number"},
      {"/completionArgs/seed", -1, "completionArgs.seed: out of range"},
      {"/knowledge/filters/modifiedAfter", "yesterday",
       "knowledge.filters.modifiedAfter: expected an RFC 3339 time"},
      {"/knowledge", Json::array(), "knowledge: expected an object, got array"},
      {"/starterMessages/0", nullptr, "starterMessages[0]: must not be null"},
      {"/sharing/tenantWide", 1, "sharing.tenantWide: expected true or false"},
  };
  for (const Case& c : cases) {
    Json j = FullDefinition();
    j[Json::json_pointer(c.pointer)] = c.value;
    EXPECT_THAT(ParseError(j), StartsWith(c.prefix)) << c.pointer;
  }
}

TEST(ParseTest, LenientNumberFormsOfTheJsonMapping) {
  Json j = FullDefinition();
  j["knowledge"]["topK"] = "7";         // Integers may be strings.
  j["maxIterations"] = 5.0;             // or integral floats.
  j["completionArgs"]["topP"] = "0.5";  // Floats may be strings.
  Mcp(j, 1)["transport"] = 1;           // Enums may be numbers.
  absl::StatusOr<AgentDefinition> d = ParseAgentDefinitionJson(j.dump());
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->knowledge().top_k(), 7);
  EXPECT_EQ(d->max_iterations(), 5);
  EXPECT_FLOAT_EQ(d->completion_args().top_p(), 0.5f);
  EXPECT_EQ(d->tools(1).mcp_server().transport(), tessera::v1::MCP_TRANSPORT_STDIO);
}

TEST(ParseTest, FieldGivenInBothSpellings) {
  Json j = FullDefinition();
  j["knowledge"]["top_k"] = 3;
  EXPECT_THAT(ParseError(j), StartsWith("knowledge.topK: given twice"));
}

TEST(ParseTest, TwoKindsOfOneTool) {
  Json j = FullDefinition();
  j["tools"][0]["mcpServer"] = HttpServer("x")["mcpServer"];
  EXPECT_EQ(ParseError(j), R"(tools[0]: only one of "knowledgeSearch" and "mcpServer" may be set)");
}

TEST(ParseTest, SeveralProblemsAreAllReported) {
  Json j = FullDefinition();
  j["nmae"] = 1;
  j["knowledge"]["topK"] = "x";
  std::string error = ParseError(j);
  EXPECT_THAT(error, HasSubstr("knowledge.topK: expected an integer"));
  EXPECT_THAT(error, HasSubstr("; $: unknown field \"nmae\""));
}

TEST(ParseTest, MalformedJson) {
  EXPECT_EQ(ParseError(std::string("{\n  \"name\": \"x\",\n  \"model\" \"m\"\n}")),
            "$: not valid JSON at line 3 column 13: syntax error while parsing object separator - "
            "unexpected string literal; expected ':'");
  EXPECT_THAT(ParseError(std::string("{\"name\": \"x\",}")), StartsWith("$: not valid JSON at"));
  EXPECT_THAT(ParseError(std::string("{\"name\": \"x\"} trailing")),
              StartsWith("$: not valid JSON at"));
  EXPECT_THAT(ParseError(std::string("{\"name\": \"\xff\"}")),
              AllOf(StartsWith("$: not valid JSON at line 1 column 11: "),
                    HasSubstr("ill-formed UTF-8"), HasSubstr("\\xff")));
  EXPECT_THAT(ParseError(std::string("{\"name\": \"x\"")), StartsWith("$: not valid JSON"));
}

TEST(ParseTest, EmptyInput) {
  EXPECT_EQ(ParseError(std::string("")), "$: empty document; expected a JSON object");
  EXPECT_EQ(ParseError(std::string(" \n\t")), "$: empty document; expected a JSON object");
}

TEST(ParseTest, TopLevelMustBeAnObject) {
  EXPECT_EQ(ParseError(std::string("[]")), "$: expected a JSON object, got array");
  EXPECT_EQ(ParseError(std::string("[{\"name\": \"a\"}]")), "$: expected a JSON object, got array");
  EXPECT_EQ(ParseError(std::string("null")), "$: expected a JSON object, got null");
  EXPECT_EQ(ParseError(std::string("42")), "$: expected a JSON object, got number 42");
  EXPECT_EQ(ParseError(std::string("\"x\"")), "$: expected a JSON object, got string \"x\"");
}

TEST(ParseTest, DeeplyNestedJunkIsRejectedWithoutCrashing) {
  const std::string expected =
      "$: JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels";
  EXPECT_EQ(ParseError(std::string(10000, '[') + std::string(10000, ']')), expected);
  EXPECT_EQ(ParseError(std::string(200000, '[')), expected);  // Unterminated too.
  std::string objects;
  for (int i = 0; i < 10000; ++i) objects += "{\"a\":";
  objects += "1" + std::string(10000, '}');
  EXPECT_EQ(ParseError(objects), expected);
  EXPECT_EQ(ParseError("{\"name\": " + std::string(10000, '[') + std::string(10000, ']') + "}"),
            expected);
}

TEST(ParseTest, NestingUpToTheLimitIsAStructureError) {
  // Deep but within the limit: reported as a wrong type, not a crash or a depth error.
  std::string junk = std::string(kMaxJsonDepth - 1, '[') + std::string(kMaxJsonDepth - 1, ']');
  EXPECT_EQ(ParseError("{\"name\": " + junk + "}"), "name: expected a string, got array");
}

TEST(ParseTest, HugeStrings) {
  // Under the size limit: parses, and validation names the field.
  Json j = FullDefinition();
  j["instructions"] = std::string(500000, 'x');
  j["name"] = std::string(100000, 'n');
  absl::StatusOr<AgentDefinition> d = ParseAgentDefinitionJson(j.dump());
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->instructions().size(), 500000u);
  EXPECT_THAT(std::string(ValidateAgentDefinition(*d).message()),
              StartsWith("name: at most 128 characters, got 100000"));
  // Over the size limit: rejected before parsing.
  j["instructions"] = std::string(kMaxDefinitionBytes, 'x');
  EXPECT_THAT(ParseError(j), StartsWith("$: the definition is "));
  // A huge unknown key is shortened in the message and gets no suggestion.
  j = FullDefinition();
  j[std::string(10000, 'k')] = 1;
  EXPECT_EQ(ParseError(j), "$: unknown field \"" + std::string(61, 'k') + "\"...");
}

TEST(ParseTest, ParseAndValidateCombinesBoth) {
  EXPECT_TRUE(ParseAndValidateAgentDefinitionJson(FullDefinition().dump()).ok());
  EXPECT_THAT(
      std::string(ParseAndValidateAgentDefinitionJson(R"({"model": "m"})").status().message()),
      StartsWith("name: required"));
  EXPECT_THAT(std::string(ParseAndValidateAgentDefinitionJson("[").status().message()),
              StartsWith("$: not valid JSON"));
}

// ---------------------------------------------------------------------------------------------
// Validation: each rule, with its path.

TEST(ValidateTest, Name) {
  EXPECT_THAT(ValidationError([](Json& j) { j.erase("name"); }), StartsWith("name: required"));
  EXPECT_THAT(ValidationError([](Json& j) { j["name"] = std::string(129, 'a'); }),
              StartsWith("name: at most 128 characters"));
  EXPECT_EQ(ValidationError([](Json& j) { j["name"] = std::string(128, 'a'); }), "OK");
  // Characters, not bytes: 128 two-byte characters are fine.
  EXPECT_EQ(ValidationError([](Json& j) {
              std::string s;
              for (int i = 0; i < 128; ++i) s += "\xc3\xa9";
              j["name"] = s;
            }),
            "OK");
}

TEST(ValidateTest, Description) {
  EXPECT_THAT(ValidationError([](Json& j) { j["description"] = std::string(1025, 'd'); }),
              StartsWith("description: at most 1024 characters"));
  EXPECT_EQ(ValidationError([](Json& j) { j["description"] = std::string(1024, 'd'); }), "OK");
}

TEST(ValidateTest, Model) {
  EXPECT_THAT(ValidationError([](Json& j) { j.erase("model"); }), StartsWith("model: required"));
  EXPECT_THAT(ValidationError([](Json& j) { j["model"] = ""; }), StartsWith("model: required"));
}

TEST(ValidateTest, ExtractiveModel) {
  EXPECT_EQ(ValidationError([](Json& j) {
              j["model"] = "extractive";
              j["tools"].erase(2);
              j["tools"].erase(1);
            }),
            "OK");
  EXPECT_THAT(ValidationError([](Json& j) {
                j["model"] = "extractive";
                j["tools"] = Json::array();
                j["knowledge"].erase("collections");
              }),
              StartsWith("knowledge.collections: required with model \"extractive\""));
  EXPECT_THAT(ValidationError([](Json& j) {
                j["model"] = "extractive";
                j["tools"].erase(2);
              }),
              StartsWith("tools[1].mcpServer: MCP tools need a generative model"));
}

TEST(ValidateTest, MaxIterations) {
  EXPECT_THAT(ValidationError([](Json& j) { j["maxIterations"] = 51; }),
              StartsWith("maxIterations: must be in [0, 50]"));
  EXPECT_THAT(ValidationError([](Json& j) { j["maxIterations"] = -1; }),
              StartsWith("maxIterations: must be in [0, 50]"));
  EXPECT_EQ(ValidationError([](Json& j) { j["maxIterations"] = 50; }), "OK");
  EXPECT_EQ(ValidationError([](Json& j) { j["maxIterations"] = 0; }), "OK");
}

TEST(ValidateTest, ToolCount) {
  EXPECT_THAT(ValidationError([](Json& j) {
                j["tools"] = Json::array();
                for (int i = 0; i < 33; ++i)
                  j["tools"].push_back(HttpServer("s" + std::to_string(i)));
              }),
              StartsWith("tools: at most 32 tools, got 33"));
  EXPECT_EQ(ValidationError([](Json& j) {
              j["tools"] = Json::array();
              for (int i = 0; i < 32; ++i)
                j["tools"].push_back(HttpServer("s" + std::to_string(i)));
            }),
            "OK");
}

TEST(ValidateTest, StarterMessages) {
  EXPECT_THAT(ValidationError([](Json& j) {
                j["starterMessages"] = Json::array();
                for (int i = 0; i < 9; ++i) j["starterMessages"].push_back("hi");
              }),
              StartsWith("starterMessages: at most 8 messages, got 9"));
  EXPECT_THAT(ValidationError([](Json& j) { j["starterMessages"][0] = ""; }),
              StartsWith("starterMessages[0]: must not be empty"));
}

TEST(ValidateTest, KnowledgeTopK) {
  EXPECT_EQ(ValidationError([](Json& j) { j["knowledge"]["topK"] = 51; }),
            "knowledge.topK: must be in [0, 50]");
  EXPECT_EQ(ValidationError([](Json& j) { j["knowledge"]["topK"] = -1; }),
            "knowledge.topK: must be in [0, 50]");
  EXPECT_EQ(ValidationError([](Json& j) { j["knowledge"]["topK"] = 50; }), "OK");
}

TEST(ValidateTest, KnowledgeDetails) {
  EXPECT_THAT(ValidationError([](Json& j) { j["knowledge"]["collections"][1] = ""; }),
              StartsWith("knowledge.collections[1]: must not be empty"));
  EXPECT_THAT(ValidationError([](Json& j) { j["knowledge"]["hybrid"]["rerankCandidates"] = 201; }),
              StartsWith("knowledge.hybrid.rerankCandidates: must be in [0, 200]"));
  EXPECT_THAT(ValidationError([](Json& j) { j["knowledge"]["hybrid"]["vectorWeight"] = -1; }),
              StartsWith("knowledge.hybrid.vectorWeight: must be >= 0"));
  EXPECT_THAT(ValidationError([](Json& j) {
                j["knowledge"]["filters"]["modifiedBefore"] = "2025-01-01T00:00:00Z";
              }),
              StartsWith("knowledge.filters.modifiedBefore: must be later than modifiedAfter"));
}

TEST(ValidateTest, KnowledgeSearchNeedsCollections) {
  EXPECT_THAT(ValidationError([](Json& j) { j["knowledge"].erase("collections"); }),
              StartsWith("tools[0].knowledgeSearch: requires knowledge.collections"));
  EXPECT_THAT(ValidationError([](Json& j) { j.erase("knowledge"); }),
              StartsWith("tools[0].knowledgeSearch: requires knowledge.collections"));
}

TEST(ValidateTest, AtMostOneKnowledgeSearchTool) {
  EXPECT_THAT(ValidationError([](Json& j) { j["tools"].push_back(j["tools"][0]); }),
              StartsWith("tools[3].knowledgeSearch: only one knowledgeSearch tool is allowed; "
                         "tools[0] is one already"));
}

TEST(ValidateTest, KnowledgeSearchName) {
  EXPECT_THAT(ValidationError([](Json& j) { j["tools"][0]["knowledgeSearch"]["name"] = "a b"; }),
              StartsWith("tools[0].knowledgeSearch.name: must be 1 to 64 characters"));
  EXPECT_EQ(ValidationError([](Json& j) { j["tools"][0]["knowledgeSearch"] = Json::object(); }),
            "OK");
}

TEST(ValidateTest, ToolKindRequired) {
  EXPECT_EQ(ValidationError([](Json& j) { j["tools"][1] = Json::object(); }),
            "tools[1]: must set knowledgeSearch or mcpServer");
}

TEST(ValidateTest, ServerName) {
  EXPECT_THAT(ValidationError([](Json& j) { Mcp(j, 1).erase("name"); }),
              StartsWith("tools[1].mcpServer.name: required"));
  EXPECT_THAT(ValidationError([](Json& j) { Mcp(j, 1)["name"] = std::string(33, 'a'); }),
              StartsWith("tools[1].mcpServer.name: must be 1 to 32 characters"));
  EXPECT_THAT(ValidationError([](Json& j) { Mcp(j, 1)["name"] = "my-files"; }),
              StartsWith("tools[1].mcpServer.name: must be 1 to 32 characters of letters, digits "
                         "and '_'"));
  EXPECT_EQ(ValidationError([](Json& j) { Mcp(j, 1)["name"] = std::string(32, '_'); }), "OK");
}

TEST(ValidateTest, ServerNamesAreUnique) {
  EXPECT_EQ(ValidationError([](Json& j) { Mcp(j, 2)["name"] = "files"; }),
            "tools[2].mcpServer.name: \"files\" is already the name of tools[1].mcpServer");
}

TEST(ValidateTest, TransportRequired) {
  EXPECT_THAT(ValidationError([](Json& j) { Mcp(j, 1).erase("transport"); }),
              StartsWith("tools[1].mcpServer.transport: required"));
  EXPECT_THAT(
      ValidationError([](Json& j) { Mcp(j, 1)["transport"] = "MCP_TRANSPORT_UNSPECIFIED"; }),
      StartsWith("tools[1].mcpServer.transport: required"));
}

TEST(ValidateTest, UnknownTransportNumber) {
  // Proto3 enums are open: the number parses and validation rejects it.
  EXPECT_EQ(ValidationError([](Json& j) { Mcp(j, 1)["transport"] = 7; }),
            "tools[1].mcpServer.transport: must be MCP_TRANSPORT_STDIO or "
            "MCP_TRANSPORT_STREAMABLE_HTTP");
}

TEST(ValidateTest, StdioRules) {
  EXPECT_EQ(ValidationError([](Json& j) { Mcp(j, 1).erase("command"); }),
            "tools[1].mcpServer.command: required for MCP_TRANSPORT_STDIO");
  EXPECT_EQ(ValidationError([](Json& j) { Mcp(j, 1)["url"] = "https://x.example"; }),
            "tools[1].mcpServer.url: not allowed with MCP_TRANSPORT_STDIO");
  EXPECT_EQ(ValidationError([](Json& j) {
              Mcp(j, 1)["auth"] = {{"bearer", {{"credentialRef", "c"}}}};
            }),
            "tools[1].mcpServer.auth: not allowed with MCP_TRANSPORT_STDIO");
  EXPECT_THAT(ValidationError([](Json& j) { Mcp(j, 1)["env"]["1BAD"] = "x"; }),
              StartsWith("tools[1].mcpServer.env[\"1BAD\"]: not a valid environment variable"));
  EXPECT_THAT(ValidationError([](Json& j) { Mcp(j, 1)["secretEnv"]["NODE_ENV"] = "cred"; }),
              StartsWith("tools[1].mcpServer.secretEnv[\"NODE_ENV\"]: also set in env"));
  EXPECT_THAT(ValidationError([](Json& j) { Mcp(j, 1)["secretEnv"]["API_TOKEN"] = ""; }),
              StartsWith("tools[1].mcpServer.secretEnv[\"API_TOKEN\"]: must name a credential"));
}

TEST(ValidateTest, StreamableHttpRules) {
  EXPECT_EQ(ValidationError([](Json& j) { Mcp(j, 2).erase("url"); }),
            "tools[2].mcpServer.url: required for MCP_TRANSPORT_STREAMABLE_HTTP");
  for (const char* bad : {"ftp://mcp.acme.example", "mcp.acme.example", "https://", "https:///x",
                          "http://host:99999/", "http://a b/", "https://host:/"}) {
    EXPECT_EQ(ValidationError([&](Json& j) { Mcp(j, 2)["url"] = bad; }),
              "tools[2].mcpServer.url: must be an http or https URL")
        << bad;
  }
  for (const char* good : {"http://localhost:3000/mcp", "HTTPS://Mcp.Acme.Example",
                           "https://user@[::1]:8443/mcp?x=1", "http://10.0.0.1"}) {
    EXPECT_EQ(ValidationError([&](Json& j) { Mcp(j, 2)["url"] = good; }), "OK") << good;
  }
  const std::string why = ": not allowed with MCP_TRANSPORT_STREAMABLE_HTTP";
  EXPECT_EQ(ValidationError([](Json& j) { Mcp(j, 2)["command"] = "npx"; }),
            "tools[2].mcpServer.command" + why);
  EXPECT_EQ(ValidationError([](Json& j) { Mcp(j, 2)["args"] = {"-y"}; }),
            "tools[2].mcpServer.args" + why);
  EXPECT_EQ(ValidationError([](Json& j) {
              Mcp(j, 2)["env"] = {{"A", "b"}};
            }),
            "tools[2].mcpServer.env" + why);
  EXPECT_EQ(ValidationError([](Json& j) {
              Mcp(j, 2)["secretEnv"] = {{"A", "b"}};
            }),
            "tools[2].mcpServer.secretEnv" + why);
  EXPECT_EQ(ValidationError([](Json& j) { Mcp(j, 2)["cwd"] = "/tmp"; }),
            "tools[2].mcpServer.cwd" + why);
  EXPECT_EQ(ValidationError([](Json& j) { Mcp(j, 2)["auth"]["oauth"]["credentialRef"] = ""; }),
            "tools[2].mcpServer.auth.oauth.credentialRef: required");
  EXPECT_EQ(ValidationError([](Json& j) {
              Mcp(j, 2)["auth"] = {{"bearer", Json::object()}};
            }),
            "tools[2].mcpServer.auth.bearer.credentialRef: required");
}

TEST(ValidateTest, Durations) {
  EXPECT_EQ(ValidationError([](Json& j) { j["toolTimeout"] = "-1s"; }),
            "toolTimeout: must not be negative");
  EXPECT_EQ(ValidationError([](Json& j) { Mcp(j, 1)["timeout"] = "-0.5s"; }),
            "tools[1].mcpServer.timeout: must not be negative");
  EXPECT_THAT(ValidationError([](Json& j) { Mcp(j, 1)["timeout"] = "600.000000001s"; }),
              StartsWith("tools[1].mcpServer.timeout: must be at most 10m"));
  EXPECT_THAT(ValidationError([](Json& j) { j["toolTimeout"] = "3600s"; }),
              StartsWith("toolTimeout: must be at most 10m"));
  EXPECT_EQ(ValidationError([](Json& j) {
              j["toolTimeout"] = "600s";
              Mcp(j, 1)["timeout"] = "0s";
            }),
            "OK");
}

TEST(ValidateTest, MalformedDurationInAMessage) {
  absl::StatusOr<AgentDefinition> d = ParseAgentDefinitionJson(FullDefinition().dump());
  ASSERT_TRUE(d.ok());
  d->mutable_tool_timeout()->set_seconds(5);
  d->mutable_tool_timeout()->set_nanos(-1);
  EXPECT_THAT(std::string(ValidateAgentDefinition(*d).message()),
              StartsWith("toolTimeout: not a valid duration"));
}

TEST(ValidateTest, CompletionArgs) {
  struct Case {
    std::string field;
    Json value;
    std::string error;
  };
  const Case cases[] = {
      {"temperature", -0.1, "completionArgs.temperature: must be >= 0"},
      {"temperature", "NaN", "completionArgs.temperature: must be >= 0"},
      {"topP", 0, "completionArgs.topP: must be in (0, 1]"},
      {"topP", 1.5, "completionArgs.topP: must be in (0, 1]"},
      {"repetitionPenalty", 0, "completionArgs.repetitionPenalty: must be > 0"},
      {"maxTokens", -1, "completionArgs.maxTokens: must be >= 0"},
      {"topK", -1, "completionArgs.topK: must be >= 0"},
      {"stop", Json::array({""}), "completionArgs.stop[0]: must be 1 to 64 bytes"},
      {"stop", Json::array({"ok", std::string(65, 's')}),
       "completionArgs.stop[1]: must be 1 to 64 bytes"},
      {"stop", Json(std::vector<std::string>(17, "x")),
       "completionArgs.stop: at most 16 stop sequences, got 17"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ValidationError([&](Json& j) { j["completionArgs"][c.field] = c.value; }), c.error)
        << c.field << " = " << c.value;
  }
  for (const auto& [field, value] : std::vector<std::pair<std::string, Json>>{
           {"temperature", 0},
           {"topP", 1},
           {"maxTokens", 0},
           {"stop", Json(std::vector<std::string>(16, std::string(64, 's')))}}) {
    EXPECT_EQ(ValidationError([&](Json& j) { j["completionArgs"][field] = value; }), "OK") << field;
  }
}

TEST(ValidateTest, SharingEmails) {
  EXPECT_EQ(ValidationError([](Json& j) { j["sharing"]["users"][0] = "ann"; }),
            "sharing.users[0]: \"ann\" is not an email address");
  for (const char* bad : {"fin@", "@acme.example", "a@b", "a b@acme.example", "a@@acme.example",
                          "a@acme..example", "group:fin@acme.example,"}) {
    EXPECT_THAT(ValidationError([&](Json& j) { j["sharing"]["groups"] = {bad}; }),
                StartsWith("sharing.groups[0]: "))
        << bad;
  }
}

TEST(ValidateTest, ConfirmToolsWithinAllowedTools) {
  EXPECT_EQ(ValidationError([](Json& j) {
              Mcp(j, 1)["confirmTools"] = {"write_file", "move_file"};
            }),
            "tools[1].mcpServer.confirmTools[1]: \"move_file\" is not in allowedTools");
  EXPECT_EQ(ValidationError([](Json& j) { Mcp(j, 1)["confirmTools"] = {"*"}; }), "OK");
  EXPECT_EQ(ValidationError([](Json& j) {
              Mcp(j, 1).erase("allowedTools");
              Mcp(j, 1)["confirmTools"] = {"move_file"};
            }),
            "OK");
  EXPECT_EQ(ValidationError([](Json& j) { Mcp(j, 1)["allowedTools"][0] = ""; }),
            "tools[1].mcpServer.allowedTools[0]: must not be empty");
}

TEST(ValidateTest, AllProblemsAreJoined) {
  std::string error = ValidationError([](Json& j) {
    j.erase("name");
    j["knowledge"]["topK"] = 99;
    Mcp(j, 2)["url"] = "gopher://x";
  });
  EXPECT_EQ(error,
            "name: required; knowledge.topK: must be in [0, 50]; tools[2].mcpServer.url: must be "
            "an http or https URL");
}

TEST(ValidateTest, ManyProblemsAreCapped) {
  std::string error = ValidationError([](Json& j) {
    j["starterMessages"] = Json(std::vector<std::string>(8, ""));
    j["sharing"]["users"] = Json(std::vector<std::string>(8, "x"));
  });
  EXPECT_THAT(error, HasSubstr(" (and 6 more)"));
}

TEST(ValidateTest, EmptyDefinitionNeedsNameAndModel) {
  EXPECT_EQ(std::string(ValidateAgentDefinition(AgentDefinition()).message()),
            "name: required; model: required: a generation model id, or \"extractive\" to answer "
            "with passages of the knowledge");
}

// ---------------------------------------------------------------------------------------------
// Printing and defaults.

TEST(ToJsonTest, RoundTrip) {
  absl::StatusOr<AgentDefinition> d = ParseAgentDefinitionJson(FullDefinition().dump());
  ASSERT_TRUE(d.ok()) << d.status();
  std::string json = AgentDefinitionToJson(*d);
  EXPECT_THAT(json, HasSubstr("\n  \"completionArgs\": {"));
  EXPECT_THAT(json, HasSubstr("\"mcpServer\""));
  EXPECT_THAT(json, Not(HasSubstr("completion_args")));
  EXPECT_THAT(json, HasSubstr("\"citationsEnabled\": false"));
  absl::StatusOr<AgentDefinition> again = ParseAgentDefinitionJson(json);
  ASSERT_TRUE(again.ok()) << again.status() << "\n" << json;
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(*d, *again)) << json;
  EXPECT_EQ(AgentDefinitionToJson(*again), json);
}

TEST(ToJsonTest, FieldOrderFollowsTheProto) {
  AgentDefinition d;
  d.set_model("m");
  d.set_name("n");
  std::string json = AgentDefinitionToJson(d);
  EXPECT_EQ(json, "{\n  \"name\": \"n\",\n  \"model\": \"m\"\n}\n");
}

TEST(ToJsonTest, RoundTripOfMessageBuiltInCode) {
  AgentDefinition d;
  d.set_name("x");
  d.set_model("extractive");
  d.mutable_completion_args()->set_temperature(0.2f);
  d.mutable_completion_args()->set_seed(~0ull);
  d.mutable_tool_timeout()->set_seconds(1);
  d.mutable_tool_timeout()->set_nanos(5);
  d.add_tools()->mutable_knowledge_search();
  d.add_tools();  // A tool without a kind survives the round trip too.
  d.set_citations_enabled(true);
  auto* env = d.add_tools()->mutable_mcp_server()->mutable_env();
  (*env)["K"] = "v \"quoted\" \xc3\xa9";
  absl::StatusOr<AgentDefinition> again = ParseAgentDefinitionJson(AgentDefinitionToJson(d));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(d, *again))
      << AgentDefinitionToJson(d);
}

TEST(DefaultsTest, MaxIterations) {
  AgentDefinition d;
  EXPECT_EQ(EffectiveMaxIterations(d), 8);
  d.set_max_iterations(3);
  EXPECT_EQ(EffectiveMaxIterations(d), 3);
}

TEST(DefaultsTest, ToolTimeout) {
  AgentDefinition d;
  tessera::v1::McpServerTool server;
  EXPECT_EQ(EffectiveToolTimeout(d, nullptr), absl::Seconds(60));
  EXPECT_EQ(EffectiveToolTimeout(d, &server), absl::Seconds(60));
  d.mutable_tool_timeout()->set_seconds(45);
  EXPECT_EQ(EffectiveToolTimeout(d, nullptr), absl::Seconds(45));
  EXPECT_EQ(EffectiveToolTimeout(d, &server), absl::Seconds(45));
  server.mutable_timeout()->set_nanos(500000000);
  EXPECT_EQ(EffectiveToolTimeout(d, &server), absl::Milliseconds(500));
  server.mutable_timeout()->set_nanos(0);  // Zero means the agent's.
  EXPECT_EQ(EffectiveToolTimeout(d, &server), absl::Seconds(45));
}

TEST(DefaultsTest, CitationsEnabled) {
  AgentDefinition d;
  EXPECT_TRUE(CitationsEnabled(d));
  d.set_citations_enabled(false);
  EXPECT_FALSE(CitationsEnabled(d));
  d.set_citations_enabled(true);
  EXPECT_TRUE(CitationsEnabled(d));
}

TEST(DefaultsTest, TopK) {
  AgentDefinition d;
  EXPECT_EQ(EffectiveTopK(d), 8);
  d.mutable_knowledge()->set_top_k(20);
  EXPECT_EQ(EffectiveTopK(d), 20);
}

TEST(DefaultsTest, Extractive) {
  AgentDefinition d;
  d.set_model("extractive");
  EXPECT_TRUE(IsExtractive(d));
  d.set_model("mistral-7b");
  EXPECT_FALSE(IsExtractive(d));
}

}  // namespace
}  // namespace tessera::agents
