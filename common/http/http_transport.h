// HttpTransport: the one interface Tessera uses for outbound HTTP.
//
// Everything that talks to the outside world over HTTP (the Google and
// Microsoft connectors, the MCP Streamable HTTP client, OAuth token endpoints)
// takes an injected HttpTransport. Production mains build a CurlHttpTransport
// (common/http/curl_http_transport.h); tests point one at a FakeHttpServer
// (common/http/fake_http_server.h) or substitute a fake transport.
//
// Error contract for Send() and SendStreaming():
//   * Any HTTP response, whatever its status (2xx, 3xx, 4xx, 5xx), is an OK
//     status with HttpResponse::status_code set. Deciding what a 429 or a 503
//     means, and whether to retry, is the caller's (and the shared backoff
//     policy's) job, not the transport's.
//   * Failures to get a complete response map to:
//       INVALID_ARGUMENT   malformed URL, unsupported scheme (only http and
//                          https are allowed), bad method or header syntax.
//       UNAVAILABLE        connection refused, DNS failure, connection reset,
//                          server closed the connection before the full
//                          response arrived (e.g. mid-body), TLS handshake or
//                          certificate verification failure (the message says
//                          "TLS ... verification failed").
//       DEADLINE_EXCEEDED  HttpRequest::timeout or connect_timeout elapsed.
//       RESOURCE_EXHAUSTED the response body exceeded the transport's
//                          configured maximum.
//       CANCELLED          a StreamCallbacks callback returned false.
//   * Error messages name the method and the URL (with any user-info and query
//     string redacted). They never contain header values or bodies, which may
//     hold credentials.
#ifndef TESSERA_COMMON_HTTP_HTTP_TRANSPORT_H_
#define TESSERA_COMMON_HTTP_HTTP_TRANSPORT_H_

#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace tessera {

// An ordered multimap of HTTP header fields with case-insensitive names.
// Preserves the order and the spelling of names as received. Small: lookups
// are linear, which is faster than hashing for the dozen headers a response
// typically has. Value type; thread-compatible.
class HttpHeaders {
 public:
  using Entry = std::pair<std::string, std::string>;

  HttpHeaders() = default;
  HttpHeaders(std::initializer_list<Entry> entries) : entries_(entries) {}

  // Appends a field; existing fields with the same name are kept.
  void Add(std::string name, std::string value) {
    entries_.emplace_back(std::move(name), std::move(value));
  }
  // Replaces every field named `name` (any case) with one field.
  void Set(std::string name, std::string value);
  // Removes every field named `name` (any case).
  void Remove(absl::string_view name);

  // The value of the first field named `name` (any case), if present.
  [[nodiscard]] std::optional<std::string> Get(absl::string_view name) const;
  // The values of all fields named `name` (any case), in order received.
  [[nodiscard]] std::vector<std::string> GetAll(absl::string_view name) const;
  [[nodiscard]] bool Contains(absl::string_view name) const;

  [[nodiscard]] const std::vector<Entry>& entries() const { return entries_; }
  [[nodiscard]] size_t size() const { return entries_.size(); }
  [[nodiscard]] bool empty() const { return entries_.empty(); }
  void clear() { entries_.clear(); }
  std::vector<Entry>::const_iterator begin() const { return entries_.begin(); }
  std::vector<Entry>::const_iterator end() const { return entries_.end(); }

 private:
  std::vector<Entry> entries_;
};

// One outbound request. A value type owned by the caller; the transport only
// reads it for the duration of the call.
struct HttpRequest {
  std::string method = "GET";
  // Absolute http:// or https:// URL, query string included.
  std::string url;
  // Sent as given, in order; the transport adds no Content-Type of its own.
  // Values may be credentials: the transport never logs or echoes them.
  std::vector<std::pair<std::string, std::string>> headers;
  // Sent when non-empty (or always for POST/PUT/PATCH, as Content-Length: 0).
  std::string body;
  // Bounds the whole exchange: connect, send, wait, and receiving the body
  // (for SendStreaming too). absl::InfiniteDuration() means no limit.
  absl::Duration timeout = absl::Seconds(60);
  // Bounds DNS resolution plus TCP and TLS connection setup.
  absl::Duration connect_timeout = absl::Seconds(10);
};

// A complete HTTP response. `body` is empty for SendStreaming() (the data went
// to StreamCallbacks::on_data).
struct HttpResponse {
  int status_code = 0;
  HttpHeaders headers;
  std::string body;
};

// Callbacks for SendStreaming(), invoked on the calling thread, in order:
// on_headers once when the final response's headers have arrived (interim 1xx
// responses and followed redirects are not reported), then on_data zero or
// more times with consecutive pieces of the (decoded) body as they arrive.
// Either may return false to abort the transfer, which then fails with
// CANCELLED. Unset callbacks accept everything.
struct StreamCallbacks {
  std::function<bool(int status_code, const HttpHeaders& headers)> on_headers;
  std::function<bool(absl::string_view chunk)> on_data;
};

// Outbound HTTP. Implementations must be thread-safe: any number of threads
// may call Send and SendStreaming concurrently on one instance. See the file
// comment for the error contract.
class HttpTransport {
 public:
  virtual ~HttpTransport() = default;

  // Performs `request` and returns the full response, body included.
  [[nodiscard]] virtual absl::StatusOr<HttpResponse> Send(const HttpRequest& request) = 0;

  // Performs `request`, delivering the response incrementally through
  // `callbacks` (Server-Sent Events, large downloads). The body is not
  // accumulated and the returned HttpResponse::body is empty; the response
  // size limit of the transport does not apply. Blocks until the response is
  // complete, fails, or a callback aborts it.
  [[nodiscard]] virtual absl::StatusOr<HttpResponse> SendStreaming(
      const HttpRequest& request, const StreamCallbacks& callbacks) = 0;
};

// The URL as it may appear in error messages and logs: user-info and the query
// string (which can carry API keys or tokens) removed, the fragment dropped.
[[nodiscard]] std::string RedactUrl(absl::string_view url);

}  // namespace tessera

#endif  // TESSERA_COMMON_HTTP_HTTP_TRANSPORT_H_
