// OpenAiChatModel against a FakeHttpServer playing an OpenAI-compatible
// server (through the real CurlHttpTransport): the request mapping, streamed
// text and tool calls, non-streamed answers, HTTP errors, retries driven by a
// simulated clock, broken streams, cancellation and size caps.
#include "agents/models/openai_chat_model.h"

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/http/curl_http_transport.h"
#include "common/http/fake_http_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace tessera::agents {
namespace {

using Json = nlohmann::json;
using tessera::v1::GenerateRequest;
using tessera::v1::GenerateResponse;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kKey[] = "sk-very-secret-key-123";

std::string Data(const Json& j) { return absl::StrCat("data: ", j.dump(), "\n\n"); }
constexpr char kDone[] = "data: [DONE]\n\n";

Json Chunk(Json delta, Json finish_reason = nullptr) {
  Json choice = Json::object();
  choice["index"] = 0;
  choice["delta"] = std::move(delta);
  choice["finish_reason"] = std::move(finish_reason);
  Json chunk = Json::object();
  chunk["id"] = "chatcmpl-1";
  chunk["object"] = "chat.completion.chunk";
  chunk["choices"] = Json::array({choice});
  return chunk;
}
Json TextChunk(const std::string& text) { return Chunk(Json{{"content", text}}); }
Json FinishChunk(const std::string& reason) { return Chunk(Json::object(), reason); }
Json UsageChunk(int prompt, int completion) {
  Json chunk = Json::object();
  chunk["choices"] = Json::array();
  chunk["usage"] = {{"prompt_tokens", prompt},
                    {"completion_tokens", completion},
                    {"total_tokens", prompt + completion}};
  return chunk;
}
Json ToolFragment(int index, const std::string& id, const std::string& name,
                  const std::string& args) {
  Json call = Json::object();
  call["index"] = index;
  if (!id.empty()) {
    call["id"] = id;
    call["type"] = "function";
  }
  Json fn = Json::object();
  if (!name.empty()) fn["name"] = name;
  fn["arguments"] = args;
  call["function"] = fn;
  Json delta = Json::object();
  delta["tool_calls"] = Json::array({call});
  return Chunk(delta);
}

FakeHttpResponse Sse(std::vector<std::string> chunks) {
  FakeHttpResponse r;
  r.headers.Add("Content-Type", "text/event-stream");
  r.chunks = std::move(chunks);
  return r;
}
FakeHttpResponse JsonResponse(int status, const Json& body) {
  FakeHttpResponse r;
  r.status = status;
  r.headers.Add("Content-Type", "application/json");
  r.body = body.dump();
  return r;
}

GenerateRequest SimpleRequest() {
  GenerateRequest request;
  request.set_model("m1");
  auto* m = request.add_messages();
  m->set_role(tessera::v1::ROLE_USER);
  m->set_content("hi");
  return request;
}

struct RunResult {
  absl::Status status;
  std::vector<GenerateResponse> events;

  std::string Text() const {
    std::string t;
    for (const auto& e : events) {
      if (e.has_token()) t += e.token().text();
    }
    return t;
  }
  std::vector<tessera::v1::ToolCall> Calls() const {
    std::vector<tessera::v1::ToolCall> calls;
    for (const auto& e : events) {
      if (e.has_tool_call()) calls.push_back(e.tool_call().tool_call());
    }
    return calls;
  }
  int Count(GenerateResponse::EventCase c) const {
    int n = 0;
    for (const auto& e : events) n += e.event_case() == c;
    return n;
  }
};

class OpenAiChatModelTest : public ::testing::Test {
 protected:
  static SimulatedClock::Options AutoAdvance() {
    SimulatedClock::Options o;
    o.auto_advance = true;
    return o;
  }

  void SetUp() override {
    auto server = FakeHttpServer::Start();
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    auto transport = CurlHttpTransport::Create({});
    ASSERT_TRUE(transport.ok()) << transport.status();
    transport_ = std::shared_ptr<HttpTransport>(std::move(*transport));
  }

  OpenAiChatModel::Options BaseOptions() {
    OpenAiChatModel::Options o;
    o.base_url = server_->url() + "/v1/";
    o.api_key = kKey;
    o.timeout = absl::Seconds(20);
    return o;
  }

  std::unique_ptr<OpenAiChatModel> Model(OpenAiChatModel::Options o) {
    auto model = OpenAiChatModel::Create(std::move(o), transport_, &clock_);
    EXPECT_TRUE(model.ok()) << model.status();
    return model.ok() ? std::move(*model) : nullptr;
  }
  std::unique_ptr<OpenAiChatModel> Model() { return Model(BaseOptions()); }

  void Serve(FakeHttpServer::Handler handler) {
    server_->Handle("POST", "/v1/chat/completions", std::move(handler));
  }

  RunResult Run(OpenAiChatModel& model, const GenerateRequest& request,
                Cancellation* cancel = nullptr,
                std::function<void(const GenerateResponse&)> also = nullptr) {
    Cancellation local;
    RunResult r;
    r.status = model.Generate(request, cancel ? *cancel : local, [&](const GenerateResponse& e) {
      r.events.push_back(e);
      if (also) also(e);
    });
    return r;
  }

  SimulatedClock clock_{AutoAdvance()};
  std::unique_ptr<FakeHttpServer> server_;
  std::shared_ptr<HttpTransport> transport_;
};

TEST_F(OpenAiChatModelTest, MapsTheRequest) {
  FakeHttpRequest seen;
  Serve([&](const FakeHttpRequest& req) {
    seen = req;
    return Sse({Data(TextChunk("ok")), Data(FinishChunk("stop")), kDone});
  });
  GenerateRequest request;
  request.set_model("ignored-when-options-set");
  auto add = [&](tessera::v1::Role role, const std::string& content) {
    auto* m = request.add_messages();
    m->set_role(role);
    m->set_content(content);
    return m;
  };
  add(tessera::v1::ROLE_SYSTEM, "be brief");
  add(tessera::v1::ROLE_USER, "weather in Paris?");
  auto* assistant = add(tessera::v1::ROLE_ASSISTANT, "");
  auto* call = assistant->add_tool_calls();
  call->set_id("call_9");
  call->set_name("weather");
  call->set_arguments_json(R"({"city":"Paris"})");
  auto* tool = add(tessera::v1::ROLE_TOOL, "sunny");
  tool->set_tool_call_id("call_9");
  tool->set_name("weather");
  auto* t1 = request.add_tools();
  t1->set_name("weather");
  t1->set_description("Current weather");
  t1->set_parameters_json_schema(R"({"type":"object","properties":{"city":{"type":"string"}}})");
  request.add_tools()->set_name("now");
  request.mutable_tool_choice()->set_tool_name("weather");
  auto* s = request.mutable_sampling();
  s->set_temperature(0.5f);
  s->set_top_p(0.25f);
  s->set_seed(42);
  s->set_max_tokens(100);
  s->set_top_k(40);
  s->set_repetition_penalty(1.1f);
  s->add_stop("END");

  OpenAiChatModel::Options o = BaseOptions();
  o.model = "remote-model";
  auto model = Model(o);
  RunResult r = Run(*model, request);
  ASSERT_TRUE(r.status.ok()) << r.status;

  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.path, "/v1/chat/completions");
  EXPECT_EQ(seen.headers.Get("Authorization").value_or(""), absl::StrCat("Bearer ", kKey));
  EXPECT_THAT(seen.headers.Get("Content-Type").value_or(""), HasSubstr("application/json"));
  Json body = Json::parse(seen.body);
  EXPECT_EQ(body["model"], "remote-model");
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["stream_options"]["include_usage"], true);
  ASSERT_EQ(body["messages"].size(), 4u);
  EXPECT_EQ(body["messages"][0], (Json{{"role", "system"}, {"content", "be brief"}}));
  EXPECT_EQ(body["messages"][1]["role"], "user");
  const Json& a = body["messages"][2];
  EXPECT_EQ(a["role"], "assistant");
  EXPECT_TRUE(a["content"].is_null());
  EXPECT_EQ(a["tool_calls"][0]["id"], "call_9");
  EXPECT_EQ(a["tool_calls"][0]["type"], "function");
  EXPECT_EQ(a["tool_calls"][0]["function"]["name"], "weather");
  EXPECT_EQ(a["tool_calls"][0]["function"]["arguments"], R"({"city":"Paris"})");
  EXPECT_EQ(body["messages"][3], (Json{{"role", "tool"},
                                       {"content", "sunny"},
                                       {"tool_call_id", "call_9"},
                                       {"name", "weather"}}));
  ASSERT_EQ(body["tools"].size(), 2u);
  EXPECT_EQ(body["tools"][0]["type"], "function");
  EXPECT_EQ(body["tools"][0]["function"]["name"], "weather");
  EXPECT_EQ(body["tools"][0]["function"]["description"], "Current weather");
  EXPECT_EQ(body["tools"][0]["function"]["parameters"]["properties"]["city"]["type"], "string");
  EXPECT_EQ(body["tools"][1]["function"]["parameters"],
            (Json{{"type", "object"}, {"properties", Json::object()}}));
  EXPECT_EQ(body["tool_choice"], (Json{{"type", "function"}, {"function", {{"name", "weather"}}}}));
  EXPECT_FLOAT_EQ(body["temperature"].get<float>(), 0.5f);
  EXPECT_FLOAT_EQ(body["top_p"].get<float>(), 0.25f);
  EXPECT_EQ(body["seed"], 42);
  EXPECT_EQ(body["max_tokens"], 100);
  EXPECT_EQ(body["stop"], Json::array({"END"}));
  EXPECT_FALSE(body.contains("top_k"));
  EXPECT_FALSE(body.contains("repetition_penalty"));
}

TEST_F(OpenAiChatModelTest, MapsToolChoiceModesAndRejectsWhatItCannotExpress) {
  auto model = Model();
  GenerateRequest request = SimpleRequest();
  auto body_of = [&](const GenerateRequest& r) {
    return Json::parse(model->BuildRequestBody(r).value());
  };
  EXPECT_FALSE(body_of(request).contains("tool_choice"));
  EXPECT_FALSE(body_of(request).contains("tools"));
  request.add_tools()->set_name("t");
  EXPECT_FALSE(body_of(request).contains("tool_choice"));  // server default: auto
  request.mutable_tool_choice()->set_mode(tessera::v1::TOOL_CHOICE_MODE_AUTO);
  EXPECT_EQ(body_of(request)["tool_choice"], "auto");
  request.mutable_tool_choice()->set_mode(tessera::v1::TOOL_CHOICE_MODE_NONE);
  EXPECT_EQ(body_of(request)["tool_choice"], "none");
  request.mutable_tool_choice()->set_mode(tessera::v1::TOOL_CHOICE_MODE_REQUIRED);
  EXPECT_EQ(body_of(request)["tool_choice"], "required");
  EXPECT_EQ(body_of(request)["model"], "m1");

  GenerateRequest bad = SimpleRequest();
  bad.add_tools()->set_parameters_json_schema("{not json");
  EXPECT_EQ(model->BuildRequestBody(bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad = SimpleRequest();
  bad.set_prompt("raw");
  EXPECT_EQ(model->BuildRequestBody(bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad = SimpleRequest();
  bad.add_messages()->set_content("no role");
  Cancellation cancel;
  EXPECT_EQ(model->Generate(bad, cancel, [](const GenerateResponse&) {}).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(server_->requests().empty());
}

TEST_F(OpenAiChatModelTest, CreateValidatesAndDescribes) {
  OpenAiChatModel::Options o = BaseOptions();
  for (const char* url : {"ftp://host/v1", "http://", "host:8000/v1", "http://h/v1?key=x", ""}) {
    o.base_url = url;
    EXPECT_EQ(OpenAiChatModel::Create(o, transport_, &clock_).status().code(),
              absl::StatusCode::kInvalidArgument)
        << url;
  }
  EXPECT_FALSE(OpenAiChatModel::Create(BaseOptions(), nullptr, &clock_).ok());
  o = BaseOptions();
  o.model = "mistral-small";
  auto model = Model(o);
  EXPECT_EQ(model->Describe(), absl::StrCat("openai:", server_->url(), "/v1 model mistral-small"));
  EXPECT_THAT(model->Describe(), Not(HasSubstr(kKey)));
}

TEST_F(OpenAiChatModelTest, StreamsTextThenUsageThenFinish) {
  Serve([](const FakeHttpRequest&) {
    return Sse({Data(Chunk(Json{{"role", "assistant"}, {"content", ""}})), Data(TextChunk("Hel")),
                Data(TextChunk("lo")), Data(FinishChunk("stop")), Data(UsageChunk(5, 2)), kDone});
  });
  auto model = Model();
  RunResult r = Run(*model, SimpleRequest());
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.events.size(), 4u);
  EXPECT_EQ(r.events[0].token().text(), "Hel");
  EXPECT_EQ(r.events[1].token().text(), "lo");
  ASSERT_TRUE(r.events[2].has_usage());
  EXPECT_EQ(r.events[2].usage().usage().prompt_tokens(), 5);
  EXPECT_EQ(r.events[2].usage().usage().completion_tokens(), 2);
  EXPECT_EQ(r.events[2].usage().usage().total_tokens(), 7);
  ASSERT_TRUE(r.events[3].has_finish());
  EXPECT_EQ(r.events[3].finish().reason(), tessera::v1::FINISH_REASON_STOP);
  EXPECT_EQ(r.events[3].finish().error().code(), 0);
}

TEST_F(OpenAiChatModelTest, MapsLengthAndVllmStopReason) {
  Json stop = FinishChunk("stop");
  stop["choices"][0]["stop_reason"] = "END";
  std::atomic<int> n{0};
  Serve([&](const FakeHttpRequest&) {
    return n++ == 0 ? Sse({Data(TextChunk("a")), Data(FinishChunk("length")), kDone})
                    : Sse({Data(TextChunk("b")), Data(stop), kDone});
  });
  auto model = Model();
  GenerateRequest request = SimpleRequest();
  request.mutable_sampling()->add_stop("END");
  RunResult r = Run(*model, request);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.events.back().finish().reason(), tessera::v1::FINISH_REASON_LENGTH);
  r = Run(*model, request);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.events.back().finish().reason(), tessera::v1::FINISH_REASON_STOP_SEQUENCE);
  EXPECT_EQ(r.events.back().finish().stop_sequence(), "END");
}

TEST_F(OpenAiChatModelTest, AssemblesParallelToolCallsSplitAcrossManyChunks) {
  std::string stream = absl::StrCat(
      Data(TextChunk("Let me check.")), Data(ToolFragment(0, "call_a", "search", "")),
      Data(ToolFragment(0, "", "", "{\"qu")), Data(ToolFragment(1, "call_b", "weather", "{\"ci")),
      Data(ToolFragment(0, "", "", "ery\": \"tr")),
      Data(ToolFragment(1, "", "", "ty\":\"Paris\"}")), Data(ToolFragment(0, "", "", "avel\"}")),
      Data(FinishChunk("tool_calls")), Data(UsageChunk(30, 12)), kDone);
  // HTTP chunks that cut SSE lines (and UTF-8-free JSON) at arbitrary places.
  std::vector<std::string> pieces;
  for (size_t i = 0; i < stream.size(); i += 7) pieces.push_back(stream.substr(i, 7));
  Serve([&](const FakeHttpRequest&) { return Sse(pieces); });
  auto model = Model();
  RunResult r = Run(*model, SimpleRequest());
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.Text(), "Let me check.");
  auto calls = r.Calls();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].id(), "call_a");
  EXPECT_EQ(calls[0].name(), "search");
  EXPECT_EQ(calls[0].arguments_json(), R"({"query": "travel"})");
  EXPECT_EQ(calls[1].id(), "call_b");
  EXPECT_EQ(calls[1].name(), "weather");
  EXPECT_EQ(calls[1].arguments_json(), R"({"city":"Paris"})");
  // Text, the calls, usage, finish: in that order.
  ASSERT_EQ(r.events.size(), 5u);
  EXPECT_TRUE(r.events[0].has_token());
  EXPECT_TRUE(r.events[1].has_tool_call());
  EXPECT_TRUE(r.events[2].has_tool_call());
  EXPECT_TRUE(r.events[3].has_usage());
  EXPECT_EQ(r.events[4].finish().reason(), tessera::v1::FINISH_REASON_TOOL_CALLS);
  EXPECT_EQ(r.events[4].finish().error().code(), 0);
}

TEST_F(OpenAiChatModelTest, InvalidToolArgumentsFinishWithAnErrorForTheModel) {
  Serve([](const FakeHttpRequest&) {
    return Sse({Data(ToolFragment(0, "call_a", "search", "{\"query\": ")),
                Data(FinishChunk("tool_calls")), kDone});
  });
  auto model = Model();
  RunResult r = Run(*model, SimpleRequest());
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_TRUE(r.Calls().empty());
  ASSERT_FALSE(r.events.empty());
  const auto& finish = r.events.back().finish();
  EXPECT_EQ(finish.reason(), tessera::v1::FINISH_REASON_TOOL_CALLS);
  EXPECT_EQ(finish.error().code(), 3);
  EXPECT_THAT(finish.error().message(), HasSubstr("`search`"));
  EXPECT_THAT(finish.error().message(), HasSubstr("not valid JSON"));
}

TEST_F(OpenAiChatModelTest, AcceptsANonStreamedAnswer) {
  Serve([](const FakeHttpRequest&) {
    Json tool_call = {{"id", "call_1"},
                      {"type", "function"},
                      {"function", {{"name", "search"}, {"arguments", "{\"q\":\"x\"}"}}}};
    Json message = {
        {"role", "assistant"}, {"content", "Searching."}, {"tool_calls", Json::array({tool_call})}};
    Json choice = {{"index", 0}, {"message", message}, {"finish_reason", "tool_calls"}};
    Json doc = {{"id", "c1"},
                {"object", "chat.completion"},
                {"choices", Json::array({choice})},
                {"usage", {{"prompt_tokens", 9}, {"completion_tokens", 4}, {"total_tokens", 13}}}};
    return JsonResponse(200, doc);
  });
  auto model = Model();
  RunResult r = Run(*model, SimpleRequest());
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.events.size(), 4u);
  EXPECT_EQ(r.events[0].token().text(), "Searching.");
  EXPECT_EQ(r.events[1].tool_call().tool_call().name(), "search");
  EXPECT_EQ(r.events[1].tool_call().tool_call().arguments_json(), R"({"q":"x"})");
  EXPECT_EQ(r.events[2].usage().usage().total_tokens(), 13);
  EXPECT_EQ(r.events[3].finish().reason(), tessera::v1::FINISH_REASON_TOOL_CALLS);
}

TEST_F(OpenAiChatModelTest, Unauthorized401KeepsTheKeyOutOfTheError) {
  Serve([](const FakeHttpRequest&) {
    return JsonResponse(401, {{"error",
                               {{"message", absl::StrCat("Incorrect API key provided: ", kKey)},
                                {"type", "invalid_request_error"}}}});
  });
  auto model = Model();
  RunResult r = Run(*model, SimpleRequest());
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(r.status.message(), HasSubstr("Incorrect API key provided"));
  EXPECT_THAT(r.status.message(), HasSubstr("401"));
  EXPECT_THAT(r.status.message(), Not(HasSubstr(kKey)));
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(server_->requests().size(), 1u);
}

TEST_F(OpenAiChatModelTest, NotFound404NamesTheModel) {
  Serve([](const FakeHttpRequest&) {
    return JsonResponse(404, {{"object", "error"}, {"message", "The model `m1` does not exist."}});
  });
  auto model = Model();
  RunResult r = Run(*model, SimpleRequest());
  EXPECT_EQ(r.status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(r.status.message(), HasSubstr("does not exist"));
  EXPECT_THAT(r.status.message(), HasSubstr("'m1'"));
}

TEST_F(OpenAiChatModelTest, BadRequest400IsInvalidArgument) {
  Serve([](const FakeHttpRequest&) {
    return JsonResponse(
        400, {{"error", {{"message", "This model's maximum context length is 4096 tokens"}}}});
  });
  auto model = Model();
  RunResult r = Run(*model, SimpleRequest());
  EXPECT_EQ(r.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status.message(), HasSubstr("maximum context length"));
}

TEST_F(OpenAiChatModelTest, Retries429HonouringRetryAfterSeconds) {
  std::atomic<int> n{0};
  Serve([&](const FakeHttpRequest&) {
    if (n++ == 0) {
      FakeHttpResponse r = JsonResponse(429, {{"error", {{"message", "slow down"}}}});
      r.headers.Add("Retry-After", "7");
      return r;
    }
    return Sse({Data(TextChunk("ok")), Data(FinishChunk("stop")), kDone});
  });
  auto model = Model();
  RunResult r = Run(*model, SimpleRequest());
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.Text(), "ok");
  EXPECT_EQ(n.load(), 2);
  EXPECT_EQ(clock_.TotalSlept(), absl::Seconds(7));
}

TEST_F(OpenAiChatModelTest, Gives503UpAfterMaxRetriesHonouringHttpDates) {
  std::atomic<int> n{0};
  Serve([&](const FakeHttpRequest&) {
    ++n;
    FakeHttpResponse r = JsonResponse(503, {{"error", {{"message", "overloaded"}}}});
    r.headers.Add("Retry-After",
                  absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", clock_.Now() + absl::Seconds(3),
                                   absl::UTCTimeZone()));
    return r;
  });
  auto model = Model();
  RunResult r = Run(*model, SimpleRequest());
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status.message(), HasSubstr("overloaded"));
  EXPECT_THAT(r.status.message(), HasSubstr("after 3 attempts"));
  EXPECT_EQ(n.load(), 3);
  EXPECT_EQ(clock_.TotalSlept(), absl::Seconds(6));
}

TEST_F(OpenAiChatModelTest, Exhausted429WithoutRetryAfterBacksOffExponentially) {
  Serve([&](const FakeHttpRequest&) {
    return JsonResponse(429, {{"error", {{"message", "quota"}}}});
  });
  auto model = Model();
  RunResult r = Run(*model, SimpleRequest());
  EXPECT_EQ(r.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(server_->requests().size(), 3u);
  EXPECT_EQ(clock_.TotalSlept(), absl::Seconds(1 + 2));
}

TEST_F(OpenAiChatModelTest, StreamCutMidAnswerIsUnavailable) {
  Serve([](const FakeHttpRequest&) {
    FakeHttpResponse r = Sse({Data(TextChunk("a")), Data(TextChunk("b")), Data(TextChunk("c")),
                              Data(TextChunk("d")), Data(FinishChunk("stop")), kDone});
    r.close_mid_body = true;
    return r;
  });
  auto model = Model();
  RunResult r = Run(*model, SimpleRequest());
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status.message(), HasSubstr("closed the stream mid-answer"));
  EXPECT_EQ(r.Count(GenerateResponse::kFinish), 0);
  EXPECT_EQ(server_->requests().size(), 1u);  // never retried once text went out
}

TEST_F(OpenAiChatModelTest, StreamEndingWithoutFinishIsUnavailable) {
  Serve([](const FakeHttpRequest&) { return Sse({Data(TextChunk("a")), Data(TextChunk("b"))}); });
  auto model = Model();
  RunResult r = Run(*model, SimpleRequest());
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status.message(), HasSubstr("closed the stream mid-answer"));
  EXPECT_EQ(r.Text(), "ab");
  EXPECT_EQ(r.Count(GenerateResponse::kFinish), 0);
}

TEST_F(OpenAiChatModelTest, MalformedChunkIsUnavailable) {
  Serve([](const FakeHttpRequest&) {
    return Sse(
        {Data(TextChunk("a")), "data: {\"choices\": [oops\n\n", Data(FinishChunk("stop")), kDone});
  });
  auto model = Model();
  RunResult r = Run(*model, SimpleRequest());
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status.message(), HasSubstr("malformed stream chunk"));
  EXPECT_EQ(r.Count(GenerateResponse::kFinish), 0);
}

TEST_F(OpenAiChatModelTest, CancellationMidStreamAbortsTheTransfer) {
  absl::Notification cancelled;
  Serve([&](const FakeHttpRequest&) {
    FakeHttpResponse r = Sse({Data(TextChunk("a")), Data(TextChunk("b")), Data(TextChunk("c")),
                              Data(FinishChunk("stop")), kDone});
    r.before_chunk = [&](size_t index) {
      if (index == 1) cancelled.WaitForNotificationWithTimeout(absl::Seconds(10));
    };
    return r;
  });
  auto model = Model();
  Cancellation cancel;
  RunResult r = Run(*model, SimpleRequest(), &cancel, [&](const GenerateResponse& e) {
    if (e.has_token() && !cancelled.HasBeenNotified()) {
      cancel.Cancel();
      cancelled.Notify();
    }
  });
  EXPECT_EQ(r.status.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(r.Text(), "a");
  EXPECT_EQ(r.Count(GenerateResponse::kFinish), 0);
}

TEST_F(OpenAiChatModelTest, CancelledBeforeStartSendsNothing) {
  auto model = Model();
  Cancellation cancel;
  cancel.Cancel();
  RunResult r = Run(*model, SimpleRequest(), &cancel);
  EXPECT_EQ(r.status.code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(server_->requests().empty());
}

TEST_F(OpenAiChatModelTest, OversizedAnswerIsResourceExhausted) {
  std::vector<std::string> chunks;
  for (int i = 0; i < 20; ++i) chunks.push_back(Data(TextChunk(std::string(50, 'x'))));
  chunks.push_back(Data(FinishChunk("stop")));
  chunks.push_back(kDone);
  Serve([&](const FakeHttpRequest&) { return Sse(chunks); });
  OpenAiChatModel::Options o = BaseOptions();
  o.max_output_bytes = 400;
  auto model = Model(o);
  RunResult r = Run(*model, SimpleRequest());
  EXPECT_EQ(r.status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(r.status.message(), HasSubstr("max_output_bytes"));
  EXPECT_LE(r.Text().size(), 400u);
  EXPECT_EQ(r.Count(GenerateResponse::kFinish), 0);
}

TEST_F(OpenAiChatModelTest, UnreachableServerIsUnavailable) {
  OpenAiChatModel::Options o = BaseOptions();
  o.base_url = "http://127.0.0.1:1/v1";  // nothing listens on port 1
  auto model = Model(o);
  RunResult r = Run(*model, SimpleRequest());
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status.message(), Not(HasSubstr(kKey)));
}

TEST(ParseRetryAfterValueTest, SecondsDatesAndGarbage) {
  const absl::Time now = absl::FromUnixSeconds(1'700'000'000);  // Tue, 14 Nov 2023 22:13:20 GMT
  EXPECT_EQ(ParseRetryAfterValue(" 120 ", now), absl::Seconds(120));
  EXPECT_EQ(ParseRetryAfterValue("Tue, 14 Nov 2023 22:13:50 GMT", now), absl::Seconds(30));
  EXPECT_EQ(ParseRetryAfterValue("Tuesday, 14-Nov-23 22:13:25 GMT", now), absl::Seconds(5));
  EXPECT_EQ(ParseRetryAfterValue("Tue, 14 Nov 2023 22:00:00 GMT", now), absl::ZeroDuration());
  EXPECT_EQ(ParseRetryAfterValue("soon", now), std::nullopt);
  EXPECT_EQ(ParseRetryAfterValue("", now), std::nullopt);
}

}  // namespace
}  // namespace tessera::agents
