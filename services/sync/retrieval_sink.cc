#include "services/sync/retrieval_sink.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "common/status.h"

namespace tessera::sync {
namespace {

// The proto's metadata limits (tessera.v1.Document.metadata).
constexpr size_t kMaxMetadataEntries = 64;
constexpr size_t kMaxMetadataKeyBytes = 128;
constexpr size_t kMaxMetadataValueBytes = 4096;

// Cuts `s` to at most `max` bytes without splitting a UTF-8 sequence.
std::string TruncateUtf8(absl::string_view s, size_t max) {
  if (s.size() <= max) return std::string(s);
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return std::string(s.substr(0, n));
}

bool Retryable(absl::StatusCode code) {
  return code == absl::StatusCode::kResourceExhausted || code == absl::StatusCode::kUnavailable ||
         code == absl::StatusCode::kAborted || code == absl::StatusCode::kDeadlineExceeded;
}

size_t ApproxBytes(const connectors::ConnectorDocument &d) {
  size_t n = d.id.size() + d.title.size() + d.uri.size() + d.mime_type.size() + 64;
  for (const auto &s : d.sections) n += s.heading.size() + s.text.size() + 16;
  for (const auto &a : d.acl) n += a.size() + 4;
  for (const auto &[k, v] : d.metadata) n += k.size() + v.size() + 8;
  return n;
}

const std::vector<SqliteMigration> &LedgerMigrations() {
  static const auto *m = new std::vector<SqliteMigration>{
      {1, "sync sink ledger",
       "CREATE TABLE sink_ledger ("
       "  connector_id TEXT NOT NULL, collection TEXT NOT NULL, source TEXT NOT NULL,"
       "  external_id TEXT NOT NULL,"
       "  PRIMARY KEY (connector_id, collection, source, external_id)) WITHOUT ROWID;"},
  };
  return *m;
}

}  // namespace

v1::Document ToProtoDocument(absl::string_view source, const connectors::ConnectorDocument &doc) {
  v1::Document out;
  out.set_source(std::string(source));
  out.set_external_id(doc.id);
  out.set_title(doc.title);
  out.set_uri(doc.uri);
  out.set_mime_type(doc.mime_type);
  if (doc.modified_time != absl::UnixEpoch()) {
    const int64_t us = absl::ToUnixMicros(doc.modified_time);
    int64_t secs = us / 1000000;
    int64_t rem = us % 1000000;
    if (rem < 0) {
      rem += 1000000;
      --secs;
    }
    out.mutable_modified_time()->set_seconds(secs);
    out.mutable_modified_time()->set_nanos(static_cast<int32_t>(rem * 1000));
  }
  for (const connectors::DocumentSection &s : doc.sections) {
    v1::Section *p = out.add_sections();
    p->set_heading(s.heading);
    p->set_text(s.text);
    p->set_page(s.page);
  }
  // Principal strings are the same on both sides (DESIGN.md): "user:<email>",
  // "group:<email>", "domain:<d>", "anyone". Retrieval normalises case.
  for (const std::string &a : doc.acl) out.add_acl(a);
  size_t entries = 0;
  for (const auto &[k, v] : doc.metadata) {
    if (entries == kMaxMetadataEntries) break;
    if (k.empty() || k.size() > kMaxMetadataKeyBytes) continue;
    (*out.mutable_metadata())[k] = TruncateUtf8(v, kMaxMetadataValueBytes);
    ++entries;
  }
  return out;
}

absl::StatusOr<std::unique_ptr<RetrievalSink>> RetrievalSink::Create(
    std::unique_ptr<v1::RetrievalService::StubInterface> stub, SqliteDatabase *ledger_db,
    Options options) {
  if (stub == nullptr) return absl::InvalidArgumentError("retrieval sink: stub is required");
  if (ledger_db == nullptr)
    return absl::InvalidArgumentError("retrieval sink: ledger_db is required");
  if (options.connector_id.empty()) {
    return absl::InvalidArgumentError("retrieval sink: connector_id is required");
  }
  if (options.collection.empty()) {
    return absl::InvalidArgumentError("retrieval sink: collection is required");
  }
  if (!options.prepare_context) {
    return absl::InvalidArgumentError("retrieval sink: prepare_context is required");
  }
  if (options.batch_documents < 1 || options.batch_documents > 256) {
    return absl::InvalidArgumentError("retrieval sink: batch_documents must be in [1, 256]");
  }
  if (options.delete_batch < 1 || options.delete_batch > 1000) {
    return absl::InvalidArgumentError("retrieval sink: delete_batch must be in [1, 1000]");
  }
  RETURN_IF_ERROR(Annotate(ledger_db->Migrate(LedgerMigrations()), "retrieval sink ledger"));
  return std::unique_ptr<RetrievalSink>(
      new RetrievalSink(std::move(stub), ledger_db, std::move(options)));
}

std::unique_ptr<grpc::ClientContext> RetrievalSink::NewContext() const {
  auto ctx = std::make_unique<grpc::ClientContext>();
  options_.prepare_context(ctx.get());
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + options_.rpc_timeout));
  return ctx;
}

absl::Status RetrievalSink::Upsert(absl::string_view source,
                                   const std::vector<connectors::ConnectorDocument> &documents) {
  std::vector<const connectors::ConnectorDocument *> batch;
  size_t bytes = 0;
  for (const connectors::ConnectorDocument &d : documents) {
    const size_t n = ApproxBytes(d);
    if (!batch.empty() && (static_cast<int>(batch.size()) == options_.batch_documents ||
                           bytes + n > options_.batch_bytes)) {
      RETURN_IF_ERROR(SendBatch(source, batch));
      batch.clear();
      bytes = 0;
    }
    batch.push_back(&d);
    bytes += n;
  }
  if (!batch.empty()) RETURN_IF_ERROR(SendBatch(source, batch));
  return absl::OkStatus();
}

absl::Status RetrievalSink::SendBatch(
    absl::string_view source, const std::vector<const connectors::ConnectorDocument *> &docs) {
  v1::IngestDocumentsRequest req;
  req.set_collection(options_.collection);
  for (const auto *d : docs) *req.add_documents() = ToProtoDocument(source, *d);
  v1::IngestDocumentsResponse resp;
  auto ctx = NewContext();
  RETURN_IF_ERROR(Annotate(FromGrpcStatus(stub_->IngestDocuments(ctx.get(), req, &resp)),
                           absl::StrCat("IngestDocuments into ", options_.collection)));
  if (resp.results_size() != req.documents_size()) {
    return absl::InternalError(absl::StrCat("IngestDocuments returned ", resp.results_size(),
                                            " results for ", req.documents_size(), " documents"));
  }
  std::vector<std::string> written;
  std::vector<connectors::DocumentFailure> failed;
  absl::Status retry;
  for (int i = 0; i < resp.results_size(); ++i) {
    const v1::IngestResult &r = resp.results(i);
    if (r.status() != v1::INGEST_STATUS_FAILED) {
      written.push_back(docs[i]->id);
      continue;
    }
    const absl::Status s(static_cast<absl::StatusCode>(r.error().code()), r.error().message());
    if (Retryable(s.code())) {
      if (retry.ok()) {
        retry = Annotate(s, absl::StrCat("ingesting ", docs[i]->id, " (", docs[i]->title, ")"));
      }
      continue;
    }
    failed.push_back({docs[i]->id, docs[i]->title, s});
  }
  // Record what was written even when the batch must be retried, so a crash
  // before the retry still lets pruning see these ids.
  RETURN_IF_ERROR(LedgerPut(source, written));
  RETURN_IF_ERROR(retry);
  for (auto &f : failed) failures_.push_back(std::move(f));
  return absl::OkStatus();
}

absl::Status RetrievalSink::Delete(absl::string_view source, const std::vector<std::string> &ids) {
  for (size_t i = 0; i < ids.size(); i += static_cast<size_t>(options_.delete_batch)) {
    const size_t end = std::min(ids.size(), i + static_cast<size_t>(options_.delete_batch));
    std::vector<std::string> part(ids.begin() + static_cast<std::ptrdiff_t>(i),
                                  ids.begin() + static_cast<std::ptrdiff_t>(end));
    v1::DeleteDocumentsRequest req;
    req.set_collection(options_.collection);
    req.mutable_source_documents()->set_source(std::string(source));
    for (const std::string &id : part) req.mutable_source_documents()->add_external_ids(id);
    v1::DeleteDocumentsResponse resp;
    auto ctx = NewContext();
    RETURN_IF_ERROR(Annotate(FromGrpcStatus(stub_->DeleteDocuments(ctx.get(), req, &resp)),
                             absl::StrCat("DeleteDocuments from ", options_.collection)));
    RETURN_IF_ERROR(LedgerDelete(source, part));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> RetrievalSink::ListIds(absl::string_view source) {
  ASSIGN_OR_RETURN(auto stmt,
                   db_->Prepare("SELECT external_id FROM sink_ledger WHERE connector_id = ? AND "
                                "collection = ? AND source = ? ORDER BY external_id"));
  RETURN_IF_ERROR(stmt.Bind(1, options_.connector_id));
  RETURN_IF_ERROR(stmt.Bind(2, options_.collection));
  RETURN_IF_ERROR(stmt.Bind(3, source));
  std::vector<std::string> ids;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    ids.push_back(stmt.ColumnText(0));
  }
  return ids;
}

absl::Status RetrievalSink::LedgerPut(absl::string_view source,
                                      const std::vector<std::string> &ids) {
  if (ids.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto tx, SqliteTransaction::Begin(db_));
  ASSIGN_OR_RETURN(auto stmt, db_->Prepare("INSERT OR IGNORE INTO sink_ledger (connector_id, "
                                           "collection, source, external_id) VALUES (?, ?, ?, ?)"));
  for (const std::string &id : ids) {
    RETURN_IF_ERROR(stmt.Bind(1, options_.connector_id));
    RETURN_IF_ERROR(stmt.Bind(2, options_.collection));
    RETURN_IF_ERROR(stmt.Bind(3, source));
    RETURN_IF_ERROR(stmt.Bind(4, id));
    RETURN_IF_ERROR(stmt.Run());
    RETURN_IF_ERROR(stmt.Reset());
  }
  return tx->Commit();
}

absl::Status RetrievalSink::LedgerDelete(absl::string_view source,
                                         const std::vector<std::string> &ids) {
  if (ids.empty()) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto tx, SqliteTransaction::Begin(db_));
  ASSIGN_OR_RETURN(auto stmt, db_->Prepare("DELETE FROM sink_ledger WHERE connector_id = ? AND "
                                           "collection = ? AND source = ? AND external_id = ?"));
  for (const std::string &id : ids) {
    RETURN_IF_ERROR(stmt.Bind(1, options_.connector_id));
    RETURN_IF_ERROR(stmt.Bind(2, options_.collection));
    RETURN_IF_ERROR(stmt.Bind(3, source));
    RETURN_IF_ERROR(stmt.Bind(4, id));
    RETURN_IF_ERROR(stmt.Run());
    RETURN_IF_ERROR(stmt.Reset());
  }
  return tx->Commit();
}

std::vector<connectors::DocumentFailure> RetrievalSink::TakeFailures() {
  std::vector<connectors::DocumentFailure> out;
  out.swap(failures_);
  return out;
}

}  // namespace tessera::sync
