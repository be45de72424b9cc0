// AuthProxy: the front door of every Tessera process.
//
// gRPC C++ cannot reject a call from an interceptor, and a check written into
// each handler is one forgotten line away from a hole. So the public server
// hosts no service handlers at all: every call (except gRPC health) lands in
// this generic callback service, which
//   1. authenticates the "authorization: Bearer <key>" metadata against the
//      ApiKeyStore (UNAUTHENTICATED otherwise),
//   2. looks the service up in the route table: a local service (reached over
//      the in-process channel of the internal server), a peer process (over
//      the network, for --only deployments), or a service not built yet
//      (UNIMPLEMENTED with a message naming it),
//   3. forwards the call byte for byte, streaming both ways with flow control,
//      with the caller attached as trusted x-tessera-* metadata (see caller.h),
//      the deadline propagated, and cancellation passed through.
//
// Reactors never block: each step is a callback. Thread-safe.
#ifndef TESSERA_SERVICES_GATEWAY_AUTH_PROXY_H_
#define TESSERA_SERVICES_GATEWAY_AUTH_PROXY_H_

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/channel.h"
#include "grpcpp/generic/async_generic_service.h"
#include "grpcpp/generic/generic_stub.h"
#include "services/gateway/api_key_store.h"

namespace tessera {

// Where calls to one gRPC service go.
struct ServiceRoute {
  // Null when the service is not available in this process (see `unavailable`).
  std::shared_ptr<grpc::Channel> channel;
  // For a remote peer: forward the caller's own bearer key, so the peer's
  // gateway authenticates it again (peers share the key database).
  bool forward_authorization = false;
  // When channel is null: the UNIMPLEMENTED message clients get.
  std::string unavailable;
};

class AuthProxy : public grpc::CallbackGenericService {
 public:
  // `keys` is not owned and must outlive the proxy. `routes` maps full
  // service names ("tessera.v1.EngineService") to their route.
  AuthProxy(ApiKeyStore* keys, std::map<std::string, ServiceRoute> routes);
  ~AuthProxy() override;

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override;

  // Blocks until every forwarded call has finished both of its sides and
  // released its resources. Call after the servers are shut down and before
  // the channels and servers are destroyed (a call can still be unwinding
  // its upstream half when the public server's Wait() returns).
  void WaitForCallsToDrain();

  // Bookkeeping of forwarded calls (used by the call objects).
  void CallStarted();
  void CallEnded();

 private:
  absl::Mutex calls_mu_;
  int live_calls_ ABSL_GUARDED_BY(calls_mu_) = 0;
  struct RouteState {
    ServiceRoute route;
    std::unique_ptr<grpc::GenericStub> stub;
  };
  ApiKeyStore* const keys_;
  std::map<std::string, RouteState> routes_;
};

}  // namespace tessera

#endif  // TESSERA_SERVICES_GATEWAY_AUTH_PROXY_H_
