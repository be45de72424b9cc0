// SyncTestEnv: what the daemon's end-to-end tests share: a real RetrievalServiceImpl on an
// in-process gRPC server, the curl transport, a daemon built from a JSON config with an admin caller,
// and searches as any principal. Test-only.
#ifndef TESSERA_SERVICES_SYNC_TESTING_SYNC_TEST_ENV_H_
#define TESSERA_SERVICES_SYNC_TESTING_SYNC_TEST_ENV_H_

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/http/curl_http_transport.h"
#include "grpcpp/grpcpp.h"
#include "services/gateway/caller.h"
#include "services/retrieval/retrieval_service.h"
#include "services/sync/sync_daemon.h"

namespace tessera::sync::testing {

Caller MakeCaller(const std::string &user, std::vector<std::string> groups, KeyRole role);

class SyncTestEnv {
 public:
  // Retrieval stores under `dir`/retrieval; the daemon's state goes to `dir`/sync.
  static absl::StatusOr<std::unique_ptr<SyncTestEnv>> Start(const std::string &dir);
  ~SyncTestEnv();

  // A daemon running the connectors of `config_json` (a sync config file's text).
  absl::StatusOr<std::unique_ptr<SyncDaemon>> NewDaemon(const std::string &config_json);

  // The titles of the hits `user` (with `groups`) gets for `query` in `collection`.
  std::set<std::string> SearchTitles(const std::string &collection, const std::string &query,
                                     const std::string &user, std::vector<std::string> groups = {});

 private:
  SyncTestEnv() = default;
  std::string dir_;
  std::unique_ptr<retrieval::RetrievalServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<CurlHttpTransport> http_;
};

}  // namespace tessera::sync::testing

#endif  // TESSERA_SERVICES_SYNC_TESTING_SYNC_TEST_ENV_H_
