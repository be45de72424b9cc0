// The fault catalogue and error envelope the fake Google APIs (Drive v3,
// Gmail v1) share: both answer errors as
//   {"error":{"code","message","status","errors":[{"domain","reason","message"}]}}
// and throttle with 429 RESOURCE_EXHAUSTED or 403 (user)rateLimitExceeded.
#ifndef TESSERA_CONNECTORS_TESTING_GOOGLE_API_FAULTS_H_
#define TESSERA_CONNECTORS_TESTING_GOOGLE_API_FAULTS_H_

#include <optional>

#include "absl/strings/string_view.h"
#include "common/clock.h"
#include "common/http/fake_http_server.h"

namespace tessera::connectors::testing {

enum class GoogleFault {
  k429RetryAfterSeconds,  // 429 RESOURCE_EXHAUSTED, Retry-After: 2
  k429RetryAfterDate,     // 429 with Retry-After as an HTTP-date 2 s ahead
  k403UserRateLimit,      // 403 userRateLimitExceeded
  k403RateLimit,          // 403 rateLimitExceeded
  k500,
  k503,         // no Retry-After
  k401,         // authError, whatever the token
  kDisconnect,  // the normal response, cut mid-body
  kEmptyPage,   // list endpoints: 0 items + nextPageToken
  kDuplicate,   // list endpoints: every entry twice
};

// An error in Google's envelope; the domain is "usageLimits" for 403 and 429,
// "global" otherwise.
[[nodiscard]] FakeHttpResponse GoogleError(int code, absl::string_view status,
                                           absl::string_view reason, absl::string_view message);

// The error response that replaces the normal one for `fault` (429s carry
// Retry-After, the date form from `clock`); nullopt for the faults the fake
// applies to the normal response (disconnect, empty page, duplicate).
[[nodiscard]] std::optional<FakeHttpResponse> GoogleFaultResponse(GoogleFault fault, Clock &clock);

}  // namespace tessera::connectors::testing

#endif  // TESSERA_CONNECTORS_TESTING_GOOGLE_API_FAULTS_H_
