#include "services/mcp/mcp_command.h"

#include "grpcpp/create_channel.h"
#include "services/mcp/agent_tools.h"
#include "services/mcp/mcp_server.h"
#include "services/mcp/stdio_server.h"

namespace tessera::mcp {

absl::Status RunMcpStdioCommand(const McpStdioCommandOptions& options, std::istream& in, std::ostream& out) {
  if (options.key.empty()) {
    return absl::InvalidArgumentError(
        "no API key: set TESSERA_KEY (create one with `tessera admin create-key`)");
  }
  std::shared_ptr<grpc::ChannelCredentials> creds =
      options.credentials ? options.credentials : grpc::InsecureChannelCredentials();
  std::shared_ptr<grpc::Channel> channel = grpc::CreateChannel(options.server_address, creds);
  McpServerOptions server_options;
  server_options.retrieval_channel = [channel] { return channel; };
  server_options.default_collections = options.default_collections;
  McpServer server(std::move(server_options));
  AgentToolsOptions agent_tools;
  agent_tools.agents_channel = [channel] { return channel; };
  if (absl::Status s = AddAgentTools(server, std::move(agent_tools)); !s.ok()) return s;
  McpCallContext context;
  context.bearer_key = options.key;
  return RunMcpStdio(in, out, server, context);
}

}  // namespace tessera::mcp
