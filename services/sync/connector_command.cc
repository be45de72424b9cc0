#include "services/sync/connector_command.h"

#include <signal.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/file_system.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace tessera::sync {
namespace {

using Json = nlohmann::json;

int Report(const char *cmd, const absl::Status &s, FILE *err) {
  std::fprintf(err, "tessera connector %s: %s\n", cmd, std::string(s.message()).c_str());
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kAlreadyExists:
      return 2;
    default:
      return 1;
  }
}

std::string StateDir(const ConnectorCommandOptions &o) {
  return o.state_dir.empty() ? o.sync_config + ".state" : o.state_dir;
}

std::string Schedule(const ConnectorConfig &c) {
  if (!c.enabled) return "disabled";
  return absl::StrCat("every ", absl::FormatDuration(c.interval));
}

std::string When(absl::Time t) {
  if (t == absl::InfinitePast()) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%SZ", t, absl::UTCTimeZone());
}

bool DefaultPidAlive(int64_t pid) {
  if (pid <= 0) return false;
  return kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

// Reads and validates the connectors file as JSON (kept raw, so that what
// `add` writes back is what the operator wrote, token_env included).
absl::StatusOr<Json> ReadConnectorsFile(const std::string &path, FileSystem *fs) {
  ASSIGN_OR_RETURN(std::string text, fs->ReadFile(path, 4 << 20));
  SyncConfigParseOptions po;
  po.resolve_token_env = false;
  RETURN_IF_ERROR(ParseSyncConfig(text, path, po).status());
  return Json::parse(text, nullptr, /*allow_exceptions=*/false);
}

}  // namespace

std::string RenderConnectorTable(const std::vector<ConnectorListRow> &rows) {
  std::vector<std::vector<std::string>> cells;
  cells.push_back({"NAME", "KIND", "COLLECTION", "SCHEDULE", "STATUS", "LAST SYNC", "SEEN",
                   "INDEXED", "FAILED", "ERROR"});
  for (const ConnectorListRow &r : rows) {
    std::vector<std::string> c = {r.config.id, r.config.type, r.config.collection,
                                  Schedule(r.config)};
    if (!r.record.has_value()) {
      c.insert(c.end(), {"never run", "-", "-", "-", "-", ""});
    } else {
      const SyncRunRecord &rec = *r.record;
      std::string status;
      absl::Time when = rec.finished;
      if (rec.running) {
        status = r.writer_alive ? "running" : "interrupted";
        when = rec.started;
      } else {
        status = rec.error.empty() ? "ok" : "failed";
      }
      c.insert(c.end(), {status, When(when), absl::StrCat(rec.seen), absl::StrCat(rec.indexed),
                         absl::StrCat(rec.failed), rec.error});
    }
    cells.push_back(std::move(c));
  }
  std::vector<size_t> width(cells[0].size(), 0);
  for (const auto &row : cells) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto &row : cells) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      if (i + 1 == row.size()) {
        absl::StrAppend(&line, row[i]);
      } else {
        absl::StrAppend(&line, absl::StrFormat("%-*s  ", static_cast<int>(width[i]), row[i]));
      }
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

int ConnectorAddCommand(const ConnectorCommandOptions &o, FILE *out, FILE *err) {
  if (o.sync_config.empty()) {
    std::fprintf(err,
                 "tessera connector add: --sync_config=FILE.json (the connectors file the "
                 "daemon reads) is required\n");
    return 2;
  }
  if (o.kind != "drive" && o.kind != "gmail" && o.kind != "sharepoint") {
    std::fprintf(err, "tessera connector add: unsupported kind \"%s\"; supported: drive, gmail, sharepoint\n",
                 o.kind.c_str());
    return 2;
  }
  if (o.config_path.empty()) {
    std::fprintf(err, "tessera connector add: --config=FILE (the connector's JSON) is required\n");
    return 2;
  }
  FileSystem *fs = LocalFileSystem();
  absl::StatusOr<std::string> text = fs->ReadFile(o.config_path, 1 << 20);
  if (!text.ok()) return Report("add", text.status(), err);
  Json obj = Json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (obj.is_discarded()) {
    return Report("add", absl::InvalidArgumentError(o.config_path + ": not valid JSON"), err);
  }
  if (!obj.is_object()) {
    return Report("add", absl::InvalidArgumentError(o.config_path + ": must be a connector object"),
                  err);
  }
  // KIND and --name fill in what the file leaves out; they may not contradict it.
  if (auto it = obj.find("type"); it == obj.end()) {
    obj["type"] = o.kind;
  } else if (!it->is_string() || it->get<std::string>() != o.kind) {
    return Report("add",
                  absl::InvalidArgumentError(absl::StrCat(o.config_path, ": type: ", it->dump(),
                                                          " does not match the kind ", o.kind)),
                  err);
  }
  if (!o.name.empty()) {
    if (auto it = obj.find("id");
        it != obj.end() && (!it->is_string() || it->get<std::string>() != o.name)) {
      return Report("add",
                    absl::InvalidArgumentError(absl::StrCat(o.config_path, ": id: ", it->dump(),
                                                            " differs from --name=", o.name)),
                    err);
    }
    obj["id"] = o.name;
  } else if (obj.find("id") == obj.end()) {
    return Report("add",
                  absl::InvalidArgumentError(
                      absl::StrCat(o.config_path, ": id: required (or pass --name=NAME)")),
                  err);
  }
  const std::string candidate = obj.dump(2, ' ', false, Json::error_handler_t::replace);
  SyncConfigParseOptions po;
  po.resolve_token_env = false;
  absl::StatusOr<ConnectorConfig> added = ParseConnectorConfig(candidate, o.config_path, po);
  if (!added.ok()) return Report("add", added.status(), err);

  Json root;
  if (fs->Exists(o.sync_config)) {
    absl::StatusOr<Json> existing = ReadConnectorsFile(o.sync_config, fs);
    if (!existing.ok()) return Report("add", existing.status(), err);
    root = *std::move(existing);
    for (const Json &c : root["connectors"]) {
      if (c.value("id", "") == added->id) {
        return Report("add",
                      absl::AlreadyExistsError(absl::StrCat("a connector named \"", added->id,
                                                            "\" already exists in ", o.sync_config,
                                                            "; choose another --name")),
                      err);
      }
    }
  } else {
    root = Json{{"connectors", Json::array()}};
  }
  root["connectors"].push_back(obj);
  const std::string new_text = root.dump(2, ' ', false, Json::error_handler_t::replace) + "\n";
  // The whole file must still be valid (e.g. one collection per connector of a kind).
  absl::Status valid = ParseSyncConfig(new_text, o.sync_config, po).status();
  if (!valid.ok()) return Report("add", valid, err);

  const size_t slash = o.sync_config.find_last_of('/');
  if (slash != std::string::npos && slash > 0) {
    absl::Status s = fs->CreateDirectories(o.sync_config.substr(0, slash), 0700);
    if (!s.ok()) return Report("add", s, err);
  }
  absl::Status s = fs->WriteFileAtomic(o.sync_config, new_text, 0600);
  if (!s.ok()) return Report("add", s, err);

  std::fprintf(out, "added connector %s (%s) to %s: collection %s, %s", added->id.c_str(),
               added->type.c_str(), o.sync_config.c_str(), added->collection.c_str(),
               Schedule(*added).c_str());
  if (added->type == "drive") std::fprintf(out, ", %s", added->drive.options.base_url.c_str());
  if (added->type == "gmail") std::fprintf(out, ", %s", added->gmail.options.base_url.c_str());
  if (added->type == "sharepoint") std::fprintf(out, ", %s", added->sharepoint.options.base_url.c_str());
  std::fprintf(out, "\n");
  if (auto d = obj.find(o.kind); d != obj.end() && d->contains("token_env")) {
    const std::string var = (*d)["token_env"].get<std::string>();
    const char *v = std::getenv(var.c_str());
    if (v == nullptr || *v == '\0') {
      std::fprintf(err,
                   "tessera connector add: note: %s is not set here; `tessera sync` needs it "
                   "in its environment\n",
                   var.c_str());
    }
  }
  std::fprintf(out, "`tessera sync --sync_config=%s` picks it up when (re)started\n",
               o.sync_config.c_str());
  return 0;
}

int ConnectorListCommand(const ConnectorCommandOptions &o, FILE *out, FILE *err) {
  if (o.sync_config.empty()) {
    std::fprintf(err, "tessera connector list: --sync_config=FILE.json is required\n");
    return 2;
  }
  FileSystem *fs = LocalFileSystem();
  SyncConfigParseOptions po;
  po.resolve_token_env = false;
  absl::StatusOr<SyncConfig> config = LoadSyncConfig(o.sync_config, fs, po);
  if (absl::IsNotFound(config.status())) {
    std::fprintf(err,
                 "tessera connector list: %s does not exist; add a connector with `tessera "
                 "connector add drive --config=FILE --sync_config=%s`\n",
                 o.sync_config.c_str(), o.sync_config.c_str());
    return 1;
  }
  if (!config.ok()) return Report("list", config.status(), err);
  const std::string state_dir = StateDir(o);
  auto alive = o.pid_alive ? o.pid_alive : DefaultPidAlive;
  std::vector<ConnectorListRow> rows;
  for (const ConnectorConfig &c : config->connectors) {
    ConnectorListRow row;
    row.config = c;
    absl::StatusOr<std::optional<SyncRunRecord>> rec = ReadSyncRunRecord(state_dir, c.id, fs);
    if (!rec.ok()) {
      std::fprintf(err, "tessera connector list: %s: %s\n", c.id.c_str(),
                   std::string(rec.status().message()).c_str());
    } else {
      row.record = *rec;
      if (row.record.has_value() && row.record->running) {
        row.writer_alive = alive(row.record->pid);
      }
    }
    rows.push_back(std::move(row));
  }
  if (rows.empty()) {
    std::fprintf(out, "no connectors in %s\n", o.sync_config.c_str());
    return 0;
  }
  std::fputs(RenderConnectorTable(rows).c_str(), out);
  return 0;
}

std::string TakeConnectorConfigArg(int *argc, char **argv) {
  bool is_add = false;
  for (int i = 1; i + 1 < *argc; ++i) {
    if (absl::string_view(argv[i]) == "connector" && absl::string_view(argv[i + 1]) == "add") {
      is_add = true;
      break;
    }
  }
  if (!is_add) return "";
  std::string found;
  int w = 1;
  for (int i = 1; i < *argc; ++i) {
    absl::string_view a = argv[i];
    if (absl::StartsWith(a, "--config=") || absl::StartsWith(a, "-config=")) {
      found = std::string(a.substr(a.find('=') + 1));
      continue;
    }
    if ((a == "--config" || a == "-config") && i + 1 < *argc) {
      found = argv[++i];
      continue;
    }
    argv[w++] = argv[i];
  }
  *argc = w;
  argv[w] = nullptr;
  return found;
}

}  // namespace tessera::sync
