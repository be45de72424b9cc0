// RetrievalService with the real engine behind it: a collection whose embedding model is a BERT
// served by EngineService (engine::Engine on the CPU backend, seeded random weights with the
// real bge vocabulary), so ingest and search embed through the gateway's in-process channel.
// The weights are random, so relevance means nothing; identity does: a passage searched with its
// own text (vector search only) must come back first, with cosine close to 1.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engine/engine.h"
#include "engine/model/gguf.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "services/engine/engine_service.h"
#include "services/gateway/api_key_store.h"
#include "services/gateway/server.h"
#include "tests/integration/retrieval_with_engine.h"
#include "services/retrieval/retrieval_service.h"
#include "tessera/v1/engine.grpc.pb.h"
#include "tessera/v1/retrieval.grpc.pb.h"
#include "tests/engine/bert_test_model.h"

namespace tessera {
namespace {

TEST(RetrievalRealEngineTest, IngestAndSearchEmbedThroughTheEngine) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  const std::string dir = absl::StrCat(tmp ? tmp : "/tmp", "/retrieval_real_engine");
  auto vocab = engine::GgufFile::Open("engine/tokenizer/testdata/ggml-vocab-bert-bge.gguf");
  ASSERT_TRUE(vocab.ok()) << vocab.status();
  engine::testing::BertTestModelOptions mo;
  mo.dim = 64;
  mo.num_layers = 2;
  mo.num_heads = 4;
  mo.ffn_dim = 128;
  mo.max_positions = 128;
  mo.matrix_std = 0.05f;
  auto bytes = engine::testing::MakeBertGguf(**vocab, mo);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  std::filesystem::create_directories(dir);
  const std::string model_path = dir + "/bert-tiny.gguf";
  std::ofstream(model_path, std::ios::binary) << *bytes;

  engine::EngineOptions eo;
  eo.device = "cpu";
  eo.num_threads = 2;
  eo.models.push_back({.id = "bert-tiny", .path = model_path});
  auto e = engine::Engine::Create(eo);
  ASSERT_TRUE(e.ok()) << e.status();
  engine_service::EngineServiceImpl engine(std::move(*e));

  auto started = testing::StartRetrievalWithEngine(dir, &engine);
  ASSERT_TRUE(started.ok()) << started.status();
  auto& server = started->server;
  const std::string key = started->admin_key;
  auto channel = grpc::CreateChannel(server->address(), grpc::InsecureChannelCredentials());
  auto stub = v1::RetrievalService::NewStub(channel);
  auto ctx = [&] {
    auto c = std::make_unique<grpc::ClientContext>();
    c->AddMetadata("authorization", "Bearer " + key);
    c->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    return c;
  };

  // The engine lists the model with its dimensions, as a collection needs.
  auto engine_stub = v1::EngineService::NewStub(channel);
  v1::ListModelsResponse models;
  ASSERT_TRUE(engine_stub->ListModels(ctx().get(), v1::ListModelsRequest(), &models).ok());
  ASSERT_EQ(models.models_size(), 1);
  EXPECT_EQ(models.models(0).embedding_dimensions(), 64);

  v1::CreateCollectionRequest cc;
  cc.mutable_collection()->set_name("kb");
  cc.mutable_collection()->set_embedding_model("bert-tiny");
  cc.mutable_collection()->set_embedding_dimensions(64);
  v1::CreateCollectionResponse cr;
  grpc::Status created = stub->CreateCollection(ctx().get(), cc, &cr);
  ASSERT_TRUE(created.ok()) << created.error_message();

  const std::vector<std::string> texts = {
      "The travel policy covers flights booked two weeks ahead.",
      "Expense reports are due on the last Friday of each month.",
      "The Q3 budget for engineering grew by twelve percent.",
      "Security training is mandatory for every new employee.",
      "Parking passes are issued by the facilities team.",
  };
  v1::IngestDocumentsRequest ing;
  ing.set_collection("kb");
  for (size_t i = 0; i < texts.size(); ++i) {
    v1::Document* d = ing.add_documents();
    d->set_source("t");
    d->set_external_id(absl::StrCat("d", i));
    d->set_title(absl::StrCat("doc ", i));
    d->set_text(texts[i]);
    d->add_acl("anyone");
  }
  v1::IngestDocumentsResponse ir;
  grpc::Status ingested = stub->IngestDocuments(ctx().get(), ing, &ir);
  ASSERT_TRUE(ingested.ok()) << ingested.error_message();
  for (const auto& r : ir.results()) {
    ASSERT_EQ(r.status(), v1::INGEST_STATUS_CREATED) << r.error().message();
  }

  for (size_t i = 0; i < texts.size(); ++i) {
    v1::SearchRequest sr;
    sr.add_collections("kb");
    sr.set_query(texts[i]);
    sr.set_top_k(3);
    sr.mutable_hybrid()->set_bm25_weight(0);  // vectors only
    v1::SearchResponse resp;
    grpc::Status s = stub->Search(ctx().get(), sr, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
    ASSERT_GE(resp.hits_size(), 1);
    EXPECT_EQ(resp.hits(0).external_id(), absl::StrCat("d", i));
    // (Chunks carry the document's title with the text, so the match is close to, not exactly, 1.)
    EXPECT_GT(resp.hits(0).scores().vector(), 0.999);
    if (resp.hits_size() > 1) {
      EXPECT_LT(resp.hits(1).scores().vector(), resp.hits(0).scores().vector());
    }
  }
  server->Shutdown(absl::Seconds(5));
}

}  // namespace
}  // namespace tessera
