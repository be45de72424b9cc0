// OAuth2RefreshTokenSource: access tokens from a user's refresh token
// (RFC 6749 section 6), for connectors authorised by a person (Gmail or Drive
// on behalf of one user, Microsoft delegated access).
//
// POSTs grant_type=refresh_token with client_id, client_secret and
// refresh_token (and scope when configured) to the token endpoint, through the
// shared retry policy. When the server rotates the refresh token (Microsoft
// does, Google may), the new one replaces the old in memory and is passed to
// Options::on_refresh_token_rotated so that it can be persisted (encrypted, in
// the CredentialStore).
#ifndef TESSERA_CONNECTORS_AUTH_OAUTH2_H_
#define TESSERA_CONNECTORS_AUTH_OAUTH2_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/http/http_transport.h"
#include "connectors/auth/token_source.h"
#include "connectors/http/retrying_client.h"

namespace tessera::connectors {

inline constexpr char kGoogleTokenUrl[] = "https://oauth2.googleapis.com/token";

// Thread-safe (see CachingTokenSource). Token()/Refresh() errors:
//   FAILED_PRECONDITION  invalid_grant: "the refresh token was revoked or
//                        expired; re-authorise the connector"
//   UNAUTHENTICATED      invalid_client (wrong client id or secret)
//   INTERNAL             a malformed answer from the token endpoint
//   RESOURCE_EXHAUSTED / UNAVAILABLE / ...  retries exhausted (see
//                        connectors/http/retrying_client.h)
class OAuth2RefreshTokenSource final : public CachingTokenSource {
 public:
  struct Options {
    std::string token_url = kGoogleTokenUrl;
    std::string client_id;
    std::string client_secret;  // may be empty for public clients
    std::string refresh_token;
    // Sent as "scope" when non-empty (Microsoft's v2 endpoint wants it).
    std::vector<std::string> scopes;
    // Called (under the source's fetch lock) with a rotated refresh token. An
    // error is logged (without the token) and does not fail the fetch: the
    // access token is good, and failing would not persist anything either.
    std::function<absl::Status(const std::string& new_refresh_token)> on_refresh_token_rotated;
    RetryPolicy retry;
    // Tokens are renewed this long before they expire.
    absl::Duration expiry_margin = absl::Minutes(2);
  };

  // `transport` and `clock` are not owned and must outlive the source.
  // INVALID_ARGUMENT when token_url, client_id or refresh_token is empty.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<OAuth2RefreshTokenSource>> Create(
      HttpTransport* transport, Clock* clock, Options options);

 protected:
  absl::StatusOr<AccessToken> Fetch() override;

 private:
  OAuth2RefreshTokenSource(HttpTransport* transport, Clock* clock, Options options);

  Options options_;  // refresh_token changes on rotation; only Fetch() touches it
  RetryingHttpClient client_;
};

}  // namespace tessera::connectors

#endif  // TESSERA_CONNECTORS_AUTH_OAUTH2_H_
