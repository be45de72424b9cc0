#include "agents/mcp/cli.h"

#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agents/mcp/connect.h"
#include "agents/mcp/tool_registry.h"
#include "common/http/curl_http_transport.h"
#include "common/status.h"

namespace tessera::mcp {
namespace {

absl::StatusOr<std::unique_ptr<ToolRegistry>> ConnectAll(const std::string& config_path, std::ostream& out,
                                                         std::vector<std::string>* failures) {
  ASSIGN_OR_RETURN(std::vector<ServerConfig> servers, LoadServersConfigFile(config_path));
  if (servers.empty()) return absl::InvalidArgumentError(absl::StrCat(config_path, ": no servers configured"));
  ConnectDeps deps;
  ASSIGN_OR_RETURN(std::unique_ptr<CurlHttpTransport> curl, CurlHttpTransport::Create({}));
  deps.http = std::shared_ptr<HttpTransport>(std::move(curl));
  auto registry = std::make_unique<ToolRegistry>();
  for (const ServerConfig& config : servers) {
    auto client = ConnectServer(config, deps);
    if (!client.ok()) {
      out << "error: " << client.status().message() << "\n";
      failures->push_back(config.name);
      continue;
    }
    RETURN_IF_ERROR(registry->AddServer(std::shared_ptr<McpClient>(std::move(*client)), config.tools));
  }
  absl::Status refreshed = registry->Refresh();
  if (!refreshed.ok()) out << "error: " << refreshed.message() << "\n";
  return registry;
}

}  // namespace

absl::Status RunMcpToolsCommand(const std::string& config_path, std::ostream& out) {
  std::vector<std::string> failures;
  ASSIGN_OR_RETURN(std::unique_ptr<ToolRegistry> registry, ConnectAll(config_path, out, &failures));
  for (const RegisteredTool& t : registry->tools()) {
    std::string description = t.tool.description;
    size_t newline = description.find('\n');
    if (newline != std::string::npos) description = description.substr(0, newline);
    out << t.exposed_name << "\t" << t.server << "\t" << description << "\n";
  }
  if (!failures.empty()) {
    return absl::UnavailableError(absl::StrCat("could not connect to MCP server(s): ", absl::StrJoin(failures, ", ")));
  }
  return absl::OkStatus();
}

absl::Status RunMcpCallCommand(const std::string& config_path, const std::string& tool, const std::string& args_json,
                               std::ostream& out) {
  Json args = Json::object();
  if (!args_json.empty()) {
    auto parsed = ParseJson(args_json);
    if (!parsed.ok()) return absl::InvalidArgumentError(absl::StrCat("tool arguments: ", parsed.status().message()));
    if (!parsed->is_object()) return absl::InvalidArgumentError("tool arguments must be a JSON object");
    args = *parsed;
  }
  std::vector<std::string> failures;
  ASSIGN_OR_RETURN(std::unique_ptr<ToolRegistry> registry, ConnectAll(config_path, out, &failures));
  auto result = registry->Call(tool, args);  // the server config's timeouts
  if (!result.ok()) return result.status();
  out << RenderContentAsText(*result) << "\n";
  if (result->structured_content.has_value()) out << Serialize(*result->structured_content) << "\n";
  if (result->is_error) return absl::AbortedError(absl::StrCat("tool '", tool, "' reported an error (see output)"));
  return absl::OkStatus();
}

}  // namespace tessera::mcp
