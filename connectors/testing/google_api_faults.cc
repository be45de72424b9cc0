#include "connectors/testing/google_api_faults.h"

#include <string>

#include "connectors/testing/fake_api.h"
#include "connectors/testing/fault_injector.h"
#include "nlohmann/json.hpp"

namespace tessera::connectors::testing {

FakeHttpResponse GoogleError(int code, absl::string_view status, absl::string_view reason,
                             absl::string_view message) {
  using json = nlohmann::json;
  json err = {
      {"error",
       {{"code", code},
        {"message", std::string(message)},
        {"status", std::string(status)},
        {"errors", json::array({{{"domain", code == 403 || code == 429 ? "usageLimits" : "global"},
                                 {"reason", std::string(reason)},
                                 {"message", std::string(message)}}})}}}};
  return JsonResponse(code, err);
}

std::optional<FakeHttpResponse> GoogleFaultResponse(GoogleFault fault, Clock &clock) {
  switch (fault) {
    case GoogleFault::k429RetryAfterSeconds:
    case GoogleFault::k429RetryAfterDate: {
      FakeHttpResponse r =
          GoogleError(429, "RESOURCE_EXHAUSTED", "rateLimitExceeded", "Rate Limit Exceeded");
      AddRetryAfter(fault == GoogleFault::k429RetryAfterSeconds ? RetryAfterForm::kSeconds
                                                                : RetryAfterForm::kHttpDate,
                    kFaultRetryAfter, clock, r);
      return r;
    }
    case GoogleFault::k403UserRateLimit:
      return GoogleError(403, "PERMISSION_DENIED", "userRateLimitExceeded",
                         "User Rate Limit Exceeded");
    case GoogleFault::k403RateLimit:
      return GoogleError(403, "PERMISSION_DENIED", "rateLimitExceeded", "Rate Limit Exceeded");
    case GoogleFault::k500:
      return GoogleError(500, "INTERNAL", "internalError", "Internal Error");
    case GoogleFault::k503:
      return GoogleError(503, "UNAVAILABLE", "backendError", "The service is unavailable.");
    case GoogleFault::k401:
      return GoogleError(401, "UNAUTHENTICATED", "authError", "Invalid Credentials");
    case GoogleFault::kDisconnect:
    case GoogleFault::kEmptyPage:
    case GoogleFault::kDuplicate:
      return std::nullopt;
  }
  return std::nullopt;
}

}  // namespace tessera::connectors::testing
