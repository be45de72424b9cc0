// ApiKeyStore: the API keys that authenticate every call to Tessera.
//
// A key is shown to its owner once, as a bearer token
//     tsk_<key_id>_<secret>
// where key_id (16 hex chars) is public and indexes the row, and secret is 32
// random bytes (base64url). Only a BLAKE2b-256 hash of the secret is stored
// (libsodium); the comparison is constant-time. Each key maps to a tenant,
// a principal (user email and groups) and a role.
//
// Storage: SQLite (admin.db in the data dir), schema through migrations.
// Thread-safe: one connection behind a mutex (authentication is a primary-key
// lookup; last-used times are written at most once a minute per key).
//
// Errors: UNAUTHENTICATED for a malformed, unknown, revoked or expired token
// (the message never echoes the token); INVALID_ARGUMENT for bad create
// parameters; NOT_FOUND for an unknown key id; storage errors as from Sqlite.
#ifndef TESSERA_SERVICES_GATEWAY_API_KEY_STORE_H_
#define TESSERA_SERVICES_GATEWAY_API_KEY_STORE_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/sqlite.h"

namespace tessera {

enum class KeyRole { kUser = 1, kAdmin = 2 };

// Who a key acts as.
struct KeyPrincipal {
  std::string tenant = "default";
  std::string user;                 // e.g. "ann@example.com"
  std::vector<std::string> groups;  // e.g. {"finance@example.com"}
};

struct ApiKeyRecord {
  std::string key_id;
  KeyPrincipal principal;
  KeyRole role = KeyRole::kUser;
  std::string description;
  absl::Time create_time;
  std::optional<absl::Time> expire_time;
  std::optional<absl::Time> last_used_time;
  bool revoked = false;
};

struct CreatedKey {
  ApiKeyRecord record;
  std::string token;  // the full bearer token; never stored
};

class ApiKeyStore {
 public:
  struct CreateOptions {
    KeyPrincipal principal;
    KeyRole role = KeyRole::kUser;
    std::string description;
    std::optional<absl::Time> expire_time;
  };

  // Opens (creating if needed) the key database at `db_path` (":memory:" in
  // tests). `clock` is not owned and must outlive the store.
  static absl::StatusOr<std::unique_ptr<ApiKeyStore>> Open(absl::string_view db_path,
                                                           Clock* clock);

  [[nodiscard]] absl::StatusOr<CreatedKey> Create(const CreateOptions& options);
  // Checks a bearer token (the part after "Bearer ").
  [[nodiscard]] absl::StatusOr<ApiKeyRecord> Authenticate(absl::string_view token);
  [[nodiscard]] absl::StatusOr<std::vector<ApiKeyRecord>> List(absl::string_view tenant);
  [[nodiscard]] absl::StatusOr<ApiKeyRecord> Get(absl::string_view key_id);
  [[nodiscard]] absl::StatusOr<ApiKeyRecord> Revoke(absl::string_view key_id);

 private:
  ApiKeyStore(std::unique_ptr<SqliteDatabase> db, Clock* clock)
      : clock_(clock), db_(std::move(db)) {}
  absl::StatusOr<ApiKeyRecord> GetLocked(absl::string_view key_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Clock* const clock_;
  absl::Mutex mu_;
  std::unique_ptr<SqliteDatabase> db_ ABSL_GUARDED_BY(mu_);
};

// Extracts the token from an "authorization" header value ("Bearer <token>",
// scheme case-insensitive). UNAUTHENTICATED when absent or malformed.
[[nodiscard]] absl::StatusOr<std::string> ParseBearerToken(absl::string_view header_value);

// Validates a user or group name for a principal: an email-like or plain
// identifier without whitespace, commas or control characters, <= 320 chars.
[[nodiscard]] absl::Status ValidatePrincipalName(absl::string_view name, absl::string_view what);

}  // namespace tessera

#endif  // TESSERA_SERVICES_GATEWAY_API_KEY_STORE_H_
