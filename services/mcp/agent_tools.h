// Tessera's agents as MCP tools: `list_agents` (the agents the caller may run) and `ask_agent`
// (runs one through AgentService.Run with the caller's key, so the agent acts as the caller and
// sees only their documents; returns the answer with its cited sources). A tool call of the agent
// that needs approval is declined: an MCP client cannot approve it mid-call.
#ifndef TESSERA_SERVICES_MCP_AGENT_TOOLS_H_
#define TESSERA_SERVICES_MCP_AGENT_TOOLS_H_

#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "services/mcp/mcp_server.h"

namespace tessera::mcp {

struct AgentToolsOptions {
  // The gateway's endpoint (which checks the forwarded key).
  std::function<std::shared_ptr<grpc::ChannelInterface>()> agents_channel;
  absl::Duration run_timeout = absl::Minutes(5);
};

// Adds list_agents and ask_agent to `server` (before it serves).
[[nodiscard]] absl::Status AddAgentTools(McpServer& server, AgentToolsOptions options);

}  // namespace tessera::mcp

#endif  // TESSERA_SERVICES_MCP_AGENT_TOOLS_H_
