// Crash safety of ingestion: the real `tessera serve` process is killed with
// SIGKILL at random points during a long ingest, then restarted. Every
// document whose ingest was acknowledged must be there, whole, and
// searchable by both retrievers; nothing half-written may appear.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tessera/v1/retrieval.grpc.pb.h"

namespace tessera {
namespace {

std::string Binary() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  return absl::StrCat(srcdir ? srcdir : ".", "/tessera/services/gateway/tessera");
}

std::string TempDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return absl::StrCat(tmp ? tmp : "/tmp", "/durability_", ::getpid());
}

std::string RunCommand(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  ::pclose(p);
  return std::string(absl::StripAsciiWhitespace(out));
}

// The text of document i: unique words so BM25 can find exactly it.
std::string TextOf(int i) {
  return absl::StrCat("durable record ", i, " token", i, "x carries ledger entry ", i * 7,
                      " for the quarterly archive");
}

class Server {
 public:
  explicit Server(std::string dir) : dir_(std::move(dir)) {}
  void Start() {
    std::string port_file = dir_ + "/port";
    std::remove(port_file.c_str());
    pid_ = ::fork();
    if (pid_ == 0) {
      std::string data = "--data_dir=" + dir_ + "/data";
      std::string pf = "--port_file=" + port_file;
      std::string log = dir_ + "/server.log";
      FILE* f = std::freopen(log.c_str(), "a", stderr);
      (void)f;
      ::execl(Binary().c_str(), "tessera", "serve", data.c_str(), "--listen=127.0.0.1:0",
              pf.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    for (int i = 0; i < 600; ++i) {
      std::ifstream in(port_file);
      int port = 0;
      if (in >> port && port > 0) {
        address_ = absl::StrCat("127.0.0.1:", port);
        return;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    FAIL() << "server did not start";
  }
  void Kill() {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  void Stop() {
    ::kill(pid_, SIGTERM);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  const std::string& address() const { return address_; }

 private:
  std::string dir_;
  pid_t pid_ = -1;
  std::string address_;
};

TEST(IngestDurabilityTest, AcknowledgedDocumentsSurviveKill9) {
  const std::string dir = TempDir();
  ASSERT_EQ(std::system(("mkdir -p " + dir).c_str()), 0);
  const std::string key =
      RunCommand(Binary() + " admin create-key --data_dir=" + dir + "/data --principal=it@acme.example --role=admin 2>/dev/null");
  ASSERT_EQ(key.rfind("tsk_", 0), 0u) << key;

  Server server(dir);
  std::mt19937 rng(42);
  std::map<int, std::string> acked;  // doc number -> document id
  absl::Mutex mu;
  int next = 0;
  for (int round = 0; round < 4; ++round) {
    server.Start();
    auto stub = v1::RetrievalService::NewStub(
        grpc::CreateChannel(server.address(), grpc::InsecureChannelCredentials()));
    auto ctx_for = [&](absl::Duration d) {
      auto ctx = std::make_unique<grpc::ClientContext>();
      ctx->AddMetadata("authorization", "Bearer " + key);
      ctx->set_deadline(absl::ToChronoTime(absl::Now() + d));
      return ctx;
    };
    if (round == 0) {
      v1::CreateCollectionRequest req;
      req.mutable_collection()->set_name("ledger");
      v1::CreateCollectionResponse resp;
      auto ctx = ctx_for(absl::Seconds(10));
      ASSERT_TRUE(stub->CreateCollection(ctx.get(), req, &resp).ok());
    }
    // Everything acknowledged so far is there, whole, and searchable.
    for (const auto& [i, doc_id] : acked) {
      v1::GetDocumentRequest req;
      req.set_collection("ledger");
      req.set_document_id(doc_id);
      req.set_include_chunks(true);
      v1::GetDocumentResponse resp;
      auto ctx = ctx_for(absl::Seconds(10));
      grpc::Status s = stub->GetDocument(ctx.get(), req, &resp);
      ASSERT_TRUE(s.ok()) << "round " << round << ": acknowledged doc " << i << " lost: " << s.error_message();
      ASSERT_EQ(resp.chunks_size(), 1);
      ASSERT_EQ(resp.chunks(0).text(), TextOf(i)) << "doc " << i << " half-written";
    }
    if (!acked.empty()) {
      // BM25 finds a sample by its unique token; the vector index (rebuilt
      // from SQLite after the crash) returns full k.
      for (int probe = 0; probe < 5; ++probe) {
        auto it = acked.begin();
        std::advance(it, rng() % acked.size());
        v1::SearchRequest req;
        req.add_collections("ledger");
        req.set_query(absl::StrCat("token", it->first, "x"));
        req.set_top_k(5);
        v1::SearchResponse resp;
        auto ctx = ctx_for(absl::Seconds(10));
        ASSERT_TRUE(stub->Search(ctx.get(), req, &resp).ok());
        ASSERT_GE(resp.hits_size(), 1);
        EXPECT_EQ(resp.hits(0).external_id(), absl::StrCat("doc-", it->first));
        EXPECT_TRUE(resp.hits(0).scores().has_bm25());
        EXPECT_EQ(resp.hits_size(), std::min<int>(5, static_cast<int>(acked.size())));
      }
      // No document beyond what was sent, and none without its chunk.
      v1::GetCollectionRequest greq;
      greq.set_name("ledger");
      v1::GetCollectionResponse gresp;
      auto ctx = ctx_for(absl::Seconds(10));
      ASSERT_TRUE(stub->GetCollection(ctx.get(), greq, &gresp).ok());
      EXPECT_GE(gresp.collection().document_count(), static_cast<int64_t>(acked.size()));
      EXPECT_LE(gresp.collection().document_count(), next);
      EXPECT_EQ(gresp.collection().chunk_count(), gresp.collection().document_count());
    }
    if (round == 3) {
      server.Stop();
      break;
    }
    // Ingest in a background thread until the kill.
    std::atomic<bool> stop{false};
    std::thread writer([&] {
      while (!stop) {
        v1::IngestDocumentsRequest req;
        req.set_collection("ledger");
        int first;
        {
          absl::MutexLock lock(&mu);
          first = next;
          next += 10;
        }
        for (int i = first; i < first + 10; ++i) {
          v1::Document* d = req.add_documents();
          d->set_source("test");
          d->set_external_id(absl::StrCat("doc-", i));
          d->set_title(absl::StrCat("Record ", i));
          d->set_text(TextOf(i));
          d->add_acl("anyone");
        }
        v1::IngestDocumentsResponse resp;
        auto ctx = ctx_for(absl::Seconds(10));
        if (!stub->IngestDocuments(ctx.get(), req, &resp).ok()) return;  // killed
        absl::MutexLock lock(&mu);
        for (int j = 0; j < resp.results_size(); ++j) {
          if (resp.results(j).status() == v1::INGEST_STATUS_CREATED) {
            acked[first + j] = resp.results(j).document_id();
          }
        }
      }
    });
    absl::SleepFor(absl::Milliseconds(150 + rng() % 600));
    server.Kill();
    stop = true;
    writer.join();
  }
  std::printf("acknowledged %zu documents (%d sent) across 3 kills\n", acked.size(), next);
  EXPECT_GT(acked.size(), 20u) << "too little was ingested to prove anything";
}

}  // namespace
}  // namespace tessera
