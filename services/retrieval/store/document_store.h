// The retrieval service's source of truth: collections, documents, their ACLs and metadata, chunks
// with their embeddings, and a BM25 (FTS5) index over the chunks, in one SQLite database.
//
// FAISS indexes are derived from this store: chunk ids are the FAISS vector ids (never reused, so
// a stale vector can never point at another chunk), every write returns the chunk ids it added
// and removed, and ForEachEmbedding rebuilds an index from scratch.
//
// Permissions: a document's ACL is a set of principal strings ("user:ann@x.com",
// "group:fin@x.com", "domain:x.com", "anyone"). Every read that takes an AccessFilter or
// principals returns only chunks of documents whose ACL intersects the given principals; the
// check is part of the SQL, so limits (k) count permitted chunks only. The store does not expand
// principals: pass the caller's full expansion (see ExpandPrincipal), including "anyone". Principal
// strings are compared after trimming and ASCII lower-casing. An empty ACL means no one.
//
// GetChunks is the one read without a permission check: it resolves ids the caller obtained from
// a filtered search (Bm25Search, or vector search restricted to AllowedChunkIds).
//
// Errors common to every method: storage errors as mapped by SqliteDatabase (UNAVAILABLE when the
// database is locked by another process, DATA_LOSS when corrupt, RESOURCE_EXHAUSTED when full,
// INTERNAL otherwise).
#ifndef TESSERA_SERVICES_RETRIEVAL_STORE_DOCUMENT_STORE_H_
#define TESSERA_SERVICES_RETRIEVAL_STORE_DOCUMENT_STORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/sqlite.h"
#include "services/retrieval/store/chunker.h"

namespace tessera::retrieval {

// A collection's configuration and counts.
struct CollectionRecord {
  std::string name;  // 1..256 bytes; the service namespaces and validates it
  std::string description;
  std::string embedding_model;  // required
  int dimensions = 0;           // embedding size, in [1, 65536]
  ChunkingOptions chunking;     // validated by ValidateChunkingOptions
  bool contextualize = true;    // title and heading prepended to the embedded text
  // The vector index, opaque to the store (the service interprets them).
  std::string index_factory;
  std::string index_metric;
  std::string index_search_params;
  // Output only.
  absl::Time create_time = absl::UnixEpoch();
  absl::Time update_time = absl::UnixEpoch();  // last document write or delete
  int64_t document_count = 0;
  int64_t chunk_count = 0;
};

// A document as written by UpsertDocument (its content arrives as chunks).
struct DocumentInput {
  std::string collection;
  std::string source;       // required, e.g. "gdrive"
  std::string external_id;  // required; unique within (collection, source)
  std::string title;
  std::string uri;
  std::string mime_type;
  std::optional<int64_t> modified_time_us;      // unix microseconds; nullopt when unknown
  std::string content_hash;                     // required; see ContentHash
  std::vector<std::string> acl;                 // principal strings; order and duplicates ignored
  std::map<std::string, std::string> metadata;  // at most 64 keys (<= 128 B), values <= 4 KiB
};

enum class UpsertStatus {
  kCreated,          // a new document
  kUpdated,          // content changed: chunks replaced
  kMetadataUpdated,  // same content; ACL, title, uri, mime type, modified time or metadata changed
  kUnchanged,        // nothing written
};

struct UpsertResult {
  int64_t doc_id = 0;
  UpsertStatus status = UpsertStatus::kUnchanged;
  bool acl_changed = false;              // an existing document's ACL changed (false for kCreated)
  int chunk_count = 0;                   // chunks the document has now
  std::vector<int64_t> added_chunk_ids;  // add these vectors to the index
  std::vector<int64_t> removed_chunk_ids;  // remove these from the index
};

// One document of a batch write: what UpsertDocument takes.
struct UpsertInput {
  DocumentInput doc;
  std::vector<ChunkText> chunks;
  std::vector<std::vector<float>> embeddings;
};

// What UpsertDocument would do with a document, so the caller can skip chunking and embedding.
enum class UpsertPlan {
  kUnchanged,     // nothing to write
  kMetadataOnly,  // content unchanged: call UpsertDocument with no chunks and no embeddings
  kNeedsChunks,   // new or changed content: chunk, embed, then call UpsertDocument
};

struct DeleteResult {
  int deleted_count = 0;                   // documents that existed and were deleted
  std::vector<int64_t> removed_chunk_ids;  // sorted; remove these from the index
};

// Which chunks a read may return. All set conditions must hold.
struct AccessFilter {
  std::vector<std::string> collections;       // required, at least one
  std::vector<std::string> principals;        // the caller's expansion; empty sees nothing
  std::vector<std::string> sources;           // empty: any
  std::optional<int64_t> modified_after_us;   // modified_time >= this (unix micros)
  std::optional<int64_t> modified_before_us;  // modified_time < this; either bound excludes
                                              // documents without a modified time
  std::vector<std::pair<std::string, std::string>> metadata_equals;  // key has exactly value
  std::vector<int64_t> document_ids;                                 // empty: any
};

struct Bm25Hit {
  int64_t chunk_id = 0;
  double bm25 = 0;  // higher is better (SQLite's bm25() negated)
};

// A chunk with what a search hit or citation needs of its document.
struct ChunkRecord {
  int64_t chunk_id = 0;
  int64_t doc_id = 0;
  std::string collection;
  std::string source;
  std::string external_id;
  std::string title;
  std::string uri;
  std::optional<int64_t> modified_time_us;
  std::map<std::string, std::string> metadata;
  int chunk_index = 0;
  int section_index = 0;
  std::string heading;
  std::string text;
  int token_count = 0;
};

struct StoredDocument {
  int64_t doc_id = 0;
  std::string collection;
  std::string source;
  std::string external_id;
  std::string title;
  std::string uri;
  std::string mime_type;
  std::optional<int64_t> modified_time_us;
  std::string content_hash;
  std::vector<std::string> acl;  // normalized, sorted
  std::map<std::string, std::string> metadata;
  absl::Time create_time = absl::UnixEpoch();
  absl::Time update_time = absl::UnixEpoch();
  std::vector<ChunkRecord> chunks;  // in chunk_index order
};

// The principal strings of a user: "user:<email>", "group:<g>" for each group, "domain:<part of
// the email after '@'>" and "anyone". An empty email (a service principal) gives only "anyone".
std::vector<std::string> ExpandPrincipal(absl::string_view user_email,
                                         const std::vector<std::string>& groups);

// The FTS5 expression Bm25Search runs for a user's query: its words (runs of letters and digits;
// everything else, FTS5 syntax included, separates them), each quoted, de-duplicated ignoring
// ASCII case, at most 64, joined with OR. Empty when the query has no words.
std::string SanitizeFtsQuery(absl::string_view query);

// The hex SHA-256 of a document's content (title and sections, each field length-prefixed, so
// moving text between fields changes the hash). Stable across versions and platforms.
std::string ContentHash(absl::string_view title, const std::vector<Section>& sections);

// The interface, so another database can stand in (see DESIGN.md, Storage).
class DocumentStore {
 public:
  virtual ~DocumentStore() = default;

  // Collections.
  // INVALID_ARGUMENT (bad name, model, dimensions or chunking), ALREADY_EXISTS.
  [[nodiscard]] virtual absl::StatusOr<CollectionRecord> CreateCollection(
      const CollectionRecord& collection) = 0;
  // With document and chunk counts (these scan the collection's index entries). NOT_FOUND.
  [[nodiscard]] virtual absl::StatusOr<CollectionRecord> GetCollection(absl::string_view name) = 0;
  // All collections with their counts, ordered by name.
  [[nodiscard]] virtual absl::StatusOr<std::vector<CollectionRecord>> ListCollections() = 0;
  // Deletes the collection with its documents, ACLs, metadata, chunks and FTS rows; returns the
  // removed chunk ids (sorted). NOT_FOUND.
  [[nodiscard]] virtual absl::StatusOr<std::vector<int64_t>> DeleteCollection(
      absl::string_view name) = 0;

  // Documents.
  // Writes one document in one transaction. `chunks` and `embeddings` must have the same length
  // and each embedding the collection's dimensions, finite values; they are used only when the
  // content is new or changed (content_hash differs), else ignored (pass none). Unchanged
  // content_hash, ACL and attributes (title, uri, mime type, modified time, metadata): kUnchanged,
  // nothing written. Same content_hash, anything else different: kMetadataUpdated, chunks and
  // their ids kept (re-indexed for BM25 if the title changed). Otherwise the old chunks and FTS
  // rows are replaced. New or changed content with no chunks leaves the document without chunks.
  // A failure writes nothing: the previous version stays intact. INVALID_ARGUMENT (missing
  // source/external_id/content_hash, bad ACL string, metadata over limits, chunk/embedding
  // mismatch), NOT_FOUND (collection).
  [[nodiscard]] virtual absl::StatusOr<UpsertResult> UpsertDocument(
      const DocumentInput& doc, const std::vector<ChunkText>& chunks,
      const std::vector<std::vector<float>>& embeddings) = 0;
  // Writes a batch of documents in ONE transaction (one fsync), each document
  // in its own savepoint: the per-document results are what UpsertDocument
  // would return, and a failed document writes nothing while the others
  // commit. The outer status fails only when the transaction itself cannot
  // begin or commit; then nothing of the batch was written.
  [[nodiscard]] virtual absl::StatusOr<std::vector<absl::StatusOr<UpsertResult>>> UpsertDocuments(
      const std::vector<UpsertInput>& batch) = 0;
  // What UpsertDocument would do now (a later write by someone else may change the answer).
  // Errors as UpsertDocument (chunks aside).
  [[nodiscard]] virtual absl::StatusOr<UpsertPlan> PrepareUpsert(const DocumentInput& doc) = 0;
  // Deletes documents of `collection` by id; ids of absent documents, or of documents of another
  // collection, are ignored. NOT_FOUND (collection).
  [[nodiscard]] virtual absl::StatusOr<DeleteResult> DeleteDocuments(
      absl::string_view collection, const std::vector<int64_t>& doc_ids) = 0;
  // Same, naming documents by source and external ids.
  [[nodiscard]] virtual absl::StatusOr<DeleteResult> DeleteDocumentsByExternalId(
      absl::string_view collection, absl::string_view source,
      const std::vector<std::string>& external_ids) = 0;
  // The document with its chunks, if the principals may see it. NOT_FOUND when it is absent, in
  // another collection, or not visible: the three are not told apart.
  [[nodiscard]] virtual absl::StatusOr<StoredDocument> GetDocument(
      absl::string_view collection, int64_t doc_id, const std::vector<std::string>& principals) = 0;

  // Search.
  // The best `k` permitted chunks for the query by BM25 (title weighted above heading above
  // text), best first, ties by chunk id. The query is reduced to its words, OR-ed; a query with
  // no words gives no hits (see SanitizeFtsQuery). BM25 statistics are over the whole database,
  // not per collection. INVALID_ARGUMENT (no collection, k outside [0, 100000], more than 30000
  // filter values), NOT_FOUND (a collection).
  [[nodiscard]] virtual absl::StatusOr<std::vector<Bm25Hit>> Bm25Search(absl::string_view query,
                                                                        const AccessFilter& filter,
                                                                        int k) = 0;
  // Every chunk id the filter permits, sorted ascending: the vector search's ID selector.
  // Errors as Bm25Search.
  [[nodiscard]] virtual absl::StatusOr<std::vector<int64_t>> AllowedChunkIds(
      const AccessFilter& filter) = 0;
  // The chunks with these ids, in the order given (duplicates once); absent ids are skipped.
  // No permission check (see the file comment).
  [[nodiscard]] virtual absl::StatusOr<std::vector<ChunkRecord>> GetChunks(
      const std::vector<int64_t>& chunk_ids) = 0;
  // Calls `fn` for each chunk of the collection in ascending id order with its embedding
  // (`dims` floats, valid only during the call). Stops at, and returns, the first non-OK status
  // from `fn`. `fn` must not call back into the store. NOT_FOUND (collection).
  [[nodiscard]] virtual absl::Status ForEachEmbedding(
      absl::string_view collection,
      absl::FunctionRef<absl::Status(int64_t chunk_id, const float* vector, int dims)> fn) = 0;
};

// DocumentStore over one SQLite database (WAL), schema through numbered migrations.
//
// Thread-safe: one connection behind a mutex, so calls are serialised (reads included). For
// parallel reads open more stores on the same file: WAL lets readers run beside one writer.
class SqliteDocumentStore final : public DocumentStore {
 public:
  struct Options {
    std::string path = ":memory:";  // a file, or ":memory:" for a private in-memory database
    Clock* clock = nullptr;         // not owned; nullptr means RealClock()
    SqliteDatabase::Options sqlite;
  };
  // Opens or creates the database and migrates it. NOT_FOUND / PERMISSION_DENIED (path),
  // FAILED_PRECONDITION (written by a newer version), DATA_LOSS (not a database).
  static absl::StatusOr<std::unique_ptr<SqliteDocumentStore>> Open(const Options& options);

  // The schema, for tests and tools.
  static const std::vector<SqliteMigration>& Migrations();

  absl::StatusOr<CollectionRecord> CreateCollection(const CollectionRecord& collection) override;
  absl::StatusOr<CollectionRecord> GetCollection(absl::string_view name) override;
  absl::StatusOr<std::vector<CollectionRecord>> ListCollections() override;
  absl::StatusOr<std::vector<int64_t>> DeleteCollection(absl::string_view name) override;
  absl::StatusOr<UpsertResult> UpsertDocument(
      const DocumentInput& doc, const std::vector<ChunkText>& chunks,
      const std::vector<std::vector<float>>& embeddings) override;
  absl::StatusOr<std::vector<absl::StatusOr<UpsertResult>>> UpsertDocuments(
      const std::vector<UpsertInput>& batch) override;
  absl::StatusOr<UpsertPlan> PrepareUpsert(const DocumentInput& doc) override;
  absl::StatusOr<DeleteResult> DeleteDocuments(absl::string_view collection,
                                               const std::vector<int64_t>& doc_ids) override;
  absl::StatusOr<DeleteResult> DeleteDocumentsByExternalId(
      absl::string_view collection, absl::string_view source,
      const std::vector<std::string>& external_ids) override;
  absl::StatusOr<StoredDocument> GetDocument(absl::string_view collection, int64_t doc_id,
                                             const std::vector<std::string>& principals) override;
  absl::StatusOr<std::vector<Bm25Hit>> Bm25Search(absl::string_view query,
                                                  const AccessFilter& filter, int k) override;
  absl::StatusOr<std::vector<int64_t>> AllowedChunkIds(const AccessFilter& filter) override;
  absl::StatusOr<std::vector<ChunkRecord>> GetChunks(
      const std::vector<int64_t>& chunk_ids) override;
  absl::Status ForEachEmbedding(
      absl::string_view collection,
      absl::FunctionRef<absl::Status(int64_t chunk_id, const float* vector, int dims)> fn) override;

 private:
  struct Existing;
  struct Prepared;
  SqliteDocumentStore(std::unique_ptr<SqliteDatabase> db, Clock* clock)
      : clock_(clock), db_(std::move(db)) {}

  absl::StatusOr<UpsertResult> UpsertLocked(const DocumentInput& doc,
                                            const std::vector<ChunkText>& chunks,
                                            const std::vector<std::vector<float>>& embeddings)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Prepared> PrepareLocked(const DocumentInput& doc)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<CollectionRecord> GetCollectionLocked(absl::string_view name,
                                                       bool with_counts = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckCollectionsLocked(const AccessFilter& filter)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes documents (ids known to exist) with their chunks and FTS rows; appends chunk ids.
  absl::Status DeleteDocumentsLocked(const std::vector<int64_t>& doc_ids,
                                     std::vector<int64_t>* removed_chunk_ids)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status TouchCollectionLocked(absl::string_view name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::vector<ChunkRecord>> ReadChunksLocked(absl::string_view where_sql,
                                                            const std::vector<int64_t>& params)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Clock* const clock_;
  absl::Mutex mu_;
  std::unique_ptr<SqliteDatabase> db_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::retrieval

#endif  // TESSERA_SERVICES_RETRIEVAL_STORE_DOCUMENT_STORE_H_
