#include "services/gateway/admin_service.h"

#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/status.h"
#include "google/protobuf/util/time_util.h"
#include "services/gateway/caller.h"

namespace tessera {
namespace {

using google::protobuf::util::TimeUtil;

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  return TimeUtil::MicrosecondsToTimestamp(absl::ToUnixMicros(t));
}

v1::ApiKeyRole ToProtoRole(KeyRole r) {
  return r == KeyRole::kAdmin ? v1::API_KEY_ROLE_ADMIN : v1::API_KEY_ROLE_USER;
}

absl::StatusOr<Caller> RequireAdmin(grpc::ServerContext* ctx, absl::string_view what) {
  ASSIGN_OR_RETURN(Caller caller, CallerFromContext(*ctx));
  return tessera::RequireAdmin(caller, what);
}

grpc::Status NotBuilt(absl::string_view what) {
  return grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                      absl::StrCat("AdminService.", what,
                                   " is not built yet: tenants, principals and groups are "
                                   "managed through API keys for now (tessera admin create-key)"));
}

}  // namespace

void ToProto(const ApiKeyRecord& record, v1::ApiKey* out) {
  out->set_key_id(record.key_id);
  out->mutable_principal()->set_user(record.principal.user);
  out->mutable_principal()->set_tenant(record.principal.tenant);
  for (const auto& g : record.principal.groups) out->mutable_principal()->add_groups(g);
  out->set_role(ToProtoRole(record.role));
  out->set_description(record.description);
  *out->mutable_create_time() = ToTimestamp(record.create_time);
  if (record.expire_time) *out->mutable_expire_time() = ToTimestamp(*record.expire_time);
  if (record.last_used_time) *out->mutable_last_used_time() = ToTimestamp(*record.last_used_time);
  out->set_revoked(record.revoked);
}

grpc::Status AdminServiceImpl::WhoAmI(grpc::ServerContext* ctx, const v1::WhoAmIRequest*,
                                      v1::WhoAmIResponse* resp) {
  absl::StatusOr<Caller> caller = CallerFromContext(*ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  resp->mutable_principal()->set_user(caller->principal.user);
  resp->mutable_principal()->set_tenant(caller->principal.tenant);
  for (const auto& g : caller->principal.groups) resp->mutable_principal()->add_groups(g);
  resp->set_key_id(caller->key_id);
  resp->set_role(ToProtoRole(caller->role));
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::CreateApiKey(grpc::ServerContext* ctx,
                                            const v1::CreateApiKeyRequest* req,
                                            v1::CreateApiKeyResponse* resp) {
  absl::StatusOr<Caller> caller = RequireAdmin(ctx, "CreateApiKey");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  ApiKeyStore::CreateOptions opts;
  opts.principal.user = req->principal().user();
  opts.principal.tenant =
      req->principal().tenant().empty() ? caller->principal.tenant : req->principal().tenant();
  if (opts.principal.tenant != caller->principal.tenant) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        "an admin key can create keys only in its own tenant");
  }
  opts.principal.groups.assign(req->principal().groups().begin(), req->principal().groups().end());
  opts.role = req->role() == v1::API_KEY_ROLE_ADMIN ? KeyRole::kAdmin : KeyRole::kUser;
  opts.description = req->description();
  if (req->has_expire_time()) {
    opts.expire_time = absl::FromUnixMicros(TimeUtil::TimestampToMicroseconds(req->expire_time()));
  }
  absl::StatusOr<CreatedKey> created = keys_->Create(opts);
  if (!created.ok()) return ToGrpcStatus(created.status());
  ToProto(created->record, resp->mutable_key());
  resp->set_secret(created->token);
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::ListApiKeys(grpc::ServerContext* ctx,
                                           const v1::ListApiKeysRequest* req,
                                           v1::ListApiKeysResponse* resp) {
  absl::StatusOr<Caller> caller = RequireAdmin(ctx, "ListApiKeys");
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (!req->tenant().empty() && req->tenant() != caller->principal.tenant) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        "an admin key can list keys only of its own tenant");
  }
  if (req->page_size() < 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "page_size must not be negative");
  }
  const int page_size = req->page_size() == 0 ? 100 : std::min(req->page_size(), 1000);
  uint64_t offset = 0;
  if (!req->page_token().empty() && !absl::SimpleAtoi(req->page_token(), &offset)) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "page_token is not one this server issued");
  }
  absl::StatusOr<std::vector<ApiKeyRecord>> all = keys_->List(caller->principal.tenant);
  if (!all.ok()) return ToGrpcStatus(all.status());
  for (uint64_t i = offset; i < all->size() && i < offset + page_size; ++i) {
    ToProto((*all)[i], resp->add_keys());
  }
  if (offset + page_size < all->size()) resp->set_next_page_token(absl::StrCat(offset + page_size));
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::RevokeApiKey(grpc::ServerContext* ctx,
                                            const v1::RevokeApiKeyRequest* req,
                                            v1::RevokeApiKeyResponse* resp) {
  absl::StatusOr<Caller> caller = CallerFromContext(*ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  absl::StatusOr<ApiKeyRecord> target = keys_->Get(req->key_id());
  // Keys of other tenants look the same as keys that do not exist.
  if (!target.ok() || target->principal.tenant != caller->principal.tenant) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND,
                        absl::StrCat("no API key with id '", req->key_id(), "'"));
  }
  if (!caller->is_admin() && req->key_id() != caller->key_id) {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                        "a user key can revoke only itself; ask an admin");
  }
  absl::StatusOr<ApiKeyRecord> revoked = keys_->Revoke(req->key_id());
  if (!revoked.ok()) return ToGrpcStatus(revoked.status());
  ToProto(*revoked, resp->mutable_key());
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::CreateTenant(grpc::ServerContext*, const v1::CreateTenantRequest*,
                                            v1::CreateTenantResponse*) {
  return NotBuilt("CreateTenant");
}
grpc::Status AdminServiceImpl::GetTenant(grpc::ServerContext*, const v1::GetTenantRequest*,
                                         v1::GetTenantResponse*) {
  return NotBuilt("GetTenant");
}
grpc::Status AdminServiceImpl::ListTenants(grpc::ServerContext*, const v1::ListTenantsRequest*,
                                           v1::ListTenantsResponse*) {
  return NotBuilt("ListTenants");
}
grpc::Status AdminServiceImpl::UpsertPrincipal(grpc::ServerContext*,
                                               const v1::UpsertPrincipalRequest*,
                                               v1::UpsertPrincipalResponse*) {
  return NotBuilt("UpsertPrincipal");
}
grpc::Status AdminServiceImpl::GetPrincipal(grpc::ServerContext*, const v1::GetPrincipalRequest*,
                                            v1::GetPrincipalResponse*) {
  return NotBuilt("GetPrincipal");
}
grpc::Status AdminServiceImpl::ListPrincipals(grpc::ServerContext*,
                                              const v1::ListPrincipalsRequest*,
                                              v1::ListPrincipalsResponse*) {
  return NotBuilt("ListPrincipals");
}
grpc::Status AdminServiceImpl::DeletePrincipal(grpc::ServerContext*,
                                               const v1::DeletePrincipalRequest*,
                                               v1::DeletePrincipalResponse*) {
  return NotBuilt("DeletePrincipal");
}
grpc::Status AdminServiceImpl::CreateGroup(grpc::ServerContext*, const v1::CreateGroupRequest*,
                                           v1::CreateGroupResponse*) {
  return NotBuilt("CreateGroup");
}
grpc::Status AdminServiceImpl::ListGroups(grpc::ServerContext*, const v1::ListGroupsRequest*,
                                          v1::ListGroupsResponse*) {
  return NotBuilt("ListGroups");
}
grpc::Status AdminServiceImpl::DeleteGroup(grpc::ServerContext*, const v1::DeleteGroupRequest*,
                                           v1::DeleteGroupResponse*) {
  return NotBuilt("DeleteGroup");
}
grpc::Status AdminServiceImpl::AddGroupMember(grpc::ServerContext*,
                                              const v1::AddGroupMemberRequest*,
                                              v1::AddGroupMemberResponse*) {
  return NotBuilt("AddGroupMember");
}
grpc::Status AdminServiceImpl::RemoveGroupMember(grpc::ServerContext*,
                                                 const v1::RemoveGroupMemberRequest*,
                                                 v1::RemoveGroupMemberResponse*) {
  return NotBuilt("RemoveGroupMember");
}

}  // namespace tessera
