// tessera: the all-in-one binary.
//
//   tessera serve --data_dir=DIR [--listen=HOST:PORT] [--only=engine,...] [--peers=svc=HOST:PORT,...]
//                 [--tls_cert=PEM --tls_key=PEM] [--config=FILE.json]
//   tessera admin create-key --data_dir=DIR --principal=USER [--groups=a,b] [--role=user|admin]
//   tessera admin list-keys  --data_dir=DIR
//   tessera admin revoke-key --data_dir=DIR --key_id=ID
//   tessera version
#include <signal.h>
#include <pthread.h>

#include <cstdio>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/file_system.h"
#include "common/logging.h"
#include "services/gateway/api_key_store.h"
#include "services/gateway/server.h"

ABSL_FLAG(std::string, data_dir, "", "Directory holding Tessera's state (created if missing).");
ABSL_FLAG(std::string, keys_db, "",
          "API key database (SQLite); default DATA_DIR/admin.db. Share it across a split deployment.");
ABSL_FLAG(std::string, listen, "127.0.0.1:7600",
          "HOST:PORT for the gRPC API. Port 0 picks a free port. Binds to localhost by default.");
ABSL_FLAG(std::vector<std::string>, only, {},
          "Serve only these services (engine,retrieval,sync,agents,admin); default: all.");
ABSL_FLAG(std::vector<std::string>, peers, {},
          "Where services not in --only run: SERVICE=HOST:PORT,...");
ABSL_FLAG(bool, peer_tls, false, "Use TLS (system roots) for calls to --peers.");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain; with --tls_key serves TLS.");
ABSL_FLAG(std::string, tls_key, "", "PEM private key for --tls_cert.");
ABSL_FLAG(absl::Duration, grace_period, absl::Seconds(10),
          "On SIGTERM, how long running calls may take to finish.");
ABSL_FLAG(std::string, port_file, "", "If set, the bound port is written to this file once serving.");
ABSL_FLAG(std::string, log_level, "info", "debug, info, warning or error.");
ABSL_FLAG(std::string, log_format, "logfmt", "logfmt or json.");
ABSL_FLAG(std::string, principal, "", "admin create-key: the user the key acts as (an email).");
ABSL_FLAG(std::vector<std::string>, groups, {}, "admin create-key: the user's groups.");
ABSL_FLAG(std::string, tenant, "default", "admin create-key / list-keys: the tenant.");
ABSL_FLAG(std::string, role, "user", "admin create-key: user or admin.");
ABSL_FLAG(std::string, description, "", "admin create-key: a note on what the key is for.");
ABSL_FLAG(absl::Duration, expires_in, absl::ZeroDuration(),
          "admin create-key: lifetime (e.g. 720h); 0 = never expires.");
ABSL_FLAG(std::string, key_id, "", "admin revoke-key: the key id to revoke.");

namespace tessera {
namespace {

constexpr char kUsage[] = R"(tessera: self-hosted enterprise RAG and agents.

Commands:
  tessera serve --data_dir=DIR [--listen=127.0.0.1:7600] [--only=SERVICES] [--peers=SVC=HOST:PORT,...]
                [--tls_cert=FILE --tls_key=FILE] [--config=FILE.json]
  tessera admin create-key --data_dir=DIR --principal=USER [--groups=G1,G2] [--role=user|admin]
                [--tenant=T] [--description=TEXT] [--expires_in=720h]
  tessera admin list-keys --data_dir=DIR [--tenant=T]
  tessera admin revoke-key --data_dir=DIR --key_id=ID
  tessera version

Every flag may also be set in a JSON config file (--config); run with --help for all flags.)";

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "tessera: %s\n", std::string(status.message()).c_str());
  return status.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

int UsageError(const std::string& msg) {
  std::fprintf(stderr, "tessera: %s\n\n%s\n", msg.c_str(), kUsage);
  return 2;
}

absl::StatusOr<std::unique_ptr<ApiKeyStore>> OpenKeys() {
  std::string dir = absl::GetFlag(FLAGS_data_dir);
  if (dir.empty()) return absl::InvalidArgumentError("--data_dir is required");
  absl::Status s = LocalFileSystem()->CreateDirectories(dir, 0700);
  if (!s.ok()) return s;
  std::string db = absl::GetFlag(FLAGS_keys_db);
  return ApiKeyStore::Open(db.empty() ? JoinPath(dir, "admin.db") : db, RealClock());
}

std::string RoleName(KeyRole r) { return r == KeyRole::kAdmin ? "admin" : "user"; }

int CreateKey() {
  if (absl::GetFlag(FLAGS_principal).empty()) {
    return UsageError("admin create-key needs --principal=USER (for example ann@example.com)");
  }
  ApiKeyStore::CreateOptions opts;
  opts.principal.user = absl::GetFlag(FLAGS_principal);
  opts.principal.tenant = absl::GetFlag(FLAGS_tenant);
  for (const std::string& g : absl::GetFlag(FLAGS_groups)) {
    if (!g.empty()) opts.principal.groups.push_back(g);
  }
  std::string role = absl::GetFlag(FLAGS_role);
  if (role == "admin") {
    opts.role = KeyRole::kAdmin;
  } else if (role != "user") {
    return UsageError(absl::StrCat("--role must be user or admin, not '", role, "'"));
  }
  opts.description = absl::GetFlag(FLAGS_description);
  absl::Duration ttl = absl::GetFlag(FLAGS_expires_in);
  if (ttl < absl::ZeroDuration()) return UsageError("--expires_in must not be negative");
  if (ttl > absl::ZeroDuration()) opts.expire_time = absl::Now() + ttl;
  auto keys = OpenKeys();
  if (!keys.ok()) return Fail(keys.status());
  auto created = (*keys)->Create(opts);
  if (!created.ok()) return Fail(created.status());
  // The token goes to stdout alone (scripts capture it); the rest to stderr.
  std::fprintf(stderr, "created %s key %s for %s (tenant %s%s%s). It is shown only once:\n",
               RoleName(created->record.role).c_str(), created->record.key_id.c_str(),
               opts.principal.user.c_str(), opts.principal.tenant.c_str(),
               opts.principal.groups.empty() ? "" : ", groups ",
               absl::StrJoin(opts.principal.groups, ",").c_str());
  std::printf("%s\n", created->token.c_str());
  return 0;
}

int ListKeys() {
  auto keys = OpenKeys();
  if (!keys.ok()) return Fail(keys.status());
  auto list = (*keys)->List(absl::GetFlag(FLAGS_tenant));
  if (!list.ok()) return Fail(list.status());
  std::printf("%-16s  %-7s  %-10s  %-30s  %-8s  %s\n", "KEY_ID", "ROLE", "TENANT", "PRINCIPAL",
              "STATE", "CREATED");
  for (const ApiKeyRecord& k : *list) {
    std::string state = k.revoked ? "revoked"
                        : (k.expire_time && *k.expire_time <= absl::Now()) ? "expired" : "active";
    std::printf("%-16s  %-7s  %-10s  %-30s  %-8s  %s\n", k.key_id.c_str(),
                RoleName(k.role).c_str(), k.principal.tenant.c_str(), k.principal.user.c_str(),
                state.c_str(),
                absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", k.create_time, absl::UTCTimeZone()).c_str());
  }
  return 0;
}

int RevokeKey() {
  if (absl::GetFlag(FLAGS_key_id).empty()) return UsageError("admin revoke-key needs --key_id=ID");
  auto keys = OpenKeys();
  if (!keys.ok()) return Fail(keys.status());
  auto r = (*keys)->Revoke(absl::GetFlag(FLAGS_key_id));
  if (!r.ok()) return Fail(r.status());
  std::printf("revoked %s (%s)\n", r->key_id.c_str(), r->principal.user.c_str());
  return 0;
}

int Serve(const sigset_t& signals) {
  TesseraServer::Options opts;
  opts.data_dir = absl::GetFlag(FLAGS_data_dir);
  opts.keys_db = absl::GetFlag(FLAGS_keys_db);
  opts.listen = absl::GetFlag(FLAGS_listen);
  for (const std::string& s : absl::GetFlag(FLAGS_only)) {
    if (!s.empty()) opts.only.insert(s);
  }
  auto peers = ParsePeers(absl::GetFlag(FLAGS_peers));
  if (!peers.ok()) return Fail(peers.status());
  opts.peers = *peers;
  opts.peer_tls = absl::GetFlag(FLAGS_peer_tls);
  opts.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  opts.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  auto server = TesseraServer::Start(opts);
  if (!server.ok()) return Fail(server.status());
  if (!absl::GetFlag(FLAGS_port_file).empty()) {
    absl::Status s = LocalFileSystem()->WriteFileAtomic(absl::GetFlag(FLAGS_port_file),
                                                        absl::StrCat((*server)->port(), "\n"));
    if (!s.ok()) return Fail(s);
  }
  std::fprintf(stderr, "tessera listening on %s\n", (*server)->address().c_str());
  int sig = 0;
  sigwait(&signals, &sig);
  TLOG(INFO, "signal received").Field("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->Shutdown(absl::GetFlag(FLAGS_grace_period));
  return 0;
}

int Main(int argc, char** argv) {
  // SIGTERM/SIGINT are taken by sigwait in Serve; block them before any
  // thread starts so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto args = ParseFlagsAndConfig(argc, argv, kUsage);
  if (!args.ok()) return Fail(args.status());
  LogLevel level;
  if (!ParseLogLevel(absl::GetFlag(FLAGS_log_level), &level)) {
    return UsageError(absl::StrCat("--log_level: unknown level '", absl::GetFlag(FLAGS_log_level), "'"));
  }
  SetMinLogLevel(level);
  LogFormat format;
  if (!ParseLogFormat(absl::GetFlag(FLAGS_log_format), &format)) {
    return UsageError(absl::StrCat("--log_format: unknown format '", absl::GetFlag(FLAGS_log_format), "'"));
  }
  SetLogFormat(format);

  std::vector<std::string> cmd(args->begin() + 1, args->end());
  if (cmd.empty() || cmd[0] == "help") {
    std::printf("%s\n", kUsage);
    return cmd.empty() ? 2 : 0;
  }
  if (cmd[0] == "version") {
    std::printf("tessera 0.1.0 (wire contract tessera.v1)\n");
    return 0;
  }
  if (cmd[0] == "serve" && cmd.size() == 1) {
    return Serve(signals);
  }
  if (cmd[0] == "admin" && cmd.size() == 2) {
    if (cmd[1] == "create-key") return CreateKey();
    if (cmd[1] == "list-keys") return ListKeys();
    if (cmd[1] == "revoke-key") return RevokeKey();
  }
  return UsageError(absl::StrCat("unknown command '", absl::StrJoin(cmd, " "), "'"));
}

}  // namespace
}  // namespace tessera

int main(int argc, char** argv) { return tessera::Main(argc, argv); }
