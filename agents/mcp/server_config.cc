#include "agents/mcp/server_config.h"

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace tessera::mcp {
namespace {

class FieldParser {
 public:
  FieldParser(std::string prefix, const Json& object) : prefix_(std::move(prefix)), object_(object) {}

  absl::Status Error(absl::string_view field, absl::string_view problem) const {
    return absl::InvalidArgumentError(absl::StrCat(prefix_, ".", field, ": ", problem));
  }

  // Replaces ${env:NAME} references.
  absl::StatusOr<std::string> Expand(absl::string_view field, const std::string& value) const {
    std::string out;
    size_t pos = 0;
    while (true) {
      size_t start = value.find("${env:", pos);
      if (start == std::string::npos) break;
      size_t end = value.find('}', start);
      if (end == std::string::npos) return Error(field, "unterminated ${env:...} reference");
      std::string var = value.substr(start + 6, end - start - 6);
      const char* env = getenv(var.c_str());
      if (env == nullptr) {
        return Error(field, absl::StrCat("environment variable ", var, " is not set"));
      }
      out.append(value, pos, start - pos);
      out.append(env);
      pos = end + 1;
    }
    out.append(value, pos, std::string::npos);
    return out;
  }

  absl::StatusOr<std::string> String(absl::string_view field, bool required, bool expand = true) const {
    auto it = object_.find(std::string(field));
    if (it == object_.end() || it->is_null()) {
      if (required) return Error(field, "is required");
      return std::string();
    }
    if (!it->is_string()) return Error(field, "must be a string");
    std::string value = it->get<std::string>();
    if (required && value.empty()) return Error(field, "must not be empty");
    if (!expand) return value;
    return Expand(field, value);
  }

  absl::StatusOr<std::vector<std::string>> StringList(absl::string_view field) const {
    std::vector<std::string> out;
    auto it = object_.find(std::string(field));
    if (it == object_.end() || it->is_null()) return out;
    if (!it->is_array()) return Error(field, "must be an array of strings");
    for (size_t i = 0; i < it->size(); ++i) {
      if (!(*it)[i].is_string()) return Error(absl::StrCat(field, "[", i, "]"), "must be a string");
      ASSIGN_OR_RETURN(std::string v, Expand(absl::StrCat(field, "[", i, "]"), (*it)[i].get<std::string>()));
      out.push_back(std::move(v));
    }
    return out;
  }

  absl::StatusOr<std::map<std::string, std::string>> StringMap(absl::string_view field) const {
    std::map<std::string, std::string> out;
    auto it = object_.find(std::string(field));
    if (it == object_.end() || it->is_null()) return out;
    if (!it->is_object()) return Error(field, "must be an object of strings");
    for (auto& [k, v] : it->items()) {
      if (!v.is_string()) return Error(absl::StrCat(field, ".", k), "must be a string");
      ASSIGN_OR_RETURN(std::string value, Expand(absl::StrCat(field, ".", k), v.get<std::string>()));
      out[k] = std::move(value);
    }
    return out;
  }

  absl::StatusOr<std::optional<int64_t>> Positive(absl::string_view field) const {
    auto it = object_.find(std::string(field));
    if (it == object_.end() || it->is_null()) return std::optional<int64_t>();
    if (!it->is_number_integer() || it->get<int64_t>() <= 0) return Error(field, "must be a positive integer");
    return std::optional<int64_t>(it->get<int64_t>());
  }

  absl::StatusOr<bool> Bool(absl::string_view field, bool fallback) const {
    auto it = object_.find(std::string(field));
    if (it == object_.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) return Error(field, "must be true or false");
    return it->get<bool>();
  }

  const Json* Object(absl::string_view field) const {
    auto it = object_.find(std::string(field));
    return it == object_.end() ? nullptr : &*it;
  }

  const std::string& prefix() const { return prefix_; }

 private:
  std::string prefix_;
  const Json& object_;
};

absl::Status CheckKnownFields(const FieldParser& p, const Json& object, std::initializer_list<const char*> known) {
  for (auto& [k, v] : object.items()) {
    bool ok = false;
    for (const char* name : known) ok |= k == name;
    if (!ok) return p.Error(k, "unknown field (check the spelling)");
  }
  return absl::OkStatus();
}

}  // namespace

bool ToolFilter::Allows(absl::string_view tool) const {
  auto matches = [&](const std::string& pattern) {
    if (!pattern.empty() && pattern.back() == '*') {
      return absl::StartsWith(tool, absl::string_view(pattern).substr(0, pattern.size() - 1));
    }
    return tool == pattern;
  };
  if (!allow.empty() && std::none_of(allow.begin(), allow.end(), matches)) return false;
  return std::none_of(deny.begin(), deny.end(), matches);
}

absl::StatusOr<ServerConfig> ParseServerConfig(absl::string_view name, const Json& json) {
  std::string prefix = absl::StrCat("servers.", name);
  if (!json.is_object()) return absl::InvalidArgumentError(absl::StrCat(prefix, ": must be an object"));
  if (name.empty()) return absl::InvalidArgumentError("servers: a server name must not be empty");
  for (char c : name) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-')) {
      return absl::InvalidArgumentError(
          absl::StrCat(prefix, ": server names may contain only letters, digits, '_' and '-'"));
    }
  }
  FieldParser p(prefix, json);
  RETURN_IF_ERROR(CheckKnownFields(p, json, {"transport", "command", "args", "env", "cwd", "inherit_env", "url",
                                             "headers", "auth", "timeout_ms", "max_timeout_ms", "max_message_bytes",
                                             "protocol", "roots", "tools", "description"}));
  ServerConfig config;
  config.name = std::string(name);
  ASSIGN_OR_RETURN(std::string transport, p.String("transport", /*required=*/true));
  if (transport == "stdio") {
    config.transport = ServerConfig::TransportKind::kStdio;
    ASSIGN_OR_RETURN(config.command, p.String("command", true));
    ASSIGN_OR_RETURN(config.args, p.StringList("args"));
    ASSIGN_OR_RETURN(config.env, p.StringMap("env"));
    ASSIGN_OR_RETURN(config.cwd, p.String("cwd", false));
    ASSIGN_OR_RETURN(config.inherit_env, p.Bool("inherit_env", false));
    for (const char* http_only : {"url", "headers", "auth"}) {
      if (json.contains(http_only)) return p.Error(http_only, "only applies to \"transport\": \"http\"");
    }
  } else if (transport == "http") {
    config.transport = ServerConfig::TransportKind::kHttp;
    ASSIGN_OR_RETURN(config.url, p.String("url", true));
    if (!absl::StartsWith(config.url, "http://") && !absl::StartsWith(config.url, "https://")) {
      return p.Error("url", "must start with http:// or https://");
    }
    ASSIGN_OR_RETURN(auto headers, p.StringMap("headers"));
    for (auto& [k, v] : headers) {
      if (absl::EqualsIgnoreCase(k, "Mcp-Session-Id") || absl::EqualsIgnoreCase(k, "MCP-Protocol-Version")) {
        return p.Error(absl::StrCat("headers.", k), "is managed by the client and cannot be configured");
      }
      config.headers.emplace_back(k, v);
    }
    if (const Json* auth = p.Object("auth"); auth != nullptr && !auth->is_null()) {
      if (!auth->is_object()) return p.Error("auth", "must be an object with \"bearer\" or \"oauth\"");
      FieldParser ap(prefix + ".auth", *auth);
      RETURN_IF_ERROR(CheckKnownFields(ap, *auth, {"bearer", "oauth"}));
      if (auth->contains("bearer") && auth->contains("oauth")) {
        return p.Error("auth", "give either \"bearer\" or \"oauth\", not both");
      }
      if (auth->contains("bearer")) {
        ASSIGN_OR_RETURN(config.bearer_token, ap.String("bearer", true));
      } else if (const Json* oauth = ap.Object("oauth")) {
        if (!oauth->is_object()) return ap.Error("oauth", "must be an object");
        FieldParser op(prefix + ".auth.oauth", *oauth);
        RETURN_IF_ERROR(CheckKnownFields(op, *oauth, {"client_id", "client_secret", "private_key_pem", "signing_algorithm",
                                                      "client_metadata_url",
                                                      "access_token", "refresh_token",
                                                      "scopes", "authorization_server", "token_endpoint",
                                                      "resource", "redirect_uri"}));
        OAuthConfig o;
        ASSIGN_OR_RETURN(o.client_id, op.String("client_id", true));
        ASSIGN_OR_RETURN(o.client_secret, op.String("client_secret", false));
        ASSIGN_OR_RETURN(o.private_key_pem, op.String("private_key_pem", false));
        ASSIGN_OR_RETURN(o.signing_algorithm, op.String("signing_algorithm", false));
        ASSIGN_OR_RETURN(o.client_metadata_url, op.String("client_metadata_url", false));
        if (!o.client_metadata_url.empty() && !absl::StartsWith(o.client_metadata_url, "https://")) {
          return op.Error("client_metadata_url", "must be an https URL");
        }
        ASSIGN_OR_RETURN(o.access_token, op.String("access_token", false));
        ASSIGN_OR_RETURN(o.refresh_token, op.String("refresh_token", false));
        ASSIGN_OR_RETURN(o.scopes, op.StringList("scopes"));
        ASSIGN_OR_RETURN(o.authorization_server, op.String("authorization_server", false));
        ASSIGN_OR_RETURN(o.token_endpoint, op.String("token_endpoint", false));
        ASSIGN_OR_RETURN(o.resource, op.String("resource", false));
        ASSIGN_OR_RETURN(o.redirect_uri, op.String("redirect_uri", false));
        if (o.access_token.empty() && o.refresh_token.empty() && o.client_secret.empty() &&
            o.private_key_pem.empty()) {
          return op.Error("refresh_token",
                          "give a refresh_token (from an authorization-code login), an access_token, or a "
                          "client_secret or private_key_pem (client-credentials)");
        }
        config.oauth = std::move(o);
      } else {
        return p.Error("auth", "must contain \"bearer\" or \"oauth\"");
      }
    }
    for (const char* stdio_only : {"command", "args", "env", "cwd", "inherit_env"}) {
      if (json.contains(stdio_only)) return p.Error(stdio_only, "only applies to \"transport\": \"stdio\"");
    }
  } else {
    return p.Error("transport", absl::StrCat("must be \"stdio\" or \"http\", not \"", transport, "\""));
  }
  ASSIGN_OR_RETURN(auto timeout_ms, p.Positive("timeout_ms"));
  if (timeout_ms) config.timeout = absl::Milliseconds(*timeout_ms);
  ASSIGN_OR_RETURN(auto max_timeout_ms, p.Positive("max_timeout_ms"));
  if (max_timeout_ms) config.max_timeout = absl::Milliseconds(*max_timeout_ms);
  if (config.max_timeout < config.timeout) return p.Error("max_timeout_ms", "must not be less than timeout_ms");
  ASSIGN_OR_RETURN(auto max_bytes, p.Positive("max_message_bytes"));
  if (max_bytes) {
    if (*max_bytes < 1024) return p.Error("max_message_bytes", "must be at least 1024");
    config.max_message_bytes = static_cast<size_t>(*max_bytes);
  }
  ASSIGN_OR_RETURN(std::string protocol, p.String("protocol", false));
  if (protocol == "legacy") {
    config.try_modern_era = false;
  } else if (!protocol.empty() && protocol != "auto") {
    return p.Error("protocol", "must be \"auto\" or \"legacy\"");
  }
  if (const Json* roots = p.Object("roots"); roots != nullptr && !roots->is_null()) {
    if (!roots->is_array()) return p.Error("roots", "must be an array of {\"uri\",\"name\"}");
    for (size_t i = 0; i < roots->size(); ++i) {
      const Json& r = (*roots)[i];
      std::string uri = GetString(r, "uri");
      if (!absl::StartsWith(uri, "file://")) return p.Error(absl::StrCat("roots[", i, "].uri"), "must be a file:// URI");
      config.roots.emplace_back(uri, GetString(r, "name"));
    }
  }
  if (const Json* tools = p.Object("tools"); tools != nullptr && !tools->is_null()) {
    if (!tools->is_object()) return p.Error("tools", "must be an object with \"allow\" and/or \"deny\"");
    FieldParser tp(prefix + ".tools", *tools);
    RETURN_IF_ERROR(CheckKnownFields(tp, *tools, {"allow", "deny"}));
    ASSIGN_OR_RETURN(config.tools.allow, tp.StringList("allow"));
    ASSIGN_OR_RETURN(config.tools.deny, tp.StringList("deny"));
  }
  return config;
}

absl::StatusOr<std::vector<ServerConfig>> ParseServersConfig(const Json& json) {
  if (!json.is_object()) return absl::InvalidArgumentError("MCP config: the top level must be an object");
  auto it = json.find("servers");
  if (it == json.end()) return absl::InvalidArgumentError("MCP config: missing \"servers\" object");
  if (!it->is_object()) return absl::InvalidArgumentError("servers: must be an object of name -> server");
  std::vector<ServerConfig> out;
  for (auto& [name, value] : it->items()) {  // nlohmann objects iterate sorted by key
    ASSIGN_OR_RETURN(ServerConfig config, ParseServerConfig(name, value));
    out.push_back(std::move(config));
  }
  return out;
}

absl::StatusOr<std::vector<ServerConfig>> LoadServersConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read MCP config file ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  auto json = ParseJson(ss.str());
  if (!json.ok()) return absl::InvalidArgumentError(absl::StrCat(path, ": ", json.status().message()));
  auto servers = ParseServersConfig(*json);
  if (!servers.ok()) return Annotate(servers.status(), path);
  return servers;
}

}  // namespace tessera::mcp
