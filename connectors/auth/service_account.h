// Token sources for applications acting on their own (no user consent screen):
//
//  * ServiceAccountTokenSource: a Google service account, optionally with
//    domain-wide delegation (impersonating a Workspace user, as the Gmail and
//    Drive connectors do for every mailbox). It signs a JWT with the key's
//    RSA private key (RS256) and exchanges it with
//    grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer.
//  * MicrosoftClientCredentialsTokenSource: an app registration in Microsoft
//    Entra ID for Graph (SharePoint), with a client secret or a certificate
//    (a JWT client assertion carrying the certificate's x5t thumbprint).
//
// Both share the JWT code (jwt.h) and the token-endpoint exchange.
#ifndef TESSERA_CONNECTORS_AUTH_SERVICE_ACCOUNT_H_
#define TESSERA_CONNECTORS_AUTH_SERVICE_ACCOUNT_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/http/http_transport.h"
#include "connectors/auth/jwt.h"
#include "connectors/auth/token_source.h"
#include "connectors/http/retrying_client.h"

namespace tessera::connectors {

// The fields Tessera uses from a Google service-account JSON key file.
struct ServiceAccountKey {
  std::string client_email;
  std::string private_key_pem;
  std::string private_key_id;  // sent as the JWT "kid"
  std::string token_uri = "https://oauth2.googleapis.com/token";

  // Parses the JSON key as downloaded from the Google Cloud console.
  // INVALID_ARGUMENT when it is not JSON, not "type":"service_account", or
  // lacks client_email or private_key. Messages never quote the key.
  [[nodiscard]] static absl::StatusOr<ServiceAccountKey> FromJson(absl::string_view json);
};

// Thread-safe. Token()/Refresh() errors:
//   PERMISSION_DENIED  unauthorized_client: domain-wide delegation is not set
//                      up for this client id and these scopes
//   FAILED_PRECONDITION invalid_grant: the key was deleted or disabled, the
//                      impersonated user does not exist, or the clock is off
//   plus those of RequestToken (token_endpoint.h) and the retrying client.
class ServiceAccountTokenSource final : public CachingTokenSource {
 public:
  struct Options {
    ServiceAccountKey key;
    std::vector<std::string> scopes;  // at least one
    // The Workspace user to impersonate (domain-wide delegation); empty to act
    // as the service account itself.
    std::string subject;
    // Overrides key.token_uri (tests, private endpoints) when non-empty.
    std::string token_url;
    RetryPolicy retry;
    absl::Duration expiry_margin = absl::Minutes(2);
  };

  // Parses the private key up front. INVALID_ARGUMENT for a bad key or no scopes.
  // `transport` and `clock` are not owned and must outlive the source.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<ServiceAccountTokenSource>> Create(
      HttpTransport* transport, Clock* clock, Options options);

  // The signed assertion for `now` (iat = now, exp = now + 1 h). Public for tests.
  [[nodiscard]] absl::StatusOr<std::string> MakeAssertion(absl::Time now) const;

 protected:
  absl::StatusOr<AccessToken> Fetch() override;

 private:
  ServiceAccountTokenSource(HttpTransport* transport, Clock* clock, Options options,
                            RsaPrivateKey key);

  const Options options_;
  const RsaPrivateKey private_key_;
  RetryingHttpClient client_;
};

// Client-credentials grant against Microsoft Entra ID (v2.0 endpoint), for
// app-only Graph access. Thread-safe. Token()/Refresh() errors:
//   UNAUTHENTICATED     invalid_client: wrong secret, expired secret, or a
//                       certificate not uploaded to the app registration
//   PERMISSION_DENIED   unauthorized_client
//   INVALID_ARGUMENT    invalid_scope
//   plus those of RequestToken and the retrying client.
class MicrosoftClientCredentialsTokenSource final : public CachingTokenSource {
 public:
  struct Options {
    std::string tenant_id;  // directory (tenant) id or domain
    std::string client_id;  // application (client) id
    // Exactly one of: a client secret, or a certificate with its private key.
    std::string client_secret;
    std::string certificate_pem;
    std::string private_key_pem;
    std::vector<std::string> scopes = {"https://graph.microsoft.com/.default"};
    // Defaults to https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token.
    std::string token_url;
    RetryPolicy retry;
    absl::Duration expiry_margin = absl::Minutes(2);
  };

  // INVALID_ARGUMENT for missing ids, both or neither credential, or a bad
  // certificate or key. Not owned: `transport`, `clock`.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<MicrosoftClientCredentialsTokenSource>>
  Create(HttpTransport* transport, Clock* clock, Options options);

  // The client assertion JWT for `now` (certificate credentials only):
  // header {alg RS256, typ JWT, x5t, x5t#S256}, claims aud (the token URL),
  // iss = sub = client id, jti, nbf, iat, exp (10 minutes). Public for tests.
  [[nodiscard]] absl::StatusOr<std::string> MakeClientAssertion(absl::Time now) const;

  const std::string& token_url() const { return token_url_; }

 protected:
  absl::StatusOr<AccessToken> Fetch() override;

 private:
  MicrosoftClientCredentialsTokenSource(HttpTransport* transport, Clock* clock, Options options,
                                        std::string token_url);

  const Options options_;
  const std::string token_url_;
  std::optional<RsaPrivateKey> private_key_;  // set for certificate credentials
  CertificateThumbprints thumbprints_;
  RetryingHttpClient client_;
};

}  // namespace tessera::connectors

#endif  // TESSERA_CONNECTORS_AUTH_SERVICE_ACCOUNT_H_
