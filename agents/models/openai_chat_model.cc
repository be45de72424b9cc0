#include "agents/models/openai_chat_model.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "agents/mcp/sse_parser.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace tessera::agents {
namespace {

using Json = nlohmann::json;
using tessera::v1::ChatMessage;
using tessera::v1::FinishReason;
using tessera::v1::GenerateRequest;
using tessera::v1::GenerateResponse;
using EventSink = std::function<void(const GenerateResponse&)>;

// nlohmann throws on invalid UTF-8 when dumping; never let it escape.
std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

Json ParseOrDiscarded(absl::string_view text) {
  return Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
}

std::string Shorten(absl::string_view s, size_t max = 300) {
  s = absl::StripAsciiWhitespace(s);
  if (s.size() <= max) return std::string(s);
  return absl::StrCat(s.substr(0, max), "...");
}

std::string StringField(const Json& j, const char* key) {
  if (!j.is_object()) return "";
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

// The human-readable message of an error body, whatever the server's dialect:
// OpenAI/vLLM/llama.cpp {"error":{"message":..}}, {"error":".."}, vLLM's old
// {"object":"error","message":..}, Mistral/FastAPI {"message"|"detail":..}.
std::string ServerMessage(absl::string_view body) {
  Json doc = ParseOrDiscarded(body);
  if (doc.is_object()) {
    if (auto it = doc.find("error"); it != doc.end()) {
      if (it->is_string()) return Shorten(it->get<std::string>());
      if (std::string m = StringField(*it, "message"); !m.empty()) return Shorten(m);
    }
    if (std::string m = StringField(doc, "message"); !m.empty()) return Shorten(m);
    if (auto it = doc.find("detail"); it != doc.end()) {
      return Shorten(it->is_string() ? it->get<std::string>() : Dump(*it));
    }
  }
  return Shorten(body, 200);
}

absl::StatusCode CodeForHttpStatus(int status) {
  switch (status) {
    case 400:
    case 413:
    case 422:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 408:
    case 504:
      return absl::StatusCode::kDeadlineExceeded;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    default:
      return status >= 500 ? absl::StatusCode::kUnavailable : absl::StatusCode::kInvalidArgument;
  }
}

const char* RoleName(tessera::v1::Role role) {
  switch (role) {
    case tessera::v1::ROLE_SYSTEM:
      return "system";
    case tessera::v1::ROLE_USER:
      return "user";
    case tessera::v1::ROLE_ASSISTANT:
      return "assistant";
    case tessera::v1::ROLE_TOOL:
      return "tool";
    default:
      return nullptr;
  }
}

tessera::v1::RpcStatus RpcError(absl::StatusCode code, std::string message) {
  tessera::v1::RpcStatus s;
  s.set_code(static_cast<int32_t>(code));
  s.set_message(std::move(message));
  return s;
}

// Turns chat-completion chunks (or one whole answer) into GenerateResponse
// events. Text goes out at once; tool calls, usage and the finish wait for
// the end of the stream (the usage chunk follows the finish_reason chunk).
class AnswerAssembler {
 public:
  AnswerAssembler(const GenerateRequest& request, size_t max_output_bytes, const EventSink& sink)
      : request_(request), max_output_bytes_(max_output_bytes), sink_(sink) {}

  // One streamed chunk.
  absl::Status OnChunk(const Json& chunk) {
    if (!chunk.is_object()) return absl::UnavailableError("a stream chunk is not a JSON object");
    if (auto it = chunk.find("error"); it != chunk.end() && !it->is_null()) {
      return absl::UnavailableError(absl::StrCat("the model server reported an error mid-answer: ",
                                                 ServerMessage(Dump(chunk))));
    }
    ReadUsage(chunk);
    const Json* choice = FirstChoice(chunk);
    if (choice == nullptr) return absl::OkStatus();
    if (auto it = choice->find("delta"); it != choice->end() && it->is_object()) {
      RETURN_IF_ERROR(ReadMessage(*it));
    } else if (auto m = choice->find("message"); m != choice->end() && m->is_object()) {
      RETURN_IF_ERROR(ReadMessage(*m));
    }
    ReadFinish(*choice);
    return absl::OkStatus();
  }

  // A whole non-streamed answer (object "chat.completion").
  absl::Status OnFullAnswer(const Json& doc) {
    if (!doc.is_object())
      return absl::UnavailableError("the model server's answer is not a JSON object");
    if (auto it = doc.find("error"); it != doc.end() && !it->is_null()) {
      return absl::UnavailableError(
          absl::StrCat("the model server reported an error: ", ServerMessage(Dump(doc))));
    }
    ReadUsage(doc);
    const Json* choice = FirstChoice(doc);
    if (choice == nullptr)
      return absl::UnavailableError("the model server's answer has no choices");
    if (auto it = choice->find("message"); it != choice->end() && it->is_object()) {
      RETURN_IF_ERROR(ReadMessage(*it));
    } else if (auto d = choice->find("delta"); d != choice->end() && d->is_object()) {
      RETURN_IF_ERROR(ReadMessage(*d));
    }
    ReadFinish(*choice);
    return absl::OkStatus();
  }

  [[nodiscard]] bool finish_seen() const { return finish_reason_.has_value(); }
  [[nodiscard]] bool delivered_any() const { return delivered_any_; }

  // Delivers the tool calls, the usage and the FinishEvent. Requires
  // finish_seen().
  void Finish() {
    GenerateResponse finish_event;
    tessera::v1::FinishEvent* finish = finish_event.mutable_finish();
    const std::string& reason = *finish_reason_;
    std::vector<std::string> problems;
    std::vector<tessera::v1::ToolCall> calls;
    int n = 0;
    for (auto& [index, pending] : tool_calls_) {
      ++n;
      tessera::v1::ToolCall call;
      call.set_id(pending.id.empty() ? absl::StrCat("call_", n) : pending.id);
      call.set_name(pending.name);
      std::string args(absl::StripAsciiWhitespace(pending.arguments));
      if (args.empty()) args = "{}";
      if (pending.name.empty()) {
        problems.push_back(absl::StrCat("tool call ", n, " has no tool name"));
        continue;
      }
      Json parsed = ParseOrDiscarded(args);
      if (parsed.is_discarded()) {
        problems.push_back(absl::StrCat("the arguments of your call to `", pending.name,
                                        "` are not valid JSON: ", Shorten(args, 200)));
        continue;
      }
      if (!parsed.is_object()) {
        problems.push_back(absl::StrCat("the arguments of your call to `", pending.name,
                                        "` must be a JSON object, not ", Shorten(args, 200)));
        continue;
      }
      call.set_arguments_json(std::move(args));
      calls.push_back(std::move(call));
    }
    const bool wants_tools = reason == "tool_calls" || reason == "function_call";
    if (wants_tools && tool_calls_.empty()) {
      problems.push_back(
          "the tool call could not be read: no tool name or arguments were produced");
    }
    if (!problems.empty()) {
      finish->set_reason(tessera::v1::FINISH_REASON_TOOL_CALLS);
      *finish->mutable_error() = RpcError(
          absl::StatusCode::kInvalidArgument,
          absl::StrCat(
              "Your tool calls were malformed, so none was run: ", absl::StrJoin(problems, "; "),
              ". Call the tools again with a tool name and a JSON object as arguments."));
    } else if (!calls.empty()) {
      for (tessera::v1::ToolCall& call : calls) {
        GenerateResponse event;
        *event.mutable_tool_call()->mutable_tool_call() = std::move(call);
        Deliver(event);
      }
      finish->set_reason(tessera::v1::FINISH_REASON_TOOL_CALLS);
    } else if (reason == "length") {
      finish->set_reason(tessera::v1::FINISH_REASON_LENGTH);
    } else if (reason == "content_filter") {
      finish->set_reason(tessera::v1::FINISH_REASON_ERROR);
      *finish->mutable_error() = RpcError(absl::StatusCode::kFailedPrecondition,
                                          "the model server's content filter stopped the answer");
    } else if (!stop_reason_.empty() &&
               std::find(request_.sampling().stop().begin(), request_.sampling().stop().end(),
                         stop_reason_) != request_.sampling().stop().end()) {
      finish->set_reason(tessera::v1::FINISH_REASON_STOP_SEQUENCE);
      finish->set_stop_sequence(stop_reason_);
    } else {
      finish->set_reason(tessera::v1::FINISH_REASON_STOP);
    }
    if (usage_.has_value()) {
      GenerateResponse event;
      *event.mutable_usage()->mutable_usage() = *usage_;
      Deliver(event);
    }
    Deliver(finish_event);
  }

 private:
  struct PendingCall {
    std::string id;
    std::string name;
    std::string arguments;
  };

  static const Json* FirstChoice(const Json& doc) {
    auto it = doc.find("choices");
    if (it == doc.end() || !it->is_array()) return nullptr;
    for (const Json& c : *it) {
      if (!c.is_object()) continue;
      auto idx = c.find("index");
      if (idx == c.end() || !idx->is_number_integer() || idx->get<int64_t>() == 0) return &c;
    }
    return nullptr;
  }

  void Deliver(const GenerateResponse& event) {
    delivered_any_ = true;
    sink_(event);
  }

  absl::Status Count(size_t bytes) {
    output_bytes_ += bytes;
    if (output_bytes_ > max_output_bytes_) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "the model's answer exceeded ", max_output_bytes_, " bytes (max_output_bytes)"));
    }
    return absl::OkStatus();
  }

  // A delta or a whole message.
  absl::Status ReadMessage(const Json& message) {
    if (auto it = message.find("content"); it != message.end() && it->is_string()) {
      const std::string& text = it->get_ref<const std::string&>();
      if (!text.empty()) {
        RETURN_IF_ERROR(Count(text.size()));
        GenerateResponse event;
        event.mutable_token()->set_text(text);
        Deliver(event);
      }
    }
    auto calls = message.find("tool_calls");
    if (calls == message.end() || !calls->is_array()) return absl::OkStatus();
    for (const Json& fragment : *calls) {
      if (!fragment.is_object())
        return absl::UnavailableError("a tool_calls entry is not a JSON object");
      std::string id = StringField(fragment, "id");
      int64_t index;
      if (auto idx = fragment.find("index"); idx != fragment.end() && idx->is_number_integer()) {
        index = idx->get<int64_t>();
      } else {
        // No index (some servers send whole calls): a new id is a new call.
        auto same = std::find_if(tool_calls_.begin(), tool_calls_.end(),
                                 [&](const auto& kv) { return !id.empty() && kv.second.id == id; });
        if (same != tool_calls_.end()) {
          index = same->first;
        } else if (id.empty() && !tool_calls_.empty()) {
          index = tool_calls_.rbegin()->first;
        } else {
          index = tool_calls_.empty() ? 0 : tool_calls_.rbegin()->first + 1;
        }
      }
      if (index < 0 || index > 1024)
        return absl::UnavailableError("a tool call index is out of range");
      PendingCall& pending = tool_calls_[index];
      if (!id.empty()) pending.id = id;
      auto fn = fragment.find("function");
      if (fn == fragment.end() || !fn->is_object()) continue;
      // Names come whole (some servers repeat them in every fragment).
      if (std::string name = StringField(*fn, "name"); !name.empty()) pending.name = name;
      if (auto args = fn->find("arguments"); args != fn->end()) {
        // Arguments are text pieces; a server may also send a whole object.
        std::string piece = args->is_string() ? args->get<std::string>()
                            : args->is_null() ? ""
                                              : Dump(*args);
        RETURN_IF_ERROR(Count(piece.size()));
        pending.arguments += piece;
      }
    }
    return absl::OkStatus();
  }

  void ReadFinish(const Json& choice) {
    if (auto it = choice.find("finish_reason"); it != choice.end() && it->is_string()) {
      finish_reason_ = it->get<std::string>();
    }
    // vLLM: the stop string that ended generation.
    if (auto it = choice.find("stop_reason"); it != choice.end() && it->is_string()) {
      stop_reason_ = it->get<std::string>();
    }
  }

  void ReadUsage(const Json& doc) {
    auto it = doc.find("usage");
    if (it == doc.end() || !it->is_object()) return;
    auto number = [&](const char* key) -> int64_t {
      auto v = it->find(key);
      return v != it->end() && v->is_number_integer() ? v->get<int64_t>() : 0;
    };
    tessera::v1::Usage usage;
    usage.set_prompt_tokens(number("prompt_tokens"));
    usage.set_completion_tokens(number("completion_tokens"));
    int64_t total = number("total_tokens");
    usage.set_total_tokens(total > 0 ? total : usage.prompt_tokens() + usage.completion_tokens());
    usage_ = usage;
  }

  const GenerateRequest& request_;
  const size_t max_output_bytes_;
  const EventSink& sink_;
  size_t output_bytes_ = 0;
  bool delivered_any_ = false;
  std::map<int64_t, PendingCall> tool_calls_;
  std::optional<std::string> finish_reason_;
  std::string stop_reason_;
  std::optional<tessera::v1::Usage> usage_;
};

// What one HTTP attempt ended with, for the retry loop.
struct AttemptResult {
  absl::Status status;
  bool retryable = false;  // 429/503, nothing delivered
  std::optional<absl::Duration> retry_after;
};

}  // namespace

std::optional<absl::Duration> ParseRetryAfterValue(absl::string_view value, absl::Time now) {
  value = absl::StripAsciiWhitespace(value);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return absl::ascii_isdigit(c); })) {
    if (value.size() > 9) return absl::Hours(24 * 365);  // absurd; the caller caps it
    int64_t seconds = 0;
    if (!absl::SimpleAtoi(value, &seconds)) return std::nullopt;
    return absl::Seconds(seconds);
  }
  static constexpr const char* kFormats[] = {
      "%a, %d %b %Y %H:%M:%S GMT",  // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
      "%A, %d-%b-%y %H:%M:%S GMT",  // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
      "%a %b %e %H:%M:%S %Y",       // asctime: Sun Nov  6 08:49:37 1994
  };
  for (const char* format : kFormats) {
    absl::Time when;
    std::string error;
    if (absl::ParseTime(format, value, absl::UTCTimeZone(), &when, &error)) {
      return when <= now ? absl::ZeroDuration() : when - now;
    }
  }
  return std::nullopt;
}

absl::StatusOr<std::unique_ptr<OpenAiChatModel>> OpenAiChatModel::Create(
    Options options, std::shared_ptr<HttpTransport> transport, Clock* clock) {
  if (transport == nullptr) return absl::InvalidArgumentError("OpenAiChatModel: transport is null");
  if (clock == nullptr) return absl::InvalidArgumentError("OpenAiChatModel: clock is null");
  std::string& url = options.base_url;
  url = std::string(absl::StripAsciiWhitespace(url));
  while (absl::EndsWith(url, "/")) url.pop_back();
  absl::string_view rest = url;
  if (!absl::ConsumePrefix(&rest, "http://") && !absl::ConsumePrefix(&rest, "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("OpenAiChatModel: base_url must start with http:// or https://, e.g. "
                     "http://host:8000/v1; got '",
                     RedactUrl(url), "'"));
  }
  absl::string_view host = rest.substr(0, rest.find('/'));
  if (host.empty() || absl::StrContains(rest, ' ')) {
    return absl::InvalidArgumentError(
        absl::StrCat("OpenAiChatModel: base_url has no host: '", RedactUrl(url), "'"));
  }
  if (absl::StrContains(rest, '?') || absl::StrContains(rest, '#')) {
    return absl::InvalidArgumentError(
        absl::StrCat("OpenAiChatModel: base_url must not have a query string or fragment: '",
                     RedactUrl(url), "'"));
  }
  if (absl::StrContains(options.api_key, '\n') || absl::StrContains(options.api_key, '\r')) {
    return absl::InvalidArgumentError("OpenAiChatModel: api_key contains a line break");
  }
  if (options.timeout <= absl::ZeroDuration() || options.connect_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("OpenAiChatModel: timeouts must be positive");
  }
  if (options.max_retries < 0 || options.max_retries > 20) {
    return absl::InvalidArgumentError("OpenAiChatModel: max_retries must be in [0, 20]");
  }
  if (options.initial_backoff < absl::ZeroDuration() ||
      options.max_backoff < options.initial_backoff ||
      options.max_retry_after < absl::ZeroDuration()) {
    return absl::InvalidArgumentError("OpenAiChatModel: inconsistent backoff durations");
  }
  if (options.max_output_bytes == 0 || options.max_event_bytes == 0) {
    return absl::InvalidArgumentError("OpenAiChatModel: size caps must be positive");
  }
  return std::unique_ptr<OpenAiChatModel>(
      new OpenAiChatModel(std::move(options), std::move(transport), clock));
}

OpenAiChatModel::OpenAiChatModel(Options options, std::shared_ptr<HttpTransport> transport,
                                 Clock* clock)
    : options_(std::move(options)), transport_(std::move(transport)), clock_(clock) {}

std::string OpenAiChatModel::Describe() const {
  return absl::StrCat("openai:", RedactUrl(options_.base_url), " model ",
                      options_.model.empty() ? "<per request>" : options_.model);
}

absl::StatusOr<std::string> OpenAiChatModel::BuildRequestBody(
    const GenerateRequest& request) const {
  const std::string& model = options_.model.empty() ? request.model() : options_.model;
  if (model.empty()) {
    return absl::InvalidArgumentError("no model name: set Options::model or GenerateRequest.model");
  }
  if (!request.prompt().empty()) {
    return absl::InvalidArgumentError(
        "an OpenAI-compatible chat model takes chat messages, not a raw prompt");
  }
  if (request.messages().empty()) return absl::InvalidArgumentError("the request has no messages");

  Json body = Json::object();
  body["model"] = model;
  Json messages = Json::array();
  for (int i = 0; i < request.messages_size(); ++i) {
    const ChatMessage& m = request.messages(i);
    const char* role = RoleName(m.role());
    if (role == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("message ", i, " has no role"));
    }
    Json out = {{"role", role}};
    if (m.role() == tessera::v1::ROLE_ASSISTANT && m.tool_calls_size() > 0) {
      out["content"] = m.content().empty() ? Json(nullptr) : Json(m.content());
      Json calls = Json::array();
      for (const tessera::v1::ToolCall& call : m.tool_calls()) {
        calls.push_back(
            {{"id", call.id()},
             {"type", "function"},
             {"function",
              {{"name", call.name()},
               {"arguments", call.arguments_json().empty() ? "{}" : call.arguments_json()}}}});
      }
      out["tool_calls"] = std::move(calls);
    } else {
      out["content"] = m.content();
    }
    if (m.role() == tessera::v1::ROLE_TOOL) {
      if (m.tool_call_id().empty()) {
        return absl::InvalidArgumentError(absl::StrCat("tool message ", i, " has no tool_call_id"));
      }
      out["tool_call_id"] = m.tool_call_id();
      if (!m.name().empty()) out["name"] = m.name();
    }
    messages.push_back(std::move(out));
  }
  body["messages"] = std::move(messages);

  if (request.tools_size() > 0) {
    Json tools = Json::array();
    for (const tessera::v1::ToolSpec& tool : request.tools()) {
      Json parameters;
      if (absl::StripAsciiWhitespace(tool.parameters_json_schema()).empty()) {
        parameters = {{"type", "object"}, {"properties", Json::object()}};
      } else {
        parameters = ParseOrDiscarded(tool.parameters_json_schema());
        if (parameters.is_discarded() || !parameters.is_object()) {
          return absl::InvalidArgumentError(absl::StrCat("the parameters schema of tool '",
                                                         tool.name(), "' is not a JSON object"));
        }
      }
      Json function = {{"name", tool.name()}, {"parameters", std::move(parameters)}};
      if (!tool.description().empty()) function["description"] = tool.description();
      tools.push_back({{"type", "function"}, {"function", std::move(function)}});
    }
    body["tools"] = std::move(tools);

    const tessera::v1::ToolChoice& choice = request.tool_choice();
    if (!choice.tool_name().empty()) {
      if (choice.mode() != tessera::v1::TOOL_CHOICE_MODE_UNSPECIFIED &&
          choice.mode() != tessera::v1::TOOL_CHOICE_MODE_REQUIRED) {
        return absl::InvalidArgumentError(
            "tool_choice.tool_name requires mode unspecified or TOOL_CHOICE_MODE_REQUIRED");
      }
      body["tool_choice"] = {{"type", "function"}, {"function", {{"name", choice.tool_name()}}}};
    } else if (choice.mode() == tessera::v1::TOOL_CHOICE_MODE_AUTO) {
      body["tool_choice"] = "auto";
    } else if (choice.mode() == tessera::v1::TOOL_CHOICE_MODE_NONE) {
      body["tool_choice"] = "none";
    } else if (choice.mode() == tessera::v1::TOOL_CHOICE_MODE_REQUIRED) {
      body["tool_choice"] = "required";
    }
  }

  const tessera::v1::SamplingParams& s = request.sampling();
  if (s.has_temperature()) body["temperature"] = s.temperature();
  if (s.has_top_p()) body["top_p"] = s.top_p();
  if (s.has_seed()) body["seed"] = s.seed();
  if (s.max_tokens() > 0) body["max_tokens"] = s.max_tokens();
  if (s.stop_size() > 0)
    body["stop"] = Json(std::vector<std::string>(s.stop().begin(), s.stop().end()));

  body["stream"] = true;
  if (options_.request_stream_usage) body["stream_options"] = {{"include_usage", true}};
  return Dump(body);
}

absl::Status OpenAiChatModel::Generate(const GenerateRequest& request, Cancellation& cancel,
                                       const EventSink& on_event) {
  ASSIGN_OR_RETURN(std::string body, BuildRequestBody(request));
  const std::string url = absl::StrCat(options_.base_url, "/chat/completions");
  const std::string where = absl::StrCat("model server ", RedactUrl(url));
  const std::string& model = options_.model.empty() ? request.model() : options_.model;

  HttpRequest http;
  http.method = "POST";
  http.url = url;
  http.headers = {{"Content-Type", "application/json"},
                  {"Accept", "text/event-stream, application/json"}};
  if (!options_.api_key.empty()) {
    http.headers.emplace_back("Authorization", absl::StrCat("Bearer ", options_.api_key));
  }
  http.body = std::move(body);
  http.timeout = options_.timeout;
  http.connect_timeout = options_.connect_timeout;

  // Nothing the server says may echo the key back into our logs.
  auto scrub = [&](std::string text) {
    if (!options_.api_key.empty()) absl::StrReplaceAll({{options_.api_key, "[redacted]"}}, &text);
    return text;
  };
  const absl::Status cancelled =
      absl::CancelledError(absl::StrCat("generation by ", where, " cancelled"));

  // One exchange. Everything runs on this thread (the transport calls back on it).
  auto attempt = [&]() -> AttemptResult {
    AttemptResult result;
    int http_status = 0;
    HttpHeaders headers;
    enum class Mode { kUnknown, kSse, kJson } mode = Mode::kUnknown;
    std::string raw;  // the error body, or a non-streamed JSON answer
    mcp::SseParser parser(options_.max_event_bytes);
    AnswerAssembler answer(request, options_.max_output_bytes, on_event);
    absl::Status abort;  // why a callback stopped the transfer
    bool done = false;

    auto on_sse = [&](const mcp::SseEvent& ev) {
      if (!abort.ok() || done) return;
      absl::string_view data = absl::StripAsciiWhitespace(ev.data);
      if (data == "[DONE]") {
        done = true;
        return;
      }
      Json chunk = ParseOrDiscarded(data);
      if (chunk.is_discarded()) {
        abort = absl::UnavailableError(absl::StrCat(
            where, " sent a malformed stream chunk (not JSON): ", scrub(Shorten(data, 120))));
        return;
      }
      if (ev.event == "error") {
        abort = absl::UnavailableError(
            absl::StrCat(where, " reported an error mid-answer: ", scrub(ServerMessage(data))));
        return;
      }
      absl::Status s = answer.OnChunk(chunk);
      if (!s.ok()) abort = absl::Status(s.code(), scrub(absl::StrCat(where, ": ", s.message())));
    };

    StreamCallbacks callbacks;
    callbacks.on_headers = [&](int code, const HttpHeaders& h) {
      http_status = code;
      headers = h;
      if (cancel.cancelled()) return false;
      if (code >= 200 && code < 300) {
        std::string type = absl::AsciiStrToLower(h.Get("Content-Type").value_or(""));
        if (absl::StrContains(type, "text/event-stream"))
          mode = Mode::kSse;
        else if (absl::StrContains(type, "json"))
          mode = Mode::kJson;
      }
      return true;
    };
    callbacks.on_data = [&](absl::string_view data) {
      if (cancel.cancelled()) return false;
      if (http_status < 200 || http_status >= 300) {
        if (raw.size() < 64 * 1024) absl::StrAppend(&raw, data.substr(0, 64 * 1024 - raw.size()));
        return true;
      }
      std::string joined;
      if (mode == Mode::kUnknown) {  // no usable Content-Type: sniff
        absl::string_view t = absl::StripLeadingAsciiWhitespace(data);
        if (t.empty()) {
          absl::StrAppend(&raw, data);
          return true;
        }
        mode = t.front() == '{' ? Mode::kJson : Mode::kSse;
        if (mode == Mode::kSse) {  // `raw` holds only leading whitespace
          joined = absl::StrCat(raw, data);
          raw.clear();
          data = joined;
        }
      }
      if (mode == Mode::kJson) {
        absl::StrAppend(&raw, data);
        if (raw.size() > 2 * options_.max_output_bytes) {
          abort = absl::ResourceExhaustedError(absl::StrCat(where, ": the model's answer exceeded ",
                                                            options_.max_output_bytes,
                                                            " bytes (max_output_bytes)"));
          return false;
        }
        return true;
      }
      absl::Status s = parser.Feed(data, on_sse);
      if (!s.ok() && abort.ok()) abort = Annotate(s, where);
      return abort.ok();
    };

    absl::StatusOr<HttpResponse> response = transport_->SendStreaming(http, callbacks);
    if (!abort.ok()) {
      result.status = abort;
      return result;
    }
    if (cancel.cancelled()) {
      result.status = cancelled;
      return result;
    }
    const bool ok_status = http_status >= 200 && http_status < 300;
    if (!response.ok()) {
      const absl::StatusCode code = response.status().code();
      if (http_status == 0 || code == absl::StatusCode::kDeadlineExceeded ||
          code == absl::StatusCode::kInvalidArgument) {
        result.status = absl::Status(code, scrub(std::string(response.status().message())));
        return result;
      }
      if (ok_status && !(done && answer.finish_seen())) {
        result.status = absl::UnavailableError(
            absl::StrCat("the model server closed the stream mid-answer (",
                         scrub(std::string(response.status().message())), ")"));
        return result;
      }
      // An error status with a cut body, or a stream cut after [DONE]: go on.
    }
    if (!ok_status) {
      const absl::StatusCode code = CodeForHttpStatus(http_status);
      std::string message =
          absl::StrCat(where, " answered HTTP ", http_status, ": ", scrub(ServerMessage(raw)));
      if (http_status == 404)
        absl::StrAppend(&message, " (is the model name '", model, "' right?)");
      result.status = absl::Status(code, message);
      result.retryable = http_status == 429 || http_status == 503;
      if (std::optional<std::string> value = headers.Get("Retry-After")) {
        result.retry_after = ParseRetryAfterValue(*value, clock_->Now());
      }
      return result;
    }
    if (mode == Mode::kJson) {
      Json doc = ParseOrDiscarded(raw);
      if (doc.is_discarded()) {
        result.status = absl::UnavailableError(
            absl::StrCat(where, " sent an answer that is not JSON: ", scrub(Shorten(raw, 120))));
        return result;
      }
      absl::Status s = answer.OnFullAnswer(doc);
      if (!s.ok()) {
        result.status = absl::Status(s.code(), scrub(absl::StrCat(where, ": ", s.message())));
        return result;
      }
    } else if (mode == Mode::kSse) {
      // A last event without its blank line.
      if (!done) {
        (void)parser.Feed("\n\n", on_sse);
        if (!abort.ok()) {
          result.status = abort;
          return result;
        }
      }
    } else {
      result.status = absl::UnavailableError(absl::StrCat(where, " sent an empty answer"));
      return result;
    }
    if (!answer.finish_seen()) {
      result.status = absl::UnavailableError(absl::StrCat(
          "the model server closed the stream mid-answer (", where, " sent no finish_reason)"));
      return result;
    }
    answer.Finish();
    return result;
  };

  absl::Duration backoff = options_.initial_backoff;
  for (int attempt_no = 0;; ++attempt_no) {
    if (cancel.cancelled()) return cancelled;
    AttemptResult result = attempt();
    if (!result.retryable || attempt_no >= options_.max_retries) {
      if (result.retryable && attempt_no > 0) {
        return absl::Status(result.status.code(), absl::StrCat(result.status.message(), " (after ",
                                                               attempt_no + 1, " attempts)"));
      }
      return result.status;
    }
    absl::Duration wait = std::min(backoff, options_.max_backoff);
    backoff *= 2;
    if (result.retry_after.has_value()) {
      if (*result.retry_after > options_.max_retry_after) {
        return absl::Status(
            result.status.code(),
            absl::StrCat(result.status.message(), " (the server asked to retry after ",
                         absl::FormatDuration(*result.retry_after), ")"));
      }
      wait = *result.retry_after;
    }
    // Wait in slices so that a cancellation ends the wait early.
    const absl::Time until = clock_->Now() + wait;
    for (absl::Time now = clock_->Now(); now < until; now = clock_->Now()) {
      if (cancel.cancelled()) return cancelled;
      clock_->SleepFor(std::min(until - now, absl::Milliseconds(200)));
    }
  }
}

}  // namespace tessera::agents
