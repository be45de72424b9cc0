// The gateway's proxy under real traffic shapes: server streaming, large
// messages, deadlines, cancellation, error statuses with trailers, and many
// concurrent calls. A test EngineService stands in as the service behind the
// proxy (the engine itself is a later milestone); what is under test is the
// path through TesseraServer: authentication, forwarding, flow control.
#include <atomic>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "services/gateway/api_key_store.h"
#include "services/gateway/caller.h"
#include "services/gateway/server.h"
#include "tessera/v1/engine.grpc.pb.h"

namespace tessera {
namespace {

class ScriptedEngine final : public v1::EngineService::Service {
 public:
  // Streams `max_tokens` token events "t0", "t1", ... then a finish event.
  // A prompt of "wait" blocks until the call is cancelled (deadline or client).
  grpc::Status Generate(grpc::ServerContext* ctx, const v1::GenerateRequest* req,
                        grpc::ServerWriter<v1::GenerateResponse>* writer) override {
    auto caller = CallerFromContext(*ctx);
    if (!caller.ok()) return grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "no caller");
    last_user_ = caller->principal.user;
    if (req->prompt() == "wait") {
      while (!ctx->IsCancelled()) absl::SleepFor(absl::Milliseconds(5));
      saw_cancel_ = true;
      return grpc::Status::CANCELLED;
    }
    const int n = req->sampling().max_tokens();
    for (int i = 0; i < n; ++i) {
      v1::GenerateResponse ev;
      ev.mutable_token()->set_text(absl::StrCat("t", i));
      if (!writer->Write(ev)) {
        saw_cancel_ = true;
        return grpc::Status::CANCELLED;
      }
      if (req->prompt() == "slow") absl::SleepFor(absl::Milliseconds(2));
    }
    return grpc::Status::OK;
  }

  // Echoes input sizes as one-dimensional embeddings; "bad" is rejected with
  // a trailer, as a real service would for a bad argument.
  grpc::Status Embed(grpc::ServerContext* ctx, const v1::EmbedRequest* req,
                     v1::EmbedResponse* resp) override {
    for (const auto& in : req->inputs()) {
      if (in == "bad") {
        ctx->AddTrailingMetadata("x-bad-input-index", "0");
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "input 0 is bad");
      }
      resp->add_embeddings()->add_values(static_cast<float>(in.size()));
    }
    return grpc::Status::OK;
  }

  std::atomic<bool> saw_cancel_{false};
  std::string last_user_;
};

class GatewayProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    std::string dir = absl::StrCat(tmp ? tmp : "/tmp", "/proxy_",
                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
    TesseraServer::Options o;
    o.data_dir = dir;
    o.listen = "127.0.0.1:0";
    o.implementations["engine"] = &engine_;
    auto s = TesseraServer::Start(o);
    ASSERT_TRUE(s.ok()) << s.status();
    server_ = std::move(*s);
    auto keys = ApiKeyStore::Open(dir + "/admin.db", RealClock());
    ASSERT_TRUE(keys.ok());
    ApiKeyStore::CreateOptions ann;
    ann.principal.user = "ann@example.com";
    key_ = (*keys)->Create(ann)->token;
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(64 << 20);
    stub_ = v1::EngineService::NewStub(grpc::CreateCustomChannel(
        server_->address(), grpc::InsecureChannelCredentials(), args));
  }

  void Auth(grpc::ClientContext* ctx, absl::Duration timeout = absl::Seconds(20)) {
    ctx->AddMetadata("authorization", "Bearer " + key_);
    ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  }

  ScriptedEngine engine_;
  std::unique_ptr<TesseraServer> server_;
  std::string key_;
  std::unique_ptr<v1::EngineService::Stub> stub_;
};

TEST_F(GatewayProxyTest, ServerStreamArrivesCompleteAndInOrder) {
  grpc::ClientContext ctx;
  Auth(&ctx);
  v1::GenerateRequest req;
  req.set_prompt("go");
  req.mutable_sampling()->set_max_tokens(2000);
  auto reader = stub_->Generate(&ctx, req);
  v1::GenerateResponse ev;
  int i = 0;
  while (reader->Read(&ev)) {
    ASSERT_EQ(ev.token().text(), absl::StrCat("t", i)) << "event " << i;
    ++i;
  }
  grpc::Status s = reader->Finish();
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(i, 2000);
  EXPECT_EQ(engine_.last_user_, "ann@example.com");
}

TEST_F(GatewayProxyTest, LargeMessagesPassBothWays) {
  grpc::ClientContext ctx;
  Auth(&ctx);
  v1::EmbedRequest req;
  for (int i = 0; i < 100; ++i) req.add_inputs(std::string(100'000, 'a' + i % 26));  // ~10 MB
  v1::EmbedResponse resp;
  grpc::Status s = stub_->Embed(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(resp.embeddings_size(), 100);
  EXPECT_EQ(resp.embeddings(99).values(0), 100'000.0f);
}

TEST_F(GatewayProxyTest, ErrorStatusAndTrailersPassThrough) {
  grpc::ClientContext ctx;
  Auth(&ctx);
  v1::EmbedRequest req;
  req.add_inputs("bad");
  v1::EmbedResponse resp;
  grpc::Status s = stub_->Embed(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(s.error_message(), "input 0 is bad");
  auto trailers = ctx.GetServerTrailingMetadata();
  auto it = trailers.find("x-bad-input-index");
  ASSERT_NE(it, trailers.end());
  EXPECT_EQ(std::string(it->second.data(), it->second.size()), "0");
}

TEST_F(GatewayProxyTest, DeadlineReachesTheService) {
  grpc::ClientContext ctx;
  Auth(&ctx, absl::Milliseconds(300));
  v1::GenerateRequest req;
  req.set_prompt("wait");
  auto reader = stub_->Generate(&ctx, req);
  v1::GenerateResponse ev;
  EXPECT_FALSE(reader->Read(&ev));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  for (int i = 0; i < 400 && !engine_.saw_cancel_; ++i) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_TRUE(engine_.saw_cancel_) << "the service kept running after the caller's deadline";
}

TEST_F(GatewayProxyTest, ClientCancellationReachesTheService) {
  grpc::ClientContext ctx;
  Auth(&ctx);
  v1::GenerateRequest req;
  req.set_prompt("slow");
  req.mutable_sampling()->set_max_tokens(100000);
  auto reader = stub_->Generate(&ctx, req);
  v1::GenerateResponse ev;
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(reader->Read(&ev));
  ctx.TryCancel();
  while (reader->Read(&ev)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  for (int i = 0; i < 400 && !engine_.saw_cancel_; ++i) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_TRUE(engine_.saw_cancel_) << "the service kept streaming to a caller that left";
}

TEST_F(GatewayProxyTest, ManyConcurrentCalls) {
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        grpc::ClientContext ctx;
        Auth(&ctx);
        v1::EmbedRequest req;
        req.add_inputs(std::string(t * 10 + i, 'x'));
        v1::EmbedResponse resp;
        if (stub_->Embed(&ctx, req, &resp).ok() && resp.embeddings_size() == 1 &&
            resp.embeddings(0).values(0) == static_cast<float>(t * 10 + i)) {
          ++ok;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), 400);
}

TEST_F(GatewayProxyTest, ShutdownWithCallsInFlightCompletes) {
  std::thread streamer([&] {
    grpc::ClientContext ctx;
    Auth(&ctx);
    v1::GenerateRequest req;
    req.set_prompt("wait");
    auto reader = stub_->Generate(&ctx, req);
    v1::GenerateResponse ev;
    while (reader->Read(&ev)) {
    }
    EXPECT_NE(reader->Finish().error_code(), grpc::StatusCode::OK);
  });
  absl::SleepFor(absl::Milliseconds(200));
  absl::Time start = absl::Now();
  server_->Shutdown(absl::Milliseconds(200));
  streamer.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

}  // namespace
}  // namespace tessera
