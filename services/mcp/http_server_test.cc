#include "services/mcp/http_server.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "agents/mcp/auth.h"
#include "agents/mcp/client.h"
#include "agents/mcp/http_transport.h"
#include "agents/mcp/sse_parser.h"
#include "common/http/curl_http_transport.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/mcp/testdata/fake_retrieval.h"

namespace tessera::mcp {
namespace {

using ::testing::HasSubstr;

constexpr char kInit[] =
    R"({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})";

class McpHttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto curl = CurlHttpTransport::Create({});
    ASSERT_TRUE(curl.ok());
    http_ = std::move(*curl);
  }
  void Start(bool sse = false) {
    McpHttpServerOptions o;
    o.server.retrieval_channel = [this] { return retrieval_.channel(); };
    o.validate_key = [](const std::string& key) -> absl::StatusOr<McpKeyInfo> {
      if (key == "tsk_ann" || key == "tsk_bob") return McpKeyInfo{"id_" + key};
      return absl::UnauthenticatedError("unknown key");
    };
    o.allowed_origins = {"https://app.example.com"};
    o.max_body_bytes = 64 << 10;
    o.sse_responses = sse;
    auto server = StartMcpHttpServer(std::move(o));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
  }
  HttpResponse Send(const std::string& method, const std::string& body,
                    std::vector<std::pair<std::string, std::string>> extra = {},
                    const std::string& key = "tsk_ann") {
    HttpRequest r;
    r.method = method;
    r.url = server_->url();
    r.body = body;
    r.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json, text/event-stream"}};
    if (!key.empty()) r.headers.push_back({"Authorization", "Bearer " + key});
    for (auto& h : extra) r.headers.push_back(h);
    absl::StatusOr<HttpResponse> resp = http_->Send(r);
    EXPECT_TRUE(resp.ok()) << resp.status();
    return resp.ok() ? *resp : HttpResponse{};
  }
  Json Body(const HttpResponse& r) { return Json::parse(r.body); }
  std::string InitSession() {
    HttpResponse r = Send("POST", kInit);
    EXPECT_EQ(r.status_code, 200) << r.body;
    return r.headers.Get("Mcp-Session-Id").value_or("");
  }

  testing::FakeRetrieval retrieval_;
  std::unique_ptr<McpHttpServer> server_;
  // Destroyed first: closing its keep-alive connections lets Stop() return at once.
  std::unique_ptr<CurlHttpTransport> http_;
};

TEST_F(McpHttpServerTest, BindsLoopbackAndRunsASession) {
  Start();
  EXPECT_THAT(server_->url(), HasSubstr("http://127.0.0.1:"));
  HttpResponse r = Send("POST", kInit);
  ASSERT_EQ(r.status_code, 200) << r.body;
  EXPECT_THAT(r.headers.Get("Content-Type").value_or(""), HasSubstr("application/json"));
  const std::string sid = r.headers.Get("Mcp-Session-Id").value_or("");
  EXPECT_EQ(sid.size(), 64u);  // 32 random bytes, hex
  EXPECT_NE(sid, InitSession());
  EXPECT_EQ(Body(r)["result"]["protocolVersion"], "2025-11-25");

  std::vector<std::pair<std::string, std::string>> h = {{"Mcp-Session-Id", sid}, {"MCP-Protocol-Version", "2025-11-25"}};
  r = Send("POST", R"({"jsonrpc":"2.0","method":"notifications/initialized"})", h);
  EXPECT_EQ(r.status_code, 202);
  EXPECT_TRUE(r.body.empty());
  r = Send("POST", R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"search","arguments":{"query":"q"}}})", h);
  ASSERT_EQ(r.status_code, 200);
  EXPECT_EQ(Body(r)["result"]["structuredContent"]["results"][0]["title"], "Q3 finance memo");
  EXPECT_EQ(retrieval_.service().authorizations().back(), "Bearer tsk_ann");

  // Another key cannot use this session.
  EXPECT_EQ(Send("POST", R"({"jsonrpc":"2.0","id":3,"method":"ping"})", h, "tsk_bob").status_code, 404);
  // Missing and unknown sessions; bad protocol version header.
  EXPECT_EQ(Send("POST", R"({"jsonrpc":"2.0","id":3,"method":"ping"})").status_code, 400);
  EXPECT_EQ(Send("POST", R"({"jsonrpc":"2.0","id":3,"method":"ping"})", {{"Mcp-Session-Id", "nope"}}).status_code, 404);
  EXPECT_EQ(Send("POST", R"({"jsonrpc":"2.0","id":3,"method":"ping"})",
                 {{"Mcp-Session-Id", sid}, {"MCP-Protocol-Version", "1999-01-01"}}).status_code, 400);
  EXPECT_EQ(Send("GET", "", h).status_code, 405);
  // DELETE ends it; afterwards 404.
  EXPECT_EQ(Send("DELETE", "", h).status_code, 200);
  EXPECT_EQ(Send("POST", R"({"jsonrpc":"2.0","id":4,"method":"ping"})", h).status_code, 404);
  EXPECT_EQ(Send("DELETE", "", h).status_code, 404);
}

TEST_F(McpHttpServerTest, RequiresBearerKey) {
  Start();
  HttpResponse r = Send("POST", kInit, {}, "");
  EXPECT_EQ(r.status_code, 401);
  EXPECT_THAT(r.headers.Get("WWW-Authenticate").value_or(""), HasSubstr("Bearer"));
  r = Send("POST", kInit, {}, "tsk_wrong");
  EXPECT_EQ(r.status_code, 401);
  EXPECT_THAT(r.headers.Get("WWW-Authenticate").value_or(""), HasSubstr("invalid_token"));
  EXPECT_EQ(Send("POST", kInit, {{"Authorization", "Basic abc"}}, "").status_code, 401);
}

TEST_F(McpHttpServerTest, ValidatesOriginAndHost) {
  Start();
  EXPECT_EQ(Send("POST", kInit, {{"Origin", "http://evil.example"}}).status_code, 403);
  EXPECT_EQ(Send("POST", kInit, {{"Origin", "http://localhost.evil.example"}}).status_code, 403);
  EXPECT_EQ(Send("POST", kInit, {{"Origin", "https://app.example.com"}}).status_code, 200);
  EXPECT_EQ(Send("POST", kInit, {{"Origin", "http://localhost:3000"}}).status_code, 200);
  EXPECT_EQ(Send("POST", kInit, {{"Host", "evil.example"}}).status_code, 403);
  EXPECT_EQ(Send("POST", kInit, {{"Host", absl::StrCat("localhost:", server_->port())}}).status_code, 200);
  // Host and Origin are checked before credentials.
  EXPECT_EQ(Send("POST", kInit, {{"Host", "evil.example"}}, "").status_code, 403);
}

TEST_F(McpHttpServerTest, RejectsBadRequests) {
  Start();
  HttpResponse r = Send("POST", "{not json");
  EXPECT_EQ(r.status_code, 400);
  EXPECT_EQ(Body(r)["error"]["code"], kParseError);
  EXPECT_EQ(Send("POST", "[" + std::string(kInit) + "]").status_code, 400);
  EXPECT_EQ(Send("POST", std::string(100 << 10, ' ') + kInit).status_code, 413);
  EXPECT_EQ(Send("POST", kInit, {{"Accept", "application/json"}}).status_code, 200);  // the other Accept still lists both
  HttpRequest req;
  req.method = "POST";
  req.url = server_->url();
  req.body = kInit;
  req.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}, {"Authorization", "Bearer tsk_ann"}};
  EXPECT_EQ(http_->Send(req)->status_code, 406);
  req.headers = {{"Content-Type", "text/plain"}, {"Accept", "application/json, text/event-stream"}, {"Authorization", "Bearer tsk_ann"}};
  EXPECT_EQ(http_->Send(req)->status_code, 415);
  const std::string sid = InitSession();
  r = Send("POST", R"({"jsonrpc":"2.0","id":7,"method":"bogus/method"})", {{"Mcp-Session-Id", sid}});
  EXPECT_EQ(r.status_code, 200);
  EXPECT_EQ(Body(r)["error"]["code"], kMethodNotFound);
  EXPECT_EQ(Body(r)["id"], 7);
}

TEST_F(McpHttpServerTest, SseFraming) {
  Start(/*sse=*/true);
  HttpResponse r = Send("POST", kInit);
  ASSERT_EQ(r.status_code, 200);
  EXPECT_THAT(r.headers.Get("Content-Type").value_or(""), HasSubstr("text/event-stream"));
  std::vector<SseEvent> events;
  SseParser parser(1 << 20);
  ASSERT_TRUE(parser.Feed(r.body, [&](const SseEvent& e) { events.push_back(e); }).ok());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].event, "message");
  EXPECT_EQ(Json::parse(events[0].data)["result"]["protocolVersion"], "2025-11-25");
}

TEST_F(McpHttpServerTest, ModernEraIsStatelessAndChecksHeaders) {
  Start();
  const std::string body =
      R"({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"search","arguments":{"query":"q"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}})";
  std::vector<std::pair<std::string, std::string>> h = {
      {"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", "tools/call"}, {"Mcp-Name", "search"}};
  HttpResponse r = Send("POST", body, h);
  ASSERT_EQ(r.status_code, 200) << r.body;
  EXPECT_FALSE(r.headers.Contains("Mcp-Session-Id"));
  EXPECT_EQ(Body(r)["result"]["resultType"], "complete");
  EXPECT_EQ(server_->session_count(), 0u);
  r = Send("POST", body, {{"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", "tools/call"}});
  EXPECT_EQ(r.status_code, 400);
  EXPECT_EQ(Body(r)["error"]["code"], kHeaderMismatch);
  r = Send("POST", body, {{"MCP-Protocol-Version", "2026-07-28"}, {"Mcp-Method", "tools/list"}, {"Mcp-Name", "search"}});
  EXPECT_EQ(Body(r)["error"]["code"], kHeaderMismatch);
}

// Our own client (agents/mcp) over Streamable HTTP, both eras.
TEST_F(McpHttpServerTest, TesseraMcpClientDrivesServer) {
  Start();
  for (bool modern : {true, false}) {
    StreamableHttpTransport::Options t;
    t.name = "tessera";
    t.url = server_->url();
    t.http = std::shared_ptr<HttpTransport>(http_.get(), [](HttpTransport*) {});
    t.auth = std::make_shared<StaticBearerAuth>("tsk_bob");
    auto transport = StreamableHttpTransport::Create(std::move(t));
    ASSERT_TRUE(transport.ok());
    ClientOptions co;
    co.try_modern_era = modern;
    auto client = McpClient::Connect(std::move(*transport), co);
    ASSERT_TRUE(client.ok()) << client.status();
    EXPECT_EQ((*client)->era(), modern ? McpClient::Era::kModern : McpClient::Era::kLegacy);
    auto tools = (*client)->ListTools();
    ASSERT_TRUE(tools.ok()) << tools.status();
    ASSERT_EQ(tools->size(), 1u);
    EXPECT_EQ((*tools)[0].name, "search");
    auto result = (*client)->CallTool("search", Json{{"query", "roadmap"}});
    ASSERT_TRUE(result.ok()) << result.status();  // structuredContent validated against outputSchema
    EXPECT_THAT(result->content[0].text, HasSubstr("[1] Roadmap 2026"));
    if (!modern) {
      EXPECT_TRUE((*client)->Ping().ok());
    }
    (*client)->Close();
  }
  EXPECT_EQ(server_->session_count(), 0u);  // Close() DELETEd the legacy session
}

}  // namespace
}  // namespace tessera::mcp
