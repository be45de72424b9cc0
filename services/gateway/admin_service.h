// AdminService: API keys (and, later, tenants, principals and groups).
//
// Runs on the internal server behind the AuthProxy, so every call carries an
// authenticated Caller. Policy: WhoAmI is open to any key; creating, listing
// and revoking keys need an admin key of the same tenant, except that a user
// may revoke their own key. Tenant, principal and group management are not
// built yet and answer UNIMPLEMENTED saying so.
#ifndef TESSERA_SERVICES_GATEWAY_ADMIN_SERVICE_H_
#define TESSERA_SERVICES_GATEWAY_ADMIN_SERVICE_H_

#include "services/gateway/api_key_store.h"
#include "tessera/v1/admin.grpc.pb.h"

namespace tessera {

class AdminServiceImpl final : public tessera::v1::AdminService::Service {
 public:
  // `keys` is not owned and must outlive the service.
  explicit AdminServiceImpl(ApiKeyStore* keys) : keys_(keys) {}

  grpc::Status WhoAmI(grpc::ServerContext* ctx, const v1::WhoAmIRequest* req,
                      v1::WhoAmIResponse* resp) override;
  grpc::Status CreateApiKey(grpc::ServerContext* ctx, const v1::CreateApiKeyRequest* req,
                            v1::CreateApiKeyResponse* resp) override;
  grpc::Status ListApiKeys(grpc::ServerContext* ctx, const v1::ListApiKeysRequest* req,
                           v1::ListApiKeysResponse* resp) override;
  grpc::Status RevokeApiKey(grpc::ServerContext* ctx, const v1::RevokeApiKeyRequest* req,
                            v1::RevokeApiKeyResponse* resp) override;

  grpc::Status CreateTenant(grpc::ServerContext*, const v1::CreateTenantRequest*,
                            v1::CreateTenantResponse*) override;
  grpc::Status GetTenant(grpc::ServerContext*, const v1::GetTenantRequest*,
                         v1::GetTenantResponse*) override;
  grpc::Status ListTenants(grpc::ServerContext*, const v1::ListTenantsRequest*,
                           v1::ListTenantsResponse*) override;
  grpc::Status UpsertPrincipal(grpc::ServerContext*, const v1::UpsertPrincipalRequest*,
                               v1::UpsertPrincipalResponse*) override;
  grpc::Status GetPrincipal(grpc::ServerContext*, const v1::GetPrincipalRequest*,
                            v1::GetPrincipalResponse*) override;
  grpc::Status ListPrincipals(grpc::ServerContext*, const v1::ListPrincipalsRequest*,
                              v1::ListPrincipalsResponse*) override;
  grpc::Status DeletePrincipal(grpc::ServerContext*, const v1::DeletePrincipalRequest*,
                               v1::DeletePrincipalResponse*) override;
  grpc::Status CreateGroup(grpc::ServerContext*, const v1::CreateGroupRequest*,
                           v1::CreateGroupResponse*) override;
  grpc::Status ListGroups(grpc::ServerContext*, const v1::ListGroupsRequest*,
                          v1::ListGroupsResponse*) override;
  grpc::Status DeleteGroup(grpc::ServerContext*, const v1::DeleteGroupRequest*,
                           v1::DeleteGroupResponse*) override;
  grpc::Status AddGroupMember(grpc::ServerContext*, const v1::AddGroupMemberRequest*,
                              v1::AddGroupMemberResponse*) override;
  grpc::Status RemoveGroupMember(grpc::ServerContext*, const v1::RemoveGroupMemberRequest*,
                                 v1::RemoveGroupMemberResponse*) override;

 private:
  ApiKeyStore* const keys_;
};

// Converts a stored key to its wire form (no secret: none is stored).
void ToProto(const ApiKeyRecord& record, v1::ApiKey* out);

}  // namespace tessera

#endif  // TESSERA_SERVICES_GATEWAY_ADMIN_SERVICE_H_
