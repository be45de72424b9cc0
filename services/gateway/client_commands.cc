#include "services/gateway/client_commands.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/file_system.h"
#include "common/grpc_status.h"
#include "common/status.h"
#include "connectors/parse/document_parser.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/grpcpp.h"
#include "tessera/v1/retrieval.grpc.pb.h"

namespace tessera {
std::unique_ptr<grpc::ClientContext> ClientContextFor(const ClientOptions& c, absl::Duration timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->AddMetadata("authorization", "Bearer " + c.key);
  if (timeout != absl::InfiniteDuration()) ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return ctx;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> ClientChannel(const ClientOptions& c) {
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (!c.tls_ca.empty()) {
    ASSIGN_OR_RETURN(std::string pem, LocalFileSystem()->ReadFile(c.tls_ca, 1 << 20));
    grpc::SslCredentialsOptions o;
    o.pem_root_certs = pem;
    creds = grpc::SslCredentials(o);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(64 << 20);
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(c.server, creds, args);
}

int ReportClientError(const absl::Status& s, FILE* err) {
  std::fprintf(err, "tessera: %s: %s\n", absl::StatusCodeToString(s.code()).c_str(),
               std::string(s.message()).c_str());
  if (s.code() == absl::StatusCode::kUnavailable) {
    std::fprintf(err, "  (is `tessera serve` running there? see --server)\n");
  }
  return s.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

namespace {

std::unique_ptr<grpc::ClientContext> Context(const ClientOptions& c, absl::Duration timeout) {
  return ClientContextFor(c, timeout);
}

absl::StatusOr<std::unique_ptr<v1::RetrievalService::Stub>> Retrieval(const ClientOptions& c) {
  ASSIGN_OR_RETURN(auto channel, ClientChannel(c));
  return v1::RetrievalService::NewStub(channel);
}

int Report(const absl::Status& s, FILE* err) { return ReportClientError(s, err); }

// Files under `path` (itself, or recursively for a folder), sorted.
void Walk(const std::string& path, std::vector<std::string>* out, std::vector<std::string>* errors) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    errors->push_back(absl::StrCat(path, ": no such file or directory"));
    return;
  }
  if (S_ISREG(st.st_mode)) {
    out->push_back(path);
    return;
  }
  if (!S_ISDIR(st.st_mode)) return;
  absl::StatusOr<std::vector<std::string>> names = LocalFileSystem()->ListDirectory(path);
  if (!names.ok()) {
    errors->push_back(std::string(names.status().message()));
    return;
  }
  for (const std::string& n : *names) {
    if (absl::StartsWith(n, ".")) continue;  // hidden files and folders
    Walk(JoinPath(path, n), out, errors);
  }
}

}  // namespace

absl::StatusOr<std::string> ResolveKey(const std::string& key_file) {
  if (!key_file.empty()) {
    ASSIGN_OR_RETURN(std::string key, LocalFileSystem()->ReadFile(key_file, 4096));
    key = std::string(absl::StripAsciiWhitespace(key));
    if (key.empty()) return absl::InvalidArgumentError(absl::StrCat("--key_file ", key_file, " is empty"));
    return key;
  }
  const char* env = std::getenv("TESSERA_KEY");
  if (env != nullptr && *env != '\0') return std::string(absl::StripAsciiWhitespace(env));
  return absl::InvalidArgumentError(
      "no API key: set TESSERA_KEY or pass --key_file (create one with `tessera admin create-key`)");
}

int SearchCommand(const ClientOptions& client, const SearchCommandOptions& o, FILE* out, FILE* err) {
  if (absl::StripAsciiWhitespace(o.query).empty()) {
    std::fprintf(err, "tessera: search needs a query: tessera search \"QUERY\"\n");
    return 2;
  }
  if (o.fusion != "rrf" && o.fusion != "weighted") {
    std::fprintf(err, "tessera: --fusion must be rrf or weighted\n");
    return 2;
  }
  auto stub = Retrieval(client);
  if (!stub.ok()) return Report(stub.status(), err);
  v1::SearchRequest req;
  for (const auto& c : o.collections) req.add_collections(c);
  req.set_query(o.query);
  req.set_top_k(o.top_k);
  if (!o.as_user.empty()) {
    req.mutable_principal()->set_user(o.as_user);
    for (const auto& g : o.as_groups) req.mutable_principal()->add_groups(g);
  }
  req.mutable_hybrid()->set_fusion(o.fusion == "weighted" ? v1::FUSION_METHOD_WEIGHTED_SUM
                                                          : v1::FUSION_METHOD_RRF);
  v1::SearchResponse resp;
  auto ctx = Context(client, absl::Seconds(60));
  absl::Status s = FromGrpcStatus((*stub)->Search(ctx.get(), req, &resp));
  if (!s.ok()) return Report(s, err);
  if (o.json) {
    std::string json;
    google::protobuf::util::JsonPrintOptions jo;
    jo.add_whitespace = true;
    (void)google::protobuf::util::MessageToJsonString(resp, &json, jo);
    std::fprintf(out, "%s\n", json.c_str());
    return 0;
  }
  if (resp.hits().empty()) {
    std::fprintf(out, "no results%s\n", o.as_user.empty() ? "" : (" visible to " + o.as_user).c_str());
    return 0;
  }
  std::fprintf(out, "%-3s %-8s %-7s %-7s %-7s  %s\n", "#", "FUSED", "BM25", "VECTOR", "RANKS",
               "DOCUMENT");
  int i = 0;
  for (const v1::SearchHit& h : resp.hits()) {
    const v1::Scores& sc = h.scores();
    std::string ranks = absl::StrCat(sc.bm25_rank() ? absl::StrCat(sc.bm25_rank()) : "-", "/",
                                     sc.vector_rank() ? absl::StrCat(sc.vector_rank()) : "-");
    std::fprintf(out, "%-3d %-8.4f %-7s %-7s %-7s  %s  [%s]\n", ++i, sc.fused(),
                 sc.has_bm25() ? absl::StrFormat("%.3f", sc.bm25()).c_str() : "-",
                 sc.has_vector() ? absl::StrFormat("%.3f", sc.vector()).c_str() : "-",
                 ranks.c_str(), h.title().c_str(), h.uri().empty() ? h.external_id().c_str() : h.uri().c_str());
    std::string snippet = h.snippet();
    std::replace(snippet.begin(), snippet.end(), '\n', ' ');
    std::fprintf(out, "                                     %s\n", snippet.c_str());
  }
  std::fprintf(out, "%d hit(s) in %s\n", resp.hits_size(),
               google::protobuf::util::TimeUtil::ToString(resp.timing().total()).c_str());
  return 0;
}

int CollectionCommand(const ClientOptions& client, const CollectionCommandOptions& o, FILE* out,
                      FILE* err) {
  auto stub = Retrieval(client);
  if (!stub.ok()) return Report(stub.status(), err);
  auto print = [&](const v1::Collection& c) {
    std::fprintf(out, "%-20s %8lld docs %8lld chunks  model=%s dims=%d index=%s\n", c.name().c_str(),
                 static_cast<long long>(c.document_count()), static_cast<long long>(c.chunk_count()),
                 c.embedding_model().c_str(), c.embedding_dimensions(), c.index().faiss_factory().c_str());
  };
  auto ctx = Context(client, absl::Seconds(60));
  if (o.action == "list") {
    v1::ListCollectionsRequest req;
    v1::ListCollectionsResponse resp;
    absl::Status s = FromGrpcStatus((*stub)->ListCollections(ctx.get(), req, &resp));
    if (!s.ok()) return Report(s, err);
    for (const auto& c : resp.collections()) print(c);
    if (resp.collections().empty()) std::fprintf(out, "no collections\n");
    return 0;
  }
  if (o.name.empty()) {
    std::fprintf(err, "tessera: collection %s needs a NAME\n", o.action.c_str());
    return 2;
  }
  if (o.action == "create") {
    v1::CreateCollectionRequest req;
    req.mutable_collection()->set_name(o.name);
    req.mutable_collection()->set_embedding_model(o.model);
    req.mutable_collection()->set_embedding_dimensions(o.dimensions);
    req.mutable_collection()->mutable_index()->set_faiss_factory(o.index);
    v1::CreateCollectionResponse resp;
    absl::Status s = FromGrpcStatus((*stub)->CreateCollection(ctx.get(), req, &resp));
    if (!s.ok()) return Report(s, err);
    print(resp.collection());
    return 0;
  }
  if (o.action == "get") {
    v1::GetCollectionRequest req;
    req.set_name(o.name);
    v1::GetCollectionResponse resp;
    absl::Status s = FromGrpcStatus((*stub)->GetCollection(ctx.get(), req, &resp));
    if (!s.ok()) return Report(s, err);
    print(resp.collection());
    return 0;
  }
  if (o.action == "delete") {
    v1::DeleteCollectionRequest req;
    req.set_name(o.name);
    v1::DeleteCollectionResponse resp;
    absl::Status s = FromGrpcStatus((*stub)->DeleteCollection(ctx.get(), req, &resp));
    if (!s.ok()) return Report(s, err);
    std::fprintf(out, "deleted collection %s\n", o.name.c_str());
    return 0;
  }
  std::fprintf(err, "tessera: unknown collection action '%s' (create, list, get, delete)\n",
               o.action.c_str());
  return 2;
}

int IngestCommand(const ClientOptions& client, const IngestCommandOptions& o, FILE* out,
                  FILE* err) {
  if (o.paths.empty()) {
    std::fprintf(err, "tessera: ingest needs files or folders: tessera ingest PATH...\n");
    return 2;
  }
  if (o.collection.empty()) {
    std::fprintf(err, "tessera: ingest needs --collection=NAME\n");
    return 2;
  }
  auto stub = Retrieval(client);
  if (!stub.ok()) return Report(stub.status(), err);
  std::vector<std::string> files, errors;
  for (const std::string& p : o.paths) Walk(p, &files, &errors);
  for (const auto& e : errors) std::fprintf(err, "tessera: %s\n", e.c_str());

  const bool tty = o.progress && ::isatty(::fileno(err));
  int created = 0, updated = 0, unchanged = 0, failed = 0, chunks = 0;
  size_t done = 0;
  const absl::Time start = absl::Now();
  // On a terminal: one bar redrawn in place. Elsewhere (logs, CI): one final line.
  auto progress = [&](bool final) {
    if (!o.progress || (!tty && !final)) return;
    const int width = 30;
    const int filled = files.empty() ? width : static_cast<int>(width * done / files.size());
    std::string bar = std::string(filled, '#') + std::string(width - filled, '.');
    std::fprintf(err, "%s[%s] %zu/%zu files  %d new  %d updated  %d unchanged  %d failed%s",
                 tty ? "\r" : "", bar.c_str(), done, files.size(), created, updated, unchanged,
                 failed, (tty && !final) ? "" : "\n");
    std::fflush(err);
  };

  v1::IngestDocumentsRequest batch;
  batch.set_collection(o.collection);
  size_t batch_bytes = 0;
  std::vector<std::string> batch_files;
  auto flush = [&]() -> absl::Status {
    if (batch.documents().empty()) return absl::OkStatus();
    v1::IngestDocumentsResponse resp;
    auto ctx = Context(client, absl::Minutes(10));
    absl::Status s = FromGrpcStatus((*stub)->IngestDocuments(ctx.get(), batch, &resp));
    if (!s.ok()) return s;
    for (int i = 0; i < resp.results_size(); ++i) {
      const v1::IngestResult& r = resp.results(i);
      switch (r.status()) {
        case v1::INGEST_STATUS_CREATED: ++created; break;
        case v1::INGEST_STATUS_UPDATED:
        case v1::INGEST_STATUS_METADATA_UPDATED: ++updated; break;
        case v1::INGEST_STATUS_UNCHANGED: ++unchanged; break;
        default:
          ++failed;
          if (tty) std::fprintf(err, "\n");
          std::fprintf(err, "tessera: %s: %s\n", batch_files[static_cast<size_t>(i)].c_str(),
                       r.error().message().c_str());
      }
      chunks += r.chunk_count();
    }
    done += static_cast<size_t>(batch.documents_size());
    batch.clear_documents();
    batch_files.clear();
    batch_bytes = 0;
    progress(false);
    return absl::OkStatus();
  };

  progress(false);
  for (const std::string& path : files) {
    absl::StatusOr<std::string> bytes = LocalFileSystem()->ReadFile(path, 256u << 20);
    absl::StatusOr<parse::ParsedDocument> doc =
        bytes.ok() ? parse::ParseDocument(*bytes, path) : absl::StatusOr<parse::ParsedDocument>(bytes.status());
    if (!doc.ok()) {
      ++failed;
      ++done;
      if (tty) std::fprintf(err, "\n");
      std::fprintf(err, "tessera: %s: %s\n", path.c_str(), std::string(doc.status().message()).c_str());
      progress(false);
      continue;
    }
    v1::Document* d = batch.add_documents();
    d->set_source(o.source);
    char* real = ::realpath(path.c_str(), nullptr);
    std::string abs = real ? real : path;
    std::free(real);
    d->set_external_id(abs);
    d->set_uri("file://" + abs);
    d->set_title(doc->title.empty() ? path.substr(path.rfind('/') + 1) : doc->title);
    d->set_mime_type(doc->mime_type);
    struct stat st;
    if (::stat(path.c_str(), &st) == 0) {
      *d->mutable_modified_time() = google::protobuf::util::TimeUtil::TimeTToTimestamp(st.st_mtime);
    }
    size_t size = 0;
    for (const auto& s : doc->sections) {
      v1::Section* sec = d->add_sections();
      sec->set_heading(s.heading);
      sec->set_text(s.text);
      sec->set_page(s.page);
      size += s.heading.size() + s.text.size();
    }
    for (const auto& a : o.acl) d->add_acl(a);
    batch_files.push_back(path);
    batch_bytes += size;
    if (batch.documents_size() >= o.batch_documents || batch_bytes >= o.batch_bytes) {
      absl::Status s = flush();
      if (!s.ok()) {
        if (tty) std::fprintf(err, "\n");
        return Report(s, err);
      }
    }
  }
  absl::Status s = flush();
  if (!s.ok()) {
    if (tty) std::fprintf(err, "\n");
    return Report(s, err);
  }
  progress(true);
  std::fprintf(out, "ingested %zu file(s) into %s in %s: %d new, %d updated, %d unchanged, %d failed, %d chunks\n",
               files.size(), o.collection.c_str(), absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Milliseconds(1))).c_str(),
               created, updated, unchanged, failed, chunks);
  return (failed > 0 || !errors.empty()) ? 1 : 0;
}

}  // namespace tessera
