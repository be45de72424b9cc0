// The authenticated caller of an RPC, as the gateway vouches for it.
//
// Every external call enters through the gateway's AuthProxy, which checks the
// bearer key and forwards the call to the service over a channel that outside
// clients cannot reach (the in-process channel), with the caller attached as
// x-tessera-* metadata built from the key store, never copied from the client.
// Services call CallerFromContext() to learn who is asking; it fails with
// UNAUTHENTICATED if the call did not come through the gateway.
#ifndef TESSERA_SERVICES_GATEWAY_CALLER_H_
#define TESSERA_SERVICES_GATEWAY_CALLER_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/client_context.h"
#include "grpcpp/server_context.h"
#include "services/gateway/api_key_store.h"

namespace tessera {

struct Caller {
  KeyPrincipal principal;
  std::string key_id;
  KeyRole role = KeyRole::kUser;
  bool is_admin() const { return role == KeyRole::kAdmin; }
  // ACL principal strings this caller holds: "user:<u>", "group:<g>" for each
  // group, "domain:<d>" for the user's email domain, and "anyone".
  std::vector<std::string> AclPrincipals() const;
};

inline constexpr char kCallerTenantHeader[] = "x-tessera-tenant";
inline constexpr char kCallerUserHeader[] = "x-tessera-user";
inline constexpr char kCallerGroupsHeader[] = "x-tessera-groups";
inline constexpr char kCallerKeyIdHeader[] = "x-tessera-key-id";
inline constexpr char kCallerRoleHeader[] = "x-tessera-role";

// Used by the gateway when it forwards a call.
void AttachCaller(const Caller& caller, grpc::ClientContext* context);
Caller CallerFromKey(const ApiKeyRecord& key);

// Used by services. UNAUTHENTICATED when no caller is attached.
[[nodiscard]] absl::StatusOr<Caller> CallerFromContext(const grpc::ServerContextBase& context);

// The caller, who must hold an admin key: PERMISSION_DENIED naming `what`
// (the operation) otherwise.
[[nodiscard]] absl::StatusOr<Caller> RequireAdmin(const Caller& caller, absl::string_view what);

}  // namespace tessera

#endif  // TESSERA_SERVICES_GATEWAY_CALLER_H_
