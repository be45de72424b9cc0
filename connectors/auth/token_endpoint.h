// The token-endpoint exchange shared by every OAuth2 flow in connectors/auth:
// a form-encoded POST (RFC 6749 section 4), the JSON answer parsed into an
// AccessToken, and OAuth2 error answers mapped to statuses a user can act on.
// Internal to connectors/auth.
#ifndef TESSERA_CONNECTORS_AUTH_TOKEN_ENDPOINT_H_
#define TESSERA_CONNECTORS_AUTH_TOKEN_ENDPOINT_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/clock.h"
#include "connectors/auth/token_source.h"
#include "connectors/http/retrying_client.h"

namespace tessera::connectors {

using FormFields = std::vector<std::pair<std::string, std::string>>;

// application/x-www-form-urlencoded: "a=1&b=x%2By".
[[nodiscard]] std::string FormUrlEncode(const FormFields& fields);

struct TokenResponse {
  AccessToken access;
  // Set when the server rotated the refresh token.
  std::string refresh_token;
};

// What to tell the user for the OAuth2 errors whose cause depends on the flow.
struct TokenErrorHints {
  std::string invalid_grant;        // FAILED_PRECONDITION
  std::string unauthorized_client;  // PERMISSION_DENIED
};

// POSTs `fields` to `token_url` through `client` (retried as an idempotent
// call: a token request has no side effect worth protecting) and parses the
// answer. Errors:
//   FAILED_PRECONDITION  invalid_grant (hints.invalid_grant + the server's text)
//   UNAUTHENTICATED      invalid_client (wrong client id, secret or certificate)
//   PERMISSION_DENIED    unauthorized_client (hints.unauthorized_client)
//   INVALID_ARGUMENT     invalid_scope, invalid_request, other 4xx
//   INTERNAL             a 2xx answer that is not JSON or lacks access_token
//   and the retrying client's give-up codes for 429/5xx/transport failures.
// Messages name the endpoint (query redacted) but never a token or secret.
[[nodiscard]] absl::StatusOr<TokenResponse> RequestToken(RetryingHttpClient& client, Clock* clock,
                                                         absl::string_view token_url,
                                                         const FormFields& fields,
                                                         const TokenErrorHints& hints);

}  // namespace tessera::connectors

#endif  // TESSERA_CONNECTORS_AUTH_TOKEN_ENDPOINT_H_
