// In-process tests of the server: authentication in front of every service,
// routing to local, peer and not-yet-built services, and the admin key API.
#include "services/gateway/server.h"

#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "services/gateway/caller.h"
#include "tessera/v1/admin.grpc.pb.h"
#include "tessera/v1/engine.grpc.pb.h"
#include "tessera/v1/sync.grpc.pb.h"

namespace tessera {
namespace {

std::string TempDir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return absl::StrCat(tmp ? tmp : "/tmp", "/", name, "_", ::getpid());
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = TempDir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    TesseraServer::Options o;
    o.data_dir = dir_;
    o.listen = "127.0.0.1:0";
    auto s = TesseraServer::Start(o);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    auto keys = ApiKeyStore::Open(dir_ + "/admin.db", RealClock());
    ASSERT_TRUE(keys.ok()) << keys.status();
    keys_ = std::move(*keys);
    ApiKeyStore::CreateOptions ann;
    ann.principal.user = "ann@example.com";
    ann.principal.groups = {"finance@example.com"};
    ann_key_ = keys_->Create(ann)->token;
    ApiKeyStore::CreateOptions root;
    root.principal.user = "root@example.com";
    root.role = KeyRole::kAdmin;
    admin_key_ = keys_->Create(root)->token;
    channel_ = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    admin_stub_ = v1::AdminService::NewStub(channel_);
  }

  std::unique_ptr<grpc::ClientContext> Ctx(const std::string& key) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    if (!key.empty()) ctx->AddMetadata("authorization", "Bearer " + key);
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return ctx;
  }

  grpc::Status WhoAmI(const std::string& key, v1::WhoAmIResponse* resp) {
    auto ctx = Ctx(key);
    return admin_stub_->WhoAmI(ctx.get(), v1::WhoAmIRequest(), resp);
  }

  std::string dir_;
  std::unique_ptr<TesseraServer> server_;
  std::unique_ptr<ApiKeyStore> keys_;
  std::string ann_key_, admin_key_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AdminService::Stub> admin_stub_;
};

TEST_F(ServerTest, NoKeyOrWrongKeyIsUnauthenticated) {
  v1::WhoAmIResponse resp;
  EXPECT_EQ(WhoAmI("", &resp).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(WhoAmI("tsk_0123456789abcdef_nope", &resp).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // Unbuilt and unknown services also demand a key first.
  auto engine = v1::EngineService::NewStub(channel_);
  v1::ListModelsResponse models;
  auto ctx = Ctx("");
  EXPECT_EQ(engine->ListModels(ctx.get(), v1::ListModelsRequest(), &models).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(ServerTest, ValidKeyReachesTheServiceAsItsPrincipal) {
  v1::WhoAmIResponse resp;
  grpc::Status s = WhoAmI(ann_key_, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.principal().user(), "ann@example.com");
  EXPECT_EQ(resp.principal().tenant(), "default");
  ASSERT_EQ(resp.principal().groups_size(), 1);
  EXPECT_EQ(resp.principal().groups(0), "finance@example.com");
  EXPECT_EQ(resp.role(), v1::API_KEY_ROLE_USER);
}

TEST_F(ServerTest, CallerMetadataFromTheClientIsNotTrusted) {
  auto ctx = Ctx(ann_key_);
  ctx->AddMetadata("x-tessera-user", "root@example.com");
  ctx->AddMetadata("x-tessera-role", "admin");
  v1::WhoAmIResponse resp;
  ASSERT_TRUE(admin_stub_->WhoAmI(ctx.get(), v1::WhoAmIRequest(), &resp).ok());
  EXPECT_EQ(resp.principal().user(), "ann@example.com");
  EXPECT_EQ(resp.role(), v1::API_KEY_ROLE_USER);

  auto anon = Ctx("");
  anon->AddMetadata("x-tessera-user", "root@example.com");
  EXPECT_EQ(admin_stub_->WhoAmI(anon.get(), v1::WhoAmIRequest(), &resp).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(ServerTest, UnbuiltServiceSaysSo) {
  auto sync = v1::SyncService::NewStub(channel_);
  v1::ListConnectorsResponse connectors;
  auto ctx = Ctx(ann_key_);
  grpc::Status s = sync->ListConnectors(ctx.get(), v1::ListConnectorsRequest(), &connectors);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_TRUE(absl::StrContains(s.error_message(), "tessera.v1.SyncService is not built yet"))
      << s.error_message();
}

TEST_F(ServerTest, AdminKeyLifecycle) {
  v1::CreateApiKeyRequest req;
  req.mutable_principal()->set_user("bob@example.com");
  req.set_role(v1::API_KEY_ROLE_USER);
  v1::CreateApiKeyResponse created;
  {
    auto ctx = Ctx(ann_key_);  // a user key may not create keys
    EXPECT_EQ(admin_stub_->CreateApiKey(ctx.get(), req, &created).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    auto ctx = Ctx(admin_key_);
    grpc::Status s = admin_stub_->CreateApiKey(ctx.get(), req, &created);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  v1::WhoAmIResponse who;
  ASSERT_TRUE(WhoAmI(created.secret(), &who).ok());
  EXPECT_EQ(who.principal().user(), "bob@example.com");
  {
    auto ctx = Ctx(admin_key_);
    v1::ListApiKeysRequest list_req;
    list_req.set_page_size(2);
    v1::ListApiKeysResponse list;
    ASSERT_TRUE(admin_stub_->ListApiKeys(ctx.get(), list_req, &list).ok());
    EXPECT_EQ(list.keys_size(), 2);
    EXPECT_FALSE(list.next_page_token().empty());
    for (const auto& k : list.keys()) EXPECT_FALSE(k.key_id().empty());
  }
  {
    auto ctx = Ctx(admin_key_);
    v1::RevokeApiKeyRequest rev;
    rev.set_key_id(created.key().key_id());
    v1::RevokeApiKeyResponse revoked;
    ASSERT_TRUE(admin_stub_->RevokeApiKey(ctx.get(), rev, &revoked).ok());
    EXPECT_TRUE(revoked.key().revoked());
  }
  EXPECT_EQ(WhoAmI(created.secret(), &who).error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(ServerTest, InProcessChannelCarriesAnAttachedCaller) {
  // How one service calls another in the same process: its stub on
  // Channel(), with the caller it is acting for attached.
  auto stub = v1::AdminService::NewStub(server_->Channel("admin"));
  Caller caller;
  caller.principal.user = "svc-caller@example.com";
  grpc::ClientContext ctx;
  AttachCaller(caller, &ctx);
  v1::WhoAmIResponse resp;
  ASSERT_TRUE(stub->WhoAmI(&ctx, v1::WhoAmIRequest(), &resp).ok());
  EXPECT_EQ(resp.principal().user(), "svc-caller@example.com");
  EXPECT_EQ(server_->Channel("nonsense"), nullptr);
}

TEST_F(ServerTest, SecondServerOnSameDataDirIsRefused) {
  TesseraServer::Options o;
  o.data_dir = dir_;
  o.listen = "127.0.0.1:0";
  auto s = TesseraServer::Start(o);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition) << s.status();
}

TEST_F(ServerTest, SplitDeploymentForwardsToPeerWithSameKeys) {
  // A second process-like server that serves only the engine slot and sends
  // admin calls to the first one; both share the key database.
  TesseraServer::Options o;
  o.data_dir = TempDir("peer");
  o.keys_db = dir_ + "/admin.db";
  o.listen = "127.0.0.1:0";
  o.only = {"engine"};
  o.peers = {{"admin", server_->address()}};
  auto front = TesseraServer::Start(o);
  ASSERT_TRUE(front.ok()) << front.status();
  auto stub = v1::AdminService::NewStub(
      grpc::CreateChannel((*front)->address(), grpc::InsecureChannelCredentials()));
  v1::WhoAmIResponse resp;
  auto ctx = Ctx(ann_key_);
  grpc::Status s = stub->WhoAmI(ctx.get(), v1::WhoAmIRequest(), &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.principal().user(), "ann@example.com");
  // Retrieval is neither local nor a peer there.
  v1::ListModelsResponse models;
  auto ctx2 = Ctx(ann_key_);
  auto engine = v1::EngineService::NewStub(
      grpc::CreateChannel((*front)->address(), grpc::InsecureChannelCredentials()));
  EXPECT_EQ(engine->ListModels(ctx2.get(), v1::ListModelsRequest(), &models).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
}

TEST(ServerOptionsTest, BadOptionsAreInvalidArgument) {
  TesseraServer::Options o;
  o.data_dir = TempDir("opts");
  o.listen = "127.0.0.1:0";
  o.only = {"enigne"};
  EXPECT_EQ(TesseraServer::Start(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.only = {};
  o.tls_cert_file = "/x.pem";
  EXPECT_EQ(TesseraServer::Start(o).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParsePeers({"engine=host"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParsePeers({"bogus=host:1"}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParsePeers({"engine=host:1"})->at("engine"), "host:1");
}

TEST(ServerOptionsTest, PortInUseIsUnavailable) {
  TesseraServer::Options a;
  a.data_dir = TempDir("port_a");
  a.listen = "127.0.0.1:0";
  auto first = TesseraServer::Start(a);
  ASSERT_TRUE(first.ok()) << first.status();
  TesseraServer::Options b;
  b.data_dir = TempDir("port_b");
  b.listen = (*first)->address();
  auto second = TesseraServer::Start(b);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable) << second.status();
}

}  // namespace
}  // namespace tessera
