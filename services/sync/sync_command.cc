#include "services/sync/sync_command.h"

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/file_system.h"
#include "common/http/curl_http_transport.h"
#include "grpcpp/grpcpp.h"
#include "services/sync/sync_config.h"
#include "services/sync/sync_daemon.h"

namespace tessera::sync {
namespace {

int Report(const absl::Status &s, FILE *err) {
  std::fprintf(err, "tessera sync: %s: %s\n", absl::StatusCodeToString(s.code()).c_str(),
               std::string(s.message()).c_str());
  return s.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

std::string Counts(const SyncCounts &c) {
  return absl::StrFormat("pages=%d seen=%d indexed=%d deleted=%d failed=%d", c.pages, c.seen,
                         c.indexed, c.deleted, c.failed);
}

}  // namespace

int SyncCommand(const SyncCommandOptions &o, FILE *out, FILE *err) {
  if (o.config_path.empty()) {
    std::fprintf(err, "tessera sync: --sync_config=FILE.json is required\n");
    return 2;
  }
  if (o.key.empty()) {
    std::fprintf(err, "tessera sync: an admin API key is required (TESSERA_KEY or --key_file)\n");
    return 2;
  }
  if (!o.once && !o.wait_for_stop) {
    std::fprintf(err, "tessera sync: internal: no way to wait for a stop signal\n");
    return 1;
  }
  absl::StatusOr<SyncConfig> config = LoadSyncConfig(o.config_path, LocalFileSystem());
  if (!config.ok()) return Report(config.status(), err);
  if (config->connectors.empty()) {
    std::fprintf(err, "tessera sync: %s has no connectors\n", o.config_path.c_str());
    return 2;
  }

  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (!o.tls_ca.empty()) {
    absl::StatusOr<std::string> pem = LocalFileSystem()->ReadFile(o.tls_ca, 1 << 20);
    if (!pem.ok()) return Report(pem.status(), err);
    grpc::SslCredentialsOptions so;
    so.pem_root_certs = *pem;
    creds = grpc::SslCredentials(so);
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  args.SetMaxSendMessageSize(64 << 20);
  args.SetMaxReceiveMessageSize(64 << 20);
  std::shared_ptr<grpc::Channel> channel = grpc::CreateCustomChannel(o.server, creds, args);

  absl::StatusOr<std::unique_ptr<CurlHttpTransport>> http = CurlHttpTransport::Create({});
  if (!http.ok()) return Report(http.status(), err);

  absl::Mutex print_mu;
  SyncDaemon::Options d;
  d.config = *std::move(config);
  d.state_dir = o.state_dir.empty() ? o.config_path + ".state" : o.state_dir;
  d.new_retrieval_stub = [channel]() -> std::unique_ptr<v1::RetrievalService::StubInterface> {
    return v1::RetrievalService::NewStub(channel);
  };
  const std::string bearer = "Bearer " + o.key;
  d.prepare_context = [bearer](grpc::ClientContext *ctx) {
    ctx->AddMetadata("authorization", bearer);
  };
  d.create_missing_collections = o.create_collections;
  d.http = http->get();
  d.on_progress = [&print_mu, out](const SyncProgress &p) {
    absl::MutexLock l(&print_mu);
    const char *id = p.connector_id.c_str();
    switch (p.event) {
      case SyncProgress::Event::kStarted:
        std::fprintf(out, "%s: started (%s -> %s)\n", id, p.source.c_str(), p.collection.c_str());
        break;
      case SyncProgress::Event::kPage:
        std::fprintf(out, "%s: page %lld: %s\n", id, static_cast<long long>(p.run.pages),
                     Counts(p.run).c_str());
        for (const auto &f : p.failures) {
          std::fprintf(out, "%s:   failed %s (%s): %s\n", id, f.id.c_str(), f.title.c_str(),
                       f.status.ToString().c_str());
        }
        break;
      case SyncProgress::Event::kFinished:
        if (p.status.ok()) {
          std::fprintf(out, "%s: done%s: %s\n", id, p.full_sync ? " (full sync)" : "",
                       Counts(p.run).c_str());
        } else {
          std::fprintf(out, "%s: FAILED: %s (%s)\n", id, p.status.ToString().c_str(),
                       Counts(p.run).c_str());
        }
        break;
    }
    std::fflush(out);
  };
  absl::StatusOr<std::unique_ptr<SyncDaemon>> daemon = SyncDaemon::Create(std::move(d));
  if (!daemon.ok()) return Report(daemon.status(), err);

  if (o.once) {
    absl::Status s = (*daemon)->RunOnce();
    if (!s.ok()) {
      std::fprintf(err, "tessera sync: %s\n", s.ToString().c_str());
      return 1;
    }
    return 0;
  }
  (*daemon)->Start();
  o.wait_for_stop();
  std::fprintf(err, "tessera sync: stopping after the runs in progress\n");
  (*daemon)->Stop();
  return 0;
}

}  // namespace tessera::sync
