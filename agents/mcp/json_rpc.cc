#include "agents/mcp/json_rpc.h"

#include <string>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace tessera::mcp {
namespace {
constexpr char kRpcCodePayload[] = "tessera.mcp/rpc-error-code";
}  // namespace

absl::StatusOr<Json> ParseJson(absl::string_view text) {
  Json value = Json::parse(text.begin(), text.end(), /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    // Re-parse with a sax-free diagnostic: nlohmann reports the byte offset
    // only through exceptions, so catch it here (the one adapter boundary).
    std::string detail = "malformed JSON";
    try {
      Json ignored = Json::parse(text.begin(), text.end());
      (void)ignored;
    } catch (const Json::exception& e) {
      detail = e.what();
    }
    return absl::InvalidArgumentError(detail);
  }
  return value;
}

std::string Serialize(const Json& value) {
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

MessageKind Classify(const Json& message) {
  if (!message.is_object()) return MessageKind::kInvalid;
  auto method = message.find("method");
  auto id = message.find("id");
  bool has_id = id != message.end() && (id->is_number_integer() || id->is_string());
  if (method != message.end()) {
    if (!method->is_string()) return MessageKind::kInvalid;
    if (id == message.end()) return MessageKind::kNotification;
    return has_id ? MessageKind::kRequest : MessageKind::kInvalid;
  }
  if (message.contains("error") && message["error"].is_object()) return MessageKind::kError;
  if (message.contains("result") && has_id) return MessageKind::kResult;
  return MessageKind::kInvalid;
}

std::string IdKey(const Json& id) {
  if (id.is_number_unsigned()) return absl::StrCat("i:", id.get<uint64_t>());
  if (id.is_number_integer()) return absl::StrCat("i:", id.get<int64_t>());
  if (id.is_string()) return absl::StrCat("s:", id.get<std::string>());
  return "";
}

Json MakeRequest(const Json& id, absl::string_view method, Json params) {
  Json m = {{"jsonrpc", "2.0"}, {"id", id}, {"method", std::string(method)}};
  if (!params.is_null()) m["params"] = std::move(params);
  return m;
}

Json MakeNotification(absl::string_view method, Json params) {
  Json m = {{"jsonrpc", "2.0"}, {"method", std::string(method)}};
  if (!params.is_null()) m["params"] = std::move(params);
  return m;
}

Json MakeResult(const Json& id, Json result) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

Json MakeError(const Json& id, int code, absl::string_view message, Json data) {
  Json error = {{"code", code}, {"message", std::string(message)}};
  if (!data.is_null()) error["data"] = std::move(data);
  return {{"jsonrpc", "2.0"}, {"id", id}, {"error", std::move(error)}};
}

absl::Status RpcErrorToStatus(const Json& error, absl::string_view method) {
  int code = 0;
  std::string message = "(no message)";
  if (error.is_object()) {
    auto c = error.find("code");
    if (c != error.end() && c->is_number_integer()) code = c->get<int>();
    std::string m = GetString(error, "message");
    if (!m.empty()) message = m;
  }
  std::string text = absl::StrCat("MCP server returned error ", code, " for ", method, ": ", message);
  if (error.is_object() && error.contains("data")) {
    std::string data = Serialize(error["data"]);
    if (data.size() > 300) data = data.substr(0, 300) + "...";
    absl::StrAppend(&text, " (data: ", data, ")");
  }
  absl::StatusCode status_code;
  switch (code) {
    case kMethodNotFound: status_code = absl::StatusCode::kUnimplemented; break;
    case kInvalidParams:
    case kInvalidRequest:
    case kParseError: status_code = absl::StatusCode::kInvalidArgument; break;
    case kResourceNotFound: status_code = absl::StatusCode::kNotFound; break;
    case kUnsupportedVersion:
    case kHeaderMismatch: status_code = absl::StatusCode::kFailedPrecondition; break;
    default: status_code = absl::StatusCode::kInternal; break;
  }
  absl::Status status(status_code, text);
  status.SetPayload(kRpcCodePayload, absl::Cord(absl::StrCat(code)));
  return status;
}

int RpcErrorCodeOf(const absl::Status& status) {
  auto payload = status.GetPayload(kRpcCodePayload);
  if (!payload.has_value()) return 0;
  int code = 0;
  if (!absl::SimpleAtoi(std::string(*payload), &code)) return 0;
  return code;
}

std::string GetString(const Json& object, absl::string_view key, absl::string_view fallback) {
  if (!object.is_object()) return std::string(fallback);
  auto it = object.find(std::string(key));
  if (it == object.end() || !it->is_string()) return std::string(fallback);
  return it->get<std::string>();
}

bool GetBool(const Json& object, absl::string_view key, bool fallback) {
  if (!object.is_object()) return fallback;
  auto it = object.find(std::string(key));
  if (it == object.end() || !it->is_boolean()) return fallback;
  return it->get<bool>();
}

const Json* GetObject(const Json& object, absl::string_view key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(std::string(key));
  if (it == object.end() || !it->is_object()) return nullptr;
  return &*it;
}

const Json* GetArray(const Json& object, absl::string_view key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(std::string(key));
  if (it == object.end() || !it->is_array()) return nullptr;
  return &*it;
}

}  // namespace tessera::mcp
