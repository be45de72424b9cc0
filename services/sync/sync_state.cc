#include "services/sync/sync_state.h"

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace tessera::sync {
namespace {

using Json = nlohmann::json;

std::string TimeText(absl::Time t) {
  if (t == absl::InfinitePast()) return "";
  return absl::FormatTime(absl::RFC3339_full, t, absl::UTCTimeZone());
}

bool ParseTimeText(const std::string &s, absl::Time *out) {
  if (s.empty()) {
    *out = absl::InfinitePast();
    return true;
  }
  std::string err;
  return absl::ParseTime(absl::RFC3339_full, s, out, &err);
}

}  // namespace

std::string SyncRunRecordPath(absl::string_view state_dir, absl::string_view connector_id) {
  return JoinPath(JoinPath(state_dir, "runs"), absl::StrCat(connector_id, ".json"));
}

std::string SyncRunRecordToJson(const SyncRunRecord &r) {
  Json j = {{"connector_id", r.connector_id},
            {"running", r.running},
            {"pid", r.pid},
            {"started", TimeText(r.started)},
            {"finished", TimeText(r.finished)},
            {"last_success", TimeText(r.last_success)},
            {"full_sync", r.full_sync},
            {"pages", r.pages},
            {"seen", r.seen},
            {"indexed", r.indexed},
            {"deleted", r.deleted},
            {"failed", r.failed},
            {"error", r.error}};
  return j.dump(2) + "\n";
}

absl::StatusOr<SyncRunRecord> SyncRunRecordFromJson(absl::string_view text) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("sync run record: not a JSON object");
  }
  SyncRunRecord r;
  auto str = [&](const char *k, std::string *out) {
    auto it = j.find(k);
    if (it != j.end() && it->is_string()) *out = it->get<std::string>();
  };
  auto num = [&](const char *k, int64_t *out) {
    auto it = j.find(k);
    if (it != j.end() && it->is_number_integer()) *out = it->get<int64_t>();
  };
  auto flag = [&](const char *k, bool *out) {
    auto it = j.find(k);
    if (it != j.end() && it->is_boolean()) *out = it->get<bool>();
  };
  auto time = [&](const char *k, absl::Time *out) -> absl::Status {
    std::string s;
    str(k, &s);
    if (!ParseTimeText(s, out)) {
      return absl::InvalidArgumentError(
          absl::StrCat("sync run record: ", k, ": bad time \"", s, "\""));
    }
    return absl::OkStatus();
  };
  str("connector_id", &r.connector_id);
  if (r.connector_id.empty()) {
    return absl::InvalidArgumentError("sync run record: connector_id is missing");
  }
  flag("running", &r.running);
  num("pid", &r.pid);
  RETURN_IF_ERROR(time("started", &r.started));
  RETURN_IF_ERROR(time("finished", &r.finished));
  RETURN_IF_ERROR(time("last_success", &r.last_success));
  flag("full_sync", &r.full_sync);
  num("pages", &r.pages);
  num("seen", &r.seen);
  num("indexed", &r.indexed);
  num("deleted", &r.deleted);
  num("failed", &r.failed);
  str("error", &r.error);
  return r;
}

absl::Status WriteSyncRunRecord(absl::string_view state_dir, const SyncRunRecord &record,
                                FileSystem *fs) {
  RETURN_IF_ERROR(fs->CreateDirectories(JoinPath(state_dir, "runs"), 0700));
  return fs->WriteFileAtomic(SyncRunRecordPath(state_dir, record.connector_id),
                             SyncRunRecordToJson(record), 0600);
}

absl::StatusOr<std::optional<SyncRunRecord>> ReadSyncRunRecord(absl::string_view state_dir,
                                                               absl::string_view connector_id,
                                                               FileSystem *fs) {
  const std::string path = SyncRunRecordPath(state_dir, connector_id);
  absl::StatusOr<std::string> text = fs->ReadFile(path, 1 << 20);
  if (absl::IsNotFound(text.status())) return std::optional<SyncRunRecord>();
  if (!text.ok()) return text.status();
  absl::StatusOr<SyncRunRecord> r = SyncRunRecordFromJson(*text);
  if (!r.ok()) return Annotate(r.status(), path);
  return std::optional<SyncRunRecord>(*std::move(r));
}

}  // namespace tessera::sync
