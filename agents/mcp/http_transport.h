// StreamableHttpTransport: the MCP Streamable HTTP transport over the shared
// HttpTransport (common/http), both protocol eras.
//
// Legacy (2025-11-25 and older): every message is a POST to the one endpoint
// with Accept: application/json, text/event-stream; a request's answer comes
// back as one JSON body or as an SSE stream that may carry progress and
// server requests first. The Mcp-Session-Id from the initialize answer and
// MCP-Protocol-Version go on every later request. A stream that ends before
// the response is resumed with GET + Last-Event-ID after the server's
// "retry:". After initialisation a GET stream receives unrelated server
// messages (405 means the server has none). A 404, or a 400 saying the
// session is not valid, is reported as session-expired so the client
// re-initialises. Close() DELETEs the session.
//
// Modern (2026-07-28): messages carrying the _meta protocolVersion envelope
// are sent without session, with MCP-Protocol-Version, Mcp-Method and (for
// tools/call, resources/read, prompts/get) Mcp-Name headers; values that are
// not plain visible ASCII are sent as =?base64?...?=.
//
// Auth: an AuthProvider supplies Authorization on every request; on 401 (or
// 403 insufficient_scope) it may refresh and the request is retried once.
//
// Each request's POST runs on its own thread, which holds only shared state,
// so Close() never waits on a stalled server for long. Thread-safe.
#ifndef TESSERA_AGENTS_MCP_HTTP_TRANSPORT_H_
#define TESSERA_AGENTS_MCP_HTTP_TRANSPORT_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agents/mcp/auth.h"
#include "agents/mcp/transport.h"
#include "common/http/http_transport.h"

namespace tessera::mcp {

class StreamableHttpTransport : public Transport {
 public:
  struct Options {
    std::string name;  // server name, for logs
    std::string url;   // the MCP endpoint, http(s)://host/mcp
    std::vector<std::pair<std::string, std::string>> headers;  // sent on every request
    std::shared_ptr<AuthProvider> auth;                        // may be null
    std::shared_ptr<HttpTransport> http;                       // required
    size_t max_message_bytes = 16 << 20;
    bool open_get_stream = true;
    // Upper bound for one POST exchange; the client's own timeouts are
    // normally much shorter and abandon the request earlier.
    absl::Duration request_timeout = absl::Hours(1);
    absl::Duration connect_timeout = absl::Seconds(10);
    // A GET stream is re-opened (with Last-Event-ID) after this long.
    absl::Duration get_stream_timeout = absl::Minutes(5);
    int max_resume_attempts = 5;
    absl::Duration max_retry_delay = absl::Seconds(5);
  };

  // INVALID_ARGUMENT for a missing http transport or a URL that is not
  // http(s)://.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<StreamableHttpTransport>> Create(Options options);
  ~StreamableHttpTransport() override;

  [[nodiscard]] absl::Status Start(TransportCallbacks callbacks) override;
  [[nodiscard]] absl::Status Send(const Json& message) override;
  void Abandon(const Json& id) override;
  void SetProtocolVersion(absl::string_view version) override;
  void OnInitialized() override;
  void ResetSession() override;
  void Close() override;
  [[nodiscard]] std::string Describe() const override;

  // The current session id ("" when none), for tests and diagnostics.
  [[nodiscard]] std::string session_id() const;

  struct Shared;  // state shared with the worker threads (http_transport.cc)

 private:
  explicit StreamableHttpTransport(std::shared_ptr<Shared> shared);
  std::shared_ptr<Shared> shared_;
};

// Encodes a header value for the 2026-07-28 Mcp-Name / Mcp-Param-* headers:
// as is when it is visible ASCII without leading or trailing spaces, else
// "=?base64?<base64 of the UTF-8>?=".
[[nodiscard]] std::string EncodeMcpHeaderValue(absl::string_view value);

}  // namespace tessera::mcp

#endif  // TESSERA_AGENTS_MCP_HTTP_TRANSPORT_H_
