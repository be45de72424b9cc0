// TokenSource: where connectors get OAuth2 access tokens.
//
// A TokenSource hands out bearer tokens for one identity (a user's refresh
// token, a Google service account, a Microsoft Graph app registration). The
// RetryingHttpClient (connectors/http/retrying_client.h) asks it for a token
// before each request and calls Refresh() once after a 401.
//
// CachingTokenSource implements the caching every concrete source needs:
// a token is reused until `expiry - margin`, concurrent callers share one
// fetch (no stampede on the token endpoint), and Refresh() called by several
// threads that all saw the same 401 fetches once, not once per thread.
#ifndef TESSERA_CONNECTORS_AUTH_TOKEN_SOURCE_H_
#define TESSERA_CONNECTORS_AUTH_TOKEN_SOURCE_H_

#include <cstdint>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace tessera::connectors {

// Thread-safe. Errors are those of the concrete source (see its header); the
// message never contains a token or a secret.
class TokenSource {
 public:
  virtual ~TokenSource() = default;
  // A currently valid access token (without the "Bearer " prefix).
  [[nodiscard]] virtual absl::StatusOr<std::string> Token() = 0;
  // Discards the cached token and fetches a new one (after the server said 401).
  [[nodiscard]] virtual absl::StatusOr<std::string> Refresh() = 0;
};

// An access token and the moment it stops being valid.
struct AccessToken {
  std::string token;
  absl::Time expiry = absl::InfiniteFuture();
};

// Base class for sources that fetch tokens from somewhere: subclasses
// implement Fetch(); Token() and Refresh() add caching. Thread-safe; Fetch()
// is never called concurrently on one instance. `clock` is not owned and must
// outlive the source.
class CachingTokenSource : public TokenSource {
 public:
  explicit CachingTokenSource(Clock* clock, absl::Duration margin = absl::Minutes(2))
      : clock_(clock), margin_(margin) {}

  absl::StatusOr<std::string> Token() final;
  absl::StatusOr<std::string> Refresh() final;

  // Number of successful Fetch() calls so far (for tests and metrics).
  int64_t fetch_count() const;

 protected:
  // Obtains a new token. Called with fetch_mu_ held (one fetch at a time).
  [[nodiscard]] virtual absl::StatusOr<AccessToken> Fetch() = 0;
  Clock* clock() const { return clock_; }

 private:
  // Fetches, stores and returns a token; fetch_mu_ must be held.
  absl::StatusOr<std::string> FetchAndStore() ABSL_EXCLUSIVE_LOCKS_REQUIRED(fetch_mu_);
  bool UsableLocked(absl::Time now) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  Clock* const clock_;
  const absl::Duration margin_;
  absl::Mutex fetch_mu_ ABSL_ACQUIRED_BEFORE(mu_);  // serialises Fetch()
  mutable absl::Mutex mu_;
  AccessToken cached_ ABSL_GUARDED_BY(mu_);
  // When the cached token stops being handed out: expiry minus the margin, or
  // minus half its lifetime for tokens shorter-lived than twice the margin.
  absl::Time refresh_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  bool has_token_ ABSL_GUARDED_BY(mu_) = false;
  int64_t generation_ ABSL_GUARDED_BY(mu_) = 0;  // bumped by each successful fetch
};

// A fixed token, for tests and for APIs configured with a static bearer.
// Refresh() returns the same token (so a second 401 surfaces).
class StaticTokenSource : public TokenSource {
 public:
  explicit StaticTokenSource(std::string token) : token_(std::move(token)) {}
  absl::StatusOr<std::string> Token() override { return token_; }
  absl::StatusOr<std::string> Refresh() override { return token_; }

 private:
  const std::string token_;
};

}  // namespace tessera::connectors

#endif  // TESSERA_CONNECTORS_AUTH_TOKEN_SOURCE_H_
