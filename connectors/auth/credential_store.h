// Connector credentials encrypted at rest.
//
// OAuth refresh tokens, client secrets and service-account keys are sealed
// with libsodium's crypto_secretbox_easy (XSalsa20-Poly1305) under a 32-byte
// key that lives outside the database: in a file only its owner can read, or
// in an environment variable (base64). Each write draws a fresh random nonce,
// stored with the ciphertext. The credential's name is sealed with it, so a
// ciphertext copied to another row is detected, not silently used.
//
// A wrong key is reported as such (FAILED_PRECONDITION, when the store is
// opened), never as garbage. Secrets come back as SecretString, which prints
// as "[REDACTED]", and nothing here logs a secret.
#ifndef TESSERA_CONNECTORS_AUTH_CREDENTIAL_STORE_H_
#define TESSERA_CONNECTORS_AUTH_CREDENTIAL_STORE_H_

#include <array>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/sqlite.h"

namespace tessera::connectors {

// A string holding a secret. Streams as "[REDACTED]"; the memory is wiped on
// destruction. Move-only so that copies don't spread through the heap.
class SecretString {
 public:
  SecretString() = default;
  explicit SecretString(std::string value) : value_(std::move(value)) {}
  SecretString(SecretString&& other) noexcept : value_(std::move(other.value_)) {}
  SecretString& operator=(SecretString&& other) noexcept;
  SecretString(const SecretString&) = delete;
  SecretString& operator=(const SecretString&) = delete;
  ~SecretString();

  // The secret itself: pass it straight to where it is needed.
  [[nodiscard]] const std::string& Reveal() const { return value_; }
  [[nodiscard]] bool empty() const { return value_.empty(); }

  friend std::ostream& operator<<(std::ostream& os, const SecretString&) {
    return os << "[REDACTED]";
  }

 private:
  std::string value_;
};

// The 32-byte secretbox key. Move-only; wiped on destruction.
class CredentialKey {
 public:
  static constexpr size_t kSize = 32;

  // Reads a key file: exactly 32 raw bytes, or their base64 (standard or
  // URL-safe alphabet, padding and surrounding whitespace optional).
  // Errors: NOT_FOUND (no such file), PERMISSION_DENIED (the file is readable
  // or writable by group or others: "chmod 600" it; or cannot be read),
  // FAILED_PRECONDITION (not a regular file), INVALID_ARGUMENT (not a key).
  [[nodiscard]] static absl::StatusOr<CredentialKey> FromFile(absl::string_view path);
  // Reads the base64 key from environment variable `name`. NOT_FOUND when it
  // is unset or empty, INVALID_ARGUMENT when it does not decode to 32 bytes.
  // Messages name the variable, never its value.
  [[nodiscard]] static absl::StatusOr<CredentialKey> FromEnvironment(absl::string_view name);
  [[nodiscard]] static absl::StatusOr<CredentialKey> FromBase64(absl::string_view text);
  // A new random key (to be written, as ToBase64(), to a 0600 key file).
  [[nodiscard]] static CredentialKey Generate();

  [[nodiscard]] std::string ToBase64() const;

  CredentialKey(CredentialKey&& other) noexcept;
  CredentialKey& operator=(CredentialKey&& other) noexcept;
  CredentialKey(const CredentialKey&) = delete;
  CredentialKey& operator=(const CredentialKey&) = delete;
  ~CredentialKey();

  const unsigned char* data() const { return bytes_.data(); }

 private:
  CredentialKey() = default;
  std::array<unsigned char, kSize> bytes_{};
};

// Credentials in an SQLite database of their own. Thread-safe (one connection
// behind a mutex; credential traffic is tiny).
class SqliteCredentialStore {
 public:
  // Opens (creating if needed) the store at `path` (":memory:" for tests).
  // Errors: FAILED_PRECONDITION when `key` is not the key the store was
  // created with; SQLite's errors (common/sqlite.h) otherwise; INTERNAL when
  // libsodium cannot initialise. `clock` (not owned) stamps updates.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SqliteCredentialStore>> Open(
      absl::string_view path, CredentialKey key, Clock* clock = RealClock());

  // Stores (or replaces) the secret named `name` ("gmail/acme/refresh_token").
  // INVALID_ARGUMENT for an empty name.
  [[nodiscard]] absl::Status Put(absl::string_view name, absl::string_view secret);
  // NOT_FOUND when absent; DATA_LOSS when the stored ciphertext fails
  // authentication (corrupted or tampered with) under the verified key.
  [[nodiscard]] absl::StatusOr<SecretString> Get(absl::string_view name);
  // NOT_FOUND when absent.
  [[nodiscard]] absl::Status Delete(absl::string_view name);
  // Names only, sorted.
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> List();

  // The raw database, for tests that tamper with rows.
  SqliteDatabase* database_for_testing() { return db_.get(); }

 private:
  SqliteCredentialStore(std::unique_ptr<SqliteDatabase> db, CredentialKey key, Clock* clock);
  absl::Status VerifyOrInstallKeyCheck() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  std::unique_ptr<SqliteDatabase> db_ ABSL_GUARDED_BY(mu_);
  const CredentialKey key_;
  Clock* const clock_;
};

// Seals `plaintext` for `name`: version byte, 24-byte nonce, secretbox
// ciphertext. Exposed for tests.
[[nodiscard]] std::string SealCredential(const CredentialKey& key, absl::string_view name,
                                         absl::string_view plaintext);
// Opens a sealed credential. DATA_LOSS when authentication fails or the
// sealed name is not `name`; the message never contains plaintext.
[[nodiscard]] absl::StatusOr<SecretString> OpenCredential(const CredentialKey& key,
                                                          absl::string_view name,
                                                          absl::string_view sealed);

}  // namespace tessera::connectors

#endif  // TESSERA_CONNECTORS_AUTH_CREDENTIAL_STORE_H_
