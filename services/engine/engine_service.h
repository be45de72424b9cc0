// EngineService over gRPC: maps tessera.v1 requests onto engine::Engine (engine/engine.h).
// Generate streams with the synchronous API: the handler thread drains a queue the engine fills
// and cancels the request as soon as the client goes away, which frees its cache blocks.
#ifndef TESSERA_SERVICES_ENGINE_ENGINE_SERVICE_H_
#define TESSERA_SERVICES_ENGINE_ENGINE_SERVICE_H_

#include <memory>

#include "engine/engine.h"
#include "tessera/v1/engine.grpc.pb.h"

namespace tessera::engine_service {

class EngineServiceImpl final : public tessera::v1::EngineService::Service {
 public:
  explicit EngineServiceImpl(std::unique_ptr<engine::Engine> engine)
      : engine_(std::move(engine)) {}

  grpc::Status Embed(grpc::ServerContext* context, const v1::EmbedRequest* request,
                     v1::EmbedResponse* response) override;
  grpc::Status Rerank(grpc::ServerContext* context, const v1::RerankRequest* request,
                      v1::RerankResponse* response) override;
  grpc::Status Generate(grpc::ServerContext* context, const v1::GenerateRequest* request,
                        grpc::ServerWriter<v1::GenerateResponse>* writer) override;
  grpc::Status Tokenize(grpc::ServerContext* context, const v1::TokenizeRequest* request,
                        v1::TokenizeResponse* response) override;
  grpc::Status ListModels(grpc::ServerContext* context, const v1::ListModelsRequest* request,
                          v1::ListModelsResponse* response) override;

  engine::Engine& engine() { return *engine_; }

 private:
  std::unique_ptr<engine::Engine> engine_;
};

// The proto request as engine parameters (INVALID_ARGUMENT naming the bad field).
absl::StatusOr<engine::GenerateParams> ToGenerateParams(const v1::GenerateRequest& request);

// An engine event as the EngineService.Generate stream sends it (a finish becomes a UsageEvent and
// a FinishEvent).
std::vector<v1::GenerateResponse> ToGenerateResponses(const engine::GenerateEvent& event);

}  // namespace tessera::engine_service

#endif  // TESSERA_SERVICES_ENGINE_ENGINE_SERVICE_H_
