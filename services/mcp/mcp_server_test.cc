#include "services/mcp/mcp_server.h"

#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/mcp/stdio_server.h"
#include "services/mcp/testdata/fake_retrieval.h"

namespace tessera::mcp {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class McpServerTest : public ::testing::Test {
 protected:
  McpServerTest() : server_(Options()) { context_.bearer_key = "tsk_ann"; }
  McpServerOptions Options() {
    McpServerOptions o;
    o.retrieval_channel = [this] { return retrieval_.channel(); };
    return o;
  }
  Json Call(const Json& message) {
    std::optional<Json> reply = server_.Handle(message, session_, context_);
    return reply.value_or(Json());
  }
  Json Req(int id, const std::string& method, Json params = Json::object()) {
    return Json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", params}};
  }
  void Initialize() {
    Json r = Call(Req(1, "initialize", {{"protocolVersion", "2025-11-25"}, {"capabilities", Json::object()},
                                        {"clientInfo", {{"name", "t"}, {"version", "1"}}}}));
    ASSERT_EQ(r["result"]["protocolVersion"], "2025-11-25");
    EXPECT_FALSE(server_.Handle(Json{{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}}, session_, context_));
  }
  static Json Modern(Json params = Json::object()) {
    params["_meta"] = {{kMetaProtocolVersion, "2026-07-28"}, {kMetaClientCapabilities, Json::object()}};
    return params;
  }

  testing::FakeRetrieval retrieval_;
  McpServer server_;
  McpSession session_;
  McpCallContext context_;
};

TEST_F(McpServerTest, NegotiatesLegacyVersions) {
  Json r = Call(Req(1, "initialize", {{"protocolVersion", "2025-06-18"}, {"capabilities", Json::object()}}));
  EXPECT_EQ(r["result"]["protocolVersion"], "2025-06-18");
  EXPECT_EQ(r["result"]["serverInfo"]["name"], "tessera");
  EXPECT_TRUE(r["result"]["capabilities"].contains("tools"));
  r = Call(Req(2, "initialize", {{"protocolVersion", "2099-01-01"}, {"capabilities", Json::object()}}));
  EXPECT_EQ(r["result"]["protocolVersion"], "2025-11-25");
  r = Call(Req(3, "initialize", {{"capabilities", Json::object()}}));
  EXPECT_EQ(r["error"]["code"], kInvalidParams);
}

TEST_F(McpServerTest, RefusesRequestsBeforeInitializeButAnswersPing) {
  EXPECT_EQ(Call(Req(1, "tools/list"))["error"]["code"], kInvalidRequest);
  EXPECT_EQ(Call(Req(2, "ping"))["result"], Json::object());
}

TEST_F(McpServerTest, ModernEnvelopeAndDiscover) {
  Json r = Call(Req(1, "server/discover", Modern()));
  EXPECT_EQ(r["result"]["supportedVersions"], Json::array({"2026-07-28"}));
  EXPECT_EQ(r["result"]["resultType"], "complete");
  EXPECT_EQ(r["result"]["_meta"][kMetaServerInfo]["name"], "tessera");
  r = Call(Req(2, "tools/list", Modern()));
  EXPECT_EQ(r["result"]["tools"][0]["name"], "search");
  EXPECT_EQ(r["result"]["cacheScope"], "private");
  Json bad = Modern();
  bad["_meta"][kMetaProtocolVersion] = "1900-01-01";
  r = Call(Req(3, "tools/list", bad));
  EXPECT_EQ(r["error"]["code"], kUnsupportedVersion);
  EXPECT_EQ(r["error"]["data"]["supported"], Json::array({"2026-07-28"}));
  Json no_caps = {{"_meta", {{kMetaProtocolVersion, "2026-07-28"}}}};
  EXPECT_EQ(Call(Req(4, "tools/list", no_caps))["error"]["code"], kInvalidParams);
}

TEST_F(McpServerTest, JsonRpcErrors) {
  Initialize();
  EXPECT_EQ(Call(Req(5, "no/such/method"))["error"]["code"], kMethodNotFound);
  EXPECT_EQ(Call(Req(5, "no/such/method"))["id"], 5);
  Json parse = *server_.HandleText("{not json", session_, context_);
  EXPECT_EQ(parse["error"]["code"], kParseError);
  EXPECT_TRUE(parse["id"].is_null());
  EXPECT_EQ(Call(Json{{"jsonrpc", "2.0"}, {"id", nullptr}, {"method", "ping"}})["error"]["code"], kInvalidRequest);
  EXPECT_EQ(Call(Json{{"jsonrpc", "1.0"}, {"id", 1}, {"method", "ping"}})["error"]["code"], kInvalidRequest);
  EXPECT_EQ(Call(Json::array({Req(1, "ping")}))["error"]["code"], kInvalidRequest);
  EXPECT_EQ(Call(Req(6, "tools/list", Json::array()))["error"]["code"], kInvalidParams);
  // Notifications (known or not) and client responses never get an answer.
  EXPECT_FALSE(server_.Handle(Json{{"jsonrpc", "2.0"}, {"method", "notifications/cancelled"},
                                   {"params", {{"requestId", 1}}}}, session_, context_));
  EXPECT_FALSE(server_.Handle(Json{{"jsonrpc", "2.0"}, {"method", "whatever"}}, session_, context_));
  EXPECT_FALSE(server_.Handle(Json{{"jsonrpc", "2.0"}, {"id", 0}, {"result", Json::object()}}, session_, context_));
}

TEST_F(McpServerTest, SearchForwardsBearerKeyAndCites) {
  Initialize();
  Json r = Call(Req(2, "tools/call", {{"name", "search"}, {"arguments", {{"query", "revenue"}, {"top_k", 3}}}}));
  ASSERT_TRUE(r.contains("result")) << r.dump();
  const Json& result = r["result"];
  EXPECT_FALSE(result.value("isError", false)) << result.dump();
  EXPECT_THAT(result["content"][0]["text"].get<std::string>(), HasSubstr("[1] Q3 finance memo <https://drive.example.com/fin>"));
  EXPECT_EQ(result["structuredContent"]["results"][0]["index"], 1);
  EXPECT_EQ(result["structuredContent"]["results"][0]["collection"], "default");
  // Every internal call carried the caller's key.
  for (const std::string& a : retrieval_.service().authorizations()) EXPECT_EQ(a, "Bearer tsk_ann");
  ASSERT_EQ(retrieval_.service().searches().size(), 1u);
  EXPECT_EQ(retrieval_.service().searches()[0].top_k(), 3);
  EXPECT_THAT(retrieval_.service().searches()[0].collections(), ElementsAre("default"));

  // Another key sees other documents: permissions are the caller's.
  context_.bearer_key = "tsk_bob";
  r = Call(Req(3, "tools/call", {{"name", "search"}, {"arguments", {{"query", "x"}, {"collections", {"c1"}}}}}));
  EXPECT_EQ(r["result"]["structuredContent"]["results"][0]["title"], "Roadmap 2026");
  EXPECT_EQ(r["result"]["structuredContent"]["results"][0]["collection"], "c1");
}

TEST_F(McpServerTest, SearchErrorsAreToolErrors) {
  Initialize();
  Json r = Call(Req(2, "tools/call", {{"name", "search"}, {"arguments", {{"top_k", 3}}}}));
  EXPECT_TRUE(r["result"]["isError"].get<bool>());
  EXPECT_THAT(r["result"]["content"][0]["text"].get<std::string>(), HasSubstr("query"));
  r = Call(Req(3, "tools/call", {{"name", "search"}, {"arguments", {{"query", "q"}, {"top_k", 1000}}}}));
  EXPECT_TRUE(r["result"]["isError"].get<bool>());
  context_.bearer_key = "";
  r = Call(Req(4, "tools/call", {{"name", "search"}, {"arguments", {{"query", "q"}}}}));
  EXPECT_TRUE(r["result"]["isError"].get<bool>());
  EXPECT_THAT(r["result"]["content"][0]["text"].get<std::string>(), HasSubstr("UNAUTHENTICATED"));
  // Unknown tools are protocol errors.
  EXPECT_EQ(Call(Req(5, "tools/call", {{"name", "nope"}}))["error"]["code"], kInvalidParams);
}

TEST_F(McpServerTest, ToolsListPaginates) {
  McpServerOptions o = Options();
  o.tools_page_size = 2;
  McpServer server(o);
  for (const char* name : {"b_tool", "a_tool", "c_tool"}) {
    ASSERT_TRUE(server.AddTool({Json{{"name", name}, {"inputSchema", {{"type", "object"}}}},
                                [](const Json&, const McpCallContext&) -> absl::StatusOr<Json> {
                                  return Json{{"content", Json::array()}};
                                }}).ok());
  }
  EXPECT_FALSE(server.AddTool({Json{{"name", "a_tool"}, {"inputSchema", {{"type", "object"}}}},
                               [](const Json&, const McpCallContext&) -> absl::StatusOr<Json> { return Json(); }})
                   .ok());
  McpSession session;
  std::vector<std::string> names;
  Json params = Modern();
  for (int page = 0; page < 5; ++page) {
    Json r = *server.Handle(Req(page + 1, "tools/list", params), session, context_);
    for (const Json& t : r["result"]["tools"]) names.push_back(t["name"]);
    if (!r["result"].contains("nextCursor")) break;
    params["cursor"] = r["result"]["nextCursor"];
  }
  EXPECT_THAT(names, ElementsAre("a_tool", "b_tool", "c_tool", "search"));
  params["cursor"] = "bogus";
  EXPECT_EQ((*server.Handle(Req(9, "tools/list", params), session, context_))["error"]["code"], kInvalidParams);
}

TEST_F(McpServerTest, StdioIsNewlineDelimited) {
  std::istringstream in(
      R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{}}})"
      "\n\n"
      R"({"jsonrpc":"2.0","method":"notifications/initialized"})"
      "\n"
      "garbage\n"
      R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"search","arguments":{"query":"q"}}})"
      "\n");
  std::ostringstream out;
  ASSERT_TRUE(RunMcpStdio(in, out, server_, context_).ok());
  std::vector<Json> lines;
  std::istringstream read(out.str());
  for (std::string line; std::getline(read, line);) lines.push_back(Json::parse(line));
  ASSERT_EQ(lines.size(), 3u) << out.str();
  EXPECT_EQ(lines[0]["id"], 1);
  EXPECT_EQ(lines[1]["error"]["code"], kParseError);
  EXPECT_EQ(lines[2]["id"], 2);
  EXPECT_EQ(lines[2]["result"]["structuredContent"]["results"][0]["document_id"], "doc-fin");
}

}  // namespace
}  // namespace tessera::mcp
