// CheckpointStore: durable per-(connector, scope) checkpoints in SQLite.
//
// The SyncRunner writes a checkpoint only after the DocumentSink acknowledged
// the page it follows, so what is stored is always a point the index has
// reached. Put() commits in its own transaction (synchronous=FULL by default
// in common/sqlite), so an acknowledged Put survives kill -9.
//
// The store migrates its own table and therefore wants a database of its own
// (common/sqlite numbers migrations per database).
//
// Thread-compatible: serialise calls (the runner does).
#ifndef TESSERA_CONNECTORS_FRAMEWORK_CHECKPOINT_STORE_H_
#define TESSERA_CONNECTORS_FRAMEWORK_CHECKPOINT_STORE_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/clock.h"
#include "common/sqlite.h"

namespace tessera::connectors {

class SqliteCheckpointStore {
 public:
  // Migrates `db` (not owned; must outlive the store). `clock` stamps updates.
  // Errors: those of SqliteDatabase::Migrate.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SqliteCheckpointStore>> Create(
      SqliteDatabase *db, Clock *clock);

  // The stored checkpoint, or nullopt when the scope has none yet.
  [[nodiscard]] absl::StatusOr<std::optional<std::string>> Get(absl::string_view connector_id,
                                                               absl::string_view scope);
  // Stores (replaces) the checkpoint durably.
  [[nodiscard]] absl::Status Put(absl::string_view connector_id, absl::string_view scope,
                                 absl::string_view checkpoint);
  // Forgets the checkpoint: the next sync of the scope is a full one.
  [[nodiscard]] absl::Status Clear(absl::string_view connector_id, absl::string_view scope);

 private:
  SqliteCheckpointStore(SqliteDatabase *db, Clock *clock) : db_(db), clock_(clock) {}
  SqliteDatabase *const db_;
  Clock *const clock_;
};

}  // namespace tessera::connectors

#endif  // TESSERA_CONNECTORS_FRAMEWORK_CHECKPOINT_STORE_H_
