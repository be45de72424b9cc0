#include "connectors/http/retrying_client.h"

#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/http/curl_http_transport.h"
#include "common/http/fake_http_server.h"
#include "common/logging.h"
#include "connectors/auth/token_source.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::connectors {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

// A SimulatedClock (auto-advancing) that also records each sleep.
class RecordingClock : public Clock {
 public:
  absl::Time Now() override { return sim_.Now(); }
  void SleepFor(absl::Duration d) override {
    {
      absl::MutexLock lock(&mu_);
      sleeps_.push_back(d);
    }
    sim_.SleepFor(d);
  }
  std::vector<absl::Duration> sleeps() {
    absl::MutexLock lock(&mu_);
    return sleeps_;
  }

 private:
  SimulatedClock sim_{SimulatedClock::Options{.auto_advance = true}};
  absl::Mutex mu_;
  std::vector<absl::Duration> sleeps_;
};

// An HttpTransport that answers from a script and records the requests.
class ScriptedTransport : public HttpTransport {
 public:
  void Add(absl::StatusOr<HttpResponse> r) { script_.push_back(std::move(r)); }
  void Add(int status, std::string body = "", HttpHeaders headers = {}) {
    HttpResponse r;
    r.status_code = status;
    r.body = std::move(body);
    r.headers = std::move(headers);
    script_.push_back(std::move(r));
  }

  absl::StatusOr<HttpResponse> Send(const HttpRequest& request) override {
    requests.push_back(request);
    if (script_.empty()) return absl::InternalError("script exhausted");
    auto r = std::move(script_.front());
    script_.pop_front();
    return r;
  }
  absl::StatusOr<HttpResponse> SendStreaming(const HttpRequest& request,
                                             const StreamCallbacks& callbacks) override {
    absl::StatusOr<HttpResponse> r = Send(request);
    if (!r.ok()) return r;
    if (callbacks.on_headers && !callbacks.on_headers(r->status_code, r->headers)) {
      return absl::CancelledError("aborted");
    }
    // Deliver in two pieces to exercise reassembly.
    std::string body = std::move(r->body);
    r->body.clear();
    size_t half = body.size() / 2;
    for (absl::string_view piece : {absl::string_view(body).substr(0, half),
                                    absl::string_view(body).substr(half)}) {
      if (!piece.empty() && callbacks.on_data && !callbacks.on_data(piece)) {
        return absl::CancelledError("aborted");
      }
    }
    return r;
  }

  std::vector<HttpRequest> requests;

 private:
  std::deque<absl::StatusOr<HttpResponse>> script_;
};

std::string GoogleError(int code, absl::string_view reason) {
  return absl::StrCat(R"({"error":{"code":)", code,
                      R"(,"message":"Some message","status":"PERMISSION_DENIED","errors":[{"domain":"usageLimits","reason":")",
                      reason, R"(","message":"m"}]}})");
}

std::string HttpDate(absl::Time t) {
  return absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", t, absl::UTCTimeZone());
}

HttpRequest Get(std::string url = "https://api.example.com/v1/items?key=SECRETKEY") {
  HttpRequest r;
  r.method = "GET";
  r.url = std::move(url);
  return r;
}

class RetryingClientTest : public ::testing::Test {
 protected:
  RetryingHttpClient MakeClient(RetryPolicy policy = {}, TokenSource* tokens = nullptr,
                                double jitter = 0.5) {
    RetryingHttpClient::Options options;
    options.policy = policy;
    options.token_source = tokens;
    options.jitter = [jitter] { return jitter; };
    return RetryingHttpClient(&transport_, &clock_, std::move(options));
  }

  ScriptedTransport transport_;
  RecordingClock clock_;
};

TEST_F(RetryingClientTest, SuccessNeedsOneAttemptAndNoSleep) {
  transport_.Add(200, "ok");
  auto client = MakeClient();
  auto r = client.Send(Get());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "ok");
  EXPECT_EQ(transport_.requests.size(), 1u);
  EXPECT_TRUE(clock_.sleeps().empty());
}

TEST_F(RetryingClientTest, RetryAfterSecondsIsHonoured) {
  transport_.Add(429, R"({"error":{"code":429,"status":"RESOURCE_EXHAUSTED"}})",
                 {{"Retry-After", "7"}});
  transport_.Add(200, "ok");
  auto r = MakeClient().Send(Get());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(clock_.sleeps(), ElementsAre(absl::Seconds(7)));
}

TEST_F(RetryingClientTest, RetryAfterHttpDateIsMeasuredAgainstTheClock) {
  transport_.Add(503, "", {{"Retry-After", HttpDate(clock_.Now() + absl::Seconds(30))}});
  transport_.Add(200, "ok");
  auto r = MakeClient().Send(Get());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(clock_.sleeps(), ElementsAre(absl::Seconds(30)));
}

TEST_F(RetryingClientTest, AbsurdRetryAfterIsCapped) {
  RetryPolicy policy;
  policy.max_retry_after = absl::Minutes(2);
  policy.max_total_time = absl::Hours(1);
  transport_.Add(429, "", {{"Retry-After", "86400"}});
  transport_.Add(200, "ok");
  auto r = MakeClient(policy).Send(Get());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(clock_.sleeps(), ElementsAre(absl::Minutes(2)));
}

TEST(ParseRetryAfterTest, Forms) {
  const absl::Time now = absl::FromUnixSeconds(1'700'000'000);
  const absl::Duration cap = absl::Minutes(5);
  EXPECT_EQ(ParseRetryAfter("120", now, cap), absl::Seconds(120));
  EXPECT_EQ(ParseRetryAfter(" 0 ", now, cap), absl::ZeroDuration());
  EXPECT_EQ(ParseRetryAfter("999999", now, cap), cap);
  EXPECT_EQ(ParseRetryAfter("99999999999999999999999", now, cap), cap);
  // 2023-11-14T22:13:20Z is a Tuesday.
  EXPECT_EQ(ParseRetryAfter("Tue, 14 Nov 2023 22:14:00 GMT", now, cap), absl::Seconds(40));
  EXPECT_EQ(ParseRetryAfter("Tuesday, 14-Nov-23 22:14:00 GMT", now, cap), absl::Seconds(40));
  EXPECT_EQ(ParseRetryAfter("Tue Nov 14 22:14:00 2023", now, cap), absl::Seconds(40));
  EXPECT_EQ(ParseRetryAfter("Tue, 14 Nov 2023 20:00:00 GMT", now, cap), absl::ZeroDuration());
  EXPECT_EQ(ParseRetryAfter("Wed, 15 Nov 2023 22:13:20 GMT", now, cap), cap);
  EXPECT_EQ(ParseRetryAfter("-5", now, cap), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("soon", now, cap), std::nullopt);
  EXPECT_EQ(ParseRetryAfter("", now, cap), std::nullopt);
}

TEST_F(RetryingClientTest, UnparseableRetryAfterFallsBackToBackoff) {
  RetryPolicy policy;
  policy.base_delay = absl::Seconds(2);
  transport_.Add(503, "", {{"Retry-After", "later"}});
  transport_.Add(200, "ok");
  ASSERT_TRUE(MakeClient(policy, nullptr, 0.5).Send(Get()).ok());
  EXPECT_THAT(clock_.sleeps(), ElementsAre(absl::Seconds(1)));
}

TEST_F(RetryingClientTest, GoogleRateLimit403sAreRetried) {
  transport_.Add(403, GoogleError(403, "userRateLimitExceeded"));
  transport_.Add(403, GoogleError(403, "rateLimitExceeded"));
  transport_.Add(200, "ok");
  auto r = MakeClient().Send(Get());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status_code, 200);
  EXPECT_EQ(transport_.requests.size(), 3u);
}

TEST_F(RetryingClientTest, OtherGoogle403sAreFinal) {
  transport_.Add(403, GoogleError(403, "insufficientPermissions"));
  auto r = MakeClient().Send(Get());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status_code, 403);
  EXPECT_EQ(transport_.requests.size(), 1u);
  absl::Status s = CheckHttpStatus(*r, "GET", transport_.requests[0].url);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(s.message(), HasSubstr("insufficientPermissions"));
  EXPECT_THAT(s.message(), Not(HasSubstr("SECRETKEY")));
}

TEST_F(RetryingClientTest, GraphThrottlingWithRetryAfter) {
  transport_.Add(429,
                 R"({"error":{"code":"TooManyRequests","message":"Please retry again later."}})",
                 {{"Retry-After", "3"}});
  transport_.Add(503, R"({"error":{"code":"serviceNotAvailable","message":"x"}})",
                 {{"Retry-After", "4"}});
  transport_.Add(200, "{}");
  auto r = MakeClient().Send(Get("https://graph.microsoft.com/v1.0/drives/x/root/delta"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(clock_.sleeps(), ElementsAre(absl::Seconds(3), absl::Seconds(4)));
  EXPECT_EQ(ErrorReason(R"({"error":{"code":"TooManyRequests"}})"), "TooManyRequests");
}

TEST_F(RetryingClientTest, ServerErrorsRetriedForIdempotentRequestsOnly) {
  for (int status : {500, 502, 504}) {
    transport_.Add(status);
  }
  transport_.Add(200, "ok");
  ASSERT_TRUE(MakeClient().Send(Get()).ok());
  EXPECT_EQ(transport_.requests.size(), 4u);

  // A POST that failed with 500 may have been applied: not retried.
  HttpRequest post = Get();
  post.method = "POST";
  transport_.Add(500, "boom");
  auto r = MakeClient().Send(post);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status_code, 500);
  EXPECT_EQ(transport_.requests.size(), 5u);

  // ... unless the caller says it is safe.
  transport_.Add(500);
  transport_.Add(200);
  r = MakeClient().Send(post, {.idempotent = true});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status_code, 200);

  // 503 and 429 mean "not processed": retried even for POST.
  transport_.Add(503);
  transport_.Add(429);
  transport_.Add(201);
  r = MakeClient().Send(post);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status_code, 201);
}

TEST_F(RetryingClientTest, OtherStatusesAreReturnedUntouched) {
  for (int status : {400, 404, 409, 501}) transport_.Add(status);
  auto client = MakeClient();
  for (int status : {400, 404, 409, 501}) {
    auto r = client.Send(Get());
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->status_code, status);
  }
  EXPECT_EQ(transport_.requests.size(), 4u);
  EXPECT_TRUE(clock_.sleeps().empty());
}

TEST_F(RetryingClientTest, BackoffIsExponentialAndCapped) {
  RetryPolicy policy;
  policy.max_attempts = 7;
  policy.base_delay = absl::Seconds(1);
  policy.max_delay = absl::Seconds(5);
  for (int i = 0; i < 6; ++i) transport_.Add(503);
  transport_.Add(200);
  ASSERT_TRUE(MakeClient(policy, nullptr, /*jitter=*/1.0).Send(Get()).ok());
  EXPECT_THAT(clock_.sleeps(), ElementsAre(absl::Seconds(1), absl::Seconds(2), absl::Seconds(4),
                                           absl::Seconds(5), absl::Seconds(5), absl::Seconds(5)));
}

TEST_F(RetryingClientTest, FullJitterStaysWithinBounds) {
  RetryPolicy policy;
  policy.max_attempts = 8;
  policy.base_delay = absl::Milliseconds(100);
  policy.max_delay = absl::Seconds(3);
  RetryingHttpClient::Options options;
  options.policy = policy;  // default (random) jitter
  RetryingHttpClient client(&transport_, &clock_, options);
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 7; ++i) transport_.Add(503);
    transport_.Add(200);
    ASSERT_TRUE(client.Send(Get()).ok());
  }
  std::vector<absl::Duration> sleeps = clock_.sleeps();
  ASSERT_EQ(sleeps.size(), 140u);
  bool any_below_half = false;
  for (size_t i = 0; i < sleeps.size(); ++i) {
    const int retry = static_cast<int>(i % 7) + 1;
    const absl::Duration ceiling =
        std::min(policy.max_delay, policy.base_delay * (int64_t{1} << (retry - 1)));
    EXPECT_GE(sleeps[i], absl::ZeroDuration());
    EXPECT_LE(sleeps[i], ceiling) << "retry " << retry;
    if (sleeps[i] < ceiling / 2) any_below_half = true;
  }
  EXPECT_TRUE(any_below_half) << "jitter should spread the waits";
}

TEST_F(RetryingClientTest, GivesUpWithSpecificCodeAndUsefulMessage) {
  RetryPolicy policy;
  policy.max_attempts = 4;
  for (int i = 0; i < 4; ++i) transport_.Add(503);
  auto r = MakeClient(policy).Send(Get());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(),
              AllOf(HasSubstr("GET https://api.example.com/v1/items?<redacted>"),
                    HasSubstr("4 attempts"), HasSubstr("HTTP 503"),
                    Not(HasSubstr("SECRETKEY"))));
  EXPECT_EQ(transport_.requests.size(), 4u);

  for (int i = 0; i < 4; ++i) transport_.Add(429);
  EXPECT_EQ(MakeClient(policy).Send(Get()).status().code(),
            absl::StatusCode::kResourceExhausted);
  for (int i = 0; i < 4; ++i) transport_.Add(403, GoogleError(403, "userRateLimitExceeded"));
  auto limited = MakeClient(policy).Send(Get());
  EXPECT_EQ(limited.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(limited.status().message(), HasSubstr("userRateLimitExceeded"));
  for (int i = 0; i < 4; ++i) transport_.Add(500);
  EXPECT_EQ(MakeClient(policy).Send(Get()).status().code(), absl::StatusCode::kInternal);
  for (int i = 0; i < 4; ++i) transport_.Add(504);
  EXPECT_EQ(MakeClient(policy).Send(Get()).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST_F(RetryingClientTest, GivesUpWhenTheWaitWouldPassTheTotalBudget) {
  RetryPolicy policy;
  policy.max_total_time = absl::Seconds(60);
  transport_.Add(429, "", {{"Retry-After", "120"}});
  auto r = MakeClient(policy).Send(Get());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(r.status().message(), HasSubstr("max total time"));
  EXPECT_TRUE(clock_.sleeps().empty());
}

TEST_F(RetryingClientTest, AttemptTimeoutIsCutToTheRemainingBudget) {
  RetryPolicy policy;
  policy.max_total_time = absl::Seconds(25);
  RetryingHttpClient::Options options;
  options.policy = policy;
  options.attempt_timeout = absl::Seconds(20);
  options.jitter = [] { return 0.0; };
  RetryingHttpClient client(&transport_, &clock_, options);
  transport_.Add(429, "", {{"Retry-After", "10"}});
  transport_.Add(200);
  ASSERT_TRUE(client.Send(Get()).ok());
  ASSERT_EQ(transport_.requests.size(), 2u);
  EXPECT_EQ(transport_.requests[0].timeout, absl::Seconds(20));
  EXPECT_EQ(transport_.requests[1].timeout, absl::Seconds(15));
}

TEST_F(RetryingClientTest, TransportErrorsRetriedOnlyWhenIdempotent) {
  transport_.Add(absl::UnavailableError("connection reset"));
  transport_.Add(absl::DeadlineExceededError("timed out"));
  transport_.Add(200);
  ASSERT_TRUE(MakeClient().Send(Get()).ok());
  EXPECT_EQ(transport_.requests.size(), 3u);

  HttpRequest post = Get();
  post.method = "POST";
  transport_.Add(absl::UnavailableError("connection reset"));
  auto r = MakeClient().Send(post);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(transport_.requests.size(), 4u);

  // Errors that retrying cannot fix are surfaced at once.
  transport_.Add(absl::InvalidArgumentError("bad url"));
  EXPECT_EQ(MakeClient().Send(Get()).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(transport_.requests.size(), 5u);

  RetryPolicy policy;
  policy.max_attempts = 2;
  transport_.Add(absl::UnavailableError("connection refused"));
  transport_.Add(absl::UnavailableError("connection refused"));
  r = MakeClient(policy).Send(Get());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), AllOf(HasSubstr("2 attempts"), HasSubstr("refused")));
}

class CountingTokenSource : public TokenSource {
 public:
  absl::StatusOr<std::string> Token() override { return absl::StrCat("tok", generation_); }
  absl::StatusOr<std::string> Refresh() override {
    ++refreshes;
    if (!refresh_error.ok()) return refresh_error;
    ++generation_;
    return absl::StrCat("tok", generation_);
  }
  int refreshes = 0;
  absl::Status refresh_error;

 private:
  int generation_ = 1;
};

std::string AuthOf(const HttpRequest& r) {
  std::string value;
  for (const auto& [name, v] : r.headers) {
    if (absl::EqualsIgnoreCase(name, "authorization")) value = v;
  }
  return value;
}

TEST_F(RetryingClientTest, Unauthorized401RefreshesOnceAndRetries) {
  CountingTokenSource tokens;
  transport_.Add(401, R"({"error":{"code":401,"status":"UNAUTHENTICATED"}})");
  transport_.Add(200, "ok");
  HttpRequest request = Get();
  request.headers.emplace_back("authorization", "Bearer stale");
  auto r = MakeClient({}, &tokens).Send(request);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(tokens.refreshes, 1);
  ASSERT_EQ(transport_.requests.size(), 2u);
  EXPECT_EQ(AuthOf(transport_.requests[0]), "Bearer tok1");
  EXPECT_EQ(AuthOf(transport_.requests[1]), "Bearer tok2");
  EXPECT_TRUE(clock_.sleeps().empty());
}

TEST_F(RetryingClientTest, SecondUnauthorizedSurfacesUnauthenticated) {
  CountingTokenSource tokens;
  transport_.Add(401);
  transport_.Add(401, R"({"error":{"code":401,"message":"Invalid Credentials"}})");
  auto r = MakeClient({}, &tokens).Send(Get());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(r.status().message(), AllOf(HasSubstr("refreshed"), HasSubstr("Invalid Credentials"),
                                          Not(HasSubstr("tok2"))));
  EXPECT_EQ(tokens.refreshes, 1);
  EXPECT_EQ(transport_.requests.size(), 2u);
}

TEST_F(RetryingClientTest, FailedRefreshSurfacesItsError) {
  CountingTokenSource tokens;
  tokens.refresh_error = absl::FailedPreconditionError("re-authorise the connector");
  transport_.Add(401);
  auto r = MakeClient({}, &tokens).Send(Get());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("re-authorise"));
}

TEST_F(RetryingClientTest, Unauthorized401WithoutTokenSourceIsReturned) {
  transport_.Add(401);
  auto r = MakeClient().Send(Get());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->status_code, 401);
}

TEST_F(RetryingClientTest, BodySourceIsReplayedOnEveryAttempt) {
  transport_.Add(503);
  transport_.Add(absl::UnavailableError("reset"));
  transport_.Add(200);
  int opened = 0;
  HttpRequest put = Get();
  put.method = "PUT";
  RetryingHttpClient::CallOptions call;
  call.body_source = [&]() -> absl::StatusOr<std::string> {
    ++opened;
    return std::string("payload-bytes");
  };
  ASSERT_TRUE(MakeClient().Send(put, call).ok());
  EXPECT_EQ(opened, 3);
  for (const HttpRequest& r : transport_.requests) EXPECT_EQ(r.body, "payload-bytes");

  call.body_source = []() -> absl::StatusOr<std::string> {
    return absl::NotFoundError("upload file vanished");
  };
  EXPECT_EQ(MakeClient().Send(put, call).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RetryingClientTest, StreamingCallbacksSeeOnlyTheFinalAttempt) {
  transport_.Add(503, "unavailable-body");
  transport_.Add(403, GoogleError(403, "rateLimitExceeded"));
  transport_.Add(200, "final body");
  std::vector<int> statuses;
  std::string body;
  StreamCallbacks callbacks;
  callbacks.on_headers = [&](int status, const HttpHeaders&) {
    statuses.push_back(status);
    return true;
  };
  callbacks.on_data = [&](absl::string_view chunk) {
    body.append(chunk.data(), chunk.size());
    return true;
  };
  auto r = MakeClient().SendStreaming(Get(), callbacks);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(statuses, ElementsAre(200));
  EXPECT_EQ(body, "final body");

  // A held-back error that turns out final is delivered, body included.
  statuses.clear();
  body.clear();
  transport_.Add(403, GoogleError(403, "insufficientPermissions"));
  r = MakeClient().SendStreaming(Get(), callbacks);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(statuses, ElementsAre(403));
  EXPECT_THAT(body, HasSubstr("insufficientPermissions"));
}

TEST(CheckHttpStatusTest, Codes) {
  auto code = [](int status) {
    HttpResponse r;
    r.status_code = status;
    return CheckHttpStatus(r, "GET", "https://x/y").code();
  };
  EXPECT_EQ(code(200), absl::StatusCode::kOk);
  EXPECT_EQ(code(204), absl::StatusCode::kOk);
  EXPECT_EQ(code(400), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(401), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(code(404), absl::StatusCode::kNotFound);
  EXPECT_EQ(code(410), absl::StatusCode::kNotFound);
  EXPECT_EQ(code(412), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(code(429), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(code(503), absl::StatusCode::kUnavailable);
  EXPECT_EQ(RedactUrl("https://user:pw@host/p?access_token=abc#frag"), "https://host/p?<redacted>");
}

// End to end through libcurl and a real socket.
class RetryingClientCurlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto server = FakeHttpServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    auto transport = CurlHttpTransport::Create({});
    ASSERT_TRUE(transport.ok()) << transport.status();
    transport_ = *std::move(transport);
  }

  std::unique_ptr<FakeHttpServer> server_;
  std::unique_ptr<CurlHttpTransport> transport_;
  RecordingClock clock_;
};

TEST_F(RetryingClientCurlTest, RetryAfterDateThenPostBodyReplayed) {
  absl::Mutex mu;
  int calls = 0;
  const absl::Time retry_at = clock_.Now() + absl::Seconds(12);
  server_->Handle("POST", "/upload", [&](const FakeHttpRequest&) {
    absl::MutexLock lock(&mu);
    FakeHttpResponse response;
    if (++calls == 1) {
      response.status = 503;
      response.headers.Add("Retry-After", HttpDate(retry_at));
    } else {
      response.body = "stored";
    }
    return response;
  });
  RetryingHttpClient::Options options;
  RetryingHttpClient client(transport_.get(), &clock_, options);
  HttpRequest post;
  post.method = "POST";
  post.url = server_->url() + "/upload";
  post.body = std::string(100000, 'x') + "end";
  auto r = client.Send(post);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "stored");
  EXPECT_THAT(clock_.sleeps(), ElementsAre(absl::Seconds(12)));
  std::vector<FakeHttpRequest> seen = server_->requests();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].body, post.body);
  EXPECT_EQ(seen[1].body, post.body);
}

TEST_F(RetryingClientCurlTest, ConnectionDroppedMidBodyIsRetriedForGet) {
  absl::Mutex mu;
  int calls = 0;
  server_->Handle("GET", "/file", [&](const FakeHttpRequest&) {
    absl::MutexLock lock(&mu);
    FakeHttpResponse response;
    response.body = "0123456789abcdef";
    response.close_mid_body = ++calls == 1;
    return response;
  });
  RetryingHttpClient client(transport_.get(), &clock_, {});
  auto r = client.Send(Get(server_->url() + "/file"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "0123456789abcdef");
  EXPECT_EQ(server_->requests().size(), 2u);
}

TEST_F(RetryingClientCurlTest, SlowAttemptTimesOutAndIsRetried) {
  absl::Mutex mu;
  int calls = 0;
  server_->Handle("GET", "/slow", [&](const FakeHttpRequest&) {
    absl::MutexLock lock(&mu);
    FakeHttpResponse response;
    response.body = "done";
    if (++calls == 1) response.delay_before_headers = absl::Seconds(5);
    return response;
  });
  RetryingHttpClient::Options options;
  options.attempt_timeout = absl::Milliseconds(300);
  RetryingHttpClient client(transport_.get(), &clock_, options);
  auto r = client.Send(Get(server_->url() + "/slow"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->body, "done");
}

TEST_F(RetryingClientCurlTest, RetriesAreLoggedWithoutSecrets) {
  std::vector<std::string> lines;
  absl::Mutex mu;
  LogSink previous = SetLogSink([&](LogLevel, const std::string& line) {
    absl::MutexLock lock(&mu);
    lines.push_back(line);
  });
  int calls = 0;
  server_->Handle("GET", "/x", [&](const FakeHttpRequest&) {
    FakeHttpResponse response;
    response.status = ++calls == 1 ? 429 : 200;
    return response;
  });
  StaticTokenSource tokens("SECRET-ACCESS-TOKEN");
  RetryingHttpClient::Options options;
  options.token_source = &tokens;
  RetryingHttpClient client(transport_.get(), &clock_, options);
  auto r = client.Send(Get(server_->url() + "/x?api_key=SECRETKEY"));
  SetLogSink(previous);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(server_->requests()[1].headers.Get("Authorization"), "Bearer SECRET-ACCESS-TOKEN");
  absl::MutexLock lock(&mu);
  ASSERT_FALSE(lines.empty());
  for (const std::string& line : lines) {
    EXPECT_THAT(line, AllOf(Not(HasSubstr("SECRETKEY")), Not(HasSubstr("SECRET-ACCESS-TOKEN"))));
  }
}

}  // namespace
}  // namespace tessera::connectors
