// McpClient over StreamableHttpTransport against FakeHttpServer handlers that
// script the server side: JSON and SSE answers, sessions, lost sessions,
// dropped streams resumed with Last-Event-ID, the modern-era headers.
#include <atomic>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "agents/mcp/client.h"
#include "agents/mcp/http_transport.h"
#include "agents/mcp/sse_parser.h"
#include "common/http/curl_http_transport.h"
#include "common/http/fake_http_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::mcp {
namespace {

using ::testing::HasSubstr;

FakeHttpResponse JsonAnswer(const Json& message, int status = 200) {
  FakeHttpResponse r;
  r.status = status;
  r.headers.Add("Content-Type", "application/json");
  r.body = message.dump();
  return r;
}

std::string Event(const std::string& id, const Json& message) {
  return absl::StrCat("event: message\nid: ", id, "\ndata: ", message.dump(), "\n\n");
}

FakeHttpResponse SseAnswer(std::vector<std::string> chunks) {
  FakeHttpResponse r;
  r.headers.Add("Content-Type", "text/event-stream");
  r.chunks = std::move(chunks);
  return r;
}

Json Result(const Json& id, Json result) { return {{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}}; }

// A legacy Streamable HTTP server in a handful of lines: sessions, SSE
// answers, a dropped stream that must be resumed, session expiry.
class LegacyServer {
 public:
  FakeHttpResponse Handle(const FakeHttpRequest& req) {
    absl::MutexLock lock(&mu_);
    if (req.method == "DELETE") {
      deleted_.push_back(req.headers.Get("Mcp-Session-Id").value_or(""));
      return FakeHttpResponse{};
    }
    std::string sid = req.headers.Get("Mcp-Session-Id").value_or("");
    if (req.method == "GET") {
      std::string last = req.headers.Get("Last-Event-ID").value_or("");
      if (last == "drop-1") {
        return SseAnswer({Event("drop-2", Result(dropped_id_, {{"content", {{{"type", "text"}, {"text", "resumed"}}}}}))});
      }
      return FakeHttpResponse{405, {}, "", {}, absl::ZeroDuration(), nullptr, absl::ZeroDuration(), false};
    }
    auto body = Json::parse(req.body, nullptr, false);
    std::string method = body.value("method", "");
    Json id = body.value("id", Json());
    if (method == "initialize") {
      ++sessions_;
      session_ = absl::StrCat("sess-", sessions_);
      FakeHttpResponse r = SseAnswer({"id: prime-0\ndata: \n\n",
                                      Event("init-1", Result(id, {{"protocolVersion", "2025-11-25"},
                                                                  {"capabilities", {{"tools", Json::object()}}},
                                                                  {"serverInfo", {{"name", "fake-legacy"}}}}))});
      r.headers.Add("Mcp-Session-Id", session_);
      return r;
    }
    if (sid.empty()) return JsonAnswer({{"jsonrpc", "2.0"}, {"id", nullptr}, {"error", {{"code", -32000}, {"message", "Bad Request: Server not initialized"}}}}, 400);
    if (sid != session_) return FakeHttpResponse{404, {}, "session not found", {}, absl::ZeroDuration(), nullptr, absl::ZeroDuration(), false};
    if (req.headers.Get("MCP-Protocol-Version").value_or("") != "2025-11-25") {
      return JsonAnswer({{"error", "missing MCP-Protocol-Version"}}, 400);
    }
    if (id.is_null()) {
      notifications_.push_back(method);
      return FakeHttpResponse{202, {}, "", {}, absl::ZeroDuration(), nullptr, absl::ZeroDuration(), false};
    }
    if (method == "tools/list") {
      return JsonAnswer(Result(id, {{"tools", {{{"name", "echo"}, {"inputSchema", {{"type", "object"}}}}}}}));
    }
    if (method == "tools/call") {
      std::string tool = body["params"].value("name", "");
      if (tool == "echo") {
        Json progress = {{"jsonrpc", "2.0"}, {"method", "notifications/progress"},
                         {"params", {{"progressToken", body["params"].contains("_meta") ? body["params"]["_meta"].value("progressToken", Json()) : Json()}, {"progress", 1}}}};
        return SseAnswer({"id: p0\ndata: \n\n", Event("e1", progress),
                          Event("e2", Result(id, {{"content", {{{"type", "text"}, {"text", "Echo: " + body["params"]["arguments"].value("message", "")}}}}}))});
      }
      if (tool == "drop") {
        dropped_id_ = id;
        return SseAnswer({"id: drop-1\nretry: 20\ndata: \n\n"});  // stream ends without the answer
      }
      if (tool == "huge") {
        return JsonAnswer(Result(id, {{"content", {{{"type", "text"}, {"text", std::string(50000, 'x')}}}}}));
      }
      if (tool == "error") {
        return JsonAnswer({{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", -32602}, {"message", "Unknown tool"}}}});
      }
      if (tool == "http500") return FakeHttpResponse{500, {}, "boom", {}, absl::ZeroDuration(), nullptr, absl::ZeroDuration(), false};
    }
    return JsonAnswer({{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", -32601}, {"message", "Method not found"}}}});
  }

  void ExpireSession() {
    absl::MutexLock lock(&mu_);
    session_ = "expired";
  }
  int sessions() {
    absl::MutexLock lock(&mu_);
    return sessions_;
  }
  std::vector<std::string> deleted() {
    absl::MutexLock lock(&mu_);
    return deleted_;
  }
  std::vector<std::string> notifications() {
    absl::MutexLock lock(&mu_);
    return notifications_;
  }

 private:
  absl::Mutex mu_;
  int sessions_ ABSL_GUARDED_BY(mu_) = 0;
  std::string session_ ABSL_GUARDED_BY(mu_);
  Json dropped_id_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> deleted_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> notifications_ ABSL_GUARDED_BY(mu_);
};

class HttpClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = FakeHttpServer::Start();
    ASSERT_TRUE(server.ok());
    server_ = std::move(*server);
    auto http = CurlHttpTransport::Create({});
    ASSERT_TRUE(http.ok());
    http_ = std::shared_ptr<HttpTransport>(std::move(*http));
  }

  absl::StatusOr<std::unique_ptr<McpClient>> Connect(size_t max_bytes = 16 << 20, std::shared_ptr<AuthProvider> auth = nullptr) {
    StreamableHttpTransport::Options o;
    o.name = "fake";
    o.url = server_->url() + "/mcp";
    o.http = http_;
    o.max_message_bytes = max_bytes;
    o.auth = std::move(auth);
    auto t = StreamableHttpTransport::Create(o);
    if (!t.ok()) return t.status();
    transport_ = t->get();
    ClientOptions options;
    options.server_name = "fake";
    options.validate_structured_content = false;
    return McpClient::Connect(std::move(*t), options);
  }

  std::unique_ptr<FakeHttpServer> server_;
  std::shared_ptr<HttpTransport> http_;
  StreamableHttpTransport* transport_ = nullptr;
};

TEST(SseParserTest, ParsesEventsIdsRetryAndLineEnds) {
  SseParser parser(1 << 20);
  std::vector<SseEvent> events;
  auto collect = [&](const SseEvent& e) { events.push_back(e); };
  ASSERT_TRUE(parser.Feed("id: a\r\ndata: \r\n\r\n: comment\nevent: message\nid: b\nda", collect).ok());
  ASSERT_TRUE(parser.Feed("ta: {\"x\":\ndata: 1}\nretry: 250\n\n", collect).ok());
  ASSERT_EQ(events.size(), 1u);  // the priming event (empty data) is not dispatched
  EXPECT_EQ(events[0].data, "{\"x\":\n1}");
  EXPECT_EQ(events[0].id, "b");
  EXPECT_EQ(parser.last_event_id(), "b");
  EXPECT_EQ(parser.retry_ms().value_or(0), 250);
  SseParser small(64);
  EXPECT_EQ(small.Feed("data: " + std::string(100, 'x'), collect).code(), absl::StatusCode::kResourceExhausted);
}

TEST(HeaderEncodingTest, NonAsciiAndPaddedValuesAreBase64) {
  EXPECT_EQ(EncodeMcpHeaderValue("get-sum"), "get-sum");
  EXPECT_EQ(EncodeMcpHeaderValue(" padded"), "=?base64?IHBhZGRlZA==?=");
  EXPECT_EQ(EncodeMcpHeaderValue("caf\xc3\xa9"), "=?base64?Y2Fmw6k=?=");
}

TEST_F(HttpClientTest, LegacySessionJsonAndSseAnswersProgressAndDelete) {
  LegacyServer fake;
  server_->Handle("*", "/mcp", [&](const FakeHttpRequest& r) { return fake.Handle(r); });
  auto client = Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->era(), McpClient::Era::kLegacy);
  EXPECT_EQ(transport_->session_id(), "sess-1");
  auto tools = (*client)->ListTools();  // application/json answer
  ASSERT_TRUE(tools.ok()) << tools.status();
  ASSERT_EQ(tools->size(), 1u);
  std::atomic<int> progress{0};
  RequestOptions opts;
  opts.on_progress = [&](const Progress& p) { progress += static_cast<int>(p.progress); };
  auto echo = (*client)->CallTool("echo", {{"message", "hi"}}, opts);  // SSE answer
  ASSERT_TRUE(echo.ok()) << echo.status();
  EXPECT_EQ(RenderContentAsText(*echo), "Echo: hi");
  EXPECT_EQ(progress.load(), 1);
  auto error = (*client)->CallTool("error", Json::object());
  EXPECT_EQ(RpcErrorCodeOf(error.status()), -32602);
  auto http500 = (*client)->CallTool("http500", Json::object());
  EXPECT_EQ(http500.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(http500.status().message()), HasSubstr("HTTP 500"));
  EXPECT_THAT(fake.notifications(), ::testing::Contains("notifications/initialized"));
  (*client)->Close();
  EXPECT_EQ(fake.deleted(), std::vector<std::string>{"sess-1"});
  // The discover probe was sent first, with the modern headers.
  auto requests = server_->requests();
  ASSERT_FALSE(requests.empty());
  EXPECT_EQ(requests[0].headers.Get("Mcp-Method").value_or(""), "server/discover");
  EXPECT_EQ(requests[0].headers.Get("MCP-Protocol-Version").value_or(""), "2026-07-28");
  EXPECT_THAT(requests[0].headers.Get("Accept").value_or(""), HasSubstr("text/event-stream"));
}

TEST_F(HttpClientTest, GetStreamDeliversServerMessagesAndResumes) {
  LegacyServer fake;
  std::atomic<int> gets{0};
  std::atomic<bool> resumed_from_g1{false};
  server_->Handle("*", "/mcp", [&](const FakeHttpRequest& r) {
    if (r.method == "GET" && !r.headers.Contains("Last-Event-ID") && gets.fetch_add(1) == 0) {
      Json changed = {{"jsonrpc", "2.0"}, {"method", "notifications/tools/list_changed"}};
      return SseAnswer({"retry: 10\n\n", Event("g1", changed)});  // then the stream ends
    }
    if (r.method == "GET" && r.headers.Get("Last-Event-ID").value_or("") == "g1") {
      resumed_from_g1 = true;
      return FakeHttpResponse{405, {}, "", {}, absl::ZeroDuration(), nullptr, absl::ZeroDuration(), false};
    }
    return fake.Handle(r);
  });
  auto client = Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  for (int i = 0; i < 100 && !(resumed_from_g1 && (*client)->tools_changed()); ++i) absl::SleepFor(absl::Milliseconds(20));
  EXPECT_TRUE((*client)->tools_changed()) << "list_changed from the GET stream was not delivered";
  EXPECT_TRUE(resumed_from_g1.load()) << "the GET stream was not re-opened with Last-Event-ID";
  for (const auto& req : server_->requests()) {
    if (req.method == "GET") EXPECT_EQ(req.headers.Get("Mcp-Session-Id").value_or(""), "sess-1");
  }
}

TEST_F(HttpClientTest, DroppedStreamIsResumedWithLastEventId) {
  LegacyServer fake;
  server_->Handle("*", "/mcp", [&](const FakeHttpRequest& r) { return fake.Handle(r); });
  auto client = Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  auto r = (*client)->CallTool("drop", Json::object());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(RenderContentAsText(*r), "resumed");
  bool resumed = false;
  for (const auto& req : server_->requests()) {
    resumed |= req.method == "GET" && req.headers.Get("Last-Event-ID").value_or("") == "drop-1";
  }
  EXPECT_TRUE(resumed);
}

TEST_F(HttpClientTest, LostSessionIsReinitialisedOnce) {
  LegacyServer fake;
  server_->Handle("*", "/mcp", [&](const FakeHttpRequest& r) { return fake.Handle(r); });
  auto client = Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  fake.ExpireSession();
  auto echo = (*client)->CallTool("echo", {{"message", "again"}});
  ASSERT_TRUE(echo.ok()) << echo.status();
  EXPECT_EQ(RenderContentAsText(*echo), "Echo: again");
  EXPECT_EQ(fake.sessions(), 2);
  EXPECT_EQ(transport_->session_id(), "sess-2");
}

TEST_F(HttpClientTest, OversizedAnswerIsCapped) {
  LegacyServer fake;
  server_->Handle("*", "/mcp", [&](const FakeHttpRequest& r) { return fake.Handle(r); });
  auto client = Connect(/*max_bytes=*/10000);
  ASSERT_TRUE(client.ok()) << client.status();
  auto r = (*client)->CallTool("huge", Json::object());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("max_message_bytes"));
}

TEST_F(HttpClientTest, ServerThatNeverAnswersTimesOut) {
  server_->Handle("POST", "/mcp", [&](const FakeHttpRequest& r) {
    FakeHttpResponse resp;
    resp.delay_before_headers = absl::Seconds(30);
    return resp;
  });
  StreamableHttpTransport::Options o;
  o.name = "slow";
  o.url = server_->url() + "/mcp";
  o.http = http_;
  auto t = StreamableHttpTransport::Create(o);
  ASSERT_TRUE(t.ok());
  ClientOptions options;
  options.discover_timeout = absl::Milliseconds(200);
  options.initialize_timeout = absl::Milliseconds(300);
  absl::Time start = absl::Now();
  auto client = McpClient::Connect(std::move(*t), options);
  EXPECT_EQ(client.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(HttpClientTest, ModernServerGetsMethodAndNameHeaders) {
  std::atomic<int> header_errors{0};
  server_->Handle("POST", "/mcp", [&](const FakeHttpRequest& req) {
    auto body = Json::parse(req.body, nullptr, false);
    std::string method = body.value("method", "");
    Json id = body.value("id", Json());
    const Json& params = body["params"];
    if (req.headers.Get("MCP-Protocol-Version").value_or("") != "2026-07-28" ||
        req.headers.Get("Mcp-Method").value_or("") != method || req.headers.Contains("Mcp-Session-Id") ||
        (method == "tools/call" && req.headers.Get("Mcp-Name").value_or("") != params.value("name", ""))) {
      ++header_errors;
      return JsonAnswer({{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", -32020}, {"message", "headers and body disagree"}}}}, 400);
    }
    if (!params.contains("_meta") || params["_meta"].value("io.modelcontextprotocol/protocolVersion", "") != "2026-07-28") {
      return JsonAnswer({{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", -32602}, {"message", "missing _meta"}}}});
    }
    if (method == "server/discover") {
      return JsonAnswer(Result(id, {{"supportedVersions", {"2026-07-28"}}, {"capabilities", {{"tools", Json::object()}}},
                                    {"resultType", "complete"},
                                    {"_meta", {{"io.modelcontextprotocol/serverInfo", {{"name", "fake-modern"}}}}}}));
    }
    if (method == "tools/call") {
      return JsonAnswer(Result(id, {{"content", {{{"type", "text"}, {"text", "modern ok"}}}}, {"resultType", "complete"}}));
    }
    return JsonAnswer({{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", -32601}, {"message", "nope"}}}});
  });
  auto client = Connect();
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->era(), McpClient::Era::kModern);
  EXPECT_EQ((*client)->server_info()["name"], "fake-modern");
  auto r = (*client)->CallTool("add", {{"a", 1}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(RenderContentAsText(*r), "modern ok");
  EXPECT_EQ(header_errors.load(), 0);
}

TEST_F(HttpClientTest, BearerTokenIsSentAndRejectionExplained) {
  LegacyServer fake;
  server_->Handle("*", "/mcp", [&](const FakeHttpRequest& r) {
    if (r.headers.Get("Authorization").value_or("") != "Bearer right") {
      return FakeHttpResponse{401, {{"WWW-Authenticate", "Bearer"}}, "", {}, absl::ZeroDuration(), nullptr, absl::ZeroDuration(), false};
    }
    return fake.Handle(r);
  });
  auto ok = Connect(16 << 20, std::make_shared<StaticBearerAuth>("right"));
  ASSERT_TRUE(ok.ok()) << ok.status();
  auto bad = Connect(16 << 20, std::make_shared<StaticBearerAuth>("wrong"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("auth.bearer"));
}

TEST_F(HttpClientTest, UnauthorizedDiscoverDoesNotFallBackToLegacy) {
  std::atomic<int> initializes{0};
  std::atomic<int> discovers{0};
  server_->Handle("*", "/mcp", [&](const FakeHttpRequest& r) {
    auto body = Json::parse(r.body, nullptr, false);
    std::string method = body.is_object() ? body.value("method", "") : "";
    if (method == "initialize") ++initializes;
    if (method == "server/discover") ++discovers;
    return FakeHttpResponse{401, {{"WWW-Authenticate", "Bearer"}}, "", {}, absl::ZeroDuration(), nullptr, absl::ZeroDuration(), false};
  });
  auto bad = Connect(16 << 20, std::make_shared<StaticBearerAuth>("wrong"));
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kUnauthenticated) << bad.status();
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("auth.bearer"));
  EXPECT_GE(discovers.load(), 1);
  EXPECT_EQ(initializes.load(), 0);
}

}  // namespace
}  // namespace tessera::mcp
