// SyncHarness: the plumbing every test of a connector against its fake API
// server (Drive, Gmail, SharePoint) sets up the same way: a simulated clock
// that advances on sleep (retries never wait), rotating bearer tokens
// ("tok-1", "tok-2", ...), a curl transport, retrying clients, a `:memory:`
// checkpoint store and an in-memory sink. A gtest fixture inherits it next to
// ::testing::Test and calls Open() from SetUp.
//
// ConvergenceHarness adds what the randomised convergence tests share: the
// seeded random choices, a sink that crashes on cue, the mid-round "kill the
// daemon" and the context a failing round prints.
#ifndef TESSERA_CONNECTORS_TESTING_SYNC_HARNESS_H_
#define TESSERA_CONNECTORS_TESTING_SYNC_HARNESS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/http/http_transport.h"
#include "common/sqlite.h"
#include "connectors/auth/testing/rotating_token_source.h"
#include "connectors/framework/checkpoint_store.h"
#include "connectors/framework/in_memory.h"
#include "connectors/framework/sync_runner.h"
#include "connectors/http/retrying_client.h"
#include "connectors/testing/convergence.h"

namespace tessera::connectors::testing {

class SyncHarness {
 protected:
  // Opens transport_, db_ and store_.
  [[nodiscard]] absl::Status Open();

  // A client over transport_ on clock_ with the jitter fixed at 0.5;
  // `tokens` (not owned) authorises each attempt, none when null.
  [[nodiscard]] std::unique_ptr<RetryingHttpClient> MakeClient(
      TokenSource *tokens, int max_attempts = RetryPolicy().max_attempts);

  // The ids of `docs`, in order.
  [[nodiscard]] static std::vector<std::string> IdsOf(
      const std::map<std::string, ConnectorDocument> &docs);

  SimulatedClock clock_{SimulatedClock::Options{.auto_advance = true}};
  RotatingTokenSource tokens_;
  std::unique_ptr<HttpTransport> transport_;
  std::unique_ptr<SqliteDatabase> db_;
  std::unique_ptr<SqliteCheckpointStore> store_;
  InMemorySink sink_;
};

class ConvergenceHarness : public SyncHarness {
 protected:
  virtual ~ConvergenceHarness() = default;

  // Seeds the random choices with the test's seed.
  void Seed(uint32_t seed);

  // Uniform in [0, n).
  int Rand(int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng_); }
  bool Chance(double p) { return std::bernoulli_distribution(p)(rng_); }
  template <typename T>
  const T &Pick(const std::vector<T> &v) {
    return v[Rand(static_cast<int>(v.size()))];
  }
  // Two to five words from a small vocabulary.
  std::string Words();

  // The current token stays accepted until the server expires it; the next
  // few are accepted ahead so that a refresh succeeds.
  void AcceptUpcomingTokens();

  // Kills the daemon mid-round at random: arms crashing_sink_ to fail after
  // K acknowledged calls, or returns runner options whose before_commit
  // fails on the K-th page (K in 1..4). Logs the choice.
  [[nodiscard]] SyncRunner::Options ArmRandomCrash(std::vector<std::string> *log);

  // "seed=S round=R events: ..." for a failing round.
  [[nodiscard]] std::string Context(int round, const std::vector<std::string> &log) const {
    return RoundContext(seed_, round, log);
  }

  // Runs `rounds` rounds against a daemon started fresh: each round (after
  // the first) mutates the source 2..8 times, injects faults, sometimes
  // (35%) kills the daemon mid-round (ArmRandomCrash), maybe mutates while
  // it is down and starts a new one over the same checkpoints; then a sync
  // must succeed and FirstDifference() must be "".
  void RunRounds(int rounds);

  // --- What RunRounds needs from the test ----------------------------------
  // A new connector and runner (empty caches) over store_ and crashing_sink_.
  virtual void StartDaemon(SyncRunner::Options runner_options) = 0;
  // One random change to the source, mirrored in the test's model.
  virtual void Mutate() = 0;
  // A few transient faults, each well within the retry budget; logged.
  virtual void InjectFaults(std::vector<std::string> *log) = 0;
  virtual void AcceptToken(const std::string &token) = 0;
  virtual absl::StatusOr<SyncStats> Sync() = 0;
  // "" when the index equals the oracle; otherwise the first difference.
  virtual std::string FirstDifference() = 0;

  std::mt19937 rng_;
  uint32_t seed_ = 0;
  CrashingSink crashing_sink_{&sink_};
};

}  // namespace tessera::connectors::testing

#endif  // TESSERA_CONNECTORS_TESTING_SYNC_HARNESS_H_
