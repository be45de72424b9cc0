// OAuth 2.1 for MCP Streamable HTTP servers (MCP authorization spec,
// 2025-11-25 with the 2026-07-28 additions, and the 2025-03-26 fallbacks), as
// an AuthProvider.
//
// In the call path: GetAuthorization() returns the current access token and
// refreshes it first when it is about to expire (with no credential at all it
// sends no Authorization, so that the server's 401 challenge says where to
// go); on 401 OnUnauthorized() discovers the authorization server (Protected
// Resource Metadata, RFC 9728, from WWW-Authenticate resource_metadata or the
// well-known URIs; then RFC 8414 / OpenID discovery with path insertion,
// validating "issuer"; for 2025-03-26 servers without PRM, the metadata at
// the server's origin or the default /authorize /token /register), refreshes
// the token (refresh_token grant, or client_credentials when a secret or
// private key is configured and the server offers that grant), and the
// transport retries once. When Options::authorize is set, a 401 that no
// refresh can answer runs the authorization-code login (PKCE S256) through
// it, and a 403 insufficient_scope re-authorizes once with the union of the
// scopes (step-up). Every token request carries resource=<canonical server
// URI> (RFC 8707) and authenticates the client per the server's
// token_endpoint_auth_methods_supported (client_secret_basic,
// client_secret_post, private_key_jwt, or none for public clients). Without a
// client_id the client uses its Client ID Metadata Document URL where the
// server supports that, else registers itself (RFC 7591) at the advertised
// registration_endpoint. Rotated tokens and a registered client are reported
// to on_tokens so the caller can persist them (encrypted).
//
// A CLI or the admin UI can also drive the interactive login itself:
// BuildAuthorizationUrl() then ExchangeAuthorizationCode().
//
// Metadata URLs must be https (http only for loopback hosts when
// allow_insecure_loopback), against SSRF via hostile metadata.
// Thread-safe.
#ifndef TESSERA_AGENTS_MCP_OAUTH_H_
#define TESSERA_AGENTS_MCP_OAUTH_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "agents/mcp/auth.h"
#include "agents/mcp/server_config.h"
#include "common/clock.h"
#include "common/http/http_transport.h"

namespace tessera::mcp {

struct PkcePair {
  std::string verifier;   // 43 characters, base64url of 32 random bytes
  std::string challenge;  // base64url(SHA-256(verifier))
};
// INTERNAL when the system RNG fails.
[[nodiscard]] absl::StatusOr<PkcePair> GeneratePkce();
[[nodiscard]] std::string PkceChallengeFor(const std::string& verifier);

// Parameters of a "WWW-Authenticate: Bearer k=v, k2="v 2"" header, keys
// lower-cased. Empty when the scheme is not Bearer.
[[nodiscard]] std::map<std::string, std::string> ParseBearerChallenge(const std::string& header);

struct OAuthTokens {
  std::string access_token;
  std::string refresh_token;
  absl::Time expires_at = absl::InfiniteFuture();
  // The client as registered dynamically (RFC 7591); empty when the client_id
  // was configured. Persist them and configure them next time.
  std::string client_id;
  std::string client_secret;
};

class OAuthAuth : public AuthProvider {
 public:
  struct Options {
    OAuthConfig config;
    std::string server_url;  // the MCP endpoint
    std::shared_ptr<HttpTransport> http;
    Clock* clock = RealClock();
    bool allow_insecure_loopback = true;
    // Refresh this long before expiry.
    absl::Duration refresh_margin = absl::Seconds(30);
    // Called (outside locks) after tokens change or the client registers.
    std::function<void(const OAuthTokens&)> on_tokens;
    // Drives the interactive authorization-code login: opens
    // `authorization_url` (a browser, or headless) and returns the redirect
    // URI the authorization server sent the user agent to (carrying code,
    // state, iss or error). Unset: logins are left to the caller
    // (BuildAuthorizationUrl), a 401 without a usable refresh is
    // UNAUTHENTICATED. Called with this provider's lock held: it must not
    // call back into this object. At most kMaxLogins logins per object.
    std::function<absl::StatusOr<std::string>(const std::string& authorization_url)> authorize;
    // client_name for dynamic client registration.
    std::string client_name = "Tessera";
  };
  static constexpr int kMaxLogins = 3;

  // INVALID_ARGUMENT for a missing http transport, or a private key without
  // a client_id. An empty client_id means dynamic client registration.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<OAuthAuth>> Create(Options options);

  absl::StatusOr<std::string> GetAuthorization() override;
  absl::Status OnUnauthorized(int status, const HttpHeaders& headers, const std::string& sent_authorization) override;

  // Discovery results (after Discover()).
  struct Metadata {
    std::string resource;
    std::string issuer;
    std::string authorization_endpoint;
    std::string token_endpoint;
    std::string registration_endpoint;
    std::vector<std::string> scopes_supported;
    std::vector<std::string> token_endpoint_auth_methods;  // as advertised
    std::vector<std::string> grant_types;                  // as advertised
    bool s256_supported = false;
    bool client_id_metadata_document_supported = false;
    // No metadata at all (2025-03-26): the default endpoints at the origin.
    bool default_endpoints = false;
  };
  // Runs discovery now. `resource_metadata_url` may be empty (well-known).
  [[nodiscard]] absl::StatusOr<Metadata> Discover(const std::string& resource_metadata_url);

  // Interactive login, step 1: the URL to open in a browser. FAILED_PRECONDITION
  // when the server does not advertise PKCE S256.
  [[nodiscard]] absl::StatusOr<std::string> BuildAuthorizationUrl(const PkcePair& pkce, const std::string& state);
  // Step 2: exchange the code from the redirect. `iss` is the redirect's iss
  // parameter (RFC 9207) when present; it must match the issuer.
  [[nodiscard]] absl::Status ExchangeAuthorizationCode(const std::string& code, const PkcePair& pkce,
                                                       const std::string& iss);

  [[nodiscard]] OAuthTokens tokens() const;

 private:
  explicit OAuthAuth(Options options);
  absl::Status EnsureDiscoveredLocked(const std::string& resource_metadata_url) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status DiscoverAuthorizationServerLocked(const std::string& as_url, bool legacy, Metadata m)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Without a client_id: the Client ID Metadata Document URL where the
  // server takes one, else registers the client (RFC 7591).
  absl::Status EnsureClientLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool HasClientCredentialsLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status RefreshLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status TokenRequestLocked(std::vector<std::pair<std::string, std::string>> form)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::string> ClientAssertionLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::string> BuildAuthorizationUrlLocked(const PkcePair& pkce, const std::string& state,
                                                          const std::string& scope) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ExchangeCodeLocked(const std::string& code, const PkcePair& pkce, const std::string& iss)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs the whole login through options_.authorize, asking for `scope`.
  absl::Status LoginLocked(const std::string& scope) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The scope for a new authorization request: the challenge's, else the
  // configured scopes, else the resource's scopes_supported.
  std::string DefaultScopeLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Json> FetchJson(const std::string& url);
  absl::Status CheckMetadataUrl(const std::string& url) const;
  std::string Resource() const;
  void NotifyTokens();

  const Options options_;
  mutable absl::Mutex mu_;
  OAuthTokens tokens_ ABSL_GUARDED_BY(mu_);
  std::optional<Metadata> metadata_ ABSL_GUARDED_BY(mu_);
  std::string challenge_scope_ ABSL_GUARDED_BY(mu_);
  // The latest resource_metadata URL from a WWW-Authenticate challenge.
  std::string resource_metadata_url_ ABSL_GUARDED_BY(mu_);
  std::string client_id_ ABSL_GUARDED_BY(mu_);
  std::string client_secret_ ABSL_GUARDED_BY(mu_);
  std::string registered_auth_method_ ABSL_GUARDED_BY(mu_);  // from the registration response
  std::string requested_scope_ ABSL_GUARDED_BY(mu_);         // of the latest authorization request
  int logins_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace tessera::mcp

#endif  // TESSERA_AGENTS_MCP_OAUTH_H_
