#include "services/retrieval/retrieval_service.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/file_system.h"
#include "common/grpc_status.h"
#include "common/logging.h"
#include "common/status.h"
#include "google/protobuf/util/time_util.h"
#include "nlohmann/json.hpp"
#include "services/gateway/caller.h"
#include "services/retrieval/engine_embedder.h"
#include "services/retrieval/fusion.h"
#include "services/retrieval/index/lexical_hash_embedder.h"
#include "tessera/v1/engine.grpc.pb.h"

namespace tessera::retrieval {
namespace {

using google::protobuf::util::TimeUtil;

constexpr int kDefaultTopK = 10;
constexpr int kMaxTopK = 1000;
constexpr int kMaxCandidates = 2000;

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}
google::protobuf::Duration ToDuration(absl::Duration d) {
  return TimeUtil::MicrosecondsToDuration(absl::ToInt64Microseconds(d));
}

absl::Status ValidateCollectionName(const std::string& name) {
  if (name.empty() || name.size() > 64) {
    return absl::InvalidArgumentError("collection name must be 1 to 64 characters");
  }
  for (char c : name) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-' || c == '_')) {
      return absl::InvalidArgumentError(absl::StrCat(
          "collection name '", name, "' may use only lowercase letters, digits, '-' and '_'"));
    }
  }
  return absl::OkStatus();
}

void ToProto(const CollectionRecord& r, v1::Collection* out) {
  out->set_name(r.name);
  out->set_description(r.description);
  out->set_embedding_model(r.embedding_model);
  out->set_embedding_dimensions(r.dimensions);
  out->mutable_chunking()->set_max_tokens(r.chunking.max_tokens);
  out->mutable_chunking()->set_overlap_tokens(r.chunking.overlap_tokens);
  out->mutable_chunking()->set_contextualize(r.contextualize);
  out->mutable_index()->set_faiss_factory(r.index_factory);
  out->mutable_index()->set_metric(r.index_metric == "l2" ? v1::VECTOR_METRIC_L2
                                                          : v1::VECTOR_METRIC_INNER_PRODUCT);
  out->mutable_index()->set_faiss_search_params(r.index_search_params);
  *out->mutable_create_time() = ToTimestamp(r.create_time);
  *out->mutable_update_time() = ToTimestamp(r.update_time);
  out->set_document_count(r.document_count);
  out->set_chunk_count(r.chunk_count);
}

// Collections are not scoped by tenant yet: until they are, only the default
// tenant may use this service, so no tenant can reach another's documents.
absl::StatusOr<Caller> TenantCaller(grpc::ServerContext* ctx) {
  ASSIGN_OR_RETURN(Caller caller, CallerFromContext(*ctx));
  if (caller.principal.tenant != "default") {
    return absl::PermissionDeniedError(absl::StrCat(
        "tenant '", caller.principal.tenant,
        "': per-tenant collections are not built yet; retrieval serves the default tenant only"));
  }
  return caller;
}

// The principal a read acts as: the caller, or (admin keys only) another.
absl::StatusOr<std::vector<std::string>> ReadPrincipals(grpc::ServerContext* ctx,
                                                        const v1::Principal& requested) {
  ASSIGN_OR_RETURN(Caller caller, TenantCaller(ctx));
  if (requested.user().empty() ||
      (requested.user() == caller.principal.user && requested.groups_size() == 0)) {
    return ExpandPrincipal(caller.principal.user, caller.principal.groups);
  }
  if (!caller.is_admin()) {
    return absl::PermissionDeniedError(absl::StrCat(
        "only an admin key may search as another principal; ", caller.principal.user,
        " holds a user key"));
  }
  std::vector<std::string> groups(requested.groups().begin(), requested.groups().end());
  return ExpandPrincipal(requested.user(), groups);
}

absl::Status RequireAdmin(grpc::ServerContext* ctx, absl::string_view what) {
  ASSIGN_OR_RETURN(Caller caller, TenantCaller(ctx));
  return tessera::RequireAdmin(caller, what).status();
}

std::string Fingerprint(const CollectionRecord& r) {
  nlohmann::json j;
  j["update_time_us"] = absl::ToUnixMicros(r.update_time);
  j["chunk_count"] = r.chunk_count;
  j["factory"] = r.index_factory;
  j["model"] = r.embedding_model;
  return j.dump();
}

}  // namespace

absl::StatusOr<std::unique_ptr<RetrievalServiceImpl>> RetrievalServiceImpl::Create(
    Options options) {
  if (options.data_dir.empty()) return absl::InvalidArgumentError("retrieval: data_dir is required");
  std::unique_ptr<RetrievalServiceImpl> s(new RetrievalServiceImpl(std::move(options)));
  RETURN_IF_ERROR(s->Init());
  return s;
}

absl::Status RetrievalServiceImpl::Init() {
  RETURN_IF_ERROR(LocalFileSystem()->CreateDirectories(JoinPath(options_.data_dir, "index"), 0700));
  SqliteDocumentStore::Options so;
  so.path = JoinPath(options_.data_dir, "retrieval.db");
  ASSIGN_OR_RETURN(store_, SqliteDocumentStore::Open(so));
  ASSIGN_OR_RETURN(std::vector<CollectionRecord> all, store_->ListCollections());
  for (const CollectionRecord& c : all) {
    auto live = std::make_shared<Live>();
    live->record = c;
    ASSIGN_OR_RETURN(live->embedder, MakeEmbedder(c));
    RETURN_IF_ERROR(Annotate(LoadOrRebuild(live.get()), absl::StrCat("collection ", c.name)));
    absl::MutexLock lock(&mu_);
    live_[c.name] = std::move(live);
  }
  const absl::Duration save = options_.index_save_interval;
  const absl::Duration maintain = options_.maintenance_interval;
  if (save > absl::ZeroDuration() || maintain > absl::ZeroDuration()) {
    background_ = std::thread([this, save, maintain] {
      const absl::Duration tick = maintain > absl::ZeroDuration() && (save <= absl::ZeroDuration() || maintain < save)
                                      ? maintain
                                      : save;
      absl::Time last_save = absl::Now();
      while (!stop_.WaitForNotificationWithTimeout(tick)) {
        if (maintain > absl::ZeroDuration()) Maintain();
        if (save > absl::ZeroDuration() && absl::Now() - last_save >= save) {
          absl::Status s = SaveIndexes();
          if (!s.ok()) TLOG(WARNING, "saving indexes failed").Field("error", s);
          last_save = absl::Now();
        }
      }
    });
  }
  return absl::OkStatus();
}

void RetrievalServiceImpl::Maintain() {
  std::vector<std::shared_ptr<Live>> all;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [name, live] : live_) all.push_back(live);
  }
  for (auto& live : all) {
    // Both build the new index without blocking searches or ingests.
    absl::StatusOr<bool> trained = live->index->TrainIfReady();
    if (!trained.ok()) {
      TLOG(WARNING, "index training failed").Field("collection", live->record.name)
          .Field("error", trained.status());
    } else if (*trained) {
      live->dirty = true;
      TLOG(INFO, "index trained").Field("collection", live->record.name)
          .Field("index", live->index->Describe());
    }
    absl::StatusOr<bool> compacted = live->index->CompactIfNeeded();
    if (compacted.ok() && *compacted) live->dirty = true;
  }
}

RetrievalServiceImpl::~RetrievalServiceImpl() {
  stop_.Notify();
  if (background_.joinable()) background_.join();
  absl::Status s = SaveIndexes();
  if (!s.ok()) TLOG(WARNING, "saving indexes at shutdown failed").Field("error", s);
}

std::string RetrievalServiceImpl::IndexPath(const std::string& collection) const {
  return JoinPath(JoinPath(options_.data_dir, "index"), collection + ".faiss");
}

absl::StatusOr<std::unique_ptr<Embedder>> RetrievalServiceImpl::MakeEmbedder(
    const CollectionRecord& c) {
  if (c.embedding_model == kLexicalModel) {
    ASSIGN_OR_RETURN(auto e, LexicalHashEmbedder::Create({.dimensions = c.dimensions}));
    return std::unique_ptr<Embedder>(std::move(e));
  }
  std::shared_ptr<grpc::Channel> engine =
      options_.engine_channel ? options_.engine_channel() : nullptr;
  if (engine == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "embedding model '", c.embedding_model, "' needs the engine service, which is not available"));
  }
  return std::unique_ptr<Embedder>(std::make_unique<EngineEmbedder>(
      engine, EngineEmbedder::Options{.model = c.embedding_model, .dimensions = c.dimensions}));
}

absl::StatusOr<std::unique_ptr<FaissVectorIndex>> RetrievalServiceImpl::MakeIndex(
    const CollectionRecord& c) {
  return FaissVectorIndex::Create(IndexOptions(c));
}

FaissVectorIndex::Options RetrievalServiceImpl::IndexOptions(const CollectionRecord& c) const {
  FaissVectorIndex::Options o;
  o.factory = c.index_factory;
  o.dimensions = c.dimensions;
  o.metric = c.index_metric == "l2" ? FaissVectorIndex::Metric::kL2
                                    : FaissVectorIndex::Metric::kInnerProduct;
  // Training and compaction run on the background thread, not in ingest calls.
  o.inline_maintenance = options_.maintenance_interval <= absl::ZeroDuration();
  return o;
}

absl::Status RetrievalServiceImpl::LoadOrRebuild(Live* live) {
  const std::string path = IndexPath(live->record.name);
  absl::StatusOr<std::string> meta = LocalFileSystem()->ReadFile(path + ".meta", 1 << 16);
  if (meta.ok() && *meta == Fingerprint(live->record)) {
    absl::StatusOr<std::unique_ptr<FaissVectorIndex>> loaded =
        FaissVectorIndex::Load(path, IndexOptions(live->record));
    if (loaded.ok() && (*loaded)->size() == live->record.chunk_count) {
      live->index = std::move(*loaded);
      TLOG(INFO, "index loaded").Field("collection", live->record.name)
          .Field("vectors", live->index->size());
      return absl::OkStatus();
    }
    TLOG(WARNING, "saved index unusable; rebuilding").Field("collection", live->record.name)
        .Field("error", loaded.ok() ? absl::DataLossError("size mismatch") : loaded.status());
  } else if (LocalFileSystem()->Exists(path)) {
    TLOG(INFO, "saved index is stale; rebuilding from SQLite").Field("collection", live->record.name);
  }
  ASSIGN_OR_RETURN(live->index, MakeIndex(live->record));
  const int dims = live->record.dimensions;
  std::vector<int64_t> ids;
  std::vector<float> vectors;
  auto flush = [&]() -> absl::Status {
    if (ids.empty()) return absl::OkStatus();
    RETURN_IF_ERROR(live->index->Add(ids, vectors.data()));
    ids.clear();
    vectors.clear();
    return absl::OkStatus();
  };
  RETURN_IF_ERROR(store_->ForEachEmbedding(live->record.name,
                                           [&](int64_t id, const float* v, int d) -> absl::Status {
                                             if (d != dims) {
                                               return absl::DataLossError("embedding size mismatch");
                                             }
                                             ids.push_back(id);
                                             vectors.insert(vectors.end(), v, v + d);
                                             return ids.size() >= 4096 ? flush() : absl::OkStatus();
                                           }));
  RETURN_IF_ERROR(flush());
  live->dirty = true;
  TLOG(INFO, "index rebuilt from SQLite").Field("collection", live->record.name)
      .Field("vectors", live->index->size());
  return absl::OkStatus();
}

absl::Status RetrievalServiceImpl::SaveLocked(Live* live) {
  ASSIGN_OR_RETURN(CollectionRecord now, store_->GetCollection(live->record.name));
  const std::string path = IndexPath(now.name);
  RETURN_IF_ERROR(live->index->Save(path));
  RETURN_IF_ERROR(LocalFileSystem()->WriteFileAtomic(path + ".meta", Fingerprint(now), 0600));
  live->dirty = false;
  return absl::OkStatus();
}

absl::Status RetrievalServiceImpl::SaveIndexes() {
  std::vector<std::shared_ptr<Live>> all;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [name, live] : live_) all.push_back(live);
  }
  absl::Status result;
  for (auto& live : all) {
    if (!live->dirty) continue;
    absl::MutexLock lock(&live->write_mu);
    absl::Status s = SaveLocked(live.get());
    if (!s.ok()) result.Update(Annotate(s, absl::StrCat("saving index of ", live->record.name)));
  }
  return result;
}

absl::Status RetrievalServiceImpl::RebuildIndex(const std::string& collection) {
  ASSIGN_OR_RETURN(std::shared_ptr<Live> live, Find(collection));
  absl::MutexLock lock(&live->write_mu);
  ASSIGN_OR_RETURN(live->record, store_->GetCollection(collection));
  LocalFileSystem()->DeleteFile(IndexPath(collection) + ".meta").IgnoreError();
  RETURN_IF_ERROR(LoadOrRebuild(live.get()));
  return SaveLocked(live.get());
}

std::vector<std::string> RetrievalServiceImpl::CollectionNames() {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> names;
  for (const auto& [name, live] : live_) names.push_back(name);
  return names;
}

absl::StatusOr<std::string> RetrievalServiceImpl::DescribeIndex(const std::string& collection) {
  ASSIGN_OR_RETURN(std::shared_ptr<Live> live, Find(collection));
  return live->index->Describe();
}

absl::StatusOr<std::shared_ptr<RetrievalServiceImpl::Live>> RetrievalServiceImpl::Find(
    const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto it = live_.find(name);
  if (it == live_.end()) return absl::NotFoundError(absl::StrCat("no collection '", name, "'"));
  return it->second;
}

grpc::Status RetrievalServiceImpl::CreateCollection(grpc::ServerContext* ctx,
                                                    const v1::CreateCollectionRequest* req,
                                                    v1::CreateCollectionResponse* resp) {
  absl::Status admin = RequireAdmin(ctx, "CreateCollection");
  if (!admin.ok()) return ToGrpcStatus(admin);
  const v1::Collection& in = req->collection();
  CollectionRecord r;
  r.name = in.name();
  absl::Status s = ValidateCollectionName(r.name);
  if (!s.ok()) return ToGrpcStatus(s);
  r.description = in.description();
  r.embedding_model = in.embedding_model().empty() ? kLexicalModel : in.embedding_model();
  r.dimensions = in.embedding_dimensions();
  if (r.embedding_model == kLexicalModel) {
    if (r.dimensions == 0) r.dimensions = 384;
  } else if (r.dimensions <= 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "embedding_dimensions is required for an engine embedding model");
  }
  if (in.has_chunking()) {
    if (in.chunking().max_tokens() != 0) r.chunking.max_tokens = in.chunking().max_tokens();
    if (in.chunking().has_overlap_tokens()) r.chunking.overlap_tokens = in.chunking().overlap_tokens();
    if (in.chunking().has_contextualize()) r.contextualize = in.chunking().contextualize();
  }
  r.index_factory = in.index().faiss_factory().empty() ? "Flat" : in.index().faiss_factory();
  r.index_metric = in.index().metric() == v1::VECTOR_METRIC_L2 ? "l2" : "ip";
  r.index_search_params = in.index().faiss_search_params();

  auto live = std::make_shared<Live>();
  absl::StatusOr<std::unique_ptr<Embedder>> embedder = MakeEmbedder(r);
  if (!embedder.ok()) return ToGrpcStatus(embedder.status());
  live->embedder = std::move(*embedder);
  absl::StatusOr<std::unique_ptr<FaissVectorIndex>> index = MakeIndex(r);
  if (!index.ok()) return ToGrpcStatus(Annotate(index.status(), "index.faiss_factory"));
  live->index = std::move(*index);
  absl::MutexLock lock(&mu_);
  absl::StatusOr<CollectionRecord> created = store_->CreateCollection(r);
  if (!created.ok()) return ToGrpcStatus(created.status());
  live->record = *created;
  live_[r.name] = live;
  BumpGeneration();
  ToProto(*created, resp->mutable_collection());
  TLOG(INFO, "collection created").Field("collection", r.name).Field("model", r.embedding_model)
      .Field("index", r.index_factory);
  return grpc::Status::OK;
}

grpc::Status RetrievalServiceImpl::GetCollection(grpc::ServerContext* ctx,
                                                 const v1::GetCollectionRequest* req,
                                                 v1::GetCollectionResponse* resp) {
  absl::StatusOr<Caller> caller = TenantCaller(ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  absl::StatusOr<CollectionRecord> r = store_->GetCollection(req->name());
  if (!r.ok()) return ToGrpcStatus(r.status());
  ToProto(*r, resp->mutable_collection());
  return grpc::Status::OK;
}

grpc::Status RetrievalServiceImpl::ListCollections(grpc::ServerContext* ctx,
                                                   const v1::ListCollectionsRequest* req,
                                                   v1::ListCollectionsResponse* resp) {
  absl::StatusOr<Caller> caller = TenantCaller(ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (req->page_size() < 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "page_size must not be negative");
  }
  absl::StatusOr<std::vector<CollectionRecord>> all = store_->ListCollections();
  if (!all.ok()) return ToGrpcStatus(all.status());
  const size_t page = req->page_size() == 0 ? 100 : std::min(req->page_size(), 1000);
  // The page token is the last name of the previous page (names are sorted).
  for (const CollectionRecord& r : *all) {
    if (!req->page_token().empty() && r.name <= req->page_token()) continue;
    if (static_cast<size_t>(resp->collections_size()) == page) {
      resp->set_next_page_token(resp->collections(resp->collections_size() - 1).name());
      break;
    }
    ToProto(r, resp->add_collections());
  }
  return grpc::Status::OK;
}

grpc::Status RetrievalServiceImpl::DeleteCollection(grpc::ServerContext* ctx,
                                                    const v1::DeleteCollectionRequest* req,
                                                    v1::DeleteCollectionResponse*) {
  absl::Status admin = RequireAdmin(ctx, "DeleteCollection");
  if (!admin.ok()) return ToGrpcStatus(admin);
  absl::StatusOr<std::shared_ptr<Live>> live = Find(req->name());
  if (!live.ok()) return ToGrpcStatus(live.status());
  absl::MutexLock write(&(*live)->write_mu);
  absl::StatusOr<std::vector<int64_t>> removed = store_->DeleteCollection(req->name());
  if (!removed.ok()) return ToGrpcStatus(removed.status());
  {
    absl::MutexLock lock(&mu_);
    live_.erase(req->name());
  }
  (*live)->dirty = false;
  BumpGeneration();
  LocalFileSystem()->DeleteFile(IndexPath(req->name())).IgnoreError();
  LocalFileSystem()->DeleteFile(IndexPath(req->name()) + ".meta").IgnoreError();
  TLOG(INFO, "collection deleted").Field("collection", req->name())
      .Field("chunks", static_cast<int64_t>(removed->size()));
  return grpc::Status::OK;
}

grpc::Status RetrievalServiceImpl::IngestDocuments(grpc::ServerContext* ctx,
                                                   const v1::IngestDocumentsRequest* req,
                                                   v1::IngestDocumentsResponse* resp) {
  absl::Status admin = RequireAdmin(ctx, "IngestDocuments");
  if (!admin.ok()) return ToGrpcStatus(admin);
  return ToGrpcStatus(DoIngest(*req, resp));
}

absl::Status RetrievalServiceImpl::DoIngest(const v1::IngestDocumentsRequest& req,
                                            v1::IngestDocumentsResponse* resp) {
  ASSIGN_OR_RETURN(std::shared_ptr<Live> live, Find(req.collection()));
  absl::MutexLock write(&live->write_mu);
  WordTokenizer tokenizer;
  int64_t embedded_tokens = 0;
  auto fail = [](v1::IngestResult* result, const absl::Status& s) {
    result->set_status(v1::INGEST_STATUS_FAILED);
    result->mutable_error()->set_code(static_cast<int>(s.code()));
    result->mutable_error()->set_message(std::string(s.message()));
  };
  // 1. Per document: validate, decide, chunk and embed what changed.
  std::vector<UpsertInput> batch;
  std::vector<v1::IngestResult*> batch_results;
  std::set<std::string> seen;
  for (const v1::Document& d : req.documents()) {
    v1::IngestResult* result = resp->add_results();
    result->set_source(d.source());
    result->set_external_id(d.external_id());
    size_t bytes = d.title().size() + d.text().size();
    std::vector<Section> sections;
    if (!d.text().empty()) sections.push_back(Section{"", d.text(), 0});
    for (const v1::Section& s : d.sections()) {
      bytes += s.heading().size() + s.text().size();
      sections.push_back(Section{s.heading(), s.text(), s.page()});
    }
    if (bytes > options_.max_document_bytes) {
      fail(result, absl::ResourceExhaustedError(absl::StrCat(
                       "document is ", bytes, " bytes; the limit is ", options_.max_document_bytes)));
      continue;
    }
    UpsertInput in;
    in.doc.collection = req.collection();
    in.doc.source = d.source();
    in.doc.external_id = d.external_id();
    in.doc.title = d.title();
    in.doc.uri = d.uri();
    in.doc.mime_type = d.mime_type();
    if (d.has_modified_time()) {
      in.doc.modified_time_us = TimeUtil::TimestampToMicroseconds(d.modified_time());
    }
    in.doc.content_hash =
        d.content_hash().empty() ? ContentHash(d.title(), sections) : d.content_hash();
    in.doc.acl.assign(d.acl().begin(), d.acl().end());
    for (const auto& [k, v] : d.metadata()) in.doc.metadata[k] = v;

    absl::StatusOr<UpsertPlan> plan = store_->PrepareUpsert(in.doc);
    if (!plan.ok()) {
      fail(result, plan.status());
      continue;
    }
    // The same document twice in one request: the plan was made against the
    // stored version, not the earlier copy, so give the store chunks anyway.
    const bool repeated = !seen.insert(absl::StrCat(d.source(), "\x1f", d.external_id())).second;
    if (*plan == UpsertPlan::kNeedsChunks || (repeated && *plan == UpsertPlan::kMetadataOnly)) {
      in.chunks = ChunkDocument(d.title(), sections, live->record.chunking, tokenizer);
      std::vector<std::string> texts;
      texts.reserve(in.chunks.size());
      for (const ChunkText& c : in.chunks) {
        texts.push_back(live->record.contextualize ? c.embed_text : c.text);
        embedded_tokens += c.token_count;
      }
      absl::StatusOr<std::vector<std::vector<float>>> vectors = live->embedder->Embed(texts);
      if (!vectors.ok()) {
        fail(result, vectors.status());
        continue;
      }
      in.embeddings = std::move(*vectors);
    }
    batch.push_back(std::move(in));
    batch_results.push_back(result);
  }
  // 2. One transaction for the whole request (one fsync); a failed document
  // writes nothing, the others commit. Committed = acknowledged.
  ASSIGN_OR_RETURN(std::vector<absl::StatusOr<UpsertResult>> written,
                   store_->UpsertDocuments(batch));
  // 3. The index follows the store.
  bool rebuild = false;
  absl::Status index_error;
  for (size_t i = 0; i < written.size(); ++i) {
    v1::IngestResult* result = batch_results[i];
    if (!written[i].ok()) {
      fail(result, written[i].status());
      continue;
    }
    const UpsertResult& up = *written[i];
    if (!rebuild) {
      absl::Status idx = live->index->Remove(up.removed_chunk_ids);
      if (idx.ok() && !up.added_chunk_ids.empty()) {
        std::vector<float> flat;
        flat.reserve(batch[i].embeddings.size() * static_cast<size_t>(live->record.dimensions));
        for (const auto& e : batch[i].embeddings) flat.insert(flat.end(), e.begin(), e.end());
        idx = live->index->Add(up.added_chunk_ids, flat.data());
      }
      if (!idx.ok()) {
        rebuild = true;
        index_error = idx;
      }
    }
    if (up.status != UpsertStatus::kUnchanged) live->dirty = true;
    result->set_document_id(absl::StrCat(up.doc_id));
    result->set_chunk_count(up.chunk_count);
    result->set_acl_changed(up.acl_changed);
    switch (up.status) {
      case UpsertStatus::kCreated: result->set_status(v1::INGEST_STATUS_CREATED); break;
      case UpsertStatus::kUpdated: result->set_status(v1::INGEST_STATUS_UPDATED); break;
      case UpsertStatus::kMetadataUpdated:
        result->set_status(v1::INGEST_STATUS_METADATA_UPDATED);
        break;
      case UpsertStatus::kUnchanged: result->set_status(v1::INGEST_STATUS_UNCHANGED); break;
    }
  }
  if (rebuild) {
    // The store is right; the derived index is not. Rebuild it from the store.
    TLOG(ERROR, "index update failed; rebuilding").Field("collection", req.collection())
        .Field("error", index_error);
    RETURN_IF_ERROR(LoadOrRebuild(live.get()));
  }
  BumpGeneration();
  resp->mutable_usage()->set_embedding_tokens(embedded_tokens);
  return absl::OkStatus();
}

grpc::Status RetrievalServiceImpl::DeleteDocuments(grpc::ServerContext* ctx,
                                                   const v1::DeleteDocumentsRequest* req,
                                                   v1::DeleteDocumentsResponse* resp) {
  absl::Status admin = RequireAdmin(ctx, "DeleteDocuments");
  if (!admin.ok()) return ToGrpcStatus(admin);
  absl::StatusOr<std::shared_ptr<Live>> live = Find(req->collection());
  if (!live.ok()) return ToGrpcStatus(live.status());
  std::vector<int64_t> ids;
  for (const std::string& id : req->document_ids()) {
    int64_t v;
    if (!absl::SimpleAtoi(id, &v)) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrCat("document_id '", id, "' is not one this service issued"));
    }
    ids.push_back(v);
  }
  absl::MutexLock write(&(*live)->write_mu);
  int deleted = 0;
  std::vector<int64_t> removed;
  if (!ids.empty()) {
    absl::StatusOr<DeleteResult> r = store_->DeleteDocuments(req->collection(), ids);
    if (!r.ok()) return ToGrpcStatus(r.status());
    deleted += r->deleted_count;
    removed = r->removed_chunk_ids;
  }
  if (req->has_source_documents()) {
    std::vector<std::string> ext(req->source_documents().external_ids().begin(),
                                 req->source_documents().external_ids().end());
    absl::StatusOr<DeleteResult> r = store_->DeleteDocumentsByExternalId(
        req->collection(), req->source_documents().source(), ext);
    if (!r.ok()) return ToGrpcStatus(r.status());
    deleted += r->deleted_count;
    removed.insert(removed.end(), r->removed_chunk_ids.begin(), r->removed_chunk_ids.end());
  }
  absl::Status idx = (*live)->index->Remove(removed);
  if (!idx.ok()) {
    absl::Status rebuilt = LoadOrRebuild(live->get());
    if (!rebuilt.ok()) return ToGrpcStatus(rebuilt);
  }
  if (deleted > 0) (*live)->dirty = true;
  BumpGeneration();
  resp->set_deleted_count(deleted);
  return grpc::Status::OK;
}

grpc::Status RetrievalServiceImpl::Search(grpc::ServerContext* ctx, const v1::SearchRequest* req,
                                          v1::SearchResponse* resp) {
  return ToGrpcStatus(DoSearch(ctx, *req, resp));
}

absl::Status RetrievalServiceImpl::DoSearch(grpc::ServerContext* ctx, const v1::SearchRequest& req,
                                            v1::SearchResponse* resp) {
  const absl::Time start = absl::Now();
  ASSIGN_OR_RETURN(std::vector<std::string> principals, ReadPrincipals(ctx, req.principal()));
  if (absl::StripAsciiWhitespace(req.query()).empty()) {
    return absl::InvalidArgumentError("query must not be empty");
  }
  const int k = req.top_k() == 0 ? kDefaultTopK : req.top_k();
  if (k < 1 || k > kMaxTopK) {
    return absl::InvalidArgumentError(absl::StrCat("top_k must be between 1 and ", kMaxTopK));
  }
  // Collections: those named, or all.
  std::vector<std::shared_ptr<Live>> lives;
  if (req.collections().empty()) {
    absl::MutexLock lock(&mu_);
    for (auto& [name, live] : live_) lives.push_back(live);
  } else {
    for (const std::string& name : req.collections()) {
      ASSIGN_OR_RETURN(std::shared_ptr<Live> live, Find(name));
      lives.push_back(std::move(live));
    }
  }
  if (lives.empty()) return absl::OkStatus();

  AccessFilter filter;
  for (const auto& live : lives) filter.collections.push_back(live->record.name);
  filter.principals = principals;
  const v1::SearchFilters& f = req.filters();
  filter.sources.assign(f.sources().begin(), f.sources().end());
  if (f.has_modified_after()) filter.modified_after_us = TimeUtil::TimestampToMicroseconds(f.modified_after());
  if (f.has_modified_before()) filter.modified_before_us = TimeUtil::TimestampToMicroseconds(f.modified_before());
  if (filter.modified_after_us && filter.modified_before_us &&
      *filter.modified_after_us >= *filter.modified_before_us) {
    return absl::InvalidArgumentError("filters.modified_after must be before filters.modified_before");
  }
  for (const auto& [key, value] : f.metadata()) filter.metadata_equals.emplace_back(key, value);
  std::sort(filter.metadata_equals.begin(), filter.metadata_equals.end());
  for (const std::string& id : f.document_ids()) {
    int64_t v;
    if (!absl::SimpleAtoi(id, &v)) {
      return absl::InvalidArgumentError(absl::StrCat("filters.document_ids: '", id, "' is not a document id"));
    }
    filter.document_ids.push_back(v);
  }

  const v1::HybridParams& h = req.hybrid();
  FusionOptions fusion;
  fusion.method = h.fusion() == v1::FUSION_METHOD_WEIGHTED_SUM ? FusionMethod::kWeightedSum
                                                                : FusionMethod::kReciprocalRank;
  if (h.rrf_k() < 0) return absl::InvalidArgumentError("hybrid.rrf_k must not be negative");
  if (h.rrf_k() > 0) fusion.rrf_k = h.rrf_k();
  if (h.has_vector_weight()) fusion.vector_weight = h.vector_weight();
  if (h.has_bm25_weight()) fusion.bm25_weight = h.bm25_weight();
  if (fusion.vector_weight < 0 || fusion.bm25_weight < 0) {
    return absl::InvalidArgumentError("hybrid weights must not be negative");
  }
  auto candidates = [&](int requested) {
    if (requested < 0) return -1;
    return requested == 0 ? std::min(kMaxCandidates, std::max(50, 4 * k))
                          : std::min(kMaxCandidates, requested);
  };
  const int bm25_n = candidates(h.bm25_candidates());
  const int vector_n = candidates(h.vector_candidates());
  if (bm25_n < 0 || vector_n < 0) return absl::InvalidArgumentError("candidate counts must not be negative");

  // BM25, permission join inside SQL.
  absl::Time t0 = absl::Now();
  ASSIGN_OR_RETURN(std::vector<Bm25Hit> bm25_hits, store_->Bm25Search(req.query(), filter, bm25_n));
  std::vector<ScoredId> bm25;
  for (const Bm25Hit& b : bm25_hits) bm25.push_back({b.chunk_id, b.bm25});
  absl::Duration bm25_time = absl::Now() - t0;

  // Vectors, permission selector inside FAISS.
  absl::Duration embed_time, vector_time;
  std::vector<ScoredId> vec;
  if (vector_n > 0 && (!h.has_vector_weight() || h.vector_weight() > 0 ||
                       fusion.method == FusionMethod::kReciprocalRank)) {
    t0 = absl::Now();
    ASSIGN_OR_RETURN(std::shared_ptr<const IdSetFilter> allowed, AllowedIds(filter));
    const IdSetFilter& id_filter = *allowed;
    for (const auto& live : lives) {
      absl::Time e0 = absl::Now();
      ASSIGN_OR_RETURN(auto q, live->embedder->Embed({req.query()}));
      embed_time += absl::Now() - e0;
      // A query with no words embeds to the zero vector: every score would
      // be 0 and the "nearest" chunks arbitrary, so the vector side abstains.
      if (q.empty() || std::all_of(q[0].begin(), q[0].end(), [](float x) { return x == 0.0f; })) {
        continue;
      }
      ASSIGN_OR_RETURN(std::vector<VectorHit> hits, live->index->Search(q[0], vector_n, &id_filter));
      for (const VectorHit& v : hits) vec.push_back({v.id, v.score});
    }
    std::sort(vec.begin(), vec.end(), [](const ScoredId& a, const ScoredId& b) {
      return a.score != b.score ? a.score > b.score : a.id < b.id;
    });
    if (vec.size() > static_cast<size_t>(vector_n)) vec.resize(static_cast<size_t>(vector_n));
    vector_time = absl::Now() - t0 - embed_time;
  }

  std::vector<FusedHit> fused = Fuse(bm25, vec, fusion, h.rerank() ? std::max(k, h.rerank_candidates()) : k);
  std::vector<int64_t> ids;
  for (const FusedHit& fh : fused) ids.push_back(fh.id);
  ASSIGN_OR_RETURN(std::vector<ChunkRecord> chunks, store_->GetChunks(ids));
  std::map<int64_t, const ChunkRecord*> by_id;
  for (const ChunkRecord& c : chunks) by_id[c.chunk_id] = &c;

  std::vector<double> rerank_scores;
  absl::Duration rerank_time;
  if (h.rerank() && !fused.empty()) {
    t0 = absl::Now();
    std::shared_ptr<grpc::Channel> engine = options_.engine_channel ? options_.engine_channel() : nullptr;
    if (engine == nullptr) return absl::FailedPreconditionError("rerank needs the engine service");
    auto stub = v1::EngineService::NewStub(engine);
    v1::RerankRequest rr;
    rr.set_model(h.rerank_model());
    rr.set_query(req.query());
    for (const FusedHit& fh : fused) {
      auto it = by_id.find(fh.id);
      rr.add_documents(it == by_id.end() ? "" : it->second->text);
    }
    v1::RerankResponse rresp;
    grpc::ClientContext rctx;
    rctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    RETURN_IF_ERROR(Annotate(FromGrpcStatus(stub->Rerank(&rctx, rr, &rresp)), "rerank"));
    rerank_scores.assign(fused.size(), -1e300);
    for (const auto& r : rresp.results()) {
      if (r.index() >= 0 && static_cast<size_t>(r.index()) < fused.size()) {
        rerank_scores[static_cast<size_t>(r.index())] = r.relevance_score();
      }
    }
    std::vector<size_t> order(fused.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return rerank_scores[a] > rerank_scores[b];
    });
    std::vector<FusedHit> reordered;
    std::vector<double> scores;
    for (size_t i : order) {
      reordered.push_back(fused[i]);
      scores.push_back(rerank_scores[i]);
    }
    fused = std::move(reordered);
    rerank_scores = std::move(scores);
    rerank_time = absl::Now() - t0;
  }

  for (size_t i = 0; i < fused.size() && resp->hits_size() < k; ++i) {
    const FusedHit& fh = fused[i];
    auto it = by_id.find(fh.id);
    if (it == by_id.end()) continue;  // deleted between the search and now
    const ChunkRecord& c = *it->second;
    v1::SearchHit* hit = resp->add_hits();
    hit->set_document_id(absl::StrCat(c.doc_id));
    hit->set_chunk_id(absl::StrCat(c.chunk_id));
    hit->set_collection(c.collection);
    hit->set_source(c.source);
    hit->set_external_id(c.external_id);
    hit->set_title(c.title);
    hit->set_uri(c.uri);
    hit->set_heading(c.heading);
    hit->set_snippet(Snippet(c.text, req.query()));
    if (req.include_text()) hit->set_text(c.text);
    v1::Scores* s = hit->mutable_scores();
    if (fh.bm25) s->set_bm25(*fh.bm25);
    if (fh.vector) s->set_vector(*fh.vector);
    s->set_fused(fh.fused);
    if (!rerank_scores.empty()) s->set_rerank(rerank_scores[i]);
    s->set_bm25_rank(fh.bm25_rank.value_or(0));
    s->set_vector_rank(fh.vector_rank.value_or(0));
    for (const auto& [key, value] : c.metadata) (*hit->mutable_metadata())[key] = value;
    if (c.modified_time_us) {
      *hit->mutable_modified_time() = TimeUtil::MicrosecondsToTimestamp(*c.modified_time_us);
    }
  }
  v1::SearchTiming* t = resp->mutable_timing();
  *t->mutable_total() = ToDuration(absl::Now() - start);
  *t->mutable_embed() = ToDuration(embed_time);
  *t->mutable_bm25() = ToDuration(bm25_time);
  *t->mutable_vector() = ToDuration(vector_time);
  *t->mutable_rerank() = ToDuration(rerank_time);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const IdSetFilter>> RetrievalServiceImpl::AllowedIds(
    const AccessFilter& f) {
  std::string key;
  auto add = [&key](absl::string_view part) { absl::StrAppend(&key, part.size(), ":", part, ";"); };
  for (const auto& c : f.collections) add(c);
  key += "|";
  for (const auto& p : f.principals) add(p);
  key += "|";
  for (const auto& s : f.sources) add(s);
  key += "|";
  add(f.modified_after_us ? absl::StrCat(*f.modified_after_us) : "-");
  add(f.modified_before_us ? absl::StrCat(*f.modified_before_us) : "-");
  for (const auto& [k, v] : f.metadata_equals) {
    add(k);
    add(v);
  }
  key += "|";
  for (int64_t id : f.document_ids) add(absl::StrCat(id));
  const uint64_t generation = generation_.load();
  {
    absl::MutexLock lock(&cache_mu_);
    auto it = allowed_cache_.find(key);
    if (it != allowed_cache_.end() && it->second.generation == generation) return it->second.ids;
  }
  ASSIGN_OR_RETURN(std::vector<int64_t> ids, store_->AllowedChunkIds(f));
  auto filter = std::make_shared<const IdSetFilter>(ids);
  absl::MutexLock lock(&cache_mu_);
  if (allowed_cache_.size() >= 256) allowed_cache_.clear();  // bounded; rebuilt on demand
  allowed_cache_[key] = CachedIds{generation, filter};
  return filter;
}

grpc::Status RetrievalServiceImpl::GetDocument(grpc::ServerContext* ctx,
                                               const v1::GetDocumentRequest* req,
                                               v1::GetDocumentResponse* resp) {
  absl::StatusOr<std::vector<std::string>> principals = ReadPrincipals(ctx, req->principal());
  if (!principals.ok()) return ToGrpcStatus(principals.status());
  int64_t id;
  if (!absl::SimpleAtoi(req->document_id(), &id)) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such document");
  }
  absl::StatusOr<StoredDocument> d = store_->GetDocument(req->collection(), id, *principals);
  if (!d.ok()) return ToGrpcStatus(d.status());
  v1::Document* out = resp->mutable_document();
  out->set_document_id(absl::StrCat(d->doc_id));
  out->set_collection(d->collection);
  out->set_source(d->source);
  out->set_external_id(d->external_id);
  out->set_title(d->title);
  out->set_uri(d->uri);
  out->set_mime_type(d->mime_type);
  if (d->modified_time_us) {
    *out->mutable_modified_time() = TimeUtil::MicrosecondsToTimestamp(*d->modified_time_us);
  }
  for (const auto& a : d->acl) out->add_acl(a);
  for (const auto& [key, value] : d->metadata) (*out->mutable_metadata())[key] = value;
  out->set_content_hash(d->content_hash);
  *out->mutable_create_time() = ToTimestamp(d->create_time);
  *out->mutable_update_time() = ToTimestamp(d->update_time);
  out->set_chunk_count(static_cast<int>(d->chunks.size()));
  if (req->include_chunks()) {
    for (const ChunkRecord& c : d->chunks) {
      v1::Chunk* ch = resp->add_chunks();
      ch->set_chunk_id(absl::StrCat(c.chunk_id));
      ch->set_chunk_index(c.chunk_index);
      ch->set_section_index(c.section_index);
      ch->set_heading(c.heading);
      ch->set_text(c.text);
      ch->set_token_count(c.token_count);
    }
  }
  return grpc::Status::OK;
}

}  // namespace tessera::retrieval
