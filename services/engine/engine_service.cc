#include "services/engine/engine_service.h"

#include <deque>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/grpc_status.h"
#include "engine/text_stream.h"

namespace tessera::engine_service {
namespace {

using ::tessera::ToGrpcStatus;

engine::Truncate ToTruncate(v1::TruncateMode mode) {
  switch (mode) {
    case v1::TRUNCATE_MODE_NONE: return engine::Truncate::kNone;
    case v1::TRUNCATE_MODE_START: return engine::Truncate::kStart;
    default: return engine::Truncate::kEnd;
  }
}

v1::ModelKind ToProtoKind(engine::ModelKind kind) {
  switch (kind) {
    case engine::ModelKind::kGeneration: return v1::MODEL_KIND_GENERATION;
    case engine::ModelKind::kEmbedding: return v1::MODEL_KIND_EMBEDDING;
    case engine::ModelKind::kRerank: return v1::MODEL_KIND_RERANK;
    default: return v1::MODEL_KIND_UNSPECIFIED;
  }
}

bool ValidUtf8(const std::string& s) { return engine::SanitizeUtf8(s) == s; }

}  // namespace

std::vector<v1::GenerateResponse> ToGenerateResponses(const engine::GenerateEvent& e) {
  std::vector<v1::GenerateResponse> events;
  v1::GenerateResponse out;
  switch (e.type) {
    case engine::GenerateEvent::Type::kText:
      out.mutable_token()->set_text(e.text);
      out.mutable_token()->mutable_token_ids()->Add(e.token_ids.begin(), e.token_ids.end());
      break;
    case engine::GenerateEvent::Type::kToolCall: {
      v1::ToolCall* c = out.mutable_tool_call()->mutable_tool_call();
      c->set_id(e.tool_call.id);
      c->set_name(e.tool_call.name);
      c->set_arguments_json(e.tool_call.arguments_json);
      break;
    }
    case engine::GenerateEvent::Type::kFinish: {
      v1::GenerateResponse usage;
      v1::Usage* u = usage.mutable_usage()->mutable_usage();
      u->set_prompt_tokens(e.prompt_tokens);
      u->set_completion_tokens(e.completion_tokens);
      u->set_total_tokens(e.prompt_tokens + e.completion_tokens);
      events.push_back(std::move(usage));
      v1::FinishEvent* f = out.mutable_finish();
      switch (e.reason) {
        case engine::FinishReason::kStop: f->set_reason(v1::FINISH_REASON_STOP); break;
        case engine::FinishReason::kLength: f->set_reason(v1::FINISH_REASON_LENGTH); break;
        case engine::FinishReason::kStopSequence:
          f->set_reason(v1::FINISH_REASON_STOP_SEQUENCE);
          f->set_stop_sequence(e.stop_sequence);
          break;
        case engine::FinishReason::kToolCalls:
          f->set_reason(v1::FINISH_REASON_TOOL_CALLS);
          if (!e.status.ok()) {
            f->mutable_error()->set_code(static_cast<int>(e.status.code()));
            f->mutable_error()->set_message(std::string(e.status.message()));
          }
          break;
        case engine::FinishReason::kCancelled: f->set_reason(v1::FINISH_REASON_CANCELLED); break;
        case engine::FinishReason::kError:
          f->set_reason(v1::FINISH_REASON_ERROR);
          f->mutable_error()->set_code(static_cast<int>(e.status.code()));
          f->mutable_error()->set_message(std::string(e.status.message()));
          break;
      }
      break;
    }
  }
  events.push_back(std::move(out));
  return events;
}

absl::StatusOr<engine::GenerateParams> ToGenerateParams(const v1::GenerateRequest& r) {
  engine::GenerateParams p;
  p.model = r.model();
  // A raw prompt unless messages are given; an empty prompt starts from BOS alone.
  if (r.messages_size() == 0) p.prompt = r.prompt();
  if (r.messages_size() > 0 && !r.prompt().empty()) {
    return absl::InvalidArgumentError("set either prompt or messages, not both");
  }
  for (int i = 0; i < r.messages_size(); ++i) {
    const v1::ChatMessage& m = r.messages(i);
    engine::ChatMessage cm;
    switch (m.role()) {
      case v1::ROLE_SYSTEM: cm.role = engine::ChatRole::kSystem; break;
      case v1::ROLE_USER: cm.role = engine::ChatRole::kUser; break;
      case v1::ROLE_ASSISTANT: cm.role = engine::ChatRole::kAssistant; break;
      case v1::ROLE_TOOL: cm.role = engine::ChatRole::kTool; break;
      default:
        return absl::InvalidArgumentError(absl::StrCat("messages[", i, "].role: required"));
    }
    cm.content = m.content();
    for (const v1::ToolCall& c : m.tool_calls()) {
      cm.tool_calls.push_back({c.id(), c.name(), c.arguments_json().empty() ? "{}" : c.arguments_json()});
    }
    cm.tool_call_id = m.tool_call_id();
    cm.name = m.name();
    p.messages.push_back(std::move(cm));
  }
  for (int i = 0; i < r.tools_size(); ++i) {
    const v1::ToolSpec& t = r.tools(i);
    if (!engine::IsValidToolName(t.name())) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tools[", i, "].name: '", t.name(), "' must be 1-64 of letters, digits, '_' and '-'"));
    }
    p.tools.push_back({t.name(), t.description(),
                       t.parameters_json_schema().empty() ? "{}" : t.parameters_json_schema()});
  }
  if (r.tool_choice().mode() == v1::TOOL_CHOICE_MODE_NONE) p.tools.clear();
  const v1::SamplingParams& s = r.sampling();
  if (s.has_temperature()) p.sampling.temperature = s.temperature();
  if (s.has_top_k()) p.sampling.top_k = s.top_k();
  if (s.has_top_p()) p.sampling.top_p = s.top_p();
  if (s.has_repetition_penalty()) p.sampling.repetition_penalty = s.repetition_penalty();
  if (s.has_seed()) {
    p.sampling.seed = s.seed();
    p.seed_set = true;
  }
  if (s.max_tokens() < 0) return absl::InvalidArgumentError("sampling.max_tokens must be >= 0");
  p.max_tokens = s.max_tokens();
  p.stop.assign(s.stop().begin(), s.stop().end());
  p.truncate_prompt = r.truncate_prompt();
  return p;
}

grpc::Status EngineServiceImpl::Embed(grpc::ServerContext*, const v1::EmbedRequest* request,
                                      v1::EmbedResponse* response) {
  engine::EmbedParams p;
  p.model = request->model();
  for (int i = 0; i < request->inputs_size(); ++i) {
    if (!ValidUtf8(request->inputs(i))) {
      return ToGrpcStatus(absl::InvalidArgumentError(absl::StrCat("inputs[", i, "] is not valid UTF-8")));
    }
    p.inputs.push_back(request->inputs(i));
  }
  p.normalize = request->normalize();
  p.truncate = ToTruncate(request->truncate());
  p.dimensions = request->dimensions();
  auto r = engine_->Embed(p);
  if (!r.ok()) return ToGrpcStatus(r.status());
  response->set_model(request->model());
  response->set_dimensions(r->dimensions);
  int64_t tokens = 0;
  for (size_t i = 0; i < r->vectors.size(); ++i) {
    v1::Embedding* e = response->add_embeddings();
    e->mutable_values()->Add(r->vectors[i].begin(), r->vectors[i].end());
    e->set_token_count(r->token_counts[i]);
    e->set_truncated(r->truncated[i]);
    tokens += r->token_counts[i];
  }
  response->mutable_usage()->set_prompt_tokens(tokens);
  response->mutable_usage()->set_total_tokens(tokens);
  return grpc::Status::OK;
}

grpc::Status EngineServiceImpl::Rerank(grpc::ServerContext*, const v1::RerankRequest* request,
                                       v1::RerankResponse* response) {
  engine::RerankParams p;
  p.model = request->model();
  p.query = request->query();
  p.documents.assign(request->documents().begin(), request->documents().end());
  p.top_n = request->top_n();
  p.truncate = ToTruncate(request->truncate());
  if (!ValidUtf8(p.query)) return ToGrpcStatus(absl::InvalidArgumentError("query is not valid UTF-8"));
  auto r = engine_->Rerank(p);
  if (!r.ok()) return ToGrpcStatus(r.status());
  response->set_model(request->model());
  for (const auto& [index, score] : r->results) {
    v1::RerankResult* out = response->add_results();
    out->set_index(index);
    out->set_relevance_score(score);
  }
  response->mutable_usage()->set_prompt_tokens(r->tokens);
  response->mutable_usage()->set_total_tokens(r->tokens);
  return grpc::Status::OK;
}

grpc::Status EngineServiceImpl::Generate(grpc::ServerContext* context,
                                         const v1::GenerateRequest* request,
                                         grpc::ServerWriter<v1::GenerateResponse>* writer) {
  auto params = ToGenerateParams(*request);
  if (!params.ok()) return ToGrpcStatus(params.status());
  if (params->prompt.has_value() && !ValidUtf8(*params->prompt)) {
    return ToGrpcStatus(absl::InvalidArgumentError("prompt is not valid UTF-8"));
  }
  struct Queue {
    absl::Mutex mu;
    std::deque<engine::GenerateEvent> events ABSL_GUARDED_BY(mu);
  };
  auto queue = std::make_shared<Queue>();
  auto handle = engine_->Generate(*params, [queue](const engine::GenerateEvent& e) {
    absl::MutexLock lock(&queue->mu);
    queue->events.push_back(e);
  });
  if (!handle.ok()) return ToGrpcStatus(handle.status());
  bool client_gone = false;
  while (true) {
    std::deque<engine::GenerateEvent> batch;
    {
      absl::MutexLock lock(&queue->mu);
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue->mu) { return !queue->events.empty(); };
      queue->mu.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(50));
      batch.swap(queue->events);
    }
    if (!client_gone && context->IsCancelled()) {
      client_gone = true;
      (*handle)->Cancel();  // the engine frees the request's cache; we wait for its last event
    }
    for (const engine::GenerateEvent& e : batch) {
      for (const v1::GenerateResponse& out : ToGenerateResponses(e)) {
        if (!client_gone && !writer->Write(out)) {
          client_gone = true;
          (*handle)->Cancel();
        }
      }
      if (e.type == engine::GenerateEvent::Type::kFinish) {
        if (client_gone) return grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
        return grpc::Status::OK;
      }
    }
  }
}

grpc::Status EngineServiceImpl::Tokenize(grpc::ServerContext*, const v1::TokenizeRequest* request,
                                         v1::TokenizeResponse* response) {
  if (!ValidUtf8(request->text())) {
    return ToGrpcStatus(absl::InvalidArgumentError("text is not valid UTF-8"));
  }
  auto r = engine_->Tokenize(request->model(), request->text(), request->add_special_tokens());
  if (!r.ok()) return ToGrpcStatus(r.status());
  response->mutable_token_ids()->Add(r->ids.begin(), r->ids.end());
  for (const std::string& p : r->pieces) response->add_pieces(p);
  return grpc::Status::OK;
}

grpc::Status EngineServiceImpl::ListModels(grpc::ServerContext*, const v1::ListModelsRequest* request,
                                           v1::ListModelsResponse* response) {
  if (request->page_size() < 0 || request->page_size() > 1000) {
    return ToGrpcStatus(absl::InvalidArgumentError("page_size must be in [0, 1000]"));
  }
  const int page_size = request->page_size() == 0 ? 100 : request->page_size();
  std::vector<engine::ModelInfo> models = engine_->ListModels();
  std::sort(models.begin(), models.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
  int emitted = 0;
  for (const engine::ModelInfo& m : models) {
    if (request->kind() != v1::MODEL_KIND_UNSPECIFIED && ToProtoKind(m.kind) != request->kind()) continue;
    if (!request->page_token().empty() && m.id <= request->page_token()) continue;
    if (emitted == page_size) {
      response->set_next_page_token(response->models(emitted - 1).id());
      break;
    }
    v1::ModelInfo* out = response->add_models();
    out->set_id(m.id);
    out->set_kind(ToProtoKind(m.kind));
    out->set_architecture(m.architecture);
    out->set_context_length(m.context_length);
    out->set_embedding_dimensions(m.embedding_dimensions);
    out->set_quantization(m.quantization);
    out->set_backend(m.backend.rfind("cuda", 0) == 0 ? "cuda" : "cpu");
    out->set_chat_template(m.chat_format);
    out->set_parameter_count(m.parameter_count);
    out->set_supports_tools(!m.chat_format.empty() && m.chat_format != "mistral-v1");
    ++emitted;
  }
  return grpc::Status::OK;
}

}  // namespace tessera::engine_service
