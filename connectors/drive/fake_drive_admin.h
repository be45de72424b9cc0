// FakeDriveAdmin: drives a FakeDriveServer from another process, one JSON
// command per line (the `fake_drive` binary reads them on stdin and answers
// each with one JSON line on stdout), so that end-to-end tests can build a
// company and mutate it between sync rounds.
//
// Commands ({"op": ...}; answers {"ok": true, ...} or {"ok": false,
// "error": "..."}):
//   {"op":"create", "file": FILE}            -> {"ok":true,"id":"..."}
//      FILE: id, name, mime_type, content, parents[], drive_id, owner,
//            trashed, permissions[] (PERMISSION), shortcut_target_id
//   {"op":"edit", "id":ID, "content":TEXT}
//   {"op":"rename", "id":ID, "name":NAME}
//   {"op":"move", "id":ID, "parents":[...], "drive_id":D}
//   {"op":"trash", "id":ID, "trashed":true|false}
//   {"op":"delete", "id":ID}
//   {"op":"share", "id":ID, "permission":PERMISSION} -> {"ok":true,"permission_id":"..."}
//      PERMISSION: id, type, role, email, domain, allow_file_discovery
//   {"op":"unshare", "id":ID, "permission_id":P}
//   {"op":"add_shared_drive", "id":D, "name":N, "members":[PERMISSION...]}
//   {"op":"latency", "ms":N}                 every response waits N ms
//   {"op":"ping"}
//
// Testonly. Thread-safe as the server is.
#ifndef TESSERA_CONNECTORS_DRIVE_FAKE_DRIVE_ADMIN_H_
#define TESSERA_CONNECTORS_DRIVE_FAKE_DRIVE_ADMIN_H_

#include <string>

#include "absl/strings/string_view.h"
#include "connectors/drive/fake_drive_server.h"

namespace tessera::connectors::drive {

// Runs one command line; returns the one-line JSON answer (never throws; a
// malformed line is answered {"ok":false,"error":...}).
[[nodiscard]] std::string ExecuteFakeDriveCommand(FakeDriveServer &server, absl::string_view line);

}  // namespace tessera::connectors::drive

#endif  // TESSERA_CONNECTORS_DRIVE_FAKE_DRIVE_ADMIN_H_
