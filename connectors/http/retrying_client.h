// RetryingHttpClient: the one retry policy for every connector's HTTP calls.
//
// Wraps an HttpTransport (common/http/http_transport.h) and adds what the
// Google and Microsoft APIs require of a client:
//   * retries of throttling and server errors: 429; 500, 502, 503, 504;
//     Google's 403 whose error reason is rateLimitExceeded or
//     userRateLimitExceeded (but not other 403s such as insufficientPermissions);
//   * Retry-After honoured as delta-seconds or an HTTP date (IMF-fixdate, and
//     the obsolete RFC 850 and asctime forms), measured against the Clock and
//     capped (Graph has been seen to send absurd values);
//   * otherwise exponential backoff with full jitter, capped per sleep, within
//     a maximum number of attempts and a maximum total time;
//   * transport failures (connection refused or reset, timeouts) retried only
//     for idempotent requests;
//   * bearer tokens from a TokenSource, refreshed once on a 401;
//   * all waiting done through the injected Clock, never by sleeping directly.
//
// Error contract of Send() / SendStreaming():
//   * A final response that is not retried is returned as OK with its status
//     code, like HttpTransport does: a 404 or a 400 is the caller's to read
//     (CheckHttpStatus() turns it into a Status when that is all one needs).
//   * Giving up after retries surfaces an error with the most specific code:
//     RESOURCE_EXHAUSTED (429, rate-limit 403), UNAVAILABLE (502, 503),
//     INTERNAL (500), DEADLINE_EXCEEDED (504), or the transport's own code.
//   * With a TokenSource, a 401 after the refresh surfaces UNAUTHENTICATED; a
//     failed refresh surfaces the TokenSource's error.
//   * Messages name the method and the URL without query string or user-info,
//     the last HTTP status (and Google reason), and the attempts made. They
//     never contain header values or bodies beyond a short server message.
#ifndef TESSERA_CONNECTORS_HTTP_RETRYING_CLIENT_H_
#define TESSERA_CONNECTORS_HTTP_RETRYING_CLIENT_H_

#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/http/http_transport.h"
#include "connectors/auth/token_source.h"

namespace tessera::connectors {

struct RetryPolicy {
  // Attempts in all, the first included (1 = never retry). 401 refreshes do
  // not count against this.
  int max_attempts = 6;
  // Backoff before retry n (n = 1, 2, ...) is uniform in
  // [0, min(max_delay, base_delay * 2^(n-1))] ("full jitter").
  absl::Duration base_delay = absl::Milliseconds(500);
  absl::Duration max_delay = absl::Seconds(32);
  // Retry-After values beyond this are clamped to it.
  absl::Duration max_retry_after = absl::Minutes(5);
  // No retry is started when its wait would end after this much time since
  // the first attempt; each attempt's timeout is also cut to what remains.
  absl::Duration max_total_time = absl::Minutes(10);
};

// Returns a uniformly distributed number in [0, 1). Must be thread-safe.
using JitterSource = std::function<double()>;

// The retry-relevant meaning of one HTTP response.
struct ResponseClass {
  enum Kind {
    kFinal,       // success or a non-retryable error: hand it to the caller
    kRetry,       // throttled or a transient server error
    kUnauthorized // 401: refresh the token and try again once
  };
  Kind kind = kFinal;
  // Requests that the server will not have acted on (429, 503, rate-limit 403)
  // are retried even when not idempotent.
  bool safe_for_any_method = false;
  // The delay the server asked for, already clamped; absent when it gave none
  // or an unparseable one.
  std::optional<absl::Duration> retry_after;
  // Google's errors[].reason or error.status, or Graph's error.code, when present.
  std::string reason;
};

// Classifies `response`. `now` resolves HTTP-date Retry-After values.
[[nodiscard]] ResponseClass ClassifyResponse(const HttpResponse& response, absl::Time now,
                                             absl::Duration max_retry_after);

// Parses a Retry-After value: delta-seconds ("120") or an HTTP date. A date in
// the past yields zero. Values beyond `cap` yield `cap`. Returns nullopt for a
// value that is neither (the caller then falls back to its backoff).
[[nodiscard]] std::optional<absl::Duration> ParseRetryAfter(absl::string_view value,
                                                            absl::Time now,
                                                            absl::Duration cap);

// The reason of a Google ({"error":{"errors":[{"reason":..}],"status":..}}) or
// Microsoft Graph ({"error":{"code":..}}) error body; empty if none.
[[nodiscard]] std::string ErrorReason(absl::string_view body);

// OK for 2xx; otherwise an error with the absl code for the status (400
// INVALID_ARGUMENT, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404/410
// NOT_FOUND, 409 ABORTED, 412 FAILED_PRECONDITION, 429 RESOURCE_EXHAUSTED,
// 5xx UNAVAILABLE/INTERNAL/DEADLINE_EXCEEDED, ...) naming the redacted URL and
// the server's short message.
[[nodiscard]] absl::Status CheckHttpStatus(const HttpResponse& response,
                                           absl::string_view method, absl::string_view url);

class RetryingHttpClient {
 public:
  struct Options {
    RetryPolicy policy;
    // When set, each attempt carries "Authorization: Bearer <Token()>" (any
    // Authorization header of the request is replaced) and a 401 triggers one
    // Refresh(). Not owned; must outlive the client.
    TokenSource* token_source = nullptr;
    // Per-attempt timeout; when set it replaces HttpRequest::timeout.
    std::optional<absl::Duration> attempt_timeout;
    // Defaults to a thread-safe absl::BitGen.
    JitterSource jitter;
  };

  // Per-call settings.
  struct CallOptions {
    // Whether transport failures and 500/502/504 may be retried. Defaults to
    // true for GET, HEAD, OPTIONS, PUT and DELETE, false otherwise. Set it for
    // a POST that is safe to repeat (a token request, a search).
    std::optional<bool> idempotent;
    // When set, called before every attempt to produce the request body (a
    // body read from a file or a stream is re-opened for each retry); its
    // error ends the call. Otherwise HttpRequest::body is sent each time.
    std::function<absl::StatusOr<std::string>()> body_source;
  };

  // `transport` and `clock` are not owned and must outlive the client.
  RetryingHttpClient(HttpTransport* transport, Clock* clock, Options options);

  // Thread-safe (as far as the transport, clock and token source are).
  [[nodiscard]] absl::StatusOr<HttpResponse> Send(const HttpRequest& request,
                                                  const CallOptions& call = {});

  // Streams the response body to `callbacks`. Responses that may be retried
  // are held back (their body is buffered, up to 64 KiB, to classify it) so
  // the callbacks only ever see the final attempt. A transport failure after
  // body data was delivered is not retried (it cannot be taken back).
  [[nodiscard]] absl::StatusOr<HttpResponse> SendStreaming(const HttpRequest& request,
                                                           const StreamCallbacks& callbacks,
                                                           const CallOptions& call = {});

  const RetryPolicy& policy() const { return options_.policy; }

 private:
  absl::StatusOr<HttpResponse> Run(const HttpRequest& request, const CallOptions& call,
                                   const StreamCallbacks* callbacks);
  absl::Duration Backoff(int retry) const;

  HttpTransport* const transport_;
  Clock* const clock_;
  Options options_;
};

}  // namespace tessera::connectors

#endif  // TESSERA_CONNECTORS_HTTP_RETRYING_CLIENT_H_
