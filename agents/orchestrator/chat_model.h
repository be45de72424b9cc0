// ChatModel: where the agent loop gets its completions. One interface for every model backend:
// the shared engine (EngineService, through its stub, in services/agents), an OpenAI-compatible
// chat-completions server (agents/models), and test doubles. It speaks the engine's wire messages
// so that the engine backend is a pass-through and every backend reports the same events.
#ifndef TESSERA_AGENTS_ORCHESTRATOR_CHAT_MODEL_H_
#define TESSERA_AGENTS_ORCHESTRATOR_CHAT_MODEL_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "agents/orchestrator/cancellation.h"
#include "tessera/v1/engine.pb.h"

namespace tessera::agents {

class ChatModel {
 public:
  virtual ~ChatModel() = default;

  // Generates the next assistant message for `request` (chat `messages` with `tools`, never a raw
  // prompt) and blocks until it is complete. `on_event` is called on the calling thread or on a
  // backend thread, never concurrently, with the events of an EngineService.Generate stream in
  // their order: TokenEvents and ToolCallEvents, then one UsageEvent (when the backend knows the
  // counts), then exactly one FinishEvent, which is the last call.
  //
  // Returns OK once the FinishEvent was delivered (whatever its reason). Otherwise no FinishEvent
  // was delivered, and the status says why: the backend refused the request before generating
  // (INVALID_ARGUMENT, NOT_FOUND for an unknown model, RESOURCE_EXHAUSTED when overloaded,
  // UNAUTHENTICATED/PERMISSION_DENIED for bad backend credentials), could not be reached or broke
  // off mid-stream (UNAVAILABLE, DEADLINE_EXCEEDED), or `cancel` fired (CANCELLED). Events already
  // delivered stand.
  [[nodiscard]] virtual absl::Status Generate(
      const tessera::v1::GenerateRequest& request, Cancellation& cancel,
      const std::function<void(const tessera::v1::GenerateResponse&)>& on_event) = 0;

  // A short description for logs and errors, e.g. "engine:mistral-7b" or "openai:http://host/v1".
  [[nodiscard]] virtual std::string Describe() const = 0;
};

}  // namespace tessera::agents

#endif  // TESSERA_AGENTS_ORCHESTRATOR_CHAT_MODEL_H_
