// RetrievalService: collections, crash-safe ingestion, and permission-exact
// hybrid search over SQLite FTS5 (BM25) and FAISS (vectors).
//
// SQLite (store/) is the source of truth: an ingest is acknowledged only once
// its transaction committed, so it survives kill -9. FAISS indexes (index/)
// are derived: kept in memory, saved under DATA_DIR/index/ in the background
// and at shutdown, and rebuilt from the embeddings in SQLite whenever a saved
// index does not match the store (after a crash, say).
//
// Permissions: every read acts as a principal (the caller, or, for admin
// keys only, the principal named in the request) and the ACL filter is
// applied inside both retrievers: a SQL join for BM25, a FAISS IDSelector for
// vectors. A principal never sees a chunk it may not, and gets k results
// whenever k permitted chunks match.
//
// Writes (collections, ingest, delete) need an admin key. Thread-safe.
#ifndef TESSERA_SERVICES_RETRIEVAL_RETRIEVAL_SERVICE_H_
#define TESSERA_SERVICES_RETRIEVAL_RETRIEVAL_SERVICE_H_

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "grpcpp/channel.h"
#include "services/retrieval/index/embedder.h"
#include "services/retrieval/index/faiss_vector_index.h"
#include "services/retrieval/store/document_store.h"
#include "tessera/v1/retrieval.grpc.pb.h"

namespace tessera::retrieval {

// The built-in embedder's model name (see index/lexical_hash_embedder.h).
inline constexpr char kLexicalModel[] = "lexical-hash-384";

class RetrievalServiceImpl final : public v1::RetrievalService::Service {
 public:
  struct Options {
    std::string data_dir;  // retrieval.db and index/ live here; created if missing
    // The engine, for collections whose embedding model is not the built-in
    // lexical one, and for reranking. Called lazily; may return null.
    std::function<std::shared_ptr<grpc::Channel>()> engine_channel;
    // How often dirty indexes are saved in the background. 0 = only at shutdown.
    absl::Duration index_save_interval = absl::Seconds(30);
    // How often the background thread trains IVF indexes that have enough
    // vectors and compacts indexes with many removed vectors. 0 = never
    // (then IVF indexes keep serving from their exact side index).
    absl::Duration maintenance_interval = absl::Seconds(5);
    // Largest document accepted by IngestDocuments (title + text + sections).
    size_t max_document_bytes = 256u << 20;
  };

  // Opens the store, loads or rebuilds every collection's index.
  static absl::StatusOr<std::unique_ptr<RetrievalServiceImpl>> Create(Options options);
  ~RetrievalServiceImpl() override;

  // Saves every dirty index now (also done in the background and at destruction).
  absl::Status SaveIndexes();
  // Rebuilds one collection's index from SQLite (`tessera index rebuild`).
  absl::Status RebuildIndex(const std::string& collection);
  // Names of all collections, sorted.
  std::vector<std::string> CollectionNames();
  // One line about a collection's vector index (type, counts, trained state).
  absl::StatusOr<std::string> DescribeIndex(const std::string& collection);

  grpc::Status CreateCollection(grpc::ServerContext* ctx, const v1::CreateCollectionRequest* req,
                                v1::CreateCollectionResponse* resp) override;
  grpc::Status GetCollection(grpc::ServerContext* ctx, const v1::GetCollectionRequest* req,
                             v1::GetCollectionResponse* resp) override;
  grpc::Status ListCollections(grpc::ServerContext* ctx, const v1::ListCollectionsRequest* req,
                               v1::ListCollectionsResponse* resp) override;
  grpc::Status DeleteCollection(grpc::ServerContext* ctx, const v1::DeleteCollectionRequest* req,
                                v1::DeleteCollectionResponse* resp) override;
  grpc::Status IngestDocuments(grpc::ServerContext* ctx, const v1::IngestDocumentsRequest* req,
                               v1::IngestDocumentsResponse* resp) override;
  grpc::Status DeleteDocuments(grpc::ServerContext* ctx, const v1::DeleteDocumentsRequest* req,
                               v1::DeleteDocumentsResponse* resp) override;
  grpc::Status Search(grpc::ServerContext* ctx, const v1::SearchRequest* req,
                      v1::SearchResponse* resp) override;
  grpc::Status GetDocument(grpc::ServerContext* ctx, const v1::GetDocumentRequest* req,
                           v1::GetDocumentResponse* resp) override;

 private:
  // One collection's derived state.
  struct Live {
    CollectionRecord record;
    std::unique_ptr<FaissVectorIndex> index;
    std::unique_ptr<Embedder> embedder;
    absl::Mutex write_mu;  // serialises ingest/delete of this collection
    std::atomic<bool> dirty{false};
  };

  explicit RetrievalServiceImpl(Options options) : options_(std::move(options)) {}
  absl::Status Init();
  absl::StatusOr<std::unique_ptr<Embedder>> MakeEmbedder(const CollectionRecord& c);
  absl::StatusOr<std::unique_ptr<FaissVectorIndex>> MakeIndex(const CollectionRecord& c);
  FaissVectorIndex::Options IndexOptions(const CollectionRecord& c) const;
  absl::Status LoadOrRebuild(Live* live);
  absl::StatusOr<std::shared_ptr<Live>> Find(const std::string& name);
  std::string IndexPath(const std::string& collection) const;
  absl::Status SaveLocked(Live* live);
  void Maintain();  // trains and compacts indexes that need it

  absl::Status DoIngest(const v1::IngestDocumentsRequest& req, v1::IngestDocumentsResponse* resp);
  absl::Status DoSearch(grpc::ServerContext* ctx, const v1::SearchRequest& req,
                        v1::SearchResponse* resp);

  // The ids a principal may see, per (collections, principals, filters):
  // the most expensive step of a search, so cached until the next write.
  absl::StatusOr<std::shared_ptr<const IdSetFilter>> AllowedIds(const AccessFilter& filter);
  void BumpGeneration() { generation_.fetch_add(1); }

  const Options options_;
  std::unique_ptr<SqliteDocumentStore> store_;
  std::atomic<uint64_t> generation_{0};  // bumped after every write
  struct CachedIds {
    uint64_t generation;
    std::shared_ptr<const IdSetFilter> ids;
  };
  absl::Mutex cache_mu_;
  std::map<std::string, CachedIds> allowed_cache_ ABSL_GUARDED_BY(cache_mu_);
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<Live>> live_ ABSL_GUARDED_BY(mu_);
  absl::Notification stop_;
  std::thread background_;  // maintenance and saving
};

}  // namespace tessera::retrieval

#endif  // TESSERA_SERVICES_RETRIEVAL_RETRIEVAL_SERVICE_H_
