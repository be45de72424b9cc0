// Helpers shared by the MCP tests: locating runfiles and the repository's
// node_modules (for the npm reference servers), and temporary directories.
#ifndef TESSERA_AGENTS_MCP_TEST_UTIL_H_
#define TESSERA_AGENTS_MCP_TEST_UTIL_H_

#include <string>
#include <vector>

namespace tessera::mcp::testing {

// Absolute path of a file in this test's runfiles ("agents/mcp/testdata/x").
std::string RunfilePath(const std::string& workspace_relative);

// The repository root holding node_modules/@modelcontextprotocol, found via
// TESSERA_REPO_ROOT, then by walking up from the runfiles' real paths (the
// test's data files are symlinks into the source tree). Empty when absent.
std::string FindNodeModulesRoot();

// /usr/bin/node or node on PATH; empty when absent.
std::string FindNode();

// A fresh directory under TEST_TMPDIR (or /tmp).
std::string MakeTempDir(const std::string& prefix);

// A background process for tests (an HTTP MCP server): own process group,
// output to `log_path`, killed (SIGTERM then SIGKILL) on destruction.
class ChildProcess {
 public:
  ChildProcess() = default;
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  // argv[0] is an absolute path. `env` entries are "NAME=value", added to ours.
  bool Start(const std::vector<std::string>& argv, const std::vector<std::string>& env, const std::string& log_path);
  int pid() const { return pid_; }

 private:
  int pid_ = -1;
};

// A TCP port that was free a moment ago on 127.0.0.1.
int PickFreePort();
// Polls until something accepts connections on 127.0.0.1:port.
bool WaitForPort(int port, int timeout_ms);

}  // namespace tessera::mcp::testing

#endif  // TESSERA_AGENTS_MCP_TEST_UTIL_H_
