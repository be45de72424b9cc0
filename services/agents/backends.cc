#include "services/agents/backends.h"

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "tessera/v1/engine.grpc.pb.h"
#include "tessera/v1/retrieval.grpc.pb.h"

namespace tessera::agents_service {

namespace v1 = ::tessera::v1;

absl::Status EngineChatModel::Generate(const v1::GenerateRequest& request, agents::Cancellation& cancel,
                                       const std::function<void(const v1::GenerateResponse&)>& on_event) {
  if (channel_ == nullptr) return absl::UnavailableError("no engine is configured");
  auto stub = v1::EngineService::NewStub(channel_);
  grpc::ClientContext ctx;
  agents::ScopedCancelCallback link(cancel, [&ctx] { ctx.TryCancel(); });
  auto reader = stub->Generate(&ctx, request);
  v1::GenerateResponse event;
  bool finished = false;
  while (reader->Read(&event)) {
    finished = event.has_finish();
    on_event(event);
    if (finished) break;
  }
  absl::Status s = FromGrpcStatus(reader->Finish());
  if (finished) return absl::OkStatus();
  if (cancel.cancelled()) return absl::CancelledError("the run was cancelled");
  if (s.ok()) return absl::UnavailableError("the engine ended the stream without a finish event");
  if (s.code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError(absl::StrCat(s.message(), " (the agent's model must be served by the engine; see "
                                            "`tessera models` or use model \"extractive\")"));
  }
  return s;
}

absl::StatusOr<std::vector<v1::SearchHit>> RetrievalKnowledgeSearcher::Search(const std::string& query, int top_k,
                                                                              agents::Cancellation& cancel,
                                                                              absl::Time deadline) {
  if (channel_ == nullptr) return absl::UnavailableError("no retrieval service is configured");
  auto stub = v1::RetrievalService::NewStub(channel_);
  v1::SearchRequest req;
  for (const auto& c : knowledge_.collections()) req.add_collections(c);
  req.set_query(query);
  req.set_top_k(top_k);
  if (knowledge_.has_filters()) *req.mutable_filters() = knowledge_.filters();
  if (knowledge_.has_hybrid()) *req.mutable_hybrid() = knowledge_.hybrid();
  req.set_include_text(true);
  grpc::ClientContext ctx;
  AttachCaller(principal_, &ctx);
  if (deadline != absl::InfiniteFuture()) ctx.set_deadline(absl::ToChronoTime(deadline));
  agents::ScopedCancelCallback link(cancel, [&ctx] { ctx.TryCancel(); });
  v1::SearchResponse resp;
  absl::Status s = FromGrpcStatus(stub->Search(&ctx, req, &resp));
  if (!s.ok()) return s;
  return std::vector<v1::SearchHit>(resp.hits().begin(), resp.hits().end());
}

}  // namespace tessera::agents_service
