// RetrievalSink: the DocumentSink that writes a connector's documents into a
// retrieval collection through RetrievalService's gRPC stub.
//
// Upsert maps each ConnectorDocument to a tessera.v1.Document (source,
// external_id = the connector's id, title, uri, mime_type, modified_time,
// sections, acl principal strings unchanged, metadata clamped to the proto's
// limits) and sends IngestDocuments in batches (by count and by bytes). It
// returns only once every batch's RPC succeeded: that is the acknowledgement
// the SyncRunner waits for before committing a checkpoint.
//
// Per-document outcomes: a document retrieval reports FAILED with a
// retryable code (RESOURCE_EXHAUSTED, UNAVAILABLE, ABORTED, DEADLINE_EXCEEDED)
// fails the whole Upsert, so the runner replays the page later. Any other
// failure (a bad ACL string, no content, too large) is permanent: it is
// recorded and returned by TakeFailures(), and the Upsert succeeds, so one bad
// file does not block the feed forever.
//
// ListIds: RetrievalService has no RPC that lists a collection's documents by
// source, so the sink keeps a ledger (SQLite, a database of its own) of the
// external ids it has written and not deleted, keyed by (connector, collection,
// source). The ledger is updated after each acknowledged RPC; a crash between
// the RPC and the ledger write is repaired by the runner's replay of the page.
// Documents written to the collection by other means are not in the ledger
// and are never pruned.
//
// Thread-compatible: the SyncRunner calls one method at a time.
#ifndef TESSERA_SERVICES_SYNC_RETRIEVAL_SINK_H_
#define TESSERA_SERVICES_SYNC_RETRIEVAL_SINK_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/sqlite.h"
#include "connectors/connector.h"
#include "grpcpp/client_context.h"
#include "tessera/v1/retrieval.grpc.pb.h"

namespace tessera::sync {

// The retrieval Document for a connector document of `source`.
[[nodiscard]] v1::Document ToProtoDocument(absl::string_view source,
                                           const connectors::ConnectorDocument &doc);

class RetrievalSink final : public connectors::DocumentSink {
 public:
  struct Options {
    std::string connector_id;  // ledger key; required
    std::string collection;    // required
    // Called on every RPC's context: adds "authorization: Bearer <admin key>"
    // (or, in-process, the caller metadata). Required.
    std::function<void(grpc::ClientContext *)> prepare_context;
    absl::Duration rpc_timeout = absl::Minutes(5);
    int batch_documents = 32;        // 1..256 (the proto's limit)
    size_t batch_bytes = 16u << 20;  // a batch is cut before it grows past this
    int delete_batch = 1000;         // 1..1000 (the proto's limit)
  };

  // `stub` is owned; `ledger_db` is not (it must outlive the sink and should
  // be a database of its own: the sink migrates it). INVALID_ARGUMENT for bad
  // options; errors of SqliteDatabase::Migrate.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<RetrievalSink>> Create(
      std::unique_ptr<v1::RetrievalService::StubInterface> stub, SqliteDatabase *ledger_db,
      Options options);

  absl::Status Upsert(absl::string_view source,
                      const std::vector<connectors::ConnectorDocument> &documents) override;
  absl::Status Delete(absl::string_view source, const std::vector<std::string> &ids) override;
  absl::StatusOr<std::vector<std::string>> ListIds(absl::string_view source) override;

  // The permanent per-document failures since the last call, oldest first.
  std::vector<connectors::DocumentFailure> TakeFailures();

 private:
  RetrievalSink(std::unique_ptr<v1::RetrievalService::StubInterface> stub, SqliteDatabase *db,
                Options options)
      : stub_(std::move(stub)), db_(db), options_(std::move(options)) {}
  absl::Status SendBatch(absl::string_view source,
                         const std::vector<const connectors::ConnectorDocument *> &docs);
  absl::Status LedgerPut(absl::string_view source, const std::vector<std::string> &ids);
  absl::Status LedgerDelete(absl::string_view source, const std::vector<std::string> &ids);
  std::unique_ptr<grpc::ClientContext> NewContext() const;

  std::unique_ptr<v1::RetrievalService::StubInterface> stub_;
  SqliteDatabase *const db_;
  const Options options_;
  std::vector<connectors::DocumentFailure> failures_;
};

}  // namespace tessera::sync

#endif  // TESSERA_SERVICES_SYNC_RETRIEVAL_SINK_H_
