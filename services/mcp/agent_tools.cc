#include "services/mcp/agent_tools.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "tessera/v1/agents.grpc.pb.h"

namespace tessera::mcp {
namespace {

namespace v1 = ::tessera::v1;

std::unique_ptr<grpc::ClientContext> Context(const McpCallContext& c, absl::Duration timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->AddMetadata("authorization", "Bearer " + c.bearer_key);
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return ctx;
}

Json Text(const std::string& text) { return Json{{"type", "text"}, {"text", text}}; }

const char* FinishName(v1::RunFinishReason r) {
  switch (r) {
    case v1::RUN_FINISH_REASON_STOP: return "stop";
    case v1::RUN_FINISH_REASON_LENGTH: return "length";
    case v1::RUN_FINISH_REASON_MAX_ITERATIONS: return "max_iterations";
    case v1::RUN_FINISH_REASON_CANCELLED: return "cancelled";
    case v1::RUN_FINISH_REASON_ERROR: return "error";
    default: return "unknown";
  }
}

}  // namespace

absl::Status AddAgentTools(McpServer& server, AgentToolsOptions options) {
  auto opts = std::make_shared<AgentToolsOptions>(std::move(options));
  McpToolDef list;
  list.descriptor = {
      {"name", "list_agents"},
      {"title", "List agents"},
      {"description", "Lists the Tessera agents you may ask: their ids, names, descriptions and example questions."},
      {"inputSchema", {{"type", "object"}, {"properties", Json::object()}}},
      {"annotations", {{"readOnlyHint", true}, {"openWorldHint", false}}},
  };
  list.handler = [opts](const Json&, const McpCallContext& context) -> absl::StatusOr<Json> {
    auto stub = v1::AgentService::NewStub(opts->agents_channel());
    v1::ListAgentsRequest req;
    req.set_page_size(500);
    v1::ListAgentsResponse resp;
    absl::Status s = FromGrpcStatus(stub->ListAgents(Context(context, absl::Seconds(30)).get(), req, &resp));
    if (!s.ok()) return s;
    Json agents = Json::array();
    std::string text;
    for (const auto& a : resp.agents()) {
      Json starters = Json::array();
      for (const auto& m : a.definition().starter_messages()) starters.push_back(m);
      agents.push_back({{"id", a.id()},
                        {"name", a.definition().name()},
                        {"description", a.definition().description()},
                        {"starter_messages", starters}});
      absl::StrAppend(&text, a.id(), ": ", a.definition().name(),
                      a.definition().description().empty() ? "" : " - ", a.definition().description(), "\n");
    }
    if (text.empty()) text = "No agents are shared with you.";
    return Json{{"content", Json::array({Text(text)})}, {"structuredContent", {{"agents", agents}}}};
  };
  if (absl::Status s = server.AddTool(std::move(list)); !s.ok()) return s;

  McpToolDef ask;
  ask.descriptor = {
      {"name", "ask_agent"},
      {"title", "Ask an agent"},
      {"description",
       "Asks a Tessera agent a question. The agent searches the organisation's documents you may see and "
       "answers with numbered sources. Pass conversation_id from an earlier answer to follow up."},
      {"inputSchema",
       {{"type", "object"},
        {"properties",
         {{"agent_id", {{"type", "string"}, {"description", "The agent's id, from list_agents."}}},
          {"message", {{"type", "string"}, {"description", "The question."}}},
          {"conversation_id", {{"type", "string"}, {"description", "Continue this conversation."}}}}},
        {"required", Json::array({"agent_id", "message"})}}},
      {"annotations", {{"readOnlyHint", false}, {"openWorldHint", true}}},
  };
  ask.handler = [opts](const Json& arguments, const McpCallContext& context) -> absl::StatusOr<Json> {
    const std::string agent = arguments.value("agent_id", "");
    const std::string message = arguments.value("message", "");
    if (absl::StripAsciiWhitespace(agent).empty() || absl::StripAsciiWhitespace(message).empty()) {
      return absl::InvalidArgumentError("ask_agent needs agent_id and a non-empty message");
    }
    auto stub = v1::AgentService::NewStub(opts->agents_channel());
    v1::RunRequest req;
    req.set_agent_id(agent);
    req.set_message(message);
    req.set_conversation_id(arguments.value("conversation_id", ""));
    auto ctx = Context(context, opts->run_timeout);
    auto reader = stub->Run(ctx.get(), req);
    v1::RunResponse e;
    std::string answer, conversation, notes;
    Json citations = Json::array();
    v1::RunDone done;
    while (reader->Read(&e)) {
      conversation = e.conversation_id();
      if (e.has_message_delta()) answer += e.message_delta().text();
      if (e.has_citation()) {
        const auto& c = e.citation().citation();
        citations.push_back({{"index", c.index()},
                             {"title", c.title()},
                             {"uri", c.uri()},
                             {"source", c.source()},
                             {"document_id", c.document_id()},
                             {"snippet", c.snippet()}});
      }
      if (e.has_approval_required()) {
        v1::ApproveToolCallRequest a;
        a.set_run_id(e.run_id());
        a.set_call_id(e.approval_required().call_id());
        a.set_approved(false);
        v1::ApproveToolCallResponse ar;
        (void)stub->ApproveToolCall(Context(context, absl::Seconds(30)).get(), a, &ar);
        absl::StrAppend(&notes, "The agent's call to ", e.approval_required().tool_name(),
                        " needed approval, which cannot be given over MCP; it was declined.\n");
      }
      if (e.has_error() && e.error().kind() == v1::RUN_ERROR_KIND_FATAL) {
        absl::StrAppend(&notes, "Error: ", e.error().message(), "\n");
      }
      if (e.has_done()) done = e.done();
    }
    absl::Status s = FromGrpcStatus(reader->Finish());
    if (!s.ok()) return s;
    std::string text = answer;
    if (!citations.empty()) {
      absl::StrAppend(&text, "\n\nSources:");
      for (const auto& c : citations) {
        absl::StrAppend(&text, "\n[", c["index"].get<int>(), "] ", c["title"].get<std::string>(),
                        c["uri"].get<std::string>().empty() ? "" : " - ", c["uri"].get<std::string>());
      }
    }
    if (!notes.empty()) absl::StrAppend(&text, "\n\n", notes);
    Json result = {{"content", Json::array({Text(text)})},
                   {"structuredContent",
                    {{"answer", answer},
                     {"citations", citations},
                     {"conversation_id", conversation},
                     {"finish_reason", FinishName(done.finish_reason())}}}};
    if (done.finish_reason() == v1::RUN_FINISH_REASON_ERROR) result["isError"] = true;
    return result;
  };
  return server.AddTool(std::move(ask));
}

}  // namespace tessera::mcp
