// SyncDaemon: runs the configured connectors into retrieval on schedules.
//
// Each enabled connector of the SyncConfig gets its own SyncRunner, Drive
// client and RetrievalSink, and runs at most once at a time (a per-connector
// mutex: per-source concurrency of 1); different connectors run in parallel
// under Start(). Checkpoints live in STATE_DIR/checkpoints.db and the sink's
// ledger in STATE_DIR/sink_ledger.db, so a new daemon over the same state dir
// resumes each connector from its last acknowledged page: only what changed
// since is fetched and re-ingested.
//
// Progress: the callback hears, per connector, a kStarted event, a kPage event
// after each acknowledged page (counts so far in this run), and a kFinished
// event (the run's final counts and status). Status() returns a snapshot of
// every connector: running or not, the last run's counts and error, totals
// since the daemon started, and the next scheduled run.
//
// Run records: the daemon also keeps, per connector, a SyncRunRecord in
// STATE_DIR/runs/ (see sync_state.h), rewritten when a run starts, after each
// acknowledged page and when it ends, for `tessera connector list`.
//
// Counting: `indexed` counts documents retrieval acknowledged as written;
// documents retrieval refused for good (bad ACL, no content) count as
// `failed`, with the connector's own fetch/parse failures.
//
// Thread-safe. Stop() waits for runs in progress to end (a run is not
// interrupted mid-page; its next page is replayed on the next run anyway).
#ifndef TESSERA_SERVICES_SYNC_SYNC_DAEMON_H_
#define TESSERA_SERVICES_SYNC_SYNC_DAEMON_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/http/http_transport.h"
#include "connectors/connector.h"
#include "grpcpp/client_context.h"
#include "services/sync/sync_config.h"
#include "tessera/v1/retrieval.grpc.pb.h"

namespace tessera::sync {

// Counts of one run, or totals over runs.
struct SyncCounts {
  int64_t pages = 0;
  int64_t seen = 0;
  int64_t indexed = 0;
  int64_t deleted = 0;
  int64_t failed = 0;
};

struct SyncProgress {
  enum class Event { kStarted, kPage, kFinished };
  Event event = Event::kStarted;
  std::string connector_id;
  std::string source;  // "gdrive"
  std::string collection;
  bool full_sync = false;
  SyncCounts run;                                     // this run so far
  absl::Status status;                                // kFinished: the run's outcome
  std::vector<connectors::DocumentFailure> failures;  // kPage/kFinished: new failures
};

struct ConnectorStatus {
  std::string connector_id;
  std::string source;
  std::string collection;
  bool running = false;
  int64_t runs = 0;
  SyncCounts last_run;
  absl::Status last_status;  // OK before the first run
  absl::Time last_start = absl::InfinitePast();
  absl::Time last_end = absl::InfinitePast();
  absl::Time next_run = absl::InfinitePast();
  SyncCounts totals;  // since this daemon started
};

class SyncDaemon {
 public:
  struct Options {
    SyncConfig config;
    std::string state_dir;  // created if missing; required
    // A new RetrievalService stub (one per connector). Required.
    std::function<std::unique_ptr<v1::RetrievalService::StubInterface>()> new_retrieval_stub;
    // Adds credentials to every retrieval call (an admin key). Required.
    std::function<void(grpc::ClientContext *)> prepare_context;
    // Creates a missing collection (built-in lexical embeddings) before a run.
    bool create_missing_collections = false;
    HttpTransport *http = nullptr;  // for the connectors; not owned; required
    Clock *clock = nullptr;         // null: RealClock()
    std::function<void(const SyncProgress &)> on_progress;  // optional; called on sync threads
    int max_reported_failures = 20;
    // Keep STATE_DIR/runs/ID.json up to date (failures to write are logged).
    bool write_run_records = true;
  };

  // Opens the state, builds every enabled connector. INVALID_ARGUMENT for bad
  // options (naming the connector), errors of SQLite.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SyncDaemon>> Create(Options options);
  ~SyncDaemon();  // Stop()s

  // Runs every enabled connector once, in order, now. Returns the first
  // error (prefixed with the connector id) after running them all.
  [[nodiscard]] absl::Status RunOnce();
  // Runs one connector now (waits for a run in progress). NOT_FOUND for an
  // unknown id.
  [[nodiscard]] absl::Status RunConnector(absl::string_view connector_id);

  // Starts one scheduling thread per connector: run now, then every interval
  // (measured on the clock from the start of the previous run; a failed run
  // is retried after the interval too). Idempotent.
  void Start();
  // Stops the threads after their current run. Idempotent.
  void Stop();

  [[nodiscard]] std::vector<ConnectorStatus> Status() const;

 private:
  struct Worker;
  explicit SyncDaemon(Options options);
  absl::Status Run(Worker *w);
  absl::Status EnsureCollection(Worker *w);
  void Loop(Worker *w);

  Options options_;
  Clock *clock_;
  std::vector<std::unique_ptr<Worker>> workers_;
  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace tessera::sync

#endif  // TESSERA_SERVICES_SYNC_SYNC_DAEMON_H_
