#include "services/gateway/auth_proxy.h"

#include <atomic>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/grpc_status.h"
#include "common/logging.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/dynamic_message.h"
#include "google/protobuf/message.h"
#include "grpcpp/support/byte_buffer.h"
#include "services/gateway/caller.h"

namespace tessera {
namespace {

using grpc::ByteBuffer;

// Finishes at once with a fixed status (auth failure, unknown service...).
class RejectReactor : public grpc::ServerGenericBidiReactor {
 public:
  explicit RejectReactor(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

std::string ServiceOf(const std::string& method) {
  // "/pkg.Service/Method" -> "pkg.Service"
  if (method.size() < 2 || method[0] != '/') return "";
  size_t slash = method.find('/', 1);
  if (slash == std::string::npos) return "";
  return method.substr(1, slash - 1);
}

// One proxied call: the server side (caller -> us) and the client side
// (us -> service) with one message pump each way, one message in flight per
// direction (flow control comes from waiting for each write).
//
// Lifetime: gRPC destroys a client call as soon as no operation or hold is
// outstanding, so every upstream operation started from a downstream
// reaction is covered by a hold: one while we may still write to the service,
// one while a message is on its way to the caller. The object deletes itself
// after both sides' OnDone.
class ProxyCall {
 public:
  ProxyCall(AuthProxy* proxy, grpc::GenericCallbackServerContext* server_ctx,
            grpc::GenericStub* stub, const Caller& caller, const std::string& authorization)
      : proxy_(proxy), server_ctx_(server_ctx), downstream_(this), upstream_(this) {
    proxy_->CallStarted();
    AttachCaller(caller, &client_ctx_);
    if (!authorization.empty()) client_ctx_.AddMetadata("authorization", authorization);
    client_ctx_.set_deadline(server_ctx->deadline());
    stub->PrepareBidiStreamingCall(&client_ctx_, server_ctx->method(), grpc::StubOptions(),
                                   &upstream_);
    absl::MutexLock lock(&mu_);
    upstream_.AddHold();  // released by CloseSendingLocked()
    upstream_.StartRead(&from_service_);
    upstream_.StartCall();
    downstream_.StartRead(&from_client_);
  }

  grpc::ServerGenericBidiReactor* server_reactor() { return &downstream_; }

 private:
  // Facing the caller.
  class Downstream : public grpc::ServerGenericBidiReactor {
   public:
    explicit Downstream(ProxyCall* call) : call_(call) {}
    void OnReadDone(bool ok) override { call_->OnClientMessage(ok); }
    void OnWriteDone(bool ok) override { call_->OnClientWriteDone(ok); }
    void OnCancel() override { call_->client_ctx_.TryCancel(); }
    void OnDone() override { call_->SideDone(); }

   private:
    ProxyCall* call_;
  };
  // Facing the service.
  class Upstream : public grpc::ClientBidiReactor<ByteBuffer, ByteBuffer> {
   public:
    explicit Upstream(ProxyCall* call) : call_(call) {}
    void OnWriteDone(bool ok) override { call_->OnServiceWriteDone(ok); }
    void OnReadDone(bool ok) override { call_->OnServiceMessage(ok); }
    void OnDone(const grpc::Status& s) override { call_->OnServiceDone(s); }

   private:
    ProxyCall* call_;
  };

  // caller -> service
  void OnClientMessage(bool ok) {
    absl::MutexLock lock(&mu_);
    if (!sending_open_ || stop_sending_) {
      if (sending_open_) CloseSendingLocked();
      return;
    }
    if (ok) {
      write_in_flight_ = true;
      last_request_ = from_client_;  // shares the slices; kept to explain a parse failure
      upstream_.StartWrite(&from_client_);
    } else {
      upstream_.StartWritesDone();  // the caller half-closed
      CloseSendingLocked();
    }
  }
  void OnServiceWriteDone(bool ok) {
    absl::MutexLock lock(&mu_);
    write_in_flight_ = false;
    if (!sending_open_) return;
    if (ok && !stop_sending_) {
      downstream_.StartRead(&from_client_);
    } else {
      CloseSendingLocked();  // the service side ended; its status follows in OnDone
    }
  }
  void CloseSendingLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    sending_open_ = false;
    upstream_.RemoveHold();
  }

  // service -> caller
  void OnServiceMessage(bool ok) {
    absl::MutexLock lock(&mu_);
    if (!ok) {
      // The service ended its stream: stop forwarding the caller's messages so
      // the upstream call can complete and deliver its status.
      stop_sending_ = true;
      if (sending_open_ && !write_in_flight_) CloseSendingLocked();
      return;
    }
    writing_to_client_ = true;
    // Keep the upstream call alive until the next read is started from
    // OnClientWriteDone (a downstream reaction): without a hold, upstream could
    // complete in between and the read would touch a finished call.
    upstream_.AddHold();
    downstream_.StartWrite(&from_service_);
  }
  void OnClientWriteDone(bool ok) {
    absl::MutexLock lock(&mu_);
    writing_to_client_ = false;
    if (!ok) {
      client_ctx_.TryCancel();  // the caller went away
    } else {
      upstream_.StartRead(&from_service_);
    }
    upstream_.RemoveHold();  // taken in OnServiceMessage
    MaybeFinishLocked();
  }
  void OnServiceDone(const grpc::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      service_done_ = true;
      final_status_ = ExplainParseFailure(status);
      for (const auto& [k, v] : client_ctx_.GetServerTrailingMetadata()) {
        server_ctx_->AddTrailingMetadata(std::string(k.data(), k.size()),
                                         std::string(v.data(), v.size()));
      }
      MaybeFinishLocked();
    }
    SideDone();
  }
  // gRPC answers a request it cannot deserialise with a bare INTERNAL. When
  // that happens, find out whether the caller's message was at fault and say
  // so: INVALID_ARGUMENT naming the expected message type. Costs nothing on
  // the normal path.
  grpc::Status ExplainParseFailure(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (status.error_code() != grpc::StatusCode::INTERNAL || !status.error_message().empty() ||
        !last_request_.Valid()) {
      return status;
    }
    const std::string& method = server_ctx_->method();  // "/pkg.Service/Method"
    size_t slash = method.rfind('/');
    if (slash == std::string::npos || slash == 0) return status;
    const google::protobuf::ServiceDescriptor* service =
        google::protobuf::DescriptorPool::generated_pool()->FindServiceByName(
            method.substr(1, slash - 1));
    const google::protobuf::MethodDescriptor* m =
        service ? service->FindMethodByName(method.substr(slash + 1)) : nullptr;
    if (m == nullptr) return status;
    const google::protobuf::Message* prototype =
        google::protobuf::MessageFactory::generated_factory()->GetPrototype(m->input_type());
    if (prototype == nullptr) return status;
    std::vector<grpc::Slice> slices;
    if (!last_request_.Dump(&slices).ok()) return status;
    std::string bytes;
    for (const grpc::Slice& slice : slices) {
      bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
    }
    std::unique_ptr<google::protobuf::Message> msg(prototype->New());
    if (msg->ParseFromString(bytes)) return status;  // the request was fine: a real INTERNAL
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("the request is not a valid ", m->input_type()->full_name(),
                                     ": malformed protobuf, or a string field that is not UTF-8"));
  }

  void MaybeFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || !service_done_ || writing_to_client_) return;
    finished_ = true;
    downstream_.Finish(final_status_);
  }
  void SideDone() {
    if (sides_left_.fetch_sub(1) == 1) {
      AuthProxy* proxy = proxy_;
      delete this;
      proxy->CallEnded();  // after every resource of the call is released
    }
  }

  AuthProxy* const proxy_;
  grpc::GenericCallbackServerContext* server_ctx_;
  grpc::ClientContext client_ctx_;
  Downstream downstream_;
  Upstream upstream_;
  ByteBuffer from_client_;
  ByteBuffer from_service_;
  ByteBuffer last_request_ ABSL_GUARDED_BY(mu_);
  std::atomic<int> sides_left_{2};
  absl::Mutex mu_;
  bool sending_open_ ABSL_GUARDED_BY(mu_) = true;
  bool stop_sending_ ABSL_GUARDED_BY(mu_) = false;
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool service_done_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_to_client_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

AuthProxy::AuthProxy(ApiKeyStore* keys, std::map<std::string, ServiceRoute> routes)
    : keys_(keys) {
  for (auto& [name, route] : routes) {
    RouteState state;
    if (route.channel) state.stub = std::make_unique<grpc::GenericStub>(route.channel);
    state.route = std::move(route);
    routes_.emplace(name, std::move(state));
  }
}

AuthProxy::~AuthProxy() { WaitForCallsToDrain(); }

void AuthProxy::CallStarted() {
  absl::MutexLock lock(&calls_mu_);
  ++live_calls_;
}

void AuthProxy::CallEnded() {
  absl::MutexLock lock(&calls_mu_);
  --live_calls_;
}

void AuthProxy::WaitForCallsToDrain() {
  absl::MutexLock lock(&calls_mu_);
  auto drained = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(calls_mu_) { return live_calls_ == 0; };
  calls_mu_.Await(absl::Condition(&drained));
}

grpc::ServerGenericBidiReactor* AuthProxy::CreateReactor(grpc::GenericCallbackServerContext* ctx) {
  const std::string& method = ctx->method();
  std::string authorization;
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  if (it != md.end()) authorization.assign(it->second.data(), it->second.size());

  absl::StatusOr<std::string> token = ParseBearerToken(authorization);
  absl::StatusOr<ApiKeyRecord> key =
      token.ok() ? keys_->Authenticate(*token) : absl::StatusOr<ApiKeyRecord>(token.status());
  if (!key.ok()) {
    TLOG(INFO, "rejected call").Field("method", method).Field("peer", ctx->peer())
        .Field("reason", key.status().message());
    return new RejectReactor(ToGrpcStatus(key.status()));
  }
  const std::string service = ServiceOf(method);
  auto route = routes_.find(service);
  if (route == routes_.end()) {
    return new RejectReactor(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                          absl::StrCat("unknown service '", service, "'")));
  }
  if (route->second.stub == nullptr) {
    return new RejectReactor(
        grpc::Status(grpc::StatusCode::UNIMPLEMENTED, route->second.route.unavailable));
  }
  TLOG(DEBUG, "call").Field("method", method).Field("user", key->principal.user)
      .Field("key_id", key->key_id);
  auto* call = new ProxyCall(this, ctx, route->second.stub.get(), CallerFromKey(*key),
                             route->second.route.forward_authorization ? authorization : "");
  return call->server_reactor();
}

}  // namespace tessera
