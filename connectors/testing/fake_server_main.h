// RunFakeServerMain: the body of the fake API servers' demo binaries
// (fake_drive, fake_gmail, fake_graph): start, seed, print the base URL on
// stdout, serve until SIGINT or SIGTERM.
#ifndef TESSERA_CONNECTORS_TESTING_FAKE_SERVER_MAIN_H_
#define TESSERA_CONNECTORS_TESTING_FAKE_SERVER_MAIN_H_

#include <signal.h>

#include <cstdio>
#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace tessera::connectors::testing {

// Blocks SIGINT and SIGTERM in the calling thread (and the threads it starts
// later) and returns them, for WaitForStopSignal.
inline sigset_t BlockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

inline void WaitForStopSignal(const sigset_t &set) {
  int sig = 0;
  sigwait(&set, &sig);
}

// Blocks the stop signals before any server thread starts, starts the server
// and seeds it (errors go to stderr as "<name>: ..." with exit code 1),
// prints its base URL on stdout, calls `serving` (e.g. to read commands on
// another thread) and returns 0 once a stop signal arrives.
template <typename Server>
int RunFakeServerMain(const char *name,
                      const std::function<absl::StatusOr<std::unique_ptr<Server>>()> &start,
                      const std::function<absl::Status(Server &)> &seed,
                      const std::function<void(Server &)> &serving = nullptr) {
  sigset_t stop = BlockStopSignals();
  absl::StatusOr<std::unique_ptr<Server>> server = start();
  if (!server.ok()) {
    std::fprintf(stderr, "%s: %s\n", name, server.status().ToString().c_str());
    return 1;
  }
  if (absl::Status st = seed(**server); !st.ok()) {
    std::fprintf(stderr, "%s: seed: %s\n", name, st.ToString().c_str());
    return 1;
  }
  std::printf("%s\n", (*server)->base_url().c_str());
  std::fflush(stdout);
  if (serving) serving(**server);
  WaitForStopSignal(stop);
  return 0;
}

}  // namespace tessera::connectors::testing

#endif  // TESSERA_CONNECTORS_TESTING_FAKE_SERVER_MAIN_H_
