// SyncRunner: drives a Connector into a DocumentSink, one scope at a time,
// with durable checkpoints.
//
// For each page the connector emits, the runner applies the deletes, then the
// upserts, waits for the sink's acknowledgement, and only then commits the
// page's checkpoint to the SqliteCheckpointStore. A crash anywhere before the
// commit makes the next run start again from the previous checkpoint: the
// page is replayed (sink calls are idempotent), never skipped.
//
// A scope without a checkpoint gets a full sync; otherwise an incremental one.
// After a page that completes a full listing, and whenever Prune() is called
// (periodically, as a safety net against missed delete events), the ids the
// sink holds for the source but the connector no longer lists are deleted.
//
// Documents the connector could not fetch or parse are counted and reported
// in SyncStats::failures; the sync goes on.
//
// Thread-compatible: one call at a time per runner.
#ifndef TESSERA_CONNECTORS_FRAMEWORK_SYNC_RUNNER_H_
#define TESSERA_CONNECTORS_FRAMEWORK_SYNC_RUNNER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "connectors/connector.h"
#include "connectors/framework/checkpoint_store.h"

namespace tessera::connectors {

struct SyncStats {
  int64_t pages = 0;
  int64_t seen = 0;     // upserts + deletes + failures the connector reported
  int64_t indexed = 0;  // documents upserted and acknowledged
  int64_t deleted = 0;  // ids deleted (change feed and prune)
  int64_t pruned = 0;   // of which found by pruning
  int64_t failed = 0;   // documents that could not be fetched or parsed
  bool full_sync = false;
  std::vector<DocumentFailure> failures;  // the first max_reported_failures
};

class SyncRunner {
 public:
  struct Options {
    // Key of the connector instance in the checkpoint store (one per
    // configured connection, e.g. "gdrive:acme").
    std::string connector_id;
    // Prune after a page that completes a full listing.
    bool prune_after_full_listing = true;
    size_t max_reported_failures = 100;
    // Test hook: called after the sink acknowledged a page and before its
    // checkpoint is committed. An error aborts the sync there (a "crash").
    std::function<absl::Status(const ChangePage &)> before_commit;
  };

  // Nothing is owned; all must outlive the runner.
  SyncRunner(Connector *connector, DocumentSink *sink, SqliteCheckpointStore *checkpoints,
             Options options);

  // Syncs one scope from its stored checkpoint (or fully when it has none).
  // Returns the first error of the connector, the sink or the store; the
  // pages acknowledged before it stay committed.
  [[nodiscard]] absl::StatusOr<SyncStats> SyncScope(absl::string_view scope);

  // Syncs every scope of the connector; stops at the first error.
  [[nodiscard]] absl::StatusOr<SyncStats> SyncAll();

  // Deletes from the sink every id of the connector's source that no scope's
  // SlimListing contains. Returns the number of ids deleted.
  [[nodiscard]] absl::StatusOr<int64_t> Prune();

 private:
  absl::Status ApplyPage(absl::string_view scope, ChangePage page, SyncStats *stats);

  Connector *const connector_;
  DocumentSink *const sink_;
  SqliteCheckpointStore *const checkpoints_;
  const Options options_;
};

}  // namespace tessera::connectors

#endif  // TESSERA_CONNECTORS_FRAMEWORK_SYNC_RUNNER_H_
