// McpServer: Tessera's MCP server core, independent of the transport.
//
// It takes one parsed JSON-RPC message at a time and returns the response to
// send (or nothing, for notifications and for responses a client sends us).
// Both protocol eras are spoken:
//   * legacy (2025-11-25 and older): initialize negotiates a version per
//     session (echoed when we support it, else our latest), then
//     notifications/initialized; requests other than ping before initialize
//     are refused;
//   * modern (2026-07-28): every request carries params._meta with
//     io.modelcontextprotocol/protocolVersion and clientCapabilities;
//     server/discover describes us; results carry resultType and
//     _meta.io.modelcontextprotocol/serverInfo. Unsupported versions get
//     -32022 with the supported list.
// Tools: `search` (knowledge search through RetrievalService.Search with the
// caller's bearer key forwarded, so results honour the caller's
// permissions), plus any tool added with AddTool (agents, later; tests).
//
// Thread-safe: Handle() may run concurrently for different sessions; one
// McpSession must not be used by two threads at once (transports serialise
// per session or give each request its own).
#ifndef TESSERA_SERVICES_MCP_MCP_SERVER_H_
#define TESSERA_SERVICES_MCP_MCP_SERVER_H_

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agents/mcp/json_rpc.h"
#include "grpcpp/channel.h"

namespace tessera::mcp {

// Who is calling, as the transport authenticated it.
struct McpCallContext {
  // The caller's API key ("tsk_..."), forwarded as `authorization: Bearer`
  // on internal gRPC calls so that the gateway applies the caller's
  // permissions. Never logged.
  std::string bearer_key;
};

// Per-connection (stdio) or per-Mcp-Session-Id (HTTP) legacy state.
struct McpSession {
  std::string protocol_version;  // negotiated by initialize; empty before
  bool initialized = false;      // notifications/initialized received
  Json client_info;
};

// A tool served in addition to `search`. The handler returns the
// tools/call result ({"content":[...], "structuredContent"?, "isError"?});
// a non-OK status becomes an isError result carrying its message.
struct McpToolDef {
  Json descriptor;  // {"name","description","inputSchema",...} as tools/list shows it
  std::function<absl::StatusOr<Json>(const Json& arguments, const McpCallContext& context)> handler;
};

struct McpServerOptions {
  std::string name = "tessera";
  std::string title = "Tessera";
  std::string version = "0.1.0";
  std::string instructions =
      "Tessera searches the organisation's documents (mail, drive, sharepoint, uploads) with the "
      "caller's permissions. Use `search` and cite results as [n].";
  // Builds the channel to RetrievalService (the gateway's endpoint, which
  // checks the forwarded bearer key). Null: the search tool is not offered.
  std::function<std::shared_ptr<grpc::ChannelInterface>()> retrieval_channel;
  // Collections searched when a call names none; empty means every
  // collection the caller can list.
  std::vector<std::string> default_collections;
  absl::Duration search_timeout = absl::Seconds(30);
  int tools_page_size = 50;
};

// Versions we speak, preferred first.
inline constexpr const char* kSupportedLegacyVersions[] = {"2025-11-25", "2025-06-18", "2025-03-26",
                                                           "2024-11-05"};
inline constexpr char kServerModernVersion[] = "2026-07-28";
inline constexpr char kMetaProtocolVersion[] = "io.modelcontextprotocol/protocolVersion";
inline constexpr char kMetaClientCapabilities[] = "io.modelcontextprotocol/clientCapabilities";
inline constexpr char kMetaServerInfo[] = "io.modelcontextprotocol/serverInfo";

// True for the legacy versions above and 2026-07-28.
[[nodiscard]] bool IsSupportedProtocolVersion(absl::string_view version);

class McpServer {
 public:
  explicit McpServer(McpServerOptions options);

  // Adds a tool (before serving). INVALID_ARGUMENT for a bad or duplicate
  // name or a descriptor without an object inputSchema.
  [[nodiscard]] absl::Status AddTool(McpToolDef tool);

  // Handles one message. Returns the response for requests; nullopt for
  // notifications and for results/errors sent to us (we send no requests).
  // Malformed messages get -32600 (id null when the id is unusable).
  [[nodiscard]] std::optional<Json> Handle(const Json& message, McpSession& session,
                                           const McpCallContext& context) const;
  // Parses `text` first; unparseable text gets -32700 with a null id.
  [[nodiscard]] std::optional<Json> HandleText(absl::string_view text, McpSession& session,
                                               const McpCallContext& context) const;

  [[nodiscard]] Json ServerInfo() const;
  [[nodiscard]] Json Capabilities() const;
  [[nodiscard]] const McpServerOptions& options() const { return options_; }

 private:
  struct RpcError {
    int code;
    std::string message;
    Json data;
  };
  using Reply = std::variant<Json, RpcError>;
  Reply Dispatch(const std::string& method, const Json& params, bool modern, McpSession& session,
                 const McpCallContext& context) const;
  Reply ListTools(const Json& params) const;
  Reply CallTool(const Json& params, const McpCallContext& context) const;
  absl::StatusOr<Json> Search(const Json& arguments, const McpCallContext& context) const;
  std::vector<const McpToolDef*> SortedTools() const;

  const McpServerOptions options_;
  mutable absl::Mutex mu_;
  std::map<std::string, McpToolDef> tools_ ABSL_GUARDED_BY(mu_);
};

// The `search` tool's descriptor (name, description, inputSchema,
// outputSchema, annotations).
[[nodiscard]] Json SearchToolDescriptor();

}  // namespace tessera::mcp

#endif  // TESSERA_SERVICES_MCP_MCP_SERVER_H_
