// AuthProvider: supplies the Authorization header for MCP Streamable HTTP
// requests and reacts to 401/403 answers. StaticBearerAuth sends a fixed
// token; OAuthAuth (oauth.h) discovers the authorization server, refreshes
// tokens and retries inside the call path.
//
// Implementations are thread-safe: several requests may ask at once.
#ifndef TESSERA_AGENTS_MCP_AUTH_H_
#define TESSERA_AGENTS_MCP_AUTH_H_

#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/http/http_transport.h"

namespace tessera::mcp {

class AuthProvider {
 public:
  virtual ~AuthProvider() = default;
  // The Authorization header value ("Bearer ..."), or empty for none. May
  // refresh an expired token first. UNAUTHENTICATED when no usable
  // credential exists (the message says what to configure).
  [[nodiscard]] virtual absl::StatusOr<std::string> GetAuthorization() = 0;
  // The server answered `status` (401, or 403 with insufficient_scope) with
  // `headers` to a request sent with Authorization `sent_authorization` (""
  // when none). OK means a retry may now succeed (a token was refreshed or
  // obtained, possibly by another request meanwhile); otherwise
  // UNAUTHENTICATED / PERMISSION_DENIED saying why.
  [[nodiscard]] virtual absl::Status OnUnauthorized(int status, const HttpHeaders& headers,
                                                    const std::string& sent_authorization) = 0;
};

class StaticBearerAuth : public AuthProvider {
 public:
  explicit StaticBearerAuth(std::string token) : token_(std::move(token)) {}
  absl::StatusOr<std::string> GetAuthorization() override { return "Bearer " + token_; }
  absl::Status OnUnauthorized(int status, const HttpHeaders& headers, const std::string&) override {
    return absl::UnauthenticatedError(
        "the MCP server rejected the configured bearer token (HTTP " + std::to_string(status) +
        "); check auth.bearer in the server config");
  }

 private:
  const std::string token_;
};

}  // namespace tessera::mcp

#endif  // TESSERA_AGENTS_MCP_AUTH_H_
