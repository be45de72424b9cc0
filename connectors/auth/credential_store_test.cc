#include "connectors/auth/credential_store.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/logging.h"
#include "common/sqlite.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace tessera::connectors {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kSecret[] = "1//0gREFRESH-TOKEN-very-secret";

std::string TempPath(absl::string_view name) {
  const char* dir = getenv("TEST_TMPDIR");
  return absl::StrCat(dir ? dir : "/tmp", "/", name);
}

void WriteFile(const std::string& path, absl::string_view content, int mode) {
  unlink(path.c_str());
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  close(fd);
  ASSERT_EQ(chmod(path.c_str(), mode), 0);
}

TEST(CredentialStoreTest, RoundTripListDelete) {
  auto store = SqliteCredentialStore::Open(":memory:", CredentialKey::Generate());
  ASSERT_TRUE(store.ok()) << store.status();
  ASSERT_TRUE((*store)->Put("gmail/acme/refresh_token", kSecret).ok());
  ASSERT_TRUE((*store)->Put("graph/acme/client_secret", "s2").ok());
  ASSERT_TRUE((*store)->Put("graph/acme/client_secret", "s3").ok());  // replaced
  EXPECT_EQ((*store)->Get("gmail/acme/refresh_token")->Reveal(), kSecret);
  EXPECT_EQ((*store)->Get("graph/acme/client_secret")->Reveal(), "s3");
  EXPECT_THAT(*(*store)->List(), ElementsAre("gmail/acme/refresh_token", "graph/acme/client_secret"));
  EXPECT_TRUE((*store)->Delete("graph/acme/client_secret").ok());
  EXPECT_EQ((*store)->Get("graph/acme/client_secret").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ((*store)->Delete("graph/acme/client_secret").code(), absl::StatusCode::kNotFound);
  EXPECT_EQ((*store)->Put("", "x").code(), absl::StatusCode::kInvalidArgument);
  // Binary and empty secrets survive.
  const std::string binary("\0\xff\x01secret", 9);
  ASSERT_TRUE((*store)->Put("bin", binary).ok());
  EXPECT_EQ((*store)->Get("bin")->Reveal(), binary);
  ASSERT_TRUE((*store)->Put("empty", "").ok());
  EXPECT_EQ((*store)->Get("empty")->Reveal(), "");
}

TEST(CredentialStoreTest, CiphertextIsNotPlaintextAndNoncesDiffer) {
  CredentialKey key = CredentialKey::Generate();
  std::string a = SealCredential(key, "n", kSecret);
  std::string b = SealCredential(key, "n", kSecret);
  EXPECT_NE(a, b);
  EXPECT_THAT(a, Not(HasSubstr("REFRESH-TOKEN")));
  EXPECT_EQ(OpenCredential(key, "n", a)->Reveal(), kSecret);
  EXPECT_EQ(OpenCredential(key, "n", b)->Reveal(), kSecret);
}

TEST(CredentialStoreTest, WrongKeyIsAClearErrorNotGarbage) {
  const std::string path = TempPath("wrong_key.db");
  unlink(path.c_str());
  auto key_text = CredentialKey::Generate().ToBase64();
  {
    auto store = SqliteCredentialStore::Open(path, *CredentialKey::FromBase64(key_text));
    ASSERT_TRUE(store.ok()) << store.status();
    ASSERT_TRUE((*store)->Put("gmail/refresh_token", kSecret).ok());
  }
  auto wrong = SqliteCredentialStore::Open(path, CredentialKey::Generate());
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(wrong.status().message(), HasSubstr("does not match"));
  // The right key still works after the refusal.
  auto right = SqliteCredentialStore::Open(path, *CredentialKey::FromBase64(key_text));
  ASSERT_TRUE(right.ok()) << right.status();
  EXPECT_EQ((*right)->Get("gmail/refresh_token")->Reveal(), kSecret);
  // And a sealed value opened with another key fails authentication.
  std::string sealed = SealCredential(*CredentialKey::FromBase64(key_text), "n", kSecret);
  auto garbage = OpenCredential(CredentialKey::Generate(), "n", sealed);
  EXPECT_EQ(garbage.status().code(), absl::StatusCode::kDataLoss);
}

TEST(CredentialStoreTest, TamperingAndSwappedRowsAreDetected) {
  auto store = *SqliteCredentialStore::Open(":memory:", CredentialKey::Generate());
  ASSERT_TRUE(store->Put("a", "secret-a").ok());
  ASSERT_TRUE(store->Put("b", "secret-b").ok());
  SqliteDatabase* db = store->database_for_testing();
  // Copy a's ciphertext into b's row.
  ASSERT_TRUE(db->Exec("UPDATE credentials SET sealed = (SELECT sealed FROM credentials "
                       "WHERE name = 'a') WHERE name = 'b'")
                  .ok());
  auto swapped = store->Get("b");
  EXPECT_EQ(swapped.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(swapped.status().message(), Not(HasSubstr("secret-a")));
  // Flip one byte of a's ciphertext.
  auto stmt = *db->Prepare("SELECT sealed FROM credentials WHERE name = 'a'");
  ASSERT_TRUE(*stmt.Step());
  std::string sealed = stmt.ColumnBlob(0);
  sealed[sealed.size() - 1] ^= 0x40;
  auto update = *db->Prepare("UPDATE credentials SET sealed = ? WHERE name = 'a'");
  ASSERT_TRUE(update.BindBlob(1, sealed).ok());
  ASSERT_TRUE(update.Run().ok());
  EXPECT_EQ(store->Get("a").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(OpenCredential(CredentialKey::Generate(), "a", "short").status().code(),
            absl::StatusCode::kDataLoss);
}

TEST(CredentialKeyTest, FromFileRefusesGroupOrWorldReadableFiles) {
  const std::string path = TempPath("credential.key");
  const std::string b64 = CredentialKey::Generate().ToBase64();
  WriteFile(path, b64 + "\n", 0644);
  auto loose = CredentialKey::FromFile(path);
  ASSERT_FALSE(loose.ok());
  EXPECT_EQ(loose.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(loose.status().message(),
              AllOf(HasSubstr("0644"), HasSubstr("chmod 600"), Not(HasSubstr(b64))));
  WriteFile(path, b64 + "\n", 0640);
  EXPECT_EQ(CredentialKey::FromFile(path).status().code(), absl::StatusCode::kPermissionDenied);

  WriteFile(path, b64 + "\n", 0600);
  auto key = CredentialKey::FromFile(path);
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->ToBase64(), b64);
  WriteFile(path, b64, 0400);
  EXPECT_TRUE(CredentialKey::FromFile(path).ok());

  // Raw 32 bytes are accepted too.
  const std::string raw(32, '\x07');
  WriteFile(path, raw, 0600);
  auto raw_key = CredentialKey::FromFile(path);
  ASSERT_TRUE(raw_key.ok());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(raw_key->data()), 32), raw);

  WriteFile(path, "too short", 0600);
  EXPECT_EQ(CredentialKey::FromFile(path).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(CredentialKey::FromFile(TempPath("missing.key")).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(CredentialKey::FromFile(getenv("TEST_TMPDIR") ? getenv("TEST_TMPDIR") : "/tmp")
                .status()
                .code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(CredentialKeyTest, FromEnvironment) {
  const std::string b64 = CredentialKey::Generate().ToBase64();
  setenv("TESSERA_TEST_CREDENTIAL_KEY", b64.c_str(), 1);
  auto key = CredentialKey::FromEnvironment("TESSERA_TEST_CREDENTIAL_KEY");
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_EQ(key->ToBase64(), b64);
  setenv("TESSERA_TEST_CREDENTIAL_KEY", "c2hvcnQ=", 1);
  auto bad = CredentialKey::FromEnvironment("TESSERA_TEST_CREDENTIAL_KEY");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(),
              AllOf(HasSubstr("TESSERA_TEST_CREDENTIAL_KEY"), Not(HasSubstr("c2hvcnQ"))));
  unsetenv("TESSERA_TEST_CREDENTIAL_KEY");
  EXPECT_EQ(CredentialKey::FromEnvironment("TESSERA_TEST_CREDENTIAL_KEY").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(CredentialStoreTest, SecretsNeverReachTheLogs) {
  std::vector<std::string> lines;
  LogSink previous = SetLogSink([&](LogLevel, const std::string& line) { lines.push_back(line); });
  auto store = *SqliteCredentialStore::Open(":memory:", CredentialKey::Generate());
  ASSERT_TRUE(store->Put("gmail/refresh_token", kSecret).ok());
  SecretString secret = *store->Get("gmail/refresh_token");
  // A careless log line: the field name marks it secret, so it is redacted.
  TLOG(INFO, "loaded credential").Field("refresh_token", secret.Reveal());
  TLOG(INFO, "loaded credential").Field("credential", secret.Reveal());
  ASSERT_TRUE(store->Delete("gmail/refresh_token").ok());
  SetLogSink(previous);
  ASSERT_GE(lines.size(), 3u);
  for (const std::string& line : lines) EXPECT_THAT(line, Not(HasSubstr(kSecret))) << line;
  EXPECT_THAT(lines[0], HasSubstr("gmail/refresh_token"));  // the name is fine to log
  // Streaming a SecretString never shows it either.
  std::ostringstream os;
  os << secret;
  EXPECT_EQ(os.str(), "[REDACTED]");
}

}  // namespace
}  // namespace tessera::connectors
