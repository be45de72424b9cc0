#include "connectors/auth/service_account.h"

#include <openssl/crypto.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "connectors/auth/token_endpoint.h"
#include "nlohmann/json.hpp"

namespace tessera::connectors {
namespace {

using json = nlohmann::json;

std::string StringField(const json& doc, const char* key) {
  auto it = doc.find(key);
  if (it == doc.end() || !it->is_string()) return "";
  return it->get<std::string>();
}

// Overwrites key material before the string's memory is released.
void Wipe(std::string& secret) {
  if (!secret.empty()) OPENSSL_cleanse(secret.data(), secret.size());
  secret.clear();
}

}  // namespace

absl::StatusOr<ServiceAccountKey> ServiceAccountKey::FromJson(absl::string_view text) {
  const json doc = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (!doc.is_object()) {
    return absl::InvalidArgumentError("the service-account key is not a JSON object");
  }
  if (std::string type = StringField(doc, "type"); type != "service_account") {
    return absl::InvalidArgumentError(absl::StrCat(
        "the JSON key has type '", type.substr(0, 40),
        "', not 'service_account' (download a service-account key, not an OAuth client)"));
  }
  ServiceAccountKey key;
  key.client_email = StringField(doc, "client_email");
  key.private_key_pem = StringField(doc, "private_key");
  key.private_key_id = StringField(doc, "private_key_id");
  if (std::string uri = StringField(doc, "token_uri"); !uri.empty()) key.token_uri = uri;
  if (key.client_email.empty()) {
    return absl::InvalidArgumentError("the service-account key has no client_email");
  }
  if (key.private_key_pem.empty()) {
    return absl::InvalidArgumentError("the service-account key has no private_key");
  }
  return key;
}

absl::StatusOr<std::unique_ptr<ServiceAccountTokenSource>> ServiceAccountTokenSource::Create(
    HttpTransport* transport, Clock* clock, Options options) {
  if (options.key.client_email.empty()) {
    return absl::InvalidArgumentError("service account: client_email is empty");
  }
  if (options.scopes.empty()) {
    return absl::InvalidArgumentError("service account: at least one scope is required");
  }
  absl::StatusOr<RsaPrivateKey> key = RsaPrivateKey::FromPem(options.key.private_key_pem);
  Wipe(options.key.private_key_pem);
  if (!key.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("service account ", options.key.client_email,
                                                   ": ", key.status().message()));
  }
  return std::unique_ptr<ServiceAccountTokenSource>(
      new ServiceAccountTokenSource(transport, clock, std::move(options), *std::move(key)));
}

ServiceAccountTokenSource::ServiceAccountTokenSource(HttpTransport* transport, Clock* clock,
                                                     Options options, RsaPrivateKey key)
    : CachingTokenSource(clock, options.expiry_margin),
      options_(std::move(options)),
      private_key_(std::move(key)),
      client_(transport, clock, RetryingHttpClient::Options{.policy = options_.retry}) {}

absl::StatusOr<std::string> ServiceAccountTokenSource::MakeAssertion(absl::Time now) const {
  json header = {{"alg", "RS256"}, {"typ", "JWT"}};
  if (!options_.key.private_key_id.empty()) header["kid"] = options_.key.private_key_id;
  const int64_t iat = absl::ToUnixSeconds(now);
  json claims = {
      {"iss", options_.key.client_email},
      {"scope", absl::StrJoin(options_.scopes, " ")},
      {"aud", options_.key.token_uri},
      {"iat", iat},
      {"exp", iat + 3600},
  };
  if (!options_.subject.empty()) claims["sub"] = options_.subject;
  return SignJwtRs256(header.dump(), claims.dump(), private_key_);
}

absl::StatusOr<AccessToken> ServiceAccountTokenSource::Fetch() {
  absl::StatusOr<std::string> assertion = MakeAssertion(clock()->Now());
  if (!assertion.ok()) return assertion.status();
  const FormFields form = {{"grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"},
                           {"assertion", *assertion}};
  const std::string who =
      options_.subject.empty()
          ? absl::StrCat("service account ", options_.key.client_email)
          : absl::StrCat("service account ", options_.key.client_email, " acting as ",
                         options_.subject);
  TokenErrorHints hints;
  hints.invalid_grant = absl::StrCat(
      who, " was refused: the key may be deleted or disabled, the impersonated user may not "
           "exist, or this machine's clock may be wrong");
  hints.unauthorized_client = absl::StrCat(
      who, " is not authorised: in the Google Workspace admin console, grant domain-wide "
           "delegation to this service account's client id for the scopes [",
      absl::StrJoin(options_.scopes, ", "), "]");
  const std::string& url = options_.token_url.empty() ? options_.key.token_uri : options_.token_url;
  absl::StatusOr<TokenResponse> response = RequestToken(client_, clock(), url, form, hints);
  if (!response.ok()) return response.status();
  return std::move(response)->access;
}

// --- Microsoft Entra ID client credentials ---

absl::StatusOr<std::unique_ptr<MicrosoftClientCredentialsTokenSource>>
MicrosoftClientCredentialsTokenSource::Create(HttpTransport* transport, Clock* clock,
                                              Options options) {
  if (options.tenant_id.empty() && options.token_url.empty()) {
    return absl::InvalidArgumentError("Microsoft client credentials: tenant_id is empty");
  }
  if (options.client_id.empty()) {
    return absl::InvalidArgumentError("Microsoft client credentials: client_id is empty");
  }
  const bool has_secret = !options.client_secret.empty();
  const bool has_certificate = !options.certificate_pem.empty() || !options.private_key_pem.empty();
  if (has_secret == has_certificate) {
    return absl::InvalidArgumentError(
        "Microsoft client credentials: configure exactly one of a client secret or a "
        "certificate with its private key");
  }
  if (options.scopes.empty()) {
    return absl::InvalidArgumentError("Microsoft client credentials: no scopes");
  }
  std::string token_url = options.token_url.empty()
                              ? absl::StrCat("https://login.microsoftonline.com/",
                                             options.tenant_id, "/oauth2/v2.0/token")
                              : options.token_url;
  std::optional<RsaPrivateKey> key;
  CertificateThumbprints thumbprints;
  if (has_certificate) {
    absl::StatusOr<CertificateThumbprints> t =
        ComputeCertificateThumbprints(options.certificate_pem);
    if (!t.ok()) return t.status();
    thumbprints = *std::move(t);
    absl::StatusOr<RsaPrivateKey> k = RsaPrivateKey::FromPem(options.private_key_pem);
    Wipe(options.private_key_pem);
    if (!k.ok()) return k.status();
    key = *std::move(k);
  }
  auto source = std::unique_ptr<MicrosoftClientCredentialsTokenSource>(
      new MicrosoftClientCredentialsTokenSource(transport, clock, std::move(options),
                                                std::move(token_url)));
  source->private_key_ = std::move(key);
  source->thumbprints_ = std::move(thumbprints);
  return source;
}

MicrosoftClientCredentialsTokenSource::MicrosoftClientCredentialsTokenSource(
    HttpTransport* transport, Clock* clock, Options options, std::string token_url)
    : CachingTokenSource(clock, options.expiry_margin),
      options_(std::move(options)),
      token_url_(std::move(token_url)),
      client_(transport, clock, RetryingHttpClient::Options{.policy = options_.retry}) {}

absl::StatusOr<std::string> MicrosoftClientCredentialsTokenSource::MakeClientAssertion(
    absl::Time now) const {
  if (!private_key_.has_value()) {
    return absl::FailedPreconditionError("no certificate configured for a client assertion");
  }
  const json header = {{"alg", "RS256"},
                       {"typ", "JWT"},
                       {"x5t", thumbprints_.x5t},
                       {"x5t#S256", thumbprints_.x5t_s256}};
  const int64_t iat = absl::ToUnixSeconds(now);
  const json claims = {{"aud", token_url_},       {"iss", options_.client_id},
                       {"sub", options_.client_id}, {"jti", RandomUuid()},
                       {"nbf", iat},              {"iat", iat},
                       {"exp", iat + 600}};
  return SignJwtRs256(header.dump(), claims.dump(), *private_key_);
}

absl::StatusOr<AccessToken> MicrosoftClientCredentialsTokenSource::Fetch() {
  FormFields form = {{"grant_type", "client_credentials"},
                     {"client_id", options_.client_id},
                     {"scope", absl::StrJoin(options_.scopes, " ")}};
  if (private_key_.has_value()) {
    absl::StatusOr<std::string> assertion = MakeClientAssertion(clock()->Now());
    if (!assertion.ok()) return assertion.status();
    form.emplace_back("client_assertion_type",
                      "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    form.emplace_back("client_assertion", *assertion);
  } else {
    form.emplace_back("client_secret", options_.client_secret);
  }
  TokenErrorHints hints;
  hints.invalid_grant = "the app registration's credentials were refused";
  hints.unauthorized_client = absl::StrCat(
      "app ", options_.client_id, " may not use the client-credentials grant in tenant ",
      options_.tenant_id, " (is admin consent granted?)");
  absl::StatusOr<TokenResponse> response = RequestToken(client_, clock(), token_url_, form, hints);
  if (!response.ok()) return response.status();
  return std::move(response)->access;
}

}  // namespace tessera::connectors
