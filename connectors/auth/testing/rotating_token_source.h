// RotatingTokenSource: a TokenSource for connector tests that hands out "tok-1", then "tok-2"
// after each Refresh(), like an OAuth source whose access token expired, so tests can check that
// a 401 leads to exactly one refresh and a retry with the new token.
#ifndef TESSERA_CONNECTORS_AUTH_TESTING_ROTATING_TOKEN_SOURCE_H_
#define TESSERA_CONNECTORS_AUTH_TESTING_ROTATING_TOKEN_SOURCE_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "connectors/auth/token_source.h"

namespace tessera::connectors {

class RotatingTokenSource : public TokenSource {
 public:
  absl::StatusOr<std::string> Token() override {
    absl::MutexLock lock(&mu_);
    return absl::StrCat("tok-", generation_);
  }
  absl::StatusOr<std::string> Refresh() override {
    absl::MutexLock lock(&mu_);
    ++generation_;
    return absl::StrCat("tok-", generation_);
  }
  int generation() {
    absl::MutexLock lock(&mu_);
    return generation_;
  }

 private:
  absl::Mutex mu_;
  int generation_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace tessera::connectors

#endif  // TESSERA_CONNECTORS_AUTH_TESTING_ROTATING_TOKEN_SOURCE_H_
