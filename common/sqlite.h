// A thin RAII layer over SQLite, the source of truth for everything Tessera
// stores (documents, chunks, ACLs, checkpoints, keys, agents, conversations).
//
//   ASSIGN_OR_RETURN(auto db, SqliteDatabase::Open(path, {}));
//   RETURN_IF_ERROR(db->Migrate(kMigrations));
//   ASSIGN_OR_RETURN(auto stmt, db->Prepare("SELECT name FROM t WHERE id = ?"));
//   RETURN_IF_ERROR(stmt.Bind(1, id));
//   ASSIGN_OR_RETURN(bool row, stmt.Step());
//
// Defaults: WAL journal, synchronous=FULL (an acknowledged commit survives
// kill -9 and power loss), foreign keys on, a busy timeout. Migrations are
// numbered, each applied once in its own transaction and recorded in
// PRAGMA user_version; a database written by a newer version is refused.
//
// Error codes: SQLITE_BUSY/LOCKED -> UNAVAILABLE (retryable), CONSTRAINT ->
// ALREADY_EXISTS for unique/primary key, FAILED_PRECONDITION otherwise,
// CORRUPT/NOTADB -> DATA_LOSS, FULL -> RESOURCE_EXHAUSTED, CANTOPEN ->
// NOT_FOUND or PERMISSION_DENIED, misuse/range -> INVALID_ARGUMENT,
// others INTERNAL. Messages carry SQLite's text and the failing SQL's start.
//
// Thread-safety: an SqliteDatabase is one connection and is thread-compatible
// (serialise access, or open one connection per thread: WAL lets readers run
// beside one writer). Statements belong to their database and must not
// outlive it.
#ifndef TESSERA_COMMON_SQLITE_H_
#define TESSERA_COMMON_SQLITE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

struct sqlite3;
struct sqlite3_stmt;

namespace tessera {

class SqliteDatabase;

// A prepared statement. Move-only; finalized on destruction.
class SqliteStatement {
 public:
  SqliteStatement(SqliteStatement&& other) noexcept;
  SqliteStatement& operator=(SqliteStatement&& other) noexcept;
  ~SqliteStatement();

  // Parameters are 1-based, as in SQLite.
  [[nodiscard]] absl::Status Bind(int index, int64_t value);
  [[nodiscard]] absl::Status Bind(int index, int value) { return Bind(index, int64_t{value}); }
  [[nodiscard]] absl::Status Bind(int index, double value);
  [[nodiscard]] absl::Status Bind(int index, absl::string_view text);
  [[nodiscard]] absl::Status Bind(int index, const char* text) {
    return Bind(index, absl::string_view(text));
  }
  [[nodiscard]] absl::Status Bind(int index, const std::string& text) {
    return Bind(index, absl::string_view(text));
  }
  [[nodiscard]] absl::Status BindBlob(int index, absl::string_view bytes);
  [[nodiscard]] absl::Status BindNull(int index);

  // Advances: true when a row is available, false when done.
  [[nodiscard]] absl::StatusOr<bool> Step();
  // Runs to completion, expecting no rows (INSERT/UPDATE/DELETE/DDL).
  [[nodiscard]] absl::Status Run();
  // Clears bindings and rewinds for reuse.
  [[nodiscard]] absl::Status Reset();

  int ColumnCount() const;
  bool IsNull(int col) const;  // columns are 0-based, as in SQLite
  int64_t ColumnInt(int col) const;
  double ColumnDouble(int col) const;
  std::string ColumnText(int col) const;
  std::string ColumnBlob(int col) const;

 private:
  friend class SqliteDatabase;
  SqliteStatement(SqliteDatabase* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  absl::Status BindResult(int rc, int index);
  SqliteDatabase* db_;
  sqlite3_stmt* stmt_;
};

// One numbered schema step. Versions start at 1 and increase by one.
struct SqliteMigration {
  int version;
  std::string description;
  std::string sql;  // may hold several statements
};

class SqliteDatabase {
 public:
  struct Options {
    bool wal = true;
    bool synchronous_full = true;
    bool read_only = false;
    absl::Duration busy_timeout = absl::Seconds(5);
    bool create_if_missing = true;
  };
  // `path` may be ":memory:" for a private in-memory database.
  static absl::StatusOr<std::unique_ptr<SqliteDatabase>> Open(absl::string_view path,
                                                               Options options);
  ~SqliteDatabase();
  SqliteDatabase(const SqliteDatabase&) = delete;
  SqliteDatabase& operator=(const SqliteDatabase&) = delete;

  [[nodiscard]] absl::StatusOr<SqliteStatement> Prepare(absl::string_view sql);
  // Runs one or more statements that return no rows.
  [[nodiscard]] absl::Status Exec(absl::string_view sql);

  // Applies the migrations above the current user_version, in order, each in
  // its own transaction. FAILED_PRECONDITION when the database is newer than
  // the last migration (an older binary must not touch it), or when the list
  // is not numbered 1..N.
  [[nodiscard]] absl::Status Migrate(const std::vector<SqliteMigration>& migrations);
  [[nodiscard]] absl::StatusOr<int> SchemaVersion();

  int64_t LastInsertRowId() const;
  int Changes() const;  // rows changed by the last statement
  const std::string& path() const { return path_; }
  sqlite3* raw() { return db_; }

  // Turns an SQLite result code into a status (see file comment).
  absl::Status ErrorStatus(int rc, absl::string_view context) const;

 private:
  SqliteDatabase(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
};

// RAII transaction. BEGIN IMMEDIATE on creation (takes the write lock up
// front, so a busy database fails here rather than at commit). Rolls back on
// destruction unless Commit() succeeded.
class SqliteTransaction {
 public:
  static absl::StatusOr<std::unique_ptr<SqliteTransaction>> Begin(SqliteDatabase* db);
  ~SqliteTransaction();
  [[nodiscard]] absl::Status Commit();
  [[nodiscard]] absl::Status Rollback();

 private:
  explicit SqliteTransaction(SqliteDatabase* db) : db_(db) {}
  SqliteDatabase* db_;
  bool done_ = false;
};

}  // namespace tessera

#endif  // TESSERA_COMMON_SQLITE_H_
