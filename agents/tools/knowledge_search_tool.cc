#include "agents/tools/knowledge_search_tool.h"

#include "absl/strings/ascii.h"
#include "nlohmann/json.hpp"

namespace tessera::agents {

KnowledgeSearchTool::KnowledgeSearchTool(KnowledgeSearcher* searcher, Options options)
    : searcher_(searcher), options_(std::move(options)) {
  if (options_.name.empty()) options_.name = std::string(kDefaultKnowledgeToolName);
  if (options_.description.empty()) {
    options_.description =
        "Searches the company's documents (mail, drives, sites) that the user may see and returns the "
        "most relevant passages as numbered sources. Use short, specific queries.";
  }
  if (options_.top_k <= 0) options_.top_k = 8;
}

tessera::v1::ToolSpec KnowledgeSearchTool::spec() const {
  tessera::v1::ToolSpec s;
  s.set_name(options_.name);
  s.set_description(options_.description);
  s.set_parameters_json_schema(
      R"({"type":"object","properties":{"query":{"type":"string","description":"What to look for, in a few words."}},"required":["query"]})");
  return s;
}

absl::StatusOr<ToolOutput> KnowledgeSearchTool::Call(const std::string& arguments_json, ToolCallContext& context) {
  ToolOutput out;
  out.is_knowledge_search = true;
  nlohmann::json args = nlohmann::json::parse(arguments_json.empty() ? "{}" : arguments_json, nullptr, false);
  if (args.is_object() && args.contains("query") && args["query"].is_string()) {
    out.query = std::string(absl::StripAsciiWhitespace(args["query"].get<std::string>()));
  }
  if (out.query.empty()) {
    out.is_knowledge_search = false;
    out.is_error = true;
    out.content = R"(The search needs a non-empty "query" string, e.g. {"query": "travel expense policy"}.)";
    return out;
  }
  Cancellation never;
  absl::StatusOr<std::vector<tessera::v1::SearchHit>> hits =
      searcher_->Search(out.query, options_.top_k, context.cancel ? *context.cancel : never, context.deadline);
  if (!hits.ok()) return hits.status();
  out.hits = std::move(*hits);
  return out;
}

}  // namespace tessera::agents
