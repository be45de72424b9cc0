// McpClient: one connection to one MCP server, over any Transport.
//
// Connect() negotiates the protocol: first the stateless 2026-07-28 era
// (server/discover, every request carrying the _meta envelope); on any other
// error than UNAUTHENTICATED / PERMISSION_DENIED (returned as is: auth is not
// an era question), or on timeout, it falls back to the legacy handshake (initialize with
// 2025-11-25, accepting older versions we support, then
// notifications/initialized). Over HTTP, a lost session (404 or "no valid
// session") triggers one re-initialisation and one retry of the request.
//
// Requests have a per-request timeout that progress notifications reset and a
// hard maximum that nothing extends; when either fires, or the caller cancels,
// the client sends notifications/cancelled and ignores any late response.
// Server-to-client requests are answered: ping, roots/list (when roots are
// configured); everything else we did not advertise gets -32601.
//
// Thread-safe: any number of threads may call ListTools/CallTool
// concurrently. Progress and list-changed callbacks run on the transport's
// reader thread; they must be quick and must not call back into the client.
#ifndef TESSERA_AGENTS_MCP_CLIENT_H_
#define TESSERA_AGENTS_MCP_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agents/mcp/json_rpc.h"
#include "agents/mcp/transport.h"
#include "agents/mcp/types.h"

namespace tessera::mcp {

// Shared between a caller and a running request; Cancel() from any thread.
class CancellationToken {
 public:
  void Cancel() { cancelled_.store(true); }
  [[nodiscard]] bool cancelled() const { return cancelled_.load(); }

 private:
  std::atomic<bool> cancelled_{false};
};

struct Progress {
  double progress = 0;
  std::optional<double> total;
  std::string message;
};

struct RequestOptions {
  // Time without a response (or progress) before giving up.
  absl::Duration timeout = absl::Seconds(60);
  // Absolute cap from the start, not extended by progress.
  absl::Duration hard_timeout = absl::Minutes(10);
  // When set, a progressToken is sent and progress notifications land here.
  std::function<void(const Progress&)> on_progress;
  std::shared_ptr<CancellationToken> cancellation;
};

struct Root {
  std::string uri;  // file:// URI
  std::string name;
};

struct ClientOptions {
  std::string server_name = "mcp";  // for messages and logs
  std::string client_name = "tessera";
  std::string client_version = "0.1.0";
  // Try 2026-07-28 first. Turn off for servers known to choke on the probe.
  bool try_modern_era = true;
  // Legacy versions we accept, preferred first.
  std::vector<std::string> legacy_versions = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"};
  // Includes the server's start-up time (npx, node); on expiry we fall back
  // to initialize, which dual-era servers also accept.
  absl::Duration discover_timeout = absl::Seconds(10);
  absl::Duration initialize_timeout = absl::Seconds(30);
  RequestOptions default_request;
  // Declared as the roots capability and served to roots/list when non-empty.
  std::vector<Root> roots;
  // Validate structuredContent against the tool's outputSchema.
  bool validate_structured_content = true;
  // Largest tools/list page count before we assume a cursor loop.
  int max_tool_pages = 100;
};

class McpClient {
 public:
  enum class Era { kLegacy, kModern };

  // Starts the transport and negotiates. Errors: whatever the transport's
  // Start returns; UNAVAILABLE / DEADLINE_EXCEEDED when the server does not
  // answer initialize; FAILED_PRECONDITION when no common protocol version.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<McpClient>> Connect(
      std::unique_ptr<Transport> transport, ClientOptions options);

  ~McpClient();  // Calls Close().
  McpClient(const McpClient&) = delete;
  McpClient& operator=(const McpClient&) = delete;

  // All pages of tools/list, cached for outputSchema validation.
  [[nodiscard]] absl::StatusOr<std::vector<ToolInfo>> ListTools();

  // Calls a tool. Returns the result (is_error marks execution errors) or a
  // Status for protocol errors: UNIMPLEMENTED/INVALID_ARGUMENT/INTERNAL from
  // JSON-RPC errors (RpcErrorCodeOf gives the code), DEADLINE_EXCEEDED,
  // CANCELLED, UNAVAILABLE (server gone), RESOURCE_EXHAUSTED (oversized),
  // FAILED_PRECONDITION (structuredContent violates outputSchema).
  [[nodiscard]] absl::StatusOr<CallToolResult> CallTool(const std::string& name, const Json& arguments,
                                                        const RequestOptions& options);
  [[nodiscard]] absl::StatusOr<CallToolResult> CallTool(const std::string& name, const Json& arguments) {
    return CallTool(name, arguments, options_.default_request);
  }

  [[nodiscard]] absl::Status Ping();

  // Any request; `params` may be null. The _meta envelope is added in the
  // modern era.
  [[nodiscard]] absl::StatusOr<Json> Request(const std::string& method, Json params,
                                             const RequestOptions& options);

  // Invoked (on the reader thread) when the server says its tool list changed.
  void SetToolsChangedCallback(std::function<void()> callback);
  // True once a list_changed arrived since the last ListTools.
  [[nodiscard]] bool tools_changed() const;

  void Close();

  [[nodiscard]] Era era() const;
  [[nodiscard]] std::string protocol_version() const;
  [[nodiscard]] Json server_info() const;
  [[nodiscard]] Json server_capabilities() const;
  [[nodiscard]] const std::string& server_name() const { return options_.server_name; }

 private:
  struct Pending {
    std::string method;
    std::optional<Json> response;   // the whole message
    absl::Status failure;           // transport-level failure
    bool done = false;
    absl::Time last_activity;
    std::function<void(const Progress&)> on_progress;
  };

  McpClient(std::unique_ptr<Transport> transport, ClientOptions options);
  absl::Status Handshake();
  absl::Status TryDiscover();
  absl::Status LegacyInitialize();
  absl::StatusOr<Json> RequestOnce(const std::string& method, const Json& params, const RequestOptions& options);
  Json ClientCapabilities() const;
  Json MetaEnvelope() const;

  void OnMessage(const Json& message);
  void OnRequestFailed(const Json& id, const absl::Status& status);
  void OnClosed(const absl::Status& status);
  void HandleServerRequest(const Json& message);
  void HandleNotification(const Json& message);

  const ClientOptions options_;
  std::unique_ptr<Transport> transport_;
  std::atomic<int64_t> next_id_{1};
  absl::Mutex handshake_mu_;  // serialises (re)initialisation

  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Pending>> pending_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> progress_tokens_ ABSL_GUARDED_BY(mu_);  // token key -> id key
  absl::Status closed_status_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  Era era_ ABSL_GUARDED_BY(mu_) = Era::kLegacy;
  std::string protocol_version_ ABSL_GUARDED_BY(mu_);
  Json server_info_ ABSL_GUARDED_BY(mu_);
  Json server_capabilities_ ABSL_GUARDED_BY(mu_);
  bool tools_changed_ ABSL_GUARDED_BY(mu_) = false;
  bool tools_loaded_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, Json> output_schemas_ ABSL_GUARDED_BY(mu_);
  std::function<void()> tools_changed_callback_ ABSL_GUARDED_BY(mu_);
  int unadvertised_requests_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t session_generation_ ABSL_GUARDED_BY(mu_) = 0;  // bumped by each legacy initialize
};

}  // namespace tessera::mcp

#endif  // TESSERA_AGENTS_MCP_CLIENT_H_
