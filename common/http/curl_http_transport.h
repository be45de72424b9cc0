// CurlHttpTransport: the production HttpTransport, built on libcurl.
//
// Only mains construct one; everything else receives an HttpTransport&.
//
// Connections are reused: the transport keeps a small pool of libcurl easy
// handles (each with its own keep-alive connection cache) and hands one to
// each call, so sequential calls from a thread reuse one TCP/TLS connection.
// DNS results and TLS sessions are shared across handles through a CURLSH.
//
// Security defaults: TLS peer and host verification on (against the system CA
// store, or Options::ca_bundle_path); only the http and https protocols, for
// requests and for redirects; redirects not followed unless asked for, and
// when followed, libcurl does not resend caller-supplied Authorization or
// Cookie headers to a different host.
//
// Proxies: the transport does not set CURLOPT_PROXY, so libcurl honours the
// standard environment variables at each request: http_proxy (lower case
// only, by convention), https_proxy / HTTPS_PROXY, ALL_PROXY / all_proxy and
// no_proxy / NO_PROXY.
//
// Content codings: requests advertise every encoding libcurl can decode
// (gzip, deflate, ...) and bodies are delivered decoded.
#ifndef TESSERA_COMMON_HTTP_CURL_HTTP_TRANSPORT_H_
#define TESSERA_COMMON_HTTP_CURL_HTTP_TRANSPORT_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/http/http_transport.h"

namespace tessera {

// Thread-safe: Send and SendStreaming may be called concurrently from any
// number of threads. The transport must outlive every call in flight.
// Errors follow the contract in http_transport.h; in particular a server that
// closes the connection mid-body yields UNAVAILABLE (retryable), and too many
// redirects (with follow_redirects) yields FAILED_PRECONDITION.
class CurlHttpTransport final : public HttpTransport {
 public:
  struct Options {
    // Sent as User-Agent unless a request carries its own.
    std::string user_agent = "tessera/0.1";
    // Largest (decoded) response body Send() accepts; bigger bodies fail with
    // RESOURCE_EXHAUSTED. Does not apply to SendStreaming().
    size_t max_response_bytes = 256 << 20;
    // PEM bundle of trusted CAs; empty means the system default store.
    std::string ca_bundle_path;
    // Verify the server's certificate chain and host name. Turning this off
    // (only for tests or a deliberately pinned local endpoint) must be
    // explicit.
    bool verify_tls = true;
    // Only used when follow_redirects is true.
    int max_redirects = 5;
    // When false, 3xx responses are returned to the caller as they are.
    bool follow_redirects = false;
  };

  // Initialises libcurl (once per process) and validates `options`.
  // Errors: INVALID_ARGUMENT for nonsensical options (zero max_response_bytes,
  // negative max_redirects), NOT_FOUND when ca_bundle_path is set but not
  // readable, INTERNAL when libcurl cannot be initialised.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<CurlHttpTransport>> Create(Options options);

  ~CurlHttpTransport() override;
  CurlHttpTransport(const CurlHttpTransport&) = delete;
  CurlHttpTransport& operator=(const CurlHttpTransport&) = delete;

  [[nodiscard]] absl::StatusOr<HttpResponse> Send(const HttpRequest& request) override;
  [[nodiscard]] absl::StatusOr<HttpResponse> SendStreaming(
      const HttpRequest& request, const StreamCallbacks& callbacks) override;

  [[nodiscard]] const Options& options() const { return options_; }

 private:
  struct Share;  // The CURLSH and its locks.
  class Transfer;

  CurlHttpTransport(Options options, std::unique_ptr<Share> share);

  // Both pointers are CURL*; void* keeps <curl/curl.h> out of this header.
  void* AcquireHandle();
  void ReleaseHandle(void* handle);

  absl::StatusOr<HttpResponse> Perform(const HttpRequest& request,
                                       const StreamCallbacks* callbacks);

  const Options options_;
  const std::unique_ptr<Share> share_;

  absl::Mutex mu_;
  // Idle easy handles, most recently used last (reused first, so that a
  // thread issuing sequential requests keeps hitting a warm connection).
  std::vector<void*> idle_handles_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera

#endif  // TESSERA_COMMON_HTTP_CURL_HTTP_TRANSPORT_H_
