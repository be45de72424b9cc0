// AgentRunner: one run of an agent, the loop at the heart of the product. It builds the chat (the
// agent's instructions, the conversation's history, the user's message), asks the model for the
// next message with the agent's tools declared, runs the tool calls the model makes (approved
// first when the tool asks for confirmation; independent calls concurrently, each under its
// timeout), feeds the results back, and repeats until the model answers without calling tools or a
// limit is reached. It streams typed events (agents.proto RunResponse) as it goes and returns what
// the conversation should store.
//
// Knowledge-search hits become numbered sources; the answer's [n] markers are checked against them
// and reported as CitationEvents. With no generative model (model "extractive"), the run answers
// extractively: the best passages for the question, with citations, labelled as such.
//
// Failures the model can act on (a tool error, a timeout, a denied approval, a malformed call, the
// same call repeated) become tool results it reads; failures of the model itself end the run with
// an ErrorEvent and RunDone(ERROR). Nothing here blocks forever: cancellation interrupts the model
// call, tool calls and approval waits.
#ifndef TESSERA_AGENTS_ORCHESTRATOR_AGENT_RUNNER_H_
#define TESSERA_AGENTS_ORCHESTRATOR_AGENT_RUNNER_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "agents/orchestrator/agent_tool.h"
#include "agents/orchestrator/cancellation.h"
#include "agents/orchestrator/chat_model.h"
#include "common/clock.h"
#include "tessera/v1/agents.pb.h"

namespace tessera::agents {

// The model id that selects extractive answers (no generative model).
inline constexpr char kExtractiveModel[] = "extractive";

enum class ApprovalDecision { kApproved, kDenied, kExpired, kCancelled };

// Where approvals come from (services/agents: ApproveToolCall). Thread-safe.
class ApprovalGate {
 public:
  virtual ~ApprovalGate() = default;
  // Registers the pending call, then calls `announce` (which streams the ApprovalRequired event, so
  // that an approval can never arrive before the call is known), then waits until the user decides,
  // `request.expire_time` passes, or `cancel` fires.
  virtual ApprovalDecision Await(const tessera::v1::ApprovalRequired& request,
                                 const std::function<void()>& announce, Cancellation& cancel) = 0;
};

struct RunnerOptions {
  // The most bytes of one tool result given to the model; the rest is cut with a note.
  size_t max_tool_result_bytes = 64 << 10;
  // The most characters of one knowledge hit shown to the model.
  size_t max_chars_per_hit = 1500;
  // How long an approval may wait.
  absl::Duration approval_timeout = absl::Minutes(10);
  // After a tool call's timeout fires, how long the loop waits for it to return.
  absl::Duration cancel_grace = absl::Seconds(10);
  // Passages in an extractive answer.
  int extractive_passages = 3;
};

struct RunInput {
  const tessera::v1::AgentDefinition* definition = nullptr;
  std::string run_id;
  std::string conversation_id;
  // Earlier messages of the conversation, oldest first (user and assistant turns).
  std::vector<tessera::v1::ChatMessage> history;
  std::string user_message;
  // Who the run acts for, for the instructions ("You are answering ann@acme.com").
  std::string user;
  // Problems found while preparing the run that it survives (an MCP server that could not be
  // reached): reported as recovered ErrorEvents first, and told to the model.
  std::vector<absl::Status> setup_errors;
};

struct RunOutcome;

struct RunDeps {
  ChatModel* model = nullptr;  // required unless the agent's model is "extractive"
  std::vector<AgentTool*> tools;  // as the agent declares them (knowledge search and MCP tools)
  KnowledgeSearcher* knowledge = nullptr;  // for extractive answers
  ApprovalGate* approvals = nullptr;       // null: calls needing approval are denied
  Clock* clock = RealClock();
  // Called once, just before RunDone is sent, to store what the run adds to the conversation;
  // returns the id of the stored answer (RunDone.message_id), or "" when none was stored.
  std::function<std::string(const RunOutcome&)> persist;
};

struct RunOutcome {
  tessera::v1::RunFinishReason finish_reason = tessera::v1::RUN_FINISH_REASON_UNSPECIFIED;
  std::string answer;  // the concatenated MessageDeltas
  std::vector<tessera::v1::Citation> citations;
  tessera::v1::Usage usage;
  int iterations = 0;
  // The messages this run adds to the conversation: the user's message, then the final assistant
  // answer (when there is one). Tool traffic stays in the run's events, not in the history.
  std::vector<tessera::v1::ChatMessage> new_messages;
};

using RunEventSink = std::function<void(tessera::v1::RunResponse event)>;

class AgentRunner {
 public:
  explicit AgentRunner(RunnerOptions options = {}) : options_(std::move(options)) {}

  // Runs to the end and returns the outcome; `sink` receives every event (numbered, with run and
  // conversation ids), the last being RunDone. `sink` is called from the calling thread only.
  RunOutcome Run(const RunInput& input, const RunDeps& deps, Cancellation& cancel,
                 const RunEventSink& sink) const;

 private:
  RunnerOptions options_;
};

// The system message the model gets: the agent's instructions plus how to use its tools and cite.
std::string BuildSystemPrompt(const tessera::v1::AgentDefinition& definition,
                              const std::vector<AgentTool*>& tools, const std::string& user);

}  // namespace tessera::agents

#endif  // TESSERA_AGENTS_ORCHESTRATOR_AGENT_RUNNER_H_
