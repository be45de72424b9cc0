#include "services/retrieval/engine_embedder.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "common/status.h"

namespace tessera::retrieval {

EngineEmbedder::EngineEmbedder(std::shared_ptr<grpc::Channel> engine, Options options)
    : stub_(v1::EngineService::NewStub(engine)), options_(std::move(options)) {}

absl::StatusOr<std::vector<std::vector<float>>> EngineEmbedder::Embed(
    const std::vector<std::string>& texts) {
  std::vector<std::vector<float>> out;
  out.reserve(texts.size());
  const size_t batch = static_cast<size_t>(std::max(1, options_.batch_size));
  for (size_t start = 0; start < texts.size(); start += batch) {
    v1::EmbedRequest req;
    req.set_model(options_.model);
    req.set_normalize(true);
    for (size_t i = start; i < std::min(texts.size(), start + batch); ++i) req.add_inputs(texts[i]);
    v1::EmbedResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + options_.timeout));
    absl::Status s = FromGrpcStatus(stub_->Embed(&ctx, req, &resp));
    RETURN_IF_ERROR(Annotate(s, absl::StrCat("embedding with model '", options_.model, "'")));
    if (resp.embeddings_size() != req.inputs_size()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "engine returned ", resp.embeddings_size(), " embeddings for ", req.inputs_size(), " inputs"));
    }
    for (const auto& e : resp.embeddings()) {
      if (e.values_size() != options_.dimensions) {
        return absl::FailedPreconditionError(absl::StrCat("model '", options_.model, "' returned ",
                                                          e.values_size(), " dimensions, expected ",
                                                          options_.dimensions));
      }
      out.emplace_back(e.values().begin(), e.values().end());
    }
  }
  return out;
}

}  // namespace tessera::retrieval
