// Sections 2 and 3 of //bench:retrieval, against the real `tessera` server
// (services/gateway:tessera, the authenticating gateway in front of
// RetrievalServiceImpl) run as a child process on 127.0.0.1:
//
//   2. Search latency (p50 / p99) through gRPC with a user key, against the
//      same searches run in this process directly on the store and index
//      (BM25 + AllowedChunkIds + IdSetFilter + embed + vector search + fusion
//      + GetChunks), which is what DoSearch does minus gRPC and the gateway.
//   3. Ingest throughput of IngestDocuments (chunk, embed, SQLite + FTS5 +
//      FAISS, fsync'd WAL per document) against a raw SQLite FTS5 INSERT loop
//      of the same texts in one transaction.
//
// The gateway's in-process pieces (TesseraServer, ApiKeyStore) are not
// visible to //bench, so the server runs as the shipped binary; keys come
// from `tessera admin create-key`.
#ifndef TESSERA_BENCH_SERVICE_BENCH_H_
#define TESSERA_BENCH_SERVICE_BENCH_H_

#include <string>

namespace tessera::bench {

struct ServiceBenchOptions {
  std::string tessera_bin;        // path to the tessera binary
  std::string index_factory = "Flat";  // the search collection's FAISS factory
  int corpus_docs = 100000;       // search corpus (one ~60-word chunk each)
  int ingest_docs = 2000;         // measured through IngestDocuments
  int raw_per_txn_docs = 500;     // raw FTS5 with one fsync'd transaction per document
  int batch = 500;                // documents per IngestDocuments call
  int words = 60;                 // words per document
  int searches = 500;             // Search calls (and as many in-process searches)
  int groups = 8;                 // ACL groups; the searching user is in 2 of them
  bool keep = false;              // keep the scratch directory
};

struct ServiceBenchResult {
  double grpc_p50_ms = -1;
  double grpc_p99_ms = -1;
  double inproc_p50_ms = -1;
  double inproc_p99_ms = -1;
  double overhead_p50_ms = -1;  // per call: client-side minus SearchTiming.total
  double ingest_docs_per_s = -1;
  double raw_docs_per_s = -1;
  std::string markdown;
};

ServiceBenchResult RunServiceBench(const ServiceBenchOptions& options);

}  // namespace tessera::bench

#endif  // TESSERA_BENCH_SERVICE_BENCH_H_
