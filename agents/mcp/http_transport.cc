#include "agents/mcp/http_transport.h"

#include <algorithm>
#include <atomic>
#include <map>
#include <optional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "agents/mcp/sse_parser.h"
#include "common/logging.h"
#include "common/status.h"

namespace tessera::mcp {

namespace {
constexpr char kMetaProtocolVersion[] = "io.modelcontextprotocol/protocolVersion";
}  // namespace

struct StreamableHttpTransport::Shared {
  explicit Shared(Options o) : options(std::move(o)) {}
  const Options options;

  absl::Mutex deliver_mu;  // one callback at a time, none after Close
  TransportCallbacks callbacks ABSL_GUARDED_BY(deliver_mu);
  bool delivering_stopped ABSL_GUARDED_BY(deliver_mu) = false;

  absl::Mutex mu;
  bool closing ABSL_GUARDED_BY(mu) = false;
  std::string session_id ABSL_GUARDED_BY(mu);
  std::string protocol_version ABSL_GUARDED_BY(mu);
  int64_t session_generation ABSL_GUARDED_BY(mu) = 0;
  bool get_stream_running ABSL_GUARDED_BY(mu) = false;
  std::map<std::string, std::shared_ptr<std::atomic<bool>>> abandon ABSL_GUARDED_BY(mu);
  int active_threads ABSL_GUARDED_BY(mu) = 0;
  absl::Notification closed;  // interrupts waits

  bool Closing() {
    absl::MutexLock lock(&mu);
    return closing;
  }

  void Deliver(const Json& message) {
    absl::MutexLock lock(&deliver_mu);
    if (delivering_stopped || !callbacks.on_message) return;
    callbacks.on_message(message);
  }
  void Fail(const Json& id, const absl::Status& status) {
    absl::MutexLock lock(&deliver_mu);
    if (delivering_stopped || !callbacks.on_request_failed) return;
    callbacks.on_request_failed(id, status);
  }
};

namespace {

using Shared = StreamableHttpTransport::Shared;

bool IsVisibleAscii(absl::string_view s) {
  for (char c : s) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

std::string Snippet(absl::string_view body) {
  std::string s(body.substr(0, 300));
  for (char& c : s) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return s;
}

// Headers every request carries; `message` (may be null) decides the
// modern-era headers.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> BaseHeaders(Shared& shared, const Json* message,
                                                                            bool streaming_get) {
  std::vector<std::pair<std::string, std::string>> headers = shared.options.headers;
  if (streaming_get) {
    headers.emplace_back("Accept", "text/event-stream");
  } else {
    headers.emplace_back("Content-Type", "application/json");
    headers.emplace_back("Accept", "application/json, text/event-stream");
  }
  std::string modern_version;
  if (message != nullptr && message->is_object() && message->contains("params")) {
    const Json& params = (*message)["params"];
    if (const Json* meta = GetObject(params, "_meta")) modern_version = GetString(*meta, kMetaProtocolVersion);
  }
  if (!modern_version.empty()) {
    headers.emplace_back("MCP-Protocol-Version", modern_version);
    std::string method = GetString(*message, "method");
    if (!method.empty()) headers.emplace_back("Mcp-Method", method);
    if (method == "tools/call" || method == "prompts/get" || method == "resources/read") {
      const Json& params = (*message)["params"];
      std::string name = GetString(params, method == "resources/read" ? "uri" : "name");
      headers.emplace_back("Mcp-Name", EncodeMcpHeaderValue(name));
    }
  } else {
    absl::MutexLock lock(&shared.mu);
    if (!shared.session_id.empty()) headers.emplace_back("Mcp-Session-Id", shared.session_id);
    bool is_initialize = message != nullptr && GetString(*message, "method") == "initialize";
    if (!shared.protocol_version.empty() && !is_initialize) {
      headers.emplace_back("MCP-Protocol-Version", shared.protocol_version);
    }
  }
  if (shared.options.auth != nullptr) {
    absl::StatusOr<std::string> authorization = shared.options.auth->GetAuthorization();
    if (!authorization.ok()) return authorization.status();
    if (!authorization->empty()) headers.emplace_back("Authorization", *authorization);
  }
  return headers;
}

// The Authorization header `request` carried, or "".
std::string SentAuthorization(const HttpRequest& request) {
  for (const auto& [k, v] : request.headers) {
    if (absl::EqualsIgnoreCase(k, "Authorization")) return v;
  }
  return "";
}

bool SessionGoneResponse(int status, absl::string_view body) {
  if (status == 404) return true;
  if (status != 400) return false;
  std::string lower = absl::AsciiStrToLower(body.substr(0, 2000));
  return absl::StrContains(lower, "no valid session") || absl::StrContains(lower, "session not found") ||
         absl::StrContains(lower, "server not initialized");
}

absl::Status HttpStatusError(Shared& shared, absl::string_view method, int status, absl::string_view body) {
  std::string text = absl::StrCat("MCP server '", shared.options.name, "' answered ", method, " with HTTP ", status,
                                  body.empty() ? "" : ": ", Snippet(body));
  if (status == 401) return absl::UnauthenticatedError(text);
  if (status == 403) return absl::PermissionDeniedError(text);
  if (status == 404) return absl::NotFoundError(text);
  if (status == 429 || status >= 500) return absl::UnavailableError(text);
  return absl::FailedPreconditionError(text);
}

// The outcome of one HTTP exchange whose body is JSON or SSE.
struct Exchange {
  absl::Status transport_status;  // from HttpTransport
  int status = 0;
  HttpHeaders headers;
  std::string body;  // non-SSE bodies (capped)
  bool sse = false;
  bool got_response = false;  // saw the response for `want_id`
  bool oversize = false;
  absl::Status sse_error;
  std::string last_event_id;
  std::optional<int> retry_ms;
};

void RecordSession(Shared& shared, const HttpHeaders& headers) {
  std::optional<std::string> sid = headers.Get("Mcp-Session-Id");
  if (!sid.has_value() || sid->empty()) return;
  if (!IsVisibleAscii(*sid) || sid->size() > 1024) {
    TLOG(WARNING, "mcp server sent an invalid Mcp-Session-Id; ignored").Field("server", shared.options.name);
    return;
  }
  absl::MutexLock lock(&shared.mu);
  shared.session_id = *sid;
}

// Performs `request`, delivering SSE messages as they arrive.
// `deliver` is false for POSTs made from inside a callback (answers to server
// requests), which must not re-enter delivery.
Exchange Perform(Shared& shared, const HttpRequest& request, const std::string& want_key,
                 const std::shared_ptr<std::atomic<bool>>& abandoned, bool deliver = true) {
  Exchange ex;
  SseParser parser(shared.options.max_message_bytes);
  auto on_event = [&](const SseEvent& event) {
    if (event.event != "message") return;
    absl::StatusOr<Json> parsed = ParseJson(event.data);
    if (!parsed.ok()) {
      TLOG(DEBUG, "mcp SSE event is not JSON; ignored").Field("server", shared.options.name);
      return;
    }
    std::vector<Json> messages;
    if (parsed->is_array()) {
      for (auto& m : *parsed) messages.push_back(m);
    } else {
      messages.push_back(*parsed);
    }
    for (const Json& m : messages) {
      MessageKind kind = Classify(m);
      if (kind == MessageKind::kInvalid) continue;  // e.g. a replayed priming event "{}"
      if ((kind == MessageKind::kResult || kind == MessageKind::kError) && !want_key.empty() &&
          IdKey(m.value("id", Json())) == want_key) {
        ex.got_response = true;
      }
      if (deliver) shared.Deliver(m);
    }
  };
  StreamCallbacks callbacks;
  callbacks.on_headers = [&](int status, const HttpHeaders& headers) {
    ex.status = status;
    ex.headers = headers;
    std::string type = absl::AsciiStrToLower(headers.Get("Content-Type").value_or(""));
    ex.sse = status == 200 && absl::StartsWith(type, "text/event-stream");
    // Before any body: the initialize answer inside the stream makes the
    // client send notifications/initialized, which needs the session id.
    if (status >= 200 && status < 300) RecordSession(shared, headers);
    return !shared.Closing() && !(abandoned && abandoned->load());
  };
  callbacks.on_data = [&](absl::string_view chunk) {
    if (shared.Closing() || (abandoned && abandoned->load())) return false;
    if (ex.sse) {
      absl::Status s = parser.Feed(chunk, on_event);
      if (!s.ok()) {
        ex.sse_error = s;
        ex.oversize = true;
        return false;
      }
      return true;
    }
    if (ex.body.size() + chunk.size() > shared.options.max_message_bytes) {
      ex.oversize = true;
      return false;
    }
    ex.body.append(chunk.data(), chunk.size());
    return true;
  };
  absl::StatusOr<HttpResponse> response = shared.options.http->SendStreaming(request, callbacks);
  ex.transport_status = response.status();
  ex.last_event_id = parser.last_event_id();
  ex.retry_ms = parser.retry_ms();
  return ex;
}

class ThreadCount {
 public:
  explicit ThreadCount(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {
    absl::MutexLock lock(&shared_->mu);
    ++shared_->active_threads;
  }
  ~ThreadCount() {
    absl::MutexLock lock(&shared_->mu);
    --shared_->active_threads;
  }

 private:
  std::shared_ptr<Shared> shared_;
};

// Sleeps up to `d`, returning early (false) when the transport closes.
bool WaitUnlessClosed(Shared& shared, absl::Duration d) {
  return !shared.closed.WaitForNotificationWithTimeout(d);
}

// Runs one request: POST, then resume with GET + Last-Event-ID while the
// response has not arrived.
void RunRequest(std::shared_ptr<Shared> shared, Json message) {
  ThreadCount count(shared);
  const Json id = message["id"];
  const std::string key = IdKey(id);
  const std::string method = GetString(message, "method");
  std::shared_ptr<std::atomic<bool>> abandoned;
  {
    absl::MutexLock lock(&shared->mu);
    auto it = shared->abandon.find(key);
    if (it != shared->abandon.end()) abandoned = it->second;
  }
  auto finish = [&]() {
    absl::MutexLock lock(&shared->mu);
    shared->abandon.erase(key);
  };
  auto fail = [&](absl::Status status) {
    finish();
    if (abandoned && abandoned->load()) return;
    shared->Fail(id, status);
  };
  const std::string body = Serialize(message);
  Exchange ex;
  bool had_session = false;
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto headers = BaseHeaders(*shared, &message, /*streaming_get=*/false);
    if (!headers.ok()) return fail(headers.status());
    had_session = false;
    for (const auto& [k, v] : *headers) had_session |= absl::EqualsIgnoreCase(k, "Mcp-Session-Id");
    HttpRequest request;
    request.method = "POST";
    request.url = shared->options.url;
    request.headers = std::move(*headers);
    request.body = body;
    request.timeout = shared->options.request_timeout;
    request.connect_timeout = shared->options.connect_timeout;
    ex = Perform(*shared, request, key, abandoned);
    if (shared->Closing() || (abandoned && abandoned->load())) return finish();
    if ((ex.status == 401 || ex.status == 403) && shared->options.auth != nullptr && attempt == 0) {
      absl::Status refreshed = shared->options.auth->OnUnauthorized(ex.status, ex.headers, SentAuthorization(request));
      if (refreshed.ok()) continue;
      return fail(refreshed);
    }
    break;
  }
  if (ex.oversize) {
    return fail(absl::ResourceExhaustedError(absl::StrCat(
        "MCP server '", shared->options.name, "' sent a ", method, " answer over the limit of ",
        shared->options.max_message_bytes, " bytes (max_message_bytes in the server config)")));
  }
  if (ex.status == 0) {
    return fail(Annotate(ex.transport_status, absl::StrCat("MCP server '", shared->options.name, "' ", method)));
  }
  if (ex.status != 200 && ex.status != 202) {
    if (had_session && SessionGoneResponse(ex.status, ex.body)) {
      return fail(MarkSessionExpired(absl::NotFoundError(
          absl::StrCat("MCP server '", shared->options.name, "' no longer knows our session (HTTP ", ex.status, ")"))));
    }
    // A JSON-RPC error body answering our request is the real answer.
    absl::StatusOr<Json> parsed = ParseJson(ex.body);
    if (parsed.ok() && Classify(*parsed) == MessageKind::kError && IdKey(parsed->value("id", Json())) == key) {
      finish();
      shared->Deliver(*parsed);
      return;
    }
    return fail(HttpStatusError(*shared, method, ex.status, ex.body));
  }
  if (!ex.sse) {
    if (ex.status == 202 || ex.body.empty()) {
      return fail(absl::FailedPreconditionError(absl::StrCat("MCP server '", shared->options.name, "' accepted ",
                                                             method, " (HTTP ", ex.status, ") but sent no answer")));
    }
    absl::StatusOr<Json> parsed = ParseJson(ex.body);
    if (!parsed.ok()) {
      return fail(absl::FailedPreconditionError(absl::StrCat(
          "MCP server '", shared->options.name, "' answered ", method, " with invalid JSON: ", parsed.status().message())));
    }
    finish();
    if (parsed->is_array()) {
      for (const Json& m : *parsed) shared->Deliver(m);
    } else {
      shared->Deliver(*parsed);
    }
    return;
  }
  // SSE: resume while the stream ended without our response.
  std::string last_event_id = ex.last_event_id;
  std::optional<int> retry_ms = ex.retry_ms;
  for (int resume = 0; !ex.got_response; ++resume) {
    if (last_event_id.empty() || resume >= shared->options.max_resume_attempts) {
      return fail(absl::UnavailableError(absl::StrCat(
          "MCP server '", shared->options.name, "' closed the response stream for ", method,
          " before answering", last_event_id.empty() ? " (no event id to resume from)" : " (resume attempts exhausted)",
          ex.transport_status.ok() ? "" : absl::StrCat(": ", ex.transport_status.message()))));
    }
    absl::Duration delay = std::min(absl::Milliseconds(retry_ms.value_or(100)), shared->options.max_retry_delay);
    if (!WaitUnlessClosed(*shared, delay)) return finish();
    auto headers = BaseHeaders(*shared, &message, /*streaming_get=*/true);
    if (!headers.ok()) return fail(headers.status());
    HttpRequest request;
    request.method = "GET";
    request.url = shared->options.url;
    request.headers = std::move(*headers);
    request.headers.emplace_back("Last-Event-ID", last_event_id);
    request.timeout = shared->options.request_timeout;
    request.connect_timeout = shared->options.connect_timeout;
    TLOG(DEBUG, "mcp resuming response stream").Field("server", shared->options.name).Field("method", method);
    ex = Perform(*shared, request, key, abandoned);
    if (shared->Closing() || (abandoned && abandoned->load())) return finish();
    if (ex.oversize) {
      return fail(absl::ResourceExhaustedError(absl::StrCat("MCP server '", shared->options.name,
                                                            "' sent an event over max_message_bytes")));
    }
    if (ex.status != 200 || !ex.sse) {
      if (SessionGoneResponse(ex.status, ex.body)) {
        return fail(MarkSessionExpired(absl::NotFoundError("session lost while resuming a response stream")));
      }
      if (ex.status == 0) {
        continue;  // connection failed; try again with the same cursor
      }
      return fail(HttpStatusError(*shared, "GET (resume)", ex.status, ex.body));
    }
    if (!ex.last_event_id.empty()) last_event_id = ex.last_event_id;
    if (ex.retry_ms.has_value()) retry_ms = ex.retry_ms;
  }
  finish();
}

// The standalone GET stream for server-initiated messages.
void RunGetStream(std::shared_ptr<Shared> shared, int64_t generation) {
  ThreadCount count(shared);
  std::string last_event_id;
  absl::Duration backoff = absl::Milliseconds(500);
  while (true) {
    {
      absl::MutexLock lock(&shared->mu);
      if (shared->closing || shared->session_generation != generation) break;
    }
    auto headers = BaseHeaders(*shared, nullptr, /*streaming_get=*/true);
    if (!headers.ok()) break;
    HttpRequest request;
    request.method = "GET";
    request.url = shared->options.url;
    request.headers = std::move(*headers);
    if (!last_event_id.empty()) request.headers.emplace_back("Last-Event-ID", last_event_id);
    request.timeout = shared->options.get_stream_timeout;
    request.connect_timeout = shared->options.connect_timeout;
    Exchange ex = Perform(*shared, request, "", nullptr);
    if (shared->Closing()) break;
    if (!ex.last_event_id.empty()) last_event_id = ex.last_event_id;
    if (ex.status == 405) {
      TLOG(DEBUG, "mcp server offers no GET stream").Field("server", shared->options.name);
      break;
    }
    if (ex.status == 200 && ex.sse) {
      backoff = absl::Milliseconds(500);
      absl::Duration delay = ex.retry_ms.has_value() ? absl::Milliseconds(*ex.retry_ms) : absl::Milliseconds(100);
      if (!WaitUnlessClosed(*shared, std::min(delay, shared->options.max_retry_delay))) break;
      continue;
    }
    if (ex.status == 401 && shared->options.auth != nullptr &&
        shared->options.auth->OnUnauthorized(ex.status, ex.headers, SentAuthorization(request)).ok()) {
      continue;
    }
    if (SessionGoneResponse(ex.status, ex.body) || (ex.status >= 400 && ex.status < 500)) {
      TLOG(DEBUG, "mcp GET stream stopped").Field("server", shared->options.name).Field("status", ex.status);
      break;
    }
    if (!WaitUnlessClosed(*shared, backoff)) break;
    backoff = std::min(backoff * 2, absl::Seconds(30));
  }
  absl::MutexLock lock(&shared->mu);
  if (shared->session_generation == generation) shared->get_stream_running = false;
}

}  // namespace

std::string EncodeMcpHeaderValue(absl::string_view value) {
  bool plain = !value.empty() && value.front() != ' ' && value.back() != ' ';
  for (char c : value) plain &= (c >= 0x20 && c <= 0x7e);
  if (plain) return std::string(value);
  return absl::StrCat("=?base64?", absl::Base64Escape(value), "?=");
}

absl::StatusOr<std::unique_ptr<StreamableHttpTransport>> StreamableHttpTransport::Create(Options options) {
  if (options.http == nullptr) return absl::InvalidArgumentError("http MCP server: no HttpTransport given");
  if (!absl::StartsWith(options.url, "http://") && !absl::StartsWith(options.url, "https://")) {
    return absl::InvalidArgumentError(
        absl::StrCat("http MCP server '", options.name, "': \"url\" must start with http:// or https://"));
  }
  if (options.max_message_bytes < 1024) {
    return absl::InvalidArgumentError("http MCP server: max_message_bytes must be at least 1024");
  }
  return std::unique_ptr<StreamableHttpTransport>(
      new StreamableHttpTransport(std::make_shared<Shared>(std::move(options))));
}

StreamableHttpTransport::StreamableHttpTransport(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}

StreamableHttpTransport::~StreamableHttpTransport() { Close(); }

std::string StreamableHttpTransport::Describe() const { return shared_->options.url; }

std::string StreamableHttpTransport::session_id() const {
  absl::MutexLock lock(&shared_->mu);
  return shared_->session_id;
}

absl::Status StreamableHttpTransport::Start(TransportCallbacks callbacks) {
  absl::MutexLock lock(&shared_->deliver_mu);
  shared_->callbacks = std::move(callbacks);
  return absl::OkStatus();
}

absl::Status StreamableHttpTransport::Send(const Json& message) {
  if (shared_->Closing()) {
    return absl::UnavailableError(absl::StrCat("MCP client for '", shared_->options.name, "' is closed"));
  }
  if (Classify(message) == MessageKind::kRequest) {
    {
      absl::MutexLock lock(&shared_->mu);
      shared_->abandon[IdKey(message["id"])] = std::make_shared<std::atomic<bool>>(false);
    }
    std::thread(RunRequest, shared_, message).detach();
    return absl::OkStatus();
  }
  // Notifications and responses: POST and expect 202 (or 200).
  const std::string method = GetString(message, "method", "response");
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto headers = BaseHeaders(*shared_, &message, /*streaming_get=*/false);
    if (!headers.ok()) return headers.status();
    HttpRequest request;
    request.method = "POST";
    request.url = shared_->options.url;
    request.headers = std::move(*headers);
    request.body = Serialize(message);
    request.timeout = absl::Seconds(30);
    request.connect_timeout = shared_->options.connect_timeout;
    Exchange ex = Perform(*shared_, request, "", nullptr, /*deliver=*/false);
    if (ex.status == 0) return Annotate(ex.transport_status, absl::StrCat("MCP server '", shared_->options.name, "'"));
    if ((ex.status == 401 || ex.status == 403) && shared_->options.auth != nullptr && attempt == 0) {
      absl::Status refreshed = shared_->options.auth->OnUnauthorized(ex.status, ex.headers, SentAuthorization(request));
      if (refreshed.ok()) continue;
      return refreshed;
    }
    if (ex.status >= 200 && ex.status < 300) return absl::OkStatus();
    return HttpStatusError(*shared_, method, ex.status, ex.body);
  }
  return absl::UnauthenticatedError("authorization failed twice");
}

void StreamableHttpTransport::Abandon(const Json& id) {
  absl::MutexLock lock(&shared_->mu);
  auto it = shared_->abandon.find(IdKey(id));
  if (it != shared_->abandon.end()) it->second->store(true);
}

void StreamableHttpTransport::SetProtocolVersion(absl::string_view version) {
  absl::MutexLock lock(&shared_->mu);
  shared_->protocol_version = std::string(version);
}

void StreamableHttpTransport::OnInitialized() {
  if (!shared_->options.open_get_stream) return;
  int64_t generation;
  {
    absl::MutexLock lock(&shared_->mu);
    if (shared_->closing || shared_->get_stream_running) return;
    shared_->get_stream_running = true;
    generation = shared_->session_generation;
  }
  std::thread(RunGetStream, shared_, generation).detach();
}

void StreamableHttpTransport::ResetSession() {
  absl::MutexLock lock(&shared_->mu);
  shared_->session_id.clear();
  shared_->protocol_version.clear();
  ++shared_->session_generation;
  shared_->get_stream_running = false;
}

void StreamableHttpTransport::Close() {
  std::string session;
  {
    absl::MutexLock lock(&shared_->mu);
    if (shared_->closing) return;
    shared_->closing = true;
    session = shared_->session_id;
    for (auto& [k, flag] : shared_->abandon) flag->store(true);
  }
  shared_->closed.Notify();
  {
    absl::MutexLock lock(&shared_->deliver_mu);
    shared_->delivering_stopped = true;
    shared_->callbacks = TransportCallbacks{};
  }
  if (!session.empty()) {
    // End the session politely; 405 (not supported) is fine too.
    HttpRequest request;
    request.method = "DELETE";
    request.url = shared_->options.url;
    request.headers = shared_->options.headers;
    request.headers.emplace_back("Mcp-Session-Id", session);
    {
      absl::MutexLock lock(&shared_->mu);
      if (!shared_->protocol_version.empty()) {
        request.headers.emplace_back("MCP-Protocol-Version", shared_->protocol_version);
      }
    }
    if (shared_->options.auth != nullptr) {
      auto authorization = shared_->options.auth->GetAuthorization();
      if (authorization.ok() && !authorization->empty()) request.headers.emplace_back("Authorization", *authorization);
    }
    request.timeout = absl::Seconds(5);
    request.connect_timeout = absl::Seconds(2);
    auto response = shared_->options.http->Send(request);
    if (!response.ok()) TLOG(DEBUG, "mcp session DELETE failed").Field("error", response.status());
  }
  // Workers notice `closing` at their next byte; give them a moment, then
  // leave the stragglers (they own only shared state).
  absl::MutexLock lock(&shared_->mu);
  shared_->mu.AwaitWithTimeout(absl::Condition(
                                   +[](Shared* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu) { return s->active_threads == 0; },
                                   shared_.get()),
                               absl::Seconds(1));
}

}  // namespace tessera::mcp
