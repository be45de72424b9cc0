#include "common/sqlite.h"

#include <sqlite3.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace tessera {
namespace {

std::string SqlHead(absl::string_view sql) {
  std::string head(sql.substr(0, 80));
  for (char& c : head) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  return sql.size() > 80 ? head + "..." : head;
}

}  // namespace

absl::Status SqliteDatabase::ErrorStatus(int rc, absl::string_view context) const {
  const int primary = rc & 0xff;
  std::string detail = db_ != nullptr ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
  std::string msg = absl::StrCat(context, ": ", detail, " (sqlite ", rc, ")");
  switch (primary) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(msg);
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
        return absl::AlreadyExistsError(msg);
      }
      return absl::FailedPreconditionError(msg);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(msg);
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return absl::ResourceExhaustedError(msg);
    case SQLITE_CANTOPEN:
      return absl::NotFoundError(msg);
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_AUTH:
      return absl::PermissionDeniedError(msg);
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
    case SQLITE_ERROR:
      return absl::InvalidArgumentError(msg);
    case SQLITE_INTERRUPT:
      return absl::CancelledError(msg);
    default:
      return absl::InternalError(msg);
  }
}

absl::StatusOr<std::unique_ptr<SqliteDatabase>> SqliteDatabase::Open(absl::string_view path,
                                                                      Options options) {
  std::string p(path);
  int flags = SQLITE_OPEN_NOMUTEX;
  if (options.read_only) {
    flags |= SQLITE_OPEN_READONLY;
  } else {
    flags |= SQLITE_OPEN_READWRITE;
    if (options.create_if_missing) flags |= SQLITE_OPEN_CREATE;
  }
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(p.c_str(), &raw, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
    sqlite3_close_v2(raw);
    if ((rc & 0xff) == SQLITE_CANTOPEN) {
      return absl::NotFoundError(absl::StrCat("open database ", p, ": ", msg));
    }
    return absl::InternalError(absl::StrCat("open database ", p, ": ", msg));
  }
  sqlite3_extended_result_codes(raw, 1);
  auto db = std::unique_ptr<SqliteDatabase>(new SqliteDatabase(raw, p));
  sqlite3_busy_timeout(raw, static_cast<int>(absl::ToInt64Milliseconds(options.busy_timeout)));
  // A file that is not a database only shows itself on first read.
  RETURN_IF_ERROR(Annotate(db->Exec("PRAGMA foreign_keys = ON"), absl::StrCat("open ", p)));
  if (!options.read_only) {
    if (options.wal && p != ":memory:") {
      ASSIGN_OR_RETURN(auto stmt, db->Prepare("PRAGMA journal_mode = WAL"));
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row || stmt.ColumnText(0) != "wal") {
        return absl::FailedPreconditionError(absl::StrCat("open ", p, ": cannot enable WAL"));
      }
    }
    RETURN_IF_ERROR(db->Exec(options.synchronous_full ? "PRAGMA synchronous = FULL"
                                                      : "PRAGMA synchronous = NORMAL"));
  }
  // Validate the header now so a corrupt file fails at open, not later.
  ASSIGN_OR_RETURN(auto check, db->Prepare("SELECT count(*) FROM sqlite_schema"));
  RETURN_IF_ERROR(Annotate(check.Step().status(), absl::StrCat("open ", p)));
  return db;
}

SqliteDatabase::~SqliteDatabase() { sqlite3_close_v2(db_); }

absl::StatusOr<SqliteStatement> SqliteDatabase::Prepare(absl::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  int rc = sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &stmt, &tail);
  if (rc != SQLITE_OK) return ErrorStatus(rc, absl::StrCat("prepare [", SqlHead(sql), "]"));
  if (stmt == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("prepare: empty statement [", SqlHead(sql), "]"));
  }
  return SqliteStatement(this, stmt);
}

absl::Status SqliteDatabase::Exec(absl::string_view sql) {
  std::string s(sql);
  char* err = nullptr;
  int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, &err);
  sqlite3_free(err);
  if (rc != SQLITE_OK) return ErrorStatus(rc, absl::StrCat("exec [", SqlHead(sql), "]"));
  return absl::OkStatus();
}

absl::StatusOr<int> SqliteDatabase::SchemaVersion() {
  ASSIGN_OR_RETURN(auto stmt, Prepare("PRAGMA user_version"));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return absl::InternalError("PRAGMA user_version returned no row");
  return static_cast<int>(stmt.ColumnInt(0));
}

absl::Status SqliteDatabase::Migrate(const std::vector<SqliteMigration>& migrations) {
  for (size_t i = 0; i < migrations.size(); ++i) {
    if (migrations[i].version != static_cast<int>(i) + 1) {
      return absl::FailedPreconditionError(absl::StrCat(
          "migrations must be numbered 1..N; entry ", i, " has version ", migrations[i].version));
    }
  }
  ASSIGN_OR_RETURN(int current, SchemaVersion());
  const int latest = static_cast<int>(migrations.size());
  if (current > latest) {
    return absl::FailedPreconditionError(
        absl::StrCat("database ", path_, " has schema version ", current,
                     " but this binary knows only up to ", latest,
                     "; it was written by a newer Tessera. Upgrade the binary."));
  }
  for (int v = current + 1; v <= latest; ++v) {
    const SqliteMigration& m = migrations[static_cast<size_t>(v - 1)];
    ASSIGN_OR_RETURN(auto txn, SqliteTransaction::Begin(this));
    RETURN_IF_ERROR(Annotate(Exec(m.sql), absl::StrCat("migration ", v, " (", m.description, ")")));
    RETURN_IF_ERROR(Exec(absl::StrCat("PRAGMA user_version = ", v)));
    RETURN_IF_ERROR(txn->Commit());
  }
  return absl::OkStatus();
}

int64_t SqliteDatabase::LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }
int SqliteDatabase::Changes() const { return sqlite3_changes(db_); }

SqliteStatement::SqliteStatement(SqliteStatement&& other) noexcept
    : db_(other.db_), stmt_(std::exchange(other.stmt_, nullptr)) {}

SqliteStatement& SqliteStatement::operator=(SqliteStatement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    db_ = other.db_;
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

SqliteStatement::~SqliteStatement() { sqlite3_finalize(stmt_); }

absl::Status SqliteStatement::BindResult(int rc, int index) {
  if (rc == SQLITE_OK) return absl::OkStatus();
  return db_->ErrorStatus(rc, absl::StrCat("bind parameter ", index, " of [",
                                           SqlHead(sqlite3_sql(stmt_)), "]"));
}

absl::Status SqliteStatement::Bind(int index, int64_t value) {
  return BindResult(sqlite3_bind_int64(stmt_, index, value), index);
}
absl::Status SqliteStatement::Bind(int index, double value) {
  return BindResult(sqlite3_bind_double(stmt_, index, value), index);
}
absl::Status SqliteStatement::Bind(int index, absl::string_view text) {
  return BindResult(sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT,
                                        SQLITE_UTF8),
                    index);
}
absl::Status SqliteStatement::BindBlob(int index, absl::string_view bytes) {
  // A zero-length blob must still be a blob, not NULL.
  return BindResult(
      sqlite3_bind_blob64(stmt_, index, bytes.empty() ? "" : bytes.data(), bytes.size(),
                          SQLITE_TRANSIENT),
      index);
}
absl::Status SqliteStatement::BindNull(int index) {
  return BindResult(sqlite3_bind_null(stmt_, index), index);
}

absl::StatusOr<bool> SqliteStatement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  absl::Status s = db_->ErrorStatus(rc, absl::StrCat("step [", SqlHead(sqlite3_sql(stmt_)), "]"));
  sqlite3_reset(stmt_);
  return s;
}

absl::Status SqliteStatement::Run() {
  while (true) {
    ASSIGN_OR_RETURN(bool row, Step());
    if (!row) return absl::OkStatus();
  }
}

absl::Status SqliteStatement::Reset() {
  sqlite3_clear_bindings(stmt_);
  int rc = sqlite3_reset(stmt_);
  if (rc != SQLITE_OK) return db_->ErrorStatus(rc, "reset");
  return absl::OkStatus();
}

int SqliteStatement::ColumnCount() const { return sqlite3_column_count(stmt_); }
bool SqliteStatement::IsNull(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}
int64_t SqliteStatement::ColumnInt(int col) const { return sqlite3_column_int64(stmt_, col); }
double SqliteStatement::ColumnDouble(int col) const { return sqlite3_column_double(stmt_, col); }
std::string SqliteStatement::ColumnText(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}
std::string SqliteStatement::ColumnBlob(int col) const {
  const void* p = sqlite3_column_blob(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : std::string();
}

absl::StatusOr<std::unique_ptr<SqliteTransaction>> SqliteTransaction::Begin(SqliteDatabase* db) {
  RETURN_IF_ERROR(db->Exec("BEGIN IMMEDIATE"));
  return std::unique_ptr<SqliteTransaction>(new SqliteTransaction(db));
}

SqliteTransaction::~SqliteTransaction() {
  if (!done_) (void)db_->Exec("ROLLBACK");
}

absl::Status SqliteTransaction::Commit() {
  if (done_) return absl::FailedPreconditionError("transaction already finished");
  absl::Status s = db_->Exec("COMMIT");
  if (s.ok()) done_ = true;  // on failure the destructor rolls back
  return s;
}

absl::Status SqliteTransaction::Rollback() {
  if (done_) return absl::FailedPreconditionError("transaction already finished");
  done_ = true;
  return db_->Exec("ROLLBACK");
}

}  // namespace tessera
