#include "connectors/auth/credential_store.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/logging.h"
#include "common/status.h"

namespace tessera::connectors {
namespace {

constexpr unsigned char kFormatVersion = 1;
// Sealed under the name below when a store is created; opening it proves the key.
constexpr absl::string_view kKeyCheckName = "\x01tessera-key-check";
constexpr absl::string_view kKeyCheckText = "tessera credential store v1";

absl::Status InitSodium() {
  if (sodium_init() < 0) return absl::InternalError("libsodium failed to initialise");
  return absl::OkStatus();
}

void Wipe(std::string& s) {
  if (!s.empty()) sodium_memzero(s.data(), s.size());
  s.clear();
}

const std::vector<SqliteMigration>& Migrations() {
  static const auto* migrations = new std::vector<SqliteMigration>{
      {1, "credentials and key check",
       "CREATE TABLE credentials ("
       "  name TEXT PRIMARY KEY,"
       "  sealed BLOB NOT NULL,"
       "  updated_unix INTEGER NOT NULL);"
       "CREATE TABLE key_check ("
       "  id INTEGER PRIMARY KEY CHECK (id = 1),"
       "  sealed BLOB NOT NULL);"},
  };
  return *migrations;
}

}  // namespace

SecretString& SecretString::operator=(SecretString&& other) noexcept {
  if (this != &other) {
    Wipe(value_);
    value_ = std::move(other.value_);
  }
  return *this;
}

SecretString::~SecretString() { Wipe(value_); }

CredentialKey::CredentialKey(CredentialKey&& other) noexcept : bytes_(other.bytes_) {
  sodium_memzero(other.bytes_.data(), kSize);
}

CredentialKey& CredentialKey::operator=(CredentialKey&& other) noexcept {
  if (this != &other) {
    bytes_ = other.bytes_;
    sodium_memzero(other.bytes_.data(), kSize);
  }
  return *this;
}

CredentialKey::~CredentialKey() { sodium_memzero(bytes_.data(), kSize); }

absl::StatusOr<CredentialKey> CredentialKey::FromBase64(absl::string_view text) {
  text = absl::StripAsciiWhitespace(text);
  std::string decoded;
  bool ok = absl::Base64Unescape(text, &decoded);
  if (!ok) {
    absl::string_view trimmed = text;
    while (!trimmed.empty() && trimmed.back() == '=') trimmed.remove_suffix(1);
    ok = absl::WebSafeBase64Unescape(trimmed, &decoded);
  }
  if (!ok || decoded.size() != kSize) {
    const size_t got = ok ? decoded.size() : 0;
    Wipe(decoded);
    return absl::InvalidArgumentError(
        ok ? absl::StrFormat("the credential key must be %d bytes, base64-encoded; it decodes "
                             "to %d bytes",
                             kSize, got)
           : "the credential key is not valid base64");
  }
  CredentialKey key;
  std::memcpy(key.bytes_.data(), decoded.data(), kSize);
  Wipe(decoded);
  return key;
}

absl::StatusOr<CredentialKey> CredentialKey::FromFile(absl::string_view path) {
  const std::string p(path);
  const int fd = open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    std::string what = absl::StrCat("credential key file ", p, ": ", std::strerror(err));
    if (err == ENOENT) return absl::NotFoundError(what);
    if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(what);
    return absl::InternalError(what);
  }
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  struct stat st;
  if (fstat(fd, &st) != 0) {
    return absl::InternalError(absl::StrCat("credential key file ", p, ": ", std::strerror(errno)));
  }
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("credential key file ", p, " is not a regular file"));
  }
  // Checked on the opened file (fstat), so a swap after the check cannot fool it.
  if ((st.st_mode & 077) != 0) {
    return absl::PermissionDeniedError(absl::StrFormat(
        "credential key file %s has mode %04o and is accessible to group or others; "
        "refusing to use it (run: chmod 600 %s)",
        p, st.st_mode & 07777, p));
  }
  if (st.st_size > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("credential key file ", p, " is too large to be a key"));
  }
  std::string content(static_cast<size_t>(st.st_size), '\0');
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = read(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      Wipe(content);
      return absl::InternalError(absl::StrCat("credential key file ", p, ": short read"));
    }
    done += static_cast<size_t>(n);
  }
  if (content.size() == kSize) {  // raw key bytes
    CredentialKey key;
    std::memcpy(key.bytes_.data(), content.data(), kSize);
    Wipe(content);
    return key;
  }
  absl::StatusOr<CredentialKey> key = FromBase64(content);
  Wipe(content);
  if (!key.ok()) return Annotate(key.status(), absl::StrCat("credential key file ", p));
  return key;
}

absl::StatusOr<CredentialKey> CredentialKey::FromEnvironment(absl::string_view name) {
  const std::string variable(name);
  const char* value = std::getenv(variable.c_str());
  if (value == nullptr || *value == '\0') {
    return absl::NotFoundError(
        absl::StrCat("environment variable ", variable, " (the credential key) is not set"));
  }
  absl::StatusOr<CredentialKey> key = FromBase64(value);
  if (!key.ok()) return Annotate(key.status(), absl::StrCat("environment variable ", variable));
  return key;
}

CredentialKey CredentialKey::Generate() {
  if (sodium_init() < 0) std::abort();  // no randomness: nothing is safe
  CredentialKey key;
  crypto_secretbox_keygen(key.bytes_.data());
  return key;
}

std::string CredentialKey::ToBase64() const {
  return absl::Base64Escape(
      absl::string_view(reinterpret_cast<const char*>(bytes_.data()), kSize));
}

std::string SealCredential(const CredentialKey& key, absl::string_view name,
                           absl::string_view plaintext) {
  // message = u32 name length (little endian) | name | secret
  std::string message;
  const uint32_t n = static_cast<uint32_t>(name.size());
  for (int i = 0; i < 4; ++i) message.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  message.append(name.data(), name.size());
  message.append(plaintext.data(), plaintext.size());

  std::string sealed(1 + crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + message.size(),
                     '\0');
  auto* out = reinterpret_cast<unsigned char*>(sealed.data());
  out[0] = kFormatVersion;
  unsigned char* nonce = out + 1;
  randombytes_buf(nonce, crypto_secretbox_NONCEBYTES);
  crypto_secretbox_easy(nonce + crypto_secretbox_NONCEBYTES,
                        reinterpret_cast<const unsigned char*>(message.data()), message.size(),
                        nonce, key.data());
  Wipe(message);
  return sealed;
}

absl::StatusOr<SecretString> OpenCredential(const CredentialKey& key, absl::string_view name,
                                            absl::string_view sealed) {
  const size_t overhead = 1 + crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES;
  if (sealed.size() < overhead + 4 || static_cast<unsigned char>(sealed[0]) != kFormatVersion) {
    return absl::DataLossError(
        absl::StrCat("credential ", name, " is not in a format this version can read"));
  }
  const auto* in = reinterpret_cast<const unsigned char*>(sealed.data());
  const unsigned char* nonce = in + 1;
  const unsigned char* box = nonce + crypto_secretbox_NONCEBYTES;
  const size_t box_size = sealed.size() - 1 - crypto_secretbox_NONCEBYTES;
  std::string message(box_size - crypto_secretbox_MACBYTES, '\0');
  if (crypto_secretbox_open_easy(reinterpret_cast<unsigned char*>(message.data()), box, box_size,
                                 nonce, key.data()) != 0) {
    return absl::DataLossError(absl::StrCat(
        "credential ", name,
        " failed authentication: it was encrypted under another key, or altered"));
  }
  uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n |= static_cast<uint32_t>(static_cast<unsigned char>(message[i])) << (8 * i);
  if (message.size() < 4 + size_t{n} || absl::string_view(message).substr(4, n) != name) {
    Wipe(message);
    return absl::DataLossError(
        absl::StrCat("credential ", name, " holds data sealed for another credential"));
  }
  SecretString secret(message.substr(4 + n));
  Wipe(message);
  return secret;
}

absl::StatusOr<std::unique_ptr<SqliteCredentialStore>> SqliteCredentialStore::Open(
    absl::string_view path, CredentialKey key, Clock* clock) {
  RETURN_IF_ERROR(InitSodium());
  ASSIGN_OR_RETURN(std::unique_ptr<SqliteDatabase> db, SqliteDatabase::Open(path, {}));
  RETURN_IF_ERROR(Annotate(db->Migrate(Migrations()), "credential store"));
  auto store = std::unique_ptr<SqliteCredentialStore>(
      new SqliteCredentialStore(std::move(db), std::move(key), clock));
  {
    absl::MutexLock lock(&store->mu_);
    RETURN_IF_ERROR(store->VerifyOrInstallKeyCheck());
  }
  return store;
}

SqliteCredentialStore::SqliteCredentialStore(std::unique_ptr<SqliteDatabase> db,
                                             CredentialKey key, Clock* clock)
    : db_(std::move(db)), key_(std::move(key)), clock_(clock) {}

absl::Status SqliteCredentialStore::VerifyOrInstallKeyCheck() {
  ASSIGN_OR_RETURN(SqliteStatement select, db_->Prepare("SELECT sealed FROM key_check WHERE id = 1"));
  ASSIGN_OR_RETURN(bool found, select.Step());
  if (found) {
    absl::StatusOr<SecretString> check = OpenCredential(key_, kKeyCheckName, select.ColumnBlob(0));
    if (!check.ok() || check->Reveal() != kKeyCheckText) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the credential key does not match the key the credential store ", db_->path(),
          " was created with; configure the original key (a wrong key would only yield "
          "garbage)"));
    }
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(SqliteStatement insert,
                   db_->Prepare("INSERT INTO key_check (id, sealed) VALUES (1, ?)"));
  RETURN_IF_ERROR(insert.BindBlob(1, SealCredential(key_, kKeyCheckName, kKeyCheckText)));
  return insert.Run();
}

absl::Status SqliteCredentialStore::Put(absl::string_view name, absl::string_view secret) {
  if (name.empty()) return absl::InvalidArgumentError("a credential needs a name");
  std::string sealed = SealCredential(key_, name, secret);
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(SqliteStatement upsert,
                   db_->Prepare("INSERT INTO credentials (name, sealed, updated_unix) "
                                "VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                                "sealed = excluded.sealed, updated_unix = excluded.updated_unix"));
  RETURN_IF_ERROR(upsert.Bind(1, name));
  RETURN_IF_ERROR(upsert.BindBlob(2, sealed));
  RETURN_IF_ERROR(upsert.Bind(3, absl::ToUnixSeconds(clock_->Now())));
  RETURN_IF_ERROR(upsert.Run());
  TLOG(INFO, "credential stored").Field("name", name).Field("bytes", uint64_t{secret.size()});
  return absl::OkStatus();
}

absl::StatusOr<SecretString> SqliteCredentialStore::Get(absl::string_view name) {
  std::string sealed;
  {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(SqliteStatement select,
                     db_->Prepare("SELECT sealed FROM credentials WHERE name = ?"));
    RETURN_IF_ERROR(select.Bind(1, name));
    ASSIGN_OR_RETURN(bool found, select.Step());
    if (!found) return absl::NotFoundError(absl::StrCat("no credential named ", name));
    sealed = select.ColumnBlob(0);
  }
  return OpenCredential(key_, name, sealed);
}

absl::Status SqliteCredentialStore::Delete(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(SqliteStatement del, db_->Prepare("DELETE FROM credentials WHERE name = ?"));
  RETURN_IF_ERROR(del.Bind(1, name));
  RETURN_IF_ERROR(del.Run());
  if (db_->Changes() == 0) return absl::NotFoundError(absl::StrCat("no credential named ", name));
  TLOG(INFO, "credential deleted").Field("name", name);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> SqliteCredentialStore::List() {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(SqliteStatement select,
                   db_->Prepare("SELECT name FROM credentials ORDER BY name"));
  std::vector<std::string> names;
  while (true) {
    ASSIGN_OR_RETURN(bool row, select.Step());
    if (!row) break;
    names.push_back(select.ColumnText(0));
  }
  return names;
}

}  // namespace tessera::connectors
