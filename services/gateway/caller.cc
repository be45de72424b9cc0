#include "services/gateway/caller.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace tessera {
namespace {

std::string Get(const std::multimap<grpc::string_ref, grpc::string_ref>& md, const char* key) {
  auto it = md.find(key);
  if (it == md.end()) return "";
  return std::string(it->second.data(), it->second.size());
}

}  // namespace

std::vector<std::string> Caller::AclPrincipals() const {
  std::vector<std::string> out;
  out.push_back(absl::StrCat("user:", principal.user));
  for (const auto& g : principal.groups) out.push_back(absl::StrCat("group:", g));
  size_t at = principal.user.rfind('@');
  if (at != std::string::npos && at + 1 < principal.user.size()) {
    out.push_back(absl::StrCat("domain:", principal.user.substr(at + 1)));
  }
  out.push_back("anyone");
  return out;
}

Caller CallerFromKey(const ApiKeyRecord& key) {
  Caller c;
  c.principal = key.principal;
  c.key_id = key.key_id;
  c.role = key.role;
  return c;
}

void AttachCaller(const Caller& caller, grpc::ClientContext* context) {
  context->AddMetadata(kCallerTenantHeader, caller.principal.tenant);
  context->AddMetadata(kCallerUserHeader, caller.principal.user);
  context->AddMetadata(kCallerGroupsHeader, absl::StrJoin(caller.principal.groups, ","));
  context->AddMetadata(kCallerKeyIdHeader, caller.key_id);
  context->AddMetadata(kCallerRoleHeader, caller.role == KeyRole::kAdmin ? "admin" : "user");
}

absl::StatusOr<Caller> CallerFromContext(const grpc::ServerContextBase& context) {
  const auto& md = context.client_metadata();
  Caller c;
  c.principal.user = Get(md, kCallerUserHeader);
  if (c.principal.user.empty()) {
    return absl::UnauthenticatedError("call did not come through the authenticating gateway");
  }
  c.principal.tenant = Get(md, kCallerTenantHeader);
  std::string groups = Get(md, kCallerGroupsHeader);
  if (!groups.empty()) c.principal.groups = absl::StrSplit(groups, ',');
  c.key_id = Get(md, kCallerKeyIdHeader);
  c.role = Get(md, kCallerRoleHeader) == "admin" ? KeyRole::kAdmin : KeyRole::kUser;
  return c;
}

absl::StatusOr<Caller> RequireAdmin(const Caller& caller, absl::string_view what) {
  if (!caller.is_admin()) {
    return absl::PermissionDeniedError(absl::StrCat(what, " needs an admin key; ",
                                                    caller.principal.user, " holds a user key"));
  }
  return caller;
}

}  // namespace tessera
