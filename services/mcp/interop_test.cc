// Interop: our agents/mcp client over stdio against `test_mcp_server stdio`,
// and the official TypeScript SDK client (@modelcontextprotocol/sdk, from the
// repository's node_modules) over Streamable HTTP. The SDK test skips when
// node or node_modules is missing (run `npm ci` in the repository root).
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "agents/mcp/client.h"
#include "agents/mcp/stdio_transport.h"
#include "agents/mcp/test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/mcp/http_server.h"
#include "services/mcp/testdata/fake_retrieval.h"

namespace tessera::mcp {
namespace {

using ::testing::HasSubstr;

// The source tree holding node_modules: TESSERA_REPO_ROOT, else found by
// resolving our data file (a symlink into the source tree) and walking up.
std::string RepoRootWithNodeModules() {
  if (const char* env = std::getenv("TESSERA_REPO_ROOT"); env != nullptr && *env != '\0') return env;
  char resolved[PATH_MAX];
  const std::string probe = testing::RunfilePath("services/mcp/testdata/sdk_client.mjs");
  if (::realpath(probe.c_str(), resolved) == nullptr) return "";
  std::string dir = resolved;
  for (int i = 0; i < 8; ++i) {
    dir = dir.substr(0, dir.rfind('/'));
    if (dir.empty()) break;
    if (std::ifstream(dir + "/node_modules/@modelcontextprotocol/sdk/package.json")) return dir;
  }
  return "";
}

TEST(McpInteropTest, TesseraClientOverStdio) {
  StdioTransport::Options t;
  t.name = "tessera-stdio";
  t.command = testing::RunfilePath("services/mcp/test_mcp_server");
  t.args = {"stdio"};
  t.env = {{"TESSERA_KEY", "tsk_ann"}};
  auto transport = StdioTransport::Create(std::move(t));
  ASSERT_TRUE(transport.ok()) << transport.status();
  for (bool modern : {true, false}) {
    if (!modern) {
      StdioTransport::Options t2;
      t2.name = "tessera-stdio";
      t2.command = testing::RunfilePath("services/mcp/test_mcp_server");
      t2.args = {"stdio"};
      t2.env = {{"TESSERA_KEY", "tsk_ann"}};
      transport = StdioTransport::Create(std::move(t2));
      ASSERT_TRUE(transport.ok());
    }
    ClientOptions co;
    co.try_modern_era = modern;
    auto client = McpClient::Connect(std::move(*transport), co);
    ASSERT_TRUE(client.ok()) << client.status();
    EXPECT_EQ((*client)->era(), modern ? McpClient::Era::kModern : McpClient::Era::kLegacy);
    auto result = (*client)->CallTool("search", Json{{"query", "revenue"}});
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_THAT(result->content[0].text, HasSubstr("[1] Q3 finance memo"));
    EXPECT_EQ((*result->structured_content)["results"][0]["document_id"], "doc-fin");
    (*client)->Close();
  }
}

TEST(McpInteropTest, OfficialSdkClientOverHttp) {
  const std::string node = testing::FindNode();
  if (node.empty()) GTEST_SKIP() << "node is not installed; skipping the @modelcontextprotocol/sdk interop test";
  const std::string root = RepoRootWithNodeModules();
  if (root.empty() || !std::ifstream(root + "/node_modules/@modelcontextprotocol/sdk/package.json")) {
    GTEST_SKIP() << "node_modules/@modelcontextprotocol/sdk not found (run `npm ci` in the repository root); "
                    "skipping the SDK interop test";
  }
  testing::FakeRetrieval retrieval;
  McpHttpServerOptions o;
  o.server.retrieval_channel = [&retrieval] { return retrieval.channel(); };
  o.validate_key = [](const std::string& key) -> absl::StatusOr<McpKeyInfo> {
    if (key != "tsk_bob") return absl::UnauthenticatedError("unknown key");
    return McpKeyInfo{"bob"};
  };
  auto server = StartMcpHttpServer(std::move(o));
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string script = root + "/services/mcp/testdata/sdk_client.mjs";
  const std::string command = absl::StrCat("cd '", root, "' && '", node, "' '", script, "' '", (*server)->url(),
                                           "' tsk_bob 2>&1");
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0;) output.append(buffer, n);
  const int status = ::pclose(pipe);
  ASSERT_EQ(status, 0) << output;
  const std::string last = output.substr(output.rfind('{', output.find("\"protocolVersion\"")));
  Json seen = Json::parse(last);
  EXPECT_EQ(seen["protocolVersion"], "2025-11-25");
  EXPECT_EQ(seen["sessionId"].get<std::string>().size(), 64u);
  EXPECT_EQ(seen["tools"], Json::array({"search"}));
  EXPECT_THAT(seen["text"].get<std::string>(), HasSubstr("[1] Roadmap 2026"));
  EXPECT_EQ(seen["structured"]["results"][0]["title"], "Roadmap 2026");
  EXPECT_EQ(seen["unknownTool"], kInvalidParams);
  EXPECT_EQ(retrieval.service().authorizations().back(), "Bearer tsk_bob");
  EXPECT_EQ((*server)->session_count(), 0u);  // terminateSession() DELETEd it
}

}  // namespace
}  // namespace tessera::mcp
