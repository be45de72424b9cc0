#include "connectors/auth/token_source.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "gtest/gtest.h"

namespace tessera::connectors {
namespace {

class CountingSource : public CachingTokenSource {
 public:
  CountingSource(Clock* clock, absl::Duration lifetime)
      : CachingTokenSource(clock, absl::Minutes(2)), lifetime_(lifetime) {}
  std::atomic<int> fetches{0};
  absl::Notification* gate = nullptr;  // blocks fetches until notified

 protected:
  absl::StatusOr<AccessToken> Fetch() override {
    if (gate != nullptr) gate->WaitForNotification();
    int n = ++fetches;
    if (fail_next) {
      fail_next = false;
      return absl::UnavailableError("endpoint down");
    }
    return AccessToken{absl::StrCat("token-", n), clock()->Now() + lifetime_};
  }

 public:
  bool fail_next = false;

 private:
  absl::Duration lifetime_;
};

TEST(CachingTokenSourceTest, CachesUntilExpiryMinusMargin) {
  SimulatedClock clock;
  CountingSource source(&clock, absl::Hours(1));
  EXPECT_EQ(*source.Token(), "token-1");
  clock.Advance(absl::Minutes(57));
  EXPECT_EQ(*source.Token(), "token-1");
  clock.Advance(absl::Minutes(1) + absl::Seconds(1));  // within the 2-minute margin
  EXPECT_EQ(*source.Token(), "token-2");
  EXPECT_EQ(source.fetches, 2);
  EXPECT_EQ(source.fetch_count(), 2);
}

TEST(CachingTokenSourceTest, ShortLivedTokensUseHalfTheirLifetimeAsMargin) {
  SimulatedClock clock;
  CountingSource source(&clock, absl::Seconds(60));
  EXPECT_EQ(*source.Token(), "token-1");
  clock.Advance(absl::Seconds(29));
  EXPECT_EQ(*source.Token(), "token-1");
  clock.Advance(absl::Seconds(2));
  EXPECT_EQ(*source.Token(), "token-2");
}

TEST(CachingTokenSourceTest, RefreshForcesAFetchAndErrorsAreNotCached) {
  SimulatedClock clock;
  CountingSource source(&clock, absl::Hours(1));
  EXPECT_EQ(*source.Token(), "token-1");
  EXPECT_EQ(*source.Refresh(), "token-2");
  EXPECT_EQ(*source.Token(), "token-2");
  source.fail_next = true;
  EXPECT_EQ(source.Refresh().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(*source.Token(), "token-4");  // the failure dropped the cached token
}

TEST(CachingTokenSourceTest, ConcurrentCallersShareOneFetch) {
  SimulatedClock clock;
  CountingSource source(&clock, absl::Hours(1));
  absl::Notification gate;
  source.gate = &gate;
  std::vector<std::thread> threads;
  std::vector<std::string> got(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] { got[i] = *source.Token(); });
  }
  absl::SleepFor(absl::Milliseconds(50));
  gate.Notify();
  for (auto& t : threads) t.join();
  EXPECT_EQ(source.fetches, 1);
  for (const auto& g : got) EXPECT_EQ(g, "token-1");
}

TEST(CachingTokenSourceTest, ConcurrentRefreshesAfterOne401FetchOnce) {
  SimulatedClock clock;
  CountingSource source(&clock, absl::Hours(1));
  ASSERT_EQ(*source.Token(), "token-1");
  absl::Notification gate;
  source.gate = &gate;
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&] { EXPECT_EQ(*source.Refresh(), "token-2"); });
  }
  absl::SleepFor(absl::Milliseconds(50));
  gate.Notify();
  for (auto& t : threads) t.join();
  EXPECT_EQ(source.fetches, 2);
}

}  // namespace
}  // namespace tessera::connectors
