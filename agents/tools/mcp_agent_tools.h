// The tools of one MCP server as AgentTools: named "<server>__<tool>" (made safe for the model's
// tool-call format), filtered by the agent's allowlist, with per-tool confirmation and timeouts.
// Calls go through the shared McpClient, which validates results and enforces the timeouts; the
// run's cancellation is passed on as an MCP cancellation.
#ifndef TESSERA_AGENTS_TOOLS_MCP_AGENT_TOOLS_H_
#define TESSERA_AGENTS_TOOLS_MCP_AGENT_TOOLS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agents/mcp/client.h"
#include "agents/orchestrator/agent_tool.h"

namespace tessera::agents {

struct McpToolsOptions {
  std::string server;                       // the agent's name for the server
  std::vector<std::string> allowed_tools;   // MCP names; empty: all
  std::vector<std::string> confirm_tools;   // MCP names, or "*"
  absl::Duration timeout = absl::Seconds(60);
  size_t max_result_bytes = 1 << 20;        // larger results are cut before reaching the loop
};

// Lists the server's tools and wraps them. Errors: those of McpClient::ListTools; NOT_FOUND when an
// allowed tool does not exist on the server (so a typo in a definition is caught at run start).
absl::StatusOr<std::vector<std::unique_ptr<AgentTool>>> MakeMcpAgentTools(std::shared_ptr<mcp::McpClient> client,
                                                                          const McpToolsOptions& options);

}  // namespace tessera::agents

#endif  // TESSERA_AGENTS_TOOLS_MCP_AGENT_TOOLS_H_
