// Interop: our client against the npm reference servers pinned in
// //:package.json (server-everything over stdio and Streamable HTTP,
// server-filesystem and server-memory over stdio). Skips when node or
// node_modules is missing (run `npm ci` in the repository root).
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "agents/mcp/client.h"
#include "agents/mcp/http_transport.h"
#include "agents/mcp/stdio_transport.h"
#include "agents/mcp/test_util.h"
#include "common/http/curl_http_transport.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::mcp {
namespace {

using ::testing::HasSubstr;

// Connects McpClient over Streamable HTTP to a peer listening on 127.0.0.1:`port`/mcp; `transport`
// is set to the transport the client owns (to inspect its session).
absl::StatusOr<std::unique_ptr<McpClient>> ConnectHttp(const std::string& name, int port,
                                                       StreamableHttpTransport** transport) {
  auto curl = CurlHttpTransport::Create({});
  if (!curl.ok()) return curl.status();
  StreamableHttpTransport::Options o;
  o.name = name;
  o.url = absl::StrCat("http://127.0.0.1:", port, "/mcp");
  o.http = std::shared_ptr<HttpTransport>(std::move(*curl));
  auto t = StreamableHttpTransport::Create(o);
  if (!t.ok()) return t.status();
  *transport = t->get();
  ClientOptions options;
  options.server_name = name;
  return McpClient::Connect(std::move(*t), options);
}

class InteropTest : public ::testing::Test {
 protected:
  void SetUp() override {
    node_ = testing::FindNode();
    if (node_.empty()) GTEST_SKIP() << "node is not installed; skipping MCP interop tests";
    root_ = testing::FindNodeModulesRoot();
    if (root_.empty()) {
      GTEST_SKIP() << "node_modules/@modelcontextprotocol not found (run `npm ci` in the repository root, "
                      "or set TESSERA_REPO_ROOT); skipping MCP interop tests";
    }
  }

  std::string Package(const std::string& name, const std::string& file) {
    return absl::StrCat(root_, "/node_modules/@modelcontextprotocol/", name, "/", file);
  }

  absl::StatusOr<std::unique_ptr<McpClient>> ConnectStdio(const std::string& name, std::vector<std::string> args,
                                                          std::map<std::string, std::string> env = {},
                                                          ClientOptions options = {}) {
    StdioTransport::Options o;
    o.name = name;
    o.command = node_;
    o.args = std::move(args);
    o.env = std::move(env);
    auto t = StdioTransport::Create(o);
    if (!t.ok()) return t.status();
    options.server_name = name;
    options.default_request.timeout = absl::Seconds(30);
    // Node can take seconds to start on a loaded machine; a slow answer to
    // server/discover must not push a modern peer into the legacy era.
    options.discover_timeout = absl::Seconds(60);
    return McpClient::Connect(std::move(*t), options);
  }

  std::string node_;
  std::string root_;
};

bool HasTool(const std::vector<ToolInfo>& tools, const std::string& name) {
  for (const auto& t : tools) {
    if (t.name == name) return true;
  }
  return false;
}

TEST_F(InteropTest, EverythingOverStdio) {
  ClientOptions options;
  options.roots = {{"file:///tmp", "tmp"}};  // server-everything asks roots/list at once
  auto client = ConnectStdio("everything", {Package("server-everything", "dist/index.js"), "stdio"}, {}, options);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->era(), McpClient::Era::kLegacy);  // server/discover -> -32601 -> initialize
  EXPECT_EQ((*client)->protocol_version(), "2025-11-25");
  EXPECT_EQ((*client)->server_info()["name"], "mcp-servers/everything");

  auto tools = (*client)->ListTools();
  ASSERT_TRUE(tools.ok()) << tools.status();
  for (const char* name : {"echo", "get-sum", "trigger-long-running-operation", "get-structured-content",
                           "get-tiny-image", "get-resource-links", "get-resource-reference"}) {
    EXPECT_TRUE(HasTool(*tools, name)) << name;
  }

  auto echo = (*client)->CallTool("echo", {{"message", "hello from tessera"}});
  ASSERT_TRUE(echo.ok()) << echo.status();
  EXPECT_EQ(RenderContentAsText(*echo), "Echo: hello from tessera");

  auto sum = (*client)->CallTool("get-sum", {{"a", 2}, {"b", 40}});
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_THAT(RenderContentAsText(*sum), HasSubstr("42"));

  // structuredContent, validated against the tool's outputSchema.
  auto weather = (*client)->CallTool("get-structured-content", {{"location", "Chicago"}});
  ASSERT_TRUE(weather.ok()) << weather.status();
  ASSERT_TRUE(weather->structured_content.has_value());
  EXPECT_TRUE((*weather->structured_content)["temperature"].is_number());

  auto image = (*client)->CallTool("get-tiny-image", Json::object());
  ASSERT_TRUE(image.ok()) << image.status();
  bool saw_image = false;
  for (const auto& c : image->content) saw_image |= c.type == ContentItem::Type::kImage && c.mime_type == "image/png";
  EXPECT_TRUE(saw_image);

  auto links = (*client)->CallTool("get-resource-links", {{"count", 2}});
  ASSERT_TRUE(links.ok()) << links.status();
  int link_count = 0;
  for (const auto& c : links->content) link_count += c.type == ContentItem::Type::kResourceLink;
  EXPECT_EQ(link_count, 2);

  auto reference = (*client)->CallTool("get-resource-reference", {{"resourceId", 1}});
  ASSERT_TRUE(reference.ok()) << reference.status();
  bool saw_resource = false;
  for (const auto& c : reference->content) saw_resource |= c.type == ContentItem::Type::kResource && !c.uri.empty();
  EXPECT_TRUE(saw_resource);

  // SDK 1.x reports an unknown tool and bad arguments as isError results.
  auto unknown = (*client)->CallTool("no-such-tool", Json::object());
  ASSERT_TRUE(unknown.ok()) << unknown.status();
  EXPECT_TRUE(unknown->is_error);
  auto bad_args = (*client)->CallTool("get-sum", {{"a", "x"}});
  ASSERT_TRUE(bad_args.ok()) << bad_args.status();
  EXPECT_TRUE(bad_args->is_error);
  // A method it does not have is a protocol error.
  auto nonexistent = (*client)->Request("nonexistent/method", Json::object(), RequestOptions{});
  EXPECT_EQ(nonexistent.status().code(), absl::StatusCode::kUnimplemented);

  EXPECT_TRUE((*client)->Ping().ok());
}

TEST_F(InteropTest, EverythingProgressAndCancellationOverStdio) {
  auto client = ConnectStdio("everything", {Package("server-everything", "dist/index.js"), "stdio"});
  ASSERT_TRUE(client.ok()) << client.status();
  absl::Mutex mu;
  std::vector<double> progress;
  RequestOptions opts;
  opts.timeout = absl::Seconds(5);
  opts.on_progress = [&](const Progress& p) {
    absl::MutexLock lock(&mu);
    progress.push_back(p.progress);
  };
  auto done = (*client)->CallTool("trigger-long-running-operation", {{"duration", 1}, {"steps", 2}}, opts);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_THAT(RenderContentAsText(*done), HasSubstr("Long running operation completed"));
  {
    absl::MutexLock lock(&mu);
    EXPECT_EQ(progress, (std::vector<double>{1, 2}));
  }

  // Cancel after the first progress step; the connection stays usable.
  RequestOptions cancel_opts;
  cancel_opts.cancellation = std::make_shared<CancellationToken>();
  cancel_opts.on_progress = [&](const Progress&) { cancel_opts.cancellation->Cancel(); };
  auto cancelled = (*client)->CallTool("trigger-long-running-operation", {{"duration", 5}, {"steps", 5}}, cancel_opts);
  EXPECT_EQ(cancelled.status().code(), absl::StatusCode::kCancelled);
  auto echo = (*client)->CallTool("echo", {{"message", "after cancel"}});
  ASSERT_TRUE(echo.ok()) << echo.status();
  EXPECT_EQ(RenderContentAsText(*echo), "Echo: after cancel");
}

TEST_F(InteropTest, FilesystemOverStdio) {
  std::string dir = testing::MakeTempDir("mcp-fs-");
  ASSERT_FALSE(dir.empty());
  char real[PATH_MAX];
  ASSERT_NE(realpath(dir.c_str(), real), nullptr);
  dir = real;
  { std::ofstream(dir + "/notes.txt") << "quarterly numbers: 42\n"; }
  auto client = ConnectStdio("filesystem", {Package("server-filesystem", "dist/index.js"), dir});
  ASSERT_TRUE(client.ok()) << client.status();
  auto tools = (*client)->ListTools();
  ASSERT_TRUE(tools.ok()) << tools.status();
  EXPECT_TRUE(HasTool(*tools, "read_text_file"));
  EXPECT_TRUE(HasTool(*tools, "list_directory"));

  auto listing = (*client)->CallTool("list_directory", {{"path", dir}});
  ASSERT_TRUE(listing.ok()) << listing.status();
  EXPECT_FALSE(listing->is_error) << RenderContentAsText(*listing);
  EXPECT_THAT(RenderContentAsText(*listing), HasSubstr("notes.txt"));

  auto read = (*client)->CallTool("read_text_file", {{"path", dir + "/notes.txt"}});
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_THAT(RenderContentAsText(*read), HasSubstr("quarterly numbers: 42"));

  auto outside = (*client)->CallTool("read_text_file", {{"path", "/etc/hostname"}});
  ASSERT_TRUE(outside.ok()) << outside.status();
  EXPECT_TRUE(outside->is_error) << "reading outside the allowed directory must be refused";
}

TEST_F(InteropTest, MemoryOverStdio) {
  std::string dir = testing::MakeTempDir("mcp-mem-");
  auto client = ConnectStdio("memory", {Package("server-memory", "dist/index.js")},
                             {{"MEMORY_FILE_PATH", dir + "/memory.jsonl"}});
  ASSERT_TRUE(client.ok()) << client.status();
  auto created = (*client)->CallTool(
      "create_entities",
      Json::parse(R"({"entities":[{"name":"Ada","entityType":"person","observations":["wrote the first program"]},
                                  {"name":"Analytical Engine","entityType":"machine","observations":["designed by Babbage"]}]})"));
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_FALSE(created->is_error) << RenderContentAsText(*created);
  auto related = (*client)->CallTool(
      "create_relations", Json::parse(R"({"relations":[{"from":"Ada","to":"Analytical Engine","relationType":"programmed"}]})"));
  ASSERT_TRUE(related.ok()) << related.status();
  auto found = (*client)->CallTool("search_nodes", {{"query", "Ada"}});
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_TRUE(found->structured_content.has_value()) << "server-memory returns structuredContent";
  const Json& entities = (*found->structured_content)["entities"];
  ASSERT_TRUE(entities.is_array());
  ASSERT_GE(entities.size(), 1u);
  EXPECT_EQ(entities[0]["name"], "Ada");
  auto graph = (*client)->CallTool("read_graph", Json::object());
  ASSERT_TRUE(graph.ok()) << graph.status();
  EXPECT_EQ((*graph->structured_content)["relations"].size(), 1u);
}

TEST_F(InteropTest, EverythingOverStreamableHttp) {
  int port = testing::PickFreePort();
  ASSERT_GT(port, 0);
  std::string log = testing::MakeTempDir("mcp-http-") + "/server.log";
  testing::ChildProcess server;
  ASSERT_TRUE(server.Start({node_, Package("server-everything", "dist/index.js"), "streamableHttp"},
                           {absl::StrCat("PORT=", port)}, log));
  ASSERT_TRUE(testing::WaitForPort(port, 20000)) << "server-everything did not listen; see " << log;

  StreamableHttpTransport* transport = nullptr;
  auto client = ConnectHttp("everything-http", port, &transport);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->era(), McpClient::Era::kLegacy);
  EXPECT_FALSE(transport->session_id().empty());

  auto tools = (*client)->ListTools();
  ASSERT_TRUE(tools.ok()) << tools.status();
  EXPECT_TRUE(HasTool(*tools, "echo"));
  auto echo = (*client)->CallTool("echo", {{"message", "hi over HTTP"}});
  ASSERT_TRUE(echo.ok()) << echo.status();
  EXPECT_EQ(RenderContentAsText(*echo), "Echo: hi over HTTP");

  absl::Mutex mu;
  int progress_events = 0;
  RequestOptions opts;
  opts.on_progress = [&](const Progress&) {
    absl::MutexLock lock(&mu);
    ++progress_events;
  };
  auto done = (*client)->CallTool("trigger-long-running-operation", {{"duration", 1}, {"steps", 2}}, opts);
  ASSERT_TRUE(done.ok()) << done.status();
  {
    absl::MutexLock lock(&mu);
    EXPECT_EQ(progress_events, 2);
  }
  auto weather = (*client)->CallTool("get-structured-content", {{"location", "New York"}});
  ASSERT_TRUE(weather.ok()) << weather.status();
  EXPECT_TRUE(weather->structured_content.has_value());
  EXPECT_TRUE((*client)->Ping().ok());
  (*client)->Close();  // DELETEs the session
}

// The SDK v2 peer (testdata/modern_server.mjs) speaks 2026-07-28.
class ModernInteropTest : public InteropTest {
 protected:
  void SetUp() override {
    InteropTest::SetUp();
    if (IsSkipped()) return;
    char real[PATH_MAX];
    std::string script = testing::RunfilePath("agents/mcp/testdata/modern_server.mjs");
    ASSERT_NE(realpath(script.c_str(), real), nullptr);
    script_ = real;  // node resolves packages from the script's real location
    if (access(Package("server", "package.json").c_str(), F_OK) != 0) {
      GTEST_SKIP() << "@modelcontextprotocol/server (SDK v2) not installed; run `npm ci`";
    }
  }
  std::string script_;
};

TEST_F(ModernInteropTest, ModernEraOverStdio) {
  auto client = ConnectStdio("modern", {script_});
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->era(), McpClient::Era::kModern);
  EXPECT_EQ((*client)->protocol_version(), "2026-07-28");
  EXPECT_EQ((*client)->server_info()["name"], "tessera-modern-peer");
  auto tools = (*client)->ListTools();
  ASSERT_TRUE(tools.ok()) << tools.status();
  EXPECT_TRUE(HasTool(*tools, "add"));
  auto sum = (*client)->CallTool("add", {{"a", 2}, {"b", 40}});
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(RenderContentAsText(*sum), "42");
  EXPECT_EQ((*sum->structured_content)["sum"], 42);
  auto greet = (*client)->CallTool("greet", {{"name", "Ada"}});
  ASSERT_TRUE(greet.ok()) << greet.status();
  EXPECT_EQ(RenderContentAsText(*greet), "Bonjour, Ada");
}

TEST_F(ModernInteropTest, LegacyHandshakeWithADualEraPeer) {
  ClientOptions options;
  options.try_modern_era = false;
  auto client = ConnectStdio("modern-as-legacy", {script_}, {}, options);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->era(), McpClient::Era::kLegacy);
  EXPECT_EQ((*client)->protocol_version(), "2025-11-25");
  auto sum = (*client)->CallTool("add", {{"a", 1}, {"b", 2}});
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ((*sum->structured_content)["sum"], 3);
}

TEST_F(ModernInteropTest, ModernEraOverStreamableHttp) {
  int port = testing::PickFreePort();
  ASSERT_GT(port, 0);
  std::string log = testing::MakeTempDir("mcp-modern-http-") + "/server.log";
  testing::ChildProcess server;
  ASSERT_TRUE(server.Start({node_, script_, "http"}, {absl::StrCat("PORT=", port)}, log));
  ASSERT_TRUE(testing::WaitForPort(port, 20000)) << "modern peer did not listen; see " << log;
  StreamableHttpTransport* transport = nullptr;
  auto client = ConnectHttp("modern-http", port, &transport);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->era(), McpClient::Era::kModern);
  EXPECT_TRUE(transport->session_id().empty());  // stateless era
  auto sum = (*client)->CallTool("add", {{"a", 20}, {"b", 22}});  // needs Mcp-Method and Mcp-Name
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ((*sum->structured_content)["sum"], 42);
  auto greet = (*client)->CallTool("greet", {{"name", "Zo\xc3\xa9"}});
  ASSERT_TRUE(greet.ok()) << greet.status();
  EXPECT_EQ(RenderContentAsText(*greet), "Bonjour, Zo\xc3\xa9");
}

}  // namespace
}  // namespace tessera::mcp
