// McpClient over StdioTransport against a scripted (often hostile) server:
// testdata/scripted_server.py run by python3.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agents/mcp/client.h"
#include "agents/mcp/stdio_transport.h"
#include "agents/mcp/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::mcp {
namespace {

using ::testing::HasSubstr;

constexpr char kPython[] = "/usr/bin/python3";

class StdioClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kPython, X_OK) != 0) GTEST_SKIP() << "python3 not installed at " << kPython;
    script_ = testing::RunfilePath("agents/mcp/testdata/scripted_server.py");
    log_path_ = testing::MakeTempDir("mcp-stdio-") + "/received.jsonl";
  }

  StdioTransport::Options TransportOptions(std::vector<std::string> flags) {
    StdioTransport::Options o;
    o.name = "scripted";
    o.command = kPython;
    o.args = {script_, "--log", log_path_};
    for (auto& f : flags) o.args.push_back(f);
    o.shutdown_grace = absl::Milliseconds(500);
    return o;
  }

  absl::StatusOr<std::unique_ptr<McpClient>> Connect(std::vector<std::string> flags, ClientOptions options = {},
                                                     size_t max_bytes = 16 << 20) {
    auto o = TransportOptions(std::move(flags));
    o.max_message_bytes = max_bytes;
    auto transport = StdioTransport::Create(o);
    if (!transport.ok()) return transport.status();
    options.server_name = "scripted";
    options.discover_timeout = absl::Seconds(5);
    return McpClient::Connect(std::move(*transport), std::move(options));
  }

  // Waits (up to 3s) until the server logged a line containing `needle`.
  bool ServerReceived(const std::string& needle) {
    for (int i = 0; i < 60; ++i) {
      if (Received().find(needle) != std::string::npos) return true;
      absl::SleepFor(absl::Milliseconds(50));
    }
    return false;
  }

  std::string Received() {
    std::ifstream in(log_path_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  std::string script_;
  std::string log_path_;
};

std::string TextOf(const CallToolResult& r) { return RenderContentAsText(r); }

TEST_F(StdioClientTest, LegacyServerFallsBackFromDiscoverAndListsAllPages) {
  auto client = Connect({"--pages", "4"});
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->era(), McpClient::Era::kLegacy);
  EXPECT_EQ((*client)->protocol_version(), "2025-11-25");
  EXPECT_EQ((*client)->server_info()["name"], "scripted");
  auto tools = (*client)->ListTools();
  ASSERT_TRUE(tools.ok()) << tools.status();
  EXPECT_EQ(tools->size(), 14u);  // 15 listed over 4 pages, "bad name!" skipped
  for (const auto& t : *tools) EXPECT_NE(t.name, "bad name!");
  auto echo = (*client)->CallTool("echo", {{"message", "hi"}});
  ASSERT_TRUE(echo.ok()) << echo.status();
  EXPECT_EQ(TextOf(*echo), "Echo: hi");
  EXPECT_TRUE((*client)->Ping().ok());
  std::string received = Received();
  EXPECT_THAT(received, HasSubstr("\"server/discover\""));
  EXPECT_THAT(received, HasSubstr("\"notifications/initialized\""));
  EXPECT_THAT(received, HasSubstr("\"cursor\":\"12\""));
}

TEST_F(StdioClientTest, ModernServerUsesDiscoverAndMetaEnvelope) {
  auto client = Connect({"--modern"});
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ((*client)->era(), McpClient::Era::kModern);
  EXPECT_EQ((*client)->protocol_version(), "2026-07-28");
  EXPECT_EQ((*client)->server_info()["name"], "scripted-modern");
  auto echo = (*client)->CallTool("echo", {{"message", "modern"}});
  ASSERT_TRUE(echo.ok()) << echo.status();
  EXPECT_EQ(TextOf(*echo), "Echo: modern");
  EXPECT_THAT(Received(), ::testing::Not(HasSubstr("\"initialize\"")));
}

TEST_F(StdioClientTest, VersionNegotiation) {
  auto older = Connect({"--version", "2025-06-18"});
  ASSERT_TRUE(older.ok()) << older.status();
  EXPECT_EQ((*older)->protocol_version(), "2025-06-18");
  auto unknown = Connect({"--version", "1999-01-01"});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(unknown.status().message()), HasSubstr("1999-01-01"));
}

TEST_F(StdioClientTest, ProgressResetsTheTimeoutButNotTheHardMaximum) {
  auto client = Connect({});
  ASSERT_TRUE(client.ok()) << client.status();
  std::vector<double> seen;
  absl::Mutex mu;
  RequestOptions opts;
  opts.timeout = absl::Milliseconds(600);
  opts.on_progress = [&](const Progress& p) {
    absl::MutexLock lock(&mu);
    seen.push_back(p.progress);
    EXPECT_EQ(p.total.value_or(0), 4);
  };
  auto r = (*client)->CallTool("slow", {{"steps", 4}, {"delay", 0.3}}, opts);
  ASSERT_TRUE(r.ok()) << r.status();  // 1.2s total, never 600ms without progress
  EXPECT_EQ(TextOf(*r), "slow done");
  {
    absl::MutexLock lock(&mu);
    EXPECT_EQ(seen, (std::vector<double>{1, 2, 3, 4}));
  }
  opts.hard_timeout = absl::Milliseconds(700);
  auto capped = (*client)->CallTool("slow", {{"steps", 4}, {"delay", 0.3}}, opts);
  EXPECT_EQ(capped.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(capped.status().message()), HasSubstr("hard maximum"));
}

TEST_F(StdioClientTest, NeverAnsweringTimesOutSendsCancelledAndConnectionStaysUsable) {
  auto client = Connect({});
  ASSERT_TRUE(client.ok()) << client.status();
  RequestOptions opts;
  opts.timeout = absl::Milliseconds(300);
  absl::Time start = absl::Now();
  auto r = (*client)->CallTool("never", Json::object(), opts);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  auto echo = (*client)->CallTool("echo", {{"message", "still here"}});
  ASSERT_TRUE(echo.ok()) << echo.status();
  EXPECT_TRUE(ServerReceived("notifications/cancelled"));
}

TEST_F(StdioClientTest, CallerCancellation) {
  auto client = Connect({});
  ASSERT_TRUE(client.ok()) << client.status();
  RequestOptions opts;
  opts.cancellation = std::make_shared<CancellationToken>();
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(200));
    opts.cancellation->Cancel();
  });
  auto r = (*client)->CallTool("never", Json::object(), opts);
  canceller.join();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(ServerReceived("\"requestId\":4"));
}

TEST_F(StdioClientTest, ServerDyingMidCallFailsFastWithItsStderr) {
  auto client = Connect({});
  ASSERT_TRUE(client.ok()) << client.status();
  absl::Time start = absl::Now();
  auto r = (*client)->CallTool("die", Json::object());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("exited with status 3"));
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("about to crash"));
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  auto after = (*client)->CallTool("echo", {{"message", "x"}});
  EXPECT_EQ(after.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(StdioClientTest, OversizedResultIsCappedWithAClearError) {
  auto client = Connect({}, {}, /*max_bytes=*/100000);
  ASSERT_TRUE(client.ok()) << client.status();
  auto r = (*client)->CallTool("huge", {{"bytes", 2000000}});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("max_message_bytes"));
  auto echo = (*client)->CallTool("echo", {{"message", "ok"}});
  ASSERT_TRUE(echo.ok()) << echo.status();
}

TEST_F(StdioClientTest, MalformedLinesAndFloodsAreSurvived) {
  auto client = Connect({});
  ASSERT_TRUE(client.ok()) << client.status();
  auto junk = (*client)->CallTool("junk", Json::object());
  ASSERT_TRUE(junk.ok()) << junk.status();
  EXPECT_EQ(TextOf(*junk), "after junk");
  RequestOptions opts;
  opts.timeout = absl::Seconds(30);
  auto flood = (*client)->CallTool("flood", Json::object(), opts);
  ASSERT_TRUE(flood.ok()) << flood.status();
  EXPECT_EQ(TextOf(*flood), "after flood");
}

TEST_F(StdioClientTest, UnadvertisedServerRequestsAreRefusedAndRootsServed) {
  ClientOptions options;
  options.roots = {{"file:///data", "data"}};
  auto client = Connect({}, options);
  ASSERT_TRUE(client.ok()) << client.status();
  auto r = (*client)->CallTool("hostile", Json::object());
  ASSERT_TRUE(r.ok()) << r.status();
  auto summary = Json::parse(TextOf(*r));
  EXPECT_EQ(summary["0"], "error -32601");   // sampling/createMessage
  EXPECT_EQ(summary["e1"], "error -32601");  // elicitation/create
  EXPECT_EQ(summary["1"]["roots"][0]["uri"], "file:///data");
  EXPECT_EQ(summary["2"], Json::object());  // ping
  EXPECT_THAT(Received(), HasSubstr("\"roots\":{\"listChanged\":false}"));
}

TEST_F(StdioClientTest, RootsRefusedWhenNotAdvertised) {
  auto client = Connect({});
  ASSERT_TRUE(client.ok()) << client.status();
  auto r = (*client)->CallTool("hostile", Json::object());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Json::parse(TextOf(*r))["1"], "error -32601");
}

TEST_F(StdioClientTest, ContentTypesErrorsAndStructuredContent) {
  auto client = Connect({});
  ASSERT_TRUE(client.ok()) << client.status();
  auto all = (*client)->CallTool("all_content", Json::object());
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->content.size(), 7u);
  EXPECT_EQ(all->content[1].type, ContentItem::Type::kImage);
  EXPECT_EQ(all->content[2].type, ContentItem::Type::kAudio);
  EXPECT_EQ(all->content[3].type, ContentItem::Type::kResourceLink);
  EXPECT_EQ(all->content[4].type, ContentItem::Type::kResource);
  EXPECT_EQ(all->content[6].type, ContentItem::Type::kUnknown);

  auto exec_error = (*client)->CallTool("exec_error", Json::object());
  ASSERT_TRUE(exec_error.ok()) << exec_error.status();
  EXPECT_TRUE(exec_error->is_error);

  auto unknown = (*client)->CallTool("no-such-tool", Json::object());
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RpcErrorCodeOf(unknown.status()), -32602);

  auto good = (*client)->CallTool("good_structured", Json::object());
  ASSERT_TRUE(good.ok()) << good.status();
  EXPECT_EQ((*good->structured_content)["sum"], 42);
  auto bad = (*client)->CallTool("bad_structured", Json::object());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("outputSchema"));
}

TEST_F(StdioClientTest, ListChangedNotificationIsReported) {
  auto client = Connect({});
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE((*client)->ListTools().ok());
  std::atomic<int> calls{0};
  (*client)->SetToolsChangedCallback([&] { ++calls; });
  auto r = (*client)->CallTool("list_changed", Json::object());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE((*client)->tools_changed());
  EXPECT_EQ(calls.load(), 1);
  ASSERT_TRUE((*client)->ListTools().ok());
  EXPECT_FALSE((*client)->tools_changed());
}

TEST_F(StdioClientTest, EnvironmentAndWorkingDirectory) {
  setenv("SECRET_OF_PARENT", "hunter2", 1);
  std::string dir = testing::MakeTempDir("mcp-cwd-");
  auto o = TransportOptions({});
  o.env = {{"GREETING", "bonjour"}};
  o.cwd = dir;
  auto transport = StdioTransport::Create(o);
  ASSERT_TRUE(transport.ok());
  auto client = McpClient::Connect(std::move(*transport), {});
  ASSERT_TRUE(client.ok()) << client.status();
  auto r = (*client)->CallTool("env", {{"name", "GREETING"}});
  ASSERT_TRUE(r.ok()) << r.status();
  auto j = Json::parse(TextOf(*r));
  EXPECT_EQ(j["value"], "bonjour");
  EXPECT_TRUE(j["home"].is_null()) << "parent secrets must not leak by default";
  char real[PATH_MAX];
  ASSERT_NE(realpath(dir.c_str(), real), nullptr);
  EXPECT_EQ(j["cwd"], std::string(real));
}

TEST_F(StdioClientTest, SilentServerFailsToConnectWithinTheTimeouts) {
  ClientOptions options;
  auto o = TransportOptions({"--silent"});
  auto transport = StdioTransport::Create(o);
  ASSERT_TRUE(transport.ok());
  options.discover_timeout = absl::Milliseconds(200);
  options.initialize_timeout = absl::Milliseconds(300);
  absl::Time start = absl::Now();
  auto client = McpClient::Connect(std::move(*transport), options);
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST_F(StdioClientTest, StubbornServerIsKilled) {
  auto o = TransportOptions({"--stubborn"});
  o.shutdown_grace = absl::Milliseconds(200);
  auto transport = StdioTransport::Create(o);
  ASSERT_TRUE(transport.ok());
  StdioTransport* raw = transport->get();
  auto client = McpClient::Connect(std::move(*transport), {});
  ASSERT_TRUE(client.ok()) << client.status();
  pid_t pid = raw->pid();
  ASSERT_GT(pid, 0);
  absl::Time start = absl::Now();
  (*client)->Close();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_NE(kill(pid, 0), 0) << "child still exists after Close()";
}

TEST_F(StdioClientTest, MissingCommandAndDirectoryAreNotFound) {
  StdioTransport::Options o;
  o.name = "missing";
  o.command = "/nonexistent/mcp-server";
  auto t = StdioTransport::Create(o);
  ASSERT_TRUE(t.ok());
  auto client = McpClient::Connect(std::move(*t), {});
  EXPECT_EQ(client.status().code(), absl::StatusCode::kNotFound);
  o.command = "no-such-mcp-server-on-path";
  t = StdioTransport::Create(o);
  ASSERT_TRUE(t.ok());
  client = McpClient::Connect(std::move(*t), {});
  EXPECT_EQ(client.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(client.status().message()), HasSubstr("not found on PATH"));
  o.command = "python3";  // resolved through PATH
  t = StdioTransport::Create(o);
  ASSERT_TRUE(t.ok());
  o.command = kPython;
  o.cwd = "/nonexistent-dir";
  t = StdioTransport::Create(o);
  ASSERT_TRUE(t.ok());
  client = McpClient::Connect(std::move(*t), {});
  EXPECT_EQ(client.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(client.status().message()), HasSubstr("working directory"));
  o.command = "";
  EXPECT_EQ(StdioTransport::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace tessera::mcp
