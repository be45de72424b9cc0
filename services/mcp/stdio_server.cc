#include "services/mcp/stdio_server.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"

namespace tessera::mcp {

absl::Status RunMcpStdio(std::istream& in, std::ostream& out, const McpServer& server,
                         const McpCallContext& context, const McpStdioOptions& options) {
  McpSession session;
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    std::optional<Json> reply;
    if (line.size() > options.max_line_bytes) {
      TLOG(WARNING, "mcp stdio: message too large").Field("bytes", static_cast<int64_t>(line.size()));
      reply = MakeError(nullptr, kParseError,
                        absl::StrCat("Parse error: message of ", line.size(), " bytes exceeds the limit of ",
                                     options.max_line_bytes));
    } else {
      reply = server.HandleText(line, session, context);
    }
    if (!reply.has_value()) continue;
    out << Serialize(*reply) << '\n';
    out.flush();
    if (!out) return absl::UnavailableError("mcp stdio: cannot write to stdout");
  }
  return absl::OkStatus();
}

}  // namespace tessera::mcp
