#include "services/retrieval/store/document_store.h"

#include <openssl/evp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <set>
#include <utility>
#include <variant>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/utf8.h"
#include "absl/strings/str_join.h"
#include "common/status.h"

namespace tessera::retrieval {
namespace {

constexpr size_t kMaxMetadataEntries = 64;
constexpr size_t kMaxMetadataKeyBytes = 128;
constexpr size_t kMaxMetadataValueBytes = 4096;
constexpr size_t kMaxPrincipalBytes = 1024;
constexpr size_t kMaxSqlParams = 30000;  // below SQLite's 32766 host parameters
constexpr size_t kMaxQueryTerms = 64;
constexpr size_t kMaxTermBytes = 256;
constexpr size_t kIdBatch = 500;
constexpr int kMaxK = 100000;
constexpr int kMaxDimensions = 65536;
// bm25() column weights: title, heading, text.
constexpr char kBm25[] = "bm25(chunks_fts, 2.0, 1.5, 1.0)";

const char kSchemaV1[] = R"sql(
CREATE TABLE collections (
  name                TEXT PRIMARY KEY NOT NULL,
  description         TEXT NOT NULL DEFAULT '',
  embedding_model     TEXT NOT NULL,
  dimensions          INTEGER NOT NULL CHECK (dimensions > 0),
  chunk_max_tokens    INTEGER NOT NULL,
  chunk_overlap       INTEGER NOT NULL,
  contextualize       INTEGER NOT NULL DEFAULT 1,
  index_factory       TEXT NOT NULL DEFAULT '',
  index_metric        TEXT NOT NULL DEFAULT '',
  index_search_params TEXT NOT NULL DEFAULT '',
  create_time         INTEGER NOT NULL,  -- unix micros
  update_time         INTEGER NOT NULL
) WITHOUT ROWID;

-- AUTOINCREMENT: document ids are public and never reused.
CREATE TABLE documents (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  collection    TEXT NOT NULL REFERENCES collections(name) ON DELETE CASCADE,
  source        TEXT NOT NULL,
  external_id   TEXT NOT NULL,
  title         TEXT NOT NULL DEFAULT '',  -- as indexed in chunks_fts
  uri           TEXT NOT NULL DEFAULT '',
  mime_type     TEXT NOT NULL DEFAULT '',
  modified_time INTEGER,                   -- unix micros; NULL when unknown
  content_hash  TEXT NOT NULL,
  acl_hash      TEXT NOT NULL,
  attrs_hash    TEXT NOT NULL,             -- title, uri, mime type, modified time, metadata
  create_time   INTEGER NOT NULL,
  update_time   INTEGER NOT NULL,
  UNIQUE (collection, source, external_id)
);
CREATE INDEX documents_by_modified ON documents(collection, modified_time);

CREATE TABLE document_acl (
  doc_id    INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
  principal TEXT NOT NULL,  -- normalized: trimmed, ASCII lower case
  PRIMARY KEY (doc_id, principal)
) WITHOUT ROWID;
CREATE INDEX document_acl_by_principal ON document_acl(principal, doc_id);

CREATE TABLE document_metadata (
  doc_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
  key    TEXT NOT NULL,
  value  TEXT NOT NULL,
  PRIMARY KEY (doc_id, key)
) WITHOUT ROWID;
CREATE INDEX document_metadata_by_value ON document_metadata(key, value, doc_id);

-- AUTOINCREMENT: chunk ids are FAISS vector ids and must never be reused. The embedding (float32
-- little-endian) comes last so that reading the other columns does not touch overflow pages.
CREATE TABLE chunks (
  id            INTEGER PRIMARY KEY AUTOINCREMENT,
  doc_id        INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
  chunk_index   INTEGER NOT NULL,
  section_index INTEGER NOT NULL,
  heading       TEXT NOT NULL,
  text          TEXT NOT NULL,
  token_count   INTEGER NOT NULL,
  embedding     BLOB NOT NULL
);
CREATE UNIQUE INDEX chunks_by_doc ON chunks(doc_id, chunk_index);
)sql";

// Contentless (the text lives in chunks and documents); rowid = chunks.id. Rows are removed with
// the 'delete' command and the exact values indexed, which the store reads back from chunks and
// documents before changing them.
const char kSchemaV2[] = R"sql(
CREATE VIRTUAL TABLE chunks_fts USING fts5(
  title, heading, text,
  content = '',
  tokenize = 'unicode61 remove_diacritics 2'
);
)sql";

using SqlValue = std::variant<int64_t, std::string>;

int64_t ToMicros(absl::Time t) { return absl::ToUnixMicros(t); }

std::string Placeholders(size_t n) {
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) out += i == 0 ? "?" : ",?";
  return out;
}

absl::Status BindValues(SqliteStatement& stmt, const std::vector<SqlValue>& values, int first) {
  for (size_t i = 0; i < values.size(); ++i) {
    const int index = first + static_cast<int>(i);
    if (const auto* v = std::get_if<int64_t>(&values[i])) {
      RETURN_IF_ERROR(stmt.Bind(index, *v));
    } else {
      RETURN_IF_ERROR(stmt.Bind(index, absl::string_view(std::get<std::string>(values[i]))));
    }
  }
  return absl::OkStatus();
}

absl::Status BindOptional(SqliteStatement& stmt, int index, const std::optional<int64_t>& v) {
  return v.has_value() ? stmt.Bind(index, *v) : stmt.BindNull(index);
}

std::optional<int64_t> ColumnOptional(const SqliteStatement& stmt, int col) {
  if (stmt.IsNull(col)) return std::nullopt;
  return stmt.ColumnInt(col);
}

// SHA-256 over length-prefixed fields.
class Hasher {
 public:
  Hasher() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Hasher() { EVP_MD_CTX_free(ctx_); }
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  void AddInt(int64_t v) {
    unsigned char buf[8];
    const auto u = static_cast<uint64_t>(v);
    for (int i = 0; i < 8; ++i) buf[i] = static_cast<unsigned char>(u >> (8 * i));
    EVP_DigestUpdate(ctx_, buf, sizeof(buf));
  }
  void Add(absl::string_view s) {
    AddInt(static_cast<int64_t>(s.size()));
    EVP_DigestUpdate(ctx_, s.data(), s.size());
  }
  std::string Hex() {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, md, &len);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; ++i) {
      out += kHex[md[i] >> 4];
      out += kHex[md[i] & 0xF];
    }
    return out;
  }

 private:
  EVP_MD_CTX* ctx_;
};

std::string NormalizeLoosely(absl::string_view p) {
  return absl::AsciiStrToLower(absl::StripAsciiWhitespace(p));
}

absl::StatusOr<std::string> NormalizeAclPrincipal(absl::string_view raw) {
  std::string p = NormalizeLoosely(raw);
  const bool ok_prefix = p == "anyone" || (absl::StartsWith(p, "user:") && p.size() > 5) ||
                         (absl::StartsWith(p, "group:") && p.size() > 6) ||
                         (absl::StartsWith(p, "domain:") && p.size() > 7);
  bool ok_chars = p.size() <= kMaxPrincipalBytes;
  for (char c : p) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7F) ok_chars = false;
  }
  if (!ok_prefix || !ok_chars) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad ACL principal \"", raw.substr(0, 64),
        "\": expected \"user:<email>\", \"group:<email>\", \"domain:<domain>\" or \"anyone\""));
  }
  return p;
}

std::vector<std::string> NormalizeQueryPrincipals(const std::vector<std::string>& principals) {
  std::set<std::string> set;
  for (const std::string& p : principals) {
    std::string n = NormalizeLoosely(p);
    if (!n.empty()) set.insert(std::move(n));
  }
  return {set.begin(), set.end()};
}

std::string EncodeEmbedding(const std::vector<float>& v) {
  std::string out(v.size() * 4, '\0');
  for (size_t i = 0; i < v.size(); ++i) {
    const auto bits = std::bit_cast<uint32_t>(v[i]);
    for (int k = 0; k < 4; ++k) out[4 * i + k] = static_cast<char>((bits >> (8 * k)) & 0xFF);
  }
  return out;
}

void DecodeEmbedding(absl::string_view blob, std::vector<float>* out) {
  out->resize(blob.size() / 4);
  for (size_t i = 0; i < out->size(); ++i) {
    uint32_t bits = 0;
    for (int k = 0; k < 4; ++k) {
      bits |= static_cast<uint32_t>(static_cast<unsigned char>(blob[4 * i + k])) << (8 * k);
    }
    (*out)[i] = std::bit_cast<float>(bits);
  }
}

// Adds the SQL conditions of `filter` on documents `d` (principals already normalized, non-empty).
absl::StatusOr<std::string> FilterSql(const AccessFilter& filter,
                                      const std::vector<std::string>& principals,
                                      std::vector<SqlValue>* params) {
  std::vector<std::string> conds;
  conds.push_back(absl::StrCat("d.collection IN (", Placeholders(filter.collections.size()), ")"));
  for (const auto& c : filter.collections) params->push_back(c);
  conds.push_back(absl::StrCat(
      "EXISTS (SELECT 1 FROM document_acl a WHERE a.doc_id = d.id AND a.principal IN (",
      Placeholders(principals.size()), "))"));
  for (const auto& p : principals) params->push_back(p);
  if (!filter.sources.empty()) {
    conds.push_back(absl::StrCat("d.source IN (", Placeholders(filter.sources.size()), ")"));
    for (const auto& s : filter.sources) params->push_back(s);
  }
  if (filter.modified_after_us.has_value()) {
    conds.push_back("d.modified_time >= ?");
    params->push_back(*filter.modified_after_us);
  }
  if (filter.modified_before_us.has_value()) {
    conds.push_back("d.modified_time < ?");
    params->push_back(*filter.modified_before_us);
  }
  for (const auto& [key, value] : filter.metadata_equals) {
    conds.push_back(
        "EXISTS (SELECT 1 FROM document_metadata m WHERE m.doc_id = d.id AND m.key = ? AND "
        "m.value = ?)");
    params->push_back(key);
    params->push_back(value);
  }
  if (!filter.document_ids.empty()) {
    conds.push_back(absl::StrCat("d.id IN (", Placeholders(filter.document_ids.size()), ")"));
    for (int64_t id : filter.document_ids) params->push_back(id);
  }
  if (params->size() > kMaxSqlParams) {
    return absl::InvalidArgumentError(
        absl::StrCat("filter has ", params->size(), " values; at most ", kMaxSqlParams));
  }
  return absl::StrJoin(conds, " AND ");
}

absl::Status ValidateCollection(const CollectionRecord& c) {
  if (c.name.empty() || c.name.size() > 256) {
    return absl::InvalidArgumentError("collection name must have 1 to 256 bytes");
  }
  if (c.embedding_model.empty()) {
    return absl::InvalidArgumentError("collection needs an embedding model");
  }
  if (c.dimensions < 1 || c.dimensions > kMaxDimensions) {
    return absl::InvalidArgumentError(absl::StrCat("embedding dimensions must be in [1, ",
                                                   kMaxDimensions, "], got ", c.dimensions));
  }
  return ValidateChunkingOptions(c.chunking);
}

constexpr char kCollectionColumns[] =
    "c.name, c.description, c.embedding_model, c.dimensions, c.chunk_max_tokens, "
    "c.chunk_overlap, c.contextualize, c.index_factory, c.index_metric, c.index_search_params, "
    "c.create_time, c.update_time";
// The counts scan the collection's index entries: only for Get and List, not on write paths.
constexpr char kCountColumns[] =
    ", (SELECT count(*) FROM documents d WHERE d.collection = c.name), "
    "(SELECT count(*) FROM documents d JOIN chunks k ON k.doc_id = d.id "
    "WHERE d.collection = c.name)";

CollectionRecord ReadCollection(const SqliteStatement& s) {
  CollectionRecord c;
  c.name = s.ColumnText(0);
  c.description = s.ColumnText(1);
  c.embedding_model = s.ColumnText(2);
  c.dimensions = static_cast<int>(s.ColumnInt(3));
  c.chunking.max_tokens = static_cast<int>(s.ColumnInt(4));
  c.chunking.overlap_tokens = static_cast<int>(s.ColumnInt(5));
  c.contextualize = s.ColumnInt(6) != 0;
  c.index_factory = s.ColumnText(7);
  c.index_metric = s.ColumnText(8);
  c.index_search_params = s.ColumnText(9);
  c.create_time = absl::FromUnixMicros(s.ColumnInt(10));
  c.update_time = absl::FromUnixMicros(s.ColumnInt(11));
  if (s.ColumnCount() > 12) {
    c.document_count = s.ColumnInt(12);
    c.chunk_count = s.ColumnInt(13);
  }
  return c;
}

bool IsFtsSeparator(int32_t cp) {
  if (cp < 0) return true;  // invalid UTF-8
  if (cp < 0x80) {
    return !((cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z'));
  }
  return cp == 0x85 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200B) ||
         cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000 ||
         cp == 0xFEFF;
}


}  // namespace

std::string SanitizeFtsQuery(absl::string_view query) {
  std::vector<std::string> terms;
  absl::flat_hash_set<std::string> seen;
  std::string cur;
  auto end_term = [&] {
    if (!cur.empty() && cur.size() <= kMaxTermBytes && terms.size() < kMaxQueryTerms &&
        seen.insert(absl::AsciiStrToLower(cur)).second) {
      terms.push_back(absl::AsciiStrToLower(cur));
    }
    cur.clear();
  };
  size_t i = 0;
  while (i < query.size()) {
    int32_t cp;
    const size_t len = DecodeUtf8(query, i, &cp);
    if (IsFtsSeparator(cp)) {
      end_term();
    } else {
      cur.append(query.data() + i, len);
    }
    i += len;
  }
  end_term();
  std::vector<std::string> quoted;
  quoted.reserve(terms.size());
  for (const std::string& t : terms) quoted.push_back(absl::StrCat("\"", t, "\""));
  return absl::StrJoin(quoted, " OR ");
}

std::vector<std::string> ExpandPrincipal(absl::string_view user_email,
                                         const std::vector<std::string>& groups) {
  std::set<std::string> out;
  const std::string email = NormalizeLoosely(user_email);
  if (!email.empty()) {
    out.insert(absl::StrCat("user:", email));
    const size_t at = email.rfind('@');
    if (at != std::string::npos && at + 1 < email.size()) {
      out.insert(absl::StrCat("domain:", email.substr(at + 1)));
    }
  }
  for (const std::string& g : groups) {
    const std::string n = NormalizeLoosely(g);
    if (!n.empty()) out.insert(absl::StrCat("group:", n));
  }
  out.insert("anyone");
  return {out.begin(), out.end()};
}

std::string ContentHash(absl::string_view title, const std::vector<Section>& sections) {
  Hasher h;
  h.Add("tessera.content.v1");
  h.Add(title);
  h.AddInt(static_cast<int64_t>(sections.size()));
  for (const Section& s : sections) {
    h.Add(s.heading);
    h.Add(s.text);
    h.AddInt(s.page);
  }
  return h.Hex();
}

struct SqliteDocumentStore::Existing {
  int64_t id = 0;
  std::string content_hash;
  std::string acl_hash;
  std::string attrs_hash;
  std::string title;  // as indexed in chunks_fts
};

struct SqliteDocumentStore::Prepared {
  CollectionRecord collection;
  std::vector<std::string> acl;  // normalized, sorted, unique
  std::string acl_hash;
  std::string attrs_hash;
  std::optional<Existing> existing;
  UpsertPlan plan = UpsertPlan::kNeedsChunks;
};

const std::vector<SqliteMigration>& SqliteDocumentStore::Migrations() {
  static const auto* kMigrations = new std::vector<SqliteMigration>{
      {1, "collections, documents, ACLs, metadata, chunks", kSchemaV1},
      {2, "FTS5 index over chunks", kSchemaV2},
  };
  return *kMigrations;
}

absl::StatusOr<std::unique_ptr<SqliteDocumentStore>> SqliteDocumentStore::Open(
    const Options& options) {
  ASSIGN_OR_RETURN(auto db, SqliteDatabase::Open(options.path, options.sqlite));
  if (!options.sqlite.read_only) {
    RETURN_IF_ERROR(
        Annotate(db->Migrate(Migrations()), absl::StrCat("document store ", options.path)));
  }
  Clock* clock = options.clock != nullptr ? options.clock : RealClock();
  return std::unique_ptr<SqliteDocumentStore>(new SqliteDocumentStore(std::move(db), clock));
}

// ---- Collections ----

absl::StatusOr<CollectionRecord> SqliteDocumentStore::CreateCollection(
    const CollectionRecord& collection) {
  RETURN_IF_ERROR(ValidateCollection(collection));
  absl::MutexLock lock(&mu_);
  const int64_t now = ToMicros(clock_->Now());
  ASSIGN_OR_RETURN(auto stmt,
                   db_->Prepare("INSERT INTO collections (name, description, embedding_model, "
                                "dimensions, chunk_max_tokens, chunk_overlap, contextualize, "
                                "index_factory, index_metric, index_search_params, create_time, "
                                "update_time) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"));
  RETURN_IF_ERROR(stmt.Bind(1, collection.name));
  RETURN_IF_ERROR(stmt.Bind(2, collection.description));
  RETURN_IF_ERROR(stmt.Bind(3, collection.embedding_model));
  RETURN_IF_ERROR(stmt.Bind(4, collection.dimensions));
  RETURN_IF_ERROR(stmt.Bind(5, collection.chunking.max_tokens));
  RETURN_IF_ERROR(stmt.Bind(6, collection.chunking.overlap_tokens));
  RETURN_IF_ERROR(stmt.Bind(7, collection.contextualize ? 1 : 0));
  RETURN_IF_ERROR(stmt.Bind(8, collection.index_factory));
  RETURN_IF_ERROR(stmt.Bind(9, collection.index_metric));
  RETURN_IF_ERROR(stmt.Bind(10, collection.index_search_params));
  RETURN_IF_ERROR(stmt.Bind(11, now));
  RETURN_IF_ERROR(stmt.Bind(12, now));
  absl::Status s = stmt.Run();
  if (absl::IsAlreadyExists(s)) {
    return absl::AlreadyExistsError(
        absl::StrCat("collection \"", collection.name, "\" already exists"));
  }
  RETURN_IF_ERROR(s);
  return GetCollectionLocked(collection.name, /*with_counts=*/true);
}

absl::StatusOr<CollectionRecord> SqliteDocumentStore::GetCollectionLocked(absl::string_view name,
                                                                          bool with_counts) {
  ASSIGN_OR_RETURN(auto stmt, db_->Prepare(absl::StrCat("SELECT ", kCollectionColumns,
                                                        with_counts ? kCountColumns : "",
                                                        " FROM collections c WHERE c.name = ?")));
  RETURN_IF_ERROR(stmt.Bind(1, name));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return absl::NotFoundError(absl::StrCat("collection \"", name, "\" not found"));
  return ReadCollection(stmt);
}

absl::StatusOr<CollectionRecord> SqliteDocumentStore::GetCollection(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  return GetCollectionLocked(name, /*with_counts=*/true);
}

absl::StatusOr<std::vector<CollectionRecord>> SqliteDocumentStore::ListCollections() {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto stmt,
                   db_->Prepare(absl::StrCat("SELECT ", kCollectionColumns, kCountColumns,
                                             " FROM collections c ORDER BY c.name")));
  std::vector<CollectionRecord> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    out.push_back(ReadCollection(stmt));
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> SqliteDocumentStore::DeleteCollection(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto txn, SqliteTransaction::Begin(db_.get()));
  RETURN_IF_ERROR(GetCollectionLocked(name).status());
  // Set-based, so that dropping a large collection is a handful of statements.
  std::vector<int64_t> removed;
  {
    ASSIGN_OR_RETURN(auto stmt, db_->Prepare("SELECT c.id FROM documents d JOIN chunks c ON "
                                             "c.doc_id = d.id WHERE d.collection = ? "
                                             "ORDER BY c.id"));
    RETURN_IF_ERROR(stmt.Bind(1, name));
    while (true) {
      ASSIGN_OR_RETURN(bool row, stmt.Step());
      if (!row) break;
      removed.push_back(stmt.ColumnInt(0));
    }
  }
  for (const char* sql : {
           "INSERT INTO chunks_fts (chunks_fts, rowid, title, heading, text) "
           "SELECT 'delete', c.id, d.title, c.heading, c.text FROM documents d "
           "JOIN chunks c ON c.doc_id = d.id WHERE d.collection = ?1",
           "DELETE FROM chunks WHERE doc_id IN (SELECT id FROM documents WHERE collection = ?1)",
           "DELETE FROM document_acl WHERE doc_id IN "
           "(SELECT id FROM documents WHERE collection = ?1)",
           "DELETE FROM document_metadata WHERE doc_id IN "
           "(SELECT id FROM documents WHERE collection = ?1)",
           "DELETE FROM documents WHERE collection = ?1",
       }) {
    ASSIGN_OR_RETURN(auto stmt, db_->Prepare(sql));
    RETURN_IF_ERROR(stmt.Bind(1, name));
    RETURN_IF_ERROR(stmt.Run());
  }
  ASSIGN_OR_RETURN(auto del, db_->Prepare("DELETE FROM collections WHERE name = ?"));
  RETURN_IF_ERROR(del.Bind(1, name));
  RETURN_IF_ERROR(del.Run());
  RETURN_IF_ERROR(txn->Commit());
  return removed;
}

absl::Status SqliteDocumentStore::TouchCollectionLocked(absl::string_view name) {
  ASSIGN_OR_RETURN(auto stmt,
                   db_->Prepare("UPDATE collections SET update_time = ? WHERE name = ?"));
  RETURN_IF_ERROR(stmt.Bind(1, ToMicros(clock_->Now())));
  RETURN_IF_ERROR(stmt.Bind(2, name));
  return stmt.Run();
}

// ---- Documents ----

absl::StatusOr<SqliteDocumentStore::Prepared> SqliteDocumentStore::PrepareLocked(
    const DocumentInput& doc) {
  if (doc.source.empty() || doc.source.size() > 256) {
    return absl::InvalidArgumentError("document source must have 1 to 256 bytes");
  }
  if (doc.external_id.empty() || doc.external_id.size() > 4096) {
    return absl::InvalidArgumentError("document external_id must have 1 to 4096 bytes");
  }
  if (doc.content_hash.empty() || doc.content_hash.size() > 256) {
    return absl::InvalidArgumentError("document content_hash must have 1 to 256 bytes");
  }
  if (doc.metadata.size() > kMaxMetadataEntries) {
    return absl::InvalidArgumentError(absl::StrCat(
        "document has ", doc.metadata.size(), " metadata entries; at most ", kMaxMetadataEntries));
  }
  for (const auto& [key, value] : doc.metadata) {
    if (key.empty() || key.size() > kMaxMetadataKeyBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("metadata keys must have 1 to ", kMaxMetadataKeyBytes, " bytes"));
    }
    if (value.size() > kMaxMetadataValueBytes) {
      return absl::InvalidArgumentError(absl::StrCat("metadata value of \"", key, "\" exceeds ",
                                                     kMaxMetadataValueBytes, " bytes"));
    }
  }
  Prepared p;
  std::set<std::string> acl;
  for (const std::string& raw : doc.acl) {
    ASSIGN_OR_RETURN(std::string principal, NormalizeAclPrincipal(raw));
    acl.insert(std::move(principal));
  }
  p.acl.assign(acl.begin(), acl.end());
  {
    Hasher h;
    h.Add("tessera.acl.v1");
    h.AddInt(static_cast<int64_t>(p.acl.size()));
    for (const std::string& a : p.acl) h.Add(a);
    p.acl_hash = h.Hex();
  }
  {
    Hasher h;
    h.Add("tessera.attrs.v1");
    h.Add(doc.title);
    h.Add(doc.uri);
    h.Add(doc.mime_type);
    h.AddInt(doc.modified_time_us.has_value() ? 1 : 0);
    h.AddInt(doc.modified_time_us.value_or(0));
    h.AddInt(static_cast<int64_t>(doc.metadata.size()));
    for (const auto& [key, value] : doc.metadata) {
      h.Add(key);
      h.Add(value);
    }
    p.attrs_hash = h.Hex();
  }
  ASSIGN_OR_RETURN(p.collection, GetCollectionLocked(doc.collection));
  ASSIGN_OR_RETURN(auto stmt,
                   db_->Prepare("SELECT id, content_hash, acl_hash, attrs_hash, "
                                "title FROM documents WHERE collection = ? AND source = ? "
                                "AND external_id = ?"));
  RETURN_IF_ERROR(stmt.Bind(1, doc.collection));
  RETURN_IF_ERROR(stmt.Bind(2, doc.source));
  RETURN_IF_ERROR(stmt.Bind(3, doc.external_id));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) {
    p.plan = UpsertPlan::kNeedsChunks;
    return p;
  }
  Existing e;
  e.id = stmt.ColumnInt(0);
  e.content_hash = stmt.ColumnText(1);
  e.acl_hash = stmt.ColumnText(2);
  e.attrs_hash = stmt.ColumnText(3);
  e.title = stmt.ColumnText(4);
  if (e.content_hash != doc.content_hash) {
    p.plan = UpsertPlan::kNeedsChunks;
  } else if (e.acl_hash == p.acl_hash && e.attrs_hash == p.attrs_hash) {
    p.plan = UpsertPlan::kUnchanged;
  } else {
    p.plan = UpsertPlan::kMetadataOnly;
  }
  p.existing = std::move(e);
  return p;
}

absl::StatusOr<UpsertPlan> SqliteDocumentStore::PrepareUpsert(const DocumentInput& doc) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(Prepared p, PrepareLocked(doc));
  return p.plan;
}

namespace {

// Removes the FTS rows of a document's chunks, with the values they were indexed with.
absl::Status DeleteFtsRows(SqliteDatabase* db, int64_t doc_id) {
  ASSIGN_OR_RETURN(auto stmt,
                   db->Prepare("INSERT INTO chunks_fts (chunks_fts, rowid, title, heading, text) "
                               "SELECT 'delete', c.id, d.title, c.heading, c.text "
                               "FROM chunks c JOIN documents d ON d.id = c.doc_id "
                               "WHERE c.doc_id = ?"));
  RETURN_IF_ERROR(stmt.Bind(1, doc_id));
  return stmt.Run();
}

absl::Status InsertFtsRows(SqliteDatabase* db, int64_t doc_id) {
  ASSIGN_OR_RETURN(auto stmt, db->Prepare("INSERT INTO chunks_fts (rowid, title, heading, text) "
                                          "SELECT c.id, d.title, c.heading, c.text "
                                          "FROM chunks c JOIN documents d ON d.id = c.doc_id "
                                          "WHERE c.doc_id = ?"));
  RETURN_IF_ERROR(stmt.Bind(1, doc_id));
  return stmt.Run();
}

absl::StatusOr<std::vector<int64_t>> ChunkIdsOf(SqliteDatabase* db, int64_t doc_id) {
  ASSIGN_OR_RETURN(auto stmt, db->Prepare("SELECT id FROM chunks WHERE doc_id = ? ORDER BY id"));
  RETURN_IF_ERROR(stmt.Bind(1, doc_id));
  std::vector<int64_t> ids;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    ids.push_back(stmt.ColumnInt(0));
  }
  return ids;
}

absl::Status ReplaceAclAndMetadata(SqliteDatabase* db, int64_t doc_id,
                                   const std::vector<std::string>& acl,
                                   const std::map<std::string, std::string>& metadata) {
  for (const char* sql : {"DELETE FROM document_acl WHERE doc_id = ?",
                          "DELETE FROM document_metadata WHERE doc_id = ?"}) {
    ASSIGN_OR_RETURN(auto del, db->Prepare(sql));
    RETURN_IF_ERROR(del.Bind(1, doc_id));
    RETURN_IF_ERROR(del.Run());
  }
  ASSIGN_OR_RETURN(auto ins_acl,
                   db->Prepare("INSERT INTO document_acl (doc_id, principal) VALUES (?, ?)"));
  for (const std::string& a : acl) {
    RETURN_IF_ERROR(ins_acl.Bind(1, doc_id));
    RETURN_IF_ERROR(ins_acl.Bind(2, a));
    RETURN_IF_ERROR(ins_acl.Run());
    RETURN_IF_ERROR(ins_acl.Reset());
  }
  ASSIGN_OR_RETURN(auto ins_meta, db->Prepare("INSERT INTO document_metadata (doc_id, key, value) "
                                              "VALUES (?, ?, ?)"));
  for (const auto& [key, value] : metadata) {
    RETURN_IF_ERROR(ins_meta.Bind(1, doc_id));
    RETURN_IF_ERROR(ins_meta.Bind(2, key));
    RETURN_IF_ERROR(ins_meta.Bind(3, value));
    RETURN_IF_ERROR(ins_meta.Run());
    RETURN_IF_ERROR(ins_meta.Reset());
  }
  return absl::OkStatus();
}

absl::StatusOr<int> ChunkCount(SqliteDatabase* db, int64_t doc_id) {
  ASSIGN_OR_RETURN(auto stmt, db->Prepare("SELECT count(*) FROM chunks WHERE doc_id = ?"));
  RETURN_IF_ERROR(stmt.Bind(1, doc_id));
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  return row ? static_cast<int>(stmt.ColumnInt(0)) : 0;
}

}  // namespace

absl::StatusOr<UpsertResult> SqliteDocumentStore::UpsertDocument(
    const DocumentInput& doc, const std::vector<ChunkText>& chunks,
    const std::vector<std::vector<float>>& embeddings) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto txn, SqliteTransaction::Begin(db_.get()));
  ASSIGN_OR_RETURN(UpsertResult result, UpsertLocked(doc, chunks, embeddings));
  if (result.status == UpsertStatus::kUnchanged) return result;  // nothing written: roll back
  RETURN_IF_ERROR(txn->Commit());
  return result;
}

absl::StatusOr<std::vector<absl::StatusOr<UpsertResult>>> SqliteDocumentStore::UpsertDocuments(
    const std::vector<UpsertInput>& batch) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto txn, SqliteTransaction::Begin(db_.get()));
  std::vector<absl::StatusOr<UpsertResult>> results;
  results.reserve(batch.size());
  for (const UpsertInput& in : batch) {
    // Each document in a savepoint: a failure undoes that document only.
    RETURN_IF_ERROR(db_->Exec("SAVEPOINT upsert_doc"));
    absl::StatusOr<UpsertResult> r = UpsertLocked(in.doc, in.chunks, in.embeddings);
    if (!r.ok()) RETURN_IF_ERROR(db_->Exec("ROLLBACK TO upsert_doc"));
    RETURN_IF_ERROR(db_->Exec("RELEASE upsert_doc"));
    results.push_back(std::move(r));
  }
  RETURN_IF_ERROR(txn->Commit());
  return results;
}

absl::StatusOr<UpsertResult> SqliteDocumentStore::UpsertLocked(
    const DocumentInput& doc, const std::vector<ChunkText>& chunks,
    const std::vector<std::vector<float>>& embeddings) {
  if (chunks.size() != embeddings.size()) {
    return absl::InvalidArgumentError(absl::StrCat("document \"", doc.external_id, "\" has ",
                                                   chunks.size(), " chunks but ", embeddings.size(),
                                                   " embeddings"));
  }
  ASSIGN_OR_RETURN(Prepared p, PrepareLocked(doc));
  for (size_t i = 0; i < embeddings.size(); ++i) {
    if (embeddings[i].size() != static_cast<size_t>(p.collection.dimensions)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "embedding ", i, " of document \"", doc.external_id, "\" has ", embeddings[i].size(),
          " dimensions; collection \"", doc.collection, "\" has ", p.collection.dimensions));
    }
    for (float f : embeddings[i]) {
      if (!std::isfinite(f)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "embedding ", i, " of document \"", doc.external_id, "\" has a non-finite value"));
      }
    }
  }

  UpsertResult result;
  result.status = UpsertStatus::kUnchanged;
  if (p.plan == UpsertPlan::kUnchanged) {
    result.doc_id = p.existing->id;
    ASSIGN_OR_RETURN(result.chunk_count, ChunkCount(db_.get(), result.doc_id));
    return result;  // nothing written
  }
  const int64_t now = ToMicros(clock_->Now());
  const bool content_changed = p.plan == UpsertPlan::kNeedsChunks;

  if (p.existing.has_value()) {
    result.doc_id = p.existing->id;
    result.acl_changed = p.existing->acl_hash != p.acl_hash;
    // The FTS rows hold the title; remove them while the old title is still in documents.
    const bool reindex = !content_changed && p.existing->title != doc.title;
    if (content_changed) {
      ASSIGN_OR_RETURN(result.removed_chunk_ids, ChunkIdsOf(db_.get(), result.doc_id));
      RETURN_IF_ERROR(DeleteFtsRows(db_.get(), result.doc_id));
      ASSIGN_OR_RETURN(auto del, db_->Prepare("DELETE FROM chunks WHERE doc_id = ?"));
      RETURN_IF_ERROR(del.Bind(1, result.doc_id));
      RETURN_IF_ERROR(del.Run());
    } else if (reindex) {
      RETURN_IF_ERROR(DeleteFtsRows(db_.get(), result.doc_id));
    }
    ASSIGN_OR_RETURN(auto upd,
                     db_->Prepare("UPDATE documents SET title = ?, uri = ?, mime_type = ?, "
                                  "modified_time = ?, content_hash = ?, acl_hash = ?, "
                                  "attrs_hash = ?, update_time = ? WHERE id = ?"));
    RETURN_IF_ERROR(upd.Bind(1, doc.title));
    RETURN_IF_ERROR(upd.Bind(2, doc.uri));
    RETURN_IF_ERROR(upd.Bind(3, doc.mime_type));
    RETURN_IF_ERROR(BindOptional(upd, 4, doc.modified_time_us));
    RETURN_IF_ERROR(upd.Bind(5, doc.content_hash));
    RETURN_IF_ERROR(upd.Bind(6, p.acl_hash));
    RETURN_IF_ERROR(upd.Bind(7, p.attrs_hash));
    RETURN_IF_ERROR(upd.Bind(8, now));
    RETURN_IF_ERROR(upd.Bind(9, result.doc_id));
    RETURN_IF_ERROR(upd.Run());
    result.status = content_changed ? UpsertStatus::kUpdated : UpsertStatus::kMetadataUpdated;
    if (reindex) {  // the kept chunks, under the new title
      RETURN_IF_ERROR(InsertFtsRows(db_.get(), result.doc_id));
    }
  } else {
    ASSIGN_OR_RETURN(auto ins,
                     db_->Prepare("INSERT INTO documents (collection, source, external_id, title, "
                                  "uri, mime_type, modified_time, content_hash, acl_hash, "
                                  "attrs_hash, create_time, update_time) "
                                  "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"));
    RETURN_IF_ERROR(ins.Bind(1, doc.collection));
    RETURN_IF_ERROR(ins.Bind(2, doc.source));
    RETURN_IF_ERROR(ins.Bind(3, doc.external_id));
    RETURN_IF_ERROR(ins.Bind(4, doc.title));
    RETURN_IF_ERROR(ins.Bind(5, doc.uri));
    RETURN_IF_ERROR(ins.Bind(6, doc.mime_type));
    RETURN_IF_ERROR(BindOptional(ins, 7, doc.modified_time_us));
    RETURN_IF_ERROR(ins.Bind(8, doc.content_hash));
    RETURN_IF_ERROR(ins.Bind(9, p.acl_hash));
    RETURN_IF_ERROR(ins.Bind(10, p.attrs_hash));
    RETURN_IF_ERROR(ins.Bind(11, now));
    RETURN_IF_ERROR(ins.Bind(12, now));
    RETURN_IF_ERROR(ins.Run());
    result.doc_id = db_->LastInsertRowId();
    result.status = UpsertStatus::kCreated;
  }
  RETURN_IF_ERROR(ReplaceAclAndMetadata(db_.get(), result.doc_id, p.acl, doc.metadata));

  if (content_changed) {
    ASSIGN_OR_RETURN(auto ins_chunk,
                     db_->Prepare("INSERT INTO chunks (doc_id, chunk_index, section_index, "
                                  "heading, text, token_count, embedding) "
                                  "VALUES (?,?,?,?,?,?,?)"));
    ASSIGN_OR_RETURN(auto ins_fts, db_->Prepare("INSERT INTO chunks_fts (rowid, title, heading, "
                                                "text) VALUES (?,?,?,?)"));
    for (size_t i = 0; i < chunks.size(); ++i) {
      const ChunkText& c = chunks[i];
      RETURN_IF_ERROR(ins_chunk.Bind(1, result.doc_id));
      RETURN_IF_ERROR(ins_chunk.Bind(2, static_cast<int64_t>(i)));
      RETURN_IF_ERROR(ins_chunk.Bind(3, c.section_index));
      RETURN_IF_ERROR(ins_chunk.Bind(4, c.heading));
      RETURN_IF_ERROR(ins_chunk.Bind(5, c.text));
      RETURN_IF_ERROR(ins_chunk.Bind(6, c.token_count));
      RETURN_IF_ERROR(ins_chunk.BindBlob(7, EncodeEmbedding(embeddings[i])));
      RETURN_IF_ERROR(ins_chunk.Run());
      RETURN_IF_ERROR(ins_chunk.Reset());
      const int64_t id = db_->LastInsertRowId();
      result.added_chunk_ids.push_back(id);
      RETURN_IF_ERROR(ins_fts.Bind(1, id));
      RETURN_IF_ERROR(ins_fts.Bind(2, doc.title));
      RETURN_IF_ERROR(ins_fts.Bind(3, c.heading));
      RETURN_IF_ERROR(ins_fts.Bind(4, c.text));
      RETURN_IF_ERROR(ins_fts.Run());
      RETURN_IF_ERROR(ins_fts.Reset());
    }
  }
  RETURN_IF_ERROR(TouchCollectionLocked(doc.collection));
  ASSIGN_OR_RETURN(result.chunk_count, ChunkCount(db_.get(), result.doc_id));
  return result;
}

absl::Status SqliteDocumentStore::DeleteDocumentsLocked(const std::vector<int64_t>& doc_ids,
                                                        std::vector<int64_t>* removed_chunk_ids) {
  for (int64_t id : doc_ids) {
    ASSIGN_OR_RETURN(std::vector<int64_t> chunk_ids, ChunkIdsOf(db_.get(), id));
    removed_chunk_ids->insert(removed_chunk_ids->end(), chunk_ids.begin(), chunk_ids.end());
    RETURN_IF_ERROR(DeleteFtsRows(db_.get(), id));
    for (const char* sql :
         {"DELETE FROM chunks WHERE doc_id = ?", "DELETE FROM document_acl WHERE doc_id = ?",
          "DELETE FROM document_metadata WHERE doc_id = ?", "DELETE FROM documents WHERE id = ?"}) {
      ASSIGN_OR_RETURN(auto stmt, db_->Prepare(sql));
      RETURN_IF_ERROR(stmt.Bind(1, id));
      RETURN_IF_ERROR(stmt.Run());
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<DeleteResult> SqliteDocumentStore::DeleteDocuments(
    absl::string_view collection, const std::vector<int64_t>& doc_ids) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto txn, SqliteTransaction::Begin(db_.get()));
  RETURN_IF_ERROR(GetCollectionLocked(collection).status());
  ASSIGN_OR_RETURN(auto find,
                   db_->Prepare("SELECT 1 FROM documents WHERE id = ? AND collection = ?"));
  std::vector<int64_t> found;
  for (int64_t id : std::set<int64_t>(doc_ids.begin(), doc_ids.end())) {
    RETURN_IF_ERROR(find.Bind(1, id));
    RETURN_IF_ERROR(find.Bind(2, collection));
    ASSIGN_OR_RETURN(bool row, find.Step());
    RETURN_IF_ERROR(find.Reset());
    if (row) found.push_back(id);
  }
  DeleteResult result;
  RETURN_IF_ERROR(DeleteDocumentsLocked(found, &result.removed_chunk_ids));
  result.deleted_count = static_cast<int>(found.size());
  if (!found.empty()) {
    RETURN_IF_ERROR(TouchCollectionLocked(collection));
    RETURN_IF_ERROR(txn->Commit());
  }
  std::sort(result.removed_chunk_ids.begin(), result.removed_chunk_ids.end());
  return result;
}

absl::StatusOr<DeleteResult> SqliteDocumentStore::DeleteDocumentsByExternalId(
    absl::string_view collection, absl::string_view source,
    const std::vector<std::string>& external_ids) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(auto txn, SqliteTransaction::Begin(db_.get()));
  RETURN_IF_ERROR(GetCollectionLocked(collection).status());
  ASSIGN_OR_RETURN(auto find, db_->Prepare("SELECT id FROM documents WHERE collection = ? AND "
                                           "source = ? AND external_id = ?"));
  std::set<int64_t> found;
  for (const std::string& external_id : external_ids) {
    RETURN_IF_ERROR(find.Bind(1, collection));
    RETURN_IF_ERROR(find.Bind(2, source));
    RETURN_IF_ERROR(find.Bind(3, external_id));
    ASSIGN_OR_RETURN(bool row, find.Step());
    if (row) found.insert(find.ColumnInt(0));
    RETURN_IF_ERROR(find.Reset());
  }
  DeleteResult result;
  const std::vector<int64_t> ids(found.begin(), found.end());
  RETURN_IF_ERROR(DeleteDocumentsLocked(ids, &result.removed_chunk_ids));
  result.deleted_count = static_cast<int>(ids.size());
  if (!ids.empty()) {
    RETURN_IF_ERROR(TouchCollectionLocked(collection));
    RETURN_IF_ERROR(txn->Commit());
  }
  std::sort(result.removed_chunk_ids.begin(), result.removed_chunk_ids.end());
  return result;
}

// ---- Reads ----

absl::StatusOr<std::vector<ChunkRecord>> SqliteDocumentStore::ReadChunksLocked(
    absl::string_view where_sql, const std::vector<int64_t>& params) {
  ASSIGN_OR_RETURN(
      auto stmt,
      db_->Prepare(absl::StrCat(
          "SELECT c.id, c.doc_id, d.collection, d.source, d.external_id, d.title, d.uri, "
          "d.modified_time, c.chunk_index, c.section_index, c.heading, c.text, c.token_count "
          "FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE ",
          where_sql)));
  for (size_t i = 0; i < params.size(); ++i) {
    RETURN_IF_ERROR(stmt.Bind(static_cast<int>(i) + 1, params[i]));
  }
  std::vector<ChunkRecord> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    ChunkRecord r;
    r.chunk_id = stmt.ColumnInt(0);
    r.doc_id = stmt.ColumnInt(1);
    r.collection = stmt.ColumnText(2);
    r.source = stmt.ColumnText(3);
    r.external_id = stmt.ColumnText(4);
    r.title = stmt.ColumnText(5);
    r.uri = stmt.ColumnText(6);
    r.modified_time_us = ColumnOptional(stmt, 7);
    r.chunk_index = static_cast<int>(stmt.ColumnInt(8));
    r.section_index = static_cast<int>(stmt.ColumnInt(9));
    r.heading = stmt.ColumnText(10);
    r.text = stmt.ColumnText(11);
    r.token_count = static_cast<int>(stmt.ColumnInt(12));
    out.push_back(std::move(r));
  }
  // Metadata of the documents involved, one query per batch of documents.
  std::vector<int64_t> doc_ids;
  for (const ChunkRecord& r : out) doc_ids.push_back(r.doc_id);
  std::sort(doc_ids.begin(), doc_ids.end());
  doc_ids.erase(std::unique(doc_ids.begin(), doc_ids.end()), doc_ids.end());
  absl::flat_hash_map<int64_t, std::map<std::string, std::string>> metadata;
  for (size_t b = 0; b < doc_ids.size(); b += kIdBatch) {
    const size_t n = std::min(kIdBatch, doc_ids.size() - b);
    ASSIGN_OR_RETURN(auto meta,
                     db_->Prepare(absl::StrCat("SELECT doc_id, key, value FROM document_metadata "
                                               "WHERE doc_id IN (",
                                               Placeholders(n), ")")));
    for (size_t i = 0; i < n; ++i) {
      RETURN_IF_ERROR(meta.Bind(static_cast<int>(i) + 1, doc_ids[b + i]));
    }
    while (true) {
      ASSIGN_OR_RETURN(bool row, meta.Step());
      if (!row) break;
      metadata[meta.ColumnInt(0)][meta.ColumnText(1)] = meta.ColumnText(2);
    }
  }
  for (ChunkRecord& r : out) {
    auto it = metadata.find(r.doc_id);
    if (it != metadata.end()) r.metadata = it->second;
  }
  return out;
}

absl::StatusOr<std::vector<ChunkRecord>> SqliteDocumentStore::GetChunks(
    const std::vector<int64_t>& chunk_ids) {
  absl::MutexLock lock(&mu_);
  std::vector<int64_t> unique;
  absl::flat_hash_set<int64_t> seen;
  for (int64_t id : chunk_ids) {
    if (seen.insert(id).second) unique.push_back(id);
  }
  absl::flat_hash_map<int64_t, ChunkRecord> by_id;
  for (size_t b = 0; b < unique.size(); b += kIdBatch) {
    const size_t n = std::min(kIdBatch, unique.size() - b);
    std::vector<int64_t> batch(unique.begin() + b, unique.begin() + b + n);
    ASSIGN_OR_RETURN(auto rows,
                     ReadChunksLocked(absl::StrCat("c.id IN (", Placeholders(n), ")"), batch));
    for (ChunkRecord& r : rows) by_id.emplace(r.chunk_id, std::move(r));
  }
  std::vector<ChunkRecord> out;
  out.reserve(by_id.size());
  for (int64_t id : unique) {
    auto it = by_id.find(id);
    if (it != by_id.end()) out.push_back(std::move(it->second));
  }
  return out;
}

absl::StatusOr<StoredDocument> SqliteDocumentStore::GetDocument(
    absl::string_view collection, int64_t doc_id, const std::vector<std::string>& principals) {
  const absl::Status not_found = absl::NotFoundError(
      absl::StrCat("document ", doc_id, " not found in collection \"", collection, "\""));
  const std::vector<std::string> normalized = NormalizeQueryPrincipals(principals);
  if (normalized.empty()) return not_found;
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(
      auto stmt,
      db_->Prepare(absl::StrCat(
          "SELECT d.source, d.external_id, d.title, d.uri, d.mime_type, d.modified_time, "
          "d.content_hash, d.create_time, d.update_time FROM documents d "
          "WHERE d.id = ? AND d.collection = ? AND EXISTS (SELECT 1 FROM document_acl a "
          "WHERE a.doc_id = d.id AND a.principal IN (",
          Placeholders(normalized.size()), "))")));
  RETURN_IF_ERROR(stmt.Bind(1, doc_id));
  RETURN_IF_ERROR(stmt.Bind(2, collection));
  for (size_t i = 0; i < normalized.size(); ++i) {
    RETURN_IF_ERROR(stmt.Bind(static_cast<int>(i) + 3, normalized[i]));
  }
  ASSIGN_OR_RETURN(bool row, stmt.Step());
  if (!row) return not_found;
  StoredDocument doc;
  doc.doc_id = doc_id;
  doc.collection = std::string(collection);
  doc.source = stmt.ColumnText(0);
  doc.external_id = stmt.ColumnText(1);
  doc.title = stmt.ColumnText(2);
  doc.uri = stmt.ColumnText(3);
  doc.mime_type = stmt.ColumnText(4);
  doc.modified_time_us = ColumnOptional(stmt, 5);
  doc.content_hash = stmt.ColumnText(6);
  doc.create_time = absl::FromUnixMicros(stmt.ColumnInt(7));
  doc.update_time = absl::FromUnixMicros(stmt.ColumnInt(8));
  {
    ASSIGN_OR_RETURN(auto acl, db_->Prepare("SELECT principal FROM document_acl WHERE doc_id = ? "
                                            "ORDER BY principal"));
    RETURN_IF_ERROR(acl.Bind(1, doc_id));
    while (true) {
      ASSIGN_OR_RETURN(bool r, acl.Step());
      if (!r) break;
      doc.acl.push_back(acl.ColumnText(0));
    }
  }
  {
    ASSIGN_OR_RETURN(auto meta,
                     db_->Prepare("SELECT key, value FROM document_metadata WHERE doc_id = ?"));
    RETURN_IF_ERROR(meta.Bind(1, doc_id));
    while (true) {
      ASSIGN_OR_RETURN(bool r, meta.Step());
      if (!r) break;
      doc.metadata[meta.ColumnText(0)] = meta.ColumnText(1);
    }
  }
  ASSIGN_OR_RETURN(doc.chunks, ReadChunksLocked("c.doc_id = ? ORDER BY c.chunk_index", {doc_id}));
  return doc;
}

absl::Status SqliteDocumentStore::CheckCollectionsLocked(const AccessFilter& filter) {
  if (filter.collections.empty()) {
    return absl::InvalidArgumentError("a search needs at least one collection");
  }
  for (const std::string& c : filter.collections) {
    ASSIGN_OR_RETURN(auto stmt, db_->Prepare("SELECT 1 FROM collections WHERE name = ?"));
    RETURN_IF_ERROR(stmt.Bind(1, c));
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) return absl::NotFoundError(absl::StrCat("collection \"", c, "\" not found"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Bm25Hit>> SqliteDocumentStore::Bm25Search(absl::string_view query,
                                                                     const AccessFilter& filter,
                                                                     int k) {
  if (k < 0 || k > kMaxK) {
    return absl::InvalidArgumentError(absl::StrCat("k must be in [0, ", kMaxK, "], got ", k));
  }
  const std::vector<std::string> principals = NormalizeQueryPrincipals(filter.principals);
  const std::string fts = SanitizeFtsQuery(query);
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckCollectionsLocked(filter));
  std::vector<Bm25Hit> hits;
  if (fts.empty() || k == 0 || principals.empty()) return hits;
  std::vector<SqlValue> params;
  params.push_back(fts);
  ASSIGN_OR_RETURN(std::string where, FilterSql(filter, principals, &params));
  params.push_back(int64_t{k});
  // CROSS JOIN fixes the loop order: the FTS match drives, each match is checked against the
  // document's filters and ACL through primary keys.
  ASSIGN_OR_RETURN(auto stmt,
                   db_->Prepare(absl::StrCat("SELECT c.id, ", kBm25,
                                             " AS score FROM chunks_fts "
                                             "CROSS JOIN chunks c ON c.id = chunks_fts.rowid "
                                             "CROSS JOIN documents d ON d.id = c.doc_id "
                                             "WHERE chunks_fts MATCH ? AND ",
                                             where, " ORDER BY score, c.id LIMIT ?")));
  RETURN_IF_ERROR(BindValues(stmt, params, 1));
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    hits.push_back({stmt.ColumnInt(0), -stmt.ColumnDouble(1)});
  }
  return hits;
}

absl::StatusOr<std::vector<int64_t>> SqliteDocumentStore::AllowedChunkIds(
    const AccessFilter& filter) {
  const std::vector<std::string> principals = NormalizeQueryPrincipals(filter.principals);
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(CheckCollectionsLocked(filter));
  std::vector<int64_t> ids;
  if (principals.empty()) return ids;
  std::vector<SqlValue> params;
  ASSIGN_OR_RETURN(std::string where, FilterSql(filter, principals, &params));
  ASSIGN_OR_RETURN(auto stmt, db_->Prepare(absl::StrCat(
                                  "SELECT c.id FROM documents d JOIN chunks c ON c.doc_id = d.id "
                                  "WHERE ",
                                  where, " ORDER BY c.id")));
  RETURN_IF_ERROR(BindValues(stmt, params, 1));
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    ids.push_back(stmt.ColumnInt(0));
  }
  return ids;
}

absl::Status SqliteDocumentStore::ForEachEmbedding(
    absl::string_view collection,
    absl::FunctionRef<absl::Status(int64_t chunk_id, const float* vector, int dims)> fn) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(CollectionRecord c, GetCollectionLocked(collection));
  ASSIGN_OR_RETURN(auto stmt, db_->Prepare("SELECT c.id, c.embedding FROM documents d "
                                           "JOIN chunks c ON c.doc_id = d.id "
                                           "WHERE d.collection = ? ORDER BY c.id"));
  RETURN_IF_ERROR(stmt.Bind(1, collection));
  std::vector<float> buf;
  while (true) {
    ASSIGN_OR_RETURN(bool row, stmt.Step());
    if (!row) break;
    const std::string blob = stmt.ColumnBlob(1);
    if (blob.size() != static_cast<size_t>(c.dimensions) * 4) {
      return absl::DataLossError(absl::StrCat("chunk ", stmt.ColumnInt(0), " has an embedding of ",
                                              blob.size(), " bytes; expected ", c.dimensions * 4));
    }
    DecodeEmbedding(blob, &buf);
    RETURN_IF_ERROR(fn(stmt.ColumnInt(0), buf.data(), c.dimensions));
  }
  return absl::OkStatus();
}

}  // namespace tessera::retrieval
