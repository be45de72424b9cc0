#include "agents/mcp/oauth.h"

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <cctype>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/logging.h"
#include "common/status.h"

namespace tessera::mcp {
namespace {

std::string Base64Url(absl::string_view bytes) {
  std::string out;
  absl::WebSafeBase64Escape(bytes, &out);  // no padding
  return out;
}

std::string PercentEncode(absl::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string FormEncode(const std::vector<std::pair<std::string, std::string>>& form) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : form) parts.push_back(absl::StrCat(PercentEncode(k), "=", PercentEncode(v)));
  return absl::StrJoin(parts, "&");
}

struct UrlParts {
  std::string scheme, host, origin, path;
};

absl::StatusOr<UrlParts> SplitUrl(const std::string& url) {
  size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) return absl::InvalidArgumentError(absl::StrCat("not an absolute URL: ", url));
  UrlParts parts;
  parts.scheme = absl::AsciiStrToLower(url.substr(0, scheme_end));
  size_t host_start = scheme_end + 3;
  size_t path_start = url.find_first_of("/?#", host_start);
  std::string authority = url.substr(host_start, path_start == std::string::npos ? std::string::npos : path_start - host_start);
  if (authority.empty() || authority.find('@') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat("URL has no host or carries credentials: ", url));
  }
  parts.origin = url.substr(0, host_start + authority.size());
  if (authority.front() == '[') {
    parts.host = authority.substr(0, authority.find(']') + 1);
  } else {
    parts.host = authority.substr(0, authority.find(':'));
  }
  parts.host = absl::AsciiStrToLower(parts.host);
  if (path_start != std::string::npos && url[path_start] == '/') {
    size_t end = url.find_first_of("?#", path_start);
    parts.path = url.substr(path_start, end == std::string::npos ? std::string::npos : end - path_start);
  }
  if (parts.path == "/") parts.path.clear();
  return parts;
}

bool IsLoopback(const std::string& host) {
  return host == "localhost" || host == "[::1]" || absl::StartsWith(host, "127.");
}

}  // namespace

std::string PkceChallengeFor(const std::string& verifier) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(verifier.data(), verifier.size(), digest, &length, EVP_sha256(), nullptr);
  return Base64Url(absl::string_view(reinterpret_cast<const char*>(digest), length));
}

absl::StatusOr<PkcePair> GeneratePkce() {
  unsigned char random[32];
  if (RAND_bytes(random, sizeof(random)) != 1) return absl::InternalError("RAND_bytes failed");
  PkcePair pair;
  pair.verifier = Base64Url(absl::string_view(reinterpret_cast<const char*>(random), sizeof(random)));
  pair.challenge = PkceChallengeFor(pair.verifier);
  return pair;
}

std::map<std::string, std::string> ParseBearerChallenge(const std::string& header) {
  std::map<std::string, std::string> out;
  std::string h(absl::StripLeadingAsciiWhitespace(header));
  if (!absl::StartsWithIgnoreCase(h, "bearer")) return out;
  size_t i = 6;
  while (i < h.size()) {
    while (i < h.size() && (h[i] == ' ' || h[i] == ',')) ++i;
    size_t eq = h.find('=', i);
    if (eq == std::string::npos) break;
    std::string key = absl::AsciiStrToLower(absl::StripAsciiWhitespace(h.substr(i, eq - i)));
    i = eq + 1;
    std::string value;
    if (i < h.size() && h[i] == '"') {
      ++i;
      while (i < h.size() && h[i] != '"') {
        if (h[i] == '\\' && i + 1 < h.size()) ++i;
        value.push_back(h[i++]);
      }
      ++i;
    } else {
      size_t end = h.find(',', i);
      value = std::string(absl::StripAsciiWhitespace(h.substr(i, end == std::string::npos ? std::string::npos : end - i)));
      i = end == std::string::npos ? h.size() : end;
    }
    out[key] = value;
  }
  out["scheme"] = "bearer";
  return out;
}

absl::StatusOr<std::unique_ptr<OAuthAuth>> OAuthAuth::Create(Options options) {
  if (options.http == nullptr) return absl::InvalidArgumentError("OAuth: no HttpTransport given");
  if (options.config.client_id.empty()) return absl::InvalidArgumentError("OAuth: client_id is required");
  if (options.clock == nullptr) options.clock = RealClock();
  return std::unique_ptr<OAuthAuth>(new OAuthAuth(std::move(options)));
}

OAuthAuth::OAuthAuth(Options options) : options_(std::move(options)) {
  tokens_.access_token = options_.config.access_token;
  tokens_.refresh_token = options_.config.refresh_token;
  if (!options_.config.token_endpoint.empty()) {
    Metadata m;
    m.token_endpoint = options_.config.token_endpoint;
    m.issuer = options_.config.authorization_server;
    metadata_ = m;
  }
}

std::string OAuthAuth::Resource() const {
  return options_.config.resource.empty() ? options_.server_url : options_.config.resource;
}

OAuthTokens OAuthAuth::tokens() const {
  absl::MutexLock lock(&mu_);
  return tokens_;
}

void OAuthAuth::NotifyTokens() {
  if (!options_.on_tokens) return;
  options_.on_tokens(tokens());
}

absl::Status OAuthAuth::CheckMetadataUrl(const std::string& url) const {
  ASSIGN_OR_RETURN(UrlParts parts, SplitUrl(url));
  if (parts.scheme == "https") return absl::OkStatus();
  if (parts.scheme == "http" && options_.allow_insecure_loopback && IsLoopback(parts.host)) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat("OAuth: refusing metadata or token URL ", url, " (only https, or http on loopback, is allowed)"));
}

absl::StatusOr<Json> OAuthAuth::FetchJson(const std::string& url) {
  RETURN_IF_ERROR(CheckMetadataUrl(url));
  HttpRequest request;
  request.method = "GET";
  request.url = url;
  request.headers = {{"Accept", "application/json"}};
  request.timeout = absl::Seconds(15);
  ASSIGN_OR_RETURN(HttpResponse response, options_.http->Send(request));
  if (response.status_code != 200) {
    return absl::NotFoundError(absl::StrCat("OAuth metadata ", url, " answered HTTP ", response.status_code));
  }
  auto json = ParseJson(response.body);
  if (!json.ok() || !json->is_object()) {
    return absl::FailedPreconditionError(absl::StrCat("OAuth metadata ", url, " is not a JSON object"));
  }
  return *json;
}

absl::StatusOr<OAuthAuth::Metadata> OAuthAuth::Discover(const std::string& resource_metadata_url) {
  absl::MutexLock lock(&mu_);
  metadata_.reset();
  RETURN_IF_ERROR(EnsureDiscoveredLocked(resource_metadata_url));
  return *metadata_;
}

absl::Status OAuthAuth::EnsureDiscoveredLocked(const std::string& resource_metadata_url) {
  if (metadata_.has_value() && !metadata_->token_endpoint.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(UrlParts server, SplitUrl(options_.server_url));
  Metadata m;
  std::string as_url = options_.config.authorization_server;
  if (as_url.empty()) {
    // RFC 9728: the header's URL first, then the path-specific and root
    // well-known locations.
    std::vector<std::string> candidates;
    if (!resource_metadata_url.empty()) candidates.push_back(resource_metadata_url);
    if (!server.path.empty()) candidates.push_back(absl::StrCat(server.origin, "/.well-known/oauth-protected-resource", server.path));
    candidates.push_back(absl::StrCat(server.origin, "/.well-known/oauth-protected-resource"));
    absl::Status last = absl::NotFoundError("no protected resource metadata");
    for (const std::string& url : candidates) {
      auto prm = FetchJson(url);
      if (!prm.ok()) {
        last = prm.status();
        continue;
      }
      m.resource = GetString(*prm, "resource");
      if (!m.resource.empty() && m.resource != Resource() && m.resource != server.origin &&
          m.resource + "/" != Resource() && m.resource != Resource() + "/") {
        return absl::PermissionDeniedError(absl::StrCat("OAuth: protected resource metadata at ", url,
                                                        " is for resource ", m.resource, ", not ", Resource()));
      }
      const Json* servers = GetArray(*prm, "authorization_servers");
      if (servers == nullptr || servers->empty() || !(*servers)[0].is_string()) {
        return absl::FailedPreconditionError(absl::StrCat("OAuth: ", url, " lists no authorization_servers"));
      }
      as_url = (*servers)[0].get<std::string>();
      if (const Json* scopes = GetArray(*prm, "scopes_supported")) {
        for (const Json& s : *scopes) {
          if (s.is_string()) m.scopes_supported.push_back(s.get<std::string>());
        }
      }
      break;
    }
    if (as_url.empty()) {
      return absl::UnauthenticatedError(absl::StrCat("OAuth: could not discover the authorization server of ",
                                                     options_.server_url, ": ", last.message(),
                                                     " (set auth.oauth.authorization_server or token_endpoint)"));
    }
  }
  // RFC 8414 then OpenID Connect discovery, path-aware.
  ASSIGN_OR_RETURN(UrlParts issuer, SplitUrl(as_url));
  std::vector<std::string> candidates;
  if (!issuer.path.empty()) {
    candidates.push_back(absl::StrCat(issuer.origin, "/.well-known/oauth-authorization-server", issuer.path));
    candidates.push_back(absl::StrCat(issuer.origin, "/.well-known/openid-configuration", issuer.path));
    candidates.push_back(absl::StrCat(as_url, "/.well-known/openid-configuration"));
  } else {
    candidates.push_back(absl::StrCat(issuer.origin, "/.well-known/oauth-authorization-server"));
    candidates.push_back(absl::StrCat(issuer.origin, "/.well-known/openid-configuration"));
  }
  absl::Status last = absl::NotFoundError("no authorization server metadata");
  for (const std::string& url : candidates) {
    auto asm_json = FetchJson(url);
    if (!asm_json.ok()) {
      last = asm_json.status();
      continue;
    }
    m.issuer = GetString(*asm_json, "issuer");
    if (!m.issuer.empty() && m.issuer != as_url && m.issuer + "/" != as_url && m.issuer != as_url + "/") {
      return absl::PermissionDeniedError(
          absl::StrCat("OAuth: authorization server metadata issuer ", m.issuer, " does not match ", as_url));
    }
    if (m.issuer.empty()) m.issuer = as_url;
    m.token_endpoint = GetString(*asm_json, "token_endpoint");
    m.authorization_endpoint = GetString(*asm_json, "authorization_endpoint");
    if (const Json* methods = GetArray(*asm_json, "code_challenge_methods_supported")) {
      for (const Json& method : *methods) m.s256_supported |= method.is_string() && method.get<std::string>() == "S256";
    }
    if (m.token_endpoint.empty()) {
      return absl::FailedPreconditionError(absl::StrCat("OAuth: ", url, " has no token_endpoint"));
    }
    RETURN_IF_ERROR(CheckMetadataUrl(m.token_endpoint));
    if (!options_.config.token_endpoint.empty()) m.token_endpoint = options_.config.token_endpoint;
    metadata_ = m;
    return absl::OkStatus();
  }
  return absl::UnauthenticatedError(
      absl::StrCat("OAuth: no authorization server metadata for ", as_url, ": ", last.message()));
}

absl::Status OAuthAuth::TokenRequestLocked(std::vector<std::pair<std::string, std::string>> form) {
  form.emplace_back("client_id", options_.config.client_id);
  if (!options_.config.client_secret.empty()) form.emplace_back("client_secret", options_.config.client_secret);
  form.emplace_back("resource", Resource());
  HttpRequest request;
  request.method = "POST";
  request.url = metadata_->token_endpoint;
  request.headers = {{"Content-Type", "application/x-www-form-urlencoded"}, {"Accept", "application/json"}};
  request.body = FormEncode(form);
  request.timeout = absl::Seconds(30);
  ASSIGN_OR_RETURN(HttpResponse response, options_.http->Send(request));
  auto json = ParseJson(response.body);
  if (response.status_code != 200 || !json.ok() || !json->is_object()) {
    std::string error = json.ok() ? GetString(*json, "error") : "";
    std::string description = json.ok() ? GetString(*json, "error_description") : "";
    std::string text = absl::StrCat("OAuth token endpoint answered HTTP ", response.status_code,
                                    error.empty() ? "" : absl::StrCat(" (", error, description.empty() ? "" : ": ",
                                                                      description, ")"));
    if (error == "invalid_grant") {
      return absl::UnauthenticatedError(
          absl::StrCat(text, "; the refresh token is no longer valid: log in to this MCP server again"));
    }
    if (error == "invalid_client") {
      return absl::UnauthenticatedError(absl::StrCat(text, "; check auth.oauth.client_id and client_secret"));
    }
    return absl::UnavailableError(text);
  }
  std::string access = GetString(*json, "access_token");
  if (access.empty()) return absl::FailedPreconditionError("OAuth token response has no access_token");
  std::string type = GetString(*json, "token_type", "Bearer");
  if (!absl::EqualsIgnoreCase(type, "bearer")) {
    return absl::FailedPreconditionError(absl::StrCat("OAuth token type ", type, " is not Bearer"));
  }
  tokens_.access_token = access;
  std::string refresh = GetString(*json, "refresh_token");
  if (!refresh.empty()) tokens_.refresh_token = refresh;  // rotation
  tokens_.expires_at = absl::InfiniteFuture();
  if (json->contains("expires_in") && (*json)["expires_in"].is_number()) {
    tokens_.expires_at = options_.clock->Now() + absl::Seconds((*json)["expires_in"].get<double>());
  }
  TLOG(INFO, "mcp oauth token obtained").Field("server", options_.server_url);
  return absl::OkStatus();
}

absl::Status OAuthAuth::RefreshLocked() {
  RETURN_IF_ERROR(EnsureDiscoveredLocked(""));
  std::string scope = challenge_scope_;
  if (scope.empty()) scope = absl::StrJoin(options_.config.scopes, " ");
  if (!tokens_.refresh_token.empty()) {
    std::vector<std::pair<std::string, std::string>> form = {{"grant_type", "refresh_token"},
                                                             {"refresh_token", tokens_.refresh_token}};
    if (!scope.empty()) form.emplace_back("scope", scope);
    return TokenRequestLocked(std::move(form));
  }
  if (!options_.config.client_secret.empty()) {
    std::vector<std::pair<std::string, std::string>> form = {{"grant_type", "client_credentials"}};
    if (!scope.empty()) form.emplace_back("scope", scope);
    return TokenRequestLocked(std::move(form));
  }
  return absl::UnauthenticatedError(absl::StrCat("MCP server ", options_.server_url,
                                                 " needs an OAuth login: no refresh_token or client_secret configured "
                                                 "(run the authorization-code login and store the refresh token)"));
}

absl::StatusOr<std::string> OAuthAuth::GetAuthorization() {
  bool changed = false;
  std::string token;
  {
    absl::MutexLock lock(&mu_);
    bool expiring = tokens_.expires_at != absl::InfiniteFuture() &&
                    options_.clock->Now() + options_.refresh_margin >= tokens_.expires_at;
    if (tokens_.access_token.empty() || expiring) {
      absl::Status refreshed = RefreshLocked();
      if (!refreshed.ok()) {
        if (tokens_.access_token.empty()) return refreshed;
        // Keep trying with the old token; the server decides.
        TLOG(WARNING, "mcp oauth refresh failed; using the current token").Field("error", refreshed);
      } else {
        changed = true;
      }
    }
    token = tokens_.access_token;
  }
  if (changed) NotifyTokens();
  return "Bearer " + token;
}

absl::Status OAuthAuth::OnUnauthorized(int status, const HttpHeaders& headers) {
  std::map<std::string, std::string> challenge;
  for (const std::string& h : headers.GetAll("WWW-Authenticate")) {
    auto parsed = ParseBearerChallenge(h);
    if (!parsed.empty()) challenge = parsed;
  }
  {
    absl::MutexLock lock(&mu_);
    if (challenge.count("scope")) challenge_scope_ = challenge["scope"];
    if (status == 403) {
      if (challenge["error"] == "insufficient_scope") {
        return absl::PermissionDeniedError(absl::StrCat(
            "MCP server ", options_.server_url, " needs scope \"", challenge_scope_,
            "\"; log in again granting it (add it to auth.oauth.scopes)"));
      }
      return absl::PermissionDeniedError(absl::StrCat("MCP server ", options_.server_url, " refused access (HTTP 403)"));
    }
    if (challenge.count("resource_metadata") && (!metadata_.has_value() || metadata_->token_endpoint.empty())) {
      RETURN_IF_ERROR(EnsureDiscoveredLocked(challenge["resource_metadata"]));
    }
    RETURN_IF_ERROR(RefreshLocked());
  }
  NotifyTokens();
  return absl::OkStatus();
}

absl::StatusOr<std::string> OAuthAuth::BuildAuthorizationUrl(const PkcePair& pkce, const std::string& state) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(EnsureDiscoveredLocked(""));
  if (metadata_->authorization_endpoint.empty()) {
    return absl::FailedPreconditionError("OAuth: the authorization server has no authorization_endpoint");
  }
  if (!metadata_->s256_supported) {
    return absl::FailedPreconditionError(
        "OAuth: the authorization server does not advertise PKCE S256 (code_challenge_methods_supported); refusing");
  }
  RETURN_IF_ERROR(CheckMetadataUrl(metadata_->authorization_endpoint));
  std::string scope = challenge_scope_.empty() ? absl::StrJoin(options_.config.scopes, " ") : challenge_scope_;
  if (scope.empty()) scope = absl::StrJoin(metadata_->scopes_supported, " ");
  std::vector<std::pair<std::string, std::string>> q = {
      {"response_type", "code"},          {"client_id", options_.config.client_id},
      {"redirect_uri", options_.config.redirect_uri},
      {"code_challenge", pkce.challenge}, {"code_challenge_method", "S256"},
      {"state", state},                   {"resource", Resource()}};
  if (!scope.empty()) q.emplace_back("scope", scope);
  const std::string& endpoint = metadata_->authorization_endpoint;
  return absl::StrCat(endpoint, endpoint.find('?') == std::string::npos ? "?" : "&", FormEncode(q));
}

absl::Status OAuthAuth::ExchangeAuthorizationCode(const std::string& code, const PkcePair& pkce,
                                                  const std::string& iss) {
  {
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(EnsureDiscoveredLocked(""));
    if (!iss.empty() && iss != metadata_->issuer) {
      return absl::PermissionDeniedError(absl::StrCat("OAuth: redirect came from issuer ", iss, ", expected ",
                                                      metadata_->issuer, " (possible mix-up attack)"));
    }
    RETURN_IF_ERROR(TokenRequestLocked({{"grant_type", "authorization_code"},
                                        {"code", code},
                                        {"code_verifier", pkce.verifier},
                                        {"redirect_uri", options_.config.redirect_uri}}));
  }
  NotifyTokens();
  return absl::OkStatus();
}

}  // namespace tessera::mcp
