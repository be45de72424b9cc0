#include "connectors/auth/service_account.h"

#include <memory>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/http/curl_http_transport.h"
#include "common/http/fake_http_server.h"
#include "connectors/auth/testing/test_keys.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace tessera::connectors {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using json = nlohmann::json;

const testing::TestRsaKey& Key() {
  static const auto* key = new testing::TestRsaKey(testing::GenerateRsaKey());
  return *key;
}

FakeHttpResponse Json(int status, std::string body) {
  FakeHttpResponse r;
  r.status = status;
  r.headers.Add("Content-Type", "application/json");
  r.body = std::move(body);
  return r;
}

std::string KeyJson(const std::string& token_uri) {
  return json{{"type", "service_account"},
              {"project_id", "tessera-test"},
              {"private_key_id", "kid-0123"},
              {"private_key", Key().private_pem},
              {"client_email", "sync@tessera-test.iam.gserviceaccount.com"},
              {"client_id", "1234567890"},
              {"token_uri", token_uri}}
      .dump();
}

class ServiceAccountTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = *FakeHttpServer::Start();
    transport_ = *CurlHttpTransport::Create({});
  }

  std::unique_ptr<ServiceAccountTokenSource> Make(std::string subject = "ann@x.com") {
    auto key = ServiceAccountKey::FromJson(KeyJson(server_->url() + "/token"));
    EXPECT_TRUE(key.ok()) << key.status();
    ServiceAccountTokenSource::Options options;
    options.key = *key;
    options.scopes = {"https://www.googleapis.com/auth/gmail.readonly",
                      "https://www.googleapis.com/auth/drive.readonly"};
    options.subject = std::move(subject);
    options.retry.base_delay = absl::Milliseconds(1);
    auto source = ServiceAccountTokenSource::Create(transport_.get(), &clock_, options);
    EXPECT_TRUE(source.ok()) << source.status();
    return *std::move(source);
  }

  std::unique_ptr<FakeHttpServer> server_;
  std::unique_ptr<CurlHttpTransport> transport_;
  SimulatedClock clock_{SimulatedClock::Options{.auto_advance = true}};
};

TEST_F(ServiceAccountTest, AssertionIsAValidRs256JwtWithDelegationClaims) {
  auto source = Make();
  auto jwt = source->MakeAssertion(clock_.Now());
  ASSERT_TRUE(jwt.ok()) << jwt.status();
  EXPECT_TRUE(testing::VerifyRs256Jwt(*jwt, Key().public_pem));
  EXPECT_THAT(*jwt, AllOf(Not(HasSubstr("=")), Not(HasSubstr("+")), Not(HasSubstr("/"))));
  json header = json::parse(testing::JwtPart(*jwt, 0));
  EXPECT_EQ(header["alg"], "RS256");
  EXPECT_EQ(header["typ"], "JWT");
  EXPECT_EQ(header["kid"], "kid-0123");
  json claims = json::parse(testing::JwtPart(*jwt, 1));
  EXPECT_EQ(claims["iss"], "sync@tessera-test.iam.gserviceaccount.com");
  EXPECT_EQ(claims["sub"], "ann@x.com");
  EXPECT_EQ(claims["aud"], server_->url() + "/token");
  EXPECT_EQ(claims["scope"],
            "https://www.googleapis.com/auth/gmail.readonly "
            "https://www.googleapis.com/auth/drive.readonly");
  EXPECT_EQ(claims["iat"], absl::ToUnixSeconds(clock_.Now()));
  EXPECT_EQ(claims["exp"], absl::ToUnixSeconds(clock_.Now()) + 3600);

  // Without a subject there is no "sub" claim.
  json plain = json::parse(testing::JwtPart(*Make("")->MakeAssertion(clock_.Now()), 1));
  EXPECT_FALSE(plain.contains("sub"));
}

TEST_F(ServiceAccountTest, ExchangesTheJwtAndCachesTheToken) {
  server_->Handle("POST", "/token", [](const FakeHttpRequest& r) {
    auto form = testing::ParseForm(r.body);
    if (form["grant_type"] != "urn:ietf:params:oauth:grant-type:jwt-bearer" ||
        !testing::VerifyRs256Jwt(form["assertion"], Key().public_pem)) {
      return Json(400, R"({"error":"invalid_grant","error_description":"Invalid JWT Signature."})");
    }
    return Json(200, R"({"access_token":"ya29.sa","expires_in":3599,"token_type":"Bearer"})");
  });
  auto source = Make();
  EXPECT_EQ(*source->Token(), "ya29.sa");
  EXPECT_EQ(*source->Token(), "ya29.sa");
  EXPECT_EQ(server_->requests().size(), 1u);
  clock_.Advance(absl::Hours(1));  // expired
  EXPECT_EQ(*source->Token(), "ya29.sa");
  EXPECT_EQ(server_->requests().size(), 2u);
}

TEST_F(ServiceAccountTest, UnauthorizedClientExplainsDomainWideDelegation) {
  server_->Handle("POST", "/token", [](const FakeHttpRequest&) {
    return Json(401,
                R"({"error":"unauthorized_client","error_description":"Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested."})");
  });
  auto token = Make()->Token();
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(token.status().message(),
              AllOf(HasSubstr("domain-wide delegation"), HasSubstr("ann@x.com"),
                    HasSubstr("gmail.readonly"), Not(HasSubstr("PRIVATE KEY"))));
}

TEST_F(ServiceAccountTest, InvalidGrantAndMalformedAnswers) {
  server_->Handle("POST", "/token", [](const FakeHttpRequest&) {
    return Json(400, R"({"error":"invalid_grant","error_description":"Invalid email or User ID"})");
  });
  auto token = Make()->Token();
  EXPECT_EQ(token.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(token.status().message(), HasSubstr("Invalid email or User ID"));

  server_->Handle("POST", "/token", [](const FakeHttpRequest&) { return Json(200, "{not json"); });
  EXPECT_EQ(Make()->Token().status().code(), absl::StatusCode::kInternal);
}

TEST(ServiceAccountKeyTest, RejectsWrongFiles) {
  EXPECT_EQ(ServiceAccountKey::FromJson("nope").status().code(),
            absl::StatusCode::kInvalidArgument);
  auto oauth_client = ServiceAccountKey::FromJson(R"({"installed":{"client_id":"x"}})");
  EXPECT_EQ(oauth_client.status().code(), absl::StatusCode::kInvalidArgument);
  auto no_key = ServiceAccountKey::FromJson(R"({"type":"service_account","client_email":"a@b"})");
  EXPECT_THAT(no_key.status().message(), HasSubstr("private_key"));
  auto key = ServiceAccountKey::FromJson(R"({"type":"service_account","client_email":"a@b",
                                             "private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"})");
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(key->token_uri, "https://oauth2.googleapis.com/token");
  SimulatedClock clock;
  ServiceAccountTokenSource::Options options;
  options.key = *key;
  options.scopes = {"s"};
  EXPECT_EQ(ServiceAccountTokenSource::Create(nullptr, &clock, options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// --- Microsoft Graph client credentials ---

class MicrosoftTest : public ServiceAccountTest {};

TEST_F(MicrosoftTest, ClientSecretFlow) {
  server_->Handle("POST", "/tenant-1/oauth2/v2.0/token", [](const FakeHttpRequest& r) {
    auto form = testing::ParseForm(r.body);
    if (form["client_secret"] != "MS-SECRET") {
      return Json(401, R"({"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."})");
    }
    EXPECT_EQ(form["grant_type"], "client_credentials");
    EXPECT_EQ(form["client_id"], "app-id");
    EXPECT_EQ(form["scope"], "https://graph.microsoft.com/.default");
    return Json(200, R"({"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"eyJ0eXAi.graph"})");
  });
  MicrosoftClientCredentialsTokenSource::Options options;
  options.tenant_id = "tenant-1";
  options.client_id = "app-id";
  options.client_secret = "MS-SECRET";
  options.token_url = server_->url() + "/tenant-1/oauth2/v2.0/token";
  auto source = MicrosoftClientCredentialsTokenSource::Create(transport_.get(), &clock_, options);
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_EQ(*(*source)->Token(), "eyJ0eXAi.graph");

  options.client_secret = "WRONG";
  auto wrong = *MicrosoftClientCredentialsTokenSource::Create(transport_.get(), &clock_, options);
  auto token = wrong->Token();
  EXPECT_EQ(token.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(token.status().message(), AllOf(HasSubstr("AADSTS7000215"), Not(HasSubstr("WRONG"))));
}

TEST_F(MicrosoftTest, CertificateFlowSendsASignedClientAssertion) {
  testing::TestCertificate cert = testing::SelfSignedCertificate(Key());
  const std::string url = server_->url() + "/tenant-1/oauth2/v2.0/token";
  server_->Handle("POST", "/tenant-1/oauth2/v2.0/token", [&](const FakeHttpRequest& r) {
    auto form = testing::ParseForm(r.body);
    EXPECT_EQ(form.count("client_secret"), 0u);
    EXPECT_EQ(form["client_assertion_type"],
              "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
    if (!testing::VerifyRs256Jwt(form["client_assertion"], Key().public_pem)) {
      return Json(401, R"({"error":"invalid_client","error_description":"AADSTS700027"})");
    }
    return Json(200, R"({"token_type":"Bearer","expires_in":3599,"access_token":"cert-token"})");
  });
  MicrosoftClientCredentialsTokenSource::Options options;
  options.tenant_id = "tenant-1";
  options.client_id = "app-id";
  options.certificate_pem = cert.pem;
  options.private_key_pem = Key().private_pem;
  options.token_url = url;
  auto source = MicrosoftClientCredentialsTokenSource::Create(transport_.get(), &clock_, options);
  ASSERT_TRUE(source.ok()) << source.status();
  EXPECT_EQ(*(*source)->Token(), "cert-token");

  auto jwt = (*source)->MakeClientAssertion(clock_.Now());
  ASSERT_TRUE(jwt.ok());
  json header = json::parse(testing::JwtPart(*jwt, 0));
  EXPECT_EQ(header["alg"], "RS256");
  EXPECT_EQ(header["x5t"], absl::WebSafeBase64Escape(cert.der_sha1));
  json claims = json::parse(testing::JwtPart(*jwt, 1));
  EXPECT_EQ(claims["aud"], url);
  EXPECT_EQ(claims["iss"], "app-id");
  EXPECT_EQ(claims["sub"], "app-id");
  EXPECT_EQ(claims["exp"].get<int64_t>() - claims["nbf"].get<int64_t>(), 600);
  EXPECT_EQ(claims["jti"].get<std::string>().size(), 36u);
  EXPECT_NE(claims["jti"], json::parse(testing::JwtPart(
                               *(*source)->MakeClientAssertion(clock_.Now()), 1))["jti"]);
}

TEST_F(MicrosoftTest, ConfigurationErrors) {
  MicrosoftClientCredentialsTokenSource::Options options;
  options.tenant_id = "t";
  options.client_id = "c";
  EXPECT_EQ(MicrosoftClientCredentialsTokenSource::Create(nullptr, &clock_, options).status().code(),
            absl::StatusCode::kInvalidArgument);  // neither credential
  options.client_secret = "s";
  options.private_key_pem = Key().private_pem;
  EXPECT_EQ(MicrosoftClientCredentialsTokenSource::Create(nullptr, &clock_, options).status().code(),
            absl::StatusCode::kInvalidArgument);  // both
  options.client_secret.clear();
  options.certificate_pem = "not a certificate";
  EXPECT_EQ(MicrosoftClientCredentialsTokenSource::Create(nullptr, &clock_, options).status().code(),
            absl::StatusCode::kInvalidArgument);
  MicrosoftClientCredentialsTokenSource::Options defaults;
  defaults.tenant_id = "contoso.onmicrosoft.com";
  defaults.client_id = "c";
  defaults.client_secret = "s";
  auto source = MicrosoftClientCredentialsTokenSource::Create(nullptr, &clock_, defaults);
  ASSERT_TRUE(source.ok());
  EXPECT_EQ((*source)->token_url(),
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token");
}

}  // namespace
}  // namespace tessera::connectors
