// RetrievalService with an engine-served embedding model and reranker: the
// embeddings and rerank scores come through EngineService's stub on the
// server's in-process channel. A scripted EngineService stands in for the
// engine milestone; what is under test is retrieval's use of the contract.
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "services/gateway/api_key_store.h"
#include "services/gateway/server.h"
#include "tests/integration/retrieval_with_engine.h"
#include "services/retrieval/retrieval_service.h"
#include "tessera/v1/engine.grpc.pb.h"
#include "tessera/v1/retrieval.grpc.pb.h"

namespace tessera {
namespace {

// Embeds a text as normalised letter counts of a..h (8 dims); reranks by how
// often the query's first word occurs. Counts its calls.
class ScriptedEngine final : public v1::EngineService::Service {
 public:
  grpc::Status Embed(grpc::ServerContext*, const v1::EmbedRequest* req,
                     v1::EmbedResponse* resp) override {
    ++embed_calls;
    if (req->model() != "letters-8") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "no model " + req->model());
    }
    for (const std::string& in : req->inputs()) {
      float v[8] = {0};
      for (char c : in) {
        if (c >= 'a' && c <= 'h') v[c - 'a'] += 1;
      }
      float n = 0;
      for (float x : v) n += x * x;
      n = std::sqrt(n);
      auto* e = resp->add_embeddings();
      for (float x : v) e->add_values(n > 0 ? x / n : 0);
    }
    resp->set_dimensions(8);
    return grpc::Status::OK;
  }
  grpc::Status Rerank(grpc::ServerContext*, const v1::RerankRequest* req,
                      v1::RerankResponse* resp) override {
    ++rerank_calls;
    std::string word = req->query().substr(0, req->query().find(' '));
    for (int i = 0; i < req->documents_size(); ++i) {
      int count = 0;
      for (size_t p = req->documents(i).find(word); p != std::string::npos;
           p = req->documents(i).find(word, p + 1)) {
        ++count;
      }
      auto* r = resp->add_results();
      r->set_index(i);
      r->set_relevance_score(count);
    }
    return grpc::Status::OK;
  }
  std::atomic<int> embed_calls{0};
  std::atomic<int> rerank_calls{0};
};

TEST(RetrievalEngineTest, EmbeddingsAndRerankComeFromTheEngine) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = absl::StrCat(tmp ? tmp : "/tmp", "/retrieval_engine");
  ScriptedEngine engine;
  auto started = testing::StartRetrievalWithEngine(dir, &engine);
  ASSERT_TRUE(started.ok()) << started.status();
  auto& server = started->server;
  const std::string key = started->admin_key;
  auto stub = v1::RetrievalService::NewStub(
      grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials()));
  auto ctx = [&] {
    auto c = std::make_unique<grpc::ClientContext>();
    c->AddMetadata("authorization", "Bearer " + key);
    c->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(20)));
    return c;
  };

  v1::CreateCollectionRequest cc;
  cc.mutable_collection()->set_name("eng");
  cc.mutable_collection()->set_embedding_model("letters-8");
  v1::CreateCollectionResponse cr;
  // An engine model needs its dimensions.
  EXPECT_EQ(stub->CreateCollection(ctx().get(), cc, &cr).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  cc.mutable_collection()->set_embedding_dimensions(8);
  ASSERT_TRUE(stub->CreateCollection(ctx().get(), cc, &cr).ok());

  v1::IngestDocumentsRequest ing;
  ing.set_collection("eng");
  const char* texts[] = {"abba abba abba cafe", "hedge fed bad", "cab cab", "deaf bead dab abba"};
  for (int i = 0; i < 4; ++i) {
    v1::Document* d = ing.add_documents();
    d->set_source("t");
    d->set_external_id(absl::StrCat("d", i));
    d->set_title(absl::StrCat("doc ", i));
    d->set_text(texts[i]);
    d->add_acl("anyone");
  }
  v1::IngestDocumentsResponse ir;
  ASSERT_TRUE(stub->IngestDocuments(ctx().get(), ing, &ir).ok());
  for (const auto& r : ir.results()) ASSERT_EQ(r.status(), v1::INGEST_STATUS_CREATED) << r.error().message();
  EXPECT_GE(engine.embed_calls.load(), 1);

  v1::SearchRequest sr;
  sr.add_collections("eng");
  sr.set_query("abba please");
  sr.set_top_k(4);
  sr.mutable_hybrid()->set_rerank(true);
  sr.mutable_hybrid()->set_rerank_model("count");
  v1::SearchResponse resp;
  grpc::Status s = stub->Search(ctx().get(), sr, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(engine.rerank_calls.load(), 1);
  ASSERT_EQ(resp.hits_size(), 4);
  // Reranked by occurrences of "abba": d0 (3), d3 (1), then the rest.
  EXPECT_EQ(resp.hits(0).external_id(), "d0");
  EXPECT_DOUBLE_EQ(resp.hits(0).scores().rerank(), 3);
  EXPECT_EQ(resp.hits(1).external_id(), "d3");
  EXPECT_TRUE(resp.hits(0).scores().has_vector());
  for (int i = 1; i < resp.hits_size(); ++i) {
    EXPECT_GE(resp.hits(i - 1).scores().rerank(), resp.hits(i).scores().rerank());
  }

  // An engine error surfaces on ingest as a per-document failure, naming the model.
  v1::CreateCollectionRequest bad;
  bad.mutable_collection()->set_name("unknown-model");
  bad.mutable_collection()->set_embedding_model("nope");
  bad.mutable_collection()->set_embedding_dimensions(8);
  ASSERT_TRUE(stub->CreateCollection(ctx().get(), bad, &cr).ok());
  v1::IngestDocumentsRequest ing2 = ing;
  ing2.set_collection("unknown-model");
  v1::IngestDocumentsResponse ir2;
  ASSERT_TRUE(stub->IngestDocuments(ctx().get(), ing2, &ir2).ok());
  EXPECT_EQ(ir2.results(0).status(), v1::INGEST_STATUS_FAILED);
  EXPECT_TRUE(absl::StrContains(ir2.results(0).error().message(), "nope")) << ir2.results(0).error().message();
}

}  // namespace
}  // namespace tessera
