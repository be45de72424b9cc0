#include "services/gateway/api_key_store.h"

#include <set>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace tessera {
namespace {

class ApiKeyStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = ApiKeyStore::Open(":memory:", &clock_);
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }
  ApiKeyStore::CreateOptions Ann() {
    ApiKeyStore::CreateOptions o;
    o.principal.user = "ann@example.com";
    o.principal.groups = {"finance@example.com", "all@example.com"};
    o.description = "ann's laptop";
    return o;
  }
  SimulatedClock clock_;
  std::unique_ptr<ApiKeyStore> store_;
};

TEST_F(ApiKeyStoreTest, CreatedKeyAuthenticatesAsItsPrincipal) {
  auto created = store_->Create(Ann());
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(absl::StartsWith(created->token, "tsk_" + created->record.key_id + "_"));
  auto rec = store_->Authenticate(created->token);
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(rec->principal.user, "ann@example.com");
  EXPECT_EQ(rec->principal.tenant, "default");
  EXPECT_EQ(rec->principal.groups, (std::vector<std::string>{"finance@example.com", "all@example.com"}));
  EXPECT_EQ(rec->role, KeyRole::kUser);
  ASSERT_TRUE(rec->last_used_time.has_value());
}

TEST_F(ApiKeyStoreTest, WrongOrMangledTokensAreUnauthenticated) {
  auto created = *store_->Create(Ann());
  std::string t = created.token;
  std::string flipped = t;
  flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
  std::string other_id = t;
  other_id[4] = other_id[4] == 'a' ? 'b' : 'a';
  for (const std::string& bad :
       {std::string(""), std::string("tsk_"), flipped, other_id, t.substr(0, t.size() - 1),
        t + "x", std::string("Bearer ") + t, std::string("tsk_zzzzzzzzzzzzzzzz_abc"),
        std::string(10000, 'a')}) {
    auto r = store_->Authenticate(bad);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated) << bad;
    EXPECT_FALSE(absl::StrContains(r.status().message(), t.substr(25))) << "token echoed";
  }
}

TEST_F(ApiKeyStoreTest, RevokedAndExpiredKeysFail) {
  auto a = *store_->Create(Ann());
  auto opts = Ann();
  opts.expire_time = clock_.Now() + absl::Hours(1);
  auto b = *store_->Create(opts);
  ASSERT_TRUE(store_->Authenticate(b.token).ok());
  ASSERT_TRUE(store_->Revoke(a.record.key_id).ok());
  auto ra = store_->Authenticate(a.token);
  EXPECT_EQ(ra.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(absl::StrContains(ra.status().message(), "revoked"));
  clock_.Advance(absl::Hours(2));
  auto rb = store_->Authenticate(b.token);
  EXPECT_EQ(rb.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(absl::StrContains(rb.status().message(), "expired"));
  EXPECT_EQ(store_->Revoke("0000000000000000").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ApiKeyStoreTest, CreateValidatesInput) {
  auto o = Ann();
  o.principal.user = "";
  EXPECT_EQ(store_->Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  o = Ann();
  o.principal.groups = {"bad group"};
  EXPECT_EQ(store_->Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  o = Ann();
  o.expire_time = clock_.Now() - absl::Seconds(1);
  EXPECT_EQ(store_->Create(o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ApiKeyStoreTest, ListByTenantAndNoSecretsStored) {
  auto o = Ann();
  auto a = *store_->Create(o);
  o.principal.tenant = "acme";
  o.role = KeyRole::kAdmin;
  auto b = *store_->Create(o);
  EXPECT_EQ(store_->List("")->size(), 2u);
  auto acme = *store_->List("acme");
  ASSERT_EQ(acme.size(), 1u);
  EXPECT_EQ(acme[0].key_id, b.record.key_id);
  EXPECT_EQ(acme[0].role, KeyRole::kAdmin);
}

TEST_F(ApiKeyStoreTest, KeysAreUnique) {
  std::set<std::string> ids, tokens;
  for (int i = 0; i < 50; ++i) {
    auto k = *store_->Create(Ann());
    ids.insert(k.record.key_id);
    tokens.insert(k.token);
  }
  EXPECT_EQ(ids.size(), 50u);
  EXPECT_EQ(tokens.size(), 50u);
}

TEST(ParseBearerTokenTest, Forms) {
  EXPECT_EQ(*ParseBearerToken("Bearer abc"), "abc");
  EXPECT_EQ(*ParseBearerToken("bearer   abc  "), "abc");
  EXPECT_EQ(ParseBearerToken("").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ParseBearerToken("Basic dXNlcjpwdw==").status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(ParseBearerToken("Bearer ").status().code(), absl::StatusCode::kUnauthenticated);
}

}  // namespace
}  // namespace tessera
