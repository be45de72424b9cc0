// AgentServiceImpl: agents.proto's AgentService. Agent definitions (versioned, shared with users
// and groups) and conversations live in SqliteAgentStore; Run builds the run's tools (the knowledge
// search over RetrievalService as the run's principal, the tools of the agent's MCP servers),
// picks the model backend (the engine, an OpenAI-compatible server, or extractive answers), runs
// agents::AgentRunner and streams its events. ApproveToolCall releases runs waiting on approval.
#ifndef TESSERA_SERVICES_AGENTS_AGENT_SERVICE_H_
#define TESSERA_SERVICES_AGENTS_AGENT_SERVICE_H_

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "agents/models/openai_chat_model.h"
#include "agents/orchestrator/agent_runner.h"
#include "common/clock.h"
#include "common/http/http_transport.h"
#include "grpcpp/grpcpp.h"
#include "services/agents/agent_store.h"
#include "services/gateway/caller.h"
#include "tessera/v1/agents.grpc.pb.h"

namespace tessera::agents_service {

struct AgentServiceOptions {
  std::string db_path;  // the SQLite file (":memory:" for tests)
  std::function<std::shared_ptr<grpc::Channel>()> engine_channel;
  std::function<std::shared_ptr<grpc::Channel>()> retrieval_channel;
  // For MCP servers over HTTP and OpenAI-compatible model servers; null disables both.
  std::shared_ptr<HttpTransport> http;
  // Models served by an OpenAI-compatible server, by the id agents name them with.
  std::map<std::string, agents::OpenAiChatModel::Options> openai_models;
  // Looks up a stored secret (bearer tokens, secret_env) by credential_ref; null: none exist.
  std::function<absl::StatusOr<std::string>(const std::string& tenant, const std::string& ref)> credentials;
  // Builds the model for an agent's model id before the engine and openai_models are consulted;
  // returning null falls through to them. For embedding a custom backend (and for tests).
  std::function<std::unique_ptr<agents::ChatModel>(const std::string& model)> model_factory;
  int history_messages = 20;  // earlier messages of a conversation given to the model
  agents::RunnerOptions runner;
  Clock* clock = RealClock();
};

class AgentServiceImpl final : public tessera::v1::AgentService::Service {
 public:
  static absl::StatusOr<std::unique_ptr<AgentServiceImpl>> Create(AgentServiceOptions options);
  ~AgentServiceImpl() override;

  grpc::Status CreateAgent(grpc::ServerContext* ctx, const v1::CreateAgentRequest* req,
                           v1::CreateAgentResponse* resp) override;
  grpc::Status GetAgent(grpc::ServerContext* ctx, const v1::GetAgentRequest* req, v1::GetAgentResponse* resp) override;
  grpc::Status ListAgents(grpc::ServerContext* ctx, const v1::ListAgentsRequest* req,
                          v1::ListAgentsResponse* resp) override;
  grpc::Status UpdateAgent(grpc::ServerContext* ctx, const v1::UpdateAgentRequest* req,
                           v1::UpdateAgentResponse* resp) override;
  grpc::Status DeleteAgent(grpc::ServerContext* ctx, const v1::DeleteAgentRequest* req,
                           v1::DeleteAgentResponse* resp) override;
  grpc::Status ListAgentVersions(grpc::ServerContext* ctx, const v1::ListAgentVersionsRequest* req,
                                 v1::ListAgentVersionsResponse* resp) override;
  grpc::Status Run(grpc::ServerContext* ctx, const v1::RunRequest* req,
                   grpc::ServerWriter<v1::RunResponse>* writer) override;
  grpc::Status ApproveToolCall(grpc::ServerContext* ctx, const v1::ApproveToolCallRequest* req,
                               v1::ApproveToolCallResponse* resp) override;
  grpc::Status ListConversations(grpc::ServerContext* ctx, const v1::ListConversationsRequest* req,
                                 v1::ListConversationsResponse* resp) override;
  grpc::Status GetConversation(grpc::ServerContext* ctx, const v1::GetConversationRequest* req,
                               v1::GetConversationResponse* resp) override;
  grpc::Status DeleteConversation(grpc::ServerContext* ctx, const v1::DeleteConversationRequest* req,
                                  v1::DeleteConversationResponse* resp) override;

  // Cancels every active run (server shutdown).
  void CancelAll();

 private:
  class Approvals;
  explicit AgentServiceImpl(AgentServiceOptions options);
  absl::Status CheckModel(const v1::AgentDefinition& d);
  // NOT_FOUND naming the first knowledge collection retrieval does not have.
  absl::Status CheckCollections(const v1::AgentDefinition& d, const Caller& caller);
  // The latest version of an agent `caller` may see; NOT_FOUND otherwise.
  absl::StatusOr<v1::Agent> VisibleAgent(const Caller& caller, const std::string& id);

  AgentServiceOptions options_;
  std::unique_ptr<SqliteAgentStore> store_;
  std::unique_ptr<Approvals> approvals_;
  agents::AgentRunner runner_;
  absl::Mutex mu_;
  std::set<std::string> active_conversations_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, agents::Cancellation*> active_runs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::agents_service

#endif  // TESSERA_SERVICES_AGENTS_AGENT_SERVICE_H_
