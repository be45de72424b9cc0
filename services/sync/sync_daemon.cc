#include "services/sync/sync_daemon.h"

#include <unistd.h>

#include <filesystem>
#include <system_error>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/file_system.h"
#include "common/grpc_status.h"
#include "common/logging.h"
#include "common/sqlite.h"
#include "common/status.h"
#include "connectors/auth/oauth2.h"
#include "connectors/auth/service_account.h"
#include "connectors/auth/token_source.h"
#include "connectors/drive/drive_connector.h"
#include "connectors/gmail/gmail_connector.h"
#include "connectors/sharepoint/sharepoint_connector.h"
#include "connectors/framework/checkpoint_store.h"
#include "connectors/framework/sync_runner.h"
#include "connectors/http/retrying_client.h"
#include "services/sync/retrieval_sink.h"
#include "services/sync/sync_state.h"

namespace tessera::sync {

// One configured connector and everything it owns. `run_mu` serialises its
// runs; `status` is guarded by the daemon's mu_; `run`, `sink_failed` and
// `ensured` belong to the thread holding run_mu.
struct SyncDaemon::Worker {
  ConnectorConfig config;
  std::unique_ptr<connectors::TokenSource> tokens;
  std::unique_ptr<connectors::RetryingHttpClient> client;
  std::unique_ptr<connectors::gmail::DelegatedClients> delegated;  // Gmail, one token per mailbox
  std::unique_ptr<connectors::RetryingHttpClient> download_client;  // SharePoint: no token sent
  std::unique_ptr<connectors::Connector> connector;
  std::unique_ptr<SqliteDatabase> checkpoint_db;
  std::unique_ptr<connectors::SqliteCheckpointStore> checkpoints;
  std::unique_ptr<SqliteDatabase> ledger_db;
  std::unique_ptr<RetrievalSink> sink;
  std::unique_ptr<v1::RetrievalService::StubInterface> admin_stub;  // collections
  std::unique_ptr<connectors::SyncRunner> runner;

  absl::Mutex run_mu;
  SyncCounts run;
  int64_t sink_failed = 0;
  bool ensured = false;
  SyncRunRecord record;  // belongs to the thread holding run_mu
  ConnectorStatus status;
};

namespace {

void StoreRecord(const std::string &state_dir, SyncRunRecord *r, const SyncCounts &c) {
  r->pages = c.pages;
  r->seen = c.seen;
  r->indexed = c.indexed;
  r->deleted = c.deleted;
  r->failed = c.failed;
  absl::Status s = WriteSyncRunRecord(state_dir, *r, LocalFileSystem());
  if (!s.ok()) {
    TLOG(WARNING, "cannot write the sync run record")
        .Field("connector", r->connector_id)
        .Field("status", s.ToString());
  }
}

}  // namespace

SyncDaemon::SyncDaemon(Options options)
    : options_(std::move(options)), clock_(options_.clock ? options_.clock : RealClock()) {}

SyncDaemon::~SyncDaemon() { Stop(); }

namespace {

absl::StatusOr<connectors::ServiceAccountTokenSource::Options> ServiceAccountOptions(const CredentialConfig &c) {
  ASSIGN_OR_RETURN(std::string json, LocalFileSystem()->ReadFile(c.key_file, 1 << 20));
  auto key = connectors::ServiceAccountKey::FromJson(json);
  if (!key.ok()) return Annotate(key.status(), absl::StrCat("service account key ", c.key_file));
  connectors::ServiceAccountTokenSource::Options o;
  o.key = *key;
  o.scopes = c.scopes;
  o.subject = c.subject;
  o.token_url = c.token_url;
  return o;
}

// The token source a connector's credentials describe.
absl::StatusOr<std::unique_ptr<connectors::TokenSource>> MakeTokenSource(const CredentialConfig &c,
                                                                        HttpTransport *http, Clock *clock) {
  switch (c.kind) {
    case CredentialConfig::Kind::kStaticToken:
      return std::unique_ptr<connectors::TokenSource>(std::make_unique<connectors::StaticTokenSource>(c.token));
    case CredentialConfig::Kind::kOAuthRefresh: {
      connectors::OAuth2RefreshTokenSource::Options o;
      if (!c.token_url.empty()) o.token_url = c.token_url;
      o.client_id = c.client_id;
      o.client_secret = c.client_secret;
      o.refresh_token = c.refresh_token;
      o.scopes = c.scopes;
      ASSIGN_OR_RETURN(auto source, connectors::OAuth2RefreshTokenSource::Create(http, clock, o));
      return std::unique_ptr<connectors::TokenSource>(std::move(source));
    }
    case CredentialConfig::Kind::kMicrosoft: {
      connectors::MicrosoftClientCredentialsTokenSource::Options o;
      o.tenant_id = c.tenant_id;
      o.client_id = c.client_id;
      o.client_secret = c.client_secret;
      if (!c.certificate_file.empty()) {
        ASSIGN_OR_RETURN(o.certificate_pem, LocalFileSystem()->ReadFile(c.certificate_file, 1 << 20));
        ASSIGN_OR_RETURN(o.private_key_pem, LocalFileSystem()->ReadFile(c.private_key_file, 1 << 20));
      }
      o.token_url = c.token_url;
      ASSIGN_OR_RETURN(auto source, connectors::MicrosoftClientCredentialsTokenSource::Create(http, clock, o));
      return std::unique_ptr<connectors::TokenSource>(std::move(source));
    }
    case CredentialConfig::Kind::kServiceAccount: {
      ASSIGN_OR_RETURN(auto o, ServiceAccountOptions(c));
      ASSIGN_OR_RETURN(auto source, connectors::ServiceAccountTokenSource::Create(http, clock, o));
      return std::unique_ptr<connectors::TokenSource>(std::move(source));
    }
  }
  return absl::InternalError("unknown credential kind");
}

}  // namespace

absl::StatusOr<std::unique_ptr<SyncDaemon>> SyncDaemon::Create(Options options) {
  if (options.state_dir.empty()) return absl::InvalidArgumentError("sync: state_dir is required");
  if (!options.new_retrieval_stub) {
    return absl::InvalidArgumentError("sync: new_retrieval_stub is required");
  }
  if (!options.prepare_context)
    return absl::InvalidArgumentError("sync: prepare_context is required");
  if (options.http == nullptr) return absl::InvalidArgumentError("sync: http is required");
  std::error_code ec;
  std::filesystem::create_directories(options.state_dir, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("sync: cannot create state dir ", options.state_dir, ": ", ec.message()));
  }
  std::unique_ptr<SyncDaemon> d(new SyncDaemon(std::move(options)));
  const std::string cp_path = absl::StrCat(d->options_.state_dir, "/checkpoints.db");
  const std::string ledger_path = absl::StrCat(d->options_.state_dir, "/sink_ledger.db");
  for (const ConnectorConfig &c : d->options_.config.connectors) {
    if (!c.enabled) continue;
    auto w = std::make_unique<Worker>();
    Worker *wp = w.get();
    w->config = c;
    const std::string ctx = absl::StrCat("connector ", c.id);
    if (c.type != "drive" && c.type != "gmail" && c.type != "sharepoint") {
      return absl::InvalidArgumentError(absl::StrCat(ctx, ": unsupported type \"", c.type, "\""));
    }
    const CredentialConfig &auth = c.type == "gmail"        ? c.gmail.auth
                                   : c.type == "sharepoint" ? c.sharepoint.auth
                                                            : c.drive.auth;
    connectors::RetryingHttpClient::Options ho;
    const bool per_mailbox = c.type == "gmail" && auth.kind == CredentialConfig::Kind::kServiceAccount &&
                             auth.subject.empty();
    if (per_mailbox) {
      ASSIGN_OR_RETURN(connectors::ServiceAccountTokenSource::Options sa, ServiceAccountOptions(auth));
      w->delegated = std::make_unique<connectors::gmail::DelegatedClients>(d->options_.http, d->clock_, sa, ho);
    } else {
      auto tokens = MakeTokenSource(auth, d->options_.http, d->clock_);
      if (!tokens.ok()) return Annotate(tokens.status(), ctx);
      w->tokens = std::move(*tokens);
    }
    ho.token_source = w->tokens.get();
    w->client = std::make_unique<connectors::RetryingHttpClient>(d->options_.http, d->clock_, ho);
    if (c.type == "gmail") {
      connectors::gmail::GmailConnector::Options gopt = c.gmail.options;
      connectors::RetryingHttpClient *client = w->client.get();
      // Service account without a subject: each mailbox impersonated in turn; otherwise one token
      // (a user's OAuth grant, or one impersonated subject) for every mailbox.
      connectors::gmail::ClientProvider provider =
          w->delegated ? w->delegated->provider()
                       : [client](const std::string &) -> absl::StatusOr<connectors::RetryingHttpClient *> {
                           return client;
                         };
      if (!gopt.directory_customer.empty()) {
        // The directory call: the admin impersonated (directory scope) under delegation,
        // else the one token (an admin's grant or subject).
        gopt.directory_clients = w->delegated ? w->delegated->directory_provider() : provider;
      }
      auto connector = connectors::gmail::GmailConnector::Create(provider, d->clock_, gopt);
      if (!connector.ok()) return Annotate(connector.status(), ctx);
      w->connector = std::move(*connector);
    }
    if (c.type == "sharepoint") {
      // Downloads follow Graph's 302 to pre-authenticated URLs: that client sends no token.
      w->download_client = std::make_unique<connectors::RetryingHttpClient>(
          d->options_.http, d->clock_, connectors::RetryingHttpClient::Options{});
      const connectors::sharepoint::SharePointConnector::Options &sopt = c.sharepoint.options;
      auto connector = connectors::sharepoint::SharePointConnector::Create(
          w->client.get(), w->download_client.get(), d->clock_, sopt);
      if (!connector.ok()) return Annotate(connector.status(), ctx);
      w->connector = std::move(*connector);
    }
    if (c.type == "drive") {
      auto connector = connectors::drive::DriveConnector::Create(w->client.get(), d->clock_, c.drive.options);
      if (!connector.ok()) return Annotate(connector.status(), ctx);
      w->connector = std::move(*connector);
    }

    ASSIGN_OR_RETURN(w->checkpoint_db, SqliteDatabase::Open(cp_path, {}));
    ASSIGN_OR_RETURN(w->checkpoints,
                     connectors::SqliteCheckpointStore::Create(w->checkpoint_db.get(), d->clock_));
    ASSIGN_OR_RETURN(w->ledger_db, SqliteDatabase::Open(ledger_path, {}));
    RetrievalSink::Options so;
    so.connector_id = c.id;
    so.collection = c.collection;
    so.prepare_context = d->options_.prepare_context;
    ASSIGN_OR_RETURN(
        w->sink, RetrievalSink::Create(d->options_.new_retrieval_stub(), w->ledger_db.get(), so));
    w->admin_stub = d->options_.new_retrieval_stub();

    connectors::SyncRunner::Options ro;
    ro.connector_id = c.id;
    ro.max_reported_failures = static_cast<size_t>(d->options_.max_reported_failures);
    SyncDaemon *self = d.get();
    // Called after the sink acknowledged a page, before its checkpoint is
    // committed: the place to count it.
    ro.before_commit = [self, wp](const connectors::ChangePage &page) {
      std::vector<connectors::DocumentFailure> refused = wp->sink->TakeFailures();
      const auto n_refused = static_cast<int64_t>(refused.size());
      wp->sink_failed += n_refused;
      ++wp->run.pages;
      wp->run.seen +=
          static_cast<int64_t>(page.upserts.size() + page.deletes.size() + page.failures.size());
      wp->run.indexed += static_cast<int64_t>(page.upserts.size()) - n_refused;
      wp->run.deleted += static_cast<int64_t>(page.deletes.size());
      wp->run.failed += static_cast<int64_t>(page.failures.size()) + n_refused;
      for (const auto &f : refused) {
        TLOG(WARNING, "document refused by retrieval")
            .Field("connector", wp->config.id)
            .Field("id", f.id)
            .Field("status", f.status.ToString());
      }
      if (self->options_.write_run_records) {
        StoreRecord(self->options_.state_dir, &wp->record, wp->run);
      }
      if (self->options_.on_progress) {
        SyncProgress p;
        p.event = SyncProgress::Event::kPage;
        p.connector_id = wp->config.id;
        p.source = wp->status.source;
        p.collection = wp->config.collection;
        p.full_sync = page.full_listing_done;
        p.run = wp->run;
        p.failures = page.failures;
        for (auto &f : refused) p.failures.push_back(std::move(f));
        self->options_.on_progress(p);
      }
      return absl::OkStatus();
    };
    w->runner = std::make_unique<connectors::SyncRunner>(w->connector.get(), w->sink.get(),
                                                         w->checkpoints.get(), std::move(ro));
    w->status.connector_id = c.id;
    w->status.source = w->connector->Source();
    w->status.collection = c.collection;
    w->record.connector_id = c.id;
    if (d->options_.write_run_records) {
      // Keeps last_success across daemon restarts.
      absl::StatusOr<std::optional<SyncRunRecord>> old =
          ReadSyncRunRecord(d->options_.state_dir, c.id, LocalFileSystem());
      if (old.ok() && old->has_value()) w->record.last_success = (*old)->last_success;
    }
    d->workers_.push_back(std::move(w));
  }
  return d;
}

absl::Status SyncDaemon::EnsureCollection(Worker *w) {
  if (w->ensured) return absl::OkStatus();
  v1::GetCollectionRequest get;
  get.set_name(w->config.collection);
  v1::GetCollectionResponse got;
  grpc::ClientContext ctx;
  options_.prepare_context(&ctx);
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  absl::Status s = FromGrpcStatus(w->admin_stub->GetCollection(&ctx, get, &got));
  if (s.code() == absl::StatusCode::kNotFound) {
    if (!options_.create_missing_collections) {
      return absl::FailedPreconditionError(
          absl::StrCat("collection \"", w->config.collection,
                       "\" does not exist; create it with `tessera collection create ",
                       w->config.collection, "`"));
    }
    v1::CreateCollectionRequest create;
    create.mutable_collection()->set_name(w->config.collection);
    create.mutable_collection()->set_description(
        absl::StrCat("Synced by connector ", w->config.id));
    v1::CreateCollectionResponse created;
    grpc::ClientContext cctx;
    options_.prepare_context(&cctx);
    cctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    s = FromGrpcStatus(w->admin_stub->CreateCollection(&cctx, create, &created));
    if (s.code() == absl::StatusCode::kAlreadyExists) s = absl::OkStatus();
  }
  RETURN_IF_ERROR(Annotate(s, absl::StrCat("collection ", w->config.collection)));
  w->ensured = true;
  return absl::OkStatus();
}

absl::Status SyncDaemon::Run(Worker *w) {
  absl::MutexLock run_lock(&w->run_mu);
  w->run = SyncCounts{};
  w->sink_failed = 0;
  (void)w->sink->TakeFailures();  // leftovers of an aborted page were replayed
  const absl::Time start = clock_->Now();
  {
    absl::MutexLock l(&mu_);
    w->status.running = true;
    w->status.last_start = start;
  }
  if (options_.write_run_records) {
    SyncRunRecord &r = w->record;
    r.running = true;
    r.pid = static_cast<int64_t>(getpid());
    r.started = start;
    r.finished = absl::InfinitePast();
    r.full_sync = false;
    r.error.clear();
    StoreRecord(options_.state_dir, &r, w->run);
  }
  if (options_.on_progress) {
    SyncProgress p;
    p.connector_id = w->config.id;
    p.source = w->status.source;
    p.collection = w->config.collection;
    options_.on_progress(p);
  }
  absl::Status status = EnsureCollection(w);
  bool full = false;
  if (status.ok()) {
    absl::StatusOr<connectors::SyncStats> stats = w->runner->SyncAll();
    if (stats.ok()) {
      full = stats->full_sync;
      w->run.deleted += stats->pruned;
    } else {
      status = stats.status();
    }
  }
  SyncProgress p;
  p.event = SyncProgress::Event::kFinished;
  p.connector_id = w->config.id;
  p.source = w->status.source;
  p.collection = w->config.collection;
  p.full_sync = full;
  p.run = w->run;
  p.status = status;
  const absl::Time end = clock_->Now();
  if (options_.write_run_records) {
    SyncRunRecord &r = w->record;
    r.running = false;
    r.finished = end;
    r.full_sync = full;
    r.error = status.ok() ? "" : status.ToString();
    if (status.ok()) r.last_success = end;
    StoreRecord(options_.state_dir, &r, w->run);
  }
  {
    absl::MutexLock l(&mu_);
    ConnectorStatus &st = w->status;
    st.running = false;
    ++st.runs;
    st.last_run = w->run;
    st.last_status = status;
    st.last_end = end;
    st.totals.pages += w->run.pages;
    st.totals.seen += w->run.seen;
    st.totals.indexed += w->run.indexed;
    st.totals.deleted += w->run.deleted;
    st.totals.failed += w->run.failed;
  }
  if (options_.on_progress) options_.on_progress(p);
  return Annotate(status, absl::StrCat("connector ", w->config.id));
}

absl::Status SyncDaemon::RunOnce() {
  absl::Status first;
  for (auto &w : workers_) {
    absl::Status s = Run(w.get());
    if (first.ok()) first = s;
  }
  return first;
}

absl::Status SyncDaemon::RunConnector(absl::string_view connector_id) {
  for (auto &w : workers_) {
    if (w->config.id == connector_id) return Run(w.get());
  }
  return absl::NotFoundError(absl::StrCat("no enabled connector \"", connector_id, "\""));
}

void SyncDaemon::Loop(Worker *w) {
  while (true) {
    const absl::Time start = clock_->Now();
    (void)Run(w);  // reported through the callback and Status()
    const absl::Time next = start + w->config.interval;
    {
      absl::MutexLock l(&mu_);
      w->status.next_run = next;
    }
    // Waits on the injected clock, waking at least every second to look at it
    // (a simulated clock advances without notifying us) and at once on Stop().
    while (true) {
      const absl::Duration left = next - clock_->Now();
      absl::MutexLock l(&mu_);
      if (stop_) return;
      if (left <= absl::ZeroDuration()) break;
      if (mu_.AwaitWithTimeout(absl::Condition(&stop_), std::min(left, absl::Seconds(1)))) return;
    }
  }
}

void SyncDaemon::Start() {
  absl::MutexLock l(&mu_);
  if (!threads_.empty() || stop_) return;
  for (auto &w : workers_) threads_.emplace_back([this, wp = w.get()] { Loop(wp); });
}

void SyncDaemon::Stop() {
  {
    absl::MutexLock l(&mu_);
    stop_ = true;
  }
  for (std::thread &t : threads_) t.join();
  threads_.clear();
}

std::vector<ConnectorStatus> SyncDaemon::Status() const {
  absl::MutexLock l(&mu_);
  std::vector<ConnectorStatus> out;
  for (const auto &w : workers_) out.push_back(w->status);
  return out;
}

}  // namespace tessera::sync
