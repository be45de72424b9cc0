#include "agents/tools/mcp_agent_tools.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agents/mcp/tool_registry.h"
#include "agents/mcp/types.h"
#include "agents/orchestrator/citations.h"

namespace tessera::agents {
namespace {

class McpAgentTool final : public AgentTool {
 public:
  McpAgentTool(std::shared_ptr<mcp::McpClient> client, mcp::ToolInfo info, std::string exposed, bool confirm,
               const McpToolsOptions& options)
      : client_(std::move(client)),
        info_(std::move(info)),
        exposed_(std::move(exposed)),
        confirm_(confirm),
        server_(options.server),
        timeout_(options.timeout),
        max_result_bytes_(options.max_result_bytes) {}

  tessera::v1::ToolSpec spec() const override {
    tessera::v1::ToolSpec s;
    s.set_name(exposed_);
    s.set_description(info_.description.empty() ? info_.title : info_.description);
    s.set_parameters_json_schema(info_.input_schema.is_object() ? info_.input_schema.dump() : "{}");
    return s;
  }
  std::string server() const override { return server_; }
  bool requires_approval() const override { return confirm_; }
  absl::Duration timeout() const override { return timeout_; }

  absl::StatusOr<ToolOutput> Call(const std::string& arguments_json, ToolCallContext& context) override {
    mcp::Json args = mcp::Json::parse(arguments_json.empty() ? "{}" : arguments_json, nullptr, false);
    if (args.is_discarded() || !args.is_object()) {
      return ToolOutput{"The arguments must be a JSON object.", true};
    }
    mcp::RequestOptions opts;
    const absl::Duration left = std::max(absl::Milliseconds(1), context.deadline - absl::Now());
    opts.timeout = std::min(timeout_, left);
    opts.hard_timeout = opts.timeout;
    opts.cancellation = std::make_shared<mcp::CancellationToken>();
    std::optional<ScopedCancelCallback> link;
    if (context.cancel != nullptr) {
      link.emplace(*context.cancel, [token = opts.cancellation] { token->Cancel(); });
    }
    absl::StatusOr<mcp::CallToolResult> r = client_->CallTool(info_.name, args, opts);
    if (!r.ok()) {
      return absl::Status(r.status().code(), absl::StrCat("MCP server '", server_, "': ", r.status().message()));
    }
    ToolOutput out;
    out.is_error = r->is_error;
    out.content = mcp::RenderContentAsText(*r);
    if (out.content.size() > max_result_bytes_) {
      out.content = absl::StrCat(TruncateUtf8(out.content, max_result_bytes_), "\n[truncated: ", out.content.size(),
                                 " bytes]");
    }
    if (r->structured_content.has_value()) out.structured_content_json = r->structured_content->dump();
    return out;
  }

 private:
  std::shared_ptr<mcp::McpClient> client_;
  mcp::ToolInfo info_;
  std::string exposed_;
  bool confirm_;
  std::string server_;
  absl::Duration timeout_;
  size_t max_result_bytes_;
};

}  // namespace

absl::StatusOr<std::vector<std::unique_ptr<AgentTool>>> MakeMcpAgentTools(std::shared_ptr<mcp::McpClient> client,
                                                                          const McpToolsOptions& options) {
  absl::StatusOr<std::vector<mcp::ToolInfo>> listed = client->ListTools();
  if (!listed.ok()) {
    return absl::Status(listed.status().code(),
                        absl::StrCat("MCP server '", options.server, "': listing tools: ", listed.status().message()));
  }
  for (const std::string& want : options.allowed_tools) {
    if (std::none_of(listed->begin(), listed->end(), [&](const mcp::ToolInfo& t) { return t.name == want; })) {
      std::vector<std::string> names;
      for (const auto& t : *listed) names.push_back(t.name);
      return absl::NotFoundError(absl::StrCat("MCP server '", options.server, "' has no tool '", want,
                                              "' (allowed_tools); it has: ", absl::StrJoin(names, ", ")));
    }
  }
  auto listed_in = [](const std::vector<std::string>& list, const std::string& name) {
    return std::find(list.begin(), list.end(), name) != list.end();
  };
  const bool confirm_all = listed_in(options.confirm_tools, "*");
  std::vector<std::unique_ptr<AgentTool>> out;
  for (const mcp::ToolInfo& t : *listed) {
    if (!options.allowed_tools.empty() && !listed_in(options.allowed_tools, t.name)) continue;
    const std::string exposed = mcp::SanitizeToolName(options.server + "__" + t.name);
    out.push_back(std::make_unique<McpAgentTool>(client, t, exposed,
                                                 confirm_all || listed_in(options.confirm_tools, t.name), options));
  }
  return out;
}

}  // namespace tessera::agents
