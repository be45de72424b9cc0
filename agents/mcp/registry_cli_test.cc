// ToolRegistry and the CLI bodies over two scripted stdio servers whose tool
// names collide.
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "agents/mcp/cli.h"
#include "agents/mcp/connect.h"
#include "agents/mcp/test_util.h"
#include "agents/mcp/tool_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::mcp {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPython[] = "/usr/bin/python3";

TEST(SanitizeToolNameTest, MakesModelSafeNames) {
  EXPECT_EQ(SanitizeToolName("get-sum"), "get-sum");
  EXPECT_EQ(SanitizeToolName("files.read"), "files_read");
  std::string long_name(100, 'a');
  std::string s = SanitizeToolName(long_name);
  EXPECT_EQ(s.size(), 64u);
  EXPECT_NE(s, SanitizeToolName(std::string(99, 'a') + "b"));
}

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kPython, X_OK) != 0) GTEST_SKIP() << "python3 not installed at " << kPython;
    script_ = testing::RunfilePath("agents/mcp/testdata/scripted_server.py");
  }
  ServerConfig Config(const std::string& name) {
    ServerConfig c;
    c.name = name;
    c.command = kPython;
    c.args = {script_};
    return c;
  }
  std::string script_;
};

TEST_F(RegistryTest, CollidingNamesAreNamespacedAndFiltersApply) {
  ServerConfig a = Config("alpha");
  a.tools.allow = {"echo", "exec_error", "good_structured"};
  ServerConfig b = Config("beta");
  b.tools.allow = {"echo", "all_content"};
  ConnectDeps deps;
  auto ca = ConnectServer(a, deps);
  ASSERT_TRUE(ca.ok()) << ca.status();
  auto cb = ConnectServer(b, deps);
  ASSERT_TRUE(cb.ok()) << cb.status();
  ToolRegistry registry;
  ASSERT_TRUE(registry.AddServer(std::shared_ptr<McpClient>(std::move(*ca)), a.tools).ok());
  ASSERT_TRUE(registry.AddServer(std::shared_ptr<McpClient>(std::move(*cb)), b.tools).ok());
  ASSERT_TRUE(registry.Refresh().ok());
  std::vector<std::string> names;
  for (const auto& t : registry.tools()) names.push_back(t.exposed_name);
  EXPECT_EQ(names, (std::vector<std::string>{"all_content", "alpha__echo", "beta__echo", "exec_error",
                                             "good_structured"}));
  auto r = registry.Call("beta__echo", {{"message", "via beta"}});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(RenderContentAsText(*r), "Echo: via beta");
  EXPECT_EQ(registry.Call("echo", Json::object()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(registry.Call("never", Json::object()).status().code(), absl::StatusCode::kNotFound);  // filtered
}

TEST_F(RegistryTest, CliListsAndCalls) {
  std::string dir = testing::MakeTempDir("mcp-cli-");
  std::string path = dir + "/mcp.json";
  {
    std::ofstream out(path);
    out << Json{{"servers",
                 {{"one", {{"transport", "stdio"}, {"command", kPython}, {"args", {script_}}, {"tools", {{"allow", {"echo", "exec_error", "good_structured"}}}}}},
                  {"two", {{"transport", "stdio"}, {"command", kPython}, {"args", {script_}}, {"tools", {{"allow", {"echo"}}}}}}}}}
               .dump();
  }
  std::ostringstream tools_out;
  ASSERT_TRUE(RunMcpToolsCommand(path, tools_out).ok()) << tools_out.str();
  EXPECT_THAT(tools_out.str(), HasSubstr("one__echo\tone\techo\n"));
  EXPECT_THAT(tools_out.str(), HasSubstr("two__echo\ttwo\t"));
  EXPECT_THAT(tools_out.str(), HasSubstr("exec_error\tone\t"));

  std::ostringstream call_out;
  ASSERT_TRUE(RunMcpCallCommand(path, "two__echo", R"({"message":"cli"})", call_out).ok()) << call_out.str();
  EXPECT_EQ(call_out.str(), "Echo: cli\n");

  std::ostringstream structured_out;
  ASSERT_TRUE(RunMcpCallCommand(path, "good_structured", "", structured_out).ok());
  EXPECT_THAT(structured_out.str(), HasSubstr("{\"sum\":42}"));

  std::ostringstream error_out;
  EXPECT_EQ(RunMcpCallCommand(path, "exec_error", "{}", error_out).code(), absl::StatusCode::kAborted);
  EXPECT_THAT(error_out.str(), HasSubstr("division by zero"));
  std::ostringstream bad_out;
  EXPECT_EQ(RunMcpCallCommand(path, "two__echo", "[1]", bad_out).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(RunMcpCallCommand(path, "nope", "{}", bad_out).code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(RunMcpToolsCommand(dir + "/missing.json", bad_out).code(), absl::StatusCode::kNotFound);
}

TEST_F(RegistryTest, UnreachableServerIsReportedButOthersListed) {
  std::string dir = testing::MakeTempDir("mcp-cli2-");
  std::string path = dir + "/mcp.json";
  {
    std::ofstream out(path);
    out << Json{{"servers",
                 {{"good", {{"transport", "stdio"}, {"command", kPython}, {"args", {script_}}, {"tools", {{"allow", {"echo"}}}}}},
                  {"broken", {{"transport", "stdio"}, {"command", "/nonexistent/server"}}}}}}
               .dump();
  }
  std::ostringstream out;
  absl::Status s = RunMcpToolsCommand(path, out);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(s.message()), HasSubstr("broken"));
  EXPECT_THAT(out.str(), HasSubstr("echo\tgood"));
  EXPECT_THAT(out.str(), HasSubstr("cannot execute"));
}

}  // namespace
}  // namespace tessera::mcp
