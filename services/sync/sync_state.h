// SyncRunRecord: what the sync daemon last did for one connector, kept in its
// state directory so that `tessera connector list` (another process, maybe
// while the daemon runs or after it died) can show it.
//
// One small JSON file per connector, STATE_DIR/runs/CONNECTOR_ID.json,
// replaced atomically (write a temporary file, then rename) when a run starts,
// after every acknowledged page and when the run ends. A record that says
// "running" but whose pid is gone belongs to a daemon that was killed
// mid-run; its next run resumes from the last checkpoint.
#ifndef TESSERA_SERVICES_SYNC_SYNC_STATE_H_
#define TESSERA_SERVICES_SYNC_SYNC_STATE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/file_system.h"

namespace tessera::sync {

struct SyncRunRecord {
  std::string connector_id;
  bool running = false;
  int64_t pid = 0;  // of the daemon that wrote the record
  absl::Time started = absl::InfinitePast();
  absl::Time finished = absl::InfinitePast();      // InfinitePast while running
  absl::Time last_success = absl::InfinitePast();  // end of the last run that succeeded
  bool full_sync = false;
  int64_t pages = 0;
  int64_t seen = 0;
  int64_t indexed = 0;
  int64_t deleted = 0;
  int64_t failed = 0;
  std::string error;  // the last run's error; empty when it succeeded
};

// STATE_DIR/runs/CONNECTOR_ID.json.
[[nodiscard]] std::string SyncRunRecordPath(absl::string_view state_dir,
                                            absl::string_view connector_id);

[[nodiscard]] std::string SyncRunRecordToJson(const SyncRunRecord &record);
// INVALID_ARGUMENT when `json` is not a record.
[[nodiscard]] absl::StatusOr<SyncRunRecord> SyncRunRecordFromJson(absl::string_view json);

// Writes the record atomically, creating STATE_DIR/runs when missing.
[[nodiscard]] absl::Status WriteSyncRunRecord(absl::string_view state_dir,
                                              const SyncRunRecord &record, FileSystem *fs);
// nullopt when the connector has no record yet; errors of reading/parsing.
[[nodiscard]] absl::StatusOr<std::optional<SyncRunRecord>> ReadSyncRunRecord(
    absl::string_view state_dir, absl::string_view connector_id, FileSystem *fs);

}  // namespace tessera::sync

#endif  // TESSERA_SERVICES_SYNC_SYNC_STATE_H_
