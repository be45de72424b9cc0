// The agent loop's connections to the other services, over their gRPC stubs: EngineChatModel
// (EngineService.Generate) and RetrievalKnowledgeSearcher (RetrievalService.Search as the run's
// principal). Both turn the run's cancellation into the call's TryCancel.
#ifndef TESSERA_SERVICES_AGENTS_BACKENDS_H_
#define TESSERA_SERVICES_AGENTS_BACKENDS_H_

#include <memory>
#include <string>

#include "agents/orchestrator/agent_tool.h"
#include "agents/orchestrator/chat_model.h"
#include "grpcpp/grpcpp.h"
#include "services/gateway/caller.h"
#include "tessera/v1/agents.pb.h"

namespace tessera::agents_service {

class EngineChatModel final : public agents::ChatModel {
 public:
  explicit EngineChatModel(std::shared_ptr<grpc::Channel> channel) : channel_(std::move(channel)) {}
  absl::Status Generate(const tessera::v1::GenerateRequest& request, agents::Cancellation& cancel,
                        const std::function<void(const tessera::v1::GenerateResponse&)>& on_event) override;
  std::string Describe() const override { return "engine"; }

 private:
  std::shared_ptr<grpc::Channel> channel_;
};

class RetrievalKnowledgeSearcher final : public agents::KnowledgeSearcher {
 public:
  // Searches `knowledge` as `principal` (attached as the caller, so retrieval applies its ACLs).
  RetrievalKnowledgeSearcher(std::shared_ptr<grpc::Channel> channel, Caller principal,
                             tessera::v1::Knowledge knowledge)
      : channel_(std::move(channel)), principal_(std::move(principal)), knowledge_(std::move(knowledge)) {}
  absl::StatusOr<std::vector<tessera::v1::SearchHit>> Search(const std::string& query, int top_k,
                                                             agents::Cancellation& cancel,
                                                             absl::Time deadline) override;

 private:
  std::shared_ptr<grpc::Channel> channel_;
  Caller principal_;
  tessera::v1::Knowledge knowledge_;
};

}  // namespace tessera::agents_service

#endif  // TESSERA_SERVICES_AGENTS_BACKENDS_H_
