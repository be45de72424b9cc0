// McpHttpServer: the MCP Streamable HTTP transport for Tessera's server, on
// cpp-httplib (Debian libcpp-httplib-dev).
//
// One endpoint (default /mcp):
//   POST   a JSON-RPC message. Legacy era: initialize creates a session whose
//          id (256 bits from OpenSSL RAND_bytes, hex) comes back in
//          Mcp-Session-Id and must accompany every later request; unknown or
//          ended sessions get 404, a missing one 400. MCP-Protocol-Version,
//          when sent, must be a version we speak (400). Modern era
//          (2026-07-28, the _meta envelope): no session; MCP-Protocol-Version,
//          Mcp-Method and Mcp-Name must agree with the body (400, -32020).
//          Requests are answered as application/json or, when configured, as
//          a text/event-stream carrying one `message` event; notifications
//          and responses get 202.
//   DELETE ends the session named by Mcp-Session-Id (404 when unknown).
//   GET    405: we send no unsolicited messages.
// Before anything else every request passes, in order:
//   Host validation against DNS rebinding (403; allowed: localhost,
//   127.0.0.1, [::1], the bound host and allowed_hosts), Origin validation
//   (absent is fine; else an allowed origin or, by default, a loopback one;
//   403 otherwise), and authentication: Authorization: Bearer <key> checked
//   by the injected validator (401 with WWW-Authenticate: Bearer otherwise).
//   A session belongs to the key that created it; other keys get 404.
// Bodies over max_body_bytes get 413.
//
// Thread-safe; requests are served on cpp-httplib's worker threads.
#ifndef TESSERA_SERVICES_MCP_HTTP_SERVER_H_
#define TESSERA_SERVICES_MCP_HTTP_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/mcp/mcp_server.h"

namespace tessera::mcp {

// What the key validator learns about a valid key: an id that sessions are
// bound to (never the key itself).
struct McpKeyInfo {
  std::string key_id;
};

// Checks an API key (without the "Bearer " prefix). UNAUTHENTICATED (or any
// error) rejects the request with 401. Called on worker threads: thread-safe.
using McpKeyValidator = std::function<absl::StatusOr<McpKeyInfo>(const std::string& key)>;

struct McpHttpServerOptions {
  // Loopback by default; "0.0.0.0" exposes the server (then list the names
  // clients use in allowed_hosts). Port 0 picks a free port.
  std::string host = "127.0.0.1";
  int port = 0;
  std::string path = "/mcp";
  // Exact origins ("https://app.example.com") browsers may call from.
  std::vector<std::string> allowed_origins;
  // http(s)://localhost|127.0.0.1|[::1][:port] origins are allowed too.
  bool allow_loopback_origins = true;
  // Host header names (without port) accepted besides the loopback names
  // and `host`.
  std::vector<std::string> allowed_hosts;
  McpKeyValidator validate_key;  // required
  // Only for the conformance harness, which cannot send credentials: a
  // request without Authorization is treated as carrying this key. Never
  // set in production.
  std::string unauthenticated_key_for_tests;
  // Optional RFC 9728 metadata URL advertised in WWW-Authenticate.
  std::string resource_metadata_url;
  McpServerOptions server;
  size_t max_body_bytes = 4 << 20;
  size_t max_sessions = 10000;
  absl::Duration session_idle_timeout = absl::Hours(1);
  // Answer requests as text/event-stream instead of application/json.
  bool sse_responses = false;
  int worker_threads = 8;
};

class McpHttpServer {
 public:
  virtual ~McpHttpServer() = default;
  [[nodiscard]] virtual int port() const = 0;
  // http://host:port/path
  [[nodiscard]] virtual std::string url() const = 0;
  // The core, e.g. to add tools before clients connect.
  [[nodiscard]] virtual McpServer& server() = 0;
  [[nodiscard]] virtual size_t session_count() const = 0;
  // Stops listening and waits for the serving thread. Idempotent; the
  // destructor calls it.
  virtual void Stop() = 0;
};

// Binds and starts serving on a background thread. INVALID_ARGUMENT for
// missing validate_key or a bad path; UNAVAILABLE when the address cannot be
// bound.
[[nodiscard]] absl::StatusOr<std::unique_ptr<McpHttpServer>> StartMcpHttpServer(McpHttpServerOptions options);

}  // namespace tessera::mcp

#endif  // TESSERA_SERVICES_MCP_HTTP_SERVER_H_
