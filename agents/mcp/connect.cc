#include "agents/mcp/connect.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "agents/mcp/http_transport.h"
#include "agents/mcp/stdio_transport.h"
#include "common/status.h"

namespace tessera::mcp {

absl::StatusOr<std::unique_ptr<McpClient>> ConnectServer(const ServerConfig& config, const ConnectDeps& deps) {
  std::unique_ptr<Transport> transport;
  if (config.transport == ServerConfig::TransportKind::kStdio) {
    StdioTransport::Options o;
    o.name = config.name;
    o.command = config.command;
    o.args = config.args;
    o.env = config.env;
    o.cwd = config.cwd;
    o.inherit_env = config.inherit_env;
    o.max_message_bytes = config.max_message_bytes;
    ASSIGN_OR_RETURN(transport, StdioTransport::Create(std::move(o)));
  } else {
    if (deps.http == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("MCP server '", config.name, "' uses http but no HttpTransport was given"));
    }
    StreamableHttpTransport::Options o;
    o.name = config.name;
    o.url = config.url;
    o.headers = config.headers;
    o.http = deps.http;
    o.max_message_bytes = config.max_message_bytes;
    if (!config.bearer_token.empty()) {
      o.auth = std::make_shared<StaticBearerAuth>(config.bearer_token);
    } else if (config.oauth.has_value()) {
      OAuthAuth::Options oo;
      oo.config = *config.oauth;
      oo.server_url = config.url;
      oo.http = deps.http;
      oo.clock = deps.clock;
      if (deps.on_oauth_tokens) {
        std::string name = config.name;
        auto callback = deps.on_oauth_tokens;
        oo.on_tokens = [name, callback](const OAuthTokens& t) { callback(name, t); };
      }
      ASSIGN_OR_RETURN(std::unique_ptr<OAuthAuth> oauth, OAuthAuth::Create(std::move(oo)));
      o.auth = std::shared_ptr<AuthProvider>(std::move(oauth));
    }
    ASSIGN_OR_RETURN(transport, StreamableHttpTransport::Create(std::move(o)));
  }
  ClientOptions options;
  options.server_name = config.name;
  options.try_modern_era = config.try_modern_era;
  options.default_request.timeout = config.timeout;
  options.default_request.hard_timeout = config.max_timeout;
  for (const auto& [uri, name] : config.roots) options.roots.push_back({uri, name});
  return McpClient::Connect(std::move(transport), std::move(options));
}

}  // namespace tessera::mcp
