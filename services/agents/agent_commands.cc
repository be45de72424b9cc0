#include "services/agents/agent_commands.h"

#include <unistd.h>

#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agents/definition/definition.h"
#include "common/file_system.h"
#include "common/grpc_status.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "tessera/v1/agents.grpc.pb.h"

namespace tessera::agents_service {
namespace {

namespace v1 = ::tessera::v1;

// "examples/agents/HR Assistant.json" -> "hr-assistant".
std::string IdFromPath(const std::string& path) {
  std::string stem = std::filesystem::path(path).stem().string();
  std::string id;
  for (char c : absl::AsciiStrToLower(stem)) {
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      id.push_back(c);
    } else if (!id.empty() && id.back() != '-') {
      id.push_back('-');
    }
  }
  while (!id.empty() && id.back() == '-') id.pop_back();
  return id.substr(0, 63);
}

std::string OneLine(std::string s, size_t max) {
  for (char& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  if (s.size() > max) s = s.substr(0, max) + "...";
  return s;
}

int Import(v1::AgentService::Stub& stub, const ClientOptions& client, const AgentCommandOptions& o, FILE* out,
           FILE* err) {
  if (o.path.empty()) {
    std::fprintf(err, "tessera: agent import needs a FILE.json\n");
    return 2;
  }
  auto json = LocalFileSystem()->ReadFile(o.path, 1 << 20);
  if (!json.ok()) return ReportClientError(json.status(), err);
  // Check locally first, so that errors name the file and need no server.
  auto def = agents::ParseAndValidateAgentDefinitionJson(*json);
  if (!def.ok()) {
    std::fprintf(err, "tessera: %s: %s\n", o.path.c_str(), std::string(def.status().message()).c_str());
    return 2;
  }
  const std::string id = o.agent_id.empty() ? IdFromPath(o.path) : o.agent_id;
  v1::CreateAgentRequest create;
  create.set_definition_json(*json);
  create.set_agent_id(id);
  v1::CreateAgentResponse created;
  absl::Status s = FromGrpcStatus(stub.CreateAgent(ClientContextFor(client, absl::Seconds(30)).get(), create, &created));
  v1::Agent agent = created.agent();
  if (s.code() == absl::StatusCode::kAlreadyExists) {
    v1::UpdateAgentRequest update;
    update.set_agent_id(id);
    update.set_definition_json(*json);
    v1::UpdateAgentResponse updated;
    s = FromGrpcStatus(stub.UpdateAgent(ClientContextFor(client, absl::Seconds(30)).get(), update, &updated));
    agent = updated.agent();
  }
  if (!s.ok()) return ReportClientError(absl::Status(s.code(), absl::StrCat(o.path, ": ", s.message())), err);
  std::fprintf(out, "imported %s version %lld (%s, model %s)\n", agent.id().c_str(),
               static_cast<long long>(agent.version()), agent.definition().name().c_str(),
               agent.definition().model().c_str());
  return 0;
}

}  // namespace

int AgentCommand(const ClientOptions& client, const AgentCommandOptions& o, FILE* out, FILE* err) {
  auto channel = ClientChannel(client);
  if (!channel.ok()) return ReportClientError(channel.status(), err);
  auto stub = v1::AgentService::NewStub(*channel);
  if (o.action == "import") return Import(*stub, client, o, out, err);
  if (o.action == "list") {
    std::vector<v1::Agent> agents;
    std::string token;
    do {
      v1::ListAgentsRequest req;
      req.set_page_size(500);
      req.set_page_token(token);
      v1::ListAgentsResponse resp;
      absl::Status s = FromGrpcStatus(stub->ListAgents(ClientContextFor(client, absl::Seconds(30)).get(), req, &resp));
      if (!s.ok()) return ReportClientError(s, err);
      agents.insert(agents.end(), resp.agents().begin(), resp.agents().end());
      token = resp.next_page_token();
    } while (!token.empty());
    if (agents.empty()) {
      std::fprintf(out, "no agents (import one: tessera agent import FILE.json)\n");
      return 0;
    }
    std::fprintf(out, "%-24s %-7s %-28s %-16s %s\n", "ID", "VERSION", "NAME", "MODEL", "OWNER");
    for (const auto& a : agents) {
      std::fprintf(out, "%-24s %-7lld %-28s %-16s %s\n", a.id().c_str(), static_cast<long long>(a.version()),
                   OneLine(a.definition().name(), 28).c_str(), a.definition().model().c_str(), a.owner().c_str());
    }
    return 0;
  }
  if (o.action == "get") {
    if (o.agent_id.empty()) {
      std::fprintf(err, "tessera: agent get needs an agent id\n");
      return 2;
    }
    v1::GetAgentRequest req;
    req.set_agent_id(o.agent_id);
    req.set_version(o.version);
    v1::GetAgentResponse resp;
    absl::Status s = FromGrpcStatus(stub->GetAgent(ClientContextFor(client, absl::Seconds(30)).get(), req, &resp));
    if (!s.ok()) return ReportClientError(s, err);
    std::fprintf(out, "# %s version %lld, owner %s\n%s", resp.agent().id().c_str(),
                 static_cast<long long>(resp.agent().version()), resp.agent().owner().c_str(),
                 agents::AgentDefinitionToJson(resp.agent().definition()).c_str());
    return 0;
  }
  std::fprintf(err, "tessera: agent: unknown action '%s' (import, list, get)\n", o.action.c_str());
  return 2;
}

int AskCommand(const ClientOptions& client, const AskCommandOptions& o, FILE* in, FILE* out, FILE* err) {
  if (o.agent_id.empty() || absl::StripAsciiWhitespace(o.message).empty()) {
    std::fprintf(err, "tessera: ask needs an agent id and a question: tessera ask AGENT \"QUESTION\"\n");
    return 2;
  }
  if (o.approve != "ask" && o.approve != "all" && o.approve != "none") {
    std::fprintf(err, "tessera: --approve must be ask, all or none\n");
    return 2;
  }
  auto channel = ClientChannel(client);
  if (!channel.ok()) return ReportClientError(channel.status(), err);
  auto stub = v1::AgentService::NewStub(*channel);
  v1::RunRequest req;
  req.set_agent_id(o.agent_id);
  req.set_message(o.message);
  req.set_conversation_id(o.conversation_id);
  if (!o.as_user.empty()) {
    req.mutable_principal()->set_user(o.as_user);
    for (const auto& g : o.as_groups) {
      if (!g.empty()) req.mutable_principal()->add_groups(g);
    }
  }
  auto ctx = ClientContextFor(client, absl::InfiniteDuration());
  auto reader = stub->Run(ctx.get(), req);
  v1::RunResponse e;
  std::vector<v1::Citation> citations;
  std::map<std::string, std::string> tool_names;
  bool at_line_start = true;
  v1::RunDone done;
  bool got_done = false;
  google::protobuf::util::JsonPrintOptions jo;
  jo.preserve_proto_field_names = true;
  while (reader->Read(&e)) {
    if (o.json) {
      std::string line;
      (void)google::protobuf::util::MessageToJsonString(e, &line, jo);
      std::fprintf(out, "%s\n", line.c_str());
      std::fflush(out);
    }
    switch (e.event_case()) {
      case v1::RunResponse::kMessageDelta:
        if (!o.json) {
          std::fputs(e.message_delta().text().c_str(), out);
          std::fflush(out);
          if (!e.message_delta().text().empty()) at_line_start = e.message_delta().text().back() == '\n';
        }
        break;
      case v1::RunResponse::kToolCallStarted:
        tool_names[e.tool_call_started().call_id()] =
            e.tool_call_started().server().empty()
                ? e.tool_call_started().tool_name()
                : absl::StrCat(e.tool_call_started().tool_name(), " (", e.tool_call_started().server(), ")");
        break;
      case v1::RunResponse::kToolCallArguments:
        if (o.show_tools && !o.json) {
          std::fflush(out);
          std::fprintf(err, "%s-> %s %s\n", at_line_start ? "" : "\n",
                       tool_names[e.tool_call_arguments().call_id()].c_str(),
                       OneLine(e.tool_call_arguments().arguments_json(), 200).c_str());
          at_line_start = true;
        }
        break;
      case v1::RunResponse::kRetrievalResults:
        if (o.show_tools && !o.json) {
          std::fprintf(err, "   %d hit(s) for \"%s\"\n", e.retrieval_results().hits_size(),
                       e.retrieval_results().query().c_str());
        }
        break;
      case v1::RunResponse::kToolCallResult:
        if (o.show_tools && !o.json) {
          std::fprintf(err, "<- %s%s\n", e.tool_call_result().is_error() ? "error: " : "",
                       OneLine(e.tool_call_result().content(), 160).c_str());
        }
        break;
      case v1::RunResponse::kCitation:
        citations.push_back(e.citation().citation());
        break;
      case v1::RunResponse::kApprovalRequired: {
        const auto& a = e.approval_required();
        bool approved = o.approve == "all";
        if (o.approve == "ask") {
          if (in != nullptr && isatty(fileno(in))) {
            std::fprintf(err, "\n%s wants to call %s (%s) with %s\nAllow? [y/N] ", "The agent", a.tool_name().c_str(),
                         a.server().c_str(), OneLine(a.arguments_json(), 300).c_str());
            std::fflush(err);
            char line[16] = {0};
            approved = std::fgets(line, sizeof line, in) != nullptr && (line[0] == 'y' || line[0] == 'Y');
          } else {
            std::fprintf(err, "(declining %s: approval needs a terminal, or --approve=all)\n", a.tool_name().c_str());
          }
        }
        v1::ApproveToolCallRequest ar;
        ar.set_run_id(e.run_id());
        ar.set_call_id(a.call_id());
        ar.set_approved(approved);
        v1::ApproveToolCallResponse aresp;
        absl::Status s =
            FromGrpcStatus(stub->ApproveToolCall(ClientContextFor(client, absl::Seconds(30)).get(), ar, &aresp));
        if (!s.ok()) ReportClientError(s, err);
        break;
      }
      case v1::RunResponse::kError:
        if (!o.json) {
          std::fflush(out);
          std::fprintf(err, "%s[%s] %s\n", at_line_start ? "" : "\n",
                       e.error().kind() == v1::RUN_ERROR_KIND_FATAL ? "error" : "note",
                       e.error().message().c_str());
          at_line_start = true;
        }
        break;
      case v1::RunResponse::kDone:
        done = e.done();
        got_done = true;
        break;
      default:
        break;
    }
  }
  absl::Status s = FromGrpcStatus(reader->Finish());
  if (!s.ok()) return ReportClientError(s, err);
  if (o.json) return got_done && done.finish_reason() != v1::RUN_FINISH_REASON_ERROR ? 0 : 1;
  if (!at_line_start) std::fputc('\n', out);
  if (!citations.empty()) {
    std::fprintf(out, "\nSources:\n");
    for (const auto& c : citations) {
      std::fprintf(out, "  [%d] %s%s%s\n", c.index(), c.title().c_str(), c.uri().empty() ? "" : " - ",
                   c.uri().c_str());
    }
  }
  const char* reason = "";
  switch (done.finish_reason()) {
    case v1::RUN_FINISH_REASON_LENGTH: reason = " (cut at the length limit)"; break;
    case v1::RUN_FINISH_REASON_MAX_ITERATIONS: reason = " (stopped at the iteration limit)"; break;
    case v1::RUN_FINISH_REASON_CANCELLED: reason = " (cancelled)"; break;
    case v1::RUN_FINISH_REASON_ERROR: reason = " (failed)"; break;
    default: break;
  }
  std::fflush(out);
  std::string tokens;
  if (done.usage().total_tokens() > 0) {
    tokens = absl::StrCat(", ", done.usage().prompt_tokens(), " prompt + ", done.usage().completion_tokens(),
                          " generated tokens");
  }
  std::fprintf(err, "(conversation %s, %d turn(s)%s%s; continue it with --conversation=%s)\n",
               done.conversation_id().c_str(), done.iterations(), tokens.c_str(), reason,
               done.conversation_id().c_str());
  return got_done && done.finish_reason() != v1::RUN_FINISH_REASON_ERROR ? 0 : 1;
}

}  // namespace tessera::agents_service
