// Bodies of the `tessera mcp tools` and `tessera mcp call` commands: connect
// to every server of an MCP config file (see server_config.h), then list the
// tools under their registry names, or call one and print its result.
// The real HttpTransport (curl) is built here, as in a main.
#ifndef TESSERA_AGENTS_MCP_CLI_H_
#define TESSERA_AGENTS_MCP_CLI_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"

namespace tessera::mcp {

// Prints one line per tool: "<name>\t<server>\t<description>". Servers that
// fail to connect are reported on `out` and make the status non-OK after
// the others are listed.
[[nodiscard]] absl::Status RunMcpToolsCommand(const std::string& config_path, std::ostream& out);

// Calls `tool` (a name as printed by the tools command) with `args_json` (a
// JSON object; empty means {}). Prints the content as text, then the
// structuredContent as JSON when present. INVALID_ARGUMENT for bad JSON,
// NOT_FOUND for an unknown tool, ABORTED when the tool reported isError.
[[nodiscard]] absl::Status RunMcpCallCommand(const std::string& config_path, const std::string& tool,
                                             const std::string& args_json, std::ostream& out);

}  // namespace tessera::mcp

#endif  // TESSERA_AGENTS_MCP_CLI_H_
