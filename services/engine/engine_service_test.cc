// EngineService over a real gRPC channel with a real model (stories260K): streaming Generate,
// clients that go away mid-stream, Tokenize, ListModels, and the errors callers get.
#include "services/engine/engine_service.h"

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tessera/v1/engine.grpc.pb.h"

namespace tessera::engine_service {
namespace {

std::string Golden() {
  std::ifstream in("engine/testdata/stories260K.greedy200.txt", std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string g = ss.str();
  if (!g.empty() && g.back() == '\n') g.pop_back();  // run.c's own newline
  return g;
}

class EngineServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine::EngineOptions o;
    o.device = "cpu";
    o.num_threads = 2;
    engine::ModelConfig m;
    m.id = "stories";
    m.path = "engine/model/testdata/stories260K.gguf";
    m.max_running = 1;
    m.max_queued = 2;
    m.kv_cache_mb = 4;
    o.models.push_back(m);
    auto e = engine::Engine::Create(o);
    ASSERT_TRUE(e.ok()) << e.status();
    service_ = std::make_unique<EngineServiceImpl>(std::move(*e));
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(service_.get());
    server_ = b.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = v1::EngineService::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  }

  v1::GenerateRequest Greedy(int max_tokens) {
    v1::GenerateRequest r;
    r.set_model("stories");
    r.mutable_sampling()->set_temperature(0);
    r.mutable_sampling()->set_max_tokens(max_tokens);
    return r;
  }

  std::unique_ptr<EngineServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::EngineService::Stub> stub_;
};

TEST_F(EngineServiceTest, GenerateStreamsTheReferenceTextThenUsageThenFinish) {
  grpc::ClientContext ctx;
  auto reader = stub_->Generate(&ctx, Greedy(200));
  v1::GenerateResponse r;
  std::string text;
  int tokens = 0, events = 0;
  bool usage_seen = false, finish_seen = false;
  while (reader->Read(&r)) {
    ++events;
    ASSERT_FALSE(finish_seen) << "nothing may follow the FinishEvent";
    if (r.has_token()) {
      ASSERT_FALSE(usage_seen);
      text += r.token().text();
      tokens += r.token().token_ids_size();
    } else if (r.has_usage()) {
      usage_seen = true;
      EXPECT_EQ(r.usage().usage().prompt_tokens(), 1);
      EXPECT_EQ(r.usage().usage().completion_tokens(), 200);
      EXPECT_EQ(r.usage().usage().total_tokens(), 201);
    } else if (r.has_finish()) {
      ASSERT_TRUE(usage_seen);
      finish_seen = true;
      EXPECT_EQ(r.finish().reason(), v1::FINISH_REASON_LENGTH);
    }
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_TRUE(finish_seen);
  EXPECT_EQ(text, Golden());
  EXPECT_EQ(tokens, 200);
  EXPECT_GT(events, 10);  // streamed, not one blob
}

TEST_F(EngineServiceTest, ClientThatGoesAwayMidStreamFreesItsSlot) {
  // max_running is 1: if the abandoned request kept its slot, the next one would never run.
  for (int round = 0; round < 3; ++round) {
    grpc::ClientContext ctx;
    auto reader = stub_->Generate(&ctx, Greedy(0));  // up to the whole context
    v1::GenerateResponse r;
    ASSERT_TRUE(reader->Read(&r));
    ctx.TryCancel();
    while (reader->Read(&r)) {
    }
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto reader = stub_->Generate(&ctx, Greedy(20));
  v1::GenerateResponse r;
  int tokens = 0;
  while (reader->Read(&r)) {
    if (r.has_token()) tokens += r.token().token_ids_size();
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(tokens, 20);
}

TEST_F(EngineServiceTest, StopSequenceIsReported) {
  v1::GenerateRequest req = Greedy(200);
  req.mutable_sampling()->add_stop("park");
  grpc::ClientContext ctx;
  auto reader = stub_->Generate(&ctx, req);
  v1::GenerateResponse r;
  std::string text;
  v1::FinishEvent finish;
  while (reader->Read(&r)) {
    if (r.has_token()) text += r.token().text();
    if (r.has_finish()) finish = r.finish();
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(finish.reason(), v1::FINISH_REASON_STOP_SEQUENCE);
  EXPECT_EQ(finish.stop_sequence(), "park");
  EXPECT_EQ(text, Golden().substr(0, Golden().find("park")));
}

TEST_F(EngineServiceTest, ErrorsBeforeTheStreamStartsAreStatuses) {
  auto call = [&](const v1::GenerateRequest& req) {
    grpc::ClientContext ctx;
    auto reader = stub_->Generate(&ctx, req);
    v1::GenerateResponse r;
    while (reader->Read(&r)) {
    }
    return reader->Finish();
  };
  v1::GenerateRequest unknown = Greedy(5);
  unknown.set_model("gpt-9");
  EXPECT_EQ(call(unknown).error_code(), grpc::StatusCode::NOT_FOUND);

  // (Invalid UTF-8 in a string field never reaches the service: protobuf refuses to parse it, and
  // the gateway answers INVALID_ARGUMENT; tests/e2e covers that path.)

  v1::GenerateRequest both = Greedy(5);
  both.set_prompt("x");
  both.add_messages()->set_role(v1::ROLE_USER);
  EXPECT_EQ(call(both).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  v1::GenerateRequest chat = Greedy(5);
  auto* m = chat.add_messages();
  m->set_role(v1::ROLE_USER);
  m->set_content("hello");
  EXPECT_EQ(call(chat).error_code(), grpc::StatusCode::FAILED_PRECONDITION);  // no chat template

  v1::GenerateRequest too_long = Greedy(5);
  std::string p;
  for (int i = 0; i < 2000; ++i) p += "Once upon a time ";
  too_long.set_prompt(p);
  EXPECT_EQ(call(too_long).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  v1::GenerateRequest bad_tool = Greedy(5);
  bad_tool.add_tools()->set_name("has space");
  EXPECT_EQ(call(bad_tool).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

TEST_F(EngineServiceTest, TokenizeAndListModels) {
  grpc::ClientContext ctx;
  v1::TokenizeRequest req;
  req.set_model("stories");
  req.set_text("Once upon a time");
  v1::TokenizeResponse resp;
  ASSERT_TRUE(stub_->Tokenize(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.token_ids_size(), 4);
  EXPECT_EQ(resp.token_ids(0), 403);
  EXPECT_EQ(resp.token_ids(3), 378);
  std::string joined;
  for (const auto& p : resp.pieces()) joined += p;
  EXPECT_EQ(joined, "Once upon a time");

  grpc::ClientContext ctx2;
  v1::ListModelsResponse models;
  ASSERT_TRUE(stub_->ListModels(&ctx2, v1::ListModelsRequest(), &models).ok());
  ASSERT_EQ(models.models_size(), 1);
  EXPECT_EQ(models.models(0).id(), "stories");
  EXPECT_EQ(models.models(0).kind(), v1::MODEL_KIND_GENERATION);
  EXPECT_EQ(models.models(0).architecture(), "llama");
  EXPECT_EQ(models.models(0).quantization(), "F32");
  EXPECT_GT(models.models(0).parameter_count(), 200000);
  EXPECT_EQ(models.models(0).backend(), "cpu");

  grpc::ClientContext ctx3;
  v1::ListModelsRequest only_embed;
  only_embed.set_kind(v1::MODEL_KIND_EMBEDDING);
  ASSERT_TRUE(stub_->ListModels(&ctx3, only_embed, &models).ok());
  EXPECT_EQ(models.models_size(), 0);

  grpc::ClientContext ctx4;
  v1::EmbedRequest embed;
  embed.set_model("stories");
  embed.add_inputs("x");
  v1::EmbedResponse er;
  EXPECT_EQ(stub_->Embed(&ctx4, embed, &er).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace tessera::engine_service
