#include "services/sync/sync_command.h"

#include <unistd.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/file_system.h"
#include "common/http/curl_http_transport.h"
#include "grpcpp/grpcpp.h"
#include "services/sync/progress_display.h"
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

bool ParseProgressMode(const std::string &text, ProgressMode *out) {
  if (text == "auto") {
    *out = ProgressMode::kAuto;
  } else if (text == "tty" || text == "terminal") {
    *out = ProgressMode::kTerminal;
  } else if (text == "plain") {
    *out = ProgressMode::kPlain;
  } else if (text == "off") {
    *out = ProgressMode::kOff;
  } else {
    return false;
  }
  return true;
}

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

  const bool err_tty = isatty(fileno(err)) == 1;
  const bool terminal =
      o.progress == ProgressMode::kTerminal || (o.progress == ProgressMode::kAuto && err_tty);
  const bool plain = !terminal && o.progress != ProgressMode::kOff;
  ProgressDisplay::Options po;
  po.terminal = terminal;
  po.shared_terminal = terminal && isatty(fileno(out)) == 1 && err_tty;
  po.plain_interval = o.progress_interval;
  std::vector<std::string> ids;
  for (const ConnectorConfig &c : config->connectors) {
    if (c.enabled) ids.push_back(c.id);
  }
  ProgressDisplay display(po, ids, out, err);

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
  d.on_progress = [&display, terminal](const SyncProgress &p) {
    display.Update(p, absl::Now());
    const std::string &id = p.connector_id;
    switch (p.event) {
      case SyncProgress::Event::kStarted:
        display.PrintLine(absl::StrCat(id, ": started (", p.source, " -> ", p.collection, ")"));
        break;
      case SyncProgress::Event::kPage:
        // On a terminal the live display stands for the per-page lines.
        if (!terminal) {
          display.PrintLine(absl::StrFormat("%s: page %lld: %s", id,
                                            static_cast<long long>(p.run.pages), Counts(p.run)));
        }
        for (const auto &f : p.failures) {
          display.PrintLine(
              absl::StrCat(id, ":   failed ", f.id, " (", f.title, "): ", f.status.ToString()));
        }
        break;
      case SyncProgress::Event::kFinished:
        if (p.status.ok()) {
          display.PrintLine(
              absl::StrCat(id, ": done", p.full_sync ? " (full sync)" : "", ": ", Counts(p.run)));
        } else {
          display.PrintLine(
              absl::StrCat(id, ": FAILED: ", p.status.ToString(), " (", Counts(p.run), ")"));
        }
        break;
    }
  };
  absl::StatusOr<std::unique_ptr<SyncDaemon>> daemon = SyncDaemon::Create(std::move(d));
  if (!daemon.ok()) return Report(daemon.status(), err);

  // Redraws the display (terminal) or logs plain progress lines.
  absl::Notification ticker_stop;
  std::thread ticker;
  if (terminal || plain) {
    const absl::Duration period = terminal ? absl::Milliseconds(200) : absl::Seconds(1);
    ticker = std::thread([&display, &ticker_stop, period] {
      while (!ticker_stop.WaitForNotificationWithTimeout(period)) display.Tick(absl::Now());
    });
  }
  auto stop_ticker = [&] {
    if (!ticker.joinable()) return;
    ticker_stop.Notify();
    ticker.join();
    display.Finish(absl::Now());
  };

  if (o.once) {
    absl::Status s = (*daemon)->RunOnce();
    stop_ticker();
    if (!s.ok()) {
      std::fprintf(err, "tessera sync: %s\n", s.ToString().c_str());
      return 1;
    }
    return 0;
  }
  (*daemon)->Start();
  o.wait_for_stop();
  display.PrintLine("tessera sync: stopping after the runs in progress");
  (*daemon)->Stop();
  stop_ticker();
  return 0;
}

}  // namespace tessera::sync
