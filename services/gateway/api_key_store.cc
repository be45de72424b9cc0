#include "services/gateway/api_key_store.h"

#include <sodium.h>

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status.h"

namespace tessera {
namespace {

constexpr absl::string_view kTokenPrefix = "tsk_";
constexpr size_t kKeyIdHexLen = 16;
constexpr size_t kSecretBytes = 32;
constexpr absl::Duration kLastUsedGranularity = absl::Minutes(1);

const std::vector<SqliteMigration>& Migrations() {
  static const auto* m = new std::vector<SqliteMigration>{
      {1, "api keys",
       R"sql(
CREATE TABLE api_keys (
  key_id        TEXT PRIMARY KEY,
  secret_hash   BLOB NOT NULL,
  tenant        TEXT NOT NULL,
  user_name     TEXT NOT NULL,
  groups        TEXT NOT NULL,  -- newline-separated
  role          INTEGER NOT NULL,
  description   TEXT NOT NULL DEFAULT '',
  create_time   INTEGER NOT NULL,  -- unix microseconds
  expire_time   INTEGER,
  last_used     INTEGER,
  revoked       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX api_keys_tenant ON api_keys(tenant);
)sql"},
  };
  return *m;
}

std::string HashSecret(absl::string_view secret) {
  unsigned char out[crypto_generichash_BYTES];
  crypto_generichash(out, sizeof(out), reinterpret_cast<const unsigned char*>(secret.data()),
                     secret.size(), nullptr, 0);
  return std::string(reinterpret_cast<char*>(out), sizeof(out));
}

std::string RandomBytes(size_t n) {
  std::string out(n, '\0');
  randombytes_buf(out.data(), n);
  return out;
}

int64_t ToMicros(absl::Time t) { return absl::ToUnixMicros(t); }

const char* kSelectColumns =
    "SELECT key_id, tenant, user_name, groups, role, description, create_time, expire_time, "
    "last_used, revoked FROM api_keys";

ApiKeyRecord ReadRecord(const SqliteStatement& s) {
  ApiKeyRecord r;
  r.key_id = s.ColumnText(0);
  r.principal.tenant = s.ColumnText(1);
  r.principal.user = s.ColumnText(2);
  std::string groups = s.ColumnText(3);
  if (!groups.empty()) r.principal.groups = absl::StrSplit(groups, '\n');
  r.role = s.ColumnInt(4) == static_cast<int>(KeyRole::kAdmin) ? KeyRole::kAdmin : KeyRole::kUser;
  r.description = s.ColumnText(5);
  r.create_time = absl::FromUnixMicros(s.ColumnInt(6));
  if (!s.IsNull(7)) r.expire_time = absl::FromUnixMicros(s.ColumnInt(7));
  if (!s.IsNull(8)) r.last_used_time = absl::FromUnixMicros(s.ColumnInt(8));
  r.revoked = s.ColumnInt(9) != 0;
  return r;
}

}  // namespace

absl::Status ValidatePrincipalName(absl::string_view name, absl::string_view what) {
  if (name.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " must not be empty"));
  if (name.size() > 320) {
    return absl::InvalidArgumentError(absl::StrCat(what, " is longer than 320 characters"));
  }
  for (unsigned char c : name) {
    if (c <= ' ' || c == ',' || c == 0x7f) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, " '", absl::CHexEscape(name), "' must not contain spaces, commas or control characters"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ParseBearerToken(absl::string_view header_value) {
  absl::string_view v = absl::StripAsciiWhitespace(header_value);
  if (v.empty()) return absl::UnauthenticatedError("missing credentials: send 'authorization: Bearer <api key>'");
  if (v.size() < 7 || !absl::EqualsIgnoreCase(v.substr(0, 7), "bearer ")) {
    return absl::UnauthenticatedError(
        "unsupported authorization scheme: send 'authorization: Bearer <api key>'");
  }
  absl::string_view token = absl::StripAsciiWhitespace(v.substr(7));
  if (token.empty()) return absl::UnauthenticatedError("empty bearer token");
  return std::string(token);
}

absl::StatusOr<std::unique_ptr<ApiKeyStore>> ApiKeyStore::Open(absl::string_view db_path,
                                                               Clock* clock) {
  if (sodium_init() < 0) return absl::InternalError("libsodium failed to initialise");
  ASSIGN_OR_RETURN(auto db, SqliteDatabase::Open(db_path, {}));
  RETURN_IF_ERROR(Annotate(db->Migrate(Migrations()), absl::StrCat("key database ", db_path)));
  return std::unique_ptr<ApiKeyStore>(new ApiKeyStore(std::move(db), clock));
}

absl::StatusOr<CreatedKey> ApiKeyStore::Create(const CreateOptions& options) {
  RETURN_IF_ERROR(ValidatePrincipalName(options.principal.user, "principal user"));
  RETURN_IF_ERROR(ValidatePrincipalName(options.principal.tenant, "tenant"));
  for (const std::string& g : options.principal.groups) {
    RETURN_IF_ERROR(ValidatePrincipalName(g, "group"));
  }
  const absl::Time now = clock_->Now();
  if (options.expire_time.has_value() && *options.expire_time <= now) {
    return absl::InvalidArgumentError("expire_time must be in the future");
  }
  CreatedKey created;
  std::string secret;
  absl::WebSafeBase64Escape(RandomBytes(kSecretBytes), &secret);
  created.record.key_id = absl::BytesToHexString(RandomBytes(kKeyIdHexLen / 2));
  created.record.principal = options.principal;
  created.record.role = options.role;
  created.record.description = options.description;
  created.record.create_time = absl::FromUnixMicros(ToMicros(now));
  created.record.expire_time = options.expire_time;
  created.token = absl::StrCat(kTokenPrefix, created.record.key_id, "_", secret);

  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto stmt, db_->Prepare(
      "INSERT INTO api_keys(key_id, secret_hash, tenant, user_name, groups, role, description, "
      "create_time, expire_time) VALUES (?,?,?,?,?,?,?,?,?)"));
  RETURN_IF_ERROR(stmt.Bind(1, created.record.key_id));
  RETURN_IF_ERROR(stmt.BindBlob(2, HashSecret(secret)));
  RETURN_IF_ERROR(stmt.Bind(3, options.principal.tenant));
  RETURN_IF_ERROR(stmt.Bind(4, options.principal.user));
  RETURN_IF_ERROR(stmt.Bind(5, absl::StrJoin(options.principal.groups, "\n")));
  RETURN_IF_ERROR(stmt.Bind(6, static_cast<int>(options.role)));
  RETURN_IF_ERROR(stmt.Bind(7, options.description));
  RETURN_IF_ERROR(stmt.Bind(8, ToMicros(now)));
  if (options.expire_time.has_value()) {
    RETURN_IF_ERROR(stmt.Bind(9, ToMicros(*options.expire_time)));
  } else {
    RETURN_IF_ERROR(stmt.BindNull(9));
  }
  RETURN_IF_ERROR(stmt.Run());
  return created;
}

absl::StatusOr<ApiKeyRecord> ApiKeyStore::Authenticate(absl::string_view token) {
  const absl::Status invalid = absl::UnauthenticatedError("invalid API key");
  if (!absl::StartsWith(token, kTokenPrefix)) return invalid;
  absl::string_view rest = token.substr(kTokenPrefix.size());
  if (rest.size() < kKeyIdHexLen + 2 || rest[kKeyIdHexLen] != '_') return invalid;
  absl::string_view key_id = rest.substr(0, kKeyIdHexLen);
  absl::string_view secret = rest.substr(kKeyIdHexLen + 1);
  for (char c : key_id) {
    if (!absl::ascii_isxdigit(c)) return invalid;
  }
  const std::string hash = HashSecret(secret);
  const absl::Time now = clock_->Now();

  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto q, db_->Prepare("SELECT secret_hash FROM api_keys WHERE key_id = ?"));
  RETURN_IF_ERROR(q.Bind(1, key_id));
  ASSIGN_OR_RETURN(bool found, q.Step());
  if (!found) return invalid;
  std::string stored = q.ColumnBlob(0);
  if (stored.size() != hash.size() ||
      sodium_memcmp(stored.data(), hash.data(), hash.size()) != 0) {
    return invalid;
  }
  ASSIGN_OR_RETURN(ApiKeyRecord record, GetLocked(key_id));
  if (record.revoked) return absl::UnauthenticatedError("API key has been revoked");
  if (record.expire_time.has_value() && *record.expire_time <= now) {
    return absl::UnauthenticatedError("API key has expired");
  }
  if (!record.last_used_time.has_value() || now - *record.last_used_time >= kLastUsedGranularity) {
    ASSIGN_OR_RETURN(auto upd, db_->Prepare("UPDATE api_keys SET last_used = ? WHERE key_id = ?"));
    RETURN_IF_ERROR(upd.Bind(1, ToMicros(now)));
    RETURN_IF_ERROR(upd.Bind(2, key_id));
    RETURN_IF_ERROR(upd.Run());
    record.last_used_time = absl::FromUnixMicros(ToMicros(now));
  }
  return record;
}

absl::StatusOr<ApiKeyRecord> ApiKeyStore::GetLocked(absl::string_view key_id) {
  ASSIGN_OR_RETURN(auto stmt, db_->Prepare(absl::StrCat(kSelectColumns, " WHERE key_id = ?")));
  RETURN_IF_ERROR(stmt.Bind(1, key_id));
  ASSIGN_OR_RETURN(bool found, stmt.Step());
  if (!found) return absl::NotFoundError(absl::StrCat("no API key with id '", key_id, "'"));
  return ReadRecord(stmt);
}

absl::StatusOr<ApiKeyRecord> ApiKeyStore::Get(absl::string_view key_id) {
  absl::MutexLock lock(&mu_);
  return GetLocked(key_id);
}

absl::StatusOr<std::vector<ApiKeyRecord>> ApiKeyStore::List(absl::string_view tenant) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto stmt,
                   db_->Prepare(absl::StrCat(kSelectColumns,
                                             " WHERE (? = '' OR tenant = ?) ORDER BY create_time, key_id")));
  RETURN_IF_ERROR(stmt.Bind(1, tenant));
  RETURN_IF_ERROR(stmt.Bind(2, tenant));
  std::vector<ApiKeyRecord> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    out.push_back(ReadRecord(stmt));
  }
  return out;
}

absl::StatusOr<ApiKeyRecord> ApiKeyStore::Revoke(absl::string_view key_id) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto stmt, db_->Prepare("UPDATE api_keys SET revoked = 1 WHERE key_id = ?"));
  RETURN_IF_ERROR(stmt.Bind(1, key_id));
  RETURN_IF_ERROR(stmt.Run());
  if (db_->Changes() == 0) return absl::NotFoundError(absl::StrCat("no API key with id '", key_id, "'"));
  return GetLocked(key_id);
}

}  // namespace tessera
