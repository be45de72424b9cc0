// OpenAiChatModel: a ChatModel backed by any server that speaks the OpenAI
// chat-completions API (vLLM, llama.cpp's llama-server, Mistral's API, ...),
// for deployments that already serve their model and do not want the shared
// engine to load it. It translates a GenerateRequest into one streamed
// POST {base_url}/chat/completions and the server's Server-Sent Events back
// into the engine's GenerateResponse events, so the agent loop cannot tell the
// two backends apart.
//
// Mapping (request):
//   * messages: ROLE_SYSTEM/USER/ASSISTANT/TOOL -> "system"/"user"/
//     "assistant"/"tool"; assistant tool calls as
//     [{id, type:"function", function:{name, arguments}}] (content null when
//     empty); tool messages carry tool_call_id and, when set, name.
//   * tools: [{type:"function", function:{name, description, parameters}}],
//     parameters parsed from parameters_json_schema (empty ->
//     {"type":"object","properties":{}}). tool_choice (only sent with tools):
//     "auto" / "none" / "required" / {type:"function", function:{name}}.
//   * sampling: temperature, top_p, seed, max_tokens (when > 0), stop.
//     Not sent: top_k and repetition_penalty (not in the OpenAI API; vLLM and
//     llama.cpp accept them under different names and semantics, Mistral's API
//     rejects unknown fields), and truncate_prompt (no equivalent: an over-long
//     prompt is the server's 400, i.e. INVALID_ARGUMENT). A raw `prompt`
//     request is INVALID_ARGUMENT: ChatModel takes chats only.
// Mapping (response):
//   * delta.content -> TokenEvent (token_ids empty: the server's ids are not
//     exposed); delta.tool_calls fragments accumulate by index and become one
//     ToolCallEvent per call once the stream ends (an id "call_<n>" is made up
//     when the server sends none); the usage chunk -> UsageEvent;
//     finish_reason stop/length/tool_calls -> FINISH_REASON_STOP/LENGTH/
//     TOOL_CALLS ("stop" with a vLLM stop_reason naming one of the request's
//     stop strings -> STOP_SEQUENCE; "stop" with tool calls -> TOOL_CALLS);
//     content_filter -> FINISH_REASON_ERROR, error code 9 (FAILED_PRECONDITION).
//   * Tool calls whose arguments are not a JSON object (or that lack a name)
//     are not delivered: like the engine, the stream then ends with
//     FINISH_REASON_TOOL_CALLS and error code 3 (INVALID_ARGUMENT), worded for
//     the model.
//   * A server that ignores stream=true and answers with one JSON document is
//     mapped to the same events.
//
// Smoke test against llama.cpp's server (any small instruct GGUF):
//   llama-server -m qwen2.5-0.5b-instruct-q4_k_m.gguf --jinja --port 8080
//   then build Options{.base_url = "http://127.0.0.1:8080/v1",
//   .model = "anything"} with a CurlHttpTransport and Generate a two-message
//   chat; expect TokenEvents, a UsageEvent and FINISH_REASON_STOP. (--jinja
//   enables tool calls; with tools declared expect ToolCallEvents.) Against
//   vLLM: `vllm serve <model> --enable-auto-tool-choice --tool-call-parser
//   hermes`, base_url http://host:8000/v1.
#ifndef TESSERA_AGENTS_MODELS_OPENAI_CHAT_MODEL_H_
#define TESSERA_AGENTS_MODELS_OPENAI_CHAT_MODEL_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "agents/orchestrator/chat_model.h"
#include "common/clock.h"
#include "common/http/http_transport.h"
#include "tessera/v1/engine.pb.h"

namespace tessera::agents {

// Thread-safe: Generate may be called concurrently (each call is one HTTP
// exchange), as far as the transport is thread-safe (HttpTransport's are).
//
// Generate's errors, beyond ChatModel's contract:
//   INVALID_ARGUMENT   a request the mapping cannot express (raw prompt, no
//                      messages, ROLE_UNSPECIFIED, a tool schema that is not
//                      JSON, no model name), or the server's 400/422.
//   UNAUTHENTICATED / PERMISSION_DENIED  the server's 401 / 403.
//   NOT_FOUND          the server's 404 (usually an unknown model name).
//   RESOURCE_EXHAUSTED 429 after max_retries retries; an answer larger than
//                      max_output_bytes; one SSE event over max_event_bytes.
//   UNAVAILABLE        503 after retries, other 5xx, connection failures, the
//                      stream ending before a finish_reason, malformed chunks.
//   DEADLINE_EXCEEDED  Options::timeout elapsed.
//   CANCELLED          `cancel` fired.
// Messages name the redacted base URL and quote the server's error.message
// (shortened); they never contain the API key or request bodies.
//
// Cancellation is noticed between retries and each time bytes arrive:
// HttpTransport offers no way to interrupt a transfer that is silent, so a
// stalled server is only abandoned at the next byte or at Options::timeout.
class OpenAiChatModel final : public ChatModel {
 public:
  struct Options {
    // The API root, e.g. "http://host:8000/v1" (vLLM, llama.cpp) or
    // "https://api.mistral.ai/v1"; "/chat/completions" is appended. http or
    // https, no query string or fragment; a trailing '/' is dropped.
    std::string base_url;
    // Sent as "Authorization: Bearer <api_key>" when not empty. Never logged
    // and never part of an error message.
    std::string api_key;
    // The remote model name. Empty: GenerateRequest.model is sent.
    std::string model;
    // Bounds one whole exchange (connect, prompt processing, every token).
    absl::Duration timeout = absl::Minutes(5);
    absl::Duration connect_timeout = absl::Seconds(10);
    // Retries of 429 and 503 (which the server did not act on) before any
    // event was delivered. Waits honour Retry-After (seconds or HTTP date),
    // else back off exponentially from `initial_backoff`, doubling, capped at
    // `max_backoff`. A Retry-After longer than `max_retry_after` is not waited
    // for: the error is surfaced at once.
    int max_retries = 2;
    absl::Duration initial_backoff = absl::Seconds(1);
    absl::Duration max_backoff = absl::Seconds(30);
    absl::Duration max_retry_after = absl::Minutes(2);
    // Cap on the answer: generated text plus tool-call arguments (and, for a
    // non-streamed answer, twice this for the raw JSON body).
    size_t max_output_bytes = 8 << 20;
    // Cap on one Server-Sent Event.
    size_t max_event_bytes = 1 << 20;
    // Sends stream_options.include_usage=true so that the server reports
    // token counts. Turn off for a server that rejects the field.
    bool request_stream_usage = true;
  };

  // Validates `options` and the URL. `transport` is shared (it must live as
  // long as the model); `clock` (not owned, must outlive the model) drives the
  // retry waits. Errors: INVALID_ARGUMENT for a bad base_url or nonsensical
  // options or a null transport.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<OpenAiChatModel>> Create(
      Options options, std::shared_ptr<HttpTransport> transport, Clock* clock = RealClock());

  [[nodiscard]] absl::Status Generate(
      const tessera::v1::GenerateRequest& request, Cancellation& cancel,
      const std::function<void(const tessera::v1::GenerateResponse&)>& on_event) override;

  // "openai:<base_url> model <model>" (model "<per request>" when unset).
  [[nodiscard]] std::string Describe() const override;

  // The JSON body Generate sends for `request` (stream on). Exposed for tests
  // and debugging; errors as Generate's INVALID_ARGUMENT.
  [[nodiscard]] absl::StatusOr<std::string> BuildRequestBody(
      const tessera::v1::GenerateRequest& request) const;

 private:
  OpenAiChatModel(Options options, std::shared_ptr<HttpTransport> transport, Clock* clock);

  const Options options_;
  const std::shared_ptr<HttpTransport> transport_;
  Clock* const clock_;
};

// Parses a Retry-After header value: delta-seconds ("120") or an HTTP date
// (IMF-fixdate, RFC 850 or asctime), relative to `now`; a past date is zero.
// nullopt when it is neither. (Same rules as connectors/http's parser, which
// agents/ may not depend on.)
[[nodiscard]] std::optional<absl::Duration> ParseRetryAfterValue(absl::string_view value,
                                                                 absl::Time now);

}  // namespace tessera::agents

#endif  // TESSERA_AGENTS_MODELS_OPENAI_CHAT_MODEL_H_
