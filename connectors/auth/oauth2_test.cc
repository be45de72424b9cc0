#include "connectors/auth/oauth2.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/http/curl_http_transport.h"
#include "common/http/fake_http_server.h"
#include "common/logging.h"
#include "connectors/auth/testing/test_keys.h"
#include "connectors/http/retrying_client.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::connectors {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

FakeHttpResponse Json(int status, std::string body) {
  FakeHttpResponse r;
  r.status = status;
  r.headers.Add("Content-Type", "application/json");
  r.body = std::move(body);
  return r;
}

class OAuth2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = *FakeHttpServer::Start();
    transport_ = *CurlHttpTransport::Create({});
  }

  // Answers the token endpoint from `answers` in order (the last one repeats).
  void Script(std::vector<FakeHttpResponse> answers) {
    server_->Handle("POST", "/token", [this, answers](const FakeHttpRequest&) {
      absl::MutexLock lock(&mu_);
      size_t i = std::min(calls_++, answers.size() - 1);
      return answers[i];
    });
  }

  OAuth2RefreshTokenSource::Options BaseOptions() {
    OAuth2RefreshTokenSource::Options options;
    options.token_url = server_->url() + "/token";
    options.client_id = "client-123.apps.googleusercontent.com";
    options.client_secret = "CLIENT-SECRET-XYZ";
    options.refresh_token = "1//REFRESH-TOKEN-ABC";
    options.retry.base_delay = absl::Milliseconds(10);
    return options;
  }

  std::unique_ptr<OAuth2RefreshTokenSource> Make(OAuth2RefreshTokenSource::Options options) {
    auto source = OAuth2RefreshTokenSource::Create(transport_.get(), &clock_, std::move(options));
    EXPECT_TRUE(source.ok()) << source.status();
    return *std::move(source);
  }

  absl::Mutex mu_;
  size_t calls_ = 0;
  std::unique_ptr<FakeHttpServer> server_;
  std::unique_ptr<CurlHttpTransport> transport_;
  SimulatedClock clock_{SimulatedClock::Options{.auto_advance = true}};
};

TEST_F(OAuth2Test, PostsTheRefreshGrantAndCachesTheToken) {
  Script({Json(200, R"({"access_token":"ya29.first","expires_in":3599,"token_type":"Bearer",
                        "scope":"https://www.googleapis.com/auth/gmail.readonly"})"),
          Json(200, R"({"access_token":"ya29.second","expires_in":3599})")});
  auto source = Make(BaseOptions());
  EXPECT_EQ(*source->Token(), "ya29.first");
  EXPECT_EQ(*source->Token(), "ya29.first");
  ASSERT_EQ(server_->requests().size(), 1u);
  const FakeHttpRequest request = server_->requests()[0];
  EXPECT_EQ(request.method, "POST");
  EXPECT_EQ(request.headers.Get("Content-Type"), "application/x-www-form-urlencoded");
  auto form = testing::ParseForm(request.body);
  EXPECT_EQ(form["grant_type"], "refresh_token");
  EXPECT_EQ(form["client_id"], "client-123.apps.googleusercontent.com");
  EXPECT_EQ(form["client_secret"], "CLIENT-SECRET-XYZ");
  EXPECT_EQ(form["refresh_token"], "1//REFRESH-TOKEN-ABC");
  EXPECT_EQ(form.count("scope"), 0u);

  // Expired (past expiry minus margin): fetched again.
  clock_.Advance(absl::Minutes(59));
  EXPECT_EQ(*source->Token(), "ya29.second");
  EXPECT_EQ(server_->requests().size(), 2u);
}

TEST_F(OAuth2Test, InvalidGrantAsksForReauthorisation) {
  Script({Json(400, R"({"error":"invalid_grant","error_description":"Token has been expired or revoked."})")});
  auto source = Make(BaseOptions());
  auto token = source->Token();
  ASSERT_FALSE(token.ok());
  EXPECT_EQ(token.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(token.status().message(),
              AllOf(HasSubstr("the refresh token was revoked or expired; re-authorise the connector"),
                    HasSubstr("Token has been expired or revoked"),
                    Not(HasSubstr("REFRESH-TOKEN-ABC")), Not(HasSubstr("CLIENT-SECRET"))));
  EXPECT_EQ(server_->requests().size(), 1u);  // not retried
}

TEST_F(OAuth2Test, InvalidClientIsUnauthenticated) {
  Script({Json(401, R"({"error":"invalid_client","error_description":"The OAuth client was not found."})")});
  auto token = Make(BaseOptions())->Token();
  EXPECT_EQ(token.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(token.status().message(), HasSubstr("invalid_client"));
}

TEST_F(OAuth2Test, ServerErrorThenSuccess) {
  Script({Json(500, R"({"error":"internal_failure"})"), Json(503, ""),
          Json(200, R"({"access_token":"ya29.ok","expires_in":3600})")});
  EXPECT_EQ(*Make(BaseOptions())->Token(), "ya29.ok");
  EXPECT_EQ(server_->requests().size(), 3u);
}

TEST_F(OAuth2Test, PersistentServerErrorsGiveUp) {
  Script({Json(503, "")});
  auto options = BaseOptions();
  options.retry.max_attempts = 3;
  auto token = Make(options)->Token();
  EXPECT_EQ(token.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(token.status().message(), AllOf(HasSubstr("3 attempts"), HasSubstr("/token")));
}

TEST_F(OAuth2Test, MalformedAnswersAreInternalErrors) {
  for (const char* body : {"<html>oops</html>", R"({"token_type":"Bearer"})",
                           R"({"access_token":"x","expires_in":"soon"})",
                           R"({"access_token":"x","token_type":"MAC"})", ""}) {
    calls_ = 0;
    Script({Json(200, body)});
    auto token = Make(BaseOptions())->Token();
    EXPECT_EQ(token.status().code(), absl::StatusCode::kInternal) << body;
  }
}

TEST_F(OAuth2Test, ExpiresInAsStringAndMissing) {
  Script({Json(200, R"({"access_token":"a","expires_in":"600"})")});
  auto source = Make(BaseOptions());
  EXPECT_EQ(*source->Token(), "a");
  clock_.Advance(absl::Minutes(9));  // past 600 s minus the 2-minute margin
  calls_ = 0;
  Script({Json(200, R"({"access_token":"b"})")});
  EXPECT_EQ(*source->Token(), "b");
  clock_.Advance(absl::Minutes(50));  // default lifetime: 1 h
  EXPECT_EQ(*source->Token(), "b");
}

TEST_F(OAuth2Test, RotatedRefreshTokenIsHandedToTheCallbackAndUsed) {
  Script({Json(200, R"({"access_token":"a1","expires_in":3600,"refresh_token":"ROTATED-1"})"),
          Json(200, R"({"access_token":"a2","expires_in":3600,"refresh_token":"ROTATED-1"})")});
  std::vector<std::string> persisted;
  auto options = BaseOptions();
  options.scopes = {"https://graph.microsoft.com/Files.Read.All", "offline_access"};
  options.on_refresh_token_rotated = [&](const std::string& token) {
    persisted.push_back(token);
    return absl::OkStatus();
  };
  auto source = Make(options);
  EXPECT_EQ(*source->Token(), "a1");
  EXPECT_EQ(*source->Refresh(), "a2");
  EXPECT_THAT(persisted, ::testing::ElementsAre("ROTATED-1"));  // once: unchanged the 2nd time
  auto requests = server_->requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(testing::ParseForm(requests[1].body)["refresh_token"], "ROTATED-1");
  EXPECT_EQ(testing::ParseForm(requests[0].body)["scope"],
            "https://graph.microsoft.com/Files.Read.All offline_access");
}

TEST_F(OAuth2Test, RejectsIncompleteOptions) {
  auto options = BaseOptions();
  options.refresh_token.clear();
  EXPECT_EQ(OAuth2RefreshTokenSource::Create(transport_.get(), &clock_, options).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// The whole path: an API call gets 401 with an expired token, the client
// refreshes through the token endpoint once and retries with the new token.
TEST_F(OAuth2Test, ApiCall401RefreshesThroughTheTokenEndpoint) {
  Script({Json(200, R"({"access_token":"stale","expires_in":3600})"),
          Json(200, R"({"access_token":"NEW-ACCESS-TOKEN","expires_in":3600})")});
  server_->Handle("GET", "/gmail/v1/users/me/profile", [](const FakeHttpRequest& r) {
    if (r.headers.Get("Authorization") != "Bearer NEW-ACCESS-TOKEN") {
      return Json(401, R"({"error":{"code":401,"message":"Invalid Credentials","status":"UNAUTHENTICATED"}})");
    }
    return Json(200, R"({"emailAddress":"ann@x.com","historyId":"1"})");
  });
  std::vector<std::string> lines;
  LogSink previous = SetLogSink([&](LogLevel, const std::string& line) { lines.push_back(line); });
  auto source = Make(BaseOptions());
  RetryingHttpClient client(transport_.get(), &clock_, {.token_source = source.get()});
  HttpRequest request;
  request.url = server_->url() + "/gmail/v1/users/me/profile";
  auto response = client.Send(request);
  SetLogSink(previous);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status_code, 200);
  EXPECT_EQ(source->fetch_count(), 2);
  for (const std::string& line : lines) {
    EXPECT_THAT(line, AllOf(Not(HasSubstr("NEW-ACCESS-TOKEN")), Not(HasSubstr("REFRESH-TOKEN")),
                            Not(HasSubstr("CLIENT-SECRET"))));
  }
}

}  // namespace
}  // namespace tessera::connectors
