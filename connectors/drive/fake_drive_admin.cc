#include "connectors/drive/fake_drive_admin.h"

#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace tessera::connectors::drive {
namespace {

using Json = nlohmann::json;

absl::Status Bad(absl::string_view what) { return absl::InvalidArgumentError(what); }

absl::StatusOr<std::string> Str(const Json &j, const char *key, bool required = true) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (required) return Bad(absl::StrCat(key, ": required"));
    return std::string();
  }
  if (!it->is_string()) return Bad(absl::StrCat(key, ": must be a string"));
  return it->get<std::string>();
}

absl::StatusOr<std::vector<std::string>> Strings(const Json &j, const char *key) {
  std::vector<std::string> out;
  auto it = j.find(key);
  if (it == j.end()) return out;
  if (!it->is_array()) return Bad(absl::StrCat(key, ": must be an array"));
  for (const Json &v : *it) {
    if (!v.is_string()) return Bad(absl::StrCat(key, ": must hold strings"));
    out.push_back(v.get<std::string>());
  }
  return out;
}

absl::StatusOr<FakePermission> Permission(const Json &j) {
  if (!j.is_object()) return Bad("permission: must be an object");
  FakePermission p;
  auto s = [&](const char *k, std::string *out) -> absl::Status {
    absl::StatusOr<std::string> v = Str(j, k, false);
    if (!v.ok()) return v.status();
    if (!v->empty()) *out = *v;
    return absl::OkStatus();
  };
  if (auto st = s("id", &p.id); !st.ok()) return st;
  if (auto st = s("type", &p.type); !st.ok()) return st;
  if (auto st = s("role", &p.role); !st.ok()) return st;
  if (auto st = s("email", &p.email); !st.ok()) return st;
  if (auto st = s("domain", &p.domain); !st.ok()) return st;
  if (p.type != "user" && p.type != "group" && p.type != "domain" && p.type != "anyone") {
    return Bad("permission.type: one of user, group, domain, anyone");
  }
  if (auto it = j.find("allow_file_discovery"); it != j.end()) {
    if (!it->is_boolean()) return Bad("permission.allow_file_discovery: must be a boolean");
    p.allow_file_discovery = it->get<bool>();
  }
  return p;
}

absl::StatusOr<std::vector<FakePermission>> Permissions(const Json &j, const char *key) {
  std::vector<FakePermission> out;
  auto it = j.find(key);
  if (it == j.end()) return out;
  if (!it->is_array()) return Bad(absl::StrCat(key, ": must be an array"));
  for (const Json &v : *it) {
    absl::StatusOr<FakePermission> p = Permission(v);
    if (!p.ok()) return p.status();
    out.push_back(*std::move(p));
  }
  return out;
}

#define ADMIN_ASSIGN(lhs, expr)                 \
  auto lhs##_or = (expr);                       \
  if (!lhs##_or.ok()) return lhs##_or.status(); \
  auto lhs = *std::move(lhs##_or)

absl::StatusOr<Json> Execute(FakeDriveServer &server, const Json &cmd) {
  if (!cmd.is_object()) return Bad("a command is a JSON object");
  ADMIN_ASSIGN(op, Str(cmd, "op"));
  if (op == "ping") return Json::object();
  if (op == "latency") {
    auto it = cmd.find("ms");
    if (it == cmd.end() || !it->is_number_integer() || it->get<int64_t>() < 0) {
      return Bad("ms: a non-negative integer");
    }
    server.SetLatency(absl::Milliseconds(it->get<int64_t>()));
    return Json::object();
  }
  if (op == "add_shared_drive") {
    FakeSharedDrive d;
    ADMIN_ASSIGN(id, Str(cmd, "id"));
    ADMIN_ASSIGN(name, Str(cmd, "name", false));
    ADMIN_ASSIGN(members, Permissions(cmd, "members"));
    d.id = id;
    d.name = name.empty() ? id : name;
    d.members = std::move(members);
    server.AddSharedDrive(std::move(d));
    return Json::object();
  }
  if (op == "create") {
    auto it = cmd.find("file");
    if (it == cmd.end() || !it->is_object()) return Bad("file: required object");
    const Json &j = *it;
    FakeFile f;
    ADMIN_ASSIGN(id, Str(j, "id", false));
    ADMIN_ASSIGN(name, Str(j, "name"));
    ADMIN_ASSIGN(mime, Str(j, "mime_type", false));
    ADMIN_ASSIGN(content, Str(j, "content", false));
    ADMIN_ASSIGN(drive_id, Str(j, "drive_id", false));
    ADMIN_ASSIGN(owner, Str(j, "owner", false));
    ADMIN_ASSIGN(target, Str(j, "shortcut_target_id", false));
    ADMIN_ASSIGN(parents, Strings(j, "parents"));
    ADMIN_ASSIGN(perms, Permissions(j, "permissions"));
    f.id = id;
    f.name = name;
    if (!mime.empty()) f.mime_type = mime;
    f.content = content;
    f.drive_id = drive_id;
    f.owner = owner;
    f.shortcut_target_id = target;
    f.parents = std::move(parents);
    f.permissions = std::move(perms);
    if (auto t = j.find("trashed"); t != j.end() && t->is_boolean()) f.trashed = t->get<bool>();
    ADMIN_ASSIGN(new_id, server.CreateFile(std::move(f)));
    return Json{{"id", new_id}};
  }
  if (op != "edit" && op != "rename" && op != "move" && op != "trash" && op != "delete" &&
      op != "share" && op != "unshare") {
    return Bad(absl::StrCat("unknown op \"", op, "\""));
  }
  ADMIN_ASSIGN(id, Str(cmd, "id"));
  absl::Status s;
  if (op == "edit") {
    ADMIN_ASSIGN(content, Str(cmd, "content"));
    s = server.EditFile(id, content);
  } else if (op == "rename") {
    ADMIN_ASSIGN(name, Str(cmd, "name"));
    s = server.RenameFile(id, name);
  } else if (op == "move") {
    ADMIN_ASSIGN(parents, Strings(cmd, "parents"));
    ADMIN_ASSIGN(drive_id, Str(cmd, "drive_id", false));
    s = server.MoveFile(id, std::move(parents), drive_id);
  } else if (op == "trash") {
    bool trashed = true;
    if (auto t = cmd.find("trashed"); t != cmd.end()) {
      if (!t->is_boolean()) return Bad("trashed: must be a boolean");
      trashed = t->get<bool>();
    }
    s = server.TrashFile(id, trashed);
  } else if (op == "delete") {
    s = server.DeleteFile(id);
  } else if (op == "share") {
    auto it = cmd.find("permission");
    if (it == cmd.end()) return Bad("permission: required");
    ADMIN_ASSIGN(p, Permission(*it));
    ADMIN_ASSIGN(pid, server.Share(id, std::move(p)));
    return Json{{"permission_id", pid}};
  } else if (op == "unshare") {
    ADMIN_ASSIGN(pid, Str(cmd, "permission_id"));
    s = server.Unshare(id, pid);
  } else {
    return Bad(absl::StrCat("unknown op \"", op, "\""));
  }
  if (!s.ok()) return s;
  return Json::object();
}

}  // namespace

std::string ExecuteFakeDriveCommand(FakeDriveServer &server, absl::string_view line) {
  Json cmd = Json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  Json answer;
  if (cmd.is_discarded()) {
    answer = {{"ok", false}, {"error", "not valid JSON"}};
  } else {
    absl::StatusOr<Json> r = Execute(server, cmd);
    if (r.ok()) {
      answer = *std::move(r);
      answer["ok"] = true;
    } else {
      answer = {{"ok", false}, {"error", r.status().ToString()}};
    }
  }
  return answer.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace tessera::connectors::drive
