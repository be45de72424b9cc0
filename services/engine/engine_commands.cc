#include "services/engine/engine_commands.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "tessera/v1/engine.grpc.pb.h"

namespace tessera::engine_service {
namespace {

int Report(const absl::Status& s, FILE* err) {
  std::fprintf(err, "tessera: %s: %s\n", absl::StatusCodeToString(s.code()).c_str(),
               std::string(s.message()).c_str());
  if (s.code() == absl::StatusCode::kUnavailable) {
    std::fprintf(err, "  (is `tessera serve` running there? see --server, or run locally with "
                      "--engine_config / --model_path)\n");
  }
  return s.code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
}

bool Local(const EngineTarget& t) { return !t.engine_config.empty() || !t.model_path.empty(); }

std::unique_ptr<v1::EngineService::Stub> Remote(const EngineTarget& t) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  return v1::EngineService::NewStub(
      grpc::CreateCustomChannel(t.server, grpc::InsecureChannelCredentials(), args));
}

// The id of the only model of `kind` when `id` is empty.
absl::StatusOr<std::string> PickModel(const engine::Engine& e, const std::string& id,
                                      engine::ModelKind kind) {
  if (!id.empty()) return id;
  std::vector<std::string> ids;
  for (const auto& m : e.ListModels()) {
    if (m.kind == kind) ids.push_back(m.id);
  }
  if (ids.size() == 1) return ids[0];
  if (ids.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("no ", std::string(engine::ModelKindName(kind)),
                                                   " model is configured"));
  }
  return absl::InvalidArgumentError(absl::StrCat("name the ", std::string(engine::ModelKindName(kind)),
                                                 " model with --model (", ids.size(),
                                                 " are configured)"));
}

// The remote counterpart of PickModel, through ListModels.
absl::StatusOr<std::string> PickRemoteModel(v1::EngineService::Stub& stub, const EngineTarget& t,
                                            const std::string& id, v1::ModelKind kind) {
  if (!id.empty()) return id;
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + t.key);
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  v1::ListModelsRequest req;
  req.set_kind(kind);
  v1::ListModelsResponse resp;
  grpc::Status st = stub.ListModels(&ctx, req, &resp);
  if (!st.ok()) return absl::Status(static_cast<absl::StatusCode>(st.error_code()), st.error_message());
  if (resp.models_size() == 1) return resp.models(0).id();
  return absl::InvalidArgumentError(absl::StrCat("name the model with --model (the server has ",
                                                 resp.models_size(), " of this kind)"));
}

}  // namespace

absl::StatusOr<engine::EngineOptions> LocalEngineOptions(const EngineTarget& t) {
  if (!t.engine_config.empty() && !t.model_path.empty()) {
    return absl::InvalidArgumentError("give --engine_config or --model_path, not both");
  }
  if (!t.model_path.empty()) {
    engine::EngineOptions o;
    o.device = "auto";
    engine::ModelConfig m;
    m.id = "default";
    m.path = t.model_path;
    o.models.push_back(m);
    return o;
  }
  std::ifstream in(t.engine_config);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", t.engine_config));
  std::stringstream ss;
  ss << in.rdbuf();
  auto o = engine::ParseEngineOptions(ss.str());
  if (!o.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(t.engine_config, ": ", o.status().message()));
  }
  return o;
}

int GenerateCommand(const EngineTarget& target, const GenerateCommandOptions& o, FILE* out,
                    FILE* err) {
  if (!Local(target)) {
    auto stub = Remote(target);
    auto model = PickRemoteModel(*stub, target, o.model, v1::MODEL_KIND_GENERATION);
    if (!model.ok()) return Report(model.status(), err);
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + target.key);
    v1::GenerateRequest req;
    req.set_model(*model);
    if (o.chat) {
      if (!o.system.empty()) {
        auto* m = req.add_messages();
        m->set_role(v1::ROLE_SYSTEM);
        m->set_content(o.system);
      }
      auto* m = req.add_messages();
      m->set_role(v1::ROLE_USER);
      m->set_content(o.prompt);
    } else {
      req.set_prompt(o.prompt);
    }
    auto* s = req.mutable_sampling();
    s->set_temperature(o.sampling.temperature);
    if (o.sampling.top_k) s->set_top_k(o.sampling.top_k);
    s->set_top_p(o.sampling.top_p);
    if (o.seed_set) s->set_seed(o.sampling.seed);
    s->set_max_tokens(o.max_tokens);
    for (const auto& stop : o.stop) s->add_stop(stop);
    auto reader = stub->Generate(&ctx, req);
    v1::GenerateResponse resp;
    bool first = true;
    while (reader->Read(&resp)) {
      // A continuation reads best after its prompt; printed once the server accepted the request.
      if (first && !o.chat) std::fputs(o.prompt.c_str(), out);
      first = false;
      if (resp.has_token()) {
        std::fputs(resp.token().text().c_str(), out);
        std::fflush(out);
      } else if (resp.has_tool_call()) {
        std::fprintf(out, "\n[tool call] %s %s\n", resp.tool_call().tool_call().name().c_str(),
                     resp.tool_call().tool_call().arguments_json().c_str());
      } else if (resp.has_usage()) {
        std::fprintf(err, "\n[%lld prompt tokens, %lld generated]\n",
                     static_cast<long long>(resp.usage().usage().prompt_tokens()),
                     static_cast<long long>(resp.usage().usage().completion_tokens()));
      }
    }
    grpc::Status st = reader->Finish();
    if (!st.ok()) return Report(absl::Status(static_cast<absl::StatusCode>(st.error_code()), st.error_message()), err);
    std::fputc('\n', out);
    return 0;
  }
  auto options = LocalEngineOptions(target);
  if (!options.ok()) return Report(options.status(), err);
  auto engine = engine::Engine::Create(*options);
  if (!engine.ok()) return Report(engine.status(), err);
  auto model = PickModel(**engine, o.model, engine::ModelKind::kGeneration);
  if (!model.ok()) return Report(model.status(), err);
  engine::GenerateParams p;
  p.model = *model;
  if (o.chat) {
    if (!o.system.empty()) p.messages.push_back({engine::ChatRole::kSystem, o.system});
    p.messages.push_back({engine::ChatRole::kUser, o.prompt});
  } else {
    p.prompt = o.prompt;
  }
  p.sampling = o.sampling;
  p.seed_set = o.seed_set;
  p.max_tokens = o.max_tokens;
  p.stop = o.stop;
  absl::Notification done;
  engine::GenerateEvent finish;
  bool first = true;
  const absl::Time start = absl::Now();
  auto handle = (*engine)->Generate(p, [&](const engine::GenerateEvent& e) {
    if (first && !o.chat) std::fputs(o.prompt.c_str(), out);  // accepted: show the prompt first
    first = false;
    if (e.type == engine::GenerateEvent::Type::kText) {
      std::fputs(e.text.c_str(), out);
      std::fflush(out);
    } else if (e.type == engine::GenerateEvent::Type::kToolCall) {
      std::fprintf(out, "\n[tool call] %s %s\n", e.tool_call.name.c_str(),
                   e.tool_call.arguments_json.c_str());
    } else {
      finish = e;
      done.Notify();
    }
  });
  if (!handle.ok()) return Report(handle.status(), err);
  done.WaitForNotification();
  std::fputc('\n', out);
  const double secs = absl::ToDoubleSeconds(absl::Now() - start);
  std::fprintf(err, "[%d prompt tokens, %d generated in %.2f s: %.1f tokens/s]\n",
               finish.prompt_tokens, finish.completion_tokens, secs,
               secs > 0 ? finish.completion_tokens / secs : 0.0);
  if (finish.reason == engine::FinishReason::kError) return Report(finish.status, err);
  return 0;
}

int EmbedCommand(const EngineTarget& target, const EmbedCommandOptions& o, FILE* out, FILE* err) {
  if (o.inputs.empty()) return Report(absl::InvalidArgumentError("embed needs at least one TEXT"), err);
  std::vector<std::vector<float>> vectors;
  std::vector<int> tokens;
  if (!Local(target)) {
    auto stub = Remote(target);
    auto model = PickRemoteModel(*stub, target, o.model, v1::MODEL_KIND_EMBEDDING);
    if (!model.ok()) return Report(model.status(), err);
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + target.key);
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Minutes(5)));
    v1::EmbedRequest req;
    req.set_model(*model);
    for (const auto& i : o.inputs) req.add_inputs(i);
    req.set_normalize(o.normalize);
    v1::EmbedResponse resp;
    grpc::Status st = stub->Embed(&ctx, req, &resp);
    if (!st.ok()) return Report(absl::Status(static_cast<absl::StatusCode>(st.error_code()), st.error_message()), err);
    for (const auto& e : resp.embeddings()) {
      vectors.emplace_back(e.values().begin(), e.values().end());
      tokens.push_back(e.token_count());
    }
  } else {
    auto options = LocalEngineOptions(target);
    if (!options.ok()) return Report(options.status(), err);
    auto engine = engine::Engine::Create(*options);
    if (!engine.ok()) return Report(engine.status(), err);
    auto model = PickModel(**engine, o.model, engine::ModelKind::kEmbedding);
    if (!model.ok()) return Report(model.status(), err);
    engine::EmbedParams p;
    p.model = *model;
    p.inputs = o.inputs;
    p.normalize = o.normalize;
    auto r = (*engine)->Embed(p);
    if (!r.ok()) return Report(r.status(), err);
    vectors = std::move(r->vectors);
    tokens = std::move(r->token_counts);
  }
  for (size_t i = 0; i < vectors.size(); ++i) {
    nlohmann::json j = {{"input", o.inputs[i]}, {"tokens", tokens[i]}, {"embedding", vectors[i]}};
    std::fprintf(out, "%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  }
  return 0;
}

}  // namespace tessera::engine_service
