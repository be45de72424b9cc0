#include "connectors/auth/oauth2.h"

#include <utility>

#include "absl/strings/str_join.h"
#include "common/logging.h"
#include "connectors/auth/token_endpoint.h"

namespace tessera::connectors {

absl::StatusOr<std::unique_ptr<OAuth2RefreshTokenSource>> OAuth2RefreshTokenSource::Create(
    HttpTransport* transport, Clock* clock, Options options) {
  if (options.token_url.empty()) return absl::InvalidArgumentError("OAuth2: token_url is empty");
  if (options.client_id.empty()) return absl::InvalidArgumentError("OAuth2: client_id is empty");
  if (options.refresh_token.empty()) {
    return absl::InvalidArgumentError(
        "OAuth2: no refresh token; authorise the connector first");
  }
  return std::unique_ptr<OAuth2RefreshTokenSource>(
      new OAuth2RefreshTokenSource(transport, clock, std::move(options)));
}

OAuth2RefreshTokenSource::OAuth2RefreshTokenSource(HttpTransport* transport, Clock* clock,
                                                   Options options)
    : CachingTokenSource(clock, options.expiry_margin),
      options_(std::move(options)),
      client_(transport, clock, RetryingHttpClient::Options{.policy = options_.retry}) {}

absl::StatusOr<AccessToken> OAuth2RefreshTokenSource::Fetch() {
  FormFields form = {{"grant_type", "refresh_token"},
                     {"client_id", options_.client_id},
                     {"refresh_token", options_.refresh_token}};
  if (!options_.client_secret.empty()) form.emplace_back("client_secret", options_.client_secret);
  if (!options_.scopes.empty()) form.emplace_back("scope", absl::StrJoin(options_.scopes, " "));
  TokenErrorHints hints;
  hints.invalid_grant = "the refresh token was revoked or expired; re-authorise the connector";
  hints.unauthorized_client = "this OAuth client may not use the refresh-token grant";
  absl::StatusOr<TokenResponse> response =
      RequestToken(client_, clock(), options_.token_url, form, hints);
  if (!response.ok()) return response.status();
  if (!response->refresh_token.empty() && response->refresh_token != options_.refresh_token) {
    options_.refresh_token = response->refresh_token;
    if (options_.on_refresh_token_rotated) {
      absl::Status persisted = options_.on_refresh_token_rotated(options_.refresh_token);
      if (!persisted.ok()) {
        TLOG(ERROR, "could not persist the rotated OAuth2 refresh token")
            .Field("client_id", options_.client_id)
            .Field("error", persisted);
      }
    }
  }
  return std::move(response)->access;
}

}  // namespace tessera::connectors
