#include "services/sync/testing/sync_test_env.h"

#include "common/status.h"
#include "services/sync/sync_config.h"
#include "tessera/v1/retrieval.grpc.pb.h"

namespace tessera::sync::testing {

Caller MakeCaller(const std::string &user, std::vector<std::string> groups, KeyRole role) {
  Caller c;
  c.principal.user = user;
  c.principal.groups = std::move(groups);
  c.role = role;
  c.key_id = "test-" + user;
  return c;
}

absl::StatusOr<std::unique_ptr<SyncTestEnv>> SyncTestEnv::Start(const std::string &dir) {
  std::unique_ptr<SyncTestEnv> env(new SyncTestEnv());
  env->dir_ = dir;
  retrieval::RetrievalServiceImpl::Options ro;
  ro.data_dir = dir + "/retrieval";
  ASSIGN_OR_RETURN(env->service_, retrieval::RetrievalServiceImpl::Create(ro));
  grpc::ServerBuilder builder;
  builder.RegisterService(env->service_.get());
  env->server_ = builder.BuildAndStart();
  if (env->server_ == nullptr) return absl::InternalError("the in-process gRPC server did not start");
  env->channel_ = env->server_->InProcessChannel(grpc::ChannelArguments());
  ASSIGN_OR_RETURN(env->http_, CurlHttpTransport::Create({}));
  return env;
}

SyncTestEnv::~SyncTestEnv() {
  if (server_) server_->Shutdown();
}

absl::StatusOr<std::unique_ptr<SyncDaemon>> SyncTestEnv::NewDaemon(const std::string &config_json) {
  ASSIGN_OR_RETURN(SyncConfig config, ParseSyncConfig(config_json, "test.json"));
  SyncDaemon::Options o;
  o.config = std::move(config);
  o.state_dir = dir_ + "/sync";
  auto channel = channel_;
  o.new_retrieval_stub = [channel]() -> std::unique_ptr<v1::RetrievalService::StubInterface> {
    return v1::RetrievalService::NewStub(channel);
  };
  const Caller admin = MakeCaller("sync@x.com", {}, KeyRole::kAdmin);
  o.prepare_context = [admin](grpc::ClientContext *ctx) { AttachCaller(admin, ctx); };
  o.create_missing_collections = true;
  o.http = http_.get();
  return SyncDaemon::Create(std::move(o));
}

std::set<std::string> SyncTestEnv::SearchTitles(const std::string &collection, const std::string &query,
                                                const std::string &user, std::vector<std::string> groups) {
  auto stub = v1::RetrievalService::NewStub(channel_);
  grpc::ClientContext ctx;
  AttachCaller(MakeCaller(user, std::move(groups), KeyRole::kUser), &ctx);
  v1::SearchRequest req;
  req.add_collections(collection);
  req.set_query(query);
  req.set_top_k(20);
  v1::SearchResponse resp;
  std::set<std::string> titles;
  if (!stub->Search(&ctx, req, &resp).ok()) return titles;
  for (const auto &h : resp.hits()) titles.insert(h.title());
  return titles;
}

}  // namespace tessera::sync::testing
