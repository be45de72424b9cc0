// EngineEmbedder: embeddings from EngineService.Embed through its stub, for
// collections whose embedding model is served by the engine. The lexical
// hash embedder (index/lexical_hash_embedder.h) is used when no model is
// configured.
//
// Thread-safe. Errors: the engine's status, annotated; FAILED_PRECONDITION
// when the engine answers with the wrong count or dimensions.
#ifndef TESSERA_SERVICES_RETRIEVAL_ENGINE_EMBEDDER_H_
#define TESSERA_SERVICES_RETRIEVAL_ENGINE_EMBEDDER_H_

#include <memory>
#include <string>
#include <vector>

#include "grpcpp/channel.h"
#include "services/retrieval/index/embedder.h"
#include "tessera/v1/engine.grpc.pb.h"

namespace tessera::retrieval {

class EngineEmbedder : public Embedder {
 public:
  struct Options {
    std::string model;
    int dimensions = 0;      // expected; checked on every answer
    int batch_size = 64;     // inputs per Embed call
    absl::Duration timeout = absl::Seconds(120);
  };
  EngineEmbedder(std::shared_ptr<grpc::Channel> engine, Options options);

  int dimensions() const override { return options_.dimensions; }
  std::string name() const override { return options_.model; }
  absl::StatusOr<std::vector<std::vector<float>>> Embed(
      const std::vector<std::string>& texts) override;

 private:
  std::unique_ptr<v1::EngineService::Stub> stub_;
  const Options options_;
};

}  // namespace tessera::retrieval

#endif  // TESSERA_SERVICES_RETRIEVAL_ENGINE_EMBEDDER_H_
