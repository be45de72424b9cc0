#include "services/mcp/mcp_server.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "agents/mcp/schema_validator.h"
#include "agents/mcp/types.h"
#include "common/grpc_status.h"
#include "grpcpp/client_context.h"
#include "tessera/v1/retrieval.grpc.pb.h"

namespace tessera::mcp {
namespace {

constexpr char kSearchTool[] = "search";
constexpr int kMaxTopK = 100;
constexpr size_t kMaxQueryChars = 4096;

Json ModernMeta(const Json& server_info) { return Json{{kMetaServerInfo, server_info}}; }

// Cursors are opaque to clients: "o:<offset>" into the sorted tool list.
std::optional<size_t> ParseCursor(const std::string& cursor) {
  if (cursor.rfind("o:", 0) != 0) return std::nullopt;
  size_t offset = 0;
  if (!absl::SimpleAtoi(cursor.substr(2), &offset)) return std::nullopt;
  return offset;
}

}  // namespace

bool IsSupportedProtocolVersion(absl::string_view version) {
  if (version == kServerModernVersion) return true;
  for (const char* v : kSupportedLegacyVersions) {
    if (version == v) return true;
  }
  return false;
}

Json SearchToolDescriptor() {
  Json hit = {
      {"type", "object"},
      {"properties",
       {{"index", {{"type", "integer"}, {"description", "citation number: cite as [index]"}}},
        {"title", {{"type", "string"}}},
        {"uri", {{"type", "string"}}},
        {"snippet", {{"type", "string"}}},
        {"document_id", {{"type", "string"}}},
        {"chunk_id", {{"type", "string"}}},
        {"collection", {{"type", "string"}}},
        {"source", {{"type", "string"}}},
        {"heading", {{"type", "string"}}},
        {"score", {{"type", "number"}}}}},
      {"required", {"index", "title", "uri", "snippet", "document_id", "chunk_id", "collection"}},
  };
  return Json{
      {"name", kSearchTool},
      {"title", "Knowledge search"},
      {"description",
       "Searches the organisation's indexed documents (mail, drive, sharepoint, uploads) that the "
       "caller may read, with hybrid BM25 + vector retrieval. Returns the best passages with "
       "citations [n] (title, link, snippet)."},
      {"inputSchema",
       {{"type", "object"},
        {"properties",
         {{"query",
           {{"type", "string"}, {"minLength", 1}, {"maxLength", kMaxQueryChars},
            {"description", "what to look for, in natural language or keywords"}}},
          {"top_k",
           {{"type", "integer"}, {"minimum", 1}, {"maximum", kMaxTopK},
            {"description", "how many passages to return (default 10)"}}},
          {"collections",
           {{"type", "array"}, {"items", {{"type", "string"}}},
            {"description", "collections to search; default: all the caller can see"}}}}},
        {"required", {"query"}},
        {"additionalProperties", false}}},
      {"outputSchema",
       {{"type", "object"},
        {"properties", {{"results", {{"type", "array"}, {"items", hit}}}}},
        {"required", {"results"}}}},
      {"annotations",
       {{"readOnlyHint", true}, {"destructiveHint", false}, {"idempotentHint", true},
        {"openWorldHint", false}}},
  };
}

McpServer::McpServer(McpServerOptions options) : options_(std::move(options)) {}

absl::Status McpServer::AddTool(McpToolDef tool) {
  const std::string name = GetString(tool.descriptor, "name");
  if (!IsValidToolName(name)) {
    return absl::InvalidArgumentError(absl::StrCat("invalid MCP tool name '", name, "'"));
  }
  const Json* schema = GetObject(tool.descriptor, "inputSchema");
  if (schema == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("tool ", name, " has no object inputSchema"));
  }
  if (!tool.handler) return absl::InvalidArgumentError(absl::StrCat("tool ", name, " has no handler"));
  absl::MutexLock lock(&mu_);
  if (name == kSearchTool && options_.retrieval_channel) {
    return absl::AlreadyExistsError("tool search is built in");
  }
  if (!tools_.emplace(name, std::move(tool)).second) {
    return absl::AlreadyExistsError(absl::StrCat("tool ", name, " is already registered"));
  }
  return absl::OkStatus();
}

Json McpServer::ServerInfo() const {
  return Json{{"name", options_.name}, {"title", options_.title}, {"version", options_.version}};
}

Json McpServer::Capabilities() const { return Json{{"tools", {{"listChanged", false}}}}; }

std::vector<const McpToolDef*> McpServer::SortedTools() const {
  // std::map keeps names sorted: tools/list order is deterministic.
  std::vector<const McpToolDef*> out;
  absl::MutexLock lock(&mu_);
  for (const auto& [name, tool] : tools_) out.push_back(&tool);
  return out;
}

std::optional<Json> McpServer::HandleText(absl::string_view text, McpSession& session,
                                          const McpCallContext& context) const {
  absl::StatusOr<Json> message = ParseJson(text);
  if (!message.ok()) {
    return MakeError(nullptr, kParseError, absl::StrCat("Parse error: ", message.status().message()));
  }
  return Handle(*message, session, context);
}

std::optional<Json> McpServer::Handle(const Json& message, McpSession& session,
                                      const McpCallContext& context) const {
  if (message.is_array()) {
    return MakeError(nullptr, kInvalidRequest,
                     "Invalid Request: JSON-RPC batches are not supported (removed in MCP 2025-06-18)");
  }
  if (!message.is_object() || GetString(message, "jsonrpc") != "2.0") {
    return MakeError(nullptr, kInvalidRequest, "Invalid Request: not a JSON-RPC 2.0 message");
  }
  const MessageKind kind = Classify(message);
  if (kind == MessageKind::kResult || kind == MessageKind::kError) return std::nullopt;
  if (kind == MessageKind::kNotification) {
    if (GetString(message, "method") == "notifications/initialized") session.initialized = true;
    return std::nullopt;  // cancelled, roots/list_changed, ...: nothing to do, never a reply
  }
  if (kind != MessageKind::kRequest) {
    const Json* id = message.contains("id") && !IdKey(message["id"]).empty() ? &message["id"] : nullptr;
    return MakeError(id ? *id : Json(nullptr), kInvalidRequest,
                     "Invalid Request: expected method, and an id that is a string or an integer");
  }
  const Json& id = message["id"];
  const std::string method = GetString(message, "method");
  Json params = message.contains("params") ? message["params"] : Json::object();
  if (params.is_null()) params = Json::object();
  if (!params.is_object()) return MakeError(id, kInvalidParams, "Invalid params: params must be an object");

  // Era: the 2026-07-28 _meta envelope marks a modern request.
  bool modern = false;
  if (const Json* meta = GetObject(params, "_meta"); meta != nullptr && meta->contains(kMetaProtocolVersion)) {
    modern = true;
    const std::string version = GetString(*meta, kMetaProtocolVersion);
    if (version != kServerModernVersion) {
      Json supported = Json::array({kServerModernVersion});
      return MakeError(id, kUnsupportedVersion, absl::StrCat("Unsupported protocol version: ", version),
                       Json{{"supported", supported}, {"requested", (*meta)[kMetaProtocolVersion]}});
    }
    if (GetObject(*meta, kMetaClientCapabilities) == nullptr) {
      return MakeError(id, kInvalidParams,
                       absl::StrCat("Request is missing ", kMetaClientCapabilities, " in the _meta envelope"));
    }
  } else if (method != "initialize" && method != "ping" && method != "server/discover" &&
             session.protocol_version.empty()) {
    return MakeError(id, kInvalidRequest,
                     absl::StrCat("Server not initialized: send initialize first, or use the ",
                                  kServerModernVersion, " _meta envelope"));
  }

  Reply reply = Dispatch(method, params, modern, session, context);
  if (auto* error = std::get_if<RpcError>(&reply)) {
    return MakeError(id, error->code, error->message, error->data);
  }
  Json result = std::move(std::get<Json>(reply));
  if (modern) {
    result["resultType"] = "complete";
    result["_meta"] = ModernMeta(ServerInfo());
  }
  return MakeResult(id, std::move(result));
}

McpServer::Reply McpServer::Dispatch(const std::string& method, const Json& params, bool modern,
                                     McpSession& session, const McpCallContext& context) const {
  if (method == "initialize") {
    if (modern) return RpcError{kInvalidRequest, "initialize is not part of protocol 2026-07-28", nullptr};
    const Json* requested = params.contains("protocolVersion") ? &params["protocolVersion"] : nullptr;
    if (requested == nullptr || !requested->is_string()) {
      return RpcError{kInvalidParams, "Invalid params: initialize needs protocolVersion (a string)", nullptr};
    }
    std::string version = requested->get<std::string>();
    if (version == kServerModernVersion || !IsSupportedProtocolVersion(version)) {
      version = kSupportedLegacyVersions[0];  // our latest legacy version
    }
    session.protocol_version = version;
    session.initialized = false;
    if (const Json* info = GetObject(params, "clientInfo")) session.client_info = *info;
    Json result = {{"protocolVersion", version}, {"capabilities", Capabilities()}, {"serverInfo", ServerInfo()}};
    if (!options_.instructions.empty()) result["instructions"] = options_.instructions;
    return result;
  }
  if (method == "server/discover") {
    Json result = {{"supportedVersions", Json::array({kServerModernVersion})},
                   {"capabilities", Capabilities()},
                   {"ttlMs", 0},
                   {"cacheScope", "private"}};
    if (!options_.instructions.empty()) result["instructions"] = options_.instructions;
    if (!modern) result["_meta"] = ModernMeta(ServerInfo());
    return result;
  }
  if (method == "ping") return Json::object();
  if (method == "tools/list") {
    Reply reply = ListTools(params);
    if (auto* result = std::get_if<Json>(&reply); result != nullptr && modern) {
      (*result)["ttlMs"] = 0;
      (*result)["cacheScope"] = "private";  // depends on the caller's key
    }
    return reply;
  }
  if (method == "tools/call") return CallTool(params, context);
  return RpcError{kMethodNotFound, absl::StrCat("Method not found: ", method), nullptr};
}

McpServer::Reply McpServer::ListTools(const Json& params) const {
  std::vector<Json> all;
  if (options_.retrieval_channel) all.push_back(SearchToolDescriptor());
  for (const McpToolDef* tool : SortedTools()) all.push_back(tool->descriptor);
  std::sort(all.begin(), all.end(), [](const Json& a, const Json& b) {
    return GetString(a, "name") < GetString(b, "name");
  });
  size_t offset = 0;
  if (params.contains("cursor") && !params["cursor"].is_null()) {
    std::optional<size_t> parsed =
        params["cursor"].is_string() ? ParseCursor(params["cursor"].get<std::string>()) : std::nullopt;
    if (!parsed.has_value() || *parsed > all.size()) {
      return RpcError{kInvalidParams, "Invalid params: unknown tools/list cursor", nullptr};
    }
    offset = *parsed;
  }
  const size_t page = static_cast<size_t>(std::max(1, options_.tools_page_size));
  const size_t end = std::min(all.size(), offset + page);
  Json tools = Json::array();
  for (size_t i = offset; i < end; ++i) tools.push_back(all[i]);
  Json result = {{"tools", tools}};
  if (end < all.size()) result["nextCursor"] = absl::StrCat("o:", end);
  return result;
}

McpServer::Reply McpServer::CallTool(const Json& params, const McpCallContext& context) const {
  const std::string name = GetString(params, "name");
  if (name.empty()) return RpcError{kInvalidParams, "Invalid params: tools/call needs a tool name", nullptr};
  Json arguments = params.contains("arguments") ? params["arguments"] : Json::object();
  if (arguments.is_null()) arguments = Json::object();
  if (!arguments.is_object()) return RpcError{kInvalidParams, "Invalid params: arguments must be an object", nullptr};

  Json schema;
  std::function<absl::StatusOr<Json>(const Json&, const McpCallContext&)> handler;
  if (name == kSearchTool && options_.retrieval_channel) {
    schema = SearchToolDescriptor()["inputSchema"];
    handler = [this](const Json& args, const McpCallContext& ctx) { return Search(args, ctx); };
  } else {
    absl::MutexLock lock(&mu_);
    auto it = tools_.find(name);
    if (it == tools_.end()) return RpcError{kInvalidParams, absl::StrCat("Unknown tool: ", name), nullptr};
    schema = it->second.descriptor["inputSchema"];
    handler = it->second.handler;
  }
  // Input errors are execution errors (isError) so that a model can retry.
  absl::StatusOr<Json> result = [&]() -> absl::StatusOr<Json> {
    absl::Status valid = ValidateAgainstSchema(schema, arguments);
    if (!valid.ok() && valid.code() != absl::StatusCode::kUnimplemented) {
      return absl::InvalidArgumentError(absl::StrCat("invalid arguments for tool ", name, ": ", valid.message()));
    }
    return handler(arguments, context);
  }();
  if (!result.ok()) {
    return Json{{"content", Json::array({Json{{"type", "text"},
                                              {"text", absl::StrCat(absl::StatusCodeToString(result.status().code()),
                                                                    ": ", result.status().message())}}})},
                {"isError", true}};
  }
  return *std::move(result);
}

absl::StatusOr<Json> McpServer::Search(const Json& arguments, const McpCallContext& context) const {
  const std::string query = std::string(absl::StripAsciiWhitespace(GetString(arguments, "query")));
  if (query.empty()) return absl::InvalidArgumentError("search needs a non-empty query");
  int top_k = 10;
  if (arguments.contains("top_k")) top_k = arguments["top_k"].get<int>();  // schema-checked integer
  std::vector<std::string> collections;
  if (const Json* list = GetArray(arguments, "collections")) {
    for (const Json& c : *list) collections.push_back(c.get<std::string>());
  }
  if (collections.empty()) collections = options_.default_collections;

  auto stub = v1::RetrievalService::NewStub(options_.retrieval_channel());
  auto make_context = [&] {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->AddMetadata("authorization", "Bearer " + context.bearer_key);
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + options_.search_timeout));
    return ctx;
  };
  if (collections.empty()) {
    std::string token;
    do {
      v1::ListCollectionsRequest req;
      req.set_page_size(1000);
      req.set_page_token(token);
      v1::ListCollectionsResponse resp;
      auto ctx = make_context();
      absl::Status s = FromGrpcStatus(stub->ListCollections(ctx.get(), req, &resp));
      if (!s.ok()) return absl::Status(s.code(), absl::StrCat("listing collections: ", s.message()));
      for (const auto& c : resp.collections()) collections.push_back(c.name());
      token = resp.next_page_token();
    } while (!token.empty() && collections.size() < 10000);
    if (collections.empty()) {
      return Json{{"content", Json::array({Json{{"type", "text"}, {"text", "No collections to search."}}})},
                  {"structuredContent", {{"results", Json::array()}}}};
    }
  }

  v1::SearchRequest req;
  req.set_query(query);
  req.set_top_k(top_k);
  for (const std::string& c : collections) req.add_collections(c);
  v1::SearchResponse resp;
  auto ctx = make_context();
  absl::Status s = FromGrpcStatus(stub->Search(ctx.get(), req, &resp));
  if (!s.ok()) return absl::Status(s.code(), absl::StrCat("search failed: ", s.message()));

  Json results = Json::array();
  std::string text;
  int index = 0;
  for (const v1::SearchHit& hit : resp.hits()) {
    ++index;
    Json r = {{"index", index},          {"title", hit.title()},
              {"uri", hit.uri()},        {"snippet", hit.snippet()},
              {"document_id", hit.document_id()}, {"chunk_id", hit.chunk_id()},
              {"collection", hit.collection()},   {"source", hit.source()},
              {"heading", hit.heading()}};
    if (hit.scores().has_fused()) r["score"] = hit.scores().fused();
    results.push_back(std::move(r));
    absl::StrAppend(&text, "[", index, "] ", hit.title().empty() ? hit.document_id() : hit.title());
    if (!hit.uri().empty()) absl::StrAppend(&text, " <", hit.uri(), ">");
    absl::StrAppend(&text, "\n", hit.snippet(), "\n\n");
  }
  if (results.empty()) text = "No results visible to you for this query.";
  return Json{{"content", Json::array({Json{{"type", "text"}, {"text", std::string(absl::StripTrailingAsciiWhitespace(text))}}})},
              {"structuredContent", {{"results", results}}}};
}

}  // namespace tessera::mcp
