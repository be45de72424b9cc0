// AgentService end to end through the gateway: real retrieval with ACLs, real agent store, the
// agent loop with the scripted Mistral model (or extractive answers), as different principals.
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "agents/mcp/test_util.h"
#include "agents/orchestrator/agent_runner.h"
#include "common/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "services/agents/agent_service.h"
#include "services/gateway/api_key_store.h"
#include "services/gateway/server.h"
#include "services/mcp/agent_tools.h"
#include "services/mcp/mcp_server.h"
#include "services/retrieval/retrieval_service.h"
#include "tessera/v1/agents.grpc.pb.h"
#include "tessera/v1/retrieval.grpc.pb.h"
#include "tests/agents/scripted_mistral_model.h"

namespace tessera {
namespace {

namespace v1 = ::tessera::v1;
using agents::testing::MistralTokenizerPath;
using agents::testing::ScriptedMistralModel;
using agents::testing::ScriptReply;
using agents::testing::ScriptTurn;

// The scripted model: search for the first word of the question, then answer from what came back,
// citing source 1 when there is one.
ScriptReply SearchThenAnswer(const ScriptTurn& t) {
  const auto& msgs = t.request.messages();
  const auto& last = msgs[msgs.size() - 1];
  if (last.role() == v1::ROLE_USER) {
    std::string q = last.content().substr(0, last.content().find(' '));
    return {absl::StrCat(R"([TOOL_CALLS][{"name": "search_knowledge", "arguments": {"query": ")", q, R"("}}])")};
  }
  if (absl::StrContains(last.content(), "[1]")) return {"Here is what I found [1]."};
  return {"I could not find it."};
}

class AgentServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/agent_service_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    TesseraServer::Options o;
    o.data_dir = dir_;
    o.listen = "127.0.0.1:0";
    o.factories["retrieval"] = [this](TesseraServer*) -> absl::StatusOr<std::unique_ptr<grpc::Service>> {
      retrieval::RetrievalServiceImpl::Options ro;
      ro.data_dir = dir_ + "/retrieval";
      auto s = retrieval::RetrievalServiceImpl::Create(ro);
      if (!s.ok()) return s.status();
      return std::unique_ptr<grpc::Service>(std::move(*s));
    };
    o.factories["agents"] = [this](TesseraServer* server) -> absl::StatusOr<std::unique_ptr<grpc::Service>> {
      agents_service::AgentServiceOptions ao;
      ao.db_path = dir_ + "/agents.db";
      ao.retrieval_channel = [server] { return server->Channel("retrieval"); };
      ao.model_factory = [this](const std::string& model) -> std::unique_ptr<agents::ChatModel> {
        if (model != "scripted") return nullptr;
        auto m = ScriptedMistralModel::Create(MistralTokenizerPath("v7"), engine::ChatFormat::kMistralV7,
                                              script_ ? script_ : SearchThenAnswer);
        return m.ok() ? std::move(*m) : nullptr;
      };
      ao.runner.approval_timeout = absl::Seconds(30);
      auto s = agents_service::AgentServiceImpl::Create(ao);
      if (!s.ok()) return s.status();
      return std::unique_ptr<grpc::Service>(std::move(*s));
    };
    auto server = TesseraServer::Start(o);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto keys = ApiKeyStore::Open(dir_ + "/admin.db", RealClock());
    ASSERT_TRUE(keys.ok());
    auto key = [&](const std::string& user, std::vector<std::string> groups, KeyRole role) {
      ApiKeyStore::CreateOptions ko;
      ko.principal.user = user;
      ko.principal.groups = std::move(groups);
      ko.role = role;
      return (*keys)->Create(ko)->token;
    };
    admin_ = key("it@acme.com", {}, KeyRole::kAdmin);
    ann_ = key("ann@acme.com", {"hr@acme.com"}, KeyRole::kUser);
    bob_ = key("bob@acme.com", {}, KeyRole::kUser);
    channel_ = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
    agents_ = v1::AgentService::NewStub(channel_);

    // The company's documents: salary bands only for HR, the travel policy for everyone.
    auto retrieval = v1::RetrievalService::NewStub(channel_);
    v1::CreateCollectionRequest cc;
    cc.mutable_collection()->set_name("acme");
    v1::CreateCollectionResponse cr;
    ASSERT_TRUE(retrieval->CreateCollection(Ctx(admin_).get(), cc, &cr).ok());
    v1::IngestDocumentsRequest ing;
    ing.set_collection("acme");
    auto add = [&](const std::string& id, const std::string& title, const std::string& text, const std::string& acl) {
      v1::Document* d = ing.add_documents();
      d->set_source("gdrive");
      d->set_external_id(id);
      d->set_title(title);
      d->set_uri("https://drive.example/" + id);
      d->set_text(text);
      d->add_acl(acl);
    };
    add("salary", "Salary bands 2026", "Salary bands: engineers L3 earn 70k to 90k EUR.", "group:hr@acme.com");
    add("travel", "Travel policy", "Travel: economy class for flights under six hours.", "domain:acme.com");
    v1::IngestDocumentsResponse ir;
    grpc::Status s = retrieval->IngestDocuments(Ctx(admin_).get(), ing, &ir);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }
  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(5));
  }

  std::unique_ptr<grpc::ClientContext> Ctx(const std::string& key) {
    auto c = std::make_unique<grpc::ClientContext>();
    c->AddMetadata("authorization", "Bearer " + key);
    c->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    return c;
  }

  std::string CreateAgent(const std::string& key, const std::string& json, const std::string& id = "") {
    v1::CreateAgentRequest req;
    req.set_definition_json(json);
    req.set_agent_id(id);
    v1::CreateAgentResponse resp;
    grpc::Status s = agents_->CreateAgent(Ctx(key).get(), req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp.agent().id();
  }

  struct RunResult {
    grpc::Status status;
    std::vector<v1::RunResponse> events;
    std::string answer;
    std::vector<v1::Citation> citations;
    v1::RunDone done;
  };
  RunResult RunAgent(const std::string& key, const std::string& agent, const std::string& message,
                     const std::string& conversation = "",
                     std::function<void(const v1::RunResponse&)> on_event = nullptr) {
    v1::RunRequest req;
    req.set_agent_id(agent);
    req.set_message(message);
    req.set_conversation_id(conversation);
    auto ctx = Ctx(key);
    auto reader = agents_->Run(ctx.get(), req);
    RunResult r;
    v1::RunResponse e;
    while (reader->Read(&e)) {
      if (on_event) on_event(e);
      r.events.push_back(e);
      if (e.has_message_delta()) r.answer += e.message_delta().text();
      if (e.has_citation()) r.citations.push_back(e.citation().citation());
      if (e.has_done()) r.done = e.done();
    }
    r.status = reader->Finish();
    return r;
  }

  static constexpr char kScripted[] = R"({
    "name": "HR assistant", "model": "scripted",
    "instructions": "Answer HR questions.",
    "knowledge": {"collections": ["acme"]},
    "tools": [{"knowledgeSearch": {}}],
    "sharing": {"tenantWide": true}
  })";
  static constexpr char kExtractive[] = R"({
    "name": "Search", "model": "extractive",
    "knowledge": {"collections": ["acme"]},
    "sharing": {"tenantWide": true}
  })";

  std::string dir_;
  std::unique_ptr<TesseraServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AgentService::Stub> agents_;
  std::string admin_, ann_, bob_;
  std::function<ScriptReply(const ScriptTurn&)> script_;
};

TEST_F(AgentServiceTest, EachUserGetsAnswersFromWhatTheyMaySee) {
  const std::string agent = CreateAgent(ann_, kScripted, "hr");
  ASSERT_EQ(agent, "hr");
  RunResult ann = RunAgent(ann_, agent, "Salary bands for engineers?");
  ASSERT_TRUE(ann.status.ok()) << ann.status.error_message();
  EXPECT_EQ(ann.done.finish_reason(), v1::RUN_FINISH_REASON_STOP);
  EXPECT_EQ(ann.answer, "Here is what I found [1].");
  ASSERT_EQ(ann.citations.size(), 1u);
  EXPECT_EQ(ann.citations[0].title(), "Salary bands 2026");
  EXPECT_EQ(ann.citations[0].uri(), "https://drive.example/salary");
  EXPECT_FALSE(ann.done.message_id().empty());

  RunResult bob = RunAgent(bob_, agent, "Salary bands for engineers?");
  ASSERT_TRUE(bob.status.ok()) << bob.status.error_message();
  for (const auto& c : bob.citations) EXPECT_NE(c.title(), "Salary bands 2026");
  for (const auto& e : bob.events) {
    if (e.has_retrieval_results()) {
      for (const auto& h : e.retrieval_results().hits()) EXPECT_NE(h.external_id(), "salary");
    }
  }
}

TEST_F(AgentServiceTest, ExtractiveAgentsAnswerWithoutAModel) {
  const std::string agent = CreateAgent(admin_, kExtractive);
  EXPECT_TRUE(absl::StartsWith(agent, "search-")) << agent;
  RunResult ann = RunAgent(ann_, agent, "salary bands");
  ASSERT_TRUE(ann.status.ok());
  EXPECT_TRUE(absl::StrContains(ann.answer, "Salary bands 2026")) << ann.answer;
  EXPECT_FALSE(ann.citations.empty());
  RunResult bob = RunAgent(bob_, agent, "salary bands");
  EXPECT_FALSE(absl::StrContains(bob.answer, "Salary bands 2026")) << bob.answer;
}

TEST_F(AgentServiceTest, ConversationsKeepHistoryAndArePrivate) {
  std::vector<std::string> prompts;
  script_ = [&](const ScriptTurn& t) -> ScriptReply {
    prompts.push_back(t.prompt_text);
    return {absl::StrCat("answer ", prompts.size())};
  };
  const std::string agent = CreateAgent(ann_, kScripted);
  RunResult first = RunAgent(ann_, agent, "first question");
  ASSERT_TRUE(first.status.ok());
  const std::string conv = first.done.conversation_id();
  ASSERT_FALSE(conv.empty());
  RunResult second = RunAgent(ann_, agent, "second question", conv);
  ASSERT_TRUE(second.status.ok()) << second.status.error_message();
  EXPECT_EQ(second.done.conversation_id(), conv);
  EXPECT_TRUE(absl::StrContains(prompts.back(), "first question")) << prompts.back();
  EXPECT_TRUE(absl::StrContains(prompts.back(), "answer 1")) << prompts.back();

  v1::GetConversationRequest g;
  g.set_conversation_id(conv);
  v1::GetConversationResponse gr;
  ASSERT_TRUE(agents_->GetConversation(Ctx(ann_).get(), g, &gr).ok());
  ASSERT_EQ(gr.conversation().messages_size(), 4);
  EXPECT_EQ(gr.conversation().messages(3).content(), "answer 2");
  EXPECT_EQ(gr.conversation().title(), "first question");
  // Bob can neither read nor continue Ann's conversation.
  EXPECT_EQ(agents_->GetConversation(Ctx(bob_).get(), g, &gr).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(RunAgent(bob_, agent, "hi", conv).status.error_code(), grpc::StatusCode::NOT_FOUND);
  v1::ListConversationsResponse lr;
  ASSERT_TRUE(agents_->ListConversations(Ctx(bob_).get(), v1::ListConversationsRequest(), &lr).ok());
  EXPECT_EQ(lr.conversations_size(), 0);
  ASSERT_TRUE(agents_->ListConversations(Ctx(ann_).get(), v1::ListConversationsRequest(), &lr).ok());
  EXPECT_EQ(lr.conversations_size(), 1);
}

TEST_F(AgentServiceTest, DefinitionsAreValidatedVersionedAndGuarded) {
  v1::CreateAgentRequest bad;
  bad.set_definition_json(R"({"name": "x", "model": "scripted", "tools": [{"mcpServer": {"name": "f", "transport": "MCP_TRANSPORT_STREAMABLE_HTTP", "url": "ftp://x"}}]})");
  v1::CreateAgentResponse resp;
  grpc::Status s = agents_->CreateAgent(Ctx(ann_).get(), bad, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(absl::StartsWith(s.error_message(), "tools[0].mcpServer.url")) << s.error_message();

  v1::CreateAgentRequest unknown_collection;
  unknown_collection.set_definition_json(R"({"name": "x", "model": "extractive", "knowledge": {"collections": ["acme", "nope"]}})");
  s = agents_->CreateAgent(Ctx(ann_).get(), unknown_collection, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();
  EXPECT_TRUE(absl::StartsWith(s.error_message(), "knowledge.collections[1]")) << s.error_message();

  v1::CreateAgentRequest unknown_model;
  unknown_model.set_definition_json(R"({"name": "x", "model": "gpt-17"})");
  s = agents_->CreateAgent(Ctx(ann_).get(), unknown_model, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND) << s.error_message();

  // A private agent: Bob cannot see it, nor change it once shared with him.
  const std::string agent = CreateAgent(ann_, R"({"name": "Private", "model": "extractive", "knowledge": {"collections": ["acme"]}})", "private");
  v1::GetAgentRequest get;
  get.set_agent_id(agent);
  v1::GetAgentResponse got;
  EXPECT_EQ(agents_->GetAgent(Ctx(bob_).get(), get, &got).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(RunAgent(bob_, agent, "hi").status.error_code(), grpc::StatusCode::NOT_FOUND);
  v1::UpdateAgentRequest up;
  up.set_agent_id(agent);
  up.set_definition_json(R"({"name": "Private", "model": "extractive", "knowledge": {"collections": ["acme"]}, "sharing": {"users": ["bob@acme.com"]}})");
  up.set_expected_version(1);
  v1::UpdateAgentResponse upr;
  ASSERT_TRUE(agents_->UpdateAgent(Ctx(ann_).get(), up, &upr).ok());
  EXPECT_EQ(upr.agent().version(), 2);
  EXPECT_TRUE(agents_->GetAgent(Ctx(bob_).get(), get, &got).ok());
  up.set_expected_version(2);
  EXPECT_EQ(agents_->UpdateAgent(Ctx(bob_).get(), up, &upr).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  up.set_expected_version(1);
  EXPECT_EQ(agents_->UpdateAgent(Ctx(ann_).get(), up, &upr).error_code(), grpc::StatusCode::ABORTED);
  get.set_version(1);
  ASSERT_TRUE(agents_->GetAgent(Ctx(ann_).get(), get, &got).ok());
  EXPECT_EQ(got.agent().definition().sharing().users_size(), 0);
  v1::ListAgentVersionsRequest lv;
  lv.set_agent_id(agent);
  v1::ListAgentVersionsResponse lvr;
  ASSERT_TRUE(agents_->ListAgentVersions(Ctx(ann_).get(), lv, &lvr).ok());
  EXPECT_EQ(lvr.versions_size(), 2);
}

TEST_F(AgentServiceTest, BadRunRequestsFailBeforeAnyEvent) {
  const std::string agent = CreateAgent(ann_, kExtractive);
  EXPECT_EQ(RunAgent(ann_, agent, "   ").status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(RunAgent(ann_, agent, std::string(40000, 'x')).status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(RunAgent(ann_, "nope", "hi").status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(RunAgent(ann_, agent, "hi", "conv-nope").status.error_code(), grpc::StatusCode::NOT_FOUND);
  // A user key cannot run as someone else.
  v1::RunRequest req;
  req.set_agent_id(agent);
  req.set_message("hi");
  req.mutable_principal()->set_user("ann@acme.com");
  auto ctx = Ctx(bob_);
  auto reader = agents_->Run(ctx.get(), req);
  v1::RunResponse e;
  EXPECT_FALSE(reader->Read(&e));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(AgentServiceTest, AClientThatLeavesCancelsTheRunAndFreesTheConversation) {
  script_ = [](const ScriptTurn&) -> ScriptReply {
    ScriptReply r{std::string(3000, 'a')};
    r.per_token_delay = absl::Milliseconds(5);
    return r;
  };
  const std::string agent = CreateAgent(ann_, kScripted);
  v1::RunRequest req;
  req.set_agent_id(agent);
  req.set_message("talk a lot");
  auto ctx = Ctx(ann_);
  auto reader = agents_->Run(ctx.get(), req);
  v1::RunResponse e;
  ASSERT_TRUE(reader->Read(&e));
  const std::string conv = e.conversation_id();
  ctx->TryCancel();
  while (reader->Read(&e)) {
  }
  reader->Finish();
  // The run ends on the server and the conversation takes a new run.
  script_ = [](const ScriptTurn&) -> ScriptReply { return {"short"}; };
  RunResult again;
  for (int i = 0; i < 100; ++i) {
    again = RunAgent(ann_, agent, "again", conv);
    if (again.status.error_code() != grpc::StatusCode::FAILED_PRECONDITION) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(again.status.ok()) << again.status.error_message();
  EXPECT_EQ(again.answer, "short");
}

// A real MCP server (the reference server-everything over stdio) as an agent's tool, with a call
// that waits for the user's approval given over ApproveToolCall.
TEST_F(AgentServiceTest, McpToolCallsWaitForApproval) {
  const std::string root = mcp::testing::FindNodeModulesRoot();
  const std::string node = mcp::testing::FindNode();
  if (root.empty() || node.empty()) GTEST_SKIP() << "node or node_modules missing (run scripts/setup.sh)";
  script_ = [](const ScriptTurn& t) -> ScriptReply {
    const auto& last = t.request.messages(t.request.messages_size() - 1);
    if (last.role() == v1::ROLE_USER) {
      EXPECT_TRUE(absl::StrContains(t.prompt_text, "everything__echo")) << t.prompt_text;
      return {R"([TOOL_CALLS][{"name": "everything__echo", "arguments": {"message": "hello from the agent"}}])"};
    }
    return {absl::StrCat("The server answered: ", last.content())};
  };
  const std::string def = absl::StrCat(R"({"name": "Echo", "model": "scripted", "tools": [{"mcpServer": {
      "name": "everything", "transport": "MCP_TRANSPORT_STDIO", "command": ")", node, R"(",
      "args": [")", root, R"(/node_modules/@modelcontextprotocol/server-everything/dist/index.js", "stdio"],
      "allowedTools": ["echo"], "confirmTools": ["echo"]}}]})");
  const std::string agent = CreateAgent(ann_, def);
  for (bool approve : {true, false}) {
    int approvals = 0;
    RunResult r = RunAgent(ann_, agent, "echo something", "", [&](const v1::RunResponse& e) {
      if (!e.has_approval_required()) return;
      ++approvals;
      EXPECT_EQ(e.approval_required().server(), "everything");
      // Only the run's own user may decide.
      v1::ApproveToolCallRequest a;
      a.set_run_id(e.run_id());
      a.set_call_id(e.approval_required().call_id());
      a.set_approved(approve);
      v1::ApproveToolCallResponse ar;
      EXPECT_EQ(agents_->ApproveToolCall(Ctx(bob_).get(), a, &ar).error_code(), grpc::StatusCode::NOT_FOUND);
      grpc::Status s = agents_->ApproveToolCall(Ctx(ann_).get(), a, &ar);
      EXPECT_TRUE(s.ok()) << s.error_message();
      EXPECT_EQ(agents_->ApproveToolCall(Ctx(ann_).get(), a, &ar).error_code(),
                grpc::StatusCode::FAILED_PRECONDITION);
    });
    ASSERT_TRUE(r.status.ok()) << r.status.error_message();
    EXPECT_EQ(approvals, 1);
    for (const auto& e : r.events) {
      if (e.has_error()) ADD_FAILURE() << e.error().message();
      if (!e.has_tool_call_result()) continue;
      if (approve) {
        EXPECT_FALSE(e.tool_call_result().is_error());
        EXPECT_TRUE(absl::StrContains(e.tool_call_result().content(), "hello from the agent"))
            << e.tool_call_result().content();
      } else {
        EXPECT_TRUE(e.tool_call_result().is_error());
      }
    }
    EXPECT_EQ(r.done.finish_reason(), v1::RUN_FINISH_REASON_STOP);
    EXPECT_EQ(absl::StrContains(r.answer, "hello from the agent"), approve) << r.answer;
  }
}

// Tessera's agents as MCP tools: an MCP client asks an agent with the caller's key.
TEST_F(AgentServiceTest, AgentsAreMcpToolsActingAsTheCaller) {
  CreateAgent(admin_, kExtractive, "acme-search");
  mcp::McpServerOptions so;
  mcp::McpServer server(so);
  mcp::AgentToolsOptions ao;
  auto channel = channel_;
  ao.agents_channel = [channel] { return channel; };
  ASSERT_TRUE(mcp::AddAgentTools(server, ao).ok());
  auto call = [&](const std::string& key, const mcp::Json& request) {
    mcp::McpSession session;
    mcp::McpCallContext ctx{key};
    auto init = server.Handle({{"jsonrpc", "2.0"}, {"id", 1}, {"method", "initialize"},
                               {"params", {{"protocolVersion", "2025-11-25"}, {"capabilities", mcp::Json::object()},
                                           {"clientInfo", {{"name", "t"}, {"version", "1"}}}}}},
                              session, ctx);
    EXPECT_TRUE(init.has_value());
    (void)server.Handle({{"jsonrpc", "2.0"}, {"method", "notifications/initialized"}}, session, ctx);
    auto r = server.Handle(request, session, ctx);
    EXPECT_TRUE(r.has_value());
    return r.value_or(mcp::Json());
  };
  mcp::Json ask = {{"jsonrpc", "2.0"}, {"id", 2}, {"method", "tools/call"},
                   {"params", {{"name", "ask_agent"}, {"arguments", {{"agent_id", "acme-search"}, {"message", "salary bands"}}}}}};
  mcp::Json ann = call(ann_, ask);
  ASSERT_TRUE(ann.contains("result")) << ann.dump();
  EXPECT_TRUE(absl::StrContains(ann["result"]["structuredContent"]["answer"].get<std::string>(), "Salary bands 2026"))
      << ann.dump();
  EXPECT_FALSE(ann["result"]["structuredContent"]["citations"].empty());
  mcp::Json bob = call(bob_, ask);
  EXPECT_FALSE(absl::StrContains(bob["result"]["structuredContent"]["answer"].get<std::string>(), "Salary"))
      << bob.dump();
  mcp::Json list = call(bob_, {{"jsonrpc", "2.0"}, {"id", 3}, {"method", "tools/call"},
                               {"params", {{"name", "list_agents"}, {"arguments", mcp::Json::object()}}}});
  EXPECT_EQ(list["result"]["structuredContent"]["agents"][0]["id"], "acme-search") << list.dump();
  mcp::Json missing = call(ann_, {{"jsonrpc", "2.0"}, {"id", 4}, {"method", "tools/call"},
                                  {"params", {{"name", "ask_agent"}, {"arguments", {{"agent_id", "nope"}, {"message", "hi"}}}}}});
  EXPECT_TRUE(missing["result"].value("isError", false)) << missing.dump();
}

}  // namespace
}  // namespace tessera
