#include "services/mcp/testdata/fake_retrieval.h"

#include <utility>

namespace tessera::mcp::testing {
namespace {

std::string Authorization(const grpc::ServerContext& context) {
  auto it = context.client_metadata().find("authorization");
  if (it == context.client_metadata().end()) return "";
  return std::string(it->second.data(), it->second.size());
}

void AddHit(v1::SearchResponse* response, const std::string& id, const std::string& title,
            const std::string& uri, const std::string& snippet, const std::string& collection) {
  v1::SearchHit* hit = response->add_hits();
  hit->set_document_id(id);
  hit->set_chunk_id(id + "-c0");
  hit->set_collection(collection);
  hit->set_source("gdrive");
  hit->set_title(title);
  hit->set_uri(uri);
  hit->set_snippet(snippet);
  hit->mutable_scores()->set_fused(0.5);
}

}  // namespace

grpc::Status FakeRetrievalService::Search(grpc::ServerContext* context, const v1::SearchRequest* request,
                                          v1::SearchResponse* response) {
  const std::string auth = Authorization(*context);
  {
    absl::MutexLock lock(&mu_);
    authorizations_.push_back(auth);
    searches_.push_back(*request);
  }
  if (auth.rfind("Bearer tsk_", 0) != 0) return grpc::Status(grpc::UNAUTHENTICATED, "missing or bad API key");
  if (request->collections().empty()) return grpc::Status(grpc::INVALID_ARGUMENT, "no collections");
  const std::string& collection = request->collections(0);
  if (auth == "Bearer tsk_ann") {
    AddHit(response, "doc-fin", "Q3 finance memo", "https://drive.example.com/fin",
           "Revenue grew 12% in Q3.", collection);
  } else if (auth == "Bearer tsk_bob") {
    AddHit(response, "doc-road", "Roadmap 2026", "https://drive.example.com/road",
           "We ship the agent builder in March.", collection);
  }
  if (request->top_k() > 0 && response->hits_size() > request->top_k()) {
    response->mutable_hits()->DeleteSubrange(request->top_k(), response->hits_size() - request->top_k());
  }
  return grpc::Status::OK;
}

grpc::Status FakeRetrievalService::ListCollections(grpc::ServerContext* context,
                                                   const v1::ListCollectionsRequest* request,
                                                   v1::ListCollectionsResponse* response) {
  (void)request;
  const std::string auth = Authorization(*context);
  {
    absl::MutexLock lock(&mu_);
    authorizations_.push_back(auth);
  }
  if (auth.rfind("Bearer tsk_", 0) != 0) return grpc::Status(grpc::UNAUTHENTICATED, "missing or bad API key");
  response->add_collections()->set_name("default");
  return grpc::Status::OK;
}

std::vector<std::string> FakeRetrievalService::authorizations() const {
  absl::MutexLock lock(&mu_);
  return authorizations_;
}

std::vector<v1::SearchRequest> FakeRetrievalService::searches() const {
  absl::MutexLock lock(&mu_);
  return searches_;
}

FakeRetrieval::FakeRetrieval() {
  grpc::ServerBuilder builder;
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
  channel_ = server_->InProcessChannel(grpc::ChannelArguments());
}

FakeRetrieval::~FakeRetrieval() { server_->Shutdown(); }

}  // namespace tessera::mcp::testing
