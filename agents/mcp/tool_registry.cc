#include "agents/mcp/tool_registry.h"

#include <cstdio>
#include <set>
#include <utility>

#include "absl/hash/hash.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/logging.h"

namespace tessera::mcp {
namespace {

constexpr size_t kMaxExposedName = 64;

std::string ShortHash(const std::string& s) {
  // FNV-1a: stable across processes and builds, unlike absl::Hash.
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(h));
  return std::string(buf, 8);
}

}  // namespace

std::string SanitizeToolName(const std::string& name) {
  std::string out;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
    out.push_back(ok ? c : '_');
  }
  if (out.empty()) out = "tool";
  if (out.size() > kMaxExposedName) out = absl::StrCat(out.substr(0, kMaxExposedName - 9), "_", ShortHash(name));
  return out;
}

absl::Status ToolRegistry::AddServer(std::shared_ptr<McpClient> client, ToolFilter filter) {
  if (client == nullptr) return absl::InvalidArgumentError("ToolRegistry::AddServer: null client");
  absl::MutexLock lock(&mu_);
  const std::string& name = client->server_name();
  if (servers_.count(name)) {
    return absl::InvalidArgumentError(absl::StrCat("MCP server name '", name, "' is used twice"));
  }
  servers_[name] = Server{std::move(client), std::move(filter), {}};
  return absl::OkStatus();
}

absl::Status ToolRegistry::Refresh() {
  std::vector<std::pair<std::string, std::shared_ptr<McpClient>>> clients;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [name, s] : servers_) clients.emplace_back(name, s.client);
  }
  std::vector<std::string> failures;
  std::map<std::string, std::vector<ToolInfo>> listed;
  for (auto& [name, client] : clients) {
    auto tools = client->ListTools();
    if (!tools.ok()) {
      failures.push_back(absl::StrCat(name, ": ", tools.status().message()));
      listed[name] = {};
      continue;
    }
    listed[name] = std::move(*tools);
  }
  {
    absl::MutexLock lock(&mu_);
    for (auto& [name, tools] : listed) {
      auto it = servers_.find(name);
      if (it != servers_.end()) it->second.tools = std::move(tools);
    }
    RebuildLocked();
  }
  if (!failures.empty()) {
    return absl::UnavailableError(absl::StrCat("could not list tools of MCP server(s): ", absl::StrJoin(failures, "; ")));
  }
  return absl::OkStatus();
}

void ToolRegistry::RebuildLocked() {
  by_exposed_.clear();
  // Count raw names across servers (after filters) to find collisions.
  std::map<std::string, int> count;
  for (auto& [server, s] : servers_) {
    for (const ToolInfo& t : s.tools) {
      if (s.filter.Allows(t.name)) ++count[SanitizeToolName(t.name)];
    }
  }
  for (auto& [server, s] : servers_) {
    for (const ToolInfo& t : s.tools) {
      if (!s.filter.Allows(t.name)) continue;
      std::string base = SanitizeToolName(t.name);
      std::string exposed = count[base] > 1 ? SanitizeToolName(absl::StrCat(server, "__", t.name)) : base;
      if (by_exposed_.count(exposed)) {
        // Still colliding after namespacing ("a.b" vs "a_b"): disambiguate.
        exposed = SanitizeToolName(absl::StrCat(exposed, "_", ShortHash(absl::StrCat(server, "/", t.name))));
      }
      if (count[base] > 1) {
        TLOG(DEBUG, "mcp tool name collides across servers; namespaced")
            .Field("tool", t.name)
            .Field("exposed", exposed);
      }
      by_exposed_[exposed] = RegisteredTool{exposed, server, t};
    }
  }
}

absl::Status ToolRegistry::RefreshChanged() {
  bool any = false;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [name, s] : servers_) any |= s.client->tools_changed();
  }
  if (!any) return absl::OkStatus();
  return Refresh();
}

std::vector<RegisteredTool> ToolRegistry::tools() {
  absl::Status s = RefreshChanged();
  if (!s.ok()) TLOG(WARNING, "mcp tool refresh failed").Field("error", s);
  absl::MutexLock lock(&mu_);
  std::vector<RegisteredTool> out;
  for (auto& [name, t] : by_exposed_) out.push_back(t);
  return out;
}

absl::StatusOr<CallToolResult> ToolRegistry::Call(const std::string& exposed_name, const Json& arguments,
                                                  const RequestOptions& options) {
  return CallImpl(exposed_name, arguments, &options);
}

absl::StatusOr<CallToolResult> ToolRegistry::Call(const std::string& exposed_name, const Json& arguments) {
  return CallImpl(exposed_name, arguments, nullptr);
}

absl::StatusOr<CallToolResult> ToolRegistry::CallImpl(const std::string& exposed_name, const Json& arguments,
                                                      const RequestOptions* options) {
  absl::Status s = RefreshChanged();
  if (!s.ok()) TLOG(WARNING, "mcp tool refresh failed").Field("error", s);
  std::shared_ptr<McpClient> client;
  std::string tool;
  {
    absl::MutexLock lock(&mu_);
    auto it = by_exposed_.find(exposed_name);
    if (it == by_exposed_.end()) {
      return absl::NotFoundError(absl::StrCat("no MCP tool named '", exposed_name,
                                              "' (unknown, removed by the server, or not allowed by its tools filter)"));
    }
    client = servers_[it->second.server].client;
    tool = it->second.tool.name;
  }
  return options ? client->CallTool(tool, arguments, *options) : client->CallTool(tool, arguments);
}

}  // namespace tessera::mcp
