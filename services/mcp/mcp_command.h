// The body of `tessera mcp stdio`: serves Tessera's MCP tools over stdin and
// stdout for a local MCP client (an IDE, a desktop assistant). Searches go to
// the Tessera server at `server_address` with the caller's API key (taken
// from TESSERA_KEY by the command), so results honour that key's
// permissions. Logs go to stderr only.
#ifndef TESSERA_SERVICES_MCP_MCP_COMMAND_H_
#define TESSERA_SERVICES_MCP_MCP_COMMAND_H_

#include <istream>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "grpcpp/security/credentials.h"

namespace tessera::mcp {

struct McpStdioCommandOptions {
  std::string server_address = "127.0.0.1:7600";  // the gateway's gRPC endpoint
  std::string key;                                 // "tsk_..."; required
  std::shared_ptr<grpc::ChannelCredentials> credentials;  // null: insecure (localhost)
  std::vector<std::string> default_collections;
};

// INVALID_ARGUMENT without a key; otherwise as RunMcpStdio.
[[nodiscard]] absl::Status RunMcpStdioCommand(const McpStdioCommandOptions& options, std::istream& in,
                                              std::ostream& out);

}  // namespace tessera::mcp

#endif  // TESSERA_SERVICES_MCP_MCP_COMMAND_H_
