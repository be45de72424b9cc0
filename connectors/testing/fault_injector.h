// FaultInjector: the queue of faults a fake API server (FakeDriveServer,
// FakeGmailServer, FakeGraphServer) injects into the requests it serves, and
// the Retry-After header its throttling faults carry.
//
// A fault is injected for the next N requests whose path starts with a
// prefix. Faults stack in injection order; a request takes the first one with
// requests left whose prefix matches (so "/drive/v3/changes" also matches
// "/drive/v3/changes/startPageToken"). `Kind` is the fake's own catalogue
// (an enum): what the fake does with the fault is up to it.
//
// Not thread-safe: the fake guards it with its own mutex.
#ifndef TESSERA_CONNECTORS_TESTING_FAULT_INJECTOR_H_
#define TESSERA_CONNECTORS_TESTING_FAULT_INJECTOR_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/http/fake_http_server.h"

namespace tessera::connectors::testing {

template <typename Kind>
class FaultInjector {
 public:
  // The next `times` requests whose path starts with `path_prefix` get `kind`.
  void Inject(absl::string_view path_prefix, Kind kind, int times = 1) {
    faults_.push_back({std::string(path_prefix), kind, times});
  }

  // The fault for a request to `path`, using up one of its requests; nullopt
  // when no injected fault with requests left matches.
  [[nodiscard]] std::optional<Kind> Take(absl::string_view path) {
    for (Entry &f : faults_) {
      if (f.remaining > 0 && absl::StartsWith(path, f.prefix)) {
        --f.remaining;
        return f.kind;
      }
    }
    return std::nullopt;
  }

  // Drops the faults no request has used up yet.
  void Clear() { faults_.clear(); }

 private:
  struct Entry {
    std::string prefix;
    Kind kind;
    int remaining;
  };
  std::vector<Entry> faults_;
};

// How a throttled response says when to come back.
enum class RetryAfterForm {
  kSeconds,   // "Retry-After: 2"
  kHttpDate,  // "Retry-After: Sun, 06 Nov 1994 08:49:39 GMT", `delay` past the clock
};

// How long the fakes' throttling faults ask the client to wait.
inline constexpr absl::Duration kFaultRetryAfter = absl::Seconds(2);

// `t` as an RFC 9110 IMF-fixdate ("Sun, 06 Nov 1994 08:49:39 GMT").
[[nodiscard]] std::string HttpDate(absl::Time t);

// Adds a Retry-After header to `response`: `delay` in whole seconds, or the
// HTTP-date clock.Now() + `delay`.
void AddRetryAfter(RetryAfterForm form, absl::Duration delay, Clock &clock,
                   FakeHttpResponse &response);

}  // namespace tessera::connectors::testing

#endif  // TESSERA_CONNECTORS_TESTING_FAULT_INJECTOR_H_
