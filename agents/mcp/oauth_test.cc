// OAuth in the call path, against FakeHttpServer playing both the MCP server
// (a resource server answering 401 with resource_metadata) and the
// authorization server (metadata + token endpoint).
#include "agents/mcp/oauth.h"

#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <atomic>
#include <map>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "agents/mcp/client.h"
#include "agents/mcp/http_transport.h"
#include "common/clock.h"
#include "common/http/curl_http_transport.h"
#include "common/http/fake_http_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::mcp {
namespace {

using ::testing::HasSubstr;

std::map<std::string, std::string> ParseForm(const std::string& body) {
  std::map<std::string, std::string> out;
  for (absl::string_view pair : absl::StrSplit(body, '&')) {
    std::pair<std::string, std::string> kv = absl::StrSplit(pair, absl::MaxSplits('=', 1));
    std::string value;
    for (size_t i = 0; i < kv.second.size(); ++i) {
      if (kv.second[i] == '%' && i + 2 < kv.second.size()) {
        value.push_back(static_cast<char>(std::stoi(kv.second.substr(i + 1, 2), nullptr, 16)));
        i += 2;
      } else {
        value.push_back(kv.second[i]);
      }
    }
    out[kv.first] = value;
  }
  return out;
}

FakeHttpResponse Json200(const Json& j) {
  FakeHttpResponse r;
  r.headers.Add("Content-Type", "application/json");
  r.body = j.dump();
  return r;
}

class OAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = FakeHttpServer::Start();
    ASSERT_TRUE(server.ok());
    server_ = std::move(*server);
    base_ = server_->url();
    auto http = CurlHttpTransport::Create({});
    ASSERT_TRUE(http.ok());
    http_ = std::shared_ptr<HttpTransport>(std::move(*http));

    server_->Handle("GET", "/.well-known/oauth-protected-resource/mcp", [this](const FakeHttpRequest&) {
      return Json200({{"resource", base_ + "/mcp"}, {"authorization_servers", {base_ + "/as"}},
                      {"scopes_supported", {"tools.read"}}});
    });
    server_->Handle("GET", "/.well-known/oauth-authorization-server/as", [this](const FakeHttpRequest&) {
      return Json200({{"issuer", issuer_.empty() ? base_ + "/as" : issuer_},
                      {"authorization_endpoint", base_ + "/as/authorize"},
                      {"token_endpoint", base_ + "/as/token"},
                      {"code_challenge_methods_supported", {"S256"}}});
    });
    server_->Handle("POST", "/as/token", [this](const FakeHttpRequest& req) {
      auto form = ParseForm(req.body);
      form["_authorization"] = req.headers.Get("Authorization").value_or("");
      absl::MutexLock lock(&mu_);
      token_requests_.push_back(form);
      if (form["resource"] != base_ + "/mcp") return Json200({{"error", "invalid_target"}});
      if (form["grant_type"] == "client_credentials") {
        valid_access_ = "access-cc";
        return Json200({{"access_token", valid_access_}, {"token_type", "Bearer"}});
      }
      if (form["grant_type"] == "refresh_token" && form["refresh_token"] == refresh_) {
        ++generation_;
        valid_access_ = absl::StrCat("access-", generation_);
        refresh_ = absl::StrCat("refresh-", generation_);  // rotation
        return Json200({{"access_token", valid_access_}, {"token_type", "Bearer"}, {"expires_in", 60},
                        {"refresh_token", refresh_}});
      }
      if (form["grant_type"] == "authorization_code" && form["code"] == "the-code" &&
          PkceChallengeFor(form["code_verifier"]) == expected_challenge_) {
        valid_access_ = "access-from-code";
        token_scope_ = authorized_scope_;
        return Json200({{"access_token", valid_access_}, {"token_type", "Bearer"}, {"refresh_token", "refresh-from-code"}});
      }
      FakeHttpResponse bad = Json200({{"error", "invalid_grant"}, {"error_description", "expired"}});
      bad.status = 400;
      return bad;
    });
    // The MCP endpoint: a minimal legacy server behind bearer auth.
    server_->Handle("*", "/mcp", [this](const FakeHttpRequest& req) {
      {
        absl::MutexLock lock(&mu_);
        if (req.headers.Get("Authorization").value_or("") != "Bearer " + valid_access_) {
          ++unauthorized_;
          FakeHttpResponse r;
          r.status = 401;
          r.headers.Add("WWW-Authenticate", absl::StrCat("Bearer resource_metadata=\"", base_, prm_path_,
                                                         "\", scope=\"tools.read\""));
          return r;
        }
        if (!call_scope_.empty() && absl::StrContains(req.body, "\"tools/call\"") &&
            !absl::StrContains(token_scope_, call_scope_)) {
          FakeHttpResponse r;
          r.status = 403;
          r.headers.Add("WWW-Authenticate", absl::StrCat("Bearer error=\"insufficient_scope\", scope=\"tools.read ",
                                                         call_scope_, "\", resource_metadata=\"", base_, prm_path_, "\""));
          return r;
        }
      }
      if (req.method != "POST") return FakeHttpResponse{405, {}, "", {}, absl::ZeroDuration(), nullptr, absl::ZeroDuration(), false};
      auto body = Json::parse(req.body, nullptr, false);
      Json id = body.value("id", Json());
      std::string method = body.value("method", "");
      if (id.is_null()) return FakeHttpResponse{202, {}, "", {}, absl::ZeroDuration(), nullptr, absl::ZeroDuration(), false};
      if (method == "initialize") {
        return Json200({{"jsonrpc", "2.0"}, {"id", id},
                        {"result", {{"protocolVersion", "2025-11-25"}, {"capabilities", Json::object()}, {"serverInfo", {{"name", "guarded"}}}}}});
      }
      if (method == "tools/call") {
        Json result = Json::parse(R"({"content":[{"type":"text","text":"secret data"}]})");
        return Json200({{"jsonrpc", "2.0"}, {"id", id}, {"result", result}});
      }
      return Json200({{"jsonrpc", "2.0"}, {"id", id}, {"error", {{"code", -32601}, {"message", "no"}}}});
    });
  }

  std::unique_ptr<OAuthAuth> MakeAuth(OAuthConfig config, Clock* clock = RealClock(), bool interactive = false) {
    OAuthAuth::Options o;
    if (interactive) o.authorize = [this](const std::string& url) { return Approve(url); };
    o.config = std::move(config);
    o.server_url = base_ + "/mcp";
    o.http = http_;
    o.clock = clock;
    o.on_tokens = [this](const OAuthTokens& t) {
      absl::MutexLock lock(&mu_);
      persisted_refresh_ = t.refresh_token;
      persisted_client_id_ = t.client_id;
    };
    auto auth = OAuthAuth::Create(std::move(o));
    EXPECT_TRUE(auth.ok());
    return std::move(*auth);
  }

  absl::StatusOr<std::unique_ptr<McpClient>> Connect(std::shared_ptr<AuthProvider> auth) {
    StreamableHttpTransport::Options o;
    o.name = "guarded";
    o.url = base_ + "/mcp";
    o.http = http_;
    o.auth = std::move(auth);
    o.open_get_stream = false;
    auto t = StreamableHttpTransport::Create(o);
    if (!t.ok()) return t.status();
    ClientOptions options;
    options.server_name = "guarded";
    options.try_modern_era = false;
    options.validate_structured_content = false;
    return McpClient::Connect(std::move(*t), options);
  }

  // Plays the browser and the user approving: records the authorization
  // request and answers with the redirect the server would send.
  absl::StatusOr<std::string> Approve(const std::string& url) {
    auto q = ParseForm(url.substr(url.find('?') + 1));
    absl::MutexLock lock(&mu_);
    authorize_requests_.push_back(q);
    expected_challenge_ = q["code_challenge"];
    authorized_scope_ = q["scope"];
    return absl::StrCat(q["redirect_uri"], "?code=the-code&state=", q["state"], "&iss=", base_, "/as");
  }

  // Serves authorization server metadata for the issuer base_ + "/as" with
  // `extra` fields merged in.
  void ServeAsMetadata(const Json& extra) {
    server_->Handle("GET", "/.well-known/oauth-authorization-server/as", [this, extra](const FakeHttpRequest&) {
      Json m = {{"issuer", base_ + "/as"},
                {"authorization_endpoint", base_ + "/as/authorize"},
                {"token_endpoint", base_ + "/as/token"},
                {"code_challenge_methods_supported", {"S256"}}};
      m.update(extra);
      return Json200(m);
    });
  }

  std::unique_ptr<FakeHttpServer> server_;
  std::shared_ptr<HttpTransport> http_;
  std::string prm_path_ = "/.well-known/oauth-protected-resource/mcp";
  std::string call_scope_;         // a tools/call needs this scope too
  std::string authorized_scope_;   // of the latest authorization request
  std::string token_scope_;        // of the latest code-grant token
  std::vector<std::map<std::string, std::string>> authorize_requests_;
  Json registration_;              // the latest registration request
  std::string base_;
  std::string issuer_;
  absl::Mutex mu_;
  std::string valid_access_ = "never-issued";
  std::string refresh_ = "refresh-0";
  std::string expected_challenge_;
  int generation_ = 0;
  int unauthorized_ = 0;
  std::string persisted_refresh_;
  std::string persisted_client_id_;
  std::vector<std::map<std::string, std::string>> token_requests_;
};

TEST(PkceTest, MatchesRfc7636AppendixB) {
  EXPECT_EQ(PkceChallengeFor("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
  auto pkce = GeneratePkce();
  ASSERT_TRUE(pkce.ok());
  EXPECT_EQ(pkce->verifier.size(), 43u);
  EXPECT_EQ(pkce->challenge, PkceChallengeFor(pkce->verifier));
}

TEST(BearerChallengeTest, ParsesQuotedAndBareParameters) {
  auto c = ParseBearerChallenge(R"(Bearer error="insufficient_scope", scope="files:read files:write", resource_metadata="https://x/.well-known/oauth-protected-resource")");
  EXPECT_EQ(c["error"], "insufficient_scope");
  EXPECT_EQ(c["scope"], "files:read files:write");
  EXPECT_EQ(c["resource_metadata"], "https://x/.well-known/oauth-protected-resource");
  EXPECT_TRUE(ParseBearerChallenge("Basic realm=x").empty());
}

TEST_F(OAuthTest, StaleTokenIsRefreshedInsideTheCallPath) {
  OAuthConfig config;
  config.client_id = "tessera";
  config.access_token = "stale";
  config.refresh_token = "refresh-0";
  auto client = Connect(std::shared_ptr<AuthProvider>(MakeAuth(config)));
  ASSERT_TRUE(client.ok()) << client.status();
  auto r = (*client)->CallTool("anything", Json::object());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(RenderContentAsText(*r), "secret data");
  absl::MutexLock lock(&mu_);
  ASSERT_EQ(token_requests_.size(), 1u);
  EXPECT_EQ(token_requests_[0]["grant_type"], "refresh_token");
  EXPECT_EQ(token_requests_[0]["refresh_token"], "refresh-0");
  EXPECT_EQ(token_requests_[0]["client_id"], "tessera");
  EXPECT_EQ(token_requests_[0]["resource"], base_ + "/mcp");
  EXPECT_EQ(token_requests_[0]["scope"], "tools.read");  // from the WWW-Authenticate challenge
  EXPECT_EQ(persisted_refresh_, "refresh-1");               // rotated token handed out for storage
  EXPECT_EQ(unauthorized_, 1);
}

TEST_F(OAuthTest, ExpiringTokenIsRefreshedBeforeSending) {
  SimulatedClock clock;
  OAuthConfig config;
  config.client_id = "tessera";
  config.refresh_token = "refresh-0";
  config.token_endpoint = base_ + "/as/token";
  auto auth = std::shared_ptr<OAuthAuth>(MakeAuth(config, &clock));
  auto client = Connect(auth);  // no access token yet: refreshed up front
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ(auth->tokens().access_token, "access-1");
  clock.Advance(absl::Seconds(45));  // within the 30s margin of the 60s expiry
  auto r = (*client)->CallTool("anything", Json::object());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(auth->tokens().access_token, "access-2");
  absl::MutexLock lock(&mu_);
  EXPECT_EQ(unauthorized_, 0);
}

TEST_F(OAuthTest, RevokedRefreshTokenGivesAnActionableError) {
  OAuthConfig config;
  config.client_id = "tessera";
  config.access_token = "stale";
  config.refresh_token = "revoked";
  auto client = Connect(std::shared_ptr<AuthProvider>(MakeAuth(config)));
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(client.status().message()), HasSubstr("log in"));
}

TEST_F(OAuthTest, AuthorizationCodeWithPkce) {
  OAuthConfig config;
  config.client_id = "tessera";
  config.redirect_uri = "http://127.0.0.1:9999/callback";
  config.scopes = {"tools.read"};
  auto auth = MakeAuth(config);
  auto pkce = GeneratePkce();
  ASSERT_TRUE(pkce.ok());
  auto url = auth->BuildAuthorizationUrl(*pkce, "state-123");
  ASSERT_TRUE(url.ok()) << url.status();
  EXPECT_THAT(*url, HasSubstr(base_ + "/as/authorize?response_type=code"));
  EXPECT_THAT(*url, HasSubstr("code_challenge=" + pkce->challenge));
  EXPECT_THAT(*url, HasSubstr("code_challenge_method=S256"));
  EXPECT_THAT(*url, HasSubstr("state=state-123"));
  EXPECT_THAT(*url, HasSubstr("resource=http%3A%2F%2F127.0.0.1"));
  {
    absl::MutexLock lock(&mu_);
    expected_challenge_ = pkce->challenge;
  }
  EXPECT_EQ(auth->ExchangeAuthorizationCode("the-code", *pkce, "https://evil.example").code(),
            absl::StatusCode::kPermissionDenied);
  ASSERT_TRUE(auth->ExchangeAuthorizationCode("the-code", *pkce, base_ + "/as").ok());
  EXPECT_EQ(auth->tokens().access_token, "access-from-code");
  EXPECT_EQ(auth->tokens().refresh_token, "refresh-from-code");
}

TEST_F(OAuthTest, IssuerMismatchIsRefused) {
  issuer_ = "https://other-issuer.example";
  OAuthConfig config;
  config.client_id = "tessera";
  config.refresh_token = "refresh-0";
  auto auth = MakeAuth(config);
  auto m = auth->Discover("");
  EXPECT_EQ(m.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("does not match"));
}

TEST_F(OAuthTest, NonHttpsMetadataIsRefusedOutsideLoopback) {
  OAuthAuth::Options o;
  o.config.client_id = "c";
  o.config.refresh_token = "r";
  o.config.authorization_server = "http://10.0.0.5/as";
  o.server_url = "https://mcp.example.com/mcp";
  o.http = http_;
  auto auth = OAuthAuth::Create(o);
  ASSERT_TRUE(auth.ok());
  auto m = (*auth)->Discover("");
  EXPECT_FALSE(m.ok());
  EXPECT_THAT(std::string(m.status().message()), HasSubstr("only https"));
}


// metadata-var3 / scope-from-www-authenticate: the protected resource metadata
// is only at the challenge's resource_metadata URL, and the challenge's scope
// goes into the first authorization request.
TEST_F(OAuthTest, ChallengeDrivesDiscoveryAndTheLogin) {
  prm_path_ = "/custom/metadata.json";
  server_->Handle("GET", "/.well-known/oauth-protected-resource/mcp",
                  [](const FakeHttpRequest&) { return FakeHttpResponse{404, {}, "", {}, absl::ZeroDuration(), nullptr, absl::ZeroDuration(), false}; });
  server_->Handle("GET", "/custom/metadata.json", [this](const FakeHttpRequest&) {
    return Json200({{"resource", base_ + "/mcp"}, {"authorization_servers", {base_ + "/as"}}});
  });
  OAuthConfig config;
  config.client_id = "tessera";
  config.redirect_uri = "http://127.0.0.1:9999/callback";
  auto client = Connect(std::shared_ptr<AuthProvider>(MakeAuth(config, RealClock(), /*interactive=*/true)));
  ASSERT_TRUE(client.ok()) << client.status();
  auto r = (*client)->CallTool("anything", Json::object());
  ASSERT_TRUE(r.ok()) << r.status();
  absl::MutexLock lock(&mu_);
  ASSERT_EQ(authorize_requests_.size(), 1u);
  EXPECT_EQ(authorize_requests_[0]["scope"], "tools.read");
  EXPECT_EQ(authorize_requests_[0]["client_id"], "tessera");
  EXPECT_EQ(authorize_requests_[0]["resource"], base_ + "/mcp");
  ASSERT_EQ(token_requests_.size(), 1u);
  EXPECT_EQ(token_requests_[0]["grant_type"], "authorization_code");
  EXPECT_EQ(token_requests_[0]["client_id"], "tessera");  // public client: "none"
  EXPECT_EQ(token_requests_[0]["_authorization"], "");
}

TEST_F(OAuthTest, NoCredentialAndNoLoginDriverIsUnauthenticated) {
  OAuthConfig config;
  config.client_id = "tessera";
  auto client = Connect(std::shared_ptr<AuthProvider>(MakeAuth(config)));
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(client.status().message()), HasSubstr("needs an OAuth login"));
}

// metadata-var2: RFC 8414 path insertion for an issuer with a path, then the
// OpenID variants; an issuer that is the bare origin of the same host passes.
TEST_F(OAuthTest, IssuerWithPathUsesWellKnownPathInsertion) {
  auto root_requests = std::make_shared<std::atomic<int>>(0);
  server_->Handle("GET", "/.well-known/oauth-authorization-server", [root_requests](const FakeHttpRequest&) {
    ++*root_requests;
    return FakeHttpResponse{404, {}, "", {}, absl::ZeroDuration(), nullptr, absl::ZeroDuration(), false};
  });
  server_->Handle("GET", "/.well-known/oauth-authorization-server/tenant1", [this](const FakeHttpRequest&) {
    return Json200({{"issuer", base_}, {"authorization_endpoint", base_ + "/tenant1/authorize"},
                    {"token_endpoint", base_ + "/tenant1/token"}, {"code_challenge_methods_supported", {"S256"}}});
  });
  server_->Handle("GET", "/tenant2/.well-known/openid-configuration", [this](const FakeHttpRequest&) {
    return Json200({{"issuer", base_ + "/tenant2"}, {"authorization_endpoint", base_ + "/tenant2/authorize"},
                    {"token_endpoint", base_ + "/tenant2/token"}});
  });
  OAuthConfig config;
  config.client_id = "tessera";
  config.authorization_server = base_ + "/tenant1";
  auto m = MakeAuth(config)->Discover("");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->token_endpoint, base_ + "/tenant1/token");
  EXPECT_TRUE(m->s256_supported);
  config.authorization_server = base_ + "/tenant2";
  m = MakeAuth(config)->Discover("");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->token_endpoint, base_ + "/tenant2/token");
  EXPECT_EQ(root_requests->load(), 0);
}

TEST_F(OAuthTest, ClientSecretBasicIsTheDefaultAndPostWhenOnlyPostIsOffered) {
  ServeAsMetadata({{"token_endpoint_auth_methods_supported", {"client_secret_basic"}}});
  OAuthConfig config;
  config.client_id = "tessera:1";
  config.client_secret = "s e/cret";
  auto auth = MakeAuth(config);
  auto header = auth->GetAuthorization();  // client_credentials up front
  ASSERT_TRUE(header.ok()) << header.status();
  EXPECT_EQ(*header, "Bearer access-cc");
  {
    absl::MutexLock lock(&mu_);
    ASSERT_EQ(token_requests_.size(), 1u);
    EXPECT_EQ(token_requests_[0]["grant_type"], "client_credentials");
    // RFC 6749 2.3.1: each part form-urlencoded before base64.
    EXPECT_EQ(token_requests_[0]["_authorization"], "Basic " + absl::Base64Escape("tessera%3A1:s%20e%2Fcret"));
    EXPECT_EQ(token_requests_[0].count("client_secret"), 0u);
    token_requests_.clear();
  }
  ServeAsMetadata({{"token_endpoint_auth_methods_supported", {"client_secret_post"}}});
  ASSERT_TRUE(MakeAuth(config)->GetAuthorization().ok());
  absl::MutexLock lock(&mu_);
  ASSERT_EQ(token_requests_.size(), 1u);
  EXPECT_EQ(token_requests_[0]["_authorization"], "");
  EXPECT_EQ(token_requests_[0]["client_id"], "tessera:1");
  EXPECT_EQ(token_requests_[0]["client_secret"], "s e/cret");
}

// pre-registration: a secret, but the server offers no client_credentials
// grant: the authorization-code login, authenticated with Basic.
TEST_F(OAuthTest, SecretWithoutClientCredentialsGrantLogsIn) {
  ServeAsMetadata({{"grant_types_supported", {"authorization_code", "refresh_token"}},
                   {"token_endpoint_auth_methods_supported", {"client_secret_basic"}}});
  OAuthConfig config;
  config.client_id = "tessera";
  config.client_secret = "secret";
  config.redirect_uri = "http://127.0.0.1:9999/callback";
  auto client = Connect(std::shared_ptr<AuthProvider>(MakeAuth(config, RealClock(), /*interactive=*/true)));
  ASSERT_TRUE(client.ok()) << client.status();
  absl::MutexLock lock(&mu_);
  ASSERT_EQ(token_requests_.size(), 1u);
  EXPECT_EQ(token_requests_[0]["grant_type"], "authorization_code");
  EXPECT_EQ(token_requests_[0]["_authorization"], "Basic " + absl::Base64Escape("tessera:secret"));
}

// metadata-default: no client_id, so the client registers (RFC 7591) and
// reports the registration for persistence.
TEST_F(OAuthTest, DynamicClientRegistration) {
  ServeAsMetadata({{"registration_endpoint", base_ + "/as/register"},
                   {"token_endpoint_auth_methods_supported", {"client_secret_post"}}});
  server_->Handle("POST", "/as/register", [this](const FakeHttpRequest& req) {
    {
      absl::MutexLock lock(&mu_);
      registration_ = Json::parse(req.body, nullptr, false);
    }
    FakeHttpResponse r = Json200({{"client_id", "dyn-client"}, {"client_secret", "dyn-secret"},
                                  {"token_endpoint_auth_method", "client_secret_post"}});
    r.status = 201;
    return r;
  });
  OAuthConfig config;  // no client_id
  config.redirect_uri = "http://127.0.0.1:9999/callback";
  auto auth = std::shared_ptr<OAuthAuth>(MakeAuth(config, RealClock(), /*interactive=*/true));
  auto client = Connect(auth);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ(auth->tokens().client_id, "dyn-client");
  EXPECT_EQ(auth->tokens().client_secret, "dyn-secret");
  absl::MutexLock lock(&mu_);
  EXPECT_EQ(registration_["redirect_uris"], Json::array({"http://127.0.0.1:9999/callback"}));
  EXPECT_EQ(registration_["token_endpoint_auth_method"], "client_secret_post");
  ASSERT_EQ(authorize_requests_.size(), 1u);
  EXPECT_EQ(authorize_requests_[0]["client_id"], "dyn-client");
  ASSERT_EQ(token_requests_.size(), 1u);
  EXPECT_EQ(token_requests_[0]["client_id"], "dyn-client");
  EXPECT_EQ(token_requests_[0]["client_secret"], "dyn-secret");
  EXPECT_EQ(persisted_client_id_, "dyn-client");
}

TEST_F(OAuthTest, NoClientIdAndNoRegistrationEndpointSaysWhatToConfigure) {
  OAuthConfig config;
  auto auth = MakeAuth(config);
  auto pkce = GeneratePkce();
  ASSERT_TRUE(pkce.ok());
  auto url = auth->BuildAuthorizationUrl(*pkce, "s");
  EXPECT_EQ(url.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(url.status().message()), HasSubstr("client_id"));
}

// 2025-03-26: no protected resource metadata: the authorization server
// metadata at the server's origin, else the default endpoints there.
TEST_F(OAuthTest, LegacyServersWithoutResourceMetadata) {
  server_->Handle("GET", "/.well-known/oauth-protected-resource/mcp",
                  [](const FakeHttpRequest&) { return FakeHttpResponse{404, {}, "", {}, absl::ZeroDuration(), nullptr, absl::ZeroDuration(), false}; });
  OAuthConfig config;
  config.client_id = "tessera";
  auto m = MakeAuth(config)->Discover("");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->default_endpoints);
  EXPECT_EQ(m->authorization_endpoint, base_ + "/authorize");
  EXPECT_EQ(m->token_endpoint, base_ + "/token");
  EXPECT_EQ(m->registration_endpoint, base_ + "/register");
  EXPECT_TRUE(m->s256_supported);
  server_->Handle("GET", "/.well-known/oauth-authorization-server", [this](const FakeHttpRequest&) {
    return Json200({{"issuer", base_}, {"authorization_endpoint", base_ + "/oauth/authorize"},
                    {"token_endpoint", base_ + "/oauth/token"}, {"code_challenge_methods_supported", {"S256"}}});
  });
  m = MakeAuth(config)->Discover("");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_FALSE(m->default_endpoints);
  EXPECT_EQ(m->token_endpoint, base_ + "/oauth/token");
}

TEST_F(OAuthTest, ScopeStepUpReauthorizesOnceWithTheUnion) {
  call_scope_ = "tools.write";
  OAuthConfig config;
  config.client_id = "tessera";
  config.redirect_uri = "http://127.0.0.1:9999/callback";
  auto client = Connect(std::shared_ptr<AuthProvider>(MakeAuth(config, RealClock(), /*interactive=*/true)));
  ASSERT_TRUE(client.ok()) << client.status();
  auto r = (*client)->CallTool("anything", Json::object());
  ASSERT_TRUE(r.ok()) << r.status();
  absl::MutexLock lock(&mu_);
  ASSERT_EQ(authorize_requests_.size(), 2u);
  EXPECT_EQ(authorize_requests_[0]["scope"], "tools.read");
  EXPECT_EQ(authorize_requests_[1]["scope"], "tools.read tools.write");
}

TEST_F(OAuthTest, ScopeStepUpIsNotRepeatedForTheSameScopes) {
  call_scope_ = "tools.write";
  OAuthConfig config;
  config.client_id = "tessera";
  config.redirect_uri = "http://127.0.0.1:9999/callback";
  auto auth = std::shared_ptr<OAuthAuth>(MakeAuth(config, RealClock(), /*interactive=*/true));
  auto client = Connect(auth);
  ASSERT_TRUE(client.ok()) << client.status();
  {
    absl::MutexLock lock(&mu_);
    call_scope_ = "tools.write";
    token_scope_ = "tools.read";
  }
  // The server keeps refusing even after step-up (grants less than asked).
  server_->Handle("POST", "/as/token", [this](const FakeHttpRequest&) {
    absl::MutexLock lock(&mu_);
    token_requests_.push_back({});
    valid_access_ = "access-from-code";
    token_scope_ = "tools.read";
    return Json200({{"access_token", valid_access_}, {"token_type", "Bearer"}});
  });
  auto r = (*client)->CallTool("anything", Json::object());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  r = (*client)->CallTool("anything", Json::object());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kPermissionDenied);
  absl::MutexLock lock(&mu_);
  EXPECT_EQ(authorize_requests_.size(), 2u);  // the login, one step-up, no more
}

// private_key_jwt (RFC 7523) for client_credentials, ES256.
TEST_F(OAuthTest, PrivateKeyJwtClientAssertion) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  ASSERT_NE(key, nullptr);
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  ASSERT_EQ(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr), 1);
  char* data = nullptr;
  long length = BIO_get_mem_data(bio.get(), &data);
  ServeAsMetadata({{"grant_types_supported", {"client_credentials"}},
                   {"token_endpoint_auth_methods_supported", {"private_key_jwt"}}});
  OAuthConfig config;
  config.client_id = "tessera";
  config.private_key_pem = std::string(data, length);
  ASSERT_TRUE(MakeAuth(config)->GetAuthorization().ok());
  std::map<std::string, std::string> form;
  {
    absl::MutexLock lock(&mu_);
    ASSERT_EQ(token_requests_.size(), 1u);
    form = token_requests_[0];
  }
  EXPECT_EQ(form["grant_type"], "client_credentials");
  EXPECT_EQ(form["client_assertion_type"], "urn:ietf:params:oauth:client-assertion-type:jwt-bearer");
  std::vector<std::string> parts = absl::StrSplit(form["client_assertion"], '.');
  ASSERT_EQ(parts.size(), 3u);
  std::string header, claims, signature;
  ASSERT_TRUE(absl::WebSafeBase64Unescape(parts[0], &header));
  ASSERT_TRUE(absl::WebSafeBase64Unescape(parts[1], &claims));
  ASSERT_TRUE(absl::WebSafeBase64Unescape(parts[2], &signature));
  EXPECT_EQ(Json::parse(header)["alg"], "ES256");
  Json c = Json::parse(claims);
  EXPECT_EQ(c["iss"], "tessera");
  EXPECT_EQ(c["sub"], "tessera");
  EXPECT_EQ(c["aud"], base_ + "/as");
  EXPECT_TRUE(c.contains("exp") && c.contains("jti"));
  // Verify r||s with the public key.
  ASSERT_EQ(signature.size(), 64u);
  ECDSA_SIG* sig = ECDSA_SIG_new();
  ECDSA_SIG_set0(sig, BN_bin2bn(reinterpret_cast<const unsigned char*>(signature.data()), 32, nullptr),
                 BN_bin2bn(reinterpret_cast<const unsigned char*>(signature.data()) + 32, 32, nullptr));
  unsigned char* der = nullptr;
  int der_length = i2d_ECDSA_SIG(sig, &der);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  const std::string input = parts[0] + "." + parts[1];
  ASSERT_EQ(EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, key), 1);
  EXPECT_EQ(EVP_DigestVerify(ctx, der, der_length, reinterpret_cast<const unsigned char*>(input.data()), input.size()), 1);
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  ECDSA_SIG_free(sig);
  EVP_PKEY_free(key);
}


// Client ID Metadata Document: its URL is the client_id where the server
// supports it; no registration.
TEST_F(OAuthTest, ClientIdMetadataDocumentUrlIsTheClientIdWhereSupported) {
  ServeAsMetadata({{"registration_endpoint", base_ + "/as/register"}, {"client_id_metadata_document_supported", true}});
  auto registrations = std::make_shared<std::atomic<int>>(0);
  server_->Handle("POST", "/as/register", [registrations](const FakeHttpRequest&) {
    ++*registrations;
    return FakeHttpResponse{500, {}, "", {}, absl::ZeroDuration(), nullptr, absl::ZeroDuration(), false};
  });
  OAuthConfig config;
  config.client_metadata_url = "https://tessera.example/client.json";
  config.redirect_uri = "http://127.0.0.1:9999/callback";
  auto client = Connect(std::shared_ptr<AuthProvider>(MakeAuth(config, RealClock(), /*interactive=*/true)));
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ(registrations->load(), 0);
  absl::MutexLock lock(&mu_);
  ASSERT_EQ(authorize_requests_.size(), 1u);
  EXPECT_EQ(authorize_requests_[0]["client_id"], "https://tessera.example/client.json");
  EXPECT_EQ(persisted_client_id_, "");  // configured, nothing to persist
}

}  // namespace
}  // namespace tessera::mcp
