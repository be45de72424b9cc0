// AgentTool: one tool the agent loop may offer the model, whatever is behind it (the built-in
// knowledge search, an MCP server's tool). KnowledgeSearcher: the search the knowledge tool and the
// extractive mode run, already bound to the run's principal and the agent's knowledge settings
// (services/agents implements it over RetrievalService).
#ifndef TESSERA_AGENTS_ORCHESTRATOR_AGENT_TOOL_H_
#define TESSERA_AGENTS_ORCHESTRATOR_AGENT_TOOL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agents/orchestrator/cancellation.h"
#include "tessera/v1/common.pb.h"
#include "tessera/v1/engine.pb.h"

namespace tessera::agents {

// What a call knows about its circumstances.
struct ToolCallContext {
  std::string call_id;
  // Fires when the run is cancelled or the call's timeout passes; the tool must then return
  // promptly (any result is discarded).
  Cancellation* cancel = nullptr;
  // The call's deadline (the loop also cancels at this time).
  absl::Time deadline = absl::InfiniteFuture();
};

// What a call produced, as the model will see it.
struct ToolOutput {
  std::string content;  // text for the model
  bool is_error = false;  // the tool ran and failed; the model sees `content` and may correct itself
  std::string structured_content_json;  // MCP structuredContent, when given
  // Knowledge searches only: the hits (the loop numbers them as citable sources and writes
  // `content` itself), and the query that ran.
  bool is_knowledge_search = false;
  std::string query;
  std::vector<tessera::v1::SearchHit> hits;
};

// Implementations are used by one run at a time but Call may run concurrently with other tools'
// calls; it must be thread-safe with respect to other AgentTools sharing resources.
class AgentTool {
 public:
  virtual ~AgentTool() = default;

  // The name (as the model calls it), description and JSON Schema of the arguments.
  [[nodiscard]] virtual tessera::v1::ToolSpec spec() const = 0;

  // The MCP server the tool belongs to; empty for built-in tools.
  [[nodiscard]] virtual std::string server() const { return ""; }

  // Whether a call waits for the user's approval.
  [[nodiscard]] virtual bool requires_approval() const { return false; }

  // The longest one call may take.
  [[nodiscard]] virtual absl::Duration timeout() const { return absl::Seconds(60); }

  // Runs the call. A non-OK status means the tool could not be run at all (unreachable server,
  // protocol error, timeout, cancellation); the loop shows it to the model as an error result and
  // reports a recovered ErrorEvent. Failures of the tool itself are an OK ToolOutput with is_error.
  [[nodiscard]] virtual absl::StatusOr<ToolOutput> Call(const std::string& arguments_json,
                                                        ToolCallContext& context) = 0;
};

// Searches the agent's knowledge as the run's principal. Thread-safe.
class KnowledgeSearcher {
 public:
  virtual ~KnowledgeSearcher() = default;
  // Hits best first (with their full chunk text in `text` when available). Errors are those of
  // RetrievalService.Search, or CANCELLED.
  [[nodiscard]] virtual absl::StatusOr<std::vector<tessera::v1::SearchHit>> Search(
      const std::string& query, int top_k, Cancellation& cancel, absl::Time deadline) = 0;
};

}  // namespace tessera::agents

#endif  // TESSERA_AGENTS_ORCHESTRATOR_AGENT_TOOL_H_
