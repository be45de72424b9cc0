// TesseraServer: one Tessera process. Hosts the services named in --only
// (all of them by default: the embedded, all-in-one deployment) behind the
// authenticating AuthProxy, plus gRPC health checking (no key needed) and
// server reflection (key needed, like every other RPC).
//
//   public port  --> [AuthProxy] --in-process channel--> internal server
//                         |                               (typed services +
//                         +--network--> peer process       reflection)
//
// Services talk to each other through their stubs on Channel(service): the
// in-process channel when co-located (attach the caller with AttachCaller(),
// as the proxy does), the peer's address otherwise (that call goes through
// the peer's gateway and needs a bearer key).
// Thread-safe after Start(); Shutdown() may be called from any thread.
#ifndef TESSERA_SERVICES_GATEWAY_SERVER_H_
#define TESSERA_SERVICES_GATEWAY_SERVER_H_

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "services/gateway/api_key_store.h"

namespace tessera {

// The services of the v1 contract by short name ("engine", "retrieval",
// "sync", "agents", "admin") with their full gRPC names.
const std::map<std::string, std::string>& TesseraServiceNames();

class AuthProxy;
class AdminServiceImpl;

class TesseraServer {
 public:
  struct Options {
    std::string data_dir;                        // created if missing
    // The API key database; default DATA_DIR/admin.db. Processes of one
    // split deployment point at the same database so a key works everywhere.
    std::string keys_db;
    std::string listen = "127.0.0.1:7600";       // HOST:PORT; port 0 picks a free one
    std::set<std::string> only;                  // empty = every service
    std::map<std::string, std::string> peers;    // short name -> HOST:PORT
    bool peer_tls = false;                       // TLS (system roots) to peers
    std::string tls_cert_file;                   // PEM; with tls_key_file enables TLS
    std::string tls_key_file;
    int max_message_bytes = 64 << 20;
    // Implementations to host, by short name (not owned; must outlive the
    // server). A service listed here is built: it replaces the placeholder.
    // This is how each service's issue plugs its implementation in.
    std::map<std::string, grpc::Service*> implementations;
    // Implementations the server builds and owns, by short name: called
    // during Start(), after the data dir is locked, with the server (whose
    // Channel() works once Start() returns). Error statuses abort Start().
    using ServiceFactory =
        std::function<absl::StatusOr<std::unique_ptr<grpc::Service>>(TesseraServer* server)>;
    std::map<std::string, ServiceFactory> factories;
  };

  // Validates options, opens the data dir (taking its lock) and starts both
  // servers. INVALID_ARGUMENT for bad options, FAILED_PRECONDITION when the
  // data dir is used by another process, UNAVAILABLE when the port is taken.
  static absl::StatusOr<std::unique_ptr<TesseraServer>> Start(Options options);
  ~TesseraServer();

  int port() const { return port_; }
  // The channel to a service by short name: in-process when it runs here,
  // the peer's when it runs elsewhere; null when neither. Valid after Start().
  std::shared_ptr<grpc::Channel> Channel(const std::string& short_name) const;
  std::string address() const;
  // Marks every service NOT_SERVING, stops accepting calls, lets running
  // calls finish within `grace`, then cancels the rest. Idempotent.
  void Shutdown(absl::Duration grace);
  // Blocks until Shutdown() has completed.
  void Wait();

 private:
  TesseraServer() = default;
  absl::Status Init(Options options);

  Options options_;
  int lock_fd_ = -1;
  int port_ = 0;
  std::unique_ptr<ApiKeyStore> keys_;
  std::unique_ptr<AdminServiceImpl> admin_;
  std::map<std::string, std::unique_ptr<grpc::Service>> owned_;  // outlive the servers below
  std::vector<std::unique_ptr<grpc::Service>> placeholders_;
  std::unique_ptr<grpc::Server> internal_;
  std::unique_ptr<AuthProxy> proxy_;
  std::unique_ptr<grpc::Server> public_;
  std::vector<std::string> served_;  // full names served locally
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;  // by short name
  absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

// Creates `dir` (0700) if needed and takes its exclusive lock, so that no two
// processes use one data dir. Returns the lock's file descriptor (the lock
// lasts until it is closed or the process exits). FAILED_PRECONDITION when
// another process holds it.
absl::StatusOr<int> LockDataDir(const std::string& dir);

// Parses "engine=host:1,retrieval=host:2". INVALID_ARGUMENT names the bad part.
absl::StatusOr<std::map<std::string, std::string>> ParsePeers(const std::vector<std::string>& items);

}  // namespace tessera

#endif  // TESSERA_SERVICES_GATEWAY_SERVER_H_
