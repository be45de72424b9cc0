#include "common/http/curl_http_transport.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/http/fake_http_server.h"
#include "common/http/http_transport.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::Optional;

constexpr const char* kProxyVariables[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                           "all_proxy",  "ALL_PROXY",  "no_proxy",    "NO_PROXY"};

// Saves the proxy environment, clears it, and restores it on destruction, so
// no test depends on (or leaks) the machine's proxy settings.
class ScopedProxyEnv {
 public:
  ScopedProxyEnv() {
    for (const char* name : kProxyVariables) {
      const char* value = getenv(name);
      saved_.emplace_back(name,
                          value == nullptr ? std::nullopt : std::optional<std::string>(value));
      unsetenv(name);
    }
  }
  ~ScopedProxyEnv() {
    for (const auto& [name, value] : saved_) {
      if (value.has_value()) {
        setenv(name.c_str(), value->c_str(), 1);
      } else {
        unsetenv(name.c_str());
      }
    }
  }

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

FakeHttpResponse Text(std::string body, int status = 200) {
  FakeHttpResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

class CurlHttpTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<FakeHttpServer>> server = FakeHttpServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    transport_ = MakeTransport({});
    ASSERT_NE(transport_, nullptr);
  }

  static std::unique_ptr<CurlHttpTransport> MakeTransport(CurlHttpTransport::Options options) {
    absl::StatusOr<std::unique_ptr<CurlHttpTransport>> transport =
        CurlHttpTransport::Create(std::move(options));
    EXPECT_TRUE(transport.ok()) << transport.status();
    return transport.ok() ? std::move(*transport) : nullptr;
  }

  HttpRequest Get(absl::string_view path) const {
    HttpRequest request;
    request.url = absl::StrCat(server_->url(), path);
    request.timeout = absl::Seconds(10);  // Only a safety net.
    return request;
  }

  ScopedProxyEnv proxy_env_;
  std::unique_ptr<FakeHttpServer> server_;
  std::unique_ptr<CurlHttpTransport> transport_;
};

TEST_F(CurlHttpTransportTest, GetRoundTripsHeadersQueryAndBody) {
  server_->Handle("GET", "/hello", [](const FakeHttpRequest& request) {
    FakeHttpResponse response = Text(absl::StrCat("hi ", request.query));
    response.headers.Add("Content-Type", "text/plain");
    response.headers.Add("X-Echo", request.headers.Get("X-Test").value_or("none"));
    return response;
  });
  HttpRequest request = Get("/hello?name=ann");
  request.headers = {{"X-Test", "abc"}, {"Authorization", "Bearer t0k3n"}};

  absl::StatusOr<HttpResponse> response = transport_->Send(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status_code, 200);
  EXPECT_EQ(response->body, "hi name=ann");
  EXPECT_THAT(response->headers.Get("X-Echo"), Optional(std::string("abc")));
  EXPECT_THAT(response->headers.Get("Content-Type"), Optional(std::string("text/plain")));

  std::vector<FakeHttpRequest> requests = server_->requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].method, "GET");
  EXPECT_EQ(requests[0].path, "/hello");
  EXPECT_EQ(requests[0].query, "name=ann");
  EXPECT_TRUE(requests[0].body.empty());
  EXPECT_THAT(requests[0].headers.Get("Authorization"), Optional(std::string("Bearer t0k3n")));
  EXPECT_THAT(requests[0].headers.Get("User-Agent"), Optional(std::string("tessera/0.1")));
  EXPECT_THAT(requests[0].headers.Get("Accept-Encoding"), Optional(HasSubstr("gzip")));
}

TEST_F(CurlHttpTransportTest, PostRoundTripsBodyAndSendsOnlyCallerContentType) {
  server_->Handle("POST", "/token", [](const FakeHttpRequest& request) {
    FakeHttpResponse response = Text(absl::StrCat("{\"echo\":\"", request.body, "\"}"), 201);
    response.headers.Add("Content-Type", "application/json");
    return response;
  });
  HttpRequest request = Get("/token");
  request.method = "POST";
  request.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
  request.body = "grant_type=refresh_token&refresh_token=r";
  absl::StatusOr<HttpResponse> response = transport_->Send(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status_code, 201);
  EXPECT_EQ(response->body, "{\"echo\":\"grant_type=refresh_token&refresh_token=r\"}");

  // A POST without a Content-Type gets none added, and a large body is sent
  // without an "Expect: 100-continue" round trip.
  request.headers.clear();
  request.body = std::string(2 << 20, 'x');
  response = transport_->Send(request);
  ASSERT_TRUE(response.ok()) << response.status();
  std::vector<FakeHttpRequest> requests = server_->requests();
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_THAT(requests[0].headers.Get("Content-Type"),
              Optional(std::string("application/x-www-form-urlencoded")));
  EXPECT_EQ(requests[1].body.size(), 2u << 20);
  EXPECT_FALSE(requests[1].headers.Contains("Content-Type"));
  EXPECT_FALSE(requests[1].headers.Contains("Expect"));
}

TEST_F(CurlHttpTransportTest, OtherMethodsSendTheirBodies) {
  server_->Handle("*", "/r", [](const FakeHttpRequest& request) {
    return Text(absl::StrCat(request.method, ":", request.body));
  });
  for (const char* method : {"PUT", "PATCH", "DELETE"}) {
    HttpRequest request = Get("/r");
    request.method = method;
    request.body = "b";
    absl::StatusOr<HttpResponse> response = transport_->Send(request);
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->body, absl::StrCat(method, ":b"));
  }
  HttpRequest head = Get("/r");
  head.method = "HEAD";
  absl::StatusOr<HttpResponse> response = transport_->Send(head);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status_code, 200);
  EXPECT_EQ(response->body, "");
  EXPECT_EQ(server_->requests().back().method, "HEAD");
}

TEST_F(CurlHttpTransportTest, ErrorStatusesAreResponsesNotErrors) {
  server_->Handle("GET", "/boom", [](const FakeHttpRequest&) {
    FakeHttpResponse response = Text("internal oops", 503);
    response.headers.Add("Retry-After", "7");
    return response;
  });
  absl::StatusOr<HttpResponse> missing = transport_->Send(Get("/missing"));
  ASSERT_TRUE(missing.ok()) << missing.status();
  EXPECT_EQ(missing->status_code, 404);

  absl::StatusOr<HttpResponse> boom = transport_->Send(Get("/boom"));
  ASSERT_TRUE(boom.ok()) << boom.status();
  EXPECT_EQ(boom->status_code, 503);
  EXPECT_EQ(boom->body, "internal oops");
  EXPECT_THAT(boom->headers.Get("retry-after"), Optional(std::string("7")));
}

TEST_F(CurlHttpTransportTest, ResponseHeaderLookupIsCaseInsensitive) {
  server_->Handle("GET", "/h", [](const FakeHttpRequest&) {
    FakeHttpResponse response = Text("");
    response.headers.Add("X-Custom-Header", "v1");
    response.headers.Add("Set-Cookie", "a=1");
    response.headers.Add("set-cookie", "b=2");
    return response;
  });
  absl::StatusOr<HttpResponse> response = transport_->Send(Get("/h"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_THAT(response->headers.Get("x-custom-header"), Optional(std::string("v1")));
  EXPECT_THAT(response->headers.Get("X-CUSTOM-HEADER"), Optional(std::string("v1")));
  EXPECT_THAT(response->headers.GetAll("SET-COOKIE"), ElementsAre("a=1", "b=2"));
  EXPECT_EQ(response->headers.Get("X-Absent"), std::nullopt);
}

TEST_F(CurlHttpTransportTest, TimeoutIsDeadlineExceeded) {
  server_->Handle("GET", "/slow", [](const FakeHttpRequest&) {
    FakeHttpResponse response = Text("late");
    response.delay_before_headers = absl::Seconds(30);  // Cut short by Stop().
    return response;
  });
  HttpRequest request = Get("/slow");
  request.timeout = absl::Milliseconds(200);
  absl::Time start = absl::Now();
  absl::StatusOr<HttpResponse> response = transport_->Send(request);
  absl::Duration elapsed = absl::Now() - start;
  EXPECT_EQ(response.status().code(), absl::StatusCode::kDeadlineExceeded) << response.status();
  EXPECT_GE(elapsed, absl::Milliseconds(150));
  EXPECT_LT(elapsed, absl::Seconds(3));
}

TEST_F(CurlHttpTransportTest, ConnectionRefusedIsUnavailable) {
  // A socket bound but not listening: connecting to its port is refused, and
  // no other process can take the port while we hold it.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  HttpRequest request;
  request.url = absl::StrCat("http://127.0.0.1:", ntohs(addr.sin_port), "/x");
  absl::StatusOr<HttpResponse> response = transport_->Send(request);
  close(fd);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable) << response.status();
}

TEST_F(CurlHttpTransportTest, ResponseLargerThanLimitIsResourceExhausted) {
  server_->Handle("GET", "/big",
                  [](const FakeHttpRequest&) { return Text(std::string(1000, 'b')); });
  server_->Handle("GET", "/big-chunked", [](const FakeHttpRequest&) {
    FakeHttpResponse response;
    response.chunks = {std::string(60, 'c'), std::string(60, 'c')};  // Size unknown upfront.
    return response;
  });
  CurlHttpTransport::Options options;
  options.max_response_bytes = 100;
  std::unique_ptr<CurlHttpTransport> small = MakeTransport(options);
  ASSERT_NE(small, nullptr);
  EXPECT_EQ(small->Send(Get("/big")).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(small->Send(Get("/big-chunked")).status().code(), absl::StatusCode::kResourceExhausted);

  options.max_response_bytes = 1000;  // Exactly at the limit is fine.
  std::unique_ptr<CurlHttpTransport> exact = MakeTransport(options);
  absl::StatusOr<HttpResponse> response = exact->Send(Get("/big"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body.size(), 1000u);

  // Streaming is not limited: nothing is accumulated.
  size_t streamed = 0;
  StreamCallbacks callbacks;
  callbacks.on_data = [&streamed](absl::string_view chunk) {
    streamed += chunk.size();
    return true;
  };
  ASSERT_TRUE(small->SendStreaming(Get("/big"), callbacks).ok());
  EXPECT_EQ(streamed, 1000u);
}

// A server dying mid-body is UNAVAILABLE (retryable), never a crash or a
// truncated success.
TEST_F(CurlHttpTransportTest, ServerClosingMidBodyIsUnavailable) {
  server_->Handle("GET", "/length", [](const FakeHttpRequest&) {
    FakeHttpResponse response = Text(std::string(10000, 'x'));
    response.close_mid_body = true;
    return response;
  });
  server_->Handle("GET", "/chunked", [](const FakeHttpRequest&) {
    FakeHttpResponse response;
    response.chunks = {"one", "two", "three", "four"};
    response.close_mid_body = true;
    return response;
  });
  absl::StatusOr<HttpResponse> response = transport_->Send(Get("/length"));
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable) << response.status();
  response = transport_->Send(Get("/chunked"));
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable) << response.status();
  // The transport recovers: the next call on a fresh connection works.
  response = transport_->Send(Get("/missing"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status_code, 404);
}

// Server-Sent-Events style: each event arrives in its own on_data call. The
// server writes event i only after the client has seen event i-1, so the
// split is deterministic.
TEST_F(CurlHttpTransportTest, StreamingDeliversChunksIncrementally) {
  absl::Mutex mu;
  std::string received;  // Guarded by mu.
  const std::vector<std::string> events = {"data: one\n\n", "data: two\n\n", "data: three\n\n"};
  auto events_seen = [&]() {
    size_t count = 0;
    for (size_t pos = received.find("\n\n"); pos != std::string::npos;
         pos = received.find("\n\n", pos + 2)) {
      ++count;
    }
    return count;
  };
  server_->Handle("GET", "/sse", [&](const FakeHttpRequest&) {
    FakeHttpResponse response;
    response.headers.Add("Content-Type", "text/event-stream");
    response.chunks = events;
    response.before_chunk = [&](size_t index) {
      auto ready = [&]() { return events_seen() >= index; };
      absl::MutexLock lock(&mu);
      mu.AwaitWithTimeout(absl::Condition(&ready), absl::Seconds(5));
    };
    return response;
  });

  int header_calls = 0;
  int data_calls = 0;
  StreamCallbacks callbacks;
  callbacks.on_headers = [&](int status, const HttpHeaders& headers) {
    ++header_calls;
    EXPECT_EQ(status, 200);
    EXPECT_THAT(headers.Get("content-type"), Optional(std::string("text/event-stream")));
    EXPECT_EQ(data_calls, 0);
    return true;
  };
  callbacks.on_data = [&](absl::string_view chunk) {
    ++data_calls;
    absl::MutexLock lock(&mu);
    received.append(chunk.data(), chunk.size());
    return true;
  };
  absl::StatusOr<HttpResponse> response = transport_->SendStreaming(Get("/sse"), callbacks);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status_code, 200);
  EXPECT_TRUE(response->body.empty());
  EXPECT_THAT(response->headers.Get("Content-Type"), Optional(std::string("text/event-stream")));
  EXPECT_EQ(header_calls, 1);
  EXPECT_GE(data_calls, 3);
  absl::MutexLock lock(&mu);
  EXPECT_EQ(received, "data: one\n\ndata: two\n\ndata: three\n\n");
}

TEST_F(CurlHttpTransportTest, StreamingCallbackReturningFalseIsCancelled) {
  server_->Handle("GET", "/sse", [](const FakeHttpRequest&) {
    FakeHttpResponse response;
    response.chunks = {"data: 1\n\n", "data: 2\n\n", "data: 3\n\n"};
    response.chunk_delay = absl::Milliseconds(20);
    return response;
  });
  int data_calls = 0;
  StreamCallbacks stop_on_data;
  stop_on_data.on_data = [&data_calls](absl::string_view) {
    ++data_calls;
    return false;  // The caller went away.
  };
  absl::StatusOr<HttpResponse> response = transport_->SendStreaming(Get("/sse"), stop_on_data);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kCancelled) << response.status();
  EXPECT_EQ(data_calls, 1);

  StreamCallbacks stop_on_headers;
  stop_on_headers.on_headers = [](int, const HttpHeaders&) { return false; };
  stop_on_headers.on_data = [&data_calls](absl::string_view) {
    ++data_calls;
    return true;
  };
  response = transport_->SendStreaming(Get("/sse"), stop_on_headers);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kCancelled) << response.status();
  EXPECT_EQ(data_calls, 1);  // No data after an abort in on_headers.

  // Also for a body-less response, where headers are the only event.
  response = transport_->SendStreaming(Get("/missing"), stop_on_headers);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kCancelled) << response.status();
}

TEST_F(CurlHttpTransportTest, SequentialRequestsReuseOneConnection) {
  server_->Handle("GET", "/k", [](const FakeHttpRequest&) { return Text("k"); });
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<HttpResponse> response = transport_->Send(Get("/k"));
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->body, "k");
  }
  EXPECT_EQ(server_->connections_accepted(), 1);
}

TEST_F(CurlHttpTransportTest, ConcurrentRequestsAllSucceed) {
  server_->Handle("GET", "/c/*", [](const FakeHttpRequest& request) {
    return Text(absl::StrCat("echo ", request.path));
  });
  constexpr int kThreads = 8;
  constexpr int kRequestsPerThread = 20;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRequestsPerThread; ++i) {
        std::string path = absl::StrCat("/c/", t, "/", i);
        absl::StatusOr<HttpResponse> response = transport_->Send(Get(path));
        if (response.ok() && response->status_code == 200 &&
            response->body == absl::StrCat("echo ", path)) {
          ++ok;
        } else {
          ADD_FAILURE() << path << ": " << response.status();
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(ok.load(), kThreads * kRequestsPerThread);
  EXPECT_EQ(server_->requests().size(), static_cast<size_t>(kThreads * kRequestsPerThread));
  // Handles (and their connections) are pooled, not one per request.
  EXPECT_LE(server_->connections_accepted(), 2 * kThreads);
}

TEST_F(CurlHttpTransportTest, HonoursHttpProxyEnvironment) {
  absl::StatusOr<std::unique_ptr<FakeHttpServer>> proxy = FakeHttpServer::Start();
  ASSERT_TRUE(proxy.ok()) << proxy.status();
  (*proxy)->Handle("*", "*", [](const FakeHttpRequest& request) {
    return Text(absl::StrCat("via proxy: ", request.raw_target));
  });
  // proxy_env_ restores the original environment when the test ends.
  ASSERT_EQ(setenv("http_proxy", (*proxy)->url().c_str(), 1), 0);
  HttpRequest request;
  request.url = "http://example.invalid/x?q=1";
  request.timeout = absl::Seconds(10);
  absl::StatusOr<HttpResponse> response = transport_->Send(request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "via proxy: http://example.invalid/x?q=1");
  std::vector<FakeHttpRequest> seen = (*proxy)->requests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].raw_target, "http://example.invalid/x?q=1");
  EXPECT_EQ(seen[0].path, "/x");
  EXPECT_THAT(seen[0].headers.Get("Host"), Optional(std::string("example.invalid")));

  // no_proxy exempts a host: the request goes straight to the fake server.
  ASSERT_EQ(setenv("no_proxy", "127.0.0.1", 1), 0);
  response = transport_->Send(Get("/direct"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status_code, 404);
  EXPECT_EQ(server_->requests().size(), 1u);
  EXPECT_EQ((*proxy)->requests().size(), 1u);
}

TEST_F(CurlHttpTransportTest, InvalidRequestsAreInvalidArgument) {
  auto code = [this](HttpRequest request) { return transport_->Send(request).status().code(); };
  HttpRequest request;
  request.url = "ftp://127.0.0.1/file";
  EXPECT_EQ(code(request), absl::StatusCode::kInvalidArgument);
  request.url = "file:///etc/passwd";
  EXPECT_EQ(code(request), absl::StatusCode::kInvalidArgument);
  request.url = "not a url";
  EXPECT_EQ(code(request), absl::StatusCode::kInvalidArgument);
  request.url = "";
  EXPECT_EQ(code(request), absl::StatusCode::kInvalidArgument);
  request.url = "http://";
  EXPECT_EQ(code(request), absl::StatusCode::kInvalidArgument);

  request = Get("/x");
  request.method = "GET /evil";
  EXPECT_EQ(code(request), absl::StatusCode::kInvalidArgument);
  request = Get("/x");
  request.headers = {{"X-Injected", "a\r\nEvil: 1"}};
  EXPECT_EQ(code(request), absl::StatusCode::kInvalidArgument);
  request = Get("/x");
  request.headers = {{"Bad Name", "v"}};
  EXPECT_EQ(code(request), absl::StatusCode::kInvalidArgument);
  request = Get("/x");
  request.timeout = absl::ZeroDuration();
  EXPECT_EQ(code(request), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(server_->requests().empty());
}

TEST_F(CurlHttpTransportTest, TlsVerificationIsOnByDefault) {
  EXPECT_TRUE(CurlHttpTransport::Options{}.verify_tls);
  EXPECT_TRUE(transport_->options().verify_tls);
  // The fake server speaks plain HTTP, so a TLS handshake with it fails; the
  // transport must report that, never fall back to plaintext.
  HttpRequest request;
  request.url = absl::StrCat("https://127.0.0.1:", server_->port(), "/secure");
  request.timeout = absl::Seconds(10);
  absl::StatusOr<HttpResponse> response = transport_->Send(request);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable) << response.status();
  EXPECT_THAT(response.status().message(), HasSubstr("verification failed"));
}

TEST_F(CurlHttpTransportTest, ErrorMessagesNameMethodAndUrlButNoSecrets) {
  server_->Handle("GET", "/slow", [](const FakeHttpRequest&) {
    FakeHttpResponse response;
    response.delay_before_headers = absl::Seconds(30);
    return response;
  });
  HttpRequest request = Get("/slow?api_key=SECRETKEY");
  request.url =
      absl::StrCat("http://user:PASSWORD@127.0.0.1:", server_->port(), "/slow?api_key=SECRETKEY");
  request.headers = {{"Authorization", "Bearer SECRETTOKEN"}};
  request.timeout = absl::Milliseconds(100);
  absl::Status status = transport_->Send(request).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(status.message()),
              AllOf(HasSubstr(absl::StrCat("GET http://127.0.0.1:", server_->port(), "/slow")),
                    Not(HasSubstr("SECRET")), Not(HasSubstr("PASSWORD"))));
}

TEST_F(CurlHttpTransportTest, RedirectsFollowedOnlyWhenEnabled) {
  server_->Handle("GET", "/old", [](const FakeHttpRequest&) {
    FakeHttpResponse response = Text("moved", 302);
    response.headers.Add("Location", "/new");
    return response;
  });
  server_->Handle("GET", "/loop", [](const FakeHttpRequest&) {
    FakeHttpResponse response = Text("", 302);
    response.headers.Add("Location", "/loop");
    return response;
  });
  server_->Handle("GET", "/new", [](const FakeHttpRequest&) { return Text("new"); });

  absl::StatusOr<HttpResponse> response = transport_->Send(Get("/old"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status_code, 302);
  EXPECT_THAT(response->headers.Get("location"), Optional(std::string("/new")));

  CurlHttpTransport::Options options;
  options.follow_redirects = true;
  options.max_redirects = 3;
  std::unique_ptr<CurlHttpTransport> following = MakeTransport(options);
  ASSERT_NE(following, nullptr);
  int header_calls = 0;
  std::string body;
  StreamCallbacks callbacks;
  callbacks.on_headers = [&header_calls](int status, const HttpHeaders& headers) {
    ++header_calls;
    EXPECT_EQ(status, 200);  // The redirect itself is not reported.
    EXPECT_FALSE(headers.Contains("Location"));
    return true;
  };
  callbacks.on_data = [&body](absl::string_view chunk) {
    body.append(chunk.data(), chunk.size());
    return true;
  };
  response = following->SendStreaming(Get("/old"), callbacks);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status_code, 200);
  EXPECT_EQ(header_calls, 1);
  EXPECT_EQ(body, "new");

  EXPECT_EQ(following->Send(Get("/loop")).status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(CurlHttpTransportCreateTest, RejectsBadOptions) {
  CurlHttpTransport::Options options;
  options.max_response_bytes = 0;
  EXPECT_EQ(CurlHttpTransport::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
  options = {};
  options.max_redirects = -1;
  EXPECT_EQ(CurlHttpTransport::Create(options).status().code(), absl::StatusCode::kInvalidArgument);
  options = {};
  options.ca_bundle_path = "/nonexistent/ca.pem";
  EXPECT_EQ(CurlHttpTransport::Create(options).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(CurlHttpTransport::Create({}).ok());
}

}  // namespace
}  // namespace tessera
