#include "services/gateway/server.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/file_system.h"
#include "common/logging.h"
#include "common/status.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/impl/server_builder_option.h"
#include "grpcpp/impl/server_builder_plugin.h"
#include "services/gateway/admin_service.h"
#include "services/gateway/auth_proxy.h"
#include "tessera/v1/agents.grpc.pb.h"
#include "tessera/v1/engine.grpc.pb.h"
#include "tessera/v1/retrieval.grpc.pb.h"
#include "tessera/v1/sync.grpc.pb.h"

namespace tessera {
namespace {

constexpr char kReflectionService[] = "grpc.reflection.v1alpha.ServerReflection";

// Which issue builds each service that is still a placeholder.
const std::map<std::string, std::string>& NotBuiltYet() {
  static const auto* m = new std::map<std::string, std::string>{
      {"sync", "the connector sync service (Google Drive, Gmail, SharePoint)"},
      {"agents", "the agent service (JSON-defined agents with tools and citations)"},
  };
  return *m;
}

// The reflection plugin registers itself for every ServerBuilder in the
// process. The public server must not serve reflection itself (it would
// bypass authentication), so this option removes it there; the internal
// server keeps it and the proxy forwards authenticated reflection calls.
class WithoutReflection : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->erase(std::remove_if(plugins->begin(), plugins->end(),
                                  [](const auto& p) { return p->name() == "proto_server_reflection"; }),
                   plugins->end());
  }
};

absl::StatusOr<std::string> ReadPem(const std::string& path, const char* what) {
  absl::StatusOr<std::string> pem = LocalFileSystem()->ReadFile(path, 1 << 20);
  if (!pem.ok()) return Annotate(pem.status(), absl::StrCat("reading ", what));
  if (pem->find("-----BEGIN") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", path, " is not a PEM file"));
  }
  return pem;
}

}  // namespace

const std::map<std::string, std::string>& TesseraServiceNames() {
  static const auto* m = new std::map<std::string, std::string>{
      {"engine", "tessera.v1.EngineService"},   {"retrieval", "tessera.v1.RetrievalService"},
      {"sync", "tessera.v1.SyncService"},       {"agents", "tessera.v1.AgentService"},
      {"admin", "tessera.v1.AdminService"},
  };
  return *m;
}

absl::StatusOr<int> LockDataDir(const std::string& dir) {
  RETURN_IF_ERROR(LocalFileSystem()->CreateDirectories(dir, 0700));
  std::string lock_path = JoinPath(dir, "LOCK");
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return absl::PermissionDeniedError(absl::StrCat("cannot open ", lock_path));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("data dir ", dir, " is in use by another tessera process"));
  }
  return fd;
}

absl::StatusOr<std::map<std::string, std::string>> ParsePeers(
    const std::vector<std::string>& items) {
  std::map<std::string, std::string> peers;
  for (const std::string& item : items) {
    if (item.empty()) continue;
    std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    if (!TesseraServiceNames().count(kv.first)) {
      return absl::InvalidArgumentError(absl::StrCat("--peers: unknown service '", kv.first,
                                                     "' in '", item, "'"));
    }
    size_t colon = kv.second.rfind(':');
    int port = 0;
    if (colon == std::string::npos || colon == 0 ||
        !absl::SimpleAtoi(kv.second.substr(colon + 1), &port) || port <= 0 || port > 65535) {
      return absl::InvalidArgumentError(
          absl::StrCat("--peers: '", item, "' must look like SERVICE=HOST:PORT"));
    }
    peers[kv.first] = kv.second;
  }
  return peers;
}

absl::StatusOr<std::unique_ptr<TesseraServer>> TesseraServer::Start(Options options) {
  std::unique_ptr<TesseraServer> server(new TesseraServer());
  RETURN_IF_ERROR(server->Init(std::move(options)));
  return server;
}

absl::Status TesseraServer::Init(Options options) {
  options_ = std::move(options);
  for (const auto& [name, impl] : options_.implementations) {
    if (!TesseraServiceNames().count(name) || impl == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("bad implementation entry '", name, "'"));
    }
  }
  for (const auto& [name, factory] : options_.factories) {
    if (!TesseraServiceNames().count(name) || !factory || options_.implementations.count(name)) {
      return absl::InvalidArgumentError(absl::StrCat("bad service factory entry '", name, "'"));
    }
  }
  for (const std::string& s : options_.only) {
    if (!TesseraServiceNames().count(s)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--only: unknown service '", s, "'; known: engine, retrieval, sync, agents, admin"));
    }
  }
  if (options_.tls_cert_file.empty() != options_.tls_key_file.empty()) {
    return absl::InvalidArgumentError("--tls_cert and --tls_key must be given together");
  }
  if (options_.data_dir.empty()) return absl::InvalidArgumentError("--data_dir is required");

  // The data dir: created private, and locked so two servers never share it.
  ASSIGN_OR_RETURN(lock_fd_, LockDataDir(options_.data_dir));
  if (options_.keys_db.empty()) options_.keys_db = JoinPath(options_.data_dir, "admin.db");
  ASSIGN_OR_RETURN(keys_, ApiKeyStore::Open(options_.keys_db, RealClock()));

  auto serves = [this](const std::string& name) {
    return options_.only.empty() || options_.only.count(name) > 0;
  };
  for (const auto& [name, factory] : options_.factories) {
    if (!serves(name)) continue;
    absl::StatusOr<std::unique_ptr<grpc::Service>> service = factory(this);
    if (!service.ok()) return Annotate(service.status(), absl::StrCat("starting the ", name, " service"));
    owned_[name] = std::move(*service);
    options_.implementations[name] = owned_[name].get();
  }

  // The public builder is created first and told to drop the reflection plugin.
  grpc::ServerBuilder public_builder;
  public_builder.SetOption(std::make_unique<WithoutReflection>());

  // Internal server: typed services + reflection, reachable only in-process.
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder internal_builder;
  internal_builder.SetMaxReceiveMessageSize(options_.max_message_bytes);
  internal_builder.SetMaxSendMessageSize(options_.max_message_bytes);
  std::map<std::string, ServiceRoute> routes;
  for (const auto& [short_name, full_name] : TesseraServiceNames()) {
    if (!serves(short_name)) continue;
    if (auto impl = options_.implementations.find(short_name);
        impl != options_.implementations.end()) {
      internal_builder.RegisterService(impl->second);
    } else if (short_name == "admin") {
      admin_ = std::make_unique<AdminServiceImpl>(keys_.get());
      internal_builder.RegisterService(admin_.get());
    } else {
      // Registered so reflection describes the whole contract; calls never
      // reach these (the proxy answers UNIMPLEMENTED with a clear message).
      std::unique_ptr<grpc::Service> placeholder;
      if (short_name == "engine") placeholder = std::make_unique<v1::EngineService::Service>();
      if (short_name == "retrieval") placeholder = std::make_unique<v1::RetrievalService::Service>();
      if (short_name == "sync") placeholder = std::make_unique<v1::SyncService::Service>();
      if (short_name == "agents") placeholder = std::make_unique<v1::AgentService::Service>();
      internal_builder.RegisterService(placeholder.get());
      placeholders_.push_back(std::move(placeholder));
    }
    served_.push_back(full_name);
  }
  internal_ = internal_builder.BuildAndStart();
  if (internal_ == nullptr) return absl::InternalError("cannot start the internal gRPC server");
  grpc::ChannelArguments in_process_args;
  in_process_args.SetMaxReceiveMessageSize(options_.max_message_bytes);
  in_process_args.SetMaxSendMessageSize(options_.max_message_bytes);
  std::shared_ptr<grpc::Channel> local = internal_->InProcessChannel(in_process_args);

  for (const auto& [short_name, full_name] : TesseraServiceNames()) {
    ServiceRoute route;
    if (serves(short_name)) {
      auto nb = NotBuiltYet().find(short_name);
      if (nb != NotBuiltYet().end() && !options_.implementations.count(short_name)) {
        route.unavailable = absl::StrCat(full_name, " is not built yet in this release: ",
                                         nb->second, " is a later milestone");
      } else if (short_name != "admin" && !options_.implementations.count(short_name)) {
        route.unavailable = absl::StrCat(full_name, " has no implementation in this process");
      } else {
        route.channel = local;
      }
      channels_[short_name] = local;
    } else if (auto peer = options_.peers.find(short_name); peer != options_.peers.end()) {
      auto creds = options_.peer_tls ? grpc::SslCredentials(grpc::SslCredentialsOptions())
                                     : grpc::InsecureChannelCredentials();
      route.channel = grpc::CreateCustomChannel(peer->second, creds, in_process_args);
      route.forward_authorization = true;
      channels_[short_name] = route.channel;
    } else {
      route.unavailable = absl::StrCat(full_name, " is not served by this process (--only=",
                                       absl::StrJoin(options_.only, ","),
                                       ") and no peer was given (--peers=", short_name,
                                       "=HOST:PORT)");
    }
    routes[full_name] = std::move(route);
  }
  routes[kReflectionService].channel = local;
  proxy_ = std::make_unique<AuthProxy>(keys_.get(), std::move(routes));

  // Public server: health (no auth) + everything else through the proxy.
  grpc::EnableDefaultHealthCheckService(true);
  std::shared_ptr<grpc::ServerCredentials> creds;
  if (!options_.tls_cert_file.empty()) {
    ASSIGN_OR_RETURN(std::string cert, ReadPem(options_.tls_cert_file, "--tls_cert"));
    ASSIGN_OR_RETURN(std::string key, ReadPem(options_.tls_key_file, "--tls_key"));
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({key, cert});
    creds = grpc::SslServerCredentials(ssl);
  } else {
    creds = grpc::InsecureServerCredentials();
  }
  // gRPC binds with SO_REUSEPORT by default, which would let a second server
  // silently share the port; a taken port must be an error instead.
  public_builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  public_builder.AddListeningPort(options_.listen, creds, &port_);
  public_builder.SetMaxReceiveMessageSize(options_.max_message_bytes);
  public_builder.SetMaxSendMessageSize(options_.max_message_bytes);
  public_builder.RegisterCallbackGenericService(proxy_.get());
  public_ = public_builder.BuildAndStart();
  if (public_ == nullptr || port_ == 0) {
    internal_->Shutdown();
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options_.listen,
                                               " (address in use, or not a HOST:PORT)"));
  }
  grpc::HealthCheckServiceInterface* health = public_->GetHealthCheckService();
  for (const auto& [short_name, full_name] : TesseraServiceNames()) {
    bool up = serves(short_name) ? (short_name == "admin" ||
                                    options_.implementations.count(short_name) > 0)
                                 : options_.peers.count(short_name) > 0;
    health->SetServingStatus(full_name, up);
  }
  health->SetServingStatus("", true);
  TLOG(INFO, "tessera serving")
      .Field("addr", address())
      .Field("tls", !options_.tls_cert_file.empty())
      .Field("services", absl::StrJoin(served_, ","))
      .Field("data_dir", options_.data_dir);
  return absl::OkStatus();
}

std::shared_ptr<grpc::Channel> TesseraServer::Channel(const std::string& short_name) const {
  auto it = channels_.find(short_name);
  return it == channels_.end() ? nullptr : it->second;
}

std::string TesseraServer::address() const {
  std::string host = options_.listen.substr(0, options_.listen.rfind(':'));
  return absl::StrCat(host, ":", port_);
}

void TesseraServer::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) return;
    shut_down_ = true;
  }
  TLOG(INFO, "shutting down").Field("grace", grace);
  if (public_) {
    public_->GetHealthCheckService()->Shutdown();  // every service NOT_SERVING
    public_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(absl::ToInt64Milliseconds(grace)));
  }
  if (internal_) internal_->Shutdown(std::chrono::system_clock::now());
  if (public_) public_->Wait();
  if (internal_) internal_->Wait();
  // A forwarded call can still be releasing its upstream half here.
  if (proxy_) proxy_->WaitForCallsToDrain();
  TLOG(INFO, "stopped");
}

void TesseraServer::Wait() {
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(&shut_down_));
  // Shutdown() sets the flag first; wait for the servers themselves too.
  if (public_) {
    mu_.Unlock();
    public_->Wait();
    mu_.Lock();
  }
}

TesseraServer::~TesseraServer() {
  Shutdown(absl::ZeroDuration());
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

}  // namespace tessera
