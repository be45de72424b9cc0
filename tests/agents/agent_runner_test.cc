// The agent loop driven by a scripted Mistral model: the real chat template renders every turn, the
// real tool-call parser reads the scripted output, the real knowledge tool and citation checks run.
#include "agents/orchestrator/agent_runner.h"

#include <atomic>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "agents/tools/knowledge_search_tool.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/agents/scripted_mistral_model.h"

namespace tessera::agents {
namespace {

namespace v1 = ::tessera::v1;
using testing::MistralTokenizerPath;
using testing::ScriptedMistralModel;
using testing::ScriptReply;
using testing::ScriptTurn;

std::string Call(const std::string& name, const std::string& args_json) {
  return absl::StrCat(R"([TOOL_CALLS][{"name": ")", name, R"(", "arguments": )", args_json, "}]");
}
std::string Calls(const std::vector<std::pair<std::string, std::string>>& calls) {
  std::string out = "[TOOL_CALLS][";
  for (size_t i = 0; i < calls.size(); ++i) {
    absl::StrAppend(&out, i ? ", " : "", R"({"name": ")", calls[i].first, R"(", "arguments": )", calls[i].second, "}");
  }
  return out + "]";
}

// A small corpus; the searcher is what RetrievalService does for one principal.
class FakeSearcher : public KnowledgeSearcher {
 public:
  absl::StatusOr<std::vector<v1::SearchHit>> Search(const std::string& query, int top_k, Cancellation&,
                                                    absl::Time) override {
    queries.push_back(query);
    if (!fail.ok()) return fail;
    std::vector<v1::SearchHit> out;
    for (const auto& [title, text] : docs) {
      if (absl::StrContains(absl::AsciiStrToLower(text), absl::AsciiStrToLower(query)) ||
          absl::StrContains(absl::AsciiStrToLower(title), absl::AsciiStrToLower(query))) {
        v1::SearchHit h;
        h.set_collection("acme");
        h.set_chunk_id("chunk-" + title);
        h.set_document_id("doc-" + title);
        h.set_title(title);
        h.set_uri("https://drive.example/" + title);
        h.set_text(text);
        h.set_snippet(text.substr(0, 60));
        out.push_back(h);
      }
    }
    if (static_cast<int>(out.size()) > top_k) out.resize(top_k);
    return out;
  }
  std::vector<std::pair<std::string, std::string>> docs = {
      {"Travel policy", "Travel: employees fly economy class on flights under six hours."},
      {"Expense policy", "Expenses: meals are reimbursed up to 40 EUR per day while travelling."},
  };
  std::vector<std::string> queries;
  absl::Status fail;
};

// A tool whose behaviour each test sets.
class FuncTool : public AgentTool {
 public:
  FuncTool(std::string name, std::function<absl::StatusOr<ToolOutput>(const std::string&, ToolCallContext&)> fn)
      : name_(std::move(name)), fn_(std::move(fn)) {}
  v1::ToolSpec spec() const override {
    v1::ToolSpec s;
    s.set_name(name_);
    s.set_description("test tool " + name_);
    s.set_parameters_json_schema(R"({"type":"object","properties":{"x":{"type":"string"}}})");
    return s;
  }
  std::string server() const override { return "test"; }
  bool requires_approval() const override { return approval; }
  absl::Duration timeout() const override { return timeout_; }
  absl::StatusOr<ToolOutput> Call(const std::string& args, ToolCallContext& ctx) override {
    ++calls;
    return fn_(args, ctx);
  }
  bool approval = false;
  absl::Duration timeout_ = absl::Seconds(30);
  std::atomic<int> calls{0};

 private:
  std::string name_;
  std::function<absl::StatusOr<ToolOutput>(const std::string&, ToolCallContext&)> fn_;
};

class FixedGate : public ApprovalGate {
 public:
  explicit FixedGate(ApprovalDecision d) : d_(d) {}
  ApprovalDecision Await(const v1::ApprovalRequired& r, const std::function<void()>& announce,
                         Cancellation&) override {
    seen.push_back(r);
    announce();
    return d_;
  }
  std::vector<v1::ApprovalRequired> seen;

 private:
  ApprovalDecision d_;
};

struct RunLog {
  RunOutcome outcome;
  std::vector<v1::RunResponse> events;
  std::string Kinds() const {
    std::string s;
    for (const auto& e : events) {
      switch (e.event_case()) {
        case v1::RunResponse::kMessageDelta: if (s.empty() || s.back() != 'm') s += 'm'; break;
        case v1::RunResponse::kToolCallStarted: s += 'S'; break;
        case v1::RunResponse::kToolCallArguments: s += 'A'; break;
        case v1::RunResponse::kToolCallResult: s += 'R'; break;
        case v1::RunResponse::kRetrievalResults: s += 'H'; break;
        case v1::RunResponse::kCitation: s += 'C'; break;
        case v1::RunResponse::kApprovalRequired: s += 'P'; break;
        case v1::RunResponse::kError: s += 'E'; break;
        case v1::RunResponse::kDone: s += 'D'; break;
        default: s += '?';
      }
    }
    return s;
  }
  std::vector<v1::ToolCallResult> Results() const {
    std::vector<v1::ToolCallResult> out;
    for (const auto& e : events) {
      if (e.has_tool_call_result()) out.push_back(e.tool_call_result());
    }
    return out;
  }
  std::vector<v1::ErrorEvent> Errors() const {
    std::vector<v1::ErrorEvent> out;
    for (const auto& e : events) {
      if (e.has_error()) out.push_back(e.error());
    }
    return out;
  }
};

class AgentRunnerTest : public ::testing::Test {
 protected:
  AgentRunnerTest() {
    def_.set_name("HR assistant");
    def_.set_model("mistral-small");
    def_.set_instructions("You answer questions about Acme's HR policies.");
    def_.mutable_knowledge()->add_collections("acme");
    knowledge_ = std::make_unique<KnowledgeSearchTool>(&searcher_, KnowledgeSearchTool::Options{});
  }

  void Script(std::function<ScriptReply(const ScriptTurn&)> script, const std::string& version = "v7") {
    auto m = ScriptedMistralModel::Create(MistralTokenizerPath(version),
                                          version == "v7" ? engine::ChatFormat::kMistralV7 : engine::ChatFormat::kMistralV3,
                                          std::move(script));
    ASSERT_TRUE(m.ok()) << m.status();
    model_ = std::move(*m);
  }

  RunLog Go(const std::string& message, std::vector<AgentTool*> extra = {}, ApprovalGate* gate = nullptr,
         Cancellation* cancel = nullptr, std::vector<v1::ChatMessage> history = {}) {
    RunInput in;
    in.definition = &def_;
    in.run_id = "run-1";
    in.conversation_id = "conv-1";
    in.user_message = message;
    in.user = "ann@acme.com";
    in.history = std::move(history);
    RunDeps deps;
    deps.model = model_.get();
    deps.tools.push_back(knowledge_.get());
    for (AgentTool* t : extra) deps.tools.push_back(t);
    deps.knowledge = &searcher_;
    deps.approvals = gate;
    Cancellation local;
    RunLog r;
    r.outcome = runner_.Run(in, deps, cancel ? *cancel : local, [&](v1::RunResponse e) { r.events.push_back(e); });
    // Every run: numbered events, one Done, last.
    for (size_t i = 0; i < r.events.size(); ++i) {
      EXPECT_EQ(r.events[i].sequence(), static_cast<int64_t>(i + 1));
      EXPECT_EQ(r.events[i].run_id(), "run-1");
      EXPECT_EQ(r.events[i].has_done(), i + 1 == r.events.size());
    }
    return r;
  }

  v1::AgentDefinition def_;
  FakeSearcher searcher_;
  std::unique_ptr<KnowledgeSearchTool> knowledge_;
  std::unique_ptr<ScriptedMistralModel> model_;
  AgentRunner runner_{RunnerOptions{.approval_timeout = absl::Minutes(1), .cancel_grace = absl::Seconds(5)}};
};

TEST_F(AgentRunnerTest, SearchesThenAnswersWithCheckedCitations) {
  Script([](const ScriptTurn& t) -> ScriptReply {
    if (t.index == 0) {
      // The template declared the tool and put the instructions in the system prompt.
      EXPECT_TRUE(absl::StrContains(t.prompt_text, "[AVAILABLE_TOOLS]")) << t.prompt_text;
      EXPECT_TRUE(absl::StrContains(t.prompt_text, "search_knowledge"));
      EXPECT_TRUE(absl::StrContains(t.prompt_text, "Acme's HR policies"));
      return {Call("search_knowledge", R"({"query": "travel"})")};
    }
    // The knowledge hits came back as a numbered source inside the tool results.
    EXPECT_TRUE(absl::StrContains(t.prompt_text, "[TOOL_RESULTS]")) << t.prompt_text;
    EXPECT_TRUE(absl::StrContains(t.prompt_text, "[1] Travel policy")) << t.prompt_text;
    return {"Employees fly economy on flights under six hours [1]. Meals: see [4]."};
  });
  RunLog r = Go("Can I fly business class?");
  EXPECT_EQ(r.Kinds(), "SAHRmCmD") << r.Kinds();  // the citation as soon as its marker is complete
  EXPECT_EQ(r.outcome.finish_reason, v1::RUN_FINISH_REASON_STOP);
  EXPECT_EQ(r.outcome.answer, "Employees fly economy on flights under six hours [1]. Meals: see [4].");
  ASSERT_EQ(r.outcome.citations.size(), 1u);  // [4] names no source shown: not a citation
  EXPECT_EQ(r.outcome.citations[0].index(), 1);
  EXPECT_EQ(r.outcome.citations[0].document_id(), "doc-Travel policy");
  EXPECT_EQ(r.outcome.citations[0].uri(), "https://drive.example/Travel policy");
  EXPECT_EQ(searcher_.queries, std::vector<std::string>{"travel"});
  EXPECT_EQ(r.outcome.iterations, 2);
  ASSERT_EQ(r.outcome.new_messages.size(), 2u);
  EXPECT_EQ(r.outcome.new_messages[1].content(), r.outcome.answer);
  EXPECT_GT(r.outcome.usage.prompt_tokens(), 0);
  EXPECT_GT(r.outcome.usage.completion_tokens(), 0);
  const auto& done = r.events.back().done();
  EXPECT_EQ(done.iterations(), 2);
  EXPECT_EQ(done.usage().total_tokens(), r.outcome.usage.total_tokens());
}

TEST_F(AgentRunnerTest, WorksWithTheV3TemplateToo) {
  Script(
      [](const ScriptTurn& t) -> ScriptReply {
        if (t.index == 0) return {Call("search_knowledge", R"({"query": "meals"})")};
        EXPECT_TRUE(absl::StrContains(t.prompt_text, "40 EUR")) << t.prompt_text;
        return {"Up to 40 EUR a day [1]."};
      },
      "v3");
  RunLog r = Go("What is the meal allowance?");
  EXPECT_EQ(r.Kinds(), "SAHRmCD");
  EXPECT_EQ(r.outcome.citations.at(0).title(), "Expense policy");
}

TEST_F(AgentRunnerTest, HistoryReachesTheModel) {
  Script([](const ScriptTurn& t) -> ScriptReply {
    EXPECT_TRUE(absl::StrContains(t.prompt_text, "earlier question")) << t.prompt_text;
    EXPECT_TRUE(absl::StrContains(t.prompt_text, "earlier answer")) << t.prompt_text;
    return {"Yes."};
  });
  v1::ChatMessage u, a;
  u.set_role(v1::ROLE_USER);
  u.set_content("earlier question");
  a.set_role(v1::ROLE_ASSISTANT);
  a.set_content("earlier answer");
  RunLog r = Go("And now?", {}, nullptr, nullptr, {u, a});
  EXPECT_EQ(r.Kinds(), "mD");
}

TEST_F(AgentRunnerTest, IndependentCallsRunConcurrently) {
  // Each call waits until both have started: run one after the other, the first would time out.
  std::atomic<int> started{0};
  auto both = [&](const std::string&, ToolCallContext& ctx) -> absl::StatusOr<ToolOutput> {
    ++started;
    const absl::Time until = absl::Now() + absl::Seconds(10);
    while (started.load() < 2 && absl::Now() < until && !ctx.cancel->cancelled()) absl::SleepFor(absl::Milliseconds(2));
    if (started.load() < 2) return absl::DeadlineExceededError("the other call never started");
    return ToolOutput{"done", false};
  };
  FuncTool a("lookup_a", both), b("lookup_b", both);
  Script([](const ScriptTurn& t) -> ScriptReply {
    if (t.index == 0) return {Calls({{"lookup_a", R"({"x": "1"})"}, {"lookup_b", R"({"x": "2"})"}})};
    return {"Both looked up."};
  });
  RunLog r = Go("Look both up", {&a, &b});
  EXPECT_EQ(r.Kinds(), "SASARRmD") << r.Kinds();
  for (const auto& res : r.Results()) EXPECT_FALSE(res.is_error()) << res.content();
}

TEST_F(AgentRunnerTest, RepeatedCallsAreNotRunAgainAndEndInAnAnswer) {
  FuncTool t("lookup", [](const std::string&, ToolCallContext&) -> absl::StatusOr<ToolOutput> {
    return ToolOutput{"nothing new", false};
  });
  def_.set_max_iterations(10);
  Script([](const ScriptTurn& turn) -> ScriptReply {
    if (turn.request.tools_size() == 0) return {"I could not find more."};  // tools withdrawn
    return {Call("lookup", R"({"x": "same"})")};
  });
  RunLog r = Go("loop please", {&t});
  EXPECT_EQ(t.calls.load(), 1);  // the repeats were not run
  EXPECT_EQ(r.outcome.finish_reason, v1::RUN_FINISH_REASON_STOP);
  EXPECT_EQ(r.outcome.answer, "I could not find more.");
  EXPECT_EQ(r.outcome.iterations, 4);
  int loops = 0;
  for (const auto& e : r.Errors()) {
    if (absl::StrContains(e.message(), "loop detected")) ++loops;
    EXPECT_EQ(e.kind(), v1::RUN_ERROR_KIND_RECOVERED);
  }
  EXPECT_EQ(loops, 2);
}

TEST_F(AgentRunnerTest, ArgumentSpacingDoesNotHideARepeat) {
  FuncTool t("lookup", [](const std::string&, ToolCallContext&) -> absl::StatusOr<ToolOutput> {
    return ToolOutput{"x", false};
  });
  Script([](const ScriptTurn& turn) -> ScriptReply {
    if (turn.index == 0) return {Call("lookup", R"({"x": "a", "y": 1})")};
    if (turn.index == 1) return {Call("lookup", R"({"y":1,"x":"a"})")};
    return {"ok"};
  });
  RunLog r = Go("q", {&t});
  EXPECT_EQ(t.calls.load(), 1);
  EXPECT_TRUE(r.Results()[1].is_error());
}

TEST_F(AgentRunnerTest, ASlowToolTimesOutAndTheModelIsTold) {
  FuncTool slow("slow", [](const std::string&, ToolCallContext& ctx) -> absl::StatusOr<ToolOutput> {
    while (!ctx.cancel->cancelled()) absl::SleepFor(absl::Milliseconds(2));
    return absl::CancelledError("cancelled");
  });
  slow.timeout_ = absl::Milliseconds(200);
  Script([](const ScriptTurn& t) -> ScriptReply {
    if (t.index == 0) return {Call("slow", "{}")};
    EXPECT_TRUE(absl::StrContains(t.prompt_text, "did not answer within")) << t.prompt_text;
    return {"The tool is slow today."};
  });
  RunLog r = Go("go", {&slow});
  ASSERT_EQ(r.Results().size(), 1u);
  EXPECT_TRUE(r.Results()[0].is_error());
  ASSERT_EQ(r.Errors().size(), 1u);
  EXPECT_EQ(r.Errors()[0].code(), static_cast<int>(absl::StatusCode::kDeadlineExceeded));
  EXPECT_TRUE(r.Errors()[0].retryable());
  EXPECT_EQ(r.outcome.finish_reason, v1::RUN_FINISH_REASON_STOP);
}

TEST_F(AgentRunnerTest, FailingToolResultsGoBackToTheModel) {
  FuncTool t("create_ticket", [](const std::string&, ToolCallContext&) -> absl::StatusOr<ToolOutput> {
    return ToolOutput{"priority must be one of low, high", true};
  });
  Script([](const ScriptTurn& turn) -> ScriptReply {
    if (turn.index == 0) return {Call("create_ticket", R"({"x": "urgent"})")};
    if (turn.index == 1) {
      EXPECT_TRUE(absl::StrContains(turn.prompt_text, "Error: priority must be one of low, high")) << turn.prompt_text;
      return {Call("create_ticket", R"({"x": "high"})")};
    }
    return {"Ticket created."};
  });
  RunLog r = Go("open a ticket", {&t});
  EXPECT_EQ(t.calls.load(), 2);
  EXPECT_TRUE(r.Results()[0].is_error());
  EXPECT_EQ(r.outcome.answer, "Ticket created.");
}

TEST_F(AgentRunnerTest, AHugeResultIsCutForTheModel) {
  const std::string big(10 << 20, 'z');
  FuncTool t("dump", [&](const std::string&, ToolCallContext&) -> absl::StatusOr<ToolOutput> {
    return ToolOutput{big, false};
  });
  Script([](const ScriptTurn& turn) -> ScriptReply {
    if (turn.index == 0) return {Call("dump", "{}")};
    EXPECT_LT(turn.prompt_text.size(), 200000u);
    EXPECT_TRUE(absl::StrContains(turn.prompt_text, "[truncated: the tool returned 10485760 bytes"));
    return {"Too much data."};
  });
  RunLog r = Go("dump it", {&t});
  ASSERT_EQ(r.Results().size(), 1u);
  EXPECT_LT(r.Results()[0].content().size(), (64u << 10) + 200);
  EXPECT_EQ(r.outcome.finish_reason, v1::RUN_FINISH_REASON_STOP);
}

TEST_F(AgentRunnerTest, ApprovalIsAskedBeforeTheCallAndADeclineIsReported) {
  FuncTool t("send_mail", [](const std::string&, ToolCallContext&) -> absl::StatusOr<ToolOutput> {
    return ToolOutput{"sent", false};
  });
  t.approval = true;
  Script([](const ScriptTurn& turn) -> ScriptReply {
    if (turn.index == 0) return {Call("send_mail", R"({"x": "to bob"})")};
    EXPECT_TRUE(absl::StrContains(turn.prompt_text, "declined")) << turn.prompt_text;
    return {"I did not send it."};
  });
  FixedGate deny(ApprovalDecision::kDenied);
  RunLog r = Go("mail bob", {&t}, &deny);
  EXPECT_EQ(t.calls.load(), 0);
  EXPECT_EQ(r.Kinds(), "SAPRmD") << r.Kinds();
  ASSERT_EQ(deny.seen.size(), 1u);
  EXPECT_EQ(deny.seen[0].tool_name(), "send_mail");
  EXPECT_EQ(deny.seen[0].server(), "test");
  EXPECT_EQ(nlohmann::json::parse(deny.seen[0].arguments_json())["x"], "to bob");
  EXPECT_TRUE(r.Results()[0].is_error());
}

TEST_F(AgentRunnerTest, ApprovedCallsRun) {
  FuncTool t("send_mail", [](const std::string&, ToolCallContext&) -> absl::StatusOr<ToolOutput> {
    return ToolOutput{"sent", false};
  });
  t.approval = true;
  Script([](const ScriptTurn& turn) -> ScriptReply {
    return turn.index == 0 ? ScriptReply{Call("send_mail", "{}")} : ScriptReply{"Sent."};
  });
  FixedGate allow(ApprovalDecision::kApproved);
  RunLog r = Go("mail bob", {&t}, &allow);
  EXPECT_EQ(t.calls.load(), 1);
  EXPECT_FALSE(r.Results()[0].is_error());
  // Without anyone to ask, a call needing approval is not made.
  FuncTool t2("send_mail", [](const std::string&, ToolCallContext&) -> absl::StatusOr<ToolOutput> {
    return ToolOutput{"sent", false};
  });
  t2.approval = true;
  Script([](const ScriptTurn& turn) -> ScriptReply {
    return turn.index == 0 ? ScriptReply{Call("send_mail", "{}")} : ScriptReply{"Not sent."};
  });
  RunLog r2 = Go("mail bob", {&t2}, nullptr);
  EXPECT_EQ(t2.calls.load(), 0);
  EXPECT_TRUE(r2.Results()[0].is_error());
}

TEST_F(AgentRunnerTest, MalformedAndUnknownCallsAreExplainedToTheModel) {
  Script([](const ScriptTurn& turn) -> ScriptReply {
    if (turn.index == 0) return {R"([TOOL_CALLS][{"name": "search_knowledge", "arguments": {"query": )"};
    if (turn.index == 1) {
      EXPECT_TRUE(absl::StrContains(turn.prompt_text, "could not be run")) << turn.prompt_text;
      return {Call("no_such_tool", "{}")};
    }
    if (turn.index == 2) {
      EXPECT_TRUE(absl::StrContains(turn.prompt_text, "There is no tool named 'no_such_tool'")) << turn.prompt_text;
      return {Call("search_knowledge", R"({"query": ""})")};
    }
    if (turn.index == 3) {
      EXPECT_TRUE(absl::StrContains(turn.prompt_text, "non-empty")) << turn.prompt_text;
    }
    return {"Giving up."};
  });
  RunLog r = Go("q");
  EXPECT_EQ(r.outcome.finish_reason, v1::RUN_FINISH_REASON_STOP);
  EXPECT_EQ(r.outcome.iterations, 4);
  ASSERT_GE(r.Errors().size(), 1u);
  EXPECT_EQ(r.Errors()[0].kind(), v1::RUN_ERROR_KIND_RECOVERED);
  EXPECT_TRUE(searcher_.queries.empty());
}

TEST_F(AgentRunnerTest, StopsAtMaxIterations) {
  def_.set_max_iterations(2);
  Script([](const ScriptTurn& turn) -> ScriptReply {
    return {Call("search_knowledge", absl::StrCat(R"({"query": "q)", turn.index, R"("})"))};
  });
  RunLog r = Go("q");
  EXPECT_EQ(r.outcome.finish_reason, v1::RUN_FINISH_REASON_MAX_ITERATIONS);
  EXPECT_EQ(r.outcome.iterations, 2);
  EXPECT_EQ(r.outcome.new_messages.size(), 1u);  // no answer to store
}

TEST_F(AgentRunnerTest, ASearchFailureIsRecoveredFrom) {
  searcher_.fail = absl::UnavailableError("retrieval is restarting");
  Script([](const ScriptTurn& turn) -> ScriptReply {
    if (turn.index == 0) return {Call("search_knowledge", R"({"query": "travel"})")};
    EXPECT_TRUE(absl::StrContains(turn.prompt_text, "retrieval is restarting"));
    return {"Search is unavailable right now."};
  });
  RunLog r = Go("q");
  EXPECT_EQ(r.Kinds(), "SAERmD") << r.Kinds();
  EXPECT_EQ(r.Errors()[0].kind(), v1::RUN_ERROR_KIND_RECOVERED);
  EXPECT_TRUE(r.Errors()[0].retryable());
}

TEST_F(AgentRunnerTest, ModelFailureEndsTheRunWithAnError) {
  Script([](const ScriptTurn&) -> ScriptReply {
    ScriptReply r;
    r.fail = absl::UnavailableError("engine overloaded");
    return r;
  });
  RunLog r = Go("q");
  EXPECT_EQ(r.Kinds(), "ED");
  EXPECT_EQ(r.Errors()[0].kind(), v1::RUN_ERROR_KIND_FATAL);
  EXPECT_TRUE(absl::StrContains(r.Errors()[0].message(), "engine overloaded"));
  EXPECT_EQ(r.outcome.finish_reason, v1::RUN_FINISH_REASON_ERROR);
}

TEST_F(AgentRunnerTest, LengthLimitIsReported) {
  Script([](const ScriptTurn&) -> ScriptReply { return {"A long answer that was cut", true}; });
  RunLog r = Go("q");
  EXPECT_EQ(r.outcome.finish_reason, v1::RUN_FINISH_REASON_LENGTH);
  EXPECT_EQ(r.outcome.answer, "A long answer that was cut");
}

TEST_F(AgentRunnerTest, CancellationMidAnswerStopsTheRun) {
  Script([](const ScriptTurn&) -> ScriptReply {
    ScriptReply r{std::string(400, 'a')};
    r.per_token_delay = absl::Milliseconds(5);
    return r;
  });
  Cancellation cancel;
  std::thread canceller([&] {
    absl::SleepFor(absl::Milliseconds(100));
    cancel.Cancel();
  });
  RunLog r = Go("q", {}, nullptr, &cancel);
  canceller.join();
  EXPECT_EQ(r.outcome.finish_reason, v1::RUN_FINISH_REASON_CANCELLED);
}

TEST_F(AgentRunnerTest, CancellationInterruptsAToolCall) {
  absl::Notification in_call;
  FuncTool t("wait", [&](const std::string&, ToolCallContext& ctx) -> absl::StatusOr<ToolOutput> {
    in_call.Notify();
    while (!ctx.cancel->cancelled()) absl::SleepFor(absl::Milliseconds(1));
    return absl::CancelledError("");
  });
  Script([](const ScriptTurn&) -> ScriptReply { return {Call("wait", "{}")}; });
  Cancellation cancel;
  std::thread canceller([&] {
    in_call.WaitForNotification();
    cancel.Cancel();
  });
  RunLog r = Go("q", {&t}, nullptr, &cancel);
  canceller.join();
  EXPECT_EQ(r.outcome.finish_reason, v1::RUN_FINISH_REASON_CANCELLED);
}

TEST_F(AgentRunnerTest, ExtractiveAnswersQuoteTheBestPassagesWithCitations) {
  def_.set_model(kExtractiveModel);
  model_.reset();
  RunLog r = Go("economy");
  EXPECT_EQ(r.Kinds(), "SAHRmCD") << r.Kinds();
  EXPECT_TRUE(absl::StartsWith(r.outcome.answer, "Extractive answer")) << r.outcome.answer;
  EXPECT_TRUE(absl::StrContains(r.outcome.answer, "Travel policy")) << r.outcome.answer;
  ASSERT_EQ(r.outcome.citations.size(), 1u);
  EXPECT_EQ(r.outcome.citations[0].document_id(), "doc-Travel policy");
  EXPECT_EQ(r.outcome.finish_reason, v1::RUN_FINISH_REASON_STOP);
  // Nothing found is said plainly.
  RunLog none = Go("submarines");
  EXPECT_TRUE(absl::StrContains(none.outcome.answer, "found no documents")) << none.outcome.answer;
  EXPECT_TRUE(none.outcome.citations.empty());
}

TEST_F(AgentRunnerTest, CitationsCanBeTurnedOff) {
  def_.set_citations_enabled(false);
  Script([](const ScriptTurn& t) -> ScriptReply {
    if (t.index == 0) {
      EXPECT_FALSE(absl::StrContains(t.prompt_text, "Cite the sources")) << t.prompt_text;
      return {Call("search_knowledge", R"({"query": "travel"})")};
    }
    return {"Economy [1]."};
  });
  RunLog r = Go("q");
  EXPECT_EQ(r.Kinds(), "SAHRmD") << r.Kinds();
  EXPECT_TRUE(r.outcome.citations.empty());
}

TEST_F(AgentRunnerTest, TextBeforeAToolCallStaysApartFromTheAnswer) {
  Script([](const ScriptTurn& t) -> ScriptReply {
    if (t.index == 0) return {"Let me look that up." + Call("search_knowledge", R"({"query": "travel"})")};
    return {"Economy class [1]."};
  });
  RunLog r = Go("q");
  EXPECT_EQ(r.outcome.answer, "Let me look that up.\n\nEconomy class [1].");
  EXPECT_EQ(r.outcome.citations.size(), 1u);
}

}  // namespace
}  // namespace tessera::agents
