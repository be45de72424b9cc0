// A `tessera serve`-like server for integration tests: RetrievalService on the gateway, with
// EngineService provided by the test (a scripted one, or the real engine), and an admin key.
#ifndef TESSERA_TESTS_INTEGRATION_RETRIEVAL_WITH_ENGINE_H_
#define TESSERA_TESTS_INTEGRATION_RETRIEVAL_WITH_ENGINE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "services/gateway/server.h"

namespace tessera::testing {

struct RetrievalWithEngine {
  std::unique_ptr<TesseraServer> server;
  std::string admin_key;  // a bearer token acting as it@acme.example, role admin
};

// Starts the gateway with `engine` (not owned; must outlive the server) as EngineService and a
// RetrievalService storing under `dir`/retrieval that embeds and reranks through it.
absl::StatusOr<RetrievalWithEngine> StartRetrievalWithEngine(const std::string& dir,
                                                             grpc::Service* engine);

}  // namespace tessera::testing

#endif  // TESSERA_TESTS_INTEGRATION_RETRIEVAL_WITH_ENGINE_H_
