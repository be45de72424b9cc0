#include "agents/mcp/client.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "agents/mcp/schema_validator.h"
#include "common/logging.h"
#include "common/status.h"

namespace tessera::mcp {
namespace {

constexpr char kMetaProtocolVersion[] = "io.modelcontextprotocol/protocolVersion";
constexpr char kMetaClientCapabilities[] = "io.modelcontextprotocol/clientCapabilities";
constexpr char kMetaClientInfo[] = "io.modelcontextprotocol/clientInfo";
constexpr char kMetaServerInfo[] = "io.modelcontextprotocol/serverInfo";
constexpr absl::Duration kWaitSlice = absl::Milliseconds(50);

}  // namespace

McpClient::McpClient(std::unique_ptr<Transport> transport, ClientOptions options)
    : options_(std::move(options)), transport_(std::move(transport)) {}

McpClient::~McpClient() { Close(); }

absl::StatusOr<std::unique_ptr<McpClient>> McpClient::Connect(std::unique_ptr<Transport> transport,
                                                              ClientOptions options) {
  if (transport == nullptr) return absl::InvalidArgumentError("McpClient::Connect: null transport");
  std::unique_ptr<McpClient> client(new McpClient(std::move(transport), std::move(options)));
  McpClient* self = client.get();
  TransportCallbacks callbacks;
  callbacks.on_message = [self](const Json& m) { self->OnMessage(m); };
  callbacks.on_request_failed = [self](const Json& id, const absl::Status& s) { self->OnRequestFailed(id, s); };
  callbacks.on_closed = [self](const absl::Status& s) { self->OnClosed(s); };
  absl::Status started = self->transport_->Start(std::move(callbacks));
  if (!started.ok()) {
    self->transport_->Close();
    return started;
  }
  absl::Status handshake;
  {
    absl::MutexLock lock(&self->handshake_mu_);
    handshake = self->Handshake();
  }
  if (!handshake.ok()) {
    client->Close();
    return Annotate(handshake, absl::StrCat("connecting to MCP server '", self->options_.server_name, "' (",
                                            self->transport_->Describe(), ")"));
  }
  return client;
}

Json McpClient::ClientCapabilities() const {
  Json caps = Json::object();
  if (!options_.roots.empty()) caps["roots"] = {{"listChanged", false}};
  return caps;
}

Json McpClient::MetaEnvelope() const {
  return {{kMetaProtocolVersion, kModernVersion},
          {kMetaClientCapabilities, ClientCapabilities()},
          {kMetaClientInfo, {{"name", options_.client_name}, {"version", options_.client_version}}}};
}

absl::Status McpClient::Handshake() {
  if (options_.try_modern_era) {
    absl::Status modern = TryDiscover();
    if (modern.ok()) return modern;
    // An auth failure says nothing about the protocol era: the legacy
    // handshake would be refused the same way, and falling back would hide
    // the real error behind a second attempt.
    if (absl::IsUnauthenticated(modern) || absl::IsPermissionDenied(modern)) return modern;
    TLOG(INFO, "mcp server does not speak 2026-07-28; using the legacy handshake")
        .Field("server", options_.server_name)
        .Field("reason", modern);
    {
      absl::MutexLock lock(&mu_);
      if (closed_) return closed_status_;
    }
    transport_->ResetSession();
  }
  return LegacyInitialize();
}

absl::Status McpClient::TryDiscover() {
  RequestOptions opts;
  opts.timeout = options_.discover_timeout;
  opts.hard_timeout = options_.discover_timeout;
  Json params = {{"_meta", MetaEnvelope()}};
  ASSIGN_OR_RETURN(Json result, RequestOnce("server/discover", params, opts));
  const Json* versions = GetArray(result, "supportedVersions");
  bool supported = false;
  if (versions != nullptr) {
    for (const Json& v : *versions) supported |= v.is_string() && v.get<std::string>() == kModernVersion;
  }
  if (!supported) {
    return absl::FailedPreconditionError(absl::StrCat("server/discover lists no version we speak: ",
                                                      versions ? Serialize(*versions) : "(none)"));
  }
  absl::MutexLock lock(&mu_);
  era_ = Era::kModern;
  protocol_version_ = kModernVersion;
  const Json* caps = GetObject(result, "capabilities");
  server_capabilities_ = caps ? *caps : Json::object();
  const Json* meta = GetObject(result, "_meta");
  const Json* info = meta ? GetObject(*meta, kMetaServerInfo) : nullptr;
  server_info_ = info ? *info : Json::object();
  return absl::OkStatus();
}

absl::Status McpClient::LegacyInitialize() {
  if (options_.legacy_versions.empty()) {
    return absl::FailedPreconditionError("no legacy protocol versions configured");
  }
  std::string requested = options_.legacy_versions.front();
  RequestOptions opts;
  opts.timeout = options_.initialize_timeout;
  opts.hard_timeout = options_.initialize_timeout;
  for (int attempt = 0; attempt < 2; ++attempt) {
    Json params = {{"protocolVersion", requested},
                   {"capabilities", ClientCapabilities()},
                   {"clientInfo", {{"name", options_.client_name}, {"version", options_.client_version}}}};
    absl::StatusOr<Json> result = RequestOnce("initialize", params, opts);
    if (!result.ok()) {
      // -32602 with data.supported: pick a version we both speak and retry.
      if (attempt == 0 && RpcErrorCodeOf(result.status()) == kInvalidParams) {
        bool retried = false;
        for (const std::string& v : options_.legacy_versions) {
          if (v != requested && absl::StrContains(result.status().message(), absl::StrCat("\"", v, "\""))) {
            requested = v;
            retried = true;
            break;
          }
        }
        if (retried) continue;
      }
      return result.status();
    }
    std::string version = GetString(*result, "protocolVersion");
    if (std::find(options_.legacy_versions.begin(), options_.legacy_versions.end(), version) ==
        options_.legacy_versions.end()) {
      return absl::FailedPreconditionError(
          absl::StrCat("server answered with protocol version \"", version, "\"; this client supports ",
                       kModernVersion, ", ", absl::StrJoin(options_.legacy_versions, ", ")));
    }
    {
      absl::MutexLock lock(&mu_);
      era_ = Era::kLegacy;
      ++session_generation_;
      protocol_version_ = version;
      const Json* caps = GetObject(*result, "capabilities");
      server_capabilities_ = caps ? *caps : Json::object();
      const Json* info = GetObject(*result, "serverInfo");
      server_info_ = info ? *info : Json::object();
    }
    transport_->SetProtocolVersion(version);
    RETURN_IF_ERROR(transport_->Send(MakeNotification("notifications/initialized", nullptr)));
    transport_->OnInitialized();
    TLOG(INFO, "mcp server connected")
        .Field("server", options_.server_name)
        .Field("protocol", version)
        .Field("transport", transport_->Describe());
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError("protocol version negotiation failed");
}

absl::StatusOr<Json> McpClient::Request(const std::string& method, Json params, const RequestOptions& options) {
  int64_t generation;
  {
    absl::MutexLock lock(&mu_);
    generation = session_generation_;
  }
  absl::StatusOr<Json> result = RequestOnce(method, params, options);
  if (!result.ok() && IsSessionExpired(result.status())) {
    absl::MutexLock lock(&handshake_mu_);
    bool stale;
    {
      absl::MutexLock state_lock(&mu_);
      stale = session_generation_ == generation;  // nobody re-initialised yet
    }
    if (stale) {
      TLOG(INFO, "mcp session lost; initialising again").Field("server", options_.server_name);
      transport_->ResetSession();
      RETURN_IF_ERROR(Annotate(LegacyInitialize(), "re-initialising after the server lost our session"));
    }
    result = RequestOnce(method, params, options);
  }
  return result;
}

absl::StatusOr<Json> McpClient::RequestOnce(const std::string& method, const Json& params_in,
                                            const RequestOptions& options) {
  const int64_t id_value = next_id_.fetch_add(1);
  const Json id = id_value;
  const std::string key = IdKey(id);
  Json params = params_in.is_null() ? Json::object() : params_in;
  if (!params.is_object()) return absl::InvalidArgumentError(absl::StrCat(method, ": params must be an object"));
  auto pending = std::make_shared<Pending>();
  pending->method = method;
  pending->on_progress = options.on_progress;
  pending->last_activity = absl::Now();
  std::string token_key;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return closed_status_;
    if (era_ == Era::kModern && method != "server/discover") {
      Json& meta = params["_meta"];
      if (!meta.is_object()) meta = Json::object();
      const Json envelope = MetaEnvelope();
      for (auto& [k, v] : envelope.items()) meta[k] = v;
    }
    if (options.on_progress) {
      params["_meta"]["progressToken"] = id;
      token_key = key;
      progress_tokens_[token_key] = key;
    }
    pending_[key] = pending;
  }
  auto forget = [&]() {
    absl::MutexLock lock(&mu_);
    pending_.erase(key);
    if (!token_key.empty()) progress_tokens_.erase(token_key);
  };
  absl::Status sent = transport_->Send(MakeRequest(id, method, params));
  if (!sent.ok()) {
    forget();
    return Annotate(sent, absl::StrCat("sending ", method, " to MCP server '", options_.server_name, "'"));
  }
  const absl::Time start = absl::Now();
  const absl::Duration hard = std::max(options.hard_timeout, absl::Milliseconds(1));
  const absl::Time hard_deadline = start + hard;
  std::string give_up;  // why we stopped waiting, empty when answered
  absl::StatusCode give_up_code = absl::StatusCode::kOk;
  {
    absl::MutexLock lock(&mu_);
    while (!pending->done) {
      absl::Time now = absl::Now();
      if (options.cancellation && options.cancellation->cancelled()) {
        give_up = absl::StrCat(method, " to MCP server '", options_.server_name, "' was cancelled by the caller");
        give_up_code = absl::StatusCode::kCancelled;
        break;
      }
      absl::Time idle_deadline = pending->last_activity + options.timeout;
      if (now >= hard_deadline) {
        give_up = absl::StrCat("MCP server '", options_.server_name, "' did not finish ", method,
                               " within the hard maximum of ", absl::FormatDuration(hard));
        give_up_code = absl::StatusCode::kDeadlineExceeded;
        break;
      }
      if (now >= idle_deadline) {
        give_up = absl::StrCat("MCP server '", options_.server_name, "' did not answer ", method, " within ",
                               absl::FormatDuration(options.timeout),
                               " (raise timeout in the server config if the tool is slow)");
        give_up_code = absl::StatusCode::kDeadlineExceeded;
        break;
      }
      absl::Time wake = std::min({idle_deadline, hard_deadline, now + kWaitSlice});
      mu_.AwaitWithDeadline(absl::Condition(&pending->done), wake);
    }
  }
  if (!give_up.empty()) {
    forget();
    transport_->Abandon(id);
    if (method != "initialize" && method != "server/discover") {
      Json cancel = {{"requestId", id}, {"reason", give_up}};
      bool modern;
      {
        absl::MutexLock lock(&mu_);
        modern = era_ == Era::kModern;
      }
      if (modern) cancel["_meta"] = MetaEnvelope();
      absl::Status s = transport_->Send(MakeNotification("notifications/cancelled", cancel));
      if (!s.ok()) TLOG(DEBUG, "could not send notifications/cancelled").Field("error", s);
    }
    return absl::Status(give_up_code, give_up);
  }
  forget();
  if (!pending->failure.ok()) return pending->failure;
  const Json& response = *pending->response;
  if (response.contains("error")) return RpcErrorToStatus(response["error"], method);
  const Json& result = response["result"];
  if (!result.is_object()) {
    return absl::FailedPreconditionError(
        absl::StrCat("MCP server '", options_.server_name, "' answered ", method, " with a non-object result"));
  }
  if (GetString(result, "resultType", "complete") == "input_required") {
    return absl::UnimplementedError(absl::StrCat("MCP server '", options_.server_name, "' asked for more input on ",
                                                 method, " (input_required); Tessera does not support that yet"));
  }
  return result;
}

void McpClient::OnMessage(const Json& message) {
  switch (Classify(message)) {
    case MessageKind::kResult:
    case MessageKind::kError: {
      std::string key = IdKey(message.value("id", Json()));
      absl::MutexLock lock(&mu_);
      auto it = key.empty() ? pending_.end() : pending_.find(key);
      if (it == pending_.end()) {
        TLOG(DEBUG, "mcp response for no pending request ignored (late, cancelled or duplicate)")
            .Field("server", options_.server_name)
            .Field("id", key);
        return;
      }
      it->second->response = message;
      it->second->done = true;
      return;
    }
    case MessageKind::kRequest:
      HandleServerRequest(message);
      return;
    case MessageKind::kNotification:
      HandleNotification(message);
      return;
    case MessageKind::kInvalid:
      TLOG(WARNING, "mcp message is not valid JSON-RPC; ignored").Field("server", options_.server_name);
      return;
  }
}

void McpClient::OnRequestFailed(const Json& id, const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  std::string key = IdKey(id);
  for (auto& [k, p] : pending_) {
    if (!key.empty() && k != key) continue;
    if (p->done) continue;
    p->failure = status;
    p->done = true;
  }
}

void McpClient::OnClosed(const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  if (!closed_) {
    closed_ = true;
    closed_status_ = status;
  }
  for (auto& [k, p] : pending_) {
    if (p->done) continue;
    p->failure = status;
    p->done = true;
  }
}

void McpClient::HandleServerRequest(const Json& message) {
  const Json& id = message["id"];
  const std::string method = message["method"].get<std::string>();
  Json response;
  if (method == "ping") {
    response = MakeResult(id, Json::object());
  } else if (method == "roots/list" && !options_.roots.empty()) {
    Json roots = Json::array();
    for (const Root& r : options_.roots) {
      Json root = {{"uri", r.uri}};
      if (!r.name.empty()) root["name"] = r.name;
      roots.push_back(root);
    }
    response = MakeResult(id, {{"roots", roots}});
  } else {
    int count;
    {
      absl::MutexLock lock(&mu_);
      count = ++unadvertised_requests_;
    }
    if (count <= 10 || count % 1000 == 0) {
      TLOG(WARNING, "mcp server sent a request this client did not advertise; refused")
          .Field("server", options_.server_name)
          .Field("method", method.substr(0, 100))
          .Field("count", count);
    }
    response = MakeError(id, kMethodNotFound,
                         absl::StrCat("Method not found: this client does not support ", method.substr(0, 100)));
  }
  absl::Status s = transport_->Send(response);
  if (!s.ok()) TLOG(DEBUG, "could not answer mcp server request").Field("error", s);
}

void McpClient::HandleNotification(const Json& message) {
  const std::string method = message["method"].get<std::string>();
  const Json params = message.contains("params") && message["params"].is_object() ? message["params"] : Json::object();
  if (method == "notifications/progress") {
    std::string token = IdKey(params.value("progressToken", Json()));
    std::function<void(const Progress&)> callback;
    {
      absl::MutexLock lock(&mu_);
      auto t = progress_tokens_.find(token);
      if (t == progress_tokens_.end()) return;  // late (cancelled / finished) or unknown
      auto p = pending_.find(t->second);
      if (p == pending_.end()) return;
      p->second->last_activity = absl::Now();
      callback = p->second->on_progress;
    }
    Progress progress;
    if (params.contains("progress") && params["progress"].is_number()) progress.progress = params["progress"].get<double>();
    if (params.contains("total") && params["total"].is_number()) progress.total = params["total"].get<double>();
    progress.message = GetString(params, "message");
    if (callback) callback(progress);
  } else if (method == "notifications/tools/list_changed") {
    std::function<void()> callback;
    {
      absl::MutexLock lock(&mu_);
      tools_changed_ = true;
      callback = tools_changed_callback_;
    }
    if (callback) callback();
  } else if (method == "notifications/message") {
    std::string level = GetString(params, "level", "info");
    std::string data = params.contains("data") ? (params["data"].is_string() ? params["data"].get<std::string>()
                                                                              : Serialize(params["data"]))
                                               : "";
    if (data.size() > 2000) data = data.substr(0, 2000) + "...";
    bool severe = level == "error" || level == "critical" || level == "alert" || level == "emergency";
    if (severe) {
      TLOG(WARNING, "mcp server log").Field("server", options_.server_name).Field("level", level).Field("data", data);
    } else {
      TLOG(DEBUG, "mcp server log").Field("server", options_.server_name).Field("level", level).Field("data", data);
    }
  }
  // notifications/cancelled, resources/*, etc.: nothing to do for a client
  // that runs no long server->client requests and subscribes to nothing.
}

absl::StatusOr<std::vector<ToolInfo>> McpClient::ListTools() {
  {
    absl::MutexLock lock(&mu_);
    tools_changed_ = false;
  }
  std::vector<ToolInfo> tools;
  std::set<std::string> names;
  std::set<std::string> cursors;
  std::string cursor;
  for (int page = 0;; ++page) {
    if (page >= options_.max_tool_pages) {
      return absl::FailedPreconditionError(absl::StrCat("MCP server '", options_.server_name, "' returned more than ",
                                                        options_.max_tool_pages, " pages of tools/list"));
    }
    Json params = Json::object();
    if (!cursor.empty()) params["cursor"] = cursor;
    ASSIGN_OR_RETURN(Json result, Request("tools/list", params, options_.default_request));
    const Json* list = GetArray(result, "tools");
    if (list == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("MCP server '", options_.server_name, "' answered tools/list without a \"tools\" array"));
    }
    for (const Json& entry : *list) {
      absl::StatusOr<ToolInfo> tool = ParseTool(entry);
      if (!tool.ok()) {
        TLOG(WARNING, "mcp tool skipped").Field("server", options_.server_name).Field("reason", tool.status());
        continue;
      }
      if (!names.insert(tool->name).second) {
        TLOG(WARNING, "mcp server listed a tool twice; keeping the first")
            .Field("server", options_.server_name)
            .Field("tool", tool->name);
        continue;
      }
      tools.push_back(std::move(*tool));
    }
    cursor = GetString(result, "nextCursor");
    if (cursor.empty()) break;
    if (!cursors.insert(cursor).second) {
      return absl::FailedPreconditionError(absl::StrCat("MCP server '", options_.server_name,
                                                        "' repeated tools/list cursor \"", cursor.substr(0, 80),
                                                        "\" (pagination loop)"));
    }
  }
  absl::MutexLock lock(&mu_);
  output_schemas_.clear();
  for (const ToolInfo& t : tools) {
    if (!t.output_schema.is_null()) output_schemas_[t.name] = t.output_schema;
  }
  tools_loaded_ = true;
  return tools;
}

absl::StatusOr<CallToolResult> McpClient::CallTool(const std::string& name, const Json& arguments,
                                                   const RequestOptions& options) {
  if (!arguments.is_null() && !arguments.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat("arguments for tool '", name, "' must be a JSON object"));
  }
  bool need_list;
  {
    absl::MutexLock lock(&mu_);
    need_list = options_.validate_structured_content && (!tools_loaded_ || tools_changed_);
  }
  if (need_list) {
    auto listed = ListTools();
    if (!listed.ok()) {
      TLOG(WARNING, "could not list tools to learn output schemas; not validating")
          .Field("server", options_.server_name)
          .Field("error", listed.status());
    }
  }
  Json params = {{"name", name}, {"arguments", arguments.is_null() ? Json::object() : arguments}};
  ASSIGN_OR_RETURN(Json result, Request("tools/call", params, options));
  absl::StatusOr<CallToolResult> parsed = ParseCallToolResult(result);
  if (!parsed.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("MCP server '", options_.server_name, "' tool '", name,
                                                      "' returned a malformed result: ", parsed.status().message()));
  }
  if (!options_.validate_structured_content || parsed->is_error) return parsed;
  Json schema;
  {
    absl::MutexLock lock(&mu_);
    auto it = output_schemas_.find(name);
    if (it != output_schemas_.end()) schema = it->second;
  }
  if (schema.is_null()) return parsed;
  if (!parsed->structured_content.has_value()) {
    return absl::FailedPreconditionError(absl::StrCat("MCP server '", options_.server_name, "' tool '", name,
                                                      "' declares an outputSchema but returned no structuredContent"));
  }
  absl::Status valid = ValidateAgainstSchema(schema, *parsed->structured_content);
  if (absl::IsUnimplemented(valid)) {
    TLOG(WARNING, "mcp outputSchema not checkable; result passed through")
        .Field("server", options_.server_name)
        .Field("tool", name)
        .Field("reason", valid);
  } else if (!valid.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("MCP server '", options_.server_name, "' tool '", name,
                                                      "' returned structuredContent that does not match its "
                                                      "outputSchema: ",
                                                      valid.message()));
  }
  return parsed;
}

absl::Status McpClient::Ping() {
  bool modern;
  {
    absl::MutexLock lock(&mu_);
    modern = era_ == Era::kModern;
  }
  if (modern) return absl::OkStatus();  // 2026-07-28 removed ping; a request would fail
  return Request("ping", nullptr, options_.default_request).status();
}

void McpClient::SetToolsChangedCallback(std::function<void()> callback) {
  absl::MutexLock lock(&mu_);
  tools_changed_callback_ = std::move(callback);
}

bool McpClient::tools_changed() const {
  absl::MutexLock lock(&mu_);
  return tools_changed_;
}

void McpClient::Close() {
  {
    absl::MutexLock lock(&mu_);
    if (!closed_) {
      closed_ = true;
      closed_status_ = absl::UnavailableError(absl::StrCat("MCP client for '", options_.server_name, "' is closed"));
    }
    for (auto& [k, p] : pending_) {
      if (p->done) continue;
      p->failure = closed_status_;
      p->done = true;
    }
  }
  transport_->Close();
}

McpClient::Era McpClient::era() const {
  absl::MutexLock lock(&mu_);
  return era_;
}

std::string McpClient::protocol_version() const {
  absl::MutexLock lock(&mu_);
  return protocol_version_;
}

Json McpClient::server_info() const {
  absl::MutexLock lock(&mu_);
  return server_info_;
}

Json McpClient::server_capabilities() const {
  absl::MutexLock lock(&mu_);
  return server_capabilities_;
}

}  // namespace tessera::mcp
