// OAuth in the call path, against FakeHttpServer playing both the MCP server
// (a resource server answering 401 with resource_metadata) and the
// authorization server (metadata + token endpoint).
#include "agents/mcp/oauth.h"

#include <atomic>
#include <map>

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
      absl::MutexLock lock(&mu_);
      token_requests_.push_back(form);
      if (form["resource"] != base_ + "/mcp") return Json200({{"error", "invalid_target"}});
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
          r.headers.Add("WWW-Authenticate", absl::StrCat("Bearer resource_metadata=\"", base_,
                                                         "/.well-known/oauth-protected-resource/mcp\", scope=\"tools.read\""));
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

  std::unique_ptr<OAuthAuth> MakeAuth(OAuthConfig config, Clock* clock = RealClock()) {
    OAuthAuth::Options o;
    o.config = std::move(config);
    o.server_url = base_ + "/mcp";
    o.http = http_;
    o.clock = clock;
    o.on_tokens = [this](const OAuthTokens& t) {
      absl::MutexLock lock(&mu_);
      persisted_refresh_ = t.refresh_token;
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

  std::unique_ptr<FakeHttpServer> server_;
  std::shared_ptr<HttpTransport> http_;
  std::string base_;
  std::string issuer_;
  absl::Mutex mu_;
  std::string valid_access_ = "never-issued";
  std::string refresh_ = "refresh-0";
  std::string expected_challenge_;
  int generation_ = 0;
  int unauthorized_ = 0;
  std::string persisted_refresh_;
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

}  // namespace
}  // namespace tessera::mcp
