// ToolRegistry: the MCP tools of several servers under one namespace, as the
// orchestrator offers them to a model.
//
// A tool keeps its own name when no other server has a tool of that name;
// colliding names become "<server>__<tool>" for every server involved.
// Exposed names are made safe for model tool-calling formats
// (^[A-Za-z0-9_-]{1,64}$: '.' becomes '_', long names are shortened with a
// hash suffix), and the registry maps them back to (server, original name).
// Each server's allow/deny filter applies before naming. A server that
// announces list_changed is re-listed on the next tools()/Call().
// Thread-safe.
#ifndef TESSERA_AGENTS_MCP_TOOL_REGISTRY_H_
#define TESSERA_AGENTS_MCP_TOOL_REGISTRY_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agents/mcp/client.h"
#include "agents/mcp/server_config.h"

namespace tessera::mcp {

struct RegisteredTool {
  std::string exposed_name;  // what the model sees and calls
  std::string server;
  ToolInfo tool;             // tool.name is the server's own name
};

class ToolRegistry {
 public:
  // Adds a connected server. INVALID_ARGUMENT for a duplicate server name.
  [[nodiscard]] absl::Status AddServer(std::shared_ptr<McpClient> client, ToolFilter filter = {});

  // Lists every server's tools again and rebuilds the names. A failing
  // server is reported (UNAVAILABLE naming it) after the others are listed;
  // its tools are dropped until the next successful refresh.
  [[nodiscard]] absl::Status Refresh();

  // The current tools, sorted by exposed name; re-lists changed servers.
  [[nodiscard]] std::vector<RegisteredTool> tools();

  // Calls a tool by exposed name. NOT_FOUND for an unknown (or filtered)
  // name; otherwise what McpClient::CallTool returns.
  [[nodiscard]] absl::StatusOr<CallToolResult> Call(const std::string& exposed_name, const Json& arguments,
                                                    const RequestOptions& options);
  // As above, with the server's configured timeouts.
  [[nodiscard]] absl::StatusOr<CallToolResult> Call(const std::string& exposed_name, const Json& arguments);

 private:
  struct Server {
    std::shared_ptr<McpClient> client;
    ToolFilter filter;
    std::vector<ToolInfo> tools;
  };
  absl::StatusOr<CallToolResult> CallImpl(const std::string& exposed_name, const Json& arguments,
                                          const RequestOptions* options);
  void RebuildLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RefreshChanged();

  absl::Mutex mu_;
  std::map<std::string, Server> servers_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, RegisteredTool> by_exposed_ ABSL_GUARDED_BY(mu_);
};

// The model-safe form of a name (see the class comment).
[[nodiscard]] std::string SanitizeToolName(const std::string& name);

}  // namespace tessera::mcp

#endif  // TESSERA_AGENTS_MCP_TOOL_REGISTRY_H_
