#include "common/http/fake_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

using ::testing::HasSubstr;
using ::testing::Optional;
using ::testing::StartsWith;

// A minimal raw-socket HTTP client, so the server is tested independently of
// any HttpTransport.
class RawClient {
 public:
  explicit RawClient(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawClient() { close(fd_); }

  bool connected() const { return connected_; }

  bool Write(absl::string_view data) {
    while (!data.empty()) {
      ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(n);
    }
    return true;
  }

  // Reads one response with a Content-Length body (or headers only for 100).
  // Returns "" on EOF or after 5 s.
  std::string ReadResponse() {
    while (true) {
      size_t head_end = buffer_.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        size_t length = 0;
        size_t cl = buffer_.find("Content-Length: ");
        if (cl != std::string::npos && cl < head_end) {
          size_t eol = buffer_.find("\r\n", cl);
          if (!absl::SimpleAtoi(buffer_.substr(cl + 16, eol - cl - 16), &length)) return "";
        }
        size_t total = head_end + 4 + length;
        if (buffer_.size() >= total) {
          std::string response = buffer_.substr(0, total);
          buffer_.erase(0, total);
          return response;
        }
      }
      if (!ReadMore()) return "";
    }
  }

  // True if the server closed the connection (EOF) within 5 s.
  bool ReadEof() {
    while (true) {
      pollfd pfd = {fd_, POLLIN, 0};
      if (poll(&pfd, 1, 5000) <= 0) return false;
      char c[256];
      ssize_t n = recv(fd_, c, sizeof(c), 0);
      if (n <= 0) return true;
    }
  }

 private:
  bool ReadMore() {
    pollfd pfd = {fd_, POLLIN, 0};
    if (poll(&pfd, 1, 5000) <= 0) return false;
    char chunk[4096];
    ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
    if (n <= 0) return false;
    buffer_.append(chunk, n);
    return true;
  }

  int fd_ = -1;
  bool connected_ = false;
  std::string buffer_;
};

std::unique_ptr<FakeHttpServer> StartServer() {
  absl::StatusOr<std::unique_ptr<FakeHttpServer>> server = FakeHttpServer::Start();
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? std::move(*server) : nullptr;
}

TEST(FakeHttpServerTest, UnknownRouteIs404) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  EXPECT_GT(server->port(), 0);
  EXPECT_EQ(server->url(), absl::StrCat("http://127.0.0.1:", server->port()));
  RawClient client(server->port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(client.Write("GET /nope?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"));
  std::string response = client.ReadResponse();
  EXPECT_THAT(response, StartsWith("HTTP/1.1 404 Not Found\r\n"));
  EXPECT_THAT(response, HasSubstr("Content-Length: 0\r\n"));
  ASSERT_EQ(server->requests().size(), 1u);
  EXPECT_EQ(server->requests()[0].path, "/nope");
  EXPECT_EQ(server->requests()[0].query, "x=1");
  EXPECT_EQ(server->requests()[0].raw_target, "/nope?x=1");
}

TEST(FakeHttpServerTest, ChunkedRequestBodyIsDecodedAndKeepAliveServesSeveral) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  server->Handle("POST", "/upload", [](const FakeHttpRequest& request) {
    FakeHttpResponse response;
    response.body = absl::StrCat("got ", request.body.size(), ":", request.body);
    return response;
  });
  RawClient client(server->port());
  ASSERT_TRUE(client.connected());
  ASSERT_TRUE(
      client.Write("POST /upload HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n"));
  std::string first = client.ReadResponse();
  EXPECT_THAT(first, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(first, HasSubstr("\r\n\r\ngot 12:hello, world"));

  // Same connection: a Content-Length body.
  ASSERT_TRUE(client.Write("POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"));
  EXPECT_THAT(client.ReadResponse(), HasSubstr("\r\n\r\ngot 3:abc"));

  // And Expect: 100-continue.
  ASSERT_TRUE(client.Write(
      "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n"));
  EXPECT_THAT(client.ReadResponse(), StartsWith("HTTP/1.1 100 Continue\r\n"));
  ASSERT_TRUE(client.Write("xy"));
  EXPECT_THAT(client.ReadResponse(), HasSubstr("\r\n\r\ngot 2:xy"));

  EXPECT_EQ(server->connections_accepted(), 1);
  std::vector<FakeHttpRequest> requests = server->requests();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].body, "hello, world");
  EXPECT_THAT(requests[0].headers.Get("transfer-encoding"), Optional(std::string("chunked")));
  EXPECT_EQ(requests[0].connection_id, 1);
  EXPECT_EQ(requests[2].connection_id, 1);
}

TEST(FakeHttpServerTest, RoutesExactBeforeLongestPrefixAndMethodWildcard) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  auto reply = [](std::string body) {
    return [body](const FakeHttpRequest&) {
      FakeHttpResponse response;
      response.body = body;
      return response;
    };
  };
  server->Handle("GET", "/files/*", reply("prefix"));
  server->Handle("GET", "/files/deep/*", reply("deeper"));
  server->Handle("GET", "/files/exact", reply("exact"));
  server->Handle("*", "/any", reply("any"));
  server->Handle("GET", "/files/exact", reply("replaced"));
  RawClient client(server->port());
  ASSERT_TRUE(client.connected());
  auto get = [&client](absl::string_view method, absl::string_view path) {
    client.Write(absl::StrCat(method, " ", path, " HTTP/1.1\r\nHost: a\r\n\r\n"));
    std::string response = client.ReadResponse();
    return response.substr(response.find("\r\n\r\n") + 4);
  };
  EXPECT_EQ(get("GET", "/files/a"), "prefix");
  EXPECT_EQ(get("GET", "/files/deep/b?q"), "deeper");
  EXPECT_EQ(get("GET", "/files/exact"), "replaced");
  EXPECT_EQ(get("DELETE", "/any"), "any");
  EXPECT_EQ(get("POST", "/files/a"), "");  // 404.
}

TEST(FakeHttpServerTest, AbsoluteFormTargetIsRecordedForProxying) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  RawClient client(server->port());
  ASSERT_TRUE(
      client.Write("GET http://example.invalid/x?y=1 HTTP/1.1\r\nHost: example.invalid\r\n\r\n"));
  EXPECT_THAT(client.ReadResponse(), StartsWith("HTTP/1.1 404"));
  ASSERT_EQ(server->requests().size(), 1u);
  EXPECT_EQ(server->requests()[0].raw_target, "http://example.invalid/x?y=1");
  EXPECT_EQ(server->requests()[0].path, "/x");
  EXPECT_EQ(server->requests()[0].query, "y=1");
}

TEST(FakeHttpServerTest, BinaryGarbageGets400AndClose) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  RawClient client(server->port());
  ASSERT_TRUE(client.Write(std::string("\x16\x03\x01\x02\x00\x01", 6)));  // TLS-ish.
  EXPECT_THAT(client.ReadResponse(), StartsWith("HTTP/1.1 400 Bad Request"));
  EXPECT_TRUE(client.ReadEof());
  EXPECT_TRUE(server->requests().empty());
}

TEST(FakeHttpServerTest, ConnectionCloseIsHonoured) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  RawClient client(server->port());
  ASSERT_TRUE(client.Write("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"));
  EXPECT_THAT(client.ReadResponse(), HasSubstr("Connection: close\r\n"));
  EXPECT_TRUE(client.ReadEof());
}

TEST(FakeHttpServerTest, StopIsPromptWithIdleKeepAliveClientsAndPendingDelays) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  server->Handle("GET", "/slow", [](const FakeHttpRequest&) {
    FakeHttpResponse response;
    response.delay_before_headers = absl::Seconds(30);
    return response;
  });
  RawClient idle(server->port());
  ASSERT_TRUE(idle.Write("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_THAT(idle.ReadResponse(), StartsWith("HTTP/1.1 404"));  // Now idle, kept alive.
  RawClient half(server->port());                                // Sent half a request.
  ASSERT_TRUE(half.Write("GET / HTTP/1.1\r\nHo"));
  RawClient slow(server->port());
  ASSERT_TRUE(slow.Write("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n"));
  // Wait until the server has the slow request (it is then sleeping).
  for (int i = 0; i < 500 && server->requests().size() < 2; ++i)
    absl::SleepFor(absl::Milliseconds(10));
  ASSERT_EQ(server->requests().size(), 2u);

  absl::Time start = absl::Now();
  server->Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_TRUE(idle.ReadEof());
  EXPECT_TRUE(half.ReadEof());
  EXPECT_TRUE(slow.ReadEof());
  server->Stop();  // Idempotent.
  EXPECT_EQ(server->connections_accepted(), 3);
}

}  // namespace
}  // namespace tessera
