// Transport: how the MCP client moves JSON-RPC messages to and from one
// server. Implementations: StdioTransport (a child process, one message per
// line) and StreamableHttpTransport (POST + SSE). The client never knows
// which one it has beyond the hooks below.
//
// Delivery contract: after Start(), the transport calls Callbacks from its own
// threads, one call at a time (never concurrently), in the order messages
// arrived. on_request_failed reports that the transport could not obtain a
// response for an outgoing request (HTTP status, dropped stream, lost
// session); on_closed reports once that the connection is gone for good.
// Callbacks must not call Close().
#ifndef TESSERA_AGENTS_MCP_TRANSPORT_H_
#define TESSERA_AGENTS_MCP_TRANSPORT_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "agents/mcp/json_rpc.h"

namespace tessera::mcp {

struct TransportCallbacks {
  std::function<void(const Json& message)> on_message;
  std::function<void(const Json& id, const absl::Status& status)> on_request_failed;
  std::function<void(const absl::Status& status)> on_closed;
};

// Marks `status` as "the server forgot our session; initialise again".
[[nodiscard]] absl::Status MarkSessionExpired(absl::Status status);
[[nodiscard]] bool IsSessionExpired(const absl::Status& status);

class Transport {
 public:
  virtual ~Transport() = default;

  // Connects (spawns the process, checks the URL). Called once.
  [[nodiscard]] virtual absl::Status Start(TransportCallbacks callbacks) = 0;

  // Sends one message. Thread-safe. For a request, the response arrives later
  // through on_message (or on_request_failed). Errors: UNAVAILABLE when the
  // connection is closed, DEADLINE_EXCEEDED when the peer stops reading.
  [[nodiscard]] virtual absl::Status Send(const Json& message) = 0;

  // Stops waiting for the response to request `id` (after a timeout or a
  // cancellation). HTTP drops that response stream; stdio has nothing to do.
  virtual void Abandon(const Json& id) {}

  // Told by the client after version negotiation (legacy era) so HTTP can
  // send MCP-Protocol-Version; empty clears it.
  virtual void SetProtocolVersion(absl::string_view version) {}
  // Legacy handshake finished: HTTP may open its GET stream.
  virtual void OnInitialized() {}
  // Forget any session (before re-initialising).
  virtual void ResetSession() {}

  // Orderly shutdown; idempotent; no callbacks after it returns.
  virtual void Close() = 0;

  // For messages: "stdio:<command>" or the URL.
  [[nodiscard]] virtual std::string Describe() const = 0;
};

}  // namespace tessera::mcp

#endif  // TESSERA_AGENTS_MCP_TRANSPORT_H_
