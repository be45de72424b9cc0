// OAuth 2.1 for MCP Streamable HTTP servers (MCP authorization spec,
// 2025-11-25 with the 2026-07-28 additions), as an AuthProvider.
//
// In the call path: GetAuthorization() returns the current access token and
// refreshes it first when it is about to expire; on 401 OnUnauthorized()
// discovers the authorization server (Protected Resource Metadata, RFC 9728,
// from WWW-Authenticate resource_metadata or the well-known URIs; then RFC
// 8414 / OpenID discovery, validating "issuer"), refreshes the token
// (refresh_token grant, or client_credentials when only a secret is
// configured), and the transport retries once. Every token request carries
// resource=<canonical server URI> (RFC 8707). Rotated tokens are reported to
// on_tokens so the caller can persist them (encrypted).
//
// For the interactive login (authorization code + PKCE S256) the class
// builds the authorization URL and exchanges the code; a CLI or the admin UI
// drives the browser part.
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
    // Called (outside locks) after tokens change.
    std::function<void(const OAuthTokens&)> on_tokens;
  };

  // INVALID_ARGUMENT for a missing http transport or client_id.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<OAuthAuth>> Create(Options options);

  absl::StatusOr<std::string> GetAuthorization() override;
  absl::Status OnUnauthorized(int status, const HttpHeaders& headers) override;

  // Discovery results (after Discover()).
  struct Metadata {
    std::string resource;
    std::string issuer;
    std::string authorization_endpoint;
    std::string token_endpoint;
    std::vector<std::string> scopes_supported;
    bool s256_supported = false;
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
  absl::Status RefreshLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status TokenRequestLocked(std::vector<std::pair<std::string, std::string>> form)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Json> FetchJson(const std::string& url);
  absl::Status CheckMetadataUrl(const std::string& url) const;
  std::string Resource() const;
  void NotifyTokens();

  const Options options_;
  mutable absl::Mutex mu_;
  OAuthTokens tokens_ ABSL_GUARDED_BY(mu_);
  std::optional<Metadata> metadata_ ABSL_GUARDED_BY(mu_);
  std::string challenge_scope_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::mcp

#endif  // TESSERA_AGENTS_MCP_OAUTH_H_
