// An agent whose model is served by the real engine: AgentService -> EngineService.Generate over
// the gateway's in-process channel, with the one real generative model we ship (stories260K, a
// TinyStories Llama rendered with the plain Mistral v1 template). It cannot call tools, but the
// whole path from a run to generated tokens and back is real.
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "engine/engine.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "services/agents/agent_service.h"
#include "services/engine/engine_service.h"
#include "services/gateway/api_key_store.h"
#include "services/gateway/server.h"
#include "tessera/v1/agents.grpc.pb.h"

namespace tessera {
namespace {

namespace v1 = ::tessera::v1;

std::string Runfile(const std::string& path) {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  return srcdir && ws ? absl::StrCat(srcdir, "/", ws, "/", path) : path;
}

TEST(AgentEngineTest, AnAgentRunsOnTheEngine) {
  const std::string dir = ::testing::TempDir() + "/agent_engine";
  engine::EngineOptions eo;
  eo.device = "cpu";
  eo.num_threads = 1;
  engine::ModelConfig mc;
  mc.id = "stories";
  mc.path = Runfile("engine/model/testdata/stories260K.gguf");
  mc.chat_format = "mistral-v1";
  mc.kv_cache_mb = 8;
  eo.models.push_back(mc);
  auto e = engine::Engine::Create(eo);
  ASSERT_TRUE(e.ok()) << e.status();
  engine_service::EngineServiceImpl engine(std::move(*e));

  TesseraServer::Options o;
  o.data_dir = dir;
  o.listen = "127.0.0.1:0";
  o.implementations["engine"] = &engine;
  o.factories["agents"] = [dir](TesseraServer* server) -> absl::StatusOr<std::unique_ptr<grpc::Service>> {
    agents_service::AgentServiceOptions ao;
    ao.db_path = dir + "/agents.db";
    ao.engine_channel = [server] { return server->Channel("engine"); };
    auto s = agents_service::AgentServiceImpl::Create(ao);
    if (!s.ok()) return s.status();
    return std::unique_ptr<grpc::Service>(std::move(*s));
  };
  auto server = TesseraServer::Start(o);
  ASSERT_TRUE(server.ok()) << server.status();
  auto keys = ApiKeyStore::Open(dir + "/admin.db", RealClock());
  ASSERT_TRUE(keys.ok());
  ApiKeyStore::CreateOptions ko;
  ko.principal.user = "ann@acme.com";
  const std::string key = (*keys)->Create(ko)->token;
  auto stub = v1::AgentService::NewStub(grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials()));
  auto ctx = [&] {
    auto c = std::make_unique<grpc::ClientContext>();
    c->AddMetadata("authorization", "Bearer " + key);
    c->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    return c;
  };

  // A model the engine does not serve is refused, naming the one it does.
  v1::CreateAgentRequest bad;
  bad.set_definition_json(R"({"name": "Teller", "model": "mistral-7b"})");
  v1::CreateAgentResponse resp;
  grpc::Status s = stub->CreateAgent(ctx().get(), bad, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(s.error_message().find("stories"), std::string::npos) << s.error_message();

  v1::CreateAgentRequest create;
  create.set_definition_json(R"({"name": "Teller", "model": "stories", "instructions": "Tell a story.",
                                "completionArgs": {"temperature": 0, "maxTokens": 40}})");
  s = stub->CreateAgent(ctx().get(), create, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();

  v1::RunRequest run;
  run.set_agent_id(resp.agent().id());
  run.set_message("Once upon a time");
  auto c = ctx();
  auto reader = stub->Run(c.get(), run);
  v1::RunResponse ev;
  std::string answer;
  v1::RunDone done;
  while (reader->Read(&ev)) {
    if (ev.has_message_delta()) answer += ev.message_delta().text();
    if (ev.has_error()) ADD_FAILURE() << ev.error().message();
    if (ev.has_done()) done = ev.done();
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_FALSE(answer.empty());
  EXPECT_EQ(done.finish_reason(), v1::RUN_FINISH_REASON_LENGTH);  // 40 tokens, then cut
  EXPECT_EQ(done.usage().completion_tokens(), 40);
  EXPECT_GT(done.usage().prompt_tokens(), 5);
  EXPECT_FALSE(done.message_id().empty());
  (*server)->Shutdown(absl::Seconds(5));
}

}  // namespace
}  // namespace tessera
