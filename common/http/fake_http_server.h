// FakeHttpServer: an in-process HTTP/1.1 server for tests.
//
// Listens on 127.0.0.1 on an ephemeral port and serves canned or computed
// responses from handlers that tests register, so that code using an
// HttpTransport (connectors, the MCP client, OAuth) can be tested against a
// real socket without the network. It records every request it receives.
//
// Supported: keep-alive, Content-Length and chunked request bodies,
// "Expect: 100-continue", absolute-form request targets (so it can stand in
// for a forward proxy), chunked responses delivered piece by piece, delays,
// and a server that dies mid-body. Not supported: TLS, pipelining beyond
// sequential requests on a connection, HTTP/2.
//
// One thread per connection (fine for tests). Handlers run on those threads,
// concurrently when clients open several connections, so handlers that share
// state must synchronise it.
//
// Thread-safe: every public method may be called from any thread. Stop() (and
// the destructor) closes the listener and every open connection, including
// idle keep-alive connections that clients still hold, interrupts delays, and
// joins all threads.
#ifndef TESSERA_COMMON_HTTP_FAKE_HTTP_SERVER_H_
#define TESSERA_COMMON_HTTP_FAKE_HTTP_SERVER_H_

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/http/http_transport.h"

namespace tessera {

// A request as the fake server received it.
struct FakeHttpRequest {
  std::string method;
  // The path without the query string. For an absolute-form target (a request
  // sent to a proxy, "GET http://host/x HTTP/1.1") this is the path part ("/x").
  std::string path;
  // Everything after '?', without the '?'; empty when there is none.
  std::string query;
  // The request-target exactly as sent: "/x?a=1", or "http://host/x" via a proxy.
  std::string raw_target;
  std::string version;  // "HTTP/1.1"
  HttpHeaders headers;
  std::string body;  // Decoded if it was sent chunked.
  // 1 for the first connection the server accepted, 2 for the next, ...
  int connection_id = 0;
};

// What a handler returns.
struct FakeHttpResponse {
  int status = 200;
  // Sent as given. Content-Length (or Transfer-Encoding: chunked when `chunks`
  // is set) is added unless present, so tests can also send lying headers.
  HttpHeaders headers;
  std::string body;
  // If non-empty, `body` is ignored and these are sent with chunked encoding,
  // one HTTP chunk each (empty strings are skipped), `chunk_delay` apart.
  std::vector<std::string> chunks;
  absl::Duration chunk_delay = absl::ZeroDuration();
  // Called on the connection thread just before chunk `index` is written; a
  // test can block here until the client has seen the previous chunks, which
  // makes streaming tests deterministic. Should bound its own wait.
  std::function<void(size_t index)> before_chunk;
  // Waited before anything is written (interrupted by Stop()).
  absl::Duration delay_before_headers = absl::ZeroDuration();
  // Sends the headers and half the body (half the chunks), then closes the
  // connection: a server dying mid-response.
  bool close_mid_body = false;
};

class FakeHttpServer {
 public:
  using Handler = std::function<FakeHttpResponse(const FakeHttpRequest&)>;

  // Binds 127.0.0.1:0 and starts accepting. Errors: INTERNAL when a socket
  // call fails.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<FakeHttpServer>> Start();

  ~FakeHttpServer();  // Calls Stop().
  FakeHttpServer(const FakeHttpServer&) = delete;
  FakeHttpServer& operator=(const FakeHttpServer&) = delete;

  [[nodiscard]] int port() const { return port_; }
  // "http://127.0.0.1:PORT", without a trailing slash.
  [[nodiscard]] std::string url() const;

  // Routes requests to `handler`. `method` "*" matches any method. A `path`
  // ending in '*' matches every path with that prefix ("/files/*", or "*" for
  // everything); an exact path wins over a prefix, and a longer prefix over a
  // shorter one. Registering the same method and path again replaces the
  // handler. Unrouted requests get 404 with an empty body.
  void Handle(std::string method, std::string path, Handler handler);

  // Every request received so far, in arrival order.
  [[nodiscard]] std::vector<FakeHttpRequest> requests() const;
  [[nodiscard]] int connections_accepted() const;

  // Stops accepting, closes all connections and joins all threads. Safe to
  // call more than once; the destructor calls it.
  void Stop();

 private:
  struct Route {
    std::string method;
    std::string path;
    bool prefix;
    Handler handler;
  };
  class Connection;

  FakeHttpServer(int listen_fd, int wake_read_fd, int wake_write_fd, int port);

  void AcceptLoop();
  void ServeConnection(int fd, int connection_id);
  Handler FindHandler(const FakeHttpRequest& request) const;
  void RecordRequest(const FakeHttpRequest& request);
  void CloseConnection(int fd);

  const int listen_fd_;
  const int wake_read_fd_;  // Readable once Stop() begins; wakes AcceptLoop.
  const int wake_write_fd_;
  const int port_;

  // Notified by Stop(); delays wait on it so that they end early.
  absl::Notification stopping_;
  std::thread accept_thread_;

  mutable absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<Route> routes_ ABSL_GUARDED_BY(mu_);
  std::vector<FakeHttpRequest> requests_ ABSL_GUARDED_BY(mu_);
  int connections_accepted_ ABSL_GUARDED_BY(mu_) = 0;
  // Connection sockets still open; Stop() shuts them down to unblock reads.
  std::vector<int> open_fds_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> connection_threads_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera

#endif  // TESSERA_COMMON_HTTP_FAKE_HTTP_SERVER_H_
