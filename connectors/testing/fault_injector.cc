#include "connectors/testing/fault_injector.h"

#include "absl/strings/str_cat.h"

namespace tessera::connectors::testing {

std::string HttpDate(absl::Time t) {
  return absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", t, absl::UTCTimeZone());
}

void AddRetryAfter(RetryAfterForm form, absl::Duration delay, Clock &clock,
                   FakeHttpResponse &response) {
  response.headers.Add("Retry-After", form == RetryAfterForm::kSeconds
                                          ? absl::StrCat(absl::ToInt64Seconds(delay))
                                          : HttpDate(clock.Now() + delay));
}

}  // namespace tessera::connectors::testing
