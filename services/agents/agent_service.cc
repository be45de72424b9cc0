#include "services/agents/agent_service.h"

#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agents/definition/definition.h"
#include "agents/mcp/connect.h"
#include "agents/orchestrator/citations.h"
#include "agents/tools/knowledge_search_tool.h"
#include "agents/tools/mcp_agent_tools.h"
#include "common/grpc_status.h"
#include "common/logging.h"
#include "common/status.h"
#include "google/protobuf/util/time_util.h"
#include "services/agents/backends.h"
#include "services/gateway/caller.h"
#include "tessera/v1/engine.grpc.pb.h"
#include "tessera/v1/retrieval.grpc.pb.h"

namespace tessera::agents_service {
namespace {

using google::protobuf::util::TimeUtil;
constexpr size_t kMaxMessageBytes = 32 << 10;

std::string RandomSuffix(int n) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(kAlphabet[rng() % 36]);
  return s;
}

bool ValidAgentId(const std::string& id) {
  if (id.empty() || id.size() > 63) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

// "HR assistant" -> "hr-assistant-k3x9".
std::string GenerateAgentId(const std::string& name) {
  std::string slug;
  for (char c : absl::AsciiStrToLower(name)) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      slug.push_back(c);
    } else if (!slug.empty() && slug.back() != '-') {
      slug.push_back('-');
    }
    if (slug.size() >= 40) break;
  }
  while (!slug.empty() && slug.back() == '-') slug.pop_back();
  if (slug.empty()) slug = "agent";
  return absl::StrCat(slug, "-", RandomSuffix(4));
}

bool CanSee(const v1::Agent& a, const Caller& c) {
  if (c.is_admin() || a.owner() == c.principal.user) return true;
  const auto& s = a.definition().sharing();
  if (s.tenant_wide()) return true;
  if (std::find(s.users().begin(), s.users().end(), c.principal.user) != s.users().end()) return true;
  for (const auto& g : c.principal.groups) {
    if (std::find(s.groups().begin(), s.groups().end(), g) != s.groups().end()) return true;
  }
  return false;
}
bool CanChange(const v1::Agent& a, const Caller& c) { return c.is_admin() || a.owner() == c.principal.user; }

absl::StatusOr<v1::AgentDefinition> DefinitionFrom(bool has_json, const std::string& json, bool has_message,
                                                   const v1::AgentDefinition& message) {
  if (has_json) return agents::ParseAndValidateAgentDefinitionJson(json);
  if (!has_message) return absl::InvalidArgumentError("definition: required (definition_json or definition)");
  RETURN_IF_ERROR(agents::ValidateAgentDefinition(message));
  return message;
}

// Pages are offsets into the ordered list.
template <typename T, typename Add>
absl::Status Page(const std::vector<T>& all, int32_t page_size, const std::string& token, std::string* next,
                  Add add) {
  if (page_size < 0) return absl::InvalidArgumentError("page_size: must be >= 0");
  const size_t size = page_size == 0 ? 50 : std::min(page_size, 500);
  size_t start = 0;
  if (!token.empty() && !absl::SimpleAtoi(token, &start)) {
    return absl::InvalidArgumentError("page_token: not a token this server gave");
  }
  for (size_t i = start; i < all.size() && i < start + size; ++i) add(all[i]);
  if (start + size < all.size()) *next = absl::StrCat(start + size);
  return absl::OkStatus();
}

}  // namespace

// Pending approvals of all runs. A run's entries live until the run ends.
class AgentServiceImpl::Approvals {
 public:
  struct Key {
    std::string run_id, call_id;
    bool operator<(const Key& o) const { return std::tie(run_id, call_id) < std::tie(o.run_id, o.call_id); }
  };
  enum class State { kWaiting, kApproved, kDenied, kExpired };

  agents::ApprovalDecision Await(const Key& key, const std::string& user, absl::Time expire,
                                 const std::function<void()>& announce, agents::Cancellation& cancel) {
    {
      absl::MutexLock lock(&mu_);
      pending_[key] = Entry{user, State::kWaiting};
    }
    announce();
    absl::MutexLock lock(&mu_);
    auto decided = [&] { return pending_[key].state != State::kWaiting; };
    while (!decided()) {
      if (cancel.cancelled()) return agents::ApprovalDecision::kCancelled;
      const absl::Time now = absl::Now();
      if (now >= expire) {
        pending_[key].state = State::kExpired;
        return agents::ApprovalDecision::kExpired;
      }
      mu_.AwaitWithDeadline(absl::Condition(&decided), std::min(expire, now + absl::Milliseconds(100)));
    }
    return pending_[key].state == State::kApproved ? agents::ApprovalDecision::kApproved
                                                   : agents::ApprovalDecision::kDenied;
  }

  absl::Status Decide(const Key& key, const std::string& user, bool approved) {
    absl::MutexLock lock(&mu_);
    auto it = pending_.find(key);
    if (it == pending_.end() || it->second.user != user) {
      return absl::NotFoundError(
          absl::StrCat("no tool call '", key.call_id, "' waits for approval in run '", key.run_id, "'"));
    }
    if (it->second.state != State::kWaiting) {
      return absl::FailedPreconditionError(absl::StrCat("tool call '", key.call_id, "' was already ",
                                                        it->second.state == State::kExpired ? "expired" : "decided"));
    }
    it->second.state = approved ? State::kApproved : State::kDenied;
    return absl::OkStatus();
  }

  void EndRun(const std::string& run_id) {
    absl::MutexLock lock(&mu_);
    for (auto it = pending_.lower_bound(Key{run_id, ""}); it != pending_.end() && it->first.run_id == run_id;) {
      it = pending_.erase(it);
    }
  }

 private:
  struct Entry {
    std::string user;
    State state = State::kWaiting;
  };
  absl::Mutex mu_;
  std::map<Key, Entry> pending_ ABSL_GUARDED_BY(mu_);
};

namespace {

// One run's gate onto the shared approvals.
class RunGate final : public agents::ApprovalGate {
 public:
  RunGate(std::function<agents::ApprovalDecision(const v1::ApprovalRequired&, const std::function<void()>&,
                                                 agents::Cancellation&)>
              await)
      : await_(std::move(await)) {}
  agents::ApprovalDecision Await(const v1::ApprovalRequired& request, const std::function<void()>& announce,
                                 agents::Cancellation& cancel) override {
    return await_(request, announce, cancel);
  }

 private:
  std::function<agents::ApprovalDecision(const v1::ApprovalRequired&, const std::function<void()>&,
                                         agents::Cancellation&)>
      await_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<AgentServiceImpl>> AgentServiceImpl::Create(AgentServiceOptions options) {
  std::unique_ptr<AgentServiceImpl> s(new AgentServiceImpl(std::move(options)));
  ASSIGN_OR_RETURN(s->store_, SqliteAgentStore::Open(s->options_.db_path, s->options_.clock));
  return s;
}

AgentServiceImpl::AgentServiceImpl(AgentServiceOptions options)
    : options_(std::move(options)), approvals_(std::make_unique<Approvals>()), runner_(options_.runner) {}

AgentServiceImpl::~AgentServiceImpl() { CancelAll(); }

void AgentServiceImpl::CancelAll() {
  absl::MutexLock lock(&mu_);
  for (auto& [id, c] : active_runs_) c->Cancel();
}

absl::StatusOr<v1::Agent> AgentServiceImpl::VisibleAgent(const Caller& caller, const std::string& id) {
  auto agent = store_->GetAgent(caller.principal.tenant, id, 0);
  // An agent the caller may not see does not exist for them.
  if (!agent.ok() || !CanSee(*agent, caller)) return absl::NotFoundError(absl::StrCat("agent '", id, "' not found"));
  return agent;
}

absl::Status AgentServiceImpl::CheckCollections(const v1::AgentDefinition& d, const Caller& caller) {
  auto channel = options_.retrieval_channel ? options_.retrieval_channel() : nullptr;
  if (channel == nullptr) return absl::OkStatus();
  auto stub = v1::RetrievalService::NewStub(channel);
  for (int i = 0; i < d.knowledge().collections_size(); ++i) {
    grpc::ClientContext ctx;
    AttachCaller(caller, &ctx);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::GetCollectionRequest req;
    req.set_name(d.knowledge().collections(i));
    v1::GetCollectionResponse resp;
    grpc::Status s = stub->GetCollection(&ctx, req, &resp);
    if (s.error_code() == grpc::StatusCode::NOT_FOUND) {
      return absl::NotFoundError(absl::StrCat("knowledge.collections[", i, "]: collection '",
                                              d.knowledge().collections(i), "' does not exist"));
    }
    // Other failures (retrieval restarting, another tenant) are checked again when the agent runs.
  }
  return absl::OkStatus();
}

absl::Status AgentServiceImpl::CheckModel(const v1::AgentDefinition& d) {
  if (agents::IsExtractive(d) || options_.openai_models.count(d.model())) return absl::OkStatus();
  if (options_.model_factory && options_.model_factory(d.model()) != nullptr) return absl::OkStatus();
  auto channel = options_.engine_channel ? options_.engine_channel() : nullptr;
  if (channel == nullptr) {
    return absl::NotFoundError(absl::StrCat("model: '", d.model(), "' is not served here (no engine); use model \"",
                                            agents::kExtractiveModel, "\" or configure the engine"));
  }
  auto stub = v1::EngineService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::ListModelsRequest req;
  v1::ListModelsResponse resp;
  grpc::Status s = stub->ListModels(&ctx, req, &resp);
  if (!s.ok()) {
    // The engine may be restarting; the model is checked again when the agent runs.
    TLOG(WARNING, "agents: cannot check the model now; it is checked again when the agent runs")
        .Field("model", d.model())
        .Field("error", s.error_message());
    return absl::OkStatus();
  }
  std::vector<std::string> served;
  for (const auto& m : resp.models()) {
    if (m.kind() != v1::MODEL_KIND_GENERATION) continue;
    if (m.id() == d.model()) return absl::OkStatus();
    served.push_back(m.id());
  }
  return absl::NotFoundError(absl::StrCat("model: '", d.model(), "' is not a generation model the engine serves (",
                                          served.empty() ? "it serves none" : "it serves " + absl::StrJoin(served, ", "),
                                          "); use one of them or \"", agents::kExtractiveModel, "\""));
}

grpc::Status AgentServiceImpl::CreateAgent(grpc::ServerContext* ctx, const v1::CreateAgentRequest* req,
                                           v1::CreateAgentResponse* resp) {
  auto caller = CallerFromContext(*ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto def = DefinitionFrom(req->has_definition_json(), req->definition_json(), req->has_definition(),
                            req->definition());
  if (!def.ok()) return ToGrpcStatus(def.status());
  if (absl::Status s = CheckModel(*def); !s.ok()) return ToGrpcStatus(s);
  if (absl::Status s = CheckCollections(*def, *caller); !s.ok()) return ToGrpcStatus(s);
  std::string id = req->agent_id();
  if (!id.empty() && !ValidAgentId(id)) {
    return ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("agent_id: '", id, "' must be 1 to 63 characters of lowercase letters, digits and '-'")));
  }
  if (id.empty()) id = GenerateAgentId(def->name());
  auto agent = store_->CreateAgent(caller->principal.tenant, id, caller->principal.user, *def);
  if (!agent.ok()) return ToGrpcStatus(agent.status());
  *resp->mutable_agent() = *agent;
  return grpc::Status::OK;
}

grpc::Status AgentServiceImpl::GetAgent(grpc::ServerContext* ctx, const v1::GetAgentRequest* req,
                                        v1::GetAgentResponse* resp) {
  auto caller = CallerFromContext(*ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (req->version() < 0) return ToGrpcStatus(absl::InvalidArgumentError("version: must be >= 0"));
  auto latest = VisibleAgent(*caller, req->agent_id());
  if (!latest.ok()) return ToGrpcStatus(latest.status());
  auto agent = req->version() == 0 ? latest : store_->GetAgent(caller->principal.tenant, req->agent_id(), req->version());
  if (!agent.ok()) return ToGrpcStatus(agent.status());
  *resp->mutable_agent() = *agent;
  return grpc::Status::OK;
}

grpc::Status AgentServiceImpl::ListAgents(grpc::ServerContext* ctx, const v1::ListAgentsRequest* req,
                                          v1::ListAgentsResponse* resp) {
  auto caller = CallerFromContext(*ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto all = store_->ListAgents(caller->principal.tenant);
  if (!all.ok()) return ToGrpcStatus(all.status());
  std::vector<v1::Agent> visible;
  for (auto& a : *all) {
    if (CanSee(a, *caller)) visible.push_back(std::move(a));
  }
  return ToGrpcStatus(Page(visible, req->page_size(), req->page_token(), resp->mutable_next_page_token(),
                           [&](const v1::Agent& a) { *resp->add_agents() = a; }));
}

grpc::Status AgentServiceImpl::UpdateAgent(grpc::ServerContext* ctx, const v1::UpdateAgentRequest* req,
                                           v1::UpdateAgentResponse* resp) {
  auto caller = CallerFromContext(*ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto current = VisibleAgent(*caller, req->agent_id());
  if (!current.ok()) return ToGrpcStatus(current.status());
  if (!CanChange(*current, *caller)) {
    return ToGrpcStatus(absl::PermissionDeniedError(
        absl::StrCat("agent '", req->agent_id(), "' can be changed only by its owner (", current->owner(),
                     ") or an admin")));
  }
  auto def = DefinitionFrom(req->has_definition_json(), req->definition_json(), req->has_definition(),
                            req->definition());
  if (!def.ok()) return ToGrpcStatus(def.status());
  if (absl::Status s = CheckModel(*def); !s.ok()) return ToGrpcStatus(s);
  if (absl::Status s = CheckCollections(*def, *caller); !s.ok()) return ToGrpcStatus(s);
  auto agent = store_->UpdateAgent(caller->principal.tenant, req->agent_id(), *def, req->expected_version());
  if (!agent.ok()) return ToGrpcStatus(agent.status());
  *resp->mutable_agent() = *agent;
  return grpc::Status::OK;
}

grpc::Status AgentServiceImpl::DeleteAgent(grpc::ServerContext* ctx, const v1::DeleteAgentRequest* req,
                                           v1::DeleteAgentResponse*) {
  auto caller = CallerFromContext(*ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto current = VisibleAgent(*caller, req->agent_id());
  if (!current.ok()) return ToGrpcStatus(current.status());
  if (!CanChange(*current, *caller)) {
    return ToGrpcStatus(absl::PermissionDeniedError(
        absl::StrCat("agent '", req->agent_id(), "' can be deleted only by its owner or an admin")));
  }
  return ToGrpcStatus(store_->DeleteAgent(caller->principal.tenant, req->agent_id()));
}

grpc::Status AgentServiceImpl::ListAgentVersions(grpc::ServerContext* ctx, const v1::ListAgentVersionsRequest* req,
                                                 v1::ListAgentVersionsResponse* resp) {
  auto caller = CallerFromContext(*ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto current = VisibleAgent(*caller, req->agent_id());
  if (!current.ok()) return ToGrpcStatus(current.status());
  auto all = store_->ListAgentVersions(caller->principal.tenant, req->agent_id());
  if (!all.ok()) return ToGrpcStatus(all.status());
  return ToGrpcStatus(Page(*all, req->page_size(), req->page_token(), resp->mutable_next_page_token(),
                           [&](const v1::Agent& a) { *resp->add_versions() = a; }));
}

grpc::Status AgentServiceImpl::Run(grpc::ServerContext* ctx, const v1::RunRequest* req,
                                   grpc::ServerWriter<v1::RunResponse>* writer) {
  auto caller = CallerFromContext(*ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  const std::string tenant = caller->principal.tenant;
  if (absl::StripAsciiWhitespace(req->message()).empty()) {
    return ToGrpcStatus(absl::InvalidArgumentError("message: required"));
  }
  if (req->message().size() > kMaxMessageBytes) {
    return ToGrpcStatus(absl::InvalidArgumentError(
        absl::StrCat("message: ", req->message().size(), " bytes; at most ", kMaxMessageBytes)));
  }
  // Who the run acts for.
  Caller principal = *caller;
  if (!req->principal().user().empty() && req->principal().user() != caller->principal.user) {
    if (!caller->is_admin()) {
      return ToGrpcStatus(absl::PermissionDeniedError(absl::StrCat(
          "only an admin key may run an agent as another principal; ", caller->principal.user, " holds a user key")));
    }
    principal.principal.user = req->principal().user();
    principal.principal.groups.assign(req->principal().groups().begin(), req->principal().groups().end());
    principal.role = KeyRole::kUser;
  }
  auto latest = VisibleAgent(principal, req->agent_id());
  if (!latest.ok()) return ToGrpcStatus(latest.status());
  auto agent = req->agent_version() == 0 ? latest : store_->GetAgent(tenant, req->agent_id(), req->agent_version());
  if (!agent.ok()) return ToGrpcStatus(agent.status());

  // The conversation: new, or the principal's own with this agent, with no other run active.
  v1::Conversation conversation;
  std::vector<v1::ChatMessage> history;
  if (req->conversation_id().empty()) {
    std::string title = agents::TruncateUtf8(req->message(), 80);
    for (char& c : title) {
      if (c == '\n' || c == '\r') c = ' ';
    }
    auto created = store_->CreateConversation(tenant, agent->id(), principal.principal.user, title);
    if (!created.ok()) return ToGrpcStatus(created.status());
    conversation = *created;
  } else {
    auto found = store_->GetConversation(tenant, req->conversation_id(), false);
    if (!found.ok() || found->user() != principal.principal.user) {
      return ToGrpcStatus(absl::NotFoundError(absl::StrCat("conversation '", req->conversation_id(), "' not found")));
    }
    if (found->agent_id() != agent->id()) {
      return ToGrpcStatus(absl::FailedPreconditionError(absl::StrCat(
          "conversation '", found->id(), "' belongs to agent '", found->agent_id(), "', not '", agent->id(), "'")));
    }
    conversation = *found;
    auto recent = store_->RecentMessages(tenant, conversation.id(), options_.history_messages);
    if (!recent.ok()) return ToGrpcStatus(recent.status());
    for (const auto& m : *recent) {
      if (m.role() != v1::ROLE_USER && m.role() != v1::ROLE_ASSISTANT) continue;
      v1::ChatMessage cm;
      cm.set_role(m.role());
      cm.set_content(m.content());
      history.push_back(std::move(cm));
    }
    // A conversation must alternate user/assistant: drop a trailing unanswered user message.
    if (!history.empty() && history.back().role() == v1::ROLE_USER) history.pop_back();
  }
  const std::string run_id = absl::StrCat("run-", RandomSuffix(16));
  agents::Cancellation cancel;
  {
    absl::MutexLock lock(&mu_);
    if (!active_conversations_.insert(conversation.id()).second) {
      return ToGrpcStatus(absl::FailedPreconditionError(
          absl::StrCat("a run is already active in conversation '", conversation.id(), "'")));
    }
    active_runs_[run_id] = &cancel;
  }
  std::vector<std::string> temp_dirs;
  auto cleanup = [&] {
    approvals_->EndRun(run_id);
    absl::MutexLock lock(&mu_);
    active_conversations_.erase(conversation.id());
    active_runs_.erase(run_id);
  };

  // Stop when the client goes away.
  std::atomic<bool> finished{false};
  std::thread watcher([&] {
    while (!finished.load()) {
      if (ctx->IsCancelled()) {
        cancel.Cancel();
        return;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
  });

  const v1::AgentDefinition& def = agent->definition();
  agents::RunInput input;
  input.definition = &def;
  input.run_id = run_id;
  input.conversation_id = conversation.id();
  input.history = std::move(history);
  input.user_message = req->message();
  input.user = principal.principal.user;

  // The tools.
  auto retrieval = options_.retrieval_channel ? options_.retrieval_channel() : nullptr;
  RetrievalKnowledgeSearcher searcher(retrieval, principal, def.knowledge());
  std::vector<std::unique_ptr<agents::AgentTool>> owned_tools;
  std::vector<std::shared_ptr<mcp::McpClient>> clients;
  agents::RunDeps deps;
  deps.clock = options_.clock;
  if (!def.knowledge().collections().empty()) deps.knowledge = &searcher;
  for (const v1::Tool& tool : def.tools()) {
    if (tool.has_knowledge_search()) {
      agents::KnowledgeSearchTool::Options o;
      o.name = tool.knowledge_search().name();
      o.description = tool.knowledge_search().description();
      o.top_k = agents::EffectiveTopK(def);
      o.timeout = agents::EffectiveToolTimeout(def, nullptr);
      owned_tools.push_back(std::make_unique<agents::KnowledgeSearchTool>(&searcher, o));
      continue;
    }
    if (!tool.has_mcp_server()) continue;
    const v1::McpServerTool& s = tool.mcp_server();
    mcp::ServerConfig cfg;
    cfg.name = s.name();
    absl::Status setup;
    if (s.transport() == v1::MCP_TRANSPORT_STDIO) {
      cfg.transport = mcp::ServerConfig::TransportKind::kStdio;
      cfg.command = s.command();
      cfg.args.assign(s.args().begin(), s.args().end());
      for (const auto& [k, v] : s.env()) cfg.env[k] = v;
      for (const auto& [k, ref] : s.secret_env()) {
        auto secret = options_.credentials ? options_.credentials(tenant, ref)
                                           : absl::StatusOr<std::string>(absl::NotFoundError("no credential store"));
        if (!secret.ok()) {
          setup = absl::FailedPreconditionError(absl::StrCat("MCP server '", s.name(), "': secret_env ", k,
                                                             ": credential '", ref, "': ", secret.status().message()));
          break;
        }
        cfg.env[k] = *secret;
      }
      cfg.cwd = s.cwd();
      if (cfg.cwd.empty()) {
        char tmpl[] = "/tmp/tessera-mcp-XXXXXX";
        if (mkdtemp(tmpl) != nullptr) {
          cfg.cwd = tmpl;
          temp_dirs.push_back(tmpl);
        }
      }
    } else {
      cfg.transport = mcp::ServerConfig::TransportKind::kHttp;
      cfg.url = s.url();
      if (s.auth().has_bearer()) {
        auto token = options_.credentials
                         ? options_.credentials(tenant, s.auth().bearer().credential_ref())
                         : absl::StatusOr<std::string>(absl::NotFoundError("no credential store"));
        if (token.ok()) {
          cfg.bearer_token = *token;
        } else {
          setup = absl::FailedPreconditionError(absl::StrCat("MCP server '", s.name(), "': credential '",
                                                             s.auth().bearer().credential_ref(),
                                                             "': ", token.status().message()));
        }
      } else if (s.auth().has_oauth()) {
        setup = absl::UnimplementedError(absl::StrCat(
            "MCP server '", s.name(), "': OAuth for agents' MCP servers is not supported yet; use a bearer credential"));
      }
    }
    const absl::Duration timeout = agents::EffectiveToolTimeout(def, &s);
    cfg.timeout = timeout;
    cfg.max_timeout = timeout;
    if (setup.ok()) {
      mcp::ConnectDeps cd;
      cd.http = options_.http;
      auto client = mcp::ConnectServer(cfg, cd);
      if (!client.ok()) {
        setup = absl::UnavailableError(
            absl::StrCat("MCP server '", s.name(), "' could not be reached: ", client.status().message()));
      } else {
        std::shared_ptr<mcp::McpClient> shared = std::move(*client);
        clients.push_back(shared);
        agents::McpToolsOptions mo;
        mo.server = s.name();
        mo.allowed_tools.assign(s.allowed_tools().begin(), s.allowed_tools().end());
        mo.confirm_tools.assign(s.confirm_tools().begin(), s.confirm_tools().end());
        mo.timeout = timeout;
        auto tools = agents::MakeMcpAgentTools(shared, mo);
        if (tools.ok()) {
          for (auto& t : *tools) owned_tools.push_back(std::move(t));
        } else {
          setup = tools.status();
        }
      }
    }
    if (!setup.ok()) input.setup_errors.push_back(setup);
  }
  for (auto& t : owned_tools) deps.tools.push_back(t.get());

  // The model.
  std::unique_ptr<agents::ChatModel> model;
  if (!agents::IsExtractive(def)) {
    auto it = options_.openai_models.find(def.model());
    if (options_.model_factory) model = options_.model_factory(def.model());
    if (model != nullptr) {
      // A custom backend.
    } else if (it != options_.openai_models.end()) {
      auto m = options_.http ? agents::OpenAiChatModel::Create(it->second, options_.http)
                             : absl::StatusOr<std::unique_ptr<agents::OpenAiChatModel>>(
                                   absl::FailedPreconditionError("no HTTP transport for OpenAI-compatible models"));
      if (m.ok()) model = std::move(*m);
      else input.setup_errors.push_back(m.status());
    } else {
      model = std::make_unique<EngineChatModel>(options_.engine_channel ? options_.engine_channel() : nullptr);
    }
  }
  deps.model = model.get();
  RunGate gate([&](const v1::ApprovalRequired& r, const std::function<void()>& announce, agents::Cancellation& c) {
    const absl::Time expire = absl::FromUnixNanos(TimeUtil::TimestampToNanoseconds(r.expire_time()));
    return approvals_->Await({run_id, r.call_id()}, principal.principal.user, expire, announce, c);
  });
  deps.approvals = &gate;
  deps.persist = [&](const agents::RunOutcome& outcome) -> std::string {
    std::vector<v1::ConversationMessage> msgs;
    for (const auto& m : outcome.new_messages) {
      v1::ConversationMessage cm;
      cm.set_role(m.role());
      cm.set_content(m.content());
      cm.set_run_id(run_id);
      if (m.role() == v1::ROLE_ASSISTANT) {
        for (const auto& c : outcome.citations) *cm.add_citations() = c;
      }
      msgs.push_back(std::move(cm));
    }
    auto stored = store_->AppendMessages(tenant, conversation.id(), std::move(msgs));
    if (!stored.ok()) {
      TLOG(ERROR, "agents: storing the run's messages failed").Field("run", run_id).Field("error", stored.status().ToString());
      return "";
    }
    if (stored->size() > 1 && stored->back().role() == v1::ROLE_ASSISTANT) return stored->back().id();
    return "";
  };

  runner_.Run(input, deps, cancel, [&](v1::RunResponse e) {
    if (!writer->Write(e)) cancel.Cancel();
  });
  finished.store(true);
  watcher.join();
  for (auto& c : clients) c->Close();
  for (const auto& d : temp_dirs) {
    std::error_code ec;
    std::filesystem::remove_all(d, ec);
  }
  cleanup();
  return grpc::Status::OK;
}

grpc::Status AgentServiceImpl::ApproveToolCall(grpc::ServerContext* ctx, const v1::ApproveToolCallRequest* req,
                                                v1::ApproveToolCallResponse*) {
  auto caller = CallerFromContext(*ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  return ToGrpcStatus(approvals_->Decide({req->run_id(), req->call_id()}, caller->principal.user, req->approved()));
}

grpc::Status AgentServiceImpl::ListConversations(grpc::ServerContext* ctx, const v1::ListConversationsRequest* req,
                                                 v1::ListConversationsResponse* resp) {
  auto caller = CallerFromContext(*ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto all = store_->ListConversations(caller->principal.tenant, caller->principal.user, req->agent_id());
  if (!all.ok()) return ToGrpcStatus(all.status());
  return ToGrpcStatus(Page(*all, req->page_size(), req->page_token(), resp->mutable_next_page_token(),
                           [&](const v1::Conversation& c) { *resp->add_conversations() = c; }));
}

grpc::Status AgentServiceImpl::GetConversation(grpc::ServerContext* ctx, const v1::GetConversationRequest* req,
                                               v1::GetConversationResponse* resp) {
  auto caller = CallerFromContext(*ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto c = store_->GetConversation(caller->principal.tenant, req->conversation_id(), true);
  if (!c.ok() || c->user() != caller->principal.user) {
    return ToGrpcStatus(absl::NotFoundError(absl::StrCat("conversation '", req->conversation_id(), "' not found")));
  }
  *resp->mutable_conversation() = *c;
  return grpc::Status::OK;
}

grpc::Status AgentServiceImpl::DeleteConversation(grpc::ServerContext* ctx, const v1::DeleteConversationRequest* req,
                                                  v1::DeleteConversationResponse*) {
  auto caller = CallerFromContext(*ctx);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  auto c = store_->GetConversation(caller->principal.tenant, req->conversation_id(), false);
  if (!c.ok() || c->user() != caller->principal.user) {
    return ToGrpcStatus(absl::NotFoundError(absl::StrCat("conversation '", req->conversation_id(), "' not found")));
  }
  {
    absl::MutexLock lock(&mu_);
    if (active_conversations_.count(c->id())) {
      return ToGrpcStatus(absl::FailedPreconditionError("a run is active in this conversation"));
    }
  }
  return ToGrpcStatus(store_->DeleteConversation(caller->principal.tenant, c->id()));
}

}  // namespace tessera::agents_service
