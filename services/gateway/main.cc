// tessera: the all-in-one binary.
//
//   tessera serve --data_dir=DIR [--listen=HOST:PORT] [--only=engine,...] [--peers=svc=HOST:PORT,...]
//                 [--tls_cert=PEM --tls_key=PEM] [--config=FILE.json]
//   tessera admin create-key --data_dir=DIR --principal=USER [--groups=a,b] [--role=user|admin]
//   tessera admin list-keys  --data_dir=DIR
//   tessera admin revoke-key --data_dir=DIR --key_id=ID
//   tessera generate "PROMPT" | embed "TEXT"...   (in-process with --model_path/--engine_config)
//   tessera mcp tools|call|stdio                  (MCP servers by hand; our own tools over stdio)
//   tessera version
#include <signal.h>
#include <unistd.h>
#include <pthread.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/usage.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "google/protobuf/stubs/logging.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/file_system.h"
#include "common/logging.h"
#include "services/gateway/api_key_store.h"
#include "services/gateway/client_commands.h"
#include "common/status.h"
#include "services/gateway/server.h"
#include "agents/mcp/cli.h"
#include "services/engine/engine_commands.h"
#include "services/mcp/agent_tools.h"
#include "services/mcp/http_server.h"
#include "services/mcp/mcp_command.h"
#include "services/sync/connector_command.h"
#include "services/sync/sync_command.h"
#include "services/agents/agent_commands.h"
#include "services/agents/agent_service.h"
#include "services/agents/agents_config.h"
#include "common/http/curl_http_transport.h"
#include "services/engine/engine_service.h"
#include "services/retrieval/retrieval_service.h"

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
ABSL_FLAG(std::string, server, "127.0.0.1:7600", "Client commands: the tessera server to call.");
ABSL_FLAG(std::string, key_file, "",
          "Client commands: file holding the API key (default: the TESSERA_KEY environment variable).");
ABSL_FLAG(std::string, tls_ca, "", "Client commands: PEM roots to verify a TLS server; empty = plaintext.");
ABSL_FLAG(std::vector<std::string>, collection, {},
          "search: collections to search (default all); ingest: the one collection to fill.");
ABSL_FLAG(int32_t, top_k, 10, "search: how many hits.");
ABSL_FLAG(std::string, as, "", "search, ask: act as this user (admin keys only).");
ABSL_FLAG(std::vector<std::string>, as_groups, {}, "search, ask: the groups of --as.");
ABSL_FLAG(std::string, fusion, "rrf", "search: rrf (reciprocal rank fusion, k=60) or weighted.");
ABSL_FLAG(bool, json, false, "search: print the response as JSON.");
ABSL_FLAG(std::string, index, "Flat",
          "collection create: the FAISS factory string (Flat, HNSW32, IVF1024,PQ32, ...).");
ABSL_FLAG(std::string, model, "",
          "collection create: embedding model; empty = the built-in lexical-hash-384.");
ABSL_FLAG(std::string, mcp_listen, "",
          "serve: also serve Tessera's MCP tools over Streamable HTTP at HOST:PORT/mcp "
          "(e.g. 127.0.0.1:7610; a key is required; empty: off).");
ABSL_FLAG(std::vector<std::string>, mcp_allowed_origins, {},
          "serve: browser origins allowed to call the MCP endpoint (loopback origins always are).");
ABSL_FLAG(std::string, mcp_config, "", "mcp tools|call: the MCP servers' JSON configuration.");
ABSL_FLAG(std::string, tool, "", "mcp call: the tool to call (as `mcp tools` prints it).");
ABSL_FLAG(std::string, args, "{}", "mcp call: the tool's arguments, a JSON object.");
ABSL_FLAG(std::string, sync_config, "", "sync: the connectors' JSON file (see docs/CONNECTORS.md).");
ABSL_FLAG(std::string, sync_state_dir, "", "sync: checkpoint directory; default SYNC_CONFIG.state.");
ABSL_FLAG(bool, once, false, "sync: run every connector once, then exit.");
ABSL_FLAG(std::string, sync_progress, "auto",
          "sync: progress display: auto (live on a terminal, else plain lines), tty, plain or off.");
ABSL_FLAG(std::string, name, "", "connector add: the connector's name (its id in --sync_config).");
ABSL_FLAG(std::string, engine_config, "",
          "serve, generate, embed: the engine's JSON configuration (models by path; see docs/ENGINE.md).");
ABSL_FLAG(std::string, model_path, "",
          "generate, embed: run this one model file (.gguf or a safetensors directory) in-process.");
ABSL_FLAG(int32_t, max_tokens, 256, "generate: the most tokens to generate (0: up to the context).");
ABSL_FLAG(double, temperature, 0.7, "generate: sampling temperature (0 = greedy).");
ABSL_FLAG(double, top_p, 0.95, "generate: nucleus sampling mass, (0, 1].");
ABSL_FLAG(int64_t, seed, -1, "generate: sampler seed (-1: random).");
ABSL_FLAG(int32_t, sample_top_k, 0, "generate: sample among the k most likely tokens (0: all).");
ABSL_FLAG(std::vector<std::string>, stop, {}, "generate: stop strings.");
ABSL_FLAG(bool, chat, false, "generate: send the text as a user message through the chat template.");
ABSL_FLAG(std::string, system, "", "generate --chat: a system message.");
ABSL_FLAG(int32_t, dimensions, 0, "collection create: embedding size of --model.");
ABSL_FLAG(std::vector<std::string>, acl, {"anyone"},
          "ingest: who may see the files (user:EMAIL, group:EMAIL, domain:NAME, anyone).");
ABSL_FLAG(std::string, source, "files", "ingest: the source name recorded for the files.");
ABSL_FLAG(std::string, agents_config, "",
          "serve: JSON with OpenAI-compatible model servers for agents (see docs/AGENTS.md).");
ABSL_FLAG(std::string, agent_id, "", "agent import: the agent's id (default: from the file name).");
ABSL_FLAG(int64_t, agent_version, 0, "agent get: the version to show (0: latest).");
ABSL_FLAG(std::string, conversation, "", "ask: continue this conversation (its id).");
ABSL_FLAG(std::string, approve, "ask",
          "ask: tool calls needing approval: ask (on a terminal), all or none.");
ABSL_FLAG(bool, show_tools, true, "ask: print tool calls and their results to stderr.");

namespace tessera {
namespace {

constexpr char kUsage[] = R"(tessera: self-hosted enterprise RAG and agents.

Commands:
  tessera serve --data_dir=DIR [--listen=127.0.0.1:7600] [--only=SERVICES] [--peers=SVC=HOST:PORT,...]
                [--tls_cert=FILE --tls_key=FILE] [--engine_config=FILE.json] [--mcp_listen=127.0.0.1:7610]
                [--agents_config=FILE.json] [--config=FILE.json]
  tessera admin create-key --data_dir=DIR --principal=USER [--groups=G1,G2] [--role=user|admin]
                [--tenant=T] [--description=TEXT] [--expires_in=720h]
  tessera admin list-keys --data_dir=DIR [--tenant=T]
  tessera admin revoke-key --data_dir=DIR --key_id=ID
  tessera index rebuild --data_dir=DIR [--collection=NAME,...]   (server stopped)
  tessera generate "PROMPT" [--chat [--system=TEXT]] [--model=ID] [--max_tokens=256] [--temperature=0.7]
                [--top_p=0.95] [--sample_top_k=0] [--seed=N] [--stop=S,...]
  tessera embed "TEXT"... [--model=ID]
        generate and embed run in-process with --engine_config=FILE or --model_path=FILE.gguf,
        otherwise they call the server (--server, key as below).
  tessera mcp tools --mcp_config=FILE.json        list the tools of MCP servers (stdio or HTTP)
  tessera mcp call --mcp_config=FILE.json --tool=NAME --args='{"k": "v"}'
  tessera mcp stdio                               Tessera's own MCP tools over stdin/stdout for a
                                                  local MCP client (key and --server as below)
  tessera version

Client commands (call a running server; key from TESSERA_KEY or --key_file; --server=HOST:PORT):
  tessera collection create NAME [--index=Flat|HNSW32|IVF1024,PQ32] [--model=M --dimensions=N]
  tessera collection list | get NAME | delete NAME
  tessera ingest PATH... --collection=NAME [--acl=group:fin@x.com,...] [--source=files]
  tessera sync --sync_config=FILE.json [--sync_state_dir=DIR] [--once] [--sync_progress=auto|tty|plain|off]
                (admin key; connectors -> retrieval)
  tessera connector add drive --config=CONNECTOR.json [--name=NAME] --sync_config=FILE.json
  tessera connector list --sync_config=FILE.json [--sync_state_dir=DIR]
  tessera search "QUERY" [--collection=NAME,...] [--top_k=10] [--as=USER --as_groups=G,...] [--json]
  tessera agent import FILE.json [--agent_id=ID]    create an agent, or its next version
  tessera agent list | get ID [--agent_version=N]
  tessera ask AGENT "QUESTION" [--conversation=ID] [--as=USER --as_groups=G,...] [--approve=ask|all|none]
                [--json]

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

// Offline: rebuilds vector indexes from the embeddings in SQLite. Takes the
// data dir's lock, so the server must be stopped.
int RebuildIndexes() {
  std::string dir = absl::GetFlag(FLAGS_data_dir);
  if (dir.empty()) return UsageError("index rebuild needs --data_dir=DIR");
  auto lock = LockDataDir(dir);
  if (!lock.ok()) return Fail(lock.status());
  retrieval::RetrievalServiceImpl::Options ro;
  ro.data_dir = JoinPath(dir, "retrieval");
  ro.index_save_interval = absl::ZeroDuration();
  ro.maintenance_interval = absl::ZeroDuration();
  auto service = retrieval::RetrievalServiceImpl::Create(ro);
  if (!service.ok()) return Fail(service.status());
  std::vector<std::string> names;
  for (const auto& c : absl::GetFlag(FLAGS_collection)) {
    if (!c.empty()) names.push_back(c);
  }
  if (names.empty()) names = (*service)->CollectionNames();
  for (const std::string& name : names) {
    absl::Time start = absl::Now();
    absl::Status s = (*service)->RebuildIndex(name);
    if (!s.ok()) return Fail(s);
    auto describe = (*service)->DescribeIndex(name);
    std::printf("rebuilt %s in %s: %s\n", name.c_str(),
                absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Milliseconds(1))).c_str(),
                describe.ok() ? describe->c_str() : "");
  }
  if (names.empty()) std::printf("no collections in %s\n", dir.c_str());
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
  opts.factories["engine"] = [](TesseraServer*) -> absl::StatusOr<std::unique_ptr<grpc::Service>> {
    engine::EngineOptions eo;  // no models unless configured: calls answer NOT_FOUND
    if (!absl::GetFlag(FLAGS_engine_config).empty()) {
      engine_service::EngineTarget t;
      t.engine_config = absl::GetFlag(FLAGS_engine_config);
      ASSIGN_OR_RETURN(eo, engine_service::LocalEngineOptions(t));
    }
    ASSIGN_OR_RETURN(auto e, engine::Engine::Create(eo));
    return std::unique_ptr<grpc::Service>(
        std::make_unique<engine_service::EngineServiceImpl>(std::move(e)));
  };
  opts.factories["retrieval"] = [](TesseraServer* server)
      -> absl::StatusOr<std::unique_ptr<grpc::Service>> {
    retrieval::RetrievalServiceImpl::Options ro;
    ro.data_dir = JoinPath(absl::GetFlag(FLAGS_data_dir), "retrieval");
    ro.engine_channel = [server] { return server->Channel("engine"); };
    ASSIGN_OR_RETURN(auto service, retrieval::RetrievalServiceImpl::Create(ro));
    return std::unique_ptr<grpc::Service>(std::move(service));
  };
  opts.factories["agents"] = [](TesseraServer* server) -> absl::StatusOr<std::unique_ptr<grpc::Service>> {
    agents_service::AgentServiceOptions ao;
    ao.db_path = JoinPath(absl::GetFlag(FLAGS_data_dir), "agents.db");
    ao.engine_channel = [server] { return server->Channel("engine"); };
    ao.retrieval_channel = [server] { return server->Channel("retrieval"); };
    ASSIGN_OR_RETURN(std::shared_ptr<HttpTransport> http, CurlHttpTransport::Create({}));
    ao.http = std::move(http);
    auto env = [](const char* name) -> const char* { return std::getenv(name); };
    if (const std::string path = absl::GetFlag(FLAGS_agents_config); !path.empty()) {
      ASSIGN_OR_RETURN(std::string text, LocalFileSystem()->ReadFile(path, 1 << 20));
      auto config = agents_service::ParseAgentsConfig(text, env);
      if (!config.ok()) return Annotate(config.status(), absl::StrCat("--agents_config ", path));
      ao.openai_models = config->openai_models;
      ao.history_messages = config->history_messages;
    }
    ao.credentials = [env](const std::string&, const std::string& ref) {
      return agents_service::ResolveEnvCredential(ref, env);
    };
    ASSIGN_OR_RETURN(auto service, agents_service::AgentServiceImpl::Create(ao));
    return std::unique_ptr<grpc::Service>(std::move(service));
  };
  auto server = TesseraServer::Start(opts);
  if (!server.ok()) return Fail(server.status());
  if (!absl::GetFlag(FLAGS_port_file).empty()) {
    absl::Status s = LocalFileSystem()->WriteFileAtomic(absl::GetFlag(FLAGS_port_file),
                                                        absl::StrCat((*server)->port(), "\n"));
    if (!s.ok()) return Fail(s);
  }
  std::fprintf(stderr, "tessera listening on %s\n", (*server)->address().c_str());
  // Tessera's MCP tools over Streamable HTTP: each request's key is checked against the key
  // database, and searches go through the gateway with that key, so they see what it may.
  std::unique_ptr<ApiKeyStore> mcp_keys;
  std::unique_ptr<mcp::McpHttpServer> mcp_server;
  if (const std::string listen = absl::GetFlag(FLAGS_mcp_listen); !listen.empty()) {
    const size_t colon = listen.rfind(':');
    int mcp_port = -1;
    if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &mcp_port) ||
        mcp_port < 0 || mcp_port > 65535) {
      return UsageError(absl::StrCat("--mcp_listen: '", listen, "' is not HOST:PORT"));
    }
    auto keys = OpenKeys();
    if (!keys.ok()) return Fail(keys.status());
    mcp_keys = std::move(*keys);
    mcp::McpHttpServerOptions mo;
    mo.host = listen.substr(0, colon);
    mo.port = mcp_port;
    for (const auto& o : absl::GetFlag(FLAGS_mcp_allowed_origins)) {
      if (!o.empty()) mo.allowed_origins.push_back(o);
    }
    ApiKeyStore* store = mcp_keys.get();
    mo.validate_key = [store](const std::string& k) -> absl::StatusOr<mcp::McpKeyInfo> {
      ASSIGN_OR_RETURN(ApiKeyRecord r, store->Authenticate(k));
      return mcp::McpKeyInfo{r.key_id};
    };
    auto channel = grpc::CreateChannel((*server)->address(), grpc::InsecureChannelCredentials());
    mo.server.retrieval_channel = [channel] { return channel; };
    auto started = mcp::StartMcpHttpServer(std::move(mo));
    if (!started.ok()) return Fail(started.status());
    mcp_server = std::move(*started);
    mcp::AgentToolsOptions agent_tools;
    agent_tools.agents_channel = [channel] { return channel; };
    if (absl::Status s = mcp::AddAgentTools(mcp_server->server(), std::move(agent_tools)); !s.ok()) {
      return Fail(s);
    }
    std::fprintf(stderr, "tessera MCP endpoint on %s\n", mcp_server->url().c_str());
  }
  int sig = 0;
  sigwait(&signals, &sig);
  TLOG(INFO, "signal received").Field("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  if (mcp_server != nullptr) mcp_server->Stop();
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

  // Debian's Abseil keeps mutex deadlock detection on (debug-only elsewhere);
  // it costs every lock on the request path. Tests keep it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  // Protobuf reports problems (such as invalid UTF-8 in a request) through its
  // own logger; route them into ours so they are structured too.
  google::protobuf::SetLogHandler([](google::protobuf::LogLevel level, const char* file, int line,
                                     const std::string& message) {
    LogMessage(level >= google::protobuf::LOGLEVEL_ERROR ? LogLevel::kWarning : LogLevel::kDebug,
               "protobuf", file, line)
        .Field("detail", message);
  });
  // `connector add --config=FILE` names the connector's JSON, not a flags file.
  const std::string connector_config = sync::TakeConnectorConfigArg(&argc, argv);
  auto args = ParseFlagsAndConfig(argc, argv, kUsage);
  if (!args.ok()) return Fail(args.status());
  LogLevel level;
  if (!ParseLogLevel(absl::GetFlag(FLAGS_log_level), &level)) {
    return UsageError(absl::StrCat("--log_level: unknown level '", absl::GetFlag(FLAGS_log_level), "'"));
  }
  // `tessera sync` on a terminal redraws its progress in place; info lines would tear it apart.
  if (args->size() > 1 && (*args)[1] == "sync" && isatty(fileno(stderr)) && level < LogLevel::kWarning) {
    bool given = false;
    for (int i = 1; i < argc; ++i) given = given || absl::StrContains(argv[i], "log_level");
    if (!given) level = LogLevel::kWarning;
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
  if (cmd[0] == "sync" && cmd.size() == 1) {
    auto key = ResolveKey(absl::GetFlag(FLAGS_key_file));
    if (!key.ok()) return Fail(key.status());
    sync::SyncCommandOptions o;
    o.config_path = absl::GetFlag(FLAGS_sync_config);
    o.server = absl::GetFlag(FLAGS_server);
    o.key = *key;
    o.tls_ca = absl::GetFlag(FLAGS_tls_ca);
    o.state_dir = absl::GetFlag(FLAGS_sync_state_dir);
    o.once = absl::GetFlag(FLAGS_once);
    if (!sync::ParseProgressMode(absl::GetFlag(FLAGS_sync_progress), &o.progress)) {
      return UsageError("--sync_progress: one of auto, tty, plain, off");
    }
    o.wait_for_stop = [&signals] {
      int sig = 0;
      sigwait(&signals, &sig);  // SIGTERM/SIGINT are blocked in every thread
    };
    return sync::SyncCommand(o, stdout, stderr);
  }
  if (cmd[0] == "connector") {
    sync::ConnectorCommandOptions o;
    o.sync_config = absl::GetFlag(FLAGS_sync_config);
    o.state_dir = absl::GetFlag(FLAGS_sync_state_dir);
    if (cmd.size() == 3 && cmd[1] == "add") {
      o.kind = cmd[2];
      o.config_path = connector_config;
      o.name = absl::GetFlag(FLAGS_name);
      return sync::ConnectorAddCommand(o, stdout, stderr);
    }
    if (cmd.size() == 2 && cmd[1] == "list") return sync::ConnectorListCommand(o, stdout, stderr);
    return UsageError("connector add KIND --config=FILE [--name=NAME] | connector list");
  }
  if (cmd[0] == "mcp") {
    if (cmd.size() != 2) return UsageError("mcp tools|call|stdio");
    if (cmd[1] == "stdio") {
      auto key = ResolveKey(absl::GetFlag(FLAGS_key_file));
      if (!key.ok()) return Fail(key.status());
      mcp::McpStdioCommandOptions o;
      o.server_address = absl::GetFlag(FLAGS_server);
      o.key = *key;
      for (const auto& c : absl::GetFlag(FLAGS_collection)) {
        if (!c.empty()) o.default_collections.push_back(c);
      }
      absl::Status s = mcp::RunMcpStdioCommand(o, std::cin, std::cout);
      return s.ok() ? 0 : Fail(s);
    }
    if (absl::GetFlag(FLAGS_mcp_config).empty()) {
      return UsageError("mcp tools|call need --mcp_config=FILE.json (see docs/MCP.md)");
    }
    absl::Status s;
    if (cmd[1] == "tools") {
      s = mcp::RunMcpToolsCommand(absl::GetFlag(FLAGS_mcp_config), std::cout);
    } else if (cmd[1] == "call") {
      if (absl::GetFlag(FLAGS_tool).empty()) return UsageError("mcp call needs --tool=NAME");
      s = mcp::RunMcpCallCommand(absl::GetFlag(FLAGS_mcp_config), absl::GetFlag(FLAGS_tool),
                                 absl::GetFlag(FLAGS_args), std::cout);
    } else {
      return UsageError(absl::StrCat("unknown mcp command '", cmd[1], "' (tools, call, stdio)"));
    }
    return s.ok() ? 0 : Fail(s);
  }
  if (cmd[0] == "generate" || cmd[0] == "embed") {
    engine_service::EngineTarget target;
    target.engine_config = absl::GetFlag(FLAGS_engine_config);
    target.model_path = absl::GetFlag(FLAGS_model_path);
    target.server = absl::GetFlag(FLAGS_server);
    if (target.engine_config.empty() && target.model_path.empty()) {
      auto key = ResolveKey(absl::GetFlag(FLAGS_key_file));
      if (!key.ok()) return Fail(key.status());
      target.key = *key;
    }
    if (cmd[0] == "generate") {
      if (cmd.size() != 2) return UsageError("generate takes one quoted PROMPT");
      engine_service::GenerateCommandOptions o;
      o.prompt = cmd[1];
      o.model = absl::GetFlag(FLAGS_model);
      o.chat = absl::GetFlag(FLAGS_chat);
      o.system = absl::GetFlag(FLAGS_system);
      o.sampling.temperature = static_cast<float>(absl::GetFlag(FLAGS_temperature));
      o.sampling.top_p = static_cast<float>(absl::GetFlag(FLAGS_top_p));
      o.sampling.top_k = absl::GetFlag(FLAGS_sample_top_k);
      if (absl::GetFlag(FLAGS_seed) >= 0) {
        o.sampling.seed = static_cast<uint64_t>(absl::GetFlag(FLAGS_seed));
        o.seed_set = true;
      }
      o.max_tokens = absl::GetFlag(FLAGS_max_tokens);
      for (const auto& stop : absl::GetFlag(FLAGS_stop)) {
        if (!stop.empty()) o.stop.push_back(stop);
      }
      return engine_service::GenerateCommand(target, o, stdout, stderr);
    }
    if (cmd.size() < 2) return UsageError("embed takes one or more quoted TEXTs");
    engine_service::EmbedCommandOptions o;
    o.model = absl::GetFlag(FLAGS_model);
    o.inputs.assign(cmd.begin() + 1, cmd.end());
    return engine_service::EmbedCommand(target, o, stdout, stderr);
  }
  if (cmd[0] == "search" || cmd[0] == "collection" || cmd[0] == "ingest" || cmd[0] == "agent" ||
      cmd[0] == "ask") {
    ClientOptions client;
    client.server = absl::GetFlag(FLAGS_server);
    client.tls_ca = absl::GetFlag(FLAGS_tls_ca);
    auto key = ResolveKey(absl::GetFlag(FLAGS_key_file));
    if (!key.ok()) return Fail(key.status());
    client.key = *key;
    if (cmd[0] == "agent") {
      if (cmd.size() < 2 || cmd.size() > 3) return UsageError("agent import FILE.json | list | get ID");
      agents_service::AgentCommandOptions o;
      o.action = cmd[1];
      if (o.action == "import" && cmd.size() == 3) o.path = cmd[2];
      o.agent_id = absl::GetFlag(FLAGS_agent_id);
      if (o.action == "get" && cmd.size() == 3) o.agent_id = cmd[2];
      o.version = absl::GetFlag(FLAGS_agent_version);
      return agents_service::AgentCommand(client, o, stdout, stderr);
    }
    if (cmd[0] == "ask") {
      if (cmd.size() != 3) return UsageError("ask takes an AGENT id and one quoted QUESTION");
      agents_service::AskCommandOptions o;
      o.agent_id = cmd[1];
      o.message = cmd[2];
      o.conversation_id = absl::GetFlag(FLAGS_conversation);
      o.as_user = absl::GetFlag(FLAGS_as);
      for (const auto& g : absl::GetFlag(FLAGS_as_groups)) {
        if (!g.empty()) o.as_groups.push_back(g);
      }
      o.approve = absl::GetFlag(FLAGS_approve);
      o.show_tools = absl::GetFlag(FLAGS_show_tools);
      o.json = absl::GetFlag(FLAGS_json);
      return agents_service::AskCommand(client, o, stdin, stdout, stderr);
    }
    if (cmd[0] == "search") {
      if (cmd.size() != 2) return UsageError("search takes one quoted QUERY");
      SearchCommandOptions o;
      o.query = cmd[1];
      for (const auto& c : absl::GetFlag(FLAGS_collection)) {
        if (!c.empty()) o.collections.push_back(c);
      }
      o.top_k = absl::GetFlag(FLAGS_top_k);
      o.as_user = absl::GetFlag(FLAGS_as);
      for (const auto& g : absl::GetFlag(FLAGS_as_groups)) {
        if (!g.empty()) o.as_groups.push_back(g);
      }
      o.fusion = absl::GetFlag(FLAGS_fusion);
      o.json = absl::GetFlag(FLAGS_json);
      return SearchCommand(client, o, stdout, stderr);
    }
    if (cmd[0] == "collection") {
      if (cmd.size() < 2 || cmd.size() > 3) return UsageError("collection create|list|get|delete [NAME]");
      CollectionCommandOptions o;
      o.action = cmd[1];
      if (cmd.size() == 3) o.name = cmd[2];
      o.index = absl::GetFlag(FLAGS_index);
      o.model = absl::GetFlag(FLAGS_model);
      o.dimensions = absl::GetFlag(FLAGS_dimensions);
      return CollectionCommand(client, o, stdout, stderr);
    }
    IngestCommandOptions o;
    o.paths.assign(cmd.begin() + 1, cmd.end());
    auto colls = absl::GetFlag(FLAGS_collection);
    if (colls.size() != 1 || colls[0].empty()) return UsageError("ingest needs exactly one --collection=NAME");
    o.collection = colls[0];
    o.acl.clear();
    for (const auto& a : absl::GetFlag(FLAGS_acl)) {
      if (!a.empty()) o.acl.push_back(a);
    }
    o.source = absl::GetFlag(FLAGS_source);
    return IngestCommand(client, o, stdout, stderr);
  }
  if (cmd[0] == "index" && cmd.size() == 2 && cmd[1] == "rebuild") return RebuildIndexes();
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
