#include "connectors/auth/token_source.h"

#include <algorithm>

namespace tessera::connectors {

bool CachingTokenSource::UsableLocked(absl::Time now) const {
  return has_token_ && now < refresh_at_;
}

absl::StatusOr<std::string> CachingTokenSource::Token() {
  {
    absl::MutexLock lock(&mu_);
    if (UsableLocked(clock_->Now())) return cached_.token;
  }
  absl::MutexLock fetch_lock(&fetch_mu_);
  {
    // Another thread may have fetched while this one waited for fetch_mu_.
    absl::MutexLock lock(&mu_);
    if (UsableLocked(clock_->Now())) return cached_.token;
  }
  return FetchAndStore();
}

absl::StatusOr<std::string> CachingTokenSource::Refresh() {
  int64_t seen;
  {
    absl::MutexLock lock(&mu_);
    seen = generation_;
  }
  absl::MutexLock fetch_lock(&fetch_mu_);
  {
    // If a fetch completed since this call began, its token is the fresh one
    // that the caller needs: don't hit the endpoint again.
    absl::MutexLock lock(&mu_);
    if (generation_ != seen && UsableLocked(clock_->Now())) return cached_.token;
    has_token_ = false;
  }
  return FetchAndStore();
}

absl::StatusOr<std::string> CachingTokenSource::FetchAndStore() {
  absl::StatusOr<AccessToken> fetched = Fetch();
  if (!fetched.ok()) return fetched.status();
  const absl::Time now = clock_->Now();
  absl::MutexLock lock(&mu_);
  cached_ = *std::move(fetched);
  const absl::Duration lifetime = cached_.expiry - now;
  refresh_at_ = cached_.expiry == absl::InfiniteFuture()
                    ? absl::InfiniteFuture()
                    : cached_.expiry - std::min(margin_, lifetime / 2);
  has_token_ = true;
  ++generation_;
  return cached_.token;
}

int64_t CachingTokenSource::fetch_count() const {
  absl::MutexLock lock(&mu_);
  return generation_;
}

}  // namespace tessera::connectors
