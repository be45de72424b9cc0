#include "tests/integration/retrieval_with_engine.h"

#include "common/clock.h"
#include "common/status.h"
#include "services/gateway/api_key_store.h"
#include "services/retrieval/retrieval_service.h"

namespace tessera::testing {

absl::StatusOr<RetrievalWithEngine> StartRetrievalWithEngine(const std::string& dir,
                                                             grpc::Service* engine) {
  TesseraServer::Options o;
  o.data_dir = dir;
  o.listen = "127.0.0.1:0";
  o.implementations["engine"] = engine;
  o.factories["retrieval"] = [dir](TesseraServer* server)
      -> absl::StatusOr<std::unique_ptr<grpc::Service>> {
    retrieval::RetrievalServiceImpl::Options ro;
    ro.data_dir = dir + "/retrieval";
    ro.engine_channel = [server] { return server->Channel("engine"); };
    ASSIGN_OR_RETURN(auto s, retrieval::RetrievalServiceImpl::Create(ro));
    return std::unique_ptr<grpc::Service>(std::move(s));
  };
  RetrievalWithEngine out;
  ASSIGN_OR_RETURN(out.server, TesseraServer::Start(o));
  ASSIGN_OR_RETURN(auto keys, ApiKeyStore::Open(dir + "/admin.db", RealClock()));
  ApiKeyStore::CreateOptions ko;
  ko.principal.user = "it@acme.example";
  ko.role = KeyRole::kAdmin;
  ASSIGN_OR_RETURN(auto created, keys->Create(ko));
  out.admin_key = created.token;
  return out;
}

}  // namespace tessera::testing
