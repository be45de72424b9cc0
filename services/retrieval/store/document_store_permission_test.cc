// Randomised permission test: many users, groups, a domain and "anyone"; documents with random
// ACLs, sources, metadata and texts. Every search and every allowed-id set is compared with a
// brute-force computation over an independent copy of the data, before and after random ACL
// changes, content updates and deletions.
#include <algorithm>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "services/retrieval/store/document_store.h"

namespace tessera::retrieval {
namespace {

constexpr int kUsers = 30;
constexpr int kGroups = 8;
constexpr int kDocs = 500;
constexpr int kDims = 2;

const std::vector<std::string>& Vocab() {
  static const auto* v = new std::vector<std::string>{
      "budget",   "invoice", "payroll", "roadmap", "launch", "hiring",  "travel",   "policy",
      "contract", "vendor",  "audit",   "salary",  "merger", "design",  "kernel",   "retreat",
      "offsite",  "bonus",   "pricing", "legal",   "patent", "quarter", "forecast", "memo",
      "security", "laptop",  "office",  "lunch",   "report", "review"};
  return *v;
}

struct User {
  std::string email;
  std::vector<std::string> groups;
  std::vector<std::string> principals;  // the expansion
};

struct ModelChunk {
  int64_t id;
  std::set<std::string> words;
};

struct ModelDoc {
  int64_t doc_id = 0;
  std::string external_id;
  std::string source;
  std::string dept;
  int64_t modified_us = 0;
  std::set<std::string> acl;  // normalized
  std::vector<ModelChunk> chunks;
};

class PermissionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = SqliteDocumentStore::Open({});
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    CollectionRecord c;
    c.name = "corp";
    c.embedding_model = "m";
    c.dimensions = kDims;
    ASSERT_TRUE(store_->CreateCollection(c).ok());

    for (int u = 0; u < kUsers; ++u) {
      User user;
      user.email = absl::StrCat("u", u, u % 6 == 5 ? "@partner.com" : "@x.com");
      for (int g = 0; g < kGroups; ++g) {
        if (rng_() % 4 == 0) user.groups.push_back(absl::StrCat("g", g, "@x.com"));
      }
      user.principals = ExpandPrincipal(user.email, user.groups);
      users_.push_back(user);
    }
    for (int d = 0; d < kDocs; ++d) {
      ModelDoc doc;
      doc.external_id = absl::StrCat("doc", d);
      ASSERT_NO_FATAL_FAILURE(Write(doc, /*new_content=*/true));
      docs_.push_back(doc);
    }
  }

  // A random ACL in raw form (mixed case, spaces, duplicates) and its normalized set.
  std::vector<std::string> RandomAcl(std::set<std::string>* normalized) {
    std::vector<std::string> raw;
    auto add = [&](const std::string& p) {
      normalized->insert(absl::AsciiStrToLower(p));
      switch (rng_() % 4) {
        case 0:
          raw.push_back(absl::AsciiStrToUpper(p));
          break;
        case 1:
          raw.push_back(absl::StrCat(" ", p, " "));
          break;
        default:
          raw.push_back(p);
      }
      if (rng_() % 10 == 0) raw.push_back(p);
    };
    if (rng_() % 12 == 0) add("anyone");
    if (rng_() % 10 == 0) add("domain:x.com");
    if (rng_() % 25 == 0) add("domain:partner.com");
    for (int i = rng_() % 4; i > 0; --i) add(absl::StrCat("user:", users_[rng_() % kUsers].email));
    for (int i = rng_() % 3; i > 0; --i) add(absl::StrCat("group:g", rng_() % kGroups, "@x.com"));
    return raw;
  }

  // Writes `doc` with a random ACL, attributes and (when new_content) random chunks.
  void Write(ModelDoc& doc, bool new_content) {
    static const char* kSources[] = {"gdrive", "gmail", "sharepoint"};
    static const char* kDepts[] = {"eng", "fin", "hr"};
    doc.acl.clear();
    DocumentInput in;
    in.collection = "corp";
    in.source = doc.source.empty() ? kSources[rng_() % 3] : doc.source;
    doc.source = in.source;
    in.external_id = doc.external_id;
    in.title = absl::StrCat("title ", doc.external_id);
    in.acl = RandomAcl(&doc.acl);
    doc.dept = kDepts[rng_() % 3];
    in.metadata = {{"dept", doc.dept}};
    doc.modified_us = static_cast<int64_t>(rng_() % 1000);
    in.modified_time_us = doc.modified_us;
    std::vector<ChunkText> chunks;
    std::vector<std::vector<float>> embeddings;
    std::vector<std::set<std::string>> words;
    if (new_content) {
      in.content_hash = absl::StrCat("hash", ++version_);
      for (int c = 1 + rng_() % 4; c > 0; --c) {
        std::vector<std::string> w;
        for (int i = 3 + rng_() % 10; i > 0; --i) w.push_back(Vocab()[rng_() % Vocab().size()]);
        ChunkText chunk;
        chunk.text = absl::StrJoin(w, " ");
        chunk.token_count = static_cast<int>(w.size());
        chunks.push_back(chunk);
        embeddings.push_back({1.0f, 0.0f});
        words.emplace_back(w.begin(), w.end());
      }
    } else {
      in.content_hash = content_hash_[doc.external_id];
    }
    auto r = store_->UpsertDocument(in, chunks, embeddings);
    ASSERT_TRUE(r.ok()) << r.status();
    doc.doc_id = r->doc_id;
    content_hash_[doc.external_id] = in.content_hash;
    if (new_content) {
      ASSERT_EQ(r->added_chunk_ids.size(), words.size());
      doc.chunks.clear();
      for (size_t i = 0; i < words.size(); ++i)
        doc.chunks.push_back({r->added_chunk_ids[i], words[i]});
    } else {
      ASSERT_TRUE(r->status == UpsertStatus::kMetadataUpdated ||
                  r->status == UpsertStatus::kUnchanged);
      ASSERT_TRUE(r->added_chunk_ids.empty());
    }
  }

  static bool Permitted(const ModelDoc& doc, const User& user) {
    for (const std::string& p : user.principals) {
      if (doc.acl.count(p)) return true;
    }
    return false;
  }

  struct ModelFilter {
    std::string source;  // empty: any
    std::string dept;    // empty: any
    std::optional<int64_t> after, before;
  };

  bool Passes(const ModelDoc& doc, const ModelFilter& f) const {
    if (!f.source.empty() && doc.source != f.source) return false;
    if (!f.dept.empty() && doc.dept != f.dept) return false;
    if (f.after && doc.modified_us < *f.after) return false;
    if (f.before && doc.modified_us >= *f.before) return false;
    return true;
  }

  AccessFilter ToFilter(const User& user, const ModelFilter& f) const {
    AccessFilter a;
    a.collections = {"corp"};
    a.principals = user.principals;
    if (!f.source.empty()) a.sources = {f.source};
    if (!f.dept.empty()) a.metadata_equals = {{"dept", f.dept}};
    a.modified_after_us = f.after;
    a.modified_before_us = f.before;
    return a;
  }

  ModelFilter RandomFilter() {
    ModelFilter f;
    if (rng_() % 4 == 0)
      f.source = std::vector<std::string>{"gdrive", "gmail", "sharepoint"}[rng_() % 3];
    if (rng_() % 4 == 0) f.dept = std::vector<std::string>{"eng", "fin", "hr"}[rng_() % 3];
    if (rng_() % 5 == 0) f.after = rng_() % 1000;
    if (rng_() % 5 == 0) f.before = rng_() % 1000;
    return f;
  }

  void CheckAll(int queries_per_user) {
    int nonempty = 0, truncated = 0;
    for (const User& user : users_) {
      // AllowedChunkIds against brute force, with and without filters.
      for (int round = 0; round < 3; ++round) {
        const ModelFilter mf = round == 0 ? ModelFilter{} : RandomFilter();
        std::vector<int64_t> expected;
        for (const ModelDoc& doc : docs_) {
          if (!Permitted(doc, user) || !Passes(doc, mf)) continue;
          for (const ModelChunk& c : doc.chunks) expected.push_back(c.id);
        }
        std::sort(expected.begin(), expected.end());
        auto allowed = store_->AllowedChunkIds(ToFilter(user, mf));
        ASSERT_TRUE(allowed.ok()) << allowed.status();
        ASSERT_EQ(*allowed, expected) << user.email;
      }
      for (int q = 0; q < queries_per_user; ++q) {
        std::vector<std::string> terms;
        for (int i = 1 + rng_() % 3; i > 0; --i) terms.push_back(Vocab()[rng_() % Vocab().size()]);
        if (rng_() % 5 == 0) terms.push_back("nonexistentword");
        std::string query = absl::StrJoin(terms, rng_() % 2 ? " " : " AND \"");
        if (rng_() % 3 == 0) query = absl::AsciiStrToUpper(query);
        const ModelFilter mf = rng_() % 2 ? ModelFilter{} : RandomFilter();
        const int k = std::vector<int>{1, 3, 10, 50, 5000}[rng_() % 5];

        std::map<int64_t, const ModelDoc*> matching;  // permitted chunks matching a term
        for (const ModelDoc& doc : docs_) {
          if (!Permitted(doc, user) || !Passes(doc, mf)) continue;
          for (const ModelChunk& c : doc.chunks) {
            for (const std::string& t : terms) {
              if (c.words.count(absl::AsciiStrToLower(t))) {
                matching[c.id] = &doc;
                break;
              }
            }
          }
        }
        auto hits = store_->Bm25Search(query, ToFilter(user, mf), k);
        ASSERT_TRUE(hits.ok()) << hits.status();
        ASSERT_EQ(hits->size(), std::min<size_t>(k, matching.size()))
            << user.email << " query " << query;
        std::set<int64_t> seen;
        for (size_t i = 0; i < hits->size(); ++i) {
          const Bm25Hit& h = (*hits)[i];
          ASSERT_TRUE(matching.count(h.chunk_id))
              << "leak or non-match: chunk " << h.chunk_id << " for " << user.email;
          ASSERT_TRUE(seen.insert(h.chunk_id).second);
          if (i > 0) {
            ASSERT_LE(h.bm25, (*hits)[i - 1].bm25);
          }
        }
        nonempty += !hits->empty();
        truncated += matching.size() > static_cast<size_t>(k);
      }
      // GetDocument agrees with the ACL for a few documents.
      for (int i = 0; i < 5; ++i) {
        const ModelDoc& doc = docs_[rng_() % docs_.size()];
        auto got = store_->GetDocument("corp", doc.doc_id, user.principals);
        ASSERT_EQ(got.ok(), Permitted(doc, user)) << got.status();
        if (!got.ok()) {
          ASSERT_EQ(got.status().code(), absl::StatusCode::kNotFound);
        }
      }
    }
    // The data exercises both outcomes.
    EXPECT_GT(nonempty, 0);
    EXPECT_GT(truncated, 0);
  }

  std::mt19937 rng_{20240601};
  std::unique_ptr<SqliteDocumentStore> store_;
  std::vector<User> users_;
  std::vector<ModelDoc> docs_;
  std::map<std::string, std::string> content_hash_;
  int version_ = 0;
};

TEST_F(PermissionTest, SearchAndAllowedIdsMatchBruteForce) {
  ASSERT_NO_FATAL_FAILURE(CheckAll(25));

  // Permission changes (metadata-only updates), content updates and deletions.
  for (int i = 0; i < 60; ++i) {
    ModelDoc& doc = docs_[rng_() % docs_.size()];
    ASSERT_NO_FATAL_FAILURE(Write(doc, /*new_content=*/false));
  }
  for (int i = 0; i < 40; ++i) {
    ModelDoc& doc = docs_[rng_() % docs_.size()];
    ASSERT_NO_FATAL_FAILURE(Write(doc, /*new_content=*/true));
  }
  std::vector<int64_t> to_delete;
  for (int i = 0; i < 30; ++i) {
    const size_t at = rng_() % docs_.size();
    to_delete.push_back(docs_[at].doc_id);
    docs_.erase(docs_.begin() + static_cast<ptrdiff_t>(at));
  }
  auto del = store_->DeleteDocuments("corp", to_delete);
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_EQ(del->deleted_count, 30);

  ASSERT_NO_FATAL_FAILURE(CheckAll(15));
}

}  // namespace
}  // namespace tessera::retrieval
