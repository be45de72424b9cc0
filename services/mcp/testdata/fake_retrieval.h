// A fake RetrievalService for the MCP server tests, served on an in-process
// gRPC server. Keys decide what a caller sees, as the gateway's permissions
// would: "tsk_ann" sees the finance memo, "tsk_bob" the roadmap, any other
// tsk_ key nothing; a call without a bearer key fails UNAUTHENTICATED. It
// records the authorization metadata and requests it received.
#ifndef TESSERA_SERVICES_MCP_TESTDATA_FAKE_RETRIEVAL_H_
#define TESSERA_SERVICES_MCP_TESTDATA_FAKE_RETRIEVAL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "tessera/v1/retrieval.grpc.pb.h"

namespace tessera::mcp::testing {

class FakeRetrievalService final : public v1::RetrievalService::Service {
 public:
  grpc::Status Search(grpc::ServerContext* context, const v1::SearchRequest* request,
                      v1::SearchResponse* response) override;
  grpc::Status ListCollections(grpc::ServerContext* context, const v1::ListCollectionsRequest* request,
                               v1::ListCollectionsResponse* response) override;

  std::vector<std::string> authorizations() const;
  std::vector<v1::SearchRequest> searches() const;

 private:
  mutable absl::Mutex mu_;
  std::vector<std::string> authorizations_;
  std::vector<v1::SearchRequest> searches_;
};

// The service on an in-process server; channel() reaches it.
class FakeRetrieval {
 public:
  FakeRetrieval();
  ~FakeRetrieval();
  std::shared_ptr<grpc::Channel> channel() { return channel_; }
  FakeRetrievalService& service() { return service_; }

 private:
  FakeRetrievalService service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

}  // namespace tessera::mcp::testing

#endif  // TESSERA_SERVICES_MCP_TESTDATA_FAKE_RETRIEVAL_H_
