// ServerConfig: how Tessera reaches one MCP server, parsed from JSON.
//
//   {"servers": {
//      "files": {"transport": "stdio", "command": "npx", "args": ["-y", "..."],
//                "env": {"TOKEN": "${env:FILES_TOKEN}"}, "cwd": "/srv", "inherit_env": false},
//      "crm":   {"transport": "http", "url": "https://crm.example.com/mcp",
//                "headers": {"X-Team": "sales"},
//                "auth": {"bearer": "${env:CRM_TOKEN}"}            // or
//                "auth": {"oauth": {"client_id": "...", "client_secret": "${env:S}",
//                                   "refresh_token": "${env:R}", "scopes": ["crm.read"]}}},
//   }}
//
// Common optional fields: "timeout_ms" (per request, reset by progress;
// default 60000), "max_timeout_ms" (hard cap; default 600000),
// "max_message_bytes" (default 16 MiB), "protocol" ("auto": try 2026-07-28
// then legacy; "legacy": skip the probe), "roots" ([{"uri","name"}]),
// "tools": {"allow": [...], "deny": [...]} (exact names or "prefix*").
// The transport is always chosen by "transport", never guessed from a URL.
// "${env:NAME}" in string values is replaced by that environment variable,
// so secrets stay out of config files. Errors name the offending field.
#ifndef TESSERA_AGENTS_MCP_SERVER_CONFIG_H_
#define TESSERA_AGENTS_MCP_SERVER_CONFIG_H_

#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agents/mcp/json_rpc.h"

namespace tessera::mcp {

struct OAuthConfig {
  std::string client_id;
  std::string client_secret;  // empty for public clients
  // private_key_jwt client authentication (RFC 7523) for the
  // client_credentials grant: a PEM private key (EC P-256 for ES256, RSA for
  // RS256) and the JWS algorithm (empty: ES256 for EC keys, RS256 for RSA).
  std::string private_key_pem;
  std::string signing_algorithm;
  // Without a client_id: the https URL of this client's Client ID Metadata
  // Document, used as the client_id where the authorization server
  // advertises client_id_metadata_document_supported (else the client
  // registers dynamically, RFC 7591).
  std::string client_metadata_url;
  std::string access_token;   // optional starting token
  std::string refresh_token;
  std::vector<std::string> scopes;
  // Optional overrides; normally discovered from the server's metadata.
  std::string authorization_server;
  std::string token_endpoint;
  std::string resource;  // canonical server URI; defaults to the url
  std::string redirect_uri;
};

struct ToolFilter {
  std::vector<std::string> allow;  // empty: all
  std::vector<std::string> deny;
  // True when `tool` passes: allowed (or no allowlist) and not denied.
  [[nodiscard]] bool Allows(absl::string_view tool) const;
};

struct ServerConfig {
  enum class TransportKind { kStdio, kHttp };
  std::string name;
  TransportKind transport = TransportKind::kStdio;
  // stdio
  std::string command;
  std::vector<std::string> args;
  std::map<std::string, std::string> env;
  std::string cwd;
  bool inherit_env = false;
  // http
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string bearer_token;
  std::optional<OAuthConfig> oauth;
  // common
  absl::Duration timeout = absl::Seconds(60);
  absl::Duration max_timeout = absl::Minutes(10);
  size_t max_message_bytes = 16 << 20;
  bool try_modern_era = true;
  std::vector<std::pair<std::string, std::string>> roots;  // uri, name
  ToolFilter tools;
};

// Parses one server's object. INVALID_ARGUMENT naming "servers.<name>.<field>".
[[nodiscard]] absl::StatusOr<ServerConfig> ParseServerConfig(absl::string_view name, const Json& json);
// Parses {"servers": {...}}; servers come back sorted by name.
[[nodiscard]] absl::StatusOr<std::vector<ServerConfig>> ParseServersConfig(const Json& json);
// Reads and parses a config file. NOT_FOUND when unreadable.
[[nodiscard]] absl::StatusOr<std::vector<ServerConfig>> LoadServersConfigFile(const std::string& path);

}  // namespace tessera::mcp

#endif  // TESSERA_AGENTS_MCP_SERVER_CONFIG_H_
