#include "connectors/framework/checkpoint_store.h"

#include <vector>

#include "absl/time/time.h"
#include "common/status.h"

namespace tessera::connectors {
namespace {

const std::vector<SqliteMigration> &Migrations() {
  static const auto *const kMigrations = new std::vector<SqliteMigration>{
      {1, "connector checkpoints",
       "CREATE TABLE connector_checkpoints ("
       "  connector_id TEXT NOT NULL,"
       "  scope TEXT NOT NULL,"
       "  checkpoint TEXT NOT NULL,"
       "  updated_unix_ms INTEGER NOT NULL,"
       "  PRIMARY KEY (connector_id, scope));"},
  };
  return *kMigrations;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SqliteCheckpointStore>> SqliteCheckpointStore::Create(
    SqliteDatabase *db, Clock *clock) {
  RETURN_IF_ERROR(db->Migrate(Migrations()));
  return std::unique_ptr<SqliteCheckpointStore>(new SqliteCheckpointStore(db, clock));
}

absl::StatusOr<std::optional<std::string>> SqliteCheckpointStore::Get(
    absl::string_view connector_id, absl::string_view scope) {
  ASSIGN_OR_RETURN(auto stmt, db_->Prepare("SELECT checkpoint FROM connector_checkpoints "
                                           "WHERE connector_id = ? AND scope = ?"));
  RETURN_IF_ERROR(stmt.Bind(1, connector_id));
  RETURN_IF_ERROR(stmt.Bind(2, scope));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return std::optional<std::string>();
  return std::optional<std::string>(stmt.ColumnText(0));
}

absl::Status SqliteCheckpointStore::Put(absl::string_view connector_id, absl::string_view scope,
                                        absl::string_view checkpoint) {
  ASSIGN_OR_RETURN(auto stmt,
                   db_->Prepare("INSERT INTO connector_checkpoints "
                                "(connector_id, scope, checkpoint, updated_unix_ms) "
                                "VALUES (?, ?, ?, ?) ON CONFLICT(connector_id, scope) DO UPDATE "
                                "SET checkpoint = excluded.checkpoint, "
                                "updated_unix_ms = excluded.updated_unix_ms"));
  RETURN_IF_ERROR(stmt.Bind(1, connector_id));
  RETURN_IF_ERROR(stmt.Bind(2, scope));
  RETURN_IF_ERROR(stmt.Bind(3, checkpoint));
  RETURN_IF_ERROR(stmt.Bind(4, absl::ToUnixMillis(clock_->Now())));
  return stmt.Run();
}

absl::Status SqliteCheckpointStore::Clear(absl::string_view connector_id, absl::string_view scope) {
  ASSIGN_OR_RETURN(auto stmt, db_->Prepare("DELETE FROM connector_checkpoints "
                                           "WHERE connector_id = ? AND scope = ?"));
  RETURN_IF_ERROR(stmt.Bind(1, connector_id));
  RETURN_IF_ERROR(stmt.Bind(2, scope));
  return stmt.Run();
}

}  // namespace tessera::connectors
