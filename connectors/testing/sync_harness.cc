#include "connectors/testing/sync_harness.h"

#include <utility>

#include "common/http/curl_http_transport.h"
#include "common/status.h"
#include "gtest/gtest.h"

namespace tessera::connectors::testing {

absl::Status SyncHarness::Open() {
  ASSIGN_OR_RETURN(transport_, CurlHttpTransport::Create({}));
  ASSIGN_OR_RETURN(db_, SqliteDatabase::Open(":memory:", {}));
  ASSIGN_OR_RETURN(store_, SqliteCheckpointStore::Create(db_.get(), &clock_));
  return absl::OkStatus();
}

std::unique_ptr<RetryingHttpClient> SyncHarness::MakeClient(TokenSource *tokens, int max_attempts) {
  RetryingHttpClient::Options options;
  options.token_source = tokens;
  options.jitter = [] { return 0.5; };
  options.policy.max_attempts = max_attempts;
  return std::make_unique<RetryingHttpClient>(transport_.get(), &clock_, options);
}

std::vector<std::string> SyncHarness::IdsOf(const std::map<std::string, ConnectorDocument> &docs) {
  std::vector<std::string> out;
  for (const auto &[id, d] : docs) out.push_back(id);
  return out;
}

void ConvergenceHarness::Seed(uint32_t seed) {
  seed_ = seed;
  rng_.seed(seed);
}

std::string ConvergenceHarness::Words() {
  static const std::vector<std::string> kWords = {"alpha", "beta",   "gamma", "delta",
                                                  "plan",  "budget", "q3",    "notes"};
  std::string s = Pick(kWords);
  int n = 1 + Rand(4);
  for (int i = 0; i < n; ++i) absl::StrAppend(&s, " ", Pick(kWords));
  return s;
}

void ConvergenceHarness::AcceptUpcomingTokens() {
  int g = tokens_.generation();
  for (int i = g + 1; i <= g + 4; ++i) AcceptToken(absl::StrCat("tok-", i));
}

SyncRunner::Options ConvergenceHarness::ArmRandomCrash(std::vector<std::string> *log) {
  int k = 1 + Rand(4);
  SyncRunner::Options crashing;
  bool in_sink = Chance(0.5);
  if (in_sink) {
    crashing_sink_.Arm(k);
  } else {
    auto pages = std::make_shared<int>(0);
    crashing.before_commit = [pages, k](const ChangePage &) {
      return ++*pages == k ? absl::AbortedError("killed") : absl::OkStatus();
    };
  }
  log->push_back(absl::StrCat("crash ", in_sink ? "in sink" : "before commit", " at ", k));
  return crashing;
}

void ConvergenceHarness::RunRounds(int rounds) {
  ASSERT_NO_FATAL_FAILURE(StartDaemon({}));
  for (int round = 0; round < rounds; ++round) {
    std::vector<std::string> log;
    if (round > 0) {
      int n = 2 + Rand(7);
      for (int i = 0; i < n; ++i) ASSERT_NO_FATAL_FAILURE(Mutate());
      log.push_back(absl::StrCat(n, " mutations"));
    }
    ASSERT_NO_FATAL_FAILURE(InjectFaults(&log));
    AcceptUpcomingTokens();
    if (Chance(0.35)) {
      ASSERT_NO_FATAL_FAILURE(StartDaemon(ArmRandomCrash(&log)));
      (void)Sync();  // may finish before the crash point
      crashing_sink_.Disarm();
      if (Chance(0.5)) {  // the source moves on while the daemon is down
        for (int i = 0, n = 1 + Rand(3); i < n; ++i) ASSERT_NO_FATAL_FAILURE(Mutate());
        log.push_back("mutations while down");
      }
      ASSERT_NO_FATAL_FAILURE(StartDaemon({}));  // a new process over the same checkpoints
    }
    absl::StatusOr<SyncStats> stats = Sync();
    ASSERT_TRUE(stats.ok()) << stats.status() << " " << Context(round, log);
    ASSERT_EQ(FirstDifference(), "") << Context(round, log);
  }
}

}  // namespace tessera::connectors::testing
