// The MCP stdio transport for Tessera's server (`tessera mcp stdio`):
// newline-delimited JSON-RPC on `in`/`out`, one message per line, answered in
// order. Nothing but MCP messages is written to `out`; logs go to stderr.
// The caller's key (TESSERA_KEY for the command) comes with `context`.
#ifndef TESSERA_SERVICES_MCP_STDIO_SERVER_H_
#define TESSERA_SERVICES_MCP_STDIO_SERVER_H_

#include <cstddef>
#include <istream>
#include <ostream>

#include "absl/status/status.h"
#include "services/mcp/mcp_server.h"

namespace tessera::mcp {

struct McpStdioOptions {
  // Longer lines are answered with a -32700 error and skipped.
  size_t max_line_bytes = 4 << 20;
};

// Serves until `in` reaches end of file (OK) or `out` fails (UNAVAILABLE).
// One legacy session spans the whole stream.
[[nodiscard]] absl::Status RunMcpStdio(std::istream& in, std::ostream& out, const McpServer& server,
                                       const McpCallContext& context, const McpStdioOptions& options = {});

}  // namespace tessera::mcp

#endif  // TESSERA_SERVICES_MCP_STDIO_SERVER_H_
