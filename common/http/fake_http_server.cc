#include "common/http/fake_http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"

namespace tessera {
namespace {

constexpr size_t kMaxHeadBytes = 64 << 10;

absl::Status ErrnoError(absl::string_view what) {
  return absl::InternalError(absl::StrCat("FakeHttpServer: ", what, ": ", strerror(errno)));
}

bool SendAll(int fd, absl::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

absl::string_view ReasonPhrase(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Status";
  }
}

// True if `data` holds bytes that cannot occur in an HTTP/1.x request head
// (e.g. a TLS ClientHello sent to this plain-HTTP server).
bool HasNonTextBytes(absl::string_view data) {
  for (unsigned char c : data) {
    if (c == '\r' || c == '\n' || c == '\t') continue;
    if (c < 0x20 || c == 0x7f) return true;
  }
  return false;
}

}  // namespace

// Buffered reads from one connection socket.
class FakeHttpServer::Connection {
 public:
  explicit Connection(int fd) : fd_(fd) {}

  // Reads until the buffer holds a full request head ("...\r\n\r\n") and
  // moves it into `head`. False on EOF, error, or a head that is not text.
  bool ReadHead(std::string* head, bool* malformed) {
    *malformed = false;
    while (true) {
      // Tolerate stray CRLFs between requests (RFC 9112 section 2.2).
      while (absl::StartsWith(buffer_, "\r\n")) buffer_.erase(0, 2);
      size_t end = buffer_.find("\r\n\r\n");
      if (end != std::string::npos) {
        *head = buffer_.substr(0, end + 2);  // Keeps the last line's CRLF.
        buffer_.erase(0, end + 4);
        return true;
      }
      if (HasNonTextBytes(buffer_) || buffer_.size() > kMaxHeadBytes) {
        *malformed = true;
        return false;
      }
      if (!ReadMore()) return false;
    }
  }

  // Reads one CRLF-terminated line (without the CRLF).
  bool ReadLine(std::string* line) {
    while (true) {
      size_t end = buffer_.find("\r\n");
      if (end != std::string::npos) {
        *line = buffer_.substr(0, end);
        buffer_.erase(0, end + 2);
        return true;
      }
      if (buffer_.size() > kMaxHeadBytes || !ReadMore()) return false;
    }
  }

  // Appends exactly `n` bytes to `out`.
  bool ReadExactly(size_t n, std::string* out) {
    while (buffer_.size() < n) {
      if (!ReadMore()) return false;
    }
    out->append(buffer_, 0, n);
    buffer_.erase(0, n);
    return true;
  }

 private:
  bool ReadMore() {
    char chunk[16384];
    while (true) {
      ssize_t n = recv(fd_, chunk, sizeof(chunk), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      buffer_.append(chunk, static_cast<size_t>(n));
      return true;
    }
  }

  const int fd_;
  std::string buffer_;
};

absl::StatusOr<std::unique_ptr<FakeHttpServer>> FakeHttpServer::Start() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoError("socket");
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(fd, 128) != 0) {
    absl::Status status = ErrnoError("bind/listen on 127.0.0.1:0");
    close(fd);
    return status;
  }
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    absl::Status status = ErrnoError("getsockname");
    close(fd);
    return status;
  }
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    absl::Status status = ErrnoError("pipe2");
    close(fd);
    return status;
  }
  return std::unique_ptr<FakeHttpServer>(
      new FakeHttpServer(fd, pipe_fds[0], pipe_fds[1], ntohs(addr.sin_port)));
}

FakeHttpServer::FakeHttpServer(int listen_fd, int wake_read_fd, int wake_write_fd, int port)
    : listen_fd_(listen_fd),
      wake_read_fd_(wake_read_fd),
      wake_write_fd_(wake_write_fd),
      port_(port) {
  accept_thread_ = std::thread([this] { AcceptLoop(); });
}

FakeHttpServer::~FakeHttpServer() {
  Stop();
  close(listen_fd_);
  close(wake_read_fd_);
  close(wake_write_fd_);
}

std::string FakeHttpServer::url() const { return absl::StrCat("http://127.0.0.1:", port_); }

void FakeHttpServer::Handle(std::string method, std::string path, Handler handler) {
  bool prefix = absl::EndsWith(path, "*");
  if (prefix) path.pop_back();
  absl::MutexLock lock(&mu_);
  for (Route& route : routes_) {
    if (route.method == method && route.path == path && route.prefix == prefix) {
      route.handler = std::move(handler);
      return;
    }
  }
  routes_.push_back(Route{std::move(method), std::move(path), prefix, std::move(handler)});
}

std::vector<FakeHttpRequest> FakeHttpServer::requests() const {
  absl::MutexLock lock(&mu_);
  return requests_;
}

int FakeHttpServer::connections_accepted() const {
  absl::MutexLock lock(&mu_);
  return connections_accepted_;
}

void FakeHttpServer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  stopping_.Notify();
  char byte = 0;
  while (write(wake_write_fd_, &byte, 1) < 0 && errno == EINTR) {
  }
  accept_thread_.join();
  // No new connections from here on. Unblock every connection thread: a
  // shut-down socket makes pending and future recv/send return at once.
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    for (int fd : open_fds_) shutdown(fd, SHUT_RDWR);
    threads = std::move(connection_threads_);
  }
  for (std::thread& thread : threads) thread.join();
}

void FakeHttpServer::AcceptLoop() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_read_fd_, POLLIN, 0}};
    int n = poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;  // Stop() was called.
    if ((fds[0].revents & POLLIN) == 0) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    int one = 1;
    // Responses go out in several writes; Nagle would stall them.
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    absl::MutexLock lock(&mu_);
    int id = ++connections_accepted_;
    open_fds_.push_back(fd);
    connection_threads_.emplace_back([this, fd, id] { ServeConnection(fd, id); });
  }
}

void FakeHttpServer::CloseConnection(int fd) {
  absl::MutexLock lock(&mu_);
  open_fds_.erase(std::remove(open_fds_.begin(), open_fds_.end(), fd), open_fds_.end());
  close(fd);  // Under the lock, so Stop() never shuts down a reused fd number.
}

FakeHttpServer::Handler FakeHttpServer::FindHandler(const FakeHttpRequest& request) const {
  absl::MutexLock lock(&mu_);
  const Route* best = nullptr;
  for (const Route& route : routes_) {
    if (route.method != "*" && route.method != request.method) continue;
    if (!route.prefix) {
      if (route.path == request.path) return route.handler;
      continue;
    }
    if (absl::StartsWith(request.path, route.path) &&
        (best == nullptr || route.path.size() > best->path.size())) {
      best = &route;
    }
  }
  if (best != nullptr) return best->handler;
  return [](const FakeHttpRequest&) {
    FakeHttpResponse response;
    response.status = 404;
    return response;
  };
}

void FakeHttpServer::RecordRequest(const FakeHttpRequest& request) {
  absl::MutexLock lock(&mu_);
  requests_.push_back(request);
}

void FakeHttpServer::ServeConnection(int fd, int connection_id) {
  Connection conn(fd);
  auto bad_request = [fd] {
    SendAll(fd, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  };
  while (!stopping_.HasBeenNotified()) {
    std::string head;
    bool malformed = false;
    if (!conn.ReadHead(&head, &malformed)) {
      if (malformed) bad_request();
      break;
    }
    // Request line.
    size_t line_end = head.find("\r\n");
    std::vector<std::string> parts =
        absl::StrSplit(absl::string_view(head).substr(0, line_end), ' ');
    if (parts.size() != 3 || parts[0].empty() || parts[1].empty() ||
        !absl::StartsWith(parts[2], "HTTP/1.")) {
      bad_request();
      break;
    }
    FakeHttpRequest request;
    request.method = parts[0];
    request.raw_target = parts[1];
    request.version = parts[2];
    request.connection_id = connection_id;
    absl::string_view target = request.raw_target;
    if (size_t scheme = target.find("://"); scheme != absl::string_view::npos) {
      // Absolute form (proxy request): keep what follows the authority.
      size_t path_start = target.find('/', scheme + 3);
      target = path_start == absl::string_view::npos ? absl::string_view("/")
                                                     : target.substr(path_start);
    }
    if (size_t q = target.find('?'); q != absl::string_view::npos) {
      request.query = std::string(target.substr(q + 1));
      target = target.substr(0, q);
    }
    request.path = std::string(target);
    // Header fields (obsolete line folding is not supported).
    bool headers_ok = true;
    for (absl::string_view line :
         absl::StrSplit(absl::string_view(head).substr(line_end + 2), "\r\n", absl::SkipEmpty())) {
      size_t colon = line.find(':');
      if (colon == absl::string_view::npos || colon == 0) {
        headers_ok = false;
        break;
      }
      request.headers.Add(std::string(line.substr(0, colon)),
                          std::string(absl::StripAsciiWhitespace(line.substr(colon + 1))));
    }
    if (!headers_ok) {
      bad_request();
      break;
    }
    // Body.
    std::optional<std::string> transfer_encoding = request.headers.Get("Transfer-Encoding");
    std::optional<std::string> content_length = request.headers.Get("Content-Length");
    bool chunked = transfer_encoding.has_value() &&
                   absl::StrContains(absl::AsciiStrToLower(*transfer_encoding), "chunked");
    size_t length = 0;
    if (!chunked && content_length.has_value() && !absl::SimpleAtoi(*content_length, &length)) {
      bad_request();
      break;
    }
    std::optional<std::string> expect = request.headers.Get("Expect");
    if ((chunked || length > 0) && expect.has_value() &&
        absl::EqualsIgnoreCase(*expect, "100-continue")) {
      if (!SendAll(fd, "HTTP/1.1 100 Continue\r\n\r\n")) break;
    }
    bool body_ok = true;
    if (chunked) {
      while (true) {
        std::string size_line;
        size_t size = 0;
        if (!conn.ReadLine(&size_line)) {
          body_ok = false;
          break;
        }
        absl::string_view size_hex = size_line;
        size_hex = size_hex.substr(0, size_hex.find(';'));  // Chunk extensions.
        if (!absl::SimpleHexAtoi(absl::StripAsciiWhitespace(size_hex), &size)) {
          bad_request();
          body_ok = false;
          break;
        }
        if (size == 0) {
          std::string trailer;
          do {
            if (!conn.ReadLine(&trailer)) {
              body_ok = false;
              break;
            }
          } while (!trailer.empty());
          break;
        }
        std::string crlf;
        if (!conn.ReadExactly(size, &request.body) || !conn.ReadExactly(2, &crlf)) {
          body_ok = false;
          break;
        }
      }
    } else if (length > 0) {
      body_ok = conn.ReadExactly(length, &request.body);
    }
    if (!body_ok) break;

    RecordRequest(request);
    FakeHttpResponse response = FindHandler(request)(request);

    if (response.delay_before_headers > absl::ZeroDuration() &&
        stopping_.WaitForNotificationWithTimeout(response.delay_before_headers)) {
      break;
    }
    std::optional<std::string> request_connection = request.headers.Get("Connection");
    std::optional<std::string> response_connection = response.headers.Get("Connection");
    bool keep_alive =
        request.version == "HTTP/1.1" && !response.close_mid_body &&
        !(request_connection && absl::EqualsIgnoreCase(*request_connection, "close")) &&
        !(response_connection && absl::EqualsIgnoreCase(*response_connection, "close"));
    bool use_chunks = !response.chunks.empty();
    bool head_request = request.method == "HEAD";

    std::string out =
        absl::StrCat("HTTP/1.1 ", response.status, " ", ReasonPhrase(response.status), "\r\n");
    for (const auto& [name, value] : response.headers) {
      absl::StrAppend(&out, name, ": ", value, "\r\n");
    }
    if (use_chunks) {
      if (!response.headers.Contains("Transfer-Encoding")) {
        absl::StrAppend(&out, "Transfer-Encoding: chunked\r\n");
      }
    } else if (!response.headers.Contains("Content-Length")) {
      absl::StrAppend(&out, "Content-Length: ", response.body.size(), "\r\n");
    }
    if (!keep_alive && !response_connection) absl::StrAppend(&out, "Connection: close\r\n");
    absl::StrAppend(&out, "\r\n");

    if (head_request) {
      if (!SendAll(fd, out)) break;
    } else if (!use_chunks) {
      size_t body_bytes = response.close_mid_body ? response.body.size() / 2 : response.body.size();
      absl::StrAppend(&out, absl::string_view(response.body).substr(0, body_bytes));
      if (!SendAll(fd, out)) break;
    } else {
      if (!SendAll(fd, out)) break;
      size_t chunks_to_send =
          response.close_mid_body ? response.chunks.size() / 2 : response.chunks.size();
      bool sent = true;
      for (size_t i = 0; i < chunks_to_send && sent; ++i) {
        if (i > 0 && response.chunk_delay > absl::ZeroDuration() &&
            stopping_.WaitForNotificationWithTimeout(response.chunk_delay)) {
          sent = false;
          break;
        }
        if (response.before_chunk) response.before_chunk(i);
        const std::string& chunk = response.chunks[i];
        if (chunk.empty()) continue;
        sent = SendAll(fd, absl::StrCat(absl::Hex(chunk.size()), "\r\n", chunk, "\r\n"));
      }
      if (!sent) break;
      if (!response.close_mid_body && !SendAll(fd, "0\r\n\r\n")) break;
    }
    if (!keep_alive) break;
  }
  CloseConnection(fd);
}

}  // namespace tessera
