#include "services/mcp/http_server.h"

#include <openssl/rand.h>

#include <algorithm>
#include <map>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/logging.h"
#include "httplib.h"

namespace tessera::mcp {
namespace {

constexpr char kSessionHeader[] = "Mcp-Session-Id";
constexpr char kVersionHeader[] = "MCP-Protocol-Version";

// Session ids: 32 bytes of OpenSSL's CSPRNG, hex (visible ASCII per spec).
absl::StatusOr<std::string> NewSessionId() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) return absl::InternalError("RAND_bytes failed");
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(bytes), sizeof(bytes)));
}

// "host:port", "[::1]:port", "host" -> lower-case host without the port.
std::string HostName(absl::string_view authority) {
  authority = absl::StripAsciiWhitespace(authority);
  if (absl::StartsWith(authority, "[")) {
    size_t end = authority.find(']');
    return absl::AsciiStrToLower(authority.substr(0, end == absl::string_view::npos ? authority.size() : end + 1));
  }
  size_t colon = authority.find(':');
  return absl::AsciiStrToLower(authority.substr(0, colon));
}

bool IsLoopbackName(absl::string_view host) {
  return host == "localhost" || host == "127.0.0.1" || host == "[::1]";
}

bool Accepts(const std::string& accept, absl::string_view type) {
  for (absl::string_view part : absl::StrSplit(accept, ',')) {
    absl::string_view media = absl::StripAsciiWhitespace(part.substr(0, part.find(';')));
    if (absl::EqualsIgnoreCase(media, type) || media == "*/*") return true;
  }
  return false;
}

void JsonReply(httplib::Response& res, int status, const Json& body) {
  res.status = status;
  res.set_content(Serialize(body), "application/json");
}

void RpcFailure(httplib::Response& res, int status, int code, absl::string_view message,
                const Json& id = nullptr) {
  JsonReply(res, status, MakeError(id, code, message));
}

class HttplibMcpServer final : public McpHttpServer {
 public:
  explicit HttplibMcpServer(McpHttpServerOptions options)
      : options_(std::move(options)), core_(options_.server) {}
  ~HttplibMcpServer() override { Stop(); }

  absl::Status Start() {
    const int threads = std::max(1, options_.worker_threads);
    http_.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
    http_.set_payload_max_length(options_.max_body_bytes);
    http_.set_read_timeout(30, 0);
    http_.set_write_timeout(30, 0);
    http_.set_keep_alive_timeout(2);  // Stop() waits for idle keep-alive connections
    http_.Post(options_.path, [this](const httplib::Request& req, httplib::Response& res) { Post(req, res); });
    http_.Delete(options_.path, [this](const httplib::Request& req, httplib::Response& res) { Delete(req, res); });
    http_.Get(options_.path, [this](const httplib::Request& req, httplib::Response& res) {
      if (!Admit(req, res)) return;
      res.status = 405;
      res.set_header("Allow", "POST, DELETE");
    });
    http_.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
      RpcFailure(res, 500, kInternalError, "Internal error");
    });
    if (options_.port == 0) {
      port_ = http_.bind_to_any_port(options_.host);
      if (port_ < 0) return absl::UnavailableError(absl::StrCat("cannot bind MCP HTTP server to ", options_.host));
    } else {
      if (!http_.bind_to_port(options_.host, options_.port)) {
        return absl::UnavailableError(
            absl::StrCat("cannot bind MCP HTTP server to ", options_.host, ":", options_.port, " (in use?)"));
      }
      port_ = options_.port;
    }
    thread_ = std::thread([this] { http_.listen_after_bind(); });
    // cpp-httplib 0.11 has no wait_until_ready(); the socket is bound and
    // listening already, this only lets Stop() see a running server.
    for (int i = 0; i < 2000 && !http_.is_running(); ++i) absl::SleepFor(absl::Milliseconds(1));
    TLOG(INFO, "MCP HTTP server listening").Field("url", url());
    return absl::OkStatus();
  }

  int port() const override { return port_; }
  std::string url() const override {
    const std::string host = absl::StrContains(options_.host, ':') ? absl::StrCat("[", options_.host, "]")
                                                                   : options_.host;
    return absl::StrCat("http://", host, ":", port_, options_.path);
  }
  McpServer& server() override { return core_; }
  size_t session_count() const override {
    absl::MutexLock lock(&mu_);
    return sessions_.size();
  }
  void Stop() override {
    http_.stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  struct Session {
    McpSession state;
    std::string key_id;
    absl::Time last_used;
    absl::Mutex mu;  // one request of a session at a time
  };

  bool HostAllowed(const httplib::Request& req) const {
    const std::string host = HostName(req.get_header_value("Host"));
    if (host.empty()) return false;
    if (IsLoopbackName(host)) return true;
    if (host == absl::AsciiStrToLower(options_.host) && options_.host != "0.0.0.0" && options_.host != "::") {
      return true;
    }
    for (const std::string& h : options_.allowed_hosts) {
      if (absl::AsciiStrToLower(h) == host) return true;
    }
    return false;
  }

  bool OriginAllowed(const httplib::Request& req) const {
    if (!req.has_header("Origin")) return true;  // not a browser
    const std::string origin = req.get_header_value("Origin");
    for (const std::string& o : options_.allowed_origins) {
      if (absl::EqualsIgnoreCase(o, origin)) return true;
    }
    if (!options_.allow_loopback_origins) return false;
    absl::string_view rest = origin;
    if (!absl::ConsumePrefix(&rest, "http://") && !absl::ConsumePrefix(&rest, "https://")) return false;
    if (absl::StrContains(rest, '/') || absl::StrContains(rest, '@')) return false;
    return IsLoopbackName(HostName(rest));
  }

  // Host, Origin and credentials. Fills `res` and returns false on refusal.
  bool Admit(const httplib::Request& req, httplib::Response& res, McpKeyInfo* key_info = nullptr,
             std::string* key = nullptr) {
    if (!HostAllowed(req)) {
      RpcFailure(res, 403, kInvalidRequest, "Forbidden: Host header not allowed");
      return false;
    }
    if (!OriginAllowed(req)) {
      RpcFailure(res, 403, kInvalidRequest, "Forbidden: Origin not allowed");
      return false;
    }
    std::string token;
    const std::string authorization = req.get_header_value("Authorization");
    absl::string_view value = absl::StripAsciiWhitespace(authorization);
    std::string challenge = "Bearer realm=\"tessera\"";
    if (!options_.resource_metadata_url.empty()) {
      absl::StrAppend(&challenge, ", resource_metadata=\"", options_.resource_metadata_url, "\"");
    }
    if (value.empty() && !options_.unauthenticated_key_for_tests.empty()) {
      token = options_.unauthenticated_key_for_tests;
    } else if (value.size() > 7 && absl::EqualsIgnoreCase(value.substr(0, 7), "bearer ")) {
      token = std::string(absl::StripAsciiWhitespace(value.substr(7)));
    }
    if (token.empty()) {
      res.set_header("WWW-Authenticate", challenge);
      RpcFailure(res, 401, kInvalidRequest, "Unauthorized: send Authorization: Bearer <Tessera API key>");
      return false;
    }
    absl::StatusOr<McpKeyInfo> info = options_.validate_key(token);
    if (!info.ok()) {
      res.set_header("WWW-Authenticate", absl::StrCat(challenge, ", error=\"invalid_token\""));
      RpcFailure(res, 401, kInvalidRequest, "Unauthorized: invalid API key");
      return false;
    }
    if (key_info != nullptr) *key_info = *info;
    if (key != nullptr) *key = std::move(token);
    return true;
  }

  // The session named by the request, bound to `key_id`; null with `res`
  // filled when there is none.
  std::shared_ptr<Session> FindSession(const httplib::Request& req, const std::string& key_id,
                                       httplib::Response& res) {
    if (!req.has_header(kSessionHeader)) {
      RpcFailure(res, 400, kInvalidRequest, "Bad Request: Mcp-Session-Id header is required (send initialize first)");
      return nullptr;
    }
    const std::string id = req.get_header_value(kSessionHeader);
    absl::MutexLock lock(&mu_);
    ExpireLocked();
    auto it = sessions_.find(id);
    // A session of another key is reported as unknown: ids are not credentials.
    if (it == sessions_.end() || it->second->key_id != key_id) {
      RpcFailure(res, 404, kInvalidRequest, "Session not found: initialize a new session");
      return nullptr;
    }
    it->second->last_used = absl::Now();
    return it->second;
  }

  void ExpireLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const absl::Time cutoff = absl::Now() - options_.session_idle_timeout;
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (it->second->last_used < cutoff) {
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void Reply(const httplib::Request& req, httplib::Response& res, const Json& message) {
    (void)req;
    if (options_.sse_responses) {
      res.status = 200;
      res.set_header("Cache-Control", "no-cache");
      res.set_content(absl::StrCat("event: message\ndata: ", Serialize(message), "\n\n"), "text/event-stream");
    } else {
      JsonReply(res, 200, message);
    }
  }

  // 2026-07-28: headers must agree with the body.
  bool CheckModernHeaders(const httplib::Request& req, httplib::Response& res, const Json& message) {
    const Json& meta = message["params"]["_meta"];
    const std::string body_version = GetString(meta, kMetaProtocolVersion);
    const Json id = message.contains("id") ? message["id"] : Json(nullptr);
    if (req.get_header_value(kVersionHeader) != body_version) {
      RpcFailure(res, 400, kHeaderMismatch,
                 "Bad Request: the MCP-Protocol-Version header and the body's _meta protocolVersion disagree", id);
      return false;
    }
    const std::string method = GetString(message, "method");
    if (req.get_header_value("Mcp-Method") != method) {
      RpcFailure(res, 400, kHeaderMismatch,
                 absl::StrCat("Bad Request: the Mcp-Method header must be ", method), id);
      return false;
    }
    if (method == "tools/call" || method == "resources/read" || method == "prompts/get") {
      const std::string name = GetString(message["params"], method == "resources/read" ? "uri" : "name");
      std::string header = req.get_header_value("Mcp-Name");
      absl::string_view v = header;
      if (absl::ConsumePrefix(&v, "=?base64?") && absl::ConsumeSuffix(&v, "?=")) {
        std::string decoded;
        if (absl::Base64Unescape(v, &decoded)) header = decoded;
      }
      if (header != name) {
        RpcFailure(res, 400, kHeaderMismatch, "Bad Request: the Mcp-Name header and the body disagree", id);
        return false;
      }
    }
    return true;
  }

  void Post(const httplib::Request& req, httplib::Response& res) {
    McpKeyInfo key_info;
    McpCallContext context;
    if (!Admit(req, res, &key_info, &context.bearer_key)) return;
    const std::string content_type = req.get_header_value("Content-Type");
    if (!absl::StartsWithIgnoreCase(absl::StripAsciiWhitespace(content_type), "application/json")) {
      RpcFailure(res, 415, kInvalidRequest, "Unsupported Media Type: Content-Type must be application/json");
      return;
    }
    const std::string accept = req.get_header_value("Accept");
    if (!Accepts(accept, "application/json") || !Accepts(accept, "text/event-stream")) {
      RpcFailure(res, 406, kInvalidRequest,
                 "Not Acceptable: Accept must list both application/json and text/event-stream");
      return;
    }
    absl::StatusOr<Json> parsed = ParseJson(req.body);
    if (!parsed.ok()) {
      RpcFailure(res, 400, kParseError, absl::StrCat("Parse error: ", parsed.status().message()));
      return;
    }
    const Json& message = *parsed;
    if (!message.is_object()) {
      RpcFailure(res, 400, kInvalidRequest, "Invalid Request: the body must be one JSON-RPC message (no batches)");
      return;
    }
    if (req.has_header(kVersionHeader) && !IsSupportedProtocolVersion(req.get_header_value(kVersionHeader))) {
      RpcFailure(res, 400, kInvalidRequest,
                 absl::StrCat("Bad Request: unsupported MCP-Protocol-Version: ", req.get_header_value(kVersionHeader)));
      return;
    }
    const MessageKind kind = Classify(message);
    const std::string method = GetString(message, "method");
    const Json* params = GetObject(message, "params");
    const Json* meta = params != nullptr ? GetObject(*params, "_meta") : nullptr;
    const bool modern = kind == MessageKind::kRequest && meta != nullptr && meta->contains(kMetaProtocolVersion);

    if (modern) {  // stateless: no session
      if (!CheckModernHeaders(req, res, message)) return;
      McpSession scratch;
      std::optional<Json> reply = core_.Handle(message, scratch, context);
      if (reply.has_value()) Reply(req, res, *reply);
      return;
    }
    if (kind == MessageKind::kRequest && method == "initialize") {
      McpSession state;
      std::optional<Json> reply = core_.Handle(message, state, context);
      if (!reply.has_value() || reply->contains("error")) {
        if (reply.has_value()) Reply(req, res, *reply);
        return;
      }
      absl::StatusOr<std::string> id = NewSessionId();
      if (!id.ok()) {
        RpcFailure(res, 500, kInternalError, "Internal error: cannot create a session id", message["id"]);
        return;
      }
      {
        absl::MutexLock lock(&mu_);
        ExpireLocked();
        if (sessions_.size() >= options_.max_sessions) {
          RpcFailure(res, 503, kInternalError, "Service Unavailable: too many MCP sessions", message["id"]);
          return;
        }
        auto session = std::make_shared<Session>();
        session->state = std::move(state);
        session->key_id = key_info.key_id;
        session->last_used = absl::Now();
        sessions_[*id] = std::move(session);
      }
      res.set_header(kSessionHeader, *id);
      Reply(req, res, *reply);
      return;
    }
    // Legacy messages after initialize (and stray client responses).
    if (kind == MessageKind::kRequest && method == "server/discover" && !req.has_header(kSessionHeader)) {
      McpSession scratch;
      std::optional<Json> reply = core_.Handle(message, scratch, context);
      if (reply.has_value()) Reply(req, res, *reply);
      return;
    }
    if (kind == MessageKind::kInvalid) {
      McpSession scratch;
      std::optional<Json> reply = core_.Handle(message, scratch, context);
      JsonReply(res, 400, reply.value_or(MakeError(nullptr, kInvalidRequest, "Invalid Request")));
      return;
    }
    std::shared_ptr<Session> session = FindSession(req, key_info.key_id, res);
    if (session == nullptr) return;
    std::optional<Json> reply;
    {
      absl::MutexLock lock(&session->mu);
      reply = core_.Handle(message, session->state, context);
    }
    if (!reply.has_value()) {
      res.status = 202;
      return;
    }
    Reply(req, res, *reply);
  }

  void Delete(const httplib::Request& req, httplib::Response& res) {
    McpKeyInfo key_info;
    if (!Admit(req, res, &key_info)) return;
    if (FindSession(req, key_info.key_id, res) == nullptr) return;
    absl::MutexLock lock(&mu_);
    sessions_.erase(req.get_header_value(kSessionHeader));
    res.status = 200;
  }

  const McpHttpServerOptions options_;
  McpServer core_;
  httplib::Server http_;
  std::thread thread_;
  int port_ = 0;
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Session>> sessions_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<McpHttpServer>> StartMcpHttpServer(McpHttpServerOptions options) {
  if (!options.validate_key) {
    return absl::InvalidArgumentError("the MCP HTTP server needs a key validator (validate_key)");
  }
  if (options.path.empty() || options.path[0] != '/') {
    return absl::InvalidArgumentError(absl::StrCat("MCP endpoint path must start with '/': ", options.path));
  }
  auto server = std::make_unique<HttplibMcpServer>(std::move(options));
  if (absl::Status s = server->Start(); !s.ok()) return s;
  return server;
}

}  // namespace tessera::mcp
