// The built-in knowledge search tool: the model gives a query, the agent's KnowledgeSearcher runs it
// as the run's principal, and the hits go back to the loop, which numbers them as citable sources.
#ifndef TESSERA_AGENTS_TOOLS_KNOWLEDGE_SEARCH_TOOL_H_
#define TESSERA_AGENTS_TOOLS_KNOWLEDGE_SEARCH_TOOL_H_

#include <string>

#include "agents/definition/definition.h"
#include "agents/orchestrator/agent_tool.h"

namespace tessera::agents {

class KnowledgeSearchTool final : public AgentTool {
 public:
  struct Options {
    std::string name;         // empty: "search_knowledge"
    std::string description;  // empty: a built-in description
    int top_k = 8;
    absl::Duration timeout = absl::Seconds(60);
  };
  // `searcher` is not owned and must outlive the tool.
  KnowledgeSearchTool(KnowledgeSearcher* searcher, Options options);

  tessera::v1::ToolSpec spec() const override;
  absl::Duration timeout() const override { return options_.timeout; }
  // An empty or missing query is an error result for the model; search failures are a status.
  absl::StatusOr<ToolOutput> Call(const std::string& arguments_json, ToolCallContext& context) override;

 private:
  KnowledgeSearcher* searcher_;
  Options options_;
};

}  // namespace tessera::agents

#endif  // TESSERA_AGENTS_TOOLS_KNOWLEDGE_SEARCH_TOOL_H_
