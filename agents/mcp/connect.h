// ConnectServer: builds the transport a ServerConfig names (stdio or http,
// with bearer or OAuth auth) and connects an McpClient over it.
#ifndef TESSERA_AGENTS_MCP_CONNECT_H_
#define TESSERA_AGENTS_MCP_CONNECT_H_

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "agents/mcp/client.h"
#include "agents/mcp/oauth.h"
#include "agents/mcp/server_config.h"
#include "common/clock.h"
#include "common/http/http_transport.h"

namespace tessera::mcp {

struct ConnectDeps {
  // Required for http servers (and OAuth); shared by all of them.
  std::shared_ptr<HttpTransport> http;
  Clock* clock = RealClock();
  // Receives rotated OAuth tokens of a server, to persist them.
  std::function<void(const std::string& server, const OAuthTokens&)> on_oauth_tokens;
};

// Errors: INVALID_ARGUMENT for an http server without deps.http, otherwise
// those of McpClient::Connect.
[[nodiscard]] absl::StatusOr<std::unique_ptr<McpClient>> ConnectServer(const ServerConfig& config,
                                                                       const ConnectDeps& deps);

}  // namespace tessera::mcp

#endif  // TESSERA_AGENTS_MCP_CONNECT_H_
