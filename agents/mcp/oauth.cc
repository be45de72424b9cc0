#include "agents/mcp/oauth.h"

#include <openssl/bio.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cctype>
#include <set>
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

std::vector<std::string> StringList(const Json& object, absl::string_view key) {
  std::vector<std::string> out;
  if (const Json* list = GetArray(object, key)) {
    for (const Json& v : *list) {
      if (v.is_string()) out.push_back(v.get<std::string>());
    }
  }
  return out;
}

bool Contains(const std::vector<std::string>& list, absl::string_view value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

std::string TrimSlash(std::string url) {
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

// Space-separated scope union, first-seen order.
std::string ScopeUnion(const std::string& a, const std::string& b) {
  std::vector<std::string> out;
  for (const std::string* s : {&a, &b}) {
    for (absl::string_view part : absl::StrSplit(*s, ' ', absl::SkipEmpty())) {
      if (!Contains(out, part)) out.emplace_back(part);
    }
  }
  return absl::StrJoin(out, " ");
}

bool ScopeCovers(const std::string& have, const std::string& want) {
  std::vector<std::string> h = absl::StrSplit(have, ' ', absl::SkipEmpty());
  for (absl::string_view part : absl::StrSplit(want, ' ', absl::SkipEmpty())) {
    if (!Contains(h, part)) return false;
  }
  return true;
}

std::string RandomToken() {
  unsigned char random[16];
  if (RAND_bytes(random, sizeof(random)) != 1) return "";
  return Base64Url(absl::string_view(reinterpret_cast<const char*>(random), sizeof(random)));
}

std::string UrlDecode(absl::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() && isxdigit(static_cast<unsigned char>(in[i + 1])) &&
        isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else if (in[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

// Query parameters of `url` (the part after '?', before '#').
std::map<std::string, std::string> QueryParams(const std::string& url) {
  std::map<std::string, std::string> out;
  size_t q = url.find('?');
  if (q == std::string::npos) return out;
  size_t hash = url.find('#', q);
  std::string query = url.substr(q + 1, hash == std::string::npos ? std::string::npos : hash - q - 1);
  for (absl::string_view part : absl::StrSplit(query, '&', absl::SkipEmpty())) {
    std::pair<std::string, std::string> kv = absl::StrSplit(part, absl::MaxSplits('=', 1));
    out.emplace(UrlDecode(kv.first), UrlDecode(kv.second));
  }
  return out;
}

// A JWS (compact) over `claims` with the PEM private key: ES256 (EC P-256,
// signature as r||s) or RS256 (RSA PKCS#1 v1.5). The messages never quote
// the key.
absl::StatusOr<std::string> SignJwt(const std::string& pem, std::string alg, const Json& claims) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), BIO_free);
  if (bio == nullptr) return absl::InternalError("BIO_new_mem_buf failed");
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  if (key == nullptr) return absl::InvalidArgumentError("OAuth: private_key_pem is not a PEM private key");
  const int type = EVP_PKEY_base_id(key.get());
  if (alg.empty()) alg = type == EVP_PKEY_EC ? "ES256" : "RS256";
  if ((alg == "ES256" && type != EVP_PKEY_EC) || (alg == "RS256" && type != EVP_PKEY_RSA) ||
      (alg != "ES256" && alg != "RS256")) {
    return absl::InvalidArgumentError(
        absl::StrCat("OAuth: signing_algorithm ", alg, " does not fit the private key (ES256 needs EC P-256, RS256 RSA)"));
  }
  const std::string signing_input =
      absl::StrCat(Base64Url(Json({{"alg", alg}, {"typ", "JWT"}}).dump()), ".", Base64Url(claims.dump()));
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  size_t length = 0;
  if (ctx == nullptr || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &length, reinterpret_cast<const unsigned char*>(signing_input.data()),
                     signing_input.size()) != 1) {
    return absl::InternalError("OAuth: EVP_DigestSign failed");
  }
  std::string signature(length, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                     reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size()) != 1) {
    return absl::InternalError("OAuth: EVP_DigestSign failed");
  }
  signature.resize(length);
  if (alg == "ES256") {  // DER ECDSA-Sig-Value -> fixed-size r || s (RFC 7518 section 3.4)
    const unsigned char* p = reinterpret_cast<const unsigned char*>(signature.data());
    std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(length)),
                                                             ECDSA_SIG_free);
    if (sig == nullptr) return absl::InternalError("OAuth: malformed ECDSA signature");
    const BIGNUM* r = nullptr;
    const BIGNUM* s = nullptr;
    ECDSA_SIG_get0(sig.get(), &r, &s);
    std::string raw(64, '\0');
    if (BN_bn2binpad(r, reinterpret_cast<unsigned char*>(raw.data()), 32) != 32 ||
        BN_bn2binpad(s, reinterpret_cast<unsigned char*>(raw.data()) + 32, 32) != 32) {
      return absl::InvalidArgumentError("OAuth: ES256 needs a P-256 key");
    }
    signature = raw;
  }
  return absl::StrCat(signing_input, ".", Base64Url(signature));
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
  if (options.config.client_id.empty() && !options.config.private_key_pem.empty()) {
    return absl::InvalidArgumentError("OAuth: private_key_pem needs the client_id it is registered for");
  }
  if (options.clock == nullptr) options.clock = RealClock();
  return std::unique_ptr<OAuthAuth>(new OAuthAuth(std::move(options)));
}

OAuthAuth::OAuthAuth(Options options) : options_(std::move(options)) {
  tokens_.access_token = options_.config.access_token;
  tokens_.refresh_token = options_.config.refresh_token;
  client_id_ = options_.config.client_id;
  client_secret_ = options_.config.client_secret;
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
  bool legacy = false;
  if (as_url.empty()) {
    // RFC 9728: the header's URL first, then the path-specific and root
    // well-known locations.
    std::vector<std::string> candidates;
    const std::string& header_url = resource_metadata_url.empty() ? resource_metadata_url_ : resource_metadata_url;
    if (!header_url.empty()) candidates.push_back(header_url);
    if (!server.path.empty()) candidates.push_back(absl::StrCat(server.origin, "/.well-known/oauth-protected-resource", server.path));
    candidates.push_back(absl::StrCat(server.origin, "/.well-known/oauth-protected-resource"));
    absl::Status last = absl::NotFoundError("no protected resource metadata");
    bool all_missing = true;
    for (const std::string& url : candidates) {
      auto prm = FetchJson(url);
      if (!prm.ok()) {
        last = prm.status();
        all_missing &= absl::IsNotFound(last);
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
      m.scopes_supported = StringList(*prm, "scopes_supported");
      break;
    }
    if (as_url.empty()) {
      if (!all_missing) {
        return absl::UnauthenticatedError(absl::StrCat("OAuth: could not discover the authorization server of ",
                                                       options_.server_url, ": ", last.message(),
                                                       " (set auth.oauth.authorization_server or token_endpoint)"));
      }
      // MCP 2025-03-26: no protected resource metadata; the authorization
      // server is the MCP server's origin.
      TLOG(DEBUG, "mcp oauth: no protected resource metadata; trying the server origin (2025-03-26)")
          .Field("server", options_.server_url);
      as_url = server.origin;
      legacy = true;
    }
  }
  return DiscoverAuthorizationServerLocked(as_url, legacy, std::move(m));
}

absl::Status OAuthAuth::DiscoverAuthorizationServerLocked(const std::string& as_url, bool legacy, Metadata m) {
  // RFC 8414 then OpenID Connect discovery, path-aware: for an issuer with a
  // path the well-known segment goes between host and path (RFC 8414 section
  // 3.1), then OpenID's path insertion and path appending.
  ASSIGN_OR_RETURN(UrlParts issuer, SplitUrl(as_url));
  std::vector<std::string> candidates;
  if (!issuer.path.empty()) {
    candidates.push_back(absl::StrCat(issuer.origin, "/.well-known/oauth-authorization-server", issuer.path));
    candidates.push_back(absl::StrCat(issuer.origin, "/.well-known/openid-configuration", issuer.path));
    candidates.push_back(absl::StrCat(TrimSlash(as_url), "/.well-known/openid-configuration"));
  } else {
    candidates.push_back(absl::StrCat(issuer.origin, "/.well-known/oauth-authorization-server"));
    candidates.push_back(absl::StrCat(issuer.origin, "/.well-known/openid-configuration"));
  }
  absl::Status last = absl::NotFoundError("no authorization server metadata");
  bool all_missing = true;
  for (const std::string& url : candidates) {
    auto asm_json = FetchJson(url);
    if (!asm_json.ok()) {
      last = asm_json.status();
      all_missing &= absl::IsNotFound(last);
      continue;
    }
    m.issuer = GetString(*asm_json, "issuer");
    if (!m.issuer.empty() && TrimSlash(m.issuer) != TrimSlash(as_url)) {
      // An issuer that is the bare origin of a path-qualified authorization
      // server URL (a tenant path on the same host, as some servers publish)
      // names the same host; anything else is a mix-up.
      auto claimed = SplitUrl(m.issuer);
      if (!claimed.ok() || !claimed->path.empty() || claimed->origin != issuer.origin) {
        return absl::PermissionDeniedError(
            absl::StrCat("OAuth: authorization server metadata issuer ", m.issuer, " does not match ", as_url));
      }
      TLOG(WARNING, "mcp oauth: issuer is the origin of the authorization server URL")
          .Field("issuer", m.issuer)
          .Field("authorization_server", as_url);
    }
    if (m.issuer.empty()) m.issuer = as_url;
    m.token_endpoint = GetString(*asm_json, "token_endpoint");
    m.authorization_endpoint = GetString(*asm_json, "authorization_endpoint");
    m.registration_endpoint = GetString(*asm_json, "registration_endpoint");
    m.token_endpoint_auth_methods = StringList(*asm_json, "token_endpoint_auth_methods_supported");
    m.grant_types = StringList(*asm_json, "grant_types_supported");
    m.s256_supported = Contains(StringList(*asm_json, "code_challenge_methods_supported"), "S256");
    auto cimd = asm_json->find("client_id_metadata_document_supported");
    m.client_id_metadata_document_supported = cimd != asm_json->end() && cimd->is_boolean() && cimd->get<bool>();
    if (m.token_endpoint.empty()) {
      return absl::FailedPreconditionError(absl::StrCat("OAuth: ", url, " has no token_endpoint"));
    }
    RETURN_IF_ERROR(CheckMetadataUrl(m.token_endpoint));
    if (!options_.config.token_endpoint.empty()) m.token_endpoint = options_.config.token_endpoint;
    metadata_ = m;
    return absl::OkStatus();
  }
  if (legacy && all_missing) {
    // MCP 2025-03-26 fallback: the default endpoints at the server's origin;
    // that revision made PKCE mandatory, so S256 is assumed.
    TLOG(INFO, "mcp oauth: no authorization server metadata; using the default endpoints")
        .Field("server", options_.server_url);
    m.issuer = issuer.origin;
    m.authorization_endpoint = absl::StrCat(issuer.origin, "/authorize");
    m.token_endpoint = options_.config.token_endpoint.empty() ? absl::StrCat(issuer.origin, "/token")
                                                              : options_.config.token_endpoint;
    m.registration_endpoint = absl::StrCat(issuer.origin, "/register");
    m.s256_supported = true;
    m.default_endpoints = true;
    RETURN_IF_ERROR(CheckMetadataUrl(m.token_endpoint));
    metadata_ = m;
    return absl::OkStatus();
  }
  return absl::UnauthenticatedError(
      absl::StrCat("OAuth: no authorization server metadata for ", as_url, ": ", last.message()));
}

absl::Status OAuthAuth::EnsureClientLocked() {
  if (!client_id_.empty()) return absl::OkStatus();
  // MCP 2025-11-25 order: pre-registered, then a Client ID Metadata
  // Document, then dynamic registration.
  if (!options_.config.client_metadata_url.empty() && metadata_->client_id_metadata_document_supported) {
    client_id_ = options_.config.client_metadata_url;  // a public client
    client_secret_.clear();
    return absl::OkStatus();
  }
  if (metadata_->registration_endpoint.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "OAuth: no client_id configured for MCP server ", options_.server_url,
        " and its authorization server offers no dynamic client registration; set auth.oauth.client_id"));
  }
  RETURN_IF_ERROR(CheckMetadataUrl(metadata_->registration_endpoint));
  // Ask for the weakest method the server takes: a public client when it
  // accepts "none" (or says nothing), else a secret.
  const std::vector<std::string>& methods = metadata_->token_endpoint_auth_methods;
  std::string method = "none";
  if (!methods.empty() && !Contains(methods, "none")) {
    method = Contains(methods, "client_secret_basic") || !Contains(methods, "client_secret_post")
                 ? "client_secret_basic"
                 : "client_secret_post";
  }
  Json body = {{"client_name", options_.client_name},
               {"grant_types", {"authorization_code", "refresh_token"}},
               {"response_types", {"code"}},
               {"token_endpoint_auth_method", method}};
  if (!options_.config.redirect_uri.empty()) body["redirect_uris"] = Json::array({options_.config.redirect_uri});
  if (!options_.config.scopes.empty()) body["scope"] = absl::StrJoin(options_.config.scopes, " ");
  HttpRequest request;
  request.method = "POST";
  request.url = metadata_->registration_endpoint;
  request.headers = {{"Content-Type", "application/json"}, {"Accept", "application/json"}};
  request.body = body.dump();
  request.timeout = absl::Seconds(30);
  ASSIGN_OR_RETURN(HttpResponse response, options_.http->Send(request));
  auto json = ParseJson(response.body);
  if ((response.status_code != 200 && response.status_code != 201) || !json.ok() || !json->is_object() ||
      GetString(*json, "client_id").empty()) {
    std::string error = json.ok() && json->is_object() ? GetString(*json, "error") : "";
    return absl::UnauthenticatedError(absl::StrCat("OAuth: dynamic client registration at ",
                                                   metadata_->registration_endpoint, " failed (HTTP ",
                                                   response.status_code, error.empty() ? "" : ", " + error,
                                                   "); set auth.oauth.client_id"));
  }
  client_id_ = GetString(*json, "client_id");
  client_secret_ = GetString(*json, "client_secret");
  registered_auth_method_ = GetString(*json, "token_endpoint_auth_method");
  tokens_.client_id = client_id_;
  tokens_.client_secret = client_secret_;
  TLOG(INFO, "mcp oauth client registered").Field("server", options_.server_url).Field("client_id", client_id_);
  return absl::OkStatus();
}

bool OAuthAuth::HasClientCredentialsLocked() const {
  return !client_secret_.empty() || !options_.config.private_key_pem.empty();
}

absl::StatusOr<std::string> OAuthAuth::ClientAssertionLocked() {
  const absl::Time now = options_.clock->Now();
  // RFC 7523 section 3: aud identifies the authorization server; its issuer
  // identifier (the token endpoint when the issuer is unknown).
  std::string audience = metadata_->issuer.empty() ? metadata_->token_endpoint : metadata_->issuer;
  Json claims = {{"iss", client_id_},
                 {"sub", client_id_},
                 {"aud", audience},
                 {"iat", absl::ToUnixSeconds(now)},
                 {"exp", absl::ToUnixSeconds(now + absl::Minutes(5))},
                 {"jti", RandomToken()}};
  return SignJwt(options_.config.private_key_pem, options_.config.signing_algorithm, claims);
}

absl::Status OAuthAuth::TokenRequestLocked(std::vector<std::pair<std::string, std::string>> form) {
  RETURN_IF_ERROR(EnsureClientLocked());
  form.emplace_back("resource", Resource());
  HttpRequest request;
  request.method = "POST";
  request.url = metadata_->token_endpoint;
  request.headers = {{"Content-Type", "application/x-www-form-urlencoded"}, {"Accept", "application/json"}};
  // Client authentication (OAuth 2.1 section 2.4): what the server
  // advertises, client_secret_basic by default (RFC 8414).
  const std::vector<std::string>& methods = metadata_->token_endpoint_auth_methods;
  if (!options_.config.private_key_pem.empty()) {
    ASSIGN_OR_RETURN(std::string assertion, ClientAssertionLocked());
    form.emplace_back("client_id", client_id_);
    form.emplace_back("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    form.emplace_back("client_assertion", assertion);
  } else if (client_secret_.empty()) {
    form.emplace_back("client_id", client_id_);  // public client ("none")
  } else {
    std::string method = registered_auth_method_;
    if (method.empty() || method == "none") {
      method = !Contains(methods, "client_secret_basic") && Contains(methods, "client_secret_post")
                   ? "client_secret_post"
                   : "client_secret_basic";
    }
    if (method == "client_secret_post") {
      form.emplace_back("client_id", client_id_);
      form.emplace_back("client_secret", client_secret_);
    } else {  // RFC 6749 section 2.3.1: form-urlencoded, then base64
      request.headers.emplace_back(
          "Authorization",
          absl::StrCat("Basic ", absl::Base64Escape(absl::StrCat(PercentEncode(client_id_), ":",
                                                                 PercentEncode(client_secret_)))));
    }
  }
  request.body = FormEncode(form);
  request.timeout = absl::Seconds(30);
  ASSIGN_OR_RETURN(HttpResponse response, options_.http->Send(request));
  auto json = ParseJson(response.body);
  if (response.status_code != 200 || !json.ok() || !json->is_object()) {
    std::string error = json.ok() && json->is_object() ? GetString(*json, "error") : "";
    std::string description = json.ok() && json->is_object() ? GetString(*json, "error_description") : "";
    std::string text = absl::StrCat("OAuth token endpoint answered HTTP ", response.status_code,
                                    error.empty() ? "" : absl::StrCat(" (", error, description.empty() ? "" : ": ",
                                                                      description, ")"));
    if (error == "invalid_grant") {
      return absl::UnauthenticatedError(
          absl::StrCat(text, "; the refresh token is no longer valid: log in to this MCP server again"));
    }
    if (error == "invalid_client") {
      return absl::UnauthenticatedError(
          absl::StrCat(text, "; check auth.oauth.client_id and client_secret or private_key_pem"));
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
  const std::vector<std::string>& grants = metadata_->grant_types;
  if (HasClientCredentialsLocked() && (grants.empty() || Contains(grants, "client_credentials"))) {
    std::vector<std::pair<std::string, std::string>> form = {{"grant_type", "client_credentials"}};
    if (!scope.empty()) form.emplace_back("scope", scope);
    return TokenRequestLocked(std::move(form));
  }
  return absl::UnauthenticatedError(absl::StrCat(
      "MCP server ", options_.server_url, " needs an OAuth login: no refresh_token",
      HasClientCredentialsLocked() ? " (and its authorization server does not offer client_credentials)"
                                   : " or client_secret configured",
      " (run the authorization-code login and store the refresh token)"));
}

absl::StatusOr<std::string> OAuthAuth::GetAuthorization() {
  bool changed = false;
  std::string token;
  {
    absl::MutexLock lock(&mu_);
    bool expiring = tokens_.expires_at != absl::InfiniteFuture() &&
                    options_.clock->Now() + options_.refresh_margin >= tokens_.expires_at;
    if (tokens_.access_token.empty() && tokens_.refresh_token.empty() && !HasClientCredentialsLocked()) {
      // Nothing to refresh with: send no credential; the server's challenge
      // (resource_metadata, scope) drives discovery and the login.
      return std::string();
    }
    if (tokens_.access_token.empty() || expiring) {
      absl::Status refreshed = RefreshLocked();
      if (!refreshed.ok()) {
        if (tokens_.access_token.empty()) {
          // Client credentials the server will not take non-interactively:
          // let it challenge us, then log in.
          if (tokens_.refresh_token.empty() && options_.authorize) return std::string();
          return refreshed;
        }
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

absl::Status OAuthAuth::OnUnauthorized(int status, const HttpHeaders& headers, const std::string& sent_authorization) {
  std::map<std::string, std::string> challenge;
  for (const std::string& h : headers.GetAll("WWW-Authenticate")) {
    auto parsed = ParseBearerChallenge(h);
    if (!parsed.empty()) challenge = parsed;
  }
  {
    absl::MutexLock lock(&mu_);
    if (challenge.count("resource_metadata")) {
      resource_metadata_url_ = challenge["resource_metadata"];
      if (!metadata_.has_value() || metadata_->token_endpoint.empty()) {
        RETURN_IF_ERROR(EnsureDiscoveredLocked(resource_metadata_url_));
      }
    }
    // Another request already replaced the token this one was sent with.
    const std::string current = tokens_.access_token.empty() ? "" : "Bearer " + tokens_.access_token;
    const bool token_changed = !current.empty() && current != sent_authorization;
    if (status == 403) {
      if (challenge["error"] != "insufficient_scope") {
        return absl::PermissionDeniedError(
            absl::StrCat("MCP server ", options_.server_url, " refused access (HTTP 403)"));
      }
      if (token_changed) return absl::OkStatus();
      const std::string wanted = challenge["scope"];
      const std::string have = requested_scope_.empty() ? challenge_scope_ : requested_scope_;
      // Step-up: ask once more, for everything granted so far plus what the
      // challenge names; never again for a scope set already asked for.
      if (options_.authorize && !wanted.empty() && !ScopeCovers(have, wanted) && logins_ < kMaxLogins) {
        challenge_scope_ = ScopeUnion(have, wanted);
        RETURN_IF_ERROR(LoginLocked(challenge_scope_));
      } else {
        return absl::PermissionDeniedError(absl::StrCat(
            "MCP server ", options_.server_url, " needs scope \"", wanted.empty() ? challenge_scope_ : wanted,
            "\"; log in again granting it (add it to auth.oauth.scopes)"));
      }
    } else {
      if (challenge.count("scope")) challenge_scope_ = challenge["scope"];
      if (token_changed) return absl::OkStatus();
      absl::Status refreshed = RefreshLocked();
      if (!refreshed.ok()) {
        if (!absl::IsUnauthenticated(refreshed) || !options_.authorize || logins_ >= kMaxLogins) return refreshed;
        RETURN_IF_ERROR(LoginLocked(DefaultScopeLocked()));
      }
    }
  }
  NotifyTokens();
  return absl::OkStatus();
}

std::string OAuthAuth::DefaultScopeLocked() const {
  std::string scope = challenge_scope_.empty() ? absl::StrJoin(options_.config.scopes, " ") : challenge_scope_;
  if (scope.empty() && metadata_.has_value()) scope = absl::StrJoin(metadata_->scopes_supported, " ");
  return scope;
}

absl::StatusOr<std::string> OAuthAuth::BuildAuthorizationUrlLocked(const PkcePair& pkce, const std::string& state,
                                                                   const std::string& scope) {
  RETURN_IF_ERROR(EnsureDiscoveredLocked(""));
  if (metadata_->authorization_endpoint.empty()) {
    return absl::FailedPreconditionError("OAuth: the authorization server has no authorization_endpoint");
  }
  if (!metadata_->s256_supported) {
    return absl::FailedPreconditionError(
        "OAuth: the authorization server does not advertise PKCE S256 (code_challenge_methods_supported); refusing");
  }
  RETURN_IF_ERROR(CheckMetadataUrl(metadata_->authorization_endpoint));
  RETURN_IF_ERROR(EnsureClientLocked());
  std::vector<std::pair<std::string, std::string>> q = {
      {"response_type", "code"},          {"client_id", client_id_},
      {"redirect_uri", options_.config.redirect_uri},
      {"code_challenge", pkce.challenge}, {"code_challenge_method", "S256"},
      {"state", state},                   {"resource", Resource()}};
  if (!scope.empty()) q.emplace_back("scope", scope);
  requested_scope_ = scope;
  const std::string& endpoint = metadata_->authorization_endpoint;
  return absl::StrCat(endpoint, endpoint.find('?') == std::string::npos ? "?" : "&", FormEncode(q));
}

absl::StatusOr<std::string> OAuthAuth::BuildAuthorizationUrl(const PkcePair& pkce, const std::string& state) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(EnsureDiscoveredLocked(""));
  return BuildAuthorizationUrlLocked(pkce, state, DefaultScopeLocked());
}

absl::Status OAuthAuth::ExchangeCodeLocked(const std::string& code, const PkcePair& pkce, const std::string& iss) {
  RETURN_IF_ERROR(EnsureDiscoveredLocked(""));
  if (!iss.empty() && iss != metadata_->issuer) {
    return absl::PermissionDeniedError(absl::StrCat("OAuth: redirect came from issuer ", iss, ", expected ",
                                                    metadata_->issuer, " (possible mix-up attack)"));
  }
  return TokenRequestLocked({{"grant_type", "authorization_code"},
                             {"code", code},
                             {"code_verifier", pkce.verifier},
                             {"redirect_uri", options_.config.redirect_uri}});
}

absl::Status OAuthAuth::ExchangeAuthorizationCode(const std::string& code, const PkcePair& pkce,
                                                  const std::string& iss) {
  {
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(ExchangeCodeLocked(code, pkce, iss));
  }
  NotifyTokens();
  return absl::OkStatus();
}

absl::Status OAuthAuth::LoginLocked(const std::string& scope) {
  ++logins_;
  ASSIGN_OR_RETURN(PkcePair pkce, GeneratePkce());
  const std::string state = RandomToken();
  if (state.empty()) return absl::InternalError("RAND_bytes failed");
  ASSIGN_OR_RETURN(std::string url, BuildAuthorizationUrlLocked(pkce, state, scope));
  TLOG(INFO, "mcp oauth login").Field("server", options_.server_url).Field("scope", scope);
  absl::StatusOr<std::string> redirect = options_.authorize(url);
  if (!redirect.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("OAuth login to MCP server ", options_.server_url, " failed: ", redirect.status().message()));
  }
  std::map<std::string, std::string> params = QueryParams(*redirect);
  if (params["state"] != state) {
    return absl::PermissionDeniedError("OAuth: the login redirect carries the wrong state (possible CSRF); refusing");
  }
  if (!params["error"].empty()) {
    return absl::PermissionDeniedError(absl::StrCat("OAuth login to MCP server ", options_.server_url,
                                                    " was refused: ", params["error"],
                                                    params["error_description"].empty() ? "" : ": ",
                                                    params["error_description"]));
  }
  if (params["code"].empty()) {
    return absl::UnauthenticatedError("OAuth: the login redirect carries no authorization code");
  }
  return ExchangeCodeLocked(params["code"], pkce, params["iss"]);
}

}  // namespace tessera::mcp
