#include "agents/orchestrator/agent_runner.h"

#include <atomic>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "agents/orchestrator/citations.h"
#include "google/protobuf/util/time_util.h"
#include "nlohmann/json.hpp"

namespace tessera::agents {
namespace {

namespace v1 = ::tessera::v1;
using Json = nlohmann::json;
using google::protobuf::util::TimeUtil;

bool IsRetryable(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kResourceExhausted ||
         code == absl::StatusCode::kDeadlineExceeded || code == absl::StatusCode::kAborted;
}

google::protobuf::Duration ToProtoDuration(absl::Duration d) {
  return TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(d));
}

google::protobuf::Timestamp ToProtoTime(absl::Time t) {
  return TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(t));
}

// The arguments in a canonical form (keys sorted, no spaces), so that the same call is recognised
// however the model spaced it. Text that is not JSON is compared as is.
std::string CanonicalArguments(const std::string& arguments_json) {
  Json j = Json::parse(arguments_json, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return arguments_json;
  return j.dump();
}

// The running state of one run: numbering and sending events, usage, sources.
class RunState {
 public:
  RunState(const RunInput& input, const RunEventSink& sink) : input_(input), sink_(sink) {}

  v1::RunResponse NewEvent() {
    v1::RunResponse e;
    e.set_run_id(input_.run_id);
    e.set_conversation_id(input_.conversation_id);
    e.set_sequence(++sequence_);
    e.set_iteration(iteration);
    return e;
  }
  void Send(v1::RunResponse e) { sink_(std::move(e)); }

  void Error(const absl::Status& s, v1::RunErrorKind kind, const std::string& call_id = "") {
    v1::RunResponse e = NewEvent();
    auto* err = e.mutable_error();
    err->set_code(static_cast<int>(s.code()));
    err->set_message(std::string(s.message()));
    err->set_retryable(IsRetryable(s.code()));
    err->set_kind(kind);
    err->set_call_id(call_id);
    Send(std::move(e));
  }

  // Streams answer text and the citations it completes.
  void Text(const std::string& text, bool citations_enabled) {
    if (text.empty()) return;
    answer += text;
    v1::RunResponse e = NewEvent();
    e.mutable_message_delta()->set_text(text);
    Send(std::move(e));
    if (!citations_enabled) return;
    for (int n : tracker.Update(answer)) {
      v1::RunResponse c = NewEvent();
      *c.mutable_citation()->mutable_citation() = sources.CitationFor(n);
      citations.push_back(c.citation().citation());
      Send(std::move(c));
    }
  }

  void AddUsage(const v1::Usage& u) {
    usage.set_prompt_tokens(usage.prompt_tokens() + u.prompt_tokens());
    usage.set_completion_tokens(usage.completion_tokens() + u.completion_tokens());
    usage.set_total_tokens(usage.prompt_tokens() + usage.completion_tokens());
    usage.set_embedding_tokens(usage.embedding_tokens() + u.embedding_tokens());
  }

  int iteration = 0;
  std::string answer;
  v1::Usage usage;
  SourceTable sources;
  CitationTracker tracker{&sources};
  std::vector<v1::Citation> citations;

 private:
  const RunInput& input_;
  const RunEventSink& sink_;
  int64_t sequence_ = 0;
};

// One tool call of an iteration, from the model's request to its result.
struct PendingCall {
  v1::ToolCall call;
  AgentTool* tool = nullptr;  // null: unknown tool
  std::optional<ToolOutput> output;  // set when decided without running (unknown, repeat, denied)
  absl::Status status;  // the call's failure, when it could not run
  absl::Duration duration;
  bool run = false;
  bool timed_out = false;  // the loop gave up waiting; whatever the tool returned is ignored
};

// Runs one call under its own cancellation, linked to the run's, with a deadline.
struct CallRunner {
  PendingCall* call;
  Cancellation cancel;
  std::atomic<bool> done{false};
  absl::Time deadline;
  std::thread thread;
};

std::string CapResult(const std::string& content, size_t max_bytes) {
  if (content.size() <= max_bytes) return content;
  return absl::StrCat(TruncateUtf8(content, max_bytes), "\n[truncated: the tool returned ", content.size(),
                      " bytes; only the first ", max_bytes, " are shown]");
}

}  // namespace

std::string BuildSystemPrompt(const v1::AgentDefinition& d, const std::vector<AgentTool*>& tools,
                              const std::string& user) {
  std::string out = d.instructions();
  const bool citations = !d.has_citations_enabled() || d.citations_enabled();
  std::string knowledge_tool;
  for (AgentTool* t : tools) {
    if (t->server().empty()) knowledge_tool = t->spec().name();
  }
  if (!knowledge_tool.empty()) {
    absl::StrAppend(&out, out.empty() ? "" : "\n\n", "Use the tool `", knowledge_tool,
                    "` to find facts in the company's documents before answering questions about them. "
                    "Its results are numbered sources like [1].");
    if (citations) {
      absl::StrAppend(&out,
                      " Cite the sources you use by their numbers in square brackets right after the "
                      "statement they support, for example [1] or [2][3]. Cite only sources you were "
                      "shown. If the sources do not contain the answer, say that you could not find it.");
    }
  }
  if (!user.empty()) absl::StrAppend(&out, "\n\nYou are answering ", user, ".");
  return out;
}

RunOutcome AgentRunner::Run(const RunInput& input, const RunDeps& deps, Cancellation& cancel,
                            const RunEventSink& sink) const {
  const v1::AgentDefinition& def = *input.definition;
  const bool citations_enabled = !def.has_citations_enabled() || def.citations_enabled();
  RunState st(input, sink);
  RunOutcome outcome;
  {
    v1::ChatMessage user;
    user.set_role(v1::ROLE_USER);
    user.set_content(input.user_message);
    outcome.new_messages.push_back(user);
  }
  auto finish = [&](v1::RunFinishReason reason) {
    outcome.finish_reason = reason;
    outcome.answer = st.answer;
    outcome.citations = st.citations;
    outcome.usage = st.usage;
    outcome.iterations = st.iteration;
    if (!st.answer.empty() && reason != v1::RUN_FINISH_REASON_ERROR) {
      v1::ChatMessage a;
      a.set_role(v1::ROLE_ASSISTANT);
      a.set_content(st.answer);
      outcome.new_messages.push_back(a);
    }
    v1::RunResponse e = st.NewEvent();
    auto* done = e.mutable_done();
    if (deps.persist) done->set_message_id(deps.persist(outcome));
    done->set_finish_reason(reason);
    *done->mutable_usage() = st.usage;
    done->set_conversation_id(input.conversation_id);
    done->set_iterations(st.iteration);
    st.Send(std::move(e));
    return outcome;
  };

  for (const absl::Status& s : input.setup_errors) st.Error(s, v1::RUN_ERROR_KIND_RECOVERED);

  // --- Extractive answers: search, then quote the best passages. ---
  if (def.model() == kExtractiveModel || deps.model == nullptr) {
    st.iteration = 1;
    if (deps.knowledge == nullptr) {
      st.Error(absl::FailedPreconditionError(
                   "this agent has no generative model and no knowledge to answer from; configure a "
                   "model or knowledge.collections"),
               v1::RUN_ERROR_KIND_FATAL);
      return finish(v1::RUN_FINISH_REASON_ERROR);
    }
    const std::string call_id = "extractive";
    {
      v1::RunResponse e = st.NewEvent();
      e.mutable_tool_call_started()->set_call_id(call_id);
      e.mutable_tool_call_started()->set_tool_name("search_knowledge");
      st.Send(std::move(e));
      v1::RunResponse a = st.NewEvent();
      a.mutable_tool_call_arguments()->set_call_id(call_id);
      a.mutable_tool_call_arguments()->set_arguments_json(Json{{"query", input.user_message}}.dump());
      st.Send(std::move(a));
    }
    const int top_k = def.knowledge().top_k() > 0 ? def.knowledge().top_k() : 8;
    const absl::Time start = absl::Now();
    absl::StatusOr<std::vector<v1::SearchHit>> hits =
        deps.knowledge->Search(input.user_message, top_k, cancel, absl::Now() + absl::Seconds(60));
    if (!hits.ok()) {
      if (cancel.cancelled()) return finish(v1::RUN_FINISH_REASON_CANCELLED);
      st.Error(absl::Status(hits.status().code(), absl::StrCat("knowledge search failed: ", hits.status().message())),
               v1::RUN_ERROR_KIND_FATAL, call_id);
      return finish(v1::RUN_FINISH_REASON_ERROR);
    }
    std::vector<int> numbers = st.sources.Add(*hits);
    {
      v1::RunResponse e = st.NewEvent();
      e.mutable_retrieval_results()->set_call_id(call_id);
      e.mutable_retrieval_results()->set_query(input.user_message);
      for (const auto& h : *hits) *e.mutable_retrieval_results()->add_hits() = h;
      st.Send(std::move(e));
      v1::RunResponse r = st.NewEvent();
      r.mutable_tool_call_result()->set_call_id(call_id);
      r.mutable_tool_call_result()->set_content(
          st.sources.FormatForModel(*hits, numbers, options_.max_chars_per_hit));
      *r.mutable_tool_call_result()->mutable_duration() = ToProtoDuration(absl::Now() - start);
      st.Send(std::move(r));
    }
    if (hits->empty()) {
      st.Text("I found no documents that answer this among those you may see. (Extractive answer: no "
              "generative model is configured for this agent.)",
              citations_enabled);
      return finish(v1::RUN_FINISH_REASON_STOP);
    }
    st.Text("Extractive answer (no generative model is configured for this agent). The most relevant "
            "passages:\n",
            citations_enabled);
    const int n = std::min<int>(options_.extractive_passages, static_cast<int>(hits->size()));
    for (int i = 0; i < n; ++i) {
      const v1::SearchHit& h = (*hits)[i];
      std::string passage = h.snippet().empty() ? TruncateUtf8(h.text(), 300) : h.snippet();
      for (char& c : passage) {
        if (c == '\n' || c == '\r') c = ' ';
      }
      std::string line = absl::StrCat("\n", i + 1, ". ", h.title().empty() ? h.external_id() : h.title(), ": \"",
                                      passage, "\"");
      if (citations_enabled) absl::StrAppend(&line, " [", numbers[i], "]");
      st.Text(line + "\n", citations_enabled);
    }
    return finish(v1::RUN_FINISH_REASON_STOP);
  }

  // --- The tool-calling loop. ---
  std::map<std::string, AgentTool*> tools_by_name;
  for (AgentTool* t : deps.tools) tools_by_name[t->spec().name()] = t;
  std::vector<v1::ChatMessage> messages;
  {
    std::string system = BuildSystemPrompt(def, deps.tools, input.user);
    for (const absl::Status& s : input.setup_errors) {
      absl::StrAppend(&system, "\n\nNote: some tools are unavailable in this conversation: ", s.message());
    }
    if (!system.empty()) {
      v1::ChatMessage m;
      m.set_role(v1::ROLE_SYSTEM);
      m.set_content(system);
      messages.push_back(std::move(m));
    }
  }
  for (const auto& m : input.history) messages.push_back(m);
  messages.push_back(outcome.new_messages.front());

  const int max_iterations = def.max_iterations() > 0 ? def.max_iterations() : 8;
  std::set<std::string> calls_made;  // name + canonical arguments
  int repeats = 0;
  bool force_answer = false;
  int call_counter = 0;

  for (int iter = 1; iter <= max_iterations; ++iter) {
    st.iteration = iter;
    if (cancel.cancelled()) return finish(v1::RUN_FINISH_REASON_CANCELLED);
    v1::GenerateRequest req;
    req.set_model(def.model());
    for (const auto& m : messages) *req.add_messages() = m;
    if (!force_answer) {
      for (AgentTool* t : deps.tools) *req.add_tools() = t->spec();
    }
    if (def.has_completion_args()) *req.mutable_sampling() = def.completion_args();

    std::string turn_text;
    std::vector<v1::ToolCall> calls;
    std::optional<v1::FinishEvent> fin;
    absl::Status gen = deps.model->Generate(req, cancel, [&](const v1::GenerateResponse& r) {
      switch (r.event_case()) {
        case v1::GenerateResponse::kToken: {
          std::string text = r.token().text();
          // Text of an earlier turn (said before calling tools) and this turn's stay apart.
          if (turn_text.empty() && !text.empty() && !st.answer.empty() && st.answer.back() != '\n') {
            text = "\n\n" + text;
          }
          turn_text += r.token().text();
          st.Text(text, citations_enabled);
          break;
        }
        case v1::GenerateResponse::kToolCall:
          calls.push_back(r.tool_call().tool_call());
          break;
        case v1::GenerateResponse::kUsage:
          st.AddUsage(r.usage().usage());
          break;
        case v1::GenerateResponse::kFinish:
          fin = r.finish();
          break;
        default:
          break;
      }
    });
    if (cancel.cancelled() || gen.code() == absl::StatusCode::kCancelled) {
      return finish(v1::RUN_FINISH_REASON_CANCELLED);
    }
    if (!gen.ok() || !fin.has_value()) {
      absl::Status s = gen.ok() ? absl::UnavailableError("the model's stream ended without a finish event") : gen;
      st.Error(absl::Status(s.code(), absl::StrCat("model ", deps.model->Describe(), ": ", s.message())),
               v1::RUN_ERROR_KIND_FATAL);
      return finish(v1::RUN_FINISH_REASON_ERROR);
    }
    switch (fin->reason()) {
      case v1::FINISH_REASON_CANCELLED:
        return finish(v1::RUN_FINISH_REASON_CANCELLED);
      case v1::FINISH_REASON_ERROR:
        st.Error(absl::Status(static_cast<absl::StatusCode>(fin->error().code()),
                              absl::StrCat("model ", deps.model->Describe(), ": ", fin->error().message())),
                 v1::RUN_ERROR_KIND_FATAL);
        return finish(v1::RUN_FINISH_REASON_ERROR);
      case v1::FINISH_REASON_LENGTH:
        if (calls.empty()) return finish(v1::RUN_FINISH_REASON_LENGTH);
        break;
      default:
        break;
    }
    if (fin->reason() == v1::FINISH_REASON_TOOL_CALLS && calls.empty()) {
      // The model tried to call tools but spelled the calls wrong: tell it, and let it try again.
      const std::string why = fin->error().message().empty() ? "the tool calls could not be read"
                                                             : fin->error().message();
      st.Error(absl::InvalidArgumentError(absl::StrCat("the model made a malformed tool call: ", why)),
               v1::RUN_ERROR_KIND_RECOVERED);
      v1::ChatMessage a;
      a.set_role(v1::ROLE_ASSISTANT);
      a.set_content(turn_text.empty() ? "(malformed tool call)" : turn_text);
      messages.push_back(std::move(a));
      v1::ChatMessage u;
      u.set_role(v1::ROLE_USER);
      u.set_content(absl::StrCat("Your tool call could not be run: ", why,
                                 ". Call the tool again with valid JSON arguments, or answer directly."));
      messages.push_back(std::move(u));
      continue;
    }
    if (calls.empty()) return finish(v1::RUN_FINISH_REASON_STOP);

    // The model called tools: record its message, then decide each call.
    {
      v1::ChatMessage a;
      a.set_role(v1::ROLE_ASSISTANT);
      a.set_content(turn_text);
      for (auto& c : calls) {
        if (c.id().empty()) c.set_id(absl::StrCat("call", ++call_counter));
        *a.add_tool_calls() = c;
      }
      messages.push_back(std::move(a));
    }
    std::vector<PendingCall> pending(calls.size());
    for (size_t i = 0; i < calls.size(); ++i) {
      PendingCall& p = pending[i];
      p.call = calls[i];
      auto it = tools_by_name.find(p.call.name());
      p.tool = it == tools_by_name.end() ? nullptr : it->second;
      v1::RunResponse e = st.NewEvent();
      e.mutable_tool_call_started()->set_call_id(p.call.id());
      e.mutable_tool_call_started()->set_tool_name(p.call.name());
      if (p.tool != nullptr) e.mutable_tool_call_started()->set_server(p.tool->server());
      st.Send(std::move(e));
      v1::RunResponse a = st.NewEvent();
      a.mutable_tool_call_arguments()->set_call_id(p.call.id());
      a.mutable_tool_call_arguments()->set_arguments_json(p.call.arguments_json());
      st.Send(std::move(a));

      if (p.tool == nullptr) {
        std::vector<std::string> names;
        for (const auto& [name, t] : tools_by_name) names.push_back(name);
        p.output = ToolOutput{absl::StrCat("There is no tool named '", p.call.name(), "'. The tools are: ",
                                           names.empty() ? "(none)" : absl::StrJoin(names, ", "), "."),
                              true};
        continue;
      }
      Json args = Json::parse(p.call.arguments_json().empty() ? "{}" : p.call.arguments_json(), nullptr, false);
      if (args.is_discarded() || !args.is_object()) {
        p.output = ToolOutput{"The arguments must be a JSON object matching the tool's parameters.", true};
        continue;
      }
      const std::string key = p.call.name() + "\x1f" + CanonicalArguments(p.call.arguments_json());
      if (!calls_made.insert(key).second) {
        ++repeats;
        st.Error(absl::AbortedError(absl::StrCat("loop detected: the model repeated the call ", p.call.name(),
                                                 " with the same arguments; it was not run again")),
                 v1::RUN_ERROR_KIND_RECOVERED, p.call.id());
        p.output = ToolOutput{"You already made this exact call (same tool, same arguments) in this run; its "
                              "result is above. Use it to answer, or call with different arguments.",
                              true};
        if (repeats >= 2) force_answer = true;  // the next turn must answer without tools
        continue;
      }
      if (p.tool->requires_approval()) {
        if (deps.approvals == nullptr) {
          p.output = ToolOutput{"This tool needs the user's approval, which cannot be asked for here; the call "
                                "was not made.",
                                true};
          continue;
        }
        v1::ApprovalRequired req;
        req.set_call_id(p.call.id());
        req.set_tool_name(p.call.name());
        req.set_server(p.tool->server());
        req.set_arguments_json(p.call.arguments_json());
        *req.mutable_expire_time() = ToProtoTime(deps.clock->Now() + options_.approval_timeout);
        ApprovalDecision d = deps.approvals->Await(
            req,
            [&] {
              v1::RunResponse e = st.NewEvent();
              *e.mutable_approval_required() = req;
              st.Send(std::move(e));
            },
            cancel);
        if (d == ApprovalDecision::kCancelled || cancel.cancelled()) return finish(v1::RUN_FINISH_REASON_CANCELLED);
        if (d != ApprovalDecision::kApproved) {
          p.output = ToolOutput{d == ApprovalDecision::kExpired
                                    ? "The user did not approve this call in time; it was not made."
                                    : "The user declined this call; it was not made. Do not retry it.",
                                true};
          continue;
        }
      }
      p.run = true;
    }

    // Run the approved calls concurrently, each under its timeout.
    std::vector<std::unique_ptr<CallRunner>> runners;
    absl::Mutex mu;
    for (PendingCall& p : pending) {
      if (!p.run) continue;
      auto r = std::make_unique<CallRunner>();
      r->call = &p;
      runners.push_back(std::move(r));
    }
    const int64_t link = cancel.AddCallback([&runners] {
      for (auto& r : runners) r->cancel.Cancel();
    });
    for (auto& rp : runners) {
      CallRunner* r = rp.get();
      r->deadline = absl::Now() + r->call->tool->timeout();
      r->thread = std::thread([r, &mu] {
        PendingCall& p = *r->call;
        ToolCallContext ctx;
        ctx.call_id = p.call.id();
        ctx.cancel = &r->cancel;
        ctx.deadline = r->deadline;
        const absl::Time start = absl::Now();
        absl::StatusOr<ToolOutput> out = p.tool->Call(p.call.arguments_json(), ctx);
        absl::MutexLock lock(&mu);
        p.duration = absl::Now() - start;
        if (out.ok()) {
          p.output = std::move(*out);
        } else {
          p.status = out.status();
        }
        r->done.store(true);
      });
    }
    {
      // Wait for each call until its deadline; then cancel it and give it a grace period.
      absl::MutexLock lock(&mu);
      for (auto& r : runners) {
        const absl::Time deadline = r->deadline;
        auto is_done = [&r] { return r->done.load(); };
        if (!mu.AwaitWithDeadline(absl::Condition(&is_done), deadline)) {
          r->cancel.Cancel();
          r->call->timed_out = true;
          mu.AwaitWithTimeout(absl::Condition(&is_done), options_.cancel_grace);
        }
      }
    }
    for (auto& r : runners) {
      if (r->thread.joinable()) r->thread.join();
    }
    if (link >= 0) cancel.RemoveCallback(link);
    if (cancel.cancelled()) return finish(v1::RUN_FINISH_REASON_CANCELLED);

    // Report the results in the model's order and give them to it.
    for (PendingCall& p : pending) {
      ToolOutput out;
      if (p.timed_out) {
        p.output.reset();
        p.status = absl::DeadlineExceededError(
            absl::StrCat("the tool did not answer within ", absl::FormatDuration(p.tool->timeout())));
      }
      if (p.output.has_value()) {
        out = std::move(*p.output);
      } else {
        out.is_error = true;
        out.content = absl::StrCat("The tool could not be run: ", p.status.message());
        st.Error(absl::Status(p.status.code(), absl::StrCat("tool ", p.call.name(), ": ", p.status.message())),
                 v1::RUN_ERROR_KIND_RECOVERED, p.call.id());
      }
      if (out.is_knowledge_search && !out.is_error) {
        std::vector<int> numbers = st.sources.Add(out.hits);
        out.content = st.sources.FormatForModel(out.hits, numbers, options_.max_chars_per_hit);
        v1::RunResponse e = st.NewEvent();
        e.mutable_retrieval_results()->set_call_id(p.call.id());
        e.mutable_retrieval_results()->set_query(out.query);
        for (const auto& h : out.hits) *e.mutable_retrieval_results()->add_hits() = h;
        st.Send(std::move(e));
      }
      const std::string content = CapResult(out.content, options_.max_tool_result_bytes);
      v1::RunResponse e = st.NewEvent();
      auto* r = e.mutable_tool_call_result();
      r->set_call_id(p.call.id());
      r->set_content(content);
      r->set_is_error(out.is_error);
      if (out.structured_content_json.size() <= options_.max_tool_result_bytes) {
        r->set_structured_content_json(out.structured_content_json);
      }
      *r->mutable_duration() = ToProtoDuration(p.duration);
      st.Send(std::move(e));
      v1::ChatMessage m;
      m.set_role(v1::ROLE_TOOL);
      m.set_tool_call_id(p.call.id());
      m.set_name(p.call.name());
      m.set_content(out.is_error ? absl::StrCat("Error: ", content) : content);
      messages.push_back(std::move(m));
    }
  }
  return finish(v1::RUN_FINISH_REASON_MAX_ITERATIONS);
}

}  // namespace tessera::agents
